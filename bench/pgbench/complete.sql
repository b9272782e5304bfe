-- A short PROTEA job from start to finish: it is created running, reports
-- progress, and completes (status succeeded, finished_at) with its end event.
BEGIN;
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, progress_total)
VALUES (gen_random_uuid(), 'insert_proteins', 'proteins', 'running', now(), now(), 8)
RETURNING id AS jid \gset
INSERT INTO job_event (job_id, ts, event, message) VALUES (':jid', now(), 'job.started', 'started');
INSERT INTO job_event (job_id, ts, event, message) VALUES (':jid', now(), 'job.progress', 'batch 1/1 done');
UPDATE job SET status = 'succeeded', finished_at = now(), progress_current = 8
 WHERE id = ':jid' AND status = 'running';
INSERT INTO job_event (job_id, ts, event, message) VALUES (':jid', now(), 'job.succeeded', 'done');
END;
