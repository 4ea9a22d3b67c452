"""Publishing to Power BI from the web pages, in a real Chromium against nginx + pbiport + the Power BI
emulator, as people do it: the owner sets custom credentials in Settings ▸ Power BI, tests them and
saves; a member opens Open in ▸ Power BI Web, connects through the emulator's consent page and lands
back on the product page with the dialog open again; picks a workspace (the Viewer one is shown
disabled), creates a connection, publishes and watches every phase go by in the dialog, follows Open
in Power BI; the port then lists the model. Keyboard alone opens, uses and closes the dialog. The jobs
list cancels a job; the profile disconnects after a confirmation; names with quotes, <script>, emoji
and right-to-left text stay escaped and intact; a member sees no owner page, another organization's
ids are 404. Every page: no console error, axe-core clean, a screenshot in
build/test-artifacts/browser/."""

import json
import os
import sys
import time

import browser

sys.path.insert(0, os.path.join(browser.ROOT, "tests", "integration"))
import publish_stack  # noqa: E402
from publish_stack import APP, CONTRACT, SF_CONNECTION, TENANT  # noqa: E402

BOB_UPN = "bob@contoso.example"
WS_SALES = "a0000000-0000-4000-8000-000000000001"       # bob: Viewer
WS_MARKETING = "a0000000-0000-4000-8000-000000000003"   # bob: Admin
WAIT_S = 120
ENDED = ("succeeded", "failed", "cancelled")
HOSTILE_NAME = "\"Quote\" <script>alert('x')</script> & 🚀 שלום עולם"


def hostile_contract():
    return json.dumps({
        "apiVersion": "v3.0.2", "kind": "DataContract", "id": "urn:pbiport:browser:hostile-publish",
        "name": HOSTILE_NAME, "version": "1.0.0", "status": "active",
        "servers": [{"server": "prod", "type": "snowflake", "account": "acme-xy", "database": "SALES",
                     "schema": "PUBLIC", "warehouse": "WH"}],
        "schema": [{"name": "orders", "physicalType": "table",
                    "properties": [{"name": "id", "logicalType": "string"}]}],
    })


class PublishPages(browser.BrowserEmulatorTestCase, publish_stack.PublishStackTestCase):
    """Tests run in name order and build on each other: settings, then connect, then publish."""
    EMU_ENV = dict(browser.PAGE_ENV, APPLICATION_POWERBI_WEB_ENABLED="true", APPLICATION_ENCRYPTION_KEYS="4a" * 32)

    @classmethod
    def set_up_stack(cls):
        # no organization settings and nobody connected: the pages do that
        cls.workers, cls.worker_logs = [], []
        status, _, doc = cls.stack.import_contract(CONTRACT, token="alice")
        assert status == 201, doc
        cls.product = doc
        cls.ports = {p["name"]: p["id"] for p in doc["output_ports"]}
        cls.published_job = None

    def setUp(self):
        publish_stack.PublishStackTestCase.setUp(self)   # the emulator quick and without faults
        browser.BrowserMixin.setUp(self)

    # ---- helpers -------------------------------------------------------------------------------
    def wait_for(self, what, check, timeout=WAIT_S):
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got = check()
            except (NoSuchElementException, StaleElementReferenceException):
                got = None   # replaced meanwhile: look again
            if got:
                return got
            time.sleep(0.05)
        self.fail("timed out waiting for " + what + " on " + self.b.path())

    def js(self, script, *args):
        return self.b.driver.execute_script(script, *args)

    def port_section(self, port_name):
        for s in self.b.css_all("section.port"):
            if s.find_element(self.b.By.CSS_SELECTOR, "h3").text.split()[0] == port_name:
                return s
        self.fail("no port section " + port_name)

    def open_modal(self, port_name):
        """Open in ▸ Power BI Web of the port on the product page (open already), with the mouse; waits
        for the dialog's panel."""
        section = self.port_section(port_name)
        section.find_element(self.b.By.CSS_SELECTOR, "details.menu summary").click()
        section.find_element(self.b.By.LINK_TEXT, "Power BI Web").click()
        return self.wait_modal_panel()

    def wait_modal_panel(self, panel_id="power-bi-panel"):
        self.wait_for("the dialog", lambda: self.js("var d = document.getElementById('power-bi-dialog');"
                                                   "return d && d.open && !!d.querySelector('#%s');" % panel_id))
        return self.b.css("#power-bi-dialog #" + panel_id)

    def accept_confirm(self):
        alert = self.wait_for("the confirmation", lambda: self._alert())
        text = alert.text
        alert.accept()
        return text

    def _alert(self):
        try:
            return self.b.driver.switch_to.alert
        except Exception:
            return None

    def api_job(self, job_id, user="bob"):
        status, _, doc = self.stack.json("GET", "/api/jobs/" + job_id, token=user)
        self.assertEqual(status, 200, doc)
        return doc

    def console_errors_except(self, *fragments):
        """Console errors, without those naming one of fragments (a refused form's 4xx, the emulator's pages)."""
        return [e for e in self.b.console_errors() if not any(f in e.get("message", "") for f in fragments)]

    # ---- the owner: Settings ▸ Power BI ------------------------------------------------------------
    def test_01_owner_sets_custom_credentials_tests_and_saves(self):
        self.login("alice")
        self.open("/settings/power-bi")
        self.assertEqual(self.b.text("h1"), "Power BI")
        sso = self.b.css("#mode-sso")
        self.assertFalse(sso.is_enabled(), "no PBIPORT_SSO_*: the SSO choice is shown disabled")
        self.assertIn("PBIPORT_SSO_", self.b.text("#mode-sso-hint"))
        self.check_page("settings-power-bi-new")
        self.b.css("label[for=mode-custom]").click()
        self.b.css("#tenant-id").send_keys(TENANT)
        self.b.css("#client-id").send_keys(APP["client_id"])
        self.b.css("#client-secret").send_keys("not-the-secret")
        # Test connection with a wrong secret: said in place, nothing saved, the form as typed
        test = self.b.driver.find_element(self.b.By.XPATH, "//button[normalize-space()='Test connection']")
        test.click()
        result = self.wait_for("the test's answer", lambda: "does not work" in self.b.text("#test-result")
                               and self.b.css("#test-result"))
        self.assertIn("bad_credentials", result.text)
        self.assertEqual(self.b.path(), "/settings/power-bi")
        self.assertEqual(self.b.css("#client-secret").get_attribute("value"), "not-the-secret")
        status, _, doc = self.stack.json("GET", "/api/settings/powerbi", token="alice")
        self.assertIsNone(doc["mode"], doc)
        self.b.css("#client-secret").clear()
        self.b.css("#client-secret").send_keys(APP["client_secret"])
        test.click()
        result = self.wait_for("the test's answer", lambda: "works" in self.b.text("#test-result")
                               and "does not" not in self.b.text("#test-result") and self.b.css("#test-result"))
        self.assertIn("Application: " + APP["display_name"], result.text)
        self.assertEqual(self.stack.json("GET", "/api/settings/powerbi", token="alice")[2]["mode"], None)
        self.check_page("settings-power-bi-tested")
        self.b.driver.find_element(self.b.By.XPATH, "//button[normalize-space()='Save']").click()
        self.b.wait_for_path("/settings/power-bi?saved=1")
        self.assertIn("Saved. Application: " + APP["display_name"], self.b.text("main"))
        # the secret is write-only: "set — replace", never shown
        secret = self.b.css("#client-secret")
        self.assertEqual(secret.get_attribute("value"), "")
        self.assertEqual(secret.get_attribute("placeholder"), "set — replace")
        self.assertNotIn(APP["client_secret"], self.b.driver.page_source)
        self.assertEqual(self.b.css("#tenant-id").get_attribute("value"), TENANT)
        status, _, doc = self.stack.json("GET", "/api/settings/powerbi", token="alice")
        self.assertEqual((doc["mode"], doc["client_id"], doc["has_client_secret"]), ("custom", APP["client_id"], True))
        self.check_page("settings-power-bi-saved")

    def test_02_member_sees_no_owner_page(self):
        self.login("bob")
        self.open("/")
        self.assertNotIn("Settings", [a.text for a in self.b.css_all(".site-nav a")])
        self.open("/settings/power-bi")
        self.assertEqual(self.b.text("h1"), "Forbidden")
        self.assertIn("forbidden", self.b.text("[role=alert]"))
        self.assertEqual(self.b.css_all("#client-secret"), [])
        self.check_page("settings-power-bi-member-403", status=403)

    # ---- the member: connect, come back, publish -----------------------------------------------------
    def test_03_member_connects_through_consent_and_comes_back(self):
        self.login("bob")
        self.open("/data-products/" + self.product["id"])
        panel = self.open_modal("fresh")
        self.assertIn("connect your Power BI account first", panel.text)
        self.check_page("power-bi-modal-connect", window_only=True)
        panel.find_element(self.b.By.LINK_TEXT, "Connect to Power BI").click()
        # the emulator's consent screen (Microsoft's, in real life)
        self.wait_for("the consent page", lambda: self.b.driver.current_url.startswith(self.emu.url))
        self.b.wait_ready()
        self.assertEqual(self.b.text("h1"), "Permissions requested")
        self.b.css("input[name=login]").clear()
        self.b.css("input[name=login]").send_keys(BOB_UPN)
        self.b.console_errors()   # the emulator's page is not pbiport's
        self.b.css("button[value=accept]").click()
        # back where it started: the product page, the dialog open again, now with the form
        self.b.wait_for_path("/data-products/" + self.product["id"])
        panel = self.wait_for("the form in the dialog",
                              lambda: self.js("return !!document.querySelector('#power-bi-dialog[open] #power-bi-form')"))
        self.assertEqual(self.b.path(), "/data-products/" + self.product["id"], "the #power-bi= mark is taken away")
        self.assertEqual(self.console_errors_except("favicon.ico"), [])
        self.assert_accessible()
        status, _, doc = self.stack.json("GET", "/api/me/powerbi-connections", token="bob")
        self.assertEqual([c["status"] for c in doc["connections"]], ["active"])

    def test_04_member_publishes_and_watches_every_phase(self):
        self.login("bob")
        self.open("/data-products/" + self.product["id"])
        panel = self.open_modal("fresh")
        from selenium.webdriver.support.ui import Select
        ws = Select(panel.find_element(self.b.By.ID, "workspace"))
        options = {o.text: o for o in ws.options}
        sales = [o for t, o in options.items() if t.startswith("Sales Analytics")][0]
        self.assertFalse(sales.is_enabled())
        self.assertIn("Viewer: publishing needs Contributor, Member or Admin", sales.text)
        ws.select_by_value(WS_MARKETING)
        name = panel.find_element(self.b.By.ID, "model-name")
        self.assertEqual(name.get_attribute("value"), "Contoso sales – fresh")   # the API's default
        # no existing connection points at this server: Create a new connection, Snowflake Basic
        new = panel.find_element(self.b.By.ID, "conn-new")
        self.assertTrue(new.is_selected())
        self.assertIn("None of your connections", panel.text)
        panel.find_element(self.b.By.ID, "conn-username").send_keys("svc_pbi")
        panel.find_element(self.b.By.ID, "conn-password").send_keys("Sn0w-s3cret-pw")
        self.assertEqual([l.text for l in panel.find_elements(self.b.By.CSS_SELECTOR, ".new-connection label")],
                         ["Username", "Password"])
        # the README's picture (docs/images/power-bi-modal.png is a copy): a window tall enough for all of it
        self.b.driver.set_window_size(browser.WINDOW[0], 1080)
        try:
            self.check_page("power-bi-modal", window_only=True)
        finally:
            self.b.driver.set_window_size(*browser.WINDOW)
        # each Microsoft call slow enough that every phase that calls one is seen
        self.emu.control("POST", "faults", {"path_prefix": "/fabric", "latency_ms": 1200})
        self.emu.control("POST", "faults", {"path_prefix": "/powerbi", "latency_ms": 1200})
        panel.find_element(self.b.By.XPATH, ".//button[normalize-space()='Publish']").click()
        job_panel = self.wait_modal_panel("job-panel")
        job_id = job_panel.get_attribute("data-job-id")
        self.assertEqual(job_panel.get_attribute("data-job-state"), "queued")
        self.assertIn("Waiting for a worker", self.b.text("#job-panel .job-status"))
        self.assertEqual(self.b.path(), "/data-products/" + self.product["id"], "the dialog posted with fetch")
        self.check_page("power-bi-modal-queued", window_only=True)
        self.start_worker()
        seen, deadline = [], time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            got = self.js("var p = document.querySelector('#power-bi-dialog #job-panel');"
                          "return p && [p.getAttribute('data-job-state'), p.getAttribute('data-job-phase'),"
                          " p.querySelector('progress').value];")
            if got and got[1] and (not seen or seen[-1][:2] != got[:2]):
                seen.append(got)
            if got and got[0] in ENDED:
                break
            time.sleep(0.1)
        phases = []
        for _, phase, _ in seen:
            if not phases or phases[-1] != phase:
                phases.append(phase)
        self.assertEqual(seen[-1][0], "succeeded", (seen, self.api_job(job_id)))
        for phase in ("creating_connection", "creating_model", "binding", "finalizing"):
            self.assertIn(phase, phases, "the dialog showed %s live" % phase)
        self.assertEqual(phases, sorted(phases, key=publish_stack_phase_order), "phases in order")
        rows = self.b.css_all("#power-bi-dialog #job-panel li.phase")
        self.assertEqual([r.get_attribute("data-phase") for r in rows],
                         ["validating", "creating_connection", "creating_model", "binding", "finalizing"])
        for r in rows:
            self.assertIn("phase-done", r.get_attribute("class"))
            self.assertRegex(r.find_element(self.b.By.CSS_SELECTOR, ".phase-time").text, r"^\d+(\.\d)? s$")
        self.assertGreaterEqual(float(rows[2].find_element(self.b.By.CSS_SELECTOR, ".phase-time").text[:-2]), 1.0)
        self.check_page("power-bi-modal-succeeded", window_only=True)
        # Open in Power BI: the model's web URL, in a new tab
        link = self.b.css("#power-bi-dialog #job-panel").find_element(self.b.By.PARTIAL_LINK_TEXT, "Open in Power BI")
        result = self.api_job(job_id)["result"]
        self.assertTrue(result["web_url"].startswith("https://app.powerbi.com/groups/%s/datasets/" % WS_MARKETING))
        self.assertEqual(link.get_attribute("href"), result["web_url"])
        home = self.b.driver.current_window_handle
        link.click()
        self.wait_for("the new tab", lambda: len(self.b.driver.window_handles) == 2)
        self.b.driver.switch_to.window([h for h in self.b.driver.window_handles if h != home][0])
        self.wait_for("Power BI's address", lambda: self.b.driver.current_url.startswith(result["web_url"]))
        self.b.driver.close()
        self.b.driver.switch_to.window(home)
        self.b.console_errors()   # the other tab's failed load (no other host is reachable from the tests)
        # closing the dialog, the port lists the model
        self.b.press(self.b.Keys.ESCAPE)
        self.wait_for("the dialog to close", lambda: not self.js("return document.getElementById('power-bi-dialog').open"))
        self.open("/data-products/" + self.product["id"])
        models = self.port_section("fresh").find_element(self.b.By.CSS_SELECTOR, ".models")
        self.assertIn("Contoso sales – fresh", models.text)
        self.assertEqual(models.find_element(self.b.By.PARTIAL_LINK_TEXT, "Open in Power BI").get_attribute("href"),
                         result["web_url"])
        self.check_page("product-with-published-model")
        # the job's own page says the same, without the dialog
        self.open("/jobs/" + job_id)
        self.assertEqual(self.b.text("h1"), "Publish to Power BI")
        self.assertEqual(self.b.text("#job-title"), "Contoso sales – fresh")
        self.assertEqual(len(self.b.css_all("li.phase-done")), 5)
        self.assertEqual(self.b.css_all("head noscript"), [], "an ended job's page does not reload itself")
        self.check_page("job-succeeded")
        type(self).published_job = job_id

    def test_04b_the_published_model_page(self):
        """From the port's model list to the model's page: what it was built from, Check drift now,
        and Unpublish asking first (dismissed here: later tests use the model)."""
        self.assertIsNotNone(self.published_job)
        self.login("bob")
        self.open("/data-products/" + self.product["id"])
        models = self.port_section("fresh").find_element(self.b.By.CSS_SELECTOR, ".models")
        self.b.click_and_load(models.find_element(self.b.By.LINK_TEXT, "Contoso sales – fresh"))
        self.assertTrue(self.b.path().startswith("/published-models/"), self.b.path())
        self.assertEqual(self.b.text("h1"), "Contoso sales – fresh")
        self.assertIn("No update is waiting", self.b.text("main"))
        self.check_page("published-model")
        self.b.click_and_load(self.b.driver.find_element(self.b.By.XPATH, "//button[normalize-space()='Check drift now']"))
        self.b.wait_for_text("#drift-heading + p + h3 + p, main", "No drift: the model is what its contract makes.")
        self.check_page("published-model-drift-checked")
        path = self.b.path()
        self.b.driver.find_element(self.b.By.XPATH, "//button[normalize-space()='Unpublish']").click()
        alert = self.wait_for("the confirmation", lambda: self._alert())
        self.assertEqual(alert.text, "Unpublish Contoso sales – fresh?")
        alert.dismiss()
        self.assertEqual(self.b.path(), path, "a dismissed confirmation sends nothing")
        self.assertEqual(self.api_job(self.published_job)["state"], "succeeded")

    def test_05_keyboard_alone_opens_uses_and_closes_the_dialog(self):
        self.login("bob")
        self.open("/data-products/" + self.product["id"])
        for _ in range(60):
            f = self.b.tab()
            if f["tag"] == "summary" and f["text"].startswith("Open in"):
                break
        self.assertEqual(f["tag"], "summary", f)
        self.b.press(self.b.Keys.ENTER)
        self.assertEqual(self.b.tab()["text"], "Power BI Web")
        self.b.press(self.b.Keys.ENTER)
        self.wait_modal_panel()
        self.wait_for("the dialog's heading to take the focus", lambda: self.b.focused()["id"] == "power-bi-title")
        in_dialog = "return !!(document.activeElement && document.activeElement.closest('#power-bi-dialog'))"
        f = self.b.tab()
        self.assertEqual(f["id"], "workspace")
        self.b.press(self.b.Keys.ARROW_DOWN)       # the first workspace Bob may publish into
        self.assertEqual(self.js("return document.getElementById('workspace').value"), WS_MARKETING)
        f = self.b.tab()
        self.assertEqual(f["id"], "model-name")
        self.b.press(self.b.Keys.END, " (keyboard)")
        self.assertTrue(self.b.css("#model-name").get_attribute("value").endswith(" (keyboard)"))
        f = self.b.tab()
        self.assertEqual((f["tag"], f["name"]), ("input", "connection"))
        stops = []
        for _ in range(12):
            f = self.b.tab()
            self.assertTrue(self.js(in_dialog), "Tab stays in the dialog: %s" % f)
            stops.append(f["text"] or f["id"])
            if f["text"] == "Publish":
                break
        self.assertIn("Publish", stops)
        self.b.press(self.b.Keys.ESCAPE)
        self.wait_for("the dialog to close", lambda: not self.js("return document.getElementById('power-bi-dialog').open"))
        # the dialog's close handler moves the focus after the close event: wait for it
        self.wait_for("the focus to go back to the Open in menu", lambda: self.b.focused()["tag"] == "summary")
        self.assert_no_console_errors()

    # ---- jobs ------------------------------------------------------------------------------------------
    def test_06_jobs_list_and_cancel(self):
        self.assertIsNotNone(self.published_job, "test_04 publishes first")
        status, _, doc = self.publish("analytics", {"workspace_id": WS_MARKETING, "connection_id": SF_CONNECTION,
                                                    "name": "Waiting model"}, user="bob")
        self.assertEqual(status, 202, doc)
        waiting = doc["job_id"]
        self.login("bob")
        self.open("/jobs")
        rows = {r.find_element(self.b.By.CSS_SELECTOR, "th a").text: r for r in self.b.css_all("tbody tr")}
        self.assertIn("Succeeded", rows["Contoso sales – fresh"].text)
        self.assertIn("Queued", rows["Waiting model"].text)
        self.assertEqual(rows["Contoso sales – fresh"].find_elements(self.b.By.TAG_NAME, "button"), [])
        self.check_page("jobs")
        rows["Waiting model"].find_element(self.b.By.TAG_NAME, "button").click()
        self.assertEqual(self.accept_confirm(), "Cancel this job?")
        self.wait_for("the job cancelled", lambda: self.api_job(waiting)["state"] == "cancelled")
        self.b.wait_for_text("tbody", "Cancelled")      # the list reloads itself
        rows = {r.find_element(self.b.By.CSS_SELECTOR, "th a").text: r for r in self.b.css_all("tbody tr")}
        self.assertIn("Cancelled", rows["Waiting model"].text)
        self.check_page("jobs-cancelled")
        self.open("/jobs/" + waiting)
        self.assertIn("It was cancelled", self.b.text("#job-panel"))
        self.check_page("job-cancelled")
        # an owner sees everybody's jobs, with their user
        self.login("alice")
        self.open("/jobs")
        self.assertIn("bob", self.b.text("tbody"))
        self.assert_no_console_errors()

    def test_07_hostile_names_are_escaped_and_intact(self):
        status, _, doc = self.stack.import_contract(hostile_contract(), token="alice")
        self.assertEqual(status, 201, doc)
        port = doc["output_ports"][0]["id"]
        self.login("bob")
        self.open("/data-products/" + doc["id"])
        panel = self.open_modal("prod")
        self.assertEqual(panel.find_element(self.b.By.ID, "model-name").get_attribute("value"), HOSTILE_NAME)
        self.assertIn(HOSTILE_NAME, panel.text)
        self.check_page("power-bi-modal-hostile", window_only=True)
        job = self.submit(port, {"workspace_id": WS_MARKETING, "connection": publish_stack.BASIC}, user="bob")
        self.open("/jobs/" + job)
        self.assertEqual(self.b.text("#job-title"), HOSTILE_NAME)
        self.assertEqual(self.b.driver.title, "Publish to Power BI · pbiport")
        self.open("/jobs")
        self.assertIn(HOSTILE_NAME, [a.text for a in self.b.css_all("tbody th a")])
        self.assertEqual(len(self.b.css_all("script")), 1)
        self.assertEqual(self.b.css_all("main img"), [])
        self.check_page("jobs-hostile")
        status, _, _ = self.stack.json("POST", "/api/jobs/%s/cancel" % job, token="bob")
        self.assertEqual(status, 200)

    # ---- the profile ----------------------------------------------------------------------------------
    def test_08_profile_disconnects_after_confirmation(self):
        # a publish queued before the disconnect fails for it afterwards (below)
        orphan = self.submit("analytics", {"workspace_id": WS_MARKETING, "connection_id": SF_CONNECTION,
                                           "name": "After disconnect"}, user="bob")
        self.login("bob")
        self.open("/")
        self.b.css(".account a").click()
        self.b.wait_for_path("/profile/power-bi")
        self.assertEqual(self.b.text("h1"), "Power BI connections")
        self.assertIn("Connected", self.b.text("section.connection"))
        self.assertIn("Reconnect", self.b.text("section.connection"))
        self.check_page("profile-power-bi")
        self.b.driver.find_element(self.b.By.XPATH, "//button[normalize-space()='Disconnect']").click()
        self.assertIn("Disconnect Power BI?", self.accept_confirm())
        self.b.wait_for_path("/profile/power-bi?disconnected=1")
        self.assertIn("Power BI is disconnected.", self.b.text("main"))
        self.assertEqual(self.b.css_all("section.connection"), [])
        self.b.link("Connect to Power BI")
        self.check_page("profile-power-bi-disconnected")
        status, _, doc = self.stack.json("GET", "/api/me/powerbi-connections", token="bob")
        self.assertEqual(doc["connections"], [])
        # the failed job's page: the error, what to do, and the way to do it
        self.start_worker()
        self.wait_for("the job to fail", lambda: self.api_job(orphan)["state"] == "failed")
        self.open("/jobs/" + orphan)
        outcome = self.b.css("#job-panel .job-outcome")
        self.assertIn("It failed", outcome.text)
        self.assertIn("not_connected", outcome.text)
        self.assertIn("What to do: Connect to Power BI, then publish again.", outcome.text)
        connect = outcome.find_element(self.b.By.LINK_TEXT, "Connect to Power BI")
        self.assertEqual(connect.get_attribute("href"), self.b.url(
            "/powerbi/connect?return_to=/output-ports/%s/power-bi" % self.ports["analytics"]))
        self.assertIn("phase-failed", self.b.css("#job-panel li.phase[data-phase=validating]").get_attribute("class"))
        self.check_page("job-failed")

    def test_09_another_organizations_ids_are_404(self):
        self.assertIsNotNone(self.published_job)
        self.login("carol")
        for path in ("/output-ports/%s/power-bi" % self.ports["fresh"], "/jobs/" + self.published_job):
            self.open(path)
            self.assertEqual(self.b.text("h1"), "Not Found", path)
            self.assertNotIn("Contoso", self.b.text("main"))
            self.check_page("other-org-404-" + path.split("/")[1], status=404)


def publish_stack_phase_order(phase):
    return ["validating", "creating_connection", "creating_model", "binding", "finalizing"].index(phase)


if __name__ == "__main__":
    browser.main()
