"""Microsoft Entra ID v2.0: authorize (auth code + PKCE, consent page) and token endpoints."""

import base64
import fnmatch
import hashlib
import html as htmlmod
import json
import re
import secrets
import urllib.parse

import uuid

import jwk
from common import Resp, entra_error, html, json_resp, redirect
from state import NS, OIDC_SCOPES, split_scope

RESOURCE_URI = {"pbi": "https://analysis.windows.net/powerbi/api", "graph": "https://graph.microsoft.com"}
# The v2.0 issuer of a tenant's tokens (the real host: the emulator's own address never appears in it).
ISSUER = "https://login.microsoftonline.com/%s/v2.0"
ID_TOKEN_LIFETIME_S = 3600
META_TENANTS = ("common", "organizations", "consumers")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _error_page(status, aadsts, text):
    return html(status, "<!doctype html><title>Sign in error</title><h1>Sorry, but we're having trouble "
                        "signing you in.</h1><p id=\"error\">AADSTS%d: %s</p>" % (aadsts, htmlmod.escape(text)))


def _redirect_with(params, redirect_uri, mode, extra):
    q = dict(extra)
    if params.get("state") is not None:
        q["state"] = params["state"]
    if mode == "form_post":
        inputs = "".join('<input type="hidden" name="%s" value="%s">' % (htmlmod.escape(k), htmlmod.escape(v))
                         for k, v in q.items())
        return html(200, '<!doctype html><body onload="document.forms[0].submit()"><form method="post" '
                         'action="%s">%s<noscript><button>Continue</button></noscript></form>'
                    % (htmlmod.escape(redirect_uri), inputs))
    sep = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return redirect(redirect_uri + sep + urllib.parse.urlencode(q))


def _resolve_tenant(emu, key, app=None, user=None):
    if key.lower() in META_TENANTS:
        if user is not None:
            return emu.tenants[user["tenant"]]
        if app is not None:
            return emu.tenants[app["tenant"]]
        return None
    return emu.find_tenant(key)


def authorize(emu, req, m):
    params = dict(req.query)
    if req.method == "POST":
        params.update(req.form())
    tkey = m.group(1)
    client_id = params.get("client_id", "")
    tenant = None if tkey.lower() in META_TENANTS else emu.find_tenant(tkey)
    if tkey.lower() not in META_TENANTS and tenant is None:
        return _error_page(400, 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID "
                                       "and are signing into the correct cloud." % tkey)
    app = emu.find_app(client_id, tenant)
    if app is None:
        return _error_page(400, 700016, "Application with identifier '%s' was not found in the directory '%s'."
                           % (client_id, tkey))
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or not any(fnmatch.fnmatchcase(redirect_uri, pat) for pat in app["redirect_uris"]):
        return _error_page(400, 50011, "The redirect URI '%s' specified in the request does not match the redirect "
                                       "URIs configured for the application '%s'." % (redirect_uri, client_id))
    mode = params.get("response_mode", "query")

    def fail(error, text):
        return _redirect_with(params, redirect_uri, mode, {"error": error, "error_description": text})

    if "code" not in params.get("response_type", "").split():
        return fail("unsupported_response_type", "AADSTS700054: response_type 'code' is required.")
    scopes = params.get("scope", "").split()
    if not scopes:
        return fail("invalid_request", "AADSTS900144: The request body must contain the following parameter: 'scope'.")
    method = params.get("code_challenge_method", "plain" if params.get("code_challenge") else "")
    if method and method not in ("S256", "plain"):
        return fail("invalid_request", "AADSTS501491: Invalid code_challenge_method.")
    if method and not params.get("code_challenge"):
        return fail("invalid_request", "AADSTS501491: code_challenge is required when code_challenge_method is sent.")
    for s in scopes:
        res, _, _ = split_scope(s)
        if res not in ("pbi", "graph", "oidc"):
            return fail("invalid_resource", "AADSTS500011: The resource principal named %s was not found." % s)
    # who is "signed in": the form, login_hint, the browser session cookie, or the configured default
    login = (params.get("login") or params.get("login_hint") or _session_user(req)
             or emu.config.get("signed_in_user") or "")
    user = emu.find_user(login, tenant) if login else None
    prompt = params.get("prompt", "")
    needed = emu.norm_scopes(scopes)
    choice = params.get("consent") if req.method == "POST" else None

    if choice == "deny":
        return fail("access_denied", "AADSTS65004: User declined to consent to access the app.")
    if choice == "accept":
        if user is None:
            return _consent_page(req, params, app, scopes, "Unknown user '%s'." % login)
        granted = user["consents"].setdefault(app["client_id"].lower(), set())
        granted.update(s for s in needed if not s.endswith(":.default"))
        emu.counters["consents_granted"] += 1
        resp = _issue_code(emu, params, redirect_uri, mode, app, user, scopes)
        resp.headers.append(("Set-Cookie", "emu_session=%s; Path=/entra; Secure; HttpOnly; SameSite=Lax"
                             % urllib.parse.quote(user["upn"])))
        return resp
    missing = _missing_consent(user, app, needed) if user else needed
    if prompt == "none":
        if user is None:
            return fail("interaction_required", "AADSTS50058: A silent sign-in request was sent but no user is "
                                                "signed in.")
        if missing:
            return fail("consent_required", "AADSTS65001: The user or administrator has not consented to use the "
                                            "application with ID '%s'." % app["client_id"])
    if user is not None and not missing and prompt not in ("consent", "login", "select_account"):
        return _issue_code(emu, params, redirect_uri, mode, app, user, scopes)
    return _consent_page(req, params, app, scopes, None)


def _session_user(req):
    for part in (req.header("Cookie") or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == "emu_session":
            return urllib.parse.unquote(v)
    return None


def _missing_consent(user, app, needed):
    have = user["consents"].get(app["client_id"].lower(), set())
    out = set()
    for s in needed:
        if s.endswith(":.default"):
            res = s.split(":", 1)[0]
            if not any(h.startswith(res + ":") for h in have):
                out.add(s)
        elif s not in have:
            out.add(s)
    return out


def _consent_page(req, params, app, scopes, problem):
    hidden = "".join('<input type="hidden" name="%s" value="%s">' % (htmlmod.escape(k), htmlmod.escape(v))
                     for k, v in params.items() if k not in ("consent", "login"))
    items = "".join("<li>%s</li>" % htmlmod.escape(s) for s in scopes if s.lower() not in OIDC_SCOPES)
    msg = '<p class="error">%s</p>' % htmlmod.escape(problem) if problem else ""
    action = "%s%s" % (req.host_url(), req.path)
    page = ("<!doctype html><html><head><title>Permissions requested</title></head><body>"
            "<h1>Permissions requested</h1><p><b>%s</b> would like to:</p><ul>%s</ul>%s"
            '<form method="post" action="%s">%s<label>Account <input name="login" value="%s"></label>'
            '<button name="consent" value="accept">Accept</button>'
            '<button name="consent" value="deny">Cancel</button></form></body></html>'
            % (htmlmod.escape(app["display_name"]), items, msg, htmlmod.escape(action), hidden,
               htmlmod.escape(params.get("login_hint") or _session_user(req) or "")))
    return html(200, page)


def _issue_code(emu, params, redirect_uri, mode, app, user, scopes):
    code = "emu_code_" + secrets.token_urlsafe(24)
    emu.auth_codes[code] = {
        "client_id": app["client_id"], "tenant": user["tenant"], "upn": user["upn"], "redirect_uri": redirect_uri,
        "scopes": scopes, "challenge": params.get("code_challenge"), "nonce": params.get("nonce"),
        "method": params.get("code_challenge_method", "plain") if params.get("code_challenge") else None,
        "expires": emu.now() + emu.config["auth_code_lifetime_s"], "used": False}
    emu.counters["auth_codes_issued"] += 1
    return _redirect_with(params, redirect_uri, mode, {"code": code})


# ---- token endpoint ---------------------------------------------------------

def _client_auth(req, form):
    cid, secret = form.get("client_id"), form.get("client_secret")
    auth = req.header("Authorization") or ""
    if auth[:6].lower() == "basic ":
        try:
            user, _, pw = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
            cid = cid or urllib.parse.unquote(user)
            secret = secret or urllib.parse.unquote(pw)
        except (ValueError, UnicodeDecodeError):
            pass
    return cid or "", secret


def token(emu, req, m):
    form = req.form()
    tkey = m.group(1)
    grant = form.get("grant_type", "")
    cid, secret = _client_auth(req, form)
    if not cid:
        return entra_error(400, "invalid_request", 900144,
                           "The request body must contain the following parameter: 'client_id'.", req)
    if tkey.lower() not in META_TENANTS and emu.find_tenant(tkey) is None:
        return entra_error(400, "invalid_request", 90002,
                           "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are "
                           "signing into the correct cloud." % tkey, req)
    tenant = None if tkey.lower() in META_TENANTS else emu.find_tenant(tkey)
    app = emu.find_app(cid, tenant)
    if app is None:
        return entra_error(400, "unauthorized_client", 700016,
                           "Application with identifier '%s' was not found in the directory '%s'." % (cid, tkey), req)
    if app["client_secret"]:
        if not secret:
            return entra_error(401, "invalid_client", 7000218,
                               "The request body must contain the following parameter: 'client_assertion' or "
                               "'client_secret'.", req)
        if not secrets.compare_digest(secret.encode(), app["client_secret"].encode()):
            emu.counters["bad_client_secrets"] += 1
            return entra_error(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in the request is the "
                               "client secret value, not the client secret ID, for a secret added to app '%s'."
                               % app["client_id"], req)
    if grant == "authorization_code":
        return _grant_code(emu, req, form, app)
    if grant == "refresh_token":
        return _grant_refresh(emu, req, form, app)
    if grant == "client_credentials":
        return _grant_client_credentials(emu, req, form, app, tkey)
    return entra_error(400, "unsupported_grant_type", 70003,
                       "The app requested an unsupported grant type '%s'." % grant, req)


def _resource_of(scopes):
    """First non-OIDC scope decides the resource (Entra: one resource per token)."""
    for s in scopes:
        res, _, prefix = split_scope(s)
        if res != "oidc":
            return res, prefix
    return "graph", "https://graph.microsoft.com"


def _id_token(emu, app, user, nonce, now):
    """A signed v2.0 ID token for user, or what the next queued ID token fault makes of it."""
    fault = emu.take_id_token_fault()
    cid = app["client_id"].lower()
    if fault == "replay" and cid in emu.last_id_tokens:
        return emu.last_id_tokens[cid]
    key = emu.signing_keys()[0]
    tid = user["tenant"]
    claims = {"aud": app["client_id"], "iss": ISSUER % tid, "iat": int(now), "nbf": int(now),
              "exp": int(now + ID_TOKEN_LIFETIME_S), "name": user["display_name"], "oid": user["object_id"],
              "preferred_username": user["upn"], "sub": jwk.b64url(uuid.uuid5(NS, "sub/%s/%s" % (
                  cid, user["object_id"])).bytes), "tid": tid, "ver": "2.0"}
    if user.get("email"):
        claims["email"] = user["email"]
    if nonce and fault != "no_nonce":
        claims["nonce"] = nonce
    header = {"typ": "JWT", "alg": "RS256", "kid": key.kid}
    if fault == "expired":
        claims.update(iat=int(now) - 2 * ID_TOKEN_LIFETIME_S, nbf=int(now) - 2 * ID_TOKEN_LIFETIME_S,
                      exp=int(now) - ID_TOKEN_LIFETIME_S)
    elif fault == "not_yet_valid":
        claims.update(iat=int(now) + ID_TOKEN_LIFETIME_S, nbf=int(now) + ID_TOKEN_LIFETIME_S,
                      exp=int(now) + 2 * ID_TOKEN_LIFETIME_S)
    elif fault == "wrong_audience":
        claims["aud"] = str(uuid.uuid5(NS, "another-app/" + cid))
    elif fault == "wrong_issuer":
        claims["iss"] = "https://sts.windows.net/%s/" % tid
    elif fault == "wrong_tenant":
        claims["tid"] = str(uuid.uuid5(NS, "another-tenant/" + tid))
    if fault == "unknown_kid":
        key = jwk.RsaKey.generate()   # a key nobody published
        header["kid"] = key.kid
    if fault == "alg_none":
        token = jwk.encode_jwt(dict(header, alg="none"), claims)
    elif fault == "hs256":
        # the published public key used as an HMAC secret: the classic algorithm confusion
        token = jwk.encode_jwt(dict(header, alg="HS256"), claims, hs256_secret=key.public_pem.encode())
    else:
        token = jwk.encode_jwt(header, claims, key)
    if fault == "bad_signature":
        head, _, sig = token.rpartition(".")
        token = head + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    emu.counters["id_tokens_issued"] += 1
    if fault is None:
        emu.last_id_tokens[cid] = token
    return token


def _issue_tokens(emu, req, app, user, scopes, grant, nonce=None):
    """scopes: raw requested scope strings. Returns the token response."""
    res, prefix = _resource_of(scopes)
    granted = user["consents"].get(app["client_id"].lower(), set())
    names = []
    for s in scopes:
        r, name, _ = split_scope(s)
        if r != res:
            continue
        if name == ".default":
            names += [g.split(":", 1)[1] for g in sorted(granted) if g.startswith(res + ":")]
        elif "%s:%s" % (res, name) in granted:
            names.append(name)
    names = sorted(set(names))
    at = "emu_at_" + secrets.token_urlsafe(32)
    now = emu.now()
    emu.tokens[at] = {"kind": "user", "tenant": user["tenant"], "id": user["upn"], "oid": user["object_id"],
                      "client_id": app["client_id"], "scopes": set(names), "resource": res,
                      "expires": now + emu.token_lifetime, "issued": now, "grant": grant}
    emu.counters["issued_" + grant] += 1
    body = {"token_type": "Bearer", "scope": " ".join("%s/%s" % (prefix, n) for n in names),
            "expires_in": emu.token_lifetime, "ext_expires_in": emu.token_lifetime, "access_token": at}
    lower = [s.lower() for s in scopes]
    if "offline_access" in lower:
        rt = "emu_rt_" + secrets.token_urlsafe(40)
        emu.refresh_tokens[rt] = {"client_id": app["client_id"], "upn": user["upn"], "tenant": user["tenant"],
                                  "scopes": list(scopes), "issued": now, "last_used": now, "uses": 0,
                                  "valid": True}
        body["refresh_token"] = rt
    if "openid" in lower:
        body["id_token"] = _id_token(emu, app, user, nonce, now)
    return json_resp(200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])


def _grant_code(emu, req, form, app):
    code = form.get("code", "")
    rec = emu.auth_codes.get(code)
    if rec is None or rec["client_id"].lower() != app["client_id"].lower():
        return entra_error(400, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid.",
                           req)
    if rec["used"]:
        return entra_error(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please "
                                                        "retry with a new valid code or use an existing refresh "
                                                        "token.", req)
    if rec["expires"] <= emu.now():
        return entra_error(400, "invalid_grant", 70008, "The provided authorization code or refresh token has "
                                                        "expired due to inactivity. Send a new interactive "
                                                        "authorization request for this user and resource.", req)
    if form.get("redirect_uri", "") != rec["redirect_uri"]:
        return entra_error(400, "invalid_grant", 500112, "The reply address '%s' does not match the reply address "
                                                         "'%s' provided when requesting Authorization code."
                           % (form.get("redirect_uri", ""), rec["redirect_uri"]), req)
    if rec["challenge"]:
        verifier = form.get("code_verifier")
        if not verifier:
            return entra_error(400, "invalid_grant", 50148, "The code_verifier does not match the code_challenge "
                                                            "supplied in the authorization request for PKCE.", req)
        computed = b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest()) \
            if rec["method"] == "S256" else verifier
        if not re.match(r"^[A-Za-z0-9._~-]{43,128}$", verifier) or computed != rec["challenge"]:
            return entra_error(400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge "
                                                             "supplied in the authorization request.", req)
    rec["used"] = True
    emu.counters["auth_codes_redeemed"] += 1
    user = emu.find_user(rec["upn"], emu.tenants[rec["tenant"]])
    scopes = rec["scopes"]
    if form.get("scope"):
        asked = form["scope"].split()
        resources = {split_scope(s)[0] for s in asked} - {"oidc"}
        if len(resources) > 1:
            return entra_error(400, "invalid_scope", 70011, "The provided request must include a 'scope' input "
                                                            "parameter for a single resource.", req)
        scopes = asked + [s for s in rec["scopes"] if s.lower() in OIDC_SCOPES]
    return _issue_tokens(emu, req, app, user, scopes, "authorization_code", rec.get("nonce"))


def _grant_refresh(emu, req, form, app):
    rt = form.get("refresh_token", "")
    rec = emu.refresh_tokens.get(rt)
    emu.counters["refresh_token_attempts"] += 1
    if rec is None or rec["client_id"].lower() != app["client_id"].lower():
        return entra_error(400, "invalid_grant", 70000, "The provided value for the 'refresh_token' is not valid.",
                           req)
    now = emu.now()
    if not rec["valid"]:
        return entra_error(400, "invalid_grant", 70008, "The provided authorization code or refresh token has "
                                                        "expired or was revoked. Send a new interactive "
                                                        "authorization request for this user and resource.", req)
    if now - rec["last_used"] > emu.config["refresh_token_inactive_s"]:
        return entra_error(400, "invalid_grant", 700082, "The refresh token has expired due to inactivity. The token "
                                                         "was issued on %s and was inactive for 90.00:00:00."
                           % rec["issued"], req)
    user = emu.find_user(rec["upn"], emu.tenants[rec["tenant"]])
    if user is None or user["tokens_valid_from"] > rec["issued"]:
        return entra_error(400, "invalid_grant", 50173, "The provided grant has expired due to it being revoked, a "
                                                        "fresh auth token is needed. The user might have changed or "
                                                        "reset their password.", req)
    scopes = form.get("scope", "").split() or rec["scopes"]
    resources = {split_scope(s)[0] for s in scopes} - {"oidc"}
    needed = emu.norm_scopes(scopes)
    missing = _missing_consent(user, app, needed)
    if missing:
        return entra_error(400, "invalid_grant", 65001, "The user or administrator has not consented to use the "
                                                        "application with ID '%s'. Send an interactive authorization "
                                                        "request for this user and resource." % app["client_id"], req)
    if not resources:
        return entra_error(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not "
                                                        "valid.", req)
    rec["uses"] += 1
    rec["last_used"] = now
    if emu.config["refresh_token_reuse"] == "reject":
        rec["valid"] = False
    emu.counters["refresh_token_exchanges"] += 1
    return _issue_tokens(emu, req, app, user, scopes + ["offline_access"], "refresh_token")


def _grant_client_credentials(emu, req, form, app, tkey):
    if not app["is_service_principal"]:
        return entra_error(400, "unauthorized_client", 700016, "Application with identifier '%s' was not found in "
                                                               "the directory '%s'." % (app["client_id"], tkey), req)
    scopes = form.get("scope", "").split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        return entra_error(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not "
                                                        "valid. The scope %s is not valid. Client credential flows "
                                                        "must have a scope value with /.default suffixed to the "
                                                        "resource identifier." % " ".join(scopes), req)
    res, _, _ = split_scope(scopes[0])
    if res not in ("pbi", "graph"):
        return entra_error(400, "invalid_resource", 500011, "The resource principal named %s was not found in the "
                                                            "tenant." % scopes[0], req)
    at = "emu_at_" + secrets.token_urlsafe(32)
    now = emu.now()
    emu.tokens[at] = {"kind": "app", "tenant": app["tenant"], "id": app["client_id"], "oid": app["sp_object_id"],
                      "client_id": app["client_id"], "scopes": set(), "resource": res,
                      "expires": now + emu.token_lifetime, "issued": now, "grant": "client_credentials"}
    emu.counters["issued_client_credentials"] += 1
    return json_resp(200, {"token_type": "Bearer", "expires_in": emu.token_lifetime,
                           "ext_expires_in": emu.token_lifetime, "access_token": at},
                     [("Cache-Control", "no-store"), ("Pragma", "no-cache")])


def openid_configuration(emu, req, m):
    """The tenant's OpenID configuration, shaped as login.microsoftonline.com's; the issuer names the
    tenant's id (or {tenantid} for the multi-tenant keys), the endpoints are the emulator's own."""
    key = m.group(1)
    if key.lower() in META_TENANTS:
        tid = "{tenantid}"
    else:
        tenant = emu.find_tenant(key)
        if tenant is None:
            return entra_error(400, "invalid_tenant", 90002, "Tenant '%s' not found. Check to make sure you have the "
                                                             "correct tenant ID and are signing into the correct "
                                                             "cloud." % key, req)
        tid = tenant["id"]
    emu.counters["openid_configuration_reads"] += 1
    base = req.host_url() + "/" + key
    return json_resp(200, {"token_endpoint": base + "/oauth2/v2.0/token",
                           "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                                     "client_secret_basic"],
                           "jwks_uri": base + "/discovery/v2.0/keys",
                           "response_modes_supported": ["query", "fragment", "form_post"],
                           "subject_types_supported": ["pairwise"],
                           "id_token_signing_alg_values_supported": ["RS256"],
                           "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                           "scopes_supported": ["openid", "profile", "email", "offline_access"],
                           "issuer": ISSUER % tid,
                           "request_uri_parameter_supported": False,
                           "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
                           "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                           "end_session_endpoint": base + "/oauth2/v2.0/logout",
                           "code_challenge_methods_supported": ["S256", "plain"],
                           "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
                                                "preferred_username", "name", "tid", "ver", "at_hash", "c_hash",
                                                "email"],
                           "tenant_region_scope": "EU", "cloud_instance_name": "microsoftonline.com"},
                     [("Cache-Control", "max-age=86400, private")])


def jwks(emu, req, m):
    """The signing keys (the same set for every tenant, as Entra's)."""
    emu.counters["jwks_reads"] += 1
    return json_resp(200, {"keys": [dict(k.jwk(), issuer=ISSUER % "{tenantid}") for k in emu.signing_keys()]},
                     [("Cache-Control", "max-age=86400, private")])


ROUTES = [
    ("GET", r"/([^/]+)/oauth2/v2\.0/authorize", authorize),
    ("POST", r"/([^/]+)/oauth2/v2\.0/authorize", authorize),
    ("POST", r"/([^/]+)/oauth2/v2\.0/token", token),
    ("GET", r"/([^/]+)/v2\.0/\.well-known/openid-configuration", openid_configuration),
    ("GET", r"/([^/]+)/discovery/v2\.0/keys", jwks),
]


def not_found(req):
    return Resp(404, b"", [])
