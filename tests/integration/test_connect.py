"""Connect Power BI through nginx + the emulator: organization settings, per-user consent
(connect -> emulator consent -> callback), the token service (refresh after the emulator
expires tokens, exactly one refresh for 20 parallel requests), disconnect, every refused case,
no secret in responses, logs or the SQLite file, and key rotation."""
import base64
import hashlib
import hmac
import json
import os
import time
import unittest
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import harness


_DEMO = harness.tenants_fixture()["tenants"][0]
TENANT = _DEMO["id"]
WEB_APP = _DEMO["apps"][0]
APP_ID, APP_SECRET, APP_NAME = WEB_APP["client_id"], WEB_APP["client_secret"], WEB_APP["display_name"]
ALICE_UPN = "alice@contoso.example"

KEY_OLD = "11" * 32
KEY_NEW = "22" * 32
REMEMBER_KEY = "33" * 32
PARALLEL = 20


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class ConnectPowerBI(harness.EmulatorStackTestCase):
    SERVER = "nginx"
    FCGI_PROCS = 8
    EMU_ENV = dict(APPLICATION_POWERBI_WEB_ENABLED="true", APPLICATION_ENCRYPTION_KEYS=KEY_OLD,
                   APPLICATION_SECURITY_REMEMBERME_KEY=REMEMBER_KEY)

    @classmethod
    def set_up_stack(cls):
        cls.responses = []   # every body pbiport sent, scanned for secrets at the end

    # ---- helpers -------------------------------------------------------------------------------
    def call(self, method, path, user, body=None):
        hdrs = {}
        if body is not None:
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        status, headers, data = self.stack.request(method, path, body=body, headers=hdrs, token=user)
        self.responses.append(data)
        doc = json.loads(data.decode()) if data and headers.get("content-type", "").startswith("application/json") \
            else None
        return status, headers, doc

    def configure(self):
        status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice",
                                   {"mode": "custom", "tenant_id": TENANT, "client_id": APP_ID,
                                    "client_secret": APP_SECRET})
        self.assertEqual(status, 200, doc)
        return doc

    def start_connect(self, user="alice", query="return_to=/after"):
        """GET /powerbi/connect -> the authorize URL (302 Location) and its parameters."""
        status, headers, doc = self.call("GET", "/powerbi/connect?" + query, user)
        self.assertEqual(status, 302, doc)
        loc = headers["location"]
        return loc, dict(urllib.parse.parse_qsl(urllib.parse.urlparse(loc).query))

    def consent(self, authorize_url):
        """The emulator's authorize step for alice (consented, so no page): the callback path."""
        r = self.emu.call("GET", authorize_url + "&login_hint=" + urllib.parse.quote(ALICE_UPN))
        self.assertEqual(r.status, 302, r)
        cb = urllib.parse.urlparse(r.header("Location"))
        self.assertEqual(cb.path, "/powerbi/callback")
        return cb.path + "?" + cb.query

    def connect(self, user="alice", return_to="/after"):
        loc, _ = self.start_connect(user, "return_to=" + urllib.parse.quote(return_to, safe=""))
        cb = self.consent(loc)
        status, headers, doc = self.call("GET", cb, user)
        self.assertEqual(status, 302, doc)
        self.assertEqual(headers["location"], return_to)
        return cb

    def connections(self, user="alice"):
        status, _, doc = self.call("GET", "/api/me/powerbi-connections", user)
        self.assertEqual(status, 200, doc)
        return doc["connections"]

    def refresh_count(self):
        return self.emu.state("tokens")["tokens"]["refresh_token_exchanges"]

    def db_ids(self, user):
        with self.stack.db() as db:
            return db.execute("SELECT org_id, id FROM users WHERE name = ?", (user,)).fetchone()

    def assert_app_changed(self):
        """alice's connection is listed as needing a reconnect because the app changed, and the
        check says the same."""
        conn = self.connections()[0]
        self.assertEqual(conn["status"], "needs_reconnect", conn)
        self.assertIn("app changed", conn["status_reason"])
        status, _, doc = self.call("POST", "/api/me/powerbi-connections/check", "alice")
        self.assertEqual((status, doc["error"]["code"]), (409, "needs_reconnect"), doc)
        self.assertIn(conn["status_reason"], doc["error"]["message"])

    def signed_state(self, nonce, exp, user):
        org_id, user_id = self.db_ids(user)
        msg = "pbiport-oauth-state-v1\n%s\n%d\n%s\n%s" % (nonce, exp, org_id, user_id)
        sig = b64url(hmac.new(bytes.fromhex(REMEMBER_KEY), msg.encode(), hashlib.sha256).digest())
        return "%s.%d.%s" % (nonce, exp, sig)

    # ---- the tests (run in name order; each configures what it needs) ---------------------------
    def test_01_settings_owner_only_and_secret_never_returned(self):
        self.assertError(self.stack.json("GET", "/api/settings/powerbi", token="bob"), 403, "forbidden")
        self.assertError(self.stack.json("PUT", "/api/settings/powerbi", token="bob",
                                         body=json.dumps({"mode": "custom"}),
                                         headers={"Content-Type": "application/json"}), 403, "forbidden")
        self.assertError(self.stack.json("POST", "/api/settings/powerbi/test", token="bob"), 403, "forbidden")
        status, _, doc = self.call("GET", "/api/settings/powerbi", "alice")
        self.assertEqual(status, 200, doc)
        self.assertIsNone(doc["mode"])
        # sso without PBIPORT_SSO_* on this server: a clear 400
        status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice", {"mode": "sso"})
        self.assertEqual(status, 400, doc)
        self.assertIn("PBIPORT_SSO_CLIENT_ID", doc["error"]["message"])
        # custom without a secret the first time
        status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice",
                                   {"mode": "custom", "tenant_id": TENANT, "client_id": APP_ID})
        self.assertEqual(status, 400, doc)
        self.assertIn("client_secret", doc["error"]["message"])
        status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice", {"mode": "custom", "bogus": 1})
        self.assertEqual(status, 400, doc)
        doc = self.configure()
        self.assertEqual(doc["mode"], "custom")
        self.assertEqual(doc["tenant_id"], TENANT)
        self.assertEqual(doc["client_id"], APP_ID)
        self.assertTrue(doc["has_client_secret"])
        self.assertTrue(doc["redirect_uri"].endswith("/powerbi/callback"), doc)
        self.assertNotIn("client_secret", doc)
        # an update without a secret keeps the stored one
        status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice",
                                   {"mode": "custom", "tenant_id": TENANT, "client_id": APP_ID})
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["has_client_secret"])

    def test_02_settings_test_resolves_name_or_says_why(self):
        self.configure()
        status, _, doc = self.call("POST", "/api/settings/powerbi/test", "alice")
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc, {"ok": True, "application_name": APP_NAME})
        status, _, doc = self.call("GET", "/api/settings/powerbi", "alice")
        self.assertEqual(doc["application_name"], APP_NAME)
        cases = [({"client_secret": "wrong-secret"}, "secret"),
                 ({"tenant_id": "00000000-0000-4000-8000-00000000dead"}, "tenant"),
                 ({"client_id": "00000000-0000-4000-8000-00000000beef"}, "client id")]
        for change, word in cases:
            body = {"mode": "custom", "tenant_id": TENANT, "client_id": APP_ID, "client_secret": APP_SECRET,
                    "verify": False}
            body.update(change)
            self.assertEqual(self.call("PUT", "/api/settings/powerbi", "alice", body)[0], 200)
            status, _, doc = self.call("POST", "/api/settings/powerbi/test", "alice")
            self.assertEqual(status, 200, doc)
            self.assertFalse(doc["ok"], doc)
            self.assertEqual(doc["code"], "bad_credentials", doc)
            self.assertIn(word, doc["reason"].lower(), doc)
        self.configure()

    def test_02b_save_verifies_and_names_the_app(self):
        """The name is there right after a save (no /test needed); credentials Entra refuses are
        not saved unless the request says verify: false."""
        self.configure()
        with self.stack.db() as db:
            db.execute("UPDATE powerbi_settings SET application_name = NULL")
        doc = self.configure()
        self.assertEqual(doc["application_name"], APP_NAME, doc)
        self.assertNotIn("warnings", doc)
        status, _, doc = self.call("GET", "/api/settings/powerbi", "alice")
        self.assertEqual(doc["application_name"], APP_NAME, doc)
        for change, word in (({"client_secret": "wrong-secret"}, "secret"),
                             ({"tenant_id": "00000000-0000-4000-8000-00000000dead"}, "tenant"),
                             ({"client_id": "00000000-0000-4000-8000-00000000beef"}, "client id")):
            body = {"mode": "custom", "tenant_id": TENANT, "client_id": APP_ID, "client_secret": APP_SECRET}
            body.update(change)
            status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice", body)
            self.assertEqual(status, 400, doc)
            self.assertEqual(doc["error"]["code"], "bad_credentials", doc)
            self.assertIn(word, doc["error"]["message"].lower(), doc)
            self.assertIn('"verify": false', doc["error"]["message"], doc)
            status, _, doc = self.call("GET", "/api/settings/powerbi", "alice")
            self.assertEqual((doc["tenant_id"], doc["client_id"], doc["application_name"]),
                             (TENANT, APP_ID, APP_NAME), "a refused save changed nothing")
        status, _, doc = self.call("POST", "/api/settings/powerbi/test", "alice")
        self.assertEqual(doc.get("ok"), True, doc)
        # verify must be a boolean; a client id is a GUID
        status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice",
                                   {"mode": "custom", "tenant_id": TENANT, "client_id": APP_ID, "verify": "no"})
        self.assertEqual((status, doc["error"]["code"]), (400, "bad_request"), doc)
        status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice",
                                   {"mode": "custom", "tenant_id": TENANT, "client_id": "my-app",
                                    "client_secret": "x", "verify": False})
        self.assertEqual((status, doc["error"]["code"]), (400, "bad_request"), doc)
        self.assertIn("GUID", doc["error"]["message"])
        # Entra unreachable (it asks to wait an hour): nothing saved, 503 saying how to store them anyway
        self.emu.control("POST", "faults", {"path_prefix": "/entra", "error_rate": {
            "status": 503, "percent": 100, "retry_after": 3600}})
        try:
            status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice",
                                       {"mode": "custom", "tenant_id": TENANT, "client_id": APP_ID,
                                        "client_secret": APP_SECRET})
        finally:
            self.emu.control("DELETE", "faults")
        self.assertEqual(status, 503, doc)
        self.assertEqual(doc["error"]["code"], "throttled")
        self.assertIn('"verify": false', doc["error"]["message"])
        self.configure()

    def test_02c_one_status_for_a_connection(self):
        """The list and the check say the same: a change of the organization's app is recorded
        on the connections made with the old one, with the reason."""
        self.configure()
        self.connect()
        self.assertEqual(self.connections()[0]["status"], "active")
        self.assertIsNone(self.connections()[0]["status_reason"])
        other = _DEMO["apps"][2]
        status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice",
                                   {"mode": "custom", "tenant_id": TENANT, "client_id": other["client_id"],
                                    "client_secret": other["client_secret"]})
        self.assertEqual(status, 200, doc)
        self.assert_app_changed()
        self.configure()
        self.assertEqual(self.connections()[0]["status"], "needs_reconnect", "switching back needs a reconnect too")
        self.connect()
        self.assertEqual(self.connections()[0]["status"], "active")

    def test_02d_server_app_change_shows_in_the_list(self):
        """sso mode: the deployment's sign-in app changes on the server (no save). The list says
        needs_reconnect before anything used the connection, as the check does."""
        sso = {"PBIPORT_SSO_TENANT_ID": TENANT, "PBIPORT_SSO_CLIENT_ID": APP_ID,
               "PBIPORT_SSO_CLIENT_SECRET": APP_SECRET}
        other = _DEMO["apps"][2]
        try:
            self.stack.restart_pool(sso)
            status, _, doc = self.call("PUT", "/api/settings/powerbi", "alice", {"mode": "sso"})
            self.assertEqual(status, 200, doc)
            self.assertEqual(doc["application_name"], APP_NAME, doc)
            self.connect()
            self.assertEqual(self.connections()[0]["status"], "active")
            self.stack.restart_pool({"PBIPORT_SSO_CLIENT_ID": other["client_id"],
                                     "PBIPORT_SSO_CLIENT_SECRET": other["client_secret"]})
            self.assert_app_changed()
        finally:
            self.stack.restart_pool(dict.fromkeys(sso))
        self.configure()
        self.connect()

    def test_03_full_flow_refresh_disconnect(self):
        self.configure()
        loc, q = self.start_connect()
        self.assertTrue(loc.startswith(self.emu.url + "/entra/" + TENANT + "/oauth2/v2.0/authorize?"), loc)
        self.assertEqual(q["code_challenge_method"], "S256")
        self.assertEqual(q["client_id"], APP_ID)
        for scope in ("Workspace.Read.All", "Dataset.ReadWrite.All", "Item.ReadWrite.All",
                      "Connection.ReadWrite.All", "offline_access"):
            self.assertIn(scope, q["scope"])
        cb = self.consent(loc)
        status, headers, doc = self.call("GET", cb, "alice")
        self.assertEqual(status, 302, doc)
        self.assertEqual(headers["location"], "/after")
        conns = self.connections()
        self.assertEqual(len(conns), 1, conns)
        c = conns[0]
        self.assertEqual(c["status"], "active")
        self.assertEqual(c["tenant_id"], TENANT)
        self.assertTrue(any(s.endswith("Dataset.ReadWrite.All") for s in c["scopes"]), c)
        for key in c:
            self.assertNotIn("token", key)
        # the token service works as is, then refreshes once after the emulator expires tokens
        before = self.refresh_count()
        status, _, doc = self.call("POST", "/api/me/powerbi-connections/check", "alice")
        self.assertEqual(status, 200, doc)
        self.assertEqual(self.refresh_count(), before)
        self.emu.control("POST", "faults", {"expire_tokens": True})
        self.emu.control("DELETE", "faults")
        status, _, doc = self.call("POST", "/api/me/powerbi-connections/check", "alice")
        self.assertEqual(status, 200, doc)
        self.assertEqual(self.refresh_count(), before + 1)
        self.assertEqual(self.connections()[0]["id"], c["id"])
        # connecting again replaces the connection (one per tenant)
        self.connect()
        conns = self.connections()
        self.assertEqual(len(conns), 1, conns)
        self.assertNotEqual(conns[0]["id"], c["id"])
        # disconnect: gone, and the token service says so
        status, _, _ = self.call("DELETE", "/api/me/powerbi-connections/" + conns[0]["id"], "alice")
        self.assertEqual(status, 204)
        self.assertEqual(self.connections(), [])
        status, _, doc = self.call("POST", "/api/me/powerbi-connections/check", "alice")
        self.assertEqual(status, 409, doc)
        self.assertEqual(doc["error"]["code"], "not_connected")

    def test_04_twenty_parallel_requests_refresh_once(self):
        self.configure()
        self.connect()
        self.assertEqual(self.call("POST", "/api/me/powerbi-connections/check", "alice")[0], 200)
        self.emu.control("POST", "faults", {"expire_tokens": True})
        self.emu.control("DELETE", "faults")
        # a slow token endpoint keeps the first refresh in flight while the other requests arrive
        self.emu.control("POST", "faults", {"path_prefix": "/entra", "latency_ms": 300})
        self.addCleanup(self.emu.control, "DELETE", "faults")
        before = self.refresh_count()
        token = self.stack.tokens["alice"]

        def one(_):
            return harness.http_request(self.stack.port, "POST", "/api/me/powerbi-connections/check",
                                        headers={"Authorization": "Bearer " + token}, timeout=120)

        with ThreadPoolExecutor(PARALLEL) as pool:
            results = list(pool.map(one, range(PARALLEL)))
        for status, _, body in results:
            self.responses.append(body)
            self.assertEqual(status, 200, body[:300])
        self.assertEqual(self.refresh_count(), before + 1)

    def test_05_refused_states(self):
        self.configure()
        # tampered: one character of the signature changed
        loc, q = self.start_connect()
        st = q["state"]
        bad = st[:-1] + ("A" if st[-1] != "A" else "B")
        status, _, doc = self.call("GET", "/powerbi/callback?code=x&state=" + urllib.parse.quote(bad), "alice")
        self.assertEqual(status, 400, doc)
        self.assertEqual(doc["error"]["code"], "bad_request")
        self.assertIn("altered", doc["error"]["message"])
        # replayed: the genuine callback works once
        cb = self.consent(loc)
        self.assertEqual(self.call("GET", cb, "alice")[0], 302)
        status, _, doc = self.call("GET", cb, "alice")
        self.assertEqual(status, 400, doc)
        self.assertIn("already used", doc["error"]["message"])
        # expired: a correctly signed state whose 10 minutes are over
        _, q = self.start_connect()
        nonce = q["state"].split(".")[0]
        old = self.signed_state(nonce, int(time.time()) - 1, "alice")
        status, _, doc = self.call("GET", "/powerbi/callback?code=x&state=" + urllib.parse.quote(old), "alice")
        self.assertEqual(status, 400, doc)
        self.assertIn("expired", doc["error"]["message"])
        # another user's state (bob started it, alice finishes it)
        loc, q = self.start_connect("bob")
        status, _, doc = self.call("GET", "/powerbi/callback?code=x&state=" + urllib.parse.quote(q["state"]), "alice")
        self.assertEqual(status, 400, doc)
        self.assertIn("another user", doc["error"]["message"])
        # ... and it stays unused for bob? No: only bob can finish it; carol (other org) cannot either
        status, _, doc = self.call("GET", "/powerbi/callback?code=x&state=" + urllib.parse.quote(q["state"]), "carol")
        self.assertEqual(status, 400, doc)
        # no state at all
        status, _, doc = self.call("GET", "/powerbi/callback?code=x", "alice")
        self.assertEqual(status, 400, doc)

    def test_06_missing_pkce_verifier(self):
        self.configure()
        conns_before = self.connections()
        # the code alone is useless: the emulator (like Entra) refuses it without the verifier
        loc, q = self.start_connect()
        cb = self.consent(loc)
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(cb).query))["code"]
        r = self.emu.call("POST", "/entra/%s/oauth2/v2.0/token" % TENANT,
                          form={"grant_type": "authorization_code", "client_id": APP_ID, "client_secret": APP_SECRET,
                                "code": code, "redirect_uri": q["redirect_uri"]})
        self.assertEqual(r.status, 400, r)
        self.assertIn(50148, r.json["error_codes"])
        # a sign-in row without its verifier is refused by pbiport and stores nothing
        loc, q = self.start_connect()
        nonce = q["state"].split(".")[0]
        with self.stack.db() as db:
            db.execute("UPDATE oauth_states SET code_verifier_sealed = '' WHERE nonce = ?", (nonce,))
        cb = self.consent(loc)
        status, _, doc = self.call("GET", cb, "alice")
        self.assertEqual(status, 400, doc)
        self.assertIn("PKCE", doc["error"]["message"])
        self.assertEqual([c["id"] for c in self.connections()], [c["id"] for c in conns_before])

    def test_07_return_to_only_local(self):
        self.configure()
        for bad in ("https://evil.example", "//evil", "/\\evil", "\\\\evil", "evil", "/ok\r\nX: y", "/a\\b"):
            status, _, doc = self.call("GET", "/powerbi/connect?return_to=" + urllib.parse.quote(bad, safe=""),
                                       "alice")
            self.assertEqual(status, 400, (bad, doc))
            self.assertEqual(doc["error"]["code"], "bad_request", bad)
            self.assertIn("?return_to=", doc["error"]["message"])
        self.start_connect(query="return_to=%2Fdata-products%2Fx%3Ftab%3Dpbi")

    def test_08_consent_declined_is_a_clear_400(self):
        self.configure()
        n = len(self.connections())
        _, q = self.start_connect(query="return_to=/after&prompt=consent")
        self.assertEqual(q["prompt"], "consent")
        # the consent page's Cancel button
        form = dict(q, login=ALICE_UPN, consent="deny")
        r = self.emu.call("POST", "/entra/%s/oauth2/v2.0/authorize" % TENANT, form=form)
        self.assertEqual(r.status, 302, r)
        cb = urllib.parse.urlparse(r.header("Location"))
        status, _, doc = self.call("GET", cb.path + "?" + cb.query, "alice")
        self.assertEqual(status, 400, doc)
        self.assertEqual(doc["error"]["code"], "consent_declined")
        self.assertEqual(len(self.connections()), n)

    def test_09_other_users_and_orgs_connections_are_404(self):
        self.configure()
        self.connect()
        cid = self.connections()[0]["id"]
        for user in ("bob", "carol"):
            self.assertEqual(self.connections(user), [])
            status, _, doc = self.call("DELETE", "/api/me/powerbi-connections/" + cid, user)
            self.assertEqual(status, 404, doc)
        self.assertEqual(self.connections()[0]["id"], cid)
        # carol's organization has no settings: connect says so
        status, _, doc = self.call("GET", "/powerbi/connect", "carol")
        self.assertEqual(status, 409, doc)
        self.assertEqual(doc["error"]["code"], "not_configured")

    def test_10_invalid_grant_needs_reconnect(self):
        self.configure()
        self.connect()
        self.emu.control("POST", "faults", {"expire_tokens": True, "expire_refresh_tokens": True})
        self.emu.control("DELETE", "faults")
        status, _, doc = self.call("POST", "/api/me/powerbi-connections/check", "alice")
        self.assertEqual(status, 409, doc)
        self.assertEqual(doc["error"]["code"], "needs_reconnect")
        self.assertIn("reconnect Power BI", doc["error"]["message"])
        conn = self.connections()[0]
        self.assertEqual(conn["status"], "needs_reconnect")
        self.assertIn(conn["status_reason"], doc["error"]["message"])
        self.connect()
        self.assertEqual(self.connections()[0]["status"], "active")
        self.assertEqual(self.call("POST", "/api/me/powerbi-connections/check", "alice")[0], 200)

    def test_11_no_secret_in_responses_logs_or_database(self):
        self.configure()
        self.connect()
        self.assertEqual(self.call("POST", "/api/me/powerbi-connections/check", "alice")[0], 200)
        secrets = [APP_SECRET.encode(), b"emu_at_", b"emu_rt_", b"emu_code_"]
        for body in self.responses:
            for s in secrets:
                self.assertNotIn(s, body)
        logs = []
        for rel in ("logs", os.path.join("web", "logs")):
            d = self.stack.path(rel)
            logs += [os.path.join(d, n) for n in os.listdir(d) if os.path.isfile(os.path.join(d, n))]
        for p in logs:
            with open(p, "rb") as f:
                data = f.read()
            for s in secrets + [b"code_verifier"]:
                self.assertNotIn(s, data, p)
        # the database (and its write-ahead log) holds only sealed values
        data = self.stack.db_raw()
        for s in secrets:
            self.assertNotIn(s, data)
        with self.stack.db() as db:
            row = db.execute("SELECT access_token_sealed, refresh_token_sealed FROM user_datasource_connection").fetchone()
            self.assertTrue(row[0].startswith("v1:") and row[1].startswith("v1:"), row)
            sealed = db.execute("SELECT client_secret_sealed FROM powerbi_settings").fetchone()[0]
            self.assertTrue(sealed.startswith("v1:"))

    def test_12_rotate_keys_then_drop_old_key(self):
        self.configure()
        self.connect()
        self.assertEqual(self.call("POST", "/api/me/powerbi-connections/check", "alice")[0], 200)
        # a sign-in in progress survives the rotation too
        loc, _ = self.start_connect()
        env = dict(self.stack.extra_env)
        self.stack.extra_env["APPLICATION_ENCRYPTION_KEYS"] = KEY_NEW + "," + KEY_OLD
        try:
            _, _, err = self.stack.cli("rotate-keys")
        finally:
            self.stack.extra_env.clear()
            self.stack.extra_env.update(env)
        self.assertIn("re-sealed", err)
        self.stack.restart_pool({"APPLICATION_ENCRYPTION_KEYS": KEY_NEW})
        try:
            status, _, doc = self.call("POST", "/api/settings/powerbi/test", "alice")
            self.assertEqual(doc.get("ok"), True, doc)
            self.assertEqual(self.call("POST", "/api/me/powerbi-connections/check", "alice")[0], 200)
            # the token service can refresh (opens the refresh token) under the new key alone
            self.emu.control("POST", "faults", {"expire_tokens": True})
            self.emu.control("DELETE", "faults")
            self.assertEqual(self.call("POST", "/api/me/powerbi-connections/check", "alice")[0], 200)
            cb = self.consent(loc)
            self.assertEqual(self.call("GET", cb, "alice")[0], 302)
            self.assertEqual(self.call("POST", "/api/me/powerbi-connections/check", "alice")[0], 200)
        finally:
            self.stack.restart_pool({"APPLICATION_ENCRYPTION_KEYS": KEY_OLD})
        # the old key alone no longer opens anything: the rotation really re-sealed
        status, _, doc = self.call("POST", "/api/settings/powerbi/test", "alice")
        self.assertFalse(doc.get("ok"), doc)

    def test_13_callback_failures_say_whose(self):
        """Entra's other redirect errors are classified like any Microsoft failure, and a code
        exchange Entra refuses for the organization's app names the organization's settings (msapi's
        own words name no one's settings)."""
        self.configure()
        n = len(self.connections())
        _, q = self.start_connect()
        status, headers, doc = self.call("GET", "/powerbi/callback?error=temporarily_unavailable&error_description="
                                         "try+later&state=" + urllib.parse.quote(q["state"]), "alice")
        self.assertEqual((status, doc["error"]["code"]), (503, "unavailable"), doc)
        self.assertIn("temporarily_unavailable: try later", doc["error"]["message"])
        # the saved secret is wrong (stored unchecked): the exchange is refused, nothing stored
        body = {"mode": "custom", "tenant_id": TENANT, "client_id": APP_ID, "client_secret": "wrong-secret",
                "verify": False}
        self.assertEqual(self.call("PUT", "/api/settings/powerbi", "alice", body)[0], 200)
        loc, _ = self.start_connect()
        status, _, doc = self.call("GET", self.consent(loc), "alice")
        self.assertEqual((status, doc["error"]["code"]), (400, "bad_credentials"), doc)
        self.assertTrue(doc["error"]["message"].startswith("the organization's Power BI settings: Entra refused the "
                                                           "client secret"), doc)
        self.assertEqual(len(self.connections()), n)
        self.configure()


class FeatureDisabled(harness.StackTestCase):
    """Without APPLICATION_POWERBI_WEB_ENABLED the whole feature looks absent."""
    SERVER = "nginx"
    FCGI_PROCS = 1

    def test_routes_answer_feature_disabled(self):
        for method, path in (("GET", "/api/settings/powerbi"), ("POST", "/api/settings/powerbi/test"),
                             ("GET", "/powerbi/connect"), ("GET", "/powerbi/callback?code=x&state=y"),
                             ("GET", "/api/me/powerbi-connections"),
                             ("DELETE", "/api/me/powerbi-connections/abc")):
            self.assertError(self.stack.json(method, path, token="alice"), 404, "feature_disabled")


class StartupRefusal(unittest.TestCase):
    """With the feature on, start-up refuses to run without valid keys."""

    def test_missing_or_bad_keys(self):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PBIPORT_DB": "/nonexistent/pbiport.db",
               "APPLICATION_POWERBI_WEB_ENABLED": "true"}
        import subprocess
        for extra, word in (({}, "APPLICATION_ENCRYPTION_KEYS"),
                            ({"APPLICATION_ENCRYPTION_KEYS": "zz"}, "APPLICATION_ENCRYPTION_KEYS"),
                            ({"APPLICATION_ENCRYPTION_KEYS": KEY_OLD}, "APPLICATION_SECURITY_REMEMBERME_KEY")):
            res = subprocess.run([harness.pbiport_bin(), "migrate"], env=dict(env, **extra), capture_output=True,
                                 timeout=30)
            self.assertNotEqual(res.returncode, 0)
            self.assertIn(word, res.stderr.decode(), extra)


if __name__ == "__main__":
    harness.main()
