-- test/partition_job_event.sql: PROTEA's job_event (test/protea_schema.sql)
-- made again as a table partitioned by range of ts, ready for pg_partman's
-- create_parent (monthly partitions).  Run on an empty job_event, with
-- search_path set to the schema holding PROTEA's tables.
--
-- What partitioning changes in PROTEA's table: the primary key must
-- include the partition key, so it is (id, ts) instead of (id); ids still
-- come from the same bigserial sequence.  The foreign key to job and the
-- three indexes are declared on the parent, and every partition gets them.
-- Used by test/t/120_partitions.pl and bench/partitions.sh; README.md,
-- "Growing PROTEA's database", shows the same statements.

DROP TABLE job_event;
CREATE TABLE job_event (
    id bigserial,
    job_id uuid NOT NULL REFERENCES job(id) ON DELETE CASCADE,
    ts timestamptz NOT NULL DEFAULT now(),
    level text NOT NULL,
    event text NOT NULL,
    message text,
    fields jsonb NOT NULL,
    PRIMARY KEY (id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX job_event_job_id_ts ON job_event (job_id, ts);
CREATE INDEX job_event_event_ts ON job_event (event, ts);
CREATE INDEX job_event_job_id_event ON job_event (job_id, event);
