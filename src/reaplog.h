/*-------------------------------------------------------------------------
 *
 * reaplog.h
 *	  The per-job "Reaper failed stale job" lines, written only once the
 *	  failures they report have committed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTEA_REAPER_REAPLOG_H
#define PROTEA_REAPER_REAPLOG_H

#include "mb/pg_wchar.h"

/* Per-job lines one sweep writes at most; the rest are counted */
#define REAPLOG_MAX_JOB_LINES 100

/* The most characters of an application's text (an operation) a line quotes */
#define REAPLOG_MAX_TEXT_CHARS 200

/* A new sweep: its allowance of per-job lines starts again */
extern void reaplog_start_sweep(void);

/*
 * Queue the line of one failed job until the transaction commits; false
 * when the sweep has used its allowance (the job is then only counted).
 */
extern bool reaplog_failed_job(const char *id, const char *operation,
							   const char *started_at, const char *last_event,
							   const char *message);

/* Queue "Reaper re-queued job <id>." (false: past the sweep's allowance) */
extern bool reaplog_requeued_job(const char *id, const char *operation,
								 const char *started_at, const char *last_event,
								 const char *prior, const char *budget,
								 const char *queue);

/*
 * Queue a line for the transaction's commit, after its per-job lines (the
 * summary of a sweep that runs inside its caller's transaction).
 */
extern void reaplog_at_commit(int elevel, const char *message, const char *detail);

/*
 * Text in log lines.  An operator's reason must be one printable line; an
 * application's or owner's text (an operation, a status label) is quoted
 * and escaped.
 */
extern bool reaper_unprintable(pg_wchar c);
extern bool reaper_blank(pg_wchar c);
extern pg_wchar reaper_next_char(const char *p, int *len);
extern char *reaper_log_text(const char *s);

#endif							/* PROTEA_REAPER_REAPLOG_H */
