#!/usr/bin/env bash
# msapi benchmark: generates a tenant of BENCH_WORKSPACES (default 10000) workspaces with
# tests/emulator/gen_tenant.py (5 models, 10 reports each), starts the emulator with
# BENCH_LATENCY_MS (default 20) of latency on every call, then runs bench/msapi/bench_msapi.c:
# list all workspaces (Fabric paging, Power BI $top/$skip, scanner "modified") and scan them
# all (getInfo in batches of 100, at most 16 scans in flight, scanStatus polled every
# BENCH_POLL_MS, default 100), then the same scan one batch at a time for comparison
# (BENCH_SERIAL=0 skips it). Writes the "msapi" section of bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/completion.sh
. bench/completion.sh
WS=${BENCH_WORKSPACES:-10000}
LAT=${BENCH_LATENCY_MS:-20}
POLL=${BENCH_POLL_MS:-100}
SERIAL=${BENCH_SERIAL:-1}

make -s build/libpbiport.a
work=$(mktemp -d /tmp/pbiport-bench-msapi-XXXXXX)
emu_pid=
cleanup() {
  if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

PKG="lua5.4 sqlite3 jansson libcurl openssl yaml-0.1"
cc -std=c11 -D_GNU_SOURCE -O2 -I. $(pkg-config --cflags $PKG) -o "$work/bench_msapi" bench/msapi/bench_msapi.c \
   build/libpbiport.a $(pkg-config --libs $PKG) -lfcgi -lm -lpthread

t0=$(date +%s.%N)
python3 tests/emulator/gen_tenant.py --workspaces "$WS" --models-per 5 --reports-per 10 --out "$work/tenant.json"
gen_s=$(python3 -c "import time; print('%.1f' % (time.time() - $t0))")
read -r tenant client secret < <(python3 -c "
import json; t = json.load(open('$work/tenant.json'))['tenants'][0]; a = t['apps'][1]
print(t['id'], a['client_id'], a['client_secret'])")

mkdir -p "$work/emu"
python3 tests/emulator/server.py --state-dir "$work/emu" --port 0 --fixture "$work/tenant.json" \
        --latency-ms "$LAT" >"$work/emu.out" 2>"$work/emu.err" &
emu_pid=$!
for _ in $(seq 1 600); do grep -q '^READY ' "$work/emu.out" 2>/dev/null && break; sleep 0.2; done
url=$(sed -n 's/^READY //p' "$work/emu.out")
[ -n "$url" ] || { echo "emulator did not start:"; tail -5 "$work/emu.err"; exit 1; }
export PBIPORT_ENTRA_URL=$url/entra PBIPORT_FABRIC_URL=$url/fabric PBIPORT_POWERBI_URL=$url/powerbi
export PBIPORT_GRAPH_URL=$url/graph PBIPORT_CA_BUNDLE=$work/emu/ca.pem
export PBIPORT_DB=$work/unused.db   # required by the configuration; the benchmark opens no database
export BENCH_CLIENT_SECRET=$secret
[ "$SERIAL" = 0 ] || export BENCH_SERIAL=1

status=0
"$work/bench_msapi" "$tenant" "$client" - 16 "$POLL" "$POLL" >"$work/result.txt" 2>"$work/bench.err" || status=$?
cat "$work/result.txt"
[ "$status" -eq 0 ] || bench_fail msapi "bench_msapi exited $status ($(tail -n 1 "$work/bench.err"))"
curl -s --cacert "$work/emu/ca.pem" "$url/_emulator/state?sections=counters&parts=0" >"$work/state.json"

python3 - "$work/result.txt" "$work/state.json" "$WS" "$LAT" "$POLL" "$gen_s" "$work/emu.err" <<'PY'
import json, os, platform, re, sys, time
sys.path.insert(0, "bench")
import completion  # noqa: E402
res = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l)
# every listing and scan saw the whole tenant: gen_tenant's 5 models and 10 reports per workspace
n = int(sys.argv[3])
want = {"fabric_list_workspaces": n, "powerbi_list_groups": n, "scanner_modified": n, "scan_workspaces": n,
        "scan_datasets": 5 * n, "scan_reports": 10 * n}
if "serial_wall_s" in res:
  want.update(serial_workspaces=n, serial_datasets=5 * n, serial_reports=10 * n)
for k, v in want.items():
  completion.require_equal(int(res.get(k, -1)), v, "msapi", k)
# the emulator logs "HH:MM:SS METHOD /path STATUS N.Nms" (time spent server-side, latency included)
server = {}
for line in open(sys.argv[7]):
  m = re.match(r"\S+ (\S+) (\S+) \S+ ([\d.]+)ms$", line.strip())
  if not m: continue
  p = m.group(2)
  key = ("fabric workspaces page" if p == "/fabric/v1/workspaces" else "getInfo" if p.endswith("/getInfo")
         else "scanStatus" if "/scanStatus/" in p else "scanResult" if "/scanResult/" in p else None)
  if key: server.setdefault(key, []).append(float(m.group(3)))
def mean(k): v = server.get(k) or [0]; return "%.0f" % (sum(v) / len(v))
counters = json.load(open(sys.argv[2])).get("counters", {})
ws, lat, poll, gen_s = sys.argv[3:7]
def g(k, d="-"): return res.get(k, d)
rows = [
  ("Fabric GET /v1/workspaces, all pages (100 per page)", g("fabric_list_workspaces"), g("fabric_list_wall_s")),
  ("Power BI GET /groups, $top=5000 pages", g("powerbi_list_groups"), g("powerbi_list_wall_s")),
  ("scanner GET admin/workspaces/modified", g("scanner_modified"), g("scanner_modified_wall_s")),
  ("scan all: getInfo x%s batches, <=16 in flight" % g("scan_batches"), g("scan_workspaces"), g("scan_wall_s")),
]
if "serial_wall_s" in res:
  rows.append(("scan all, one batch at a time (comparison)", g("serial_workspaces"), g("serial_wall_s")))
out = ["<!-- msapi:begin -->", "## msapi", "",
  "Reproduce: `bench/msapi/run.sh` (BENCH_WORKSPACES=%s, BENCH_LATENCY_MS=%s, BENCH_POLL_MS=%s). "
  "Tenant from `tests/emulator/gen_tenant.py --workspaces %s --models-per 5 --reports-per 10` (generated in %s s); "
  "the emulator (one Python process, one state lock) adds %s ms to every call; client = msapi over one "
  "`pb_http` (libcurl multi, shared connection cache), service-principal token." % (ws, lat, poll, ws, gen_s, lat),
  "", "Machine: %d cores, %s, Python %s; run on %s UTC." % (os.cpu_count(), platform.platform(),
  platform.python_version(), time.strftime("%Y-%m-%d %H:%M", time.gmtime())), "",
  "| step | items | wall s |", "|---|---:|---:|"]
out += ["| %s | %s | %s |" % r for r in rows]
out += ["",
  "- scan: %s HTTP requests (%s retried), %s datasets and %s reports read from the scan results (converted to "
  "plain C with scanner_parse_result), %s workspaces/s; the client used %s s of CPU for it."
  % (g("scan_requests"), g("scan_retries"), g("scan_datasets"), g("scan_reports"), g("scan_workspaces_per_s"),
     g("scan_client_cpu_s")),
  "- concurrency: Power BI allows 16 scans in flight; the 16 scan slots were held %s%% of the wall time "
  "(slot occupancy %s), with %s requests on the wire on average; the emulator refused %s getInfo calls "
  "for too many scans in flight." % (int(round(float(g("scan_slot_occupancy", "0")) * 100)), g("scan_slot_occupancy"),
  g("scan_avg_requests_in_flight"), counters.get("scanner_throttled", 0)),
]
if "serial_wall_s" in res:
  sp = float(res["serial_wall_s"]) / max(float(res["scan_wall_s"]), 1e-9)
  out.append("- 16 in flight vs one at a time: %.1fx faster." % sp)
out.append("- server-side time per call, mean over both runs (emulator log, %s ms injected latency included): "
  "Fabric workspaces page %s ms, getInfo %s ms, scanStatus %s ms, scanResult %s ms. Each emulator reply also "
  "costs about 40 ms on the wire: http.server writes headers and body separately, so Nagle's algorithm waits for "
  "the client's delayed ACK (curl -w time_total on one kept-alive connection shows 44 ms for a 0.4 ms handler). "
  "The sequential Fabric paging pays that on every page; the scan hides it behind 16 overlapping scans and is "
  "then bound by the emulator's single state lock, not by the client." % (lat, mean("fabric workspaces page"),
  mean("getInfo"), mean("scanStatus"), mean("scanResult")))
out += ["<!-- msapi:end -->"]
section = "\n".join(out)
import readme_section  # noqa: E402
readme_section.write("msapi", section)
print(section)
PY
