#!/usr/bin/env python3
"""Fabric REST: paging, semantic-model LROs with TMDL parsing, roles/scopes, connections, binding."""

import base64
import json

from emutest import (CONN_SF, MODEL_LAKE, MODEL_SALES, PBI, PUSH_APP, PUSH_SECRET, WS_FINANCE, WS_MARKETING,
                     WS_SALES, EmuTestCase, main)

TABLE = """/// Orders placed online
table Orders
\tlineageTag: 6a1c0f3e-0000-4000-8000-000000000001

\tmeasure 'Order Count' = COUNTROWS(Orders)
\t\tformatString: 0

\tcolumn OrderId
\t\tdataType: int64
\t\tsummarizeBy: none
\t\tsourceColumn: ORDER_ID

\tcolumn 'Order Date'
\t\tdataType: dateTime
\t\tsourceColumn: ORDER_DATE

\tpartition Orders = m
\t\tmode: import
\t\tsource =
\t\t\t\tlet
\t\t\t\t    Source = Snowflake.Databases("acme.snowflakecomputing.com", "WH"),
\t\t\t\t    DB = Source{[Name="SALES",Kind="Database"]}[Data]
\t\t\t\tin
\t\t\t\t    DB
"""


def b64(text):
    return base64.b64encode(text.encode()).decode()


def definition(table=TABLE, pbism='{"version": "4.2", "settings": {}}', extra=None):
    parts = {"definition.pbism": pbism, "definition/database.tmdl": "database\n\tcompatibilityLevel: 1604\n",
             "definition/model.tmdl": "model Model\n\tculture: en-US\n\nref table Orders\n",
             "definition/tables/Orders.tmdl": table}
    parts.update(extra or {})
    return {"parts": [{"path": k, "payload": b64(v), "payloadType": "InlineBase64"} for k, v in parts.items()]}


class Fabric(EmuTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.emu.user_tokens()["access_token"]

    def create(self, name="Published", ws=WS_SALES, token=None, defn=None):
        return self.emu.call("POST", "/fabric/v1/workspaces/%s/semanticModels" % ws, token=token or self.alice,
                             body={"displayName": name, "description": "generated", "definition": defn or definition()})

    def poll(self, loc, token=None):
        return self.emu.call("GET", loc, token=token or self.alice)

    def test_workspace_paging(self):
        r = self.emu.call("GET", "/fabric/v1/workspaces", token=self.alice)
        self.assertEqual(r.status, 200)
        j = r.json
        self.assertEqual(len(j["value"]), 2)
        self.assertIn("%3D", j["continuationToken"])  # pre-encoded, as the service sends it
        self.assertTrue(j["continuationUri"].endswith("continuationToken=" + j["continuationToken"]))
        names = [w["displayName"] for w in j["value"]]
        pages = 1
        while "continuationUri" in j:
            r = self.emu.call("GET", j["continuationUri"], token=self.alice)
            self.assertEqual(r.status, 200, r)
            j = r.json
            names += [w["displayName"] for w in j["value"]]
            pages += 1
        self.assertNotIn("continuationToken", j)
        self.assertEqual(names, ["Contoso Marketing EU", "Finance", "Marketing", "My workspace", "Sales"])
        self.assertEqual(pages, 3)
        types = {w["displayName"]: w["type"] for w in self.emu.call("GET", "/fabric/v1/workspaces?roles=Admin",
                                                                    token=self.alice).json["value"]}
        self.assertEqual(types, {"My workspace": "Personal", "Sales": "Workspace"})
        # a double-encoded token is refused
        tok = self.emu.call("GET", "/fabric/v1/workspaces", token=self.alice).json["continuationToken"]
        r = self.emu.call("GET", "/fabric/v1/workspaces?continuationToken=" + tok.replace("%", "%25"),
                          token=self.alice)
        self.assertFabricError(r, 400, "InvalidContinuationToken")

    def test_page_size_from_control_api(self):
        self.emu.control("POST", "config", {"page_size": 100})
        j = self.emu.call("GET", "/fabric/v1/workspaces", token=self.alice).json
        self.assertEqual(len(j["value"]), 5)
        self.assertNotIn("continuationUri", j)

    def test_get_workspace_and_items(self):
        r = self.emu.call("GET", "/fabric/v1/workspaces/" + WS_SALES, token=self.alice)
        self.assertEqual(r.json["displayName"], "Sales")
        self.assertEqual(r.json["capacityId"], "dddddddd-0000-0000-0000-000000000001")
        self.assertFabricError(self.emu.call("GET", "/fabric/v1/workspaces/22222222-0000-0000-0000-000000000005",
                                             token=self.alice), 403, "InsufficientPrivileges")
        self.assertFabricError(self.emu.call("GET", "/fabric/v1/workspaces/nope", token=self.alice), 404,
                               "WorkspaceNotFound")
        self.emu.control("POST", "config", {"page_size": 100})
        items = self.emu.call("GET", "/fabric/v1/workspaces/%s/items" % WS_SALES, token=self.alice).json["value"]
        self.assertEqual(sorted(i["type"] for i in items),
                         ["Dashboard", "PaginatedReport", "Report", "SemanticModel", "SemanticModel",
                          "SemanticModel"])
        models = self.emu.call("GET", "/fabric/v1/workspaces/%s/items?type=SemanticModel" % WS_SALES,
                               token=self.alice).json["value"]
        self.assertEqual(len(models), 3)
        r = self.emu.call("GET", "/fabric/v1/workspaces/%s/semanticModels/%s" % (WS_SALES, MODEL_SALES),
                          token=self.alice)
        self.assertEqual(r.json, {"id": MODEL_SALES, "type": "SemanticModel", "displayName": "Sales Model",
                                  "description": "", "workspaceId": WS_SALES})
        self.assertFabricError(self.emu.call("GET", "/fabric/v1/workspaces/%s/semanticModels/x" % WS_SALES,
                                             token=self.alice), 404, "ItemNotFound")

    def test_create_model_lro(self):
        r = self.create()
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.body, b"")
        loc, opid = r.header("Location"), r.header("x-ms-operation-id")
        self.assertTrue(loc.endswith("/fabric/v1/operations/" + opid))
        self.assertEqual(r.header("Retry-After"), "1")
        seen = []
        for _ in range(5):
            p = self.poll(loc)
            self.assertEqual(p.status, 200)
            seen.append(p.json["status"])
            if p.json["status"] == "Succeeded":
                break
            self.assertEqual(p.header("Retry-After"), "1")
        self.assertEqual(seen, ["NotStarted", "Running", "Succeeded"])
        self.assertEqual(p.json["percentComplete"], 100)
        result_loc = p.header("Location")
        self.assertTrue(result_loc.endswith("/fabric/operations/%s/result" % opid), result_loc)  # no /v1
        item = self.poll(result_loc).json
        self.assertEqual(item["displayName"], "Published")
        self.assertEqual(item["type"], "SemanticModel")
        self.assertEqual(self.poll("/fabric/v1/operations/%s/result" % opid).json, item)
        st = self.emu.control("GET", "state?sections=models")
        m = next(x for x in st["models"] if x["id"] == item["id"])
        self.assertEqual(m["owner"], "alice@contoso.test")
        self.assertEqual(m["tables"], ["Orders"])
        self.assertEqual(m["datasources"], [{"type": "Snowflake", "path": "acme.snowflakecomputing.com;WH"}])
        self.assertIn("definition/tables/Orders.tmdl", m["parts"])
        # the description is kept and served back, as Fabric's Item does (list, get, PATCH)
        self.assertEqual(item["description"], "generated")
        path = "/fabric/v1/workspaces/%s/semanticModels" % WS_SALES
        self.emu.control("POST", "config", {"page_size": 100})
        listed = [x for x in self.emu.call("GET", path, token=self.alice).json["value"] if x["id"] == item["id"]]
        self.assertEqual(listed, [item])
        self.assertEqual(self.emu.call("GET", path + "/" + item["id"], token=self.alice).json["description"], "generated")
        r = self.emu.call("PATCH", path + "/" + item["id"], body={"description": "edited"}, token=self.alice)
        self.assertEqual((r.status, r.json["description"]), (200, "edited"))
        self.assertEqual(self.emu.control("GET", "state?sections=models&parts=0")["models"][-1]["description"], "edited")
        r = self.emu.call("POST", path, token=self.alice, body={"displayName": "Long", "description": "d" * 257,
                                                               "definition": definition()})
        self.assertFabricError(r, 400, "InvalidRequest")   # Fabric's limit: 256 characters
        # the same name again is refused
        self.assertFabricError(self.create(), 400, "ItemDisplayNameAlreadyInUse")

    def test_operation_finishes_on_advance_and_sync_mode(self):
        r = self.create()
        self.emu.control("POST", "advance")
        self.assertEqual(self.poll(r.header("Location")).json["status"], "Succeeded")
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        r = self.create("Second")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["displayName"], "Second")

    def test_malformed_tmdl_fails_the_operation(self):
        bad = TABLE.replace("\tcolumn OrderId", "    column OrderId")
        r = self.create(defn=definition(bad))
        self.assertEqual(r.status, 202)
        self.emu.control("POST", "advance")
        p = self.poll(r.header("Location"))
        self.assertEqual(p.json["status"], "Failed")
        self.assertEqual(p.json["error"]["errorCode"], "CorruptedPayload")
        self.assertIn("definition/tables/Orders.tmdl:", p.json["error"]["message"])
        self.assertFabricError(self.poll("/fabric/v1/operations/%s/result" % r.header("x-ms-operation-id")), 400,
                               "OperationFailed")
        for broken, needle in ((TABLE.replace("column 'Order Date'", "column Order Date"), "single quotes"),
                               (TABLE.replace("'Order Count'", "'Order Count"), "unterminated"),
                               ("column Loose\n\tdataType: string\n", "not allowed at top level")):
            self.emu.control("POST", "config", {"lro_mode": "sync"})
            r = self.create("X", defn=definition(broken))
            self.assertFabricError(r, 400, "CorruptedPayload")
            self.assertIn(needle, r.json["message"])

    def test_definition_structure_checks(self):
        self.assertFabricError(self.create(defn=definition(pbism='{"version": "1.0"}')), 400, "CorruptedPayload")
        d = definition()
        d["parts"] = [p for p in d["parts"] if p["path"] != "definition.pbism"]
        self.assertFabricError(self.create(defn=d), 400, "CorruptedPayload")
        d = definition()
        d["parts"][1]["payload"] = "not base64!!"
        self.assertFabricError(self.create(defn=d), 400, "CorruptedPayload")
        d = definition(extra={"model.bim": "{}"})
        self.assertFabricError(self.create(defn=d), 400, "CorruptedPayload")

    def test_viewer_cannot_create_and_scopes(self):
        self.assertFabricError(self.create(ws=WS_MARKETING), 403, "InsufficientWorkspaceRole")
        narrow = self.emu.user_tokens(scopes=["offline_access", PBI + "Dataset.ReadWrite.All"])["access_token"]
        r = self.create(token=narrow)
        self.assertFabricError(r, 403, "InsufficientScopes")
        self.assertIn("SemanticModel.ReadWrite.All", r.json["message"])

    def test_get_and_update_definition(self):
        r = self.emu.call("POST", "/fabric/v1/workspaces/%s/semanticModels/%s/getDefinition" % (WS_SALES,
                                                                                                 MODEL_SALES),
                          token=self.alice)
        self.assertEqual(r.status, 202)
        self.emu.control("POST", "advance")
        res = self.poll("/fabric/v1/operations/%s/result" % r.header("x-ms-operation-id")).json
        parts = {p["path"]: base64.b64decode(p["payload"]).decode() for p in res["definition"]["parts"]}
        self.assertIn(".platform", parts)
        self.assertEqual(json.loads(parts["definition.pbism"])["version"], "4.0")
        self.assertIn("Snowflake.Databases", parts["definition/tables/Orders.tmdl"])
        # the generated TMDL is itself accepted by create
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        d = {"parts": [p for p in res["definition"]["parts"] if p["path"] != ".platform"]}
        self.assertEqual(self.create("Copy", defn=d).status, 201)
        # TMSL on request, and it loads back too
        r = self.emu.call("POST", "/fabric/v1/workspaces/%s/semanticModels/%s/getDefinition?format=TMSL"
                          % (WS_SALES, MODEL_SALES), token=self.alice)
        self.assertEqual(r.status, 200, r)
        tmsl = {p["path"]: p for p in r.json["definition"]["parts"]}
        self.assertEqual(r.json["definition"]["format"], "TMSL")
        bim = json.loads(base64.b64decode(tmsl["model.bim"]["payload"]))
        self.assertEqual(bim["model"]["tables"][0]["name"], "Orders")
        self.assertEqual(self.create("From TMSL", defn={"parts": [tmsl["definition.pbism"], tmsl["model.bim"]]}).status,
                         201)
        r = self.emu.call("POST", "/fabric/v1/workspaces/%s/semanticModels/%s/updateDefinition" % (WS_SALES,
                                                                                                    MODEL_SALES),
                          token=self.alice, body={"definition": definition()})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"")

    def _sf_connection(self, name="sf-new", token=None, **over):
        body = {"connectivityType": "ShareableCloud", "displayName": name,
                "connectionDetails": {"type": "Snowflake", "creationMethod": "Snowflake.Databases",
                                      "parameters": [{"dataType": "Text", "name": "server",
                                                      "value": "acme.snowflakecomputing.com"},
                                                     {"dataType": "Text", "name": "warehouse", "value": "WH"}]},
                "privacyLevel": "Organizational",
                "credentialDetails": {"singleSignOnType": "None", "connectionEncryption": "NotEncrypted",
                                      "skipTestConnection": False,
                                      "credentials": {"credentialType": "Basic", "username": "svc",
                                                      "password": "s3cret-pw"}}}
        body.update(over)
        return self.emu.call("POST", "/fabric/v1/connections", token=token or self.alice, body=body)

    def test_connections(self):
        r = self._sf_connection()
        self.assertEqual(r.status, 201, r)
        c = r.json
        self.assertEqual(c["connectionDetails"], {"type": "Snowflake", "path": "acme.snowflakecomputing.com;WH"})
        self.assertEqual(c["credentialDetails"]["credentialType"], "Basic")
        self.assertIn("gatewayId", c)
        self.assertNotIn(b"s3cret-pw", r.body)
        self.assertFabricError(self._sf_connection(), 409, "DuplicateConnectionName")
        dbx = {"type": "Databricks", "creationMethod": "Databricks.Catalogs",
               "parameters": [{"dataType": "Text", "name": "host", "value": "adb-1.2.azuredatabricks.net"},
                              {"dataType": "Text", "name": "httpPath", "value": "/sql/1.0/warehouses/x"}]}
        r = self._sf_connection("dbx-pat", connectionDetails=dbx, credentialDetails={
            "credentials": {"credentialType": "Key", "key": "dapi-123"}})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["connectionDetails"]["path"], "adb-1.2.azuredatabricks.net;/sql/1.0/warehouses/x")
        r = self._sf_connection("dbx-sp", connectionDetails=dbx, credentialDetails={"credentials": {
            "credentialType": "ServicePrincipal", "tenantId": "t", "servicePrincipalClientId": "c",
            "servicePrincipalSecret": "s"}})
        self.assertEqual(r.status, 201, r)
        self.assertFabricError(self._sf_connection("dbx-oauth", connectionDetails=dbx, credentialDetails={
            "credentials": {"credentialType": "OAuth2"}}), 400, "InvalidCredentialDetails")
        self.assertFabricError(self._sf_connection("x", credentialDetails={"credentials": {
            "credentialType": "Basic", "username": "u"}}), 400, "InvalidCredentialDetails")
        bad = json.loads(json.dumps(dbx))
        bad["parameters"] = bad["parameters"][:1]
        self.assertFabricError(self._sf_connection("y", connectionDetails=bad), 400, "InvalidConnectionDetails")
        self.assertFabricError(self._sf_connection("z", connectivityType="OnPremisesGateway"), 400, "InvalidInput")
        self.emu.control("POST", "config", {"page_size": 100})
        listed = self.emu.call("GET", "/fabric/v1/connections", token=self.alice).json["value"]
        self.assertEqual(sorted(c["displayName"] for c in listed), ["dbx-pat", "dbx-sp", "sf-acme-wh", "sf-new"])
        st = self.emu.state("connections")
        self.assertEqual(len(st["connections"]), 4)
        self.assertNotIn("s3cret-pw", json.dumps(st))
        types = self.emu.call("GET", "/fabric/v1/connections/supportedConnectionTypes", token=self.alice).json
        sf = next(t for t in types["value"] if t["type"] == "Snowflake")
        self.assertEqual(sf["creationMethods"][0]["name"], "Snowflake.Databases")
        # connections need Connection.* scopes
        narrow = self.emu.user_tokens(scopes=["offline_access", PBI + "Dataset.ReadWrite.All"])["access_token"]
        self.assertFabricError(self.emu.call("GET", "/fabric/v1/connections", token=narrow), 403,
                               "InsufficientScopes")

    def test_item_connections_and_bind_rules(self):
        base = "/fabric/v1/workspaces/%s" % WS_SALES
        conns = self.emu.call("GET", base + "/items/%s/connections" % MODEL_SALES, token=self.alice).json["value"]
        self.assertEqual(conns, [{"id": CONN_SF, "displayName": "sf-acme-wh", "connectivityType": "ShareableCloud",
                                  "gatewayId": conns[0]["gatewayId"],
                                  "connectionDetails": {"type": "Snowflake",
                                                        "path": "acme.snowflakecomputing.com;WH"}}])
        lake = self.emu.call("GET", base + "/items/%s/connections" % MODEL_LAKE, token=self.alice).json["value"]
        self.assertEqual(lake, [{"connectivityType": "None", "connectionDetails": {
            "type": "Databricks", "path": "adb-123.4.azuredatabricks.net;/sql/1.0/warehouses/abc"}}])
        # publish a model, then bind it
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        mid = self.create().json["id"]
        bind = base + "/semanticModels/%s/bindConnection" % mid
        good = {"connectionBinding": {"id": CONN_SF, "connectivityType": "ShareableCloud", "connectionDetails": {
            "type": "Snowflake", "path": "acme.snowflakecomputing.com;WH"}}}
        wrong_path = json.loads(json.dumps(good))
        wrong_path["connectionBinding"]["connectionDetails"]["path"] = "other.snowflakecomputing.com;WH"
        self.assertFabricError(self.emu.call("POST", bind, token=self.alice, body=wrong_path), 400, "InvalidRequest")
        # Lake Model is owned by bob: alice (workspace admin) cannot bind it
        r = self.emu.call("POST", base + "/semanticModels/%s/bindConnection" % MODEL_LAKE, token=self.alice,
                          body=good)
        self.assertFabricError(r, 403, "InsufficientPrivileges")
        r = self.emu.call("POST", bind, token=self.alice, body=good)
        self.assertEqual(r.status, 200, r)
        conns = self.emu.call("GET", base + "/items/%s/connections" % mid, token=self.alice).json["value"]
        self.assertEqual(conns[0]["id"], CONN_SF)
        st = self.emu.state("models")
        m = next(x for x in st["models"] if x["id"] == mid)
        self.assertEqual(m["bindings"][0]["connectionId"], CONN_SF)
        unbind = {"connectionBinding": {"connectivityType": "None", "connectionDetails": good["connectionBinding"][
            "connectionDetails"]}}
        self.assertEqual(self.emu.call("POST", bind, token=self.alice, body=unbind).status, 200)
        conns = self.emu.call("GET", base + "/items/%s/connections" % mid, token=self.alice).json["value"]
        self.assertEqual(conns[0]["connectivityType"], "None")

    def test_tenant_settings_for_service_principals(self):
        import os
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "tenants",
                               "test.json")) as f:
            fx = json.load(f)
        fx["tenants"][0]["settings"].update(service_principals_allowed=False, sp_can_create_connections=False)
        self.emu.control("POST", "load", fx)
        sp = self.emu.sp_token(PUSH_APP, PUSH_SECRET)  # Entra still issues the token
        self.assertFabricError(self.emu.call("GET", "/fabric/v1/workspaces", token=sp), 401,
                               "PrincipalTypeNotSupported")
        self.assertPbiError(self.emu.call("GET", "/powerbi/v1.0/myorg/groups", token=sp), 401,
                            "PowerBINotAuthorizedException")
        fx["tenants"][0]["settings"]["service_principals_allowed"] = True
        self.emu.control("POST", "load", fx)
        sp = self.emu.sp_token(PUSH_APP, PUSH_SECRET)
        self.assertFabricError(self._sf_connection(token=sp), 403, "InsufficientPrivileges")

    def test_service_principal_access(self):
        sp = self.emu.sp_token(PUSH_APP, PUSH_SECRET)
        self.emu.control("POST", "config", {"page_size": 100})
        names = [w["displayName"] for w in self.emu.call("GET", "/fabric/v1/workspaces", token=sp).json["value"]]
        self.assertEqual(names, ["Marketing", "Sales"])
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        self.assertEqual(self.create("By SP", token=sp).status, 201)
        self.assertFabricError(self.emu.call("GET", "/fabric/v1/workspaces/" + WS_FINANCE, token=sp), 403,
                               "InsufficientPrivileges")


if __name__ == "__main__":
    main()
