#include "msapi/powerbi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/strbuf.h"
#include "runtime/util.h"

#define GROUPS_PAGE 5000   /* $top per groups page; Power BI's maximum */

/* GET url (a path of Power BI's API) into r: what reads of one resource send. */
static int pbi_get(msapi *c, const char *url, const char *what, msapi_reply *r, char *err)
{
	msapi_call call = { .svc = MSAPI_POWERBI, .method = "GET", .url = url, .idempotent = true, .what = what };
	return msapi_do(c, &call, r, err);
}

int powerbi_list_groups(msapi *c, const char *filter, msapi_items *out, char *err)
{
	out->v = NULL;
	out->n = 0;
	int rc = PB_OK;
	json_t *all = json_array(), *page = NULL;
	sbuf fq;
	sbuf_init(&fq, PB_HTTP_URL_MAX);
	if (!all) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if (filter && (sbuf_adds(&fq, "&$filter=") || msapi_urlenc(&fq, filter))) {
		rc = pb_err(err, PB_ELIMIT, "group filter too long");
		goto out;
	}
	/* groups page with $top/$skip (no continuation token): ask until a short page */
	for (size_t skip = 0;; skip += GROUPS_PAGE) {
		char *path = NULL;
		if (asprintf(&path, "/v1.0/myorg/groups?$top=%d&$skip=%zu%s", GROUPS_PAGE, skip, sbuf_str(&fq)) < 0) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		rc = msapi_get_all(c, MSAPI_POWERBI, path, "list workspaces", PB_MSAPI_MAX_ITEMS, &page, err);
		free(path);
		if (rc)
			goto out;
		size_t got = json_array_size(page);
		if (json_array_size(all) + got > PB_MSAPI_MAX_ITEMS) {
			rc = pb_err(err, PB_ELIMIT, "list workspaces: more than %d items", PB_MSAPI_MAX_ITEMS);
			goto out;
		}
		if (json_array_extend(all, page)) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		json_decref(page);
		page = NULL;
		if (got < GROUPS_PAGE)
			break;
	}
	rc = msapi_items_from_json(all, out, err);
out:
	json_decref(all);
	json_decref(page);
	sbuf_release(&fq);
	return rc;
}

void powerbi_group_release(powerbi_group *g)
{
	free_each(g->id, g->name, g->capacity_id);
	memset(g, 0, sizeof *g);
}

int powerbi_get_group(msapi *c, const char *group, powerbi_group *out, char *err)
{
	char *path = NULL;
	msapi_reply r = { 0 };
	memset(out, 0, sizeof *out);
	int rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s", group);
	if (rc)
		goto out;
	if ((rc = pbi_get(c, path, "read the workspace", &r, err)))
		goto out;
	const json_t *ded = json_object_get(r.json, "isOnDedicatedCapacity");
	if (!json_is_object(r.json) || !json_is_boolean(ded)) {
		rc = pb_err(err, PB_EIO, "Power BI described workspace %s without isOnDedicatedCapacity", group);
		goto out;
	}
	out->on_dedicated_capacity = json_is_true(ded);
	const char *id = json_string_value(json_object_get(r.json, "id"));
	const char *name = json_string_value(json_object_get(r.json, "name"));
	const char *cap = json_string_value(json_object_get(r.json, "capacityId"));
	if ((id && !(out->id = xstrdup(id))) || (name && !(out->name = xstrdup(name))) ||
	    (cap && !(out->capacity_id = xstrdup(cap))))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	free(path);
	msapi_reply_release(&r);
	if (rc)
		powerbi_group_release(out);
	return rc;
}

int powerbi_list_datasets(msapi *c, const char *group, msapi_items *out, char *err)
{
	return msapi_list_items_at(c, MSAPI_POWERBI, "list the datasets of a workspace", out, err,
				   "/v1.0/myorg/groups/%s/datasets", group);
}

int powerbi_get_dataset(msapi *c, const char *group, const char *dataset, msapi_item *out, char *err)
{
	char *path = NULL;
	msapi_reply r = { 0 };
	memset(out, 0, sizeof *out);
	int rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s/datasets/%s", group, dataset);
	if (rc)
		goto out;
	if ((rc = pbi_get(c, path, "read the dataset", &r, err)))
		goto out;
	if (!json_is_object(r.json)) {
		rc = pb_err(err, PB_EIO, "Power BI described dataset %s without a JSON object", dataset);
		goto out;
	}
	rc = msapi_item_from_json(r.json, out, err);
out:
	free(path);
	msapi_reply_release(&r);
	return rc;
}

int powerbi_list_reports(msapi *c, const char *group, msapi_items *out, char *err)
{
	return msapi_list_items_at(c, MSAPI_POWERBI, "list the reports of a workspace", out, err,
				   "/v1.0/myorg/groups/%s/reports", group);
}

int powerbi_list_dashboards(msapi *c, const char *group, msapi_items *out, char *err)
{
	return msapi_list_items_at(c, MSAPI_POWERBI, "list the dashboards of a workspace", out, err,
				   "/v1.0/myorg/groups/%s/dashboards", group);
}

int powerbi_list_tiles(msapi *c, const char *group, const char *dashboard, msapi_items *out, char *err)
{
	return msapi_list_items_at(c, MSAPI_POWERBI, "list the tiles of a dashboard", out, err,
				   "/v1.0/myorg/groups/%s/dashboards/%s/tiles", group, dashboard);
}

int powerbi_list_datasources(msapi *c, const char *group, const char *dataset, msapi_items *out, char *err)
{
	return msapi_list_items_at(c, MSAPI_POWERBI, "list the data sources of a dataset", out, err,
				   "/v1.0/myorg/groups/%s/datasets/%s/datasources", group, dataset);
}

void powerbi_refreshes_release(powerbi_refresh *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].request_id);
		free(v[i].refresh_type);
		free(v[i].status);
		free(v[i].start_time);
		free(v[i].end_time);
		free(v[i].error);
	}
	free(v);
}

bool powerbi_refresh_running(const powerbi_refresh *r)
{
	return r && r->status && !strcmp(r->status, "Unknown");
}

static int dup_json_str(char **dst, const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (!s)
		return 0;
	*dst = xstrdup(s);
	return *dst ? 0 : -1;
}

int powerbi_refresh_history(msapi *c, const char *group, const char *dataset, int top,
			    powerbi_refresh **out, size_t *n, char *err)
{
	*out = NULL;
	*n = 0;
	char *path = NULL, *url = NULL;
	msapi_reply r = { 0 };
	powerbi_refresh *v = NULL;
	size_t count = 0;
	int rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s/datasets/%s/refreshes", group, dataset);
	if (rc)
		goto out;
	if (top > 0 ? asprintf(&url, "%s?$top=%d", path, top) < 0 : !(url = xstrdup(path))) {
		url = NULL;
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = pbi_get(c, url, "read the refresh history", &r, err)))
		goto out;
	const json_t *value = json_object_get(r.json, "value");
	if (!json_is_array(value)) {
		rc = pb_err(err, PB_EIO, "Power BI sent a refresh history without \"value\"");
		goto out;
	}
	size_t total = json_array_size(value);
	v = calloc(total ? total : 1, sizeof *v);
	if (!v) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (; count < total; count++) {
		const json_t *e = json_array_get(value, count);
		powerbi_refresh *p = &v[count];
		if (dup_json_str(&p->request_id, e, "requestId") | dup_json_str(&p->refresh_type, e, "refreshType") |
		    dup_json_str(&p->status, e, "status") | dup_json_str(&p->start_time, e, "startTime") |
		    dup_json_str(&p->end_time, e, "endTime") | dup_json_str(&p->error, e, "serviceExceptionJson")) {
			count++;
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = v;
	*n = count;
	v = NULL;
out:
	powerbi_refreshes_release(v, count);
	free(path);
	free(url);
	msapi_reply_release(&r);
	return rc;
}

/* A dataset's refresh: where it is, and the newest running refresh's id (NULL: none). */
struct refresh_target {
	const char *group, *dataset;
	char *id;
};

/* Looks for a running refresh of t (ctx), the newest, and takes its id; an msapi_happened_fn too, for
 * a refresh start whose outcome is unknown (a running refresh is taken as the one started). */
static int running_refresh(msapi *c, void *ctx, bool *running, char *err)
{
	struct refresh_target *t = ctx;
	powerbi_refresh *h = NULL;
	size_t n = 0;
	t->id = NULL;
	int rc = powerbi_refresh_history(c, t->group, t->dataset, 1, &h, &n, err);
	if (!rc && n && powerbi_refresh_running(&h[0]) && h[0].request_id && !(t->id = xstrdup(h[0].request_id)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	powerbi_refreshes_release(h, n);
	*running = t->id != NULL;
	return rc;
}

bool powerbi_refresh_options_enhanced(const powerbi_refresh_options *o)
{
	return o && (o->type || o->commit_mode || o->nobjects || o->retry_count >= 0 || o->max_parallelism >= 0 ||
		     o->apply_refresh_policy >= 0 || o->effective_date || o->timeout);
}

/* The request body: {"notifyOption"} for a standard refresh, the enhanced fields otherwise. */
static json_t *refresh_body(const char *notify, const powerbi_refresh_options *o)
{
	if (!powerbi_refresh_options_enhanced(o))
		return json_pack("{s:s}", "notifyOption", notify ? notify : "NoNotification");
	json_t *b = json_object();
	json_t *objs = o->nobjects ? json_array() : NULL;
	bool ok = b && (!o->nobjects || objs);
	for (size_t i = 0; ok && i < o->nobjects; i++)
		ok = !json_array_append_new(objs, json_pack("{s:s, s:s*}", "table", o->objects[i].table ? o->objects[i].table : "",
							    "partition", o->objects[i].partition));
	if (ok && o->type)
		ok = !json_object_set_new(b, "type", json_string(o->type));
	if (ok && o->commit_mode)
		ok = !json_object_set_new(b, "commitMode", json_string(o->commit_mode));
	if (ok && objs) {
		ok = !json_object_set_new(b, "objects", objs);
		objs = NULL;
	}
	if (ok && o->retry_count >= 0)
		ok = !json_object_set_new(b, "retryCount", json_integer(o->retry_count));
	if (ok && o->max_parallelism >= 0)
		ok = !json_object_set_new(b, "maxParallelism", json_integer(o->max_parallelism));
	if (ok && o->apply_refresh_policy >= 0)
		ok = !json_object_set_new(b, "applyRefreshPolicy", json_boolean(o->apply_refresh_policy));
	if (ok && o->effective_date)
		ok = !json_object_set_new(b, "effectiveDate", json_string(o->effective_date));
	if (ok && o->timeout)
		ok = !json_object_set_new(b, "timeout", json_string(o->timeout));
	json_decref(objs);
	if (!ok) {
		json_decref(b);
		return NULL;
	}
	return b;
}

int powerbi_refresh_dataset_with(msapi *c, const char *group, const char *dataset, const char *notify,
				 const powerbi_refresh_options *o, char **request_id, char *err)
{
	if (request_id)
		*request_id = NULL;
	char *path = NULL, *id = NULL;
	json_t *body = NULL;
	msapi_reply r = { 0 };
	struct refresh_target started = { group, dataset, NULL };
	bool taken = false;
	int rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s/datasets/%s/refreshes", group, dataset);
	if (rc)
		goto out;
	if (!(body = refresh_body(notify, o))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory (or a table name is not UTF-8)");
		goto out;
	}
	/* a refresh may have started: take a running one as ours instead of queueing another */
	msapi_call call = { .svc = MSAPI_POWERBI, .method = "POST", .url = path, .json = body,
			    .idempotent = false, .what = "start a dataset refresh" };
	rc = msapi_post_at_most_once(c, &call, &r, running_refresh, &started, "checking the refresh history", &taken, err);
	id = started.id;
	if (rc)
		goto out;
	if (taken)
		goto done;
	const char *hid = pb_http_header(&r.http, "x-ms-request-id");
	if (hid && *hid) {
		if (!(id = xstrdup(hid)))
			rc = pb_err(err, PB_ENOMEM, "out of memory");
	} else {
		/* a standard refresh returns no id: the newest running history entry is it */
		char lerr[PB_ERR_MAX];
		bool running = false;
		if (running_refresh(c, &started, &running, lerr))
			started.id = NULL; /* the refresh started; only its id is unknown */
		id = started.id;
	}
done:
	if (request_id) {
		*request_id = id;
		id = NULL;
	}
out:
	free(id);
	free(path);
	json_decref(body);
	msapi_reply_release(&r);
	return rc;
}

/* A push dataset being made: where, its name, and the dataset found (out). */
struct push_target {
	const char *group, *name;
	msapi_item *out;
};

/* Whether the workspace has a dataset of t's name (ctx), taken into t->out; an msapi_happened_fn too,
 * for a creation whose outcome is unknown. */
static int find_dataset(msapi *c, void *ctx, bool *found, char *err)
{
	struct push_target *t = ctx;
	msapi_items l = { 0 };
	*found = false;
	int rc = powerbi_list_datasets(c, t->group, &l, err);
	for (size_t i = 0; !rc && i < l.n; i++) {
		if (l.v[i].name && !strcmp(l.v[i].name, t->name)) {
			*t->out = l.v[i];
			memset(&l.v[i], 0, sizeof l.v[i]);
			*found = true;
			break;
		}
	}
	msapi_items_release(&l);
	return rc;
}

static json_t *push_tables_json(const powerbi_push_table *t, size_t n, char *err)
{
	json_t *arr = json_array();
	if (!arr)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		json_t *cols = json_array();
		if (!cols)
			goto oom;
		for (size_t k = 0; k < t[i].ncolumns; k++) {
			json_t *col = json_pack("{s:s, s:s}", "name", t[i].columns[k].name ? t[i].columns[k].name : "",
						"dataType", t[i].columns[k].data_type ? t[i].columns[k].data_type : "String");
			if (!col || json_array_append_new(cols, col)) {
				json_decref(cols);
				goto oom;
			}
		}
		json_t *tab = json_pack("{s:s, s:o}", "name", t[i].name ? t[i].name : "", "columns", cols);
		if (!tab || json_array_append_new(arr, tab))
			goto oom;
	}
	return arr;
oom:
	json_decref(arr);
	pb_err(err, PB_ENOMEM, "out of memory (or a name is not UTF-8)");
	return NULL;
}

int powerbi_push_create(msapi *c, const char *group, const char *name, const powerbi_push_table *tables,
			size_t ntables, const char *retention, msapi_item *out, char *err)
{
	memset(out, 0, sizeof *out);
	char *path = NULL, *url = NULL;
	json_t *body = NULL;
	msapi_reply r = { 0 };
	bool found = false;
	int rc = PB_OK;
	if (!name || !*name || !ntables)
		return pb_err(err, PB_EINVAL, "a push dataset needs a name and at least one table");
	if (retention && strcmp(retention, "None") && strcmp(retention, "basicFIFO"))
		return pb_err(err, PB_EINVAL, "retention policy must be None or basicFIFO");
	if ((rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s/datasets", group)))
		goto out;
	if (asprintf(&url, "%s?defaultRetentionPolicy=%s", path, retention ? retention : "None") < 0) {
		url = NULL;
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	json_t *tabs = push_tables_json(tables, ntables, err);
	if (!tabs) {
		rc = PB_ENOMEM;
		goto out;
	}
	if (!(body = json_pack("{s:s, s:s, s:o}", "name", name, "defaultMode", "Push", "tables", tabs))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	char what[300];
	if (xsnprintf(what, sizeof what, "create push dataset '%.200s'", name))
		what[sizeof what - 1] = '\0';
	struct push_target made = { group, name, out };
	msapi_call call = { .svc = MSAPI_POWERBI, .method = "POST", .url = url, .json = body, .idempotent = false,
			    .what = what };
	rc = msapi_post_at_most_once(c, &call, &r, find_dataset, &made, "checking whether it was created", &found, err);
	if (!rc && !found)
		rc = msapi_item_from_json(r.json, out, err);
out:
	free(path);
	free(url);
	json_decref(body);
	msapi_reply_release(&r);
	return rc;
}

/* POST .../rows with either a tree (json) or a prepared text (text, len). */
int powerbi_push_rows_text(msapi *c, const char *group, const char *dataset, const char *table,
			   const char *body, size_t len, char *err)
{
	static const char head[] = "{\"rows\":[";
	char *path = NULL;
	msapi_reply r = { 0 };
	/* a cheap shape check: the rows themselves were built by the caller */
	if (!body || len < sizeof head + 1 || memcmp(body, head, sizeof head - 1) || body[len - 2] != ']' ||
	    body[len - 1] != '}')
		return pb_err(err, PB_EINVAL, "the rows body must be {\"rows\":[...]}");
	int rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s/datasets/%s/tables/%s/rows", group, dataset, table);
	if (rc)
		goto out;
	/* appending rows twice duplicates them: never repeated blindly */
	msapi_call call = { .svc = MSAPI_POWERBI, .method = "POST", .url = path, .json_text = body,
			    .json_text_len = len, .idempotent = false, .what = "add rows to a push dataset" };
	rc = msapi_do(c, &call, &r, err);
	if (rc && (c->last.status == 500 || c->last.status == 502 || c->last.status == 504)) {
		/* a gateway's answer: the service behind it may have added the rows */
		c->last.outcome_unknown = true;
		c->last.failure = MSAPI_OUTCOME_UNKNOWN;
	}
out:
	free(path);
	msapi_reply_release(&r);
	return rc;
}

int powerbi_dataset_delete(msapi *c, const char *group, const char *dataset, char *err)
{
	char *path = NULL;
	msapi_reply r = { 0 };
	int rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s/datasets/%s", group, dataset);
	if (!rc) {
		msapi_call call = { .svc = MSAPI_POWERBI, .method = "DELETE", .url = path, .idempotent = true,
				    .what = "delete a dataset" };
		rc = msapi_do(c, &call, &r, err);
		if (rc && c->last.status == 404)
			rc = PB_OK; /* gone already: what was asked for */
	}
	free(path);
	msapi_reply_release(&r);
	return rc;
}

int powerbi_push_delete_rows(msapi *c, const char *group, const char *dataset, const char *table, char *err)
{
	char *path = NULL;
	msapi_reply r = { 0 };
	int rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s/datasets/%s/tables/%s/rows", group, dataset, table);
	if (!rc) {
		msapi_call call = { .svc = MSAPI_POWERBI, .method = "DELETE", .url = path, .idempotent = true,
				    .what = "delete the rows of a push dataset table" };
		rc = msapi_do(c, &call, &r, err);
	}
	free(path);
	msapi_reply_release(&r);
	return rc;
}

/* A DAX table reference: 'name' with every quote doubled. */
static int dax_table_ref(sbuf *out, const char *table)
{
	if (sbuf_addc(out, '\''))
		return -1;
	for (const char *q; (q = strchr(table, '\'')); table = q + 1)
		if (sbuf_add(out, table, (size_t)(q - table) + 1) || sbuf_addc(out, '\''))
			return -1;
	return sbuf_adds(out, table) || sbuf_addc(out, '\'') ? -1 : 0;
}

/* The first error a 200 answer of executeQueries carries (a result or a table may hold one). */
static const char *query_error(const json_t *result)
{
	const json_t *e = json_object_get(result, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	return msg ? msg : json_string_value(json_object_get(e, "code"));
}

int powerbi_table_row_count(msapi *c, const char *group, const char *dataset, const char *table, long long *rows,
			    char *err)
{
	char *path = NULL;
	json_t *body = NULL;
	msapi_reply r = { 0 };
	sbuf dax;
	int rc;
	*rows = 0;
	sbuf_init(&dax, 1024);
	if (sbuf_adds(&dax, "EVALUATE ROW(\"n\", COUNTROWS(") || dax_table_ref(&dax, table) || sbuf_adds(&dax, "))")) {
		rc = pb_err(err, PB_EINVAL, "the table name is too long for a query");
		goto out;
	}
	/* includeNulls: a BLANK count (an empty table) comes back as null rather than no key */
	if (!(body = json_pack("{s:[{s:s}], s:{s:b}}", "queries", "query", sbuf_str(&dax), "serializerSettings",
			       "includeNulls", 1))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s/datasets/%s/executeQueries", group, dataset)))
		goto out;
	msapi_call call = { .svc = MSAPI_POWERBI, .method = "POST", .url = path, .json = body, .idempotent = true,
			    .what = "count the rows of a push dataset table" };
	if ((rc = msapi_do(c, &call, &r, err)))
		goto out;
	const json_t *res = json_array_get(json_object_get(r.json, "results"), 0);
	const json_t *tab = json_array_get(json_object_get(res, "tables"), 0);
	const char *qerr = query_error(r.json);
	if (!qerr && res)
		qerr = query_error(res);
	if (!qerr && tab)
		qerr = query_error(tab);
	if (qerr) {
		rc = pb_err(err, PB_EIO, "Power BI could not count the rows of table '%.100s': %.300s", table, qerr);
		goto out;
	}
	const json_t *row = json_array_get(json_object_get(tab, "rows"), 0);
	const json_t *n = json_object_get(row, "[n]");
	if (!json_is_object(row) || (n && !json_is_null(n) && !json_is_number(n))) {
		rc = pb_err(err, PB_EIO, "Power BI answered the row count of table '%.100s' in an unexpected shape", table);
		goto out;
	}
	double v = n ? json_number_value(n) : 0;
	if (v < 0 || v > 9e18 || v != (double)(long long)v) {
		rc = pb_err(err, PB_EIO, "Power BI counted %g rows in table '%.100s'", v, table);
		goto out;
	}
	*rows = (long long)v;
out:
	sbuf_release(&dax);
	free(path);
	json_decref(body);
	msapi_reply_release(&r);
	return rc;
}
