#!/usr/bin/env bash
# The one table of user-facing error codes (core/flow/error_codes.c): every code the source answers
# or ends a job with is in it, docs/errors.md is what `pbiport error-codes` prints, and the checker
# itself notices a code that is not in the table (TAP output).
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib/tap.sh


python3 tests/tools/error_codes_check.py "$BIN" >"$tmp/out" 2>&1; rc=$?
check "every code used is in the table and docs/errors.md is current" '[ $rc -eq 0 ] && grep -q " 0 problems" "$tmp/out"'
"$BIN" error-codes >"$tmp/table"; rc=$?
check "pbiport error-codes prints the table" '[ $rc -eq 0 ] && grep -q "^| \`bad_request\` | 400 |" "$tmp/table" && grep -q "^| \`unavailable\` | 503 |" "$tmp/table"'
check "each code is listed once" '[ -z "$(grep -o "^| \`[a-z0-9_]*\`" "$tmp/table" | sort | uniq -d)" ]'

# a source tree that uses a code the table lacks, and a stale page
t="$tmp/tree"
mkdir -p "$t/core/flow" "$t/handlers" "$t/docs"
cp core/flow/error_codes.c "$t/core/flow/"
cat >"$t/handlers/x.c" <<'C'
int h(struct req *r) { return req_fail(r, PB_EINVAL, "made_up_code", "no such code"); }
C
printf '<!-- generated: pbiport error-codes -->\nold\n<!-- end generated -->\n' >"$t/docs/errors.md"
(cd "$t" && python3 "$OLDPWD/tests/tools/error_codes_check.py" "$BIN") >"$tmp/out" 2>&1; rc=$?
check "a code missing from the table is named with its place" '[ $rc -eq 1 ] && grep -q "made_up_code.*handlers/x.c:1" "$tmp/out"'
check "a stale docs/errors.md is named" 'grep -q "docs/errors.md is not what" "$tmp/out"'
tap_done
