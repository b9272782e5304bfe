/*-------------------------------------------------------------------------
 *
 * runbook.c
 *	  Every SQL-callable function: the operator's runbook, one call each.
 *
 * protea_reaper_run_once()      a manual sweep, in the caller's transaction
 * protea_reaper_fail_job(id,r)  fail one job by hand (ManualTimeout)
 * protea_reaper_running_jobs()  every running job and the sweep's verdict
 * protea_reaper_statements()    the statements a sweep runs, for EXPLAIN
 * protea_reaper_status()        the launcher and each database's reaper
 * protea_reaper_wake()          ask this database's reaper to sweep now
 *
 * The install script makes the first four SECURITY DEFINER with a pinned
 * search_path and revokes every function from PUBLIC: a superuser decides
 * who may reap.  They act on PROTEA's tables as their owner (plans.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "notify.h"
#include "plans.h"
#include "policy.h"
#include "reaplog.h"
#include "settings.h"
#include "status.h"
#include "sweep.h"

PG_FUNCTION_INFO_V1(protea_reaper_run_once);
PG_FUNCTION_INFO_V1(protea_reaper_fail_job);
PG_FUNCTION_INFO_V1(protea_reaper_running_jobs);
PG_FUNCTION_INFO_V1(protea_reaper_running_jobs_1_1);
PG_FUNCTION_INFO_V1(protea_reaper_running_jobs_1_2);
PG_FUNCTION_INFO_V1(protea_reaper_statements);
PG_FUNCTION_INFO_V1(protea_reaper_status);
PG_FUNCTION_INFO_V1(protea_reaper_status_1_3);
PG_FUNCTION_INFO_V1(protea_reaper_status_1_4);
PG_FUNCTION_INFO_V1(protea_reaper_wake);

/*
 * protea_reaper_run_once
 *		Sweep now, in the caller's transaction (so ROLLBACK undoes it), with
 *		the settings of the caller's session.  Returns the jobs failed.
 */
Datum
protea_reaper_run_once(PG_FUNCTION_ARGS)
{
	ReaperSweepResult result;

	reaper_check_thresholds();
	reaper_sweep(&result, NULL);
	reaper_sweep_report_at_commit(&result);
	reaper_notify_send("run_once", NULL);
	PG_RETURN_INT64((int64) (result.reaped + result.pending));
}

/* A job id as text, for messages */
static char *
uuid_text(Datum job_id)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, job_id));
}

/*
 * check_reason
 *		An operator's reason goes into error_message, the audit event and
 *		the server log: it must say something, fit, and be one line of
 *		printable text, so that it cannot forge a log line.
 */
static void
check_reason(const char *reason)
{
	bool		is_blank = true;
	int			len;

	for (const char *p = reason; *p != '\0'; p += len)
	{
		pg_wchar	c = reaper_next_char(p, &len);

		if (reaper_unprintable(c))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the reason to fail a job must be one line of printable text"),
					 errdetail("It contains the control or format character U+%04X at byte %d.",
							   (unsigned int) c, (int) (p - reason) + 1),
					 errhint("Pass the reason without newlines, tabs, escapes or invisible characters.")));
		if (!reaper_blank(c))
			is_blank = false;
	}
	if (is_blank)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a reason is required to fail a job by hand"),
				 errhint("Say why, e.g. protea_reaper_fail_job(id, 'worker node lost').")));
	if (pg_mbstrlen(reason) > REAPER_REASON_MAX_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("the reason to fail a job is %d characters long, more than %d",
						pg_mbstrlen(reason), REAPER_REASON_MAX_CHARS),
				 errhint("Say why in fewer words; details belong in job_comment.")));
}

/*
 * execute_fail_job
 *		Run the manual fail, waiting at most protea_reaper.lock_timeout for
 *		the job's row: a row held by its worker is a clear error, not a hang.
 *		(The session's GUC level, undone by reaper_session_end, holds the
 *		lock_timeout.)
 */
static void
execute_fail_job(SPIPlanPtr plan, Datum *values, Datum job_id)
{
	MemoryContext cxt = CurrentMemoryContext;
	char		buf[32];

	snprintf(buf, sizeof(buf), "%d", reaper_lock_timeout_ms);
	(void) set_config_option("lock_timeout", buf, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		reaper_execute(plan, values, NULL, false);
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

/* Say what the manual fail did: a line at commit, or why nothing */
static void
report_fail_job(const ReaperTables *tables, Datum job_id, const char *reason)
{
	char	   *old_status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  FAIL_OLD_STATUS);
	char	   *new_status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  FAIL_NEW_STATUS);

	if (new_status != NULL)
		reaplog_at_commit(LOG, psprintf("Operator failed job %s.", uuid_text(job_id)),
						  psprintf("status %s -> %s; reason: %s", reaper_log_text(old_status),
								   reaper_log_text(new_status), reason));
	else
		ereport(NOTICE,
				(errmsg("job %s was not failed: its status is %s",
						uuid_text(job_id), reaper_log_text(old_status)),
				 tables->queued_label != NULL ?
				 errdetail("Only a %s or %s job can be failed; a job that has ended is left as it is.",
						   tables->queued_label, tables->running_label) :
				 errdetail("Only a %s job can be failed; a job that has ended is left as it is.",
						   tables->running_label)));
}

/*
 * protea_reaper_fail_job
 *		Fail one queued or running job by hand (error_code 'ManualTimeout')
 *		with one audit event.  An ERROR when no such job exists; false, with
 *		a NOTICE, when the job had already ended: a finished job is never
 *		rewritten.
 */
Datum
protea_reaper_fail_job(PG_FUNCTION_ARGS)
{
	ReaperSession session;
	Datum		values[FAIL_NPARAMS];
	char	   *reason;
	bool		failed;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job id must not be null")));
	reason = PG_ARGISNULL(1) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	check_reason(reason);

	reaper_session_begin(&session, false, NULL);
	reaper_refuse_subscribed(&session.tables);
	values[FAIL_PARAM_ID] = PG_GETARG_DATUM(0);
	values[FAIL_PARAM_MESSAGE] = CStringGetTextDatum(psprintf("Job failed by operator: %s", reason));
	values[FAIL_PARAM_REASON] = CStringGetTextDatum(reason);
	execute_fail_job(reaper_plan(&session, STMT_FAIL_JOB), values, PG_GETARG_DATUM(0));

	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("job %s does not exist", uuid_text(PG_GETARG_DATUM(0))),
				 errdetail("No row of %s has that id.", session.tables.job_name)));
	report_fail_job(&session.tables, PG_GETARG_DATUM(0), reason);
	failed = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
						  FAIL_NEW_STATUS) != NULL;
	reaper_session_end(&session);
	if (failed)
	{
		reaper_notify_start();
		reaper_notify_job(uuid_text(PG_GETARG_DATUM(0)), NOTIFY_STALLED);
		reaper_notify_send("fail_job", reason);
	}
	PG_RETURN_BOOL(failed);
}

/*
 * materialize_declared
 *		Set up a set-returning function's result, refusing a declaration
 *		(from another version of the install script) whose columns are not
 *		the ncolumns this symbol gives.
 */
static void
materialize_declared(FunctionCallInfo fcinfo, const char *function, int ncolumns)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != ncolumns)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s returns %d columns, the library %d",
						function, rsinfo->setDesc->natts, ncolumns),
				 errhint("Run ALTER EXTENSION protea_reaper UPDATE.")));
}

/*
 * running_jobs
 *		Every running job with its start, its last event, its lease, the
 *		verdict a sweep would reach now (stale, capped, alive, leased,
 *		young, exempt or "no started_at"), the thresholds that apply to it
 *		and its running children: the first ncolumns of them.
 */
static Datum
running_jobs(FunctionCallInfo fcinfo, int ncolumns)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ReaperSession session;
	ReaperPolicy policy;
	Datum		values[POLICY_NPARAMS];

	materialize_declared(fcinfo, "protea_reaper_running_jobs()", ncolumns);

	reaper_policy_load(&policy);
	reaper_session_begin(&session, true, &policy);
	reaper_policy_params(&policy, values);
	reaper_execute(reaper_plan(&session, STMT_RUNNING_JOBS), values, NULL, true);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		row[RUNNING_JOBS_COLUMNS];
		bool		isnull[RUNNING_JOBS_COLUMNS];

		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, row, isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, isnull);
	}
	reaper_session_end(&session);
	return (Datum) 0;
}

/* protea_reaper_running_jobs(), as version 1.2 of the extension declares it */
Datum
protea_reaper_running_jobs_1_2(PG_FUNCTION_ARGS)
{
	return running_jobs(fcinfo, RUNNING_JOBS_COLUMNS);
}

/* ... as 1.1 did, until ALTER EXTENSION protea_reaper UPDATE */
Datum
protea_reaper_running_jobs_1_1(PG_FUNCTION_ARGS)
{
	return running_jobs(fcinfo, RUNNING_JOBS_COLUMNS_1_1);
}

/* ... and as 1.0 did, until ALTER EXTENSION protea_reaper UPDATE */
Datum
protea_reaper_running_jobs(PG_FUNCTION_ARGS)
{
	return running_jobs(fcinfo, RUNNING_JOBS_COLUMNS_1_0);
}

/*
 * protea_reaper_statements
 *		Each statement as it is prepared for the tables the settings name now
 *		(with their labels and lease) and the policy in force, so that it can
 *		be EXPLAINed as it runs.
 */
Datum
protea_reaper_statements(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ReaperTables tables;
	ReaperPolicy policy;

	InitMaterializedSRF(fcinfo, 0);
	reaper_resolve_tables(&tables);
	reaper_policy_load(&policy);
	reaper_policy_fragments(&policy, &tables);
	for (int i = 0; i < STMT_COUNT; i++)
	{
		Datum		row[2];
		bool		isnull[2] = {false, false};

		row[0] = CStringGetTextDatum(reaper_statements[i].name);
		row[1] = CStringGetTextDatum(reaper_expand_sql(reaper_statements[i].sql, &tables));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, isnull);
	}
	return (Datum) 0;
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

/* protea_reaper_status()'s columns */
typedef enum StatusColumn
{
	STATUS_PID,
	STATUS_DATABASE,
	STATUS_STATE,
	STATUS_ENABLED,
	STATUS_TIMEOUT_SECONDS,
	STATUS_STALL_SECONDS,
	STATUS_INTERVAL_SECONDS,
	STATUS_STARTED_AT,
	STATUS_CYCLES,
	STATUS_FAILED_CYCLES,
	STATUS_LAST_CYCLE_START,
	STATUS_LAST_CYCLE_END,
	STATUS_LAST_CYCLE_MS,
	STATUS_LAST_REAPED,
	STATUS_LAST_ALIVE,
	STATUS_TOTAL_REAPED,
	STATUS_LAST_ERROR,
	STATUS_LAST_ERROR_AT,
	STATUS_NEXT_CYCLE_AT,
	STATUS_LAST_SKIPPED_LOCKED,
	STATUS_LAST_WAITING,
	STATUS_COLUMNS_1_0,			/* 1.0 to 1.2 end here */
	STATUS_NEXT_START_AT = STATUS_COLUMNS_1_0,
	STATUS_STARTS,
	STATUS_COLUMNS_1_3,			/* 1.3 ends here */
	STATUS_LAST_RUNNING = STATUS_COLUMNS_1_3,
	STATUS_LAST_STALE,
	STATUS_LAST_OLDEST_STALE_SECONDS,
	STATUS_TOTAL_STALLED,
	STATUS_TOTAL_CAPPED,
	STATUS_TOTAL_LEASE_EXPIRED,
	STATUS_TOTAL_REQUEUED,
	STATUS_TOTAL_SKIPPED_LOCKED,
	STATUS_FALSE_ALARMS,
	STATUS_FALSE_ALARMS_AT,
	STATUS_COLUMNS
} StatusColumn;

/* A timestamp column, NULL for "never" */
static void
set_timestamp(Datum *values, bool *nulls, StatusColumn col, TimestampTz ts)
{
	values[col] = TimestampTzGetDatum(ts);
	nulls[col] = (ts == 0);
}

/* The status without shared memory: the session's settings, no worker */
static void
status_not_preloaded(ReaperStatus *status)
{
	memset(status, 0, sizeof(ReaperStatus));
	status->state = REAPER_NOT_PRELOADED;
	status->enabled = reaper_enabled;
	status->timeout_seconds = reaper_timeout_seconds;
	status->stall_seconds = reaper_stall_seconds;
	status->interval_seconds = reaper_interval_seconds;
}

/* The worker's identity, settings and state */
static void
status_worker_columns(const ReaperStatus *s, Datum *values, bool *nulls)
{
	values[STATUS_PID] = Int32GetDatum(s->pid);
	nulls[STATUS_PID] = (s->pid == 0);
	values[STATUS_DATABASE] = CStringGetTextDatum(s->database);
	nulls[STATUS_DATABASE] = (s->database[0] == '\0');
	set_timestamp(values, nulls, STATUS_NEXT_START_AT, s->next_start_at);
	values[STATUS_STARTS] = Int64GetDatum(s->starts);
	values[STATUS_STATE] = CStringGetTextDatum(reaper_state_name(s->state));
	values[STATUS_ENABLED] = BoolGetDatum(s->enabled);
	values[STATUS_TIMEOUT_SECONDS] = Int32GetDatum(s->timeout_seconds);
	values[STATUS_STALL_SECONDS] = Int32GetDatum(s->stall_seconds);
	values[STATUS_INTERVAL_SECONDS] = Int32GetDatum(s->interval_seconds);
	set_timestamp(values, nulls, STATUS_STARTED_AT, s->started_at);
}

/* Its cycles and what they did */
static void
status_cycle_columns(const ReaperStatus *s, Datum *values, bool *nulls)
{
	values[STATUS_CYCLES] = Int64GetDatum(s->cycles);
	values[STATUS_FAILED_CYCLES] = Int64GetDatum(s->failed_cycles);
	set_timestamp(values, nulls, STATUS_LAST_CYCLE_START, s->last_cycle_start);
	set_timestamp(values, nulls, STATUS_LAST_CYCLE_END, s->last_cycle_end);
	values[STATUS_LAST_CYCLE_MS] =
		Float8GetDatum((s->last_cycle_end - s->last_cycle_start) / 1000.0);
	nulls[STATUS_LAST_CYCLE_MS] = (s->last_cycle_start == 0 ||
								   s->last_cycle_end < s->last_cycle_start);
	values[STATUS_LAST_REAPED] = Int64GetDatum(s->last_reaped);
	values[STATUS_LAST_ALIVE] = Int64GetDatum(s->last_alive);
	values[STATUS_TOTAL_REAPED] = Int64GetDatum(s->total_reaped);
	values[STATUS_LAST_ERROR] = CStringGetTextDatum(s->last_error);
	nulls[STATUS_LAST_ERROR] = (s->last_error_at == 0);
	set_timestamp(values, nulls, STATUS_LAST_ERROR_AT, s->last_error_at);
	set_timestamp(values, nulls, STATUS_NEXT_CYCLE_AT, s->next_cycle_at);
	values[STATUS_LAST_SKIPPED_LOCKED] = Int64GetDatum(s->last_skipped_locked);
	values[STATUS_LAST_WAITING] = Int64GetDatum(s->last_waiting);
}

/* 1.4: the jobs it saw, what it reaped by cause, and its false alarms */
static void
status_metric_columns(const ReaperStatus *s, Datum *values, bool *nulls)
{
	bool		never = (s->cycles == 0 || s->dboid == InvalidOid);

	/* unknown before the first cycle and after a failed one */
	values[STATUS_LAST_RUNNING] = Int64GetDatum(s->last_running);
	nulls[STATUS_LAST_RUNNING] = never || s->last_running < 0;
	values[STATUS_LAST_STALE] = Int64GetDatum(s->last_stale);
	nulls[STATUS_LAST_STALE] = never || s->last_stale < 0;
	values[STATUS_LAST_OLDEST_STALE_SECONDS] = Float8GetDatum(s->last_oldest_stale_seconds);
	nulls[STATUS_LAST_OLDEST_STALE_SECONDS] = never || s->last_stale <= 0 ||
		s->last_oldest_stale_seconds < 0;
	values[STATUS_TOTAL_STALLED] = Int64GetDatum(s->total_stalled);
	values[STATUS_TOTAL_CAPPED] = Int64GetDatum(s->total_capped);
	values[STATUS_TOTAL_LEASE_EXPIRED] = Int64GetDatum(s->total_lease_expired);
	values[STATUS_TOTAL_REQUEUED] = Int64GetDatum(s->total_requeued);
	values[STATUS_TOTAL_SKIPPED_LOCKED] = Int64GetDatum(s->total_skipped_locked);
	values[STATUS_FALSE_ALARMS] = Int64GetDatum(s->false_alarms);
	nulls[STATUS_FALSE_ALARMS] = (s->false_alarms_at == 0);
	set_timestamp(values, nulls, STATUS_FALSE_ALARMS_AT, s->false_alarms_at);
}

/* One row of protea_reaper_status() */
static void
status_row(const ReaperStatus *status, Datum *values, bool *nulls)
{
	memset(nulls, 0, sizeof(bool) * STATUS_COLUMNS);
	status_worker_columns(status, values, nulls);
	status_cycle_columns(status, values, nulls);
	status_metric_columns(status, values, nulls);
}

/*
 * protea_reaper_status (1.0 to 1.2)
 *		One row: the reaper of this database.  Without preloading it gives
 *		the session's settings, no pid, and a NOTICE saying why.
 */
Datum
protea_reaper_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	ReaperStatus status;
	Datum		values[STATUS_COLUMNS];
	bool		nulls[STATUS_COLUMNS];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!reaper_status_preloaded())
	{
		notice_not_preloaded();
		status_not_preloaded(&status);
	}
	else
		reaper_status_read_here(&status);
	status_row(&status, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * status_rows
 *		A row for the launcher (database NULL), then one for each database
 *		it looks after, with the first ncolumns columns, as many as the
 *		function's declaration has.  Without preloading: one row, "not
 *		preloaded", with the session's settings, and a NOTICE saying why.
 */
static Datum
status_rows(FunctionCallInfo fcinfo, int ncolumns)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ReaperStatus *statuses;
	ReaperStatus one;
	int			n;
	Datum		values[STATUS_COLUMNS];
	bool		nulls[STATUS_COLUMNS];

	materialize_declared(fcinfo, "protea_reaper_status()", ncolumns);
	if (!reaper_status_preloaded())
	{
		notice_not_preloaded();
		status_not_preloaded(&one);
		statuses = &one;
		n = 1;
	}
	else
		n = reaper_status_read_all(&statuses);
	for (int i = 0; i < n; i++)
	{
		status_row(&statuses[i], values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * protea_reaper_status_1_3, protea_reaper_status_1_4
 *		The status as 1.3 declares it, and with 1.4's columns.  A symbol per
 *		declaration: an update run before the server restarted with the new
 *		library fails to find its symbol, instead of reading columns the
 *		old library does not fill.
 */
Datum
protea_reaper_status_1_3(PG_FUNCTION_ARGS)
{
	return status_rows(fcinfo, STATUS_COLUMNS_1_3);
}

Datum
protea_reaper_status_1_4(PG_FUNCTION_ARGS)
{
	return status_rows(fcinfo, STATUS_COLUMNS);
}

/*
 * protea_reaper_wake
 *		Ask the worker to sweep now instead of at its next interval.  Returns
 *		false (with a NOTICE) when there is no worker to wake.
 */
Datum
protea_reaper_wake(PG_FUNCTION_ARGS)
{
	ReaperStatus status;

	if (!reaper_status_preloaded())
	{
		notice_not_preloaded();
		PG_RETURN_BOOL(false);
	}
	if (!reaper_status_request_wake(MyDatabaseId))
	{
		reaper_status_read_here(&status);
		ereport(NOTICE,
				(errmsg("the reaper of database \"%s\" is not running right now (%s)",
						status.database, reaper_state_name(status.state)),
				 status.last_error[0] ? errdetail("%s.", status.last_error) : 0,
				 reaper_database_listed(reaper_database_list(), status.database, NULL) ?
				 errhint("See protea_reaper_status(); the launcher starts it again by itself.") :
				 errhint("Add this database to protea_reaper.database and reload.")));
		PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(true);
}
