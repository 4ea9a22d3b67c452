#!/usr/bin/env bash
# The FastCGI binary in plain CGI mode: every endpoint and every error status of the
# HTTP surface, driven through REQUEST_METHOD, REQUEST_URI/PATH_INFO, QUERY_STRING,
# CONTENT_TYPE, CONTENT_LENGTH and a body on stdin (TAP output).
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib/tap.sh
FIX=tests/fixtures/cgi

DB="$tmp/pbiport.db"
export PBIPORT_DB="$DB"
unset REMOTE_USER HTTP_AUTHORIZATION PBIPORT_MAX_BODY APPLICATION_POWERBI_WEB_ENABLED \
      APPLICATION_INGESTIONS_ENABLED APPLICATION_ENCRYPTION_KEYS APPLICATION_SECURITY_REMEMBERME_KEY

# post URI FILE CONTENT_TYPE [NAME=value ...]
post() {
  local uri=$1 file=$2 ctype=$3; shift 3
  BODY=$file cgi POST "$uri" CONTENT_TYPE="$ctype" CONTENT_LENGTH="$(wc -c <"$file")" "$@"
}
header() { grep -qi "^$1: $2\$" "$tmp/headers"; }
is_error() { header Content-Type application/json && json "d['error']['code'] == '$1' and d['error']['message']"; }

# ---- start-up checks: one clear line, exit 1 ----
env -u PBIPORT_DB REQUEST_METHOD=GET REQUEST_URI=/healthz "$FCGI" </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
check "missing PBIPORT_DB stops start-up with one line" '[ $rc -eq 1 ] && [ ! -s "$tmp/out" ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^pbiport: PBIPORT_DB is not set" "$tmp/err"'
REQUEST_METHOD=GET REQUEST_URI=/healthz "$FCGI" </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
check "absent database: told to migrate" '[ $rc -eq 1 ] && grep -q "does not exist: run \`pbiport migrate\`" "$tmp/err"'
"$BIN" migrate 2>"$tmp/err"; rc=$?
check "pbiport migrate creates the database" '[ $rc -eq 0 ] && [ -f "$DB" ] && grep -q "schema is at version" "$tmp/err"'
"$BIN" migrate 2>"$tmp/err"; rc=$?
check "pbiport migrate again applies nothing" '[ $rc -eq 0 ] && grep -q "applied 0 migrations" "$tmp/err"'
mkdir -p "$tmp/sql-newer"; cp sql/*.sql "$tmp/sql-newer/"
echo "CREATE TABLE later_feature (id TEXT PRIMARY KEY);" >"$tmp/sql-newer/9999_later.sql"
PBIPORT_SQL_DIR="$tmp/sql-newer" REQUEST_METHOD=GET REQUEST_URI=/healthz "$FCGI" </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
check "schema older than the binary stops start-up" '[ $rc -eq 1 ] && [ ! -s "$tmp/out" ] && grep -qE "^pbiport: database schema is at version [0-9]+, this binary needs 9999: run \`pbiport migrate\`$" "$tmp/err"'
APPLICATION_INGESTIONS_ENABLED=yes REQUEST_METHOD=GET REQUEST_URI=/healthz "$FCGI" </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
check "malformed boolean setting is named" '[ $rc -eq 1 ] && grep -qx "pbiport: APPLICATION_INGESTIONS_ENABLED: expected true or false, got '"'yes'"'" "$tmp/err"'
APPLICATION_POWERBI_WEB_ENABLED=true REQUEST_METHOD=GET REQUEST_URI=/healthz "$FCGI" </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
check "feature on without keys names APPLICATION_ENCRYPTION_KEYS" '[ $rc -eq 1 ] && grep -q "^pbiport: APPLICATION_ENCRYPTION_KEYS is not set" "$tmp/err"'
KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
APPLICATION_POWERBI_WEB_ENABLED=true APPLICATION_ENCRYPTION_KEYS=$KEY APPLICATION_SECURITY_REMEMBERME_KEY=abc \
  REQUEST_METHOD=GET REQUEST_URI=/healthz "$FCGI" </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
check "malformed remember-me key is named, not echoed" '[ $rc -eq 1 ] && grep -q "^pbiport: APPLICATION_SECURITY_REMEMBERME_KEY" "$tmp/err" && ! grep -q "abc" "$tmp/err"'
PBIPORT_MAX_BODY=lots REQUEST_METHOD=GET REQUEST_URI=/healthz "$FCGI" </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
check "malformed PBIPORT_MAX_BODY is named" '[ $rc -eq 1 ] && grep -q "^pbiport: PBIPORT_MAX_BODY: expected a byte count" "$tmp/err"'

"$BIN" org create acme >/dev/null && "$BIN" org create globex >/dev/null &&
"$BIN" user add alice --org acme --role owner >/dev/null && "$BIN" user add bob --org acme --team data >/dev/null &&
"$BIN" user add gina --org globex --role owner >/dev/null
TOKEN=$("$BIN" token create bob)

# ---- health and metrics ----
cgi GET /healthz
check "GET /healthz is 200 ok without identity" '[ "$status" = 200 ] && json "d == {\"status\": \"ok\"}"'
check "every response has a 32-hex X-Request-Id" 'grep -qE "^X-Request-Id: [0-9a-f]{32}$" "$tmp/headers"'
check "one JSON log line per request, no secrets" '[ "$(wc -l <"$tmp/log")" -eq 1 ] && python3 -c "import json,sys; l=json.load(open(sys.argv[1])); assert l[\"status\"]==200 and l[\"route\"]==\"/healthz\"" "$tmp/log"'
cgi GET /healthz HTTP_X_REQUEST_ID=trace-42.a_b
check "a safe incoming X-Request-Id is kept" 'header X-Request-Id trace-42.a_b'
cgi GET /healthz 'HTTP_X_REQUEST_ID=bad id<script>'
check "an unsafe incoming X-Request-Id is replaced" 'grep -qE "^X-Request-Id: [0-9a-f]{32}$" "$tmp/headers"'
RUNNER="$BIN" cgi GET /healthz
check "pbiport (not started as .fcgi) needs the serve command" '[ -z "$status" ]'
env REQUEST_METHOD=GET REQUEST_URI=/healthz QUERY_STRING= "$BIN" serve </dev/null >"$tmp/resp" 2>/dev/null
check "pbiport serve answers one CGI request" 'head -1 "$tmp/resp" | grep -q "^Status: 200 OK"'
cgi GET /metrics
check "GET /metrics is Prometheus text" '[ "$status" = 200 ] && grep -q "^Content-Type: text/plain; version=0.0.4" "$tmp/headers"'
check "metrics count requests by route, method and status" 'grep -qE "^pbiport_requests_total\{route=\"/healthz\",method=\"GET\",status=\"200\"\} [0-9]+$" "$tmp/body"'
check "metrics have the job gauge" 'grep -qE "^pbiport_jobs\{state=\"queued\"\} [0-9]+$" "$tmp/body"'
check "metrics have the duration histogram" 'grep -q "^# TYPE pbiport_request_duration_seconds histogram" "$tmp/body" && grep -qE "^pbiport_request_duration_seconds_bucket\{route=\"/healthz\",le=\"\+Inf\"\} [0-9]+$" "$tmp/body" && grep -q "^pbiport_request_duration_seconds_count{route=\"/healthz\"}" "$tmp/body"'

# ---- routing errors ----
cgi GET /nope
check "unknown path: 404 not_found" '[ "$status" = 404 ] && is_error not_found'
cgi GET /api/data-products/
check "trailing slash: 404" '[ "$status" = 404 ]'
cgi PUT /api/data-products REMOTE_USER=alice
check "wrong method: 405 with Allow" '[ "$status" = 405 ] && header Allow "POST, GET" && is_error method_not_allowed'
cgi PATCH /api/data-products/x
check "wrong method on a capture route lists its methods" '[ "$status" = 405 ] && header Allow "GET, DELETE"'
cgi GET '/api/data-products/a%00b' REMOTE_USER=alice
check "NUL byte in the path: 400" '[ "$status" = 400 ] && is_error bad_request'
cgi GET '/api/data-products/%zz' REMOTE_USER=alice
check "bad %-escape in the path: 400" '[ "$status" = 400 ]'
cgi GET '/api/data-products?x=%00' REMOTE_USER=alice
check "NUL byte in the query: 400" '[ "$status" = 400 ]'
cgi GET '/api/data-products?limit=5' REMOTE_USER=alice
check "undeclared query parameter: 400 naming it" '[ "$status" = 400 ] && json "\"limit\" in d[\"error\"][\"message\"]"'
env REQUEST_METHOD=GET PATH_INFO=/healthz "$FCGI" </dev/null >"$tmp/resp" 2>/dev/null
check "PATH_INFO alone routes (no REQUEST_URI)" 'head -1 "$tmp/resp" | grep -q "^Status: 200"'
env REQUEST_METHOD=GET REQUEST_URI=/cgi-bin/pbiport.fcgi/healthz SCRIPT_NAME=/cgi-bin/pbiport.fcgi PATH_INFO=/healthz "$FCGI" </dev/null >"$tmp/resp" 2>/dev/null
check "a CGI mounted under SCRIPT_NAME routes on PATH_INFO" 'head -1 "$tmp/resp" | grep -q "^Status: 200"'
cgi GET /_pbiport/error REDIRECT_STATUS=413 HTTP_X_REQUEST_ID=rid-413
check "an error the web server made itself (REDIRECT_STATUS) is worded as JSON with the request id" '[ "$status" = 413 ] && is_error payload_too_large && header X-Request-Id rid-413'
cgi POST /api/data-products REDIRECT_STATUS=401 CONTENT_LENGTH=99999
check "a web server 401 is answered without reading the body or routing" '[ "$status" = 401 ] && is_error unauthorized'
cgi GET /healthz REDIRECT_STATUS=200
check "REDIRECT_STATUS 200 (set on every lighttpd request) routes as usual" '[ "$status" = 200 ]'
cgi GET /_pbiport/error
check "the error handler URL without REDIRECT_STATUS is not an endpoint" '[ "$status" = 404 ] && is_error not_found'

# ---- identity ----
cgi GET /api/data-products
check "no identity: 401 with WWW-Authenticate" '[ "$status" = 401 ] && is_error unauthorized && header WWW-Authenticate Bearer'
cgi GET /api/data-products REMOTE_USER=mallory
check "unknown REMOTE_USER: 401" '[ "$status" = 401 ] && is_error unauthorized'
cgi GET /api/data-products "HTTP_AUTHORIZATION=Bearer $TOKEN"
check "Bearer token: 200" '[ "$status" = 200 ] && json "d == {\"data_products\": []}"'
check "the token never reaches the log" '! grep -q "${TOKEN#pbi_*_}" "$tmp/log"'
last=${TOKEN: -1}; [ "$last" = 0 ] && swap=1 || swap=0
cgi GET /api/data-products "HTTP_AUTHORIZATION=Bearer ${TOKEN%?}$swap"
check "wrong token secret: 401" '[ "$status" = 401 ]'
cgi GET /api/data-products "HTTP_AUTHORIZATION=Basic YWxpY2U6eA=="
check "other auth scheme: 401" '[ "$status" = 401 ]'

# ---- import ----
post /api/data-products "$FIX/orders.yaml" application/yaml REMOTE_USER=alice
check "POST YAML contract: 201" '[ "$status" = 201 ]'
check "201 body: product + one port per server" 'json "d[\"name\"] == \"Orders\" and d[\"type\"] == \"source\" and d[\"version\"] == \"1.0.0\" and len(d[\"id\"]) == 32 and sorted(p[\"name\"] for p in d[\"output_ports\"]) == [\"lakehouse\", \"production\"] and all(set(p) >= {\"id\",\"name\",\"type\",\"server\"} for p in d[\"output_ports\"])"'
PRODUCT=$(jget 'd["id"]')
PORT=$(jget '[p["id"] for p in d["output_ports"] if p["name"] == "production"][0]')
DBX_PORT=$(jget '[p["id"] for p in d["output_ports"] if p["name"] == "lakehouse"][0]')
post /api/data-products "$FIX/orders-v2.json" application/json "HTTP_AUTHORIZATION=Bearer $TOKEN"
check "a member re-importing another's contract id: 403, nothing changed" '[ "$status" = 403 ] && is_error forbidden && json "\"urn:contract:orders\" in d[\"error\"][\"message\"]"'
post /api/data-products "$FIX/orders-v2.json" application/json REMOTE_USER=alice
check "re-import of the same contract id: 200, new version" '[ "$status" = 200 ] && json "d[\"id\"] == \"$PRODUCT\" and d[\"version\"] == \"2.0.0\" and d[\"revision\"] == 2"'
check "re-import keeps the port id of the same server, drops the removed one" 'json "[p[\"id\"] for p in d[\"output_ports\"]] == [\"$PORT\"]"'
post /api/data-products "$FIX/orders.yaml" "text/yaml; charset=utf-8" REMOTE_USER=alice
check "text/yaml with parameters accepted; back to two ports" '[ "$status" = 200 ] && json "len(d[\"output_ports\"]) == 2 and d[\"version\"] == \"1.0.0\""'
DBX_PORT=$(jget '[p["id"] for p in d["output_ports"] if p["name"] == "lakehouse"][0]')
post /api/data-products "$FIX/orders.yaml" application/x-yaml REMOTE_USER=gina
check "the same contract in another org is another product" '[ "$status" = 201 ] && json "d[\"id\"] != \"$PRODUCT\""'
OTHER=$(jget 'd["id"]')

post /api/data-products "$FIX/orders.yaml" text/plain REMOTE_USER=alice
check "wrong content type: 415" '[ "$status" = 415 ] && is_error unsupported_media_type'
BODY="$FIX/orders.yaml" cgi POST /api/data-products CONTENT_LENGTH="$(wc -c <"$FIX/orders.yaml")" REMOTE_USER=alice
check "missing content type: 415" '[ "$status" = 415 ]'
BODY="$FIX/orders.yaml" cgi POST /api/data-products CONTENT_TYPE=application/yaml REMOTE_USER=alice
check "no Content-Length: 411" '[ "$status" = 411 ] && is_error length_required'
BODY="$FIX/orders.yaml" cgi POST /api/data-products CONTENT_TYPE=application/yaml CONTENT_LENGTH=0 REMOTE_USER=alice
check "empty body: 400" '[ "$status" = 400 ]'
post /api/data-products "$FIX/orders.yaml" application/yaml REMOTE_USER=alice PBIPORT_MAX_BODY=100
check "body over PBIPORT_MAX_BODY: 413" '[ "$status" = 413 ] && is_error payload_too_large'
BODY=/dev/null cgi POST /api/data-products CONTENT_TYPE=application/yaml CONTENT_LENGTH=99999999999 REMOTE_USER=alice
check "huge Content-Length refused before reading: 413" '[ "$status" = 413 ]'
BODY="$FIX/orders.yaml" cgi POST /api/data-products CONTENT_TYPE=application/yaml CONTENT_LENGTH=99999 REMOTE_USER=alice
check "body shorter than Content-Length: 400" '[ "$status" = 400 ]'
cgi GET /healthz CONTENT_LENGTH=5
check "a body where none is taken: 413" '[ "$status" = 413 ]'
post /api/data-products "$FIX/broken.yaml" application/yaml REMOTE_USER=alice
check "malformed YAML: 400 with line and column" '[ "$status" = 400 ] && is_error bad_request && json "\"request body:3:1:\" in d[\"error\"][\"message\"]"'
post /api/data-products "$FIX/broken.json" application/json REMOTE_USER=alice
check "malformed JSON: 400 with line and column" '[ "$status" = 400 ] && json "\"line 2, column 10\" in d[\"error\"][\"message\"]"'
printf '{"id":"a","id":"b"}' >"$tmp/dup.json"
post /api/data-products "$tmp/dup.json" application/json REMOTE_USER=alice
check "duplicate JSON keys: 400" '[ "$status" = 400 ] && json "\"duplicate\" in d[\"error\"][\"message\"]"'
post /api/data-products "$FIX/bad-type.yaml" application/yaml REMOTE_USER=alice
check "contract error: 400 naming the field" '[ "$status" = 400 ] && json "d[\"error\"][\"message\"].startswith(\"schema[0].properties[0].logicalType\")"'
cgi GET /api/data-products REMOTE_USER=alice
check "nothing written by refused imports" '[ "$status" = 200 ] && json "[p[\"contract_id\"] for p in d[\"data_products\"]] == [\"urn:contract:orders\"]"'

# ---- several processes writing at once: no "database is locked" reaches a client ----
for i in 1 2 3 4 5 6 7 8; do
  env REQUEST_METHOD=POST REQUEST_URI=/api/data-products QUERY_STRING= CONTENT_TYPE=application/yaml \
    CONTENT_LENGTH="$(wc -c <"$FIX/orders.yaml")" REMOTE_USER=alice "$FCGI" <"$FIX/orders.yaml" \
    >"$tmp/par$i" 2>/dev/null &
done
wait
check "8 concurrent re-imports all succeed" '[ "$(cat "$tmp"/par? | grep -c "^Status: 200 OK")" -eq 8 ]'
cgi GET "/api/data-products/$PRODUCT" REMOTE_USER=alice
check "each concurrent import counted once" 'json "d[\"revision\"] == 11"'

# ---- reads ----
cgi GET "/api/data-products/$PRODUCT" REMOTE_USER=bob
check "GET product: same shape plus the contract text" '[ "$status" = 200 ] && json "d[\"id\"] == \"$PRODUCT\" and d[\"contract\"] == open(\"$FIX/orders.yaml\").read() and len(d[\"output_ports\"]) == 2"'
cgi GET "/api/data-products/$OTHER" REMOTE_USER=bob
check "another org's product: 404" '[ "$status" = 404 ] && is_error not_found'
cgi GET "/api/output-ports/$PORT" REMOTE_USER=bob
check "GET output port: id, name, type, server fields, product and contract ids" '[ "$status" = 200 ] && json "d[\"id\"] == \"$PORT\" and d[\"type\"] == \"snowflake\" and d[\"server\"][\"account\"] == \"acme-prod\" and d[\"data_product_id\"] == \"$PRODUCT\" and d[\"contract_id\"] == \"urn:contract:orders\""'
cgi GET "/api/output-ports/$PORT" REMOTE_USER=gina
check "another org's port: 404" '[ "$status" = 404 ]'
cgi GET "/api/output-ports/$PORT/tmdl?mode=directquery" REMOTE_USER=bob
check "GET tmdl: rendered files" '[ "$status" = 200 ] && json "any(f[\"path\"] == \"definition/model.tmdl\" for f in d[\"files\"]) and all(set(f) == {\"path\",\"content\"} for f in d[\"files\"])"'
cgi GET "/api/output-ports/$PORT/tmdl?mode=sideways" REMOTE_USER=bob
check "GET tmdl with a bad mode: 400 naming it" '[ "$status" = 400 ] && is_error bad_request && json "\"sideways\" in d[\"error\"][\"message\"] or \"mode\" in d[\"error\"][\"message\"]"'
cgi GET "/api/output-ports/$DBX_PORT/tmdl" REMOTE_USER=bob
check "databricks port without http_path: 400 naming it" '[ "$status" = 400 ] && json "\"http_path\" in d[\"error\"][\"message\"] or \"httpPath\" in d[\"error\"][\"message\"]"'
cgi GET "/api/output-ports/$DBX_PORT/tmdl?http_path=%2Fsql%2F1.0%2Fwarehouses%2Fabc" REMOTE_USER=bob
check "databricks port with http_path in the query: 200" '[ "$status" = 200 ] && json "len(d[\"files\"]) > 2"'
cgi GET "/api/output-ports/$PORT/tmdl?colour=red" REMOTE_USER=bob
check "GET tmdl with an undeclared parameter: 400" '[ "$status" = 400 ]'
cgi GET "/api/output-ports/$OTHER/tmdl" REMOTE_USER=bob
check "tmdl of an unknown port: 404" '[ "$status" = 404 ]'

# ---- roles ----
cgi DELETE "/api/data-products/$PRODUCT" REMOTE_USER=bob
check "owner-only route for a member: 403" '[ "$status" = 403 ] && is_error forbidden'
cgi DELETE "/api/data-products/$PRODUCT" REMOTE_USER=gina
check "owner of another org: 404" '[ "$status" = 404 ]'
cgi DELETE "/api/data-products/$PRODUCT" REMOTE_USER=alice
check "owner deletes: 204" '[ "$status" = 204 ]'
cgi GET "/api/output-ports/$PORT" REMOTE_USER=alice
check "its ports are gone" '[ "$status" = 404 ]'

cgi GET /metrics
check "metrics saw the error statuses" 'grep -q "route=\"/api/data-products\",method=\"POST\",status=\"415\"" "$tmp/body" && grep -q "route=\"unmatched\",method=\"GET\",status=\"404\"" "$tmp/body"'

tap_done
