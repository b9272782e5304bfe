# 030_standby.pl: the worker never writes on a standby, and starts reaping
# once the standby is promoted, without a restart.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

# The primary's worker is disabled so that the stale job survives to be
# replicated; the standby's is enabled, yet must wait for promotion.
my $primary = reaper_node('primary',
	init => { allows_streaming => 1 },
	conf => "protea_reaper.enabled = off\n");
$primary->start;
install_protea($primary);
my $stale = add_job($primary, 1);

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->append_conf('postgresql.conf', "protea_reaper.enabled = on\n");
$standby->start;
$primary->wait_for_catchup($standby);

my $pid = wait_for_worker($standby);
ok($pid, 'the worker runs on the standby');
$standby->wait_for_log(qr/protea_reaper is idle while the server is in recovery/);
is($standby->safe_psql('postgres', 'SELECT state FROM protea_reaper_status()'),
	'in recovery', 'status says it is waiting for promotion');
ok(stays_running($standby, $stale, 3), 'the standby never reaps');

$standby->promote;
ok(reaped_within($standby, $stale, 10), 'after promotion the same worker reaps');
is(worker_pid($standby), $pid, 'without a restart');
is(job_state($primary, $stale), 'RUNNING//0', 'the old primary was never written by a reaper');

$standby->stop;
$primary->stop;
done_testing();
