#!/usr/bin/env bash
# bench/lease_latency.sh: how long after a leased worker's last heartbeat
# the worker reaper fails its job.
#
#   sudo bash bench/lease_latency.sh
#
# PROTEA's defaults scaled down: a lease of LEASE seconds (PROTEA: 120),
# lease_grace_seconds GRACE, the worker's interval INTERVALS (each in turn;
# PROTEA's own reaper sweeps every 60 s).  For each interval, TRIALS jobs,
# one after another: a job claimed with leased_until = now() + LEASE (its
# last heartbeat, then its worker "dies"), and the time from that
# heartbeat to the job's finished_at.  The bound is LEASE + GRACE +
# interval; PROTEA's own reaper's is LEASE + 60 s.  Builds this checkout
# into PROTEA_CACHE's server (default /var/tmp/benchB, PostgreSQL
# PG_MAJOR 16), one throwaway cluster; prints a Markdown table.
set -euo pipefail
TREE=${TREE:-$(cd "$(dirname "$0")/.." && pwd)}
export PROTEA_CACHE=${PROTEA_CACHE:-/var/tmp/benchB}
export PG_MAJOR=${PG_MAJOR:-16}
LEASE=${LEASE:-6}
GRACE=${GRACE:-1}
INTERVALS=${INTERVALS:-"1 5"}
TRIALS=${TRIALS:-10}
[ "$(id -u)" -eq 0 ] || { echo "run as root (the server runs as postgres)" >&2; exit 2; }

if [ "$PG_MAJOR" = 16 ] && [ ! -d "$PROTEA_CACHE/pg16" ] && [ -d /var/tmp/protea_reaper/pg16 ]; then
    mkdir -p "$PROTEA_CACHE"
    cp -a /var/tmp/protea_reaper/pg16 "$PROTEA_CACHE/pg16"
fi
. "$TREE/test/lib.sh"
ensure_server >&2
build_and_install >&2
make_workdir
trap stop_clusters EXIT
start_cluster bench "protea_reaper.database = 'bench'
protea_reaper.lease_grace_seconds = $GRACE" >&2

q() {
    (cd "$WORKDIR" && runuser -u postgres -- "$PG_BIN/psql" -h "$WORKDIR" -p "$PORT" \
        -X -q -At -v ON_ERROR_STOP=1 -d bench "$@")
}
q -f "$TREE/test/protea_schema.sql" >/dev/null
q -c "CREATE EXTENSION protea_reaper" >/dev/null 2>&1

echo "$(q -c 'SHOW server_version'), lease $LEASE s, lease_grace_seconds $GRACE s, $TRIALS trials per interval"
echo
echo "| interval_seconds | bound (lease + grace + interval) | median (s) | max (s) | PROTEA's reaper's bound (lease + 60 s) |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for interval in $INTERVALS; do
    q -c "ALTER SYSTEM SET protea_reaper.interval_seconds = $interval" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    lat=()
    for t in $(seq 1 "$TRIALS"); do
        id=$(q -c "SELECT gen_random_uuid()")
        # the last heartbeat: now; the worker dies just after it
        q -c "INSERT INTO job (id, operation, queue_name, status, created_at, started_at,
                               payload, meta, tags, leased_until)
              VALUES ('$id', 'insert_proteins', 'q', 'RUNNING', now(), now(), '{}', '{}', '{}',
                      now() + interval '$LEASE seconds')" >/dev/null
        until [ "$(q -c "SELECT status FROM job WHERE id = '$id'")" = FAILED ]; do sleep 0.1; done
        lat+=("$(q -c "SELECT round(extract(epoch FROM finished_at - created_at)::numeric, 2)
                        FROM job WHERE id = '$id'")")
        # start the next trial at a random point of the worker's cycle
        sleep "$(awk -v i="$interval" -v r="$RANDOM" 'BEGIN { printf "%.1f", i * r / 32768 }')"
    done
    printf '%s\n' "${lat[@]}" | sort -g | awk -v i="$interval" -v b="$((LEASE + GRACE + interval))" \
        -v p="$((LEASE + 60))" '{v[NR] = $1}
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf "| %d | %d | %.2f | %.2f | %d |\n", i, b, m, v[NR], p }'
done
