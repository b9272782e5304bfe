/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Defines the protea_reaper.* configuration parameters.
 *
 * These replace the environment variables of PROTEA's old external reaper.
 * Thresholds are PGC_SUSET so that postgresql.conf plus pg_reload_conf()
 * changes them for the reapers without a restart, ALTER DATABASE ... SET
 * gives one database its own (a reaper re-reads them on reload), and a
 * superuser may SET them in a session to shape a manual sweep.  Which
 * databases are reaped, and as which role, the launcher reads on reload.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "protea_reaper.h"
#include "settings.h"

int			reaper_timeout_seconds = 21600;
int			reaper_lease_grace_seconds = 15;
int			reaper_max_lease_requeues = 0;
int			reaper_stall_seconds = 1800;
int			reaper_max_runtime_seconds = 0;
int			reaper_batch_size = 1000;
char	   *reaper_job_table = NULL;
char	   *reaper_event_table = NULL;
bool		reaper_log_skipped = false;
bool		reaper_remember_alive_unused = true;
bool		reaper_notify = true;

int			reaper_interval_seconds = 60;
bool		reaper_enabled = true;
int			reaper_lock_timeout_ms = 5000;
int			reaper_statement_timeout_ms = 60000;
int			reaper_max_jobs_per_cycle = 1000;

char	   *reaper_database = NULL;
char	   *reaper_role = NULL;

/*
 * check_database_list
 *		protea_reaper.database must parse as a list of names, the way the
 *		launcher reads it.
 */
static bool
check_database_list(char **newval, void **extra, GucSource source)
{
	char	   *copy = pstrdup(*newval);
	List	   *names;
	bool		ok = SplitGUCList(copy, ',', &names);

	list_free(names);
	pfree(copy);
	if (!ok)
	{
		GUC_check_errdetail("protea_reaper.database must be a comma-separated list of database names.");
		return false;
	}
	return true;
}

/*
 * reaper_define_settings
 *		Register every protea_reaper.* parameter and reserve the prefix, so
 *		that a misspelt protea_reaper.setting is reported instead of being
 *		silently kept as a placeholder.
 */
void
reaper_define_settings(void)
{
	DefineCustomIntVariable("protea_reaper.timeout_seconds",
							"A running job must have started longer ago than this to be reaped.",
							NULL,
							&reaper_timeout_seconds,
							21600, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("protea_reaper.stall_seconds",
							"A job with a job_event newer than this is alive and is never reaped.",
							NULL,
							&reaper_stall_seconds,
							1800, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("protea_reaper.max_runtime_seconds",
							"A running job that started longer ago than this is reaped even if it is alive (0: no cap).",
							"protea_reaper_policy rows may set their own per operation.",
							&reaper_max_runtime_seconds,
							0, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("protea_reaper.lease_grace_seconds",
							"A running job whose leased_until is older than this is dead, whatever its started_at and (unless its policy row says otherwise) its events.",
							"Room for the clocks of PROTEA's hosts, which stamp the lease, to run behind the database's.",
							&reaper_lease_grace_seconds,
							15, 0, 86400,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("protea_reaper.max_lease_requeues",
							"How many times a job whose lease lapsed is put back in the queue before it is failed (0: failed at once).",
							"PROTEA's own reaper counts a job's re-queues as its job.lease_expired_requeue events, and so does this; protea_reaper_policy rows may set their own per operation.",
							&reaper_max_lease_requeues,
							0, 0, 1000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("protea_reaper.notify",
							 "Send NOTIFY protea_reaper with the failed jobs when a sweep or protea_reaper_fail_job() commits.",
							 NULL,
							 &reaper_notify,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("protea_reaper.batch_size",
							"Maximum number of jobs failed by one statement (and, in the worker, one transaction).",
							NULL,
							&reaper_batch_size,
							1000, 1, 1000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("protea_reaper.job_table",
							   "Schema-qualified name of PROTEA's job table.",
							   NULL,
							   &reaper_job_table,
							   "public.job",
							   PGC_SUSET, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("protea_reaper.event_table",
							   "Schema-qualified name of PROTEA's job_event table.",
							   NULL,
							   &reaper_event_table,
							   "public.job_event",
							   PGC_SUSET, 0,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("protea_reaper.log_skipped",
							 "Log each live job the reaper skipped at LOG instead of DEBUG1.",
							 NULL,
							 &reaper_log_skipped,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	/* 1.1's memory of live jobs is gone; the setting stays so that it loads */
	DefineCustomBoolVariable("protea_reaper.remember_alive",
							 "No effect since 1.2 (the memory of live jobs is gone).",
							 "Kept so that a configuration that sets it still loads; it will be removed.",
							 &reaper_remember_alive_unused,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("protea_reaper.interval_seconds",
							"Time between two sweeps of the background worker.",
							NULL,
							&reaper_interval_seconds,
							60, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("protea_reaper.enabled",
							 "Whether the background worker sweeps; when off it idles without exiting.",
							 NULL,
							 &reaper_enabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("protea_reaper.lock_timeout",
							"lock_timeout used by the background worker's sweeps (0 waits forever).",
							NULL,
							&reaper_lock_timeout_ms,
							5000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("protea_reaper.statement_timeout",
							"statement_timeout used by the background worker's sweeps (0 waits forever).",
							NULL,
							&reaper_statement_timeout_ms,
							60000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("protea_reaper.max_jobs_per_cycle",
							"Most jobs the background worker fails in one cycle (0: no limit).",
							"A brake: a mistaken threshold fails at most this many jobs before the next cycle, and a WARNING says how many wait.",
							&reaper_max_jobs_per_cycle,
							1000, 0, INT_MAX,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("protea_reaper.database",
							   "Databases reaped, a comma-separated list (empty: every database where the extension is installed).",
							   "Template databases and databases that do not allow connections are never reaped.",
							   &reaper_database,
							   "",
							   PGC_SIGHUP, GUC_LIST_INPUT,
							   check_database_list, NULL, NULL);

	DefineCustomStringVariable("protea_reaper.role",
							   "Role the reapers connect as (empty: the bootstrap superuser).",
							   "Looked up each time a reaper starts, so a role created again is used at the next start.",
							   &reaper_role,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved(REAPER_NAME);
}

/* protea_reaper.database as a list of names (NIL: every database) */
List *
reaper_database_list(void)
{
	List	   *names = NIL;

	(void) SplitGUCList(pstrdup(reaper_database), ',', &names);
	return names;
}

/*
 * reaper_database_listed
 *		Whether protea_reaper.database lets a database be reaped: an empty
 *		list lets every one.  If found is not NULL, the listed name's entry
 *		is set.
 */
bool
reaper_database_listed(List *names, const char *name, bool *found)
{
	ListCell   *lc;

	if (names == NIL)
		return true;
	foreach(lc, names)
	{
		if (strcmp((const char *) lfirst(lc), name) == 0)
		{
			if (found != NULL)
				found[foreach_current_index(lc)] = true;
			return true;
		}
	}
	return false;
}

/*
 * reaper_check_thresholds
 *		A timeout no longer than the stall window means a silent job is
 *		failed as soon as it is timeout_seconds old: legal, but rarely meant.
 *		Say so where it takes effect: once per pair of values in a backend
 *		(the worker's reloads, a session's manual sweeps).
 */
void
reaper_check_thresholds(void)
{
	static int	warned_timeout = 0;
	static int	warned_stall = 0;

	if (reaper_timeout_seconds > reaper_stall_seconds ||
		(reaper_timeout_seconds == warned_timeout && reaper_stall_seconds == warned_stall))
		return;
	warned_timeout = reaper_timeout_seconds;
	warned_stall = reaper_stall_seconds;
	ereport(WARNING,
			(errmsg("protea_reaper.timeout_seconds (%d) is not longer than protea_reaper.stall_seconds (%d)",
					reaper_timeout_seconds, reaper_stall_seconds),
			 errdetail("A job with no job_event since it started is failed as soon as it is %d s old.",
					   reaper_timeout_seconds),
			 errhint("Set protea_reaper.timeout_seconds above protea_reaper.stall_seconds, e.g. the 6 h / 30 min defaults.")));
}
