/* GET/PUT /api/settings/powerbi, POST /api/settings/powerbi/test: the organization's Entra
 * app for Power BI (owner only: the route rows say so). The client secret goes in, never out. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/powerbi_setup.h"
#include "handlers/handlers.h"
#include "runtime/crypto.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

/* GET's answer; warning (may be NULL or "") adds "warnings": [warning]. */
static int reply_settings(struct req *r, int status, const char *warning)
{
	pbi_settings s = { 0 };
	char *redirect_uri = NULL;
	int rc = powerbi_redirect_uri(r, &redirect_uri);
	if (rc == PB_EINVAL) {
		/* no public URL and no Host: the settings are still worth showing */
		free(redirect_uri);
		redirect_uri = NULL;
		rc = PB_OK;
	}
	if (rc)
		goto out;
	rc = pbi_settings_get(r->db, r->cfg, r->who.org_id, &s, r->err);
	if (rc == PB_ENOTFOUND) {
		rc = req_reply_json_new(r, status,
					json_pack("{s:n, s:n, s:n, s:b, s:n, s:s?, s:n}", "mode", "tenant_id", "client_id",
						  "has_client_secret", 0, "application_name", "redirect_uri", redirect_uri,
						  "updated_at"));
		goto out;
	}
	if (!rc) {
		json_t *doc = pbi_settings_json(&s, redirect_uri);
		if (doc && warning && *warning)
			json_object_set_new(doc, "warnings", json_pack("[s]", warning));
		rc = req_reply_json_new(r, status, doc);
	}
out:
	free(redirect_uri);
	pbi_settings_release(&s);
	return rc;
}

int api_powerbi_settings_get(struct req *r)
{
	return reply_settings(r, 200, NULL);
}

/* A string field or absent/null; anything else is refused. */
static int opt_string(struct req *r, const json_t *doc, const char *key, const char **out)
{
	const json_t *v = json_object_get(doc, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return PB_OK;
	if (!json_is_string(v))
		return pb_err(r->err, PB_EINVAL, "%s must be a string", key);
	*out = json_string_value(v);
	return PB_OK;
}

int api_powerbi_settings_put(struct req *r)
{
	static const char *const keys[] = { "mode", "tenant_id", "client_id", "client_secret", "verify", NULL };
	json_t *doc = NULL;
	pbi_settings_input in = { .verify = true };
	pbi_setup_saved saved = { 0 };
	int rc = json_body_parse(r->body, r->body_len, 0, &doc, r->err);
	if (!rc && !json_is_object(doc))
		rc = pb_err(r->err, PB_EINVAL, "request body must be a JSON object");
	if (!rc && !(rc = json_body_only_keys(doc, keys, "", r->err)) && !(rc = opt_string(r, doc, "mode", &in.mode)) &&
	    !(rc = opt_string(r, doc, "tenant_id", &in.tenant_id)) && !(rc = opt_string(r, doc, "client_id", &in.client_id)))
		rc = opt_string(r, doc, "client_secret", &in.client_secret);
	const json_t *verify = json_object_get(doc, "verify");
	if (!rc && verify && !json_is_boolean(verify))
		rc = pb_err(r->err, PB_EINVAL, "verify must be true or false");
	if (!rc && verify)
		in.verify = json_is_true(verify);
	if (!rc)
		rc = pbi_setup_save(r->db, r->cfg, r->who.org_id, r->who.user_id, &in, &saved, &r->fail);
	/* the body held the secret: wipe our copy of it */
	if (r->body)
		pb_wipe(r->body, r->body_len);
	if (doc) {
		json_t *sec = json_object_get(doc, "client_secret");
		if (json_is_string(sec))
			pb_wipe((char *)json_string_value(sec), json_string_length(sec));
	}
	json_decref(doc);
	return rc ? rc : reply_settings(r, 200, saved.warning);
}

int api_powerbi_settings_test(struct req *r)
{
	char *name = NULL;
	int rc = pbi_setup_test(r->db, r->cfg, r->who.org_id, &name, &r->fail);
	if (!rc) {
		rc = req_reply_json_new(r, 200, json_pack("{s:b, s:s}", "ok", 1, "application_name", name));
		free(name);
		return rc;
	}
	/* a failed test is an answer, not an error of the request: say why; pbiport's own
	 * failures stay errors */
	if (rc == PB_ENOMEM || rc == PB_EIO || rc == PB_EINTERNAL)
		return rc;
	return req_reply_json_new(r, 200, json_pack("{s:b, s:s, s:s}", "ok", 0, "code", pb_failure_code(&r->fail),
						    "reason", r->fail.message));
}
