/*-------------------------------------------------------------------------
 *
 * status.c
 *	  The launcher's and each database reaper's state in shared memory.
 *
 * The state is small and written a few times per cycle, so one spinlock
 * guards plain copies in and out.  There is a slot for each database the
 * launcher looks after (found by OID, so a renamed database keeps its
 * counters) and for each database a DBA command holds; slots outlive the
 * reaper processes, so counters keep counting across restarts.  When the
 * library was not preloaded there is no shared state:
 * reaper_status_preloaded() says so, and runbook.c shows "not preloaded"
 * instead of failing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "commands/dbcommands.h"
#include "utils/timestamp.h"

#include "protea_reaper.h"
#include "settings.h"
#include "status.h"

/* Slots beyond the worker slots, for databases only a DBA command holds */
#define REAPER_HOLD_SLOTS 8

/* One database */
typedef struct ReaperSlot
{
	Oid			dboid;			/* InvalidOid: free */
	bool		launcher_owns;	/* the launcher looks after this database */
	pid_t		hold_pid;		/* a backend running a DBA command on it */
	Latch	   *latch;			/* its reaper's, to wake it; NULL if none */
	bool		wake;			/* protea_reaper_wake() asked for a sweep */
	ReaperExit	exit_why;		/* why its last reaper exited */
	bool		connect_failed; /* status.last_error says why it did not start */
	int64		cycles_at_launch;
	ReaperStatus status;		/* what protea_reaper_status() shows */
} ReaperSlot;

/* The shared state */
typedef struct ReaperShared
{
	slock_t		mutex;			/* protects everything below */
	Latch	   *launcher_latch; /* NULL while no launcher runs */
	bool		rescan;			/* the launcher should read pg_database now */
	bool		poke_all;		/* ... and look again at every database */
	int			npoked;			/* ... or at these */
	Oid			poked[REAPER_MAX_POKES];
	ReaperStatus launcher;
	int			nslots;
	ReaperSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} ReaperShared;

static ReaperShared *shared = NULL;

/* The slot of this process's reaper (worker.c) */
static ReaperSlot *my_slot = NULL;

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
	[REAPER_PAUSED] = "paused",
	[REAPER_NO_SLOT] = "no worker slot",
	[REAPER_RUNNING] = "running",
	[REAPER_NO_ROLE] = "no role",
};

const char *
reaper_state_name(ReaperWorkerState state)
{
	return state_names[state];
}

/* Every reaper needs a worker slot, so no more databases can be reaped */
static int
slot_count(void)
{
	return max_worker_processes + REAPER_HOLD_SLOTS;
}

static Size
shared_size(void)
{
	return add_size(offsetof(ReaperShared, slots),
					mul_size(slot_count(), sizeof(ReaperSlot)));
}

/* Reserve our shared memory (PG 15: only from shmem_request_hook) */
static void
reaper_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(shared_size()));
}

/* Create or attach the shared state */
static void
reaper_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct(REAPER_NAME, shared_size(), &found);
	if (!found)
	{
		memset(shared, 0, shared_size());
		SpinLockInit(&shared->mutex);
		shared->launcher.state = REAPER_NOT_STARTED;
		shared->nslots = slot_count();
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

bool
reaper_status_preloaded(void)
{
	return shared != NULL;
}

/* The slot of a database, or NULL; with the mutex held */
static ReaperSlot *
find_slot(Oid dboid)
{
	for (int i = 0; i < shared->nslots; i++)
		if (shared->slots[i].dboid == dboid)
			return &shared->slots[i];
	return NULL;
}

/* A free slot for a database, or NULL; with the mutex held */
static ReaperSlot *
new_slot(Oid dboid)
{
	ReaperSlot *slot = find_slot(InvalidOid);

	if (slot == NULL)
		return NULL;
	memset(slot, 0, sizeof(ReaperSlot));
	slot->dboid = dboid;
	slot->status.dboid = dboid;
	slot->status.state = REAPER_NOT_STARTED;
	return slot;
}

/* Settings a worker that has not reported yet will use: the reader's */
static void
fill_settings(ReaperStatus *status)
{
	status->enabled = reaper_enabled;
	status->timeout_seconds = reaper_timeout_seconds;
	status->stall_seconds = reaper_stall_seconds;
	status->interval_seconds = reaper_interval_seconds;
}

/*
 * reaper_status_read_launcher
 *		The launcher's status.  On a standby it has not started: the server
 *		starts it once recovery ends.
 */
void
reaper_status_read_launcher(ReaperStatus *status)
{
	SpinLockAcquire(&shared->mutex);
	*status = shared->launcher;
	SpinLockRelease(&shared->mutex);
	if (status->pid == 0 && RecoveryInProgress())
		status->state = REAPER_IN_RECOVERY;
	if (status->started_at == 0)
		fill_settings(status);
}

/*
 * reaper_status_read_all
 *		The launcher, then each database's reaper, in slot order.
 */
int
reaper_status_read_all(ReaperStatus **statuses)
{
	ReaperStatus *all = palloc((shared->nslots + 1) * sizeof(ReaperStatus));
	int			n = 1;

	reaper_status_read_launcher(&all[0]);
	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < shared->nslots; i++)
		if (shared->slots[i].launcher_owns)
			all[n++] = shared->slots[i].status;
	SpinLockRelease(&shared->mutex);
	for (int i = 1; i < n; i++)
		if (all[i].started_at == 0)
			fill_settings(&all[i]);
	*statuses = all;
	return n;
}

/* The reaper of one database; false when the launcher has none for it */
bool
reaper_status_read_database(Oid dboid, ReaperStatus *status)
{
	ReaperSlot *slot;
	bool		found = false;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid);
	if (slot != NULL && slot->launcher_owns)
	{
		*status = slot->status;
		found = true;
	}
	SpinLockRelease(&shared->mutex);
	if (found && status->started_at == 0)
		fill_settings(status);
	return found;
}

/*
 * reaper_status_read_here
 *		The reaper of the caller's database; when the launcher has none for
 *		it, a row that says why.
 */
void
reaper_status_read_here(ReaperStatus *status)
{
	ReaperStatus launcher;
	const char *here = get_database_name(MyDatabaseId);

	if (reaper_status_read_database(MyDatabaseId, status))
		return;
	reaper_status_read_launcher(&launcher);
	memset(status, 0, sizeof(ReaperStatus));
	status->dboid = MyDatabaseId;
	strlcpy(status->database, here, NAMEDATALEN);
	fill_settings(status);
	status->state = REAPER_NOT_STARTED;
	if (!reaper_database_listed(reaper_database_list(), here, NULL))
		snprintf(status->last_error, REAPER_ERROR_LEN,
				 "protea_reaper.database (%s) does not name this database", reaper_database);
	else if (launcher.state == REAPER_IN_RECOVERY || launcher.state == REAPER_NO_ROLE)
	{
		status->state = launcher.state;
		strlcpy(status->last_error, launcher.last_error, REAPER_ERROR_LEN);
	}
	else if (launcher.pid == 0)
		strlcpy(status->last_error, "the launcher is not running", REAPER_ERROR_LEN);
	else
		strlcpy(status->last_error, "the launcher has not started a reaper here yet",
				REAPER_ERROR_LEN);
	if (status->last_error[0])
		status->last_error_at = GetCurrentTimestamp();
}

/*
 * reaper_status_request_wake
 *		Ask the reaper of a database to sweep now instead of at its next
 *		interval.
 */
bool
reaper_status_request_wake(Oid dboid)
{
	ReaperSlot *slot;
	Latch	   *latch = NULL;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid);
	if (slot != NULL && slot->status.pid != 0 && slot->latch != NULL)
	{
		slot->wake = true;
		latch = slot->latch;
	}
	SpinLockRelease(&shared->mutex);

	if (latch != NULL)
		SetLatch(latch);
	return latch != NULL;
}

/* ---- the launcher's side ---- */

/* before_shmem_exit callback of the launcher */
static void
launcher_exit(int code, Datum arg)
{
	SpinLockAcquire(&shared->mutex);
	shared->launcher.pid = 0;
	shared->launcher.state = REAPER_RESTARTING;
	shared->launcher.next_cycle_at = 0;
	shared->launcher_latch = NULL;
	SpinLockRelease(&shared->mutex);
}

void
reaper_status_launcher_started(void)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&shared->mutex);
	shared->launcher.pid = MyProcPid;
	shared->launcher.state = REAPER_RUNNING;
	shared->launcher.started_at = now;
	shared->launcher.starts++;
	shared->launcher_latch = MyLatch;
	shared->rescan = true;
	SpinLockRelease(&shared->mutex);
	before_shmem_exit(launcher_exit, (Datum) 0);
}

/* The launcher's state and, if not NULL, why (an empty string clears it) */
void
reaper_status_launcher_state(ReaperWorkerState state, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&shared->mutex);
	shared->launcher.state = state;
	if (error != NULL)
	{
		strlcpy(shared->launcher.last_error, error, REAPER_ERROR_LEN);
		shared->launcher.last_error_at = error[0] ? now : 0;
	}
	SpinLockRelease(&shared->mutex);
}

void
reaper_status_launcher_scanned(TimestampTz start, TimestampTz next)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&shared->mutex);
	shared->launcher.cycles++;
	shared->launcher.last_cycle_start = start;
	shared->launcher.last_cycle_end = now;
	shared->launcher.next_cycle_at = next;
	shared->launcher.enabled = reaper_enabled;
	shared->launcher.timeout_seconds = reaper_timeout_seconds;
	shared->launcher.stall_seconds = reaper_stall_seconds;
	shared->launcher.interval_seconds = reaper_interval_seconds;
	SpinLockRelease(&shared->mutex);
}

/*
 * reaper_status_take_rescan
 *		Whether someone asked the launcher to read pg_database now, and which
 *		databases to look at again (poke_all: every one); clears the request.
 */
bool
reaper_status_take_rescan(Oid *poked, int *npoked, bool *poke_all)
{
	bool		rescan;

	SpinLockAcquire(&shared->mutex);
	rescan = shared->rescan;
	*poke_all = shared->poke_all;
	*npoked = shared->npoked;
	memcpy(poked, shared->poked, shared->npoked * sizeof(Oid));
	shared->rescan = false;
	shared->poke_all = false;
	shared->npoked = 0;
	SpinLockRelease(&shared->mutex);
	return rescan;
}

/* How many slots there are */
int
reaper_status_slots(void)
{
	return shared->nslots;
}

/* The launcher takes a slot for a database: -1 when none is free */
int
reaper_status_claim_slot(Oid dboid, const char *database)
{
	ReaperSlot *slot;
	int			i = -1;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid);
	if (slot == NULL)
		slot = new_slot(dboid);
	if (slot != NULL)
	{
		slot->launcher_owns = true;
		strlcpy(slot->status.database, database, NAMEDATALEN);
		i = slot - shared->slots;
	}
	SpinLockRelease(&shared->mutex);
	return i;
}

/* The launcher no longer looks after that database */
void
reaper_status_release_slot(int i)
{
	ReaperSlot *slot = &shared->slots[i];

	SpinLockAcquire(&shared->mutex);
	slot->launcher_owns = false;
	if (slot->hold_pid == 0)
		slot->dboid = InvalidOid;
	SpinLockRelease(&shared->mutex);
}

/* What the status shows of a database whose reaper does not run */
void
reaper_status_slot_planned(int i, ReaperWorkerState state,
						   TimestampTz next_start, const char *error)
{
	ReaperSlot *slot = &shared->slots[i];
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&shared->mutex);
	slot->status.state = state;
	slot->status.next_start_at = next_start;
	if (error != NULL)
	{
		strlcpy(slot->status.last_error, error, REAPER_ERROR_LEN);
		slot->status.last_error_at = now;
		slot->connect_failed = true;
	}
	SpinLockRelease(&shared->mutex);
}

/* When the launcher starts the slot's reaper again */
void
reaper_status_slot_next_start(int i, TimestampTz next_start)
{
	SpinLockAcquire(&shared->mutex);
	shared->slots[i].status.next_start_at = next_start;
	SpinLockRelease(&shared->mutex);
}

/* The launcher registered a reaper for the slot's database */
void
reaper_status_slot_launched(int i, const char *database)
{
	ReaperSlot *slot = &shared->slots[i];

	SpinLockAcquire(&shared->mutex);
	strlcpy(slot->status.database, database, NAMEDATALEN);
	slot->status.state = REAPER_STARTING;
	slot->status.next_start_at = 0;
	slot->status.starts++;
	slot->exit_why = REAPER_EXIT_FAILED;
	slot->cycles_at_launch = slot->status.cycles;
	SpinLockRelease(&shared->mutex);
}

/* The reaper could not be registered after all: it was not started */
void
reaper_status_slot_not_launched(int i)
{
	SpinLockAcquire(&shared->mutex);
	shared->slots[i].status.starts--;
	SpinLockRelease(&shared->mutex);
}

/* Whether the slot's reaper has run a cycle since the launcher started it */
bool
reaper_status_slot_ran(int i)
{
	bool		ran;

	SpinLockAcquire(&shared->mutex);
	ran = shared->slots[i].status.cycles > shared->slots[i].cycles_at_launch;
	SpinLockRelease(&shared->mutex);
	return ran;
}

/* Why the slot's reaper exited, and whether it ran a cycle first */
ReaperExit
reaper_status_slot_exited(int i, bool *ran_a_cycle)
{
	ReaperSlot *slot = &shared->slots[i];
	ReaperExit	why;

	SpinLockAcquire(&shared->mutex);
	why = slot->exit_why;
	*ran_a_cycle = slot->status.cycles > slot->cycles_at_launch;
	/* killed before it could say: the process is gone all the same */
	slot->status.pid = 0;
	slot->latch = NULL;
	SpinLockRelease(&shared->mutex);
	return why;
}

/*
 * Whether a DBA command holds the slot's database.  A holder that died
 * without letting go (it cannot, short of a crash) holds nothing.  The
 * holder is read under the mutex, and looked for after it is released.
 */
static bool
held(ReaperSlot *slot)
{
	pid_t		holder;

	SpinLockAcquire(&shared->mutex);
	holder = slot->hold_pid;
	SpinLockRelease(&shared->mutex);
	return holder != 0 && (holder == MyProcPid || kill(holder, 0) == 0);
}

bool
reaper_status_slot_held(int i)
{
	return held(&shared->slots[i]);
}

pid_t
reaper_status_slot_pid(int i)
{
	pid_t		pid;

	SpinLockAcquire(&shared->mutex);
	pid = shared->slots[i].status.pid;
	SpinLockRelease(&shared->mutex);
	return pid;
}

/* ---- a DBA command's side ---- */

/*
 * reaper_status_hold
 *		Keep the launcher from starting a reaper in a database until
 *		reaper_status_unhold(); returns the pid of the reaper running there,
 *		0 if none.  Without a free slot nothing is held: the command's own
 *		lock on the database still keeps a starting reaper out.
 */
pid_t
reaper_status_hold(Oid dboid)
{
	ReaperSlot *slot;
	pid_t		pid = 0;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid);
	if (slot == NULL)
		slot = new_slot(dboid);
	if (slot != NULL)
	{
		slot->hold_pid = MyProcPid;
		pid = slot->status.pid;
	}
	SpinLockRelease(&shared->mutex);
	return pid;
}

/* Whether no reaper runs in the database any more */
bool
reaper_status_gone(Oid dboid)
{
	ReaperSlot *slot;
	bool		gone;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid);
	gone = slot == NULL || slot->status.pid == 0;
	SpinLockRelease(&shared->mutex);
	return gone;
}

void
reaper_status_unhold(Oid dboid)
{
	ReaperSlot *slot;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid);
	if (slot != NULL && slot->hold_pid == MyProcPid)
	{
		slot->hold_pid = 0;
		if (!slot->launcher_owns)
			slot->dboid = InvalidOid;
	}
	SpinLockRelease(&shared->mutex);
}

/*
 * reaper_status_poke_launcher
 *		Ask the launcher to read pg_database now and to look again at a
 *		database (InvalidOid: none in particular).
 */
void
reaper_status_poke_launcher(Oid dboid)
{
	Latch	   *latch;

	SpinLockAcquire(&shared->mutex);
	shared->rescan = true;
	if (OidIsValid(dboid))
	{
		if (shared->npoked < REAPER_MAX_POKES)
			shared->poked[shared->npoked++] = dboid;
		else
			shared->poke_all = true;
	}
	latch = shared->launcher_latch;
	SpinLockRelease(&shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/* ---- the reaper's reports ---- */

/*
 * worker_exit
 *		before_shmem_exit callback of a reaper: it is gone, and the launcher
 *		is told why.  Still connecting means the database or the role could
 *		not be used: that is what stopped it, and the status says so.
 */
static void
worker_exit(int code, Datum arg)
{
	ReaperStatus *s = &my_slot->status;
	char		as_role[NAMEDATALEN + 16] = "";
	char		error[REAPER_ERROR_LEN];
	bool		paused = held(my_slot);
	TimestampTz now = GetCurrentTimestamp();

	if (reaper_role[0])
		snprintf(as_role, sizeof(as_role), " as role \"%s\"", reaper_role);
	snprintf(error, sizeof(error),
			 "could not connect to database \"%s\"%s: see the server log",
			 s->database, as_role);

	SpinLockAcquire(&shared->mutex);
	if (paused)
	{
		my_slot->exit_why = REAPER_EXIT_PAUSED;
		s->state = REAPER_PAUSED;
	}
	else if (s->state == REAPER_STARTING)
	{
		s->state = REAPER_NOT_STARTED;
		strlcpy(s->last_error, error, REAPER_ERROR_LEN);
		s->last_error_at = now;
		my_slot->exit_why = REAPER_EXIT_FAILED;
		my_slot->connect_failed = true;
	}
	else if (my_slot->exit_why == REAPER_EXIT_NO_EXTENSION)
		s->state = REAPER_NO_EXTENSION;
	else if (my_slot->exit_why == REAPER_EXIT_FAILED)
		s->state = REAPER_RESTARTING;
	s->pid = 0;
	my_slot->latch = NULL;
	s->next_cycle_at = 0;
	SpinLockRelease(&shared->mutex);
}

/*
 * reaper_status_worker_connecting
 *		A reaper is about to connect; if that fails (FATAL), worker_exit
 *		records why.  False when the slot is not (or no longer) its own.
 */
bool
reaper_status_worker_connecting(int slot, Oid dboid)
{
	ReaperSlot *mine = &shared->slots[slot];
	bool		ours;

	SpinLockAcquire(&shared->mutex);
	/* a reaper a previous launcher started may find its slot reused */
	ours = mine->dboid == dboid && mine->launcher_owns && mine->status.pid == 0;
	if (ours)
	{
		mine->status.pid = MyProcPid;
		mine->status.state = REAPER_STARTING;
	}
	SpinLockRelease(&shared->mutex);
	if (!ours)
		return false;

	my_slot = mine;
	before_shmem_exit(worker_exit, (Datum) 0);
	return true;
}

/*
 * reaper_status_worker_started
 *		The reaper is connected.  Why it could not start before is history.
 */
void
reaper_status_worker_started(void)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&shared->mutex);
	my_slot->latch = MyLatch;
	my_slot->status.started_at = now;
	my_slot->status.state = REAPER_IDLE;
	if (my_slot->connect_failed)
	{
		my_slot->status.last_error[0] = '\0';
		my_slot->status.last_error_at = 0;
		my_slot->connect_failed = false;
	}
	SpinLockRelease(&shared->mutex);
}

/* The reaper exits on purpose: NO_EXTENSION or RESTART_NOW */
void
reaper_status_worker_exiting(ReaperExit why)
{
	SpinLockAcquire(&shared->mutex);
	my_slot->exit_why = why;
	SpinLockRelease(&shared->mutex);
}

/* Whether a DBA command wants the reaper's database alone */
bool
reaper_status_worker_held(void)
{
	return held(my_slot);
}

void
reaper_status_set_state(ReaperWorkerState state)
{
	SpinLockAcquire(&shared->mutex);
	my_slot->status.state = state;
	SpinLockRelease(&shared->mutex);
}

/* The settings the reaper applies from now on */
void
reaper_status_settings_in_force(void)
{
	SpinLockAcquire(&shared->mutex);
	fill_settings(&my_slot->status);
	SpinLockRelease(&shared->mutex);
}

void
reaper_status_cycle_started(TimestampTz start)
{
	SpinLockAcquire(&shared->mutex);
	my_slot->status.last_cycle_start = start;
	my_slot->status.state = REAPER_SWEEPING;
	SpinLockRelease(&shared->mutex);
}

/* Add the jobs a cycle's committed batches reaped, by cause; mutex held */
static void
add_reaped(ReaperStatus *s, const ReaperSweepResult *result)
{
	s->total_reaped += (int64) result->reaped;
	s->total_requeued += (int64) result->requeued;
	s->total_lease_expired += (int64) result->lease_expired;
	s->total_capped += (int64) result->capped;
	s->total_stalled += (int64) (result->reaped - result->requeued -
								 result->lease_expired - result->capped);
}

void
reaper_status_cycle_done(TimestampTz end, const ReaperSweepResult *result)
{
	ReaperStatus *s = &my_slot->status;

	SpinLockAcquire(&shared->mutex);
	s->cycles++;
	s->last_cycle_end = end;
	s->last_reaped = (int64) result->reaped;
	s->last_alive = (int64) result->alive;
	s->last_skipped_locked = (int64) result->skipped_locked;
	s->last_waiting = (int64) result->waiting;
	s->last_running = (int64) result->running;
	s->last_stale = result->stale;
	s->last_oldest_stale_seconds = result->oldest_stale_seconds;
	s->total_skipped_locked += (int64) result->skipped_locked;
	add_reaped(s, result);
	SpinLockRelease(&shared->mutex);
}

/* A failed cycle: the batches it committed before the error still count */
void
reaper_status_cycle_failed(TimestampTz end, const char *message,
						   const ReaperSweepResult *committed)
{
	ReaperStatus *s = &my_slot->status;

	SpinLockAcquire(&shared->mutex);
	s->cycles++;
	s->failed_cycles++;
	s->last_cycle_end = end;
	s->last_reaped = (int64) committed->reaped;
	add_reaped(s, committed);
	s->last_alive = 0;
	s->last_skipped_locked = 0;
	s->last_waiting = 0;
	s->last_running = -1;
	s->last_stale = -1;
	s->last_oldest_stale_seconds = -1;
	strlcpy(s->last_error, message, REAPER_ERROR_LEN);
	s->last_error_at = end;
	SpinLockRelease(&shared->mutex);
}

void
reaper_status_next_cycle(TimestampTz next)
{
	SpinLockAcquire(&shared->mutex);
	my_slot->status.next_cycle_at = next;
	SpinLockRelease(&shared->mutex);
}

/* The doctor's false alarms, as the reaper counted them at "at" */
void
reaper_status_false_alarms(int64 jobs, TimestampTz at)
{
	SpinLockAcquire(&shared->mutex);
	my_slot->status.false_alarms = jobs;
	my_slot->status.false_alarms_at = at;
	SpinLockRelease(&shared->mutex);
}

/* Whether protea_reaper_wake() asked for a sweep now; clears the request */
bool
reaper_status_take_wake(void)
{
	bool		wake;

	SpinLockAcquire(&shared->mutex);
	wake = my_slot->wake;
	my_slot->wake = false;
	SpinLockRelease(&shared->mutex);
	return wake;
}
