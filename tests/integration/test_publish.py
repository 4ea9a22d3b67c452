"""Publish an output port to Power BI through nginx + pbiport worker + the emulator: new Snowflake
connection, existing matching connection (none created), Databricks PAT and service principal,
double submit collapsed, re-publish suffix, listing, other org 404, what is refused before queueing
(non-GUID ids 400, Viewer-only workspace 403, unknown workspace 404, no Power BI connection 409,
http_path on Snowflake 400), the default name (the data product's), malformed template, and crash
safety (kill -9 of the worker inside each phase, then exactly one connection and one model; a
resumed job never adopts a model another publish made under its planned name)."""
import json
import os
import subprocess
import tempfile
import time
import unittest

import harness
from publish_stack import (ALICE_UPN, BASIC, JOB_WAIT_S, SF_CONNECTION, TENANT, WS_ADMIN, WS_MEMBER,
                           PublishStackTestCase)


WS_VIEWER = "a0000000-0000-4000-8000-000000000003"    # alice: Viewer
WS_CONTRIB = "a0000000-0000-4000-8000-000000000004"   # alice: Contributor
PHASES = ("validating", "creating_connection", "creating_model", "binding", "finalizing")
TOKEN = {"credential_type": "token", "token": "dapi-0123456789abcdef-secret"}
SP = {"credential_type": "service_principal", "tenant_id": TENANT, "client_id": "99999999-0000-4000-8000-000000000001",
      "client_secret": "sp-s3cret-value"}
SECRETS = ("Sn0w-s3cret-pw", "dapi-0123456789abcdef-secret", "sp-s3cret-value")


class Publish(PublishStackTestCase):

    # ---- tests ---------------------------------------------------------------------------------
    def test_01_new_snowflake_connection(self):
        before = self.counters()
        doc = self.run_job("fresh", {"workspace_id": WS_ADMIN, "name": "Contoso sales (fresh)", "connection": BASIC})
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertEqual(doc["progress"], 100, doc)
        res = doc["result"]
        for key in ("semantic_model_id", "web_url", "connection_id", "consumer_data_product_id", "agreement_id"):
            self.assertTrue(res.get(key), (key, res))
        # the web URL comes from reading the one dataset, not from the workspace's whole list
        gets = [q["path"] for q in self.emu.state("log")["requests"] if q["method"] == "GET" and "/datasets" in q["path"]]
        self.assertIn("/powerbi/v1.0/myorg/groups/%s/datasets/%s" % (WS_ADMIN, res["semantic_model_id"]), gets)
        self.assertNotIn("/powerbi/v1.0/myorg/groups/%s/datasets" % WS_ADMIN, gets)
        self.assertIn(res["semantic_model_id"], res["web_url"])
        after = self.counters()
        self.assertEqual(after["connections_created"], before["connections_created"] + 1)
        self.assertEqual(after["models_created"], before["models_created"] + 1)
        conns = [c for c in self.emu.state("connections")["connections"] if c["id"] == res["connection_id"]]
        self.assertEqual(len(conns), 1)
        self.assertEqual(conns[0]["type"], "Snowflake")
        self.assertEqual(conns[0]["path"], "newacct-zz99999.snowflakecomputing.com;FRESH_WH")
        self.assertEqual(conns[0]["credentialType"], "Basic")
        model = [m for m in self.emu_models(parts=True) if m["id"] == res["semantic_model_id"]][0]
        self.assertEqual(model["name"], "Contoso sales (fresh)")
        self.assertEqual(model["workspaceId"], WS_ADMIN)
        # the model Power BI got has the contract's tables and columns, and is bound
        self.assertEqual(sorted(t.lower() for t in model["tables"]), ["customers", "orders"])
        text = "\n".join(model["parts"].values())
        for col in ("order_id", "customer_id", "amount", "placed_at", "name"):
            self.assertIn("column " + col, text)
        self.assertEqual([b["connectionId"] for b in model["bindings"]], [res["connection_id"]])
        # catalog records: consumer data product, approved agreement, lineage edge
        with self.db() as db:
            row = db.execute("SELECT type, name FROM data_products WHERE id = ?",
                             (res["consumer_data_product_id"],)).fetchone()
            self.assertEqual(row, ("powerbi_semantic_model", "Contoso sales (fresh)"))
            row = db.execute("SELECT state, output_port_id FROM agreements WHERE id = ?", (res["agreement_id"],)).fetchone()
            self.assertEqual(row, ("approved", self.ports["fresh"]))
            self.assertEqual(db.execute("SELECT private_input FROM jobs WHERE id = ?", (doc["id"],)).fetchone(), (None,))
        status, _, lin = self.stack.json("GET", "/api/lineage?node=%s&depth=1" % self.ports["fresh"], token="alice")
        self.assertEqual(status, 200, lin)
        self.assertIn(res["consumer_data_product_id"], [n["id"] for n in lin["nodes"]])
        # credentials typed into the request are nowhere once the job ended
        raw = self.stack.db_raw()
        for secret in SECRETS:
            self.assertNotIn(secret.encode(), raw)

    def test_02_existing_matching_connection(self):
        status, _, doc = self.stack.json("GET", "/api/powerbi/connections?output_port=" + self.ports["analytics"],
                                         token="alice")
        self.assertEqual(status, 200, doc)
        self.assertEqual([c["id"] for c in doc["connections"]], [SF_CONNECTION])
        self.assertEqual(doc["data_source"]["type"], "Snowflake")
        status, _, doc = self.stack.json("GET", "/api/powerbi/connections?output_port=" + self.ports["fresh"],
                                         token="alice")
        self.assertEqual((status, [c for c in doc["connections"] if c["id"] == SF_CONNECTION]), (200, []))
        before = self.counters()
        doc = self.run_job("analytics", {"workspace_id": WS_MEMBER, "name": "Sales (existing)",
                                         "connection_id": SF_CONNECTION})
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertEqual(doc["result"]["connection_id"], SF_CONNECTION)
        self.assertEqual(self.counters()["connections_created"], before["connections_created"])
        model = [m for m in self.emu_models() if m["id"] == doc["result"]["semantic_model_id"]][0]
        self.assertEqual([b["connectionId"] for b in model["bindings"]], [SF_CONNECTION])
        # a connection that points elsewhere is refused in plain words
        doc = self.run_job("fresh", {"workspace_id": WS_MEMBER, "name": "Mismatch", "connection_id": SF_CONNECTION})
        self.assertEqual((doc["state"], doc["error"]["code"]), ("failed", "connection_mismatch"), doc)

    def test_03_databricks_pat_with_http_path(self):
        status, _, doc = self.publish("lake-nopath", {"workspace_id": WS_ADMIN, "connection": TOKEN})
        self.assertEqual(status, 400, doc)
        self.assertIn("http_path", doc["error"]["message"])
        doc = self.run_job("lake-nopath", {"workspace_id": WS_ADMIN, "connection": TOKEN,
                                           "http_path": "/sql/1.0/warehouses/feedbeef"})
        self.assertEqual(doc["state"], "succeeded", doc)
        conn = [c for c in self.emu.state("connections")["connections"] if c["id"] == doc["result"]["connection_id"]][0]
        self.assertEqual((conn["type"], conn["credentialType"]), ("Databricks", "Key"))
        self.assertEqual(conn["path"], "adb-5555555555555555.5.azuredatabricks.net;/sql/1.0/warehouses/feedbeef")
        # the default name is the data product's, with the port's (the product has four ports)
        self.assertEqual(doc["result"]["name"], "Contoso sales \u2013 lake-nopath")

    def test_04_databricks_service_principal(self):
        doc = self.run_job("lakehouse", {"workspace_id": WS_CONTRIB, "name": "Lakehouse SP", "connection": SP})
        self.assertEqual(doc["state"], "succeeded", doc)
        conn = [c for c in self.emu.state("connections")["connections"] if c["id"] == doc["result"]["connection_id"]][0]
        self.assertEqual(conn["credentialType"], "ServicePrincipal")
        model = [m for m in self.emu_models() if m["id"] == doc["result"]["semantic_model_id"]][0]
        self.assertEqual([b["connectionId"] for b in model["bindings"]], [conn["id"]])

    def test_05_double_submit_suffix_and_listing(self):
        body = {"workspace_id": WS_ADMIN, "name": "Twice", "connection_id": SF_CONNECTION}
        first = self.submit("analytics", body)
        status, _, doc = self.publish("analytics", body)   # no worker yet: still queued
        self.assertEqual((status, doc["job_id"], doc["existing"]), (202, first, True))
        self.start_worker()
        one = self.wait_job(first)
        self.assertEqual(one["state"], "succeeded", one)
        self.assertEqual(one["seen_phases"][-1], "finalizing")
        self.assertEqual(one["result"]["name"], "Twice")
        # after it ended, the same request is a fresh publish whose model gets a suffix
        second = self.submit("analytics", body)
        self.assertNotEqual(second, first)
        two = self.wait_job(second)
        self.assertEqual((two["state"], two["result"]["name"]), ("succeeded", "Twice (2)"), two)
        self.assertNotEqual(two["result"]["semantic_model_id"], one["result"]["semantic_model_id"])
        status, _, doc = self.stack.json("GET", "/api/output-ports/%s/powerbi-models" % self.ports["analytics"],
                                         token="bob")
        self.assertEqual(status, 200, doc)
        names = [m["name"] for m in doc["models"]]
        self.assertLess(names.index("Twice (2)"), names.index("Twice"))   # newest first
        top = doc["models"][names.index("Twice (2)")]
        self.assertEqual((top["semantic_model_id"], top["workspace_id"], top["job_id"]),
                         (two["result"]["semantic_model_id"], WS_ADMIN, second))
        self.assertTrue(top["web_url"] and top["published_at"])
        self.__class__.done_job = second

    def test_06_other_org_and_other_user(self):
        job_id = getattr(self, "done_job", None) or self.run_job(
            "analytics", {"workspace_id": WS_ADMIN, "name": "Other org", "connection_id": SF_CONNECTION})["id"]
        self.assertError(self.stack.json("GET", "/api/jobs/" + job_id, token="carol"), 404, "not_found")
        self.assertError(self.stack.json("GET", "/api/jobs/" + job_id, token="bob"), 404, "not_found")
        self.assertEqual(self.stack.json("GET", "/api/jobs/" + job_id, token="alice")[0], 200)
        port = self.ports["analytics"]
        self.assertError(self.stack.json("GET", "/api/output-ports/%s/powerbi-models" % port, token="carol"), 404)
        self.assertError(self.publish("analytics", {"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION},
                                      user="carol"), 404)
        self.assertError(self.stack.json("GET", "/api/powerbi/connections?output_port=" + port, token="carol"), 404)

    def queued_jobs(self):
        with self.db() as db:
            return db.execute("SELECT count(*) FROM jobs WHERE kind = 'publish'").fetchone()[0]

    def test_07_viewer_or_unknown_workspace_is_refused_before_queueing(self):
        before = self.queued_jobs()
        err = self.assertError(self.publish("analytics", {"workspace_id": WS_VIEWER, "name": "Viewer",
                                                          "connection_id": SF_CONNECTION}), 403, "no_write_role")
        self.assertIn("workspace_id", err["message"])
        self.assertIn("Contributor", err["message"])
        self.assertIn("Viewer", err["message"])
        err = self.assertError(self.publish("analytics", {"workspace_id": "a0000000-0000-4000-8000-0000000000ff",
                                                          "name": "Nowhere", "connection_id": SF_CONNECTION}),
                               404, "powerbi_not_found")
        self.assertIn("workspace_id", err["message"])
        self.assertEqual(self.queued_jobs(), before)   # nothing queued
        # Power BI too slow to answer the check: the request is queued and the job checks again
        self.emu.control("POST", "faults", {"latency_ms": 8000, "path_prefix": "/fabric/v1/workspaces", "method": "GET"})
        try:
            t0 = time.monotonic()
            status, _, doc = self.publish("analytics", {"workspace_id": WS_VIEWER, "name": "Viewer (slow)",
                                                        "connection_id": SF_CONNECTION})
            self.assertLess(time.monotonic() - t0, 7.5)
        finally:
            self.emu.control("DELETE", "faults")
        self.assertEqual(status, 202, doc)
        self.start_worker()
        job = self.wait_job(doc["job_id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "no_write_role"), job)

    def test_08_malformed_template_names_file_and_line(self):
        tdir = tempfile.mkdtemp(dir=self.stack.path("logs"))
        with open(os.path.join(tdir, "main.lua"), "w") as f:
            f.write("-- broken on purpose\nreturn function(ctx)\n  return {  \nend\n")
        self.start_worker(PBIPORT_TEMPLATE_PATH=tdir)
        doc = self.wait_job(self.submit("analytics", {"workspace_id": WS_ADMIN, "name": "Broken",
                                                      "connection_id": SF_CONNECTION}))
        self.assertEqual((doc["state"], doc["error"]["code"]), ("failed", "template_failed"), doc)
        self.assertIn("main.lua:", doc["error"]["message"])

    def test_09_validation(self):
        cases = [
            ({"connection_id": SF_CONNECTION}, "workspace_id"),
            ({"workspace_id": WS_ADMIN}, "connection_id"),
            ({"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION, "connection": BASIC}, "either"),
            ({"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION, "bogus": 1}, "bogus"),
            ({"workspace_id": WS_ADMIN, "connection": {"credential_type": "kerberos"}}, "connection.credential_type"),
            ({"workspace_id": WS_ADMIN, "connection": TOKEN}, "connection.credential_type"),
            ({"workspace_id": WS_ADMIN, "connection": {"credential_type": "basic", "username": "u"}},
             "connection.password"),
            ({"workspace_id": "", "connection_id": SF_CONNECTION}, "workspace_id"),
            ({"workspace_id": WS_ADMIN, "name": 5, "connection_id": SF_CONNECTION}, "name"),
            # ids that go into Power BI URLs are GUIDs: ".." never reaches /v1/semanticModels
            ({"workspace_id": "..", "connection_id": SF_CONNECTION}, "workspace_id must be a Power BI workspace id"),
            ({"workspace_id": WS_ADMIN + "/..", "connection_id": SF_CONNECTION}, "workspace_id must be"),
            ({"workspace_id": "sales", "connection_id": SF_CONNECTION}, "workspace_id must be"),
            ({"workspace_id": WS_ADMIN, "connection_id": "../connections"}, "connection_id must be"),
            # http_path belongs to Databricks
            ({"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION, "http_path": "/sql/1.0/warehouses/x"},
             "http_path is only for output ports whose source takes it"),
        ]
        before = self.emu.state("log")["requests"]
        for body, word in cases:
            err = self.assertError(self.publish("analytics", body), 400, "bad_request")
            self.assertIn(word, err["message"], body)
        err = self.assertError(self.publish("lakehouse", {"workspace_id": WS_ADMIN, "connection": dict(SP, tenant_id="..")}),
                               400, "bad_request")
        self.assertIn("connection.tenant_id must be", err["message"])
        # refused before anything was asked of Power BI
        self.assertEqual(len(self.emu.state("log")["requests"]), len(before))
        self.assertError(self.publish("0" * 32, {"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION}), 404)
        status, _, doc = self.stack.json("POST", "/api/output-ports/%s/powerbi-publish" % self.ports["analytics"],
                                         body="{not json", headers={"Content-Type": "application/json"}, token="alice")
        self.assertEqual(status, 400, doc)

    def test_10_workspaces(self):
        status, _, doc = self.stack.json("GET", "/api/powerbi/workspaces", token="alice")
        self.assertEqual(status, 200, doc)
        names = {w["name"] for w in doc["workspaces"]}
        self.assertTrue({"Sales Analytics", "Finance", "Marketing", "Data Platform"} <= names, names)
        # the caller's role in each, so the modal can grey out read-only ones
        roles = {w["id"]: (w["role"], w["writable"]) for w in doc["workspaces"]}
        self.assertEqual(roles[WS_ADMIN], ("Admin", True))
        self.assertEqual(roles[WS_MEMBER], ("Member", True))
        self.assertEqual(roles[WS_CONTRIB], ("Contributor", True))
        self.assertEqual(roles[WS_VIEWER], ("Viewer", False))
        self.assertError(self.stack.json("GET", "/api/powerbi/workspaces", token="bob"), 409, "not_connected")

    def test_11_not_connected_user_is_refused_before_queueing(self):
        before = self.queued_jobs()
        err = self.assertError(self.publish("analytics", {"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION},
                                            user="bob"), 409, "not_connected")
        self.assertIn("/powerbi/connect", err["message"])
        self.assertEqual(self.queued_jobs(), before)

    def _crash_in(self, phase):
        name = "Crash " + phase
        before = self.counters()
        job_id = self.submit("fresh", {"workspace_id": WS_ADMIN, "name": name, "connection": BASIC})
        self.kill_worker_in(phase, job_id)
        self.assertEqual(self.job(job_id)["phase"], phase)
        self.start_worker()
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "succeeded", doc)
        after = self.counters()
        self.assertEqual(after["connections_created"] - before["connections_created"], 1, phase)
        self.assertEqual(after["models_created"] - before["models_created"], 1, phase)
        models = [m for m in self.emu_models() if m["workspaceId"] == WS_ADMIN and m["name"].startswith(name)]
        self.assertEqual([m["name"] for m in models], [name], phase)
        conns = [c for c in self.emu.state("connections")["connections"] if job_id[:12] in c["displayName"]]
        self.assertEqual(len(conns), 1, phase)
        self.assertEqual([b["connectionId"] for b in models[0]["bindings"]], [conns[0]["id"]])
        with self.db() as db:
            self.assertEqual(db.execute("SELECT count(*) FROM published_models WHERE job_id = ?", (job_id,)).fetchone(),
                             (1,))
            self.assertEqual(db.execute("SELECT private_input FROM jobs WHERE id = ?", (job_id,)).fetchone(), (None,))

    def test_12_crash_validating(self):
        self._crash_in("validating")

    def test_13_crash_creating_connection(self):
        self._crash_in("creating_connection")

    def test_14_crash_creating_model(self):
        self._crash_in("creating_model")

    def test_15_crash_binding(self):
        self._crash_in("binding")

    def test_16_crash_finalizing(self):
        self._crash_in("finalizing")

    def test_17_phases_visible_with_latency(self):
        self.emu.control("POST", "config", {"latency_ms": 150})
        doc = self.run_job("analytics", {"workspace_id": WS_ADMIN, "name": "Slow", "connection_id": SF_CONNECTION})
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertEqual([p for p in PHASES if p in doc["seen_phases"]][-3:], ["creating_model", "binding",
                                                                               "finalizing"], doc["seen_phases"])

    def test_18_create_answered_201(self):
        # a create answered 201 at once is handled like a long-running one
        self.emu.control("POST", "config", {"lro_mode": "sync"})
        try:
            doc = self.run_job("analytics", {"workspace_id": WS_ADMIN, "name": "Sync", "connection_id": SF_CONNECTION})
        finally:
            self.emu.control("POST", "config", {"lro_mode": "async"})
        self.assertEqual(doc["state"], "succeeded", doc)

    def test_19_crash_while_the_model_is_being_created(self):
        # the create was sent and Power BI is still working on it when the worker dies: the next
        # worker finds the name taken by that operation and waits for the model instead of failing
        self.emu.control("POST", "config", {"lro_polls": 100000, "lro_duration_s": 100000})
        before = self.counters()
        name = "Crash mid-create"
        job_id = self.submit("fresh", {"workspace_id": WS_ADMIN, "name": name, "connection": BASIC})
        p, _ = self.start_worker()

        def pending_creates():
            return [o for o in self.emu.state("operations")["operations"]
                    if o["kind"] == "createSemanticModel" and o["status"] in ("NotStarted", "Running")]

        deadline = time.monotonic() + JOB_WAIT_S
        while not pending_creates() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(pending_creates())
        os.kill(p.pid, 9)
        p.wait()
        self.start_worker()

        def refused_creates():
            return [q for q in self.emu.state("log")["requests"] if q["method"] == "POST" and q["status"] == 400
                    and q["path"].endswith("/v1/workspaces/%s/semanticModels" % WS_ADMIN)]

        while not refused_creates() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(refused_creates(), "the second worker did not try to create")
        self.emu.control("POST", "advance")   # Power BI finishes the first create
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "succeeded", doc)
        after = self.counters()
        self.assertEqual(after["models_created"] - before["models_created"], 1)
        self.assertEqual(after["connections_created"] - before["connections_created"], 1)
        self.assertEqual([m["name"] for m in self.emu_models() if m["name"].startswith(name)], [name])

    def test_20_resumed_publish_does_not_adopt_another_publish_s_model(self):
        # Job A (alice) checkpoints model_name=N, its create is refused with 503 and its worker is
        # killed; job B (bob) publishes the same port into the same workspace under N; job A
        # resumes and finds a model named N: not its own (no mark of job A), so A takes the next
        # free name and never touches B's model.
        name = "Contested"
        self.connect("bob", ALICE_UPN)   # bob's own connection (the fixture's writer is alice)
        models_path = "/fabric/v1/workspaces/%s/semanticModels" % WS_ADMIN
        self.emu.control("POST", "faults", {"error_rate": {"status": 503, "percent": 100, "retry_after": 1},
                                            "method": "POST", "path_prefix": models_path})
        try:
            job_a = self.submit("fresh", {"workspace_id": WS_ADMIN, "name": name, "connection": BASIC})
            # a long lease: job A stays with its dead worker until B is done
            w1 = subprocess.Popen([self.stack.bin, "worker", "--poll-ms", "50", "--lease-seconds", "8"],
                                  env=self.stack.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
            self.workers.append(w1)

            def refused_creates():
                return [q for q in self.emu.state("log")["requests"]
                        if q["method"] == "POST" and q["path"] == models_path and q["status"] == 503]

            deadline = time.monotonic() + JOB_WAIT_S
            while not refused_creates() and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(refused_creates(), "job A never tried to create its model")
            os.kill(w1.pid, 9)
            w1.wait()
        finally:
            self.emu.control("DELETE", "faults")
        with self.db() as db:
            state, checkpoint = db.execute("SELECT state, checkpoint FROM jobs WHERE id = ?", (job_a,)).fetchone()
        self.assertEqual(json.loads(checkpoint).get("model_name"), name)
        self.assertNotIn("model_id", json.loads(checkpoint))
        status, _, doc = self.publish("fresh", {"workspace_id": WS_ADMIN, "name": name, "connection": BASIC},
                                      user="bob")
        self.assertEqual(status, 202, doc)
        job_b = doc["job_id"]
        self.start_worker()
        deadline = time.monotonic() + JOB_WAIT_S
        while time.monotonic() < deadline:
            b = self.job(job_b, user="bob")
            if b["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        self.assertEqual(b["state"], "succeeded", b)
        self.assertEqual(b["result"]["name"], name)
        a = self.wait_job(job_a)
        self.assertEqual(a["state"], "succeeded", a)
        self.assertEqual(a["result"]["name"], name + " (2)")
        self.assertNotEqual(a["result"]["semantic_model_id"], b["result"]["semantic_model_id"])
        self.assertNotEqual(a["result"]["connection_id"], b["result"]["connection_id"])
        models = {m["id"]: m for m in self.emu_models()}
        mine, theirs = models[a["result"]["semantic_model_id"]], models[b["result"]["semantic_model_id"]]
        # each model carries the mark of the job that made it, and only its own connection
        self.assertIn("pbiport job " + job_a, mine["description"])
        self.assertIn("pbiport job " + job_b, theirs["description"])
        self.assertEqual([x["connectionId"] for x in theirs["bindings"]], [b["result"]["connection_id"]])
        self.assertEqual([x["connectionId"] for x in mine["bindings"]], [a["result"]["connection_id"]])
        with self.db() as db:
            rows = db.execute("SELECT job_id, semantic_model_id FROM published_models WHERE job_id IN (?, ?)",
                              (job_a, job_b)).fetchall()
        self.assertEqual(sorted(rows), sorted([(job_a, a["result"]["semantic_model_id"]),
                                               (job_b, b["result"]["semantic_model_id"])]))
        self.assertNotEqual(a["result"]["consumer_data_product_id"], b["result"]["consumer_data_product_id"])
        self.assertNotEqual(a["result"]["agreement_id"], b["result"]["agreement_id"])
        # bob goes back to having no connection (test_11 expects that)
        status, _, doc = self.stack.json("GET", "/api/me/powerbi-connections", token="bob")
        for c in doc["connections"]:
            self.assertEqual(self.stack.request("DELETE", "/api/me/powerbi-connections/" + c["id"], token="bob")[0], 204)


if __name__ == "__main__":
    harness.main()
