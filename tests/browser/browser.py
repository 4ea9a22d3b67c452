"""Browser test harness: a real headless Chromium (Debian's chromium + chromium-driver, driven by
Debian's python3-selenium) against the integration stack (tests/integration/harness.py: nginx with
basic auth in front of a pbiport FastCGI pool, optionally the Power BI emulator).

    class CatalogPages(BrowserTestCase):
        def test_home(self):
            self.login("alice")
            self.open("/")
            self.check_page("home")       # no console error, axe-core clean, screenshot saved

What a test gets (self.b is the Browser, self.stack the Stack):
  login(user)          basic-auth identity for every request the page makes (a CDP header)
  open(path)           navigate and wait for the document
  check_page(name)     assert_no_console_errors + assert_accessible + screenshot(name)
  assert_no_console_errors()  SEVERE browser log entries (script errors, CSP violations, failed loads)
  assert_accessible()  axe-core (npm, vendored by `make deps` in tests/browser/node_modules_dir):
                       fails on serious and critical violations
  screenshot(name)     full-page PNG in build/test-artifacts/browser/<name>.png
  tab(n), shift_tab(n), press(key), focused()  keyboard navigation
  css(sel), css_all(sel), text(sel)           element look-ups

Missing Chromium, ChromeDriver or Selenium: every test module prints one SKIP line and passes
(run `make deps`); missing axe-core: the accessibility check says SKIP once and the rest runs.
Environment: BROWSER_ARTIFACTS (default <repo>/build/test-artifacts/browser), BROWSER_HEADFUL=1
(watch it), plus what harness.py reads.
"""

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402  (the integration stack)

CHROMIUM = "/usr/lib/chromium/chromium"       # the binary itself, not the /usr/bin shell wrapper
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE_JS = os.path.join(HERE, "node_modules_dir", "node_modules", "axe-core", "axe.min.js")
ARTIFACTS = os.environ.get("BROWSER_ARTIFACTS") or os.path.join(ROOT, "build", "test-artifacts", "browser")
WINDOW = (1280, 900)
PAGE_TIMEOUT_S = 30


def _import_selenium():
    """Debian's python3-selenium lives in the system's dist-packages; a python3 of its own (pyenv)
    does not look there, so that folder is added when the first import fails."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        for d in ("/usr/lib/python3/dist-packages",):
            if os.path.isdir(os.path.join(d, "selenium")) and d not in sys.path:
                sys.path.append(d)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    return webdriver, Service, By, Keys


def missing():
    """Why the browser tests cannot run here, or None."""
    for path, what in ((CHROMIUM, "Debian package chromium"), (CHROMEDRIVER, "Debian package chromium-driver")):
        if not os.access(path, os.X_OK):
            return "%s not found (%s: run make deps)" % (path, what)
    try:
        _import_selenium()
    except ImportError as e:
        return "selenium cannot be imported (%s; Debian package python3-selenium: run make deps)" % e
    return None


class Browser:
    """One headless Chromium with a fresh profile; close() ends it and removes the profile."""

    def __init__(self, base_url, flags=()):
        """flags: more Chromium switches (BrowserEmulatorTestCase: trust the emulator's certificate)."""
        webdriver, Service, By, Keys = _import_selenium()
        self.By, self.Keys = By, Keys
        from selenium.common.exceptions import (JavascriptException, NoSuchElementException,
                                                StaleElementReferenceException)
        self.NoSuchElement, self.StaleElement = NoSuchElementException, StaleElementReferenceException
        self.JavascriptError = JavascriptException
        self.base_url = base_url.rstrip("/")
        self.profile = tempfile.mkdtemp(prefix="pbiport-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps",
                 "--no-default-browser-check", "--password-store=basic", "--lang=en-US",
                 "--user-data-dir=" + self.profile, "--window-size=%d,%d" % WINDOW,
                 # no request to any other host: a link out (Open in Power BI) fails without leaving the machine
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"] + list(flags)
        if not os.environ.get("BROWSER_HEADFUL"):
            flags.insert(0, "--headless=new")
        for f in flags:
            opts.add_argument(f)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(CHROMEDRIVER, log_path=os.path.join(self.profile, "chromedriver.log"))
        try:
            self.driver = webdriver.Chrome(service=service, options=opts)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        self.driver.execute_cdp_cmd("Network.enable", {})
        self._axe = None
        self.user = None

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # ---- identity ----------------------------------------------------------------------------
    def login(self, user, password):
        """Every request the browser makes from now on carries basic-auth credentials (as after a
        person typed them into the browser's prompt)."""
        token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": "Basic " + token}})
        self.user = user

    def logout(self):
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
        self.user = None

    # ---- navigation --------------------------------------------------------------------------
    def url(self, path):
        return self.base_url + path

    def open(self, path):
        self.driver.get(self.url(path))
        self.wait_ready()

    def wait_ready(self, timeout=PAGE_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.driver.execute_script("return document.readyState") == "complete":
                return
            time.sleep(0.05)
        raise AssertionError("page did not finish loading: " + self.driver.current_url)

    def click_and_load(self, element, timeout=PAGE_TIMEOUT_S):
        """Clicks something that loads a page (a form's submit button) and waits for the new
        page: a mark on the old document tells it apart, so a wait that starts before the browser
        leaves the old page (still "complete") does not return early."""
        self.driver.execute_script("window.__pbiportOldPage = true")
        element.click()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.driver.execute_script("return window.__pbiportOldPage !== true && "
                                              "document.readyState === 'complete'"):
                    return
            except self.JavascriptError:
                pass   # between documents
            time.sleep(0.05)
        raise AssertionError("no new page after the click: still on " + self.driver.current_url)

    def path(self):
        url = self.driver.current_url
        return url[len(self.base_url):] if url.startswith(self.base_url) else url

    def wait_for_path(self, prefix, timeout=PAGE_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.path().startswith(prefix):
                self.wait_ready()
                return self.path()
            time.sleep(0.05)
        raise AssertionError("expected a page under %s, still on %s" % (prefix, self.path()))

    # ---- elements ----------------------------------------------------------------------------
    def css(self, selector):
        return self.driver.find_element(self.By.CSS_SELECTOR, selector)

    def css_all(self, selector):
        return self.driver.find_elements(self.By.CSS_SELECTOR, selector)

    def text(self, selector):
        return self.css(selector).text

    def wait_for_text(self, selector, text, timeout=PAGE_TIMEOUT_S):
        """Waits until the element's text contains text, on a page that may reload itself
        meanwhile (the element is missing or stale for a moment then). Returns the element."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            try:
                element = self.css(selector)
                seen = element.text
                if text in seen:
                    self.wait_ready()
                    return self.css(selector)
            except (self.NoSuchElement, self.StaleElement):
                pass
            time.sleep(0.2)
        raise AssertionError("%r never showed %r (last seen: %r)" % (selector, text, seen))

    def link(self, text):
        return self.driver.find_element(self.By.LINK_TEXT, text)

    # ---- keyboard ----------------------------------------------------------------------------
    def press(self, *keys):
        from selenium.webdriver.common.action_chains import ActionChains
        chain = ActionChains(self.driver)
        for k in keys:
            chain.send_keys(k)
        chain.perform()

    def tab(self, n=1):
        self.press(*([self.Keys.TAB] * n))
        return self.focused()

    def shift_tab(self, n=1):
        from selenium.webdriver.common.action_chains import ActionChains
        chain = ActionChains(self.driver).key_down(self.Keys.SHIFT)
        for _ in range(n):
            chain.send_keys(self.Keys.TAB)
        chain.key_up(self.Keys.SHIFT).perform()
        return self.focused()

    def focused(self):
        """The focused element as {tag, text, href, id, name} (document.activeElement)."""
        return self.driver.execute_script(
            "var e = document.activeElement; if (!e) return null;"
            "return {tag: e.tagName.toLowerCase(), text: (e.innerText || e.value || '').trim(),"
            " href: e.getAttribute('href'), id: e.id, name: e.getAttribute('name')};")

    # ---- checks ------------------------------------------------------------------------------
    def console_errors(self):
        """SEVERE entries of the browser log since the last call (it empties the log)."""
        return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def axe_violations(self, impacts=("serious", "critical")):
        """axe-core's violations of the given impacts on the current page, or None without axe-core."""
        if self._axe is None:
            if not os.path.exists(AXE_JS):
                return None
            with open(AXE_JS, encoding="utf-8") as f:
                self._axe = f.read()
        self.driver.set_script_timeout(60)
        result = self.driver.execute_async_script(
            self._axe + "\n;var done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(function (r) { done(r.violations); })"
            ".catch(function (e) { done({error: String(e)}); });")
        if isinstance(result, dict) and "error" in result:
            raise AssertionError("axe-core failed: " + result["error"])
        return [v for v in result if v.get("impact") in impacts]

    def screenshot(self, name, window_only=False):
        """A PNG of the whole page (beyond the window) in ARTIFACTS/<name>.png; returns its path.
        window_only: just what the window shows (an open modal dialog, which stays in the window)."""
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, name + ".png")
        if window_only:
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
        else:
            metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
            size = metrics.get("cssContentSize") or metrics.get("contentSize")
            width = max(WINDOW[0], int(size["width"]))
            height = min(max(WINDOW[1], int(size["height"])), 8000)
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        return path


# What every browser stack needs: pages sign their forms with this key (runtime/page_csrf.h).
# Test classes that set ENV (or EMU_ENV) of their own start from dict(PAGE_ENV, ...).
PAGE_ENV = {"APPLICATION_SECURITY_REMEMBERME_KEY": "57" * 32}


class BrowserMixin:
    """Starts one Browser per test class after the stack (set up by the StackTestCase it is mixed
    into) and gives each test the helpers of the module docstring."""
    browser = None
    axe_skipped = False

    @classmethod
    def setUpClass(cls):
        why = missing()
        if why:
            raise unittest.SkipTest(why)
        super().setUpClass()
        try:
            cls.browser = Browser(cls.stack.url, cls.browser_flags())
        except BaseException:
            super().tearDownClass()
            raise

    @classmethod
    def browser_flags(cls):
        """More Chromium switches for this class's browser."""
        return ()

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.browser:
                cls.browser.close()
                cls.browser = None
        finally:
            super().tearDownClass()

    @property
    def b(self):
        return self.browser

    def setUp(self):
        self.b.console_errors()   # a test starts with an empty log

    # ---- shortcuts -----------------------------------------------------------------------
    def login(self, user):
        self.b.login(user, self.stack.passwords[user])

    def open(self, path):
        self.b.open(path)

    def assert_no_console_errors(self, status=None):
        """status: the HTTP status the page itself was answered with when it is not 2xx (a form
        shown again with its error, an error page): Chromium logs that as a failed load."""
        errors = self.b.console_errors()
        if status:
            own = "%s - Failed to load resource: the server responded with a status of %d" % (
                self.b.driver.current_url, status)
            errors = [e for e in errors if not e.get("message", "").startswith(own)]
        self.assertEqual(errors, [], "console errors on %s:\n%s" % (
            self.b.path(), "\n".join(e.get("message", "") for e in errors)))

    def assert_accessible(self):
        violations = self.b.axe_violations()
        if violations is None:
            if not BrowserMixin.axe_skipped:
                print("SKIP: axe-core not installed in %s (run make deps): accessibility not checked" % AXE_JS)
                BrowserMixin.axe_skipped = True
            return
        self.assertEqual(violations, [], "axe-core: serious or critical violations on %s:\n%s" % (
            self.b.path(), "\n".join("%s (%s): %s %s" % (v["id"], v["impact"], v["help"],
                                                         [n.get("target") for n in v.get("nodes", [])][:5])
                                     for v in violations)))

    def check_page(self, name, status=None, window_only=False):
        """The checks every page passes, and its picture: returns the screenshot's path. status:
        see assert_no_console_errors; window_only: see Browser.screenshot."""
        path = self.b.screenshot(name, window_only)
        self.assert_no_console_errors(status)
        self.assert_accessible()
        return path


class BrowserTestCase(BrowserMixin, harness.StackTestCase):
    """A browser against the stack (nginx + basic auth + pbiport)."""
    ENV = PAGE_ENV


class BrowserEmulatorTestCase(BrowserMixin, harness.EmulatorStackTestCase):
    """A browser against the stack pointed at the Power BI emulator (EMU_FIXTURE, EMU_ENV ...). The
    browser trusts the emulator's own certificate (by its public key: pages such as Microsoft's
    consent screen are the emulator's, over HTTPS with its test CA), and nothing else new."""
    EMU_ENV = PAGE_ENV

    @classmethod
    def browser_flags(cls):
        der = subprocess.run(["openssl", "pkey", "-in", os.path.join(cls.emu.dir, "server.key"), "-pubout",
                              "-outform", "DER"], check=True, stdout=subprocess.PIPE).stdout
        spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
        return ("--ignore-certificate-errors-spki-list=" + spki,)


def main():
    """unittest.main for a browser test module; prints SKIP and passes when no browser is here."""
    why = missing()
    if why:
        print("SKIP: browser tests: " + why)
        sys.exit(0)
    unittest.main(verbosity=2)
