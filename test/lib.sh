# test/lib.sh: shared by test/run.sh (all suites), test/demo.sh and bench/.
# Installs what is missing, builds and installs the extension, and runs
# commands as an unprivileged user in a directory it can write, because
# PostgreSQL refuses to run as root.

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-contrib libipc-run-perl build-essential rsync"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\n==> %s\n' "$*"; }

# ensure_packages: apt-get install whatever of PACKAGES is missing
ensure_packages() {
    local missing="" p
    for p in $PACKAGES; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages:$missing (run as root, or install them)" >&2
        return 1
    fi
    say "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # Debian's postgresql-common would create and start a cluster of its
    # own on install; we start throwaway clusters ourselves.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/00-protea-reaper.conf
    apt-get install -y -q --no-install-recommends $missing >/dev/null
}

# build_and_install: make && make install against PostgreSQL 15
build_and_install() {
    say "building and installing protea_reaper"
    make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" >/dev/null
    make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# RUN_AS: the unprivileged user that runs the servers (postgres when root)
if [ "$(id -u)" -eq 0 ]; then RUN_AS=postgres; else RUN_AS=$(id -un); fi

# as_pg: run a command as RUN_AS, from a directory it can enter (runuser
# keeps the caller's directory, which may be a checkout it cannot read)
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "${WORKDIR:-/}" && runuser -u "$RUN_AS" -- env PATH="$PG_BIN:$PATH" "$@")
    else
        env PATH="$PG_BIN:$PATH" "$@"
    fi
}

# make_workdir: a temporary directory RUN_AS can write, holding a copy of
# the tree (the checkout may live where that user cannot even read)
make_workdir() {
    WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/protea_reaper.XXXXXX")
    rsync -a --exclude .git --exclude 'results/' --exclude 'tmp_check*' \
        --exclude 'output_iso/' --exclude '*.o' --exclude '*.bc' --exclude '*.so' \
        "$REPO"/ "$WORKDIR/tree/"
    chmod 755 "$WORKDIR"
    [ "$(id -u)" -eq 0 ] && chown -R "$RUN_AS" "$WORKDIR"
    return 0
}

# start_cluster DB CONF: a cluster in WORKDIR/data on a free port, listening
# only on a socket in WORKDIR, with the worker preloaded for database DB plus
# the postgresql.conf lines CONF; creates DB.  Sets PORT and DATA.
start_cluster() {
    local db=$1 conf=${2:-}
    PORT=$(free_port)
    DATA=$WORKDIR/data
    as_pg initdb -D "$DATA" -A trust -U postgres >/dev/null
    cat >> "$DATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORKDIR'
shared_preload_libraries = 'protea_reaper'
protea_reaper.database = '$db'
$conf
CONF
    as_pg pg_ctl -D "$DATA" -l "$WORKDIR/server.log" -w start >/dev/null
    as_pg psql -h "$WORKDIR" -p "$PORT" -X -q -d postgres -c "CREATE DATABASE \"$db\""
}

# stop_clusters: stop every server still running under WORKDIR, then remove it
stop_clusters() {
    [ -n "${WORKDIR:-}" ] && [ -d "$WORKDIR" ] || return 0
    local pidfile
    for pidfile in $(find "$WORKDIR" -name postmaster.pid 2>/dev/null); do
        as_pg pg_ctl -D "$(dirname "$pidfile")" -m immediate stop >/dev/null 2>&1 || true
    done
    [ -n "${KEEP_WORKDIR:-}" ] || rm -rf "$WORKDIR"
}

# free_port: a TCP port nobody listens on
free_port() {
    local port
    while :; do
        port=$(( (RANDOM % 20000) + 30000 ))
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null || { echo $port; return; }
    done
}
