"""The tenant-wide back-off for the push family (core/store/tenant_backoff.h) through nginx + pbiport +
worker + the emulator: a push job that gets 429 with Retry-After: 3600 goes back to the queue (the
worker does not sleep for the hour) and says until when; a push job for another dataset on the
same tenant, seconds later and in another worker process, does not call Power BI for that hour and
says why it waits; both finish once the hour has passed. The scanner family is covered by
test_import.py (test_retry_after_holds_every_integration_on_the_tenant)."""
import json
import subprocess
import time

import harness

DEMO = harness.tenants_fixture()
TENANT = DEMO["tenants"][0]["id"]
PUSH_APP = DEMO["tenants"][0]["apps"][2]
WS = DEMO["tenants"][0]["workspaces"][0]["id"]   # the push service principal is Contributor there
SCHEMA = [{"name": "Sales", "columns": [{"name": "id", "dataType": "Int64"}, {"name": "label", "dataType": "String"}]}]
ROWS = 15000   # more than one request's worth: the rows go through a job


class PushTenantBackoff(harness.EmulatorStackTestCase):
    SERVER = "nginx"
    FCGI_PROCS = 2
    EMU_ENV = {"APPLICATION_ENCRYPTION_KEYS": "77" * 32}

    @classmethod
    def set_up_stack(cls):
        cls.stack.cli("user", "add", "dave", "--org", "acme", "--role", "member", "--team", "data")
        _, out, _ = cls.stack.cli("token", "create", "dave")
        cls.stack.tokens["dave"] = out.strip()

    def call(self, method, path, body=None, raw=None, ctype=None, user="dave"):
        hdrs = {}
        if body is not None:
            raw, ctype = json.dumps(body), "application/json"
        if ctype:
            hdrs["Content-Type"] = ctype
        status, _, data = self.stack.request(method, path, body=raw, headers=hdrs, token=user)
        return status, json.loads(data.decode()) if data else None

    def dataset(self, name):
        status, conn = self.call("POST", "/api/push-connections", user="alice", body={
            "name": name, "team": "data", "tenant_id": TENANT, "client_id": PUSH_APP["client_id"],
            "client_secret": PUSH_APP["client_secret"]})
        self.assertEqual(status, 201, conn)
        status, ds = self.call("POST", "/api/push-datasets", body={
            "connection_id": conn["id"], "workspace_id": WS, "name": name, "tables": SCHEMA})
        self.assertIn(status, (200, 201), ds)
        return ds

    def send(self, ds):
        csv = "id,label\n" + "".join("%d,row %d\n" % (i, i) for i in range(ROWS))
        status, doc = self.call("POST", "/api/push-datasets/%s/tables/Sales/rows" % ds["id"], raw=csv,
                                ctype="text/csv")
        self.assertEqual(status, 202, doc)
        return doc["job_id"]

    def worker_once(self):
        """`pbiport worker --once`: a worker that slept through an hour-long Retry-After would
        time out here."""
        t0 = time.monotonic()
        res = subprocess.run([self.stack.bin, "worker", "--once", "--lease-seconds", "5"], env=self.stack.env(),
                             capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
        return time.monotonic() - t0

    def job(self, job_id):
        status, doc = self.call("GET", "/api/jobs/" + job_id)
        self.assertEqual(status, 200, doc)
        return doc

    def test_retry_after_holds_every_push_job_on_the_tenant(self):
        first, second = self.dataset("Feed A"), self.dataset("Feed B")
        self.emu.control("POST", "faults", {"path_prefix": "/powerbi/v1.0/myorg/groups/%s/datasets/%s/tables" % (
            WS, first["powerbi_id"]), "burst_429": {"count": 1, "retry_after": 3600}})
        hour = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3000))
        job_a = self.send(first)
        self.assertLess(self.worker_once(), 30)
        a = self.job(job_a)
        self.assertEqual((a["state"], a["error"]["code"]), ("queued", "throttled"), a)
        self.assertIn("Retry-After 3600 s: sending goes on at ", a["error"]["message"])
        # another dataset on the same tenant, in a new worker process: no rows sent for the hour
        job_b = self.send(second)
        self.emu.control("POST", "clear-log")
        self.assertLess(self.worker_once(), 30)
        posts = [r for r in self.emu.state("log")["requests"] if r["method"] == "POST" and r["path"].endswith("/rows")]
        self.assertEqual(posts, [])
        b = self.job(job_b)
        self.assertEqual((b["state"], b["error"]["code"]), ("queued", "tenant_backoff"), b)
        self.assertIn("waiting until ", b["error"]["message"])
        self.assertIn("push job %s" % job_a, b["error"]["message"])
        db = self.stack.db()
        for job_id in (job_a, job_b):
            run_after = db.execute("SELECT run_after FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
            self.assertGreater(run_after, hour)
        # the hour has passed: both send everything
        db.execute("UPDATE tenant_backoff SET wait_until = '2020-01-01T00:00:00.000Z'")
        db.execute("UPDATE jobs SET run_after = '2020-01-01T00:00:00.000Z' WHERE id IN (?, ?)", (job_a, job_b))
        db.commit()
        db.close()
        self.worker_once()
        for job_id in (job_a, job_b):
            done = self.job(job_id)
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(done["result"]["rows_accepted"], ROWS)


if __name__ == "__main__":
    harness.main()
