/*-------------------------------------------------------------------------
 *
 * statements.h
 *	  Every statement protea_reaper runs on PROTEA's tables, with its
 *	  parameters and result columns named.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_STATEMENTS_H
#define PROTEA_REAPER_STATEMENTS_H

/* The statements, in the order a sweep runs them, then the runbook's */
typedef enum ReaperStatement
{
	STMT_CANDIDATES,			/* ids of the jobs past the timeout */
	STMT_UNLEASED,				/* one of them neither known alive nor leased */
	STMT_FIRST_BATCH,			/* fail a batch, count and list the alive */
	STMT_LATER_BATCH,			/* fail a batch */
	STMT_REMAINING,				/* the stale jobs a sweep left */
	STMT_RUNNING_JOBS,			/* protea_reaper_running_jobs() */
	STMT_FAIL_JOB,				/* protea_reaper_fail_job() */
	STMT_COUNT
} ReaperStatement;

/* Most parameters a statement takes */
#define REAPER_MAX_PARAMS 7

typedef struct ReaperStatementDef
{
	const char *name;			/* as protea_reaper_statements() shows it */
	const char *sql;			/* with @NAME@ placeholders (tables.c) */
	int			nargs;
	Oid			argtypes[REAPER_MAX_PARAMS];
	bool		kept;			/* prepared once per backend, and kept */
	bool		generic;		/* its kept plan is generic (plans.c says why) */
} ReaperStatementDef;

extern const ReaperStatementDef reaper_statements[STMT_COUNT];

/* Parameters of the sweep's statements, as indexes of their Datum arrays */
typedef enum SweepParam
{
	PARAM_TIMEOUT,				/* $1 timeout_seconds */
	PARAM_STALL,				/* $2 stall_seconds */
	PARAM_LIMIT,				/* $3 the batch's limit */
	PARAM_MESSAGE,				/* $4 error_message */
	PARAM_KNOWN_IDS,			/* $5 first batch: jobs known alive */
	PARAM_KNOWN_LAST_EVENTS,	/* $6 ... and their last events */
	PARAM_LOG_ALIVE,			/* $7 ... whether alive jobs are logged */
	SWEEP_NPARAMS
} SweepParam;

/* STMT_UNLEASED's second parameter: the ids to look at */
#define PARAM_UNLEASED_IDS 1

/* Result columns of STMT_LATER_BATCH: the jobs it failed */
typedef enum BatchColumn
{
	BATCH_ID = 1,
	BATCH_OPERATION,
	BATCH_STARTED_AT,
	BATCH_LAST_EVENT
} BatchColumn;

/* Result columns of STMT_FIRST_BATCH */
typedef enum FirstColumn
{
	FIRST_KIND = 1,				/* true failed, false alive, NULL counts */
	FIRST_ID,
	FIRST_OPERATION,
	FIRST_STARTED_AT,
	FIRST_LAST_EVENT,
	FIRST_LEASED_UNTIL,			/* an alive job's lease, if that keeps it */
	FIRST_KNOWN_ALIVE,			/* counts: the known alive jobs left out, */
	FIRST_JUDGED_STALE			/* and the candidates judged stale */
} FirstColumn;

/* Result columns of STMT_REMAINING, and how many ids it lists */
typedef enum RemainingColumn
{
	REMAINING_COUNT = 1,
	REMAINING_IDS
} RemainingColumn;
#define REAPER_REMAINING_IDS 100

/* protea_reaper_running_jobs()'s columns, as STMT_RUNNING_JOBS returns them */
#define RUNNING_JOBS_COLUMNS 8

/* Result columns of STMT_FAIL_JOB */
typedef enum FailJobColumn
{
	FAIL_OLD_STATUS = 1,
	FAIL_NEW_STATUS				/* NULL when the job was not failed */
} FailJobColumn;

/* Parameters of STMT_FAIL_JOB */
typedef enum FailJobParam
{
	FAIL_PARAM_ID,
	FAIL_PARAM_MESSAGE,
	FAIL_PARAM_REASON,
	FAIL_NPARAMS
} FailJobParam;

#endif							/* PROTEA_REAPER_STATEMENTS_H */
