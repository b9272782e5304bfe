-- A short PROTEA job from start to finish: it is created running, reports
-- progress, and completes (status SUCCEEDED, finished_at) with its end event.
BEGIN;
INSERT INTO job (id, operation, queue_name, status, payload, meta, tags, created_at, started_at, progress_total)
VALUES (gen_random_uuid(), 'insert_proteins', 'proteins', 'RUNNING', '{}', '{}', '{}', now(), now(), 8)
RETURNING id AS jid \gset
INSERT INTO job_event (job_id, ts, level, event, message, fields) VALUES (':jid', now(), 'info', 'job.started', 'started', '{}');
INSERT INTO job_event (job_id, ts, level, event, message, fields) VALUES (':jid', now(), 'info', 'job.progress', 'batch 1/1 done', '{}');
UPDATE job SET status = 'SUCCEEDED', finished_at = now(), progress_current = 8
 WHERE id = ':jid' AND status = 'RUNNING';
INSERT INTO job_event (job_id, ts, level, event, message, fields) VALUES (':jid', now(), 'info', 'job.succeeded', 'done', '{}');
END;
