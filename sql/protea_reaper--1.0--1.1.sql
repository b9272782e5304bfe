/* protea_reaper--1.0--1.1.sql: ALTER EXTENSION protea_reaper UPDATE from 1.0 */

\echo Use "ALTER EXTENSION protea_reaper UPDATE" to load this file. \quit

-- protea_reaper_running_jobs() gains columns, so it is made again, with
-- 1.1's grants (pg_monitor).  Grants a superuser gave on the old one are
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
    OUT children_last_event_ts timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'protea_reaper_running_jobs_1_1'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION protea_reaper_running_jobs() IS
'Every running job, its last job_event, its lease, the thresholds that apply to it, its running children and what a sweep would do: stale, capped, alive, leased, young, exempt or no started_at';

REVOKE ALL ON FUNCTION protea_reaper_running_jobs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION protea_reaper_running_jobs() TO pg_monitor;

DO $$
BEGIN
    IF pg_catalog.current_setting('protea_reaper_upgrade.grants') <> '' THEN
        RAISE WARNING 'protea_reaper_running_jobs() was made again for 1.1: the grants given on it besides pg_monitor''s are gone'
            USING HINT = 'Give them again once the update has committed: '
                         || pg_catalog.current_setting('protea_reaper_upgrade.grants');
    END IF;
END
$$;

-- A relation of that name already in the extension's schema was made by
-- whoever could create there: it is refused with its owner named, never
-- adopted (its rows would decide which jobs the reaper exempts).
DO $$
DECLARE
    squatter text;
BEGIN
    SELECT pg_catalog.format('%I.%I (owned by %I)', n.nspname, c.relname,
                             pg_catalog.pg_get_userbyid(c.relowner))
      INTO squatter
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_extension AS x ON x.extnamespace = n.oid
     WHERE x.extname = 'protea_reaper' AND c.relname = 'protea_reaper_policy';
    IF squatter IS NOT NULL THEN
        RAISE EXCEPTION 'cannot update protea_reaper to 1.1: % already exists', squatter
            USING ERRCODE = 'duplicate_table',
                  DETAIL = 'Version 1.1 creates its policy table there; a table made by someone else is not adopted, as its rows would decide which jobs the reaper exempts.',
                  HINT = 'See what it holds and who made it, then drop or rename it (ALTER TABLE ... RENAME TO ...) and run ALTER EXTENSION protea_reaper UPDATE again.';
    END IF;
END
$$;

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
    CONSTRAINT stall_seconds_below_timeout_seconds
        CHECK (stall_seconds < timeout_seconds),
    CONSTRAINT max_runtime_seconds_above_timeout_seconds
        CHECK (max_runtime_seconds = 0 OR max_runtime_seconds > timeout_seconds),
    CONSTRAINT exempt_takes_no_thresholds
        CHECK (NOT exempt OR (timeout_seconds IS NULL AND stall_seconds IS NULL
                              AND max_runtime_seconds IS NULL))
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
'The doctor: preloading, the worker, its database, the tables and indexes, thresholds and policy, overdue jobs, clock skew and false alarms, each with its fix';

REVOKE ALL ON FUNCTION protea_reaper_check() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION protea_reaper_check() TO pg_monitor;

