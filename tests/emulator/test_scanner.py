#!/usr/bin/env python3
"""Admin scanner APIs: modified, getInfo, scanStatus, scanResult; flags, tenant settings, limits, refusals."""

import time
import urllib.parse

from common import iso
from emutest import (CONSENTED_APP, CONSENTED_SECRET, MODEL_LAKE, MODEL_SALES, MODEL_UNREFRESHED, PBI, PUSH_APP,
                     PUSH_SECRET, WS_MARKETING, WS_PERSONAL, WS_SALES, EmuTestCase, main)

A = "/powerbi/v1.0/myorg/admin/workspaces"
ALL_FLAGS = "lineage=True&datasourceDetails=True&datasetSchema=True&datasetExpressions=True&getArtifactUsers=True"


class Scanner(EmuTestCase):
    def setUp(self):
        super().setUp()
        self.sp = self.emu.sp_token()

    def scan(self, ids, flags=ALL_FLAGS, token=None):
        r = self.emu.call("POST", A + "/getInfo?" + flags, token=token or self.sp, body={"workspaces": ids})
        self.assertEqual(r.status, 202, r)
        return r

    def finish(self, r):
        loc = r.header("Location")
        statuses = []
        for _ in range(5):
            s = self.emu.call("GET", loc, token=self.sp)
            self.assertEqual(s.status, 200)
            statuses.append(s.json["status"])
            if s.json["status"] == "Succeeded":
                break
        return statuses, s

    def test_modified(self):
        r = self.emu.call("GET", A + "/modified?excludePersonalWorkspaces=True", token=self.sp)
        self.assertEqual(r.status, 200)
        ids = [x["id"] for x in r.json]
        self.assertIn(WS_SALES, ids)
        self.assertNotIn(WS_PERSONAL, ids)
        since = iso(time.time() - 2 * 3600)
        r = self.emu.call("GET", A + "/modified?modifiedSince=" + urllib.parse.quote(since), token=self.sp)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, [{"id": i} for i in sorted(r.json and [x["id"] for x in r.json])])
        for bad in (iso(time.time() - 60), iso(time.time() - 31 * 86400), "yesterday"):
            r = self.emu.call("GET", A + "/modified?modifiedSince=" + urllib.parse.quote(bad), token=self.sp)
            self.assertPbiError(r, 400, "InvalidRequest")

    def test_modified_limit_30_per_hour(self):
        for _ in range(30):
            self.assertEqual(self.emu.call("GET", A + "/modified", token=self.sp).status, 200)
        r = self.emu.call("GET", A + "/modified", token=self.sp)
        self.assertEqual(r.status, 429)
        self.assertGreater(int(r.header("Retry-After")), 3000)

    def test_scan_flow_and_result_shape(self):
        r = self.scan([WS_SALES, WS_MARKETING])
        j = r.json
        self.assertEqual(j["status"], "NotStarted")
        self.assertEqual(set(j), {"id", "createdDateTime", "status"})
        self.assertTrue(r.header("Location").endswith(A + "/scanStatus/" + j["id"]))
        statuses, s = self.finish(r)
        self.assertEqual(statuses, ["NotStarted", "Running", "Succeeded"])
        res = self.emu.call("GET", s.header("Location"), token=self.sp)
        self.assertEqual(res.status, 200)
        out = res.json
        sales = next(w for w in out["workspaces"] if w["id"] == WS_SALES)
        self.assertEqual(sales["type"], "Workspace")
        self.assertEqual(sorted(r["name"] for r in sales["reports"]), ["Invoice", "Sales Report"])
        self.assertEqual(sales["dashboards"][0]["tiles"][0]["datasetId"], MODEL_SALES)
        self.assertTrue(any(u["principalType"] == "App" for u in sales["users"]))
        model = next(d for d in sales["datasets"] if d["id"] == MODEL_SALES)
        orders = model["tables"][0]
        self.assertEqual(orders["name"], "Orders")
        self.assertEqual([c["name"] for c in orders["columns"]], ["OrderId", "Amount", "Order Date"])
        self.assertEqual(orders["measures"][0]["expression"], "SUM(Orders[Amount])")
        self.assertIn("Snowflake.Databases", orders["source"][0]["expression"])
        lake = next(d for d in sales["datasets"] if d["id"] == MODEL_LAKE)
        self.assertEqual([e["name"] for e in lake["expressions"]], ["Host", "HttpPath"])
        never = next(d for d in sales["datasets"] if d["id"] == MODEL_UNREFRESHED)
        self.assertNotIn("tables", never)  # never refreshed: no schema
        usage = model["datasourceUsages"][0]["datasourceInstanceId"]
        inst = {i["datasourceId"]: i for i in out["datasourceInstances"]}
        self.assertEqual(inst[usage]["connectionDetails"], {
            "extensionDataSourceKind": "Snowflake", "extensionDataSourcePath": "acme.snowflakecomputing.com;WH"})
        # results stay for 24 h only
        self.emu.control("POST", "advance", {"seconds": 86401})
        sp = self.emu.sp_token()
        self.assertPbiError(self.emu.call("GET", s.header("Location"), token=sp), 404, "PowerBIEntityNotFound")

    def test_flags_and_tenant_settings(self):
        r = self.scan([WS_SALES], flags="lineage=false")
        self.emu.control("POST", "advance")
        out = self.emu.call("GET", A + "/scanResult/" + r.json["id"], token=self.sp).json
        ds = out["workspaces"][0]["datasets"][0]
        self.assertNotIn("tables", ds)
        self.assertNotIn("datasourceUsages", ds)
        self.assertNotIn("datasourceInstances", out)
        # tenant settings off: schema and expressions silently absent
        import json
        import os
        with open(os.path.join(os.path.dirname(__file__), "..", "fixtures", "tenants", "test.json")) as f:
            fixture = json.load(f)
        fixture["tenants"][0]["settings"]["detailed_metadata"] = False
        self.emu.control("POST", "load", fixture)
        sp = self.emu.sp_token()
        r = self.scan([WS_SALES], token=sp)
        self.emu.control("POST", "advance")
        out = self.emu.call("GET", A + "/scanResult/" + r.json["id"], token=sp).json
        for d in out["workspaces"][0]["datasets"]:
            self.assertNotIn("tables", d)
            self.assertNotIn("expressions", d)
        self.assertIn("datasourceUsages", out["workspaces"][0]["datasets"][0])

    def test_form_body_and_bad_requests(self):
        r = self.emu.call("POST", A + "/getInfo", token=self.sp, form={"workspaces": WS_SALES})
        self.assertEqual(r.status, 202, r)
        ids = ["00000000-0000-0000-0000-%012d" % i for i in range(101)]
        self.assertPbiError(self.emu.call("POST", A + "/getInfo", token=self.sp, body={"workspaces": ids}), 400,
                            "InvalidRequest")
        self.assertPbiError(self.emu.call("POST", A + "/getInfo", token=self.sp, body={"workspaces": []}), 400,
                            "InvalidRequest")
        self.assertPbiError(self.emu.call("GET", A + "/scanResult/" + r.json["id"], token=self.sp), 400,
                            "InvalidRequest")

    def test_concurrent_scan_limit(self):
        for _ in range(16):
            self.scan([WS_SALES])
        r = self.emu.call("POST", A + "/getInfo", token=self.sp, body={"workspaces": [WS_SALES]})
        self.assertEqual(r.status, 429)
        self.assertTrue(r.header("Retry-After"))
        self.emu.control("POST", "advance")
        self.scan([WS_SALES])
        st = self.emu.state("scans")
        self.assertEqual(len(st["scans"]), 17)

    def test_admin_groups(self):
        self.assertPbiError(self.emu.call("GET", "/powerbi/v1.0/myorg/admin/groups", token=self.sp), 400,
                            "InvalidRequest")
        j = self.emu.call("GET", "/powerbi/v1.0/myorg/admin/groups?$top=2&$skip=1", token=self.sp).json
        self.assertEqual(j["@odata.count"], 6)
        self.assertEqual([g["name"] for g in j["value"]], ["Finance", "Marketing"])
        q = urllib.parse.quote("id eq '%s' or type eq 'PersonalGroup'" % WS_SALES)
        j = self.emu.call("GET", "/powerbi/v1.0/myorg/admin/groups?$top=10&$filter=" + q, token=self.sp).json
        self.assertEqual(sorted(g["name"] for g in j["value"]), ["My workspace", "Sales"])

    def test_refusals(self):
        sp = self.emu.sp_token(CONSENTED_APP, CONSENTED_SECRET)
        r = self.emu.call("GET", A + "/modified", token=sp)
        self.assertPbiError(r, 401, "PowerBINotAuthorizedException")
        self.assertIn("admin-consented", r.json["error"]["message"])
        sp = self.emu.sp_token(PUSH_APP, PUSH_SECRET)
        self.assertPbiError(self.emu.call("GET", A + "/modified", token=sp), 401, "PowerBINotAuthorizedException")
        alice = self.emu.user_tokens()["access_token"]
        self.assertPbiError(self.emu.call("GET", A + "/modified", token=alice), 401, "PowerBINotAuthorizedException")
        admin = self.emu.user_tokens("admin@contoso.test", scopes=["offline_access", PBI + "Tenant.Read.All"])
        self.assertEqual(self.emu.call("GET", A + "/modified", token=admin["access_token"]).status, 200)


class ScannerScaled(EmuTestCase):
    rate_scale = 0.01  # 500 getInfo/hour -> 5, 16 concurrent -> 1

    def test_scaled_limits(self):
        sp = self.emu.sp_token()
        self.emu.control("POST", "config", {"scan_polls": 0})
        for _ in range(5):
            r = self.emu.call("POST", A + "/getInfo", token=sp, body={"workspaces": [WS_SALES]})
            self.assertEqual(r.status, 202, r)
            self.assertEqual(self.emu.call("GET", r.header("Location"), token=sp).json["status"], "Succeeded")
        r = self.emu.call("POST", A + "/getInfo", token=sp, body={"workspaces": [WS_SALES]})
        self.assertEqual(r.status, 429)
        self.assertEqual(set(r.json), {"message"})


if __name__ == "__main__":
    main()
