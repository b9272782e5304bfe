/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The launcher, which starts a reaper in each database.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_LAUNCHER_H
#define PROTEA_REAPER_LAUNCHER_H

#include "fmgr.h"

/* What the launcher tells a reaper it starts, in bgw_extra */
typedef struct ReaperWorkerArgs
{
	Oid			dboid;			/* the database it reaps */
	Oid			roleid;			/* the role it connects as (InvalidOid: bootstrap superuser) */
} ReaperWorkerArgs;

extern void reaper_launcher_register(void);
extern PGDLLEXPORT void protea_reaper_launcher_main(Datum main_arg);

#endif							/* PROTEA_REAPER_LAUNCHER_H */
