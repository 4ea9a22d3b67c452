/* /api/semantic-models/{id}/refreshes and /refresh-schedule: refresh a semantic model now,
 * read its refresh history (ours merged with Power BI's), set or remove its schedule. */
#include <jansson.h>

#include "core/flow/refresh.h"
#include "handlers/handlers.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

/* Parses an optional JSON body; NULL *body for an empty one. */
static int optional_body(struct req *r, json_t **body)
{
	*body = NULL;
	if (r->body_len && json_body_parse(r->body, r->body_len, 0, body, r->err))
		return req_fail(r, PB_EINVAL, "bad_request", "request body: %s", r->err);
	return 0;
}

int api_refresh_post(struct req *r)
{
	json_t *body = NULL, *reply = NULL;
	int rc = optional_body(r, &body);
	if (!rc)
		rc = refresh_submit(r->db, r->cfg, r->who.org_id, r->who.user_id, req_capture(r, "id"), body, "manual", &reply,
				    &r->fail);
	json_decref(body);
	return req_answer_json_new(r, rc, 202, reply);
}

int api_refresh_list(struct req *r)
{
	json_t *reply = NULL;
	int rc = refresh_history(r->db, r->cfg, r->who.org_id, r->who.user_id, req_capture(r, "id"), &reply, &r->fail);
	return req_answer_json_new(r, rc, 200, reply);
}

int api_refresh_schedule_put(struct req *r)
{
	json_t *body = NULL, *reply = NULL;
	int rc = optional_body(r, &body);
	if (!rc)
		rc = refresh_schedule_put(r->db, r->cfg, r->who.org_id, r->who.user_id, req_capture(r, "id"), body, &reply,
					  &r->fail);
	json_decref(body);
	return req_answer_json_new(r, rc, 200, reply);
}

int api_refresh_schedule_get(struct req *r)
{
	return req_answer_org_item(r, refresh_schedule_get, 200);
}

int api_refresh_schedule_delete(struct req *r)
{
	json_t *reply = NULL;
	int rc = refresh_schedule_delete(r->db, r->who.org_id, r->who.user_id, req_capture(r, "id"), &reply, &r->fail);
	json_decref(reply);
	return rc ? rc : req_reply(r, 204, "application/json", NULL, 0);
}
