--
-- guards: a sweep undone by ROLLBACK leaves no trace; the thresholds are
-- strict; a job that has an event inside the stall window, or has no start
-- time, or is not running, is never failed.
--
SELECT fixture_load();

BEGIN;
SELECT protea_reaper_run_once();
SELECT count(*) AS failed_inside FROM job WHERE status = 'FAILED' AND error_code = 'JobTimeout';
ROLLBACK;

SELECT count(*) AS failed_after_rollback FROM job WHERE error_code = 'JobTimeout';
SELECT count(*) AS timeout_events_after_rollback FROM job_event WHERE event = 'job.timeout';

-- A stall window that reaches back past job 1's last event (1 h ago)
-- keeps it alive too; job 4, which has no events, is still stale.
BEGIN;
SET LOCAL protea_reaper.stall_seconds = '2h';
SELECT protea_reaper_run_once();
SELECT right(id::text, 2) AS job FROM job WHERE error_code = 'JobTimeout' ORDER BY id;
ROLLBACK;

-- A timeout longer than every job's age: nothing is stale
BEGIN;
SET LOCAL protea_reaper.timeout_seconds = '10h';
SELECT protea_reaper_run_once();
ROLLBACK;

-- A shorter timeout makes the young job 3 stale as well (it has no events)
BEGIN;
SET LOCAL protea_reaper.timeout_seconds = '30min';
SELECT protea_reaper_run_once();
SELECT right(id::text, 2) AS job FROM job WHERE error_code = 'JobTimeout' ORDER BY id;
ROLLBACK;

-- Nothing but running jobs with a start time is ever touched, even with
-- thresholds of one second (a timeout no longer than the stall window is
-- warned about, and the message stays true of a job never heard from)
BEGIN;
SET LOCAL protea_reaper.timeout_seconds = 1;
SET LOCAL protea_reaper.stall_seconds = 1;
SELECT protea_reaper_run_once();
SELECT right(id::text, 2) AS job, status, error_code FROM job ORDER BY id;
SELECT DISTINCT error_message FROM job WHERE error_code = 'JobTimeout';
ROLLBACK;

-- A failure is logged only once it commits: a sweep undone by ROLLBACK, by
-- ROLLBACK TO SAVEPOINT, or by the caller's own deferred constraint failing
-- at COMMIT writes no "Reaper failed stale job" line; one that commits
-- writes its lines after the commit
SET client_min_messages = log;
\set VERBOSITY terse
BEGIN;
SELECT protea_reaper_run_once();
ROLLBACK;
BEGIN;
SAVEPOINT before_sweep;
SELECT protea_reaper_run_once();
ROLLBACK TO SAVEPOINT before_sweep;
COMMIT;
CREATE TEMP TABLE caller_check (x int UNIQUE DEFERRABLE INITIALLY DEFERRED);
BEGIN;
INSERT INTO caller_check VALUES (1), (1);
SELECT protea_reaper_run_once();
COMMIT;
RESET client_min_messages;
\set VERBOSITY default
SELECT count(*) AS failed FROM job WHERE error_code = 'JobTimeout';

-- A job that finished before the sweep keeps its outcome
UPDATE job SET status = 'SUCCEEDED', finished_at = now()
 WHERE id = '00000000-0000-0000-0000-000000000001';
SELECT protea_reaper_run_once();
SELECT right(id::text, 2) AS job, status, error_code FROM job
 WHERE id IN ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000004')
 ORDER BY id;

-- A transaction that failed jobs cannot be prepared for two-phase commit:
-- COMMIT PREPARED would run where their log lines are not (with notify on,
-- PostgreSQL refuses the NOTIFY as well).  Nothing is failed.
SELECT fixture_load();
BEGIN;
SET LOCAL protea_reaper.notify = off;
SELECT protea_reaper_run_once();
PREPARE TRANSACTION 'reaped';
BEGIN;
SET LOCAL protea_reaper.notify = off;
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000003', 'by hand');
PREPARE TRANSACTION 'failed_by_hand';
SELECT count(*) AS failed FROM job WHERE error_code IN ('JobTimeout', 'ManualTimeout');
