#include "runtime/jwt.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/crypto.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

#define JOSE_MAX_DEPTH 8   /* a header or claims set is a flat object with small arrays */

void pb_jwt_release(pb_jwt *t)
{
	if (!t)
		return;
	json_decref(t->header);
	json_decref(t->claims);
	free_each(t->signing_input, t->sig);
	memset(t, 0, sizeof *t);
}

/* One base64url part decoded as a JSON object. */
static int decode_object(const char *part, size_t len, const char *what, json_t **out, char *err)
{
	unsigned char *raw = NULL;
	size_t n = 0;
	char why[PB_ERR_MAX];
	int rc = pb_b64url_decode(part, len, &raw, &n, why);
	if (rc) {
		rc = pb_err(err, PB_EINVAL, "the token's %s is not base64url", what);
	} else if (json_body_parse((const char *)raw, n, JOSE_MAX_DEPTH, out, why)) {
		rc = pb_err(err, PB_EINVAL, "the token's %s is not JSON: %s", what, why);
	} else if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		rc = pb_err(err, PB_EINVAL, "the token's %s is not a JSON object", what);
	}
	free(raw);
	return rc;
}

int pb_jwt_parse(const char *token, pb_jwt *out, char *err)
{
	char why[PB_ERR_MAX];
	memset(out, 0, sizeof *out);
	size_t len = token ? strlen(token) : 0;
	if (len == 0)
		return pb_err(err, PB_EINVAL, "no token");
	if (len > PB_JWT_MAX_BYTES)
		return pb_err(err, PB_EINVAL, "the token is longer than %u bytes", PB_JWT_MAX_BYTES);
	const char *d1 = strchr(token, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d1 || !d2 || strchr(d2 + 1, '.'))
		return pb_err(err, PB_EINVAL, "the token is not three dot-separated parts (a signed JWT)");
	int rc = decode_object(token, (size_t)(d1 - token), "header", &out->header, err);
	if (!rc)
		rc = decode_object(d1 + 1, (size_t)(d2 - d1 - 1), "claims", &out->claims, err);
	if (!rc && !(out->signing_input = xstrndup(token, (size_t)(d2 - token))))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	/* an empty signature ("alg":"none") decodes to nothing: refused by the verifier */
	if (!rc && pb_b64url_decode(d2 + 1, strlen(d2 + 1), &out->sig, &out->sig_len, why))
		rc = pb_err(err, PB_EINVAL, "the token's signature is not base64url");
	if (rc)
		pb_jwt_release(out);
	return rc;
}

const char *pb_jwt_kid(const pb_jwt *t)
{
	return json_string_value(json_object_get(t->header, "kid"));
}

const char *pb_jwt_claim_str(const pb_jwt *t, const char *name)
{
	return json_string_value(json_object_get(t->claims, name));
}

/* A base64url JWK member's bytes (*raw new; NULL when absent or not base64url). */
static unsigned char *jwk_bytes(const json_t *jwk, const char *name, size_t *n)
{
	const char *v = json_string_value(json_object_get(jwk, name));
	unsigned char *raw = NULL;
	char why[PB_ERR_MAX];
	*n = 0;
	if (!v || !*v || pb_b64url_decode(v, strlen(v), &raw, n, why))
		return NULL;
	return raw;
}

/* The RSA public key of a JWK (kty RSA, n, e). *out is new (EVP_PKEY_free). */
static int jwk_rsa_key(const json_t *jwk, EVP_PKEY **out, char *err)
{
	size_t nlen = 0, elen = 0;
	unsigned char *n = jwk_bytes(jwk, "n", &nlen), *e = jwk_bytes(jwk, "e", &elen);
	char why[PB_ERR_MAX];
	int rc = PB_OK;
	*out = NULL;
	if (!n || !e)
		rc = pb_err(err, PB_EINVAL, "the signing key has no usable modulus or exponent");
	else if (pb_rsa_public_key(n, nlen, e, elen, out, why))
		rc = pb_err(err, PB_EINVAL, "the signing key is not a valid RSA public key");
	else if (EVP_PKEY_get_bits(*out) < PB_RSA_MIN_BITS)
		rc = pb_err(err, PB_EINVAL, "the signing key has %d bits; at least %d are required", EVP_PKEY_get_bits(*out),
			    PB_RSA_MIN_BITS);
	if (rc) {
		EVP_PKEY_free(*out);
		*out = NULL;
	}
	free(n);
	free(e);
	return rc;
}

/* The key of the set named kid: PB_ENOTFOUND when none; PB_EINVAL when it is there but not an
 * RS256 signing key. Borrowed from jwks. */
static int find_key(const json_t *jwks, const char *kid, const json_t **out, char *err)
{
	const json_t *keys = json_object_get(jwks, "keys");
	size_t i;
	const json_t *k;
	*out = NULL;
	if (!json_is_array(keys))
		return pb_err(err, PB_EINVAL, "the identity provider's key set has no \"keys\" array");
	json_array_foreach(keys, i, k) {
		if (i >= PB_JWKS_MAX_KEYS)
			break;
		const char *id = json_string_value(json_object_get(k, "kid"));
		if (!id || strcmp(id, kid))
			continue;
		const char *kty = json_string_value(json_object_get(k, "kty"));
		const char *use = json_string_value(json_object_get(k, "use"));
		const char *alg = json_string_value(json_object_get(k, "alg"));
		if (!kty || strcmp(kty, "RSA") || (use && strcmp(use, "sig")) || (alg && strcmp(alg, "RS256")))
			return pb_err(err, PB_EINVAL, "the key '%.64s' is not an RS256 signing key", kid);
		*out = k;
		return PB_OK;
	}
	return pb_err(err, PB_ENOTFOUND, "the token was signed with the key '%.64s', which the identity provider does "
		      "not publish", kid);
}

int pb_jwt_verify_rs256(const pb_jwt *t, const json_t *jwks, char *err)
{
	const char *alg = json_string_value(json_object_get(t->header, "alg"));
	const char *typ = json_string_value(json_object_get(t->header, "typ"));
	const char *kid = pb_jwt_kid(t);
	const json_t *jwk = NULL;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	int rc;
	/* the algorithm is ours to decide, never the token's: only RS256 */
	if (!alg || strcmp(alg, "RS256"))
		return pb_err(err, PB_EINVAL, "the token is signed with '%.16s'; only RS256 is accepted", alg ? alg : "");
	if (typ && strcmp(typ, "JWT"))
		return pb_err(err, PB_EINVAL, "the token's type is '%.16s', not JWT", typ);
	if (json_object_get(t->header, "crit"))
		return pb_err(err, PB_EINVAL, "the token has critical header extensions, which are not understood");
	if (!kid || !*kid)
		return pb_err(err, PB_EINVAL, "the token names no signing key (kid)");
	if (!t->sig || !t->sig_len)
		return pb_err(err, PB_EINVAL, "the token has no signature");
	if ((rc = find_key(jwks, kid, &jwk, err)) || (rc = jwk_rsa_key(jwk, &key, err)))
		return rc;
	if (!(md = EVP_MD_CTX_new()) || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1) {
		rc = pb_err(err, PB_ENOMEM, "cannot set up the signature check");
		goto out;
	}
	if (EVP_DigestVerify(md, t->sig, t->sig_len, (const unsigned char *)t->signing_input,
			     strlen(t->signing_input)) != 1)
		rc = pb_err(err, PB_EINVAL, "the token's signature does not verify with the key '%.64s'", kid);
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	return rc;
}

/* A NumericDate claim: 1 present (in *v), 0 absent, -1 present but not a number. */
static int numeric_claim(const json_t *claims, const char *name, int64_t *v)
{
	const json_t *j = json_object_get(claims, name);
	if (!j)
		return 0;
	if (json_is_integer(j))
		*v = (int64_t)json_integer_value(j);
	else if (json_is_real(j) && json_real_value(j) > -1e15 && json_real_value(j) < 1e15)
		*v = (int64_t)json_real_value(j);
	else
		return -1;
	return 1;
}

static int check_audience(const json_t *claims, const char *audience, char *err)
{
	const json_t *aud = json_object_get(claims, "aud");
	const char *azp = json_string_value(json_object_get(claims, "azp"));
	bool found = false;
	size_t n = 1;
	if (json_is_string(aud)) {
		found = !strcmp(json_string_value(aud), audience);
	} else if (json_is_array(aud)) {
		size_t i;
		const json_t *a;
		n = json_array_size(aud);
		json_array_foreach(aud, i, a)
			found = found || (json_is_string(a) && !strcmp(json_string_value(a), audience));
	}
	if (!found)
		return pb_err(err, PB_EINVAL, "the token's audience is not this application");
	if ((n > 1 && !azp) || (azp && strcmp(azp, audience)))
		return pb_err(err, PB_EINVAL, "the token's audience is shared and its authorized party is not this "
			      "application");
	return PB_OK;
}

int pb_jwt_check_claims(const pb_jwt *t, const pb_jwt_expect *e, char *err)
{
	const char *iss = pb_jwt_claim_str(t, "iss");
	const char *nonce = pb_jwt_claim_str(t, "nonce");
	int64_t exp = 0, nbf = 0, iat = 0;
	int has;
	if (!iss || !e->issuer || strcmp(iss, e->issuer))
		return pb_err(err, PB_EINVAL, "the token's issuer '%.120s' is not the expected '%.120s'", iss ? iss : "",
			      e->issuer ? e->issuer : "");
	int rc = check_audience(t->claims, e->audience ? e->audience : "", err);
	if (rc)
		return rc;
	if ((has = numeric_claim(t->claims, "exp", &exp)) != 1)
		return pb_err(err, PB_EINVAL, "the token has %s expiry time (exp)", has ? "a malformed" : "no");
	if (exp + e->skew_s <= e->now_s)
		return pb_err(err, PB_EINVAL, "the token expired %lld s ago", (long long)(e->now_s - exp));
	if ((has = numeric_claim(t->claims, "nbf", &nbf)) < 0 || (has && nbf - e->skew_s > e->now_s))
		return pb_err(err, PB_EINVAL, "the token is not valid yet (nbf is %lld s ahead)", (long long)(nbf - e->now_s));
	if ((has = numeric_claim(t->claims, "iat", &iat)) < 0 || (has && iat - e->skew_s > e->now_s))
		return pb_err(err, PB_EINVAL, "the token is not valid yet (issued %lld s in the future)",
			      (long long)(iat - e->now_s));
	if (e->nonce && (!nonce || strlen(nonce) != strlen(e->nonce) || !pb_ct_equal(nonce, strlen(nonce), e->nonce,
										     strlen(e->nonce))))
		return pb_err(err, PB_EINVAL, "the token's nonce is not the one this sign-in sent (a replayed token)");
	return PB_OK;
}
