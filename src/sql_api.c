/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *	  The SQL-callable sweep functions: the operator's runbook, one call
 *	  each.
 *
 * protea_reaper_run_once()      a manual sweep, in the caller's transaction
 * protea_reaper_fail_job(id,r)  fail one job by hand (ManualTimeout)
 * protea_reaper_running_jobs()  every running job and the sweep's verdict
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
#include "utils/builtins.h"

#include "compat.h"
#include "sweep.h"

PG_FUNCTION_INFO_V1(protea_reaper_run_once);
PG_FUNCTION_INFO_V1(protea_reaper_fail_job);
PG_FUNCTION_INFO_V1(protea_reaper_running_jobs);

/*
 * protea_reaper_run_once
 *		Sweep now, in the caller's transaction (so ROLLBACK undoes it), with
 *		the settings of the caller's session.  Returns the jobs failed.
 */
Datum
protea_reaper_run_once(PG_FUNCTION_ARGS)
{
	ReaperSweepResult result;

	reaper_sweep(&result);
	reaper_sweep_report(&result);
	PG_RETURN_INT64((int64) result.reaped);
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
	if (PG_ARGISNULL(1) || VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(1)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a reason is required to fail a job by hand"),
				 errhint("Say why, e.g. protea_reaper_fail_job(id, 'worker node lost').")));

	reason = text_to_cstring(PG_GETARG_TEXT_PP(1));
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
