# 110_logical.pl: moving PROTEA's database by logical replication.  While a
# subscription replicates job and job_event into a database, the reaper
# there writes nothing; at cutover (the subscription disabled) it reaps.
#
# A subscriber is writable and not in recovery, so a reaper there used to
# sweep the replicated rows: during the initial copy, and for the stale
# jobs the publisher sends.  Its audit events took ids from the
# subscriber's own job_event sequence, which logical replication does not
# carry; the publisher's next events with the same ids then stopped the
# apply worker with a duplicate key, and replication halted.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;
use Time::HiRes qw(time usleep);

# The publisher: PROTEA's database today, with its own (external) reaper
my $publisher = PostgreSQL::Test::Cluster->new('publisher');
$publisher->init(allows_streaming => 'logical');
$publisher->start;
install_protea($publisher, extension => 0);
$publisher->safe_psql('postgres',
	'CREATE PUBLICATION protea FOR TABLE job, job_event');

# Stale by the subscriber's thresholds (10 min): started 2 hours ago, silent
add_jobs($publisher, [ 1 .. 20 ], started => '2 hours');

# The new server, with the reaper preloaded and the extension installed
my $subscriber = reaper_node('subscriber');
$subscriber->start;
install_protea($subscriber);
wait_for_worker($subscriber);
my $connstr = $publisher->connstr . ' dbname=postgres';
$subscriber->safe_psql('postgres',
	"CREATE SUBSCRIPTION protea CONNECTION '$connstr' PUBLICATION protea");
$subscriber->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')})
  or die 'the initial copy did not finish';
# a few of the worker's cycles over the copied jobs, which look stale here
sleep(3);

# The publisher goes on: more jobs, and events of its own, an hour old (ids
# from its sequence, which the subscriber's would have taken too)
add_jobs($publisher, [ 21 .. 30 ], started => '3 hours');
$publisher->safe_psql('postgres', q{
	INSERT INTO job_event (job_id, ts, level, event, fields)
	SELECT id, now() - interval '1 hour', 'info', 'job.progress', '{}' FROM job ORDER BY id});
$publisher->wait_for_catchup('protea');
sleep(3);
$publisher->safe_psql('postgres', q{
	INSERT INTO job_event (job_id, ts, level, event, fields)
	SELECT id, now() - interval '1 hour', 'info', 'job.progress', '{}' FROM job ORDER BY id});
$publisher->wait_for_catchup('protea');

is($subscriber->safe_psql('postgres', q{SELECT count(*) FROM job WHERE status = 'RUNNING'}),
	'30', 'the subscriber fails none of the replicated stale jobs');
is($subscriber->safe_psql('postgres',
		q{SELECT count(*) FROM job_event WHERE event = 'job.timeout'}),
	'0', 'and writes no audit event');
is($subscriber->safe_psql('postgres', 'SELECT count(*) FROM job_event'),
	$publisher->safe_psql('postgres', 'SELECT count(*) FROM job_event'),
	"every event of the publisher's arrived: the subscription is healthy");
is($subscriber->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_subscription WHERE subname = 'protea' AND pid IS NOT NULL}),
	'1', 'its apply worker runs');
unlike(slurp_file($subscriber->logfile), qr/duplicate key value/,
	'no duplicate key stopped the apply worker');
is($subscriber->safe_psql('postgres', 'SELECT state FROM protea_reaper_status() WHERE database = current_database()'),
	'subscribed', "the worker's state says why it idles");
$subscriber->wait_for_log(
	qr/protea_reaper is idle: subscription "protea" replicates PROTEA's tables into database "postgres"/);
pass('and the log says it once');
like( $subscriber->safe_psql('postgres',
		q{SELECT detail FROM protea_reaper_check() WHERE "check" = 'worker'}),
	qr/idles while a subscription replicates PROTEA's tables/,
	'so does the doctor');

# By hand: refused, with the way out
my ($ret, $out, $err) = $subscriber->psql('postgres', 'SELECT protea_reaper_run_once()');
like($err, qr/protea_reaper does not write public\.job here: subscription "protea" replicates it/,
	'protea_reaper_run_once() refuses');
like($err, qr/HINT:  Reap on the publisher\. At cutover, ALTER SUBSCRIPTION protea DISABLE/,
	'with the cutover in its hint');
($ret, $out, $err) = $subscriber->psql('postgres',
	q{SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000001', 'by hand')});
like($err, qr/protea_reaper does not write public\.job here/, 'so does protea_reaper_fail_job()');

# Cutover: the subscription is disabled, and the reaper starts here
$subscriber->safe_psql('postgres', 'ALTER SUBSCRIPTION protea DISABLE');
ok( $subscriber->poll_query_until('postgres',
		q{SELECT count(*) = 30 FROM job WHERE status = 'FAILED' AND error_code = 'JobTimeout'}),
	'after cutover the subscriber reaps the stale jobs');
is($subscriber->safe_psql('postgres',
		q{SELECT count(*) FROM job_event WHERE event = 'job.timeout'}),
	'30', 'one audit event each');

$subscriber->stop;
$publisher->stop;
done_testing();
