# 080_runbook.pl: the README's runbook table, row by row, with the README's
# own SQL.
#
# Each row of the table under "## Functions" is a runbook step and its one
# call.  This test reads the calls out of README.md, runs each on a node
# with the worker, and checks what the step promises.  A row without a
# check here fails the test, so the table cannot grow an untested step.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

# The runbook: step => the first `...` of its row in README.md
my $readme = slurp_file("$FindBin::RealBin/../../README.md");
my ($table) = $readme =~ /^## Functions[^\n]*\n(.*?)\n## /ms
  or die 'README.md has no Functions section';
my %call;
my @steps;
for my $row (split /\n/, $table)
{
	next unless $row =~ /^\| ([^|`]+?) \| `([^`]+)`/;
	push @steps, $1;
	$call{$1} = $2;
}
cmp_ok(scalar(@steps), '>=', 8, 'the README lists the runbook steps');

# The worker starts disabled, so that the manual steps find stale jobs
my $node = reaper_node('runbook', conf => "protea_reaper.enabled = off\n");
$node->start;
install_protea($node);
my $pid = wait_for_worker($node);

# run($step, %substitute): the README's SQL of that step, with its
# placeholders (id, 'reason') replaced by real values
sub run
{
	my ($step, %sub) = @_;
	my $sql = $call{$step} // die "README.md has no runbook step '$step'";
	$sql =~ s/\b\Q$_\E\b/$sub{$_}/g for keys %sub;
	return $node->safe_psql('postgres', $sql);
}

my %check = (
	'find stuck jobs' => sub {
		my $stale = add_job($node, 1, started => '1 hour');
		my $out = run('find stuck jobs');
		like($out, qr/^\Q$stale\E\|insert_proteins\|.*\|stale\|/m, 'lists a stale job as stale');
	},
	'is a silent coordinator dead?' => sub {
		my $coordinator = add_job($node, 20, started => '7 hours');
		my $child = add_job($node, 21, started => '1 hour', event => '1 minute');
		$node->safe_psql('postgres',
			"UPDATE job SET parent_job_id = '$coordinator' WHERE id = '$child'");
		like(run('is a silent coordinator dead?'),
			qr/^\Q$coordinator\E\|stale\|1\|\d{4}-/m,
			'a silent coordinator shows its running child and when it last wrote');
		$node->safe_psql('postgres', "DELETE FROM job WHERE id IN ('$child', '$coordinator')");
	},
	'check the setup' => sub {
		my $out = run('check the setup');
		like($out, qr/^preloaded\|t\|/m, 'the library is preloaded');
		like($out,
			qr/^worker\|f\|.*enabled is off\.\|ALTER SYSTEM SET protea_reaper.enabled = on/m,
			'the disabled worker, with the fix');
		like($out, qr/^database\|t\|/m, 'the worker sweeps this database');
		like($out, qr/^tables\|t\|/m, 'the tables resolve');
	},
	'give an operation its own thresholds' => sub {
		run('give an operation its own thresholds');
		my $job = add_job($node, 22, started => '2 hours');
		$node->safe_psql('postgres',
			"UPDATE job SET operation = 'compute_embeddings' WHERE id = '$job'");
		is( $node->safe_psql('postgres',
				"SELECT stall_seconds FROM protea_reaper_running_jobs() WHERE job_id = '$job'"),
			'3600', "the operation's jobs get its stall_seconds");
		$node->safe_psql('postgres',
			"DELETE FROM protea_reaper_policy; DELETE FROM job WHERE id = '$job'");
	},
	'sweep now' => sub {
		my $stale = add_job($node, 2);
		my $n = run('sweep now');
		cmp_ok($n, '>=', 1, 'fails the stale jobs and returns how many');
		is(job_state($node, $stale), 'FAILED/JobTimeout/1', 'with one audit event');
	},
	'force-fail a job' => sub {
		my $job = add_job($node, 3, started => '1 min');
		is(run('force-fail a job', id => "'$job'", "'reason'" => "'node lost'"),
			't', 'fails a running job by hand');
		is($node->safe_psql('postgres', "SELECT error_code FROM job WHERE id = '$job'"),
			'ManualTimeout', 'with error_code ManualTimeout');
	},
	'is the reaper alive?' => sub {
		$node->append_conf('postgresql.conf', "protea_reaper.enabled = on\n");
		$node->reload;
		$node->poll_query_until('postgres', q{SELECT state = 'idle' FROM protea_reaper_status() WHERE database = current_database()})
		  or die 'the worker did not become idle';
		my $out = run('is the reaper alive?');
		like($out, qr/\A\d+\|\|running\|/, "first the launcher's row: no database, running");
		like($out, qr/^$pid\|postgres\|(idle|sweeping)\|t\|/m,
			'then a row for the database: the pid, the database, a healthy state');
	},
	'alert: did the reaper die?' => sub {
		is(run('alert: did the reaper die?'), 'f', 'quiet while the worker runs');
	},
	'sweep now, in the worker' => sub {
		$node->append_conf('postgresql.conf', "protea_reaper.interval_seconds = 3600\n");
		$node->reload;
		$node->poll_query_until('postgres',
			q{SELECT next_cycle_at > now() + interval '50 minutes' FROM protea_reaper_status() WHERE database = current_database()})
		  or die 'interval not applied';
		my $stale = add_job($node, 4);
		is(run('sweep now, in the worker'), 't', 'the worker is asked');
		ok(reaped_within($node, $stale, 5), 'and sweeps at once');
	},
	'restart the reaper' => sub {
		is(run('restart the reaper'), 't', 'the worker is terminated');
		my $new = wait_for_worker($node, $pid);
		isnt($new, $pid, 'and started again by the launcher');
		$pid = $new;
	},
	'tune thresholds' => sub {
		run('tune thresholds');
		$node->poll_query_until('postgres',
			q{SELECT stall_seconds = 2700 FROM protea_reaper_status() WHERE database = current_database()})
		  or die 'stall_seconds not applied';
		pass('a new threshold applies after the reload, without a restart');
	},
	'tune one database' => sub {
		$node->safe_psql('postgres', 'CREATE DATABASE protea');
		install_protea($node, db => 'protea');
		$node->append_conf('postgresql.conf', "protea_reaper.database = 'postgres, protea'\n");
		$node->reload;
		run('tune one database');
		$node->poll_query_until('postgres',
			q{SELECT stall_seconds = 3600 FROM protea_reaper_status() WHERE database = 'protea'})
		  or die 'the database setting was not applied';
		is($node->safe_psql('postgres',
				q{SELECT stall_seconds FROM protea_reaper_status() WHERE database = 'postgres'}),
			'2700', 'that database gets its own threshold after the reload; the others keep theirs');
	},
	'see what a sweep runs' => sub {
		like(run('see what a sweep runs'), qr/^first_batch\|WITH candidates AS/m,
			'lists the statements as prepared');
	},
);

for my $step (@steps)
{
	ok(exists $check{$step}, "runbook step '$step' has a check here")
	  or next;
	$check{$step}->();
}

$node->stop;
done_testing();
