# 075_backlog_plans.pl: a backlog that arrives after the worker made its
# plans on a nearly empty job table is reaped at the normal rate.
#
# The worker keeps its plans for its lifetime.  Made while job held a few
# rows, and with autovacuum off on job (so no ANALYZE ever tells the
# planner otherwise), they joined the candidates to job by scanning it
# whole for each: with 100,000 stale jobs every first batch ran past
# statement_timeout and nothing was ever reaped.  The worker now plans
# again once a table has more than doubled.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;
use Time::HiRes qw(time usleep);

# statement_timeout far above a good plan's batch (well under a second
# here) and far below a bad plan's (minutes)
my $node = reaper_node('backlog_plans', conf => q{
protea_reaper.timeout_seconds = '6h'
protea_reaper.batch_size = 1000
protea_reaper.max_jobs_per_cycle = 0
protea_reaper.statement_timeout = '20s'
});
$node->start;
install_protea($node);
$node->safe_psql('postgres', q{
	ALTER TABLE job SET (autovacuum_enabled = off);
	ALTER TABLE job_event SET (autovacuum_enabled = off);
	ANALYZE job; ANALYZE job_event;});
wait_for_worker($node);

# A few cycles on the empty tables: the worker's plans are made and kept
my $cycles = $node->safe_psql('postgres', 'SELECT cycles FROM protea_reaper_status() WHERE database = current_database()');
$node->poll_query_until('postgres',
	"SELECT cycles >= $cycles + 3 FROM protea_reaper_status() WHERE database = current_database()")
  or die "the worker does not cycle";

# 100,000 jobs started 7 hours ago and silent since arrive at once
my $t0 = time();
$node->safe_psql('postgres', q{
	INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags)
	SELECT gen_random_uuid(), 'insert_proteins', 'q', 'RUNNING', now() - '7 hours'::interval,
	       now() - '7 hours'::interval, '{}', '{}', '{}'
	  FROM generate_series(1, 100000)});

ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM job WHERE status = 'RUNNING'"),
	'the worker reaps a 100,000-job backlog that arrived after its plans were made');
note(sprintf('reaped in %.1f s', time() - $t0));
is($node->safe_psql('postgres',
		"SELECT count(*) FROM job_event WHERE event = 'job.timeout'"),
	'100000', 'each with one audit event');
is($node->safe_psql('postgres', 'SELECT failed_cycles FROM protea_reaper_status() WHERE database = current_database()'),
	'0', 'no cycle failed on the way');
my $log = slurp_file($node->logfile);
unlike($log, qr/canceling statement due to statement timeout/,
	'no statement ran into protea_reaper.statement_timeout');

$node->stop;
done_testing();
