"""Microsoft Graph: service principal / application lookup by appId, revokeSignInSessions."""

import re

from common import HttpError, graph_error, json_resp


def _auth(emu, req):
    info, problem = emu.token_info(req.bearer())
    if problem == "expired":
        raise HttpError(graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is "
                                                                        "expired.", req))
    if problem or info["resource"] != "graph":
        raise HttpError(graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid "
                                                                        "audience.", req))
    return info


def _can_read_apps(emu, p, app_id):
    if p["kind"] == "app":
        if p["client_id"].lower() == app_id.lower():
            return True  # an SP may read its own application and service principal
        me = emu.find_app(p["client_id"])
        perms = set(me["graph_permissions"]) if me else set()
        return bool(perms & {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"})
    return bool(p["scopes"] & {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
                               "User.Read"})


def _sp_object(app, kind):
    if kind == "servicePrincipals":
        return {"id": app["sp_object_id"], "appId": app["client_id"], "displayName": app["display_name"],
                "appDisplayName": app["display_name"], "servicePrincipalType": "Application",
                "accountEnabled": True, "appOwnerOrganizationId": app["tenant"]}
    return {"id": app["object_id"], "appId": app["client_id"], "displayName": app["display_name"],
            "signInAudience": "AzureADMultipleOrgs"}


def _select(obj, req):
    sel = req.q("$select")
    if not sel:
        return obj
    keys = [k.strip() for k in sel.split(",") if k.strip()]
    return {k: obj[k] for k in keys if k in obj} | ({"id": obj["id"]} if "id" in obj else {})


def _lookup(emu, req, p, app_id):
    if not _can_read_apps(emu, p, app_id):
        raise HttpError(graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the "
                                                                         "operation.", req))
    return emu.find_app(app_id, emu.tenants.get(p["tenant"]))


def get_by_app_id(emu, req, m):
    p = _auth(emu, req)
    kind, app_id = m.group(1), m.group(2)
    app = _lookup(emu, req, p, app_id)
    if app is None:
        return graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of its queried "
                                                             "reference-property objects are not present." % app_id, req)
    ctx = "https://graph.microsoft.com/v1.0/$metadata#%s/$entity" % kind
    return json_resp(200, {"@odata.context": ctx} | _select(_sp_object(app, kind), req))


def list_filtered(emu, req, m):
    p = _auth(emu, req)
    kind = m.group(1)
    flt = req.q("$filter") or ""
    fm = re.match(r"^\s*appId\s+eq\s+'([^']*)'\s*$", flt, re.IGNORECASE)
    if not fm:
        return graph_error(400, "Request_UnsupportedQuery", "Unsupported query: only $filter=appId eq '...' is "
                                                             "emulated.", req)
    app = _lookup(emu, req, p, fm.group(1))
    value = [_select(_sp_object(app, kind), req)] if app else []
    return json_resp(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#%s" % kind, "value": value})


def revoke_sessions(emu, req, m):
    p = _auth(emu, req)
    who = m.group(1)
    if who is None:
        if p["kind"] != "user":
            return graph_error(400, "BadRequest", "/me request is only valid with delegated authentication flow.", req)
        target = p["id"]
    else:
        target = who
    user = None
    for t in emu.tenants.values():
        for u in t["users"].values():
            if u["upn"].lower() == target.lower() or u["object_id"].lower() == target.lower():
                user = u
    if user is None:
        return graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist." % target, req)
    user["tokens_valid_from"] = emu.now()
    emu.counters["sessions_revoked"] += 1
    return json_resp(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": True})


ROUTES = [
    ("GET", r"/v1\.0/(servicePrincipals|applications)\(appId='([^']*)'\)", get_by_app_id),
    ("GET", r"/v1\.0/(servicePrincipals|applications)", list_filtered),
    ("POST", r"/v1\.0/(?:me|users/([^/]+))/revokeSignInSessions", revoke_sessions),
]
