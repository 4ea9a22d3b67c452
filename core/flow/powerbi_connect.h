/* Connecting a user's Power BI: the delegated consent (authorization code with PKCE, a signed
 * single-use state, the code exchange, the tokens sealed into the user's connection) and the
 * user's connections (list, check). The HTTP side (GET /powerbi/connect, /powerbi/callback,
 * /api/me/powerbi-connections) is handlers/powerbi_connect.c and me_connections.c; the rows
 * are core/store/connections.h's. Nothing here logs or returns a token, code or verifier.
 *
 * Failures (pb_failure) use the codes of core/flow/pbi_session.h ("not_configured",
 * "not_connected", "needs_reconnect"), Microsoft's (core/flow/ms_failure.h), "bad_request"
 * naming the query parameter, and "consent_declined". */
#ifndef PBIPORT_POWERBI_CONNECT_H
#define PBIPORT_POWERBI_CONNECT_H

#include <jansson.h>
#include <stddef.h>

#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/failure.h"

/* GET /powerbi/connect's parameters, borrowed. */
typedef struct connect_start {
	const char *return_to;      /* local path to come back to; NULL or "": "/" */
	const char *prompt;         /* NULL, "consent", "select_account" or "login" */
	const char *login_hint;     /* NULL or the user's sign-in name */
	const char *redirect_uri;   /* <public URL>/powerbi/callback, registered with the app */
} connect_start;

/* Starts a sign-in for user_id in org_id: checks the parameters ("bad_request" naming
 * ?return_to=, ?prompt= or ?login_hint=) and the organization's app ("not_configured"), records
 * the sign-in (PKCE verifier sealed, expiring) and makes the Entra authorize URL the browser is
 * sent to (*url, new). */
int connect_begin(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const connect_start *in,
		  char **url, pb_failure *f);

/* GET /powerbi/callback's parameters, borrowed (each may be NULL). */
typedef struct connect_answer {
	const char *state;
	const char *code;
	const char *error;               /* Entra's, instead of a code */
	const char *error_description;
} connect_answer;

/* Finishes the sign-in: checks and consumes the state (signature, expiry, owner, single use),
 * exchanges the code with the sign-in's verifier and stores the sealed tokens as the user's
 * connection to the tenant (replacing the one before). *return_to (new) is the local path the
 * browser goes back to; it is set as soon as the state is proven, so it is there on a later
 * failure too (the caller frees it either way; NULL when the state itself was refused). Failures: "bad_request" (the state or the code), "consent_declined"
 * (the consent screen was cancelled or declined, or a permission was not granted), "conflict"
 * (the organization's app changed during the sign-in), "not_configured", and Entra's refusal of
 * the exchange (ms_fail: "bad_credentials" naming the organization's settings, "needs_reconnect"
 * when the code cannot be redeemed, "unavailable", ...). */
int connect_finish(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const connect_answer *in,
		   char **return_to, pb_failure *f);

/* The user's connections in org_id (core/store/connections.h conn_list; *out new), after
 * recording those made with an app the organization no longer uses as needing a reconnect (the
 * deployment's sign-in app can change on the server without a save), so the list says what the
 * token service will do. */
int connect_list(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, json_t **out,
		 pb_failure *f);

/* Uses the user's connection once through the token service (refreshing the token when it is
 * about to expire) and counts the workspaces it can see: proof that publishing can act for the
 * user. */
int connect_check(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, size_t *workspaces,
		  pb_failure *f);

#endif
