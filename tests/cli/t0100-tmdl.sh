#!/usr/bin/env bash
# pbiport tmdl: stdout and --out output, --server/--mode/--host/--warehouse/--http-path,
# --templates and PBIPORT_TEMPLATE_PATH overrides, exit codes and messages (TAP output).
set -u
cd "$(dirname "$0")/../.."
BIN=${PBIPORT_BIN:-$PWD/bin/pbiport}
FIX=tests/fixtures/render/contracts
ORDERS=examples/contracts/orders.odcs.yaml
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
unset PBIPORT_TEMPLATE_PATH
n=0; failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }

"$BIN" tmdl "$ORDERS" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "stdout render exits 0, quiet stderr" '[ $rc -eq 0 ] && [ ! -s "$tmp/err" ]'
check "one ==> path <== header per file, sorted" '[ "$(grep "^==> " "$tmp/out" | tr "\n" "|")" = "==> definition.pbism <==|==> definition/database.tmdl <==|==> definition/expressions.tmdl <==|==> definition/model.tmdl <==|==> definition/relationships.tmdl <==|==> definition/tables/customers.tmdl <==|==> definition/tables/order_lines.tmdl <==|==> definition/tables/orders.tmdl <==|" ]'
check "first server used by default" 'grep -q "expression SnowflakeWarehouse = \"REPORTING_WH\"" "$tmp/out"'

"$BIN" tmdl "$ORDERS" --out "$tmp/model" >"$tmp/out2" 2>"$tmp/err"; rc=$?
check "--out writes the files" '[ $rc -eq 0 ] && [ ! -s "$tmp/out2" ] && [ -f "$tmp/model/definition.pbism" ] && [ -f "$tmp/model/definition/tables/order_lines.tmdl" ]'
check "files are LF-only and end with a newline" '! grep -rlq $'"'"'\r'"'"' "$tmp/model" && for f in $(find "$tmp/model" -type f); do [ "$(tail -c1 "$f" | od -An -c | tr -d " ")" = "\n" ] || exit 1; done'
check "pbism is valid JSON with the 1.0.0 schema" 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"version\"]==\"4.2\" and d[\"settings\"]=={} and d[\"\$schema\"].endswith(\"/definitionProperties/1.0.0/schema.json\")" "$tmp/model/definition.pbism"'
check "output parses with tmdl-parse" '"$BIN" tmdl-parse "$tmp/model" | grep -qx "model Model (culture en-US): 3 tables, 2 relationships, 3 expressions, 2 annotations, 7 files"'

"$BIN" tmdl "$ORDERS" --out "$tmp/model2" 2>/dev/null
check "output is deterministic" 'diff -r "$tmp/model" "$tmp/model2" >/dev/null'

"$BIN" tmdl "$ORDERS" --server development --mode directquery >"$tmp/out" 2>"$tmp/err"; rc=$?
check "--server and --mode directquery" '[ $rc -eq 0 ] && grep -q "\"SALES_DEV\" meta" "$tmp/out" && [ "$(grep -c "mode: directQuery" "$tmp/out")" = 3 ]'

"$BIN" tmdl "$ORDERS" --warehouse=OTHER_WH --http-path /x >"$tmp/out" 2>"$tmp/err"; rc=$?
check "contract warehouse wins; --http-path ignored for snowflake" '[ $rc -eq 0 ] && grep -q "\"REPORTING_WH\" meta" "$tmp/out" && ! grep -q OTHER_WH "$tmp/out"'

"$BIN" tmdl "$FIX/odd-names.snowflake.odcs.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "missing warehouse: exit 2 with how to fix" '[ $rc -eq 2 ] && [ ! -s "$tmp/out" ] && grep -qx "pbiport tmdl: server \"prod\" (snowflake): no warehouse; add \"warehouse\" to the server or pass --warehouse" "$tmp/err"'

"$BIN" tmdl "$FIX/odd-names.snowflake.odcs.yaml" --warehouse WH >"$tmp/out" 2>"$tmp/err"; rc=$?
check "--warehouse fills it in; host from account" '[ $rc -eq 0 ] && grep -q "SnowflakeHost = \"acme-prod.snowflakecomputing.com\"" "$tmp/out" && grep -q "^==> definition/tables/orders_2024.tmdl <==" "$tmp/out"'

grep -v "^    host: adb-" "$FIX/lakehouse.databricks.odcs.yaml" >"$tmp/nohost.yaml"
"$BIN" tmdl "$tmp/nohost.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "databricks without host: exit 2 naming --host" '[ $rc -eq 2 ] && grep -q "no host; add \"host\" to the server or pass --host$" "$tmp/err"'
"$BIN" tmdl "$tmp/nohost.yaml" --host=adb-1.2.azuredatabricks.net >"$tmp/out" 2>"$tmp/err"; rc=$?
check "--host fills it in" '[ $rc -eq 0 ] && grep -q "DatabricksHost = \"adb-1.2.azuredatabricks.net\"" "$tmp/out"'
"$BIN" tmdl "$FIX/lakehouse.databricks.odcs.yaml" --host other.example.net >"$tmp/out" 2>"$tmp/err"; rc=$?
check "contract host wins over --host" '[ $rc -eq 0 ] && grep -q "DatabricksHost = \"adb-1234567890.12.azuredatabricks.net\"" "$tmp/out" && ! grep -q other.example.net "$tmp/out"'

"$BIN" tmdl "$FIX/lakehouse.databricks.odcs.yaml" --warehouse IGNORED >"$tmp/out" 2>"$tmp/err"; rc=$?
check "databricks: HTTP path from customProperties" '[ $rc -eq 0 ] && grep -q "DatabricksHttpPath = \"/sql/1.0/warehouses/0123456789abcdef\"" "$tmp/out" && grep -q "Databricks.Catalogs(DatabricksHost, DatabricksHttpPath" "$tmp/out" && ! grep -q IGNORED "$tmp/out"'

"$BIN" tmdl "$ORDERS" --server nope >"$tmp/out" 2>"$tmp/err"; rc=$?
check "unknown server: exit 2" '[ $rc -eq 2 ] && grep -qx "pbiport tmdl: no server named \"nope\" in the contract (servers: production, development)" "$tmp/err"'

"$BIN" tmdl "$ORDERS" --mode dual >"$tmp/out" 2>"$tmp/err"; rc=$?
check "bad --mode: exit 2" '[ $rc -eq 2 ] && grep -qx "pbiport tmdl: mode \"dual\": use import or directquery" "$tmp/err"'

cat >"$tmp/pg.yaml" <<'YAML'
apiVersion: v3.1.0
kind: DataContract
id: pg
name: pg
version: 1.0.0
status: active
servers:
  - server: db
    type: postgres
    host: localhost
    database: x
    schema: public
schema:
  - name: t
    properties:
      - name: a
        logicalType: string
YAML
"$BIN" tmdl "$tmp/pg.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "unsupported server type: exit 2" '[ $rc -eq 2 ] && grep -q "is not supported for Power BI (snowflake, databricks)$" "$tmp/err"'

"$BIN" tmdl "$tmp/missing.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "missing contract file: exit 2" '[ $rc -eq 2 ] && grep -q "^pbiport tmdl: " "$tmp/err"'

"$BIN" tmdl >"$tmp/out" 2>"$tmp/err"; rc=$?
check "no contract: usage, exit 2" '[ $rc -eq 2 ] && grep -q "^usage: pbiport tmdl CONTRACT" "$tmp/err"'

"$BIN" tmdl "$ORDERS" --out >"$tmp/out" 2>"$tmp/err"; rc=$?
check "flag without value: exit 2" '[ $rc -eq 2 ] && grep -q "needs a value" "$tmp/err"'

"$BIN" tmdl "$ORDERS" --templates docs/examples >"$tmp/out" 2>"$tmp/err"; rc=$?
check "--templates: Title Case and hidden keys" '[ $rc -eq 0 ] && grep -q "^	column '"'"'Order Id'"'"'$" "$tmp/out" && grep -q "toColumn: orders.'"'"'Order Id'"'"'" "$tmp/out" && [ "$(grep -c "		isHidden" "$tmp/out")" = 5 ]'

PBIPORT_TEMPLATE_PATH=$PWD/docs/examples "$BIN" tmdl "$ORDERS" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "PBIPORT_TEMPLATE_PATH works the same" '[ $rc -eq 0 ] && grep -q "^	column '"'"'Customer Name'"'"'$" "$tmp/out" && grep -q "^	column '"'"'Order Id'"'"'$" "$tmp/out"'

mkdir -p "$tmp/bad"
printf 'local tmdl = require "tmdl"\n\nreturn function(model, ctx)\n  local name = tmdl.quote_name("a\\tb")\n  return name\nend\n' >"$tmp/bad/model.lua"
"$BIN" tmdl "$ORDERS" --templates "$tmp/bad" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "template error: exit 2 with file:line" '[ $rc -eq 2 ] && grep -qx "pbiport tmdl: template $tmp/bad/model.lua:4: name '"'"'a\\\\x09b'"'"' contains a control character" "$tmp/err"'

printf 'return function(ctx)\n  local s = string.rep("x", 1e9)\nend\n' >"$tmp/bad/main.lua"
"$BIN" tmdl "$ORDERS" --templates "$tmp/bad" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "memory bomb: exit 2 with the limit" '[ $rc -eq 2 ] && grep -qx "pbiport tmdl: template $tmp/bad/main.lua: out of memory (limit 256 MiB)" "$tmp/err"'

# Runaway loops stop (no timing asserted): a pure Lua loop on the instruction budget, a loop
# of C calls on the CPU-time backstop; both name the file and line.
printf 'return function(ctx)\n  while true do end\nend\n' >"$tmp/bad/main.lua"
"$BIN" tmdl "$ORDERS" --templates "$tmp/bad" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "endless loop: exit 2 with the instruction limit" '[ $rc -eq 2 ] && grep -q "^pbiport tmdl: template $tmp/bad/main.lua:2: instruction limit of [0-9]* exceeded$" "$tmp/err"'
printf 'return function(ctx)\n  while true do pcall(error) end\nend\n' >"$tmp/bad/main.lua"
"$BIN" tmdl "$ORDERS" --templates "$tmp/bad" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "endless loop of C calls: exit 2 with a limit" '[ $rc -eq 2 ] && grep -Eq "^pbiport tmdl: template $tmp/bad/main.lua:2: (time limit of [0-9]+ ms|instruction limit of [0-9]+) exceeded$" "$tmp/err"'

echo "1..$n"
[ $failed -eq 0 ]
