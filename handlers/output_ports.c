/* GET /api/output-ports/{id}[/tmdl]: one port, and the TMDL a publish would send. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/catalog.h"
#include "core/lang/contract.h"
#include "core/lang/render.h"
#include "handlers/handlers.h"
#include "runtime/util.h"

int output_ports_get(struct req *r)
{
	cat_port *p = NULL;
	int rc = catalog_port_get(r->db, r->who.org_id, req_capture(r, "id"), false, &p, r->err);
	if (!rc)
		rc = req_reply_json_new(r, 200, catalog_port_json(p));
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

int output_ports_tmdl(struct req *r)
{
	cat_port *p = NULL;
	pb_contract *c = NULL;
	pb_files files = { 0 };
	int rc = catalog_port_get(r->db, r->who.org_id, req_capture(r, "id"), true, &p, r->err);
	if (rc)
		goto out;
	if (p->retired_at) {
		rc = req_reply_error(r, 409, "port_retired", "%s", catalog_port_retired_message(p, r->err));
		goto out;
	}
	/* the stored text was accepted at import; failing now means the parser changed */
	if ((rc = contract_parse(p->contract_text, strlen(p->contract_text), "stored contract", &c, r->err))) {
		rc = req_reply_error(r, 422, "invalid_contract", "%s", r->err);
		goto out;
	}
	render_opts opts = {
		.server = p->name,
		.mode = req_query(r, "mode"),
		.type = req_query(r, "type"),
		.host = req_query(r, "host"),
		.warehouse = req_query(r, "warehouse"),
		.database = req_query(r, "database"),
		.http_path = req_query(r, "http_path"),
		.catalog = req_query(r, "catalog"),
		.schema = req_query(r, "schema"),
		.params = RENDER_PARAMS_QUERY,
		.cfg = r->cfg,
	};
	rc = tmdl_render(c, &opts, &files, r->err);
	if (rc == PB_EINVAL || rc == PB_ELIMIT) {
		rc = req_reply_error(r, 422, "render_failed", "%s", r->err);
		goto out;
	}
	if (!rc)
		rc = req_reply_json_new(r, 200, files_json(&files));
out:
	pb_files_release(&files);
	contract_free(c);
	catalog_port_free(p);
	return rc;
}
