"""The life of a published model through nginx + pbiport worker + the emulator (docs/lifecycle.md):
GET /api/published-models/{id} (other org 404), unpublish (the model and the connection pbiport
made for it deleted, the agreement terminated, the consumer product retired, the port page and
the port's model list no longer list it, the lineage edge kept), keep_model (detached) and
keep_connection, who may (a member who did not publish: 403), auto_update through PATCH, crash
safety of the unpublish job (kill -9 of the worker inside each phase); update in place (a column
added to the contract: update_available, the dry run lists exactly it, the update keeps the model
id and what an analyst added in Power BI), breaking changes and blocking references (409 naming
them), drift (power_bi, contract), the daily drift check and GET /api/drift, auto_update additive,
and crash safety of the update job (kill -9 in each phase: one model, updated once)."""
import time
import unittest

from publish_stack import BASIC, JOB_WAIT_S, SF_CONNECTION, WS_ADMIN, PublishStackTestCase


UPDATE_PHASES = ("reading", "diffing", "updating", "rebinding", "refreshing")


def contract(cid, columns, tables=None):
    """An ODCS contract (YAML) on the "analytics" Snowflake server (SF_CONNECTION matches it):
    table orders with columns [(name, logicalType)], plus tables {name: columns}."""
    tables = dict(tables or {})
    lines = ["apiVersion: v3.1.0", "kind: DataContract", "id: urn:datacontract:test:%s" % cid,
             "name: Lifecycle %s" % cid, "version: 1.0.0", "status: active", "servers:", "  - server: analytics",
             "    type: snowflake", "    host: CONTOSO-XY12345.snowflakecomputing.com", "    database: SALES",
             "    schema: PUBLIC", "    warehouse: ANALYTICS_WH", "schema:"]
    for name, cols in [("orders", columns)] + sorted(tables.items()):
        lines += ["  - name: %s" % name, "    physicalName: %s" % name.upper(), "    physicalType: table",
                  "    properties:"]
        for col, typ in cols:
            lines += ["      - name: %s" % col, "        physicalName: %s" % col.upper(), "        logicalType: %s" % typ]
    return "\n".join(lines) + "\n"


V1 = [("order_id", "integer"), ("amount", "number"), ("note", "string")]


class Lifecycle(PublishStackTestCase):

    # ---- helpers -------------------------------------------------------------------------------
    def publish_model(self, name, port="fresh", connection=None):
        """port: a server name of the stack's contract, or a port id."""
        """Publishes port into WS_ADMIN as alice: the job's result (with the published model id)."""
        body = {"workspace_id": WS_ADMIN, "name": name}
        body.update({"connection_id": connection} if connection else {"connection": BASIC})
        if not self.workers:
            self.start_worker()
        doc = self.wait_job(self.submit(port, body))
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertTrue(doc["result"]["id"], doc)
        return doc["result"]

    def model(self, pm_id, user="alice"):
        status, _, doc = self.stack.json("GET", "/api/published-models/" + pm_id, token=user)
        self.assertEqual(status, 200, doc)
        return doc

    def unpublish(self, pm_id, body=None, user="alice"):
        return self.stack.send_json("DELETE", "/api/published-models/" + pm_id, body, token=user)

    def unpublish_job(self, pm_id, body=None, user="alice"):
        status, headers, doc = self.unpublish(pm_id, body, user)
        self.assertEqual(status, 202, doc)
        self.assertEqual(doc["status_url"], "/api/jobs/" + doc["job_id"])
        self.assertEqual(headers.get("location"), doc["status_url"])
        return doc["job_id"]

    def unpublished(self, job_id):
        """Waits for unpublish job job_id, which must succeed: its result."""
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "succeeded", doc)
        return doc["result"]

    def in_power_bi(self, res):
        """What of the publish res is still in Power BI: (its model, its connection)."""
        return res["semantic_model_id"] in self.emu_model_ids(), res["connection_id"] in self.emu_connection_ids()

    def agreement(self, agreement_id):
        status, _, ag = self.stack.json("GET", "/api/agreements/" + agreement_id, token="alice")
        self.assertEqual(status, 200, ag)
        return ag

    def emu_model_ids(self):
        return {m["id"] for m in self.emu_models()}

    def emu_connection_ids(self):
        return {c["id"] for c in self.emu_connections()}

    def port_models(self, port="fresh"):
        status, _, doc = self.stack.json("GET", "/api/output-ports/%s/powerbi-models" % self.ports[port], token="alice")
        self.assertEqual(status, 200, doc)
        return doc["models"]

    def product_with(self, cid, columns, tables=None):
        """Imports (or re-imports) contract cid: the product's analytics port id."""
        status, _, doc = self.stack.import_contract(contract(cid, columns, tables), token="alice")
        self.assertIn(status, (200, 201), doc)
        self.product_ids = dict(getattr(self, "product_ids", {}), **{cid: doc["id"]})
        return [p["id"] for p in doc["output_ports"] if p["name"] == "analytics"][0]

    def product_page(self, cid):
        status, _, page = self.stack.request("GET", "/data-products/" + self.product_ids[cid], token="alice")
        self.assertEqual(status, 200)
        return page.decode()

    def published(self, cid, columns=V1, tables=None):
        """A model published from a fresh contract cid: (port id, the publish's result)."""
        port = self.product_with(cid, columns, tables)
        return port, self.publish_model("Lifecycle " + cid, port=port, connection=SF_CONNECTION)

    def update(self, pm_id, body=None, user="alice"):
        return self.stack.send_json("POST", "/api/published-models/%s/update" % pm_id, body if body is not None else {},
                                    token=user)

    def live(self, model_id):
        """The emulator's model: its parts joined as one text, and the model."""
        m = [m for m in self.emu_models(parts=True) if m["id"] == model_id][0]
        return "\n".join(m["parts"].values()), m

    def definitions_updated(self):
        return self.emu.state("counters")["counters"].get("definitions_updated", 0)

    def add_measure(self, model_id, table, name, expression):
        self.emu.control("POST", "models/%s/edit" % model_id,
                         {"add_measure": {"table": table, "name": name, "expression": expression}})

    def changes(self, diff):
        return sorted((c["object"], c.get("table"), c["name"], c["change"]) for c in diff["changes"])

    # ---- reading -------------------------------------------------------------------------------
    def test_01_get_published_model(self):
        res = self.publish_model("Lifecycle read")
        doc = self.model(res["id"])
        self.assertEqual(doc["id"], res["id"])
        self.assertEqual(doc["state"], "active")
        self.assertEqual((doc["semantic_model_id"], doc["workspace_id"], doc["name"]),
                         (res["semantic_model_id"], WS_ADMIN, "Lifecycle read"))
        self.assertEqual(doc["output_port"]["id"], self.ports["fresh"])
        self.assertEqual(doc["output_port"]["data_product_id"], self.product["id"])
        self.assertEqual(doc["contract"]["version"], "1.0.0")
        self.assertEqual(len(doc["contract"]["hash"]), 64)
        self.assertEqual(doc["connection"], {"id": res["connection_id"], "created_by_pbiport": True})
        self.assertEqual(doc["publisher"]["name"], "alice")
        self.assertEqual(doc["auto_update"], "off")
        self.assertFalse(doc["update_available"])
        self.assertIsNone(doc["drift"])
        self.assertTrue(doc["definition_kept"])
        self.assertTrue(doc["web_url"])
        # the port's list shows the same id; a member of the organization reads it too
        self.assertIn(res["id"], [m["id"] for m in self.port_models()])
        self.assertEqual(self.model(res["id"], user="bob")["id"], res["id"])
        # another organization's model is not found
        self.assertError(self.stack.json("GET", "/api/published-models/" + res["id"], token="carol"), 404, "not_found")
        self.assertError(self.stack.json("GET", "/api/published-models/nope", token="alice"), 404, "not_found")

    def test_02_patch_auto_update(self):
        res = self.publish_model("Lifecycle auto")
        path = "/api/published-models/" + res["id"]
        status, _, doc = self.stack.send_json("PATCH", path, {"auto_update": "additive"}, token="alice")
        self.assertEqual((status, doc.get("auto_update")), (200, "additive"), doc)
        self.assertError(self.stack.send_json("PATCH", path, {"auto_update": "always"}, token="alice"), 400,
                         "bad_request")
        self.assertError(self.stack.send_json("PATCH", path, {"auto": "off"}, token="alice"), 400, "bad_request")
        self.assertError(self.stack.send_json("PATCH", path, {"auto_update": "off"}, token="bob"), 403, "forbidden")
        self.assertError(self.stack.send_json("PATCH", path, {"auto_update": "off"}, token="carol"), 404, "not_found")
        self.assertEqual(self.model(res["id"])["auto_update"], "additive")

    # ---- unpublish -----------------------------------------------------------------------------
    def test_03_unpublish_removes_model_connection_agreement(self):
        res = self.publish_model("Lifecycle gone")
        pm = res["id"]
        self.assertIn(res["semantic_model_id"], self.emu_model_ids())
        self.assertIn(res["connection_id"], self.emu_connection_ids())
        # a member who did not publish it may not; another organization does not see it
        self.assertError(self.unpublish(pm, user="bob"), 403, "forbidden")
        self.assertError(self.unpublish(pm, user="carol"), 404, "not_found")
        self.assertError(self.unpublish(pm, {"keep_model": "yes"}), 400, "bad_request")
        self.assertError(self.unpublish(pm, {"keep": True}), 400, "bad_request")
        result = self.unpublished(self.unpublish_job(pm))
        self.assertEqual(result["state"], "unpublished")
        self.assertEqual(result["removed"], {"semantic_model_id": res["semantic_model_id"],
                                             "connection_id": res["connection_id"]})
        self.assertEqual(self.in_power_bi(res), (False, False))
        got = self.model(pm)
        self.assertEqual(got["state"], "unpublished")
        self.assertEqual(got["unpublished_by"]["name"], "alice")
        self.assertTrue(got["unpublished_at"])
        self.assertEqual(got["consumer_data_product"]["status"], "retired")
        # the agreement ended, saying who ended it and when
        ag = self.agreement(res["agreement_id"])
        self.assertEqual(ag["state"], "terminated")
        self.assertEqual(ag["terminated_by"]["user_id"], self.user_id("alice"))
        self.assertTrue(ag["terminated_at"])
        self.assertEqual(ag["consumer"]["status"], "retired")
        # the port's list and page no longer list it; the lineage edge stays as history
        self.assertNotIn(pm, [m["id"] for m in self.port_models()])
        status, _, page = self.stack.request("GET", "/data-products/" + self.product["id"], token="alice")
        self.assertEqual(status, 200)
        self.assertNotIn("Lifecycle gone", page.decode())
        status, _, lin = self.stack.json("GET", "/api/lineage?node=%s&depth=1" % self.ports["fresh"], token="alice")
        self.assertIn(res["consumer_data_product_id"], [n["id"] for n in lin["nodes"]])
        # it is history now: nothing more is done to it
        self.assertError(self.unpublish(pm), 409, "model_unpublished")

    def test_04_keep_model_detaches(self):
        res = self.publish_model("Lifecycle kept")
        result = self.unpublished(self.unpublish_job(res["id"], {"keep_model": True}))
        self.assertEqual(result["state"], "detached")
        self.assertEqual(result["kept"], {"semantic_model_id": res["semantic_model_id"],
                                          "connection_id": res["connection_id"]})
        # the model stays in Power BI, and so does its connection (the model still uses it)
        self.assertEqual(self.in_power_bi(res), (True, True))
        self.assertEqual(self.model(res["id"])["state"], "detached")
        self.assertNotIn(res["id"], [m["id"] for m in self.port_models()])
        self.assertEqual(self.agreement(res["agreement_id"])["state"], "terminated")

    def test_05_keep_connection(self):
        res = self.publish_model("Lifecycle keep conn")
        result = self.unpublished(self.unpublish_job(res["id"], {"keep_connection": True}))
        self.assertEqual(self.in_power_bi(res), (False, True))
        self.assertEqual(result["kept"]["connection_id"], res["connection_id"])

    def test_06_reused_connection_is_never_deleted(self):
        res = self.publish_model("Lifecycle reused", port="analytics", connection=SF_CONNECTION)
        result = self.unpublished(self.unpublish_job(res["id"]))
        self.assertNotIn(res["semantic_model_id"], self.emu_model_ids())
        self.assertIn(SF_CONNECTION, self.emu_connection_ids())
        self.assertEqual(result["kept"]["connection_id"], SF_CONNECTION)

    def test_08_unpublish_twice_returns_the_job_in_flight(self):
        res = self.publish_model("Lifecycle twice")
        self.stop_workers()
        first = self.unpublish_job(res["id"])
        status, _, doc = self.unpublish(res["id"])
        self.assertEqual((status, doc["job_id"], doc["existing"]), (202, first, True))
        self.assertEqual(self.model(res["id"])["state"], "unpublishing")
        self.start_worker()
        self.assertEqual(self.wait_job(first)["state"], "succeeded")

    def _crash_unpublish_in(self, phase):
        res = self.publish_model("Crash unpublish " + phase)
        self.stop_workers()
        job_id = self.unpublish_job(res["id"])
        self.kill_worker_in(phase, job_id)
        self.start_worker()
        self.unpublished(job_id)
        self.assertEqual(self.in_power_bi(res), (False, False))
        self.assertEqual(self.model(res["id"])["state"], "unpublished")
        self.assertEqual(self.agreement(res["agreement_id"])["state"], "terminated")

    def test_09_crash_deleting_model(self):
        self._crash_unpublish_in("deleting_model")

    def test_10_crash_deleting_connection(self):
        self._crash_unpublish_in("deleting_connection")

    def test_11_crash_finalizing(self):
        self._crash_unpublish_in("finalizing")

    # ---- update in place -----------------------------------------------------------------------
    def test_20_added_column_dry_run_then_update_keeps_model_and_measure(self):
        port, res = self.published("upd-add")
        pm, model_id = res["id"], res["semantic_model_id"]
        self.add_measure(model_id, "orders", "Total amount", "SUM(orders[amount])")
        self.assertFalse(self.model(pm)["update_available"])
        # the contract gains a column: the model is marked, the dry run lists exactly it
        self.product_with("upd-add", V1 + [("discount", "number")])
        doc = self.model(pm)
        self.assertTrue(doc["update_available"], doc)
        self.assertEqual(self.changes(doc["update"]), [("column", "orders", "discount", "added")])
        self.assertIn("update available", self.product_page("upd-add"))
        status, _, diff = self.update(pm, {"dry_run": True})
        self.assertEqual(status, 200, diff)
        self.assertEqual(self.changes(diff), [("column", "orders", "discount", "added")])
        self.assertFalse(diff["summary"]["breaking"])
        self.assertIn("Total amount", [k["name"] for k in diff["kept"]])
        self.assertEqual(diff["published_model_id"], pm)
        # the update: same model, the column there, the analyst's measure kept, uploaded once
        before = self.definitions_updated()
        status, _, job = self.update(pm)
        self.assertEqual(status, 202, job)
        done = self.wait_job(job["job_id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual([p["phase"] for p in done["phases"]], list(UPDATE_PHASES))
        self.assertTrue(done["result"]["uploaded"])
        self.assertEqual(self.definitions_updated(), before + 1)
        text, m = self.live(model_id)
        self.assertIn("column discount", text)
        self.assertIn("Total amount", text)
        self.assertEqual(m["workspaceId"], WS_ADMIN)
        self.assertIn(model_id, self.emu_model_ids())
        doc = self.model(pm)
        self.assertEqual((doc["state"], doc["update_available"], doc["semantic_model_id"]), ("active", False, model_id))
        self.assertNotIn("update available", self.product_page("upd-add"))
        self.assertEqual(doc["contract"]["revision"], 2)
        self.assertTrue(doc["updated_at"])
        # the structure changed: a refresh was queued for it
        self.assertTrue(done["result"]["refresh_job_id"])
        # nothing left to do: a dry run lists no change
        status, _, diff = self.update(pm, {"dry_run": True})
        self.assertEqual((status, diff["changes"]), (200, []), diff)

    def test_21_dropping_a_column_a_measure_uses_is_refused_naming_both(self):
        port, res = self.published("upd-block")
        pm, model_id = res["id"], res["semantic_model_id"]
        self.add_measure(model_id, "orders", "Total amount", "SUM(orders[amount])")
        self.product_with("upd-block", [c for c in V1 if c[0] != "amount"])
        before = self.definitions_updated()
        err = self.assertError(self.update(pm), 409, "blocking_reference")
        self.assertIn("Total amount", err["message"])
        self.assertIn("amount", err["message"].replace("Total amount", ""))
        self.assertEqual(self.model(pm)["state"], "active")
        # allow_breaking applies it anyway
        status, _, job = self.update(pm, {"allow_breaking": True, "refresh": False})
        self.assertEqual(status, 202, job)
        done = self.wait_job(job["job_id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertIsNone(done["result"]["refresh_job_id"])
        self.assertEqual(self.definitions_updated(), before + 1)
        self.assertNotIn("column amount", self.live(model_id)[0])

    def test_22_breaking_change_needs_allow_breaking(self):
        port, res = self.published("upd-break")
        self.product_with("upd-break", [("order_id", "integer"), ("amount", "string"), ("note", "string")])
        err = self.assertError(self.update(res["id"]), 409, "breaking_change")
        self.assertIn("amount", err["message"])
        status, _, diff = self.update(res["id"], {"dry_run": True})
        self.assertEqual(status, 200, diff)
        self.assertTrue(diff["summary"]["breaking"])
        self.assertEqual(self.changes(diff), [("column", "orders", "amount", "changed")])

    def test_23_who_may_update(self):
        port, res = self.published("upd-who")
        self.assertError(self.update(res["id"], user="bob"), 403, "forbidden")
        self.assertError(self.update(res["id"], {"dry_run": True}, user="bob"), 403, "forbidden")
        self.assertError(self.update(res["id"], user="carol"), 404, "not_found")
        self.assertError(self.update(res["id"], {"dry_run": "yes"}), 400, "bad_request")
        self.assertError(self.stack.json("GET", "/api/published-models/%s/drift" % res["id"], token="carol"), 404)

    # ---- drift ---------------------------------------------------------------------------------
    def test_24_power_bi_edit_is_power_bi_drift(self):
        port, res = self.published("drift-pbi")
        pm = res["id"]
        status, _, d = self.stack.json("GET", "/api/published-models/%s/drift" % pm, token="alice")
        self.assertEqual(status, 200, d)
        self.assertIsNone(d["cause"], d)
        self.emu.control("POST", "models/%s/edit" % res["semantic_model_id"],
                         {"rename_column": {"table": "orders", "from": "note", "to": "remark"}})
        status, _, d = self.stack.json("GET", "/api/published-models/%s/drift" % pm, token="alice")
        self.assertEqual(status, 200, d)
        self.assertEqual(d["cause"], "power_bi", d)
        self.assertTrue(d["power_bi_changes"])
        self.assertEqual(d["contract_changes"], [])
        # the contract changes too: both
        self.product_with("drift-pbi", V1 + [("discount", "number")])
        status, _, d = self.stack.json("GET", "/api/published-models/%s/drift" % pm, token="alice")
        self.assertEqual(d["cause"], "both", d)
        # the drift is read-only: GET /api/drift lists only what a check recorded
        status, _, listed = self.stack.json("GET", "/api/drift", token="alice")
        self.assertEqual(status, 200, listed)
        self.assertNotIn(pm, [m["id"] for m in listed["models"]])
        # the daily check records it (its due time brought forward)
        with self.db() as db:
            db.execute("UPDATE drift_checks SET next_run_at = '2000-01-01T00:00:00.000Z'")
        if not self.workers:
            self.start_worker()
        deadline = time.monotonic() + JOB_WAIT_S
        while time.monotonic() < deadline:
            status, _, listed = self.stack.json("GET", "/api/drift", token="alice")
            if pm in [m["id"] for m in listed["models"]]:
                break
            time.sleep(0.2)
        got = [m for m in listed["models"] if m["id"] == pm]
        self.assertEqual([m["cause"] for m in got], ["both"], listed)
        self.assertEqual(self.model(pm)["drift"]["cause"], "both")
        self.assertIn("drift: both", self.product_page("drift-pbi"))
        status, _, theirs = self.stack.json("GET", "/api/drift", token="carol")
        self.assertNotIn(pm, [m["id"] for m in theirs["models"]])

    def test_25_auto_update_additive(self):
        port, res = self.published("upd-auto")
        pm = res["id"]
        status, _, doc = self.stack.send_json("PATCH", "/api/published-models/" + pm, {"auto_update": "additive"}, token="alice")
        self.assertEqual(status, 200, doc)
        before = self.definitions_updated()
        if not self.workers:
            self.start_worker()
        self.product_with("upd-auto", V1 + [("discount", "number")])
        deadline = time.monotonic() + JOB_WAIT_S
        while time.monotonic() < deadline and self.model(pm)["contract"]["revision"] != 2:
            time.sleep(0.1)
        doc = self.model(pm)
        self.assertEqual((doc["contract"]["revision"], doc["update_available"]), (2, False), doc)
        self.assertEqual(self.definitions_updated(), before + 1)
        self.assertIn("column discount", self.live(res["semantic_model_id"])[0])
        # a change that removes is not applied automatically: it stays available
        self.product_with("upd-auto", [c for c in V1 if c[0] != "note"] + [("discount", "number")])
        time.sleep(1)
        doc = self.model(pm)
        self.assertTrue(doc["update_available"], doc)
        self.assertEqual(doc["contract"]["revision"], 2)

    def _crash_update_in(self, phase):
        cid = "upd-crash-" + phase
        port, res = self.published(cid)
        self.add_measure(res["semantic_model_id"], "orders", "Total amount", "SUM(orders[amount])")
        self.product_with(cid, V1 + [("discount", "number")])
        self.stop_workers()
        before = self.definitions_updated()
        status, _, job = self.update(res["id"])
        self.assertEqual(status, 202, job)
        self.kill_worker_in(phase, job["job_id"])
        self.start_worker()
        doc = self.wait_job(job["job_id"])
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertEqual(self.definitions_updated() - before, 1, phase)
        models = [m for m in self.emu_models() if m["name"] == "Lifecycle " + cid]
        self.assertEqual([m["id"] for m in models], [res["semantic_model_id"]], phase)
        text = self.live(res["semantic_model_id"])[0]
        self.assertIn("column discount", text)
        self.assertIn("Total amount", text)
        got = self.model(res["id"])
        self.assertEqual((got["state"], got["update_available"]), ("active", False), got)

    def test_30_crash_reading(self):
        self._crash_update_in("reading")

    def test_31_crash_diffing(self):
        self._crash_update_in("diffing")

    def test_32_crash_updating(self):
        self._crash_update_in("updating")

    def test_33_crash_rebinding(self):
        self._crash_update_in("rebinding")

    def test_34_crash_refreshing(self):
        self._crash_update_in("refreshing")

    # ---- the page: /published-models/{id} (plain form posts, no JavaScript) ---------------------
    def model_page(self, pm, user="alice"):
        status, _, body = self.page("/published-models/" + pm, user)
        self.assertEqual(status, 200, body[:500])
        return body

    def act(self, pm, action, user="alice", **fields):
        return self.post("/published-models/" + pm, dict(fields, action=action), user)

    def test_40_page_update_from_the_contract(self):
        port, res = self.published("page-upd")
        pm = res["id"]
        body = self.model_page(pm)
        for text in ("Lifecycle page-upd", "No update is waiting", "Preview update", "Update model",
                     "Check drift now", "Unpublish", 'href="/semantic-models/%s"' % pm):
            self.assertIn(text, body)
        self.assertIn('href="/published-models/%s"' % pm, self.product_page("page-upd"))
        # the contract gains a column: the page shows the waiting update with it
        self.product_with("page-upd", V1 + [("discount", "number")])
        body = self.model_page(pm)
        self.assertIn("update available", body)
        self.assertIn("1 added, 0 removed, 0 changed", body)
        self.assertRegex(body, r"<td>column</td><td>orders</td><th scope=\"row\">discount</th><td>added")
        # Preview update: the dry run against the live model, nothing changes
        before = self.definitions_updated()
        status, _, body = self.act(pm, "preview")
        self.assertEqual(status, 200, body[:500])
        self.assertIn("Preview against the live model", body)
        self.assertIn("discount", body)
        self.assertEqual(self.definitions_updated(), before)
        # Update model: the job's page, the job done, the page without a waiting update
        status, hdrs, body = self.act(pm, "update")
        self.assertEqual(status, 303, body[:500])
        self.assertRegex(hdrs["location"], r"^/jobs/[0-9a-f]{32}$")
        job_id = hdrs["location"].rsplit("/", 1)[1]
        self.assertIn("Update semantic model", self.page(hdrs["location"])[2])
        done = self.wait_job(job_id)
        self.assertEqual((done["kind"], done["state"]), ("update", "succeeded"), done)
        self.assertEqual(self.definitions_updated(), before + 1)
        self.assertIn("No update is waiting", self.model_page(pm))
        # Check drift now: read, nothing recorded as changed
        status, _, body = self.act(pm, "drift")
        self.assertEqual(status, 200, body[:500])
        self.assertIn("No drift: the model is what its contract makes.", body)
        # auto-update: saved, back on the page
        status, hdrs, body = self.act(pm, "auto_update", auto_update="additive")
        self.assertEqual((status, hdrs.get("location")), (303, "/published-models/" + pm), body[:500])
        self.assertEqual(self.model(pm)["auto_update"], "additive")

    def test_41_page_refusals_are_said_on_the_page(self):
        port, res = self.published("page-refuse")
        pm = res["id"]
        self.product_with("page-refuse", [("order_id", "integer"), ("amount", "string"), ("note", "string")])
        before = self.definitions_updated()
        status, _, body = self.act(pm, "update")
        self.assertEqual(status, 409, body[:500])
        self.assertIn("That was not done", body)
        self.assertIn("amount", body)
        self.assertEqual((self.model(pm)["state"], self.definitions_updated()), ("active", before))
        # a member who did not publish it sees it without the buttons and is refused with 403
        body = self.model_page(pm, user="bob")
        self.assertIn("Only the user who published this model", body)
        self.assertNotIn("Preview update", body)
        status, _, body = self.act(pm, "update", user="bob")
        self.assertEqual(status, 403, body[:500])
        self.assertIn("That was not done", body)
        # another organization: not found; an unknown action: 400
        self.assertEqual(self.page("/published-models/" + pm, "carol")[0], 404)
        self.assertEqual(self.act(pm, "update", user="carol")[0], 404)
        self.assertEqual(self.act(pm, "explode")[0], 400)
        # allow_breaking from its checkbox applies it
        status, hdrs, body = self.act(pm, "update", allow_breaking="yes")
        self.assertEqual(status, 303, body[:500])
        done = self.wait_job(hdrs["location"].rsplit("/", 1)[1])
        self.assertEqual(done["state"], "succeeded", done)

    def test_42_page_unpublish(self):
        port, res = self.published("page-unpub")
        pm = res["id"]
        status, hdrs, body = self.act(pm, "unpublish", keep_connection="yes")
        self.assertEqual(status, 303, body[:500])
        job_id = hdrs["location"].rsplit("/", 1)[1]
        self.assertIn("Unpublish", self.page(hdrs["location"])[2])
        self.unpublished(job_id)
        self.assertEqual(self.in_power_bi(res), (False, True))
        body = self.model_page(pm)
        self.assertIn("unpublished", body)
        for gone in ("Preview update", "Check drift now", 'value="unpublish"'):
            self.assertNotIn(gone, body)
        self.assertNotIn('href="/published-models/%s"' % pm, self.product_page("page-unpub"))


if __name__ == "__main__":
    unittest.main()
