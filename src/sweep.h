/*-------------------------------------------------------------------------
 *
 * sweep.h
 *	  The sweep: finds stale PROTEA jobs and fails them.
 *
 * sweep.c is the only code that knows the SQL run against PROTEA's job
 * and job_event tables.  Every function here must be called inside a
 * transaction with an active snapshot; each connects to SPI itself.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_SWEEP_H
#define PROTEA_REAPER_SWEEP_H

#include "access/tupdesc.h"
#include "utils/tuplestore.h"

/* What one sweep did */
typedef struct ReaperSweepResult
{
	uint64		reaped;			/* jobs failed */
	uint64		alive;			/* jobs past the timeout kept for a recent event */
} ReaperSweepResult;

/*
 * Fail at most batch_size stale jobs in one statement; returns how many.
 * The first batch of a sweep also counts the live jobs into *alive.
 */
extern uint64 reaper_sweep_batch(uint64 *alive);

/* A whole sweep inside the current transaction: every batch, then the log. */
extern void reaper_sweep(ReaperSweepResult *result);

/* Log the summary line of a sweep that failed something. */
extern void reaper_sweep_report(const ReaperSweepResult *result);

/* Operator's manual fail of one job; false when it had already ended. */
extern bool reaper_fail_job(Datum job_id, const char *reason);

/* Put every running job, with the sweep's verdict on it, into tupstore. */
extern void reaper_list_running(Tuplestorestate *tupstore, TupleDesc tupdesc);

/* Put each statement, as prepared for the current tables, into tupstore. */
extern void reaper_list_statements(Tuplestorestate *tupstore, TupleDesc tupdesc);

#endif							/* PROTEA_REAPER_SWEEP_H */
