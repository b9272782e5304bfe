-- bench/sql/proposed.sql: prototypes of the sweep shapes this benchmark
-- proposes, as PL/pgSQL over static SQL (SPI with cached plans: the same
-- machinery as src/sweep.c) on public.job / public.job_event.  Only for
-- measuring the proposals beside protea_reaper_run_once(); the extension is
-- not changed by them.
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
-- bench.classify_cached(timeout, stall)
--     the classification of an idle cycle in a worker that remembers, from
--     earlier cycles, which jobs a recent event keeps alive and until when
--     (last_ts + stall_seconds: events only ever get newer): those ids, in
--     bench.known_alive here (an in-memory hash in the worker), are not
--     looked up again.  Returns (looked_up, stale).

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
           WHERE j.status = 'running'
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
         AND j.status = 'running'
         AND j.started_at < now() - make_interval(secs => timeout_s)
         AND (le.last_ts IS NULL OR le.last_ts <= now() - make_interval(secs => stall_s))
       FOR UPDATE OF j SKIP LOCKED
    ), failed AS (
      UPDATE public.job AS j
         SET status = 'failed', finished_at = now(),
             error_code = 'JobTimeout', error_message = msg
        FROM stale AS s
       WHERE j.id = s.id AND j.status = 'running'
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

CREATE TABLE IF NOT EXISTS bench.known_alive (id uuid PRIMARY KEY);

CREATE OR REPLACE FUNCTION bench.classify_cached(timeout_s int, stall_s int,
                                                 OUT looked_up bigint, OUT stale bigint)
LANGUAGE plpgsql AS $$
DECLARE
  known uuid[];
BEGIN
  SELECT coalesce(array_agg(id), '{}') INTO known FROM bench.known_alive;
  SELECT count(*), count(*) FILTER (WHERE c.is_stale) INTO looked_up, stale
    FROM (SELECT j.id,
                 (le.last_ts IS NULL OR le.last_ts <= now() - make_interval(secs => stall_s)) AS is_stale
            FROM public.job AS j
            LEFT JOIN unnest(known) AS k(id) ON k.id = j.id
            LEFT JOIN LATERAL (SELECT e.ts AS last_ts FROM public.job_event AS e
                                WHERE e.job_id = j.id
                                ORDER BY e.ts DESC LIMIT 1) AS le ON true
           WHERE j.status = 'running'
             AND j.started_at < now() - make_interval(secs => timeout_s)
             AND k.id IS NULL) AS c;
END $$;

