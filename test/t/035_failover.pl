# 035_failover.pl: a failover, as Patroni or pg_promote does it.  A
# primary and a streaming standby, both with the reaper preloaded and
# enabled (the same configuration on both).  The primary is lost while a
# job's worker is lost with it; the promoted standby fails that job once
# its lease lapses, with one audit event and no restart of its reaper; the
# old primary, rewound with pg_rewind, rejoins as a standby and its reaper
# stays idle.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;
use File::Copy qw(copy move);
use Time::HiRes qw(time);

my $conf = "protea_reaper.lease_grace_seconds = 1\nwal_log_hints = on\nwal_keep_size = 64MB\n";
my $primary = reaper_node('primary', init => { allows_streaming => 1 }, conf => $conf);
$primary->start;
install_protea($primary);
wait_for_worker($primary);

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
is(worker_pid($standby), '', 'no reaper runs on the standby');

# A job whose worker heartbeats it for 8 s more; the primary and that
# worker are lost together
my $job = add_job($primary, 1, started => '1 minute', lease => '8 seconds');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT state FROM protea_reaper_status() WHERE database IS NULL'),
	'in recovery', "the standby's launcher waits for promotion");
$primary->stop('immediate');

$standby->promote;
my $t0 = time();
ok( $standby->poll_query_until('postgres',
		"SELECT status || '/' || error_code FROM job WHERE id = '$job'", 'FAILED/lease_expired'),
	"the promoted standby fails the lost worker's job once its lease lapses");
note(sprintf('failed %.1f s after promotion (lease 8 s left at the loss, grace 1 s, interval 1 s)',
		time() - $t0));
is($standby->safe_psql('postgres',
		"SELECT count(*) FROM job_event WHERE job_id = '$job' AND event = 'job.lease_expired'"),
	'1', 'with one audit event');
ok(worker_pid($standby), 'by a reaper the promotion started, without a restart');
is($standby->safe_psql('postgres', 'SELECT state FROM protea_reaper_status() WHERE database = current_database()'),
	'idle', 'which now sweeps');

# The old primary rejoins as a standby of the new one
my $source = $standby->connstr('postgres');
# pg_rewind copies the source's configuration (its port among it): keep ours
my $conf_file = $primary->data_dir . '/postgresql.conf';
my $kept = PostgreSQL::Test::Utils::tempdir() . '/postgresql.conf';
copy($conf_file, $kept) or die "copy: $!";
command_ok(
	[
		'pg_rewind', '--target-pgdata', $primary->data_dir,
		'--source-server', $source
	],
	'pg_rewind brings the old primary back in line');
move($kept, $conf_file) or die "move: $!";
$primary->enable_streaming($standby);
$primary->start;
$standby->wait_for_catchup($primary);
is($primary->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the old primary is a standby now');
is($primary->safe_psql('postgres', 'SELECT state FROM protea_reaper_status() WHERE database IS NULL'),
	'in recovery', 'its launcher waits in recovery');
is(worker_pid($primary), '', 'and no reaper runs there');
is($primary->safe_psql('postgres', "SELECT status || '/' || error_code FROM job WHERE id = '$job'"),
	'FAILED/lease_expired', 'and it sees the failure the new primary wrote');
is($primary->safe_psql('postgres',
		"SELECT count(*) FROM job_event WHERE job_id = '$job' AND event LIKE 'job.%'"),
	'1', 'once');

$primary->stop;
$standby->stop;
done_testing();
