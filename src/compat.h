/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  What differs between the PostgreSQL majors protea_reaper builds on:
 *	  15, 16, 17 and 18 (supported) and 19 (next).  Each difference is one
 *	  guard on PG_VERSION_NUM that says which version changed what.
 *
 * Headers that exist in every supported major but that 19 no longer pulls
 * in indirectly (access/htup_details.h, for heap_form_tuple()) are included
 * directly where they are used, without a guard.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_COMPAT_H
#define PROTEA_REAPER_COMPAT_H

/*
 * PostgreSQL 16 moved the varlena macros (VARSIZE_ANY_EXHDR, VARDATA_ANY,
 * ...) out of postgres.h into varatt.h.  Up to 18 it still arrived through
 * funcapi.h (executor/tuptable.h includes access/htup_details.h, which
 * includes varatt.h); 19's tuptable.h no longer does.  15 has no varatt.h.
 */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * PostgreSQL 16 gave stringToQualifiedNameList() a second argument, Node
 * *escontext, for soft errors.  NULL keeps 15's behaviour: a bad name
 * raises the parser's ERROR.
 */
#if PG_VERSION_NUM >= 160000
#define protea_string_to_qualified_name_list(string) \
	stringToQualifiedNameList((string), NULL)
#else
#define protea_string_to_qualified_name_list(string) \
	stringToQualifiedNameList(string)
#endif

/*
 * PostgreSQL 17 replaced the global IsBackgroundWorker with
 * AmBackgroundWorkerProcess() (MyBackendType == B_BG_WORKER); miscadmin.h.
 */
#if PG_VERSION_NUM >= 170000
#define protea_am_background_worker() AmBackgroundWorkerProcess()
#else
#define protea_am_background_worker() IsBackgroundWorker
#endif

/*
 * PostgreSQL 19 lets a background worker say that DROP DATABASE and the
 * like may terminate it (BGWORKER_INTERRUPTIBLE).  Before 19 dbcommands.c
 * stops the reapers itself; with 19 the server does it too.
 */
#ifdef BGWORKER_INTERRUPTIBLE
#define PROTEA_BGWORKER_INTERRUPTIBLE BGWORKER_INTERRUPTIBLE
#else
#define PROTEA_BGWORKER_INTERRUPTIBLE 0
#endif

/*
 * A DROP DATABASE interrupted partway leaves the database invalid
 * (datconnlimit = -2): minor releases from 15.4 and 16.0 on.  Connecting
 * there fails, so the launcher skips it.
 */
#ifdef DATCONNLIMIT_INVALID_DB
#define protea_database_is_invalid(form) database_is_invalid_form(form)
#else
#define protea_database_is_invalid(form) false
#endif

/*
 * PostgreSQL 16 replaced the per-catalog ownership and privilege checks with
 * object_ownercheck() and object_aclcheck(); utils/acl.h.
 */
#if PG_VERSION_NUM >= 160000
#define protea_database_ownercheck(dboid, roleid) \
	object_ownercheck(DatabaseRelationId, (dboid), (roleid))
#define protea_database_aclcheck(dboid, roleid, mode) \
	object_aclcheck(DatabaseRelationId, (dboid), (roleid), (mode))
#else
#define protea_database_ownercheck(dboid, roleid) \
	pg_database_ownercheck((dboid), (roleid))
#define protea_database_aclcheck(dboid, roleid, mode) \
	pg_database_aclcheck((dboid), (roleid), (mode))
#endif

#endif							/* PROTEA_REAPER_COMPAT_H */
