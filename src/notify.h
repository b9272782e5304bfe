/*-------------------------------------------------------------------------
 *
 * notify.h
 *	  NOTIFY protea_reaper: the jobs a sweep or an operator failed, sent
 *	  with the transaction that failed them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_NOTIFY_H
#define PROTEA_REAPER_NOTIFY_H

/* A new sweep (or manual fail): nothing failed yet */
extern void reaper_notify_start(void);

/* A job failed in the current transaction (capped: by the runtime cap) */
extern void reaper_notify_job(const char *id, bool capped);

/* The current transaction committed: its jobs are failed for good */
extern void reaper_notify_batch_ended(void);

/* It rolled back: its jobs were not failed */
extern void reaper_notify_batch_aborted(void);

/*
 * Queue one notification, sent when the current transaction commits, of
 * every job failed since reaper_notify_start() (committed or in this
 * transaction); nothing when there are none, protea_reaper.notify is off,
 * or the notification queue is over half full (a WARNING).  source: who
 * failed them; reason NULL: a sweep's thresholds.
 */
extern void reaper_notify_send(const char *source, const char *reason);

#endif							/* PROTEA_REAPER_NOTIFY_H */
