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
 * by the server inside such an operation.  JIT is off inside it too.
 *
 * The sweep's statements are prepared once per backend and kept
 * (SPI_keepplan), and prepared anew when what they are built from changes
 * (the tables, their status labels, their lease column) or when either
 * table has grown or shrunk by more than half since (see tables_resized).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <signal.h>

#include "access/table.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "storage/latch.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timeout.h"

#include "compat.h"
#include "plans.h"
#include "policy.h"
#include "settings.h"

/* Kept plans, and the tables (with labels and lease) they were made for */
static SPIPlanPtr kept_plans[STMT_COUNT];
static char *kept_key = NULL;

/* The tables' sizes, in blocks, when the kept plans were made */
static BlockNumber kept_job_blocks;
static BlockNumber kept_event_blocks;

/* Growth or shrinkage below this many blocks never asks for new plans */
#define RESIZE_SLACK_BLOCKS 8

/*
 * Whether statements run as the owner now (see reaper_object_access), and
 * the subtransaction that began acting: only its abort, or an ancestor's,
 * ends that (owner code may abort subtransactions of its own meanwhile).
 */
static bool acting_as_owner = false;
static SubTransactionId acting_subid = InvalidSubTransactionId;

/*
 * The worker's hard deadline: a statement that code on the tables keeps
 * running past twice protea_reaper.statement_timeout (a trigger can catch
 * the cancel) ends the worker, which the postmaster starts again.
 */
static TimeoutId hard_deadline = MAX_TIMEOUTS;
volatile sig_atomic_t reaper_hard_deadline_hit = false;

static object_access_hook_type prev_object_access_hook = NULL;

/*
 * reaper_object_access
 *		While the reaper acts as the owner, owner code may create nothing.
 *		The security-restricted operation forbids temporary tables only:
 *		a trigger could still create a type, domain or function in the
 *		sweeping session's temporary schema, which that session searches
 *		first for types and would later run with its own rights.
 */
static void
reaper_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					 int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (acting_as_owner && access == OAT_POST_CREATE)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("code attached to PROTEA's tables may not create objects while protea_reaper writes them"),
				 errdetail("An object created during the sweep could be used later by the sweeping session, with its rights."),
				 errhint("Create what the tables' triggers need beforehand.")));
}

/* An aborted (sub)transaction ended any session it was in */
static void
reset_acting_as_owner(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		acting_as_owner = false;
}

static void
reset_acting_as_owner_sub(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	/* subtransaction ids grow: a later one is nested in ours */
	if (event == SUBXACT_EVENT_ABORT_SUB && mySubid <= acting_subid)
		acting_as_owner = false;
}

/* The hard deadline passed: end the worker as SIGTERM would (die()) */
static void
hard_deadline_handler(void)
{
	reaper_hard_deadline_hit = true;
	ProcDiePending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/*
 * reaper_plans_install_hooks
 *		From _PG_init, in every backend that loads the library.
 */
void
reaper_plans_install_hooks(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = reaper_object_access;
	RegisterXactCallback(reset_acting_as_owner, NULL);
	RegisterSubXactCallback(reset_acting_as_owner_sub, NULL);
}

/*
 * refuse_planted_temp_objects
 *		Owner code resolves unqualified names in the caller's temporary
 *		schema (pg_temp is on the search_path, last): a caller that may not
 *		act as the owner could plant a table or function there for the
 *		owner's trigger to run with the owner's rights.  Such a caller
 *		sweeps from a session without temporary objects.
 */
static void
refuse_planted_temp_objects(ReaperSession *session)
{
	Oid			temp_namespace;
	Oid			temp_toast_namespace;

	GetTempNamespaceState(&temp_namespace, &temp_toast_namespace);
	if (OidIsValid(temp_namespace) &&
		!has_privs_of_role(GetOuterUserId(), session->tables.owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("protea_reaper cannot act on %s from a session that has used temporary objects",
						session->tables.job_name),
				 errdetail("The tables' owner's code would resolve names in this session's temporary schema."),
				 errhint("Call it from a new session, or as a member of the tables' owner role.")));
}

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

	refuse_planted_temp_objects(session);

	SetUserIdAndSecContext(owner,
						   session->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	session->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);

	/*
	 * No JIT: LLVM's compiler never checks for interrupts, so a statement
	 * it compiled could outlive statement_timeout, a cancel and a
	 * terminate; and the statements are cheap to interpret.
	 */
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	acting_as_owner = true;
	acting_subid = GetCurrentSubTransactionId();
}

/*
 * reaper_session_begin
 *		Connect to SPI, resolve the tables from the settings, and act as
 *		their owner.
 */
void
reaper_session_begin(ReaperSession *session, bool need_event_index,
					 const ReaperPolicy *policy)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "protea_reaper could not connect to SPI");
	reaper_resolve_tables(&session->tables);
	if (need_event_index)
		reaper_check_event_index(&session->tables);
	if (policy != NULL)
		reaper_policy_fragments(policy, &session->tables);
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
	acting_as_owner = false;
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
 * relation_blocks
 *		A table's size in blocks, as the planner reads it (the file's
 *		length, not pg_class): a partitioned table's is its partitions'.
 */
static BlockNumber
relation_blocks(Oid relid)
{
	BlockNumber blocks = 0;

	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
	{
		ListCell   *lc;

		foreach(lc, find_all_inheritors(relid, AccessShareLock, NULL))
			if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_RELATION)
				blocks += relation_blocks(lfirst_oid(lc));
	}
	else
	{
		Relation	rel = table_open(relid, AccessShareLock);

		blocks = RelationGetNumberOfBlocks(rel);
		table_close(rel, AccessShareLock);
	}
	return blocks;
}

/*
 * resized
 *		Whether a table's size differs from then, when the kept plans were
 *		made, by more than half and the slack.  The planner costs a table by
 *		its current length, and statistics may be as old as autovacuum
 *		leaves them (or forever, with it off): plans made while job was
 *		nearly empty join the candidates to it by scanning it whole for
 *		each, fine for ten jobs and hours for a backlog of 100,000 that
 *		arrives at once.  Planned again at the new size, the same statements
 *		take the indexes.  Doubling is rare on a table that only grows, and
 *		planning them costs about a millisecond.
 */
static bool
resized(BlockNumber then, BlockNumber size)
{
	return (uint64) size > 2 * (uint64) then + RESIZE_SLACK_BLOCKS ||
		(uint64) then > 2 * (uint64) size + RESIZE_SLACK_BLOCKS;
}

/*
 * reaper_plan
 *		The plan of stmt for the session's tables.  A kept statement's plan
 *		is made once per backend and per resolution of the tables, and again
 *		when they have changed size; the others (rare, interactive) are
 *		prepared at each call.
 */
SPIPlanPtr
reaper_plan(ReaperSession *session, ReaperStatement stmt)
{
	char	   *key;
	BlockNumber job_blocks;
	BlockNumber event_blocks;

	if (!reaper_statements[stmt].kept)
		return prepare(session, stmt);

	key = reaper_tables_key(&session->tables);
	job_blocks = relation_blocks(session->tables.job_relid);
	event_blocks = relation_blocks(session->tables.event_relid);
	if (kept_key == NULL || strcmp(kept_key, key) != 0 ||
		resized(kept_job_blocks, job_blocks) || resized(kept_event_blocks, event_blocks))
	{
		forget_kept_plans();
		kept_key = MemoryContextStrdup(TopMemoryContext, key);
		kept_job_blocks = job_blocks;
		kept_event_blocks = event_blocks;
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
 * execute_with_hint
 *		SPI_execute_plan, with a hint on an ERROR of a name that did not
 *		resolve: the statements name only their tables and pg_catalog, so
 *		such a name is in code the owner attached to the tables, which runs
 *		with the reaper's search_path (act_as_owner).
 */
static int
execute_with_hint(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			ret = 0;

	PG_TRY();
	{
		ret = SPI_execute_plan(plan, values, nulls, read_only, 0);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->hint == NULL &&
			(edata->sqlerrcode == ERRCODE_UNDEFINED_TABLE ||
			 edata->sqlerrcode == ERRCODE_UNDEFINED_FUNCTION ||
			 edata->sqlerrcode == ERRCODE_UNDEFINED_OBJECT))
		{
			FlushErrorState();
			edata->hint = pstrdup("Code attached to PROTEA's tables (a trigger, a default) runs with search_path = pg_catalog, pg_temp while protea_reaper writes them: qualify the names it uses, or give its function a search_path (ALTER FUNCTION ... SET search_path = ...); protea_reaper_check() lists such trigger functions.");
			ReThrowError(edata);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	return ret;
}

/*
 * reaper_execute
 *		Run a plan.  In the worker, protea_reaper.statement_timeout bounds
 *		it: the server arms statement_timeout only for a client's query, so
 *		the worker arms it itself (and disarms it after an ERROR, see
 *		worker.c), and past twice that a hard deadline ends the worker.
 */
void
reaper_execute(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only)
{
	bool		timed = protea_am_background_worker() && reaper_statement_timeout_ms > 0;
	int			ret;

	if (timed)
	{
		if (hard_deadline == MAX_TIMEOUTS)
			hard_deadline = RegisterTimeout(USER_TIMEOUT, hard_deadline_handler);
		enable_timeout_after(STATEMENT_TIMEOUT, reaper_statement_timeout_ms);
		enable_timeout_after(hard_deadline,
							 reaper_statement_timeout_ms > INT_MAX / 2 ? INT_MAX :
							 2 * reaper_statement_timeout_ms);
	}
	ret = execute_with_hint(plan, values, nulls, read_only);
	if (timed)
	{
		disable_timeout(STATEMENT_TIMEOUT, false);
		disable_timeout(hard_deadline, false);
	}
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "protea_reaper statement failed: %s", SPI_result_code_string(ret));
}

/*
 * reaper_disarm_timers
 *		After an ERROR in the worker: a timer armed by reaper_execute must not
 *		fire while the worker sleeps.
 */
void
reaper_disarm_timers(void)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
	if (hard_deadline != MAX_TIMEOUTS)
		disable_timeout(hard_deadline, false);
}
