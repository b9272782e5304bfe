/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  NOTIFY protea_reaper: the jobs a sweep or an operator failed, sent
 *	  with the transaction that failed them.
 *
 * Applications LISTEN to retry or alert on a rescued job instead of
 * polling.  A manual sweep or fail queues its notification in the caller's
 * transaction, so PostgreSQL delivers it only if that transaction commits:
 * a rolled-back sweep notifies nothing.  The worker commits a sweep batch
 * by batch, and sends one notification of the batches that committed, in
 * a transaction of its own once the sweep is over (worker.c): so a failure
 * to notify can never undo its failures.
 *
 * Notifying must not stop the reaping either: when a listener that does not
 * read has filled half of the notification queue (where a full one would
 * make the commit fail), the notification is left out with a WARNING.
 *
 * The payload is one JSON object:
 *
 *	{"database": "protea", "source": "worker", "error_code": "JobTimeout",
 *	 "reason": "stalled", "count": 2, "ids": ["...", "..."],
 *	 "truncated": false}
 *
 * with as many ids as fit in a notification (about 200); "truncated" says
 * that count is larger than the ids listed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "utils/fmgrprotos.h"
#include "commands/dbcommands.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/uuid.h"

#include "notify.h"
#include "protea_reaper.h"
#include "settings.h"

/* The longest payload NOTIFY accepts (async.c's limit, less its NUL) */
#define NOTIFY_MAX_BYTES (BLCKSZ - NAMEDATALEN - 128 - 1)

/* The two endings of a payload; ids are listed while the longer still fits */
#define END_COMPLETE "],\"truncated\":false}"
#define END_TRUNCATED "],\"truncated\":true}"
#define END_MAX_BYTES Max(strlen(END_COMPLETE), strlen(END_TRUNCATED))

/* Leave notifications out once the queue is this full */
#define QUEUE_USAGE_MAX 0.5

/* A job id as text, and how much of the payload one takes: "id", */
#define ID_CHARS (2 * UUID_LEN + 4)
#define ID_BYTES (ID_CHARS + 3)

/* More ids than ever fit */
#define MAX_IDS (NOTIFY_MAX_BYTES / ID_BYTES + 1)

/*
 * The jobs failed since reaper_notify_start(): the first "committed" of
 * them in transactions that committed, the rest in the current one.
 * Static, not palloc'd: the worker's batches are transactions of their
 * own, and what they failed must outlive each.
 */
static char ids[MAX_IDS][ID_CHARS + 1];
static int	n_ids;
static int	n_ids_committed;
static uint64 count;
static uint64 count_committed;
static bool stalled,
			stalled_committed;
static bool capped_any,
			capped_committed;

void
reaper_notify_start(void)
{
	n_ids = n_ids_committed = 0;
	count = count_committed = 0;
	stalled = stalled_committed = capped_any = capped_committed = false;
}

void
reaper_notify_job(const char *id, bool capped)
{
	if (n_ids < MAX_IDS)
		strlcpy(ids[n_ids++], id, ID_CHARS + 1);
	count++;
	if (capped)
		capped_any = true;
	else
		stalled = true;
}

void
reaper_notify_batch_ended(void)
{
	n_ids_committed = n_ids;
	count_committed = count;
	stalled_committed = stalled;
	capped_committed = capped_any;
}

void
reaper_notify_batch_aborted(void)
{
	n_ids = n_ids_committed;
	count = count_committed;
	stalled = stalled_committed;
	capped_any = capped_committed;
}

/* Why a sweep failed its jobs */
static const char *
sweep_reason(void)
{
	if (stalled && capped_any)
		return "stalled, max_runtime";
	return capped_any ? "max_runtime" : "stalled";
}

void
reaper_notify_send(const char *source, const char *reason)
{
	StringInfoData payload;
	int			listed = 0;
	double		usage;

	if (!reaper_notify || count == 0)
		return;

	usage = DatumGetFloat8(DirectFunctionCall1(pg_notification_queue_usage, (Datum) 0));
	if (usage > QUEUE_USAGE_MAX)
	{
		ereport(WARNING,
				(errmsg("protea_reaper did not notify of " UINT64_FORMAT " failed job(s): the notification queue is %.0f%% full",
						count, usage * 100),
				 errdetail("A session that listens on a channel of this database is not reading its notifications."),
				 errhint("Find it in pg_stat_activity (idle in transaction, or a long query) and end it, or set protea_reaper.notify = off.")));
		return;
	}

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"database\":");
	escape_json(&payload, get_database_name(MyDatabaseId));
	appendStringInfoString(&payload, ",\"source\":");
	escape_json(&payload, source);
	appendStringInfo(&payload, ",\"error_code\":\"%s\",\"reason\":",
					 reason ? "ManualTimeout" : "JobTimeout");
	escape_json(&payload, reason ? reason : sweep_reason());
	appendStringInfo(&payload, ",\"count\":" UINT64_FORMAT ",\"ids\":[", count);

	/* as many ids as leave room for the longer ending */
	for (; listed < n_ids; listed++)
	{
		if (payload.len + ID_BYTES + END_MAX_BYTES > NOTIFY_MAX_BYTES)
			break;
		appendStringInfo(&payload, "%s\"%s\"", listed > 0 ? "," : "", ids[listed]);
	}
	appendStringInfoString(&payload, (uint64) listed < count ? END_TRUNCATED : END_COMPLETE);
	Assert(payload.len <= NOTIFY_MAX_BYTES);

	Async_Notify(REAPER_NAME, payload.data);
}
