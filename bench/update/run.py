"""Update benchmark: pbiport's own CPU for updating a published 200-table model in place, against
publishing the same model, in the same run. BENCH_JOBS models (default 10) of a generated contract
with BENCH_TABLES tables (default 200) of 8 columns are published by one `pbiport worker` against
the emulator; an analyst's measure is added to each in "Power BI" (the emulator's edit call); the
contract is imported again with one more column in every table; then every model is updated
(POST /api/published-models/{id}/update through nginx, then one worker runs the jobs with no
refresh). CPU = user + system time of the worker process (wait4), divided by the jobs; the
request's own check (render, getDefinition, diff in the FastCGI process) is timed on the wall.
Writes the "update" section of bench/README.md. Python 3 standard library only."""
import importlib.util
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import harness  # noqa: E402
import emutest  # noqa: E402
import readme_section  # noqa: E402

_spec = importlib.util.spec_from_file_location("publish_bench", os.path.join(ROOT, "bench", "publish", "run.py"))
publish_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(publish_bench)

JOBS = int(os.environ.get("BENCH_JOBS", "10"))
TABLES = int(os.environ.get("BENCH_TABLES", "200"))
COLUMNS = 8
TYPES = ("integer", "number", "string", "date", "timestamp", "boolean", "string", "number")
TIMEOUT_S = 3600
JSON = {"Content-Type": "application/json"}


def contract(extra_column):
    lines = ["apiVersion: v3.1.0", "kind: DataContract", "id: urn:datacontract:bench:update",
             "name: Update bench", "version: 1.0.0", "status: active", "servers:", "  - server: analytics",
             "    type: snowflake", "    host: CONTOSO-XY12345.snowflakecomputing.com", "    database: SALES",
             "    schema: PUBLIC", "    warehouse: ANALYTICS_WH", "schema:"]
    for t in range(TABLES):
        lines += ["  - name: table_%03d" % t, "    physicalName: TABLE_%03d" % t, "    physicalType: table",
                  "    properties:"]
        cols = [("col_%d" % c, TYPES[c % len(TYPES)]) for c in range(COLUMNS)]
        if extra_column:
            cols.append(("added_col", "string"))
        for name, typ in cols:
            lines += ["      - name: %s" % name, "        physicalName: %s" % name.upper(),
                      "        logicalType: %s" % typ]
    return "\n".join(lines) + "\n"


def run_worker(stack, kind, ids):
    """One worker runs the queued jobs ids of kind: (wall s, CPU s, states)."""
    start = time.monotonic()
    p = subprocess.Popen([stack.bin, "worker", "--poll-ms", "20", "--id", "bench-" + kind], env=stack.env(),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(stack.path("logs", "worker-%s.log" % kind), "a"))
    q = "SELECT state, count(*) FROM jobs WHERE kind = ? AND id IN (%s) GROUP BY state" % ",".join("?" * len(ids))
    while True:
        with sqlite3.connect(stack.path("db", "pbiport.db")) as c:
            states = dict(c.execute(q, [kind] + ids).fetchall())
        if states.get("succeeded", 0) + states.get("failed", 0) == len(ids):
            break
        if time.monotonic() - start > TIMEOUT_S:
            raise RuntimeError("%s jobs did not finish: %r" % (kind, states))
        time.sleep(0.02)
    wall = time.monotonic() - start
    p.send_signal(signal.SIGTERM)
    _, _, usage = os.wait4(p.pid, 0)
    return wall, usage.ru_utime + usage.ru_stime, states


def main():
    with open(os.path.join(ROOT, "tests", "fixtures", "tenants", "demo.json")) as f:
        demo = json.load(f)["tenants"][0]
    emu = emutest.Emulator(fixture="demo.json")
    env = dict(harness.emulator_env(emu), APPLICATION_POWERBI_WEB_ENABLED="true",
               APPLICATION_ENCRYPTION_KEYS="77" * 32, APPLICATION_SECURITY_REMEMBERME_KEY="88" * 32)
    try:
        with harness.Stack("nginx", fcgi_procs=2, env=env) as stack:
            publish_bench.connect_alice(stack, emu, demo)
            emu.control("POST", "config", {"latency_ms": 0, "lro_polls": 1, "retry_after_s": 0})
            status, _, doc = stack.import_contract(contract(False), token="alice")
            assert status == 201, doc
            port = [p["id"] for p in doc["output_ports"] if p["name"] == "analytics"][0]
            jobs = []
            for i in range(JOBS):
                status, _, doc = stack.json("POST", "/api/output-ports/%s/powerbi-publish" % port, token="alice",
                                            headers=JSON, body=json.dumps({"workspace_id": publish_bench.WORKSPACE,
                                                                           "name": "update bench %d" % i,
                                                                           "connection_id": publish_bench.CONNECTION}))
                assert status == 202, doc
                jobs.append(doc["job_id"])
            pub_wall, pub_cpu, states = run_worker(stack, "publish", jobs)
            assert states.get("succeeded") == JOBS, states
            models = []
            for j in jobs:
                status, _, doc = stack.json("GET", "/api/jobs/" + j, token="alice")
                models.append((doc["result"]["id"], doc["result"]["semantic_model_id"]))
                emu.control("POST", "models/%s/edit" % doc["result"]["semantic_model_id"],
                            {"add_measure": {"table": "table_000", "name": "Total",
                                             "expression": "SUM(table_000[col_1])"}})
            t0 = time.monotonic()
            status, _, doc = stack.import_contract(contract(True), token="alice")
            import_s = time.monotonic() - t0
            assert status == 200, doc
            jobs, request_s = [], 0.0
            for pm, _ in models:
                t0 = time.monotonic()
                status, _, doc = stack.json("POST", "/api/published-models/%s/update" % pm, token="alice",
                                            headers=JSON, body=json.dumps({"refresh": False}))
                request_s += time.monotonic() - t0
                assert status == 202, doc
                jobs.append(doc["job_id"])
            upd_wall, upd_cpu, states = run_worker(stack, "update", jobs)
            assert states.get("succeeded") == JOBS, states
            parts = {m["id"]: m for m in emu.control("GET", "state?sections=models")["models"]}
            for _, mid in models:
                text = "\n".join(parts[mid]["parts"].values())
                assert "column added_col" in text and "measure Total" in text, mid
    finally:
        emu.stop()
    ratio = upd_cpu / pub_cpu
    print("publish: %.1f ms CPU/job; update: %.1f ms CPU/job (%.2fx); update request %.0f ms; re-import %.0f ms" %
          (1000 * pub_cpu / JOBS, 1000 * upd_cpu / JOBS, ratio, 1000 * request_s / JOBS, 1000 * import_s))
    load = os.getloadavg()
    lines = [
        "<!-- update:begin -->",
        "## update",
        "",
        "Reproduce: `bench/update/run.sh` (BENCH_JOBS=%d, BENCH_TABLES=%d). A generated contract of %d tables of "
        "%d columns (Snowflake, the `analytics` server) is published %d times by one `pbiport worker` against the "
        "emulator (demo tenant, no latency, one poll per long-running operation); a measure is added to each model "
        "in \"Power BI\" (the emulator's edit call); the contract is imported again with one more column in every "
        "table (which marks every model update_available: render + diff against the kept definition, in the import "
        "request); then each model is updated (POST .../update with \"refresh\": false through nginx, then one "
        "worker runs the jobs). Each update job renders the contract, reads the live definition (getDefinition), "
        "diffs the two, merges the kept measure back, uploads (updateDefinition) and lists the data sources; each "
        "publish job renders and parses back the TMDL, creates and binds the model. CPU = user + system time of the "
        "worker (wait4) divided by the jobs; every model is checked afterwards (the column and the measure are "
        "there)." % (JOBS, TABLES, TABLES, COLUMNS, JOBS),
        "",
        "Machine: %d cores, %s, Python %s; run on %s UTC; load average after the run %.2f / %.2f / %.2f." % (
            os.cpu_count(), platform.platform(), platform.python_version(),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime()), *load),
        "",
        "| job | jobs | wall s | pbiport CPU per job |",
        "|---|---:|---:|---:|",
        "| publish (%d tables) | %d | %.1f | %.1f ms |" % (TABLES, JOBS, pub_wall, 1000 * pub_cpu / JOBS),
        "| update (%d tables, +1 column each, 1 kept measure) | %d | %.1f | %.1f ms |" % (
            TABLES, JOBS, upd_wall, 1000 * upd_cpu / JOBS),
        "",
        "- update / publish CPU: **%.2fx** (goal: within 2x: %s)" % (ratio, "met" if ratio <= 2 else "NOT met"),
        "- the update request's own check (render, getDefinition, diff, in the FastCGI process, on the wall): "
        "%.0f ms per request; the re-import that marked all %d models: %.0f ms" % (
            1000 * request_s / JOBS, JOBS, 1000 * import_s),
        "<!-- update:end -->",
        "",
    ]
    readme_section.write("update", "\n".join(lines))


if __name__ == "__main__":
    main()
