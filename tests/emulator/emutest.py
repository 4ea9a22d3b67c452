"""Test helper: starts the emulator on port 0 in a temp dir and talks to it over verified TLS."""

import base64
import hashlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "tenants")
sys.path.insert(0, HERE)

TENANT = "11111111-1111-1111-1111-111111111111"
WEB_APP, WEB_SECRET = "aaaaaaaa-0000-0000-0000-000000000001", "web-secret"
SCAN_APP, SCAN_SECRET = "aaaaaaaa-0000-0000-0000-000000000002", "scan-secret"
PUSH_APP, PUSH_SECRET = "aaaaaaaa-0000-0000-0000-000000000003", "push-secret"
CONSENTED_APP, CONSENTED_SECRET = "aaaaaaaa-0000-0000-0000-000000000004", "consented-secret"
WS_SALES, WS_MARKETING, WS_FINANCE = ("22222222-0000-0000-0000-00000000000%d" % i for i in (1, 2, 3))
WS_PERSONAL = "22222222-0000-0000-0000-000000000009"
MODEL_SALES, MODEL_LAKE, MODEL_UNREFRESHED = ("33333333-0000-0000-0000-00000000000%d" % i for i in (1, 2, 3))
CONN_SF = "cccccccc-0000-0000-0000-000000000001"
PBI = "https://analysis.windows.net/powerbi/api/"
REDIRECT = "https://app.test/cb"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


class Emulator:
    def __init__(self, fixture="test.json", token_lifetime=3600, rate_scale=1.0, latency_ms=0):
        self.dir = tempfile.mkdtemp(prefix="pbiport-emu-")
        args = [sys.executable, os.path.join(HERE, "server.py"), "--state-dir", self.dir, "--port", "0",
                "--token-lifetime", str(token_lifetime), "--rate-scale", str(rate_scale),
                "--latency-ms", str(latency_ms)]
        if fixture:
            args += ["--fixture", os.path.join(FIXTURES, fixture)]
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError("emulator did not start: %r" % line)
        self.url = line[6:]
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.pem"))
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.ctx), NoRedirect)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stderr_text(self):
        self.log.flush()
        with open(os.path.join(self.dir, "stderr.log")) as f:
            return f.read()

    # ---- raw calls -------------------------------------------------------------------------
    def call(self, method, path, body=None, token=None, headers=None, form=None, raw=None):
        """path: '/powerbi/v1.0/myorg/groups' or a full URL."""
        url = path if path.startswith("https://") else self.url + path
        h = dict(headers or {})
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif method in ("POST", "PUT", "PATCH"):
            data = b""
        if token:
            h["Authorization"] = "Bearer " + token
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with self.opener.open(req, timeout=30) as r:
                return Resp(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Resp(e.code, e.headers, e.read())

    def control(self, method, name, body=None):
        r = self.call(method, "/_emulator/" + name, body=body)
        if r.status != 200:
            raise AssertionError("control %s %s -> %r" % (method, name, r))
        return r.json

    def state(self, sections=""):
        return self.control("GET", "state?parts=0&sections=" + sections)

    # ---- tokens ------------------------------------------------------------------------------
    def sp_token(self, client_id=SCAN_APP, secret=SCAN_SECRET, scope=PBI + ".default", tenant=TENANT):
        r = self.call("POST", "/entra/%s/oauth2/v2.0/token" % tenant,
                      form={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
                            "scope": scope})
        assert r.status == 200, r
        return r.json["access_token"]

    def authorize(self, params, tenant=TENANT):
        return self.call("GET", "/entra/%s/oauth2/v2.0/authorize?%s" % (tenant, urllib.parse.urlencode(params)))

    def user_tokens(self, upn="alice@contoso.test", scopes=None, client_id=WEB_APP, secret=WEB_SECRET,
                    tenant=TENANT):
        """Auth-code + PKCE flow with login_hint (consent already in the fixture). Returns token JSON."""
        scopes = scopes or ["offline_access", PBI + "Dataset.ReadWrite.All", PBI + "Workspace.Read.All",
                            PBI + "Item.ReadWrite.All", PBI + "Connection.ReadWrite.All", PBI + "Report.Read.All",
                            PBI + "Dashboard.Read.All"]
        verifier, challenge = pkce()
        r = self.authorize({"client_id": client_id, "response_type": "code", "redirect_uri": REDIRECT,
                            "scope": " ".join(scopes), "state": "st", "login_hint": upn,
                            "code_challenge": challenge, "code_challenge_method": "S256"}, tenant)
        assert r.status == 302, r
        q = urllib.parse.parse_qs(urllib.parse.urlparse(r.header("Location")).query)
        r = self.call("POST", "/entra/%s/oauth2/v2.0/token" % tenant,
                      form={"grant_type": "authorization_code", "client_id": client_id, "client_secret": secret,
                            "code": q["code"][0], "redirect_uri": REDIRECT, "code_verifier": verifier})
        assert r.status == 200, r
        return r.json


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class EmuTestCase(unittest.TestCase):
    """One emulator per test class; every test starts from a reset."""
    fixture = "test.json"
    token_lifetime = 3600
    rate_scale = 1.0
    latency_ms = 0

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(cls.fixture, cls.token_lifetime, cls.rate_scale, cls.latency_ms)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.emu.control("POST", "reset")

    def assertFabricError(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json["errorCode"], code, r)
        self.assertIn("requestId", r.json)
        self.assertIn("message", r.json)

    def assertPbiError(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json["error"]["code"], code, r)

    def assertEntraError(self, r, status, error, aadsts):
        self.assertEqual(r.status, status, r)
        j = r.json
        self.assertEqual(j["error"], error, r)
        self.assertIn(aadsts, j["error_codes"], r)
        self.assertTrue(j["error_description"].startswith("AADSTS%d:" % aadsts), r)
        for k in ("timestamp", "trace_id", "correlation_id", "error_uri"):
            self.assertIn(k, j)


def main():
    unittest.main(verbosity=2)
