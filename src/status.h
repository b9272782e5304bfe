/*-------------------------------------------------------------------------
 *
 * status.h
 *	  The launcher's and each database reaper's state in shared memory.
 *
 * One slot per database the launcher looks after, found by the database's
 * OID: the reaper of that database writes its reports there, runbook.c and
 * doctor.c read copies, protea_reaper_wake() asks for a sweep through it,
 * and dbcommands.c holds it while a DBA command needs the database alone.
 * The launcher has a status of its own.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_STATUS_H
#define PROTEA_REAPER_STATUS_H

#include "datatype/timestamp.h"

#include "sweep.h"

/* What a worker is doing; reaper_state_name() gives each one's name */
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
	REAPER_RESTARTING,			/* exited; the launcher starts it again */
	REAPER_PAUSED,				/* stopped while a DBA command runs */
	REAPER_NO_SLOT,				/* no background worker slot free */
	REAPER_RUNNING,				/* the launcher: looking after the databases */
	REAPER_NO_ROLE				/* the launcher: protea_reaper.role is missing */
} ReaperWorkerState;

extern const char *reaper_state_name(ReaperWorkerState state);

#define REAPER_ERROR_LEN 512

/* What protea_reaper_status() shows of one worker */
typedef struct ReaperStatus
{
	/* The worker process */
	pid_t		pid;			/* 0 when no worker runs */
	Oid			dboid;			/* InvalidOid: the launcher */
	char		database[NAMEDATALEN];
	ReaperWorkerState state;
	TimestampTz started_at;
	TimestampTz next_start_at;	/* when the launcher starts it (again) */
	int64		starts;			/* how often the launcher started it */

	/* The settings it applied last */
	bool		enabled;
	int			timeout_seconds;
	int			stall_seconds;
	int			interval_seconds;

	/* Its cycles (the launcher: its scans of pg_database) */
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
	int64		last_running;	/* running jobs; -1: unknown (a failed cycle) */
	int64		last_stale;		/* stale jobs left, locked or by the brake;
								 * -1: unknown */
	double		last_oldest_stale_seconds;	/* < 0: none left, or not finite */

	/* Since the server started: jobs reaped, and by cause */
	int64		total_reaped;
	int64		total_stalled;	/* failed as stalled (JobTimeout) */
	int64		total_capped;	/* failed by the runtime cap (JobTimeout) */
	int64		total_lease_expired;	/* failed by a lapsed lease */
	int64		total_requeued; /* re-queued by a lapsed lease */
	int64		total_skipped_locked;	/* the last_skipped_locked, added up */

	/* The doctor's false alarms, counted now and then (at 0: not yet) */
	int64		false_alarms;
	TimestampTz false_alarms_at;

	/* The last failed cycle, or why the worker could not start */
	char		last_error[REAPER_ERROR_LEN];
	TimestampTz last_error_at;
} ReaperStatus;

/* Request and attach the shared state (from _PG_init, when preloaded) */
extern void reaper_status_install_hooks(void);
extern bool reaper_status_preloaded(void);

/*
 * Readers.  reaper_status_read_all() returns the launcher first, then each
 * database in use, in a palloc'd array; reaper_status_read_database() the
 * reaper of one database (false if the launcher has none for it).
 */
extern int	reaper_status_read_all(ReaperStatus **statuses);
extern bool reaper_status_read_database(Oid dboid, ReaperStatus *status);
extern void reaper_status_read_launcher(ReaperStatus *status);
extern void reaper_status_read_here(ReaperStatus *status);

/* Ask the reaper of a database to sweep now; false when none runs */
extern bool reaper_status_request_wake(Oid dboid);

/* Databases a launcher wake names; more than this looks at every one */
#define REAPER_MAX_POKES 32

/* The launcher's side (launcher.c) */
typedef enum ReaperExit
{
	REAPER_EXIT_FAILED,			/* crashed, killed or could not connect */
	REAPER_EXIT_NO_EXTENSION,	/* the extension is not installed there */
	REAPER_EXIT_RESTART_NOW,	/* its database's settings changed */
	REAPER_EXIT_PAUSED			/* stopped for a DBA command */
} ReaperExit;

extern void reaper_status_launcher_started(void);
extern void reaper_status_launcher_state(ReaperWorkerState state, const char *error);
extern void reaper_status_launcher_scanned(TimestampTz start, TimestampTz next);
extern bool reaper_status_take_rescan(Oid *poked, int *npoked, bool *poke_all);
extern int	reaper_status_claim_slot(Oid dboid, const char *database);
extern void reaper_status_release_slot(int slot);
extern void reaper_status_slot_planned(int slot, ReaperWorkerState state,
									   TimestampTz next_start, const char *error);
extern void reaper_status_slot_next_start(int slot, TimestampTz next_start);
extern void reaper_status_slot_launched(int slot, const char *database);
extern void reaper_status_slot_not_launched(int slot);
extern bool reaper_status_slot_ran(int slot);
extern ReaperExit reaper_status_slot_exited(int slot, bool *ran_a_cycle);
extern bool reaper_status_slot_held(int slot);
extern pid_t reaper_status_slot_pid(int slot);
extern int	reaper_status_slots(void);

/* A DBA command's side (dbcommands.c) */
extern pid_t reaper_status_hold(Oid dboid);
extern bool reaper_status_gone(Oid dboid);
extern void reaper_status_unhold(Oid dboid);
extern void reaper_status_poke_launcher(Oid dboid);

/* The reaper's reports (worker.c), into the slot it was started for */
extern bool reaper_status_worker_connecting(int slot, Oid dboid);
extern void reaper_status_worker_started(void);
extern void reaper_status_worker_exiting(ReaperExit why);
extern bool reaper_status_worker_held(void);
extern void reaper_status_set_state(ReaperWorkerState state);
extern void reaper_status_settings_in_force(void);
extern void reaper_status_cycle_started(TimestampTz start);
extern void reaper_status_cycle_done(TimestampTz end, const ReaperSweepResult *result);
extern void reaper_status_cycle_failed(TimestampTz end, const char *message,
									   const ReaperSweepResult *committed);
extern void reaper_status_next_cycle(TimestampTz next);
extern void reaper_status_false_alarms(int64 jobs, TimestampTz at);
extern bool reaper_status_take_wake(void);

#endif							/* PROTEA_REAPER_STATUS_H */
