--
-- core: a sweep fails exactly the stale jobs, with the exact error_code,
-- message and audit event, and logs one line per job.
--
SELECT fixture_load();

-- What an operator sees before the sweep
SELECT job_id, operation, verdict, last_event_ts IS NOT NULL AS has_events
  FROM protea_reaper_running_jobs();

-- The per-job log lines, without their (time-dependent) DETAIL
SET client_min_messages = log;
\set VERBOSITY terse
SELECT protea_reaper_run_once();
RESET client_min_messages;
\set VERBOSITY default

-- Exactly jobs 1 and 4 are failed
SELECT right(id::text, 2) AS job, status, error_code, error_message,
       finished_at IS NOT NULL AND finished_at <= now() AS finished
  FROM job ORDER BY id;

-- One audit event per failed job, with the thresholds and the last event time
SELECT right(e.job_id::text, 2) AS job, e.level, e.event, e.message,
       e.fields - 'last_event_ts' AS fields,
       (e.fields->'last_event_ts') = 'null'::jsonb AS no_last_event,
       (e.fields->>'last_event_ts')::timestamptz =
         (SELECT max(p.ts) FROM job_event p
           WHERE p.job_id = e.job_id AND p.event <> 'job.timeout') AS last_event_matches,
       e.ts = j.finished_at AS same_instant
  FROM job_event e JOIN job j ON j.id = e.job_id
 WHERE e.event = 'job.timeout'
 ORDER BY e.job_id;

-- fields holds numbers, not strings
SELECT DISTINCT jsonb_typeof(fields->'timeout_seconds') AS timeout_type,
       jsonb_typeof(fields->'stall_seconds') AS stall_type
  FROM job_event WHERE event = 'job.timeout';

-- A second sweep finds nothing
SELECT protea_reaper_run_once();
SELECT count(*) AS timeout_events FROM job_event WHERE event = 'job.timeout';
