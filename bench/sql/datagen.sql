-- bench/sql/datagen.sql: set-based generators for a PROTEA-shaped data set.
--
-- Everything lives in schema "bench" (helpers only); the data goes into
-- PROTEA's own job/job_event tables, created from test/protea_schema.sql
-- with PROTEA's indexes and nothing else.
--
-- Job ids are deterministic (md5 of a tag and an ordinal), so later phases
-- can address a job class without any extra column:
--   finished jobs  md5('fin'  || k)   k = 1 .. 10^6
--   running pool   md5('run'  || k)   k = 1 .. 4000; class by k % 20:
--                    0,1   stale  (10 %): started 7-30 h ago, last event 1-5 h ago
--                    2,3,4 alive  (15 %): started 7-48 h ago, events until now
--                    else  young  (75 %): started 0-5 h ago, events until now
--   mass reap set  md5('mass' || k)   k = 1 .. 100 000, all stale
-- Every job gets 10 job_events: job.started, 8 x job.progress and, for a
-- finished job, its end event; timestamps are spread between start and
-- last activity.

CREATE SCHEMA IF NOT EXISTS bench;

CREATE OR REPLACE FUNCTION bench.ops(k bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT (ARRAY['insert_proteins', 'compute_embeddings', 'predict_go_terms',
                'insert_proteins', 'compute_embeddings_batch', 'predict_go_terms_batch',
                'insert_proteins', 'load_annotations'])[1 + (k % 8)::int]
$$;

CREATE OR REPLACE FUNCTION bench.queue(op text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN op LIKE 'compute_embeddings%' THEN 'embeddings'
              WHEN op LIKE 'predict_go_terms%' THEN 'go'
              WHEN op = 'load_annotations' THEN 'annotations'
              ELSE 'proteins' END
$$;

-- 10 events per job, spread from started_at to last_ts.  The first is
-- job.started, the last is end_event (job.succeeded, ... or job.progress
-- for a running job).
CREATE OR REPLACE FUNCTION bench.add_events(ids uuid[], starts timestamptz[],
                                            lasts timestamptz[], end_events text[])
RETURNS void LANGUAGE sql AS $$
  WITH steps AS MATERIALIZED (
    SELECT i, i / 9.0::float8 AS frac,
           CASE i WHEN 0 THEN 'job.started' ELSE 'job.progress' END AS event,
           CASE i WHEN 0 THEN 'started' ELSE 'batch ' || i || '/8 done' END AS message,
           jsonb_build_object('current', i, 'total', 9) AS fields
      FROM generate_series(0, 9) AS i)
  INSERT INTO job_event (job_id, ts, level, event, message, fields)
  SELECT j.id,
         j.s + (j.l - j.s) * st.frac,
         CASE WHEN st.i = 9 AND j.e = 'job.failed' THEN 'error' ELSE 'info' END,
         CASE st.i WHEN 9 THEN j.e ELSE st.event END,
         CASE st.i WHEN 9 THEN j.e ELSE st.message END,
         st.fields
    FROM unnest(ids, starts, lasts, end_events) AS j(id, s, l, e), steps AS st
$$;

-- Finished jobs k = lo..hi, created over the last 90 days
CREATE OR REPLACE FUNCTION bench.add_finished(lo bigint, hi bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE fin ON COMMIT DROP AS
  SELECT md5('fin' || k)::uuid AS id, bench.ops(k) AS op,
         CASE WHEN k % 20 < 17 THEN 'SUCCEEDED' WHEN k % 20 < 19 THEN 'FAILED' ELSE 'CANCELLED' END::job_status AS st,
         c, c + make_interval(secs => (k * 7) % 60) AS s,
         c + make_interval(secs => (k * 7) % 60 + 10 + (k * 7919) % 7200) AS f
    FROM generate_series(lo, hi) AS k,
         LATERAL (SELECT now() - interval '91 days' + (interval '90 days') * ((k * 104729) % 1000003) / 1000003.0 AS c) AS t;

  INSERT INTO job (id, operation, queue_name, status, payload, meta, tags, created_at, started_at,
                   finished_at, progress_current, progress_total, error_code, error_message)
  SELECT id, op, bench.queue(op), st, jsonb_build_object('batch_size', 500), '{}', '{}', c, s, f,
         CASE WHEN st = 'SUCCEEDED' THEN 8 ELSE 3 END, 8,
         CASE st WHEN 'FAILED' THEN 'WorkerError' END,
         CASE st WHEN 'FAILED' THEN 'worker raised an exception' END
    FROM fin ORDER BY c;

  PERFORM bench.add_events(array_agg(id), array_agg(s), array_agg(f),
                           array_agg('job.' || lower(st::text)))
     FROM fin;
END $$;

-- Running pool jobs k = lo..hi (class by k % 20, see above); those with
-- k > n_running are parked as 'QUEUED' (see bench.set_running)
CREATE OR REPLACE FUNCTION bench.add_running(lo bigint, hi bigint, n_running bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE run ON COMMIT DROP AS
  SELECT md5('run' || k)::uuid AS id, bench.ops(k) AS op, k,
         CASE WHEN k % 20 < 2 THEN now() - interval '7 hours' - interval '23 hours' * r1
              WHEN k % 20 < 5 THEN now() - interval '7 hours' - interval '41 hours' * r1
              ELSE now() - interval '5 hours' * r1 END AS s,
         CASE WHEN k % 20 < 2 THEN now() - interval '1 hour' - interval '4 hours' * r2
              ELSE now() - interval '5 minutes' * r2 END AS l
    FROM generate_series(lo, hi) AS k,
         LATERAL (SELECT ((k * 104729) % 1009) / 1009.0 AS r1,
                         ((k * 7919) % 1013) / 1013.0 AS r2) AS t;

  INSERT INTO job (id, operation, queue_name, status, payload, meta, tags, created_at, started_at,
                   progress_current, progress_total)
  SELECT id, op, bench.queue(op),
         CASE WHEN k <= n_running THEN 'RUNNING' ELSE 'QUEUED' END::job_status,
         '{}', '{}', '{}', s - interval '3 seconds', s, 7, 8
    FROM run ORDER BY s;

  -- a young job's events cannot precede its start
  PERFORM bench.add_events(array_agg(id), array_agg(s), array_agg(greatest(l, s)),
                           array_agg('job.progress'::text))
     FROM run;
END $$;

-- Make exactly the pool jobs k <= n running; the rest of the pool is queued
CREATE OR REPLACE FUNCTION bench.set_running(n bigint)
RETURNS void LANGUAGE sql AS $$
  UPDATE job AS j SET status = CASE WHEN p.k <= n THEN 'RUNNING' ELSE 'QUEUED' END::job_status
    FROM (SELECT k, md5('run' || k)::uuid AS id FROM generate_series(1, 4000) AS k) AS p
   WHERE j.id = p.id
     AND j.status IN ('RUNNING', 'QUEUED')
     AND j.status IS DISTINCT FROM (CASE WHEN p.k <= n THEN 'RUNNING' ELSE 'QUEUED' END::job_status)
$$;

-- Alive coordinators keep emitting: one fresh event per alive running job
CREATE OR REPLACE FUNCTION bench.refresh_alive()
RETURNS void LANGUAGE sql AS $$
  INSERT INTO job_event (job_id, ts, level, event, message, fields)
  SELECT j.id, now(), 'info', 'job.progress', 'child batch done', '{"child": true}'
    FROM generate_series(1, 4000) AS k
    JOIN job AS j ON j.id = md5('run' || k)::uuid
   WHERE k % 20 IN (2, 3, 4) AND j.status = 'RUNNING'
$$;

-- The mass reap set: n stale running jobs, started 7-30 h ago, silent for 1-5 h
CREATE OR REPLACE FUNCTION bench.add_mass(n bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE mass ON COMMIT DROP AS
  SELECT md5('mass' || k)::uuid AS id, bench.ops(k) AS op,
         now() - interval '7 hours' - interval '23 hours' * (((k * 104729) % 1009) / 1009.0) AS s,
         now() - interval '1 hour' - interval '4 hours' * (((k * 7919) % 1013) / 1013.0) AS l
    FROM generate_series(1, n) AS k;

  INSERT INTO job (id, operation, queue_name, status, payload, meta, tags, created_at, started_at,
                   progress_current, progress_total)
  SELECT id, op, bench.queue(op), 'RUNNING', '{}', '{}', '{}', s - interval '3 seconds', s, 2, 8
    FROM mass ORDER BY s;

  PERFORM bench.add_events(array_agg(id), array_agg(s), array_agg(l),
                           array_agg('job.progress'::text))
     FROM mass;
END $$;

-- What the data set holds now
CREATE OR REPLACE FUNCTION bench.shape(OUT finished bigint, OUT running bigint,
                                       OUT stale bigint, OUT alive bigint,
                                       OUT young bigint, OUT events bigint)
LANGUAGE sql AS $$
  SELECT (SELECT count(*) FROM job WHERE status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')),
         (SELECT count(*) FROM job WHERE status = 'RUNNING'),
         (SELECT count(*) FILTER (WHERE verdict = 'stale') FROM protea_reaper_running_jobs()),
         (SELECT count(*) FILTER (WHERE verdict = 'alive') FROM protea_reaper_running_jobs()),
         (SELECT count(*) FILTER (WHERE verdict = 'young') FROM protea_reaper_running_jobs()),
         (SELECT count(*) FROM job_event)
$$;

-- Any query whose first column is the number of jobs failed, timed on the
-- server with clock_timestamp(), with the WAL it wrote (insert position
-- before and after; the query is the only thing the transaction does)
CREATE OR REPLACE FUNCTION bench.measure(q text, OUT reaped bigint, OUT server_ms float8,
                                         OUT wal_bytes numeric)
LANGUAGE plpgsql AS $$
DECLARE
  l0 pg_lsn;
  t0 timestamptz;
BEGIN
  l0 := pg_current_wal_insert_lsn();
  t0 := clock_timestamp();
  EXECUTE q INTO reaped;
  server_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
  wal_bytes := pg_wal_lsn_diff(pg_current_wal_insert_lsn(), l0);
END $$;

-- protea_reaper_run_once(), measured as above
CREATE OR REPLACE FUNCTION bench.timed_run_once(OUT reaped bigint, OUT server_ms float8,
                                                OUT wal_bytes numeric)
LANGUAGE sql AS $$
  SELECT * FROM bench.measure('SELECT protea_reaper_run_once()')
$$;
