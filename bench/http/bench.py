"""HTTP benchmark: wrk on loopback through nginx (deploy/nginx as shipped) with 2 and 4 FastCGI
processes. pbiport answers `GET /api/data-products/{id}` and a web page (`GET /data-products/{id}`);
its floor is the same nginx configuration and pool script in front of bench/http/floor.c, a
libfcgi responder that answers the same bytes without doing anything else, with as many
processes. pbiport and the floor are measured in turns in one run (A B A B), so both see the same
machine. Also: an nginx `return 200` location in the same nginx, a request that does not queue,
and a mixed run with 10% imports. Prints a table and writes it into the "http" section of
bench/README.md.

Run with bench/http/run.sh. BENCH_SECONDS (default 20) sets each wrk run's length;
BENCH_CONNECTIONS (default 64) the open connections; BENCH_ROUNDS (default 2) the turns of
pbiport and the floor; BENCH_POOLS (default "2 4") the pool sizes; BENCH_BASE_BIN_DIR adds a third
stack in the same turns with the pbiport binaries there (a build of an earlier commit: before and
after in one run); BENCH_NO_README=1 only prints.
"""
import datetime
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import harness  # noqa: E402
import completion  # noqa: E402
import readme_section  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
POOL_SIZES = tuple(int(x) for x in os.environ.get("BENCH_POOLS", "2 4").split())
BASE_BIN_DIR = os.environ.get("BENCH_BASE_BIN_DIR")
THREADS = 2
CONTRACT = os.path.join(ROOT, "tests", "integration", "fixtures", "orders.odcs.yaml")
FLOOR_SRC = os.path.join(HERE, "floor.c")
INPROC_SRC = os.path.join(HERE, "inproc.c")
INPROC_ITERATIONS = int(os.environ.get("BENCH_INPROC_ITERATIONS", "2000"))
BEGIN, END = "<!-- http:begin -->", "<!-- http:end -->"
# issue 18: pbiport / floor requests/s, and p99 at most the floor's + 1 ms
GOAL_FLOOR_RATIO, GOAL_P99_OVER_FLOOR_MS = 0.85, 1.0
# the earlier goals (against nginx's `return 200`)
GOAL_RATIO, GOAL_P99_MS = 0.5, 5.0
LOAD_BEFORE = os.getloadavg()

STATIC_SERVER = """# Benchmark baseline: nginx answering by itself, in the same nginx as pbiport.
server {
    listen 127.0.0.1:%d;
    access_log off;
    location = /static-ok { return 200 "ok\\n"; }
}
"""

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
# what is measured in turns: (key, label, path of the data product)
TARGETS = (("api", "`GET /api/data-products/{id}`", "/api/data-products/%s"),
           ("page", "page `GET /data-products/{id}`", "/data-products/%s"))


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
    """Pids of the FastCGI program's copies and of the nginx workers of a stack."""
    fcgi, web = [], []
    name = os.path.basename(stack.fcgi_bin).encode()
    for pid in stack.pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == name:
            fcgi.append(pid)
        elif argv[0].startswith(b"nginx: worker"):
            web.append(pid)
    return fcgi, web


def measured(run, stack):
    """run() with the CPU its requests cost in the pool and in nginx, in microseconds/request."""
    fcgi, web = roles(stack)
    app0, web0 = cpu_seconds(fcgi), cpu_seconds(web)
    res = run()
    res["app_us"] = (cpu_seconds(fcgi) - app0) / res["requests"] * 1e6
    res["web_us"] = (cpu_seconds(web) - web0) / res["requests"] * 1e6
    return res


def build_floor(work):
    """Compiles bench/http/floor.c; returns the binary's path."""
    out = os.path.join(work, "floor.fcgi")
    subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, FLOOR_SRC, "-lfcgi"],
                   check=True)
    return out


def build_inproc(work):
    """Compiles bench/http/inproc.c against build/libpbiport.a (the libraries as the Makefile
    links them); returns the binary's path."""
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", "lua5.4", "sqlite3", "jansson", "libcurl", "openssl",
                         "yaml-0.1", "libutf8proc", "libgvc", "libcgraph", "libpq"], capture_output=True, text=True,
                        check=True).stdout.split()
    gv = subprocess.run(["pkg-config", "--variable=libdir", "libgvc"], capture_output=True, text=True,
                        check=True).stdout.strip() + "/graphviz"
    out = os.path.join(work, "inproc")
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-I" + ROOT, "-o", out,
                    INPROC_SRC, os.path.join(ROOT, "build", "libpbiport.a")] + pc +
                   ["-lfcgi", "-L" + gv, "-Wl,-rpath," + gv, "-lgvplugin_dot_layout", "-lm", "-lpthread"], check=True)
    return out


def inproc(binary, stack, product, token):
    """bench/http/inproc.c on the stack's database: CPU microseconds per request in one process
    with hot caches (api_us, reads_us, page_us)."""
    out = subprocess.run([binary, product, token, str(INPROC_ITERATIONS)], env=stack.env(), capture_output=True,
                         text=True, timeout=600)
    completion.require(out.returncode == 0, "http", "inproc exited %d: %s" % (out.returncode, out.stderr[-300:]))
    res = {k: float(v) for k, v in (line.split("=", 1) for line in out.stdout.split())}
    completion.require(set(res) == {"api_us", "reads_us", "page_us"}, "http", "inproc printed %r" % out.stdout)
    return res


def cgi_answer(stack, path, token, out_path):
    """The bytes pbiport.fcgi writes for `GET path` (CGI header lines, blank line, body), from the
    binary itself in CGI mode on the stack's database: what the floor will answer. Returns the
    body's length."""
    env = dict(stack.env(), GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET", REQUEST_URI=path, PATH_INFO=path,
               SCRIPT_NAME="", QUERY_STRING="", HTTP_AUTHORIZATION="Bearer " + token,
               HTTP_X_REQUEST_ID="%032x" % 0x5eed, SERVER_PROTOCOL="HTTP/1.1")
    out = subprocess.run([stack.fcgi_bin], env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True).stdout
    head, sep, body = out.partition(b"\r\n\r\n")
    completion.require(sep and head.startswith(b"Status: 200 "), "http",
                       "pbiport.fcgi in CGI mode answered %r for %s" % (head[:40], path))
    with open(out_path, "wb") as f:
        f.write(out)
    return len(body)


def import_orders(stack):
    with open(CONTRACT) as f:
        status, _, doc = stack.import_contract(f.read(), token="alice")
    completion.require(status == 201, "http", "the import answered %d %r" % (status, doc))
    return doc["id"]


def turns(stacks):
    """ROUNDS rounds of every target on every stack in turn (A B A B). stacks: [(name, stack, token,
    product id)]. Returns {stack name: {target: [runs]}}."""
    runs = {name: {key: [] for key, _, _ in TARGETS} for name, _, _, _ in stacks}
    for rnd in range(ROUNDS):
        for key, _, path in TARGETS:
            for name, stack, token, product in stacks:
                print("bench/http:   round %d, %s, %s" % (rnd + 1, key, name), flush=True)
                url = stack.url + path % product
                auth = "Authorization: Bearer " + token
                runs[name][key].append(measured(lambda: wrk(url, headers=[auth]), stack))
    return runs


def run_pool(procs, work, floor_bin, inproc_bin):
    static_port = harness.free_port()
    rows = {}
    pb = harness.Stack("nginx", fcgi_procs=procs, nginx_extra=STATIC_SERVER % static_port)
    floor = base = None
    try:
        pb.start()
        product = import_orders(pb)
        token = pb.tokens["alice"]
        answers, sizes = {}, {}
        for key, _, path in TARGETS:
            answers[key] = os.path.join(work, "answer-%s" % key)
            sizes[key] = cgi_answer(pb, path % product, token, answers[key])
            status, _, body = pb.request("GET", path % product, token="alice")
            completion.require(status == 200 and len(body) == sizes[key], "http",
                               "%s through nginx: %d, %d bytes (CGI mode: %d)" % (key, status, len(body), sizes[key]))
        # the floor answers /api/... with the API's bytes and anything else with the page's
        floor = harness.Stack("nginx", fcgi_procs=procs, env={"BENCH_FLOOR_API": answers["api"],
                                                              "BENCH_FLOOR_PAGE": answers["page"]})
        floor.fcgi_bin = floor_bin
        floor.start()
        stacks = [("pbiport", pb, token, product), ("floor", floor, token, product)]
        if BASE_BIN_DIR:
            base = harness.Stack("nginx", fcgi_procs=procs)
            base.bin = os.path.join(BASE_BIN_DIR, "pbiport")
            base.fcgi_bin = os.path.join(BASE_BIN_DIR, "pbiport.fcgi")
            base.start()
            stacks.append(("before", base, base.tokens["alice"], import_orders(base)))
        rows["turns"] = turns(stacks)
        for s in (floor, base):
            if s:
                s.stop()
        app_url = pb.url + "/api/data-products/" + product
        auth = "Authorization: Bearer " + token
        # As many connections as processes: latency without queueing in front of the pool.
        rows["get_unqueued"] = wrk(app_url, headers=[auth], connections=procs)
        rows["static"] = measured(lambda: wrk("http://127.0.0.1:%d/static-ok" % static_port), pb)
        env = dict(os.environ, BENCH_TOKEN=token, BENCH_PRODUCT_ID=product, BENCH_CONTRACT=CONTRACT)
        rows["mixed"] = wrk(pb.url + "/", script=os.path.join(HERE, "mixed.lua"), env=env)
        with open(pb.fcgi_log, errors="replace") as f:
            rows["locked"] = f.read().count("database is locked")
        rows["sizes"] = sizes
        rows["inproc"] = inproc(inproc_bin, pb, product, token)
        return rows
    finally:
        for s in (pb, floor, base):
            if s:
                s.stop()


def median(runs, field):
    return statistics.median(r[field] for r in runs)


def table(results):
    lines = ["pbiport and its floor in turns, %d round(s) of %d s each per target (figures: median of the rounds; "
             "ratio: median of each round's pbiport / floor). CPU per request: user + system time of the pool's "
             "processes and of the nginx worker, from /proc, over the run, divided by its requests. Response "
             "bodies: %s." % (ROUNDS, SECONDS, ", ".join(
                 "%s %d bytes" % (label, next(iter(results.values()))["sizes"][key]) for key, label, _ in TARGETS)),
             "",
             "| request, %d connections | FastCGI procs | server | requests/s | p50 ms | p99 ms | CPU us/request "
             "in the pool | in nginx | ratio to the floor |" % CONNECTIONS,
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    verdicts = []
    for procs, rows in results.items():
        for key, label, _ in TARGETS:
            floor_runs = rows["turns"]["floor"][key]
            for name in rows["turns"]:
                runs = rows["turns"][name][key]
                ratio = statistics.median(a["rps"] / b["rps"] for a, b in zip(runs, floor_runs))
                lines.append("| %s | %d | %s | %.0f | %.2f | %.2f | %.1f | %.1f | %s |" % (
                    label, procs, name, median(runs, "rps"), median(runs, "p50"), median(runs, "p99"),
                    median(runs, "app_us"), median(runs, "web_us"), "%.2f" % ratio if name != "floor" else "1"))
            runs = rows["turns"]["pbiport"][key]
            ratio = statistics.median(a["rps"] / b["rps"] for a, b in zip(runs, floor_runs))
            p99, floor_p99 = median(runs, "p99"), median(floor_runs, "p99")
            verdicts.append("- %d procs, %s: pbiport / floor **%.2f** (goal >= %.2f: %s); p99 %.2f ms against the "
                            "floor's %.2f ms (goal <= floor + %.0f ms: %s)" % (
                                procs, label, ratio, GOAL_FLOOR_RATIO,
                                "met" if ratio >= GOAL_FLOOR_RATIO else "NOT met", p99, floor_p99,
                                GOAL_P99_OVER_FLOOR_MS,
                                "met" if p99 <= floor_p99 + GOAL_P99_OVER_FLOOR_MS else "NOT met"))
            verdicts.append("  " + budget_line(key, runs, floor_runs, rows["inproc"]))
    lines += [""] + verdicts + ["",
              "Other runs (pbiport only, %d s each):" % SECONDS, "",
              "| run | FastCGI procs | requests/s | p50 ms | p99 ms | non-2xx | socket errors |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for procs, rows in results.items():
        for name, label in (("static", "nginx `return 200`"), ("mixed", "mixed: 90% GET, 10% import"),
                            ("get_unqueued", "GET /api/data-products/{id}, %d connections" % procs)):
            r = rows[name]
            lines.append("| %s | %d | %.0f | %.2f | %.2f | %d | %d |" % (
                label, procs, r["rps"], r["p50"], r["p99"], r["non2xx"], r["errors"]))
    lines.append("")
    for procs, rows in results.items():
        get = rows["turns"]["pbiport"]["api"]
        ratio = statistics.median(r["rps"] for r in get) / rows["static"]["rps"]
        lines.append("- %d procs (earlier goals, against nginx's `return 200`, which spends %.0f us in nginx per "
                     "request): GET/static ratio %.2f (goal >= %.1f: %s), GET p99 %.2f ms (goal < %.0f ms: %s), "
                     "mixed non-2xx %d (goal 0: %s), `database is locked` in the log: %d" % (
                         procs, rows["static"]["web_us"], ratio, GOAL_RATIO, "met" if ratio >= GOAL_RATIO else "NOT met",
                         median(get, "p99"), GOAL_P99_MS, "met" if median(get, "p99") < GOAL_P99_MS else "NOT met",
                         rows["mixed"]["non2xx"], "met" if rows["mixed"]["non2xx"] == 0 else "NOT met",
                         rows["locked"]))
    return "\n".join(lines)


def budget_line(key, runs, floor_runs, ip):
    """What the ratio goal leaves pbiport, in CPU per request, against what its work costs.
    With wrk, nginx and the pool CPU-bound on the same cores, requests/s go as the inverse of the
    CPU a request costs all three: the goal allows pbiport's request (1 / 0.85 - 1) of the
    floor's more."""
    def total(rs):
        return median(rs, "app_us") + median(rs, "web_us") + median(rs, "wrk_us")
    floor_total, pb_total = total(floor_runs), total(runs)
    budget = floor_total * (1 / GOAL_FLOOR_RATIO - 1)
    extra = pb_total - floor_total
    work = ip["api_us"] if key == "api" else ip["page_us"]
    text = ("CPU per request, pool + nginx + wrk: floor %.0f us, pbiport %.0f us (%.0f us more: %.0f us more in the "
            "pool, %.0f us more in nginx, whose event loop wakes more often when its upstream is slower). The goal "
            "allows %.0f us more than the floor. In one process with hot caches (bench/http/inproc.c) pbiport's "
            "own work for this request is %.1f us" % (
                floor_total, pb_total, extra, median(runs, "app_us") - median(floor_runs, "app_us"),
                median(runs, "web_us") - median(floor_runs, "web_us"), budget, work))
    if key == "api":
        text += (" with the process's kept answer and identity (no statement while nothing was committed to "
                 "the database; the token's hash is checked); without a kept answer its database reads alone "
                 "(read transaction, the kept identity, one statement for the product, its ports and whether it "
                 "consumes anything) are %.1f us" % ip["reads_us"])
    return text + "."


def commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def section(body):
    cores = os.cpu_count()
    return "\n".join([
        BEGIN,
        "## http",
        "",
        "Reproduce: `bench/http/run.sh` (BENCH_SECONDS=%d per run, BENCH_ROUNDS=%d, wrk -t%d -c%d --latency on "
        "loopback)." % (SECONDS, ROUNDS, THREADS, CONNECTIONS),
        "nginx (1 worker, deploy/nginx/ templates as shipped) -> unix socket -> deploy/systemd/pbiport-pool under "
        "spawn-fcgi running pbiport.fcgi; SQLite in WAL mode on local disk. The floor: the same nginx "
        "configuration and pool script running bench/http/floor.c (libfcgi's accept loop writing the bytes "
        "pbiport.fcgi answers the same request with, captured once in CGI mode). wrk, nginx and the pool share "
        "the same %d cores. The mixed run (bench/http/mixed.lua) sends every tenth request as an import of "
        "tests/integration/fixtures/orders.odcs.yaml under one of 50 contract ids." % cores,
        "",
        "Machine: %d cores, %s; commit %s; run on %s UTC; load average before the run %s, after %s (other work "
        "on the machine competes with wrk, nginx and the pool for the same cores)." % (
            cores, platform.platform(terse=True), commit(),
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            " / ".join("%.2f" % x for x in LOAD_BEFORE), " / ".join("%.2f" % x for x in os.getloadavg())),
        "",
        body,
        END,
    ])


def check_completed(procs, rows):
    """Every run served its requests: a rate made of error answers measures other work. The mixed
    run's non-2xx answers are one of its goals and are reported, up to 1% of its requests."""
    named = [(name, rows[name]) for name in ("get_unqueued", "static", "mixed")]
    for who, targets in rows["turns"].items():
        for key, runs in targets.items():
            named += [("%s %s round %d" % (who, key, i + 1), r) for i, r in enumerate(runs)]
    for name, r in named:
        what = "%d procs, %s run" % (procs, name)
        completion.require(r["requests"] > 0, "http", "%s: no request was answered" % what)
        completion.require_equal(r["errors"], 0, "http", "%s: socket errors" % what)
        if name != "mixed":
            completion.require_equal(r["non2xx"], 0, "http", "%s: answers other than 2xx" % what)
    mixed = rows["mixed"]
    completion.require(mixed["non2xx"] <= mixed["requests"] // 100, "http",
                       "%d procs, mixed run: %d of %d requests answered other than 2xx"
                       % (procs, mixed["non2xx"], mixed["requests"]))


def main():
    results = {}
    with tempfile.TemporaryDirectory(prefix="pbiport-bench-http-") as work:
        floor_bin = build_floor(work)
        inproc_bin = build_inproc(work)
        for procs in POOL_SIZES:
            print("bench/http: %d FastCGI processes, %d s per run" % (procs, SECONDS), flush=True)
            results[procs] = run_pool(procs, work, floor_bin, inproc_bin)
            check_completed(procs, results[procs])
    body = table(results)
    text = section(body)
    print(text)
    if not os.environ.get("BENCH_NO_README"):
        readme_section.write("http", text)
        print("bench/http: results written to bench/README.md")


if __name__ == "__main__":
    main()
