/* The store of browser sessions (table sessions): who signed in with Microsoft in which browser
 * (core/flow/sso.h), until when.
 *
 * A session is found by the SHA-256 of the secret in its cookie (runtime/auth.h makes and checks
 * the cookie); its id is the public name the profile page shows and revokes. It ends at its
 * absolute end (lifetime from sign-in), after the idle timeout without a request, or when revoked
 * (sign-out, DELETE /api/me/sessions/{id}). The last sighting moves at most every
 * PB_SESSION_RENEW_S (half the idle timeout when that is shorter), so a signed-in request
 * does not write.
 *
 * Owns the table sessions; no other module writes it. */
#ifndef PBIPORT_SESSIONS_H
#define PBIPORT_SESSIONS_H

#include <jansson.h>

#include "runtime/auth.h"
#include "runtime/db.h"

/* Starts a session of user_id for the secret hashing to token_hash, with the user agent
 * summary ua, ending lifetime_s from now at the latest; id receives its public id. Sessions
 * that have ended (past their end, idle for idle_s, or revoked) are dropped on the way. */
int sessions_create(pb_db *db, const char *user_id, const char *token_hash, const char *ua, long long lifetime_s,
		    long long idle_s, char id[PB_ID_BUF], char *err);

/* pb_auth_ops.session_by_hash: fills *who for the live session of token_hash. */
int sessions_identify(pb_db *db, const char *token_hash, long long idle_s, pb_identity *who, char *err);
/* pb_auth_ops.session_seen: the session was seen now. */
int sessions_seen(pb_db *db, const char *session_id, char *err);

/* The live sessions of user_id, newest first (at most PB_SESSION_LIST_MAX), as a JSON array
 * (new reference) of {id, created_at, last_seen_at, expires_at, idle_expires_at, user_agent,
 * current}; current is true for current_id (may be NULL). No secret or hash goes out. */
int sessions_list(pb_db *db, const char *user_id, long long idle_s, const char *current_id, json_t **out,
		  char *err);

/* Revokes session id of user_id. PB_ENOTFOUND when user_id has no live session of that id
 * (another user's id looks like a missing one). */
int sessions_revoke(pb_db *db, const char *user_id, const char *id, char *err);

/* Revokes the session of token_hash (signing out); PB_ENOTFOUND when none is live. */
int sessions_revoke_hash(pb_db *db, const char *token_hash, char *err);

#endif
