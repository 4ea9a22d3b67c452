/* Sessions on behalf of a user (delegated, refreshed through the connection store's token
 * service) or of an app (client credentials). See core/flow/pbi_session.h. */
#include "core/flow/pbi_session.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/ms_failure.h"
#include "core/store/connections.h"
#include "msapi/entra.h"
#include "runtime/crypto.h"
#include "runtime/util.h"

typedef struct session_priv {
	bool user;                  /* user session: refresh through the connection row */
	bool kept_http;             /* s->http is the thread's kept client (not freed on release) */
	pb_db *db;                  /* user: borrowed */
	const pb_keyring *kr;       /* user: borrowed from the config */
	char conn_id[PB_ID_BUF];
	long long gen;              /* generation of the token in api */
	pbi_app app;                /* owned: tenant, client id, secret (wiped) */
	char *credentials;          /* app: owned; what messages call the app's credentials */
	msapi entra;                /* owned: Entra calls made from inside a refresh */
	pb_failure refresh_fail;    /* the last refresh's failure; rc PB_OK when it worked */
} session_priv;

int pbi_fail_reword(pb_failure *f, const char *fmt, ...)
{
	char msg[PB_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	memcpy(f->message, msg, sizeof msg);
	return f->rc;
}

int pbi_org_app(pb_db *db, const pb_config *cfg, const char *org_id, pbi_app *out, pb_failure *f)
{
	int rc = pbi_settings_app(db, cfg, org_id, out, f->message);
	if (rc == PB_ENOTFOUND)
		return pb_fail_as(f, PB_ECONFLICT, "not_configured");
	return rc ? pb_fail_as(f, rc, NULL) : PB_OK;
}

int pbi_entra_user_fail(const msapi *entra, int rc, pb_failure *f)
{
	ms_fail(entra, rc, f);
	if (entra->last.failure == MSAPI_BAD_CREDENTIALS)
		return pbi_fail_reword(f, PBI_ORG_SETTINGS ": %s", f->message);
	if (entra->last.failure == MSAPI_REAUTHENTICATE)
		return pbi_fail_reword(f, PBI_USER_CONNECTION ": %s (reconnect Power BI)", f->message);
	return f->rc;
}

/* f from a failed client-credentials call of an app session: the label says whose. */
static int app_fail(const session_priv *p, int rc, pb_failure *f)
{
	ms_fail(&p->entra, rc, f);
	return pbi_fail_reword(f, "%s: %s", p->credentials, f->message);
}

/* The token service's way to redeem a refresh token (core/store/connections.h). */
static int redeem(void *ctx, const char *refresh_token, entra_token *out, pb_failure *f)
{
	session_priv *p = ctx;
	entra_app ea = { p->app.tenant_id, p->app.client_id, p->app.client_secret };
	int rc = entra_refresh(&p->entra, &ea, refresh_token, CONN_SCOPES, out, f->message);
	return rc ? pbi_entra_user_fail(&p->entra, rc, f) : PB_OK;
}

/* A fresh app token (client credentials) into *access_token (new secret). */
static int app_token(session_priv *p, char **access_token, pb_failure *f)
{
	entra_token tok = { 0 };
	entra_app ea = { p->app.tenant_id, p->app.client_id, p->app.client_secret };
	int rc = entra_client_credentials(&p->entra, &ea, ENTRA_SCOPE_POWERBI_DEFAULT, &tok, f->message);
	if (rc) {
		rc = app_fail(p, rc, f);
	} else {
		*access_token = tok.access_token;
		tok.access_token = NULL;
	}
	entra_token_release(&tok);
	return rc;
}

/* The msapi refresh callback: a new token for whatever identity the session holds. */
static int session_refresh(void *ctx, char **access_token, char *err)
{
	session_priv *p = ctx;
	pb_failure *f = &p->refresh_fail;
	long long gen = 0;
	int rc;
	*access_token = NULL;
	if (p->user)
		rc = conn_token(p->db, p->kr, p->conn_id, p->gen, redeem, p, access_token, &gen, f);
	else
		rc = app_token(p, access_token, f);
	if (!rc) {
		if (p->user)
			p->gen = gen;
		pb_failure_clear(f);
		return PB_OK;
	}
	return pb_err(err, rc, "%s", f->message);
}

/* One HTTP client per thread, kept across sessions: a worker opens a session per job, and a
 * client per session meant a new connection and TLS handshake to every host for every job. The
 * client holds no identity (each request carries its session's Authorization header, msapi.c),
 * so sessions of different users and tenants share its connections, never a token. It is kept
 * for the CA bundle it was made with; a session asking for another while it is in use gets a
 * client of its own. Freed when the thread ends (the process's exit for the main thread). */
static pthread_key_t kept_key;
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;
static int kept_key_rc;

typedef struct kept_http {
	pb_http *http;
	char *ca_bundle;            /* NULL: none */
	unsigned users;             /* sessions open on it now */
} kept_http;

static void kept_free(void *v)
{
	kept_http *k = v;
	if (!k)
		return;
	pb_http_free(k->http);
	free(k->ca_bundle);
	free(k);
}

static void kept_key_make(void)
{
	kept_key_rc = pthread_key_create(&kept_key, kept_free);
}

static bool same_ca(const char *a, const char *b)
{
	return (!a || !*a) ? (!b || !*b) : (b && !strcmp(a, b));
}

/* s->http: the thread's kept client when it can be (p->kept_http), else a new one. */
static int session_http(pbi_session *s, session_priv *p, const pb_config *cfg, char *err)
{
	const char *ca = cfg ? cfg->ca_bundle : NULL;
	pb_http_opts ho = { .ca_bundle = ca };
	pthread_once(&kept_once, kept_key_make);
	kept_http *k = kept_key_rc ? NULL : pthread_getspecific(kept_key);
	if (k && !same_ca(k->ca_bundle, ca) && !k->users) {
		(void)pthread_setspecific(kept_key, NULL);
		kept_free(k);
		k = NULL;
	}
	if (!k && !kept_key_rc && (k = calloc(1, sizeof *k))) {
		int rc = PB_OK;
		if ((ca && *ca && !(k->ca_bundle = xstrdup(ca))) ||
		    (rc = pb_http_new(&ho, &k->http, err)) || pthread_setspecific(kept_key, k)) {
			kept_free(k);
			if (rc)
				return rc;
			k = NULL;
		}
	}
	if (k && same_ca(k->ca_bundle, ca)) {
		k->users++;
		p->kept_http = true;
		s->http = k->http;
		return PB_OK;
	}
	return pb_http_new(&ho, &s->http, err);
}

/* Gives s->http back: the kept client stays (no job's stop flag left on it), another is freed. */
static void session_http_release(pbi_session *s, session_priv *p)
{
	if (!p || !p->kept_http) {
		pb_http_free(s->http);
		return;
	}
	kept_http *k = pthread_getspecific(kept_key);
	if (k && k->http == s->http && k->users && !--k->users)
		pb_http_set_stop(k->http, NULL);
}

/* The parts both kinds share: HTTP client, msapi clients, private data. */
static int session_open(pbi_session *s, const pb_config *cfg, pb_failure *f)
{
	memset(s, 0, sizeof *s);
	pb_failure_clear(f);
	session_priv *p = calloc(1, sizeof *p);
	if (!p)
		return pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	s->priv = p;
	int rc = session_http(s, p, cfg, f->message);
	if (rc)
		return pb_fail_as(f, rc, NULL);
	msapi_init(&s->api, s->http, cfg);
	msapi_init(&p->entra, s->http, cfg);
	msapi_set_refresh(&s->api, session_refresh, p);
	return PB_OK;
}

int pbi_session_open_user(pbi_session *s, pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			  pb_failure *f)
{
	pbi_conn conn = { 0 };
	char *token = NULL;
	int rc = session_open(s, cfg, f);
	if (rc)
		goto out;
	session_priv *p = s->priv;
	p->user = true;
	p->db = db;
	p->kr = cfg->encryption_keys;
	if ((rc = pbi_org_app(db, cfg, org_id, &p->app, f)))
		goto out;
	if ((rc = conn_find(db, org_id, user_id, p->app.tenant_id, &conn, f->message))) {
		rc = rc == PB_ENOTFOUND ? pb_fail_as(f, PB_ECONFLICT, "not_connected") : pb_fail_as(f, rc, NULL);
		goto out;
	}
	if (strcmp(conn.client_id, p->app.client_id)) {
		/* the refresh token belongs to the app the user consented to: recorded, so the
		 * connection list says the same */
		char ignore[PB_ERR_MAX];
		(void)conn_mark_needs_reconnect(db, conn.id, CONN_APP_CHANGED, ignore);
		rc = pb_fail(f, PB_ECONFLICT, "needs_reconnect", CONN_APP_CHANGED);
		goto out;
	}
	memcpy(p->conn_id, conn.id, sizeof p->conn_id);
	if ((rc = conn_token_found(db, p->kr, &conn, redeem, p, &token, &p->gen, f)))
		goto out;
	if ((rc = msapi_set_token(&s->api, token, f->message)))
		pb_fail_as(f, rc, NULL);
out:
	pb_secret_free(token, token ? strlen(token) : 0);
	conn_release(&conn);
	if (rc)
		pbi_session_release(s);
	return rc;
}

int pbi_session_open_app(pbi_session *s, const pb_config *cfg, const char *credentials, const char *tenant_id,
			 const char *client_id, const char *client_secret, pb_failure *f)
{
	char *token = NULL;
	int rc = session_open(s, cfg, f);
	if (rc)
		goto out;
	session_priv *p = s->priv;
	if (!(p->credentials = xstrdup(credentials ? credentials : "the app credentials"))) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	if (!tenant_id || !*tenant_id || !client_id || !*client_id || !client_secret || !*client_secret) {
		rc = pb_fail(f, PB_EINVAL, NULL, "%s: a tenant id, a client id and a client secret are all required",
			     p->credentials);
		goto out;
	}
	p->app.tenant_id = xstrdup(tenant_id);
	p->app.client_id = xstrdup(client_id);
	p->app.client_secret = xstrdup(client_secret);
	if (!p->app.tenant_id || !p->app.client_id || !p->app.client_secret) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	if ((rc = app_token(p, &token, f)))
		goto out;
	if ((rc = msapi_set_token(&s->api, token, f->message)))
		pb_fail_as(f, rc, NULL);
out:
	pb_secret_free(token, token ? strlen(token) : 0);
	if (rc)
		pbi_session_release(s);
	return rc;
}

int pbi_session_fail_as(const pbi_session *s, int rc, msapi_failure kind, const char *code, pb_failure *f)
{
	const session_priv *p = s->priv;
	if (p && p->refresh_fail.rc) {
		/* the call could not renew its token: that is the failure, in the refresh's words */
		*f = p->refresh_fail;
		return f->rc;
	}
	return ms_fail_as(&s->api, rc, s->api.last.failure == kind ? code : NULL, f);
}

int pbi_session_fail(const pbi_session *s, int rc, pb_failure *f)
{
	return pbi_session_fail_as(s, rc, MSAPI_OK, NULL, f);
}

void pbi_session_release(pbi_session *s)
{
	session_priv *p = s->priv;
	/* both msapi values start zeroed, so releasing one never initialized is fine */
	msapi_release(&s->api);
	session_http_release(s, p);
	if (p) {
		msapi_release(&p->entra);
		pbi_app_release(&p->app);
		free(p->credentials);
		free(p);
	}
	memset(s, 0, sizeof *s);
}
