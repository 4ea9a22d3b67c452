/* What the publish modal offers (core/flow/publish.h): the user's workspaces with their role,
 * and the user's Fabric connections that point at a port's data source. Both act as the user
 * through their Power BI connection. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/publish.h"
#include "msapi/fabric.h"
#include "runtime/util.h"

/* Fabric's workspace list does not say the caller's role, but filters by it: ask for the
 * writing roles, lowest first, so the highest one a workspace is listed in wins; every other
 * workspace listed is one the caller only views. roles[i] is borrowed from the table below. */
static int workspace_roles(pbi_session *s, const msapi_items *ws, const char **roles, char *err)
{
	static const char *const writing[] = { "Admin", "Member", "Contributor" };
	for (size_t i = 0; i < ws->n; i++)
		roles[i] = "Viewer";
	for (size_t k = sizeof writing / sizeof writing[0]; k-- > 0;) {
		msapi_items in_role = { 0 };
		int rc = fabric_list_workspaces_in_role(&s->api, writing[k], &in_role, err);
		for (size_t j = 0; !rc && j < in_role.n; j++)
			for (size_t i = 0; i < ws->n; i++)
				if (in_role.v[j].id && ws->v[i].id && !strcmp(in_role.v[j].id, ws->v[i].id))
					roles[i] = writing[k];
		msapi_items_release(&in_role);
		if (rc)
			return rc;
	}
	return PB_OK;
}

/* Appends one (new reference, stolen) to list; on failure frees both and returns NULL. */
static json_t *append(json_t *list, json_t *one)
{
	if (list && one && !json_array_append_new(list, one))
		return list;
	if (!list)
		json_decref(one);
	json_decref(list);
	return NULL;
}

int publish_workspaces(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, json_t **out,
		       pb_failure *f)
{
	pbi_session s;
	msapi_items ws = { 0 };
	const char **roles = NULL;
	*out = NULL;
	int rc = publish_open_session(&s, db, cfg, org_id, user_id, f);
	if (rc)
		return rc;
	if ((rc = fabric_list_workspaces(&s.api, &ws, f->message))) {
		rc = pbi_session_fail(&s, rc, f);
		goto out;
	}
	if (!(roles = calloc(ws.n + 1, sizeof *roles))) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	if ((rc = workspace_roles(&s, &ws, roles, f->message))) {
		rc = pbi_session_fail(&s, rc, f);
		goto out;
	}
	json_t *list = json_array();
	for (size_t i = 0; list && i < ws.n; i++)
		/* writable: the modal greys out workspaces the caller cannot publish into */
		list = append(list, json_pack("{s:s?, s:s?, s:s?, s:s, s:b}", "id", ws.v[i].id, "name", ws.v[i].name,
					      "type", ws.v[i].type, "role", roles[i], "writable",
					      strcmp(roles[i], "Viewer") != 0));
	if (!list || !(*out = json_pack("{s:o}", "workspaces", list)))
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
out:
	free(roles);
	msapi_items_release(&ws);
	pbi_session_release(&s);
	return rc;
}

int publish_connections(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *port_id,
			const char *http_path, json_t **out, pb_failure *f)
{
	cat_port *port = NULL;
	publish_source src = { 0 };
	pbi_session s;
	msapi_items conns = { 0 };
	bool have_session = false;
	*out = NULL;
	pb_failure_clear(f);
	if (!port_id || !*port_id)
		return pb_fail(f, PB_EINVAL, NULL, "the query parameter ?output_port= is required");
	int rc = catalog_port_get(db, org_id, port_id, true, &port, f->message);
	if (rc) {
		rc = rc == PB_ENOTFOUND ? pb_fail(f, rc, NULL, "no output port %s", port_id) : pb_fail_as(f, rc, NULL);
		goto out;
	}
	if ((rc = publish_port_source(cfg, port, http_path, RENDER_PARAMS_QUERY, &src, NULL, f)) ||
	    (rc = publish_open_session(&s, db, cfg, org_id, user_id, f)))
		goto out;
	have_session = true;
	if ((rc = fabric_list_connections(&s.api, &conns, f->message))) {
		rc = pbi_session_fail(&s, rc, f);
		goto out;
	}
	json_t *list = json_array();
	for (size_t i = 0; list && i < conns.n; i++)
		if (publish_connection_matches(&src, &conns.v[i]))
			list = append(list, json_pack("{s:s?, s:s?, s:s?, s:s?}", "id", conns.v[i].id, "name",
						      conns.v[i].name, "type", conns.v[i].type, "path", conns.v[i].path));
	json_t *ds = list ? publish_source_json(&src) : NULL;
	if (!list || !ds || !(*out = json_pack("{s:o, s:o}", "connections", list, "data_source", ds)))
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
out:
	msapi_items_release(&conns);
	if (have_session)
		pbi_session_release(&s);
	publish_source_release(&src);
	catalog_port_free(port);
	return rc;
}
