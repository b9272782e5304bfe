/*-------------------------------------------------------------------------
 *
 * status.h
 *	  The background worker's state in shared memory.
 *
 * The worker writes here after each step of its loop; protea_reaper_status()
 * and protea_reaper_wake() read it from any backend.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_STATUS_H
#define PROTEA_REAPER_STATUS_H

#include "datatype/timestamp.h"

#include "sweep.h"

/* Request and attach the shared state (from _PG_init, when preloaded) */
extern void reaper_status_install_hooks(void);

/* The worker's reports */
extern void reaper_status_worker_started(const char *database);
extern void reaper_status_set_state(const char *state);
extern void reaper_status_settings_in_force(void);
extern void reaper_status_cycle_started(TimestampTz start);
extern void reaper_status_cycle_done(TimestampTz end, const ReaperSweepResult *result);
extern void reaper_status_cycle_failed(TimestampTz end, const char *message,
									   const ReaperSweepResult *committed);
extern void reaper_status_next_cycle(TimestampTz next);
extern bool reaper_status_take_wake(void);

#endif							/* PROTEA_REAPER_STATUS_H */
