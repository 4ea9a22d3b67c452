"""Import from Power BI through nginx + pbiport worker + the emulator: integrations (owner only,
unique names, sealed secret, filter and schedule validation), manual and scheduled runs, the
last-10 history with flat counts, include/exclude/wildcard filters (exclude wins), a custom Lua
rule, the admin-APIs-off fallback with its warning, a 429 storm, a worker killed mid-run (previous
assets intact, scan ids resumed from SQLite), incremental runs that scan only modified workspaces,
assets removed (not deleted), the permission doctor, and data products from assets."""
import copy
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import harness

DEMO = harness.tenants_fixture()
TENANT = DEMO["tenants"][0]["id"]
SP_ID, SP_SECRET = harness.app_credentials(DEMO["tenants"][0], 1)
# a second service principal on the same tenant (the demo's push app)
OTHER_ID, OTHER_SECRET = harness.app_credentials(DEMO["tenants"][0], 2)
ALICE = "alice@contoso.example"
KEY = "44" * 32
RUN_WAIT_S = 120


def tenant_fixture():
    """demo.json plus workspaces whose names exercise the filters."""
    fx = copy.deepcopy(DEMO)
    fx["emulator"]["scan_duration_s"] = 1
    t = fx["tenants"][0]
    extra = [("Sales EU", ["EU Orders"], ["EU Revenue", "Draft EU"]),
             ("Sales test", ["Test Model"], ["Test Report"]),
             ("HR", ["People"], ["Headcount"])]
    for i, (name, models, reports) in enumerate(extra):
        ws = {"id": "22222222-0000-4000-8000-%012d" % i, "name": name,
              "roles": [{"principal": ALICE, "role": "Admin"}, {"principal": SP_ID, "role": "Viewer"}],
              "semantic_models": [], "reports": [], "dashboards": []}
        for j, m in enumerate(models):
            mid = "33333333-%04d-4000-8000-%012d" % (i, j)
            ws["semantic_models"].append({
                "id": mid, "name": m, "owner": ALICE, "refreshed": True,
                "tables": [{"name": "Facts", "columns": [
                    {"name": "Id", "dataType": "Int64"}, {"name": "Amount", "dataType": "Double"},
                    {"name": "When", "dataType": "DateTime"}, {"name": "Label", "dataType": "String"}],
                    "partitions": [{"name": "Facts", "mode": "import", "source":
                                    'let S = Snowflake.Databases("acme.snowflakecomputing.com", "WH"),\n'
                                    ' D = S{[Name="SALES",Kind="Database"]}[Data],\n'
                                    ' Sc = D{[Name="PUBLIC",Kind="Schema"]}[Data],\n'
                                    ' T = Sc{[Name="FACTS",Kind="Table"]}[Data]\nin T'}]}]})
            for k, r in enumerate(reports):
                ws["reports"].append({"id": "44444444-%04d-4000-8000-%012d" % (i, k), "name": r,
                                      "dataset_id": mid})
        t["workspaces"].append(ws)
    return fx


# One model per source M lineage recognises beside Snowflake and Databricks: (model, the
# partition's M, the upstream table expected as (type, host, database, schema, table)).
WAREHOUSE_MODELS = [
    ("PG Orders", 'let Source = PostgreSQL.Database("pg.example.com", "shop"),\n'
                  ' T = Source{[Schema="public",Item="orders"]}[Data]\nin T',
     ("postgresql", "pg.example.com", "shop", "public", "orders")),
    ("Synapse Sales", 'let Source = Sql.Database("contoso.sql.azuresynapse.net", "dw"),\n'
                      ' T = Source{[Schema="dbo",Item="FactSales"]}[Data]\nin T',
     ("sql", "contoso.sql.azuresynapse.net", "dw", "dbo", "FactSales")),
    ("BQ Costs", 'let Source = GoogleBigQuery.Database([BillingProject="acme-billing"]),\n'
                 ' P = Source{[Name="acme-dwh"]}[Data],\n'
                 ' D = P{[Name="finance",Kind="Schema"]}[Data],\n'
                 ' T = D{[Name="costs",Kind="Table"]}[Data]\nin T',
     ("bigquery", None, "acme-dwh", "finance", "costs")),
    ("Redshift Events", 'let Source = AmazonRedshift.Database("rs.example.com:5439", "dev"),\n'
                        ' T = Source{[Name="public"]}[Data]{[Name="event"]}[Data]\nin T',
     ("redshift", "rs.example.com:5439", "dev", "public", "event")),
    ("MySQL Shop", 'let Source = MySQL.Database("mysql.example.com", "shop", [ReturnSingleDatabase=true]),\n'
                   ' T = Source{[Schema="shop",Item="carts"]}[Data]\nin T',
     ("mysql", "mysql.example.com", "shop", None, "carts")),
    ("Oracle HR", 'let Source = Oracle.Database("ora.example.com:1521/HRPDB", [HierarchicalNavigation=true]),\n'
                  ' T = Source{[Schema="HR"]}[Data]{[Name="EMPLOYEES"]}[Data]\nin T',
     ("oracle", "ora.example.com:1521/HRPDB", "HRPDB", "HR", "EMPLOYEES")),
    ("Athena Clicks", 'let Source = AmazonAthena.Databases("Athena_Prod"),\n'
                      ' T = Source{[Name="AwsDataCatalog",Kind="Database"]}[Data]'
                      '{[Name="web",Kind="Schema"]}[Data]{[Name="clicks",Kind="Table"]}[Data]\nin T',
     ("athena", "Athena_Prod", "AwsDataCatalog", "web", "clicks")),
    ("ODBC Trino", 'let Source = Odbc.DataSource("dsn=Trino;pwd=secret", [HierarchicalNavigation=true]),\n'
                   ' T = Source{[Name="hive",Kind="Database"]}[Data]{[Name="sales",Kind="Schema"]}[Data]'
                   '{[Name="orders",Kind="Table"]}[Data]\nin T',
     ("odbc", "dsn=Trino", "hive", "sales", "orders")),
]


def warehouse_fixture(base):
    """base plus a workspace "Warehouses" with one model per source in WAREHOUSE_MODELS."""
    fx = copy.deepcopy(base)
    ws = {"id": "22222222-0000-4000-8000-000000000099", "name": "Warehouses",
          "roles": [{"principal": ALICE, "role": "Admin"}, {"principal": SP_ID, "role": "Viewer"}],
          "semantic_models": [], "reports": [], "dashboards": []}
    for j, (name, m, _) in enumerate(WAREHOUSE_MODELS):
        ws["semantic_models"].append({
            "id": "33333333-0099-4000-8000-%012d" % j, "name": name, "owner": ALICE, "refreshed": True,
            "tables": [{"name": "T", "columns": [{"name": "Id", "dataType": "Int64"}],
                        "partitions": [{"name": "T", "mode": "import", "source": m}]}]})
    fx["tenants"][0]["workspaces"].append(ws)
    return fx


class ImportFromPowerBI(harness.EmulatorStackTestCase):
    SERVER = "nginx"
    FCGI_PROCS = 4

    @classmethod
    def setUpClass(cls):
        cls.fixture = tenant_fixture()
        cls.tpl = tempfile.mkdtemp(prefix="pbiport-filters-")
        os.makedirs(os.path.join(cls.tpl, "filters"))
        with open(os.path.join(cls.tpl, "filters", "eu_only.lua"), "w") as f:
            f.write('local filters = require("filters")\n'
                    'return function(item, rules)\n'
                    '  if item.kind == "workspace" and not filters.match("* EU", item.name) then\n'
                    '    return false\n'
                    '  end\n'
                    '  return filters.allowed(rules[filters.group(item.kind)], item.name)\n'
                    'end\n')
        cls.EMU_ENV = dict(APPLICATION_INGESTIONS_ENABLED="true", APPLICATION_ENCRYPTION_KEYS=KEY,
                           APPLICATION_SECURITY_REMEMBERME_KEY="55" * 32, PBIPORT_SCAN_POLL_MS="100",
                           PBIPORT_SCAN_POLL_MAX_MS="400", PBIPORT_TEMPLATE_PATH=cls.tpl)
        cls.workers = []
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            for w in cls.workers:
                harness.kill_group(w)
        finally:
            super().tearDownClass()

    def setUp(self):
        self.load_tenants_aged(self.fixture)
        db = self.stack.db()
        db.execute("PRAGMA foreign_keys = ON")   # as pbiport has it: sightings go with their assets
        db.execute("DELETE FROM integrations")
        db.execute("DELETE FROM assets")
        db.execute("DELETE FROM lineage_edges")
        db.execute("DELETE FROM jobs")
        db.execute("DELETE FROM scan_budget")
        db.execute("DELETE FROM tenant_backoff")   # a 429 one test provoked would hold the next
        db.commit()
        db.close()

    # ---- helpers -----------------------------------------------------------------------------
    def call(self, method, path, user="alice", body=None):
        status, _, doc = self.stack.send_json(method, path, body, token=user)
        return status, doc

    def lineage(self, node, depth):
        """GET /api/lineage of node as bob: the graph."""
        status, graph = self.call("GET", "/api/lineage?node=%s&depth=%d" % (node, depth), user="bob")
        self.assertEqual(status, 200, graph)
        return graph

    def imported_with_sales_eu(self, contract):
        """contract's product (imported by alice), after an import of the Sales EU workspace has
        succeeded: (product, integration)."""
        status, _, product = self.stack.import_contract(contract, token="alice")
        self.assertIn(status, (200, 201), product)
        integ = self.create(filters={"workspaces": {"include": ["Sales EU"]}})
        self.assertEqual(self.run_to_end(integ["id"])["state"], "succeeded")
        return product, integ

    def create(self, name="prod", **fields):
        body = {"name": name, "type": "powerbi", "tenant_id": TENANT, "client_id": SP_ID,
                "client_secret": SP_SECRET}
        body.update(fields)
        status, doc = self.call("POST", "/api/integrations", body=body)
        self.assertEqual(status, 201, doc)
        return doc

    def worker(self, *extra):
        p = subprocess.Popen([self.stack.bin, "worker", "--poll-ms", "100", "--lease-seconds", "3"] + list(extra),
                             env=self.stack.env(), stdout=subprocess.DEVNULL,
                             stderr=open(self.stack.path("logs", "worker.log"), "a"), start_new_session=True)
        self.workers.append(p)
        return p

    def run_once(self):
        rc, out, err = self.stack.cli("worker", "--once", "--lease-seconds", "3", check=False)
        self.assertEqual(rc, 0, err)

    def trigger(self, iid):
        status, doc = self.call("POST", "/api/integrations/%s/runs" % iid)
        self.assertEqual(status, 202, doc)
        return doc

    def runs(self, iid):
        status, doc = self.call("GET", "/api/integrations/%s/runs" % iid)
        self.assertEqual(status, 200, doc)
        return doc["runs"]

    def run_to_end(self, iid):
        """Triggers a run and has `worker --once` carry it out; returns the run."""
        run = self.trigger(iid)
        self.run_once()
        latest = self.runs(iid)[0]
        self.assertEqual(latest["id"], run["id"])
        return latest

    def assets(self, kind=None, q=None):
        qs = []
        if kind:
            qs.append("type=" + kind)
        if q:
            qs.append("q=" + q)
        status, doc = self.call("GET", "/api/assets" + ("?" + "&".join(qs) if qs else ""), user="bob")
        self.assertEqual(status, 200, doc)
        return doc["assets"]

    def names(self, kind):
        return sorted(a["name"] for a in self.assets(kind))

    # ---- integrations --------------------------------------------------------------------------
    def test_create_validation_and_secret(self):
        doc = self.create(schedule="@daily")
        self.assertNotIn("client_secret", doc)
        self.assertTrue(doc["has_client_secret"])
        self.assertIsNotNone(doc["next_run_at"])
        self.assertTrue(doc["next_run_at"].endswith("T00:00:00.000Z"), doc)
        self.assertEqual(doc["filters"]["workspaces"], {"include": [], "exclude": []})
        # duplicate name
        status, err = self.call("POST", "/api/integrations", body={
            "name": "prod", "type": "powerbi", "tenant_id": TENANT, "client_id": SP_ID, "client_secret": "x"})
        self.assertEqual((status, err["error"]["code"]), (409, "conflict"), err)
        self.assertTrue(err["error"]["message"].startswith("name: "), err)
        # members may not manage integrations
        status, err = self.call("POST", "/api/integrations", user="bob", body={"name": "m"})
        self.assertEqual(status, 403, err)
        status, err = self.call("GET", "/api/integrations", user="bob")
        self.assertEqual(status, 403, err)
        # another org does not see it
        status, err = self.call("GET", "/api/integrations/%s" % doc["id"], user="carol")
        self.assertEqual(status, 404, err)
        # schedules: too frequent, malformed
        for sched, part in (("0 * * * *", "shortest allowed interval is 12 h"),
                            ("*/5 * * * *", "every 5 min"), ("@hourlyish", "unknown preset"),
                            ("0 0 * *", "expected 5 fields")):
            status, err = self.call("POST", "/api/integrations", body={
                "name": "s", "type": "powerbi", "tenant_id": TENANT, "client_id": SP_ID, "client_secret": "x",
                "schedule": sched})
            self.assertEqual((status, err["error"]["code"]), (400, "bad_request"), err)
            self.assertIn(part, err["error"]["message"])
        # Microsoft ids are GUIDs: the field is named
        for field, value in (("tenant_id", "contoso.example"), ("tenant_id", ".."), ("client_id", "abc"),
                             ("client_id", SP_ID + "0")):
            body = {"name": "g", "type": "powerbi", "tenant_id": TENANT, "client_id": SP_ID, "client_secret": "x"}
            body[field] = value
            status, err = self.call("POST", "/api/integrations", body=body)
            self.assertEqual(status, 400, (field, value, err))
            self.assertTrue(err["error"]["message"].startswith(field + ": expected"), err)
            status, err = self.call("POST", "/api/integrations/test", body=dict(
                {"tenant_id": TENANT, "client_id": SP_ID, "client_secret": "x"}, **{field: value}))
            self.assertEqual(status, 400, (field, value, err))
            self.assertIn(field, err["error"]["message"])
        for bad in ({"filters": {"workspaces": {"include": "Sales*"}}},
                    {"filters": {"dashboards": {}}},
                    {"filters": {"reports": {"exclude": ["*a*b*c*d*e*f*g*h*i*"]}}},
                    {"filter_rule": "../../etc/passwd"},
                    {"filter_rule": "filters.nope"},
                    {"type": "tableau"}, {"colour": "red"}):
            body = {"name": "f", "type": "powerbi", "tenant_id": TENANT, "client_id": SP_ID, "client_secret": "x"}
            body.update(bad)
            status, err = self.call("POST", "/api/integrations", body=body)
            self.assertEqual((status, err["error"]["code"]), (400, "bad_request"), (bad, err))
        # update: rename clash, schedule change, secret kept sealed
        other = self.create("other")
        status, err = self.call("PUT", "/api/integrations/%s" % other["id"], body={"name": "prod"})
        self.assertEqual((status, err["error"]["code"]), (409, "conflict"), err)
        status, upd = self.call("PUT", "/api/integrations/%s" % other["id"], body={"schedule": "@twice_daily"})
        self.assertEqual(status, 200, upd)
        self.assertEqual(upd["schedule"], "@twice_daily")
        self.assertTrue(upd["next_run_at"][11:] in ("00:00:00.000Z", "12:00:00.000Z"), upd)
        status, lst = self.call("GET", "/api/integrations")
        self.assertEqual(status, 200)
        self.assertEqual([i["name"] for i in lst["integrations"]], ["other", "prod"])
        # the secret is sealed in SQLite and never in a response
        db = self.stack.db()
        stored = [r[0] for r in db.execute("SELECT client_secret FROM integrations")]
        db.close()
        for s in stored:
            self.assertTrue(s.startswith("v1:"), s)
            self.assertNotIn(SP_SECRET, s)
        self.assertNotIn(SP_SECRET.encode(), self.stack.db_raw())
        status, err = self.call("DELETE", "/api/integrations/%s" % other["id"])
        self.assertEqual(status, 204)

    def test_feature_flag_off(self):
        self.stack.restart_pool({"APPLICATION_INGESTIONS_ENABLED": None})
        try:
            status, err = self.call("GET", "/api/integrations")
            self.assertEqual(status, 404, err)
            self.assertEqual(err["error"]["code"], "feature_disabled")
        finally:
            self.stack.restart_pool({"APPLICATION_INGESTIONS_ENABLED": "true"})

    # ---- runs ----------------------------------------------------------------------------------
    def test_full_run_assets_and_history(self):
        integ = self.create()
        run = self.run_to_end(integ["id"])
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(run["trigger"], "manual")
        self.assertEqual(run["mode"], "full")
        c = run["counts"]
        # demo: Sales Analytics, Finance, Marketing, Data Platform + 3 extra (My workspace skipped)
        self.assertEqual(c["workspaces"], 7, c)
        self.assertEqual(c["semantic_models"], 6, c)
        self.assertEqual(c["reports"], 8, c)
        self.assertEqual(c["dashboards"], 1, c)
        self.assertEqual(c["added"], c["workspaces"] + c["semantic_models"] + c["reports"] + c["dashboards"]
                         + c["datasources"], c)
        self.assertEqual((c["changed"], c["removed"]), (0, 0))
        for v in c.values():
            self.assertIsInstance(v, int)
        self.assertIsNotNone(run["started_at"])
        self.assertIsNotNone(run["finished_at"])
        self.assertIsNone(run["error"])
        self.assertNotIn("My workspace", self.names("workspace"))
        # a model with its tables, columns and storage mode
        eu = [a for a in self.assets("semantic_model") if a["name"] == "EU Orders"][0]
        status, full = self.call("GET", "/api/assets/%s" % eu["id"], user="bob")
        self.assertEqual(status, 200, full)
        cols = full["details"]["tables"][0]["columns"]
        self.assertEqual([c["name"] for c in cols][:4], ["Id", "Amount", "When", "Label"])
        self.assertEqual(full["details"]["upstream_tables"][0]["table"], "FACTS")
        self.assertEqual(self.assets("semantic_model", q="eu%20ord")[0]["id"], eu["id"])
        status, err = self.call("GET", "/api/assets?type=table", user="bob")
        self.assertEqual(status, 400, err)
        status, err = self.call("GET", "/api/assets/%s" % eu["id"], user="carol")
        self.assertEqual(status, 404, err)
        # the same run again: nothing added, changed or removed
        run2 = self.run_to_end(integ["id"])
        self.assertEqual(run2["state"], "succeeded", run2)
        self.assertEqual((run2["counts"]["added"], run2["counts"]["changed"], run2["counts"]["removed"]), (0, 0, 0))
        # history: last 10, newest first
        for _ in range(10):
            self.run_to_end(integ["id"])
        runs = self.runs(integ["id"])
        self.assertEqual(len(runs), 10)
        self.assertEqual(runs, sorted(runs, key=lambda r: r["created_at"], reverse=True))
        status, lst = self.call("GET", "/api/integrations")
        self.assertEqual(lst["integrations"][0]["last_run_state"], "succeeded")

    def test_one_run_at_a_time(self):
        integ = self.create()
        first = self.trigger(integ["id"])
        second = self.trigger(integ["id"])
        self.assertEqual(second["id"], first["id"])
        self.assertTrue(second["already_running"])
        self.run_once()
        self.assertEqual(len(self.runs(integ["id"])), 1)

    def test_filters(self):
        integ = self.create(filters={"workspaces": {"include": ["sales*", "HR"], "exclude": ["*TEST*"]},
                                     "reports": {"exclude": ["Draft*"]},
                                     "semantic_models": {"include": ["*"], "exclude": ["Customer*"]}})
        run = self.run_to_end(integ["id"])
        self.assertEqual(run["state"], "succeeded", run)
        # case-insensitive include, exclude wins over include ("Sales test")
        self.assertEqual(self.names("workspace"), ["HR", "Sales Analytics", "Sales EU"])
        self.assertEqual(self.names("semantic_model"), ["EU Orders", "People", "Sales"])
        self.assertNotIn("Draft EU", self.names("report"))
        self.assertIn("EU Revenue", self.names("report"))
        # narrowing the filter removes (not deletes) what falls out, in a full run
        status, doc = self.call("PUT", "/api/integrations/%s" % integ["id"],
                                body={"filters": {"workspaces": {"include": ["HR"]}}})
        self.assertEqual(status, 200, doc)
        run = self.run_to_end(integ["id"])
        self.assertEqual(run["mode"], "full")
        self.assertEqual(self.names("workspace"), ["HR"])
        self.assertGreater(run["counts"]["removed"], 0)
        db = self.stack.db()
        removed = db.execute("SELECT COUNT(*) FROM assets WHERE state = 'removed'").fetchone()[0]
        db.close()
        self.assertEqual(removed, run["counts"]["removed"])

    def test_custom_rule(self):
        integ = self.create(filter_rule="filters.eu_only", filters={"reports": {"exclude": ["draft*"]}})
        run = self.run_to_end(integ["id"])
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(self.names("workspace"), ["Sales EU"])
        self.assertEqual(self.names("report"), ["EU Revenue"])

    def test_admin_apis_off_fallback(self):
        fx = copy.deepcopy(self.fixture)
        for a in fx["tenants"][0]["apps"]:
            a["admin_api_allowed"] = False
        self.load_tenants_aged(fx)
        integ = self.create()
        run = self.run_to_end(integ["id"])
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(run["mode"], "listing")
        self.assertTrue(any("admin APIs are not enabled for this service principal: used per-workspace listing, "
                            "no column schema" in w for w in run["warnings"]), run["warnings"])
        # only the workspaces where the principal has a role
        self.assertEqual(self.names("workspace"), ["Finance", "HR", "Sales Analytics", "Sales EU", "Sales test"])
        self.assertEqual(run["counts"]["semantic_models"], 6)
        # the doctor names what is missing, with a fix
        status, rep = self.call("POST", "/api/integrations/%s/test" % integ["id"])
        self.assertEqual(status, 200, rep)
        self.assertFalse(rep["ok"])
        checks = {c["check"]: c for c in rep["checks"]}
        self.assertTrue(checks["credentials"]["ok"])
        self.assertTrue(checks["fabric_api_access"]["ok"])
        self.assertFalse(checks["admin_api_access"]["ok"])
        self.assertIn("Service principals can access read-only admin APIs", checks["admin_api_access"]["fix"])

    def test_doctor(self):
        integ = self.create()
        status, rep = self.call("POST", "/api/integrations/%s/test" % integ["id"])
        self.assertEqual(status, 200, rep)
        self.assertTrue(rep["ok"], rep)
        self.assertEqual([c["check"] for c in rep["checks"]],
                         ["credentials", "fabric_api_access", "admin_api_access", "detailed_metadata",
                          "mashup_expressions", "workspace_roles"])
        # unsaved credentials with a wrong secret
        status, rep = self.call("POST", "/api/integrations/test",
                                body={"tenant_id": TENANT, "client_id": SP_ID, "client_secret": "not-the-secret-7f3a"})
        self.assertEqual(status, 200, rep)
        self.assertFalse(rep["ok"])
        self.assertFalse(rep["checks"][0]["ok"])
        self.assertIn("client secret", rep["checks"][0]["fix"])
        self.assertTrue(rep["checks"][0]["message"].startswith("the credentials sent: "), rep)
        self.assertNotIn("not-the-secret-7f3a", json.dumps(rep))
        # Power BI refusing the workspace list for another reason than the identity: 502, naming whose
        self.emu.control("POST", "faults", {"path_prefix": "/powerbi/v1.0/myorg/groups",
                                            "error_rate": {"status": 400, "percent": 100}})
        status, err = self.call("POST", "/api/integrations/%s/test" % integ["id"])
        self.assertEqual((status, err["error"]["code"]), (502, "powerbi_rejected"), err)
        self.assertIn("integration 'prod'", err["error"]["message"])
        self.load_tenants_aged(self.fixture)
        # tenant settings turned off, one at a time
        for setting, check, words in (("service_principals_allowed", "fabric_api_access", "Service principals can use Fabric APIs"),
                                      ("detailed_metadata", "detailed_metadata", "detailed metadata"),
                                      ("dax_mashup_expressions", "mashup_expressions", "DAX and mashup expressions")):
            fx = copy.deepcopy(self.fixture)
            fx["tenants"][0]["settings"][setting] = False
            self.load_tenants_aged(fx)
            status, rep = self.call("POST", "/api/integrations/%s/test" % integ["id"])
            self.assertEqual(status, 200, rep)
            checks = {c["check"]: c for c in rep["checks"]}
            self.assertFalse(checks[check]["ok"], (setting, rep))
            self.assertIn(words, checks[check]["fix"])
            self.assertEqual(len([c for c in rep["checks"] if c["ok"] is False]), 1, rep)

    def test_refused_secret_names_the_integration(self):
        integ = self.create(client_secret="not-the-secret-7f3a")
        run = self.run_to_end(integ["id"])
        self.assertEqual((run["state"], run["error"]["code"]), ("failed", "bad_credentials"), run)
        self.assertTrue(run["error"]["message"].startswith("integration 'prod': "), run)
        self.assertNotIn("not-the-secret-7f3a", json.dumps(run))
        status, job = self.call("GET", "/api/jobs/%s" % run["job_id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "bad_credentials"), job)

    def test_429_storm(self):
        integ = self.create()
        self.emu.control("POST", "faults", {"path_prefix": "/powerbi/v1.0/myorg/admin",
                                            "burst_429": {"count": 6, "retry_after": 1}})
        run = self.run_to_end(integ["id"])
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(run["counts"]["workspaces"], 7)
        st = self.emu.state("counters")["counters"]
        self.assertGreaterEqual(st.get("faults_429", st.get("faults_burst_429", 6)), 1)

    def test_long_retry_after_requeues(self):
        integ = self.create()
        self.emu.control("POST", "faults", {"path_prefix": "/powerbi/v1.0/myorg/admin/workspaces/getInfo",
                                            "burst_429": {"count": 1, "retry_after": 3600}})
        run = self.trigger(integ["id"])
        self.run_once()
        runs = self.runs(integ["id"])
        self.assertEqual(runs[0]["state"], "running", runs[0])
        db = self.stack.db()
        job = db.execute("SELECT state, run_after, error_code FROM jobs WHERE id = ?", (run["job_id"],)).fetchone()
        scans = db.execute("SELECT COUNT(*) FROM integration_scans WHERE run_id = ?", (run["id"],)).fetchone()[0]
        db.close()
        self.assertEqual(job[0], "queued")
        self.assertEqual(job[2], "throttled")
        self.assertGreater(job[1], time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3000)))
        self.assertGreater(scans, 0)

    def test_tenant_scan_budget(self):
        """Every integration on a tenant shares its getInfo budget: with this hour's budget used
        up by others, the run waits for the next hour instead of calling Power BI."""
        integ = self.create()
        hour = time.strftime("%Y-%m-%dT%H", time.gmtime())
        db = self.stack.db()
        db.execute("INSERT INTO scan_budget (tenant_id, hour, calls) VALUES (?, ?, 500)", (TENANT, hour))
        db.commit()
        run = self.trigger(integ["id"])
        self.emu.control("POST", "clear-log")
        self.run_once()
        job = db.execute("SELECT state, error_code, error_message FROM jobs WHERE id = ?", (run["job_id"],)).fetchone()
        db.close()
        self.assertEqual(job[:2], ("queued", "scan_budget"), job)
        self.assertIn("500 scans per hour", job[2])
        log = self.emu.state("log")["requests"]
        self.assertFalse([r for r in log if r["path"].endswith("/getInfo")])
        self.assertEqual(self.runs(integ["id"])[0]["state"], "running")

    def test_killed_run_keeps_previous_assets_and_resumes(self):
        integ = self.create()
        self.assertEqual(self.run_to_end(integ["id"])["state"], "succeeded")
        before = {a["id"]: a["updated_at"] for a in self.assets()}
        # slow scans down so the worker is caught mid-run, then kill it hard
        self.emu.control("POST", "config", {"scan_duration_s": 3600, "scan_polls": 1000000})
        db = self.stack.db()
        db.execute("UPDATE integrations SET last_success_at = NULL")   # make the next run a full one
        db.commit()
        run = self.trigger(integ["id"])
        w = self.worker()
        deadline = time.monotonic() + RUN_WAIT_S
        scanning = 0
        while time.monotonic() < deadline and not scanning:
            time.sleep(0.2)
            scanning = db.execute("SELECT COUNT(*) FROM integration_scans WHERE run_id = ? AND state = 'scanning' "
                                  "AND scan_id IS NOT NULL", (run["id"],)).fetchone()[0]
        self.assertGreater(scanning, 0)
        scan_ids = [r[0] for r in db.execute("SELECT scan_id FROM integration_scans WHERE run_id = ?", (run["id"],))]
        os.killpg(w.pid, signal.SIGKILL)
        w.wait()
        # the previous assets are untouched
        self.assertEqual({a["id"]: a["updated_at"] for a in self.assets()}, before)
        started = self.emu.state("counters")["counters"]["scans_started"]
        # let the scans finish and a new worker take over after the lease expires
        self.emu.control("POST", "config", {"scan_duration_s": 1, "scan_polls": 1})
        self.emu.control("POST", "advance")
        time.sleep(3.5)
        self.run_once()
        runs = self.runs(integ["id"])
        self.assertEqual(runs[0]["id"], run["id"])
        self.assertEqual(runs[0]["state"], "succeeded", runs[0])
        # it polled the saved scans instead of starting new ones
        self.assertEqual(self.emu.state("counters")["counters"]["scans_started"], started)
        # and its counts include what the killed worker planned and started (issue 11 item 12)
        self.assertEqual(runs[0]["counts"]["scanned_workspaces"], 7, runs[0])
        self.assertEqual(runs[0]["counts"]["scans"], len(scan_ids), runs[0])
        self.assertEqual(runs[0]["counts"]["workspaces"], 7, runs[0])
        self.assertTrue(all(scan_ids))
        db.close()

    def test_incremental_scans_only_modified(self):
        integ = self.create()
        first = self.run_to_end(integ["id"])
        self.assertEqual(first["mode"], "full")
        # nothing changed: the next run is incremental and scans nothing
        self.emu.control("POST", "clear-log")
        second = self.run_to_end(integ["id"])
        self.assertEqual(second["mode"], "incremental", second)
        self.assertEqual(second["counts"]["scanned_workspaces"], 0)
        self.assertEqual(second["counts"]["workspaces"], 7)
        log = self.emu.state("log")["requests"]
        self.assertFalse([r for r in log if r["path"].endswith("/getInfo")])
        # delete a model in HR: only HR is scanned, and the model is marked removed
        tok = self.emu.user_tokens(ALICE, ["https://analysis.windows.net/powerbi/api/Dataset.ReadWrite.All"],
                                   *harness.app_credentials(DEMO["tenants"][0], 0), TENANT)
        people = [a for a in self.assets("semantic_model") if a["name"] == "People"][0]
        r = self.emu.call("DELETE", "/powerbi/v1.0/myorg/groups/%s/datasets/%s"
                          % (people["workspace_powerbi_id"], people["powerbi_id"]), token=tok["access_token"])
        self.assertIn(r.status, (200, 204), r)
        self.emu.control("POST", "advance", {"seconds": 60})
        third = self.run_to_end(integ["id"])
        self.assertEqual(third["mode"], "incremental")
        self.assertEqual(third["counts"]["scanned_workspaces"], 1, third)
        self.assertEqual(third["counts"]["removed"], 1, third)
        self.assertNotIn("People", self.names("semantic_model"))
        db = self.stack.db()
        state = db.execute("SELECT state FROM assets WHERE id = ?", (people["id"],)).fetchone()[0]
        db.close()
        self.assertEqual(state, "removed")
        self.assertEqual(third["counts"]["workspaces"], 7)

    # ---- several integrations on one tenant ----------------------------------------------------
    def test_shared_workspace_two_integrations(self):
        """A scanner-mode and a listing-mode integration that see the same workspace keep one
        asset: the scanner's tables and upstream lineage stay, the model stays the scanner
        integration's (its service principal refreshes it), no data source is duplicated, both are
        listed as seeing it, and it is removed only when neither sees it (issue 12 item 4)."""
        fx = copy.deepcopy(self.fixture)
        sales_eu = [w for w in fx["tenants"][0]["workspaces"] if w["name"] == "Sales EU"][0]
        sales_eu["roles"].append({"principal": OTHER_ID, "role": "Contributor"})
        self.load_tenants_aged(fx)
        scan = self.create("scanner")
        lister = self.create("lister", client_id=OTHER_ID, client_secret=OTHER_SECRET)
        self.assertEqual(self.run_to_end(scan["id"])["state"], "succeeded")
        before = {a["id"]: a for a in self.assets()}
        sources = sorted((a["powerbi_id"], a["name"]) for a in self.assets("datasource"))
        eu = [a for a in self.assets("semantic_model") if a["name"] == "EU Orders"][0]
        status, rich = self.call("GET", "/api/assets/%s" % eu["id"], user="bob")
        self.assertEqual(status, 200, rich)
        self.assertTrue(rich["details"]["tables"] and rich["details"]["upstream_tables"], rich)
        run = self.run_to_end(lister["id"])
        self.assertEqual((run["state"], run["mode"]), ("succeeded", "listing"), run)
        self.assertEqual((run["counts"]["added"], run["counts"]["changed"], run["counts"]["removed"]), (0, 0, 0), run)
        # its counts are what it sees, all of it the scanner integration's already
        roles = [w for w in fx["tenants"][0]["workspaces"] if any(r["principal"] == OTHER_ID for r in w.get("roles", []))]
        self.assertEqual(run["counts"]["workspaces"], len(roles), run)
        # nothing was overwritten, nothing duplicated
        after = {a["id"]: a for a in self.assets()}
        self.assertEqual(after, before)
        self.assertEqual(sorted((a["powerbi_id"], a["name"]) for a in self.assets("datasource")), sources)
        status, full = self.call("GET", "/api/assets/%s" % eu["id"], user="bob")
        self.assertEqual(status, 200, full)
        self.assertEqual(full["details"], rich["details"])
        self.assertEqual((full["integration_id"], full["access"]), (scan["id"], "scanner"))
        self.assertEqual([(s["integration_id"], s["name"], s["access"], s["refresh"]) for s in full["seen_by"]],
                         [(scan["id"], "scanner", "scanner", True), (lister["id"], "lister", "listing", False)])
        # the scanner integration runs again: its lineage and the sharing stay as they are
        again = self.run_to_end(scan["id"])
        self.assertEqual((again["counts"]["added"], again["counts"]["changed"], again["counts"]["removed"]),
                         (0, 0, 0), again)
        # a refresh of the shared model uses the scanner integration's service principal
        status, ref = self.call("POST", "/api/semantic-models/%s/refreshes" % eu["id"], body={})
        self.assertEqual(status, 202, ref)
        db = self.stack.db()
        job_input = json.loads(db.execute("SELECT input FROM jobs WHERE id = ?", (ref["job_id"],)).fetchone()[0])
        self.assertEqual(job_input["integration_id"], scan["id"])
        db.execute("DELETE FROM jobs WHERE id = ?", (ref["job_id"],))   # not run: only who would refresh
        db.commit()
        db.close()
        # the scanner integration stops covering Sales EU: its model passes to the listing one
        status, doc = self.call("PUT", "/api/integrations/%s" % scan["id"],
                                body={"filters": {"workspaces": {"exclude": ["Sales EU"]}}})
        self.assertEqual(status, 200, doc)
        narrowed = self.run_to_end(scan["id"])
        self.assertEqual(narrowed["state"], "succeeded", narrowed)
        status, moved = self.call("GET", "/api/assets/%s" % eu["id"], user="bob")
        self.assertEqual((moved["state"], moved["integration_id"], moved["access"]),
                         ("active", lister["id"], "listing"), moved)
        self.assertEqual([s["integration_id"] for s in moved["seen_by"]], [lister["id"]])
        self.assertIn("EU Revenue", self.names("report"))
        # the listing integration no longer covers it either: now it is removed
        status, doc = self.call("PUT", "/api/integrations/%s" % lister["id"],
                                body={"filters": {"workspaces": {"exclude": ["Sales EU"]}}})
        self.assertEqual(status, 200, doc)
        gone = self.run_to_end(lister["id"])
        self.assertGreater(gone["counts"]["removed"], 0, gone)
        status, removed = self.call("GET", "/api/assets/%s" % eu["id"], user="bob")
        self.assertEqual((removed["state"], removed["seen_by"]), ("removed", []), removed)

    def test_retry_after_holds_every_integration_on_the_tenant(self):
        """Integration A gets 429 with Retry-After: 3600 on getInfo; integration B on the same tenant
        does not call the scanner APIs for that hour: its job waits in the queue (the worker stays
        free), and both runs say why they wait and until when, across worker restarts (issue 12
        item 5)."""
        fx = copy.deepcopy(self.fixture)
        for a in fx["tenants"][0]["apps"]:
            if a["client_id"] == OTHER_ID:
                a["admin_api_allowed"] = True
        self.load_tenants_aged(fx)
        a = self.create("tenant-a")
        b = self.create("tenant-b", client_id=OTHER_ID, client_secret=OTHER_SECRET)
        self.emu.control("POST", "faults", {"path_prefix": "/powerbi/v1.0/myorg/admin/workspaces/getInfo",
                                            "burst_429": {"count": 1, "retry_after": 3600}})
        run_a = self.trigger(a["id"])
        self.run_once()
        hour = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3000))
        ra = self.runs(a["id"])[0]
        self.assertEqual(ra["state"], "running", ra)
        self.assertGreater(ra["waiting"]["until"], hour, ra)
        self.assertIn("3600 s", ra["waiting"]["reason"])
        # B, seconds later, in a new worker process: not one scanner call, and the worker is free
        self.emu.control("POST", "clear-log")
        run_b = self.trigger(b["id"])
        t0 = time.monotonic()
        self.run_once()
        self.assertLess(time.monotonic() - t0, 30)
        log = self.emu.state("log")["requests"]
        self.assertFalse([r for r in log if "/admin/" in r["path"]], log)
        status, job = self.call("GET", "/api/jobs/%s" % run_b["job_id"])
        self.assertEqual(status, 200, job)
        self.assertEqual((job["state"], job["error"]["code"]), ("queued", "tenant_backoff"), job)
        self.assertIn("waiting until", job["error"]["message"])
        self.assertIn("integration 'tenant-a'", job["error"]["message"])
        rb = self.runs(b["id"])[0]
        self.assertEqual(rb["id"], run_b["id"])
        self.assertGreater(rb["waiting"]["until"], hour, rb)
        self.assertIn("integration 'tenant-a'", rb["waiting"]["reason"])
        db = self.stack.db()
        run_after = db.execute("SELECT run_after FROM jobs WHERE id = ?", (run_b["job_id"],)).fetchone()[0]
        self.assertGreater(run_after, hour)
        # the permission doctor does not call the scanner APIs either
        self.emu.control("POST", "clear-log")
        status, rep = self.call("POST", "/api/integrations/%s/test" % b["id"])
        self.assertEqual(status, 200, rep)
        checks = {c["check"]: c for c in rep["checks"]}
        self.assertIsNone(checks["admin_api_access"]["ok"], rep)
        self.assertIn("wait until", checks["admin_api_access"]["message"])
        self.assertFalse([r for r in self.emu.state("log")["requests"] if "/admin/" in r["path"]])
        # the hour has passed: both runs go on and finish, the waits cleared
        db.execute("UPDATE tenant_backoff SET wait_until = '2020-01-01T00:00:00.000Z'")
        db.execute("UPDATE jobs SET run_after = '2020-01-01T00:00:00.000Z' WHERE id IN (?, ?)",
                   (run_a["job_id"], run_b["job_id"]))
        db.commit()
        db.close()
        self.run_once()
        for integ in (a, b):
            done = self.runs(integ["id"])[0]
            self.assertEqual(done["state"], "succeeded", done)
            self.assertIsNone(done["waiting"], done)

    def test_scheduled_run(self):
        integ = self.create(schedule="@daily")
        # the schedule is first due at its next matching time, not at once
        self.run_once()
        self.assertEqual(self.runs(integ["id"]), [])
        db = self.stack.db()
        db.execute("UPDATE integrations SET next_run_at = '2020-01-01T00:00:00.000Z'")   # missed many
        db.commit()
        db.close()
        self.run_once()
        runs = self.runs(integ["id"])
        self.assertEqual(len(runs), 1, runs)     # one catch-up run, not a burst
        self.assertEqual(runs[0]["trigger"], "schedule")
        self.assertEqual(runs[0]["state"], "succeeded", runs[0])
        status, doc = self.call("GET", "/api/integrations/%s" % integ["id"])
        self.assertGreater(doc["next_run_at"], time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()))

    def test_data_product_from_asset(self):
        integ = self.create()
        self.assertEqual(self.run_to_end(integ["id"])["state"], "succeeded")
        eu = [a for a in self.assets("semantic_model") if a["name"] == "EU Orders"][0]
        status, dp = self.call("POST", "/api/data-products/from-asset", user="bob", body={"asset_id": eu["id"]})
        self.assertEqual(status, 201, dp)
        self.assertEqual(dp["type"], "powerbi_semantic_model")
        self.assertEqual(dp["name"], "EU Orders")
        contract = json.loads(dp["contract"])
        props = {p["name"]: p["logicalType"] for p in contract["schema"][0]["properties"]}
        self.assertEqual(props, {"Id": "integer", "Amount": "number", "When": "timestamp", "Label": "string"})
        status, again = self.call("GET", "/api/data-products/%s" % dp["id"], user="bob")
        self.assertEqual(status, 200, again)
        self.assertEqual(json.loads(again["contract"])["schema"], contract["schema"])
        self.assertEqual(len(again["output_ports"]), 1)
        rep = [a for a in self.assets("report") if a["name"] == "EU Revenue"][0]
        status, rdp = self.call("POST", "/api/data-products/from-asset", user="bob", body={"asset_id": rep["id"]})
        self.assertEqual(status, 201, rdp)
        self.assertEqual(rdp["type"], "powerbi_report")
        self.assertEqual(rdp["semantic_model_data_product_id"], dp["id"])
        ws = self.assets("workspace")[0]
        status, err = self.call("POST", "/api/data-products/from-asset", user="bob", body={"asset_id": ws["id"]})
        self.assertEqual(status, 400, err)
        status, err = self.call("POST", "/api/data-products/from-asset", user="carol", body={"asset_id": eu["id"]})
        self.assertEqual(status, 404, err)

    def test_data_product_from_asset_drift(self):
        """A data product made from a model: an import run that brings a renamed column records the
        drift from the schema the product recorded (docs/lifecycle.md); asking from-asset again takes
        the new schema and ends it."""
        integ = self.create()
        self.assertEqual(self.run_to_end(integ["id"])["state"], "succeeded")
        eu = [a for a in self.assets("semantic_model") if a["name"] == "EU Orders"][0]
        status, dp = self.call("POST", "/api/data-products/from-asset", user="bob", body={"asset_id": eu["id"]})
        self.assertIn(status, (200, 201), dp)
        table = json.loads(dp["contract"])["schema"][0]["name"]
        status, d = self.call("GET", "/api/data-products/%s/drift" % dp["id"], user="bob")
        self.assertEqual((status, d["cause"], d["changes"]), (200, None, []), d)
        self.emu.control("POST", "models/%s/edit" % eu["powerbi_id"],
                         {"rename_column": {"table": table, "from": "Label", "to": "Caption"}})
        self.assertEqual(self.run_to_end(integ["id"])["state"], "succeeded")
        status, d = self.call("GET", "/api/data-products/%s/drift" % dp["id"], user="bob")
        self.assertEqual((status, d["cause"]), (200, "power_bi"), d)
        self.assertEqual(sorted((c["name"], c["change"]) for c in d["changes"]),
                         [("Caption", "added"), ("Label", "removed")])
        self.assertTrue(d["summary"]["breaking"])
        status, listed = self.call("GET", "/api/drift", user="bob")
        self.assertIn(dp["id"], [p["data_product_id"] for p in listed["data_products"]])
        status, theirs = self.call("GET", "/api/drift", user="carol")
        self.assertNotIn(dp["id"], [p["data_product_id"] for p in theirs["data_products"]])
        self.assertEqual(self.call("GET", "/api/data-products/%s/drift" % dp["id"], user="carol")[0], 404)
        # made from the asset again: the product takes the model's schema as it is now
        status, again = self.call("POST", "/api/data-products/from-asset", user="bob", body={"asset_id": eu["id"]})
        self.assertEqual(status, 200, again)
        status, d = self.call("GET", "/api/data-products/%s/drift" % dp["id"], user="bob")
        self.assertIsNone(d["cause"], d)

    def test_lineage_from_source_port_to_report(self):
        contract = (
            "apiVersion: v3.0.2\nkind: DataContract\nid: urn:contract:facts\nname: Facts\nversion: 1.0.0\n"
            "status: active\nservers:\n  - server: production\n    type: snowflake\n"
            "    host: acme.snowflakecomputing.com\n    warehouse: WH\n    database: SALES\n    schema: PUBLIC\n"
            "schema:\n  - name: FACTS\n    properties:\n      - name: Id\n        logicalType: integer\n")
        product, integ = self.imported_with_sales_eu(contract)
        graph = self.lineage(product["id"], 6)
        by_type = {}
        for n in graph["nodes"]:
            by_type.setdefault(n["type"], []).append(n["name"])
        self.assertIn("output_port", by_type, graph)
        self.assertIn("semantic_model", by_type, graph)
        self.assertIn("EU Orders", by_type["semantic_model"])
        self.assertEqual(sorted(map(str, by_type.get("report", []))), ["Draft EU", "EU Revenue"], graph)
        # re-running the import adds no duplicate edges
        self.assertEqual(self.run_to_end(integ["id"])["state"], "succeeded")
        self.assertEqual(len(self.lineage(product["id"], 6)["edges"]), len(graph["edges"]))

    def test_upstream_tables_of_every_source(self):
        """Models on PostgreSQL, Synapse, BigQuery, Redshift, MySQL, Oracle, Athena and ODBC: their
        source tables come from the M, and output ports of the same servers link to them."""
        self.load_tenants_aged(warehouse_fixture(self.fixture))
        ports = {}
        for typ, server in (("postgres", "    host: pg.example.com\n    database: shop\n    schema: public\n"),
                            ("sqlserver", "    host: contoso.sql.azuresynapse.net\n    database: dw\n"
                                          "    schema: dbo\n"),
                            ("bigquery", "    project: acme-dwh\n    dataset: finance\n"),
                            ("mysql", "    host: mysql.example.com\n    database: shop\n")):
            contract = ("apiVersion: v3.0.2\nkind: DataContract\nid: urn:contract:%s\nname: %s source\n"
                        "version: 1.0.0\nstatus: active\nservers:\n  - server: production\n    type: %s\n%s"
                        "schema:\n  - name: t\n    properties:\n      - name: Id\n        logicalType: integer\n"
                        % (typ, typ, typ, server))
            status, _, product = self.stack.import_contract(contract, token="alice")
            self.assertIn(status, (200, 201), product)
            ports[typ] = product
        integ = self.create(filters={"workspaces": {"include": ["Warehouses"]}})
        self.assertEqual(self.run_to_end(integ["id"])["state"], "succeeded")
        models = {a["name"]: a for a in self.assets("semantic_model")}
        self.assertEqual(sorted(models), sorted(name for name, _, _ in WAREHOUSE_MODELS))
        for name, _, (typ, host, database, schema, table) in WAREHOUSE_MODELS:
            with self.subTest(model=name):
                status, full = self.call("GET", "/api/assets/%s" % models[name]["id"], user="bob")
                self.assertEqual(status, 200, full)
                ups = full["details"]["upstream_tables"]
                self.assertEqual(len(ups), 1, ups)
                up = ups[0]
                self.assertEqual((up["type"], up["host"], up.get("database"), up["schema"], up["table"]),
                                 (typ, host, database, schema, table), up)
                self.assertEqual(up["confidence"], "exact", up)
                self.assertNotIn("secret", json.dumps(up))
        # the ports of the same servers link to the models (the SQL one through Power BI's data source)
        for typ, model in (("postgres", "PG Orders"), ("sqlserver", "Synapse Sales"), ("bigquery", "BQ Costs"),
                           ("mysql", "MySQL Shop")):
            with self.subTest(port=typ):
                graph = self.lineage(ports[typ]["id"], 3)
                names = [n["name"] for n in graph["nodes"] if n["type"] == "semantic_model"]
                self.assertEqual(names, [model], graph)

    def test_lineage_of_a_model_pbiport_published(self):
        """A consumer data product that publish recorded for a model (contract id
        powerbi:semanticModel:<model id>) links to the imported model."""
        model_id = "33333333-0000-4000-8000-000000000000"   # "EU Orders"
        contract = ("apiVersion: v3.0.2\nkind: DataContract\nid: powerbi:semanticModel:%s\nname: EU Orders\n"
                    "version: 1.0.0\nstatus: active\nservers:\n  - server: powerbi\n    type: powerbi\n"
                    "schema:\n  - name: Facts\n    properties:\n      - name: Id\n        logicalType: integer\n"
                    % model_id)
        product, _ = self.imported_with_sales_eu(contract)
        graph = self.lineage(product["id"], 2)
        models = [n for n in graph["nodes"] if n["type"] == "semantic_model"]
        self.assertEqual([m["name"] for m in models], ["EU Orders"], graph)
        self.assertIn({"from": product["id"], "to": models[0]["id"]}, graph["edges"])


if __name__ == "__main__":
    harness.main()
