# Shared by the tests/cli/t*.sh scripts (source it from the project root): TAP counters and
# checks, a temporary folder $tmp removed at exit, a private copy of the binary under test
# ($BIN, and $FCGI for CGI mode) so a rebuild of the working tree during the run cannot swap
# it, and `cgi` for one request in plain CGI mode.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin" && cp "${PBIPORT_BIN:-$PWD/bin/pbiport}" "$tmp/bin/pbiport" && ln -s pbiport "$tmp/bin/pbiport.fcgi"
BIN="$tmp/bin/pbiport"
FCGI="$tmp/bin/pbiport.fcgi"
n=0; failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
# a failed check shows what the command left in $tmp/resp, $tmp/log and $tmp/err
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; sed 's/^/#   /' "$tmp/resp" "$tmp/log" "$tmp/err" 2>/dev/null | head -20; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
# The plan line and the exit status: call last.
tap_done() { echo "1..$n"; [ "$failed" -eq 0 ]; }

# cgi METHOD URI [NAME=value ...]: one request in CGI mode, body from the file $BODY when set,
# run by $RUNNER when set (default $FCGI). Sets $status and writes $tmp/resp (whole),
# $tmp/headers and $tmp/body.
cgi() {
  local method=$1 uri=$2; shift 2
  local query=""; case $uri in *\?*) query=${uri#*\?};; esac
  env REQUEST_METHOD="$method" REQUEST_URI="$uri" QUERY_STRING="$query" "$@" \
    "${RUNNER:-$FCGI}" <"${BODY:-/dev/null}" >"$tmp/resp" 2>"$tmp/log"
  status=$(sed -n '1s/^Status: \([0-9]*\) .*/\1/p' "$tmp/resp" | tr -d '\r')
  sed -n '1,/^\r$/p' "$tmp/resp" | tr -d '\r' >"$tmp/headers"
  sed '1,/^\r$/d' "$tmp/resp" >"$tmp/body"
}
# json EXPR / jget EXPR: a Python expression over the JSON response body, bound to d.
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$tmp/body"; }
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$tmp/body"; }
