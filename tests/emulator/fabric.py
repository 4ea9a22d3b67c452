"""Fabric REST API (api.fabric.microsoft.com/v1): workspaces, items, semantic models with
long-running operations, connections, item connections, bindConnection."""

import base64
import binascii
import json
import urllib.parse

import tmdl
from common import HttpError, empty, fabric_error, iso, json_resp, new_id

WWW_AUTH = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
            'error="invalid_token"')
READ_WS = ("Workspace.Read.All", "Workspace.ReadWrite.All")
READ_ITEMS = ("Item.Read.All", "Item.ReadWrite.All", "SemanticModel.Read.All", "SemanticModel.ReadWrite.All")
WRITE_MODELS = ("SemanticModel.ReadWrite.All", "Item.ReadWrite.All")
READ_CONN = ("Connection.Read.All", "Connection.ReadWrite.All")
WRITE_CONN = ("Connection.ReadWrite.All",)

# GET /v1/connections/supportedConnectionTypes (cloud). A connection's path is the values of
# its parameters in this order, joined with ';' (Fabric shows "contoso.database.windows.net;sales"),
# the optional ones only when given; one without parameters (Google BigQuery: "it lacks a
# parameters field", learn.microsoft.com/power-query/connectors/google-bigquery) has its type as
# path, as Power BI names such a data source.
def _text(name, required=True):
    return {"name": name, "dataType": "Text", "required": required}


SUPPORTED_TYPES = [
    {"type": "Snowflake", "creationMethods": [{"name": "Snowflake.Databases", "parameters": [
        _text("server"), _text("warehouse"), _text("Role", False)]}],
     "supportedCredentialTypes": ["Basic", "KeyPair", "OAuth2"]},
    {"type": "Databricks", "creationMethods": [{"name": "Databricks.Catalogs", "parameters": [
        _text("host"), _text("httpPath"), _text("Catalog", False)]}],
     "supportedCredentialTypes": ["Key", "Basic", "ServicePrincipal", "OAuth2"]},
    # SQL Server, Azure SQL, Azure Synapse, the Fabric Warehouse / Lakehouse SQL endpoint
    {"type": "SQL", "creationMethods": [{"name": "SQL", "parameters": [
        _text("server"), _text("database", False)]}],
     "supportedCredentialTypes": ["Basic", "OAuth2", "ServicePrincipal", "WorkspaceIdentity"]},
    {"type": "PostgreSQL", "creationMethods": [{"name": "PostgreSQL.Database", "parameters": [
        _text("server"), _text("database")]}],
     "supportedCredentialTypes": ["Basic"]},
    {"type": "AmazonRedshift", "creationMethods": [{"name": "AmazonRedshift.Database", "parameters": [
        _text("server"), _text("database")]}],
     "supportedCredentialTypes": ["Basic", "OAuth2"]},
    {"type": "GoogleBigQuery", "creationMethods": [{"name": "GoogleBigQuery.Database", "parameters": []}],
     "supportedCredentialTypes": ["Basic", "OAuth2"]},
]
# Offered only through an on-premises data gateway (supportedConnectionTypes?gatewayId=): the
# connectors whose Power Query pages say "online service with gateway".
GATEWAY_ONLY_TYPES = [
    {"type": "Oracle", "creationMethods": [{"name": "Oracle.Database", "parameters": [_text("server")]}],
     "supportedCredentialTypes": ["Basic", "Windows"]},
    {"type": "MySql", "creationMethods": [{"name": "MySQL.Database", "parameters": [
        _text("server"), _text("database")]}],
     "supportedCredentialTypes": ["Basic", "Windows"]},
]
CREDENTIAL_FIELDS = {
    "Basic": (("username",), ("password", "passwordReference")),
    "Key": ((), ("key", "keyReference")),
    "ServicePrincipal": (("tenantId", "servicePrincipalClientId"),
                         ("servicePrincipalSecret", "servicePrincipalSecretReference")),
    "KeyPair": (("identifier", "privateKey"), ()),
    "Anonymous": ((), ()),
    "WorkspaceIdentity": ((), ()),
}
PRIVACY = ("None", "Private", "Organizational", "Public")


# ---- authentication, access ------------------------------------------------------

def auth(emu, req, need=None):
    info, problem = emu.token_info(req.bearer())
    if problem == "expired":
        raise HttpError(fabric_error(req, 401, "TokenExpired", "Access token has expired, resubmit with a new access "
                                                               "token",
                                     [("WWW-Authenticate", WWW_AUTH + ', error_description="The access token has '
                                                                      'expired"')]))
    if problem or info["resource"] != "pbi":
        raise HttpError(fabric_error(req, 401, "Unauthorized", "The caller is not authenticated to access this "
                                                               "resource", [("WWW-Authenticate", WWW_AUTH)]))
    tenant = emu.tenants[info["tenant"]]
    if info["kind"] == "app" and not tenant["settings"]["service_principals_allowed"]:
        raise HttpError(fabric_error(req, 401, "PrincipalTypeNotSupported", "The tenant setting 'Service principals "
                                                                            "can use Fabric APIs' is disabled"))
    if need and info["kind"] == "user" and not (info["scopes"] & set(need)):
        raise HttpError(fabric_error(req, 403, "InsufficientScopes", "The caller does not have sufficient scopes to "
                                                                     "perform this operation. Required: %s"
                                     % " or ".join(need)))
    return info


def _ws(emu, req, p, wid, min_rank=1):
    ws = emu.workspaces.get(wid.lower()) or emu.workspaces.get(wid)
    if ws is None or ws["tenant"] != p["tenant"]:
        raise HttpError(fabric_error(req, 404, "WorkspaceNotFound", "The requested workspace was not found"))
    rank = emu.role_rank(ws, p)
    if rank < min_rank:
        code = "InsufficientPrivileges" if rank == 0 else "InsufficientWorkspaceRole"
        raise HttpError(fabric_error(req, 403, code, "The caller does not have sufficient permissions in workspace "
                                                     "'%s' (needs %s)" % (ws["name"], _role_name(min_rank))))
    return ws


def _role_name(rank):
    return {1: "Viewer", 2: "Contributor", 3: "Member", 4: "Admin"}[rank]


def _model(emu, req, ws, mid):
    m = emu.models.get(mid)
    if m is None or m["workspace"] != ws["id"]:
        raise HttpError(fabric_error(req, 404, "ItemNotFound", "The requested item was not found"))
    return m


def _ws_json(ws):
    d = {"id": ws["id"], "displayName": ws["name"], "description": ws["description"], "type": ws["type"]}
    if ws["capacityId"]:
        d["capacityId"] = ws["capacityId"]
    return d


def model_item(m):
    return {"id": m["id"], "type": "SemanticModel", "displayName": m["name"], "description": m["description"],
            "workspaceId": m["workspace"]}


def _paged(emu, req, items, render=None):
    size = max(1, int(emu.config["page_size"]))
    start = 0
    tok = req.q("continuationToken")
    if tok:
        try:
            start = int(base64.b64decode(tok, validate=True).decode("ascii").split(":", 1)[1])
        except (ValueError, IndexError, binascii.Error, UnicodeDecodeError):
            raise HttpError(fabric_error(req, 400, "InvalidContinuationToken", "The continuation token is not valid"))
    page = items[start:start + size]
    body = {"value": [render(i) for i in page] if render else page}
    if start + size < len(items):
        raw = base64.b64encode(("off:%d" % (start + size)).encode()).decode()
        enc = urllib.parse.quote(raw, safe="")  # pre-encoded, as the service sends it
        other = [(k, v) for k, v in req.query.items() if k != "continuationToken"]
        qs = urllib.parse.urlencode(other)
        body["continuationToken"] = enc
        body["continuationUri"] = "%s%s?%scontinuationToken=%s" % (req.host_url(), req.path,
                                                                    qs + "&" if qs else "", enc)
    return json_resp(200, body)


# ---- workspaces and items ---------------------------------------------------------

def list_workspaces(emu, req, m):
    p = auth(emu, req, READ_WS + ("Item.Read.All", "Item.ReadWrite.All"))
    roles = {r.strip().lower() for r in (req.q("roles") or "").split(",") if r.strip()}
    items = emu.visible_workspaces(p)
    if roles:
        items = [ws for ws in items if _role_name(emu.role_rank(ws, p)).lower() in roles]
    return _paged(emu, req, items, _ws_json)


def get_workspace(emu, req, m):
    p = auth(emu, req, READ_WS + ("Item.Read.All", "Item.ReadWrite.All"))
    return json_resp(200, _ws_json(_ws(emu, req, p, m.group(1))))


def _items_of(emu, ws, typ=None):
    out = []
    for md in emu.ws_models(ws):
        out.append(model_item(md))
    for r in emu.ws_reports(ws):
        out.append({"id": r["id"], "type": "PaginatedReport" if r["reportType"] == "PaginatedReport" else "Report",
                    "displayName": r["name"], "description": r["description"], "workspaceId": ws["id"]})
    for d in emu.ws_dashboards(ws):
        out.append({"id": d["id"], "type": "Dashboard", "displayName": d["name"], "description": "",
                    "workspaceId": ws["id"]})
    if typ:
        out = [i for i in out if i["type"].lower() == typ.lower()]
    return sorted(out, key=lambda i: (i["displayName"].lower(), i["id"]))


def list_items(emu, req, m):
    p = auth(emu, req, READ_ITEMS)
    ws = _ws(emu, req, p, m.group(1))
    return _paged(emu, req, _items_of(emu, ws, req.q("type")))


def list_models(emu, req, m):
    p = auth(emu, req, READ_ITEMS)
    ws = _ws(emu, req, p, m.group(1))
    return _paged(emu, req, _items_of(emu, ws, "SemanticModel"))


def list_reports(emu, req, m):
    p = auth(emu, req, ("Item.Read.All", "Item.ReadWrite.All", "Report.Read.All", "Report.ReadWrite.All"))
    ws = _ws(emu, req, p, m.group(1))
    return _paged(emu, req, [i for i in _items_of(emu, ws) if i["type"] in ("Report", "PaginatedReport")])


def get_model(emu, req, m):
    p = auth(emu, req, READ_ITEMS)
    ws = _ws(emu, req, p, m.group(1))
    return json_resp(200, model_item(_model(emu, req, ws, m.group(2))))


# ---- definitions -------------------------------------------------------------------

def _corrupt(req, msg):
    return HttpError(fabric_error(req, 400, "CorruptedPayload", msg))


def decode_definition(req, definition):
    """Checks the part structure; returns dict path -> text. Raises HttpError(400 CorruptedPayload)."""
    if not isinstance(definition, dict) or not isinstance(definition.get("parts"), list) or not definition["parts"]:
        raise HttpError(fabric_error(req, 400, "InvalidRequest", "The 'definition.parts' field is required"))
    fmt = definition.get("format")
    if fmt not in (None, "", "TMDL", "TMSL"):
        raise _corrupt(req, "Unsupported definition format '%s'" % fmt)
    parts = {}
    for part in definition["parts"]:
        if not isinstance(part, dict) or not isinstance(part.get("path"), str) or "payload" not in part:
            raise _corrupt(req, "Each part needs 'path', 'payload' and 'payloadType'")
        if part.get("payloadType") != "InlineBase64":
            raise _corrupt(req, "Part '%s': payloadType must be InlineBase64" % part["path"])
        try:
            parts[part["path"].lstrip("/")] = base64.b64decode(part["payload"], validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError, TypeError):
            raise _corrupt(req, "Part '%s' is not valid base64-encoded UTF-8" % part["path"])
    pbism = parts.get("definition.pbism") or parts.get("definition.pbidataset")
    if pbism is None:
        raise _corrupt(req, "The required part 'definition.pbism' is missing")
    try:
        version = float(str(json.loads(pbism).get("version", "0")).split(".")[0] + "." +
                        (str(json.loads(pbism).get("version", "0")).split(".") + ["0"])[1])
    except (ValueError, AttributeError):
        raise _corrupt(req, "Part 'definition.pbism' is not valid JSON with a 'version'")
    has_tmdl = any(p.startswith("definition/") for p in parts)
    if has_tmdl and "model.bim" in parts:
        raise _corrupt(req, "A definition cannot contain both 'model.bim' and 'definition/' parts")
    if not has_tmdl and "model.bim" not in parts:
        raise _corrupt(req, "The definition has neither 'definition/*.tmdl' parts nor 'model.bim'")
    if has_tmdl and version < 4.0:
        raise _corrupt(req, "TMDL definitions need 'definition.pbism' version 4.0 or above (got %s)" % version)
    return parts


def parse_definition(parts):
    """dict path -> text => parsed model; raises tmdl.TmdlError."""
    if "model.bim" in parts:
        try:
            bim = json.loads(parts["model.bim"])
        except ValueError as e:
            raise tmdl.TmdlError("model.bim", 1, "invalid JSON: %s" % e)
        model = bim.get("model") or {}

        def text(v):
            return "\n".join(v) if isinstance(v, list) else (v or "")
        tables = []
        for t in model.get("tables") or []:
            tables.append({"name": t.get("name"), "isHidden": bool(t.get("isHidden")),
                           "columns": [{"name": c.get("name"), "dataType": c.get("dataType", "string"),
                                        "isHidden": bool(c.get("isHidden")), "columnType": "Data"}
                                       for c in t.get("columns") or []],
                           "measures": [{"name": x.get("name"), "expression": text(x.get("expression"))}
                                        for x in t.get("measures") or []],
                           "partitions": [{"name": x.get("name"), "type": (x.get("source") or {}).get("type", "m"),
                                           "mode": x.get("mode", "import"),
                                           "source": text((x.get("source") or {}).get("expression"))}
                                          for x in t.get("partitions") or []]})
        return {"tables": tables, "relationships": [],
                "expressions": [{"name": e.get("name"), "expression": text(e.get("expression"))}
                                for e in model.get("expressions") or []]}
    return tmdl.parse_parts({k: v for k, v in parts.items() if k.startswith("definition/")})


def _lro_or_sync(emu, req, p, kind, on_finish, sync_status, precheck_error=None):
    """Runs on_finish at once (sync mode) or starts an operation (202 + Location)."""
    if emu.config["lro_mode"] == "sync":
        op = {"error": precheck_error, "result": None}
        if precheck_error is None:
            err = on_finish(op)
            if err:
                op["error"] = err
        if op["error"]:
            e = op["error"]
            return fabric_error(req, 400, e["errorCode"], e["message"])
        if op["result"] is None:
            return empty(sync_status)
        return json_resp(sync_status, op["result"])
    oid = new_id()
    now = emu.now()
    emu.operations[oid] = {"id": oid, "kind": kind, "status": "NotStarted", "created": now, "updated": now,
                           "duration": float(emu.config["lro_duration_s"]), "polls": 0, "principal": p["id"],
                           "percentComplete": 0, "result": None, "error": precheck_error, "on_finish": on_finish}
    emu.counters["operations_started"] += 1
    loc = "%s/v1/operations/%s" % (req.host_url(), oid)
    return empty(202, [("Location", loc), ("x-ms-operation-id", oid),
                       ("Retry-After", str(emu.config["retry_after_s"]))])


def _name_taken(emu, ws, name, skip_id=None, skip_op=None):
    low = name.lower()
    if any(md["name"].lower() == low and md["id"] != skip_id for md in emu.ws_models(ws)):
        return True
    return any(op["status"] in ("NotStarted", "Running") and op.get("ws") == ws["id"] and op["id"] != skip_op
               and op.get("name", "").lower() == low for op in emu.operations.values())


def create_model(emu, req, m):
    p = auth(emu, req, WRITE_MODELS)
    ws = _ws(emu, req, p, m.group(1), min_rank=2)
    body = req.json()
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip():
        return fabric_error(req, 400, "InvalidRequest", "The 'displayName' field is required")
    if len(body.get("description") or "") > 256:
        return fabric_error(req, 400, "InvalidRequest", "The 'description' field is longer than 256 characters")
    if _name_taken(emu, ws, name):
        return fabric_error(req, 400, "ItemDisplayNameAlreadyInUse", "Requested '%s' is already in use" % name)
    parts = decode_definition(req, body.get("definition"))
    parse_error = None
    parsed = None
    try:
        parsed = parse_definition(parts)
    except tmdl.TmdlError as e:
        parse_error = {"errorCode": "CorruptedPayload", "message": "The definition could not be parsed: %s" % e,
                       "moreDetails": [{"errorCode": "TmdlFormatException", "message": str(e)}]}
    owner = p["id"]

    def finish(op):
        if _name_taken(emu, ws, name, skip_op=op.get("id")):
            return {"errorCode": "ItemDisplayNameAlreadyInUse", "message": "Requested '%s' is already in use" % name}
        model = emu.add_model(ws, {"name": name, "description": body.get("description", ""), "owner": owner},
                              by_api=True, parts=parts, parsed=parsed)
        op["result"] = model_item(model)
        emu.counters["models_created"] += 1
        return None

    resp = _lro_or_sync(emu, req, p, "createSemanticModel", finish, 201, parse_error)
    if resp.status == 202:
        op = emu.operations[dict(resp.headers)["x-ms-operation-id"]]
        op["ws"], op["name"] = ws["id"], name
    return resp


def _tmsl(m):
    """model.bim for format=TMSL, built from the parsed model."""
    p = m["parsed"]
    tables = [{"name": t["name"],
               "columns": [{"name": c["name"], "dataType": c.get("dataType", "string"),
                            "sourceColumn": c.get("sourceColumn", c["name"])} for c in t.get("columns") or []],
               "measures": [{"name": x["name"], "expression": x.get("expression", "")} for x in t.get("measures") or []],
               "partitions": [{"name": x["name"], "mode": x.get("mode", "import"),
                               "source": {"type": x.get("type", "m"), "expression": x.get("source") or ""}}
                              for x in t.get("partitions") or []]} for t in p["tables"]]
    return json.dumps({"name": m["name"], "compatibilityLevel": 1604,
                       "model": {"culture": "en-US", "tables": tables,
                                 "expressions": [{"name": e["name"], "kind": "m", "expression": e["expression"]}
                                                 for e in p.get("expressions") or []]}}, indent=2)


def _definition_json(emu, m, fmt):
    if fmt == "TMSL":
        parts = {"definition.pbism": '{"version":"1.0","settings":{}}\n', "model.bim": _tmsl(m)}
    else:
        parts = dict(emu.model_parts(m))
    parts[".platform"] = json.dumps({"$schema": "https://developer.microsoft.com/json-schemas/fabric/"
                                                "gitIntegration/platformProperties/2.0.0/schema.json",
                                     "metadata": {"type": "SemanticModel", "displayName": m["name"]},
                                     "config": {"version": "2.0", "logicalId": m["id"]}}, indent=2)
    return {"definition": {"format": fmt, "parts": [
        {"path": k, "payload": base64.b64encode(v.encode("utf-8")).decode("ascii"), "payloadType": "InlineBase64"}
        for k, v in sorted(parts.items())]}}


def get_definition(emu, req, m):
    p = auth(emu, req, WRITE_MODELS)
    ws = _ws(emu, req, p, m.group(1), min_rank=2)
    model = _model(emu, req, ws, m.group(2))
    fmt = req.q("format") or "TMDL"
    if model["push"] is not None or fmt not in ("TMDL", "TMSL"):
        return fabric_error(req, 400, "OperationNotSupportedForItem", "getDefinition is not supported for this item "
                                                                      "or format")

    def finish(op):
        op["result"] = _definition_json(emu, model, fmt)
        return None
    return _lro_or_sync(emu, req, p, "getDefinition", finish, 200)


def update_definition(emu, req, m):
    p = auth(emu, req, WRITE_MODELS)
    ws = _ws(emu, req, p, m.group(1), min_rank=2)
    model = _model(emu, req, ws, m.group(2))
    if model["push"] is not None:
        return fabric_error(req, 400, "OperationNotSupportedForItem", "updateDefinition is not supported for push "
                                                                      "datasets")
    parts = decode_definition(req, req.json().get("definition"))
    parse_error = None
    parsed = None
    try:
        parsed = parse_definition(parts)
    except tmdl.TmdlError as e:
        parse_error = {"errorCode": "CorruptedPayload", "message": "The definition could not be parsed: %s" % e}

    def finish(op):
        model["parts"] = {k: v for k, v in parts.items() if k != ".platform"}
        model["parsed"] = parsed
        model["datasources"] = tmdl.datasources_of(parsed)
        keys = {(d["type"].lower(), d["path"].lower()) for d in model["datasources"]}
        model["bindings"] = {k: v for k, v in model["bindings"].items() if k in keys}
        model["modified"] = emu.now()
        emu.workspaces[model["workspace"]]["modified"] = emu.now()
        emu.counters["definitions_updated"] += 1
        return None
    return _lro_or_sync(emu, req, p, "updateDefinition", finish, 200, parse_error)


def patch_model(emu, req, m):
    p = auth(emu, req, WRITE_MODELS)
    ws = _ws(emu, req, p, m.group(1), min_rank=2)
    model = _model(emu, req, ws, m.group(2))
    body = req.json()
    if "displayName" in body:
        if not body["displayName"] or _name_taken(emu, ws, body["displayName"], model["id"]):
            return fabric_error(req, 400, "ItemDisplayNameAlreadyInUse",
                                "Requested '%s' is already in use" % body["displayName"])
        model["name"] = body["displayName"]
    if "description" in body:
        model["description"] = body["description"] or ""
    model["modified"] = emu.now()
    return json_resp(200, model_item(model))


def delete_model(emu, req, m):
    p = auth(emu, req, WRITE_MODELS)
    ws = _ws(emu, req, p, m.group(1), min_rank=2)
    model = _model(emu, req, ws, m.group(2))
    emu.remove_model(model["id"])
    return empty(200)


# ---- operations --------------------------------------------------------------------

def _operation(emu, req, m):
    auth(emu, req)
    op = emu.operations.get(m.group(1))
    if op is None:
        raise HttpError(fabric_error(req, 404, "OperationNotFound", "The requested operation was not found"))
    return op


def get_operation(emu, req, m):
    op = _operation(emu, req, m)
    if op["status"] in ("NotStarted", "Running"):
        phase = emu.poll_machine(op, int(emu.config["lro_polls"]), emu.finish_operation)
        if phase < 2:
            op["percentComplete"] = (0, 50)[phase]
            op["updated"] = emu.now()
    status = op["status"]
    body = {"status": status, "createdTimeUtc": iso(op["created"]), "lastUpdatedTimeUtc": iso(op["updated"]),
            "percentComplete": op["percentComplete"]}
    headers = [("x-ms-operation-id", op["id"])]
    if status in ("NotStarted", "Running"):
        headers += [("Location", "%s/v1/operations/%s" % (req.host_url(), op["id"])),
                    ("Retry-After", str(emu.config["retry_after_s"]))]
    elif status == "Succeeded" and op["result"] is not None:
        # as in the service's own examples, the result Location lacks /v1
        headers.append(("Location", "%s/operations/%s/result" % (req.host_url(), op["id"])))
    if status == "Failed":
        e = dict(op["error"])
        e.setdefault("requestId", req.request_id)
        body["error"] = e
    return json_resp(200, body, headers)


def get_operation_result(emu, req, m):
    op = _operation(emu, req, m)
    if op["status"] in ("NotStarted", "Running"):
        return fabric_error(req, 400, "OperationNotCompleted", "The operation has not completed yet")
    if op["status"] == "Failed":
        return fabric_error(req, 400, "OperationFailed", "The operation failed: %s" % op["error"]["message"])
    if op["result"] is None:
        return fabric_error(req, 404, "OperationHasNoResult", "This operation has no result")
    return json_resp(200, op["result"])


# ---- connections -------------------------------------------------------------------

def conn_json(emu, c):
    d = {"id": c["id"], "displayName": c["displayName"], "connectivityType": c["connectivityType"],
         "connectionDetails": {"type": c["type"], "path": c["path"]}, "privacyLevel": c["privacyLevel"],
         "credentialDetails": {"credentialType": c["credentialType"], "singleSignOnType": c["singleSignOnType"],
                               "connectionEncryption": c["connectionEncryption"],
                               "skipTestConnection": c["skipTestConnection"]},
         "allowConnectionUsageInGateway": False, "allowUsageInUserControlledCode": False,
         "connectionRecency": {"createdDateTime": iso(c["created"])}}
    if c.get("lastBound"):
        d["connectionRecency"]["lastBoundDateTime"] = iso(c["lastBound"])
    if c["connectivityType"] == "ShareableCloud":
        d["gatewayId"] = emu.tenants[c["tenant"]]["gateway_id"]
    elif c.get("gatewayId"):   # an on-premises gateway's data source (gateways.py)
        d["gatewayId"] = c["gatewayId"]
    return d


def _visible_conn(c, p):
    who = p["id"].lower()
    return c["tenant"] == p["tenant"] and (c["owner"].lower() == who or who in c["users"] or "*" in c["users"]
                                           or who in c.get("gateway_admins", ()))


def _conn(emu, req, p, cid):
    c = emu.connections.get(cid)
    if c is None or not _visible_conn(c, p):
        raise HttpError(fabric_error(req, 404, "EntityNotFound", "The requested connection was not found"))
    return c


def list_connections(emu, req, m):
    p = auth(emu, req, READ_CONN)
    items = sorted((c for c in emu.connections.values() if _visible_conn(c, p)),
                   key=lambda c: (c["displayName"].lower(), c["id"]))
    return _paged(emu, req, [conn_json(emu, c) for c in items])


def supported_types(emu, req, m):
    auth(emu, req, READ_CONN)
    out = []
    for t in (SUPPORTED_TYPES + GATEWAY_ONLY_TYPES if req.q("gatewayId") else SUPPORTED_TYPES):
        d = dict(t)
        d["supportedConnectionEncryptionTypes"] = ["Encrypted", "NotEncrypted"]
        d["supportsSkipTestConnection"] = True
        d["supportedCredentialTypesForUsageInUserControlledCode"] = []
        out.append(d)
    return json_resp(200, {"value": out})


def _validate_details(req, details):
    if not isinstance(details, dict):
        raise HttpError(fabric_error(req, 400, "InvalidConnectionDetails", "'connectionDetails' is required"))
    meta = next((t for t in SUPPORTED_TYPES if t["type"] == details.get("type")), None)
    if meta is None:
        raise HttpError(fabric_error(req, 400, "InvalidConnectionDetails", "Connection type '%s' is not supported"
                                     % details.get("type")))
    method_name = details.get("creationMethod") or details.get("CreationMethod")
    method = next((x for x in meta["creationMethods"] if x["name"] == method_name), None)
    if method is None:
        raise HttpError(fabric_error(req, 400, "InvalidConnectionDetails", "Creation method '%s' is not valid for "
                                                                           "type '%s'" % (method_name, meta["type"])))
    given = {}
    for prm in details.get("parameters") or []:
        if not isinstance(prm, dict) or "name" not in prm:
            raise HttpError(fabric_error(req, 400, "InvalidConnectionDetails", "Malformed parameter"))
        given[prm["name"]] = prm
    known = {x["name"]: x for x in method["parameters"]}
    for name, prm in given.items():
        if name not in known:
            raise HttpError(fabric_error(req, 400, "InvalidConnectionDetails", "Unknown parameter '%s' for %s"
                                         % (name, method["name"])))
        if prm.get("dataType", known[name]["dataType"]) != known[name]["dataType"]:
            raise HttpError(fabric_error(req, 400, "InvalidConnectionDetails", "Parameter '%s' must have dataType %s"
                                         % (name, known[name]["dataType"])))
    for x in method["parameters"]:
        if x["required"] and not str((given.get(x["name"]) or {}).get("value") or "").strip():
            raise HttpError(fabric_error(req, 400, "InvalidConnectionDetails", "Required parameter '%s' is missing"
                                         % x["name"]))
    return meta, method, connection_path(meta, method, given), [given[n] for n in given]


def connection_path(meta, method, given):
    """The path of a connection: its parameters' values in the creation method's order, joined
    with ';' (optional ones only when given); the type for a connection without parameters."""
    if not method["parameters"]:
        return meta["type"]
    return ";".join(str(given[x["name"]]["value"]) for x in method["parameters"]
                    if x["required"] or str((given.get(x["name"]) or {}).get("value") or "").strip())


def _validate_credentials(req, meta, cred_details):
    if not isinstance(cred_details, dict) or not isinstance(cred_details.get("credentials"), dict):
        raise HttpError(fabric_error(req, 400, "InvalidCredentialDetails", "'credentialDetails.credentials' is "
                                                                           "required"))
    creds = cred_details["credentials"]
    ctype = creds.get("credentialType")
    if ctype == "OAuth2":
        raise HttpError(fabric_error(req, 400, "InvalidCredentialDetails", "OAuth2 credentials cannot be created "
                                                                           "through the API"))
    if ctype not in meta["supportedCredentialTypes"] or ctype not in CREDENTIAL_FIELDS:
        raise HttpError(fabric_error(req, 400, "InvalidCredentialDetails", "Credential type '%s' is not supported "
                                                                           "for %s" % (ctype, meta["type"])))
    required, one_of = CREDENTIAL_FIELDS[ctype]
    for f in required:
        if not creds.get(f):
            raise HttpError(fabric_error(req, 400, "InvalidCredentialDetails", "'%s' is required for %s credentials"
                                         % (f, ctype)))
    if one_of and not any(creds.get(f) for f in one_of):
        raise HttpError(fabric_error(req, 400, "InvalidCredentialDetails", "One of %s is required for %s credentials"
                                     % (", ".join(one_of), ctype)))
    sso = cred_details.get("singleSignOnType", "None")
    enc = cred_details.get("connectionEncryption", "NotEncrypted")
    if enc not in ("Encrypted", "Any", "NotEncrypted"):
        raise HttpError(fabric_error(req, 400, "InvalidCredentialDetails", "Invalid connectionEncryption"))
    return ctype, sso, enc, bool(cred_details.get("skipTestConnection", False))


def create_connection(emu, req, m):
    p = auth(emu, req, WRITE_CONN)
    tenant = emu.tenants[p["tenant"]]
    if p["kind"] == "app" and not tenant["settings"]["sp_can_create_connections"]:
        return fabric_error(req, 403, "InsufficientPrivileges", "The tenant setting 'Service principals can create "
                                                                "workspaces, connections, and deployment pipelines' "
                                                                "is disabled")
    body = req.json()
    ctype = body.get("connectivityType")
    if ctype != "ShareableCloud":
        return fabric_error(req, 400, "InvalidInput", "connectivityType '%s' is not supported here (emulated: "
                                                      "ShareableCloud)" % ctype)
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        return fabric_error(req, 400, "InvalidInput", "'displayName' is required (at most 200 characters)")
    if any(c["tenant"] == p["tenant"] and c["displayName"].lower() == name.lower() for c in emu.connections.values()):
        return fabric_error(req, 409, "DuplicateConnectionName", "A connection named '%s' already exists" % name)
    meta, method, path, params = _validate_details(req, body.get("connectionDetails"))
    cred_type, sso, enc, skip = _validate_credentials(req, meta, body.get("credentialDetails"))
    privacy = body.get("privacyLevel", "Organizational")
    if privacy not in PRIVACY:
        return fabric_error(req, 400, "InvalidInput", "Invalid privacyLevel '%s'" % privacy)
    cid = new_id()
    emu.connections[cid] = {
        "id": cid, "tenant": p["tenant"], "displayName": name, "connectivityType": ctype, "type": meta["type"],
        "creationMethod": method["name"], "path": path,
        "parameters": [{"dataType": x.get("dataType", "Text"), "name": x["name"], "value": x.get("value")}
                       for x in params],
        "privacyLevel": privacy, "credentialType": cred_type, "singleSignOnType": sso, "connectionEncryption": enc,
        "skipTestConnection": skip, "owner": p["id"], "users": [], "created": emu.now(), "lastBound": None}
    emu.counters["connections_created"] += 1
    return json_resp(201, conn_json(emu, emu.connections[cid]))


def get_connection(emu, req, m):
    p = auth(emu, req, READ_CONN)
    return json_resp(200, conn_json(emu, _conn(emu, req, p, m.group(1))))


def patch_connection(emu, req, m):
    p = auth(emu, req, WRITE_CONN)
    c = _conn(emu, req, p, m.group(1))
    body = req.json()
    if "displayName" in body:
        name = body["displayName"] or ""
        if any(o["id"] != c["id"] and o["tenant"] == c["tenant"] and o["displayName"].lower() == name.lower()
               for o in emu.connections.values()):
            return fabric_error(req, 409, "DuplicateConnectionName", "A connection named '%s' already exists" % name)
        c["displayName"] = name
    if "privacyLevel" in body:
        c["privacyLevel"] = body["privacyLevel"]
    if "credentialDetails" in body:
        meta = next(t for t in SUPPORTED_TYPES if t["type"] == c["type"])
        c["credentialType"], c["singleSignOnType"], c["connectionEncryption"], c["skipTestConnection"] = \
            _validate_credentials(req, meta, body["credentialDetails"])
    return json_resp(200, conn_json(emu, c))


def delete_connection(emu, req, m):
    p = auth(emu, req, WRITE_CONN)
    c = _conn(emu, req, p, m.group(1))
    del emu.connections[c["id"]]
    for model in emu.models.values():
        model["bindings"] = {k: v for k, v in model["bindings"].items() if v != c["id"]}
    return empty(200)


def test_connection(emu, req, m):
    p = auth(emu, req, READ_CONN)
    _conn(emu, req, p, m.group(1))
    return json_resp(200, {"status": "Online", "errors": []})


# ---- item connections, binding -------------------------------------------------------

def item_connections(emu, req, m):
    p = auth(emu, req, WRITE_MODELS + ("Item.Read.All", "SemanticModel.Read.All"))
    ws = _ws(emu, req, p, m.group(1))
    item = m.group(2)
    model = emu.models.get(item)
    if model is None or model["workspace"] != ws["id"]:
        if item in emu.reports or item in emu.dashboards:
            return json_resp(200, {"value": []})
        return fabric_error(req, 404, "ItemNotFound", "The requested item was not found")
    out = []
    for ds in model["datasources"]:
        cid = model["bindings"].get((ds["type"].lower(), ds["path"].lower()))
        c = emu.connections.get(cid) if cid else None
        if c is not None:
            out.append({"id": c["id"], "displayName": c["displayName"], "connectivityType": c["connectivityType"],
                        "gatewayId": c.get("gatewayId") or emu.tenants[c["tenant"]]["gateway_id"],
                        "connectionDetails": {"type": ds["type"], "path": ds["path"]}})
        else:
            out.append({"connectivityType": "None", "connectionDetails": {"type": ds["type"], "path": ds["path"]}})
    return json_resp(200, {"value": out})


def is_owner(model, p):
    return model["owner"] and model["owner"].lower() in (p["id"].lower(), (p.get("oid") or "").lower())


def bind_connection(emu, req, m):
    p = auth(emu, req, WRITE_MODELS)
    ws = _ws(emu, req, p, m.group(1))
    model = _model(emu, req, ws, m.group(2))
    if not is_owner(model, p):
        return fabric_error(req, 403, "InsufficientPrivileges", "Only the owner of semantic model '%s' can bind its "
                                                                "data sources (take it over first)" % model["name"])
    body = req.json()
    b = body.get("connectionBinding")
    if not isinstance(b, dict) or not isinstance(b.get("connectionDetails"), dict):
        return fabric_error(req, 400, "InvalidRequest", "'connectionBinding.connectionDetails' is required")
    det = b["connectionDetails"]
    key = (str(det.get("type", "")).lower(), str(det.get("path", "")).lower())
    if not any((d["type"].lower(), d["path"].lower()) == key for d in model["datasources"]):
        return fabric_error(req, 400, "InvalidRequest", "No data source of semantic model '%s' has type '%s' and "
                                                        "path '%s'" % (model["name"], det.get("type"), det.get("path")))
    ctype = b.get("connectivityType")
    if ctype == "None":
        model["bindings"].pop(key, None)
        return empty(200)
    if not b.get("id"):
        return fabric_error(req, 400, "InvalidRequest", "'connectionBinding.id' is required")
    c = emu.connections.get(b["id"])
    if c is None or not _visible_conn(c, p):
        return fabric_error(req, 404, "EntityNotFound", "Connection '%s' was not found" % b["id"])
    if ctype != c["connectivityType"] or c["type"].lower() != key[0] or c["path"].lower() != key[1]:
        return fabric_error(req, 400, "InvalidRequest", "Connection '%s' (%s, %s) does not match the data source "
                                                        "(%s, %s)" % (c["displayName"], c["type"], c["path"],
                                                                      det.get("type"), det.get("path")))
    model["bindings"][key] = c["id"]
    c["lastBound"] = emu.now()
    emu.counters["bindings"] += 1
    return empty(200)


ROUTES = [
    ("GET", r"/v1/workspaces", list_workspaces),
    ("GET", r"/v1/workspaces/([^/]+)", get_workspace),
    ("GET", r"/v1/workspaces/([^/]+)/items", list_items),
    ("GET", r"/v1/workspaces/([^/]+)/items/([^/]+)/connections", item_connections),
    ("GET", r"/v1/workspaces/([^/]+)/semanticModels", list_models),
    ("POST", r"/v1/workspaces/([^/]+)/semanticModels", create_model),
    ("GET", r"/v1/workspaces/([^/]+)/semanticModels/([^/]+)", get_model),
    ("PATCH", r"/v1/workspaces/([^/]+)/semanticModels/([^/]+)", patch_model),
    ("DELETE", r"/v1/workspaces/([^/]+)/semanticModels/([^/]+)", delete_model),
    ("POST", r"/v1/workspaces/([^/]+)/semanticModels/([^/]+)/getDefinition", get_definition),
    ("POST", r"/v1/workspaces/([^/]+)/semanticModels/([^/]+)/updateDefinition", update_definition),
    ("POST", r"/v1/workspaces/([^/]+)/semanticModels/([^/]+)/bindConnection", bind_connection),
    ("GET", r"/v1/workspaces/([^/]+)/reports", list_reports),
    ("GET", r"/(?:v1/)?operations/([^/]+)", get_operation),
    ("GET", r"/(?:v1/)?operations/([^/]+)/result", get_operation_result),
    ("GET", r"/v1/connections", list_connections),
    ("POST", r"/v1/connections", create_connection),
    ("GET", r"/v1/connections/supportedConnectionTypes", supported_types),
    ("GET", r"/v1/connections/([^/]+)", get_connection),
    ("PATCH", r"/v1/connections/([^/]+)", patch_connection),
    ("DELETE", r"/v1/connections/([^/]+)", delete_connection),
    ("POST", r"/v1/connections/([^/]+)/testConnection", test_connection),
]
