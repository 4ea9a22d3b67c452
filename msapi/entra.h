/* Microsoft Entra ID (v2.0) OAuth: client credentials, authorization code with PKCE,
 * refresh with rotation, and the authorize URL.
 *
 * The caller decides where tokens are stored: these functions only return them. Token
 * requests go to $PBIPORT_ENTRA_URL/<tenant>/oauth2/v2.0/token. The code exchange and the
 * refresh are not repeated after a dropped connection (a code is single-use and a rotated
 * refresh token may be spent): the caller gets c->last.outcome_unknown and an error. */
#ifndef PBIPORT_MSAPI_ENTRA_H
#define PBIPORT_MSAPI_ENTRA_H

#include "msapi/msapi.h"

/* Scope strings (reference §1.4). */
#define ENTRA_SCOPE_POWERBI_DEFAULT "https://analysis.windows.net/powerbi/api/.default"
#define ENTRA_SCOPE_FABRIC_DEFAULT  "https://api.fabric.microsoft.com/.default"
#define ENTRA_SCOPE_GRAPH_DEFAULT   "https://graph.microsoft.com/.default"

typedef struct entra_app {
	const char *tenant;          /* tenant id or domain (borrowed) */
	const char *client_id;
	const char *client_secret;   /* secret; may be NULL for public clients */
} entra_app;

/* Every string is new; access_token, refresh_token and id_token are secrets: release with
 * entra_token_release, which wipes them. */
typedef struct entra_token {
	char *access_token;
	char *refresh_token;         /* NULL unless offline_access was granted (never for client credentials) */
	char *id_token;              /* NULL unless openid was requested */
	char *scope;
	long expires_in;             /* seconds, as sent */
	long long expires_at;        /* Unix time (seconds) when the access token expires */
} entra_token;

void entra_token_release(entra_token *t);

/* Client-credentials grant (service principal) for one resource scope, e.g.
 * ENTRA_SCOPE_POWERBI_DEFAULT. */
int entra_client_credentials(msapi *c, const entra_app *app, const char *scope, entra_token *out, char *err);

/* Exchanges an authorization code (PKCE verifier required). redirect_uri must equal the
 * one used at authorize; scope may be NULL. */
int entra_exchange_code(msapi *c, const entra_app *app, const char *code, const char *redirect_uri,
			const char *code_verifier, const char *scope, entra_token *out, char *err);

/* Refresh grant. The reply carries a NEW refresh token: store it in place of the old one. */
int entra_refresh(msapi *c, const entra_app *app, const char *refresh_token, const char *scope,
		  entra_token *out, char *err);

/* PKCE pair: verifier = 43 base64url chars of 32 random bytes; challenge =
 * base64url(SHA-256(verifier)) (method S256). */
typedef struct entra_pkce {
	char verifier[44];
	char challenge[44];
} entra_pkce;
int entra_pkce_new(entra_pkce *p, char *err);
/* The S256 challenge of a verifier into out[44]. */
int entra_pkce_challenge(const char *verifier, char out[44], char *err);

typedef struct entra_authorize {
	const char *tenant;
	const char *client_id;
	const char *redirect_uri;
	const char *scope;           /* space-separated; add offline_access for a refresh token */
	const char *state;
	const char *code_challenge;  /* S256 */
	const char *prompt;          /* NULL, "consent", "login", "select_account", "none" */
	const char *login_hint;      /* may be NULL */
	const char *nonce;           /* OpenID Connect: the nonce the ID token must carry; may be NULL */
} entra_authorize;

/* Builds the authorize URL (response_type=code, response_mode=query). *url is new. */
int entra_authorize_url(const msapi *c, const entra_authorize *a, char **url, char *err);

/* Entra's answer to the redirect URI without a code (?error=&error_description=): recorded in
 * c->last as a failed call would be (code: error; message: the description's first line, printable
 * ASCII), classified once here: access_denied (the user cancelled or declined the consent screen)
 * is MSAPI_FORBIDDEN; interaction_required, login_required, consent_required and
 * account_selection_required MSAPI_REAUTHENTICATE; temporarily_unavailable and server_error
 * MSAPI_UNAVAILABLE (PB_EIO); anything else MSAPI_REJECTED. Writes the message into err and
 * returns the pb_rc (PB_EINVAL unless unavailable). */
int entra_authorize_failed(msapi *c, const char *error, const char *description, char *err);

#endif
