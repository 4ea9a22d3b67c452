/* The store of per-organization Power BI settings (table powerbi_settings): which Entra
 * application pbiport uses for the organization.
 *
 *  - mode "sso": the deployment's sign-in app (PBIPORT_SSO_TENANT_ID / _CLIENT_ID /
 *    _CLIENT_SECRET, read by runtime/config); nothing secret is stored.
 *  - mode "custom": tenant id, client id, and the client secret sealed with the key ring
 *    (context "powerbi_settings:<org id>"). The secret is never returned.
 *
 * Owns the table powerbi_settings; no other module writes it. */
#ifndef PBIPORT_POWERBI_SETTINGS_H
#define PBIPORT_POWERBI_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>

#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/limits.h"

typedef struct pbi_settings {
	char mode[8];               /* "sso" or "custom" */
	char *tenant_id;            /* new; the effective value (sso: the deployment's), may be NULL */
	char *client_id;            /* new; as tenant_id */
	bool has_client_secret;
	char *application_name;     /* new; resolved when saved (or by the last successful test), or NULL */
	char updated_at[PB_TIME_BUF];
} pbi_settings;

/* The organization's settings; PB_ENOTFOUND when none were saved. Release with
 * pbi_settings_release (also after an error). */
int pbi_settings_get(pb_db *db, const pb_config *cfg, const char *org_id, pbi_settings *out, char *err);
void pbi_settings_release(pbi_settings *s);
/* {mode, tenant_id, client_id, has_client_secret, application_name, redirect_uri, updated_at}:
 * new reference; never the secret. redirect_uri may be NULL (then JSON null). */
json_t *pbi_settings_json(const pbi_settings *s, const char *redirect_uri);

typedef struct pbi_settings_input {
	const char *mode;           /* "sso" / "custom" (required) */
	const char *tenant_id;      /* custom: required */
	const char *client_id;      /* custom: required (a GUID) */
	const char *client_secret;  /* custom: NULL keeps the stored one (required the first time) */
	bool verify;                /* prove the credentials with Entra first and store the app's name */
} pbi_settings_input;

/* What a check of the credentials with Microsoft proved before a save (core/flow/powerbi_setup.h):
 * both borrowed for the call. */
typedef struct pbi_settings_verified {
	const char *app_name;       /* the app's display name, or NULL when Graph did not give it */
	const char *kept_sealed;    /* custom without a new secret: the sealed secret that was checked */
} pbi_settings_verified;

/* Validates and saves (insert or replace) in one transaction; asks no one outside the database.
 * PB_EINVAL with a message a user can act on: sso without PBIPORT_SSO_* set, custom without ids
 * or secret, malformed ids, no key ring configured. verified (may be NULL: not checked) gives the
 * name to store and, when the stored secret was kept, the sealed text that was checked: a secret
 * changed meanwhile is refused with PB_ECONFLICT. Without verified the name is kept while the
 * app stays the same, else forgotten. Connections made with another app are marked
 * needs_reconnect. */
int pbi_settings_put(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
		     const pbi_settings_input *in, const pbi_settings_verified *verified, char *err);

/* Whether some organization uses the deployment's sign-in app for Power BI (mode "sso"): then
 * signing in with Microsoft asks for the Power BI permissions in the same consent. */
int pbi_settings_sso_in_use(pb_db *db, bool *used, char *err);

/* Records the display name resolved by a successful test. */
int pbi_settings_set_app_name(pb_db *db, const char *org_id, const char *name, char *err);

/* The application to act with, secret opened (sso: copied from cfg). Every string is new;
 * release with pbi_app_release, which wipes the secret. PB_ENOTFOUND when the
 * organization has no settings (or sso mode while PBIPORT_SSO_* is unset). */
typedef struct pbi_app {
	char *tenant_id;
	char *client_id;
	char *client_secret;        /* secret */
} pbi_app;
int pbi_settings_app(pb_db *db, const pb_config *cfg, const char *org_id, pbi_app *out, char *err);
void pbi_app_release(pbi_app *a);
/* The app a save of in would store, secret opened (custom without a new secret: the stored
 * one, and *kept the sealed text it was opened from, new; else *kept NULL). Same input checks
 * as pbi_settings_put. Release with pbi_app_release. */
int pbi_settings_candidate(pb_db *db, const pb_config *cfg, const char *org_id, const pbi_settings_input *in,
			   pbi_app *out, char **kept, char *err);

/* Re-seals every stored client secret made with an older key (rotate-keys).
 * *resealed counts them. */
int pbi_settings_rotate(pb_db *db, const pb_config *cfg, size_t *resealed, char *err);

/* Entra tenant ids (GUID or domain): 1..PB_PBI_ID_MAX of [A-Za-z0-9.-_]. */
bool pbi_id_valid(const char *s);

#endif
