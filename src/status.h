/*-------------------------------------------------------------------------
 *
 * status.h
 *	  The background worker's state in shared memory.
 *
 * The worker writes here after each step of its loop; runbook.c reads a
 * copy for protea_reaper_status() and asks for a sweep through it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_STATUS_H
#define PROTEA_REAPER_STATUS_H

#include "datatype/timestamp.h"

#include "sweep.h"

/* What the worker is doing; reaper_state_name() gives each one's name */
typedef enum ReaperWorkerState
{
	REAPER_NOT_PRELOADED,		/* no shared state: library not preloaded */
	REAPER_NOT_STARTED,			/* no worker yet (last_error says why, if known) */
	REAPER_STARTING,			/* connecting to its database */
	REAPER_SWEEPING,
	REAPER_IDLE,
	REAPER_IDLE_AFTER_ERROR,
	REAPER_DISABLED,			/* protea_reaper.enabled = off */
	REAPER_IN_RECOVERY,
	REAPER_NO_EXTENSION,		/* not installed in its database */
	REAPER_SUBSCRIBED,			/* a subscription replicates its tables here */
	REAPER_RESTARTING			/* exited; the postmaster starts it again */
} ReaperWorkerState;

extern const char *reaper_state_name(ReaperWorkerState state);

#define REAPER_ERROR_LEN 512

/* What protea_reaper_status() shows */
typedef struct ReaperStatus
{
	/* The worker process */
	pid_t		pid;			/* 0 when no worker runs */
	char		database[NAMEDATALEN];
	ReaperWorkerState state;
	TimestampTz started_at;

	/* The settings it applied last */
	bool		enabled;
	int			timeout_seconds;
	int			stall_seconds;
	int			interval_seconds;

	/* Its cycles */
	int64		cycles;
	int64		failed_cycles;
	TimestampTz last_cycle_start;
	TimestampTz last_cycle_end;
	TimestampTz next_cycle_at;

	/* What the last cycle did, and the total */
	int64		last_reaped;	/* committed failures */
	int64		last_alive;		/* past the timeout, kept by a lease or event */
	int64		last_skipped_locked;	/* stale, held by another transaction */
	int64		last_waiting;	/* stale, left by the brake */
	int64		total_reaped;	/* since the server started */

	/* The last failed cycle, or why the worker could not start */
	char		last_error[REAPER_ERROR_LEN];
	TimestampTz last_error_at;
} ReaperStatus;

/* Request and attach the shared state (from _PG_init, when preloaded) */
extern void reaper_status_install_hooks(void);

/* A copy of the shared state; false (and nothing copied) without one */
extern bool reaper_status_read(ReaperStatus *status);

/* Ask the worker to sweep now; false when no worker runs */
extern bool reaper_status_request_wake(void);

/* The worker's reports */
extern void reaper_status_worker_connecting(const char *database, const char *role);
extern void reaper_status_worker_started(void);
extern void reaper_status_set_state(ReaperWorkerState state);
extern void reaper_status_settings_in_force(void);
extern void reaper_status_cycle_started(TimestampTz start);
extern void reaper_status_cycle_done(TimestampTz end, const ReaperSweepResult *result);
extern void reaper_status_cycle_failed(TimestampTz end, const char *message,
									   const ReaperSweepResult *committed);
extern void reaper_status_next_cycle(TimestampTz next);
extern bool reaper_status_take_wake(void);

#endif							/* PROTEA_REAPER_STATUS_H */
