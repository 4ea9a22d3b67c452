#include "runtime/page_csrf.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "runtime/request.h"
#include "runtime/util.h"

/* "pbiport-csrf-v1\n<identity>\n<path>\n<window>": newlines cannot appear in an id or a
 * decoded path segment that splits differently, so no two inputs sign the same text. */
static int csrf_message(const char *identity, const char *path, long long window, sbuf *msg)
{
	return sbuf_addf(msg, "pbiport-csrf-v1\n%s\n%s\n%lld", identity ? identity : "", path, window);
}

int page_csrf_token(const pb_keyring *kr, const char *identity, const char *path, time_t now,
		    char out[PB_CSRF_TOKEN_BUF], char *err)
{
	sbuf msg;
	int rc;
	out[0] = '\0';
	if (!kr)
		return pb_err(err, PB_EINVAL, "APPLICATION_SECURITY_REMEMBERME_KEY is not set: page forms need it");
	sbuf_init(&msg, PB_PATH_MAX_BYTES + PB_ID_BUF + 64);
	if (csrf_message(identity, path, (long long)now / PB_CSRF_WINDOW_S, &msg))
		rc = pb_err(err, PB_ELIMIT, "form path too long for a token");
	else
		rc = pb_keyring_hmac_sign(kr, sbuf_str(&msg), msg.len, out, err);
	sbuf_release(&msg);
	return rc;
}

bool page_csrf_valid(const pb_keyring *kr, const char *identity, const char *path, time_t now, const char *token)
{
	bool ok = false;
	sbuf msg;
	if (!kr || !token || strlen(token) != PB_HMAC_B64URL_LEN)
		return false;
	sbuf_init(&msg, PB_PATH_MAX_BYTES + PB_ID_BUF + 64);
	long long window = (long long)now / PB_CSRF_WINDOW_S;
	/* both windows are always checked: the time taken says nothing about which one matched */
	for (long long w = window; w >= window - 1; w--) {
		sbuf_reset(&msg);
		if (!csrf_message(identity, path, w, &msg))
			ok |= pb_keyring_hmac_verify(kr, sbuf_str(&msg), msg.len, token);
	}
	sbuf_release(&msg);
	return ok;
}

/* Appends the lower-case text [s, s+n) to out (size bytes, *len so far); -1 when it does not fit. */
static int add_lower(char *out, size_t size, size_t *len, const char *s, size_t n)
{
	if (*len + n >= size)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[(*len)++] = (char)tolower((unsigned char)s[i]);
	out[*len] = '\0';
	return 0;
}

int page_own_origin(const struct req *r, char out[PB_ORIGIN_MAX], char *err)
{
	size_t len = 0;
	out[0] = '\0';
	const char *pub = r->cfg ? r->cfg->public_url : NULL;
	if (pub && *pub) {
		/* scheme://host[:port] of the URL: up to the first '/' after "//" */
		const char *host = strstr(pub, "://");
		size_t n = host ? (size_t)(host + 3 - pub) + strcspn(host + 3, "/?#") : 0;
		if (!n || add_lower(out, PB_ORIGIN_MAX, &len, pub, n))
			return pb_err(err, PB_EINVAL, "PBIPORT_PUBLIC_URL has no usable origin");
		return PB_OK;
	}
	const char *host = req_env(r, "HTTP_HOST");
	const char *https = req_env(r, "HTTPS");
	const char *scheme = req_env(r, "REQUEST_SCHEME");
	bool secure = (https && (!strcasecmp(https, "on") || !strcmp(https, "1"))) ||
		      (scheme && !strcasecmp(scheme, "https"));
	if (!host || !*host || strpbrk(host, "/ \t\r\n@"))
		return pb_err(err, PB_EINVAL, "the request has no Host header to compare its Origin with");
	const char *prefix = secure ? "https://" : "http://";
	if (add_lower(out, PB_ORIGIN_MAX, &len, prefix, strlen(prefix)) ||
	    add_lower(out, PB_ORIGIN_MAX, &len, host, strlen(host)))
		return pb_err(err, PB_EINVAL, "the request's Host header is too long");
	/* the default port is not part of an Origin header */
	const char *port = secure ? ":443" : ":80";
	size_t pl = strlen(port);
	if (len > pl && !strcmp(out + len - pl, port))
		out[len - pl] = '\0';
	return PB_OK;
}

int page_origin_allowed(const char *origin, const char *fetch_site, const char *own_origin, char *err)
{
	if (fetch_site && *fetch_site && strcasecmp(fetch_site, "same-origin") && strcasecmp(fetch_site, "none"))
		return pb_err(err, PB_EFORBIDDEN, "a form of another site (Sec-Fetch-Site: %.20s) may not post here",
			      fetch_site);
	if (origin && *origin && (!own_origin || strcasecmp(origin, own_origin)))
		return pb_err(err, PB_EFORBIDDEN, "a form of another origin (%.100s) may not post here", origin);
	return PB_OK;
}

/* Check 1 on r; fills r->fail. */
static int from_this_site(struct req *r)
{
	char own[PB_ORIGIN_MAX] = "", why[PB_ERR_MAX];
	const char *origin = req_env(r, "HTTP_ORIGIN");
	int rc;
	if (origin && *origin && page_own_origin(r, own, why))
		own[0] = '\0';
	if ((rc = page_origin_allowed(origin, req_env(r, "HTTP_SEC_FETCH_SITE"), own[0] ? own : NULL, why)))
		return req_fail(r, rc, "csrf_failed", "%s", why);
	return PB_OK;
}

int page_cross_site_check(struct req *r)
{
	const char *user = req_env(r, "REMOTE_USER");
	return (user && *user) || r->who.via == PB_VIA_SESSION ? from_this_site(r) : PB_OK;
}

int page_csrf_check(struct req *r)
{
	char why[PB_ERR_MAX];
	int rc;
	if ((rc = from_this_site(r)))
		return rc;
	if (r->body && page_form_type(r->content_type) &&
	    (rc = page_form_parse(req_env(r, "CONTENT_TYPE"), r->body, r->body_len, &r->form, why)))
		return req_fail(r, rc, rc == PB_EINVAL ? "bad_request" : NULL, "%s", why);
	const pb_keyring *kr = r->cfg ? r->cfg->rememberme_keys : NULL;
	if (!kr)
		return req_fail(r, PB_EUNAVAIL, "unavailable", "page forms are turned off on this server: set "
				"APPLICATION_SECURITY_REMEMBERME_KEY (pbiport keygen) to sign their tokens");
	const page_field *f = page_form_get(&r->form, PB_CSRF_FIELD);
	const char *token = f ? f->value : req_env(r, "HTTP_X_CSRF_TOKEN");
	if (!token || !*token)
		return req_fail(r, PB_EFORBIDDEN, "csrf_failed", "the form carries no csrf_token: reload the page and "
				"send it again");
	if (!page_csrf_valid(kr, r->who.user_id, r->path, time(NULL), token))
		return req_fail(r, PB_EFORBIDDEN, "csrf_failed", "the form has expired or was not made for you on this "
				"page: reload the page and send it again");
	return PB_OK;
}
