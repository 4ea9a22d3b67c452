#!/usr/bin/env bash
# pbiport migrate / org create / user add / token create: output, exit codes (0 done,
# 2 bad input, 1 otherwise), token shown once and stored only hashed (TAP output).
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib/tap.sh
unset REMOTE_USER HTTP_AUTHORIZATION APPLICATION_POWERBI_WEB_ENABLED APPLICATION_INGESTIONS_ENABLED

export PBIPORT_DB="$tmp/admin.db"
"$BIN" org create acme >"$tmp/out" 2>"$tmp/err"; rc=$?
check "admin before migrate: exit 1, told to migrate" '[ $rc -eq 1 ] && grep -q "run \`pbiport migrate\`" "$tmp/err"'
env -u PBIPORT_DB "$BIN" migrate >"$tmp/out" 2>"$tmp/err"; rc=$?
check "migrate without PBIPORT_DB: exit 2 naming it" '[ $rc -eq 2 ] && grep -q "PBIPORT_DB is not set" "$tmp/err"'
"$BIN" migrate extra >"$tmp/out" 2>"$tmp/err"; rc=$?
check "migrate with arguments: usage, exit 2" '[ $rc -eq 2 ] && grep -q "^usage: pbiport migrate" "$tmp/err"'
"$BIN" migrate >"$tmp/out" 2>"$tmp/err"; rc=$?
check "migrate: exit 0" '[ $rc -eq 0 ] && [ ! -s "$tmp/out" ]'

"$BIN" org create acme >"$tmp/out" 2>"$tmp/err"; rc=$?
check "org create prints the new id" '[ $rc -eq 0 ] && grep -qxE "[0-9a-f]{32}" "$tmp/out" && [ ! -s "$tmp/err" ]'
"$BIN" org create acme >"$tmp/out" 2>"$tmp/err"; rc=$?
check "duplicate org: exit 2" '[ $rc -eq 2 ] && grep -q "already exists" "$tmp/err" && [ ! -s "$tmp/out" ]'
"$BIN" org create "" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "empty org name: exit 2" '[ $rc -eq 2 ] && grep -q "name is empty" "$tmp/err"'
"$BIN" org make acme >"$tmp/out" 2>"$tmp/err"; rc=$?
check "org with a wrong verb: usage, exit 2" '[ $rc -eq 2 ] && grep -q "^usage: pbiport org create NAME" "$tmp/err"'

"$BIN" user add alice --org acme --role owner --team data --team finance >"$tmp/out" 2>"$tmp/err"; rc=$?
check "user add with role and teams" '[ $rc -eq 0 ] && grep -qxE "[0-9a-f]{32}" "$tmp/out"'
"$BIN" user add bob --org acme >"$tmp/out" 2>"$tmp/err"; rc=$?
check "user add defaults to member" '[ $rc -eq 0 ]'
"$BIN" user add alice --org acme >"$tmp/out" 2>"$tmp/err"; rc=$?
check "duplicate user: exit 2" '[ $rc -eq 2 ] && grep -q "already exists" "$tmp/err"'
"$BIN" user add carol --org nowhere >"$tmp/out" 2>"$tmp/err"; rc=$?
check "unknown org: exit 2 naming it" '[ $rc -eq 2 ] && grep -q "no organization named '"'nowhere'"'" "$tmp/err"'
"$BIN" user add carol --org acme --role admin >"$tmp/out" 2>"$tmp/err"; rc=$?
check "bad role: exit 2" '[ $rc -eq 2 ] && grep -q "owner or member" "$tmp/err"'
"$BIN" user add carol >"$tmp/out" 2>"$tmp/err"; rc=$?
check "user add without --org: usage, exit 2" '[ $rc -eq 2 ] && grep -q "^usage: pbiport user add" "$tmp/err"'
"$BIN" user add carol --org >"$tmp/out" 2>"$tmp/err"; rc=$?
check "option without value: usage, exit 2" '[ $rc -eq 2 ]'

"$BIN" token create bob >"$tmp/out" 2>"$tmp/err"; rc=$?
check "token create prints only the token" '[ $rc -eq 0 ] && [ "$(wc -l <"$tmp/out")" -eq 1 ] && grep -qxE "pbi_[0-9a-f]{32}_[0-9a-f]{64}" "$tmp/out" && [ ! -s "$tmp/err" ]'
TOKEN=$(cat "$tmp/out")
"$BIN" token create bob >"$tmp/out2" 2>"$tmp/err"; rc=$?
check "each token is new" '[ $rc -eq 0 ] && ! cmp -s "$tmp/out" "$tmp/out2"'
check "the database holds no token text" '! grep -aq "${TOKEN#pbi_*_}" "$PBIPORT_DB" "$PBIPORT_DB-wal" 2>/dev/null'
"$BIN" token create nobody >"$tmp/out" 2>"$tmp/err"; rc=$?
check "token for an unknown user: exit 2" '[ $rc -eq 2 ] && grep -q "no user named" "$tmp/err" && [ ! -s "$tmp/out" ]'
"$BIN" token make bob >"$tmp/out" 2>"$tmp/err"; rc=$?
check "token with a wrong verb: usage, exit 2" '[ $rc -eq 2 ]'

env REQUEST_METHOD=GET REQUEST_URI=/api/data-products HTTP_AUTHORIZATION="Bearer $TOKEN" "$FCGI" </dev/null >"$tmp/resp" 2>/dev/null
check "the new token authenticates" 'head -1 "$tmp/resp" | grep -q "^Status: 200"'

tap_done
