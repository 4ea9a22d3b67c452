"""A FastCGI pool and a worker started while PostgreSQL is down (a host rebooting before its
database, a restart of the pool during a database restart): the pool's copies stay up and answer
503 with Retry-After (the API, /healthz and the pages), static files are still served, the worker
waits instead of exiting; once PostgreSQL is back, requests are served within seconds without
restarting anything, and the worker runs a publish. Before: every copy exited at start-up, the
pool restarted them until its quick-exit rule gave up (502 for good), and the worker exited.
PostgreSQL only (its own throwaway server); skips without the server binaries."""
import json
import time

import harness
from publish_stack import BASIC, WS_ADMIN, OwnPostgresStackTestCase

WAIT_S = 60


class DatabaseAwayAtStart(OwnPostgresStackTestCase):
    PG_DATABASE = "away_at_start"

    def until(self, what, fn):
        deadline = time.monotonic() + WAIT_S
        while True:
            got = fn()
            if got or time.monotonic() > deadline:
                self.assertTrue(got, "never saw " + what)
                return got
            time.sleep(0.1)

    def test_started_while_postgresql_is_down(self):
        self.pg.down()
        try:
            self.stack.restart_pool(wait_healthy=False)
            worker, worker_log = self.start_worker()

            def unavailable():
                status, hdrs, doc = self.stack.json("GET", "/api/data-products", token="alice")
                return (status, hdrs, doc) if status == 503 else None
            status, hdrs, doc = self.until("503 from a copy started without its database", unavailable)
            self.assertEqual(doc["error"]["code"], "unavailable", doc)
            self.assertTrue(hdrs.get("retry-after"), hdrs)
            status, hdrs, _ = self.stack.request("GET", "/healthz")
            self.assertEqual((status, bool(hdrs.get("retry-after"))), (503, True))
            status, _, body = self.stack.request("GET", "/", basic="alice",
                                                 headers={"Accept": "text/html"})
            self.assertEqual(status, 503, body[:300])
            self.assertIn(b"<html", body.lower())
            status, _, _ = self.stack.request("GET", "/static/pbiport.css", basic="alice")
            self.assertEqual(status, 200, "static files need no database")
            time.sleep(2.5)   # several tries to connect, every copy still up
            self.assertEqual(self.stack.request("GET", "/api/data-products", token="alice")[0], 503)
            self.assertIsNone(worker.poll(), "the worker waits for its database")
        finally:
            self.pg.up()
        # back within seconds, nothing restarted: a copy tries again at its first request a second
        # after its last try (answering 503 in between), so after a second every copy connects
        time.sleep(1.1)
        self.until("200 once PostgreSQL is back",
                   lambda: all(self.stack.json("GET", "/api/data-products", token="alice")[0] == 200
                               for _ in range(8)))
        status, _, doc = self.stack.json(
            "POST", "/api/output-ports/%s/powerbi-publish" % self.ports["fresh"],
            body=json.dumps({"workspace_id": WS_ADMIN, "name": "After the outage", "connection": BASIC}),
            headers={"Content-Type": "application/json"}, token="alice")
        self.assertEqual(status, 202, doc)
        job = self.wait_job(doc["job_id"])
        self.assertEqual(job["state"], "succeeded", job)
        self.assertIsNone(worker.poll())
        with open(worker_log, errors="replace") as f:
            self.assertIn("trying again in", f.read())
        self.assertEqual(self.stack.sanitizer_reports(), [])


if __name__ == "__main__":
    harness.main()
