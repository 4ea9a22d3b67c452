"""Signing in with Microsoft through nginx + the emulator (OpenID Connect, authorization code + PKCE):
the full sign-in and its session cookie, first sign-in by e-mail then pinned to the object id, unknown
people refused unless their tenant may sign up, every ID token check (forged signature, unknown key,
expired, not yet valid, audience, issuer, tenant, alg none, HS256, replayed code / state / nonce),
tampered cookies, idle and absolute expiry with the once-a-minute renewal, revoking from the API,
sign-out, a key rotation picked up at most once a minute, cookie attributes, one consent for signing
in and Power BI, and REMOTE_USER and Bearer tokens working beside it all."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import time
import urllib.parse

import harness


with open(os.path.join(harness.ROOT, "tests", "fixtures", "tenants", "demo.json"), encoding="utf-8") as _f:
    _DEMO = json.load(_f)["tenants"][0]
TENANT = _DEMO["id"]
APP_ID, APP_SECRET = _DEMO["apps"][0]["client_id"], _DEMO["apps"][0]["client_secret"]
ALICE_UPN, BOB_UPN, ADA_UPN = "alice@contoso.example", "bob@contoso.example", "admin@contoso.example"
REMEMBER_KEY = "44" * 32
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SSO = {"PBIPORT_SSO_TENANT_ID": TENANT, "PBIPORT_SSO_CLIENT_ID": APP_ID, "PBIPORT_SSO_CLIENT_SECRET": APP_SECRET}
PBI_SCOPE = "https://analysis.windows.net/powerbi/api/Dataset.ReadWrite.All"


def cookie_attrs(set_cookie):
    """'name=value; Path=/; HttpOnly' -> (name, value, {attr lower: value or True})."""
    parts = [p.strip() for p in set_cookie.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        attrs[k.lower()] = v if eq else True
    return name, value, attrs


class SignIn(harness.EmulatorStackTestCase):
    SERVER = "nginx"
    FCGI_PROCS = 2
    EMU_ENV = dict(SSO, APPLICATION_POWERBI_WEB_ENABLED="true", APPLICATION_ENCRYPTION_KEYS="55" * 32,
                   APPLICATION_SECURITY_REMEMBERME_KEY=REMEMBER_KEY)

    @classmethod
    def set_up_stack(cls):
        # the e-mail a first sign-in is matched by; carol has none
        cls.stack.cli("user", "email", "alice", ALICE_UPN.upper())
        cls.stack.cli("user", "email", "bob", BOB_UPN)
        cls.responses = []

    # ---- HTTP with cookies --------------------------------------------------------------------
    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.stack.port

    def http(self, method, path, cookies=None, headers=None, token=None, body=None):
        """(status, [(name lower, value)], body bytes): every header kept (several Set-Cookie)."""
        hdrs = {"User-Agent": FIREFOX}
        hdrs.update(headers or {})
        if cookies:
            hdrs["Cookie"] = "; ".join("%s=%s" % kv for kv in cookies.items())
        if token:
            hdrs["Authorization"] = "Bearer " + self.stack.tokens.get(token, token)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            pairs = [(k.lower(), v) for k, v in resp.getheaders()]
        finally:
            conn.close()
        self.responses.append(data)
        return resp.status, pairs, data

    def jcall(self, method, path, cookies=None, headers=None, token=None, body=None):
        status, pairs, data = self.http(method, path, cookies, headers, token, body)
        doc = json.loads(data.decode()) if data and dict(pairs).get("content-type", "").startswith(
            "application/json") else None
        return status, pairs, doc

    @staticmethod
    def set_cookies(pairs):
        return {cookie_attrs(v)[0]: cookie_attrs(v) for k, v in pairs if k == "set-cookie"}

    # ---- the sign-in, step by step -----------------------------------------------------------
    def start(self, return_to="/after", query=""):
        """GET /signin -> the authorize URL and the browser cookie."""
        status, pairs, data = self.http("GET", "/signin?return_to=%s%s" % (urllib.parse.quote(return_to, safe=""),
                                                                          query))
        self.assertEqual(status, 302, data)
        loc = dict(pairs)["location"]
        self.assertTrue(loc.startswith(self.emu.url + "/entra/%s/oauth2/v2.0/authorize?" % TENANT), loc)
        name, value, attrs = self.set_cookies(pairs)["pbiport_signin"]
        self.assertEqual(attrs["path"], "/signin")
        self.assertIn("httponly", attrs)
        return loc, value

    def at_microsoft(self, authorize_url, upn=ALICE_UPN):
        """The emulator's authorize step for a consented user: the callback path and query."""
        r = self.emu.call("GET", authorize_url + "&login_hint=" + urllib.parse.quote(upn))
        self.assertEqual(r.status, 302, r)
        cb = urllib.parse.urlparse(r.header("Location"))
        self.assertEqual(cb.path, "/signin/callback")
        return cb.path + "?" + cb.query

    def callback(self, path, browser, headers=None):
        return self.jcall("GET", path, cookies={"pbiport_signin": browser} if browser else None, headers=headers)

    def sign_in(self, upn=ALICE_UPN, return_to="/after"):
        """A whole sign-in: the session cookie's value."""
        loc, browser = self.start(return_to)
        status, pairs, doc = self.callback(self.at_microsoft(loc, upn), browser)
        self.assertEqual(status, 302, doc)
        self.assertEqual(dict(pairs)["location"], return_to)
        return self.set_cookies(pairs)["pbiport_session"][1]

    def refused(self, upn, code, word=None, status=400, fault=None):
        """A sign-in that must fail with code (and word in its message); nothing signs in."""
        before = self.count("sessions")
        if fault:
            self.emu.control("POST", "id-token-fault", {"kind": fault})
        loc, browser = self.start()
        got, pairs, doc = self.callback(self.at_microsoft(loc, upn), browser)
        self.assertEqual((got, doc and doc["error"]["code"]), (status, code), doc)
        if word:
            self.assertIn(word, doc["error"]["message"])
        self.assertNotIn("pbiport_session", self.set_cookies(pairs))
        self.assertEqual(self.count("sessions"), before)
        return doc["error"]["message"]

    def me(self, cookie, **kw):
        return self.jcall("GET", "/api/me/sessions", cookies={"pbiport_session": cookie}, **kw)

    # ---- the database ------------------------------------------------------------------------
    def sql(self, query, args=()):
        with self.stack.db() as db:
            rows = db.execute(query, args).fetchall()
        return rows

    def count(self, table):
        return self.sql("SELECT count(*) FROM %s" % table)[0][0]

    def backdate_keys(self, seconds=120):
        """The cached keys look fetched `seconds` ago (a refetch is allowed once a minute)."""
        past = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - seconds))
        self.sql("UPDATE oidc_providers SET fetched_at = ?", (past,))

    def session_row(self, cookie):
        secret = cookie.split(".")[0]
        return self.sql("SELECT id, last_seen_at, expires_at FROM sessions WHERE token_hash = ?",
                        (hashlib.sha256(secret.encode()).hexdigest(),))[0]

    def keys_read(self):
        return self.emu.state("tokens")["tokens"]["jwks_reads"]

    # ---- the tests (in name order: later ones rely on alice being pinned) --------------------
    def test_01_full_sign_in_and_cookie(self):
        loc, browser = self.start("/data-products?x=1")
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(loc).query))
        self.assertEqual(q["scope"], "openid profile email")   # no organization uses sso for Power BI yet
        self.assertEqual(q["code_challenge_method"], "S256")
        self.assertEqual(q["redirect_uri"], self.origin + "/signin/callback")
        # the nonce is the hash of the browser's cookie
        self.assertEqual(q["nonce"], base64.urlsafe_b64encode(hashlib.sha256(browser.encode()).digest())
                         .rstrip(b"=").decode())
        status, pairs, doc = self.callback(self.at_microsoft(loc), browser)
        self.assertEqual(status, 302, doc)
        self.assertEqual(dict(pairs)["location"], "/data-products?x=1")
        cookies = self.set_cookies(pairs)
        name, value, attrs = cookies["pbiport_session"]
        self.assertEqual(attrs["path"], "/")
        self.assertEqual(attrs["samesite"], "Lax")
        self.assertIn("httponly", attrs)
        self.assertNotIn("secure", attrs)   # plain http here; see test_90
        self.assertEqual(int(attrs["max-age"]), 7 * 86400)
        self.assertEqual(cookies["pbiport_signin"][1], "")   # the browser secret is dropped
        self.assertEqual(cookies["pbiport_signin"][2]["max-age"], "0")
        # signed in: the API answers as alice
        status, _, doc = self.me(value)
        self.assertEqual(status, 200, doc)
        self.assertEqual(len(doc["sessions"]), 1)
        s = doc["sessions"][0]
        self.assertTrue(s["current"])
        self.assertEqual(s["user_agent"], "Firefox on Linux")
        for k in ("id", "created_at", "last_seen_at", "expires_at", "idle_expires_at"):
            self.assertIn(k, s)
        status, _, doc = self.jcall("GET", "/api/settings/powerbi", cookies={"pbiport_session": value})
        self.assertEqual(status, 200, doc)   # alice is an owner
        # pinned to her Entra account; her e-mail was matched case-insensitively
        oid = self.emu.state("tenants")["tenants"][0]["users"][0]["object_id"]
        self.assertEqual(self.sql("SELECT entra_tenant_id, entra_object_id, email FROM users WHERE name = 'alice'")[0],
                         (TENANT, oid, ALICE_UPN))
        # the secret is stored only as its hash
        self.assertEqual(self.sql("SELECT count(*) FROM sessions WHERE token_hash LIKE ?",
                                  ("%" + value.split(".")[0] + "%",))[0][0], 0)

    def test_02_web_server_sign_in_and_tokens_still_work(self):
        cookie = self.sign_in()
        self.assertEqual(self.stack.json("GET", "/api/data-products", basic="bob")[0], 200)
        self.assertEqual(self.stack.json("GET", "/api/data-products", token="carol")[0], 200)
        # Bearer first: bob's token with alice's cookie is bob
        status, _, doc = self.me(cookie, token="bob")
        self.assertEqual((status, doc["sessions"]), (200, []))
        # a wrong basic password is still refused by the web server
        self.assertEqual(self.stack.json("GET", "/api/data-products", basic=("alice", "wrong"))[0], 401)

    def test_03_renamed_email_still_signs_in(self):
        self.sign_in()   # pinned
        self.emu.control("POST", "user", {"upn": ALICE_UPN, "new_upn": "alice.smith@contoso.example",
                                          "email": "alice.smith@contoso.example"})
        try:
            cookie = self.sign_in("alice.smith@contoso.example")
            status, _, doc = self.jcall("GET", "/api/settings/powerbi", cookies={"pbiport_session": cookie})
            self.assertEqual(status, 200, doc)
            self.assertEqual(self.sql("SELECT email FROM users WHERE name = 'alice'")[0][0], ALICE_UPN)
        finally:
            self.emu.control("POST", "user", {"upn": "alice.smith@contoso.example", "new_upn": ALICE_UPN,
                                              "email": None})

    def test_04_unknown_person_refused_with_a_page_or_json(self):
        msg = self.refused(ADA_UPN, "signin_unknown_user", ADA_UPN, status=403)
        self.assertIn("owner", msg)
        # a browser gets a page saying why
        loc, browser = self.start()
        status, pairs, data = self.http("GET", self.at_microsoft(loc, ADA_UPN), cookies={"pbiport_signin": browser},
                                        headers={"Accept": "text/html,application/xhtml+xml"})
        self.assertEqual(status, 403)
        hdrs = dict(pairs)
        self.assertTrue(hdrs["content-type"].startswith("text/html"), hdrs)
        self.assertIn("frame-ancestors 'none'", hdrs["content-security-policy"])
        self.assertIn(b"signin_unknown_user", data)
        self.assertIn(b"admin@contoso.example", data)
        self.assertEqual(self.sql("SELECT count(*) FROM users WHERE name = ?", (ADA_UPN,))[0][0], 0)

    def test_05_self_sign_up_for_the_tenant(self):
        self.assertError(self.stack.json("PUT", "/api/settings/signin", token="bob", body='{"self_signup":true}',
                                         headers={"Content-Type": "application/json"}), 403, "forbidden")
        status, _, doc = self.stack.json("GET", "/api/settings/signin", token="alice")
        self.assertEqual((status, doc["self_signup"], doc["sso_configured"]), (200, False, True), doc)
        self.assertEqual(doc["redirect_uri"], self.origin + "/signin/callback")
        self.assertError(self.stack.json("PUT", "/api/settings/signin", token="alice",
                                         body='{"self_signup":true,"tenant_id":"contoso.example"}',
                                         headers={"Content-Type": "application/json"}), 400)
        self.assertError(self.stack.json("PUT", "/api/settings/signin", token="alice",
                                         body='{"self_signup":true,"bogus":1}',
                                         headers={"Content-Type": "application/json"}), 400)
        # the deployment's tenant by default
        status, _, doc = self.stack.json("PUT", "/api/settings/signin", token="alice", body='{"self_signup":true}',
                                         headers={"Content-Type": "application/json"})
        self.assertEqual((status, doc["signup_tenant_id"]), (200, TENANT), doc)
        # one organization per tenant
        self.assertError(self.stack.json("PUT", "/api/settings/signin", token="carol",
                                         body=json.dumps({"self_signup": True, "tenant_id": TENANT.upper()}),
                                         headers={"Content-Type": "application/json"}), 409, "tenant_claimed")
        try:
            cookie = self.sign_in(ADA_UPN)
            org, role, email = self.sql("SELECT o.name, u.role, u.email FROM users u JOIN organizations o "
                                        "ON o.id = u.org_id WHERE u.name = ?", (ADA_UPN,))[0]
            self.assertEqual((org, role), ("acme", "member"))
            status, _, doc = self.jcall("GET", "/api/settings/powerbi", cookies={"pbiport_session": cookie})
            self.assertEqual((status, doc["error"]["code"]), (403, "forbidden"), doc)
            # the new member is pinned: signing in again finds the same user
            self.sign_in(ADA_UPN)
            self.assertEqual(self.sql("SELECT count(*) FROM users WHERE name = ?", (ADA_UPN,))[0][0], 1)
        finally:
            status, _, doc = self.stack.json("PUT", "/api/settings/signin", token="alice",
                                             body='{"self_signup":false}', headers={"Content-Type": "application/json"})
            self.assertEqual((status, doc["self_signup"]), (200, False), doc)

    def test_10_id_token_checks(self):
        self.sign_in()   # the keys are cached
        self.backdate_keys(30)   # fetched recently: an unknown key is not fetched again
        cases = [("bad_signature", "signature"), ("expired", "expired"), ("not_yet_valid", "not valid yet"),
                 ("wrong_audience", "audience"), ("wrong_issuer", "issuer"), ("wrong_tenant", "tenant"),
                 ("alg_none", "only RS256"), ("hs256", "only RS256"), ("no_nonce", "nonce"),
                 ("unknown_kid", "does not publish")]
        reads = self.keys_read()
        for fault, word in cases:
            with self.subTest(fault=fault):
                self.refused(ALICE_UPN, "invalid_id_token", word, fault=fault)
        self.assertEqual(self.keys_read(), reads)   # the unknown key did not fetch again within a minute
        # an ID token issued to an earlier sign-in (same nonce twice) is refused
        self.sign_in()
        self.refused(ALICE_UPN, "invalid_id_token", "nonce", fault="replay")

    def test_11_replayed_state_code_and_other_browser(self):
        loc, browser = self.start()
        cb = self.at_microsoft(loc)
        self.assertEqual(self.callback(cb, browser)[0], 302)
        # the same callback again: the state is single use
        status, _, doc = self.callback(cb, browser)
        self.assertEqual((status, doc["error"]["code"]), (400, "invalid_state"), doc)
        self.assertIn("already used", doc["error"]["message"])
        # the same code with a fresh state: Entra refuses the code
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(cb).query))["code"]
        loc2, browser2 = self.start()
        state2 = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(loc2).query))["state"]
        status, _, doc = self.callback("/signin/callback?" + urllib.parse.urlencode({"code": code, "state": state2}),
                                       browser2)
        self.assertEqual((status, doc["error"]["code"]), (400, "signin_failed"), doc)
        # a sign-in finished in another browser (no cookie, or another sign-in's): login CSRF refused
        for other in (None, browser2):
            loc3, browser3 = self.start()
            status, _, doc = self.callback(self.at_microsoft(loc3), other)
            self.assertEqual((status, doc["error"]["code"]), (400, "invalid_state"), doc)
            self.assertIn("another browser", doc["error"]["message"])
        # an altered state, a missing code, Entra's own error
        loc3, browser3 = self.start()
        status, _, doc = self.callback(self.at_microsoft(loc3).replace("state=", "state=x"), browser3)
        self.assertEqual((status, doc["error"]["code"]), (400, "invalid_state"), doc)
        loc4, browser4 = self.start()
        state4 = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(loc4).query))["state"]
        status, _, doc = self.callback("/signin/callback?" + urllib.parse.urlencode(
            {"state": state4, "error": "access_denied", "error_description": "AADSTS65004: declined"}), browser4)
        self.assertEqual((status, doc["error"]["code"]), (400, "signin_declined"), doc)
        self.assertError(self.stack.json("GET", "/signin?return_to=https://evil.example/"), 400, "invalid_return_to")
        self.assertError(self.stack.json("GET", "/signin?return_to=//evil.example/"), 400, "invalid_return_to")

    def test_20_tampered_cookies_refused(self):
        cookie = self.sign_in()
        secret, sig = cookie.split(".")
        flip = lambda s, i: s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
        forged_unknown = "%s.%s" % ("A" * 43, base64.urlsafe_b64encode(hmac.new(
            bytes.fromhex(REMEMBER_KEY), ("pbiport-session-v1\n" + "A" * 43).encode(), hashlib.sha256).digest())
            .rstrip(b"=").decode())
        for bad in (flip(secret, 5) + "." + sig, secret + "." + flip(sig, 5), secret, "garbage", cookie + "x",
                    forged_unknown):
            with self.subTest(cookie=bad[:20]):
                status, pairs, doc = self.me(bad)
                self.assertEqual((status, doc["error"]["code"]), (401, "unauthorized"), doc)
                cleared = self.set_cookies(pairs)["pbiport_session"]
                self.assertEqual((cleared[1], cleared[2]["max-age"]), ("", "0"))
        self.assertEqual(self.me(cookie)[0], 200)

    def test_21_idle_and_absolute_expiry_and_renewal(self):
        cookie = self.sign_in()
        sid, seen, _ = self.session_row(cookie)
        # used again within a minute: no write
        self.assertEqual(self.me(cookie)[0], 200)
        self.assertEqual(self.session_row(cookie)[1], seen)
        # used two minutes later: the last sighting moves (sliding idle timeout)
        two_min_ago = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 120))
        self.sql("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (two_min_ago, sid))
        self.assertEqual(self.me(cookie)[0], 200)
        self.assertGreater(self.session_row(cookie)[1], two_min_ago)
        # idle longer than the timeout (8 h by default): ended
        idle = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 8 * 3600 - 5))
        self.sql("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (idle, sid))
        status, _, doc = self.me(cookie)
        self.assertEqual(status, 401, doc)
        self.assertIn("without use", doc["error"]["message"])
        # past its absolute end, however recently used
        cookie = self.sign_in()
        sid = self.session_row(cookie)[0]
        self.sql("UPDATE sessions SET expires_at = ? WHERE id = ?", ("2020-01-01T00:00:00.000Z", sid))
        status, _, doc = self.me(cookie)
        self.assertEqual(status, 401, doc)
        self.assertIn("end", doc["error"]["message"])

    def test_22_revoke_from_the_api(self):
        c1, c2 = self.sign_in(), self.sign_in()
        status, _, doc = self.me(c1)
        mine = {s["id"]: s for s in doc["sessions"]}
        s2 = self.session_row(c2)[0]
        self.assertIn(s2, mine)
        self.assertFalse(mine[s2]["current"])
        # a state-changing request with the cookie from another site is refused
        for hdrs in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
            status, _, doc = self.jcall("DELETE", "/api/me/sessions/" + s2, cookies={"pbiport_session": c1},
                                        headers=hdrs)
            self.assertEqual((status, doc["error"]["code"]), (403, "csrf_failed"), doc)
        self.assertEqual(self.me(c2)[0], 200)
        status, _, _ = self.jcall("DELETE", "/api/me/sessions/" + s2, cookies={"pbiport_session": c1},
                                  headers={"Origin": self.origin, "Sec-Fetch-Site": "same-origin"})
        self.assertEqual(status, 204)
        self.assertEqual(self.me(c2)[0], 401)
        self.assertEqual(self.me(c1)[0], 200)
        # another user's session looks like a missing one; so does one revoked already
        self.assertError(self.stack.json("DELETE", "/api/me/sessions/" + self.session_row(c1)[0], token="bob"),
                         404, "not_found")
        self.assertError(self.stack.json("DELETE", "/api/me/sessions/" + s2, token="alice"), 404, "not_found")
        # revoking the current session drops its cookie
        status, pairs, _ = self.jcall("DELETE", "/api/me/sessions/" + self.session_row(c1)[0],
                                      cookies={"pbiport_session": c1})
        self.assertEqual(status, 204)
        self.assertEqual(self.set_cookies(pairs)["pbiport_session"][1], "")
        self.assertEqual(self.me(c1)[0], 401)

    def test_23_sign_out(self):
        cookie = self.sign_in()
        status, pairs, doc = self.jcall("POST", "/signout", cookies={"pbiport_session": cookie},
                                        headers={"Origin": "https://evil.example"})
        self.assertEqual((status, doc["error"]["code"]), (403, "csrf_failed"), doc)
        self.assertEqual(self.me(cookie)[0], 200)
        self.assertEqual(self.jcall("GET", "/signout", cookies={"pbiport_session": cookie})[0], 405)
        status, pairs, _ = self.http("POST", "/signout?return_to=/bye", cookies={"pbiport_session": cookie},
                                     headers={"Origin": self.origin, "Sec-Fetch-Site": "same-origin",
                                              "Content-Type": "application/x-www-form-urlencoded"},
                                     body="csrf=whatever")
        self.assertEqual(status, 303)
        self.assertEqual(dict(pairs)["location"], "/bye")
        name, value, attrs = self.set_cookies(pairs)["pbiport_session"]
        self.assertEqual((value, attrs["max-age"], attrs["path"]), ("", "0", "/"))
        status, _, doc = self.me(cookie)
        self.assertEqual(status, 401, doc)
        self.assertIn("signed out", doc["error"]["message"])
        # signing out again, or without a session, still ends at the page
        self.assertEqual(self.http("POST", "/signout", headers={"Origin": self.origin})[0], 303)

    def test_24_pages_with_the_session(self):
        """The web pages take the session like any identity, and send a browser without one to sign in."""
        cookie = self.sign_in()
        status, pairs, body = self.http("GET", "/", cookies={"pbiport_session": cookie}, headers={"Accept": "text/html"})
        self.assertEqual(status, 200, body[:300])
        self.assertTrue(dict(pairs)["content-type"].startswith("text/html"))
        # a page's form posted from another site with the cookie: refused before the handler
        status, _, body = self.http("POST", "/data-products/new", cookies={"pbiport_session": cookie},
                                    headers={"Origin": "https://evil.example", "Accept": "text/html",
                                             "Content-Type": "application/x-www-form-urlencoded"}, body="contract=x")
        self.assertEqual(status, 403, body[:300])
        self.assertIn(b"csrf_failed", body)
        # an ended session on a page: to the sign-in, which brings the browser back; the API says 401
        for path in ("/", "/data-products/new?x=1&y=%C3%A9"):
            status, pairs, _ = self.http("GET", path, cookies={"pbiport_session": "forged"})
            self.assertEqual(status, 302, path)
            loc = dict(pairs)["location"]
            self.assertTrue(loc.startswith("/signin?return_to="), loc)
            self.assertEqual(urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)["return_to"], [path])
            self.assertEqual(self.set_cookies(pairs)["pbiport_session"][1], "")
            # ... where that path is a valid return_to
            loc2, _ = self.start(path)
            self.assertIn("/oauth2/v2.0/authorize", loc2)
        self.assertEqual(self.me("forged")[0], 401)

    def test_30_key_rotation_picked_up_once_a_minute(self):
        self.sign_in()
        self.emu.control("POST", "rotate-keys", {"keep_old": False})
        reads = self.keys_read()
        # the cached keys were fetched a moment ago: the new key stays unknown for now
        self.refused(ALICE_UPN, "invalid_id_token", "does not publish")
        self.assertEqual(self.keys_read(), reads)
        # a minute later the unknown key fetches the keys again, once, and the sign-in works
        self.backdate_keys(61)
        self.sign_in()
        self.assertEqual(self.keys_read(), reads + 1)
        self.sign_in()
        self.assertEqual(self.keys_read(), reads + 1)

    def test_40_one_consent_for_signing_in_and_power_bi(self):
        status, _, doc = self.stack.json("PUT", "/api/settings/powerbi", token="alice", body='{"mode":"sso"}',
                                         headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200, doc)
        loc, browser = self.start()
        scope = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(loc).query))["scope"].split()
        self.assertIn(PBI_SCOPE, scope)
        self.assertIn("offline_access", scope)
        self.assertIn("openid", scope)
        status, pairs, doc = self.callback(self.at_microsoft(loc), browser)
        self.assertEqual(status, 302, doc)
        cookie = self.set_cookies(pairs)["pbiport_session"][1]
        status, _, doc = self.jcall("GET", "/api/me/powerbi-connections", cookies={"pbiport_session": cookie})
        self.assertEqual(status, 200, doc)
        self.assertEqual([(c["tenant_id"], c["client_id"], c["status"]) for c in doc["connections"]],
                         [(TENANT, APP_ID, "active")])
        # the connection works: the token service lists her workspaces
        status, _, doc = self.jcall("POST", "/api/me/powerbi-connections/check", cookies={"pbiport_session": cookie},
                                    headers={"Origin": self.origin})
        self.assertEqual(status, 200, doc)

    def test_50_no_secret_leaves(self):
        cookie = self.sign_in()
        text = b"".join(self.responses)
        self.assertNotIn(APP_SECRET.encode(), text)
        for line in self.stack.log_lines():
            self.assertNotIn(APP_SECRET, line)
            self.assertNotIn(cookie.split(".")[0], line)
            self.assertNotIn("code=emu_code", line)

    def cgi(self, path, env=None, cookie=None):
        """One CGI request to the binary against the stack's database: (status line, headers)."""
        full = dict(self.stack.env(), REQUEST_METHOD="GET", PATH_INFO=path.split("?")[0], REQUEST_URI=path,
                    QUERY_STRING=path.partition("?")[2], HTTP_HOST="pbiport.example", GATEWAY_INTERFACE="CGI/1.1")
        full.update(env or {})
        if cookie:
            full["HTTP_COOKIE"] = cookie
        out = subprocess.run([self.stack.fcgi_bin], env={k: v for k, v in full.items() if v is not None},
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        head = out.stdout.decode(errors="replace").split("\r\n\r\n")[0].split("\r\n")
        return head[0], [(k.lower(), v.strip()) for k, _, v in (h.partition(":") for h in head[1:])]

    def test_60_secure_cookie_on_https_and_feature_off(self):
        for env in ({"HTTPS": "on"}, {"PBIPORT_PUBLIC_URL": "https://pbiport.example"}):
            status, pairs = self.cgi("/signin?return_to=/x", env)
            self.assertIn("302", status)
            attrs = self.set_cookies(pairs)["pbiport_signin"][2]
            self.assertIn("secure", attrs, env)
            loc = dict(pairs)["location"]
            redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(loc).query))["redirect_uri"]
            self.assertEqual(redirect, "https://pbiport.example/signin/callback")
        status, pairs = self.cgi("/signin", {"PBIPORT_SSO_TENANT_ID": None, "PBIPORT_SSO_CLIENT_ID": None,
                                             "PBIPORT_SSO_CLIENT_SECRET": None})
        self.assertIn("404", status)

    def test_90_secure_session_cookie_on_https(self):
        """The whole sign-in with PBIPORT_PUBLIC_URL https://: the session cookie is Secure (last: it
        restarts the pool)."""
        public = "https://pbiport.example"
        self.stack.restart_pool({"PBIPORT_PUBLIC_URL": public})
        loc, browser = self.start()
        self.assertIn(urllib.parse.quote(public + "/signin/callback", safe=""), loc)
        r = self.emu.call("GET", loc + "&login_hint=" + urllib.parse.quote(ALICE_UPN))
        cb = urllib.parse.urlparse(r.header("Location"))
        status, pairs, doc = self.callback(cb.path + "?" + cb.query, browser)
        self.assertEqual(status, 302, doc)
        attrs = self.set_cookies(pairs)["pbiport_session"][2]
        self.assertIn("secure", attrs)
        self.assertEqual(attrs["samesite"], "Lax")
        cookie = self.set_cookies(pairs)["pbiport_session"][1]
        # the site's origin is now the public URL's
        status, _, doc = self.jcall("DELETE", "/api/me/sessions/" + self.session_row(cookie)[0],
                                    cookies={"pbiport_session": cookie}, headers={"Origin": self.origin})
        self.assertEqual((status, doc["error"]["code"]), (403, "csrf_failed"), doc)
        status, _, _ = self.jcall("DELETE", "/api/me/sessions/" + self.session_row(cookie)[0],
                                  cookies={"pbiport_session": cookie}, headers={"Origin": public})
        self.assertEqual(status, 204)


if __name__ == "__main__":
    harness.main()
