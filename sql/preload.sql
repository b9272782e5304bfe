--
-- preload: what differs when the library is in shared_preload_libraries.
-- Two outputs: expected/preload.out without it (test/run.sh, and the Debian
-- build's dh_pgxs_test), expected/preload_1.out with it (the packages'
-- debian/tests/installcheck).  The other tests leave these rows and messages
-- out, so that they pass either way.  The worker connects to
-- protea_reaper.database, "postgres" by default, where the extension is not
-- installed: it idles there, and says why.
--
-- Whether it is, and whether this server was told to be
-- (debian/tests/installcheck sets protea_reaper_regress.expect_preloaded):
-- a server told to preload that did not matches neither output
SELECT 'protea_reaper' = ANY (string_to_array(replace(
           current_setting('shared_preload_libraries'), ' ', ''), ',')) AS preloaded,
       coalesce(current_setting('protea_reaper_regress.expect_preloaded', true), 'off')::boolean
           AS expect_preloaded;

-- The worker's connection settings exist only while preloading
LOAD 'protea_reaper';
SELECT name, setting, context
  FROM pg_settings WHERE name LIKE 'protea_reaper.%' AND context = 'postmaster'
 ORDER BY name;

-- The worker: idle in its database, or not there at all
SELECT pid IS NOT NULL AS worker_running, state, enabled, timeout_seconds, stall_seconds,
       interval_seconds, cycles
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
