#include "core/store/connections.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/strbuf.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#define CTX_MAX 64

/* "udc:<id>:access" / "udc:<id>:refresh" / "oauth_state:<nonce>". */
static int seal_ctx(char ctx[CTX_MAX], const char *kind, const char *id, const char *field, char *err)
{
	if (xsnprintf(ctx, CTX_MAX, "%s:%s%s%s", kind, id, field ? ":" : "", field ? field : ""))
		return pb_err(err, PB_EINTERNAL, "sealing context too long");
	return PB_OK;
}

static int seal_str(const pb_keyring *kr, const char *plain, const char *kind, const char *id, const char *field,
		    char **out, char *err)
{
	char ctx[CTX_MAX];
	*out = NULL;
	if (!kr)
		return pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS is not set: tokens cannot be stored");
	int rc = seal_ctx(ctx, kind, id, field, err);
	return rc ? rc : pb_seal(kr, plain, strlen(plain), ctx, out, err);
}

static int open_str(const pb_keyring *kr, const char *sealed, const char *kind, const char *id, const char *field,
		    char **out, char *err)
{
	char ctx[CTX_MAX];
	size_t len = 0;
	*out = NULL;
	if (!kr)
		return pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS is not set: tokens cannot be opened");
	int rc = seal_ctx(ctx, kind, id, field, err);
	return rc ? rc : pb_open(kr, sealed, ctx, out, &len, err);
}

static void secret_free(char *s)
{
	pb_secret_free(s, s ? strlen(s) : 0);
}

static int copy_fixed(char *dst, size_t size, const char *src, char *err)
{
	if (xsnprintf(dst, size, "%s", src))
		return pb_err(err, PB_EIO, "malformed connection row");
	return PB_OK;
}

static int changes(pb_db *db)
{
	return db_changes(db);
}

void conn_release(pbi_conn *c)
{
	free(c->tenant_id);
	free(c->client_id);
	free(c->scopes);
	free(c->status_reason);
	free(c->access_sealed);
	free(c->refresh_sealed);
	memset(c, 0, sizeof *c);
}

int conn_save(pb_db *db, const pb_keyring *kr, const char *org_id, const char *user_id, const char *tenant_id,
	      const char *client_id, const entra_token *tok, char id[PB_ID_BUF], char *err)
{
	char *at = NULL, *rt = NULL, now[PB_TIME_BUF], exp[PB_TIME_BUF];
	int rc;
	if (!tok->access_token || !tok->refresh_token)
		return pb_err(err, PB_EINVAL, "Entra did not return a refresh token (offline_access not granted): "
			      "connect Power BI again and accept every permission");
	if ((rc = pb_new_id(id, err)) || (rc = seal_str(kr, tok->access_token, "udc", id, "access", &at, err)) ||
	    (rc = seal_str(kr, tok->refresh_token, "udc", id, "refresh", &rt, err)))
		goto out;
	pb_now(now);
	pb_time_format((int64_t)tok->expires_at * 1000, exp);
	if ((rc = db_begin(db, err)))
		goto out;
	/* at most one connection per (user, tenant): connecting again replaces it */
	const char *old[] = { user_id, tenant_id };
	const char *row[] = { id, org_id, user_id, tenant_id, client_id, at, rt, exp, tok->scope ? tok->scope : "", now, now };
	if (!(rc = db_exec_texts(db, "DELETE FROM user_datasource_connection WHERE user_id = ? AND tenant_id = ?", old, 2,
				 err)))
		rc = db_exec_texts(db,
				   "INSERT INTO user_datasource_connection (id, org_id, user_id, tenant_id, client_id, status, "
				   "access_token_sealed, refresh_token_sealed, expires_at, scopes, token_gen, created_at, "
				   "updated_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, 0, ?, ?)",
				   row, 11, err);
	rc = db_end(db, rc, err);
out:
	free(at);
	free(rt);
	return rc;
}

#define CONN_COLS                                                                                        \
	"id, org_id, user_id, tenant_id, client_id, scopes, status, expires_at, token_gen, created_at, " \
	"updated_at, status_reason"

static int conn_from_row(db_stmt *st, pbi_conn *c, char *err)
{
	bool ok = true;
	int rc;
	memset(c, 0, sizeof *c);
	if ((rc = copy_fixed(c->id, sizeof c->id, db_col_text(st, 0), err)) ||
	    (rc = copy_fixed(c->org_id, sizeof c->org_id, db_col_text(st, 1), err)) ||
	    (rc = copy_fixed(c->user_id, sizeof c->user_id, db_col_text(st, 2), err)) ||
	    (rc = copy_fixed(c->status, sizeof c->status, db_col_text(st, 6), err)) ||
	    (rc = copy_fixed(c->expires_at, sizeof c->expires_at, db_col_text(st, 7), err)) ||
	    (rc = copy_fixed(c->created_at, sizeof c->created_at, db_col_text(st, 9), err)) ||
	    (rc = copy_fixed(c->updated_at, sizeof c->updated_at, db_col_text(st, 10), err)))
		return rc;
	c->token_gen = db_col_int64(st, 8);
	c->tenant_id = db_col_dup(st, 3, &ok);
	c->client_id = db_col_dup(st, 4, &ok);
	c->scopes = db_col_dup(st, 5, &ok);
	c->status_reason = db_col_dup(st, 11, &ok);
	if (!ok) {
		conn_release(c);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	return PB_OK;
}

static json_t *scopes_json(const char *scopes)
{
	json_t *a = json_array();
	const char *p = scopes;
	while (a && p && *p) {
		size_t n = strcspn(p, " ");
		if (n && json_array_append_new(a, json_stringn(p, n))) {
			json_decref(a);
			return NULL;
		}
		p += n;
		p += strspn(p, " ");
	}
	return a;
}

static json_t *conn_json(const pbi_conn *c)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:o, s:s, s:s, s:s}", "id", c->id, "tenant_id", c->tenant_id,
			 "client_id", c->client_id, "status", c->status, "status_reason",
			 strcmp(c->status, "active") ? c->status_reason : NULL, "scopes", scopes_json(c->scopes),
			 "expires_at", c->expires_at, "created_at", c->created_at, "updated_at", c->updated_at);
}

int conn_list(pb_db *db, const char *org_id, const char *user_id, json_t **out, char *err)
{
	db_stmt *st = NULL;
	json_t *arr = json_array();
	const char *whose[] = { org_id, user_id };
	int rc = arr ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
	*out = NULL;
	if (rc || (rc = db_prepare_texts(db, "SELECT " CONN_COLS " FROM user_datasource_connection "
					 "WHERE org_id = ? AND user_id = ? ORDER BY created_at, id", whose, 2, &st, err)))
		goto out;
	int r;
	while ((r = db_row(db, st, err)) == 1) {
		pbi_conn c;
		if ((rc = conn_from_row(st, &c, err)))
			goto out;
		json_t *j = conn_json(&c);
		conn_release(&c);
		if (!j || json_array_append_new(arr, j)) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = r < 0 ? r : PB_OK;
out:
	db_done(st);
	if (rc)
		json_decref(arr);
	else
		*out = arr;
	return rc;
}

int conn_delete(pb_db *db, const char *org_id, const char *user_id, const char *id, char *err)
{
	const char *v[] = { id, org_id, user_id };
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	/* overwrite the sealed tokens first so no copy of them lingers in freed pages */
	if (!(rc = db_exec_texts(db,
				 "UPDATE user_datasource_connection SET access_token_sealed = NULL, "
				 "refresh_token_sealed = NULL WHERE id = ? AND org_id = ? AND user_id = ?",
				 v, 3, err)) &&
	    changes(db) == 0)
		rc = pb_err(err, PB_ENOTFOUND, "no Power BI connection with this id");
	if (!rc)
		rc = db_exec_texts(db, "DELETE FROM user_datasource_connection WHERE id = ? AND org_id = ? AND user_id = ?",
				   v, 3, err);
	return db_end(db, rc, err);
}

int conn_find(pb_db *db, const char *org_id, const char *user_id, const char *tenant_id, pbi_conn *out,
	      char *err)
{
	db_stmt *st = NULL;
	const char *which[] = { org_id, user_id, tenant_id };
	memset(out, 0, sizeof *out);
	/* the sealed tokens after CONN_COLS: conn_token_found's first look */
	int rc = db_prepare_texts(db,
				  tenant_id ? "SELECT " CONN_COLS ", access_token_sealed, refresh_token_sealed "
					      "FROM user_datasource_connection WHERE org_id = ? AND user_id = ? AND tenant_id = ?"
					    : "SELECT " CONN_COLS ", access_token_sealed, refresh_token_sealed "
					      "FROM user_datasource_connection WHERE org_id = ? AND user_id = ? "
					      "ORDER BY updated_at DESC, id LIMIT 1",
				  which, tenant_id ? 3 : 2, &st, err);
	if (rc)
		goto out;
	int r = db_row(db, st, err);
	if (r != 1) {
		rc = r < 0 ? r : pb_err(err, PB_ENOTFOUND, "you have not connected Power BI yet: connect Power BI first");
		goto out;
	}
	if ((rc = conn_from_row(st, out, err)))
		goto out;
	bool ok = true;
	out->access_sealed = db_col_dup(st, 12, &ok);
	out->refresh_sealed = db_col_dup(st, 13, &ok);
	if (!ok) {
		conn_release(out);
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	}
out:
	db_done(st);
	return rc;
}

/* Why a connection needs a reconnect when nothing more precise is stored. */
#define RECONNECT_REASON_DEFAULT "Entra no longer accepts your Power BI sign-in: reconnect Power BI"

/* The one way a connection becomes needs_reconnect: status and reason stored together (read
 * by every endpoint), tokens erased (they will never be used again). MARK_SQL is followed by
 * the condition that selects the rows; ?1 is the reason, ?2 the time, then binds. */
#define MARK_SQL                                                                                          \
	"UPDATE user_datasource_connection SET status = 'needs_reconnect', status_reason = ?, "          \
	"access_token_sealed = NULL, refresh_token_sealed = NULL, token_gen = token_gen + 1, "            \
	"refresh_claim = NULL, refresh_claim_until = NULL, updated_at = ? WHERE "
#define MARK_BINDS_MAX 3   /* binds after MARK_SQL's two */

static int mark_reconnect(pb_db *db, const char *sql, const char *reason, const char *const *binds, size_t nbinds,
			  char *err)
{
	if (nbinds > MARK_BINDS_MAX)
		return pb_err(err, PB_EINTERNAL, "too many values for a needs_reconnect mark");
	char now[PB_TIME_BUF];
	const char *v[2 + MARK_BINDS_MAX] = { reason, now };
	pb_now(now);
	for (size_t i = 0; i < nbinds && i < MARK_BINDS_MAX; i++)
		v[2 + i] = binds[i];
	return db_exec_texts(db, sql, v, 2 + (int)nbinds, err);
}

int conn_mark_needs_reconnect(pb_db *db, const char *id, const char *reason, char *err)
{
	const char *binds[] = { id };
	return mark_reconnect(db, MARK_SQL "id = ? AND status = 'active'", reason, binds, 1, err);
}

int conn_mark_app_changed(pb_db *db, const char *org_id, const char *tenant_id, const char *client_id, char *err)
{
	const char *binds[] = { org_id, tenant_id, client_id };
	return mark_reconnect(db, MARK_SQL "org_id = ? AND status = 'active' AND (tenant_id <> ? OR client_id <> ?)",
			      CONN_APP_CHANGED, binds, 3, err);
}

/* ---- the token service ---- */

typedef struct token_row {
	char status[16];
	char *status_reason;
	long long gen;
	int64_t expires_ms;
	char *access_sealed;
	char *refresh_sealed;
} token_row;

static void token_row_release(token_row *t)
{
	free(t->access_sealed);
	free(t->refresh_sealed);
	free(t->status_reason);
	memset(t, 0, sizeof *t);
}

static int read_token_row(pb_db *db, const char *id, token_row *t, char *err)
{
	db_stmt *st = NULL;
	bool ok = true;
	memset(t, 0, sizeof *t);
	int rc = db_first_row(db,
			      "SELECT status, token_gen, expires_at, access_token_sealed, refresh_token_sealed, "
			      "status_reason FROM user_datasource_connection WHERE id = ?", &id, 1,
			      "the Power BI connection was removed: connect Power BI again", &st, err);
	if (rc)
		goto out;
	if ((rc = copy_fixed(t->status, sizeof t->status, db_col_text(st, 0), err)))
		goto out;
	t->gen = db_col_int64(st, 1);
	if (pb_time_parse(db_col_text(st, 2), &t->expires_ms))
		t->expires_ms = 0;   /* unreadable: treat as expired */
	t->access_sealed = db_col_dup(st, 3, &ok);
	t->refresh_sealed = db_col_dup(st, 4, &ok);
	t->status_reason = db_col_dup(st, 5, &ok);
	if (!ok)
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	if (rc)
		token_row_release(t);
	return rc;
}

/* Compare-and-swap: claims row id for a refresh of generation gen. 1 = ours, 0 = someone
 * else holds a live claim or the generation moved, < 0 = error. */
static int claim_refresh(pb_db *db, const char *id, long long gen, const char *claim, char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF], until[PB_TIME_BUF];
	pb_now(now);
	pb_time_in(PB_PBI_CLAIM_MS, until);
	int rc = db_prepare(db,
			    "UPDATE user_datasource_connection SET refresh_claim = ?, refresh_claim_until = ? "
			    "WHERE id = ? AND token_gen = ? AND status = 'active' "
			    "AND (refresh_claim_until IS NULL OR refresh_claim_until < ?)",
			    &st, err);
	if (rc || (rc = db_bind_text(st, 1, claim, err)) || (rc = db_bind_text(st, 2, until, err)) ||
	    (rc = db_bind_text(st, 3, id, err)))
		goto out;
	if (db_bind_int64(st, 4, gen, NULL) != PB_OK) {
		rc = pb_err(err, PB_EIO, "binding a value failed");
		goto out;
	}
	if ((rc = db_bind_text(st, 5, now, err)) || (rc = db_exec(db, st, err)))
		goto out;
	rc = changes(db) == 1;
out:
	db_done(st);
	return rc;
}

/* Ends our claim: with new tokens (tok), marking the row needs_reconnect for reason, or just
 * releasing it (neither). */
static int end_claim(pb_db *db, const pb_keyring *kr, const char *id, const char *claim, const entra_token *tok,
		     const char *reason, char *err)
{
	char *at = NULL, *rt = NULL, now[PB_TIME_BUF], exp[PB_TIME_BUF];
	int rc = PB_OK;
	pb_now(now);
	if (tok) {
		if ((rc = seal_str(kr, tok->access_token, "udc", id, "access", &at, err)) ||
		    (tok->refresh_token && (rc = seal_str(kr, tok->refresh_token, "udc", id, "refresh", &rt, err))))
			goto out;
		pb_time_format((int64_t)tok->expires_at * 1000, exp);
		/* COALESCE: Entra may omit a new refresh token; the old one then stays */
		const char *v[] = { at, rt, exp, tok->scope, now, id, claim };
		rc = db_exec_texts(db,
				   "UPDATE user_datasource_connection SET access_token_sealed = ?, "
				   "refresh_token_sealed = COALESCE(?, refresh_token_sealed), expires_at = ?, "
				   "scopes = COALESCE(?, scopes), token_gen = token_gen + 1, refresh_claim = NULL, "
				   "refresh_claim_until = NULL, updated_at = ? WHERE id = ? AND refresh_claim = ?",
				   v, 7, err);
	} else if (reason) {
		const char *binds[] = { id, claim };
		rc = mark_reconnect(db, MARK_SQL "id = ? AND refresh_claim = ?", reason, binds, 2, err);
	} else {
		const char *v[] = { id, claim };
		rc = db_exec_texts(db,
				   "UPDATE user_datasource_connection SET refresh_claim = NULL, refresh_claim_until = NULL "
				   "WHERE id = ? AND refresh_claim = ?",
				   v, 2, err);
	}
out:
	free(at);
	free(rt);
	return rc;
}

/* We hold the claim on row id at generation t->gen: refresh through the caller and store the
 * result. */
static int refresh_claimed(pb_db *db, const pb_keyring *kr, conn_refresh_fn refresh, void *ctx, const char *id,
			   const char *claim, const token_row *t, char **access_token, long long *gen, pb_failure *f)
{
	char *rt = NULL, ignore[PB_ERR_MAX];
	entra_token tok = { 0 };
	int rc;
	if (!t->refresh_sealed || open_str(kr, t->refresh_sealed, "udc", id, "refresh", &rt, ignore)) {
		const char *why = t->refresh_sealed ? CONN_KEYS_CHANGED
						    : "no Power BI sign-in is stored for this connection: reconnect Power BI";
		(void)end_claim(db, kr, id, claim, NULL, why, ignore);
		rc = pb_fail(f, PB_ECONFLICT, "needs_reconnect", "%s", why);
		goto out;
	}
	if ((rc = refresh(ctx, rt, &tok, f))) {
		/* a grant that is gone for good: its explanation is the stored reason */
		bool dead = !strcmp(pb_failure_code(f), "needs_reconnect");
		(void)end_claim(db, kr, id, claim, NULL, dead ? f->message : NULL, ignore);
		goto out;
	}
	if ((rc = end_claim(db, kr, id, claim, &tok, NULL, f->message))) {
		rc = pb_fail_as(f, rc, NULL);
		goto out;
	}
	*access_token = tok.access_token;
	tok.access_token = NULL;
	*gen = t->gen + 1;
out:
	secret_free(rt);
	entra_token_release(&tok);
	return rc;
}

/* c's token columns as read_token_row reads them (copies). */
static int token_row_of(const pbi_conn *c, token_row *t, char *err)
{
	bool ok = true;
	memset(t, 0, sizeof *t);
	xsnprintf(t->status, sizeof t->status, "%s", c->status);
	t->gen = c->token_gen;
	if (pb_time_parse(c->expires_at, &t->expires_ms))
		t->expires_ms = 0;   /* unreadable: treat as expired */
	if ((c->access_sealed && !(t->access_sealed = xstrdup(c->access_sealed))) ||
	    (c->refresh_sealed && !(t->refresh_sealed = xstrdup(c->refresh_sealed))) ||
	    (c->status_reason && !(t->status_reason = xstrdup(c->status_reason))))
		ok = false;
	if (ok)
		return PB_OK;
	token_row_release(t);
	return pb_err(err, PB_ENOMEM, "out of memory");
}

/* conn_token; found (may be NULL): the row conn_find read, its first look at the tokens. */
static int token_of(pb_db *db, const pb_keyring *kr, const char *conn_id, const pbi_conn *found, long long stale_gen,
		    conn_refresh_fn refresh, void *ctx, char **access_token, long long *gen, pb_failure *f)
{
	token_row t = { 0 };
	char claim[PB_ID_BUF];
	int64_t deadline = pb_mono_ms() + PB_PBI_WAIT_MS;
	long long first_gen = -1;
	int rc;
	*access_token = NULL;
	pb_failure_clear(f);
	if ((rc = pb_new_id(claim, f->message)))
		return pb_fail_as(f, rc, NULL);
	for (;;) {
		if (found) {
			rc = token_row_of(found, &t, f->message);
			found = NULL;
			if (rc) {
				rc = pb_fail_as(f, rc, NULL);
				goto out;
			}
		} else if ((rc = read_token_row(db, conn_id, &t, f->message))) {
			rc = pb_fail_as(f, rc == PB_ENOTFOUND ? PB_ECONFLICT : rc, rc == PB_ENOTFOUND ? "not_connected" : NULL);
			goto out;
		}
		if (strcmp(t.status, "active")) {
			/* the stored reason, so every endpoint says the same */
			rc = pb_fail(f, PB_ECONFLICT, "needs_reconnect", "%s",
				     t.status_reason && *t.status_reason ? t.status_reason : RECONNECT_REASON_DEFAULT);
			goto out;
		}
		bool stale = stale_gen >= 0 && t.gen <= stale_gen;
		if (first_gen < 0)
			first_gen = t.gen;
		/* a token another process just fetched is used as long as it is valid at all, so
		 * short-lived tokens do not make every waiter refresh once more in turn */
		int64_t margin = t.gen > first_gen ? 0 : PB_PBI_REFRESH_MARGIN_S * 1000LL;
		if (!stale && t.access_sealed && t.expires_ms - pb_epoch_ms() > margin) {
			if (!open_str(kr, t.access_sealed, "udc", conn_id, "access", access_token, f->message)) {
				*gen = t.gen;
				goto out;
			}
			/* sealed with a key the ring lost: a refresh is the way to a usable token, and
			 * records why the connection is dead when the refresh token cannot be opened either */
			f->message[0] = '\0';
		}
		rc = claim_refresh(db, conn_id, t.gen, claim, f->message);
		if (rc < 0) {
			rc = pb_fail_as(f, rc, NULL);
			goto out;
		}
		if (rc == 1) {
			rc = refresh_claimed(db, kr, refresh, ctx, conn_id, claim, &t, access_token, gen, f);
			goto out;
		}
		/* another process is refreshing this generation: wait for its result */
		if (pb_mono_ms() > deadline) {
			rc = pb_fail(f, PB_EUNAVAIL, NULL, "timed out waiting for another request to refresh the Power BI "
				     "sign-in; try again");
			goto out;
		}
		token_row_release(&t);
		pb_sleep_interruptible(PB_PBI_POLL_MS, NULL);
	}
out:
	token_row_release(&t);
	return rc;
}

int conn_token(pb_db *db, const pb_keyring *kr, const char *conn_id, long long stale_gen, conn_refresh_fn refresh,
	       void *ctx, char **access_token, long long *gen, pb_failure *f)
{
	return token_of(db, kr, conn_id, NULL, stale_gen, refresh, ctx, access_token, gen, f);
}

int conn_token_found(pb_db *db, const pb_keyring *kr, const pbi_conn *c, conn_refresh_fn refresh, void *ctx,
		     char **access_token, long long *gen, pb_failure *f)
{
	return token_of(db, kr, c->id, c, -1, refresh, ctx, access_token, gen, f);
}

/* Re-seals one column's values made with an older key than kr's newest (inside the caller's
 * transaction); *resealed counts them. */
static int reseal_column(pb_db *db, const pb_keyring *kr, const sealed_column *col, size_t *resealed, char *err)
{
	db_stmt *st = NULL;
	char ctx[CTX_MAX], *plain = NULL, *fresh = NULL;
	size_t len = 0;
	int rc, row;
	if ((rc = db_prepare(db, col->select_sql, &st, err)))
		goto out;
	while ((row = db_row(db, st, err)) == 1) {
		const char *key = db_col_text(st, 0), *sealed = db_col_text(st, 1);
		if (!sealed || !pb_sealed_needs_rotation(kr, sealed))
			continue;
		if ((rc = seal_ctx(ctx, col->kind, key, col->field, err)) ||
		    (rc = pb_open(kr, sealed, ctx, &plain, &len, err)) ||
		    (rc = pb_seal(kr, plain, len, ctx, &fresh, err)))
			goto out;
		pb_secret_free(plain, len);
		plain = NULL;
		const char *resealed_row[] = { fresh, key };
		if ((rc = db_exec_texts(db, col->update_sql, resealed_row, 2, err)))
			goto out;
		free(fresh);
		fresh = NULL;
		(*resealed)++;
	}
	rc = row < 0 ? row : PB_OK;
out:
	db_done(st);
	pb_secret_free(plain, len);
	free(fresh);
	return rc;
}

int reseal_columns(pb_db *db, const pb_keyring *kr, const sealed_column *cols, size_t n, size_t *resealed,
		   char *err)
{
	int rc = PB_OK;
	*resealed = 0;
	if (!kr)
		return pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS is not set");
	if ((rc = db_begin(db, err)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		rc = reseal_column(db, kr, &cols[i], resealed, err);
	return db_end(db, rc, err);
}

int conn_rotate(pb_db *db, const pb_keyring *kr, size_t *resealed, char *err)
{
	static const sealed_column cols[] = {
		{ "SELECT id, access_token_sealed FROM user_datasource_connection",
		  "UPDATE user_datasource_connection SET access_token_sealed = ? WHERE id = ?", "udc", "access" },
		{ "SELECT id, refresh_token_sealed FROM user_datasource_connection",
		  "UPDATE user_datasource_connection SET refresh_token_sealed = ? WHERE id = ?", "udc", "refresh" },
		{ "SELECT nonce, code_verifier_sealed FROM oauth_states WHERE used_at IS NULL",
		  "UPDATE oauth_states SET code_verifier_sealed = ? WHERE nonce = ?", "oauth_state", NULL },
	};
	return reseal_columns(db, kr, cols, sizeof cols / sizeof cols[0], resealed, err);
}

/* ---- sign-ins in progress ---- */

void oauth_state_release(oauth_state *s)
{
	free(s->tenant_id);
	free(s->client_id);
	free(s->redirect_uri);
	free(s->return_to);
	secret_free(s->code_verifier);
	memset(s, 0, sizeof *s);
}

bool conn_return_to_ok(const char *p)
{
	size_t n = p ? strlen(p) : 0;
	if (n == 0 || n > PB_RETURN_TO_MAX || p[0] != '/')
		return false;
	/* "//host" and "/\host" are taken by browsers as another host */
	if (p[1] == '/' || p[1] == '\\')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			return false;
	}
	return true;
}

#define STATE_MSG_MAX 256

/* What a state is for: its signed label, the row's purpose, and how messages name it. */
typedef struct state_kind {
	const char *label;      /* first line of the signed text */
	const char *purpose;    /* oauth_states.purpose */
	const char *noun;       /* "Power BI sign-in" */
	const char *again;      /* what the person does next */
} state_kind;

static const state_kind powerbi_kind = { "pbiport-oauth-state-v1", "powerbi", "Power BI sign-in",
					 "start the Power BI connection again" };
static const state_kind signin_kind = { "pbiport-signin-state-v1", "signin", "sign-in with Microsoft",
					"sign in again" };

/* The signed text: a label naming the kind, nonce, expiry, user, org (both "" for a sign-in). */
static int state_message(const state_kind *k, char out[STATE_MSG_MAX], const char *nonce, long long exp_s,
			 const char *org_id, const char *user_id, char *err)
{
	if (xsnprintf(out, STATE_MSG_MAX, "%s\n%s\n%lld\n%s\n%s", k->label, nonce, exp_s, org_id, user_id))
		return pb_err(err, PB_EINVAL, "state too long");
	return PB_OK;
}

static int state_begin(pb_db *db, const pb_keyring *kr, const pb_keyring *signing_keys, const state_kind *k,
		       const oauth_state *in, char **state, char *err)
{
	bool signin = k == &signin_kind;
	char *nonce = NULL, *verifier = NULL, now[PB_TIME_BUF], exp[PB_TIME_BUF], msg[STATE_MSG_MAX];
	char sig[PB_HMAC_B64URL_LEN + 1];
	sbuf out;
	sbuf_init(&out, PB_OAUTH_STATE_MAX);
	*state = NULL;
	int64_t exp_ms = pb_epoch_ms() + PB_OAUTH_STATE_TTL_S * 1000LL;
	long long exp_s = (long long)(exp_ms / 1000);
	int rc;
	if (!signing_keys) {
		rc = pb_err(err, PB_EINVAL, "APPLICATION_SECURITY_REMEMBERME_KEY is not set: sign-in cannot start");
		goto out;
	}
	if ((rc = pb_random_token(32, &nonce, err)) ||
	    (rc = seal_str(kr, in->code_verifier, "oauth_state", nonce, NULL, &verifier, err)) ||
	    (rc = state_message(k, msg, nonce, exp_s, signin ? "" : in->org_id, signin ? "" : in->user_id, err)) ||
	    (rc = pb_keyring_hmac_sign(signing_keys, msg, strlen(msg), sig, err)))
		goto out;
	if (sbuf_addf(&out, "%s.%lld.%s", nonce, exp_s, sig)) {
		rc = pb_err(err, PB_ELIMIT, "state too long");
		goto out;
	}
	pb_now(now);
	pb_time_format(exp_s * 1000, exp);
	/* forget sign-ins that can no longer finish */
	const char *expired[] = { now };
	const char *row[] = { nonce, k->purpose, signin ? NULL : in->org_id, signin ? NULL : in->user_id, in->tenant_id,
			      in->client_id, in->redirect_uri, verifier, in->return_to, signin ? in->id_nonce : NULL,
			      signin && in->with_powerbi ? "1" : "0", exp, now };
	if ((rc = db_exec_texts(db, "DELETE FROM oauth_states WHERE expires_at < ?", expired, 1, err)) ||
	    (rc = db_exec_texts(db,
				"INSERT INTO oauth_states (nonce, purpose, org_id, user_id, tenant_id, client_id, redirect_uri, "
				"code_verifier_sealed, return_to, id_nonce, with_powerbi, expires_at, created_at) "
				"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				row, 13, err)))
		goto out;
	*state = sbuf_detach(&out, NULL);
out:
	sbuf_release(&out);
	free(nonce);
	free(verifier);
	return rc;
}

int oauth_state_begin(pb_db *db, const pb_keyring *kr, const pb_keyring *signing_keys, const oauth_state *in,
		      char **state, char *err)
{
	return state_begin(db, kr, signing_keys, &powerbi_kind, in, state, err);
}

int oauth_signin_begin(pb_db *db, const pb_keyring *kr, const pb_keyring *signing_keys, const oauth_state *in,
		       char **state, char *err)
{
	if (!in->id_nonce[0])
		return pb_err(err, PB_EINTERNAL, "a sign-in needs an ID token nonce");
	return state_begin(db, kr, signing_keys, &signin_kind, in, state, err);
}

/* Splits "<nonce>.<exp>.<sig>" into its parts (pointers into buf). */
static bool split_state(char *buf, char **nonce, long long *exp_s, char **sig)
{
	char *d1 = strchr(buf, '.');
	char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d1 || !d2 || strchr(d2 + 1, '.'))
		return false;
	*d1 = *d2 = '\0';
	*nonce = buf;
	*sig = d2 + 1;
	char *end = NULL;
	long long v = strtoll(d1 + 1, &end, 10);
	if (end == d1 + 1 || *end || v <= 0)
		return false;
	*exp_s = v;
	return strlen(*nonce) == OAUTH_NONCE_BUF - 1 && strlen(*sig) == PB_HMAC_B64URL_LEN;
}

/* The row of nonce (any user). 1 found, 0 none, < 0 error. used: already consumed; *purpose
 * receives the row's purpose. */
static int load_state_row(pb_db *db, const char *nonce, oauth_state *out, bool *used, char purpose[16],
			  char *sealed_verifier[1], char *err)
{
	db_stmt *st = NULL;
	bool ok = true;
	int rc = db_prepare_texts(db,
				  "SELECT org_id, user_id, tenant_id, client_id, redirect_uri, return_to, "
				  "code_verifier_sealed, used_at, purpose, id_nonce, with_powerbi FROM oauth_states "
				  "WHERE nonce = ?",
				  &nonce, 1, &st, err);
	if (rc)
		goto out;
	rc = db_row(db, st, err);
	if (rc != 1)
		goto out;
	if (copy_fixed(out->org_id, sizeof out->org_id, db_col_text(st, 0), err) ||
	    copy_fixed(out->user_id, sizeof out->user_id, db_col_text(st, 1), err) ||
	    copy_fixed(out->nonce, sizeof out->nonce, nonce, err) ||
	    copy_fixed(purpose, 16, db_col_text(st, 8), err) ||
	    copy_fixed(out->id_nonce, sizeof out->id_nonce, db_col_text(st, 9), err)) {
		rc = PB_EIO;
		goto out;
	}
	out->with_powerbi = db_col_int(st, 10) != 0;
	out->tenant_id = db_col_dup(st, 2, &ok);
	out->client_id = db_col_dup(st, 3, &ok);
	out->redirect_uri = db_col_dup(st, 4, &ok);
	out->return_to = db_col_dup(st, 5, &ok);
	sealed_verifier[0] = db_col_dup(st, 6, &ok);
	*used = !db_col_is_null(st, 7);
	if (!ok)
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	return rc;
}

static int state_finish(pb_db *db, const pb_keyring *kr, const pb_keyring *signing_keys, const state_kind *k,
			const char *state, const char *org_id, const char *user_id, oauth_state *out, char *err)
{
	char *buf = NULL, *nonce = NULL, *sig = NULL, *sealed = NULL, msg[STATE_MSG_MAX], now[PB_TIME_BUF];
	char purpose[16] = "";
	long long exp_s = 0;
	bool used = false;
	int rc;
	memset(out, 0, sizeof *out);
	if (!signing_keys)
		return pb_err(err, PB_EINVAL, "APPLICATION_SECURITY_REMEMBERME_KEY is not set");
	if (!state || !*state || strlen(state) > PB_OAUTH_STATE_MAX)
		return pb_err(err, PB_EINVAL, "the sign-in state is missing: %s", k->again);
	if (!(buf = xstrdup(state)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	if (!split_state(buf, &nonce, &exp_s, &sig)) {
		rc = pb_err(err, PB_EINVAL, "the sign-in state is malformed or was altered: %s", k->again);
		goto out;
	}
	if ((rc = state_message(k, msg, nonce, exp_s, org_id, user_id, err)))
		goto out;
	if (!pb_keyring_hmac_verify(signing_keys, msg, strlen(msg), sig)) {
		/* say whether it is someone else's sign-in or a forged one */
		oauth_state other = { 0 };
		char *sv = NULL, p[16] = "";
		bool u = false;
		int r = load_state_row(db, nonce, &other, &u, p, &sv, err);
		bool foreign = r == 1 && !strcmp(p, k->purpose) &&
			       (strcmp(other.user_id, user_id) || strcmp(other.org_id, org_id));
		free(sv);
		oauth_state_release(&other);
		if (foreign)
			rc = pb_err(err, PB_EINVAL, "this %s was started by another user: start it again while signed in as "
				    "yourself", k->noun);
		else
			rc = pb_err(err, PB_EINVAL, "the sign-in state signature is invalid (the link was altered): %s",
				    k->again);
		goto out;
	}
	if (exp_s * 1000 < pb_epoch_ms()) {
		rc = pb_err(err, PB_EINVAL, "the %s took longer than %d minutes and expired: start it again", k->noun,
			    PB_OAUTH_STATE_TTL_S / 60);
		goto out;
	}
	rc = load_state_row(db, nonce, out, &used, purpose, &sealed, err);
	if (rc != 1 || strcmp(purpose, k->purpose)) {
		rc = rc < 0 ? rc : pb_err(err, PB_EINVAL, "this %s is unknown or expired: start it again", k->noun);
		goto out;
	}
	if (used || strcmp(out->user_id, user_id) || strcmp(out->org_id, org_id)) {
		rc = pb_err(err, PB_EINVAL, "this %s link was already used: %s", k->noun, k->again);
		goto out;
	}
	/* single use: the first UPDATE wins, a concurrent replay changes nothing */
	pb_now(now);
	const char *args[] = { now, nonce };
	if ((rc = db_exec_texts(db, "UPDATE oauth_states SET used_at = ? WHERE nonce = ? AND used_at IS NULL", args, 2,
				err)))
		goto out;
	if (changes(db) != 1) {
		rc = pb_err(err, PB_EINVAL, "this %s link was already used: %s", k->noun, k->again);
		goto out;
	}
	if (!sealed || !*sealed) {
		rc = pb_err(err, PB_EINVAL, "the sign-in has no PKCE verifier: %s", k->again);
		goto out;
	}
	if ((rc = open_str(kr, sealed, "oauth_state", nonce, NULL, &out->code_verifier, err)))
		goto out;
out:
	free(sealed);
	free(buf);
	if (rc)
		oauth_state_release(out);
	return rc;
}

int oauth_state_finish(pb_db *db, const pb_keyring *kr, const pb_keyring *signing_keys, const char *state,
		       const char *org_id, const char *user_id, oauth_state *out, char *err)
{
	return state_finish(db, kr, signing_keys, &powerbi_kind, state, org_id, user_id, out, err);
}

int oauth_signin_finish(pb_db *db, const pb_keyring *kr, const pb_keyring *signing_keys, const char *state,
			oauth_state *out, char *err)
{
	return state_finish(db, kr, signing_keys, &signin_kind, state, "", "", out, err);
}
