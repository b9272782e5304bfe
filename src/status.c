/*-------------------------------------------------------------------------
 *
 * status.c
 *	  The background worker's state in shared memory.
 *
 * The state is small and written once or twice per cycle, so a spinlock
 * guards plain copies in and out.  When the library was not preloaded there
 * is no shared state: reaper_status_read() says so, and runbook.c shows
 * "not preloaded" instead of failing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "protea_reaper.h"
#include "settings.h"
#include "status.h"

/* The shared state */
typedef struct ReaperShared
{
	slock_t		mutex;			/* protects everything below */
	Latch	   *latch;			/* the worker's, to wake it; NULL if none */
	bool		wake;			/* protea_reaper_wake() asked for a sweep */
	char		role[NAMEDATALEN];	/* the worker connects as (empty: bootstrap) */
	bool		connect_failed; /* status.last_error says why it did not start */
	ReaperStatus status;		/* what protea_reaper_status() shows */
} ReaperShared;

static ReaperShared *shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* The names of the states, as protea_reaper_status() shows them */
static const char *const state_names[] = {
	[REAPER_NOT_PRELOADED] = "not preloaded",
	[REAPER_NOT_STARTED] = "not started",
	[REAPER_STARTING] = "starting",
	[REAPER_SWEEPING] = "sweeping",
	[REAPER_IDLE] = "idle",
	[REAPER_IDLE_AFTER_ERROR] = "idle after error",
	[REAPER_DISABLED] = "disabled",
	[REAPER_IN_RECOVERY] = "in recovery",
	[REAPER_NO_EXTENSION] = "no extension",
	[REAPER_SUBSCRIBED] = "subscribed",
	[REAPER_RESTARTING] = "restarting",
};

const char *
reaper_state_name(ReaperWorkerState state)
{
	return state_names[state];
}

/* Reserve our shared memory (PG 15: only from shmem_request_hook) */
static void
reaper_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(ReaperShared)));
}

/* Create or attach the shared state */
static void
reaper_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct(REAPER_NAME, sizeof(ReaperShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(ReaperShared));
		SpinLockInit(&shared->mutex);
		shared->status.state = REAPER_NOT_STARTED;
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

/*
 * reaper_status_read
 *		A copy of the shared state.  Before the worker's first report it
 *		shows the settings the worker will use.
 */
bool
reaper_status_read(ReaperStatus *status)
{
	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	*status = shared->status;
	SpinLockRelease(&shared->mutex);

	if (status->started_at == 0 && status->database[0] == '\0')
	{
		strlcpy(status->database, reaper_database, NAMEDATALEN);
		status->enabled = reaper_enabled;
		status->timeout_seconds = reaper_timeout_seconds;
		status->stall_seconds = reaper_stall_seconds;
		status->interval_seconds = reaper_interval_seconds;
	}
	return true;
}

/*
 * reaper_status_request_wake
 *		Ask the worker to sweep now instead of at its next interval.
 */
bool
reaper_status_request_wake(void)
{
	Latch	   *latch = NULL;

	SpinLockAcquire(&shared->mutex);
	if (shared->status.pid != 0)
	{
		shared->wake = true;
		latch = shared->latch;
	}
	SpinLockRelease(&shared->mutex);

	if (latch != NULL)
		SetLatch(latch);
	return latch != NULL;
}

/*
 * worker_exit
 *		before_shmem_exit callback of the worker: it is gone.  Still
 *		connecting means the database or the role could not be used: that
 *		is what stopped it, and the status says so.
 */
static void
worker_exit(int code, Datum arg)
{
	SpinLockAcquire(&shared->mutex);
	if (shared->status.state == REAPER_STARTING)
	{
		shared->status.state = REAPER_NOT_STARTED;
		snprintf(shared->status.last_error, REAPER_ERROR_LEN,
				 "could not connect to database \"%s\" as %s%s%s: does it exist? (see the server log)",
				 shared->status.database,
				 shared->role[0] ? "role \"" : "the bootstrap superuser",
				 shared->role, shared->role[0] ? "\"" : "");
		shared->status.last_error_at = GetCurrentTimestamp();
		shared->connect_failed = true;
	}
	else
		shared->status.state = REAPER_RESTARTING;
	shared->status.pid = 0;
	shared->latch = NULL;
	shared->status.next_cycle_at = 0;
	SpinLockRelease(&shared->mutex);
}

/*
 * reaper_status_worker_connecting
 *		A worker is about to connect; if that fails (FATAL), worker_exit
 *		records why.
 */
void
reaper_status_worker_connecting(const char *database, const char *role)
{
	SpinLockAcquire(&shared->mutex);
	shared->status.pid = MyProcPid;
	shared->status.state = REAPER_STARTING;
	strlcpy(shared->status.database, database, NAMEDATALEN);
	strlcpy(shared->role, role, NAMEDATALEN);
	SpinLockRelease(&shared->mutex);

	before_shmem_exit(worker_exit, (Datum) 0);
}

/*
 * reaper_status_worker_started
 *		The worker is connected.  Counters survive restarts of the worker
 *		(not of the server), so total_reaped keeps counting.
 */
void
reaper_status_worker_started(void)
{
	SpinLockAcquire(&shared->mutex);
	shared->latch = MyLatch;
	shared->status.started_at = GetCurrentTimestamp();
	shared->status.state = REAPER_IDLE;
	/* why it could not start is history once it has */
	if (shared->connect_failed)
	{
		shared->status.last_error[0] = '\0';
		shared->status.last_error_at = 0;
		shared->connect_failed = false;
	}
	SpinLockRelease(&shared->mutex);
}

void
reaper_status_set_state(ReaperWorkerState state)
{
	SpinLockAcquire(&shared->mutex);
	shared->status.state = state;
	SpinLockRelease(&shared->mutex);
}

/* The settings the worker applies from now on */
void
reaper_status_settings_in_force(void)
{
	SpinLockAcquire(&shared->mutex);
	shared->status.enabled = reaper_enabled;
	shared->status.timeout_seconds = reaper_timeout_seconds;
	shared->status.stall_seconds = reaper_stall_seconds;
	shared->status.interval_seconds = reaper_interval_seconds;
	SpinLockRelease(&shared->mutex);
}

void
reaper_status_cycle_started(TimestampTz start)
{
	SpinLockAcquire(&shared->mutex);
	shared->status.last_cycle_start = start;
	shared->status.state = REAPER_SWEEPING;
	SpinLockRelease(&shared->mutex);
}

void
reaper_status_cycle_done(TimestampTz end, const ReaperSweepResult *result)
{
	SpinLockAcquire(&shared->mutex);
	shared->status.cycles++;
	shared->status.last_cycle_end = end;
	shared->status.last_reaped = (int64) result->reaped;
	shared->status.last_alive = (int64) result->alive;
	shared->status.last_skipped_locked = (int64) result->skipped_locked;
	shared->status.last_waiting = (int64) result->waiting;
	shared->status.total_reaped += (int64) result->reaped;
	SpinLockRelease(&shared->mutex);
}

/* A failed cycle: the batches it committed before the error still count */
void
reaper_status_cycle_failed(TimestampTz end, const char *message,
						   const ReaperSweepResult *committed)
{
	SpinLockAcquire(&shared->mutex);
	shared->status.cycles++;
	shared->status.failed_cycles++;
	shared->status.last_cycle_end = end;
	shared->status.last_reaped = (int64) committed->reaped;
	shared->status.total_reaped += (int64) committed->reaped;
	shared->status.last_alive = 0;
	shared->status.last_skipped_locked = 0;
	shared->status.last_waiting = 0;
	strlcpy(shared->status.last_error, message, REAPER_ERROR_LEN);
	shared->status.last_error_at = end;
	shared->connect_failed = false;
	SpinLockRelease(&shared->mutex);
}

void
reaper_status_next_cycle(TimestampTz next)
{
	SpinLockAcquire(&shared->mutex);
	shared->status.next_cycle_at = next;
	SpinLockRelease(&shared->mutex);
}

/* Whether protea_reaper_wake() asked for a sweep now; clears the request */
bool
reaper_status_take_wake(void)
{
	bool		wake;

	SpinLockAcquire(&shared->mutex);
	wake = shared->wake;
	shared->wake = false;
	SpinLockRelease(&shared->mutex);
	return wake;
}
