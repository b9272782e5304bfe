/*-------------------------------------------------------------------------
 *
 * plans.h
 *	  How the statements run: a session on PROTEA's tables (SPI, the tables
 *	  resolved, acting as their owner), the kept plans, and execution.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_PLANS_H
#define PROTEA_REAPER_PLANS_H

#include <signal.h>

#include "executor/spi.h"

#include "statements.h"
#include "tables.h"

struct ReaperPolicy;				/* policy.h */

/* A session on PROTEA's tables, and who the caller was before it */
typedef struct ReaperSession
{
	ReaperTables tables;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} ReaperSession;

/*
 * Connect to SPI, resolve the tables (refusing to go on without the event
 * index when need_event_index), write the policy's rows into the
 * statements (none when policy is NULL: the settings alone), and act as
 * the job table's owner.
 */
extern void reaper_session_begin(ReaperSession *session, bool need_event_index,
								 const struct ReaperPolicy *policy);

/* Back to the caller's identity and settings; SPI_finish */
extern void reaper_session_end(ReaperSession *session);

/* The plan of stmt for the session's tables: kept ones are made once */
extern SPIPlanPtr reaper_plan(ReaperSession *session, ReaperStatement stmt);

/* Set when the worker's hard deadline ended it (see reaper_execute) */
extern volatile sig_atomic_t reaper_hard_deadline_hit;

/* Disarm the worker's statement timers after an ERROR */
extern void reaper_disarm_timers(void);

/* Install the guard on object creation (from _PG_init) */
extern void reaper_plans_install_hooks(void);

/* Run a plan; an ERROR unless it returned rows (SPI_tuptable holds them) */
extern void reaper_execute(SPIPlanPtr plan, Datum *values, const char *nulls,
						   bool read_only);

#endif							/* PROTEA_REAPER_PLANS_H */
