/* /api/integrations[...]: import integrations (org owners), their runs and the permission
 * doctor. The route rows require the owner role and APPLICATION_INGESTIONS_ENABLED. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/ingest.h"
#include "core/store/integrations.h"
#include "handlers/handlers.h"
#include "runtime/crypto.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

/* A custom filter rule must load and answer before it is saved. */
static int check_rule(struct req *r, const integration_input *in, const char *stored_filters)
{
	char *filters = NULL;
	int rc = 0;
	if (!in->filter_rule || !*in->filter_rule)
		return 0;
	if (in->filters && integration_filters_normalize(in->filters, &filters, r->err))
		return PB_EINVAL;
	rc = ingest_filter_check(r->cfg, in->filter_rule, filters ? filters : stored_filters, r->err);
	free(filters);
	return rc ? PB_EINVAL : 0;
}

int api_integrations_create(struct req *r)
{
	json_t *body = NULL;
	integration_input in;
	pb_integration *i = NULL;
	int rc = req_body_json(r, &body);
	if (!rc && !(rc = integration_parse(body, true, r->cfg->min_schedule_interval_s, &in, r->err)) &&
	    !(rc = check_rule(r, &in, "{}")) &&
	    !(rc = integrations_create(r->db, r->cfg, r->who.org_id, r->who.user_id, &in, &i, &r->fail)))
		rc = req_reply_json_new(r, 201, integration_json(i));
	integration_free(i);
	json_decref(body);
	return rc;
}

int api_integrations_list(struct req *r)
{
	json_t *list = NULL;
	int rc = integrations_list_json(r->db, r->who.org_id, &list, r->err);
	return req_answer_json_new(r, rc, 200, list ? json_pack("{s:o}", "integrations", list) : NULL);
}

int api_integrations_get(struct req *r)
{
	pb_integration *i = NULL;
	int rc = integrations_get(r->db, r->who.org_id, req_capture(r, "id"), &i, r->err);
	if (!rc)
		rc = req_reply_json_new(r, 200, integration_json(i));
	integration_free(i);
	return rc;
}

int api_integrations_put(struct req *r)
{
	json_t *body = NULL;
	integration_input in;
	pb_integration *i = NULL, *cur = NULL;
	int rc = req_body_json(r, &body);
	if (!rc && !(rc = integrations_get(r->db, r->who.org_id, req_capture(r, "id"), &cur, r->err)) &&
	    !(rc = integration_parse(body, false, r->cfg->min_schedule_interval_s, &in, r->err)) &&
	    !(rc = check_rule(r, &in, cur->filters_json)) &&
	    !(rc = integrations_update(r->db, r->cfg, r->who.org_id, cur->id, &in, &i, &r->fail)))
		rc = req_reply_json_new(r, 200, integration_json(i));
	integration_free(cur);
	integration_free(i);
	json_decref(body);
	return rc;
}

int api_integrations_delete(struct req *r)
{
	int rc = ingest_integration_delete(r->db, r->who.org_id, req_capture(r, "id"), r->err);
	return rc ? rc : req_reply(r, 204, "application/json", NULL, 0);
}

int api_integration_runs_post(struct req *r)
{
	pb_integration *i = NULL;
	pb_run *run = NULL;
	bool existing = false;
	int rc = integrations_get(r->db, r->who.org_id, req_capture(r, "id"), &i, r->err);
	if (rc)
		return rc;
	rc = integration_run_submit(r->db, r->who.org_id, r->who.user_id, i->id, "manual", &run, &existing, r->err);
	if (!rc) {
		json_t *o = run_json(run);
		char url[64];
		xsnprintf(url, sizeof url, "/api/jobs/%s", run->job_id ? run->job_id : "");
		if (o && (json_object_set_new(o, "status_url", json_string(url)) ||
			  json_object_set_new(o, "already_running", json_boolean(existing)))) {
			json_decref(o);
			o = NULL;
		}
		rc = req_reply_json_new(r, 202, o);
	}
	run_free(run);
	integration_free(i);
	return rc;
}

int api_integration_runs_list(struct req *r)
{
	pb_integration *i = NULL;
	json_t *list = NULL;
	int rc = integrations_get(r->db, r->who.org_id, req_capture(r, "id"), &i, r->err);
	if (!rc)
		rc = integration_runs_json(r->db, r->who.org_id, i->id, &list, r->err);
	integration_free(i);
	return req_answer_json_new(r, rc, 200, list ? json_pack("{s:o}", "runs", list) : NULL);
}

static int doctor_reply(struct req *r, const char *whose, const char *tenant, const char *client, const char *secret)
{
	json_t *report = NULL;
	int rc = ingest_doctor(r->db, r->cfg, whose, tenant, client, secret, &report, &r->fail);
	return req_answer_json_new(r, rc, 200, report);
}

int api_integration_test(struct req *r)
{
	pb_integration *i = NULL;
	char *secret = NULL, whose[PB_NAME_FIELD_MAX + 32];
	size_t len = 0;
	int rc = integrations_get(r->db, r->who.org_id, req_capture(r, "id"), &i, r->err);
	if (!rc && !(rc = integration_open_secret(r->cfg, i, &secret, &len, r->err))) {
		xsnprintf(whose, sizeof whose, "integration '%s'", i->name);
		rc = doctor_reply(r, whose, i->tenant_id, i->client_id, secret);
	}
	pb_secret_free(secret, len);
	integration_free(i);
	return rc;
}

int api_integrations_test_unsaved(struct req *r)
{
	static const char *const keys[] = { "tenant_id", "client_id", "client_secret", NULL };
	json_t *body = NULL;
	int rc = req_body_json(r, &body);
	if (rc)
		return rc;
	const char *t = json_string_value(json_object_get(body, "tenant_id"));
	const char *c = json_string_value(json_object_get(body, "client_id"));
	const char *s = json_string_value(json_object_get(body, "client_secret"));
	if (!(rc = json_body_only_keys(body, keys, "", r->err))) {
		if (!t || !*t || !c || !*c || !s || !*s)
			rc = req_fail(r, PB_EINVAL, NULL, "tenant_id, client_id and client_secret are required");
		else if (!(rc = integration_check_ids(t, c, r->err)))
			rc = doctor_reply(r, "the credentials sent", t, c, s);
	}
	json_decref(body);
	return rc;
}
