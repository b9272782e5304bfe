#!/usr/bin/env bash
# bench/ab_policy.sh: an older build of the extension beside this one, A/B,
# interleaved, on two throwaway clusters at once: the idle sweep and the
# mass reap, with and without protea_reaper_policy rows (runs H and I of
# bench/RESULTS.md: 1.0 beside 1.1; run I with the rows written into the
# statements as literals, c741da9).
#
#   git worktree add /work/wt-bench10 1a0cc25       # 1.0
#   sudo OLD=/work/wt-bench10 bash bench/ab_policy.sh
#
# OLD (required) is a checkout of the older version; NEW (default: this
# checkout) the newer one, which must have the policy table and write its
# rows into the statements' SQL (c741da9 on): its judging statements take
# $1 timeout, $2 stall, $3 max_runtime, $4 bound (int4; first_batch then
# $5 limit, $6 uuid[], $7 timestamptz[], $8 bool), and their text, from
# protea_reaper_statements(), changes with the rows.  Each is built
# and installed into its own PostgreSQL (PROTEA_CACHE OLD_CACHE / NEW_CACHE,
# default /var/tmp/benchA and /var/tmp/benchB; PG_MAJOR 16: each a copy of
# test/lib.sh's source build, e.g. cp -a /var/tmp/protea_reaper/pg16
# /var/tmp/benchA/pg16), so that neither touches the host's server nor the
# other's.  Each side gets a cluster as test/lib.sh makes it (PostgreSQL's
# default settings, protea_reaper.enabled = off: no worker sweeps), PROTEA's
# schema and bench/sql/datagen.sql's data: FINISHED finished jobs, 2,000
# running (500 past the timeout).  Then:
#
#   idle  nothing to reap (stall_seconds 30 days): bench.timed_run_once()
#         server time, WARMUP unmeasured then RUNS measured sweeps, each in
#         BEGIN .. ROLLBACK, one psql session per series, remember_alive on
#         and off; variants old, new without policy rows (none), new with 5
#         rows (rows: 3 operations of the data with other thresholds that
#         change no verdict, one absent operation exempt, one absent with
#         its own timeout) and new with the same 5 rows where the absent
#         operation's timeout is 1 h (short: the bound $4 drops to 1 h);
#         ROUNDS rounds, the order of the variants rotated and reversed from
#         round to round; with PROTEA's indexes only, with 1.0's recommended
#         index (started_at) INCLUDE (id) on both, then with 1.1's
#         (started_at) INCLUDE (id, operation) on the new side (the old side
#         keeps 1.0's).
#   explain  EXPLAIN (ANALYZE, BUFFERS) of the candidates and first_batch
#         statements, generic plans as the extension keeps them (the text
#         protea_reaper_statements() gives with the rows in force, the
#         parameters as policy.c computes them), new side with 1.0's index
#         and with 1.1's, without rows, with the 5 rows and with the bound
#         1 h rows; old side with 1.0's index.
#   anatomy  where an idle difference comes from: the candidates statement
#         alone (EXPLAIN (ANALYZE, TIMING OFF) Execution Time; old side, and
#         on the new side 1.0's text as the control, 1.1's without rows,
#         with the 5 rows and with the bound 1 h rows), and
#         protea_reaper_run_once() in a database with no job (what a sweep
#         costs besides its statements).
#   mass  MASS_JOBS stale jobs added (bench.add_mass), PROTEA's indexes
#         only; batch_size 1000 and 10000, MASS_RUNS runs of each of old,
#         none, rows (rows whose stall keeps every verdict), interleaved;
#         each run after a CHECKPOINT and a refresh of the alive jobs'
#         events, BEGIN .. ROLLBACK, VACUUM after; jobs/s = failed ÷ server
#         time.
#
# Knobs: OLD, NEW, OLD_CACHE, NEW_CACHE, PG_MAJOR (16), FINISHED (100000),
# RUNS (30), WARMUP (6), ROUNDS (6), MASS_JOBS (100000), MASS_RUNS (3),
# PARTS ("idle explain anatomy mass"), OUT (raw files and report; default a new
# /tmp/ab_policy.XXXXXX), KEEP (1: leave the clusters' directories).
# Run as root (the servers run as postgres).  Everything it prints is also
# in $OUT/report.md.  Keep the whole run under an hour: young running jobs
# (started < 5 h before the load) pass the 6 h timeout an hour after it.
set -euo pipefail
NEW=${NEW:-$(cd "$(dirname "$0")/.." && pwd)}
OLD=${OLD:?OLD=path of the older checkout (e.g. a worktree of 1a0cc25)}
OLD_CACHE=${OLD_CACHE:-/var/tmp/benchA}
NEW_CACHE=${NEW_CACHE:-/var/tmp/benchB}
export PG_MAJOR=${PG_MAJOR:-16}
FINISHED=${FINISHED:-100000}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-6}
ROUNDS=${ROUNDS:-6}
MASS_JOBS=${MASS_JOBS:-100000}
MASS_RUNS=${MASS_RUNS:-3}
PARTS=${PARTS:-"idle explain anatomy mass"}
OUT=${OUT:-$(mktemp -d /tmp/ab_policy.XXXXXX)}
mkdir -p "$OUT"
[ "$(id -u)" -eq 0 ] || { echo "run as root (the servers run as postgres)" >&2; exit 2; }
part() { case " $PARTS " in *" $1 "*) true ;; *) false ;; esac; }
T0=$(date +%s)
progress() { printf '==> [%4ds] %s\n' $(( $(date +%s) - T0 )) "$*" >&2; }
REPORT=$OUT/report.md
: > "$REPORT"
emit() { printf '%s\n' "$*" | tee -a "$REPORT"; }

# The per-operation rows.  Idle (stall_seconds 30 days): the data's jobs
# past the timeout started 7-48 h ago with their last event 5 min-5 h ago,
# the young ones started < 5 h ago; a timeout between 6 h and 7 h and a stall
# of days keeps every verdict.  Mass (stall_seconds 1800): stale jobs are
# silent for >= 1 h, alive ones were refreshed just before.
POLICY_COLS="protea_reaper_policy (operation, timeout_seconds, stall_seconds, max_runtime_seconds, exempt)"
IDLE_ROWS="INSERT INTO $POLICY_COLS VALUES
 ('insert_proteins', NULL, 1728000, NULL, false),
 ('compute_embeddings', 23400, NULL, NULL, false),
 ('predict_go_terms', NULL, 3456000, 2592000, false),
 ('align_sequences', NULL, NULL, NULL, true),
 ('export_results', 43200, 7200, NULL, false)"
SHORT_ROWS=${IDLE_ROWS/"('export_results', 43200, 7200,"/"('export_results', 3600, 1800,"}
MASS_ROWS="INSERT INTO $POLICY_COLS VALUES
 ('insert_proteins', NULL, 2400, NULL, false),
 ('compute_embeddings', 23400, 3000, NULL, false),
 ('predict_go_terms', NULL, 1200, 2592000, false),
 ('align_sequences', NULL, NULL, NULL, true),
 ('export_results', 43200, 7200, NULL, false)"
# The bound $4 of the rows in force, as policy.c computes it (settings:
# timeout 6 h, no cap)
BOUND_SQL="(SELECT least(21600, min(coalesce(timeout_seconds, 21600)) FILTER (WHERE NOT exempt),
                 min(nullif(coalesce(max_runtime_seconds, 0), 0)) FILTER (WHERE NOT exempt))
          FROM protea_reaper_policy)"
INDEX10="CREATE INDEX job_running_started_at ON job (started_at) INCLUDE (id) WHERE status = 'RUNNING'"
INDEX11="CREATE INDEX job_running_started_at ON job (started_at) INCLUDE (id, operation) WHERE status = 'RUNNING'"

# ------------------------------------------------------------ the two sides
# setup_side TREE CACHE: build and install TREE into CACHE's server, start a
# cluster with TREE's test/lib.sh; prints "WORKDIR PORT BIN"
setup_side() {
    (
        export PROTEA_CACHE=$2
        . "$1/test/lib.sh"
        ensure_server >&2 && build_and_install >&2 && make_workdir &&
            start_cluster bench "protea_reaper.enabled = off" >&2 &&
            echo "$WORKDIR $PORT $PG_BIN"
    )
}
cleanup() {
    local s wd
    for s in old new; do
        wd=WD_$s
        [ -n "${!wd:-}" ] && [ -d "${!wd}" ] || continue
        bin=BIN_$s
        (cd / && runuser -u postgres -- "${!bin}/pg_ctl" -D "${!wd}/data" -m immediate stop >/dev/null 2>&1) || true
        [ -n "${KEEP:-}" ] || rm -rf "${!wd}"
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

progress "building $OLD into $OLD_CACHE and $NEW into $NEW_CACHE (PostgreSQL $PG_MAJOR)"
read -r WD_old PORT_old BIN_old <<<"$(setup_side "$OLD" "$OLD_CACHE")"
read -r WD_new PORT_new BIN_new <<<"$(setup_side "$NEW" "$NEW_CACHE")"
[ -n "$PORT_old" ] && [ -n "$PORT_new" ] || { echo "a cluster did not start" >&2; exit 1; }

# q SIDE psql-args...: psql on that side's cluster, as postgres
q() {
    local s=$1 wd port bin
    shift
    wd=WD_$s; port=PORT_$s; bin=BIN_$s
    (cd "${!wd}" && runuser -u postgres -- "${!bin}/psql" -h "${!wd}" -p "${!port}" \
        -X -q -v ON_ERROR_STOP=1 -P pager=off -d "${DB:-bench}" "$@")
}
side_of() { [ "$1" = old ] && echo old || echo new; }

load_side() {
    q "$1" -f "$(eval echo "\$WD_$1")/tree/test/protea_schema.sql" >/dev/null
    q "$1" -c "CREATE EXTENSION protea_reaper"
    q "$1" -f "$(eval echo "\$WD_$1")/tree/bench/sql/datagen.sql" >/dev/null
    q "$1" -c "SET session_replication_role = replica" -c "SELECT bench.add_finished(1, $FINISHED)" >/dev/null
    q "$1" -c "SET session_replication_role = replica" -c "SELECT bench.add_running(1, 4000, 2000)" >/dev/null
    q "$1" -c "VACUUM ANALYZE" >/dev/null
}
progress "loading $FINISHED finished jobs + 2,000 running on both clusters"
load_side old & p1=$!
load_side new & p2=$!
wait $p1; wait $p2
T_LOADED=$(date +%s)
for s in old new; do
    emit "$s: $(q $s -At -c "SELECT extversion FROM pg_extension WHERE extname = 'protea_reaper'") on $(q $s -At -c "SHOW server_version"); shape (finished running stale alive young events): $(q $s -At -F' ' -c "SELECT * FROM bench.shape()")"
done
emit ""

# set_policy SQL: the new side's policy rows are exactly those SQL inserts
set_policy() { q new -c "TRUNCATE protea_reaper_policy" ${1:+-c "$1"}; }
# settle SIDE: a CHECKPOINT, then wait (<= 60 s) for autovacuum to finish
settle() {
    q "$1" -c "CHECKPOINT"
    for _ in $(seq 1 60); do
        [ "$(q "$1" -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && return 0
        sleep 1
    done
}
# stats FILE [COL]: "median min max n"
stats() {
    awk -v c="${2:-1}" '{print $c}' "$1" | sort -g | awk '
        {v[NR] = $1}
        END {
            n = NR
            if (n == 0) { print "nan nan nan 0"; exit }
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf "%.4f %.4f %.4f %d\n", m, v[1], v[n], n
        }'
}
med() { stats "$@" | cut -d' ' -f1; }
# order R ITEMS...: the items rotated by R, reversed on even rounds
order() {
    local r=$1 n i out=()
    shift
    n=$#
    local items=("$@")
    for ((i = 0; i < n; i++)); do out+=("${items[(r + i) % n]}"); done
    if [ $((r % 2)) = 0 ]; then
        for ((i = n - 1; i >= 0; i--)); do printf '%s ' "${out[i]}"; done
    else
        printf '%s ' "${out[@]}"
    fi
}

# ------------------------------------------------------------------- idle
# idle_series VARIANT MEM FILE: one psql session, WARMUP + RUNS sweeps;
# FILE gets "server_ms reaped" of the measured ones
idle_series() {
    local side
    side=$(side_of "$1")
    case $1 in rows) set_policy "$IDLE_ROWS" ;; short) set_policy "$SHORT_ROWS" ;; esac
    {
        echo "SET protea_reaper.stall_seconds = '30d'; SET protea_reaper.remember_alive = $2;"
        for _ in $(seq 1 $((WARMUP + RUNS))); do
            echo "BEGIN; SELECT server_ms, reaped FROM bench.timed_run_once(); ROLLBACK;"
        done
    } | q "$side" -At -F' ' | tail -n "$RUNS" > "$3"
    case $1 in rows | short) set_policy "" ;; esac
    if awk '$2 != 0 {bad = 1} END {exit !bad}' "$3"; then
        echo "WARNING: $3: a sweep failed jobs" | tee -a "$REPORT" >&2
    fi
}
VARIANTS="old none rows short"
# idle_phase PHASE: ROUNDS rounds of every variant, memory on and off
idle_phase() {
    local ph=$1 mem r v
    for mem in on off; do
        for r in $(seq 1 "$ROUNDS"); do
            for v in $(order "$r" $VARIANTS); do
                idle_series "$v" "$mem" "$OUT/idle_${ph}_${mem}_${v}_r$r.txt"
                med "$OUT/idle_${ph}_${mem}_${v}_r$r.txt" >> "$OUT/idle_${ph}_${mem}_${v}.med"
            done
            # this round's ratio of each new variant to old
            for v in none rows short; do
                awk -v a="$(med "$OUT/idle_${ph}_${mem}_${v}_r$r.txt")" -v b="$(med "$OUT/idle_${ph}_${mem}_old_r$r.txt")" \
                    'BEGIN {printf "%.4f\n", a / b}' >> "$OUT/idle_${ph}_${mem}_${v}.ratio"
            done
        done
    done
}
set_index() {	# SIDE SQL-or-empty
    q "$1" -c "DROP INDEX IF EXISTS job_running_started_at" ${2:+-c "$2"} -c "VACUUM ANALYZE job" 2>/dev/null
}
if part idle; then
    for ph in protea idx10 idx11; do
        case $ph in
            protea) set_index old ""; set_index new "" ;;
            idx10) set_index old "$INDEX10"; set_index new "$INDEX10" ;;
            idx11) set_index old "$INDEX10"; set_index new "$INDEX11" ;;
        esac
        settle old; settle new
        progress "idle sweep, $ph: $ROUNDS rounds of $VARIANTS, remember_alive on and off"
        idle_phase $ph
    done
fi

# ----------------------------------------------------------------- explain
# explain_side SIDE LABEL ROWS-SQL: EXPLAIN (ANALYZE, BUFFERS) of the
# candidates and first_batch statements, generic plans, nothing to reap.
# On the new side the rows are set first: they are part of the statements'
# text; the bound $4 is computed from them as policy.c does.
explain_side() {
    local s=$1 f=$OUT/explain_$2.txt cand first args
    [ "$s" = new ] && set_policy "$3"
    cand=$(q "$s" -At -c "SELECT statement FROM protea_reaper_statements() WHERE name = 'candidates'")
    first=$(q "$s" -At -c "SELECT statement FROM protea_reaper_statements() WHERE name = 'first_batch'")
    {
        echo "SET plan_cache_mode = force_generic_plan;"
        echo "SELECT coalesce(array_agg(job_id), '{}') AS known_ids, coalesce(array_agg(last_event_ts), '{}') AS known_ts, coalesce(array_agg(last_event_ts + interval '30 days'), '{}') AS known_until FROM protea_reaper_running_jobs() WHERE verdict = 'alive' \\gset"
        if [ "$s" = new ]; then
            echo "SELECT $BOUND_SQL AS p_bound \\gset"
            echo "PREPARE cand(int, int, int, int) AS $cand;"
            echo "PREPARE first(int, int, int, int, int, uuid[], timestamptz[], timestamptz[], bool) AS $first;"
            args="21600, 2592000, 0, :p_bound"
            echo "\\echo '--- candidates'"
            echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE cand($args);"
            echo "BEGIN;"
            echo "\\echo '--- first_batch, nothing known (remember_alive off)'"
            echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE first($args, 1000, '{}', '{}', '{}', false);"
            echo "\\echo '--- first_batch, the alive jobs known'"
            echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE first($args, 1000, :'known_ids', :'known_ts', :'known_until', false);"
            echo "ROLLBACK;"
        else
            echo "PREPARE cand(int) AS $cand;"
            echo "PREPARE first(int, int, int, text, uuid[], timestamptz[], boolean) AS $first;"
            echo "\\echo '--- candidates'"
            echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE cand(21600);"
            echo "BEGIN;"
            echo "\\echo '--- first_batch, nothing known (remember_alive off)'"
            echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE first(21600, 2592000, 1000, 'x', '{}', '{}', false);"
            echo "\\echo '--- first_batch, the alive jobs known'"
            echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE first(21600, 2592000, 1000, 'x', :'known_ids', :'known_ts', false);"
            echo "ROLLBACK;"
        fi
    } > "$OUT/explain_$2.sql"
    chmod 644 "$OUT/explain_$2.sql"
    # twice: the first warms the caches
    q "$s" -f - < "$OUT/explain_$2.sql" > /dev/null 2>&1 || true
    q "$s" -f - < "$OUT/explain_$2.sql" > "$f" 2>&1 || true
    [ "$s" = new ] && set_policy ""
    return 0
}
EXPLAINS="old_idx10 new_idx10_none new_idx10_rows new_idx10_short new_idx11_none new_idx11_rows new_idx11_short"
if part explain; then
    progress "EXPLAIN: new side with 1.0's index then 1.1's, old side with 1.0's"
    set_index old "$INDEX10"; set_index new "$INDEX10"
    settle old; settle new
    explain_side old old_idx10 ""
    explain_side new new_idx10_none ""
    explain_side new new_idx10_rows "$IDLE_ROWS"
    explain_side new new_idx10_short "$SHORT_ROWS"
    set_index new "$INDEX11"
    settle new
    explain_side new new_idx11_none ""
    explain_side new new_idx11_rows "$IDLE_ROWS"
    explain_side new new_idx11_short "$SHORT_ROWS"
fi

# ----------------------------------------------------------------- anatomy
# Where a difference in the idle sweep comes from.  (1) The candidates
# statement alone: EXPLAIN (ANALYZE, TIMING OFF) Execution Time, WARMUP +
# RUNS per session, generic plan, median; old text on the old side (1.0's
# index), and on the new side (1.1's index) 1.0's text (the same data: the
# control), 1.1's without rows, with the 5 rows and with the bound 1 h rows
# (each text as protea_reaper_statements() gives it with those rows).  (2)
# What a sweep costs besides its statements: protea_reaper_run_once() in a
# database with PROTEA's tables and no job at all.
stmt_series() {	# VARIANT FILE
    local side text types args
    case $1 in
        old) side=old; text=$OLD_CAND; types="int"; args="21600" ;;
        oldtext) side=new; text=$OLD_CAND; types="int"; args="21600" ;;
        none) side=new; text=$NEW_CAND; types="int, int, int, int"; args="21600, 2592000, 0, 21600" ;;
        rows) side=new; text=$ROWS_CAND; types="int, int, int, int"; args="21600, 2592000, 0, 21600" ;;
        short) side=new; text=$SHORT_CAND; types="int, int, int, int"; args="21600, 2592000, 0, 3600" ;;
    esac
    {
        echo "SET plan_cache_mode = force_generic_plan;"
        echo "PREPARE cand($types) AS $text;"
        for _ in $(seq 1 $((WARMUP + RUNS))); do
            echo "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, COSTS OFF) EXECUTE cand($args);"
        done
    } | q "$side" -At | awk '/^Execution Time/ {print $3}' | tail -n "$RUNS" > "$2"
}
if part anatomy; then
    progress "anatomy: the candidates statement alone; a sweep over no job"
    set_index old "$INDEX10"; set_index new "$INDEX11"
    settle old; settle new
    OLD_CAND=$(q old -At -c "SELECT statement FROM protea_reaper_statements() WHERE name = 'candidates'")
    NEW_CAND=$(q new -At -c "SELECT statement FROM protea_reaper_statements() WHERE name = 'candidates'")
    set_policy "$IDLE_ROWS"
    ROWS_CAND=$(q new -At -c "SELECT statement FROM protea_reaper_statements() WHERE name = 'candidates'")
    set_policy "$SHORT_ROWS"
    SHORT_CAND=$(q new -At -c "SELECT statement FROM protea_reaper_statements() WHERE name = 'candidates'")
    [ "$(q new -At -c "SELECT $BOUND_SQL")" = 3600 ] || echo "WARNING: bound of the short rows is not 3600" | tee -a "$REPORT" >&2
    set_policy ""
    printf '%s\n' "$OLD_CAND" > "$OUT/cand_old.sql"; printf '%s\n' "$NEW_CAND" > "$OUT/cand_none.sql"
    printf '%s\n' "$ROWS_CAND" > "$OUT/cand_rows.sql"; printf '%s\n' "$SHORT_CAND" > "$OUT/cand_short.sql"
    for r in $(seq 1 "$ROUNDS"); do
        for v in $(order "$r" old oldtext none rows short); do
            stmt_series "$v" "$OUT/cand_${v}_r$r.txt"
            med "$OUT/cand_${v}_r$r.txt" >> "$OUT/cand_$v.med"
        done
    done
    for s in old new; do
        q $s -c "CREATE DATABASE empty"
        DB=empty q $s -f "$(eval echo "\$WD_$s")/tree/test/protea_schema.sql" >/dev/null
        DB=empty q $s -c "CREATE EXTENSION protea_reaper"
        DB=empty q $s -f "$(eval echo "\$WD_$s")/tree/bench/sql/datagen.sql" >/dev/null
        DB=empty q $s -c "VACUUM ANALYZE" >/dev/null
    done
    for r in $(seq 1 "$ROUNDS"); do
        for v in $(order "$r" old none rows); do
            if [ "$v" = rows ]; then DB=empty q new -c "$IDLE_ROWS"; fi
            DB=empty idle_series "${v/rows/none}" on "$OUT/empty_${v}_r$r.txt"
            if [ "$v" = rows ]; then DB=empty q new -c "TRUNCATE protea_reaper_policy"; fi
            med "$OUT/empty_${v}_r$r.txt" >> "$OUT/empty_$v.med"
        done
    done
fi

# -------------------------------------------------------------------- mass
# mass_one VARIANT BATCH: one mass reap, appended to mass_BATCH_VARIANT.txt
# as "server_ms reaped wal_bytes"
mass_one() {
    local side
    side=$(side_of "$1")
    settle "$side"
    q "$side" -c "SELECT bench.refresh_alive()" >/dev/null
    [ "$1" = rows ] && set_policy "$MASS_ROWS"
    {
        echo "SET protea_reaper.batch_size = $2; SET protea_reaper.stall_seconds = 1800;"
        echo "BEGIN; SELECT server_ms, reaped, wal_bytes FROM bench.timed_run_once(); ROLLBACK;"
    } | q "$side" -At -F' ' >> "$OUT/mass_$2_$1.txt"
    [ "$1" = rows ] && set_policy ""
    q "$side" -c "VACUUM job, job_event"
}
if part mass; then
    progress "mass reap: $MASS_JOBS stale jobs on both, PROTEA's indexes only"
    for s in old new; do
        set_index $s ""
        q $s -c "SET session_replication_role = replica" -c "SELECT bench.add_mass($MASS_JOBS)" >/dev/null &
    done
    wait
    for s in old new; do q $s -c "VACUUM ANALYZE job, job_event"; done
    for r in $(seq 1 "$MASS_RUNS"); do
        for b in 1000 10000; do
            for v in $(order "$r" old none rows); do
                progress "mass reap run $r, batch_size $b, $v"
                mass_one "$v" "$b"
            done
        done
    done
fi

# ------------------------------------------------------------------ report
label() {
    case $1 in
        protea) echo "PROTEA's indexes only" ;;
        idx10) echo "+ 1.0's index (started_at) INCLUDE (id), both" ;;
        idx11) echo "+ 1.1's index INCLUDE (id, operation) (1.0: its own INCLUDE (id))" ;;
    esac
}
cell() {	# FILE (round medians): "median [min–max]" in ms
    stats "$1" | awk '{printf "%.3f [%.3f–%.3f]", $1, $2, $3}'
}
if part idle; then
    emit "## Idle sweep, server ms: median of the $ROUNDS round medians [min–max] (each round median: $RUNS sweeps after $WARMUP warm-up, one session)"
    emit ""
    emit "| indexes | remember_alive | 1.0 | 1.1 no rows | 1.1 5 rows | 1.1 5 rows, bound 1 h | ratio to 1.0 per round, median [min–max]: no rows / rows / bound 1 h |"
    emit "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    for ph in protea idx10 idx11; do
        for mem in on off; do
            emit "| $(label $ph) | $mem | $(cell "$OUT/idle_${ph}_${mem}_old.med") | $(cell "$OUT/idle_${ph}_${mem}_none.med") | $(cell "$OUT/idle_${ph}_${mem}_rows.med") | $(cell "$OUT/idle_${ph}_${mem}_short.med") | $(for v in none rows short; do stats "$OUT/idle_${ph}_${mem}_$v.ratio" | awk '{printf "%.2f [%.2f–%.2f]", $1, $2, $3}'; [ $v = short ] || printf ' / '; done) |"
        done
    done
    emit ""
    emit "Pooled (all $((ROUNDS * RUNS)) sweeps of a cell), median ms:"
    emit ""
    emit "| indexes | remember_alive | 1.0 | 1.1 no rows | 1.1 5 rows | 1.1 5 rows, bound 1 h |"
    emit "| --- | --- | ---: | ---: | ---: | ---: |"
    for ph in protea idx10 idx11; do
        for mem in on off; do
            row="| $(label $ph) | $mem"
            for v in old none rows short; do
                cat "$OUT"/idle_"${ph}"_"${mem}"_"${v}"_r*.txt > "$OUT/pool_${ph}_${mem}_${v}.txt"
                row="$row | $(printf '%.3f' "$(med "$OUT/pool_${ph}_${mem}_${v}.txt")")"
            done
            emit "$row |"
        done
    done
    emit ""
fi
if part explain; then
    emit "## EXPLAIN (ANALYZE, BUFFERS), generic plans (top node's buffers, execution ms; scan of job)"
    emit ""
    for f in $EXPLAINS; do
        emit "- $f: $(awk '/^--- /{s=$0; sub(/^--- /, "", s)} /Buffers: shared/ && s != "" && !seen[s]++ {b=$0; sub(/^ */, "", b); buf[s]=b} /Execution Time/ {ms[s]=$3} /(Index Only Scan|Index Scan|Seq Scan|Bitmap Heap Scan) .* on job j/ && !sc[s]++ {t=$0; sub(/^[ ->]*/, "", t); sub(/  \(cost.*/, "", t); scan[s]=t} /Heap Fetches/ && !hf[s]++ {h=$0; sub(/^ */, "", h); heap[s]=h} END {for (k in ms) printf "%s: %s, %s ms, %s%s; ", k, buf[k], ms[k], scan[k], (heap[k] ? " (" heap[k] ")" : "")}' "$OUT/explain_$f.txt")"
    done
    emit ""
    emit "Full plans: $OUT/explain_*.txt"
    emit ""
fi
if part anatomy; then
    emit "## Anatomy (1.0 with its index, 1.1 with its own), ms: median of the $ROUNDS round medians [min–max]"
    emit ""
    emit "| what | 1.0 | 1.1 no rows | 1.1 5 rows | 1.1 5 rows, bound 1 h | control |"
    emit "| --- | ---: | ---: | ---: | ---: | ---: |"
    emit "| candidates statement alone (EXPLAIN ANALYZE, TIMING OFF: Execution Time) | $(cell "$OUT/cand_old.med") | $(cell "$OUT/cand_none.med") | $(cell "$OUT/cand_rows.med") | $(cell "$OUT/cand_short.med") | 1.0's text on 1.1's cluster: $(cell "$OUT/cand_oldtext.med") |"
    emit "| protea_reaper_run_once(), no job at all (server ms) | $(cell "$OUT/empty_old.med") | $(cell "$OUT/empty_none.med") | $(cell "$OUT/empty_rows.med") | | |"
    emit ""
fi
if part mass; then
    emit "## Mass reap, $MASS_JOBS stale jobs (+200 of the pool), PROTEA's indexes only: jobs/s, median of $MASS_RUNS [min–max]"
    emit ""
    emit "| batch_size | 1.0 | 1.1 no rows | 1.1 5 rows | jobs failed per run (1.0 / no rows / rows) |"
    emit "| ---: | ---: | ---: | ---: | --- |"
    for b in 1000 10000; do
        row="| $b"
        for v in old none rows; do
            awk '{printf "%.1f\n", $2 / ($1 / 1000)}' "$OUT/mass_${b}_$v.txt" > "$OUT/mass_${b}_$v.rate"
            row="$row | $(stats "$OUT/mass_${b}_$v.rate" | awk '{printf "%.0f [%.0f–%.0f]", $1, $2, $3}')"
        done
        emit "$row | $(for v in old none rows; do awk '{print $2}' "$OUT/mass_${b}_$v.txt" | sort -u | tr '\n' ','; printf ' '; done) |"
    done
    emit ""
fi
for s in old new; do
    emit "$s after: shape $(q $s -At -F' ' -c "SELECT * FROM bench.shape()" 2>/dev/null || echo '?')"
done
emit ""
emit "Minutes since the load: $(( ($(date +%s) - T_LOADED) / 60 )); total $(( ($(date +%s) - T0) / 60 )) min. Raw files: $OUT"
