"""The Power BI pages without a browser (and so without JavaScript), through nginx + pbiport + the
emulator: every form works as a plain form post to its own page. Publish sends you to the job's page,
which reloads itself (a <noscript> meta refresh) until the job ends; a refused form comes back with
its message and what was typed (never a secret); Test connection and Save; Disconnect asks first;
Cancel from /jobs and /jobs/{id}; the connect callback's failures land a browser on a page with the
way back (the API keeps its JSON), its success on the page that started it, #fragment included.
Security headers, CSRF, 403 for members on owner pages and 404 for others' ids. Python standard
library only."""

import html
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import publish_stack  # noqa: E402
from publish_stack import APP, HTML, SF_CONNECTION, TENANT, WS_ADMIN  # noqa: E402

CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
WS_VIEWER = "a0000000-0000-4000-8000-000000000003"   # alice: Viewer
REFRESH = '<noscript><meta content="2" http-equiv="refresh"></noscript>'


class PublishPagesHttp(publish_stack.PublishStackTestCase):
    # ---- helpers -------------------------------------------------------------------------------
    def assert_page_headers(self, hdrs, what):
        self.assertEqual(hdrs.get("content-security-policy"), CSP, what)
        self.assertEqual(hdrs.get("x-content-type-options"), "nosniff", what)
        self.assertEqual(hdrs.get("x-frame-options"), "DENY", what)
        self.assertEqual(hdrs.get("cache-control"), "no-store", what)

    def modal(self, port="analytics"):
        return "/output-ports/%s/power-bi" % self.ports[port]

    # ---- the tests -------------------------------------------------------------------------------
    def test_headers_and_csrf_on_every_new_page(self):
        job = self.submit("analytics", {"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION, "name": "Headers"})
        for path in (self.modal(), "/jobs", "/jobs/" + job, "/profile/power-bi", "/settings/power-bi"):
            status, hdrs, body = self.page(path)
            self.assertEqual(status, 200, (path, body[:300]))
            self.assert_page_headers(hdrs, path)
            self.assertTrue(body.startswith("<!DOCTYPE html>"), path)
        # every form's POST needs this site's origin and the token its page signed
        for path, fields in ((self.modal(), {"workspace_id": WS_ADMIN, "connection": SF_CONNECTION}),
                             ("/jobs", {"job_id": job}), ("/jobs/" + job, {"cleanup": "0"}),
                             ("/profile/power-bi", {"action": "disconnect", "connection_id": "x"}),
                             ("/settings/power-bi", {"action": "test", "mode": "custom"})):
            self.assertEqual(self.token(path), self.signed(path, "alice"), path)
            token = self.signed(path, "alice")
            for headers, f in (({"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
                                dict(fields, csrf_token=token)),
                               ({"Sec-Fetch-Site": "same-origin"}, fields),
                               ({"Sec-Fetch-Site": "same-origin"}, dict(fields, csrf_token=self.signed(path, "bob")))):
                status, hdrs, body = self.page(path, "alice", "POST", urllib.parse.urlencode(f),
                                               dict(headers, **{"Content-Type": "application/x-www-form-urlencoded"}))
                self.assertEqual(status, 403, (path, headers, body[:300]))
                self.assertIn("csrf_failed", body)
                self.assert_page_headers(hdrs, path)
        self.assertEqual(self.job(job)["state"], "queued", "no refused post cancelled it")

    def test_publish_without_javascript_goes_to_the_job_page_which_reloads_itself(self):
        status, _, body = self.page(self.modal())
        self.assertIn('<option disabled value="%s">Marketing (Viewer: publishing needs Contributor, Member or Admin)'
                      % WS_VIEWER, body)
        self.assertIn('value="Contoso sales – analytics"', body)                # the API's default name
        self.assertIn('value="%s"' % SF_CONNECTION, body)                       # the matching connection
        status, hdrs, body = self.post(self.modal(), {"workspace_id": WS_ADMIN, "name": "No script",
                                                      "connection": SF_CONNECTION})
        self.assertEqual(status, 303, body[:500])
        self.assertRegex(hdrs["location"], r"^/jobs/[0-9a-f]{32}$")
        job_id = hdrs["location"].rsplit("/", 1)[1]
        status, _, body = self.page(hdrs["location"])
        self.assertEqual(status, 200)
        self.assertIn(REFRESH, body)
        self.assertIn('<a href="/jobs/%s">Reload now</a>' % job_id, body)
        self.assertIn("Waiting for a worker to start it", body)
        self.start_worker()
        self.assertEqual(self.wait_job(job_id)["state"], "succeeded")
        status, _, body = self.page(hdrs["location"])
        self.assertNotIn("http-equiv", body)
        self.assertIn("Open in Power BI", body)
        self.assertEqual(body.count('class="phase phase-done"'), 5, body)
        self.assertRegex(body, r'data-phase="creating_model">.*?<span class="phase-time">\d+\.\d s</span>')

    def test_a_refused_form_comes_back_with_its_message_and_without_secrets(self):
        fields = {"workspace_id": "", "name": "Kept <name>", "connection": "new", "username": "svc_kept",
                  "password": "Sn0w-s3cret-pw"}
        status, _, body = self.post(self.modal("fresh"), fields)
        self.assertEqual(status, 400, body[:500])
        self.assertIn("Not published", body)
        self.assertIn("Choose a workspace.", body)
        self.assertIn('value="Kept &lt;name&gt;"', body)
        self.assertIn('value="svc_kept"', body)
        self.assertNotIn("Sn0w-s3cret-pw", body)
        self.assertRegex(body, r'<input checked id="conn-new"')
        status, _, body = self.post(self.modal("fresh"), dict(fields, workspace_id=WS_ADMIN, username=""))
        self.assertEqual(status, 400)
        self.assertIn("A new connection needs Username and Password.", body)
        # core's checks, in core's words: a Viewer workspace (403 no_write_role)
        status, _, body = self.post(self.modal(), {"workspace_id": WS_VIEWER, "connection": SF_CONNECTION})
        self.assertEqual(status, 403, body[:500])
        self.assertIn("it needs the Contributor, Member or Admin role there (you are Viewer)", body)
        status, _, body = self.post(self.modal("lakehouse"), {"workspace_id": WS_ADMIN, "connection": "new",
                                                              "credential_type": "service_principal",
                                                              "tenant_id": "not-a-guid", "client_id": "x",
                                                              "client_secret": "s3cr3t-value"})
        self.assertEqual(status, 400)
        self.assertIn("connection.tenant_id", body)
        self.assertNotIn("s3cr3t-value", body)
        self.assertIn('<input checked id="cred-service_principal"', body)

    def test_databricks_port_without_http_path_asks_for_it_first(self):
        path = self.modal("lake-nopath")
        status, _, body = self.page(path)
        self.assertIn(">HTTP path</label>", body)
        self.assertIn(">Continue</button>", body)
        self.assertNotIn('id="power-bi-form"', body)
        status, _, body = self.page(path + "?http_path=" + urllib.parse.quote("/sql/1.0/warehouses/feedbeef"))
        self.assertEqual(status, 200)
        self.assertIn('id="power-bi-form"', body)
        self.assertIn('<input name="http_path" type="hidden" value="/sql/1.0/warehouses/feedbeef">', body)
        self.assertIn("None of your connections points at Databricks", body)

    def test_settings_test_and_save_as_plain_forms(self):
        self.assertEqual(self.page("/settings/power-bi", user="bob")[0], 403)
        status, _, body = self.post("/settings/power-bi", {"action": "save", "mode": "custom"}, user="bob")
        self.assertEqual(status, 403)
        form = {"mode": "custom", "tenant_id": TENANT, "client_id": APP["client_id"], "client_secret": "wrong-one"}
        status, _, body = self.post("/settings/power-bi", dict(form, action="test"))
        self.assertEqual(status, 200, body[:500])
        self.assertIn("The connection does not work.", body)
        self.assertIn("bad_credentials", body)
        self.assertIn("The secret you typed is not shown again", body)
        self.assertNotIn("wrong-one", body)
        status, _, body = self.post("/settings/power-bi", dict(form, action="save"))
        self.assertEqual(status, 400)
        self.assertIn("Not saved", body)
        # the stored secret is kept when the field is left empty, and it works
        status, _, body = self.post("/settings/power-bi", dict(form, action="test", client_secret=""))
        self.assertIn("The connection works. Application: <strong>%s</strong>" % html.escape(APP["display_name"]), body)
        status, hdrs, body = self.post("/settings/power-bi", dict(form, action="save", client_secret=""))
        self.assertEqual((status, hdrs.get("location")), (303, "/settings/power-bi?saved=1"), body[:300])
        status, _, body = self.page("/settings/power-bi?saved=1")
        self.assertIn("Saved.", body)
        self.assertIn('placeholder="set — replace"', body)
        self.assertNotIn(APP["client_secret"], body)

    def test_disconnect_asks_first_without_javascript(self):
        self.connect("bob", "alice@contoso.example")   # bob's pbiport user, connected as a consented Entra user
        status, _, doc = self.stack.json("GET", "/api/me/powerbi-connections", token="bob")
        conn = doc["connections"][0]["id"]
        status, _, body = self.post("/profile/power-bi", {"action": "disconnect", "connection_id": conn}, user="bob")
        self.assertEqual(status, 200, body[:500])
        self.assertIn("Disconnect Power BI?", body)
        self.assertIn('<input name="confirmed" type="hidden" value="yes">', body)
        self.assertEqual(len(self.stack.json("GET", "/api/me/powerbi-connections", token="bob")[2]["connections"]), 1)
        # another user's connection is not found, as in the API
        alices = self.stack.json("GET", "/api/me/powerbi-connections", token="alice")[2]["connections"][0]["id"]
        status, _, body = self.post("/profile/power-bi", {"action": "disconnect", "connection_id": alices,
                                                          "confirmed": "yes"}, user="bob")
        self.assertEqual(status, 404)
        status, hdrs, body = self.post("/profile/power-bi", {"action": "disconnect", "connection_id": conn,
                                                             "confirmed": "yes"}, user="bob")
        self.assertEqual((status, hdrs.get("location")), (303, "/profile/power-bi?disconnected=1"))
        self.assertEqual(self.stack.json("GET", "/api/me/powerbi-connections", token="bob")[2]["connections"], [])
        status, _, body = self.page("/profile/power-bi?disconnected=1", user="bob")
        self.assertIn("Power BI is disconnected.", body)
        self.assertIn('href="/powerbi/connect?return_to=/profile/power-bi">Connect to Power BI</a>', body)

    def test_cancel_from_the_jobs_pages(self):
        one = self.submit("analytics", {"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION, "name": "Cancel one"})
        two = self.submit("analytics", {"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION, "name": "Cancel two"})
        status, hdrs, body = self.post("/jobs", {"job_id": one})
        self.assertEqual((status, hdrs.get("location")), (303, "/jobs"), body[:300])
        self.assertEqual(self.job(one)["state"], "cancelled")
        status, _, body = self.post("/jobs", {"job_id": one})
        self.assertEqual(status, 409)
        self.assertIn("Not cancelled", body)
        self.assertIn("already ended (cancelled): there is nothing to cancel", body)
        status, hdrs, body = self.post("/jobs/" + two, {"cleanup": "1"})
        self.assertEqual((status, hdrs.get("location")), (303, "/jobs/" + two))
        self.assertEqual(self.job(two)["state"], "cancelled")
        # bob sees his own jobs only; alice (an owner) sees them all, and bob cannot cancel hers
        mine = self.submit("analytics", {"workspace_id": WS_ADMIN, "connection_id": SF_CONNECTION, "name": "Alices"})
        status, _, body = self.page("/jobs", user="bob")
        self.assertNotIn("Alices", body)
        status, _, body = self.post("/jobs", {"job_id": mine}, user="bob")
        self.assertEqual(status, 404)
        self.assertEqual(self.job(mine)["state"], "queued")
        status, _, body = self.page("/jobs/" + mine, user="bob")
        self.assertEqual(status, 404)
        status, _, body = self.page("/jobs/" + mine, user="carol")
        self.assertEqual(status, 404)
        self.assertNotIn("Alices", body)
        status, _, body = self.page(self.modal(), user="carol")
        self.assertEqual(status, 404)

    def test_connect_callback_lands_on_a_page_for_browsers(self):
        back = "/data-products/%s#power-bi=%s" % (self.product["id"], self.ports["analytics"])
        # success: back to the page that started it, #fragment included (the dialog opens again)
        status, hdrs, _ = self.stack.request("GET", "/powerbi/connect?return_to=" + urllib.parse.quote(back, safe=""),
                                             basic="alice", headers=HTML)
        self.assertEqual(status, 302)
        r = self.emu.call("GET", hdrs["location"] + "&login_hint=alice@contoso.example")
        cb = r.header("Location")
        status, hdrs, _ = self.stack.request("GET", cb[cb.index("/powerbi/callback"):], basic="alice", headers=HTML)
        self.assertEqual((status, hdrs["location"]), (302, back))
        # declined on the consent screen: a page saying so, with Try again and Back
        for accept, want_html in ((HTML, True), ({}, False)):
            status, hdrs, _ = self.stack.request("GET", "/powerbi/connect?return_to=" + urllib.parse.quote(back, safe=""),
                                                 basic="alice", headers=HTML)
            state = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(hdrs["location"]).query))["state"]
            query = urllib.parse.urlencode({"state": state, "error": "access_denied",
                                            "error_description": "AADSTS65004: User declined to consent."})
            status, hdrs, body = self.stack.request("GET", "/powerbi/callback?" + query, basic="alice", headers=accept)
            self.assertEqual(status, 400)
            body = body.decode()
            if want_html:
                self.assert_page_headers(hdrs, "callback")
                self.assertIn("<h1>Power BI is not connected</h1>", body)
                self.assertIn("consent_declined", body)
                self.assertIn('href="%s">Back</a>' % html.escape(back), body)
                self.assertIn('href="/powerbi/connect?return_to=%s">Try again</a>'
                              % urllib.parse.quote(back, safe="/"), body)
            else:
                self.assertTrue(hdrs["content-type"].startswith("application/json"))
                self.assertIn('"consent_declined"', body)
        # a state that does not check out: the way back is the profile page
        status, hdrs, body = self.stack.request("GET", "/powerbi/callback?state=forged.1.x&code=abc", basic="alice",
                                                headers=HTML)
        self.assertEqual(status, 400)
        self.assertIn('href="/profile/power-bi">Back</a>', body.decode())


if __name__ == "__main__":
    harness.main()
