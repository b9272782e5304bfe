#!/usr/bin/env bash
# test/run.sh: run every protea_reaper test suite from scratch, against one
# PostgreSQL major.
#
#   sudo bash test/run.sh                 # PostgreSQL 15 (the default)
#   sudo PG_MAJOR=16 bash test/run.sh     # 16, 17, 18 (19: build and try)
#   sudo bash test/versions.sh            # every supported major, a table
#   sudo PG_MAJOR=19 BUILD_ONLY=1 bash test/run.sh   # only build and install
#
# Gets the server (test/lib.sh says from where), builds and installs the
# extension, then, as an unprivileged user in a temporary directory, runs
#   - a packaging check  META.json's version = the control file's default_version
#   - pg_regress         sql/*.sql against expected/*.out (own temp instance)
#   - pg_isolation_regress test/isolation/specs (own temp instance)
#   - prove              test/t/*.pl (each test starts its own clusters)
#   - the runbook's lowercase labels (test/runbook_tree.sh): pg_regress and
#     010_worker.pl again on that variant of PROTEA's schema
#   - test/check_fixtures.sh (the isolation specs carry test/protea_schema.sql)
# For 17 and up the same script runs again inside that major's chroot.
# Each regress test, isolation spec, fixture check and TAP assertion counts
# once; a test
# file whose run fails without a failed test in its output counts as one
# failure.  Every server is stopped on exit.  Ends with "N passed, N failed"
# and exits non-zero on any failure.
set -u
. "$(dirname "$0")/lib.sh"

ensure_server || { echo; echo "0 passed, 1 failed"; exit 1; }

# 17 and up: this script again, inside that major's chroot
[ "$PG_FROM" = chroot ] && { rerun_in_chroot test/run.sh; exit; }

# summary PASSED FAILED: the last two lines, which test/versions.sh reads;
# ", N skipped" when a TAP file or assertion was skipped (SKIPPED)
summary() {
    echo
    echo "PostgreSQL $PG_MAJOR: $("$PG_CONFIG" --version)"
    echo "$1 passed, $2 failed$([ "${SKIPPED:-0}" -gt 0 ] && echo ", $SKIPPED skipped")"
}

say "server: $("$PG_CONFIG" --version)"
build_and_install || { summary 0 1; exit 1; }
if [ -n "${BUILD_ONLY:-}" ]; then
    echo "build with -Werror and install ... ok"
    summary 1 0
    exit 0
fi
make_workdir
trap stop_clusters EXIT
T=$WORKDIR/tree
PASSED=0
FAILED=0
SKIPPED=0

# tally_regress OUT STATUS: count the tests in pg_regress output OUT, in
# either form it prints: "name ... ok" (15) or TAP, "ok 1 - name 27 ms" /
# "not ok 2 - name" (16 and up; "+" instead of "-" in a parallel group).
# STATUS is make's exit status: a failed run with no failed test counts once.
tally_regress() {
    local out=$1 status=$2 ok bad
    ok=$(grep -cE '\.\.\. ok|^ok [0-9]+ +[-+] ' "$out")
    bad=$(grep -cE '\.\.\. (FAILED|failed)|^not ok [0-9]+ +[-+] ' "$out")
    PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
    if [ "$status" -ne 0 ] || [ "$bad" -gt 0 ]; then
        [ "$bad" -eq 0 ] && FAILED=$((FAILED + 1))
        find "$T" -name regression.diffs -exec cat {} \;
    fi
}

say "packaging"
# PGXN wants a semantic version: default_version '1.0' is META.json's "1.0.0"
meta=$(perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or die "$!\n";
    print JSON::PP->new->decode(<$f>)->{version}' "$T/META.json" 2>&1)
control=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$T/protea_reaper.control")
semver=$control
case $semver in *.*.*) ;; *.*) semver=$semver.0 ;; ?*) semver=$semver.0.0 ;; esac
if [ -n "$control" ] && [ "$meta" = "$semver" ]; then
    PASSED=$((PASSED + 1))
    echo "META.json version $meta = default_version '$control' ... ok"
else
    FAILED=$((FAILED + 1))
    echo "META.json version '$meta' != default_version '$control' ($semver) ... FAILED"
fi

say "fixtures"
bash "$T/test/check_fixtures.sh" | tee "$WORKDIR/fixtures.out"
PASSED=$((PASSED + $(grep -c '\.\.\. ok' "$WORKDIR/fixtures.out")))
FAILED=$((FAILED + $(grep -c '\.\.\. FAILED' "$WORKDIR/fixtures.out")))

say "pg_regress"
as_pg make -C "$T" -s PG_CONFIG="$PG_CONFIG" installcheck ISOLATION= TAP_TESTS= \
    EXTRA_REGRESS_OPTS="--temp-instance=$WORKDIR/regress" 2>&1 | tee "$WORKDIR/regress.out"
status=${PIPESTATUS[0]}
tally_regress "$WORKDIR/regress.out" $status

if [ -n "$(ls "$T"/test/isolation/specs/*.spec 2>/dev/null)" ]; then
    say "pg_isolation_regress"
    as_pg make -C "$T" -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS= TAP_TESTS= \
        EXTRA_REGRESS_OPTS="--temp-instance=$WORKDIR/isolation" 2>&1 | tee "$WORKDIR/isolation.out"
    status=${PIPESTATUS[0]}
    tally_regress "$WORKDIR/isolation.out" $status
fi

# run_tap TREE FILE...: prove each file in TREE; each assertion counts, and a
# file that dies without a failed assertion counts once.  A skipped file
# (prove's "... skipped: why": 120_partitions.pl without pg_partman) or
# assertion counts as skipped, not passed.
run_tap() {
    local tree=$1 t status ok bad skip
    shift
    for t in "$@"; do
        [ -e "$tree/$t" ] || continue
        if as_pg make -C "$tree" -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS= ISOLATION= \
            PROVE_TESTS="$t" PROVE_FLAGS="-v" > "$WORKDIR/tap.out" 2>&1; then
            status=ok
        else
            status=FAILED
        fi
        ok=$(grep -E '^ok [0-9]' "$WORKDIR/tap.out" | grep -cviE '# skip')
        bad=$(grep -cE '^not ok [0-9]' "$WORKDIR/tap.out")
        skip=$(grep -ciE '^ok [0-9].*# skip' "$WORKDIR/tap.out")
        grep -qiE '^1\.\.0 # skip|\.\. skipped: ' "$WORKDIR/tap.out" && skip=$((skip + 1))
        PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad)); SKIPPED=$((SKIPPED + skip))
        if [ "$status" = ok ]; then
            grep -E '^(ok|not ok) [0-9]|^# [^ ]|^1\.\.0 |\.\. skipped: ' "$WORKDIR/tap.out" | grep -vE '^# (issuing|results|connect)' | head -200
        else
            [ "$bad" -eq 0 ] && FAILED=$((FAILED + 1))
            cat "$WORKDIR/tap.out"
            for log in "$tree"/tmp_check/log/*; do
                [ -f "$log" ] && { echo "---- $log (tail)"; tail -n 80 "$log"; }
            done
        fi
        echo "$t ... $status ($ok assertions passed, $bad failed$([ "$skip" -gt 0 ] && echo ", $skip skipped"))"
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
status=${PIPESTATUS[0]}
T=$R tally_regress "$WORKDIR/regress-runbook.out" $status
say "TAP (prove), runbook labels"
run_tap "$R" test/t/010_worker.pl

summary $PASSED $FAILED
[ "$FAILED" -eq 0 ]
