/*-------------------------------------------------------------------------
 *
 * policy.c
 *	  The thresholds in force: the protea_reaper.* settings, overridden per
 *	  operation by the rows of protea_reaper_policy.
 *
 * PROTEA's operations differ by orders of magnitude (a batch insert runs
 * for minutes, an embedding coordinator for hours), so a superuser may give
 * an operation its own timeout_seconds, stall_seconds and
 * max_runtime_seconds, or exempt it.  The rows are read here, with the
 * extension owner's rights and no SQL (a scan of the table, like a
 * catalog's), and reach every statement as one jsonb parameter, looked up
 * by the job's operation (statements.c): the statements then run as the job
 * table's owner, who needs no right on the policy table, apply the rows to
 * every job at once, and keep their size, plan and planning time whatever
 * the number of rows.  The rows in memory are bounded (POLICY_MAX_ROWS,
 * POLICY_MAX_BYTES), whoever may write them.
 *
 * The table is found as the extension's member, not by name: one of that
 * name made by whoever could create tables in the schema (before an
 * upgrade) is never read, so it cannot exempt anything; and renaming or
 * moving the extension's own table changes nothing.  An extension past 1.0
 * without it is an ERROR, not a sweep without the operator's exemptions.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "policy.h"
#include "protea_reaper.h"
#include "settings.h"
#include "statements.h"

/* The columns of protea_reaper_policy, as the install script makes them */
static const struct
{
	const char *name;
	Oid			type;
}			policy_columns[] = {
	{"operation", TEXTOID},
	{"timeout_seconds", INT4OID},
	{"stall_seconds", INT4OID},
	{"max_runtime_seconds", INT4OID},
	{"exempt", BOOLOID},
	/* from 1.2 on */
	{"max_lease_requeues", INT4OID},
	{"events_extend_lease", BOOLOID},
};
#define POLICY_COLUMNS lengthof(policy_columns)
#define POLICY_COLUMNS_1_1 5

/* The extension's member table, or InvalidOid when it has none */
static Oid
member_table(Oid extoid)
{
	Relation	rel = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			relid = InvalidOid;

	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ExtensionRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, DependReferenceIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tuple);

		if (dep->classid == RelationRelationId && dep->objsubid == 0 &&
			dep->deptype == DEPENDENCY_EXTENSION &&
			get_rel_relkind(dep->objid) == RELKIND_RELATION)
		{
			relid = dep->objid;
			break;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return relid;
}

/*
 * The extension's oid, schema, and version (1.0 has no policy, 1.1's has
 * five columns); InvalidOid when it is not installed
 */
static Oid
extension_by_name(Oid *nsp, char **version)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			extoid = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(REAPER_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		extversion = heap_getattr(tuple, Anum_pg_extension_extversion,
											  RelationGetDescr(rel), &isnull);

		extoid = ((Form_pg_extension) GETSTRUCT(tuple))->oid;
		*nsp = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
		*version = isnull ? "" : TextDatumGetCString(extversion);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return extoid;
}

/*
 * policy_relid
 *		The extension's policy table; InvalidOid when the extension is not
 *		installed or still at 1.0.  It is looked for by name first (one
 *		probe of pg_depend confirms it), and among the extension's members
 *		when renamed or moved.
 */
static Oid
policy_relid(int *ncolumns)
{
	Oid			nsp = InvalidOid;
	char	   *version = "";
	Oid			extoid = extension_by_name(&nsp, &version);
	bool		is_1_0 = strcmp(version, "1.0") == 0;
	Oid			relid;

	*ncolumns = strcmp(version, "1.1") == 0 ? POLICY_COLUMNS_1_1 : POLICY_COLUMNS;

	if (!OidIsValid(extoid))
		return InvalidOid;
	relid = get_relname_relid(REAPER_POLICY_TABLE, nsp);
	if (OidIsValid(relid) && getExtensionOfObject(RelationRelationId, relid) == extoid)
		return relid;
	relid = member_table(extoid);
	if (!OidIsValid(relid) && !is_1_0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension protea_reaper has no table %s", REAPER_POLICY_TABLE),
				 errdetail("The sweep will not run without the operators' per-operation thresholds and exemptions."),
				 errhint("Add it back to the extension (ALTER EXTENSION protea_reaper ADD TABLE ...) if it was taken out, or reinstall the extension.")));
	return relid;
}

/*
 * The table's first ncolumns columns must be the install script's, or it is
 * not read
 */
static void
check_policy_columns(Relation rel, int ncolumns)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < ncolumns; i++)
	{
		Form_pg_attribute att;

		if (i >= desc->natts ||
			(att = TupleDescAttr(desc, i))->attisdropped ||
			strcmp(NameStr(att->attname), policy_columns[i].name) != 0 ||
			att->atttypid != policy_columns[i].type)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s has been altered: its column %d is not \"%s\" %s",
							RelationGetRelationName(rel), i + 1, policy_columns[i].name,
							format_type_be(policy_columns[i].type)),
					 errdetail("The sweep will not run without the operators' per-operation thresholds and exemptions."),
					 errhint("Put the column back as the extension made it (ALTER TABLE ... RENAME COLUMN, or ALTER COLUMN ... TYPE): operation text, timeout_seconds integer, stall_seconds integer, max_runtime_seconds integer, exempt boolean, max_lease_requeues integer, events_extend_lease boolean, in that order (1.1's has the first five).")));
	}
}

/* A threshold column: -1 for NULL (the setting's) */
static int
threshold(TupleTableSlot *slot, int attnum)
{
	bool		isnull;
	Datum		value = slot_getattr(slot, attnum, &isnull);

	return isnull ? -1 : DatumGetInt32(value);
}

/*
 * Rows by operation, byte for byte, shorter first: jsonb's order of object
 * keys, so that rows_as_jsonb() hands pushJsonbValue() keys already sorted
 */
static int
compare_rows(const void *a, const void *b)
{
	const ReaperPolicyRow *ra = a;
	const ReaperPolicyRow *rb = b;

	if (ra->operation_len != rb->operation_len)
		return ra->operation_len < rb->operation_len ? -1 : 1;
	return memcmp(ra->operation, rb->operation, ra->operation_len);
}

/* Refuse a table that holds more than the sweep will keep in memory */
static void
too_many_rows(Relation rel, int64 rows, int64 bytes)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("table %s holds more than %d rows or %d MB of operation names",
					RelationGetRelationName(rel), POLICY_MAX_ROWS,
					POLICY_MAX_BYTES / (1024 * 1024)),
			 errdetail("Read so far: " INT64_FORMAT " rows, " INT64_FORMAT " bytes of operation names. The sweep will not run without the operators' per-operation thresholds and exemptions.",
					   rows, bytes),
			 errhint("Delete the rows of operations PROTEA does not run: a row is needed only for an operation whose thresholds differ from the protea_reaper.* settings.")));
}

/* Read every row of the table */
static void
read_rows(ReaperPolicy *policy, Oid relid, int ncolumns)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TableScanDesc scan;
	int			allocated = 8;
	int64		bytes = 0;

	check_policy_columns(rel, ncolumns);
	policy->rows = palloc(allocated * sizeof(ReaperPolicyRow));
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		ReaperPolicyRow *row;
		bool		isnull;
		Datum		operation = slot_getattr(slot, 1, &isnull);
		Datum		exempt;

		CHECK_FOR_INTERRUPTS();
		/* a row without an operation (its key altered away) applies to no job */
		if (isnull)
			continue;
		if (policy->nrows == POLICY_MAX_ROWS ||
			(bytes += toast_raw_datum_size(operation)) > POLICY_MAX_BYTES)
			too_many_rows(rel, policy->nrows + 1, bytes);
		if (policy->nrows == allocated)
		{
			allocated *= 2;
			policy->rows = repalloc(policy->rows, allocated * sizeof(ReaperPolicyRow));
		}
		row = &policy->rows[policy->nrows++];
		row->operation = TextDatumGetCString(operation);
		row->operation_len = strlen(row->operation);
		row->timeout_seconds = threshold(slot, 2);
		row->stall_seconds = threshold(slot, 3);
		row->max_runtime_seconds = threshold(slot, 4);
		exempt = slot_getattr(slot, 5, &isnull);
		row->exempt = !isnull && DatumGetBool(exempt);
		row->max_lease_requeues = ncolumns > 5 ? threshold(slot, 6) : -1;
		row->events_extend_lease = false;
		if (ncolumns > 6)
		{
			Datum		extend = slot_getattr(slot, 7, &isnull);

			row->events_extend_lease = !isnull && DatumGetBool(extend);
		}
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);

	/* by operation, so that reaper_policy_for() can search them */
	qsort(policy->rows, policy->nrows, sizeof(ReaperPolicyRow), compare_rows);
}

/* A threshold of a row as a JSON value: null when the setting applies */
static void
push_threshold(JsonbParseState **state, int value)
{
	JsonbValue	v;

	if (value < 0)
		v.type = jbvNull;
	else
	{
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(value);
	}
	pushJsonbValue(state, WJB_ELEM, &v);
}

/*
 * rows_as_jsonb
 *		The rows as the statements' parameter $5: {operation: [timeout,
 *		stall, max_runtime, exempt, events_extend_lease,
 *		max_lease_requeues]}, null where the setting applies.  The
 *		statements look each job's operation up in it (statements.c), so its
 *		element order is ELEM_OF_J's.
 */
static Jsonb *
rows_as_jsonb(const ReaperPolicy *policy)
{
	JsonbParseState *state = NULL;
	JsonbValue *object;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < policy->nrows; i++)
	{
		const ReaperPolicyRow *row = &policy->rows[i];
		JsonbValue	v;

		v.type = jbvString;
		v.val.string.val = row->operation;
		v.val.string.len = row->operation_len;
		pushJsonbValue(&state, WJB_KEY, &v);
		pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
		push_threshold(&state, row->timeout_seconds);
		push_threshold(&state, row->stall_seconds);
		push_threshold(&state, row->max_runtime_seconds);
		v.type = jbvBool;
		v.val.boolean = row->exempt;
		pushJsonbValue(&state, WJB_ELEM, &v);
		v.val.boolean = row->events_extend_lease;
		pushJsonbValue(&state, WJB_ELEM, &v);
		push_threshold(&state, row->max_lease_requeues);
		pushJsonbValue(&state, WJB_END_ARRAY, NULL);
		CHECK_FOR_INTERRUPTS();
	}
	object = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(object);
}

/* The row's value of a threshold, or the setting's */
static int
or_setting(int value, int setting)
{
	return value >= 0 ? value : setting;
}

/*
 * reaper_policy_load
 *		The settings in force and the rows, with the bound they imply.
 */
void
reaper_policy_load(ReaperPolicy *policy)
{
	int			ncolumns;
	Oid			relid = policy_relid(&ncolumns);

	memset(policy, 0, sizeof(ReaperPolicy));
	policy->timeout_seconds = reaper_timeout_seconds;
	policy->stall_seconds = reaper_stall_seconds;
	policy->max_runtime_seconds = reaper_max_runtime_seconds;
	policy->lease_grace_seconds = reaper_lease_grace_seconds;
	policy->max_lease_requeues = reaper_max_lease_requeues;
	if (OidIsValid(relid))
		read_rows(policy, relid, ncolumns);

	/* what the settings give an operation without a row */
	policy->bound_seconds = policy->timeout_seconds;
	if (policy->max_runtime_seconds > 0)
		policy->bound_seconds = Min(policy->bound_seconds, policy->max_runtime_seconds);

	for (int i = 0; i < policy->nrows; i++)
	{
		const ReaperPolicyRow *row = &policy->rows[i];
		int			max_runtime = or_setting(row->max_runtime_seconds,
											 policy->max_runtime_seconds);

		if (row->exempt)
			continue;
		policy->bound_seconds = Min(policy->bound_seconds,
									or_setting(row->timeout_seconds, policy->timeout_seconds));
		if (max_runtime > 0)
			policy->bound_seconds = Min(policy->bound_seconds, max_runtime);
	}
	policy->rows_jsonb = JsonbPGetDatum(rows_as_jsonb(policy));
}

/*
 * reaper_policy_params
 *		The settings in force as the leading parameters of every statement
 *		that judges jobs (statements.h, PolicyParam).
 */
void
reaper_policy_params(const ReaperPolicy *policy, Datum *values)
{
	values[PARAM_TIMEOUT] = Int32GetDatum(policy->timeout_seconds);
	values[PARAM_STALL] = Int32GetDatum(policy->stall_seconds);
	values[PARAM_MAX_RUNTIME] = Int32GetDatum(policy->max_runtime_seconds);
	values[PARAM_BOUND] = Int32GetDatum(policy->bound_seconds);
	values[PARAM_ROWS] = policy->rows_jsonb;
	values[PARAM_GRACE] = Int32GetDatum(policy->lease_grace_seconds);
	values[PARAM_MAX_REQUEUES] = Int32GetDatum(policy->max_lease_requeues);
}

/*
 * Job j's row in $5, and one of its elements as text (rows_as_jsonb's
 * order): the operation is looked up byte for byte, as strcmp() here
 * compares, and SQL NULL comes back when there is no row or it leaves the
 * threshold to the setting
 */
#define ROW_OF_J "($5 -> j.operation::pg_catalog.text)"
#define ELEM_OF_J(n) "(" ROW_OF_J " ->> " CppAsString(n) ")"

/*
 * One threshold of job j as SQL: the setting's parameter when no row sets
 * it, else its row's value in $5 or that parameter.  Which of the two is
 * the only thing the rows change in the statements' text.
 */
static char *
threshold_fragment(const ReaperPolicy *policy, size_t offset, const char *fragment,
				   const char *setting)
{
	for (int i = 0; i < policy->nrows; i++)
	{
		const ReaperPolicyRow *row = &policy->rows[i];

		if (!row->exempt && *(const int *) ((const char *) row + offset) >= 0)
			return (char *) fragment;
	}
	return (char *) setting;
}

/*
 * reaper_policy_fragments
 *		Write the rows' lookups into the tables' threshold fragments
 *		(tables.h), so that every statement applies them, set-based, to
 *		each job.
 */
void
reaper_policy_fragments(const ReaperPolicy *policy, ReaperTables *tables)
{
	tables->timeout =
		threshold_fragment(policy, offsetof(ReaperPolicyRow, timeout_seconds),
						   "coalesce(" ELEM_OF_J(0) "::pg_catalog.int4, $1)", "$1");
	tables->stall =
		threshold_fragment(policy, offsetof(ReaperPolicyRow, stall_seconds),
						   "coalesce(" ELEM_OF_J(1) "::pg_catalog.int4, $2)", "$2");
	tables->max_runtime =
		threshold_fragment(policy, offsetof(ReaperPolicyRow, max_runtime_seconds),
						   "coalesce(" ELEM_OF_J(2) "::pg_catalog.int4, $3)", "$3");
	tables->exempt = "false";
	for (int i = 0; i < policy->nrows; i++)
	{
		const ReaperPolicyRow *row = &policy->rows[i];

		/* a job without an operation, or without a row, is not exempt */
		if (row->exempt)
			tables->exempt = "coalesce(" ELEM_OF_J(3) "::pg_catalog.bool, false)";
		if (row->events_extend_lease)
			tables->events_extend = "coalesce(" ELEM_OF_J(4) "::pg_catalog.bool, false)";
		/* no queued label (tables.c): nothing can be re-queued */
		if (row->max_lease_requeues >= 0 && tables->queued_label != NULL)
			tables->max_requeues = "coalesce(" ELEM_OF_J(5) "::pg_catalog.int4, $7)";
	}
}

/*
 * reaper_policy_for
 *		The thresholds of one operation: its row's, or the settings'.
 */
void
reaper_policy_for(const ReaperPolicy *policy, const char *operation,
				  int *timeout_seconds, int *stall_seconds,
				  int *max_runtime_seconds, bool *exempt)
{
	const ReaperPolicyRow *row = NULL;

	if (operation != NULL && policy->nrows > 0)
	{
		ReaperPolicyRow key;

		key.operation = (char *) operation;
		key.operation_len = strlen(operation);
		row = bsearch(&key, policy->rows, policy->nrows, sizeof(ReaperPolicyRow),
					  compare_rows);
	}
	*timeout_seconds = or_setting(row ? row->timeout_seconds : -1, policy->timeout_seconds);
	*stall_seconds = or_setting(row ? row->stall_seconds : -1, policy->stall_seconds);
	*max_runtime_seconds = or_setting(row ? row->max_runtime_seconds : -1,
									  policy->max_runtime_seconds);
	*exempt = row != NULL && row->exempt;
}
