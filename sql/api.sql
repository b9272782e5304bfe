--
-- api: the runbook as SQL calls: list running jobs, fail one by hand,
-- worker status; and who may call what.
--
SELECT fixture_load();

-- Force-fail a stuck job by hand
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000003', 'node lost');
SELECT right(id::text, 2) AS job, status, error_code, error_message
  FROM job WHERE id = '00000000-0000-0000-0000-000000000003';
SELECT level, event, message, fields - 'failed_by' AS fields,
       fields->>'failed_by' = session_user AS by_me
  FROM job_event WHERE job_id = '00000000-0000-0000-0000-000000000003';

-- A queued job can be failed by hand too
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000008', 'bad payload');

-- A job that has ended is left as it is
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000005', 'oops');
SELECT status, error_code FROM job WHERE id = '00000000-0000-0000-0000-000000000005';

-- Bad input
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-0000000000ff', 'gone');
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', '');
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', NULL);
SELECT protea_reaper_fail_job(NULL, 'x');

-- The statements a sweep runs, as prepared for these tables (with their own
-- labels), ready to EXPLAIN or run by hand
SELECT name, position('@' IN statement) = 0 AS expanded,
       statement LIKE '%''RUNNING''%' AS has_running_label
  FROM protea_reaper_statements();
SELECT statement AS later_batch FROM protea_reaper_statements()
 WHERE name = 'later_batch' \gset
-- $1-$4 timeout, stall, max_runtime, bound; $5 the policy's rows;
-- $6 lease_grace_seconds, $7 max_lease_requeues; $8 the limit
PREPARE later_batch(int, int, int, int, jsonb, int, int, int) AS :later_batch;
BEGIN;
CREATE TEMP TABLE by_hand AS EXECUTE later_batch(21600, 1800, 0, 21600, '{}', 15, 0, 10);
SELECT right(id::text, 2) AS job, last_ts IS NULL AS no_events, message, capped FROM by_hand;
SELECT count(*) AS failed_by_hand FROM job WHERE error_code = 'JobTimeout';
ROLLBACK;
DEALLOCATE later_batch;

-- (the worker's status, with and without shared_preload_libraries, and
-- protea_reaper_wake(): regress preload)

-- Permissions: nothing is granted to PUBLIC
CREATE ROLE reaper_app;
SET ROLE reaper_app;
SELECT protea_reaper_run_once();
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', 'x');
SELECT count(*) FROM protea_reaper_running_jobs();
SELECT count(*) FROM protea_reaper_statements();
SELECT pid FROM protea_reaper_status();
SELECT count(*) FROM protea_reaper_check();
SELECT count(*) FROM protea_reaper_policy;
INSERT INTO protea_reaper_policy (operation, exempt) VALUES ('insert_proteins', true);
RESET ROLE;

-- A role granted EXECUTE may sweep, without rights on the tables themselves
GRANT EXECUTE ON FUNCTION protea_reaper_run_once() TO reaper_app;
SET ROLE reaper_app;
SELECT protea_reaper_run_once();
SELECT count(*) FROM job;
RESET ROLE;

-- The README's grant lets a role set the policy
GRANT SELECT, INSERT, UPDATE, DELETE ON protea_reaper_policy TO reaper_app;
SET ROLE reaper_app;
INSERT INTO protea_reaper_policy (operation, stall_seconds) VALUES ('insert_proteins', 3600);
UPDATE protea_reaper_policy SET stall_seconds = 7200 WHERE operation = 'insert_proteins';
DELETE FROM protea_reaper_policy RETURNING operation, stall_seconds;
RESET ROLE;
REVOKE ALL ON protea_reaper_policy FROM reaper_app;

-- pg_monitor members may read the status and the running jobs
CREATE ROLE reaper_monitor IN ROLE pg_monitor;
SET ROLE reaper_monitor;
SET client_min_messages = warning;	-- its NOTICE when there is no worker: regress preload
SELECT enabled, timeout_seconds FROM protea_reaper_status();
-- and the view Prometheus scrapes (its columns; rows only with a worker)
SELECT * FROM protea_reaper_metrics WHERE false;
RESET client_min_messages;
SELECT count(*) AS running FROM protea_reaper_running_jobs();
SELECT count(*) > 0 AS checks FROM protea_reaper_check();
SELECT count(*) AS policy_rows FROM protea_reaper_policy;
-- but not change the policy
INSERT INTO protea_reaper_policy (operation, exempt) VALUES ('insert_proteins', true);
RESET ROLE;

-- a role outside pg_monitor may not
SET ROLE reaper_app;
SELECT count(*) FROM protea_reaper_metrics;
RESET ROLE;

REVOKE EXECUTE ON FUNCTION protea_reaper_run_once() FROM reaper_app;
DROP ROLE reaper_app;
DROP ROLE reaper_monitor;
