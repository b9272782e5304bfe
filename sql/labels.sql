--
-- labels: the status labels come from the job table's own type, never
-- assumed.  PROTEA's ORM writes 'RUNNING', the runbook 'running' (the whole
-- suite also runs on that spelling, see test/runbook_tree.sh); any case
-- works, a text column may hold both, and a type without a running or
-- failed label is a clear error that names the setting and the labels.
--
SELECT fixture_load();

-- A third spelling: the enum's labels in any case are found
CREATE SCHEMA titled;
CREATE TYPE titled.job_status AS ENUM ('Queued', 'Running', 'Succeeded', 'Failed', 'Cancelled');
CREATE TABLE titled.job (id uuid PRIMARY KEY, operation text, status titled.job_status,
    started_at timestamptz, finished_at timestamptz, error_code text, error_message text);
CREATE TABLE titled.job_event (id bigserial, job_id uuid, ts timestamptz, level text,
    event text, message text, fields jsonb);
CREATE INDEX ON titled.job_event (job_id, ts);
INSERT INTO titled.job (id, operation, status, started_at) VALUES
  ('00000000-0000-0000-0000-0000000000b1', 'insert_proteins', 'Running', now() - '7 h'::interval),
  ('00000000-0000-0000-0000-0000000000b2', 'insert_proteins', 'Queued', now() - '7 h'::interval),
  ('00000000-0000-0000-0000-0000000000b3', 'insert_proteins', 'Succeeded', now() - '7 h'::interval);
SET protea_reaper.job_table = 'titled.job';
SET protea_reaper.event_table = 'titled.job_event';
SELECT right(job_id::text, 2) AS job, verdict FROM protea_reaper_running_jobs();
SELECT protea_reaper_run_once();
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-0000000000b2', 'bad input');
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-0000000000b3', 'too late');
SELECT right(id::text, 2) AS job, status, error_code FROM titled.job ORDER BY id;
SELECT right(job_id::text, 2) AS job, event, fields->>'previous_status' AS previous
  FROM titled.job_event ORDER BY id;

-- A label renamed under a kept plan is noticed at the next sweep
UPDATE titled.job SET status = 'Running', finished_at = NULL, error_code = NULL
 WHERE id = '00000000-0000-0000-0000-0000000000b1';
ALTER TYPE titled.job_status RENAME VALUE 'Running' TO 'Active';
SELECT protea_reaper_run_once();
ALTER TYPE titled.job_status RENAME VALUE 'Active' TO 'Running';
SELECT protea_reaper_run_once();
SELECT right(id::text, 2) AS job, status, error_code FROM titled.job ORDER BY id;

-- A text status column may hold any spelling: each is matched ignoring
-- case, and a failed job is written FAILED if its status was upper case
CREATE TABLE titled.text_job (id uuid PRIMARY KEY, operation text, status text,
    started_at timestamptz, finished_at timestamptz, error_code text, error_message text);
INSERT INTO titled.text_job (id, operation, status, started_at) VALUES
  ('00000000-0000-0000-0000-0000000000c1', 'insert_proteins', 'running', now() - '7 h'::interval),
  ('00000000-0000-0000-0000-0000000000c2', 'insert_proteins', 'RUNNING', now() - '7 h'::interval),
  ('00000000-0000-0000-0000-0000000000c5', 'insert_proteins', 'Running', now() - '7 h'::interval),
  ('00000000-0000-0000-0000-0000000000c3', 'insert_proteins', 'done', now() - '7 h'::interval),
  ('00000000-0000-0000-0000-0000000000c4', 'insert_proteins', 'queued', now() - '7 h'::interval);
SET protea_reaper.job_table = 'titled.text_job';
SELECT right(job_id::text, 2) AS job, verdict FROM protea_reaper_running_jobs();
SELECT protea_reaper_run_once();
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-0000000000c4', 'bad input');
SELECT right(id::text, 2) AS job, status, error_code FROM titled.text_job ORDER BY id;

-- Status types the reaper cannot read: errors that name the setting and
-- what was found, before anything is written
CREATE TYPE titled.no_running AS ENUM ('Queued', 'Busy', 'Failed');
CREATE TYPE titled.no_failed AS ENUM ('Queued', 'Running', 'Broken');
CREATE TYPE titled.two_running AS ENUM ('Queued', 'Running', 'RUNNING', 'Failed');
CREATE TABLE titled.bad_job (id uuid PRIMARY KEY, operation text, status titled.no_running,
    started_at timestamptz, finished_at timestamptz, error_code text, error_message text);
SET protea_reaper.job_table = 'titled.bad_job';
SELECT protea_reaper_run_once();
ALTER TABLE titled.bad_job ALTER status TYPE titled.no_failed USING NULL;
SELECT protea_reaper_run_once();
ALTER TABLE titled.bad_job ALTER status TYPE titled.two_running USING NULL;
SELECT protea_reaper_run_once();
SELECT count(*) FROM protea_reaper_running_jobs();
ALTER TABLE titled.bad_job ALTER status TYPE integer USING NULL;
SELECT protea_reaper_run_once();
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-0000000000c1', 'x');
RESET protea_reaper.job_table;
RESET protea_reaper.event_table;

-- A lease column of another type is refused: it would be misread
CREATE TABLE titled.lease_job (LIKE public.job);
ALTER TABLE titled.lease_job ALTER leased_until TYPE timestamp;
SET protea_reaper.job_table = 'titled.lease_job';
SELECT protea_reaper_run_once();
RESET protea_reaper.job_table;

-- Nothing above touched PROTEA's own tables
SELECT count(*) AS failed FROM job WHERE error_code IS NOT NULL;

DROP SCHEMA titled CASCADE;
