#!/usr/bin/env python3
"""On-premises gateways: Power BI's Gateways API (public keys, data sources, create with encrypted
credentials, delete), Discover Gateways, Bind To Gateway with an on-premises gateway, gateway data
sources as Fabric connections, Fabric's GET /v1/gateways. Credentials are encrypted here the way
Power BI's SDKs do, independently of pbiport's C code (tests/unit/test_gateways.c checks that one)."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess

from emutest import FIXTURES, MODEL_SALES, PBI, WS_SALES, EmuTestCase, main
from gateways import _mgf1   # MGF1 (RFC 8017 B.2.1) is the same both ways; the rest is written again here

GW = "99999999-0000-4000-8000-000000000001"
GW_SMALL = "99999999-0000-4000-8000-000000000002"     # a 1024-bit key
DS_SF = "99999999-1000-4000-8000-000000000001"         # Snowflake acme.snowflakecomputing.com;WH (MODEL_SALES)
DS_SQL = "99999999-1000-4000-8000-000000000002"
P = "/powerbi/v1.0/myorg"


def fixture():
    with open(os.path.join(FIXTURES, "test.json")) as f:
        fx = json.load(f)
    t = fx["tenants"][0]
    t["gateways"] = [
        {"id": GW, "name": "Plant gateway", "admins": ["alice@contoso.test"], "datasources": [
            {"id": DS_SF, "name": "Snowflake via gateway", "datasource_type": "Extension",
             "connection_details": {"extensionDataSourceKind": "Snowflake",
                                    "extensionDataSourcePath": "acme.snowflakecomputing.com;WH"},
             "credential_type": "Basic", "users": ["admin@contoso.test"]},
            {"id": DS_SQL, "name": "SQL Server", "datasource_type": "Sql",
             "connection_details": {"server": "sql01.plant.local", "database": "mes"}, "credential_type": "Windows"}]},
        {"id": GW_SMALL, "name": "Old gateway", "admins": ["alice@contoso.test"], "key_bits": 1024}]
    alice = next(u for u in t["users"] if u["upn"] == "alice@contoso.test")
    alice["consents"][0]["scopes"].append("https://api.fabric.microsoft.com/Gateway.Read.All")
    admin = next(u for u in t["users"] if u["upn"] == "admin@contoso.test")
    admin["consents"] = json.loads(json.dumps(alice["consents"]))
    return fx


# ---- encryption as Power BI's SDKs do it (PowerBI-CSharp AsymmetricKeyEncryptor) ----

def _oaep(n, e, msg, h):
    k = (n.bit_length() + 7) // 8
    hl = h().digest_size
    db = h(b"").digest() + b"\x00" * (k - len(msg) - 2 * hl - 2) + b"\x01" + msg
    seed = secrets.token_bytes(hl)
    mdb = bytes(a ^ b for a, b in zip(db, _mgf1(seed, k - hl - 1, h)))
    mseed = bytes(a ^ b for a, b in zip(seed, _mgf1(mdb, hl, h)))
    return pow(int.from_bytes(b"\x00" + mseed + mdb, "big"), e, n).to_bytes(k, "big")


def encrypt(public_key, plain):
    n = int.from_bytes(base64.b64decode(public_key["modulus"]), "big")
    e = int.from_bytes(base64.b64decode(public_key["exponent"]), "big")
    data = plain.encode()
    if len(base64.b64decode(public_key["modulus"])) == 128:
        return base64.b64encode(b"".join(_oaep(n, e, data[i:i + 85], hashlib.sha1)
                                         for i in range(0, len(data), 85))).decode()
    enc_key, mac_key, iv = secrets.token_bytes(32), secrets.token_bytes(64), secrets.token_bytes(16)
    ct = subprocess.run(["openssl", "enc", "-aes-256-cbc", "-K", enc_key.hex(), "-iv", iv.hex()], input=data,
                        capture_output=True, check=True).stdout
    tag = hmac.new(mac_key, b"\x00\x00" + iv + ct, hashlib.sha256).digest()
    keys = _oaep(n, e, b"\x00\x01" + enc_key + mac_key, hashlib.sha256)
    return base64.b64encode(keys).decode() + base64.b64encode(b"\x00\x00" + tag + iv + ct).decode()


def creds(**values):
    return json.dumps({"credentialData": [{"name": k, "value": v} for k, v in values.items()]})


class Gateways(EmuTestCase):
    def setUp(self):
        super().setUp()
        self.emu.control("POST", "load", fixture())
        self.alice = self.emu.user_tokens()["access_token"]
        self.user = self.emu.user_tokens("admin@contoso.test")["access_token"]   # a data source user only

    def gateway(self, gid=GW, token=None):
        r = self.emu.call("GET", P + "/gateways/" + gid, token=token or self.alice)
        self.assertEqual(r.status, 200, r)
        return r.json

    def create(self, body_over=None, cred_over=None, plain=None, gid=GW, token=None):
        key = self.gateway(gid)["publicKey"]
        cred = {"credentialType": "Basic", "credentials": encrypt(key, plain or creds(username="svc", password="pw-1")),
                "encryptedConnection": "Encrypted", "encryptionAlgorithm": "RSA-OAEP", "privacyLevel": "Organizational"}
        cred.update(cred_over or {})
        body = {"dataSourceType": "PostgreSql", "dataSourceName": "PG orders",
                "connectionDetails": json.dumps({"server": "pg01.plant.local", "database": "orders"}),
                "credentialDetails": cred}
        body.update(body_over or {})
        return self.emu.call("POST", P + "/gateways/%s/datasources" % gid, token=token or self.alice, body=body)

    def test_admins_list_gateways_with_public_keys(self):
        r = self.emu.call("GET", P + "/gateways", token=self.alice)
        self.assertEqual(r.status, 200, r)
        gws = {g["id"]: g for g in r.json["value"]}
        self.assertEqual(set(gws), {GW, GW_SMALL})
        self.assertEqual(gws[GW]["publicKey"]["exponent"], "AQAB")
        self.assertEqual(len(base64.b64decode(gws[GW]["publicKey"]["modulus"])), 256)
        self.assertEqual(len(base64.b64decode(gws[GW_SMALL]["publicKey"]["modulus"])), 128)
        self.assertEqual(gws[GW]["type"], "Resource")
        # the key stays the same across resets (a gateway keeps its key)
        self.emu.control("POST", "load", fixture())
        self.alice = self.emu.user_tokens()["access_token"]
        self.assertEqual(self.gateway()["publicKey"], gws[GW]["publicKey"])
        srcs = self.emu.call("GET", P + "/gateways/%s/datasources" % GW, token=self.alice).json["value"]
        by_id = {s["id"]: s for s in srcs}
        self.assertEqual(by_id[DS_SQL]["datasourceType"], "Sql")
        self.assertEqual(json.loads(by_id[DS_SQL]["connectionDetails"]), {"server": "sql01.plant.local", "database": "mes"})
        self.assertEqual(by_id[DS_SF]["datasourceName"], "Snowflake via gateway")

    def test_who_sees_what(self):
        # a data source user: no gateway in Power BI's list, 401 on the admin calls, the source in Fabric's
        self.assertEqual(self.emu.call("GET", P + "/gateways", token=self.user).json["value"], [])
        self.assertPbiError(self.emu.call("GET", P + "/gateways/" + GW, token=self.user), 401,
                            "PowerBINotAuthorizedException")
        self.assertPbiError(self.emu.call("GET", P + "/gateways/%s/datasources" % GW, token=self.user), 401,
                            "PowerBINotAuthorizedException")
        conns = self.emu.call("GET", "/fabric/v1/connections", token=self.user).json["value"]
        self.assertEqual([(c["id"], c["connectivityType"], c["gatewayId"], c["connectionDetails"]) for c in conns],
                         [(DS_SF, "OnPremisesGateway", GW, {"type": "Snowflake",
                                                            "path": "acme.snowflakecomputing.com;WH"})])
        # the admin sees every data source of the gateway in Fabric too
        self.emu.control("POST", "config", {"page_size": 100})
        mine = {c["id"] for c in self.emu.call("GET", "/fabric/v1/connections", token=self.alice).json["value"]}
        self.assertTrue({DS_SF, DS_SQL} <= mine)
        # someone with no right at all: the gateway does not exist for them
        self.emu.control("POST", "load", dict(fixture(), tenants=[dict(fixture()["tenants"][0], gateways=[
            {"id": GW, "name": "Plant gateway", "admins": ["bob@contoso.test"]}])]))
        alice = self.emu.user_tokens()["access_token"]
        self.assertPbiError(self.emu.call("GET", P + "/gateways/" + GW, token=alice), 404, "PowerBIEntityNotFound")
        self.assertPbiError(self.emu.call("GET", P + "/gateways/" + GW + "0", token=alice), 404,
                            "PowerBIEntityNotFound")

    def test_create_decrypts_and_checks_the_credentials(self):
        r = self.create()
        self.assertEqual(r.status, 201, r)
        ds = r.json
        self.assertEqual((ds["gatewayId"], ds["datasourceType"], ds["credentialType"], ds["datasourceName"]),
                         (GW, "PostgreSql", "Basic", "PG orders"))
        st = self.emu.state("connections")["connections"]
        kept = next(c for c in st if c["id"] == ds["id"])
        self.assertEqual(kept["credential_user"], "svc")
        self.assertEqual(kept["credential_sha256"], hashlib.sha256(b"pw-1").hexdigest())
        self.assertEqual((kept["type"], kept["path"]), ("PostgreSQL", "pg01.plant.local;orders"))
        self.assertNotIn("pw-1", json.dumps(st))
        # the same name again on that gateway
        self.assertPbiError(self.create(), 409, "DuplicateDatasourceName")
        # a 1024-bit gateway key: RSA-OAEP blocks
        r = self.create({"dataSourceName": "Long"}, gid=GW_SMALL,
                        plain=creds(username="u" * 100, password="p" * 150))
        self.assertEqual(r.status, 201, r)
        kept = next(c for c in self.emu.state("connections")["connections"] if c["id"] == r.json["id"])
        self.assertEqual(kept["credential_user"], "u" * 100)
        self.assertEqual(self.emu.state("counters")["counters"]["gateway_datasources_created"], 2)

    def test_create_refusals(self):
        bad = "DM_GWPipeline_Gateway_InvalidConnectionCredentials"
        # encrypted for another gateway's key, or not encrypted at all
        other = self.gateway(GW_SMALL)["publicKey"]
        self.assertPbiError(self.create(cred_over={"credentials": encrypt(other, creds(username="a", password="b"))}),
                            400, bad)
        self.assertPbiError(self.create(cred_over={"credentials": base64.b64encode(b"x" * 400).decode()}), 400, bad)
        self.assertPbiError(self.create(plain=creds(username="svc")), 400, bad)   # no password
        self.assertPbiError(self.create(plain="not json"), 400, bad)
        self.assertPbiError(self.create(cred_over={"encryptionAlgorithm": "None"}), 400, "InvalidRequest")
        self.assertPbiError(self.create(cred_over={"encryptedConnection": "NotEncrypted"}), 400, "InvalidRequest")
        self.assertPbiError(self.create(cred_over={"credentialType": "OAuth2"}), 400, "InvalidRequest")
        self.assertPbiError(self.create({"dataSourceType": "Nope"}), 400, "InvalidRequest")
        self.assertPbiError(self.create({"connectionDetails": json.dumps({"server": "x"})}), 400, "InvalidRequest")
        self.assertPbiError(self.create(plain=creds(username="svc", password="wrong-password")), 400,
                            "DM_GWPipeline_Gateway_DataSourceAccessError")
        # only admins add data sources
        self.assertPbiError(self.create(token=self.user), 401, "PowerBINotAuthorizedException")
        self.assertNotIn("gateway_datasources_created", self.emu.state("counters")["counters"])

    def test_discover_and_bind(self):
        url = P + "/groups/%s/datasets/%s/" % (WS_SALES, MODEL_SALES)
        found = self.emu.call("GET", url + "Default.DiscoverGateways", token=self.alice).json["value"]
        self.assertEqual([g["id"] for g in found], [GW])
        self.assertIn("publicKey", found[0])
        # a data source of another gateway, or of this one for another source
        self.assertPbiError(self.emu.call("POST", url + "Default.BindToGateway", token=self.alice, body={
            "gatewayObjectId": GW, "datasourceObjectIds": [DS_SQL]}), 400, "DMTS_CanNotFindMatchingDatasourceInGatewayError")
        self.assertPbiError(self.emu.call("POST", url + "Default.BindToGateway", token=self.alice, body={
            "gatewayObjectId": GW_SMALL}), 400, "DMTS_CanNotFindMatchingDatasourceInGatewayError")
        r = self.emu.call("POST", url + "Default.BindToGateway", token=self.alice,
                          body={"gatewayObjectId": GW, "datasourceObjectIds": [DS_SF]})
        self.assertEqual(r.status, 200, r)
        src = self.emu.call("GET", url + "datasources", token=self.alice).json["value"]
        self.assertEqual([(s["gatewayId"], s["datasourceId"]) for s in src], [(GW, DS_SF)])
        ds = self.emu.call("GET", url[:-1], token=self.alice).json
        self.assertTrue(ds["isOnPremGatewayRequired"])
        item = self.emu.call("GET", "/fabric/v1/workspaces/%s/items/%s/connections" % (WS_SALES, MODEL_SALES),
                             token=self.alice).json["value"]
        self.assertEqual([(c["id"], c["connectivityType"], c["gatewayId"]) for c in item],
                         [(DS_SF, "OnPremisesGateway", GW)])
        self.assertEqual(self.emu.state("counters")["counters"]["gateway_bindings"], 1)
        # without ids: the gateway's matching data source the caller may use
        r = self.emu.call("POST", url + "Default.BindToGateway", token=self.alice, body={"gatewayObjectId": GW})
        self.assertEqual(r.status, 200, r)

    def test_binding_needs_the_owner_and_a_data_source_user(self):
        url = P + "/groups/%s/datasets/%s/Default.BindToGateway" % (WS_SALES, MODEL_SALES)
        # the data source user who does not own the dataset
        r = self.emu.call("POST", url, token=self.user, body={"gatewayObjectId": GW, "datasourceObjectIds": [DS_SF]})
        self.assertIn(r.status, (403, 404), r)
        # the owner who is not a user of the data source
        fx = fixture()
        fx["tenants"][0]["gateways"][0]["admins"] = ["admin@contoso.test"]
        fx["tenants"][0]["gateways"][0]["datasources"][0]["users"] = []
        self.emu.control("POST", "load", fx)
        alice = self.emu.user_tokens()["access_token"]
        self.assertPbiError(self.emu.call("POST", url, token=alice, body={"gatewayObjectId": GW}), 400,
                            "DMTS_CanNotFindMatchingDatasourceInGatewayError")
        self.assertPbiError(self.emu.call("POST", url, token=alice, body={"gatewayObjectId": GW,
                                                                          "datasourceObjectIds": [DS_SF]}),
                            401, "PowerBINotAuthorizedException")
        found = self.emu.call("GET", url.replace("BindToGateway", "DiscoverGateways"), token=alice).json["value"]
        self.assertEqual(found, [])

    def test_delete_removes_the_source_and_its_bindings(self):
        url = P + "/groups/%s/datasets/%s/" % (WS_SALES, MODEL_SALES)
        self.emu.call("POST", url + "Default.BindToGateway", token=self.alice, body={"gatewayObjectId": GW})
        self.assertPbiError(self.emu.call("DELETE", P + "/gateways/%s/datasources/%s" % (GW, DS_SF), token=self.user),
                            401, "PowerBINotAuthorizedException")
        r = self.emu.call("DELETE", P + "/gateways/%s/datasources/%s" % (GW, DS_SF), token=self.alice)
        self.assertEqual(r.status, 200, r)
        self.assertPbiError(self.emu.call("DELETE", P + "/gateways/%s/datasources/%s" % (GW, DS_SF),
                                          token=self.alice), 404, "PowerBIEntityNotFound")
        src = self.emu.call("GET", url + "datasources", token=self.alice).json["value"]
        self.assertNotIn("gatewayId", src[0])
        ids = {c["id"] for c in self.emu.call("GET", "/fabric/v1/connections", token=self.alice).json["value"]}
        self.assertNotIn(DS_SF, ids)

    def test_fabric_list_gateways(self):
        self.assertFabricError(self.emu.call("GET", "/fabric/v1/gateways", token=self.alice), 403, "InsufficientScopes")
        tok = self.emu.user_tokens(scopes=["offline_access", PBI + "Dataset.ReadWrite.All",
                                           "https://api.fabric.microsoft.com/Gateway.Read.All"])["access_token"]
        r = self.emu.call("GET", "/fabric/v1/gateways", token=tok)
        self.assertEqual(r.status, 200, r)
        gws = {g["id"]: g for g in r.json["value"]}
        self.assertEqual(gws[GW]["type"], "OnPremises")
        self.assertEqual(gws[GW]["displayName"], "Plant gateway")
        self.assertEqual(gws[GW]["publicKey"], self.gateway()["publicKey"])


if __name__ == "__main__":
    main()
