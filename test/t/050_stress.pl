# 050_stress.pl: a bounded concurrent stress test of the reaper.
#
# A node with the worker preloaded (interval 1 s, timeout 3 s, stall 2 s)
# runs while pgbench clients behave like PROTEA's workers for a fixed time:
# they start jobs, emit job_events at random gaps (some longer than the
# stall window, some inside transactions held open), finish or cancel jobs
# with the application's guarded UPDATE (... WHERE status = 'RUNNING'), or
# abandon them; a few run manual sweeps beside the worker.  A client records
# an outcome in client_outcome only when its UPDATE changed a running row,
# in the same statement.  Afterwards, once every abandoned job has been
# reaped, SQL checks the invariants the reaper promises:
#
#   1. no job a client finished or cancelled was ever failed by the reaper;
#   2. every job.timeout event belongs to a job failed with JobTimeout, and
#      every such job has one;
#   3. no job has more than one job.timeout event;
#   4. no failed job had an event inside the stall window that had committed
#      before the reaping transaction began (its finished_at = the reaper's
#      now());
#   5. no job was failed before it had run for timeout_seconds;
# and that the reaper did reap (so the test can fail), with no failed cycle.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReaperTest;
use Test::More;
use Time::HiRes qw(time);

my $started = time;

my $timeout_s = 3;     # protea_reaper.timeout_seconds
my $stall_s   = 2;     # protea_reaper.stall_seconds
my $duration  = 25;    # pgbench -T
my $clients   = 16;

# pg_xact_commit_timestamp() is stamped before the commit becomes visible to
# other snapshots (before the WAL flush and the ProcArray update), so an
# event stamped a hair before the reaper's now() may still be invisible to
# the reaper's snapshot, which is what the sweep honours.  Invariant 4 is
# asserted with this much slack and the strict count is reported beside it.
my $visibility_slack = '50 ms';

my $node = reaper_node('stress', conf => qq{
protea_reaper.timeout_seconds = $timeout_s
protea_reaper.stall_seconds = $stall_s
track_commit_timestamp = on
max_connections = 40
log_statement = none
});
$node->start;
install_protea($node, extension => 0);
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION protea_reaper;
-- what the clients did: one row per UPDATE that changed a running job
CREATE TABLE client_outcome (
    job_id uuid NOT NULL,
    outcome text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
-- finishes and cancels that came too late: the UPDATE changed nothing
CREATE TABLE client_late (
    job_id uuid NOT NULL,
    outcome text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
});

# The worker must be up before the clients start (it finds the extension at
# its next cycle)
$node->poll_query_until('postgres',
	"SELECT pid IS NOT NULL FROM protea_reaper_status() WHERE database = current_database()")
  or BAIL_OUT('the reaper worker did not start');

# The application's guarded finish/cancel: record the outcome only when the
# UPDATE changed a running row, else record that it came too late.
sub guarded_end
{
	my ($status) = @_;
	return qq{WITH u AS (UPDATE job SET status = '$status', finished_at = now() WHERE id = ':job_id' AND status = 'RUNNING' RETURNING id), o AS (INSERT INTO client_outcome (job_id, outcome) SELECT id, '$status' FROM u RETURNING job_id) INSERT INTO client_late (job_id, outcome) SELECT ':job_id', '$status' WHERE NOT EXISTS (SELECT 1 FROM o);};
}
my $finish = guarded_end('SUCCEEDED');
my $cancel = guarded_end('CANCELLED');
my $start_job =
  q{INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags) VALUES (gen_random_uuid(), 'insert_proteins', 'stress', 'RUNNING', now(), now(), '{}', '{}', '{}') RETURNING id AS job_id \gset};
my $event = sub {
	return
	  qq{INSERT INTO job_event (job_id, ts, level, event, fields) VALUES (':job_id', now(), 'info', '$_[0]', '{}');};
};

# A worker: events in autocommit at random gaps, some longer than the stall
# window; then 55% finish, 20% cancel, 25% abandon the job.
my $worker_script = join "\n",
  '\set gap1 random(50, 1500)',
  '\set gap2 random(50, 3500)',
  '\set gap3 random(50, 2500)',
  '\set fate random(1, 100)',
  $start_job,
  $event->('job.started'),
  '\sleep :gap1 ms',
  $event->('job.progress'),
  '\sleep :gap2 ms',
  $event->('job.progress'),
  '\sleep :gap3 ms',
  '\if :fate <= 55',
  $finish,
  '\elif :fate <= 75',
  $cancel,
  '\endif', '';

# A worker that holds its transactions open: an event written long before it
# commits (ts is the transaction's start), and a finish or cancel holding the
# job's row lock for a while before it commits.
my $slow_script = join "\n",
  '\set gap1 random(50, 2500)',
  '\set hold1 random(50, 2500)',
  '\set gap2 random(50, 2000)',
  '\set hold2 random(50, 1500)',
  '\set fate random(1, 100)',
  $start_job,
  '\sleep :gap1 ms',
  'BEGIN;',
  $event->('job.progress'),
  '\sleep :hold1 ms',
  'COMMIT;',
  '\sleep :gap2 ms',
  'BEGIN;',
  '\if :fate <= 70',
  $finish,
  '\else',
  $cancel,
  '\endif',
  '\sleep :hold2 ms',
  'COMMIT;', '';

# A coordinator's batch: ten jobs that have run past the timeout already,
# heartbeats and then one finish or cancel for the whole batch, each about
# stall_seconds after the last, so the sweeps and the batch statements
# collide on many rows at once.  A multi-row statement may wait on a row a
# sweep holds, then finds it failed and leaves it.
my $batch_script = join "\n",
  '\set gap1 random(1500, 2500)',
  '\set gap2 random(1500, 2500)',
  '\set fate random(1, 100)',
  'SELECT gen_random_uuid() AS batch \gset',
  q{INSERT INTO job (id, operation, queue_name, status, created_at, started_at, payload, meta, tags) SELECT gen_random_uuid(), 'compute_embeddings', 'stress', 'RUNNING', now() - interval '1 min', now() - interval '1 min', '{}', jsonb_build_object('batch', ':batch'), '{}' FROM generate_series(1, 10);},
  q{INSERT INTO job_event (job_id, ts, level, event, fields) SELECT id, now(), 'info', 'job.started', '{}' FROM job WHERE meta->>'batch' = ':batch';},
  '\sleep :gap1 ms',
  q{INSERT INTO job_event (job_id, ts, level, event, fields) SELECT id, now(), 'info', 'job.progress', '{}' FROM job WHERE meta->>'batch' = ':batch';},
  '\sleep :gap2 ms',
  '\if :fate <= 60',
  guarded_batch_end('SUCCEEDED'),
  '\elif :fate <= 85',
  guarded_batch_end('CANCELLED'),
  '\endif', '';

sub guarded_batch_end
{
	my ($status) = @_;
	return qq{WITH u AS (UPDATE job SET status = '$status', finished_at = now() WHERE meta->>'batch' = ':batch' AND status = 'RUNNING' RETURNING id), o AS (INSERT INTO client_outcome (job_id, outcome) SELECT id, '$status' FROM u RETURNING job_id) INSERT INTO client_late (job_id, outcome) SELECT id, '$status' FROM job WHERE meta->>'batch' = ':batch' AND id NOT IN (SELECT job_id FROM o);};
}

# An operator's manual sweep racing the worker's
my $sweep_script = join "\n",
  'SELECT protea_reaper_run_once();',
  '\sleep 100 ms', '';

my $dir = $node->basedir;
my %scripts = (
	'worker.sql@5' => $worker_script,
	'slow.sql@3'   => $slow_script,
	'batch.sql@3'  => $batch_script,
	'sweep.sql@2'  => $sweep_script);
my @files;
for my $name (sort keys %scripts)
{
	(my $file = "$dir/$name") =~ s/\@\d+$//;
	append_to_file($file, $scripts{$name});
	(my $weight = $name) =~ s/^[^@]*//;
	push @files, '-f', "$file$weight";
}

my ($out, $err) = ('', '');
my @pgbench = (
	'pgbench', '-n', '-M', 'simple', '-c', $clients, '-j', 4,
	'-T', $duration, '-h', $node->host, '-p', $node->port, @files,
	'postgres');
note "running: @pgbench";
my $ok = IPC::Run::run(\@pgbench, '>', \$out, '2>', \$err,
	IPC::Run::timeout($duration + 60));
# pgbench counts a deadlock or serialization failure as a failed
# transaction without exiting non-zero: check its count too
ok($ok, 'pgbench exited without an error');
like($out, qr/^number of failed transactions: 0 /m,
	'no client transaction failed (no deadlock, no error)');
diag("pgbench stderr:\n$err") if $err ne '' || !$ok;
note $_ for grep { /transactions|tps/ } split /\n/, $out;

# Liveness: every job left running (abandoned, or cut off by the end of the
# run) is reaped within timeout + stall + interval
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM job WHERE status = 'RUNNING'"),
	'every job left running was reaped');

my $stall = "interval '$stall_s s'";
my %q = (
	started   => "SELECT count(*) FROM job",
	finished  => "SELECT count(*) FROM client_outcome WHERE outcome = 'SUCCEEDED'",
	cancelled => "SELECT count(*) FROM client_outcome WHERE outcome = 'CANCELLED'",
	too_late  => "SELECT count(*) FROM client_late",
	reaped    => "SELECT count(*) FROM job WHERE status = 'FAILED'",
	by_worker => "SELECT total_reaped FROM protea_reaper_status() WHERE database = current_database()",
	events    => "SELECT count(*) FROM job_event WHERE event <> 'job.timeout'",

	# 1. a job a client ended keeps the client's outcome, with no audit event
	overwritten => q{
SELECT count(*) FROM client_outcome c JOIN job j ON j.id = c.job_id
 WHERE j.status::text <> c.outcome OR j.error_code IS NOT NULL
    OR EXISTS (SELECT 1 FROM job_event e
                WHERE e.job_id = j.id AND e.event = 'job.timeout')},
	ended_twice => q{
SELECT count(*) FROM (SELECT job_id FROM client_outcome
                       GROUP BY job_id HAVING count(*) > 1) AS d},
	late_not_failed => q{
SELECT count(*) FROM client_late c JOIN job j ON j.id = c.job_id
 WHERE j.status <> 'FAILED' OR j.error_code IS DISTINCT FROM 'JobTimeout'},

	# 2. job.timeout events and failed jobs match one to one
	orphan_timeouts => q{
SELECT count(*) FROM job_event e JOIN job j ON j.id = e.job_id
 WHERE e.event = 'job.timeout'
   AND NOT (j.status = 'FAILED' AND j.error_code = 'JobTimeout'
            AND e.ts = j.finished_at AND e.level = 'error')},
	failed_without_audit => q{
SELECT count(*) FROM job j
 WHERE j.status = 'FAILED'
   AND NOT EXISTS (SELECT 1 FROM job_event e
                    WHERE e.job_id = j.id AND e.event = 'job.timeout')},

	# 3. at most one audit event per job
	double_audit => q{
SELECT count(*) FROM (SELECT job_id FROM job_event WHERE event = 'job.timeout'
                       GROUP BY job_id HAVING count(*) > 1) AS d},

	# 4. no failed job had a visible event inside the stall window
	live_reaped => qq{
SELECT count(*) FROM job j JOIN job_event e ON e.job_id = j.id
 WHERE j.status = 'FAILED' AND e.event <> 'job.timeout'
   AND pg_xact_commit_timestamp(e.xmin) < j.finished_at - interval '$visibility_slack'
   AND e.ts > j.finished_at - $stall},
	live_reaped_strict => qq{
SELECT count(*) FROM job j JOIN job_event e ON e.job_id = j.id
 WHERE j.status = 'FAILED' AND e.event <> 'job.timeout'
   AND pg_xact_commit_timestamp(e.xmin) < j.finished_at
   AND e.ts > j.finished_at - $stall},

	# (for the report) events that landed after their job was reaped
	events_after_reap => q{
SELECT count(*) FROM job j JOIN job_event e ON e.job_id = j.id
 WHERE j.status = 'FAILED' AND e.event <> 'job.timeout'
   AND pg_xact_commit_timestamp(e.xmin) > j.finished_at},

	# 5. never before the timeout
	reaped_young => qq{
SELECT count(*) FROM job
 WHERE status = 'FAILED' AND started_at > finished_at - interval '$timeout_s s'},
);
my %n = map { $_ => $node->safe_psql('postgres', $q{$_}) } keys %q;

my $log = slurp_file($node->logfile);
my $cycle_failures = () = $log =~ /Reaper cycle failed/g;

is($n{overwritten},     0, 'no job a client finished or cancelled was failed');
is($n{ended_twice},     0, 'no job was ended twice by clients');
is($n{late_not_failed}, 0, 'a finish refused as too late met a reaped job');
is($n{orphan_timeouts}, 0,
	'every job.timeout event belongs to a job failed with JobTimeout');
is($n{failed_without_audit}, 0, 'every failed job has a job.timeout event');
is($n{double_audit},         0, 'no job has two job.timeout events');
is($n{live_reaped}, 0,
	'no failed job had an event in the stall window committed before the sweep'
);
is($n{reaped_young},  0, 'no job was failed before timeout_seconds');
is($cycle_failures,   0, 'no reaper cycle failed');
cmp_ok($n{reaped},   '>', 0, 'the reaper failed jobs');
cmp_ok($n{finished}, '>', 0, 'clients finished jobs');

my $violations = 0;
$violations += $n{$_}
  for qw(overwritten ended_twice late_not_failed orphan_timeouts
  failed_without_audit double_audit live_reaped reaped_young);
diag(
	sprintf(
		"stress: %d clients for %d s (timeout %d s, stall %d s, interval 1 s): "
		  . "%d jobs started, %d finished, %d cancelled, %d reaped "
		  . "(%d by the worker, %d by manual sweeps); %d finishes/cancels came too late; "
		  . "%d events, %d after their job was reaped; "
		  . "invariant violations = %d (strict commit-timestamp check: %d); "
		  . "%.1f s",
		$clients,           $duration,
		$timeout_s,         $stall_s,
		$n{started},        $n{finished},
		$n{cancelled},      $n{reaped},
		$n{by_worker},      $n{reaped} - $n{by_worker},
		$n{too_late},       $n{events},
		$n{events_after_reap}, $violations,
		$n{live_reaped_strict}, time - $started));

$node->stop;
done_testing();
