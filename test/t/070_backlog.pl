# 070_backlog.pl: a large backlog is stoppable, and what is logged and
# counted is what committed.
#
# An operator's mistaken threshold makes 100,000 running jobs stale at
# once.  Between two batches the worker applies a reload (so reverting the
# mistake stops it), enabled = off, DROP EXTENSION and SIGTERM; the brake
# protea_reaper.max_jobs_per_cycle stops each cycle and says how many jobs
# wait; and each "Reaper failed stale job" line is of a committed failure.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;
use Time::HiRes qw(time usleep);

# Batches of 200 so that a backlog takes many of them; no brake at first
my $node = reaper_node('backlog', conf => q{
protea_reaper.timeout_seconds = '6h'
protea_reaper.batch_size = 200
protea_reaper.max_jobs_per_cycle = 0
});
$node->start;
install_protea($node);
wait_for_worker($node);

# $n jobs that started 2 hours ago and have been silent since: young under
# the 6 h timeout, stale under a mistaken 1 h
sub add_backlog
{
	my ($n, $operation) = @_;
	$node->safe_psql('postgres', qq{
		INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags)
		SELECT gen_random_uuid(), '$operation', 'q', 'RUNNING', now() - '2 hours'::interval,
		       now() - '2 hours'::interval, '{}', '{}', '{}'
		  FROM generate_series(1, $n)});
	return;
}

sub failed
{
	my ($operation) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM job WHERE operation = '$operation' AND status = 'FAILED'");
}

sub set_conf
{
	my ($line) = @_;
	$node->append_conf('postgresql.conf', "$line\n");
	$node->reload;
	return;
}

# wait_failing($operation, $already): until the worker has failed more
# than $already (default 0) of them
sub wait_failing
{
	my ($operation, $already) = @_;
	$already //= 0;
	$node->poll_query_until('postgres',
		"SELECT count(*) > $already FROM job WHERE operation = '$operation' AND status = 'FAILED'")
	  or die "the worker did not start failing $operation jobs";
	return;
}

# The mistake, and its revert as soon as the first jobs fail
my $mistake_offset = -s $node->logfile;
add_backlog(100000, 'mistake');
set_conf("protea_reaper.timeout_seconds = '1h'");
wait_failing('mistake');
is($node->safe_psql('postgres', 'SELECT state FROM protea_reaper_status() WHERE database = current_database()'),
	'sweeping', 'while it works through a backlog the status says sweeping');
set_conf("protea_reaper.timeout_seconds = '6h'");
sleep(3);
my $settled = failed('mistake');
cmp_ok($settled, '<', 50000,
	"reverting a mistaken threshold stops the backlog ($settled of 100000 failed)");
is(failed('mistake'), $settled, 'and nothing more is failed under the reverted threshold');
my $mistake_log = slurp_file($node->logfile, $mistake_offset);
like($mistake_log, qr/Reaped \d+ stale job\(s\)\.\n.*DETAIL:  timeout_seconds=3600, stall_seconds=300[;.]/,
	'the summary names the thresholds the batches failed jobs under');
unlike($mistake_log, qr/Reaped \d+ stale job\(s\)\.\n.*DETAIL:  timeout_seconds=21600/,
	'not the ones reloaded while it ran');
$node->safe_psql('postgres', "DELETE FROM job WHERE operation = 'mistake'");

# enabled = off in the middle of a backlog
add_backlog(100000, 'disabled');
set_conf("protea_reaper.timeout_seconds = '1h'");
wait_failing('disabled');
set_conf('protea_reaper.enabled = off');
$node->poll_query_until('postgres', q{SELECT state = 'disabled' FROM protea_reaper_status() WHERE database = current_database()})
  or die 'worker did not become disabled';
my $disabled = failed('disabled');
sleep(2);
cmp_ok($disabled, '<', 50000, "enabled = off stops the backlog ($disabled of 100000 failed)");
is(failed('disabled'), $disabled, 'and the disabled worker fails nothing more');
$node->wait_for_log(qr/protea_reaper stopped a backlog: protea_reaper\.enabled is off/);
pass('the log says why the backlog stopped');
set_conf('protea_reaper.enabled = on');

# DROP EXTENSION in the middle of a backlog (the 'disabled' jobs left).  A
# batch already running when it commits (it does not wait for the batch)
# still ends; the next one does not start: the worker says so
my $drop_offset = -s $node->logfile;
wait_failing('disabled', $disabled);
$node->safe_psql('postgres', 'DROP EXTENSION protea_reaper');
$node->wait_for_log(
	qr/protea_reaper (stopped a backlog: extension "protea_reaper" is no longer installed|exits: extension "protea_reaper" is not installed)/,
	$drop_offset);
my $dropped = failed('disabled');
sleep(2);
cmp_ok($dropped, '<', 100000, "DROP EXTENSION stops the backlog ($dropped of 100000 failed)");
is(failed('disabled'), $dropped, 'and nothing more is failed after it');
$node->safe_psql('postgres', "DELETE FROM job WHERE operation = 'disabled'");
$node->safe_psql('postgres', 'CREATE EXTENSION protea_reaper');

# SIGTERM in the middle of a backlog: the worker ends at once, and every
# "Reaper failed stale job" line it wrote is of a failure that committed
add_backlog(100000, 'sigterm');
my $offset = -s $node->logfile;
my $pid = worker_pid($node);
wait_failing('sigterm');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
set_conf("protea_reaper.timeout_seconds = '6h'");
my $new_pid = wait_for_worker($node, $pid);
isnt($new_pid, $pid, 'the worker ended on SIGTERM and was started again');
sleep(2);
my $log = slurp_file($node->logfile, $offset);
my @logged = $log =~ /Reaper failed stale job ([0-9a-f-]{36})\./g;
cmp_ok(scalar(@logged), '>', 0, 'failures were logged one by one');
cmp_ok(scalar(@logged), '<=', 2 * 100, 'at most 100 per-job lines a cycle');
my $list = join(',', map { "'$_'" } @logged);
is($node->safe_psql('postgres',
		"SELECT count(*) FROM job WHERE id IN ($list) AND status = 'FAILED' AND error_code = 'JobTimeout'"),
	scalar(@logged), 'every job a line names was failed and committed');
my %seen;
is(scalar(grep { $seen{$_}++ } @logged), 0, 'no job is logged twice');
like($log, qr/of the \d+ failed job\(s\) not logged one by one/,
	'the summary counts the failures without a line of their own');
$node->safe_psql('postgres', "DELETE FROM job WHERE operation = 'sigterm'");

# The brake: at most max_jobs_per_cycle per cycle, with a WARNING that says
# how many wait and what to do, and the status shows it
set_conf("protea_reaper.max_jobs_per_cycle = 500\nprotea_reaper.interval_seconds = 3600");
$node->poll_query_until('postgres',
	q{SELECT next_cycle_at > now() + interval '50 minutes' FROM protea_reaper_status() WHERE database = current_database()})
  or die 'interval not applied';
add_backlog(1200, 'braked');
set_conf("protea_reaper.timeout_seconds = '1h'");
$offset = -s $node->logfile;
$node->safe_psql('postgres', 'SELECT protea_reaper_wake()');
$node->wait_for_log(
	qr/WARNING:  Reaper stopped this cycle after failing 500 job\(s\) \(protea_reaper\.max_jobs_per_cycle = 500\)\.\n.*DETAIL:  700 more stale job\(s\) wait under timeout_seconds=3600, stall_seconds=300\./,
	$offset);
pass('the brake stops the cycle and says how many wait');
is(failed('braked'), '500', 'exactly max_jobs_per_cycle jobs were failed');
is($node->safe_psql('postgres', 'SELECT last_reaped, last_waiting FROM protea_reaper_status() WHERE database = current_database()'),
	'500|700', 'the status shows the brake');
$node->safe_psql('postgres', 'SELECT protea_reaper_wake()');
$node->poll_query_until('postgres', q{SELECT last_waiting = 200 FROM protea_reaper_status() WHERE database = current_database()})
  or die 'the next cycle did not go on';
is(failed('braked'), '1000', 'the next cycle goes on at the same pace');

$node->stop;
done_testing();
