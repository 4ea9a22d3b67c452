/* GET /api/lineage?node=&depth=[&format=dot]: the lineage graph around a node. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/lineage.h"
#include "handlers/handlers.h"
#include "runtime/util.h"

int api_lineage_get(struct req *r)
{
	const char *node = req_query(r, "node");
	const char *depth_s = req_query(r, "depth");
	const char *format = req_query(r, "format");
	lineage_graph g = { 0 };
	sbuf dot;
	int depth;
	int rc;
	sbuf_init(&dot, PB_RESPONSE_MAX_BYTES);
	if (!node || !*node)
		return req_fail(r, PB_EINVAL, NULL, "node is required (a data product, output port or asset id)");
	if ((rc = lineage_depth_parse(depth_s, &depth, r->err)))
		return rc;
	if (format && strcmp(format, "json") && strcmp(format, "dot"))
		return req_fail(r, PB_EINVAL, NULL, "format must be json or dot");
	if ((rc = lineage_graph_get(r->db, r->who.org_id, node, depth, &g, r->err)))
		goto out;   /* PB_ENOTFOUND (another org's node too) becomes 404 */
	if (format && !strcmp(format, "dot")) {
		if (!(rc = lineage_graph_dot(&g, &dot, r->err)))
			rc = req_reply(r, 200, "text/vnd.graphviz; charset=utf-8", sbuf_str(&dot), dot.len);
	} else {
		rc = req_reply_json_new(r, 200, lineage_graph_json(&g));
	}
out:
	sbuf_release(&dot);
	lineage_graph_release(&g);
	return rc;
}
