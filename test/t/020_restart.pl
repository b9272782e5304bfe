# 020_restart.pl: a worker that is killed comes back and reaps.
#
# SIGTERM ends the worker promptly (exit 1) and the postmaster starts it
# again after bgw_restart_time; kill -9 of the worker is a crash, the
# postmaster reinitialises and the worker is registered again.  The status
# follows the new worker each time.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

# The test framework turns restart_after_crash off; production has it on
my $node = reaper_node('restart', conf => "restart_after_crash = on\n");
$node->start;
install_protea($node);

my $pid = wait_for_worker($node);
ok(reaped_within($node, add_job($node, 1), 5), 'first worker reaps');

# SIGTERM, as pg_terminate_backend() sends it
my $offset = -s $node->logfile;
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"), 't',
	'pg_terminate_backend() reaches the worker');
$node->wait_for_log(qr/background worker "protea_reaper" \(PID $pid\) exited with exit code 1/,
	$offset);
is($node->safe_psql('postgres', 'SELECT state, pid IS NULL FROM protea_reaper_status() WHERE database = current_database()'),
	'restarting|t', 'until the launcher starts it again, the status says restarting');
my $pid2 = wait_for_worker($node, $pid);
isnt($pid2, $pid, 'a new worker is started after SIGTERM');
ok(reaped_within($node, add_job($node, 2), 5), 'the new worker reaps');
is($node->safe_psql('postgres', 'SELECT pid, total_reaped FROM protea_reaper_status() WHERE database = current_database()'),
	"$pid2|2", 'status shows the new pid and keeps counting across worker restarts');

# kill -9: the postmaster treats it as a crash and restarts everything
$offset = -s $node->logfile;
kill 'KILL', $pid2;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not recover';
my $pid3 = wait_for_worker($node, $pid2);
ok($pid3, 'a worker runs again after kill -9');
ok(reaped_within($node, add_job($node, 3), 5), 'and it reaps');
is($node->safe_psql('postgres', 'SELECT pid = ' . $pid3 . ', cycles > 0 FROM protea_reaper_status() WHERE database = current_database()'),
	't|t', 'status describes the worker started after the crash');

# The launcher killed: the postmaster starts it again, and the new one
# stops the reaper the old one started and starts its own
my $launcher = $node->safe_psql('postgres',
	q{SELECT pid FROM protea_reaper_status() WHERE database IS NULL});
$offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher)");
$node->wait_for_log(qr/protea_reaper launcher stops the reaper with pid $pid3, which a previous launcher started/,
	$offset);
my $pid4 = wait_for_worker($node, $pid3);
isnt($node->safe_psql('postgres', q{SELECT pid FROM protea_reaper_status() WHERE database IS NULL}),
	$launcher, 'a killed launcher is started again');
ok(reaped_within($node, add_job($node, 4), 5), 'with one reaper of its own, which reaps');

# While a DBA command holds the database (an uncommitted ALTER DATABASE ...
# RENAME), its reaper is paused; when the command ends it runs again
$node->safe_psql('postgres', 'CREATE DATABASE protea');
install_protea($node, db => 'protea');
$node->append_conf('postgresql.conf', "protea_reaper.database = 'postgres, protea'\n");
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT pid IS NOT NULL FROM protea_reaper_status() WHERE database = 'protea'})
  or die 'no reaper in protea';
my $renamer = $node->background_psql('postgres');
$renamer->query_safe('BEGIN; ALTER DATABASE protea RENAME TO protea_renamed;');
is($node->safe_psql('postgres',
		q{SELECT state || '/' || (pid IS NULL)::int FROM protea_reaper_status() WHERE database = 'protea'}),
	'paused/1', 'while the command runs, the reaper of that database is paused');
$renamer->query_safe('ROLLBACK');
$renamer->quit;
$node->poll_query_until('postgres',
	q{SELECT state IN ('idle', 'sweeping') FROM protea_reaper_status() WHERE database = 'protea'})
  or die 'the reaper did not come back';
pass('and it runs again once the command has ended');

# A fast shutdown ends the worker promptly
$offset = -s $node->logfile;
my $t0 = time();
$node->stop('fast');
cmp_ok(time() - $t0, '<', 20, 'fast shutdown is not held up by the worker');

done_testing();
