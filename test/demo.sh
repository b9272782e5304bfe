#!/usr/bin/env bash
# test/demo.sh: watch protea_reaper work on a throwaway local cluster.
#
# Installs what it needs, builds and installs the extension, starts a
# cluster in a temporary directory with the worker preloaded (interval 1 s,
# timeout 20 s, stall 10 s), loads a small PROTEA data set with stuck jobs
# (PROTEA's own tables: labels RUNNING, FAILED, ...; leases),
# turns the worker on and shows what it failed, what it left alone, and why.
# The cluster is stopped and removed on exit.
set -eu
. "$(dirname "$0")/lib.sh"

ensure_packages
build_and_install
make_workdir
EMITTER=
cleanup() { [ -n "$EMITTER" ] && kill "$EMITTER" 2>/dev/null; stop_clusters; }
trap cleanup EXIT

start_cluster protea_demo "protea_reaper.interval_seconds = 1
protea_reaper.timeout_seconds = 20
protea_reaper.stall_seconds = 10
protea_reaper.enabled = off
protea_reaper.log_skipped = on"

sql() { as_pg psql -h "$WORKDIR" -p "$PORT" -X -q -v ON_ERROR_STOP=1 -P pager=off -d protea_demo "$@"; }
sql -f "$WORKDIR/tree/test/protea_schema.sql"
sql -c "CREATE EXTENSION protea_reaper"

say "A PROTEA job table with stuck jobs (timeout 20 s, stall 10 s)"
sql <<'SQL'
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, finished_at, leased_until, payload, meta, tags)
SELECT v.*, '{}', '{}', '{}' FROM (VALUES
 ('00000000-0000-0000-0000-00000000000a'::uuid, 'insert_proteins', 'proteins', 'RUNNING'::job_status, now() - '10 min'::interval, now() - '10 min'::interval, NULL::timestamptz, NULL::timestamptz),
 ('00000000-0000-0000-0000-00000000000b', 'insert_proteins',    'proteins',   'RUNNING',   now() - '9 min'::interval,  now() - '9 min'::interval,  NULL, NULL),
 ('00000000-0000-0000-0000-00000000000c', 'compute_embeddings', 'embeddings', 'RUNNING',   now() - '8 min'::interval,  now() - '8 min'::interval,  NULL, NULL),
 ('00000000-0000-0000-0000-00000000000d', 'predict_go_terms',   'go',         'RUNNING',   now(),                      now(),                      NULL, NULL),
 ('00000000-0000-0000-0000-00000000000e', 'insert_proteins',    'proteins',   'SUCCEEDED', now() - '10 min'::interval, now() - '10 min'::interval, now() - '9 min'::interval, NULL),
 ('00000000-0000-0000-0000-00000000000f', 'insert_proteins',    'proteins',   'RUNNING',   now() - '10 min'::interval, NULL,                       NULL, NULL),
 ('00000000-0000-0000-0000-000000000010', 'insert_proteins',    'proteins',   'RUNNING',   now() - '10 min'::interval, now() - '10 min'::interval, NULL, now() + '10 s'::interval)) AS v;
INSERT INTO job_event (job_id, ts, level, event, message, fields) VALUES
 ('00000000-0000-0000-0000-00000000000a', now() - '5 min'::interval, 'info', 'job.progress', 'worker went quiet 5 min ago', '{}'),
 ('00000000-0000-0000-0000-00000000000c', now(), 'info', 'job.progress', 'coordinator: child batch done', '{}');
SQL
echo "  a, b: running for minutes, silent (a: last event 5 min ago, b: never)  -> stale"
echo "  c: a coordinator running 8 min whose child batches keep emitting events -> alive"
echo "  d: just started, no events yet -> young, until it passes the 20 s timeout"
echo "  10: silent for 10 min, but its worker holds a lease for 10 s more -> leased; once it lapses"
echo "      (plus lease_grace_seconds, 15 s), its worker is dead: failed lease_expired, as PROTEA's reaper does"
echo "  e: SUCCEEDED; f: running without started_at -> never touched"

# c's children keep it alive: an event every 2 s
( while :; do
    sql -c "INSERT INTO job_event (job_id, level, event, message, fields) VALUES ('00000000-0000-0000-0000-00000000000c', 'info', 'job.progress', 'child batch done', '{}')" 2>/dev/null || exit 0
    sleep 2
  done ) &
EMITTER=$!

sql -c "SELECT right(job_id::text, 2) AS job, operation, verdict, date_trunc('second', running_for) AS running_for, date_trunc('second', silent_for) AS silent_for, date_trunc('second', leased_until - now()) AS lease_left FROM protea_reaper_running_jobs()"
say "The worker is preloaded but disabled"
# it started before protea_demo existed; the postmaster restarts it within 5 s
for _ in $(seq 1 15); do
    [ "$(sql -At -c "SELECT pid IS NOT NULL FROM protea_reaper_status() WHERE database = current_database()")" = t ] && break
    sleep 1
done
sql -c "SELECT pid IS NOT NULL AS worker_running, state, enabled, interval_seconds, timeout_seconds, stall_seconds, cycles, total_reaped FROM protea_reaper_status() WHERE database = current_database()"

say "Turning it on: ALTER SYSTEM SET protea_reaper.enabled = on; SELECT pg_reload_conf();"
sql -c "ALTER SYSTEM SET protea_reaper.enabled = on" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 30); do
    [ "$(sql -At -c "SELECT total_reaped >= 2 FROM protea_reaper_status() WHERE database = current_database()")" = t ] && break
    sleep 1
done
sql -c "SELECT right(id::text, 2) AS job, operation, status, error_code, error_message FROM job ORDER BY id"

say "Waiting for job d to pass the 20 s timeout without a single event, and job 10's lease to lapse..."
for _ in $(seq 1 40); do
    [ "$(sql -At -c "SELECT count(*) FROM job WHERE id IN ('00000000-0000-0000-0000-00000000000d', '00000000-0000-0000-0000-000000000010') AND status = 'FAILED'")" = 2 ] && break
    sleep 1
done
sql -c "SELECT right(id::text, 2) AS job, operation, status, error_code FROM job ORDER BY id"

say "The audit trail: one job.timeout (or job.lease_expired) event per failed job"
sql -c "SELECT right(job_id::text, 2) AS job, level, event, fields FROM job_event WHERE event IN ('job.timeout', 'job.lease_expired') ORDER BY id"

say "What the reaper logged"
grep -E "protea_reaper|Reap" "$WORKDIR/server.log" | grep -v "skipped live job" | sed 's/^[^]]*] //' | head -20
echo "  ... and $(grep -c 'Reaper skipped live job' "$WORKDIR/server.log") 'Reaper skipped live job.' lines for jobs c and 10"

say "protea_reaper_status() now"
sql -x -c "SELECT * FROM protea_reaper_status()"

say "The doctor: SELECT * FROM protea_reaper_check();  (each row that is not ok carries its fix)"
sql -c "SELECT \"check\", ok, coalesce(hint, detail) AS \"detail, or the fix\" FROM protea_reaper_check()"
echo
echo "Demo done; the cluster is stopped and removed."
