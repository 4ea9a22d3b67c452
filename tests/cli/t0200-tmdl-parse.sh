#!/usr/bin/env bash
# pbiport tmdl-parse: summary, --json, exit codes and FILE:LINE errors (TAP output).
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib/tap.sh
FIX=tests/fixtures/tmdl

"$BIN" tmdl-parse "$FIX/basic.SemanticModel" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "folder parses (exit 0)" '[ $rc -eq 0 ] && [ ! -s "$tmp/err" ]'
check "summary names the model" 'grep -qx "model Model (culture en-US): 3 tables, 2 relationships, 2 expressions, 3 annotations, 8 files" "$tmp/out"'
check "summary counts per table" 'grep -qx "table Sales: 3 columns, 3 measures, 1 partitions" "$tmp/out"'
check "summary gives column dataTypes" 'grep -qx "	column '"'"'Customer Key'"'"': int64, hidden" "$tmp/out" && grep -qx "	column Name: string" "$tmp/out"'
check "ref order then unreferenced tables" '[ "$(grep "^table" "$tmp/out" | cut -d: -f1 | tr "\n" "|")" = "table Sales|table Customer|table '"'O''Brien'"'|" ]'

"$BIN" tmdl-parse "$FIX/basic.SemanticModel" --json >"$tmp/json" 2>"$tmp/err"; rc=$?
check "--json exits 0" '[ $rc -eq 0 ]'
check "--json is the full model" 'python3 - "$tmp/json" <<PY
import json, sys
m = json.load(open(sys.argv[1]))
t = {x["name"]: x for x in m["tables"]}
assert [x["name"] for x in m["tables"]] == ["Sales", "Customer", "O'"'"'Brien"]
c = t["Customer"]["columns"][0]
assert c["dataType"] == "int64" and c["isKey"] and not c["isNullable"] and c["sourceColumn"] == "CUSTOMER_KEY"
assert t["Customer"]["partitions"][0]["source"].startswith("let\n    Source = Snowflake.Databases")
ms = {x["name"]: x for x in t["Sales"]["measures"]}
assert ms["Umsatz (\u0394 VJ)"]["expression"].endswith("RETURN DIVIDE(cur - prev, prev)")
r = m["relationships"][1]
assert (r["fromTable"], r["fromColumn"], r["isActive"]) == ("O'"'"'Brien", "Stra\u00dfe", False)
assert m["expressions"][0]["queryGroup"] == "Connection Parameters"
PY'

"$BIN" tmdl-parse "$FIX/basic.SemanticModel/definition/tables/Sales.tmdl" >"$tmp/out" 2>&1; rc=$?
check "single file parses" '[ $rc -eq 0 ] && grep -q "^table Sales: 3 columns, 2 measures, 1 partitions$" "$tmp/out"'

"$BIN" tmdl-parse "$FIX/errors/dup_column.tmdl" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "bad input exits 2" '[ $rc -eq 2 ] && [ ! -s "$tmp/out" ]'
check "error is FILE:LINE: message" 'grep -qx "$FIX/errors/dup_column.tmdl:6: duplicate declaration of column '"'c'"' in table '"'T'"' (first declared at $FIX/errors/dup_column.tmdl:3)" "$tmp/err"'

"$BIN" tmdl-parse "$FIX/errors/spaces.tmdl" --json >"$tmp/out" 2>"$tmp/err"; rc=$?
check "space indentation rejected with line" '[ $rc -eq 2 ] && grep -qx "$FIX/errors/spaces.tmdl:2: indentation must use tabs, not spaces" "$tmp/err"'

printf 'table T\n\tcolumn C\n\t\tdataType: string\n' >"$tmp/A.tmdl"
printf 'table T\n\tcolumn C\n' >"$tmp/B.tmdl"
"$BIN" tmdl-parse "$tmp" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "duplicate across files names both" '[ $rc -eq 2 ] && grep -qx "$tmp/B.tmdl:2: duplicate declaration of column '"'C'"' in table '"'T'"' (first declared at $tmp/A.tmdl:2)" "$tmp/err"'

"$BIN" tmdl-parse "$tmp/missing" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "missing path exits 2" '[ $rc -eq 2 ] && grep -q "missing: No such file or directory" "$tmp/err"'

mkdir "$tmp/empty"
"$BIN" tmdl-parse "$tmp/empty" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "folder without .tmdl files exits 2" '[ $rc -eq 2 ] && grep -q "no .tmdl files found" "$tmp/err"'

"$BIN" tmdl-parse >"$tmp/out" 2>"$tmp/err"; rc=$?
check "usage error exits 2" '[ $rc -eq 2 ] && grep -q "usage: pbiport tmdl-parse PATH \[--json\]" "$tmp/err"'
"$BIN" tmdl-parse a b >"$tmp/out" 2>"$tmp/err"; rc=$?
check "two paths is a usage error" '[ $rc -eq 2 ]'

if [ -n "${PBIPORT_CORPUS:-}" ] && [ -d "$PBIPORT_CORPUS/tmdl" ]; then
  bad=0; count=0
  while IFS= read -r -d '' d; do
    count=$((count + 1))
    "$BIN" tmdl-parse "$d" --json >/dev/null 2>"$tmp/err" || { bad=$((bad + 1)); cat "$tmp/err"; }
  done < <(find "$PBIPORT_CORPUS/tmdl" \( -name '*.SemanticModel' -type d -o -name '*.tmdl' -type f \) -print0)
  check "corpus: $count models and files parse" '[ $bad -eq 0 ] && [ $count -ge 117 ]'
  "$BIN" tmdl-parse "$PBIPORT_CORPUS/tmdl/pbiplint/te3-zoo.SemanticModel" >"$tmp/out"
  check "corpus: te3-zoo summary" 'grep -qx "table Sales: 10 columns, 6 measures, 1 partitions" "$tmp/out" && grep -qx "table '"'Time Intelligence'"': 2 columns, 0 measures, 1 partitions, calculation group" "$tmp/out"'
else
  echo "SKIP: tmdl-parse corpus checks: PBIPORT_CORPUS/tmdl not found"
fi

# Every model the renderer produces from the corpus contracts must parse back.
if [ -n "${PBIPORT_CORPUS:-}" ] && [ -d "$PBIPORT_CORPUS/odcs" ] && "$BIN" help | grep -q '^  pbiport tmdl CONTRACT'; then
  rendered=0; bad=0; i=0
  while IFS= read -r -d '' f; do
    for mode in import directquery; do
      i=$((i + 1)); out="$tmp/render-$i"
      "$BIN" tmdl "$f" --out "$out" --mode $mode --warehouse WH --http-path /sql/1.0/warehouses/abc \
        >/dev/null 2>&1 || continue
      rendered=$((rendered + 1))
      ntables=$(find "$out" -path '*/tables/*.tmdl' | wc -l)
      if ! "$BIN" tmdl-parse "$out" >"$tmp/out" 2>"$tmp/err" ||
         [ "$(grep -c '^table ' "$tmp/out")" -ne "$ntables" ]; then
        bad=$((bad + 1)); echo "# $f ($mode):"; sed 's/^/#   /' "$tmp/err"
      fi
    done
  done < <(find "$PBIPORT_CORPUS/odcs" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -print0)
  check "renderer output: $rendered rendered models parse back with every table" '[ $rendered -gt 0 ] && [ $bad -eq 0 ]'
else
  echo "SKIP: renderer round trip: no corpus contracts or no 'pbiport tmdl' command"
fi

tap_done
