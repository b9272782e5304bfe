/*-------------------------------------------------------------------------
 *
 * sweep.c
 *	  The sweep: the only code that knows the SQL run on PROTEA's tables.
 *
 * A job is stale when it is 'running', started longer than timeout_seconds
 * ago, and has no job_event newer than stall_seconds, all judged by the
 * database's clock (now()).  Failing it sets status, finished_at,
 * error_code and error_message and appends exactly one 'job.timeout'
 * audit event, in one statement.
 *
 * The statements are set-based: one statement fails a whole batch, however
 * many candidates there are, and an idle sweep is a single statement (a
 * scan of the ids of the jobs past the timeout when all of them are known
 * alive, see known_alive.c).  They are prepared once per backend and kept
 * (SPI_keepplan), those of an idle sweep as generic plans; thresholds travel
 * as parameters.  They are prepared anew only when the tables the settings
 * name change.
 *
 * Table names come from settings, so they are parsed and resolved to OIDs,
 * checked for the columns we need, and only then quoted into the SQL.
 * Relations and functions in the SQL are either those quoted names or
 * pg_catalog's: callers pin search_path (the worker to '', the SQL
 * functions with SET search_path), so nothing else can be resolved.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "known_alive.h"
#include "settings.h"
#include "sweep.h"

/* The two tables the settings name, resolved */
typedef struct ReaperTables
{
	Oid			job_relid;
	Oid			event_relid;
	char	   *job_name;		/* quoted, schema-qualified */
	char	   *event_name;
} ReaperTables;

/* Plans kept for the life of the backend, and the tables they were made for */
static SPIPlanPtr candidates_plan = NULL;
static SPIPlanPtr first_plan = NULL;
static SPIPlanPtr batch_plan = NULL;
static char *plan_job_name = NULL;
static char *plan_event_name = NULL;

static const char *const job_columns[] = {
	"id", "operation", "status", "started_at", "finished_at",
	"error_code", "error_message", NULL
};
static const char *const event_columns[] = {
	"job_id", "ts", "level", "event", "message", "fields", NULL
};

/*
 * The batch statement.  %1$s is the job table, %2$s the event table.
 * $1 timeout_seconds, $2 stall_seconds, $3 batch_size, $4 error_message.
 *
 * FOR UPDATE ... SKIP LOCKED means the sweep never waits on a worker that
 * holds its job's row, and, in READ COMMITTED, re-checks the WHERE clause
 * on the newest version of a row that changed since the snapshot.  The
 * UPDATE checks status again in the same statement, so a job that finished
 * meanwhile is never overwritten; the audit row is written from the
 * UPDATE's RETURNING, so there is exactly one per failed job.
 */
static const char *const batch_sql =
"WITH stale AS ("
"  SELECT j.id, le.last_ts"
"    FROM %1$s AS j"
"    LEFT JOIN LATERAL (SELECT e.ts AS last_ts FROM %2$s AS e"
"                        WHERE e.job_id = j.id"
"                        ORDER BY e.ts DESC LIMIT 1) AS le ON true"
"   WHERE j.status = 'running'"
"     AND j.started_at < now() - make_interval(secs => $1)"
"     AND (le.last_ts IS NULL OR le.last_ts <= now() - make_interval(secs => $2))"
"   LIMIT $3"
"   FOR UPDATE OF j SKIP LOCKED"
"), failed AS ("
"  UPDATE %1$s AS j"
"     SET status = 'failed', finished_at = now(),"
"         error_code = 'JobTimeout', error_message = $4"
"    FROM stale AS s"
"   WHERE j.id = s.id AND j.status = 'running'"
"  RETURNING j.id, j.operation, j.started_at, s.last_ts"
"), audit AS ("
"  INSERT INTO %2$s (job_id, ts, level, event, message, fields)"
"  SELECT f.id, now(), 'error', 'job.timeout', $4,"
"         jsonb_build_object('timeout_seconds', $1, 'stall_seconds', $2,"
"                            'last_event_ts', f.last_ts)"
"    FROM failed AS f"
")"
"SELECT f.id, f.operation, f.started_at, f.last_ts FROM failed AS f"
" ORDER BY f.started_at, f.id";

/*
 * The first batch of a sweep: the batch statement above, plus the jobs past
 * the timeout that a recent event keeps alive, from one scan of the
 * candidates.  Parameters as above,
 * and $5, $6: the jobs an earlier sweep found alive and their last events,
 * as remembered by known_alive.c.  Their events are not looked up again
 * (the lateral subquery's "k.id IS NULL" is a one-time filter, so the probe
 * is not even started); they count as alive with the event remembered.
 * Rows come back failed first (kind true), then alive (kind false).  $7
 * false means their log lines would not be written: then the alive jobs
 * already known are not returned, only counted, in one row of kind NULL.
 *
 * Its failed and audit CTEs must stay word for word those of batch_sql: the
 * write is the reaper's contract.  Both are spelt out in full so that each
 * statement reads (and bench/ EXPLAINs it) exactly as it runs.
 */
static const char *const first_sql =
"WITH candidates AS MATERIALIZED ("
"  SELECT j.id, j.operation, j.started_at,"
"         coalesce(le.last_ts, k.last_ts) AS last_ts,"
"         k.id IS NOT NULL AS known,"
"         k.id IS NOT NULL OR le.last_ts > now() - make_interval(secs => $2) AS alive"
"    FROM %1$s AS j"
"    LEFT JOIN unnest($5::uuid[], $6::timestamptz[]) AS k(id, last_ts) ON k.id = j.id"
"    LEFT JOIN LATERAL (SELECT e.ts AS last_ts FROM %2$s AS e"
"                        WHERE e.job_id = j.id AND k.id IS NULL"
"                        ORDER BY e.ts DESC LIMIT 1) AS le ON true"
"   WHERE j.status = 'running'"
"     AND j.started_at < now() - make_interval(secs => $1)"
"), stale AS ("
"  SELECT j.id, c.last_ts"
"    FROM candidates AS c JOIN %1$s AS j ON j.id = c.id"
"   WHERE c.alive IS NOT TRUE"
"     AND j.status = 'running'"
"     AND j.started_at < now() - make_interval(secs => $1)"
"   LIMIT $3"
"   FOR UPDATE OF j SKIP LOCKED"
"), failed AS ("
"  UPDATE %1$s AS j"
"     SET status = 'failed', finished_at = now(),"
"         error_code = 'JobTimeout', error_message = $4"
"    FROM stale AS s"
"   WHERE j.id = s.id AND j.status = 'running'"
"  RETURNING j.id, j.operation, j.started_at, s.last_ts"
"), audit AS ("
"  INSERT INTO %2$s (job_id, ts, level, event, message, fields)"
"  SELECT f.id, now(), 'error', 'job.timeout', $4,"
"         jsonb_build_object('timeout_seconds', $1, 'stall_seconds', $2,"
"                            'last_event_ts', f.last_ts)"
"    FROM failed AS f"
")"
"SELECT true AS failed, f.id, f.operation, f.started_at, f.last_ts,"
"       NULL::bigint AS known_alive FROM failed AS f"
" UNION ALL "
"SELECT false, c.id, c.operation, c.started_at, c.last_ts, NULL FROM candidates AS c"
" WHERE c.alive AND (NOT c.known OR $7)"
" UNION ALL "
"SELECT NULL, NULL, NULL, NULL, NULL, count(*) FROM candidates AS c"
" WHERE c.alive AND c.known AND NOT $7"
" ORDER BY 1 DESC, 4, 2";

/*
 * The ids of the jobs past the timeout, and nothing else: when every one of
 * them is known alive (known_alive.c), this is the whole sweep.  With the
 * index README.md recommends, (started_at) INCLUDE (id) WHERE status =
 * 'running', it can be an index-only scan.  $1 timeout_seconds.
 */
static const char *const candidates_sql =
"SELECT j.id FROM %1$s AS j"
" WHERE j.status = 'running'"
"   AND j.started_at < now() - make_interval(secs => $1)";

/* Every running job, with the verdict a sweep would reach on it now. */
static const char *const list_sql =
"SELECT j.id::uuid, j.operation::text, j.started_at, le.last_ts,"
"       now() - j.started_at, now() - le.last_ts,"
"       CASE WHEN j.started_at IS NULL THEN 'no started_at'"
"            WHEN j.started_at >= now() - make_interval(secs => $1) THEN 'young'"
"            WHEN le.last_ts > now() - make_interval(secs => $2) THEN 'alive'"
"            ELSE 'stale' END"
"  FROM %1$s AS j"
"  LEFT JOIN LATERAL (SELECT e.ts AS last_ts FROM %2$s AS e"
"                      WHERE e.job_id = j.id"
"                      ORDER BY e.ts DESC LIMIT 1) AS le ON true"
" WHERE j.status = 'running'"
" ORDER BY j.started_at NULLS LAST, j.id";

/*
 * The operator's manual fail.  $1 job id, $2 error_message, $3 reason.
 * Only a job that has not ended (queued or running) is failed.
 */
static const char *const fail_job_sql =
"WITH target AS ("
"  SELECT j.id, j.status::text AS old_status,"
"         (SELECT max(e.ts) FROM %2$s AS e WHERE e.job_id = j.id) AS last_ts"
"    FROM %1$s AS j"
"   WHERE j.id = $1"
"     FOR UPDATE OF j"
"), failed AS ("
"  UPDATE %1$s AS j"
"     SET status = 'failed', finished_at = now(),"
"         error_code = 'ManualTimeout', error_message = $2"
"    FROM target AS t"
"   WHERE j.id = t.id AND j.status IN ('running', 'queued')"
"  RETURNING j.id, t.old_status, t.last_ts"
"), audit AS ("
"  INSERT INTO %2$s (job_id, ts, level, event, message, fields)"
"  SELECT f.id, now(), 'error', 'job.timeout', $2,"
"         jsonb_build_object('manual', true, 'reason', $3,"
"                            'failed_by', session_user,"
"                            'previous_status', f.old_status,"
"                            'last_event_ts', f.last_ts)"
"    FROM failed AS f"
")"
"SELECT t.old_status, (SELECT count(*) FROM failed) FROM target AS t";

/* Error context: which setting was being resolved */
static void
resolve_table_context(void *arg)
{
	const char *const *setting = (const char *const *) arg;

	errcontext("resolving protea_reaper.%s = '%s'", setting[0], setting[1]);
}

/*
 * resolve_table
 *		Resolve the table a setting names and check it has the columns the
 *		sweep uses.  Raises an ERROR that names the setting to change.
 */
static Oid
resolve_table(const char *setting, const char *value, const char *what,
			  const char *const *columns, char **quoted)
{
	List	   *names;
	RangeVar   *rv;
	Oid			relid;
	char		relkind;
	const char *context_arg[2] = {setting, value};
	ErrorContextCallback context;

	if (value == NULL || value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("protea_reaper.%s is empty", setting),
				 errhint("Set protea_reaper.%s to the schema-qualified name of PROTEA's %s table.",
						 setting, what)));

	/* The parser's own errors (bad quoting, too many dots) name the setting */
	context.callback = resolve_table_context;
	context.arg = (void *) context_arg;
	context.previous = error_context_stack;
	error_context_stack = &context;
	names = protea_string_to_qualified_name_list(value);
	rv = makeRangeVarFromNameList(names);
	error_context_stack = context.previous;

	relid = RangeVarGetRelid(rv, AccessShareLock, true);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("protea_reaper %s table \"%s\" does not exist", what, value),
				 errdetail("The table is named by protea_reaper.%s.", setting),
				 errhint("Create PROTEA's tables first, or set protea_reaper.%s to the schema-qualified name of the %s table.",
						 setting, what)));

	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("protea_reaper %s table \"%s\" is not a table", what, value),
				 errhint("Set protea_reaper.%s to the schema-qualified name of the %s table.",
						 setting, what)));

	for (const char *const *col = columns; *col != NULL; col++)
	{
		if (get_attnum(relid, *col) == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("protea_reaper %s table \"%s\" has no column \"%s\"",
							what, value, *col),
					 errdetail("The %s table needs the columns of PROTEA's %s table.",
							   what, what),
					 errhint("Check that protea_reaper.%s names PROTEA's %s table.",
							 setting, what)));
	}

	*quoted = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));
	return relid;
}

/*
 * resolve_tables
 *		Resolve both tables from the current settings.
 */
static void
resolve_tables(ReaperTables *tables)
{
	tables->job_relid = resolve_table("job_table", reaper_job_table, "job",
									  job_columns, &tables->job_name);
	tables->event_relid = resolve_table("event_table", reaper_event_table,
										"job_event", event_columns,
										&tables->event_name);
}

/*
 * prepare_kept
 *		Prepare one statement for the given tables and keep it past SPI_finish.
 *		generic: always run the one plan made at the first call.
 *
 * An idle sweep's statements want that: their parameters are thresholds
 * that do not change the plan's shape, and the plan cache would otherwise
 * plan them anew at each call (a custom plan is always made the first five
 * times, and for the scan of ids every time, as it looks cheaper), which
 * costs more than the idle sweep itself.  A backlog's later batches do
 * not: their LIMIT batch_size decides between reading candidates until the
 * batch is full and reading all of them first (a generic plan, not knowing
 * it, made a mass reap a third slower), and planning is little beside
 * failing a batch.
 */
static SPIPlanPtr
prepare_kept(const char *sql_template, const ReaperTables *tables,
			 int nargs, Oid *argtypes, bool generic)
{
	char	   *sql = psprintf(sql_template, tables->job_name, tables->event_name);
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes,
										  generic ? CURSOR_OPT_GENERIC_PLAN : 0);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for protea_reaper sweep: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed for protea_reaper sweep");
	pfree(sql);
	return plan;
}

/*
 * ensure_plans
 *		Make sure the kept plans are those for the tables the settings name
 *		now.  Resolution runs every call (catalog cache lookups only) so that
 *		a changed setting or a dropped table is noticed at once.
 */
static void
ensure_plans(void)
{
	ReaperTables tables;
	Oid			types[7] = {INT4OID, INT4OID, INT4OID, TEXTOID,
		UUIDARRAYOID, TIMESTAMPTZARRAYOID, BOOLOID};

	resolve_tables(&tables);

	/* What earlier sweeps learnt holds for these tables only */
	if (reaper_remember_alive)
		known_alive_use_tables(tables.job_relid, tables.event_relid);
	else
		known_alive_forget();

	if (batch_plan != NULL &&
		strcmp(plan_job_name, tables.job_name) == 0 &&
		strcmp(plan_event_name, tables.event_name) == 0)
		return;

	if (batch_plan != NULL)
	{
		SPI_freeplan(batch_plan);
		batch_plan = NULL;
	}
	if (first_plan != NULL)
	{
		SPI_freeplan(first_plan);
		first_plan = NULL;
	}
	if (candidates_plan != NULL)
	{
		SPI_freeplan(candidates_plan);
		candidates_plan = NULL;
	}
	if (plan_job_name != NULL)
		pfree(plan_job_name);
	if (plan_event_name != NULL)
		pfree(plan_event_name);
	plan_job_name = plan_event_name = NULL;

	candidates_plan = prepare_kept(candidates_sql, &tables, 1, types, true);
	first_plan = prepare_kept(first_sql, &tables, 7, types, true);
	batch_plan = prepare_kept(batch_sql, &tables, 4, types, false);
	plan_job_name = MemoryContextStrdup(TopMemoryContext, tables.job_name);
	plan_event_name = MemoryContextStrdup(TopMemoryContext, tables.event_name);
}

/* Connect to SPI; every entry point below does, so that callers need not */
static void
connect_spi(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "protea_reaper could not connect to SPI");
}

/* The error_message of a job the sweep fails, as PROTEA's old reaper wrote it */
static char *
timeout_message(void)
{
	return psprintf("Job stalled: no activity in %ds (started >%ds ago)",
					reaper_stall_seconds, reaper_timeout_seconds);
}

/* A column of the current SPI result as text, "none" for NULL */
static char *
spi_text(HeapTuple tuple, int col)
{
	char	   *value = SPI_getvalue(tuple, SPI_tuptable->tupdesc, col);

	return value ? value : "none";
}

/* Log one job a batch failed */
static void
log_failed(HeapTuple tuple, int col, const char *message)
{
	ereport(LOG,
			(errmsg("Reaper failed stale job %s.", spi_text(tuple, col)),
			 errdetail("operation %s, started_at %s, last job_event %s; %s.",
					   spi_text(tuple, col + 1), spi_text(tuple, col + 2),
					   spi_text(tuple, col + 3), message)));
}

/* The level of "Reaper skipped live job." */
#define ALIVE_LOG_LEVEL (reaper_log_skipped ? LOG : DEBUG1)

/*
 * Log one job past the timeout kept alive by a recent event: id, operation,
 * started_at and the last event from columns col..col + 3.
 */
static void
log_alive(HeapTuple tuple, int col)
{
	ereport(ALIVE_LOG_LEVEL,
			(errmsg("Reaper skipped live job."),
			 errdetail("job %s, operation %s, started_at %s, last job_event %s is within stall_seconds=%d.",
					   spi_text(tuple, col), spi_text(tuple, col + 1),
					   spi_text(tuple, col + 2), spi_text(tuple, col + 3),
					   reaper_stall_seconds)));
}

/*
 * run_later_batch
 *		A batch after the first: fail and log at most batch_size stale jobs.
 */
static uint64
run_later_batch(Datum *values, const char *nulls, const char *message)
{
	uint64		reaped;
	int			ret;

	ret = SPI_execute_plan(batch_plan, values, nulls, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper sweep failed: %s", SPI_result_code_string(ret));

	reaped = SPI_processed;
	for (uint64 i = 0; i < reaped; i++)
		log_failed(SPI_tuptable->vals[i], 1, message);
	return reaped;
}

/*
 * all_known_alive
 *		The idle sweep of a backend that remembers: when every job past the
 *		timeout is known alive, nothing can be stale, so they are counted
 *		from one scan of their ids, without the first statement's lookups,
 *		joins and writes.  Returns false, having done nothing the caller
 *		sees, as soon as one job is not known alive, or when their log lines
 *		are wanted (the first statement returns what those lines show).
 */
static bool
all_known_alive(Datum *values, const char *nulls, uint64 *alive)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			ret;

	/* then only the first statement can answer: do not scan twice */
	if (!reaper_remember_alive || known_alive_is_empty() ||
		message_level_is_interesting(ALIVE_LOG_LEVEL))
		return false;

	ret = SPI_execute_plan(candidates_plan, values, nulls, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper sweep failed: %s", SPI_result_code_string(ret));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		id = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									   1, &isnull);

		if (!known_alive_lookup(DatumGetUUIDP(id), now, reaper_stall_seconds))
			return false;
	}

	*alive = SPI_processed;
	return true;
}

/*
 * run_first_batch
 *		The first batch: fail and log at most batch_size stale jobs, count
 *		(and log) the live ones into *alive, skipping the lookup of those
 *		known alive, and remember the ones newly seen alive.
 */
static uint64
run_first_batch(Datum *values, const char *nulls, const char *message, uint64 *alive)
{
	uint64		reaped = 0;
	bool		learn;
	int			ret;

	/* now() is the transaction's start, as in the statement */
	known_alive_current(GetCurrentTransactionStartTimestamp(),
						reaper_stall_seconds, &values[4], &values[5]);
	values[6] = BoolGetDatum(message_level_is_interesting(ALIVE_LOG_LEVEL));

	/*
	 * Learn only while this transaction has written nothing: its snapshot
	 * then shows committed events only.  An event the caller inserted and
	 * may yet roll back must not keep a job from being failed later.
	 */
	learn = reaper_remember_alive &&
		!TransactionIdIsValid(GetTopTransactionIdIfAny());

	ret = SPI_execute_plan(first_plan, values, nulls, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper sweep failed: %s", SPI_result_code_string(ret));

	*alive = 0;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		kind = SPI_getbinval(tuple, tupdesc, 1, &isnull);

		if (isnull)
		{
			/* the count of known alive jobs whose rows were left out */
			*alive += DatumGetInt64(SPI_getbinval(tuple, tupdesc, 6, &isnull));
			continue;
		}
		if (DatumGetBool(kind))
		{
			log_failed(tuple, 2, message);
			reaped++;
			continue;
		}

		log_alive(tuple, 2);
		(*alive)++;
		if (learn)
		{
			Datum		id = SPI_getbinval(tuple, tupdesc, 2, &isnull);
			Datum		last_event = SPI_getbinval(tuple, tupdesc, 5, &isnull);

			/* an alive job has a last event, and a primary key */
			if (!isnull)
				known_alive_learn(DatumGetUUIDP(id), DatumGetTimestampTz(last_event));
		}
	}
	return reaped;
}

/*
 * reaper_sweep_batch
 *		Fail at most batch_size stale jobs with one statement, logging each,
 *		and return how many.  The first batch of a sweep passes alive: it
 *		also counts (and logs) the jobs past the timeout that a recent event
 *		keeps alive, from the same scan; later batches pass NULL.
 */
uint64
reaper_sweep_batch(uint64 *alive)
{
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	char	   *message;
	uint64		reaped;

	connect_spi();
	ensure_plans();

	message = timeout_message();
	values[0] = Int32GetDatum(reaper_timeout_seconds);
	values[1] = Int32GetDatum(reaper_stall_seconds);
	values[2] = Int32GetDatum(reaper_batch_size);
	values[3] = CStringGetTextDatum(message);

	if (alive == NULL)
		reaped = run_later_batch(values, nulls, message);
	else if (all_known_alive(values, nulls, alive))
		reaped = 0;
	else
		reaped = run_first_batch(values, nulls, message, alive);

	SPI_finish();
	return reaped;
}

/*
 * reaper_sweep
 *		A whole sweep in the caller's transaction: batches run until one
 *		comes back short.  SPI starts each batch
 *		with a new command, so it sees the previous batches' updates and no
 *		job is failed twice.
 */
void
reaper_sweep(ReaperSweepResult *result)
{
	uint64		batch;

	batch = reaper_sweep_batch(&result->alive);
	result->reaped = batch;
	while (batch >= (uint64) reaper_batch_size)
	{
		batch = reaper_sweep_batch(NULL);
		result->reaped += batch;
	}
}

/*
 * reaper_sweep_report
 *		The summary line operators grep for.
 */
void
reaper_sweep_report(const ReaperSweepResult *result)
{
	if (result->reaped > 0)
		ereport(LOG,
				(errmsg("Reaped " UINT64_FORMAT " stale job(s).", result->reaped),
				 errdetail("timeout_seconds=%d, stall_seconds=%d; " UINT64_FORMAT " live job(s) past the timeout left alone.",
						   reaper_timeout_seconds, reaper_stall_seconds,
						   result->alive)));
}

/*
 * reaper_fail_job
 *		Fail one job by hand (error_code 'ManualTimeout') with one audit
 *		event.  Raises an ERROR when no such job exists; returns false, with
 *		a NOTICE, when the job had already ended, since a finished job is
 *		never rewritten.
 */
bool
reaper_fail_job(Datum job_id, const char *reason)
{
	ReaperTables tables;
	SPIPlanPtr	plan;
	Oid			types[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	char	   *message;
	char	   *old_status;
	bool		failed;
	bool		isnull;
	int			ret;

	connect_spi();
	resolve_tables(&tables);

	/* Rare and interactive: prepared per call, never kept */
	plan = SPI_prepare(psprintf(fail_job_sql, tables.job_name, tables.event_name),
					   3, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for protea_reaper_fail_job: %s",
			 SPI_result_code_string(SPI_result));

	message = psprintf("Job failed by operator: %s", reason);
	values[0] = job_id;
	values[1] = CStringGetTextDatum(message);
	values[2] = CStringGetTextDatum(reason);

	ret = SPI_execute_plan(plan, values, nulls, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper_fail_job failed: %s", SPI_result_code_string(ret));

	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("job %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, job_id))),
				 errdetail("No row of %s has that id.", tables.job_name)));

	old_status = spi_text(SPI_tuptable->vals[0], 1);
	failed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 2,
										 &isnull)) > 0;
	if (failed)
		ereport(LOG,
				(errmsg("Operator failed job %s.",
						DatumGetCString(DirectFunctionCall1(uuid_out, job_id))),
				 errdetail("previous status %s; reason: %s", old_status, reason)));
	else
		ereport(NOTICE,
				(errmsg("job %s was not failed: its status is %s",
						DatumGetCString(DirectFunctionCall1(uuid_out, job_id)),
						old_status),
				 errdetail("Only a queued or running job can be failed; a job that has ended is left as it is.")));

	SPI_finish();
	return failed;
}

/*
 * reaper_list_running
 *		Every running job with its start, its last event and the verdict a
 *		sweep would reach now: stale, alive, young or "no started_at".
 */
void
reaper_list_running(Tuplestorestate *tupstore, TupleDesc tupdesc)
{
	ReaperTables tables;
	SPIPlanPtr	plan;
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];
	int			ret;

	connect_spi();
	resolve_tables(&tables);

	plan = SPI_prepare(psprintf(list_sql, tables.job_name, tables.event_name),
					   2, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for protea_reaper_running_jobs: %s",
			 SPI_result_code_string(SPI_result));

	values[0] = Int32GetDatum(reaper_timeout_seconds);
	values[1] = Int32GetDatum(reaper_stall_seconds);
	ret = SPI_execute_plan(plan, values, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper_running_jobs failed: %s", SPI_result_code_string(ret));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		row[7];
		bool		isnull[7];

		for (int col = 0; col < 7; col++)
			row[col] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									 col + 1, &isnull[col]);
		tuplestore_putvalues(tupstore, tupdesc, row, isnull);
	}

	SPI_finish();
}
