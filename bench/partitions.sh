#!/usr/bin/env bash
# bench/partitions.sh: what monthly partitions of job_event (pg_partman)
# cost a sweep.
#
#   sudo bash bench/partitions.sh                    # PostgreSQL 17 (chroot)
#   sudo PG_MAJOR=15 PARTS="1 24" bash bench/partitions.sh
#
# Builds TREE (default: this checkout) into PROTEA_CACHE's server (default
# /var/tmp/benchB; PG_MAJOR 17 by default, whose chroot carries Debian's
# postgresql-17-partman: 16, built from source, has no pg_partman), starts a
# throwaway cluster as test/lib.sh makes it (PostgreSQL's default settings;
# protea_reaper.enabled = off: no worker), and for each count N in PARTS
# makes a database with PROTEA's schema, job_event partitioned as
# test/partition_job_event.sql does it (key (id, ts)), and pg_partman's
# create_parent: N monthly partitions back from the current month, 4 premade
# ahead (partman's default) and the default partition.  The data:
# bench/sql/datagen.sql's (FINISHED finished jobs over the last 91 days,
# 2,000 running of which 500 past the timeout, 10 events per job) plus
# HISTORY events of finished jobs in every older month, so that no
# partition is empty.  Then, each in a session of its own:
#
#   idle    nothing to reap (stall_seconds 30 days): WARMUP + RUNS sweeps,
#           each BEGIN .. ROLLBACK, median server ms (bench.timed_run_once)
#   list    protea_reaper_running_jobs(), median of LIST_RUNS, server ms
#   reap    MASS stale jobs added (bench.add_mass), one sweep fails them
#           (and the pool's 200 stale ones), BEGIN .. ROLLBACK, median of
#           MASS_RUNS, server ms and jobs/s
#
# Prints a Markdown table, also written to bench/results/partitions.md.
set -euo pipefail
TREE=${TREE:-$(cd "$(dirname "$0")/.." && pwd)}
export PROTEA_CACHE=${PROTEA_CACHE:-/var/tmp/benchB}
export PG_MAJOR=${PG_MAJOR:-17}
export PARTS=${PARTS:-"1 24 120"}
export FINISHED=${FINISHED:-100000}
export HISTORY=${HISTORY:-2000}
export RUNS=${RUNS:-25}
export WARMUP=${WARMUP:-5}
export LIST_RUNS=${LIST_RUNS:-5}
export MASS=${MASS:-10000}
export MASS_RUNS=${MASS_RUNS:-3}
[ "$(id -u)" -eq 0 ] || { echo "run as root (the server runs as postgres)" >&2; exit 2; }

export COMMIT=${COMMIT:-$(cd "$TREE" && git rev-parse --short HEAD 2>/dev/null || echo '?')}
. "$TREE/test/lib.sh"
ensure_server >&2
# 17 and up: this script again, inside that major's chroot
if [ "$PG_FROM" = chroot ]; then
    rerun_in_chroot bench/partitions.sh COMMIT PARTS FINISHED HISTORY RUNS WARMUP LIST_RUNS MASS MASS_RUNS
    exit
fi
build_and_install >&2
make_workdir
trap stop_clusters EXIT
start_cluster bench "protea_reaper.enabled = off" >&2

q() {
    (cd "$WORKDIR" && runuser -u postgres -- "$PG_BIN/psql" -h "$WORKDIR" -p "$PORT" \
        -X -q -P pager=off "$@")
}
median() {
    grep -E '^[0-9.]+$' | sort -g | awk '{v[NR] = $1}
        END { if (NR == 0) print "-"; else printf "%.3f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

mkdir -p "$TREE/bench/results"
REPORT=$TREE/bench/results/partitions.md
{
    echo "$COMMIT on $(q -d bench -At -c 'SHOW server_version'), $FINISHED finished jobs, $HISTORY events in each older month, idle: median of $RUNS, list: of $LIST_RUNS, reap of $MASS (+200): of $MASS_RUNS"
    echo
    echo "| monthly partitions | tables (with 4 premade and the default) | events | idle sweep (ms) | running_jobs() (ms) | reap (ms) | jobs/s |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} | tee "$REPORT"

for n in $PARTS; do
    db=parts$n
    q -d bench -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    qd() { q -d "$db" "$@"; }
    qd -v ON_ERROR_STOP=1 -f "$TREE/test/protea_schema.sql" >/dev/null
    qd -v ON_ERROR_STOP=1 -f "$TREE/test/partition_job_event.sql" >/dev/null
    qd -v ON_ERROR_STOP=1 >/dev/null <<EOF
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
SELECT partman.create_parent(
    p_parent_table => 'public.job_event', p_control => 'ts', p_interval => '1 month',
    p_type => CASE WHEN (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman') < '5'
                   THEN 'native' ELSE 'range' END,
    p_premake => 4,
    p_start_partition => (date_trunc('month', now()) - make_interval(months => $n - 1))::text);
CREATE EXTENSION protea_reaper;
EOF
    qd -v ON_ERROR_STOP=1 -f "$TREE/bench/sql/datagen.sql" >/dev/null
    qd -c "SET session_replication_role = replica" -c "SELECT bench.add_finished(1, $FINISHED)" >/dev/null
    qd -c "SET session_replication_role = replica" -c "SELECT bench.add_running(1, 4000, 2000)" >/dev/null
    # older months' history: events of finished jobs, spread over each month
    qd -c "SET session_replication_role = replica" -c "
        INSERT INTO job_event (job_id, ts, level, event, message, fields)
        SELECT md5('fin' || (1 + (m * $HISTORY + i) % $FINISHED))::text::uuid,
               date_trunc('month', now()) - make_interval(months => m)
                 + interval '27 days' * i / $HISTORY,
               'info', 'job.progress', 'history', '{}'
          FROM generate_series(4, $n - 1) AS m, generate_series(0, $HISTORY - 1) AS i" >/dev/null
    qd -c "VACUUM ANALYZE" >/dev/null
    tables=$(qd -At -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'job_event'::regclass")
    events=$(qd -At -c "SELECT count(*) FROM job_event")

    idle=$(qd -At -v ON_ERROR_STOP=0 2>&1 <<EOF | tail -n "$RUNS" | median
SET protea_reaper.stall_seconds = '30d';
$(for _ in $(seq 1 $((WARMUP + RUNS))); do echo "BEGIN; SELECT round(server_ms::numeric, 3) FROM bench.timed_run_once(); ROLLBACK;"; done)
EOF
)
    list=$(qd -At -c "$(for _ in $(seq 1 "$LIST_RUNS"); do echo "SELECT round(server_ms::numeric, 3) FROM bench.measure('SELECT count(*) FROM protea_reaper_running_jobs()');"; done)" | median)
    mass_out=$(qd -At -c "$(for _ in $(seq 1 "$MASS_RUNS"); do echo "CHECKPOINT; BEGIN; SELECT bench.refresh_alive(); SELECT bench.add_mass($MASS); SELECT reaped || ' ' || round(server_ms::numeric, 3) FROM bench.timed_run_once(); ROLLBACK;"; done)" 2>&1)
    reap=$(echo "$mass_out" | awk 'NF == 2 && $1 ~ /^[0-9]+$/ {print $2}' | median)
    reaped=$(echo "$mass_out" | awk 'NF == 2 && $1 ~ /^[0-9]+$/ {print $1; exit}')
    jobs=$(awk -v r="${reaped:-0}" -v ms="$reap" 'BEGIN { if (ms + 0 > 0) printf "%.0f", r / (ms / 1000); else print "-" }')
    echo "| $n | $tables | $events | $idle | $list | $reap | $jobs |" | tee -a "$REPORT"
    q -d bench -c "DROP DATABASE $db" >/dev/null
done
echo
echo "report: $REPORT"
