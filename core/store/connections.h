/* The store of users' delegated Power BI consent (table user_datasource_connection) and of
 * sign-ins in progress (table oauth_states), plus the token service on top of them.
 *
 * Secrets (access token, refresh token, PKCE verifier) are sealed with the key ring under a
 * context naming the row and the field ("udc:<id>:access"), so a sealed value moved to
 * another row or column does not open. Nothing here logs or returns a secret except
 * conn_token(), whose caller uses the access token for one Microsoft call.
 *
 * Refresh (conn_token): a caller that needs a new access token claims the row for its
 * token generation with one UPDATE ... WHERE token_gen = ? AND no live claim (a
 * compare-and-swap that works across processes); only the winner redeems the refresh token
 * (through the caller's conn_refresh_fn: this store asks no one outside the database), then
 * stores the new tokens with token_gen + 1. Everyone else re-reads the row every
 * PB_PBI_POLL_MS until the generation moves (or a crashed winner's claim expires after
 * PB_PBI_CLAIM_MS), and uses the new token. A grant Entra no longer accepts marks the row
 * needs_reconnect and erases its tokens.
 *
 * Owns the tables user_datasource_connection and oauth_states. */
#ifndef PBIPORT_CONNECTIONS_H
#define PBIPORT_CONNECTIONS_H

#include <jansson.h>
#include <stdbool.h>

#include "msapi/entra.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/failure.h"

/* Delegated scopes asked for at consent and at every refresh. */
#define CONN_SCOPES                                                                                      \
	"https://analysis.windows.net/powerbi/api/Workspace.Read.All "                                 \
	"https://analysis.windows.net/powerbi/api/Dataset.ReadWrite.All "                              \
	"https://analysis.windows.net/powerbi/api/Item.ReadWrite.All "                                 \
	"https://analysis.windows.net/powerbi/api/Connection.ReadWrite.All offline_access"

/* One connection row; its tokens only as conn_find read them sealed, for conn_token_found.
 * Strings are new: release with conn_release. */
typedef struct pbi_conn {
	char id[PB_ID_BUF];
	char org_id[PB_ID_BUF];
	char user_id[PB_ID_BUF];
	char *tenant_id;
	char *client_id;
	char *scopes;                 /* space-separated, as granted */
	char status[16];              /* "active" / "needs_reconnect" */
	char *status_reason;          /* why it needs a reconnect, or NULL */
	char expires_at[PB_TIME_BUF]; /* access token expiry */
	long long token_gen;
	char created_at[PB_TIME_BUF];
	char updated_at[PB_TIME_BUF];
	char *access_sealed;          /* conn_find only (else NULL): for conn_token_found */
	char *refresh_sealed;
} pbi_conn;
void conn_release(pbi_conn *c);

/* Stores a fresh consent: replaces the user's connection to the same tenant (so there is at
 * most one per tenant) in one transaction. tok must carry an access and a refresh token.
 * id receives the row id (a new one each time). */
int conn_save(pb_db *db, const pb_keyring *kr, const char *org_id, const char *user_id, const char *tenant_id,
	      const char *client_id, const entra_token *tok, char id[PB_ID_BUF], char *err);

/* The user's connections in org as a JSON array (new reference) of {id, tenant_id, client_id,
 * status, status_reason (null while active), scopes[], expires_at, created_at, updated_at}:
 * no tokens. The status is the stored one, the same the token service acts on. */
int conn_list(pb_db *db, const char *org_id, const char *user_id, json_t **out, char *err);

/* Erases the tokens and removes the row, only when it belongs to user in org;
 * PB_ENOTFOUND otherwise (another user's or org's id looks like a missing one). */
int conn_delete(pb_db *db, const char *org_id, const char *user_id, const char *id, char *err);

/* The user's connection to tenant_id in org (tenant_id NULL: the most recently updated).
 * PB_ENOTFOUND when none. */
int conn_find(pb_db *db, const char *org_id, const char *user_id, const char *tenant_id, pbi_conn *out,
	      char *err);

/* The status is stored once and read by everyone: whichever path learns that a connection can
 * no longer be used marks it needs_reconnect with the reason, one line a user can act on, which
 * the token service then answers with (and its tokens are erased). Reasons used by more than
 * one module: */
#define CONN_APP_CHANGED "the organization's Power BI app changed since you connected: reconnect Power BI"
#define CONN_KEYS_CHANGED                                                                          \
	"your stored Power BI sign-in cannot be opened with this server's keys "                      \
	"(APPLICATION_ENCRYPTION_KEYS changed): reconnect Power BI"

/* Marks connection id needs_reconnect for reason (no-op when it is already). */
int conn_mark_needs_reconnect(pb_db *db, const char *id, const char *reason, char *err);

/* Marks every active connection in org made with another app than (tenant_id, client_id)
 * needs_reconnect: the organization's app changed, and a refresh token only works with the
 * app it was granted to. */
int conn_mark_app_changed(pb_db *db, const char *org_id, const char *tenant_id, const char *client_id, char *err);

/* How the token service redeems a refresh token: the caller's (core/flow/pbi_session.c asks
 * Entra). Fills *out, or f with why not; a failure with the code "needs_reconnect" means the grant
 * is gone for good: the connection is then marked needs_reconnect with f->message as the reason
 * (and its tokens erased). */
typedef int (*conn_refresh_fn)(void *ctx, const char *refresh_token, entra_token *out, pb_failure *f);

/* A valid access token of connection conn_id (expiring no sooner than PB_PBI_REFRESH_MARGIN_S
 * from now), redeeming the stored refresh token through refresh (with ctx) when needed.
 * stale_gen >= 0 forces a refresh unless the row has moved past that generation already (a
 * token Microsoft called expired). *access_token is new (secret: pb_secret_free); *gen its
 * generation. On failure f says why: "not_connected" (the connection was removed),
 * "needs_reconnect" (its stored status, a refresh token this server cannot open, or refresh's
 * verdict), "unavailable" (another process's refresh did not end in time), refresh's own failure,
 * or the database's. */
int conn_token(pb_db *db, const pb_keyring *kr, const char *conn_id, long long stale_gen, conn_refresh_fn refresh,
	       void *ctx, char **access_token, long long *gen, pb_failure *f);
/* conn_token(c->id, stale_gen -1) for a connection conn_find just read: its first look at the
 * tokens is the row c holds (no read of its own; a refresh claims the row as conn_token does). */
int conn_token_found(pb_db *db, const pb_keyring *kr, const pbi_conn *c, conn_refresh_fn refresh, void *ctx,
		     char **access_token, long long *gen, pb_failure *f);

/* A sealed column for key rotation: select_sql yields (row key, sealed value), update_sql
 * takes (?1 the value sealed again, ?2 the row key). Values are sealed under the context
 * "<kind>:<row key>[:<field>]" (field may be NULL). */
typedef struct sealed_column {
	const char *select_sql;
	const char *update_sql;
	const char *kind;
	const char *field;
} sealed_column;

/* Re-seals, in one transaction, every value of the n columns made with an older key than kr's
 * newest; *resealed counts them. Nothing is written when one fails. */
int reseal_columns(pb_db *db, const pb_keyring *kr, const sealed_column *cols, size_t n, size_t *resealed,
		   char *err);

/* Re-seals every connection token and PKCE verifier made with an older key; counts them. */
int conn_rotate(pb_db *db, const pb_keyring *kr, size_t *resealed, char *err);

/* ---- sign-ins in progress ---- */

#define OAUTH_NONCE_BUF 44   /* base64url of 32 random bytes + NUL */

/* A started sign-in. Strings new; code_verifier is a secret. Release with oauth_state_release. */
typedef struct oauth_state {
	char nonce[OAUTH_NONCE_BUF];
	char org_id[PB_ID_BUF];       /* a sign-in with Microsoft: "" (nobody yet) */
	char user_id[PB_ID_BUF];      /* as org_id */
	char *tenant_id;
	char *client_id;
	char *redirect_uri;
	char *return_to;
	char *code_verifier;
	char id_nonce[OAUTH_NONCE_BUF];   /* a sign-in with Microsoft: the nonce the ID token must carry */
	bool with_powerbi;                /* a sign-in with Microsoft that asked for Power BI too */
} oauth_state;
void oauth_state_release(oauth_state *s);

/* Records a new sign-in (expires PB_OAUTH_STATE_TTL_S from now; also drops expired rows) and
 * makes the state parameter: "<nonce>.<expiry epoch s>.<HMAC>" signed with signing_keys over
 * nonce, expiry, user and org. *state is new. */
int oauth_state_begin(pb_db *db, const pb_keyring *kr, const pb_keyring *signing_keys, const oauth_state *in,
		      char **state, char *err);

/* Checks a state parameter for (org_id, user_id) and consumes it: signature, expiry, owner and
 * single use, in that spirit; the row is marked used at once, so a replay fails. PB_EINVAL
 * with a message saying which check failed. *out is filled on success. */
int oauth_state_finish(pb_db *db, const pb_keyring *kr, const pb_keyring *signing_keys, const char *state,
		       const char *org_id, const char *user_id, oauth_state *out, char *err);

/* The same for signing in with Microsoft (core/flow/sso.h): a state of its own kind (label and
 * purpose), owned by nobody, that also keeps in->id_nonce and in->with_powerbi. A Power BI state
 * does not finish a sign-in, nor the other way round. */
int oauth_signin_begin(pb_db *db, const pb_keyring *kr, const pb_keyring *signing_keys, const oauth_state *in,
		       char **state, char *err);
int oauth_signin_finish(pb_db *db, const pb_keyring *kr, const pb_keyring *signing_keys, const char *state,
			oauth_state *out, char *err);

/* True for a safe local redirect target: starts with one '/', then no '/' or '\' right
 * after it, no backslash, no control characters, no scheme; at most PB_RETURN_TO_MAX bytes. */
bool conn_return_to_ok(const char *path);

#endif
