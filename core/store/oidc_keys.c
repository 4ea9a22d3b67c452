#include "core/store/oidc_keys.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/timeutil.h"
#include "runtime/util.h"

void oidc_cached_release(oidc_cached *c)
{
	free(c->metadata);
	free(c->jwks);
	memset(c, 0, sizeof *c);
}

int oidc_cache_get(pb_db *db, const char *config_url, oidc_cached *out, char *err)
{
	db_stmt *st = NULL;
	bool ok = true;
	memset(out, 0, sizeof *out);
	int rc = db_prepare(db, "SELECT metadata, jwks, fetched_at, expires_at, claim FROM oidc_providers "
			    "WHERE config_url = ?", &st, err);
	if (rc || (rc = db_bind_text(st, 1, config_url, err)))
		goto out;
	int r = db_row(db, st, err);
	if (r <= 0) {
		rc = r < 0 ? r : PB_ENOTFOUND;
		goto out;
	}
	out->metadata = db_col_dup(st, 0, &ok);
	if (ok)
		out->jwks = db_col_dup(st, 1, &ok);
	if (!ok) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	out->claim = db_col_int64(st, 4);
	if (pb_time_parse(db_col_text(st, 2), &out->fetched_ms) || pb_time_parse(db_col_text(st, 3), &out->expires_ms) ||
	    !out->metadata || !out->jwks)
		rc = pb_err(err, PB_EIO, "the cached OpenID configuration row is malformed");
out:
	db_done(st);
	if (rc)
		oidc_cached_release(out);
	return rc;
}

int oidc_cache_put(pb_db *db, const char *config_url, const char *metadata, const char *jwks, long long ttl_s,
		   char *err)
{
	char now[PB_TIME_BUF], exp[PB_TIME_BUF];
	pb_now(now);
	pb_time_in(ttl_s * 1000, exp);
	const char *args[] = { config_url, metadata, jwks, now, exp };
	return db_exec_texts(db, "INSERT INTO oidc_providers (config_url, metadata, jwks, fetched_at, expires_at) "
			     "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (config_url) DO UPDATE SET metadata = ?2, jwks = ?3, "
			     "fetched_at = ?4, expires_at = ?5", args, 5, err);
}

int oidc_cache_claim(pb_db *db, const char *config_url, long long seen, long long min_s, char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF], before[PB_TIME_BUF];
	pb_now(now);
	pb_time_in(-min_s * 1000, before);
	int rc = db_prepare(db, "UPDATE oidc_providers SET fetched_at = ?, claim = claim + 1 WHERE config_url = ? AND "
			    "claim = ? AND fetched_at <= ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, now, err)) && !(rc = db_bind_text(st, 2, config_url, err)) &&
	    !(rc = db_bind_text(st, 4, before, err))) {
		db_bind_int64(st, 3, seen, NULL);
		rc = db_exec(db, st, err);
	}
	db_done(st);
	if (!rc && db_changes(db) != 1)
		rc = pb_err(err, PB_ECONFLICT, "the identity provider's keys were fetched less than %lld s ago", min_s);
	return rc;
}
