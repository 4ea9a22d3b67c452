"""Who may change a data product, what happens to output ports consumers depend on, and the
agreements API, through nginx with real publishes (worker + emulator).

- A member creates a product and owns it; re-posting someone else's contract id (fewer servers,
  another host) is 403 and changes nothing; the product's owner and an organization owner may.
- An owner's re-post that drops a published port keeps the port, retired: shown so, refused for
  publish and TMDL with 409, its published-model and agreement rows intact; the server's return
  brings it back into service with the same id. A dropped port nobody uses is deleted.
- GET /api/agreements?data_product= matches either side, pages with a cursor; GET
  /api/agreements/{id} names consumer, provider, state, who approved and when; the consumer
  product shows the port it consumes; another organization gets 404."""

import harness
from harness import contract_variant
from publish_stack import CONTRACT, SF_CONNECTION, WS_ADMIN, WS_MEMBER, PublishStackTestCase

CONTRACT_ID = "urn:datacontract:test:contoso-sales"


def without_server(text, name):
    """The contract with the servers entry `name` (and its indented lines) left out."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("  - server: "):
            skipping = line.strip() == "- server: " + name
        elif skipping and not line.startswith("    "):
            skipping = False
        if not skipping:
            out.append(line)
    return "".join(out)


class Catalog(PublishStackTestCase):

    def product_doc(self, product_id, user="alice"):
        status, _, doc = self.stack.json("GET", "/api/data-products/" + product_id, token=user)
        self.assertEqual(status, 200, doc)
        return doc

    def publish_done(self, port, ws, name):
        if not self.workers:
            self.start_worker()
        doc = self.wait_job(self.submit(self.ports[port], {"workspace_id": ws, "name": name,
                                                           "connection_id": SF_CONNECTION}))
        self.assertEqual(doc["state"], "succeeded", doc)
        return doc["result"]

    # ---- who may change a product ----------------------------------------------------------------
    def test_01_member_cannot_rewrite_or_delete_others_ports(self):
        before = self.product_doc(self.product["id"])
        # fewer servers (would delete a port) and another host (would repoint it): both refused
        for text in (without_server(CONTRACT, "analytics"),
                     CONTRACT.replace("CONTOSO-XY12345.snowflakecomputing.com", "evil.example.com")):
            err = self.assertError(self.stack.import_contract(text, token="bob"), 403, "forbidden")
            self.assertIn(CONTRACT_ID, err["message"])
        after = self.product_doc(self.product["id"])
        self.assertEqual(after["revision"], before["revision"])
        self.assertEqual(after["output_ports"], before["output_ports"])
        # the product's owner is who imported it
        alice_id = self.user_id("alice")
        self.assertEqual(after["owner_user_id"], alice_id)

    def test_02_a_member_owns_what_they_import(self):
        text = contract_variant(CONTRACT, contract_id="urn:pbiport:it:bobs", version="1.0.0")
        status, _, doc = self.stack.import_contract(text, token="bob")
        self.assertEqual(status, 201, doc)
        bob_id = self.user_id("bob")
        self.assertEqual(doc["owner_user_id"], bob_id)
        # its owner may update it, an organization owner too; the owner stays bob
        status, _, doc = self.stack.import_contract(without_server(contract_variant(text, version="1.1.0"), "fresh"),
                                                    token="bob")
        self.assertEqual((status, doc["revision"], doc["version"]), (200, 2, "1.1.0"), doc)
        self.assertNotIn("fresh", [p["name"] for p in doc["output_ports"]])   # unused: deleted
        status, _, doc = self.stack.import_contract(contract_variant(text, version="1.2.0"), token="alice")
        self.assertEqual((status, doc["revision"], doc["owner_user_id"]), (200, 3, bob_id), doc)
        # another organization's member is not concerned: the same contract id is their own product
        status, _, doc = self.stack.import_contract(text, token="carol")
        self.assertEqual(status, 201, doc)

    # ---- a port consumers depend on ----------------------------------------------------------------
    def test_03_owner_dropping_a_published_port_retires_it(self):
        published = self.publish_done("analytics", WS_ADMIN, "Retire me")
        port = self.ports["analytics"]
        with self.db() as db:
            rows = db.execute("SELECT id, semantic_model_id FROM published_models WHERE output_port_id = ?",
                              (port,)).fetchall()
        self.assertTrue(rows)
        status, _, doc = self.stack.import_contract(without_server(CONTRACT, "analytics"), token="alice")
        self.assertEqual(status, 200, doc)
        brief = {p["name"]: p for p in doc["output_ports"]}["analytics"]
        self.assertEqual((brief["id"], brief["status"]), (port, "retired"), brief)
        self.assertTrue(brief["retired_at"])
        status, _, got = self.stack.json("GET", "/api/output-ports/" + port, token="bob")
        self.assertEqual((status, got["status"]), (200, "retired"), got)
        # the records that depend on it survive
        with self.db() as db:
            self.assertEqual(db.execute("SELECT id, semantic_model_id FROM published_models WHERE output_port_id = ?",
                                        (port,)).fetchall(), rows)
        status, _, models = self.stack.json("GET", "/api/output-ports/%s/powerbi-models" % port, token="alice")
        self.assertIn(published["semantic_model_id"], [m["semantic_model_id"] for m in models["models"]])
        status, _, agreement = self.stack.json("GET", "/api/agreements/" + published["agreement_id"], token="alice")
        self.assertEqual((status, agreement["provider"]["retired"]), (200, True), agreement)
        # refused for new publishes and renders, in plain words
        err = self.assertError(self.publish(port, {"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION}), 409,
                               "port_retired")
        self.assertIn("retired", err["message"])
        self.assertError(self.stack.json("GET", "/api/output-ports/%s/tmdl" % port, token="alice"), 409, "port_retired")
        # the server comes back: the same port, in service again
        status, _, doc = self.stack.import_contract(CONTRACT, token="alice")
        self.assertEqual(status, 200, doc)
        brief = {p["name"]: p for p in doc["output_ports"]}["analytics"]
        self.assertEqual((brief["id"], brief["status"], brief["retired_at"]), (port, "active", None))
        self.assertEqual(self.stack.json("GET", "/api/output-ports/%s/tmdl" % port, token="alice")[0], 200)

    def test_04_unused_port_is_deleted(self):
        text = contract_variant(CONTRACT, contract_id="urn:pbiport:it:unused")
        status, _, doc = self.stack.import_contract(text, token="alice")
        self.assertEqual(status, 201, doc)
        lake = {p["name"]: p["id"] for p in doc["output_ports"]}["lakehouse"]
        status, _, doc = self.stack.import_contract(without_server(text, "lakehouse"), token="alice")
        self.assertEqual(status, 200, doc)
        self.assertNotIn("lakehouse", [p["name"] for p in doc["output_ports"]])
        self.assertError(self.stack.json("GET", "/api/output-ports/" + lake, token="alice"), 404)

    # ---- agreements -------------------------------------------------------------------------------
    def test_05_agreements_either_side_and_paged(self):
        one = self.publish_done("analytics", WS_ADMIN, "Agreement one")
        two = self.publish_done("analytics", WS_MEMBER, "Agreement two")
        source = self.product["id"]
        status, _, doc = self.stack.json("GET", "/api/agreements?data_product=" + source, token="bob")
        self.assertEqual(status, 200, doc)
        ids = [a["id"] for a in doc["agreements"]]
        self.assertLess(ids.index(two["agreement_id"]), ids.index(one["agreement_id"]))   # newest first
        # the consumer side finds its own agreement
        status, _, doc = self.stack.json("GET", "/api/agreements?data_product=" + one["consumer_data_product_id"],
                                         token="bob")
        self.assertEqual([a["id"] for a in doc["agreements"]], [one["agreement_id"]])
        # one at a time with the cursor
        seen, query = [], "?limit=1&data_product=" + source
        while True:
            status, _, page = self.stack.json("GET", "/api/agreements" + query, token="alice")
            self.assertEqual(status, 200, page)
            self.assertLessEqual(len(page["agreements"]), 1)
            seen += [a["id"] for a in page["agreements"]]
            if not page["next_cursor"]:
                break
            query = "?limit=1&data_product=%s&cursor=%s" % (source, page["next_cursor"])
        self.assertEqual(seen, ids)
        status, _, doc = self.stack.json("GET", "/api/agreements?state=approved", token="alice")
        self.assertTrue({one["agreement_id"], two["agreement_id"]} <= {a["id"] for a in doc["agreements"]})
        status, _, doc = self.stack.json("GET", "/api/agreements?state=rejected", token="alice")
        self.assertEqual(doc["agreements"], [])
        for query, word in (("?state=done", "state"), ("?limit=0", "limit"), ("?cursor=x", "cursor")):
            err = self.assertError(self.stack.json("GET", "/api/agreements" + query, token="alice"), 400,
                                   "bad_request")
            self.assertIn(word, err["message"])
        err = self.assertError(self.stack.json("GET", "/api/agreements?data_product=" + "0" * 32, token="alice"), 404,
                               "not_found")
        self.assertIn("data_product", err["message"])

    def test_06_one_agreement_and_the_consumers_link(self):
        res = self.publish_done("analytics", WS_ADMIN, "Linked")
        status, _, a = self.stack.json("GET", "/api/agreements/" + res["agreement_id"], token="bob")
        self.assertEqual(status, 200, a)
        alice_id = self.user_id("alice")
        self.assertEqual(a["state"], "approved")
        self.assertEqual(a["consumer"], {"data_product_id": res["consumer_data_product_id"], "name": "Linked",
                                         "type": "powerbi_semantic_model", "status": "active"})
        self.assertEqual((a["terminated_by"], a["terminated_at"]), (None, None))
        self.assertEqual((a["provider"]["output_port_id"], a["provider"]["output_port_name"],
                          a["provider"]["data_product_id"], a["provider"]["retired"]),
                         (self.ports["analytics"], "analytics", self.product["id"], False))
        self.assertEqual(a["requested_by"], {"user_id": alice_id, "name": "alice"})
        self.assertEqual(a["approved_by"], {"user_id": alice_id, "name": "alice", "automatic": True})
        self.assertTrue(a["approved_at"] and a["created_at"])
        # GET /api/data-products/{consumer} shows the port it consumes
        doc = self.product_doc(res["consumer_data_product_id"], user="bob")
        self.assertEqual([c["id"] for c in doc["consumes"]], [res["agreement_id"]])
        self.assertEqual(doc["consumes"][0]["provider"]["output_port_id"], self.ports["analytics"])
        self.assertEqual(self.product_doc(self.product["id"])["consumes"], [])
        # another organization sees none of it
        self.assertError(self.stack.json("GET", "/api/agreements/" + res["agreement_id"], token="carol"), 404,
                         "not_found")
        self.assertError(self.stack.json("GET", "/api/agreements?data_product=" + self.product["id"], token="carol"),
                         404)
        status, _, doc = self.stack.json("GET", "/api/agreements", token="carol")
        self.assertEqual((status, doc["agreements"]), (200, []))


if __name__ == "__main__":
    harness.main()
