#!/usr/bin/env bash
# bench/metrics.sh: what 1.4's metrics cost a reaper (run P of RESULTS.md).
#
#   sudo bash bench/metrics.sh                      # the host's PostgreSQL 15
#   sudo FINISHED=1000000 ALARMS="0 10000" bash bench/metrics.sh
#
# Builds this checkout into the host's server, starts a throwaway cluster as
# test/lib.sh makes it (PostgreSQL's default settings; protea_reaper.enabled
# = off: no worker, every figure is a statement timed on the server by
# bench.measure), lays out PROTEA's tables (test/protea_schema.sql) with
# bench/sql/datagen.sql's data: FINISHED finished jobs, 2,000 running of
# which 500 past the timeout, 10 events per job.  Then, median of RUNS:
#
#   count    the count of running jobs each cycle adds (last_running), by
#            PROTEA's index on (status, created_at); then again with the
#            README's partial index on running jobs
#   idle     an idle sweep (timeout 60 days, stall 30: nothing to reap), which
#            includes that count, BEGIN .. ROLLBACK
#   alarms   the doctor's false-alarm statement, which the reaper runs after
#            a cycle at most every 5 minutes, with N jobs failed by the
#            reaper in its 7-day window (each N of ALARMS; half of them
#            wrote an event after their job.timeout)
#
# Prints a Markdown table, also written to bench/results/metrics.md.
set -euo pipefail
TREE=${TREE:-$(cd "$(dirname "$0")/.." && pwd)}
export PG_MAJOR=${PG_MAJOR:-15}
FINISHED=${FINISHED:-300000}
ALARMS=${ALARMS:-"0 1000 10000"}
RUNS=${RUNS:-25}
[ "$(id -u)" -eq 0 ] || { echo "run as root (the server runs as postgres)" >&2; exit 2; }

COMMIT=$(cd "$TREE" && git rev-parse --short HEAD 2>/dev/null || echo '?')
. "$TREE/test/lib.sh"
if [ "$PG_FROM" = chroot ]; then
    echo "bench/metrics.sh runs on the host's PostgreSQL (PG_MAJOR=15 or 16)" >&2
    exit 2
fi
ensure_server >&2
build_and_install >&2
make_workdir
trap stop_clusters EXIT
start_cluster bench "protea_reaper.enabled = off" >&2

q() {
    (cd "$WORKDIR" && runuser -u postgres -- "$PG_BIN/psql" -h "$WORKDIR" -p "$PORT" \
        -X -q -P pager=off -d bench "$@")
}
median() {
    grep -E '^[0-9.]+$' | sort -g | awk '{v[NR] = $1}
        END { if (NR == 0) print "-"; else printf "%.3f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# timed SQL: the median server ms of RUNS bench.measure() of a query
timed() {
    local stmt=${1//\'/\'\'}
    q -At -c "$(for _ in $(seq 1 "$RUNS"); do echo "SELECT round(server_ms::numeric, 3) FROM bench.measure('$stmt');"; done)" | median
}

q -v ON_ERROR_STOP=1 -f "$TREE/test/protea_schema.sql" >/dev/null
q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION protea_reaper" 2>/dev/null >/dev/null
q -v ON_ERROR_STOP=1 -f "$TREE/bench/sql/datagen.sql" >/dev/null
q -c "SET session_replication_role = replica" -c "SELECT bench.add_finished(1, $FINISHED)" >/dev/null
q -c "SET session_replication_role = replica" -c "SELECT bench.add_running(1, 4000, 2000)" >/dev/null
q -c "VACUUM ANALYZE" >/dev/null

COUNT="SELECT count(*) FROM job AS j WHERE j.status = 'RUNNING'"
IDLE_RUNS=$(for _ in $(seq 1 "$RUNS"); do echo "BEGIN; SELECT round(server_ms::numeric, 3) FROM bench.timed_run_once(); ROLLBACK;"; done)
count_protea=$(timed "$COUNT")
idle_protea=$(q -At -c "SET protea_reaper.timeout_seconds = '60d'" -c "SET protea_reaper.stall_seconds = '30d'" -c "$IDLE_RUNS" | median)
q -c "CREATE INDEX job_running_started_at ON job (started_at) INCLUDE (id, operation) WHERE status = 'RUNNING'" \
  -c "VACUUM ANALYZE job" >/dev/null
count_partial=$(timed "$COUNT")
idle_partial=$(q -At -c "SET protea_reaper.timeout_seconds = '60d'" -c "SET protea_reaper.stall_seconds = '30d'" -c "$IDLE_RUNS" | median)

mkdir -p "$TREE/bench/results"
REPORT=$TREE/bench/results/metrics.md
{
    echo "$COMMIT on $(q -At -c 'SHOW server_version'), $FINISHED finished jobs, 2,000 running, median of $RUNS, server ms"
    echo
    echo "| index on running jobs | count of running jobs (ms) | idle sweep with it (ms) |"
    echo "| --- | ---: | ---: |"
    echo "| PROTEA's (status, created_at) | $count_protea | $idle_protea |"
    echo "| and the README's partial index | $count_partial | $idle_partial |"
    echo
    echo "| jobs failed by the reaper in 7 days | false-alarm count (ms) |"
    echo "| ---: | ---: |"
} | tee "$REPORT"

ALARM_SQL=$(q -At -c "SELECT statement FROM protea_reaper_statements() WHERE name = 'false_alarms'")
done_n=0
for n in $ALARMS; do
    # jobs done_n+1 .. n of the finished ones become failed by the reaper,
    # an hour ago; every other one wrote an event after
    if [ "$n" -gt "$done_n" ]; then
        q -v ON_ERROR_STOP=1 >/dev/null <<EOF
SET session_replication_role = replica;
UPDATE job SET status = 'FAILED', error_code = 'JobTimeout'
 WHERE id IN (SELECT md5('fin' || k)::uuid FROM generate_series($done_n + 1, $n) AS k);
INSERT INTO job_event (job_id, ts, level, event, message, fields)
SELECT md5('fin' || k)::uuid, now() - interval '1 hour', 'error', 'job.timeout',
       'Job stalled: no activity in 3600s (started >21600s ago)', '{"reaper": "protea_reaper"}'
  FROM generate_series($done_n + 1, $n) AS k;
INSERT INTO job_event (job_id, ts, level, event, message, fields)
SELECT md5('fin' || k)::uuid, now() - interval '30 min', 'info', 'job.progress', 'alive after all', '{}'
  FROM generate_series($done_n + 1, $n) AS k WHERE k % 2 = 0;
ANALYZE job, job_event;
EOF
        done_n=$n
    fi
    echo "| $n | $(timed "SELECT count(*) FROM ($ALARM_SQL) AS a") |" | tee -a "$REPORT"
done
echo
echo "report: $REPORT"
