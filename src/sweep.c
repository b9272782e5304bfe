/*-------------------------------------------------------------------------
 *
 * sweep.c
 *	  The sweep: finds stale PROTEA jobs and fails them, batch by batch.
 *
 * A job is stale when it is running, started longer than timeout_seconds
 * ago, holds no lease in the future (where the job table has leased_until),
 * and has no job_event newer than stall_seconds, all judged by the
 * database's clock (now()), with its operation's thresholds (policy.c); a
 * job past its runtime cap is failed whatever its events and lease, and an
 * exempt operation's never.  Failing it sets status, finished_at,
 * error_code and error_message and appends exactly one 'job.timeout'
 * audit event, in one statement (statements.c holds the rules and the SQL).
 *
 * reaper_sweep() is the only batch loop: the worker passes what it does
 * between two batches (commit, and the checks that keep a backlog
 * stoppable) and its brake; a manual sweep passes nothing and runs every
 * batch in its caller's transaction.  An idle sweep is the first batch's
 * one statement, which looks up no event of a leased job.  Failures are
 * logged, and notified (notify.c), only once they commit (reaplog.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "notify.h"
#include "plans.h"
#include "policy.h"
#include "reaplog.h"
#include "settings.h"
#include "sweep.h"

/* The level of "Reaper skipped live job." and "Reaper skipped locked job." */
#define SKIPPED_LOG_LEVEL (reaper_log_skipped ? LOG : DEBUG1)

/* A column of the current SPI result as text, "none" for NULL */
static char *
spi_text(HeapTuple tuple, int col)
{
	char	   *value = SPI_getvalue(tuple, SPI_tuptable->tupdesc, col);

	return value ? value : "none";
}

/* A column of the current SPI result */
static Datum
spi_datum(HeapTuple tuple, int col, bool *isnull)
{
	return SPI_getbinval(tuple, SPI_tuptable->tupdesc, col, isnull);
}

/* A boolean column of a batch's row, by BatchColumn, from id_col on */
static bool
batch_bool(HeapTuple tuple, int id_col, BatchColumn col)
{
	bool		isnull;
	Datum		value = spi_datum(tuple, id_col + col - BATCH_ID, &isnull);

	return !isnull && DatumGetBool(value);
}

/* A column of a batch's row as text, by BatchColumn, from id_col on */
#define BATCH_TEXT(tuple, id_col, col) spi_text(tuple, (id_col) + (col) - BATCH_ID)

/*
 * Count one job a batch failed or re-queued, queue its line and its
 * notification, from the columns id_col onwards (BatchColumn's order)
 */
static void
log_failed(ReaperSweepResult *result, HeapTuple tuple, int id_col)
{
	const char *id = BATCH_TEXT(tuple, id_col, BATCH_ID);
	bool		logged;

	result->pending++;
	if (batch_bool(tuple, id_col, BATCH_REQUEUE))
	{
		char	   *queue = SPI_getvalue(tuple, SPI_tuptable->tupdesc,
										 id_col + BATCH_QUEUE - BATCH_ID);

		result->pending_requeued++;
		reaper_notify_requeued(id, queue);
		logged = reaplog_requeued_job(id, BATCH_TEXT(tuple, id_col, BATCH_OPERATION),
									  BATCH_TEXT(tuple, id_col, BATCH_STARTED_AT),
									  BATCH_TEXT(tuple, id_col, BATCH_LAST_EVENT),
									  BATCH_TEXT(tuple, id_col, BATCH_PRIOR_REQUEUES),
									  BATCH_TEXT(tuple, id_col, BATCH_MAX_REQUEUES),
									  queue ? queue : "none");
	}
	else
	{
		ReaperNotifyCause cause = NOTIFY_STALLED;

		if (batch_bool(tuple, id_col, BATCH_LEASE))
		{
			cause = NOTIFY_LEASE_EXPIRED;
			result->pending_lease_expired++;
		}
		else if (batch_bool(tuple, id_col, BATCH_CAPPED))
		{
			cause = NOTIFY_CAPPED;
			result->pending_capped++;
		}
		reaper_notify_job(id, cause);
		logged = reaplog_failed_job(id, BATCH_TEXT(tuple, id_col, BATCH_OPERATION),
									BATCH_TEXT(tuple, id_col, BATCH_STARTED_AT),
									BATCH_TEXT(tuple, id_col, BATCH_LAST_EVENT),
									BATCH_TEXT(tuple, id_col, BATCH_MESSAGE));
	}
	if (!logged)
		result->pending_unlogged++;
}

/* Log one job past the timeout that its lease or a recent event keeps alive */
static void
log_alive(HeapTuple tuple)
{
	if (SPI_getvalue(tuple, SPI_tuptable->tupdesc, FIRST_LEASED_UNTIL) != NULL)
		ereport(SKIPPED_LOG_LEVEL,
				(errmsg("Reaper skipped live job."),
				 errdetail("job %s, operation %s, started_at %s, is leased until %s.",
						   spi_text(tuple, FIRST_ID),
						   reaper_log_text(spi_text(tuple, FIRST_COLUMN(BATCH_OPERATION))),
						   spi_text(tuple, FIRST_COLUMN(BATCH_STARTED_AT)),
						   spi_text(tuple, FIRST_LEASED_UNTIL))));
	else
		ereport(SKIPPED_LOG_LEVEL,
				(errmsg("Reaper skipped live job."),
				 errdetail("job %s, operation %s, started_at %s, last job_event %s is within stall_seconds=%s.",
						   spi_text(tuple, FIRST_ID),
						   reaper_log_text(spi_text(tuple, FIRST_COLUMN(BATCH_OPERATION))),
						   spi_text(tuple, FIRST_COLUMN(BATCH_STARTED_AT)),
						   spi_text(tuple, FIRST_COLUMN(BATCH_LAST_EVENT)),
						   spi_text(tuple, FIRST_STALL))));
}

/*
 * run_later_batch
 *		A batch after the first: fail at most limit stale jobs.
 */
static uint64
run_later_batch(ReaperSession *session, ReaperSweepResult *result, Datum *values)
{
	reaper_execute(reaper_plan(session, STMT_LATER_BATCH), values, NULL, false);
	for (uint64 i = 0; i < SPI_processed; i++)
		log_failed(result, SPI_tuptable->vals[i], BATCH_ID);
	return SPI_processed;
}

/*
 * first_batch_row
 *		One row of the first statement: a failed job, an alive one (to be
 *		logged), or the counts.
 */
static void
first_batch_row(ReaperSweepResult *result, HeapTuple tuple)
{
	bool		isnull;
	Datum		kind = spi_datum(tuple, FIRST_KIND, &isnull);

	if (isnull)
	{
		result->alive = DatumGetInt64(spi_datum(tuple, FIRST_ALIVE, &isnull));
		result->leased = DatumGetInt64(spi_datum(tuple, FIRST_LEASED, &isnull));
		result->judged_stale = DatumGetInt64(spi_datum(tuple, FIRST_JUDGED_STALE, &isnull));
		result->running = DatumGetInt64(spi_datum(tuple, FIRST_RUNNING, &isnull));
	}
	else if (DatumGetBool(kind))
		log_failed(result, tuple, FIRST_ID);
	else
		log_alive(tuple);
}

/*
 * run_first_batch
 *		The first batch: fail at most limit stale jobs, count the live ones
 *		(and list them when their lines are logged), skipping the event
 *		lookup of those leased.
 */
static uint64
run_first_batch(ReaperSession *session, ReaperSweepResult *result, Datum *values)
{
	uint64		before = result->pending;

	values[PARAM_LOG_ALIVE] = BoolGetDatum(message_level_is_interesting(SKIPPED_LOG_LEVEL));
	reaper_execute(reaper_plan(session, STMT_FIRST_BATCH), values, NULL, false);
	for (uint64 i = 0; i < SPI_processed; i++)
		first_batch_row(result, SPI_tuptable->vals[i]);
	return result->pending - before;
}

/*
 * note_thresholds_used
 *		A batch failed jobs under policy's settings: the summary line names
 *		them (not the settings in force when it is written, which a reload
 *		may have changed since).
 */
static void
note_thresholds_used(ReaperSweepResult *result, const ReaperPolicy *policy)
{
	char	   *used = result->used_first[0] == '\0' ? result->used_first : result->used_last;
	int			n;

	n = snprintf(used, REAPER_THRESHOLDS_LEN, "timeout_seconds=%d, stall_seconds=%d",
				 policy->timeout_seconds, policy->stall_seconds);
	if (policy->max_runtime_seconds > 0)
		snprintf(used + n, REAPER_THRESHOLDS_LEN - n, ", max_runtime_seconds=%d",
				 policy->max_runtime_seconds);
	if (used == result->used_last && strcmp(result->used_first, result->used_last) == 0)
		result->used_last[0] = '\0';
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
	ReaperSession session;
	ReaperPolicy policy;
	Datum		values[SWEEP_NPARAMS];
	uint64		reaped;

	/* read with the caller's rights, before acting as the tables' owner */
	reaper_policy_load(&policy);
	result->policy_rows = policy.nrows;
	reaper_session_begin(&session, true, &policy);
	reaper_refuse_subscribed(&session.tables);
	reaper_policy_params(&policy, values);
	values[PARAM_LIMIT] = Int32GetDatum((int32) limit);

	if (first)
		reaped = run_first_batch(&session, result, values);
	else
		reaped = run_later_batch(&session, result, values);

	reaper_session_end(&session);
	if (reaped > 0)
		note_thresholds_used(result, &policy);
	return reaped;
}

/* Log the first stale jobs another transaction held (with log_skipped) */
static void
log_locked(Datum ids)
{
	Datum	   *elems;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(ids), UUIDOID, UUID_LEN, false,
					  TYPALIGN_CHAR, &elems, NULL, &n);
	for (int i = 0; i < n; i++)
		ereport(SKIPPED_LOG_LEVEL,
				(errmsg("Reaper skipped locked job %s.",
						DatumGetCString(DirectFunctionCall1(uuid_out, elems[i]))),
				 errdetail("It is stale, but another transaction (its worker, or another sweep) holds its row; a later sweep judges it again.")));
}

/*
 * count_remaining
 *		The stale jobs the sweep left, when it left some: beyond the brake
 *		(waiting), or held by another transaction (skipped_locked).
 */
static void
count_remaining(ReaperSweepResult *result)
{
	ReaperSession session;
	ReaperPolicy policy;
	Datum		values[POLICY_NPARAMS];
	bool		isnull;
	uint64		remaining;
	Datum		oldest;
	Datum		ids;

	reaper_policy_load(&policy);
	reaper_session_begin(&session, true, &policy);
	reaper_policy_params(&policy, values);
	/* not read-only: it must see the failures this transaction just wrote */
	reaper_execute(reaper_plan(&session, STMT_REMAINING), values, NULL, false);
	remaining = DatumGetInt64(spi_datum(SPI_tuptable->vals[0], REMAINING_COUNT, &isnull));
	oldest = spi_datum(SPI_tuptable->vals[0], REMAINING_OLDEST_SECONDS, &isnull);
	result->stale = remaining;
	result->oldest_stale_seconds = isnull ? -1 : DatumGetFloat8(oldest);
	ids = spi_datum(SPI_tuptable->vals[0], REMAINING_IDS, &isnull);

	if (result->braked)
		result->waiting = remaining;
	else
	{
		result->skipped_locked = remaining;
		if (!isnull && message_level_is_interesting(SKIPPED_LOG_LEVEL))
			log_locked(ids);
	}
	reaper_session_end(&session);
}

/*
 * reaper_sweep_ended_batch
 *		The caller ended (committed) the batch just run: its failures count.
 */
void
reaper_sweep_ended_batch(ReaperSweepResult *result)
{
	result->reaped += result->pending;
	result->requeued += result->pending_requeued;
	result->lease_expired += result->pending_lease_expired;
	result->capped += result->pending_capped;
	result->unlogged += result->pending_unlogged;
	result->pending = result->pending_requeued = result->pending_unlogged = 0;
	result->pending_lease_expired = result->pending_capped = 0;
	reaper_notify_batch_ended();
}

/*
 * reaper_sweep
 *		A whole sweep: the only batch loop.  Batches run until one comes back
 *		short; between two, the worker's hooks end the batch and say whether
 *		to go on, and a sweep stops once it has failed hooks->max_jobs jobs
 *		(the worker's brake).  Without hooks every batch runs in the
 *		caller's transaction: SPI starts each with a new command, so it sees
 *		the previous batches' updates and no job is failed twice.  The last
 *		batch is left for the caller to end.
 */
void
reaper_sweep(ReaperSweepResult *result, const ReaperSweepHooks *hooks)
{
	uint64		max_jobs = hooks ? hooks->max_jobs : 0;
	bool		first = true;

	memset(result, 0, sizeof(ReaperSweepResult));
	result->stale = -1;			/* unknown until the sweep ends */
	result->oldest_stale_seconds = -1;
	reaplog_start_sweep();
	reaper_notify_start();

	for (;;)
	{
		uint64		done = result->reaped + result->pending;
		uint64		limit = (uint64) reaper_batch_size;

		if (max_jobs > 0)
			limit = Min(limit, max_jobs - done);
		if (sweep_batch(result, first, limit) < limit)
			break;
		first = false;
		if (max_jobs > 0 && result->reaped + result->pending >= max_jobs)
		{
			result->braked = true;
			break;
		}
		CHECK_FOR_INTERRUPTS();
		if (hooks == NULL)
			continue;
		hooks->end_batch();
		reaper_sweep_ended_batch(result);
		if (!hooks->next_batch())
			return;
	}

	if (result->braked ||
		result->judged_stale > result->reaped + result->pending)
		count_remaining(result);
	else
		result->stale = 0;
}

/* What a summary line says besides the count */
static char *
summary_detail(const ReaperSweepResult *result, uint64 reaped, uint64 requeued,
			   uint64 unlogged)
{
	StringInfoData detail;

	initStringInfo(&detail);
	if (requeued > 0)
		appendStringInfo(&detail, UINT64_FORMAT " re-queued (their leases expired), " UINT64_FORMAT " failed; ",
						 requeued, reaped - requeued);
	if (result->used_first[0] == '\0')
	{
		appendStringInfo(&detail, "timeout_seconds=%d, stall_seconds=%d", reaper_timeout_seconds,
						 reaper_stall_seconds);
		if (reaper_max_runtime_seconds > 0)
			appendStringInfo(&detail, ", max_runtime_seconds=%d", reaper_max_runtime_seconds);
	}
	else if (result->used_last[0] == '\0')
		appendStringInfoString(&detail, result->used_first);
	else
		appendStringInfo(&detail, "%s, then %s (reloaded during the sweep)",
						 result->used_first, result->used_last);
	if (result->policy_rows > 0)
		appendStringInfo(&detail, " (%d operation(s) with rows in protea_reaper_policy)",
						 result->policy_rows);
	appendStringInfo(&detail, "; " UINT64_FORMAT " live job(s) past the timeout left alone",
					 result->alive);
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
	char	   *detail = summary_detail(result, result->reaped, result->requeued,
										result->unlogged);

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
										result->requeued + result->pending_requeued,
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

/*
 * reaper_count_false_alarms
 *		The doctor's false alarms (statements.c), all operations together:
 *		jobs failed as stalled whose workers wrote events after, the
 *		evidence that a stall_seconds is too short.  Only reads.
 */
int64
reaper_count_false_alarms(void)
{
	ReaperSession session;
	int64		jobs = 0;

	reaper_session_begin(&session, false, NULL);
	reaper_execute(reaper_plan(&session, STMT_FALSE_ALARMS), NULL, NULL, true);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		n = spi_datum(SPI_tuptable->vals[i], ALARM_JOBS, &isnull);

		if (!isnull)
			jobs += DatumGetInt64(n);
	}
	reaper_session_end(&session);
	return jobs;
}
