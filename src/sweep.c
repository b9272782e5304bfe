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
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "known_alive.h"
#include "reaplog.h"
#include "settings.h"
#include "sweep.h"
#include "tables.h"

/* Stale jobs a sweep left that are logged one by one (with log_skipped) */
#define REMAINING_IDS 100

/* Plans kept for the life of the backend, and what they were made from */
static SPIPlanPtr candidates_plan = NULL;
static SPIPlanPtr unleased_plan = NULL;
static SPIPlanPtr remaining_plan = NULL;
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

/* A lease keeps job j alive */
#define NOT_LEASED \
	"@LEASED@ IS NOT TRUE"

/* Job j's newest job_event, as le.last_ts (NULL if none); cond: extra filter */
#define LAST_EVENT(cond) \
	"LEFT JOIN LATERAL (SELECT e.ts AS last_ts FROM @EVENT@ AS e" \
	"                    WHERE e.job_id = j.id" cond \
	"                    ORDER BY e.ts DESC LIMIT 1) AS le ON true"

/* Job j, with its last event le.last_ts, is stale: the README's rule */
#define IS_STALE \
	PAST_TIMEOUT \
	" AND " NOT_LEASED \
	" AND " RECENT_EVENT("le.last_ts") " IS NOT TRUE"

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
"   WHERE " IS_STALE
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
 * (kind false), then one row of kind NULL with counts: the candidates
 * judged stale, and (when $7 is false, so that their log lines would not
 * be written) the alive jobs already known, which are then not returned.
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
LAST_EVENT(" AND k.id IS NULL AND " NOT_LEASED)
"   WHERE " PAST_TIMEOUT
"), stale AS ("
"  SELECT j.id, c.last_ts"
"    FROM candidates AS c JOIN @JOB@ AS j ON j.id = c.id"
"   WHERE c.alive IS NOT TRUE"
"     AND " PAST_TIMEOUT
"     AND " NOT_LEASED
"   LIMIT $3"
"   FOR UPDATE OF j SKIP LOCKED"
"), " FAIL_AND_AUDIT
"SELECT true AS failed, f.id, f.operation, f.started_at, f.last_ts,"
"       NULL::timestamptz AS leased_until, NULL::bigint AS known_alive,"
"       NULL::bigint AS judged_stale"
"  FROM failed AS f"
" UNION ALL "
"SELECT false, c.id, c.operation, c.started_at, c.last_ts, c.leased_until, NULL, NULL"
"  FROM candidates AS c"
" WHERE c.alive AND (NOT c.known OR $7)"
" UNION ALL "
"SELECT NULL, NULL, NULL, NULL, NULL, NULL,"
"       count(*) FILTER (WHERE c.alive AND c.known AND NOT $7),"
"       count(*) FILTER (WHERE c.alive IS NOT TRUE)"
"  FROM candidates AS c"
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
	FIRST_KNOWN_ALIVE,			/* counts: the known alive jobs left out, */
	FIRST_JUDGED_STALE			/* and the candidates judged stale */
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
" WHERE j.id = ANY ($2::uuid[]) AND " PAST_TIMEOUT " AND " NOT_LEASED
" LIMIT 1";

/*
 * The stale jobs a sweep left: locked by another transaction (SKIP LOCKED),
 * or beyond the brake.  Their count, and the first ids.  $1, $2 as above.
 */
static const char *const remaining_sql =
"SELECT count(*), (array_agg(j.id ORDER BY j.started_at, j.id))[1:" CppAsString2(REMAINING_IDS) "]"
"  FROM @JOB@ AS j "
LAST_EVENT("")
" WHERE " IS_STALE;

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
 *		just resolved.  Resolution runs at every batch (catalog cache
 *		lookups only) so that a changed setting, a dropped table or a
 *		renamed label is noticed at once.
 */
static void
ensure_plans(const ReaperTables *tables)
{
	Oid			types[7] = {INT4OID, INT4OID, INT4OID, TEXTOID,
		UUIDARRAYOID, TIMESTAMPTZARRAYOID, BOOLOID};
	Oid			unleased_types[2] = {INT4OID, UUIDARRAYOID};
	char	   *key;

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
	free_kept(&remaining_plan);
	if (plan_key != NULL)
		pfree(plan_key);
	plan_key = NULL;

	candidates_plan = prepare_kept(candidates_sql, tables, 1, types, true);
	if (tables->has_lease)
		unleased_plan = prepare_kept(unleased_sql, tables, 2, unleased_types, true);
	first_plan = prepare_kept(first_sql, tables, 7, types, true);
	batch_plan = prepare_kept(batch_sql, tables, 4, types, false);
	remaining_plan = prepare_kept(remaining_sql, tables, 2, types, false);
	plan_key = MemoryContextStrdup(TopMemoryContext, key);
}

/* Who the session was before it acted as the tables' owner */
typedef struct ReaperActingAs
{
	Oid			userid;
	int			sec_context;
	int			guc_nestlevel;
} ReaperActingAs;

/*
 * act_as_owner
 *		Run what follows as the job table's owner, in a security-restricted
 *		operation with a safe search_path, as VACUUM and REFRESH
 *		MATERIALIZED VIEW do: code the owner attached to the tables
 *		(triggers, defaults, index expressions) then runs with the owner's
 *		rights and no more, whoever sweeps.  The session must be able to act
 *		as the owner already (a superuser, or a member of the owner role).
 */
static void
act_as_owner(const ReaperTables *tables, ReaperActingAs *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	if (!has_privs_of_role(saved->userid, tables->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" cannot reap as \"%s\", the owner of %s",
						GetUserNameFromId(saved->userid, false),
						GetUserNameFromId(tables->owner, false), tables->job_name),
				 errdetail("The reaper writes PROTEA's tables as their owner, so that code attached to them never runs with more rights than the owner has."),
				 errhint("GRANT %s TO %s, or leave protea_reaper.role empty so that the worker runs as the bootstrap superuser.",
						 quote_identifier(GetUserNameFromId(tables->owner, false)),
						 quote_identifier(GetUserNameFromId(saved->userid, false)))));

	SetUserIdAndSecContext(tables->owner,
						   saved->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	saved->guc_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

/* Back to the session's own identity and settings */
static void
act_as_self(const ReaperActingAs *saved)
{
	AtEOXact_GUC(false, saved->guc_nestlevel);
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * execute
 *		Run a kept plan.  In the worker, protea_reaper.statement_timeout
 *		bounds it: the server arms statement_timeout only for a client's
 *		query, so the worker arms it itself (and disarms it after an error,
 *		see worker.c).
 */
static void
execute(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only)
{
	bool		timed = protea_am_background_worker() && reaper_statement_timeout_ms > 0;
	int			ret;

	if (timed)
		enable_timeout_after(STATEMENT_TIMEOUT, reaper_statement_timeout_ms);
	ret = SPI_execute_plan(plan, values, nulls, read_only, 0);
	if (timed)
		disable_timeout(STATEMENT_TIMEOUT, false);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper sweep failed: %s", SPI_result_code_string(ret));
}

/* The error_message of a job the sweep fails */
static char *
timeout_message(void)
{
	/* a job younger than the stall window may simply never have been heard from */
	if (reaper_stall_seconds >= reaper_timeout_seconds)
		return psprintf("Job stalled: no activity in %ds or since it started (started >%ds ago)",
						reaper_stall_seconds, reaper_timeout_seconds);
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

/* Queue the line of one job a batch failed, from columns id .. id + 3 */
static void
log_failed(ReaperSweepResult *result, HeapTuple tuple, int id_col,
		   const char *message)
{
	result->pending++;
	if (!reaplog_failed_job(spi_text(tuple, id_col), spi_text(tuple, id_col + 1),
							spi_text(tuple, id_col + 2), spi_text(tuple, id_col + 3),
							message))
		result->pending_unlogged++;
}

/* The level of "Reaper skipped live job." and "Reaper skipped locked job." */
#define SKIPPED_LOG_LEVEL (reaper_log_skipped ? LOG : DEBUG1)

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
		ereport(SKIPPED_LOG_LEVEL,
				(errmsg("Reaper skipped live job."),
				 errdetail("job %s, operation %s, started_at %s, is leased until %s.",
						   spi_text(tuple, FIRST_ID), spi_text(tuple, FIRST_OPERATION),
						   spi_text(tuple, FIRST_STARTED_AT),
						   spi_text(tuple, FIRST_LEASED_UNTIL))));
	else
		ereport(SKIPPED_LOG_LEVEL,
				(errmsg("Reaper skipped live job."),
				 errdetail("job %s, operation %s, started_at %s, last job_event %s is within stall_seconds=%d.",
						   spi_text(tuple, FIRST_ID), spi_text(tuple, FIRST_OPERATION),
						   spi_text(tuple, FIRST_STARTED_AT),
						   spi_text(tuple, FIRST_LAST_EVENT),
						   reaper_stall_seconds)));
}

/*
 * run_later_batch
 *		A batch after the first: fail at most limit stale jobs.
 */
static uint64
run_later_batch(ReaperSweepResult *result, Datum *values, const char *nulls,
				const char *message)
{
	execute(batch_plan, values, nulls, false);
	for (uint64 i = 0; i < SPI_processed; i++)
		log_failed(result, SPI_tuptable->vals[i], BATCH_ID, message);
	return SPI_processed;
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

	args[0] = values[0];
	args[1] = PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN,
											  false, TYPALIGN_CHAR));
	execute(unleased_plan, args, NULL, true);
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
				ReaperSweepResult *result)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum	   *unknown;
	int			n_unknown = 0;
	uint64		candidates;

	/* then only the first statement can answer: do not scan twice */
	if ((known_alive_is_empty() && !tables->has_lease) ||
		message_level_is_interesting(SKIPPED_LOG_LEVEL))
		return false;

	execute(candidates_plan, values, nulls, true);
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

	result->alive = candidates;
	return true;
}

/*
 * run_first_batch
 *		The first batch: fail at most limit stale jobs, count (and log) the
 *		live ones, skipping the lookup of those leased or known alive, and
 *		remember the ones newly seen alive.
 */
static uint64
run_first_batch(ReaperSweepResult *result, Datum *values, const char *nulls,
				const char *message)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	uint64		reaped = 0;
	bool		learn;

	/* now() is the transaction's start, as in the statement */
	known_alive_current(now, reaper_stall_seconds, &values[4], &values[5]);
	values[6] = BoolGetDatum(message_level_is_interesting(SKIPPED_LOG_LEVEL));

	/*
	 * Learn only while this transaction has written nothing: its snapshot
	 * then shows committed events only.  An event the caller inserted and
	 * may yet roll back must not keep a job from being failed later.
	 */
	learn = reaper_remember_alive &&
		!TransactionIdIsValid(GetTopTransactionIdIfAny());

	execute(first_plan, values, nulls, false);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		kind = SPI_getbinval(tuple, tupdesc, FIRST_KIND, &isnull);
		Datum		last_event;

		if (isnull)
		{
			result->alive += DatumGetInt64(SPI_getbinval(tuple, tupdesc,
														 FIRST_KNOWN_ALIVE, &isnull));
			result->judged_stale = DatumGetInt64(SPI_getbinval(tuple, tupdesc,
															   FIRST_JUDGED_STALE,
															   &isnull));
			continue;
		}
		if (DatumGetBool(kind))
		{
			log_failed(result, tuple, FIRST_ID, message);
			reaped++;
			continue;
		}

		log_alive(tuple);
		result->alive++;

		/*
		 * Remember the last event of a job an event keeps alive; a lease is
		 * read again at each sweep, and an event dated after now (a writer's
		 * clock ahead of the database's) is never trusted to last.
		 */
		(void) SPI_getbinval(tuple, tupdesc, FIRST_LEASED_UNTIL, &isnull);
		if (!learn || !isnull)
			continue;
		last_event = SPI_getbinval(tuple, tupdesc, FIRST_LAST_EVENT, &isnull);
		if (!isnull && DatumGetTimestampTz(last_event) <= now)
			known_alive_learn(DatumGetUUIDP(SPI_getbinval(tuple, tupdesc, FIRST_ID, &isnull)),
							  DatumGetTimestampTz(last_event));
	}
	return reaped;
}

/*
 * sweep_batch
 *		One batch: fail at most limit stale jobs with one statement, as the
 *		tables' owner, and return how many.  The first batch of a sweep also
 *		counts (and logs) the jobs past the timeout that a lease or a recent
 *		event keeps alive, from the same scan.
 */
static uint64
sweep_batch(ReaperSweepResult *result, bool first, uint64 limit)
{
	ReaperTables tables;
	ReaperActingAs saved;
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	char	   *message;
	uint64		reaped;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "protea_reaper could not connect to SPI");
	reaper_resolve_tables(&tables);
	reaper_check_event_index(&tables);
	act_as_owner(&tables, &saved);
	ensure_plans(&tables);

	message = timeout_message();
	values[0] = Int32GetDatum(reaper_timeout_seconds);
	values[1] = Int32GetDatum(reaper_stall_seconds);
	values[2] = Int32GetDatum((int32) limit);
	values[3] = CStringGetTextDatum(message);

	if (!first)
		reaped = run_later_batch(result, values, nulls, message);
	else if (all_known_alive(&tables, values, nulls, result))
		reaped = 0;
	else
		reaped = run_first_batch(result, values, nulls, message);

	act_as_self(&saved);
	SPI_finish();
	return reaped;
}

/*
 * count_remaining
 *		The stale jobs the sweep left, when it left some: beyond the brake
 *		(waiting), or held by another transaction (skipped_locked, each
 *		logged with log_skipped).
 */
static void
count_remaining(ReaperSweepResult *result)
{
	ReaperTables tables;
	ReaperActingAs saved;
	Datum		values[2];
	bool		isnull;
	uint64		remaining;
	Datum		ids;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "protea_reaper could not connect to SPI");
	reaper_resolve_tables(&tables);
	act_as_owner(&tables, &saved);
	ensure_plans(&tables);

	values[0] = Int32GetDatum(reaper_timeout_seconds);
	values[1] = Int32GetDatum(reaper_stall_seconds);
	/* not read-only: it must see the failures this transaction just wrote */
	execute(remaining_plan, values, NULL, false);
	remaining = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
	ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

	if (result->braked)
		result->waiting = remaining;
	else
	{
		result->skipped_locked = remaining;
		if (!isnull && message_level_is_interesting(SKIPPED_LOG_LEVEL))
		{
			ArrayType  *array = DatumGetArrayTypeP(ids);
			Datum	   *elems;
			int			n;

			deconstruct_array(array, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
							  &elems, NULL, &n);
			for (int i = 0; i < n; i++)
				ereport(SKIPPED_LOG_LEVEL,
						(errmsg("Reaper skipped locked job %s.",
								DatumGetCString(DirectFunctionCall1(uuid_out, elems[i]))),
						 errdetail("It is stale, but another transaction (its worker, or another sweep) holds its row; a later sweep judges it again.")));
		}
	}

	act_as_self(&saved);
	SPI_finish();
}

/*
 * reaper_sweep_ended_batch
 *		The caller ended (committed) the batch just run: its failures count.
 */
void
reaper_sweep_ended_batch(ReaperSweepResult *result)
{
	result->reaped += result->pending;
	result->unlogged += result->pending_unlogged;
	result->pending = result->pending_unlogged = 0;
}

/*
 * reaper_sweep
 *		A whole sweep: the only batch loop.  Batches run until one comes back
 *		short; between two, the worker's hooks end the batch and say whether
 *		to go on, and a sweep stops once it has failed hooks->max_jobs jobs
 *		(the worker's brake).  Without hooks
 *		every batch runs in the caller's transaction: SPI starts each with a
 *		new command, so it sees the previous batches' updates and no job is
 *		failed twice.  The last batch is left for the caller to end.
 */
void
reaper_sweep(ReaperSweepResult *result, const ReaperSweepHooks *hooks)
{
	uint64		max_jobs = hooks ? hooks->max_jobs : 0;
	uint64		limit;
	uint64		batch;
	bool		first = true;

	memset(result, 0, sizeof(ReaperSweepResult));
	reaplog_start_sweep();

	for (;;)
	{
		uint64		done = result->reaped + result->pending;

		limit = (uint64) reaper_batch_size;
		if (max_jobs > 0)
			limit = Min(limit, max_jobs - done);
		batch = sweep_batch(result, first, limit);
		first = false;
		if (batch < limit)
			break;
		if (max_jobs > 0 && result->reaped + result->pending >= max_jobs)
		{
			result->braked = true;
			break;
		}
		CHECK_FOR_INTERRUPTS();
		if (hooks != NULL)
		{
			hooks->end_batch();
			reaper_sweep_ended_batch(result);
			if (!hooks->next_batch())
				return;
		}
	}

	if (result->braked ||
		result->judged_stale > result->reaped + result->pending)
		count_remaining(result);
}

/* What a summary line says besides the count */
static char *
summary_detail(const ReaperSweepResult *result, uint64 reaped, uint64 unlogged)
{
	StringInfoData detail;

	initStringInfo(&detail);
	appendStringInfo(&detail, "timeout_seconds=%d, stall_seconds=%d; " UINT64_FORMAT " live job(s) past the timeout left alone",
					 reaper_timeout_seconds, reaper_stall_seconds, result->alive);
	if (result->skipped_locked > 0)
		appendStringInfo(&detail, "; " UINT64_FORMAT " stale job(s) skipped_locked: another transaction holds their rows",
						 result->skipped_locked);
	if (unlogged > 0)
		appendStringInfo(&detail, "; " UINT64_FORMAT " of the " UINT64_FORMAT " failed job(s) not logged one by one (at most %d lines a sweep)",
						 unlogged, reaped, REAPLOG_MAX_JOB_LINES);
	appendStringInfoChar(&detail, '.');
	return detail.data;
}

/* The brake engaged: say how many wait, and what to do */
static void
brake_warning(const ReaperSweepResult *result)
{
	ereport(WARNING,
			(errmsg("Reaper stopped this cycle after failing " UINT64_FORMAT " job(s) (protea_reaper.max_jobs_per_cycle = %d).",
					result->reaped, reaper_max_jobs_per_cycle),
			 errdetail(UINT64_FORMAT " more stale job(s) wait under timeout_seconds=%d, stall_seconds=%d.",
					   result->waiting, reaper_timeout_seconds, reaper_stall_seconds),
			 errhint("If these thresholds are right, the next cycles go on at this pace (raise protea_reaper.max_jobs_per_cycle to go faster, or run SELECT protea_reaper_run_once()); if they are wrong, correct them and reload, or set protea_reaper.enabled = off.")));
}

/*
 * reaper_sweep_report
 *		The summary line operators grep for, of the batches that ended, and
 *		the brake's WARNING.
 */
void
reaper_sweep_report(const ReaperSweepResult *result)
{
	char	   *detail = summary_detail(result, result->reaped, result->unlogged);

	if (result->reaped > 0)
		ereport(LOG,
				(errmsg("Reaped " UINT64_FORMAT " stale job(s).", result->reaped),
				 errdetail_internal("%s", detail)));
	else if (result->skipped_locked > 0)
		ereport(LOG,
				(errmsg("Reaper skipped " UINT64_FORMAT " locked stale job(s).",
						result->skipped_locked),
				 errdetail_internal("%s", detail)));
	if (result->braked)
		brake_warning(result);
}

/*
 * reaper_sweep_report_at_commit
 *		The summary line of a sweep in its caller's transaction, written
 *		when (if) that transaction commits.
 */
void
reaper_sweep_report_at_commit(const ReaperSweepResult *result)
{
	uint64		reaped = result->reaped + result->pending;
	char	   *detail = summary_detail(result, reaped,
										result->unlogged + result->pending_unlogged);

	if (reaped > 0)
		reaplog_at_commit(LOG, psprintf("Reaped " UINT64_FORMAT " stale job(s).", reaped),
						  detail);
	else if (result->skipped_locked > 0)
		ereport(LOG,
				(errmsg("Reaper skipped " UINT64_FORMAT " locked stale job(s).",
						result->skipped_locked),
				 errdetail_internal("%s", detail)));
}

/* A job id as text, for messages */
static char *
uuid_text(Datum job_id)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, job_id));
}

/*
 * run_fail_job
 *		Run the manual fail, waiting at most protea_reaper.lock_timeout for
 *		the job's row: a row held by its worker is a clear error, not a hang.
 */
static void
run_fail_job(SPIPlanPtr plan, Datum *values, Datum job_id)
{
	MemoryContext cxt = CurrentMemoryContext;
	char		buf[32];
	int			ret;

	snprintf(buf, sizeof(buf), "%d", reaper_lock_timeout_ms);
	(void) set_config_option("lock_timeout", buf, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		ret = SPI_execute_plan(plan, values, NULL, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "protea_reaper_fail_job failed: %s", SPI_result_code_string(ret));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("job %s is locked by another transaction", uuid_text(job_id)),
				 errdetail("Its worker, or a sweep, holds its row; protea_reaper_fail_job waited protea_reaper.lock_timeout = %d ms.",
						   reaper_lock_timeout_ms),
				 errhint("Try again once that transaction ends (pg_locks and pg_stat_activity show it), or end it first.")));
	}
	PG_END_TRY();
}

/*
 * reaper_fail_job
 *		Fail one job by hand (error_code 'ManualTimeout') with one audit
 *		event, as the tables' owner.  Raises an ERROR when no such job
 *		exists; returns false, with a NOTICE, when the job had already
 *		ended, since a finished job is never rewritten.
 */
bool
reaper_fail_job(Datum job_id, const char *reason)
{
	ReaperTables tables;
	ReaperActingAs saved;
	SPIPlanPtr	plan;
	Oid			types[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		values[3];
	HeapTuple	row;
	char	   *old_status;
	char	   *new_status;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "protea_reaper could not connect to SPI");
	reaper_resolve_tables(&tables);
	act_as_owner(&tables, &saved);

	/* Rare and interactive: prepared per call, never kept */
	plan = SPI_prepare(reaper_expand_sql(fail_job_sql, &tables), 3, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for protea_reaper_fail_job: %s",
			 SPI_result_code_string(SPI_result));

	values[0] = job_id;
	values[1] = CStringGetTextDatum(psprintf("Job failed by operator: %s", reason));
	values[2] = CStringGetTextDatum(reason);
	run_fail_job(plan, values, job_id);

	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("job %s does not exist", uuid_text(job_id)),
				 errdetail("No row of %s has that id.", tables.job_name)));

	row = SPI_tuptable->vals[0];
	old_status = spi_text(row, 1);
	new_status = SPI_getvalue(row, SPI_tuptable->tupdesc, 2);
	if (new_status != NULL)
		reaplog_at_commit(LOG,
						  psprintf("Operator failed job %s.", uuid_text(job_id)),
						  psprintf("status %s -> %s; reason: %s", old_status,
								   new_status, reason));
	else
		ereport(NOTICE,
				(errmsg("job %s was not failed: its status is %s",
						uuid_text(job_id), old_status),
				 tables.queued_label != NULL ?
				 errdetail("Only a %s or %s job can be failed; a job that has ended is left as it is.",
						   tables.queued_label, tables.running_label) :
				 errdetail("Only a %s job can be failed; a job that has ended is left as it is.",
						   tables.running_label)));

	act_as_self(&saved);
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
	ReaperActingAs saved;
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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "protea_reaper could not connect to SPI");
	reaper_resolve_tables(&tables);
	reaper_check_event_index(&tables);
	act_as_owner(&tables, &saved);

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

	act_as_self(&saved);
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
	{"remaining", &remaining_sql},
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
