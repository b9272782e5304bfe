--
-- lease: PROTEA's current reaper, one for one.  A running job whose lease
-- (leased_until) lapsed longer than lease_grace_seconds ago is dead,
-- whatever its started_at and, by default, its events.  It goes back to
-- the queue while its re-queues (its job.lease_expired_requeue events, as
-- PROTEA counts them) are fewer than max_lease_requeues, with PROTEA's
-- event and fields; then it fails with error_code lease_expired.  A policy
-- row may give an operation its own budget, or let its events keep a
-- lapsed job alive (coordinators).  Unleased jobs keep the timeout rule.
--
SELECT fixture_load();
DELETE FROM protea_reaper_policy;

-- 11: started 10 min ago (young by the timeout), its lease lapsed 2 min
-- ago, an event 1 min ago; 12: lease lapsed 5 s ago (within the grace);
-- 13: leased for 2 more minutes, silent for hours; 14: started 7 h ago,
-- lease lapsed 3 min ago, no events
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags,
                 leased_until)
VALUES ('00000000-0000-0000-0000-000000000011', 'predict_go_terms', 'protea.predict', 'RUNNING',
        now() - '10 min'::interval, now() - '10 min'::interval, '{}', '{}', '{}', now() - '2 min'::interval),
       ('00000000-0000-0000-0000-000000000012', 'insert_proteins', 'protea.jobs', 'RUNNING',
        now() - '10 min'::interval, now() - '10 min'::interval, '{}', '{}', '{}', now() - '5 s'::interval),
       ('00000000-0000-0000-0000-000000000013', 'insert_proteins', 'protea.jobs', 'RUNNING',
        now() - '9 h'::interval, now() - '9 h'::interval, '{}', '{}', '{}', now() + '2 min'::interval),
       ('00000000-0000-0000-0000-000000000014', 'compute_embeddings', 'protea.embeddings', 'RUNNING',
        now() - '7 h'::interval, now() - '7 h'::interval, '{}', '{}', '{}', now() - '3 min'::interval);
INSERT INTO job_event (job_id, ts, level, event, fields)
VALUES ('00000000-0000-0000-0000-000000000011', now() - '1 min'::interval, 'info', 'job.progress', '{}');

-- Each verdict, how long ago the lease lapsed, the re-queues so far and the budget
SELECT right(job_id::text, 2) AS job, verdict,
       round(extract(epoch FROM lease_lapsed_for) / 60) AS lapsed_min, requeues, max_lease_requeues
  FROM protea_reaper_running_jobs() ORDER BY job_id;

-- Budget 0 (the default): dead leased jobs fail at once with PROTEA's
-- names; the timeout rule still fails the unleased stale jobs 1 and 4
SET client_min_messages = log;
\set VERBOSITY terse
SELECT protea_reaper_run_once();
RESET client_min_messages;
\set VERBOSITY default
SELECT right(id::text, 2) AS job, status, error_code, started_at IS NOT NULL AS has_start
  FROM job WHERE id::text LIKE '%1_' OR status = 'FAILED' ORDER BY id;
SELECT right(job_id::text, 2) AS job, level, event, message LIKE 'Lease expired: no heartbeat since %' AS says_lease,
       fields - 'last_event_ts' AS fields, fields ? 'last_event_ts' AS has_last_event_ts
  FROM job_event WHERE event LIKE 'job.lease%' ORDER BY job_id;

-- Budget 1 by the setting: the first death re-queues (QUEUED, no start, no
-- lease, PROTEA's warning event), the second fails
SELECT fixture_load();
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags,
                 leased_until)
VALUES ('00000000-0000-0000-0000-000000000014', 'compute_embeddings', 'protea.embeddings', 'RUNNING',
        now() - '7 h'::interval, now() - '7 h'::interval, '{}', '{}', '{}', now() - '3 min'::interval);
CREATE FUNCTION claim_and_die() RETURNS void LANGUAGE sql AS $$
    -- a worker claims job 14 again and dies: its lease lapses 3 min later
    UPDATE job SET status = 'RUNNING', started_at = now() - '5 min'::interval,
                   leased_until = now() - '3 min'::interval
     WHERE id = '00000000-0000-0000-0000-000000000014';
$$;
SET protea_reaper.max_lease_requeues = 1;
SELECT protea_reaper_run_once();
SELECT status, started_at, leased_until, error_code, finished_at FROM job
 WHERE id = '00000000-0000-0000-0000-000000000014';
SELECT level, event, message, fields - 'last_event_ts' AS fields FROM job_event
 WHERE job_id = '00000000-0000-0000-0000-000000000014' ORDER BY ts, event;
SELECT claim_and_die();
SELECT right(job_id::text, 2) AS job, verdict, requeues, max_lease_requeues
  FROM protea_reaper_running_jobs() WHERE job_id = '00000000-0000-0000-0000-000000000014';
SELECT protea_reaper_run_once();
SELECT status, error_code FROM job WHERE id = '00000000-0000-0000-0000-000000000014';
SELECT event, fields - 'last_event_ts' AS fields FROM job_event
 WHERE job_id = '00000000-0000-0000-0000-000000000014' AND event = 'job.lease_expired';
RESET protea_reaper.max_lease_requeues;

-- Budget 3 by a policy row for the operation: three re-queues, then failed
SELECT fixture_load();
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags,
                 leased_until)
VALUES ('00000000-0000-0000-0000-000000000014', 'compute_embeddings', 'protea.embeddings', 'RUNNING',
        now() - '7 h'::interval, now() - '7 h'::interval, '{}', '{}', '{}', now() - '3 min'::interval);
INSERT INTO protea_reaper_policy (operation, max_lease_requeues) VALUES ('compute_embeddings', 3);
SELECT protea_reaper_run_once() AS first, status FROM job WHERE id = '00000000-0000-0000-0000-000000000014';
SELECT claim_and_die();
SELECT protea_reaper_run_once() AS second;
SELECT claim_and_die();
SELECT protea_reaper_run_once() AS third;
SELECT claim_and_die();
SELECT protea_reaper_run_once() AS fourth;
SELECT status, error_code FROM job WHERE id = '00000000-0000-0000-0000-000000000014';
SELECT event, regexp_replace(message, 'since .* \(', 'since T (') AS message,
       fields->'prior_requeues' AS prior, fields->'max_requeues' AS budget
  FROM job_event WHERE job_id = '00000000-0000-0000-0000-000000000014' ORDER BY ts, event;
DELETE FROM protea_reaper_policy;

-- A coordinator whose batches write its events: with events_extend_lease a
-- recent event keeps it alive after its lease lapsed; once they stop for
-- stall_seconds it is dead
SELECT fixture_load();
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags,
                 leased_until)
VALUES ('00000000-0000-0000-0000-000000000015', 'compute_embeddings', 'protea.embeddings', 'RUNNING',
        now() - '2 h'::interval, now() - '2 h'::interval, '{}', '{}', '{}', now() - '1 h'::interval);
INSERT INTO job_event (job_id, ts, level, event, fields)
VALUES ('00000000-0000-0000-0000-000000000015', now() - '2 min'::interval, 'info', 'store_embeddings.batch', '{}');
INSERT INTO protea_reaper_policy (operation, events_extend_lease) VALUES ('compute_embeddings', true);
SELECT right(job_id::text, 2) AS job, verdict, round(extract(epoch FROM lease_lapsed_for) / 60) AS lapsed_min
  FROM protea_reaper_running_jobs() WHERE job_id = '00000000-0000-0000-0000-000000000015';
SELECT protea_reaper_run_once();
SELECT status FROM job WHERE id = '00000000-0000-0000-0000-000000000015';
UPDATE job_event SET ts = now() - '45 min'::interval
 WHERE job_id = '00000000-0000-0000-0000-000000000015';
SELECT right(job_id::text, 2) AS job, verdict
  FROM protea_reaper_running_jobs() WHERE job_id = '00000000-0000-0000-0000-000000000015';
SELECT protea_reaper_run_once();
SELECT status, error_code FROM job WHERE id = '00000000-0000-0000-0000-000000000015';
-- an exempt operation takes no lease rules, and is never failed
INSERT INTO protea_reaper_policy (operation, exempt, events_extend_lease) VALUES ('ping', true, true);
INSERT INTO protea_reaper_policy (operation, max_lease_requeues) VALUES ('ping', -1);
DELETE FROM protea_reaper_policy;

-- A grace that covers the skew: with lease_grace_seconds = 1, job 12's
-- lease (lapsed 5 s ago) has lapsed too
SELECT fixture_load();
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags,
                 leased_until)
VALUES ('00000000-0000-0000-0000-000000000012', 'insert_proteins', 'protea.jobs', 'RUNNING',
        now() - '10 min'::interval, now() - '10 min'::interval, '{}', '{}', '{}', now() - '5 s'::interval);
SELECT verdict FROM protea_reaper_running_jobs() WHERE job_id = '00000000-0000-0000-0000-000000000012';
SET protea_reaper.lease_grace_seconds = 1;
SELECT verdict FROM protea_reaper_running_jobs() WHERE job_id = '00000000-0000-0000-0000-000000000012';
RESET protea_reaper.lease_grace_seconds;

DELETE FROM protea_reaper_policy;
DROP FUNCTION claim_and_die();
SELECT fixture_load();
