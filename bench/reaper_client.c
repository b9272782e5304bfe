/*
 * bench/reaper_client.c: the client side of the protea_reaper benchmark.
 *
 *   reaper_client CONNINFO client   RUNS TIMEOUT_S STALL_S
 *   reaper_client CONNINFO inserver RUNS [SETUP_SQL]
 *   reaper_client CONNINFO pair     RUNS TIMEOUT_S STALL_S [IN_SETUP_SQL]
 *   reaper_client CONNINFO query    RUNS SETUP_SQL QUERY
 *   reaper_client CONNINFO duel     RUNS SETUP_A QUERY_A SETUP_B QUERY_B
 *   reaper_client CONNINFO hold     TIMEOUT_S STALL_S
 *   reaper_client CONNINFO watch    SECONDS
 *
 * client    The old Python reaper, as a separate process over the local
 *           socket: one query for the candidates (running, started_at older
 *           than the timeout by this host's clock), one
 *           SELECT max(ts) FROM job_event WHERE job_id = $1 per candidate,
 *           and for each stale one an UPDATE and an INSERT, then what would
 *           be the commit (a ROLLBACK here, so that runs repeat).  Every
 *           statement goes through PQexecParams (parsed and planned per call,
 *           like psycopg).  Prints one line per run: wall ms, candidates,
 *           failed.  The wall time runs from the candidates query to the
 *           last INSERT's reply: BEGIN and ROLLBACK are outside it.
 * inserver  BEGIN; SELECT * FROM bench.timed_run_once(); ROLLBACK per run.
 *           Prints: round-trip ms of that SELECT (this process's clock),
 *           server ms (clock_timestamp() around protea_reaper_run_once()
 *           inside the server), jobs failed, WAL bytes it wrote.
 *           SETUP_SQL runs once after connecting (e.g.
 *           SET protea_reaper.batch_size = 10000).
 * pair      inserver and client interleaved, on two connections: each run
 *           does one of each (alternating which goes first), so that both
 *           see the same moment of the machine.  The in-server session
 *           runs SET protea_reaper.stall_seconds = STALL_S first, then
 *           IN_SETUP_SQL if given.  Prints the inserver columns, then the
 *           client columns.
 * query     BEGIN; QUERY; ROLLBACK per run (SETUP_SQL once, after connecting).
 *           Prints: round-trip ms of QUERY, then the columns of its first row.
 * duel      query A and query B interleaved on two connections, one of
 *           each per run (alternating which goes first); prints A's columns
 *           as query does, then B's.
 * hold      One client sweep (rolled back), then prints
 *           "READY <own pid> <backend pid>" and sleeps until stdin closes,
 *           so that the caller can read /proc/<pid>/smaps_rollup.  With
 *           TIMEOUT_S 0 it runs SELECT 1 instead: a plain backend.
 * watch     Samples the background worker every 10 ms for SECONDS: each time
 *           protea_reaper_status().cycles moves, prints
 *           "<cycles> <cpu ns from /proc/pid/schedstat> <utime+stime ticks
 *           from /proc/pid/stat> <last_cycle_ms> <pid>".
 *
 * client, inserver and query first do 6 unmeasured runs (caches, the
 * sweep's plans, the known-alive memory, as in a worker that has run a
 * while; REAPER_CLIENT_WARMUP=n changes it); REAPER_CLIENT_PACE_MS=n pauses n ms
 * before each measured inserver/query run (a sweep with cold CPU caches,
 * as the worker runs it once per interval, rather than back to back).
 *
 * Build: gcc -O2 -o reaper_client reaper_client.c -I$(pg_config --includedir) -lpq
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

static int	WARMUP = 6;			/* REAPER_CLIENT_WARMUP overrides */
static int	PACE_MS = 0;		/* REAPER_CLIENT_PACE_MS: pause before each measured run */

static PGconn *conn;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void
die(const char *what, PGresult *res)
{
	fprintf(stderr, "reaper_client: %s: %s", what,
			res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
	exit(1);
}

static void
exec_ok(const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK)
		die(sql, res);
	PQclear(res);
}

static PGresult *
params(const char *sql, int n, const char *const *values, ExecStatusType want)
{
	PGresult   *res = PQexecParams(conn, sql, n, NULL, values, NULL, NULL, 0);

	if (PQresultStatus(res) != want)
		die(sql, res);
	return res;
}

/* "2024-05-01 12:34:56.123456+00" (TimeZone is UTC) to Unix seconds */
static double
parse_ts(const char *s)
{
	struct tm	tm;
	double		sec;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%d-%d-%d %d:%d:%lf", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &sec) != 6)
	{
		fprintf(stderr, "reaper_client: cannot parse timestamp %s\n", s);
		exit(1);
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_sec = 0;
	return (double) timegm(&tm) + sec;
}

static void
format_ts(double t, char *buf, size_t len)
{
	time_t		whole = (time_t) t;
	struct tm	tm;

	gmtime_r(&whole, &tm);
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%09.6f+00",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec + (t - whole));
}

/*
 * One sweep the way the old reaper did it, in the open transaction.
 * Returns the number of jobs failed; *candidates gets the candidate count.
 */
static int
client_sweep(int timeout_s, int stall_s, int *candidates)
{
	struct timespec wall;
	double		host_now;
	char		cutoff[64];
	char		message[128];
	char		fields[256];
	PGresult   *cands;
	int			failed = 0;

	/* the old reaper judged by the application host's clock */
	clock_gettime(CLOCK_REALTIME, &wall);
	host_now = wall.tv_sec + wall.tv_nsec / 1e9;
	format_ts(host_now - timeout_s, cutoff, sizeof(cutoff));
	snprintf(message, sizeof(message),
			 "Job stalled: no activity in %ds (started >%ds ago)", stall_s, timeout_s);

	{
		const char *v[1] = {cutoff};

		cands = params("SELECT id, started_at FROM job"
					   " WHERE status = 'RUNNING' AND started_at < $1",
					   1, v, PGRES_TUPLES_OK);
	}
	*candidates = PQntuples(cands);

	for (int i = 0; i < PQntuples(cands); i++)
	{
		const char *id = PQgetvalue(cands, i, 0);
		const char *v1[1] = {id};
		PGresult   *last = params("SELECT max(ts) FROM job_event WHERE job_id = $1",
								  1, v1, PGRES_TUPLES_OK);
		int			is_null = PQgetisnull(last, 0, 0);
		double		last_ts = is_null ? 0 : parse_ts(PQgetvalue(last, 0, 0));

		if (is_null || last_ts < host_now - stall_s)
		{
			const char *v2[2] = {id, message};
			const char *v3[3] = {id, message, fields};
			PGresult   *res;

			snprintf(fields, sizeof(fields),
					 "{\"timeout_seconds\": %d, \"stall_seconds\": %d, \"last_event_ts\": %s%s%s}",
					 timeout_s, stall_s, is_null ? "" : "\"",
					 is_null ? "null" : PQgetvalue(last, 0, 0), is_null ? "" : "\"");
			res = params("UPDATE job SET status = 'FAILED', finished_at = now(),"
						 " error_code = 'JobTimeout', error_message = $2"
						 " WHERE id = $1", 2, v2, PGRES_COMMAND_OK);
			PQclear(res);
			res = params("INSERT INTO job_event (job_id, ts, level, event, message, fields)"
						 " VALUES ($1, now(), 'error', 'job.timeout', $2, $3::jsonb)",
						 3, v3, PGRES_COMMAND_OK);
			PQclear(res);
			failed++;
		}
		PQclear(last);
	}
	PQclear(cands);
	return failed;
}

/* One timed protea_reaper_run_once() on c; fills the four printed columns */
static void
inserver_run(PGconn *c, char *out, size_t len)
{
	PGconn	   *saved = conn;
	PGresult   *res;
	double		t0, t1;

	conn = c;
	exec_ok("BEGIN");
	t0 = now_ms();
	res = PQexec(conn, "SELECT reaped, server_ms, wal_bytes FROM bench.timed_run_once()");
	t1 = now_ms();
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		die("timed_run_once", res);
	exec_ok("ROLLBACK");
	snprintf(out, len, "%.3f %s %s %s", t1 - t0, PQgetvalue(res, 0, 1),
			 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2));
	PQclear(res);
	conn = saved;
}

/* One timed BEGIN; q; ROLLBACK on c: round trip and the first row's columns */
static void
query_run(PGconn *c, const char *q, char *out, size_t len)
{
	PGconn	   *saved = conn;
	PGresult   *res;
	double		t0, t1;
	size_t		used;

	conn = c;
	exec_ok("BEGIN");
	t0 = now_ms();
	res = PQexec(conn, q);
	t1 = now_ms();
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		die(q, res);
	exec_ok("ROLLBACK");
	used = snprintf(out, len, "%.3f", t1 - t0);
	for (int col = 0; PQntuples(res) > 0 && col < PQnfields(res) && used < len; col++)
		used += snprintf(out + used, len - used, " %s", PQgetvalue(res, 0, col));
	PQclear(res);
	conn = saved;
}

static long long
read_schedstat_ns(int pid)
{
	char		path[64];
	long long	ns = -1;
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fscanf(f, "%lld", &ns) != 1)
		ns = -1;
	fclose(f);
	return ns;
}

static long long
read_stat_ticks(int pid)
{
	char		path[64];
	char		buf[4096];
	unsigned long long utime, stime;
	char	   *p;
	FILE	   *f;
	size_t		n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* fields after the command name: state is field 3, utime 14, stime 15 */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			   &utime, &stime) != 2)
		return -1;
	return (long long) (utime + stime);
}

int
main(int argc, char **argv)
{
	const char *mode;

	if (argc < 3)
	{
		fprintf(stderr, "usage: reaper_client CONNINFO client|inserver|hold|watch ...\n");
		return 2;
	}
	mode = argv[2];
	if (getenv("REAPER_CLIENT_WARMUP") != NULL)
		WARMUP = atoi(getenv("REAPER_CLIENT_WARMUP"));
	if (getenv("REAPER_CLIENT_PACE_MS") != NULL)
		PACE_MS = atoi(getenv("REAPER_CLIENT_PACE_MS"));
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect", NULL);
	exec_ok("SET TimeZone = 'UTC'");
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (strcmp(mode, "client") == 0 && argc == 6)
	{
		int			runs = atoi(argv[3]);
		int			timeout_s = atoi(argv[4]);
		int			stall_s = atoi(argv[5]);

		for (int r = -WARMUP; r < runs; r++)
		{
			int			cands, failed;
			double		t0, t1;

			exec_ok("BEGIN");
			t0 = now_ms();
			failed = client_sweep(timeout_s, stall_s, &cands);
			t1 = now_ms();
			exec_ok("ROLLBACK");
			if (r >= 0)
				printf("%.3f %d %d\n", t1 - t0, cands, failed);
		}
	}
	else if (strcmp(mode, "inserver") == 0 && (argc == 4 || argc == 5))
	{
		int			runs = atoi(argv[3]);
		char		line[256];

		if (argc == 5)
			exec_ok(argv[4]);
		for (int r = -WARMUP; r < runs; r++)
		{
			if (r >= 0 && PACE_MS > 0)
				usleep(PACE_MS * 1000);
			inserver_run(conn, line, sizeof(line));
			if (r >= 0)
				printf("%s\n", line);
		}
	}
	else if (strcmp(mode, "pair") == 0 && (argc == 6 || argc == 7))
	{
		int			runs = atoi(argv[3]);
		int			timeout_s = atoi(argv[4]);
		int			stall_s = atoi(argv[5]);
		PGconn	   *in_conn = PQconnectdb(argv[1]);
		char		setup[128];
		char		line[256];

		if (PQstatus(in_conn) != CONNECTION_OK)
		{
			conn = in_conn;
			die("connect", NULL);
		}
		{
			PGconn	   *saved = conn;

			conn = in_conn;
			snprintf(setup, sizeof(setup), "SET protea_reaper.stall_seconds = %d", stall_s);
			exec_ok(setup);
			snprintf(setup, sizeof(setup), "SET protea_reaper.timeout_seconds = %d", timeout_s);
			exec_ok(setup);
			if (argc == 7)
				exec_ok(argv[6]);
			conn = saved;
		}
		for (int r = -WARMUP; r < runs; r++)
		{
			int			cands, failed;
			double		t0, t1;

			if (r % 2 == 0)
				inserver_run(in_conn, line, sizeof(line));
			exec_ok("BEGIN");
			t0 = now_ms();
			failed = client_sweep(timeout_s, stall_s, &cands);
			t1 = now_ms();
			exec_ok("ROLLBACK");
			if (r % 2 != 0)
				inserver_run(in_conn, line, sizeof(line));
			if (r >= 0)
				printf("%s %.3f %d %d\n", line, t1 - t0, cands, failed);
		}
		PQfinish(in_conn);
	}
	else if (strcmp(mode, "query") == 0 && argc == 6)
	{
		int			runs = atoi(argv[3]);
		char		line[512];

		if (argv[4][0] != '\0')
			exec_ok(argv[4]);
		for (int r = -WARMUP; r < runs; r++)
		{
			if (r >= 0 && PACE_MS > 0)
				usleep(PACE_MS * 1000);
			query_run(conn, argv[5], line, sizeof(line));
			if (r >= 0)
				printf("%s\n", line);
		}
	}
	else if (strcmp(mode, "duel") == 0 && argc == 8)
	{
		int			runs = atoi(argv[3]);
		PGconn	   *b_conn = PQconnectdb(argv[1]);
		char		a_line[512], b_line[512];

		if (PQstatus(b_conn) != CONNECTION_OK)
		{
			conn = b_conn;
			die("connect", NULL);
		}
		if (argv[4][0] != '\0')
			exec_ok(argv[4]);
		if (argv[6][0] != '\0')
		{
			PGconn	   *saved = conn;

			conn = b_conn;
			exec_ok(argv[6]);
			conn = saved;
		}
		for (int r = -WARMUP; r < runs; r++)
		{
			if (r >= 0 && PACE_MS > 0)
				usleep(PACE_MS * 1000);
			if (r % 2 == 0)
				query_run(conn, argv[5], a_line, sizeof(a_line));
			else
				query_run(b_conn, argv[7], b_line, sizeof(b_line));
			if (r >= 0 && PACE_MS > 0)
				usleep(PACE_MS * 1000);
			if (r % 2 == 0)
				query_run(b_conn, argv[7], b_line, sizeof(b_line));
			else
				query_run(conn, argv[5], a_line, sizeof(a_line));
			if (r >= 0)
				printf("%s %s\n", a_line, b_line);
		}
		PQfinish(b_conn);
	}
	else if (strcmp(mode, "hold") == 0 && argc == 5)
	{
		int			cands = 0,
					failed = 0;
		char		buf[16];

		if (atoi(argv[3]) == 0)
			exec_ok("SELECT 1");
		else
		{
			exec_ok("BEGIN");
			failed = client_sweep(atoi(argv[3]), atoi(argv[4]), &cands);
			exec_ok("ROLLBACK");
		}
		printf("READY %d %d %d %d\n", (int) getpid(), PQbackendPID(conn), cands, failed);
		while (fgets(buf, sizeof(buf), stdin) != NULL)
			;
	}
	else if (strcmp(mode, "watch") == 0 && argc == 4)
	{
		double		end = now_ms() + atoi(argv[3]) * 1000.0;
		long long	last_cycles = -1;

		while (now_ms() < end)
		{
			PGresult   *res = PQexec(conn, "SELECT pid, cycles, last_cycle_ms FROM protea_reaper_status() WHERE database = current_database()");
			int			pid;
			long long	cycles;

			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				die("protea_reaper_status", res);
			if (!PQgetisnull(res, 0, 0))
			{
				pid = atoi(PQgetvalue(res, 0, 0));
				cycles = atoll(PQgetvalue(res, 0, 1));
				if (cycles != last_cycles)
				{
					printf("%lld %lld %lld %s %d\n", cycles, read_schedstat_ns(pid),
						   read_stat_ticks(pid), PQgetvalue(res, 0, 2), pid);
					last_cycles = cycles;
				}
			}
			PQclear(res);
			usleep(10000);
		}
	}
	else
	{
		fprintf(stderr, "reaper_client: bad arguments for mode %s\n", mode);
		return 2;
	}
	PQfinish(conn);
	return 0;
}
