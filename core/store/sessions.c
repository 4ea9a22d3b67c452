#include "core/store/sessions.h"

#include <string.h>

#include "core/store/identity.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

/* How old a last sighting may get before it is moved: a minute, or half the idle timeout. */
static long long renew_after_s(long long idle_s)
{
	return idle_s / 2 < PB_SESSION_RENEW_S ? idle_s / 2 : PB_SESSION_RENEW_S;
}

int sessions_create(pb_db *db, const char *user_id, const char *token_hash, const char *ua, long long lifetime_s,
		    long long idle_s, char id[PB_ID_BUF], char *err)
{
	char now[PB_TIME_BUF], end[PB_TIME_BUF], idle_since[PB_TIME_BUF];
	int rc = pb_new_id(id, err);
	if (rc || (rc = db_begin(db, err)))
		return rc;
	pb_now(now);
	pb_time_in(lifetime_s * 1000, end);
	pb_time_in(-idle_s * 1000, idle_since);
	/* sessions nobody can use any more */
	const char *ended[] = { now, idle_since };
	const char *row[] = { id, token_hash, user_id, now, now, end, ua };
	if (!(rc = db_exec_texts(db, "DELETE FROM sessions WHERE expires_at < ? OR last_seen_at < ? OR "
				 "revoked_at IS NOT NULL", ended, 2, err)))
		rc = db_exec_texts(db, "INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at, "
				   "user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)", row, 7, err);
	if (!rc)
		return db_commit(db, err);
	db_rollback(db);
	return rc;
}

int sessions_identify(pb_db *db, const char *token_hash, long long idle_s, pb_identity *who, char *err)
{
	db_stmt *st = NULL;
	char session_id[PB_ID_BUF], user_id[PB_ID_BUF];
	int64_t now = pb_epoch_ms(), end_ms = 0, seen_ms = 0;
	bool revoked;
	memset(who, 0, sizeof *who);
	int rc = db_prepare_texts(db, "SELECT id, user_id, expires_at, last_seen_at, revoked_at FROM sessions "
				  "WHERE token_hash = ?", &token_hash, 1, &st, err);
	if (rc)
		goto out;
	int r = db_row(db, st, err);
	if (r <= 0) {
		rc = r < 0 ? r : pb_err(err, PB_ENOTFOUND, "your session has ended: sign in again");
		goto out;
	}
	if (xsnprintf(session_id, sizeof session_id, "%s", db_col_text(st, 0)) ||
	    xsnprintf(user_id, sizeof user_id, "%s", db_col_text(st, 1)) || pb_time_parse(db_col_text(st, 2), &end_ms) ||
	    pb_time_parse(db_col_text(st, 3), &seen_ms)) {
		rc = pb_err(err, PB_EIO, "session row is malformed");
		goto out;
	}
	revoked = !db_col_is_null(st, 4);
	db_done(st);
	st = NULL;
	if (revoked)
		rc = pb_err(err, PB_ENOTFOUND, "this session was signed out: sign in again");
	else if (end_ms <= now)
		rc = pb_err(err, PB_ENOTFOUND, "your session reached its end (signed in too long ago): sign in again");
	else if (seen_ms + idle_s * 1000 <= now)
		rc = pb_err(err, PB_ENOTFOUND, "your session ended after %lld minutes without use: sign in again",
			    idle_s / 60);
	if (rc)
		goto out;
	rc = identity_user_by_id(db, user_id, who, err);
	if (rc == PB_ENOTFOUND)
		rc = pb_err(err, PB_ENOTFOUND, "the user of this session no longer exists");
	if (rc)
		goto out;
	memcpy(who->session_id, session_id, sizeof session_id);
	who->session_renew = now - seen_ms >= renew_after_s(idle_s) * 1000;
out:
	db_done(st);
	if (rc)
		memset(who, 0, sizeof *who);
	return rc;
}

int sessions_seen(pb_db *db, const char *session_id, char *err)
{
	char now[PB_TIME_BUF];
	pb_now(now);
	const char *args[] = { now, session_id, now };
	/* never moves backwards: another process may have written a later time */
	return db_exec_texts(db, "UPDATE sessions SET last_seen_at = ? WHERE id = ? AND revoked_at IS NULL AND "
			     "last_seen_at < ?", args, 3, err);
}

int sessions_list(pb_db *db, const char *user_id, long long idle_s, const char *current_id, json_t **out,
		  char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF], idle_since[PB_TIME_BUF], idle_end[PB_TIME_BUF];
	json_t *list = json_array();
	int rc, r;
	*out = NULL;
	if (!list)
		return pb_err(err, PB_ENOMEM, "out of memory");
	pb_now(now);
	pb_time_in(-idle_s * 1000, idle_since);
	const char *args[] = { user_id, now, idle_since };
	if ((rc = db_prepare_list(db, "SELECT id, created_at, last_seen_at, expires_at, user_agent FROM sessions "
				  "WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? AND last_seen_at > ? "
				  "ORDER BY created_at DESC, id DESC LIMIT ?", args, 3, PB_SESSION_LIST_MAX, &st, err)))
		goto out;
	while ((r = db_row(db, st, err)) == 1) {
		int64_t seen_ms = 0;
		const char *id = db_col_text(st, 0);
		if (pb_time_parse(db_col_text(st, 2), &seen_ms)) {
			rc = pb_err(err, PB_EIO, "session row is malformed");
			goto out;
		}
		pb_time_format(seen_ms + idle_s * 1000, idle_end);
		json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "id", id, "created_at", db_col_text(st, 1),
				      "last_seen_at", db_col_text(st, 2), "expires_at", db_col_text(st, 3),
				      "idle_expires_at", idle_end, "user_agent", db_col_text(st, 4), "current",
				      current_id && !strcmp(current_id, id));
		if (!s || json_array_append_new(list, s)) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (r < 0) {
		rc = r;
		goto out;
	}
	*out = list;
	list = NULL;
out:
	db_done(st);
	json_decref(list);
	return rc;
}

/* Revokes the live session matched by the query of args; PB_ENOTFOUND when none. */
static int revoke(pb_db *db, const char *sql, const char *key, const char *user_id, char *err)
{
	char now[PB_TIME_BUF];
	pb_now(now);
	const char *args[] = { now, key, now, user_id };
	int rc = db_exec_texts(db, sql, args, user_id ? 4 : 3, err);
	if (!rc && db_changes(db) == 0)
		rc = pb_err(err, PB_ENOTFOUND, "no such session (it may have ended already)");
	return rc;
}

int sessions_revoke(pb_db *db, const char *user_id, const char *id, char *err)
{
	return revoke(db, "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ? "
		      "AND user_id = ?", id, user_id, err);
}

int sessions_revoke_hash(pb_db *db, const char *token_hash, char *err)
{
	return revoke(db, "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL AND "
		      "expires_at > ?", token_hash, NULL, err);
}
