/* Sessions on behalf of a user (delegated, refreshed through core/store/connections) or of an
 * app (client credentials). See core/flow/pbi_session.h. */
#include "core/flow/pbi_session.h"

#include <stdlib.h>
#include <string.h>

#include "core/store/connections.h"
#include "core/store/powerbi_settings.h"
#include "msapi/entra.h"
#include "runtime/crypto.h"
#include "runtime/util.h"

typedef struct session_priv {
	bool user;                  /* user session: refresh through the connection row */
	pb_db *db;                  /* user: borrowed */
	const pb_keyring *kr;       /* user: borrowed from the config */
	char conn_id[PB_ID_BUF];
	long long gen;              /* generation of the token in api */
	pbi_app app;                /* owned: tenant, client id, secret (wiped) */
	msapi entra;                /* owned: Entra calls made from inside a refresh */
	char code[PBI_CODE_MAX];    /* code of the last failed refresh, "" when none */
} session_priv;

static void set_code(char code[PBI_CODE_MAX], const char *v)
{
	if (code)
		(void)xsnprintf(code, PBI_CODE_MAX, "%s", v);
}

/* The msapi refresh callback: a new token for whatever identity the session holds. */
static int session_refresh(void *ctx, char **access_token, char *err)
{
	session_priv *p = ctx;
	entra_app ea = { p->app.tenant_id, p->app.client_id, p->app.client_secret };
	*access_token = NULL;
	if (p->user) {
		long long gen = 0;
		int rc = conn_token(p->db, p->kr, &p->entra, &ea, p->conn_id, p->gen, access_token, &gen, p->code, err);
		if (!rc)
			p->gen = gen;
		return rc;
	}
	entra_token tok = { 0 };
	int rc = entra_client_credentials(&p->entra, &ea, ENTRA_SCOPE_POWERBI_DEFAULT, &tok, err);
	if (rc)
		set_code(p->code, conn_failure_code(&p->entra));
	else {
		*access_token = tok.access_token;
		tok.access_token = NULL;
	}
	entra_token_release(&tok);
	return rc;
}

/* The parts both kinds share: HTTP client, msapi clients, private data. */
static int session_open(pbi_session *s, const pb_config *cfg, char code[PBI_CODE_MAX], char *err)
{
	memset(s, 0, sizeof *s);
	session_priv *p = calloc(1, sizeof *p);
	if (!p) {
		set_code(code, "unavailable");
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	s->priv = p;
	pb_http_opts ho = { .ca_bundle = cfg ? cfg->ca_bundle : NULL };
	int rc = pb_http_new(&ho, &s->http, err);
	if (rc) {
		set_code(code, "unavailable");
		return rc;
	}
	msapi_init(&s->api, s->http, cfg);
	msapi_init(&p->entra, s->http, cfg);
	msapi_set_refresh(&s->api, session_refresh, p);
	return rc;
}

int pbi_session_user(pbi_session *s, pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
		     char code[PBI_CODE_MAX], char *err)
{
	pbi_conn conn = { 0 };
	char *token = NULL;
	set_code(code, "");
	int rc = session_open(s, cfg, code, err);
	if (rc)
		goto out;
	session_priv *p = s->priv;
	p->user = true;
	p->db = db;
	p->kr = cfg->encryption_keys;
	if ((rc = pbi_settings_app(db, cfg, org_id, &p->app, err))) {
		set_code(code, rc == PB_ENOTFOUND ? "not_configured" : "unavailable");
		goto out;
	}
	if ((rc = conn_find(db, org_id, user_id, p->app.tenant_id, &conn, err))) {
		set_code(code, rc == PB_ENOTFOUND ? "not_connected" : "unavailable");
		goto out;
	}
	if (strcmp(conn.client_id, p->app.client_id)) {
		/* the refresh token belongs to the app the user consented to: recorded, so the
		 * connection list says the same */
		char ignore[PB_ERR_MAX];
		set_code(code, "needs_reconnect");
		(void)conn_mark_needs_reconnect(db, conn.id, CONN_APP_CHANGED, ignore);
		rc = pb_err(err, PB_EINVAL, CONN_APP_CHANGED);
		goto out;
	}
	memcpy(p->conn_id, conn.id, sizeof p->conn_id);
	entra_app ea = { p->app.tenant_id, p->app.client_id, p->app.client_secret };
	if ((rc = conn_token(db, p->kr, &p->entra, &ea, p->conn_id, -1, &token, &p->gen, code, err)))
		goto out;
	if ((rc = msapi_set_token(&s->api, token, err)))
		set_code(code, "unavailable");
out:
	pb_secret_free(token, token ? strlen(token) : 0);
	conn_release(&conn);
	if (rc)
		pbi_session_release(s);
	return rc;
}

int pbi_session_app(pbi_session *s, const pb_config *cfg, const char *tenant_id, const char *client_id,
		    const char *client_secret, char code[PBI_CODE_MAX], char *err)
{
	entra_token tok = { 0 };
	set_code(code, "");
	int rc = session_open(s, cfg, code, err);
	if (rc)
		goto out;
	session_priv *p = s->priv;
	if (!tenant_id || !*tenant_id || !client_id || !*client_id || !client_secret || !*client_secret) {
		set_code(code, "not_configured");
		rc = pb_err(err, PB_EINVAL, "tenant id, client id and client secret are all required");
		goto out;
	}
	p->app.tenant_id = xstrdup(tenant_id);
	p->app.client_id = xstrdup(client_id);
	p->app.client_secret = xstrdup(client_secret);
	if (!p->app.tenant_id || !p->app.client_id || !p->app.client_secret) {
		set_code(code, "unavailable");
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	entra_app ea = { tenant_id, client_id, client_secret };
	if ((rc = entra_client_credentials(&p->entra, &ea, ENTRA_SCOPE_POWERBI_DEFAULT, &tok, err))) {
		set_code(code, conn_failure_code(&p->entra));
		goto out;
	}
	if ((rc = msapi_set_token(&s->api, tok.access_token, err)))
		set_code(code, "unavailable");
out:
	entra_token_release(&tok);
	if (rc)
		pbi_session_release(s);
	return rc;
}

const char *pbi_session_code(const pbi_session *s)
{
	const session_priv *p = s->priv;
	return p ? p->code : "";
}

void pbi_session_release(pbi_session *s)
{
	session_priv *p = s->priv;
	/* both msapi values start zeroed, so releasing one never initialized is fine */
	msapi_release(&s->api);
	if (p) {
		msapi_release(&p->entra);
		pbi_app_release(&p->app);
		free(p);
	}
	pb_http_free(s->http);
	memset(s, 0, sizeof *s);
}
