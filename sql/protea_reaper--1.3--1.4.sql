/* protea_reaper--1.3--1.4.sql: ALTER EXTENSION protea_reaper UPDATE from 1.3 */

\echo Use "ALTER EXTENSION protea_reaper UPDATE" to load this file. \quit

-- protea_reaper_status() gains columns (the jobs a cycle saw, what the
-- reaper reaped by cause, its false alarms), and protea_reaper_metrics with
-- it, so both are made again, with their 1.4 grants (pg_monitor).  Grants a
-- superuser gave on the old ones are not given again here: PostgreSQL
-- would count them as the extension's own (pg_init_privs), so that
-- pg_dump would leave them out.  The update says which they were, as the
-- GRANT statements to run after it.
SELECT pg_catalog.set_config('protea_reaper_upgrade.grants',
       coalesce(pg_catalog.string_agg(g.stmt, ' ' ORDER BY g.stmt), ''),
       true)
  FROM (SELECT pg_catalog.format('GRANT EXECUTE ON FUNCTION %s.protea_reaper_status() TO %s%s;',
                                 pg_catalog.quote_ident(n.nspname),
                                 CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                      ELSE pg_catalog.quote_ident(r.rolname) END,
                                 CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
          FROM pg_catalog.pg_proc AS p
          JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
         CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) AS a
          LEFT JOIN pg_catalog.pg_roles AS r ON r.oid = a.grantee
         WHERE p.oid = 'protea_reaper_status()'::pg_catalog.regprocedure
           AND a.grantee <> p.proowner
           AND a.grantee <> 'pg_monitor'::pg_catalog.regrole
           AND (a.grantee = 0 OR r.rolname IS NOT NULL)
        UNION ALL
        SELECT pg_catalog.format('GRANT %s ON %s.protea_reaper_metrics TO %s%s;',
                                 a.privilege_type,
                                 pg_catalog.quote_ident(n.nspname),
                                 CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                      ELSE pg_catalog.quote_ident(r.rolname) END,
                                 CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
          FROM pg_catalog.pg_class AS c
          JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
         CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
          LEFT JOIN pg_catalog.pg_roles AS r ON r.oid = a.grantee
         WHERE c.oid = 'protea_reaper_metrics'::pg_catalog.regclass
           AND a.grantee <> c.relowner
           AND a.grantee <> 'pg_monitor'::pg_catalog.regrole
           AND (a.grantee = 0 OR r.rolname IS NOT NULL)) AS g(stmt);

DROP VIEW protea_reaper_metrics;
DROP FUNCTION protea_reaper_status();

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

REVOKE ALL ON FUNCTION protea_reaper_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION protea_reaper_status() TO pg_monitor;

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

DO $$
BEGIN
    IF pg_catalog.current_setting('protea_reaper_upgrade.grants') <> '' THEN
        RAISE WARNING 'protea_reaper_status() and protea_reaper_metrics were made again for 1.4: the grants given on them besides pg_monitor''s are gone'
            USING DETAIL = 'They now have the columns of 1.4''s metrics.',
                  HINT = 'Give them again once the update has committed: ' || pg_catalog.current_setting('protea_reaper_upgrade.grants');
    END IF;
END
$$;
