--
-- tables: job_table/event_table are resolved safely; a missing or
-- mis-shaped table is a clear ERROR that names the setting, and writes
-- nothing.
--
SELECT fixture_load();

-- Missing job table
SET protea_reaper.job_table = 'public.no_such_job';
SELECT protea_reaper_run_once();
RESET protea_reaper.job_table;

-- Missing event table: the error comes before anything is written
SET protea_reaper.event_table = 'public.no_such_event';
SELECT protea_reaper_run_once();
SELECT count(*) AS failed FROM job WHERE status = 'FAILED' AND error_code = 'JobTimeout';
RESET protea_reaper.event_table;

-- A job table without status
CREATE TABLE job_without_status (id uuid PRIMARY KEY, operation text,
    started_at timestamptz, finished_at timestamptz, error_code text, error_message text);
SET protea_reaper.job_table = 'public.job_without_status';
SELECT protea_reaper_run_once();
RESET protea_reaper.job_table;

-- An event table without fields
CREATE TABLE event_without_fields (id bigserial, job_id uuid, ts timestamptz,
    level text, event text, message text);
SET protea_reaper.event_table = 'public.event_without_fields';
SELECT protea_reaper_run_once();
RESET protea_reaper.event_table;

-- Not a table
CREATE VIEW job_view AS SELECT * FROM job;
SET protea_reaper.job_table = 'public.job_view';
SELECT protea_reaper_run_once();
RESET protea_reaper.job_table;

-- Bad names are rejected by the name parser, never pasted into SQL
SET protea_reaper.job_table = 'public.job; DROP TABLE job_event';
SELECT protea_reaper_run_once();
SET protea_reaper.job_table = 'a.b.c.d';
SELECT protea_reaper_run_once();
SET protea_reaper.job_table = '';
SELECT protea_reaper_run_once();
RESET protea_reaper.job_table;

-- An unqualified name resolves with the function's pinned search_path
-- (pg_catalog, pg_temp), so it does not find public.job
SET protea_reaper.job_table = 'job';
SELECT protea_reaper_run_once();
RESET protea_reaper.job_table;

-- No sweep without an index on job_event that leads with job_id: each
-- job's last event would be a scan of the whole table (a restore that has
-- not built the index yet, a dropped index)
BEGIN;
DROP INDEX job_event_job_id_ts, job_event_job_id_event;
SELECT protea_reaper_run_once();
ROLLBACK;
-- an index on part of the events does not count, nor one on another column,
-- nor one that cannot find a job's newest event
BEGIN;
DROP INDEX job_event_job_id_ts, job_event_job_id_event;
CREATE INDEX job_event_errors ON job_event (job_id) WHERE level = 'error';
CREATE INDEX job_event_ts ON job_event (ts, job_id);
CREATE INDEX job_event_brin ON job_event USING brin (job_id);
CREATE INDEX job_event_hash ON job_event USING hash (job_id);
SELECT count(*) FROM protea_reaper_running_jobs();
ROLLBACK;

-- Nothing above wrote anything
SELECT count(*) AS failed FROM job WHERE error_code = 'JobTimeout';
SELECT count(*) AS timeout_events FROM job_event WHERE event = 'job.timeout';

-- Tables in another schema, with names that need quoting
CREATE SCHEMA "Protea Jobs";
CREATE TABLE "Protea Jobs"."Job Table" (LIKE job INCLUDING DEFAULTS);
CREATE TABLE "Protea Jobs"."job""event" (LIKE job_event INCLUDING DEFAULTS INCLUDING INDEXES);
INSERT INTO "Protea Jobs"."Job Table" (id, operation, queue_name, status, created_at, started_at, payload, meta, tags)
VALUES ('00000000-0000-0000-0000-0000000000a1', 'insert_proteins', 'q', 'RUNNING', now() - '7 h'::interval, now() - '7 h'::interval, '{}', '{}', '{}'),
       ('00000000-0000-0000-0000-0000000000a2', 'insert_proteins', 'q', 'RUNNING', now() - '7 h'::interval, now() - '7 h'::interval, '{}', '{}', '{}');
INSERT INTO "Protea Jobs"."job""event" (job_id, ts, level, event, fields)
VALUES ('00000000-0000-0000-0000-0000000000a2', now() - '1 min'::interval, 'info', 'job.progress', '{}');

SET protea_reaper.job_table = '"Protea Jobs"."Job Table"';
SET protea_reaper.event_table = '"Protea Jobs"."job""event"';
SELECT job_id, verdict FROM protea_reaper_running_jobs();
SELECT protea_reaper_run_once();
SELECT right(id::text, 2) AS job, status, error_code FROM "Protea Jobs"."Job Table" ORDER BY id;
SELECT right(job_id::text, 2) AS job, event FROM "Protea Jobs"."job""event" ORDER BY id;
RESET protea_reaper.job_table;
RESET protea_reaper.event_table;

-- The default tables were not touched
SELECT count(*) AS failed_in_public FROM job WHERE error_code = 'JobTimeout';

-- Back on the default tables, a sweep works again (the kept plan follows the setting)
SELECT protea_reaper_run_once();

DROP SCHEMA "Protea Jobs" CASCADE;
DROP TABLE job_without_status, event_without_fields;
DROP VIEW job_view;
