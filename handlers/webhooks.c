/* /api/webhooks[...]: an organization's webhooks and their deliveries (docs/webhooks.md). The
 * route rows require the owner role; core/flow/webhooks.c checks every field and scopes every id
 * to the caller's organization. */
#include <jansson.h>

#include "core/flow/webhooks.h"
#include "handlers/handlers.h"

int api_webhooks_create(struct req *r)
{
	json_t *body = NULL, *out = NULL;
	int rc = req_body_json(r, &body);
	if (!rc && !(rc = webhook_create(r->db, r->cfg, r->who.org_id, r->who.user_id, body, &out, &r->fail)))
		rc = req_reply_json_new(r, 201, out);
	json_decref(body);
	return rc;
}

int api_webhooks_list(struct req *r)
{
	return req_answer_org(r, webhooks_list_json);
}

int api_webhooks_get(struct req *r)
{
	return req_answer_org_item(r, webhook_get_json, 200);
}

int api_webhooks_patch(struct req *r)
{
	json_t *body = NULL, *out = NULL;
	int rc = req_body_json(r, &body);
	if (!rc && !(rc = webhook_update(r->db, r->cfg, r->who.org_id, req_capture(r, "id"), body, &out, &r->fail)))
		rc = req_reply_json_new(r, 200, out);
	json_decref(body);
	return rc;
}

int api_webhooks_delete(struct req *r)
{
	int rc = webhook_delete(r->db, r->who.org_id, req_capture(r, "id"), &r->fail);
	return rc ? rc : req_reply(r, 204, "application/json", NULL, 0);
}

int api_webhook_deliveries_list(struct req *r)
{
	return req_answer_org_item(r, webhook_deliveries_json, 200);
}

int api_webhook_test(struct req *r)
{
	return req_answer_org_item(r, webhook_ping, 202);
}
