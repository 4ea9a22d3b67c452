/* Settings ▸ Power BI (organization owners; the route rows answer members 403): which Entra
 * application pbiport acts with for the organization. Use SSO credentials (the deployment's
 * sign-in app) or Use custom credentials (Tenant ID, Client ID, Client Secret: write-only, shown
 * as "set — replace"); Test connection proves what the form holds without saving it and shows
 * the application's name; Save proves and stores it (core/flow/powerbi_setup.h). Both are the
 * form posted to the page itself, POST /settings/power-bi, told apart by the button (action). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/powerbi_setup.h"
#include "handlers/handlers.h"
#include "runtime/page_render.h"
#include "runtime/util.h"

/* The value of form field name, or NULL when it is absent or empty. */
static const char *field(const struct req *r, const char *name)
{
	const page_field *f = page_form_get(&r->form, name);
	return f && f->len ? f->value : NULL;
}

/* The page with status. extra (stolen, may be NULL) adds to the view: the form's earlier input,
 * a test's outcome, why a save was refused. */
static int reply_settings_page(struct req *r, int status, json_t *extra)
{
	pbi_settings s = { 0 };
	char *redirect_uri = NULL;
	json_t *view = extra ? extra : json_object();
	int rc = view ? PB_OK : pb_err(r->err, PB_ENOMEM, "out of memory");
	/* no public URL and no usable Host: the rest of the page is still worth showing */
	if (!rc && powerbi_redirect_uri(r, &redirect_uri) == PB_EINVAL)
		r->err[0] = '\0';
	if (!rc && (rc = pbi_settings_get(r->db, r->cfg, r->who.org_id, &s, r->err)) == PB_ENOTFOUND)
		rc = PB_OK;
	else if (!rc && json_object_set_new(view, "settings", pbi_settings_json(&s, NULL)))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	bool sso = r->cfg->sso_tenant_id && r->cfg->sso_client_id && r->cfg->sso_client_secret;
	if (!rc && (json_object_set_new(view, "sso_available", json_boolean(sso)) ||
		    (redirect_uri && json_object_set_new(view, "redirect_uri", json_string(redirect_uri))) ||
		    json_object_set_new(view, "saved", json_boolean(req_query(r, "saved") != NULL))))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	if (!rc) {
		rc = pages_reply(r, "settings_power_bi", view, status);
		view = NULL;
	}
	json_decref(view);
	free(redirect_uri);
	pbi_settings_release(&s);
	return rc;
}

int pages_settings_power_bi(struct req *r)
{
	return reply_settings_page(r, 200, NULL);
}

/* A failure that is pbiport's own (memory, the database, a bug): the error page, not the form. */
static bool own_failure(int rc)
{
	return rc == PB_ENOMEM || rc == PB_EIO || rc == PB_EINTERNAL;
}

int pages_settings_power_bi_post(struct req *r)
{
	const char *action = field(r, "action"), *mode = field(r, "mode");
	bool custom = mode && !strcmp(mode, "custom");
	/* the SSO app takes no ids of the form's */
	pbi_settings_input in = { .mode = mode, .tenant_id = custom ? field(r, "tenant_id") : NULL,
				  .client_id = custom ? field(r, "client_id") : NULL,
				  .client_secret = custom ? field(r, "client_secret") : NULL, .verify = true };
	pb_failure f;
	char *name = NULL;
	int rc;
	if (!action || (strcmp(action, "test") && strcmp(action, "save")))
		return req_fail(r, PB_EINVAL, NULL, "the form's button is Test connection or Save (action=test or save)");
	if (!mode)
		pb_fail(&f, PB_EINVAL, NULL, "Choose Use SSO credentials or Use custom credentials.");
	else if (!strcmp(action, "test"))
		pbi_setup_check(r->db, r->cfg, r->who.org_id, &in, &name, &f);
	else
		pbi_setup_save(r->db, r->cfg, r->who.org_id, r->who.user_id, &in, NULL, &f);
	rc = f.rc;
	if (!rc && !strcmp(action, "save"))
		return page_redirect(r, "/settings/power-bi?saved=1");
	if (own_failure(rc)) {
		r->fail = f;
		free(name);
		return rc;
	}
	/* shown again with what was typed (never the secret), and the outcome */
	bool test = !strcmp(action, "test");
	json_t *outcome = test && !rc ? json_pack("{s:b, s:s}", "ok", 1, "application_name", name)
				      : json_pack("{s:b, s:s, s:s}", "ok", 0, "code", pb_failure_code(&f), "message", f.message);
	json_t *view = outcome ? json_pack("{s:{s:s?, s:s?, s:s?, s:b}, s:o}", "form", "mode", mode, "tenant_id",
					   field(r, "tenant_id"), "client_id", field(r, "client_id"), "secret_typed",
					   in.client_secret != NULL, test ? "test" : "error", outcome)
			       : NULL;
	free(name);
	if (!view)
		return pb_err(r->err, PB_ENOMEM, "out of memory");
	/* a test that fails is an answer about the credentials, not a failure of the request */
	return reply_settings_page(r, test ? 200 : pb_rc_status(rc), view);
}
