/*-------------------------------------------------------------------------
 *
 * sweep.c
 *	  The sweep: the only code that knows the SQL run on PROTEA's tables.
 *
 * A job is stale when it is running, started longer than timeout_seconds
 * ago, holds no lease in the future (where the job table has leased_until),
 * and has no job_event newer than stall_seconds, all judged by the
 * database's clock (now()).  Failing it sets status, finished_at,
 * error_code and error_message and appends exactly one 'job.timeout'
 * audit event, in one statement.
 *
 * The statements are set-based: one statement fails a whole batch, however
 * many candidates there are, and an idle sweep is a single statement (a
 * scan of the jobs past the timeout when all of them are leased or known
 * alive, see known_alive.c).  They are prepared once per backend and kept
 * (SPI_keepplan), those of an idle sweep as generic plans; thresholds travel
 * as parameters.  They are prepared anew only when what they are built
 * from changes: the tables, their status labels, their lease column.
 *
 * tables.c resolves the tables the settings name and fills in their quoted
 * names and labels.  Relations and functions in the SQL are either those
 * quoted names or pg_catalog's: callers pin search_path (the worker to '',
 * the SQL functions with SET search_path), so nothing else can be resolved.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "known_alive.h"
#include "settings.h"
#include "sweep.h"
#include "tables.h"

/* Plans kept for the life of the backend, and what they were made from */
static SPIPlanPtr candidates_plan = NULL;
static SPIPlanPtr unleased_plan = NULL;
static SPIPlanPtr first_plan = NULL;
static SPIPlanPtr batch_plan = NULL;
static char *plan_key = NULL;

/*
 * The statements, built from the named rules below so that each rule is
 * written once.  @NAME@ placeholders are filled in by tables.c when a plan
 * is made: the quoted tables (@JOB@, @EVENT@), the job table's own status
 * labels (@IS_RUNNING@, @IS_ACTIVE@, @FAILED@) and its lease (@LEASED@,
 * @LEASED_UNTIL@).  Parameters: $1 timeout_seconds, $2 stall_seconds,
 * $3 batch_size, $4 error_message (and, for the first batch, $5-$7 below).
 */

/* Job j started longer than timeout_seconds ago */
#define STARTED_BEFORE_TIMEOUT \
	"j.started_at < now() - make_interval(secs => $1)"

/* Job j is running and past the timeout: a candidate */
#define PAST_TIMEOUT \
	"@IS_RUNNING@ AND " STARTED_BEFORE_TIMEOUT

/* An event at ts keeps its job alive: it is within stall_seconds */
#define RECENT_EVENT(ts) \
	"(" ts " > now() - make_interval(secs => $2))"

/* Job j's newest job_event, as le.last_ts (NULL if none); cond: extra filter */
#define LAST_EVENT(cond) \
	"LEFT JOIN LATERAL (SELECT e.ts AS last_ts FROM @EVENT@ AS e" \
	"                    WHERE e.job_id = j.id" cond \
	"                    ORDER BY e.ts DESC LIMIT 1) AS le ON true"

/*
 * The reaper's write, on the rows of CTE "stale" (id, last_ts): status
 * failed, finished_at, error_code and error_message, and exactly one audit
 * event per failed job, written from the UPDATE's RETURNING.  The UPDATE
 * checks status again in the same statement, so a job that finished
 * meanwhile is never overwritten.  Defines CTEs "failed" and "audit".
 */
#define FAIL_AND_AUDIT \
	"failed AS (" \
	"  UPDATE @JOB@ AS j" \
	"     SET status = @FAILED@, finished_at = now()," \
	"         error_code = 'JobTimeout', error_message = $4" \
	"    FROM stale AS s" \
	"   WHERE j.id = s.id AND @IS_RUNNING@" \
	"  RETURNING j.id, j.operation, j.started_at, s.last_ts" \
	"), audit AS (" \
	"  INSERT INTO @EVENT@ (job_id, ts, level, event, message, fields)" \
	"  SELECT f.id, now(), 'error', 'job.timeout', $4," \
	"         jsonb_build_object('timeout_seconds', $1, 'stall_seconds', $2," \
	"                            'last_event_ts', f.last_ts)" \
	"    FROM failed AS f" \
	")"

/*
 * The batch statement: fail at most batch_size stale jobs.
 *
 * FOR UPDATE ... SKIP LOCKED means the sweep never waits on a worker that
 * holds its job's row, and, in READ COMMITTED, re-checks the WHERE clause
 * (status, start, lease) on the newest version of a row that changed since
 * the snapshot.
 */
static const char *const batch_sql =
"WITH stale AS ("
"  SELECT j.id, le.last_ts"
"    FROM @JOB@ AS j "
LAST_EVENT("")
"   WHERE " PAST_TIMEOUT
"     AND @LEASED@ IS NOT TRUE"
"     AND " RECENT_EVENT("le.last_ts") " IS NOT TRUE"
"   LIMIT $3"
"   FOR UPDATE OF j SKIP LOCKED"
"), " FAIL_AND_AUDIT
"SELECT f.id, f.operation, f.started_at, f.last_ts FROM failed AS f"
" ORDER BY f.started_at, f.id";

/* The columns of batch_sql's rows: the jobs it failed */
typedef enum BatchColumn
{
	BATCH_ID = 1,
	BATCH_OPERATION,
	BATCH_STARTED_AT,
	BATCH_LAST_EVENT
} BatchColumn;

/*
 * The first batch of a sweep: the batch statement above, plus the jobs past
 * the timeout that a lease or a recent event keeps alive, from one scan of
 * the candidates.  $5, $6: the jobs an earlier sweep found alive and their
 * last events, as remembered by known_alive.c.  Their events are not
 * looked up again, nor those of a leased job (the lateral subquery's extra
 * conditions are one-time filters, so the probe is not even started); they
 * count as alive.  Rows come back failed first (kind true), then alive
 * (kind false).  $7 false means their log lines would not be written: then
 * the alive jobs already known are not returned, only counted, in one row
 * of kind NULL.
 */
static const char *const first_sql =
"WITH candidates AS MATERIALIZED ("
"  SELECT j.id, j.operation, j.started_at,"
"         coalesce(le.last_ts, k.last_ts) AS last_ts,"
"         CASE WHEN @LEASED@ THEN @LEASED_UNTIL@ END AS leased_until,"
"         k.id IS NOT NULL AS known,"
"         @LEASED@ IS TRUE OR k.id IS NOT NULL OR " RECENT_EVENT("le.last_ts") " AS alive"
"    FROM @JOB@ AS j"
"    LEFT JOIN unnest($5::uuid[], $6::timestamptz[]) AS k(id, last_ts) ON k.id = j.id "
LAST_EVENT(" AND k.id IS NULL AND @LEASED@ IS NOT TRUE")
"   WHERE " PAST_TIMEOUT
"), stale AS ("
"  SELECT j.id, c.last_ts"
"    FROM candidates AS c JOIN @JOB@ AS j ON j.id = c.id"
"   WHERE c.alive IS NOT TRUE"
"     AND " PAST_TIMEOUT
"     AND @LEASED@ IS NOT TRUE"
"   LIMIT $3"
"   FOR UPDATE OF j SKIP LOCKED"
"), " FAIL_AND_AUDIT
"SELECT true AS failed, f.id, f.operation, f.started_at, f.last_ts,"
"       NULL::timestamptz AS leased_until, NULL::bigint AS known_alive"
"  FROM failed AS f"
" UNION ALL "
"SELECT false, c.id, c.operation, c.started_at, c.last_ts, c.leased_until, NULL"
"  FROM candidates AS c"
" WHERE c.alive AND (NOT c.known OR $7)"
" UNION ALL "
"SELECT NULL, NULL, NULL, NULL, NULL, NULL, count(*) FROM candidates AS c"
" WHERE c.alive AND c.known AND NOT $7"
" ORDER BY 1 DESC, 4, 2";

/* The columns of first_sql's rows */
typedef enum FirstColumn
{
	FIRST_KIND = 1,				/* true failed, false alive, NULL count */
	FIRST_ID,
	FIRST_OPERATION,
	FIRST_STARTED_AT,
	FIRST_LAST_EVENT,
	FIRST_LEASED_UNTIL,			/* an alive job's lease, if that keeps it */
	FIRST_KNOWN_ALIVE			/* the count of known alive jobs left out */
} FirstColumn;

/*
 * The ids of the jobs past the timeout, and nothing else: when every one of
 * them is known alive (known_alive.c) or leased, this (and unleased_sql for
 * those not known) is the whole sweep.  With the index README.md
 * recommends, (started_at) INCLUDE (id) WHERE status = <running>, it can be
 * an index-only scan.  $1 timeout_seconds.
 */
static const char *const candidates_sql =
"SELECT j.id FROM @JOB@ AS j"
" WHERE " PAST_TIMEOUT;

/*
 * One of the jobs $2 (past the timeout, not known alive) that is still a
 * candidate and holds no lease, if any: then the first statement must look
 * at them.  It stops at the first.  $1 timeout_seconds.
 */
static const char *const unleased_sql =
"SELECT j.id FROM @JOB@ AS j"
" WHERE j.id = ANY ($2::uuid[]) AND " PAST_TIMEOUT " AND @LEASED@ IS NOT TRUE"
" LIMIT 1";

/* Every running job, with the verdict a sweep would reach on it now. */
static const char *const list_sql =
"SELECT j.id::uuid, j.operation::text, j.started_at, le.last_ts,"
"       now() - j.started_at, now() - le.last_ts,"
"       CASE WHEN j.started_at IS NULL THEN 'no started_at'"
"            WHEN NOT " STARTED_BEFORE_TIMEOUT " THEN 'young'"
"            WHEN @LEASED@ THEN 'leased'"
"            WHEN " RECENT_EVENT("le.last_ts") " THEN 'alive'"
"            ELSE 'stale' END,"
"       @LEASED_UNTIL@"
"  FROM @JOB@ AS j "
LAST_EVENT("")
" WHERE @IS_RUNNING@"
" ORDER BY j.started_at NULLS LAST, j.id";

/* protea_reaper_running_jobs()'s columns, as list_sql returns them */
#define LIST_COLUMNS 8

/*
 * The operator's manual fail.  $1 job id, $2 error_message, $3 reason.
 * Only a job that has not ended (queued or running) is failed; a lease
 * does not stop an operator.
 */
static const char *const fail_job_sql =
"WITH target AS ("
"  SELECT j.id, j.status::text AS old_status, le.last_ts"
"    FROM @JOB@ AS j "
LAST_EVENT("")
"   WHERE j.id = $1"
"     FOR UPDATE OF j"
"), failed AS ("
"  UPDATE @JOB@ AS j"
"     SET status = @FAILED@, finished_at = now(),"
"         error_code = 'ManualTimeout', error_message = $2"
"    FROM target AS t"
"   WHERE j.id = t.id AND @IS_ACTIVE@"
"  RETURNING j.id, t.old_status, t.last_ts, j.status::text AS new_status"
"), audit AS ("
"  INSERT INTO @EVENT@ (job_id, ts, level, event, message, fields)"
"  SELECT f.id, now(), 'error', 'job.timeout', $2,"
"         jsonb_build_object('manual', true, 'reason', $3,"
"                            'failed_by', session_user,"
"                            'previous_status', f.old_status,"
"                            'last_event_ts', f.last_ts)"
"    FROM failed AS f"
")"
"SELECT t.old_status, (SELECT f.new_status FROM failed AS f) FROM target AS t";

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
	char	   *sql = reaper_expand_sql(sql_template, tables);
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

/* Free a kept plan, if any */
static void
free_kept(SPIPlanPtr *plan)
{
	if (*plan != NULL)
		SPI_freeplan(*plan);
	*plan = NULL;
}

/*
 * ensure_plans
 *		Make sure the kept plans are those for the tables, labels and lease
 *		the settings and catalogs give now.  Resolution runs every call
 *		(catalog cache lookups only) so that a changed setting, a dropped
 *		table or a renamed label is noticed at once.
 */
static void
ensure_plans(ReaperTables *tables)
{
	Oid			types[7] = {INT4OID, INT4OID, INT4OID, TEXTOID,
		UUIDARRAYOID, TIMESTAMPTZARRAYOID, BOOLOID};
	Oid			unleased_types[2] = {INT4OID, UUIDARRAYOID};
	char	   *key;

	reaper_resolve_tables(tables);

	/* What earlier sweeps learnt holds for these tables only */
	if (reaper_remember_alive)
		known_alive_use_tables(tables->job_relid, tables->event_relid);
	else
		known_alive_forget();

	key = reaper_tables_key(tables);
	if (plan_key != NULL && strcmp(plan_key, key) == 0)
		return;

	free_kept(&batch_plan);
	free_kept(&first_plan);
	free_kept(&candidates_plan);
	free_kept(&unleased_plan);
	if (plan_key != NULL)
		pfree(plan_key);
	plan_key = NULL;

	candidates_plan = prepare_kept(candidates_sql, tables, 1, types, true);
	if (tables->has_lease)
		unleased_plan = prepare_kept(unleased_sql, tables, 2, unleased_types, true);
	first_plan = prepare_kept(first_sql, tables, 7, types, true);
	batch_plan = prepare_kept(batch_sql, tables, 4, types, false);
	plan_key = MemoryContextStrdup(TopMemoryContext, key);
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

/* Log one job a batch failed, from columns id .. id + 3 */
static void
log_failed(HeapTuple tuple, int id_col, const char *message)
{
	ereport(LOG,
			(errmsg("Reaper failed stale job %s.", spi_text(tuple, id_col)),
			 errdetail("operation %s, started_at %s, last job_event %s; %s.",
					   spi_text(tuple, id_col + 1), spi_text(tuple, id_col + 2),
					   spi_text(tuple, id_col + 3), message)));
}

/* The level of "Reaper skipped live job." */
#define ALIVE_LOG_LEVEL (reaper_log_skipped ? LOG : DEBUG1)

/*
 * Log one job past the timeout kept alive by its lease or a recent event,
 * from a row of first_sql.
 */
static void
log_alive(HeapTuple tuple)
{
	bool		leased = SPI_getvalue(tuple, SPI_tuptable->tupdesc,
									  FIRST_LEASED_UNTIL) != NULL;

	if (leased)
		ereport(ALIVE_LOG_LEVEL,
				(errmsg("Reaper skipped live job."),
				 errdetail("job %s, operation %s, started_at %s, is leased until %s.",
						   spi_text(tuple, FIRST_ID), spi_text(tuple, FIRST_OPERATION),
						   spi_text(tuple, FIRST_STARTED_AT),
						   spi_text(tuple, FIRST_LEASED_UNTIL))));
	else
		ereport(ALIVE_LOG_LEVEL,
				(errmsg("Reaper skipped live job."),
				 errdetail("job %s, operation %s, started_at %s, last job_event %s is within stall_seconds=%d.",
						   spi_text(tuple, FIRST_ID), spi_text(tuple, FIRST_OPERATION),
						   spi_text(tuple, FIRST_STARTED_AT),
						   spi_text(tuple, FIRST_LAST_EVENT),
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
		log_failed(SPI_tuptable->vals[i], BATCH_ID, message);
	return reaped;
}

/*
 * all_leased
 *		Whether every one of the n jobs ids (past the timeout, not known
 *		alive) that is still a candidate holds a lease now.
 */
static bool
all_leased(Datum *values, Datum *ids, int n)
{
	Datum		args[2];
	int			ret;

	args[0] = values[0];
	args[1] = PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN,
											  false, TYPALIGN_CHAR));
	ret = SPI_execute_plan(unleased_plan, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper sweep failed: %s", SPI_result_code_string(ret));
	return SPI_processed == 0;
}

/*
 * all_known_alive
 *		The idle sweep: when every job past the timeout is known alive or
 *		leased, nothing can be stale, so they are counted from one scan of
 *		their ids (and one look at the leases of those not known), without
 *		the first statement's lookups, joins and writes.  Returns false,
 *		having done nothing the caller sees, as soon as one job is neither,
 *		or when their log lines are wanted (the first statement returns what
 *		those lines show).
 */
static bool
all_known_alive(const ReaperTables *tables, Datum *values, const char *nulls,
				uint64 *alive)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum	   *unknown;
	int			n_unknown = 0;
	uint64		candidates;
	int			ret;

	/* then only the first statement can answer: do not scan twice */
	if ((known_alive_is_empty() && !tables->has_lease) ||
		message_level_is_interesting(ALIVE_LOG_LEVEL))
		return false;

	ret = SPI_execute_plan(candidates_plan, values, nulls, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper sweep failed: %s", SPI_result_code_string(ret));

	candidates = SPI_processed;
	unknown = palloc(Max(candidates, 1) * sizeof(Datum));
	for (uint64 i = 0; i < candidates; i++)
	{
		bool		isnull;
		Datum		id = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									   1, &isnull);

		if (known_alive_lookup(DatumGetUUIDP(id), now, reaper_stall_seconds))
			continue;
		if (!tables->has_lease)
			return false;
		unknown[n_unknown++] = id;
	}

	if (n_unknown > 0 && !all_leased(values, unknown, n_unknown))
		return false;

	*alive = candidates;
	return true;
}

/*
 * run_first_batch
 *		The first batch: fail and log at most batch_size stale jobs, count
 *		(and log) the live ones into *alive, skipping the lookup of those
 *		leased or known alive, and remember the ones newly seen alive.
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
		bool		leased;
		Datum		kind = SPI_getbinval(tuple, tupdesc, FIRST_KIND, &isnull);

		if (isnull)
		{
			/* the count of known alive jobs whose rows were left out */
			*alive += DatumGetInt64(SPI_getbinval(tuple, tupdesc,
												  FIRST_KNOWN_ALIVE, &isnull));
			continue;
		}
		if (DatumGetBool(kind))
		{
			log_failed(tuple, FIRST_ID, message);
			reaped++;
			continue;
		}

		log_alive(tuple);
		(*alive)++;
		(void) SPI_getbinval(tuple, tupdesc, FIRST_LEASED_UNTIL, &isnull);
		leased = !isnull;
		/* a lease is read again each sweep: only an event is remembered */
		if (learn && !leased)
		{
			Datum		id = SPI_getbinval(tuple, tupdesc, FIRST_ID, &isnull);
			Datum		last_event = SPI_getbinval(tuple, tupdesc,
												   FIRST_LAST_EVENT, &isnull);

			/* an alive job that is not leased has a last event */
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
 *		also counts (and logs) the jobs past the timeout that a lease or a
 *		recent event keeps alive, from the same scan; later batches pass
 *		NULL.
 */
uint64
reaper_sweep_batch(uint64 *alive)
{
	ReaperTables tables;
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	char	   *message;
	uint64		reaped;

	connect_spi();
	ensure_plans(&tables);

	message = timeout_message();
	values[0] = Int32GetDatum(reaper_timeout_seconds);
	values[1] = Int32GetDatum(reaper_stall_seconds);
	values[2] = Int32GetDatum(reaper_batch_size);
	values[3] = CStringGetTextDatum(message);

	if (alive == NULL)
		reaped = run_later_batch(values, nulls, message);
	else if (all_known_alive(&tables, values, nulls, alive))
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

/* A job id as text, for messages */
static char *
uuid_text(Datum job_id)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, job_id));
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
	HeapTuple	row;
	char	   *old_status;
	char	   *new_status;
	int			ret;

	connect_spi();
	reaper_resolve_tables(&tables);

	/* Rare and interactive: prepared per call, never kept */
	plan = SPI_prepare(reaper_expand_sql(fail_job_sql, &tables), 3, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for protea_reaper_fail_job: %s",
			 SPI_result_code_string(SPI_result));

	values[0] = job_id;
	values[1] = CStringGetTextDatum(psprintf("Job failed by operator: %s", reason));
	values[2] = CStringGetTextDatum(reason);

	ret = SPI_execute_plan(plan, values, nulls, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper_fail_job failed: %s", SPI_result_code_string(ret));

	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("job %s does not exist", uuid_text(job_id)),
				 errdetail("No row of %s has that id.", tables.job_name)));

	row = SPI_tuptable->vals[0];
	old_status = spi_text(row, 1);
	new_status = SPI_getvalue(row, SPI_tuptable->tupdesc, 2);
	if (new_status != NULL)
		ereport(LOG,
				(errmsg("Operator failed job %s.", uuid_text(job_id)),
				 errdetail("status %s -> %s; reason: %s", old_status, new_status, reason)));
	else
		ereport(NOTICE,
				(errmsg("job %s was not failed: its status is %s",
						uuid_text(job_id), old_status),
				 tables.queued_label != NULL ?
				 errdetail("Only a %s or %s job can be failed; a job that has ended is left as it is.",
						   tables.queued_label, tables.running_label) :
				 errdetail("Only a %s job can be failed; a job that has ended is left as it is.",
						   tables.running_label)));

	SPI_finish();
	return new_status != NULL;
}

/*
 * reaper_list_running
 *		Every running job with its start, its last event, its lease and the
 *		verdict a sweep would reach now: stale, alive, leased, young or
 *		"no started_at".
 */
void
reaper_list_running(Tuplestorestate *tupstore, TupleDesc tupdesc)
{
	ReaperTables tables;
	SPIPlanPtr	plan;
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];
	int			ret;

	/* a definition from another version of the install script */
	if (tupdesc->natts != LIST_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("protea_reaper_running_jobs() returns %d columns, the library %d",
						tupdesc->natts, LIST_COLUMNS),
				 errhint("Run ALTER EXTENSION protea_reaper UPDATE.")));

	connect_spi();
	reaper_resolve_tables(&tables);

	plan = SPI_prepare(reaper_expand_sql(list_sql, &tables), 2, types);
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
		Datum		row[LIST_COLUMNS];
		bool		isnull[LIST_COLUMNS];

		for (int col = 0; col < LIST_COLUMNS; col++)
			row[col] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									 col + 1, &isnull[col]);
		tuplestore_putvalues(tupstore, tupdesc, row, isnull);
	}

	SPI_finish();
}

/* Every statement on PROTEA's tables, by name, for protea_reaper_statements() */
static const struct
{
	const char *name;
	const char *const *template;
}			statements[] = {
	{"candidates", &candidates_sql},
	{"unleased", &unleased_sql},
	{"first_batch", &first_sql},
	{"later_batch", &batch_sql},
	{"running_jobs", &list_sql},
	{"fail_job", &fail_job_sql},
};

/*
 * reaper_list_statements
 *		Each statement as it is prepared for the tables the settings name now
 *		(with their labels and lease), so that it can be EXPLAINed as it runs.
 */
void
reaper_list_statements(Tuplestorestate *tupstore, TupleDesc tupdesc)
{
	ReaperTables tables;

	reaper_resolve_tables(&tables);
	for (int i = 0; i < lengthof(statements); i++)
	{
		Datum		row[2];
		bool		isnull[2] = {false, false};

		row[0] = CStringGetTextDatum(statements[i].name);
		row[1] = CStringGetTextDatum(reaper_expand_sql(*statements[i].template, &tables));
		tuplestore_putvalues(tupstore, tupdesc, row, isnull);
	}
}
