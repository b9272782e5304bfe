--
-- plans: a backend plans the statements of an idle sweep once and reuses
-- the plans.  Their shape does not depend on the thresholds, and planning
-- them on every call would cost more than an idle sweep itself.
--
-- Every planning shows as a "PLANNER STATISTICS" line (log_planner_stats;
-- VERBOSITY terse drops its timing detail).  The SELECT that calls
-- protea_reaper_run_once() is itself planned: one line per call is the floor.
--
-- Job 1 running and stale again: its failure and audit event undone
CREATE FUNCTION restale_job_1() RETURNS void LANGUAGE sql AS $$
    DELETE FROM job_event
     WHERE job_id = '00000000-0000-0000-0000-000000000001' AND event = 'job.timeout';
    UPDATE job SET status = 'RUNNING', finished_at = NULL, error_code = NULL, error_message = NULL
     WHERE id = '00000000-0000-0000-0000-000000000001';
$$;

\c
SELECT fixture_load();
SET log_planner_stats = on;
SET client_min_messages = log;
\set VERBOSITY terse

-- The first sweep plans what it runs (and the foreign key check of the
-- audit rows): the first statement alone: jobs 1 and 4 are failed, 2 is
-- alive
SELECT protea_reaper_run_once() AS reaped;
-- An idle sweep is the same statement, already planned
SELECT protea_reaper_run_once() AS reaped;
-- From now on nothing is planned but the calling SELECT
SELECT protea_reaper_run_once() AS reaped;
SELECT protea_reaper_run_once() AS reaped;
SELECT protea_reaper_run_once() AS reaped;
SELECT protea_reaper_run_once() AS reaped;
SELECT protea_reaper_run_once() AS reaped;
SELECT protea_reaper_run_once() AS reaped;

-- Other thresholds are parameters of the same plans: a lowered timeout
-- makes job 3 a candidate; the first statement fails it without a new plan
SET protea_reaper.timeout_seconds = 1800;
SELECT protea_reaper_run_once() AS reaped;
RESET protea_reaper.timeout_seconds;

-- A backlog's later batches are planned at each call, for their LIMIT
-- batch_size: with batch_size 1, job 1 made stale again is failed by the
-- first statement and a later batch runs (and finds nothing), planned anew
-- each time.
SET protea_reaper.batch_size = 1;
RESET log_planner_stats;
SELECT restale_job_1();
SET log_planner_stats = on;
SELECT protea_reaper_run_once() AS reaped;
RESET log_planner_stats;
SELECT restale_job_1();
SET log_planner_stats = on;
SELECT protea_reaper_run_once() AS reaped;
RESET protea_reaper.batch_size;

-- Kept plans are made again once a table has more than doubled (plans made
-- while job was nearly empty scan it whole for each candidate, which a
-- backlog arriving at once makes hours long): after 3,000 finished jobs,
-- the next sweep plans its statement anew, and the one after does not
RESET log_planner_stats;
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, finished_at,
                 payload, meta, tags)
SELECT gen_random_uuid(), 'insert_proteins', 'q', 'SUCCEEDED', now() - '2 d'::interval,
       now() - '2 d'::interval, now() - '1 d'::interval, '{}', '{}', '{}'
  FROM generate_series(1, 3000);
SET log_planner_stats = on;
SELECT protea_reaper_run_once() AS reaped;
SELECT protea_reaper_run_once() AS reaped;
RESET log_planner_stats;
DELETE FROM job WHERE status = 'SUCCEEDED' AND operation = 'insert_proteins'
                  AND started_at < now() - '1 d'::interval;

RESET client_min_messages;
\set VERBOSITY default
RESET log_planner_stats;
SELECT id, status, error_code FROM job WHERE status = 'FAILED' ORDER BY id;
DROP FUNCTION restale_job_1();
