--
-- setup: PROTEA's tables as the application creates them (see PROTEA.md),
-- the extension, and fixture_load(), which lays out one job per case
-- relative to now() so that results never depend on when the tests run.
-- PROTEA's tables have no server defaults for payload, meta, tags, level
-- and fields: the fixtures fill them as the application does.
--
\i test/protea_schema.sql

-- One job per case; ids end in the case number.  Defaults: timeout 6 h,
-- stall 30 min.
CREATE FUNCTION fixture_load() RETURNS void LANGUAGE sql AS $$
    DELETE FROM job;
    INSERT INTO job (id, operation, queue_name, status, created_at, started_at, finished_at,
                     payload, meta, tags)
    SELECT v.*, '{}', '{}', '{}' FROM (VALUES
      -- 1 stale: running 7 h, last event 1 h ago
      ('00000000-0000-0000-0000-000000000001'::uuid, 'insert_proteins', 'q', 'RUNNING'::job_status, now() - '7 h'::interval, now() - '7 h'::interval, NULL::timestamptz),
      -- 2 old but alive: running 7 h, event 5 min ago
      ('00000000-0000-0000-0000-000000000002', 'compute_embeddings', 'q', 'RUNNING', now() - '7 h'::interval, now() - '7 h'::interval, NULL),
      -- 3 young: running 1 h, no events
      ('00000000-0000-0000-0000-000000000003', 'predict_go_terms', 'q', 'RUNNING', now() - '1 h'::interval, now() - '1 h'::interval, NULL),
      -- 4 old, no events at all: stale
      ('00000000-0000-0000-0000-000000000004', 'insert_proteins', 'q', 'RUNNING', now() - '8 h'::interval, now() - '8 h'::interval, NULL),
      -- 5-8 old jobs that are not running
      ('00000000-0000-0000-0000-000000000005', 'insert_proteins', 'q', 'SUCCEEDED', now() - '9 h'::interval, now() - '9 h'::interval, now() - '8 h'::interval),
      ('00000000-0000-0000-0000-000000000006', 'insert_proteins', 'q', 'FAILED', now() - '9 h'::interval, now() - '9 h'::interval, now() - '8 h'::interval),
      ('00000000-0000-0000-0000-000000000007', 'insert_proteins', 'q', 'CANCELLED', now() - '9 h'::interval, now() - '9 h'::interval, now() - '8 h'::interval),
      ('00000000-0000-0000-0000-000000000008', 'insert_proteins', 'q', 'QUEUED', now() - '9 h'::interval, NULL, NULL),
      -- 9 running with NULL started_at: never failed
      ('00000000-0000-0000-0000-000000000009', 'insert_proteins', 'q', 'RUNNING', now() - '9 h'::interval, NULL, NULL)) AS v;
    INSERT INTO job_event (job_id, ts, event, message, level, fields)
    SELECT v.*, 'info', '{}' FROM (VALUES
      ('00000000-0000-0000-0000-000000000001'::uuid, now() - '7 h'::interval, 'job.started', 'started'),
      ('00000000-0000-0000-0000-000000000001', now() - '1 h'::interval, 'job.progress', 'half way'),
      ('00000000-0000-0000-0000-000000000002', now() - '7 h'::interval, 'job.started', 'started'),
      ('00000000-0000-0000-0000-000000000002', now() - '5 min'::interval, 'job.progress', 'child batch done'),
      ('00000000-0000-0000-0000-000000000005', now() - '8 h 30 min'::interval, 'job.progress', 'old'),
      ('00000000-0000-0000-0000-000000000006', now() - '8 h 30 min'::interval, 'job.progress', 'old'),
      ('00000000-0000-0000-0000-000000000007', now() - '8 h 30 min'::interval, 'job.progress', 'old')) AS v;
$$;

-- How many times job_event was scanned (after pg_stat_force_next_flush()):
-- a sweep reads job_event only to look up a job's last event
CREATE FUNCTION job_event_scans() RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0)
      FROM pg_stat_user_tables WHERE relid = 'job_event'::regclass
$$;

-- (its WARNING when the library is not preloaded: regress preload)
SET client_min_messages = error;
CREATE EXTENSION protea_reaper;
RESET client_min_messages;

-- What the extension installs
SELECT p.proname, pg_get_function_result(p.oid) AS returns, p.prosecdef
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
  JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'protea_reaper'
 ORDER BY p.proname;
