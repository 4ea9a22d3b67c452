/* GET /powerbi/connect and GET /powerbi/callback: a user's delegated Power BI consent
 * (authorization code + PKCE, signed single-use state; see core/store/connections.h).
 * Errors are JSON; nothing here logs or echoes a token, code or verifier. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/connections.h"
#include "core/store/powerbi_settings.h"
#include "handlers/handlers.h"
#include "msapi/entra.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

int site_url(struct req *r, const char *path, char **out)
{
	char origin[PB_ORIGIN_MAX];
	sbuf sb;
	*out = NULL;
	/* without PBIPORT_PUBLIC_URL: the address the browser used; Entra only accepts registered
	 * redirect URIs, so a forged Host header cannot divert a code */
	int rc = r->cfg->public_url ? PB_OK : req_site_origin(r, origin, r->err);
	if (rc)
		return rc;
	sbuf_init(&sb, PB_RETURN_TO_MAX + 256);
	if (sbuf_addf(&sb, "%s%s", r->cfg->public_url ? r->cfg->public_url : origin, path)) {
		sbuf_release(&sb);
		return pb_err(r->err, PB_ELIMIT, "URL too long");
	}
	*out = sbuf_detach(&sb, NULL);
	return *out ? PB_OK : pb_err(r->err, PB_ENOMEM, "out of memory");
}

int powerbi_redirect_uri(struct req *r, char **out)
{
	return site_url(r, "/powerbi/callback", out);
}

/* Replies with a redirect that no cache keeps. */
static int redirect_to(struct req *r, const char *location)
{
	if (req_header(r, "Location", location) || req_header(r, "Cache-Control", "no-store"))
		return pb_err(r->err, PB_EINVAL, "unusable redirect target");
	return req_reply(r, 302, "text/plain; charset=utf-8", NULL, 0);
}

int powerbi_connect(struct req *r)
{
	pbi_app app = { 0 };
	entra_pkce pkce;
	msapi api = { 0 };   /* zeroed: safe to release before init */
	char *redirect_uri = NULL, *state = NULL, *url = NULL;
	const char *return_to = req_query(r, "return_to");
	const char *prompt = req_query(r, "prompt");
	const char *login_hint = req_query(r, "login_hint");
	int rc;
	memset(&pkce, 0, sizeof pkce);
	if (!return_to || !*return_to)
		return_to = "/";
	if (!conn_return_to_ok(return_to))
		return req_reply_error(r, 400, "invalid_return_to",
				       "return_to must be a local path such as /data-products (no scheme, no //, no backslash)");
	if (prompt && strcmp(prompt, "consent") && strcmp(prompt, "select_account") && strcmp(prompt, "login"))
		return req_reply_error(r, 400, "invalid_prompt", "prompt must be consent, select_account or login");
	if (login_hint && (strlen(login_hint) > PB_NAME_FIELD_MAX * 2 || !*login_hint))
		return req_reply_error(r, 400, "invalid_login_hint", "login_hint is empty or too long");
	rc = pbi_settings_app(r->db, r->cfg, r->who.org_id, &app, r->err);
	if (rc == PB_ENOTFOUND) {
		rc = req_reply_error(r, 409, "not_configured", "%s", r->err);
		goto out;
	}
	if (rc || (rc = powerbi_redirect_uri(r, &redirect_uri)) || (rc = entra_pkce_new(&pkce, r->err)))
		goto out;
	oauth_state st = { .tenant_id = app.tenant_id, .client_id = app.client_id, .redirect_uri = redirect_uri,
			   .return_to = (char *)return_to, .code_verifier = pkce.verifier };
	memcpy(st.org_id, r->who.org_id, sizeof st.org_id);
	memcpy(st.user_id, r->who.user_id, sizeof st.user_id);
	if ((rc = oauth_state_begin(r->db, r->cfg->encryption_keys, r->cfg->rememberme_keys, &st, &state, r->err)))
		goto out;
	if ((rc = msapi_init(&api, NULL, r->err)))
		goto out;
	entra_authorize az = { .tenant = app.tenant_id, .client_id = app.client_id, .redirect_uri = redirect_uri,
			       .scope = CONN_SCOPES, .state = state, .code_challenge = pkce.challenge,
			       .prompt = prompt, .login_hint = login_hint };
	if ((rc = entra_authorize_url(&api, &az, &url, r->err)))
		goto out;
	rc = redirect_to(r, url);
out:
	msapi_release(&api);
	pb_wipe(&pkce, sizeof pkce);
	free(redirect_uri);
	free(state);
	free(url);
	pbi_app_release(&app);
	return rc;
}

int powerbi_callback(struct req *r)
{
	oauth_state st = { 0 };
	pbi_app app = { 0 };
	entra_token tok = { 0 };
	pb_http *http = NULL;
	msapi api = { 0 };
	char conn_id[PB_ID_BUF];
	const char *code = req_query(r, "code");
	const char *error = req_query(r, "error");
	int rc = oauth_state_finish(r->db, r->cfg->encryption_keys, r->cfg->rememberme_keys, req_query(r, "state"),
				    r->who.org_id, r->who.user_id, &st, r->err);
	if (rc == PB_EINVAL)
		return req_reply_error(r, 400, "invalid_state", "%s", r->err);
	if (rc)
		return rc;
	if (error) {
		char what[64], desc[256];
		entra_error_text(what, sizeof what, error);
		entra_error_text(desc, sizeof desc, req_query(r, "error_description"));
		if (!strcmp(error, "access_denied"))
			rc = req_reply_error(r, 400, "consent_declined",
					     "Power BI access was not granted (the consent screen was cancelled or declined)%s%s: "
					     "connect again and accept the permissions to publish to Power BI",
					     *desc ? ": " : "", desc);
		else
			rc = req_reply_error(r, 400, "consent_failed", "Entra did not complete the sign-in (%s%s%s)", what,
					     *desc ? ": " : "", desc);
		goto out;
	}
	if (!code || !*code || strlen(code) > PB_OAUTH_CODE_MAX) {
		rc = req_reply_error(r, 400, "invalid_callback", "the callback carries no authorization code");
		goto out;
	}
	rc = pbi_settings_app(r->db, r->cfg, r->who.org_id, &app, r->err);
	if (rc == PB_ENOTFOUND) {
		rc = req_reply_error(r, 409, "not_configured", "%s", r->err);
		goto out;
	}
	if (rc)
		goto out;
	if (strcmp(app.client_id, st.client_id) || strcmp(app.tenant_id, st.tenant_id)) {
		rc = req_reply_error(r, 409, "settings_changed", "the organization's Power BI app changed during the "
				     "sign-in: start the Power BI connection again");
		goto out;
	}
	if ((rc = pb_http_new(NULL, &http, r->err)) || (rc = msapi_init(&api, http, r->err)))
		goto out;
	entra_app ea = { app.tenant_id, app.client_id, app.client_secret };
	rc = entra_exchange_code(&api, &ea, code, st.redirect_uri, st.code_verifier, CONN_SCOPES, &tok, r->err);
	if (rc) {
		bool down = api.last.status == 0 || api.last.status >= 500 || api.last.status == 429;
		rc = req_reply_error(r, down ? 502 : 400, down ? "entra_unavailable" : "exchange_failed", "%s", r->err);
		goto out;
	}
	rc = conn_save(r->db, r->cfg->encryption_keys, r->who.org_id, r->who.user_id, st.tenant_id, st.client_id, &tok,
		       conn_id, r->err);
	if (rc == PB_EINVAL) {
		rc = req_reply_error(r, 400, "exchange_failed", "%s", r->err);
		goto out;
	}
	if (!rc)
		rc = redirect_to(r, st.return_to);
out:
	msapi_release(&api);
	pb_http_free(http);
	entra_token_release(&tok);
	pbi_app_release(&app);
	oauth_state_release(&st);
	return rc;
}
