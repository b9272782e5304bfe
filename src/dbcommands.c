/*-------------------------------------------------------------------------
 *
 * dbcommands.c
 *	  Keeps the reapers out of a DBA's way, and tells the launcher about
 *	  new databases and new installations.
 *
 * DROP DATABASE, ALTER DATABASE ... RENAME and ... SET TABLESPACE, and
 * CREATE DATABASE ... TEMPLATE need their database to themselves: they fail
 * with "being accessed by other users" while anyone is connected there.
 * Loaded in every backend by shared_preload_libraries, a utility hook stops
 * that database's reaper and waits for it to exit before the command runs,
 * and holds the database so that the launcher does not start it again until
 * the command's transaction ends; then the launcher is woken and reaping
 * resumes by itself (after a RENAME, under the new name).  A reaper that is
 * starting meanwhile blocks on the command's lock on the database, and
 * exits once connected if the hold is still there.  Only a user who may run
 * the command (the database's owner, or a superuser) stops anything: a
 * failed attempt by anyone else must not be a way to keep the reaper away.
 *
 * CREATE EXTENSION protea_reaper, CREATE DATABASE and ALTER DATABASE wake
 * the launcher when their transaction commits, so that a new installation
 * is reaped within an interval, without a restart.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "dbcommands.h"
#include "protea_reaper.h"
#include "status.h"

/*
 * How long a command waits for a reaper to exit.  It exits within
 * milliseconds of SIGTERM, even mid-statement; the server's own check then
 * waits up to 5 s more for any process still in the database.
 */
#define REAPER_STOP_WAIT_MS (10 * 1000)

static ProcessUtility_hook_type prev_process_utility = NULL;

/* Databases this backend holds, and whether to wake the launcher at commit */
static List *held_databases = NIL;
static List *poked_databases = NIL;
static bool poke_pending = false;

/*
 * database_command
 *		The database a statement needs to itself, or NULL; *what names the
 *		command for the log.
 */
static const char *
database_command(Node *stmt, const char **what)
{
	ListCell   *lc;

	switch (nodeTag(stmt))
	{
		case T_DropdbStmt:
			*what = "DROP DATABASE";
			return ((DropdbStmt *) stmt)->dbname;
		case T_RenameStmt:
			if (((RenameStmt *) stmt)->renameType != OBJECT_DATABASE)
				return NULL;
			*what = "ALTER DATABASE ... RENAME";
			return ((RenameStmt *) stmt)->subname;
		case T_AlterDatabaseStmt:
			foreach(lc, ((AlterDatabaseStmt *) stmt)->options)
			{
				if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
				{
					*what = "ALTER DATABASE ... SET TABLESPACE";
					return ((AlterDatabaseStmt *) stmt)->dbname;
				}
			}
			return NULL;
		case T_CreatedbStmt:
			*what = "CREATE DATABASE ... TEMPLATE";
			foreach(lc, ((CreatedbStmt *) stmt)->options)
			{
				DefElem    *opt = (DefElem *) lfirst(lc);

				if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
					return defGetString(opt);
			}
			return "template1";
		default:
			return NULL;
	}
}

/* Whether a statement may change which databases the launcher reaps */
static bool
pokes_launcher(Node *stmt, Oid *dboid)
{
	*dboid = InvalidOid;
	switch (nodeTag(stmt))
	{
		case T_CreateExtensionStmt:
			if (strcmp(((CreateExtensionStmt *) stmt)->extname, REAPER_NAME) != 0)
				return false;
			*dboid = MyDatabaseId;
			return true;
		case T_CreatedbStmt:
		case T_AlterDatabaseStmt:
		case T_DropdbStmt:
			return true;
		case T_RenameStmt:
			return ((RenameStmt *) stmt)->renameType == OBJECT_DATABASE ||
				((RenameStmt *) stmt)->renameType == OBJECT_ROLE;
		case T_CreateRoleStmt:
			/* protea_reaper.role may name it: no need to wait for a retry */
			return true;
		default:
			return false;
	}
}

/*
 * stop_reaper
 *		Hold the database and stop its reaper, if the user may run the
 *		command at all; wait until the reaper has exited.
 */
static void
stop_reaper(const char *dbname, const char *what)
{
	Oid			dboid = get_database_oid(dbname, true);
	pid_t		pid;
	TimestampTz deadline;
	MemoryContext old;

	if (!OidIsValid(dboid) || !protea_database_ownercheck(dboid, GetUserId()))
		return;

	old = MemoryContextSwitchTo(TopMemoryContext);
	held_databases = lappend_oid(held_databases, dboid);
	MemoryContextSwitchTo(old);
	pid = reaper_status_hold(dboid, what);
	if (pid == 0)
		return;

	ereport(LOG,
			(errmsg("protea_reaper stops the reaper of database \"%s\" (pid %d) for %s",
					dbname, (int) pid, what),
			 errdetail("It starts again when this transaction ends.")));
	kill(pid, SIGTERM);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), REAPER_STOP_WAIT_MS);
	while (!reaper_status_gone(dboid) && GetCurrentTimestamp() < deadline)
	{
		/* interrupts, including procsignal barriers, are absorbed here */
		CHECK_FOR_INTERRUPTS();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

static void
reaper_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	const char *what = NULL;
	const char *dbname = database_command(stmt, &what);
	Oid			poke_dboid;

	if (dbname != NULL)
		stop_reaper(dbname, what);
	if (pokes_launcher(stmt, &poke_dboid))
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		poke_pending = true;
		if (OidIsValid(poke_dboid))
			poked_databases = lappend_oid(poked_databases, poke_dboid);
		MemoryContextSwitchTo(old);
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * At the end of the transaction: let go of the databases held, and wake the
 * launcher if anything it reaps may have changed.  Only a commit counts as
 * a change; an abort still lets go.
 */
static void
dbcommands_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;
	bool		commit = (event == XACT_EVENT_COMMIT);

	/* a prepared transaction keeps its locks, which keep reapers out */
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	if (held_databases == NIL && !poke_pending)
		return;

	foreach(lc, held_databases)
		reaper_status_unhold(lfirst_oid(lc));
	if (commit && poked_databases != NIL)
	{
		foreach(lc, poked_databases)
			reaper_status_poke_launcher(lfirst_oid(lc));
	}
	else if (held_databases != NIL || (commit && poke_pending))
		reaper_status_poke_launcher(InvalidOid);

	list_free(held_databases);
	list_free(poked_databases);
	held_databases = NIL;
	poked_databases = NIL;
	poke_pending = false;
}

/*
 * reaper_dbcommands_install_hooks
 *		Called from _PG_init when preloaded, so in every backend.
 */
void
reaper_dbcommands_install_hooks(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = reaper_process_utility;
	RegisterXactCallback(dbcommands_xact_callback, NULL);
}
