# 015_memory.pl: a reaper runs for months, so a cycle must leave nothing
# behind in its long-lived memory.
#
# Hundreds of cycles (each asked for at once with protea_reaper_wake(),
# which also makes the reaper count its false alarms) must not grow the
# reaper's TopMemoryContext, as pg_log_backend_memory_contexts() reports
# it: what a cycle allocates after its transactions commit (the summary
# line, the notification, the false-alarm count, an error's copy) belongs
# to the cycle's own context, reset at the next cycle.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;

# a long interval: only the wakes below run cycles
my $node = reaper_node('memory', conf => "protea_reaper.interval_seconds = '1h'\n");
$node->start;
install_protea($node);
my $pid = wait_for_worker($node);

# cycles: the reaper's count so far
sub cycles
{
	return $node->safe_psql('postgres',
		q{SELECT cycles FROM protea_reaper_status() WHERE database = current_database()});
}

# run_cycles($n): $n cycles, one wake at a time, each with a stale job to
# fail (a notification, a job line, a summary) and its false alarms counted
my $job = 100;
sub run_cycles
{
	my ($n) = @_;
	for (1 .. $n)
	{
		my $before = cycles();
		add_job($node, $job++);
		$node->safe_psql('postgres', 'SELECT protea_reaper_wake()');
		$node->poll_query_until('postgres',
			qq{SELECT cycles > $before FROM protea_reaper_status() WHERE database = current_database()})
		  or die 'the reaper did not run the cycle it was woken for';
	}
	return;
}

# top_used: bytes used in the reaper's TopMemoryContext, from its log
sub top_used
{
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)");
	$node->wait_for_log(qr/level: \d+; TopMemoryContext: .* (\d+) used/, $offset);
	my ($used) = slurp_file($node->logfile, $offset) =~ /level: \d+; TopMemoryContext: .* (\d+) used/;
	return $used;
}

# warm up: caches and plans are made once
run_cycles(20);
my $before = top_used();
run_cycles(300);
my $after = top_used();
cmp_ok($after - $before, '<', 8192,
	"300 cycles leave TopMemoryContext as it was ($before -> $after bytes used)");
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM job WHERE status = 'FAILED'}), '320',
	'and each of them failed its job');
is(worker_pid($node), $pid, 'all in the same reaper');

$node->stop;
done_testing();
