# 010_worker.pl: the background worker's lifecycle as an operator sees it.
#
# No reaper runs in a database without the extension; one starts there on
# CREATE EXTENSION and shows up in pg_stat_activity, fails a stale job
# within two intervals and leaves
# a live one (or a leased one, until its lease lapses) alone, applies a
# reload at once, idles when disabled, and
# survives bad cycles (a dropped table, a lock timeout) without dying or
# flooding the log.  protea_reaper_status() reflects each step.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

my $node = reaper_node('worker', conf => "protea_reaper.lock_timeout = '500ms'\n");
$node->start;

# No extension yet: nothing is written, and no reaper stays connected
install_protea($node, extension => 0);
my $early = add_job($node, 1);
ok(stays_running($node, $early, 3), 'without the extension nothing is written');
is(worker_pid($node), '', 'and no reaper stays in the database');

# With the extension: a reaper starts, and a stale job is failed within two
# intervals (1 s each, plus the time of the check), a live one is not
$node->safe_psql('postgres', 'CREATE EXTENSION protea_reaper');
my $pid = wait_for_worker($node);
ok($pid, 'on CREATE EXTENSION a reaper appears in pg_stat_activity as protea_reaper');
is( $node->safe_psql('postgres',
		"SELECT backend_type || ' ' || application_name FROM pg_stat_activity WHERE pid = $pid"),
	'protea_reaper protea_reaper',
	'backend_type and application_name are protea_reaper');
ok(reaped_within($node, $early, 10), 'stale job from before CREATE EXTENSION is reaped');
is($node->safe_psql('postgres',
		q{SELECT state FROM protea_reaper_status() WHERE database IS NULL}),
	'running', 'the launcher has a row of its own (database NULL)');
ok($node->log_contains(qr/protea_reaper is reaping in database "postgres"/),
	'the log says the reaper is reaping there');
my $stale = add_job($node, 2, event => '1 hour');
my $alive = add_job($node, 3, event => '10 seconds');
ok(reaped_within($node, $stale, 2 + 1), 'stale job is failed within two intervals');
ok(stays_running($node, $alive, 2), 'job with a recent event is left alone');
$node->wait_for_log(qr/Reaper failed stale job $stale\./);
ok($node->log_contains(qr/Reaped 1 stale job\(s\)\./), 'summary line is logged');

my $status = $node->safe_psql('postgres',
	q{SELECT pid, database, state IN ('idle', 'sweeping'), enabled, stall_seconds,
	         cycles > 0, total_reaped, last_alive, last_error IS NULL,
	         next_cycle_at > now() - interval '1 second'
	    FROM protea_reaper_status() WHERE database = current_database()});
is($status, "$pid|postgres|t|t|300|t|2|1|t|t", 'status reflects a healthy worker');
is( $node->safe_psql('postgres',
		q{SELECT last_running, last_stale, last_oldest_stale_seconds IS NULL,
		         total_stalled, total_capped + total_lease_expired + total_requeued
		    FROM protea_reaper_metrics WHERE database = current_database()}),
	'1|0|t|2|0',
	'the metrics: one job running (the alive one), none stale left, both reaped jobs stalled');

# Reload: a shorter stall window changes the outcome without a restart
my $quiet = add_job($node, 4, event => '2 min');
ok(stays_running($node, $quiet, 2), 'job silent for 2 min is alive with a 5 min stall window');
my $offset = -s $node->logfile;
$node->append_conf('postgresql.conf',
	"protea_reaper.stall_seconds = '1min'\nprotea_reaper.log_skipped = on\n");
$node->reload;
ok(reaped_within($node, $quiet, 5), 'after reload with a 1 min stall window it is reaped');
ok(stays_running($node, $alive, 1), 'the job with a 10 s old event is still alive');
$node->wait_for_log(qr/LOG:  Reaper skipped live job\.\n.*DETAIL:  job $alive, /, $offset);
pass('with log_skipped the live job is logged at LOG');

# A job whose lease is in the future is alive whatever its events say,
# until the lease lapses (PROTEA's workers renew it every heartbeat); then
# it is dead by PROTEA's rule
$offset = -s $node->logfile;
my $leased = add_job($node, 10, event => '1 hour', lease => '10 seconds');
$node->wait_for_log(
	qr/LOG:  Reaper skipped live job\.\n.*DETAIL:  job $leased, operation "insert_proteins", started_at [^,]+, is leased until /,
	$offset);
pass('a leased job is logged as leased');
ok(stays_running($node, $leased, 3), 'a leased job without a recent event is left alone');
is($node->safe_psql('postgres',
		"SELECT verdict FROM protea_reaper_running_jobs() WHERE job_id = '$leased'"),
	'leased', 'protea_reaper_running_jobs() says it is leased');
ok( $node->poll_query_until('postgres',
		"SELECT status || '/' || error_code FROM job WHERE id = '$leased'", 'FAILED/lease_expired'),
	'once its lease has lapsed (and lease_grace_seconds passed) it is failed: lease_expired');
is($node->safe_psql('postgres', 'SELECT stall_seconds FROM protea_reaper_status() WHERE database = current_database()'),
	'60', 'status shows the reloaded stall_seconds');

# A longer interval takes effect at once, not after the old sleep
$node->append_conf('postgresql.conf', "protea_reaper.interval_seconds = 3600\n");
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT interval_seconds = 3600 AND next_cycle_at > now() + interval '50 minutes'
	    FROM protea_reaper_status() WHERE database = current_database()})
  or die 'interval not applied';
pass('a new interval reschedules the next cycle at once');
my $woken = add_job($node, 5);
is($node->safe_psql('postgres', 'SELECT protea_reaper_wake()'), 't', 'wake is accepted');
ok(reaped_within($node, $woken, 5), 'protea_reaper_wake() sweeps at once');
$node->append_conf('postgresql.conf', "protea_reaper.interval_seconds = 1\n");
$node->reload;

# enabled = off: the worker idles without exiting; on resumes reaping
$node->append_conf('postgresql.conf', "protea_reaper.enabled = off\n");
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT state = 'disabled' AND NOT enabled FROM protea_reaper_status() WHERE database = current_database()})
  or die 'worker did not become disabled';
my $while_off = add_job($node, 6);
ok(stays_running($node, $while_off, 3), 'disabled worker reaps nothing');
is(worker_pid($node), $pid, 'disabled worker is still running');
$node->append_conf('postgresql.conf', "protea_reaper.enabled = on\n");
$node->reload;
ok(reaped_within($node, $while_off, 5), 'enabled again, it reaps');

# A bad cycle: the event table is dropped
$offset = -s $node->logfile;
$node->safe_psql('postgres', 'DROP TABLE job_event');
$node->wait_for_log(
	qr/LOG:  Reaper cycle failed: protea_reaper job_event table "public.job_event" does not exist/,
	$offset);
sleep(3);
is(worker_pid($node), $pid, 'worker survives the failed cycle with the same pid');
my $log = slurp_file($node->logfile, $offset);
my $failures = () = $log =~ /LOG:  Reaper cycle failed/g;
is($failures, 1, 'an identical failure is not logged again every cycle');
like(
	$node->safe_psql('postgres',
		q{SELECT state, failed_cycles >= 3, last_error, last_error_at IS NOT NULL FROM protea_reaper_status() WHERE database = current_database()}),
	qr/^idle after error\|t\|protea_reaper job_event table "public\.job_event" does not exist\|t$/,
	'status shows the failure');
is( $node->safe_psql('postgres',
		q{SELECT last_running IS NULL, last_stale IS NULL, last_oldest_stale_seconds IS NULL
		    FROM protea_reaper_metrics WHERE database = current_database()}),
	't|t|t',
	'a failed cycle knows no running or stale jobs: its gauges are NULL, not 0');

# ...and recreated: the worker reaps again
my $schema = slurp_file("$FindBin::RealBin/../protea_schema.sql");
my ($event_ddl) = $schema =~ /(CREATE TABLE job_event .*?;)/s;
my @event_indexes = $schema =~ /(CREATE INDEX \w+ ON job_event [^;]*;)/g;
$node->safe_psql('postgres', join("\n", $event_ddl, @event_indexes));
my $after = add_job($node, 7);
ok(reaped_within($node, $after, 5), 'with job_event recreated the worker reaps again');
$node->wait_for_log(qr/Reaper cycle succeeded after \d+ failed cycle\(s\)\./, $offset);

# A lock held by another session: lock_timeout fails the cycle, it does not hang
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE job IN ACCESS EXCLUSIVE MODE;');
$offset = -s $node->logfile;
$node->wait_for_log(qr/Reaper cycle failed: canceling statement due to lock timeout/, $offset);
is(worker_pid($node), $pid, 'worker survives a lock timeout');
$locker->query_safe('ROLLBACK');
$locker->quit;
my $unlocked = add_job($node, 8);
ok(reaped_within($node, $unlocked, 5), 'once the lock is gone it reaps again');

# DROP EXTENSION: the reaper exits, and says why once
$offset = -s $node->logfile;
$node->safe_psql('postgres', 'DROP EXTENSION protea_reaper');
my $dropped = add_job($node, 9);
$node->wait_for_log(qr/protea_reaper exits: extension "protea_reaper" is not installed in database "postgres"/,
	$offset);
ok(stays_running($node, $dropped, 2), 'after DROP EXTENSION nothing is written');
is(worker_pid($node), '', 'and the reaper has left the database');
# The status is server-wide: read it from another database with the extension
$node->safe_psql('postgres', 'CREATE DATABASE ops');
$node->safe_psql('ops', 'CREATE EXTENSION protea_reaper');
is($node->safe_psql('ops', q{SELECT count(*) FROM protea_reaper_status() WHERE database = 'postgres'}),
	'0', 'a database without the extension has no row in the status');
$log = slurp_file($node->logfile, $offset);
my $exits = () = $log =~ /protea_reaper exits: extension/g;
is($exits, 1, 'the exit is logged once');

$node->stop;
done_testing();
