"""Jobs per second with 2 workers on SQLite and on PostgreSQL, side by side in one run (issue 17).

Two kinds of job, each on each engine in turns (A B A B, BENCH_ROUNDS turns, a new stack each):
- publish: BENCH_JOBS (default 100) publishes of the `analytics` port of
  tests/fixtures/publish/contoso.odcs.yaml with an existing connection;
- push: BENCH_PUSH_JOBS (default 40) `push_rows` jobs, each BENCH_PUSH_ROWS (default 10001) rows
  into a push dataset of its own (over 10,000 rows, so the request queues a job: two POST rows).
The jobs are queued through nginx first, then BENCH_WORKERS (default 2) `pbiport worker` processes
run them against the emulator (no added latency). jobs/s = jobs / (first worker start -> the last
job's finished_at). CPU per job by role over the same window: the workers (their threads
included), the PostgreSQL server processes (postmaster and backends alive at the end), the
emulator. Then, on PostgreSQL only and untimed, BENCH_COUNT_JOBS (default 20) jobs of each kind
again with every statement logged (log_min_duration_statement = 0): the statements the workers
send per job, each one a round trip to the server.

BENCH_BASE_BIN=path/to/pbiport: every turn also runs that binary (an older commit's build) on both
engines, for before/after in the same run. Writes the "db-jobs" section of bench/README.md
(BENCH_NO_README=1 only prints). Python 3 standard library only.
"""
import datetime
import importlib.util
import itertools
import json
import os
import platform
import signal
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
_spec = importlib.util.spec_from_file_location("bench_db_get", os.path.join(HERE, "bench.py"))
dbget = importlib.util.module_from_spec(_spec)   # the GET part: postgres_pids, load, http (commit)
_spec.loader.exec_module(dbget)                   # puts tests/integration, tests/emulator, bench on sys.path
import harness  # noqa: E402
import emutest  # noqa: E402
import testdb  # noqa: E402
import completion  # noqa: E402
import readme_section  # noqa: E402

http = dbget.http
publish = dbget.load("bench_publish", "bench/publish/run.py")   # connect_alice, cpu_s, machine_cpu

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
POOL = int(os.environ.get("BENCH_POOL", "2"))
JOBS = int(os.environ.get("BENCH_JOBS", "100"))
PUSH_JOBS = int(os.environ.get("BENCH_PUSH_JOBS", "40"))
PUSH_ROWS = int(os.environ.get("BENCH_PUSH_ROWS", "10001"))
COUNT_JOBS = int(os.environ.get("BENCH_COUNT_JOBS", "20"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
BASE_BIN = os.environ.get("BENCH_BASE_BIN")
WORKSPACE = "a0000000-0000-4000-8000-000000000001"
CONNECTION = "c0000000-0000-4000-8000-000000000001"
JOBS_TIMEOUT_S = 1800
POLL_S = 0.25          # the end is read from finished_at: polling often would only cost CPU
ENGINES = ("sqlite", "postgresql")
KINDS = ("publish", "push")
JOB_KIND = {"publish": "publish", "push": "push_rows"}   # the jobs table's name of each
LOAD_BEFORE = os.getloadavg()
SEQ = itertools.count(1)
with open(os.path.join(ROOT, "tests", "fixtures", "tenants", "demo.json")) as f:
    DEMO = json.load(f)["tenants"][0]
with open(os.path.join(ROOT, "tests", "fixtures", "publish", "contoso.odcs.yaml")) as f:
    CONTRACT = f.read()
PUSH_SP = harness.app_credentials(DEMO, 2)   # the push service principal: Contributor in WORKSPACE
JOB_ENV = dict(APPLICATION_POWERBI_WEB_ENABLED="true", APPLICATION_ENCRYPTION_KEYS="77" * 32,
               APPLICATION_SECURITY_REMEMBERME_KEY="88" * 32)


def cpu_of(pids):
    """{pid: CPU seconds so far} of the pids still running."""
    out = {}
    for pid in pids:
        try:
            out[pid] = publish.cpu_s(pid)
        except (OSError, IndexError, ValueError):
            pass
    return out


def new_stack(engine, pg, bin_path, env, database=None, same_identities_as=None):
    """A started nginx stack on engine (a new database unless database names one) running bin_path."""
    if engine == "postgresql" and database is None:
        database = pg.create_database("bench_jobs_%d" % next(SEQ))
    s = harness.Stack("nginx", fcgi_procs=POOL, env=env, database=database, same_identities_as=same_identities_as)
    s.bin = bin_path
    s.fcgi_bin = os.path.join(os.path.dirname(bin_path), "pbiport.fcgi")
    return s.start()


def reset_emulator(emu, latency_ms=0):
    """The same start for every run: the demo tenant as loaded (no models of an earlier run to list)."""
    emu.control("POST", "reset")
    emu.control("POST", "load", harness.tenants_fixture())
    emu.control("POST", "config", {"latency_ms": latency_ms, "lro_polls": 1, "retry_after_s": 0})


def queue_publishes(stacks, emu, n, tag):
    """n publish jobs, submitted in turn through each of stacks (one database)."""
    publish.connect_alice(stacks[0], emu, DEMO)
    status, _, doc = stacks[0].import_contract(CONTRACT, token="alice")
    completion.require(status == 201, "db-jobs", "the contract import answered %d" % status)
    port = [p["id"] for p in doc["output_ports"] if p["name"] == "analytics"][0]
    for i in range(n):
        status, _, doc = stacks[i % len(stacks)].send_json(
            "POST", "/api/output-ports/%s/powerbi-publish" % port, token="alice",
            body={"workspace_id": WORKSPACE, "name": "bench %s %d" % (tag, i), "connection_id": CONNECTION})
        completion.require(status == 202, "db-jobs", "publish %d answered %d %r" % (i, status, doc))


def queue_pushes(stacks, n, tag):
    """n push_rows jobs of PUSH_ROWS rows, each into a dataset of its own, submitted in turn through
    each of stacks."""
    s = stacks[0]
    s.cli("user", "add", "dave", "--org", "acme", "--role", "member", "--team", "data")
    status, _, conn = s.send_json("POST", "/api/push-connections", token="alice", body={
        "name": "bench", "team": "data", "tenant_id": DEMO["id"], "client_id": PUSH_SP[0],
        "client_secret": PUSH_SP[1]})
    completion.require(status == 201, "db-jobs", "the push connection answered %d %r" % (status, conn))
    body = "id,amount\n" + "".join("%d,%d.5\n" % (i, i) for i in range(PUSH_ROWS))
    for i in range(n):
        host = stacks[i % len(stacks)]
        status, _, ds = host.send_json("POST", "/api/push-datasets", token="alice", body={
            "connection_id": conn["id"], "workspace_id": WORKSPACE, "name": "bench %s %d" % (tag, i),
            "tables": [{"name": "T", "columns": [{"name": "id", "dataType": "Int64"},
                                                 {"name": "amount", "dataType": "Double"}]}]})
        completion.require(status == 201, "db-jobs", "push dataset %d answered %d %r" % (i, status, ds))
        status, _, doc = host.json("POST", "/api/push-datasets/%s/tables/T/rows" % ds["id"], body=body,
                                   headers={"Content-Type": "text/csv"}, token="alice")
        completion.require(status == 202, "db-jobs", "push rows %d answered %d %r" % (i, status, doc))


def job_states(stack, kind):
    with stack.db() as db:
        return dict(db.execute("SELECT state, count(*) FROM jobs WHERE kind = ? GROUP BY state", (kind,)).fetchall())


def last_finished(stack, kind):
    """Epoch seconds of the last job's end (finished_at, milliseconds)."""
    with stack.db() as db:
        text = db.execute("SELECT max(finished_at) FROM jobs WHERE kind = ?", (kind,)).fetchone()[0]
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def run_workers(stacks, kind, n, workers_per_stack, emu, pg):
    """Starts workers_per_stack workers on each stack and waits for the n queued jobs of kind:
    {"wall", "jobs", "worker_s", "pg_s", "emu_s", "busy_s"} (CPU seconds over the window)."""
    procs = []
    pg_cpu0 = cpu_of(dbget.postgres_pids(pg)) if pg else {}
    emu0 = publish.cpu_s(emu.proc.pid)
    busy0, _ = publish.machine_cpu()
    start = time.time()
    try:
        for si, s in enumerate(stacks):
            for w in range(workers_per_stack):
                procs.append(subprocess.Popen(
                    [s.bin, "worker", "--poll-ms", "20", "--id", "bench-%d-%d" % (si, w)], env=s.env(),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=open(s.path("logs", "worker-%d.log" % w), "a")))
        while True:
            states = job_states(stacks[0], JOB_KIND[kind])
            if states.get("succeeded", 0) + states.get("failed", 0) >= n:
                break
            completion.require(time.time() - start < JOBS_TIMEOUT_S, "db-jobs", "jobs not ended: %r" % states)
            time.sleep(POLL_S)
        worker_s = sum(publish.cpu_s(p.pid) for p in procs)
        emu_s = publish.cpu_s(emu.proc.pid) - emu0
        busy1, _ = publish.machine_cpu()
        pg_s = 0.0
        if pg:
            pg_cpu1 = cpu_of(dbget.postgres_pids(pg))
            pg_s = sum(v - pg_cpu0.get(pid, 0.0) for pid, v in pg_cpu1.items())
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait()
    completion.require(states.get("failed", 0) == 0, "db-jobs", "%s: %d jobs failed" % (kind, states.get("failed", 0)))
    wall = last_finished(stacks[0], JOB_KIND[kind]) - start
    return {"wall": wall, "jobs": n, "worker_s": worker_s, "pg_s": pg_s, "emu_s": emu_s, "busy_s": busy1 - busy0}


def one_run(pg, emu, engine, kind, bin_path, n):
    """n jobs of kind on a new one-host stack on engine running bin_path."""
    reset_emulator(emu)
    stack = new_stack(engine, pg, bin_path, dict(harness.emulator_env(emu), **JOB_ENV))
    try:
        tag = "%s %s" % (engine, os.path.basename(os.path.dirname(os.path.dirname(bin_path))))
        if kind == "publish":
            queue_publishes([stack], emu, n, tag)
        else:
            queue_pushes([stack], n, tag)
        print("bench/db-jobs: %d %s jobs on %s (%s)" % (n, kind, engine, bin_path), flush=True)
        return run_workers([stack], kind, n, WORKERS, emu, pg if engine == "postgresql" else None)
    finally:
        stack.stop()


def pg_log_path(pg):
    return os.path.join(pg.dir, "postgres.log")


def set_statement_log(pg, on):
    testdb.psql(pg.conninfo, "ALTER SYSTEM SET log_min_duration_statement = %d" % (0 if on else -1))
    testdb.psql(pg.conninfo, "ALTER SYSTEM SET log_line_prefix = '%s'" % ("%a|%n|" if on else "%m [%p] "))
    testdb.psql(pg.conninfo, "SELECT pg_reload_conf()")
    time.sleep(0.5)


def finished_times(stack, kind):
    """Epoch seconds of each job's end, in order."""
    with stack.db() as db:
        rows = db.execute("SELECT finished_at FROM jobs WHERE kind = ? ORDER BY finished_at", (kind,)).fetchall()
    return [datetime.datetime.strptime(r[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() for r in rows]


def count_statements(pg, emu, kind, bin_path):
    """Statements pbiport's processes sent per job while COUNT_JOBS jobs of kind ran (PostgreSQL):
    those logged between the first job's end and the last's, divided by the jobs that ended in
    between (the workers' start-up and their idle polls after the last job are left out)."""
    reset_emulator(emu)
    stack = new_stack("postgresql", pg, bin_path, dict(harness.emulator_env(emu), **JOB_ENV))
    try:
        if kind == "publish":
            queue_publishes([stack], emu, COUNT_JOBS, "count")
        else:
            queue_pushes([stack], COUNT_JOBS, "count")
        set_statement_log(pg, True)
        offset = os.path.getsize(pg_log_path(pg))
        try:
            run_workers([stack], kind, COUNT_JOBS, WORKERS, emu, None)
        finally:
            set_statement_log(pg, False)
        ends = finished_times(stack, JOB_KIND[kind])
        n = 0
        with open(pg_log_path(pg), errors="replace") as f:
            f.seek(offset)
            for line in f:
                app, _, rest = line.partition("|")
                if app != "pbiport" or not ("ms  execute " in rest or "ms  statement: " in rest):
                    continue
                t = float(rest.partition("|")[0])   # %n: epoch seconds with milliseconds
                n += ends[0] < t <= ends[-1]
        return n / (len(ends) - 1)
    finally:
        stack.stop()


IDLE_S = 5


def idle_statements(pg, emu, bin_path):
    """Statements per second each idle worker sends (the default --poll-ms, an empty queue), over
    IDLE_S seconds after a second of start-up (PostgreSQL)."""
    stack = new_stack("postgresql", pg, bin_path, dict(harness.emulator_env(emu), **JOB_ENV))
    procs = []
    try:
        procs = [subprocess.Popen([bin_path, "worker", "--id", "idle-%d" % w], env=stack.env(),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for w in range(WORKERS)]
        time.sleep(1.0)
        set_statement_log(pg, True)
        offset = os.path.getsize(pg_log_path(pg))
        time.sleep(IDLE_S)
        end = os.path.getsize(pg_log_path(pg))
        set_statement_log(pg, False)
        with open(pg_log_path(pg), errors="replace") as f:
            f.seek(offset)
            text = f.read(end - offset)
        n = sum(1 for line in text.splitlines()
                if line.startswith("pbiport|") and ("ms  execute " in line or "ms  statement: " in line))
        return n / IDLE_S / WORKERS
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait()
        stack.stop()


def round_trip_ms(pg):
    """The time of one round trip to the cluster with nothing else in it: pgbench running `SELECT 1`
    on WORKERS connections for 2 s (latency average), or None without pgbench."""
    script = os.path.join(pg.dir, "select1.sql")
    with open(script, "w") as f:
        f.write("SELECT 1;\n")
    try:
        out = subprocess.run(["pgbench", "-n", "-f", script, "-T", "2", "-c", str(WORKERS), pg.conninfo],
                             capture_output=True, text=True, timeout=60).stdout
    except OSError:
        return None
    for line in out.splitlines():
        if line.startswith("latency average = "):
            return float(line.split()[3])
    return None


def bin_label(bin_path):
    return "base" if bin_path == BASE_BIN else "this"


def main():
    bins = [harness.pbiport_bin()] + ([os.path.abspath(BASE_BIN)] if BASE_BIN else [])
    runs = {}   # (kind, engine, bin) -> [run]
    counts = {}
    rtts = []
    pg = testdb.PgServer.start()
    try:
        emu = emutest.Emulator(fixture="demo.json")
        try:
            for rnd in range(ROUNDS):
                for kind in KINDS:
                    for b in bins:
                        for engine in ENGINES:
                            r = one_run(pg, emu, engine, kind, b, JOBS if kind == "publish" else PUSH_JOBS)
                            runs.setdefault((kind, engine, b), []).append(r)
                            print("  %.2f jobs/s, CPU ms/job worker %.1f PostgreSQL %.1f emulator %.1f" % (
                                r["jobs"] / r["wall"], r["worker_s"] / r["jobs"] * 1e3, r["pg_s"] / r["jobs"] * 1e3,
                                r["emu_s"] / r["jobs"] * 1e3), flush=True)
                rtt = round_trip_ms(pg)
                if rtt is not None:
                    rtts.append(rtt)
            if COUNT_JOBS:
                for kind in KINDS:
                    for b in bins:
                        counts[(kind, b)] = count_statements(pg, emu, kind, b)
                for b in bins:
                    counts[("idle", b)] = idle_statements(pg, emu, b)
        finally:
            emu.stop()
    finally:
        pg.stop()
    body = section(runs, counts, bins, rtts)
    print(body)
    if not os.environ.get("BENCH_NO_README"):
        readme_section.write("db-jobs", body)


def med(rs, key):
    return statistics.median(r[key] for r in rs)


def jobs_per_s(rs):
    return statistics.median(r["jobs"] / r["wall"] for r in rs)


def section(runs, counts, bins, rtts):
    rows = []
    for kind in KINDS:
        for b in bins:
            for engine in ENGINES:
                rs = runs[(kind, engine, b)]
                n = rs[0]["jobs"]
                stmts = counts.get((kind, b)) if engine == "postgresql" else None
                rows.append("| %s | %s | %s | %.2f | %.1f / %.1f / %.1f | %.2f | %s |" % (
                    kind, engine, bin_label(b), jobs_per_s(rs), med(rs, "worker_s") / n * 1e3,
                    med(rs, "pg_s") / n * 1e3, med(rs, "emu_s") / n * 1e3, med(rs, "busy_s") / med(rs, "wall"),
                    "%.1f" % stmts if stmts is not None else "-"))
    ratios = []
    for kind in KINDS:
        for b in bins:
            ratio = jobs_per_s(runs[(kind, "postgresql", b)]) / jobs_per_s(runs[(kind, "sqlite", b)])
            ratios.append("%s %.2fx (%s)" % (kind, ratio, bin_label(b)))
    idle = ", ".join("%.1f (%s)" % (counts[("idle", b)], bin_label(b)) for b in bins if ("idle", b) in counts)
    base = ("; `base` rows: BENCH_BASE_BIN, the build of commit %s, in the same turns" % os.environ.get(
        "BENCH_BASE_COMMIT", "?")) if BASE_BIN else ""
    return "\n".join([
        "<!-- db-jobs:begin -->",
        "### db: jobs per second",
        "",
        "Reproduce: `bench/db/run.sh jobs` (BENCH_ROUNDS=%d turns, BENCH_WORKERS=%d, BENCH_JOBS=%d publishes, "
        "BENCH_PUSH_JOBS=%d pushes of BENCH_PUSH_ROWS=%d rows, BENCH_COUNT_JOBS=%d)." % (
            ROUNDS, WORKERS, JOBS, PUSH_JOBS, PUSH_ROWS, COUNT_JOBS),
        "Jobs queued through nginx first, then run by %d `pbiport worker` processes against the emulator "
        "(no added latency), on SQLite and on PostgreSQL (the throwaway cluster of the GET rows) in turns, a new "
        "stack each; publish: the `analytics` port of tests/fixtures/publish/contoso.odcs.yaml with an existing "
        "connection; push: %d rows (two POST rows) into a push dataset of its own per job. jobs/s = jobs / "
        "(first worker start -> last finished_at), the median of the turns%s." % (WORKERS, PUSH_ROWS, base),
        "",
        "Machine: %d cores, %s; commit %s; run on %s UTC; load average before %s, after %s." % (
            os.cpu_count(), platform.platform(terse=True), http.commit(), time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            " / ".join("%.2f" % x for x in LOAD_BEFORE), " / ".join("%.2f" % x for x in os.getloadavg())),
        "",
        "| kind | engine | build | jobs/s (%d workers) | CPU ms/job: workers / PostgreSQL / emulator | "
        "machine cores busy | statements/job (PostgreSQL) |" % WORKERS,
        "|---|---|---|---:|---:|---:|---:|",
    ] + rows + [
        "",
        "PostgreSQL / SQLite jobs/s: %s (goal: not slower, >= 1.0x). One round trip to the cluster alone "
        "(pgbench `SELECT 1` on %d connections after each turn, median): %s ms." % (
            ", ".join(ratios), WORKERS, "%.3f" % statistics.median(rtts) if rtts else "?"),
        "An idle worker (empty queue, the default --poll-ms of 1000) sends %s statements a second to "
        "PostgreSQL." % (idle or "?"),
        "<!-- db-jobs:end -->",
        "",
    ])


if __name__ == "__main__":
    main()
