#!/usr/bin/env bash
# bench/policy_rows.sh: what the rows of protea_reaper_policy cost a sweep.
#
#   sudo bash bench/policy_rows.sh                       # this checkout
#   sudo TREE=/work/wt-old JIT=off TIMEOUT=120s ROWS="0 100 1000 3000 10000" \
#        bash bench/policy_rows.sh                       # an older build
#
# Builds TREE (default: this checkout) into PROTEA_CACHE's server (default
# /var/tmp/benchB, PostgreSQL PG_MAJOR 16: a copy of test/lib.sh's source
# build, so that neither the host's server nor the test suites' is
# touched), starts a throwaway cluster as test/lib.sh makes it (PostgreSQL's
# default settings, so jit = on; protea_reaper.enabled = off: no worker),
# loads PROTEA's schema and bench/sql/datagen.sql's data (FINISHED finished
# jobs, 2,000 running of which 500 past the timeout), then for each count
# in ROWS puts that many rows in protea_reaper_policy (operations the data
# does not run, timeout 12 h and stall 2 h: they change no verdict and not
# the bound) and measures, each in a session of its own with jit = JIT and
# statement_timeout = TIMEOUT (0: none):
#
#   sql     the statements' length, all of them and the longest
#           (protea_reaper_statements())
#   idle    nothing to reap (stall_seconds 30 days): WARMUP + RUNS sweeps,
#           each BEGIN .. ROLLBACK, median server ms (bench.timed_run_once)
#   list    protea_reaper_running_jobs(), median of LIST_RUNS, server ms
#   reap    MASS stale jobs added (bench.add_mass), one sweep fails them,
#           BEGIN .. ROLLBACK, median of MASS_RUNS, server ms and jobs/s;
#           then VACUUM, so that the next count starts from the same tables
#   memory  the idle session's backend peak RSS (VmHWM, shared buffers it
#           touched included), MB
#
# A series cut by statement_timeout shows "cancelled".  Prints a Markdown
# table, also written to $OUT/report.md (OUT: a new /tmp/policy_rows.XXXXXX).
set -euo pipefail
TREE=${TREE:-$(cd "$(dirname "$0")/.." && pwd)}
export PROTEA_CACHE=${PROTEA_CACHE:-/var/tmp/benchB}
export PG_MAJOR=${PG_MAJOR:-16}
ROWS=${ROWS:-"0 100 10000"}
FINISHED=${FINISHED:-100000}
RUNS=${RUNS:-25}
WARMUP=${WARMUP:-5}
LIST_RUNS=${LIST_RUNS:-5}
MASS=${MASS:-10000}
MASS_RUNS=${MASS_RUNS:-3}
JIT=${JIT:-on}
TIMEOUT=${TIMEOUT:-0}
OUT=${OUT:-$(mktemp -d /tmp/policy_rows.XXXXXX)}
[ "$(id -u)" -eq 0 ] || { echo "run as root (the server runs as postgres)" >&2; exit 2; }
mkdir -p "$OUT"
chmod 777 "$OUT"

# The source build of 16 is made once by test/lib.sh; reuse it
if [ "$PG_MAJOR" = 16 ] && [ ! -d "$PROTEA_CACHE/pg16" ] && [ -d /var/tmp/protea_reaper/pg16 ]; then
    mkdir -p "$PROTEA_CACHE"
    cp -a /var/tmp/protea_reaper/pg16 "$PROTEA_CACHE/pg16"
fi
. "$TREE/test/lib.sh"
ensure_server >&2
build_and_install >&2
make_workdir
trap stop_clusters EXIT
start_cluster bench "protea_reaper.enabled = off" >&2

q() {
    (cd "$WORKDIR" && runuser -u postgres -- "$PG_BIN/psql" -h "$WORKDIR" -p "$PORT" \
        -X -q -P pager=off -d bench "$@")
}
# session SQL...: one session with the measured settings; its output
session() {
    local set="SET jit = $JIT; SET statement_timeout = '$TIMEOUT';"
    q -At -v ON_ERROR_STOP=0 -c "$set $*" 2>&1
}
median() {
    grep -E '^[0-9.]+$' | sort -g | awk '{v[NR] = $1}
        END { if (NR == 0) print "cancelled"; else printf "%.3f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

q -v ON_ERROR_STOP=1 -f "$TREE/test/protea_schema.sql" >/dev/null
q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION protea_reaper"
q -v ON_ERROR_STOP=1 -f "$TREE/bench/sql/datagen.sql" >/dev/null
q -c "SET session_replication_role = replica" -c "SELECT bench.add_finished(1, $FINISHED)" >/dev/null
q -c "SET session_replication_role = replica" -c "SELECT bench.add_running(1, 4000, 2000)" >/dev/null
q -c "VACUUM ANALYZE" >/dev/null

REPORT=$OUT/report.md
{
    echo "$(q -At -c "SELECT extversion FROM pg_extension WHERE extname = 'protea_reaper'") ($(cd "$TREE" && git rev-parse --short HEAD 2>/dev/null || echo '?')) on $(q -At -c 'SHOW server_version'), jit = $JIT, statement_timeout = $TIMEOUT; shape (finished running stale alive young events): $(q -At -F' ' -c 'SELECT * FROM bench.shape()')"
    echo
    echo "| rows | statements, all / longest (bytes) | idle sweep (ms) | running_jobs() (ms) | reap of $MASS (ms) | jobs/s | idle backend peak RSS (MB) |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} | tee "$REPORT"

for n in $ROWS; do
    q -c "TRUNCATE protea_reaper_policy" \
      -c "INSERT INTO protea_reaper_policy (operation, timeout_seconds, stall_seconds)
          SELECT 'bench_op_' || i, 43200, 7200 FROM generate_series(1, $n) AS i" >/dev/null
    sql=$(q -At -F' / ' -c "SELECT sum(length(statement)), max(length(statement)) FROM protea_reaper_statements()")

    # the peak RSS is read while the session is still open
    idle_out=$(q -At -v ON_ERROR_STOP=0 2>&1 <<EOF
SET jit = $JIT; SET statement_timeout = '$TIMEOUT';
SET protea_reaper.stall_seconds = '30d';
$(for _ in $(seq 1 $((WARMUP + RUNS))); do echo "BEGIN; SELECT round(server_ms::numeric, 3) FROM bench.timed_run_once(); ROLLBACK;"; done)
SELECT pg_backend_pid() AS backend \gset
\setenv BACKEND_PID :backend
\! grep VmHWM /proc/\$BACKEND_PID/status
EOF
)
    idle=$(echo "$idle_out" | grep -E '^[0-9.]+$' | tail -n "$RUNS" | median)
    rss=$(echo "$idle_out" | awk '/VmHWM/ {printf "%.1f", $2 / 1024}')

    list=$(session "$(for _ in $(seq 1 "$LIST_RUNS"); do echo "SELECT round(server_ms::numeric, 3) FROM bench.measure('SELECT count(*) FROM protea_reaper_running_jobs()');"; done)" | median)

    mass_out=$(session "$(for _ in $(seq 1 "$MASS_RUNS"); do echo "CHECKPOINT; BEGIN; SELECT bench.refresh_alive(); SELECT bench.add_mass($MASS); SELECT reaped || ' ' || round(server_ms::numeric, 3) FROM bench.timed_run_once(); ROLLBACK;"; done)")
    reap=$(echo "$mass_out" | awk 'NF == 2 && $1 ~ /^[0-9]+$/ {print $2}' | median)
    reaped=$(echo "$mass_out" | awk 'NF == 2 && $1 ~ /^[0-9]+$/ {print $1; exit}')
    jobs=$(awk -v r="${reaped:-0}" -v ms="$reap" 'BEGIN { if (ms + 0 > 0) printf "%.0f", r / (ms / 1000); else print "-" }')
    # the rolled-back jobs and events would slow the next count's idle sweep
    q -c "VACUUM ANALYZE job" -c "VACUUM ANALYZE job_event" >/dev/null
    echo "| $n | $sql | $idle | $list | $reap | $jobs | ${rss:--} |" | tee -a "$REPORT"
done
echo
echo "report: $REPORT"
