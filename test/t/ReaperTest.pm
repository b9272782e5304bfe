# ReaperTest.pm: shared helpers of protea_reaper's TAP tests.
#
# A node with the worker preloaded (interval 1 s, timeout 10 min, stall
# 5 min, acting in database postgres), PROTEA's schema from
# test/protea_schema.sql, and jobs placed relative to now().
package ReaperTest;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(reaper_node install_protea add_job add_jobs job_state
  reaped_within stays_running worker_pid wait_for_worker);

my $schema_file = dirname(__FILE__) . '/../protea_schema.sql';

# reaper_node($name, conf => '...', init => {...}): a node, not started
sub reaper_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} // {} });
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'protea_reaper'
protea_reaper.database = 'postgres'
protea_reaper.interval_seconds = 1
protea_reaper.timeout_seconds = '10min'
protea_reaper.stall_seconds = '5min'
} . ($opts{conf} // ''));
	return $node;
}

# install_protea($node, extension => 0|1, db => 'postgres'): PROTEA's
# tables, and the extension
sub install_protea
{
	my ($node, %opts) = @_;
	my $db = $opts{db} // 'postgres';
	$node->safe_psql($db, slurp_file($schema_file));
	$node->safe_psql($db, 'CREATE EXTENSION protea_reaper')
	  if $opts{extension} // 1;
	return;
}

# The SQL that adds job number $n (add_job's options); returns (id, SQL)
sub job_sql
{
	my ($n, %o) = @_;
	my $id = sprintf('00000000-0000-0000-0000-%012d', $n);
	my $started = $o{started} // '1 hour';
	my $operation = $o{operation} // 'insert_proteins';
	my $lease = defined $o{lease} ? "now() + '$o{lease}'::interval" : 'NULL';
	my $sql = qq{INSERT INTO job (id, operation, queue_name, status, created_at, started_at,
		                 payload, meta, tags, leased_until)
		VALUES ('$id', '$operation', 'q', 'RUNNING',
		        now() - '$started'::interval, now() - '$started'::interval,
		        '{}', '{}', '{}', $lease);};
	$sql .= qq{INSERT INTO job_event (job_id, ts, level, event, fields)
		VALUES ('$id', now() - '$o{event}'::interval, 'info', 'job.progress', '{}');}
	  if defined $o{event};
	return ($id, $sql);
}

# add_job($node, $n, started => '1 hour', event => '2 min', lease => '1 min',
# operation => 'insert_proteins', db => 'postgres'): a running job number
# $n, started that long ago, with its last event that long ago (or none)
# and a lease for that much longer (or none), as PROTEA's ORM writes it;
# returns its id
sub add_job
{
	my ($node, $n, %o) = @_;
	my ($id, $sql) = job_sql($n, %o);
	$node->safe_psql($o{db} // 'postgres', $sql);
	return $id;
}

# add_jobs($node, [$first .. $last], %options): those jobs, as add_job makes
# them, in one transaction (a sweep sees all of them or none); their ids
sub add_jobs
{
	my ($node, $numbers, %o) = @_;
	my (@ids, @sql);
	for my $n (@$numbers)
	{
		my ($id, $sql) = job_sql($n, %o);
		push @ids, $id;
		push @sql, $sql;
	}
	$node->safe_psql($o{db} // 'postgres', join("\n", 'BEGIN;', @sql, 'COMMIT;'));
	return @ids;
}

# job_state($node, $id): "status/error_code/number of job.timeout events"
sub job_state
{
	my ($node, $id, $db) = @_;
	return $node->safe_psql($db // 'postgres',
		qq{SELECT j.status || '/' || coalesce(j.error_code, '') || '/' ||
		          (SELECT count(*) FROM job_event e
		            WHERE e.job_id = j.id AND e.event = 'job.timeout')
		     FROM job j WHERE j.id = '$id'});
}

# reaped_within($node, $id, $seconds): true once the job is failed with one
# audit event, false if that takes longer than $seconds
sub reaped_within
{
	my ($node, $id, $seconds, $db) = @_;
	my $deadline = time() + $seconds;
	while (time() < $deadline)
	{
		return 1 if job_state($node, $id, $db) eq 'FAILED/JobTimeout/1';
		usleep(100_000);
	}
	return 0;
}

# stays_running($node, $id, $seconds): the job is still running after that long
sub stays_running
{
	my ($node, $id, $seconds, $db) = @_;
	sleep($seconds);
	return job_state($node, $id, $db) eq 'RUNNING//0';
}

# worker_pid($node): the worker's pid as pg_stat_activity shows it, or ''
sub worker_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity
		   WHERE backend_type = 'protea_reaper' AND application_name = 'protea_reaper'});
}

# wait_for_worker($node, $not_pid): wait until a worker (other than $not_pid) runs
sub wait_for_worker
{
	my ($node, $not_pid) = @_;
	$not_pid //= 0;
	$node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity
		    WHERE backend_type = 'protea_reaper' AND pid <> $not_pid})
	  or die "protea_reaper worker did not start";
	return worker_pid($node);
}

1;
