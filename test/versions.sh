#!/usr/bin/env bash
# test/versions.sh: every test suite on every supported PostgreSQL major.
#
#   sudo bash test/versions.sh              # 15 16 17 18
#   sudo MAJORS="16 19" bash test/versions.sh
#
# Runs test/run.sh once per major (PG_MAJOR=NN; test/lib.sh says where each
# server comes from), one after another, each with its output in
# $PROTEA_CACHE/logs/runNN.log (shown in full when that major fails),
# then prints a table (major, exact server version, passed, failed,
# seconds) and ends with the overall "N passed, N failed"; exits non-zero
# if anything failed.
set -u
. "$(dirname "$0")/lib.sh"

MAJORS=${MAJORS:-"15 16 17 18"}
LOGS=$PROTEA_CACHE/logs
mkdir -p "$LOGS"
TOTAL_PASSED=0
TOTAL_FAILED=0
TABLE=""

for major in $MAJORS; do
    log=$LOGS/run$major.log
    say "PostgreSQL $major (log: $log)"
    t0=$(date +%s)
    PG_MAJOR=$major bash "$REPO/test/run.sh" > "$log" 2>&1
    rc=$?
    seconds=$(( $(date +%s) - t0 ))
    # run.sh's last lines: "PostgreSQL NN: PostgreSQL 17.12 (...)", "N passed, N failed"
    version=$(sed -n 's/^PostgreSQL [0-9]*: PostgreSQL \([^ ]*\).*/\1/p' "$log" | tail -n 1)
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    passed=${counts%% passed*}
    failed=${counts#*, }; failed=${failed%% failed}
    [ -n "$counts" ] || { passed=0; failed=1; }
    # a run that failed without counting a failure still counts as one
    [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
    [ "$failed" -ne 0 ] && cat "$log"
    echo "PostgreSQL $major: ${version:-?}: $passed passed, $failed failed, ${seconds} s"
    TOTAL_PASSED=$((TOTAL_PASSED + passed)); TOTAL_FAILED=$((TOTAL_FAILED + failed))
    TABLE="$TABLE$(printf '| %-5s | %-14s | %6s | %6s | %7s |' "$major" "${version:-?}" "$passed" "$failed" "$seconds")
"
done

echo
printf '| %-5s | %-14s | %6s | %6s | %7s |\n' major server passed failed seconds
printf '| %-5s | %-14s | %6s | %6s | %7s |\n' ----- -------------- ------ ------ -------
printf '%s' "$TABLE"
echo
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_FAILED" -eq 0 ]
