--
-- preload: what differs when the library is in shared_preload_libraries.
-- Two outputs: expected/preload.out without it (test/run.sh, and the Debian
-- build's dh_pgxs_test), expected/preload_1.out with it (the packages'
-- debian/tests/installcheck).  The other tests leave these rows and messages
-- out, so that they pass either way.  The launcher would start a reaper in
-- every database with the extension, this one included; the installcheck
-- names only "postgres" (no extension there) in protea_reaper.database, so
-- that no reaper sweeps under the tests, and the status and the doctor say
-- why this database has none.
--
-- Whether it is, and whether this server was told to be
-- (debian/tests/installcheck sets protea_reaper_regress.expect_preloaded):
-- a server told to preload that did not matches neither output
SELECT 'protea_reaper' = ANY (string_to_array(replace(
           current_setting('shared_preload_libraries'), ' ', ''), ',')) AS preloaded,
       coalesce(current_setting('protea_reaper_regress.expect_preloaded', true), 'off')::boolean
           AS expect_preloaded;

-- Which databases are reaped
LOAD 'protea_reaper';
SELECT name, setting, context
  FROM pg_settings WHERE name IN ('protea_reaper.database', 'protea_reaper.role')
 ORDER BY name;

-- The launcher, running (no reaper of this database: it is not listed), or
-- no worker at all
SELECT database IS NULL AS launcher, pid IS NOT NULL AS running, state, enabled,
       timeout_seconds, stall_seconds, interval_seconds
  FROM protea_reaper_status();
CREATE ROLE reaper_monitor_preload IN ROLE pg_monitor;
SET ROLE reaper_monitor_preload;
SELECT state FROM protea_reaper_status();
RESET ROLE;
DROP ROLE reaper_monitor_preload;

-- The doctor's rows about the worker
\x on
SELECT * FROM protea_reaper_check() WHERE "check" IN ('preloaded', 'worker', 'database');
\x off

-- Without a worker, CREATE EXTENSION warns, and there is nothing to wake
DROP EXTENSION protea_reaper;
CREATE EXTENSION protea_reaper;
SELECT protea_reaper_wake();
