/* Publishing an on-premises server through a gateway. See core/flow/publish_gateway.h. */
#include "core/flow/publish_gateway.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/ms_failure.h"
#include "msapi/gateways.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

/* ---- which servers --------------------------------------------------------------------------- */

int publish_gateway_marked(const cat_port *port, bool *on_prem, char gateway_id[PB_PBI_ID_MAX + 1], char *err)
{
	json_t *server = json_loads(port->server_json ? port->server_json : "", 0, NULL);
	const char *v = json_string_value(json_object_get(json_object_get(server, "customProperties"),
							  PUBLISH_GATEWAY_PROPERTY));
	int rc = PB_OK;
	*on_prem = false;
	if (gateway_id)
		gateway_id[0] = '\0';
	if (!v || str_ieq(v, "false") || str_ieq(v, "no") || str_ieq(v, "cloud")) {
		/* reached from the cloud */
	} else if (str_ieq(v, "true") || str_ieq(v, "yes") || str_ieq(v, "onPremises")) {
		*on_prem = true;
	} else if (str_is_guid(v)) {
		*on_prem = true;
		if (gateway_id)
			xsnprintf(gateway_id, PB_PBI_ID_MAX + 1, "%s", v);
	} else {
		rc = pb_err(err, PB_EINVAL, "output port %s: its server's custom property %s is \"%.64s\"; it must be true, "
			    "onPremises, false or a gateway id", port->name, PUBLISH_GATEWAY_PROPERTY, v);
	}
	json_decref(server);
	return rc;
}

/* ---- the request ------------------------------------------------------------------------------ */

void publish_gateway_req_release(publish_gateway_req *g)
{
	if (!g)
		return;
	json_decref(g->fields);
	memset(g, 0, sizeof *g);
}

/* body[key]: absent (*out NULL), or a GUID (a Microsoft id that goes into Power BI URLs). */
static int gateway_guid(const json_t *body, const char *key, const char *what, const char **out, char *err)
{
	const json_t *v = json_object_get(body, key);
	*out = json_string_value(v);
	if (!v)
		return PB_OK;
	if (!*out || !str_is_guid(*out))
		return pb_err(err, PB_EINVAL, "%s must be %s id, a GUID like 00000000-0000-0000-0000-000000000000", key, what);
	return PB_OK;
}

/* The credentials of a new gateway data source: credential_type basic / windows (username,
 * password) or token (token: a key); each a non-empty text without control characters. */
static int gateway_credentials(const json_t *conn, const char **ctype, char *err)
{
	static const char *const user_keys[] = { "credential_type", "username", "password", NULL };
	static const char *const token_keys[] = { "credential_type", "token", NULL };
	const char *const *keys;
	*ctype = json_string_value(json_object_get(conn, "credential_type"));
	if (!json_is_object(conn))
		return pb_err(err, PB_EINVAL, "connection must be an object with credential_type and credentials");
	if (*ctype && (!strcmp(*ctype, "basic") || !strcmp(*ctype, "windows")))
		keys = user_keys;
	else if (*ctype && !strcmp(*ctype, "token"))
		keys = token_keys;
	else
		return pb_err(err, PB_EINVAL, "connection.credential_type must be basic, windows or token for a data source "
			      "on a gateway");
	int rc = json_body_only_keys(conn, keys, "connection.", err);
	for (size_t i = 1; !rc && keys[i]; i++) {
		const json_t *v = json_object_get(conn, keys[i]);
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		bool ok = s && n && n <= PB_PBI_SECRET_MAX;
		for (size_t k = 0; ok && k < n; k++)
			ok = (unsigned char)s[k] >= 0x20 && s[k] != 0x7f;
		if (!ok)
			rc = pb_err(err, PB_EINVAL, "connection.%s is required: a text of at most %d bytes without control "
				    "characters", keys[i], PB_PBI_SECRET_MAX);
	}
	return rc;
}

int publish_gateway_read(const pb_config *cfg, const cat_port *port, const json_t *body, publish_gateway_req *out,
			 char **sealed, char *err)
{
	char marked[PB_PBI_ID_MAX + 1];
	const char *gw = NULL, *ds = NULL, *ctype = NULL;
	const json_t *conn = json_object_get(body, "connection");
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = publish_gateway_marked(port, &out->on, marked, err)) ||
	    (rc = gateway_guid(body, "gateway_id", "a gateway", &gw, err)) ||
	    (rc = gateway_guid(body, "gateway_datasource_id", "a gateway data source", &ds, err)))
		return rc;
	if (!out->on) {
		if (gw || ds)
			return pb_err(err, PB_EINVAL, "%s is for on-premises servers: output port %s's server is not marked "
				      "on-premises (custom property %s: true)", gw ? "gateway_id" : "gateway_datasource_id",
				      port->name, PUBLISH_GATEWAY_PROPERTY);
		return PB_OK;
	}
	if (json_object_get(body, "connection_id"))
		return pb_err(err, PB_EINVAL, "connection_id names a cloud connection, but output port %s's server is on "
			      "premises (%s): it publishes through a gateway (gateway_id, gateway_datasource_id, or "
			      "connection to create a data source on the gateway)", port->name, PUBLISH_GATEWAY_PROPERTY);
	if (conn && ds)
		return pb_err(err, PB_EINVAL, "give either gateway_datasource_id (a data source on the gateway) or "
			      "connection (credentials for a new one), not both");
	if (conn && (rc = gateway_credentials(conn, &ctype, err)))
		return rc;
	if (conn && (rc = publish_seal_credentials(cfg, conn, sealed, err)))
		return rc;
	if (!gw && marked[0])
		gw = marked;
	out->fields = json_pack("{s:b, s:s*, s:s*, s:b, s:s*}", "gateway", 1, "gateway_id", gw, "gateway_datasource_id",
				ds, "gateway_create", conn != NULL, "credential_type", ctype);
	return out->fields ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
}

/* ---- what the user can use ---------------------------------------------------------------------- */

/* A gateway with the data sources the user may see on it. */
typedef struct gw_entry {
	gateway gw;              /* from Power BI when the user administers it; else the id only */
	bool admin;
	gateway_sources srcs;
} gw_entry;
typedef struct gw_list {
	gw_entry *v;
	size_t n;
} gw_list;

static void gw_list_release(gw_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		gateway_release(&l->v[i].gw);
		gateway_sources_release(&l->v[i].srcs);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

static gw_entry *entry_of(gw_list *l, const char *id)
{
	for (size_t i = 0; id && i < l->n; i++)
		if (l->v[i].gw.id && str_ieq(l->v[i].gw.id, id))
			return &l->v[i];
	return NULL;
}

static bool has_source(const gw_entry *e, const char *id)
{
	for (size_t i = 0; id && i < e->srcs.n; i++)
		if (e->srcs.v[i].id && str_ieq(e->srcs.v[i].id, id))
			return true;
	return false;
}

/* Moves *s into entry e's sources. */
static int add_source(gw_entry *e, gateway_source *s, char *err)
{
	gateway_source *v = realloc(e->srcs.v, (e->srcs.n + 1) * sizeof *v);
	if (!v)
		return pb_err(err, PB_ENOMEM, "out of memory");
	e->srcs.v = v;
	e->srcs.v[e->srcs.n++] = *s;
	memset(s, 0, sizeof *s);
	return PB_OK;
}

/* The gateways the user administers with all their data sources (Power BI), and the gateway data
 * sources shared with the user (Fabric's gateway connections) under their gateways. Failures of
 * a call come back as msapi's (message in err). */
static int gw_list_load(pbi_session *s, gw_list *out, char *err)
{
	gateways admin = { 0 };
	gateway_sources shared = { 0 };
	int rc = gateway_list(&s->api, &admin, err);
	memset(out, 0, sizeof *out);
	if (!rc && admin.n && !(out->v = calloc(admin.n, sizeof *out->v)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < admin.n; i++) {
		gw_entry *e = &out->v[out->n++];
		e->gw = admin.v[i];
		memset(&admin.v[i], 0, sizeof admin.v[i]);
		e->admin = true;
		rc = gateway_list_sources(&s->api, e->gw.id, &e->srcs, err);
	}
	if (!rc)
		rc = gateway_list_connections(&s->api, &shared, err);
	for (size_t i = 0; !rc && i < shared.n; i++) {
		gateway_source *src = &shared.v[i];
		gw_entry *e = entry_of(out, src->gateway_id);
		if (!e) {
			gw_entry *v = realloc(out->v, (out->n + 1) * sizeof *v);
			if (!v) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				break;
			}
			out->v = v;
			e = &out->v[out->n++];
			memset(e, 0, sizeof *e);
			if (!(e->gw.id = xstrdup(src->gateway_id)))
				rc = pb_err(err, PB_ENOMEM, "out of memory");
		}
		if (!rc && !has_source(e, src->id))
			rc = add_source(e, src, err);
	}
	gateways_release(&admin);
	gateway_sources_release(&shared);
	if (rc)
		gw_list_release(out);
	return rc;
}

/* Whether gateway data source g points at the port's data source: matched as cloud connections are. */
static bool source_matches(const publish_source *src, const gateway_source *g)
{
	msapi_item view = { .type = g->type, .path = g->path };
	return src && publish_connection_matches(src, &view);
}

/* What to publish through (ids borrowed from the list). */
typedef struct gw_choice {
	gw_entry *entry;
	const gateway_source *ds;   /* NULL: a data source is to be created on entry's gateway */
} gw_choice;

static const char *gw_label(const gw_entry *e)
{
	return e->gw.name ? e->gw.name : e->gw.id;
}

/* The gateway (and data source) a publish of src goes through, given what the request named
 * (want_gw, want_ds: NULL when not named) and whether it asks for a new data source. Refusals in f. */
static int gw_choose(gw_list *l, const publish_source *src, const char *want_gw, const char *want_ds, bool create,
		     gw_choice *out, pb_failure *f)
{
	gw_entry *named = entry_of(l, want_gw);
	memset(out, 0, sizeof *out);
	if (want_gw && !named)
		return pb_fail(f, PB_ENOTFOUND, "powerbi_not_found", "gateway_id %s is not a gateway you can use (you are "
			       "neither its admin nor a user of one of its data sources)", want_gw);
	if (want_ds) {
		for (size_t i = 0; i < l->n && !out->ds; i++)
			for (size_t k = 0; k < l->v[i].srcs.n && !out->ds; k++)
				if (str_ieq(l->v[i].srcs.v[k].id, want_ds) && (!named || named == &l->v[i])) {
					out->entry = &l->v[i];
					out->ds = &l->v[i].srcs.v[k];
				}
		if (!out->ds)
			return pb_fail(f, PB_ENOTFOUND, "powerbi_not_found", "gateway_datasource_id %s is not a data source "
				       "you can use on %s (a gateway admin adds you as its user)", want_ds,
				       named ? "that gateway" : "any gateway");
		if (!source_matches(src, out->ds))
			return pb_fail(f, PB_ECONFLICT, "connection_mismatch", "gateway data source \"%s\" points at %s %s, "
				       "but the output port reads %s %s", out->ds->name ? out->ds->name : out->ds->id,
				       out->ds->type ? out->ds->type : "?", out->ds->path ? out->ds->path : "?", src->type,
				       src->path);
		return PB_OK;
	}
	if (create) {
		size_t admins = 0;
		for (size_t i = 0; i < l->n; i++)
			if (l->v[i].admin && !(l->v[i].gw.type && str_ieq(l->v[i].gw.type, "Personal")) &&
			    (!named || named == &l->v[i]) && !admins++)
				out->entry = &l->v[i];
		if (named && !admins)
			return pb_fail(f, PB_EFORBIDDEN, "no_gateway_rights", "you are not an admin of gateway %s, and only its "
				       "admins add data sources to it: ask one to add it, or name a data source of it you may "
				       "use (gateway_datasource_id)", gw_label(named));
		if (!admins)
			return pb_fail(f, PB_ECONFLICT, "no_gateway", "no gateway available: you administer no on-premises data "
				       "gateway, and only a gateway's admins add data sources to it; ask one to add %s %s "
				       "(and you as its user), then publish without connection", src->type, src->path);
		if (admins > 1)
			return pb_fail(f, PB_EINVAL, "gateway_required", "you administer %zu gateways that could take the new "
				       "data source: name one with gateway_id (GET /api/powerbi/gateways lists them)", admins);
		return PB_OK;
	}
	size_t gateways_matching = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (named && named != &l->v[i])
			continue;
		bool here = false;
		for (size_t k = 0; k < l->v[i].srcs.n && !here; k++)
			if (source_matches(src, &l->v[i].srcs.v[k])) {
				here = true;
				if (!gateways_matching) {
					out->entry = &l->v[i];
					out->ds = &l->v[i].srcs.v[k];
				}
			}
		gateways_matching += here;
	}
	if (!gateways_matching)
		return pb_fail(f, PB_ECONFLICT, "no_gateway", "no gateway available: %s has no data source for %s %s "
			       "that you may use; ask a gateway admin to add one (and you as its user), or publish with "
			       "connection (credentials) to create it on a gateway you administer",
			       named ? "the gateway named" : "none of your gateways", src->type, src->path);
	if (gateways_matching > 1)
		return pb_fail(f, PB_EINVAL, "gateway_required", "%zu gateways have a data source for %s %s: name one "
			       "with gateway_id (or the data source with gateway_datasource_id; GET /api/powerbi/gateways "
			       "lists them)", gateways_matching, src->type, src->path);
	return PB_OK;
}

static const char *in_str(const json_t *in, const char *key)
{
	return json_string_value(json_object_get(in, key));
}

/* ---- the request check --------------------------------------------------------------------------- */

/* What a request sees: the port and its data source (its contract rendered; the job renders it
 * again), and the gateways the user may use, through the user's session. */
typedef struct gw_view {
	cat_port *port;          /* NULL without a port */
	publish_source src;
	pbi_session s;
	bool have_session;
	gw_list l;
} gw_view;

static void gw_view_release(gw_view *v)
{
	gw_list_release(&v->l);
	if (v->have_session)
		pbi_session_release(&v->s);
	publish_source_release(&v->src);
	catalog_port_free(v->port);
	memset(v, 0, sizeof *v);
}

/* Fills v for port_id (NULL: no port; http_path named in messages as params says) and user_id;
 * quick: one try of at most PB_PUBLISH_CHECK_TIMEOUT_MS per Microsoft call. Failures in f. */
static int gw_view_open(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *port_id,
			const char *http_path, render_params params, bool quick, gw_view *v, pb_failure *f)
{
	int rc;
	memset(v, 0, sizeof *v);
	if (port_id) {
		if ((rc = catalog_port_get(db, org_id, port_id, true, &v->port, f->message)))
			return rc == PB_ENOTFOUND ? pb_fail(f, rc, NULL, "no output port %s", port_id) : pb_fail_as(f, rc, NULL);
		if ((rc = publish_port_source(cfg, v->port, http_path, params, &v->src, NULL, f)))
			return rc;
	}
	if ((rc = publish_open_session(&v->s, db, cfg, org_id, user_id, f)))
		return rc;
	v->have_session = true;
	if (quick) {
		v->s.api.max_attempts = 1;
		v->s.api.call_timeout_ms = PB_PUBLISH_CHECK_TIMEOUT_MS;
	}
	if ((rc = gw_list_load(&v->s, &v->l, f->message)))
		rc = pbi_session_fail(&v->s, rc, f);
	return rc;
}

int publish_gateway_check(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			  publish_request *rq, pb_failure *f)
{
	json_t *in = json_loads(rq->input ? rq->input : "", 0, NULL);
	gw_view v = { 0 };
	gw_choice c;
	char *text = NULL;
	int rc = PB_OK;
	if (!publish_gateway_job(in))
		goto out;
	/* quick questions: a slow Power BI does not hold the request, the job chooses then */
	if ((rc = gw_view_open(db, cfg, org_id, user_id, rq->port->id, in_str(in, "http_path"), RENDER_PARAMS_BODY, true,
			       &v, f))) {
		if (rc == PB_EUNAVAIL) {   /* the job asks again, and waits for Microsoft */
			pb_failure_clear(f);
			rc = PB_OK;
		}
		goto out;
	}
	if ((rc = gw_choose(&v.l, &v.src, in_str(in, "gateway_id"), in_str(in, "gateway_datasource_id"),
			    json_is_true(json_object_get(in, "gateway_create")), &c, f)))
		goto out;
	if (json_object_set_new(in, "gateway_id", json_string(c.entry->gw.id)) ||
	    (c.ds && json_object_set_new(in, "gateway_datasource_id", json_string(c.ds->id))) ||
	    !(text = json_dumps(in, JSON_COMPACT))) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	free(rq->input);
	rq->input = text;
out:
	gw_view_release(&v);
	json_decref(in);
	return rc;
}

/* ---- GET /api/powerbi/gateways ---------------------------------------------------------------------- */

/* One gateway as the endpoint shows it; src (may be NULL) adds "matches". New or NULL. */
static json_t *gateway_doc(const gw_entry *e, const publish_source *src)
{
	json_t *list = json_array();
	for (size_t k = 0; list && k < e->srcs.n; k++) {
		const gateway_source *g = &e->srcs.v[k];
		json_t *one = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?}", "id", g->id, "name", g->name, "type", g->type,
					"path", g->path, "credential_type", g->credential_type);
		if (!one || (src && json_object_set_new(one, "matches", json_boolean(source_matches(src, g)))) ||
		    json_array_append_new(list, one)) {
			json_decref(list);
			return NULL;
		}
	}
	return list ? json_pack("{s:s?, s:s?, s:s?, s:s?, s:b, s:o}", "id", e->gw.id, "name", e->gw.name, "type",
				e->gw.type, "status", e->gw.status, "admin", e->admin, "data_sources", list) : NULL;
}

int publish_gateways(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *port_id,
		     const char *http_path, json_t **out, pb_failure *f)
{
	gw_view v;
	bool on_prem = false;
	json_t *list = NULL;
	*out = NULL;
	pb_failure_clear(f);
	int rc = gw_view_open(db, cfg, org_id, user_id, port_id, http_path, RENDER_PARAMS_QUERY, false, &v, f);
	if (!rc && v.port && (rc = publish_gateway_marked(v.port, &on_prem, NULL, f->message)))
		rc = pb_fail_as(f, rc, NULL);
	if (rc)
		goto out;
	list = json_array();
	for (size_t i = 0; list && i < v.l.n; i++) {
		json_t *one = gateway_doc(&v.l.v[i], v.port ? &v.src : NULL);
		if (!one || json_array_append_new(list, one)) {
			json_decref(list);
			list = NULL;
		}
	}
	if (!list || !(*out = json_pack("{s:o}", "gateways", list)) ||
	    (v.port && (json_object_set_new(*out, "data_source", json_pack("{s:s, s:s}", "type", v.src.type, "path",
									   v.src.path)) ||
			json_object_set_new(*out, "on_premises", json_boolean(on_prem))))) {
		json_decref(*out);
		*out = NULL;
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	}
out:
	gw_view_release(&v);
	return rc;
}

/* ---- the job ------------------------------------------------------------------------------------------- */

bool publish_gateway_job(const json_t *in)
{
	return json_is_true(json_object_get(in, "gateway"));
}

bool publish_gateway_created(const pb_job_ctx *ctx)
{
	return json_is_true(json_object_get(ctx->checkpoint, "gateway_datasource_created"));
}

static const char *cp_str(const pb_job_ctx *ctx, const char *key)
{
	return json_string_value(json_object_get(ctx->checkpoint, key));
}

/* The display name of the data source this job creates: it carries the job's id, so a resumed job
 * finds it. */
static void source_name(const pb_job_ctx *ctx, const publish_source *src, char out[PB_PUBLISH_CONN_NAME_MAX + 1])
{
	char host[64];
	xsnprintf(host, sizeof host, "%s", src->host ? src->host : "");   /* cut long hosts */
	if (xsnprintf(out, PB_PUBLISH_CONN_NAME_MAX + 1, "%s %s via gateway (pbiport %.12s)", src->type, host,
		      ctx->job->id))
		out[PB_PUBLISH_CONN_NAME_MAX] = '\0';
}

static const gateway_source *source_named(const gw_entry *e, const char *name)
{
	for (size_t i = 0; i < e->srcs.n; i++)
		if (e->srcs.v[i].name && !strcmp(e->srcs.v[i].name, name))
			return &e->srcs.v[i];
	return NULL;
}

/* Creates the data source on c's gateway with the job's credentials (or adopts the one this job
 * made before a crash); *made (new) is it. */
static int create_source(pb_job_ctx *ctx, pbi_session *s, const publish_source *src, const gw_choice *c,
			 gateway_source *made)
{
	char name[PB_PUBLISH_CONN_NAME_MAX + 1], path[2 * PB_HTTP_URL_MAX], sub[PB_ERR_MAX];
	json_t *creds = NULL;
	int rc;
	source_name(ctx, src, name);
	const gateway_source *found = source_named(c->entry, name);
	if (found && source_matches(src, found)) {   /* made by this job before a crash */
		if (!(made->id = xstrdup(found->id)) || !(made->gateway_id = xstrdup(c->entry->gw.id)))
			return pb_err(ctx->err, PB_ENOMEM, "out of memory");
		return PB_OK;
	}
	if (found)
		return job_fail(ctx, "name_taken", "gateway %s already has a data source named \"%s\" that points at %s %s, "
				"not at %s %s: this publish did not make it; rename or delete it and publish again",
				gw_label(c->entry), name, found->type ? found->type : "?", found->path ? found->path : "?",
				src->type, src->path);
	if (xsnprintf(path, sizeof path, "%s", src->path))
		return job_fail(ctx, "bad_input", "the data source's host and path are too long for a gateway");
	if ((rc = publish_open_credentials(ctx, &creds)))
		return rc;
	const char *ctype = json_string_value(json_object_get(creds, "credential_type"));
	gateway_source_req req = {
		.gw = &c->entry->gw, .name = name, .type = src->type, .path = path,
		.cred = ctype && !strcmp(ctype, "token") ? GATEWAY_CRED_KEY :
			ctype && !strcmp(ctype, "windows") ? GATEWAY_CRED_WINDOWS : GATEWAY_CRED_BASIC,
		.username = json_string_value(json_object_get(creds, "username")),
		.password = json_string_value(json_object_get(creds, "password")),
		.key = json_string_value(json_object_get(creds, "token")),
	};
	rc = gateway_create_source(&s->api, &req, made, sub);
	msapi_wipe_json(creds);
	json_decref(creds);
	if (rc)
		return publish_api_failure(ctx, s, NULL, rc, "creating the data source on the gateway", sub,
					   MSAPI_BAD_CREDENTIALS, "credentials_rejected");
	return PB_OK;
}

int publish_gateway_connection(pb_job_ctx *ctx, pbi_session *s, const publish_source *src, const json_t *in,
			       char connection_id[PB_PBI_ID_MAX + 1])
{
	gw_list l = { 0 };
	gw_choice c;
	gateway_source made = { 0 };
	pb_failure f;
	const char *done = cp_str(ctx, "gateway_datasource_id");
	bool create = json_is_true(json_object_get(in, "gateway_create"));
	int rc;
	if (done) {
		xsnprintf(connection_id, PB_PBI_ID_MAX + 1, "%s", done);
		return PB_OK;
	}
	if ((rc = job_phase(ctx, "creating_connection", 20)))
		return rc;
	pb_failure_clear(&f);
	if ((rc = gw_list_load(s, &l, f.message))) {
		rc = publish_api_failure(ctx, s, NULL, rc, "listing your gateways", f.message, MSAPI_OK, NULL);
		goto out;
	}
	/* the gateway chosen before a crash is the one to look at for what this job made */
	const char *want_gw = cp_str(ctx, "gateway_id");
	if ((rc = gw_choose(&l, src, want_gw ? want_gw : in_str(in, "gateway_id"), in_str(in, "gateway_datasource_id"),
			    create, &c, &f))) {
		rc = job_end_with(ctx, &f);
		goto out;
	}
	if (!want_gw && (rc = job_checkpoint(ctx, "gateway_id", json_string(c.entry->gw.id))))
		goto out;
	if (create) {
		if ((rc = create_source(ctx, s, src, &c, &made)))
			goto out;
		xsnprintf(connection_id, PB_PBI_ID_MAX + 1, "%s", made.id ? made.id : "");
	} else {
		xsnprintf(connection_id, PB_PBI_ID_MAX + 1, "%s", c.ds->id);
	}
	job_test_pause(ctx, "creating_connection");
	if (!(rc = job_checkpoint(ctx, "gateway_datasource_created", json_boolean(create))))
		rc = job_checkpoint(ctx, "gateway_datasource_id", json_string(connection_id));
out:
	gateway_source_release(&made);
	gw_list_release(&l);
	return rc;
}

int publish_gateway_bind(pb_job_ctx *ctx, pbi_session *s, const char *ws, const char *model_id)
{
	gateways offered = { 0 };
	const char *gw = cp_str(ctx, "gateway_id"), *ds = cp_str(ctx, "gateway_datasource_id");
	char sub[PB_ERR_MAX];
	bool offers = false;
	int rc;
	if (json_is_true(json_object_get(ctx->checkpoint, "bound")))
		return PB_OK;
	if ((rc = job_phase(ctx, "binding", 70)))
		return rc;
	if (!gw || !ds)
		return job_fail(ctx, "bad_input", "the publish job reached binding without its gateway data source");
	/* Power BI offers the gateways that have a data source for each of the model's: ours must be one */
	if ((rc = gateway_discover(&s->api, ws, model_id, &offered, sub))) {
		rc = publish_api_failure(ctx, s, NULL, rc, "asking Power BI which gateways can serve the model", sub, MSAPI_OK,
					 NULL);
		goto out;
	}
	for (size_t i = 0; i < offered.n && !offers; i++)
		offers = offered.v[i].id && str_ieq(offered.v[i].id, gw);
	if (!offers) {
		rc = job_fail(ctx, "connection_mismatch", "gateway %s cannot serve the model: it lacks a data source you may "
			      "use for one of the model's sources (Power BI offers %zu gateway%s for this model)", gw,
			      offered.n, offered.n == 1 ? "" : "s");
		goto out;
	}
	if ((rc = gateway_bind(&s->api, ws, model_id, gw, &ds, 1, sub))) {
		rc = publish_api_failure(ctx, s, NULL, rc, "binding the model to the gateway", sub, MSAPI_FORBIDDEN,
					 "no_gateway_rights");
		goto out;
	}
	job_test_pause(ctx, "binding");
	rc = job_checkpoint(ctx, "bound", json_true());
out:
	gateways_release(&offered);
	return rc;
}

int publish_gateway_cleanup(pb_job_ctx *ctx, pbi_session *s, const json_t *in, const char *model_id)
{
	const char *gw = cp_str(ctx, "gateway_id"), *ds = cp_str(ctx, "gateway_datasource_id");
	bool made = publish_gateway_created(ctx), create = json_is_true(json_object_get(in, "gateway_create"));
	if (!gw)   /* chosen by the request check, before the job checkpointed anything */
		gw = in_str(in, "gateway_id");
	gateway_sources l = { 0 };
	char removed[PB_PBI_ID_MAX + 1] = "", sub[PB_ERR_MAX];
	int rc = PB_OK;
	if (create && gw && !ds) {
		/* made, but the worker died before its checkpoint: its name ends with the job id (source_name) */
		if ((rc = gateway_list_sources(&s->api, gw, &l, sub))) {
			rc = publish_api_failure(ctx, s, NULL, rc, "listing the gateway's data sources", sub, MSAPI_OK, NULL);
			goto out;
		}
		for (size_t i = 0; i < l.n && !ds; i++)
			if (publish_named_by_job(l.v[i].name, ctx->job->id))
				ds = l.v[i].id;
		made = ds != NULL;
	}
	if (made && ds) {
		xsnprintf(removed, sizeof removed, "%s", ds);
		if ((rc = gateway_delete_source(&s->api, gw, removed, sub))) {
			rc = publish_api_failure(ctx, s, NULL, rc, "deleting the gateway data source", sub, MSAPI_OK, NULL);
			goto out;
		}
	}
	const char *kept = made ? NULL : ds ? ds : in_str(in, "gateway_datasource_id");
	ctx->result = json_pack("{s:{s:s?,s:s?},s:{s:s?}}", "removed", "semantic_model_id", model_id, "connection_id",
				removed[0] ? removed : NULL, "kept", "connection_id", kept);
	if (!ctx->result)
		rc = pb_err(ctx->err, PB_ENOMEM, "out of memory");
out:
	gateway_sources_release(&l);
	return rc;
}
