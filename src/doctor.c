/*-------------------------------------------------------------------------
 *
 * doctor.c
 *	  protea_reaper_check(): is the reaper set up, alive, and right?
 *
 * One row per check, (check, ok, detail, hint), each hint the exact fix.
 * ok is NULL when a check could not run (the tables did not resolve).  The
 * checks only read: the worker's shared state, the catalog, and PROTEA's
 * tables as their owner (plans.c), each in a subtransaction so that a
 * broken setup is reported rather than raised.
 *
 * Besides the setup, it looks at what the reaper did: running jobs older
 * than twice their timeout, events stamped ahead of the database's clock,
 * and false alarms, jobs failed as stalled whose workers wrote events
 * after their job.timeout event: the evidence that an operation's
 * stall_seconds is too short.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "commands/dbcommands.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "plans.h"
#include "policy.h"
#include "protea_reaper.h"
#include "settings.h"
#include "status.h"

PG_FUNCTION_INFO_V1(protea_reaper_check);

/* The hint of every check that needs the library preloaded */
#define PRELOAD_HINT \
	"Add protea_reaper to shared_preload_libraries in postgresql.conf and restart the server."

/* A worker whose last cycle started longer ago than this is stuck */
#define CYCLE_LATE_MS(interval_seconds) \
	(2 * (int64) (interval_seconds) * 1000 + 60 * 1000)

/* Where the rows go */
typedef struct Doctor
{
	ReturnSetInfo *rsinfo;
	ReaperPolicy policy;
	bool		policy_ok;
	ReaperTables tables;
	bool		tables_ok;
} Doctor;

/* One row; ok: 1, 0, or -1 for NULL (not checked) */
static void
add_row(Doctor *doctor, const char *check, int ok, const char *detail,
		const char *hint)
{
	Datum		values[4];
	bool		nulls[4] = {false, ok < 0, detail == NULL, hint == NULL};

	values[0] = CStringGetTextDatum(check);
	values[1] = BoolGetDatum(ok > 0);
	values[2] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
	values[3] = hint ? CStringGetTextDatum(hint) : (Datum) 0;
	tuplestore_putvalues(doctor->rsinfo->setResult, doctor->rsinfo->setDesc,
						 values, nulls);
}

/*
 * guarded
 *		Run check in a subtransaction: its ERROR comes back as *edata, and
 *		everything it did (SPI, acting as the owner, settings) is undone.
 */
static bool
guarded(void (*check) (Doctor *), Doctor *doctor, ErrorData **edata)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		check(doctor);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		*edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		return false;
	}
	PG_END_TRY();
	return true;
}

/*
 * An ERROR as a row: its message and detail, and its hint.  ok: 0 when the
 * ERROR is what the check found (the tables do not resolve), -1 when it
 * kept the check from running.
 */
static void
error_row(Doctor *doctor, const char *check, int ok, ErrorData *edata)
{
	add_row(doctor, check, ok,
			edata->detail ? psprintf("%s. %s", edata->message, edata->detail) :
			edata->message,
			edata->hint);
}

/* The library is preloaded, so that there is a worker */
static void
check_preloaded(Doctor *doctor, bool preloaded)
{
	if (preloaded)
		add_row(doctor, "preloaded", 1,
				"protea_reaper is in shared_preload_libraries.", NULL);
	else
		add_row(doctor, "preloaded", 0,
				"protea_reaper is not in shared_preload_libraries: there is no background worker, only manual sweeps.",
				PRELOAD_HINT);
}

/* The fix when protea_reaper.database leaves this database out: add it */
static char *
list_hint(void)
{
	return psprintf("ALTER SYSTEM SET protea_reaper.database = %s; SELECT pg_reload_conf();",
					quote_literal_cstr(psprintf("%s, %s", reaper_database,
												quote_identifier(get_database_name(MyDatabaseId)))));
}

/* The worker runs, and its last cycle is recent */
static void
check_worker(Doctor *doctor, const ReaperStatus *s, bool preloaded)
{
	TimestampTz now = GetCurrentTimestamp();
	const char *state = reaper_state_name(s->state);

	if (!preloaded)
		add_row(doctor, "worker", 0, "There is no background worker.", PRELOAD_HINT);
	else if (s->state == REAPER_DISABLED)
		add_row(doctor, "worker", 0,
				psprintf("The worker (pid %d) idles: protea_reaper.enabled is off.", (int) s->pid),
				"ALTER SYSTEM SET protea_reaper.enabled = on; SELECT pg_reload_conf();");
	else if (s->state == REAPER_IN_RECOVERY)
		add_row(doctor, "worker", 1,
				"The server is a standby: the worker idles, and sweeps once it is promoted.", NULL);
	else if (s->state == REAPER_SUBSCRIBED)
		add_row(doctor, "worker", 1,
				psprintf("The worker (pid %d) idles while a subscription replicates PROTEA's tables into its database: their jobs belong to the publisher, whose reaper judges them. It sweeps once the subscription is disabled or dropped.",
						 (int) s->pid),
				NULL);
	else if (!reaper_database_listed(reaper_database_list(),
									 get_database_name(MyDatabaseId), NULL))
		add_row(doctor, "worker", 0,
				psprintf("No reaper runs in this database: protea_reaper.database (%s) does not name it.",
						 reaper_database),
				list_hint());
	else if (s->pid == 0 || s->state == REAPER_NOT_STARTED ||
			 s->state == REAPER_STARTING || s->state == REAPER_RESTARTING)
		add_row(doctor, "worker", 0,
				psprintf("The reaper of this database is not running (%s)%s%s%s",
						 state, s->last_error[0] ? ": " : "", s->last_error,
						 s->next_start_at ? psprintf("; the launcher starts it again at %s.",
													 timestamptz_to_str(s->next_start_at)) : "."),
				"The launcher starts it again by itself, waiting longer after each failure; if it stays down, protea_reaper_status() and the server log (lines starting with protea_reaper) say why.");
	else if (s->state == REAPER_IDLE_AFTER_ERROR)
		add_row(doctor, "worker", 0,
				psprintf("The worker's last cycle failed: %s", s->last_error),
				"Fix what the error says (the server log's \"Reaper cycle failed\" line has its detail and hint); the next cycle runs on schedule.");
	else if (s->state != REAPER_SWEEPING &&
			 (s->last_cycle_start == 0 ||
			  TimestampDifferenceExceeds(s->last_cycle_start, now,
										 CYCLE_LATE_MS(s->interval_seconds))))
		add_row(doctor, "worker", 0,
				s->last_cycle_start == 0 ?
				psprintf("The worker (pid %d, %s) has not run a cycle yet.", (int) s->pid, state) :
				psprintf("The worker's (pid %d, %s) last cycle started at %s, more than twice interval_seconds = %d ago.",
						 (int) s->pid, state, timestamptz_to_str(s->last_cycle_start),
						 s->interval_seconds),
				"SELECT protea_reaper_wake(); if no cycle follows, look for the worker in pg_stat_activity (backend_type protea_reaper) and in the server log.");
	else
		add_row(doctor, "worker", 1,
				psprintf("The worker (pid %d) is %s; its last cycle started at %s and failed " INT64_FORMAT " job(s).",
						 (int) s->pid, state, timestamptz_to_str(s->last_cycle_start),
						 s->last_reaped),
				NULL);
}

/* protea_reaper.database lets this database be reaped */
static void
check_database(Doctor *doctor, bool preloaded)
{
	const char *here = get_database_name(MyDatabaseId);

	if (!preloaded)
		add_row(doctor, "database", -1, "Not checked: there is no background worker.", PRELOAD_HINT);
	else if (!reaper_database_listed(reaper_database_list(), here, NULL))
		add_row(doctor, "database", 0,
				psprintf("protea_reaper.database = %s does not name this database, \"%s\": jobs here are not reaped.",
						 quote_literal_cstr(reaper_database), here),
				list_hint());
	else
		add_row(doctor, "database", 1,
				psprintf("This database, \"%s\", has a reaper of its own%s.", here,
						 reaper_database[0] ? " (protea_reaper.database names it)" : ""),
				NULL);
}

static void
resolve(Doctor *doctor)
{
	reaper_resolve_tables(&doctor->tables);
}

static void
event_index(Doctor *doctor)
{
	reaper_check_event_index(&doctor->tables);
}

/* The tables, columns, types and the owner's rights; then the event index */
static void
check_tables(Doctor *doctor)
{
	ErrorData  *edata;

	doctor->tables_ok = guarded(resolve, doctor, &edata);
	if (!doctor->tables_ok)
	{
		error_row(doctor, "tables", 0, edata);
		add_row(doctor, "event index", -1, "Not checked: the tables did not resolve.", NULL);
		return;
	}
	add_row(doctor, "tables", 1,
			psprintf("job is %s (running is '%s', failed is '%s'%s), job_event is %s.",
					 doctor->tables.job_name, doctor->tables.running_label,
					 doctor->tables.failed_label,
					 doctor->tables.has_lease ? ", leased_until keeps a job alive" : "",
					 doctor->tables.event_name),
			NULL);

	if (guarded(event_index, doctor, &edata))
		add_row(doctor, "event index", 1,
				psprintf("%s has a btree index on (job_id, ...).", doctor->tables.event_name),
				NULL);
	else
		error_row(doctor, "event index", 0, edata);
}

/* An index finds the running jobs by started_at */
static void
check_started_at_index(Doctor *doctor)
{
	char	   *index;

	if (!doctor->tables_ok)
	{
		add_row(doctor, "started_at index", -1, "Not checked: the tables did not resolve.", NULL);
		return;
	}
	index = reaper_started_at_index(&doctor->tables);
	if (index != NULL)
		add_row(doctor, "started_at index", 1,
				psprintf("Index %s finds the jobs past the timeout by started_at.", index), NULL);
	else
		add_row(doctor, "started_at index", 0,
				psprintf("No index of %s leads with started_at: each sweep reads every running job's row (PROTEA's own indexes do not serve it).",
						 doctor->tables.job_name),
				psprintf("CREATE INDEX CONCURRENTLY job_running_started_at ON %s (started_at) INCLUDE (id, operation) WHERE %s;",
						 doctor->tables.job_name,
						 psprintf("status = '%s'", doctor->tables.running_label)));
}

/*
 * Functions that triggers on the tables (or their partitions) call and that
 * resolve names with the search_path: while the reaper writes the tables it
 * is pg_catalog, pg_temp (plans.c), so an unqualified name fails the sweep.
 * C and SQL-standard bodies resolve their names beforehand.
 */
static const char triggers_sql[] =
"SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text,"
"       pg_catalog.string_agg(pg_catalog.format('%I on %s', t.tgname, t.tgrelid::pg_catalog.regclass),"
"                             ', ' ORDER BY t.tgrelid, t.tgname),"
"       pg_catalog.quote_ident(n.nspname)"
"  FROM pg_catalog.pg_trigger AS t"
"  JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid"
"  JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace"
"  JOIN pg_catalog.pg_language AS l ON l.oid = p.prolang"
" WHERE (t.tgrelid IN ($1, $2)"
"        OR t.tgrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree($1)"
"                         UNION ALL SELECT relid FROM pg_catalog.pg_partition_tree($2)))"
"   AND NOT t.tgisinternal AND l.lanname NOT IN ('c', 'internal') AND p.prosqlbody IS NULL"
"   AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) AS c(setting)"
"                    WHERE c.setting LIKE 'search\\_path=%')"
" GROUP BY p.oid, n.nspname ORDER BY 1";

/* Row-level security forced on either table: it applies to the owner */
static const char row_security_sql[] =
"SELECT c.oid::pg_catalog.regclass::pg_catalog.text, c.relforcerowsecurity,"
"       pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(c.relowner))"
"  FROM pg_catalog.pg_class AS c"
" WHERE c.oid IN ($1, $2) AND c.relrowsecurity ORDER BY c.oid";

/* What the two catalog checks found, in the caller's memory */
typedef struct CatalogFindings
{
	StringInfoData trigger_detail;
	StringInfoData trigger_hint;
	int			trigger_functions;
	StringInfoData rls_detail;
	StringInfoData rls_hint;
	bool		rls_forced;
} CatalogFindings;

static CatalogFindings catalog;

/* Run sql on the two tables' oids, as the caller (the catalog only) */
static void
catalog_query(Doctor *doctor, const char *sql)
{
	Oid			types[2] = {REGCLASSOID, REGCLASSOID};
	Datum		values[2] = {ObjectIdGetDatum(doctor->tables.job_relid),
	ObjectIdGetDatum(doctor->tables.event_relid)};

	if (SPI_execute_with_args(sql, 2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper: a catalog query of the doctor failed");
}

static void
find_in_catalog(Doctor *doctor)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "protea_reaper could not connect to SPI");
	catalog_query(doctor, triggers_sql);
	catalog.trigger_functions = (int) SPI_processed;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		char	   *function = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 1);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		appendStringInfo(&catalog.trigger_detail, "%s%s (trigger %s)", i > 0 ? "; " : "",
						 function, SPI_getvalue(tuple, SPI_tuptable->tupdesc, 2));
		appendStringInfo(&catalog.trigger_hint, "%sALTER FUNCTION %s SET search_path = %s, pg_temp;",
						 i > 0 ? " " : "", function,
						 SPI_getvalue(tuple, SPI_tuptable->tupdesc, 3));
		MemoryContextSwitchTo(old);
	}
	catalog_query(doctor, row_security_sql);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		char	   *table = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 1);
		bool		isnull;
		bool		forced = DatumGetBool(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull));
		MemoryContext old = MemoryContextSwitchTo(cxt);

		if (forced)
		{
			catalog.rls_forced = true;
			appendStringInfo(&catalog.rls_detail, "%sRow-level security is forced on %s: its policies apply to its owner, as whom the reaper reads and writes, so the jobs they hide are never reaped or listed.",
							 catalog.rls_detail.len > 0 ? " " : "", table);
			appendStringInfo(&catalog.rls_hint, "%sALTER TABLE %s NO FORCE ROW LEVEL SECURITY; or let the owner see every row: CREATE POLICY protea_reaper_sees_all ON %s TO %s USING (true) WITH CHECK (true);",
							 catalog.rls_hint.len > 0 ? " " : "", table, table,
							 SPI_getvalue(tuple, SPI_tuptable->tupdesc, 3));
		}
		else
			appendStringInfo(&catalog.rls_detail, "%sRow-level security is enabled on %s but not forced: its owner, as whom the reaper reads and writes, sees every row.",
							 catalog.rls_detail.len > 0 ? " " : "", table);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
}

/*
 * Code on the tables that depends on the search_path, and row-level
 * security that hides jobs from their owner
 */
static void
check_catalog(Doctor *doctor)
{
	ErrorData  *edata;

	if (!doctor->tables_ok)
	{
		add_row(doctor, "triggers", -1, "Not checked: the tables did not resolve.", NULL);
		add_row(doctor, "row security", -1, "Not checked: the tables did not resolve.", NULL);
		return;
	}
	memset(&catalog, 0, sizeof(catalog));
	initStringInfo(&catalog.trigger_detail);
	initStringInfo(&catalog.trigger_hint);
	initStringInfo(&catalog.rls_detail);
	initStringInfo(&catalog.rls_hint);
	if (!guarded(find_in_catalog, doctor, &edata))
	{
		edata->message = psprintf("Not checked: %s", edata->message);
		error_row(doctor, "triggers", -1, edata);
		add_row(doctor, "row security", -1, "Not checked: see triggers.", NULL);
		return;
	}

	if (catalog.trigger_functions == 0)
		add_row(doctor, "triggers", 1,
				"No trigger on PROTEA's tables calls a function that resolves names with the search_path.",
				NULL);
	else
		add_row(doctor, "triggers", 0,
				psprintf("%d trigger function(s) on PROTEA's tables resolve names with the search_path, which is pg_catalog, pg_temp while protea_reaper writes the tables: a table or function they name without its schema makes every sweep fail. %s.",
						 catalog.trigger_functions, catalog.trigger_detail.data),
				catalog.trigger_hint.data);

	if (catalog.rls_detail.len == 0)
		add_row(doctor, "row security", 1,
				"Row-level security is off on PROTEA's tables.", NULL);
	else
		add_row(doctor, "row security", catalog.rls_forced ? 0 : 1,
				catalog.rls_detail.data, catalog.rls_forced ? catalog.rls_hint.data : NULL);
}

/*
 * One operation's thresholds contradict each other: say which in detail,
 * and the statement that fixes each in hint (operation NULL: the settings)
 */
static void
threshold_problem(StringInfo detail, StringInfo hint, const char *operation,
				  int timeout, int stall, int max_runtime)
{
	const char *who = operation ? psprintf("Operation %s", quote_literal_cstr(operation)) :
		"The settings";

	if (stall >= timeout)
	{
		appendStringInfo(detail, "%s%s: stall_seconds = %d is not below timeout_seconds = %d, so a silent job fails as soon as it is %d s old.",
						 detail->len ? " " : "", who, stall, timeout, timeout);
		if (operation)
			appendStringInfo(hint, "%sUPDATE protea_reaper_policy SET stall_seconds = %d WHERE operation = %s;",
							 hint->len ? " " : "", Max(timeout / 2, 1),
							 quote_literal_cstr(operation));
		else
			appendStringInfo(hint, "%sALTER SYSTEM SET protea_reaper.stall_seconds = %d; SELECT pg_reload_conf();",
							 hint->len ? " " : "", Max(timeout / 2, 1));
	}
	if (max_runtime > 0 && max_runtime <= timeout)
	{
		int64		cap = Min((int64) timeout * 2, (int64) PG_INT32_MAX);

		appendStringInfo(detail, "%s%s: max_runtime_seconds = %d is not above timeout_seconds = %d, so its jobs are failed at %d s whatever their events.",
						 detail->len ? " " : "", who, max_runtime, timeout, max_runtime);
		if (operation)
			appendStringInfo(hint, "%sUPDATE protea_reaper_policy SET max_runtime_seconds = " INT64_FORMAT " WHERE operation = %s;",
							 hint->len ? " " : "", cap, quote_literal_cstr(operation));
		else
			appendStringInfo(hint, "%sALTER SYSTEM SET protea_reaper.max_runtime_seconds = " INT64_FORMAT "; SELECT pg_reload_conf();",
							 hint->len ? " " : "", cap);
	}
}

static void
load_policy(Doctor *doctor)
{
	reaper_policy_load(&doctor->policy);
}

/* The settings, and each policy row with them, are consistent */
static void
check_thresholds(Doctor *doctor)
{
	ReaperPolicy *p = &doctor->policy;
	StringInfoData detail;
	StringInfoData hint;
	ErrorData  *edata;

	doctor->policy_ok = guarded(load_policy, doctor, &edata);
	if (!doctor->policy_ok)
	{
		error_row(doctor, "thresholds", 0, edata);
		return;
	}
	initStringInfo(&detail);
	initStringInfo(&hint);
	threshold_problem(&detail, &hint, NULL,
					  p->timeout_seconds, p->stall_seconds, p->max_runtime_seconds);
	for (int i = 0; i < p->nrows; i++)
	{
		int			timeout,
					stall,
					max_runtime;
		bool		exempt;

		reaper_policy_for(p, p->rows[i].operation, &timeout, &stall, &max_runtime, &exempt);
		if (!exempt)
			threshold_problem(&detail, &hint, p->rows[i].operation,
							  timeout, stall, max_runtime);
	}
	if (detail.len == 0)
		add_row(doctor, "thresholds", 1,
				psprintf("timeout_seconds = %d, stall_seconds = %d, max_runtime_seconds = %d%s; %d operation(s) with rows in protea_reaper_policy.",
						 p->timeout_seconds, p->stall_seconds, p->max_runtime_seconds,
						 p->max_runtime_seconds == 0 ? " (no cap)" : "", p->nrows),
				NULL);
	else
		add_row(doctor, "thresholds", 0, detail.data, hint.data);
}

/* One operation's false alarms */
typedef struct FalseAlarm
{
	char	   *operation;
	int64		jobs;
	int64		events;			/* written after their job.timeout */
	int64		silence;		/* the longest, in seconds; -1 unknown */
} FalseAlarm;

/* The results of the doctor's statements, for the rows that follow */
typedef struct Findings
{
	int64		overdue;
	char	   *overdue_ids;
	int64		skewed;
	int64		skew;			/* seconds */
	int64		infinite;		/* jobs with an infinite timestamp */
	char	   *infinite_ids;
	int			nalarms;
	FalseAlarm *alarms;
	int64		other_events;	/* another reaper's, and on how many jobs */
	int64		other_jobs;
	char	   *other_newest;
	char	   *other_names;
	int64		unguarded;		/* jobs we failed, finished since */
	char	   *unguarded_ids;
} Findings;

static Findings findings;

/* A text column of the current SPI result, copied into cxt; NULL for NULL */
static char *
spi_text_in(MemoryContext cxt, HeapTuple tuple, int col)
{
	char	   *value = SPI_getvalue(tuple, SPI_tuptable->tupdesc, col);

	return value ? MemoryContextStrdup(cxt, value) : NULL;
}

/* An int8 column of the current SPI result, 0 for NULL */
static int64
spi_int64(HeapTuple tuple, int col)
{
	bool		isnull;
	Datum		value = SPI_getbinval(tuple, SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(value);
}

/* Whether a column of the current SPI result is NULL */
static bool
spi_isnull(HeapTuple tuple, int col)
{
	bool		isnull;

	(void) SPI_getbinval(tuple, SPI_tuptable->tupdesc, col, &isnull);
	return isnull;
}

/* The false alarms of the current SPI result, kept in cxt */
static void
find_alarms(MemoryContext cxt)
{
	findings.alarms = MemoryContextAllocZero(cxt, (SPI_processed + 1) * sizeof(FalseAlarm));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];

		findings.alarms[i].operation = spi_text_in(cxt, tuple, ALARM_OPERATION);
		findings.alarms[i].jobs = spi_int64(tuple, ALARM_JOBS);
		findings.alarms[i].events = spi_int64(tuple, ALARM_EVENTS);
		findings.alarms[i].silence = spi_isnull(tuple, ALARM_LONGEST_SILENCE) ? -1 :
			spi_int64(tuple, ALARM_LONGEST_SILENCE);
	}
}

/*
 * find
 *		Run the doctor's statements as the tables' owner, keeping what they
 *		found in the caller's memory (SPI's goes at reaper_session_end).
 */
static void
find(Doctor *doctor)
{
	MemoryContext cxt = CurrentMemoryContext;
	ReaperSession session;
	Datum		values[POLICY_NPARAMS];

	reaper_session_begin(&session, false, &doctor->policy);
	reaper_policy_params(&doctor->policy, values);

	reaper_execute(reaper_plan(&session, STMT_OVERDUE), values, NULL, true);
	findings.overdue = spi_int64(SPI_tuptable->vals[0], 1);
	findings.overdue_ids = spi_text_in(cxt, SPI_tuptable->vals[0], 2);

	reaper_execute(reaper_plan(&session, STMT_CLOCK_SKEW), NULL, NULL, true);
	findings.skewed = spi_int64(SPI_tuptable->vals[0], 1);
	findings.skew = spi_int64(SPI_tuptable->vals[0], 2);
	findings.infinite = spi_int64(SPI_tuptable->vals[0], 3);
	findings.infinite_ids = spi_text_in(cxt, SPI_tuptable->vals[0], 4);

	reaper_execute(reaper_plan(&session, STMT_FALSE_ALARMS), NULL, NULL, true);
	findings.nalarms = (int) SPI_processed;
	find_alarms(cxt);

	reaper_execute(reaper_plan(&session, STMT_OTHER_REAPER), NULL, NULL, true);
	findings.other_events = spi_int64(SPI_tuptable->vals[0], 1);
	findings.other_jobs = spi_int64(SPI_tuptable->vals[0], 2);
	findings.other_newest = spi_text_in(cxt, SPI_tuptable->vals[0], 3);
	findings.other_names = spi_text_in(cxt, SPI_tuptable->vals[0], 4);

	reaper_execute(reaper_plan(&session, STMT_UNGUARDED), NULL, NULL, true);
	findings.unguarded = spi_int64(SPI_tuptable->vals[0], 1);
	findings.unguarded_ids = spi_text_in(cxt, SPI_tuptable->vals[0], 2);
	reaper_session_end(&session);
}

/*
 * The hint for an operation whose jobs were failed while alive: a
 * stall_seconds half as long again as the longest silence seen, and what
 * else must move with it for the row to stay valid (a timeout above the
 * stall, a cap above the timeout).  Jobs without an operation can have no
 * row: the settings move instead.
 */
static char *
false_alarm_hint(Doctor *doctor, const char *op, int64 silence)
{
	int			timeout,
				stall,
				max_runtime;
	bool		exempt;
	int64		new_stall;
	int64		new_timeout;
	int64		new_cap = 0;
	StringInfoData columns;
	StringInfoData values;
	StringInfoData set;

	reaper_policy_for(&doctor->policy, op, &timeout, &stall, &max_runtime, &exempt);
	new_stall = Max((int64) stall + 1, silence + silence / 2);
	new_stall = Min(new_stall, (int64) PG_INT32_MAX / 4);
	new_timeout = Max((int64) timeout, 2 * new_stall);
	if (max_runtime > 0 && max_runtime <= new_timeout)
		new_cap = 2 * new_timeout;

	if (op == NULL)
		return psprintf("Jobs without an operation get the settings: ALTER SYSTEM SET protea_reaper.stall_seconds = " INT64_FORMAT ";%s%s SELECT pg_reload_conf();",
						new_stall,
						new_timeout > timeout ?
						psprintf(" ALTER SYSTEM SET protea_reaper.timeout_seconds = " INT64_FORMAT ";", new_timeout) : "",
						new_cap > 0 ?
						psprintf(" ALTER SYSTEM SET protea_reaper.max_runtime_seconds = " INT64_FORMAT ";", new_cap) : "");

	initStringInfo(&columns);
	initStringInfo(&values);
	initStringInfo(&set);
	appendStringInfo(&columns, "operation, stall_seconds");
	appendStringInfo(&values, "%s, " INT64_FORMAT, quote_literal_cstr(op), new_stall);
	appendStringInfo(&set, "stall_seconds = EXCLUDED.stall_seconds");
	if (new_timeout > timeout)
	{
		appendStringInfo(&columns, ", timeout_seconds");
		appendStringInfo(&values, ", " INT64_FORMAT, new_timeout);
		appendStringInfo(&set, ", timeout_seconds = EXCLUDED.timeout_seconds");
	}
	if (new_cap > 0)
	{
		appendStringInfo(&columns, ", max_runtime_seconds");
		appendStringInfo(&values, ", " INT64_FORMAT, new_cap);
		appendStringInfo(&set, ", max_runtime_seconds = EXCLUDED.max_runtime_seconds");
	}
	return psprintf("Raise its stall_seconds above the silence its workers keep%s: INSERT INTO protea_reaper_policy (%s) VALUES (%s) ON CONFLICT (operation) DO UPDATE SET %s;",
					new_timeout > timeout || new_cap > 0 ?
					" (and the thresholds that must stay above it)" : "",
					columns.data, values.data, set.data);
}

/* An operation in a detail: quoted, or said to be missing */
static char *
operation_text(const char *op)
{
	return op ? psprintf("Operation %s", quote_literal_cstr(op)) : "Jobs without an operation";
}

/*
 * Events from the future, and infinite timestamps: what keeps a job alive
 * longer than its worker, or out of every sweep's judgement
 */
static void
check_clock_skew(Doctor *doctor)
{
	StringInfoData detail;
	StringInfoData hint;

	if (findings.skewed == 0 && findings.infinite == 0)
	{
		add_row(doctor, "clock skew", 1,
				"No running job's newest job_event is stamped ahead of the database's clock, and no running job has an infinite started_at, leased_until or job_event ts.",
				NULL);
		return;
	}
	initStringInfo(&detail);
	initStringInfo(&hint);
	if (findings.skewed > 0)
	{
		appendStringInfo(&detail, INT64_FORMAT " running job(s) have a newest job_event stamped ahead of the database's clock, by up to " INT64_FORMAT " s: such an event keeps its job alive until it is stall_seconds old.",
						 findings.skewed, findings.skew);
		appendStringInfoString(&hint, "Synchronise the clocks of PROTEA's hosts (NTP, chrony), or let the database stamp job_event.ts (its DEFAULT now()).");
	}
	if (findings.infinite > 0)
	{
		appendStringInfo(&detail, "%s" INT64_FORMAT " running job(s) have an infinite started_at, leased_until or newest job_event ts (first: %s): a sweep never judges a job started at an infinite time, and a lease or event at infinity keeps its job alive for ever.",
						 detail.len > 0 ? " " : "", findings.infinite, findings.infinite_ids);
		appendStringInfoString(&hint, hint.len > 0 ? " " : "");
		appendStringInfoString(&hint, "SELECT job_id, started_at, leased_until, last_event_ts, verdict FROM protea_reaper_running_jobs() WHERE verdict IN ('infinite started_at', 'leased forever', 'alive forever'); correct those rows, or fail a job with SELECT protea_reaper_fail_job(job_id, 'reason').");
	}
	add_row(doctor, "clock skew", 0, detail.data, hint.data);
}

/*
 * Writers that undo or duplicate the reaper's work: another reaper (PROTEA's
 * own, still running), and a finish that overwrote a failure
 */
static void
check_other_writers(Doctor *doctor)
{
	if (findings.other_events == 0)
		add_row(doctor, "another reaper", 1,
				"Every job.timeout, job.lease_expired and job.lease_expired_requeue event of the last 7 days is protea_reaper's.",
				NULL);
	else
		add_row(doctor, "another reaper", 0,
				psprintf(INT64_FORMAT " event(s) of the last 7 days (%s), on " INT64_FORMAT " job(s), the newest at %s, were written by another reaper: PROTEA's own is still running beside protea_reaper, and both judge the same jobs.",
						 findings.other_events, findings.other_names, findings.other_jobs,
						 findings.other_newest),
				"Stop PROTEA's reaper (the worker started with scripts/worker.py --queue reaper) so that one reaper judges each job; its events carry no \"reaper\": \"protea_reaper\" field: SELECT job_id, ts, event, message FROM job_event WHERE event IN ('job.timeout', 'job.lease_expired', 'job.lease_expired_requeue') AND ts > now() - interval '7 days' AND NOT fields ? 'reaper' ORDER BY ts DESC;");

	if (findings.unguarded == 0)
		add_row(doctor, "unguarded finish", 1,
				"No job protea_reaper failed in the last 7 days was given another ending since.", NULL);
	else
		add_row(doctor, "unguarded finish", 0,
				psprintf(INT64_FORMAT " job(s) protea_reaper failed in the last 7 days were given another ending since (first: %s): a worker that had gone silent came back and finished its job with an update that did not check it was still running, so the job keeps the reaper's error_code beside its new status.",
						 findings.unguarded, findings.unguarded_ids),
				psprintf("Guard the finish in PROTEA's worker: UPDATE job SET status = %s, finished_at = now() WHERE id = :id AND status = %s, and treat 0 rows as \"the job was failed or cancelled meanwhile\" (log it, keep the result aside) instead of overwriting it.",
						 /* the succeeded label in the running label's case */
						 strcmp(doctor->tables.running_label, "running") == 0 ?
						 "'succeeded'" : "'SUCCEEDED'",
						 quote_literal_cstr(doctor->tables.running_label)));
}

/* What the reaper's work says: overdue jobs, clock skew, false alarms */
static void
check_findings(Doctor *doctor)
{
	ErrorData  *edata;

	if (!doctor->tables_ok || !doctor->policy_ok)
	{
		const char *why = doctor->tables_ok ? "Not checked: the policy could not be read." :
			"Not checked: the tables did not resolve.";

		add_row(doctor, "overdue jobs", -1, why, NULL);
		add_row(doctor, "clock skew", -1, why, NULL);
		add_row(doctor, "false alarms", -1, why, NULL);
		add_row(doctor, "another reaper", -1, why, NULL);
		add_row(doctor, "unguarded finish", -1, why, NULL);
		return;
	}
	memset(&findings, 0, sizeof(findings));
	if (!guarded(find, doctor, &edata))
	{
		/* the statements could not run: none of the three was checked */
		edata->message = psprintf("Not checked: %s", edata->message);
		error_row(doctor, "overdue jobs", -1, edata);
		add_row(doctor, "clock skew", -1, "Not checked: see overdue jobs.", NULL);
		add_row(doctor, "false alarms", -1, "Not checked: see overdue jobs.", NULL);
		add_row(doctor, "another reaper", -1, "Not checked: see overdue jobs.", NULL);
		add_row(doctor, "unguarded finish", -1, "Not checked: see overdue jobs.", NULL);
		return;
	}

	if (findings.overdue == 0)
		add_row(doctor, "overdue jobs", 1,
				"No running job is older than twice its timeout_seconds.", NULL);
	else
		add_row(doctor, "overdue jobs", 0,
				psprintf(INT64_FORMAT " running job(s) are older than twice their timeout_seconds (first: %s): a lease or recent events keep them, or no sweep runs.",
						 findings.overdue, findings.overdue_ids),
				"SELECT * FROM protea_reaper_running_jobs() WHERE running_for > 2 * make_interval(secs => timeout_seconds); check their workers, exempt their operation in protea_reaper_policy if they may run that long, or fail one with SELECT protea_reaper_fail_job(job_id, 'reason').");

	check_clock_skew(doctor);

	if (findings.nalarms == 0)
		add_row(doctor, "false alarms", 1,
				"No job failed as stalled in the last 7 days wrote events after its job.timeout event.",
				NULL);
	for (int i = 0; i < findings.nalarms; i++)
	{
		const FalseAlarm *alarm = &findings.alarms[i];
		int			timeout,
					stall,
					max_runtime;
		bool		exempt;

		reaper_policy_for(&doctor->policy, alarm->operation,
						  &timeout, &stall, &max_runtime, &exempt);
		/* an infinite timestamp: no stall_seconds would have kept them */
		if (alarm->silence < 0)
			add_row(doctor, "false alarms", 0,
					psprintf("%s: " INT64_FORMAT " job(s) failed as stalled in the last 7 days wrote " INT64_FORMAT " event(s) after their job.timeout event; how long they had been silent is unknown (an infinite started_at or job_event ts).",
							 operation_text(alarm->operation), alarm->jobs, alarm->events),
					NULL);
		/* the policy was raised since: the evidence is answered */
		else if (exempt || stall > alarm->silence)
			add_row(doctor, "false alarms", 1,
					psprintf("%s: " INT64_FORMAT " job(s) failed as stalled in the last 7 days wrote events after their job.timeout event, silent for up to " INT64_FORMAT " s; its %s now.",
							 operation_text(alarm->operation), alarm->jobs, alarm->silence,
							 exempt ? "jobs are exempt" :
							 psprintf("stall_seconds is %d", stall)),
					NULL);
		else
			add_row(doctor, "false alarms", 0,
					psprintf("%s: " INT64_FORMAT " job(s) failed as stalled in the last 7 days wrote " INT64_FORMAT " event(s) after their job.timeout event; they were alive, silent for up to " INT64_FORMAT " s.",
							 operation_text(alarm->operation), alarm->jobs, alarm->events,
							 alarm->silence),
					false_alarm_hint(doctor, alarm->operation, alarm->silence));
	}

	check_other_writers(doctor);
}

/*
 * protea_reaper_check
 *		The doctor: a row per check, in the order a fix is usually needed.
 */
Datum
protea_reaper_check(PG_FUNCTION_ARGS)
{
	Doctor		doctor;
	ReaperStatus status;
	bool		preloaded;

	InitMaterializedSRF(fcinfo, 0);
	memset(&doctor, 0, sizeof(doctor));
	doctor.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	preloaded = reaper_status_preloaded();
	memset(&status, 0, sizeof(status));
	status.state = REAPER_NOT_PRELOADED;
	if (preloaded)
		reaper_status_read_here(&status);

	check_preloaded(&doctor, preloaded);
	check_worker(&doctor, &status, preloaded);
	check_database(&doctor, preloaded);
	check_tables(&doctor);
	check_started_at_index(&doctor);
	check_catalog(&doctor);
	check_thresholds(&doctor);
	check_findings(&doctor);
	return (Datum) 0;
}
