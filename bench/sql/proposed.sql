-- bench/sql/proposed.sql: prototypes of the sweep shapes this benchmark
-- proposes, as PL/pgSQL over static SQL (SPI with cached plans: the same
-- machinery as src/sweep.c) on public.job / public.job_event.  Only for
-- measuring the proposals beside protea_reaper_run_once(), and the write
-- floor under them; the extension is not changed by them.
--
-- bench.sweep_proposed(timeout, stall, batch)
--     1. classify: ONE scan over the candidates (running, past the timeout)
--        finds each one's last event once, and yields both the alive ones
--        (for the log and the status) and the stale ids in started_at order;
--     2. fail: the stale ids batch_size at a time, by primary key, each batch
--        re-checking staleness under FOR UPDATE SKIP LOCKED (so an event or
--        a finish that lands after step 1 still wins, as today).
-- Returns (reaped, alive).
--
-- bench.write_floor(timeout, stall, batch, locked)
--     not a sweep: the floor under any reaper's mass reap on these tables.
--     The stale ids are found first, untimed; then only the write is timed:
--     the UPDATE of each job by primary key and its audit INSERT, batch_size
--     jobs per statement, exactly the columns the reaper writes; with locked,
--     each batch first locks its rows FOR UPDATE SKIP LOCKED, as the sweep
--     must so as never to wait on a live worker.  Returns (server_ms,
--     reaped, wal_bytes) of the write alone, as bench.measure().

CREATE OR REPLACE FUNCTION bench.sweep_proposed(timeout_s int, stall_s int, batch int,
                                                OUT reaped bigint, OUT alive bigint)
LANGUAGE plpgsql AS $$
DECLARE
  msg text := format('Job stalled: no activity in %ss (started >%ss ago)', stall_s, timeout_s);
  ids uuid[];
  chunk uuid[];
  n bigint;
  i int := 1;
BEGIN
  -- 1. classify every candidate once (the real code would also return the
  --    alive rows for "Reaper skipped live job." and the status)
  SELECT coalesce(array_agg(c.id ORDER BY c.started_at, c.id) FILTER (WHERE c.is_stale), '{}'),
         count(*) FILTER (WHERE NOT c.is_stale)
    INTO ids, alive
    FROM (SELECT j.id, j.started_at,
                 (le.last_ts IS NULL OR le.last_ts <= now() - make_interval(secs => stall_s)) AS is_stale
            FROM public.job AS j
            LEFT JOIN LATERAL (SELECT e.ts AS last_ts FROM public.job_event AS e
                                WHERE e.job_id = j.id
                                ORDER BY e.ts DESC LIMIT 1) AS le ON true
           WHERE j.status = 'RUNNING'
             AND j.started_at < now() - make_interval(secs => timeout_s)) AS c;
  reaped := 0;

  -- 2. fail them, batch_size at a time, by id, re-checked under the row lock
  --    (the worker would commit after each chunk)
  WHILE i <= cardinality(ids) LOOP
    chunk := ids[i : i + batch - 1];
    i := i + batch;
    WITH stale AS (
      SELECT j.id, le.last_ts
        FROM public.job AS j
        LEFT JOIN LATERAL (SELECT e.ts AS last_ts FROM public.job_event AS e
                            WHERE e.job_id = j.id
                            ORDER BY e.ts DESC LIMIT 1) AS le ON true
       WHERE j.id = ANY (chunk)
         AND j.status = 'RUNNING'
         AND j.started_at < now() - make_interval(secs => timeout_s)
         AND (le.last_ts IS NULL OR le.last_ts <= now() - make_interval(secs => stall_s))
       FOR UPDATE OF j SKIP LOCKED
    ), failed AS (
      UPDATE public.job AS j
         SET status = 'FAILED', finished_at = now(),
             error_code = 'JobTimeout', error_message = msg
        FROM stale AS s
       WHERE j.id = s.id AND j.status = 'RUNNING'
      RETURNING j.id, j.operation, j.started_at, s.last_ts
    ), audit AS (
      INSERT INTO public.job_event (job_id, ts, level, event, message, fields)
      SELECT f.id, now(), 'error', 'job.timeout', msg,
             jsonb_build_object('timeout_seconds', timeout_s, 'stall_seconds', stall_s,
                                'last_event_ts', f.last_ts)
        FROM failed AS f
    )
    SELECT count(*) INTO n FROM failed;
    reaped := reaped + n;
  END LOOP;
END $$;

DROP FUNCTION IF EXISTS bench.write_floor(int, int, int);
CREATE OR REPLACE FUNCTION bench.write_floor(timeout_s int, stall_s int, batch int,
                                             locked boolean DEFAULT false,
                                             OUT server_ms float8, OUT reaped bigint,
                                             OUT wal_bytes numeric)
LANGUAGE plpgsql AS $$
DECLARE
  msg text := format('Job stalled: no activity in %ss (started >%ss ago)', stall_s, timeout_s);
  ids uuid[];
  lasts timestamptz[];
  n bigint;
  i int := 1;
  l0 pg_lsn;
  t0 timestamptz;
BEGIN
  SELECT coalesce(array_agg(job_id), '{}'), coalesce(array_agg(last_event_ts), '{}')
    INTO ids, lasts
    FROM protea_reaper_running_jobs() WHERE verdict = 'stale';
  reaped := 0;
  l0 := pg_current_wal_insert_lsn();
  t0 := clock_timestamp();
  WHILE i <= cardinality(ids) LOOP
    -- the sweep's row locks, taken the same way (its own statement here)
    IF locked THEN
      PERFORM 1 FROM public.job AS j
        WHERE j.id = ANY (ids[i : i + batch - 1])
          FOR UPDATE OF j SKIP LOCKED;
    END IF;
    WITH chunk AS (
      SELECT * FROM unnest(ids[i : i + batch - 1], lasts[i : i + batch - 1]) AS c(id, last_ts)
    ), failed AS (
      UPDATE public.job AS j
         SET status = 'FAILED', finished_at = now(),
             error_code = 'JobTimeout', error_message = msg
        FROM chunk AS c
       WHERE j.id = c.id
      RETURNING j.id, c.last_ts
    ), audit AS (
      INSERT INTO public.job_event (job_id, ts, level, event, message, fields)
      SELECT f.id, now(), 'error', 'job.timeout', msg,
             jsonb_build_object('timeout_seconds', timeout_s, 'stall_seconds', stall_s,
                                'last_event_ts', f.last_ts)
        FROM failed AS f
    )
    SELECT count(*) INTO n FROM failed;
    reaped := reaped + n;
    i := i + batch;
  END LOOP;
  server_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
  wal_bytes := pg_wal_lsn_diff(pg_current_wal_insert_lsn(), l0);
END $$;
