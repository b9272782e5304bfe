/*-------------------------------------------------------------------------
 *
 * dbcommands.h
 *	  The utility hook that keeps the reapers out of a DBA's way.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_DBCOMMANDS_H
#define PROTEA_REAPER_DBCOMMANDS_H

extern void reaper_dbcommands_install_hooks(void);

#endif							/* PROTEA_REAPER_DBCOMMANDS_H */
