/*-------------------------------------------------------------------------
 *
 * plans.c
 *	  How the statements run: a session on PROTEA's tables (SPI, the tables
 *	  resolved, acting as their owner), the kept plans, and execution.
 *
 * Every statement on PROTEA's tables runs as the job table's owner, in a
 * security-restricted operation with a safe search_path, as VACUUM and
 * REFRESH MATERIALIZED VIEW do: code the owner attached to the tables
 * (triggers, defaults, index expressions, the functions they call) then
 * runs with the owner's rights and no more, whoever sweeps.  A deferred
 * trigger, which would run at commit with the caller's rights, is refused
 * by the server inside such an operation.
 *
 * The sweep's statements are prepared once per backend and kept
 * (SPI_keepplan), and prepared anew only when what they are built from
 * changes: the tables, their status labels, their lease column.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timeout.h"

#include "compat.h"
#include "plans.h"
#include "settings.h"

/* Kept plans, and the tables (with labels and lease) they were made for */
static SPIPlanPtr kept_plans[STMT_COUNT];
static char *kept_key = NULL;

/*
 * act_as_owner
 *		Become the job table's owner for what follows.  The caller must be
 *		able to act as the owner already: a superuser (the SQL functions run
 *		as their superuser owner), or a member of the owner role (the
 *		worker's protea_reaper.role).
 */
static void
act_as_owner(ReaperSession *session)
{
	Oid			owner = session->tables.owner;

	GetUserIdAndSecContext(&session->save_userid, &session->save_sec_context);
	if (!has_privs_of_role(session->save_userid, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" cannot reap as \"%s\", the owner of %s",
						GetUserNameFromId(session->save_userid, false),
						GetUserNameFromId(owner, false), session->tables.job_name),
				 errdetail("The reaper writes PROTEA's tables as their owner, so that code attached to them never runs with more rights than the owner has."),
				 errhint("GRANT %s TO %s, or leave protea_reaper.role empty so that the worker runs as the bootstrap superuser.",
						 quote_identifier(GetUserNameFromId(owner, false)),
						 quote_identifier(GetUserNameFromId(session->save_userid, false)))));

	SetUserIdAndSecContext(owner,
						   session->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	session->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

/*
 * reaper_session_begin
 *		Connect to SPI, resolve the tables from the settings, and act as
 *		their owner.
 */
void
reaper_session_begin(ReaperSession *session, bool need_event_index)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "protea_reaper could not connect to SPI");
	reaper_resolve_tables(&session->tables);
	if (need_event_index)
		reaper_check_event_index(&session->tables);
	act_as_owner(session);
}

/*
 * reaper_session_end
 *		Back to the caller's identity and settings.  (After an ERROR the
 *		transaction's abort restores both.)
 */
void
reaper_session_end(ReaperSession *session)
{
	AtEOXact_GUC(false, session->save_nestlevel);
	SetUserIdAndSecContext(session->save_userid, session->save_sec_context);
	SPI_finish();
}

/*
 * prepare
 *		Prepare stmt for the session's tables.
 *
 * A kept generic plan is what an idle sweep's statements want: their
 * parameters are thresholds that do not change the plan's shape, and the
 * plan cache would otherwise plan them anew at each call (a custom plan is
 * always made the first five times, and for the scan of ids every time, as
 * it looks cheaper), which costs more than the idle sweep itself.  A
 * backlog's later batches do not: their LIMIT decides between reading
 * candidates until the batch is full and reading all of them first (a
 * generic plan, not knowing it, made a mass reap a third slower), and
 * planning is little beside failing a batch.
 */
static SPIPlanPtr
prepare(ReaperSession *session, ReaperStatement stmt)
{
	const ReaperStatementDef *def = &reaper_statements[stmt];
	char	   *sql = reaper_expand_sql(def->sql, &session->tables);
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, def->nargs, (Oid *) def->argtypes,
										  def->generic ? CURSOR_OPT_GENERIC_PLAN : 0);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for protea_reaper statement %s: %s",
			 def->name, SPI_result_code_string(SPI_result));
	pfree(sql);
	return plan;
}

/* Forget every kept plan: the tables they were made for changed */
static void
forget_kept_plans(void)
{
	for (int i = 0; i < STMT_COUNT; i++)
	{
		if (kept_plans[i] != NULL)
			SPI_freeplan(kept_plans[i]);
		kept_plans[i] = NULL;
	}
	if (kept_key != NULL)
		pfree(kept_key);
	kept_key = NULL;
}

/*
 * reaper_plan
 *		The plan of stmt for the session's tables.  A kept statement's plan
 *		is made once per backend and per resolution of the tables; the
 *		others (rare, interactive) are prepared at each call.
 */
SPIPlanPtr
reaper_plan(ReaperSession *session, ReaperStatement stmt)
{
	char	   *key;

	if (!reaper_statements[stmt].kept)
		return prepare(session, stmt);

	key = reaper_tables_key(&session->tables);
	if (kept_key == NULL || strcmp(kept_key, key) != 0)
	{
		forget_kept_plans();
		kept_key = MemoryContextStrdup(TopMemoryContext, key);
	}
	if (kept_plans[stmt] == NULL)
	{
		SPIPlanPtr	plan = prepare(session, stmt);

		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed for protea_reaper statement %s",
				 reaper_statements[stmt].name);
		kept_plans[stmt] = plan;
	}
	return kept_plans[stmt];
}

/*
 * reaper_execute
 *		Run a plan.  In the worker, protea_reaper.statement_timeout bounds
 *		it: the server arms statement_timeout only for a client's query, so
 *		the worker arms it itself (and disarms it after an ERROR, see
 *		worker.c).
 */
void
reaper_execute(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only)
{
	bool		timed = protea_am_background_worker() && reaper_statement_timeout_ms > 0;
	int			ret;

	if (timed)
		enable_timeout_after(STATEMENT_TIMEOUT, reaper_statement_timeout_ms);
	ret = SPI_execute_plan(plan, values, nulls, read_only, 0);
	if (timed)
		disable_timeout(STATEMENT_TIMEOUT, false);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper statement failed: %s", SPI_result_code_string(ret));
}
