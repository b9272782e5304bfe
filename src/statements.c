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
 * @FAILED@), its lease (@LEASED@, @LEASED_UNTIL@) and coordinator
 * (@PARENT_ID@), and each job's thresholds as the policy sets them
 * (@TIMEOUT@, @STALL@, @MAX_RUNTIME@, @EXEMPT@, written by policy.c, a
 * lookup in parameter $5).  The parameters and result columns are named in
 * statements.h.
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
#include "tables.h"

/*
 * Every statement that judges jobs starts with the same parameters
 * (PolicyParam): $1 timeout_seconds, $2 stall_seconds, $3
 * max_runtime_seconds (0: no cap), $4 the bound (policy.h), $5 the rows of
 * protea_reaper_policy as one jsonb object, $6 lease_grace_seconds and $7
 * max_lease_requeues.  The sweep's statements go
 * on with $8 the batch's limit; the first batch's $9 is described there.
 */

/*
 * Job j's thresholds: its operation's row of protea_reaper_policy, or the
 * settings.  policy.c writes the placeholders: just $1, $2, $3 and false
 * when no row sets that threshold, else a lookup of j.operation in $5,
 * {operation: [timeout, stall, max_runtime, exempt]} (a binary search of
 * the object's keys).  The rows are a parameter, never SQL text: the
 * statements' size and planning cost do not grow with them, and a change
 * of the rows is not a new plan.
 */
#define TIMEOUT_J "@TIMEOUT@"
#define STALL_J "@STALL@"
#define MAX_RUNTIME_J "@MAX_RUNTIME@"
#define EXEMPT_J "@EXEMPT@"

/* Job j started longer than secs ago */
#define OLDER_THAN(secs) \
	"j.started_at < now() - make_interval(secs => " secs ")"

/* Job j ran past its runtime cap: it fails whatever its events and lease */
#define CAPPED \
	"(" MAX_RUNTIME_J " > 0 AND " OLDER_THAN(MAX_RUNTIME_J) ")"

/*
 * Job j started at a finite time: one at -infinity (or +infinity, or NULL)
 * has no age to judge, and is never failed by a sweep
 */
#define FINITE_START \
	"j.started_at > '-infinity'::pg_catalog.timestamptz"

/*
 * Job j's lease lapsed: it ended longer than lease_grace_seconds ($6) ago.
 * PROTEA's workers renew it at every heartbeat, so its worker is dead,
 * whatever j's age.  (@LEASED@: the lease, with the grace, is in the
 * future; both are false for a job with no lease, and for a job table
 * without PROTEA's lease column.)
 */
#define LAPSED "@LAPSED@"

/*
 * Job j is running, not exempt, and either started before the bound $4, the
 * shortest timeout or cap in force, or holds a lapsed lease: it may be a
 * candidate.  The bound lets an index on started_at find the unleased
 * candidates whatever the policy.
 */
#define MAY_BE_CANDIDATE \
	"@IS_RUNNING@ AND NOT " EXEMPT_J \
	" AND ((" OLDER_THAN("$4") " AND " FINITE_START ") OR " LAPSED ")"

/*
 * Job j is a candidate: running, not exempt, and its lease lapsed, or past
 * its timeout or its cap
 */
#define PAST_TIMEOUT \
	MAY_BE_CANDIDATE " AND (" LAPSED " OR " OLDER_THAN(TIMEOUT_J) " OR " CAPPED ")"

/* An event at ts keeps job j alive: it is within j's stall_seconds */
#define RECENT_EVENT(ts) \
	"(" ts " > now() - make_interval(secs => " STALL_J "))"

/* No lease keeps job j alive now (it has none, or it lapsed) */
#define NOT_LEASED \
	"@LEASED@ IS NOT TRUE"

/*
 * Job j, whose last event is at ts, is dead by its lease: it lapsed, and
 * events do not keep it (by default they do not, as in PROTEA: a crashed
 * sub-process can leave recent events; an operation's policy row may let
 * them, for coordinators whose batches write the events)
 */
#define LEASE_DEAD(ts) \
	"(" LAPSED " AND NOT (@EVENTS_EXTEND@ AND " RECENT_EVENT(ts) " IS TRUE))"

/* Job j's newest job_event with ts past a bound (bound: " AND ..."), or NULL */
#define NEWEST_EVENT(bound) \
	"(SELECT e.ts FROM @EVENT@ AS e WHERE e.job_id = j.id" bound \
	"  ORDER BY e.ts DESC LIMIT 1)"

/*
 * Job j's newest job_event, as le.last_ts (NULL if none), looked for in
 * steps (each NEWEST_EVENT(bound) followed by a comma), then among all of
 * them; cond: an extra filter on j, which every step carries (on j alone it
 * is a one-time filter: a step it rules out reads no event).
 *
 * Each step is the newest event if any is within its bound, and coalesce()
 * runs a step only when the ones before found nothing, so le.last_ts is
 * j's newest event whatever the steps.  The bounds let a job_event
 * partitioned by ts prune its partitions: an alive job's event is found in
 * the newest few, a stale job's since its start, and only a job with no
 * event since its start probes every partition.
 */
#define LAST_EVENT_IN(steps, cond) \
	"LEFT JOIN LATERAL (SELECT coalesce(" steps NEWEST_EVENT(cond) ") AS last_ts) AS le ON true"

/* The steps: the events that keep j alive; those since j started */
#define RECENT_STEP(cond) NEWEST_EVENT(" AND " RECENT_EVENT("e.ts") cond) ", "
#define SINCE_START_STEP(cond) NEWEST_EVENT(" AND e.ts >= j.started_at" cond) ", "

/* Job j's newest job_event, in a statement with the PolicyParam parameters */
#define LAST_EVENT(cond) LAST_EVENT_IN(RECENT_STEP(cond) SINCE_START_STEP(cond), cond)

/* The same, in a statement without them (no stall_seconds to bound by) */
#define LAST_EVENT_NO_POLICY(cond) LAST_EVENT_IN(SINCE_START_STEP(cond), cond)

/*
 * Job j, with its last event le.last_ts, is stale: the README's rule.  Past
 * its cap; or dead by its lease; or, holding no lease at all, past its
 * timeout without a recent event.
 */
#define IS_STALE \
	PAST_TIMEOUT \
	" AND (" CAPPED " OR " LEASE_DEAD("le.last_ts") \
	"      OR (@LEASED_UNTIL@ IS NULL AND " RECENT_EVENT("le.last_ts") " IS NOT TRUE))"

/* Why job j is failed, as its error_message, if its lease is not the cause */
#define TIMEOUT_MESSAGE \
	"CASE WHEN " CAPPED \
	"     THEN format('Job ran past max_runtime_seconds=%s (started >%ss ago)', " \
	MAX_RUNTIME_J ", " MAX_RUNTIME_J ")" \
	"     WHEN " STALL_J " >= " TIMEOUT_J \
	"     THEN format('Job stalled: no activity in %ss or since it started (started >%ss ago)', " \
	STALL_J ", " TIMEOUT_J ")" \
	"     ELSE format('Job stalled: no activity in %ss (started >%ss ago)', " \
	STALL_J ", " TIMEOUT_J ") END"

/* The re-queues of job j so far: its job.lease_expired_requeue events, as PROTEA counts */
#define REQUEUES_SO_FAR \
	"(SELECT count(*) FROM @EVENT@ AS e" \
	"  WHERE e.job_id = j.id AND e.event = 'job.lease_expired_requeue')"

/*
 * The columns of CTE "stale", for job j whose last event is last_ts: its
 * thresholds, and what fails it.  lease: dead by its lease (the lease
 * decides, before the cap), with prior_requeues and max_requeues for the
 * budget (REQUEUE_OF_S); capped: past its cap, its lease alive.
 */
#define STALE_COLUMNS(last_ts) \
	"j.id, j.started_at, " last_ts " AS last_ts, " TIMEOUT_J " AS timeout_seconds, " \
	STALL_J " AS stall_seconds, " MAX_RUNTIME_J " AS max_runtime_seconds, " \
	LEASE_DEAD(last_ts) " AS lease, " \
	"CASE WHEN " LEASE_DEAD(last_ts) " THEN " REQUEUES_SO_FAR " ELSE 0 END AS prior_requeues, " \
	"@MAX_REQUEUES@ AS max_requeues, @QUEUE_NAME@ AS queue_name, " \
	"NOT " LEASE_DEAD(last_ts) " AND " CAPPED " AS capped, " \
	"CASE WHEN " LEASE_DEAD(last_ts) \
	"     THEN format('Lease expired: no heartbeat since %s (lease_grace_seconds=%s)', " \
	"@LEASED_UNTIL@, $6)" \
	"     ELSE " TIMEOUT_MESSAGE " END AS message"

/*
 * What every audit event protea_reaper writes carries in its fields, so
 * that its failures can be told from another reaper's (PROTEA's own writes
 * the same event names): {"reaper": "protea_reaper"}
 */
#define MARK_KEY "reaper"
#define MARK_VALUE "protea_reaper"
#define MARK "jsonb_build_object('" MARK_KEY "', '" MARK_VALUE "')"

/*
 * Audit event t is protea_reaper's (never NULL): marked, or written by 1.0
 * or 1.1, which did not mark their events (an operator's fail, or a
 * sweep's message); PROTEA's reapers write neither
 */
#define OURS(t) \
	"((" t ".fields ->> '" MARK_KEY "' = '" MARK_VALUE "'" \
	"  OR (NOT " t ".fields ? '" MARK_KEY "'" \
	"      AND (" t ".fields ? 'manual' OR " t ".message LIKE 'Job stalled: no activity in %'" \
	"           OR " t ".message LIKE 'Job ran past max_runtime_seconds=%'))) IS TRUE)"

/*
 * The reaper's write, on the rows of CTE "stale" (STALE_COLUMNS), and
 * exactly one audit event per job, written from the UPDATE's RETURNING.  A
 * job whose lease lapsed goes back to the queue while its re-queue budget
 * lasts (REQUEUE_OF_S: status queued, started_at and leased_until NULL,
 * event job.lease_expired_requeue, level warning, with PROTEA's fields);
 * past it, it fails with error_code lease_expired (job.lease_expired).
 * Any other is failed with JobTimeout (job.timeout, with the thresholds
 * that failed it).  The UPDATE checks status again in the same statement,
 * so a job that finished meanwhile is never overwritten.  Defines CTEs
 * "failed" and "audit".
 */
#define FAIL_AND_AUDIT \
	"failed AS (" \
	"  UPDATE @JOB@ AS j" \
	"     SET status = CASE WHEN " REQUEUE_OF_S " THEN @QUEUED@ ELSE @FAILED@ END," \
	"         finished_at = CASE WHEN " REQUEUE_OF_S " THEN j.finished_at ELSE now() END," \
	"         started_at = CASE WHEN " REQUEUE_OF_S " THEN NULL ELSE j.started_at END" \
	"         @CLEAR_LEASE@," \
	"         error_code = CASE WHEN " REQUEUE_OF_S " THEN j.error_code" \
	"                           WHEN s.lease THEN 'lease_expired' ELSE 'JobTimeout' END," \
	"         error_message = CASE WHEN " REQUEUE_OF_S " THEN j.error_message ELSE s.message END" \
	"    FROM stale AS s" \
	"   WHERE j.id = s.id AND @IS_RUNNING@" \
	"  RETURNING j.id, j.operation, s.started_at, s.last_ts, s.message, s.capped," \
	"            s.lease, " REQUEUE_OF_S " AS requeue, s.queue_name, s.prior_requeues," \
	"            s.max_requeues, s.timeout_seconds, s.stall_seconds, s.max_runtime_seconds" \
	"), audit AS (" \
	"  INSERT INTO @EVENT@ (job_id, ts, level, event, message, fields)" \
	"  SELECT f.id, now(), CASE WHEN f.requeue THEN 'warning' ELSE 'error' END," \
	"         CASE WHEN f.requeue THEN 'job.lease_expired_requeue'" \
	"              WHEN f.lease THEN 'job.lease_expired' ELSE 'job.timeout' END," \
	"         CASE WHEN f.requeue" \
	"              THEN format('Lease expired; re-enqueued attempt %s/%s', f.prior_requeues + 1, f.max_requeues)" \
	"              ELSE f.message END," \
	"         CASE WHEN f.requeue" \
	"              THEN jsonb_build_object('prior_requeues', f.prior_requeues," \
	"                                      'max_requeues', f.max_requeues," \
	"                                      'last_event_ts', f.last_ts)" \
	"              WHEN f.lease" \
	"              THEN jsonb_build_object('prior_requeues', f.prior_requeues," \
	"                                      'max_requeues', f.max_requeues," \
	"                                      'timeout_seconds', f.timeout_seconds," \
	"                                      'stall_seconds', f.stall_seconds," \
	"                                      'last_event_ts', f.last_ts)" \
	"              ELSE jsonb_build_object('timeout_seconds', f.timeout_seconds," \
	"                                      'stall_seconds', f.stall_seconds," \
	"                                      'last_event_ts', f.last_ts)" \
	"                   || CASE WHEN f.capped" \
	"                      THEN jsonb_build_object('max_runtime_seconds', f.max_runtime_seconds)" \
	"                      ELSE '{}'::jsonb END END" \
	"         || " MARK \
	"    FROM failed AS f" \
	")"

/* What a batch returns of each job it failed or re-queued (BatchColumn) */
#define FAILED_COLUMNS \
	"f.id, f.operation, f.started_at, f.last_ts, f.message, f.capped, f.lease, f.requeue," \
	" f.queue_name, f.prior_requeues, f.max_requeues"

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
"  SELECT " STALE_COLUMNS("le.last_ts")
"    FROM @JOB@ AS j "
LAST_EVENT("")
"   WHERE " IS_STALE
"   LIMIT $8"
"   FOR UPDATE OF j SKIP LOCKED"
"), " FAIL_AND_AUDIT
"SELECT " FAILED_COLUMNS " FROM failed AS f"
" ORDER BY f.started_at, f.id";

/*
 * The first batch of a sweep: the batch statement above, plus the jobs past
 * the timeout that a lease or a recent event keeps alive, from one scan of
 * the candidates.  The events of a leased job are not looked up (the
 * lateral subquery's extra conditions are one-time filters, so the probe
 * is not even started): on PROTEA's leased workload an idle sweep reads no
 * event.  A job past its cap is failed whatever keeps it alive, so its
 * last event is looked up for the audit.  Rows come back failed first
 * (kind true), then, when $9 asks for their log lines, alive (kind false),
 * then one row of kind NULL with counts: the alive, of those the leased,
 * the candidates judged stale, and every running job (a metric, found by
 * PROTEA's index on status: bounded by the jobs running).
 */
static const char first_sql[] =
"WITH candidates AS MATERIALIZED ("
"  SELECT j.id, j.operation, j.started_at, le.last_ts,"
"         CASE WHEN @LEASED@ THEN @LEASED_UNTIL@ END AS leased_until,"
"         " STALL_J " AS stall_seconds,"
"         NOT " CAPPED " AND NOT " LEASE_DEAD("le.last_ts")
"         AND (@LEASED@ IS TRUE OR " RECENT_EVENT("le.last_ts") ") AS alive"
"    FROM @JOB@ AS j "
LAST_EVENT(" AND (" CAPPED " OR " NOT_LEASED ")")
"   WHERE " PAST_TIMEOUT
"), stale AS ("
"  SELECT " STALE_COLUMNS("c.last_ts")
"    FROM candidates AS c JOIN @JOB@ AS j ON j.id = c.id"
"   WHERE c.alive IS NOT TRUE"
"     AND " PAST_TIMEOUT
"     AND (" CAPPED " OR " NOT_LEASED ")"
"   LIMIT $8"
"   FOR UPDATE OF j SKIP LOCKED"
"), " FAIL_AND_AUDIT
"SELECT true AS failed, " FAILED_COLUMNS ","
"       NULL::int4 AS stall_seconds, NULL::timestamptz AS leased_until,"
"       NULL::bigint AS alive, NULL::bigint AS leased, NULL::bigint AS judged_stale,"
"       NULL::bigint AS running"
"  FROM failed AS f"
" UNION ALL "
"SELECT false, c.id, c.operation, c.started_at, c.last_ts, NULL, NULL, NULL, NULL, NULL,"
"       NULL, NULL, c.stall_seconds, c.leased_until, NULL, NULL, NULL, NULL"
"  FROM candidates AS c"
" WHERE c.alive AND $9"
" UNION ALL "
"SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
"       count(*) FILTER (WHERE c.alive),"
"       count(*) FILTER (WHERE c.alive AND c.leased_until IS NOT NULL),"
"       count(*) FILTER (WHERE c.alive IS NOT TRUE),"
"       (SELECT count(*) FROM @JOB@ AS j WHERE @IS_RUNNING@)"
"  FROM candidates AS c"
" ORDER BY 1 DESC, 4, 2";

/*
 * How long ago ts was; NULL when ts is infinite (before PostgreSQL 17 the
 * subtraction is an ERROR, from 17 an infinite interval)
 */
#define SINCE(ts) \
	"CASE WHEN isfinite(" ts ") THEN now() - " ts " END"

/*
 * The stale jobs a sweep left: locked by another transaction (SKIP LOCKED),
 * or beyond the brake.  Their count, the first ids, and how long ago the
 * oldest of them started, in seconds (a metric: protea_reaper_metrics).
 */
static const char remaining_sql[] =
"SELECT count(*), (array_agg(j.id ORDER BY j.started_at, j.id))[1:" CppAsString2(REAPER_REMAINING_IDS) "],"
"       extract(epoch FROM max(" SINCE("j.started_at") "))::float8"
"  FROM @JOB@ AS j "
LAST_EVENT("")
" WHERE " IS_STALE;

/*
 * A coordinator's running children, and the newest event of any of them.
 * Inside, j is the child; coordinator.id is the job listed.
 */
#define RUNNING_CHILDREN \
	"LEFT JOIN LATERAL (SELECT count(*) AS running, max(le.last_ts) AS last_ts" \
	"                     FROM @JOB@ AS j " LAST_EVENT("") \
	"                    WHERE @PARENT_ID@ = coordinator.id AND @IS_RUNNING@) AS ch ON true"

/*
 * Every running job, with the verdict a sweep would reach on it now (the
 * same rules, in the order that decides; a lease or event at +infinity
 * keeps a job alive for ever, and the verdict says so), the thresholds
 * that apply to it, its running children, and (1.2) how long ago its
 * lease lapsed, its re-queues so far and its budget.
 */
static const char list_sql[] =
"SELECT j.id::uuid, j.operation::text, j.started_at, le.last_ts,"
"       " SINCE("j.started_at") ", " SINCE("le.last_ts") ","
"       CASE WHEN NOT " EXEMPT_J " AND " LEASE_DEAD("le.last_ts") " THEN 'lease lapsed'"
"            WHEN j.started_at IS NULL THEN 'no started_at'"
"            WHEN NOT isfinite(j.started_at) THEN 'infinite started_at'"
"            WHEN " EXEMPT_J " THEN 'exempt'"
"            WHEN " CAPPED " THEN 'capped'"
"            WHEN NOT " OLDER_THAN(TIMEOUT_J) " THEN 'young'"
"            WHEN @LEASED_UNTIL@ = 'infinity' THEN 'leased forever'"
"            WHEN @LEASED@ THEN 'leased'"
"            WHEN le.last_ts = 'infinity' THEN 'alive forever'"
"            WHEN " RECENT_EVENT("le.last_ts") " THEN 'alive'"
"            ELSE 'stale' END,"
"       @LEASED_UNTIL@,"
"       CASE WHEN NOT " EXEMPT_J " THEN " TIMEOUT_J " END,"
"       CASE WHEN NOT " EXEMPT_J " THEN " STALL_J " END,"
"       CASE WHEN NOT " EXEMPT_J " AND " MAX_RUNTIME_J " > 0 THEN " MAX_RUNTIME_J " END,"
"       @PARENT_ID@, ch.running, ch.last_ts,"
"       CASE WHEN " LAPSED " AND isfinite(@LEASED_UNTIL@) THEN now() - @LEASED_UNTIL@ END,"
"       " REQUEUES_SO_FAR ","
"       CASE WHEN NOT " EXEMPT_J " THEN @MAX_REQUEUES@ END"
"  FROM @JOB@ AS j "
LAST_EVENT("")
" CROSS JOIN LATERAL (SELECT j.id) AS coordinator(id) "
RUNNING_CHILDREN
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
LAST_EVENT_NO_POLICY("")
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
"                            'last_event_ts', f.last_ts) || " MARK
"    FROM failed AS f"
")"
"SELECT t.old_status, (SELECT f.new_status FROM failed AS f) FROM target AS t";

/*
 * The doctor's statements (doctor.c), which only read.
 *
 * Running jobs older than twice their timeout that are not exempt: a lease
 * or events keep them, or nothing sweeps.  Their count and the first ids.
 */
static const char overdue_sql[] =
"SELECT count(*), (array_agg(j.id ORDER BY j.started_at, j.id))[1:5]"
"  FROM @JOB@ AS j"
" WHERE @IS_RUNNING@ AND NOT " EXEMPT_J " AND " FINITE_START
"   AND " OLDER_THAN("2 * $4::float8")
"   AND " OLDER_THAN("2 * " TIMEOUT_J "::float8");

/*
 * Running jobs whose newest event is stamped ahead of the database's clock:
 * such an event keeps its job alive until it is stall_seconds old.  Their
 * count and how far ahead the furthest is, in seconds; then the running
 * jobs with an infinite started_at, lease or newest event (CLOCK_*), and
 * the first of them.
 */
#define AHEAD "(isfinite(le.last_ts) AND le.last_ts > clock_timestamp())"
#define INFINITE \
	"(NOT isfinite(j.started_at) OR NOT isfinite(le.last_ts) OR NOT isfinite(@LEASED_UNTIL@))"
static const char clock_skew_sql[] =
"SELECT count(*) FILTER (WHERE " AHEAD "),"
"       ceil(extract(epoch FROM max(le.last_ts - clock_timestamp()) FILTER (WHERE " AHEAD ")))::int8,"
"       count(*) FILTER (WHERE " INFINITE "),"
"       (array_agg(j.id ORDER BY j.id) FILTER (WHERE " INFINITE "))[1:5]"
"  FROM @JOB@ AS j "
LAST_EVENT_NO_POLICY("")
" WHERE @IS_RUNNING@";

/* How far back the doctor looks for false alarms */
#define FALSE_ALARM_WINDOW "7 days"

/*
 * False alarms: jobs the sweep failed (JobTimeout, neither by hand nor by
 * the runtime cap) in the last FALSE_ALARM_WINDOW that wrote events after
 * their job.timeout event, so their worker was alive.  Per operation: the
 * jobs, the events written after, and the longest silence that got a job
 * failed (from its last event before the timeout, or its start, to its
 * first event after).  Driven by the job.timeout events, which PROTEA's
 * (event, ts) index finds.
 */
static const char false_alarms_sql[] =
"SELECT j.operation::text, count(*), sum(a.events)::int8,"
"       ceil(extract(epoch FROM max(a.first_after - coalesce(b.last_before, j.started_at))"
"                               FILTER (WHERE isfinite(a.first_after)"
"                                         AND isfinite(coalesce(b.last_before, j.started_at)))))::int8"
"  FROM @EVENT@ AS t"
"  JOIN @JOB@ AS j ON j.id = t.job_id"
"  CROSS JOIN LATERAL (SELECT count(*) AS events, min(e.ts) AS first_after"
"                        FROM @EVENT@ AS e WHERE e.job_id = t.job_id AND e.ts > t.ts) AS a"
"  CROSS JOIN LATERAL (SELECT max(e.ts) AS last_before"
"                        FROM @EVENT@ AS e WHERE e.job_id = t.job_id AND e.ts < t.ts) AS b"
" WHERE t.event = 'job.timeout' AND t.ts > now() - interval '" FALSE_ALARM_WINDOW "'"
"   AND " OURS("t") " AND NOT t.fields ? 'manual' AND NOT t.fields ? 'max_runtime_seconds'"
"   AND j.error_code = 'JobTimeout' AND a.events > 0"
" GROUP BY 1 ORDER BY 1";

/* The events a reaper writes when it fails or re-queues a job */
#define REAPER_EVENTS "('job.timeout', 'job.lease_expired', 'job.lease_expired_requeue')"

/*
 * Another reaper: events a reaper writes, in the last FALSE_ALARM_WINDOW,
 * that are not protea_reaper's (OURS).  How many, on how many jobs, the
 * newest, and each event's count.
 */
static const char other_reaper_sql[] =
"SELECT count(*), count(DISTINCT t.job_id), max(t.ts),"
"       string_agg(DISTINCT t.event, ', ')"
"  FROM @EVENT@ AS t"
" WHERE t.event IN " REAPER_EVENTS " AND t.ts > now() - interval '" FALSE_ALARM_WINDOW "'"
"   AND NOT " OURS("t");

/*
 * Unguarded finishes: jobs protea_reaper failed in the last
 * FALSE_ALARM_WINDOW that have since been given another ending
 * (SUCCEEDED, CANCELLED) by a write that did not check they were still
 * running.  Their count and the first ids.
 */
static const char unguarded_sql[] =
"SELECT count(DISTINCT j.id), (array_agg(DISTINCT j.id))[1:5]"
"  FROM @EVENT@ AS t"
"  JOIN @JOB@ AS j ON j.id = t.job_id"
" WHERE t.event IN " REAPER_EVENTS " AND t.ts > now() - interval '" FALSE_ALARM_WINDOW "'"
"   AND " OURS("t") " AND NOT @IS_ACTIVE@ AND j.status <> @FAILED@";

/* The types of PolicyParam */
#define POLICY_ARGTYPES INT4OID, INT4OID, INT4OID, INT4OID, JSONBOID, INT4OID, INT4OID

/* Every statement, by ReaperStatement: name, text, parameters, plan kind */
const ReaperStatementDef reaper_statements[STMT_COUNT] = {
	[STMT_FIRST_BATCH] = {"first_batch", first_sql, SWEEP_NPARAMS,
	{POLICY_ARGTYPES, INT4OID, BOOLOID}, true, true},
	[STMT_LATER_BATCH] = {"later_batch", batch_sql, POLICY_NPARAMS + 1,
	{POLICY_ARGTYPES, INT4OID}, true, false},
	[STMT_REMAINING] = {"remaining", remaining_sql, POLICY_NPARAMS,
	{POLICY_ARGTYPES}, true, false},
	[STMT_RUNNING_JOBS] = {"running_jobs", list_sql, POLICY_NPARAMS,
	{POLICY_ARGTYPES}, false, false},
	[STMT_FAIL_JOB] = {"fail_job", fail_job_sql, 3,
	{UUIDOID, TEXTOID, TEXTOID}, false, false},
	[STMT_OVERDUE] = {"overdue", overdue_sql, POLICY_NPARAMS,
	{POLICY_ARGTYPES}, false, false},
	[STMT_CLOCK_SKEW] = {"clock_skew", clock_skew_sql, 0, {0}, false, false},
	[STMT_FALSE_ALARMS] = {"false_alarms", false_alarms_sql, 0, {0}, false, false},
	[STMT_OTHER_REAPER] = {"other_reaper", other_reaper_sql, 0, {0}, false, false},
	[STMT_UNGUARDED] = {"unguarded_finish", unguarded_sql, 0, {0}, false, false},
};
