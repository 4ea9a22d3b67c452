/* POST /api/output-ports/{id}/powerbi-publish: queue a publish job (core/flow/publish.h).
 * GET /api/output-ports/{id}/powerbi-models: the models published from a port. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/catalog.h"
#include "core/flow/publish.h"
#include "core/store/published_models.h"
#include "handlers/handlers.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

/* The status for a refusal of publish_check_access (core/flow/publish.h), by its code. */
static int refusal_status(const char *code)
{
	if (!strcmp(code, "no_write_role"))
		return 403;
	if (!strcmp(code, "workspace_not_found"))
		return 400;
	return 409;   /* not_configured, not_connected, needs_reconnect: connect first */
}

int powerbi_publish_post(struct req *r)
{
	json_t *body = NULL;
	char job_id[PB_ID_BUF], url[64 + PB_ID_BUF], code[PBI_CODE_MAX] = "";
	bool existing = false;
	const char *port_id = req_capture(r, "id");
	cat_port *port = NULL;
	int rc = catalog_port_get(r->db, r->who.org_id, port_id, false, &port, r->err);
	if (!rc && port->retired_at)
		rc = req_reply_error(r, 409, "port_retired", "%s", catalog_port_retired_message(port, r->err));
	catalog_port_free(port);
	if (rc == PB_ENOTFOUND)
		return req_reply_error(r, 404, "not_found", "no output port %s", port_id);
	if (rc || r->status)
		return rc;
	rc = json_body_parse(r->body, r->body_len, 0, &body, r->err);
	if (rc == PB_EINVAL || rc == PB_ELIMIT)
		return req_reply_error(r, 400, "invalid_json", "%s", r->err);
	if (rc)
		return rc;
	rc = publish_submit(r->db, r->cfg, r->who.org_id, r->who.user_id, port_id, body, job_id, &existing, code,
			    r->err);
	json_decref(body);
	if (rc == PB_ENOTFOUND)
		return req_reply_error(r, 404, "not_found", "no output port %s", port_id);
	if (rc == PB_EINVAL && code[0])
		return req_reply_error(r, refusal_status(code), code, "%s", r->err);
	if (rc == PB_EINVAL)
		return req_reply_error(r, 400, "invalid_request", "%s", r->err);
	if (rc)
		return rc;
	xsnprintf(url, sizeof url, "/api/jobs/%s", job_id);
	req_header(r, "Location", url);
	return req_reply_json_new(r, 202, json_pack("{s:s, s:s, s:b}", "job_id", job_id, "status_url", url,
						    "existing", existing));
}

int powerbi_models_get(struct req *r)
{
	cat_port *p = NULL;
	json_t *out = NULL;
	const char *port_id = req_capture(r, "id");
	int rc = catalog_port_get(r->db, r->who.org_id, port_id, false, &p, r->err);
	catalog_port_free(p);
	if (rc == PB_ENOTFOUND)
		return req_reply_error(r, 404, "not_found", "no output port %s", port_id);
	if (rc)
		return rc;
	if ((rc = published_models_list_json(r->db, r->who.org_id, port_id, &out, r->err)))
		return rc;
	return req_reply_json_new(r, 200, out);
}
