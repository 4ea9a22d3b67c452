"""Emulator state: tenants, workspaces, items, tokens, state machines, faults, request log.

Everything is guarded by Emu.lock (one lock); handlers run while holding it.
The emulator clock is time.time() plus an offset that POST /_emulator/advance {"seconds": N}
moves forward, so tests can expire tokens or pass rate windows without sleeping.
"""

import collections
import json
import math
import threading
import time
import uuid

import gateways
import jwk
import tmdl
from common import iso, new_id, parse_iso

DEFAULT_CONFIG = {
    "page_size": 100,                 # Fabric list page size (workspaces, models, connections)
    "groups_max_top": 5000,           # Power BI $top ceiling
    "lro_mode": "async",              # "async": 202 + operation; "sync": answer 200/201 at once
    "lro_polls": 2,                   # operation polls that still see NotStarted/Running
    "lro_duration_s": 2.0,            # ...or seconds until the operation finishes by itself
    "retry_after_s": 1,               # Retry-After on 202 answers
    "refresh_duration_s": 2.0,        # default refresh duration
    "refresh_outcome": "Completed",   # default outcome: Completed | Failed | Cancelled
    "scan_polls": 1,                  # scanStatus polls that still see NotStarted/Running
    "scan_duration_s": 1.0,
    "refresh_token_reuse": "allow",   # reference: a used refresh token stays valid; "reject" -> 70008
    "concurrent_refresh_status": 400,  # 2025 doc: 400; 2021 doc: 409
    "auth_code_lifetime_s": 600,
    "refresh_token_inactive_s": 90 * 86400,
    "request_log_max": 50000,
    "signed_in_user": None,           # upn treated as signed in when authorize has no login_hint
}

ROLE_RANK = {"viewer": 1, "contributor": 2, "member": 3, "admin": 4}
PBI_RESOURCES = ("https://analysis.windows.net/powerbi/api", "https://api.fabric.microsoft.com")
GRAPH_RESOURCE = "https://graph.microsoft.com"
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}
# What POST /_emulator/id-token-fault can do to the next ID tokens (entra.py _id_token).
ID_TOKEN_FAULTS = ("bad_signature", "unknown_kid", "expired", "not_yet_valid", "wrong_audience", "wrong_issuer",
                   "wrong_tenant", "alg_none", "hs256", "replay", "no_nonce")
NS = uuid.UUID("6f1d3c52-9a51-4f5c-9a43-2c1f0e8b7a10")


def split_scope(scope):
    """'https://analysis.windows.net/powerbi/api/Dataset.Read.All' -> ('pbi', 'Dataset.Read.All', prefix)."""
    s = scope.strip()
    low = s.lower()
    for res in PBI_RESOURCES:
        if low.startswith(res.lower() + "/"):
            return "pbi", s[len(res) + 1:], res
        if low == res.lower():
            return "pbi", ".default", res
    if low.startswith(GRAPH_RESOURCE + "/"):
        return "graph", s[len(GRAPH_RESOURCE) + 1:], GRAPH_RESOURCE
    if low in OIDC_SCOPES:
        return "oidc", low, ""
    if "/" in s:
        res, _, name = s.rpartition("/")
        return res.lower(), name, res
    return "graph", s, GRAPH_RESOURCE  # bare names belong to Graph (User.Read)


class Emu:
    def __init__(self, fixture, token_lifetime=3600, rate_scale=1.0, latency_ms=0, fixture_text=None):
        self.lock = threading.RLock()
        self.token_lifetime = token_lifetime
        self.rate_scale = rate_scale
        self.base_latency_ms = latency_ms
        # reset re-reads this text: cheaper than a deepcopy, and load() may then keep what it parses
        self.initial_fixture = fixture_text if fixture_text is not None else json.dumps(fixture or {})
        self.clock_offset = 0.0
        self.initial_key = None     # the first signing key, made on first use and kept across resets
        self.load(fixture if fixture_text is not None else json.loads(self.initial_fixture))

    # ---- time, limits --------------------------------------------------------

    def now(self):
        return time.time() + self.clock_offset

    def scaled(self, n):
        return max(1, int(math.floor(n * self.rate_scale)))

    def rate_wait(self, key, limit, period, weight=1):
        """Sliding window of (time, weight): seconds until `weight` more fits under limit, 0 if it fits now."""
        now = self.now()
        win = self.windows.setdefault(key, collections.deque())
        while win and win[0][0] <= now - period:
            win.popleft()
        used = sum(w for _, w in win)
        if used + weight <= limit:
            return 0
        if not win:
            return max(1, int(math.ceil(period)))
        return max(1, int(math.ceil(win[0][0] + period - now)))

    def rate_record(self, key, weight=1):
        self.windows.setdefault(key, collections.deque()).append((self.now(), weight))

    def rate_check(self, key, limit, period):
        """One call against a window: 0 (and counted) when allowed, else seconds to wait."""
        wait = self.rate_wait(key, limit, period)
        if not wait:
            self.rate_record(key)
        return wait

    # ---- loading -------------------------------------------------------------

    def reset(self):
        self.clock_offset = 0.0
        self.load(json.loads(self.initial_fixture))

    def load(self, fixture):
        """Replaces all state with fixture (a freshly parsed dict; it is kept, not copied)."""
        fx = fixture or {}
        self.config = dict(DEFAULT_CONFIG)
        self.config.update(fx.get("emulator") or {})
        self.tenants = {}
        self.workspaces = {}
        self.models = {}
        self.reports = {}
        self.dashboards = {}
        self.connections = {}
        self.tokens = {}
        self.refresh_tokens = {}
        self.auth_codes = {}
        self.operations = {}
        self.scans = {}
        self.windows = {}
        self.faults = []
        self.pending_rows = {}
        self.refresh_plans = {}
        self.ws_index = {}          # principal (upn / client id / object id, lower case) -> workspace ids
        self.running_refreshes = []  # (model, refresh) pairs still "Unknown"
        self.visible_cache = {}
        self.log = collections.deque(maxlen=int(self.config["request_log_max"]))
        self.counters = collections.Counter()
        self.published_keys = None   # RsaKey list in the key set, current first (None: the initial key)
        self.id_token_faults = collections.deque()   # [kind, remaining] for the next ID tokens
        self.last_id_tokens = {}     # client id -> the last ID token issued to it (the "replay" fault)
        for t in fx.get("tenants") or []:
            self._load_tenant(t)

    def _load_tenant(self, t):
        tid = t.get("id") or str(uuid.uuid5(NS, t.get("domain", "tenant")))
        settings = {"service_principals_allowed": True, "sp_admin_apis_allowed": True,
                    "sp_can_create_connections": True, "detailed_metadata": True,
                    "dax_mashup_expressions": True}
        settings.update(t.get("settings") or {})
        tenant = {"id": tid, "domain": (t.get("domain") or "").lower(),
                  "display_name": t.get("display_name", t.get("domain", tid)),
                  "settings": settings, "apps": {}, "users": {},
                  "gateway_id": str(uuid.uuid5(NS, "gateway/" + tid))}
        self.tenants[tid] = tenant
        for a in t.get("apps") or []:
            app = {"client_id": a["client_id"], "client_secret": a.get("client_secret"),
                   "display_name": a.get("display_name", a["client_id"]),
                   "is_service_principal": a.get("is_service_principal", True),
                   "admin_api_allowed": a.get("admin_api_allowed", False),
                   "admin_consented_pbi_permissions": a.get("admin_consented_pbi_permissions", False),
                   "redirect_uris": a.get("redirect_uris", ["*"]),
                   "graph_permissions": a.get("graph_permissions", []),
                   "object_id": a.get("object_id") or str(uuid.uuid5(NS, "app/" + a["client_id"])),
                   "sp_object_id": a.get("sp_object_id") or str(uuid.uuid5(NS, "sp/" + a["client_id"])),
                   "tenant": tid}
            tenant["apps"][app["client_id"].lower()] = app
        for u in t.get("users") or []:
            user = {"upn": u["upn"], "object_id": u.get("object_id") or str(uuid.uuid5(NS, "user/" + u["upn"])),
                    "display_name": u.get("display_name", u["upn"]), "fabric_admin": u.get("fabric_admin", False),
                    "email": u.get("email"),
                    "consents": {}, "tenant": tid, "tokens_valid_from": 0.0}
            for c in u.get("consents") or []:
                user["consents"].setdefault(c["client_id"].lower(), set()).update(
                    self.norm_scopes(c.get("scopes") or []))
            tenant["users"][user["upn"].lower()] = user
        for c in t.get("connections") or []:
            self._load_connection(tenant, c)
        gateways.load(self, tenant, t)
        for w in t.get("workspaces") or []:
            self._load_workspace(tenant, w)

    # ---- ID token signing keys --------------------------------------------------------

    def signing_keys(self):
        """The published keys, the one that signs first (made with openssl on first use)."""
        if self.published_keys is None:
            if self.initial_key is None:
                self.initial_key = jwk.RsaKey.generate()
            self.published_keys = [self.initial_key]
        return self.published_keys

    def rotate_keys(self, keep_old=True):
        """A new signing key; the old ones stay published while keep_old (as Entra overlaps them)."""
        new = jwk.RsaKey.generate()
        self.published_keys = [new] + (self.signing_keys() if keep_old else [])
        self.counters["signing_key_rotations"] += 1
        return new

    def add_id_token_fault(self, kind, count=1):
        if kind not in ID_TOKEN_FAULTS:
            raise ValueError("unknown ID token fault %r (one of %s)" % (kind, ", ".join(ID_TOKEN_FAULTS)))
        self.id_token_faults.append([kind, int(count)])

    def take_id_token_fault(self):
        """The fault for the next ID token, or None."""
        while self.id_token_faults and self.id_token_faults[0][1] <= 0:
            self.id_token_faults.popleft()
        if not self.id_token_faults:
            return None
        self.id_token_faults[0][1] -= 1
        return self.id_token_faults[0][0]

    def update_user(self, spec):
        """Changes a user as an administrator would: new_upn (the object id stays), email, display_name."""
        user = self.find_user(spec.get("upn", ""))
        if user is None:
            raise ValueError("no user %r" % spec.get("upn"))
        if "email" in spec:
            user["email"] = spec["email"]
        if "display_name" in spec:
            user["display_name"] = spec["display_name"]
        if spec.get("new_upn"):
            tenant = self.tenants[user["tenant"]]
            del tenant["users"][user["upn"].lower()]
            user["upn"] = spec["new_upn"]
            tenant["users"][user["upn"].lower()] = user
        return {"upn": user["upn"], "object_id": user["object_id"], "email": user["email"]}

    def norm_scopes(self, scopes):
        out = set()
        for s in scopes:
            res, name, _ = split_scope(s)
            if res != "oidc":
                out.add("%s:%s" % (res, name))
        return out

    def _load_connection(self, tenant, c):
        params = c.get("parameters") or {}
        path = c.get("path") or ";".join(str(v) for v in params.values())
        cid = c.get("id") or new_id()
        self.connections[cid] = {
            "id": cid, "tenant": tenant["id"], "displayName": c.get("display_name") or c.get("displayName"),
            "connectivityType": c.get("connectivity_type", "ShareableCloud"),
            "type": c.get("type", "Snowflake"), "creationMethod": c.get("creation_method", ""),
            "path": path, "parameters": [{"dataType": "Text", "name": k, "value": v} for k, v in params.items()],
            "privacyLevel": c.get("privacy_level", "Organizational"),
            "credentialType": c.get("credential_type", "Basic"), "singleSignOnType": "None",
            "connectionEncryption": "NotEncrypted", "skipTestConnection": False,
            "owner": c.get("owner", ""), "users": [u.lower() for u in c.get("users") or []],
            "created": self.now(), "lastBound": None}

    def _load_workspace(self, tenant, w):
        wid = w.get("id") or new_id()
        typ = w.get("type", "Workspace")
        if typ.lower() in ("personal", "personalgroup"):
            typ = "Personal"
        ws = {"id": wid, "tenant": tenant["id"], "name": w.get("name", wid), "description": w.get("description", ""),
              "type": typ, "owner": (w.get("owner") or "").lower(), "capacityId": w.get("capacity_id"),
              "isOnDedicatedCapacity": bool(w.get("is_on_dedicated_capacity", bool(w.get("capacity_id")))),
              "roles": [{"principal": r["principal"].lower(), "role": r["role"]} for r in w.get("roles") or []],
              "state": w.get("state", "Active"),
              "modified": parse_iso(w.get("modified", "")) or self.now() - 3600,
              "models": {}, "reports": {}, "dashboards": {}}  # ids (dicts keep insertion order)
        self.workspaces[wid] = ws
        for key in [r["principal"] for r in ws["roles"]] + ([ws["owner"]] if typ == "Personal" else []):
            self.ws_index.setdefault(key, set()).add(wid)
        for m in w.get("semantic_models") or []:
            self.add_model(ws, m, by_api=False)
        for r in w.get("reports") or []:
            rid = r.get("id") or new_id()
            self.reports[rid] = {"id": rid, "workspace": wid, "name": r.get("name", rid),
                                 "datasetId": r.get("dataset_id"), "reportType": r.get("report_type", "PowerBIReport"),
                                 "description": r.get("description", "")}
            ws["reports"][rid] = True
        for d in w.get("dashboards") or []:
            did = d.get("id") or new_id()
            self.dashboards[did] = {"id": did, "workspace": wid, "name": d.get("name", did),
                                    "tiles": [{"id": tl.get("id") or new_id(), "title": tl.get("title", ""),
                                               "reportId": tl.get("report_id"), "datasetId": tl.get("dataset_id")}
                                              for tl in d.get("tiles") or []]}
            ws["dashboards"][did] = True

    def add_model(self, ws, m, by_api, parts=None, parsed=None):
        """Fixture models carry structured tables; API-created ones carry their TMDL parts."""
        mid = m.get("id") or new_id()
        if parsed is None:
            if m.get("parts"):
                parts = dict(m["parts"])
                parsed = tmdl.parse_parts(parts)
            else:
                parsed = {"tables": m.get("tables") or [], "expressions": m.get("expressions") or [],
                          "relationships": m.get("relationships") or []}
        owner = (m.get("owner") or "").lower()
        model = {"id": mid, "workspace": ws["id"], "name": m.get("name") or m.get("displayName"),
                 "description": m.get("description", ""), "owner": owner,
                 "configuredBy": m.get("configured_by") or owner, "created": self.now(), "modified": self.now(),
                 "parts": parts, "parsed": parsed, "datasources": tmdl.datasources_of(parsed),
                 "bindings": {}, "by_api": by_api, "refreshed": m.get("refreshed", not by_api),
                 "refresh": dict(m.get("refresh") or {}), "refreshes": [], "push": None,
                 "targetStorageMode": m.get("target_storage_mode", "Abf"), "push_tables": {}}
        for b in m.get("bindings") or []:
            model["bindings"][(b["type"].lower(), b["path"].lower())] = b["connection_id"]
        self.models[mid] = model
        ws["models"][mid] = True
        ws["modified"] = self.now()
        return model

    def remove_model(self, mid):
        model = self.models.pop(mid)
        ws = self.workspaces[model["workspace"]]
        ws["models"].pop(mid, None)
        ws["modified"] = self.now()
        self.running_refreshes = [(m, r) for m, r in self.running_refreshes if m["id"] != mid]

    def ws_models(self, ws):
        return [self.models[i] for i in ws["models"]]

    def ws_reports(self, ws):
        return [self.reports[i] for i in ws["reports"]]

    def ws_dashboards(self, ws):
        return [self.dashboards[i] for i in ws["dashboards"]]

    def edit_model(self, mid, body):
        """POST /_emulator/models/{id}/edit: a change made "in Power BI" to a model's definition.
        Raises KeyError (no such model) or tmdl.EditError (a bad edit)."""
        model = self.models.get(mid)
        if model is None or model["push"] is not None:
            raise KeyError(mid)
        if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in ("add_measure", "rename_column"):
            raise tmdl.EditError("the body must be {\"add_measure\": {\"table\", \"name\", \"expression\"}} or "
                                 "{\"rename_column\": {\"table\", \"from\", \"to\"}}")
        kind, args = next(iter(body.items()))
        fields = ("table", "name", "expression") if kind == "add_measure" else ("table", "from", "to")
        if not isinstance(args, dict) or set(args) != set(fields):
            raise tmdl.EditError("%s needs exactly the fields %s" % (kind, ", ".join(fields)))
        parts = self.model_parts(model)
        try:
            if kind == "add_measure":
                parts = tmdl.add_measure(parts, args["table"], args["name"], args["expression"])
            else:
                parts = tmdl.rename_column(parts, args["table"], args["from"], args["to"])
        except tmdl.TmdlError as e:
            raise tmdl.EditError("the model's definition does not parse after the edit: %s" % e)
        model["parts"] = parts
        model["parsed"] = tmdl.parse_parts({k: v for k, v in parts.items() if k.startswith("definition/")})
        model["modified"] = self.now()
        self.workspaces[model["workspace"]]["modified"] = self.now()
        return {"id": mid, "tables": [t["name"] for t in model["parsed"]["tables"]]}

    def model_parts(self, model):
        if model["parts"] is None:
            parts = tmdl.write_parts(model["parsed"])
            parts["definition.pbism"] = '{"version":"4.0","settings":{}}\n'
            model["parts"] = parts
        return model["parts"]

    # ---- principals ------------------------------------------------------------

    def find_tenant(self, key):
        if not key:
            return None
        k = key.lower()
        if k in self.tenants:
            return self.tenants[k]
        for t in self.tenants.values():
            if t["id"].lower() == k or t["domain"] == k:
                return t
        return None

    def _find_principal(self, kind, key, tenant):
        """The principal of kind ("apps", "users") under key (any case), in tenant or else in any tenant."""
        for t in [tenant] if tenant else list(self.tenants.values()):
            found = t[kind].get((key or "").lower())
            if found:
                return found
        return None

    def find_app(self, client_id, tenant=None):
        return self._find_principal("apps", client_id, tenant)

    def find_user(self, upn, tenant=None):
        return self._find_principal("users", upn, tenant)

    def token_info(self, token):
        """(info, problem) with problem in None, 'missing', 'unknown', 'expired'."""
        if not token:
            return None, "missing"
        info = self.tokens.get(token)
        if info is None:
            return None, "unknown"
        if info["expires"] <= self.now():
            return info, "expired"
        return info, None

    def role_rank(self, ws, p):
        if ws["type"] == "Personal":
            return 4 if p["kind"] == "user" and ws["owner"] == p["id"].lower() else 0
        keys = {p["id"].lower(), (p.get("oid") or "").lower()}
        best = 0
        for r in ws["roles"]:
            if r["principal"] in keys:
                best = max(best, ROLE_RANK.get(r["role"].lower(), 0))
        return best

    def visible_workspaces(self, p):
        """Workspaces where p has a role, sorted by (name, id). Cached: roles only change on load."""
        key = (p["tenant"], p["id"].lower(), (p.get("oid") or "").lower())
        hit = self.visible_cache.get(key)
        if hit is not None:
            return hit
        wids = self.ws_index.get(key[1], set()) | self.ws_index.get(key[2], set())
        out = []
        for wid in wids:
            ws = self.workspaces.get(wid)
            if ws and ws["tenant"] == p["tenant"] and ws["state"] == "Active" and self.role_rank(ws, p) > 0:
                out.append(ws)
        out.sort(key=lambda w: (w["name"].lower(), w["id"]))
        self.visible_cache[key] = out
        return out

    # ---- state machines ----------------------------------------------------------

    def tick(self):
        now = self.now()
        for op in list(self.operations.values()):
            if op["status"] in ("NotStarted", "Running") and now - op["created"] >= op["duration"]:
                self.finish_operation(op)
        for model, r in list(self.running_refreshes):
            if r["status"] == "Unknown" and now - r["start"] >= r["duration"]:
                self.finish_refresh(model, r)
        for scan in list(self.scans.values()):
            if scan["status"] in ("NotStarted", "Running") and now - scan["created"] >= scan["duration"]:
                self.finish_scan(scan)
            if now - scan["created"] > 86400:
                del self.scans[scan["id"]]

    def machine_phase(self, obj, polls_allowed):
        """0 NotStarted, 1 Running, 2 done: by polls seen or by elapsed time, whichever is further."""
        elapsed = self.now() - obj["created"]
        tphase = 2 if elapsed >= obj["duration"] else (1 if elapsed >= obj["duration"] / 2 else 0)
        pphase = 2 if obj["polls"] >= polls_allowed else min(obj["polls"], 1)
        return max(tphase, pphase)

    def finish_operation(self, op):
        fn = op.pop("on_finish", None)
        op["status"] = "Succeeded"
        op["percentComplete"] = 100
        op["updated"] = self.now()
        if op.get("error"):
            op["status"] = "Failed"
        elif fn is not None:
            err = fn(op)
            if err:
                op["status"] = "Failed"
                op["error"] = err

    def finish_refresh(self, model, r):
        self.running_refreshes = [(m, x) for m, x in self.running_refreshes if x is not r]
        r["status"] = r["outcome"]
        r["end"] = self.now()
        if r["status"] == "Completed":
            model["refreshed"] = True
        self.counters["refreshes_" + r["status"].lower()] += 1

    def poll_machine(self, obj, polls_allowed, finish):
        """One poll of a long-running machine (a Fabric operation, a scan): moves it on by machine_phase,
        finishing it with finish(obj). Returns the phase (0 NotStarted, 1 Running, 2 done)."""
        phase = self.machine_phase(obj, polls_allowed)
        obj["polls"] += 1
        if phase >= 2:
            finish(obj)
        else:
            obj["status"] = ("NotStarted", "Running")[phase]
        return phase

    def finish_scan(self, scan):
        scan["status"] = "Succeeded"
        scan["result"] = scan.pop("build")()

    def advance(self, seconds=None):
        """Moves the clock, or (no seconds) finishes every pending machine now."""
        if seconds:
            self.clock_offset += float(seconds)
            self.tick()
            return
        for op in self.operations.values():
            if op["status"] in ("NotStarted", "Running"):
                self.finish_operation(op)
        for model, r in list(self.running_refreshes):
            if r["status"] == "Unknown":
                self.finish_refresh(model, r)
        for scan in self.scans.values():
            if scan["status"] in ("NotStarted", "Running"):
                self.finish_scan(scan)

    # ---- faults --------------------------------------------------------------------

    def add_faults(self, spec):
        """Adds one fault rule; expire_tokens acts at once. Returns the stored rule."""
        if spec.get("expire_tokens"):
            now = self.now()
            for info in self.tokens.values():
                info["expires"] = min(info["expires"], now - 1)
        if spec.get("expire_refresh_tokens"):
            for rt in self.refresh_tokens.values():
                rt["last_used"] = self.now() - self.config["refresh_token_inactive_s"] - 1
        rule = {"path_prefix": spec.get("path_prefix") or "/", "method": (spec.get("method") or "").upper() or None,
                "latency_ms": int(spec.get("latency_ms") or 0),
                "error_rate": None, "burst_429": None, "drop_connections": int(spec.get("drop_connections") or 0),
                "drop_after": bool(spec.get("drop_after"))}
        if spec.get("error_rate"):
            er = spec["error_rate"]
            rule["error_rate"] = {"status": int(er.get("status", 503)), "percent": float(er.get("percent", 100)),
                                  "acc": 0.0, "retry_after": er.get("retry_after")}
        if spec.get("burst_429"):
            b = spec["burst_429"]
            rule["burst_429"] = {"count": int(b.get("count", 1)), "retry_after": int(b.get("retry_after", 1))}
        if rule["latency_ms"] or rule["error_rate"] or rule["burst_429"] or rule["drop_connections"]:
            self.faults.append(rule)
        return rule

    def fault_for(self, path, method=None):
        """(latency_ms, action) for a request (path, method); action None, ('drop',), ('drop_after',), ('429', s),
        ('status', code, s)."""
        latency = self.base_latency_ms
        action = None
        for rule in self.faults:
            if not path.startswith(rule["path_prefix"]) or (rule["method"] and rule["method"] != method):
                continue
            latency += rule["latency_ms"]
            if action:
                continue
            if rule["drop_connections"] > 0:
                rule["drop_connections"] -= 1
                # drop_after: the call takes effect, only the answer is lost
                action = ("drop_after",) if rule["drop_after"] else ("drop",)
            elif rule["burst_429"] and rule["burst_429"]["count"] > 0:
                rule["burst_429"]["count"] -= 1
                action = ("429", rule["burst_429"]["retry_after"])
            elif rule["error_rate"]:
                er = rule["error_rate"]
                # deterministic spreading: exactly percent% of matching requests fail
                er["acc"] += er["percent"] / 100.0
                if er["acc"] >= 1.0 - 1e-9:
                    er["acc"] -= 1.0
                    action = ("status", er["status"], er["retry_after"])
        return latency, action

    # ---- dump ------------------------------------------------------------------------

    def dump(self, sections=None, with_parts=True):
        now = self.now()

        def want(name):
            return not sections or name in sections

        out = {"now": iso(now), "clock_offset_s": self.clock_offset, "config": self.config,
               "rate_scale": self.rate_scale, "token_lifetime_s": self.token_lifetime}
        if want("tenants"):
            out["tenants"] = [{"id": t["id"], "domain": t["domain"], "settings": t["settings"],
                               "apps": [{"client_id": a["client_id"], "display_name": a["display_name"]}
                                        for a in t["apps"].values()],
                               "users": [{"upn": u["upn"], "object_id": u["object_id"], "email": u["email"],
                                          "consents": {k: sorted(v) for k, v in u["consents"].items()}}
                                         for u in t["users"].values()]} for t in self.tenants.values()]
        if want("workspaces"):
            out["workspaces"] = [{"id": w["id"], "name": w["name"], "type": w["type"], "tenant": w["tenant"],
                                  "roles": w["roles"], "modified": iso(w["modified"]), "models": list(w["models"]),
                                  "reports": list(w["reports"]), "dashboards": list(w["dashboards"])}
                                 for w in self.workspaces.values()]
        if want("models"):
            ms = []
            for m in self.models.values():
                d = {"id": m["id"], "workspaceId": m["workspace"], "name": m["name"], "owner": m["owner"],
                     "description": m["description"],
                     "by_api": m["by_api"], "tables": [t["name"] for t in m["parsed"]["tables"]],
                     "datasources": [{"type": s["type"], "path": s["path"]} for s in m["datasources"]],
                     "bindings": [{"type": k[0], "path": k[1], "connectionId": v} for k, v in m["bindings"].items()],
                     # "request": the trigger's body as received, so tests can check what was asked
                     "refreshes": [dict(self.refresh_view(r), request=r["request"]) for r in m["refreshes"]]}
                if with_parts and m["push"] is None:
                    d["parts"] = self.model_parts(m)
                if m["push"] is not None:
                    d["push"] = {"defaultMode": m["push"]["defaultMode"],
                                 "retention": m["push"]["retention"],
                                 "tables": {n: {"rows": t["rows"], "columns": [c["name"] for c in t["columns"]]}
                                            for n, t in m["push_tables"].items()}}
                ms.append(d)
            out["models"] = ms
        if want("reports"):
            out["reports"] = list(self.reports.values())
        if want("dashboards"):
            out["dashboards"] = list(self.dashboards.values())
        if want("connections"):
            out["connections"] = [{k: v for k, v in c.items() if k not in ("created", "lastBound")}
                                  for c in self.connections.values()]
        if want("operations"):
            out["operations"] = [{"id": o["id"], "kind": o["kind"], "status": o["status"], "polls": o["polls"]}
                                 for o in self.operations.values()]
        if want("scans"):
            out["scans"] = [{"id": s["id"], "status": s["status"], "workspaces": s["workspaces"],
                             "polls": s["polls"]} for s in self.scans.values()]
        if want("tokens"):
            live = sum(1 for t in self.tokens.values() if t["expires"] > now)
            out["tokens"] = {"issued": dict((k[7:], v) for k, v in self.counters.items() if k.startswith("issued_")),
                             "access_tokens_live": live, "access_tokens_total": len(self.tokens),
                             "refresh_token_exchanges": self.counters["refresh_token_exchanges"],
                             "refresh_tokens": [{"client_id": r["client_id"], "upn": r["upn"], "uses": r["uses"],
                                                 "valid": r["valid"]} for r in self.refresh_tokens.values()],
                             "auth_codes_redeemed": self.counters["auth_codes_redeemed"],
                             "id_tokens_issued": self.counters["id_tokens_issued"],
                             "signing_keys": [k.kid for k in (self.published_keys or [])],
                             "openid_configuration_reads": self.counters["openid_configuration_reads"],
                             "jwks_reads": self.counters["jwks_reads"]}
        if want("counters"):
            out["counters"] = dict(self.counters)
            out["pending_rows_requests"] = {k: v for k, v in self.pending_rows.items() if v}
        if want("gateways"):
            out["gateways"] = gateways.dump(self)
        if want("faults"):
            out["faults"] = self.faults
        if want("log"):
            out["requests"] = list(self.log)
        return out

    def refresh_view(self, r):
        d = {"requestId": r["id"], "id": r["num"], "refreshType": r["refreshType"], "startTime": iso(r["start"]),
             "status": r["status"]}
        if r["status"] == "Unknown":
            elapsed = self.now() - r["start"]
            d["extendedStatus"] = "NotStarted" if elapsed < r["duration"] / 4 else "InProgress"
        else:
            d["endTime"] = iso(r["end"])
            d["extendedStatus"] = r["status"]
        if r["status"] == "Failed":
            d["serviceExceptionJson"] = '{"errorCode":"%s","errorDescription":"%s"}' % (
                r["error_code"], r["error_description"].replace('"', "'"))
        d["refreshAttempts"] = [{"attemptId": 1, "startTime": d["startTime"], "type": "Data"}]
        if "endTime" in d:
            d["refreshAttempts"][0]["endTime"] = d["endTime"]
            if r["status"] == "Failed":
                d["refreshAttempts"][0]["serviceExceptionJson"] = d["serviceExceptionJson"]
        return d
