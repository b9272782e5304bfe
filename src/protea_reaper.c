/*-------------------------------------------------------------------------
 *
 * protea_reaper.c
 *	  Module entry point: defines the settings and, when the library is in
 *	  shared_preload_libraries, reserves shared memory, hooks the database
 *	  commands and registers the launcher.
 *
 * The path through the code: settings.c (configuration) -> launcher.c (a
 * reaper per database; dbcommands.c keeps them out of a DBA's way) ->
 * worker.c (a reaper's loop) -> sweep.c (the sweep and its only batch loop; statements.c holds
 * every statement's SQL, plans.c runs them on the tables tables.c
 * resolves, policy.c reads the per-operation thresholds, reaplog.c writes what
 * committed) -> status.c (what the worker reports, in shared memory).
 * runbook.c holds every SQL-callable function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "dbcommands.h"
#include "launcher.h"
#include "plans.h"
#include "settings.h"
#include "status.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init
 *		Settings are defined whenever the library is loaded, so SHOW works
 *		after LOAD or CREATE EXTENSION; the workers exist only when preloaded.
 */
void
_PG_init(void)
{
	reaper_define_settings();
	reaper_plans_install_hooks();

	if (!process_shared_preload_libraries_in_progress)
		return;

	reaper_status_install_hooks();
	reaper_dbcommands_install_hooks();
	reaper_launcher_register();
}
