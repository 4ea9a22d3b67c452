/* JSON Web Tokens (RFC 7519) in the compact JWS form signed with RS256 (RFC 7515, RFC 7518 §3.3),
 * checked against a JSON Web Key Set (RFC 7517) with OpenSSL: what an OpenID Connect client needs
 * to trust an ID token (OpenID Connect Core 1.0 §3.1.3.7).
 *
 * Only RS256 is accepted, whatever the token's header says: "none", HS256 (which would turn a
 * public key into an HMAC secret) and every other algorithm are refused before any key is
 * looked at. The key is the set's RSA key whose "kid" equals the header's; a key that says what
 * it is for must say "sig" and RS256; keys under PB_RSA_MIN_BITS are refused. A header with
 * "crit" is refused (no extension is understood).
 *
 * Nothing here knows an identity provider: the claims an application checks beyond the
 * registered ones (iss, aud, exp, nbf, iat, nonce) are read from t->claims by the caller. */
#ifndef PBIPORT_JWT_H
#define PBIPORT_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pb_jwt {
	json_t *header;          /* new: the decoded JOSE header */
	json_t *claims;          /* new: the decoded claims set */
	char *signing_input;     /* new: "<header>.<payload>" as received (what the signature covers) */
	unsigned char *sig;      /* new: the decoded signature */
	size_t sig_len;
} pb_jwt;

/* Splits and decodes a compact JWS (three base64url parts, at most PB_JWT_MAX_BYTES; header and
 * claims JSON objects without duplicate keys). Checks nothing else. PB_EINVAL naming what is
 * malformed. Release *out with pb_jwt_release (also after an error). */
int pb_jwt_parse(const char *token, pb_jwt *out, char *err);
void pb_jwt_release(pb_jwt *t);

/* The header's "kid", borrowed until pb_jwt_release; NULL when it has none. */
const char *pb_jwt_kid(const pb_jwt *t);

/* Checks t's signature with the key of jwks ({"keys": [...]}) named by t's kid. PB_ENOTFOUND
 * when the set has no usable key of that id (the caller may fetch the set again); PB_EINVAL
 * for anything else wrong (algorithm, key, signature), with the reason. */
int pb_jwt_verify_rs256(const pb_jwt *t, const json_t *jwks, char *err);

typedef struct pb_jwt_expect {
	const char *issuer;      /* iss must equal it */
	const char *audience;    /* aud must be it or an array holding it (then azp, if any, is it too) */
	const char *nonce;       /* nonce must equal it; NULL: not checked */
	int64_t now_s;           /* the time to check against (Unix seconds) */
	int64_t skew_s;          /* clock difference allowed either way */
} pb_jwt_expect;

/* Checks the registered claims: iss, aud (and azp), exp (required: not over), nbf and iat (when
 * present: not in the future), nonce. PB_EINVAL naming the failed claim ("expired",
 * "not valid yet", "issuer", "audience", "nonce"). */
int pb_jwt_check_claims(const pb_jwt *t, const pb_jwt_expect *e, char *err);

/* A string claim, borrowed until pb_jwt_release; NULL when absent or not a string. */
const char *pb_jwt_claim_str(const pb_jwt *t, const char *name);

#endif
