#!/usr/bin/env bash
# test/run.sh: run every protea_reaper test suite from scratch.
#
# Installs the Debian packages it needs, builds and installs the extension,
# then, as an unprivileged user in a temporary directory, runs
#   - pg_regress         sql/*.sql against expected/*.out (own temp instance)
#   - pg_isolation_regress test/isolation/specs (own temp instance)
#   - prove              test/t/*.pl (each test starts its own clusters)
# Each regress test, isolation spec and TAP assertion counts once.
# Every server is stopped on exit.  Ends with "N passed, N failed" and exits
# non-zero on any failure.
set -u
. "$(dirname "$0")/lib.sh"

ensure_packages || exit 1
build_and_install || exit 1
make_workdir
trap stop_clusters EXIT
T=$WORKDIR/tree
PASSED=0
FAILED=0

# count "name ... ok" / "name ... FAILED" lines of pg_regress output
tally_regress() {
    local out=$1 ok bad
    ok=$(grep -cE '\.\.\. ok' "$out")
    bad=$(grep -cE '\.\.\. FAILED|\.\.\. failed' "$out")
    PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
    if [ "$bad" -gt 0 ] || ! grep -qE 'tests passed' "$out"; then
        [ "$bad" -eq 0 ] && FAILED=$((FAILED + 1))
        find "$T" -name regression.diffs -exec cat {} \;
    fi
}

say "pg_regress"
as_pg make -C "$T" -s PG_CONFIG="$PG_CONFIG" installcheck ISOLATION= TAP_TESTS= \
    EXTRA_REGRESS_OPTS="--temp-instance=$WORKDIR/regress" 2>&1 | tee "$WORKDIR/regress.out"
tally_regress "$WORKDIR/regress.out"

if [ -n "$(ls "$T"/test/isolation/specs/*.spec 2>/dev/null)" ]; then
    say "pg_isolation_regress"
    as_pg make -C "$T" -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS= TAP_TESTS= \
        EXTRA_REGRESS_OPTS="--temp-instance=$WORKDIR/isolation" 2>&1 | tee "$WORKDIR/isolation.out"
    tally_regress "$WORKDIR/isolation.out"
fi

say "TAP (prove)"
# each assertion counts; a file that dies without a failed assertion counts once
for t in "$T"/test/t/*.pl; do
    [ -e "$t" ] || continue
    name=test/t/$(basename "$t")
    if as_pg make -C "$T" -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS= ISOLATION= \
        PROVE_TESTS="$name" PROVE_FLAGS="-v" > "$WORKDIR/tap.out" 2>&1; then
        status=ok
    else
        status=FAILED
    fi
    ok=$(grep -cE '^ok [0-9]' "$WORKDIR/tap.out")
    bad=$(grep -cE '^not ok [0-9]' "$WORKDIR/tap.out")
    PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
    if [ "$status" = ok ]; then
        grep -E '^(ok|not ok) [0-9]|^# [^ ]' "$WORKDIR/tap.out" | grep -vE '^# (issuing|results|connect)' | head -200
    else
        [ "$bad" -eq 0 ] && FAILED=$((FAILED + 1))
        cat "$WORKDIR/tap.out"
        for log in "$T"/tmp_check/log/*; do
            [ -f "$log" ] && { echo "---- $log (tail)"; tail -n 80 "$log"; }
        done
    fi
    echo "$name ... $status ($ok assertions passed, $bad failed)"
done

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
