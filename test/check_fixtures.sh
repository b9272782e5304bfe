#!/usr/bin/env bash
# test/check_fixtures.sh: every isolation spec carries PROTEA's schema
# exactly as test/protea_schema.sql has it (a spec cannot include a file),
# between "-- BEGIN test/protea_schema.sql" and "-- END ..." lines.  Prints
# one "ok"/"FAILED" line per spec and exits non-zero on any drift.
set -u
cd "$(dirname "$0")/.."
want=$(grep -v '^--' test/protea_schema.sql | sed -e '/./,$!d')
status=0
for spec in test/isolation/specs/*.spec; do
    have=$(sed -n '/^-- BEGIN test\/protea_schema.sql$/,/^-- END test\/protea_schema.sql$/p' "$spec" | sed '1d;$d')
    if [ "$have" = "$want" ]; then
        echo "fixture $spec ... ok"
    else
        echo "fixture $spec ... FAILED (its schema differs from test/protea_schema.sql)"
        diff <(echo "$want") <(echo "$have") | head -20
        status=1
    fi
done
exit $status
