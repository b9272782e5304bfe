--
-- settings: every protea_reaper.* parameter, its default, unit and who may
-- change it; units are accepted and bad values rejected.
--
-- A new session knows the settings once the library is loaded (by
-- shared_preload_libraries, LOAD, or a call to any of its functions).  Which
-- databases are reaped, and as whom (database, role), is in regress preload:
-- a preloading installcheck sets them.
LOAD 'protea_reaper';
SELECT name, setting, unit, context, boot_val
  FROM pg_settings WHERE name LIKE 'protea_reaper.%'
   AND name NOT IN ('protea_reaper.database', 'protea_reaper.role')
 ORDER BY name;

SHOW protea_reaper.timeout_seconds;
SHOW protea_reaper.stall_seconds;
SHOW protea_reaper.job_table;

-- Units
SET protea_reaper.timeout_seconds = '2h';
SHOW protea_reaper.timeout_seconds;
SELECT current_setting('protea_reaper.timeout_seconds') AS raw,
       setting FROM pg_settings WHERE name = 'protea_reaper.timeout_seconds';
SET protea_reaper.stall_seconds = '45min';
SHOW protea_reaper.stall_seconds;
RESET protea_reaper.timeout_seconds;
RESET protea_reaper.stall_seconds;

-- Rejected values: PostgreSQL's own errors, and the old value stays
SET protea_reaper.timeout_seconds = 0;
SET protea_reaper.stall_seconds = -5;
SET protea_reaper.timeout_seconds = '3 fortnights';
SET protea_reaper.batch_size = 0;
SET protea_reaper.log_skipped = 'maybe';
SHOW protea_reaper.timeout_seconds;

-- The worker's schedule comes from postgresql.conf, its connection from startup
SET protea_reaper.interval_seconds = 5;
SET protea_reaper.enabled = off;

-- The prefix is reserved: a misspelt setting is an error, not a placeholder
SET protea_reaper.timeout_secs = 60;

-- Only a superuser may change the thresholds of a session
CREATE ROLE reaper_settings_user;
SET ROLE reaper_settings_user;
SET protea_reaper.timeout_seconds = 60;
SHOW protea_reaper.timeout_seconds;
RESET ROLE;
DROP ROLE reaper_settings_user;
