#!/usr/bin/env bash
# test/packages.sh: the Debian packages (debian/), built and tested for each
# major a Debian release ships here.
#
#   sudo bash test/packages.sh                  # 15 (bookworm), 17 (trixie), 18 (testing)
#   sudo PKG_MAJORS=17 bash test/packages.sh
#   sudo PKG_MAJORS= bash test/packages.sh      # only the image
#   sudo PKG_IMAGE=0 bash test/packages.sh      # only the packages
#
# Each major's release has two chroots, made once with mmdebstrap under
# $PROTEA_CACHE and reused (a .complete marker, written last):
#   pkg-NN-build  the release plus debian/control's Build-Depends
#   pkg-NN-test   the bare release (apt only)
# Every step runs in a throwaway overlay over one of them, so each build and
# each test starts from the cached chroot as it was made; apt's downloads are
# kept in pkg-NN-archives.  For each major:
#   build    a copy of the tree (no .git), `pg_buildext updatecontrol`, then
#            `dpkg-buildpackage -b`, which also runs the regress suite against
#            the built files (dh_pgxs_test); the result must be one
#            postgresql-NN-protea-reaper_<default_version>-*.deb
#   install  `apt-get install ./that.deb` plus debian/tests/control's Depends
#   test     debian/tests/installcheck from a copy of the tree: the regress
#            suite in a pg_virtualenv cluster preloading the library; each
#            regress test counts, and every test of the Makefile's REGRESS
#            must have run
#   remove   `apt-get purge`: the package is gone, and nothing named
#            protea_reaper is left in the server's library and extension
#            directories
# Then (PKG_IMAGE=1, the default) docker/test-image.sh: PROTEA's image recipe
# built with podman on a trixie base and the demo's checks against it; its
# checks count here, its output in $PROTEA_CACHE/logs/image.log.
# The .debs are copied to $PROTEA_CACHE/packages/NN/, the logs to
# $PROTEA_CACHE/logs/pkgNN-*.log (shown when a step fails).  Ends with
# "N passed, N failed" and exits non-zero on any failure.
set -u
. "$(dirname "$0")/lib.sh"

PACKAGES="mmdebstrap rsync util-linux"
PKG_MAJORS=${PKG_MAJORS-"15 17 18"}
OUT=$PROTEA_CACHE/packages
LOGS=$PROTEA_CACHE/logs
RUN=$PROTEA_CACHE/pkg-run
PASSED=0
FAILED=0
CHROOT_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
    DEBIAN_FRONTEND=noninteractive)

# counted MAJOR WHAT ok|FAILED [LOG]: one check; a failed one shows its log
counted() {
    echo "PostgreSQL $1: $2 ... $3"
    if [ "$3" = ok ]; then PASSED=$((PASSED + 1)); else
        FAILED=$((FAILED + 1))
        [ -n "${4:-}" ] && [ -f "$4" ] && { echo "---- $4 (tail)"; tail -n 150 "$4"; }
    fi
}

# pkg_suite NN: the Debian release that ships postgresql-NN
pkg_suite() {
    case $1 in
        15) echo bookworm ;;
        17) echo trixie ;;
        18) echo testing ;;
        *) return 1 ;;
    esac
}

# ensure_pkg_chroot NN build|test: $PROTEA_CACHE/pkg-NN-KIND, made once
ensure_pkg_chroot() {
    local major=$1 kind=$2 suite dir log hooks=()
    dir=$PROTEA_CACHE/pkg-$major-$kind
    [ -f "$dir/.complete" ] && return 0
    suite=$(pkg_suite "$major")
    log=$LOGS/pkg$major-chroot-$kind.log
    say "making $dir (Debian $suite; once, ~1-2 min)"
    CHROOT=$dir unmount_chroot
    rm -rf --one-file-system "$dir"
    if [ "$kind" = build ]; then
        # debian/control's Build-Depends, installed the way a buildd does;
        # no server is started (policy-rc.d) and no cluster created
        hooks=(--include=build-essential
            --customize-hook='printf "#!/bin/sh\nexit 101\n" > "$1/usr/sbin/policy-rc.d" && chmod 755 "$1/usr/sbin/policy-rc.d"'
            --customize-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.d/00-protea-reaper.conf"'
            --customize-hook="mkdir -p \"\$1/tmp/pkgsrc/debian\" && cp '$REPO/debian/control' \"\$1/tmp/pkgsrc/debian/\""
            --customize-hook='chroot "$1" apt-get build-dep -y -q --no-install-recommends /tmp/pkgsrc'
            --customize-hook='rm -rf "$1/tmp/pkgsrc"')
    fi
    # testing's Release file has expired here; the option stays in the chroot
    mmdebstrap --variant=apt --dpkgopt=force-unsafe-io \
        --aptopt='Acquire::Check-Valid-Until "false"' "${hooks[@]}" \
        "$suite" "$dir" "deb $DEBIAN_MIRROR $suite main" > "$log" 2>&1 || {
        tail -n 40 "$log"
        echo "making $dir failed (log: $log)" >&2
        rm -rf --one-file-system "$dir"
        return 1
    }
    touch "$dir/.complete"
}

# open_overlay NN build|test: CHROOT, a writable overlay over pkg-NN-KIND
# whose changes go to $RUN and are dropped by close_overlay; apt's
# downloads go to pkg-NN-archives
open_overlay() {
    local base=$PROTEA_CACHE/pkg-$1-$2 archives=$PROTEA_CACHE/pkg-$1-archives
    close_overlay
    mkdir -p "$RUN/upper" "$RUN/work" "$RUN/root" "$archives"
    CHROOT=$RUN/root
    mount -t overlay overlay -o "lowerdir=$base,upperdir=$RUN/upper,workdir=$RUN/work" "$CHROOT" &&
        mount --bind "$archives" "$CHROOT/var/cache/apt/archives"
}

# close_overlay: undo open_overlay and run_in_chroot (also what a killed run
# left), and remove the overlay's changes
close_overlay() {
    CHROOT=$RUN/root
    unmount_chroot
    local m
    for m in "$CHROOT/var/cache/apt/archives" "$CHROOT"; do
        mountpoint -q "$m" 2>/dev/null && { umount "$m" || umount -l "$m"; }
    done
    rm -rf --one-file-system "$RUN"
}

# build_major NN: the .deb of that major, built in an overlay over
# pkg-NN-build; sets DEB (its path under $OUT/NN) or returns 1
build_major() {
    local major=$1 log=$LOGS/pkg$1-build.log version debs
    DEB=
    open_overlay "$major" build || return 1
    mkdir -p "$CHROOT/build/protea-reaper"
    copy_tree "$CHROOT/build/protea-reaper"
    # Build-Depends changed since the chroot was made: apt-get build-dep
    run_in_chroot "${CHROOT_ENV[@]}" bash -c '
        set -e
        cd /build/protea-reaper
        if ! dpkg-checkbuilddeps 2>/dev/null; then
            apt-get update -q
            apt-get build-dep -y -q --no-install-recommends .
        fi
        pg_buildext updatecontrol
        dpkg-buildpackage -us -uc -b' > "$log" 2>&1 || return 1
    version=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$REPO/protea_reaper.control")
    rm -rf "$OUT/$major"
    mkdir -p "$OUT/$major"
    cp "$CHROOT"/build/*.deb "$OUT/$major/"
    debs=$(cd "$OUT/$major" && ls)
    echo "built: $debs" >> "$log"
    # the package, beside its -dbgsym
    DEB=$(cd "$OUT/$major" && ls "postgresql-$major-protea-reaper_$version-"*.deb 2>/dev/null)
    if [ -z "$DEB" ] || [ "$(echo "$DEB" | wc -l)" -ne 1 ]; then
        echo "expected one postgresql-$major-protea-reaper_$version-*.deb, got: $debs" >> "$log"
        DEB=
        return 1
    fi
    DEB=$OUT/$major/$DEB
}

# test_deps: debian/tests/control's Depends, without "@" (the package itself)
test_deps() {
    awk '/^Depends:/ { on = 1; sub(/^Depends:/, ""); print; next }
         on && /^[ \t]/ { print; next } { on = 0 }' "$REPO/debian/tests/control" |
        tr ',' '\n' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//' | grep -vx '@' | grep -v '^$' | tr '\n' ' '
}

# test_major NN: install DEB in an overlay over the bare pkg-NN-test, run
# debian/tests/installcheck, remove it; each step counted
test_major() {
    local major=$1 log listed expected ok bad status left
    open_overlay "$major" test || { counted "$major" "overlay over pkg-$major-test" FAILED; return 1; }
    printf '#!/bin/sh\nexit 101\n' > "$CHROOT/usr/sbin/policy-rc.d"	# start no server
    chmod 755 "$CHROOT/usr/sbin/policy-rc.d"
    mkdir -p "$CHROOT/pkgs" "$CHROOT/src/protea-reaper"
    cp "$DEB" "$CHROOT/pkgs/"
    copy_tree "$CHROOT/src/protea-reaper"

    log=$LOGS/pkg$major-install.log
    if run_in_chroot "${CHROOT_ENV[@]}" bash -c '
        set -e
        apt-get update -q
        apt-get install -y -q --no-install-recommends "/pkgs/$1" $2
        dpkg -L "postgresql-$3-protea-reaper"' _ "$(basename "$DEB")" "$(test_deps)" "$major" > "$log" 2>&1
    then counted "$major" "apt-get install ./$(basename "$DEB")" ok
    else counted "$major" "apt-get install ./$(basename "$DEB")" FAILED "$log"; return 1; fi
    # what dpkg installed: files only
    listed=$(grep -E "^/usr/(lib|share)/postgresql/$major/" "$log" | grep -E '\.(so|control|sql|bc)$')
    echo "$listed" | sed 's/^/  /'

    log=$LOGS/pkg$major-installcheck.log
    run_in_chroot "${CHROOT_ENV[@]}" PGPORT="$(free_port)" \
        bash -c 'cd /src/protea-reaper && debian/tests/installcheck' > "$log" 2>&1
    status=$?
    grep -E '^(### |ok |not ok |test |.*\.\.\. )' "$log" | grep -v '^### End' | sed 's/^/  /'
    # pg_regress's lines, as test/run.sh counts them (15: "name ... ok",
    # 16 and up: "ok 1 - name 27 ms")
    ok=$(grep -cE '\.\.\. ok|^ok [0-9]+ +[-+] ' "$log")
    bad=$(grep -cE '\.\.\. (FAILED|failed)|^not ok [0-9]+ +[-+] ' "$log")
    expected=$(sed -n 's/^REGRESS *= *//p' "$REPO/Makefile" | wc -w)
    PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
    echo "PostgreSQL $major: installcheck: $ok regress tests passed, $bad failed (of $expected), exit status $status"
    if [ "$status" -ne 0 ] || [ "$bad" -gt 0 ] || [ "$ok" -ne "$expected" ]; then
        [ "$bad" -eq 0 ] && FAILED=$((FAILED + 1))
        echo "---- $log (tail)"; tail -n 150 "$log"
    fi

    log=$LOGS/pkg$major-remove.log
    if run_in_chroot "${CHROOT_ENV[@]}" bash -c '
        set -e
        apt-get purge -y -q "postgresql-$1-protea-reaper"
        ! dpkg -s "postgresql-$1-protea-reaper" 2>/dev/null | grep -q "^Status: .* installed"' _ "$major" > "$log" 2>&1
    then counted "$major" "apt-get purge postgresql-$major-protea-reaper" ok
    else counted "$major" "apt-get purge postgresql-$major-protea-reaper" FAILED "$log"; fi
    # nothing of it left: neither a file dpkg listed nor anything named
    # protea_reaper in the server's directories
    left=$( { for f in $listed; do [ -e "$CHROOT$f" ] && echo "$f"; done
              find "$CHROOT/usr/lib/postgresql/$major" "$CHROOT/usr/share/postgresql/$major" \
                  -name 'protea_reaper*' 2>/dev/null | sed "s|^$CHROOT||"; } | sort -u)
    if [ -z "$listed" ]; then counted "$major" "nothing left after purge (dpkg listed no files)" FAILED
    elif [ -z "$left" ]; then counted "$major" "nothing left after purge ($(echo "$listed" | wc -l) files gone)" ok
    else echo "$left" | sed 's/^/  left: /'; counted "$major" "nothing left after purge" FAILED; fi
    run_in_chroot "${CHROOT_ENV[@]}" apt-get autoclean -q >/dev/null 2>&1	# old downloads go
    close_overlay
}

ensure_packages || { echo; echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$PROTEA_CACHE" "$LOGS"
# one run at a time per cache: the overlay and the chroots are shared
exec 8> "$PROTEA_CACHE/packages.lock"
flock 8
trap close_overlay EXIT
close_overlay	# what a killed run left

for major in $PKG_MAJORS; do
    pkg_suite "$major" >/dev/null || { counted "$major" "no Debian release ships postgresql-$major here" FAILED; continue; }
    t0=$(date +%s)
    say "PostgreSQL $major: Debian $(pkg_suite "$major")"
    if ! ensure_pkg_chroot "$major" build || ! ensure_pkg_chroot "$major" test; then
        counted "$major" "chroots" FAILED
        continue
    fi
    if build_major "$major"; then
        counted "$major" "build $(basename "$DEB") (with dh_pgxs_test's regress run)" ok
        close_overlay
        test_major "$major"
    else
        counted "$major" "build postgresql-$major-protea-reaper" FAILED "$LOGS/pkg$major-build.log"
        close_overlay
    fi
    echo "PostgreSQL $major: packages done in $(( $(date +%s) - t0 )) s"
done

close_overlay
if [ "${PKG_IMAGE:-1}" = 1 ]; then
    say "PROTEA's image: docker/test-image.sh (log: $LOGS/image.log)"
    t0=$(date +%s)
    bash "$REPO/docker/test-image.sh" > "$LOGS/image.log" 2>&1
    rc=$?
    grep -E ' \.\.\. (ok|FAILED)$' "$LOGS/image.log" | sed 's/^/image: /'
    grep -E '^image: SKIPPED' "$LOGS/image.log"
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOGS/image.log" | tail -n 1)
    ok=${counts%% passed*}
    bad=${counts#*, }; bad=${bad%% failed}
    [ -n "$counts" ] || { ok=0; bad=1; }
    [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
    PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
    [ "$bad" -ne 0 ] && { echo "---- $LOGS/image.log (tail)"; tail -n 80 "$LOGS/image.log"; }
    echo "image: done in $(( $(date +%s) - t0 )) s"
fi

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
