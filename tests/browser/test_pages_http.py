"""The pages' HTTP side through nginx (no browser needed): security headers on every page and on
its error pages, Cache-Control, CSRF (a cross-site or token-less form post refused 403, the page's
own form accepted), another organization's id answered with the 404 page, an unknown path from a
browser as HTML and under /api/ as JSON, static files with ETag / 304. Python standard library
only."""

import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import contract_variant, fixture  # noqa: E402

CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
HTML = {"Accept": "text/html,application/xhtml+xml"}
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([A-Za-z0-9_-]+)"')


class PagesHttp(harness.StackTestCase):
    ENV = {"APPLICATION_SECURITY_REMEMBERME_KEY": "58" * 32}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        status, _, doc = cls.stack.import_contract(
            contract_variant(fixture("orders.odcs.yaml"), contract_id="urn:pbiport:http:orders"), token="alice")
        assert status == 201, doc
        cls.product = doc

    def page(self, path, user="alice", method="GET", body=None, headers=None):
        return self.stack.request(method, path, body=body, headers=dict(HTML, **(headers or {})), basic=user)

    def assert_page_headers(self, hdrs, path):
        self.assertEqual(hdrs.get("content-security-policy"), CSP, path)
        self.assertEqual(hdrs.get("x-content-type-options"), "nosniff", path)
        self.assertEqual(hdrs.get("referrer-policy"), "same-origin", path)
        self.assertEqual(hdrs.get("x-frame-options"), "DENY", path)
        self.assertTrue(hdrs.get("content-type", "").startswith("text/html; charset=utf-8"), path)

    def form_token(self, path, user="alice"):
        status, _, body = self.page(path, user)
        self.assertEqual(status, 200, body[:300])
        m = TOKEN.search(body.decode())
        self.assertIsNotNone(m, "no csrf_token field on " + path)
        return m.group(1)

    def post_form(self, path, fields, user="alice", headers=None):
        body = urllib.parse.urlencode(fields)
        return self.page(path, user, "POST", body,
                         dict({"Content-Type": "application/x-www-form-urlencoded"}, **(headers or {})))

    def test_headers_on_every_page(self):
        pages = {
            "/": 200,
            "/?q=ord": 200,
            "/data-products/new": 200,
            "/data-products/" + self.product["id"]: 200,
            "/data-products/" + "0" * 32: 404,
            "/no/such/page": 404,
        }
        for path, want in pages.items():
            status, hdrs, body = self.page(path)
            self.assertEqual(status, want, (path, body[:300]))
            self.assert_page_headers(hdrs, path)
            self.assertEqual(hdrs.get("cache-control"), "no-store", path)   # personal pages
            self.assertTrue(body.startswith(b"<!DOCTYPE html>"), path)

    def test_member_sees_the_pages_too(self):
        status, hdrs, body = self.page("/data-products/" + self.product["id"], user="bob")
        self.assertEqual(status, 200)
        self.assertIn(b"bob", body)
        self.assertNotIn(b'href="/settings/power-bi"', body)            # owners only
        status, _, body = self.page("/", user="alice")
        self.assertIn(b'href="/settings/power-bi"', body)

    def test_other_organization_gets_the_404_page(self):
        status, hdrs, body = self.page("/data-products/" + self.product["id"], user="carol")
        self.assertEqual(status, 404)
        self.assert_page_headers(hdrs, "404")
        self.assertIn(b"<h1>Not Found</h1>", body)
        self.assertNotIn(b"Orders", body)
        # the same as the API
        status, _, _ = self.stack.request("GET", "/api/data-products/" + self.product["id"], token="carol")
        self.assertEqual(status, 404)

    def test_api_paths_stay_json(self):
        status, hdrs, body = self.page("/api/no-such-endpoint")
        self.assertEqual(status, 404)
        self.assertTrue(hdrs["content-type"].startswith("application/json"))

    def test_cross_site_form_post_is_refused(self):
        path = "/data-products/new"
        token = self.form_token(path)
        contract = contract_variant(fixture("orders.odcs.yaml"), contract_id="urn:pbiport:http:csrf")
        fields = {"csrf_token": token, "contract": contract}
        origin = "http://127.0.0.1:%d" % self.stack.port
        # another site, even with a valid token
        for headers in ({"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
                        {"Origin": "https://evil.example"},
                        {"Sec-Fetch-Site": "cross-site"},
                        {"Origin": "null"}):
            status, hdrs, body = self.post_form(path, fields, headers=headers)
            self.assertEqual(status, 403, (headers, body[:300]))
            self.assert_page_headers(hdrs, "403")
            self.assertIn(b"csrf_failed", body)
        # no token, a wrong one, another user's
        for bad in ({"contract": contract}, dict(fields, csrf_token="x" * 43),
                    dict(fields, csrf_token=self.form_token(path, user="bob"))):
            status, _, body = self.post_form(path, bad, headers={"Origin": origin})
            self.assertEqual(status, 403, body[:300])
        # nothing was created
        status, _, doc = self.stack.json("GET", "/api/data-products", token="alice")
        self.assertNotIn("urn:pbiport:http:csrf", [p["contract_id"] for p in doc["data_products"]])
        # this site's own form, as a browser sends it
        status, hdrs, body = self.post_form(path, fields, headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
        self.assertEqual(status, 303, body[:300])
        self.assertRegex(hdrs["location"], r"^/data-products/[0-9a-f]{32}$")
        self.assert_page_headers(hdrs, "303")

    def test_cross_site_api_post_with_browser_credentials_is_refused(self):
        # The API takes no token, but a POST another site's page makes the browser send (with the
        # browser's basic-auth credentials) is refused; a Bearer token is never sent by itself.
        text = contract_variant(fixture("orders.odcs.yaml"), contract_id="urn:pbiport:http:api-csrf")
        cross = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/yaml"}
        status, _, body = self.stack.request("POST", "/api/data-products", body=text, headers=cross, basic="alice")
        self.assertEqual(status, 403, body[:300])
        self.assertIn(b"csrf_failed", body)
        status, _, body = self.stack.request("POST", "/api/data-products", body=text, headers=cross, token="alice")
        self.assertEqual(status, 201, body[:300])
        same = dict(cross, Origin="http://127.0.0.1:%d" % self.stack.port, **{"Sec-Fetch-Site": "same-origin"})
        status, _, body = self.stack.request("POST", "/api/data-products", body=text, headers=same, basic="alice")
        self.assertEqual(status, 200, body[:300])   # updated, from this site

    def test_multipart_upload(self):
        path = "/data-products/new"
        token = self.form_token(path, user="bob")
        boundary = "----pbiportBoundary7MA4YWxkTrZu0gW"
        contract = fixture("customers.odcs.json")
        body = ("--%s\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n%s\r\n"
                "--%s\r\nContent-Disposition: form-data; name=\"contract\"\r\n\r\n\r\n"
                "--%s\r\nContent-Disposition: form-data; name=\"contract_file\"; filename=\"customers.json\"\r\n"
                "Content-Type: application/json\r\n\r\n%s\r\n--%s--\r\n") % (
            boundary, token, boundary, boundary, contract, boundary)
        status, hdrs, resp = self.page(path, "bob", "POST", body,
                                       {"Content-Type": "multipart/form-data; boundary=" + boundary})
        self.assertEqual(status, 303, resp[:300])
        status, _, page = self.page(hdrs["location"], "bob")
        self.assertIn(b"<h1>Customers</h1>", page)

    def test_static_files(self):
        status, hdrs, body = self.stack.request("GET", "/static/pbiport.css", basic="bob")
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["content-type"], "text/css; charset=utf-8")
        self.assertEqual(hdrs["cache-control"], "public, max-age=600")
        self.assertEqual(hdrs["x-content-type-options"], "nosniff")
        etag = hdrs["etag"]
        status, hdrs, body = self.stack.request("GET", "/static/pbiport.css", basic="bob",
                                                headers={"If-None-Match": etag})
        self.assertEqual(status, 304)
        self.assertEqual(body, b"")
        status, hdrs, _ = self.stack.request("GET", "/static/pbiport.js", basic="bob")
        self.assertEqual((status, hdrs["content-type"]), (200, "text/javascript; charset=utf-8"))
        for name in ("layout.lua", "..%2Fhome.lua", "nope.css"):
            status, _, _ = self.stack.request("GET", "/static/" + name, basic="bob", headers=HTML)
            self.assertIn(status, (400, 404), name)


if __name__ == "__main__":
    harness.main()
