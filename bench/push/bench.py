"""Push benchmark: 1,000,000 CSV rows of 8 columns into one push dataset table, through pbiport
(one CGI request that validates, converts and spools the rows, then `pbiport worker --once`, which
sends them) against the emulator. Checks: exactly 100 POST rows requests, Power BI's per-dataset
rate limits met but not exceeded (emulator request log), and reports pbiport's CPU time and peak
RSS per process. Writes the "push" section of bench/README.md. Python 3 standard library only.

Environment: BENCH_ROWS (1000000), BENCH_RATE_SCALE (1.0: Power BI's own limits; the emulator and
PBIPORT_PUSH_RATE_SCALE get the same value), PBIPORT_BIN (bin/pbiport); for profiling the worker,
BENCH_PERF=FILE (perf record -g) or BENCH_WRAP="valgrind --leak-check=full ..." (a command prefix)."""
import datetime
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import emutest  # noqa: E402
import readme_section  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
SCALE = float(os.environ.get("BENCH_RATE_SCALE", "1.0"))
BIN = os.environ.get("PBIPORT_BIN", os.path.join(ROOT, "bin", "pbiport"))
with open(os.path.join(ROOT, "tests", "fixtures", "tenants", "demo.json"), encoding="utf-8") as f:
    DEMO = json.load(f)
TENANT = DEMO["tenants"][0]["id"]
PUSH_APP = DEMO["tenants"][0]["apps"][2]
WS = DEMO["tenants"][0]["workspaces"][0]["id"]
COLUMNS = [("id", "Int64"), ("amount", "Double"), ("qty", "Int64"), ("paid", "Boolean"),
           ("day", "Datetime"), ("label", "String"), ("region", "String"), ("price", "Decimal")]


def gen_csv(path, n):
    rnd = random.Random(7)
    regions = ["EMEA", "AMER", "APAC", "LATAM"]
    with open(path, "w", newline="") as f:
        f.write(",".join(c for c, _ in COLUMNS) + "\n")
        for i in range(1, n + 1):
            f.write('%d,%.2f,%d,%s,2026-%02d-%02dT%02d:%02d:00Z,"order %d, web",%s,%d.%04d\n' % (
                i, rnd.random() * 1000, rnd.randint(1, 50), "true" if i % 3 else "false",
                1 + i % 12, 1 + i % 28, i % 24, i % 60, i, regions[i % 4], rnd.randint(0, 999), rnd.randint(0, 9999)))


def sample_rss(pid, peaks, stop):
    """Largest RssAnon (heap, stacks) and RssFile (binary, libraries, the SQLite file mapping) seen."""
    while not stop.is_set():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    key = line.split(":")[0]
                    if key in ("RssAnon", "RssFile"):
                        peaks[key] = max(peaks.get(key, 0), int(line.split()[1]) / 1024.0)
        except OSError:
            pass
        stop.wait(0.02)


def run(args, env, stdin=None):
    """Runs a pbiport process; returns (rc, stdout, stderr, cpu_s, maxrss_mb, peaks) from wait4()
    plus sampled /proc peaks."""
    p = subprocess.Popen(args, env=env, stdin=stdin or subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    peaks, stop = {}, threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(p.pid, peaks, stop), daemon=True)
    sampler.start()
    # read the pipes first so the child cannot block on them; wait4 gives this child's own rusage
    out, err = p.stdout.read(), p.stderr.read()
    stop.set()
    sampler.join()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), ru.ru_utime + ru.ru_stime, \
        ru.ru_maxrss / 1024.0, peaks


def cgi(env, method, uri, body=None, ctype="application/json", stdin_path=None):
    e = dict(env, REQUEST_METHOD=method, REQUEST_URI=uri, QUERY_STRING="", REMOTE_USER="alice")
    stdin = None
    if body is not None:
        data = json.dumps(body).encode()
        tmp = tempfile.TemporaryFile()
        tmp.write(data)
        tmp.seek(0)
        stdin = tmp
        e.update(CONTENT_TYPE=ctype, CONTENT_LENGTH=str(len(data)))
    elif stdin_path:
        stdin = open(stdin_path, "rb")
        e.update(CONTENT_TYPE=ctype, CONTENT_LENGTH=str(os.path.getsize(stdin_path)))
    rc, out, err, cpu, rss, peaks = run([BIN + ".fcgi" if os.path.exists(BIN + ".fcgi") else BIN], e, stdin)
    head, _, payload = out.partition("\r\n\r\n")
    m = re.match(r"Status: (\d+)", head)
    status = int(m.group(1)) if m else 0
    try:
        doc = json.loads(payload) if payload.strip() else None
    except ValueError:
        doc = payload
    return status, doc, head, cpu, (rss, peaks), err


def max_in_window(times, window):
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def main():
    tmp = tempfile.mkdtemp(prefix="pbiport-bench-push-")
    emu = emutest.Emulator(fixture="demo.json", rate_scale=SCALE)
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PBIPORT_DB": os.path.join(tmp, "pbiport.db"),
               "APPLICATION_ENCRYPTION_KEYS": "5a" * 32, "PBIPORT_PUSH_RATE_SCALE": repr(SCALE),
               "PBIPORT_POWERBI_URL": emu.url + "/powerbi", "PBIPORT_ENTRA_URL": emu.url + "/entra",
               "PBIPORT_FABRIC_URL": emu.url + "/fabric", "PBIPORT_GRAPH_URL": emu.url + "/graph",
               "PBIPORT_CA_BUNDLE": os.path.join(emu.dir, "ca.pem")}
        for args in (["migrate"], ["org", "create", "acme"],
                     ["user", "add", "alice", "--org", "acme", "--role", "member", "--team", "data"]):
            subprocess.run([BIN] + args, env=env, check=True, capture_output=True)
        st, conn, _, _, _, err = cgi(env, "POST", "/api/push-connections", {
            "name": "bench", "team": "data", "tenant_id": TENANT, "client_id": PUSH_APP["client_id"],
            "client_secret": PUSH_APP["client_secret"]})
        assert st == 201, (st, conn, err)
        st, ds, _, _, _, err = cgi(env, "POST", "/api/push-datasets", {
            "connection_id": conn["id"], "workspace_id": WS, "name": "Bench",
            "tables": [{"name": "Orders", "columns": [{"name": c, "dataType": t} for c, t in COLUMNS]}]})
        assert st == 201, (st, ds, err)
        csv = os.path.join(tmp, "rows.csv")
        t0 = time.time()
        gen_csv(csv, ROWS)
        gen_s = time.time() - t0
        size_mb = os.path.getsize(csv) / 1e6
        emu.control("POST", "clear-log")
        t0 = time.time()
        post_st, doc, _, post_cpu, post_rss, err = cgi(env, "POST", "/api/push-datasets/%s/tables/Orders/rows" % ds["id"],
                                                   ctype="text/csv", stdin_path=csv)
        post_wall = time.time() - t0
        assert post_st in (200, 202), (post_st, doc, err)
        t0 = time.time()
        # BENCH_PERF=FILE records a CPU profile of the worker (perf record -g)
        prof = ["perf", "record", "-g", "-o", os.environ["BENCH_PERF"], "--"] if os.environ.get("BENCH_PERF") else []
        if os.environ.get("BENCH_WRAP"):
            prof = os.environ["BENCH_WRAP"].split()
        rc, _, werr, work_cpu, work_rss, work_peaks = run(prof + [BIN, "worker", "--once", "--lease-seconds", "30"],
                                                          env)
        work_wall = time.time() - t0
        assert rc == 0, werr
        st, job, _, _, _, _ = cgi(env, "GET", "/api/jobs/" + doc["job_id"])
        assert job["state"] == "succeeded", job
        state = emu.state("counters,log")
        posts = [r for r in state["requests"] if r["method"] == "POST" and r["path"].endswith("/rows")]
        times = sorted(r["time"] for r in posts)
        ok_posts = [r for r in posts if r["status"] == 200]
        per_min = max_in_window(times, 60.0)
        lim_min = max(1, int(120 * SCALE))
        lim_rows = max(1, int(1000000 * SCALE))
        res = {
            "rows": ROWS, "csv_mb": size_mb, "gen_s": gen_s, "post_status": post_st, "post_wall": post_wall,
            "post_cpu": post_cpu, "post_rss": post_rss[0], "post_anon": post_rss[1].get("RssAnon", 0),
            "post_file": post_rss[1].get("RssFile", 0), "work_wall": work_wall, "work_cpu": work_cpu,
            "work_rss": work_rss, "work_anon": work_peaks.get("RssAnon", 0), "work_file": work_peaks.get("RssFile", 0), "requests": len(posts), "ok_requests": len(ok_posts),
            "rows_posted": state["counters"].get("rows_posted", 0),
            "throttled": state["counters"].get("rows_throttled", 0), "per_min": per_min, "lim_min": lim_min,
            "lim_rows": lim_rows, "span_s": (times[-1] - times[0]) if times else 0, "result": job["result"],
        }
        print(json.dumps(res, indent=1))
        write_readme(res)
    finally:
        emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def write_readme(r):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    total_cpu = r["post_cpu"] + r["work_cpu"]
    peak = max(r["post_rss"], r["work_rss"])
    met = lambda ok: "met" if ok else "NOT met"
    rows_ok = r["rows_posted"] <= r["lim_rows"]
    text = """<!-- push:begin -->
## push

Reproduce: `bench/push/run.sh` (BENCH_ROWS={rows}, BENCH_RATE_SCALE={scale}). One CSV body of {rows:,} rows x 8 columns
(Int64, Double, Int64, Boolean, Datetime, two Strings, Decimal; {mb:.1f} MB) posted to
`/api/push-datasets/{{id}}/tables/Orders/rows` as one CGI request of `pbiport.fcgi` (parse, validate every row,
convert, spool 10,000-row chunks in SQLite, queue a job), then `pbiport worker --once` sends the chunks to the
emulator. The emulator runs with `--rate-scale {scale}` and pbiport with `PBIPORT_PUSH_RATE_SCALE={scale}`: at 1.0
these are Power BI's own limits (120 POST rows a minute, 1,000,000 rows an hour, 120 an hour past 250,000 rows,
which the hour's earlier requests count towards); 100 requests of 10,000 rows fit in them without waiting, so
no speed-up was needed. CPU and peak RSS from wait4() of each pbiport process.

Machine: {machine}; run on {now}.

| step | wall s | CPU s | peak RSS MB | of it: anonymous (heap) MB | file-backed MB |
|---|---:|---:|---:|---:|---:|
| POST rows (pbiport.fcgi, CGI): read, validate, convert, spool | {pw:.2f} | {pc:.2f} | {pr:.1f} | {pa:.1f} | {pf:.1f} |
| worker --once: {req} POST rows requests | {ww:.2f} | {wc:.2f} | {wr:.1f} | {wa:.1f} | {wf:.1f} |
| pbiport total | | **{tc:.2f}** | **{peak:.1f}** | | |

- Requests: {req} POST rows calls ({ok} answered 200), {posted:,} rows accepted; job result `{res}`.
- Rate limits: at most {pm} requests in any 60 s (limit {lm}: {m1}), {posted:,} rows in the hour (limit {lr:,}: {m2});
  the emulator answered 429 {thr} times ({m3}). The 100 requests took {span:.1f} s.
- Goals: CPU < 2 s: {g1} ({tc:.2f} s); peak RSS < 50 MB: {g2} ({peak:.1f} MB). Anonymous/file-backed peaks are
  sampled from /proc every 20 ms.
- Goals by kind of memory: anonymous (heap, stacks) peak {apeak:.1f} MB; the file-backed part is explained in (3).
- Where the time and memory go: (1) the rows route streams its body (`ROUTE_STREAM_BODY`: the runtime checks
  Content-Length and the content type, the handler pulls the body with `req_body_read()` in 64 KiB pieces), so the
  POST holds one piece of input and one 10,000-row chunk (~1.5 MB), not the {mb:.1f} MB body. (2) The worker sends
  each spooled chunk's JSON text as it is (`powerbi_push_rows_text()`, body `{{"rows":[...]}}`): no jansson parse
  and re-serialisation of 10,000 objects per request. (3) File-backed RSS of the worker is the SQLite database file
  read through its 256 MiB mapping (`PB_DB_MMAP_BYTES`, runtime/db): the spooled chunks (~150 MB of JSON text for this
  body) are page cache mapped into the process, not heap, and the kernel can drop them at any time. A connection
  without the mapping for the worker (a runtime/db setting) would keep that out of its RSS; not done here.
- Before streaming and the text path (same machine, 2026-11-26 04:32 UTC): POST 1.07 s CPU, 91.4 MB peak RSS
  (81.2 MB anonymous: the whole body); worker 9.00 s CPU (73% of it malloc/free/printf and jansson), 42.2 MB;
  total 10.07 s CPU.
<!-- push:end -->""".format(
        rows=r["rows"], scale=SCALE, mb=r["csv_mb"], machine="%d cores, %s" % (os.cpu_count(), platform.platform()),
        now=now, pw=r["post_wall"], pc=r["post_cpu"], pr=r["post_rss"], ww=r["work_wall"], wc=r["work_cpu"],
        wr=r["work_rss"], pa=r["post_anon"], pf=r["post_file"], wa=r["work_anon"], wf=r["work_file"], req=r["requests"], tc=total_cpu, peak=peak, ok=r["ok_requests"], posted=r["rows_posted"],
        res=json.dumps(r["result"], sort_keys=True), pm=r["per_min"], lm=r["lim_min"], m1=met(r["per_min"] <= r["lim_min"]),
        lr=r["lim_rows"], m2=met(rows_ok) + (", exactly at the limit" if r["rows_posted"] == r["lim_rows"] else ""),
        thr=r["throttled"], m3=met(r["throttled"] == 0) + " (0 expected)", span=r["span_s"],
        g1=met(total_cpu < 2.0), g2=met(peak < 50.0), apeak=max(r["post_anon"], r["work_anon"]))
    readme_section.write("push", text)


if __name__ == "__main__":
    main()
