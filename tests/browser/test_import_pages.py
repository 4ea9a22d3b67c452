"""Import pages in a real Chromium against the emulator, as an organization owner uses them: the Add
Integration wizard (credentials, filters with *, a schedule with its next runs, a name), Test with
the permission doctor's checks, Run now and the run in the last-10 table; the assets it imported,
an asset's page with its upstream, downstream and lineage picture (Graphviz SVG whose boxes link to
their pages), Import from Microsoft Fabric turning a model into a data product; hostile names from
Power BI escaped and intact in the pages and inside the SVG; a member sees no owner page (403),
another organization's ids answer 404. Every page: no console error, axe-core clean, a screenshot in
build/test-artifacts/browser/."""

import copy
import json
import os
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET

import browser
import harness

with open(os.path.join(harness.ROOT, "tests", "fixtures", "tenants", "demo.json"), encoding="utf-8") as _f:
    DEMO = json.load(_f)
TENANT = DEMO["tenants"][0]["id"]
SCAN_APP = DEMO["tenants"][0]["apps"][1]
ALICE = "alice@contoso.example"
HOSTILE_MODEL = "\"Quote\" <script>alert('x')</script> & 🚀 שלום"
HOSTILE_WS = "<img src=x onerror=alert(1)> Workspace"
SVG_NS = "{http://www.w3.org/2000/svg}"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([A-Za-z0-9_-]+)"')
HTML = {"Accept": "text/html"}


def tenant_fixture():
    """demo.json with quick scans and a workspace whose names try to break out of HTML and SVG."""
    fx = copy.deepcopy(DEMO)
    fx["emulator"]["scan_duration_s"] = 1
    t = fx["tenants"][0]
    t["workspaces"].append({
        "id": "22222222-0000-4000-8000-000000000099", "name": HOSTILE_WS,
        "roles": [{"principal": ALICE, "role": "Admin"}, {"principal": SCAN_APP["client_id"], "role": "Viewer"}],
        "semantic_models": [{
            "id": "33333333-0000-4000-8000-000000000099", "name": HOSTILE_MODEL, "owner": ALICE, "refreshed": True,
            "tables": [{"name": "Facts <b>", "columns": [
                {"name": "Id", "dataType": "Int64"}, {"name": "Amount & \"more\"", "dataType": "Double"}],
                "partitions": [{"name": "Facts", "mode": "import", "source":
                                'let S = Snowflake.Databases("acme.snowflakecomputing.com", "WH"),\n'
                                ' D = S{[Name="SALES",Kind="Database"]}[Data],\n'
                                ' Sc = D{[Name="PUBLIC",Kind="Schema"]}[Data],\n'
                                ' T = Sc{[Name="FACTS",Kind="Table"]}[Data]\nin T'}]}]}],
        "reports": [{"id": "44444444-0000-4000-8000-000000000099", "name": "Report </svg><script>x</script>",
                     "dataset_id": "33333333-0000-4000-8000-000000000099"}],
        "dashboards": []})
    return fx


class ImportPages(browser.BrowserEmulatorTestCase):
    EMU_ENV = dict(browser.PAGE_ENV, APPLICATION_INGESTIONS_ENABLED="true", APPLICATION_ENCRYPTION_KEYS="66" * 32,
                   PBIPORT_SCAN_POLL_MS="100", PBIPORT_SCAN_POLL_MAX_MS="400")

    @classmethod
    def set_up_stack(cls):
        cls.load_tenants_aged(tenant_fixture())

    # ---- helpers -------------------------------------------------------------------------
    def api(self, method, path, user="alice", body=None):
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        status, _, data = self.stack.request(method, path, body=json.dumps(body) if body is not None else None,
                                             headers=hdrs, token=user)
        return status, (json.loads(data.decode()) if data else None)

    def integration(self, name):
        """An integration made through the API (for the tests that are not about the wizard)."""
        status, doc = self.api("POST", "/api/integrations", body={
            "name": name, "type": "powerbi", "tenant_id": TENANT, "client_id": SCAN_APP["client_id"],
            "client_secret": SCAN_APP["client_secret"]})
        self.assertEqual(status, 201, doc)
        return doc

    def run_worker(self):
        rc, _, err = self.stack.cli("worker", "--once", "--lease-seconds", "3", check=False)
        self.assertEqual(rc, 0, err)

    def imported(self):
        """Assets from one run of an integration (made once per class)."""
        if not getattr(type(self), "_imported", None):
            doc = self.integration("assets-%d" % os.getpid())
            status, _ = self.api("POST", "/api/integrations/%s/runs" % doc["id"])
            self.assertEqual(status, 202)
            self.run_worker()
            status, runs = self.api("GET", "/api/integrations/%s/runs" % doc["id"])
            self.assertEqual(runs["runs"][0]["state"], "succeeded", runs)
            type(self)._imported = True
        status, doc = self.api("GET", "/api/assets")
        self.assertEqual(status, 200, doc)
        return {(a["kind"], a["name"]): a for a in doc["assets"]}

    def svg_document(self):
        """The lineage picture's document inside the page's <object> (same origin), once loaded."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ok = self.b.driver.execute_script(
                "var o = document.querySelector('.lineage-picture object');"
                "return !!(o && o.contentDocument && o.contentDocument.querySelector('svg a, svg g.node'));")
            if ok:
                return
            time.sleep(0.1)
        self.fail("the lineage picture did not load on " + self.b.path())

    def svg_titles(self):
        self.svg_document()
        return self.b.driver.execute_script(
            "var d = document.querySelector('.lineage-picture object').contentDocument;"
            "return Array.prototype.map.call(d.querySelectorAll('.node > title'), function (t) { return t.textContent; });")

    # ---- the wizard, Test, Run now -----------------------------------------------------------
    def test_add_integration_test_and_run(self):
        self.login("alice")
        self.open("/settings/integrations")
        self.assertEqual(self.b.text("h1"), "Integrations")
        self.check_page("integrations-empty")
        self.b.link("Add Integration").click()
        self.b.wait_for_path("/settings/integrations/new")
        self.assertEqual([e.text.strip() for e in self.b.css_all(".step > legend")],
                         ["1 Credentials", "2 Filters", "3 Schedule", "4 Name"])
        self.b.css("#tenant_id").send_keys(TENANT)
        self.b.css("#client_id").send_keys(SCAN_APP["client_id"])
        self.b.css("#client_secret").send_keys(SCAN_APP["client_secret"])
        self.b.css("#workspaces_exclude").send_keys("*test*")
        # a cron schedule shows its next runs as it is typed (the page's script asks the page)
        self.b.css("#cron").send_keys("30 5 * * 1")
        self.b.wait_for_text("#schedule-preview", "Next runs of 30 5 * * 1", timeout=10)
        self.assertEqual(len(self.b.css_all("#schedule-preview li")), 5)
        self.assertTrue(all("05:30 UTC" in li.text for li in self.b.css_all("#schedule-preview li")))
        self.assertTrue(self.b.css("#schedule-custom").is_selected())
        # every preset says when it runs next
        self.assertIn("Next:", self.b.text("label[for=schedule-1] + .hint, #schedule-1-runs"))
        self.b.css("#name").send_keys("prod")
        self.check_page("integration-wizard")
        self.b.click_and_load(self.b.css("form.wizard button[type=submit]"))
        path = self.b.path()
        self.assertRegex(path, r"^/settings/integrations/[0-9a-f]{32}$")
        self.assertEqual(self.b.text("h1"), "prod")
        self.assertIn("30 5 * * 1", self.b.text(".details"))
        self.assertEqual(len(self.b.css_all(".details .next-runs li")), 5)
        self.assertIn("Not run yet", self.b.text("main"))
        self.check_page("integration-new")

        # Test: the permission doctor's checks
        self.b.click_and_load(self.b.css("button[value=test]"))
        checks = self.b.css_all("#test .check")
        self.assertGreaterEqual(len(checks), 4)
        self.assertIn("Credentials", checks[0].text)
        self.assertIn("passed", checks[0].text)
        self.check_page("integration-test")

        # Run now: the run is queued at the top of the last-10 table, then the worker runs it
        self.b.click_and_load(self.b.css("button[value=run]"))
        self.assertEqual(self.b.path(), path)
        rows = self.b.css_all("table.runs tbody tr")
        self.assertEqual(len(rows), 1)
        self.assertIn("manual", rows[0].text)
        self.run_worker()
        # the page reloads itself while the run goes on
        row = self.b.wait_for_text("table.runs tbody tr", "succeeded", timeout=20)
        cells = [td.text for td in row.find_elements(self.b.By.CSS_SELECTOR, "td.num")]
        self.assertGreaterEqual(int(cells[0]), 1)    # workspaces
        self.assertGreaterEqual(int(cells[1]), 1)    # models
        self.assertIn("succeeded", self.b.text(".details"))
        self.b.wait_ready()
        self.check_page("integration-ran")
        self.open("/settings/integrations")
        self.assertIn("prod", [a.text for a in self.b.css_all("tbody th a")])
        self.check_page("integrations-list")

    def test_wizard_refuses_a_bad_schedule_and_keeps_the_fields(self):
        self.login("alice")
        self.open("/settings/integrations/new")
        self.b.css("#tenant_id").send_keys(TENANT)
        self.b.css("#client_id").send_keys(SCAN_APP["client_id"])
        self.b.css("#client_secret").send_keys("secret-typed")
        self.b.css("#schedule-custom").click()
        self.b.css("#cron").send_keys("*/5 * * * *")
        self.b.css("#name").send_keys("too often")
        self.b.click_and_load(self.b.css("form.wizard button[type=submit]"))
        self.assertEqual(self.b.path(), "/settings/integrations/new")
        alert = self.b.text("[role=alert]")
        self.assertIn("The integration was not added", alert)
        self.assertIn("12 h", alert)
        self.assertEqual(self.b.css("#name").get_attribute("value"), "too often")
        self.assertEqual(self.b.css("#cron").get_attribute("value"), "*/5 * * * *")
        self.assertEqual(self.b.css("#client_secret").get_attribute("value"), "")   # never shown again
        self.assertNotIn("secret-typed", self.b.driver.page_source)
        self.check_page("integration-wizard-error", status=400)

    # ---- assets, the lineage picture, Import from Microsoft Fabric -------------------------
    def test_asset_page_lineage_picture_and_import(self):
        assets = self.imported()
        model = assets[("semantic_model", "Sales")]
        self.login("bob")
        self.open("/assets")
        self.assertIn("Sales", [a.text for a in self.b.css_all("tbody th a")])
        self.check_page("assets")
        self.open("/assets?type=report")
        self.assertTrue(all("report" in td.text for td in self.b.css_all("tbody td:nth-child(2)")))
        self.open("/assets/" + model["id"])
        self.assertEqual(self.b.text("h1"), "Sales")
        self.assertIn("Orders", self.b.text(".schema-table h3"))
        self.assertTrue(self.b.css_all("section[aria-labelledby=downstream] li"))    # its reports
        titles = self.svg_titles()
        self.assertIn("Sales (semantic model), this page", titles)
        self.assertTrue(any(t.endswith("(report)") for t in titles))
        self.check_page("asset-model")
        # the picture's boxes link to their pages, opening in the page itself
        href = self.b.driver.execute_script(
            "var d = document.querySelector('.lineage-picture object').contentDocument;"
            "var a = d.querySelector('a.node'); return [a.getAttribute('href'), a.getAttribute('target')];")
        self.assertRegex(href[0], r"^/(assets|data-products)/[0-9a-f]{32}")
        self.assertEqual(href[1], "_top")

        # Import from Microsoft Fabric: the model becomes a data product, and its page opens
        self.b.driver.find_element(self.b.By.XPATH, "//button[normalize-space()='Import from Microsoft Fabric']").click()
        path = self.b.wait_for_path("/data-products/")
        self.assertRegex(path, r"^/data-products/[0-9a-f]{32}$")
        self.assertEqual(self.b.text("h1"), "Sales")
        self.assertIn("Orders", [h.text.split()[0] for h in self.b.css_all(".schema-table h3")])
        self.svg_document()                                  # the product page shows its lineage too
        self.check_page("product-from-asset")
        # a data source cannot be imported: no button
        source = next(a for (k, _), a in assets.items() if k == "datasource")
        self.open("/assets/" + source["id"])
        self.assertEqual(self.b.driver.find_elements(
            self.b.By.XPATH, "//button[normalize-space()='Import from Microsoft Fabric']"), [])
        self.check_page("asset-datasource")

    def test_hostile_names_escaped_in_pages_and_svg(self):
        assets = self.imported()
        model = assets[("semantic_model", HOSTILE_MODEL)]
        self.login("alice")
        self.open("/assets/" + model["id"])
        self.assertEqual(self.b.text("h1"), HOSTILE_MODEL)
        self.assertIn(HOSTILE_WS, self.b.text(".details"))
        self.assertIn("Facts <b>", self.b.text(".schema-table h3"))
        self.assertIn("Amount & \"more\"", self.b.text(".schema-table tbody"))
        titles = self.svg_titles()
        self.assertIn(HOSTILE_MODEL + " (semantic model), this page", titles)
        self.assertIn("Report </svg><script>x</script> (report)", titles)
        # nothing ran or was injected, in the page or in the picture
        self.assertEqual(len(self.b.css_all("script")), 1)
        self.assertEqual(self.b.css_all("main img"), [])
        self.assertEqual(self.b.driver.execute_script(
            "return document.querySelector('.lineage-picture object').contentDocument"
            ".querySelectorAll('script, img, foreignObject, [onload], [onerror]').length"), 0)
        self.check_page("asset-hostile")
        # the SVG itself: well-formed XML, the names as text, a strict policy
        status, headers, data = self.stack.request("GET", "/lineage.svg?node=%s&depth=2" % model["id"], token="alice")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("image/svg+xml"))
        self.assertIn("default-src 'none'", headers["content-security-policy"])
        self.assertIn("frame-ancestors 'self'", headers["content-security-policy"])
        root = ET.fromstring(data)
        texts = [t.text for t in root.iter(SVG_NS + "title")]
        self.assertIn(HOSTILE_MODEL + " (semantic model), this page", texts)
        self.assertEqual([e for e in root.iter() if e.tag in (SVG_NS + "script", SVG_NS + "foreignObject")], [])
        self.assertFalse(any(k.lower().startswith("on") for e in root.iter() for k in e.attrib))
        self.assertIn(b"&lt;script&gt;", data)

    # ---- the HTTP side: CSRF on the forms, headers, bad parameters -------------------------
    def page(self, path, user="alice", method="GET", fields=None, headers=None):
        body = urllib.parse.urlencode(fields) if fields is not None else None
        hdrs = dict(HTML, **(headers or {}))
        if fields is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        return self.stack.request(method, path, body=body, headers=hdrs, basic=user)

    def test_forms_are_csrf_checked_and_pages_have_their_headers(self):
        doc = self.integration("http-%d" % os.getpid())
        assets = self.imported()
        model = assets[("semantic_model", "Sales")]
        origin = "http://127.0.0.1:%d" % self.stack.port
        for path in ("/settings/integrations", "/settings/integrations/new", "/settings/integrations/" + doc["id"],
                     "/assets", "/assets/" + model["id"], "/semantic-models/" + model["id"], "/push-datasets"):
            status, hdrs, body = self.page(path)
            self.assertEqual(status, 200, (path, body[:300]))
            self.assertTrue(hdrs["content-security-policy"].startswith("default-src 'self'"), path)
            self.assertEqual(hdrs["x-frame-options"], "DENY", path)
        # a form another site makes the browser send is refused before anything runs
        for path, fields in (("/settings/integrations/" + doc["id"], {"action": "run"}),
                             ("/assets/" + model["id"], {"go": "1"}),
                             ("/semantic-models/" + model["id"], {"action": "refresh"})):
            _, _, page = self.page(path)
            token = TOKEN.search(page.decode()).group(1)
            status, _, body = self.page(path, method="POST", fields=dict(fields, csrf_token=token),
                                        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
            self.assertEqual(status, 403, path)
            self.assertIn(b"csrf_failed", body)
            status, _, body = self.page(path, method="POST", fields=fields, headers={"Origin": origin})
            self.assertEqual(status, 403, path)                                  # no token
        status, runs = self.api("GET", "/api/integrations/%s/runs" % doc["id"])
        self.assertEqual(runs["runs"], [])                                      # nothing was run
        # the same form with its token from this site runs it, and answers with the page again
        _, _, page = self.page("/settings/integrations/" + doc["id"])
        token = TOKEN.search(page.decode()).group(1)
        status, hdrs, _ = self.page("/settings/integrations/" + doc["id"], method="POST",
                                    fields={"action": "run", "csrf_token": token},
                                    headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
        self.assertEqual(status, 303)
        self.assertEqual(hdrs["location"], "/settings/integrations/" + doc["id"])
        status, _, body = self.page("/settings/integrations/" + doc["id"], method="POST",
                                    fields={"action": "delete-everything", "csrf_token": token},
                                    headers={"Origin": origin})
        self.assertEqual(status, 400)
        self.assertIn(b"action must be test or run", body)
        # the picture: parameters checked, its own policy, the layout's time said
        for query, status_wanted in (("", 400), ("?node=" + model["id"] + "&depth=11", 400),
                                     ("?node=" + model["id"] + "&depth=x", 400), ("?node=nope", 404),
                                     ("?node=" + model["id"] + "&color=red", 400)):
            status, _, _ = self.page("/lineage.svg" + query)
            self.assertEqual(status, status_wanted, query)
        status, hdrs, body = self.page("/lineage.svg?node=" + model["id"])
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["x-frame-options"], "SAMEORIGIN")
        self.assertRegex(hdrs["server-timing"], r"^layout;dur=\d+\.\d$")
        self.assertEqual(hdrs["x-content-type-options"], "nosniff")
        ET.fromstring(body)

    # ---- who sees what -----------------------------------------------------------------------
    def test_member_gets_403_and_other_org_404(self):
        doc = self.integration("private-%d" % os.getpid())
        assets = self.imported()
        some = next(iter(assets.values()))
        self.login("bob")
        for path in ("/settings/integrations", "/settings/integrations/new", "/settings/integrations/" + doc["id"]):
            self.open(path)
            self.assertEqual(self.b.text("h1"), "Forbidden", path)
            self.assert_no_console_errors(status=403)
        self.check_page("integrations-403", status=403)
        self.login("carol")                                    # globex's owner
        for path in ("/settings/integrations/" + doc["id"], "/assets/" + some["id"]):
            self.open(path)
            self.assertEqual(self.b.text("h1"), "Not Found", path)
            self.assert_no_console_errors(status=404)
        self.open("/lineage.svg?node=" + some["id"])
        self.assertIn("Not Found", self.b.text("h1"))
        self.assert_no_console_errors(status=404)
        self.open("/assets")
        self.assertIn("Nothing imported yet", self.b.text("main"))
        self.check_page("assets-other-org")


if __name__ == "__main__":
    browser.main()
