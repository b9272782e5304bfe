--
-- known_alive: a sweep does not look up again the last event of a job that
-- an earlier sweep in the same backend found alive, until that event is
-- stall_seconds old.  The job is still counted and logged as alive;
-- protea_reaper.remember_alive = off turns it off; a lowered stall_seconds
-- applies at once; nothing is learnt from an event that may yet be rolled
-- back; other tables mean a clean memory.
--
-- Lookups are counted as scans of job_event in its statistics (flushed
-- with pg_stat_force_next_flush(); job_event_scans() is in setup.sql): a
-- sweep reads job_event for nothing else.
--

-- A new session remembers nothing: jobs 1, 2 and 4 are past the timeout,
-- each one's last event is looked up; 1 and 4 are failed, 2 is alive.
\c
SELECT fixture_load();
SELECT pg_stat_force_next_flush();
SELECT job_event_scans() AS scans \gset
SELECT protea_reaper_run_once() AS reaped;
SELECT pg_stat_force_next_flush();
SELECT job_event_scans() - :scans AS lookups;

-- The next sweep in this session: job 2 is not looked up, yet it is still
-- a live job left alone, logged as such
SELECT job_event_scans() AS scans \gset
SET protea_reaper.log_skipped = on;
SET client_min_messages = log;
\set VERBOSITY terse
SELECT protea_reaper_run_once() AS reaped;
RESET client_min_messages;
\set VERBOSITY default
RESET protea_reaper.log_skipped;
SELECT pg_stat_force_next_flush();
SELECT job_event_scans() - :scans AS lookups;

-- protea_reaper.remember_alive = off: every job is looked up again, and
-- what was remembered is forgotten, so that the first sweep after it is
-- back on looks job 2 up too
SET protea_reaper.remember_alive = off;
SELECT job_event_scans() AS scans \gset
SELECT protea_reaper_run_once() AS reaped;
SELECT pg_stat_force_next_flush();
SELECT job_event_scans() - :scans AS lookups;
RESET protea_reaper.remember_alive;
SELECT job_event_scans() AS scans \gset
SELECT protea_reaper_run_once() AS reaped;
SELECT pg_stat_force_next_flush();
SELECT job_event_scans() - :scans AS lookups;

-- A lowered stall_seconds applies to a remembered job at once: its event
-- of 5 minutes ago no longer keeps it alive, it is looked up again and
-- failed, and the audit event records its real last event
SET protea_reaper.stall_seconds = 120;
SELECT protea_reaper_run_once() AS reaped;
RESET protea_reaper.stall_seconds;
SELECT right(j.id::text, 2) AS job, j.status, j.error_code,
       (e.fields->>'last_event_ts')::timestamptz =
         (SELECT max(p.ts) FROM job_event p
           WHERE p.job_id = j.id AND p.event <> 'job.timeout') AS last_event_matches
  FROM job j JOIN job_event e ON e.job_id = j.id AND e.event = 'job.timeout'
 WHERE j.id = '00000000-0000-0000-0000-000000000002';

-- An event the sweeping transaction wrote itself keeps job 1 alive in that
-- transaction, but is not remembered: after the rollback, job 1 is stale
-- again and the next sweep fails it with job 4
SELECT fixture_load();
BEGIN;
INSERT INTO job_event (job_id, ts, level, event, fields)
VALUES ('00000000-0000-0000-0000-000000000001', now(), 'info', 'job.progress', '{}');
SELECT protea_reaper_run_once() AS reaped;
ROLLBACK;
SELECT protea_reaper_run_once() AS reaped;
SELECT right(id::text, 2) AS job, status FROM job
 WHERE status <> 'RUNNING' OR started_at < now() - '6 h'::interval ORDER BY id;

-- The memory is of these tables only: job 2 is remembered alive in
-- public.job, and the job with the same id in another job table, stale
-- there, is looked up and failed
SELECT fixture_load();
SELECT protea_reaper_run_once() AS reaped;
CREATE SCHEMA other;
CREATE TABLE other.job (LIKE public.job INCLUDING ALL);
CREATE TABLE other.job_event (LIKE public.job_event INCLUDING ALL);
INSERT INTO other.job SELECT * FROM public.job
 WHERE id = '00000000-0000-0000-0000-000000000002';
INSERT INTO other.job_event (job_id, ts, level, event, fields)
VALUES ('00000000-0000-0000-0000-000000000002', now() - '1 h'::interval, 'info', 'job.progress', '{}');
SET protea_reaper.job_table = 'other.job';
SET protea_reaper.event_table = 'other.job_event';
SELECT protea_reaper_run_once() AS reaped;
SELECT right(id::text, 2) AS job, status, error_code FROM other.job;
RESET protea_reaper.job_table;
RESET protea_reaper.event_table;
DROP SCHEMA other CASCADE;

-- What is remembered is what was seen: events deleted afterwards do not
-- make job 2 stale for this session until its remembered event is
-- stall_seconds old (PROTEA never deletes a running job's events); a new
-- session looks it up and fails it
SELECT fixture_load();
SELECT protea_reaper_run_once() AS reaped;
DELETE FROM job_event WHERE job_id = '00000000-0000-0000-0000-000000000002';
SELECT protea_reaper_run_once() AS reaped;
\c
SELECT protea_reaper_run_once() AS reaped;


-- Under a policy: a row that gives one operation a short timeout lowers
-- every job's bound, so the idle sweep's scan meets jobs of other
-- operations younger than their own timeout.  They are no candidates, and
-- the idle sweep still reads no job_event: job 2 (alive) is known, job 3
-- (predict_go_terms, 1 h old, its timeout 6 h) is not a candidate.
\c
SELECT fixture_load();
DELETE FROM job WHERE id IN ('00000000-0000-0000-0000-000000000001',
                             '00000000-0000-0000-0000-000000000004');
INSERT INTO protea_reaper_policy (operation, timeout_seconds, stall_seconds)
VALUES ('insert_proteins', 1800, 600);
SELECT protea_reaper_run_once() AS reaped;
SELECT pg_stat_force_next_flush();
SELECT job_event_scans() AS scans \gset
SELECT protea_reaper_run_once() AS reaped;
SELECT pg_stat_force_next_flush();
SELECT job_event_scans() - :scans AS lookups;
-- A policy change forgets what was learnt: a cap on compute_embeddings
-- fails job 2 (7 h old) at once, its event of 5 minutes ago notwithstanding
INSERT INTO protea_reaper_policy (operation, max_runtime_seconds)
VALUES ('compute_embeddings', 23400);
SELECT protea_reaper_run_once() AS reaped;
SELECT right(id::text, 2) AS job, status, error_message FROM job
 WHERE id = '00000000-0000-0000-0000-000000000002';
DELETE FROM protea_reaper_policy;

-- A job remembered as young (younger than its own timeout) is failed as
-- soon as its timeout is lowered below its age: by the policy, or by the
-- setting.  Job 1 (insert_proteins, 7 h, an event 1 h ago) and job 4 (8 h,
-- no events) are young under a 24 h timeout; job 2 (alive) keeps the
-- memory in use; job 3's operation has a 10 min timeout, which makes the
-- idle sweep's range reach the young jobs (and the first sweep fails job 3,
-- silent for an hour).
\c
SELECT fixture_load();
INSERT INTO protea_reaper_policy (operation, timeout_seconds) VALUES
    ('insert_proteins', 86400), ('predict_go_terms', 600);
SELECT protea_reaper_run_once() AS first_sweep, protea_reaper_run_once() AS second_sweep;
DELETE FROM protea_reaper_policy WHERE operation = 'insert_proteins';
SELECT right(job_id::text, 2) AS job, verdict FROM protea_reaper_running_jobs()
 WHERE operation = 'insert_proteins';
SELECT protea_reaper_run_once() AS reaped_after_the_policy_change;
SELECT fixture_load();
SET protea_reaper.timeout_seconds = '24h';
SELECT protea_reaper_run_once() AS first_sweep, protea_reaper_run_once() AS second_sweep;
RESET protea_reaper.timeout_seconds;
SELECT protea_reaper_run_once() AS reaped_after_the_setting_change;
DELETE FROM protea_reaper_policy;
