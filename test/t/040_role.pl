# 040_role.pl: the worker connects as protea_reaper.role and writes PROTEA's
# tables as their owner; a role that may not act as that owner, like any
# other failure, is a failed cycle (logged, rolled back), not a dead worker.
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

# PROTEA's tables belong to the application's role, as in its deployment
$node->safe_psql('postgres', q{
	CREATE ROLE app;
	ALTER TABLE job OWNER TO app;
	ALTER TABLE job_event OWNER TO app;
});

# The role does not exist yet: the worker exits with FATAL and is retried,
# and the status says why it has not started
$node->wait_for_log(qr/FATAL:  role "reaper" does not exist/);
$node->poll_query_until('postgres', q{SELECT state = 'not started' FROM protea_reaper_status()})
  or die 'status does not say not started';
like($node->safe_psql('postgres', 'SELECT pid IS NULL, last_error FROM protea_reaper_status()'),
	qr/^t\|could not connect to database "postgres" as role "reaper": does it exist\?/,
	'the status says the worker has not started, and why');
$node->safe_psql('postgres', 'CREATE ROLE reaper LOGIN');
my $pid = wait_for_worker($node);
is($node->safe_psql('postgres', "SELECT usename FROM pg_stat_activity WHERE pid = $pid"),
	'reaper', 'the worker runs as protea_reaper.role');
is($node->safe_psql('postgres',
		q{SELECT coalesce(last_error, '') LIKE 'could not connect%' FROM protea_reaper_status()}),
	'f', 'once it has started, why it could not is no longer shown');

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
