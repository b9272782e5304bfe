--
-- policy: per-operation thresholds (protea_reaper_policy) and the runtime
-- cap.  A row overrides the settings for its operation's jobs in the sweep,
-- in protea_reaper_running_jobs(), and in the failure message and audit
-- fields; an exempt operation is never failed; a job past its cap is
-- failed whatever its events or lease.  The list's verdicts are what the
-- next sweep does.
--
SELECT fixture_load();

-- Bad rows are refused, each by a constraint that names the rule
INSERT INTO protea_reaper_policy (operation, timeout_seconds) VALUES ('insert_proteins', -1);
INSERT INTO protea_reaper_policy (operation, stall_seconds) VALUES ('insert_proteins', 0);
INSERT INTO protea_reaper_policy (operation, max_runtime_seconds) VALUES ('insert_proteins', -5);
INSERT INTO protea_reaper_policy (operation, timeout_seconds, stall_seconds) VALUES ('insert_proteins', 600, 600);
INSERT INTO protea_reaper_policy (operation, timeout_seconds, max_runtime_seconds) VALUES ('insert_proteins', 600, 300);
INSERT INTO protea_reaper_policy (operation, stall_seconds, exempt) VALUES ('insert_proteins', 60, true);
INSERT INTO protea_reaper_policy (operation) VALUES ('  ');
INSERT INTO protea_reaper_policy (operation, exempt) VALUES (NULL, true);
SELECT count(*) AS rows_written FROM protea_reaper_policy;

-- Without rows, the settings apply to every job (timeout 6 h, stall 30 min)
SELECT right(job_id::text, 2) AS job, operation, verdict, timeout_seconds, stall_seconds,
       max_runtime_seconds
  FROM protea_reaper_running_jobs();

-- predict_go_terms: 30 min timeout, 10 min stall (job 3, 1 h old and
-- silent, is now stale); insert_proteins: a 2 h stall (job 1, last heard
-- 1 h ago, is alive; job 4, silent, still stale); compute_embeddings is
-- exempt (job 2)
INSERT INTO protea_reaper_policy (operation, timeout_seconds, stall_seconds)
VALUES ('predict_go_terms', 1800, 600);
INSERT INTO protea_reaper_policy (operation, stall_seconds) VALUES ('insert_proteins', 7200);
INSERT INTO protea_reaper_policy (operation, exempt) VALUES ('compute_embeddings', true);
-- a duplicate is refused too
INSERT INTO protea_reaper_policy (operation, exempt) VALUES ('compute_embeddings', true);

SELECT right(job_id::text, 2) AS job, operation, verdict, timeout_seconds, stall_seconds,
       max_runtime_seconds
  FROM protea_reaper_running_jobs();

-- The next sweep fails exactly the jobs the list calls stale or capped
CREATE TEMP TABLE judged AS
    SELECT job_id FROM protea_reaper_running_jobs() WHERE verdict IN ('stale', 'capped');
SET client_min_messages = log;
\set VERBOSITY terse
SELECT protea_reaper_run_once();
RESET client_min_messages;
\set VERBOSITY default
SELECT (SELECT count(*) FROM judged) AS judged,
       (SELECT count(*) FROM job WHERE error_code = 'JobTimeout') AS failed,
       NOT EXISTS (SELECT job_id FROM judged
                   EXCEPT SELECT id FROM job WHERE error_code = 'JobTimeout') AND
       NOT EXISTS (SELECT id FROM job WHERE error_code = 'JobTimeout'
                   EXCEPT SELECT job_id FROM judged) AS same_jobs;

-- Each failure says which thresholds failed it
SELECT right(j.id::text, 2) AS job, j.error_message, e.fields - 'last_event_ts' AS fields
  FROM job j JOIN job_event e ON e.job_id = j.id AND e.event = 'job.timeout'
 ORDER BY j.id;

-- The runtime cap: compute_embeddings is no longer exempt but capped at
-- 6 h 30 min, so job 2 (7 h old, an event 5 min ago) is failed; the cap
-- holds even against a lease
SELECT fixture_load();
DELETE FROM protea_reaper_policy;
INSERT INTO protea_reaper_policy (operation, max_runtime_seconds)
VALUES ('compute_embeddings', 23400);
UPDATE job SET leased_until = now() + '1 h'::interval
 WHERE id = '00000000-0000-0000-0000-000000000002';
SELECT right(job_id::text, 2) AS job, verdict, max_runtime_seconds
  FROM protea_reaper_running_jobs();
CREATE TEMP TABLE capped AS
    SELECT job_id FROM protea_reaper_running_jobs() WHERE verdict IN ('stale', 'capped');
SELECT protea_reaper_run_once();
-- (the audit of the capped job, leased and alive, still gives its last event)
SELECT right(j.id::text, 2) AS job, j.status, j.error_code, j.error_message,
       e.fields - 'last_event_ts' AS fields, e.fields->>'last_event_ts' IS NOT NULL AS has_last_event
  FROM job j JOIN job_event e ON e.job_id = j.id AND e.event = 'job.timeout'
 ORDER BY j.id;
SELECT NOT EXISTS (SELECT job_id FROM capped
                   EXCEPT SELECT id FROM job WHERE error_code = 'JobTimeout') AND
       NOT EXISTS (SELECT id FROM job WHERE error_code = 'JobTimeout'
                   EXCEPT SELECT job_id FROM capped) AS list_agrees;

-- The setting caps every operation; a row's 0 lifts the cap for its own,
-- and an exempt operation is never failed, cap or not
SELECT fixture_load();
DELETE FROM protea_reaper_policy;
SET protea_reaper.max_runtime_seconds = 23400;
INSERT INTO protea_reaper_policy (operation, max_runtime_seconds) VALUES ('insert_proteins', 0);
SELECT right(job_id::text, 2) AS job, operation, verdict, max_runtime_seconds
  FROM protea_reaper_running_jobs();
UPDATE protea_reaper_policy SET max_runtime_seconds = NULL, exempt = true
 WHERE operation = 'insert_proteins';
SELECT right(job_id::text, 2) AS job, operation, verdict, max_runtime_seconds
  FROM protea_reaper_running_jobs();
SELECT protea_reaper_run_once();
SELECT right(id::text, 2) AS job, status, error_code FROM job
 WHERE status = 'FAILED' AND error_code IS NOT NULL ORDER BY id;
RESET protea_reaper.max_runtime_seconds;

-- A rolled-back change of policy changes nothing, and a sweep in the same
-- transaction as the change sees it
SELECT fixture_load();
DELETE FROM protea_reaper_policy;
BEGIN;
INSERT INTO protea_reaper_policy (operation, exempt) VALUES ('insert_proteins', true);
SELECT protea_reaper_run_once();
ROLLBACK;
SELECT protea_reaper_run_once();

-- A coordinator: silent itself, but its two children write events; the
-- list shows them, so an operator can tell it from a dead one
SELECT fixture_load();
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags,
                 parent_job_id)
VALUES ('00000000-0000-0000-0000-0000000000c0', 'compute_embeddings', 'q', 'RUNNING',
        now() - '7 h'::interval, now() - '7 h'::interval, '{}', '{}', '{}', NULL),
       ('00000000-0000-0000-0000-0000000000c1', 'compute_embeddings_batch', 'q', 'RUNNING',
        now() - '1 h'::interval, now() - '1 h'::interval, '{}', '{}', '{}',
        '00000000-0000-0000-0000-0000000000c0'),
       ('00000000-0000-0000-0000-0000000000c2', 'compute_embeddings_batch', 'q', 'RUNNING',
        now() - '1 h'::interval, now() - '1 h'::interval, '{}', '{}', '{}',
        '00000000-0000-0000-0000-0000000000c0'),
       ('00000000-0000-0000-0000-0000000000c3', 'compute_embeddings_batch', 'q', 'SUCCEEDED',
        now() - '2 h'::interval, now() - '2 h'::interval, '{}', '{}', '{}',
        '00000000-0000-0000-0000-0000000000c0');
INSERT INTO job_event (job_id, ts, level, event, message, fields)
VALUES ('00000000-0000-0000-0000-0000000000c1', now() - '2 min'::interval, 'info', 'batch.done', 'ok', '{}'),
       ('00000000-0000-0000-0000-0000000000c2', now() - '9 min'::interval, 'info', 'batch.done', 'ok', '{}');
SELECT right(job_id::text, 2) AS job, verdict, right(parent_job_id::text, 2) AS parent,
       children_running,
       round(extract(epoch FROM now() - children_last_event_ts) / 60) AS children_silent_min
  FROM protea_reaper_running_jobs();

-- A job an earlier sweep found alive under its operation's long stall is
-- failed as soon as that stall is shortened: what a backend remembers of
-- live jobs is judged by each job's stall_seconds in force
SELECT fixture_load();
DELETE FROM job WHERE id = '00000000-0000-0000-0000-000000000004';
INSERT INTO protea_reaper_policy (operation, stall_seconds) VALUES ('insert_proteins', 7200);
SELECT protea_reaper_run_once() AS first_sweep, protea_reaper_run_once() AS second_sweep;
SELECT right(id::text, 2) AS job, status FROM job WHERE id = '00000000-0000-0000-0000-000000000001';
UPDATE protea_reaper_policy SET stall_seconds = 1800 WHERE operation = 'insert_proteins';
SELECT protea_reaper_run_once() AS after_shortening;
SELECT right(id::text, 2) AS job, status, error_message FROM job
 WHERE id = '00000000-0000-0000-0000-000000000001';
DELETE FROM protea_reaper_policy;

-- The policy table is the extension's, whatever it is called or wherever
-- it is moved: renaming it keeps the exemptions
SELECT fixture_load();
INSERT INTO protea_reaper_policy (operation, exempt) VALUES ('insert_proteins', true);
BEGIN;
ALTER TABLE protea_reaper_policy RENAME TO reaper_policy_renamed;
SELECT right(job_id::text, 2) AS job, verdict FROM protea_reaper_running_jobs()
 WHERE operation = 'insert_proteins';
SELECT protea_reaper_run_once();
ROLLBACK;
BEGIN;
CREATE SCHEMA elsewhere;
ALTER TABLE protea_reaper_policy SET SCHEMA elsewhere;
SELECT protea_reaper_run_once();
ROLLBACK;
-- ... and a sweep refuses to run without it, or with a column altered,
-- rather than sweep without the operators' exemptions
BEGIN;
ALTER EXTENSION protea_reaper DROP TABLE protea_reaper_policy;
SELECT protea_reaper_run_once();
ROLLBACK;
BEGIN;
ALTER TABLE protea_reaper_policy RENAME COLUMN exempt TO exempted;
SELECT protea_reaper_run_once();
ROLLBACK;
SELECT count(*) AS still_running FROM job WHERE status = 'RUNNING';
DELETE FROM protea_reaper_policy;

-- The rows reach the statements as a parameter, never as SQL text: an
-- operation name cannot change the SQL, only its own jobs get its row, and
-- the statements are as long with 2,000 rows as with 3
SELECT fixture_load();
INSERT INTO protea_reaper_policy (operation, exempt)
VALUES ($$x') OR true OR ('$$, true), ($$a\b$$, true);
INSERT INTO protea_reaper_policy (operation, stall_seconds) VALUES ('predict_go_terms', 60);
SELECT substring(statement FROM 'WHEN (coalesce[^W]*) THEN ''exempt''') AS exempt_rule,
       substring(statement FROM 'WHEN NOT [^W]* THEN (coalesce[^W]*) END') AS stall_rule,
       position('predict_go_terms' IN statement) = 0 AS no_operation_in_sql
  FROM protea_reaper_statements() WHERE name = 'running_jobs';
INSERT INTO protea_reaper_policy (operation, timeout_seconds, stall_seconds, max_runtime_seconds)
VALUES ('op_1', 7200, 600, 86400);
CREATE TEMP TABLE sizes AS
    SELECT name, length(statement) AS few FROM protea_reaper_statements();
INSERT INTO protea_reaper_policy (operation, timeout_seconds, stall_seconds, max_runtime_seconds)
SELECT 'op_' || i, 7200, 600, 86400 FROM generate_series(2, 2000) AS i;
SELECT count(*) AS statements, count(*) FILTER (WHERE length(s.statement) = z.few) AS same_length
  FROM protea_reaper_statements() AS s JOIN sizes AS z USING (name);
DELETE FROM protea_reaper_policy WHERE operation LIKE 'op\_%';
SELECT right(job_id::text, 2) AS job, verdict, stall_seconds FROM protea_reaper_running_jobs();
SELECT protea_reaper_run_once();
DELETE FROM protea_reaper_policy;

-- A job without an operation (a column PROTEA makes NOT NULL) gets the
-- settings, whatever other operations are exempt; a policy row whose key
-- was altered away to a NULL operation applies to no job
SELECT fixture_load();
BEGIN;
ALTER TABLE job ALTER operation DROP NOT NULL;
UPDATE job SET operation = NULL WHERE id = '00000000-0000-0000-0000-000000000004';
INSERT INTO protea_reaper_policy (operation, exempt) VALUES ('load_reference_db', true);
ALTER TABLE protea_reaper_policy DROP CONSTRAINT protea_reaper_policy_pkey;
ALTER TABLE protea_reaper_policy ALTER operation DROP NOT NULL;
INSERT INTO protea_reaper_policy (operation, stall_seconds) VALUES (NULL, 60);
SELECT right(job_id::text, 2) AS job, operation, verdict, timeout_seconds, stall_seconds
  FROM protea_reaper_running_jobs() WHERE job_id = '00000000-0000-0000-0000-000000000004';
SELECT protea_reaper_run_once();
SELECT status FROM job WHERE id = '00000000-0000-0000-0000-000000000004';
ROLLBACK;

-- Every statement runs with JIT off, whatever the caller's settings: LLVM's
-- compiler never checks for interrupts, so a statement it compiles cannot
-- be cancelled (what an owner's trigger sees is what the statement ran with)
SELECT fixture_load();
CREATE TABLE jit_seen (setting text);
CREATE FUNCTION note_jit() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.jit_seen VALUES (current_setting('jit')); RETURN NULL; END$$;
CREATE TRIGGER note_jit AFTER INSERT ON job_event FOR EACH STATEMENT EXECUTE FUNCTION note_jit();
SET jit = on;
SET jit_above_cost = 0;
SELECT protea_reaper_run_once();
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000003', 'by hand');
RESET jit;
RESET jit_above_cost;
SELECT setting, count(*) FROM jit_seen GROUP BY 1;
DROP TRIGGER note_jit ON job_event;
DROP FUNCTION note_jit();
DROP TABLE jit_seen;

-- The rows a sweep keeps in memory are bounded: past 100,000 rows the sweep
-- refuses, naming the table, rather than grow with whatever was inserted
SELECT fixture_load();
BEGIN;
INSERT INTO protea_reaper_policy (operation, exempt)
SELECT 'op_' || i, true FROM generate_series(1, 100001) AS i;
SELECT protea_reaper_run_once();
ROLLBACK;
SELECT count(*) AS still_running FROM job WHERE status = 'RUNNING';
