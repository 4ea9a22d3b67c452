#include "runtime/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#include "runtime/crypto.h"
#include "runtime/util.h"

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[b[i] >> 4];
		out[2 * i + 1] = hexdigits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Lower-case hex only, as tokens are made (a range test: this runs on every request) */
static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

void auth_token_hash(const char *token, char hash_hex[PB_TOKEN_HASH_HEX])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	pb_sha256(token, strlen(token), md);
	to_hex(md, sizeof md, hash_hex);
}

bool auth_equal_ct(const char *a, const char *b)
{
	size_t n = strlen(a);
	if (strlen(b) != n)
		return false;
	return CRYPTO_memcmp(a, b, n) == 0;
}

int auth_token_new(char token[PB_TOKEN_BUF], char id[PB_ID_BUF],
		   char hash_hex[PB_TOKEN_HASH_HEX], char *err)
{
	unsigned char secret[32];
	char secret_hex[65];
	int rc = pb_new_id(id, err);
	if (rc)
		return rc;
	if (RAND_bytes(secret, sizeof secret) != 1)
		return pb_err(err, PB_EINTERNAL, "no randomness available");
	to_hex(secret, sizeof secret, secret_hex);
	OPENSSL_cleanse(secret, sizeof secret);
	rc = xsnprintf(token, PB_TOKEN_BUF, "pbi_%s_%s", id, secret_hex) ? PB_EINTERNAL : PB_OK;
	OPENSSL_cleanse(secret_hex, sizeof secret_hex);
	if (rc)
		return pb_err(err, rc, "token does not fit");
	auth_token_hash(token, hash_hex);
	return PB_OK;
}

int auth_token_id(const char *token, char id[PB_ID_BUF], char *err)
{
	if (strlen(token) != PB_TOKEN_BUF - 1 || strncmp(token, "pbi_", 4) || token[36] != '_' ||
	    !is_hex(token + 4, 32) || !is_hex(token + 37, 64))
		return pb_err(err, PB_EINVAL, "not a pbiport API token");
	memcpy(id, token + 4, 32);
	id[32] = '\0';
	return PB_OK;
}

/* The token of a Bearer Authorization header (the scheme is case-insensitive, RFC 9110), or NULL. */
static const char *bearer_token(const char *authorization)
{
	if (!authorization || strncasecmp(authorization, "Bearer ", 7))
		return NULL;
	const char *t = authorization + 7;
	while (*t == ' ')
		t++;
	return t;
}

bool auth_bearer_token_id(const char *authorization, char id[PB_ID_BUF])
{
	const char *t = bearer_token(authorization);
	return t && !auth_token_id(t, id, NULL);
}

static int identify_token(pb_db *db, const struct pb_auth_ops *ops, const char *token,
			  pb_identity *who, char *err)
{
	char id[PB_ID_BUF], want[PB_TOKEN_HASH_HEX], have[PB_TOKEN_HASH_HEX];
	int rc = auth_token_id(token, id, err);
	if (rc)
		return pb_err(err, PB_ENOTFOUND, "invalid API token");
	rc = ops->token_by_id(db, id, who, want, err);
	if (rc == PB_ENOTFOUND)
		return pb_err(err, PB_ENOTFOUND, "unknown or revoked API token");
	if (rc)
		return rc;
	auth_token_hash(token, have);
	if (!auth_equal_ct(have, want)) {
		memset(who, 0, sizeof *who);
		return pb_err(err, PB_ENOTFOUND, "unknown or revoked API token");
	}
	return PB_OK;
}

#define SESSION_LABEL "pbiport-session-v1\n"

/* The signed text of a session secret. */
static int session_message(const char *secret, char *out, size_t size)
{
	return xsnprintf(out, size, "%s%s", SESSION_LABEL, secret);
}

int auth_session_cookie_new(const pb_keyring *keys, char value[PB_SESSION_COOKIE_BUF],
			    char hash_hex[PB_TOKEN_HASH_HEX], char *err)
{
	char *secret = NULL, msg[sizeof SESSION_LABEL + PB_HMAC_B64URL_LEN + 1], sig[PB_HMAC_B64URL_LEN + 1];
	int rc;
	value[0] = '\0';
	if (!keys)
		return pb_err(err, PB_EINVAL, "APPLICATION_SECURITY_REMEMBERME_KEY is not set: sessions cannot be signed");
	if ((rc = pb_random_token(32, &secret, err)))
		return rc;
	if (session_message(secret, msg, sizeof msg) || strlen(secret) != PB_HMAC_B64URL_LEN)
		rc = pb_err(err, PB_EINTERNAL, "session secret has an unexpected length");
	else if (!(rc = pb_keyring_hmac_sign(keys, msg, strlen(msg), sig, err)) &&
		 xsnprintf(value, PB_SESSION_COOKIE_BUF, "%s.%s", secret, sig))
		rc = pb_err(err, PB_EINTERNAL, "session cookie has an unexpected length");
	if (!rc)
		auth_token_hash(secret, hash_hex);
	pb_wipe(msg, sizeof msg);
	pb_secret_free(secret, secret ? strlen(secret) : 0);
	if (rc)
		pb_wipe(value, PB_SESSION_COOKIE_BUF);
	return rc;
}

static bool is_b64url(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

int auth_session_cookie_check(const pb_keyring *keys, const char *value, char hash_hex[PB_TOKEN_HASH_HEX],
			      char *err)
{
	char secret[PB_HMAC_B64URL_LEN + 1], msg[sizeof SESSION_LABEL + PB_HMAC_B64URL_LEN + 1];
	bool ok;
	if (!keys || !value || strlen(value) != PB_SESSION_COOKIE_BUF - 1 || value[PB_HMAC_B64URL_LEN] != '.' ||
	    !is_b64url(value, PB_HMAC_B64URL_LEN) || !is_b64url(value + PB_HMAC_B64URL_LEN + 1, PB_HMAC_B64URL_LEN))
		return pb_err(err, PB_ENOTFOUND, "the session cookie is malformed: sign in again");
	memcpy(secret, value, PB_HMAC_B64URL_LEN);
	secret[PB_HMAC_B64URL_LEN] = '\0';
	ok = !session_message(secret, msg, sizeof msg) &&
	     pb_keyring_hmac_verify(keys, msg, strlen(msg), value + PB_HMAC_B64URL_LEN + 1);
	if (ok)
		auth_token_hash(secret, hash_hex);
	pb_wipe(secret, sizeof secret);
	pb_wipe(msg, sizeof msg);
	return ok ? PB_OK : pb_err(err, PB_ENOTFOUND, "the session cookie's signature is invalid: sign in again");
}

int auth_cookie_get(const char *header, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);
	const char *p = header;
	out[0] = '\0';
	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
			size_t vlen = len - nlen - 1;
			while (vlen && (p[nlen + 1 + vlen - 1] == ' ' || p[nlen + 1 + vlen - 1] == '\t'))
				vlen--;
			if (vlen == 0)
				return PB_ENOTFOUND;
			if (vlen >= size)
				return PB_ELIMIT;
			memcpy(out, p + nlen + 1, vlen);
			out[vlen] = '\0';
			return PB_OK;
		}
		p = end;
	}
	return PB_ENOTFOUND;
}

static bool cookie_safe(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || c == ';' || c == ',' || c == '"' || c == '\\')
			return false;
	}
	return true;
}

int auth_set_cookie(char out[PB_SET_COOKIE_MAX], const char *name, const char *value, const char *path,
		    long long max_age, bool secure, char *err)
{
	if (max_age < 0)
		value = "";
	if (!cookie_safe(name) || !cookie_safe(value) || !cookie_safe(path) || strchr(name, '='))
		return pb_err(err, PB_EINVAL, "cookie %.40s: not cookie-safe text", name);
	if (xsnprintf(out, PB_SET_COOKIE_MAX, "%s=%s; Path=%s; Max-Age=%lld; HttpOnly; SameSite=Lax%s", name, value,
		      path, max_age < 0 ? 0 : max_age, secure ? "; Secure" : ""))
		return pb_err(err, PB_ELIMIT, "cookie %.40s is too long", name);
	return PB_OK;
}

static int identify_session(pb_db *db, const struct pb_auth_ops *ops, const pb_auth_request *in, const char *value,
			    pb_identity *who, char *err)
{
	char hash[PB_TOKEN_HASH_HEX];
	int rc = auth_session_cookie_check(in->cookie_keys, value, hash, err);
	return rc ? rc : ops->session_by_hash(db, hash, in->idle_s, who, err);
}

int auth_identify_request(pb_db *db, const struct pb_auth_ops *ops, const pb_auth_request *in, pb_identity *who,
			  char *err)
{
	char cookie[PB_SESSION_COOKIE_BUF];
	pb_auth_via via = PB_VIA_NONE;
	const char *t = bearer_token(in->authorization);
	int rc, crc;
	memset(who, 0, sizeof *who);
	if (t) {
		via = PB_VIA_TOKEN;
		rc = identify_token(db, ops, t, who, err);
	} else if (in->remote_user && *in->remote_user) {
		via = PB_VIA_REMOTE_USER;
		rc = ops->user_by_name(db, in->remote_user, who, err);
		if (rc == PB_ENOTFOUND)
			rc = pb_err(err, PB_ENOTFOUND, "user '%.*s' is not known to pbiport",
				    PB_NAME_FIELD_MAX, in->remote_user);
	} else if (in->cookie_keys && ops->session_by_hash &&
		   (crc = auth_cookie_get(in->cookie, PB_SESSION_COOKIE, cookie, sizeof cookie)) != PB_ENOTFOUND) {
		via = PB_VIA_SESSION;
		rc = crc ? pb_err(err, PB_ENOTFOUND, "the session cookie is malformed: sign in again")
			 : identify_session(db, ops, in, cookie, who, err);
		pb_wipe(cookie, sizeof cookie);
	} else if (in->authorization && *in->authorization) {
		/* anything but Bearer is not ours */
		return pb_err(err, PB_ENOTFOUND, "Authorization must be 'Bearer <token>'");
	} else {
		return pb_err(err, PB_ENOTFOUND, "authentication required");
	}
	if (rc) {
		memset(who, 0, sizeof *who);
		who->via = via;
		return rc;
	}
	who->known = true;
	who->via = via;
	return PB_OK;
}

int auth_identify(pb_db *db, const struct pb_auth_ops *ops, const char *remote_user,
		  const char *authorization, pb_identity *who, char *err)
{
	pb_auth_request in = { .remote_user = remote_user, .authorization = authorization };
	return auth_identify_request(db, ops, &in, who, err);
}

/* The first of names found in ua (case-sensitive), or NULL. */
static const char *first_found(const char *ua, const char *const names[][2], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(ua, names[i][0]))
			return names[i][1];
	return NULL;
}

void auth_user_agent_summary(const char *ua, char out[PB_USER_AGENT_MAX + 1])
{
	/* order matters: Edge and Opera say Chrome too, Chrome says Safari too */
	static const char *const browsers[][2] = {
		{ "Edg/", "Edge" }, { "OPR/", "Opera" }, { "Firefox/", "Firefox" }, { "Chrome/", "Chrome" },
		{ "Chromium/", "Chromium" }, { "Safari/", "Safari" }, { "curl/", "curl" }, { "python", "Python" },
		{ "Python", "Python" }, { "Wget/", "Wget" }, { "PowerShell/", "PowerShell" },
	};
	static const char *const systems[][2] = {
		{ "Windows", "Windows" }, { "iPhone", "iOS" }, { "iPad", "iPadOS" }, { "Mac OS X", "macOS" },
		{ "Android", "Android" }, { "CrOS", "ChromeOS" }, { "Linux", "Linux" },
	};
	const char *b = ua ? first_found(ua, browsers, sizeof browsers / sizeof browsers[0]) : NULL;
	const char *os = ua ? first_found(ua, systems, sizeof systems / sizeof systems[0]) : NULL;
	if (b && os)
		xsnprintf(out, PB_USER_AGENT_MAX + 1, "%s on %s", b, os);
	else
		xsnprintf(out, PB_USER_AGENT_MAX + 1, "%s", b ? b : os ? os : "unknown");
}

const char *auth_role_name(pb_role role)
{
	switch (role) {
	case PB_ROLE_OWNER: return "owner";
	case PB_ROLE_MEMBER: return "member";
	default: return "none";
	}
}

int auth_role_parse(const char *s, pb_role *out)
{
	if (s && !strcmp(s, "owner"))
		*out = PB_ROLE_OWNER;
	else if (s && !strcmp(s, "member"))
		*out = PB_ROLE_MEMBER;
	else
		return PB_EINVAL;
	return PB_OK;
}
