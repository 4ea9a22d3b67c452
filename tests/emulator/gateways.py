"""On-premises data gateways: Power BI's Gateways API (gateways with their RSA public keys, their
data sources, Create Datasource with credentials encrypted for the gateway, Delete Datasource),
Datasets - Discover Gateways and Bind To Gateway for on-premises gateways, and Fabric's
GET /v1/gateways.

A gateway data source is also a Fabric connection of connectivityType OnPremisesGateway (as in
Fabric, where gateway data sources and connections share their ids): it lives in emu.connections
with its gatewayId, the gateway's admins and its users, so Fabric lists, reads, deletes it and shows
it in item connections like any connection.

Who sees what (as Power BI documents it): Get Gateways lists the gateways the caller administers;
Get Gateway, Get Datasources and Create/Delete Datasource need gateway admin rights (401
PowerBINotAuthorizedException for a data source user, 404 for anyone else); a data source may be
bound by its users and the gateway's admins; Discover Gateways offers the gateways with a data source
for each of the dataset's data sources that the caller may use.

Credentials are decrypted here with the gateway's private key and checked, the way Power BI's SDKs
encrypt them (PowerBI-CSharp AsymmetricKeyEncryptor): a 1024-bit key takes RSA-OAEP (SHA-1) blocks;
larger keys take base64(RSA-OAEP-SHA256(0x00 0x01 || aes key || hmac key)) followed by
base64(0x00 0x00 || HMAC-SHA256 tag || iv || AES-256-CBC ciphertext). Only the user name and a
SHA-256 of the secret are kept (so tests can check the round trip); the secret itself never is."""

import base64
import hashlib
import hmac
import json
import subprocess

import jwk
from common import HttpError, empty, json_resp, new_id, pbi_error

READ = ("Dataset.Read.All", "Dataset.ReadWrite.All")
WRITE = ("Dataset.ReadWrite.All",)
FABRIC_READ = ("Gateway.Read.All", "Gateway.ReadWrite.All")
# Power BI's built-in datasourceType -> (the Fabric connection type of the connector, the
# connectionDetails keys its path is made of); every other connector is an "Extension" source.
BUILTIN = {"sql": ("SQL", ("server", "database")), "postgresql": ("PostgreSQL", ("server", "database")),
           "mysql": ("MySQL", ("server", "database")), "oracle": ("Oracle", ("server",)),
           "analysisservices": ("AnalysisServices", ("server", "database"))}
CREDENTIAL_NAMES = {"Basic": ("username", "password"), "Windows": ("username", "password"), "Key": ("key",),
                    "Anonymous": ()}
REJECTED_SECRET = "wrong-password"   # the data source refuses it (DataSourceAccessError)
_KEYS = {}                           # (gateway id, bits) -> jwk.RsaKey, kept across resets


# ---- loading, keys -------------------------------------------------------------------------

def load(emu, tenant, t):
    """The fixture's gateways of tenant t (a tenants[] entry) and their data sources."""
    tenant["gateways"] = {}
    for g in t.get("gateways") or []:
        gid = (g.get("id") or new_id()).lower()
        gw = {"id": gid, "name": g.get("name", gid), "type": g.get("type", "Resource"),
              "status": g.get("status", "Live"), "key_bits": int(g.get("key_bits", 2048)),
              "admins": [a.lower() for a in g.get("admins") or []], "tenant": tenant["id"]}
        tenant["gateways"][gid] = gw
        for d in g.get("datasources") or []:
            add_source(emu, gw, d.get("name"), d.get("datasource_type", "Sql"), d.get("connection_details") or {},
                       d.get("credential_type", "Windows"), owner=d.get("owner", ""), users=d.get("users") or [],
                       sid=d.get("id"))


def key_of(gw):
    """The gateway's key pair (made with openssl on first use)."""
    k = (gw["id"], gw["key_bits"])
    if k not in _KEYS:
        _KEYS[k] = jwk.RsaKey.generate(gw["key_bits"])
    return _KEYS[k]


def _b64(n):
    return base64.b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode("ascii")


def type_path(ds_type, details):
    """(Fabric connection type, path) of a gateway data source, as a model's M code names its source."""
    b = BUILTIN.get(ds_type.lower())
    if b:
        return b[0], ";".join(str(details.get(k, "")) for k in b[1] if k in details)
    if ds_type.lower() == "extension":
        return details.get("extensionDataSourceKind", ""), details.get("extensionDataSourcePath", "")
    return ds_type, str(details.get("server") or details.get("url") or details.get("path") or "")


def add_source(emu, gw, name, ds_type, details, cred_type, owner="", users=(), sid=None, privacy="Organizational"):
    ftype, path = type_path(ds_type, details)
    sid = (sid or new_id()).lower()
    emu.connections[sid] = {
        "id": sid, "tenant": gw["tenant"], "displayName": name or sid, "connectivityType": "OnPremisesGateway",
        "gatewayId": gw["id"], "type": ftype, "creationMethod": "", "path": path, "parameters": [],
        "privacyLevel": privacy, "credentialType": cred_type, "singleSignOnType": "None",
        "connectionEncryption": "Encrypted", "skipTestConnection": False, "owner": owner.lower(),
        "users": [u.lower() for u in users], "gateway_admins": gw["admins"], "datasourceType": ds_type,
        "connectionDetails": details, "created": emu.now(), "lastBound": None}
    return emu.connections[sid]


def sources(emu, gw):
    return sorted((c for c in emu.connections.values() if c.get("gatewayId") == gw["id"]),
                  key=lambda c: (c["displayName"].lower(), c["id"]))


def dump(emu):
    return [{"id": g["id"], "name": g["name"], "admins": g["admins"], "key_bits": g["key_bits"],
             "datasources": [c["id"] for c in sources(emu, g)]}
            for t in emu.tenants.values() for g in t.get("gateways", {}).values()]


# ---- who may do what -------------------------------------------------------------------------

def _keys(p):
    return {p["id"].lower(), (p.get("oid") or "").lower()} - {""}


def is_admin(gw, p):
    return bool(_keys(p) & set(gw["admins"]))


def may_use(c, p):
    """A data source user (or its owner, or an admin of its gateway) may bind to it."""
    keys = _keys(p)
    return bool(keys & (set(c["users"]) | set(c["gateway_admins"]) | {c["owner"]}))


def find(emu, p, gid):
    return emu.tenants[p["tenant"]].get("gateways", {}).get((gid or "").lower())


def _gateway(emu, req, p, gid, admin=True):
    """The gateway, or 404 when the caller has no rights on it at all, 401 when it needs admin."""
    gw = find(emu, p, gid)
    if gw is None or not (is_admin(gw, p) or any(may_use(c, p) for c in sources(emu, gw))):
        raise HttpError(pbi_error(404, "PowerBIEntityNotFound"))
    if admin and not is_admin(gw, p):
        raise HttpError(pbi_error(401, "PowerBINotAuthorizedException", "The user must have gateway admin permissions "
                                                                        "on gateway '%s'" % gw["name"]))
    return gw


# ---- JSON shapes ----------------------------------------------------------------------------

def gateway_json(gw):
    k = key_of(gw)
    return {"id": gw["id"], "name": gw["name"], "type": gw["type"],
            "publicKey": {"exponent": _b64(k.e), "modulus": _b64(k.n)}, "gatewayStatus": gw["status"],
            "gatewayAnnotation": json.dumps({"gatewayContactInformation": [], "gatewayVersion": "3000.246.5",
                                             "gatewayMachine": "EMULATED", "gatewayWitnessString": ""})}


def source_json(c):
    return {"id": c["id"], "gatewayId": c["gatewayId"], "datasourceType": c["datasourceType"],
            "connectionDetails": json.dumps(c["connectionDetails"], separators=(",", ":")),
            "credentialType": c["credentialType"], "datasourceName": c["displayName"]}


def _ctx(req, what):
    return "%s/v1.0/myorg/$metadata#%s" % (req.host_url(), what)


# ---- Power BI: gateways, data sources -----------------------------------------------------------

def _auth(emu, req, need):
    import powerbi   # the Power BI host's token check (imported here: powerbi imports this module)
    return powerbi.auth(emu, req, need)


def list_gateways(emu, req, m):
    p = _auth(emu, req, READ)
    gws = sorted((g for g in emu.tenants[p["tenant"]].get("gateways", {}).values() if is_admin(g, p)),
                 key=lambda g: (g["name"].lower(), g["id"]))
    return json_resp(200, {"@odata.context": _ctx(req, "gateways"), "value": [gateway_json(g) for g in gws]})


def get_gateway(emu, req, m):
    p = _auth(emu, req, READ)
    return json_resp(200, {"@odata.context": _ctx(req, "gateways/$entity")} | gateway_json(_gateway(emu, req, p,
                                                                                                  m.group(1))))


def list_sources(emu, req, m):
    p = _auth(emu, req, READ)
    gw = _gateway(emu, req, p, m.group(1))
    return json_resp(200, {"@odata.context": _ctx(req, "gateways('%s')/datasources" % gw["id"]),
                           "value": [source_json(c) for c in sources(emu, gw)]})


def _source(emu, gw, sid):
    c = emu.connections.get((sid or "").lower())
    if c is None or c.get("gatewayId") != gw["id"]:
        raise HttpError(pbi_error(404, "PowerBIEntityNotFound"))
    return c


def get_source(emu, req, m):
    p = _auth(emu, req, READ)
    gw = _gateway(emu, req, p, m.group(1))
    return json_resp(200, source_json(_source(emu, gw, m.group(2))))


def delete_source(emu, req, m):
    p = _auth(emu, req, WRITE)
    gw = _gateway(emu, req, p, m.group(1))
    c = _source(emu, gw, m.group(2))
    del emu.connections[c["id"]]
    for model in emu.models.values():
        model["bindings"] = {k: v for k, v in model["bindings"].items() if v != c["id"]}
    emu.counters["gateway_datasources_deleted"] += 1
    return empty(200)


def _bad(message, code="InvalidRequest"):
    return HttpError(pbi_error(400, code, message))


def _field(body, name):
    """body[name], also spelled with a lower-case 's' (the docs' schema says dataSourceName, their
    example datasourceName)."""
    for k, v in body.items():
        if k.lower() == name.lower():
            return v
    return None


def create_source(emu, req, m):
    p = _auth(emu, req, WRITE)
    gw = _gateway(emu, req, p, m.group(1))
    body = req.json()
    if not isinstance(body, dict):
        raise _bad("The body must be a JSON object")
    name, ds_type = _field(body, "dataSourceName"), _field(body, "dataSourceType")
    text, cred = _field(body, "connectionDetails"), _field(body, "credentialDetails")
    if not isinstance(name, str) or not name.strip():
        raise _bad("dataSourceName is required")
    if not isinstance(ds_type, str) or not (ds_type.lower() in BUILTIN or ds_type.lower() == "extension"):
        raise _bad("dataSourceType '%s' is not supported here" % ds_type)
    try:
        details = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        details = None
    if not isinstance(details, dict):
        raise _bad("connectionDetails must be a JSON object written as a string")
    need = BUILTIN[ds_type.lower()][1] if ds_type.lower() in BUILTIN else ("extensionDataSourceKind",
                                                                            "extensionDataSourcePath")
    for k in need:
        if not isinstance(details.get(k), str) or not details[k].strip():
            raise _bad("connectionDetails.%s is required for a %s data source" % (k, ds_type))
    if not isinstance(cred, dict):
        raise _bad("credentialDetails is required")
    ctype = cred.get("credentialType")
    if ctype == "OAuth2":
        raise _bad("OAuth2 as a credential type isn't supported for gateway data sources")
    if ctype not in CREDENTIAL_NAMES:
        raise _bad("credentialType '%s' is not supported" % ctype)
    if cred.get("encryptedConnection") != "Encrypted":
        raise _bad("encryptedConnection must be Encrypted for on-premises data sources")
    if cred.get("privacyLevel", "Organizational") not in ("None", "Private", "Organizational", "Public"):
        raise _bad("privacyLevel '%s' is not valid" % cred.get("privacyLevel"))
    values = {}
    if ctype != "Anonymous":
        if cred.get("encryptionAlgorithm") != "RSA-OAEP":
            raise _bad("On-premises data source credentials must be encrypted with the gateway's public key "
                       "(encryptionAlgorithm RSA-OAEP)")
        values = _credential_values(gw, cred.get("credentials"), ctype)
    if any(c["displayName"].lower() == name.lower() for c in sources(emu, gw)):
        raise HttpError(pbi_error(409, "DuplicateDatasourceName", "The gateway already has a data source named '%s'"
                                  % name))
    secret = values.get("password", values.get("key", ""))
    if secret == REJECTED_SECRET:
        raise _bad("Login failed for user '%s'." % values.get("username", ""), "DM_GWPipeline_Gateway_DataSourceAccessError")
    c = add_source(emu, gw, name, ds_type, details, ctype, owner=p["id"], privacy=cred.get("privacyLevel",
                                                                                         "Organizational"))
    c["credential_user"] = values.get("username")
    c["credential_sha256"] = hashlib.sha256(secret.encode()).hexdigest() if secret else None
    emu.counters["gateway_datasources_created"] += 1
    return json_resp(201, source_json(c))


# ---- decrypting what the client encrypted ------------------------------------------------------------

def _mgf1(seed, length, h):
    out, counter = b"", 0
    while len(out) < length:
        out += h(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def _oaep_decrypt(key, block, h):
    """RSAES-OAEP decryption (RFC 8017 §7.1.2) of one block with hash h; ValueError when it is not one."""
    k, hlen = key.size, h().digest_size
    if len(block) != k or k < 2 * hlen + 2:
        raise ValueError("block size")
    c = int.from_bytes(block, "big")
    if c >= key.n:
        raise ValueError("out of range")
    em = pow(c, key.d, key.n).to_bytes(k, "big")
    masked_seed, masked_db = em[1:1 + hlen], em[1 + hlen:]
    seed = bytes(a ^ b for a, b in zip(masked_seed, _mgf1(masked_db, hlen, h)))
    db = bytes(a ^ b for a, b in zip(masked_db, _mgf1(seed, k - hlen - 1, h)))
    rest = db[hlen:].lstrip(b"\x00")
    if em[0] != 0 or not hmac.compare_digest(db[:hlen], h(b"").digest()) or not rest.startswith(b"\x01"):
        raise ValueError("padding")
    return rest[1:]


def _aes_cbc_decrypt(key, iv, data):
    r = subprocess.run(["openssl", "enc", "-d", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex()], input=data,
                       capture_output=True)
    if r.returncode != 0:
        raise ValueError("AES-CBC")
    return r.stdout


def decrypt(gw, text):
    """The plaintext of credentials encrypted for gw; ValueError when they are not."""
    key = key_of(gw)
    if key.size == 128:
        raw = base64.b64decode(text, validate=True)
        if not raw or len(raw) % 128:
            raise ValueError("length")
        return b"".join(_oaep_decrypt(key, raw[i:i + 128], hashlib.sha1) for i in range(0, len(raw), 128))
    head = 4 * ((key.size + 2) // 3)   # base64 of the RSA block
    keys = _oaep_decrypt(key, base64.b64decode(text[:head], validate=True), hashlib.sha256)
    if len(keys) != 2 + 32 + 64 or keys[:2] != b"\x00\x01":
        raise ValueError("keys")
    enc_key, mac_key = keys[2:34], keys[34:]
    msg = base64.b64decode(text[head:], validate=True)
    if len(msg) < 2 + 32 + 16 + 16 or msg[:2] != b"\x00\x00":
        raise ValueError("message")
    tag, iv, ct = msg[2:34], msg[34:50], msg[50:]
    if not hmac.compare_digest(tag, hmac.new(mac_key, msg[:2] + iv + ct, hashlib.sha256).digest()):
        raise ValueError("tag")
    return _aes_cbc_decrypt(enc_key, iv, ct)


def _credential_values(gw, text, ctype):
    """{name: value} of the encrypted {"credentialData": [...]}, or 400 naming the problem."""
    bad = "DM_GWPipeline_Gateway_InvalidConnectionCredentials"
    try:
        doc = json.loads(decrypt(gw, text if isinstance(text, str) else "").decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise _bad("The credentials could not be decrypted with the key of gateway '%s'" % gw["name"], bad)
    data = doc.get("credentialData") if isinstance(doc, dict) else None
    if not isinstance(data, list) or not all(isinstance(x, dict) and isinstance(x.get("name"), str)
                                             and isinstance(x.get("value"), str) for x in data):
        raise _bad("The credentials must be {\"credentialData\": [{\"name\", \"value\"}]}", bad)
    values = {x["name"]: x["value"] for x in data}
    for n in CREDENTIAL_NAMES[ctype]:
        if not values.get(n):
            raise _bad("%s credentials need '%s'" % (ctype, n), bad)
    return values


# ---- datasets: discover, bind --------------------------------------------------------------------------

def _matches(c, ds):
    return c["type"].lower() == ds["type"].lower() and c["path"].lower() == ds["path"].lower()


def _usable(emu, gw, p, ds):
    """The gateway's first data source for model data source ds that p may use, or None."""
    return next((c for c in sources(emu, gw) if _matches(c, ds) and may_use(c, p)), None)


def discover(emu, req, m):
    import powerbi
    p = _auth(emu, req, READ)
    ws = powerbi.ws_for(emu, req, p, m.group(1))
    md = powerbi._model(emu, ws, m.group(2))
    out = [g for g in emu.tenants[p["tenant"]].get("gateways", {}).values()
           if md["datasources"] and all(_usable(emu, g, p, ds) for ds in md["datasources"])]
    out.sort(key=lambda g: (g["name"].lower(), g["id"]))
    return json_resp(200, {"@odata.context": _ctx(req, "gateways"), "value": [gateway_json(g) for g in out]})


def bind(emu, req, p, ws, md, gw, ids):
    """Default.BindToGateway with an on-premises gateway: each data source of the dataset is bound to
    the named data source that matches it, or (no ids) to the gateway's first matching one the caller
    may use."""
    owner = (md["owner"] or "").lower()
    if owner not in _keys(p):
        raise HttpError(pbi_error(403, "PowerBINotAuthorizedException", "Only the owner of dataset '%s' can bind it "
                                                                        "to a gateway (take it over first)" % md["name"]))
    nomatch = "DMTS_CanNotFindMatchingDatasourceInGatewayError"
    chosen = []
    for sid in ids:
        c = emu.connections.get(str(sid).lower())
        if c is None or c.get("gatewayId") != gw["id"]:
            return pbi_error(400, nomatch, "Data source '%s' was not found on gateway '%s'" % (sid, gw["name"]))
        if not may_use(c, p):
            return pbi_error(401, "PowerBINotAuthorizedException", "The caller is not a user of data source '%s' on "
                                                                   "gateway '%s'" % (c["displayName"], gw["name"]))
        chosen.append(c)
    plan = {}
    for ds in md["datasources"]:
        c = next((x for x in chosen if _matches(x, ds)), None) if ids else _usable(emu, gw, p, ds)
        if c is None:
            return pbi_error(400, nomatch, "Gateway '%s' has no data source %sfor %s %s of dataset '%s'"
                             % (gw["name"], "among those named " if ids else "you can use ", ds["type"], ds["path"],
                                md["name"]))
        plan[(ds["type"].lower(), ds["path"].lower())] = c
    for c in chosen:
        if c not in plan.values():
            return pbi_error(400, nomatch, "Data source '%s' (%s, %s) matches no data source of dataset '%s'"
                             % (c["displayName"], c["type"], c["path"], md["name"]))
    for key, c in plan.items():
        md["bindings"][key] = c["id"]
        c["lastBound"] = emu.now()
    emu.counters["gateway_bindings"] += 1
    return empty(200)


# ---- Fabric: GET /v1/gateways -----------------------------------------------------------------------------

def fabric_list_gateways(emu, req, m):
    """Fabric's List Gateways (scope Gateway.Read.All): the on-premises gateways the caller administers."""
    import fabric
    p = fabric.auth(emu, req, FABRIC_READ)
    gws = sorted((g for g in emu.tenants[p["tenant"]].get("gateways", {}).values() if is_admin(g, p)),
                 key=lambda g: (g["name"].lower(), g["id"]))
    out = []
    for g in gws:
        k = key_of(g)
        out.append({"id": g["id"], "type": "OnPremises" if g["type"] == "Resource" else "OnPremisesPersonal",
                    "displayName": g["name"], "publicKey": {"exponent": _b64(k.e), "modulus": _b64(k.n)},
                    "version": "3000.246.5", "numberOfMemberGateways": 1, "loadBalancingSetting": "Failover",
                    "allowCloudConnectionRefresh": False, "allowCustomConnectors": False})
    return json_resp(200, {"value": out})


POWERBI_ROUTES = [
    ("GET", r"/v1\.0/myorg/gateways", list_gateways),
    ("GET", r"/v1\.0/myorg/gateways/([^/]+)", get_gateway),
    ("GET", r"/v1\.0/myorg/gateways/([^/]+)/datasources", list_sources),
    ("POST", r"/v1\.0/myorg/gateways/([^/]+)/datasources", create_source),
    ("GET", r"/v1\.0/myorg/gateways/([^/]+)/datasources/([^/]+)", get_source),
    ("DELETE", r"/v1\.0/myorg/gateways/([^/]+)/datasources/([^/]+)", delete_source),
    ("GET", r"/v1\.0/myorg(?:/groups/([^/]+))?/datasets/([^/]+)/Default\.DiscoverGateways", discover),
]
FABRIC_ROUTES = [
    ("GET", r"/v1/gateways", fabric_list_gateways),
]
