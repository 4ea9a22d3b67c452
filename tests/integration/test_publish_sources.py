#!/usr/bin/env python3
"""Publishing every source (templates/tmdl/sources/, docs/publish.md "Sources") through nginx + worker
+ the Power BI emulator: each source's own contract (tests/fixtures/sources/) dry-runs to TMDL that
parses back, publishes with a credential kind its Fabric connector takes (the connection made with
its type, creation method and path), binds the model's data source, and offers the connection again
for the next publish; a kind the source does not take is refused; the gateway-only sources (MySQL,
Oracle) render and are refused with source_needs_gateway. Two sources an admin adds with files only, from
a template folder of their own: a Fabric Lakehouse SQL endpoint (published and bound) and Trino through
ODBC (the walk-through of docs/templates.md: gateway-only). Storage modes: the contract's
powerbi.storageMode reaches the model, and one Power BI does not allow is a 400 naming the table."""
import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse

import harness
from publish_stack import WS_ADMIN, PublishStackTestCase

FIXTURES = os.path.join(harness.ROOT, "tests", "fixtures", "sources")
GUID = "99999999-0000-4000-8000-000000000001"
BASIC = {"credential_type": "basic", "username": "svc_pbi", "password": "s3cret-pw"}
SP = {"credential_type": "service_principal", "tenant_id": GUID, "client_id": GUID, "client_secret": "s3cret-sp"}
SERVICE_ACCOUNT = {"credential_type": "service_account", "email": "pbi@acme.iam.gserviceaccount.com",
                   "json_key": '{"type":"service_account","private_key":"s3cret-key"}'}

# source type -> (server name in its fixture, credentials, Fabric type, creation method, path, credentialType)
CLOUD = {
    "postgres": ("pg", BASIC, "PostgreSQL", "PostgreSQL.Database", "pg.example.com;sales", "Basic"),
    "sqlserver": ("azuresql", BASIC, "SQL", "SQL", "contoso.database.windows.net;sales", "Basic"),
    "synapse": ("warehouse", SP, "SQL", "SQL",
                "x6eps4xrq2xudenlfv6naeo3i4-abcd.datawarehouse.fabric.microsoft.com;SalesWarehouse",
                "ServicePrincipal"),
    "bigquery": ("bq", SERVICE_ACCOUNT, "GoogleBigQuery", "GoogleBigQuery.Database", "GoogleBigQuery", "Basic"),
    "redshift": ("rs", BASIC, "AmazonRedshift", "AmazonRedshift.Database",
                 "examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com;dev", "Basic"),
}
GATEWAY_ONLY = {"mysql": "shop", "oracle": "hr"}

# An admin's own sources, files only (docs/templates.md "Adding a source").
ADMIN_TEMPLATES = tempfile.mkdtemp(prefix="pbiport-admin-templates-")
os.makedirs(os.path.join(ADMIN_TEMPLATES, "sources"))
with open(os.path.join(ADMIN_TEMPLATES, "sources", "lakehouse.lua"), "w") as _f:
    _f.write('''-- A Fabric Lakehouse through its SQL analytics endpoint: server = the workspace's endpoint,
-- database = the lakehouse (learn.microsoft.com/fabric/data-engineering/lakehouse-sql-analytics-endpoint).
local sources = require "sources"
return {
  label = "Fabric Lakehouse",
  fields = {
    { name = "host", keys = { "host", "endpoint" }, add = '"host" or "endpoint"', required = true },
    { name = "database", keys = { "lakehouse", "database" }, what = "lakehouse", add = '"lakehouse"', required = true },
    { name = "schema", default = "dbo" },
  },
  parameters = {
    { name = "LakehouseEndpoint", field = "host", description = "SQL analytics endpoint" },
    { name = "Lakehouse", field = "database", description = "Lakehouse" },
  },
  reads = "sql",
  connection = { type = "SQL", creation_method = "SQL", parameters = {
    { name = "server", from = "host", match = "server" },
    { name = "database", from = "database", match = "text" },
  } },
  credentials = { sources.SERVICE_PRINCIPAL },
  storage_modes = { "import", "directQuery" },
  m = function(t, model, ctx)
    return sources.schema_item("Sql.Database(LakehouseEndpoint, Lakehouse)", model.target.schema, t.source_name)
  end,
}
''')
with open(os.path.join(harness.ROOT, "docs", "examples", "sources", "trino.lua")) as _src, \
        open(os.path.join(ADMIN_TEMPLATES, "sources", "trino.lua"), "w") as _dst:
    _dst.write(_src.read())

ADMIN_CONTRACT = """apiVersion: v3.1.0
kind: DataContract
id: urn:pbiport:test:admin-sources
name: Admin sources
version: 1.0.0
status: active
servers:
  - server: lake
    type: lakehouse
    host: x6eps4xrq2xudenlfv6naeo3i4-lake.datawarehouse.fabric.microsoft.com
    customProperties:
      - {property: lakehouse, value: SalesLake}
  - server: trino
    type: trino
    host: trino.example.com
    port: 8443
    catalog: hive
    schema: sales
schema:
  - name: orders
    physicalName: orders
    customProperties:
      - {property: powerbi.storageMode, value: DirectQuery}
    properties:
      - {name: order_id, logicalType: integer, primaryKey: true}
      - {name: amount, logicalType: number, physicalType: "decimal(12,2)"}
"""


class PublishSources(PublishStackTestCase):
    EMU_ENV = dict(PublishStackTestCase.EMU_ENV, PBIPORT_TEMPLATE_PATH=ADMIN_TEMPLATES)

    @classmethod
    def set_up_stack(cls):
        super().set_up_stack()
        for name in sorted(os.listdir(FIXTURES)):
            with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
                status, _, doc = cls.stack.import_contract(f.read(), token="alice")
            assert status == 201, (name, doc)
            cls.ports.update({p["name"]: p["id"] for p in doc["output_ports"]})
        status, _, doc = cls.stack.import_contract(ADMIN_CONTRACT, token="alice")
        assert status == 201, doc
        cls.ports.update({p["name"]: p["id"] for p in doc["output_ports"]})

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(ADMIN_TEMPLATES, ignore_errors=True)

    def dry_run(self, port, query=""):
        return self.stack.json("GET", "/api/output-ports/%s/tmdl%s" % (self.ports[port], query), token="alice")

    def parses_back(self, files):
        """Writes the dry run's files and runs `pbiport tmdl-parse` on them: its summary line."""
        with tempfile.TemporaryDirectory() as d:
            for f in files:
                path = os.path.join(d, f["path"])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as out:
                    out.write(f["content"])
            r = subprocess.run([self.stack.bin, "tmdl-parse", d], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout.splitlines()[0]

    def published(self, port, creds, fabric_type, method, path, cred_type):
        """Publishes port with a new connection; checks the connection and the binding; returns
        the job's result."""
        before = {c["id"] for c in self.emu_connections()}
        job = self.run_job(port, {"workspace_id": WS_ADMIN, "name": "Sources " + port, "connection": creds})
        self.assertEqual(job["state"], "succeeded", job)
        made = [c for c in self.emu_connections() if c["id"] not in before]
        self.assertEqual(len(made), 1, made)
        c = made[0]
        self.assertEqual((c["type"], c["creationMethod"], c["path"], c["credentialType"]),
                         (fabric_type, method, path, cred_type))
        for secret in ("s3cret-pw", "s3cret-sp", "s3cret-key"):
            self.assertNotIn(secret, json.dumps(self.job(job["id"])))
        model = next(m for m in self.emu_models() if m["id"] == job["result"]["semantic_model_id"])
        self.assertEqual(model["datasources"], [{"type": fabric_type, "path": path}])
        self.assertEqual([b["connectionId"] for b in model["bindings"]], [c["id"]])
        return job["result"]

    def test_cloud_sources_publish_and_bind(self):
        for source, (port, creds, fabric_type, method, path, cred_type) in CLOUD.items():
            with self.subTest(source=source):
                status, _, doc = self.dry_run(port)
                self.assertEqual(status, 200, doc)
                self.assertRegex(self.parses_back(doc["files"]), r"^model Model \(culture en-US\): \d+ tables")
                result = self.published(port, creds, fabric_type, method, path, cred_type)
                # the next publish is offered the connection just made
                status, _, offered = self.stack.json("GET", "/api/powerbi/connections?output_port=" + self.ports[port],
                                                     token="alice")
                self.assertEqual(status, 200, offered)
                self.assertIn(result["connection_id"], [c["id"] for c in offered["connections"]])
                self.assertEqual(offered["data_source"]["type"], fabric_type)
                self.assertEqual(offered["data_source"]["source"], source)
                # ... and a publish with it binds without making another
                job = self.run_job(port, {"workspace_id": WS_ADMIN, "name": "Again " + port,
                                          "connection_id": result["connection_id"]})
                self.assertEqual(job["state"], "succeeded", job)

    def test_credential_kinds_come_from_the_description(self):
        status, _, doc = self.publish("pg", {"workspace_id": WS_ADMIN, "connection": SP})
        self.assertEqual(status, 400, doc)
        self.assertEqual(doc["error"]["message"], "connection.credential_type must be basic for a postgres output "
                                                  "port, not \"service_principal\"")
        status, _, doc = self.publish("bq", {"workspace_id": WS_ADMIN, "connection": dict(SERVICE_ACCOUNT, json_key="")})
        self.assertEqual(status, 400, doc)
        self.assertIn("connection.json_key", doc["error"]["message"])
        # the publish form offers the source's kinds, with its labels
        status, _, body = self.stack.request("GET", "/output-ports/%s/power-bi" % self.ports["bq"], token="alice")
        self.assertEqual(status, 200)
        text = body.decode()
        self.assertIn('<input name="credential_type" type="hidden" value="service_account">', text)
        self.assertIn(">Service account JSON key (one line)</label>", text)
        status, _, body = self.stack.request("GET", "/output-ports/%s/power-bi" % self.ports["azuresql"], token="alice")
        self.assertIn('id="cred-basic"', body.decode())
        self.assertIn('id="cred-service_principal"', body.decode())

    def test_gateway_only_sources_render_and_are_refused(self):
        for source, port in GATEWAY_ONLY.items():
            with self.subTest(source=source):
                status, _, doc = self.dry_run(port)
                self.assertEqual(status, 200, doc)
                self.parses_back(doc["files"])
                status, _, doc = self.publish(port, {"workspace_id": WS_ADMIN, "connection": BASIC})
                self.assertEqual(status, 409, doc)
                self.assertEqual(doc["error"]["code"], "source_needs_gateway")
                self.assertIn("only through an on-premises data gateway", doc["error"]["message"])
                # the publish form says so instead of offering a form that cannot succeed
                status, _, body = self.stack.request("GET", "/output-ports/%s/power-bi" % self.ports[port],
                                                     token="alice")
                self.assertEqual(status, 200)
                self.assertIn("only through an on-premises data gateway", body.decode())
                self.assertNotIn('id="power-bi-form"', body.decode())

    def test_admin_sources_from_a_template_folder(self):
        # the lakehouse: published and bound like a built-in source
        status, _, doc = self.dry_run("lake")
        self.assertEqual(status, 200, doc)
        table = next(f["content"] for f in doc["files"] if f["path"] == "definition/tables/orders.tmdl")
        self.assertIn("Sql.Database(LakehouseEndpoint, Lakehouse)", table)
        self.assertIn("\t\tmode: directQuery\n", table)   # the contract's powerbi.storageMode
        self.published("lake", SP, "SQL", "SQL", "x6eps4xrq2xudenlfv6naeo3i4-lake.datawarehouse.fabric.microsoft.com;"
                                                 "SalesLake", "ServicePrincipal")
        # Trino through ODBC (docs/templates.md): renders, reads back as ODBC, refused without a gateway
        status, _, doc = self.dry_run("trino")
        self.assertEqual(status, 200, doc)
        files = {f["path"]: f["content"] for f in doc["files"]}
        self.assertIn("Odbc.DataSource(TrinoConnection, [HierarchicalNavigation=true])",
                      files["definition/tables/orders.tmdl"])
        self.assertIn('TrinoConnection = "Driver={Trino ODBC Driver};Host=trino.example.com;Port=8443"',
                      files["definition/expressions.tmdl"])
        self.parses_back(doc["files"])
        status, _, doc = self.publish("trino", {"workspace_id": WS_ADMIN, "connection": BASIC})
        self.assertEqual((status, doc["error"]["code"]), (409, "source_needs_gateway"), doc)

    def test_storage_modes(self):
        status, _, doc = self.dry_run("pg", "?mode=dual")
        self.assertEqual(status, 200, doc)
        table = next(f["content"] for f in doc["files"] if f["path"] == "definition/tables/orders.tmdl")
        self.assertIn("\t\tmode: dual\n", table)
        status, _, doc = self.dry_run("shop", "?mode=directQuery")
        self.assertEqual(status, 400, doc)
        self.assertEqual(doc["error"]["message"], "?mode=: storage mode directQuery is not allowed for mysql sources "
                                                  "in Power BI (import)")
        # a publish is refused before anything is queued, naming the table
        with open(os.path.join(FIXTURES, "mysql.odcs.yaml"), encoding="utf-8") as f:
            text = f.read().replace("  - name: orders\n", "  - name: orders\n    customProperties: [{property: "
                                    "powerbi.storageMode, value: directQuery}]\n", 1)
        status, _, doc = self.stack.import_contract(text.replace("urn:pbiport:test:mysql-shop", "mysql-dq"),
                                                    token="alice")
        self.assertEqual(status, 201, doc)
        status, _, doc = self.publish(doc["output_ports"][0]["id"], {"workspace_id": WS_ADMIN, "connection": BASIC})
        self.assertEqual(status, 400, doc)
        self.assertEqual(doc["error"]["message"], "table \"orders\": storage mode directQuery is not allowed for mysql "
                                                  "sources in Power BI (import)")
        # the contract decides for its tables: an import-only admin source refuses dual
        status, _, doc = self.dry_run("lake", "?" + urllib.parse.urlencode({"mode": "dual"}))
        self.assertEqual(status, 400, doc)
        self.assertIn("storage mode dual is not allowed for lakehouse sources", doc["error"]["message"])


if __name__ == "__main__":
    harness.main()
