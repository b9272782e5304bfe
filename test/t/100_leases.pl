# 100_leases.pl: PROTEA's current workers, as its reaper sees them, with
# PROTEA's defaults scaled down (a 6 s lease renewed every 2 s instead of
# 120 s every 30 s).
#
# A worker process heartbeats its job the way PROTEA's does (UPDATE ... SET
# leased_until = now() + lease WHERE id = ... AND status = 'RUNNING').
# While it heartbeats, its job is never touched, though it is far past
# timeout_seconds and writes no event.  SIGKILLed, it stops: the job is
# failed (lease_expired) within lease + lease_grace_seconds + interval of
# its last heartbeat.  With a re-queue budget the job goes back to QUEUED
# instead, and a listener hears the action, the queue and the id, to
# publish the job again with PROTEA's publish_job.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $lease = 6;
my $heartbeat = 2;
my $grace = 1;
my $interval = 1;

my $node = reaper_node('leases', conf => qq{
protea_reaper.lease_grace_seconds = $grace
protea_reaper.interval_seconds = $interval
});
$node->start;
install_protea($node);
wait_for_worker($node);

# worker($id): a process that heartbeats job $id every $heartbeat seconds,
# as PROTEA's worker does, until it is killed
sub worker
{
	my ($id) = @_;
	my $file = PostgreSQL::Test::Utils::tempdir() . '/heartbeat.sql';
	append_to_file($file,
		"UPDATE job SET leased_until = now() + interval '$lease seconds'"
		  . " WHERE id = '$id' AND status = 'RUNNING';\n");
	my $psql = join(' ', $node->installed_command('psql'),
		'-X', '-q', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-f', $file);
	return IPC::Run::start([ 'bash', '-c', "while true; do $psql || exit 1; sleep $heartbeat; done" ]);
}

# lease_end($id): when job $id's lease runs out (epoch)
sub lease_end
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT extract(epoch FROM leased_until) FROM job WHERE id = '$id'");
}

# A job claimed 2 hours ago (far past the 10 min timeout), with no event:
# its worker heartbeats it
my $alive = add_job($node, 1, started => '2 hours', lease => "$lease seconds");
my $w1 = worker($alive);
ok(stays_running($node, $alive, 4 * $heartbeat),
	'a heartbeating job far past timeout_seconds, with no event, is never touched');
is($node->safe_psql('postgres',
		"SELECT verdict FROM protea_reaper_running_jobs() WHERE job_id = '$alive'"),
	'leased', 'its verdict is leased');

# The worker is SIGKILLed: the job is failed once its lease lapsed
$w1->signal('KILL');
$w1->finish;
my $end = lease_end($alive);
ok( $node->poll_query_until('postgres',
		"SELECT status = 'FAILED' AND error_code = 'lease_expired' FROM job WHERE id = '$alive'"),
	'the job of a killed worker is failed, error_code lease_expired');
my $failed_at = $node->safe_psql('postgres',
	"SELECT extract(epoch FROM finished_at) FROM job WHERE id = '$alive'");
my $after_heartbeat = $failed_at - ($end - $lease);
note(sprintf('failed %.1f s after its last heartbeat (lease %d s, grace %d s, interval %d s)',
		$after_heartbeat, $lease, $grace, $interval));
cmp_ok($after_heartbeat, '<=', $lease + $grace + $interval + 3,
	'within lease + lease_grace_seconds + interval (+3 s for the sweep itself) of its last heartbeat');
cmp_ok($failed_at, '>=', $end + $grace,
	'and not before its lease ran out, plus the grace');
is( $node->safe_psql('postgres',
		"SELECT level || ' ' || event || ' ' || (fields->>'reaper') FROM job_event WHERE job_id = '$alive' AND event LIKE 'job.lease%'"),
	'error job.lease_expired protea_reaper',
	"with PROTEA's event, marked as the extension's");

# With a budget, the job goes back to its queue and a listener hears it
$node->append_conf('postgresql.conf', "protea_reaper.max_lease_requeues = 1\n");
$node->reload;
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN protea_reaper;');
my $requeued = add_job($node, 2, started => '3 minutes', lease => "$lease seconds");
my $w2 = worker($requeued);
sleep($heartbeat);
$w2->signal('KILL');
$w2->finish;
ok( $node->poll_query_until('postgres',
		"SELECT status = 'QUEUED' AND started_at IS NULL AND leased_until IS NULL FROM job WHERE id = '$requeued'"),
	'with max_lease_requeues = 1 the dead job goes back to QUEUED, without start or lease');
my $output = '';
my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
until ($output =~ /"action":"requeue"/)
{
	die 'the listener heard no re-queue' if time() > $deadline;
	usleep(100_000);
	$output .= $listener->query_safe('SELECT 1') . "\n";
}
my ($raw) = $output =~
  /^Asynchronous notification "protea_reaper" with payload "(.*"action":"requeue".*)" received/m;
my $payload = JSON::PP->new->decode($raw);
is_deeply(
	[ $payload->{action}, $payload->{count}, $payload->{jobs} ],
	[ 'requeue', 1, [ { id => $requeued, queue_name => 'q' } ] ],
	'a listener hears the action, the queue and the id, to publish the job again');
$listener->quit;
is( $node->safe_psql('postgres',
		"SELECT level || ' ' || event || ' ' || message || ' ' || (fields->>'prior_requeues') || '/' || (fields->>'max_requeues') FROM job_event WHERE job_id = '$requeued'"),
	'warning job.lease_expired_requeue Lease expired; re-enqueued attempt 1/1 0/1',
	"PROTEA's re-queue event, with its fields");

$node->stop;
done_testing();
