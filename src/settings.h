/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The protea_reaper.* configuration parameters (GUCs).
 *
 * Every other file reads the reaper's configuration through these
 * variables; settings.c is the only place that defines them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_SETTINGS_H
#define PROTEA_REAPER_SETTINGS_H

/* Thresholds of a sweep (PGC_SUSET: postgresql.conf, or SET by a superuser) */
extern int	reaper_timeout_seconds;
extern int	reaper_stall_seconds;
extern int	reaper_max_runtime_seconds;
extern int	reaper_lease_grace_seconds;
extern int	reaper_max_lease_requeues;
extern int	reaper_batch_size;
extern char *reaper_job_table;
extern char *reaper_event_table;
extern bool reaper_log_skipped;
extern bool reaper_remember_alive_unused;
extern bool reaper_notify;

/* The background worker's schedule and limits (PGC_SIGHUP) */
extern int	reaper_interval_seconds;
extern bool reaper_enabled;
extern int	reaper_lock_timeout_ms;
extern int	reaper_statement_timeout_ms;
extern int	reaper_max_jobs_per_cycle;

/* Which databases are reaped, and as whom (PGC_SIGHUP; the launcher) */
extern char *reaper_database;
extern char *reaper_role;

extern void reaper_define_settings(void);

/* protea_reaper.database, read (nodes/pg_list.h) */
extern struct List *reaper_database_list(void);
extern bool reaper_database_listed(struct List *names, const char *name, bool *found);

/* WARNING when the thresholds in force contradict each other */
extern void reaper_check_thresholds(void);

#endif							/* PROTEA_REAPER_SETTINGS_H */
