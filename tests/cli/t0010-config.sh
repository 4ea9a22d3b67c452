#!/usr/bin/env bash
# Configuration is read in ONE place, runtime/config.c, at start-up (TAP output):
#  - no getenv / secure_getenv in the program's sources outside runtime/config.c (tests/ and
#    bench/ are harnesses, not part of the binary: they may read their own variables, e.g.
#    PBIPORT_SRC and BENCH_*), and `environ` only where a plain CGI request arrives in it
#    (runtime/fcgi.c: request variables, not configuration);
#  - a malformed setting stops the FastCGI server, the worker and the commands that need it
#    at start-up with one line naming the variable, before any request or job.
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib/tap.sh

# 1. the rule, over every C file of the program
srcs=$(find runtime core msapi handlers cli -name '*.[ch]' ! -path runtime/config.c)
offenders=$(grep -nE '\b(secure_)?getenv[[:space:]]*\(' $srcs; grep -nwE 'environ' $(printf '%s\n' $srcs | grep -vx runtime/fcgi.c))
check "getenv only in runtime/config.c" '[ -z "$offenders" ]'
[ -z "$offenders" ] || sed 's/^/#   /' <<<"$offenders"
# ... and the check finds one when there is one
mkdir -p "$tmp/src/core" && printf 'const char *x(void) { return getenv("PBIPORT_X"); }\n' >"$tmp/src/core/x.c"
check "the rule sees a getenv" 'grep -qE "\b(secure_)?getenv[[:space:]]*\(" "$tmp/src/core/x.c"'

# 2. start-up: one line naming the variable
export PBIPORT_DB="$tmp/pbiport.db"
unset REMOTE_USER HTTP_AUTHORIZATION APPLICATION_POWERBI_WEB_ENABLED APPLICATION_INGESTIONS_ENABLED \
      PBIPORT_TEMPLATE_PATH PBIPORT_CA_BUNDLE PBIPORT_ENTRA_URL PBIPORT_FABRIC_URL PBIPORT_POWERBI_URL \
      PBIPORT_GRAPH_URL PBIPORT_SCAN_POLL_MS
"$BIN" migrate >"$tmp/out" 2>"$tmp/err"
check "migrate" '[ $? -eq 0 ]'

one_line() { [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "$1" "$tmp/err"; }

env PBIPORT_FABRIC_URL=http://fabric.example.test REQUEST_METHOD=GET REQUEST_URI=/healthz \
  "$FCGI" </dev/null >"$tmp/resp" 2>"$tmp/err"; rc=$?
check "server: a plain-http Microsoft base URL stops start-up" \
  '[ $rc -ne 0 ] && one_line "PBIPORT_FABRIC_URL must be an https:// URL" && [ ! -s "$tmp/resp" ]'
env PBIPORT_FABRIC_URL=https://fabric.example.test/ REQUEST_METHOD=GET REQUEST_URI=/healthz \
  "$FCGI" </dev/null >"$tmp/resp" 2>"$tmp/err"; rc=$?
check "server: a good one starts" '[ $rc -eq 0 ] && grep -q "^Status: 200" "$tmp/resp"'
env PBIPORT_TEMPLATE_PATH=/nonexistent/pbiport-tpl REQUEST_METHOD=GET REQUEST_URI=/healthz \
  "$FCGI" </dev/null >"$tmp/resp" 2>"$tmp/err"; rc=$?
check "server: a missing template folder stops start-up" \
  '[ $rc -ne 0 ] && one_line "PBIPORT_TEMPLATE_PATH: template folder /nonexistent/pbiport-tpl: not a readable folder"'
env PBIPORT_CA_BUNDLE="$PWD/README.md" REQUEST_METHOD=GET REQUEST_URI=/healthz \
  "$FCGI" </dev/null >"$tmp/resp" 2>"$tmp/err"; rc=$?
check "server: a CA bundle without certificates stops start-up" '[ $rc -ne 0 ] && one_line "holds no PEM certificate"'

env PBIPORT_SCAN_POLL_MS=soon "$BIN" worker --once >"$tmp/out" 2>"$tmp/err"; rc=$?
check "worker: a malformed number stops start-up" \
  '[ $rc -eq 2 ] && one_line "^pbiport worker: PBIPORT_SCAN_POLL_MS: expected a whole number"'
env PBIPORT_ENTRA_URL=login.microsoftonline.com "$BIN" worker --once >"$tmp/out" 2>"$tmp/err"; rc=$?
check "worker: so does a malformed base URL" '[ $rc -eq 2 ] && one_line "PBIPORT_ENTRA_URL must be an https:// URL"'

env PBIPORT_TEMPLATE_PATH=/nonexistent/pbiport-tpl "$BIN" tmdl examples/contracts/orders.odcs.yaml \
  >"$tmp/out" 2>"$tmp/err"; rc=$?
check "tmdl: a missing template folder is named" \
  '[ $rc -eq 2 ] && one_line "^pbiport tmdl: PBIPORT_TEMPLATE_PATH: template folder /nonexistent/pbiport-tpl"'
env -u PBIPORT_DB PBIPORT_FABRIC_URL=not-a-url "$BIN" tmdl examples/contracts/orders.odcs.yaml \
  >"$tmp/out" 2>"$tmp/err"; rc=$?
check "tmdl: needs no database and reads no other setting" '[ $rc -eq 0 ] && grep -q "==> definition.pbism <==" "$tmp/out"'

tap_done
