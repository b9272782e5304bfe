--
-- batches: a batch_size smaller than the backlog still fails every stale
-- job, each exactly once.
--
SELECT fixture_load();
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags)
SELECT ('00000000-0000-0000-0001-' || lpad(i::text, 12, '0'))::uuid,
       'insert_proteins', 'q', 'RUNNING',
       now() - '7 h'::interval - i * '1 s'::interval,
       now() - '7 h'::interval - i * '1 s'::interval, '{}', '{}', '{}'
  FROM generate_series(1, 25) AS i;

SET protea_reaper.batch_size = 4;
SELECT protea_reaper_run_once();
RESET protea_reaper.batch_size;

-- 25 + jobs 1 and 4, each with one audit event
SELECT count(*) AS failed FROM job WHERE error_code = 'JobTimeout';
SELECT count(*) AS events, count(DISTINCT job_id) AS jobs
  FROM job_event WHERE event = 'job.timeout';
SELECT count(*) AS still_running_and_stale
  FROM protea_reaper_running_jobs() WHERE verdict = 'stale';

-- The first batch and the later ones write the very same failure and audit
-- row (one definition of the write serves both statements): one shape of
-- each, the event at the failure's instant, the right last event
SELECT count(DISTINCT (e.level, e.event, e.message, e.fields - 'last_event_ts')) AS audit_shapes,
       count(DISTINCT (j.status, j.error_code, j.error_message)) AS failure_shapes,
       bool_and(e.ts = j.finished_at) AS same_instant,
       bool_and((e.fields->>'last_event_ts')::timestamptz IS NOT DISTINCT FROM
                (SELECT max(p.ts) FROM job_event p
                  WHERE p.job_id = j.id AND p.event <> 'job.timeout')) AS last_event_right
  FROM job_event e JOIN job j ON j.id = e.job_id
 WHERE e.event = 'job.timeout';

-- batch_size equal to the backlog: one full batch, then an empty one
SELECT fixture_load();
SET protea_reaper.batch_size = 2;
SELECT protea_reaper_run_once();
RESET protea_reaper.batch_size;
