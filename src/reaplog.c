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
 * dropped with an aborted (sub)transaction; a transaction with lines queued
 * cannot be prepared for two-phase commit.  A sweep writes at most
 * REAPLOG_MAX_JOB_LINES of them; the sweep's summary counts the rest.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
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
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * COMMIT PREPARED runs in another session, or after a restart,
			 * where these lines are not: the failures would never be logged.
			 * (With protea_reaper.notify on, PostgreSQL refuses to prepare
			 * the transaction's NOTIFY too.)
			 */
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that failed jobs with protea_reaper"),
					 errdetail("Failures are logged when their transaction commits, and COMMIT PREPARED runs where their log lines are not."),
					 errhint("Commit the transaction instead, or run protea_reaper_run_once() or protea_reaper_fail_job() in a transaction of its own.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
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
						reaper_log_text(operation), started_at, last_event, message));
	return true;
}

/*
 * reaplog_requeued_job
 *		Queue "Reaper re-queued job <id>." for the commit.
 */
bool
reaplog_requeued_job(const char *id, const char *operation, const char *started_at,
					 const char *last_event, const char *prior, const char *budget,
					 const char *queue)
{
	if (lines_left <= 0)
		return false;
	lines_left--;
	queue_line(true, LOG,
			   psprintf("Reaper re-queued job %s.", id),
			   psprintf("operation %s, started_at %s, last job_event %s; its lease expired: re-queue %d of %s, to queue %s.",
						reaper_log_text(operation), started_at, last_event,
						atoi(prior) + 1, budget, reaper_log_text(queue)));
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

/*
 * reaper_unprintable
 *		Whether code point c would let a reason forge or hide part of a log
 *		line: a control character (Unicode Cc), a format character such as
 *		a bidirectional override or a zero-width space (Cf), or a line or
 *		paragraph separator (Zl, Zp).
 */
bool
reaper_unprintable(pg_wchar c)
{
	static const pg_wchar format_ranges[][2] = {
		{0x00AD, 0x00AD}, {0x0600, 0x0605}, {0x061C, 0x061C}, {0x06DD, 0x06DD},
		{0x070F, 0x070F}, {0x08E2, 0x08E2}, {0x180E, 0x180E}, {0x200B, 0x200F},
		{0x2028, 0x202E}, {0x2060, 0x2064}, {0x2066, 0x206F}, {0xFEFF, 0xFEFF},
		{0xFFF9, 0xFFFB}, {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
		{0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A},
		{0xE0001, 0xE0001}, {0xE0020, 0xE007F},
	};

	if (c < 0x20 || (c >= 0x7F && c <= 0x9F))
		return true;
	for (int i = 0; i < lengthof(format_ranges); i++)
		if (c >= format_ranges[i][0] && c <= format_ranges[i][1])
			return true;
	return false;
}

/* Whether code point c is white space (Unicode White_Space, printable ones) */
bool
reaper_blank(pg_wchar c)
{
	return c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
		c == 0x202F || c == 0x205F || c == 0x3000;
}

/* The code point at p (and its length): UTF-8 decoded, else one byte */
pg_wchar
reaper_next_char(const char *p, int *len)
{
	if (GetDatabaseEncoding() == PG_UTF8)
	{
		*len = pg_utf_mblen((const unsigned char *) p);
		return utf8_to_unicode((const unsigned char *) p);
	}
	/* single-byte encodings: 0x80-0x9F are the C1 controls */
	*len = pg_database_encoding_max_length() == 1 ? 1 : pg_mblen(p);
	return *len == 1 ? (unsigned char) *p : 0xFFFD;
}

/*
 * reaper_log_text
 *		Text an application or a table owner wrote (an operation, a status
 *		label), quoted for a log line, with every unprintable character
 *		escaped: it cannot end the line or pass for another field.  Past
 *		REAPLOG_MAX_TEXT_CHARS characters it is cut, and its length said.
 */
char *
reaper_log_text(const char *s)
{
	StringInfoData out;
	int			len;
	int			chars = 0;
	const char *p;

	initStringInfo(&out);
	appendStringInfoChar(&out, '"');
	for (p = s; *p != '\0'; p += len)
	{
		pg_wchar	c;

		/* a log line stays a line: the rest of a long text is counted */
		if (chars++ == REAPLOG_MAX_TEXT_CHARS)
		{
			appendStringInfo(&out, "\"... (%zu bytes in all)", strlen(s));
			return out.data;
		}
		c = reaper_next_char(p, &len);

		if (reaper_unprintable(c))
			appendStringInfo(&out, c <= 0xFF ? "\\x%02X" : "\\u%04X", (unsigned int) c);
		else if (*p == '"' || *p == '\\')
			appendStringInfo(&out, "\\%c", *p);
		else
			appendBinaryStringInfo(&out, p, len);
	}
	appendStringInfoChar(&out, '"');
	return out.data;
}
