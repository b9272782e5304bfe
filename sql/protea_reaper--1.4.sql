/* protea_reaper--1.4.sql: the SQL API of protea_reaper, version 1.4 */

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
    OUT leased_until timestamptz,
    OUT timeout_seconds integer,
    OUT stall_seconds integer,
    OUT max_runtime_seconds integer,
    OUT parent_job_id uuid,
    OUT children_running bigint,
    OUT children_last_event_ts timestamptz,
    OUT lease_lapsed_for interval,
    OUT requeues bigint,
    OUT max_lease_requeues integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'protea_reaper_running_jobs_1_2'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION protea_reaper_running_jobs() IS
'Every running job, its last job_event, its lease, the thresholds that apply to it, its running children, its re-queues and what a sweep would do: stale, lease lapsed, capped, alive, leased, young, exempt, no started_at';

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
    OUT last_waiting bigint,
    OUT next_start_at timestamptz,
    OUT starts bigint,
    OUT last_running bigint,
    OUT last_stale bigint,
    OUT last_oldest_stale_seconds double precision,
    OUT total_stalled bigint,
    OUT total_capped bigint,
    OUT total_lease_expired bigint,
    OUT total_requeued bigint,
    OUT total_skipped_locked bigint,
    OUT false_alarms bigint,
    OUT false_alarms_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'protea_reaper_status_1_4'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION protea_reaper_status() IS
'The launcher (database NULL), then the reaper of each database it looks after: pid, state and why, settings in force, cycles, last result and last error, next start, the jobs it saw, what it reaped by cause, its false alarms';

CREATE FUNCTION protea_reaper_wake()
RETURNS boolean
AS 'MODULE_PATHNAME', 'protea_reaper_wake'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION protea_reaper_wake() IS
'Ask the reaper of this database to sweep now rather than at its next interval';

REVOKE ALL ON FUNCTION protea_reaper_run_once() FROM PUBLIC;
REVOKE ALL ON FUNCTION protea_reaper_fail_job(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION protea_reaper_running_jobs() FROM PUBLIC;
REVOKE ALL ON FUNCTION protea_reaper_statements() FROM PUBLIC;
REVOKE ALL ON FUNCTION protea_reaper_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION protea_reaper_wake() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION protea_reaper_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION protea_reaper_running_jobs() TO pg_monitor;

-- Per-operation thresholds.  The sweep reads the rows with the extension
-- owner's rights; only superusers write them unless granted.
CREATE TABLE protea_reaper_policy (
    operation text PRIMARY KEY
        CONSTRAINT operation_not_blank CHECK (pg_catalog.btrim(operation) <> ''),
    timeout_seconds integer
        CONSTRAINT timeout_seconds_positive CHECK (timeout_seconds > 0),
    stall_seconds integer
        CONSTRAINT stall_seconds_positive CHECK (stall_seconds > 0),
    max_runtime_seconds integer
        CONSTRAINT max_runtime_seconds_not_negative CHECK (max_runtime_seconds >= 0),
    exempt boolean NOT NULL DEFAULT false,
    max_lease_requeues integer
        CONSTRAINT max_lease_requeues_not_negative CHECK (max_lease_requeues >= 0),
    events_extend_lease boolean NOT NULL DEFAULT false,
    CONSTRAINT stall_seconds_below_timeout_seconds
        CHECK (stall_seconds < timeout_seconds),
    CONSTRAINT max_runtime_seconds_above_timeout_seconds
        CHECK (max_runtime_seconds = 0 OR max_runtime_seconds > timeout_seconds),
    CONSTRAINT exempt_takes_no_thresholds
        CHECK (NOT exempt OR (timeout_seconds IS NULL AND stall_seconds IS NULL
                              AND max_runtime_seconds IS NULL)),
    CONSTRAINT exempt_takes_no_lease_rules
        CHECK (NOT exempt OR (max_lease_requeues IS NULL AND NOT events_extend_lease))
);

COMMENT ON TABLE protea_reaper_policy IS
'Per-operation thresholds: a row overrides the protea_reaper.* settings for jobs of its operation (NULL: the setting''s), or exempts them';
COMMENT ON COLUMN protea_reaper_policy.operation IS
'job.operation this row applies to, exactly';
COMMENT ON COLUMN protea_reaper_policy.timeout_seconds IS
'A running job must have started longer ago than this to be reaped (NULL: protea_reaper.timeout_seconds)';
COMMENT ON COLUMN protea_reaper_policy.stall_seconds IS
'A job_event newer than this keeps the job alive (NULL: protea_reaper.stall_seconds)';
COMMENT ON COLUMN protea_reaper_policy.max_runtime_seconds IS
'A running job older than this is reaped even if alive; 0: no cap (NULL: protea_reaper.max_runtime_seconds)';
COMMENT ON COLUMN protea_reaper_policy.exempt IS
'The reaper never fails jobs of this operation';

COMMENT ON COLUMN protea_reaper_policy.max_lease_requeues IS
'How many times a job whose lease lapsed goes back to the queue before it is failed (NULL: protea_reaper.max_lease_requeues)';

COMMENT ON COLUMN protea_reaper_policy.events_extend_lease IS
'A job_event within stall_seconds keeps a job alive after its lease lapsed (coordinators whose batches write the events)';

SELECT pg_catalog.pg_extension_config_dump('protea_reaper_policy', '');

REVOKE ALL ON protea_reaper_policy FROM PUBLIC;
GRANT SELECT ON protea_reaper_policy TO pg_monitor;

CREATE FUNCTION protea_reaper_check(
    OUT "check" text,
    OUT ok boolean,
    OUT detail text,
    OUT hint text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'protea_reaper_check'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION protea_reaper_check() IS
'The doctor: preloading, the worker, its database, the tables and indexes, triggers and row security, thresholds and policy, overdue jobs, clock skew, false alarms, another reaper and unguarded finishes, each with its fix';

REVOKE ALL ON FUNCTION protea_reaper_check() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION protea_reaper_check() TO pg_monitor;

-- What Prometheus scrapes (monitoring/protea_reaper_queries.yaml): one row
-- per database's reaper, from the shared status alone (no sweep, no table
-- read, one row per database), so any database with the extension shows
-- every database's reaper.  The launcher is protea_reaper_status()'s row
-- with database NULL.
CREATE VIEW protea_reaper_metrics AS
SELECT s.database,
       s.state,
       (s.pid IS NOT NULL)::integer AS up,
       s.starts,
       s.cycles,
       s.failed_cycles,
       s.total_reaped,
       s.last_reaped,
       s.last_alive,
       s.last_skipped_locked,
       s.last_waiting,
       s.last_cycle_ms / 1000.0 AS last_cycle_seconds,
       pg_catalog.date_part('epoch', pg_catalog.now() - s.last_cycle_end) AS seconds_since_last_cycle,
       s.interval_seconds,
       s.total_stalled,
       s.total_capped,
       s.total_lease_expired,
       s.total_requeued,
       s.total_skipped_locked,
       s.last_running,
       s.last_stale,
       s.last_oldest_stale_seconds,
       s.false_alarms
  FROM protea_reaper_status() AS s
 WHERE s.database IS NOT NULL;

COMMENT ON VIEW protea_reaper_metrics IS
'For scraping: each database''s reaper, up (1: its process runs), its counters since the server started (starts, cycles, failed_cycles, jobs reaped in all and by cause, skipped locked), its last cycle (jobs reaped, alive, skipped locked, left by the brake, running, stale left and the oldest''s age; seconds it took, seconds since it ended) and the doctor''s false alarms';

REVOKE ALL ON protea_reaper_metrics FROM PUBLIC;
GRANT SELECT ON protea_reaper_metrics TO pg_monitor;

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
