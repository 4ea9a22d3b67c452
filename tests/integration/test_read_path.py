"""The API's read path through nginx and a pool of two processes, read again and again: a process
that identified a token before sends the product read with the token's lookup (runtime/fcgi.c
prefetch, runtime/db_pg.c on PostgreSQL; SQLite reads as always). Every check still holds: the
same answer as the first read, another organization's product not found (also once its token is
known to the processes), a revoked token refused at its next request, and a product changed since
read anew. A process keeps the answers it built and gives one again only while the organization's
catalog version, read with the token (or the web server's user), has not moved
(handlers/data_products.c, sql/0018): every kind of write that changes the answer, through the API
or straight into the database by another process, is seen by the next read of both processes; so is
a role changed or a user renamed (a process keeps the identity it read only while nothing at all
was written to the database). Runs on the engine PBIPORT_TEST_DB names
(tests/run.sh runs it on both)."""
import secrets
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

    def reads(self, path, token, want_status, basic=None):
        """READS reads of path with token (or the web server's user basic): all of want_status and
        of one answer; that answer."""
        answers = []
        for _ in range(READS):
            status, _, doc = (self.stack.json("GET", path, basic=basic) if basic
                              else self.stack.json("GET", path, token=token))
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

    def test_every_write_is_seen_by_the_next_read(self):
        orders = fixture("orders.odcs.yaml")
        one_port = orders[:orders.index("  - server: databricks-prod")] + orders[orders.index("schema:\n"):]
        consumer = self.import_orders("urn:pbiport:it:read-path-consumer")
        provider = self.import_orders("urn:pbiport:it:read-path-provider")
        path = "/api/data-products/" + consumer["id"]
        first = self.reads(path, "alice", 200)
        self.assertEqual(len(first["output_ports"]), 2)
        # a port removed, then added again (imports through the pool)
        text = contract_variant(one_port, contract_id="urn:pbiport:it:read-path-consumer", version="1.1.0")
        status, _, doc = self.stack.import_contract(text, token="alice")
        self.assertEqual(status, 200, doc)
        self.assertEqual([p["name"] for p in self.reads(path, "alice", 200)["output_ports"]], ["snowflake-prod"])
        self.import_orders("urn:pbiport:it:read-path-consumer", version="1.2.0")
        got = self.reads(path, "bob", 200)
        self.assertEqual((got["version"], len(got["output_ports"])), ("1.2.0", 2))
        # each of the tables the answer is built from, written by another process
        self.stack.execute("UPDATE data_products SET name = ? WHERE id = ?", "renamed-orders", consumer["id"])
        self.assertEqual(self.reads(path, "alice", 200)["name"], "renamed-orders")
        port = next(p["id"] for p in got["output_ports"] if p["name"] == "snowflake-prod")
        self.stack.execute("UPDATE output_ports SET name = ? WHERE id = ?", "snowflake-renamed", port)
        self.assertIn("snowflake-renamed", [p["name"] for p in self.reads(path, "alice", 200)["output_ports"]])
        bob = self.stack.scalar("SELECT id FROM users WHERE name = ?", "bob")
        agreement = secrets.token_hex(16)
        provider_port = provider["output_ports"][0]["id"]
        self.stack.execute("INSERT INTO agreements (id, org_id, consumer_product_id, output_port_id, state, purpose, "
                   "requested_by, approved_at, created_at, updated_at) SELECT ?, org_id, id, ?, 'approved', "
                   "'read path', ?, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' "
                   "FROM data_products WHERE id = ?", agreement, provider_port, bob, consumer["id"])
        consumes = self.reads(path, "alice", 200)["consumes"]
        self.assertEqual([(a["id"], a["state"], a["requested_by"]["name"]) for a in consumes],
                         [(agreement, "approved", "bob")])
        # a name the answer shows that lives in users
        self.stack.execute("UPDATE users SET name = ? WHERE id = ?", "bob-renamed", bob)
        try:
            self.assertEqual(self.reads(path, "alice", 200)["consumes"][0]["requested_by"]["name"], "bob-renamed")
        finally:
            self.stack.execute("UPDATE users SET name = ? WHERE id = ?", "bob", bob)
        self.stack.execute("UPDATE agreements SET state = 'terminated', terminated_at = ? WHERE id = ?",
                   "2026-01-02T00:00:00Z", agreement)
        self.assertEqual(self.reads(path, "alice", 200)["consumes"][0]["state"], "terminated")
        self.stack.execute("DELETE FROM agreements WHERE id = ?", agreement)
        self.assertEqual(self.reads(path, "alice", 200)["consumes"], [])
        # another organization never gets the answer the processes keep
        self.reads(path, "carol", 404)
        # deleted through the API: not found by every process at once
        status, _, doc = self.stack.json("DELETE", path, token="alice")
        self.assertEqual(status, 204, doc)
        self.reads(path, "alice", 404)

    def test_web_server_user_reads_see_every_write(self):
        """A user the web server signed in reads the organization's version with the user
        (core/store/identity.c): kept answers for them too, and never one older than a write."""
        doc = self.import_orders("urn:pbiport:it:read-path-basic")
        path = "/api/data-products/" + doc["id"]
        self.assertEqual(self.reads(path, None, 200, basic="bob"), self.reads(path, "alice", 200))
        self.stack.execute("UPDATE data_products SET name = ? WHERE id = ?", "basic-renamed", doc["id"])
        self.assertEqual(self.reads(path, None, 200, basic="bob")["name"], "basic-renamed")
        self.reads(path, None, 404, basic="carol")

    def test_role_and_user_changes_seen_at_once(self):
        """A process keeps the identity it read while nothing was written to the database
        (core/store/identity.c): a role changed, or a user renamed, by another process is what
        the next request of every process meets."""
        bob = self.stack.scalar("SELECT id FROM users WHERE name = ?", "bob")
        self.reads("/api/webhooks", "bob", 403)
        self.reads("/api/webhooks", None, 403, basic="bob")
        self.stack.execute("UPDATE users SET role = 'owner' WHERE id = ?", bob)
        try:
            self.reads("/api/webhooks", "bob", 200)
            self.reads("/api/webhooks", None, 200, basic="bob")
        finally:
            self.stack.execute("UPDATE users SET role = 'member' WHERE id = ?", bob)
        self.reads("/api/webhooks", "bob", 403)
        self.stack.execute("UPDATE users SET name = ? WHERE id = ?", "bob-away", bob)
        try:
            self.reads("/api/webhooks", None, 401, basic="bob")
        finally:
            self.stack.execute("UPDATE users SET name = ? WHERE id = ?", "bob", bob)
        self.reads("/api/webhooks", None, 403, basic="bob")

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
