"""Database benchmark: the same host on SQLite and on PostgreSQL, side by side in one run (issue 17).

- GET throughput and p99 through nginx: wrk on `GET /api/data-products/{id}` (bench/http's wrk
  and import), BENCH_CONNECTIONS (default 64) connections, a pool of BENCH_POOL (default 2)
  FastCGI processes, the two engines in turns (A B A B, BENCH_ROUNDS turns of BENCH_SECONDS).
- Jobs per second with 2 workers: bench/db/jobs.py (its own section, "db-jobs").

PostgreSQL is a throwaway cluster on a unix socket on the same machine (tests/tools/pg_cluster.py:
fsync off, as for tests). Writes the "db" section of bench/README.md; BENCH_NO_README=1 only prints.
Python 3 standard library only; needs wrk, nginx, spawn-fcgi and PostgreSQL's server binaries.
"""
import importlib.util
import itertools
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
for sub in (("tests", "integration"), ("tests", "emulator"), ("bench",)):
    sys.path.insert(0, os.path.join(ROOT, *sub))
import harness  # noqa: E402
import testdb  # noqa: E402
import completion  # noqa: E402
import readme_section  # noqa: E402


def load(name, rel):
    """A sibling benchmark's script as a module (its functions, not its main)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


http = load("bench_http", "bench/http/bench.py")          # wrk, import_orders, commit

SECONDS = http.SECONDS
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
POOL = int(os.environ.get("BENCH_POOL", "2"))
ENGINES = ("sqlite", "postgresql")
LOAD_BEFORE = os.getloadavg()
SEQ = itertools.count(1)


def postgres_pids(pg):
    """The cluster's server processes: its postmaster and the backends it started."""
    with open(os.path.join(pg.dir, "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    pids = [postmaster]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == postmaster:
                        pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def stack_on(engine, pg, name, env=None, bin_dir=None):
    """A started nginx stack whose database is on engine (with the binaries of bin_dir if given)."""
    opts = {"database": pg.create_database("%s_%d" % (name, next(SEQ)))} if engine.startswith("postgresql") else {}
    s = harness.Stack("nginx", fcgi_procs=POOL, env=env, **opts)
    if bin_dir:
        s.bin, s.fcgi_bin = os.path.join(bin_dir, "pbiport"), os.path.join(bin_dir, "pbiport.fcgi")
    return s.start()


# The GET on each engine; BENCH_BASE_BIN_DIR adds an earlier build's on both ("before"). The
# "token lookup alone" runs send the same request with a token of an id that does not exist: the 401
# comes after the one read every authenticated request needs (the token, so that a revocation counts
# at once) and nothing else: the part of a GET that no design of the request path can leave out.
TOKEN_ONLY = ", token lookup alone (401)"
GET_TARGETS = ENGINES + (tuple(e + " before" for e in ENGINES) if http.BASE_BIN_DIR else ()) + tuple(
    e + TOKEN_ONLY for e in ENGINES)


def unknown_id(token):
    """token ("pbi_<32 hex id>_<64 hex secret>") with the first digit of its id changed: well formed,
    looked up, not found."""
    return token[:4] + ("0" if token[4] != "0" else "1") + token[5:]


def gets(pg):
    """{target: [wrk runs]} of the GET, in turns."""
    stacks = {}
    runs = {e: [] for e in GET_TARGETS}
    try:
        for engine in GET_TARGETS:
            if engine.endswith(TOKEN_ONLY):
                continue   # the engine's own stack
            s = stack_on(engine, pg, "bench_get", bin_dir=http.BASE_BIN_DIR if engine.endswith("before") else None)
            stacks[engine] = (s, http.import_orders(s))
        for rnd in range(ROUNDS):
            for engine in GET_TARGETS:
                token_only = engine.endswith(TOKEN_ONLY)
                s, product = stacks[engine[:-len(TOKEN_ONLY)] if token_only else engine]
                token = unknown_id(s.tokens["alice"]) if token_only else s.tokens["alice"]
                print("bench/db: GET round %d, %s" % (rnd + 1, engine), flush=True)
                db_pids = postgres_pids(pg) if engine.startswith("postgresql") else []
                db0 = http.cpu_seconds(db_pids)
                res = http.measured(lambda: http.wrk(s.url + "/api/data-products/" + product,
                                                     headers=["Authorization: Bearer " + token]), s)
                # backends started during the run are not counted: the pool keeps its connections
                res["db_us"] = (http.cpu_seconds(db_pids) - db0) / res["requests"] * 1e6
                want_non2xx = res["requests"] if token_only else 0
                completion.require(res["non2xx"] == want_non2xx and res["errors"] == 0, "db",
                                   "%s GET: %d non-2xx of %d, %d socket errors" % (
                                       engine, res["non2xx"], res["requests"], res["errors"]))
                runs[engine].append(res)
    finally:
        for s, _ in stacks.values():
            s.stop()
    return runs


def main():
    pg = testdb.PgServer.start()
    try:
        get_runs = gets(pg)
    finally:
        pg.stop()

    def med(engine, field):
        return statistics.median(r[field] for r in get_runs[engine])

    rows = []
    for engine in GET_TARGETS:
        rows.append("| %s | %.0f | %.2f | %.2f | %.0f / %.0f / %.0f / %.0f |" % (
            engine.replace(" before", ", before (BENCH_BASE_BIN_DIR build)"), med(engine, "rps"), med(engine, "p50"),
            med(engine, "p99"), med(engine, "app_us"), med(engine, "db_us"), med(engine, "web_us"),
            med(engine, "wrk_us")))
    ratio_rps = med("postgresql", "rps") / med("sqlite", "rps")
    before = ("; PostgreSQL / SQLite of the BENCH_BASE_BIN_DIR build, the same turns: %.2fx; PostgreSQL now / "
              "SQLite of that build: %.2fx" % (
                  med("postgresql before", "rps") / med("sqlite before", "rps"),
                  med("postgresql", "rps") / med("sqlite before", "rps"))) if "postgresql before" in get_runs else ""
    pg_token, sq_token = "postgresql" + TOKEN_ONLY, "sqlite" + TOKEN_ONLY

    def total(engine):
        return sum(med(engine, f) for f in ("app_us", "db_us", "web_us", "wrk_us"))
    budget = total("sqlite") / 0.7 - total("sqlite")
    body = "\n".join([
        "<!-- db:begin -->",
        "## db",
        "",
        "Reproduce: `bench/db/run.sh` (BENCH_SECONDS=%d per wrk run, BENCH_ROUNDS=%d turns, wrk -t2 -c%d --latency; "
        "BENCH_POOL=%d FastCGI processes)." % (SECONDS, ROUNDS, http.CONNECTIONS, POOL),
        "One host, the same nginx + pool, on SQLite (WAL, local disk) and on PostgreSQL %s (a throwaway cluster "
        "on a unix socket on the same machine, fsync off as for tests), measured in turns in one run. GET: "
        "`GET /api/data-products/{id}` of tests/integration/fixtures/orders.odcs.yaml. Jobs per second: "
        "the \"db: jobs per second\" block below (bench/db/jobs.py)." % pg_version(),
        "",
        "Machine: %d cores, %s; commit %s; run on %s UTC; load average before %s, after %s." % (
            os.cpu_count(), platform.platform(terse=True), http.commit(), time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            " / ".join("%.2f" % x for x in LOAD_BEFORE), " / ".join("%.2f" % x for x in os.getloadavg())),
        "",
        "| engine | GET requests/s | p50 ms | p99 ms | CPU us/request: pool / PostgreSQL / nginx / wrk |",
        "|---|---:|---:|---:|---:|",
    ] + rows + [
        "",
        "PostgreSQL / SQLite: GET throughput %.2fx (goal >= 0.7x%s)." % (ratio_rps, before),
        "",
        "- The part no design leaves out, measured alone (the token lookup rows): with wrk, nginx, the pool and "
        "PostgreSQL CPU-bound on the same cores, requests/s go as the inverse of the CPU a request costs them "
        "all, so 0.7x allows a GET on PostgreSQL %.0f us more CPU than SQLite's %.0f us. The token lookup alone "
        "costs %.0f us more on PostgreSQL than on SQLite (%.0f us of it in the server); the GET costs %.0f us "
        "more. PostgreSQL's token lookup alone runs at %.2fx of SQLite's whole GET." % (
            budget, total("sqlite"), total(pg_token) - total(sq_token), med(pg_token, "db_us"),
            total("postgresql") - total("sqlite"), med(pg_token, "rps") / med("sqlite", "rps")),
        "",
        "- CPU per request by role (microseconds of user + system time over the run, divided by the requests): "
        "`pool` the FastCGI processes, `PostgreSQL` the cluster's server processes. One GET on PostgreSQL is one "
        "round trip to the server and one statement, no BEGIN or COMMIT: the token's lookup, which also reads "
        "the organization's catalog version (sql/0018); each FastCGI process keeps the answers it built "
        "(runtime/answer_cache.h) and gives one again while that version is the one it was built at. On a "
        "miss the product read goes in the same pipeline (prefetched) or in a second round trip. The token "
        "lookup alone (unknown id) is the same statement. SQLite makes the same reads as calls inside the "
        "process, with the same kept answers. See the notes below.",
        "<!-- db:end -->",
        "",
    ])
    print(body)
    if not os.environ.get("BENCH_NO_README"):
        readme_section.write("db", body)


def pg_version():
    try:
        out = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.split()
        return out[2]   # "psql (PostgreSQL) 15.18 (Debian ...)"
    except (OSError, IndexError):
        return "?"


if __name__ == "__main__":
    main()
