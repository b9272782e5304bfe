#!/usr/bin/env bash
# test/run.sh: run every protea_reaper test suite from scratch.
#
# Installs the Debian packages it needs, builds and installs the extension,
# then, as an unprivileged user in a temporary directory, runs
#   - pg_regress         sql/*.sql against expected/*.out (own temp instance)
#   - pg_isolation_regress test/isolation/specs (own temp instance)
#   - prove              test/t/*.pl (each test starts its own clusters)
#   - the runbook's lowercase labels (test/runbook_tree.sh): pg_regress and
#     010_worker.pl again on that variant of PROTEA's schema
# and test/check_fixtures.sh (the specs carry test/protea_schema.sql).
# Each regress test, isolation spec, fixture check and TAP assertion counts
# once.
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

say "fixtures"
bash "$T/test/check_fixtures.sh" | tee "$WORKDIR/fixtures.out"
PASSED=$((PASSED + $(grep -c '\.\.\. ok' "$WORKDIR/fixtures.out")))
FAILED=$((FAILED + $(grep -c '\.\.\. FAILED' "$WORKDIR/fixtures.out")))

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

# run_tap TREE FILE...: prove each file in TREE; each assertion counts, and a
# file that dies without a failed assertion counts once
run_tap() {
    local tree=$1 t name status ok bad
    shift
    for t in "$@"; do
        [ -e "$tree/$t" ] || continue
        name=$t
        if as_pg make -C "$tree" -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS= ISOLATION= \
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
            for log in "$tree"/tmp_check/log/*; do
                [ -f "$log" ] && { echo "---- $log (tail)"; tail -n 80 "$log"; }
            done
        fi
        echo "$name ... $status ($ok assertions passed, $bad failed)"
    done
}

say "TAP (prove)"
run_tap "$T" $(cd "$T" && ls test/t/*.pl)

# The runbook's spelling: the same suites on a derived copy of the tree
R=$WORKDIR/runbook
cp -a "$T" "$R"
rm -rf "$R/results" "$R/tmp_check" "$R/regression.diffs" "$R/regression.out"
bash "$REPO/test/runbook_tree.sh" "$R"
[ "$(id -u)" -eq 0 ] && chown -R "$RUN_AS" "$R"
say "pg_regress, runbook labels (queued, running, ...)"
as_pg make -C "$R" -s PG_CONFIG="$PG_CONFIG" installcheck ISOLATION= TAP_TESTS= \
    EXTRA_REGRESS_OPTS="--temp-instance=$WORKDIR/regress-runbook" 2>&1 | tee "$WORKDIR/regress-runbook.out"
T=$R tally_regress "$WORKDIR/regress-runbook.out"
say "TAP (prove), runbook labels"
run_tap "$R" test/t/010_worker.pl

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
