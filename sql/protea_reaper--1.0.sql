/* protea_reaper--1.0.sql: the SQL API of protea_reaper */

\echo Use "CREATE EXTENSION protea_reaper" to load this file. \quit

-- Every function runs with its owner's rights (the superuser who created
-- the extension) and a pinned search_path, so that the tables named by
-- protea_reaper.job_table/event_table are the only user objects it touches.
-- Nothing is granted to PUBLIC: a superuser decides who may reap.

CREATE FUNCTION protea_reaper_run_once()
RETURNS bigint
AS 'MODULE_PATHNAME', 'protea_reaper_run_once'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION protea_reaper_run_once() IS
'Fail every stale job now, in the caller''s transaction; returns how many';

CREATE FUNCTION protea_reaper_fail_job(job_id uuid, reason text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'protea_reaper_fail_job'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION protea_reaper_fail_job(uuid, text) IS
'Fail one queued or running job by hand (error_code ManualTimeout); false if it had already ended';

CREATE FUNCTION protea_reaper_running_jobs(
    OUT job_id uuid,
    OUT operation text,
    OUT started_at timestamptz,
    OUT last_event_ts timestamptz,
    OUT running_for interval,
    OUT silent_for interval,
    OUT verdict text,
    OUT leased_until timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'protea_reaper_running_jobs'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION protea_reaper_running_jobs() IS
'Every running job, its last job_event, its lease and what a sweep would do: stale, alive, leased, young or no started_at';

CREATE FUNCTION protea_reaper_statements(
    OUT name text,
    OUT statement text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'protea_reaper_statements'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION protea_reaper_statements() IS
'The statements a sweep runs on the tables the settings name, with their labels and lease, as prepared ($1 timeout_seconds, $2 stall_seconds, ...): for EXPLAIN';

CREATE FUNCTION protea_reaper_status(
    OUT pid integer,
    OUT database text,
    OUT state text,
    OUT enabled boolean,
    OUT timeout_seconds integer,
    OUT stall_seconds integer,
    OUT interval_seconds integer,
    OUT started_at timestamptz,
    OUT cycles bigint,
    OUT failed_cycles bigint,
    OUT last_cycle_start timestamptz,
    OUT last_cycle_end timestamptz,
    OUT last_cycle_ms double precision,
    OUT last_reaped bigint,
    OUT last_alive bigint,
    OUT total_reaped bigint,
    OUT last_error text,
    OUT last_error_at timestamptz,
    OUT next_cycle_at timestamptz,
    OUT last_skipped_locked bigint,
    OUT last_waiting bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'protea_reaper_status'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION protea_reaper_status() IS
'The background worker: pid, settings in force, cycles, last result and last error';

CREATE FUNCTION protea_reaper_wake()
RETURNS boolean
AS 'MODULE_PATHNAME', 'protea_reaper_wake'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION protea_reaper_wake() IS
'Ask the background worker to sweep now rather than at its next interval';

REVOKE ALL ON FUNCTION protea_reaper_run_once() FROM PUBLIC;
REVOKE ALL ON FUNCTION protea_reaper_fail_job(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION protea_reaper_running_jobs() FROM PUBLIC;
REVOKE ALL ON FUNCTION protea_reaper_statements() FROM PUBLIC;
REVOKE ALL ON FUNCTION protea_reaper_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION protea_reaper_wake() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION protea_reaper_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION protea_reaper_running_jobs() TO pg_monitor;

-- Say at once when there will be no background worker (a WARNING: CREATE
-- EXTENSION hides NOTICEs raised by the script)
DO $$
BEGIN
    IF pg_catalog.strpos(pg_catalog.current_setting('shared_preload_libraries'),
                         'protea_reaper') = 0 THEN
        RAISE WARNING 'protea_reaper is not in shared_preload_libraries: no background worker will reap jobs'
            USING HINT = 'Add protea_reaper to shared_preload_libraries and restart the server; until then sweep with SELECT protea_reaper_run_once().';
    END IF;
END
$$;
