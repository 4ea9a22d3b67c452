#include "msapi/entra.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/crypto.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

#define FORM_MAX (64u * 1024)

void entra_token_release(entra_token *t)
{
	if (!t)
		return;
	char **secrets[] = { &t->access_token, &t->refresh_token, &t->id_token };
	for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
		if (*secrets[i])
			pb_secret_free(*secrets[i], strlen(*secrets[i]));
	free(t->scope);
	memset(t, 0, sizeof *t);
}

/* Appends "&name=value" (value percent-encoded); skips NULL values. */
static int form_add(sbuf *f, const char *name, const char *value)
{
	if (!value)
		return 0;
	if ((f->len && sbuf_addc(f, '&')) || sbuf_adds(f, name) || sbuf_addc(f, '='))
		return -1;
	return msapi_urlenc(f, value);
}

static int check_app(const entra_app *app, char *err)
{
	if (!app || !app->tenant || !*app->tenant || !app->client_id || !*app->client_id)
		return pb_err(err, PB_EINVAL, "the app credentials lack a tenant id or client id");
	return PB_OK;
}

/* Posts a token form and reads the token reply. */
static int token_call(msapi *c, const entra_app *app, sbuf *form, bool idempotent, const char *what,
		      entra_token *out, char *err)
{
	memset(out, 0, sizeof *out);
	int rc;
	char *path = NULL;
	msapi_reply r = { 0 };
	if ((rc = msapi_path(&path, err, "/%s/oauth2/v2.0/token", app->tenant)))
		goto out;
	msapi_call call = { .svc = MSAPI_ENTRA, .method = "POST", .url = path, .form = sbuf_str(form),
			    .idempotent = idempotent, .no_auth = true, .what = what };
	if ((rc = msapi_do(c, &call, &r, err)))
		goto out;
	const char *at = json_string_value(json_object_get(r.json, "access_token"));
	if (!at || !*at) {
		rc = pb_err(err, PB_EIO, "Entra answered %s without an access token", what);
		goto out;
	}
	const char *rt = json_string_value(json_object_get(r.json, "refresh_token"));
	const char *idt = json_string_value(json_object_get(r.json, "id_token"));
	const char *sc = json_string_value(json_object_get(r.json, "scope"));
	json_t *ei = json_object_get(r.json, "expires_in");
	/* Entra has sent expires_in both as a number and as a string */
	long exp = json_is_integer(ei) ? (long)json_integer_value(ei) :
		   json_is_string(ei) ? strtol(json_string_value(ei), NULL, 10) : 3600;
	out->access_token = xstrdup(at);
	out->refresh_token = xstrdup(rt);
	out->id_token = xstrdup(idt);
	out->scope = xstrdup(sc);
	out->expires_in = exp;
	out->expires_at = (long long)time(NULL) + exp;
	if (!out->access_token || (rt && !out->refresh_token) || (idt && !out->id_token) || (sc && !out->scope)) {
		entra_token_release(out);
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	}
out:
	free(path);
	if (r.http.body) /* the reply holds tokens */
		pb_wipe(r.http.body, r.http.body_len);
	msapi_wipe_json(r.json);
	msapi_reply_release(&r);
	return rc;
}

/* Posts the token form made of the n name/value pairs (a NULL value is left out) and reads
 * the reply. The form holds secrets: wiped afterwards. */
static int run_grant(msapi *c, const entra_app *app, const char *const fields[][2], size_t n, bool idempotent,
		     const char *what, entra_token *out, char *err)
{
	sbuf f;
	int rc = PB_OK;
	sbuf_init(&f, FORM_MAX);
	for (size_t i = 0; i < n && !rc; i++)
		if (form_add(&f, fields[i][0], fields[i][1]))
			rc = pb_err(err, PB_ELIMIT, "token request too large");
	if (!rc)
		rc = token_call(c, app, &f, idempotent, what, out, err);
	pb_wipe(f.buf, f.cap);
	sbuf_release(&f);
	return rc;
}

int entra_client_credentials(msapi *c, const entra_app *app, const char *scope, entra_token *out, char *err)
{
	memset(out, 0, sizeof *out);
	int rc = check_app(app, err);
	if (rc)
		return rc;
	if (!app->client_secret || !*app->client_secret)
		return pb_err(err, PB_EINVAL, "the app credentials lack a client secret");
	const char *const form[][2] = { { "grant_type", "client_credentials" }, { "client_id", app->client_id },
					{ "client_secret", app->client_secret },
					{ "scope", scope ? scope : ENTRA_SCOPE_POWERBI_DEFAULT } };
	/* client credentials create nothing: safe to repeat */
	return run_grant(c, app, form, sizeof form / sizeof *form, true, "issue an app token", out, err);
}

int entra_exchange_code(msapi *c, const entra_app *app, const char *code, const char *redirect_uri,
			const char *code_verifier, const char *scope, entra_token *out, char *err)
{
	memset(out, 0, sizeof *out);
	int rc = check_app(app, err);
	if (rc)
		return rc;
	if (!code || !*code || !redirect_uri || !code_verifier)
		return pb_err(err, PB_EINVAL, "the sign-in answer lacks a code, redirect URI or PKCE verifier");
	const char *const form[][2] = { { "grant_type", "authorization_code" }, { "client_id", app->client_id },
					{ "code", code }, { "redirect_uri", redirect_uri },
					{ "code_verifier", code_verifier }, { "scope", scope },
					{ "client_secret", app->client_secret } };
	return run_grant(c, app, form, sizeof form / sizeof *form, false, "exchange the sign-in code", out, err);
}

int entra_refresh(msapi *c, const entra_app *app, const char *refresh_token, const char *scope,
		  entra_token *out, char *err)
{
	memset(out, 0, sizeof *out);
	int rc = check_app(app, err);
	if (rc)
		return rc;
	if (!refresh_token || !*refresh_token)
		return pb_err(err, PB_EINVAL, "no refresh token to redeem: sign in again");
	const char *const form[][2] = { { "grant_type", "refresh_token" }, { "client_id", app->client_id },
					{ "refresh_token", refresh_token }, { "scope", scope },
					{ "client_secret", app->client_secret } };
	return run_grant(c, app, form, sizeof form / sizeof *form, false, "refresh the Power BI sign-in", out, err);
}

int entra_pkce_challenge(const char *verifier, char out[44], char *err)
{
	unsigned char md[32];
	char *b64 = NULL;
	size_t n = verifier ? strlen(verifier) : 0;
	if (n < 43 || n > 128)
		return pb_err(err, PB_EINVAL, "PKCE verifier must be 43..128 characters");
	pb_sha256(verifier, n, md);
	int rc = pb_b64url_encode(md, sizeof md, &b64, err);
	if (!rc && xsnprintf(out, 44, "%s", b64))
		rc = pb_err(err, PB_EINTERNAL, "PKCE challenge has an unexpected length");
	free(b64);
	return rc;
}

int entra_pkce_new(entra_pkce *p, char *err)
{
	char *v = NULL;
	int rc = pb_random_token(32, &v, err);
	if (rc)
		return rc;
	if (xsnprintf(p->verifier, sizeof p->verifier, "%s", v))
		rc = pb_err(err, PB_EINTERNAL, "PKCE verifier has an unexpected length");
	pb_secret_free(v, strlen(v));
	if (!rc)
		rc = entra_pkce_challenge(p->verifier, p->challenge, err);
	return rc;
}

int entra_authorize_url(const msapi *c, const entra_authorize *a, char **url, char *err)
{
	*url = NULL;
	if (!a->tenant || !a->client_id || !a->redirect_uri || !a->scope || !a->state || !a->code_challenge)
		return pb_err(err, PB_EINVAL, "authorize URL needs tenant, client id, redirect URI, scope, "
			      "state and PKCE challenge");
	int rc = PB_OK;
	char *path = NULL;
	sbuf q, u;
	sbuf_init(&q, PB_HTTP_URL_MAX);
	sbuf_init(&u, PB_HTTP_URL_MAX);
	if ((rc = msapi_path(&path, err, "/%s/oauth2/v2.0/authorize", a->tenant)))
		goto out;
	if (form_add(&q, "client_id", a->client_id) || form_add(&q, "response_type", "code") ||
	    form_add(&q, "redirect_uri", a->redirect_uri) || form_add(&q, "response_mode", "query") ||
	    form_add(&q, "scope", a->scope) || form_add(&q, "state", a->state) ||
	    form_add(&q, "code_challenge", a->code_challenge) || form_add(&q, "code_challenge_method", "S256") ||
	    form_add(&q, "prompt", a->prompt) || form_add(&q, "login_hint", a->login_hint) ||
	    form_add(&q, "nonce", a->nonce) ||
	    sbuf_adds(&u, msapi_base(c, MSAPI_ENTRA)) || sbuf_adds(&u, path) || sbuf_addc(&u, '?') ||
	    sbuf_add(&u, q.buf, q.len)) {
		rc = pb_err(err, PB_ELIMIT, "authorize URL longer than %d bytes", PB_HTTP_URL_MAX);
		goto out;
	}
	if (!(*url = sbuf_detach(&u, NULL)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	free(path);
	sbuf_release(&q);
	sbuf_release(&u);
	return rc;
}

/* Entra's words for a message: the first line, printable ASCII only, bounded. */
static void safe_text(char *dst, size_t size, const char *src)
{
	size_t j = 0;
	for (size_t i = 0; src && src[i] && src[i] != '\r' && src[i] != '\n' && j + 1 < size; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	dst[j] = '\0';
}

int entra_authorize_failed(msapi *c, const char *error, const char *description, char *err)
{
	static const char *const reauthenticate[] = { "interaction_required", "login_required", "consent_required",
						      "account_selection_required", NULL };
	msapi_last *l = &c->last;
	memset(l, 0, sizeof *l);
	l->svc = MSAPI_ENTRA;
	l->retry_after_s = -1;
	safe_text(l->code, sizeof l->code, error && *error ? error : "unknown_error");
	safe_text(l->message, sizeof l->message, description);
	int rc = PB_EINVAL;
	if (!strcmp(l->code, "access_denied")) {
		l->failure = MSAPI_FORBIDDEN;
	} else if (!strcmp(l->code, "temporarily_unavailable") || !strcmp(l->code, "server_error")) {
		l->failure = MSAPI_UNAVAILABLE;
		rc = PB_EIO;
	} else {
		l->failure = MSAPI_REJECTED;
		for (size_t i = 0; reauthenticate[i]; i++)
			if (!strcmp(l->code, reauthenticate[i]))
				l->failure = MSAPI_REAUTHENTICATE;
	}
	if (l->failure == MSAPI_FORBIDDEN)
		return pb_err(err, rc, "the consent screen was cancelled or declined (%s%s%s)", l->code,
			      l->message[0] ? ": " : "", l->message);
	return pb_err(err, rc, "Entra did not complete the sign-in (%s%s%s)", l->code, l->message[0] ? ": " : "",
		      l->message);
}
