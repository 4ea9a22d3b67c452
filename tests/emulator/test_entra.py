#!/usr/bin/env python3
"""Entra v2.0 authorize/token emulation, Graph lookups, token expiry on every API family."""

import base64
import hashlib
import json
import time
import urllib.parse

from emutest import (CONSENTED_APP, PBI, REDIRECT, SCAN_APP, SCAN_SECRET, TENANT, WEB_APP, WEB_SECRET,
                     EmuTestCase, main, pkce)

TOKEN = "/entra/%s/oauth2/v2.0/token" % TENANT


class ClientCredentials(EmuTestCase):
    def test_success_shape(self):
        r = self.emu.call("POST", TOKEN, form={"grant_type": "client_credentials", "client_id": SCAN_APP,
                                               "client_secret": SCAN_SECRET, "scope": PBI + ".default"})
        self.assertEqual(r.status, 200)
        j = r.json
        self.assertEqual(j["token_type"], "Bearer")
        self.assertEqual(j["expires_in"], 3600)
        self.assertNotIn("refresh_token", j)
        self.assertTrue(j["access_token"])
        self.assertEqual(r.header("Cache-Control"), "no-store")

    def test_basic_auth_header(self):
        import base64
        basic = base64.b64encode(("%s:%s" % (SCAN_APP, SCAN_SECRET)).encode()).decode()
        r = self.emu.call("POST", TOKEN, form={"grant_type": "client_credentials", "scope": PBI + ".default"},
                          headers={"Authorization": "Basic " + basic})
        self.assertEqual(r.status, 200, r)

    def test_bad_secret_is_401_7000215(self):
        r = self.emu.call("POST", TOKEN, form={"grant_type": "client_credentials", "client_id": SCAN_APP,
                                               "client_secret": "nope", "scope": PBI + ".default"})
        self.assertEntraError(r, 401, "invalid_client", 7000215)
        self.assertNotIn("nope", r.body.decode())

    def test_unknown_tenant_is_400_90002(self):
        r = self.emu.call("POST", "/entra/99999999-9999-9999-9999-999999999999/oauth2/v2.0/token",
                          form={"grant_type": "client_credentials", "client_id": SCAN_APP,
                                "client_secret": SCAN_SECRET, "scope": PBI + ".default"})
        self.assertEntraError(r, 400, "invalid_request", 90002)

    def test_unknown_client_and_bad_scope(self):
        r = self.emu.call("POST", TOKEN, form={"grant_type": "client_credentials", "client_id": "nobody",
                                               "client_secret": "x", "scope": PBI + ".default"})
        self.assertEntraError(r, 400, "unauthorized_client", 700016)
        r = self.emu.call("POST", TOKEN, form={"grant_type": "client_credentials", "client_id": SCAN_APP,
                                               "client_secret": SCAN_SECRET, "scope": PBI + "Dataset.Read.All"})
        self.assertEntraError(r, 400, "invalid_scope", 70011)
        r = self.emu.call("POST", TOKEN, form={"grant_type": "password", "client_id": SCAN_APP,
                                               "client_secret": SCAN_SECRET})
        self.assertEntraError(r, 400, "unsupported_grant_type", 70003)

    def test_domain_names_the_tenant(self):
        r = self.emu.call("POST", "/entra/contoso.test/oauth2/v2.0/token",
                          form={"grant_type": "client_credentials", "client_id": SCAN_APP,
                                "client_secret": SCAN_SECRET, "scope": PBI + ".default"})
        self.assertEqual(r.status, 200)


class AuthCode(EmuTestCase):
    def _params(self, **kw):
        verifier, challenge = pkce()
        p = {"client_id": WEB_APP, "response_type": "code", "redirect_uri": REDIRECT, "state": "s-1",
             "scope": "offline_access openid " + PBI + "Dataset.ReadWrite.All", "code_challenge": challenge,
             "code_challenge_method": "S256", "login_hint": "alice@contoso.test"}
        p.update(kw)
        return p, verifier

    def _code(self, r):
        self.assertEqual(r.status, 302, r)
        loc = r.header("Location")
        self.assertTrue(loc.startswith(REDIRECT + "?"), loc)
        q = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)
        self.assertEqual(q["state"], ["s-1"])
        return q["code"][0]

    def _redeem(self, code, verifier, **kw):
        form = {"grant_type": "authorization_code", "client_id": WEB_APP, "client_secret": WEB_SECRET,
                "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
        form.update(kw)
        return self.emu.call("POST", TOKEN, form={k: v for k, v in form.items() if v is not None})

    def test_consented_user_redirects_at_once_and_redeems(self):
        p, verifier = self._params()
        code = self._code(self.emu.authorize(p))
        r = self._redeem(code, verifier)
        self.assertEqual(r.status, 200, r)
        j = r.json
        self.assertEqual(j["scope"], PBI + "Dataset.ReadWrite.All")
        for k in ("access_token", "refresh_token", "id_token", "expires_in", "token_type"):
            self.assertIn(k, j)
        # single use
        self.assertEntraError(self._redeem(code, verifier), 400, "invalid_grant", 54005)
        st = self.emu.state("tokens")
        self.assertEqual(st["tokens"]["auth_codes_redeemed"], 1)

    def test_pkce_wrong_or_missing_verifier(self):
        p, verifier = self._params()
        code = self._code(self.emu.authorize(p))
        self.assertEntraError(self._redeem(code, None), 400, "invalid_grant", 50148)
        other, _ = pkce()
        self.assertEntraError(self._redeem(code, other), 400, "invalid_grant", 501481)
        self.assertEqual(self._redeem(code, verifier).status, 200)

    def test_redirect_uri_must_match(self):
        p, verifier = self._params()
        code = self._code(self.emu.authorize(p))
        r = self._redeem(code, verifier, redirect_uri="https://evil.test/cb")
        self.assertEntraError(r, 400, "invalid_grant", 500112)
        p, _ = self._params(redirect_uri="https://evil.test/cb")
        r = self.emu.authorize(p)
        self.assertEqual(r.status, 400)
        self.assertIn(b"AADSTS50011", r.body)

    def test_unknown_client_error_page(self):
        p, _ = self._params(client_id="00000000-dead-beef-0000-000000000000")
        r = self.emu.authorize(p)
        self.assertEqual(r.status, 400)
        self.assertIn(b"AADSTS700016", r.body)
        self.assertIn("text/html", r.header("Content-Type"))

    def test_code_expires(self):
        p, verifier = self._params()
        code = self._code(self.emu.authorize(p))
        self.emu.control("POST", "advance", {"seconds": 601})
        self.assertEntraError(self._redeem(code, verifier), 400, "invalid_grant", 70008)

    def test_consent_page_then_accept(self):
        p, verifier = self._params(login_hint="bob@contoso.test")
        r = self.emu.authorize(p)
        self.assertEqual(r.status, 200)
        page = r.body.decode()
        self.assertIn('name="consent" value="accept"', page)
        self.assertIn("Dataset.ReadWrite.All", page)
        form = dict(p)
        form.update({"login": "bob@contoso.test", "consent": "accept"})
        r = self.emu.call("POST", "/entra/%s/oauth2/v2.0/authorize" % TENANT, form=form)
        code = self._code(r)
        self.assertEqual(self._redeem(code, verifier).status, 200)
        # consent remembered: next time no page
        p2, _ = self._params(login_hint="bob@contoso.test")
        self._code(self.emu.authorize(p2))

    def test_prompt_consent_shows_page_and_deny(self):
        p, _ = self._params(prompt="consent")
        r = self.emu.authorize(p)
        self.assertEqual(r.status, 200)
        form = dict(p)
        form.update({"login": "alice@contoso.test", "consent": "deny"})
        r = self.emu.call("POST", "/entra/%s/oauth2/v2.0/authorize" % TENANT, form=form)
        self.assertEqual(r.status, 302)
        q = urllib.parse.parse_qs(urllib.parse.urlparse(r.header("Location")).query)
        self.assertEqual(q["error"], ["access_denied"])
        self.assertEqual(q["state"], ["s-1"])

    def test_signed_in_user_and_session_cookie(self):
        p, verifier = self._params()
        del p["login_hint"]
        r = self.emu.authorize(p)
        self.assertEqual(r.status, 200)  # nobody signed in: the sign-in/consent page
        self.emu.control("POST", "config", {"signed_in_user": "alice@contoso.test"})
        code = self._code(self.emu.authorize(p))
        self.assertEqual(self._redeem(code, verifier).status, 200)
        self.emu.control("POST", "config", {"signed_in_user": None})
        form = dict(p, login="alice@contoso.test", consent="accept")
        r = self.emu.call("POST", "/entra/%s/oauth2/v2.0/authorize" % TENANT, form=form)
        cookie = r.header("Set-Cookie").split(";")[0]
        self.assertTrue(cookie.startswith("emu_session="))
        self._code(self.emu.call("GET", "/entra/%s/oauth2/v2.0/authorize?%s" % (TENANT, urllib.parse.urlencode(p)),
                                 headers={"Cookie": cookie}))

    def test_prompt_none_without_consent(self):
        p, _ = self._params(login_hint="bob@contoso.test", prompt="none")
        r = self.emu.authorize(p)
        q = urllib.parse.parse_qs(urllib.parse.urlparse(r.header("Location")).query)
        self.assertEqual(q["error"], ["consent_required"])

    def test_refresh_rotation(self):
        p, verifier = self._params()
        first = self._redeem(self._code(self.emu.authorize(p)), verifier).json
        rt1 = first["refresh_token"]
        r = self.emu.call("POST", TOKEN, form={"grant_type": "refresh_token", "client_id": WEB_APP,
                                               "client_secret": WEB_SECRET, "refresh_token": rt1})
        self.assertEqual(r.status, 200, r)
        rt2 = r.json["refresh_token"]
        self.assertNotEqual(rt1, rt2)
        self.assertNotEqual(r.json["access_token"], first["access_token"])
        # reference: the old refresh token is not revoked on use
        r = self.emu.call("POST", TOKEN, form={"grant_type": "refresh_token", "client_id": WEB_APP,
                                               "client_secret": WEB_SECRET, "refresh_token": rt1})
        self.assertEqual(r.status, 200)
        st = self.emu.state("tokens")["tokens"]
        self.assertEqual(st["refresh_token_exchanges"], 2)
        # strict mode: a used refresh token is refused
        self.emu.control("POST", "config", {"refresh_token_reuse": "reject"})
        rt3 = r.json["refresh_token"]
        self.assertEqual(self.emu.call("POST", TOKEN, form={
            "grant_type": "refresh_token", "client_id": WEB_APP, "client_secret": WEB_SECRET,
            "refresh_token": rt3}).status, 200)
        r = self.emu.call("POST", TOKEN, form={"grant_type": "refresh_token", "client_id": WEB_APP,
                                               "client_secret": WEB_SECRET, "refresh_token": rt3})
        self.assertEntraError(r, 400, "invalid_grant", 70008)

    def test_refresh_errors(self):
        p, verifier = self._params()
        rt = self._redeem(self._code(self.emu.authorize(p)), verifier).json["refresh_token"]
        form = {"grant_type": "refresh_token", "client_id": WEB_APP, "client_secret": WEB_SECRET,
                "refresh_token": rt}
        r = self.emu.call("POST", TOKEN, form=dict(form, refresh_token="garbage"))
        self.assertEntraError(r, 400, "invalid_grant", 70000)
        r = self.emu.call("POST", TOKEN, form=dict(form, scope=PBI + "Tenant.ReadWrite.All"))
        self.assertEntraError(r, 400, "invalid_grant", 65001)
        self.emu.control("POST", "faults", {"expire_refresh_tokens": True})
        self.assertEntraError(self.emu.call("POST", TOKEN, form=form), 400, "invalid_grant", 700082)

    def test_revoke_sign_in_sessions(self):
        p, verifier = self._params()
        rt = self._redeem(self._code(self.emu.authorize(p)), verifier).json["refresh_token"]
        g = self.emu.sp_token(scope="https://graph.microsoft.com/.default")
        r = self.emu.call("POST", "/graph/v1.0/users/alice@contoso.test/revokeSignInSessions", token=g)
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json["value"], True)
        self.emu.control("POST", "advance", {"seconds": 1})
        r = self.emu.call("POST", TOKEN, form={"grant_type": "refresh_token", "client_id": WEB_APP,
                                               "client_secret": WEB_SECRET, "refresh_token": rt})
        self.assertEntraError(r, 400, "invalid_grant", 50173)

    def test_missing_client_secret(self):
        p, verifier = self._params()
        r = self._redeem(self._code(self.emu.authorize(p)), verifier, client_secret=None)
        self.assertEntraError(r, 401, "invalid_client", 7000218)


class Graph(EmuTestCase):
    def test_service_principal_by_app_id(self):
        g = self.emu.sp_token(scope="https://graph.microsoft.com/.default")
        r = self.emu.call("GET", "/graph/v1.0/servicePrincipals(appId='%s')?$select=displayName,appId" % WEB_APP,
                          token=g)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["displayName"], "pbiport (test)")
        self.assertEqual(r.json["appId"], WEB_APP)
        r = self.emu.call("GET", "/graph/v1.0/servicePrincipals?$filter=" +
                          urllib.parse.quote("appId eq '%s'" % SCAN_APP), token=g)
        self.assertEqual(r.json["value"][0]["displayName"], "Contoso Scanner")
        r = self.emu.call("GET", "/graph/v1.0/applications?$filter=" +
                          urllib.parse.quote("appId eq '%s'" % SCAN_APP), token=g)
        self.assertEqual(len(r.json["value"]), 1)
        r = self.emu.call("GET", "/graph/v1.0/servicePrincipals(appId='00000000-0000-0000-0000-00000000abcd')",
                          token=g)
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json["error"]["code"], "Request_ResourceNotFound")

    def test_own_app_without_permission_and_audience(self):
        from emutest import PUSH_APP, PUSH_SECRET
        g = self.emu.sp_token(PUSH_APP, PUSH_SECRET, scope="https://graph.microsoft.com/.default")
        self.assertEqual(self.emu.call("GET", "/graph/v1.0/servicePrincipals(appId='%s')" % PUSH_APP,
                                       token=g).status, 200)
        r = self.emu.call("GET", "/graph/v1.0/servicePrincipals(appId='%s')" % WEB_APP, token=g)
        self.assertEqual(r.status, 403)
        pbi = self.emu.sp_token()
        r = self.emu.call("GET", "/graph/v1.0/servicePrincipals(appId='%s')" % WEB_APP, token=pbi)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json["error"]["code"], "InvalidAuthenticationToken")


class Expiry(EmuTestCase):
    token_lifetime = 1

    def test_expired_tokens_per_api_family(self):
        sp = self.emu.sp_token()
        user = self.emu.user_tokens()["access_token"]
        self.assertEqual(self.emu.call("GET", "/fabric/v1/workspaces", token=user).status, 200)
        time.sleep(1.2)  # real expiry with a 1 s lifetime
        r = self.emu.call("GET", "/powerbi/v1.0/myorg/groups", token=user)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json, {"error": {"code": "TokenExpired", "message": "Access token has expired, resubmit "
                                                                               "with a new access token"}})
        self.assertIn("invalid_token", r.header("WWW-Authenticate"))
        r = self.emu.call("GET", "/fabric/v1/workspaces", token=user)
        self.assertFabricError(r, 401, "TokenExpired")
        r = self.emu.call("GET", "/powerbi/v1.0/myorg/admin/workspaces/modified", token=sp)
        self.assertPbiError(r, 403, "TokenExpired")
        # unknown tokens are 401 on both hosts
        self.assertPbiError(self.emu.call("GET", "/powerbi/v1.0/myorg/groups", token="bogus"), 401,
                            "PowerBINotAuthorizedException")
        self.assertFabricError(self.emu.call("GET", "/fabric/v1/workspaces"), 401, "Unauthorized")

    def test_expires_in_follows_lifetime(self):
        r = self.emu.call("POST", TOKEN, form={"grant_type": "client_credentials", "client_id": CONSENTED_APP,
                                               "client_secret": "consented-secret", "scope": PBI + ".default"})
        self.assertEqual(r.json["expires_in"], 1)


def _b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_jwt(token):
    head, payload, sig = token.split(".")
    return json.loads(_b64d(head)), json.loads(_b64d(payload)), _b64d(sig), (head + "." + payload).encode()


def rs256_valid(jwk, signing_input, sig):
    """RSASSA-PKCS1-v1_5 SHA-256 verification with the JWK's n and e."""
    n = int.from_bytes(_b64d(jwk["n"]), "big")
    e = int.from_bytes(_b64d(jwk["e"]), "big")
    k = (n.bit_length() + 7) // 8
    em = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
    t = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(signing_input).digest()
    return len(sig) == k and em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


class OpenIDConnect(EmuTestCase):
    """Discovery, keys, signed ID tokens with the nonce, key rotation and ID token faults."""

    def sign_in(self, nonce="n-1", upn="alice@contoso.test"):
        verifier, challenge = pkce()
        r = self.emu.authorize({"client_id": WEB_APP, "response_type": "code", "redirect_uri": REDIRECT,
                                "scope": "openid profile email", "state": "s", "nonce": nonce, "login_hint": upn,
                                "code_challenge": challenge, "code_challenge_method": "S256"})
        self.assertEqual(r.status, 302, r)
        code = urllib.parse.parse_qs(urllib.parse.urlparse(r.header("Location")).query)["code"][0]
        r = self.emu.call("POST", TOKEN, form={"grant_type": "authorization_code", "client_id": WEB_APP,
                                               "client_secret": WEB_SECRET, "code": code, "redirect_uri": REDIRECT,
                                               "code_verifier": verifier})
        self.assertEqual(r.status, 200, r)
        return r.json["id_token"]

    def keys(self):
        r = self.emu.call("GET", "/entra/%s/discovery/v2.0/keys" % TENANT)
        self.assertEqual(r.status, 200, r)
        return {k["kid"]: k for k in r.json["keys"]}

    def test_configuration_names_issuer_keys_and_endpoints(self):
        for key in (TENANT, "contoso.test"):
            r = self.emu.call("GET", "/entra/%s/v2.0/.well-known/openid-configuration" % key)
            self.assertEqual(r.status, 200, r)
            doc = r.json
            self.assertEqual(doc["issuer"], "https://login.microsoftonline.com/%s/v2.0" % TENANT)
            self.assertTrue(doc["jwks_uri"].startswith(self.emu.url + "/entra/"), doc)
            self.assertEqual(doc["id_token_signing_alg_values_supported"], ["RS256"])
            self.assertTrue(doc["authorization_endpoint"].endswith("/oauth2/v2.0/authorize"))
        r = self.emu.call("GET", "/entra/organizations/v2.0/.well-known/openid-configuration")
        self.assertEqual(r.json["issuer"], "https://login.microsoftonline.com/{tenantid}/v2.0")
        r = self.emu.call("GET", "/entra/99999999-9999-9999-9999-999999999999/v2.0/.well-known/openid-configuration")
        self.assertEqual(r.status, 400, r)

    def test_id_token_is_signed_with_a_published_key_and_carries_the_nonce(self):
        header, claims, sig, signed = decode_jwt(self.sign_in(nonce="abc"))
        self.assertEqual((header["alg"], header["typ"]), ("RS256", "JWT"))
        keys = self.keys()
        self.assertIn(header["kid"], keys)
        self.assertTrue(rs256_valid(keys[header["kid"]], signed, sig))
        self.assertEqual(claims["nonce"], "abc")
        self.assertEqual(claims["aud"], WEB_APP)
        self.assertEqual(claims["tid"], TENANT)
        self.assertEqual(claims["iss"], "https://login.microsoftonline.com/%s/v2.0" % TENANT)
        self.assertEqual(claims["preferred_username"], "alice@contoso.test")
        self.assertLessEqual(claims["nbf"], time.time() + 5)
        self.assertGreater(claims["exp"], time.time())
        self.assertTrue(claims["oid"])
        self.assertNotIn("email", claims)   # alice has no mail attribute in the fixture

    def test_rotation_publishes_a_new_key_and_keeps_the_old(self):
        old = decode_jwt(self.sign_in())[0]["kid"]
        r = self.emu.control("POST", "rotate-keys", {"keep_old": True})
        self.assertNotEqual(r["kid"], old)
        self.assertEqual(set(self.keys()), {r["kid"], old})
        header, _, sig, signed = decode_jwt(self.sign_in())
        self.assertEqual(header["kid"], r["kid"])
        self.assertTrue(rs256_valid(self.keys()[r["kid"]], signed, sig))
        self.emu.control("POST", "rotate-keys", {"keep_old": False})
        self.assertEqual(len(self.keys()), 1)

    def test_user_rename_keeps_the_object_id_and_email_claim(self):
        oid = decode_jwt(self.sign_in())[1]["oid"]
        self.emu.control("POST", "user", {"upn": "alice@contoso.test", "new_upn": "alice.smith@contoso.test",
                                          "email": "Alice.Smith@contoso.test"})
        claims = decode_jwt(self.sign_in(upn="alice.smith@contoso.test"))[1]
        self.assertEqual(claims["oid"], oid)
        self.assertEqual(claims["email"], "Alice.Smith@contoso.test")

    def test_faults(self):
        keys = self.keys()
        good = self.sign_in(nonce="first")
        cases = {
            "bad_signature": lambda h, c, sig, s: not rs256_valid(keys[h["kid"]], s, sig),
            "unknown_kid": lambda h, c, sig, s: h["kid"] not in keys,
            "expired": lambda h, c, sig, s: c["exp"] < time.time(),
            "not_yet_valid": lambda h, c, sig, s: c["nbf"] > time.time() + 600,
            "wrong_audience": lambda h, c, sig, s: c["aud"] != WEB_APP,
            "wrong_issuer": lambda h, c, sig, s: c["iss"].startswith("https://sts.windows.net/"),
            "wrong_tenant": lambda h, c, sig, s: c["tid"] != TENANT and TENANT in c["iss"],
            "alg_none": lambda h, c, sig, s: h["alg"] == "none" and sig == b"",
            "hs256": lambda h, c, sig, s: h["alg"] == "HS256",
            "no_nonce": lambda h, c, sig, s: "nonce" not in c,
        }
        for kind, holds in cases.items():
            self.emu.control("POST", "id-token-fault", {"kind": kind})
            h, c, sig, s = decode_jwt(self.sign_in(nonce="n-" + kind))
            self.assertTrue(holds(h, c, sig, s), kind)
        self.emu.control("POST", "id-token-fault", {"kind": "replay"})
        self.assertEqual(self.sign_in(nonce="later"), good)
        # a fault is used once, then tokens are good again
        h, c, sig, s = decode_jwt(self.sign_in(nonce="after"))
        self.assertTrue(rs256_valid(keys[h["kid"]], s, sig))
        self.assertEqual(c["nonce"], "after")
        r = self.emu.call("POST", "/_emulator/id-token-fault", body={"kind": "nonsense"})
        self.assertEqual(r.status, 400, r)


if __name__ == "__main__":
    main()
