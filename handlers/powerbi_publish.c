/* POST /api/output-ports/{id}/powerbi-publish: queue a publish job (core/flow/publish.h).
 * GET /api/output-ports/{id}/powerbi-models: the models published from a port. */
#include <jansson.h>
#include <stdbool.h>

#include "core/flow/publish.h"
#include "core/store/catalog.h"
#include "core/store/published_models.h"
#include "handlers/handlers.h"
#include "runtime/util.h"

int api_powerbi_publish_post(struct req *r)
{
	char job_id[PB_ID_BUF], url[64 + PB_ID_BUF];
	bool existing = false;
	int rc = publish_submit(r->db, r->cfg, r->who.org_id, r->who.user_id, req_capture(r, "id"), r->body, r->body_len,
				job_id, &existing, &r->fail);
	if (rc)
		return rc;
	xsnprintf(url, sizeof url, "/api/jobs/%s", job_id);
	req_header(r, "Location", url);
	return req_reply_json_new(r, 202, json_pack("{s:s, s:s, s:b}", "job_id", job_id, "status_url", url,
						    "existing", existing));
}

int api_powerbi_models_get(struct req *r)
{
	cat_port *p = NULL;
	json_t *out = NULL;
	const char *port_id = req_capture(r, "id");
	int rc = catalog_port_get(r->db, r->who.org_id, port_id, false, &p, r->err);
	catalog_port_free(p);
	if (rc == PB_ENOTFOUND)
		return req_fail(r, rc, NULL, "no output port %s", port_id);
	if (!rc)
		rc = published_models_list_json(r->db, r->who.org_id, port_id, &out, r->err);
	return req_answer_json_new(r, rc, 200, out);
}
