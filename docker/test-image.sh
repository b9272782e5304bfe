#!/usr/bin/env bash
# docker/test-image.sh: build docker/Dockerfile with podman and run the
# demo's checks against a container of it.
#
#   sudo bash docker/test-image.sh          # ~4 min the first time, ~2 min after
#
# No registry is reachable here, so pgvector/pgvector:pg16 cannot be pulled:
# the recipe is built on a base of the same kind made with mmdebstrap
# (Debian trixie, postgresql-17 and Debian's postgresql-17-pgvector, ENV
# PG_MAJOR=17, and a short docker-entrypoint.sh with the postgres image's
# contract: initdb on an empty $PGDATA, POSTGRES_PASSWORD and POSTGRES_DB,
# then postgres as the postgres user), cached as localhost/protea-pg-base:17.
# Then, rootful podman (with runc) and its own storage under
# $PROTEA_CACHE/containers:
#   podman build --build-arg BASE=localhost/protea-pg-base:17 -f docker/Dockerfile .
#   podman run -e POSTGRES_PASSWORD=… -e POSTGRES_DB=protea (no network)
# and checks what test/demo.sh shows a newcomer: PROTEA's tables and pgvector
# in database protea, the worker started by the image's command, stale jobs
# failed with error_code JobTimeout and a job.timeout event, a dead leased
# worker's job failed lease_expired with job.lease_expired, each event marked
# "reaper": "protea_reaper", a job with recent events and a finished job left
# alone; and that the final image holds the package and no compiler.  The
# container and the built image are removed on exit.  Ends with
# "N passed, N failed".
set -u
. "$(dirname "$0")/../test/lib.sh"

PACKAGES="podman runc mmdebstrap"
BASE_IMAGE=localhost/protea-pg-base:17
IMAGE=localhost/protea-db:pg17-reaper-test
NAME=protea-db-test-$$
STORE=$PROTEA_CACHE/containers
# runc, not Debian 12's default crun: crun refuses this machine's hybrid
# cgroups ("cgroups in hybrid mode not supported, drop all controllers from
# cgroupv2").  Limits below the host's: podman raises RLIMIT_NOFILE and
# RLIMIT_NPROC by default, which root without CAP_SYS_RESOURCE may not
# ("setrlimit `RLIMIT_NOFILE`: Operation not permitted").
PODMAN=(podman --root "$STORE/storage" --runroot "$STORE/run"
    --storage-driver "${STORAGE_DRIVER:-overlay}" --runtime "${OCI_RUNTIME:-runc}")
LIMITS=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
PASSED=0
FAILED=0

check() {	# check WHAT CMD...: one counted check
    local what=$1
    shift
    if "$@"; then echo "$what ... ok"; PASSED=$((PASSED + 1))
    else echo "$what ... FAILED"; FAILED=$((FAILED + 1)); fi
}
finish() {
    echo
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}
cleanup() {
    "${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1
    "${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1
    "${PODMAN[@]}" image prune -f >/dev/null 2>&1	# the build stage's layers
    return 0
}
trap cleanup EXIT

ensure_packages || { FAILED=1; finish; }
mkdir -p "$STORE"

# skipped WHY: this machine cannot run containers at all (a CI runner that
# is itself a container without the rights): said, and nothing counted;
# a recipe that fails where containers run still fails below
skipped() {
    echo "image: SKIPPED: $1"
    echo
    echo "0 passed, 0 failed"
    exit 0
}
"${PODMAN[@]}" info > "$STORE/info.log" 2>&1 ||
    skipped "podman does not work on this machine: $(tail -n 1 "$STORE/info.log")"

# The base: what pgvector/pgvector:pg16 provides, from Debian's archive
if ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    say "making $BASE_IMAGE with mmdebstrap (trixie, postgresql-17, postgresql-17-pgvector; once)"
    entry=$(mktemp)
    cat > "$entry" <<'ENTRY'
#!/bin/sh
# docker-entrypoint.sh: the postgres image's contract, in short
set -e
if [ "${1:-}" = postgres ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD is not set" >&2; exit 1; }
        pw=$(mktemp); echo "$POSTGRES_PASSWORD" > "$pw"; chown postgres "$pw"
        as_pg initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pw" >/dev/null
        rm -f "$pw"
        echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
        echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
        if [ "${POSTGRES_DB:-postgres}" != postgres ]; then
            as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
            as_pg psql -X -q -U "${POSTGRES_USER:-postgres}" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
            as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
        fi
    fi
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
fi
exec "$@"
ENTRY
    mmdebstrap --variant=apt --dpkgopt=force-unsafe-io \
        --include=postgresql-17,postgresql-17-pgvector,ca-certificates \
        --setup-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.d/00-image.conf"' \
        --customize-hook="upload $entry /usr/local/bin/docker-entrypoint.sh" \
        --customize-hook='chmod 755 "$1/usr/local/bin/docker-entrypoint.sh"' \
        trixie - "deb $DEBIAN_MIRROR trixie main" 2> "$STORE/base.log" |
        "${PODMAN[@]}" import \
            --change 'ENV PG_MAJOR=17' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/17/bin' \
            --change 'ENV PGDATA=/var/lib/postgresql/data' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
            --change 'STOPSIGNAL SIGINT' \
            --change 'EXPOSE 5432' \
            --change 'CMD ["postgres"]' \
            - "$BASE_IMAGE" >/dev/null
    rc=$?
    rm -f "$entry"
    check "base image $BASE_IMAGE (mmdebstrap | podman import)" [ "$rc" -eq 0 ] || true
    [ "$rc" -eq 0 ] || { tail -n 30 "$STORE/base.log"; finish; }
fi

"${PODMAN[@]}" run "${LIMITS[@]}" --rm --network none --entrypoint true "$BASE_IMAGE" > "$STORE/run.log" 2>&1 ||
    skipped "podman cannot start a container on this machine: $(tail -n 1 "$STORE/run.log")"

say "podman build -f docker/Dockerfile --build-arg BASE=$BASE_IMAGE (log: $STORE/build.log)"
"${PODMAN[@]}" build "${LIMITS[@]}" --no-cache --network host --build-arg BASE="$BASE_IMAGE" \
    --ignorefile "$REPO/docker/Dockerfile.dockerignore" \
    -f "$REPO/docker/Dockerfile" -t "$IMAGE" "$REPO" > "$STORE/build.log" 2>&1
rc=$?
grep -E '^(ok|not ok) [0-9]|^# All|^STEP|dpkg-deb: building' "$STORE/build.log"
check "podman build (the .deb built and tested in stage 1, installed in stage 2)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || { tail -n 60 "$STORE/build.log"; finish; }

# The final image: the package, and nothing to compile with
in_image() { "${PODMAN[@]}" run "${LIMITS[@]}" --rm --network none --entrypoint sh "$IMAGE" -c "$1"; }
check "final image: postgresql-17-protea-reaper installed" \
    in_image 'dpkg-query -W -f "\${Status}\n" postgresql-17-protea-reaper | grep -qx "install ok installed"'
check "final image: no compiler, no make, no source tree" \
    in_image '! command -v gcc && ! command -v cc && ! command -v make && ! [ -e /usr/src/protea-reaper ]'

say "starting $IMAGE (POSTGRES_DB=protea, the image's command)"
"${PODMAN[@]}" run "${LIMITS[@]}" -d --network none --name "$NAME" \
    -e POSTGRES_PASSWORD=protea-test -e POSTGRES_DB=protea "$IMAGE" >/dev/null
sql() { "${PODMAN[@]}" exec -i -u postgres "$NAME" psql -X -q -v ON_ERROR_STOP=1 -P pager=off -d protea "$@"; }
# the entrypoint's own server, which creates the database (listening on no
# address), stops before the image's command starts: wait for the latter
ready=no
for _ in $(seq 1 60); do
    [ "$(sql -At -c "SHOW listen_addresses" 2>/dev/null)" = '*' ] && { ready=yes; break; }
    sleep 1
done
check "server up, database protea created by the entrypoint" [ "$ready" = yes ]
[ "$ready" = yes ] || { "${PODMAN[@]}" logs "$NAME" | tail -n 40; finish; }

check "PROTEA's tables, pgvector and protea_reaper in protea" \
    sql -c "CREATE EXTENSION vector" -c "CREATE EXTENSION protea_reaper" -f - < "$REPO/test/protea_schema.sql"
# the launcher starts protea's reaper when CREATE EXTENSION commits
for _ in $(seq 1 20); do
    [ "$(sql -At -c "SELECT pid IS NOT NULL FROM protea_reaper_status() WHERE database = current_database()")" = t ] && break
    sleep 0.5
done
check "the worker runs in protea (shared_preload_libraries from the image's command)" \
    [ "$(sql -At -c "SELECT pid IS NOT NULL FROM protea_reaper_status() WHERE database = current_database()")" = t ]

# The demo's jobs: a, b stale; c alive (an event just now); e finished;
# 10 leased, its lease lapsed a minute ago (its worker is dead)
sql -c "ALTER SYSTEM SET protea_reaper.interval_seconds = 1" \
    -c "ALTER SYSTEM SET protea_reaper.timeout_seconds = 60" \
    -c "ALTER SYSTEM SET protea_reaper.stall_seconds = 30" -c "SELECT pg_reload_conf()" >/dev/null
sql <<'SQL'
INSERT INTO job (id, operation, queue_name, status, created_at, started_at, finished_at, leased_until, payload, meta, tags)
SELECT v.*, '{}', '{}', '{}' FROM (VALUES
 ('00000000-0000-0000-0000-00000000000a'::uuid, 'insert_proteins', 'proteins', 'RUNNING'::job_status, now() - '10 min'::interval, now() - '10 min'::interval, NULL::timestamptz, NULL::timestamptz),
 ('00000000-0000-0000-0000-00000000000b', 'insert_proteins',    'proteins',   'RUNNING',   now() - '9 min'::interval,  now() - '9 min'::interval,  NULL, NULL),
 ('00000000-0000-0000-0000-00000000000c', 'compute_embeddings', 'embeddings', 'RUNNING',   now() - '8 min'::interval,  now() - '8 min'::interval,  NULL, NULL),
 ('00000000-0000-0000-0000-00000000000e', 'insert_proteins',    'proteins',   'SUCCEEDED', now() - '10 min'::interval, now() - '10 min'::interval, now() - '9 min'::interval, NULL),
 ('00000000-0000-0000-0000-000000000010', 'insert_proteins',    'proteins',   'RUNNING',   now() - '2 min'::interval,  now() - '2 min'::interval,  NULL, now() - '1 min'::interval)) AS v;
INSERT INTO job_event (job_id, ts, level, event, message, fields) VALUES
 ('00000000-0000-0000-0000-00000000000a', now() - '5 min'::interval, 'info', 'job.progress', 'worker went quiet 5 min ago', '{}'),
 ('00000000-0000-0000-0000-00000000000c', now(), 'info', 'job.progress', 'coordinator: child batch done', '{}');
SQL
for _ in $(seq 1 30); do
    [ "$(sql -At -c "SELECT count(*) FROM job WHERE status = 'FAILED'")" = 3 ] && break
    sleep 1
done
sql -c "SELECT right(id::text, 2) AS job, operation, status, error_code, error_message FROM job ORDER BY id"
sql -c "SELECT right(job_id::text, 2) AS job, level, event, fields->>'reaper' AS reaper FROM job_event WHERE event IN ('job.timeout', 'job.lease_expired') ORDER BY id"
status_of() { sql -At -c "SELECT status || ' ' || coalesce(error_code, '-') FROM job WHERE id = '00000000-0000-0000-0000-0000000000$1'"; }
events_of() { sql -At -c "SELECT string_agg(event || ' ' || level || ' ' || (fields->>'reaper'), ',') FROM job_event WHERE job_id = '00000000-0000-0000-0000-0000000000$1' AND event LIKE 'job.%' AND event <> 'job.progress'"; }
check "stale job a: FAILED JobTimeout" [ "$(status_of 0a)" = "FAILED JobTimeout" ]
check "stale job b: FAILED JobTimeout" [ "$(status_of 0b)" = "FAILED JobTimeout" ]
check "a and b: one job.timeout event each, level error, reaper protea_reaper" \
    [ "$(events_of 0a)|$(events_of 0b)" = "job.timeout error protea_reaper|job.timeout error protea_reaper" ]
check "job 10, its lease lapsed: FAILED lease_expired, one job.lease_expired event" \
    [ "$(status_of 10)|$(events_of 10)" = "FAILED lease_expired|job.lease_expired error protea_reaper" ]
check "job c, recent events: still RUNNING" [ "$(status_of 0c)" = "RUNNING -" ]
check "job e, finished: still SUCCEEDED" [ "$(status_of 0e)" = "SUCCEEDED -" ]
check "protea_reaper_status(): 3 reaped by the worker" \
    [ "$(sql -At -c "SELECT total_reaped FROM protea_reaper_status() WHERE database = current_database()")" = 3 ]
check "the server log names each failed job" \
    [ "$("${PODMAN[@]}" logs "$NAME" 2>&1 | grep -c 'Reaper failed stale job')" = 3 ]
finish
