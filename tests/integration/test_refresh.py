"""Semantic-model refreshes through nginx + pbiport worker + the emulator: models imported by an
integration (refreshed with its service principal), success, failure with Power BI's message, a
wait timeout that says "still running", joining a refresh already running in Power BI (and a
second request while one is queued), history merged with Power BI's, schedules, no credentials,
and data_product.updated events that refresh the two models downstream of a data product once
each (the lineage comes from a real import: output port -> data source -> semantic model)."""
import copy
import json
import unittest

import harness

DEMO = harness.tenants_fixture()
TENANT = DEMO["tenants"][0]["id"]
SP_ID, SP_SECRET = harness.app_credentials(DEMO["tenants"][0], 1)
KEY = "77" * 32
SALES, CUSTOMER360, FINANCE = ("b0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002",
                               "b0000000-0000-4000-8000-000000000003")


def tenant_fixture():
    """demo.json with the ingestion service principal allowed to refresh (Contributor)."""
    fx = copy.deepcopy(DEMO)
    for ws in fx["tenants"][0]["workspaces"]:
        for role in ws.get("roles", []):
            if role["principal"] == SP_ID:
                role["role"] = "Contributor"
    return fx


def contract():
    """orders.odcs.yaml pointed at the Snowflake account and warehouse the Sales and Finance KPIs
    models read (Customer 360 reads Databricks)."""
    text = harness.fixture("orders.odcs.yaml")
    return (text.replace("acme-xy12345", "contoso-xy12345").replace("REPORTING_WH", "ANALYTICS_WH")
            .replace("urn:pbiport:it:orders", "urn:pbiport:it:refresh-orders"))


class Refresh(harness.EmulatorStackTestCase):
    SERVER = "nginx"
    FCGI_PROCS = 2
    EMU_ENV = dict(APPLICATION_INGESTIONS_ENABLED="true", APPLICATION_ENCRYPTION_KEYS=KEY,
                   APPLICATION_SECURITY_REMEMBERME_KEY="88" * 32, PBIPORT_SCAN_POLL_MS="100",
                   PBIPORT_SCAN_POLL_MAX_MS="400", PBIPORT_REFRESH_POLL_MS="200")

    @classmethod
    def set_up_stack(cls):
        """Imports the models to refresh."""
        cls.load_tenants_aged(tenant_fixture())
        status, _, dp = cls.stack.import_contract(contract())
        assert status == 201, (status, dp)
        cls.product_id = dp["id"]
        status, _, integ = cls.stack.send_json("POST", "/api/integrations", {
            "name": "prod", "type": "powerbi", "tenant_id": TENANT, "client_id": SP_ID, "client_secret": SP_SECRET},
            token="alice")
        assert status == 201, (status, integ)
        status, _, run = cls.stack.json("POST", "/api/integrations/%s/runs" % integ["id"], token="alice")
        assert status == 202, (status, run)
        cls.stack.cli("worker", "--once", "--lease-seconds", "5")
        status, _, doc = cls.stack.json("GET", "/api/assets?type=semantic_model", token="alice")
        assert status == 200, doc
        cls.models = {a["powerbi_id"]: a["id"] for a in doc["assets"]}
        assert set(cls.models) >= {SALES, CUSTOMER360, FINANCE}, cls.models

    def setUp(self):
        self.emu.control("POST", "advance")   # finish whatever still runs
        db = self.stack.db()
        db.execute("DELETE FROM jobs WHERE kind = 'refresh'")
        db.execute("DELETE FROM refresh_schedules")
        db.commit()
        db.close()

    # ---- helpers -----------------------------------------------------------------------------
    def call(self, method, path, user="alice", body=None):
        return self.stack.send_json(method, path, body, token=user)

    def plan(self, dataset, outcome="Completed", duration=1, **extra):
        body = {"dataset_id": dataset, "outcome": outcome, "duration_s": duration}
        body.update(extra)
        self.emu.control("POST", "refresh-plan", body)

    def refresh(self, dataset, body=None, user="alice"):
        status, _, doc = self.call("POST", "/api/semantic-models/%s/refreshes" % self.models[dataset], user=user,
                                   body=body if body is not None else {})
        self.assertEqual(status, 202, doc)
        return doc

    def worker_once(self):
        rc, out, err = self.stack.cli("worker", "--once", "--lease-seconds", "5", check=False)
        self.assertEqual(rc, 0, err)

    def job(self, job_id, user="alice"):
        status, _, doc = self.call("GET", "/api/jobs/" + job_id, user=user)
        self.assertEqual(status, 200, doc)
        return doc

    def pbi_history(self, dataset):
        for m in self.emu.state("models")["models"]:
            if m["id"] == dataset:
                return m["refreshes"]
        raise AssertionError(dataset)

    def counter(self, name):
        return self.emu.state("counters")["counters"].get(name, 0)

    # ---- tests ---------------------------------------------------------------------------------
    def test_success_tracks_its_own_refresh(self):
        self.plan(SALES, "Completed", 1)
        doc = self.refresh(SALES)
        self.assertFalse(doc["joined"])
        self.worker_once()
        job = self.job(doc["job_id"])
        self.assertEqual(job["state"], "succeeded", job)
        res = job["result"]
        self.assertEqual(res["status"], "Completed")
        newest = self.pbi_history(SALES)[0]
        self.assertEqual(res["request_id"], newest["requestId"])
        self.assertTrue(res["start"] and res["end"], res)
        self.assertGreaterEqual(res["duration_s"], 0)
        self.assertIsNone(res["error"])
        # history: ours merged with Power BI's
        status, _, hist = self.call("GET", "/api/semantic-models/%s/refreshes" % self.models[SALES], user="bob")
        self.assertEqual(status, 200, hist)
        self.assertTrue(hist["powerbi_history"], hist)
        mine = [e for e in hist["refreshes"] if e.get("job_id") == doc["job_id"]]
        self.assertEqual(len(mine), 1, hist)
        self.assertEqual(sorted(mine[0]["sources"]), ["pbiport", "powerbi"])
        self.assertEqual(mine[0]["status"], "Completed")
        self.assertEqual(mine[0]["trigger"], "manual")

    def test_enhanced_refresh_options_reach_power_bi(self):
        self.plan(SALES, "Completed", 1)
        doc = self.refresh(SALES, {"type": "full", "commitMode": "transactional", "maxParallelism": 2,
                                   "retryCount": 1, "timeout": "02:00:00", "applyRefreshPolicy": False,
                                   "effectiveDate": "2026-11-01",
                                   "objects": [{"table": "Sales", "partition": "Sales"}, {"table": "Date"}]})
        self.worker_once()
        job = self.job(doc["job_id"])
        self.assertEqual(job["state"], "succeeded", job)
        newest = self.pbi_history(SALES)[0]
        self.assertEqual(job["result"]["request_id"], newest["requestId"])
        self.assertEqual(newest["refreshType"], "ViaEnhancedApi")
        # what Power BI received: the options in its own spelling, and no notifyOption
        self.assertEqual(newest["request"], {
            "type": "Full", "commitMode": "Transactional", "maxParallelism": 2, "retryCount": 1,
            "timeout": "02:00:00", "applyRefreshPolicy": False, "effectiveDate": "2026-11-01",
            "objects": [{"table": "Sales", "partition": "Sales"}, {"table": "Date"}]})

    def test_enhanced_refresh_on_shared_capacity_is_refused_at_submission(self):
        # Finance KPIs lives in a workspace on shared capacity, where Power BI runs no enhanced refresh
        started = self.counter("refreshes_started")
        status, _, doc = self.call("POST", "/api/semantic-models/%s/refreshes" % self.models[FINANCE],
                                   body={"type": "Full", "objects": [{"table": "KPIs"}]})
        self.assertEqual(status, 409, doc)
        self.assertEqual(doc["error"]["code"], "enhanced_refresh_needs_capacity")
        self.assertIn("workspace 'Finance' is on shared capacity", doc["error"]["message"])
        self.assertIn("standard refresh", doc["error"]["message"])
        self.assertEqual(self.counter("refreshes_started"), started)
        db = self.stack.db()
        queued = db.execute("SELECT COUNT(*) FROM jobs WHERE kind = 'refresh'").fetchone()[0]
        db.close()
        self.assertEqual(queued, 0, "nothing queued")
        # the emulator refuses it the same way Power BI does
        tok = self.emu.sp_token(client_id=SP_ID, secret=SP_SECRET, tenant=TENANT)
        ws = DEMO["tenants"][0]["workspaces"][1]["id"]
        r = self.emu.call("POST", "/powerbi/v1.0/myorg/groups/%s/datasets/%s/refreshes" % (ws, FINANCE),
                          body={"type": "Full"}, token=tok)
        self.assertEqual(r.status, 400, r)
        self.assertIn("shared capacit", r.json["error"]["message"])
        # a standard refresh of it is fine
        self.plan(FINANCE, "Completed", 1)
        doc = self.refresh(FINANCE)
        self.worker_once()
        self.assertEqual(self.job(doc["job_id"])["result"]["status"], "Completed")

    def test_failure_carries_power_bi_message(self):
        self.plan(FINANCE, "Failed", 1, error_code="ModelRefreshFailed_CredentialsNotSpecified",
                  error_description="The credentials provided for the Snowflake source are invalid.")
        doc = self.refresh(FINANCE)
        self.worker_once()
        res = self.job(doc["job_id"])["result"]
        self.assertEqual(res["status"], "Failed")
        self.assertIn("credentials provided for the Snowflake source are invalid", res["error"])
        self.assertIn("ModelRefreshFailed_CredentialsNotSpecified", res["error"])

    def test_timeout_says_still_running(self):
        self.plan(SALES, "Completed", 600)
        doc = self.refresh(SALES, {"wait_timeout": 2})
        self.worker_once()
        job = self.job(doc["job_id"])
        self.assertEqual(job["state"], "succeeded", job)
        res = job["result"]
        self.assertEqual(res["status"], "Unknown")
        self.assertTrue(res["still_running"])
        self.assertIn("still running in Power BI", res["message"])
        self.assertEqual(res["request_id"], self.pbi_history(SALES)[0]["requestId"])

    def test_joins_a_running_refresh(self):
        self.plan(FINANCE, "Completed", 600)
        tok = self.emu.sp_token(client_id=SP_ID, secret=SP_SECRET, tenant=TENANT)
        ws = DEMO["tenants"][0]["workspaces"][1]["id"]
        r = self.emu.call("POST", "/powerbi/v1.0/myorg/groups/%s/datasets/%s/refreshes" % (ws, FINANCE),
                          body={"notifyOption": "NoNotification"}, token=tok)
        self.assertEqual(r.status, 202, r)
        running = self.pbi_history(FINANCE)[0]["requestId"]
        started = self.counter("refreshes_started")
        first = self.refresh(FINANCE, {"wait_timeout": 3})
        second = self.refresh(FINANCE)            # queued already: the same job
        self.assertEqual(second["job_id"], first["job_id"])
        self.assertTrue(second["joined"])
        self.worker_once()
        res = self.job(first["job_id"])["result"]
        self.assertTrue(res["joined"], res)
        self.assertEqual(res["request_id"], running)
        self.assertEqual(self.counter("refreshes_started"), started, "no second refresh may be started")

    def test_events_refresh_downstream_models_once_each(self):
        self.plan("*", "Completed", 1)
        started = self.counter("refreshes_started")
        # two events for the same product arrive together, then a third on its own
        status, _, doc = self.call("POST", "/api/events", user="bob", body={"events": [
            {"type": "data_product.updated", "data_product_id": self.product_id},
            {"type": "data_product.updated", "data_product_id": self.product_id}]})
        self.assertEqual(status, 202, doc)
        refs = sorted(j["model_ref"] for j in doc["jobs"])
        self.assertEqual(refs, sorted([self.models[SALES], self.models[FINANCE]]), doc)
        status, _, again = self.call("POST", "/api/events", user="bob", body={
            "type": "data_product.updated", "data_product_id": self.product_id})
        self.assertEqual(status, 202, again)
        self.assertEqual(sorted(j["job_id"] for j in again["jobs"]), sorted(j["job_id"] for j in doc["jobs"]))
        self.assertTrue(all(j["joined"] for j in again["jobs"]))
        self.worker_once()
        for j in doc["jobs"]:
            self.assertEqual(self.job(j["job_id"], user="alice")["result"]["status"], "Completed")
        self.assertEqual(self.counter("refreshes_started") - started, 2)
        # only owners or API tokens send events; unknown products are 404
        status, _, err = self.stack.json("POST", "/api/events", body=json.dumps(
            {"type": "data_product.updated", "data_product_id": self.product_id}),
            headers={"Content-Type": "application/json"}, basic="bob")
        self.assertEqual(status, 403, err)
        status, _, err = self.call("POST", "/api/events", body={"type": "data_product.updated",
                                                                "data_product_id": "nope"})
        self.assertEqual(status, 404, err)
        status, _, err = self.call("POST", "/api/events", body={"type": "data_product.deleted",
                                                                "data_product_id": self.product_id})
        self.assertEqual(status, 400, err)

    def test_schedule(self):
        path = "/api/semantic-models/%s/refresh-schedule" % self.models[SALES]
        status, _, doc = self.call("PUT", path, body={"schedule": "*/5 * * * *"})
        self.assertEqual(status, 400, doc)
        self.assertIn("shortest allowed interval", doc["error"]["message"])
        # it names what the caller sent, a refresh schedule, and why refreshes have a floor
        self.assertIn("refresh schedule '*/5 * * * *'", doc["error"]["message"])
        self.assertNotIn("scan", doc["error"]["message"])
        status, _, doc = self.call("PUT", path, body={"schedule": "@daily"})
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["next_run_at"].endswith("T00:00:00.000Z"), doc)
        # make it due now: the worker's tick queues a refresh and runs it
        db = self.stack.db()
        db.execute("UPDATE refresh_schedules SET next_run_at = '2000-01-01T00:00:00.000Z'")
        db.commit()
        db.close()
        self.plan(SALES, "Completed", 1)
        self.worker_once()
        status, _, hist = self.call("GET", "/api/semantic-models/%s/refreshes" % self.models[SALES])
        sched = [e for e in hist["refreshes"] if e.get("trigger") == "schedule"]
        self.assertEqual(len(sched), 1, hist)
        self.assertEqual(sched[0]["status"], "Completed")
        status, _, doc = self.call("GET", path)
        self.assertGreater(doc["next_run_at"], "2001")
        status, _, doc = self.call("PUT", path, body={"schedule": None})
        self.assertEqual((status, doc["schedule"]), (200, None), doc)
        # an empty text does not remove a schedule silently: null or DELETE does
        self.assertEqual(self.call("PUT", path, body={"schedule": "@weekly"})[0], 200)
        status, _, doc = self.call("PUT", path, body={"schedule": ""})
        self.assertEqual((status, doc["error"]["code"]), (400, "bad_request"), doc)
        self.assertIn('{"schedule": null}', doc["error"]["message"])
        self.assertIn("DELETE", doc["error"]["message"])
        self.assertEqual(self.call("GET", path)[2]["schedule"], "@weekly")
        status, _, _ = self.call("DELETE", path)
        self.assertEqual(status, 204)
        self.assertIsNone(self.call("GET", path)[2]["schedule"])
        self.assertEqual(self.call("DELETE", "/api/semantic-models/nope/refresh-schedule")[0], 404)

    def test_bad_requests(self):
        status, _, doc = self.call("POST", "/api/semantic-models/%s/refreshes" % self.models[SALES],
                                   body={"colour": "red"})
        self.assertEqual(status, 400, doc)
        # enhanced-refresh options are checked before anything is queued; the message names the field
        for body, field in (({"type": "Full", "commitMode": "PartialBatch"}, "applyRefreshPolicy"),
                            ({"type": "Everything"}, "type"), ({"objects": [{"partition": "p"}]}, "objects[0].table"),
                            ({"timeout": "25:00:00"}, "timeout"), ({"maxParallelism": 0}, "maxParallelism"),
                            ({"effectiveDate": "2026-02-30"}, "effectiveDate '2026-02-30' is not a calendar date"),
                            ({"type": "Full", "notifyOption": "NoNotification"}, "notifyOption")):
            status, _, doc = self.call("POST", "/api/semantic-models/%s/refreshes" % self.models[SALES], body=body)
            self.assertEqual(status, 400, (body, doc))
            self.assertIn(field, doc["error"]["message"], body)
        status, _, doc = self.call("POST", "/api/semantic-models/%s/refreshes" % self.models[SALES],
                                   body={"notifyOption": "MailOnCompletion"})
        self.assertEqual(status, 400, doc)
        self.assertIn("NoNotification", doc["error"]["message"])
        status, _, doc = self.call("POST", "/api/semantic-models/nope/refreshes", body={})
        self.assertEqual(status, 404, doc)
        status, _, doc = self.call("POST", "/api/semantic-models/%s/refreshes" % self.models[SALES], user="carol",
                                   body={})
        self.assertEqual(status, 404, doc)

    def test_no_credentials_is_400(self):
        db = self.stack.db()
        db.execute("UPDATE assets SET integration_id = NULL WHERE id = ?", (self.models[CUSTOMER360],))
        db.commit()
        db.close()
        status, _, doc = self.call("POST", "/api/semantic-models/%s/refreshes" % self.models[CUSTOMER360], body={})
        self.assertEqual(status, 400, doc)
        self.assertEqual(doc["error"]["code"], "no_credentials")
        # the message names the model and its workspace, and why nobody can refresh it
        self.assertIn("semantic model 'Customer 360' in workspace '", doc["error"]["message"])
        self.assertIn("the integration that imported it was deleted", doc["error"]["message"])


if __name__ == "__main__":
    harness.main()
