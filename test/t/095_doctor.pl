# 095_doctor.pl: protea_reaper_check() beside a real worker, and the policy
# table through pg_dump.
#
# Operators run the doctor when something looks wrong, so they rely on its
# rows about the worker being right: healthy while it sweeps; not ok, with
# the statement that fixes it as hint, while protea_reaper.enabled is off;
# and, in a database the worker does not sweep, a database row that says
# so.  (pg_regress runs the doctor without a worker.)  And they rely on
# pg_dump carrying the rows of protea_reaper_policy: restored into a fresh
# database, whose CREATE EXTENSION the dump itself runs, the operations
# keep their thresholds.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

my $node = reaper_node('doctor');
$node->start;
install_protea($node);
my $pid = wait_for_worker($node);

# row($node, $db, $check): "ok|detail|hint" of the doctor's row $check
sub row
{
	my ($node, $db, $check) = @_;
	return $node->safe_psql($db,
		qq{SELECT ok, detail, hint FROM protea_reaper_check() WHERE "check" = '$check'});
}

# wait_row($node, $db, $check, $ok): until that row's ok is $ok ('t', 'f')
sub wait_row
{
	my ($node, $db, $check, $ok) = @_;
	$node->poll_query_until($db,
		qq{SELECT ok FROM protea_reaper_check() WHERE "check" = '$check'}, $ok)
	  or die "the doctor's $check row did not become ok = $ok";
	return;
}

wait_row($node, 'postgres', 'worker', 't');
is( $node->safe_psql('postgres',
		q{SELECT string_agg("check", ', ') FROM protea_reaper_check()}),
	'preloaded, worker, database, tables, event index, started_at index, triggers, row security, thresholds, '
	  . 'overdue jobs, clock skew, false alarms, another reaper, unguarded finish',
	'the doctor has a row per check, in order');
is( row($node, 'postgres', 'preloaded'),
	't|protea_reaper is in shared_preload_libraries.|',
	'preloaded: ok');
like(
	row($node, 'postgres', 'worker'),
	qr/^t\|The worker \(pid $pid\) is (idle|sweeping); its last cycle started at [^|]+ and failed 0 job\(s\)\.\|$/,
	'worker: ok, naming its pid and last cycle');
is( row($node, 'postgres', 'database'),
	't|This database, "postgres", has a reaper of its own (protea_reaper.database names it).|',
	'database: ok');

# Disabled: the worker idles, and the doctor says how to turn it on again
$node->append_conf('postgresql.conf', "protea_reaper.enabled = off\n");
$node->reload;
wait_row($node, 'postgres', 'worker', 'f');
my ($ok, $detail, $hint) = split /\|/, row($node, 'postgres', 'worker');
is($ok, 'f', 'disabled, the worker row is not ok');
is($detail, "The worker (pid $pid) idles: protea_reaper.enabled is off.",
	'its detail says the worker idles because enabled is off');
like($hint, qr/^ALTER SYSTEM SET protea_reaper\.enabled = on;/, 'its hint turns enabled on');
like(row($node, 'postgres', 'preloaded'), qr/^t\|/, 'preloaded is still ok');
like(row($node, 'postgres', 'database'), qr/^t\|/, 'database is still ok');

# The hint is the fix, as it stands (ALTER SYSTEM overrides the file)
$node->safe_psql('postgres', $hint);
wait_row($node, 'postgres', 'worker', 't');
pass('running the hint makes the worker row ok again');

# A worker that sweeps another database: there, all is well; here, jobs
# are not reaped, and the doctor says so
my $elsewhere = reaper_node('elsewhere', conf => "protea_reaper.database = 'protea'\n");
$elsewhere->start;
install_protea($elsewhere);
$elsewhere->safe_psql('postgres', 'CREATE DATABASE protea');
install_protea($elsewhere, db => 'protea');
wait_row($elsewhere, 'protea', 'worker', 't');
is( row($elsewhere, 'protea', 'database'),
	't|This database, "protea", has a reaper of its own (protea_reaper.database names it).|',
	'in a database the list names, the database row is ok');
($ok, $detail, $hint) = split /\|/, row($elsewhere, 'postgres', 'database');
is($ok, 'f', 'in another database, the database row is not ok');
is( $detail,
	q{protea_reaper.database = 'protea' does not name this database, "postgres": jobs here are not reaped.},
	'its detail names the setting and the database');
like($hint, qr/^ALTER SYSTEM SET protea_reaper\.database = 'protea, postgres'; SELECT pg_reload_conf\(\);/,
	'its hint adds this database to protea_reaper.database');
like(row($elsewhere, 'postgres', 'worker'), qr/^f\|No reaper runs in this database: protea_reaper.database \(protea\) does not name it\.\|ALTER SYSTEM/,
	'the worker row says there is no reaper here, and why');
$elsewhere->safe_psql('postgres', $hint);
wait_row($elsewhere, 'postgres', 'worker', 't');
pass('running the hint gives this database a reaper, without a restart');
$elsewhere->stop;

# pg_dump: the policy rows come back in a fresh database, in the table that
# the dump's CREATE EXTENSION makes, and apply there
my $policy = q{
	INSERT INTO protea_reaper_policy
	            (operation, timeout_seconds, stall_seconds, max_runtime_seconds, exempt)
	     VALUES ('compute_embeddings', 86400, 7200, 172800, false),
	            ('predict_go_terms', NULL, NULL, NULL, true),
	            ('insert_proteins', NULL, 120, NULL, false)};
my $rows = q{SELECT operation, timeout_seconds, stall_seconds, max_runtime_seconds, exempt
	           FROM protea_reaper_policy ORDER BY operation};
my $made_by_extension = q{
	SELECT e.extversion || ' ' || count(d.objid)
	  FROM pg_extension e
	  LEFT JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
	                       AND d.classid = 'pg_class'::regclass
	                       AND d.objid = 'protea_reaper_policy'::regclass AND d.deptype = 'e'
	 WHERE e.extname = 'protea_reaper'
	 GROUP BY e.extversion};
my $dir = PostgreSQL::Test::Utils::tempdir;
my $default_version = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'protea_reaper'});

# custom format, pg_restore
$node->safe_psql('postgres', 'CREATE DATABASE src');
install_protea($node, db => 'src');
$node->safe_psql('src', $policy);
$node->command_ok([ 'pg_dump', '-Fc', '-f', "$dir/src.dump", '-d', 'src' ],
	'pg_dump of a database with policy rows');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', 'restored', "$dir/src.dump" ],
	'pg_restore into a fresh database, without errors');
is($node->safe_psql('restored', $made_by_extension), "$default_version 1",
	'the dump created the extension, and the policy table with it');
my $expected = $node->safe_psql('src', $rows);
is($node->safe_psql('restored', $rows), $expected, 'the policy rows survive pg_dump');
is(scalar(split /\n/, $expected), 3, 'all three of them');
like(
	$node->safe_psql('restored',
		q{SELECT detail FROM protea_reaper_check() WHERE "check" = 'thresholds'}),
	qr/; 3 operation\(s\) with rows in protea_reaper_policy\.$/,
	'and the restored rows are the policy in force');

# plain format, psql, from a database that installed 1.0 and updated to the default
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
install_protea($node, db => 'upgraded', extension => 0);
$node->safe_psql('upgraded',
	q{CREATE EXTENSION protea_reaper VERSION '1.0'; ALTER EXTENSION protea_reaper UPDATE});
$node->safe_psql('upgraded', $policy);
$node->command_ok([ 'pg_dump', '-f', "$dir/upgraded.sql", '-d', 'upgraded' ],
	'pg_dump (plain) of an updated extension\'s database');
$node->safe_psql('postgres', 'CREATE DATABASE upgraded_copy');
$node->command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$dir/upgraded.sql",
		'-d', 'upgraded_copy'
	],
	'restored with psql, without errors');
is($node->safe_psql('upgraded_copy', $made_by_extension), "$default_version 1",
	"the dump created the extension $default_version, and the policy table with it");
is($node->safe_psql('upgraded_copy', $rows), $expected,
	'the policy rows of an updated extension survive pg_dump');

$node->stop;
done_testing();
