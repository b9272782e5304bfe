-- test/protea_schema.sql: PROTEA's job tables exactly as its ORM and
-- migrations create them today (see PROTEA.md): the enum holds the Python
-- enum's member NAMES (uppercase), job carries leased_until and dedup_key,
-- and there are no server defaults the ORM does not create (payload, meta,
-- tags, level and fields are filled by the application; job_event.ts is
-- stamped by the database).
--
-- The one source of the schema for every suite: pg_regress (sql/setup.sql),
-- the isolation specs (their setup blocks are checked against this file by
-- test/check_fixtures.sh), TAP, the stress test, the demo and the
-- benchmark.  test/runbook_tree.sh derives the runbook's lowercase variant
-- from it.

CREATE TYPE job_status AS ENUM ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED');

CREATE TABLE job (
    id uuid PRIMARY KEY,
    operation text NOT NULL,
    queue_name text NOT NULL,
    status job_status NOT NULL,
    payload jsonb NOT NULL,
    meta jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    progress_current bigint,
    progress_total bigint,
    parent_job_id uuid REFERENCES job(id) ON DELETE SET NULL,
    error_code text,
    error_message text,
    description text,
    findings text,
    tags text[] NOT NULL,
    dedup_key text,
    leased_until timestamptz
);
CREATE INDEX job_operation_created_at ON job (operation, created_at);
CREATE INDEX job_status_created_at ON job (status, created_at);
CREATE INDEX job_created_at ON job (created_at);
CREATE INDEX job_parent_job_id ON job (parent_job_id);
CREATE UNIQUE INDEX uq_job_dedup_key_active ON job (dedup_key)
    WHERE status IN ('QUEUED', 'RUNNING') AND dedup_key IS NOT NULL;

CREATE TABLE job_event (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES job(id) ON DELETE CASCADE,
    ts timestamptz NOT NULL DEFAULT now(),
    level text NOT NULL,
    event text NOT NULL,
    message text,
    fields jsonb NOT NULL
);
CREATE INDEX job_event_job_id_ts ON job_event (job_id, ts);
CREATE INDEX job_event_event_ts ON job_event (event, ts);
CREATE INDEX job_event_job_id_event ON job_event (job_id, event);

CREATE TABLE job_comment (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES job(id) ON DELETE CASCADE,
    author text,
    body text NOT NULL,
    created_at timestamptz DEFAULT now()
);
