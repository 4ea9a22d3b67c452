/* The assets' pages and the lineage picture:
 *   /assets              what imports brought in (workspaces, models, reports, dashboards, data
 *                        sources), by kind and name (?type=&q=)
 *   /assets/{id}         one asset: its details (a model's tables and columns), upstream and
 *                        downstream, the lineage picture; POST: Import from Microsoft Fabric
 *                        (a model or report becomes a data product: core/flow/asset_products.h),
 *                        then the new product's page
 *   /lineage.svg         the lineage picture of ?node=&depth= (core/flow/lineage_svg.h), for
 *                        an <object> on the product and asset pages */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/asset_products.h"
#include "core/flow/ingest.h"
#include "core/flow/lineage.h"
#include "core/flow/lineage_svg.h"
#include "core/store/assets.h"
#include "core/store/catalog.h"
#include "handlers/handlers.h"
#include "runtime/util.h"

#define ASSET_SEARCH_MAX_BYTES 200
#define ASSET_PICTURE_DEPTH    2   /* the asset page's picture: two steps either way */

/* The pictures may be shown in an <object> of pbiport's own pages (frame-ancestors 'self');
 * they load nothing, run nothing and post nothing. */
#define LINEAGE_SVG_CSP "default-src 'none'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"

int pages_assets(struct req *r)
{
	const char *type = req_query(r, "type"), *q = req_query(r, "q");
	json_t *list = NULL;
	if (type && !*type)
		type = NULL;
	if (type && !asset_kind_valid(type))
		return req_fail(r, PB_EINVAL, "bad_request",
				"type: use workspace, semantic_model, report, dashboard or datasource");
	if (q && strlen(q) > ASSET_SEARCH_MAX_BYTES)
		return req_fail(r, PB_EINVAL, "bad_request", "search text longer than %d bytes", ASSET_SEARCH_MAX_BYTES);
	int rc = assets_list_json(r->db, r->who.org_id, type, q && *q ? q : NULL, &list, r->err);
	return rc ? rc
		  : pages_reply(r, "assets", json_pack("{s:o, s:s?, s:s?}", "assets", list, "type", type, "q",
						       q && *q ? q : NULL), 200);
}

/* {id, type, name, href} of lineage node n for a page; a port's link is its product's page. */
static json_t *node_json(struct req *r, const lineage_node *n)
{
	char href[PB_ID_BUF * 2 + 32], why[PB_ERR_MAX];
	cat_port *port = NULL;
	if (!strcmp(n->type, "output_port"))
		catalog_port_get(r->db, r->who.org_id, n->id, false, &port, why);   /* none: no link */
	bool linked = lineage_node_href(n, port ? port->data_product_id : NULL, href, sizeof href);
	catalog_port_free(port);
	return json_pack("{s:s, s:s, s:s?, s:s?}", "id", n->id, "type", n->type, "name", n->name, "href",
			 linked ? href : NULL);
}

/* view.upstream and view.downstream: the nodes one edge away from the asset. */
static int add_neighbours(struct req *r, const char *id, json_t *view)
{
	lineage_graph g = { 0 };
	json_t *up = json_array(), *down = json_array();
	int rc = lineage_graph_get(r->db, r->who.org_id, id, 1, &g, r->err);
	if (!rc && (!up || !down))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	for (size_t e = 0; !rc && e < g.nedges; e++) {
		bool in = !strcmp(g.edges[e].to, id);
		const char *other = in ? g.edges[e].from : g.edges[e].to;
		for (size_t k = 1; !rc && k < g.nnodes; k++)
			if (!strcmp(g.nodes[k].id, other) && json_array_append_new(in ? up : down, node_json(r, &g.nodes[k])))
				rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	}
	if (!rc && (json_object_set(view, "upstream", up) || json_object_set(view, "downstream", down)))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	json_decref(up);
	json_decref(down);
	lineage_graph_release(&g);
	return rc;
}

/* The asset's page; message: what went wrong with an import (shown with status). */
static int reply_asset(struct req *r, int status, const char *message)
{
	pb_asset *a = NULL;
	json_t *view = NULL, *seen = NULL;
	char picture[PB_ID_BUF + 64];
	int rc = assets_get(r->db, r->who.org_id, req_capture(r, "id"), &a, r->err);
	if (rc)
		goto out;
	if ((rc = ingest_asset_seen_by(r->db, a, &seen, r->err)))
		goto out;
	xsnprintf(picture, sizeof picture, "/lineage.svg?node=%s&depth=%d", a->id, ASSET_PICTURE_DEPTH);
	bool importable = !strcmp(a->state, "active") &&
			  (!strcmp(a->kind, "semantic_model") || !strcmp(a->kind, "report"));
	view = json_pack("{s:o, s:O, s:s, s:b, s:s?}", "asset", asset_json(a, true), "seen_by", seen, "lineage_svg",
			 picture, "importable", importable, "error", message);
	if (!view) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = add_neighbours(r, a->id, view)))
		goto out;
	rc = pages_reply(r, "asset", view, status);
	view = NULL;
out:
	json_decref(view);
	json_decref(seen);
	asset_free(a);
	return rc;
}

int pages_asset(struct req *r)
{
	return reply_asset(r, 200, NULL);
}

/* Import from Microsoft Fabric: the model or report as a data product, then its page (a
 * product made before is refreshed and shown: asking again is harmless). */
int pages_asset_import(struct req *r)
{
	json_t *product = NULL;
	bool created = false;
	char path[PB_ID_BUF + 32];
	int rc = asset_product_create(r->db, r->who.org_id, req_capture(r, "id"), &product, &created, r->err);
	if (rc == PB_EINVAL) {
		char why[PB_ERR_MAX];
		xsnprintf(why, sizeof why, "%s", r->err);
		r->err[0] = '\0';
		return reply_asset(r, 400, why);
	}
	if (rc)
		return rc;   /* PB_ENOTFOUND: another org's asset or none */
	const char *id = json_string_value(json_object_get(product, "id"));
	rc = !id || xsnprintf(path, sizeof path, "/data-products/%s", id)
		     ? pb_err(r->err, PB_EINTERNAL, "the new data product has no id")
		     : page_redirect(r, path);
	json_decref(product);
	return rc;
}

int pages_lineage_svg(struct req *r)
{
	const char *node = req_query(r, "node");
	lineage_graph g = { 0 };
	lineage_svg_stats st;
	char dot_url[PB_ID_BUF + 64], timing[64];
	sbuf svg;
	int depth, rc;
	sbuf_init(&svg, PB_RESPONSE_MAX_BYTES);
	if (!node || !*node)
		return req_fail(r, PB_EINVAL, "bad_request", "node is required (a data product, output port or asset id)");
	if ((rc = lineage_depth_parse(req_query(r, "depth"), &depth, r->err)))
		return rc;
	if ((rc = lineage_graph_get(r->db, r->who.org_id, node, depth, &g, r->err)))
		goto out;   /* PB_ENOTFOUND: another org's node too */
	/* node was found, so it is an id pbiport made: nothing in it needs escaping in a URL */
	xsnprintf(dot_url, sizeof dot_url, "/api/lineage?node=%s&depth=%d&format=dot", g.nodes[0].id, depth);
	if ((rc = lineage_svg(&g, dot_url, &svg, &st, r->err)))
		goto out;
	xsnprintf(timing, sizeof timing, "layout;dur=%.1f", (double)st.layout_us / 1000.0);
	rc = req_reply(r, 200, "image/svg+xml; charset=utf-8", sbuf_str(&svg), svg.len);
	if (!rc)
		rc = req_header(r, "Content-Security-Policy", LINEAGE_SVG_CSP);
	if (!rc)
		rc = req_header(r, "X-Frame-Options", "SAMEORIGIN");
	if (!rc)
		rc = req_header(r, "Referrer-Policy", "same-origin");
	if (!rc)
		rc = req_header(r, "Server-Timing", timing);   /* bench/pages reads the layout's share */
out:
	sbuf_release(&svg);
	lineage_graph_release(&g);
	return rc;
}
