/* The tenant back-off store. See core/store/tenant_backoff.h. */
#include "core/store/tenant_backoff.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/log.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#define TENANT_KEY_MAX 256   /* a GUID, or a domain name (at most 253 bytes) */
#define DEFAULT_WAIT_S 60    /* a 429 without Retry-After */

static const char *const family_names[] = { "scanner", "admin", "push" };

const char *tenant_backoff_family_name(tb_family f)
{
	return (unsigned)f < sizeof family_names / sizeof family_names[0] ? family_names[f] : "scanner";
}

/* The stored key: the tenant id in ASCII lower case. */
static int tenant_key(const char *tenant_id, char key[TENANT_KEY_MAX], char *err)
{
	size_t n = tenant_id ? strlen(tenant_id) : 0;
	if (!n || n >= TENANT_KEY_MAX)
		return pb_err(err, PB_EINVAL, "tenant back-off: the tenant id is empty or longer than %d bytes",
			      TENANT_KEY_MAX - 1);
	for (size_t i = 0; i <= n; i++)
		key[i] = (char)tolower((unsigned char)tenant_id[i]);
	return 0;
}

int tenant_backoff_get(pb_db *db, const char *tenant_id, tb_family f, tenant_backoff *out, bool *waiting, char *err)
{
	char key[TENANT_KEY_MAX], now[PB_TIME_BUF];
	db_stmt *st = NULL;
	int64_t until_ms = 0;
	*waiting = false;
	memset(out, 0, sizeof *out);
	int rc = tenant_key(tenant_id, key, err);
	if (rc)
		return rc;
	pb_now(now);
	if ((rc = db_prepare(db, "SELECT wait_until, reason FROM tenant_backoff WHERE tenant_id = ? AND family = ? "
			     "AND wait_until > ?", &st, err)) ||
	    (rc = db_bind_text(st, 1, key, err)) || (rc = db_bind_text(st, 2, tenant_backoff_family_name(f), err)) ||
	    (rc = db_bind_text(st, 3, now, err)))
		goto out;
	int r = db_row(db, st, err);
	if (r < 0) {
		rc = r;
		goto out;
	}
	if (r == 1 && !pb_time_parse(db_col_text(st, 0), &until_ms) && until_ms > pb_epoch_ms()) {
		xsnprintf(out->until, sizeof out->until, "%s", db_col_text(st, 0));
		if (xsnprintf(out->reason, sizeof out->reason, "%s", db_col_text(st, 1)))
			out->reason[sizeof out->reason - 1] = '\0';   /* a cut reason is still the reason */
		out->wait_ms = until_ms - pb_epoch_ms();
		if (out->wait_ms < 1)
			out->wait_ms = 1;
		*waiting = true;
	}
out:
	db_done(st);
	return rc;
}

int tenant_backoff_note(pb_db *db, const char *tenant_id, tb_family f, long retry_after_s, const char *why,
			tenant_backoff *out, char *err)
{
	char key[TENANT_KEY_MAX], now[PB_TIME_BUF], until[PB_TIME_BUF], reason[PB_ERR_MAX];
	db_stmt *st = NULL;
	int rc = tenant_key(tenant_id, key, err);
	if (rc)
		return rc;
	if (retry_after_s <= 0)
		retry_after_s = DEFAULT_WAIT_S;
	pb_now(now);
	pb_time_in((int64_t)retry_after_s * 1000, until);
	if (xsnprintf(reason, sizeof reason, "Power BI answered 429 with Retry-After %ld s to %s at %s", retry_after_s,
		      why && *why ? why : "a caller", now))
		reason[sizeof reason - 1] = '\0';
	/* ended waits go first: the table holds one row per tenant and family that waits now */
	if ((rc = db_prepare(db, "DELETE FROM tenant_backoff WHERE wait_until <= ?", &st, err)) ||
	    (rc = db_bind_text(st, 1, now, err)) || (rc = db_exec(db, st, err)))
		goto out;
	db_done(st);
	st = NULL;
	if ((rc = db_prepare(db, "INSERT INTO tenant_backoff (tenant_id, family, wait_until, reason, created_at) "
			     "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, family) DO UPDATE SET "
			     "wait_until = excluded.wait_until, reason = excluded.reason, created_at = excluded.created_at "
			     "WHERE excluded.wait_until > tenant_backoff.wait_until", &st, err)) ||
	    (rc = db_bind_text(st, 1, key, err)) || (rc = db_bind_text(st, 2, tenant_backoff_family_name(f), err)) ||
	    (rc = db_bind_text(st, 3, until, err)) || (rc = db_bind_text(st, 4, reason, err)) ||
	    (rc = db_bind_text(st, 5, now, err)) || (rc = db_exec(db, st, err)))
		goto out;
	if (out) {
		bool waiting;
		db_done(st);
		st = NULL;
		rc = tenant_backoff_get(db, tenant_id, f, out, &waiting, err);
	}
out:
	db_done(st);
	return rc;
}

bool tenant_backoff_record(pb_db *db, const char *tenant_id, tb_family f, long retry_after_s, const char *fmt, ...)
{
	char why[PB_ERR_MAX], err[PB_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(why, sizeof why, fmt, ap);
	va_end(ap);
	if (!tenant_backoff_note(db, tenant_id, f, retry_after_s, why, NULL, err))
		return true;
	log_event("warn", NULL, "tenant %s: the %s back-off (%s) was not recorded: %s", tenant_id ? tenant_id : "",
		  tenant_backoff_family_name(f), why, err);
	return false;
}
