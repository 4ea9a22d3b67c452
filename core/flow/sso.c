#include "core/flow/sso.h"

#include <stdlib.h>
#include <string.h>

#include "core/flow/ms_failure.h"
#include "core/store/connections.h"
#include "core/store/identity.h"
#include "core/store/oidc_keys.h"
#include "core/store/powerbi_settings.h"
#include "core/store/sessions.h"
#include "msapi/entra.h"
#include "msapi/oidc.h"
#include "runtime/crypto.h"
#include "runtime/strbuf.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

/* The scopes of a sign-in, with the Power BI permissions (and offline_access) or without. */
#define SSO_SCOPES_POWERBI SSO_SCOPES " " CONN_SCOPES

static const char *scopes_of(bool with_powerbi)
{
	return with_powerbi ? SSO_SCOPES_POWERBI : SSO_SCOPES;
}

/* The nonce of a browser secret: base64url(SHA-256(secret)), 43 characters. */
static int browser_nonce(const char *secret, char out[OAUTH_NONCE_BUF], char *err)
{
	unsigned char md[32];
	char *b64 = NULL;
	pb_sha256(secret, strlen(secret), md);
	int rc = pb_b64url_encode(md, sizeof md, &b64, err);
	if (!rc && xsnprintf(out, OAUTH_NONCE_BUF, "%s", b64))
		rc = pb_err(err, PB_EINTERNAL, "nonce has an unexpected length");
	free(b64);
	return rc;
}

/* True when the deployment's app signs in one tenant (not organizations, common or consumers). */
static bool single_tenant(const pb_config *cfg)
{
	const char *t = cfg->sso_tenant_id;
	return t && !str_ieq(t, "organizations") && !str_ieq(t, "common") && !str_ieq(t, "consumers");
}

void sso_begin_release(sso_begin_out *out)
{
	free(out->authorize_url);
	if (out->browser_secret)
		pb_secret_free(out->browser_secret, strlen(out->browser_secret));
	memset(out, 0, sizeof *out);
}

int sso_begin(pb_db *db, const pb_config *cfg, const sso_begin_in *in, sso_begin_out *out, pb_failure *f)
{
	entra_pkce pkce;
	msapi api = { 0 };
	char *state = NULL, *err = f->message;
	bool pbi_sso = false;
	int rc;
	memset(out, 0, sizeof *out);
	memset(&pkce, 0, sizeof pkce);
	if (!cfg->sso_signin)
		return pb_fail(f, PB_ENOTFOUND, "feature_disabled", "signing in with Microsoft is not configured on this "
			       "server (PBIPORT_SSO_TENANT_ID, PBIPORT_SSO_CLIENT_ID, PBIPORT_SSO_CLIENT_SECRET)");
	if (!conn_return_to_ok(in->return_to))
		return pb_fail(f, PB_EINVAL, "invalid_return_to", "return_to must be a local path such as /data-products "
			       "(no scheme, no //, no backslash)");
	if (in->prompt && strcmp(in->prompt, "login") && strcmp(in->prompt, "select_account") &&
	    strcmp(in->prompt, "consent"))
		return pb_fail(f, PB_EINVAL, "invalid_prompt", "prompt must be login, select_account or consent");
	if (in->login_hint && (!*in->login_hint || strlen(in->login_hint) > PB_EMAIL_MAX))
		return pb_fail(f, PB_EINVAL, "invalid_login_hint", "login_hint is empty or too long");
	/* one consent for signing in and Power BI when some organization uses this app for both */
	if (cfg->powerbi_web_enabled && (rc = pbi_settings_sso_in_use(db, &pbi_sso, err)))
		goto out;
	out->with_powerbi = cfg->powerbi_web_enabled && pbi_sso;
	oauth_state st = { .tenant_id = cfg->sso_tenant_id, .client_id = cfg->sso_client_id,
			   .redirect_uri = (char *)in->redirect_uri, .return_to = (char *)in->return_to,
			   .with_powerbi = out->with_powerbi };
	if ((rc = pb_random_token(32, &out->browser_secret, err)) ||
	    (rc = browser_nonce(out->browser_secret, st.id_nonce, err)) || (rc = entra_pkce_new(&pkce, err)))
		goto out;
	st.code_verifier = pkce.verifier;
	if ((rc = oauth_signin_begin(db, cfg->encryption_keys, cfg->rememberme_keys, &st, &state, err)))
		goto out;
	msapi_init(&api, NULL, cfg);
	entra_authorize az = { .tenant = cfg->sso_tenant_id, .client_id = cfg->sso_client_id,
			       .redirect_uri = in->redirect_uri, .scope = scopes_of(out->with_powerbi), .state = state,
			       .code_challenge = pkce.challenge, .prompt = in->prompt, .login_hint = in->login_hint,
			       .nonce = st.id_nonce };
	rc = entra_authorize_url(&api, &az, &out->authorize_url, err);
out:
	msapi_release(&api);
	pb_wipe(&pkce, sizeof pkce);
	free(state);
	if (rc) {
		sso_begin_release(out);
		if (f->rc != rc)
			pb_fail_as(f, rc, NULL);
	}
	return rc;
}

void sso_finish_release(sso_finish_out *out)
{
	free(out->return_to);
	pb_wipe(out->cookie, sizeof out->cookie);
	memset(out, 0, sizeof *out);
}

/* The tenant's configuration and keys: the cached copy while it is fresh, else fetched and
 * cached. refetch: the cached keys lack the token's key; fetch them again unless someone did
 * within PB_OIDC_REFETCH_MIN_S (then PB_ENOTFOUND: the key stays unknown). */
static int provider_keys(pb_db *db, msapi *api, const char *tenant, bool refetch, oidc_cached *c, pb_failure *f)
{
	char *url = NULL, *metadata = NULL, *jwks = NULL, *err = f->message;
	int rc = entra_oidc_config_url(api, tenant, &url, err);
	if (rc)
		goto out;
	oidc_cached_release(c);
	rc = oidc_cache_get(db, url, c, err);
	if (rc && rc != PB_ENOTFOUND)
		goto out;
	if (!rc && !refetch && c->expires_ms > pb_epoch_ms())
		goto out;
	if (!rc) {
		/* an expired copy is fetched again by one process (the others use it meanwhile); a key
		 * missing from a fresh one at most once a minute */
		rc = oidc_cache_claim(db, url, c->claim, refetch ? PB_OIDC_REFETCH_MIN_S : 0, err);
		if (rc == PB_ECONFLICT) {
			rc = refetch ? PB_ENOTFOUND : PB_OK;
			goto out;
		}
		if (rc)
			goto out;
	}
	if ((rc = entra_oidc_fetch(api, tenant, &metadata, &jwks, err))) {
		ms_fail(api, rc, f);
		goto out;
	}
	if ((rc = oidc_cache_put(db, url, metadata, jwks, PB_OIDC_KEYS_TTL_S, err)))
		goto out;
	oidc_cached_release(c);
	c->metadata = metadata;
	c->jwks = jwks;
	metadata = jwks = NULL;
out:
	free(url);
	free(metadata);
	free(jwks);
	return rc;
}

/* Checks the ID token with the tenant's keys, fetching them again once when the token names a
 * key the cached set lacks (Entra rotated its keys). */
static int check_id_token(pb_db *db, const pb_config *cfg, msapi *api, const char *id_token, const char *nonce,
			  entra_id_claims *claims, pb_failure *f)
{
	oidc_cached c = { 0 };
	char why[PB_ERR_MAX];
	entra_id_expect e = { .client_id = cfg->sso_client_id, .tenant = cfg->sso_tenant_id, .nonce = nonce,
			      .now_s = pb_epoch_ms() / 1000 };
	int rc = provider_keys(db, api, cfg->sso_tenant_id, false, &c, f);
	if (rc)
		goto out;
	rc = entra_id_token_check(id_token, c.metadata, c.jwks, &e, claims, why);
	if (rc == PB_ENOTFOUND) {
		int krc = provider_keys(db, api, cfg->sso_tenant_id, true, &c, f);
		if (krc && krc != PB_ENOTFOUND) {
			rc = krc;
			goto out;
		}
		if (!krc)
			rc = entra_id_token_check(id_token, c.metadata, c.jwks, &e, claims, why);
		else
			xsnprintf(why + strlen(why), sizeof why - strlen(why), " (its keys were fetched again less than "
				  "%d s ago)", PB_OIDC_REFETCH_MIN_S);
	}
	if (rc == PB_EINVAL || rc == PB_ENOTFOUND)
		rc = pb_fail(f, PB_EINVAL, "invalid_id_token", "Entra's ID token was refused: %s: sign in again", why);
	else if (rc)
		rc = pb_fail(f, rc, NULL, "%s", why);
out:
	oidc_cached_release(&c);
	return rc;
}

/* The first-sign-in addresses of a token: its email and preferred_username, normalized (a
 * malformed one is left out). */
static void token_addresses(const entra_id_claims *c, char addrs[2][PB_EMAIL_MAX + 1])
{
	char why[PB_ERR_MAX];
	if (!c->email || identity_email_normalize(c->email, addrs[0], why))
		addrs[0][0] = '\0';
	if (!c->preferred_username || identity_email_normalize(c->preferred_username, addrs[1], why))
		addrs[1][0] = '\0';
}

/* Who signed in: the pinned user, a user matched by e-mail (then pinned), or a new member of the
 * organization that lets the token's tenant sign up. */
static int find_user(pb_db *db, const pb_config *cfg, const entra_id_claims *c, pb_identity *who, bool *signed_up,
		     pb_failure *f)
{
	char addrs[2][PB_EMAIL_MAX + 1], pinned[PB_ENTRA_ID_BUF], signup_tenant[PB_ENTRA_ID_BUF];
	char org_id[PB_ID_BUF], *err = f->message;
	const char *list[2];
	int rc = identity_user_by_entra(db, c->tenant_id, c->object_id, who, err);
	*signed_up = false;
	if (rc != PB_ENOTFOUND)
		return rc;
	token_addresses(c, addrs);
	const char *shown = addrs[0][0] ? addrs[0] : addrs[1][0] ? addrs[1] : c->object_id;
	list[0] = addrs[0];
	list[1] = addrs[1];
	rc = identity_user_by_email(db, list, 2, who, pinned, err);
	if (rc == PB_ECONFLICT)
		return pb_fail_as(f, rc, "signin_conflict");
	if (!rc) {
		if (pinned[0])
			return pb_fail(f, PB_ECONFLICT, "signin_conflict", "the pbiport user %s is linked to another Microsoft "
				       "account: sign in with that one, or ask an owner", who->user_name);
		/* an e-mail is only believed from the deployment's own tenant or the organization's */
		if (!single_tenant(cfg)) {
			if ((rc = identity_org_signup_get(db, who->org_id, signup_tenant, err)))
				return rc;
			if (strcmp(signup_tenant, c->tenant_id))
				return pb_fail(f, PB_EFORBIDDEN, "signin_unknown_user", "%s signed in from the tenant %s, which "
					       "%s's organization does not trust: ask an owner to allow it", shown,
					       c->tenant_id, who->user_name);
		}
		rc = identity_user_pin_entra(db, who->user_id, c->tenant_id, c->object_id, addrs[0][0] ? addrs[0] : NULL,
					     err);
		return rc == PB_ECONFLICT ? pb_fail_as(f, rc, "signin_conflict") : rc;
	}
	if (rc != PB_ENOTFOUND)
		return rc;
	rc = identity_org_by_signup_tenant(db, c->tenant_id, org_id, err);
	if (rc == PB_ENOTFOUND)
		return pb_fail(f, PB_EFORBIDDEN, "signin_unknown_user", "no pbiport user matches %s: ask an organization "
			       "owner to add you with this e-mail address, or to let your tenant sign up", shown);
	if (rc)
		return rc;
	const char *name = addrs[1][0] ? addrs[1] : addrs[0];
	if (!*name)
		return pb_fail(f, PB_EFORBIDDEN, "signin_unknown_user", "the Microsoft account %s has no e-mail address or "
			       "user name to sign up with", c->object_id);
	rc = identity_user_signup(db, org_id, name, addrs[0][0] ? addrs[0] : NULL, c->tenant_id, c->object_id, who,
				  err);
	if (rc == PB_ECONFLICT || rc == PB_EINVAL)
		return pb_fail_as(f, PB_ECONFLICT, "signin_conflict");
	*signed_up = !rc;
	return rc;
}

/* Stores the Power BI connection the sign-in's consent included, when the user's organization
 * uses the deployment's app for Power BI; otherwise says why not in out->powerbi_note. */
static void keep_powerbi(pb_db *db, const pb_config *cfg, const entra_token *tok, sso_finish_out *out)
{
	pbi_app app = { 0 };
	char conn_id[PB_ID_BUF], err[PB_ERR_MAX];
	int rc = pbi_settings_app(db, cfg, out->who.org_id, &app, err);
	if (rc == PB_ENOTFOUND || (!rc && (!str_ieq(app.tenant_id, cfg->sso_tenant_id) ||
					   !str_ieq(app.client_id, cfg->sso_client_id))))
		xsnprintf(out->powerbi_note, sizeof out->powerbi_note, "your organization uses another app for Power BI: "
			  "connect Power BI separately");
	else if (!rc && !tok->refresh_token)
		xsnprintf(out->powerbi_note, sizeof out->powerbi_note, "the Power BI permissions were not granted: "
			  "connect Power BI separately");
	else if (!rc && !(rc = conn_save(db, cfg->encryption_keys, out->who.org_id, out->who.user_id, cfg->sso_tenant_id,
					 cfg->sso_client_id, tok, conn_id, err)))
		out->powerbi_connected = true;
	if (rc && rc != PB_ENOTFOUND)
		xsnprintf(out->powerbi_note, sizeof out->powerbi_note, "Power BI was not connected: %s", err);
	pbi_app_release(&app);
}

/* The code exchange's failure: worth trying again later (Entra unreachable or busy), or this
 * sign-in cannot finish (the code was refused). */
static int exchange_failed(const msapi *api, int rc, pb_failure *f)
{
	switch (api->last.failure) {
	case MSAPI_RETRY_AFTER:
	case MSAPI_UNAVAILABLE:
	case MSAPI_OUTCOME_UNKNOWN:
		return ms_fail(api, rc, f);
	default:
		return pb_fail(f, PB_EINVAL, "signin_failed", "Entra did not accept the sign-in: %s: sign in again",
			       f->message);
	}
}

/* Entra came back with an error instead of a code (classified by msapi): cancelled at Microsoft,
 * Microsoft unavailable (worth trying again), or any other refusal. */
static int redirect_failed(const sso_finish_in *in, pb_failure *f)
{
	msapi api = { 0 };
	msapi_init(&api, NULL, NULL);   /* classifies Entra's answer; calls nothing */
	int rc = entra_authorize_failed(&api, in->error, in->error_description, f->message);
	if (api.last.failure == MSAPI_FORBIDDEN)
		rc = pb_fail(f, PB_EINVAL, "signin_declined", "the sign-in was cancelled or declined at Microsoft%s%s",
			     api.last.message[0] ? ": " : "", api.last.message);
	else if (api.last.failure == MSAPI_UNAVAILABLE)
		rc = ms_fail(&api, rc, f);
	else
		rc = pb_fail(f, PB_EINVAL, "signin_failed", "%s", f->message);
	msapi_release(&api);
	return rc;
}

int sso_finish(pb_db *db, const pb_config *cfg, const sso_finish_in *in, sso_finish_out *out, pb_failure *f)
{
	oauth_state st = { 0 };
	entra_token tok = { 0 };
	entra_id_claims claims = { 0 };
	pb_http *http = NULL;
	msapi api = { 0 };
	char nonce[OAUTH_NONCE_BUF], hash[PB_TOKEN_HASH_HEX], ua[PB_USER_AGENT_MAX + 1];
	char *err = f->message;
	int rc;
	memset(out, 0, sizeof *out);
	if (!cfg->sso_signin)
		return pb_fail(f, PB_ENOTFOUND, "feature_disabled", "signing in with Microsoft is not configured on this "
			       "server");
	rc = oauth_signin_finish(db, cfg->encryption_keys, cfg->rememberme_keys, in->state, &st, err);
	if (rc == PB_EINVAL)
		rc = pb_fail_as(f, rc, "invalid_state");
	if (rc)
		goto out;
	/* only the browser that started the sign-in holds the secret whose hash is the nonce */
	if (!in->browser_secret || (rc = browser_nonce(in->browser_secret, nonce, err)) ||
	    !pb_ct_equal(nonce, strlen(nonce), st.id_nonce, strlen(st.id_nonce))) {
		rc = pb_fail(f, PB_EINVAL, "invalid_state", "this sign-in was started in another browser (or the browser "
			     "did not keep its cookie): sign in again from this browser");
		goto out;
	}
	if (in->error) {
		rc = redirect_failed(in, f);
		goto out;
	}
	if (!in->code || !*in->code || strlen(in->code) > PB_OAUTH_CODE_MAX) {
		rc = pb_fail(f, PB_EINVAL, "invalid_callback", "the callback carries no authorization code");
		goto out;
	}
	pb_http_opts ho = { .ca_bundle = cfg->ca_bundle };
	if ((rc = pb_http_new(&ho, &http, err)))
		goto out;
	msapi_init(&api, http, cfg);
	entra_app ea = { cfg->sso_tenant_id, cfg->sso_client_id, cfg->sso_client_secret };
	if ((rc = entra_exchange_code(&api, &ea, in->code, st.redirect_uri, st.code_verifier,
				      scopes_of(st.with_powerbi), &tok, err))) {
		rc = exchange_failed(&api, rc, f);
		goto out;
	}
	if (!tok.id_token) {
		rc = pb_fail(f, PB_EINVAL, "signin_failed", "Entra answered the sign-in without an ID token: sign in again");
		goto out;
	}
	if ((rc = check_id_token(db, cfg, &api, tok.id_token, st.id_nonce, &claims, f)) ||
	    (rc = find_user(db, cfg, &claims, &out->who, &out->signed_up, f)))
		goto out;
	auth_user_agent_summary(in->user_agent, ua);
	if ((rc = auth_session_cookie_new(cfg->rememberme_keys, out->cookie, hash, err)) ||
	    (rc = sessions_create(db, out->who.user_id, hash, ua, cfg->session_lifetime_s, cfg->session_idle_s,
				  out->who.session_id, err)))
		goto out;
	out->who.known = true;
	out->who.via = PB_VIA_SESSION;
	if (st.with_powerbi)
		keep_powerbi(db, cfg, &tok, out);
	if (!(out->return_to = xstrdup(st.return_to)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	msapi_release(&api);
	pb_http_free(http);
	entra_token_release(&tok);
	entra_id_claims_release(&claims);
	oauth_state_release(&st);
	if (rc) {
		sso_finish_release(out);
		if (f->rc != rc)
			pb_fail_as(f, rc, NULL);
	}
	return rc;
}
