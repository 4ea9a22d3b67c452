/* A ready-to-use connection to Microsoft on behalf of someone.
 *
 * Two kinds:
 *  - a USER session (delegated): the user's Entra consent stored sealed in
 *    user_datasource_connection (core/store/connections.h). pbi_session_open_user() returns a
 *    session whose access token is valid for at least 5 more minutes, refreshing it first
 *    when needed; when Microsoft reports the token expired mid-call, the msapi refresh
 *    callback refreshes once more through the same path. Refreshes are serialized across
 *    processes on the connection row (compare-and-swap on a token generation), so concurrent
 *    callers refresh once and all use the new token.
 *  - an APP session (client credentials): a service principal given by tenant, client id and
 *    secret (an import integration, a push connection). Tokens are fetched by client
 *    credentials and fetched again when they expire.
 *
 * Every feature (publish, import, refresh, push) gets its msapi client here. cfg gives the base
 * URLs and the extra CA (runtime/config.h; NULL: the public cloud's) and must outlive the session.
 *
 * Failures (pb_failure, runtime/failure.h) say which credentials they are about, since msapi's
 * words do not: "the organization's Power BI settings" (the app a user session acts through),
 * "your Power BI connection" (the user's consent), or the label an app session was opened with
 * ("push connection 'sales'"). Codes beyond those of a Microsoft failure (core/flow/ms_failure.h):
 *   "not_configured"    the organization has no (usable) Power BI settings
 *   "not_connected"     the user has no Power BI connection in this organization
 *   "needs_reconnect"   the user's connection is no longer valid (expired, revoked, another app)
 *
 * Ownership: the caller owns the pbi_session struct; pbi_session_release() frees what the
 * session holds and wipes its tokens (a failed open releases it itself). The HTTP client is
 * shared by the sessions of one thread: use a session on the thread that opened it. */
#ifndef PBIPORT_PBI_SESSION_H
#define PBIPORT_PBI_SESSION_H

#include "core/store/powerbi_settings.h"
#include "msapi/msapi.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/failure.h"

typedef struct pbi_session {
	pb_http *http;      /* the thread's HTTP client, kept across sessions (its connections and
			       TLS sessions reused; it holds no token), or one of the session's own */
	msapi api;          /* ready: token set, refresh callback wired */
	void *priv;         /* owned: what the refresh callback needs (ids, app credentials) */
} pbi_session;

/* What messages call the organization's app, and the user's consent. */
#define PBI_ORG_SETTINGS "the organization's Power BI settings"
#define PBI_USER_CONNECTION "your Power BI connection"

/* The organization's app, secret opened (core/store/powerbi_settings.h pbi_settings_app):
 * "not_configured" (409) when there are no settings, or sso mode while PBIPORT_SSO_* is unset. */
int pbi_org_app(pb_db *db, const pb_config *cfg, const char *org_id, pbi_app *out, pb_failure *f);

/* f from a failed Entra call made with the organization's app for the user: refused app
 * credentials are the organization's settings', a grant that is gone is the user's connection's
 * (needs_reconnect, "reconnect Power BI"). Returns f->rc. */
int pbi_entra_user_fail(const msapi *entra, int rc, pb_failure *f);

/* A session acting for user_id in org_id through their Power BI connection. */
int pbi_session_open_user(pbi_session *s, pb_db *db, const pb_config *cfg, const char *org_id,
			  const char *user_id, pb_failure *f);

/* A session of the app (tenant, client id, secret). credentials names them in messages, e.g.
 * "push connection 'sales'" (NULL: "the app credentials"). */
int pbi_session_open_app(pbi_session *s, const pb_config *cfg, const char *credentials, const char *tenant_id,
			 const char *client_id, const char *client_secret, pb_failure *f);

/* The failure of a call made through s that returned rc (its message written to f->message):
 * the failed token refresh when the call could not renew its token (e.g. needs_reconnect),
 * else Microsoft's failure (ms_fail). Returns f->rc. */
int pbi_session_fail(const pbi_session *s, int rc, pb_failure *f);
/* The same, with the user-facing code named by the caller when Microsoft's failure is of kind
 * (ms_fail_as: a FORBIDDEN create is "no_write_role" in publish). */
int pbi_session_fail_as(const pbi_session *s, int rc, msapi_failure kind, const char *code, pb_failure *f);

void pbi_session_release(pbi_session *s);

/* Rewrites f's message, keeping its rc and code (fmt may take f->message as an argument: a
 * failure put in a caller's words). Returns f->rc. */
int pbi_fail_reword(pb_failure *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
