# 040_role.pl: the worker connects as protea_reaper.role, and a permission
# it lacks is a failed cycle (logged, rolled back), not a dead worker.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

my $node = reaper_node('role', conf => "protea_reaper.role = 'reaper'\n");
$node->start;
install_protea($node);

# The role does not exist yet: the worker exits with FATAL and is retried
$node->wait_for_log(qr/FATAL:  role "reaper" does not exist/);
$node->safe_psql('postgres', 'CREATE ROLE reaper LOGIN');
my $pid = wait_for_worker($node);
is($node->safe_psql('postgres', "SELECT usename FROM pg_stat_activity WHERE pid = $pid"),
	'reaper', 'the worker runs as protea_reaper.role');

# Without rights on PROTEA's tables each cycle fails, and the worker stays
my $stale = add_job($node, 1);
$node->wait_for_log(qr/LOG:  Reaper cycle failed: permission denied for table job/);
ok(stays_running($node, $stale, 2), 'nothing is written without the rights');
is(worker_pid($node), $pid, 'the worker survives permission errors');

# The rights the README lists are enough
$node->safe_psql('postgres', q{
	GRANT SELECT, UPDATE ON job TO reaper;
	GRANT SELECT, INSERT ON job_event TO reaper;
	GRANT USAGE ON SEQUENCE job_event_id_seq TO reaper;
});
ok(reaped_within($node, $stale, 5), 'with SELECT/UPDATE on job and SELECT/INSERT on job_event it reaps');
is(worker_pid($node), $pid, 'the same worker');

$node->stop;
done_testing();
