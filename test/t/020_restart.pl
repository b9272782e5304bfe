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
is($node->safe_psql('postgres', 'SELECT state, pid IS NULL FROM protea_reaper_status()'),
	'restarting|t', 'until the postmaster starts it again, the status says restarting');
my $pid2 = wait_for_worker($node, $pid);
isnt($pid2, $pid, 'a new worker is started after SIGTERM');
ok(reaped_within($node, add_job($node, 2), 5), 'the new worker reaps');
is($node->safe_psql('postgres', 'SELECT pid, total_reaped FROM protea_reaper_status()'),
	"$pid2|2", 'status shows the new pid and keeps counting across worker restarts');

# kill -9: the postmaster treats it as a crash and restarts everything
$offset = -s $node->logfile;
kill 'KILL', $pid2;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not recover';
my $pid3 = wait_for_worker($node, $pid2);
ok($pid3, 'a worker runs again after kill -9');
ok(reaped_within($node, add_job($node, 3), 5), 'and it reaps');
is($node->safe_psql('postgres', 'SELECT pid = ' . $pid3 . ', cycles > 0 FROM protea_reaper_status()'),
	't|t', 'status describes the worker started after the crash');

# While the worker connects, the status says starting: hold its database's
# lock (an uncommitted ALTER DATABASE ... RENAME) while it is started again
$node->safe_psql('postgres', 'CREATE DATABASE protea');
$node->append_conf('postgresql.conf', "protea_reaper.database = 'protea'\n");
$node->restart;
my $pid4 = wait_for_worker($node);
my $renamer = $node->background_psql('postgres');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid4)");
$node->poll_query_until('postgres', "SELECT state = 'restarting' FROM protea_reaper_status()")
  or die 'the worker did not exit';
$renamer->query_safe('BEGIN; ALTER DATABASE protea RENAME TO protea_renamed;');
$node->poll_query_until('postgres', "SELECT state = 'starting' FROM protea_reaper_status()")
  or die 'the status never said starting';
pass('while the worker connects, the status says starting');
$renamer->query_safe('ROLLBACK');
$renamer->quit;
$node->poll_query_until('postgres',
	q{SELECT state IN ('no extension', 'idle', 'sweeping') FROM protea_reaper_status()})
  or die 'the worker did not connect';
pass('and it connects once the lock is gone');

# A fast shutdown ends the worker promptly
$offset = -s $node->logfile;
my $t0 = time();
$node->stop('fast');
cmp_ok(time() - $t0, '<', 20, 'fast shutdown is not held up by the worker');

done_testing();
