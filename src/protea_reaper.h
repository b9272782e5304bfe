/*-------------------------------------------------------------------------
 *
 * protea_reaper.h
 *	  Names every file of protea_reaper shares.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_H
#define PROTEA_REAPER_H

/*
 * The extension, its library, its worker's name and type, its shared
 * memory, its settings' prefix and its NOTIFY channel are all this name.
 */
#define REAPER_NAME "protea_reaper"

#endif							/* PROTEA_REAPER_H */
