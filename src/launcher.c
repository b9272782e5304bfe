/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: a background worker connected to no database, which
 *	  starts one reaper (worker.c) in every database where the extension
 *	  is installed, and starts it again when it fails.
 *
 * The model is the logical-replication launcher and TimescaleDB's: only the
 * launcher is registered at server start, once recovery has finished; it
 * reads pg_database (a shared catalog) every interval, and starts a
 * dynamic worker per connectable, non-template, valid database that
 * protea_reaper.database does not filter out, by OID, as the role
 * protea_reaper.role names.  A reaper that finds no extension exits and
 * costs nothing until CREATE EXTENSION runs there (dbcommands.c wakes the
 * launcher) or REAPER_REPROBE_MS has passed (a restore of a file copy).
 *
 * The launcher owns restarts: reapers never restart by themselves.  One
 * that failed is started again after a delay that doubles from
 * REAPER_RESTART_MS up to interval_seconds; one stopped for a DBA command
 * (dbcommands.c) or for new database settings is started again at once.
 * Why a reaper is not running (no role, no worker slot, could not connect)
 * is in protea_reaper_status() and is logged once, not at every retry.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "compat.h"
#include "launcher.h"
#include "protea_reaper.h"
#include "settings.h"
#include "status.h"

/* The first delay before a failed reaper (or the launcher) starts again */
#define REAPER_RESTART_MS (5 * 1000)

/* A database without the extension is looked at again after this long */
#define REAPER_REPROBE_MS (10 * 60 * 1000)

/* How long the launcher waits for reapers a previous launcher left */
#define REAPER_ORPHAN_WAIT_MS (10 * 1000)

/*
 * How many reapers may look at databases not known to have the extension at
 * once: a server with many databases must not spend its worker slots on
 * them, nor make the databases that have it wait
 */
#define REAPER_MAX_PROBES 2

/* What the launcher knows of one database */
typedef struct LauncherDb
{
	Oid			dboid;			/* hash key */
	char		name[NAMEDATALEN];
	bool		wanted;			/* eligible at the last scan */
	bool		confirmed;		/* a reaper of it has run a cycle */
	bool		no_extension;	/* its last reaper found no extension */
	bool		poked;			/* CREATE EXTENSION ran there while it looked */
	TimestampTz probed_at;		/* ... at this time */
	int			slot;			/* its slot in status.c, -1: none */
	BackgroundWorkerHandle *handle; /* its reaper, NULL: none registered */
	Oid			roleid;			/* the role its reaper connected as */
	TimestampTz next_start;		/* not before this (0: now) */
	int			failures;		/* failed starts in a row */
} LauncherDb;

static HTAB *databases = NULL;

/* The role reapers connect as (InvalidOid: the bootstrap superuser) */
static Oid	reaper_roleid = InvalidOid;
static bool role_missing = false;
static int	role_failures = 0;

/* Names in protea_reaper.database not found at the last scan, reported */
static char *missing_reported = NULL;

/* Whether "no worker slot" was logged since a start last succeeded */
static bool no_slot_reported = false;

static TimestampTz next_scan = 0;

/*
 * reaper_launcher_register
 *		Register the launcher; called from _PG_init while preloading.  It
 *		starts once recovery has finished: on a standby nothing runs, and
 *		promotion starts it.
 */
void
reaper_launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION | PROTEA_BGWORKER_INTERRUPTIBLE;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = REAPER_RESTART_MS / 1000;
	strlcpy(worker.bgw_library_name, REAPER_NAME, BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "protea_reaper_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "protea_reaper launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "protea_reaper launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* The delay before the n-th restart in a row: doubling, up to the interval */
static long
backoff_ms(int failures)
{
	long		cap = Max((long) reaper_interval_seconds * 1000L, REAPER_RESTART_MS);
	long		delay = REAPER_RESTART_MS;

	while (--failures > 0 && delay < cap)
		delay *= 2;
	return Min(delay, cap);
}

/*
 * report_missing_names
 *		Names in protea_reaper.database that match no database: logged once
 *		per list of missing names, and shown in the launcher's status.
 */
static void
report_missing_names(List *names, const bool *found)
{
	StringInfoData missing;
	ListCell   *lc;

	initStringInfo(&missing);
	foreach(lc, names)
	{
		if (!found[foreach_current_index(lc)])
			appendStringInfo(&missing, "%s\"%s\"", missing.len ? ", " : "",
							 (const char *) lfirst(lc));
	}
	if (missing.len == 0)
	{
		if (missing_reported != NULL)
		{
			reaper_status_launcher_state(REAPER_RUNNING, "");
			pfree(missing_reported);
		}
		missing_reported = NULL;
		return;
	}
	if (missing_reported != NULL && strcmp(missing_reported, missing.data) == 0)
		return;
	if (missing_reported != NULL)
		pfree(missing_reported);
	missing_reported = MemoryContextStrdup(TopMemoryContext, missing.data);
	ereport(LOG,
			(errmsg("protea_reaper.database names %s, which is not a database that can be reaped",
					missing.data),
			 errdetail("Template databases and databases that do not allow connections are not reaped."),
			 errhint("Correct protea_reaper.database, or empty it to reap every database with the extension, then reload.")));
	reaper_status_launcher_state(REAPER_RUNNING,
								 psprintf("protea_reaper.database names %s, not found", missing.data));
}

/*
 * look_up_role
 *		The OID of protea_reaper.role, looked up at every scan so that a role
 *		created again is used.  A missing role is logged once; the launcher
 *		then looks again with a growing delay.
 */
static bool
look_up_role(void)
{
	Oid			roleid = InvalidOid;

	if (reaper_role[0] != '\0')
		roleid = get_role_oid(reaper_role, true);
	if (reaper_role[0] != '\0' && !OidIsValid(roleid))
	{
		role_failures++;
		if (!role_missing)
			ereport(LOG,
					(errmsg("protea_reaper cannot start its reapers: role \"%s\" does not exist",
							reaper_role),
					 errhint("Create the role, or correct protea_reaper.role and reload; the launcher looks again with a growing delay, up to interval_seconds.")));
		role_missing = true;
		reaper_status_launcher_state(REAPER_NO_ROLE,
									 psprintf("role \"%s\" does not exist (protea_reaper.role)", reaper_role));
		return false;
	}
	if (role_missing)
	{
		ereport(LOG,
				(errmsg("protea_reaper found role \"%s\": starting its reapers", reaper_role)));
		reaper_status_launcher_state(REAPER_RUNNING, "");
	}
	role_missing = false;
	role_failures = 0;
	reaper_roleid = roleid;
	return true;
}

/*
 * scan_databases
 *		Read pg_database: note the databases that may be reaped (and their
 *		current names), and those that no longer may.
 */
static void
scan_databases(void)
{
	List	   *names = NIL;
	bool	   *found;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	HASH_SEQ_STATUS seq;
	LauncherDb *db;
	MemoryContext cxt = CurrentMemoryContext;

	names = reaper_database_list();
	found = palloc0(sizeof(bool) * (list_length(names) + 1));

	hash_seq_init(&seq, databases);
	while ((db = hash_seq_search(&seq)) != NULL)
		db->wanted = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	pgstat_report_activity(STATE_RUNNING, "protea_reaper launcher: reading pg_database");
	(void) look_up_role();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tup);
		const char *name = NameStr(form->datname);
		bool		known;

		if (form->datistemplate || !form->datallowconn ||
			protea_database_is_invalid(form) ||
			!reaper_database_listed(names, name, found))
			continue;
		/* a database the role may not connect to is not knocked on */
		if (OidIsValid(reaper_roleid) && !role_missing &&
			protea_database_aclcheck(form->oid, reaper_roleid, ACL_CONNECT) != ACLCHECK_OK)
			continue;
		db = hash_search(databases, &form->oid, HASH_ENTER, &known);
		if (!known)
		{
			db->confirmed = false;
			db->no_extension = false;
			db->poked = false;
			db->probed_at = 0;
			db->slot = -1;
			db->handle = NULL;
			db->roleid = InvalidOid;
			db->next_start = 0;
			db->failures = 0;
		}
		strlcpy(db->name, name, NAMEDATALEN);
		db->wanted = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);

	report_missing_names(names, found);
}

/* Let go of a database's slot; its row leaves protea_reaper_status() */
static void
release(LauncherDb *db)
{
	if (db->slot >= 0)
		reaper_status_release_slot(db->slot);
	db->slot = -1;
}

/*
 * stop_unwanted
 *		Reapers of databases that were dropped, renamed out of the list,
 *		made templates or closed to connections stop; so do those that
 *		connected as another role than protea_reaper.role names now.
 */
static void
stop_unwanted(void)
{
	HASH_SEQ_STATUS seq;
	LauncherDb *db;

	hash_seq_init(&seq, databases);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		bool		other_role = !role_missing && db->roleid != reaper_roleid;

		if (db->handle != NULL && (!db->wanted || other_role))
		{
			TerminateBackgroundWorker(db->handle);
			if (db->wanted)
				db->next_start = 0;
		}
		else if (db->handle == NULL && !db->wanted)
		{
			release(db);
			hash_search(databases, &db->dboid, HASH_REMOVE, NULL);
		}
	}
}

/* Databases someone asked the launcher to look at again (CREATE EXTENSION) */
static void
take_pokes(bool *rescan)
{
	Oid			poked[REAPER_MAX_POKES];
	int			npoked;
	bool		poke_all;
	HASH_SEQ_STATUS seq;
	LauncherDb *db;

	*rescan = reaper_status_take_rescan(poked, &npoked, &poke_all);
	hash_seq_init(&seq, databases);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		bool		poke = poke_all;

		for (int i = 0; i < npoked && !poke; i++)
			poke = (poked[i] == db->dboid);
		/* a poke looks again where there was no extension; it skips no backoff */
		if (poke && db->handle == NULL && db->no_extension)
		{
			db->no_extension = false;
			db->next_start = 0;
		}
		else if (poke && db->handle != NULL)
			db->poked = true;	/* its reaper may have looked too early */
	}
}

/*
 * collect_exit
 *		A reaper has exited: plan its next start by why it did.
 */
static void
collect_exit(LauncherDb *db, TimestampTz now)
{
	bool		ran_a_cycle;
	ReaperExit	why = reaper_status_slot_exited(db->slot, &ran_a_cycle);
	bool		poked = db->poked;

	pfree(db->handle);
	db->handle = NULL;
	db->poked = false;
	if (ran_a_cycle)
		db->confirmed = true;
	switch (why)
	{
		case REAPER_EXIT_NO_EXTENSION:
			db->confirmed = false;
			db->no_extension = !poked;
			db->probed_at = now;
			db->next_start = 0;
			db->failures = 0;
			release(db);
			break;
		case REAPER_EXIT_RESTART_NOW:
		case REAPER_EXIT_PAUSED:
			db->failures = 0;
			db->next_start = 0;
			break;
		case REAPER_EXIT_FAILED:
			db->failures = ran_a_cycle ? 1 : db->failures + 1;
			db->next_start = TimestampTzPlusMilliseconds(now, backoff_ms(db->failures));
			/* not known to have the extension: no row that looks like a dead reaper */
			if (!db->confirmed)
				release(db);
			else
				reaper_status_slot_next_start(db->slot, db->next_start);
			break;
	}
}

/*
 * start_reaper
 *		Register a dynamic worker for one database: its slot in main_arg, the
 *		database and role OIDs in bgw_extra.  False when the server has no
 *		worker slot left.
 */
static bool
start_reaper(LauncherDb *db)
{
	BackgroundWorker worker;
	ReaperWorkerArgs args;
	MemoryContext old;
	bool		registered;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION | PROTEA_BGWORKER_INTERRUPTIBLE;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, REAPER_NAME, BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "protea_reaper_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "protea_reaper %s", db->name);
	strlcpy(worker.bgw_type, REAPER_NAME, BGW_MAXLEN);
	worker.bgw_main_arg = Int32GetDatum(db->slot);
	worker.bgw_notify_pid = MyProcPid;
	args.dboid = db->dboid;
	args.roleid = reaper_roleid;
	memcpy(worker.bgw_extra, &args, sizeof(args));

	/* said before the reaper can report, so that its reports come after */
	reaper_status_slot_launched(db->slot, db->name);
	old = MemoryContextSwitchTo(TopMemoryContext);
	registered = RegisterDynamicBackgroundWorker(&worker, &db->handle);
	MemoryContextSwitchTo(old);
	if (!registered)
	{
		db->handle = NULL;
		reaper_status_slot_not_launched(db->slot);
		return false;
	}
	db->roleid = reaper_roleid;
	return true;
}

/*
 * no_worker_slot
 *		The server's background worker slots are all taken: said once (until
 *		a start succeeds again), with what is needed; retried every interval.
 */
static void
no_worker_slot(LauncherDb *db, TimestampTz now)
{
	long		wanted = 0;
	HASH_SEQ_STATUS seq;
	LauncherDb *other;
	char	   *why;

	hash_seq_init(&seq, databases);
	while ((other = hash_seq_search(&seq)) != NULL)
		if (other->wanted && other->confirmed)
			wanted++;
	why = psprintf("no background worker slot is free: max_worker_processes = %d, and protea_reaper needs %ld (one per database it reaps, one to look at the others, plus its launcher) besides what other workers use",
				   max_worker_processes, wanted + 2);
	reaper_status_launcher_state(REAPER_RUNNING, why);
	if (!no_slot_reported)
		ereport(WARNING,
				(errmsg("protea_reaper cannot start the reaper of database \"%s\": %s",
						db->name, why),
				 errhint("Raise max_worker_processes (a restart); the launcher tries again every interval_seconds.")));
	no_slot_reported = true;
	db->next_start = TimestampTzPlusMilliseconds(now, reaper_interval_seconds * 1000L);
	if (db->slot >= 0)
		reaper_status_slot_planned(db->slot, REAPER_NO_SLOT, db->next_start, why);
}

/*
 * start_one
 *		Start the reaper of one database if it is due; the time it is due
 *		otherwise, DT_NOEND if never.
 */
static TimestampTz
start_one(LauncherDb *db, TimestampTz now)
{
	if (db->no_extension &&
		TimestampDifferenceExceeds(db->probed_at, now, REAPER_REPROBE_MS))
		db->no_extension = false;
	if (db->no_extension)
		return TimestampTzPlusMilliseconds(db->probed_at, REAPER_REPROBE_MS);
	if (db->next_start > now)
		return db->next_start;
	if (db->slot < 0)
		db->slot = reaper_status_claim_slot(db->dboid, db->name);
	if (db->slot >= 0 && reaper_status_slot_held(db->slot))
	{
		/* a DBA command has the database; letting go wakes us */
		reaper_status_slot_planned(db->slot, REAPER_PAUSED, 0, NULL);
		return DT_NOEND;
	}
	if (db->slot < 0 || !start_reaper(db))
	{
		no_worker_slot(db, now);
		if (!db->confirmed)
			release(db);
		return db->next_start;
	}
	if (no_slot_reported)
		reaper_status_launcher_state(REAPER_RUNNING, "");
	no_slot_reported = false;
	return DT_NOEND;
}

/*
 * start_due
 *		Start the reapers that are due: first those of the databases known to
 *		have the extension, then at most REAPER_MAX_PROBES at a time of the
 *		others.  Returns when the next one is due.
 */
static TimestampTz
start_due(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	LauncherDb *db;
	TimestampTz next = DT_NOEND;
	int			probing = 0;

	if (role_missing)
		return next;
	hash_seq_init(&seq, databases);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		if (db->handle != NULL && !db->confirmed)
			probing++;
		if (db->handle == NULL && db->wanted && db->confirmed)
		{
			/* Min() evaluates its arguments twice: start once */
			TimestampTz due = start_one(db, now);

			next = Min(next, due);
		}
	}
	hash_seq_init(&seq, databases);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		TimestampTz due;

		if (db->handle != NULL || !db->wanted || db->confirmed)
			continue;
		if (probing >= REAPER_MAX_PROBES && !db->no_extension && db->next_start <= now)
		{
			/* an exiting probe wakes us */
			continue;
		}
		due = start_one(db, now);
		next = Min(next, due);
		if (db->handle != NULL)
			probing++;
	}
	return next;
}

/*
 * stop_orphans
 *		Reapers a previous launcher started (it crashed or was killed) have
 *		no handle here: stop them, so that each database has one reaper.
 */
static void
stop_orphans(void)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   REAPER_ORPHAN_WAIT_MS);

	for (int i = 0; i < reaper_status_slots(); i++)
	{
		pid_t		pid = reaper_status_slot_pid(i);

		if (pid == 0)
			continue;
		ereport(LOG,
				(errmsg("protea_reaper launcher stops the reaper with pid %d, which a previous launcher started",
						(int) pid)));
		kill(pid, SIGTERM);
		while (reaper_status_slot_pid(i) == pid && kill(pid, 0) == 0 &&
			   GetCurrentTimestamp() < deadline)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 10L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		/* still there after the wait: its slot stays its own */
		if (reaper_status_slot_pid(i) != pid || kill(pid, 0) != 0)
			reaper_status_release_slot(i);
	}
	/* rows of databases the previous launcher looked after start afresh */
	for (int i = 0; i < reaper_status_slots(); i++)
		if (reaper_status_slot_pid(i) == 0)
			reaper_status_release_slot(i);
}

/*
 * launcher_pass
 *		One pass of the launcher: a reload, a scan of pg_database when asked
 *		or due, the reapers that exited, those to start.  Returns when the
 *		next pass is due.
 */
static TimestampTz
launcher_pass(void)
{
	TimestampTz now;
	HASH_SEQ_STATUS seq;
	LauncherDb *db;
	bool		rescan;
	TimestampTz due;

	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		next_scan = 0;
	}
	take_pokes(&rescan);
	now = GetCurrentTimestamp();
	if (rescan || now >= next_scan)
	{
		scan_databases();
		stop_unwanted();
		next_scan = TimestampTzPlusMilliseconds(now, role_missing ?
												backoff_ms(role_failures) :
												reaper_interval_seconds * 1000L);
		reaper_status_launcher_scanned(now, next_scan);
	}

	hash_seq_init(&seq, databases);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		pid_t		pid;

		if (db->handle == NULL)
			continue;
		if (GetBackgroundWorkerPid(db->handle, &pid) == BGWH_STOPPED)
			collect_exit(db, now);
		else if (!db->confirmed && reaper_status_slot_ran(db->slot))
			db->confirmed = true;	/* it found the extension: no probe */
	}
	stop_unwanted();
	due = start_due(now);
	return Min(due, next_scan);
}

/*
 * protea_reaper_launcher_main
 *		Entry point of the launcher: read pg_database when asked or every
 *		interval, collect the reapers that exited, start those that are due,
 *		sleep until the next of these.
 */
void
protea_reaper_launcher_main(Datum main_arg)
{
	HASHCTL		ctl;
	MemoryContext loop_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* no database: only the shared catalogs, so no DBA command waits on us */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	SetConfigOption("application_name", "protea_reaper launcher", PGC_USERSET, PGC_S_OVERRIDE);
	reaper_status_launcher_started();
	stop_orphans();

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(LauncherDb);
	databases = hash_create("protea_reaper databases", 64, &ctl,
							HASH_ELEM | HASH_BLOBS);
	loop_context = AllocSetContextCreate(TopMemoryContext,
										 "protea_reaper launcher loop",
										 ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			(errmsg("protea_reaper launcher started"),
			 errdetail("It reaps %s, as %s%s%s, every %d s.",
					   reaper_database[0] ? psprintf("the databases in protea_reaper.database (%s) that have the extension", reaper_database) :
					   "every database where the extension is installed",
					   reaper_role[0] ? "role \"" : "the bootstrap superuser",
					   reaper_role, reaper_role[0] ? "\"" : "",
					   reaper_interval_seconds)));

	for (;;)
	{
		TimestampTz wake;
		long		delay_ms;

		MemoryContextReset(loop_context);
		MemoryContextSwitchTo(loop_context);
		CHECK_FOR_INTERRUPTS();
		PG_TRY();
		{
			wake = launcher_pass();
		}
		PG_CATCH();
		{
			/* the autovacuum launcher's way: report, clean up, go on */
			HOLD_INTERRUPTS();
			MemoryContextSwitchTo(loop_context);
			EmitErrorReport();
			AbortOutOfAnyTransaction();
			FlushErrorState();
			RESUME_INTERRUPTS();
			wake = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), REAPER_RESTART_MS);
		}
		PG_END_TRY();

		delay_ms = (long) ((wake - GetCurrentTimestamp() + 999) / 1000);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(Min(delay_ms, reaper_interval_seconds * 1000L), 1),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
