"""Webhooks through nginx + pbiport workers + the emulator, delivered to an HTTPS receiver of this
test's own (http.server + ssl, with a certificate of the emulator's test CA, which pbiport trusts
through PBIPORT_CA_BUNDLE) that checks every signature and records every delivery: a publish fires
publish.succeeded (and a failing one publish.failed) with a valid signature; a receiver that fails
is tried again with the same delivery id and body until it answers 2xx (Retry-After honoured); a
slow or down receiver does not delay publishing or the API; 410 turns the webhook off; loopback is
refused without the allow setting (by the URL's address, and after DNS); the secret is in no answer,
no log line and not in clear in the database; members get 403 and other organizations 404; bad input
is 400 naming the field and writes nothing."""
import hashlib
import hmac
import http.server
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import harness
from publish_stack import APP, SF_CONNECTION, TENANT, WS_ADMIN, WS_MEMBER, PublishStackTestCase

ALLOW = "localhost"
GIVEN_SECRET = "rcv-secret-Zq7x9-never-shown"
DELIVERY_WAIT_S = 60
WEBHOOK_TIMEOUT_S = 10          # PB_WEBHOOK_TIMEOUT_MS


class Receiver:
    """An HTTPS server on localhost: POST /hook/<name> is recorded with its signature checked
    against secrets[name]; plans[name] is a list of answers to give first (then 200):
    {"status": 500, "headers": {...}} or {"sleep": seconds}."""

    def __init__(self, cert, key):
        self.records = []
        self.secrets = {}
        self.plans = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                name = self.path.rsplit("/", 1)[-1]
                with receiver.lock:
                    secret = receiver.secrets.get(name, "")
                    plan = receiver.plans.get(name) or []
                    step = plan.pop(0) if plan else {}
                want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                rec = {"name": name, "at": time.monotonic(), "body": body,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "signature_ok": hmac.compare_digest(want, self.headers.get("X-Pbiport-Signature", ""))}
                with receiver.lock:
                    receiver.records.append(rec)
                if step.get("sleep"):
                    time.sleep(step["sleep"])
                try:
                    self.send_response(step.get("status", 200))
                    for k, v in step.get("headers", {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass   # the sender gave up waiting

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name, host="localhost"):
        return "https://%s:%d/hook/%s" % (host, self.port, name)

    def got(self, name):
        with self.lock:
            return [r for r in self.records if r["name"] == name]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Webhooks(PublishStackTestCase):
    EMU_ENV = dict(PublishStackTestCase.EMU_ENV, PBIPORT_WEBHOOK_ALLOW_HOSTS=ALLOW,
                   APPLICATION_INGESTIONS_ENABLED="true", PBIPORT_REFRESH_POLL_MS="200")

    @classmethod
    def set_up_stack(cls):
        super().set_up_stack()
        cls.receiver = Receiver(os.path.join(cls.emu.dir, "server.pem"), os.path.join(cls.emu.dir, "server.key"))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.receiver.stop()
        finally:
            super().tearDownClass()

    def tearDown(self):
        super().tearDown()   # stops the workers first
        for hook in self.hooks("alice"):
            self.stack.request("DELETE", "/api/webhooks/" + hook["id"], token="alice")

    # ---- helpers -------------------------------------------------------------------------------
    def api(self, method, path, body=None, user="alice"):
        return self.stack.send_json(method, path, body, token=user)

    def hooks(self, user):
        status, _, doc = self.api("GET", "/api/webhooks", user=user)
        self.assertEqual(status, 200, doc)
        return doc["webhooks"]

    def create(self, name, events, secret=GIVEN_SECRET, host="localhost"):
        body = {"url": self.receiver.url(name, host), "events": events}
        if secret is not None:
            body["secret"] = secret
        status, _, doc = self.api("POST", "/api/webhooks", body)
        self.assertEqual(status, 201, doc)
        self.receiver.secrets[name] = secret if secret is not None else doc["secret"]
        return doc

    def deliveries(self, hook_id):
        status, _, doc = self.api("GET", "/api/webhooks/%s/deliveries" % hook_id)
        self.assertEqual(status, 200, doc)
        return doc["deliveries"]

    def wait_for(self, what, pred, timeout=DELIVERY_WAIT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = pred()
            if got:
                return got
            time.sleep(0.1)
        self.fail("timed out waiting for " + what)

    def wait_delivery(self, hook_id, states=("delivered", "failed")):
        return self.wait_for("a delivery of %s in %s" % (hook_id, states),
                             lambda: [d for d in self.deliveries(hook_id) if d["state"] in states])

    def start_worker_env(self, drop=()):
        """A worker whose environment lacks the variables in drop."""
        env = {k: v for k, v in self.stack.env().items() if k not in drop}
        log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", dir=self.stack.path("logs"), delete=False)
        p = subprocess.Popen([self.stack.bin, "worker", "--poll-ms", "50", "--lease-seconds", "30"], env=env,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.workers.append(p)
        self.worker_logs.append(log.name)
        return p

    def publish_wait(self, port, body):
        """A publish run by the workers already started."""
        return self.wait_job(self.submit(port, body))

    def ping(self, hook_id):
        status, _, doc = self.api("POST", "/api/webhooks/%s/test" % hook_id)
        self.assertEqual(status, 202, doc)
        self.assertEqual(doc["status_url"], "/api/jobs/" + doc["job_id"])
        return doc

    def assert_ping_refused(self, hook, name, why):
        """A ping to hook is not sent: the delivery fails at once, saying why, and is not retried."""
        sent = self.ping(hook["id"])
        d = self.wait_delivery(hook["id"])[0]
        self.assertEqual((d["state"], d["attempts"]), ("failed", 1), d)
        self.assertIn(why, d["last_error"])
        self.assertEqual(self.wait_job(sent["job_id"])["error"]["code"], "webhook_url_refused")
        self.assertEqual(self.receiver.got(name), [])

    # ---- tests ---------------------------------------------------------------------------------
    def test_01_publish_fires_signed_events(self):
        hook = self.create("pub", ["publish.succeeded", "publish.failed"], secret=None)
        generated = self.receiver.secrets["pub"]
        self.assertGreaterEqual(len(generated), 40)
        self.assertEqual(hook["events"], ["publish.succeeded", "publish.failed"])
        self.assertIsNone(hook["last_delivery"])
        status, _, got = self.api("GET", "/api/webhooks/" + hook["id"])
        self.assertEqual(status, 200, got)
        self.assertNotIn("secret", got)                     # shown once, at creation
        self.start_worker()
        job = self.publish_wait("analytics", {"workspace_id": WS_ADMIN, "name": "Hooked", "connection_id": SF_CONNECTION})
        self.assertEqual(job["state"], "succeeded", job)
        rec = self.wait_for("publish.succeeded at the receiver", lambda: self.receiver.got("pub"))[0]
        self.assertTrue(rec["signature_ok"], rec["headers"])
        self.assertEqual(rec["headers"]["x-pbiport-event"], "publish.succeeded")
        self.assertEqual(rec["headers"]["content-type"], "application/json")
        event = json.loads(rec["body"])
        self.assertEqual(sorted(event), ["created_at", "data", "event", "id", "organization_id"])
        self.assertEqual(event["event"], "publish.succeeded")
        data = event["data"]
        self.assertEqual(data["job_id"], job["id"])
        self.assertEqual(data["semantic_model_id"], job["result"]["semantic_model_id"])
        self.assertEqual(data["web_url"], job["result"]["web_url"])
        self.assertEqual(data["output_port_id"], self.ports["analytics"])
        self.assertEqual(data["data_product_id"], self.product["id"])
        self.assertEqual((data["name"], data["workspace_id"]), ("Hooked", WS_ADMIN))
        self.assertNotIn("error", data)
        delivered = self.wait_delivery(hook["id"])[0]
        self.assertEqual(rec["headers"]["x-pbiport-delivery"], delivered["id"])
        self.assertEqual((delivered["state"], delivered["attempts"], delivered["last_status"]), ("delivered", 1, 200))
        self.assertEqual(delivered["event_id"], event["id"])
        self.assertEqual(delivered["payload"], event)
        status, _, got = self.api("GET", "/api/webhooks/" + hook["id"])
        self.assertEqual((got["last_delivery"]["state"], got["last_delivery"]["status"]), ("delivered", 200))
        # a publish that fails tells why
        job = self.publish_wait("fresh", {"workspace_id": WS_MEMBER, "name": "Mismatch", "connection_id": SF_CONNECTION})
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "connection_mismatch"), job)
        rec = self.wait_for("publish.failed", lambda: [r for r in self.receiver.got("pub")
                                                       if r["headers"]["x-pbiport-event"] == "publish.failed"])[0]
        self.assertTrue(rec["signature_ok"])
        data = json.loads(rec["body"])["data"]
        self.assertEqual((data["job_id"], data["error"]["code"]), (job["id"], "connection_mismatch"))
        self.assertEqual(data["error"]["message"], job["error"]["message"])
        self.assertEqual(data["output_port_id"], self.ports["fresh"])

    def test_02_failing_receiver_is_retried_with_the_same_delivery_id(self):
        hook = self.create("flaky", ["import.failed"])
        # a 500 (back-off: 5 s), then a 503 asking for 1 s, then 200
        self.receiver.plans["flaky"] = [{"status": 500}, {"status": 503, "headers": {"Retry-After": "1"}}]
        self.start_worker()
        sent = self.ping(hook["id"])
        done = self.wait_delivery(hook["id"])
        self.assertEqual(len(done), 1)
        d = done[0]
        self.assertEqual((d["id"], d["state"], d["attempts"], d["last_status"], d["event"]),
                         (sent["delivery_id"], "delivered", 3, 200, "ping"))
        recs = self.receiver.got("flaky")
        self.assertEqual(len(recs), 3)
        self.assertEqual({r["headers"]["x-pbiport-delivery"] for r in recs}, {sent["delivery_id"]})
        self.assertEqual(len({r["body"] for r in recs}), 1)      # the same bytes, signed the same
        self.assertTrue(all(r["signature_ok"] for r in recs))
        self.assertGreaterEqual(recs[1]["at"] - recs[0]["at"], 4.5)    # the back-off
        self.assertLess(recs[2]["at"] - recs[1]["at"], 4.0)            # the Retry-After, not the back-off
        self.assertEqual(json.loads(recs[0]["body"])["data"]["webhook_id"], hook["id"])
        # the delivery's row says "delivered" before its job ends (core/flow/webhooks.c conclude)
        job = self.wait_job(sent["job_id"])
        self.assertEqual((job["state"], job["attempts"]), ("succeeded", 3), job)

    def test_03_slow_or_down_receiver_does_not_delay_publishing(self):
        slow = self.create("slow", ["publish.succeeded"])
        down_port = harness.free_port()
        status, _, down = self.api("POST", "/api/webhooks", {"url": "https://localhost:%d/hook/down" % down_port,
                                                             "events": ["publish.succeeded"], "secret": GIVEN_SECRET})
        self.assertEqual(status, 201, down)
        self.receiver.plans["slow"] = [{"sleep": 3 * WEBHOOK_TIMEOUT_S}]
        self.start_worker()
        self.start_worker()
        t0 = time.monotonic()
        first = self.publish_wait("analytics", {"workspace_id": WS_ADMIN, "name": "Slow A", "connection_id": SF_CONNECTION})
        self.assertEqual(first["state"], "succeeded", first)
        baseline = time.monotonic() - t0
        # the receiver has the event and holds the connection open
        self.wait_for("the slow receiver to be called", lambda: self.receiver.got("slow"), timeout=30)
        # the API answers at once meanwhile
        t = time.monotonic()
        self.assertEqual(len(self.hooks("alice")), 2)
        self.ping(slow["id"])
        self.assertLess(time.monotonic() - t, 2.0)
        # and another publish runs on the other worker, not after the slow delivery
        t = time.monotonic()
        second = self.publish_wait("analytics", {"workspace_id": WS_ADMIN, "name": "Slow B", "connection_id": SF_CONNECTION})
        took = time.monotonic() - t
        self.assertEqual(second["state"], "succeeded", second)
        self.assertLess(took, baseline + 5.0, (took, baseline))
        # the down receiver's delivery failed at once (connection refused) and waits for its retry
        d = self.wait_delivery(down["id"], ("retrying",))[0]
        self.assertIsNone(d["last_status"])
        self.assertIn("connect", d["last_error"])
        # the slow one is given up on after the bounded time, and tried again later
        start = self.receiver.got("slow")[0]["at"]
        d = self.wait_delivery(slow["id"], ("retrying",))
        self.assertLess(time.monotonic() - start, WEBHOOK_TIMEOUT_S + 8)
        self.assertIn("in time", [x for x in d if x["event"] == "publish.succeeded"][0]["last_error"])

    def test_04_gone_turns_the_webhook_off(self):
        hook = self.create("gone", ["publish.succeeded", "refresh.failed"])
        self.receiver.plans["gone"] = [{"status": 410}]
        self.start_worker()
        sent = self.ping(hook["id"])
        d = self.wait_delivery(hook["id"])[0]
        self.assertEqual((d["state"], d["attempts"], d["last_status"]), ("failed", 1, 410))
        job = self.wait_job(sent["job_id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "webhook_gone"), job)
        status, _, got = self.api("GET", "/api/webhooks/" + hook["id"])
        self.assertFalse(got["active"], got)
        self.assertIn("410", got["disabled_reason"])
        self.assertEqual((got["last_delivery"]["state"], got["last_delivery"]["status"]), ("failed", 410))
        # events no longer go to it
        job = self.publish_wait("analytics", {"workspace_id": WS_ADMIN, "name": "After gone", "connection_id": SF_CONNECTION})
        self.assertEqual(job["state"], "succeeded", job)
        time.sleep(1)
        self.assertEqual(len(self.deliveries(hook["id"])), 1)
        self.assertEqual(len(self.receiver.got("gone")), 1)
        # an owner turns it on again
        status, _, got = self.api("PATCH", "/api/webhooks/" + hook["id"], {"active": True})
        self.assertEqual(status, 200, got)
        self.assertEqual((got["active"], got["disabled_reason"]), (True, None))

    def test_05_loopback_refused_without_the_allow_setting(self):
        before = len(self.hooks("alice"))
        for url in ("https://127.0.0.1:%d/hook/x" % self.receiver.port, "https://[::1]/hook/x",
                    "https://169.254.169.254/latest/meta-data", "https://10.1.2.3/x", "https://app.localhost/x",
                    "http://localhost:%d/hook/x" % self.receiver.port,
                    "https://alice:pw@localhost:%d/hook/x" % self.receiver.port):
            err = self.assertError(self.api("POST", "/api/webhooks", {"url": url, "events": ["publish.failed"]}),
                                   400, "webhook_url_refused")
            self.assertIn("url", err["message"])
        self.assertEqual(len(self.hooks("alice")), before)
        # a worker without the allow setting refuses the allowed name too
        self.start_worker_env(drop=("PBIPORT_WEBHOOK_ALLOW_HOSTS",))
        self.assert_ping_refused(self.create("noallow", ["publish.failed"]), "noallow", "PBIPORT_WEBHOOK_ALLOW_HOSTS")
        # after DNS: a name that is not "localhost" but resolves to loopback is refused when the
        # delivery connects (a public name could point there just as well)
        other = None
        for name in (socket.gethostname(), "localhost.localdomain", "ip6-localhost"):
            try:
                if name != "localhost" and socket.gethostbyname(name).startswith("127."):
                    other = name
                    break
            except OSError:
                continue
        if other is None:
            print("SKIP: no host name other than localhost resolves to loopback here")
            return
        self.assert_ping_refused(self.create("dns", ["publish.failed"], host=other), "dns", "resolves to a loopback")

    def test_06_secret_never_in_answers_logs_or_clear_in_the_database(self):
        hook = self.create("quiet", ["refresh.failed"])
        made = self.create("quiet2", ["refresh.failed"], secret=None)
        generated = self.receiver.secrets["quiet2"]
        answers = [self.api("GET", "/api/webhooks"), self.api("GET", "/api/webhooks/" + hook["id"]),
                   self.api("PATCH", "/api/webhooks/" + hook["id"], {"secret": GIVEN_SECRET + "-2"}),
                   self.api("PATCH", "/api/webhooks/" + made["id"], {"events": ["import.failed"]}),
                   self.api("GET", "/api/webhooks/%s/deliveries" % hook["id"])]
        self.receiver.secrets["quiet"] = GIVEN_SECRET + "-2"
        self.start_worker()
        self.ping(hook["id"])
        d = self.wait_delivery(hook["id"])[0]
        self.assertEqual(d["state"], "delivered", d)
        self.assertTrue(self.receiver.got("quiet")[0]["signature_ok"])    # signed with the new secret
        answers.append(self.api("GET", "/api/webhooks/%s/deliveries" % hook["id"]))
        for status, _, doc in answers:
            self.assertIn(status, (200, 201), doc)
            text = json.dumps(doc)
            for secret in (GIVEN_SECRET, generated):
                self.assertNotIn(secret, text)
        # every log line: the FastCGI pool, the workers, the web server
        logs = []
        for folder in (self.stack.path("logs"), self.stack.path("web", "logs")):
            for name in os.listdir(folder):
                with open(os.path.join(folder, name), errors="replace") as f:
                    logs.append(f.read())
        self.assertTrue(any("webhook" in text for text in logs))
        for text in logs:
            for secret in (GIVEN_SECRET, generated):
                self.assertNotIn(secret, text)
        raw = self.stack.db_raw()
        for secret in (GIVEN_SECRET, GIVEN_SECRET + "-2", generated):
            self.assertNotIn(secret.encode(), raw)

    def test_07_members_403_other_organizations_404(self):
        hook = self.create("mine", ["publish.failed"])
        hid = hook["id"]
        calls = [("GET", "/api/webhooks", None), ("POST", "/api/webhooks", {"url": "https://h.example.com/x",
                                                                            "events": ["publish.failed"]}),
                 ("GET", "/api/webhooks/" + hid, None), ("PATCH", "/api/webhooks/" + hid, {"active": False}),
                 ("DELETE", "/api/webhooks/" + hid, None), ("GET", "/api/webhooks/%s/deliveries" % hid, None),
                 ("POST", "/api/webhooks/%s/test" % hid, None)]
        for method, path, body in calls:
            self.assertError(self.api(method, path, body, user="bob"), 403, "forbidden")
        for method, path, body in calls[2:]:
            self.assertError(self.api(method, path, body, user="carol"), 404, "not_found")
        self.assertEqual(self.hooks("carol"), [])
        status, _, got = self.api("GET", "/api/webhooks/" + hid)
        self.assertEqual((status, got["active"]), (200, True))    # untouched
        self.assertEqual(self.deliveries(hid), [])
        status, _, _ = self.stack.request("DELETE", "/api/webhooks/" + hid, token="alice")
        self.assertEqual(status, 204)
        self.assertError(self.api("GET", "/api/webhooks/" + hid), 404, "not_found")

    def test_08_bad_input_is_400_and_writes_nothing(self):
        url = self.receiver.url("bad")
        cases = [
            ({"events": ["publish.failed"]}, "bad_request", "url"),
            ({"url": url}, "bad_request", "events"),
            ({"url": 5, "events": ["publish.failed"]}, "bad_request", "url"),
            ({"url": "https://exa mple.com/", "events": ["publish.failed"]}, "bad_request", "url"),
            ({"url": url, "events": []}, "bad_request", "events"),
            ({"url": url, "events": "publish.failed"}, "bad_request", "events"),
            ({"url": url, "events": ["publish.failed", "publish.done"]}, "unknown_event", "publish.succeeded"),
            ({"url": url, "events": ["publish.failed"], "secret": "short"}, "bad_request", "secret"),
            ({"url": url, "events": ["publish.failed"], "secret": "has spaces in it, 24 chars"}, "bad_request",
             "secret"),
            ({"url": url, "events": ["publish.failed"], "colour": "red"}, "bad_request", "colour"),
            ("{\"url\": ", "bad_request", "line"),
        ]
        before = len(self.hooks("alice"))
        for body, code, word in cases:
            err = self.assertError(self.api("POST", "/api/webhooks", body), 400, code)
            self.assertIn(word, err["message"], body)
            self.assertNotIn("short", err["message"])    # a secret is never echoed
        self.assertEqual(len(self.hooks("alice")), before)
        # an update checks every field before it writes any
        hook = self.create("bad", ["publish.failed"])
        for body, code, word in [({"url": "https://other.example.com/x", "events": ["nope"]}, "unknown_event", "events"),
                                 ({"events": ["refresh.failed"], "active": "yes"}, "bad_request", "active"),
                                 ({"url": "https://127.0.0.1/x"}, "webhook_url_refused", "url"),
                                 ({}, "bad_request", "nothing to change")]:
            err = self.assertError(self.api("PATCH", "/api/webhooks/" + hook["id"], body), 400, code)
            self.assertIn(word, err["message"])
        status, _, got = self.api("GET", "/api/webhooks/" + hook["id"])
        self.assertEqual((got["url"], got["events"], got["active"]), (url, ["publish.failed"], True))
        self.assertEqual(got["updated_at"], hook["updated_at"])

    def test_09_refresh_and_import_failures(self):
        hook = self.create("ops", ["refresh.failed", "import.failed"])
        self.start_worker()
        published = self.publish_wait("analytics", {"workspace_id": WS_ADMIN, "name": "To refresh",
                                                    "connection_id": SF_CONNECTION})
        self.assertEqual(published["state"], "succeeded", published)
        model = published["result"]["semantic_model_id"]
        # Power BI runs the refresh, and it fails
        self.emu.control("POST", "refresh-plan", {"dataset_id": model, "outcome": "Failed", "duration_s": 1,
                                                  "error_code": "ModelRefreshFailed_CredentialsNotSpecified",
                                                  "error_description": "The credentials are invalid."})
        status, _, sub = self.api("POST", "/api/semantic-models/%s/refreshes"
                                  % published["result"]["consumer_data_product_id"], {})
        self.assertEqual(status, 202, sub)
        job = self.wait_job(sub["job_id"])
        self.assertEqual((job["state"], job["result"]["status"]), ("succeeded", "Failed"), job)
        rec = self.wait_for("refresh.failed", lambda: [r for r in self.receiver.got("ops")
                                                       if r["headers"]["x-pbiport-event"] == "refresh.failed"])[0]
        self.assertTrue(rec["signature_ok"])
        data = json.loads(rec["body"])["data"]
        self.assertEqual((data["job_id"], data["dataset_id"], data["workspace_id"], data["status"]),
                         (job["id"], model, WS_ADMIN, "Failed"))
        self.assertEqual(data["error"]["code"], "refresh_failed")
        self.assertIn("ModelRefreshFailed_CredentialsNotSpecified", data["error"]["message"])
        # an import whose service principal's secret is wrong fails for good
        status, _, integ = self.api("POST", "/api/integrations", {
            "name": "hooked import", "type": "powerbi", "tenant_id": TENANT, "client_id": APP["client_id"],
            "client_secret": "not-the-secret"})
        self.assertEqual(status, 201, integ)
        try:
            status, _, run = self.api("POST", "/api/integrations/%s/runs" % integ["id"])
            self.assertEqual(status, 202, run)
            job = self.wait_job(run["job_id"])
            self.assertEqual(job["state"], "failed", job)
            rec = self.wait_for("import.failed", lambda: [r for r in self.receiver.got("ops")
                                                          if r["headers"]["x-pbiport-event"] == "import.failed"])[0]
            data = json.loads(rec["body"])["data"]
            self.assertEqual((data["job_id"], data["integration_id"], data["integration_name"], data["run_id"]),
                             (job["id"], integ["id"], "hooked import", run["id"]))
            self.assertEqual((data["trigger"], data["error"]["code"]), ("manual", job["error"]["code"]))
            # the receiver answers before the worker records the delivery: wait for the record
            self.wait_for("both deliveries recorded",
                          lambda: len([d for d in self.deliveries(hook["id"]) if d["state"] == "delivered"]) == 2)
        finally:
            self.stack.request("DELETE", "/api/integrations/" + integ["id"], token="alice")


if __name__ == "__main__":
    harness.main()
