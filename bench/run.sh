#!/usr/bin/env bash
# bench/run.sh: how much faster and lighter the in-server reaper is than a
# client-side reaper, in one run.
#
#   sudo bash bench/run.sh                          # PostgreSQL 15
#   sudo PG_MAJOR=17 PARTS="sweep mass" bash bench/run.sh
#
# PG_MAJOR picks the server as for test/run.sh (test/lib.sh: 17 and up run
# in their chroot, and bench/results comes back out).
# Installs what is missing, builds and installs the extension, starts a
# throwaway cluster (PostgreSQL's default settings, durability included; a
# free port; a temporary directory; stopped and removed on exit), loads a
# PROTEA-shaped data set and measures:
#   1. sweep latency of protea_reaper_run_once() (BEGIN; ...; ROLLBACK) at
#      10^4, 10^5, 10^6 finished jobs, nothing to reap and 200 to reap, with
#      protea_reaper.remember_alive on (the default) and off, back to back
#      and paced one per second;
#   2. the client-side reaper (bench/reaper_client.c, the old Python
#      reaper's statements) on the same data, and the ratio;
#   3. scaling in finished jobs and in running jobs (500..4000);
#   4. a mass reap of 100,000 stale jobs at batch_size 1000 and 10000: jobs/s
#      and WAL bytes per failed job, beside the write alone (the floor);
#   5. the background worker's CPU per idle cycle and its memory, beside the
#      client-side reaper's;
#   6. a pgbench workload's tps and p99 with the worker sweeping every second
#      vs disabled.
# and, as separately labelled variants: figures 1, 4 and 5 again with the
# index README.md recommends (job (started_at) INCLUDE (id, operation) WHERE status =
# 'RUNNING'), and with PL/pgSQL prototypes of the sweep shapes it proposes
# (bench/sql/proposed.sql; the extension itself is not changed).  Prints
# every table and writes them to bench/results/latest.md.
#
# Knobs (environment): RUNS (25), PACED_RUNS (20), MASS_RUNS (3),
# MASS_JOBS (100000), WATCH_SECONDS (65), PGBENCH_SECONDS (240, made a
# multiple of 4 blocks), PGBENCH_BLOCK (5), PGBENCH_CLIENTS (4), SHARED_BUFFERS (empty:
# PostgreSQL's default), SIZES ("10000 100000 1000000"), VARIANT (1: also
# measure the variants), BENCH_COMMIT (the report's label for the code
# measured; default git describe --dirty of the checkout), PARTS (all, or
# some of: sweep (figures 1-2, the idle sweep), scaling (3), mass (4),
# idle (5), interference (6); not all also turns VARIANT off).
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
[ "$PG_FROM" = chroot ] || PACKAGES="$PACKAGES libpq-dev"
BENCH_COMMIT=${BENCH_COMMIT:-$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '(no git)')}
ensure_server
if [ "$PG_FROM" = chroot ]; then
    rerun_in_chroot bench/run.sh RUNS PACED_RUNS MASS_RUNS MASS_JOBS WATCH_SECONDS \
        PGBENCH_SECONDS PGBENCH_BLOCK PGBENCH_CLIENTS SHARED_BUFFERS SIZES VARIANT \
        BENCH_COMMIT PARTS
    exit
fi

RUNS=${RUNS:-25}
PACED_RUNS=${PACED_RUNS:-20}
MASS_RUNS=${MASS_RUNS:-3}
MASS_JOBS=${MASS_JOBS:-100000}
WATCH_SECONDS=${WATCH_SECONDS:-65}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-240}
PGBENCH_BLOCK=${PGBENCH_BLOCK:-5}
# whole ABBA groups of four blocks only
PGBENCH_SECONDS=$(( (PGBENCH_SECONDS / (4 * PGBENCH_BLOCK)) * 4 * PGBENCH_BLOCK ))
[ "$PGBENCH_SECONDS" -ge $((4 * PGBENCH_BLOCK)) ] || PGBENCH_SECONDS=$((4 * PGBENCH_BLOCK))
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-4}
SHARED_BUFFERS=${SHARED_BUFFERS:-}
SIZES=${SIZES:-"10000 100000 1000000"}
VARIANT=${VARIANT:-1}
PARTS=${PARTS:-all}
[ "$PARTS" = all ] || VARIANT=0
# part NAME: whether PARTS asks for that part
part() { [ "$PARTS" = all ] || case " $PARTS " in *" $1 "*) true ;; *) false ;; esac; }
TIMEOUT_S=21600			# protea_reaper.timeout_seconds default
STALL_S=1800			# protea_reaper.stall_seconds default
IDLE_STALL_S=2592000	# 30 days: the 200 stale jobs count as alive, nothing to reap
# the index README.md recommends (created by the variants only)
RECOMMENDED_INDEX="ON job (started_at) INCLUDE (id, operation) WHERE status = 'RUNNING'"
RESULTS_DIR=$REPO/bench/results
BENCH_T0=$(date +%s)

build_and_install
make_workdir
CHILDREN=""
cleanup() {
    local p
    for p in $CHILDREN; do kill "$p" 2>/dev/null || true; done
    stop_clusters
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RAW=$WORKDIR/raw
REPORT=$WORKDIR/report.md
mkdir -p "$RAW" "$WORKDIR/pgbench" "$RESULTS_DIR"
chown "$RUN_AS" "$WORKDIR/pgbench"
: > "$REPORT"

# emit: a line of the report, on stdout and in the results file
emit() { printf '%s\n' "$*" | tee -a "$REPORT"; }
progress() { printf '\n==> [%4ds] %s\n' $(( $(date +%s) - BENCH_T0 )) "$*"; }

say "compiling the client-side reaper (bench/reaper_client.c)"
CLIENT=$WORKDIR/reaper_client
gcc -O2 -Wall -o "$CLIENT" "$REPO/bench/reaper_client.c" -I"$("$PG_CONFIG" --includedir)" -lpq

# -------------------------------------------------------------- the cluster
start_cluster bench "protea_reaper.interval_seconds = 1
protea_reaper.enabled = off${SHARED_BUFFERS:+
shared_buffers = '$SHARED_BUFFERS'}"

CONN="host=$WORKDIR port=$PORT dbname=bench user=postgres"
sql() { as_pg psql -h "$WORKDIR" -p "$PORT" -X -q -v ON_ERROR_STOP=1 -P pager=off -d bench "$@"; }
sqlv() { sql -At "$@"; }
sql -f "$WORKDIR/tree/test/protea_schema.sql"
sql -c "CREATE EXTENSION protea_reaper"
sql -c "CREATE EXTENSION pageinspect"	# bt_metap(): index depth, for the scaling figure
sql -f "$WORKDIR/tree/bench/sql/datagen.sql"
sql -f "$WORKDIR/tree/bench/sql/proposed.sql"

# ------------------------------------------------------------------ helpers
# stats: "median min max n" of column COL of FILE
stats() {
    awk -v c="${2:-1}" '{print $c}' "$1" | sort -g | awk '
        {v[NR] = $1}
        END {
            n = NR
            if (n == 0) { print "nan nan nan 0"; exit }
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf "%.3f %.3f %.3f %d\n", m, v[1], v[n], n
        }'
}
med() { stats "$1" "${2:-1}" | cut -d' ' -f1; }
mean() { awk -v c="${2:-1}" '{s += $c; n++} END {printf "%.3f\n", n ? s / n : 0}' "$1"; }
# fmt: "median [min-max]" from a stats line, with a printf format
fmt() { echo "$1" | awk -v f="${2:-%.2f}" '{printf f " [" f "–" f "]", $1, $2, $3}'; }
calc() { awk "BEGIN { printf \"${2:-%.2f}\", $1 }"; }
verdict() { awk "BEGIN { print ($1) ? \"PASS\" : \"MISS\" }"; }
# check that every line of FILE has column COL = WANT
check_col() {
    local bad
    bad=$(awk -v c="$2" -v w="$3" '$c != w' "$1" | wc -l)
    [ "$bad" -eq 0 ] || emit "WARNING: $(basename "$1"): $bad run(s) with column $2 != $3"
}

# Load the data set to N finished jobs.  Large steps drop PROTEA's secondary
# indexes, load in two parallel sessions and rebuild the very same indexes;
# FK triggers are skipped during the load (the rows are consistent by
# construction).
FINISHED=0
grow_to() {
    local n=$1 mid
    [ "$n" -le "$FINISHED" ] && return 0
    if [ $(( n - FINISHED )) -le 100000 ]; then
        sql -c "SET session_replication_role = replica" \
            -c "SELECT bench.add_finished($((FINISHED + 1)), $n)" >/dev/null
    else
        sql -c "DROP INDEX job_event_job_id_ts, job_event_event_ts, job_operation_created_at, job_status_created_at, job_created_at, job_parent_job_id"
        mid=$(( (FINISHED + n) / 2 ))
        sql -c "SET session_replication_role = replica" -c "SELECT bench.add_finished($((FINISHED + 1)), $mid)" >/dev/null &
        local p1=$!
        sql -c "SET session_replication_role = replica" -c "SELECT bench.add_finished($((mid + 1)), $n)" >/dev/null &
        local p2=$!
        wait $p1; wait $p2
        # PROTEA's index definitions, exactly as in test/protea_schema.sql
        sql -c "SET maintenance_work_mem = '1GB'" \
            -c "CREATE INDEX job_operation_created_at ON job (operation, created_at)" \
            -c "CREATE INDEX job_status_created_at ON job (status, created_at)" \
            -c "CREATE INDEX job_created_at ON job (created_at)" \
            -c "CREATE INDEX job_parent_job_id ON job (parent_job_id)" &
        p1=$!
        sql -c "SET maintenance_work_mem = '1GB'" \
            -c "CREATE INDEX job_event_job_id_ts ON job_event (job_id, ts)" \
            -c "CREATE INDEX job_event_event_ts ON job_event (event, ts)" &
        p2=$!
        wait $p1; wait $p2
    fi
    FINISHED=$n
    sql -c "VACUUM ANALYZE job, job_event"
}

shape() { sql -c "SELECT * FROM bench.shape()"; }

# EXPLAIN (ANALYZE, BUFFERS, WAL) of the sweep's statements, their text
# as the extension prepares them (protea_reaper_statements()), as generic plans
# (what the kept SPI plans become), in the order a sweep runs them, inside
# a rolled-back transaction after one unmeasured execution: candidates_sql
# (the whole of an idle sweep whose candidates are all known alive), then
# first_sql with nothing known (a session's first sweep, or remember_alive =
# off) and with every alive job known.  psql variables timeout,
# stall, batch.
EXPLAIN_SQL=$WORKDIR/explain.sql
{
    CAND_TEXT=$(sqlv -c "SELECT statement FROM protea_reaper_statements() WHERE name = 'candidates'")
    FIRST_TEXT=$(sqlv -c "SELECT statement FROM protea_reaper_statements() WHERE name = 'first_batch'")
    BATCH_TEXT=$(sqlv -c "SELECT statement FROM protea_reaper_statements() WHERE name = 'later_batch'")
    echo "SET plan_cache_mode = force_generic_plan;"
    echo "SET protea_reaper.stall_seconds = :stall;"
    # what known_alive.c would pass after an earlier sweep: every alive job
    # (and until when each is alive: its last event plus stall_seconds)
    echo "SELECT coalesce(array_agg(job_id), '{}') AS known_ids, coalesce(array_agg(last_event_ts), '{}') AS known_ts, coalesce(array_agg(last_event_ts + make_interval(secs => :stall)), '{}') AS known_until FROM protea_reaper_running_jobs() WHERE verdict = 'alive' \\gset"
    # $1 timeout, $2 stall, $3 max_runtime (0: no cap), $4 the bound (the
    # timeout, with no policy rows and no cap), $5 the batch's limit
    echo "PREPARE candidates_sql(int, int, int, int) AS $CAND_TEXT;"
    echo "PREPARE first_sql(int, int, int, int, int, uuid[], timestamptz[], timestamptz[], boolean) AS $FIRST_TEXT;"
    echo "PREPARE batch_sql(int, int, int, int, int) AS $BATCH_TEXT;"
    POLICY_ARGS=":timeout, :stall, 0, :timeout"
    ARGS="($POLICY_ARGS, :batch"
    # label, EXECUTE: in the order a sweep runs them ($9 false: the live
    # jobs' log lines are not written, as with log_skipped off)
    EXPLAINED=(candidates_sql "candidates_sql($POLICY_ARGS)"
               first_sql "first_sql$ARGS, '{}', '{}', '{}', false)"
               first_sql_known "first_sql$ARGS, :'known_ids', :'known_ts', :'known_until', false)"
               batch_sql "batch_sql$ARGS)")
    echo "BEGIN;"
    echo '\o /dev/null'
    echo "SAVEPOINT warm;"
    for ((i = 0; i < ${#EXPLAINED[@]}; i += 2)); do echo "EXECUTE ${EXPLAINED[i + 1]};"; done
    echo "ROLLBACK TO SAVEPOINT warm;"
    echo '\o'
    for ((i = 0; i < ${#EXPLAINED[@]}; i += 2)); do
        echo "\\echo '--- ${EXPLAINED[i]}'"
        echo "EXPLAIN (ANALYZE, BUFFERS, WAL) EXECUTE ${EXPLAINED[i + 1]};"
    done
    echo "ROLLBACK;"
} > "$EXPLAIN_SQL"
chmod 644 "$EXPLAIN_SQL"
# explain FILE STALL BATCH: the above on the current data, kept with the raw
# results, plus the depth of the indexes the sweep descends
explain() {
    sql -v timeout=$TIMEOUT_S -v stall="$2" -v batch="$3" -f "$EXPLAIN_SQL" > "$1" 2>&1 || true
    sqlv -F' ' -c "SELECT 'btree levels: job_event_job_id_ts', (bt_metap('job_event_job_id_ts')).level + 1, 'job_status_created_at', (bt_metap('job_status_created_at')).level + 1" >> "$1" 2>&1 || true
}
# explain_summary FILE: "levels name:buffers:ms ..." (top node of each statement)
explain_summary() {
    awk '/^--- / {s = $2; order[++n] = s}
         /Buffers: shared/ && s != "" && !seen[s]++ {
             match($0, /hit=[0-9]+/); h = substr($0, RSTART + 4, RLENGTH - 4); r = 0
             if (match($0, /read=[0-9]+/)) r = substr($0, RSTART + 5, RLENGTH - 5); buf[s] = h + r}
         /Execution Time/ {split($0, x, ": "); ms[s] = x[2] + 0}
         /^btree levels/ {lv = $4}
         END {printf "%s", lv; for (i = 1; i <= n; i++) printf " %s:%s:%.2f", order[i], buf[order[i]], ms[order[i]]; print ""}' "$1"
}

# settle: a CHECKPOINT, then wait (up to 60 s) until no autovacuum worker
# runs, so that a series starts on a quiet server
settle() {
    sql -c "CHECKPOINT"
    for _ in $(seq 1 60); do
        [ "$(sqlv -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && return 0
        sleep 1
    done
}

# qseries FILE RUNS QUERY [SETUP]: BEGIN; QUERY; ROLLBACK per run; QUERY
# returns (server_ms, reaped, wal_bytes), so FILE has the columns of the
# inserver mode: round-trip ms, server ms, reaped, WAL bytes
qseries() {
    "$CLIENT" "$CONN" query "$2" "${4:-}" "$3" > "$1"
}
# duel DIR CASE RUNS STALL QUERY: run_once() today and a prototype QUERY
# interleaved on two connections; today_CASE.txt, prop_CASE.txt (round trip,
# server ms, reaped, WAL) and speedup_CASE.txt (today ÷ prototype, server ms)
duel() {
    "$CLIENT" "$CONN" duel "$3" "SET protea_reaper.stall_seconds = $4" "$RUN_ONCE" "" "$5" > "$1/duel_$2.txt"
    cut -d' ' -f1-4 "$1/duel_$2.txt" > "$1/today_$2.txt"
    cut -d' ' -f5-8 "$1/duel_$2.txt" > "$1/prop_$2.txt"
    awk '{printf "%.3f\n", $2 / $6}' "$1/duel_$2.txt" > "$1/speedup_$2.txt"
}
proposed() {	# stall batch: the prototype's query for bench.measure
    echo "SELECT server_ms, reaped, wal_bytes FROM bench.measure('SELECT reaped FROM bench.sweep_proposed($TIMEOUT_S, $1, $2)')"
}
RUN_ONCE="SELECT server_ms, reaped, wal_bytes FROM bench.timed_run_once()"
NO_MEMORY="SET protea_reaper.remember_alive = off"
# memduel CASE RUNS STALL: run_once() with remember_alive off and on,
# interleaved on two connections; off_CASE.txt, on_CASE.txt (round trip,
# server ms, reaped, WAL)
memduel() {
    "$CLIENT" "$CONN" duel "$2" "SET protea_reaper.stall_seconds = $3; $NO_MEMORY" "$RUN_ONCE" \
        "SET protea_reaper.stall_seconds = $3" "$RUN_ONCE" > "$RAW/duel_$1.txt"
    cut -d' ' -f1-4 "$RAW/duel_$1.txt" > "$RAW/off_$1.txt"
    cut -d' ' -f5-8 "$RAW/duel_$1.txt" > "$RAW/on_$1.txt"
}

# The four sweep series on the current data: in-server and client, nothing
# to reap and 200 (10 % of the running jobs) to reap.  TAG names the files.
# The in-server session sweeps again and again, so from its second sweep
# on it remembers the alive jobs, as the worker does from its second
# cycle; with a fifth argument, the same again with remember_alive = off
# (every job looked up, as in a session's first sweep), as nmTAG.
sweep_series() {
    local tag=$1 stale=$2 cands=$3 t setup
    settle
    sql -c "SELECT bench.refresh_alive()" >/dev/null
    for t in "$tag" ${4:+nm$tag}; do
        [ "$t" = "$tag" ] && setup="" || setup=$NO_MEMORY
        pair "$RAW" idle "$t" $IDLE_STALL_S "$setup"
        pair "$RAW" reap "$t" $STALL_S "$setup"
        check_col "$RAW/in_idle_$t.txt" 3 0
        check_col "$RAW/in_reap_$t.txt" 3 "$stale"
        check_col "$RAW/cl_idle_$t.txt" 3 0
        check_col "$RAW/cl_reap_$t.txt" 3 "$stale"
        check_col "$RAW/cl_idle_$t.txt" 2 "$cands"
    done
}

# pair DIR CASE TAG STALL [IN_SETUP]: in-server and client runs interleaved
# (one of each per run, on two connections); split into in_CASE_TAG.txt
# (round trip, server ms, reaped, WAL) and cl_CASE_TAG.txt (ms, candidates,
# failed); ratio_CASE_TAG.txt has client ÷ in-server round trip per run
pair() {
    "$CLIENT" "$CONN" pair "$RUNS" $TIMEOUT_S "$4" ${5:+"$5"} > "$1/pair_$2_$3.txt"
    cut -d' ' -f1-4 "$1/pair_$2_$3.txt" > "$1/in_$2_$3.txt"
    cut -d' ' -f5-7 "$1/pair_$2_$3.txt" > "$1/cl_$2_$3.txt"
    awk '{printf "%.3f\n", $5 / $1}' "$1/pair_$2_$3.txt" > "$1/ratio_$2_$3.txt"
}

# One row of the sweep table
sweep_rows() {
    local tag=$1 label=$2 c
    for c in idle reap; do
        local in_srv in_rt cl ratio what
        in_srv=$(stats "$RAW/in_${c}_$tag.txt" 2)
        in_rt=$(stats "$RAW/in_${c}_$tag.txt" 1)
        cl=$(stats "$RAW/cl_${c}_$tag.txt" 1)
        ratio=$(fmt "$(stats "$RAW/ratio_${c}_$tag.txt")" %.1f)
        [ "$c" = idle ] && what="nothing to reap" || what="$(head -1 "$RAW/in_reap_$tag.txt" | cut -d' ' -f3) to reap"
        emit "| $label | $what | $(fmt "$in_srv") | $(fmt "$in_rt") | $(fmt "$cl" %.1f) | $ratio |"
    done
}

# Mass reap: RUNS_N rolled-back run_once() calls at batch size B over the
# mass set; a CHECKPOINT before each (so each run pays the same full-page
# images) and a VACUUM after (so each starts from the same table state).
mass_series() {	# batch tag query [setup]
    local b=$1 tag=$2 q=$3 r
    : > "$RAW/mass_${b}_$tag.txt"
    for r in $(seq 1 "$MASS_RUNS"); do
        settle
        REAPER_CLIENT_WARMUP=0 "$CLIENT" "$CONN" query 1 \
            "SET protea_reaper.batch_size = $b; SET protea_reaper.stall_seconds = $STALL_S${4:+; $4}" \
            "$q" >> "$RAW/mass_${b}_$tag.txt"
        sql -c "VACUUM job, job_event"
    done
    check_col "$RAW/mass_${b}_$tag.txt" 3 $((MASS_JOBS + 200))
}

mass_rows() {
    local tag=$1 label=$2 b
    for b in 1000 10000; do
        local f=$RAW/mass_${b}_$tag.txt n
        n=$(head -1 "$f" | cut -d' ' -f3)
        # jobs/s per run = failed / server seconds
        awk -v n="$n" '{printf "%.1f\n", n / ($2 / 1000)}' "$f" > "$f.rate"
        awk -v n="$n" '{printf "%.1f\n", $4 / n}' "$f" > "$f.wal"
        emit "| $label | $b | $n | $(stats "$f" 1 | cut -d' ' -f4) | $(fmt "$(stats "$f" 2 | awk '{print $1/1000, $2/1000, $3/1000}')" %.2f) | $(fmt "$(stats "$f.rate")" %.0f) | $(fmt "$(stats "$f.wal")" %.0f) |"
    done
}

smaps() {	# "Rss Pss Private Pss_Shmem RssShmem" in kB of a process
    { cat "/proc/$1/smaps_rollup"; grep '^RssShmem:' "/proc/$1/status"; } |
    awk '/^Rss:/{r=$2} /^Pss:/{p=$2} /^Private_(Clean|Dirty):/{v+=$2} /^Pss_Shmem:/{s=$2} /^RssShmem:/{h=$2}
         END {printf "%d %d %d %d %d\n", r, p, v, s, h}'
}
mb() { calc "$1 / 1024" %.1f; }

set_worker() {	# enabled, stall_seconds
    sql -c "ALTER SYSTEM SET protea_reaper.enabled = $1" \
        -c "ALTER SYSTEM SET protea_reaper.stall_seconds = $2" \
        -c "SELECT pg_reload_conf()" >/dev/null
}

# ================================================================== figures
progress "loading: $(echo "$SIZES" | awk '{print $1}') finished jobs + the running pool"
sql -c "SET session_replication_role = replica" -c "SELECT bench.add_running(1, 4000, 2000)" >/dev/null
for n in $SIZES; do
    progress "growing to $n finished jobs"
    grow_to "$n"
    settle
    shape
    part sweep || continue
    progress "sweep latency at $n finished jobs ($RUNS runs per series)"
    sweep_series "f$n" 200 500 both
    explain "$RAW/explain_idle_f$n.txt" $IDLE_STALL_S 1000
    explain "$RAW/explain_reap_f$n.txt" $STALL_S 1000
done
LAST=$FINISHED

if part sweep; then
progress "paced sweeps (one per second, as the worker runs them), remember_alive off vs on: $PACED_RUNS runs"
REAPER_CLIENT_PACE_MS=1000 memduel paced "$PACED_RUNS" $IDLE_STALL_S
fi

if part scaling; then
progress "scaling in running jobs at $LAST finished"
for r in 500 1000 2000 4000; do
    sql -c "SELECT bench.set_running($r)" -c "VACUUM ANALYZE job" >/dev/null
    settle
    sql -c "SELECT bench.refresh_alive()" >/dev/null
    shape
    pair "$RAW" idle "r$r" $IDLE_STALL_S
    mv "$RAW/in_idle_r$r.txt" "$RAW/run_idle_$r.txt"; mv "$RAW/cl_idle_r$r.txt" "$RAW/run_clidle_$r.txt"
    pair "$RAW" idle "nmr$r" $IDLE_STALL_S "$NO_MEMORY"
    mv "$RAW/in_idle_nmr$r.txt" "$RAW/run_idle_nm_$r.txt"
    "$CLIENT" "$CONN" inserver "$RUNS" "SET protea_reaper.stall_seconds = $STALL_S" > "$RAW/run_reap_$r.txt"
    check_col "$RAW/run_reap_$r.txt" 3 $((r / 10))
done
sql -c "SELECT bench.set_running(2000)" -c "VACUUM ANALYZE job" >/dev/null
fi

if [ "$VARIANT" = 1 ]; then
    progress "variant: the recommended partial index, sweep latency at $LAST finished"
    sql -c "CREATE INDEX bench_job_running_started_at $RECOMMENDED_INDEX" \
        -c "ANALYZE job"
    sweep_series "idx$LAST" 200 500
    progress "variant: partial index, paced 1/s, remember_alive off vs on: $PACED_RUNS runs"
    REAPER_CLIENT_PACE_MS=1000 memduel pacedidx "$PACED_RUNS" $IDLE_STALL_S
    sql -c "DROP INDEX bench_job_running_started_at"

    progress "variant: classify once + fail by id (PL/pgSQL prototype), sweep latency at $LAST finished"
    settle
    sql -c "SELECT bench.refresh_alive()" >/dev/null
    duel "$RAW" idle "$RUNS" $IDLE_STALL_S "$(proposed $IDLE_STALL_S 1000)"
    duel "$RAW" reap "$RUNS" $STALL_S "$(proposed $STALL_S 1000)"
    check_col "$RAW/prop_idle.txt" 3 0; check_col "$RAW/prop_reap.txt" 3 200
    progress "paced sweeps (one per second, as the worker runs them): $PACED_RUNS runs each"
    REAPER_CLIENT_PACE_MS=1000 duel "$RAW" paced "$PACED_RUNS" $IDLE_STALL_S "$(proposed $IDLE_STALL_S 1000)"
fi

if part idle; then
progress "worker idle cost: enabled, interval 1 s, nothing to reap; $WATCH_SECONDS s"
set_worker on $IDLE_STALL_S
for _ in $(seq 1 30); do
    [ "$(sqlv -c "SELECT coalesce(cycles, 0) > 2 FROM protea_reaper_status() WHERE database = current_database()")" = t ] && break
    sleep 1
done
# watch_cpu FILE: per-cycle CPU (ms) from schedstat between consecutive
# samples into FILE_cpu, first 2 dropped; prints "cycles ticks ms": cycles
# watched, utime+stime ticks from /proc/pid/stat over them, and schedstat's
# CPU time over them per cycle (every cycle counted, slow ones too)
watch_cpu() {
    awk 'NR > 1 && $1 > pc { if (NR > 3) printf "%.4f\n", ($2 - pn) / ($1 - pc) / 1e6 } {pc = $1; pn = $2}' \
        "$1" > "${1%.txt}_cpu.txt"
    awk 'NR == 2 {c0 = $1; n0 = $2; t0 = $3} END {printf "%d %d %.3f\n", $1 - c0, $3 - t0, ($2 - n0) / ($1 - c0) / 1e6}' "$1"
}
# watch TAG: the worker watched for WATCH_SECONDS into watch_TAG.txt; sets
# W_CYCLES, W_TICKS, W_SCHED_MS (schedstat ms per cycle) and W_STAT_MS
# (/proc/pid/stat ms per cycle, 10-ms ticks)
watch_worker() {
    "$CLIENT" "$CONN" watch "$WATCH_SECONDS" > "$RAW/watch_$1.txt"
    read -r W_CYCLES W_TICKS W_SCHED_MS <<<"$(watch_cpu "$RAW/watch_$1.txt")"
    W_STAT_MS=$(calc "$W_TICKS * 1000 / $CLK_TCK / $W_CYCLES" %.3f)
}
CLK_TCK=$(getconf CLK_TCK)
watch_worker plain
WPID=$(sqlv -c "SELECT pid FROM protea_reaper_status() WHERE database = current_database()")
W_MEM=$(smaps "$WPID")
W_STATUS=$(sqlv -F' ' -c "SELECT cycles, failed_cycles, last_reaped, last_alive, state FROM protea_reaper_status() WHERE database = current_database()")
awk 'NR > 2 {print $4}' "$RAW/watch_plain.txt" > "$RAW/watch_cycle_ms.txt"
WATCHED="plain"
W_PLAIN_CYCLES=$W_CYCLES
WATCH_LABEL_plain="PROTEA's indexes"
WATCH_ROW_plain="$W_CYCLES $W_TICKS $W_STAT_MS $W_SCHED_MS"
if [ "$VARIANT" = 1 ]; then
    progress "variant: worker idle cost with the recommended index; $WATCH_SECONDS s, twice"
    sql -c "CREATE INDEX bench_job_running_started_at $RECOMMENDED_INDEX" \
        -c "VACUUM ANALYZE job"
    sleep 3
    watch_worker idx
    WATCHED="$WATCHED idx"
    WATCH_LABEL_idx="+ the recommended index, running jobs' pages all-visible (just vacuumed)"
    WATCH_ROW_idx="$W_CYCLES $W_TICKS $W_STAT_MS $W_SCHED_MS"
    # a PROTEA worker updates its job's row (progress): such pages are not
    # all-visible until the next vacuum, and the index-only scan reads them
    sql -c "UPDATE job SET progress_current = progress_current WHERE status = 'RUNNING'" >/dev/null
    sleep 3
    watch_worker idxdirty
    WATCHED="$WATCHED idxdirty"
    WATCH_LABEL_idxdirty="+ the recommended index, every running job's row just updated (no page all-visible)"
    WATCH_ROW_idxdirty="$W_CYCLES $W_TICKS $W_STAT_MS $W_SCHED_MS"
    sql -c "DROP INDEX bench_job_running_started_at"
fi

# hold FILE TIMEOUT STALL: the client in hold mode (it waits on its stdin);
# sets C_MEM and B_MEM, the smaps of the client process and of its backend
mkfifo "$WORKDIR/hold.in"
hold() {
    local pid cpid bpid
    "$CLIENT" "$CONN" hold "$2" "$3" < "$WORKDIR/hold.in" > "$1" &
    pid=$!
    CHILDREN="$CHILDREN $pid"
    exec 7> "$WORKDIR/hold.in"
    for _ in $(seq 1 100); do grep -q READY "$1" && break; sleep 0.1; done
    read -r _ cpid bpid _ <<<"$(cat "$1")"
    C_MEM=$(smaps "$cpid")
    B_MEM=$(smaps "$bpid")
    exec 7>&-
    wait "$pid" || true
}
# a plain backend that ran SELECT 1, for scale; then the client-side
# reaper after one sweep
hold "$RAW/hold0.txt" 0 0
P_MEM=$B_MEM
hold "$RAW/hold.txt" $TIMEOUT_S $STALL_S
fi

if part interference; then
progress "interference: one pgbench run of ${PGBENCH_SECONDS}s, $PGBENCH_CLIENTS clients, worker toggled every ${PGBENCH_BLOCK}s"
# One long pgbench run while the worker is switched on and off in blocks of
# PGBENCH_BLOCK seconds, in the order off on on off, off on on off, ...:
# both modes then share the same server state (checkpoints, table growth,
# caches), and the ABBA order cancels a steady drift.  Each transaction is
# given to the block its end time falls in; the first second of a block
# (the switch) is left out.
set_worker off $IDLE_STALL_S
sql -c "CHECKPOINT"
# Blocks start on a fixed schedule from T0 (the switch and the status
# queries take part of a block, never shift the next one); pgbench starts a
# second before T0 and outlasts the last block, and what it runs outside
# the blocks counts for none.
NBLOCKS=$((PGBENCH_SECONDS / PGBENCH_BLOCK))
as_pg pgbench -h "$WORKDIR" -p "$PORT" -n -c "$PGBENCH_CLIENTS" -j 2 -T "$((PGBENCH_SECONDS + 10))" \
    -f "$WORKDIR/tree/bench/pgbench/event.sql@8" -f "$WORKDIR/tree/bench/pgbench/complete.sql@2" \
    --log --log-prefix="$WORKDIR/pgbench/tx" bench > "$RAW/pgbench.out" 2>&1 &
PGB_PID=$!
CHILDREN="$CHILDREN $PGB_PID"
T0=$(calc "$(date +%s.%N) + 1" %.3f)
: > "$RAW/pgbench_blocks.txt"
cycles_now() { sqlv -c "SELECT coalesce(cycles, 0) FROM protea_reaper_status() WHERE database = current_database()"; }
for ((b = 0; b <= NBLOCKS; b++)); do
    wait_s=$(calc "$T0 + $b * $PGBENCH_BLOCK - $(date +%s.%N)" %.3f)
    awk "BEGIN { exit !($wait_s > 0) }" && sleep "$wait_s"
    [ "$b" -eq "$NBLOCKS" ] && { c_end=$(cycles_now); break; }
    case $((b % 4)) in 1 | 2) mode=on ;; *) mode=off ;; esac
    set_worker $mode $IDLE_STALL_S
    # block mode start_epoch worker_cycles_so_far
    echo "$b $mode $(calc "$T0 + $b * $PGBENCH_BLOCK" %.3f) $(cycles_now)" >> "$RAW/pgbench_blocks.txt"
done
# worker cycles per block: from the count at its start to the next one's
awk -v e="$c_end" '{l[NR] = $0; c[NR] = $4} END {for (i = 1; i <= NR; i++) {split(l[i], f, " "); print f[1], f[2], f[3], (i < NR ? c[i + 1] : e) - c[i]}}' \
    "$RAW/pgbench_blocks.txt" > "$RAW/pgbench_blocks.tmp" && mv "$RAW/pgbench_blocks.tmp" "$RAW/pgbench_blocks.txt"
c_on=$(awk '$2 == "on" {s += $4} END {print s + 0}' "$RAW/pgbench_blocks.txt")
wait "$PGB_PID" || true
set_worker off $STALL_S
# every transaction as "block latency_ms" (log: client tx latency_us
# script epoch_s epoch_us), outside the first second of its block
cat "$WORKDIR"/pgbench/tx.* | awk -v blk="$PGBENCH_BLOCK" -v bf="$RAW/pgbench_blocks.txt" '
    BEGIN { while ((getline l < bf) > 0) { split(l, f, " "); start[f[1]] = f[3]; nb++ } }
    {
        t = $5 + $6 / 1e6
        for (b = nb - 1; b >= 0 && start[b] > t; b--) ;
        if (b >= 0 && t - start[b] >= 1 && t - start[b] < blk) print b, $3 / 1000
    }' > "$RAW/pgbench_tx.txt"
# p99/p50 (ms) and count of a list of latencies
lat_stats() {
    sort -g | awk '{v[NR] = $1} END {printf "%.3f %.3f %d\n", v[int(NR * 0.99)], v[int(NR * 0.5)], NR}'
}
: > "$RAW/pgbench_bstats.txt"
while read -r b mode _ cyc; do
    # block mode cycles p99 p50 n
    echo "$b $mode $cyc $(awk -v b="$b" '$1 == b {print $2}' "$RAW/pgbench_tx.txt" | lat_stats)" >> "$RAW/pgbench_bstats.txt"
done < "$RAW/pgbench_blocks.txt"
for mode in off on; do
    awk -v m=$mode 'NR == FNR {if ($2 == m) keep[$1] = 1; next} keep[$1] {print $2}' \
        "$RAW/pgbench_blocks.txt" "$RAW/pgbench_tx.txt" | lat_stats > "$RAW/p99_$mode.txt"
    # transactions per second of each block of this mode
    awk -v m=$mode -v s=$((PGBENCH_BLOCK - 1)) '$2 == m {printf "%.1f\n", $6 / s}' \
        "$RAW/pgbench_bstats.txt" > "$RAW/tps_$mode.txt"
done
# per ABBA group of four blocks: on vs off (p99 of the two blocks each, tps), in %
awk '{g = int($1 / 4); if ($2 == "on") {on_p[g] += $4; on_n[g] += $6} else {off_p[g] += $4; off_n[g] += $6}}
     END {for (g in on_p) if (g in off_p) printf "%.2f %.2f\n", (on_p[g] / off_p[g] - 1) * 100, (on_n[g] / off_n[g] - 1) * 100}' \
    "$RAW/pgbench_bstats.txt" > "$RAW/pgbench_pairs.txt"
fi

if part mass; then
progress "mass reap: $MASS_JOBS stale jobs, $MASS_RUNS runs per batch size"
sql -c "SET session_replication_role = replica" -c "SELECT bench.add_mass($MASS_JOBS)" \
    -c "VACUUM ANALYZE job, job_event" >/dev/null
shape
explain "$RAW/explain_mass_1000.txt" $STALL_S 1000
for b in 1000 10000; do mass_series $b main "$RUN_ONCE"; done
progress "mass reap, its parts: without log lines; the write alone, with and without row locks"
for b in 1000 10000; do
    mass_series $b nolog "$RUN_ONCE" "SET log_min_messages = fatal"
    mass_series $b locked "SELECT server_ms, reaped, wal_bytes FROM bench.write_floor($TIMEOUT_S, $STALL_S, $b, true)"
    mass_series $b floor "SELECT server_ms, reaped, wal_bytes FROM bench.write_floor($TIMEOUT_S, $STALL_S, $b)"
done
if [ "$VARIANT" = 1 ]; then
    progress "variant: mass reap, classify once + fail by id (PL/pgSQL prototype)"
    for b in 1000 10000; do mass_series $b prop "$(proposed $STALL_S $b)"; done
    progress "variant: mass reap with the recommended partial index"
    sql -c "CREATE INDEX bench_job_running_started_at $RECOMMENDED_INDEX" \
        -c "ANALYZE job"
    explain "$RAW/explain_mass_1000_idx.txt" $STALL_S 1000
    for b in 1000 10000; do mass_series $b idx "$RUN_ONCE"; done
fi
fi

# =================================================================== report
progress "done in $(( $(date +%s) - BENCH_T0 )) s; results"
echo
emit "# protea_reaper benchmark"
emit ""
emit "$(date -u '+%Y-%m-%d %H:%M UTC'), protea_reaper $BENCH_COMMIT, $(sqlv -c "SELECT version()" | cut -d' ' -f1-2), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo) RAM, shared_buffers $(sqlv -c "SHOW shared_buffers"), jit $(sqlv -c "SHOW jit"); other settings PostgreSQL's defaults (fsync, synchronous_commit, full_page_writes on)."
emit "Data: PROTEA's schema and indexes (test/protea_schema.sql); 10 job_events per job; running jobs 10 % stale, 15 % old but alive, 75 % young. Timings are median [min–max] of $RUNS runs after 6 warm-up runs, in ms unless stated."
emit ""
[ "$PARTS" = all ] || { emit "Parts run: $PARTS (PARTS=\"$PARTS\")."; emit ""; }
if part sweep; then
emit "## 1–2. Sweep latency: in-server vs the client-side reaper (2,000 running jobs)"
emit ""
emit "In-server: \`BEGIN; SELECT protea_reaper_run_once(); ROLLBACK\` — *server* = clock_timestamp() around the call inside the server (bench.timed_run_once), *round trip* = that SELECT timed by a C client over the unix socket. Client-side: bench/reaper_client.c, a separate process over the same socket issuing the old Python reaper's statements (1 candidates query, 1 \`SELECT max(ts)\` per candidate, 1 UPDATE + 1 INSERT per failed job, then ROLLBACK instead of COMMIT), timed from the first query to the last reply. The two run interleaved, one of each per run on two connections (alternating which goes first), so both see the same moment of the machine; the ratio is client ÷ in-server round trip, run by run. *Nothing to reap* runs the same data with stall_seconds = 30 days, so the 200 stale jobs count as alive: the same 500 candidates are examined, nothing is written. The in-server session sweeps again and again, so (like the worker from its second cycle) it remembers the jobs an earlier sweep found alive and does not look their last event up again (protea_reaper.remember_alive, the default); the *remember_alive off* rows are the same sweep looking every candidate up, as a session's first sweep does."
emit ""
emit "| finished jobs | case | in-server (server) | in-server (round trip) | client-side reaper | client ÷ in-server (per run) |"
emit "| ---: | --- | ---: | ---: | ---: | ---: |"
for n in $SIZES; do
    sweep_rows "f$n" "$(printf "%'d" "$n")"
    sweep_rows "nmf$n" "$(printf "%'d" "$n"), remember_alive off"
done
[ "$VARIANT" = 1 ] && sweep_rows "idx$LAST" "$(printf "%'d" "$LAST") + partial index (variant)"
emit ""
emit "Paced, one sweep per second as the worker runs them (cold CPU caches), nothing to reap, $(printf "%'d" "$LAST") finished, server ms, $PACED_RUNS runs, the two settings interleaved on two connections:"
emit ""
emit "| indexes | remember_alive off | remember_alive on (default) | off ÷ on, medians |"
emit "| --- | ---: | ---: | ---: |"
emit "| PROTEA's | $(fmt "$(stats "$RAW/off_paced.txt" 2)") | $(fmt "$(stats "$RAW/on_paced.txt" 2)") | $(calc "$(med "$RAW/off_paced.txt" 2) / $(med "$RAW/on_paced.txt" 2)" %.1f)× |"
[ "$VARIANT" = 1 ] && emit "| + partial index (variant) | $(fmt "$(stats "$RAW/off_pacedidx.txt" 2)") | $(fmt "$(stats "$RAW/on_pacedidx.txt" 2)") | $(calc "$(med "$RAW/off_pacedidx.txt" 2) / $(med "$RAW/on_pacedidx.txt" 2)" %.1f)× |"
emit ""
if [ "$VARIANT" = 1 ]; then
    emit "### Variants: proposed sweep shapes (PL/pgSQL prototypes, bench/sql/proposed.sql), $(printf "%'d" "$LAST") finished"
    emit ""
    emit "*Today* = protea_reaper_run_once() as built from this checkout. *Classify once + fail by id*: one statement classifies every candidate (one last-event lookup each) and yields the alive jobs and the stale ids; the stale ids are then failed batch_size at a time by primary key, each batch re-checked under FOR UPDATE SKIP LOCKED. Each prototype runs interleaved with today (one of each per run, two connections); *paced* = one run per second, as the worker runs it (cold CPU caches), $PACED_RUNS runs. Server ms, median [min–max]; ratios per run."
    emit ""
    emit "| sweep | nothing to reap | 200 to reap | nothing to reap, paced 1/s |"
    emit "| --- | ---: | ---: | ---: |"
    emit "| today | $(fmt "$(stats "$RAW/today_idle.txt" 2)") | $(fmt "$(stats "$RAW/today_reap.txt" 2)") | $(fmt "$(stats "$RAW/today_paced.txt" 2)") |"
    emit "| classify once + fail by id | $(fmt "$(stats "$RAW/prop_idle.txt" 2)") | $(fmt "$(stats "$RAW/prop_reap.txt" 2)") | $(fmt "$(stats "$RAW/prop_paced.txt" 2)") |"
    emit "| today ÷ classify once, per run | $(fmt "$(stats "$RAW/speedup_idle.txt")") | $(fmt "$(stats "$RAW/speedup_reap.txt")") | $(fmt "$(stats "$RAW/speedup_paced.txt")") |"
    emit "| client ÷ classify once (median client ÷ today × median today ÷ it) | $(calc "$(med "$RAW/ratio_idle_f$LAST.txt") * $(med "$RAW/speedup_idle.txt")" %.1f)× | $(calc "$(med "$RAW/ratio_reap_f$LAST.txt") * $(med "$RAW/speedup_reap.txt")" %.1f)× | |"
    emit ""
fi
fi
if part sweep && part scaling; then
emit "## 3. Scaling"
emit ""
FIRST=$(echo "$SIZES" | awk '{print $1}')
for t in f nmf; do
    [ $t = f ] && what="" || what=", remember_alive off"
    emit "Finished jobs$what: idle sweep (server) $(med "$RAW/in_idle_$t$FIRST.txt" 2) ms at $(printf "%'d" "$FIRST") → $(med "$RAW/in_idle_$t$LAST.txt" 2) ms at $(printf "%'d" "$LAST"): ×$(calc "$(med "$RAW/in_idle_$t$LAST.txt" 2) / $(med "$RAW/in_idle_$t$FIRST.txt" 2)"); with 200 to reap ×$(calc "$(med "$RAW/in_reap_$t$LAST.txt" 2) / $(med "$RAW/in_reap_$t$FIRST.txt" 2)")."
    emit ""
done
emit ""
emit "The work itself, from EXPLAIN (ANALYZE, BUFFERS) of sweep.c's statements (text taken from src/sweep.c, generic plans, nothing to reap; a sweep first runs candidates_sql and stops there when every job it lists is known alive, as from the second idle sweep on; otherwise it runs first_sql: with no job known alive (first_sql) or with the alive ones known (first_sql_known)) — buffers touched do not depend on timing noise:"
emit ""
emit "| finished jobs | job_event (job_id, ts) btree levels | statement: buffers, EXPLAIN ANALYZE ms |"
emit "| ---: | ---: | --- |"
for n in $SIZES; do
    read -r lv rest <<<"$(explain_summary "$RAW/explain_idle_f$n.txt")"
    emit "| $(printf "%'d" "$n") | $lv | $(echo "$rest" | awk '{for (i = 1; i <= NF; i++) {split($i, a, ":"); printf "%s%s: %s buffers, %s ms", (i > 1 ? "; " : ""), a[1], a[2], a[3]}}') |"
done
emit ""
emit "Running jobs, at $(printf "%'d" "$LAST") finished (10 % stale, 15 % alive, 75 % young):"
emit ""
emit "| running jobs | candidates past timeout | in-server, nothing to reap (server) | µs per running job | in-server, remember_alive off | in-server, 10 % to reap (server) | client-side, nothing to reap |"
emit "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for r in 500 1000 2000 4000; do
    emit "| $r | $((r / 4)) | $(fmt "$(stats "$RAW/run_idle_$r.txt" 2)") | $(calc "$(med "$RAW/run_idle_$r.txt" 2) * 1000 / $r" %.2f) | $(fmt "$(stats "$RAW/run_idle_nm_$r.txt" 2)") | $(fmt "$(stats "$RAW/run_reap_$r.txt" 2)") | $(fmt "$(stats "$RAW/run_clidle_$r.txt" 1)" %.1f) |"
done
fi
if part mass; then
emit ""
emit "## 4. Mass reap: $(printf "%'d" "$MASS_JOBS") stale jobs at once"
emit ""
emit "\`SET protea_reaper.batch_size = B; BEGIN; SELECT protea_reaper_run_once(); ROLLBACK\` on $(printf "%'d" "$LAST") finished + 2,000 running + $(printf "%'d" "$MASS_JOBS") stale jobs (so $((MASS_JOBS + 200)) are failed per run). $MASS_RUNS runs per row (each takes seconds), CHECKPOINT before and VACUUM after each, so every run starts alike and pays the full-page images of a first touch after a checkpoint. WAL = pg_current_wal_insert_lsn() difference around the call, per failed job."
emit ""
emit "| indexes | batch_size | jobs failed | runs | time (s) | jobs/s | WAL bytes / failed job |"
emit "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
mass_rows main "PROTEA's"
mass_rows nolog "PROTEA's, the same sweep without its per-job log lines (log_min_messages = fatal)"
mass_rows locked "PROTEA's, the write alone with its row locks: FOR UPDATE SKIP LOCKED, UPDATE + audit INSERT by primary key, no search (bench.write_floor(..., true))"
mass_rows floor "PROTEA's, the write alone: UPDATE + audit INSERT by primary key, no search, no lock (bench.write_floor, the floor under any reaper)"
if [ "$VARIANT" = 1 ]; then
    mass_rows prop "PROTEA's, classify once + fail by id (prototype)"
    mass_rows idx "+ partial index (variant)"
fi
fi
if part idle; then
emit ""
emit "## 5. Idle cost: the worker vs the client-side reaper"
emit ""
emit "Worker: interval_seconds = 1, nothing to reap (stall_seconds 30 days: 500 candidates examined per cycle), each watch ${WATCH_SECONDS} s; status after: cycles, failed, last_reaped, last_alive, state = $W_STATUS."
emit ""
emit "CPU per cycle: *schedstat* = the worker's CPU time from /proc/pid/schedstat (ns) over the watch ÷ cycles, every cycle counted; *per cycle* = the same between consecutive cycles, median [min–max]; *stat* = utime+stime from /proc/pid/stat (ticks of $((1000 / CLK_TCK)) ms) ÷ cycles."
emit ""
emit "| worker, nothing to reap | cycles | CPU per cycle, schedstat (ms) | per cycle, median [min–max] (ms) | stat (ms) |"
emit "| --- | ---: | ---: | ---: | ---: |"
for w in $WATCHED; do
    label=WATCH_LABEL_$w; row=WATCH_ROW_$w
    read -r c t st sc <<<"${!row}"
    emit "| ${!label} | $c | $sc | $(fmt "$(stats "$RAW/watch_${w}_cpu.txt")" %.3f) | $st ($t ticks) |"
done
emit ""
emit "The worker's own last_cycle_ms (wall, PROTEA's indexes): $(fmt "$(stats "$RAW/watch_cycle_ms.txt")" %.3f) ms."
emit ""
emit "Memory (/proc/pid/smaps_rollup, MB). The client-side reaper is a client process *plus* the server backend serving its connection; the worker is one process. Rss counts the shared memory pages a process touched (shared_buffers, the lock tables, ...: *Rss of shared memory*, from /proc/pid/status) and the postgres binary's pages; Pss shares them out among the processes that map them; Private is the process's own."
emit ""
emit "| process | Rss | Rss of shared memory | Rss without shared memory | Pss | Private | Pss of shared memory |"
emit "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
memrow() { local a b c d e; read -r a b c d e <<<"$2"; emit "| $1 | $(mb "$a") | $(mb "$e") | $(mb $((a - e))) | $(mb "$b") | $(mb "$c") | $(mb "$d") |"; }
memrow "protea_reaper worker (after $W_PLAIN_CYCLES+ cycles)" "$W_MEM"
memrow "client-side reaper: C client process (after one sweep)" "$C_MEM"
memrow "client-side reaper: its server backend" "$B_MEM"
read -r a b c d e <<<"$C_MEM"; read -r a2 b2 c2 d2 e2 <<<"$B_MEM"
memrow "client-side reaper: total" "$((a + a2)) $((b + b2)) $((c + c2)) $((d + d2)) $((e + e2))"
memrow "for scale: a backend that ran SELECT 1" "$P_MEM"
fi
if part interference; then
emit ""
emit "## 6. Interference with a PROTEA workload"
emit ""
NGROUPS=$(wc -l < "$RAW/pgbench_pairs.txt")
emit "pgbench, $PGBENCH_CLIENTS clients, 80 % \`event.sql\` (a progress event for a running job), 20 % \`complete.sql\` (a job created, progressed and completed in one transaction), one ${PGBENCH_SECONDS}-s run during which the worker is switched off and on every ${PGBENCH_BLOCK} s in the order off on on off (${NGROUPS} such groups), so that both modes share one server state; each transaction (--log) counts for the block it ended in, the first second of each block left out. p99/p50 pooled per mode; tps = transactions per second of each block; *per group* = (on ÷ off − 1) within each off-on-on-off group, its mean and median [min–max] over the groups. Worker cycles during the on blocks: $c_on."
emit ""
emit "| worker | tps per block | transactions | p50 latency (ms) | p99 latency (ms) |"
emit "| --- | ---: | ---: | ---: | ---: |"
for mode in off on; do
    read -r p99 p50 ntx <<<"$(cat "$RAW/p99_$mode.txt")"
    [ $mode = on ] && label="sweeping every 1 s" || label="enabled = off"
    emit "| $label | $(fmt "$(stats "$RAW/tps_$mode.txt")" %.0f) | $ntx | $p50 | $p99 |"
done
emit ""
emit "Per group, worker on vs off: p99 mean $(calc "$(mean "$RAW/pgbench_pairs.txt" 1)" %+.1f) %, median $(fmt "$(stats "$RAW/pgbench_pairs.txt" 1)" %+.1f) %; tps mean $(calc "$(mean "$RAW/pgbench_pairs.txt" 2)" %+.1f) %, median $(fmt "$(stats "$RAW/pgbench_pairs.txt" 2)" %+.1f) %. Per block (block, mode, worker cycles, p99 ms, p50 ms, transactions): bench/results/raw/pgbench_bstats.txt."

fi

# ------------------------------------------------------------------ summary
if [ "$PARTS" = all ]; then
IDLE6=$(med "$RAW/in_idle_f$LAST.txt" 2)
R_IDLE=$(calc "$(med "$RAW/ratio_idle_f$LAST.txt")" %.1f)
R_REAP=$(calc "$(med "$RAW/ratio_reap_f$LAST.txt")" %.1f)
GROW=$(calc "$(med "$RAW/in_idle_f$LAST.txt" 2) / $(med "$RAW/in_idle_f$FIRST.txt" 2)")
M1=$(med "$RAW/mass_1000_main.txt.rate"); M10=$(med "$RAW/mass_10000_main.txt.rate")
WRSS=$(mb "$(echo "$W_MEM" | cut -d' ' -f1)")
WOWN=$(mb "$(echo "$W_MEM" | awk '{print $1 - $5}')")
P99OFF=$(cut -d' ' -f1 "$RAW/p99_off.txt"); P99ON=$(cut -d' ' -f1 "$RAW/p99_on.txt")
P99D=$(calc "($P99ON / $P99OFF - 1) * 100" %+.1f)
P99PAIR=$(calc "$(mean "$RAW/pgbench_pairs.txt" 1)" %+.1f)
TPSPAIR=$(calc "$(mean "$RAW/pgbench_pairs.txt" 2)" %+.1f)
emit ""
emit "## Summary against the targets (PROTEA's indexes only)"
emit ""
emit "| figure | measured | target | verdict |"
emit "| --- | ---: | ---: | --- |"
emit "| idle sweep at $(printf "%'d" "$LAST") finished (server) | $IDLE6 ms | ≤ 5 ms | $(verdict "$IDLE6 <= 5") |"
emit "| client ÷ in-server, nothing to reap ($(printf "%'d" "$LAST")) | ${R_IDLE}× | ≥ 30× | $(verdict "$R_IDLE >= 30") |"
emit "| client ÷ in-server, 200 to reap ($(printf "%'d" "$LAST")) | ${R_REAP}× | ≥ 30× | $(verdict "$R_REAP >= 30") |"
emit "| the same with remember_alive off: nothing / 200 to reap | $(calc "$(med "$RAW/ratio_idle_nmf$LAST.txt")" %.1f)× / $(calc "$(med "$RAW/ratio_reap_nmf$LAST.txt")" %.1f)× | (reported) | |"
emit "| idle sweep $(printf "%'d" "$FIRST") → $(printf "%'d" "$LAST") finished | ×$GROW | ≤ ×1.2 | $(verdict "$GROW <= 1.2") |"
emit "| mass reap, batch_size 1000 | $(printf "%'.0f" "$M1") jobs/s | ≥ 20,000 jobs/s | $(verdict "$M1 >= 20000") |"
emit "| mass reap, batch_size 10000 | $(printf "%'.0f" "$M10") jobs/s | ≥ 20,000 jobs/s | $(verdict "$M10 >= 20000") |"
mrate() { printf "%'.0f / %'.0f" "$(med "$RAW/mass_1000_$1.txt.rate")" "$(med "$RAW/mass_10000_$1.txt.rate")"; }
emit "| its parts, batch 1000 / 10000: the sweep without log lines | $(mrate nolog) jobs/s | (reported) | |"
emit "| the write alone with the row locks, no search | $(mrate locked) jobs/s | (reported) | |"
emit "| the write alone, no search, no lock (floor) | $(mrate floor) jobs/s | (reported) | |"
for w in $WATCHED; do
    label=WATCH_LABEL_$w; row=WATCH_ROW_$w
    read -r _ _ _ sc <<<"${!row}"
    emit "| worker CPU per idle cycle (schedstat), ${!label} | $sc ms | ≤ 1 ms | $(verdict "$sc <= 1") |"
done
emit "| worker RSS | $WRSS MB | ≤ 16 MB | $(verdict "$WRSS <= 16") |"
emit "| worker RSS without shared memory | $WOWN MB | (≤ 16 MB) | $(verdict "$WOWN <= 16") |"
emit "| pgbench p99, worker on vs off, pooled over one interleaved run ($P99OFF → $P99ON ms) | ${P99D} % | within 5 % | $(verdict "$P99D <= 5") |"
emit "| the same per off-on-on-off group: mean over $NGROUPS groups (p99 / tps) | ${P99PAIR} % / ${TPSPAIR} % | (reported) | |"
if [ "$VARIANT" = 1 ]; then
    emit ""
    emit "Classify once + fail by id (prototype): idle sweep $(med "$RAW/prop_idle.txt" 2) ms vs $(med "$RAW/today_idle.txt" 2) ms today (paced 1/s: $(med "$RAW/prop_paced.txt" 2) vs $(med "$RAW/today_paced.txt" 2) ms), client ÷ in-server $(calc "$(med "$RAW/ratio_idle_f$LAST.txt") * $(med "$RAW/speedup_idle.txt")" %.1f)× (nothing to reap) and $(calc "$(med "$RAW/ratio_reap_f$LAST.txt") * $(med "$RAW/speedup_reap.txt")" %.1f)× (200 to reap), mass reap $(printf "%'.0f" "$(med "$RAW/mass_1000_prop.txt.rate")") jobs/s (batch 1000) and $(printf "%'.0f" "$(med "$RAW/mass_10000_prop.txt.rate")") jobs/s (batch 10000)."
    emit ""
    emit "With the recommended partial index (variant): idle sweep $(med "$RAW/in_idle_idx$LAST.txt" 2) ms, client ÷ in-server $(calc "$(med "$RAW/ratio_idle_idx$LAST.txt")" %.1f)× (nothing to reap) and $(calc "$(med "$RAW/ratio_reap_idx$LAST.txt")" %.1f)× (200 to reap), mass reap $(printf "%'.0f" "$(med "$RAW/mass_1000_idx.txt.rate")") jobs/s (batch 1000) and $(printf "%'.0f" "$(med "$RAW/mass_10000_idx.txt.rate")") jobs/s (batch 10000)."
fi
else
    emit ""
    emit "## Summary (PROTEA's indexes only; parts: $PARTS)"
    emit ""
    emit "| figure | measured | target | verdict |"
    emit "| --- | ---: | ---: | --- |"
    if part sweep; then
        IDLE6=$(med "$RAW/in_idle_f$LAST.txt" 2)
        emit "| idle sweep at $(printf "%'d" "$LAST") finished (server) | $IDLE6 ms | ≤ 5 ms | $(verdict "$IDLE6 <= 5") |"
        emit "| client ÷ in-server, nothing to reap / 200 to reap ($(printf "%'d" "$LAST")) | $(calc "$(med "$RAW/ratio_idle_f$LAST.txt")" %.1f)× / $(calc "$(med "$RAW/ratio_reap_f$LAST.txt")" %.1f)× | ≥ 30× | |"
    fi
    if part mass; then
        M1=$(med "$RAW/mass_1000_main.txt.rate"); M10=$(med "$RAW/mass_10000_main.txt.rate")
        emit "| mass reap, batch_size 1000 | $(printf "%'.0f" "$M1") jobs/s | ≥ 20,000 jobs/s | $(verdict "$M1 >= 20000") |"
        emit "| mass reap, batch_size 10000 | $(printf "%'.0f" "$M10") jobs/s | ≥ 20,000 jobs/s | $(verdict "$M10 >= 20000") |"
    fi
fi
emit ""
emit "EXPLAIN (ANALYZE, BUFFERS) of sweep.c's statements at each size and for the mass reap: bench/results/raw/explain_*.txt."
emit ""
emit "Total bench time: $(( $(date +%s) - BENCH_T0 )) s."

cp "$REPORT" "$RESULTS_DIR/latest.md"
rm -rf "$RESULTS_DIR/raw"
mkdir -p "$RESULTS_DIR/raw"
cp "$RAW"/*.txt "$RESULTS_DIR/raw/" 2>/dev/null || true
echo
echo "Results written to $RESULTS_DIR/latest.md (raw numbers and EXPLAIN (ANALYZE, BUFFERS) of the sweep statements in $RESULTS_DIR/raw/)."
