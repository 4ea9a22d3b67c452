"""HTTP benchmark: wrk on loopback against GET /api/data-products/{id} through nginx with 2 and 4
FastCGI processes, against an nginx `return 200` location in the same nginx, and a mixed run with
10% imports. Prints a table and writes it into the "http" section of bench/README.md.

Run with bench/http/run.sh. BENCH_SECONDS (default 20) sets each wrk run's length;
BENCH_CONNECTIONS (default 64) the open connections; BENCH_NO_README=1 only prints.
"""
import datetime
import os
import platform
import re
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import harness  # noqa: E402
import readme_section  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
THREADS = 2
POOL_SIZES = (2, 4)
CONTRACT = os.path.join(ROOT, "tests", "integration", "fixtures", "orders.odcs.yaml")
BEGIN, END = "<!-- http:begin -->", "<!-- http:end -->"
GOAL_RATIO, GOAL_P99_MS = 0.5, 5.0

STATIC_SERVER = """# Benchmark baseline: nginx answering by itself, in the same nginx as pbiport.
server {
    listen 127.0.0.1:%d;
    access_log off;
    location = /static-ok { return 200 "ok\\n"; }
}
"""

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url, headers=(), script=None, env=None, connections=None):
    """One wrk run; returns dict rps, p50, p99 (ms), requests, non2xx, errors, and wrk_us: the CPU wrk
    itself spent per request (the load generator shares the cores with what it measures)."""
    conns = connections or CONNECTIONS
    args = ["wrk", "-t%d" % min(THREADS, conns), "-c%d" % conns, "-d%ds" % SECONDS, "--latency"]
    for h in headers:
        args += ["-H", h]
    if script:
        args += ["-s", script]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(args + [url], capture_output=True, text=True, env=env, timeout=SECONDS + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = out.stdout
    if out.returncode != 0:
        raise RuntimeError("wrk failed: %s %s" % (text, out.stderr))
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
           "p50": to_ms(re.search(r"\s50%\s+(\S+)", text).group(1)),
           "p99": to_ms(re.search(r"\s99%\s+(\S+)", text).group(1)),
           "requests": int(re.search(r"(\d+) requests in", text).group(1)),
           "non2xx": 0, "errors": 0}
    res["wrk_us"] = ((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)) / res["requests"] * 1e6
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        res["errors"] = sum(int(x) for x in m.groups())
    return res


def cpu_seconds(pids):
    """User + system CPU time of the given processes so far."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def roles(stack):
    """Pids of the pbiport.fcgi copies and of the nginx workers of a stack."""
    fcgi, web = [], []
    for pid in stack.pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"pbiport.fcgi"):
            fcgi.append(pid)
        elif argv[0].startswith(b"nginx: worker"):
            web.append(pid)
    return fcgi, web


def measured(run, fcgi, web):
    """run() with the CPU its requests cost in the pool and in nginx, in microseconds/request."""
    app0, web0 = cpu_seconds(fcgi), cpu_seconds(web)
    res = run()
    res["app_us"] = (cpu_seconds(fcgi) - app0) / res["requests"] * 1e6
    res["web_us"] = (cpu_seconds(web) - web0) / res["requests"] * 1e6
    return res


def run_pool(procs):
    static_port = harness.free_port()
    stack = harness.Stack("nginx", fcgi_procs=procs, nginx_extra=STATIC_SERVER % static_port)
    with stack:
        with open(CONTRACT) as f:
            status, _, doc = stack.import_contract(f.read(), token="alice")
        if status != 201:
            raise RuntimeError("import failed: %d %r" % (status, doc))
        token = stack.tokens["alice"]
        auth = "Authorization: Bearer " + token
        app_url = "%s/api/data-products/%s" % (stack.url, doc["id"])
        status, _, _ = stack.request("GET", "/api/data-products/" + doc["id"], token="alice")
        if status != 200:
            raise RuntimeError("GET data product answered %d" % status)
        rows = {}
        fcgi, web = roles(stack)
        rows["get"] = measured(lambda: wrk(app_url, headers=[auth]), fcgi, web)
        # As many connections as processes: latency without queueing in front of the pool.
        rows["get_unqueued"] = wrk(app_url, headers=[auth], connections=procs)
        rows["static"] = measured(lambda: wrk("http://127.0.0.1:%d/static-ok" % static_port), fcgi, web)
        env = dict(os.environ, BENCH_TOKEN=token, BENCH_PRODUCT_ID=doc["id"], BENCH_CONTRACT=CONTRACT)
        rows["mixed"] = wrk(stack.url + "/", script=os.path.join(HERE, "mixed.lua"), env=env)
        with open(stack.fcgi_log, errors="replace") as f:
            rows["locked"] = f.read().count("database is locked")
        return rows


def table(results):
    lines = ["Rows at %d connections unless stated. At 64 connections a request waits for the ones "
             "queued before it, so by Little's law p99 < 5 ms needs more than 64 / 5 ms = 12 800 requests/s; "
             "the last row of each pool shows the latency of a request that does not queue." % CONNECTIONS, "",
             "| run | FastCGI procs | requests/s | p50 ms | p99 ms | non-2xx | socket errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for procs, rows in results.items():
        for name, label in (("get", "GET /api/data-products/{id}"), ("static", "nginx `return 200`"),
                            ("mixed", "mixed: 90% GET, 10% import"),
                            ("get_unqueued", "GET /api/data-products/{id}, %d connections" % procs)):
            r = rows[name]
            lines.append("| %s | %d | %.0f | %.2f | %.2f | %d | %d |" % (
                label, procs, r["rps"], r["p50"], r["p99"], r["non2xx"], r["errors"]))
    lines.append("")
    for procs, rows in results.items():
        get, static = rows["get"], rows["static"]
        get_total = get["app_us"] + get["web_us"] + get["wrk_us"]
        static_total = static["web_us"] + static["wrk_us"]
        lines.append("- %d procs: CPU per GET request: %.0f us in pbiport.fcgi + %.0f us in nginx + %.0f us in wrk "
                     "= %.0f us; per `return 200` request: %.0f us in nginx + %.0f us in wrk = %.0f us. With all "
                     "of them CPU-bound on the same %d cores the rates go as the inverse of these sums: the "
                     "GET/static ratio can reach at most %.2f now, and %.2f if pbiport cost nothing at all "
                     "(nginx's FastCGI proxying alone is %.1fx a `return 200`)" % (
                         procs, get["app_us"], get["web_us"], get["wrk_us"], get_total, static["web_us"],
                         static["wrk_us"], static_total, os.cpu_count(), static_total / get_total,
                         static_total / (get["web_us"] + get["wrk_us"]),
                         get["web_us"] / max(static["web_us"], 0.1)))
    for procs, rows in results.items():
        ratio = rows["get"]["rps"] / rows["static"]["rps"]
        lines.append("- %d procs: GET/static ratio **%.2f** (goal >= %.1f: %s), GET p99 %.2f ms (goal < %.0f ms: %s), "
                     "mixed non-2xx %d (goal 0: %s), `database is locked` in the log: %d" % (
                         procs, ratio, GOAL_RATIO, "met" if ratio >= GOAL_RATIO else "NOT met",
                         rows["get"]["p99"], GOAL_P99_MS, "met" if rows["get"]["p99"] < GOAL_P99_MS else "NOT met",
                         rows["mixed"]["non2xx"], "met" if rows["mixed"]["non2xx"] == 0 else "NOT met",
                         rows["locked"]))
    return "\n".join(lines)


def section(body):
    cores = os.cpu_count()
    return "\n".join([
        BEGIN,
        "## http",
        "",
        "Reproduce: `bench/http/run.sh` (BENCH_SECONDS=%d per run, wrk -t%d -c%d --latency on loopback)." % (
            SECONDS, THREADS, CONNECTIONS),
        "nginx (1 worker, deploy/nginx/ templates as shipped) -> unix socket -> spawn-fcgi pool of pbiport.fcgi; "
        "SQLite in WAL mode on local disk. wrk, nginx and the pool share the same %d cores. The mixed run "
        "(bench/http/mixed.lua) sends every tenth request as an import of tests/integration/fixtures/"
        "orders.odcs.yaml under one of 50 contract ids." % cores,
        "",
        "Machine: %d cores, %s; run on %s UTC; load average before the run %s (other work on the "
        "machine competes with wrk, nginx and the pool for the same cores)." % (
            cores, platform.platform(terse=True),
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), LOAD_BEFORE),
        "",
        body,
        END,
    ])


LOAD_BEFORE = "%.2f / %.2f / %.2f" % os.getloadavg()


def main():
    results = {}
    for procs in POOL_SIZES:
        print("bench/http: %d FastCGI processes, %d s per run" % (procs, SECONDS), flush=True)
        results[procs] = run_pool(procs)
    body = table(results)
    print(body)
    if not os.environ.get("BENCH_NO_README"):
        readme_section.write("http", section(body))
        print("bench/http: results written to bench/README.md")


if __name__ == "__main__":
    main()
