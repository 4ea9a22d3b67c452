"""Publishing on-premises servers through an on-premises data gateway (nginx + pbiport worker + the
emulator's gateways): GET /api/powerbi/gateways (an admin, a data source user, someone without
rights, with and without output_port), a publish that binds to the gateway data source already
there, one that creates a data source with credentials encrypted for the gateway (the emulator
decrypts and checks them), what is refused before queueing (no gateway available, gateway fields
on a cloud server, connection_id on an on-premises one, a gateway the user cannot use, creating
without admin rights), a data source user publishing through a source shared with them, kill -9
during creating_connection (resumed, one data source), cancel with cleanup (removes only what the
job made), unpublish (removes only a data source the publish made), another organization's 404."""
import hashlib
import json
import os
import urllib.parse

import harness
from publish_stack import HTML, PublishStackTestCase

GATEWAY = "d0000000-0000-4000-8000-000000000001"
DS_SQL = "d1000000-0000-4000-8000-000000000001"
DS_FINANCE = "d1000000-0000-4000-8000-000000000003"   # Snowflake, the "finance" server's source
WS_ADMIN = "a0000000-0000-4000-8000-000000000001"     # alice: Admin
WS_BOB = "a0000000-0000-4000-8000-000000000003"       # Marketing: bob Admin
WS_DAVE = "a0000000-0000-4000-8000-000000000004"      # Data Platform: admin@ (dave) Contributor
CREDS = {"credential_type": "basic", "username": "svc_plant", "password": "Pl4nt-s3cret-pw"}
with open(os.path.join(harness.ROOT, "tests", "fixtures", "publish", "gateway.odcs.yaml"), encoding="utf-8") as _f:
    CONTRACT = _f.read()


class Gateways(PublishStackTestCase):

    @classmethod
    def set_up_stack(cls):
        super().set_up_stack()
        s = cls.stack
        status, _, doc = s.import_contract(CONTRACT, token="alice")
        assert status == 201, doc
        cls.ports.update({p["name"]: p["id"] for p in doc["output_ports"]})
        # dave: a member without any right on the gateway (Entra admin@, consented)
        s.cli("user", "add", "dave", "--org", "acme", "--role", "member")
        s.tokens["dave"] = s.cli("token", "create", "dave")[1].strip()
        cls.connect("dave", "admin@contoso.example")
        # bob: a user of the gateway's data sources, not its admin (Entra bob accepts the consent page)
        status, headers, _ = s.request("GET", "/powerbi/connect?return_to=/x", token="bob")
        assert status == 302, status
        r = cls.emu.call("POST", headers["location"], form={"login": "bob@contoso.example", "consent": "accept"})
        assert r.status == 302, r
        cb = r.header("Location")
        status, _, body = s.request("GET", cb[cb.index("/powerbi/callback"):], token="bob")
        assert status == 302, body

    def gateways(self, user="alice", port=None):
        q = "?output_port=" + urllib.parse.quote(self.ports[port]) if port else ""
        return self.stack.json("GET", "/api/powerbi/gateways" + q, token=user)

    def gw_sources(self):
        return {c["id"]: c for c in self.emu_connections() if c.get("gatewayId") == GATEWAY}

    def gw_counters(self):
        c = self.emu.state("counters")["counters"]
        return {k: c.get(k, 0) for k in ("gateway_datasources_created", "gateway_bindings", "connections_created",
                                         "bindings")}

    def model(self, model_id):
        return [m for m in self.emu_models() if m["id"] == model_id][0]

    def assert_bound(self, result, ds_id):
        self.assertEqual(result["connection_id"], ds_id)
        self.assertEqual([b["connectionId"] for b in self.model(result["semantic_model_id"])["bindings"]], [ds_id])
        with self.db() as db:
            row = db.execute("SELECT connection_id FROM published_models WHERE semantic_model_id = ?",
                             (result["semantic_model_id"],)).fetchone()
        self.assertEqual(row, (ds_id,))

    # ---- listing ------------------------------------------------------------------------------
    def test_01_list_gateways(self):
        status, _, doc = self.gateways()
        self.assertEqual(status, 200, doc)
        self.assertEqual([(g["id"], g["name"], g["admin"], g["type"]) for g in doc["gateways"]],
                         [(GATEWAY, "Contoso on-premises gateway", True, "Resource")])
        by_id = {d["id"]: d for d in doc["gateways"][0]["data_sources"]}
        self.assertEqual(len(by_id), 3)
        self.assertEqual((by_id[DS_SQL]["type"], by_id[DS_SQL]["path"], by_id[DS_SQL]["credential_type"]),
                         ("SQL", "sqlprod01.contoso.local;SalesDW", "Windows"))
        self.assertNotIn("matches", by_id[DS_SQL])
        # for a port: what its model reads, and which data sources point at it
        status, _, doc = self.gateways(port="finance")
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["on_premises"])
        self.assertEqual(doc["data_source"], {"type": "Snowflake",
                                              "path": "contoso-finance.privatelink.snowflakecomputing.com;FINANCE_WH"})
        self.assertEqual([d["id"] for d in doc["gateways"][0]["data_sources"] if d["matches"]], [DS_FINANCE])
        status, _, doc = self.gateways(port="cloud")
        self.assertEqual((status, doc["on_premises"]), (200, False))
        self.assertFalse(any(d["matches"] for g in doc["gateways"] for d in g["data_sources"]))
        # a data source user sees the gateway through the sources shared with them; nobody else sees it
        status, _, doc = self.gateways("bob")
        self.assertEqual(status, 200, doc)
        self.assertEqual([(g["id"], g["admin"], g["name"]) for g in doc["gateways"]], [(GATEWAY, False, None)])
        self.assertEqual(len(doc["gateways"][0]["data_sources"]), 3)
        status, _, doc = self.gateways("dave")
        self.assertEqual((status, doc["gateways"]), (200, []))
        # the cloud path never offers a gateway data source as a cloud connection
        status, _, doc = self.stack.json("GET", "/api/powerbi/connections?output_port=" + self.ports["finance"],
                                         token="alice")
        self.assertEqual((status, doc["connections"]), (200, []))

    # ---- publishing ----------------------------------------------------------------------------
    def test_02_publish_through_the_existing_data_source(self):
        before = self.gw_counters()
        doc = self.run_job("finance", {"workspace_id": WS_ADMIN, "name": "Finance (gateway)"})
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertEqual([p["phase"] for p in doc["phases"]],
                         ["validating", "creating_connection", "creating_model", "binding", "finalizing"])
        self.assert_bound(doc["result"], DS_FINANCE)
        after = self.gw_counters()
        self.assertEqual(after["gateway_bindings"] - before["gateway_bindings"], 1)
        for k in ("gateway_datasources_created", "connections_created", "bindings"):
            self.assertEqual(after[k], before[k], k)

    def test_03_publish_creates_a_data_source_with_encrypted_credentials(self):
        before = self.gw_counters()
        self.start_worker()
        job_id = self.submit("plant", {"workspace_id": WS_ADMIN, "name": "Plant (gateway)", "connection": CREDS})
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "succeeded", doc)
        ds_id = doc["result"]["connection_id"]
        made = self.gw_sources()[ds_id]
        # the emulator decrypted the credentials with the gateway's private key and checked them
        self.assertEqual(made["credential_user"], "svc_plant")
        self.assertEqual(made["credential_sha256"], hashlib.sha256(CREDS["password"].encode()).hexdigest())
        self.assertEqual((made["type"], made["path"], made["datasourceType"], made["credentialType"]),
                         ("Snowflake", "plant-onprem.privatelink.snowflakecomputing.com;PLANT_WH", "Extension", "Basic"))
        self.assertTrue(made["displayName"].endswith("(pbiport %s)" % job_id[:12]), made["displayName"])
        self.assert_bound(doc["result"], ds_id)
        after = self.gw_counters()
        self.assertEqual(after["gateway_datasources_created"] - before["gateway_datasources_created"], 1)
        self.assertEqual(after["connections_created"], before["connections_created"])
        with self.db() as db:
            self.assertEqual(db.execute("SELECT connection_created FROM published_models WHERE connection_id = ?",
                                        (ds_id,)).fetchone(), (1,))
            dump = "\n".join(str(r) for r in db.execute("SELECT input, private_input, result FROM jobs"))
        self.assertNotIn(CREDS["password"], dump)
        self.assertNotIn(CREDS["password"], json.dumps(self.emu.state()))
        # windows credentials to a new data source of the same server: another data source, by name
        doc = self.wait_job(self.submit("plant", {"workspace_id": WS_ADMIN, "name": "Plant (windows)",
                                                  "connection": dict(CREDS, credential_type="windows")}))
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertEqual(self.gw_sources()[doc["result"]["connection_id"]]["credentialType"], "Windows")

    def test_04_refused_before_queueing(self):
        cases = [
            # no gateway data source for the server, and no credentials to create one
            ("alice", "mill", {}, 409, "no_gateway"),
            # dave may use no gateway at all
            ("dave", "finance", {}, 409, "no_gateway"),
            ("dave", "plant", {"connection": CREDS}, 404, "powerbi_not_found"),
            # a gateway data source that is not for this server
            ("alice", "finance", {"gateway_datasource_id": DS_SQL}, 409, "connection_mismatch"),
            # gateway fields on a cloud server, a cloud connection on an on-premises one
            ("alice", "cloud", {"gateway_id": GATEWAY, "connection": CREDS}, 400, "bad_request"),
            ("alice", "finance", {"connection_id": "c0000000-0000-4000-8000-000000000001"}, 400, "bad_request"),
            ("alice", "finance", {"gateway_id": "not-a-guid"}, 400, "bad_request"),
            ("alice", "finance", {"gateway_datasource_id": DS_FINANCE, "connection": CREDS}, 400, "bad_request"),
            ("alice", "plant", {"connection": {"credential_type": "service_principal"}}, 400, "bad_request"),
            ("alice", "finance", {"gateway_id": "00000000-0000-4000-8000-00000000dead"}, 404, "powerbi_not_found"),
        ]
        for user, port, extra, status, code in cases:
            ws = WS_DAVE if user == "dave" else WS_ADMIN
            resp = self.publish(port, dict({"workspace_id": ws, "name": "Refused"}, **extra), user=user)
            self.assertError(resp, status, code)
        status, _, doc = self.publish("mill", {"workspace_id": WS_ADMIN, "name": "Refused"})
        self.assertIn("no gateway available", doc["error"]["message"])
        self.assertIn("mill-onprem.privatelink.snowflakecomputing.com;MILL_WH", doc["error"]["message"])
        with self.db() as db:
            self.assertEqual(db.execute("SELECT count(*) FROM jobs WHERE input LIKE '%Refused%'").fetchone(), (0,))

    def test_05_a_data_source_user_binds_but_cannot_create(self):
        # bob is a user of the finance data source, not an admin of the gateway
        self.assertError(self.publish("plant", {"workspace_id": WS_BOB, "name": "Bob plant", "connection": CREDS},
                                      user="bob"), 403, "no_gateway_rights")
        self.start_worker()
        doc = self.wait_job(self.submit("finance", {"workspace_id": WS_BOB, "name": "Bob finance"}, user="bob"),
                            user="bob")
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assert_bound(doc["result"], DS_FINANCE)

    def test_06_kill_during_creating_connection_resumes_without_a_second_data_source(self):
        before = self.gw_counters()
        job_id = self.submit("plant", {"workspace_id": WS_ADMIN, "name": "Plant (crash)", "connection": CREDS})
        self.kill_worker_in("creating_connection", job_id)
        self.assertEqual(self.gw_counters()["gateway_datasources_created"] - before["gateway_datasources_created"], 1)
        self.start_worker()
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "succeeded", doc)
        mine = [c for c in self.gw_sources().values() if "(pbiport %s)" % job_id[:12] in c["displayName"]]
        self.assertEqual([c["id"] for c in mine], [doc["result"]["connection_id"]])
        self.assertEqual(self.gw_counters()["gateway_datasources_created"] - before["gateway_datasources_created"], 1)
        self.assert_bound(doc["result"], mine[0]["id"])

    def test_07_cancel_with_cleanup_removes_only_what_the_job_made(self):
        for port, extra, made in (("plant", {"connection": CREDS}, True), ("finance", {}, False)):
            job_id = self.submit(port, dict({"workspace_id": WS_ADMIN, "name": "Cancelled " + port}, **extra))
            self.kill_worker_in("binding", job_id)
            status, _, doc = self.stack.json("POST", "/api/jobs/%s/cancel" % job_id, token="alice",
                                             headers={"Content-Type": "application/json"},
                                             body=json.dumps({"cleanup": True}))
            self.assertIn(status, (200, 202), doc)
            self.start_worker()
            doc = self.wait_job(job_id)
            self.assertEqual(doc["state"], "cancelled", doc)
            cleanup = doc["result"]["cleanup"]
            self.assertTrue(cleanup["removed"]["semantic_model_id"], doc)
            if made:
                self.assertTrue(cleanup["removed"]["connection_id"], doc)
                self.assertIsNone(cleanup["kept"]["connection_id"])
                self.assertNotIn(cleanup["removed"]["connection_id"], self.gw_sources())
            else:
                self.assertIsNone(cleanup["removed"]["connection_id"])
                self.assertEqual(cleanup["kept"]["connection_id"], DS_FINANCE)
                self.assertIn(DS_FINANCE, self.gw_sources())
            self.stop_workers()

    def test_08_the_job_chooses_when_power_bi_did_not_answer_the_request(self):
        # the request check gets a 503 from Power BI's gateway list: the job is queued undecided
        self.emu.control("POST", "faults", {"path_prefix": "/powerbi/v1.0/myorg/gateways",
                                            "error_rate": {"status": 503, "percent": 100}})
        job_id = self.submit("finance", {"workspace_id": WS_ADMIN, "name": "Finance (undecided)"})
        with self.db() as db:
            inp = json.loads(db.execute("SELECT input FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])
        self.assertTrue(inp["gateway"])
        self.assertNotIn("gateway_datasource_id", inp)
        self.emu.control("DELETE", "faults")
        self.start_worker()
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assert_bound(doc["result"], DS_FINANCE)

    def test_09_unpublish_deletes_only_a_data_source_the_publish_made(self):
        self.start_worker()
        made = self.wait_job(self.submit("plant", {"workspace_id": WS_ADMIN, "name": "Plant (unpublished)",
                                                   "connection": CREDS}))["result"]
        reused = self.wait_job(self.submit("finance", {"workspace_id": WS_ADMIN, "name": "Finance (unpublished)"}))
        reused = reused["result"]
        for res, gone in ((made, True), (reused, False)):
            status, _, doc = self.stack.json("DELETE", "/api/published-models/" + res["id"], token="alice")
            self.assertEqual(status, 202, doc)
            doc = self.wait_job(doc["job_id"])
            self.assertEqual(doc["state"], "succeeded", doc)
            self.assertEqual(doc["result"]["removed"]["connection_id"], res["connection_id"] if gone else None, doc)
            self.assertEqual(res["connection_id"] in self.gw_sources(), not gone)
        self.assertIn(DS_FINANCE, self.gw_sources())

    def test_10_other_organization_404(self):
        for path in ("/api/powerbi/gateways?output_port=" + self.ports["finance"],):
            self.assertError(self.stack.json("GET", path, token="carol"), 404, "not_found")
        self.assertError(self.publish("finance", {"workspace_id": WS_ADMIN, "name": "Globex"}, user="carol"), 404,
                         "not_found")

    # ---- the Power BI dialog without JavaScript (/output-ports/{id}/power-bi) ------------------
    def modal(self, port, user="alice"):
        """The dialog's page for user (dave signs in with his API token: he has no password)."""
        path = "/output-ports/%s/power-bi" % self.ports[port]
        if user in self.stack.passwords:
            status, _, body = self.page(path, user)
        else:
            status, _, data = self.stack.request("GET", path, headers=HTML, token=user)
            body = data.decode("utf-8")
        self.assertEqual(status, 200, body[:500])
        return body

    def test_11_the_dialog_offers_gateway_data_sources(self):
        body = self.modal("finance")
        self.assertIn("Gateway data source", body)
        self.assertIn('value="ds:%s:%s"' % (GATEWAY, DS_FINANCE), body)
        self.assertNotIn('value="ds:%s:%s"' % (GATEWAY, DS_SQL), body, "only data sources of the port's server")
        self.assertIn('value="new:%s"' % GATEWAY, body)
        self.assertIn("Create a new data source on Contoso on-premises gateway", body)
        self.assertNotIn('name="connection"', body, "no cloud connection for an on-premises server")
        # mill: no data source points at it; alice administers the gateway, so she may create one
        body = self.modal("mill")
        self.assertIn("No gateway data source you may use points at", body)
        self.assertIn("create one on a gateway you administer", body)
        # dave may use no gateway: told whom to ask, nothing to choose
        body = self.modal("finance", user="dave")
        self.assertRegex(body, "ask a gateway(&#39;|&#x27;|')s admin")
        self.assertNotIn('name="gateway"', body)
        # the cloud server keeps its cloud connections
        self.assertIn("Create a new connection", self.modal("cloud"))

    def test_12_the_dialog_publishes_through_a_gateway(self):
        self.start_worker()
        before = self.gw_counters()
        path = "/output-ports/%s/power-bi" % self.ports["finance"]
        status, hdrs, body = self.post(path, {"workspace_id": WS_ADMIN, "name": "Finance (dialog)",
                                              "gateway": "ds:%s:%s" % (GATEWAY, DS_FINANCE)})
        self.assertEqual(status, 303, body[:500])
        doc = self.wait_job(hdrs["location"].rsplit("/", 1)[1])
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assert_bound(doc["result"], DS_FINANCE)
        # a new data source with the source's credential fields
        path = "/output-ports/%s/power-bi" % self.ports["mill"]
        status, hdrs, body = self.post(path, {"workspace_id": WS_ADMIN, "name": "Mill (dialog)",
                                              "gateway": "new:" + GATEWAY, "credential_type": "basic",
                                              "username": CREDS["username"], "password": CREDS["password"]})
        self.assertEqual(status, 303, body[:500])
        doc = self.wait_job(hdrs["location"].rsplit("/", 1)[1])
        self.assertEqual(doc["state"], "succeeded", doc)
        made = self.gw_sources()[doc["result"]["connection_id"]]
        self.assertEqual(made["credential_sha256"], hashlib.sha256(CREDS["password"].encode()).hexdigest())
        after = self.gw_counters()
        self.assertEqual(after["gateway_datasources_created"] - before["gateway_datasources_created"], 1)
        self.assertEqual(after["connections_created"], before["connections_created"])
        # nothing chosen, or credentials missing: the dialog again with the message, never the secret
        for fields, message in (({}, "Choose a gateway data source, or create one on a gateway."),
                                ({"gateway": "new:" + GATEWAY, "password": "typed-secret"}, "A new connection needs")):
            status, _, body = self.post(path, dict({"workspace_id": WS_ADMIN, "name": "Mill (refused)"}, **fields))
            self.assertEqual(status, 400, body[:500])
            self.assertIn(message, body)
            self.assertNotIn("typed-secret", body)


if __name__ == "__main__":
    harness.main()
