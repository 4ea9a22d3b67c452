/* Setting up an organization's Power BI app: saving its settings after proving the credentials
 * with Microsoft, and the "Test connection" check. The settings themselves are kept by
 * core/store/powerbi_settings.h, which asks no one outside the database; this module asks
 * Entra (a client-credentials token for Power BI) and Graph (the app's display name) first,
 * outside any transaction. */
#ifndef PBIPORT_POWERBI_SETUP_H
#define PBIPORT_POWERBI_SETUP_H

#include "core/store/powerbi_settings.h"

/* Saves in (pbi_settings_put). With in->verify, first gets a Power BI token with the
 * credentials to save and resolves the app's display name through Graph: credentials Entra
 * refuses are not saved (saved->code "bad_credentials", or "unavailable" when Entra could not
 * be asked); credentials that work but whose name Graph does not give are saved with
 * saved->warning saying so. saved may be NULL. */
int pbi_setup_save(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			  const pbi_settings_input *in, pbi_settings_saved *saved, char *err);

/* Test of the organization's app: a client-credentials token for Power BI, then one for
 * Graph and the app's display name (stored on success). PB_OK with *app_name (new);
 * otherwise the message says why (bad secret, unknown tenant, app not found, unreachable). */
int pbi_setup_test(pb_db *db, const pb_config *cfg, const char *org_id, char **app_name, char *err);

#endif
