#!/usr/bin/env bash
# bench/extract_sql.sh SWEEP_C JOB_TABLE EVENT_TABLE NAME...
# Prints the text of each named SQL string constant of src/sweep.c
# (static const char *const NAME = "..." "...";) as one line, with the
# table placeholders %1$s / %2$s replaced, so that the benchmark EXPLAINs
# exactly the statements the extension runs.  Prints nothing for a name
# sweep.c does not define.
set -eu
src=$1 job=$2 event=$3
shift 3
for name in "$@"; do
    awk -v name="$name" '
        $0 ~ "static const char \\*const " name " =" { on = 1; next }
        on {
            line = $0
            sub(/^[ \t]*"/, "", line)
            done = (line ~ /";[ \t]*$/)
            sub(/"[ \t]*;?[ \t]*$/, "", line)
            gsub(/\\"/, "\"", line)
            printf "%s", line
            if (done) { print ""; exit }
        }' "$src" | sed "s/%1\\\$s/$job/g; s/%2\\\$s/$event/g"
done
