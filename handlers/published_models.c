/* The life of a published model (docs/lifecycle.md, core/flow/model_lifecycle.h):
 *   GET    /api/published-models/{id}          the model: port, contract, workspace, state, drift
 *   PATCH  /api/published-models/{id}          {"auto_update": "off" | "additive"}
 *   DELETE /api/published-models/{id}          unpublish: 202 with the job
 *   POST   /api/published-models/{id}/update   dry run (200, the diff) or the update job (202)
 *   GET    /api/published-models/{id}/drift    the drift, read now
 *   GET    /api/drift                          the organization's drifting models and products
 *   GET    /api/data-products/{id}/drift       a product made from a Power BI asset: its drift */
#include <jansson.h>
#include <stdbool.h>

#include "core/flow/drift.h"
#include "core/flow/model_lifecycle.h"
#include "core/flow/model_unpublish.h"
#include "core/flow/model_update.h"
#include "handlers/handlers.h"
#include "runtime/util.h"

lc_actor published_model_actor(const struct req *r)
{
	return (lc_actor){ .org_id = r->who.org_id, .user_id = r->who.user_id, .org_owner = r->who.role == PB_ROLE_OWNER };
}

/* 202 {job_id, status_url, existing} with Location, as publish answers. */
static int reply_job(struct req *r, const char *job_id, bool existing)
{
	char url[64 + PB_ID_BUF];
	xsnprintf(url, sizeof url, "/api/jobs/%s", job_id);
	req_header(r, "Location", url);
	return req_reply_json_new(r, 202, json_pack("{s:s, s:s, s:b}", "job_id", job_id, "status_url", url, "existing",
						    existing));
}

int api_published_models_get(struct req *r)
{
	return req_answer_org_item(r, lifecycle_get_json, 200);
}

int api_published_models_patch(struct req *r)
{
	json_t *out = NULL;
	lc_actor by = published_model_actor(r);
	int rc = lifecycle_patch(r->db, &by, req_capture(r, "id"), r->body, r->body_len, &out, &r->fail);
	return req_answer_json_new(r, rc, 200, out);
}

int api_published_models_delete(struct req *r)
{
	char job_id[PB_ID_BUF];
	bool existing = false;
	lc_actor by = published_model_actor(r);
	int rc = model_unpublish_submit(r->db, &by, req_capture(r, "id"), r->body, r->body_len, job_id, &existing,
					&r->fail);
	return rc ? rc : reply_job(r, job_id, existing);
}

int api_published_models_update(struct req *r)
{
	char job_id[PB_ID_BUF] = "";
	bool existing = false;
	json_t *diff = NULL;
	lc_actor by = published_model_actor(r);
	int rc = model_update_request(r->db, r->cfg, &by, req_capture(r, "id"), r->body, r->body_len, &diff, job_id,
				      &existing, &r->fail);
	if (rc)
		return rc;
	return diff ? req_reply_json_new(r, 200, diff) : reply_job(r, job_id, existing);
}

int api_published_models_drift(struct req *r)
{
	json_t *out = NULL;
	int rc = drift_of_model(r->db, r->cfg, r->who.org_id, req_capture(r, "id"), &out, &r->fail);
	return req_answer_json_new(r, rc, 200, out);
}

int api_drift_list(struct req *r)
{
	return req_answer_org(r, drift_list);
}

int api_data_products_drift(struct req *r)
{
	return req_answer_org_item(r, drift_of_product, 200);
}
