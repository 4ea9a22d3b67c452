/* Setting up an organization's Power BI app: saving its settings after proving the credentials
 * with Microsoft, and the "Test connection" check. The settings themselves are kept by
 * core/store/powerbi_settings.h, which asks no one outside the database; this module asks
 * Entra (a client-credentials token for Power BI) and Graph (the app's display name) first,
 * outside any transaction. */
#ifndef PBIPORT_POWERBI_SETUP_H
#define PBIPORT_POWERBI_SETUP_H

#include "core/store/powerbi_settings.h"
#include "runtime/failure.h"

/* What a verified save learned besides success. */
typedef struct pbi_setup_saved {
	char warning[PB_ERR_MAX];   /* why the application name stays unknown, or "" */
} pbi_setup_saved;

/* Saves in (pbi_settings_put). With in->verify, first gets a Power BI token with the
 * credentials to save and resolves the app's display name through Graph: credentials Entra
 * refuses are not saved ("bad_credentials"), nor are they when Entra cannot be asked
 * ("unavailable", "throttled"); both messages say how to store them unchecked. Credentials that
 * work but whose name Graph does not give are saved with saved->warning saying so. Otherwise
 * "bad_request" for input to correct (the message names the field), "conflict" when the stored
 * secret changed during the check. saved may be NULL. */
int pbi_setup_save(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
		   const pbi_settings_input *in, pbi_setup_saved *saved, pb_failure *f);

/* Test of the organization's app: a client-credentials token for Power BI, then one for Graph
 * and the app's display name (stored on success). PB_OK with *app_name (new); otherwise f says
 * why: "not_configured", "bad_credentials" (which part: bad secret, unknown tenant or app), a
 * Microsoft failure ("unavailable", ...), or the database's. */
int pbi_setup_test(pb_db *db, const pb_config *cfg, const char *org_id, char **app_name, pb_failure *f);

/* "Test connection" of settings not saved yet (the settings page's form): the app a save of in
 * would use (pbi_settings_candidate: a custom form without a secret uses the stored one), proved
 * as pbi_setup_test proves it, and nothing stored. PB_OK with *app_name (new); otherwise f says
 * why: "bad_request" naming the field, then as pbi_setup_test. */
int pbi_setup_check(pb_db *db, const pb_config *cfg, const char *org_id, const pbi_settings_input *in, char **app_name,
		    pb_failure *f);

#endif
