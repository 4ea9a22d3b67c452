/* GET /api/output-ports/{id}[/tmdl]: one port, and the TMDL a publish would send (the dry
 * run: core/flow/publish.h publish_dry_run). */
#include <jansson.h>

#include "core/flow/publish.h"
#include "core/store/catalog.h"
#include "handlers/handlers.h"
#include "runtime/util.h"

int api_output_ports_get(struct req *r)
{
	cat_port *p = NULL;
	int rc = catalog_port_get(r->db, r->who.org_id, req_capture(r, "id"), false, &p, r->err);
	if (!rc && !(rc = req_json_begin(r, 200)))
		rc = req_json_end(r, catalog_port_out(&r->resp, p));
	catalog_port_free(p);
	return rc;
}

static json_t *files_json(const pb_files *f)
{
	json_t *files = json_array();
	for (size_t i = 0; files && i < f->n; i++) {
		json_t *one = json_pack("{s:s,s:s%}", "path", f->v[i].path, "content", f->v[i].content,
					f->v[i].len);
		if (json_array_append_new(files, one)) {
			json_decref(files);
			return NULL;
		}
	}
	return files ? json_pack("{s:o}", "files", files) : NULL;
}

int api_output_ports_tmdl(struct req *r)
{
	pb_files files = { 0 };
	/* what the port's server lacks, by the names the sources' descriptions give their fields
	 * (the query parameters the route keeps: handlers/routes.c tmdl_query) */
	static const char *const names[] = { "host", "port", "warehouse", "database", "http_path", "catalog", "schema",
					     "project", "dataset", "billing_project", "service_name" };
	render_value values[sizeof names / sizeof names[0]];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		values[i] = (render_value){ names[i], req_query(r, names[i]) };
	render_opts opts = {
		.mode = req_query(r, "mode"),
		.type = req_query(r, "type"),
		.values = values,
		.nvalues = sizeof names / sizeof names[0],
		.params = RENDER_PARAMS_QUERY,
	};
	int rc = publish_dry_run(r->db, r->cfg, r->who.org_id, req_capture(r, "id"), &opts, &files, &r->fail);
	if (!rc)
		rc = req_reply_json_new(r, 200, files_json(&files));
	pb_files_release(&files);
	return rc;
}
