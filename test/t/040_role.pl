# 040_role.pl: the reapers connect as protea_reaper.role and write PROTEA's
# tables as their owner.  A missing role is reported once, looked for again
# with growing gaps, and used as soon as it is created; a role that may not
# act as the owner, like any other failure, is a failed cycle (logged,
# rolled back), not a dead worker.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

# a long interval, so that the launcher's retries can grow (up to it)
my $node = reaper_node('role',
	conf => "protea_reaper.role = 'reaper'\nprotea_reaper.interval_seconds = 60\n");
$node->start;
install_protea($node);

# PROTEA's tables belong to the application's role, as in its deployment
$node->safe_psql('postgres', q{
	CREATE ROLE app;
	ALTER TABLE job OWNER TO app;
	ALTER TABLE job_event OWNER TO app;
});

# The role does not exist yet: no reaper starts, the status says why, and
# the launcher looks again after a gap that doubles each time (5 s, 10 s,
# 20 s ... up to interval_seconds)
my $launcher = q{SELECT cycles, state, last_error,
                        extract(epoch FROM next_cycle_at - last_cycle_start)::int
                   FROM protea_reaper_status() WHERE database IS NULL};
$node->poll_query_until('postgres',
	q{SELECT cycles >= 2 FROM protea_reaper_status() WHERE database IS NULL})
  or die 'the launcher did not look twice';
my ($cycles, $state, $error, $gap) = split /\|/, $node->safe_psql('postgres', $launcher);
is("$state|$error", 'no role|role "reaper" does not exist (protea_reaper.role)',
	'the launcher says the role is missing');
$node->poll_query_until('postgres',
	qq{SELECT cycles > $cycles FROM protea_reaper_status() WHERE database IS NULL})
  or die 'the launcher did not look again';
my (undef, undef, undef, $next_gap) = split /\|/, $node->safe_psql('postgres', $launcher);
is($next_gap, 2 * $gap, "and looks again after a gap twice the last ($gap s, then $next_gap s)");
is($node->safe_psql('postgres',
		q{SELECT state FROM protea_reaper_status() WHERE database = current_database()}),
	'', 'no reaper is started meanwhile');
is(worker_pid($node), '', 'none runs');
my $log = slurp_file($node->logfile);
my $said = () = $log =~ /protea_reaper cannot start its reapers: role "reaper" does not exist/g;
is($said, 1, 'the log says it once');
unlike($log, qr/FATAL:  role "reaper" does not exist/, 'with no FATAL from failed connections');

# Created, the role is used at once: CREATE ROLE wakes the launcher
$node->safe_psql('postgres', 'CREATE ROLE reaper LOGIN');
my $pid = wait_for_worker($node);
is($node->safe_psql('postgres', "SELECT usename FROM pg_stat_activity WHERE pid = $pid"),
	'reaper', 'the reaper runs as protea_reaper.role');
is($node->safe_psql('postgres',
		q{SELECT state || '/' || coalesce(last_error, '') FROM protea_reaper_status() WHERE database IS NULL}),
	'running/', 'once it has started, why it could not is no longer shown');
ok($node->log_contains(qr/protea_reaper found role "reaper": starting its reapers/),
	'and the log says the role was found');
$node->append_conf('postgresql.conf', "protea_reaper.interval_seconds = 1\n");
$node->reload;

# A role that is not the owner, even with every grant on the tables, may not
# write them as the owner: each cycle fails, saying how to fix it, and the
# worker stays
$node->safe_psql('postgres', q{
	GRANT SELECT, UPDATE ON job TO reaper;
	GRANT SELECT, INSERT ON job_event TO reaper;
	GRANT USAGE ON SEQUENCE job_event_id_seq TO reaper;
});
my $stale = add_job($node, 1);
$node->wait_for_log(
	qr/LOG:  Reaper cycle failed: role "reaper" cannot reap as "app", the owner of public\.job\n.*\n.*HINT:  GRANT app TO reaper, or leave protea_reaper\.role empty/);
pass('a role that may not act as the owner is told how to fix it');
ok(stays_running($node, $stale, 2), 'nothing is written');
is(worker_pid($node), $pid, 'the worker survives the refusal');

# A member of the owner role reaps
$node->safe_psql('postgres', 'GRANT app TO reaper');
ok(reaped_within($node, $stale, 5), 'as a member of the owner role it reaps');
is(worker_pid($node), $pid, 'the same worker');

$node->stop;
done_testing();
