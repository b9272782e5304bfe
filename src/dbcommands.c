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
 * exits once connected if the hold is still there.  Only a command that
 * passes the server's own checks stops anything (command_can_succeed), and
 * rolling back to a savepoint lets go: a failed attempt must not be a way
 * to keep the reaper away.
 *
 * CREATE EXTENSION protea_reaper, CREATE DATABASE and ALTER DATABASE wake
 * the launcher when their transaction commits, so that a new installation
 * is reaped within an interval, without a restart.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/tablespace.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
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

/*
 * Databases this backend holds, and those to wake the launcher about at
 * commit (InvalidOid: none in particular), each with the transaction nesting
 * level that did it: rolling back to a savepoint undoes both.
 */
typedef struct Marked
{
	Oid			dboid;
	int			level;
} Marked;

static List *held_databases = NIL;
static List *poked_databases = NIL;

/* Remember a database in one of the lists above, for this transaction */
static void
mark(List **list, Oid dboid)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	Marked	   *m = palloc(sizeof(Marked));

	m->dboid = dboid;
	m->level = GetCurrentTransactionNestLevel();
	*list = lappend(*list, m);
	MemoryContextSwitchTo(old);
}

/* Whether the current user may create databases (dbcommands.c's rule) */
static bool
may_create_databases(void)
{
	HeapTuple	tup;
	bool		result;

	if (superuser())
		return true;
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	if (!HeapTupleIsValid(tup))
		return false;
	result = ((Form_pg_authid) GETSTRUCT(tup))->rolcreatedb;
	ReleaseSysCache(tup);
	return result;
}

/* The tablespace a database is in */
static Oid
database_tablespace(Oid dboid)
{
	HeapTuple	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	Oid			result;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	result = ((Form_pg_database) GETSTRUCT(tup))->dattablespace;
	ReleaseSysCache(tup);
	return result;
}

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

/*
 * command_can_succeed
 *		Whether the statement passes the checks the server makes before it
 *		looks for other sessions in the database: only then is the reaper
 *		stopped.  A command bound to fail (no right to run it, in a
 *		transaction block, the current database, a name taken, a tablespace
 *		it is in already) must not be a way to keep a reaper away.
 */
static bool
command_can_succeed(Node *stmt, Oid dboid)
{
	ListCell   *lc;

	if (!protea_database_ownercheck(dboid, GetUserId()) || dboid == MyDatabaseId)
		return false;
	switch (nodeTag(stmt))
	{
		case T_DropdbStmt:
			return !IsTransactionBlock();
		case T_RenameStmt:
			return may_create_databases() &&
				!OidIsValid(get_database_oid(((RenameStmt *) stmt)->newname, true));
		case T_AlterDatabaseStmt:
			if (IsTransactionBlock())
				return false;
			foreach(lc, ((AlterDatabaseStmt *) stmt)->options)
			{
				DefElem    *opt = (DefElem *) lfirst(lc);

				if (strcmp(opt->defname, "tablespace") == 0)
					return get_tablespace_oid(defGetString(opt), true) !=
						database_tablespace(dboid);
			}
			return false;
		case T_CreatedbStmt:
			return !IsTransactionBlock() && may_create_databases();
		default:
			return false;
	}
}

/* Whether a statement that ran may change which databases are reaped */
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
 *		Hold the database and stop its reaper; wait until the reaper's
 *		process has left the server.
 */
static void
stop_reaper(Oid dboid, const char *dbname, const char *what)
{
	pid_t		pid;
	TimestampTz deadline;

	mark(&held_databases, dboid);
	pid = reaper_status_hold(dboid);
	if (pid == 0)
		return;

	ereport(LOG,
			(errmsg("protea_reaper stops the reaper of database \"%s\" (pid %d) for %s",
					dbname, (int) pid, what),
			 errdetail("It starts again when this transaction ends.")));
	kill(pid, SIGTERM);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), REAPER_STOP_WAIT_MS);
	while ((!reaper_status_gone(dboid) || BackendPidGetProc(pid) != NULL) &&
		   GetCurrentTimestamp() < deadline)
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
	{
		Oid			dboid = get_database_oid(dbname, true);

		if (OidIsValid(dboid) && command_can_succeed(stmt, dboid))
			stop_reaper(dboid, dbname, what);
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	/* only a statement that ran wakes the launcher (at commit) */
	if (pokes_launcher(stmt, &poke_dboid))
		mark(&poked_databases, poke_dboid);
}

/* Let go of the databases held at nesting level "level" or deeper */
static void
let_go(int level)
{
	ListCell   *lc;

	foreach(lc, held_databases)
	{
		Marked	   *m = (Marked *) lfirst(lc);

		if (m->level < level)
			continue;
		reaper_status_unhold(m->dboid);
		reaper_status_poke_launcher(InvalidOid);
		held_databases = foreach_delete_current(held_databases, lc);
		pfree(m);
	}
	foreach(lc, poked_databases)
	{
		Marked	   *m = (Marked *) lfirst(lc);

		if (m->level < level)
			continue;
		poked_databases = foreach_delete_current(poked_databases, lc);
		pfree(m);
	}
}

/*
 * At the end of the transaction: let go of the databases held, and wake the
 * launcher if anything it reaps may have changed.  Only a commit counts as
 * a change; an abort still lets go.  A prepared transaction keeps its locks
 * on the database, which keep a starting reaper out.
 */
static void
dbcommands_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	if (held_databases == NIL && poked_databases == NIL)
		return;
	if (event == XACT_EVENT_COMMIT)
	{
		foreach(lc, poked_databases)
			reaper_status_poke_launcher(((Marked *) lfirst(lc))->dboid);
	}
	let_go(0);
}

/* Rolled back to a savepoint: what the subtransaction held or asked goes */
static void
dbcommands_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB &&
		(held_databases != NIL || poked_databases != NIL))
		let_go(GetCurrentTransactionNestLevel());
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
	RegisterSubXactCallback(dbcommands_subxact_callback, NULL);
}
