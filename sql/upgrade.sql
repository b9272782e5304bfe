--
-- upgrade: ALTER EXTENSION protea_reaper UPDATE from 1.0 (to 1.1, 1.2,
-- 1.3, then 1.4), from 1.1, from 1.2 and from 1.3 gives exactly the objects
-- of a fresh 1.4 install (functions with their signatures, properties, grants and
-- comments; the policy table with its columns, constraints, grants and
-- comments; the metrics view with its definition; what pg_dump keeps),
-- keeps the grants a superuser gave on the functions it remakes, and the
-- 1.4 library serves a database still at 1.0, 1.1, 1.2 or 1.3.
--

-- Everything an install made, one line per property
CREATE TABLE installed (install text, kind text, object text, description text);
CREATE FUNCTION snapshot(label text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO installed
    SELECT label, 'member', pg_describe_object(d.classid, d.objid, d.objsubid), ''
      FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'protea_reaper'
     WHERE d.deptype = 'e'
       -- the table's row types: members from PostgreSQL 17 on, compared as the table
       AND d.classid <> 'pg_type'::regclass
    UNION ALL
    SELECT label, 'function', p.oid::regprocedure::text,
           concat_ws(' | ', 'returns ' || pg_get_function_result(p.oid),
                     'args ' || pg_get_function_arguments(p.oid),
                     p.provolatile, p.prosecdef, l.lanname, p.prosrc, p.probin,
                     p.proconfig::text, p.proacl::text, obj_description(p.oid, 'pg_proc'))
      FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
      JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
      JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'protea_reaper'
    UNION ALL
    SELECT label, 'table', c.oid::regclass::text,
           concat_ws(' | ', c.relkind, c.relacl::text, obj_description(c.oid, 'pg_class'))
      FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass
      JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'protea_reaper'
    UNION ALL
    SELECT label, 'column', a.attrelid::regclass || '.' || a.attname,
           concat_ws(' | ', a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                     pg_get_expr(ad.adbin, ad.adrelid), a.attacl::text,
                     col_description(a.attrelid, a.attnum))
      FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attrelid = 'protea_reaper_policy'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT label, 'view', c.oid::regclass::text, pg_get_viewdef(c.oid)
      FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass
      JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'protea_reaper'
     WHERE c.relkind = 'v'
    UNION ALL
    SELECT label, 'constraint', conname, pg_get_constraintdef(oid)
      FROM pg_constraint WHERE conrelid = 'protea_reaper_policy'::regclass
       -- NOT NULL: a constraint of its own from PostgreSQL 18 on, compared as the column
       AND contype <> 'n'
    UNION ALL
    SELECT label, 'index', indexrelid::regclass::text, pg_get_indexdef(indexrelid)
      FROM pg_index WHERE indrelid = 'protea_reaper_policy'::regclass
    UNION ALL
    SELECT label, 'config dump', extconfig::regclass[]::text, extcondition::text
      FROM pg_extension WHERE extname = 'protea_reaper'
    UNION ALL
    SELECT label, 'version', extname, extversion
      FROM pg_extension WHERE extname = 'protea_reaper'
$$;

-- A fresh 1.4 install (each CREATE EXTENSION without its WARNING when the
-- library is not preloaded: regress preload)
DROP EXTENSION protea_reaper;
SET client_min_messages = error;
CREATE EXTENSION protea_reaper;
RESET client_min_messages;
SELECT snapshot('fresh');

-- 1.0, then the update
DROP EXTENSION protea_reaper;
SET client_min_messages = error;
CREATE EXTENSION protea_reaper VERSION '1.0';
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'protea_reaper';

-- Until the update, the new library serves 1.0's functions as 1.0 declared
-- them: eight columns of running jobs, a sweep with the settings alone
SELECT fixture_load();
SELECT right(job_id::text, 2) AS job, verdict FROM protea_reaper_running_jobs();

-- A table of the policy's name that is not the extension's (made before
-- the update by whoever may create tables in public) is not read: it
-- cannot exempt anything
CREATE ROLE policy_squatter;
GRANT CREATE ON SCHEMA public TO policy_squatter;
SET ROLE policy_squatter;
CREATE TABLE public.protea_reaper_policy (operation text PRIMARY KEY, timeout_seconds integer,
    stall_seconds integer, max_runtime_seconds integer, exempt boolean NOT NULL DEFAULT false);
INSERT INTO public.protea_reaper_policy (operation, exempt) VALUES ('insert_proteins', true);
RESET ROLE;
SELECT protea_reaper_run_once();
-- ... and the update refuses to adopt it, naming it and its owner
\set SHOW_CONTEXT never
ALTER EXTENSION protea_reaper UPDATE;
\set SHOW_CONTEXT errors
DROP TABLE public.protea_reaper_policy;
REVOKE CREATE ON SCHEMA public FROM policy_squatter;
DROP ROLE policy_squatter;

ALTER EXTENSION protea_reaper UPDATE;
SELECT snapshot('upgraded');

-- What each install has (the same counts), and every line that differs (none)
SELECT kind, count(*) FILTER (WHERE install = 'fresh') AS fresh,
       count(*) FILTER (WHERE install = 'upgraded') AS upgraded
  FROM installed GROUP BY kind ORDER BY kind;
(SELECT 'only fresh' AS "where", kind, object, description FROM installed WHERE install = 'fresh'
 EXCEPT
 SELECT 'only fresh', kind, object, description FROM installed WHERE install = 'upgraded')
UNION ALL
(SELECT 'only upgraded', kind, object, description FROM installed WHERE install = 'upgraded'
 EXCEPT
 SELECT 'only upgraded', kind, object, description FROM installed WHERE install = 'fresh')
ORDER BY 1, 2, 3;

-- 1.1, then the update to 1.2.  Until then the 1.2 library serves 1.1's
-- declarations: fourteen columns of running jobs, a policy of five columns
DROP EXTENSION protea_reaper;
SET client_min_messages = error;
CREATE EXTENSION protea_reaper VERSION '1.1';
RESET client_min_messages;
SELECT fixture_load();
INSERT INTO protea_reaper_policy (operation, stall_seconds) VALUES ('insert_proteins', 7200);
SELECT right(job_id::text, 2) AS job, verdict, stall_seconds FROM protea_reaper_running_jobs();
BEGIN;
SELECT protea_reaper_run_once();
ROLLBACK;
ALTER EXTENSION protea_reaper UPDATE;
-- the rows stay, with 1.2's columns at their defaults
SELECT operation, stall_seconds, max_lease_requeues, events_extend_lease FROM protea_reaper_policy;
DELETE FROM protea_reaper_policy;
DELETE FROM installed WHERE install = 'upgraded';
SELECT snapshot('upgraded');
SELECT count(*) AS differences_from_fresh FROM (
    (SELECT kind, object, description FROM installed WHERE install = 'fresh'
     EXCEPT SELECT kind, object, description FROM installed WHERE install = 'upgraded')
    UNION ALL
    (SELECT kind, object, description FROM installed WHERE install = 'upgraded'
     EXCEPT SELECT kind, object, description FROM installed WHERE install = 'fresh')) AS d;

-- A grant a superuser gave on the function the update remakes is not given
-- again by the update (PostgreSQL would count it as the extension's own, and
-- pg_dump would leave it out): the update says so, with the statement to run
DROP EXTENSION protea_reaper;
SET client_min_messages = error;
CREATE EXTENSION protea_reaper VERSION '1.0';
RESET client_min_messages;
CREATE ROLE oncall;
GRANT EXECUTE ON FUNCTION protea_reaper_running_jobs() TO oncall WITH GRANT OPTION;
ALTER EXTENSION protea_reaper UPDATE;
SELECT has_function_privilege('oncall', 'protea_reaper_running_jobs()', 'EXECUTE') AS oncall_has_it,
       has_function_privilege('pg_monitor', 'protea_reaper_running_jobs()', 'EXECUTE')
       AS pg_monitor_has_it,
       has_function_privilege('public', 'protea_reaper_running_jobs()', 'EXECUTE')
       AS public_has_it;
GRANT EXECUTE ON FUNCTION public.protea_reaper_running_jobs() TO oncall WITH GRANT OPTION;
SET ROLE oncall;
SELECT count(*) AS running FROM protea_reaper_running_jobs();
RESET ROLE;
-- a grant given after the update is an ordinary one: not among the
-- extension's initial privileges (so pg_dump keeps it), and once revoked the
-- role can go
SELECT count(*) AS initial_privileges_naming_oncall
  FROM pg_init_privs
 WHERE objoid = 'protea_reaper_running_jobs()'::regprocedure
   AND initprivs::text LIKE '%oncall%';
REVOKE ALL ON FUNCTION protea_reaper_running_jobs() FROM oncall CASCADE;
DROP ROLE oncall;

-- 1.2, then the update to 1.3.  Until then the 1.3 library serves 1.2's
-- status: one row, this database's (preloaded or not: regress preload)
DROP EXTENSION protea_reaper;
SET client_min_messages = error;
CREATE EXTENSION protea_reaper VERSION '1.2';
RESET client_min_messages;
CREATE ROLE watcher;
GRANT EXECUTE ON FUNCTION protea_reaper_status() TO watcher;
SET client_min_messages = warning;
SELECT count(*) AS rows FROM protea_reaper_status();
RESET client_min_messages;
-- the update remakes the status (a set of rows now) and names the grant
-- it does not give again
\set SHOW_CONTEXT never
ALTER EXTENSION protea_reaper UPDATE;
\set SHOW_CONTEXT errors
SELECT has_function_privilege('watcher', 'protea_reaper_status()', 'EXECUTE') AS watcher_has_it;
DROP ROLE watcher;
SELECT proretset AS a_set FROM pg_proc WHERE oid = 'protea_reaper_status()'::regprocedure;
DELETE FROM installed WHERE install = 'upgraded';
SELECT snapshot('upgraded');
SELECT count(*) AS differences_from_fresh FROM (
    (SELECT kind, object, description FROM installed WHERE install = 'fresh'
     EXCEPT SELECT kind, object, description FROM installed WHERE install = 'upgraded')
    UNION ALL
    (SELECT kind, object, description FROM installed WHERE install = 'upgraded'
     EXCEPT SELECT kind, object, description FROM installed WHERE install = 'fresh')) AS d;

-- 1.3, then the update to 1.4.  Until then the 1.4 library serves 1.3's
-- status and view, with their columns
DROP EXTENSION protea_reaper;
SET client_min_messages = error;
CREATE EXTENSION protea_reaper VERSION '1.3';
RESET client_min_messages;
CREATE ROLE watcher;
GRANT EXECUTE ON FUNCTION protea_reaper_status() TO watcher;
GRANT SELECT ON protea_reaper_metrics TO watcher;
SET client_min_messages = warning;
SELECT count(*) AS view_columns
  FROM pg_attribute WHERE attrelid = 'protea_reaper_metrics'::regclass AND attnum > 0;
SELECT count(*) > 0 AS rows FROM protea_reaper_status();
RESET client_min_messages;
-- the update remakes both and names the grants it does not give again
\set SHOW_CONTEXT never
ALTER EXTENSION protea_reaper UPDATE;
\set SHOW_CONTEXT errors
SELECT has_function_privilege('watcher', 'protea_reaper_status()', 'EXECUTE') AS watcher_has_it,
       has_table_privilege('watcher', 'protea_reaper_metrics', 'SELECT') AS watcher_reads_it,
       has_table_privilege('pg_monitor', 'protea_reaper_metrics', 'SELECT') AS pg_monitor_reads_it;
DROP ROLE watcher;
DELETE FROM installed WHERE install = 'upgraded';
SELECT snapshot('upgraded');
SELECT count(*) AS differences_from_fresh FROM (
    (SELECT kind, object, description FROM installed WHERE install = 'fresh'
     EXCEPT SELECT kind, object, description FROM installed WHERE install = 'upgraded')
    UNION ALL
    (SELECT kind, object, description FROM installed WHERE install = 'upgraded'
     EXCEPT SELECT kind, object, description FROM installed WHERE install = 'fresh')) AS d;

-- A declaration of the status with columns this library does not give is
-- refused, never read past what the library fills (and an update run before
-- the restart finds no symbol protea_reaper_status_1_4 in the old library)
CREATE FUNCTION status_of_another_version(OUT pid integer, OUT database text)
    RETURNS SETOF record AS '$libdir/protea_reaper', 'protea_reaper_status_1_4' LANGUAGE C;
SELECT * FROM status_of_another_version();
DROP FUNCTION status_of_another_version();

DROP FUNCTION snapshot(text);
DROP TABLE installed;
