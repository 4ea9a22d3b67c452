"""Kept pages through nginx and a pool of two processes (runtime/page_render.h): a process keeps a
data product's page it rendered and gives it again while its organization's catalog version, read
with the caller's identity, has not moved (sql/0018, 0019). Read again and again, the page is the
same but for what belongs to the request: its request id (the response's X-Request-Id) and the
form token, which is the one pbiport signs for that user and path; every kind of write of what the
page shows, straight into the database by another process, is seen by the next read of both
processes (product, port, published model, the owner's and the organization's names); a member
never gets the page kept for an owner; an edited template shows within seconds; a template that
cuts the request id is rendered for every request, and still right. Runs on the engine
PBIPORT_TEST_DB names (tests/run.sh runs it on both)."""
import base64
import hashlib
import hmac
import os
import re
import secrets
import time
import unittest

import harness
from harness import contract_variant, fixture

READS = 12   # enough for both processes of the pool to answer from a kept page
KEY = "58" * 32
HTML = {"Accept": "text/html"}
SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "templates", "web", "product.lua")
FOOTER_ID = re.compile(r"request <code>([^<]*)</code>")
TOKEN = re.compile(r'<p id="token">([^<]*)</p>')
# the shipped page with the form token, a footer and the request id shown in its lead
LEAD = '    lead = c.description and h.p{ class = "description", c.description },'


def lua_string(text):
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def csrf_tokens(user_id, path):
    """The tokens pbiport accepts now for user_id's form at path (runtime/page_csrf.c)."""
    window = int(time.time()) // 7200
    out = set()
    for w in (window - 1, window, window + 1):
        msg = "pbiport-csrf-v1\n%s\n%s\n%d" % (user_id, path, w)
        mac = hmac.new(bytes.fromhex(KEY), msg.encode(), hashlib.sha256).digest()
        out.add(base64.urlsafe_b64encode(mac).decode().rstrip("="))
    return out


class KeptPages(harness.StackTestCase):
    ENV = {"APPLICATION_SECURITY_REMEMBERME_KEY": KEY}
    ADMIN_TEMPLATES = True

    @classmethod
    def fill_templates(cls, folder):
        os.makedirs(os.path.join(folder, "web"))
        cls.write_template("", folder=folder)

    @classmethod
    def write_template(cls, footer, cut=False, folder=None):
        """The admin's web/product.lua: the shipped one, showing the form token, footer and, when
        cut, the request id's first 9 characters."""
        with open(SHIPPED) as f:
            text = f.read()
        assert text.count(LEAD) == 1, "templates/web/product.lua changed: update this test"
        shown = 'h.p{ id = "token", view.page.csrf_token }, h.p{ id = "footer", %s }' % lua_string(footer)
        if cut:
            shown += ', h.p{ id = "cut", string.sub(view.page.request_id, 1, 9) }'
        lead = '    lead = { %s, c.description and h.p{ class = "description", c.description } },' % shown
        path = os.path.join(folder or cls.tpl, "web", "product.lua")
        with open(path + ".new", "w") as f:
            f.write(text.replace(LEAD, lead))
        os.rename(path + ".new", path)

    def setUp(self):
        text = contract_variant(fixture("orders.odcs.yaml"), contract_id="urn:pbiport:it:kept-" + secrets.token_hex(4))
        status, _, doc = self.stack.import_contract(text, token="alice")
        self.assertEqual(status, 201, doc)
        self.product = doc
        self.path = "/data-products/" + doc["id"]

    def page(self, user="alice"):
        """One read of the product page: its text with the request's own values checked and cut out."""
        rid = "kept-" + secrets.token_hex(8)
        status, hdrs, body = self.stack.request("GET", self.path, headers=dict(HTML, **{"X-Request-Id": rid}),
                                                basic=user)
        text = body.decode()
        self.assertEqual(status, 200, text[:300])
        self.assertEqual(hdrs.get("x-request-id"), rid)
        self.assertEqual(FOOTER_ID.findall(text), [rid])
        tokens = TOKEN.findall(text)
        self.assertEqual(len(tokens), 1, text[-600:])
        self.assertIn(tokens[0], csrf_tokens(self.stack.scalar("SELECT id FROM users WHERE name = ?", user), self.path))
        self.assertIn("default-src 'self'", hdrs.get("content-security-policy", ""))
        self.assertEqual(hdrs.get("cache-control"), "no-store")
        return text.replace(rid, "RID").replace(tokens[0], "TOKEN")

    def reads(self, user="alice"):
        """READS reads of the page: all the same but for the request's values; that page."""
        pages = [self.page(user) for _ in range(READS)]
        self.assertTrue(all(p == pages[0] for p in pages), "the page changed between reads")
        return pages[0]

    def test_kept_page_answers_each_request_with_its_own_values(self):
        alice = self.reads("alice")
        self.assertIn(self.product["name"], alice)
        bob = self.reads("bob")   # a member: his own name and role, his own token
        self.assertIn("bob", bob)
        self.assertNotEqual(alice, bob)
        status, _, body = self.stack.request("GET", self.path, headers=HTML, basic="carol")
        self.assertEqual(status, 404, body[:200])   # another organization's product

    def test_every_write_the_page_shows_is_seen_by_the_next_read(self):
        self.reads()
        self.stack.execute("UPDATE data_products SET name = ? WHERE id = ?", "kept-renamed", self.product["id"])
        self.assertIn("kept-renamed", self.reads())
        port = self.product["output_ports"][0]["id"]
        self.stack.execute("UPDATE output_ports SET name = ? WHERE id = ?", "kept-port-renamed", port)
        self.assertIn("kept-port-renamed", self.reads())
        # a semantic model published from the port, as a worker writes it, then changed
        model = secrets.token_hex(16)
        self.stack.execute("INSERT INTO published_models (id, org_id, output_port_id, job_id, workspace_id, "
                   "semantic_model_id, name, published_at) SELECT ?, org_id, id, ?, ?, ?, ?, ? FROM output_ports "
                   "WHERE id = ?", model, secrets.token_hex(16), secrets.token_hex(16), secrets.token_hex(16),
                   "kept-model", "2026-01-01T00:00:00.000Z", port)
        self.assertIn("kept-model", self.reads())
        self.stack.execute("UPDATE published_models SET name = ? WHERE id = ?", "kept-model-renamed", model)
        self.assertIn("kept-model-renamed", self.reads())
        self.stack.execute("DELETE FROM published_models WHERE id = ?", model)
        self.assertNotIn("kept-model", self.reads())
        # the names the page's frame shows: the organization's and the user's
        org = self.stack.scalar("SELECT org_id FROM users WHERE name = 'alice'")
        was = self.stack.scalar("SELECT name FROM organizations WHERE id = ?", org)
        self.stack.execute("UPDATE organizations SET name = ? WHERE id = ?", "acme-renamed", org)
        try:
            self.assertIn("acme-renamed", self.reads())
        finally:
            self.stack.execute("UPDATE organizations SET name = ? WHERE id = ?", was, org)
        self.assertNotIn("acme-renamed", self.reads())
        self.stack.execute("UPDATE users SET role = 'member' WHERE name = 'alice'")
        try:
            self.assertIn("member", self.reads())
        finally:
            self.stack.execute("UPDATE users SET role = 'owner' WHERE name = 'alice'")
        # deleted: not found by every process at once
        status, _, doc = self.stack.json("DELETE", "/api/data-products/" + self.product["id"], token="alice")
        self.assertEqual(status, 204, doc)
        for _ in range(READS):
            status, _, body = self.stack.request("GET", self.path, headers=HTML, basic="alice")
            self.assertEqual(status, 404, body[:200])

    def settled_reads(self, want):
        """reads() once every process shows the template as edited (want(page) true for all):
        each checks its templates at most once a second, so within a few seconds."""
        deadline = time.monotonic() + 10
        while not all(want(self.page()) for _ in range(READS)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.reads()

    def test_edited_template_shows(self):
        self.reads()
        try:
            # a file changed in the last two seconds is rendered but not kept (its next change
            # could leave the same times); after that the edited page is kept again
            self.write_template("edited footer")
            self.assertIn("edited footer", self.settled_reads(lambda page: "edited footer" in page))
        finally:
            self.write_template("")
        self.assertNotIn("edited footer", self.settled_reads(lambda page: "edited footer" not in page))

    def test_template_that_cuts_the_request_id_is_rendered_each_time(self):
        self.reads()   # the page (showing the values as they are) is kept, its template found to pass
        try:
            self.write_template("cut", cut=True)
            # past the two seconds a just-changed file is not kept for: the processes find out
            # the edited template from its file's change alone
            time.sleep(2.2)
            for _ in range(READS):
                rid = "cut-" + secrets.token_hex(8)
                status, _, body = self.stack.request("GET", self.path, headers=dict(HTML, **{"X-Request-Id": rid}),
                                                     basic="alice")
                self.assertEqual(status, 200, body[:300])
                self.assertIn('<p id="cut">%s</p>' % rid[:9], body.decode())
                self.assertEqual(FOOTER_ID.findall(body.decode()), [rid])
        finally:
            self.write_template("")

if __name__ == "__main__":
    unittest.main()
