/*-------------------------------------------------------------------------
 *
 * known_alive.h
 *	  What earlier sweeps in this backend learnt: which jobs a recent
 *	  job_event keeps alive, and since which event.
 *
 * Used by sweep.c only, to skip looking up again the last event of a job
 * that cannot have gone stale since the last sweep.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_KNOWN_ALIVE_H
#define PROTEA_REAPER_KNOWN_ALIVE_H

#include "datatype/timestamp.h"
#include "utils/uuid.h"

/* Most jobs remembered at once; more are looked up every sweep */
#define KNOWN_ALIVE_MAX 100000

/*
 * A sweep batch begins at now on these tables, under these thresholds (an
 * opaque key: the settings and policy that decide when an event stops
 * keeping its job alive): decide whether the memory is used
 * (protea_reaper.remember_alive), whether it may learn in this batch, and
 * forget what was learnt about other tables or under other thresholds.
 */
extern void known_alive_start(Oid job_relid, Oid event_relid,
							  const char *thresholds, TimestampTz now);

/* Whether nothing is remembered */
extern bool known_alive_is_empty(void);

/*
 * The jobs still known alive at now as a uuid[], a timestamptz[] of their
 * last events and one of until when those keep them alive, built in the
 * current memory context; those no longer alive or young are forgotten.
 */
extern void known_alive_current(TimestampTz now, Datum *ids, Datum *last_events,
								Datum *alive_until);

/* What is remembered of a job at now */
typedef enum KnownState
{
	KNOWN_NOTHING,
	KNOWN_ALIVE,				/* a recent event keeps it alive */
	KNOWN_YOUNG					/* younger than its own timeout: no candidate */
} KnownState;

extern KnownState known_alive_lookup(const pg_uuid_t *id, TimestampTz now);

/*
 * Remember that job id had an event at last_event, keeping it alive until
 * alive_until, if the policy allows
 */
extern void known_alive_learn(const pg_uuid_t *id, TimestampTz last_event,
							  TimestampTz alive_until);

/* Remember that job id is no candidate before candidate_from */
extern void known_alive_learn_young(const pg_uuid_t *id, TimestampTz candidate_from);

#endif							/* PROTEA_REAPER_KNOWN_ALIVE_H */
