"""The life of a published model through nginx + pbiport worker + the emulator (docs/lifecycle.md):
GET /api/published-models/{id} (other org 404), unpublish (the model and the connection pbiport
made for it deleted, the agreement terminated, the consumer product retired, the port page and
the port's model list no longer list it, the lineage edge kept), keep_model (detached) and
keep_connection, who may (a member who did not publish: 403), auto_update through PATCH, and
crash safety of the unpublish job (kill -9 of the worker inside each phase)."""
import json
import os
import time
import unittest

import harness
from publish_stack import BASIC, JOB_WAIT_S, SF_CONNECTION, WS_ADMIN, PublishStackTestCase


JSON = {"Content-Type": "application/json"}


class Lifecycle(PublishStackTestCase):

    # ---- helpers -------------------------------------------------------------------------------
    def publish_model(self, name, port="fresh", connection=None):
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
        return self.stack.json("DELETE", "/api/published-models/" + pm_id, token=user,
                               body=json.dumps(body) if body is not None else None,
                               headers=JSON if body is not None else None)

    def unpublish_job(self, pm_id, body=None, user="alice"):
        status, headers, doc = self.unpublish(pm_id, body, user)
        self.assertEqual(status, 202, doc)
        self.assertEqual(doc["status_url"], "/api/jobs/" + doc["job_id"])
        self.assertEqual(headers.get("location"), doc["status_url"])
        return doc["job_id"]

    def emu_model_ids(self):
        return {m["id"] for m in self.emu_models()}

    def emu_connection_ids(self):
        return {c["id"] for c in self.emu_connections()}

    def port_models(self, port="fresh"):
        status, _, doc = self.stack.json("GET", "/api/output-ports/%s/powerbi-models" % self.ports[port], token="alice")
        self.assertEqual(status, 200, doc)
        return doc["models"]

    def kill_in(self, phase, job_id):
        """Starts a worker that pauses in phase, waits for the pause, kills it with SIGKILL."""
        p, log = self.start_worker(PBIPORT_TEST_PAUSE_PHASE=phase)
        marker = "PBIPORT_TEST_PAUSED %s %s" % (phase, job_id)
        deadline = time.monotonic() + JOB_WAIT_S
        while time.monotonic() < deadline:
            with open(log, errors="replace") as f:
                if marker in f.read():
                    break
            self.assertIsNone(p.poll(), "worker exited before the pause")
            time.sleep(0.05)
        else:
            self.fail("worker never paused in " + phase)
        os.kill(p.pid, 9)
        p.wait()
        self.workers.remove(p)

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
        status, _, doc = self.stack.json("PATCH", path, token="alice", headers=JSON,
                                         body=json.dumps({"auto_update": "additive"}))
        self.assertEqual((status, doc.get("auto_update")), (200, "additive"), doc)
        self.assertError(self.stack.json("PATCH", path, token="alice", headers=JSON,
                                         body=json.dumps({"auto_update": "always"})), 400, "bad_request")
        self.assertError(self.stack.json("PATCH", path, token="alice", headers=JSON,
                                         body=json.dumps({"auto": "off"})), 400, "bad_request")
        self.assertError(self.stack.json("PATCH", path, token="bob", headers=JSON,
                                         body=json.dumps({"auto_update": "off"})), 403, "forbidden")
        self.assertError(self.stack.json("PATCH", path, token="carol", headers=JSON,
                                         body=json.dumps({"auto_update": "off"})), 404, "not_found")
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
        job_id = self.unpublish_job(pm)
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertEqual(doc["result"]["state"], "unpublished")
        self.assertEqual(doc["result"]["removed"], {"semantic_model_id": res["semantic_model_id"],
                                                   "connection_id": res["connection_id"]})
        self.assertNotIn(res["semantic_model_id"], self.emu_model_ids())
        self.assertNotIn(res["connection_id"], self.emu_connection_ids())
        got = self.model(pm)
        self.assertEqual(got["state"], "unpublished")
        self.assertEqual(got["unpublished_by"]["name"], "alice")
        self.assertTrue(got["unpublished_at"])
        self.assertEqual(got["consumer_data_product"]["status"], "retired")
        # the agreement ended, saying who ended it and when
        status, _, ag = self.stack.json("GET", "/api/agreements/" + res["agreement_id"], token="alice")
        self.assertEqual(status, 200, ag)
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
        doc = self.wait_job(self.unpublish_job(res["id"], {"keep_model": True}))
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertEqual(doc["result"]["state"], "detached")
        self.assertEqual(doc["result"]["kept"], {"semantic_model_id": res["semantic_model_id"],
                                                "connection_id": res["connection_id"]})
        # the model stays in Power BI, and so does its connection (the model still uses it)
        self.assertIn(res["semantic_model_id"], self.emu_model_ids())
        self.assertIn(res["connection_id"], self.emu_connection_ids())
        self.assertEqual(self.model(res["id"])["state"], "detached")
        self.assertNotIn(res["id"], [m["id"] for m in self.port_models()])
        status, _, ag = self.stack.json("GET", "/api/agreements/" + res["agreement_id"], token="alice")
        self.assertEqual(ag["state"], "terminated")

    def test_05_keep_connection(self):
        res = self.publish_model("Lifecycle keep conn")
        doc = self.wait_job(self.unpublish_job(res["id"], {"keep_connection": True}))
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertNotIn(res["semantic_model_id"], self.emu_model_ids())
        self.assertIn(res["connection_id"], self.emu_connection_ids())
        self.assertEqual(doc["result"]["kept"]["connection_id"], res["connection_id"])

    def test_06_reused_connection_is_never_deleted(self):
        res = self.publish_model("Lifecycle reused", port="analytics", connection=SF_CONNECTION)
        doc = self.wait_job(self.unpublish_job(res["id"]))
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertNotIn(res["semantic_model_id"], self.emu_model_ids())
        self.assertIn(SF_CONNECTION, self.emu_connection_ids())
        self.assertEqual(doc["result"]["kept"]["connection_id"], SF_CONNECTION)

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
        self.kill_in(phase, job_id)
        self.start_worker()
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertNotIn(res["semantic_model_id"], self.emu_model_ids())
        self.assertNotIn(res["connection_id"], self.emu_connection_ids())
        self.assertEqual(self.model(res["id"])["state"], "unpublished")
        status, _, ag = self.stack.json("GET", "/api/agreements/" + res["agreement_id"], token="alice")
        self.assertEqual(ag["state"], "terminated")

    def test_09_crash_deleting_model(self):
        self._crash_unpublish_in("deleting_model")

    def test_10_crash_deleting_connection(self):
        self._crash_unpublish_in("deleting_connection")

    def test_11_crash_finalizing(self):
        self._crash_unpublish_in("finalizing")


if __name__ == "__main__":
    unittest.main()
