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
 * A sweep batch begins at now on these tables: decide whether the memory is
 * used (protea_reaper.remember_alive), whether it may learn in this batch,
 * and forget what was learnt about other tables.
 */
extern void known_alive_start(Oid job_relid, Oid event_relid, TimestampTz now);

/* Whether nothing is remembered */
extern bool known_alive_is_empty(void);

/*
 * The jobs still known alive at now (last event after now - stall_seconds)
 * as a uuid[] and a timestamptz[] of their last events, built in the
 * current memory context; the others are forgotten.
 */
extern void known_alive_current(TimestampTz now, int stall_seconds,
								Datum *ids, Datum *last_events);

/* Whether job id is still known alive at now */
extern bool known_alive_lookup(const pg_uuid_t *id, TimestampTz now,
							   int stall_seconds);

/* Remember that job id had an event at last_event, if the policy allows */
extern void known_alive_learn(const pg_uuid_t *id, TimestampTz last_event);

#endif							/* PROTEA_REAPER_KNOWN_ALIVE_H */
