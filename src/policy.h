/*-------------------------------------------------------------------------
 *
 * policy.h
 *	  The thresholds in force: the protea_reaper.* settings, overridden per
 *	  operation by the rows of protea_reaper_policy.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_POLICY_H
#define PROTEA_REAPER_POLICY_H

#include "tables.h"

/* The policy table, in the extension's schema */
#define REAPER_POLICY_TABLE "protea_reaper_policy"

/* One row of protea_reaper_policy; a NULL threshold is -1 (the setting's) */
typedef struct ReaperPolicyRow
{
	char	   *operation;
	int			operation_len;	/* strlen(operation) */
	int			timeout_seconds;
	int			stall_seconds;
	int			max_runtime_seconds;
	bool		exempt;
	int			max_lease_requeues; /* -1: the setting's */
	bool		events_extend_lease;	/* recent events keep a lapsed job */
} ReaperPolicyRow;

/*
 * The most rows, and bytes of operation names, a sweep keeps in memory;
 * a table holding more is an ERROR (the README's supported number is far
 * below: the benchmark's 10,000)
 */
#define POLICY_MAX_ROWS 100000
#define POLICY_MAX_BYTES (16 * 1024 * 1024)

/*
 * The settings in force and the policy rows: the statements take the
 * settings, the bound and the rows as parameters (statements.h's
 * PolicyParam), and look each job's operation up in the rows
 * (reaper_policy_fragments).
 */
typedef struct ReaperPolicy
{
	int			timeout_seconds;	/* protea_reaper.timeout_seconds */
	int			stall_seconds;	/* protea_reaper.stall_seconds */
	int			max_runtime_seconds;	/* protea_reaper.max_runtime_seconds */
	int			lease_grace_seconds;	/* protea_reaper.lease_grace_seconds */
	int			max_lease_requeues; /* protea_reaper.max_lease_requeues */
	int			nrows;
	ReaperPolicyRow *rows;

	/*
	 * The shortest timeout or runtime cap of any operation that is not
	 * exempt: no job started more recently can be failed, so every
	 * statement bounds started_at by it and an index on started_at serves.
	 */
	int			bound_seconds;

	/* The rows as the statements' parameter (policy.c, rows_as_jsonb) */
	Datum		rows_jsonb;
} ReaperPolicy;

/*
 * Read the settings and the rows, as of the active snapshot.  No table (the
 * extension not installed, or still at 1.0): no rows.
 */
extern void reaper_policy_load(ReaperPolicy *policy);

/* The settings as the statements' leading parameters, values[0 .. POLICY_NPARAMS-1] */
extern void reaper_policy_params(const ReaperPolicy *policy, Datum *values);

/* The statements' threshold fragments: the settings, or a lookup in the rows */
extern void reaper_policy_fragments(const ReaperPolicy *policy, ReaperTables *tables);

/* The thresholds that apply to operation (NULL: the settings') */
extern void reaper_policy_for(const ReaperPolicy *policy, const char *operation,
							  int *timeout_seconds, int *stall_seconds,
							  int *max_runtime_seconds, bool *exempt);

#endif							/* PROTEA_REAPER_POLICY_H */
