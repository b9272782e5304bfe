--
-- protea: what PROTEA's own tables add to the rule.  A job whose lease
-- (leased_until, renewed by newer workers on every heartbeat) is in the
-- future is alive whatever its events say; one whose lease lapsed longer
-- than lease_grace_seconds ago is dead (lease.sql has the rest); a NULL
-- lease protects nothing; a job table without the column (older PROTEA) is
-- judged by the events alone.  A reaped job frees its dedup key, and an
-- operator's comment is not activity.
--
SELECT fixture_load();

-- Job 1 (stale by its events) holds a lease for 2 more minutes, job 4
-- (no events) one that ran out a minute ago; job 2 (alive by its events)
-- holds none
UPDATE job SET leased_until = now() + '2 min'::interval
 WHERE id = '00000000-0000-0000-0000-000000000001';
UPDATE job SET leased_until = now() - '1 min'::interval
 WHERE id = '00000000-0000-0000-0000-000000000004';
SELECT right(job_id::text, 2) AS job, verdict,
       round(extract(epoch FROM leased_until - now()) / 60) AS lease_minutes_left
  FROM protea_reaper_running_jobs();

-- The sweep fails job 4 only, and logs job 1 as leased
SET protea_reaper.log_skipped = on;
SET client_min_messages = log;
\set VERBOSITY terse
SELECT protea_reaper_run_once();
RESET client_min_messages;
\set VERBOSITY default
RESET protea_reaper.log_skipped;
SELECT right(id::text, 2) AS job, status, error_code FROM job
 WHERE id IN ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000004')
 ORDER BY id;

-- However many sweeps run while the lease holds, job 1 stays running, even
-- with thresholds of one second (which fail jobs 2 and 3)
SET protea_reaper.timeout_seconds = 1;
SET protea_reaper.stall_seconds = 1;
SELECT protea_reaper_run_once();
SELECT protea_reaper_run_once();
SELECT status FROM job WHERE id = '00000000-0000-0000-0000-000000000001';

-- Its worker stops renewing: once the lease has lapsed longer than the
-- grace, the next sweep fails it, with its last event in the audit row
UPDATE job SET leased_until = now() - '1 min'::interval
 WHERE id = '00000000-0000-0000-0000-000000000001';
RESET protea_reaper.timeout_seconds;
RESET protea_reaper.stall_seconds;
SELECT right(job_id::text, 2) AS job, verdict FROM protea_reaper_running_jobs()
 WHERE job_id = '00000000-0000-0000-0000-000000000001';
SELECT protea_reaper_run_once();
SELECT right(j.id::text, 2) AS job, j.status, j.error_code,
       (e.fields->>'last_event_ts')::timestamptz =
         (SELECT max(p.ts) FROM job_event p
           WHERE p.job_id = j.id AND p.event NOT IN ('job.timeout', 'job.lease_expired')) AS last_event_matches
  FROM job j JOIN job_event e ON e.job_id = j.id AND e.event = 'job.lease_expired'
 WHERE j.id = '00000000-0000-0000-0000-000000000001';

-- A lease renewed between two sweeps keeps a job alive by its event: the
-- lease alone keeps it once the event is old
SELECT fixture_load();
SELECT protea_reaper_run_once();
UPDATE job SET leased_until = now() + '1 h'::interval
 WHERE id = '00000000-0000-0000-0000-000000000002';
SET protea_reaper.stall_seconds = 60;
SELECT protea_reaper_run_once();
RESET protea_reaper.stall_seconds;
SELECT right(job_id::text, 2) AS job, verdict FROM protea_reaper_running_jobs()
 WHERE job_id = '00000000-0000-0000-0000-000000000002';

-- Every job past the timeout leased: an idle sweep counts them alive from
-- the job table alone, looking no event up (scans of job_event)
SELECT fixture_load();
UPDATE job SET leased_until = now() + '1 h'::interval
 WHERE status = 'RUNNING' AND started_at < now() - '6 h'::interval;
\c
SELECT pg_stat_force_next_flush();
SELECT job_event_scans() AS scans \gset
SELECT protea_reaper_run_once() AS reaped;
SELECT pg_stat_force_next_flush();
SELECT job_event_scans() - :scans AS lookups;
-- one lease lapses: that job is looked up (with the others, in the first
-- statement) and failed
UPDATE job SET leased_until = NULL WHERE id = '00000000-0000-0000-0000-000000000004';
SELECT protea_reaper_run_once() AS reaped;

-- Older PROTEA has no leased_until: the events alone decide, and the list
-- shows no lease
SELECT fixture_load();
CREATE SCHEMA older;
CREATE TABLE older.job (LIKE public.job);
ALTER TABLE older.job DROP COLUMN leased_until;
INSERT INTO older.job SELECT id, operation, queue_name, status, payload, meta,
       created_at, started_at, finished_at, progress_current, progress_total,
       parent_job_id, error_code, error_message, description, findings, tags, dedup_key
  FROM public.job;
CREATE TABLE older.job_event (LIKE public.job_event INCLUDING DEFAULTS INCLUDING INDEXES);
INSERT INTO older.job_event SELECT * FROM public.job_event;
SET protea_reaper.job_table = 'older.job';
SET protea_reaper.event_table = 'older.job_event';
SELECT right(job_id::text, 2) AS job, verdict, leased_until FROM protea_reaper_running_jobs();
SELECT protea_reaper_run_once();
SELECT right(id::text, 2) AS job, status, error_code FROM older.job
 WHERE error_code IS NOT NULL ORDER BY id;
RESET protea_reaper.job_table;
RESET protea_reaper.event_table;
DROP SCHEMA older CASCADE;

-- A reaped job frees its dedup key: the same work can be submitted again
SELECT fixture_load();
UPDATE job SET dedup_key = 'embed:P12345' WHERE id = '00000000-0000-0000-0000-000000000004';
INSERT INTO job (id, operation, queue_name, status, payload, meta, tags, created_at, dedup_key)
VALUES ('00000000-0000-0000-0000-000000000010', 'compute_embeddings', 'q', 'QUEUED',
        '{}', '{}', '{}', now(), 'embed:P12345');
SELECT protea_reaper_run_once();
INSERT INTO job (id, operation, queue_name, status, payload, meta, tags, created_at, dedup_key)
VALUES ('00000000-0000-0000-0000-000000000010', 'compute_embeddings', 'q', 'QUEUED',
        '{}', '{}', '{}', now(), 'embed:P12345');
SELECT right(id::text, 2) AS job, status, dedup_key FROM job
 WHERE dedup_key IS NOT NULL ORDER BY id;

-- An operator's comment on a stale job is not activity: the job is failed
SELECT fixture_load();
INSERT INTO job_comment (job_id, author, body)
VALUES ('00000000-0000-0000-0000-000000000004', 'oncall', 'looking into it');
SELECT right(job_id::text, 2) AS job, verdict FROM protea_reaper_running_jobs()
 WHERE job_id = '00000000-0000-0000-0000-000000000004';
SELECT protea_reaper_run_once();
SELECT status, error_code FROM job WHERE id = '00000000-0000-0000-0000-000000000004';

-- An operation of 100,000 characters is logged cut at 200, with its length:
-- a log line stays a line
SELECT fixture_load();
UPDATE job SET operation = repeat('x', 100000), started_at = '2026-01-01 00:00+00'
 WHERE id = '00000000-0000-0000-0000-000000000004';
DELETE FROM job WHERE id = '00000000-0000-0000-0000-000000000001';
SET client_min_messages = log;
SELECT protea_reaper_run_once();
RESET client_min_messages;
