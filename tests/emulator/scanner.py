"""Power BI admin scanner APIs: modified, getInfo, scanStatus, scanResult (with their limits)."""

import json
import urllib.parse

import powerbi
from common import HttpError, iso, json_resp, new_id, parse_iso, pbi_error, pbi_throttled

ADMIN = r"/v1\.0/myorg/admin/workspaces"
TENANT_SCOPES = ("Tenant.Read.All", "Tenant.ReadWrite.All")
LIMITS = {"modified_per_hour": 30, "getinfo_per_hour": 500, "concurrent_scans": 16, "status_per_hour": 10000,
          "result_per_hour": 500, "workspaces_per_scan": 100}


def admin_auth(emu, req):
    p = powerbi.auth(emu, req)
    tenant = emu.tenants[p["tenant"]]
    if p["kind"] == "user":
        if not p["scopes"] & set(TENANT_SCOPES):
            raise HttpError(pbi_error(401, "PowerBINotAuthorizedException", "The required permission scope might be "
                                                                            "missing: Tenant.Read.All"))
        user = emu.find_user(p["id"], tenant)
        if not user or not user["fabric_admin"]:
            raise HttpError(pbi_error(401, "PowerBINotAuthorizedException", "The caller is not a Fabric administrator"))
        return p
    app = emu.find_app(p["client_id"], tenant)
    if not tenant["settings"]["sp_admin_apis_allowed"]:
        reason = "the tenant setting 'Service principals can access read-only admin APIs' is disabled"
    elif not app or not app["admin_api_allowed"]:
        reason = "the service principal is not in a security group allowed to use read-only admin APIs"
    elif app["admin_consented_pbi_permissions"]:
        reason = "the app has admin-consented Power BI permissions, which admin APIs refuse for service principals"
    else:
        return p
    raise HttpError(pbi_error(401, "PowerBINotAuthorizedException", "Admin APIs refused: %s" % reason))


def _throttle(emu, p, name, limit, period=3600):
    wait = emu.rate_check(("scanner", p["tenant"], name), emu.scaled(limit), period)
    if wait:
        emu.counters["scanner_throttled"] += 1
        raise HttpError(pbi_throttled(wait))


def _flag(req, name):
    return (req.q(name) or "").lower() == "true"


def modified(emu, req, m):
    p = admin_auth(emu, req)
    since = req.q("modifiedSince")
    cutoff = None
    if since:
        cutoff = parse_iso(since)
        now = emu.now()
        if cutoff is None or cutoff > now - 30 * 60 or cutoff < now - 30 * 86400:
            return pbi_error(400, "InvalidRequest", "modifiedSince must be a UTC date-time between 30 days and 30 "
                                                    "minutes ago")
    _throttle(emu, p, "modified", LIMITS["modified_per_hour"])
    out = []
    for ws in sorted(emu.workspaces.values(), key=lambda w: w["id"]):
        if ws["tenant"] != p["tenant"]:
            continue
        if _flag(req, "excludePersonalWorkspaces") and ws["type"] == "Personal":
            continue
        if _flag(req, "excludeInActiveWorkspaces") and ws["state"] != "Active":
            continue
        if cutoff is not None and ws["modified"] < cutoff:
            continue
        out.append({"id": ws["id"]})
    return json_resp(200, out)


def get_info(emu, req, m):
    p = admin_auth(emu, req)
    ctype = (req.header("Content-Type") or "").lower()
    if "application/x-www-form-urlencoded" in ctype:
        ids = [v for k, v in urllib.parse.parse_qsl(req.body.decode("utf-8", "replace")) if k == "workspaces"]
    else:
        try:
            body = json.loads(req.body.decode("utf-8") or "null")
        except (ValueError, UnicodeDecodeError):
            return pbi_error(400, "InvalidRequest", "The request body is not valid JSON")
        ids = body.get("workspaces") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not 1 <= len(ids) <= LIMITS["workspaces_per_scan"] or \
            not all(isinstance(i, str) for i in ids):
        return pbi_error(400, "InvalidRequest", "'workspaces' must list 1 to %d workspace ids"
                         % LIMITS["workspaces_per_scan"])
    busy = sum(1 for s in emu.scans.values() if s["tenant"] == p["tenant"] and s["status"] in ("NotStarted", "Running"))
    if busy >= emu.scaled(LIMITS["concurrent_scans"]):
        emu.counters["scanner_throttled"] += 1
        return pbi_throttled(int(emu.config["scan_duration_s"]) + 1)
    _throttle(emu, p, "getInfo", LIMITS["getinfo_per_hour"])
    flags = {k: _flag(req, k) for k in ("lineage", "datasourceDetails", "datasetSchema", "datasetExpressions",
                                        "getArtifactUsers")}
    tenant = emu.tenants[p["tenant"]]
    sid = new_id()
    now = emu.now()
    emu.scans[sid] = {"id": sid, "tenant": p["tenant"], "status": "NotStarted", "created": now,
                      "duration": float(emu.config["scan_duration_s"]), "polls": 0, "workspaces": list(ids),
                      "flags": flags, "result": None,
                      "build": lambda: build_result(emu, tenant, ids, flags)}
    emu.counters["scans_started"] += 1
    loc = "%s%s/scanStatus/%s" % (req.host_url(), "/v1.0/myorg/admin/workspaces", sid)
    return json_resp(202, {"id": sid, "createdDateTime": iso(now), "status": "NotStarted"}, [("Location", loc)])


def _scan(emu, req, p, sid):
    s = emu.scans.get(sid)
    if s is None or s["tenant"] != p["tenant"]:
        raise HttpError(pbi_error(404, "PowerBIEntityNotFound"))
    return s


def scan_status(emu, req, m):
    p = admin_auth(emu, req)
    _throttle(emu, p, "scanStatus", LIMITS["status_per_hour"])
    s = _scan(emu, req, p, m.group(1))
    if s["status"] in ("NotStarted", "Running"):
        emu.poll_machine(s, int(emu.config["scan_polls"]), emu.finish_scan)
    headers = []
    if s["status"] == "Succeeded":
        headers.append(("Location", "%s/v1.0/myorg/admin/workspaces/scanResult/%s" % (req.host_url(), s["id"])))
    return json_resp(200, {"id": s["id"], "createdDateTime": iso(s["created"]), "status": s["status"]}, headers)


def scan_result(emu, req, m):
    p = admin_auth(emu, req)
    _throttle(emu, p, "scanResult", LIMITS["result_per_hour"])
    s = _scan(emu, req, p, m.group(1))
    if s["status"] != "Succeeded":
        return pbi_error(400, "InvalidRequest", "Scan '%s' has not succeeded yet (status %s)" % (s["id"], s["status"]))
    emu.counters["scan_results_read"] += 1
    return json_resp(200, s["result"])


def _users(emu, ws, right_key):
    out = []
    for r in ws["roles"]:
        app = emu.find_app(r["principal"])
        if app:
            out.append({right_key: r["role"], "identifier": app["client_id"], "displayName": app["display_name"],
                        "principalType": "App", "graphId": app["sp_object_id"]})
        else:
            u = emu.find_user(r["principal"])
            out.append({right_key: r["role"], "emailAddress": r["principal"], "identifier": r["principal"],
                        "displayName": u["display_name"] if u else r["principal"], "principalType": "User",
                        "graphId": u["object_id"] if u else r["principal"]})
    return out


def build_result(emu, tenant, ids, flags):
    settings = tenant["settings"]
    schema = flags["datasetSchema"] and settings["detailed_metadata"]
    exprs = flags["datasetExpressions"] and settings["dax_mashup_expressions"] and settings["detailed_metadata"]
    instances = {}
    out = []
    for wid in ids:
        ws = emu.workspaces.get(wid)
        if ws is None or ws["tenant"] != tenant["id"]:
            continue
        wj = {"id": ws["id"], "name": ws["name"], "description": ws["description"],
              "type": "PersonalGroup" if ws["type"] == "Personal" else "Workspace", "state": ws["state"],
              "isOnDedicatedCapacity": ws["isOnDedicatedCapacity"], "defaultDatasetStorageFormat": "Small",
              "reports": [], "dashboards": [], "datasets": [], "dataflows": [], "datamarts": []}
        if ws["capacityId"]:
            wj["capacityId"] = ws["capacityId"]
        if flags["getArtifactUsers"]:
            wj["users"] = _users(emu, ws, "groupUserAccessRight")
        for r in emu.ws_reports(ws):
            rj = {"id": r["id"], "name": r["name"], "reportType": r["reportType"],
                  "createdDateTime": iso(emu.now() - 86400), "modifiedDateTime": iso(emu.now() - 3600)}
            if r["datasetId"]:
                rj["datasetId"] = r["datasetId"]
                rj["datasetWorkspaceId"] = ws["id"]
            if flags["getArtifactUsers"]:
                rj["users"] = []
            wj["reports"].append(rj)
        for d in emu.ws_dashboards(ws):
            tiles = []
            for t in d["tiles"]:
                tj = {"id": t["id"], "title": t["title"]}
                if t["reportId"]:
                    tj["reportId"] = t["reportId"]
                if t["datasetId"]:
                    tj["datasetId"] = t["datasetId"]
                    tj["datasetWorkspaceId"] = ws["id"]
                tiles.append(tj)
            wj["dashboards"].append({"id": d["id"], "displayName": d["name"], "isReadOnly": False, "tiles": tiles})
        for md in emu.ws_models(ws):
            wj["datasets"].append(_dataset(emu, tenant, md, flags, schema, exprs, instances))
        out.append(wj)
    result = {"workspaces": out}
    if flags["datasourceDetails"]:
        result["datasourceInstances"] = list(instances.values())
        result["misconfiguredDatasourceInstances"] = []
    return result


def _dataset(emu, tenant, md, flags, schema, exprs, instances):
    dj = {"id": md["id"], "name": md["name"], "description": md["description"], "configuredBy": md["configuredBy"],
          "createdDate": iso(md["created"]), "targetStorageMode": md["targetStorageMode"],
          "contentProviderType": "RealTime" if md["push"] is not None else "PbixInImportMode",
          "isEffectiveIdentityRequired": False, "isEffectiveIdentityRolesRequired": False}
    if md["push"] is not None and (schema or exprs):
        dj["schemaRetrievalError"] = "Real-time datasets are not supported for schema retrieval"
    elif md["refreshed"]:
        if schema:
            tables = []
            for t in md["parsed"]["tables"]:
                tj = {"name": t["name"], "isHidden": bool(t.get("isHidden")), "columns": [], "measures": []}
                if t.get("description"):
                    tj["description"] = t["description"]
                for c in t.get("columns") or []:
                    cj = {"name": c["name"], "dataType": c.get("dataType", "string"), "isHidden": bool(c.get("isHidden")),
                          "columnType": c.get("columnType", "Data")}
                    if exprs and c.get("expression"):
                        cj["expression"] = c["expression"]
                    if c.get("description"):
                        cj["description"] = c["description"]
                    tj["columns"].append(cj)
                for x in t.get("measures") or []:
                    mj = {"name": x["name"], "isHidden": bool(x.get("isHidden"))}
                    if exprs:
                        mj["expression"] = x.get("expression", "")
                    if x.get("description"):
                        mj["description"] = x["description"]
                    tj["measures"].append(mj)
                if exprs:
                    tj["source"] = [{"expression": p["source"]} for p in t.get("partitions") or [] if p.get("source")]
                tables.append(tj)
            dj["tables"] = tables
            dj["relationships"] = []
        if exprs:
            dj["expressions"] = [{"name": e["name"], "expression": e["expression"]}
                                 for e in md["parsed"].get("expressions") or []]
    if flags["lineage"]:
        dj["upstreamDataflows"] = []
        dj["upstreamDatasets"] = []
        dj["upstreamDatamarts"] = []
        dj["datasourceUsages"] = []
        dj["misconfiguredDatasourceUsages"] = []
    for ds in md["datasources"]:
        inst = powerbi.datasource_json(emu, md, ds)
        if flags["lineage"]:
            dj["datasourceUsages"].append({"datasourceInstanceId": inst["datasourceId"]})
        if flags["datasourceDetails"]:
            inst = dict(inst)
            cd = inst["connectionDetails"]
            cd.pop("kind", None)
            cd.pop("path", None)
            instances.setdefault(inst["datasourceId"], inst)
    if flags["getArtifactUsers"]:
        dj["users"] = []
    return dj


def admin_groups(emu, req, m):
    """GET /admin/groups?$top=N (required) [&$skip=&$filter=]: every workspace of the tenant."""
    p = admin_auth(emu, req)
    top = req.q("$top")
    if top is None:
        return pbi_error(400, "InvalidRequest", "$top is required for admin/groups")
    top = powerbi._int_param(req, "$top", None, 1, 5000)
    skip = powerbi._int_param(req, "$skip", 0, 0, 10 ** 9)
    items = sorted((w for w in emu.workspaces.values() if w["tenant"] == p["tenant"]),
                   key=lambda w: (w["name"].lower(), w["id"]))
    if req.q("$filter"):
        pred = powerbi._filter(req.q("$filter"))
        items = [w for w in items if pred(powerbi.filter_fields(w))]
    out = []
    for w in items[skip:skip + top]:
        d = {"id": w["id"], "name": w["name"], "description": w["description"],
             "type": "PersonalGroup" if w["type"] == "Personal" else "Workspace", "state": w["state"],
             "isReadOnly": False, "isOnDedicatedCapacity": w["isOnDedicatedCapacity"]}
        if w["capacityId"]:
            d["capacityId"] = w["capacityId"]
        out.append(d)
    return json_resp(200, {"@odata.context": "%s/v1.0/myorg/admin/$metadata#groups" % req.host_url(),
                           "@odata.count": len(items), "value": out})


ROUTES = [
    ("GET", r"/v1\.0/myorg/admin/groups", admin_groups),
    ("GET", ADMIN + r"/modified", modified),
    ("POST", ADMIN + r"/getInfo", get_info),
    ("GET", ADMIN + r"/scanStatus/([^/]+)", scan_status),
    ("GET", ADMIN + r"/scanResult/([^/]+)", scan_result),
]
