"""Power BI REST API (api.powerbi.com/v1.0/myorg): groups, datasets, reports, dashboards, tiles,
datasources, refreshes, push datasets (tables, rows) with the documented limits, and executeQueries
(row counts of push tables)."""

import math
import re
import uuid

import gateways
from common import HttpError, empty, iso, json_resp, new_id, pbi_error, pbi_throttled
from state import NS

WWW_AUTH = 'Bearer authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="invalid_token"'
READ_WS = ("Workspace.Read.All", "Workspace.ReadWrite.All")
READ_DS = ("Dataset.Read.All", "Dataset.ReadWrite.All")
WRITE_DS = ("Dataset.ReadWrite.All",)
READ_RPT = ("Report.Read.All", "Report.ReadWrite.All")
READ_DASH = ("Dashboard.Read.All", "Dashboard.ReadWrite.All")
PUSH_TYPES = {"int64": "Int64", "double": "Double", "boolean": "Boolean", "bool": "Boolean", "datetime": "DateTime",
              "string": "String", "decimal": "Decimal"}
LIMITS = {"tables": 75, "columns": 75, "relationships": 75, "rows_per_request": 10000, "rows_per_hour": 1000000,
          "pending_requests": 5, "requests_per_minute": 120, "big_table_rows": 250000, "big_requests_per_hour": 120,
          "fifo_rows": 200000, "none_rows": 5000000, "string_chars": 4000, "queries_per_minute": 120}
G = r"/v1\.0/myorg(?:/groups/([^/]+))?"


def auth(emu, req, need=None):
    info, problem = emu.token_info(req.bearer())
    if problem == "expired":
        raise HttpError(json_resp(403, {"error": {"code": "TokenExpired", "message": "Access token has expired, "
                                                                                       "resubmit with a new access "
                                                                                       "token"}},
                                  [("WWW-Authenticate", WWW_AUTH + ', error_description="The access token has '
                                                                   'expired"')]))
    if problem or info["resource"] != "pbi":
        raise HttpError(pbi_error(401, "PowerBINotAuthorizedException", None, [("WWW-Authenticate", WWW_AUTH)]))
    tenant = emu.tenants[info["tenant"]]
    if info["kind"] == "app" and not tenant["settings"]["service_principals_allowed"]:
        raise HttpError(pbi_error(401, "PowerBINotAuthorizedException", "Service principals are not allowed to use "
                                                                        "Power BI APIs in this tenant"))
    if need and info["kind"] == "user" and not (info["scopes"] & set(need)):
        raise HttpError(pbi_error(401, "PowerBINotAuthorizedException", "The required permission scope might be "
                                                                        "missing: %s" % " or ".join(need)))
    return info


def ws_for(emu, req, p, gid, min_rank=1, allow_missing=False):
    """gid None = the caller's My workspace."""
    if gid is None:
        for ws in emu.workspaces.values():
            if ws["type"] == "Personal" and p["kind"] == "user" and ws["owner"] == p["id"].lower():
                return ws
        if allow_missing:
            return None
        raise HttpError(pbi_error(404, "PowerBIEntityNotFound"))
    ws = emu.workspaces.get(gid)
    if ws is None or ws["tenant"] != p["tenant"] or ws["state"] != "Active":
        raise HttpError(pbi_error(404, "PowerBIEntityNotFound"))
    rank = emu.role_rank(ws, p)
    if rank < min_rank:
        raise HttpError(pbi_error(403, "PowerBINotAuthorizedException",
                                  "The caller has %s in workspace '%s'; this call needs %s or above"
                                  % ("no role" if rank == 0 else "a lower role", ws["name"],
                                     ("Viewer", "Contributor", "Member", "Admin")[min_rank - 1])))
    return ws


def _ctx(req, what):
    return "%s/v1.0/myorg/$metadata#%s" % (req.host_url(), what)


def _web(ws, kind, oid):
    return "https://app.powerbi.com/groups/%s/%s/%s" % ("me" if ws["type"] == "Personal" else ws["id"], kind, oid)


def _in_workspace(table, ws, oid):
    """The object oid of table (emu.models, emu.reports...) when it is in ws; else a 404."""
    o = table.get(oid)
    if o is None or o["workspace"] != ws["id"]:
        raise HttpError(pbi_error(404, "PowerBIEntityNotFound"))
    return o


def _model(emu, ws, mid):
    return _in_workspace(emu.models, ws, mid)


def _bad(message):
    return HttpError(pbi_error(400, "InvalidRequest", message))


# ---- groups ----------------------------------------------------------------------------

_ATOM = [
    (re.compile(r"^(name|type|id|state)\s+eq\s+'((?:[^']|'')*)'$", re.I), lambda m, g: g[m.group(1).lower()].lower() ==
     m.group(2).replace("''", "'").lower()),
    (re.compile(r"^(name|type|id|state)\s+ne\s+'((?:[^']|'')*)'$", re.I), lambda m, g: g[m.group(1).lower()].lower() !=
     m.group(2).replace("''", "'").lower()),
    (re.compile(r"^contains\(\s*name\s*,\s*'((?:[^']|'')*)'\s*\)$", re.I),
     lambda m, g: m.group(1).replace("''", "'").lower() in g["name"].lower()),
    (re.compile(r"^startswith\(\s*name\s*,\s*'((?:[^']|'')*)'\s*\)$", re.I),
     lambda m, g: g["name"].lower().startswith(m.group(1).replace("''", "'").lower())),
    (re.compile(r"^isOnDedicatedCapacity\s+eq\s+(true|false)$", re.I),
     lambda m, g: g["isondedicatedcapacity"] == (m.group(1).lower() == "true")),
]


def _split_outside_quotes(text, sep):
    parts, cur, inq, i = [], [], False, 0
    while i < len(text):
        if text[i] == "'":
            inq = not inq
        if not inq and text[i:i + len(sep)].lower() == sep:
            parts.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(text[i])
        i += 1
    parts.append("".join(cur))
    return parts


def _filter(flt):
    """OData subset: atoms joined by 'and' / 'or' ('and' binds tighter). Returns predicate."""
    alts = []
    for alt in _split_outside_quotes(flt.strip(), " or "):
        conj = []
        for atom in _split_outside_quotes(alt.strip(), " and "):
            atom = atom.strip()
            while atom.startswith("(") and atom.endswith(")") and not atom.lower().startswith(("contains", "startswith")):
                atom = atom[1:-1].strip()
            for rx, fn in _ATOM:
                m = rx.match(atom)
                if m:
                    conj.append((fn, m))
                    break
            else:
                raise _bad("Invalid $filter expression near '%s'" % atom[:60])
        alts.append(conj)
    return lambda g: any(all(fn(m, g) for fn, m in conj) for conj in alts)


def filter_fields(ws):
    return {"name": ws["name"], "id": ws["id"], "state": ws["state"],
            "type": "PersonalGroup" if ws["type"] == "Personal" else "Workspace",
            "isondedicatedcapacity": ws["isOnDedicatedCapacity"]}


def _int_param(req, name, default, lo, hi):
    v = req.q(name)
    if v is None or v == "":
        return default
    if not re.match(r"^\d+$", v) or not lo <= int(v) <= hi:
        raise _bad("Invalid %s value '%s'" % (name, v))
    return int(v)


def group_json(emu, ws, p):
    d = {"id": ws["id"], "isReadOnly": emu.role_rank(ws, p) == 1 if p else False,
         "isOnDedicatedCapacity": ws["isOnDedicatedCapacity"], "type": "Workspace", "name": ws["name"],
         "defaultDatasetStorageFormat": "Small"}
    if ws["capacityId"]:
        d["capacityId"] = ws["capacityId"]
    return d


def list_groups(emu, req, m):
    p = auth(emu, req, READ_WS)
    groups = [ws for ws in emu.visible_workspaces(p) if ws["type"] != "Personal"]
    flt = req.q("$filter")
    if flt:
        pred = _filter(flt)
        groups = [w for w in groups if pred(filter_fields(w))]
    top = _int_param(req, "$top", None, 1, int(emu.config["groups_max_top"]))
    skip = _int_param(req, "$skip", 0, 0, 10 ** 9)
    page = groups[skip:skip + top if top else None]
    return json_resp(200, {"@odata.context": _ctx(req, "groups"), "@odata.count": len(groups),
                           "value": [group_json(emu, w, p) for w in page]})


def get_group(emu, req, m):
    p = auth(emu, req, READ_WS)
    ws = ws_for(emu, req, p, m.group(1))
    return json_resp(200, {"@odata.context": _ctx(req, "groups/$entity")} | group_json(emu, ws, p))


# ---- datasets, reports, dashboards --------------------------------------------------------

def datasource_id(tenant, ds):
    return str(uuid.uuid5(NS, "ds/%s/%s/%s" % (tenant, ds["type"].lower(), ds["path"].lower())))


# Power BI's own data source types (the rest are connectors built as extensions).
BUILTIN_DATASOURCE_TYPES = {"SQL": "Sql", "PostgreSQL": "PostgreSql", "MySql": "MySql", "Oracle": "Oracle"}


def datasource_json(emu, model, ds):
    tenant = emu.workspaces[model["workspace"]]["tenant"]
    if ds["type"] in BUILTIN_DATASOURCE_TYPES:
        d = {"datasourceType": BUILTIN_DATASOURCE_TYPES[ds["type"]], "connectionDetails": dict(ds["parameters"])}
    else:
        d = {"datasourceType": "Extension",
             "connectionDetails": {"kind": ds["type"], "path": ds["path"], "extensionDataSourceKind": ds["type"],
                                   "extensionDataSourcePath": ds["path"]}}
    d["datasourceId"] = datasource_id(tenant, ds)
    cid = model["bindings"].get((ds["type"].lower(), ds["path"].lower()))
    if cid:
        # bound to an on-premises gateway's data source: that gateway and data source
        onprem = (emu.connections.get(cid) or {}).get("gatewayId")
        d["gatewayId"] = onprem or emu.tenants[tenant]["gateway_id"]
        if onprem:
            d["datasourceId"] = cid
    return d


def dataset_json(emu, ws, md):
    push = md["push"] is not None
    return {"id": md["id"], "name": md["name"], "webUrl": _web(ws, "datasets", md["id"]),
            "addRowsAPIEnabled": push, "configuredBy": md["configuredBy"], "isRefreshable": not push,
            "isEffectiveIdentityRequired": False, "isEffectiveIdentityRolesRequired": False,
            "isOnPremGatewayRequired": any((emu.connections.get(c) or {}).get("gatewayId")
                                           for c in md["bindings"].values()), "targetStorageMode": "PushStreaming" if push else md["targetStorageMode"],
            "createdDate": iso(md["created"]), "description": md["description"],
            "createReportEmbedURL": "https://app.powerbi.com/reportEmbed?config=emulated",
            "qnaEmbedURL": "https://app.powerbi.com/qnaEmbed?config=emulated", "upstreamDatasets": [], "users": []}


def _list_in_workspace(emu, req, m, scope, what, items_of, item_json):
    """A workspace's items of one kind (what: "datasets"...) by name then id, each as item_json(ws, item, p);
    the caller's My workspace, when it has none yet, lists nothing."""
    p = auth(emu, req, scope)
    ws = ws_for(emu, req, p, m.group(1), allow_missing=True)
    items = sorted(items_of(ws) if ws else [], key=lambda x: (x["name"].lower(), x["id"]))
    return json_resp(200, {"@odata.context": _ctx(req, what), "value": [item_json(ws, x, p) for x in items]})


def list_datasets(emu, req, m):
    return _list_in_workspace(emu, req, m, READ_DS, "datasets", emu.ws_models,
                              lambda ws, md, p: dataset_json(emu, ws, md))


def get_dataset(emu, req, m):
    p = auth(emu, req, READ_DS)
    ws = ws_for(emu, req, p, m.group(1))
    md = _model(emu, ws, m.group(2))
    return json_resp(200, {"@odata.context": _ctx(req, "datasets/$entity")} | dataset_json(emu, ws, md))


def delete_dataset(emu, req, m):
    p = auth(emu, req, WRITE_DS)
    ws = ws_for(emu, req, p, m.group(1), min_rank=2)
    md = _model(emu, ws, m.group(2))
    emu.remove_model(md["id"])
    return empty(200)


def list_datasources(emu, req, m):
    p = auth(emu, req, READ_DS)
    ws = ws_for(emu, req, p, m.group(1))
    md = _model(emu, ws, m.group(2))
    return json_resp(200, {"@odata.context": _ctx(req, "datasources"),
                           "value": [datasource_json(emu, md, ds) for ds in md["datasources"]]})


def bind_to_gateway(emu, req, m):
    """Default.BindToGateway with a cloud connection: gatewayObjectId = the tenant's virtual gateway,
    datasourceObjectIds = connection ids (community usage; the reference recommends bindConnection)."""
    p = auth(emu, req, WRITE_DS)
    ws = ws_for(emu, req, p, m.group(1), min_rank=2)
    md = _model(emu, ws, m.group(2))
    body = req.json()
    gw = body.get("gatewayObjectId") if isinstance(body, dict) else None
    tenant = emu.tenants[ws["tenant"]]
    if not gw:
        raise _bad("gatewayObjectId is required")
    onprem = gateways.find(emu, p, gw)
    if onprem is not None:
        return gateways.bind(emu, req, p, ws, md, onprem, body.get("datasourceObjectIds") or [])
    if gw != tenant["gateway_id"]:
        return pbi_error(400, "DMTS_CanNotFindMatchingDatasourceInGatewayError",
                         "Gateway '%s' is not a gateway this dataset's data sources can use" % gw)
    wanted = body.get("datasourceObjectIds") or []
    bound = 0
    for cid in wanted:
        c = emu.connections.get(cid)
        if c is None or c["tenant"] != ws["tenant"]:
            return pbi_error(400, "DMTS_CanNotFindMatchingDatasourceInGatewayError",
                             "Data source '%s' was not found on gateway '%s'" % (cid, gw))
        key = (c["type"].lower(), c["path"].lower())
        if not any((d["type"].lower(), d["path"].lower()) == key for d in md["datasources"]):
            return pbi_error(400, "DMTS_CanNotFindMatchingDatasourceInGatewayError",
                             "Connection '%s' (%s, %s) matches no data source of dataset '%s'"
                             % (c["displayName"], c["type"], c["path"], md["name"]))
        md["bindings"][key] = cid
        c["lastBound"] = emu.now()
        bound += 1
    if not wanted:
        raise _bad("datasourceObjectIds is required for cloud connections")
    emu.counters["bindings"] += bound
    return empty(200)


def report_json(ws, r):
    d = {"id": r["id"], "reportType": r["reportType"], "name": r["name"], "webUrl": _web(ws, "reports", r["id"]),
         "embedUrl": "https://app.powerbi.com/reportEmbed?reportId=%s&groupId=%s" % (r["id"], ws["id"]),
         "description": r["description"]}
    if r["datasetId"] and r["reportType"] != "PaginatedReport":
        d["datasetId"] = r["datasetId"]
        d["datasetWorkspaceId"] = ws["id"]
    return d


def list_reports(emu, req, m):
    return _list_in_workspace(emu, req, m, READ_RPT, "reports", emu.ws_reports, lambda ws, r, p: report_json(ws, r))


def get_report(emu, req, m):
    p = auth(emu, req, READ_RPT)
    ws = ws_for(emu, req, p, m.group(1))
    r = _in_workspace(emu.reports, ws, m.group(2))
    return json_resp(200, {"@odata.context": _ctx(req, "reports/$entity")} | report_json(ws, r))


def dashboard_json(emu, ws, d, p):
    return {"id": d["id"], "displayName": d["name"], "isReadOnly": emu.role_rank(ws, p) == 1,
            "webUrl": _web(ws, "dashboards", d["id"]),
            "embedUrl": "https://app.powerbi.com/dashboardEmbed?dashboardId=%s&groupId=%s" % (d["id"], ws["id"])}


def list_dashboards(emu, req, m):
    return _list_in_workspace(emu, req, m, READ_DASH, "dashboards", emu.ws_dashboards,
                              lambda ws, d, p: dashboard_json(emu, ws, d, p))


def list_tiles(emu, req, m):
    p = auth(emu, req, READ_DASH)
    ws = ws_for(emu, req, p, m.group(1))
    d = _in_workspace(emu.dashboards, ws, m.group(2))
    out = []
    for t in d["tiles"]:
        tj = {"id": t["id"], "title": t["title"], "rowSpan": 0, "colSpan": 0,
              "embedUrl": "https://app.powerbi.com/embed?dashboardId=%s&tileId=%s" % (d["id"], t["id"]),
              "embedData": "{}"}
        if t["reportId"]:
            tj["reportId"] = t["reportId"]
        if t["datasetId"]:
            tj["datasetId"] = t["datasetId"]
        out.append(tj)
    return json_resp(200, {"@odata.context": _ctx(req, "tiles"), "value": out})


# ---- refreshes -------------------------------------------------------------------------------

NOTIFY = ("NoNotification", "MailOnFailure", "MailOnCompletion")
REFRESH_TYPES = ("full", "clearvalues", "calculate", "dataonly", "automatic", "defragment")


def _refresh_plan(emu, md):
    plan = {"outcome": emu.config["refresh_outcome"], "duration_s": emu.config["refresh_duration_s"],
            "error_code": "ModelRefreshFailed_Unknown"}
    unbound = [ds for ds in md["datasources"] if (ds["type"].lower(), ds["path"].lower()) not in md["bindings"]]
    if md["by_api"] and unbound:
        # a published model cannot reach its sources until every one is bound to a connection
        plan.update(outcome="Failed", error_code="ModelRefreshFailed_CredentialsNotSpecified")
    plan.update(emu.refresh_plans.get("*", {}))
    plan.update(md["refresh"])
    plan.update(emu.refresh_plans.get(md["id"], {}))
    return plan


def trigger_refresh(emu, req, m):
    p = auth(emu, req, WRITE_DS)
    ws = ws_for(emu, req, p, m.group(1), min_rank=2)
    md = _model(emu, ws, m.group(2))
    if md["push"] is not None:
        raise _bad("Push datasets cannot be refreshed")
    body = req.json(required=False) or {}
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object")
    enhanced = any(k != "notifyOption" for k in body)
    notify = body.get("notifyOption")
    if notify is not None and notify not in NOTIFY:
        raise _bad("Invalid notifyOption '%s'" % notify)
    if enhanced and notify is not None:
        raise _bad("notifyOption is not applicable to an enhanced refresh request")
    if enhanced and not ws["isOnDedicatedCapacity"]:
        # the documented limitation (Datasets - Refresh Dataset In Group); the wire error is not
        # documented, so the status and code are those of every other refused body
        raise _bad("Enhanced refresh is not supported for shared capacities: on shared capacity only notifyOption "
                   "can be specified in the request body")
    if p["kind"] == "app" and notify in ("MailOnFailure", "MailOnCompletion"):
        raise _bad("Mail notifications are not supported for service principals")
    if "type" in body and str(body["type"]).lower() not in REFRESH_TYPES:
        raise _bad("Invalid refresh type '%s'" % body["type"])
    if "commitMode" in body and str(body["commitMode"]).lower() not in ("transactional", "partialbatch"):
        raise _bad("Invalid commitMode '%s'" % body["commitMode"])
    if "timeout" in body and not re.match(r"^([0-1]?[0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$", str(body["timeout"])):
        raise _bad("Invalid timeout '%s'" % body["timeout"])
    if any(r["status"] == "Unknown" for r in md["refreshes"]):
        status = int(emu.config["concurrent_refresh_status"])
        return pbi_error(status, "InvalidRequest", "Another refresh request is already executing for dataset '%s'"
                         % md["name"])
    plan = _refresh_plan(emu, md)
    rid = new_id()
    emu.counters["refresh_num"] += 1
    md["refreshes"].insert(0, {
        "id": rid, "num": emu.counters["refresh_num"], "refreshType": "ViaEnhancedApi" if enhanced else "ViaApi",
        "start": emu.now(), "end": None, "status": "Unknown", "duration": float(plan["duration_s"]),
        "outcome": plan["outcome"], "error_code": plan["error_code"],
        "error_description": plan.get("error_description", plan["error_code"]), "enhanced": enhanced,
        "request": body, "principal": p["id"]})
    del md["refreshes"][60:]
    emu.running_refreshes.append((md, md["refreshes"][0]))
    emu.counters["refreshes_started"] += 1
    headers = []
    if enhanced:
        base = "%s/v1.0/myorg/groups/%s" % (req.host_url(), ws["id"]) if m.group(1) else \
            "%s/v1.0/myorg" % req.host_url()
        headers = [("x-ms-request-id", rid), ("Location", "%s/datasets/%s/refreshes/%s" % (base, md["id"], rid))]
    return empty(202, headers)


def refresh_history(emu, req, m):
    p = auth(emu, req, READ_DS)
    ws = ws_for(emu, req, p, m.group(1))
    md = _model(emu, ws, m.group(2))
    top = _int_param(req, "$top", 60, 1, 10 ** 6)
    return json_resp(200, {"@odata.context": _ctx(req, "refreshes"),
                           "value": [emu.refresh_view(r) for r in md["refreshes"][:top]]})


def _refresh(emu, md, rid):
    r = next((x for x in md["refreshes"] if x["id"] == rid), None)
    if r is None or not r["enhanced"]:
        raise HttpError(pbi_error(404, "PowerBIEntityNotFound"))
    return r


def refresh_detail(emu, req, m):
    p = auth(emu, req, READ_DS)
    ws = ws_for(emu, req, p, m.group(1))
    md = _model(emu, ws, m.group(2))
    r = _refresh(emu, md, m.group(3))
    view = emu.refresh_view(r)
    body = {"startTime": view["startTime"], "type": r["request"].get("type", "Full"),
            "commitMode": r["request"].get("commitMode", "Transactional"), "status": view["status"],
            "extendedStatus": view["extendedStatus"], "currentRefreshType": r["request"].get("type", "Full"),
            "numberOfAttempts": 1, "objects": [{"table": t["name"], "partition": t["name"],
                                                "status": view["extendedStatus"]}
                                               for t in md["parsed"]["tables"]],
            "messages": [], "refreshAttempts": view["refreshAttempts"]}
    if "endTime" in view:
        body["endTime"] = view["endTime"]
    if r["status"] == "Failed":
        body["messages"].append({"code": r["error_code"], "message": r["error_description"], "type": "Error"})
    return json_resp(202 if r["status"] == "Unknown" else 200, body)


def cancel_refresh(emu, req, m):
    p = auth(emu, req, WRITE_DS)
    ws = ws_for(emu, req, p, m.group(1), min_rank=2)
    md = _model(emu, ws, m.group(2))
    r = _refresh(emu, md, m.group(3))
    if r["status"] != "Unknown":
        raise _bad("The refresh has already finished")
    r["outcome"] = "Cancelled"
    emu.finish_refresh(md, r)
    return empty(200)


# ---- push datasets --------------------------------------------------------------------------

def _validate_table(t):
    if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"].strip():
        raise _bad("Each table needs a 'name'")
    cols = t.get("columns")
    if not isinstance(cols, list) or not cols:
        raise _bad("Table '%s' needs 'columns'" % t["name"])
    if len(cols) > LIMITS["columns"]:
        raise _bad("Table '%s' has %d columns; the limit is %d" % (t["name"], len(cols), LIMITS["columns"]))
    out = []
    seen = set()
    for c in cols:
        if not isinstance(c, dict) or not c.get("name"):
            raise _bad("Each column of table '%s' needs a 'name'" % t["name"])
        dt = PUSH_TYPES.get(str(c.get("dataType", "")).lower())
        if dt is None:
            raise _bad("Column '%s' has an unsupported dataType '%s'" % (c["name"], c.get("dataType")))
        if c["name"].lower() in seen:
            raise _bad("Duplicate column '%s' in table '%s'" % (c["name"], t["name"]))
        seen.add(c["name"].lower())
        out.append({"name": c["name"], "dataType": dt})
    return {"name": t["name"], "columns": out, "measures": list(t.get("measures") or []), "rows": 0}


def create_push_dataset(emu, req, m):
    p = auth(emu, req, WRITE_DS)
    ws = ws_for(emu, req, p, m.group(1), min_rank=2)
    policy = req.q("defaultRetentionPolicy") or "None"
    if policy.lower() not in ("none", "basicfifo"):
        raise _bad("Invalid defaultRetentionPolicy '%s'" % policy)
    policy = "basicFIFO" if policy.lower() == "basicfifo" else "None"
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
        raise _bad("The dataset 'name' is required")
    mode = body.get("defaultMode", "Push")
    if mode not in ("Push", "PushStreaming", "Streaming"):
        raise _bad("defaultMode '%s' is not supported for datasets created through this API here" % mode)
    tables = body.get("tables")
    if not isinstance(tables, list) or not tables:
        raise _bad("A push dataset needs 'tables'")
    if len(tables) > LIMITS["tables"]:
        raise _bad("%d tables; the limit is %d" % (len(tables), LIMITS["tables"]))
    if len(body.get("relationships") or []) > LIMITS["relationships"]:
        raise _bad("Too many relationships; the limit is %d" % LIMITS["relationships"])
    parsed = {}
    for t in tables:
        vt = _validate_table(t)
        if vt["name"].lower() in parsed:
            raise _bad("Duplicate table '%s'" % vt["name"])
        parsed[vt["name"].lower()] = vt
    md = emu.add_model(ws, {"name": body["name"], "owner": p["id"]}, by_api=True,
                       parsed={"tables": [{"name": t["name"], "columns": [dict(c, isHidden=False) for c in t["columns"]],
                                           "measures": t["measures"], "partitions": []} for t in parsed.values()],
                               "expressions": [], "relationships": []})
    md["push"] = {"defaultMode": mode, "retention": policy}
    md["push_tables"] = parsed
    md["targetStorageMode"] = "PushStreaming"
    emu.counters["push_datasets_created"] += 1
    return json_resp(201, {"@odata.context": _ctx(req, "datasets/$entity"), "id": md["id"], "name": md["name"],
                           "defaultRetentionPolicy": policy})


def _push_model(emu, req, m, min_rank):
    p = auth(emu, req, WRITE_DS if min_rank > 1 else READ_DS)
    ws = ws_for(emu, req, p, m.group(1), min_rank=min_rank)
    md = _model(emu, ws, m.group(2))
    if md["push"] is None:
        raise _bad("Dataset '%s' is not a push dataset" % md["name"])
    return p, ws, md


def _push_table(md, name):
    t = md["push_tables"].get(name.lower())
    if t is None:
        raise HttpError(pbi_error(404, "ItemNotFound", "Table '%s' was not found in dataset '%s'" % (name, md["name"])))
    return t


def list_tables(emu, req, m):
    _, _, md = _push_model(emu, req, m, 1)
    return json_resp(200, {"@odata.context": _ctx(req, "tables"),
                           "value": [{"name": t["name"], "columns": t["columns"], "measures": t["measures"]}
                                     for t in md["push_tables"].values()]})


def put_table(emu, req, m):
    _, _, md = _push_model(emu, req, m, 2)
    old = _push_table(md, m.group(3))
    body = req.json()
    if body.get("name", old["name"]).lower() != old["name"].lower():
        raise _bad("The table name in the body must match the URL")
    body.setdefault("name", old["name"])
    new = _validate_table(body)
    new["rows"] = old["rows"]
    md["push_tables"][old["name"].lower()] = new
    md["parsed"]["tables"] = [{"name": t["name"], "columns": t["columns"], "measures": t["measures"],
                               "partitions": []} for t in md["push_tables"].values()]
    return json_resp(200, {"name": new["name"], "columns": new["columns"], "measures": new["measures"]})


def _check_value(col, v):
    if v is None:
        return True
    dt = col["dataType"]
    if dt == "Int64":
        return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer())
    if dt in ("Double", "Decimal"):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if dt == "Boolean":
        return isinstance(v, bool)
    if dt == "DateTime":
        return isinstance(v, str)
    return isinstance(v, (str, int, float, bool))


def post_rows(emu, req, m):
    _, _, md = _push_model(emu, req, m, 2)
    t = _push_table(md, m.group(3))
    body = req.json()
    rows = body.get("rows") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise _bad("The body must be {\"rows\": [...]}")
    if len(rows) > LIMITS["rows_per_request"]:
        raise _bad("%d rows in one request; the limit is %d rows per request" % (len(rows), LIMITS["rows_per_request"]))
    cols = {c["name"].lower(): c for c in t["columns"]}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise _bad("Row %d is not an object" % i)
        for k, v in row.items():
            col = cols.get(k.lower())
            if col is None:
                raise _bad("Row %d: column '%s' does not exist in table '%s'" % (i, k, t["name"]))
            if isinstance(v, str) and len(v) > LIMITS["string_chars"]:
                raise _bad("Row %d: value of column '%s' is longer than %d characters" % (i, k, LIMITS["string_chars"]))
            if not _check_value(col, v):
                raise _bad("Row %d: value of column '%s' does not match its dataType %s" % (i, k, col["dataType"]))
    ds = md["id"]
    # counted when the request arrived, as the service does: injected latency must not decide the outcome
    if req.pending_at_arrival > emu.scaled(LIMITS["pending_requests"]):
        emu.counters["rows_throttled"] += 1
        return pbi_throttled(1)
    # rate windows: check all, then record, so a refused call uses no budget
    big = any(x["rows"] >= emu.scaled(LIMITS["big_table_rows"]) for x in md["push_tables"].values())
    checks = [(("rows_min", ds), emu.scaled(LIMITS["requests_per_minute"]), 60, 1),
              (("rows_count", ds), emu.scaled(LIMITS["rows_per_hour"]), 3600, len(rows))]
    if big:
        checks.append((("rows_hour", ds), emu.scaled(LIMITS["big_requests_per_hour"]), 3600, 1))
    wait = max(emu.rate_wait(key, limit, period, weight) for key, limit, period, weight in checks)
    if wait:
        emu.counters["rows_throttled"] += 1
        return pbi_throttled(wait)
    cap = emu.scaled(LIMITS["fifo_rows"] if md["push"]["retention"] == "basicFIFO" else LIMITS["none_rows"])
    if md["push"]["retention"] != "basicFIFO" and t["rows"] + len(rows) > cap:
        raise _bad("Table '%s' would exceed %d rows (retention policy None)" % (t["name"], cap))
    emu.rate_record(("rows_min", ds))
    emu.rate_record(("rows_hour", ds))  # counted before the table is big, so the switch sees the last hour
    emu.rate_record(("rows_count", ds), len(rows))
    t["rows"] = min(cap, t["rows"] + len(rows))  # basicFIFO drops the oldest rows
    emu.counters["rows_posted"] += len(rows)
    emu.counters["rows_requests"] += 1
    return empty(200)


def delete_rows(emu, req, m):
    _, _, md = _push_model(emu, req, m, 2)
    t = _push_table(md, m.group(3))
    t["rows"] = 0
    return empty(200)


# ---- executeQueries (DAX) ------------------------------------------------------------------------
# Power BI evaluates any DAX query; the emulator evaluates the row counts pbiport asks for, on push
# datasets (the only ones whose rows it keeps): EVALUATE ROW("name", COUNTROWS('Table'), ...).

DAX_ROW = re.compile(r"\s*EVALUATE\s+ROW\s*\((.*)\)\s*$", re.I | re.S)
DAX_COUNT = re.compile(r"\s*\"((?:[^\"]|\"\")*)\"\s*,\s*COUNTROWS\s*\(\s*(?:'((?:[^']|'')*)'|([A-Za-z_][A-Za-z0-9_]*))"
                       r"\s*\)\s*(,|$)", re.I | re.S)
DAX_ERROR_CODE = "3238002695"   # the AnalysisServicesErrorCode Power BI gives with a query error


def _dax_error(detail):
    """Power BI's answer to a query that fails: 400 DatasetExecuteQueriesError, the reason only in
    pbi.error.details (DetailsMessage)."""
    return HttpError(json_resp(400, {"error": {"code": "DatasetExecuteQueriesError", "pbi.error": {
        "code": "DatasetExecuteQueriesError", "parameters": {}, "details": [
            {"code": "DetailsMessage", "detail": {"type": 1, "value": detail}},
            {"code": "AnalysisServicesErrorCode", "detail": {"type": 1, "value": DAX_ERROR_CODE}}],
        "exceptionCulprit": 1}}}))


def _dax_counts(query):
    """[(column name, table name)] of EVALUATE ROW("n", COUNTROWS('T'), ...), or a DAX error."""
    m = DAX_ROW.match(query)
    if not m or not query.lstrip().upper().startswith("EVALUATE"):
        raise _dax_error("Query (1, 1) The emulator evaluates only EVALUATE ROW(\"name\", COUNTROWS('Table'), ...).")
    args, out, pos = m.group(1), [], 0
    while pos < len(args):
        a = DAX_COUNT.match(args, pos)
        if not a:
            raise _dax_error("Query (1, %d) The syntax for '%s' is incorrect." % (
                query.index(args) + pos + 1, args[pos:pos + 20].strip()))
        table = a.group(2).replace("''", "'") if a.group(2) is not None else a.group(3)
        out.append((a.group(1).replace('""', '"'), table))
        pos = a.end()
    if not out:
        raise _dax_error("Query (1, 10) Too few arguments were passed to the ROW function.")
    return out


def execute_queries(emu, req, m):
    """POST .../datasets/{id}/executeQueries: one query a call, 120 calls a minute per caller, the
    tenant setting 'Dataset Execute Queries REST API', read and build permission (Contributor and
    above; a Viewer has no build permission by default)."""
    p = auth(emu, req, READ_DS)
    if not emu.tenants[p["tenant"]]["settings"].get("dataset_execute_queries", True):
        raise HttpError(pbi_error(401, "PowerBINotAuthorizedException", "The tenant setting 'Dataset Execute "
                                                                        "Queries REST API' is disabled"))
    ws = ws_for(emu, req, p, m.group(1), min_rank=2)
    md = _model(emu, ws, m.group(2))
    wait = emu.rate_wait(("dax", p["id"]), emu.scaled(LIMITS["queries_per_minute"]), 60)
    if wait:
        emu.counters["queries_throttled"] += 1
        return pbi_throttled(wait)
    emu.rate_record(("dax", p["id"]))
    body = req.json()
    queries = body.get("queries") if isinstance(body, dict) else None
    if not isinstance(queries, list) or not queries or not all(isinstance(q, dict) for q in queries):
        raise _bad("The body must be {\"queries\": [{\"query\": \"...\"}]}")
    if len(queries) != 1:
        raise _dax_error("Only one query is allowed per call; the request has %d." % len(queries))
    if not isinstance(queries[0].get("query"), str):
        raise _bad("queries[0].query must be a string")
    include_nulls = (body.get("serializerSettings") or {}).get("includeNulls") is True
    counts = _dax_counts(queries[0]["query"])
    if md["push"] is None:
        raise _dax_error("The emulator evaluates queries on push datasets only; '%s' is not one." % md["name"])
    if md["push"]["defaultMode"] == "Streaming":
        raise _dax_error("The dataset '%s' is a streaming dataset: it keeps no rows to query." % md["name"])
    row = {}
    for name, table in counts:
        t = md["push_tables"].get(table.lower())
        if t is None:
            raise _dax_error("Query (1, 1) Cannot find table '<oii>%s</oii>'." % table)
        if t["rows"]:
            row["[%s]" % name] = t["rows"]
        elif include_nulls:   # COUNTROWS of an empty table is BLANK: left out unless nulls are asked for
            row["[%s]" % name] = None
    emu.counters["queries_executed"] += 1
    return json_resp(200, {"results": [{"tables": [{"rows": [row]}]}]})


ROUTES = [
    ("GET", r"/v1\.0/myorg/groups", list_groups),
    ("GET", r"/v1\.0/myorg/groups/([^/]+)", get_group),
    ("GET", G + r"/datasets", list_datasets),
    ("POST", G + r"/datasets", create_push_dataset),
    ("GET", G + r"/datasets/([^/]+)", get_dataset),
    ("DELETE", G + r"/datasets/([^/]+)", delete_dataset),
    ("GET", G + r"/datasets/([^/]+)/datasources", list_datasources),
    ("POST", G + r"/datasets/([^/]+)/Default\.BindToGateway", bind_to_gateway),
    ("GET", G + r"/datasets/([^/]+)/refreshes", refresh_history),
    ("POST", G + r"/datasets/([^/]+)/refreshes", trigger_refresh),
    ("GET", G + r"/datasets/([^/]+)/refreshes/([^/]+)", refresh_detail),
    ("DELETE", G + r"/datasets/([^/]+)/refreshes/([^/]+)", cancel_refresh),
    ("GET", G + r"/datasets/([^/]+)/tables", list_tables),
    ("PUT", G + r"/datasets/([^/]+)/tables/([^/]+)", put_table),
    ("POST", G + r"/datasets/([^/]+)/tables/([^/]+)/rows", post_rows),
    ("DELETE", G + r"/datasets/([^/]+)/tables/([^/]+)/rows", delete_rows),
    ("POST", G + r"/datasets/([^/]+)/executeQueries", execute_queries),
    ("GET", G + r"/reports", list_reports),
    ("GET", G + r"/reports/([^/]+)", get_report),
    ("GET", G + r"/dashboards", list_dashboards),
    ("GET", G + r"/dashboards/([^/]+)/tiles", list_tiles),
]
ROWS_RE = re.compile(r"^/powerbi" + G + r"/datasets/([^/]+)/tables/([^/]+)/rows$", re.I)
