/* The Power BI modal: /output-ports/{id}/power-bi (the page without JavaScript; the product
 * page's script shows its panel in a <dialog>). GET offers the user's workspaces, the
 * semantic model name the API would use and the existing connections that match the port's
 * data source, or says what comes first (connect Power BI, an owner's settings); POST sends
 * the form to core's publish (core/flow/publish.h publish_submit) and goes on to the job's
 * page, /jobs/{id}. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/publish.h"
#include "core/store/catalog.h"
#include "handlers/handlers.h"
#include "runtime/crypto.h"
#include "runtime/page_render.h"
#include "runtime/util.h"

/* The fields of the form that come back on it when it is refused: never the secrets. */
static const char *const kept_fields[] = { "workspace_id", "name", "connection", "credential_type", "username",
					   "tenant_id", "client_id", "http_path", NULL };

/* The value of form field name, or NULL when it is absent or empty. */
static const char *field(const struct req *r, const char *name)
{
	const page_field *f = page_form_get(&r->form, name);
	return f && f->len ? f->value : NULL;
}

/* Sets o[key] = a new string of s unless s is NULL; true on failure (memory). */
static bool set_str(json_t *o, const char *key, const char *s)
{
	return s && json_object_set_new(o, key, json_string(s));
}

/* What stands between the user and the form, for the page to say: the code of a refusal
 * that is a state of the user's or organization's Power BI, not a failure of the page. */
static bool is_state(const pb_failure *f)
{
	static const char *const states[] = { "not_configured", "not_connected", "needs_reconnect", "bad_credentials",
					      "unavailable", "throttled", "outcome_unknown", "powerbi_forbidden",
					      "powerbi_rejected", NULL };
	const char *code = pb_failure_code(f);
	for (size_t i = 0; states[i]; i++)
		if (!strcmp(code, states[i]))
			return true;
	return false;
}

/* The modal's view for port (borrowed): the port and its product, the default name, and what
 * core offers acting as the user. A Power BI refusal that is a state (is_state) goes into
 * view.problem, and the page is still answered. */
static int build_view(struct req *r, const cat_port *port, json_t *view)
{
	cat_product *product = NULL;
	json_t *ws = NULL, *conns = NULL, *port_json = catalog_port_json(port);
	char name[PB_PUBLISH_NAME_MAX + 1];
	const char *http_path = field(r, "http_path");
	pb_failure f;
	int rc = catalog_product_get(r->db, r->who.org_id, port->data_product_id, false, &product, r->err);
	if (!rc)
		rc = publish_default_name(r->db, r->who.org_id, port, name, r->err);
	if (rc)
		goto out;
	if (!http_path)
		http_path = req_query(r, "http_path");
	bool needs_path = str_ieq(port->type, "databricks") && !publish_port_has_http_path(port);
	if (!port_json || json_object_set_new(view, "port", port_json) ||
	    json_object_set_new(view, "product", json_pack("{s:s, s:s}", "id", product->id, "name", product->name)) ||
	    json_object_set_new(view, "default_name", json_string(name)) ||
	    json_object_set_new(view, "needs_http_path", json_boolean(needs_path)) || set_str(view, "http_path", http_path)) {
		port_json = NULL;
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	port_json = NULL;
	pb_failure_clear(&f);
	rc = publish_workspaces(r->db, r->cfg, r->who.org_id, r->who.user_id, &ws, &f);
	/* the connections need the port's HTTP path: without one they wait until it is given */
	if (!rc && (!needs_path || http_path))
		rc = publish_connections(r->db, r->cfg, r->who.org_id, r->who.user_id, port->id, http_path, &conns, &f);
	if (rc && (is_state(&f) || (rc == PB_EINVAL && needs_path))) {
		rc = pages_set_failure(view, "problem", &f) ? pb_err(r->err, PB_ENOMEM, "out of memory") : PB_OK;
		goto out;
	}
	if (rc) {
		r->fail = f;
		goto out;
	}
	if (json_object_set(view, "workspaces", json_object_get(ws, "workspaces")) ||
	    (conns && (json_object_set(view, "connections", json_object_get(conns, "connections")) ||
		       json_object_set(view, "data_source", json_object_get(conns, "data_source")))))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
out:
	json_decref(port_json);
	json_decref(ws);
	json_decref(conns);
	catalog_product_free(product);
	return rc;
}

/* The port of the path, publishable: 404 for none (or another organization's), 409
 * port_retired for a retired one, as the API answers. *out is new. */
static int load_port(struct req *r, cat_port **out)
{
	const char *id = req_capture(r, "id");
	int rc = catalog_port_get(r->db, r->who.org_id, id, false, out, r->err);
	if (rc == PB_ENOTFOUND)
		return req_fail(r, rc, NULL, "no output port %.64s", id);
	if (!rc && (*out)->retired_at)
		rc = req_fail(r, PB_ECONFLICT, "port_retired", "%s", catalog_port_retired_message(*out, r->err));
	return rc;
}

/* Answers the modal with status; form (stolen, may be NULL) is the earlier input, message
 * (may be NULL) why it was refused. */
static int reply_modal(struct req *r, const cat_port *port, int status, json_t *form, const pb_failure *refused)
{
	json_t *view = json_object();
	int rc = view ? PB_OK : pb_err(r->err, PB_ENOMEM, "out of memory");
	if (!rc && form && json_object_set(view, "form", form))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	if (!rc && pages_set_failure(view, "error", refused))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	if (!rc)
		rc = build_view(r, port, view);
	json_decref(form);
	if (rc) {
		json_decref(view);
		return rc;
	}
	return pages_reply(r, "power_bi", view, status);
}

int pages_power_bi(struct req *r)
{
	cat_port *port = NULL;
	int rc = load_port(r, &port);
	if (!rc)
		rc = reply_modal(r, port, 200, NULL, NULL);
	catalog_port_free(port);
	return rc;
}

/* The publish request body (JSON, as POST /api/output-ports/{id}/powerbi-publish takes it) from
 * the form, or a message in f for what the form lacks in the words of its labels. *body new
 * (secret: it may hold credentials). */
static int form_body(struct req *r, const cat_port *port, char **body, pb_failure *f)
{
	const char *ws = field(r, "workspace_id"), *conn = field(r, "connection"), *name = field(r, "name");
	const char *ctype = field(r, "credential_type");
	json_t *o = NULL, *creds = NULL;
	int rc = PB_OK;
	*body = NULL;
	bool snowflake = str_ieq(port->type, "snowflake");
	if (!ws)
		return pb_fail(f, PB_EINVAL, NULL, "Choose a workspace.");
	if (!conn)
		return pb_fail(f, PB_EINVAL, NULL, "Choose a connection, or Create a new connection.");
	if (!strcmp(conn, "new")) {
		if (snowflake)
			ctype = "basic";
		static const struct {
			const char *type, *fields[4], *labels;
		} kinds[] = {
			{ "basic", { "username", "password", NULL }, "Username and Password" },
			{ "token", { "token", NULL }, "a Personal Access Token" },
			{ "service_principal", { "tenant_id", "client_id", "client_secret", NULL },
			  "Tenant ID, Client ID and Client Secret" },
		};
		size_t k = 0;
		while (k < sizeof kinds / sizeof kinds[0] && (!ctype || strcmp(kinds[k].type, ctype)))
			k++;
		if (k == sizeof kinds / sizeof kinds[0])
			return pb_fail(f, PB_EINVAL, NULL, "Choose how the new connection signs in: Personal Access Token or "
				       "OAuth2 Service Principal.");
		if (!(creds = json_pack("{s:s}", "credential_type", ctype)))
			return pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		for (size_t i = 0; kinds[k].fields[i] && !rc; i++) {
			const char *v = field(r, kinds[k].fields[i]);
			if (!v)
				rc = pb_fail(f, PB_EINVAL, NULL, "A new connection needs %s.", kinds[k].labels);
			else if (set_str(creds, kinds[k].fields[i], v))
				rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		}
	}
	if (!rc && (!(o = json_pack("{s:s}", "workspace_id", ws)) || set_str(o, "name", name) ||
		    set_str(o, "http_path", field(r, "http_path")) ||
		    (creds ? json_object_set(o, "connection", creds) : set_str(o, "connection_id", conn)) ||
		    !(*body = json_dumps(o, JSON_COMPACT))))
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	/* the credentials' copies in the JSON values are wiped before they are freed */
	const char *key;
	json_t *v;
	json_object_foreach(creds, key, v)
		if (json_is_string(v))
			pb_wipe((char *)json_string_value(v), json_string_length(v));
	json_decref(o);
	json_decref(creds);
	return rc;
}

/* The fields of kept_fields the form had, for showing it again. New; NULL on memory failure. */
static json_t *kept_form(const struct req *r)
{
	json_t *o = json_object();
	for (size_t i = 0; o && kept_fields[i]; i++)
		if (set_str(o, kept_fields[i], field(r, kept_fields[i]))) {
			json_decref(o);
			o = NULL;
		}
	return o;
}

int pages_power_bi_submit(struct req *r)
{
	cat_port *port = NULL;
	char *body = NULL, job_id[PB_ID_BUF], path[16 + PB_ID_BUF];
	bool existing = false;
	pb_failure f;
	pb_failure_clear(&f);
	int rc = load_port(r, &port);
	if (rc)
		goto out;
	if (!(rc = form_body(r, port, &body, &f)))
		rc = publish_submit(r->db, r->cfg, r->who.org_id, r->who.user_id, port->id, body, strlen(body), job_id,
				    &existing, &f);
	if (!rc) {
		/* the job's page; a reload there does not publish again */
		rc = xsnprintf(path, sizeof path, "/jobs/%s", job_id) ? pb_err(r->err, PB_EINTERNAL, "job id too long")
								      : page_redirect(r, path);
		goto out;
	}
	/* pbiport's own failures are the error page; the rest is said on the form */
	if (rc == PB_ENOMEM || rc == PB_EIO || rc == PB_EINTERNAL) {
		r->fail = f;
		goto out;
	}
	rc = reply_modal(r, port, pb_rc_status(rc), kept_form(r), &f);
out:
	if (body)
		pb_secret_free(body, strlen(body));
	catalog_port_free(port);
	return rc;
}
