#!/usr/bin/env bash
# test/versions.sh: every test suite on every supported PostgreSQL major.
#
#   sudo bash test/versions.sh              # 15 16 17 18, the packages, the metrics
#   sudo MAJORS="16 19" bash test/versions.sh
#   sudo PKG_MAJORS= bash test/versions.sh   # without the packages leg
#   sudo METRICS=0 bash test/versions.sh     # without the metrics leg
#
# Runs test/run.sh once per major (PG_MAJOR=NN; test/lib.sh says where each
# server comes from), in LANES (2) lanes at once, each with its output in
# $PROTEA_CACHE/logs/runNN.log (shown in full when that major fails),
# then prints a table (major, exact server version, passed, failed, skipped,
# seconds) and ends with the overall "N passed, N failed" (", N skipped"
# when something was skipped); exits non-zero if anything failed.  After the
# majors, the packages leg (test/packages.sh: build, install, installcheck
# and remove postgresql-NN-protea-reaper for PKG_MAJORS, default 15 17 18) is
# one more row, its output in $PROTEA_CACHE/logs/packages.log; then the
# metrics leg (test/metrics.sh: postgres_exporter scrapes a reaped cluster
# of METRICS_MAJOR, default 15, and promtool tests the alert rules; METRICS=0
# leaves it out), its output in $PROTEA_CACHE/logs/metrics.log.
set -u
. "$(dirname "$0")/lib.sh"

MAJORS=${MAJORS:-"15 16 17 18"}
# Majors run in this many lanes at once: the suites mostly wait on
# servers, so two lanes on two cores take about half the time
LANES=${LANES:-2}
LOGS=$PROTEA_CACHE/logs
mkdir -p "$LOGS"
TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0
TABLE=""

# run_major NN: test/run.sh for that major; its result in $LOGS/resultNN
run_major() {
    local major=$1 log=$LOGS/run$1.log t0 rc
    t0=$(date +%s)
    PG_MAJOR=$major bash "$REPO/test/run.sh" > "$log" 2>&1
    rc=$?
    echo "$rc $(( $(date +%s) - t0 ))" > "$LOGS/result$major"
}

# First every server, one after another (apt and dpkg take one client at a
# time): installed, built or made the first time, then found complete
set -- $MAJORS
for major in "$@"; do
    PG_MAJOR=$major bash -c '. "$1/test/lib.sh" && ensure_server' _ "$REPO" ||
        { echo "PostgreSQL $major: no server"; echo; echo "0 passed, 1 failed"; exit 1; }
done

# The lanes: major i goes to lane i % LANES, each lane one major at a time
lane_pids=""
for ((lane = 0; lane < LANES; lane++)); do
    lane_majors=""
    i=0
    for major in "$@"; do
        [ $((i % LANES)) -eq $lane ] && lane_majors="$lane_majors $major"
        i=$((i + 1))
    done
    [ -n "$lane_majors" ] || continue
    say "lane $lane: PostgreSQL$lane_majors (logs: $LOGS/runNN.log)"
    ( for major in $lane_majors; do rm -f "$LOGS/result$major"; run_major "$major"; done ) &
    lane_pids="$lane_pids $!"
done
wait $lane_pids

for major in "$@"; do
    log=$LOGS/run$major.log
    read -r rc seconds < "$LOGS/result$major" 2>/dev/null || { rc=1; seconds=?; }
    # run.sh's last lines: "PostgreSQL NN: PostgreSQL 17.12 (...)", "N passed, N failed"
    version=$(sed -n 's/^PostgreSQL [0-9]*: PostgreSQL \([^ ]*\).*/\1/p' "$log" | tail -n 1)
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
    passed=${counts%% passed*}
    failed=${counts#*, }; failed=${failed%% failed*}
    skipped=0
    case $counts in *skipped) skipped=${counts##*failed, }; skipped=${skipped%% skipped} ;; esac
    [ -n "$counts" ] || { passed=0; failed=1; }
    # a run that failed without counting a failure still counts as one
    [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
    [ "$failed" -ne 0 ] && cat "$log"
    echo "PostgreSQL $major: ${version:-?}: $passed passed, $failed failed, $skipped skipped, ${seconds} s"
    TOTAL_PASSED=$((TOTAL_PASSED + passed)); TOTAL_FAILED=$((TOTAL_FAILED + failed))
    TOTAL_SKIPPED=$((TOTAL_SKIPPED + skipped))
    TABLE="$TABLE$(printf '| %-5s | %-14s | %6s | %6s | %7s | %7s |' "$major" "${version:-?}" "$passed" "$failed" "$skipped" "$seconds")
"
done

# The packages leg, after the lanes (it needs both cores less than they do)
PKG_MAJORS=${PKG_MAJORS-"15 17 18"}
if [ -n "$PKG_MAJORS" ]; then
    say "packages: postgresql-NN-protea-reaper for$(printf ' %s' $PKG_MAJORS) (log: $LOGS/packages.log)"
    log=$LOGS/packages.log
    t0=$(date +%s)
    PKG_MAJORS=$PKG_MAJORS bash "$REPO/test/packages.sh" > "$log" 2>&1
    rc=$?
    seconds=$(( $(date +%s) - t0 ))
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    passed=${counts%% passed*}
    failed=${counts#*, }; failed=${failed%% failed}
    [ -n "$counts" ] || { passed=0; failed=1; }
    [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
    [ "$failed" -ne 0 ] && cat "$log"
    echo "packages ($PKG_MAJORS): $passed passed, $failed failed, ${seconds} s"
    TOTAL_PASSED=$((TOTAL_PASSED + passed)); TOTAL_FAILED=$((TOTAL_FAILED + failed))
    TABLE="$TABLE$(printf '| %-5s | %-14s | %6s | %6s | %7s | %7s |' debs "pkgs $(echo $PKG_MAJORS | tr ' ' ,)" "$passed" "$failed" 0 "$seconds")
"
fi

# The metrics leg: postgres_exporter and promtool against the host's
# server (test/metrics.sh; METRICS_MAJOR 15 or 16, METRICS=0 leaves it out)
if [ "${METRICS:-1}" != 0 ]; then
    METRICS_MAJOR=${METRICS_MAJOR:-15}
    log=$LOGS/metrics.log
    say "metrics: postgres_exporter and promtool on PostgreSQL $METRICS_MAJOR (log: $log)"
    t0=$(date +%s)
    PG_MAJOR=$METRICS_MAJOR bash "$REPO/test/metrics.sh" > "$log" 2>&1
    rc=$?
    seconds=$(( $(date +%s) - t0 ))
    version=$(sed -n 's/^PostgreSQL [0-9]*: PostgreSQL \([^ ;]*\).*/\1/p' "$log" | tail -n 1)
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    passed=${counts%% passed*}
    failed=${counts#*, }; failed=${failed%% failed}
    [ -n "$counts" ] || { passed=0; failed=1; }
    [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
    [ "$failed" -ne 0 ] && cat "$log"
    echo "metrics (PostgreSQL $METRICS_MAJOR): $passed passed, $failed failed, ${seconds} s"
    TOTAL_PASSED=$((TOTAL_PASSED + passed)); TOTAL_FAILED=$((TOTAL_FAILED + failed))
    TABLE="$TABLE$(printf '| %-5s | %-14s | %6s | %6s | %7s | %7s |' metr "${version:-?}" "$passed" "$failed" 0 "$seconds")
"
fi

echo
printf '| %-5s | %-14s | %6s | %6s | %7s | %7s |\n' major server passed failed skipped seconds
printf '| %-5s | %-14s | %6s | %6s | %7s | %7s |\n' ----- -------------- ------ ------ ------- -------
printf '%s' "$TABLE"
echo
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed$([ "$TOTAL_SKIPPED" -gt 0 ] && echo ", $TOTAL_SKIPPED skipped")"
[ "$TOTAL_FAILED" -eq 0 ]
