/*-------------------------------------------------------------------------
 *
 * reaplog.c
 *	  The per-job "Reaper failed stale job" lines, written only once the
 *	  failures they report have committed.
 *
 * A line written while the batch runs would report a failure that may yet
 * roll back: a SIGTERM mid-batch, a deferred trigger raising at commit, a
 * manual sweep whose caller rolls back.  So lines are queued with the
 * (sub)transaction that made them, written by a commit callback, and
 * dropped with an aborted (sub)transaction.  A sweep writes at most
 * REAPLOG_MAX_JOB_LINES of them; the sweep's summary counts the rest.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "nodes/pg_list.h"
#include "utils/memutils.h"

#include "reaplog.h"

/* A queued line, and the subtransaction it belongs to */
typedef struct PendingLine
{
	SubTransactionId subid;
	bool		job;			/* a per-job line (counts in the allowance) */
	int			elevel;
	char	   *message;
	char	   *detail;
} PendingLine;

/* Lines of the current transaction, in TopTransactionContext */
static List *pending = NIL;

/* Per-job lines the current sweep may still write */
static int	lines_left = REAPLOG_MAX_JOB_LINES;

static bool callbacks_registered = false;

/* Give the allowance of dropped per-job lines back */
static void
drop_line(PendingLine *line)
{
	if (line->job)
		lines_left++;
}

/* Write every queued line: the transaction has committed */
static void
write_pending(void)
{
	ListCell   *lc;

	foreach(lc, pending)
	{
		PendingLine *line = lfirst(lc);

		ereport(line->elevel,
				(errmsg_internal("%s", line->message),
				 line->detail ? errdetail_internal("%s", line->detail) : 0));
	}
}

static void
reaplog_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (pending == NIL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			write_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction commits elsewhere: nothing is known */
			foreach(lc, pending)
				drop_line(lfirst(lc));
			break;
		default:
			return;
	}
	/* the memory goes with TopTransactionContext */
	pending = NIL;
}

static void
reaplog_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	foreach(lc, pending)
	{
		PendingLine *line = lfirst(lc);

		if (line->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			line->subid = parentSubid;
		else if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			drop_line(line);
			pending = foreach_delete_current(pending, lc);
		}
	}
}

/* Queue one line in the current transaction */
static void
queue_line(bool job, int elevel, char *message, char *detail)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingLine *line = palloc(sizeof(PendingLine));

	if (!callbacks_registered)
	{
		RegisterXactCallback(reaplog_xact_callback, NULL);
		RegisterSubXactCallback(reaplog_subxact_callback, NULL);
		callbacks_registered = true;
	}
	line->subid = GetCurrentSubTransactionId();
	line->job = job;
	line->elevel = elevel;
	line->message = pstrdup(message);
	line->detail = detail ? pstrdup(detail) : NULL;
	pending = lappend(pending, line);
	MemoryContextSwitchTo(old);
}

/*
 * reaplog_start_sweep
 *		A sweep begins: it may write REAPLOG_MAX_JOB_LINES per-job lines.
 */
void
reaplog_start_sweep(void)
{
	lines_left = REAPLOG_MAX_JOB_LINES;
}

/*
 * reaplog_failed_job
 *		Queue "Reaper failed stale job <id>." for the commit.
 */
bool
reaplog_failed_job(const char *id, const char *operation,
				   const char *started_at, const char *last_event,
				   const char *message)
{
	if (lines_left <= 0)
		return false;
	lines_left--;
	queue_line(true, LOG,
			   psprintf("Reaper failed stale job %s.", id),
			   psprintf("operation %s, started_at %s, last job_event %s; %s.",
						operation, started_at, last_event, message));
	return true;
}

/*
 * reaplog_at_commit
 *		Queue any line for the commit, after those queued before it.
 */
void
reaplog_at_commit(int elevel, const char *message, const char *detail)
{
	queue_line(false, elevel, (char *) message, (char *) detail);
}
