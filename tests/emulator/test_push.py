#!/usr/bin/env python3
"""Push datasets: create, tables, rows, the documented limits (scaled with --rate-scale 0.05) and 429s;
executeQueries row counts as Power BI answers them (results/tables/rows, "[n]" keys, BLANK for an empty
table, DatasetExecuteQueriesError with the detail message, one query a call, 120 a minute, the tenant
setting)."""

import copy
import json
import os
import threading

from emutest import FIXTURES, PUSH_APP, PUSH_SECRET, WS_MARKETING, WS_SALES, EmuTestCase, main

G = "/powerbi/v1.0/myorg/groups/%s" % WS_SALES
SCHEMA = {"name": "Telemetry", "defaultMode": "Push", "tables": [{"name": "Events", "columns": [
    {"name": "Id", "dataType": "Int64"}, {"name": "Name", "dataType": "string"}, {"name": "Ok", "dataType": "bool"},
    {"name": "At", "dataType": "DateTime"}, {"name": "Value", "dataType": "double"}]}]}


def rows(n, start=0):
    return {"rows": [{"Id": start + i, "Name": "e%d" % i, "Ok": True, "At": "2025-01-01T00:00:00Z", "Value": 1.5}
                     for i in range(n)]}


class Push(EmuTestCase):
    rate_scale = 0.05  # 120/min -> 6/min, 250k rows -> 12,500, 1M rows/h -> 50,000, FIFO 200k -> 10,000

    def setUp(self):
        super().setUp()
        self.sp = self.emu.sp_token(PUSH_APP, PUSH_SECRET)

    def create(self, policy="None", schema=None):
        r = self.emu.call("POST", G + "/datasets?defaultRetentionPolicy=" + policy, token=self.sp,
                          body=schema or SCHEMA)
        self.assertEqual(r.status, 201, r)
        return r.json

    def post(self, ds, body, table="Events"):
        return self.emu.call("POST", G + "/datasets/%s/tables/%s/rows" % (ds, table), token=self.sp, body=body)

    def test_create_and_schema_rules(self):
        j = self.create("basicFIFO")
        self.assertEqual(j["name"], "Telemetry")
        self.assertEqual(j["defaultRetentionPolicy"], "basicFIFO")
        self.assertIn("id", j)
        ds = self.emu.call("GET", G + "/datasets/" + j["id"], token=self.sp).json
        self.assertTrue(ds["addRowsAPIEnabled"])
        self.assertFalse(ds["isRefreshable"])
        tables = self.emu.call("GET", G + "/datasets/%s/tables" % j["id"], token=self.sp).json["value"]
        self.assertEqual([t["name"] for t in tables], ["Events"])
        self.assertEqual(tables[0]["columns"][2]["dataType"], "Boolean")
        bad = {"name": "x", "defaultMode": "Push", "tables": [{"name": "T", "columns": [
            {"name": "a", "dataType": "Money"}]}]}
        self.assertPbiError(self.emu.call("POST", G + "/datasets", token=self.sp, body=bad), 400, "InvalidRequest")
        wide = {"name": "x", "defaultMode": "Push", "tables": [{"name": "T", "columns": [
            {"name": "c%d" % i, "dataType": "string"} for i in range(76)]}]}
        self.assertPbiError(self.emu.call("POST", G + "/datasets", token=self.sp, body=wide), 400, "InvalidRequest")
        viewer = "/powerbi/v1.0/myorg/groups/%s/datasets" % WS_MARKETING
        self.assertPbiError(self.emu.call("POST", viewer, token=self.sp, body=SCHEMA), 403,
                            "PowerBINotAuthorizedException")
        # PUT table changes the schema, keeps rows
        r = self.emu.call("PUT", G + "/datasets/%s/tables/Events" % j["id"], token=self.sp,
                          body={"name": "Events", "columns": [{"name": "Id", "dataType": "Int64"},
                                                              {"name": "Extra", "dataType": "String"}]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual([c["name"] for c in r.json["columns"]], ["Id", "Extra"])

    def test_rows_and_per_minute_limit(self):
        ds = self.create()["id"]
        for i in range(6):
            r = self.post(ds, rows(10, i * 10))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"")
        r = self.post(ds, rows(1))
        self.assertEqual(r.status, 429)
        self.assertGreater(int(r.header("Retry-After")), 0)
        self.assertIn("Retry in", r.json["message"])
        self.emu.control("POST", "advance", {"seconds": 61})
        self.assertEqual(self.post(ds, rows(1)).status, 200)
        st = self.emu.state("models,log")
        m = next(x for x in st["models"] if x["id"] == ds)
        self.assertEqual(m["push"]["tables"]["events"]["rows"], 61)
        times = [e["time"] for e in st["requests"] if e["method"] == "POST" and e["path"].endswith("/rows")]
        self.assertEqual(len(times), 8)
        self.assertEqual(times, sorted(times))
        self.assertEqual(self.emu.call("DELETE", G + "/datasets/%s/tables/Events/rows" % ds, token=self.sp).status,
                         200)
        m = next(x for x in self.emu.state("models")["models"] if x["id"] == ds)
        self.assertEqual(m["push"]["tables"]["events"]["rows"], 0)

    def test_row_validation(self):
        ds = self.create()["id"]
        self.assertPbiError(self.post(ds, rows(10001)), 400, "InvalidRequest")
        self.assertPbiError(self.post(ds, {"rows": [{"Nope": 1}]}), 400, "InvalidRequest")
        self.assertPbiError(self.post(ds, {"rows": [{"Id": "seven"}]}), 400, "InvalidRequest")
        self.assertPbiError(self.post(ds, {"rows": [{"Name": "x" * 4001}]}), 400, "InvalidRequest")
        self.assertPbiError(self.post(ds, {"rows": [{"Id": 1}]}, table="Missing"), 404, "ItemNotFound")
        self.assertEqual(self.post(ds, {"rows": [{"id": 1, "name": None}]}).status, 200)  # names ignore case
        refresh = self.emu.call("POST", G + "/datasets/%s/refreshes" % ds, token=self.sp, body={})
        self.assertPbiError(refresh, 400, "InvalidRequest")

    def test_big_table_drops_to_per_hour(self):
        ds = self.create()["id"]
        self.assertEqual(self.post(ds, rows(10000)).status, 200)
        self.assertEqual(self.post(ds, rows(2500)).status, 200)  # table now holds 12,500 rows (scaled 250k)
        for _ in range(4):
            self.assertEqual(self.post(ds, rows(1)).status, 200)
        self.emu.control("POST", "advance", {"seconds": 61})  # the per-minute window is clear again...
        r = self.post(ds, rows(1))
        self.assertEqual(r.status, 429)  # ...but 6 requests/hour (scaled 120) are used up
        self.assertGreater(int(r.header("Retry-After")), 60)
        self.emu.control("POST", "advance", {"seconds": 3600})
        self.assertPbiError(self.post(ds, rows(1)), 403, "TokenExpired")  # the clock moved past the token too
        self.sp = self.emu.sp_token(PUSH_APP, PUSH_SECRET)
        self.assertEqual(self.post(ds, rows(1)).status, 200)

    def test_rows_per_hour_and_fifo(self):
        ds = self.create("basicFIFO")["id"]
        for _ in range(5):
            self.assertEqual(self.post(ds, rows(10000)).status, 200)
        m = next(x for x in self.emu.state("models")["models"] if x["id"] == ds)
        self.assertEqual(m["push"]["tables"]["events"]["rows"], 10000)  # FIFO keeps the newest 10,000 (scaled)
        r = self.post(ds, rows(1))  # 50,001 rows in the hour (scaled 1M)
        self.assertEqual(r.status, 429)

    def test_pending_requests(self):
        ds = self.create()["id"]
        self.emu.control("POST", "faults", {"latency_ms": 1500, "path_prefix": "/powerbi" + G[len("/powerbi"):]
                                            + "/datasets/%s/tables" % ds})
        results = []

        def go():
            results.append(self.post(ds, rows(1)).status)
        first = threading.Thread(target=go)
        first.start()
        # start the second call once the first is counted as pending (no timing guess)
        while not self.emu.state("counters")["pending_rows_requests"].get(ds):
            pass
        go()
        first.join()
        self.assertEqual(sorted(results), [200, 429])  # scaled pending limit is 1

    def query(self, ds, *queries, include_nulls=None):
        body = {"queries": [{"query": q} for q in queries]}
        if include_nulls is not None:
            body["serializerSettings"] = {"includeNulls": include_nulls}
        return self.emu.call("POST", G + "/datasets/%s/executeQueries" % ds, token=self.sp, body=body)

    def assertDaxError(self, r, detail):
        self.assertPbiError(r, 400, "DatasetExecuteQueriesError")
        details = {d["code"]: d["detail"]["value"] for d in r.json["error"]["pbi.error"]["details"]}
        self.assertIn(detail, details["DetailsMessage"])
        self.assertIn("AnalysisServicesErrorCode", details)

    def test_execute_queries_counts_rows(self):
        schema = copy.deepcopy(SCHEMA)
        schema["tables"].append({"name": "Bob's", "columns": [{"name": "Id", "dataType": "Int64"}]})
        ds = self.create(schema=schema)["id"]
        self.assertEqual(self.post(ds, rows(3)).status, 200)
        r = self.query(ds, 'EVALUATE ROW("n", COUNTROWS(\'Events\'))', include_nulls=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"results": [{"tables": [{"rows": [{"[n]": 3}]}]}]})
        # an unquoted name, several columns; an empty table counts BLANK: null, or no key at all
        r = self.query(ds, 'evaluate row("a", countrows(Events), "b", COUNTROWS(\'Bob\'\'s\'))', include_nulls=True)
        self.assertEqual(r.json["results"][0]["tables"][0]["rows"], [{"[a]": 3, "[b]": None}])
        r = self.query(ds, 'EVALUATE ROW("b", COUNTROWS(\'Bob\'\'s\'))')
        self.assertEqual(r.json["results"][0]["tables"][0]["rows"], [{}])
        self.assertDaxError(self.query(ds, 'EVALUATE ROW("n", COUNTROWS(\'Nope\'))'), "Cannot find table")
        self.assertDaxError(self.query(ds, 'EVALUATE ROW("n", COUNTROWS(\'Events\'))', "EVALUATE ROW(\"m\", 1)"),
                            "one query")
        self.assertDaxError(self.query(ds, "EVALUATE Events"), "EVALUATE ROW")
        self.emu.control("POST", "advance", {"seconds": 61})   # 6 queries were the minute's (scaled) share
        self.assertPbiError(self.emu.call("POST", G + "/datasets/%s/executeQueries" % ds, token=self.sp,
                                          body={"query": "x"}), 400, "InvalidRequest")
        # not a push dataset: the emulator keeps no rows of imported models
        model = next(m for m in self.emu.state("models")["models"] if m["workspaceId"] == WS_SALES and not m.get("push"))
        self.assertDaxError(self.query(model["id"], 'EVALUATE ROW("n", COUNTROWS(\'Events\'))'), "push datasets only")
        # 120 a minute per caller (6 at rate scale 0.05): 2 calls since the advance, 4 more fit
        for _ in range(4):
            self.assertEqual(self.query(ds, 'EVALUATE ROW("n", COUNTROWS(\'Events\'))').status, 200)
        r = self.query(ds, 'EVALUATE ROW("n", COUNTROWS(\'Events\'))')
        self.assertEqual(r.status, 429, r)
        self.assertGreater(int(r.header("Retry-After")), 0)
        self.emu.control("POST", "advance", {"seconds": 61})
        self.assertEqual(self.query(ds, 'EVALUATE ROW("n", COUNTROWS(\'Events\'))').status, 200)

    def test_execute_queries_needs_the_tenant_setting(self):
        with open(os.path.join(FIXTURES, "test.json"), encoding="utf-8") as f:
            fx = json.load(f)
        fx["tenants"][0].setdefault("settings", {})["dataset_execute_queries"] = False
        self.emu.control("POST", "load", fx)
        self.sp = self.emu.sp_token(PUSH_APP, PUSH_SECRET)
        ds = self.create()["id"]
        r = self.query(ds, 'EVALUATE ROW("n", COUNTROWS(\'Events\'))')
        self.assertPbiError(r, 401, "PowerBINotAuthorizedException")
        self.assertIn("Dataset Execute Queries REST API", r.json["error"]["message"])


if __name__ == "__main__":
    main()
