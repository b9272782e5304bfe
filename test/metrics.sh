#!/usr/bin/env bash
# test/metrics.sh: the Prometheus surface (monitoring/), with the real tools
# from Debian 12's archive: prometheus-postgres-exporter (0.11) and promtool
# (package prometheus).
#
#   sudo bash test/metrics.sh                 # the host's PostgreSQL 15
#   sudo PG_MAJOR=16 bash test/metrics.sh     # 16, built into $PROTEA_CACHE
#
# Builds and installs the extension for PG_MAJOR (test/lib.sh), starts a
# throwaway cluster preloading it (interval 1 h: the first cycle's numbers
# stay; the brake at 1 job), lays out PROTEA's tables in database protea
# with two stale jobs and one alive past its timeout, creates the extension
# and waits for the reaper's first cycle.  Then postgres_exporter, as a role
# that is only in pg_monitor, with monitoring/protea_reaper_queries.yaml
# and its default metrics off, on a free localhost port; /metrics must show
# the reaper's and the launcher's series with their values (1 reaped,
# 1 waiting behind the brake, 1 alive, up 1), their types, no scrape error,
# and every metric that monitoring/protea_reaper_alerts.yml uses.  Last,
# `promtool check rules` and `promtool test rules` (each alert fires and
# clears).  Ends with "N passed, N failed"; the cluster and the exporter are
# always stopped.  17 and 18 run in chroots (test/lib.sh), where these tools
# are not: the host's 15 or 16 only.
set -u
. "$(dirname "$0")/lib.sh"

if [ "$PG_FROM" = chroot ]; then
    echo "test/metrics.sh runs on the host's PostgreSQL (PG_MAJOR=15 or 16), not $PG_MAJOR" >&2
    exit 2
fi
PACKAGES="$PACKAGES prometheus-postgres-exporter prometheus curl"
MON=$REPO/monitoring
PASSED=0
FAILED=0
EXPORTER_PID=
T0=$(date +%s)

# check NAME COMMAND...: one counted check, its output shown when it fails
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        echo "$name ... ok"; PASSED=$((PASSED + 1))
    else
        echo "$name ... FAILED"; FAILED=$((FAILED + 1))
        [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/    /' | tail -n 40
    fi
}

cleanup() {
    if [ -n "$EXPORTER_PID" ]; then
        kill "$EXPORTER_PID" 2>/dev/null
        wait "$EXPORTER_PID" 2>/dev/null
    fi
    stop_clusters
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_server || exit 1
build_and_install || { echo "build failed"; echo; echo "0 passed, 1 failed"; exit 1; }
EXPORTER=$(command -v prometheus-postgres-exporter)
PROMTOOL=$(command -v promtool)

make_workdir
start_cluster protea "protea_reaper.interval_seconds = 3600
protea_reaper.max_jobs_per_cycle = 1"
sql() { as_pg psql -h "$WORKDIR" -p "$PORT" -X -q -A -t -v ON_ERROR_STOP=1 -d protea "$@"; }

say "PostgreSQL $PG_MAJOR: PROTEA's tables, two stale jobs and one alive, then the extension"
sql -f "$WORKDIR/tree/test/protea_schema.sql" >/dev/null
sql <<'SQL' || { echo "setup failed"; echo; echo "0 passed, 1 failed"; exit 1; }
-- stale: running 7 h (timeout 6 h), silent for 7 h
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, 'insert_proteins', 'q', 'RUNNING',
       now() - '7 h'::interval, now() - '7 h'::interval, '{}', '{}', '{}'
  FROM generate_series(1, 3) AS n;
-- job 3 is alive: an event a minute ago
INSERT INTO job_event (job_id, ts, level, event, message, fields)
VALUES ('00000000-0000-0000-0000-000000000003', now() - '1 min'::interval, 'info', 'job.progress', 'working', '{}');
CREATE ROLE protea_exporter LOGIN IN ROLE pg_monitor;
CREATE EXTENSION protea_reaper;
SQL

# The reaper starts when CREATE EXTENSION commits, and sweeps at once
reaped=
for _ in $(seq 1 60); do
    reaped=$(sql -c "SELECT total_reaped FROM protea_reaper_metrics WHERE database = 'protea' AND cycles > 0")
    [ -n "$reaped" ] && break
    sleep 0.5
done
check "the reaper's first cycle failed one job, the brake left one" \
    test "$(sql -c "SELECT cycles, total_reaped, last_reaped, last_waiting, last_alive FROM protea_reaper_metrics WHERE database = 'protea'")" = "1|1|1|1|1"
check "the job table agrees: one FAILED, two RUNNING" \
    test "$(sql -c "SELECT string_agg(status::text, ',' ORDER BY status) FROM job")" = "RUNNING,RUNNING,FAILED"

say "postgres_exporter $("$EXPORTER" --version 2>&1 | head -n 1 | awk '{print $3}') with monitoring/protea_reaper_queries.yaml"
EPORT=$(free_port)
cp "$MON/protea_reaper_queries.yaml" "$WORKDIR/queries.yaml"
DATA_SOURCE_NAME="host=$WORKDIR port=$PORT user=protea_exporter dbname=protea sslmode=disable" \
    "$EXPORTER" --extend.query-path="$WORKDIR/queries.yaml" \
    --web.listen-address="127.0.0.1:$EPORT" \
    --disable-default-metrics --disable-settings-metrics \
    --no-collector.database --no-collector.bgwriter \
    > "$WORKDIR/exporter.log" 2>&1 &
EXPORTER_PID=$!
SCRAPE=$WORKDIR/metrics.txt
for _ in $(seq 1 40); do
    curl -sf "http://127.0.0.1:$EPORT/metrics" -o "$SCRAPE" && break
    sleep 0.25
done

# series NAME LABEL: the scrape's lines of NAME with that label (e.g.
# database="protea"), or of any labels for ''
series() {
    if [ -n "$2" ]; then grep -E "^$1\{([^}]*,)?$2(,[^}]*)?\} " "$SCRAPE"
    else grep -E "^$1(\{[^}]*\})? " "$SCRAPE"; fi
}
# metric NAME LABEL VALUE: the scrape has one such series, with that value
metric() {
    local line
    line=$(series "$1" "$2")
    [ "$(printf '%s\n' "$line" | awk 'NF { print $NF }')" = "$3" ] ||
        { echo "expected $1{$2} $3, got: ${line:-nothing}"; grep '^protea_reaper' "$SCRAPE"; return 1; }
}
# metric_cmp NAME LABELS AWK-CONDITION: its value satisfies the condition on v
metric_cmp() {
    local line
    line=$(series "$1" "$2")
    [ "$(printf '%s\n' "$line" | grep -c .)" -eq 1 ] && printf '%s\n' "$line" | awk "{ v = \$NF + 0; exit !($3) }" ||
        { echo "expected $1{$2} with $3, got: ${line:-nothing}"; return 1; }
}
typed() { grep -qx "# TYPE $1 $2" "$SCRAPE" || { echo "no '# TYPE $1 $2'"; grep "^# TYPE $1 " "$SCRAPE"; return 1; }; }

check "the exporter serves /metrics" test -s "$SCRAPE"
check "the queries ran without error" metric pg_exporter_last_scrape_error '' 0
D='database="protea"'
check "protea_reaper_up{database=protea} 1" metric protea_reaper_up "$D" 1
check "protea_reaper_reaped_total 1" metric protea_reaper_reaped_total "$D" 1
check "protea_reaper_cycles_total 1" metric protea_reaper_cycles_total "$D" 1
check "protea_reaper_failed_cycles_total 0" metric protea_reaper_failed_cycles_total "$D" 0
check "protea_reaper_starts_total 1" metric protea_reaper_starts_total "$D" 1
check "protea_reaper_last_reaped 1" metric protea_reaper_last_reaped "$D" 1
check "protea_reaper_last_waiting 1 (the brake)" metric protea_reaper_last_waiting "$D" 1
check "protea_reaper_last_alive 1" metric protea_reaper_last_alive "$D" 1
check "protea_reaper_last_skipped_locked 0" metric protea_reaper_last_skipped_locked "$D" 0
check "protea_reaper_interval_seconds 3600" metric protea_reaper_interval_seconds "$D" 3600
check "protea_reaper_last_cycle_seconds in [0, 10)" metric_cmp protea_reaper_last_cycle_seconds "$D" 'v >= 0 && v < 10'
check "protea_reaper_seconds_since_last_cycle in [0, 120)" metric_cmp protea_reaper_seconds_since_last_cycle "$D" 'v >= 0 && v < 120'
check "protea_reaper_launcher_up 1" metric protea_reaper_launcher_up '' 1
check "protea_reaper_launcher_in_recovery 0" metric protea_reaper_launcher_in_recovery '' 0
check "protea_reaper_launcher_scans_total >= 1" metric_cmp protea_reaper_launcher_scans_total '' 'v >= 1'
check "counters are typed counter" eval 'for m in starts cycles failed_cycles reaped; do typed protea_reaper_${m}_total counter || exit 1; done'
check "gauges are typed gauge" eval 'for m in up last_reaped last_waiting last_cycle_seconds launcher_up; do typed protea_reaper_$m gauge || exit 1; done'
# the alert rules use only metrics the exporter gives
check "every metric of the alert rules is scraped" eval '
    for m in $(grep -E "^ *expr:" "$MON/protea_reaper_alerts.yml" | grep -o "protea_reaper_[a-z_]*" | sort -u); do
        grep -q "^$m{" "$SCRAPE" || { echo "$m: not in the scrape"; exit 1; }
    done'

say "promtool $("$PROMTOOL" --version 2>&1 | head -n 1 | awk '{print $3}')"
check "promtool check rules protea_reaper_alerts.yml" "$PROMTOOL" check rules "$MON/protea_reaper_alerts.yml"
check "promtool test rules (each alert fires and clears)" \
    bash -c 'cd "$1" && "$2" test rules protea_reaper_alerts_test.yml' _ "$MON" "$PROMTOOL"

[ "$FAILED" -ne 0 ] && { echo "---- exporter log (tail)"; tail -n 20 "$WORKDIR/exporter.log"; }
echo
echo "PostgreSQL $PG_MAJOR: $(as_pg psql -h "$WORKDIR" -p "$PORT" -X -A -t -d protea -c 'SELECT version()' 2>/dev/null | cut -d, -f1); $(( $(date +%s) - T0 )) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
