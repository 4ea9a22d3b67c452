/* OpenID Connect with Microsoft Entra ID (v2.0): the tenant's OpenID configuration and signing
 * keys, and the check of an ID token (OpenID Connect Core 1.0 §3.1.3.7) with the claims Entra
 * adds (tid, oid, preferred_username). The authorize URL and the code exchange are
 * msapi/entra.h's; the signature and the registered claims are runtime/jwt.h's.
 *
 * The configuration lives at $PBIPORT_ENTRA_URL/<tenant>/v2.0/.well-known/openid-configuration;
 * its jwks_uri must lie on the origin of a configured base URL (msapi_url_allowed), so the keys
 * come from the same place the tokens do. */
#ifndef PBIPORT_MSAPI_OIDC_H
#define PBIPORT_MSAPI_OIDC_H

#include <stdint.h>

#include "msapi/msapi.h"

#define ENTRA_GUID_BUF 37   /* 36 + NUL */

/* The URL of tenant's OpenID configuration (the cache key of core/store/oidc_keys.h). New. */
int entra_oidc_config_url(const msapi *c, const char *tenant, char **url, char *err);

/* Fetches the configuration of tenant and the key set it names. *metadata and *jwks are new
 * compact JSON texts, each at most PB_OIDC_DOC_MAX bytes, checked to be a configuration with an
 * issuer and a jwks_uri that accepts RS256, and a set with a "keys" array. */
int entra_oidc_fetch(msapi *c, const char *tenant, char **metadata, char **jwks, char *err);

/* What a checked ID token says about the person. The pointers are new (release with
 * entra_id_claims_release); preferred_username, email and name may be NULL. */
typedef struct entra_id_claims {
	char tenant_id[ENTRA_GUID_BUF];   /* tid, lower case */
	char object_id[ENTRA_GUID_BUF];   /* oid, lower case */
	char *preferred_username;
	char *email;
	char *name;
} entra_id_claims;
void entra_id_claims_release(entra_id_claims *c);

typedef struct entra_id_expect {
	const char *client_id;   /* the audience */
	const char *tenant;      /* the tenant signed in to: a GUID, a domain, or organizations / common */
	const char *nonce;       /* the nonce the authorize request sent */
	int64_t now_s;           /* Unix seconds */
} entra_id_expect;

/* Checks id_token against the fetched metadata and jwks texts: an RS256 signature by a published
 * key; the issuer the configuration names (its "{tenantid}" filled with the token's tid); the
 * client id as audience; exp / nbf / iat within PB_JWT_SKEW_S; the nonce; tid and oid GUIDs, the
 * tid being the issuer's tenant (and the configured one when that is a GUID). PB_ENOTFOUND when
 * the token's key is not in jwks (fetch the keys again); PB_EINVAL naming what failed. */
int entra_id_token_check(const char *id_token, const char *metadata, const char *jwks, const entra_id_expect *e,
			 entra_id_claims *out, char *err);

#endif
