"""Publish benchmark: BENCH_JOBS publish jobs (default 200) queued through nginx, then run by
BENCH_WORKERS `pbiport worker` processes (default 2) against the emulator, once per latency in
BENCH_LATENCIES (default "0 50" ms added by the emulator to every call), BENCH_ROUNDS times each
(default 2). Reports jobs/s (first worker start to last job finished), pbiport's own CPU per job
(user + system time of the worker processes, from wait4) and the emulator's CPU per job over the
same interval (/proc): the emulator is one Python process, so it cannot run more than
1 / (its CPU per job) jobs a second; that is its own limit, measured in the same run.
BENCH_BASE_BIN_DIR (a folder holding an earlier build's `pbiport`) runs the same jobs with those
workers in turns with this build's, for a before/after in one run. Writes the "publish" section
of bench/README.md. Python 3 standard library only."""
import json
import os
import platform
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import harness  # noqa: E402
import emutest  # noqa: E402
import completion  # noqa: E402
import readme_section  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "200"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
LATENCIES = [int(x) for x in os.environ.get("BENCH_LATENCIES", "0 50").split()]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
BASE_BIN_DIR = os.environ.get("BENCH_BASE_BIN_DIR")
CLK_TCK = os.sysconf("SC_CLK_TCK")
WORKSPACE = "a0000000-0000-4000-8000-000000000001"
CONNECTION = "c0000000-0000-4000-8000-000000000001"
TIMEOUT_S = 3600


def connect_alice(stack, emu, demo):
    app = demo["apps"][0]
    status, _, doc = stack.json("PUT", "/api/settings/powerbi", token="alice",
                                headers={"Content-Type": "application/json"},
                                body=json.dumps({"mode": "custom", "tenant_id": demo["id"],
                                                 "client_id": app["client_id"],
                                                 "client_secret": app["client_secret"]}))
    assert status == 200, doc
    status, headers, _ = stack.request("GET", "/powerbi/connect?return_to=/x", token="alice")
    r = emu.call("GET", headers["location"] + "&login_hint=alice@contoso.example")
    cb = r.header("Location")
    status, _, body = stack.request("GET", cb[cb.index("/powerbi/callback"):], token="alice")
    assert status == 302, body


def cpu_s(pid):
    """User + system CPU seconds of a running process so far (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu():
    """(busy, idle) CPU seconds of the whole machine so far, all cores (/proc/stat; iowait counts
    as idle)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / CLK_TCK, idle / CLK_TCK


def one_run(stack, emu, demo, port, latency, bin_path, tag):
    # Every run starts from the emulator's fixture (alice connects again): each job lists the
    # workspace's models and datasets, so runs into a growing workspace would cost more and more.
    emu.control("POST", "reset")
    connect_alice(stack, emu, demo)
    emu.control("POST", "config", {"latency_ms": latency, "lro_polls": 1, "retry_after_s": 0})
    ids = []
    for i in range(JOBS):
        status, _, doc = stack.json("POST", "/api/output-ports/%s/powerbi-publish" % port, token="alice",
                                    headers={"Content-Type": "application/json"},
                                    body=json.dumps({"workspace_id": WORKSPACE,
                                                     "name": "bench %dms %s %d" % (latency, tag, i),
                                                     "connection_id": CONNECTION}))
        assert status == 202, doc
        ids.append(doc["job_id"])
    emu_cpu0 = cpu_s(emu.proc.pid)
    busy0, idle0 = machine_cpu()
    start = time.monotonic()
    procs = [subprocess.Popen([bin_path, "worker", "--poll-ms", "20", "--id", "bench-%d" % w], env=stack.env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(stack.path("logs", "worker-%d.log" % w), "a"))
             for w in range(WORKERS)]
    db = stack.path("db", "pbiport.db")
    import sqlite3
    q = "SELECT state, count(*) FROM jobs WHERE kind = 'publish' AND id IN (%s) GROUP BY state" % \
        ",".join("?" * len(ids))
    while True:
        with sqlite3.connect(db) as c:
            states = dict(c.execute(q, ids).fetchall())
        if states.get("succeeded", 0) + states.get("failed", 0) == len(ids):
            break
        if time.monotonic() - start > TIMEOUT_S:
            raise RuntimeError("jobs did not finish: %r" % states)
        time.sleep(0.02)
    wall = time.monotonic() - start
    emu_cpu = cpu_s(emu.proc.pid) - emu_cpu0
    busy1, idle1 = machine_cpu()
    cpu = 0.0
    for p in procs:
        p.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(p.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
    return {"latency": latency, "wall": wall, "ok": states.get("succeeded", 0), "failed": states.get("failed", 0),
            "cpu": cpu, "emu_cpu": emu_cpu, "target": tag, "machine_busy": busy1 - busy0,
            "machine_idle": idle1 - idle0}


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def commit():
    r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE, text=True)
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":!bench/README.md"],
                           stdout=subprocess.PIPE, text=True).stdout.strip()
    return r.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def main():
    with open(os.path.join(ROOT, "tests", "fixtures", "tenants", "demo.json")) as f:
        demo = json.load(f)["tenants"][0]
    with open(os.path.join(ROOT, "tests", "fixtures", "publish", "contoso.odcs.yaml")) as f:
        contract = f.read()
    targets = [("pbiport", None)]
    if BASE_BIN_DIR:
        targets.append(("before", os.path.join(BASE_BIN_DIR, "pbiport")))
    load_before = os.getloadavg()
    emu = emutest.Emulator(fixture="demo.json")
    env = dict(harness.emulator_env(emu), APPLICATION_POWERBI_WEB_ENABLED="true",
               APPLICATION_ENCRYPTION_KEYS="77" * 32, APPLICATION_SECURITY_REMEMBERME_KEY="88" * 32)
    results = []
    try:
        with harness.Stack("nginx", fcgi_procs=2, env=env) as stack:
            connect_alice(stack, emu, demo)
            status, _, doc = stack.import_contract(contract, token="alice")
            assert status == 201, doc
            port = [p["id"] for p in doc["output_ports"] if p["name"] == "analytics"][0]
            for latency in LATENCIES:
                for rnd in range(ROUNDS):
                    # A B, then B A: neither build always runs second on the loaded machine
                    for tag, bin_path in (targets if rnd % 2 == 0 else targets[::-1]):
                        r = one_run(stack, emu, demo, port, latency, bin_path or stack.bin, "%s %d" % (tag, rnd))
                        r["target"] = tag
                        # a failed job did less work than a published model: its CPU and time do not count
                        completion.require(r["ok"] == JOBS and r["failed"] == 0, "publish",
                                           "%s at %d ms latency: %d of %d jobs succeeded, %d failed"
                                           % (tag, latency, r["ok"], JOBS, r["failed"]))
                        results.append(r)
                        print("%s, latency %d ms: %d jobs in %.1f s, %.2f jobs/s, CPU %.1f ms/job, emulator %.1f ms/job"
                              % (tag, latency, JOBS, r["wall"], JOBS / r["wall"], 1000 * r["cpu"] / JOBS,
                                 1000 * r["emu_cpu"] / JOBS))
    finally:
        emu.stop()
    load_after = os.getloadavg()
    rows, goals = [], []
    for latency in LATENCIES:
        for tag, _ in targets:
            rs = [r for r in results if r["latency"] == latency and r["target"] == tag]
            jps = median([JOBS / r["wall"] for r in rs])
            cpu_ms = median([1000 * r["cpu"] / JOBS for r in rs])
            emu_ms = median([1000 * r["emu_cpu"] / JOBS for r in rs])
            ratio = median([(JOBS / r["wall"]) / (JOBS / r["emu_cpu"]) for r in rs])
            # what the run's own CPU figures allow: each worker waits for every reply, so a job
            # takes a worker at least (its CPU + the emulator's CPU) per job; and the machine
            # (every process on it, other work included) has os.cpu_count() cores in all
            wait_bound = median([WORKERS * r["emu_cpu"] / (r["cpu"] + r["emu_cpu"]) for r in rs])
            machine_ms = median([1000 * r["machine_busy"] / JOBS for r in rs])
            idle = median([r["machine_idle"] / (r["machine_idle"] + r["machine_busy"]) for r in rs])
            core_bound = median([os.cpu_count() * r["emu_cpu"] / r["machine_busy"] for r in rs])
            rows.append("| %d ms | %s | %d x %d | %.1f | %.2f | %.1f ms | %.1f ms | %.2f | %.2f | %.2f | %.1f ms "
                        "| %.0f%% | %.2f |" % (
                            latency, tag, len(rs), JOBS, median([r["wall"] for r in rs]), jps, cpu_ms, emu_ms,
                            1000 / emu_ms, ratio, min(wait_bound, 1.0), machine_ms, 100 * idle,
                            min(core_bound, 1.0)))
            if latency == 0 and tag == "pbiport":
                goals.append("- pbiport CPU per publish job at 0 ms latency: **%.1f ms** (goal <= 10 ms: %s)"
                             % (cpu_ms, "met" if cpu_ms <= 10 else "NOT met"))
                goals.append("- jobs/s with %d workers against the emulator's own limit (1 / its CPU per job, "
                             "same runs): **%.2f** (goal >= 0.90: %s)"
                             % (WORKERS, ratio, "met" if ratio >= 0.9 else "NOT met"))
    lines = [
        "<!-- publish:begin -->",
        "## publish",
        "",
        "Reproduce: `bench/publish/run.sh` (BENCH_JOBS=%d, BENCH_WORKERS=%d, BENCH_LATENCIES=\"%s\", "
        "BENCH_ROUNDS=%d%s). "
        "%d publish jobs of the `analytics` port of tests/fixtures/publish/contoso.odcs.yaml (2 tables) are queued "
        "through nginx, each under its own model name and with an existing matching connection; then %d "
        "`pbiport worker` processes run them against the emulator (demo tenant; one poll per long-running "
        "operation, no Retry-After wait; the latency is added by the emulator to every call). Each job renders "
        "and parses back the TMDL, lists connections, lists the workspace's models (every run starts from the "
        "emulator's fixture, so each run's list grows from 0 to %d models), "
        "creates the model, lists and binds its data source, reads the model's dataset for the web URL and "
        "writes the records. jobs/s = jobs / (first worker start -> last job finished); CPU = user + system time of the "
        "worker processes (wait4), divided by the jobs; the emulator's CPU over the same interval from /proc. "
        "The emulator is one Python process (one interpreter lock, one state lock): it cannot answer more than "
        "1 / (its CPU per job) jobs a second, its own limit, measured in the same runs; the ratio is jobs/s "
        "against that limit (median of the rounds). The last four columns bound that ratio from the same runs' "
        "figures: \"waiting bound\" = workers x emulator CPU / (workers' CPU + emulator CPU) per job (each worker "
        "waits for every reply, so it finishes at most one job per its own CPU plus the emulator's); \"machine "
        "CPU per job\" = busy time of all cores over the interval (/proc/stat: every process, the other work on "
        "the shared machine included) per job, \"idle\" the cores' idle share, and \"cores bound\" = cores x "
        "emulator CPU / machine CPU per job." % (
            JOBS, WORKERS, " ".join(map(str, LATENCIES)), ROUNDS,
            ", BENCH_BASE_BIN_DIR: the \"before\" rows, in turns with the others" if BASE_BIN_DIR else "",
            JOBS, WORKERS, JOBS),
        "",
        "Machine: %d cores, %s, Python %s; commit %s; run on %s UTC; load average before the run "
        "%.2f / %.2f / %.2f, after %.2f / %.2f / %.2f." % (
            os.cpu_count(), platform.platform(), platform.python_version(), commit(),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime()), *load_before, *load_after),
        "",
        "| emulator latency | workers' build | runs x jobs | wall s | jobs/s | pbiport CPU per job "
        "| emulator CPU per job | emulator limit jobs/s | jobs/s / limit | waiting bound | machine CPU per job "
        "| idle | cores bound |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ] + rows + [""] + goals + [
        "- At 50 ms latency each job waits on its calls one after another: 2 workers cannot keep the "
        "emulator busy, so that row's ratio measures the latency, not pbiport.",
        "<!-- publish:end -->", ""]
    section = "\n".join(lines)
    readme_section.write("publish", section)
    print(section)


if __name__ == "__main__":
    main()
