/* GET /api/me/powerbi-connections, DELETE /api/me/powerbi-connections/{id},
 * POST /api/me/powerbi-connections/check: the caller's own Power BI connections
 * (core/flow/powerbi_connect.h). Another user's or organization's id answers 404 like a
 * missing one. No tokens go out. */
#include <jansson.h>

#include "core/flow/powerbi_connect.h"
#include "core/store/connections.h"
#include "handlers/handlers.h"
#include "runtime/util.h"

int api_me_connections_list(struct req *r)
{
	json_t *list = NULL;
	int rc = connect_list(r->db, r->cfg, r->who.org_id, r->who.user_id, &list, &r->fail);
	return rc ? rc : req_reply_json_new(r, 200, json_pack("{s:o}", "connections", list));
}

int api_me_connections_delete(struct req *r)
{
	int rc = conn_delete(r->db, r->who.org_id, r->who.user_id, req_capture(r, "id"), r->err);
	return rc ? rc : req_reply(r, 204, "application/json", NULL, 0);
}

int api_me_connections_check(struct req *r)
{
	size_t n = 0;
	int rc = connect_check(r->db, r->cfg, r->who.org_id, r->who.user_id, &n, &r->fail);
	return rc ? rc : req_reply_json_new(r, 200, json_pack("{s:b, s:I}", "ok", 1, "workspaces", (json_int_t)n));
}
