#include "core/store/powerbi_settings.h"

#include <stdlib.h>
#include <string.h>

#include "core/store/connections.h"
#include "runtime/crypto.h"
#include "runtime/util.h"

#define SETTINGS_CTX_MAX (sizeof "powerbi_settings:" + PB_ID_BUF)

/* The sealing context binds a secret to its organization: a sealed value copied to
 * another org's row does not open. */
static int secret_context(const char *org_id, char ctx[SETTINGS_CTX_MAX], char *err)
{
	if (xsnprintf(ctx, SETTINGS_CTX_MAX, "powerbi_settings:%s", org_id))
		return pb_err(err, PB_EINVAL, "organization id too long");
	return PB_OK;
}

bool pbi_id_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > PB_PBI_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

static bool sso_configured(const pb_config *cfg)
{
	return cfg->sso_tenant_id && cfg->sso_client_id && cfg->sso_client_secret;
}

void pbi_settings_release(pbi_settings *s)
{
	free(s->tenant_id);
	free(s->client_id);
	free(s->application_name);
	memset(s, 0, sizeof *s);
}

/* One row: mode, tenant, client, sealed secret, app name, updated_at. *sealed is new. */
static int read_row(pb_db *db, const char *org_id, pbi_settings *out, char **sealed, char *err)
{
	db_stmt *st = NULL;
	bool ok = true;
	memset(out, 0, sizeof *out);
	*sealed = NULL;
	int rc = db_first_row(db,
			      "SELECT mode, tenant_id, client_id, client_secret_sealed, application_name, updated_at "
			      "FROM powerbi_settings WHERE org_id = ?", &org_id, 1,
			      "Power BI is not configured for this organization: an owner sets it up in the Power BI "
			      "settings", &st, err);
	if (rc)
		goto out;
	if (xsnprintf(out->mode, sizeof out->mode, "%s", db_col_text(st, 0)) ||
	    xsnprintf(out->updated_at, sizeof out->updated_at, "%s", db_col_text(st, 5))) {
		rc = pb_err(err, PB_EIO, "malformed Power BI settings row");
		goto out;
	}
	out->tenant_id = db_col_dup(st, 1, &ok);
	if (ok)
		out->client_id = db_col_dup(st, 2, &ok);
	if (ok)
		*sealed = db_col_dup(st, 3, &ok);
	if (ok)
		out->application_name = db_col_dup(st, 4, &ok);
	if (!ok)
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	if (rc) {
		free(*sealed);
		*sealed = NULL;
		pbi_settings_release(out);
	}
	return rc;
}

int pbi_settings_get(pb_db *db, const pb_config *cfg, const char *org_id, pbi_settings *out, char *err)
{
	char *sealed = NULL;
	int rc = read_row(db, org_id, out, &sealed, err);
	if (rc)
		return rc;
	if (!strcmp(out->mode, "sso")) {
		/* sso: show the deployment's app ids so owners see what will be used */
		free(out->tenant_id);
		free(out->client_id);
		out->tenant_id = xstrdup(cfg->sso_tenant_id);
		out->client_id = xstrdup(cfg->sso_client_id);
		out->has_client_secret = cfg->sso_client_secret != NULL;
		if ((cfg->sso_tenant_id && !out->tenant_id) || (cfg->sso_client_id && !out->client_id))
			rc = pb_err(err, PB_ENOMEM, "out of memory");
	} else {
		out->has_client_secret = sealed && *sealed;
	}
	free(sealed);
	if (rc)
		pbi_settings_release(out);
	return rc;
}

json_t *pbi_settings_json(const pbi_settings *s, const char *redirect_uri)
{
	return json_pack("{s:s, s:s?, s:s?, s:b, s:s?, s:s?, s:s}", "mode", s->mode, "tenant_id", s->tenant_id,
			 "client_id", s->client_id, "has_client_secret", s->has_client_secret, "application_name",
			 s->application_name, "redirect_uri", redirect_uri, "updated_at", s->updated_at);
}

static int check_input(const pb_config *cfg, const pbi_settings_input *in, char *err)
{
	if (!in->mode)
		return pb_err(err, PB_EINVAL, "mode is required: \"sso\" or \"custom\"");
	if (!strcmp(in->mode, "sso")) {
		if (!sso_configured(cfg))
			return pb_err(err, PB_EINVAL,
				      "mode \"sso\" needs the deployment's sign-in app: PBIPORT_SSO_TENANT_ID, "
				      "PBIPORT_SSO_CLIENT_ID and PBIPORT_SSO_CLIENT_SECRET are not all set on this "
				      "server; use mode \"custom\" or ask the operator to set them");
		if (in->tenant_id || in->client_id || in->client_secret)
			return pb_err(err, PB_EINVAL, "mode \"sso\" takes no tenant_id, client_id or client_secret");
		return PB_OK;
	}
	if (strcmp(in->mode, "custom"))
		return pb_err(err, PB_EINVAL, "mode must be \"sso\" or \"custom\"");
	if (!in->tenant_id || !pbi_id_valid(in->tenant_id))
		return pb_err(err, PB_EINVAL, "tenant_id is required: the Entra tenant id (GUID) or domain");
	if (!in->client_id || !str_is_guid(in->client_id))
		return pb_err(err, PB_EINVAL, "client_id is required: the application (client) id of the Entra app, a GUID");
	if (in->client_secret) {
		size_t n = strlen(in->client_secret);
		if (n == 0 || n > PB_PBI_SECRET_MAX)
			return pb_err(err, PB_EINVAL, "client_secret must be 1..%d characters", PB_PBI_SECRET_MAX);
	}
	if (!cfg->encryption_keys)
		return pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS is not set: secrets cannot be stored");
	return PB_OK;
}

/* The app a save would store, secret opened (custom without a secret: the stored one; *kept
 * then gets the sealed text it was opened from, new, to check it is still the stored one when
 * saving). Release with pbi_app_release. */
static int candidate_app(pb_db *db, const pb_config *cfg, const char *org_id, const pbi_settings_input *in,
			 const char *ctx, pbi_app *out, char **kept, char *err)
{
	pbi_settings old = { 0 };
	size_t len = 0;
	int rc = PB_OK;
	memset(out, 0, sizeof *out);
	*kept = NULL;
	bool custom = !strcmp(in->mode, "custom");
	out->tenant_id = xstrdup(custom ? in->tenant_id : cfg->sso_tenant_id);
	out->client_id = xstrdup(custom ? in->client_id : cfg->sso_client_id);
	if (custom && !in->client_secret) {
		rc = read_row(db, org_id, &old, kept, err);
		if (rc == PB_ENOTFOUND || (!rc && (!*kept || !**kept || strcmp(old.mode, "custom"))))
			rc = pb_err(err, PB_EINVAL, "client_secret is required the first time mode \"custom\" is saved");
		if (!rc)
			rc = pb_open(cfg->encryption_keys, *kept, ctx, &out->client_secret, &len, err);
	} else {
		out->client_secret = xstrdup(custom ? in->client_secret : cfg->sso_client_secret);
	}
	if (!rc && (!out->tenant_id || !out->client_id || !out->client_secret))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	pbi_settings_release(&old);
	if (rc) {
		pbi_app_release(out);
		free(*kept);
		*kept = NULL;
	}
	return rc;
}

int pbi_settings_candidate(pb_db *db, const pb_config *cfg, const char *org_id, const pbi_settings_input *in,
			   pbi_app *out, char **kept, char *err)
{
	char ctx[SETTINGS_CTX_MAX];
	int rc = check_input(cfg, in, err);
	memset(out, 0, sizeof *out);
	*kept = NULL;
	if (rc || (rc = secret_context(org_id, ctx, err)))
		return rc;
	return candidate_app(db, cfg, org_id, in, ctx, out, kept, err);
}

int pbi_settings_put(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
		     const pbi_settings_input *in, const pbi_settings_verified *verified, char *err)
{
	pbi_settings old = { 0 };
	char *old_sealed = NULL, *sealed = NULL, ctx[SETTINGS_CTX_MAX], now[PB_TIME_BUF];
	const char *verified_sealed = verified ? verified->kept_sealed : NULL;
	const char *name = verified ? verified->app_name : NULL;
	int rc = check_input(cfg, in, err);
	if (rc || (rc = secret_context(org_id, ctx, err)) || (rc = db_begin(db, err)))
		return rc;
	bool custom = !strcmp(in->mode, "custom");
	/* the stored row is read, then written from it (a secret not given is kept): two owners
	 * saving at once on two hosts take turns, under the organization's settings lock (named as
	 * the sealing context), so neither writes from a row the other has replaced */
	if (!(rc = db_lock_name(db, ctx, err)))
		rc = read_row(db, org_id, &old, &old_sealed, err);
	if (rc && rc != PB_ENOTFOUND)
		goto out;
	bool had = rc == PB_OK;
	rc = PB_OK;
	if (custom && in->client_secret) {
		if ((rc = pb_seal(cfg->encryption_keys, in->client_secret, strlen(in->client_secret), ctx, &sealed,
				  err)))
			goto out;
	} else if (custom) {
		/* no secret given: keep the stored one, but only for the same app */
		if (!had || !old_sealed || !*old_sealed || strcmp(old.mode, "custom")) {
			rc = pb_err(err, PB_EINVAL, "client_secret is required the first time mode \"custom\" is saved");
			goto out;
		}
		if (verified_sealed && strcmp(verified_sealed, old_sealed)) {
			rc = pb_err(err, PB_ECONFLICT, "the stored client secret changed while these settings were being "
				    "verified: save them again");
			goto out;
		}
		sealed = old_sealed;
		old_sealed = NULL;
	}
	/* the resolved name belongs to one app: keep it only while the app stays the same */
	bool same_app = had && !strcmp(old.mode, in->mode) &&
			(!custom || (old.tenant_id && old.client_id && !strcmp(old.tenant_id, in->tenant_id) &&
				     !strcmp(old.client_id, in->client_id)));
	const char *app_name = verified ? name : same_app ? old.application_name : NULL;
	pb_now(now);
	const char *row[] = { org_id, in->mode, custom ? in->tenant_id : NULL, custom ? in->client_id : NULL,
			      sealed, app_name, user_id, now };
	if ((rc = db_exec_texts(db,
				"INSERT INTO powerbi_settings (org_id, mode, tenant_id, client_id, client_secret_sealed, "
				"application_name, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
				"ON CONFLICT (org_id) DO UPDATE SET mode = excluded.mode, tenant_id = excluded.tenant_id, "
				"client_id = excluded.client_id, client_secret_sealed = excluded.client_secret_sealed, "
				"application_name = excluded.application_name, updated_by = excluded.updated_by, "
				"updated_at = excluded.updated_at",
				row, 8, err)))
		goto out;
	/* refresh tokens work only with the app they were granted to */
	rc = conn_mark_app_changed(db, org_id, custom ? in->tenant_id : cfg->sso_tenant_id,
				   custom ? in->client_id : cfg->sso_client_id, err);
out:
	rc = db_end(db, rc, err);
	free(sealed);
	free(old_sealed);
	pbi_settings_release(&old);
	return rc;
}

int pbi_settings_set_app_name(pb_db *db, const char *org_id, const char *name, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db, "UPDATE powerbi_settings SET application_name = ? WHERE org_id = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, name, err)) && !(rc = db_bind_text(st, 2, org_id, err)))
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

void pbi_app_release(pbi_app *a)
{
	free(a->tenant_id);
	free(a->client_id);
	pb_secret_free(a->client_secret, a->client_secret ? strlen(a->client_secret) : 0);
	memset(a, 0, sizeof *a);
}

int pbi_settings_app(pb_db *db, const pb_config *cfg, const char *org_id, pbi_app *out, char *err)
{
	pbi_settings s = { 0 };
	char *sealed = NULL, ctx[SETTINGS_CTX_MAX];
	size_t len = 0;
	memset(out, 0, sizeof *out);
	int rc = read_row(db, org_id, &s, &sealed, err);
	if (rc)
		goto out;
	if (!strcmp(s.mode, "sso")) {
		if (!sso_configured(cfg)) {
			rc = pb_err(err, PB_ENOTFOUND, "Power BI is set to the deployment's sign-in app, but "
				    "PBIPORT_SSO_TENANT_ID / _CLIENT_ID / _CLIENT_SECRET are not set on this server");
			goto out;
		}
		out->tenant_id = xstrdup(cfg->sso_tenant_id);
		out->client_id = xstrdup(cfg->sso_client_id);
		out->client_secret = xstrdup(cfg->sso_client_secret);
		if (!out->tenant_id || !out->client_id || !out->client_secret)
			rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if (!s.tenant_id || !s.client_id || !sealed) {
		rc = pb_err(err, PB_ENOTFOUND, "the organization's Power BI settings are incomplete");
		goto out;
	}
	if (!cfg->encryption_keys) {
		rc = pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS is not set: the client secret cannot be opened");
		goto out;
	}
	if ((rc = secret_context(org_id, ctx, err)) ||
	    (rc = pb_open(cfg->encryption_keys, sealed, ctx, &out->client_secret, &len, err)))
		goto out;
	out->tenant_id = s.tenant_id;
	out->client_id = s.client_id;
	s.tenant_id = s.client_id = NULL;
out:
	free(sealed);
	pbi_settings_release(&s);
	if (rc)
		pbi_app_release(out);
	return rc;
}

int pbi_settings_rotate(pb_db *db, const pb_config *cfg, size_t *resealed, char *err)
{
	/* the context is secret_context's "powerbi_settings:<org_id>" */
	static const sealed_column secret = {
		"SELECT org_id, client_secret_sealed FROM powerbi_settings WHERE client_secret_sealed IS NOT NULL",
		"UPDATE powerbi_settings SET client_secret_sealed = ? WHERE org_id = ?", "powerbi_settings", NULL
	};
	return reseal_columns(db, cfg->encryption_keys, &secret, 1, resealed, err);
}

int pbi_settings_sso_in_use(pb_db *db, bool *used, char *err)
{
	return db_has_row(db, "SELECT 1 FROM powerbi_settings WHERE mode = 'sso' LIMIT 1", NULL, 0, used, err);
}
