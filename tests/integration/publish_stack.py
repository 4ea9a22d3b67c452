"""A stack for tests that publish to Power BI: nginx + pbiport + the emulator, the organization's
Power BI settings saved, alice (owner of acme) connected, the publish fixture contract imported
(cls.product, cls.ports by server name), workers started on demand, and the
API calls those tests repeat (publish, job, wait for a job). Used by test_jobs.py and
test_catalog.py and test_publish.py."""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.parse

import unittest

import harness
import testdb


_DEMO = harness.tenants_fixture()["tenants"][0]
TENANT = _DEMO["id"]
APP = _DEMO["apps"][0]
ALICE_UPN = "alice@contoso.example"
WS_ADMIN = "a0000000-0000-4000-8000-000000000001"     # alice: Admin
WS_MEMBER = "a0000000-0000-4000-8000-000000000002"    # alice: Member
SF_CONNECTION = "c0000000-0000-4000-8000-000000000001"   # matches the contract's "analytics" server
JOB_WAIT_S = 90
ENDED = ("succeeded", "failed", "cancelled")
with open(os.path.join(harness.ROOT, "tests", "fixtures", "publish", "contoso.odcs.yaml"), encoding="utf-8") as _f:
    CONTRACT = _f.read()
HTML = {"Accept": "text/html,application/xhtml+xml"}
CSRF_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([A-Za-z0-9_-]+)"')
BASIC = {"credential_type": "basic", "username": "svc_pbi", "password": "Sn0w-s3cret-pw"}


class PublishStackTestCase(harness.EmulatorStackTestCase):
    SERVER = "nginx"
    FCGI_PROCS = 2
    EMU_ENV = dict(APPLICATION_POWERBI_WEB_ENABLED="true", APPLICATION_ENCRYPTION_KEYS="44" * 32,
                   APPLICATION_SECURITY_REMEMBERME_KEY="55" * 32)

    @classmethod
    def set_up_stack(cls):
        cls.workers = []
        cls.worker_logs = []
        s = cls.stack
        status, _, doc = s.json("PUT", "/api/settings/powerbi", token="alice", headers={"Content-Type": "application/json"},
                                body=json.dumps({"mode": "custom", "tenant_id": TENANT, "client_id": APP["client_id"],
                                                 "client_secret": APP["client_secret"]}))
        assert status == 200, doc
        cls.connect("alice", ALICE_UPN)
        status, _, doc = s.import_contract(CONTRACT, token="alice")
        assert status == 201, doc
        cls.product = doc
        cls.ports = {p["name"]: p["id"] for p in doc["output_ports"]}

    @classmethod
    def connect(cls, user, upn):
        """Connects pbiport user `user` to Power BI as the (consented) Entra user upn."""
        s = cls.stack
        status, headers, _ = s.request("GET", "/powerbi/connect?return_to=/x", token=user)
        assert status == 302, status
        r = cls.emu.call("GET", headers["location"] + "&login_hint=" + upn)
        assert r.status == 302, r
        cb = r.header("Location")
        status, _, body = s.request("GET", cb[cb.index("/powerbi/callback"):], token=user)
        assert status == 302, body

    @classmethod
    def tearDownClass(cls):
        try:
            for p in getattr(cls, "workers", []):
                cls._kill(p)
        finally:
            super().tearDownClass()

    def setUp(self):
        # quick long-running operations: one poll, no wait; no faults left by an earlier test
        self.emu.control("POST", "config", {"lro_polls": 1, "lro_duration_s": 2, "retry_after_s": 0, "latency_ms": 0})
        self.emu.control("DELETE", "faults")

    def tearDown(self):
        self.stop_workers()
        for name in self.worker_logs:
            with open(name, errors="replace") as f:
                text = f.read()
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                self.assertNotIn(marker, text, name)
        self.worker_logs.clear()

    # ---- workers -------------------------------------------------------------------------------
    def start_worker(self, host=None, **env):
        """A `pbiport worker` with host's environment (default: the class's stack) and env added:
        (process, its log file's name)."""
        host = host or self.stack
        log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", dir=host.path("logs"), delete=False)
        p = subprocess.Popen([host.bin, "worker", "--poll-ms", "50", "--lease-seconds", "3"],
                             env=dict(host.env(), **env), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True)
        log.close()
        self.workers.append(p)
        self.worker_logs.append(log.name)
        return p, log.name

    def kill_worker_in(self, phase, job_id):
        """Starts a worker that pauses job_id inside phase (PBIPORT_TEST_PAUSE_PHASE), waits for the
        pause and kills the worker with SIGKILL there."""
        p, log = self.start_worker(PBIPORT_TEST_PAUSE_PHASE=phase)
        marker = "PBIPORT_TEST_PAUSED %s %s" % (phase, job_id)
        deadline = time.monotonic() + JOB_WAIT_S
        while time.monotonic() < deadline:
            with open(log, errors="replace") as f:
                if marker in f.read():
                    break
            assert p.poll() is None, "worker exited before the pause in " + phase
            time.sleep(0.05)
        else:
            raise AssertionError("worker never paused in " + phase)
        os.kill(p.pid, 9)
        p.wait()
        self.workers.remove(p)

    @staticmethod
    def _kill(p, sig=15):
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, 9)
                p.wait()

    def stop_workers(self):
        for p in self.workers:
            self._kill(p)
        self.workers.clear()

    def db(self):
        return self.stack.db()

    def user_id(self, name):
        with self.db() as db:
            return db.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()[0]

    # ---- API -----------------------------------------------------------------------------------
    def publish(self, port, body, user="alice"):
        """port: a server name of the fixture contract, or a port id."""
        return self.stack.json("POST", "/api/output-ports/%s/powerbi-publish" % self.ports.get(port, port),
                               body=json.dumps(body), headers={"Content-Type": "application/json"}, token=user)

    def submit(self, port, body, user="alice"):
        status, _, doc = self.publish(port, body, user)
        self.assertEqual(status, 202, doc)
        self.assertEqual(doc["status_url"], "/api/jobs/" + doc["job_id"])
        return doc["job_id"]

    def job(self, job_id, user="alice"):
        status, _, doc = self.stack.json("GET", "/api/jobs/" + job_id, token=user)
        self.assertEqual(status, 200, doc)
        return doc

    def wait_job(self, job_id, until=lambda doc: doc["state"] in ENDED, user="alice", interval=0.05):
        """Polls the job until `until(doc)`; doc["seen_phases"]: the phases the polls saw."""
        deadline = time.monotonic() + JOB_WAIT_S
        phases = []
        while time.monotonic() < deadline:
            doc = self.job(job_id, user)
            if doc["phase"] and (not phases or phases[-1] != doc["phase"]):
                phases.append(doc["phase"])
            if until(doc):
                doc["seen_phases"] = phases
                return doc
            if doc["state"] in ENDED:
                self.fail("job %s ended before the awaited point: %r" % (job_id, doc))
            time.sleep(interval)
        self.fail("job %s did not get there: %r" % (job_id, self.job(job_id, user)))

    def run_job(self, port, body):
        self.start_worker()
        return self.wait_job(self.submit(port, body))

    def emu_models(self, parts=False):
        return self.emu.control("GET", "state?sections=models" + ("" if parts else "&parts=0"))["models"]

    def emu_connections(self):
        return self.emu.state("connections")["connections"]

    def counters(self):
        c = self.emu.state("counters")["counters"]
        return {k: c.get(k, 0) for k in ("connections_created", "models_created", "bindings")}

    # ---- pages, as a browser without JavaScript uses them ----------------------------------------
    def page(self, path, user="alice", method="GET", body=None, headers=None):
        status, hdrs, data = self.stack.request(method, path, body=body, headers=dict(HTML, **(headers or {})),
                                                basic=user)
        return status, hdrs, data.decode("utf-8")

    def token(self, path, user="alice"):
        status, _, body = self.page(path, user)
        self.assertEqual(status, 200, body[:500])
        m = CSRF_TOKEN.search(body)
        self.assertIsNotNone(m, "no csrf_token on " + path)
        return m.group(1)

    def signed(self, path, user):
        """The token pbiport signs for user's forms posting to path (runtime/page_csrf.h), for a user
        whose page shows no form to take it from."""
        msg = "pbiport-csrf-v1\n%s\n%s\n%d" % (self.user_id(user), path, int(time.time()) // 7200)
        key = bytes.fromhex(self.EMU_ENV["APPLICATION_SECURITY_REMEMBERME_KEY"])
        return base64.urlsafe_b64encode(hmac.new(key, msg.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()

    def post(self, path, fields, user="alice"):
        """The form as a browser posts it from this site: urlencoded, with the token of the user's
        form on that page."""
        fields = dict(fields)
        fields.setdefault("csrf_token", self.signed(path, user))
        origin = "http://127.0.0.1:%d" % self.stack.port
        return self.page(path, user, "POST", urllib.parse.urlencode(fields),
                         {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin,
                          "Sec-Fetch-Site": "same-origin"})


class OwnPostgresStackTestCase(PublishStackTestCase):
    """A publish stack on a PostgreSQL server of the class's own (cls.pg, testdb.PgServer), which
    its tests may stop and start (pg.down(), pg.up()) whatever engine the run uses; the database
    is named after PG_DATABASE. Skips, saying why, without the PostgreSQL server binaries."""
    PG_DATABASE = "own_postgres"
    pg = None

    @classmethod
    def setUpClass(cls):
        try:
            cls.pg = testdb.PgServer.start()
        except testdb.Unavailable as e:
            print(e)   # "SKIP: PostgreSQL server binaries ... not found ..."
            raise unittest.SkipTest(str(e))
        try:
            super().setUpClass()
        except BaseException:
            cls.pg.stop()
            raise

    @classmethod
    def stack_options(cls):
        return {"database": cls.pg.create_database(cls.PG_DATABASE)}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if cls.pg:
                cls.pg.stop()
