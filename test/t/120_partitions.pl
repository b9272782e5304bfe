# 120_partitions.pl: PROTEA's job_event partitioned by month with
# pg_partman (test/partition_job_event.sql: the primary key becomes (id,
# ts)) is judged exactly as the plain table.
#
# Two copies of PROTEA's tables in one database, schema "plain" (as PROTEA
# creates them) and schema "parted" (job_event in monthly partitions made by
# pg_partman's create_parent: 14 months back, 4 ahead, and the default
# partition), get the same jobs and events in one transaction, so every
# timestamp is equal.  Events sit in the current month, in old partitions,
# before their job's start, in a premade future partition and in the
# default partition.  Then, each in one transaction per schema: the
# running_jobs() rows are the same and each verdict the expected one; a
# sweep fails the same jobs with the same messages, and writes the same
# audit events, with last_event_ts the newest event wherever it sits, and
# on "parted" in the partition of the current month; the operator's fail
# too.  Skipped where the major has no pg_partman (Debian ships none for
# 16, which the tests build from source).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

# The worker stays out of the way: every sweep here is run_once
my $node = reaper_node('partitions', conf => "protea_reaper.enabled = off\n");
$node->start;

my $major = $node->safe_psql('postgres', q{SELECT current_setting('server_version_num')::int / 10000});
if (!$node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_partman'}))
{
	$node->stop;
	plan skip_all => "pg_partman is not installed for PostgreSQL $major"
	  . " (Debian ships no postgresql-$major-partman; test/lib.sh installs it where it does)";
}

my $dir = dirname(__FILE__) . '/..';
my $schema = slurp_file("$dir/protea_schema.sql");
my $partition = slurp_file("$dir/partition_job_event.sql");
$node->safe_psql('postgres', qq{
CREATE SCHEMA plain;
CREATE SCHEMA parted;
SET search_path = plain;
$schema
SET search_path = parted;
$schema
$partition
RESET search_path;
CREATE EXTENSION protea_reaper;
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
});
# create_parent: pg_partman 4 (PostgreSQL 15's) calls native partitioning
# "native", 5 calls it "range"; named arguments fit both signatures
$node->safe_psql('postgres', q{
SELECT partman.create_parent(
    p_parent_table => 'parted.job_event', p_control => 'ts', p_interval => '1 month',
    p_type => CASE WHEN (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman') < '5'
                   THEN 'native' ELSE 'range' END,
    p_premake => 4,
    p_start_partition => (date_trunc('month', now()) - interval '14 months')::text)});
my $partman = $node->safe_psql('postgres',
	q{SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'});
my $parts = $node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'parted.job_event'::regclass});
cmp_ok($parts, '>=', 20,
	"pg_partman $partman made $parts partitions of parted.job_event (19 monthly and the default)");
is($node->safe_psql('postgres',
		q{SELECT pg_get_constraintdef(oid) FROM pg_constraint
		   WHERE conrelid = 'parted.job_event'::regclass AND contype = 'p'}),
	'PRIMARY KEY (id, ts)', "the partitioned job_event's key includes ts");

# Thresholds: timeout 10 min, stall 5 min (ReaperTest), and policy rows:
# load_annotations waits 90 days for an event (timeout 120 days);
# compute_embeddings' events keep it past a lapsed lease; predict_go_terms
# is capped at 2 days
$node->safe_psql('postgres', q{
INSERT INTO protea_reaper_policy (operation, timeout_seconds, stall_seconds)
VALUES ('load_annotations', 120 * 86400, 90 * 86400);
INSERT INTO protea_reaper_policy (operation, events_extend_lease) VALUES ('compute_embeddings', true);
INSERT INTO protea_reaper_policy (operation, max_runtime_seconds) VALUES ('predict_go_terms', 2 * 86400);
});

# The jobs: number => [operation, started ago, lease (from now), events
# (ago; negative: ahead), expected verdict, expected last event (ago)]
my %jobs = (
	1 => [ 'insert_proteins', '1 hour', undef, [], 'stale', undef ],
	2 => [ 'insert_proteins', '2 hours', undef, [ '90 min', '1 hour' ], 'stale', '1 hour' ],
	3 => [ 'insert_proteins', '90 days', undef, [ '80 days', '60 days' ], 'stale', '60 days' ],
	4 => [ 'insert_proteins', '1 hour', undef, [ '1 min' ], 'alive', '1 min' ],
	5 => [ 'insert_proteins', '500 days', undef, [ '600 days', '400 days', '40 days', '1 min' ],
		'alive', '1 min' ],
	6 => [ 'insert_proteins', '2 min', undef, [], 'young', undef ],
	7 => [ 'insert_proteins', '3 hours', '1 hour', [ '2 hours' ], 'leased', '2 hours' ],
	8 => [ 'insert_proteins', '3 hours', '-1 hour', [ '1 min' ], 'lease lapsed', '1 min' ],
	9 => [ 'compute_embeddings', '3 hours', '-1 hour', [ '1 min' ], 'alive', '1 min' ],
	10 => [ 'compute_embeddings', '100 days', '-1 hour', [ '70 days' ], 'lease lapsed', '70 days' ],
	11 => [ 'predict_go_terms', '3 days', undef, [ '40 days', '1 min' ], 'capped', '1 min' ],
	# an event written before its job began, by a clock behind
	12 => [ 'insert_proteins', '1 hour', undef, [ '35 days' ], 'stale', '35 days' ],
	# events ahead of the database's clock: a premade partition, the default
	13 => [ 'insert_proteins', '1 hour', undef, [ '-2 months' ], 'alive', '-2 months' ],
	14 => [ 'insert_proteins', '1 hour', undef, [ '-700 days' ], 'alive', '-700 days' ],
	# an event in an old partition within the operation's 90-day stall
	15 => [ 'load_annotations', '200 days', undef, [ '150 days', '60 days' ], 'alive', '60 days' ],
	16 => [ 'load_annotations', '200 days', undef, [ '150 days', '100 days' ], 'stale', '100 days' ],
	# only an event in the default partition, before the first month
	17 => [ 'insert_proteins', '1 hour', undef, [ '800 days' ], 'stale', '800 days' ],
	# failed by hand below: its last event two partitions back
	18 => [ 'insert_proteins', '1 min', undef, [ '45 days' ], 'young', '45 days' ],
);

my $id = sub { sprintf('00000000-0000-0000-0000-%012d', shift) };
my @sql = ('BEGIN;');
for my $schema (qw(plain parted))
{
	for my $n (sort { $a <=> $b } keys %jobs)
	{
		my ($op, $started, $lease, $events) = @{ $jobs{$n} };
		my $leased = defined $lease ? "now() + '$lease'::interval" : 'NULL';
		push @sql, qq{INSERT INTO $schema.job (id, operation, queue_name, status, created_at,
		    started_at, payload, meta, tags, leased_until)
		  VALUES ('${\ $id->($n)}', '$op', 'q', 'RUNNING', now() - '$started'::interval,
		          now() - '$started'::interval, '{}', '{}', '{}', $leased);};
		push @sql, qq{INSERT INTO $schema.job_event (job_id, ts, level, event, fields)
		  VALUES ('${\ $id->($n)}', now() - '$_'::interval, 'info', 'job.progress', '{}');}
		  for @$events;
	}
}
push @sql, 'COMMIT;';
$node->safe_psql('postgres', join("\n", @sql));

# where parted's events landed: months back, a month ahead, the default
is($node->safe_psql('postgres', q{
	SELECT count(DISTINCT e.tableoid) >= 8,
	       count(*) FILTER (WHERE pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT')
	  FROM parted.job_event AS e JOIN pg_class AS c ON c.oid = e.tableoid}),
	't|3', "parted's events are spread over the monthly partitions, 3 in the default one");

# both($sql): $sql (a psql script) run with PROTEA's tables in schema plain,
# then in parted (@S@ in $sql: the schema), in one transaction that is
# rolled back, so that now() is the same; the two outputs
sub both
{
	my ($sql) = @_;
	my $script = "BEGIN;\n";
	for my $schema (qw(plain parted))
	{
		(my $s = $sql) =~ s/\@S\@/$schema/g;
		$script .= qq{SET LOCAL protea_reaper.job_table = '$schema.job';
SET LOCAL protea_reaper.event_table = '$schema.job_event';
$s;
SELECT '----';
};
	}
	$script .= "ROLLBACK;\n";
	my ($out, $err);
	$node->psql('postgres', $script, stdout => \$out, stderr => \$err, on_error_die => 1);
	my @out = split /^----\n?/m, $out;
	chomp @out;
	return ($out[0], $out[1]);
}

# Every column of running_jobs(), and each job's verdict and last event
# against the newest of its events, read with plain SQL
my ($plain, $parted) = both(q{SELECT * FROM protea_reaper_running_jobs() ORDER BY job_id});
is($parted, $plain, 'running_jobs(): every row the same on the partitioned job_event');
($plain, $parted) = both(q{
SELECT r.job_id, r.verdict,
       r.last_event_ts IS NOT DISTINCT FROM (SELECT max(e.ts) FROM @S@.job_event AS e
                                              WHERE e.job_id = r.job_id)
  FROM protea_reaper_running_jobs() AS r ORDER BY r.job_id});
my %verdict = map { my @c = split /\|/; ($c[0] => "$c[1], newest event: $c[2]") }
  split /\n/, $parted;
for my $n (sort { $a <=> $b } keys %jobs)
{
	is($verdict{ $id->($n) }, "$jobs{$n}[4], newest event: t",
		"job $n: $jobs{$n}[4], its last event "
		  . (!defined $jobs{$n}[5] ? 'none'
			: $jobs{$n}[5] =~ /^-(.*)/ ? "$1 ahead" : "$jobs{$n}[5] ago"));
}

# A sweep: how many it fails, the jobs, and their audit events
($plain, $parted) = both(q{
SELECT protea_reaper_run_once();
SELECT j.id, j.status, j.error_code, j.error_message, j.finished_at = now(),
       e.level, e.event, e.message, e.fields, e.ts = now(),
       (e.fields ->> 'last_event_ts')::timestamptz IS NOT DISTINCT FROM
         (SELECT max(l.ts) FROM @S@.job_event AS l WHERE l.job_id = j.id AND l.id <> e.id)
  FROM @S@.job AS j
  LEFT JOIN @S@.job_event AS e
    ON e.job_id = j.id AND e.event IN ('job.timeout', 'job.lease_expired')
 ORDER BY j.id});
is($parted, $plain, 'run_once(): the same jobs failed, the same audit events');
my ($count, @rows) = split /\n/, $parted;
my %failed = map { (split /\|/)[0] => $_ } grep { /\|FAILED\|/ } @rows;
my @expected = sort grep { $jobs{$_}[4] =~ /^(stale|lease lapsed|capped)$/ } keys %jobs;
is($count, scalar(@expected), "it fails $count jobs");
is(join(' ', sort map { $id->($_) } @expected), join(' ', sort keys %failed),
	'exactly the stale, the lapsed and the capped ones');
is(scalar(grep { /\|t\|t$/ } values %failed), scalar(@expected),
	'each with an audit event of now whose last_event_ts is its newest earlier event');
like($failed{ $id->(3) },
	qr/\|JobTimeout\|Job stalled: no activity in 300s \(started >600s ago\)\|t\|error\|job\.timeout\|/,
	'job 3 failed as stalled');
like($failed{ $id->(10) }, qr/\|lease_expired\|/, "job 10's old event does not keep its lapsed lease");

# The audit events land in the partition holding the current month
($plain, $parted) = both(q{
SELECT protea_reaper_run_once() AS n \gset
SELECT string_agg(DISTINCT CASE
         WHEN c.relpartbound IS NULL THEN 'not a partition'
         WHEN pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' THEN 'the default partition'
         WHEN substring(pg_get_expr(c.relpartbound, c.oid) FROM $$FROM \('([^']*)'\)$$)::timestamptz <= now()
          AND now() < substring(pg_get_expr(c.relpartbound, c.oid) FROM $$TO \('([^']*)'\)$$)::timestamptz
         THEN 'the current month' ELSE c.relname END, ', ')
  FROM @S@.job_event AS e JOIN pg_class AS c ON c.oid = e.tableoid
 WHERE e.event IN ('job.timeout', 'job.lease_expired')});
is($parted, 'the current month', "the sweep's audit events are in the current month's partition");

# The operator's fail of job 18: last_event_ts from two partitions back
($plain, $parted) = both(q{
SELECT protea_reaper_fail_job('00000000-0000-0000-0000-000000000018', 'test');
SELECT e.fields, e.ts = now(),
       (e.fields ->> 'last_event_ts')::timestamptz =
         (SELECT l.ts FROM @S@.job_event AS l WHERE l.job_id = e.job_id AND l.event = 'job.progress')
  FROM @S@.job_event AS e WHERE e.event = 'job.timeout'});
is($parted, $plain, 'fail_job(): the same audit event');
like($parted, qr/^t\n.*"previous_status": "RUNNING".*\|t\|t$/,
	"with last_event_ts the job's one event, 45 days old");

$node->stop;
done_testing();
