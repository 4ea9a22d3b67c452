#!/usr/bin/env bash
# The API side of rendering, through the FastCGI binary in plain CGI mode: the dry run
# (GET /api/output-ports/{id}/tmdl) takes what a server lacks as query parameters and names
# them -- ?http_path=, not the CLI's --http-path -- in one message; imports refuse names
# Power BI would refuse (too long, look-alikes) with 400 (TAP output).
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib/tap.sh

export PBIPORT_DB="$tmp/pbiport.db"
unset REMOTE_USER HTTP_AUTHORIZATION PBIPORT_MAX_BODY PBIPORT_TEMPLATE_PATH APPLICATION_POWERBI_WEB_ENABLED \
      APPLICATION_INGESTIONS_ENABLED APPLICATION_ENCRYPTION_KEYS APPLICATION_SECURITY_REMEMBERME_KEY

import() {  # FILE: POST it as YAML as alice
  BODY=$1 cgi POST /api/data-products CONTENT_TYPE=application/yaml CONTENT_LENGTH="$(wc -c <"$1")" REMOTE_USER=alice
}
message() { jget 'd["error"]["message"]'; }

"$BIN" migrate 2>/dev/null && "$BIN" org create acme >/dev/null && "$BIN" user add alice --org acme --role owner >/dev/null

cat >"$tmp/thin.yaml" <<'YAML'
apiVersion: v3.1.0
kind: DataContract
id: urn:test:thin
name: Thin servers
version: 1.0.0
status: active
servers:
  - server: sf
    type: snowflake
    account: acme
    database: SALES
  - server: dbx
    type: databricks
    host: adb-1.2.azuredatabricks.net
    catalog: main
    schema: sales
schema:
  - name: orders
    properties:
      - name: id
        logicalType: integer
YAML
import "$tmp/thin.yaml"
check "a contract whose servers lack values imports" '[ "$status" = 201 ]'
SF=$(jget '[p["id"] for p in d["output_ports"] if p["name"] == "sf"][0]')
DBX=$(jget '[p["id"] for p in d["output_ports"] if p["name"] == "dbx"][0]')

cgi GET "/api/output-ports/$SF/tmdl" REMOTE_USER=alice
check "dry run: every missing value in one 400 (the caller can give them), named as query parameters" '[ "$status" = 400 ] && json "d[\"error\"][\"code\"] == \"bad_request\"" && [ "$(message)" = "server \"sf\" (snowflake): no warehouse or schema; add \"warehouse\" and \"schema\" to the server or pass ?warehouse= and ?schema=" ]'
cgi GET "/api/output-ports/$DBX/tmdl" REMOTE_USER=alice
check "dry run: ?http_path=, not --http-path" '[ "$status" = 400 ] && json "d[\"error\"][\"message\"].endswith(\"or pass ?http_path=\") and \"--\" not in d[\"error\"][\"message\"]"'
cgi GET "/api/output-ports/$SF/tmdl?warehouse=WH&schema=PUBLIC" REMOTE_USER=alice
check "dry run with ?warehouse= and ?schema=: 200" '[ "$status" = 200 ] && json "any(\"{[Name=\\\"PUBLIC\\\",Kind=\\\"Schema\\\"]}\" in f[\"content\"] for f in d[\"files\"])"'
cgi GET "/api/output-ports/$DBX/tmdl?http_path=%2Fsql%2F1.0%2Fwarehouses%2Fabc&catalog=ignored" REMOTE_USER=alice
check "dry run with ?http_path=; the server's own catalog wins" '[ "$status" = 200 ] && json "any(\"DatabricksCatalog = \\\"main\\\"\" in f[\"content\"] for f in d[\"files\"]) and not any(\"ignored\" in f[\"content\"] for f in d[\"files\"])"'

# names Power BI refuses are refused at import, naming the object and the limit
python3 - "$tmp" <<'PY'
import sys
head = "apiVersion: v3.1.0\nkind: DataContract\nid: urn:test:%s\nversion: 1.0.0\nstatus: active\nschema:\n"
def table(name):
    return '  - name: "%s"\n    properties: [{name: id, logicalType: integer}]\n' % name
open(sys.argv[1] + "/long.yaml", "w").write(head % "long" + table("x" * 513))
open(sys.argv[1] + "/ok.yaml", "w").write(head % "ok" + table("\u20ac" * 512))
open(sys.argv[1] + "/look.yaml", "w").write(head % "look" + table("Caf\u00e9") + table("CAFE\u0301"))
PY
import "$tmp/long.yaml"
check "a table name over 512 characters: 400 naming it and the limit" '[ "$status" = 400 ] && json "d[\"error\"][\"message\"].startswith(\"schema[0].name: table name of 513 characters; Power BI allows at most 512 (\\\"xxx\")"'
import "$tmp/look.yaml"
check "look-alike table names: 400 as duplicates" '[ "$status" = 400 ] && json "d[\"error\"][\"message\"].startswith(\"schema[1].name: duplicate table \")"'
import "$tmp/ok.yaml"
check "512 characters of 3 bytes each: imported" '[ "$status" = 201 ]'

tap_done
