# 030_standby.pl: nothing runs on a standby (the launcher starts once
# recovery has finished), and reaping starts once the standby is promoted,
# without a restart.
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

is($standby->safe_psql('postgres', 'SELECT state FROM protea_reaper_status() WHERE database IS NULL'),
	'in recovery', 'the status says the launcher waits for promotion');
ok(stays_running($standby, $stale, 3), 'the standby never reaps');
is(worker_pid($standby), '', 'no reaper runs on it');

$standby->promote;
ok(reaped_within($standby, $stale, 10), 'after promotion a reaper starts and reaps, without a restart');
is($standby->safe_psql('postgres', 'SELECT state FROM protea_reaper_status() WHERE database IS NULL'),
	'running', 'the launcher runs');
is(job_state($primary, $stale), 'RUNNING//0', 'the old primary was never written by a reaper');

$standby->stop;
$primary->stop;
done_testing();
