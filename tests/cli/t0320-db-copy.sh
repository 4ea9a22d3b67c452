#!/usr/bin/env bash
# pbiport db copy --from FILE --to URL: a SQLite deployment moved into an empty PostgreSQL
# database (a throwaway cluster, tests/tools/pg_cluster.py): every row of every table, the
# pbiport commands then work on the copy, a target that holds rows is refused (TAP output).
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib/tap.sh
unset REMOTE_USER HTTP_AUTHORIZATION APPLICATION_POWERBI_WEB_ENABLED APPLICATION_INGESTIONS_ENABLED

out=$(python3 tests/tools/pg_cluster.py start --url --owner-pid $$); st=$?
if [ $st -eq 77 ]; then echo "$out"; echo "1..0 # SKIP PostgreSQL is not installed"; exit 0; fi
[ $st -eq 0 ] || { echo "Bail out! the PostgreSQL cluster did not start"; exit 1; }
pgdir=$(printf '%s\n' "$out" | head -n 1)
url=$(printf '%s\n' "$out" | tail -n 1)
trap 'python3 tests/tools/pg_cluster.py stop "$pgdir"; rm -rf "$tmp"' EXIT

export PBIPORT_DB="$tmp/src.db"
"$BIN" migrate 2>"$tmp/err" && "$BIN" org create acme >/dev/null && "$BIN" org create beta >/dev/null &&
  "$BIN" user add alice --org acme --role owner --team data >/dev/null && "$BIN" token create alice >"$tmp/token"
check "a SQLite deployment with an org, a user, a team and a token" '[ $? -eq 0 ] && [ -s "$tmp/token" ]'
sqlite3 "$PBIPORT_DB" "INSERT INTO push_rate_events (dataset_key, at_ms, rows) VALUES ('d', 1765000000123, 10), ('d', 1765000000456, 20);
  INSERT INTO request_metrics (route, method, status, count, sum_seconds) VALUES ('/x', 'GET', 200, 3, 0.1234567890123);"

"$BIN" db copy --from "$PBIPORT_DB" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "without --to: usage, exit 2" '[ $rc -eq 2 ] && grep -q "^usage: pbiport db copy" "$tmp/err"'
"$BIN" db copy --from "$url" --to "$PBIPORT_DB" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "from PostgreSQL to a file: refused, exit 2" '[ $rc -eq 2 ] && grep -q "SQLite file and --to a PostgreSQL" "$tmp/err"'

"$BIN" db copy --from "$PBIPORT_DB" --to "$url" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "copy: exit 0, a line per table" '[ $rc -eq 0 ] && grep -q "^pbiport db copy: organizations: 2 rows" "$tmp/err" && grep -q "done" "$tmp/err"'
for t in organizations users teams team_members api_tokens push_rate_events request_metrics; do
  a=$(sqlite3 "$PBIPORT_DB" "SELECT COUNT(*) FROM $t"); b=$(psql "$url" -Atc "SELECT COUNT(*) FROM $t")
  check "$t: the same rows ($a)" '[ "$a" = "$b" ]'
done
at_ms=$(psql "$url" -Atc "SELECT MAX(at_ms) FROM push_rate_events")
secs=$(psql "$url" -Atc "SELECT sum_seconds FROM request_metrics")
check "integers and doubles kept exactly" '[ "$at_ms" = 1765000000456 ] && [ "$secs" = 0.1234567890123 ]'
next_id=$(psql "$url" -Atc "INSERT INTO push_rate_events (dataset_key, at_ms, rows) VALUES ('d', 1, 1) RETURNING id" | head -n 1)
check "identity continues after the copied ids" '[ "$next_id" = 3 ]'

export PBIPORT_DB="$url"
"$BIN" user add bob --org acme >"$tmp/out" 2>"$tmp/err"; rc=$?
check "pbiport on the copy: a user added to the copied org" '[ $rc -eq 0 ] && grep -qxE "[0-9a-f]{32}" "$tmp/out"'
"$BIN" org create acme >"$tmp/out" 2>"$tmp/err"; rc=$?
check "the copied org is there: duplicate, exit 2" '[ $rc -eq 2 ] && grep -q "already exists" "$tmp/err"'

"$BIN" db copy --from "$tmp/src.db" --to "$url" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "a target holding rows: refused, exit 2, left as it was" '[ $rc -eq 2 ] && grep -q "already holds rows" "$tmp/err" && [ "$(psql "$url" -Atc "SELECT COUNT(*) FROM users")" = 2 ]'
tap_done
