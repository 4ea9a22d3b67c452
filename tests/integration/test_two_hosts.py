"""Two web hosts on one machine, all on one PostgreSQL (issue 17): two nginx + FastCGI pools on two
ports and two workers, one database in a throwaway cluster of this test's own (it is restarted
here, so it is never the cluster other tests share).

- 100 publishes and 20 import runs submitted across both hosts: each job runs exactly once (one
  attempt in the database and one "attempt" line in the two workers' logs together), every
  publish made its model once.
- kill -9 of a worker in the middle of a publish: the other host's worker finishes the job.
- PostgreSQL stopped and started again under 64 concurrent clients: no 500 (only 2xx, and 503
  with Retry-After while the database is away), every acknowledged import is there afterwards,
  every acknowledged publish job runs to its end, and the API answers again.

Skipped (with a SKIP line) when the PostgreSQL server binaries are not installed.
"""
import json
import os
import re
import threading
import time

import harness
from harness import contract_variant, fixture
from publish_stack import BASIC, ENDED, JOB_WAIT_S, TENANT, WS_ADMIN, OwnPostgresStackTestCase, PublishStackTestCase

SP_ID, SP_SECRET = harness.app_credentials(harness.tenants_fixture()["tenants"][0], 1)
PUBLISHES = 100
IMPORT_RUNS = 20
SUBMITTERS = 8                 # client threads submitting the publishes
LOAD_CLIENTS = 64              # concurrent clients while PostgreSQL restarts
LOAD_PUBLISHERS = 4            # of which these submit publishes, the others import contracts
RECOVERY_WAIT_S = 120          # generous: the assertion is that it answers again, not how fast
ATTEMPT_LINE = re.compile(r"worker \S+: job ([0-9a-f]{32}) \(\w+\) attempt \d+/\d+")


class TwoHosts(OwnPostgresStackTestCase):
    FCGI_PROCS = 4
    EMU_ENV = dict(PublishStackTestCase.EMU_ENV, APPLICATION_INGESTIONS_ENABLED="true",
                   PBIPORT_SCAN_POLL_MS="100", PBIPORT_SCAN_POLL_MAX_MS="400")
    PG_DATABASE = "two_hosts"
    host2 = None

    @classmethod
    def set_up_stack(cls):
        super().set_up_stack()
        # the second host: its own nginx and pool, the same database, users, keys and settings
        cls.host2 = harness.Stack(cls.SERVER, fcgi_procs=cls.FCGI_PROCS, env=cls.ENV,
                                  database=cls.stack.db_target, same_identities_as=cls.stack)
        cls.host2.start()
        cls.hosts = (cls.stack, cls.host2)

    @classmethod
    def tearDownClass(cls):
        reports = []
        try:
            if cls.host2:
                reports = cls.host2.sanitizer_reports() if cls.host2.dir else []
                cls.host2.stop()
        finally:
            super().tearDownClass()
        if reports:
            raise AssertionError("sanitizer reports from the second host:\n" + "\n".join(reports[:20]))

    # ---- helpers -------------------------------------------------------------------------------
    def publish_on(self, host, name):
        """A publish of the fixture's "fresh" port submitted through host: its job id."""
        status, _, doc = host.json("POST", "/api/output-ports/%s/powerbi-publish" % self.ports["fresh"],
                                   body=json.dumps({"workspace_id": WS_ADMIN, "name": name, "connection": BASIC}),
                                   headers={"Content-Type": "application/json"}, token="alice")
        self.assertEqual(status, 202, doc)
        return doc["job_id"]

    def job_on(self, host, job_id):
        status, _, doc = host.json("GET", "/api/jobs/" + job_id, token="alice")
        self.assertEqual(status, 200, doc)
        return doc

    def wait_jobs(self, job_ids, wait_s=JOB_WAIT_S * 4):
        """Polls every job (through both hosts in turn) until all ended: {id: job}."""
        done = {}
        deadline = time.monotonic() + wait_s
        turn = 0
        while len(done) < len(job_ids) and time.monotonic() < deadline:
            for job_id in job_ids:
                if job_id not in done:
                    doc = self.job_on(self.hosts[turn % 2], job_id)
                    turn += 1
                    if doc["state"] in ENDED:
                        done[job_id] = doc
            if len(done) < len(job_ids):
                time.sleep(0.2)
        left = [j for j in job_ids if j not in done]
        self.assertEqual(left, [], "jobs not ended: %r\n%s" % ([self.job_on(self.stack, j) for j in left[:3]],
                                                               self.worker_log_tails()))
        return done

    def worker_log_tails(self, lines=15):
        """The last lines of every worker's log: why a job was not claimed, when one was not."""
        out = []
        for name in self.worker_logs:
            with open(name, errors="replace") as f:
                out.append("--- %s\n%s" % (name, "".join(f.readlines()[-lines:])))
        return "\n".join(out)

    def attempts_logged(self):
        """{job id: attempt lines} over every worker log so far."""
        seen = {}
        for name in self.worker_logs:
            with open(name, errors="replace") as f:
                for m in ATTEMPT_LINE.finditer(f.read()):
                    seen[m.group(1)] = seen.get(m.group(1), 0) + 1
        return seen

    def attempts_stored(self, job_ids):
        with self.db() as db:
            rows = db.execute("SELECT id, attempts FROM jobs WHERE kind IN ('publish', 'ingest')").fetchall()
        return {job_id: n for job_id, n in rows if job_id in job_ids}

    def in_parallel(self, n, fn, items):
        """fn(item) for every item on n threads; the results in items' order."""
        results = [None] * len(items)
        errors = []
        lock = threading.Lock()
        queue = list(enumerate(items))

        def run():
            while True:
                with lock:
                    if not queue:
                        return
                    i, item = queue.pop()
                try:
                    results[i] = fn(item)
                except BaseException as e:   # reported below, in the test's thread
                    errors.append(e)

        threads = [threading.Thread(target=run) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results

    # ---- tests ---------------------------------------------------------------------------------
    def test_01_each_job_runs_exactly_once(self):
        integrations = []
        for i in range(IMPORT_RUNS):
            status, _, doc = self.hosts[i % 2].send_json("POST", "/api/integrations", {
                "name": "two-hosts-%02d" % i, "type": "powerbi", "tenant_id": TENANT, "client_id": SP_ID,
                "client_secret": SP_SECRET}, token="alice")
            self.assertEqual(status, 201, doc)
            integrations.append(doc["id"])
        self.start_worker(self.stack)
        self.start_worker(self.host2)

        def submit(i):
            if i < PUBLISHES:
                return self.publish_on(self.hosts[i % 2], "Two hosts %03d" % i)
            host = self.hosts[i % 2]
            status, _, doc = host.send_json("POST", "/api/integrations/%s/runs" % integrations[i - PUBLISHES],
                                            token="alice")
            self.assertEqual(status, 202, doc)
            return doc["job_id"]

        job_ids = self.in_parallel(SUBMITTERS, submit, list(range(PUBLISHES + IMPORT_RUNS)))
        self.assertEqual(len(set(job_ids)), PUBLISHES + IMPORT_RUNS)
        jobs = self.wait_jobs(job_ids)
        failed = {j: d for j, d in jobs.items() if d["state"] != "succeeded"}
        self.assertEqual(failed, {})
        # once: one attempt each, in the database and in the workers' logs together
        stored, logged = self.attempts_stored(set(job_ids)), self.attempts_logged()
        self.assertEqual({j: (stored.get(j), logged.get(j, 0)) for j in job_ids if (stored.get(j), logged.get(j, 0)) != (1, 1)},
                         {}, "jobs run other than once: {id: (attempts stored, attempt lines logged)}")
        # every publish made one model of its own name
        names = [m["name"] for m in self.emu_models() if m["name"].startswith("Two hosts ")]
        self.assertEqual(sorted(names), ["Two hosts %03d" % i for i in range(PUBLISHES)])
        models = {jobs[j]["result"]["semantic_model_id"] for j in job_ids[:PUBLISHES]}
        self.assertEqual(len(models), PUBLISHES)

    def test_02_killed_worker_job_finished_on_the_other_host(self):
        job_id = self.publish_on(self.stack, "Two hosts killed")
        self.kill_worker_in("creating_model", job_id)   # the first host's worker, SIGKILL mid-publish
        self.start_worker(self.host2)
        doc = self.wait_jobs([job_id])[job_id]
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertEqual(self.attempts_stored({job_id}), {job_id: 2})
        names = [m["name"] for m in self.emu_models() if m["name"].startswith("Two hosts killed")]
        self.assertEqual(names, ["Two hosts killed"])

    def test_03_postgresql_restart_under_load(self):
        self.start_worker(self.stack)
        self.start_worker(self.host2)
        stop = threading.Event()
        lock = threading.Lock()
        statuses = {}
        unexplained = []          # (status, Retry-After, body) that is neither 2xx nor 503 + Retry-After
        imported = []             # ids of acknowledged imports
        published = []            # ids of acknowledged publish jobs
        base = fixture("orders.odcs.yaml")

        def client(n):
            host = self.hosts[n % 2]
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    if n < LOAD_PUBLISHERS:
                        if i > 3:   # a few jobs each are enough to show none is lost
                            time.sleep(0.05)
                            continue
                        status, hdrs, doc = host.json(
                            "POST", "/api/output-ports/%s/powerbi-publish" % self.ports["fresh"],
                            body=json.dumps({"workspace_id": WS_ADMIN, "name": "Load %d-%d" % (n, i),
                                             "connection": BASIC}),
                            headers={"Content-Type": "application/json"}, token="alice")
                    else:
                        text = contract_variant(base, contract_id="urn:pbiport:it:two-hosts-%d-%d" % (n, i))
                        status, hdrs, doc = host.import_contract(text, token="alice")
                except OSError as e:
                    status, hdrs, doc = 0, {}, str(e)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == 202:
                        published.append(doc["job_id"])
                    elif status == 201:
                        imported.append(doc["id"])
                    elif not (status == 503 and hdrs.get("retry-after")):
                        unexplained.append((status, hdrs.get("retry-after"), doc))
                    if status == 503:
                        time.sleep(0.05)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(LOAD_CLIENTS)]
        for t in threads:
            t.start()
        try:
            self.wait_for(lambda: statuses.get(201, 0) >= LOAD_CLIENTS, "imports before the restart")
            self.pg.down()
            self.wait_for(lambda: statuses.get(503, 0) > 0, "a 503 while PostgreSQL is down")
            self.pg.up()
            before = statuses.get(201, 0)
            self.wait_for(lambda: statuses.get(201, 0) > before + LOAD_CLIENTS, "imports after the restart")
        finally:
            stop.set()
            for t in threads:
                t.join()
        if unexplained:   # what the processes logged for those requests says why
            ids = set(re.findall(r"request ([0-9a-f]{32})", json.dumps(unexplained)))
            lines = [line for host in self.hosts for line in host.log_lines() if any(i in line for i in ids)]
            self.fail("statuses: %r; unexplained: %r; their log lines:\n%s" % (statuses, unexplained[:5],
                                                                                "\n".join(lines[:20])))
        # the API answers again on both hosts, and every acknowledged write is there
        for host in self.hosts:
            status, _, doc = host.json("GET", "/api/data-products", token="alice")
            self.assertEqual(status, 200, doc)
        with self.db() as db:
            stored = {r[0] for r in db.execute("SELECT id FROM data_products")}
        self.assertEqual(sorted(set(imported) - stored), [])
        self.assertTrue(published)
        jobs = self.wait_jobs(published)
        self.assertEqual({j: d["state"] for j, d in jobs.items() if d["state"] != "succeeded"}, {})

    def wait_for(self, cond, what):
        deadline = time.monotonic() + RECOVERY_WAIT_S
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.05)
        self.fail("never saw %s" % what)


if __name__ == "__main__":
    harness.main()
