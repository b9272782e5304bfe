/* protea_reaper--1.1--1.2.sql: ALTER EXTENSION protea_reaper UPDATE from 1.1 */

\echo Use "ALTER EXTENSION protea_reaper UPDATE" to load this file. \quit

-- A lapsed lease: per-operation re-queue budget, and whether events keep
-- a job alive past its lease
ALTER TABLE protea_reaper_policy
    ADD COLUMN max_lease_requeues integer
        CONSTRAINT max_lease_requeues_not_negative CHECK (max_lease_requeues >= 0),
    ADD COLUMN events_extend_lease boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT exempt_takes_no_lease_rules
        CHECK (NOT exempt OR (max_lease_requeues IS NULL AND NOT events_extend_lease));

COMMENT ON COLUMN protea_reaper_policy.max_lease_requeues IS
'How many times a job whose lease lapsed goes back to the queue before it is failed (NULL: protea_reaper.max_lease_requeues)';

COMMENT ON COLUMN protea_reaper_policy.events_extend_lease IS
'A job_event within stall_seconds keeps a job alive after its lease lapsed (coordinators whose batches write the events)';

COMMENT ON FUNCTION protea_reaper_check() IS
'The doctor: preloading, the worker, its database, the tables and indexes, triggers and row security, thresholds and policy, overdue jobs, clock skew, false alarms, another reaper and unguarded finishes, each with its fix';

-- protea_reaper_running_jobs() gains columns, so it is made again, with
-- 1.2's grants (pg_monitor).  Grants a superuser gave on the old one are
-- not given again here: PostgreSQL would count them as the extension's own
-- (pg_init_privs), so that pg_dump would leave them out.  The update says
-- which they were, as the GRANT statements to run after it.
SELECT pg_catalog.set_config('protea_reaper_upgrade.grants',
       coalesce(pg_catalog.string_agg(
           pg_catalog.format('GRANT EXECUTE ON FUNCTION %s.protea_reaper_running_jobs() TO %s%s;',
                             pg_catalog.quote_ident(n.nspname),
                             CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                  ELSE pg_catalog.quote_ident(r.rolname) END,
                             CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END),
           ' ' ORDER BY r.rolname), ''),
       true)
  FROM pg_catalog.pg_proc AS p
  JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
 CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) AS a
  LEFT JOIN pg_catalog.pg_roles AS r ON r.oid = a.grantee
 WHERE p.oid = 'protea_reaper_running_jobs()'::pg_catalog.regprocedure
   AND a.grantee <> p.proowner
   AND a.grantee <> 'pg_monitor'::pg_catalog.regrole
   AND (a.grantee = 0 OR r.rolname IS NOT NULL);

DROP FUNCTION protea_reaper_running_jobs();

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

REVOKE ALL ON FUNCTION protea_reaper_running_jobs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION protea_reaper_running_jobs() TO pg_monitor;

DO $$
BEGIN
    IF pg_catalog.current_setting('protea_reaper_upgrade.grants') <> '' THEN
        RAISE WARNING 'protea_reaper_running_jobs() was made again for 1.2: the grants given on it besides pg_monitor''s are gone'
            USING HINT = 'Give them again once the update has committed: '
                         || pg_catalog.current_setting('protea_reaper_upgrade.grants');
    END IF;
END
$$;

