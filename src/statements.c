/*-------------------------------------------------------------------------
 *
 * statements.c
 *	  Every statement protea_reaper runs on PROTEA's tables, built from the
 *	  README's rules, each rule written once.
 *
 * The rules (past the timeout, the last event, alive, stale, the
 * fail-and-audit write) are macros, so that C string-literal concatenation
 * makes each statement one compile-time string.  @NAME@ placeholders are
 * filled in by tables.c when a plan is made: the quoted tables (@JOB@,
 * @EVENT@), the job table's own status labels (@IS_RUNNING@, @IS_ACTIVE@,
 * @FAILED@) and its lease (@LEASED@, @LEASED_UNTIL@).  The parameters and
 * result columns are named in statements.h.
 *
 * Relations and functions in the SQL are either those quoted names or
 * pg_catalog's: the statements run with search_path pinned (plans.c), so
 * nothing else can be resolved.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"

#include "statements.h"

/*
 * Parameters of the sweep's statements (SweepParam): $1 timeout_seconds,
 * $2 stall_seconds, $3 the batch's limit, $4 error_message; the first
 * batch's $5-$7 are described there.
 */

/* Job j started longer than timeout_seconds ago */
#define STARTED_BEFORE_TIMEOUT \
	"j.started_at < now() - make_interval(secs => $1)"

/* Job j is running and past the timeout: a candidate */
#define PAST_TIMEOUT \
	"@IS_RUNNING@ AND " STARTED_BEFORE_TIMEOUT

/* An event at ts keeps its job alive: it is within stall_seconds */
#define RECENT_EVENT(ts) \
	"(" ts " > now() - make_interval(secs => $2))"

/* A lease keeps job j alive */
#define NOT_LEASED \
	"@LEASED@ IS NOT TRUE"

/* Job j's newest job_event, as le.last_ts (NULL if none); cond: extra filter */
#define LAST_EVENT(cond) \
	"LEFT JOIN LATERAL (SELECT e.ts AS last_ts FROM @EVENT@ AS e" \
	"                    WHERE e.job_id = j.id" cond \
	"                    ORDER BY e.ts DESC LIMIT 1) AS le ON true"

/* Job j, with its last event le.last_ts, is stale: the README's rule */
#define IS_STALE \
	PAST_TIMEOUT \
	" AND " NOT_LEASED \
	" AND " RECENT_EVENT("le.last_ts") " IS NOT TRUE"

/*
 * The reaper's write, on the rows of CTE "stale" (id, last_ts): status
 * failed, finished_at, error_code and error_message, and exactly one audit
 * event per failed job, written from the UPDATE's RETURNING.  The UPDATE
 * checks status again in the same statement, so a job that finished
 * meanwhile is never overwritten.  Defines CTEs "failed" and "audit".
 */
#define FAIL_AND_AUDIT \
	"failed AS (" \
	"  UPDATE @JOB@ AS j" \
	"     SET status = @FAILED@, finished_at = now()," \
	"         error_code = 'JobTimeout', error_message = $4" \
	"    FROM stale AS s" \
	"   WHERE j.id = s.id AND @IS_RUNNING@" \
	"  RETURNING j.id, j.operation, j.started_at, s.last_ts" \
	"), audit AS (" \
	"  INSERT INTO @EVENT@ (job_id, ts, level, event, message, fields)" \
	"  SELECT f.id, now(), 'error', 'job.timeout', $4," \
	"         jsonb_build_object('timeout_seconds', $1, 'stall_seconds', $2," \
	"                            'last_event_ts', f.last_ts)" \
	"    FROM failed AS f" \
	")"

/*
 * The batch statement: fail at most batch_size stale jobs.
 *
 * FOR UPDATE ... SKIP LOCKED means the sweep never waits on a worker that
 * holds its job's row, and, in READ COMMITTED, re-checks the WHERE clause
 * (status, start, lease) on the newest version of a row that changed since
 * the snapshot.
 */
static const char batch_sql[] =
"WITH stale AS ("
"  SELECT j.id, le.last_ts"
"    FROM @JOB@ AS j "
LAST_EVENT("")
"   WHERE " IS_STALE
"   LIMIT $3"
"   FOR UPDATE OF j SKIP LOCKED"
"), " FAIL_AND_AUDIT
"SELECT f.id, f.operation, f.started_at, f.last_ts FROM failed AS f"
" ORDER BY f.started_at, f.id";

/*
 * The first batch of a sweep: the batch statement above, plus the jobs past
 * the timeout that a lease or a recent event keeps alive, from one scan of
 * the candidates.  $5, $6: the jobs an earlier sweep found alive and their
 * last events, as remembered by known_alive.c.  Their events are not
 * looked up again, nor those of a leased job (the lateral subquery's extra
 * conditions are one-time filters, so the probe is not even started); they
 * count as alive.  Rows come back failed first (kind true), then alive
 * (kind false), then one row of kind NULL with counts: the candidates
 * judged stale, and (when $7 is false, so that their log lines would not
 * be written) the alive jobs already known, which are then not returned.
 */
static const char first_sql[] =
"WITH candidates AS MATERIALIZED ("
"  SELECT j.id, j.operation, j.started_at,"
"         coalesce(le.last_ts, k.last_ts) AS last_ts,"
"         CASE WHEN @LEASED@ THEN @LEASED_UNTIL@ END AS leased_until,"
"         k.id IS NOT NULL AS known,"
"         @LEASED@ IS TRUE OR k.id IS NOT NULL OR " RECENT_EVENT("le.last_ts") " AS alive"
"    FROM @JOB@ AS j"
"    LEFT JOIN unnest($5::uuid[], $6::timestamptz[]) AS k(id, last_ts) ON k.id = j.id "
LAST_EVENT(" AND k.id IS NULL AND " NOT_LEASED)
"   WHERE " PAST_TIMEOUT
"), stale AS ("
"  SELECT j.id, c.last_ts"
"    FROM candidates AS c JOIN @JOB@ AS j ON j.id = c.id"
"   WHERE c.alive IS NOT TRUE"
"     AND " PAST_TIMEOUT
"     AND " NOT_LEASED
"   LIMIT $3"
"   FOR UPDATE OF j SKIP LOCKED"
"), " FAIL_AND_AUDIT
"SELECT true AS failed, f.id, f.operation, f.started_at, f.last_ts,"
"       NULL::timestamptz AS leased_until, NULL::bigint AS known_alive,"
"       NULL::bigint AS judged_stale"
"  FROM failed AS f"
" UNION ALL "
"SELECT false, c.id, c.operation, c.started_at, c.last_ts, c.leased_until, NULL, NULL"
"  FROM candidates AS c"
" WHERE c.alive AND (NOT c.known OR $7)"
" UNION ALL "
"SELECT NULL, NULL, NULL, NULL, NULL, NULL,"
"       count(*) FILTER (WHERE c.alive AND c.known AND NOT $7),"
"       count(*) FILTER (WHERE c.alive IS NOT TRUE)"
"  FROM candidates AS c"
" ORDER BY 1 DESC, 4, 2";

/*
 * The ids of the jobs past the timeout, and nothing else: when every one of
 * them is known alive (known_alive.c) or leased, this (and unleased_sql for
 * those not known) is the whole sweep.  With the index README.md
 * recommends, (started_at) INCLUDE (id) WHERE status = <running>, it can be
 * an index-only scan.  $1 timeout_seconds.
 */
static const char candidates_sql[] =
"SELECT j.id FROM @JOB@ AS j"
" WHERE " PAST_TIMEOUT;

/*
 * One of the jobs $2 (past the timeout, not known alive) that is still a
 * candidate and holds no lease, if any: then the first statement must look
 * at them.  It stops at the first.  $1 timeout_seconds.
 */
static const char unleased_sql[] =
"SELECT j.id FROM @JOB@ AS j"
" WHERE j.id = ANY ($2::uuid[]) AND " PAST_TIMEOUT " AND " NOT_LEASED
" LIMIT 1";

/*
 * The stale jobs a sweep left: locked by another transaction (SKIP LOCKED),
 * or beyond the brake.  Their count, and the first ids.  $1, $2 as above.
 */
static const char remaining_sql[] =
"SELECT count(*), (array_agg(j.id ORDER BY j.started_at, j.id))[1:" CppAsString2(REAPER_REMAINING_IDS) "]"
"  FROM @JOB@ AS j "
LAST_EVENT("")
" WHERE " IS_STALE;

/* Every running job, with the verdict a sweep would reach on it now. */
static const char list_sql[] =
"SELECT j.id::uuid, j.operation::text, j.started_at, le.last_ts,"
"       now() - j.started_at, now() - le.last_ts,"
"       CASE WHEN j.started_at IS NULL THEN 'no started_at'"
"            WHEN NOT " STARTED_BEFORE_TIMEOUT " THEN 'young'"
"            WHEN @LEASED@ THEN 'leased'"
"            WHEN " RECENT_EVENT("le.last_ts") " THEN 'alive'"
"            ELSE 'stale' END,"
"       @LEASED_UNTIL@"
"  FROM @JOB@ AS j "
LAST_EVENT("")
" WHERE @IS_RUNNING@"
" ORDER BY j.started_at NULLS LAST, j.id";

/*
 * The operator's manual fail.  $1 job id, $2 error_message, $3 reason.
 * Only a job that has not ended (queued or running) is failed; a lease
 * does not stop an operator.
 */
static const char fail_job_sql[] =
"WITH target AS ("
"  SELECT j.id, j.status::text AS old_status, le.last_ts"
"    FROM @JOB@ AS j "
LAST_EVENT("")
"   WHERE j.id = $1"
"     FOR UPDATE OF j"
"), failed AS ("
"  UPDATE @JOB@ AS j"
"     SET status = @FAILED@, finished_at = now(),"
"         error_code = 'ManualTimeout', error_message = $2"
"    FROM target AS t"
"   WHERE j.id = t.id AND @IS_ACTIVE@"
"  RETURNING j.id, t.old_status, t.last_ts, j.status::text AS new_status"
"), audit AS ("
"  INSERT INTO @EVENT@ (job_id, ts, level, event, message, fields)"
"  SELECT f.id, now(), 'error', 'job.timeout', $2,"
"         jsonb_build_object('manual', true, 'reason', $3,"
"                            'failed_by', session_user,"
"                            'previous_status', f.old_status,"
"                            'last_event_ts', f.last_ts)"
"    FROM failed AS f"
")"
"SELECT t.old_status, (SELECT f.new_status FROM failed AS f) FROM target AS t";

/* Every statement, by ReaperStatement: name, text, parameters, plan kind */
const ReaperStatementDef reaper_statements[STMT_COUNT] = {
	[STMT_CANDIDATES] = {"candidates", candidates_sql, 1,
	{INT4OID}, true, true},
	[STMT_UNLEASED] = {"unleased", unleased_sql, 2,
	{INT4OID, UUIDARRAYOID}, true, true},
	[STMT_FIRST_BATCH] = {"first_batch", first_sql, 7,
	{INT4OID, INT4OID, INT4OID, TEXTOID, UUIDARRAYOID, TIMESTAMPTZARRAYOID, BOOLOID},
	true, true},
	[STMT_LATER_BATCH] = {"later_batch", batch_sql, 4,
	{INT4OID, INT4OID, INT4OID, TEXTOID}, true, false},
	[STMT_REMAINING] = {"remaining", remaining_sql, 2,
	{INT4OID, INT4OID}, true, false},
	[STMT_RUNNING_JOBS] = {"running_jobs", list_sql, 2,
	{INT4OID, INT4OID}, false, false},
	[STMT_FAIL_JOB] = {"fail_job", fail_job_sql, 3,
	{UUIDOID, TEXTOID, TEXTOID}, false, false},
};
