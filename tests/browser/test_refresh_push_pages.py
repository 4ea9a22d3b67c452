"""Refresh and push pages in a real Chromium against the emulator: a semantic model imported by an
integration is refreshed with Refresh now, the refresh appears in the history table and the chart
(an inline SVG of durations and outcomes, titles escaped), a refresh schedule is set with its next
runs and removed again; the push datasets page lists a dataset with its table and the rows sent,
the 31 October 2027 notice and where to go instead; another organization's model answers 404.
Every page: no console error, axe-core clean, a screenshot in build/test-artifacts/browser/."""

import json
import os

import browser
import harness

with open(os.path.join(harness.ROOT, "tests", "fixtures", "tenants", "demo.json"), encoding="utf-8") as _f:
    DEMO = json.load(_f)
TENANT = DEMO["tenants"][0]["id"]
SCAN_APP = DEMO["tenants"][0]["apps"][1]
PUSH_APP = DEMO["tenants"][0]["apps"][2]
WS = DEMO["tenants"][0]["workspaces"][0]["id"]     # the push app is Contributor there
SCHEMA = [{"name": "Sales", "columns": [{"name": "id", "dataType": "Int64"}, {"name": "amount", "dataType": "Double"}]}]


class RefreshPushPages(browser.BrowserEmulatorTestCase):
    EMU_ENV = dict(browser.PAGE_ENV, APPLICATION_INGESTIONS_ENABLED="true", APPLICATION_ENCRYPTION_KEYS="67" * 32,
                   PBIPORT_SCAN_POLL_MS="100", PBIPORT_SCAN_POLL_MAX_MS="400", PBIPORT_REFRESH_POLL_MS="200")

    @classmethod
    def set_up_stack(cls):
        cls.stack.cli("user", "add", "dave", "--org", "acme", "--role", "member", "--team", "data")
        _, out, _ = cls.stack.cli("token", "create", "dave")
        cls.stack.tokens["dave"] = out.strip()

    def api(self, method, path, user="alice", body=None):
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        status, _, data = self.stack.request(method, path, body=json.dumps(body) if body is not None else None,
                                             headers=hdrs, token=user)
        return status, (json.loads(data.decode()) if data else None)

    def run_worker(self):
        rc, _, err = self.stack.cli("worker", "--once", "--lease-seconds", "5", check=False)
        self.assertEqual(rc, 0, err)

    def model(self):
        """The Sales model, imported once per class."""
        if not getattr(type(self), "_model", None):
            status, doc = self.api("POST", "/api/integrations", body={
                "name": "prod", "type": "powerbi", "tenant_id": TENANT, "client_id": SCAN_APP["client_id"],
                "client_secret": SCAN_APP["client_secret"]})
            self.assertEqual(status, 201, doc)
            self.assertEqual(self.api("POST", "/api/integrations/%s/runs" % doc["id"])[0], 202)
            self.run_worker()
            status, doc = self.api("GET", "/api/assets?type=semantic_model&q=Sales")
            type(self)._model = next(a for a in doc["assets"] if a["name"] == "Sales")
        return type(self)._model

    def test_refresh_now_history_chart_and_schedule(self):
        model = self.model()
        self.login("alice")
        self.open("/assets/" + model["id"])
        self.b.driver.find_element(self.b.By.CSS_SELECTOR, "a.button[href^='/semantic-models/']").click()
        path = self.b.wait_for_path("/semantic-models/")
        self.assertEqual(self.b.text("h1"), "Sales")
        self.check_page("model-before-refresh")
        self.b.click_and_load(self.b.driver.find_element(self.b.By.XPATH, "//button[normalize-space()='Refresh now']"))
        self.assertEqual(self.b.path(), path)
        self.assertTrue(self.b.css_all("table.refreshes tbody tr"), "the refresh is listed at once")
        self.run_worker()                        # triggers it in Power BI and follows it to the end
        # the page reloads itself while it runs
        row = self.b.wait_for_text("table.refreshes tbody tr", "Completed", timeout=30)
        self.assertIn("manual", row.text)
        self.assertRegex(row.find_element(self.b.By.CSS_SELECTOR, "td.num").text, r"\d+(\.\d)? s")
        bars = self.b.css_all("svg.chart rect.bar-ok")
        self.assertGreaterEqual(len(bars), 1)
        title = self.b.driver.execute_script("return document.querySelector('svg.chart rect.bar-ok title').textContent")
        self.assertIn("Completed", title)
        self.assertEqual(len(self.b.css_all("script")), 1)
        self.b.wait_ready()
        self.check_page("model-refreshed")

        # a schedule: set with its next runs, then removed
        self.b.driver.find_element(self.b.By.CSS_SELECTOR, "#schedule option[value='@daily']").click()
        self.b.click_and_load(self.b.driver.find_element(self.b.By.XPATH, "//button[normalize-space()='Set schedule']"))
        self.assertEqual(self.b.path(), path)
        self.assertIn("Refreshes by itself on @daily", self.b.text("main"))
        runs = self.b.css_all(".next-runs li")
        self.assertEqual(len(runs), 5)
        self.assertTrue(all("00:00 UTC" in li.text for li in runs))
        self.check_page("model-scheduled")
        # a cron too often is refused on the page, with the reason
        self.b.driver.find_element(self.b.By.CSS_SELECTOR, "#schedule option[value='custom']").click()
        self.b.css("#cron").send_keys("* * * * *")
        self.b.click_and_load(self.b.driver.find_element(self.b.By.XPATH, "//button[normalize-space()='Set schedule']"))
        self.assertIn("That was not done", self.b.text("[role=alert]"))
        self.assert_no_console_errors(status=400)
        self.open(path)
        self.b.click_and_load(self.b.driver.find_element(self.b.By.XPATH, "//button[normalize-space()='Remove schedule']"))
        self.assertEqual(self.b.path(), path)
        self.assertIn("No schedule", self.b.text("main"))
        self.assert_no_console_errors()

    def test_other_organization_gets_404(self):
        model = self.model()
        self.login("carol")
        self.open("/semantic-models/" + model["id"])
        self.assertEqual(self.b.text("h1"), "Not Found")
        self.check_page("model-404", status=404)

    def test_push_datasets_page(self):
        status, conn = self.api("POST", "/api/push-connections", user="dave", body={
            "name": "sales-push", "team": "data", "tenant_id": TENANT, "client_id": PUSH_APP["client_id"],
            "client_secret": PUSH_APP["client_secret"]})
        self.assertEqual(status, 201, conn)
        status, ds = self.api("POST", "/api/push-datasets", user="dave", body={
            "connection_id": conn["id"], "workspace_id": WS, "name": "Sales feed", "tables": SCHEMA})
        self.assertEqual(status, 201, ds)
        status, doc = self.api("POST", "/api/push-datasets/%s/tables/Sales/rows" % ds["id"], user="dave",
                               body=[{"id": 1, "amount": 2.5}, {"id": 2, "amount": 3.0}, {"id": 3, "amount": 1.0}])
        self.assertIn(status, (200, 202), doc)
        if status == 202:
            self.run_worker()
        self.login("alice")                     # an owner sees every team's datasets
        self.open("/push-datasets")
        self.assertEqual(self.b.text("h1"), "Push datasets")
        notice = self.b.text("#retirement")
        self.assertIn("31 October 2027", notice)
        self.assertIn("Microsoft Fabric Real-Time Intelligence", notice)
        row = self.b.css("tbody tr")
        self.assertIn("Sales feed", row.text)
        self.assertIn("3 rows sent", row.text)
        self.check_page("push-datasets")
        # bob is in no team: he sees the notice and no dataset
        self.login("bob")
        self.open("/push-datasets")
        self.assertIn("No push dataset yet", self.b.text("main"))
        self.assert_no_console_errors()


if __name__ == "__main__":
    browser.main()
