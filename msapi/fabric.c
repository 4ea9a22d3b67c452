#include "msapi/fabric.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/crypto.h"
#include "runtime/util.h"

static void copy_err(char *dst, const char *src)
{
	if (xsnprintf(dst, PB_ERR_MAX, "%s", src))
		dst[PB_ERR_MAX - 1] = '\0';
}

void fabric_definition_release(fabric_definition *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free_each(d->v[i].path, d->v[i].data);
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

int fabric_list_workspaces(msapi *c, msapi_items *out, char *err)
{
	return msapi_list_items(c, MSAPI_FABRIC, "/v1/workspaces", "list workspaces", out, err);
}

int fabric_list_workspaces_in_role(msapi *c, const char *role, msapi_items *out, char *err)
{
	return msapi_list_items_at(c, MSAPI_FABRIC, "list workspaces by role", out, err, "/v1/workspaces?roles=%s", role);
}

int fabric_list_semantic_models(msapi *c, const char *ws, msapi_items *out, char *err)
{
	return msapi_list_items_at(c, MSAPI_FABRIC, "list the semantic models of a workspace", out, err,
				   "/v1/workspaces/%s/semanticModels", ws);
}

/* {"parts":[{"path","payload","payloadType":"InlineBase64"}...]} (new) */
static json_t *definition_json(const fabric_part *parts, size_t n, const char *format, char *err)
{
	json_t *def = json_object(), *arr = json_array();
	if (!def || !arr || json_object_set_new(def, "parts", arr)) {
		json_decref(def);
		pb_err(err, PB_ENOMEM, "out of memory");
		return NULL;
	}
	if (format && json_object_set_new(def, "format", json_string(format)))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		char *b64 = NULL;
		if (!parts[i].path || !*parts[i].path) {
			json_decref(def);
			pb_err(err, PB_EINVAL, "definition part %zu has no path", i + 1);
			return NULL;
		}
		if (pb_b64_encode(parts[i].data, parts[i].len, &b64, err)) {
			json_decref(def);
			return NULL;
		}
		json_t *p = json_pack("{s:s, s:s, s:s}", "path", parts[i].path, "payload", b64,
				      "payloadType", "InlineBase64");
		free(b64);
		if (!p || json_array_append_new(arr, p))
			goto oom;
	}
	return def;
oom:
	json_decref(def);
	pb_err(err, PB_ENOMEM, "out of memory (or a part path is not UTF-8)");
	return NULL;
}

/* After a listing that returned rc: moves the item named name (and, when description is not
 * NULL, described so: the mark of who created it) out of l (then released) into *out;
 * *found tells. Returns rc. */
static int take_named(int rc, msapi_items *l, const char *name, const char *description, msapi_item *out,
		      bool *found)
{
	*found = false;
	if (rc)
		return rc;
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].name && !strcmp(l->v[i].name, name) &&
		    (!description || (l->v[i].description && !strcmp(l->v[i].description, description)))) {
			*out = l->v[i];
			memset(&l->v[i], 0, sizeof l->v[i]);
			*found = true;
			break;
		}
	}
	msapi_items_release(l);
	return PB_OK;
}

/* The outcome of looking for what a create may have made, after it failed with create_rc
 * (message in err, facts in *create_last) in a way that leaves its outcome unknown: lrc and
 * lerr are the look-up's result, *found whether it found the item. PB_OK when found; else
 * the create's failure as it was (c->last restored, so callers still see its code), with
 * the look-up's failure added to the message when the look-up itself failed. */
static int after_lookup(msapi *c, int create_rc, const msapi_last *create_last, int lrc, const char *lerr,
			bool found, char *err)
{
	c->last = *create_last;
	if (lrc) {
		char first[PB_ERR_MAX];
		copy_err(first, err);
		return pb_err(err, lrc, "%s; checking whether it was created failed too: %s", first, lerr);
	}
	return found ? PB_OK : create_rc;
}

/* Finds the model named name in ws (with that description when it is not NULL: another
 * caller's model of the same name is not ours); *found tells. */
static int find_model(msapi *c, const char *ws, const char *name, const char *description, msapi_item *out,
		      bool *found, char *err)
{
	msapi_items l = { 0 };
	return take_named(fabric_list_semantic_models(c, ws, &l, err), &l, name, description, out, found);
}

int fabric_create_semantic_model(msapi *c, const char *ws, const char *display_name, const char *description,
				 const fabric_part *parts, size_t nparts, msapi_item *out, char *err)
{
	memset(out, 0, sizeof *out);
	int rc = PB_OK;
	char *path = NULL;
	json_t *body = NULL, *result = NULL;
	msapi_reply r = { 0 };
	char what[300];
	bool was_unknown = false, found = false;
	if (!display_name || !*display_name || !nparts)
		return pb_err(err, PB_EINVAL, "a semantic model needs a display name and definition parts");
	if (xsnprintf(what, sizeof what, "create semantic model '%.200s'", display_name))
		what[sizeof what - 1] = '\0';
	if ((rc = msapi_path(&path, err, "/v1/workspaces/%s/semanticModels", ws)))
		goto out;
	json_t *def = definition_json(parts, nparts, NULL, err);
	if (!def) {
		rc = PB_ENOMEM;
		goto out;
	}
	body = json_pack("{s:s, s:o}", "displayName", display_name, "definition", def);
	if (!body || (description && json_object_set_new(body, "description", json_string(description)))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory (or the name is not UTF-8)");
		goto out;
	}
	for (int round = 0; round < 2; round++) {
		msapi_call call = { .svc = MSAPI_FABRIC, .method = "POST", .url = path, .json = body,
				    .idempotent = false, .what = what };
		msapi_reply_release(&r);
		rc = msapi_do(c, &call, &r, err);
		if (!rc)
			break;
		bool unknown = c->last.outcome_unknown;
		bool clash_after_drop = was_unknown && !strcmp(c->last.code, "ItemDisplayNameAlreadyInUse");
		if (!unknown && !clash_after_drop)
			goto out;
		/* the create may have happened: look before creating a second model */
		was_unknown = true;
		msapi_last create_last = c->last;
		char lerr[PB_ERR_MAX];
		int lrc = find_model(c, ws, display_name, description, out, &found, lerr);
		rc = after_lookup(c, rc, &create_last, lrc, lerr, found, err);
		/* a clash not found: the operation still runs server-side, or the name is another's */
		if (found || lrc || clash_after_drop)
			goto out;
	}
	if (rc)
		goto out;
	if ((rc = msapi_lro(c, MSAPI_FABRIC, &r, what, &result, err)))
		goto out;
	if (json_is_object(result) && json_object_get(result, "id")) {
		rc = msapi_item_from_json(result, out, err);
	} else {
		/* an operation without a result body: find the model it made */
		if (!(rc = find_model(c, ws, display_name, description, out, &found, err)) && !found)
			rc = pb_err(err, PB_EIO, "Fabric reported %s as done, but the model is not in the workspace",
				    what);
	}
out:
	free(path);
	json_decref(body);
	json_decref(result);
	msapi_reply_release(&r);
	return rc;
}

int fabric_get_definition(msapi *c, const char *ws, const char *id, const char *format,
			  fabric_definition *out, char *err)
{
	out->v = NULL;
	out->n = 0;
	char *path = NULL, *url = NULL;
	json_t *result = NULL;
	msapi_reply r = { 0 };
	int rc = msapi_path(&path, err, "/v1/workspaces/%s/semanticModels/%s/getDefinition", ws, id);
	if (rc)
		goto out;
	if (format && strcmp(format, "TMDL") && strcmp(format, "TMSL")) {
		rc = pb_err(err, PB_EINVAL, "definition format must be TMDL or TMSL");
		goto out;
	}
	if (asprintf(&url, "%s?format=%s", path, format ? format : "TMDL") < 0) {
		url = NULL;
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	/* getDefinition changes nothing: safe to repeat */
	msapi_call call = { .svc = MSAPI_FABRIC, .method = "POST", .url = url, .idempotent = true,
			    .what = "read a semantic model's definition" };
	if ((rc = msapi_do(c, &call, &r, err)) || (rc = msapi_lro(c, MSAPI_FABRIC, &r, call.what, &result, err)))
		goto out;
	const json_t *parts = json_object_get(json_object_get(result, "definition"), "parts");
	if (!json_is_array(parts)) {
		rc = pb_err(err, PB_EIO, "Fabric sent a definition without parts");
		goto out;
	}
	size_t n = json_array_size(parts);
	out->v = calloc(n ? n : 1, sizeof *out->v);
	if (!out->v) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *p = json_array_get(parts, i);
		const char *pp = json_string_value(json_object_get(p, "path"));
		const char *pl = json_string_value(json_object_get(p, "payload"));
		if (!pp || !pl) {
			rc = pb_err(err, PB_EIO, "Fabric sent definition part %zu without path or payload", i + 1);
			goto out;
		}
		fabric_def_part *d = &out->v[out->n];
		if (!(d->path = xstrdup(pp))) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		out->n++;
		char sub[PB_ERR_MAX];
		if (pb_b64_decode(pl, strlen(pl), &d->data, &d->len, sub)) {
			rc = pb_err(err, PB_EIO, "definition part %s: %s", pp, sub);
			goto out;
		}
	}
out:
	if (rc)
		fabric_definition_release(out);
	free(path);
	free(url);
	json_decref(result);
	msapi_reply_release(&r);
	return rc;
}

int fabric_update_definition(msapi *c, const char *ws, const char *id, const fabric_part *parts, size_t nparts,
			     char *err)
{
	char *path = NULL;
	json_t *body = NULL;
	msapi_reply r = { 0 };
	int rc = msapi_path(&path, err, "/v1/workspaces/%s/semanticModels/%s/updateDefinition", ws, id);
	if (rc)
		goto out;
	json_t *def = definition_json(parts, nparts, NULL, err);
	if (!def) {
		rc = PB_ENOMEM;
		goto out;
	}
	if (!(body = json_pack("{s:o}", "definition", def))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	/* replacing the definition with the same parts gives the same model: repeatable */
	msapi_call call = { .svc = MSAPI_FABRIC, .method = "POST", .url = path, .json = body, .idempotent = true,
			    .what = "update a semantic model's definition" };
	if (!(rc = msapi_do(c, &call, &r, err)))
		rc = msapi_lro(c, MSAPI_FABRIC, &r, call.what, NULL, err);
out:
	free(path);
	json_decref(body);
	msapi_reply_release(&r);
	return rc;
}

int fabric_list_connections(msapi *c, msapi_items *out, char *err)
{
	return msapi_list_items(c, MSAPI_FABRIC, "/v1/connections", "list connections", out, err);
}

static json_t *credentials_json(const fabric_connection_req *r, char *err)
{
	json_t *cr = NULL;
	switch (r->cred) {
	case FABRIC_CRED_BASIC:
		if (!r->username || !r->password)
			break;
		cr = json_pack("{s:s, s:s, s:s}", "credentialType", "Basic", "username", r->username,
			       "password", r->password);
		break;
	case FABRIC_CRED_KEY:
		if (!r->key)
			break;
		cr = json_pack("{s:s, s:s}", "credentialType", "Key", "key", r->key);
		break;
	case FABRIC_CRED_SERVICE_PRINCIPAL:
		if (!r->tenant_id || !r->sp_client_id || !r->sp_secret)
			break;
		cr = json_pack("{s:s, s:s, s:s, s:s}", "credentialType", "ServicePrincipal", "tenantId", r->tenant_id,
			       "servicePrincipalClientId", r->sp_client_id, "servicePrincipalSecret", r->sp_secret);
		break;
	}
	if (!cr)
		pb_err(err, PB_EINVAL, "the connection's credentials are incomplete");
	return cr;
}

static int find_connection(msapi *c, const char *name, msapi_item *out, bool *found, char *err)
{
	msapi_items l = { 0 };
	return take_named(fabric_list_connections(c, &l, err), &l, name, NULL, out, found);
}

int fabric_create_connection(msapi *c, const fabric_connection_req *r, msapi_item *out, char *err)
{
	memset(out, 0, sizeof *out);
	int rc = PB_OK;
	json_t *body = NULL, *params = NULL;
	msapi_reply rep = { 0 };
	char what[300];
	bool was_unknown = false, found = false;
	if (!r->display_name || !*r->display_name || !r->type || !r->creation_method)
		return pb_err(err, PB_EINVAL, "a connection needs a display name, type and creation method");
	if (xsnprintf(what, sizeof what, "create connection '%.200s'", r->display_name))
		what[sizeof what - 1] = '\0';
	json_t *cred = credentials_json(r, err);
	if (!cred)
		return PB_EINVAL;
	if (!(params = json_array())) {
		json_decref(cred);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < r->nparams; i++) {
		json_t *p = json_pack("{s:s, s:s, s:s}", "dataType", r->params[i].data_type ? r->params[i].data_type : "Text",
				      "name", r->params[i].name ? r->params[i].name : "",
				      "value", r->params[i].value ? r->params[i].value : "");
		if (!p || json_array_append_new(params, p)) {
			json_decref(params);
			msapi_wipe_json(cred);
			json_decref(cred);
			return pb_err(err, PB_ENOMEM, "out of memory (or a parameter is not UTF-8)");
		}
	}
	body = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:s, s:{s:s, s:s, s:b, s:o}}",
			 "connectivityType", "ShareableCloud", "displayName", r->display_name,
			 "connectionDetails", "type", r->type, "creationMethod", r->creation_method, "parameters", params,
			 "privacyLevel", r->privacy_level ? r->privacy_level : "Organizational",
			 "credentialDetails", "singleSignOnType", "None",
			 "connectionEncryption", r->encryption ? r->encryption : "NotEncrypted",
			 "skipTestConnection", r->skip_test, "credentials", cred);
	if (!body) {
		rc = pb_err(err, PB_ENOMEM, "out of memory (or a value is not UTF-8)");
		goto out;
	}
	for (int round = 0; round < 2; round++) {
		msapi_call call = { .svc = MSAPI_FABRIC, .method = "POST", .url = "/v1/connections", .json = body,
				    .idempotent = false, .what = what };
		msapi_reply_release(&rep);
		rc = msapi_do(c, &call, &rep, err);
		if (!rc)
			break;
		bool clash_after_drop = was_unknown && !strcmp(c->last.code, "DuplicateConnectionName");
		if (!c->last.outcome_unknown && !clash_after_drop)
			goto out;
		was_unknown = true;
		msapi_last create_last = c->last;
		char lerr[PB_ERR_MAX];
		int lrc = find_connection(c, r->display_name, out, &found, lerr);
		rc = after_lookup(c, rc, &create_last, lrc, lerr, found, err);
		if (found || lrc || clash_after_drop)
			goto out;
	}
	if (!rc)
		rc = msapi_item_from_json(rep.json, out, err);
out:
	if (body) {
		msapi_wipe_json(body);
		json_decref(body);
	}
	msapi_reply_release(&rep);
	return rc;
}

int fabric_bind_connection(msapi *c, const char *ws, const char *model_id, const char *connection_id,
			   const char *ds_type, const char *ds_path, char *err)
{
	char *path = NULL;
	json_t *body = NULL;
	msapi_reply r = { 0 };
	int rc = PB_OK;
	if (!ds_type || !ds_path)
		return pb_err(err, PB_EINVAL, "binding needs the data source's type and path");
	if ((rc = msapi_path(&path, err, "/v1/workspaces/%s/semanticModels/%s/bindConnection", ws, model_id)))
		goto out;
	if (connection_id)
		body = json_pack("{s:{s:s, s:s, s:{s:s, s:s}}}", "connectionBinding", "id", connection_id,
				 "connectivityType", "ShareableCloud", "connectionDetails", "type", ds_type, "path", ds_path);
	else
		body = json_pack("{s:{s:s, s:{s:s, s:s}}}", "connectionBinding", "connectivityType", "None",
				 "connectionDetails", "type", ds_type, "path", ds_path);
	if (!body) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	/* binding the same pair twice leaves the same state: repeatable */
	msapi_call call = { .svc = MSAPI_FABRIC, .method = "POST", .url = path, .json = body, .idempotent = true,
			    .what = connection_id ? "bind the semantic model to the connection" :
						    "unbind the semantic model's data source" };
	rc = msapi_do(c, &call, &r, err);
out:
	free(path);
	json_decref(body);
	msapi_reply_release(&r);
	return rc;
}

int fabric_list_item_connections(msapi *c, const char *ws, const char *item_id, msapi_items *out, char *err)
{
	return msapi_list_items_at(c, MSAPI_FABRIC, "list the model's data sources", out, err,
				   "/v1/workspaces/%s/items/%s/connections", ws, item_id);
}

/* A DELETE that counts an answer of 404 (already gone) as done. */
static int delete_gone_ok(msapi *c, const char *path, const char *what, char *err)
{
	msapi_reply r = { 0 };
	msapi_call call = { .svc = MSAPI_FABRIC, .method = "DELETE", .url = path, .idempotent = true, .what = what };
	int rc = msapi_do(c, &call, &r, err);
	if (rc && c->last.status == 404)
		rc = PB_OK;
	msapi_reply_release(&r);
	return rc;
}

int fabric_delete_semantic_model(msapi *c, const char *ws, const char *id, char *err)
{
	char *path = NULL;
	int rc = msapi_path(&path, err, "/v1/workspaces/%s/semanticModels/%s", ws, id);
	if (!rc)
		rc = delete_gone_ok(c, path, "delete the semantic model", err);
	free(path);
	return rc;
}

int fabric_delete_connection(msapi *c, const char *id, char *err)
{
	char *path = NULL;
	int rc = msapi_path(&path, err, "/v1/connections/%s", id);
	if (!rc)
		rc = delete_gone_ok(c, path, "delete the connection", err);
	free(path);
	return rc;
}
