/* For the publish modal: GET /api/powerbi/workspaces (the caller's Fabric workspaces) and
 * GET /api/powerbi/connections?output_port= (existing Fabric connections whose data source
 * matches the port's). Both act as the caller through their Power BI connection
 * (core/flow/publish.h publish_workspaces, publish_connections). */
#include <jansson.h>

#include "core/flow/publish.h"
#include "handlers/handlers.h"

int api_powerbi_workspaces_get(struct req *r)
{
	json_t *doc = NULL;
	int rc = publish_workspaces(r->db, r->cfg, r->who.org_id, r->who.user_id, &doc, &r->fail);
	return req_answer_json_new(r, rc, 200, doc);
}

int api_powerbi_connections_get(struct req *r)
{
	json_t *doc = NULL;
	int rc = publish_connections(r->db, r->cfg, r->who.org_id, r->who.user_id, req_query(r, "output_port"),
				     req_query(r, "http_path"), &doc, &r->fail);
	return req_answer_json_new(r, rc, 200, doc);
}
