-- test/protea_schema.sql: PROTEA's job and job_event tables exactly as the
-- application creates them (see PROTEA.md).  Used by the regress suite,
-- the TAP tests, the demo and the benchmark.

CREATE TYPE job_status AS ENUM ('queued', 'running', 'succeeded', 'failed', 'cancelled');

CREATE TABLE job (
    id uuid PRIMARY KEY,
    operation text NOT NULL,
    queue_name text NOT NULL,
    status job_status NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    meta jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    progress_current bigint,
    progress_total bigint,
    parent_job_id uuid REFERENCES job(id) ON DELETE SET NULL,
    error_code text,
    error_message text
);
CREATE INDEX job_operation_created_at ON job (operation, created_at);
CREATE INDEX job_status_created_at ON job (status, created_at);
CREATE INDEX job_created_at ON job (created_at);
CREATE INDEX job_parent_job_id ON job (parent_job_id);

CREATE TABLE job_event (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES job(id) ON DELETE CASCADE,
    ts timestamptz NOT NULL,
    level text NOT NULL DEFAULT 'info',
    event text NOT NULL,
    message text,
    fields jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX job_event_job_id_ts ON job_event (job_id, ts);
CREATE INDEX job_event_event_ts ON job_event (event, ts);
