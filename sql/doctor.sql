--
-- doctor: protea_reaper_check(), a row per check with its exact fix, on a
-- healthy setup and on each broken setup it detects.  The rows about the
-- worker (preloaded, worker, database) depend on shared_preload_libraries:
-- regress preload shows them, TAP's 080_runbook checks them with a worker.
--
SELECT fixture_load();
DELETE FROM protea_reaper_policy;

\x on

-- PROTEA's tables as they come: everything that can be right here is,
-- but no index finds the running jobs by started_at
SELECT * FROM protea_reaper_check() WHERE "check" NOT IN ('preloaded', 'worker', 'database');

-- The README's index
CREATE INDEX job_running_started_at ON job (started_at) INCLUDE (id, operation)
    WHERE status = 'RUNNING';
SELECT "check", ok, detail FROM protea_reaper_check() WHERE "check" = 'started_at index';

-- Thresholds that contradict each other: the settings, and policy rows
-- whose own values are fine but not with the settings they inherit
SET protea_reaper.stall_seconds = 21600;
SELECT "check", ok, detail, hint FROM protea_reaper_check() WHERE "check" = 'thresholds';
RESET protea_reaper.stall_seconds;
INSERT INTO protea_reaper_policy (operation, timeout_seconds) VALUES ('insert_proteins', 900);
INSERT INTO protea_reaper_policy (operation, max_runtime_seconds) VALUES ('predict_go_terms', 600);
INSERT INTO protea_reaper_policy (operation, exempt) VALUES ('compute_embeddings', true);
SELECT "check", ok, detail, hint FROM protea_reaper_check() WHERE "check" = 'thresholds';
-- ... and the fixes it gives make it right
UPDATE protea_reaper_policy SET stall_seconds = 450 WHERE operation = 'insert_proteins';
UPDATE protea_reaper_policy SET max_runtime_seconds = 43200 WHERE operation = 'predict_go_terms';
SELECT "check", ok, detail FROM protea_reaper_check() WHERE "check" = 'thresholds';
DELETE FROM protea_reaper_policy;

-- A running job older than twice its timeout: a lease keeps job 10 (13 h)
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags,
                 leased_until)
VALUES ('00000000-0000-0000-0000-000000000010', 'compute_embeddings', 'q', 'RUNNING',
        now() - '13 h'::interval, now() - '13 h'::interval, '{}', '{}', '{}',
        now() + '5 min'::interval);
SELECT "check", ok, detail, hint FROM protea_reaper_check() WHERE "check" = 'overdue jobs';
-- an exempt operation may run that long
INSERT INTO protea_reaper_policy (operation, exempt) VALUES ('compute_embeddings', true);
SELECT "check", ok FROM protea_reaper_check() WHERE "check" = 'overdue jobs';
DELETE FROM protea_reaper_policy;
DELETE FROM job WHERE id = '00000000-0000-0000-0000-000000000010';

-- A worker's clock an hour ahead: job 2's newest event is from the future
INSERT INTO job_event (job_id, ts, level, event, message, fields)
VALUES ('00000000-0000-0000-0000-000000000002', clock_timestamp() + '1 h'::interval,
        'info', 'job.progress', 'from the future', '{}');
SELECT "check", ok, detail, hint FROM protea_reaper_check() WHERE "check" = 'clock skew';
DELETE FROM job_event WHERE message = 'from the future';

-- A false alarm: the sweep fails jobs 1 and 4 as stalled, then job 1's
-- worker, alive after all, writes an event.  It had been silent for an hour
-- (50 min before the reap, 10 after), longer than stall_seconds (30 min).
SELECT protea_reaper_run_once();
UPDATE job_event AS e SET ts = t.ts - '50 min'::interval
  FROM job_event AS t
 WHERE e.job_id = '00000000-0000-0000-0000-000000000001' AND e.event = 'job.progress'
   AND t.job_id = e.job_id AND t.event = 'job.timeout';
INSERT INTO job_event (job_id, ts, level, event, message, fields)
SELECT job_id, ts + '10 min'::interval, 'info', 'job.progress', 'still here', '{}'
  FROM job_event WHERE job_id = '00000000-0000-0000-0000-000000000001' AND event = 'job.timeout';
SELECT "check", ok, detail, hint FROM protea_reaper_check() WHERE "check" = 'false alarms';
-- The fix the hint gives: a valid row, and the evidence is answered
INSERT INTO protea_reaper_policy (operation, stall_seconds) VALUES ('insert_proteins', 5400)
    ON CONFLICT (operation) DO UPDATE SET stall_seconds = EXCLUDED.stall_seconds;
SELECT "check", ok, detail FROM protea_reaper_check() WHERE "check" IN ('thresholds', 'false alarms');
DELETE FROM protea_reaper_policy;
-- When the stall it needs passes the operation's timeout and cap, the hint
-- raises them too, and the statement it gives is valid as it stands
INSERT INTO protea_reaper_policy (operation, timeout_seconds, stall_seconds, max_runtime_seconds)
VALUES ('insert_proteins', 3600, 600, 4000);
SELECT "check", ok, hint FROM protea_reaper_check() WHERE "check" = 'false alarms';
DO $$
BEGIN
    EXECUTE (SELECT substring(hint FROM 'INSERT INTO .*') FROM protea_reaper_check()
              WHERE "check" = 'false alarms' AND NOT ok);
END
$$;
SELECT * FROM protea_reaper_policy;
SELECT "check", ok FROM protea_reaper_check() WHERE "check" IN ('thresholds', 'false alarms');
DELETE FROM protea_reaper_policy;
-- Jobs without an operation (a column PROTEA makes NOT NULL) can have no
-- policy row: the hint moves the settings
BEGIN;
ALTER TABLE job ALTER operation DROP NOT NULL;
UPDATE job SET operation = NULL WHERE id = '00000000-0000-0000-0000-000000000001';
SELECT "check", ok, detail, hint FROM protea_reaper_check() WHERE "check" = 'false alarms';
ROLLBACK;
-- A job failed by hand, or by the runtime cap, is not a false alarm
SELECT fixture_load();
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000002', 'node drained');
INSERT INTO job_event (job_id, ts, level, event, message, fields)
VALUES ('00000000-0000-0000-0000-000000000002', clock_timestamp(), 'info', 'job.progress', 'late', '{}');
SET protea_reaper.max_runtime_seconds = 23400;
SELECT protea_reaper_run_once();
RESET protea_reaper.max_runtime_seconds;
SELECT "check", ok FROM protea_reaper_check() WHERE "check" = 'false alarms';

-- Another reaper: PROTEA's own writes the same event names (job.timeout,
-- job.lease_expired) without protea_reaper's mark.  Its failures are not
-- counted as false alarms, and the doctor says a second reaper is running;
-- events of protea_reaper 1.0 and 1.1, which carried no mark, are still
-- recognised as its own (their messages): job 4's is a false alarm, job 1's
-- (PROTEA's) is not
SELECT fixture_load();
UPDATE job SET status = 'FAILED', error_code = 'JobTimeout', finished_at = now() - '50 min'::interval
 WHERE id IN ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000004');
INSERT INTO job_event (job_id, ts, level, event, message, fields) VALUES
    ('00000000-0000-0000-0000-000000000001', now() - '50 min'::interval, 'error', 'job.timeout',
     'Job exceeded timeout of 3600s', '{"timeout_seconds": 3600}'),
    ('00000000-0000-0000-0000-000000000001', now() - '40 min'::interval, 'info', 'job.progress',
     'still here', '{}'),
    ('00000000-0000-0000-0000-000000000004', now() - '50 min'::interval, 'error', 'job.timeout',
     'Job stalled: no activity in 1800s (started >21600s ago)',
     '{"timeout_seconds": 21600, "stall_seconds": 1800, "last_event_ts": null}'),
    ('00000000-0000-0000-0000-000000000004', now() - '45 min'::interval, 'info', 'job.progress',
     'still here', '{}');
\x on
SELECT "check", ok, regexp_replace(regexp_replace(detail, 'silent for up to \d+ s', 'silent for up to N s'),
                                   'the newest at [^,]+,', 'the newest at T,') AS detail,
       CASE WHEN "check" = 'another reaper' THEN hint END AS hint
  FROM protea_reaper_check()
 WHERE "check" IN ('false alarms', 'another reaper');
\x off

-- An unguarded finish: a job protea_reaper failed whose silent worker came
-- back and set SUCCEEDED by id, keeping the reaper's error_code
SELECT fixture_load();
SELECT protea_reaper_run_once();
UPDATE job SET status = 'SUCCEEDED', finished_at = now()
 WHERE id = '00000000-0000-0000-0000-000000000004';
SELECT status, error_code FROM job WHERE id = '00000000-0000-0000-0000-000000000004';
\x on
SELECT "check", ok, detail, hint FROM protea_reaper_check()
 WHERE "check" IN ('another reaper', 'unguarded finish');
\x off
-- The guarded finish the hint gives changes nothing on a failed job
SELECT fixture_load();
SELECT protea_reaper_run_once();
UPDATE job SET status = 'SUCCEEDED', finished_at = now()
 WHERE id = '00000000-0000-0000-0000-000000000004' AND status = 'RUNNING';
SELECT "check", ok FROM protea_reaper_check() WHERE "check" = 'unguarded finish';
\x on

-- The event index dropped (as during a restore): said, with the fix
BEGIN;
DROP INDEX job_event_job_id_ts, job_event_job_id_event;
SELECT "check", ok, detail, hint FROM protea_reaper_check() WHERE "check" = 'event index';
ROLLBACK;

-- A policy table altered so that it cannot be read: said, with the fix
BEGIN;
ALTER TABLE protea_reaper_policy RENAME COLUMN exempt TO exempted;
SELECT * FROM protea_reaper_check() WHERE "check" IN ('thresholds', 'overdue jobs');
ROLLBACK;

-- Tables that do not resolve: said, and the checks that need them are not run
SET protea_reaper.job_table = 'public.jobs';
SELECT * FROM protea_reaper_check() WHERE ok IS NOT TRUE AND "check" NOT IN ('preloaded', 'worker', 'database');
RESET protea_reaper.job_table;

-- A trigger whose function names a table without its schema: every sweep
-- fails, and says why; the doctor lists the function with the fix, which
-- makes the sweep work
\x off
CREATE TABLE audit_copy (job_id uuid, event text);
CREATE FUNCTION copy_event() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO audit_copy VALUES (NEW.job_id, NEW.event); RETURN NEW; END$$;
CREATE TRIGGER copy_event AFTER INSERT ON job_event FOR EACH ROW EXECUTE FUNCTION copy_event();
SELECT fixture_load();
\set SHOW_CONTEXT never
SELECT protea_reaper_run_once();
\set SHOW_CONTEXT errors
\x on
SELECT "check", ok, detail, hint FROM protea_reaper_check() WHERE "check" = 'triggers';
\x off
ALTER FUNCTION public.copy_event() SET search_path = public, pg_temp;
SELECT protea_reaper_run_once();
SELECT count(*) AS copied FROM audit_copy WHERE event = 'job.timeout';
SELECT "check", ok FROM protea_reaper_check() WHERE "check" = 'triggers';
DROP TRIGGER copy_event ON job_event;
DROP FUNCTION copy_event();
DROP TABLE audit_copy;

-- Row-level security forced on job applies to its owner, as whom the reaper
-- works: the jobs a policy hides are never reaped, and the doctor says so
SELECT fixture_load();
ALTER TABLE job ENABLE ROW LEVEL SECURITY;
SELECT "check", ok, detail FROM protea_reaper_check() WHERE "check" = 'row security';
CREATE POLICY only_insert_proteins ON job USING (operation = 'insert_proteins');
ALTER TABLE job FORCE ROW LEVEL SECURITY;
\x on
SELECT "check", ok, detail, hint FROM protea_reaper_check() WHERE "check" = 'row security';
\x off
ALTER TABLE job NO FORCE ROW LEVEL SECURITY;
DROP POLICY only_insert_proteins ON job;
ALTER TABLE job DISABLE ROW LEVEL SECURITY;
\x on

-- Checks that could not run say so with a NULL ok: a pg_monitor member
-- whose session has temporary objects may not read the tables as their owner
CREATE ROLE doctor_monitor IN ROLE pg_monitor;
SET ROLE doctor_monitor;
CREATE TEMP TABLE scratch (x int);
SELECT "check", ok, detail FROM protea_reaper_check()
 WHERE "check" IN ('overdue jobs', 'clock skew', 'false alarms');
DISCARD TEMP;
RESET ROLE;
\c
DROP ROLE doctor_monitor;
\x on

-- The doctor only reads: in a read-only transaction it gives the same rows
BEGIN READ ONLY;
SELECT count(*) AS checks FROM protea_reaper_check();
COMMIT;

\x off
DROP INDEX job_running_started_at;
