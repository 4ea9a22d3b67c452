#!/usr/bin/env python3
"""Power BI REST: groups ($filter/$top/$skip), datasets, reports, dashboards, tiles, datasources, refreshes."""

import json
import urllib.parse

from emutest import (MODEL_LAKE, MODEL_SALES, PBI, PUSH_APP, PUSH_SECRET, WS_FINANCE, WS_MARKETING, WS_SALES,
                     EmuTestCase, main)

G = "/powerbi/v1.0/myorg/groups"


class Groups(EmuTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.emu.user_tokens()["access_token"]

    def get(self, path, token=None):
        return self.emu.call("GET", path, token=token or self.alice)

    def test_list_filter_top_skip(self):
        j = self.get(G).json
        self.assertTrue(j["@odata.context"].endswith("/v1.0/myorg/$metadata#groups"))
        self.assertEqual(j["@odata.count"], 4)  # My workspace is not a group
        self.assertEqual([g["name"] for g in j["value"]], ["Contoso Marketing EU", "Finance", "Marketing", "Sales"])
        sales = next(g for g in j["value"] if g["name"] == "Sales")
        self.assertEqual(sales, {"id": WS_SALES, "isReadOnly": False, "isOnDedicatedCapacity": True,
                                 "type": "Workspace", "name": "Sales", "defaultDatasetStorageFormat": "Small",
                                 "capacityId": "dddddddd-0000-0000-0000-000000000001"})
        self.assertTrue(next(g for g in j["value"] if g["name"] == "Marketing")["isReadOnly"])
        q = urllib.parse.quote("contains(name,'marketing') or name eq 'Sales'")
        self.assertEqual([g["name"] for g in self.get(G + "?$filter=" + q).json["value"]],
                         ["Contoso Marketing EU", "Marketing", "Sales"])
        j = self.get(G + "?$top=2&$skip=1").json
        self.assertEqual([g["name"] for g in j["value"]], ["Finance", "Marketing"])
        self.assertEqual(j["@odata.count"], 4)
        self.assertPbiError(self.get(G + "?$filter=" + urllib.parse.quote("bogus(name)")), 400, "InvalidRequest")
        self.assertPbiError(self.get(G + "?$top=-1"), 400, "InvalidRequest")

    def test_datasets_reports_dashboards_tiles_datasources(self):
        ds = self.get(G + "/%s/datasets" % WS_SALES).json["value"]
        self.assertEqual([d["name"] for d in ds], ["Lake Model", "Never Refreshed", "Sales Model"])
        d = next(x for x in ds if x["id"] == MODEL_SALES)
        for k in ("webUrl", "addRowsAPIEnabled", "configuredBy", "isRefreshable", "isEffectiveIdentityRequired",
                  "isOnPremGatewayRequired", "targetStorageMode", "createdDate"):
            self.assertIn(k, d)
        self.assertTrue(d["isRefreshable"])
        self.assertEqual(self.get(G + "/%s/datasets/%s" % (WS_SALES, MODEL_SALES)).json["name"], "Sales Model")
        self.assertPbiError(self.get(G + "/%s/datasets/nope" % WS_SALES), 404, "PowerBIEntityNotFound")
        reports = self.get(G + "/%s/reports" % WS_SALES).json["value"]
        self.assertEqual([(r["name"], r["reportType"], r.get("datasetId")) for r in reports],
                         [("Invoice", "PaginatedReport", None), ("Sales Report", "PowerBIReport", MODEL_SALES)])
        dash = self.get(G + "/%s/dashboards" % WS_SALES).json["value"]
        self.assertEqual(dash[0]["displayName"], "Sales Dashboard")
        tiles = self.get(G + "/%s/dashboards/%s/tiles" % (WS_SALES, dash[0]["id"])).json["value"]
        self.assertEqual([(t["title"], t.get("reportId") is not None) for t in tiles],
                         [("Revenue", True), ("Note", False)])
        src = self.get(G + "/%s/datasets/%s/datasources" % (WS_SALES, MODEL_LAKE)).json["value"]
        self.assertEqual(src[0]["datasourceType"], "Extension")
        self.assertEqual(src[0]["connectionDetails"]["path"], "adb-123.4.azuredatabricks.net;/sql/1.0/warehouses/abc")
        self.assertEqual(src[0]["connectionDetails"]["kind"], "Databricks")
        self.assertNotIn("gatewayId", src[0])
        bound = self.get(G + "/%s/datasets/%s/datasources" % (WS_SALES, MODEL_SALES)).json["value"]
        self.assertIn("gatewayId", bound[0])

    def test_access_rules(self):
        self.assertPbiError(self.get(G + "/22222222-0000-0000-0000-000000000005/datasets"), 403,
                            "PowerBINotAuthorizedException")
        self.assertPbiError(self.get(G + "/00000000-0000-0000-0000-000000000000/datasets"), 404,
                            "PowerBIEntityNotFound")
        narrow = self.emu.user_tokens(scopes=["offline_access", PBI + "Report.Read.All"])["access_token"]
        r = self.get(G, token=narrow)
        self.assertPbiError(r, 401, "PowerBINotAuthorizedException")
        self.assertIn("scope", r.json["error"]["message"])
        self.assertIn("RequestId", r.headers)

    def test_bind_to_gateway(self):
        from test_fabric import definition
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        mid = self.emu.call("POST", "/fabric/v1/workspaces/%s/semanticModels" % WS_SALES, token=self.alice,
                            body={"displayName": "GW", "definition": definition()}).json["id"]
        conn = self.emu.call("GET", "/fabric/v1/connections/cccccccc-0000-0000-0000-000000000001",
                             token=self.alice).json
        url = G + "/%s/datasets/%s/Default.BindToGateway" % (WS_SALES, mid)
        r = self.emu.call("POST", url, token=self.alice, body={"gatewayObjectId": "nope",
                                                               "datasourceObjectIds": [conn["id"]]})
        self.assertPbiError(r, 400, "DMTS_CanNotFindMatchingDatasourceInGatewayError")
        r = self.emu.call("POST", url, token=self.alice, body={"gatewayObjectId": conn["gatewayId"],
                                                               "datasourceObjectIds": [conn["id"]]})
        self.assertEqual(r.status, 200, r)
        src = self.get(G + "/%s/datasets/%s/datasources" % (WS_SALES, mid)).json["value"]
        self.assertEqual(src[0]["gatewayId"], conn["gatewayId"])

    def test_my_workspace(self):
        body = {"name": "Mine", "defaultMode": "Push", "tables": [{"name": "T", "columns": [
            {"name": "a", "dataType": "string"}]}]}
        r = self.emu.call("POST", "/powerbi/v1.0/myorg/datasets", token=self.alice, body=body)
        self.assertEqual(r.status, 201, r)
        names = [d["name"] for d in self.get("/powerbi/v1.0/myorg/datasets").json["value"]]
        self.assertEqual(names, ["Mine"])
        sp = self.emu.sp_token(PUSH_APP, PUSH_SECRET)
        self.assertEqual(self.get("/powerbi/v1.0/myorg/datasets", token=sp).json["value"], [])


class Refresh(EmuTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.emu.user_tokens()["access_token"]
        self.url = G + "/%s/datasets/%s/refreshes" % (WS_SALES, MODEL_SALES)

    def history(self, url=None):
        r = self.emu.call("GET", (url or self.url) + "?$top=10", token=self.alice)
        self.assertEqual(r.status, 200)
        return r.json["value"]

    def test_standard_refresh_lifecycle(self):
        r = self.emu.call("POST", self.url, token=self.alice, body={"notifyOption": "NoNotification"})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.body, b"")
        self.assertIsNone(r.header("Location"))  # only enhanced refreshes get one
        self.assertIsNone(r.header("x-ms-request-id"))
        self.assertTrue(r.header("RequestId"))
        h = self.history()
        self.assertEqual(h[0]["status"], "Unknown")
        self.assertEqual(h[0]["refreshType"], "ViaApi")
        self.assertNotIn("endTime", h[0])
        self.assertIn(h[0]["extendedStatus"], ("NotStarted", "InProgress"))
        # one at a time
        r = self.emu.call("POST", self.url, token=self.alice, body={"notifyOption": "NoNotification"})
        self.assertPbiError(r, 400, "InvalidRequest")
        self.emu.control("POST", "config", {"concurrent_refresh_status": 409})
        self.assertEqual(self.emu.call("POST", self.url, token=self.alice, body={}).status, 409)
        self.emu.control("POST", "advance")
        h = self.history()
        self.assertEqual(len(h), 1)
        self.assertEqual(h[0]["status"], "Completed")
        self.assertIn("endTime", h[0])
        # finished by time too
        self.emu.call("POST", self.url, token=self.alice, body={"notifyOption": "NoNotification"})
        self.emu.control("POST", "advance", {"seconds": 61})
        h = self.history()
        self.assertEqual([x["status"] for x in h], ["Completed", "Completed"])

    def test_failed_outcome_from_control_api(self):
        self.emu.control("POST", "refresh-plan", {"dataset_id": MODEL_SALES, "outcome": "Failed",
                                                  "error_code": "ModelRefreshFailed_CredentialsNotSpecified"})
        self.emu.call("POST", self.url, token=self.alice, body={"notifyOption": "NoNotification"})
        self.emu.control("POST", "advance")
        h = self.history()[0]
        self.assertEqual(h["status"], "Failed")
        self.assertEqual(json.loads(h["serviceExceptionJson"])["errorCode"],
                         "ModelRefreshFailed_CredentialsNotSpecified")

    def test_enhanced_refresh_detail_and_cancel(self):
        r = self.emu.call("POST", self.url, token=self.alice, body={"type": "Full", "commitMode": "transactional",
                                                                     "maxParallelism": 2, "timeout": "02:00:00"})
        self.assertEqual(r.status, 202, r)
        rid = r.header("x-ms-request-id")
        self.assertTrue(r.header("Location").endswith("/datasets/%s/refreshes/%s" % (MODEL_SALES, rid)))
        d = self.emu.call("GET", r.header("Location"), token=self.alice)
        self.assertEqual(d.status, 202)
        self.assertEqual(d.json["status"], "Unknown")
        self.assertEqual(self.emu.call("DELETE", r.header("Location"), token=self.alice).status, 200)
        d = self.emu.call("GET", r.header("Location"), token=self.alice)
        self.assertEqual(d.status, 200)
        self.assertEqual(d.json["status"], "Cancelled")
        self.assertEqual(self.history()[0]["refreshType"], "ViaEnhancedApi")

    def test_refresh_request_rules(self):
        shared = G + "/%s/datasets/%s/refreshes" % (WS_FINANCE, MODEL_SALES)
        self.assertPbiError(self.emu.call("POST", shared, token=self.alice, body={}), 404, "PowerBIEntityNotFound")
        # enhanced refresh needs a capacity: Finance is on shared capacity
        from test_fabric import definition
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        fin = self.emu.call("POST", "/fabric/v1/workspaces/%s/semanticModels" % WS_FINANCE, token=self.alice,
                            body={"displayName": "Fin", "definition": definition()}).json["id"]
        r = self.emu.call("POST", G + "/%s/datasets/%s/refreshes" % (WS_FINANCE, fin), token=self.alice,
                          body={"type": "Full"})
        self.assertPbiError(r, 400, "InvalidRequest")
        self.assertIn("capacity", r.json["error"]["message"])
        bad = self.emu.call("POST", self.url, token=self.alice, body={"type": "Full", "notifyOption": "MailOnFailure"})
        self.assertPbiError(bad, 400, "InvalidRequest")
        self.assertPbiError(self.emu.call("POST", self.url, token=self.alice, body={"timeout": "25:00:00"}), 400,
                            "InvalidRequest")
        sp = self.emu.sp_token(PUSH_APP, PUSH_SECRET)
        r = self.emu.call("POST", self.url, token=sp, body={"notifyOption": "MailOnFailure"})
        self.assertPbiError(r, 400, "InvalidRequest")
        viewer = G + "/%s/datasets/x/refreshes" % WS_MARKETING
        self.assertPbiError(self.emu.call("POST", viewer, token=sp, body={}), 403, "PowerBINotAuthorizedException")

    def test_published_model_needs_binding_to_refresh(self):
        from test_fabric import definition
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        r = self.emu.call("POST", "/fabric/v1/workspaces/%s/semanticModels" % WS_SALES, token=self.alice,
                          body={"displayName": "Fresh", "definition": definition()})
        mid = r.json["id"]
        url = G + "/%s/datasets/%s/refreshes" % (WS_SALES, mid)
        self.emu.call("POST", url, token=self.alice, body={"notifyOption": "NoNotification"})
        self.emu.control("POST", "advance")
        h = self.history(url)[0]
        self.assertEqual(h["status"], "Failed")
        self.assertIn("CredentialsNotSpecified", h["serviceExceptionJson"])
        self.emu.call("POST", "/fabric/v1/workspaces/%s/semanticModels/%s/bindConnection" % (WS_SALES, mid),
                      token=self.alice, body={"connectionBinding": {
                          "id": "cccccccc-0000-0000-0000-000000000001", "connectivityType": "ShareableCloud",
                          "connectionDetails": {"type": "Snowflake", "path": "acme.snowflakecomputing.com;WH"}}})
        self.emu.call("POST", url, token=self.alice, body={"notifyOption": "NoNotification"})
        self.emu.control("POST", "advance")
        self.assertEqual(self.history(url)[0]["status"], "Completed")


if __name__ == "__main__":
    main()
