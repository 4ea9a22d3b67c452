/* Signing in with Microsoft: OpenID Connect authorization code flow with PKCE against the
 * deployment's Entra app (PBIPORT_SSO_TENANT_ID / _CLIENT_ID / _CLIENT_SECRET), ending in a
 * pbiport session (core/store/sessions.h). docs/signin.md tells it for people.
 *
 *  begin   a sign-in state (signed, single use, PB_OAUTH_STATE_TTL_S; core/store/connections.h),
 *          a PKCE verifier, and a random browser secret kept in a short cookie; the ID token's
 *          nonce is the hash of that secret, so only the browser that started the sign-in can
 *          finish it. The authorize URL asks for openid profile email, plus the Power BI
 *          permissions when APPLICATION_POWERBI_WEB_ENABLED and some organization uses this app
 *          for Power BI (mode "sso"): signing in and connecting Power BI are then one consent.
 *  finish  consumes the state, checks the browser, exchanges the code, checks the ID token
 *          (msapi/oidc.h: signature by the tenant's published keys, cached in the database and
 *          fetched again on an unknown key at most once a minute; issuer, audience, expiry,
 *          nonce, tenant), finds the person's pbiport user, starts a session, and stores the
 *          Power BI connection when the consent included it and the user's organization uses
 *          this app for Power BI.
 *
 * Finding the user: by the Entra account (tid, oid) the user is pinned to; else, on a first
 * sign-in, by e-mail: the token's email or preferred_username equal to a user's e-mail or name
 * (only in the deployment's own tenant, or in the tenant the user's organization lets sign up),
 * which then pins the user to the account, so a later e-mail change does not matter; else, when
 * an organization lets its tenant sign up, a new member of it. Anyone else is refused.
 *
 * Failures (pb_failure codes, docs/errors.md "Signing in"): invalid_state, signin_declined,
 * signin_failed, invalid_callback, invalid_id_token, signin_unknown_user, signin_conflict,
 * unavailable. Nothing here logs or returns a code, token, verifier or secret. */
#ifndef PBIPORT_SSO_H
#define PBIPORT_SSO_H

#include <stdbool.h>

#include "runtime/auth.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/failure.h"

#define SSO_BROWSER_COOKIE "pbiport_signin"   /* Path=/signin, for the sign-in's lifetime */
#define SSO_SCOPES "openid profile email"

typedef struct sso_begin_in {
	const char *return_to;        /* a local path (conn_return_to_ok) */
	const char *redirect_uri;     /* <site>/signin/callback */
	const char *prompt;           /* NULL, "login", "select_account", "consent" */
	const char *login_hint;       /* may be NULL */
} sso_begin_in;

typedef struct sso_begin_out {
	char *authorize_url;          /* new */
	char *browser_secret;         /* new secret: the SSO_BROWSER_COOKIE value */
	bool with_powerbi;            /* the Power BI permissions are asked for too */
} sso_begin_out;

/* Starts a sign-in. PB_EINVAL (code bad_request) for a bad return_to or prompt. Release *out
 * with sso_begin_release (also after an error). */
int sso_begin(pb_db *db, const pb_config *cfg, const sso_begin_in *in, sso_begin_out *out, pb_failure *f);
void sso_begin_release(sso_begin_out *out);

/* What the callback received; every string may be NULL (borrowed). */
typedef struct sso_finish_in {
	const char *state;
	const char *code;
	const char *error;            /* Entra's error, when the sign-in did not happen */
	const char *error_description;
	const char *browser_secret;   /* the SSO_BROWSER_COOKIE value */
	const char *user_agent;       /* the User-Agent header */
} sso_finish_in;

typedef struct sso_finish_out {
	char cookie[PB_SESSION_COOKIE_BUF];   /* secret: the PB_SESSION_COOKIE value */
	char *return_to;                      /* new: where the sign-in started */
	pb_identity who;                      /* the person signed in (via PB_VIA_SESSION) */
	bool signed_up;                       /* a new user was made (self-sign-up) */
	bool powerbi_connected;               /* the Power BI connection was stored too */
	char powerbi_note[PB_ERR_MAX];        /* why Power BI was asked for but not stored, or "" */
} sso_finish_out;

/* Finishes a sign-in and starts the session. Release *out with sso_finish_release. */
int sso_finish(pb_db *db, const pb_config *cfg, const sso_finish_in *in, sso_finish_out *out, pb_failure *f);
void sso_finish_release(sso_finish_out *out);

#endif
