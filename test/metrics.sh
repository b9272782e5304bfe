#!/usr/bin/env bash
# test/metrics.sh: the Prometheus surface (monitoring/), with the real tools
# from Debian 12's archive: prometheus-postgres-exporter (0.11) and promtool
# (package prometheus).
#
#   sudo bash test/metrics.sh                 # the host's PostgreSQL 15
#   sudo PG_MAJOR=16 bash test/metrics.sh     # 16, built into $PROTEA_CACHE
#
# Builds and installs the extension for PG_MAJOR (test/lib.sh), starts a
# throwaway cluster preloading it (interval 1 h: a cycle's numbers stay),
# lays out PROTEA's tables in database protea with a job of each kind
# (stalled, alive, capped, lease lapsed with and without re-queues left,
# and one whose row another transaction holds), creates the extension and
# checks the reaper's first cycle; then a false alarm, a wake, and the
# second cycle.  Then postgres_exporter, as a role that is only in
# pg_monitor, with monitoring/protea_reaper_queries.yaml and its default
# metrics off, on a free localhost port; /metrics must show the reaper's
# and the launcher's series with their values (reaped by cause, running,
# stale, false alarms, up 1), their types, no scrape error, and every
# metric that monitoring/protea_reaper_alerts.yml uses.  Last,
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
protea_reaper.max_lease_requeues = 1"
sql() { as_pg psql -h "$WORKDIR" -p "$PORT" -X -q -A -t -v ON_ERROR_STOP=1 -d protea "$@"; }
fail_setup() { echo "$1"; echo; echo "0 passed, 1 failed"; exit 1; }

say "PostgreSQL $PG_MAJOR: PROTEA's tables, a job of each kind, then the extension"
sql -f "$WORKDIR/tree/test/protea_schema.sql" >/dev/null
sql <<'SQL' || fail_setup "setup failed"
-- 1, 2: stale: running 7 h (timeout 6 h), silent; 3: alive, an event a
-- minute ago; 4, 5: their leases lapsed 3 min ago, 5 re-queued once
-- already (the budget is 1); 6: past its operation's cap, alive
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags,
                 leased_until)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid,
       CASE WHEN n = 6 THEN 'long_op' ELSE 'insert_proteins' END, 'q', 'RUNNING',
       now() - '7 h'::interval,
       CASE WHEN n IN (4, 5) THEN now() - '10 min'::interval
            WHEN n = 6 THEN now() - '2 h'::interval ELSE now() - '7 h'::interval END,
       '{}', '{}', '{}',
       CASE WHEN n IN (4, 5) THEN now() - '3 min'::interval END
  FROM generate_series(1, 6) AS n;
INSERT INTO job_event (job_id, ts, level, event, message, fields)
VALUES ('00000000-0000-0000-0000-000000000003', now() - '1 min'::interval, 'info', 'job.progress', 'working', '{}'),
       ('00000000-0000-0000-0000-000000000006', now() - '1 min'::interval, 'info', 'job.progress', 'working', '{}'),
       ('00000000-0000-0000-0000-000000000005', now() - '20 min'::interval, 'warning',
        'job.lease_expired_requeue', 'Lease expired; re-enqueued attempt 1/1', '{}');
CREATE ROLE protea_exporter LOGIN IN ROLE pg_monitor;
SQL

# Job 2's row is held by another transaction during the first cycle
sql -c "BEGIN; SELECT 1 FROM job WHERE id = '00000000-0000-0000-0000-000000000002' FOR UPDATE; SELECT pg_sleep(300) /* holder */; COMMIT;" >/dev/null 2>&1 &
for _ in $(seq 1 40); do
    [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%/* holder */%' AND wait_event = 'PgSleep'")" = 1 ] && break
    sleep 0.25
done
# the reaper starts when CREATE EXTENSION commits, and sweeps at once
sql <<'SQL' || fail_setup "CREATE EXTENSION failed"
BEGIN;
CREATE EXTENSION protea_reaper;
INSERT INTO protea_reaper_policy (operation, max_runtime_seconds) VALUES ('long_op', 3600);
COMMIT;
SQL
# wait_cycles N: until the reaper of protea has run N cycles
wait_cycles() {
    for _ in $(seq 1 60); do
        [ "$(sql -c "SELECT cycles >= $1 FROM protea_reaper_metrics WHERE database = 'protea'")" = t ] && return 0
        sleep 0.5
    done
    return 1
}
wait_cycles 1 || fail_setup "no first cycle: $(sql -c 'SELECT state, last_error FROM protea_reaper_status()')"
check "the first cycle: 4 reaped (stalled, capped, lease expired, re-queued), 1 alive, 1 skipped locked" \
    test "$(sql -c "SELECT total_reaped, total_stalled, total_capped, total_lease_expired, total_requeued,
                           last_alive, last_skipped_locked, total_skipped_locked
                      FROM protea_reaper_metrics WHERE database = 'protea'")" = "4|1|1|1|1|1|1|1"
check "the first cycle saw 6 running jobs and left 1 stale, started 7 h ago" \
    test "$(sql -c "SELECT last_running, last_stale, round(last_oldest_stale_seconds / 3600), false_alarms
                      FROM protea_reaper_metrics WHERE database = 'protea'")" = "6|1|7|0"
check "the job table agrees: jobs 1, 5, 6 FAILED, 4 QUEUED" \
    test "$(sql -c "SELECT string_agg(right(id::text, 1) || ':' || status || ':' || coalesce(error_code, ''), ',' ORDER BY id) FROM job")" \
    = "1:FAILED:JobTimeout,2:RUNNING:,3:RUNNING:,4:QUEUED:,5:FAILED:lease_expired,6:FAILED:JobTimeout"

# The holder lets go; job 1's worker was alive after all (an event after
# its failure): a false alarm.  A wake runs the second cycle, and counts it.
sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%/* holder */%' AND pid <> pg_backend_pid()" >/dev/null
sql -c "INSERT INTO job_event (job_id, ts, level, event, message, fields)
        VALUES ('00000000-0000-0000-0000-000000000001', now(), 'info', 'job.progress', 'still here', '{}')"
sql -c "SELECT protea_reaper_wake()" >/dev/null
wait_cycles 2 || fail_setup "no second cycle"
check "the second cycle: job 2 reaped, 2 running seen, none stale, 1 false alarm" \
    test "$(sql -c "SELECT total_reaped, total_stalled, last_reaped, last_running, last_stale,
                           last_oldest_stale_seconds IS NULL, false_alarms
                      FROM protea_reaper_metrics WHERE database = 'protea'")" = "5|2|1|2|0|t|1"
check "the doctor counts the same false alarm" \
    test "$(sql -c "SELECT detail LIKE '1 job(s)%' OR detail LIKE '%: 1 job%' FROM protea_reaper_check() WHERE \"check\" = 'false alarms'")" = t

say "postgres_exporter $("$EXPORTER" --version 2>&1 | head -n 1 | awk '{print $3}') with monitoring/protea_reaper_queries.yaml"
# scrape DB FILE: start the exporter on DB, save one scrape in FILE, stop it
scrape() {
    local eport
    eport=$(free_port)
    DATA_SOURCE_NAME="host=$WORKDIR port=$PORT user=protea_exporter dbname=$1 sslmode=disable" \
        "$EXPORTER" --extend.query-path="$WORKDIR/queries.yaml" \
        --web.listen-address="127.0.0.1:$eport" \
        --disable-default-metrics --disable-settings-metrics \
        --no-collector.database --no-collector.bgwriter \
        >> "$WORKDIR/exporter.log" 2>&1 &
    EXPORTER_PID=$!
    for _ in $(seq 1 40); do
        curl -sf "http://127.0.0.1:$eport/metrics" -o "$2" && break
        sleep 0.25
    done
    kill "$EXPORTER_PID" 2>/dev/null
    wait "$EXPORTER_PID" 2>/dev/null
    EXPORTER_PID=
}
cp "$MON/protea_reaper_queries.yaml" "$WORKDIR/queries.yaml"
SCRAPE=$WORKDIR/metrics.txt
scrape protea "$SCRAPE"

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
check "protea_reaper_reaped_total 5" metric protea_reaper_reaped_total "$D" 5
for cause in stalled:2 capped:1 lease_expired:1 requeued:1; do
    check "protea_reaper_jobs_total{cause=${cause%:*}} ${cause#*:}" \
        metric protea_reaper_jobs_total "cause=\"${cause%:*}\",$D" "${cause#*:}"
done
check "protea_reaper_cycles_total 2" metric protea_reaper_cycles_total "$D" 2
check "protea_reaper_failed_cycles_total 0" metric protea_reaper_failed_cycles_total "$D" 0
check "protea_reaper_starts_total 1" metric protea_reaper_starts_total "$D" 1
check "protea_reaper_skipped_locked_total 1" metric protea_reaper_skipped_locked_total "$D" 1
check "protea_reaper_last_reaped 1" metric protea_reaper_last_reaped "$D" 1
check "protea_reaper_last_waiting 0" metric protea_reaper_last_waiting "$D" 0
check "protea_reaper_last_alive 1" metric protea_reaper_last_alive "$D" 1
check "protea_reaper_last_skipped_locked 0" metric protea_reaper_last_skipped_locked "$D" 0
check "protea_reaper_running 2" metric protea_reaper_running "$D" 2
check "protea_reaper_stale 0" metric protea_reaper_stale "$D" 0
check "protea_reaper_oldest_stale_seconds NaN (none left)" metric protea_reaper_oldest_stale_seconds "$D" NaN
check "protea_reaper_false_alarms 1" metric protea_reaper_false_alarms "$D" 1
check "protea_reaper_interval_seconds 3600" metric protea_reaper_interval_seconds "$D" 3600
check "protea_reaper_last_cycle_seconds in [0, 10)" metric_cmp protea_reaper_last_cycle_seconds "$D" 'v >= 0 && v < 10'
check "protea_reaper_seconds_since_last_cycle in [0, 120)" metric_cmp protea_reaper_seconds_since_last_cycle "$D" 'v >= 0 && v < 120'
check "protea_reaper_launcher_up 1" metric protea_reaper_launcher_up '' 1
check "protea_reaper_launcher_in_recovery 0" metric protea_reaper_launcher_in_recovery '' 0
check "protea_reaper_launcher_scans_total >= 1" metric_cmp protea_reaper_launcher_scans_total '' 'v >= 1'
check "counters are typed counter" eval 'for m in starts cycles failed_cycles reaped jobs skipped_locked; do typed protea_reaper_${m}_total counter || exit 1; done'
check "gauges are typed gauge" eval 'for m in up last_reaped last_waiting last_cycle_seconds running stale oldest_stale_seconds false_alarms launcher_up; do typed protea_reaper_$m gauge || exit 1; done'
# the alert rules use only metrics the exporter gives
check "every metric of the alert rules is scraped" eval '
    for m in $(grep -E "^ *expr:" "$MON/protea_reaper_alerts.yml" | grep -o "protea_reaper_[a-z_]*" | sort -u); do
        grep -q "^$m{" "$SCRAPE" || { echo "$m: not in the scrape"; exit 1; }
    done'

# The same queries file on a database still at 1.3 (a staged upgrade):
# every query runs, the 1.3 series are there, 1.4's are NaN or absent
say "the queries file on a database whose extension is still 1.3"
sql -c "CREATE DATABASE protea13"
as_pg psql -h "$WORKDIR" -p "$PORT" -X -q -v ON_ERROR_STOP=1 -d protea13 \
    -c "SET client_min_messages = error" -c "CREATE EXTENSION protea_reaper VERSION '1.3'"
SCRAPE=$WORKDIR/metrics13.txt
scrape protea13 "$SCRAPE"
check "1.3: the queries ran without error" metric pg_exporter_last_scrape_error '' 0
check "1.3: protea_reaper_up and reaped_total 5 of database protea" \
    eval 'metric protea_reaper_up "$D" 1 && metric protea_reaper_reaped_total "$D" 5'
check "1.3: 1.4's gauges are NaN" \
    eval 'for m in running stale false_alarms; do metric protea_reaper_$m "$D" NaN || exit 1; done'
check "1.3: no series by cause" eval '! grep "^protea_reaper_jobs_total" "$SCRAPE"'

say "promtool $("$PROMTOOL" --version 2>&1 | head -n 1 | awk '{print $3}')"
check "promtool check rules protea_reaper_alerts.yml" "$PROMTOOL" check rules "$MON/protea_reaper_alerts.yml"
check "promtool test rules (each alert fires and clears)" \
    bash -c 'cd "$1" && "$2" test rules protea_reaper_alerts_test.yml' _ "$MON" "$PROMTOOL"

[ "$FAILED" -ne 0 ] && { echo "---- exporter log (tail)"; tail -n 20 "$WORKDIR/exporter.log"; }
echo
echo "PostgreSQL $PG_MAJOR: $(as_pg psql -h "$WORKDIR" -p "$PORT" -X -A -t -d protea -c 'SELECT version()' 2>/dev/null | cut -d, -f1); $(( $(date +%s) - T0 )) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
