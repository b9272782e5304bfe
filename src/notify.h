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

/* Why a job was failed */
typedef enum ReaperNotifyCause
{
	NOTIFY_STALLED,				/* past its timeout, silent (or by hand) */
	NOTIFY_CAPPED,				/* past its runtime cap */
	NOTIFY_LEASE_EXPIRED		/* its lease lapsed, its re-queues spent */
} ReaperNotifyCause;

/* A job failed in the current transaction */
extern void reaper_notify_job(const char *id, ReaperNotifyCause cause);

/* A job put back in its queue in the current transaction */
extern void reaper_notify_requeued(const char *id, const char *queue_name);

/* The current transaction committed: its jobs are failed for good */
extern void reaper_notify_batch_ended(void);

/* It rolled back: its jobs were not failed */
extern void reaper_notify_batch_aborted(void);

/*
 * Queue the notifications, sent when the current transaction commits, of
 * every job failed or re-queued since reaper_notify_start() (committed or
 * in this transaction): one of those failed by a sweep's thresholds (or by
 * hand), one of those failed by their lease, one of those re-queued;
 * nothing when there are none, protea_reaper.notify is off, or the
 * notification queue is over half full (a WARNING).  source: who did it;
 * reason NULL: a sweep's thresholds.
 */
extern void reaper_notify_send(const char *source, const char *reason);

#endif							/* PROTEA_REAPER_NOTIFY_H */
