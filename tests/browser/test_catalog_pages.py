"""The catalog's pages in a real Chromium, as a person uses them: the list of data products and its
search, Add Data Product by pasting and by uploading a contract (and a broken one refused with its
line and column), a product's page with its ports, schema and Open in ▸ Power BI Web, hostile
contract names shown escaped and intact, what a member and an owner see, another organization's id,
and the keyboard. Every page: no console error, axe-core clean, a screenshot in
build/test-artifacts/browser/."""

import json
import os
import re
import tempfile

import browser
from harness import contract_variant, fixture

HOSTILE_NAME = "\"Quote\" <script>alert('x')</script> & 🚀 שלום עולם"
HOSTILE_TABLE = "<img src=x onerror=alert(1)>"
HOSTILE_DESCRIPTION = "<b>not bold</b> & \"quoted\"\nsecond line"


def hostile_contract():
    return json.dumps({
        "apiVersion": "v3.0.2", "kind": "DataContract", "id": "urn:pbiport:browser:hostile",
        "name": HOSTILE_NAME, "version": "1.0.0", "status": "active",
        "description": {"purpose": "Names that try to break out of HTML: <i>italics</i>?"},
        "servers": [{"server": "prod <b>", "type": "snowflake", "account": "acme-xy", "database": "SALES",
                     "schema": "PUBLIC", "warehouse": "WH"}],
        "schema": [{"name": HOSTILE_TABLE, "physicalType": "table", "description": HOSTILE_DESCRIPTION,
                    "properties": [{"name": "id\"><script>alert(2)</script>", "logicalType": "string",
                                    "description": "مرحبا بالعالم"}]}],
    })


class CatalogPages(browser.BrowserTestCase):
    ENV = dict(browser.PAGE_ENV, APPLICATION_POWERBI_WEB_ENABLED="true", APPLICATION_ENCRYPTION_KEYS="56" * 32)

    def add_by_api(self, text, user="alice"):
        status, _, doc = self.stack.import_contract(text, token=user)
        self.assertIn(status, (200, 201), doc)
        return doc

    def test_add_by_paste_then_list_and_search(self):
        self.login("alice")
        self.open("/")
        self.assertEqual(self.b.text("h1"), "Data Products")
        self.b.link("Add Data Product").click()
        self.b.wait_for_path("/data-products/new")
        self.assertEqual(self.b.text("h1"), "Add Data Product")
        self.check_page("add-product-form")
        text = contract_variant(fixture("orders.odcs.yaml"), contract_id="urn:pbiport:browser:pasted")
        self.b.css("#contract").send_keys(text)
        self.b.click_and_load(self.b.css("form.stack button[type=submit]"))
        path = self.b.path()
        self.assertRegex(path, r"^/data-products/[0-9a-f]{32}$")
        self.assertEqual(self.b.text("h1"), "Orders")
        self.check_page("product-orders")

        self.open("/")
        self.assertIn("Orders", [a.text for a in self.b.css_all("tbody th a")])
        self.check_page("home-list")
        box = self.b.css("#q")
        box.send_keys("pasted")            # the contract id matches too
        box.submit()
        self.b.wait_for_path("/?q=")
        self.assertEqual([a.text for a in self.b.css_all("tbody th a")], ["Orders"])
        self.assertIn("match", self.b.text("caption"))
        self.check_page("home-search")
        self.open("/?q=no-such-product")
        self.assertIn("No data product matches", self.b.text("main"))
        self.assert_no_console_errors()

    def test_add_by_upload(self):
        self.login("bob")
        self.open("/data-products/new")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
            f.write(fixture("customers.odcs.json"))
        try:
            self.b.css("#contract_file").send_keys(f.name)
            self.b.click_and_load(self.b.css("form.stack button[type=submit]"))
            self.assertRegex(self.b.path(), r"^/data-products/[0-9a-f]{32}$")
        finally:
            os.unlink(f.name)
        self.assertEqual(self.b.text("h1"), "Customers")
        self.assertIn("bob", self.b.text(".details"))      # the member who added it owns it
        self.check_page("product-customers")

    def test_broken_contract_is_refused_on_the_form(self):
        self.login("bob")
        self.open("/data-products/new")
        self.b.css("#contract").send_keys("id: urn:x\nname: [unclosed\nservers: 3\n")
        self.b.click_and_load(self.b.css("form.stack button[type=submit]"))
        self.assertEqual(self.b.path(), "/data-products/new")
        alert = self.b.css("[role=alert]")
        self.assertIn("The contract was not added", alert.text)
        self.assertRegex(alert.text, r"pasted contract:\d+:\d+")   # the line and column
        self.assertIn("name: [unclosed", self.b.css("#contract").get_attribute("value"))
        self.assertEqual(self.b.css("#contract").get_attribute("aria-invalid"), "true")
        self.check_page("add-product-error", status=400)

    def test_product_page_ports_schema_and_open_in_menu(self):
        doc = self.add_by_api(contract_variant(fixture("orders.odcs.yaml"), contract_id="urn:pbiport:browser:ports"))
        self.login("bob")
        self.open("/data-products/" + doc["id"])
        ports = {s.find_element(self.b.By.CSS_SELECTOR, "h3").text.split()[0]: s for s in self.b.css_all("section.port")}
        self.assertEqual(sorted(ports), ["databricks-prod", "snowflake-prod"])
        self.assertIn("REPORTING_WH", ports["snowflake-prod"].text)
        self.assertIn("/sql/1.0/warehouses/0123456789abcdef", ports["databricks-prod"].text)
        headings = [h.text for h in self.b.css_all(".schema-table h3")]
        self.assertEqual([h.split()[0] for h in headings], ["orders", "line_items"])
        self.assertIn("One row per order.", self.b.text(".schema-table"))
        # Open in ▸ Power BI Web, with the mouse
        menu = ports["snowflake-prod"].find_element(self.b.By.CSS_SELECTOR, "details.menu")
        menu.find_element(self.b.By.TAG_NAME, "summary").click()
        link = menu.find_element(self.b.By.LINK_TEXT, "Power BI Web")
        self.assertTrue(link.is_displayed())
        port_id = [p["id"] for p in doc["output_ports"] if p["name"] == "snowflake-prod"][0]
        self.assertEqual(link.get_attribute("href"), self.b.url("/output-ports/%s/power-bi" % port_id))
        self.check_page("product-open-in-menu")
        # a click elsewhere closes it (pbiport.js)
        self.b.css("h1").click()
        self.assertIsNone(menu.get_attribute("open"))

    def test_hostile_names_are_escaped_and_intact(self):
        doc = self.add_by_api(hostile_contract())
        self.login("alice")
        self.open("/?q=" + "%F0%9F%9A%80")            # the rocket finds it
        self.assertEqual([a.text for a in self.b.css_all("tbody th a")], [HOSTILE_NAME])
        self.check_page("home-hostile")
        self.open("/data-products/" + doc["id"])
        self.assertEqual(self.b.text("h1"), HOSTILE_NAME)
        self.assertEqual(self.b.driver.title, HOSTILE_NAME + " · pbiport")
        self.assertTrue(self.b.text(".schema-table h3").startswith(HOSTILE_TABLE))
        self.assertEqual(self.b.text(".schema-table p.description"), HOSTILE_DESCRIPTION)
        self.assertIn("id\"><script>alert(2)</script>", self.b.text(".schema-table tbody th"))
        self.assertIn("مرحبا بالعالم", self.b.text(".schema-table tbody"))
        self.assertIn("prod <b>", self.b.text("section.port h3"))
        # nothing ran and nothing was injected: our one script, no image, no bold
        self.assertEqual(len(self.b.css_all("script")), 1)
        self.assertEqual(self.b.css_all("img"), [])
        self.assertEqual(self.b.css_all("main b"), [])
        self.assertFalse(self.b.driver.execute_script("return !!window.__pbiport_xss"))
        self.check_page("product-hostile")

    def test_member_and_owner_navigation(self):
        self.login("bob")
        self.open("/")
        nav = [a.text for a in self.b.css_all(".site-nav a")]
        self.assertEqual(nav, ["Data Products", "Push datasets", "Jobs"])
        self.assertIn("bob", self.b.text(".account"))
        self.assertIn("member", self.b.text(".account"))
        self.assertIn("acme", self.b.text(".brand"))
        self.login("alice")
        self.open("/")
        nav = [a.text for a in self.b.css_all(".site-nav a")]
        self.assertEqual(nav, ["Data Products", "Push datasets", "Jobs", "Settings"])
        self.assertEqual(self.b.css(".site-nav a[aria-current=page]").text, "Data Products")
        self.assertIn("owner", self.b.text(".account"))

    def test_other_organizations_id_is_a_404_page(self):
        doc = self.add_by_api(contract_variant(fixture("orders.odcs.yaml"), contract_id="urn:pbiport:browser:private"))
        self.login("carol")
        self.open("/")
        self.assertIn("No data products yet", self.b.text("main"))     # globex has none
        self.assertIn("globex", self.b.text(".brand"))
        self.check_page("home-empty")
        self.b.driver.get(self.b.url("/data-products/" + doc["id"]))
        self.b.wait_ready()
        self.assertEqual(self.b.text("h1"), "Not Found")
        self.assertIn("not_found", self.b.text("[role=alert]"))
        self.check_page("error-404", status=404)

    def test_keyboard(self):
        doc = self.add_by_api(contract_variant(fixture("orders.odcs.yaml"), contract_id="urn:pbiport:browser:keys"))
        self.login("bob")
        self.open("/data-products/" + doc["id"])
        # the first stop is the skip link; it moves focus to the main content
        first = self.b.tab()
        self.assertEqual((first["tag"], first["href"]), ("a", "#main"))
        self.b.press(self.b.Keys.ENTER)
        self.assertEqual(self.b.focused()["id"], "main")
        # on to the first "Open in" menu: open it with Enter, reach Power BI Web, close it with Escape
        for _ in range(40):
            f = self.b.tab()
            if f["tag"] == "summary":
                break
        self.assertTrue(f["text"].startswith("Open in"), f)
        self.b.press(self.b.Keys.ENTER)
        menu = self.b.css("details.menu[open]")
        f = self.b.tab()
        self.assertEqual(f["text"], "Power BI Web")
        self.b.press(self.b.Keys.ESCAPE)
        self.assertIsNone(menu.get_attribute("open"))
        self.assertEqual(self.b.focused()["tag"], "summary")
        self.assert_no_console_errors()


if __name__ == "__main__":
    browser.main()
