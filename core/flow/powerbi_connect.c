/* A user's delegated Power BI consent and connections. See core/flow/powerbi_connect.h. */
#include "core/flow/powerbi_connect.h"

#include <stdlib.h>
#include <string.h>

#include "core/flow/ms_failure.h"
#include "core/flow/pbi_session.h"
#include "core/store/connections.h"
#include "core/store/powerbi_settings.h"
#include "msapi/entra.h"
#include "msapi/powerbi.h"
#include "runtime/crypto.h"
#include "runtime/util.h"

static int check_start(const connect_start *in, pb_failure *f)
{
	if (!conn_return_to_ok(in->return_to))
		return pb_fail(f, PB_EINVAL, NULL, "?return_to= must be a local path such as /data-products (no scheme, "
			       "no //, no backslash)");
	if (in->prompt && strcmp(in->prompt, "consent") && strcmp(in->prompt, "select_account") &&
	    strcmp(in->prompt, "login"))
		return pb_fail(f, PB_EINVAL, NULL, "?prompt= must be consent, select_account or login");
	if (in->login_hint && (!*in->login_hint || strlen(in->login_hint) > PB_NAME_FIELD_MAX * 2))
		return pb_fail(f, PB_EINVAL, NULL, "?login_hint= is empty or longer than %d bytes", PB_NAME_FIELD_MAX * 2);
	return PB_OK;
}

int connect_begin(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const connect_start *in,
		  char **url, pb_failure *f)
{
	pbi_app app = { 0 };
	entra_pkce pkce;
	msapi api = { 0 };   /* zeroed: safe to release before init */
	char *state = NULL;
	connect_start req = *in;
	int rc;
	*url = NULL;
	pb_failure_clear(f);
	memset(&pkce, 0, sizeof pkce);
	if (!req.return_to || !*req.return_to)
		req.return_to = "/";
	if ((rc = check_start(&req, f)) || (rc = pbi_org_app(db, cfg, org_id, &app, f)))
		goto out;
	if ((rc = entra_pkce_new(&pkce, f->message)))
		goto failed;
	oauth_state st = { .tenant_id = app.tenant_id, .client_id = app.client_id, .redirect_uri = (char *)req.redirect_uri,
			   .return_to = (char *)req.return_to, .code_verifier = pkce.verifier };
	if (xsnprintf(st.org_id, sizeof st.org_id, "%s", org_id) || xsnprintf(st.user_id, sizeof st.user_id, "%s", user_id)) {
		rc = pb_fail(f, PB_EINTERNAL, NULL, "organization or user id too long");
		goto out;
	}
	if ((rc = oauth_state_begin(db, cfg->encryption_keys, cfg->rememberme_keys, &st, &state, f->message)))
		goto failed;
	msapi_init(&api, NULL, cfg);
	entra_authorize az = { .tenant = app.tenant_id, .client_id = app.client_id, .redirect_uri = req.redirect_uri,
			       .scope = CONN_SCOPES, .state = state, .code_challenge = pkce.challenge,
			       .prompt = req.prompt, .login_hint = req.login_hint };
	if ((rc = entra_authorize_url(&api, &az, url, f->message)))
		goto failed;
	goto out;
failed:
	pb_fail_as(f, rc, NULL);
out:
	msapi_release(&api);
	pb_wipe(&pkce, sizeof pkce);
	free(state);
	pbi_app_release(&app);
	return rc;
}

/* Entra sent the browser back with an error instead of a code. */
static int answer_refused(const connect_answer *in, pb_failure *f)
{
	msapi api;
	msapi_init(&api, NULL, NULL);   /* classifies Entra's answer; calls nothing */
	int rc = entra_authorize_failed(&api, in->error, in->error_description, f->message);
	if (api.last.failure == MSAPI_FORBIDDEN)
		rc = pb_fail(f, PB_EINVAL, "consent_declined",
			     "Power BI access was not granted (the consent screen was cancelled or declined)%s%s: connect "
			     "again and accept the permissions to publish to Power BI",
			     api.last.message[0] ? ": " : "", api.last.message);
	else
		rc = ms_fail(&api, rc, f);
	msapi_release(&api);
	return rc;
}

/* Redeems code for tokens with the organization's app and the sign-in's verifier. */
static int exchange(const pb_config *cfg, const pbi_app *app, const oauth_state *st, const char *code,
		    entra_token *tok, pb_failure *f)
{
	pb_http *http = NULL;
	msapi api = { 0 };
	pb_http_opts ho = { .ca_bundle = cfg->ca_bundle };
	int rc = pb_http_new(&ho, &http, f->message);
	if (rc) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	msapi_init(&api, http, cfg);
	entra_app ea = { app->tenant_id, app->client_id, app->client_secret };
	rc = entra_exchange_code(&api, &ea, code, st->redirect_uri, st->code_verifier, CONN_SCOPES, tok, f->message);
	if (rc && (rc = ms_fail(&api, rc, f)) && api.last.failure == MSAPI_BAD_CREDENTIALS)
		pbi_fail_reword(f, PBI_ORG_SETTINGS ": %s", f->message);
out:
	msapi_release(&api);
	pb_http_free(http);
	return rc;
}

int connect_finish(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const connect_answer *in,
		   char **return_to, pb_failure *f)
{
	oauth_state st = { 0 };
	pbi_app app = { 0 };
	entra_token tok = { 0 };
	char conn_id[PB_ID_BUF];
	*return_to = NULL;
	pb_failure_clear(f);
	int rc = oauth_state_finish(db, cfg->encryption_keys, cfg->rememberme_keys, in->state, org_id, user_id, &st,
				    f->message);
	if (rc) {
		pb_fail_as(f, rc, NULL);   /* PB_EINVAL: the state, in words that say which check failed */
		goto out;
	}
	/* known from here on, so a browser goes back to the page that started the sign-in whatever
	 * happens next */
	if (!(*return_to = xstrdup(st.return_to))) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	if (in->error) {
		rc = answer_refused(in, f);
		goto out;
	}
	if (!in->code || !*in->code || strlen(in->code) > PB_OAUTH_CODE_MAX) {
		rc = pb_fail(f, PB_EINVAL, NULL, "the callback carries no usable authorization code (?code=): start the "
			     "Power BI connection again");
		goto out;
	}
	if ((rc = pbi_org_app(db, cfg, org_id, &app, f)))
		goto out;
	if (strcmp(app.client_id, st.client_id) || strcmp(app.tenant_id, st.tenant_id)) {
		rc = pb_fail(f, PB_ECONFLICT, NULL, "the organization's Power BI app changed during the sign-in: start the "
			     "Power BI connection again");
		goto out;
	}
	if ((rc = exchange(cfg, &app, &st, in->code, &tok, f)))
		goto out;
	rc = conn_save(db, cfg->encryption_keys, org_id, user_id, st.tenant_id, st.client_id, &tok, conn_id, f->message);
	if (rc) {
		/* PB_EINVAL: Entra gave no refresh token, offline_access was not granted */
		pb_fail_as(f, rc, rc == PB_EINVAL ? "consent_declined" : NULL);
		goto out;
	}
out:
	entra_token_release(&tok);
	pbi_app_release(&app);
	oauth_state_release(&st);
	return rc;
}

int connect_list(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, json_t **out,
		 pb_failure *f)
{
	pbi_settings s = { 0 };
	*out = NULL;
	pb_failure_clear(f);
	int rc = pbi_settings_get(db, cfg, org_id, &s, f->message);
	if (!rc && s.tenant_id && s.client_id)
		rc = conn_mark_app_changed(db, org_id, s.tenant_id, s.client_id, f->message);
	pbi_settings_release(&s);
	if (rc == PB_ENOTFOUND)   /* no settings: nothing to compare with */
		rc = PB_OK;
	if (!rc)
		rc = conn_list(db, org_id, user_id, out, f->message);
	return rc ? pb_fail_as(f, rc, NULL) : PB_OK;
}

int connect_check(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, size_t *workspaces,
		  pb_failure *f)
{
	pbi_session s = { 0 };
	msapi_items groups = { 0 };
	*workspaces = 0;
	int rc = pbi_session_open_user(&s, db, cfg, org_id, user_id, f);
	if (rc)
		return rc;
	if ((rc = powerbi_list_groups(&s.api, NULL, &groups, f->message)))
		rc = pbi_session_fail(&s, rc, f);
	else
		*workspaces = groups.n;
	msapi_items_release(&groups);
	pbi_session_release(&s);
	return rc;
}
