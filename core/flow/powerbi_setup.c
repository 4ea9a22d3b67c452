#include "core/flow/powerbi_setup.h"

#include <stdlib.h>
#include <string.h>

#include "core/flow/ms_failure.h"
#include "core/flow/pbi_session.h"
#include "msapi/entra.h"
#include "msapi/graph.h"
#include "runtime/util.h"

/* Proves app's credentials (named credentials in messages) with a Power BI token (client
 * credentials), then reads the app's display name through Graph. PB_OK with *name (new), or
 * PB_OK with *name NULL and Graph's refusal in *unnamed when only the name is missing.
 * Otherwise f says why (the credentials were refused, Microsoft could not be asked). */
static int app_verify(const pb_config *cfg, const char *credentials, const pbi_app *app, char **name,
		      pb_failure *unnamed, pb_failure *f)
{
	pbi_session pbi = { 0 };
	entra_token graph_tok = { 0 };
	*name = NULL;
	pb_failure_clear(unnamed);
	int rc = pbi_session_open_app(&pbi, cfg, credentials, app->tenant_id, app->client_id, app->client_secret, f);
	if (rc)
		return rc;
	entra_app ea = { app->tenant_id, app->client_id, app->client_secret };
	if ((rc = entra_client_credentials(&pbi.api, &ea, ENTRA_SCOPE_GRAPH_DEFAULT, &graph_tok, f->message)) ||
	    (rc = msapi_set_token(&pbi.api, graph_tok.access_token, f->message)) ||
	    (rc = graph_app_display_name(&pbi.api, app->client_id, name, f->message))) {
		/* the Power BI token proved the credentials; only the name is missing, unless
		 * Microsoft could not be reached */
		if ((rc = ms_fail(&pbi.api, rc, f)) != PB_EUNAVAIL) {
			pbi_fail_reword(f, "the credentials work, but Graph did not give the app's name: %s", f->message);
			*unnamed = *f;
			pb_failure_clear(f);
			rc = PB_OK;
		}
	}
	entra_token_release(&graph_tok);
	pbi_session_release(&pbi);
	return rc;
}

int pbi_setup_save(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
		   const pbi_settings_input *in, pbi_setup_saved *saved, pb_failure *f)
{
	pbi_setup_saved ignored;
	pbi_app cand = { 0 };
	pb_failure unnamed;
	char *kept = NULL, *name = NULL;
	int rc = PB_OK;
	if (!saved)
		saved = &ignored;
	memset(saved, 0, sizeof *saved);
	pb_failure_clear(f);
	if (!in->verify) {
		rc = pbi_settings_put(db, cfg, org_id, user_id, in, NULL, f->message);
		return rc ? pb_fail_as(f, rc, NULL) : PB_OK;
	}
	/* asked before the save's transaction, which must not wait on Microsoft */
	if ((rc = pbi_settings_candidate(db, cfg, org_id, in, &cand, &kept, f->message))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if ((rc = app_verify(cfg, "the credentials in this request", &cand, &name, &unnamed, f))) {
		if (rc == PB_EUNAVAIL)
			pbi_fail_reword(f, "%s; they could not be checked, so they were not saved (try again, or send "
					"\"verify\": false to store them unchecked)", f->message);
		else
			pbi_fail_reword(f, "%s; they were not saved (to store them unchecked, send \"verify\": false)",
					f->message);
		goto out;
	}
	memcpy(saved->warning, unnamed.message, sizeof saved->warning);
	pbi_settings_verified proved = { .app_name = name, .kept_sealed = kept };
	if ((rc = pbi_settings_put(db, cfg, org_id, user_id, in, &proved, f->message)))
		pb_fail_as(f, rc, NULL);
out:
	free(kept);
	free(name);
	pbi_app_release(&cand);
	return rc;
}

/* app_verify where a missing name fails the test too: *app_name (new) on PB_OK. */
static int app_named(const pb_config *cfg, const char *credentials, const pbi_app *app, char **app_name,
		     pb_failure *f)
{
	pb_failure unnamed;
	int rc = app_verify(cfg, credentials, app, app_name, &unnamed, f);
	if (!rc && !*app_name) {
		*f = unnamed;
		rc = f->rc;
	}
	return rc;
}

int pbi_setup_test(pb_db *db, const pb_config *cfg, const char *org_id, char **app_name, pb_failure *f)
{
	pbi_app app = { 0 };
	*app_name = NULL;
	pb_failure_clear(f);
	int rc = pbi_org_app(db, cfg, org_id, &app, f);
	if (!rc)
		rc = app_named(cfg, PBI_ORG_SETTINGS, &app, app_name, f);
	if (!rc && (rc = pbi_settings_set_app_name(db, org_id, *app_name, f->message)))
		pb_fail_as(f, rc, NULL);
	pbi_app_release(&app);
	if (rc) {
		free(*app_name);
		*app_name = NULL;
	}
	return rc;
}

int pbi_setup_check(pb_db *db, const pb_config *cfg, const char *org_id, const pbi_settings_input *in, char **app_name,
		    pb_failure *f)
{
	pbi_app cand = { 0 };
	char *kept = NULL;
	*app_name = NULL;
	pb_failure_clear(f);
	int rc = pbi_settings_candidate(db, cfg, org_id, in, &cand, &kept, f->message);
	if (rc)
		pb_fail_as(f, rc, NULL);
	else
		rc = app_named(cfg, "the credentials in the form", &cand, app_name, f);
	free(kept);
	pbi_app_release(&cand);
	return rc;
}
