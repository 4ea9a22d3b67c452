/* A ready-to-use connection to Microsoft on behalf of someone.
 *
 * Two kinds:
 *  - a USER session (delegated): the user's Entra consent stored sealed in
 *    user_datasource_connection (see core/store/connections.c). pbi_session_user() returns a
 *    session whose access token is valid for at least 5 more minutes, refreshing it
 *    first when needed; when Microsoft reports the token expired mid-call, the msapi
 *    refresh callback refreshes once more through the same path. Refreshes are
 *    serialized across processes on the connection row (compare-and-swap on a token
 *    generation), so concurrent callers refresh once and all use the new token.
 *  - an APP session (client credentials): a service principal given by tenant, client
 *    id and secret (an import integration, a push connection). Tokens are fetched by
 *    client credentials and fetched again when they expire.
 *
 * Every later feature (publish, import, refresh, push) gets its msapi client here. cfg gives
 * the base URLs and the extra CA (runtime/config.h; NULL: the public cloud's) and must outlive
 * the session.
 *
 * Error codes (written to code[PBI_CODE_MAX] when not NULL), for messages a user can act on:
 *   "not_connected"     the user has no Power BI connection in this org: connect first
 *   "needs_reconnect"   Entra refused the refresh token (invalid_grant): reconnect Power BI
 *   "not_configured"    the organization's Power BI settings are missing
 *   "bad_credentials"   client credentials refused (bad secret, unknown tenant or app)
 *   "unavailable"       Entra could not be reached (transient)
 *
 * Ownership: the caller owns the pbi_session struct; pbi_session_release() frees what the
 * session holds and wipes its tokens. */
#ifndef PBIPORT_PBI_SESSION_H
#define PBIPORT_PBI_SESSION_H

#include "msapi/msapi.h"
#include "runtime/config.h"
#include "runtime/db.h"

#define PBI_CODE_MAX 32

typedef struct pbi_session {
	pb_http *http;      /* owned */
	msapi api;          /* ready: token set, refresh callback wired */
	void *priv;         /* owned: what the refresh callback needs (ids, app credentials) */
} pbi_session;

int pbi_session_user(pbi_session *s, pb_db *db, const pb_config *cfg, const char *org_id,
		     const char *user_id, char code[PBI_CODE_MAX], char *err);

int pbi_session_app(pbi_session *s, const pb_config *cfg, const char *tenant_id, const char *client_id,
		    const char *client_secret, char code[PBI_CODE_MAX], char *err);

void pbi_session_release(pbi_session *s);

/* The error code (see above) of the last token refresh that failed inside an msapi call
 * made with s->api, e.g. "needs_reconnect" when Entra refused the refresh token mid-call;
 * "" when none failed. Borrowed until pbi_session_release. */
const char *pbi_session_code(const pbi_session *s);

#endif
