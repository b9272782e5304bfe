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
 * The payload of the jobs failed is one JSON object:
 *
 *	{"database": "protea", "source": "worker", "error_code": "JobTimeout",
 *	 "reason": "stalled", "count": 2, "ids": ["...", "..."],
 *	 "truncated": false}
 *
 * with as many ids as fit in a notification (about 200); "truncated" says
 * that count is larger than the ids listed.  Jobs failed because their
 * lease lapsed come in a notification of their own, with error_code and
 * reason "lease_expired".  Jobs put back in the queue come in a third,
 * for a listener to publish them again to PROTEA's broker, which the
 * database cannot reach:
 *
 *	{"database": "protea", "source": "worker", "action": "requeue",
 *	 "count": 1, "jobs": [{"id": "...", "queue_name": "protea.jobs"}],
 *	 "truncated": false}
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "utils/fmgrprotos.h"
#include "commands/dbcommands.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/memutils.h"
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
 * One notification's jobs since reaper_notify_start(): the first
 * "committed" of them in transactions that committed, the rest in the
 * current one.  Static, not palloc'd: the worker's batches are
 * transactions of their own, and what they did must outlive each.
 */
typedef struct NotifyGroup
{
	char		ids[MAX_IDS][ID_CHARS + 1];
	char	   *queues[MAX_IDS];	/* requeues: in notify_cxt */
	int			n_ids;
	int			n_ids_committed;
	uint64		count;
	uint64		count_committed;
	bool		stalled,
				stalled_committed;
	bool		capped,
				capped_committed;
} NotifyGroup;

/* The three notifications: failed by a sweep's thresholds, by a lease, re-queued */
static NotifyGroup timeouts;
static NotifyGroup leases;
static NotifyGroup requeues;

/* The queue names of the re-queued jobs, until the next start */
static MemoryContext notify_cxt = NULL;

static void
group_start(NotifyGroup *g)
{
	g->n_ids = g->n_ids_committed = 0;
	g->count = g->count_committed = 0;
	g->stalled = g->stalled_committed = g->capped = g->capped_committed = false;
}

void
reaper_notify_start(void)
{
	group_start(&timeouts);
	group_start(&leases);
	group_start(&requeues);
	if (notify_cxt == NULL)
		notify_cxt = AllocSetContextCreate(TopMemoryContext, "protea_reaper notify",
										   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(notify_cxt);
}

/* Add a job to g; queue: its queue's name, kept, or NULL */
static void
group_add(NotifyGroup *g, const char *id, const char *queue)
{
	if (g->n_ids < MAX_IDS)
	{
		g->queues[g->n_ids] = queue ? MemoryContextStrdup(notify_cxt, queue) : NULL;
		strlcpy(g->ids[g->n_ids++], id, ID_CHARS + 1);
	}
	g->count++;
}

void
reaper_notify_job(const char *id, ReaperNotifyCause cause)
{
	switch (cause)
	{
		case NOTIFY_STALLED:
		case NOTIFY_CAPPED:
			group_add(&timeouts, id, NULL);
			if (cause == NOTIFY_CAPPED)
				timeouts.capped = true;
			else
				timeouts.stalled = true;
			break;
		case NOTIFY_LEASE_EXPIRED:
			group_add(&leases, id, NULL);
			break;
	}
}

void
reaper_notify_requeued(const char *id, const char *queue_name)
{
	group_add(&requeues, id, queue_name);
}

static void
group_ended(NotifyGroup *g)
{
	g->n_ids_committed = g->n_ids;
	g->count_committed = g->count;
	g->stalled_committed = g->stalled;
	g->capped_committed = g->capped;
}

void
reaper_notify_batch_ended(void)
{
	group_ended(&timeouts);
	group_ended(&leases);
	group_ended(&requeues);
}

static void
group_aborted(NotifyGroup *g)
{
	g->n_ids = g->n_ids_committed;
	g->count = g->count_committed;
	g->stalled = g->stalled_committed;
	g->capped = g->capped_committed;
}

void
reaper_notify_batch_aborted(void)
{
	group_aborted(&timeouts);
	group_aborted(&leases);
	group_aborted(&requeues);
}

/* Why a sweep failed its jobs */
static const char *
sweep_reason(void)
{
	if (timeouts.stalled && timeouts.capped)
		return "stalled, max_runtime";
	return timeouts.capped ? "max_runtime" : "stalled";
}

/* Whether the notification queue has room; a WARNING when it has not */
static bool
queue_has_room(uint64 jobs)
{
	double		usage = DatumGetFloat8(DirectFunctionCall1(pg_notification_queue_usage,
														   (Datum) 0));

	if (usage <= QUEUE_USAGE_MAX)
		return true;
	ereport(WARNING,
			(errmsg("protea_reaper did not notify of " UINT64_FORMAT " failed or re-queued job(s): the notification queue is %.0f%% full",
					jobs, usage * 100),
			 errdetail("A session that listens on a channel of this database is not reading its notifications."),
			 errhint("Find it in pg_stat_activity (idle in transaction, or a long query) and end it, or set protea_reaper.notify = off.")));
	return false;
}

/* The payload's opening: {"database":...,"source":..., */
static void
payload_start(StringInfo payload, const char *source)
{
	initStringInfo(payload);
	appendStringInfoString(payload, "{\"database\":");
	escape_json(payload, get_database_name(MyDatabaseId));
	appendStringInfoString(payload, ",\"source\":");
	escape_json(payload, source);
}

/*
 * The list of g's jobs, as many as leave room for the longer ending, and
 * that ending; entry: a job's JSON (an id, or an object)
 */
static void
payload_jobs(StringInfo payload, const NotifyGroup *g, bool with_queue)
{
	int			listed = 0;

	for (; listed < g->n_ids; listed++)
	{
		StringInfoData entry;

		initStringInfo(&entry);
		if (with_queue)
		{
			appendStringInfo(&entry, "{\"id\":\"%s\",\"queue_name\":", g->ids[listed]);
			if (g->queues[listed])
				escape_json(&entry, g->queues[listed]);
			else
				appendStringInfoString(&entry, "null");
			appendStringInfoChar(&entry, '}');
		}
		else
			appendStringInfo(&entry, "\"%s\"", g->ids[listed]);
		if (payload->len + entry.len + 1 + END_MAX_BYTES > NOTIFY_MAX_BYTES)
			break;
		appendStringInfo(payload, "%s%s", listed > 0 ? "," : "", entry.data);
	}
	appendStringInfoString(payload, (uint64) listed < g->count ? END_TRUNCATED : END_COMPLETE);
	Assert(payload->len <= NOTIFY_MAX_BYTES);
}

/* The notification of the jobs failed, with error_code and reason */
static void
send_failed(const NotifyGroup *g, const char *source, const char *error_code,
			const char *reason)
{
	StringInfoData payload;

	if (g->count == 0)
		return;
	payload_start(&payload, source);
	appendStringInfo(&payload, ",\"error_code\":\"%s\",\"reason\":", error_code);
	escape_json(&payload, reason);
	appendStringInfo(&payload, ",\"count\":" UINT64_FORMAT ",\"ids\":[", g->count);
	payload_jobs(&payload, g, false);
	Async_Notify(REAPER_NAME, payload.data);
}

/* The notification of the jobs re-queued, with their queues */
static void
send_requeued(const char *source)
{
	StringInfoData payload;

	if (requeues.count == 0)
		return;
	payload_start(&payload, source);
	appendStringInfo(&payload, ",\"action\":\"requeue\",\"count\":" UINT64_FORMAT ",\"jobs\":[",
					 requeues.count);
	payload_jobs(&payload, &requeues, true);
	Async_Notify(REAPER_NAME, payload.data);
}

void
reaper_notify_send(const char *source, const char *reason)
{
	uint64		jobs = timeouts.count + leases.count + requeues.count;

	if (!reaper_notify || jobs == 0 || !queue_has_room(jobs))
		return;
	send_failed(&timeouts, source, reason ? "ManualTimeout" : "JobTimeout",
				reason ? reason : sweep_reason());
	send_failed(&leases, source, "lease_expired", "lease_expired");
	send_requeued(source);
}
