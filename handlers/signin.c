/* Signing in with Microsoft (core/flow/sso.h) and the sessions it makes:
 *   GET  /signin[?return_to=&prompt=&login_hint=]   302 to Entra's authorize page
 *   GET  /signin/callback                           302 back to return_to, signed in
 *   POST /signout[?return_to=]                      ends this browser's session, 303 to a local page
 *   GET  /api/me/sessions, DELETE /api/me/sessions/{id}   the caller's own sessions
 *   GET/PUT /api/settings/signin                    owners: self-sign-up for an Entra tenant
 * A browser (Accept: text/html) that cannot be signed in gets a short page saying why; other
 * clients get the JSON error. Nothing here logs or echoes a code, token or cookie. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/sso.h"
#include "core/store/connections.h"
#include "core/store/identity.h"
#include "core/store/sessions.h"
#include "handlers/handlers.h"
#include "runtime/json_body.h"
#include "runtime/log.h"
#include "runtime/page_csrf.h"
#include "runtime/page_render.h"
#include "runtime/util.h"

/* Adds a Set-Cookie header (max_age < 0 removes the cookie). */
static int set_cookie(struct req *r, const char *name, const char *value, const char *path, long long max_age)
{
	char line[PB_SET_COOKIE_MAX];
	int rc = auth_set_cookie(line, name, value, path, max_age, req_site_https(r), r->err);
	if (!rc)
		rc = req_header(r, "Set-Cookie", line);
	pb_wipe(line, sizeof line);
	return rc;
}

/* A redirect that no cache keeps. */
static int redirect(struct req *r, int status, const char *location)
{
	if (req_header(r, "Location", location) || req_header(r, "Cache-Control", "no-store"))
		return pb_err(r->err, PB_EINVAL, "unusable redirect target");
	return req_reply(r, status, "text/plain; charset=utf-8", NULL, 0);
}

/* Answers a failed sign-in: the error page for a browser, the JSON error (the runtime's) for
 * anyone else. Nobody is signed in here: the page has no organization in its header. */
static int refuse(struct req *r, int rc)
{
	if (!page_wants_html(r) || pb_rc_status(rc) >= 500)
		return rc;
	return page_reply_failure(r, pb_rc_status(rc), pb_failure_code(&r->fail), r->err, NULL) ? rc : PB_OK;
}

int api_signin_start(struct req *r)
{
	sso_begin_out out = { 0 };
	char *redirect_uri = NULL;
	const char *return_to = req_query(r, "return_to");
	int rc = site_url(r, "/signin/callback", &redirect_uri);
	if (rc)
		return rc;
	sso_begin_in in = { .return_to = return_to && *return_to ? return_to : "/", .redirect_uri = redirect_uri,
			    .prompt = req_query(r, "prompt"), .login_hint = req_query(r, "login_hint") };
	if ((rc = sso_begin(r->db, r->cfg, &in, &out, &r->fail)))
		goto out;
	if (!(rc = set_cookie(r, SSO_BROWSER_COOKIE, out.browser_secret, "/signin", PB_OAUTH_STATE_TTL_S)))
		rc = redirect(r, 302, out.authorize_url);
out:
	sso_begin_release(&out);
	free(redirect_uri);
	return rc;
}

int api_signin_callback(struct req *r)
{
	sso_finish_out out = { 0 };
	char browser[PB_SESSION_COOKIE_BUF];
	bool have_browser = auth_cookie_get(req_env(r, "HTTP_COOKIE"), SSO_BROWSER_COOKIE, browser, sizeof browser) == 0;
	sso_finish_in in = { .state = req_query(r, "state"), .code = req_query(r, "code"), .error = req_query(r, "error"),
			     .error_description = req_query(r, "error_description"),
			     .browser_secret = have_browser ? browser : NULL, .user_agent = req_env(r, "HTTP_USER_AGENT") };
	int rc = sso_finish(r->db, r->cfg, &in, &out, &r->fail);
	pb_wipe(browser, sizeof browser);
	/* the browser secret has done its work either way */
	if (set_cookie(r, SSO_BROWSER_COOKIE, "", "/signin", -1) && !rc)
		rc = PB_EINTERNAL;
	if (rc) {
		/* who was refused and why, for the owners who add people (no secret is in the message) */
		log_event("info", r->request_id, "sign-in with Microsoft refused (%s): %s", pb_failure_code(&r->fail), r->err);
		rc = refuse(r, rc);
		goto out;
	}
	log_event("info", r->request_id, "%s signed in with Microsoft%s%s", out.who.user_name,
		  out.signed_up ? " (signed up as a member)" : "", out.powerbi_connected ? ", Power BI connected" : "");
	if (out.powerbi_note[0])
		log_event("warn", r->request_id, "%s: %s", out.who.user_name, out.powerbi_note);
	if (!(rc = set_cookie(r, PB_SESSION_COOKIE, out.cookie, "/", r->cfg->session_lifetime_s)))
		rc = redirect(r, 302, out.return_to);
out:
	sso_finish_release(&out);
	return rc;
}

int api_signout(struct req *r)
{
	char cookie[PB_SESSION_COOKIE_BUF], hash[PB_TOKEN_HASH_HEX], origin[PB_ORIGIN_MAX], why[PB_ERR_MAX];
	const char *return_to = req_query(r, "return_to");
	if (!return_to || !*return_to)
		return_to = "/";
	if (!conn_return_to_ok(return_to))
		return req_fail(r, PB_EINVAL, "invalid_return_to", "return_to must be a local path such as /");
	/* a page of another site must not sign people out: same-origin only, the pages' forms' rule
	 * (the session it ends may already be gone, so there is no identity for a form token) */
	if (page_own_origin(r, origin, why))
		origin[0] = '\0';
	if (page_origin_allowed(req_env(r, "HTTP_ORIGIN"), req_env(r, "HTTP_SEC_FETCH_SITE"), origin[0] ? origin : NULL,
				why))
		return req_fail(r, PB_EFORBIDDEN, "csrf_failed", "signing out is only possible from pbiport's own pages: %s",
				why);
	if (auth_cookie_get(req_env(r, "HTTP_COOKIE"), PB_SESSION_COOKIE, cookie, sizeof cookie) == PB_OK &&
	    auth_session_cookie_check(r->cfg->rememberme_keys, cookie, hash, why) == PB_OK) {
		int rc = sessions_revoke_hash(r->db, hash, r->err);
		if (rc && rc != PB_ENOTFOUND)
			return rc;
	}
	pb_wipe(cookie, sizeof cookie);
	int rc = set_cookie(r, PB_SESSION_COOKIE, "", "/", -1);
	return rc ? rc : redirect(r, 303, return_to);
}

int api_me_sessions_list(struct req *r)
{
	json_t *list = NULL;
	int rc = sessions_list(r->db, r->who.user_id, r->cfg->session_idle_s, r->who.session_id[0] ? r->who.session_id : NULL,
			       &list, r->err);
	if (rc)
		return rc;
	return req_reply_json_new(r, 200, json_pack("{s:o}", "sessions", list));
}

int api_me_sessions_delete(struct req *r)
{
	const char *id = req_capture(r, "id");
	int rc = sessions_revoke(r->db, r->who.user_id, id, r->err);
	if (rc == PB_ENOTFOUND)
		return req_fail(r, rc, "not_found", "you have no live session with this id");
	if (rc)
		return rc;
	/* revoking the session this browser uses signs it out */
	if (!strcmp(id, r->who.session_id) && (rc = set_cookie(r, PB_SESSION_COOKIE, "", "/", -1)))
		return rc;
	return req_reply(r, 204, "application/json", NULL, 0);
}

static int reply_signin_settings(struct req *r)
{
	char tenant[PB_ENTRA_ID_BUF], *redirect_uri = NULL;
	int rc = identity_org_signup_get(r->db, r->who.org_id, tenant, r->err);
	if (rc)
		return rc;
	if (site_url(r, "/signin/callback", &redirect_uri) == PB_EINVAL)
		r->err[0] = '\0';   /* no public URL and no Host: the rest is still worth showing */
	json_t *doc = json_pack("{s:b, s:s?, s:s?, s:s?, s:b, s:s?}", "sso_configured", r->cfg->sso_signin, "tenant_id",
				r->cfg->sso_signin ? r->cfg->sso_tenant_id : NULL, "client_id",
				r->cfg->sso_signin ? r->cfg->sso_client_id : NULL, "redirect_uri", redirect_uri,
				"self_signup", tenant[0] != '\0', "signup_tenant_id", tenant[0] ? tenant : NULL);
	free(redirect_uri);
	return req_reply_json_new(r, 200, doc);
}

int api_signin_settings_get(struct req *r)
{
	return reply_signin_settings(r);
}

int api_signin_settings_put(struct req *r)
{
	static const char *const keys[] = { "self_signup", "tenant_id", NULL };
	json_t *doc = NULL;
	int rc = json_body_parse(r->body, r->body_len, 0, &doc, r->err);
	if (rc)
		return rc;
	if (!json_is_object(doc)) {
		rc = pb_err(r->err, PB_EINVAL, "the body must be a JSON object {\"self_signup\": true, \"tenant_id\": \"...\"}");
		goto out;
	}
	if ((rc = json_body_only_keys(doc, keys, "", r->err)))
		goto out;
	const json_t *on = json_object_get(doc, "self_signup");
	const json_t *tenant = json_object_get(doc, "tenant_id");
	if (!json_is_boolean(on)) {
		rc = pb_err(r->err, PB_EINVAL, "self_signup must be true or false");
		goto out;
	}
	if (tenant && !json_is_null(tenant) && !json_is_string(tenant)) {
		rc = pb_err(r->err, PB_EINVAL, "tenant_id must be a string");
		goto out;
	}
	const char *tid = json_string_value(tenant);
	/* the deployment's own tenant, when it is one tenant given by its id, needs no repeating */
	if (json_is_true(on) && !tid && r->cfg->sso_tenant_id && str_is_guid(r->cfg->sso_tenant_id))
		tid = r->cfg->sso_tenant_id;
	if (json_is_true(on) && !tid) {
		rc = pb_err(r->err, PB_EINVAL, "tenant_id is required to turn self_signup on: the id (a GUID) of the "
			    "Entra tenant whose people may sign up");
		goto out;
	}
	rc = identity_org_signup_set(r->db, r->who.org_id, json_is_true(on) ? tid : NULL, r->err);
	if (rc == PB_ECONFLICT)
		rc = req_fail(r, rc, "tenant_claimed", "%s", r->err);
	if (!rc)
		rc = reply_signin_settings(r);
out:
	json_decref(doc);
	return rc;
}
