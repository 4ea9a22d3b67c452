/* The cache of the identity provider's OpenID configuration and signing keys (table
 * oidc_providers), shared by every process: fetched once, kept PB_OIDC_KEYS_TTL_S, and fetched
 * again early when an ID token names a key the cached set lacks, at most once every
 * PB_OIDC_REFETCH_MIN_S across all processes (a claim on the row decides who fetches).
 *
 * Owns the table oidc_providers; no other module writes it. */
#ifndef PBIPORT_OIDC_KEYS_H
#define PBIPORT_OIDC_KEYS_H

#include <stdint.h>

#include "runtime/db.h"

typedef struct oidc_cached {
	char *metadata;                  /* new: the OpenID configuration document as fetched */
	char *jwks;                      /* new: the key set document as fetched */
	long long claim;                 /* the claim generation read (oidc_cache_claim) */
	int64_t fetched_ms;              /* when it was fetched (or last claimed for a fetch) */
	int64_t expires_ms;
} oidc_cached;
void oidc_cached_release(oidc_cached *c);

/* The cached documents of config_url (expired or not: compare expires_ms). PB_ENOTFOUND when
 * none. Release *out with oidc_cached_release (also after an error). */
int oidc_cache_get(pb_db *db, const char *config_url, oidc_cached *out, char *err);

/* Stores freshly fetched documents of config_url, kept ttl_s. */
int oidc_cache_put(pb_db *db, const char *config_url, const char *metadata, const char *jwks, long long ttl_s,
		   char *err);

/* Claims the next fetch of config_url, whose row was read with claim generation seen: succeeds
 * only when nobody claimed since and the copy was fetched (or claimed) at least min_s ago.
 * PB_ECONFLICT otherwise (fetched too recently, or another process is at it). */
int oidc_cache_claim(pb_db *db, const char *config_url, long long seen, long long min_s, char *err);

#endif
