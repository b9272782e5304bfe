/*-------------------------------------------------------------------------
 *
 * known_alive.c
 *	  What earlier sweeps in this backend learnt: which jobs a recent
 *	  job_event keeps alive, and since which event.
 *
 * Almost all of an idle sweep is one backward index probe of job_event per
 * running job past the timeout, to find its last event; and a worker that
 * sweeps every minute meets the same long-running jobs every cycle.  A job
 * whose last event a sweep saw at L cannot go stale before L + its
 * stall_seconds, because PROTEA only ever appends events: so until then
 * (or until its runtime cap, if sooner) the next sweeps count it as alive
 * without the probe.  The statement that learns works that time out, as
 * "alive until", for each job with its own thresholds (statements.c).
 *
 * It also remembers running jobs that are younger than their own timeout
 * but older than the shortest timeout in force (a policy row gave another
 * operation a shorter one), until they become candidates: the idle sweep's
 * range scan meets them at every sweep, and they need no more than their
 * start and their operation's thresholds, which do not change (PROTEA never
 * moves started_at back).
 *
 * When it may learn is decided here too: only while the batch's
 * transaction has written nothing (its snapshot then shows committed events
 * only; an event the caller inserted and may yet roll back must not keep a
 * job from being failed later), and never an event dated after the batch's
 * now() (a writer's clock ahead of the database's would keep the job alive
 * until that far-off time plus stall_seconds).  So the memory delays a
 * failure by at most stall_seconds after the sweep that saw the job's last
 * event, and only if that event was later deleted or moved back in time.
 *
 * The thresholds that made those times are remembered too: when the
 * settings or the policy change (a lowered stall_seconds, a new cap), the
 * memory is forgotten, so that they apply to every job at once.  The
 * memory only ever keeps a job from being failed, never the reverse, and
 * sweep.c learns only from rows every other backend can see too (see
 * there).  It is forgotten when the settings name other tables; entries
 * are dropped once they no longer keep their job alive, so the memory
 * holds at most the jobs kept alive during the last stall_seconds, and
 * never more than KNOWN_ALIVE_MAX of them.  protea_reaper.remember_alive =
 * off forgets it and stops using it.
 *
 * The memory is per backend (the worker's, or a session's that calls
 * protea_reaper_run_once()) and lives in TopMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "known_alive.h"
#include "settings.h"

typedef struct KnownAliveEntry
{
	pg_uuid_t	id;				/* hash key: the job's id */
	TimestampTz last_event;		/* newest job_event ts a sweep saw */
	TimestampTz alive_until;	/* when that event stops keeping it alive */
	bool		young;			/* no candidate before alive_until (no event) */
} KnownAliveEntry;

static HTAB *known_alive = NULL;

/* The tables the memory is about, and the thresholds it was learnt under */
static Oid	known_job_relid = InvalidOid;
static Oid	known_event_relid = InvalidOid;
static char *known_thresholds = NULL;

/* Whether the current batch may learn, and its now() */
static bool may_learn = false;
static TimestampTz batch_now = 0;

static void known_alive_forget(void);

static void
create_memory(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(KnownAliveEntry);
	ctl.hcxt = TopMemoryContext;
	known_alive = hash_create("protea_reaper known alive jobs", 1024, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * known_alive_start
 *		A batch begins.  A job id learnt about one job table means nothing in
 *		another, and a job_event table recreated under the same name may have
 *		lost events: other tables, other thresholds, or remember_alive off,
 *		mean a clean memory.
 */
void
known_alive_start(Oid job_relid, Oid event_relid, const char *thresholds,
				  TimestampTz now)
{
	may_learn = reaper_remember_alive &&
		!TransactionIdIsValid(GetTopTransactionIdIfAny());
	batch_now = now;

	if (!reaper_remember_alive)
	{
		known_alive_forget();
		return;
	}
	if (known_alive != NULL &&
		job_relid == known_job_relid && event_relid == known_event_relid &&
		strcmp(thresholds, known_thresholds) == 0)
		return;

	known_alive_forget();
	create_memory();
	known_job_relid = job_relid;
	known_event_relid = event_relid;
	known_thresholds = MemoryContextStrdup(TopMemoryContext, thresholds);
}

/*
 * known_alive_forget
 *		Forget every job; the next sweep looks them all up.
 */
static void
known_alive_forget(void)
{
	if (known_alive != NULL)
		hash_destroy(known_alive);
	known_alive = NULL;
	known_job_relid = InvalidOid;
	known_event_relid = InvalidOid;
	if (known_thresholds != NULL)
		pfree(known_thresholds);
	known_thresholds = NULL;
}

/*
 * known_alive_is_empty
 *		Whether no job is remembered (none yet, or all forgotten).
 */
bool
known_alive_is_empty(void)
{
	return known_alive == NULL || hash_get_num_entries(known_alive) == 0;
}

/*
 * known_alive_current
 *		The jobs still known alive at now, as three arrays in the current
 *		memory context: ids, last events, and until when; the jobs no longer
 *		alive are forgotten, so that the sweep looks them up again.
 */
void
known_alive_current(TimestampTz now, Datum *ids, Datum *last_events,
					Datum *alive_until)
{
	long		capacity = known_alive ? hash_get_num_entries(known_alive) : 0;
	Datum	   *id_datums = palloc(Max(capacity, 1) * sizeof(Datum));
	Datum	   *ts_datums = palloc(Max(capacity, 1) * sizeof(Datum));
	Datum	   *until_datums = palloc(Max(capacity, 1) * sizeof(Datum));
	int			n = 0;

	if (known_alive != NULL)
	{
		HASH_SEQ_STATUS seq;
		KnownAliveEntry *entry;

		/* dynahash allows removing the entry just returned by a scan */
		hash_seq_init(&seq, known_alive);
		while ((entry = hash_seq_search(&seq)) != NULL)
		{
			if (entry->alive_until > now && entry->young)
				continue;
			if (entry->alive_until > now)
			{
				id_datums[n] = UUIDPGetDatum(&entry->id);
				ts_datums[n] = TimestampTzGetDatum(entry->last_event);
				until_datums[n] = TimestampTzGetDatum(entry->alive_until);
				n++;
			}
			else
				hash_search(known_alive, &entry->id, HASH_REMOVE, NULL);
		}
	}

	/* construct_array copies the uuids, so the entries may go */
	*ids = PointerGetDatum(construct_array(id_datums, n, UUIDOID,
										   UUID_LEN, false, TYPALIGN_CHAR));
	*last_events = PointerGetDatum(construct_array(ts_datums, n, TIMESTAMPTZOID,
												   sizeof(TimestampTz),
												   FLOAT8PASSBYVAL,
												   TYPALIGN_DOUBLE));
	*alive_until = PointerGetDatum(construct_array(until_datums, n, TIMESTAMPTZOID,
												   sizeof(TimestampTz),
												   FLOAT8PASSBYVAL,
												   TYPALIGN_DOUBLE));
	pfree(id_datums);
	pfree(ts_datums);
	pfree(until_datums);
}

/*
 * known_alive_lookup
 *		What is remembered of job id at now: alive (the statement's own
 *		test, KNOWN_ALIVE), young, or nothing.
 */
KnownState
known_alive_lookup(const pg_uuid_t *id, TimestampTz now)
{
	KnownAliveEntry *entry;

	if (known_alive == NULL)
		return KNOWN_NOTHING;
	entry = hash_search(known_alive, id, HASH_FIND, NULL);
	if (entry == NULL || entry->alive_until <= now)
		return KNOWN_NOTHING;
	return entry->young ? KNOWN_YOUNG : KNOWN_ALIVE;
}

/* An entry for job id, or NULL when the memory is full */
static KnownAliveEntry *
enter(const pg_uuid_t *id, bool *found)
{
	if (known_alive == NULL)
		create_memory();
	if (hash_get_num_entries(known_alive) >= KNOWN_ALIVE_MAX &&
		hash_search(known_alive, id, HASH_FIND, NULL) == NULL)
		return NULL;
	return hash_search(known_alive, id, HASH_ENTER, found);
}

/*
 * known_alive_learn
 *		Remember that job id's last event was last_event, which keeps it
 *		alive until alive_until, if this batch may learn it (see the top of
 *		this file); keep the newer of two.
 */
void
known_alive_learn(const pg_uuid_t *id, TimestampTz last_event, TimestampTz alive_until)
{
	KnownAliveEntry *entry;
	bool		found;

	if (!may_learn || last_event > batch_now || alive_until <= batch_now)
		return;
	entry = enter(id, &found);
	if (entry != NULL && (!found || entry->young || entry->last_event < last_event))
	{
		entry->last_event = last_event;
		entry->alive_until = alive_until;
		entry->young = false;
	}
}

/*
 * known_alive_learn_young
 *		Remember that job id is no candidate before candidate_from, if this
 *		batch may learn it.
 */
void
known_alive_learn_young(const pg_uuid_t *id, TimestampTz candidate_from)
{
	KnownAliveEntry *entry;
	bool		found;

	if (!may_learn || candidate_from <= batch_now)
		return;
	entry = enter(id, &found);
	if (entry != NULL)
	{
		entry->last_event = 0;
		entry->alive_until = candidate_from;
		entry->young = true;
	}
}
