--
-- timestamps: infinite started_at, leased_until and job_event.ts never
-- break a sweep, protea_reaper_running_jobs() or the doctor.  A job whose
-- start is infinite is never judged (its age is unknown, as with no
-- started_at); a lease or an event at +infinity keeps a job alive for
-- ever, and the list says so; -infinity is long ago.  The doctor's clock
-- skew check lists every such job.
--
SELECT fixture_load();
DELETE FROM protea_reaper_policy;
-- 3: started at +infinity (was young); 4: at -infinity (was stale)
UPDATE job SET started_at = 'infinity' WHERE id = '00000000-0000-0000-0000-000000000003';
UPDATE job SET started_at = '-infinity' WHERE id = '00000000-0000-0000-0000-000000000004';
-- 2: leased until +infinity; 1: an event at +infinity
UPDATE job SET leased_until = 'infinity' WHERE id = '00000000-0000-0000-0000-000000000002';
INSERT INTO job_event (job_id, ts, level, event, fields)
VALUES ('00000000-0000-0000-0000-000000000001', 'infinity', 'info', 'job.progress', '{}');
-- 11: 8 h old, leased until -infinity, its only event at -infinity: stale
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags,
                 leased_until)
VALUES ('00000000-0000-0000-0000-000000000011', 'insert_proteins', 'q', 'RUNNING',
        now() - '8 h'::interval, now() - '8 h'::interval, '{}', '{}', '{}', '-infinity');
INSERT INTO job_event (job_id, ts, level, event, fields)
VALUES ('00000000-0000-0000-0000-000000000011', '-infinity', 'info', 'job.progress', '{}');

SELECT right(job_id::text, 2) AS job, started_at IN ('infinity', '-infinity') AS inf_start,
       CASE WHEN isfinite(last_event_ts) THEN 'finite' ELSE last_event_ts::text END AS last_event,
       running_for IS NULL AS no_age, silent_for IS NULL AS no_silence,
       verdict, leased_until
  FROM protea_reaper_running_jobs();

-- The doctor runs every check, and the clock skew check names them
SELECT "check", ok, detail, hint FROM protea_reaper_check()
 WHERE "check" IN ('overdue jobs', 'clock skew', 'false alarms');

-- The sweep fails what the list calls stale (11), and nothing else
SELECT protea_reaper_run_once();
SELECT right(id::text, 2) AS job, status, error_code FROM job
 WHERE status IN ('RUNNING', 'FAILED') ORDER BY id;

-- The runtime cap still applies to a job leased or alive for ever
SET protea_reaper.max_runtime_seconds = 23400;
SELECT right(job_id::text, 2) AS job, verdict FROM protea_reaper_running_jobs();
SELECT protea_reaper_run_once();
RESET protea_reaper.max_runtime_seconds;

-- A false alarm whose job started at -infinity: the doctor still reports it
SELECT fixture_load();
UPDATE job SET started_at = '-infinity', status = 'FAILED', error_code = 'JobTimeout'
 WHERE id = '00000000-0000-0000-0000-000000000004';
INSERT INTO job_event (job_id, ts, level, event, fields) VALUES
    ('00000000-0000-0000-0000-000000000004', now() - '1 h'::interval, 'error', 'job.timeout', '{"reaper": "protea_reaper"}'),
    ('00000000-0000-0000-0000-000000000004', now() - '30 min'::interval, 'info', 'job.progress', '{}');
SELECT "check", ok, detail FROM protea_reaper_check() WHERE "check" = 'false alarms';
SELECT fixture_load();
