/*-------------------------------------------------------------------------
 *
 * sweep.h
 *	  The sweep: finds stale PROTEA jobs and fails them.
 *
 * Every function here must be called inside a transaction with an active
 * snapshot; each connects to SPI itself.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_SWEEP_H
#define PROTEA_REAPER_SWEEP_H


/* Room for "timeout_seconds=N, stall_seconds=N, max_runtime_seconds=N" */
#define REAPER_THRESHOLDS_LEN 96

/* What one sweep did */
typedef struct ReaperSweepResult
{
	uint64		reaped;			/* jobs failed or re-queued in batches that ended */
	uint64		requeued;		/* of those, re-queued */
	uint64		lease_expired;	/* ... failed by their lapsed lease */
	uint64		capped;			/* ... failed by the runtime cap */
	uint64		unlogged;		/* ... without a line of their own */
	uint64		pending;		/* jobs failed or re-queued in the batch not yet ended */
	uint64		pending_requeued;
	uint64		pending_lease_expired;
	uint64		pending_capped;
	uint64		pending_unlogged;
	uint64		alive;			/* past the timeout, kept by a lease or event */
	uint64		leased;			/* of those, kept by a lease (first batch) */
	uint64		judged_stale;	/* candidates the first batch found stale */
	uint64		running;		/* running jobs (first batch, before it) */
	uint64		skipped_locked; /* stale, but another transaction held them */
	bool		braked;			/* stopped at max_jobs */
	uint64		waiting;		/* stale jobs left by the brake */
	int64		stale;			/* stale jobs left, locked or by the brake;
								 * -1: a sweep stopped early does not know */
	double		oldest_stale_seconds;	/* since the oldest of them started;
										 * -1: none, or not finite */
	int			policy_rows;	/* rows of protea_reaper_policy in force */

	/*
	 * The settings the batches that failed jobs ran with, as the summary
	 * line names them: the first such batch's, and the last's if a reload
	 * between batches changed them
	 */
	char		used_first[REAPER_THRESHOLDS_LEN];
	char		used_last[REAPER_THRESHOLDS_LEN];
} ReaperSweepResult;

/* What the worker does between two batches of one sweep */
typedef struct ReaperSweepHooks
{
	void		(*end_batch) (void);	/* end (commit) the batch just run */
	bool		(*next_batch) (void);	/* start the next; false: stop here */
	uint64		max_jobs;		/* fail at most this many (0: no limit) */
} ReaperSweepHooks;

/*
 * A whole sweep: every batch, through the only batch loop.  hooks NULL: all
 * in the caller's transaction (a manual sweep).  The last batch is left
 * for the caller to end.
 */
extern void reaper_sweep(ReaperSweepResult *result, const ReaperSweepHooks *hooks);

/* The caller ended (committed) the batch just run: its failures count. */
extern void reaper_sweep_ended_batch(ReaperSweepResult *result);

/* The summary line (and the brake's WARNING) of what has committed. */
extern void reaper_sweep_report(const ReaperSweepResult *result);

/* The summary line of a manual sweep, written when its caller commits. */
extern void reaper_sweep_report_at_commit(const ReaperSweepResult *result);

/*
 * Jobs the sweep failed as stalled in the doctor's window whose workers
 * wrote events since (protea_reaper_check()'s false alarms), in all
 */
extern int64 reaper_count_false_alarms(void);

#endif							/* PROTEA_REAPER_SWEEP_H */
