"""Jobs through nginx: GET /api/jobs (a member's own, an owner's organization; kind and state
filters; cursor paging; other org), POST /api/jobs/{id}/cancel on a queued publish (at once, no
worker involved) and on running publishes slowed down by emulator latency (stopped at the next
checkpoint, with and without {"cleanup": true}: what the job created is removed only when asked,
a connection the request chose is never removed), 409 for an ended job, 404 for someone else's,
and the phase history a slow poller sees."""
import json
import uuid

import harness
from publish_stack import BASIC, ENDED, SF_CONNECTION, WS_ADMIN, WS_MEMBER, PublishStackTestCase

PUBLISH_PHASES = ["validating", "creating_connection", "creating_model", "binding", "finalizing"]


class Jobs(PublishStackTestCase):

    def insert_job(self, user, kind="refresh", state="queued", created_at="2020-01-01T00:00:00.000Z"):
        """A job row for user as another part of pbiport would queue it (bob has no Power BI)."""
        job_id = uuid.uuid4().hex
        with self.db() as db:
            org_id, user_id = db.execute("SELECT org_id, id FROM users WHERE name = ?", (user,)).fetchone()
            db.execute("INSERT INTO jobs (id, org_id, user_id, kind, state, progress, attempts, max_attempts, run_after, "
                       "input, checkpoint, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, 0, 3, ?, '{}', '{}', ?, ?)",
                       (job_id, org_id, user_id, kind, state, "2999-01-01T00:00:00.000Z", created_at, created_at))
        return job_id

    def cancel(self, job_id, body=None, user="alice"):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self.stack.json("POST", "/api/jobs/%s/cancel" % job_id, token=user, headers=headers,
                               body=json.dumps(body) if body is not None else None)

    def list_jobs(self, query="", user="alice"):
        status, _, doc = self.stack.json("GET", "/api/jobs" + query, token=user)
        self.assertEqual(status, 200, doc)
        return doc

    # ---- list ------------------------------------------------------------------------------------
    def test_01_list_mine_or_the_organizations(self):
        bobs = [self.insert_job("bob", created_at="2020-01-01T00:00:0%d.000Z" % i) for i in range(3)]
        alices = self.insert_job("alice", kind="ingest", state="failed", created_at="2020-01-02T00:00:00.000Z")
        carols = self.insert_job("carol", created_at="2020-01-03T00:00:00.000Z")
        bob_id = self.user_id("bob")
        listed = self.list_jobs(user="bob")["jobs"]
        self.assertEqual({j["user_id"] for j in listed}, {bob_id})         # a member: their own
        mine = [j["id"] for j in listed]
        self.assertEqual([i for i in mine if i in bobs], list(reversed(bobs)))   # newest first
        org = [j["id"] for j in self.list_jobs(user="alice")["jobs"]]
        self.assertTrue(set(bobs + [alices]) <= set(org), org)    # an owner: the organization's
        self.assertNotIn(carols, org)
        self.assertEqual([j["id"] for j in self.list_jobs(user="carol")["jobs"]], [carols])
        # filters
        self.assertEqual([j["id"] for j in self.list_jobs("?kind=ingest&state=failed")["jobs"]], [alices])
        self.assertTrue(all(j["kind"] == "refresh" for j in self.list_jobs("?kind=refresh", user="bob")["jobs"]))
        one = self.list_jobs("?state=failed", user="bob")
        self.assertEqual((one["jobs"], one["next_cursor"]), ([], None))
        # paging: limit and the cursor of the page before walk the same list
        paged, query = [], "?limit=2"
        while True:
            page = self.list_jobs(query, user="bob")
            self.assertLessEqual(len(page["jobs"]), 2)
            paged += [j["id"] for j in page["jobs"]]
            if not page["next_cursor"]:
                break
            query = "?limit=2&cursor=" + page["next_cursor"]
        self.assertEqual(paged, mine)
        item = page["jobs"][0]
        for key in ("id", "kind", "state", "phase", "progress", "error", "result", "created_at", "cancel"):
            self.assertIn(key, item)
        self.assertNotIn("input", item)
        # bad input names the parameter
        for query, word in (("?kind=bogus", "kind"), ("?state=done", "state"), ("?limit=0", "limit"),
                            ("?limit=201", "limit"), ("?limit=x", "limit"), ("?cursor=nope", "cursor"),
                            ("?user=bob", "user")):
            err = self.assertError(self.stack.json("GET", "/api/jobs" + query, token="bob"), 400, "bad_request")
            self.assertIn(word, err["message"], query)

    # ---- cancel ----------------------------------------------------------------------------------
    def test_02_cancel_queued_publish_at_once(self):
        before = self.counters()
        job_id = self.submit(self.ports["fresh"], {"workspace_id": WS_ADMIN, "name": "Queued", "connection": BASIC})
        status, _, doc = self.cancel(job_id)
        self.assertEqual(status, 200, doc)
        self.assertEqual((doc["state"], doc["error"]["code"]), ("cancelled", "cancelled"), doc)
        self.assertEqual(doc["phases"], [])
        self.assertTrue(doc["cancel"]["requested_at"] and doc["finished_at"], doc)
        with self.db() as db:
            self.assertEqual(db.execute("SELECT private_input FROM jobs WHERE id = ?", (job_id,)).fetchone(), (None,))
        # a worker started afterwards has nothing to do; the same request can be made again
        self.start_worker()
        again = self.submit(self.ports["fresh"], {"workspace_id": WS_ADMIN, "name": "Queued", "connection": BASIC})
        self.assertNotEqual(again, job_id)
        self.assertEqual(self.wait_job(again)["state"], "succeeded")
        self.assertEqual(self.job(job_id)["state"], "cancelled")
        self.assertEqual(self.counters()["connections_created"] - before["connections_created"], 1)
        # ended: 409; cancelling again says so
        err = self.assertError(self.cancel(job_id), 409, "job_ended")
        self.assertIn("cancelled", err["message"])
        self.assertError(self.cancel(again), 409, "job_ended")

    def _slow_publish(self, name, **body):
        """A publish whose model calls take 2.5 s each, run until it is about to create the model."""
        self.emu.control("POST", "faults", {"path_prefix": "/fabric/v1/workspaces/%s/semanticModels" % body["workspace_id"],
                                            "latency_ms": 2500})
        self.start_worker()
        job_id = self.submit(self.ports[body.pop("port")], dict(body, name=name))
        # progress 50 is recorded just before the create is sent
        self.wait_job(job_id, lambda d: d["phase"] == "creating_model" and d["progress"] >= 50)
        return job_id

    def _model_named(self, name, ws):
        return [m for m in self.emu_models() if m["name"] == name and m["workspaceId"] == ws]

    def _conns_of(self, job_id):
        return [c for c in self.emu_connections() if "(pbiport %s)" % job_id[:12] in c["displayName"]]

    def test_03_cancel_running_without_cleanup_keeps_what_it_made(self):
        before = self.counters()
        job_id = self._slow_publish("Kept", port="fresh", workspace_id=WS_ADMIN, connection=BASIC)
        status, headers, doc = self.cancel(job_id)
        self.assertEqual(status, 202, doc)
        self.assertEqual(headers.get("location"), "/api/jobs/" + job_id)
        self.assertEqual(doc["state"], "running")
        self.assertEqual(doc["cancel"]["cleanup"], False)
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "cancelled", doc)
        self.assertEqual(doc["result"]["cancelled_in_phase"], "creating_model", doc)
        self.assertFalse(doc["result"]["cleanup_done"])
        self.assertEqual(doc["error"]["message"], "cancelled during creating_model")
        # it stopped at the checkpoint after the create: nothing further ran, nothing was removed
        self.assertEqual([p["phase"] for p in doc["phases"]], PUBLISH_PHASES[:3])
        after = self.counters()
        self.assertEqual(after["models_created"] - before["models_created"], 1)
        self.assertEqual(after["bindings"], before["bindings"])
        self.assertEqual(len(self._model_named("Kept", WS_ADMIN)), 1)
        self.assertEqual(len(self._conns_of(job_id)), 1)
        with self.db() as db:
            self.assertEqual(db.execute("SELECT count(*) FROM published_models WHERE job_id = ?", (job_id,)).fetchone(),
                             (0,))

    def test_04_cancel_running_with_cleanup_removes_what_it_made(self):
        before = self.counters()
        job_id = self._slow_publish("Removed", port="fresh", workspace_id=WS_ADMIN, connection=BASIC)
        status, _, doc = self.cancel(job_id, {"cleanup": True})
        self.assertEqual(status, 202, doc)
        self.assertEqual(doc["cancel"]["cleanup"], True)
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "cancelled", doc)
        self.assertTrue(doc["result"]["cleanup_done"], doc)
        removed = doc["result"]["cleanup"]["removed"]
        self.assertTrue(removed["semantic_model_id"] and removed["connection_id"], doc)
        self.assertIsNone(doc["result"]["cleanup"]["kept"]["connection_id"])
        self.assertEqual([p["phase"] for p in doc["phases"]], PUBLISH_PHASES[:3] + ["cancelling"])
        # the model was made, then removed, and so was the connection this job made
        self.assertEqual(self.counters()["models_created"] - before["models_created"], 1)
        self.assertEqual(self._model_named("Removed", WS_ADMIN), [])
        self.assertEqual(self._conns_of(job_id), [])
        self.assertNotIn(removed["connection_id"], [c["id"] for c in self.emu_connections()])

    def test_05_cleanup_keeps_a_connection_the_request_chose(self):
        job_id = self._slow_publish("Reused", port="analytics", workspace_id=WS_MEMBER, connection_id=SF_CONNECTION)
        self.assertEqual(self.cancel(job_id, {"cleanup": True})[0], 202)
        doc = self.wait_job(job_id)
        self.assertEqual(doc["state"], "cancelled", doc)
        self.assertEqual(doc["result"]["cleanup"]["kept"]["connection_id"], SF_CONNECTION)
        self.assertIsNone(doc["result"]["cleanup"]["removed"]["connection_id"])
        self.assertEqual(self._model_named("Reused", WS_MEMBER), [])
        self.assertIn(SF_CONNECTION, [c["id"] for c in self.emu_connections()])

    def test_06_who_may_cancel(self):
        bobs = self.insert_job("bob", created_at="2021-01-01T00:00:00.000Z")
        self.assertError(self.cancel(bobs, user="carol"), 404, "not_found")     # another org
        alices = self.insert_job("alice")
        self.assertError(self.cancel(alices, user="bob"), 404, "not_found")     # another user, a member
        self.assertError(self.cancel(uuid.uuid4().hex), 404, "not_found")
        # a refresh creates nothing to remove
        err = self.assertError(self.cancel(bobs, {"cleanup": True}, user="bob"), 400, "bad_request")
        self.assertIn("cleanup", err["message"])
        for body in ({"cleanup": "yes"}, {"clean": True}, []):
            self.assertError(self.cancel(bobs, body, user="bob"), 400, "bad_request")
        # an owner may cancel a member's job
        status, _, doc = self.cancel(bobs, user="alice")
        self.assertEqual((status, doc["state"]), (200, "cancelled"), doc)
        self.assertEqual(self.job(bobs, user="bob")["state"], "cancelled")

    def test_07_slow_poller_sees_every_phase(self):
        self.start_worker()
        job_id = self.submit(self.ports["analytics"], {"workspace_id": WS_ADMIN, "name": "Watched",
                                                       "connection_id": SF_CONNECTION})
        doc = self.wait_job(job_id, interval=1.0)
        self.assertEqual(doc["state"], "succeeded", doc)
        self.assertEqual([p["phase"] for p in doc["phases"]], PUBLISH_PHASES)
        times = [p["started_at"] for p in doc["phases"]]
        self.assertEqual(times, sorted(times))
        self.assertTrue(all(p["attempt"] == 1 for p in doc["phases"]))
        self.assertLessEqual(times[-1], doc["finished_at"])
        self.assertIn(doc["state"], ENDED)


if __name__ == "__main__":
    harness.main()
