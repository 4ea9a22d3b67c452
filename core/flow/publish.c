/* Publish an output port to Power BI. See core/flow/publish.h. */
#include "core/flow/publish.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/lang/contract.h"
#include "core/lang/mlineage.h"
#include "core/flow/ms_failure.h"
#include "core/flow/pbi_session.h"
#include "core/flow/publish_gateway.h"
#include "core/flow/webhooks.h"
#include "core/store/published_models.h"
#include "core/lang/tmdl.h"
#include "msapi/fabric.h"
#include "msapi/gateways.h"
#include "msapi/powerbi.h"
#include "runtime/crypto.h"
#include "runtime/jobs.h"
#include "runtime/json_body.h"
#include "runtime/strbuf.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#define SEAL_CONTEXT PUBLISH_SEAL_CONTEXT

void publish_source_release(publish_source *s)
{
	if (!s)
		return;
	source_desc_free(s->desc);
	for (size_t i = 0; i < SOURCE_MAX_PARAMS; i++)
		free(s->values[i]);
	free(s->path);
	memset(s, 0, sizeof *s);
}

/* ---- the data source of the rendered model ---------------------------------------- */

/* A render that failed (rc, message in f): what the caller gave is a bad request; the server's
 * templates failing is "template_failed", a 500 that still shows the template's file and line
 * (the failure is named, so the runtime shows its message: the admin who fixes it reads it in
 * the answer), not the caller's fault. */
static int template_or_input(pb_failure *f, int rc, bool templates)
{
	if (rc != PB_EINVAL && rc != PB_ELIMIT)
		return pb_fail_as(f, rc, NULL);
	return templates ? pb_fail_as(f, PB_EINTERNAL, "template_failed") : pb_fail_as(f, PB_EINVAL, NULL);
}

/* Parses the rendered .tmdl files back into a model (the self-check of `validating`). */
static int parse_back(const pb_files *files, tmdl_model **out, char *err)
{
	tmdl_model *m = tmdl_model_new();
	int rc = m ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < files->n; i++) {
		size_t n = strlen(files->v[i].path);
		if (n > 5 && !strcmp(files->v[i].path + n - 5, ".tmdl"))
			rc = tmdl_parse_buffer(m, files->v[i].path, files->v[i].content, files->v[i].len, err);
	}
	if (!rc)
		rc = tmdl_model_finish(m, err);
	if (rc) {
		char sub[PB_ERR_MAX];
		xsnprintf(sub, sizeof sub, "%s", err);
		pb_err(err, PB_EINVAL, "the rendered TMDL does not parse back: %s", sub);
		tmdl_model_free(m);
		return PB_EINVAL;
	}
	if (m->n_tables == 0) {
		tmdl_model_free(m);
		return pb_err(err, PB_EINVAL, "the rendered TMDL has no tables");
	}
	*out = m;
	return PB_OK;
}

/* What a connection parameter takes from a source the model's M reads. */
static const char *read_value(const mlineage_source *s, source_from from)
{
	switch (from) {
	case SOURCE_FROM_HOST: return s->host;
	case SOURCE_FROM_WAREHOUSE: return s->warehouse;
	case SOURCE_FROM_HTTP_PATH: return s->http_path;
	default: return s->database;
	}
}

/* True when value a and b of parameter p are the same (a server compared as servers are). */
static bool same_value(const source_desc *d, const source_param *p, const char *a, const char *b)
{
	return p->server ? mlineage_same_server(d->reads, a, b) : str_ieq(a, b);
}

/* The connection's path: the values joined with ';' (new, or NULL on memory failure). */
static char *join_path(char *const *values, size_t n)
{
	sbuf b;
	sbuf_init(&b, PB_RENDER_MAX_PATH);
	for (size_t i = 0; i < n; i++)
		if (sbuf_addf(&b, "%s%s", i ? ";" : "", values[i])) {
			sbuf_release(&b);
			return NULL;
		}
	char *s = sbuf_detach(&b, NULL);
	sbuf_release(&b);
	return s;
}

/* One source of a table's M (s): the kind the description reads, with every value the
 * connection needs, and the same as the tables before (out, filled by the first). */
static int take_source(const tmdl_table *tb, const mlineage_source *s, const source_desc *d, publish_source *out,
		       char *err)
{
	const char *v[SOURCE_MAX_PARAMS];
	if (strcmp(s->type, d->reads))
		return pb_err(err, PB_EINVAL, "table %s reads a source Power BI cannot bind here (%s, not the %s its "
			      "server is)", tb->name, s->type, d->reads);
	for (size_t k = 0; k < d->nparams; k++)
		if (!(v[k] = read_value(s, d->params[k].from)))
			return pb_err(err, PB_EINVAL, "table %s reads a source Power BI cannot bind here (%s with a computed "
				      "or missing %s)", tb->name, s->type, d->params[k].name);
	if (!out->desc) {
		for (size_t k = 0; k < d->nparams; k++)
			if (!(out->values[k] = xstrdup(v[k])))
				return pb_err(err, PB_ENOMEM, "out of memory");
		out->desc = (source_desc *)d;   /* taken by the caller once all tables agree */
		return PB_OK;
	}
	for (size_t k = 0; k < d->nparams; k++)
		if (!same_value(d, &d->params[k], out->values[k], v[k])) {
			char *path = join_path(out->values, d->nparams);
			int rc = pb_err(err, PB_EINVAL, "table %s reads another server than the other tables (%s): one "
					"model binds to one connection", tb->name, path ? path : "?");
			free(path);
			return rc;
		}
	return PB_OK;
}

/* Reads the one source every partition of the model reads, of the kind d says (d is taken
 * into out on success). */
static int model_source(const tmdl_model *m, source_desc *d, publish_source *out, char *err)
{
	mlineage_param *params = NULL;
	size_t nparams = 0;
	int rc = mlineage_params_from_model(m, &params, &nparams, err);
	for (size_t t = 0; !rc && t < m->n_tables; t++) {
		const tmdl_table *tb = &m->tables[t];
		for (size_t p = 0; !rc && p < tb->n_partitions; p++) {
			const tmdl_partition *pa = &tb->partitions[p];
			if (!pa->source || (pa->source_type && !str_ieq(pa->source_type, "m")))
				continue;
			mlineage_sources srcs = { 0 };
			char sub[PB_ERR_MAX];
			if ((rc = mlineage_parse(pa->source, params, nparams, &srcs, sub))) {
				rc = pb_err(err, PB_EINVAL, "table %s: its M source does not parse: %s", tb->name, sub);
				break;
			}
			for (size_t i = 0; !rc && i < srcs.n; i++)
				rc = take_source(tb, &srcs.v[i], d, out, err);
			mlineage_sources_release(&srcs);
		}
	}
	free(params);
	if (!rc && !out->desc)
		rc = pb_err(err, PB_EINVAL, "the rendered model reads no %s table", d->label);
	if (!rc && d->nparams && !(out->path = join_path(out->values, d->nparams)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	if (!rc && !d->nparams && !(out->path = xstrdup("")))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	if (rc) {
		out->desc = NULL;   /* still the caller's */
		publish_source_release(out);
		return rc;
	}
	out->type = d->conn_type;
	out->host = d->nparams ? out->values[0] : NULL;
	return PB_OK;
}

int publish_render(const pb_config *cfg, const cat_port *port, const render_opts *opts, pb_files *files,
		   pb_failure *f)
{
	pb_contract *c = NULL;
	render_fault fault = RENDER_FAULT_NONE;
	render_opts o = *opts;
	int rc;
	o.fault = &fault;
	o.cfg = cfg;   /* PBIPORT_TEMPLATE_PATH and PBIPORT_DATADIR */
	if (!port->contract_text)
		return pb_fail(f, PB_EINTERNAL, NULL, "output port %s was read without its contract", port->id);
	/* the stored text was accepted at import: failing now means pbiport's reader changed */
	if ((rc = contract_parse(port->contract_text, strlen(port->contract_text), "stored contract", &c, f->message))) {
		rc = pb_fail(f, rc == PB_ENOMEM ? rc : PB_EINTERNAL, NULL, "output port %s: %s", port->id, f->message);
		goto out;
	}
	if ((rc = tmdl_render(c, &o, files, f->message)))
		rc = template_or_input(f, rc, fault == RENDER_FAULT_TEMPLATE);
out:
	contract_free(c);
	return rc;
}

int publish_port_source(const pb_config *cfg, const cat_port *port, const char *http_path, render_params params,
			publish_source *out, pb_files *files, pb_failure *f)
{
	tmdl_model *m = NULL;
	source_desc *desc = NULL;
	pb_files local = { 0 };
	pb_files *fs = files ? files : &local;
	int rc;
	memset(out, 0, sizeof *out);
	pb_failure_clear(f);
	render_value given = { "http_path", http_path };
	render_opts opts = { .server = port->name, .values = &given, .nvalues = 1, .params = params, .source = &desc };
	if ((rc = publish_render(cfg, port, &opts, fs, f)))
		goto out;
	/* what the templates made must parse back and bind to one source: theirs to get right */
	if ((rc = parse_back(fs, &m, f->message)) || (rc = model_source(m, desc, out, f->message)))
		rc = template_or_input(f, rc, true);
	else
		desc = NULL;   /* out's */
out:
	source_desc_free(desc);
	tmdl_model_free(m);
	pb_files_release(&local);
	if (rc && files)
		pb_files_release(files);
	return rc;
}

int publish_port_desc(const pb_config *cfg, const cat_port *port, source_desc **out, pb_failure *f)
{
	char sub[PB_ERR_MAX];
	pb_failure_clear(f);
	int rc = source_describe(cfg, NULL, port->type, out, sub);
	if (rc == PB_ENOTFOUND)
		return pb_fail(f, PB_EINVAL, NULL, "output port %s is of type %s, which cannot be published to Power BI: %s",
			       port->name, port->type, sub);
	if (rc)
		(void)xsnprintf(f->message, sizeof f->message, "%s", sub);
	return rc ? template_or_input(f, rc, true) : PB_OK;
}

json_t *publish_source_json(const publish_source *s)
{
	const source_desc *d = s->desc;
	json_t *params = json_object();
	for (size_t k = 0; params && k < d->nparams; k++)
		if (json_object_set_new(params, d->params[k].name, json_string(s->values[k]))) {
			json_decref(params);
			params = NULL;
		}
	if (!params)
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:s?, s:s, s:o}", "type", s->type, "source", d->type, "label", d->label, "host",
			 s->host, "path", s->path, "parameters", params);
}

bool publish_connection_matches(const publish_source *s, const msapi_item *conn)
{
	const source_desc *d = s->desc;
	if (!d || !s->type || !conn->type || !str_ieq(s->type, conn->type) || fabric_connection_on_gateway(conn))
		return false;
	if (!d->nparams)
		return true;   /* one connection per type (Fabric: BigQuery has no parameters) */
	if (!conn->path)
		return false;
	const char *part = conn->path;
	for (size_t k = 0; part && k < d->nparams; k++) {
		/* Fabric paths may carry optional parameters after the ones the description names */
		size_t n = strcspn(part, ";");
		char *value = xstrndup(part, n);
		bool same = value && same_value(d, &d->params[k], value, s->values[k]);
		free(value);
		if (!same)
			return false;
		part = part[n] == ';' ? part + n + 1 : NULL;
		if (!part && k + 1 < d->nparams)
			return false;
	}
	return true;
}

/* ---- the request ------------------------------------------------------------------- */

/* A required (or, with optional, possibly absent) non-empty string field of at most max
 * bytes without control characters. *out borrowed from obj. */
static int str_field(const json_t *obj, const char *key, const char *label, bool optional, size_t max,
		     const char **out, char *err)
{
	const json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v && optional)
		return PB_OK;
	if (!json_is_string(v))
		return pb_err(err, PB_EINVAL, "%s is required (a text)", label);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0 || strspn(s, " \t") == n)
		return pb_err(err, PB_EINVAL, "%s must not be empty", label);
	if (n > max)
		return pb_err(err, PB_EINVAL, "%s is longer than %zu bytes", label, max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return pb_err(err, PB_EINVAL, "%s must not contain control characters", label);
	*out = s;
	return PB_OK;
}

/* The source's field the publish request may give (Databricks' HTTP path): borrowed, NULL
 * when it has none. */
static const source_field *request_field(const source_desc *d)
{
	for (size_t i = 0; i < d->nfields; i++)
		if (d->fields[i].request)
			return &d->fields[i];
	return NULL;
}

/* The value the port's server (JSON as the catalog keeps it) gives for field f: a field or a
 * customProperties entry, by f's keys; NULL when none. */
static const char *server_value_of(const json_t *server, const source_field *f)
{
	const json_t *custom = json_object_get(server, "customProperties");
	for (size_t i = 0; f && i < f->nkeys; i++) {
		const char *v = json_string_value(json_object_get(server, f->keys[i].key));
		if (!v)
			v = json_string_value(json_object_get(custom, f->keys[i].key));
		if (v && *v)
			return v;
	}
	return NULL;
}

/* The longest prefix of s[0..len) of at most max bytes that ends at a character boundary. */
static size_t utf8_prefix_len(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* A Microsoft id of the request (field label) is a GUID: it goes into Power BI URLs. */
static int guid_field(const char *value, const char *label, const char *what, char *err)
{
	if (!value || str_is_guid(value))
		return PB_OK;
	return pb_err(err, PB_EINVAL, "%s must be %s id, a GUID like 00000000-0000-0000-0000-000000000000 (got \"%.*s\")",
		      label, what, (int)utf8_prefix_len(value, strlen(value), 64), value);
}

/* The credential kinds of d, for messages: "basic", "token or service_principal". */
static const char *kinds_text(const source_desc *d, char *buf, size_t size)
{
	sbuf b;
	sbuf_init(&b, size - 1);
	source_creds_text(d, &b);
	(void)xsnprintf(buf, size, "%s", sbuf_str(&b));
	sbuf_release(&b);
	return buf;
}

/* Validates body.connection against the kinds of credentials the port's source takes (its
 * description); *sealed_out is the sealed credentials JSON (new), *ctype the credential type
 * (borrowed from body). */
static int check_credentials(const pb_config *cfg, const json_t *conn, const source_desc *d, char **sealed_out,
			     const char **ctype, char *err)
{
	const char *keys[SOURCE_MAX_CRED_FIELDS + 2] = { "credential_type" };
	char kinds[160];
	int rc;
	if (!json_is_object(conn))
		return pb_err(err, PB_EINVAL, "connection must be an object with credential_type and credentials");
	if ((rc = str_field(conn, "credential_type", "connection.credential_type", false, 64, ctype, err)))
		return rc;
	const source_cred *kind = source_cred_named(d, *ctype);
	if (!kind)
		return pb_err(err, PB_EINVAL, "connection.credential_type must be %s for a %s output port, not \"%s\"",
			      kinds_text(d, kinds, sizeof kinds), d->type, *ctype);
	for (size_t i = 0; i < kind->nfields; i++)
		keys[i + 1] = kind->fields[i].name;
	if ((rc = json_body_only_keys(conn, keys, "connection.", err)))
		return rc;
	/* every field there first, then the GUIDs: what is missing is said before what is malformed */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < kind->nfields; i++) {
			char label[SOURCE_TEXT_MAX + 16];
			const char *v;
			xsnprintf(label, sizeof label, "connection.%s", kind->fields[i].name);
			if ((rc = str_field(conn, kind->fields[i].name, label, false, PB_PBI_SECRET_MAX, &v, err)) ||
			    (pass && kind->fields[i].guid && (rc = guid_field(v, label, kind->fields[i].guid, err))))
				return rc;
		}
	return publish_seal_credentials(cfg, conn, sealed_out, err);
}

int publish_seal_credentials(const pb_config *cfg, const json_t *conn, char **sealed, char *err)
{
	if (!cfg || !cfg->encryption_keys)
		return pb_err(err, PB_EINTERNAL, "APPLICATION_ENCRYPTION_KEYS is not set: credentials cannot be kept");
	char *text = json_dumps(conn, JSON_COMPACT);
	if (!text)
		return pb_err(err, PB_ENOMEM, "out of memory");
	size_t len = strlen(text);
	int rc = pb_seal(cfg->encryption_keys, text, len, SEAL_CONTEXT, sealed, err);
	pb_secret_free(text, len);
	return rc;
}

/* The storage modes the port's contract asks for (powerbi.storageMode), checked against its
 * source before anything is queued: one Power BI does not allow is a bad request naming the
 * table or the server (the render checks it again). */
static int check_storage_modes(const cat_port *port, const source_desc *d, char *err)
{
	pb_contract *c = NULL;
	const char *text = port->contract_text ? port->contract_text : "";
	int rc = contract_parse(text, strlen(text), "stored contract", &c, err);
	if (rc)   /* accepted at import: pbiport's reader changed */
		return pb_err(err, rc == PB_ENOMEM ? rc : PB_EINTERNAL, "output port %s: the stored contract no longer reads",
			      port->name);
	rc = render_storage_modes(c, contract_server(c, port->name), d, 0, RENDER_PARAMS_BODY, NULL, err);
	contract_free(c);
	return rc;
}

bool publish_port_needs_http_path(const cat_port *port, const source_desc *d)
{
	const source_field *f = request_field(d);
	if (!f)
		return false;
	json_t *server = json_loads(port->server_json ? port->server_json : "", 0, NULL);
	bool has = server_value_of(server, f) != NULL;
	json_decref(server);
	return !has;
}

int publish_default_name(pb_db *db, const char *org_id, const cat_port *port, char out[PB_PUBLISH_NAME_MAX + 1],
			 char *err)
{
	static const char dash[] = " \xe2\x80\x93 ";   /* en dash */
	cat_product *product = NULL;
	int rc = catalog_product_get(db, org_id, port->data_product_id, false, &product, err);
	if (rc)
		return rc;
	const char *pname = product->name && *product->name ? product->name : port->name;
	size_t plen = strlen(pname), room = PB_PUBLISH_NAME_MAX;
	size_t slen = product->nports > 1 ? sizeof dash - 1 + strlen(port->name) : 0;
	if (slen && slen < room / 2)
		room -= slen;
	else
		slen = 0;   /* a port name too long to add: the product's name alone */
	size_t n = utf8_prefix_len(pname, plen, room);
	xsnprintf(out, PB_PUBLISH_NAME_MAX + 1, "%.*s%s%s", (int)n, pname, slen ? dash : "", slen ? port->name : "");
	for (char *c = out; *c; c++)   /* a name is shown on one line */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	catalog_product_free(product);
	return PB_OK;
}

void publish_request_release(publish_request *rq)
{
	if (!rq)
		return;
	catalog_port_free(rq->port);
	source_desc_free(rq->desc);
	free(rq->input);
	if (rq->sealed)
		pb_secret_free(rq->sealed, strlen(rq->sealed));
	memset(rq, 0, sizeof *rq);
}

int publish_request_read(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			 const char *port_id, const json_t *body, publish_request *out, char *err)
{
	static const char *const allowed[] = { "workspace_id", "name", "connection_id", "connection", "http_path",
					       "auto_update", "gateway_id", "gateway_datasource_id", NULL };
	json_t *server = NULL, *input = NULL;
	publish_gateway_req gw = { 0 };
	const char *ws, *name, *conn_id, *http_path, *auto_update, *ctype = NULL;
	char key_src[4 * PB_ID_BUF + PB_PUBLISH_NAME_MAX + PB_PBI_ID_MAX], hash[PB_SHA256_HEX_LEN + 1];
	char dflt[PB_PUBLISH_NAME_MAX + 1];
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = catalog_port_get(db, org_id, port_id, true, &out->port, err)))
		goto out;
	const cat_port *port = out->port;
	if (!json_is_object(body)) {
		rc = pb_err(err, PB_EINVAL, "the body must be a JSON object");
		goto out;
	}
	if ((rc = json_body_only_keys(body, allowed, "", err)) ||
	    (rc = str_field(body, "workspace_id", "workspace_id", false, PB_PBI_ID_MAX, &ws, err)) ||
	    (rc = str_field(body, "name", "name", true, PB_PUBLISH_NAME_MAX, &name, err)) ||
	    (rc = str_field(body, "connection_id", "connection_id", true, PB_PBI_ID_MAX, &conn_id, err)) ||
	    (rc = str_field(body, "http_path", "http_path", true, PB_RENDER_MAX_PATH, &http_path, err)) ||
	    (rc = str_field(body, "auto_update", "auto_update", true, 16, &auto_update, err)) ||
	    (rc = guid_field(ws, "workspace_id", "a Power BI workspace", err)) ||
	    (rc = guid_field(conn_id, "connection_id", "a Power BI connection", err)))
		goto out;
	if (auto_update && strcmp(auto_update, "off") && strcmp(auto_update, "additive")) {
		rc = pb_err(err, PB_EINVAL, "auto_update: \"off\" or \"additive\" (update the model at once when its "
			    "contract only adds), not \"%s\"", auto_update);
		goto out;
	}
	if ((rc = source_describe(cfg, NULL, port->type, &out->desc, err))) {
		char sub[PB_ERR_MAX];
		(void)xsnprintf(sub, sizeof sub, "%s", err);
		if (rc == PB_ENOTFOUND)
			rc = pb_err(err, PB_EINVAL, "output port %s is of type %s, which cannot be published to Power BI: %s",
				    port->name, port->type, sub);
		else if (rc == PB_EINVAL || rc == PB_ELIMIT)
			rc = pb_err(err, PB_EINTERNAL, "%s", sub);   /* the server's templates, not the request */
		goto out;
	}
	const source_desc *d = out->desc;
	const source_field *rf = request_field(d);
	const json_t *conn = json_object_get(body, "connection");
	if ((rc = publish_gateway_read(cfg, port, body, &gw, &out->sealed, err)))
		goto out;
	if (!gw.on && !!conn_id == !!conn) {
		rc = pb_err(err, PB_EINVAL, "give either connection_id (an existing Power BI connection) or connection "
			    "(credentials for a new one)");
		goto out;
	}
	server = json_loads(port->server_json, 0, NULL);
	if (http_path && (!rf || strcmp(rf->name, "http_path"))) {
		rc = pb_err(err, PB_EINVAL, "http_path is only for output ports whose source takes it; output port %s "
			    "is %s, which does not (leave http_path out)", port->name, port->type);
		goto out;
	}
	if (rf && !http_path && !server_value_of(server, rf)) {
		rc = pb_err(err, PB_EINVAL, "http_path is required: the contract's server \"%s\" has no %s", port->name,
			    rf->add ? rf->add : rf->name);
		goto out;
	}
	if ((!gw.on && conn && (rc = check_credentials(cfg, conn, d, &out->sealed, &ctype, err))) ||
	    (rc = check_storage_modes(port, d, err)))
		goto out;
	if (!name) {
		if ((rc = publish_default_name(db, org_id, port, dflt, err)))
			goto out;
		name = dflt;
	}
	xsnprintf(out->workspace_id, sizeof out->workspace_id, "%s", ws);
	input = json_pack("{s:s, s:s, s:s}", "port_id", port->id, "workspace_id", ws, "name", name);
	if (!input || (conn_id && json_object_set_new(input, "connection_id", json_string(conn_id))) ||
	    (http_path && json_object_set_new(input, "http_path", json_string(http_path))) ||
	    (ctype && json_object_set_new(input, "credential_type", json_string(ctype))) ||
	    (auto_update && json_object_set_new(input, "auto_update", json_string(auto_update))) ||
	    (gw.fields && json_object_update(input, gw.fields)) || !(out->input = json_dumps(input, JSON_COMPACT))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory (or the name is not UTF-8)");
		goto out;
	}
	/* The same user publishing the same port to the same workspace under the same name
	 * while one is in flight gets that job back. */
	if (xsnprintf(key_src, sizeof key_src, "%s\n%s\n%s\n%s", user_id ? user_id : "", port->id, ws, name)) {
		rc = pb_err(err, PB_EINVAL, "name or workspace_id too long");
		goto out;
	}
	pb_sha256_hex(key_src, strlen(key_src), hash);
	xsnprintf(out->key, sizeof out->key, "publish:%s", hash);
out:
	publish_gateway_req_release(&gw);
	json_decref(input);
	json_decref(server);
	if (rc)
		publish_request_release(out);
	return rc;
}

/* A session that did not open or could not be renewed (f), in the words the request checks
 * and the job use: what the user does about it. */
static int session_refusal(pb_failure *f)
{
	const char *code = pb_failure_code(f);
	if (!strcmp(code, "not_connected"))
		return pbi_fail_reword(f, "Power BI is not connected for you: connect it (/powerbi/connect) and publish "
				       "again");
	if (!strcmp(code, "needs_reconnect"))
		return pbi_fail_reword(f, "your Power BI sign-in expired or was revoked: reconnect Power BI "
				       "(/powerbi/connect) and publish again (%s)", f->message);
	return f->rc;
}

int publish_open_session(pbi_session *s, pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			 pb_failure *f)
{
	int rc = pbi_session_open_user(s, db, cfg, org_id, user_id, f);
	return rc ? session_refusal(f) : PB_OK;
}

/* True when workspace ws is listed among the caller's workspaces in roles (comma-separated).
 * *rc: the call's result (message in err). */
static bool workspace_in_roles(msapi *api, const char *roles, const char *ws, int *rc, char *err)
{
	msapi_items l = { 0 };
	bool in = false;
	*rc = fabric_list_workspaces_in_role(api, roles, &l, err);
	for (size_t i = 0; !*rc && i < l.n && !in; i++)
		in = l.v[i].id && !strcasecmp(l.v[i].id, ws);
	msapi_items_release(&l);
	return in;
}

int publish_check_access(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ws,
			 pb_failure *f)
{
	pbi_session s;
	pb_failure call;
	int rc, lrc;
	if ((rc = publish_open_session(&s, db, cfg, org_id, user_id, f))) {
		if (rc == PB_EUNAVAIL) {   /* the job opens it again, and waits for Microsoft */
			pb_failure_clear(f);
			return PB_OK;
		}
		return rc;
	}
	/* one quick question: a slow or busy Power BI does not hold the request, the job asks again */
	s.api.max_attempts = 1;
	s.api.call_timeout_ms = PB_PUBLISH_CHECK_TIMEOUT_MS;
	pb_failure_clear(&call);
	bool writable = workspace_in_roles(&s.api, "Admin,Member,Contributor", ws, &lrc, call.message);
	if (!lrc && !writable) {
		bool viewer = workspace_in_roles(&s.api, "Viewer", ws, &lrc, call.message);
		if (viewer || lrc)
			rc = pb_fail(f, PB_EFORBIDDEN, "no_write_role", "workspace_id %s: you cannot publish into this "
				     "workspace: it needs the Contributor, Member or Admin role there%s", ws,
				     viewer ? " (you are Viewer)" : "");
		else
			rc = pb_fail(f, PB_ENOTFOUND, "powerbi_not_found", "workspace_id %s is not a Power BI workspace you "
				     "can see", ws);
	} else if (lrc && pbi_session_fail(&s, lrc, &call) == PB_ECONFLICT &&
		   !strcmp(pb_failure_code(&call), "needs_reconnect")) {
		*f = call;
		rc = session_refusal(f);
	}   /* else Power BI did not answer in time, or not plainly: the job checks again */
	pbi_session_release(&s);
	return rc;
}

int publish_request_queue(pb_db *db, const char *org_id, const char *user_id, const publish_request *rq,
			  char job_id[PB_ID_BUF], bool *existing, char *err)
{
	pb_job_spec spec = { .kind = "publish", .org_id = org_id, .user_id = user_id, .input = rq->input,
			     .private_input = rq->sealed, .idempotency_key = rq->key, .max_attempts = PB_PUBLISH_ATTEMPTS };
	*existing = false;
	return jobs_submit(db, &spec, job_id, existing, err);
}

/* The port of a publish or a dry run: in org_id and not retired. *out new (catalog_port_free). */
static int publishable_port(pb_db *db, const char *org_id, const char *port_id, bool with_contract, cat_port **out,
			    pb_failure *f)
{
	int rc = catalog_port_get(db, org_id, port_id, with_contract, out, f->message);
	if (rc == PB_ENOTFOUND)
		return pb_fail(f, rc, NULL, "no output port %s", port_id);
	if (rc)
		return pb_fail_as(f, rc, NULL);
	if ((*out)->retired_at) {
		pb_fail(f, PB_ECONFLICT, "port_retired", "%s", catalog_port_retired_message(*out, f->message));
		catalog_port_free(*out);
		*out = NULL;
		return f->rc;
	}
	return PB_OK;
}

/* The words of a refusal to publish a source Power BI reaches only through an on-premises
 * data gateway (the description's gateway_only), into msg. */
static void gateway_required(const source_desc *d, const char *port, char msg[PB_ERR_MAX])
{
	(void)xsnprintf(msg, PB_ERR_MAX, "output port %s reads %s (%s), which Power BI reaches only through an "
			"on-premises data gateway: Fabric offers no cloud connection for it; mark the contract's server "
			"with the custom property powerbi.gateway to publish through a gateway", port, d->label, d->type);
}

int publish_submit(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *port_id,
		   const char *body_text, size_t body_len, char job_id[PB_ID_BUF], bool *existing, pb_failure *f)
{
	publish_request rq = { 0 };
	cat_port *port = NULL;
	json_t *body = NULL;
	*existing = false;
	pb_failure_clear(f);
	int rc = publishable_port(db, org_id, port_id, false, &port, f);
	catalog_port_free(port);
	if (rc)
		return rc;
	if ((rc = json_body_parse(body_text, body_len, 0, &body, f->message)) ||
	    (rc = publish_request_read(db, cfg, org_id, user_id, port_id, body, &rq, f->message))) {
		if (rc == PB_ENOTFOUND)
			rc = pb_fail(f, rc, NULL, "no output port %s", port_id);
		else
			rc = pb_fail_as(f, rc == PB_ELIMIT ? PB_EINVAL : rc, NULL);
		goto out;
	}
	bool on_premises = false;
	char gateway_id[PB_PBI_ID_MAX + 1];
	if (rq.desc->gateway_only && !publish_gateway_marked(rq.port, &on_premises, gateway_id, f->message) &&
	    !on_premises) {
		char msg[PB_ERR_MAX];
		gateway_required(rq.desc, rq.port->name, msg);
		rc = pb_fail(f, PB_ECONFLICT, "source_needs_gateway", "%s", msg);
		goto out;
	}
	if ((rc = publish_check_access(db, cfg, org_id, user_id, rq.workspace_id, f)) ||
	    (rc = publish_gateway_check(db, cfg, org_id, user_id, &rq, f)))
		goto out;
	if ((rc = publish_request_queue(db, org_id, user_id, &rq, job_id, existing, f->message)))
		pb_fail_as(f, rc, NULL);
out:
	json_decref(body);
	publish_request_release(&rq);
	return rc;
}

int publish_dry_run(pb_db *db, const pb_config *cfg, const char *org_id, const char *port_id, const render_opts *opts,
		    pb_files *files, pb_failure *f)
{
	cat_port *port = NULL;
	pb_failure_clear(f);
	int rc = publishable_port(db, org_id, port_id, true, &port, f);
	if (!rc) {
		render_opts o = *opts;
		o.server = port->name;
		rc = publish_render(cfg, port, &o, files, f);
	}
	catalog_port_free(port);
	return rc;
}

/* ---- the job --------------------------------------------------------------------------- */

typedef struct publish_run {
	pb_job_ctx *ctx;
	json_t *in;
	const char *port_id, *ws, *name, *conn_id, *http_path, *auto_update;
	cat_port *port;
	publish_source src;
	pb_files files;
	pbi_session s;
	bool have_session;
	char connection_id[PB_PBI_ID_MAX + 1];
	char model_id[PB_PBI_ID_MAX + 1];
	char model_name[PB_PUBLISH_NAME_MAX + 16];
	const char *entered;   /* the next phase, entered with the last checkpoint (checkpoint_enter) */
	fabric_param params[SOURCE_MAX_PARAMS];   /* the connection this job creates */
} publish_run;

static void test_pause(publish_run *r, const char *phase)
{
	job_test_pause(r->ctx, phase);
}

static const char *cp_str(publish_run *r, const char *key)
{
	return json_string_value(json_object_get(r->ctx->checkpoint, key));
}

/* Ends the attempt for a failed Power BI call made while `what` ("creating the semantic
 * model"), rc and its message detail: the session's failure (a sign-in that could not be
 * renewed) or Microsoft's (core/flow/ms_failure.h), where a failure of kind means code in this
 * call's context. Waits, retries or fails as the failure says (job_end_with). */
int publish_api_failure(pb_job_ctx *ctx, const pbi_session *s, const char *ws, int rc, const char *what,
			const char *detail, msapi_failure kind, const char *code)
{
	pb_failure f;
	pb_failure_clear(&f);
	(void)xsnprintf(f.message, sizeof f.message, "%s", detail);
	pbi_session_fail_as(s, rc, kind, code, &f);
	const char *c = pb_failure_code(&f);
	if (!strcmp(c, "needs_reconnect"))
		pbi_fail_reword(&f, "Power BI did not accept your sign-in while %s: reconnect Power BI (/powerbi/connect) "
				"and publish again (%s)", what, f.message);
	else if (!strcmp(c, "no_write_role"))
		pbi_fail_reword(&f, "you cannot publish into workspace %s: it needs the Contributor, Member or Admin role "
				"there (Power BI said: %s)", ws ? ws : "?", f.message);
	else if (!strcmp(c, "credentials_rejected"))
		pbi_fail_reword(&f, "Power BI rejected the credentials given for the new connection: check them and publish "
				"again (Power BI said: %s)", f.message);
	else if (!strcmp(c, "no_gateway_rights"))
		pbi_fail_reword(&f, "Power BI refused you the gateway while %s: adding a data source needs its admin role, "
				"binding to one needs to be its user (Power BI said: %s)", what, f.message);
	else
		pbi_fail_reword(&f, "while %s: %s", what, f.message);
	return job_end_with(ctx, &f);
}

static int api_failure(publish_run *r, int rc, const char *what, const char *detail, msapi_failure kind,
		       const char *code)
{
	return publish_api_failure(r->ctx, &r->s, r->ws, rc, what, detail, kind, code);
}

/* A phase's last checkpoint, written with the next phase in one statement (next NULL: the
 * checkpoint alone). Only where nothing is called between the two: what a resumed job finds is
 * the same either way. */
static int checkpoint_enter(publish_run *r, const char *key, json_t *value, const char *next, int progress)
{
	int rc = job_checkpoint_phase(r->ctx, key, value, next, next ? progress : -1);
	r->entered = rc ? NULL : next;
	return rc;
}

/* job_phase, unless the last checkpoint entered phase already. */
static int enter(publish_run *r, const char *phase, int progress)
{
	bool done = r->entered && !strcmp(r->entered, phase);
	r->entered = NULL;
	return done ? PB_OK : job_phase(r->ctx, phase, progress);
}

static int phase_validate(publish_run *r)
{
	pb_job_ctx *ctx = r->ctx;
	pb_failure f;
	int rc = job_phase(ctx, "validating", 5);
	if (rc)
		return rc;
	rc = catalog_port_get(ctx->db, ctx->job->org_id, r->port_id, true, &r->port, ctx->err);
	if (rc == PB_ENOTFOUND)
		return job_fail(ctx, "not_found", "output port %s no longer exists", r->port_id);
	if (rc)
		return rc;
	if ((rc = publish_port_source(ctx->cfg, r->port, r->http_path, RENDER_PARAMS_BODY, &r->src, &r->files, &f)))
		return job_end_with(ctx, &f);
	if (r->src.desc->gateway_only && !publish_gateway_job(r->in)) {
		char msg[PB_ERR_MAX];
		gateway_required(r->src.desc, r->port->name, msg);
		return job_fail(ctx, "source_needs_gateway", "%s", msg);
	}
	test_pause(r, "validating");
	return PB_OK;
}

static int open_session(publish_run *r)
{
	pb_job_ctx *ctx = r->ctx;
	pb_failure f;
	if (!ctx->job->user_id[0])
		return job_fail(ctx, "not_connected", "the user who started this publish no longer exists");
	int rc = publish_open_session(&r->s, ctx->db, ctx->cfg, ctx->job->org_id, ctx->job->user_id, &f);
	if (!rc) {
		r->have_session = true;
		return PB_OK;
	}
	/* a failed open released the session itself */
	return job_end_with(ctx, &f);
}

/* The deterministic display name of the connection this job creates, so a resumed job
 * finds it instead of making a second. */
static void connection_name(const publish_run *r, char out[PB_PUBLISH_CONN_NAME_MAX + 1])
{
	char host[64];
	xsnprintf(host, sizeof host, "%s", r->src.host ? r->src.host : "");   /* cut long hosts */
	if (xsnprintf(out, PB_PUBLISH_CONN_NAME_MAX + 1, "%s%s%s (pbiport %.12s)", r->src.type, *host ? " " : "", host,
		      r->ctx->job->id))
		out[PB_PUBLISH_CONN_NAME_MAX] = '\0';
}

static const char *cred(const json_t *creds, const char *key)
{
	return json_string_value(json_object_get(creds, key));
}

int publish_open_credentials(pb_job_ctx *ctx, json_t **creds)
{
	char *plain = NULL;
	size_t len = 0;
	*creds = NULL;
	if (!ctx->job->private_input || !*ctx->job->private_input)
		return job_fail(ctx, "credentials_missing", "the credentials for the new connection are gone (the job "
			       "ended once already): publish again with the credentials");
	if (!ctx->cfg || !ctx->cfg->encryption_keys)
		return job_fail(ctx, "credentials_unreadable", "APPLICATION_ENCRYPTION_KEYS is not set in the worker");
	char sub[PB_ERR_MAX];
	if (pb_open(ctx->cfg->encryption_keys, ctx->job->private_input, SEAL_CONTEXT, &plain, &len, sub))
		return job_fail(ctx, "credentials_unreadable", "the sealed credentials cannot be opened: %s", sub);
	*creds = json_loadb(plain, len, 0, NULL);
	pb_secret_free(plain, len);
	if (!json_is_object(*creds)) {
		json_decref(*creds);
		*creds = NULL;
		return job_fail(ctx, "credentials_unreadable", "the sealed credentials are not readable");
	}
	return PB_OK;
}

/* Fabric's kinds of credentials by the name a source description gives them. */
static const struct {
	const char *name;
	enum fabric_cred cred;
} FABRIC_CREDS[] = { { "Basic", FABRIC_CRED_BASIC }, { "Key", FABRIC_CRED_KEY },
		     { "ServicePrincipal", FABRIC_CRED_SERVICE_PRINCIPAL } };

/* The ShareableCloud connection the source's description asks for (type, creation method,
 * its parameters with the values the model reads), with the job's credentials (creds: the
 * opened request; values borrowed from it and from r until req is sent). */
static int connection_request(publish_run *r, const json_t *creds, const char *name, fabric_connection_req *req)
{
	const source_desc *d = r->src.desc;
	const source_cred *kind = source_cred_named(d, cred(creds, "credential_type"));
	const char *v[SOURCE_MAX_CRED_FIELDS] = { 0 };
	size_t k = 0;
	if (!kind)
		return job_fail(r->ctx, "credentials_unreadable", "the credentials given are of a kind (%s) the %s source "
				"no longer takes: publish again", cred(creds, "credential_type") ? cred(creds,
				"credential_type") : "none", d->type);
	while (k < sizeof FABRIC_CREDS / sizeof FABRIC_CREDS[0] && strcmp(FABRIC_CREDS[k].name, kind->fabric))
		k++;
	for (size_t i = 0; i < kind->nfields; i++)
		v[i] = cred(creds, kind->fields[i].name);
	for (size_t i = 0; i < d->nparams; i++)
		r->params[i] = (fabric_param){ d->params[i].name, r->src.values[i], NULL };
	*req = (fabric_connection_req){
		.display_name = name,
		.type = d->conn_type,
		.creation_method = d->creation_method,
		.params = r->params,
		.nparams = d->nparams,
		.encryption = "Encrypted",
		.cred = FABRIC_CREDS[k].cred,   /* source_load checked the name */
	};
	switch (req->cred) {
	case FABRIC_CRED_BASIC:
		req->username = v[0];
		req->password = v[1];
		break;
	case FABRIC_CRED_KEY:
		req->key = v[0];
		break;
	case FABRIC_CRED_SERVICE_PRINCIPAL:
		req->tenant_id = v[0];
		req->sp_client_id = v[1];
		req->sp_secret = v[2];
		break;
	}
	return PB_OK;
}

static int create_connection(publish_run *r, const msapi_items *existing)
{
	char name[PB_PUBLISH_CONN_NAME_MAX + 1], sub[PB_ERR_MAX];
	json_t *creds = NULL;
	msapi_item made = { 0 };
	fabric_connection_req req;
	int rc;
	connection_name(r, name);
	const msapi_item *found = msapi_items_find_name(existing, name);
	if (found && publish_connection_matches(&r->src, found)) {   /* made by this job before a crash */
		xsnprintf(r->connection_id, sizeof r->connection_id, "%s", found->id ? found->id : "");
		return PB_OK;
	}
	if (found)   /* the name carries this job's id, yet the connection reads elsewhere: not ours */
		return job_fail(r->ctx, "name_taken", "a connection named \"%s\" already exists and points at "
				"%s %s, not at %s %s: this publish did not make it; rename or delete it and publish again",
				name, found->type ? found->type : "?", found->path ? found->path : "?", r->src.type,
				r->src.path);
	if ((rc = publish_open_credentials(r->ctx, &creds)))
		return rc;
	if ((rc = connection_request(r, creds, name, &req)))
		goto out;
	rc = fabric_create_connection(&r->s.api, &req, &made, sub);
	if (rc) {
		rc = api_failure(r, rc, "creating the connection", sub, MSAPI_BAD_CREDENTIALS, "credentials_rejected");
		goto out;
	}
	xsnprintf(r->connection_id, sizeof r->connection_id, "%s", made.id ? made.id : "");
out:
	msapi_wipe_json(creds);
	json_decref(creds);
	msapi_item_release(&made);
	return rc;
}

static int phase_connection(publish_run *r)
{
	pb_job_ctx *ctx = r->ctx;
	msapi_items conns = { 0 };
	char sub[PB_ERR_MAX];
	int rc;
	const char *done = cp_str(r, "connection_id");
	if (publish_gateway_job(r->in))
		return publish_gateway_connection(ctx, &r->s, &r->src, r->in, r->connection_id);
	if (done) {
		xsnprintf(r->connection_id, sizeof r->connection_id, "%s", done);
		return PB_OK;
	}
	if ((rc = job_phase(ctx, "creating_connection", 20)))
		return rc;
	if ((rc = fabric_list_connections(&r->s.api, &conns, sub))) {
		rc = api_failure(r, rc, "listing your connections", sub, MSAPI_OK, NULL);
		goto out;
	}
	if (r->conn_id) {
		const msapi_item *c = NULL;
		for (size_t i = 0; i < conns.n && !c; i++)
			if (conns.v[i].id && !strcmp(conns.v[i].id, r->conn_id))
				c = &conns.v[i];
		if (!c) {
			rc = job_fail(ctx, "powerbi_not_found", "connection_id %s: no such Power BI connection among the "
				      "connections you can use (deleted, or not shared with you)", r->conn_id);
			goto out;
		}
		if (!publish_connection_matches(&r->src, c)) {
			rc = job_fail(ctx, "connection_mismatch", "connection \"%s\" points at %s %s, but the output port "
				      "reads %s %s", c->name ? c->name : c->id, c->type ? c->type : "?",
				      c->path ? c->path : "?", r->src.type, r->src.path);
			goto out;
		}
		xsnprintf(r->connection_id, sizeof r->connection_id, "%s", c->id);
	} else if ((rc = create_connection(r, &conns))) {
		goto out;
	}
	test_pause(r, "creating_connection");
	/* phase_model enters its phase first, unless the model was made already */
	rc = checkpoint_enter(r, "connection_id", json_string(r->connection_id),
			      cp_str(r, "model_id") && cp_str(r, "model_name") ? NULL : "creating_model", 40);
out:
	msapi_items_release(&conns);
	return rc;
}

/* The model of models named name, compared as Fabric compares names (case-insensitively);
 * borrowed, NULL when none. */
static const msapi_item *model_named(const msapi_items *models, const char *name)
{
	for (size_t i = 0; i < models->n; i++)
		if (models->v[i].name && str_ieq(models->v[i].name, name))
			return &models->v[i];
	return NULL;
}

/* The first of name, "name (2)", "name (3)", ... no model of the workspace carries. */
static int free_model_name(publish_run *r, const msapi_items *models)
{
	for (int n = 1; n <= PB_PUBLISH_SUFFIX_MAX; n++) {
		if (n == 1)
			xsnprintf(r->model_name, sizeof r->model_name, "%s", r->name);
		else
			xsnprintf(r->model_name, sizeof r->model_name, "%s (%d)", r->name, n);
		if (!model_named(models, r->model_name))
			return PB_OK;
	}
	return job_fail(r->ctx, "name_taken", "workspace %s already has %d models named like \"%s\": choose another "
			"name", r->ws, PB_PUBLISH_SUFFIX_MAX, r->name);
}

/* The description of the models this job creates. It begins with the job's mark, "pbiport
 * job <id>", which only this job writes (job ids are random and private to their user): a
 * resumed job adopts a model of its checkpointed name only when the mark is there. Fabric
 * keeps descriptions up to 256 characters; the port's name is cut to fit. */
static void model_description(const publish_run *r, char out[PB_PUBLISH_DESC_MAX + 1])
{
	static const char head[] = "Published by pbiport job ", tail[] = ", from output port ";
	size_t fixed = sizeof head - 1 + strlen(r->ctx->job->id) + sizeof tail - 1;
	const char *port = r->port ? r->port->name : "";
	size_t n = fixed < PB_PUBLISH_DESC_MAX ? utf8_prefix_len(port, strlen(port), PB_PUBLISH_DESC_MAX - fixed) : 0;
	if (xsnprintf(out, PB_PUBLISH_DESC_MAX + 1, "%s%s%s%.*s", head, r->ctx->job->id, tail, (int)n, port))
		out[PB_PUBLISH_DESC_MAX] = '\0';
}

/* True when model m carries this job's mark (see model_description). */
static bool model_is_ours(const publish_run *r, const msapi_item *m)
{
	char mark[32 + PB_ID_BUF];
	xsnprintf(mark, sizeof mark, "pbiport job %s", r->ctx->job->id);
	return m && m->id && m->description && strstr(m->description, mark);
}

/* After a restart the create this job sent may still be running in Power BI: its name is
 * taken by an operation whose model is not listed yet. Polls the workspace (as the
 * long-running operation would have been followed) until a model of that name appears;
 * r->model_id is set when it carries this job's mark and stays empty when it is another
 * publish's (whose operation held the name). */
static int await_own_model(publish_run *r, char *err)
{
	int64_t deadline = pb_mono_ms() + r->s.api.lro_max_ms;
	while (pb_mono_ms() < deadline && !(r->ctx->stop && *r->ctx->stop)) {
		msapi_items models = { 0 };
		pb_sleep_interruptible(r->s.api.poll_ms, r->ctx->stop);
		int rc = fabric_list_semantic_models(&r->s.api, r->ws, &models, err);
		const msapi_item *m = rc ? NULL : model_named(&models, r->model_name);
		bool appeared = m != NULL;
		if (model_is_ours(r, m))
			xsnprintf(r->model_id, sizeof r->model_id, "%s", m->id);
		msapi_items_release(&models);
		if (rc || appeared)
			return rc;
	}
	return pb_err(err, PB_EIO, "semantic model \"%s\" did not appear in workspace %s", r->model_name, r->ws);
}

static int phase_model(publish_run *r)
{
	pb_job_ctx *ctx = r->ctx;
	msapi_items models = { 0 };
	msapi_item made = { 0 };
	fabric_part *parts = NULL;
	char sub[PB_ERR_MAX], desc[PB_PUBLISH_DESC_MAX + 1];
	int rc;
	const char *done = cp_str(r, "model_id"), *planned = cp_str(r, "model_name");
	if (done && planned) {
		xsnprintf(r->model_id, sizeof r->model_id, "%s", done);
		xsnprintf(r->model_name, sizeof r->model_name, "%s", planned);
		return PB_OK;
	}
	if ((rc = enter(r, "creating_model", 40)))
		return rc;
	if ((rc = fabric_list_semantic_models(&r->s.api, r->ws, &models, sub))) {
		rc = api_failure(r, rc, "listing the workspace", sub, MSAPI_FORBIDDEN, "no_write_role");
		goto out;
	}
	/* resumed: the name was fixed before the create; a model of that name is ours only with
	 * our mark, else another publish took the name meanwhile and this one chooses again */
	bool resumed = planned != NULL;
	if (resumed) {
		xsnprintf(r->model_name, sizeof r->model_name, "%s", planned);
		const msapi_item *m = model_named(&models, r->model_name);
		if (model_is_ours(r, m)) {
			xsnprintf(r->model_id, sizeof r->model_id, "%s", m->id);
			goto found;
		}
		resumed = m == NULL;
	}
	if (!resumed && (rc = free_model_name(r, &models)))
		goto out;
	parts = calloc(r->files.n ? r->files.n : 1, sizeof *parts);
	if (!parts) {
		rc = pb_err(ctx->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < r->files.n; i++)
		parts[i] = (fabric_part){ r->files.v[i].path, r->files.v[i].content, r->files.v[i].len };
	/* a name chosen now is checkpointed before the create (with the progress, one write), so a
	 * resumed job knows which name to look for */
	if ((rc = resumed ? job_phase(ctx, NULL, 50)
			  : job_checkpoint_phase(ctx, "model_name", json_string(r->model_name), NULL, 50)))
		goto out;
	model_description(r, desc);
	rc = fabric_create_semantic_model(&r->s.api, r->ws, r->model_name, desc, parts, r->files.n, &made, sub);
	bool clash = rc && r->s.api.last.failure == MSAPI_NAME_TAKEN;
	if (clash && resumed) {
		/* resumed: most likely our own create, still running; taken only with our mark */
		if ((rc = await_own_model(r, sub))) {
			rc = api_failure(r, rc, "waiting for the semantic model", sub, MSAPI_FORBIDDEN, "no_write_role");
			goto out;
		}
		if (r->model_id[0])
			goto found;
	}
	if (clash) {
		/* another publish took the name since it was chosen: choose again on the retry */
		if (!(rc = job_checkpoint(ctx, "model_name", json_null())))
			rc = job_retry_later(ctx, 1000, "name_taken", "workspace %s got a model named \"%s\" meanwhile; "
					     "choosing another name", r->ws, r->model_name);
		goto out;
	}
	if (rc) {
		rc = api_failure(r, rc, "creating the semantic model", sub, MSAPI_FORBIDDEN, "no_write_role");
		goto out;
	}
	xsnprintf(r->model_id, sizeof r->model_id, "%s", made.id ? made.id : "");
found:
	test_pause(r, "creating_model");
	/* phase_bind enters its phase first (not the gateway's binding, nor when bound already) */
	rc = checkpoint_enter(r, "model_id", json_string(r->model_id),
			      publish_gateway_job(r->in) || json_is_true(json_object_get(ctx->checkpoint, "bound"))
				      ? NULL
				      : "binding",
			      70);
out:
	free(parts);
	msapi_item_release(&made);
	msapi_items_release(&models);
	return rc;
}

static int phase_bind(publish_run *r)
{
	pb_job_ctx *ctx = r->ctx;
	msapi_items refs = { 0 };
	char sub[PB_ERR_MAX];
	int rc;
	if (publish_gateway_job(r->in))
		return publish_gateway_bind(ctx, &r->s, r->ws, r->model_id);
	if (json_is_true(json_object_get(ctx->checkpoint, "bound")))
		return PB_OK;
	if ((rc = enter(r, "binding", 70)))
		return rc;
	if ((rc = fabric_list_item_connections(&r->s.api, r->ws, r->model_id, &refs, sub))) {
		rc = api_failure(r, rc, "reading the model's data sources", sub, MSAPI_FORBIDDEN, "no_write_role");
		goto out;
	}
	for (size_t i = 0; i < refs.n; i++) {
		const msapi_item *ref = &refs.v[i];
		if (ref->id && !strcmp(ref->id, r->connection_id))
			continue;   /* bound before a crash */
		if ((rc = fabric_bind_connection(&r->s.api, r->ws, r->model_id, r->connection_id, ref->type, ref->path,
						 sub))) {
			rc = api_failure(r, rc, "binding the model to the connection", sub, MSAPI_FORBIDDEN, "no_write_role");
			goto out;
		}
	}
	test_pause(r, "binding");
	/* finalize follows with no call to Microsoft before its phase */
	rc = checkpoint_enter(r, "bound", json_true(), "finalizing", 90);
out:
	msapi_items_release(&refs);
	return rc;
}

static int phase_finalize(publish_run *r)
{
	pb_job_ctx *ctx = r->ctx;
	msapi_item dataset = { 0 };
	pm_ids ids;
	char sub[PB_ERR_MAX];
	const char *web_url = NULL;
	int rc = enter(r, "finalizing", 90);
	if (rc)
		return rc;
	/* The web URL is Power BI's to give; without it the record simply has none. One dataset
	 * read, not the workspace's list, whose size would make every publish slower. */
	if (!powerbi_get_dataset(&r->s.api, r->ws, r->model_id, &dataset, sub))
		web_url = dataset.web_url;
	/* what the model was built from, so that its updates and drift compare against it: the
	 * contract text and its product's version and revision as one read gave them (phase_validate) */
	char hash[PB_SHA256_HEX_LEN + 1];
	pb_sha256_hex(r->port->contract_text ? r->port->contract_text : "",
		      r->port->contract_text ? strlen(r->port->contract_text) : 0, hash);
	pm_record rec = {
		.org_id = ctx->job->org_id, .user_id = ctx->job->user_id[0] ? ctx->job->user_id : NULL,
		.job_id = ctx->job->id, .output_port_id = r->port->id, .workspace_id = r->ws,
		.semantic_model_id = r->model_id, .name = r->model_name, .web_url = web_url,
		.connection_id = r->connection_id, .source_name = r->port->product_name,
		.definition = &r->files, .contract_version = r->port->product_version,
		.contract_revision = r->port->product_revision, .contract_hash = hash, .http_path = r->http_path,
		.connection_created = publish_gateway_job(r->in) ? publish_gateway_created(ctx) : !r->conn_id,
		.auto_update = r->auto_update,
	};
	if ((rc = published_model_record(ctx->db, &rec, &ids, ctx->err)))
		goto out;
	test_pause(r, "finalizing");
	ctx->result = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:s, s:s}", "id", ids.published_id,
				"semantic_model_id", r->model_id, "name", r->model_name, "workspace_id", r->ws, "web_url",
				web_url, "connection_id", r->connection_id, "consumer_data_product_id",
				ids.consumer_product_id, "agreement_id", ids.agreement_id);
	if (!ctx->result)
		rc = pb_err(ctx->err, PB_ENOMEM, "out of memory");
out:
	msapi_item_release(&dataset);
	return rc;
}

/* The data of the publish.succeeded / publish.failed webhook event: the request, and the
 * result when there is one (docs/webhooks.md). New reference or NULL. */
static json_t *event_data(const publish_run *r)
{
	json_t *d = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?}", "output_port_id", r->port_id, "data_product_id",
			      r->port ? r->port->data_product_id : NULL, "workspace_id", r->ws, "name", r->name, "user_id",
			      r->ctx->job->user_id[0] ? r->ctx->job->user_id : NULL);
	if (d && r->ctx->result && json_object_update(d, r->ctx->result)) {
		json_decref(d);
		d = NULL;
	}
	return d;
}

int publish_job(pb_job_ctx *ctx)
{
	publish_run r = { .ctx = ctx };
	int rc;
	r.in = json_loads(ctx->job->input ? ctx->job->input : "", 0, NULL);
	r.port_id = json_string_value(json_object_get(r.in, "port_id"));
	r.ws = json_string_value(json_object_get(r.in, "workspace_id"));
	r.name = json_string_value(json_object_get(r.in, "name"));
	r.conn_id = json_string_value(json_object_get(r.in, "connection_id"));
	r.http_path = json_string_value(json_object_get(r.in, "http_path"));
	r.auto_update = json_string_value(json_object_get(r.in, "auto_update"));
	if (!r.port_id || !r.ws || !r.name) {
		rc = job_fail(ctx, "bad_input", "the publish job has no port_id / workspace_id / name");
		goto out;
	}
	if (!ctx->cfg || !ctx->cfg->powerbi_web_enabled) {
		rc = job_fail(ctx, "feature_disabled", "publishing to Power BI is turned off "
			      "(APPLICATION_POWERBI_WEB_ENABLED)");
		goto out;
	}
	if ((rc = phase_validate(&r)) || (rc = open_session(&r)) || (rc = phase_connection(&r)) ||
	    (rc = phase_model(&r)) || (rc = phase_bind(&r)))
		goto out;
	rc = phase_finalize(&r);
out:
	if (!rc || job_failing_for_good(ctx))
		webhook_job_event(ctx, rc ? "publish.failed" : "publish.succeeded", event_data(&r));
	if (r.have_session)
		pbi_session_release(&r.s);
	pb_files_release(&r.files);
	publish_source_release(&r.src);
	if (r.port) {
		catalog_port_free(r.port);
	}
	json_decref(r.in);
	return rc;
}

bool publish_named_by_job(const char *name, const char *job_id)
{
	char tail[32];
	xsnprintf(tail, sizeof tail, "(pbiport %.12s)", job_id);
	size_t n = name ? strlen(name) : 0, tn = strlen(tail);
	return n >= tn && !strcmp(name + n - tn, tail);
}

int publish_reseal_credentials(pb_db *db, const pb_config *cfg, size_t *resealed, char *err)
{
	return jobs_reseal_private(db, cfg->encryption_keys, "publish", SEAL_CONTEXT, resealed, err);
}

/* ---- cancel with cleanup (core/flow/job_kinds.c) ------------------------------------------- */

int publish_cancel_cleanup(pb_job_ctx *ctx)
{
	publish_run r = { .ctx = ctx };
	msapi_items conns = { 0 };
	char sub[PB_ERR_MAX], made_conn[PB_PBI_ID_MAX + 1] = "";
	const char *model = cp_str(&r, "model_id"), *conn = cp_str(&r, "connection_id");
	int rc;
	r.in = json_loads(ctx->job->input ? ctx->job->input : "", 0, NULL);
	r.ws = json_string_value(json_object_get(r.in, "workspace_id"));
	r.conn_id = json_string_value(json_object_get(r.in, "connection_id"));   /* chosen, so reused: kept */
	if (!r.ws) {
		rc = job_fail(ctx, "bad_input", "the publish job has no workspace_id");
		goto out;
	}
	if ((rc = open_session(&r)))
		goto out;
	if (model && (rc = fabric_delete_semantic_model(&r.s.api, r.ws, model, sub))) {
		rc = api_failure(&r, rc, "deleting the semantic model", sub, MSAPI_OK, NULL);
		goto out;
	}
	if (publish_gateway_job(r.in)) {
		rc = publish_gateway_cleanup(ctx, &r.s, r.in, model);
		goto out;
	}
	if (!r.conn_id && !conn) {
		if ((rc = fabric_list_connections(&r.s.api, &conns, sub))) {
			rc = api_failure(&r, rc, "listing your connections", sub, MSAPI_OK, NULL);
			goto out;
		}
		/* made, but the worker died before its checkpoint: its name ends with the job id
		 * (connection_name) */
		for (size_t i = 0; i < conns.n && !conn; i++)
			if (publish_named_by_job(conns.v[i].name, ctx->job->id))
				conn = conns.v[i].id;
	}
	if (!r.conn_id && conn) {
		xsnprintf(made_conn, sizeof made_conn, "%s", conn);
		if ((rc = fabric_delete_connection(&r.s.api, made_conn, sub))) {
			rc = api_failure(&r, rc, "deleting the connection", sub, MSAPI_OK, NULL);
			goto out;
		}
	}
	ctx->result = json_pack("{s:{s:s?,s:s?},s:{s:s?}}", "removed", "semantic_model_id", model, "connection_id",
				made_conn[0] ? made_conn : NULL, "kept", "connection_id", r.conn_id);
	if (!ctx->result)
		rc = pb_err(ctx->err, PB_ENOMEM, "out of memory");
out:
	msapi_items_release(&conns);
	if (r.have_session)
		pbi_session_release(&r.s);
	json_decref(r.in);
	return rc;
}
