#include "core/flow/powerbi_setup.h"

#include <string.h>

#include "core/flow/pbi_session.h"
#include "core/store/connections.h"
#include "msapi/graph.h"
#include "runtime/util.h"

static void copy_text(char *dst, size_t size, const char *src)
{
	if (size && xsnprintf(dst, size, "%s", src ? src : ""))
		dst[size - 1] = '\0';
}

/* Proves app's credentials with a Power BI token (client credentials), then reads the app's
 * display name through Graph. PB_OK with *name (new). Otherwise code says why:
 * "bad_credentials" (Entra refused them), "unavailable" (Entra or Graph could not be asked),
 * "name_unknown" (the credentials work; Graph did not give the name). */
static int app_verify(const pb_config *cfg, const pbi_app *app, char **name, char code[PBI_CODE_MAX], char *err)
{
	pbi_session pbi = { 0 };
	entra_token graph_tok = { 0 };
	*name = NULL;
	int rc = pbi_session_app(&pbi, cfg, app->tenant_id, app->client_id, app->client_secret, code, err);
	if (rc) {
		if (!code[0] || !strcmp(code, "not_configured"))
			copy_text(code, PBI_CODE_MAX, rc == PB_EIO ? "unavailable" : "bad_credentials");
		return rc;
	}
	entra_app ea = { app->tenant_id, app->client_id, app->client_secret };
	if ((rc = entra_client_credentials(&pbi.api, &ea, ENTRA_SCOPE_GRAPH_DEFAULT, &graph_tok, err)) ||
	    (rc = msapi_set_token(&pbi.api, graph_tok.access_token, err)) ||
	    (rc = graph_app_display_name(&pbi.api, app->client_id, name, err))) {
		/* the Power BI token proved the credentials; only the name is missing, unless
		 * Microsoft could not be reached */
		bool transient = pbi.api.last.status ? !strcmp(conn_failure_code(&pbi.api), "unavailable") : rc == PB_EIO;
		copy_text(code, PBI_CODE_MAX, transient ? "unavailable" : "name_unknown");
	}
	entra_token_release(&graph_tok);
	pbi_session_release(&pbi);
	return rc;
}

int pbi_setup_save(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			  const pbi_settings_input *in, pbi_settings_saved *saved, char *err)
{
	pbi_settings_saved ignored;
	pbi_app cand = { 0 };
	char *kept = NULL, *name = NULL;
	int rc = PB_OK;
	if (!saved)
		saved = &ignored;
	memset(saved, 0, sizeof *saved);
	if (!in->verify)
		return pbi_settings_put(db, cfg, org_id, user_id, in, NULL, saved, err);
	/* asked before the save's transaction, which must not wait on Microsoft */
	if ((rc = pbi_settings_candidate(db, cfg, org_id, in, &cand, &kept, err)))
		goto out;
	if ((rc = app_verify(cfg, &cand, &name, saved->code, err))) {
		if (strcmp(saved->code, "name_unknown"))
			goto out;
		/* saved all the same: the credentials work */
		copy_text(saved->warning, sizeof saved->warning, err);
		saved->code[0] = '\0';
		rc = PB_OK;
	}
	pbi_settings_verified proved = { .app_name = name, .kept_sealed = kept };
	rc = pbi_settings_put(db, cfg, org_id, user_id, in, &proved, saved, err);
out:
	free(kept);
	free(name);
	pbi_app_release(&cand);
	return rc;
}

int pbi_setup_test(pb_db *db, const pb_config *cfg, const char *org_id, char **app_name, char *err)
{
	pbi_app app = { 0 };
	char code[PBI_CODE_MAX] = "";
	*app_name = NULL;
	int rc = pbi_settings_app(db, cfg, org_id, &app, err);
	if (!rc && !(rc = app_verify(cfg, &app, app_name, code, err)))
		rc = pbi_settings_set_app_name(db, org_id, *app_name, err);
	pbi_app_release(&app);
	if (rc) {
		free(*app_name);
		*app_name = NULL;
	}
	return rc;
}
