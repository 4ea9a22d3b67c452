/* POST /api/events: upstream changes reported by pipelines. data_product.updated refreshes
 * every semantic model downstream of the data product, once each. Org owners, or anyone
 * calling with an API token (pipelines), may send events. */
#include <jansson.h>
#include <string.h>

#include "core/flow/refresh.h"
#include "handlers/handlers.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

int api_events_post(struct req *r)
{
	const char *authz = req_env(r, "HTTP_AUTHORIZATION");
	bool token = authz && !strncasecmp(authz, "Bearer ", 7);
	json_t *body = NULL, *reply = NULL;
	if (r->who.role != PB_ROLE_OWNER && !token)
		return req_fail(r, PB_EFORBIDDEN, "forbidden", "events come from org owners or from API tokens");
	if (json_body_parse(r->body, r->body_len, 0, &body, r->err))
		return req_fail(r, PB_EINVAL, "bad_request", "request body: %s", r->err);
	int rc = refresh_events(r->db, r->cfg, r->who.org_id, r->who.user_id, body, &reply, &r->fail);
	json_decref(body);
	return req_answer_json_new(r, rc, 202, reply);
}
