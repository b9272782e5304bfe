-- A PROTEA worker reports progress on one of its running jobs (never on a
-- stale one: stale jobs are those whose worker died).  Pool job k is stale
-- when k % 20 is 0 or 1, so k = 20q + r with r in 2..19.
\set q random(0, 99)
\set r random(2, 19)
INSERT INTO job_event (job_id, ts, level, event, message, fields)
VALUES (md5('run' || (20 * :q + :r))::uuid, now(), 'info', 'job.progress', 'batch done', '{"current": 3, "total": 9}');
