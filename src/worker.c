/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  A reaper: the background worker of one database, started by the
 *	  launcher.  It sleeps on its latch, wakes every
 *	  protea_reaper.interval_seconds and runs one sweep.
 *
 * The reaper must be impossible to lose.  An ERROR inside a cycle (a table
 * dropped, a permission revoked, a lock or statement timeout) is caught,
 * logged as "Reaper cycle failed: ...", rolled back, and the next cycle
 * runs on schedule; only FATAL (SIGTERM, shutdown) or a crash ends the
 * process, and the launcher then starts it again.
 *
 * It acts only where it may: while protea_reaper.enabled is on, and never
 * while a subscription replicates PROTEA's tables into its database.  Where
 * the extension is not installed (or no longer is) it exits, and the
 * launcher looks there again when CREATE EXTENSION runs.  A backlog stays
 * stoppable: between two batches a reload, enabled = off, DROP EXTENSION
 * and SIGTERM take effect.  Settings given with ALTER DATABASE or ALTER
 * ROLE ... SET are read at connection only, so when a reload finds them
 * changed the reaper exits and the launcher starts it again at once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

/* These are always necessary for a bgworker */
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"

/* these headers are used by this particular worker's code */
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_db_role_setting.h"
#include "common/hashfn.h"
#include "utils/fmgroids.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "launcher.h"
#include "notify.h"
#include "plans.h"
#include "protea_reaper.h"
#include "settings.h"
#include "status.h"
#include "sweep.h"
#include "tables.h"
#include "worker.h"

/* An identical failure is logged again at LOG only after this long */
#define REAPER_REPEAT_ERROR_MS (10 * 60 * 1000)

/* The last failure logged at LOG, to keep a failing cycle from flooding */
static char *last_error_logged = NULL;
static TimestampTz last_error_logged_at = 0;
static int64 failures_in_a_row = 0;

/* Reset at each cycle; holds what a cycle (or its error) allocates */
static MemoryContext cycle_context = NULL;

/*
 * What the current cycle did, committed batches only.  Static, so that it
 * survives the longjmp of a cycle that fails after some batches committed.
 */
static ReaperSweepResult cycle_result;
static bool cycle_running = false;

/*
 * Why the worker idles (disabled, in recovery, no extension), so that each
 * reason is logged once, when it starts; REAPER_IDLE when it does not.
 */
static ReaperWorkerState idle_reason = REAPER_STARTING;

/* The subscription that keeps the worker idle (REAPER_SUBSCRIBED) */
static char subscribed_by[NAMEDATALEN];

/* The database this reaper reaps, by the name it had at connection */
static char my_database[NAMEDATALEN];

/*
 * The settings ALTER DATABASE / ALTER ROLE ... SET give this reaper, as
 * read at connection; a reload that finds them changed ends the reaper
 */
static uint64 db_settings = 0;
static bool db_settings_changed = false;

/* When the last cycle started, and when the next one is due */
static TimestampTz last_start = 0;
static TimestampTz next_cycle = 0;

/*
 * The doctor's false alarms are counted again for the metrics after a
 * cycle at most this often (they read every job failed in the doctor's
 * window), and after a cycle protea_reaper_wake() asked for
 */
#define REAPER_FALSE_ALARMS_MS (5 * 60 * 1000)
static TimestampTz false_alarms_due = 0;
static bool woken = false;
static bool false_alarms_failed = false;

/*
 * apply_session_settings
 *		Settings the worker's own session runs with.  search_path is empty so
 *		that nothing a user creates can be resolved in place of pg_catalog;
 *		READ COMMITTED lets FOR UPDATE re-check a row that changed since the
 *		snapshot instead of failing the batch with a serialization error,
 *		whatever default_transaction_isolation says; the timeouts bound how
 *		long a cycle can wait behind other sessions.
 */
static void
apply_session_settings(void)
{
	char		buf[32];

	SetConfigOption("search_path", "", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	snprintf(buf, sizeof(buf), "%d", reaper_lock_timeout_ms);
	SetConfigOption("lock_timeout", buf, PGC_SUSET, PGC_S_OVERRIDE);
	snprintf(buf, sizeof(buf), "%d", reaper_statement_timeout_ms);
	SetConfigOption("statement_timeout", buf, PGC_SUSET, PGC_S_OVERRIDE);
	reaper_status_settings_in_force();
	reaper_check_thresholds();
}

/*
 * go_idle
 *		Show why the worker is idle; log the reason once, when it starts.
 */
static void
go_idle(ReaperWorkerState state)
{
	reaper_status_set_state(state);
	if (idle_reason == state)
		return;
	idle_reason = state;
	if (state == REAPER_DISABLED)
		ereport(LOG,
				(errmsg("protea_reaper is idle: protea_reaper.enabled is off")));
	else if (state == REAPER_SUBSCRIBED)
		ereport(LOG,
				(errmsg("protea_reaper is idle: subscription \"%s\" replicates PROTEA's tables into database \"%s\"",
						subscribed_by, my_database),
				 errdetail("Their jobs belong to the publisher, whose reaper judges them."),
				 errhint("It starts reaping here once the subscription is disabled or dropped (cutover).")));
}

/*
 * exit_no_extension
 *		The extension is not installed here: the reaper exits, and the
 *		launcher looks again when CREATE EXTENSION runs.  Said at LOG only
 *		when it was dropped under a reaper that had been reaping.
 */
static void
exit_no_extension(void)
{
	ereport(idle_reason == REAPER_STARTING ? DEBUG1 : LOG,
			(errmsg("protea_reaper exits: extension \"%s\" is not installed in database \"%s\"",
					REAPER_NAME, my_database),
			 errdetail("The launcher starts a reaper here again when CREATE EXTENSION %s runs in it.",
					   REAPER_NAME)));
	reaper_status_worker_exiting(REAPER_EXIT_NO_EXTENSION);
	proc_exit(0);
}

/*
 * read_db_settings
 *		A fingerprint of the pg_db_role_setting rows that apply to this
 *		reaper (ALTER DATABASE / ALTER ROLE ... SET), in a transaction of its
 *		own (none may be open).  Read from the catalog, not with SQL: the
 *		database's owner chose its search_path, and a reaper resolves no name
 *		there.  The order of the rows does not matter.
 */
static uint64
read_db_settings(void)
{
	uint64		fingerprint = 0;
	Oid			roleid = GetSessionUserId();
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;

	StartTransactionCommand();
	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_db_role_setting form = (Form_pg_db_role_setting) GETSTRUCT(tup);
		bool		isnull;
		Datum		config;
		char	   *text;

		if ((OidIsValid(form->setdatabase) && form->setdatabase != MyDatabaseId) ||
			(OidIsValid(form->setrole) && form->setrole != roleid))
			continue;
		config = heap_getattr(tup, Anum_pg_db_role_setting_setconfig,
							  RelationGetDescr(rel), &isnull);
		text = psprintf("%u/%u=%s", form->setdatabase, form->setrole,
						isnull ? "" : OidOutputFunctionCall(F_ARRAY_OUT, config));
		fingerprint += DatumGetUInt64(hash_any_extended((unsigned char *) text,
														strlen(text), 0));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return fingerprint;
}

/*
 * The transaction bracket of one batch, the way worker_spi opens and closes
 * it: a statement start time (now()), a snapshot for SPI, and what
 * pg_stat_activity shows.
 */
static void
begin_batch_transaction(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "protea_reaper: sweep");
}

static void
end_batch_transaction(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Whether the extension is installed in this database (in a transaction) */
static bool
extension_exists(void)
{
	return OidIsValid(get_extension_oid(REAPER_NAME, true));
}

/* A reload asked for by SIGHUP: the new settings apply from now on */
static void
reload_if_pending(void)
{
	if (!ConfigReloadPending)
		return;
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	/* the session's own settings first: nothing below resolves a name */
	apply_session_settings();
	if (!db_settings_changed)
		db_settings_changed = read_db_settings() != db_settings;
	/* a new interval counts from the last sweep, not from the old sleep */
	next_cycle = TimestampTzPlusMilliseconds(last_start,
											 reaper_interval_seconds * 1000L);
	reaper_status_next_cycle(next_cycle);
}

/*
 * next_batch
 *		Before the next batch of a backlog, what an operator did meanwhile
 *		applies: SIGTERM ends the worker, a reload takes effect (a batch
 *		never runs under thresholds no longer in force), and enabled = off
 *		or DROP EXTENSION stops the sweep.  Returns with a transaction open.
 */
static bool
next_batch(void)
{
	CHECK_FOR_INTERRUPTS();
	reload_if_pending();
	begin_batch_transaction();
	if (!reaper_enabled)
	{
		ereport(LOG,
				(errmsg("protea_reaper stopped a backlog: protea_reaper.enabled is off")));
		return false;
	}
	if (db_settings_changed)
	{
		ereport(LOG,
				(errmsg("protea_reaper stopped a backlog: the settings of database \"%s\" changed",
						my_database)));
		return false;
	}
	if (!extension_exists())
	{
		ereport(LOG,
				(errmsg("protea_reaper stopped a backlog: extension \"%s\" is no longer installed in database \"%s\"",
						REAPER_NAME, my_database)));
		return false;
	}
	return true;
}

/*
 * sweep_cycle
 *		One sweep.  The first transaction checks that the extension is
 *		installed and runs the first batch, which also counts the live jobs:
 *		that is all an idle cycle needs; further batches, when there is a
 *		backlog, get a transaction each (end_batch_transaction, next_batch),
 *		so that a large backlog never holds one huge transaction and its row
 *		locks.  What committed is in cycle_result, even if a later batch
 *		fails.  Returns REAPER_SWEEPING when it swept, or why it could not:
 *		the extension is missing, or a subscription replicates the tables
 *		here (their publisher's reaper judges them).
 */
static ReaperWorkerState
sweep_cycle(void)
{
	ReaperSweepHooks hooks = {end_batch_transaction, next_batch, 0};
	ReaperTables tables;
	char	   *subscription;

	hooks.max_jobs = (uint64) reaper_max_jobs_per_cycle;
	begin_batch_transaction();
	if (!extension_exists())
	{
		end_batch_transaction();
		return REAPER_NO_EXTENSION;
	}
	reaper_resolve_tables(&tables);
	if ((subscription = reaper_subscription(&tables)) != NULL)
	{
		strlcpy(subscribed_by, subscription, NAMEDATALEN);
		end_batch_transaction();
		return REAPER_SUBSCRIBED;
	}
	reaper_sweep(&cycle_result, &hooks);
	end_batch_transaction();
	reaper_sweep_ended_batch(&cycle_result);
	return REAPER_SWEEPING;
}

/*
 * report_cycle_failure
 *		Log a caught ERROR as "Reaper cycle failed", unless the very same
 *		failure was logged recently: a dropped table must not fill the log
 *		once per interval.  The repeat still goes to DEBUG1 and the status.
 */
static void
report_cycle_failure(ErrorData *edata, TimestampTz now)
{
	bool		repeat;

	repeat = last_error_logged != NULL &&
		strcmp(last_error_logged, edata->message) == 0 &&
		!TimestampDifferenceExceeds(last_error_logged_at, now,
									REAPER_REPEAT_ERROR_MS);

	ereport(repeat ? DEBUG1 : LOG,
			(errcode(edata->sqlerrcode),
			 errmsg("Reaper cycle failed: %s", edata->message),
			 edata->detail ? errdetail("%s", edata->detail) : 0,
			 edata->hint ? errhint("%s", edata->hint) : 0,
			 errcontext("the next cycle runs in %d s; identical failures are logged again after %d min",
						reaper_interval_seconds, REAPER_REPEAT_ERROR_MS / 60000)));

	if (!repeat)
	{
		if (last_error_logged != NULL)
			pfree(last_error_logged);
		last_error_logged = MemoryContextStrdup(TopMemoryContext, edata->message);
		last_error_logged_at = now;
	}
	failures_in_a_row++;
	reaper_status_cycle_failed(now, edata->message, &cycle_result);
}

/* A cycle that did its work: say so after failures or idleness */
static void
cycle_succeeded(void)
{
	if (idle_reason != REAPER_IDLE)
		ereport(LOG,
				(errmsg("protea_reaper is reaping in database \"%s\"", my_database),
				 idle_reason == REAPER_STARTING ?
				 errdetail("interval_seconds=%d, timeout_seconds=%d, stall_seconds=%d",
						   reaper_interval_seconds, reaper_timeout_seconds,
						   reaper_stall_seconds) : 0));
	idle_reason = REAPER_IDLE;
	if (failures_in_a_row > 0)
		ereport(LOG,
				(errmsg("Reaper cycle succeeded after " INT64_FORMAT " failed cycle(s).",
						failures_in_a_row)));
	failures_in_a_row = 0;
	if (last_error_logged != NULL)
	{
		pfree(last_error_logged);
		last_error_logged = NULL;
	}
	reaper_sweep_report(&cycle_result);
	reaper_status_cycle_done(GetCurrentTimestamp(), &cycle_result);
	reaper_status_set_state(REAPER_IDLE);
}

/*
 * take_error
 *		In a PG_CATCH of the worker, with interrupts held: the error, copied
 *		into the cycle's memory, and its transaction aborted.
 */
static ErrorData *
take_error(void)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cycle_context);
	edata = CopyErrorData();
	FlushErrorState();
	AbortOutOfAnyTransaction();
	reaper_notify_batch_aborted();

	/* a statement timer armed by the statement must not fire while we sleep */
	reaper_disarm_timers();
	QueryCancelPending = false;
	return edata;
}

/*
 * cycle_failed
 *		The autovacuum pattern: report, abort, clean up, carry on.  The
 *		batches that committed before the error count, and are told.
 */
static void
cycle_failed(void)
{
	ErrorData  *edata;

	HOLD_INTERRUPTS();
	edata = take_error();
	reaper_sweep_report(&cycle_result);
	report_cycle_failure(edata, GetCurrentTimestamp());
	reaper_status_set_state(REAPER_IDLE_AFTER_ERROR);
	RESUME_INTERRUPTS();
}

/*
 * notify_committed
 *		One notification of the jobs the cycle's committed batches failed,
 *		whether the cycle ended well or not, in a transaction of its own: a
 *		notification that cannot be sent is only logged, and the failures
 *		stand.
 */
static void
notify_committed(void)
{
	MemoryContextSwitchTo(cycle_context);
	PG_TRY();
	{
		begin_batch_transaction();
		reaper_notify_send("worker", NULL);
		end_batch_transaction();
		MemoryContextSwitchTo(cycle_context);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		edata = take_error();
		ereport(LOG,
				(errmsg("protea_reaper could not notify of " UINT64_FORMAT " failed job(s): %s",
						cycle_result.reaped, edata->message)));
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
}

/*
 * report_at_exit
 *		SIGTERM (or any FATAL) in the middle of a cycle: the batches that
 *		committed before it still count, and are told.
 */
static void
report_at_exit(int code, Datum arg)
{
	const char *why = "the worker exited during the cycle";

	if (reaper_hard_deadline_hit)
	{
		why = "a statement ran past twice protea_reaper.statement_timeout: code on PROTEA's tables kept it running after the cancel";
		ereport(LOG,
				(errmsg("Reaper cycle failed: %s", why),
				 errdetail("The reaper exits; the launcher starts it again.")));
	}
	if (!cycle_running || (cycle_result.reaped == 0 && !reaper_hard_deadline_hit))
		return;
	reaper_sweep_report(&cycle_result);
	reaper_status_cycle_failed(GetCurrentTimestamp(), why, &cycle_result);
}

/*
 * count_false_alarms
 *		Count the doctor's false alarms for the metrics, in a read-only
 *		transaction of its own after the cycle, in the cycle's memory: a
 *		failure is logged (once until a count succeeds again) and leaves
 *		the cycle's work alone.
 */
static void
count_false_alarms(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!woken && now < false_alarms_due)
		return;
	false_alarms_due = TimestampTzPlusMilliseconds(now, REAPER_FALSE_ALARMS_MS);
	MemoryContextSwitchTo(cycle_context);
	PG_TRY();
	{
		int64		jobs;

		begin_batch_transaction();
		pgstat_report_activity(STATE_RUNNING, "protea_reaper: counting false alarms");
		jobs = reaper_count_false_alarms();
		end_batch_transaction();
		MemoryContextSwitchTo(cycle_context);
		reaper_status_false_alarms(jobs, now);
		false_alarms_failed = false;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		edata = take_error();
		ereport(false_alarms_failed ? DEBUG1 : LOG,
				(errmsg("protea_reaper could not count false alarms in database \"%s\": %s",
						my_database, edata->message),
				 errdetail("The metric protea_reaper_metrics.false_alarms keeps its last count; SELECT * FROM protea_reaper_check() shows the error.")));
		false_alarms_failed = true;
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
}

/*
 * run_cycle
 *		Run one sweep if the worker may act, surviving any ERROR in it.
 */
static void
run_cycle(void)
{
	volatile bool swept;

	if (!reaper_enabled)
	{
		go_idle(REAPER_DISABLED);
		return;
	}

	MemoryContextReset(cycle_context);
	MemoryContextSwitchTo(cycle_context);
	swept = false;
	memset(&cycle_result, 0, sizeof(cycle_result));
	cycle_running = true;
	reaper_status_cycle_started(GetCurrentTimestamp());

	PG_TRY();
	{
		ReaperWorkerState state = sweep_cycle();

		/* a commit leaves TopMemoryContext current: the rest is the cycle's */
		MemoryContextSwitchTo(cycle_context);
		if (state == REAPER_SWEEPING)
		{
			cycle_succeeded();
			swept = true;
		}
		else if (state == REAPER_NO_EXTENSION)
			exit_no_extension();
		else
			go_idle(state);
	}
	PG_CATCH();
	{
		cycle_failed();
	}
	PG_END_TRY();
	cycle_running = false;
	if (cycle_result.reaped > 0)
		notify_committed();
	if (swept)
		count_false_alarms();
	woken = false;

	MemoryContextSwitchTo(TopMemoryContext);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Whether a cycle is due now: its time has come, or a wake was asked for */
static bool
cycle_is_due(TimestampTz now)
{
	if (reaper_status_take_wake())
	{
		next_cycle = now;
		woken = true;
	}
	return now >= next_cycle;
}

/*
 * schedule_next
 *		The next cycle, an interval after the last one started; after a sweep
 *		longer than the interval, a full interval after it ended.
 */
static void
schedule_next(void)
{
	TimestampTz now = GetCurrentTimestamp();

	next_cycle = TimestampTzPlusMilliseconds(last_start,
											 reaper_interval_seconds * 1000L);
	if (next_cycle <= now)
		next_cycle = TimestampTzPlusMilliseconds(now, reaper_interval_seconds * 1000L);
	reaper_status_next_cycle(next_cycle);
}

/* Sleep on the latch until the next cycle, a signal or a wake */
static void
sleep_until_next(void)
{
	long		delay_ms = (long) ((next_cycle - GetCurrentTimestamp() + 999) / 1000);

	(void) WaitLatch(MyLatch,
					 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 Max(delay_ms, 1),
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

/*
 * connect_worker
 *		Signals, the connection to the database the launcher chose, by OID,
 *		as the role it looked up (a failure is a FATAL the status explains),
 *		and the session's settings.  A DBA command that holds the database
 *		meanwhile sends the reaper away at once.
 */
static void
connect_worker(Datum main_arg)
{
	ReaperWorkerArgs args;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));

	/* SIGTERM must end us even inside a commit, hence die() */
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (!reaper_status_worker_connecting(DatumGetInt32(main_arg), args.dboid))
		proc_exit(0);
	BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleid, 0);
	reaper_status_worker_started();
	if (reaper_status_worker_held())
		proc_exit(0);
	before_shmem_exit(report_at_exit, (Datum) 0);

	SetConfigOption("application_name", REAPER_NAME, PGC_USERSET, PGC_S_OVERRIDE);
	/* before anything runs: the database's search_path is its owner's */
	apply_session_settings();
	db_settings = read_db_settings();
	StartTransactionCommand();
	strlcpy(my_database, get_database_name(MyDatabaseId), NAMEDATALEN);
	CommitTransactionCommand();
	cycle_context = AllocSetContextCreate(TopMemoryContext,
										  "protea_reaper cycle",
										  ALLOCSET_DEFAULT_SIZES);
}

/*
 * protea_reaper_worker_main
 *		Entry point of the background worker: reload if pending, run a
 *		cycle if it is due, schedule the next, sleep.
 */
void
protea_reaper_worker_main(Datum main_arg)
{
	connect_worker(main_arg);

	/* The first sweep runs at once: stuck jobs may have waited for us */
	next_cycle = GetCurrentTimestamp();

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		reload_if_pending();
		if (cycle_is_due(GetCurrentTimestamp()))
		{
			last_start = GetCurrentTimestamp();
			run_cycle();
			schedule_next();
		}
		if (db_settings_changed)
		{
			ereport(LOG,
					(errmsg("protea_reaper restarts in database \"%s\" to apply its new ALTER DATABASE / ALTER ROLE settings",
							my_database)));
			reaper_status_worker_exiting(REAPER_EXIT_RESTART_NOW);
			proc_exit(0);
		}
		sleep_until_next();
	}
}
