/* For the publish modal: GET /api/powerbi/workspaces (the caller's Fabric workspaces) and
 * GET /api/powerbi/connections?output_port= (existing Fabric connections whose data source
 * matches the port's). Both act as the caller through their Power BI connection. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/catalog.h"
#include "core/flow/pbi_session.h"
#include "core/flow/publish.h"
#include "handlers/handlers.h"
#include "msapi/fabric.h"
#include "runtime/util.h"

/* Opens the caller's session; on failure replies (409 with the code a user acts on, 502
 * when Microsoft could not be reached) and returns 1. */
static int open_session(struct req *r, pbi_session *s, int *rc)
{
	char code[PBI_CODE_MAX] = "";
	*rc = pbi_session_user(s, r->db, r->cfg, r->who.org_id, r->who.user_id, code, r->err);
	if (!*rc)
		return 0;
	memset(s, 0, sizeof *s);
	if (!code[0])
		return 1;   /* *rc travels up: an internal error */
	*rc = req_reply_error(r, !strcmp(code, "unavailable") ? 502 : 409, code, "%s", r->err);
	return 1;
}

/* Replies for a failed Power BI call made through s. */
static int call_failed(struct req *r, pbi_session *s)
{
	const char *code = pbi_session_code(s);
	if (*code && strcmp(code, "unavailable"))
		return req_reply_error(r, 409, code, "%s", r->err);
	if (s->api.last.status == 401 || !strcmp(s->api.last.code, "InsufficientScopes"))
		return req_reply_error(r, 409, "needs_reconnect", "%s: reconnect Power BI", r->err);
	return req_reply_error(r, 502, "powerbi_failed", "%s", r->err);
}

static json_t *item_json(const msapi_item *it)
{
	return json_pack("{s:s?, s:s?, s:s?}", "id", it->id, "name", it->name, "type", it->type);
}

/* Fabric's workspace list does not say the caller's role, but filters by it: ask for
 * the writing roles, highest first; every other workspace listed is one the caller only
 * views. roles[i] is borrowed from the table below. */
static int workspace_roles(struct req *r, pbi_session *s, const msapi_items *ws, const char **roles)
{
	static const char *const writing[] = { "Admin", "Member", "Contributor" };
	for (size_t i = 0; i < ws->n; i++)
		roles[i] = "Viewer";
	for (size_t k = sizeof writing / sizeof writing[0]; k-- > 0;) {
		msapi_items in_role = { 0 };
		int rc = fabric_list_workspaces_in_role(&s->api, writing[k], &in_role, r->err);
		for (size_t j = 0; !rc && j < in_role.n; j++)
			for (size_t i = 0; i < ws->n; i++)
				if (in_role.v[j].id && ws->v[i].id && !strcmp(in_role.v[j].id, ws->v[i].id))
					roles[i] = writing[k];   /* lower roles were set first: highest wins */
		msapi_items_release(&in_role);
		if (rc)
			return rc;
	}
	return PB_OK;
}

int powerbi_workspaces_get(struct req *r)
{
	pbi_session s;
	msapi_items ws = { 0 };
	const char **roles = NULL;
	int rc;
	if (open_session(r, &s, &rc))
		return rc;
	if ((rc = fabric_list_workspaces(&s.api, &ws, r->err))) {
		rc = call_failed(r, &s);
		goto out;
	}
	roles = calloc(ws.n + 1, sizeof *roles);
	if (!roles) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = workspace_roles(r, &s, &ws, roles))) {
		rc = call_failed(r, &s);
		goto out;
	}
	json_t *list = json_array();
	for (size_t i = 0; list && i < ws.n; i++) {
		json_t *one = item_json(&ws.v[i]);
		/* writable: the modal greys out workspaces the caller cannot publish into */
		bool ok = one && !json_object_set_new(one, "role", json_string(roles[i])) &&
			  !json_object_set_new(one, "writable", json_boolean(strcmp(roles[i], "Viewer") != 0));
		if (!ok)
			json_decref(one);
		if (!ok || json_array_append_new(list, one)) {   /* append_new frees one on failure */
			json_decref(list);
			list = NULL;
		}
	}
	rc = list ? req_reply_json_new(r, 200, json_pack("{s:o}", "workspaces", list))
		  : pb_err(r->err, PB_ENOMEM, "out of memory");
out:
	free(roles);
	msapi_items_release(&ws);
	pbi_session_release(&s);
	return rc;
}

int powerbi_connections_get(struct req *r)
{
	const char *port_id = req_query(r, "output_port");
	cat_port *port = NULL;
	publish_source src = { 0 };
	pbi_session s;
	msapi_items conns = { 0 };
	bool have_session = false;
	int rc;
	if (!port_id || !*port_id)
		return req_reply_error(r, 400, "invalid_request", "the query parameter output_port is required");
	rc = catalog_port_get(r->db, r->who.org_id, port_id, true, &port, r->err);
	if (rc == PB_ENOTFOUND) {
		rc = req_reply_error(r, 404, "not_found", "no output port %s", port_id);
		goto out;
	}
	if (rc)
		goto out;
	rc = publish_port_source(r->cfg, port, req_query(r, "http_path"), &src, NULL, r->err);
	if (rc == PB_EINVAL || rc == PB_ELIMIT) {
		rc = req_reply_error(r, 422, "render_failed", "%s", r->err);
		goto out;
	}
	if (rc)
		goto out;
	if (open_session(r, &s, &rc))
		goto out;
	have_session = true;
	if ((rc = fabric_list_connections(&s.api, &conns, r->err))) {
		rc = call_failed(r, &s);
		goto out;
	}
	json_t *list = json_array();
	for (size_t i = 0; list && i < conns.n; i++) {
		if (!publish_connection_matches(&src, &conns.v[i]))
			continue;
		json_t *one = json_pack("{s:s?, s:s?, s:s?, s:s?}", "id", conns.v[i].id, "name", conns.v[i].name, "type",
					conns.v[i].type, "path", conns.v[i].path);
		if (!one || json_array_append_new(list, one)) {
			json_decref(list);
			list = NULL;
		}
	}
	json_t *doc = list ? json_pack("{s:o, s:{s:s, s:s, s:s}}", "connections", list, "data_source", "type",
				       src.type, "host", src.host, str_ieq(src.type, "Snowflake") ? "warehouse"
												: "http_path",
				       src.second)
			   : NULL;
	rc = doc ? req_reply_json_new(r, 200, doc) : pb_err(r->err, PB_ENOMEM, "out of memory");
out:
	msapi_items_release(&conns);
	if (have_session)
		pbi_session_release(&s);
	publish_source_release(&src);
	if (port) {
		catalog_port_free(port);
	}
	return rc;
}
