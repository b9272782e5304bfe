/*-------------------------------------------------------------------------
 *
 * tables.c
 *	  Resolve and check the job and job_event tables the settings name, and
 *	  describe them to the sweep as SQL fragments.
 *
 * Table names come from settings, so they are parsed and resolved to OIDs,
 * checked for the columns the sweep uses, and only then quoted into SQL.
 *
 * The status labels come from the catalog.  PROTEA's ORM stores the Python
 * enum's member names ('RUNNING', 'FAILED'), while databases built by hand
 * from the old runbook have lowercase labels: both are found, with no
 * setting, by looking for the running, failed and queued labels of the
 * enum case-insensitively.  A text status column may hold either spelling,
 * so both are matched, and a failed job keeps the spelling it ran under.
 *
 * A job table with a leased_until timestamptz column (newer PROTEA) keeps a
 * job whose lease is in the future alive, whatever its events say.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_subscription.h"
#include "catalog/pg_subscription_rel.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/acl.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "compat.h"
#include "settings.h"
#include "tables.h"

/*
 * A column the sweep needs, and the type it must have: type, or (TEXTOID)
 * text or varchar long enough for min_chars; InvalidOid: any (status is
 * checked by resolve_status).
 */
typedef struct ReaperColumn
{
	const char *name;
	Oid			type;
	int			min_chars;
} ReaperColumn;

/*
 * The longest error_message the reaper writes: an operator's reason
 * (REAPER_REASON_MAX_CHARS) after "Job failed by operator: ".
 */
#define ERROR_MESSAGE_MIN_CHARS (REAPER_REASON_MAX_CHARS + 32)

static const ReaperColumn job_columns[] = {
	{"id", UUIDOID, 0},
	{"operation", InvalidOid, 0},
	{"status", InvalidOid, 0},
	{"started_at", TIMESTAMPTZOID, 0},
	{"finished_at", TIMESTAMPTZOID, 0},
	{"error_code", TEXTOID, 13},	/* 'ManualTimeout' */
	{"error_message", TEXTOID, ERROR_MESSAGE_MIN_CHARS},
	{NULL, InvalidOid, 0}
};
static const ReaperColumn event_columns[] = {
	{"job_id", UUIDOID, 0},
	{"ts", TIMESTAMPTZOID, 0},
	{"level", TEXTOID, 7},		/* 'warning' */
	{"event", TEXTOID, 25},		/* 'job.lease_expired_requeue' */
	{"message", TEXTOID, ERROR_MESSAGE_MIN_CHARS},
	{"fields", JSONBOID, 0},
	{NULL, InvalidOid, 0}
};

/* The column that holds a job's lease, when PROTEA's workers renew one */
#define LEASE_COLUMN "leased_until"

/* The column that holds a child job's coordinator */
#define PARENT_COLUMN "parent_job_id"

/* Error context: which setting was being resolved */
static void
resolve_table_context(void *arg)
{
	const char *const *setting = (const char *const *) arg;

	errcontext("resolving protea_reaper.%s = '%s'", setting[0], setting[1]);
}

/*
 * check_column_type
 *		A column of another type than PROTEA's would be misread (a timestamp
 *		without time zone gives verdicts that depend on the session's time
 *		zone) or break the write (a bigint id, a varchar too short for the
 *		message): refuse it before any SQL runs, naming the setting.
 */
static void
check_column_type(Oid relid, AttrNumber attnum, const ReaperColumn *col,
				  const char *setting, const char *value)
{
	Oid			typid;
	int32		typmod;
	Oid			collid;
	bool		ok;

	if (!OidIsValid(col->type))
		return;
	get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &collid);
	typid = getBaseType(typid);

	if (col->type != TEXTOID)
		ok = (typid == col->type);
	else
		ok = typid == TEXTOID ||
			(typid == VARCHAROID &&
			 (typmod < 0 || typmod - (int32) VARHDRSZ >= col->min_chars));

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("protea_reaper table \"%s\": column \"%s\" has type %s",
						value, col->name, format_type_with_typemod(typid, typmod)),
				 col->type == TEXTOID ?
				 errdetail("The reaper writes up to %d characters there; it must be text or varchar(%d) or longer.",
						   col->min_chars, col->min_chars) :
				 errdetail("PROTEA's column is %s.", format_type_be(col->type)),
				 errhint("Check that protea_reaper.%s names PROTEA's table, or change the column's type.",
						 setting)));
}

/*
 * parse_table_name
 *		The setting's value as a RangeVar; the parser's own errors (bad
 *		quoting, too many dots) name the setting.
 */
static RangeVar *
parse_table_name(const char *setting, const char *value, const char *what)
{
	const char *context_arg[2] = {setting, value};
	ErrorContextCallback context;
	RangeVar   *rv;

	if (value == NULL || value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("protea_reaper.%s is empty", setting),
				 errhint("Set protea_reaper.%s to the schema-qualified name of PROTEA's %s table.",
						 setting, what)));

	context.callback = resolve_table_context;
	context.arg = (void *) context_arg;
	context.previous = error_context_stack;
	error_context_stack = &context;
	rv = makeRangeVarFromNameList(protea_string_to_qualified_name_list(value));
	error_context_stack = context.previous;
	return rv;
}

/*
 * resolve_table
 *		Resolve the table a setting names and check it has the columns the
 *		sweep uses.  Raises an ERROR that names the setting to change.
 */
static Oid
resolve_table(const char *setting, const char *value, const char *what,
			  const ReaperColumn *columns, char **quoted)
{
	RangeVar   *rv = parse_table_name(setting, value, what);
	Oid			relid;
	char		relkind;

	relid = RangeVarGetRelid(rv, AccessShareLock, true);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("protea_reaper %s table \"%s\" does not exist", what, value),
				 errdetail("The table is named by protea_reaper.%s.", setting),
				 errhint("Create PROTEA's tables first, or set protea_reaper.%s to the schema-qualified name of the %s table.",
						 setting, what)));

	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("protea_reaper %s table \"%s\" is not a table", what, value),
				 errhint("Set protea_reaper.%s to the schema-qualified name of the %s table.",
						 setting, what)));

	for (const ReaperColumn *col = columns; col->name != NULL; col++)
	{
		AttrNumber	attnum = get_attnum(relid, col->name);

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("protea_reaper %s table \"%s\" has no column \"%s\"",
							what, value, col->name),
					 errdetail("The %s table needs the columns of PROTEA's %s table.",
							   what, what),
					 errhint("Check that protea_reaper.%s names PROTEA's %s table.",
							 setting, what)));
		check_column_type(relid, attnum, col, setting, value);
	}

	*quoted = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));
	return relid;
}

/*
 * find_label
 *		The label among labels[0..n-1] equal to want, ignoring case; NULL if
 *		none.  Two such labels ('running' and 'RUNNING') are an ERROR: which
 *		one a job uses cannot be told.
 */
static const char *
find_label(const char *const *labels, int n, const char *want,
		   const char *type_name, const char *found)
{
	const char *match = NULL;

	for (int i = 0; i < n; i++)
	{
		if (pg_strcasecmp(labels[i], want) != 0)
			continue;
		if (match != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("protea_reaper job status type %s has two labels for %s: \"%s\" and \"%s\"",
							type_name, want, match, labels[i]),
					 errdetail("The labels of %s are: %s.", type_name, found),
					 errhint("Check that protea_reaper.job_table names PROTEA's job table; its status type must spell each status once.")));
		match = labels[i];
	}
	return match;
}

/* An enum label and its place in the type's order */
typedef struct EnumLabel
{
	float4		sortorder;
	char	   *label;
} EnumLabel;

static int
enum_label_cmp(const void *a, const void *b)
{
	float4		x = ((const EnumLabel *) a)->sortorder;
	float4		y = ((const EnumLabel *) b)->sortorder;

	return (x > y) - (x < y);
}

/*
 * enum_labels
 *		The labels of the enum typid in the type's order, and as one quoted
 *		list for messages.
 */
static const char **
enum_labels(Oid typid, int *n, StringInfo found)
{
	CatCList   *list = SearchSysCacheList1(ENUMTYPOIDNAME, ObjectIdGetDatum(typid));
	EnumLabel  *sorted = palloc(Max(list->n_members, 1) * sizeof(EnumLabel));
	const char **labels = palloc(Max(list->n_members, 1) * sizeof(char *));

	*n = list->n_members;
	for (int i = 0; i < *n; i++)
	{
		Form_pg_enum en = (Form_pg_enum) GETSTRUCT(&list->members[i]->tuple);

		sorted[i].sortorder = en->enumsortorder;
		sorted[i].label = pstrdup(NameStr(en->enumlabel));
	}
	ReleaseSysCacheList(list);
	qsort(sorted, *n, sizeof(EnumLabel), enum_label_cmp);

	initStringInfo(found);
	for (int i = 0; i < *n; i++)
	{
		labels[i] = sorted[i].label;
		appendStringInfo(found, "%s%s", i > 0 ? ", " : "",
						 quote_literal_cstr(labels[i]));
	}
	return labels;
}

/*
 * resolve_enum_labels
 *		The running, failed and queued labels of the enum typid, as the type
 *		spells them.  No running or failed label is an ERROR naming the
 *		setting and the labels found, in the type's order.
 */
static void
resolve_enum_labels(ReaperTables *tables, Oid typid)
{
	char	   *type_name = format_type_be(typid);
	StringInfoData found;
	int			n;
	const char **labels = enum_labels(typid, &n, &found);
	const char *running = find_label(labels, n, "running", type_name, found.data);
	const char *failed = find_label(labels, n, "failed", type_name, found.data);
	const char *queued = find_label(labels, n, "queued", type_name, found.data);

	if (running == NULL || failed == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("protea_reaper job status type %s has no \"%s\" label",
						type_name, running == NULL ? "running" : "failed"),
				 errdetail("The labels of %s are: %s.", type_name,
						   found.len > 0 ? found.data : "none"),
				 errhint("Check that protea_reaper.job_table names PROTEA's job table; its status must have running and failed labels, in any case.")));

	tables->running_label = pstrdup(running);
	tables->failed_label = pstrdup(failed);
	tables->queued_label = queued ? pstrdup(queued) : NULL;
	tables->is_running = psprintf("j.status = %s", quote_literal_cstr(running));
	/* typed, so that a CASE of two of them is still of the status type */
	tables->failed_value = psprintf("%s::%s", quote_literal_cstr(failed),
									format_type_be_qualified(typid));
	tables->queued_value = queued ? psprintf("%s::%s", quote_literal_cstr(queued),
											 format_type_be_qualified(typid)) :
		tables->failed_value;
	if (queued != NULL)
		tables->is_active = psprintf("j.status IN (%s, %s)",
									 quote_literal_cstr(running),
									 quote_literal_cstr(queued));
	else
		tables->is_active = tables->is_running;
}

/*
 * resolve_text_labels
 *		A text status column can hold any spelling: statuses are matched
 *		ignoring case, and a failed job is written in upper case if its
 *		status was (RUNNING becomes FAILED), in lower case otherwise.
 */
static void
resolve_text_labels(ReaperTables *tables)
{
	tables->running_label = "running";
	tables->failed_label = "failed";
	tables->queued_label = "queued";
	tables->is_running = "pg_catalog.lower(j.status) = 'running'";
	tables->failed_value = "CASE WHEN j.status = pg_catalog.upper(j.status) THEN 'FAILED' ELSE 'failed' END";
	tables->queued_value = "CASE WHEN j.status = pg_catalog.upper(j.status) THEN 'QUEUED' ELSE 'queued' END";
	tables->is_active = "pg_catalog.lower(j.status) IN ('running', 'queued')";
}

/*
 * resolve_status
 *		Find how job.status spells running, failed and queued.
 */
static void
resolve_status(ReaperTables *tables)
{
	Oid			typid = getBaseType(get_atttype(tables->job_relid,
												get_attnum(tables->job_relid, "status")));

	if (type_is_enum(typid))
		resolve_enum_labels(tables, typid);
	else if (typid == TEXTOID || typid == VARCHAROID)
		resolve_text_labels(tables);
	else
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("protea_reaper job table %s: column \"status\" has type %s",
						tables->job_name, format_type_be(typid)),
				 errdetail("The status column must be PROTEA's job_status enum, or text."),
				 errhint("Check that protea_reaper.job_table names PROTEA's job table.")));
}

/*
 * resolve_lease
 *		Whether the job table has PROTEA's lease column.  One of another type
 *		is an ERROR: ignoring it could fail a job whose worker renews it.
 */
static void
resolve_lease(ReaperTables *tables)
{
	AttrNumber	attnum = get_attnum(tables->job_relid, LEASE_COLUMN);
	Oid			typid;

	tables->has_lease = false;
	tables->leased = "false";
	tables->lapsed = "false";
	tables->leased_until = "NULL::pg_catalog.timestamptz";
	tables->clear_lease = "";
	if (attnum == InvalidAttrNumber)
		return;

	typid = get_atttype(tables->job_relid, attnum);
	if (typid != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("protea_reaper job table %s: column \"%s\" has type %s",
						tables->job_name, LEASE_COLUMN, format_type_be(typid)),
				 errdetail("A job's lease must be a timestamp with time zone, compared with the database's now()."),
				 errhint("Change the column to timestamptz, or set protea_reaper.job_table to PROTEA's job table.")));

	tables->has_lease = true;
	/* $6: protea_reaper.lease_grace_seconds (statements.h, PARAM_GRACE) */
	tables->leased = "(j." LEASE_COLUMN " > now() - make_interval(secs => $6))";
	tables->lapsed = "((j." LEASE_COLUMN " <= now() - make_interval(secs => $6)) IS TRUE)";
	tables->clear_lease = ", " LEASE_COLUMN " = CASE WHEN " REQUEUE_OF_S " THEN NULL ELSE j." LEASE_COLUMN " END";
	tables->leased_until = "j." LEASE_COLUMN;
}

/*
 * resolve_queue_name
 *		The broker queue a re-queued job goes back to, for the notification
 *		a listener re-publishes it from: PROTEA's queue_name, if the job
 *		table has one.
 */
static void
resolve_queue_name(ReaperTables *tables)
{
	AttrNumber	attnum = get_attnum(tables->job_relid, "queue_name");

	tables->queue_name = attnum != InvalidAttrNumber ?
		"j.queue_name::pg_catalog.text" : "NULL::pg_catalog.text";
}

/*
 * resolve_parent
 *		PROTEA's coordinators are the parents of their children's jobs;
 *		without a uuid parent_job_id a job has no children to show.
 */
static void
resolve_parent(ReaperTables *tables)
{
	AttrNumber	attnum = get_attnum(tables->job_relid, PARENT_COLUMN);

	if (attnum != InvalidAttrNumber &&
		getBaseType(get_atttype(tables->job_relid, attnum)) == UUIDOID)
		tables->parent_id = "j." PARENT_COLUMN;
	else
		tables->parent_id = "NULL::pg_catalog.uuid";
}

/* A relation's pg_class row, copied */
static Form_pg_class
rel_form(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class form = palloc(sizeof(FormData_pg_class));

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	memcpy(form, GETSTRUCT(tuple), sizeof(FormData_pg_class));
	ReleaseSysCache(tuple);
	return form;
}

/* A relation's owner */
static Oid
rel_owner(Oid relid)
{
	return rel_form(relid)->relowner;
}

/* A relation's access method (an index's: btree, brin, ...) */
static Oid
rel_am(Oid relid)
{
	return rel_form(relid)->relam;
}

/*
 * check_owner_rights
 *		Code attached to rel (or to its partitions or children) runs as the
 *		job table's owner: rel's owner must have that role's rights already,
 *		or it would borrow them.
 */
static void
check_owner_rights(const ReaperTables *tables, Oid relid)
{
	List	   *rels;
	ListCell   *lc;

	/* pg_class says whether there are any (a cache lookup, not a scan) */
	rels = has_subclass(relid) ? find_all_inheritors(relid, AccessShareLock, NULL) :
		list_make1_oid(relid);

	foreach(lc, rels)
	{
		Oid			owner = rel_owner(lfirst_oid(lc));

		if (!has_privs_of_role(owner, tables->owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("protea_reaper: table %s is owned by %s, who does not have the rights of %s, the owner of %s",
							quote_qualified_identifier(get_namespace_name(get_rel_namespace(lfirst_oid(lc))),
													   get_rel_name(lfirst_oid(lc))),
							GetUserNameFromId(owner, false),
							GetUserNameFromId(tables->owner, false), tables->job_name),
					 errdetail("The reaper acts as the owner of %s, so code attached to that table would gain those rights.",
							   tables->job_name),
					 errhint("Give PROTEA's tables (and their partitions) the same owner.")));
	}
}

/*
 * resolve_owner
 *		The role every statement runs as: the job table's owner.  Code the
 *		owner of job_event, or of a partition, attached to it runs as that
 *		role too, so those owners must have its rights already.  Rows in a
 *		plain inheritance child of job would be updated but not referable
 *		by their audit events (a foreign key sees the parent only): such a
 *		table is refused.
 */
static void
resolve_owner(ReaperTables *tables)
{
	tables->owner = rel_owner(tables->job_relid);
	if (get_rel_relkind(tables->job_relid) == RELKIND_RELATION &&
		has_subclass(tables->job_relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("protea_reaper job table %s has inheritance children", tables->job_name),
				 errdetail("Their rows would be failed with audit events that cannot reference them."),
				 errhint("Set protea_reaper.job_table to PROTEA's job table, which has none (partitioning is fine).")));
	check_owner_rights(tables, tables->job_relid);
	check_owner_rights(tables, tables->event_relid);
}

/*
 * reaper_resolve_tables
 *		Resolve both tables from the current settings, with the job table's
 *		labels, lease and owner.  Catalog cache lookups only: cheap enough
 *		to run at every sweep, so that a changed setting is noticed at once.
 */
void
reaper_resolve_tables(ReaperTables *tables)
{
	tables->job_relid = resolve_table("job_table", reaper_job_table,
									  "job", job_columns, &tables->job_name);
	tables->event_relid = resolve_table("event_table", reaper_event_table,
										"job_event", event_columns,
										&tables->event_name);
	resolve_status(tables);
	resolve_lease(tables);
	resolve_parent(tables);
	resolve_queue_name(tables);
	resolve_owner(tables);
	tables->timeout = "$1";
	tables->stall = "$2";
	tables->max_runtime = "$3";
	tables->exempt = "false";
	tables->events_extend = "false";
	/* no queued label: a job cannot be put back, so the budget is none */
	tables->max_requeues = tables->queued_label ? "$7" : "0";
}

/*
 * leading_btree_index
 *		A valid, complete btree index of relid whose first key is column;
 *		partial ones count only when partial_ok.  InvalidOid if none.
 */
static Oid
leading_btree_index(Oid relid, const char *column, bool partial_ok)
{
	Relation	rel = table_open(relid, AccessShareLock);
	AttrNumber	attnum = get_attnum(relid, column);
	List	   *indexes = RelationGetIndexList(rel);
	Oid			found = InvalidOid;
	ListCell   *lc;

	foreach(lc, indexes)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index index;

		if (!HeapTupleIsValid(tuple))
			continue;
		index = (Form_pg_index) GETSTRUCT(tuple);
		if (index->indisvalid && index->indisready &&
			index->indnkeyatts >= 1 && index->indkey.values[0] == attnum &&
			(partial_ok || heap_attisnull(tuple, Anum_pg_index_indpred, NULL)) &&
			rel_am(lfirst_oid(lc)) == BTREE_AM_OID)
			found = lfirst_oid(lc);
		ReleaseSysCache(tuple);
		if (OidIsValid(found))
			break;
	}
	list_free(indexes);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * reaper_check_event_index
 *		A sweep looks up each candidate's last event by job_id.  Without an
 *		index that leads with job_id (dropped, not yet rebuilt by a restore,
 *		or never made) each lookup reads the whole table while holding its
 *		lock, which a restore's CREATE INDEX then waits on; and between a
 *		restore's COPY of job and of job_event every job looks eventless.
 *		So refuse: only a valid, complete, non-partial btree index counts
 *		(a BRIN or hash index cannot find a job's newest event).
 */
void
reaper_check_event_index(const ReaperTables *tables)
{
	if (!OidIsValid(leading_btree_index(tables->event_relid, "job_id", false)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("protea_reaper job_event table %s has no index on (job_id, ...)",
						tables->event_name),
				 errdetail("Without it every job's last event is a scan of the whole table; during a restore, before the index is built, jobs may look eventless."),
				 errhint("CREATE INDEX ON %s (job_id, ts); set protea_reaper.enabled = off while restoring PROTEA's database.",
						 tables->event_name)));
}

/*
 * reaper_started_at_index
 *		The name of a valid btree index of the job table that leads with
 *		started_at (a partial one too: the README's holds running jobs
 *		only), so that finding the jobs past the bound is a range scan; NULL
 *		when there is none (PROTEA's own indexes do not).
 */
char *
reaper_started_at_index(const ReaperTables *tables)
{
	Oid			index = leading_btree_index(tables->job_relid, "started_at", true);

	return OidIsValid(index) ? get_rel_name(index) : NULL;
}

/* An enabled subscription of this database that replicates relid, or NULL */
static char *
subscription_of(Relation subrels, Oid relid)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *name = NULL;

	ScanKeyInit(&key, Anum_pg_subscription_rel_srrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(subrels, SubscriptionRelSrrelidSrsubidIndexId, true, NULL, 1, &key);
	while (name == NULL && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Oid			subid = ((Form_pg_subscription_rel) GETSTRUCT(tuple))->srsubid;
		HeapTuple	subtuple = SearchSysCache1(SUBSCRIPTIONOID, ObjectIdGetDatum(subid));

		if (!HeapTupleIsValid(subtuple))
			continue;
		if (((Form_pg_subscription) GETSTRUCT(subtuple))->subenabled &&
			((Form_pg_subscription) GETSTRUCT(subtuple))->subdbid == MyDatabaseId)
			name = pstrdup(NameStr(((Form_pg_subscription) GETSTRUCT(subtuple))->subname));
		ReleaseSysCache(subtuple);
	}
	systable_endscan(scan);
	return name;
}

/*
 * reaper_subscription
 *		The name of an enabled subscription that replicates job or job_event
 *		(or a partition of either) into this database, or NULL.  Their rows
 *		then belong to the publisher: its reaper judges them, and an audit
 *		event written here would take an id from this database's sequence
 *		that the publisher's next events also use, stopping the apply
 *		worker with a duplicate key (logical replication carries no
 *		sequences before PostgreSQL 19).
 */
char *
reaper_subscription(const ReaperTables *tables)
{
	List	   *relids = list_concat(find_all_inheritors(tables->job_relid, AccessShareLock, NULL),
									 find_all_inheritors(tables->event_relid, AccessShareLock, NULL));
	Relation	subrels = table_open(SubscriptionRelRelationId, AccessShareLock);
	char	   *name = NULL;
	ListCell   *lc;

	foreach(lc, relids)
		if (name == NULL)
			name = subscription_of(subrels, lfirst_oid(lc));
	table_close(subrels, AccessShareLock);
	return name;
}

/*
 * reaper_refuse_subscribed
 *		ERROR when a subscription replicates the tables here: the reaper
 *		writes them only where PROTEA writes them, the publisher.
 */
void
reaper_refuse_subscribed(const ReaperTables *tables)
{
	char	   *subscription = reaper_subscription(tables);

	if (subscription != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("protea_reaper does not write %s here: subscription \"%s\" replicates it into this database",
						tables->job_name, subscription),
				 errdetail("Its jobs belong to the publisher, whose reaper judges them; an audit event written here would take a job_event id the publisher's next events also use, and stop the subscription."),
				 errhint("Reap on the publisher. At cutover, ALTER SUBSCRIPTION %s DISABLE (or DROP SUBSCRIPTION): the reaper acts here from then on.",
						 quote_identifier(subscription))));
}

/* The placeholders of a statement template, and what replaces them */
typedef struct Placeholder
{
	const char *name;
	size_t		offset;			/* of the char * in ReaperTables */
} Placeholder;

static const Placeholder placeholders[] = {
	{"@JOB@", offsetof(ReaperTables, job_name)},
	{"@EVENT@", offsetof(ReaperTables, event_name)},
	{"@IS_RUNNING@", offsetof(ReaperTables, is_running)},
	{"@IS_ACTIVE@", offsetof(ReaperTables, is_active)},
	{"@FAILED@", offsetof(ReaperTables, failed_value)},
	{"@LEASED@", offsetof(ReaperTables, leased)},
	{"@LAPSED@", offsetof(ReaperTables, lapsed)},
	{"@CLEAR_LEASE@", offsetof(ReaperTables, clear_lease)},
	{"@QUEUED@", offsetof(ReaperTables, queued_value)},
	{"@QUEUE_NAME@", offsetof(ReaperTables, queue_name)},
	{"@MAX_REQUEUES@", offsetof(ReaperTables, max_requeues)},
	{"@LEASED_UNTIL@", offsetof(ReaperTables, leased_until)},
	{"@PARENT_ID@", offsetof(ReaperTables, parent_id)},
	{"@TIMEOUT@", offsetof(ReaperTables, timeout)},
	{"@STALL@", offsetof(ReaperTables, stall)},
	{"@MAX_RUNTIME@", offsetof(ReaperTables, max_runtime)},
	{"@EXEMPT@", offsetof(ReaperTables, exempt)},
	{"@EVENTS_EXTEND@", offsetof(ReaperTables, events_extend)},
	{NULL, 0}
};

/*
 * reaper_expand_sql
 *		The statement template with each @NAME@ replaced by the tables'
 *		quoted names and fragments.  An unknown placeholder is a bug.
 */
char *
reaper_expand_sql(const char *template, const ReaperTables *tables)
{
	StringInfoData sql;
	const char *p = template;

	initStringInfo(&sql);
	while (*p != '\0')
	{
		const Placeholder *ph;

		if (*p != '@')
		{
			appendStringInfoChar(&sql, *p++);
			continue;
		}
		for (ph = placeholders; ph->name != NULL; ph++)
			if (strncmp(p, ph->name, strlen(ph->name)) == 0)
				break;
		if (ph->name == NULL)
			elog(ERROR, "protea_reaper: unknown placeholder in statement at \"%.20s\"", p);
		appendStringInfoString(&sql, *(char *const *) ((const char *) tables + ph->offset));
		p += strlen(ph->name);
	}
	return sql.data;
}

/*
 * reaper_tables_key
 *		Everything the statements are built from, as one string.
 */
char *
reaper_tables_key(const ReaperTables *tables)
{
	StringInfoData key;

	initStringInfo(&key);
	for (const Placeholder *ph = placeholders; ph->name != NULL; ph++)
		appendStringInfo(&key, "%s\n",
						 *(char *const *) ((const char *) tables + ph->offset));
	return key.data;
}
