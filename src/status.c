/*-------------------------------------------------------------------------
 *
 * status.c
 *	  The background worker's state in shared memory, and the SQL functions
 *	  that read it (protea_reaper_status) or poke it (protea_reaper_wake).
 *
 * The state is small and written once or twice per cycle, so a spinlock
 * guards plain copies in and out.  When the library was not preloaded there
 * is no shared state; the SQL functions then say so instead of failing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "settings.h"
#include "status.h"

#define REAPER_STATE_LEN 32
#define REAPER_ERROR_LEN 512

typedef struct ReaperState
{
	slock_t		mutex;
	pid_t		pid;			/* 0 when the worker is not running */
	Latch	   *latch;			/* the worker's latch, to wake it */
	bool		wake;			/* a sweep was asked for now */
	char		database[NAMEDATALEN];
	char		state[REAPER_STATE_LEN];
	bool		enabled;		/* settings as the worker last read them */
	int			timeout_seconds;
	int			stall_seconds;
	int			interval_seconds;
	TimestampTz started_at;
	int64		cycles;
	int64		failed_cycles;
	TimestampTz last_cycle_start;
	TimestampTz last_cycle_end;
	int64		last_reaped;
	int64		last_alive;
	int64		last_skipped_locked;
	int64		last_waiting;	/* stale jobs the brake left */
	int64		total_reaped;
	char		last_error[REAPER_ERROR_LEN];
	TimestampTz last_error_at;
	TimestampTz next_cycle_at;
} ReaperState;

static ReaperState *reaper_state = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PG_FUNCTION_INFO_V1(protea_reaper_status);
PG_FUNCTION_INFO_V1(protea_reaper_wake);

/* Reserve our shared memory (PG 15: only from shmem_request_hook) */
static void
reaper_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(ReaperState)));
}

/* Create or attach the shared state */
static void
reaper_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	reaper_state = ShmemInitStruct("protea_reaper", sizeof(ReaperState), &found);
	if (!found)
	{
		memset(reaper_state, 0, sizeof(ReaperState));
		SpinLockInit(&reaper_state->mutex);
		strlcpy(reaper_state->state, "not started", REAPER_STATE_LEN);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * reaper_status_install_hooks
 *		Chain our shared-memory hooks; called from _PG_init when preloaded.
 */
void
reaper_status_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = reaper_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = reaper_shmem_startup;
}

/* on_shmem_exit callback: the worker is gone */
static void
reaper_status_worker_exit(int code, Datum arg)
{
	SpinLockAcquire(&reaper_state->mutex);
	reaper_state->pid = 0;
	reaper_state->latch = NULL;
	reaper_state->next_cycle_at = 0;
	strlcpy(reaper_state->state, code == 0 ? "stopped" : "restarting",
			REAPER_STATE_LEN);
	SpinLockRelease(&reaper_state->mutex);
}

/*
 * reaper_status_worker_started
 *		Record a new worker incarnation.  Counters survive restarts of the
 *		worker (not of the server), so total_reaped keeps counting.
 */
void
reaper_status_worker_started(const char *database)
{
	SpinLockAcquire(&reaper_state->mutex);
	reaper_state->pid = MyProcPid;
	reaper_state->latch = MyLatch;
	reaper_state->started_at = GetCurrentTimestamp();
	strlcpy(reaper_state->database, database, NAMEDATALEN);
	strlcpy(reaper_state->state, "starting", REAPER_STATE_LEN);
	SpinLockRelease(&reaper_state->mutex);

	on_shmem_exit(reaper_status_worker_exit, (Datum) 0);
}

void
reaper_status_set_state(const char *state)
{
	SpinLockAcquire(&reaper_state->mutex);
	strlcpy(reaper_state->state, state, REAPER_STATE_LEN);
	SpinLockRelease(&reaper_state->mutex);
}

/* Publish the settings the worker runs with (after start and each reload) */
void
reaper_status_settings_in_force(void)
{
	SpinLockAcquire(&reaper_state->mutex);
	reaper_state->enabled = reaper_enabled;
	reaper_state->timeout_seconds = reaper_timeout_seconds;
	reaper_state->stall_seconds = reaper_stall_seconds;
	reaper_state->interval_seconds = reaper_interval_seconds;
	SpinLockRelease(&reaper_state->mutex);
}

void
reaper_status_cycle_started(TimestampTz start)
{
	SpinLockAcquire(&reaper_state->mutex);
	reaper_state->last_cycle_start = start;
	strlcpy(reaper_state->state, "sweeping", REAPER_STATE_LEN);
	SpinLockRelease(&reaper_state->mutex);
}

void
reaper_status_cycle_done(TimestampTz end, const ReaperSweepResult *result)
{
	SpinLockAcquire(&reaper_state->mutex);
	reaper_state->cycles++;
	reaper_state->last_cycle_end = end;
	reaper_state->last_reaped = (int64) result->reaped;
	reaper_state->last_alive = (int64) result->alive;
	reaper_state->last_skipped_locked = (int64) result->skipped_locked;
	reaper_state->last_waiting = (int64) result->waiting;
	reaper_state->total_reaped += (int64) result->reaped;
	SpinLockRelease(&reaper_state->mutex);
}

/* A failed cycle: the batches it committed before the error still count */
void
reaper_status_cycle_failed(TimestampTz end, const char *message,
						   const ReaperSweepResult *committed)
{
	SpinLockAcquire(&reaper_state->mutex);
	reaper_state->cycles++;
	reaper_state->failed_cycles++;
	reaper_state->last_cycle_end = end;
	reaper_state->last_reaped = (int64) committed->reaped;
	reaper_state->total_reaped += (int64) committed->reaped;
	reaper_state->last_alive = 0;
	reaper_state->last_skipped_locked = 0;
	reaper_state->last_waiting = 0;
	strlcpy(reaper_state->last_error, message, REAPER_ERROR_LEN);
	reaper_state->last_error_at = end;
	SpinLockRelease(&reaper_state->mutex);
}

void
reaper_status_next_cycle(TimestampTz next)
{
	SpinLockAcquire(&reaper_state->mutex);
	reaper_state->next_cycle_at = next;
	SpinLockRelease(&reaper_state->mutex);
}

/* Whether protea_reaper_wake() asked for a sweep now; clears the request */
bool
reaper_status_take_wake(void)
{
	bool		wake;

	SpinLockAcquire(&reaper_state->mutex);
	wake = reaper_state->wake;
	reaper_state->wake = false;
	SpinLockRelease(&reaper_state->mutex);
	return wake;
}

/* The NOTICE given when there is no worker to report on */
static void
notice_not_preloaded(void)
{
	ereport(NOTICE,
			(errmsg("the protea_reaper background worker is not running"),
			 errdetail("protea_reaper is not in shared_preload_libraries, so only manual sweeps (protea_reaper_run_once()) happen."),
			 errhint("Add protea_reaper to shared_preload_libraries in postgresql.conf and restart the server.")));
}

#define TS_OR_NULL(i, ts) \
	do { \
		if ((ts) != 0) \
			values[i] = TimestampTzGetDatum(ts); \
		else \
			nulls[i] = true; \
	} while (0)

/*
 * protea_reaper_status
 *		One row describing the background worker.  Without preloading it
 *		gives the session's settings, no pid, and a NOTICE saying why.
 */
Datum
protea_reaper_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[21];
	bool		nulls[21];
	ReaperState snap;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(nulls, 0, sizeof(nulls));

	if (reaper_state == NULL)
	{
		notice_not_preloaded();
		memset(&snap, 0, sizeof(snap));
		strlcpy(snap.state, "not preloaded", REAPER_STATE_LEN);
		snap.enabled = reaper_enabled;
		snap.timeout_seconds = reaper_timeout_seconds;
		snap.stall_seconds = reaper_stall_seconds;
		snap.interval_seconds = reaper_interval_seconds;
	}
	else
	{
		SpinLockAcquire(&reaper_state->mutex);
		memcpy(&snap, reaper_state, sizeof(snap));
		SpinLockRelease(&reaper_state->mutex);

		/* Before the worker's first report, show what it will use */
		if (snap.started_at == 0)
		{
			strlcpy(snap.database, reaper_database, NAMEDATALEN);
			snap.enabled = reaper_enabled;
			snap.timeout_seconds = reaper_timeout_seconds;
			snap.stall_seconds = reaper_stall_seconds;
			snap.interval_seconds = reaper_interval_seconds;
		}
	}

	if (snap.pid != 0)
		values[0] = Int32GetDatum(snap.pid);
	else
		nulls[0] = true;
	if (snap.database[0] != '\0')
		values[1] = CStringGetTextDatum(snap.database);
	else
		nulls[1] = true;
	values[2] = CStringGetTextDatum(snap.state);
	values[3] = BoolGetDatum(snap.enabled);
	values[4] = Int32GetDatum(snap.timeout_seconds);
	values[5] = Int32GetDatum(snap.stall_seconds);
	values[6] = Int32GetDatum(snap.interval_seconds);
	TS_OR_NULL(7, snap.started_at);
	values[8] = Int64GetDatum(snap.cycles);
	values[9] = Int64GetDatum(snap.failed_cycles);
	TS_OR_NULL(10, snap.last_cycle_start);
	TS_OR_NULL(11, snap.last_cycle_end);
	if (snap.last_cycle_start != 0 && snap.last_cycle_end >= snap.last_cycle_start)
		values[12] = Float8GetDatum((snap.last_cycle_end - snap.last_cycle_start) / 1000.0);
	else
		nulls[12] = true;
	values[13] = Int64GetDatum(snap.last_reaped);
	values[14] = Int64GetDatum(snap.last_alive);
	values[15] = Int64GetDatum(snap.total_reaped);
	if (snap.last_error_at != 0)
		values[16] = CStringGetTextDatum(snap.last_error);
	else
		nulls[16] = true;
	TS_OR_NULL(17, snap.last_error_at);
	TS_OR_NULL(18, snap.next_cycle_at);
	values[19] = Int64GetDatum(snap.last_skipped_locked);
	values[20] = Int64GetDatum(snap.last_waiting);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * protea_reaper_wake
 *		Ask the worker to sweep now instead of at its next interval.  Returns
 *		false (with a NOTICE) when there is no worker to wake.
 */
Datum
protea_reaper_wake(PG_FUNCTION_ARGS)
{
	Latch	   *latch = NULL;

	if (reaper_state == NULL)
	{
		notice_not_preloaded();
		PG_RETURN_BOOL(false);
	}

	SpinLockAcquire(&reaper_state->mutex);
	if (reaper_state->pid != 0)
	{
		reaper_state->wake = true;
		latch = reaper_state->latch;
	}
	SpinLockRelease(&reaper_state->mutex);

	if (latch == NULL)
	{
		ereport(NOTICE,
				(errmsg("the protea_reaper background worker is not running right now"),
				 errhint("The postmaster restarts it within seconds; see protea_reaper_status().")));
		PG_RETURN_BOOL(false);
	}

	SetLatch(latch);
	PG_RETURN_BOOL(true);
}
