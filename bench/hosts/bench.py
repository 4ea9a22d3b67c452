"""One host vs two hosts on one PostgreSQL, in turns in one run (issue 17: two hosts >= 1.6x one
host when the emulator is not the bottleneck).

A host is an nginx + FastCGI pool of BENCH_POOL (2) processes and BENCH_WORKERS (2) `pbiport worker`
processes; two hosts are two of them on the same database (as tests/integration/test_two_hosts.py
starts them). BENCH_HOSTS_JOBS (default 100) publish jobs (bench/db/jobs.py's) are queued across the
hosts, then the hosts' workers run them; jobs/s = jobs / (first worker start -> last finished_at),
the median of BENCH_ROUNDS (2) turns. Each setup runs at each emulator latency of
BENCH_HOSTS_LATENCIES (default "0 50" ms added to every request): at 0 ms the machine's cores are the
limit, at 50 ms the workers wait on I/O and their number is. CPU per job by role (workers,
PostgreSQL, emulator) over the same window says what bounds the 0 ms figure: the cores this
benchmark's processes keep busy (CPU per job x jobs/s) against os.cpu_count(), and the emulator's
own limit (one Python process: at most one core, so 1 / its CPU per job).

Writes the "hosts" section of bench/README.md (BENCH_NO_README=1 only prints).
"""
import importlib.util
import os
import platform
import statistics
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
spec = importlib.util.spec_from_file_location("bench_db_jobs", os.path.join(ROOT, "bench", "db", "jobs.py"))
jobs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(jobs)   # puts tests/integration, tests/emulator and bench on sys.path
import harness  # noqa: E402
import emutest  # noqa: E402
import testdb  # noqa: E402
import readme_section  # noqa: E402

N = int(os.environ.get("BENCH_HOSTS_JOBS", "100"))
LATENCIES = [int(x) for x in os.environ.get("BENCH_HOSTS_LATENCIES", "0 50").split()]
ROUNDS = jobs.ROUNDS
WORKERS = jobs.WORKERS
HOSTS = (1, 2)
LOAD_BEFORE = os.getloadavg()


def one_run(pg, emu, hosts, latency):
    """N publishes across `hosts` hosts on one new PostgreSQL database, at latency ms."""
    jobs.reset_emulator(emu, latency)
    env = dict(harness.emulator_env(emu), **jobs.JOB_ENV)
    database = pg.create_database("bench_hosts_%d" % next(jobs.SEQ))
    stacks = []
    try:
        bin_path = harness.pbiport_bin()
        stacks.append(jobs.new_stack("postgresql", pg, bin_path, env, database=database))
        for _ in range(1, hosts):
            stacks.append(jobs.new_stack("postgresql", pg, bin_path, env, database=database,
                                         same_identities_as=stacks[0]))
        jobs.queue_publishes(stacks, emu, N, "%d hosts %d ms" % (hosts, latency))
        print("bench/hosts: %d publishes, %d host(s), %d ms" % (N, hosts, latency), flush=True)
        return jobs.run_workers(stacks, "publish", N, WORKERS, emu, pg)
    finally:
        for s in reversed(stacks):
            s.stop()


def main():
    runs = {}   # (latency, hosts) -> [run]
    pg = testdb.PgServer.start()
    try:
        emu = emutest.Emulator(fixture="demo.json")
        try:
            for latency in LATENCIES:
                for _ in range(ROUNDS):
                    for hosts in HOSTS:
                        r = one_run(pg, emu, hosts, latency)
                        runs.setdefault((latency, hosts), []).append(r)
                        print("  %.2f jobs/s" % (r["jobs"] / r["wall"]), flush=True)
        finally:
            emu.stop()
    finally:
        pg.stop()
    body = section(runs)
    print(body)
    if not os.environ.get("BENCH_NO_README"):
        readme_section.write("hosts", body)


def section(runs):
    rows, ratios = [], []
    for latency in LATENCIES:
        for hosts in HOSTS:
            rs = runs[(latency, hosts)]
            per_job = {k: jobs.med(rs, k) / N * 1e3 for k in ("worker_s", "pg_s", "emu_s")}
            own_ms = sum(per_job.values())
            rate = jobs.jobs_per_s(rs)
            rows.append("| %d | %d | %d | %.2f | %.1f / %.1f / %.1f | %.2f | %.2f | %.0f |" % (
                latency, hosts, hosts * WORKERS, rate, per_job["worker_s"], per_job["pg_s"], per_job["emu_s"],
                own_ms * rate / 1e3, jobs.med(rs, "busy_s") / jobs.med(rs, "wall"), 1e3 / per_job["emu_s"]))
        ratios.append("%d ms: %.2fx" % (latency, jobs.jobs_per_s(runs[(latency, 2)]) / jobs.jobs_per_s(runs[(latency, 1)])))
    return "\n".join([
        "<!-- hosts:begin -->",
        "## hosts",
        "",
        "Reproduce: `bench/hosts/run.sh` (BENCH_HOSTS_JOBS=%d publishes, BENCH_ROUNDS=%d turns, BENCH_WORKERS=%d per "
        "host, BENCH_POOL=%d, BENCH_HOSTS_LATENCIES=\"%s\")." % (N, ROUNDS, WORKERS, jobs.POOL,
                                                                " ".join(map(str, LATENCIES))),
        "One host (nginx + pool + %d workers) vs two hosts (two of them, as tests/integration/test_two_hosts.py "
        "starts them) on one PostgreSQL (a throwaway cluster on a unix socket, fsync off), in turns; the "
        "publishes of bench/db/jobs.py queued across the hosts first; the emulator adds the given latency "
        "to every request. jobs/s = jobs / (first worker start -> last finished_at), the median of the turns. "
        "`own cores` = (CPU ms/job of workers + PostgreSQL + emulator) x jobs/s: the cores this benchmark "
        "keeps busy; `machine cores busy` counts every process on the machine; `emulator limit` = 1000 / "
        "its CPU ms per job (one Python process, at most one core)." % WORKERS,
        "",
        "Machine: %d cores, %s; commit %s; run on %s UTC; load average before %s, after %s." % (
            os.cpu_count(), platform.platform(terse=True), jobs.http.commit(),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            " / ".join("%.2f" % x for x in LOAD_BEFORE), " / ".join("%.2f" % x for x in os.getloadavg())),
        "",
        "| latency ms | hosts | workers | jobs/s | CPU ms/job: workers / PostgreSQL / emulator | own cores | "
        "machine cores busy | emulator limit jobs/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ] + rows + [
        "",
        "Two hosts / one host: %s (goal >= 1.6x when the emulator is not the bottleneck)." % ", ".join(ratios),
        "<!-- hosts:end -->",
        "",
    ])


if __name__ == "__main__":
    main()
