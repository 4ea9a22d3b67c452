/* On-premises data gateways for the publish modal: GET /api/powerbi/gateways[?output_port=&http_path=],
 * the gateways and gateway data sources the caller may use, and (with output_port) which of them
 * point at the port's data source. Acts as the caller through their Power BI connection
 * (core/flow/publish_gateway.h publish_gateways). */
#include <jansson.h>

#include "core/flow/publish_gateway.h"
#include "handlers/handlers.h"

int api_powerbi_gateways_get(struct req *r)
{
	json_t *doc = NULL;
	int rc = publish_gateways(r->db, r->cfg, r->who.org_id, r->who.user_id, req_query(r, "output_port"),
				  req_query(r, "http_path"), &doc, &r->fail);
	return req_answer_json_new(r, rc, 200, doc);
}
