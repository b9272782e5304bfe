/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The protea_reaper background worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_WORKER_H
#define PROTEA_REAPER_WORKER_H

#include "fmgr.h"

extern void reaper_worker_register(void);
extern PGDLLEXPORT void protea_reaper_worker_main(Datum main_arg);

#endif							/* PROTEA_REAPER_WORKER_H */
