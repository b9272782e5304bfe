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
 * catalog's), and written into every statement's SQL as literals (a CASE
 * on the job's operation per threshold): the statements then run as the
 * job table's owner, who needs no right on the policy table, and apply the
 * rows to every job at once (statements.c).  A change of the rows changes
 * the statements' text, so their kept plans are made again (plans.c).
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
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
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
};
#define POLICY_COLUMNS lengthof(policy_columns)

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
 * The extension's oid, schema, and whether its version is 1.0 (which has
 * no policy); InvalidOid when it is not installed
 */
static Oid
extension_by_name(Oid *nsp, bool *is_1_0)
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
		Datum		version = heap_getattr(tuple, Anum_pg_extension_extversion,
										   RelationGetDescr(rel), &isnull);

		extoid = ((Form_pg_extension) GETSTRUCT(tuple))->oid;
		*nsp = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
		*is_1_0 = !isnull && strcmp(TextDatumGetCString(version), "1.0") == 0;
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
policy_relid(void)
{
	Oid			nsp = InvalidOid;
	bool		is_1_0 = false;
	Oid			extoid = extension_by_name(&nsp, &is_1_0);
	Oid			relid;

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

/* The table's first columns must be the install script's, or it is not read */
static void
check_policy_columns(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < POLICY_COLUMNS; i++)
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
					 errhint("Put the column back as the extension made it (ALTER TABLE ... RENAME COLUMN, or ALTER COLUMN ... TYPE): operation text, timeout_seconds integer, stall_seconds integer, max_runtime_seconds integer, exempt boolean, in that order.")));
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

/* Rows by operation, byte for byte */
static int
compare_rows(const void *a, const void *b)
{
	return strcmp(((const ReaperPolicyRow *) a)->operation,
				  ((const ReaperPolicyRow *) b)->operation);
}

/* Read every row of the table */
static void
read_rows(ReaperPolicy *policy, Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TableScanDesc scan;
	int			allocated = 8;

	check_policy_columns(rel);
	policy->rows = palloc(allocated * sizeof(ReaperPolicyRow));
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		ReaperPolicyRow *row;
		bool		isnull;
		Datum		operation = slot_getattr(slot, 1, &isnull);
		Datum		exempt;

		/* a row without an operation (its key altered away) applies to no job */
		if (isnull)
			continue;
		if (policy->nrows == allocated)
		{
			allocated *= 2;
			policy->rows = repalloc(policy->rows, allocated * sizeof(ReaperPolicyRow));
		}
		row = &policy->rows[policy->nrows++];
		row->operation = TextDatumGetCString(operation);
		row->timeout_seconds = threshold(slot, 2);
		row->stall_seconds = threshold(slot, 3);
		row->max_runtime_seconds = threshold(slot, 4);
		exempt = slot_getattr(slot, 5, &isnull);
		row->exempt = !isnull && DatumGetBool(exempt);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);

	/* in a fixed order, so that the statements change only with the rows */
	qsort(policy->rows, policy->nrows, sizeof(ReaperPolicyRow), compare_rows);
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
	Oid			relid = policy_relid();

	memset(policy, 0, sizeof(ReaperPolicy));
	policy->timeout_seconds = reaper_timeout_seconds;
	policy->stall_seconds = reaper_stall_seconds;
	policy->max_runtime_seconds = reaper_max_runtime_seconds;
	if (OidIsValid(relid))
		read_rows(policy, relid);

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
}

/* How job j's operation is compared: byte for byte, as strcmp() here does */
#define OPERATION_OF_J "j.operation::pg_catalog.text COLLATE \"C\""

/*
 * One threshold of job j as SQL: a CASE on its operation with the value of
 * each row that sets it, else the setting's parameter; just the parameter
 * when no row sets it.  Operations are quoted literals.
 */
static char *
threshold_fragment(const ReaperPolicy *policy, size_t offset, const char *setting)
{
	StringInfoData sql;
	int			n = 0;

	initStringInfo(&sql);
	for (int i = 0; i < policy->nrows; i++)
	{
		const ReaperPolicyRow *row = &policy->rows[i];
		int			value = *(const int *) ((const char *) row + offset);

		if (row->exempt || value < 0)
			continue;
		if (n++ == 0)
			appendStringInfoString(&sql, "CASE " OPERATION_OF_J);
		appendStringInfo(&sql, " WHEN %s THEN %d", quote_literal_cstr(row->operation), value);
	}
	if (n == 0)
		return (char *) setting;
	appendStringInfo(&sql, " ELSE %s END", setting);
	return sql.data;
}

/*
 * reaper_policy_fragments
 *		Write the rows into the tables' threshold fragments (tables.h), so
 *		that every statement applies them, set-based, to each job.
 */
void
reaper_policy_fragments(const ReaperPolicy *policy, ReaperTables *tables)
{
	StringInfoData exempt;
	int			n = 0;

	tables->timeout = threshold_fragment(policy, offsetof(ReaperPolicyRow, timeout_seconds), "$1");
	tables->stall = threshold_fragment(policy, offsetof(ReaperPolicyRow, stall_seconds), "$2");
	tables->max_runtime = threshold_fragment(policy,
											 offsetof(ReaperPolicyRow, max_runtime_seconds), "$3");

	initStringInfo(&exempt);
	for (int i = 0; i < policy->nrows; i++)
	{
		if (!policy->rows[i].exempt)
			continue;
		appendStringInfoString(&exempt, n++ == 0 ? "((" OPERATION_OF_J " IN (" : ", ");
		appendStringInfoString(&exempt, quote_literal_cstr(policy->rows[i].operation));
	}
	/* IS TRUE: a job without an operation is not exempt */
	if (n > 0)
		appendStringInfoString(&exempt, ")) IS TRUE)");
	tables->exempt = n > 0 ? exempt.data : "false";
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

	for (int i = 0; operation != NULL && i < policy->nrows; i++)
		if (strcmp(policy->rows[i].operation, operation) == 0)
			row = &policy->rows[i];
	*timeout_seconds = or_setting(row ? row->timeout_seconds : -1, policy->timeout_seconds);
	*stall_seconds = or_setting(row ? row->stall_seconds : -1, policy->stall_seconds);
	*max_runtime_seconds = or_setting(row ? row->max_runtime_seconds : -1,
									  policy->max_runtime_seconds);
	*exempt = row != NULL && row->exempt;
}

/*
 * reaper_policy_alive_key
 *		Every threshold in force, as a string: known_alive.c forgets what it
 *		learnt when this changes (until when an event keeps a job alive
 *		depends on the stall and the cap, until when a job is young on the
 *		timeout, the cap and the exemptions).  tables: with the rows
 *		written in.
 */
char *
reaper_policy_alive_key(const ReaperPolicy *policy, const ReaperTables *tables)
{
	return psprintf("%d %d %d\n%s\n%s\n%s\n%s",
					policy->timeout_seconds, policy->stall_seconds,
					policy->max_runtime_seconds, tables->timeout, tables->stall,
					tables->max_runtime, tables->exempt);
}
