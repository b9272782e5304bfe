# 135_hostile_databases.pl: the launcher and the DBA-command hook lend no
# power and cannot be turned against the reapers.  A user who can create a
# database cannot make a reaper (a superuser) run their code when it comes
# to look at it; a database's settings are read without the database's
# search_path; a command that fails, or is rolled back to a savepoint, does
# not keep a reaper stopped; a database the reapers' role may not connect to
# is not knocked on again and again.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

my $node = reaper_node('hostile', conf => "protea_reaper.database = ''\n");
$node->start;
install_protea($node);

# eve may create databases, nothing more
$node->safe_psql('postgres', 'CREATE ROLE eve LOGIN CREATEDB');
my @eve = (extra_params => [ '-U', 'eve' ]);
$node->safe_psql('postgres', 'CREATE DATABASE evedb', @eve);

# An operator in a schema of eve's, first in her database's search_path:
# whoever resolves || there runs her function
$node->safe_psql('evedb', q{
	CREATE SCHEMA evil;
	CREATE FUNCTION evil.cat(text, text) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
		EXECUTE 'ALTER ROLE eve SUPERUSER';
		RETURN $1 OPERATOR(pg_catalog.||) $2;
	END $$;
	CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.cat);
	CREATE FUNCTION evil.eq(oid, oid) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
		EXECUTE 'ALTER ROLE eve SUPERUSER';
		RETURN $1 OPERATOR(pg_catalog.=) $2;
	END $$;
	CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.eq);
}, @eve);
$node->safe_psql('postgres', 'ALTER DATABASE evedb SET search_path = evil, pg_catalog', @eve);

# The launcher looks at every database when it starts: a restart brings a
# reaper into evedb, as the bootstrap superuser
$node->restart;
$node->poll_query_until('postgres',
	q{SELECT cycles >= 1 FROM protea_reaper_status() WHERE database IS NULL})
  or die 'the launcher did not scan';
# its reaper looks, finds no extension, and leaves
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'evedb'})
  or die 'a reaper stayed in evedb';
sleep(1);
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'eve'}),
	'f', "a reaper that looks at a user's database runs none of her operators");

# The same with the extension installed there (a superuser installs it):
# the reaper stays and reloads, and still runs nothing of hers
$node->safe_psql('evedb', 'SET search_path = pg_catalog; CREATE EXTENSION protea_reaper SCHEMA public');
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'evedb' AND backend_type = 'protea_reaper'})
  or die 'no reaper in evedb';
$node->reload;
sleep(3);
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'eve'}),
	'f', 'nor when it reaps there and re-reads its settings on reload');

# A command rolled back to a savepoint lets go of the database at once
my $pid = $node->safe_psql('postgres',
	q{SELECT pid FROM protea_reaper_status() WHERE database = 'evedb' AND pid IS NOT NULL});
my $session = $node->background_psql('postgres');
$session->query_safe('BEGIN; SAVEPOINT a; ALTER DATABASE evedb RENAME TO evedb2; ROLLBACK TO a;');
$node->poll_query_until('postgres',
	q{SELECT state IN ('idle', 'sweeping', 'idle after error') AND pid IS NOT NULL
	    FROM protea_reaper_status() WHERE database = 'evedb'})
  or die 'the reaper stayed paused';
pass('a DBA command rolled back to a savepoint does not keep the reaper paused');
$session->query_safe('COMMIT');
$session->quit;

# eve owns evedb but may not rename it without CREATEDB: her failing
# RENAME stops nothing
$node->safe_psql('postgres', 'ALTER ROLE eve NOCREATEDB');
$pid = $node->safe_psql('postgres',
	q{SELECT pid FROM protea_reaper_status() WHERE database = 'evedb' AND pid IS NOT NULL});
my ($ret, $out, $err) = $node->psql('postgres', 'ALTER DATABASE evedb RENAME TO other', @eve);
like($err, qr/permission denied to rename database/, 'a RENAME without CREATEDB fails');
is($node->safe_psql('postgres',
		q{SELECT pid FROM protea_reaper_status() WHERE database = 'evedb'}),
	$pid, 'and did not stop the reaper');
($ret, $out, $err) = $node->psql('postgres', 'ALTER DATABASE evedb SET TABLESPACE pg_default', @eve);
is($node->safe_psql('postgres',
		q{SELECT pid FROM protea_reaper_status() WHERE database = 'evedb'}),
	$pid, 'nor does a SET TABLESPACE to the tablespace it is in already');

# A database the reapers' role may not connect to is left alone: no
# failed connection every interval, no row that looks like a dead reaper
$node->safe_psql('postgres', q{
	CREATE ROLE reaper LOGIN SUPERUSER;
	CREATE DATABASE closed;
});
$node->safe_psql('postgres', 'CREATE ROLE nobody_special LOGIN');
$node->append_conf('postgresql.conf', "protea_reaper.role = 'reaper'\n");
$node->safe_psql('postgres', 'REVOKE CONNECT ON DATABASE closed FROM PUBLIC');
$node->safe_psql('postgres', 'ALTER ROLE reaper NOSUPERUSER');
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'protea_reaper' AND usename = 'reaper'})
  or die 'no reaper runs as reaper';
my $offset = -s $node->logfile;
sleep(4);
unlike(slurp_file($node->logfile, $offset), qr/permission denied for database "closed"/,
	'a database the role may not connect to is not tried');
is($node->safe_psql('postgres', q{SELECT count(*) FROM protea_reaper_status() WHERE database = 'closed'}),
	'0', 'and has no row in the status');

$node->stop;
done_testing();
