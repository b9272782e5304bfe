/*-------------------------------------------------------------------------
 *
 * tables.h
 *	  PROTEA's job and job_event tables as the settings name them: resolved,
 *	  checked, and described by the SQL fragments the sweep's statements are
 *	  built from.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_TABLES_H
#define PROTEA_REAPER_TABLES_H

/*
 * The two tables, resolved from protea_reaper.job_table/event_table.
 *
 * The status labels are the table's own (PROTEA's ORM writes 'RUNNING',
 * databases built from the runbook 'running'), found in the catalog, never
 * assumed.  The fragments are SQL on the job table aliased "j", with every
 * label quoted as a literal, so that a partial index on the running label
 * can serve the statements.
 */
typedef struct ReaperTables
{
	Oid			job_relid;
	Oid			event_relid;
	Oid			owner;			/* the job table's: every statement runs as it */
	char	   *job_name;		/* quoted, schema-qualified */
	char	   *event_name;

	/* The labels of job.status, as the table spells them */
	char	   *running_label;	/* for a text column: the lowercase one */
	char	   *failed_label;
	char	   *queued_label;	/* NULL if the type has none */
	bool		has_lease;		/* job has leased_until timestamptz */

	/* SQL fragments on alias j */
	char	   *is_running;		/* j is running */
	char	   *is_active;		/* j is running or queued */
	char	   *failed_value;	/* the status to write when failing j */
	char	   *queued_value;	/* ... when re-queuing it (the failed one if none) */
	char	   *leased;			/* j's lease, with the grace $6, is in the future */
	char	   *lapsed;			/* j's lease ended longer than the grace ago (never NULL) */
	char	   *clear_lease;	/* SET item: no lease once re-queued (or "") */
	char	   *queue_name;		/* j's broker queue, or a NULL text */
	char	   *leased_until;	/* j's lease, or a NULL timestamptz */
	char	   *parent_id;		/* j's coordinator, or a NULL uuid */

	/*
	 * j's thresholds: the settings ($1 timeout, $2 stall, $3 max_runtime,
	 * and not exempt) until policy.c writes in a lookup of j's operation in
	 * the rows of protea_reaper_policy, $5 (reaper_policy_fragments)
	 */
	char	   *timeout;
	char	   *stall;
	char	   *max_runtime;
	char	   *exempt;
	char	   *events_extend;	/* recent events keep j alive past its lease */
	char	   *max_requeues;	/* re-queues allowed after a lapsed lease */
} ReaperTables;

/*
 * In the reaper's write (statements.c, FAIL_AND_AUDIT), whether the job of
 * row s of CTE "stale" goes back to the queue: its lease lapsed and its
 * re-queue budget is not spent
 */
#define REQUEUE_OF_S "(s.lease AND s.prior_requeues < s.max_requeues)"

/* The longest reason an operator may give protea_reaper_fail_job() */
#define REAPER_REASON_MAX_CHARS 500

/* Resolve and check both tables; an ERROR names the setting to fix. */
extern void reaper_resolve_tables(ReaperTables *tables);

/*
 * An enabled subscription replicating job or job_event into this database
 * (its name), or NULL; and the ERROR a write gets then
 */
extern char *reaper_subscription(const ReaperTables *tables);
extern void reaper_refuse_subscribed(const ReaperTables *tables);

/* ERROR unless job_event has a usable index that leads with job_id */
extern void reaper_check_event_index(const ReaperTables *tables);

/* A valid btree index of job leading with started_at, by name, or NULL */
extern char *reaper_started_at_index(const ReaperTables *tables);

/*
 * A statement template with its @NAME@ placeholders replaced by the tables'
 * names and fragments, palloc'd.
 */
extern char *reaper_expand_sql(const char *template, const ReaperTables *tables);

/*
 * Everything the statements are built from, as one string: two resolutions
 * with equal keys give the same statements (so kept plans stay valid).
 */
extern char *reaper_tables_key(const ReaperTables *tables);

#endif							/* PROTEA_REAPER_TABLES_H */
