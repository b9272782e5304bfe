/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *	  The SQL-callable sweep functions: the operator's runbook, one call
 *	  each.
 *
 * protea_reaper_run_once()      a manual sweep, in the caller's transaction
 * protea_reaper_fail_job(id,r)  fail one job by hand (ManualTimeout)
 * protea_reaper_running_jobs()  every running job and the sweep's verdict
 * protea_reaper_statements()    the statements a sweep runs, for EXPLAIN
 *
 * These only translate between fmgr and sweep.c.  The install script makes
 * them SECURITY DEFINER with a pinned search_path and revokes them from
 * PUBLIC: a superuser decides who may reap.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "compat.h"
#include "settings.h"
#include "sweep.h"
#include "tables.h"

PG_FUNCTION_INFO_V1(protea_reaper_run_once);
PG_FUNCTION_INFO_V1(protea_reaper_fail_job);
PG_FUNCTION_INFO_V1(protea_reaper_running_jobs);
PG_FUNCTION_INFO_V1(protea_reaper_statements);

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
	PG_RETURN_INT64((int64) (result.reaped + result.pending));
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
	const char *p;
	bool		blank = true;

	for (p = reason; *p != '\0'; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c < 0x20 || c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the reason to fail a job must be one line of printable text"),
					 errdetail("It contains the control character 0x%02x at position %d.",
							   c, (int) (p - reason) + 1),
					 errhint("Pass the reason without newlines, tabs or escape characters.")));
		if (c != ' ')
			blank = false;
	}
	if (blank)
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
 * protea_reaper_fail_job
 *		Fail one queued or running job by hand, with a reason.
 */
Datum
protea_reaper_fail_job(PG_FUNCTION_ARGS)
{
	char	   *reason;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job id must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a reason is required to fail a job by hand"),
				 errhint("Say why, e.g. protea_reaper_fail_job(id, 'worker node lost').")));

	reason = text_to_cstring(PG_GETARG_TEXT_PP(1));
	check_reason(reason);
	PG_RETURN_BOOL(reaper_fail_job(PG_GETARG_DATUM(0), reason));
}

/*
 * protea_reaper_running_jobs
 *		Every running job with its last event and verdict.
 */
Datum
protea_reaper_running_jobs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	reaper_list_running(rsinfo->setResult, rsinfo->setDesc);
	return (Datum) 0;
}

/*
 * protea_reaper_statements
 *		The statements a sweep prepares for the tables the settings name.
 */
Datum
protea_reaper_statements(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	reaper_list_statements(rsinfo->setResult, rsinfo->setDesc);
	return (Datum) 0;
}
