#!/usr/bin/env bash
# bench/databases.sh: the idle cost of the reapers per database, and of the
# launcher, with 1, 10 and 50 databases holding the extension.
#
#   sudo bash bench/databases.sh
#   sudo COUNTS="1 10" SECONDS_PER_RUN=30 bash bench/databases.sh
#
# For each count N in COUNTS: one throwaway cluster with
# protea_reaper.interval_seconds = 1 and max_worker_processes big enough, N
# databases each with PROTEA's tables (empty: nothing is stale, the sweep
# is idle) and the extension, and one database without it (the launcher
# looks at it once).  Once every reaper has run a cycle, the CPU time
# (/proc/PID/schedstat, in ns) of each reaper and of the launcher is read,
# SECONDS_PER_RUN seconds apart, together with their cycle counts
# (protea_reaper_status()); prints, per N, the median over the reapers of
# their CPU per cycle, the reapers' CPU per second in all, the launcher's
# CPU per scan of pg_database, and per second.  Builds this checkout into
# PROTEA_CACHE's server (default /var/tmp/benchB, PostgreSQL PG_MAJOR 16).
set -euo pipefail
TREE=${TREE:-$(cd "$(dirname "$0")/.." && pwd)}
export PROTEA_CACHE=${PROTEA_CACHE:-/var/tmp/benchB}
export PG_MAJOR=${PG_MAJOR:-16}
COUNTS=${COUNTS:-"1 10 50"}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-60}
[ "$(id -u)" -eq 0 ] || { echo "run as root (the server runs as postgres)" >&2; exit 2; }

if [ "$PG_MAJOR" = 16 ] && [ ! -d "$PROTEA_CACHE/pg16" ] && [ -d /var/tmp/protea_reaper/pg16 ]; then
    mkdir -p "$PROTEA_CACHE"
    cp -a /var/tmp/protea_reaper/pg16 "$PROTEA_CACHE/pg16"
fi
. "$TREE/test/lib.sh"
ensure_server >&2
build_and_install >&2

# cpu_ns PID: the CPU time a process has run, in ns
cpu_ns() { awk '{ print $1 }' "/proc/$1/schedstat"; }

# median: of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "| databases | reaper CPU per cycle, median (ms) | all reapers, CPU per second (ms) | launcher CPU per scan (ms) | launcher, CPU per second (ms) |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for n in $COUNTS; do
    make_workdir
    trap stop_clusters EXIT
    start_cluster plain "protea_reaper.database = ''
protea_reaper.interval_seconds = 1
max_worker_processes = $((n + 8))
max_connections = $((n + 20))" >&2
    q() {
        (cd "$WORKDIR" && runuser -u postgres -- "$PG_BIN/psql" -h "$WORKDIR" -p "$PORT" \
            -X -q -At -v ON_ERROR_STOP=1 "$@")
    }
    for i in $(seq 1 "$n"); do
        q -d postgres -c "CREATE DATABASE db$i" >/dev/null
        q -d "db$i" -f "$TREE/test/protea_schema.sql" >/dev/null
        q -d "db$i" -c "SET client_min_messages = error" -c "CREATE EXTENSION protea_reaper" >/dev/null
    done
    until [ "$(q -d db1 -c "SELECT count(*) FROM protea_reaper_status() WHERE database IS NOT NULL AND cycles > 0")" = "$n" ]; do
        sleep 0.5
    done
    # database|pid|cycles of each worker; the launcher's database is -
    snapshot() { q -d db1 -F'|' -c "SELECT coalesce(database, '-'), pid, cycles FROM protea_reaper_status() ORDER BY 1"; }
    declare -A t0=() c0=()
    while IFS='|' read -r db pid cycles; do
        t0[$db]=$(cpu_ns "$pid"); c0[$db]=$cycles
    done < <(snapshot)
    sleep "$SECONDS_PER_RUN"
    per_cycle=()
    reapers_ns=0
    launcher_ms_per_scan=0
    launcher_ms_per_s=0
    while IFS='|' read -r db pid cycles; do
        dt=$(( $(cpu_ns "$pid") - t0[$db] ))
        dc=$(( cycles - c0[$db] ))
        if [ "$db" = - ]; then
            launcher_ms_per_scan=$(awk -v t="$dt" -v c="$dc" 'BEGIN { printf "%.3f", c ? t / 1e6 / c : 0 }')
            launcher_ms_per_s=$(awk -v t="$dt" -v s="$SECONDS_PER_RUN" 'BEGIN { printf "%.3f", t / 1e6 / s }')
        else
            reapers_ns=$((reapers_ns + dt))
            per_cycle+=("$(awk -v t="$dt" -v c="$dc" 'BEGIN { printf "%.3f", c ? t / 1e6 / c : 0 }')")
        fi
    done < <(snapshot)
    printf '| %d | %s | %s | %s | %s |\n' "$n" \
        "$(printf '%s\n' "${per_cycle[@]}" | median)" \
        "$(awk -v t="$reapers_ns" -v s="$SECONDS_PER_RUN" 'BEGIN { printf "%.1f", t / 1e6 / s }')" \
        "$launcher_ms_per_scan" "$launcher_ms_per_s"
    unset t0 c0
    stop_clusters
    trap - EXIT
done
echo
echo "$("$PG_BIN/postgres" --version), interval_seconds = 1, $SECONDS_PER_RUN s per count, load average $(cut -d' ' -f1 /proc/loadavg); CPU from /proc/PID/schedstat"
