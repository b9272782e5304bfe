--
-- security: the reaper lends nobody its rights.  Every statement on
-- PROTEA's tables runs as the job table's owner, in a security-restricted
-- operation: code that owner attached to the tables (triggers, defaults,
-- index expressions) never runs with more rights than the owner has, a
-- role granted EXECUTE gains only what the function is for, and bad input
-- is refused before anything is written.
--
-- PROTEA's tables, owned by the application's role, in its own schema
CREATE ROLE app LOGIN;
CREATE SCHEMA app AUTHORIZATION app;
SET ROLE app;
SET search_path = app;
\i test/protea_schema.sql

-- The owner's trojan horses: each tries to make app a superuser, and
-- records whose rights it ran with
CREATE TABLE app.ran_as (what text, role name, superuser boolean);
CREATE FUNCTION app.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.ran_as
    SELECT TG_TABLE_NAME || ' ' || TG_WHEN, current_user, rolsuper
      FROM pg_catalog.pg_roles WHERE rolname = current_user;
    EXECUTE 'ALTER ROLE app SUPERUSER';
    RETURN NEW;
END $$;
CREATE TRIGGER job_update BEFORE UPDATE ON app.job
    FOR EACH ROW EXECUTE FUNCTION app.escalate();
CREATE TRIGGER job_event_insert AFTER INSERT ON app.job_event
    FOR EACH ROW EXECUTE FUNCTION app.escalate();
INSERT INTO app.job (id, operation, queue_name, status, payload, meta, tags, created_at, started_at)
VALUES ('00000000-0000-0000-0000-0000000000e1', 'insert_proteins', 'q', 'RUNNING',
        '{}', '{}', '{}', now() - '7 h'::interval, now() - '7 h'::interval),
       ('00000000-0000-0000-0000-0000000000e2', 'insert_proteins', 'q', 'RUNNING',
        '{}', '{}', '{}', now() - '7 h'::interval, now() - '7 h'::interval);
RESET search_path;
RESET ROLE;

SET protea_reaper.job_table = 'app.job';
SET protea_reaper.event_table = 'app.job_event';

-- The SQLSTATE a statement fails with (the server's wording of a refused
-- ALTER ROLE differs between majors)
CREATE FUNCTION sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || CASE SQLSTATE WHEN '42501' THEN 'insufficient_privilege' ELSE SQLERRM END;
END $$;
GRANT EXECUTE ON FUNCTION sqlstate_of(text) TO PUBLIC;

-- A superuser's sweep: the trigger runs as app, so ALTER ROLE is refused
-- and the sweep rolls back whole
SELECT sqlstate_of('SELECT protea_reaper_run_once()');
SELECT rolsuper FROM pg_roles WHERE rolname = 'app';
SELECT count(*) AS failed FROM app.job WHERE status = 'FAILED';

-- A role granted EXECUTE on protea_reaper_fail_job, as README suggests:
-- the same trigger, the same refusal
CREATE ROLE oncall;
GRANT EXECUTE ON FUNCTION protea_reaper_fail_job(uuid, text) TO oncall;
SET ROLE oncall;
SELECT sqlstate_of($$SELECT protea_reaper_fail_job('00000000-0000-0000-0000-0000000000e1', 'node lost')$$);
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'app';

-- What the trojans saw when they could still record it: they ran as app,
-- not as a superuser
ALTER TABLE app.ran_as OWNER TO app;
DROP TRIGGER job_update ON app.job;
DROP TRIGGER job_event_insert ON app.job_event;
CREATE FUNCTION app.record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.ran_as
    SELECT TG_TABLE_NAME || ' ' || TG_WHEN, current_user, rolsuper
      FROM pg_catalog.pg_roles WHERE rolname = current_user;
    RETURN NEW;
END $$;
ALTER FUNCTION app.record() OWNER TO app;
CREATE TRIGGER job_update BEFORE UPDATE ON app.job
    FOR EACH ROW EXECUTE FUNCTION app.record();
CREATE TRIGGER job_event_insert AFTER INSERT ON app.job_event
    FOR EACH ROW EXECUTE FUNCTION app.record();
SELECT protea_reaper_run_once();
SET ROLE oncall;
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-0000000000e1', 'node lost');
RESET ROLE;
SELECT what, role, superuser, count(*) FROM app.ran_as GROUP BY 1, 2, 3 ORDER BY 1;
SELECT right(id::text, 2) AS job, status, error_code FROM app.job ORDER BY id;

-- A trojan that plants a domain over text in the sweeping session's
-- temporary schema (searched first for types), to run later with that
-- session's rights: the reaper lets owner code create nothing, and the
-- trigger's own exception handler cannot hide it
UPDATE app.job SET status = 'RUNNING', finished_at = NULL, error_code = NULL
 WHERE id = '00000000-0000-0000-0000-0000000000e2';
DELETE FROM app.job_event WHERE job_id = '00000000-0000-0000-0000-0000000000e2';
CREATE FUNCTION app.pwn(v text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE app SUPERUSER';
    END IF;
    RETURN true;
END $$;
CREATE FUNCTION app.plant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- a subtransaction of its own, aborted, does not lift the guard
    BEGIN
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN NULL;
    END;
    BEGIN
        EXECUTE 'CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (app.pwn(VALUE))';
    EXCEPTION WHEN OTHERS THEN
        -- (newer minor releases refuse it themselves, with their own words)
        INSERT INTO app.ran_as VALUES ('plant refused', current_user, NULL);
    END;
    RETURN NEW;
END $$;
ALTER FUNCTION app.pwn(text) OWNER TO app;
ALTER FUNCTION app.plant() OWNER TO app;
CREATE TRIGGER plant AFTER INSERT ON app.job_event
    FOR EACH ROW EXECUTE FUNCTION app.plant();
SELECT protea_reaper_run_once();
SELECT 'x'::text AS cast_after_the_sweep;
SELECT count(*) AS planted FROM pg_type
 WHERE typname = 'text' AND typnamespace <> 'pg_catalog'::regnamespace;
SELECT rolsuper FROM pg_roles WHERE rolname = 'app';
SELECT what FROM app.ran_as WHERE what LIKE 'plant%';
DROP TRIGGER plant ON app.job_event;

-- A role granted EXECUTE cannot plant objects in its own temporary schema
-- for the owner's code to pick up (an unqualified name in a trigger): it
-- sweeps from a session without temporary objects, or not at all
GRANT EXECUTE ON FUNCTION protea_reaper_run_once() TO oncall;
SET ROLE oncall;
CREATE TEMP TABLE job_audit (job_id uuid);
SELECT protea_reaper_run_once();
DROP TABLE job_audit;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION protea_reaper_run_once() FROM oncall;

-- Tables whose owners have different rights: the event table's owner could
-- otherwise borrow the job table owner's rights
CREATE ROLE other_owner;
ALTER TABLE app.job_event OWNER TO other_owner;
SELECT protea_reaper_run_once();
ALTER TABLE app.job_event OWNER TO app;
-- ... nor the owner of one of its children
CREATE TABLE app.job_event_archive () INHERITS (app.job_event);
ALTER TABLE app.job_event_archive OWNER TO other_owner;
SELECT protea_reaper_run_once();
DROP TABLE app.job_event_archive;
-- A job table with inheritance children: their rows could not be audited
CREATE TABLE app.job_old () INHERITS (app.job);
SELECT protea_reaper_run_once();
DROP TABLE app.job_old;

-- Columns of other types than PROTEA's are refused before any SQL runs
CREATE TABLE app.naive_job (LIKE app.job);
ALTER TABLE app.naive_job ALTER started_at TYPE timestamp;
SET protea_reaper.job_table = 'app.naive_job';
SELECT protea_reaper_run_once();
ALTER TABLE app.naive_job ALTER started_at TYPE timestamptz,
    ALTER id TYPE text;
SELECT protea_reaper_run_once();
ALTER TABLE app.naive_job ALTER id TYPE uuid USING id::uuid,
    ALTER error_message TYPE varchar(40);
SELECT protea_reaper_run_once();
SET protea_reaper.job_table = 'app.job';
CREATE TABLE app.naive_event (LIKE app.job_event INCLUDING INDEXES);
ALTER TABLE app.naive_event ALTER ts TYPE timestamp;
SET protea_reaper.event_table = 'app.naive_event';
SELECT count(*) FROM protea_reaper_running_jobs();
ALTER TABLE app.naive_event ALTER ts TYPE timestamptz, ALTER job_id TYPE bigint USING 0;
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-0000000000e2', 'x');
RESET protea_reaper.event_table;
RESET protea_reaper.job_table;

-- An operator's reason must say something, fit, and be one line: it goes
-- into the job, the audit event and the server log
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', '   ');
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001',
    E'oops\nLOG:  Reaper failed stale job 00000000-0000-0000-0000-000000000002.');
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', E'tab\there');
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', repeat('x', 501));
-- ... nor Unicode controls, format characters or separators
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', E'ok\u0085NEL');
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', E'ok \u202Eevil');
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', E'ok\u2028forged line');
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', E'\u00a0\u3000');
SELECT count(*) AS manual_failures FROM job WHERE error_code = 'ManualTimeout';

DROP FUNCTION sqlstate_of(text);
DROP SCHEMA app CASCADE;
REVOKE EXECUTE ON FUNCTION protea_reaper_fail_job(uuid, text) FROM oncall;
DROP ROLE oncall;
DROP ROLE other_owner;
DROP ROLE app;
