# 130_databases.pl: every database that installs the extension is reaped,
# with no setting, each with its own ALTER DATABASE ... SET thresholds; and
# the reapers never stand in a DBA's way: DROP DATABASE (mid-sweep, or with
# FORCE by a non-superuser owner), ALTER DATABASE ... RENAME and ... SET
# TABLESPACE, and CREATE DATABASE ... TEMPLATE succeed at once, and reaping
# resumes by itself.  Template databases are never connected to; a user who
# may not run such a command cannot use it to stop a reaper; too few worker
# slots are reported once, with the number needed.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;
use Time::HiRes qw(time);

# Every database: protea_reaper.database is empty
my $node = reaper_node('databases', conf => "protea_reaper.database = ''\n");
$node->start;
# the status is read in postgres, which has the extension (and a reaper) too
install_protea($node);

# reaper_pid($db): the pid of that database's reaper, or ''
sub reaper_pid
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT pid FROM pg_stat_activity
		    WHERE backend_type = 'protea_reaper' AND datname = '$db'});
}

# wait_reaping($db): until that database's reaper has finished a cycle
sub wait_reaping
{
	my ($db) = @_;
	$node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM protea_reaper_status()
		    WHERE database = '$db' AND pid IS NOT NULL AND cycles > 0})
	  or die "no reaper in $db";
	return reaper_pid($db);
}

# timed_psql($db, $sql): seconds the statement took; dies if it fails
sub timed_psql
{
	my ($db, $sql, %o) = @_;
	my $t0 = time();
	$node->safe_psql($db, $sql, %o);
	return time() - $t0;
}

for my $db (qw(alpha beta))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	install_protea($node, db => $db);
}

# ---- two databases, reaped independently, each with its own settings ----
$node->safe_psql('postgres', 'CREATE DATABASE bare');
wait_reaping($_) for qw(alpha beta postgres);
is($node->safe_psql('postgres',
		q{SELECT string_agg(coalesce(database, '(launcher) ' || state), ', ' ORDER BY database NULLS FIRST)
		    FROM protea_reaper_status()}),
	'(launcher) running, alpha, beta, postgres',
	'with protea_reaper.database empty, every database with the extension has a reaper, and the launcher a row');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE datname IN ('bare', 'template1', 'template0')}),
	'0', 'a database without the extension, or a template, has no reaper');

$node->safe_psql('postgres', q{ALTER DATABASE alpha SET protea_reaper.stall_seconds = '45min'});
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT stall_seconds = 2700 FROM protea_reaper_status() WHERE database = 'alpha' AND pid IS NOT NULL})
  or die 'alpha did not take its own stall_seconds';
is($node->safe_psql('postgres',
		q{SELECT stall_seconds FROM protea_reaper_status() WHERE database = 'beta'}),
	'300', 'ALTER DATABASE ... SET and a reload apply to that database only');
ok($node->log_contains(qr/protea_reaper restarts in database "alpha" to apply its new ALTER DATABASE/),
	'the reaper says it restarts to read its database settings');

# a job silent for 40 min: alive in alpha (45 min), stale in beta (5 min)
my $a1 = add_job($node, 1, started => '1 hour', event => '40 min', db => 'alpha');
my $b1 = add_job($node, 1, started => '1 hour', event => '40 min', db => 'beta');
ok(reaped_within($node, $b1, 15, 'beta'), 'beta fails its silent job under its 5 min stall_seconds');
ok(stays_running($node, $a1, 3, 'alpha'), 'alpha keeps it under its own 45 min');
$node->safe_psql('postgres', q{ALTER DATABASE alpha RESET protea_reaper.stall_seconds});
$node->reload;
ok(reaped_within($node, $a1, 15, 'alpha'), 'RESET and a reload: alpha fails it too');

# ---- CREATE EXTENSION in a third database: reaped within an interval ----
$node->safe_psql('postgres', 'CREATE DATABASE gamma');
install_protea($node, db => 'gamma', extension => 0);
my $g1 = add_job($node, 1, started => '1 hour', db => 'gamma');
ok(stays_running($node, $g1, 2, 'gamma'), 'without the extension, gamma is not reaped');
is(reaper_pid('gamma'), '', '... and has no reaper');
$node->safe_psql('gamma', 'CREATE EXTENSION protea_reaper');
ok(reaped_within($node, $g1, 5, 'gamma'),
	'CREATE EXTENSION: the job is failed within seconds, with no restart');

# ---- DROP DATABASE while its reaper is mid-sweep ----
$node->safe_psql('postgres', 'CREATE DATABASE dropme');
install_protea($node, db => 'dropme');
$node->safe_psql('dropme', q{
	CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql
	SET search_path = pg_catalog AS $$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$;
	CREATE TRIGGER slow BEFORE UPDATE ON job FOR EACH ROW EXECUTE FUNCTION public.slow();
});
add_job($node, 1, started => '1 hour', db => 'dropme');
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity
	   WHERE backend_type = 'protea_reaper' AND datname = 'dropme' AND wait_event = 'PgSleep'})
  or die 'the reaper of dropme is not mid-sweep';
my $took = timed_psql('postgres', 'DROP DATABASE dropme');
cmp_ok($took, '<', 5,
	'DROP DATABASE (no FORCE) succeeds while the reaper is mid-sweep, without the server\'s 5 s wait for other sessions');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM protea_reaper_status() WHERE database = 'dropme'}),
	'0', 'the dropped database leaves the status');

# ---- RENAME, SET TABLESPACE, and a template copy; reaping resumes ----
my $alpha_pid = wait_reaping('alpha');
$node->safe_psql('postgres', 'ALTER DATABASE alpha RENAME TO alpha2');
my $a2 = add_job($node, 2, started => '1 hour', db => 'alpha2');
ok(reaped_within($node, $a2, 10, 'alpha2'), 'after ALTER DATABASE ... RENAME, reaping resumes by itself');
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM protea_reaper_status() WHERE database = 'alpha2'})
  or die 'the status does not show the new name';
pass('the status shows the new name');

my $ts_dir = PostgreSQL::Test::Utils::tempdir_short();
$node->safe_psql('postgres', "CREATE TABLESPACE elsewhere LOCATION '$ts_dir'");
timed_psql('postgres', 'ALTER DATABASE beta SET TABLESPACE elsewhere');
pass('ALTER DATABASE ... SET TABLESPACE succeeds');
my $b2 = add_job($node, 2, started => '1 hour', db => 'beta');
ok(reaped_within($node, $b2, 10, 'beta'), 'and beta is reaped again');

wait_reaping('beta');
timed_psql('postgres', 'CREATE DATABASE beta_copy TEMPLATE beta');
pass('CREATE DATABASE ... TEMPLATE a reaped database succeeds');
my $c3 = add_job($node, 3, started => '1 hour', db => 'beta_copy');
my $b3 = add_job($node, 3, started => '1 hour', db => 'beta');
ok(reaped_within($node, $c3, 10, 'beta_copy'), 'the copy, which has the extension, is reaped');
ok(reaped_within($node, $b3, 10, 'beta'), 'and so is the template it was copied from');

# ---- a user who may not run the command stops nothing ----
$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN');
my $beta_pid = wait_reaping('beta');
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE beta', extra_params => [ '-U', 'mallory' ]);
like($err, qr/must be owner of database beta/, 'DROP DATABASE by a non-owner fails');
is(reaper_pid('beta'), $beta_pid, '... and did not stop the reaper there');

# ---- DROP DATABASE ... WITH (FORCE) by a non-superuser owner ----
$node->safe_psql('postgres', 'CREATE ROLE owner LOGIN CREATEDB');
$node->safe_psql('postgres', 'CREATE DATABASE owned OWNER owner');
install_protea($node, db => 'owned');
wait_reaping('owned');
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE owned WITH (FORCE)',
	extra_params => [ '-U', 'owner' ]);
is($ret, 0, 'DROP DATABASE ... WITH (FORCE) succeeds for a non-superuser owner');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'owned'}),
	'0', '... and the database is gone');

# ---- a database without the extension: DROP is never delayed ----
my $slowest = 0;
for my $i (1 .. 5)
{
	$node->safe_psql('postgres', "CREATE DATABASE plain$i");
	my $t = timed_psql('postgres', "DROP DATABASE plain$i");
	$slowest = $t if $t > $slowest;
}
cmp_ok($slowest, '<', 5,
	'creating and at once dropping a database without the extension never waits for a reaper');

# ---- a template database is never connected to ----
$node->safe_psql('postgres', 'CREATE DATABASE tmpl');
install_protea($node, db => 'tmpl');
wait_reaping('tmpl');
$node->safe_psql('postgres', 'ALTER DATABASE tmpl IS_TEMPLATE true');
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'tmpl'})
  or die 'the reaper stayed in a template database';
pass('made a template, the database loses its reaper');
sleep(3);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'tmpl'}),
	'0', 'and nobody connects to it again');
timed_psql('postgres', 'CREATE DATABASE from_tmpl TEMPLATE tmpl');
my $t1 = add_job($node, 1, started => '1 hour', db => 'from_tmpl');
ok(reaped_within($node, $t1, 10, 'from_tmpl'), 'a database made from it is reaped');

$node->stop;

# ---- too few worker slots: said once, with the number needed ----
my $small = reaper_node('slots', conf => "protea_reaper.database = ''\nmax_worker_processes = 3\n");
$small->start;
install_protea($small);
for my $db (qw(one two three))
{
	$small->safe_psql('postgres', "CREATE DATABASE $db");
	install_protea($small, db => $db);
}
$small->poll_query_until('postgres',
	q{SELECT last_error LIKE 'no background worker slot is free%' FROM protea_reaper_status()
	   WHERE database IS NULL})
  or die 'the launcher does not say it lacks worker slots';
like($small->safe_psql('postgres',
		q{SELECT last_error FROM protea_reaper_status() WHERE database IS NULL}),
	qr/max_worker_processes = 3, and protea_reaper needs \d+/,
	"the launcher's row says why databases have no reaper, with the setting and the number needed");
sleep(4);
my $log = slurp_file($small->logfile);
my $warnings = () = $log =~ /WARNING:  protea_reaper cannot start the reaper of database/g;
is($warnings, 1, 'and the log says it once, not at every retry');
$small->stop;

done_testing();
