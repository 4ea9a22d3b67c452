#include "core/store/webhooks.h"

#include <stdlib.h>
#include <string.h>

#include "core/store/connections.h"
#include "runtime/config.h"
#include "runtime/crypto.h"
#include "runtime/limits.h"
#include "runtime/util.h"

const char *const pb_delivery_states[PB_DELIVERY_NSTATES] = { "pending", "retrying", "delivered", "failed", "skipped" };

#define SEAL_CTX_MAX (sizeof "webhook:" + PB_ID_BUF)

/* The sealing context binds a secret to its webhook: a sealed value copied to another row does
 * not open. The same text as reseal_columns' "<kind>:<row key>" for kind "webhook". */
static int seal_context(const char *id, char ctx[SEAL_CTX_MAX], char *err)
{
	if (xsnprintf(ctx, SEAL_CTX_MAX, "webhook:%s", id))
		return pb_err(err, PB_EINVAL, "webhook id too long");
	return PB_OK;
}

static int seal_secret(const pb_keyring *kr, const char *id, const char *secret, char **sealed, char *err)
{
	char ctx[SEAL_CTX_MAX];
	*sealed = NULL;
	if (!kr)
		return pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS is not set: webhook secrets cannot be stored");
	int rc = seal_context(id, ctx, err);
	return rc ? rc : pb_seal(kr, secret, strlen(secret), ctx, sealed, err);
}

static int malformed(const char *table, char *err)
{
	return pb_err(err, PB_EIO, "malformed %s row", table);
}

/* ---- webhooks ---- */

#define WEBHOOK_COLUMNS                                                                                  \
	"id, org_id, url, events, active, disabled_reason, created_by, created_at, updated_at, "         \
	"last_delivery_at, last_delivery_state, last_status, last_error"

/* A webhook's columns (WEBHOOK_COLUMNS' order), read and freed through these lists. */
static const db_fixed_field webhook_fixed[] = {
	DB_FIXED_FIELD(pb_webhook, id, 0),         DB_FIXED_FIELD(pb_webhook, org_id, 1),
	DB_FIXED_FIELD(pb_webhook, created_by, 6), DB_FIXED_FIELD(pb_webhook, created_at, 7),
	DB_FIXED_FIELD(pb_webhook, updated_at, 8),
};
static const db_text_field webhook_texts[] = {
	DB_TEXT_FIELD(pb_webhook, url, 2),               DB_TEXT_FIELD(pb_webhook, events, 3),
	DB_TEXT_FIELD(pb_webhook, disabled_reason, 5),   DB_TEXT_FIELD(pb_webhook, last_delivery_at, 9),
	DB_TEXT_FIELD(pb_webhook, last_delivery_state, 10), DB_TEXT_FIELD(pb_webhook, last_error, 12),
};

static int webhook_more(pb_db *db, db_stmt *st, void *row, void *ctx, char *err)
{
	pb_webhook *w = row;
	w->active = db_col_int(st, 4) != 0;
	w->last_status = (long)db_col_int64(st, 11);   /* 0 for NULL */
	return PB_OK;
}

static const db_reader webhook_reader = DB_READER(pb_webhook, "webhook", webhook_fixed, webhook_texts, webhook_more);

void webhook_free(pb_webhook *w)
{
	db_reader_free(&webhook_reader, w);
}

void webhooks_free(pb_webhook **v, size_t n)
{
	db_reader_ptrs_free(&webhook_reader, (void **)v, n);
}

int webhooks_create(pb_db *db, const pb_keyring *kr, const char *org_id, const char *user_id, const char *url,
		    const char *events, const char *secret, char id[PB_ID_BUF], char *err)
{
	char *sealed = NULL, now[PB_TIME_BUF];
	int rc = pb_new_id(id, err);
	if (rc || (rc = seal_secret(kr, id, secret, &sealed, err)))
		goto out;
	pb_now(now);
	const char *v[] = { id, org_id, url, events, sealed, user_id, now, now };
	rc = db_exec_texts(db,
			   "INSERT INTO webhooks (id, org_id, url, events, secret_sealed, active, created_by, created_at, "
			   "updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
			   v, 8, err);
out:
	free(sealed);
	return rc;
}

int webhooks_update(pb_db *db, const pb_keyring *kr, const char *org_id, const char *id, const webhook_change *ch,
		    char *err)
{
	db_stmt *st = NULL;
	char *sealed = NULL, now[PB_TIME_BUF];
	int rc = PB_OK;
	if (ch->secret && (rc = seal_secret(kr, id, ch->secret, &sealed, err)))
		return rc;
	pb_now(now);
	/* ?5: -1 keeps active; turning it on forgets why pbiport had turned it off */
	if ((rc = db_prepare(db,
			     "UPDATE webhooks SET url = COALESCE(?1, url), events = COALESCE(?2, events), "
			     "secret_sealed = COALESCE(?3, secret_sealed), "
			     "active = CASE WHEN ?5 < 0 THEN active ELSE ?5 END, "
			     "disabled_reason = CASE WHEN ?5 = 1 THEN NULL ELSE disabled_reason END, updated_at = ?4 "
			     "WHERE id = ?6 AND org_id = ?7",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, ch->url, err)) || (rc = db_bind_text(st, 2, ch->events, err)) ||
	    (rc = db_bind_text(st, 3, sealed, err)) || (rc = db_bind_text(st, 4, now, err)))
		goto out;
	db_bind_int64(st, 5, ch->active < 0 ? -1 : ch->active ? 1 : 0, NULL);
	if ((rc = db_bind_text(st, 6, id, err)) || (rc = db_bind_text(st, 7, org_id, err)) ||
	    (rc = db_exec(db, st, err)))
		goto out;
	if (db_changes(db) == 0)
		rc = pb_err(err, PB_ENOTFOUND, "no webhook %s", id);
out:
	db_done(st);
	free(sealed);
	return rc;
}

int webhooks_delete(pb_db *db, const char *org_id, const char *id, char *err)
{
	const char *v[] = { id, org_id };
	int rc = db_exec_texts(db, "DELETE FROM webhooks WHERE id = ? AND org_id = ?", v, 2, err);
	if (!rc && db_changes(db) == 0)
		rc = pb_err(err, PB_ENOTFOUND, "no webhook %s", id);
	return rc;
}

int webhooks_get(pb_db *db, const char *org_id, const char *id, pb_webhook **out, char *err)
{
	const char *v[] = { id, org_id };
	void *w;
	int rc = db_get_one(db, "SELECT " WEBHOOK_COLUMNS " FROM webhooks WHERE id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR "
			    "org_id = ?2)", v, 2, &webhook_reader, NULL, id, &w, err);
	*out = w;
	return rc;
}

int webhooks_list(pb_db *db, const char *org_id, pb_webhook ***v, size_t *n, char *err)
{
	void **list;
	int rc = db_get_ptrs(db, "SELECT " WEBHOOK_COLUMNS " FROM webhooks WHERE org_id = ? ORDER BY created_at, id LIMIT ?",
			     &org_id, 1, PB_WEBHOOKS_MAX, &webhook_reader, NULL, &list, n, err);
	*v = (pb_webhook **)list;
	return rc;
}

int webhooks_count(pb_db *db, const char *org_id, size_t *n, char *err)
{
	db_stmt *st = NULL;
	*n = 0;
	int rc = db_prepare(db, "SELECT COUNT(*) FROM webhooks WHERE org_id = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, org_id, err))) {
		int row = db_row(db, st, err);
		if (row == 1)
			*n = (size_t)db_col_int64(st, 0);
		rc = row < 0 ? row : PB_OK;
	}
	db_done(st);
	return rc;
}

/* Whether the JSON array text `events` names event: an exact string match of one element, so
 * "publish" never matches "publish.failed". */
static bool events_hold(const char *events, const char *event)
{
	size_t n = strlen(event);
	for (const char *p = strchr(events, '"'); p; p = strchr(p, '"')) {
		const char *end = strchr(p + 1, '"');
		if (!end)
			return false;
		if ((size_t)(end - p - 1) == n && !memcmp(p + 1, event, n))
			return true;
		p = end + 1;
	}
	return false;
}

int webhooks_subscribed(pb_db *db, const char *org_id, const char *event, char (**ids)[PB_ID_BUF], size_t *n,
			char *err)
{
	db_stmt *st = NULL;
	char (*v)[PB_ID_BUF] = NULL;
	size_t count = 0, cap = 0;
	*ids = NULL;
	*n = 0;
	int rc = db_prepare(db, "SELECT id, events FROM webhooks WHERE org_id = ? AND active = 1", &st, err);
	if (!rc)
		rc = db_bind_text(st, 1, org_id, err);
	while (!rc) {
		int row = db_row(db, st, err);
		if (row <= 0) {
			rc = row;
			break;
		}
		if (!events_hold(db_col_text(st, 1), event))
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			void *nv = realloc(v, ncap * sizeof *v);
			if (!nv) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		rc = xsnprintf(v[count], sizeof v[count], "%s", db_col_text(st, 0)) ? malformed("webhooks", err) : PB_OK;
		if (!rc)
			count++;
	}
	db_done(st);
	if (rc) {
		free(v);
		return rc;
	}
	*ids = v;
	*n = count;
	return PB_OK;
}

int webhook_open_secret(pb_db *db, const pb_keyring *kr, const char *id, char **plain, size_t *len, char *err)
{
	db_stmt *st = NULL;
	char ctx[SEAL_CTX_MAX];
	*plain = NULL;
	*len = 0;
	if (!kr)
		return pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS is not set: the webhook's secret cannot be opened");
	int rc = seal_context(id, ctx, err);
	if (!rc)
		rc = db_prepare(db, "SELECT secret_sealed FROM webhooks WHERE id = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, id, err))) {
		int row = db_row(db, st, err);
		rc = row < 0 ? row : row == 0 ? pb_err(err, PB_ENOTFOUND, "no webhook %s", id)
					      : pb_open(kr, db_col_text(st, 0), ctx, plain, len, err);
	}
	db_done(st);
	return rc;
}

int webhooks_rotate(pb_db *db, const pb_config *cfg, size_t *resealed, char *err)
{
	/* kind "webhook" + the row id: the context seal_context() seals with */
	static const sealed_column cols[] = {
		{ "SELECT id, secret_sealed FROM webhooks", "UPDATE webhooks SET secret_sealed = ? WHERE id = ?", "webhook",
		  NULL },
	};
	return reseal_columns(db, cfg->encryption_keys, cols, sizeof cols / sizeof cols[0], resealed, err);
}

/* ---- deliveries ---- */

#define DELIVERY_COLUMNS                                                                                 \
	"id, webhook_id, event_id, event, payload, state, attempts, last_status, last_error, job_id, "    \
	"next_attempt_at, created_at, updated_at, delivered_at"

/* A delivery's columns (DELIVERY_COLUMNS' order), read and freed through these lists. */
static const db_fixed_field delivery_fixed[] = {
	DB_FIXED_FIELD(pb_delivery, id, 0),          DB_FIXED_FIELD(pb_delivery, webhook_id, 1),
	DB_FIXED_FIELD(pb_delivery, event_id, 2),    DB_FIXED_FIELD(pb_delivery, created_at, 11),
	DB_FIXED_FIELD(pb_delivery, updated_at, 12),
};
static const db_text_field delivery_texts[] = {
	DB_TEXT_FIELD(pb_delivery, event, 3),      DB_TEXT_FIELD(pb_delivery, payload, 4),
	DB_TEXT_FIELD(pb_delivery, state, 5),      DB_TEXT_FIELD(pb_delivery, last_error, 8),
	DB_TEXT_FIELD(pb_delivery, job_id, 9),     DB_TEXT_FIELD(pb_delivery, next_attempt_at, 10),
	DB_TEXT_FIELD(pb_delivery, delivered_at, 13),
};

static int delivery_more(pb_db *db, db_stmt *st, void *row, void *ctx, char *err)
{
	pb_delivery *d = row;
	if (!d->event || !d->payload || !d->state)
		return malformed("webhook_deliveries", err);
	d->attempts = db_col_int(st, 6);
	d->last_status = (long)db_col_int64(st, 7);
	return PB_OK;
}

static const db_reader delivery_reader = DB_READER(pb_delivery, "webhook delivery", delivery_fixed,
						      delivery_texts, delivery_more);

void delivery_free(pb_delivery *d)
{
	db_reader_free(&delivery_reader, d);
}

void deliveries_free(pb_delivery **v, size_t n)
{
	db_reader_ptrs_free(&delivery_reader, (void **)v, n);
}

int deliveries_insert(pb_db *db, const char *webhook_id, const char *event_id, const char *event, const char *payload,
		      char id[PB_ID_BUF], bool *inserted, char *err)
{
	char now[PB_TIME_BUF];
	*inserted = false;
	int rc = pb_new_id(id, err);
	if (rc)
		return rc;
	pb_now(now);
	const char *v[] = { id, webhook_id, event_id, event, payload, now, now };
	rc = db_exec_texts(db,
			   "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, payload, state, attempts, "
			   "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) "
			   "ON CONFLICT (webhook_id, event_id) DO NOTHING",
			   v, 7, err);
	if (!rc)
		*inserted = db_changes(db) > 0;
	return rc;
}

int deliveries_set_job(pb_db *db, const char *id, const char *job_id, char *err)
{
	const char *v[] = { job_id, id };
	return db_exec_texts(db, "UPDATE webhook_deliveries SET job_id = ? WHERE id = ?", v, 2, err);
}

int deliveries_prune(pb_db *db, const char *webhook_id, size_t keep, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db,
			    "DELETE FROM webhook_deliveries WHERE webhook_id = ?1 "
			    "AND state IN ('delivered', 'failed', 'skipped') AND id NOT IN "
			    "(SELECT id FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY created_at DESC, id DESC "
			    "LIMIT ?2)",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, webhook_id, err))) {
		db_bind_int64(st, 2, (int64_t)keep, NULL);
		rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

int deliveries_get(pb_db *db, const char *id, pb_delivery **out, char *err)
{
	void *d;
	int rc = db_get_one(db, "SELECT " DELIVERY_COLUMNS " FROM webhook_deliveries WHERE id = ?", &id, 1,
			    &delivery_reader, NULL, id, &d, err);
	*out = d;
	return rc;
}

int deliveries_list(pb_db *db, const char *webhook_id, size_t limit, pb_delivery ***v, size_t *n, char *err)
{
	void **list;
	int rc = db_get_ptrs(db, "SELECT " DELIVERY_COLUMNS " FROM webhook_deliveries WHERE webhook_id = ? "
			     "ORDER BY created_at DESC, id DESC LIMIT ?", &webhook_id, 1, limit, &delivery_reader, NULL,
			     &list, n, err);
	*v = (pb_delivery **)list;
	return rc;
}

int deliveries_record(pb_db *db, const delivery_attempt *a, char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF];
	bool delivered = !strcmp(a->state, "delivered");
	pb_now(now);
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	if ((rc = db_prepare(db,
			     "UPDATE webhook_deliveries SET state = ?1, attempts = ?2, last_status = ?3, last_error = ?4, "
			     "next_attempt_at = ?5, updated_at = ?6, delivered_at = CASE WHEN ?7 = 1 THEN ?6 "
			     "ELSE delivered_at END WHERE id = ?8",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, a->state, err)))
		goto out;
	db_bind_int64(st, 2, a->attempts, NULL);
	if (a->status > 0)
		db_bind_int64(st, 3, a->status, NULL);
	else
		db_bind_null(st, 3, NULL);
	if ((rc = db_bind_text(st, 4, a->error, err)) || (rc = db_bind_text(st, 5, a->next_attempt_at, err)) ||
	    (rc = db_bind_text(st, 6, now, err)))
		goto out;
	db_bind_int64(st, 7, delivered ? 1 : 0, NULL);
	if ((rc = db_bind_text(st, 8, a->delivery_id, err)) || (rc = db_exec(db, st, err)))
		goto out;
	db_done(st);
	st = NULL;
	if (!strcmp(a->state, "skipped"))   /* nothing was sent: not the webhook's last delivery */
		goto out;
	/* the webhook shows its last delivery; a 410 turns it off */
	if ((rc = db_prepare(db,
			     "UPDATE webhooks SET last_delivery_at = ?1, last_delivery_state = ?2, last_status = ?3, "
			     "last_error = ?4, active = CASE WHEN CAST(?5 AS TEXT) IS NULL THEN active ELSE 0 END, "
			     "disabled_reason = COALESCE(?5, disabled_reason), "
			     "updated_at = CASE WHEN CAST(?5 AS TEXT) IS NULL THEN updated_at ELSE ?1 END WHERE id = ?6",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, now, err)) || (rc = db_bind_text(st, 2, a->state, err)))
		goto out;
	if (a->status > 0)
		db_bind_int64(st, 3, a->status, NULL);
	else
		db_bind_null(st, 3, NULL);
	if ((rc = db_bind_text(st, 4, a->error, err)) || (rc = db_bind_text(st, 5, a->disable_reason, err)) ||
	    (rc = db_bind_text(st, 6, a->webhook_id, err)) || (rc = db_exec(db, st, err)))
		goto out;
out:
	db_done(st);
	return db_end(db, rc, err);
}
