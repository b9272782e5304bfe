# 090_notify.pl: NOTIFY protea_reaper, as a LISTENing application sees it.
#
# Applications LISTEN protea_reaper to retry or alert on a rescued job
# instead of polling, so they rely on: one notification per committed sweep
# that failed something (a manual sweep, or the worker's sweep however many
# batches it took), naming the database and every failed job (or as many
# as fit, and saying so), valid JSON; none for a sweep that failed nothing,
# for one rolled back, or with protea_reaper.notify = off; one for each job
# an operator fails, with the reason; and, when a worker cycle fails after
# some batches committed, one for the jobs that stay failed.  (A worker
# terminated in the middle of a sweep sends none: README, Notifications.)
#
# "None" is checked without sleeping: after the step, another session
# notifies a fence channel the listener also LISTENs to.  A listener reads
# notifications in commit order, so once it has the fence it has every
# notification committed before.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;
use Time::HiRes qw(time usleep);

# Batches of 2, so that a sweep of a few jobs takes several transactions
my $node = reaper_node('notify', conf => "protea_reaper.batch_size = 2\n");
$node->start;
install_protea($node);
wait_for_worker($node);

# Manual sweeps run in database protea, where the worker does not act, so
# that it cannot fail their jobs first (and "database" is not merely the
# worker's setting).  UTF-8, for a reason that is not ASCII.
$node->safe_psql('postgres',
	q{CREATE DATABASE protea ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0});
install_protea($node, db => 'protea');

my $json = JSON::PP->new->utf8;

# listener($db): a psql session LISTENing on protea_reaper and the fence
sub listener
{
	my ($db) = @_;
	my $session = $node->background_psql($db);
	$session->set_query_timer_restart;
	$session->query_safe('LISTEN protea_reaper; LISTEN protea_reaper_test_fence;');
	return $session;
}

# heard($listener, $db): every NOTIFY protea_reaper the listener received
# since the last call, in order, as [decoded payload, raw payload, pid]
my $fences = 0;

sub heard
{
	my ($listener, $db) = @_;
	my $fence = ++$fences;
	my $output = '';
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;

	$node->safe_psql($db, "NOTIFY protea_reaper_test_fence, '$fence'");
	# psql prints what it received after each query
	until ($output =~
		/^Asynchronous notification "protea_reaper_test_fence" with payload "$fence" received/m)
	{
		die "the listener did not hear fence $fence" if time() > $deadline;
		usleep(20_000) if $output ne '';
		$output .= $listener->query_safe('SELECT 1') . "\n";
	}
	my @heard;
	while ($output =~
		/^Asynchronous notification "protea_reaper" with payload "(.*)" received from server process with PID (\d+)\.$/mg
	  )
	{
		my ($raw, $pid) = ($1, $2);
		my $payload = eval { $json->decode($raw) };
		ok($payload, 'the payload is valid JSON') or diag("payload: $raw\n$@");
		push @heard, [ $payload // {}, $raw, $pid ];
	}
	return @heard;
}

# is_notification($heard, {expected keys}, $name): the first notification
# heard has exactly these keys and values (ids: as a set; truncated: false
# unless given)
sub is_notification
{
	my ($heard, $expected, $name) = @_;
	my %got = %{ $heard->[0][0] // {} };
	my $truncated = $got{truncated};
	$got{ids} = [ sort @{ $got{ids} // [] } ];
	$got{truncated} =
	  JSON::PP::is_bool($truncated) ? ($truncated ? 'true' : 'false')
	  : 'not a JSON boolean: ' . ($truncated // 'missing');
	my %want = (truncated => 'false', %$expected);
	$want{ids} = [ sort @{ $want{ids} } ];
	is_deeply(\%got, \%want, $name);
	return;
}

# failed_ids($db, $where): the ids of the failed jobs matching $where
sub failed_ids
{
	my ($db, $where) = @_;
	return split /\n/, $node->safe_psql($db,
		"SELECT id FROM job WHERE status = 'FAILED' AND $where ORDER BY id");
}

my $protea = listener('protea');

# One operator's session for the manual sweeps, so that each sweep follows
# another in the same backend
my $session = $node->background_psql('protea');
$session->set_query_timer_restart;

sub operator
{
	my ($sql) = @_;
	my $out = $session->query_safe($sql);
	$out =~ s/\s+$//;
	return $out;
}

# Nothing yet: nobody failed anything
is(scalar(heard($protea, 'protea')), 0, 'nothing is heard before any job fails');

# A manual sweep that fails three stale jobs among a live one: exactly one
# notification, naming them, though it took two batches
my @first = add_jobs($node, [ 1 .. 3 ], db => 'protea');
my $alive = add_job($node, 4, event => '10 seconds', db => 'protea');
is(operator('SELECT protea_reaper_run_once()'), '3', 'the sweep fails 3 jobs');
my @heard = heard($protea, 'protea');
is(scalar(@heard), 1, 'a committed sweep that failed jobs sends one notification');
is_notification(
	\@heard,
	{
		database => 'protea',
		source => 'run_once',
		error_code => 'JobTimeout',
		reason => 'stalled',
		count => 3,
		ids => \@first
	},
	'it names the database and the failed jobs, all of them');

# The next sweep in the same session names only its own jobs
my @second = add_jobs($node, [ 5, 6 ], db => 'protea');
is(operator('SELECT protea_reaper_run_once()'), '2', 'a second sweep fails 2 jobs');
@heard = heard($protea, 'protea');
is(scalar(@heard), 1, 'the second sweep sends one notification');
is_notification(
	\@heard,
	{
		database => 'protea',
		source => 'run_once',
		error_code => 'JobTimeout',
		reason => 'stalled',
		count => 2,
		ids => \@second
	},
	'naming its jobs, not the first sweep\'s');

# A sweep that fails nothing (only the live job is past the timeout)
is(operator('SELECT protea_reaper_run_once()'), '0', 'a sweep with nothing stale');
is(scalar(heard($protea, 'protea')), 0, 'a sweep that failed nothing notifies nothing');

# Rolled back, whole or to a savepoint: the jobs are not failed, and
# nobody may hear that they were
my @rolled = add_jobs($node, [ 7, 8 ], db => 'protea');
is( operator(
		'BEGIN; SELECT protea_reaper_run_once(); ROLLBACK;'),
	'2', 'a sweep in a transaction fails 2 jobs');
is(job_state($node, $rolled[0], 'protea'), 'RUNNING//0', 'ROLLBACK undoes it');
is(scalar(heard($protea, 'protea')), 0, 'a rolled-back sweep notifies nothing');
is( operator(
		'BEGIN; SAVEPOINT s; SELECT protea_reaper_run_once(); ROLLBACK TO SAVEPOINT s; COMMIT;'),
	'2', 'a sweep in a savepoint fails 2 jobs');
is(job_state($node, $rolled[0], 'protea'), 'RUNNING//0', 'ROLLBACK TO SAVEPOINT undoes it');
is(scalar(heard($protea, 'protea')), 0, 'a sweep rolled back to a savepoint notifies nothing');
is( operator('BEGIN; SELECT protea_reaper_run_once(); COMMIT;'),
	'2', 'committed, the same sweep fails them');
@heard = heard($protea, 'protea');
is(scalar(@heard), 1, 'and sends one notification, at commit');
is_notification(
	\@heard,
	{
		database => 'protea',
		source => 'run_once',
		error_code => 'JobTimeout',
		reason => 'stalled',
		count => 2,
		ids => \@rolled
	},
	'naming the jobs the committed sweep failed');

# protea_reaper.notify = off
my @quiet = add_jobs($node, [ 9, 10 ], db => 'protea');
is( $node->safe_psql('protea',
		'SET protea_reaper.notify = off; SELECT protea_reaper_run_once();'),
	'2', 'with notify off the sweep still fails the jobs');
is(scalar(heard($protea, 'protea')), 0, 'with protea_reaper.notify = off nothing is sent');

# "reason" says why a sweep failed its jobs: a runtime cap, and stalling
my $capped = add_job($node, 21, started => '3 hours', event => '10 seconds', db => 'protea');
my $cap = "SET protea_reaper.max_runtime_seconds = '2h'; SELECT protea_reaper_run_once();";
is($node->safe_psql('protea', $cap), '1', 'a sweep fails a job past its runtime cap');
@heard = heard($protea, 'protea');
is(scalar(@heard), 1, 'one notification');
is($heard[0][0]{reason}, 'max_runtime', 'its reason is max_runtime');
my @both = (
	add_job($node, 22, started => '3 hours', event => '10 seconds', db => 'protea'),
	add_job($node, 23, db => 'protea'));
is($node->safe_psql('protea', $cap), '2', 'a sweep fails a capped and a stalled job');
@heard = heard($protea, 'protea');
is_notification(
	\@heard,
	{
		database => 'protea',
		source => 'run_once',
		error_code => 'JobTimeout',
		reason => 'stalled, max_runtime',
		count => 2,
		ids => \@both
	},
	'one notification, with reason "stalled, max_runtime"');

# More jobs than a notification holds: one notification, the full count,
# as many ids as fit (about 200), each a failed job, and truncated
my @many = add_jobs($node, [ 1001 .. 1300 ], db => 'protea');
is( $node->safe_psql('protea',
		'SET protea_reaper.batch_size = 100; SELECT protea_reaper_run_once();'),
	'300', 'one sweep fails 300 jobs');
@heard = heard($protea, 'protea');
is(scalar(@heard), 1, 'a sweep of 300 jobs sends one notification');
my ($payload, $raw) = @{ $heard[0] // [ {}, '' ] };
is($payload->{count}, 300, 'its count is 300');
ok($payload->{truncated} && JSON::PP::is_bool($payload->{truncated}),
	'"truncated" is true');
my @listed = @{ $payload->{ids} // [] };
cmp_ok(scalar(@listed), '<', 300, 'fewer ids than jobs are listed');
cmp_ok(scalar(@listed), '>=', 150, 'as many as fit (' . scalar(@listed) . ')');
my %many = map { $_ => 1 } @many;
is(scalar(grep { !$many{$_} } @listed), 0, 'every listed id is one of the failed jobs');
my %seen;
is(scalar(grep { $seen{$_}++ } @listed), 0, 'no id is listed twice');
is(scalar(failed_ids('protea', "id = ANY ('{" . join(',', @listed) . "}')")),
	scalar(@listed), 'every listed job is failed');
cmp_ok(length($raw), '<', 8000, 'the payload fits NOTIFY\'s limit');
is($payload->{database}, 'protea', 'it names the database');

# The edge: a database name and a count for which listing every id with the
# shorter ending ("truncated":false) would fill 8000 bytes exactly, which
# NOTIFY refuses (and a refused NOTIFY fails the sweep's transaction).  The
# name's length is worked out from the payload's fixed parts.
my $count = 201;
my $fixed = length('{"database":"","source":"run_once","error_code":"JobTimeout",'
	  . '"reason":"stalled","count":' . $count . ',"ids":[');
my $name_length = 7981 - 39 * $count - $fixed;
my $edge_db = 'edge_' . ('x' x ($name_length - 5));
is(length($edge_db), $name_length, "a database name of $name_length bytes");
$node->safe_psql('postgres', qq{CREATE DATABASE "$edge_db"});
install_protea($node, db => $edge_db);
my $edge = listener($edge_db);
my @edge = add_jobs($node, [ 2001 .. 2000 + $count ], db => $edge_db);
is($node->safe_psql($edge_db, 'SELECT protea_reaper_run_once()'),
	$count, "a sweep of $count jobs commits there");
@heard = heard($edge, $edge_db);
is(scalar(@heard), 1, 'with one notification');
($payload, $raw) = @{ $heard[0] // [ {}, '' ] };
is($payload->{count}, $count, "of $count jobs");
cmp_ok(length($raw), '<', 8000, 'that fits NOTIFY\'s limit');
ok($payload->{truncated}, 'the last id left out, and said so');
$edge->quit;

# protea_reaper_fail_job: source fail_job, ManualTimeout, the operator's
# reason (quotes, a backslash and a non-ASCII letter survive the JSON)
my $manual = add_job($node, 11, started => '1 min', db => 'protea');
is( operator(
		qq{SELECT protea_reaper_fail_job('$manual', 'node "b7" lost \\ d' || chr(233) || 'j' || chr(224) || ' vu')}),
	't', 'fail_job fails a running job');
@heard = heard($protea, 'protea');
is(scalar(@heard), 1, 'fail_job sends one notification');
is_notification(
	\@heard,
	{
		database => 'protea',
		source => 'fail_job',
		error_code => 'ManualTimeout',
		reason => "node \"b7\" lost \\ d\x{e9}j\x{e0} vu",
		count => 1,
		ids => [$manual]
	},
	'with source fail_job, error_code ManualTimeout and the reason');

is( $node->safe_psql('protea',
		"SELECT protea_reaper_fail_job('$manual', 'again')"),
	'f', 'fail_job on a job that has ended returns false');
is(scalar(heard($protea, 'protea')), 0, 'and notifies nothing');
my $undone = add_job($node, 12, started => '1 min', db => 'protea');
is( operator(
		"BEGIN; SELECT protea_reaper_fail_job('$undone', 'oops'); ROLLBACK;"),
	't', 'fail_job in a transaction');
is(scalar(heard($protea, 'protea')), 0, 'rolled back, it notifies nothing');

$session->quit;
$protea->quit;

# The worker, in database postgres.  It notifies after a sweep, in a
# transaction of its own, once the cycle has ended; so before the fence,
# wait until it has ended two more cycles (the second started after that
# notification was sent).
my $postgres = listener('postgres');
my $worker = worker_pid($node);

sub cycles_later
{
	my ($n) = @_;
	my $ended = $node->safe_psql('postgres', 'SELECT cycles FROM protea_reaper_status() WHERE database = current_database()');
	$node->poll_query_until('postgres',
		"SELECT cycles >= $ended + $n FROM protea_reaper_status() WHERE database = current_database()")
	  or die "the worker did not end $n more cycle(s)";
	return;
}

cycles_later(2);
is(scalar(heard($postgres, 'postgres')), 0, 'the worker\'s idle sweeps notify nothing');

# A sweep of 5 jobs in batches of 2 (three transactions): one notification
my @backlog = add_jobs($node, [ 101 .. 105 ]);
$node->poll_query_until('postgres',
	"SELECT count(*) = 5 FROM job WHERE status = 'FAILED' AND id >= '$backlog[0]' AND id <= '$backlog[4]'"
) or die 'the worker did not fail the 5 jobs';
cycles_later(2);
@heard = heard($postgres, 'postgres');
is(scalar(@heard), 1, 'a worker sweep of 5 jobs in batches of 2 sends one notification');
is_notification(
	\@heard,
	{
		database => 'postgres',
		source => 'worker',
		error_code => 'JobTimeout',
		reason => 'stalled',
		count => 5,
		ids => \@backlog
	},
	'listing all 5 jobs, with source worker');
is($heard[0][2], $worker, 'sent by the worker\'s process');

# set_conf($lines, $state): a reload, applied once the worker shows $state
sub set_conf
{
	my ($lines, $state) = @_;
	$node->append_conf('postgresql.conf', $lines);
	$node->reload;
	$node->poll_query_until('postgres', "SELECT state = '$state' FROM protea_reaper_status() WHERE database = current_database()")
	  or die "the worker did not become $state";
	return;
}

# protea_reaper.notify = off in the worker; enabled = off in the same
# reload shows when the worker has it
set_conf("protea_reaper.notify = off\nprotea_reaper.enabled = off\n", 'disabled');
my @unheard = add_jobs($node, [ 111, 112 ]);
set_conf("protea_reaper.enabled = on\n", 'idle');
ok(reaped_within($node, $unheard[1], 30), 'with notify off the worker still fails jobs');
ok(reaped_within($node, $unheard[0], 1), 'both of them');
cycles_later(2);
is(scalar(heard($postgres, 'postgres')), 0, 'with notify off the worker sends nothing');

# A cycle that fails after two batches committed: their 4 jobs stay
# failed, so listeners hear of them, once.  The trigger refuses a fifth
# failure of operation 'relay' while four are committed, so the third
# batch fails whatever the order in which the sweep takes the jobs.
set_conf("protea_reaper.enabled = off\n", 'disabled');
$node->safe_psql('postgres', q{
	CREATE FUNCTION relay_limit() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF (SELECT count(*) FROM public.job
		     WHERE operation = 'relay' AND status = 'FAILED') >= 4 THEN
			RAISE EXCEPTION 'relay limit reached';
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER relay_limit BEFORE UPDATE ON job FOR EACH ROW
		WHEN (NEW.operation = 'relay' AND NEW.status = 'FAILED')
		EXECUTE FUNCTION relay_limit();
});
my @relay = add_jobs($node, [ 201 .. 206 ], operation => 'relay');
my $offset = -s $node->logfile;
set_conf("protea_reaper.notify = on\nprotea_reaper.enabled = on\n", 'idle after error');
$node->wait_for_log(qr/Reaper cycle failed: relay limit reached/, $offset);
my @committed = failed_ids('postgres', "operation = 'relay'");
is(scalar(@committed), 4, 'the cycle failed after two batches of 2 committed');
cycles_later(2);
@heard = heard($postgres, 'postgres');
is(scalar(@heard), 1, 'the committed batches of a failed cycle send one notification');
is_notification(
	\@heard,
	{
		database => 'postgres',
		source => 'worker',
		error_code => 'JobTimeout',
		reason => 'stalled',
		count => 4,
		ids => \@committed
	},
	'naming the 4 jobs that stay failed, not the batch that rolled back');

# The next cycles fail in their first batch: nothing committed, nothing sent
cycles_later(2);
is(scalar(heard($postgres, 'postgres')), 0,
	'a failed cycle that committed nothing notifies nothing');

# Without the trigger, the next cycle fails the other 2, and says so
$node->safe_psql('postgres', 'DROP TRIGGER relay_limit ON job');
$node->poll_query_until('postgres',
	"SELECT count(*) = 6 FROM job WHERE operation = 'relay' AND status = 'FAILED'")
  or die 'the worker did not fail the last relay jobs';
cycles_later(2);
my %committed = map { $_ => 1 } @committed;
@heard = heard($postgres, 'postgres');
is(scalar(@heard), 1, 'the next cycle sends one notification');
is_notification(
	\@heard,
	{
		database => 'postgres',
		source => 'worker',
		error_code => 'JobTimeout',
		reason => 'stalled',
		count => 2,
		ids => [ grep { !$committed{$_} } @relay ]
	},
	'naming the 2 jobs it failed');

# SIGTERM while a cycle waits in its third batch, two batches committed:
# as the README says, a worker stopped in the middle of a sweep sends no
# notification (its 4 jobs stay failed, unannounced); the restarted worker
# names the jobs it fails.  The trigger holds the third batch on an
# advisory lock the test holds.
set_conf("protea_reaper.enabled = off\nprotea_reaper.lock_timeout = '5min'\n", 'disabled');
$node->safe_psql('postgres', q{
	CREATE FUNCTION hold_third_batch() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF (SELECT count(*) FROM public.job
		     WHERE operation = 'hold' AND status = 'FAILED') >= 4 THEN
			PERFORM pg_catalog.pg_advisory_xact_lock(4242);
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER hold_third_batch BEFORE UPDATE ON job FOR EACH ROW
		WHEN (NEW.operation = 'hold' AND NEW.status = 'FAILED')
		EXECUTE FUNCTION hold_third_batch();
});
my @hold = add_jobs($node, [ 301 .. 306 ], operation => 'hold');
my $holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(4242)');
$node->append_conf('postgresql.conf', "protea_reaper.enabled = on\n");
$node->reload;
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = $worker")
  or die 'the worker did not wait in its third batch';
my @before = failed_ids('postgres', "operation = 'hold'");
is(scalar(@before), 4, 'two batches of 2 committed before the third waits');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($worker)");
$holder->query_safe('SELECT pg_advisory_unlock(4242)');
$holder->quit;
my $restarted = wait_for_worker($node, $worker);
$node->poll_query_until('postgres',
	"SELECT count(*) = 6 FROM job WHERE operation = 'hold' AND status = 'FAILED'")
  or die 'the restarted worker did not fail the last hold jobs';
cycles_later(2);
my %before = map { $_ => 1 } @before;
@heard = heard($postgres, 'postgres');
is(scalar(@heard), 1, 'after SIGTERM mid-sweep, only the restarted worker notifies');
is_notification(
	\@heard,
	{
		database => 'postgres',
		source => 'worker',
		error_code => 'JobTimeout',
		reason => 'stalled',
		count => 2,
		ids => [ grep { !$before{$_} } @hold ]
	},
	'naming the 2 jobs it failed');
is($heard[0][2], $restarted, 'from its own process');

$postgres->quit;
$node->stop;
done_testing();
