#!/usr/bin/env bash
# test/runbook_tree.sh TREE: turn a copy of the source tree into the
# runbook's variant of PROTEA's database, in place.
#
# PROTEA's ORM writes the job_status labels in upper case (QUEUED, RUNNING,
# SUCCEEDED, FAILED, CANCELLED); databases built by hand from the old
# runbook have them in lower case.  The reaper reads the labels from the
# catalog, so the same tests must pass on both.  This lowercases the five
# labels, as whole upper-case words, in the schema (test/protea_schema.sql),
# the regress inputs and their expected outputs, and the TAP tests: the
# variant is derived from the one source, never kept by hand.
set -euo pipefail
tree=${1:?usage: test/runbook_tree.sh TREE}
labels='QUEUED|RUNNING|SUCCEEDED|FAILED|CANCELLED'
for f in "$tree"/test/protea_schema.sql "$tree"/sql/*.sql "$tree"/expected/*.out \
         "$tree"/test/t/*.pl "$tree"/test/t/*.pm; do
    case $f in */protea_reaper--*.sql) continue ;; esac
    [ -f "$f" ] && sed -E -i "s/\b($labels)\b/\L\1/g" "$f"
done
# the variant must differ where the labels are, or it tests nothing new
grep -q "'running'" "$tree/test/protea_schema.sql"
