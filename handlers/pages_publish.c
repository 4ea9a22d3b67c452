/* The Power BI modal: /output-ports/{id}/power-bi (the page without JavaScript; the product
 * page's script shows its panel in a <dialog>). GET offers the user's workspaces, the
 * semantic model name the API would use and the existing connections that match the port's
 * data source (for a server marked on-premises, core/flow/publish_gateway.h: the gateway data
 * sources that do, and a new data source on a gateway the user administers), or says what comes
 * first (connect Power BI, an owner's settings); POST sends
 * the form to core's publish (core/flow/publish.h publish_submit) and goes on to the job's
 * page, /jobs/{id}. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/publish.h"
#include "core/flow/publish_gateway.h"
#include "core/store/catalog.h"
#include "handlers/handlers.h"
#include "runtime/crypto.h"
#include "runtime/page_render.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

/* The fields of the form that come back on it when it is refused, besides the credential
 * fields the source's description does not mark secret: never the secrets. */
static const char *const kept_fields[] = { "workspace_id", "name", "connection", "gateway", "credential_type", "http_path",
					   NULL };

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

/* A refusal of the form (400) in words: head, the items joined ("a, b and c"), tail. */
static int pb_fail_words(pb_failure *f, const char *head, const char *const *items, size_t n, const char *conj,
			 const char *tail)
{
	sbuf b;
	sbuf_init(&b, PB_ERR_MAX);
	(void)sbuf_adds(&b, head);
	for (size_t i = 0; i < n; i++)
		(void)sbuf_addf(&b, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : conj, items[i]);
	(void)sbuf_adds(&b, tail);
	int rc = pb_fail(f, PB_EINVAL, NULL, "%s", sbuf_str(&b));
	sbuf_release(&b);
	return rc;
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
static int build_view(struct req *r, const cat_port *port, const source_desc *desc, json_t *view)
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
	bool needs_path = publish_port_needs_http_path(port, desc);
	if (!port_json || json_object_set_new(view, "port", port_json) ||
	    json_object_set_new(view, "source", source_desc_json(desc)) ||
	    json_object_set_new(view, "product", json_pack("{s:s, s:s}", "id", product->id, "name", product->name)) ||
	    json_object_set_new(view, "default_name", json_string(name)) ||
	    json_object_set_new(view, "needs_http_path", json_boolean(needs_path)) || set_str(view, "http_path", http_path)) {
		port_json = NULL;
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	port_json = NULL;
	bool on_prem = false;
	char marked_gateway[PB_PBI_ID_MAX + 1];
	pb_failure_clear(&f);
	if (publish_gateway_marked(port, &on_prem, marked_gateway, f.message))
		rc = pb_fail_as(&f, PB_EINVAL, NULL);
	if (!rc && json_object_set_new(view, "on_premises", json_boolean(on_prem)))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	if (!rc)
		rc = publish_workspaces(r->db, r->cfg, r->who.org_id, r->who.user_id, &ws, &f);
	/* the connections need the port's HTTP path: without one they wait until it is given; an
	 * on-premises server's are gateway data sources */
	if (!rc && (!needs_path || http_path))
		rc = (on_prem ? publish_gateways : publish_connections)(r->db, r->cfg, r->who.org_id, r->who.user_id,
									 port->id, http_path, &conns, &f);
	if (rc && (is_state(&f) || (rc == PB_EINVAL && needs_path))) {
		rc = pages_set_failure(view, "problem", &f) ? pb_err(r->err, PB_ENOMEM, "out of memory") : PB_OK;
		goto out;
	}
	if (rc) {
		r->fail = f;
		goto out;
	}
	if (json_object_set(view, "workspaces", json_object_get(ws, "workspaces")) ||
	    (conns && (json_object_set(view, on_prem ? "gateways" : "connections",
				       json_object_get(conns, on_prem ? "gateways" : "connections")) ||
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
static int reply_modal(struct req *r, const cat_port *port, const source_desc *desc, int status, json_t *form,
		       const pb_failure *refused)
{
	json_t *view = json_object();
	int rc = view ? PB_OK : pb_err(r->err, PB_ENOMEM, "out of memory");
	if (!rc && form && json_object_set(view, "form", form))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	if (!rc)
		rc = build_view(r, port, desc, view);
	json_decref(form);
	if (rc) {
		json_decref(view);
		return rc;
	}
	return pages_reply_refused(r, "power_bi", view, status, refused);
}

/* The port of the path and its source's description (core/flow/publish.h publish_port_desc):
 * a port whose type has none answers as the API does (400). */
static int load_port_source(struct req *r, cat_port **port, source_desc **desc)
{
	int rc = load_port(r, port);
	return rc ? rc : publish_port_desc(r->cfg, *port, desc, &r->fail);
}

int pages_power_bi(struct req *r)
{
	cat_port *port = NULL;
	source_desc *desc = NULL;
	int rc = load_port_source(r, &port, &desc);
	if (!rc)
		rc = reply_modal(r, port, desc, 200, NULL, NULL);
	source_desc_free(desc);
	catalog_port_free(port);
	return rc;
}

/* The credentials of a new connection (or gateway data source) the form gives, of a kind the
 * source takes: *out new {"credential_type", fields...} (secret), or a message in f naming
 * what is missing in the words of the form's labels. */
static int new_credentials(const struct req *r, const source_desc *desc, json_t **out, pb_failure *f)
{
	/* the kinds of credentials the source takes: one needs no choosing */
	const source_cred *kind = desc->ncreds == 1 ? &desc->creds[0] : source_cred_named(desc, field(r, "credential_type"));
	json_t *creds;
	*out = NULL;
	if (!kind) {
		const char *labels[SOURCE_MAX_CREDS];
		for (size_t i = 0; i < desc->ncreds; i++)
			labels[i] = desc->creds[i].label;
		return pb_fail_words(f, "Choose how the new connection signs in: ", labels, desc->ncreds, " or ", ".");
	}
	if (!(creds = json_pack("{s:s}", "credential_type", kind->kind)))
		return pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	for (size_t i = 0; i < kind->nfields; i++) {
		const char *v = field(r, kind->fields[i].name);
		int rc = PB_OK;
		if (!v) {
			const char *labels[SOURCE_MAX_CRED_FIELDS];
			for (size_t k = 0; k < kind->nfields; k++)
				labels[k] = kind->fields[k].label;
			rc = pb_fail_words(f, "A new connection needs ", labels, kind->nfields, " and ", ".");
		} else if (set_str(creds, kind->fields[i].name, v)) {
			rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		}
		if (rc) {
			*out = creds;   /* the caller wipes what was copied */
			return rc;
		}
	}
	*out = creds;
	return PB_OK;
}

/* What the form chose to reach the data source through, into the request o: an existing
 * connection (connection_id) or new credentials (connection, *creds); for an on-premises
 * server the "gateway" field, "ds:<gateway>:<data source>" (gateway_id, gateway_datasource_id)
 * or "new:<gateway>" (gateway_id and new credentials). */
static int chosen_connection(const struct req *r, const cat_port *port, const source_desc *desc, json_t *o,
			     json_t **creds, pb_failure *f)
{
	bool on_prem = false;
	char marked[PB_PBI_ID_MAX + 1];
	if (publish_gateway_marked(port, &on_prem, marked, f->message))
		return pb_fail_as(f, PB_EINVAL, NULL);
	if (!on_prem) {
		const char *conn = field(r, "connection");
		if (!conn)
			return pb_fail(f, PB_EINVAL, NULL, "Choose a connection, or Create a new connection.");
		if (strcmp(conn, "new"))
			return set_str(o, "connection_id", conn) ? pb_fail(f, PB_ENOMEM, NULL, "out of memory") : PB_OK;
	} else {
		const char *gw = field(r, "gateway"), *sep;
		char gateway_id[PB_PBI_ID_MAX + 1];
		bool is_new = gw && !strncmp(gw, "new:", 4), is_ds = gw && !strncmp(gw, "ds:", 3);
		if (!is_new && !is_ds)
			return pb_fail(f, PB_EINVAL, NULL, "Choose a gateway data source, or create one on a gateway.");
		gw += is_new ? 4 : 3;
		sep = is_ds ? strchr(gw, ':') : gw + strlen(gw);
		if (!sep || (size_t)(sep - gw) > PB_PBI_ID_MAX)
			return pb_fail(f, PB_EINVAL, NULL, "Choose a gateway data source, or create one on a gateway.");
		memcpy(gateway_id, gw, (size_t)(sep - gw));
		gateway_id[sep - gw] = '\0';
		if (set_str(o, "gateway_id", gateway_id) || (is_ds && set_str(o, "gateway_datasource_id", sep + 1)))
			return pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		if (is_ds)
			return PB_OK;
	}
	int rc = new_credentials(r, desc, creds, f);
	if (!rc && json_object_set(o, "connection", *creds))
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	return rc;
}

/* The publish request body (JSON, as POST /api/output-ports/{id}/powerbi-publish takes it) from
 * the form, or a message in f for what the form lacks in the words of its labels. *body new
 * (secret: it may hold credentials). */
static int form_body(struct req *r, const cat_port *port, const source_desc *desc, char **body, pb_failure *f)
{
	const char *ws = field(r, "workspace_id");
	json_t *o = NULL, *creds = NULL;
	int rc = PB_OK;
	*body = NULL;
	if (!ws)
		return pb_fail(f, PB_EINVAL, NULL, "Choose a workspace.");
	if (!(o = json_pack("{s:s}", "workspace_id", ws)) || set_str(o, "name", field(r, "name")) ||
	    set_str(o, "http_path", field(r, "http_path")))
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	if (!rc)
		rc = chosen_connection(r, port, desc, o, &creds, f);
	if (!rc && !(*body = json_dumps(o, JSON_COMPACT)))
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

/* The fields of kept_fields and the source's credential fields that are not secret, as the
 * form had them, for showing it again. New; NULL on memory failure. */
static json_t *kept_form(const struct req *r, const source_desc *desc)
{
	json_t *o = json_object();
	for (size_t i = 0; o && kept_fields[i]; i++)
		if (set_str(o, kept_fields[i], field(r, kept_fields[i]))) {
			json_decref(o);
			o = NULL;
		}
	for (size_t c = 0; o && c < desc->ncreds; c++)
		for (size_t i = 0; o && i < desc->creds[c].nfields; i++) {
			const source_cred_field *cf = &desc->creds[c].fields[i];
			if (!cf->secret && set_str(o, cf->name, field(r, cf->name))) {
				json_decref(o);
				o = NULL;
			}
		}
	return o;
}

int pages_power_bi_submit(struct req *r)
{
	cat_port *port = NULL;
	source_desc *desc = NULL;
	char *body = NULL, job_id[PB_ID_BUF], path[16 + PB_ID_BUF];
	bool existing = false;
	pb_failure f;
	pb_failure_clear(&f);
	int rc = load_port_source(r, &port, &desc);
	if (rc)
		goto out;
	if (!(rc = form_body(r, port, desc, &body, &f)))
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
	rc = reply_modal(r, port, desc, pb_rc_status(rc), kept_form(r, desc), &f);
out:
	if (body)
		pb_secret_free(body, strlen(body));
	source_desc_free(desc);
	catalog_port_free(port);
	return rc;
}
