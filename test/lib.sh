# test/lib.sh: shared by test/run.sh (all suites), test/versions.sh,
# test/demo.sh and bench/.
# Installs what is missing, builds and installs the extension, and runs
# commands as an unprivileged user in a directory it can write, because
# PostgreSQL refuses to run as root.
#
# PG_MAJOR (default 15) picks the server, and where it comes from:
#   15      this machine's own Debian 12 packages (apt-get install)
#   16      built once from ../shared/postgresql/postgresql-16.2.tar.gz
#           into $PROTEA_CACHE/pg16 (no Debian release ships 16)
#   17..19  a Debian chroot under $PROTEA_CACHE/chroot-NN made with
#           mmdebstrap (17: trixie, 18: testing, 19: experimental over sid);
#           test/run.sh runs itself again inside it
# A cached server or chroot is reused only when its .complete marker, written
# last, is there; anything else at that path is removed and built again.

PG_MAJOR=${PG_MAJOR:-15}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROTEA_CACHE=${PROTEA_CACHE:-/var/tmp/protea_reaper}
PG16_TARBALL=${PG16_TARBALL:-$REPO/../shared/postgresql/postgresql-16.2.tar.gz}
# the archive this machine's apt already uses
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -n "${PROTEA_IN_CHROOT:-}" ]; then PG_FROM=debian	# inside chroot-NN
else
    case $PG_MAJOR in
        15) PG_FROM=debian ;;
        16) PG_FROM=source ;;
        17|18|19) PG_FROM=chroot ;;
        *) echo "PG_MAJOR=$PG_MAJOR: supported are 15 16 17 18 (and 19, next)" >&2; exit 2 ;;
    esac
fi
if [ "$PG_FROM" = source ]; then PG_BIN=$PROTEA_CACHE/pg$PG_MAJOR/bin
else PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin; fi
PG_CONFIG=$PG_BIN/pg_config
PACKAGES="libipc-run-perl build-essential rsync"
case $PG_FROM in
    debian) PACKAGES="$PACKAGES postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR"
            [ "$PG_MAJOR" = 15 ] && PACKAGES="$PACKAGES postgresql-contrib"
            # pg_partman, for the partitioned job_event (test/t/120_partitions.pl)
            [ "$PG_MAJOR" != 19 ] && PACKAGES="$PACKAGES postgresql-$PG_MAJOR-partman" ;;
    source) PACKAGES="$PACKAGES bison flex" ;;
    chroot) PACKAGES="rsync mmdebstrap util-linux" ;;
esac

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
    apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null
    # Debian's postgresql-common would create and start a cluster of its
    # own on install; we start throwaway clusters ourselves.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/00-protea-reaper.conf
    apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends $missing >/dev/null
}

# build_and_install: make && make install against PG_CONFIG, in a scratch
# copy of the tree (object files of another major must not be reused)
build_and_install() {
    say "building and installing protea_reaper for PostgreSQL $PG_MAJOR"
    local b
    b=$(mktemp -d "${TMPDIR:-/tmp}/protea_reaper_build.XXXXXX")
    copy_tree "$b"
    make -C "$b" -s PG_CONFIG="$PG_CONFIG" >/dev/null &&
        make -C "$b" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
    local rc=$?
    rm -rf "$b"
    return $rc
}

# copy_tree DIR: the checkout without .git and build or test products
copy_tree() {
    rsync -a --exclude .git --exclude 'results/' --exclude 'tmp_check*' \
        --exclude 'output_iso/' --exclude '*.o' --exclude '*.bc' --exclude '*.so' \
        "$REPO"/ "$1"/
}

# ensure_server: the PostgreSQL of PG_MAJOR, installed or built or in its
# chroot, with what the suites need
ensure_server() {
    ensure_packages || return 1
    case $PG_FROM in
        source) ensure_pg_source ;;
        chroot) ensure_chroot ;;
    esac
}

# ensure_pg_source: PostgreSQL 16 built from the shared source tarball
# (recipe: ../shared/postgresql/README.md), once, into $PROTEA_CACHE/pg16
ensure_pg_source() {
    local prefix=$PROTEA_CACHE/pg$PG_MAJOR src
    [ -f "$prefix/.complete" ] && return 0
    [ -f "$PG16_TARBALL" ] || { echo "missing $PG16_TARBALL" >&2; return 1; }
    say "building PostgreSQL $PG_MAJOR from $(basename "$PG16_TARBALL") into $prefix (once, ~3 min)"
    rm -rf "$prefix" "$prefix.src"
    mkdir -p "$prefix.src"
    src=$prefix.src/postgresql-16.2
    tar -xzf "$PG16_TARBALL" -C "$prefix.src" &&
    (cd "$src" &&
        ./configure -q --prefix="$prefix" --enable-tap-tests \
            --without-icu --without-readline --without-zlib &&
        make -s -j"$(nproc)" &&
        make -s install &&
        make -s -C src/test/isolation install &&
        make -s -C src/test/perl install) > "$prefix.src/build.log" 2>&1 || {
        tail -n 40 "$prefix.src/build.log"
        echo "PostgreSQL $PG_MAJOR build failed (log: $prefix.src/build.log)" >&2
        return 1
    }
    rm -rf "$prefix.src"
    chmod -R a+rX "$prefix"
    touch "$prefix/.complete"
}

# chroot_suite: the Debian suite that carries postgresql-PG_MAJOR
chroot_suite() {
    case $PG_MAJOR in
        17) echo trixie ;;
        18) echo testing ;;
        19) echo sid ;;	# plus experimental, pinned to PostgreSQL only
    esac
}

# chroot_packages: what chroot-NN holds besides the base system
chroot_packages() {
    local pkgs="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libipc-run-perl build-essential rsync libpq-dev"
    # pg_partman, where Debian ships it for that major (not in experimental)
    [ "$PG_MAJOR" != 19 ] && pkgs="$pkgs postgresql-$PG_MAJOR-partman"
    echo "$pkgs"
}

# ensure_chroot: $PROTEA_CACHE/chroot-NN with postgresql-NN, its server
# headers, pg_partman, libipc-run-perl and a compiler; no cluster is created
# in it.  A cached chroot made before a package was added to the list gets
# it installed.
ensure_chroot() {
    CHROOT=$PROTEA_CACHE/chroot-$PG_MAJOR
    if [ -f "$CHROOT/.complete" ]; then
        ensure_chroot_packages
        return
    fi
    local suite pkgs mirrors
    suite=$(chroot_suite)
    pkgs=$(chroot_packages | tr ' ' ',')
    mirrors="deb $DEBIAN_MIRROR $suite main"
    say "making $CHROOT (Debian $suite, postgresql-$PG_MAJOR; once, ~1-2 min)"
    unmount_chroot
    rm -rf --one-file-system "$CHROOT"
    mkdir -p "$PROTEA_CACHE"
    local setup='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.d/00-protea-reaper.conf"'
    local extra=()
    if [ "$PG_MAJOR" = 19 ]; then
        # experimental is pinned low by its Release file; ask for 19 from it
        extra=(--customize-hook="chroot \"\$1\" apt-get install -y -q --no-install-recommends -t experimental postgresql-19 postgresql-server-dev-19")
        pkgs="libipc-run-perl,build-essential,rsync,libpq-dev"
        mirrors="$mirrors
deb $DEBIAN_MIRROR experimental main"
    fi
    # Release files of testing/unstable/experimental have expired here
    mmdebstrap --variant=apt --include="$pkgs" \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --setup-hook="$setup" "${extra[@]}" \
        "$suite" "$CHROOT" "$mirrors" > "$PROTEA_CACHE/chroot-$PG_MAJOR.log" 2>&1 || {
        tail -n 40 "$PROTEA_CACHE/chroot-$PG_MAJOR.log"
        echo "making $CHROOT failed (log: $PROTEA_CACHE/chroot-$PG_MAJOR.log)" >&2
        rm -rf --one-file-system "$CHROOT"
        return 1
    }
    touch "$CHROOT/.complete"
}

# ensure_chroot_packages: apt-get install, inside CHROOT, whatever of
# chroot_packages is missing there (the package lists are fetched again:
# mmdebstrap leaves none)
ensure_chroot_packages() {
    local missing="" p
    for p in $(chroot_packages); do
        chroot "$CHROOT" dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    say "installing into $CHROOT:$missing"
    run_in_chroot env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends $missing" \
        >> "$PROTEA_CACHE/chroot-$PG_MAJOR.log" 2>&1 || {
        tail -n 40 "$PROTEA_CACHE/chroot-$PG_MAJOR.log"
        echo "installing$missing into $CHROOT failed (log: $PROTEA_CACHE/chroot-$PG_MAJOR.log)" >&2
        return 1
    }
}

# unmount_chroot: undo run_in_chroot's mounts (also those a killed run left)
unmount_chroot() {
    local m
    for m in dev/shm proc; do
        mountpoint -q "$CHROOT/$m" 2>/dev/null && { umount "$CHROOT/$m" || umount -l "$CHROOT/$m"; }
    done
    return 0
}

# rerun_in_chroot SCRIPT [VAR...]: SCRIPT (a path in the checkout) run again
# inside CHROOT, on a copy of the checkout, with PG_MAJOR, BUILD_ONLY and the
# named environment variables; bench/results comes back out.  Its status.
rerun_in_chroot() {
    local script=$1 inner rc v envs=()
    shift
    for v in BUILD_ONLY "$@"; do [ -n "${!v:-}" ] && envs+=("$v=${!v}"); done
    inner=$(mktemp -d "$CHROOT/tmp/protea_reaper_src.XXXXXX")
    copy_tree "$inner"
    run_in_chroot env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        PG_MAJOR="$PG_MAJOR" PROTEA_IN_CHROOT=1 "${envs[@]}" bash "${inner#"$CHROOT"}/$script"
    rc=$?
    if [ -d "$inner/bench/results" ]; then
        mkdir -p "$REPO/bench/results"
        rsync -a "$inner/bench/results/" "$REPO/bench/results/"
    fi
    rm -rf "$inner"
    return $rc
}

# run_in_chroot CMD...: CMD inside CHROOT with /proc and a tmpfs /dev/shm
# (PostgreSQL's dynamic shared memory) mounted for the run only; one run per
# chroot at a time
run_in_chroot() {
    (
        exec 9> "$CHROOT.lock"
        flock 9
        unmount_chroot	# what a killed run may have left
        mkdir -p "$CHROOT/proc" "$CHROOT/dev/shm"
        trap unmount_chroot EXIT
        mount -t proc proc "$CHROOT/proc" &&
            mount -t tmpfs -o mode=1777 shm "$CHROOT/dev/shm" &&
            chroot "$CHROOT" "$@"
    )
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
    copy_tree "$WORKDIR/tree"
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
