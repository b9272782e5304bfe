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
	STMT_FIRST_BATCH,			/* fail a batch, count (and list) the alive */
	STMT_LATER_BATCH,			/* fail a batch */
	STMT_REMAINING,				/* the stale jobs a sweep left */
	STMT_RUNNING_JOBS,			/* protea_reaper_running_jobs() */
	STMT_FAIL_JOB,				/* protea_reaper_fail_job() */
	STMT_OVERDUE,				/* protea_reaper_check(): old running jobs */
	STMT_CLOCK_SKEW,			/* ... events from the future */
	STMT_FALSE_ALARMS,			/* ... jobs failed while alive */
	STMT_OTHER_REAPER,			/* ... another reaper's events */
	STMT_UNGUARDED,				/* ... failed jobs finished since */
	STMT_COUNT
} ReaperStatement;

/* Most parameters a statement takes */
#define REAPER_MAX_PARAMS 9

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

/*
 * The leading parameters of every statement that judges jobs, as indexes of
 * their Datum arrays: the thresholds in force (policy.c fills them)
 */
typedef enum PolicyParam
{
	PARAM_TIMEOUT,				/* $1 protea_reaper.timeout_seconds */
	PARAM_STALL,				/* $2 protea_reaper.stall_seconds */
	PARAM_MAX_RUNTIME,			/* $3 protea_reaper.max_runtime_seconds */
	PARAM_BOUND,				/* $4 the shortest timeout or cap in force */
	PARAM_ROWS,					/* $5 protea_reaper_policy's rows, jsonb */
	PARAM_GRACE,				/* $6 protea_reaper.lease_grace_seconds */
	PARAM_MAX_REQUEUES,			/* $7 protea_reaper.max_lease_requeues */
	POLICY_NPARAMS
} PolicyParam;

/* The sweep's statements go on with these */
typedef enum SweepParam
{
	PARAM_LIMIT = POLICY_NPARAMS,	/* $8 the batch's limit */
	PARAM_LOG_ALIVE,			/* $9 first batch: list the alive, to log them */
	SWEEP_NPARAMS
} SweepParam;

/* Result columns of STMT_LATER_BATCH: the jobs it failed or re-queued */
typedef enum BatchColumn
{
	BATCH_ID = 1,
	BATCH_OPERATION,
	BATCH_STARTED_AT,
	BATCH_LAST_EVENT,
	BATCH_MESSAGE,				/* its error_message, if failed */
	BATCH_CAPPED,				/* failed by the runtime cap */
	BATCH_LEASE,				/* dead by its lapsed lease */
	BATCH_REQUEUE,				/* ... and put back in the queue */
	BATCH_QUEUE,				/* its queue_name */
	BATCH_PRIOR_REQUEUES,		/* its re-queues before this one */
	BATCH_MAX_REQUEUES			/* its budget */
} BatchColumn;

/* Result columns of STMT_FIRST_BATCH: kind, then BatchColumn's, then these */
typedef enum FirstColumn
{
	FIRST_KIND = 1,				/* true failed, false alive, NULL counts */
	FIRST_ID,					/* FIRST_ID .. : BatchColumn's, shifted by one */
	FIRST_STALL = FIRST_ID + BATCH_MAX_REQUEUES,	/* an alive job's stall_seconds */
	FIRST_LEASED_UNTIL,			/* an alive job's lease, if that keeps it */
	FIRST_ALIVE,				/* counts: the alive, */
	FIRST_LEASED,				/* of those the leased, */
	FIRST_JUDGED_STALE,			/* the candidates judged stale, */
	FIRST_RUNNING				/* and every running job */
} FirstColumn;

/* An alive row's column of STMT_FIRST_BATCH, by BatchColumn */
#define FIRST_COLUMN(batch_column) (FIRST_ID + (batch_column) - BATCH_ID)

/* Result columns of STMT_REMAINING, and how many ids it lists */
typedef enum RemainingColumn
{
	REMAINING_COUNT = 1,
	REMAINING_IDS,
	REMAINING_OLDEST_SECONDS	/* since the oldest started; NULL if none */
} RemainingColumn;
#define REAPER_REMAINING_IDS 100

/*
 * protea_reaper_running_jobs()'s columns, as STMT_RUNNING_JOBS returns them:
 * 1.2's, of which 1.1's function returns the first 14 and 1.0's the first
 * eight
 */
#define RUNNING_JOBS_COLUMNS 17
#define RUNNING_JOBS_COLUMNS_1_1 14
#define RUNNING_JOBS_COLUMNS_1_0 8

/* Result columns of STMT_FAIL_JOB */
typedef enum FailJobColumn
{
	FAIL_OLD_STATUS = 1,
	FAIL_NEW_STATUS				/* NULL when the job was not failed */
} FailJobColumn;

/* Result columns of STMT_FALSE_ALARMS, a row per operation */
typedef enum FalseAlarmColumn
{
	ALARM_OPERATION = 1,
	ALARM_JOBS,
	ALARM_EVENTS,
	ALARM_LONGEST_SILENCE		/* seconds */
} FalseAlarmColumn;

/* Parameters of STMT_FAIL_JOB */
typedef enum FailJobParam
{
	FAIL_PARAM_ID,
	FAIL_PARAM_MESSAGE,
	FAIL_PARAM_REASON,
	FAIL_NPARAMS
} FailJobParam;

#endif							/* PROTEA_REAPER_STATEMENTS_H */
