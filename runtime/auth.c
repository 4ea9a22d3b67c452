#include "runtime/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

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

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(hexdigits, s[i]))
			return false;
	return true;
}

void auth_token_hash(const char *token, char hash_hex[PB_TOKEN_HASH_HEX])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)token, strlen(token), md);
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

int auth_identify(pb_db *db, const struct pb_auth_ops *ops, const char *remote_user,
		  const char *authorization, pb_identity *who, char *err)
{
	int rc;
	memset(who, 0, sizeof *who);
	if (remote_user && *remote_user) {
		rc = ops->user_by_name(db, remote_user, who, err);
		if (rc == PB_ENOTFOUND)
			rc = pb_err(err, PB_ENOTFOUND, "user '%.*s' is not known to pbiport",
				    PB_NAME_FIELD_MAX, remote_user);
	} else if (authorization && *authorization) {
		/* scheme is case-insensitive (RFC 9110); anything but Bearer is not ours */
		if (strncasecmp(authorization, "Bearer ", 7))
			return pb_err(err, PB_ENOTFOUND, "Authorization must be 'Bearer <token>'");
		const char *t = authorization + 7;
		while (*t == ' ')
			t++;
		rc = identify_token(db, ops, t, who, err);
	} else {
		return pb_err(err, PB_ENOTFOUND, "authentication required");
	}
	if (!rc)
		who->known = true;
	else
		memset(who, 0, sizeof *who);
	return rc;
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
