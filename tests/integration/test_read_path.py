"""The API's read path through nginx and a pool of two processes, read again and again: a process
that identified a token before sends the product read with the token's lookup (runtime/fcgi.c
prefetch, runtime/db_pg.c on PostgreSQL; SQLite reads as always). Every check still holds: the
same answer as the first read, another organization's product not found (also once its token is
known to the processes), a revoked token refused at its next request, and a product changed since
read anew. Runs on the engine PBIPORT_TEST_DB names (tests/run.sh runs it on both)."""
import unittest

import harness
from harness import contract_variant, fixture

READS = 12   # enough for both processes of the pool to read past a token's first lookup


class ReadPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.Stack("nginx", fcgi_procs=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def import_orders(self, contract_id, version="1.0.0"):
        text = contract_variant(fixture("orders.odcs.yaml"), contract_id=contract_id, version=version)
        status, _, doc = self.stack.import_contract(text, token="alice")
        self.assertIn(status, (200, 201), doc)
        return doc

    def reads(self, path, token, want_status):
        """READS reads of path with token: all of want_status and of one answer; that answer."""
        answers = []
        for _ in range(READS):
            status, _, doc = self.stack.json("GET", path, token=token)
            self.assertEqual(status, want_status, doc)
            answers.append(doc)
        self.assertTrue(all(a == answers[0] for a in answers), answers)
        return answers[0]

    def test_repeated_reads_keep_every_check(self):
        doc = self.import_orders("urn:pbiport:it:read-path")
        path = "/api/data-products/" + doc["id"]
        got = self.reads(path, "alice", 200)
        self.assertEqual(got["id"], doc["id"])
        self.assertEqual([p["name"] for p in got["output_ports"]], sorted(p["name"] for p in doc["output_ports"]))
        self.assertEqual(got["consumes"], [])
        self.assertEqual(self.reads(path, "bob", 200), got)   # the same organization
        # carol's organization is another one: not found, also after her token is known
        self.reads("/api/data-products/" + doc["id"], "carol", 404)
        # changed since: the next read shows the new version
        self.import_orders("urn:pbiport:it:read-path", version="1.1.0")
        self.assertEqual(self.reads(path, "alice", 200)["version"], "1.1.0")

    def test_revoked_token_refused_at_once(self):
        doc = self.import_orders("urn:pbiport:it:read-path-revoked")
        path = "/api/data-products/" + doc["id"]
        _, out, _ = self.stack.cli("token", "create", "bob")
        token = out.strip()
        self.reads(path, token, 200)
        with self.stack.db() as db:
            db.execute("UPDATE api_tokens SET revoked_at = '2026-01-01T00:00:00Z' WHERE id = ?", (token[4:36],))
            db.commit()
        got = self.reads(path, token, 401)
        self.assertEqual(got["error"]["code"], "unauthorized", got)


if __name__ == "__main__":
    unittest.main()
