# 060_attacks.pl: the worker attacked as a hostile table owner and a
# careless operator would.  Each case failed on the reaper before it was
# hardened:
#   - a table owner's trigger tries to make its role a superuser;
#   - a trigger slows a sweep statement past protea_reaper.statement_timeout;
#   - job_event loses its index, as during a restore between COPY and
#     CREATE INDEX;
#   - an event dated in the future (a writer's clock) is corrected;
#   - a deferred trigger waits for the commit to run with the worker's rights;
#   - a cycle fails after some of its batches committed;
#   - another transaction holds a stale job's row.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

my $node = reaper_node('attacks', conf => q{
protea_reaper.statement_timeout = '500ms'
protea_reaper.lock_timeout = '500ms'
protea_reaper.log_skipped = on
});
$node->start;
install_protea($node);
my $pid = wait_for_worker($node);

# PROTEA's tables belong to the application's role
$node->safe_psql('postgres', q{
	CREATE ROLE app;
	ALTER TABLE job OWNER TO app;
	ALTER TABLE job_event OWNER TO app;
	GRANT CREATE ON SCHEMA public TO app;
});

# A trojan horse: app's trigger on job_event tries ALTER ROLE app SUPERUSER
# when the reaper writes the audit event.  The worker runs as the bootstrap
# superuser, but writes as app: the trigger is refused, the cycle rolls back.
$node->safe_psql('postgres', q{
	SET ROLE app;
	CREATE FUNCTION public.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		EXECUTE 'ALTER ROLE app SUPERUSER';
		RETURN NEW;
	END $$;
	CREATE TRIGGER escalate AFTER INSERT ON job_event
		FOR EACH ROW WHEN (NEW.event = 'job.timeout') EXECUTE FUNCTION public.escalate();
});
my $offset = -s $node->logfile;
my $trojan = add_job($node, 1);
# (15 says "must be superuser to alter superuser roles", 16 and up
# "permission denied to alter role")
$node->wait_for_log(qr/LOG:  Reaper cycle failed: (must be superuser|permission denied to alter role)/,
	$offset);
sleep(2);
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'app'"),
	'f', "the table owner's trigger did not make its role a superuser");
is(job_state($node, $trojan), 'RUNNING//0', 'the cycle rolled back whole');
$node->safe_psql('postgres', 'DROP TRIGGER escalate ON job_event');
ok(reaped_within($node, $trojan, 5), 'without the trigger the job is reaped');

# statement_timeout bites in the worker: a trigger sleeping 3 s makes each
# sweep statement overrun 500 ms; it is cancelled, not waited for
$node->safe_psql('postgres', q{
	SET ROLE app;
	CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_sleep(3);
		RETURN NEW;
	END $$;
	CREATE TRIGGER slow BEFORE UPDATE ON job FOR EACH ROW EXECUTE FUNCTION public.slow();
});
$offset = -s $node->logfile;
my $slowed = add_job($node, 2);
$node->wait_for_log(qr/LOG:  Reaper cycle failed: canceling statement due to statement timeout/,
	$offset);
my $ms = $node->safe_psql('postgres', 'SELECT last_cycle_ms FROM protea_reaper_status() WHERE database = current_database()');
cmp_ok($ms, '<', 2500, "the slowed cycle was cancelled after statement_timeout ($ms ms)");
is(job_state($node, $slowed), 'RUNNING//0', 'and wrote nothing');
is(worker_pid($node), $pid, 'the worker survives it');
$node->safe_psql('postgres', 'DROP TRIGGER slow ON job');
ok(reaped_within($node, $slowed, 5), 'without the slow trigger the job is reaped');

# ... and a trigger that catches the cancel and goes on is ended by the
# hard deadline, twice statement_timeout: the worker exits (owner code
# cannot catch that) and the postmaster starts it again
$node->safe_psql('postgres', q{
	SET ROLE app;
	CREATE FUNCTION public.stubborn() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		FOR i IN 1 .. 60 LOOP
			BEGIN
				PERFORM pg_sleep(0.5);
			EXCEPTION WHEN query_canceled THEN NULL;
			END;
		END LOOP;
		RETURN NEW;
	END $$;
	CREATE TRIGGER stubborn BEFORE UPDATE ON job FOR EACH ROW EXECUTE FUNCTION public.stubborn();
});
$offset = -s $node->logfile;
my $stubborn = add_job($node, 9);
$node->wait_for_log(
	qr/LOG:  Reaper cycle failed: a statement ran past twice protea_reaper\.statement_timeout/,
	$offset);
$node->safe_psql('postgres', 'DROP TRIGGER stubborn ON job');
my $pid_after = wait_for_worker($node, $pid);
isnt($pid_after, $pid, 'a trigger that catches the cancel cannot hold the worker: it is restarted');
$pid = $pid_after;
ok(reaped_within($node, $stubborn, 10), 'without that trigger the job is reaped');

# Text the application writes (an operation) cannot forge a log line
$offset = -s $node->logfile;
my $forger = add_job($node, 10);
$node->safe_psql('postgres',
	qq{UPDATE job SET operation = E'op, started_at x\nLOG:  Reaper failed stale job forged.' WHERE id = '$forger'});
$node->wait_for_log(qr/Reaper failed stale job $forger\./, $offset);
my $forge_log = slurp_file($node->logfile, $offset);
like($forge_log, qr/DETAIL:  operation "op, started_at x\\x0ALOG:  Reaper failed stale job forged\.", started_at /,
	'the operation is quoted and its newline escaped');
unlike($forge_log, qr/^[^\n]*\] (?:\S+ )?LOG:  Reaper failed stale job forged\./m,
	'so it forges no line');

# A restore: job_event has no (job_id ...) index between the COPY of the
# data and CREATE INDEX, and between COPY job and COPY job_event every job
# looks eventless.  The worker refuses to sweep without the index.
$node->safe_psql('postgres',
	'DROP INDEX job_event_job_id_ts; DROP INDEX job_event_job_id_event');
$offset = -s $node->logfile;
my $restored = add_job($node, 3);
$node->wait_for_log(
	qr/LOG:  Reaper cycle failed: protea_reaper job_event table public\.job_event has no index on \(job_id, \.\.\.\)/,
	$offset);
ok(stays_running($node, $restored, 2), 'a job restored before its events is not failed');
$node->safe_psql('postgres', q{
	INSERT INTO job_event (job_id, ts, level, event, fields)
	VALUES ('} . $restored . q{', now() - '1 min'::interval, 'info', 'job.progress', '{}');
	CREATE INDEX job_event_job_id_ts ON job_event (job_id, ts);
});
ok(stays_running($node, $restored, 2), 'once its events and the index are back it is alive');
$node->wait_for_log(qr/Reaper cycle succeeded after \d+ failed cycle\(s\)\./, $offset);
pass('the worker sweeps again once the index exists');

# An event ten years ahead (a writer's clock) keeps its job alive while it
# stands; once the DBA corrects it, the job is stale at the next cycle (the
# worker never remembers an event dated after its sweep's now())
my $skewed = add_job($node, 4);
$node->safe_psql('postgres', qq{
	INSERT INTO job_event (job_id, ts, level, event, fields)
	VALUES ('$skewed', now() + '10 years'::interval, 'info', 'job.progress', '{}')});
ok(stays_running($node, $skewed, 3), 'a job with an event in the future is alive');
$node->safe_psql('postgres',
	qq{UPDATE job_event SET ts = now() - '1 hour'::interval WHERE job_id = '$skewed'});
ok(reaped_within($node, $skewed, 5), 'once the event is corrected the job is reaped');

# A deferred trigger on job_event would fire at commit, after the reaper
# has stopped acting as the owner, with the worker's own rights: the server
# refuses to queue it within the reaper's security-restricted operation.
# The cycle fails, and no line claims a failure that rolled back.
$node->safe_psql('postgres', q{
	SET ROLE app;
	CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		EXECUTE 'ALTER ROLE app SUPERUSER';
		RETURN NEW;
	END $$;
	CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON job_event
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
		WHEN (NEW.event = 'job.timeout') EXECUTE FUNCTION public.refuse();
});
$offset = -s $node->logfile;
my $deferred = add_job($node, 5);
$node->wait_for_log(
	qr/LOG:  Reaper cycle failed: cannot fire deferred trigger within security-restricted operation/,
	$offset);
sleep(2);
my $log = slurp_file($node->logfile, $offset);
unlike($log, qr/Reaper failed stale job $deferred\./,
	'no line claims a failure that rolled back');
unlike($log, qr/Reaped \d+ stale job/, 'nor a summary');
is(job_state($node, $deferred), 'RUNNING//0', 'the job is still running');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'app'"),
	'f', 'and the deferred trigger never ran with the worker\'s rights');
$node->safe_psql('postgres', 'DROP TRIGGER refuse ON job_event');
ok(reaped_within($node, $deferred, 5), 'without the trigger it is reaped');

# A cycle that fails after some batches committed: batches of 5 over 22
# stale jobs, and a trigger that refuses the third batch (once 10 have
# been failed).  What committed is counted in the status and in the
# summary line, even though the cycle failed.
$node->append_conf('postgresql.conf', "protea_reaper.batch_size = 5\nprotea_reaper.interval_seconds = 3600\n");
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT next_cycle_at > now() + interval '50 minutes' FROM protea_reaper_status() WHERE database = current_database()})
  or die 'interval not applied';
$node->safe_psql('postgres', q{
	SET ROLE app;
	CREATE FUNCTION public.poison() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.operation = 'counted' AND
		   (SELECT count(*) FROM public.job
		     WHERE operation = 'counted' AND error_code IS NOT NULL) >= 10 THEN
			RAISE EXCEPTION 'poisoned job %', NEW.id;
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER poison BEFORE UPDATE ON job FOR EACH ROW EXECUTE FUNCTION public.poison();
	RESET ROLE;
	INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags)
	SELECT gen_random_uuid(), 'counted', 'q', 'RUNNING',
	       now() - '1 hour'::interval - i * '1 s'::interval,
	       now() - '1 hour'::interval - i * '1 s'::interval, '{}', '{}', '{}'
	  FROM generate_series(1, 22) AS i;
});
my $total_before = $node->safe_psql('postgres', 'SELECT total_reaped FROM protea_reaper_status() WHERE database = current_database()');
$offset = -s $node->logfile;
$node->safe_psql('postgres', 'SELECT protea_reaper_wake()');
$node->wait_for_log(qr/LOG:  Reaper cycle failed: poisoned job/, $offset);
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM job WHERE operation = 'counted' AND error_code = 'JobTimeout'}),
	'10', 'two batches of 5 committed before the third failed');
is($node->safe_psql('postgres',
		"SELECT total_reaped - $total_before, last_reaped FROM protea_reaper_status() WHERE database = current_database()"),
	'10|10', 'the status counts every committed failure of the failed cycle');
$log = slurp_file($node->logfile, $offset);
like($log, qr/LOG:  Reaped 10 stale job\(s\)\./, 'and so does the summary line');
$node->safe_psql('postgres', q{DELETE FROM job WHERE operation = 'counted'; DROP TRIGGER poison ON job});

# A stale job whose row another transaction holds is skipped, counted and,
# with log_skipped, logged
$node->append_conf('postgresql.conf', "protea_reaper.batch_size = 1000\n");
$node->reload;
my $locked = add_job($node, 6);
my $other = add_job($node, 7);
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN; SELECT 1 FROM job WHERE id = '$locked' FOR UPDATE;");
$offset = -s $node->logfile;
$node->safe_psql('postgres', 'SELECT protea_reaper_wake()');
ok(reaped_within($node, $other, 5), 'the unlocked stale job is reaped');
$node->wait_for_log(qr/LOG:  Reaper skipped locked job $locked\./, $offset);
pass('the locked one is logged as skipped');
$node->wait_for_log(qr/1 stale job\(s\) skipped_locked/, $offset);
is($node->safe_psql('postgres', 'SELECT last_skipped_locked FROM protea_reaper_status() WHERE database = current_database()'),
	'1', 'and counted in the status');
$holder->query_safe('ROLLBACK');
$holder->quit;
$node->safe_psql('postgres', 'SELECT protea_reaper_wake()');
ok(reaped_within($node, $locked, 5), 'once released it is reaped');

$node->stop;
done_testing();
