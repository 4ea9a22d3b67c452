#!/usr/bin/env python3
"""Fabric REST: paging, semantic-model LROs with TMDL parsing, roles/scopes, connections, binding."""

import base64
import json
import urllib.parse

from emutest import (CONN_SF, MODEL_LAKE, MODEL_SALES, PBI, PUSH_APP, PUSH_SECRET, REDIRECT, TENANT, WEB_APP,
                     WEB_SECRET, WS_FINANCE, WS_MARKETING, WS_SALES, EmuTestCase, main, pkce)

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

    # ---- definitions as Fabric serves them, and edits made "in Power BI" ----------------

    def _definition(self, mid, token=None, expect=200):
        """getDefinition through its LRO; returns {path: text} (or the error response)."""
        r = self.emu.call("POST", "/fabric/v1/workspaces/%s/semanticModels/%s/getDefinition" % (WS_SALES, mid),
                          token=token or self.alice)
        if r.status == 202:
            self.emu.control("POST", "advance")
            res = self.poll("/fabric/v1/operations/%s/result" % r.header("x-ms-operation-id")).json
        elif r.status == 200:
            res = r.json
        else:
            return r
        self.assertEqual(res["definition"]["format"], "TMDL")
        for p in res["definition"]["parts"]:
            self.assertEqual(p["payloadType"], "InlineBase64")
        return {p["path"]: base64.b64decode(p["payload"]).decode() for p in res["definition"]["parts"]}

    def _consenting_user_token(self, upn):
        """A user who has not consented yet accepts the consent page, then redeems the code."""
        verifier, challenge = pkce()
        p = {"client_id": WEB_APP, "response_type": "code", "redirect_uri": REDIRECT, "state": "st",
             "scope": "offline_access %sItem.ReadWrite.All %sWorkspace.Read.All" % (PBI, PBI),
             "login_hint": upn, "code_challenge": challenge, "code_challenge_method": "S256"}
        r = self.emu.call("POST", "/entra/%s/oauth2/v2.0/authorize" % TENANT,
                          form=dict(p, login=upn, consent="accept"))
        self.assertEqual(r.status, 302, r)
        code = urllib.parse.parse_qs(urllib.parse.urlparse(r.header("Location")).query)["code"][0]
        r = self.emu.call("POST", "/entra/%s/oauth2/v2.0/token" % TENANT,
                          form={"grant_type": "authorization_code", "client_id": WEB_APP, "client_secret": WEB_SECRET,
                                "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
        self.assertEqual(r.status, 200, r)
        return r.json["access_token"]

    def _edit(self, mid, body):
        return self.emu.call("POST", "/_emulator/models/%s/edit" % mid, body=body)

    def test_definition_round_trip_lro_and_viewer(self):
        customers = ("table Customers\n\tcolumn CustomerId\n\t\tdataType: int64\n\t\tsourceColumn: ID\n\n"
                     "\tpartition Customers = m\n\t\tmode: import\n\t\tsource =\n\t\t\t\tlet\n"
                     "\t\t\t\t    S = Snowflake.Databases(\"acme.snowflakecomputing.com\", \"WH\")\n"
                     "\t\t\t\tin\n\t\t\t\t    S\n")
        table = TABLE.replace("\tcolumn OrderId", "\tcolumn CustomerId\n\t\tdataType: int64\n"
                                                   "\t\tsourceColumn: CUSTOMER_ID\n\n\tcolumn OrderId")
        rel = "relationship r1\n\tfromColumn: Orders.CustomerId\n\ttoColumn: Customers.CustomerId\n"
        d = definition(table, extra={"definition/tables/Customers.tmdl": customers,
                                     "definition/relationships.tmdl": rel})
        sent = {p["path"]: base64.b64decode(p["payload"]).decode() for p in d["parts"]}
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        mid = self.create(defn=d).json["id"]
        self.emu.control("POST", "config", {"lro_mode": "async"})
        # getDefinition: an LRO whose result holds the same parts as create, plus .platform
        got = self._definition(mid)
        self.assertEqual({k: v for k, v in got.items() if k != ".platform"}, sent)
        self.assertEqual(json.loads(got[".platform"])["config"]["logicalId"], mid)
        # updateDefinition: an LRO without a result; the next getDefinition returns the new parts
        changed = definition(table.replace("'Order Date'", "'Ordered On'"),
                             extra={"definition/tables/Customers.tmdl": customers,
                                    "definition/relationships.tmdl": rel})
        path = "/fabric/v1/workspaces/%s/semanticModels/%s/updateDefinition" % (WS_SALES, mid)
        r = self.emu.call("POST", path, token=self.alice, body={"definition": changed})
        self.assertEqual(r.status, 202, r)
        p = self.poll(r.header("Location"))
        while p.json["status"] in ("NotStarted", "Running"):
            p = self.poll(r.header("Location"))
        self.assertEqual(p.json["status"], "Succeeded")
        self.assertIsNone(p.header("Location"))   # no result to fetch
        self.assertFabricError(self.poll("/fabric/v1/operations/%s/result" % r.header("x-ms-operation-id")), 404,
                               "OperationHasNoResult")
        self.assertIn("column 'Ordered On'", self._definition(mid)["definition/tables/Orders.tmdl"])
        # a definition that does not parse fails the operation and leaves the model as it was
        r = self.emu.call("POST", path, token=self.alice,
                          body={"definition": definition(TABLE.replace("\tcolumn OrderId", "  column OrderId"))})
        self.emu.control("POST", "advance")
        p = self.poll(r.header("Location"))
        self.assertEqual((p.json["status"], p.json["error"]["errorCode"]), ("Failed", "CorruptedPayload"))
        self.assertIn("column 'Ordered On'", self._definition(mid)["definition/tables/Orders.tmdl"])
        # a Viewer (bob in Sales) may neither read nor write the definition, as for create
        bob = self._consenting_user_token("bob@contoso.test")
        self.assertFabricError(self._definition(mid, token=bob), 403, "InsufficientWorkspaceRole")
        self.assertFabricError(self.emu.call("POST", path, token=bob, body={"definition": changed}), 403,
                               "InsufficientWorkspaceRole")
        narrow = self.emu.user_tokens(scopes=["offline_access", PBI + "Dataset.ReadWrite.All"])["access_token"]
        self.assertFabricError(self.emu.call("POST", path, token=narrow, body={"definition": changed}), 403,
                               "InsufficientScopes")
        self.assertFabricError(self.emu.call("POST", path.replace(mid, "nope"), token=self.alice,
                                             body={"definition": changed}), 404, "ItemNotFound")

    def test_edit_in_power_bi(self):
        table = TABLE.replace("\tcolumn OrderId", "\tcolumn CustomerId\n\t\tdataType: int64\n"
                                                   "\t\tsourceColumn: CUSTOMER_ID\n\n\tcolumn OrderId")
        table = table.replace("\t\tsummarizeBy: none\n", "\t\tsummarizeBy: none\n\t\tsortByColumn: OrderId\n"
                                                          "\n\t\tannotation PBIPORT_Generated = true\n", 1)
        table = table.replace("\tpartition Orders", "\thierarchy Ids\n\t\tlevel Id\n\t\t\tcolumn: OrderId\n\n"
                                                   "\tpartition Orders")
        customers = "table Customers\n\tcolumn CustomerId\n\t\tdataType: int64\n\n" \
                    "\tmeasure Orders = COUNTROWS(Orders) + SUM('Orders'[OrderId])\n"
        rel = "relationship r1\n\tfromColumn: Orders.OrderId\n\ttoColumn: Customers.CustomerId\n"
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        mid = self.create(defn=definition(table, extra={"definition/tables/Customers.tmdl": customers,
                                                        "definition/relationships.tmdl": rel})).json["id"]
        r = self._edit(mid, {"add_measure": {"table": "orders", "name": "Order Total",
                                             "expression": "VAR n = [Order Count]\nRETURN n * 2"}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["tables"], ["Orders", "Customers"])
        orders = self._definition(mid)["definition/tables/Orders.tmdl"]
        self.assertIn("\tmeasure 'Order Total' =\n\t\t\tVAR n = [Order Count]\n\t\t\tRETURN n * 2\n"
                      "\t\tlineageTag: ", orders)
        self.assertLess(orders.index("partition Orders"), orders.index("measure 'Order Total'"))
        r = self._edit(mid, {"add_measure": {"table": "Orders", "name": "Count", "expression": "COUNTROWS(Orders)"}})
        self.assertEqual(r.status, 200, r)
        self.assertIn("\tmeasure Count = COUNTROWS(Orders)\n\t\tlineageTag: ",
                      self._definition(mid)["definition/tables/Orders.tmdl"])
        # a rename keeps the column's properties and annotations and follows its references
        r = self._edit(mid, {"rename_column": {"table": "Orders", "from": "orderid", "to": "Order Key"}})
        self.assertEqual(r.status, 200, r)
        parts = self._definition(mid)
        orders = parts["definition/tables/Orders.tmdl"]
        self.assertIn("\tcolumn 'Order Key'\n\t\tdataType: int64\n\t\tsummarizeBy: none\n"
                      "\t\tsortByColumn: 'Order Key'\n\n\t\tannotation PBIPORT_Generated = true\n"
                      "\t\tsourceColumn: ORDER_ID\n", orders)
        self.assertIn("\t\t\tcolumn: 'Order Key'\n", orders)
        self.assertNotIn("OrderId", orders)
        self.assertIn("toColumn: Customers.CustomerId", parts["definition/relationships.tmdl"])
        self.assertIn("fromColumn: Orders.'Order Key'", parts["definition/relationships.tmdl"])
        self.assertIn("SUM('Orders'[Order Key])", parts["definition/tables/Customers.tmdl"])
        st = next(m for m in self.emu.state("models")["models"] if m["id"] == mid)
        self.assertEqual(st["tables"], ["Orders", "Customers"])
        # a fixture model (written from its structure) can be edited too
        r = self._edit(MODEL_SALES, {"add_measure": {"table": "Orders", "name": "N", "expression": "1"}})
        self.assertEqual(r.status, 200, r)
        self.assertIn("measure N = 1", self._definition(MODEL_SALES)["definition/tables/Orders.tmdl"])

    def test_edit_refusals(self):
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        mid = self.create().json["id"]
        before = self._definition(mid)
        bad = [
            ([], "the body must be"),
            ({}, "the body must be"),
            ({"drop_table": {"table": "Orders"}}, "the body must be"),
            ({"add_measure": {"table": "Orders", "name": "X", "expression": "1"}, "rename_column": {}},
             "the body must be"),
            ({"add_measure": {"table": "Orders", "name": "X"}}, "needs exactly the fields table, name, expression"),
            ({"add_measure": {"table": "Orders", "name": "X", "expression": "1", "extra": 1}}, "needs exactly"),
            ({"add_measure": "Orders"}, "needs exactly"),
            ({"add_measure": {"table": "Nope", "name": "X", "expression": "1"}}, "the model has no table 'Nope'"),
            ({"add_measure": {"table": "Orders", "name": "", "expression": "1"}}, "'name' must be a non-empty"),
            ({"add_measure": {"table": "Orders", "name": "a\nb", "expression": "1"}}, "control characters"),
            ({"add_measure": {"table": "Orders", "name": "X", "expression": " "}}, "'expression' must be"),
            ({"add_measure": {"table": "Orders", "name": "order count", "expression": "1"}},
             "table 'Orders' already has a measure named 'Order Count'"),
            ({"add_measure": {"table": "Orders", "name": "ORDERID", "expression": "1"}},
             "table 'Orders' already has a column named 'OrderId'"),
            ({"rename_column": {"table": "Orders", "from": "Nope", "to": "X"}}, "table 'Orders' has no column 'Nope'"),
            ({"rename_column": {"table": "Orders", "from": "Order Count", "to": "X"}}, "has no column 'Order Count'"),
            ({"rename_column": {"table": "Orders", "from": "OrderId", "to": "order date"}},
             "table 'Orders' already has a column named 'Order Date'"),
            ({"rename_column": {"table": "Orders", "from": "OrderId", "to": 5}}, "'to' must be a non-empty string"),
            ({"rename_column": {"table": "Orders", "from": "OrderId"}}, "needs exactly the fields table, from, to"),
        ]
        for body, needle in bad:
            r = self._edit(mid, body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.json["error"]["code"], "InvalidEdit")
            self.assertIn(needle, r.json["error"]["message"], body)
        r = self.emu.call("POST", "/_emulator/models/%s/edit" % mid, raw=b"{not json",
                          headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400, r)
        r = self._edit("nope", {"add_measure": {"table": "Orders", "name": "X", "expression": "1"}})
        self.assertEqual((r.status, r.json["error"]["code"]), (404, "UnknownModel"))
        self.assertEqual(self._definition(mid), before)
        # a case-only rename is allowed
        r = self._edit(mid, {"rename_column": {"table": "Orders", "from": "OrderId", "to": "ORDERID"}})
        self.assertEqual(r.status, 200, r)

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

    def test_connection_types_of_every_source(self):
        """Each cloud connector pbiport's sources describe (templates/tmdl/sources/) is listed with its
        creation method and credential kinds, takes those and refuses the others as Fabric does;
        Oracle and MySQL are offered only with a gateway."""
        types = {t["type"]: t for t in self.emu.call("GET", "/fabric/v1/connections/supportedConnectionTypes",
                                                    token=self.alice).json["value"]}
        for t in types.values():
            self.assertEqual(sorted(t), ["creationMethods", "supportedConnectionEncryptionTypes",
                                         "supportedCredentialTypes",
                                         "supportedCredentialTypesForUsageInUserControlledCode",
                                         "supportsSkipTestConnection", "type"])
        self.assertEqual(types["PostgreSQL"]["creationMethods"][0]["name"], "PostgreSQL.Database")
        self.assertEqual([p["name"] for p in types["SQL"]["creationMethods"][0]["parameters"]], ["server", "database"])
        self.assertEqual(types["GoogleBigQuery"]["creationMethods"][0]["parameters"], [])
        self.assertNotIn("Oracle", types)
        self.assertNotIn("MySql", types)
        gw = self.emu.call("GET", "/fabric/v1/connections/supportedConnectionTypes?gatewayId=%s" % TENANT,
                           token=self.alice).json["value"]
        self.assertIn("Oracle", [t["type"] for t in gw])

        def details(typ, method, **params):
            return {"type": typ, "creationMethod": method,
                    "parameters": [{"dataType": "Text", "name": k, "value": v} for k, v in params.items()]}
        basic = {"credentials": {"credentialType": "Basic", "username": "u", "password": "p"}}
        sp = {"credentials": {"credentialType": "ServicePrincipal", "tenantId": "t", "servicePrincipalClientId": "c",
                              "servicePrincipalSecret": "s"}}
        made = [
            ("pg", details("PostgreSQL", "PostgreSQL.Database", server="pg.example.com", database="sales"), basic,
             "pg.example.com;sales"),
            ("sql", details("SQL", "SQL", server="contoso.database.windows.net", database="dw"), sp,
             "contoso.database.windows.net;dw"),
            ("rs", details("AmazonRedshift", "AmazonRedshift.Database", server="cl.redshift.amazonaws.com",
                           database="dev"), basic, "cl.redshift.amazonaws.com;dev"),
            ("bq", details("GoogleBigQuery", "GoogleBigQuery.Database"), basic, "GoogleBigQuery"),
        ]
        for name, det, cred, path in made:
            r = self._sf_connection(name, connectionDetails=det, credentialDetails=cred)
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json["connectionDetails"], {"type": det["type"], "path": path})
        # a kind the connector does not take, a method of another type, a gateway-only type
        self.assertFabricError(self._sf_connection("pg-sp", connectionDetails=made[0][1], credentialDetails=sp), 400,
                               "InvalidCredentialDetails")
        self.assertFabricError(self._sf_connection("pg-m", connectionDetails=details(
            "PostgreSQL", "Sql.Database", server="h", database="d"), credentialDetails=basic), 400,
            "InvalidConnectionDetails")
        self.assertFabricError(self._sf_connection("ora", connectionDetails=details(
            "Oracle", "Oracle.Database", server="db:1521/ORCL"), credentialDetails=basic), 400,
            "InvalidConnectionDetails")

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
