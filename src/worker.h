/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  A reaper: the background worker of one database.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_WORKER_H
#define PROTEA_REAPER_WORKER_H

#include "fmgr.h"

extern PGDLLEXPORT void protea_reaper_worker_main(Datum main_arg);

#endif							/* PROTEA_REAPER_WORKER_H */
