#include "core/flow/ingest.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/asset_products.h"
#include "core/flow/ms_failure.h"
#include "core/store/assets.h"
#include "core/store/catalog.h"
#include "core/lang/contract.h"
#include "core/lang/cron.h"
#include "core/lang/render.h"
#include "core/store/integrations.h"
#include "core/lang/mlineage.h"
#include "core/flow/pbi_session.h"
#include "core/flow/webhooks.h"
#include "core/store/tenant_backoff.h"
#include "msapi/powerbi.h"
#include "msapi/scanner.h"
#include "runtime/crypto.h"
#include "runtime/json_body.h"
#include "runtime/log.h"
#include "runtime/lua_json.h"
#include "runtime/lua_sandbox.h"
#include "runtime/strbuf.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#define THIRTY_MIN_MS (30LL * 60 * 1000)
#define THIRTY_DAYS_MS (30LL * 86400 * 1000)
#define SCAN_FAILURES_MAX 3        /* a batch whose scan fails this often fails the run */
#define DOCTOR_SCAN_MAX_MS 60000   /* the doctor's one scan */
#define MAX_WARNINGS 50
#define BACKOFF_CHECK_MS 2000      /* how often a scan in progress looks for the tenant's back-off */

/* ================= filter rules (Lua) ================= */

typedef struct ingest_filter {
	lua_sandbox *sb;
	bool pass_all;        /* default rule and no patterns: nothing to ask Lua */
	int rules_ref;
	char module[136];
} ingest_filter;

struct filter_item {
	const char *kind, *name, *workspace, *id;
	const json_t *rules;
	int ref;
};

static int lua_make_rules(lua_State *L)
{
	struct filter_item *it = lua_touserdata(L, 1);
	lua_push_json(L, it->rules, 8);
	it->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

static int lua_push_item(lua_State *L)
{
	struct filter_item *it = lua_touserdata(L, 1);
	lua_settop(L, 0);
	lua_createtable(L, 0, 4);
	lua_pushstring(L, it->kind);
	lua_setfield(L, -2, "kind");
	lua_pushstring(L, it->name ? it->name : "");
	lua_setfield(L, -2, "name");
	lua_pushstring(L, it->id ? it->id : "");
	lua_setfield(L, -2, "id");
	if (it->workspace) {
		lua_pushstring(L, it->workspace);
		lua_setfield(L, -2, "workspace");
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, it->ref);
	return 2;
}

static bool rules_empty(const json_t *rules)
{
	const char *k;
	json_t *grp;
	json_object_foreach((json_t *)rules, k, grp) {
		if (json_array_size(json_object_get(grp, "include")) || json_array_size(json_object_get(grp, "exclude")))
			return false;
	}
	return true;
}

static void filter_close(ingest_filter *f)
{
	sandbox_free(f->sb);
	memset(f, 0, sizeof *f);
}

/* Rules are looked up on the template search path (core/lang/render.h), built-in folder
 * templates/: module filters.default is templates/filters/default.lua. total_ms: CPU time for
 * all their calls together. */
static int filter_open_budget(ingest_filter *f, const pb_config *cfg, const char *rule, const char *filters_json,
			      int total_ms, char *err)
{
	template_dirs td = { .n = 0 };
	json_t *rules = NULL;
	int rc = 0;
	memset(f, 0, sizeof *f);
	xsnprintf(f->module, sizeof f->module, "%s", rule && *rule ? rule : "filters.default");
	if (!(rules = json_loads(filters_json ? filters_json : "{}", 0, NULL)))
		return pb_err(err, PB_EINVAL, "stored filters are not JSON");
	if (!strcmp(f->module, "filters.default") && rules_empty(rules)) {
		f->pass_all = true;
		goto out;
	}
	if ((rc = template_dirs_build(cfg, NULL, "templates", &td, err)))
		goto out;
	sandbox_opts so = { .dirs = td.dirs, .ndirs = td.n, .time_limit_ms = PB_FILTER_RULE_TIME_MS,
			    .total_time_limit_ms = total_ms };
	struct filter_item it = { .rules = rules };
	if ((rc = sandbox_new(&so, &f->sb, err)) || (rc = sandbox_cpcall(f->sb, lua_make_rules, &it, 0, err)))
		goto out;
	f->rules_ref = it.ref;
out:
	json_decref(rules);
	template_dirs_release(&td);
	if (rc)
		filter_close(f);
	return rc;
}

static int filter_open(ingest_filter *f, const pb_config *cfg, const char *rule, const char *filters_json, char *err)
{
	return filter_open_budget(f, cfg, rule, filters_json, PB_FILTER_RUN_TIME_MS, err);
}

static int filter_allows(ingest_filter *f, const char *kind, const char *name, const char *workspace, const char *id,
			 bool *ok, char *err)
{
	struct filter_item it = { .kind = kind, .name = name, .workspace = workspace, .id = id, .ref = f->rules_ref };
	int rc;
	*ok = true;
	if (f->pass_all)
		return 0;
	char sub[PB_ERR_MAX];
	if ((rc = sandbox_cpcall(f->sb, lua_push_item, &it, 2, sub)) || (rc = sandbox_call(f->sb, f->module, 2, sub)))
		return pb_err(err, PB_EINVAL, "filter rule %s: %s", f->module, sub);
	lua_State *L = sandbox_lua(f->sb);
	*ok = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return 0;
}

int ingest_filter_check(const pb_config *cfg, const char *rule, const char *filters_json, char *err)
{
	ingest_filter f;
	bool ok;
	int rc = filter_open(&f, cfg, rule, filters_json, err);
	if (!rc)
		rc = filter_allows(&f, "workspace", "Sample", NULL, "00000000-0000-0000-0000-000000000000", &ok, err);
	if (!rc)
		rc = filter_allows(&f, "report", "Sample", "Sample", "00000000-0000-0000-0000-000000000000", &ok, err);
	filter_close(&f);
	return rc;
}

/* ================= one run ================= */

typedef struct ingest_run {
	pb_job_ctx *ctx;
	pb_db *db;
	pb_integration *integ;
	pb_run *run;
	msapi *api;
	ingest_filter filter;
	json_t *warnings;           /* array of strings */
	char mode[16];              /* full, incremental, listing */
	scanner_opts sopts;
	long poll_ms, poll_max_ms, budget_per_hour;
	size_t batches_total, batches_done, max_in_flight, workspaces_planned;
	long scans_started;         /* over every attempt of the run (integration_scans.scans) */
	size_t models_seen, models_with_tables, models_with_sources;
	int64_t ms_fetch, ms_stage, ms_poll_wait, ms_apply;   /* where a run's time went */
	int64_t ms_scan;            /* scanning, from the first getInfo to the last result staged */
	int64_t progress_ms;        /* when the scanning progress was last written */
	struct port_match *ports;   /* the org's output ports that name a server */
	size_t nports;
	struct published *published;   /* models pbiport published: Power BI id -> consumer product */
	size_t npublished;
	const char *doing;              /* what the run asks Power BI now, for the tenant's back-off */
	bool throttle_noted;            /* a 429 of this attempt is in the tenant's back-off */
	int64_t backoff_checked_ms;     /* when the run last looked at the tenant's back-off */
	bool held;                      /* ... and found it: the tenant must wait (held_by) */
	tenant_backoff held_by;
	pb_failure fail;                /* why the attempt stops: its message is the run's err buffer */
	long retry_ms;                  /* > 0: the job goes back to the queue for this long ... */
	bool wait;                      /* ... without using an attempt (not a failure) */
} ingest_run;

struct published {
	char *model_id;
	char product_id[PB_ID_BUF];
};

/* An output port reduced to what a Power BI data source is matched on. */
struct port_match {
	char id[PB_ID_BUF];
	char *type, *host, *second;   /* second: warehouse (Snowflake) or HTTP path (Databricks) */
};

/* A Microsoft call of the run failed with rc: the kind of failure msapi saw (ms_failure.h) is
 * kept for the end of the attempt, unless an earlier one was. Returns rc. */
static int ms_failed(ingest_run *r, int rc)
{
	if (rc && r->api && r->api->last.failure != MSAPI_OK && !r->fail.rc)
		ms_fail(r->api, rc, &r->fail);
	return rc;
}

static void add_warning(ingest_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_warning(ingest_run *r, const char *fmt, ...)
{
	char line[PB_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(line, sizeof line, fmt, ap);
	va_end(ap);
	size_t i;
	json_t *w;
	json_array_foreach(r->warnings, i, w) {
		if (!strcmp(json_string_value(w), line))
			return;
	}
	if (json_array_size(r->warnings) < MAX_WARNINGS)
		json_array_append_new(r->warnings, json_string(line));
}

static int save_warnings(ingest_run *r, char *err)
{
	char *text = json_dumps(r->warnings, JSON_COMPACT);
	int rc = text ? integration_run_warnings(r->db, r->run->id, text, err) : pb_err(err, PB_ENOMEM, "out of memory");
	free(text);
	return rc;
}

/* ---- the tenant's getInfo budget (table scan_budget) ---- */

/* budget_take's transaction: the tenant, its budget and the hours it counts in; granted is the
 * answer. */
struct budget {
	const char *tenant, *hour, *old;
	long per_hour;
	bool granted;
};

/* Takes one call of the hour's budget: one atomic upsert that adds the call only while the count
 * is under the budget, so processes on several hosts never overspend it between them. */
static int budget_work(pb_db *db, void *ctx, char *err)
{
	struct budget *b = ctx;
	db_stmt *st = NULL;
	int rc;
	b->granted = false;
	if ((rc = db_exec_texts(db, "DELETE FROM scan_budget WHERE hour < ?", &b->old, 1, err)) ||
	    (rc = db_prepare(db, "INSERT INTO scan_budget (tenant_id, hour, calls) VALUES (?, ?, 1) "
			     "ON CONFLICT (tenant_id, hour) DO UPDATE SET calls = scan_budget.calls + 1 "
			     "WHERE scan_budget.calls < ?", &st, err)) ||
	    (rc = db_bind_text(st, 1, b->tenant, err)) || (rc = db_bind_text(st, 2, b->hour, err)))
		goto out;
	db_bind_int64(st, 3, b->per_hour, NULL);
	if (!(rc = db_exec(db, st, err)))
		b->granted = db_changes(db) == 1;
out:
	db_done(st);
	return rc;
}

static int budget_take(pb_db *db, const char *tenant, long per_hour, bool *granted, long *wait_ms, char *err)
{
	char now[PB_TIME_BUF], hour[16], old[16];
	int64_t ms = pb_epoch_ms();
	pb_now(now);
	xsnprintf(hour, sizeof hour, "%.13s", now);
	pb_time_format(ms - 2 * 3600 * 1000LL, now);
	xsnprintf(old, sizeof old, "%.13s", now);
	*wait_ms = 3600 * 1000L - (long)(ms % (3600 * 1000LL));
	struct budget b = { tenant, hour, old, per_hour, false };
	int rc = db_transaction(db, budget_work, &b, err);
	*granted = !rc && b.granted;
	return rc;
}

/* ---- the run's scan plan (table integration_scans) ---- */

typedef struct scan_row {
	long batch;
	char *ids_json;
	char *scan_id;
	char state[12];
	int failures;           /* scans of this batch Power BI failed or lost in this run */
} scan_row;

static void scan_rows_free(scan_row *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].ids_json);
		free(v[i].scan_id);
	}
	free(v);
}

static int scans_load(pb_db *db, const char *run_id, scan_row **out, size_t *n, size_t *total, char *err)
{
	db_stmt *st = NULL;
	scan_row *v = NULL;
	size_t len = 0, cap = 0;
	int r, rc = db_prepare(db, "SELECT batch, workspace_ids, scan_id, state FROM integration_scans "
			       "WHERE run_id = ? ORDER BY batch", &st, err);
	*out = NULL;
	*n = *total = 0;
	if (rc || (rc = db_bind_text(st, 1, run_id, err)))
		goto out;
	while ((r = db_row(db, st, err)) == 1) {
		(*total)++;
		if (!strcmp(db_col_text(st, 3), "done"))
			continue;
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 64;
			scan_row *x = realloc(v, nc * sizeof *x);
			if (!x) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				goto out;
			}
			v = x;
			cap = nc;
		}
		bool ok = true;
		memset(&v[len], 0, sizeof v[len]);
		v[len].batch = (long)db_col_int64(st, 0);
		v[len].ids_json = db_col_dup(st, 1, &ok);
		v[len].scan_id = db_col_dup(st, 2, &ok);
		xsnprintf(v[len].state, sizeof v[len].state, "%s", db_col_text(st, 3));
		len++;
		if (!ok) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = r < 0 ? r : 0;
out:
	db_done(st);
	if (rc) {
		scan_rows_free(v, len);
		return rc;
	}
	*out = v;
	*n = len;
	return 0;
}

static int scan_set(pb_db *db, const char *run_id, long batch, const char *scan_id, const char *state, char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF];
	pb_now(now);
	/* scans: getInfo calls that started a scan of the batch, over every attempt of the run */
	int rc = db_prepare(db, "UPDATE integration_scans SET scan_id = ?1, state = ?2, started_at = ?3, "
			    "scans = scans + CASE WHEN CAST(?1 AS TEXT) IS NULL THEN 0 ELSE 1 END WHERE run_id = ?4 AND batch = ?5",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, scan_id, err)) && !(rc = db_bind_text(st, 2, state, err)) &&
	    !(rc = db_bind_text(st, 3, scan_id ? now : NULL, err)) && !(rc = db_bind_text(st, 4, run_id, err))) {
		db_bind_int64(st, 5, batch, NULL);
		rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

static int scans_insert(pb_db *db, const char *run_id, long batch, const char *ids_json, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db, "INSERT INTO integration_scans (run_id, batch, workspace_ids, state) "
			    "VALUES (?, ?, ?, 'pending')", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, run_id, err)) && !(rc = db_bind_text(st, 3, ids_json, err))) {
		db_bind_int64(st, 2, batch, NULL);
		rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

/* Workspace scans the run started, over all its attempts (a resumed run counts the scans of
 * the worker before it). */
static int scans_started(pb_db *db, const char *run_id, long *n, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db, "SELECT COALESCE(SUM(scans), 0) FROM integration_scans WHERE run_id = ?", &st, err);
	*n = 0;
	if (!rc && !(rc = db_bind_text(st, 1, run_id, err))) {
		int r = db_row(db, st, err);
		if (r < 0)
			rc = r;
		else if (r == 1)
			*n = (long)db_col_int64(st, 0);
	}
	db_done(st);
	return rc;
}

static int scans_delete(pb_db *db, const char *run_id, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db, "DELETE FROM integration_scans WHERE run_id = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, run_id, err)))
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

/* ---- staging what a scan or a listing found ---- */

static int stage_json(ingest_run *r, const char *kind, const char *id, const char *ws, const char *name, json_t *details,
		      char *err)
{
	char *text = details ? json_dumps(details, JSON_COMPACT) : NULL;
	json_decref(details);
	if (!text)
		return pb_err(err, PB_ENOMEM, "out of memory");
	int rc = assets_stage(r->db, r->integ->org_id, r->run->id, kind, id, ws, name, text, err);
	free(text);
	return rc;
}

static bool personal_type(const char *type)
{
	return type && (!strcmp(type, "PersonalGroup") || !strcmp(type, "Personal"));
}

static json_t *strv_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (v[i] && json_array_append_new(a, json_string(v[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* Upstream tables read by the model's partitions, from its M (core/lang/mlineage.h). */
static json_t *model_upstream(const scan_dataset *ds)
{
	mlineage_param params[256];
	size_t np = 0;
	json_t *out = json_array();
	for (size_t i = 0; i < ds->nexpressions && np < sizeof params / sizeof params[0]; i++)
		if (ds->expressions[i].expression) {
			params[np].name = ds->expressions[i].name;
			params[np++].value = ds->expressions[i].expression;
		}
	for (size_t t = 0; out && t < ds->ntables; t++) {
		for (size_t s = 0; s < ds->tables[t].nsources; s++) {
			mlineage_sources src = { 0 };
			char err[PB_ERR_MAX];
			if (!ds->tables[t].sources[s] || mlineage_parse(ds->tables[t].sources[s], params, np, &src, err))
				continue;
			for (size_t k = 0; k < src.n; k++) {
				json_t *j = mlineage_source_json(&src.v[k]);
				if (j) {
					json_object_set_new(j, "model_table", json_string(ds->tables[t].name ? ds->tables[t].name : ""));
					json_array_append_new(out, j);
				}
			}
			mlineage_sources_release(&src);
		}
	}
	return out;
}

static json_t *model_details(ingest_run *r, const scan_workspace *w, const scan_dataset *ds)
{
	json_t *tables = json_array();
	bool any_source = false;
	for (size_t t = 0; tables && t < ds->ntables; t++) {
		const scan_table *tb = &ds->tables[t];
		json_t *cols = json_array(), *meas = json_array(), *srcs = strv_json(tb->sources, tb->nsources);
		for (size_t c = 0; cols && c < tb->ncolumns; c++)
			json_array_append_new(cols, json_pack("{s:s, s:s?, s:b, s:s?, s:s?}", "name",
							      tb->columns[c].name ? tb->columns[c].name : "", "data_type",
							      tb->columns[c].data_type, "hidden", tb->columns[c].hidden,
							      "column_type", tb->columns[c].column_type, "expression",
							      tb->columns[c].expression));
		for (size_t m = 0; meas && m < tb->nmeasures; m++)
			json_array_append_new(meas, json_pack("{s:s, s:s?, s:b}", "name",
							      tb->measures[m].name ? tb->measures[m].name : "", "expression",
							      tb->measures[m].expression, "hidden", tb->measures[m].hidden));
		any_source |= tb->nsources > 0;
		json_array_append_new(tables, cols && meas && srcs
				      ? json_pack("{s:s, s:b, s:o, s:o, s:o}", "name", tb->name ? tb->name : "", "hidden",
						  tb->hidden, "columns", cols, "measures", meas, "sources", srcs)
				      : NULL);
	}
	r->models_seen++;
	r->models_with_tables += ds->ntables > 0;
	r->models_with_sources += any_source || ds->nexpressions > 0;
	json_t *ex = json_array();
	for (size_t i = 0; ex && i < ds->nexpressions; i++)
		json_array_append_new(ex, json_pack("{s:s, s:s?}", "name", ds->expressions[i].name, "expression",
						    ds->expressions[i].expression));
	return json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:o*, s:o*, s:o*, s:o*, s:o*}", "workspace_id", w->id,
			 "workspace_name", w->name, "configured_by", ds->configured_by, "storage_mode", ds->storage_mode,
			 "schema_error", ds->schema_error, "tables", tables, "expressions", ex, "datasource_ids",
			 strv_json(ds->datasource_ids, ds->ndatasource_ids), "upstream_dataset_ids",
			 strv_json(ds->upstream_dataset_ids, ds->nupstream_dataset_ids), "upstream_tables",
			 model_upstream(ds));
}

static const char *datasource_name(const char *type, const char *server, const char *database, const char *path,
				   const char *url, char *buf, size_t size)
{
	const char *where = server ? server : path ? path : url ? url : "";
	if (database && server)
		xsnprintf(buf, size, "%s %s/%s", type ? type : "datasource", server, database);
	else
		xsnprintf(buf, size, "%s %s", type ? type : "datasource", where);
	return buf;
}


/* ---- lineage (edges staged with the assets; core/store/assets.h) ---- */

static void ports_free(ingest_run *r)
{
	for (size_t i = 0; i < r->nports; i++) {
		free(r->ports[i].type);
		free(r->ports[i].host);
		free(r->ports[i].second);
	}
	free(r->ports);
	r->ports = NULL;
	r->nports = 0;
	for (size_t i = 0; i < r->npublished; i++)
		free(r->published[i].model_id);
	free(r->published);
	r->published = NULL;
	r->npublished = 0;
}

static const char *first_field(const json_t *o, const char *const *keys)
{
	for (size_t i = 0; keys[i]; i++) {
		const char *v = json_string_value(json_object_get(o, keys[i]));
		if (v && *v)
			return v;
	}
	return NULL;
}

static int ports_load(ingest_run *r, char *err)
{
	/* BigQuery servers have no host: their project names them, as it names M's sources */
	static const char *const host_keys[] = { "host", "account", "project", "server", NULL };
	static const char *const second_keys[] = { "warehouse", "httpPath", "http_path", NULL };
	cat_product *v = NULL;
	size_t n = 0, total = 0;
	int rc = catalog_product_list(r->db, r->integ->org_id, &v, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		total += v[i].nports;
	if ((total && !(r->ports = calloc(total, sizeof *r->ports))) || (n && !(r->published = calloc(n, sizeof *r->published))))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	/* consumer products of models pbiport published (core/store/published_models.h contract ids) */
	static const char pub_prefix[] = "powerbi:semanticModel:";
	for (size_t i = 0; !rc && i < n; i++)
		if (v[i].contract_id && !strncmp(v[i].contract_id, pub_prefix, sizeof pub_prefix - 1)) {
			struct published *pm = &r->published[r->npublished++];
			pm->model_id = xstrdup(v[i].contract_id + sizeof pub_prefix - 1);
			xsnprintf(pm->product_id, sizeof pm->product_id, "%s", v[i].id);
		}
	for (size_t i = 0; !rc && i < n; i++)
		for (size_t k = 0; k < v[i].nports; k++) {
			const cat_port *p = &v[i].ports[k];
			json_t *sj = json_loads(p->server_json ? p->server_json : "{}", 0, NULL);
			json_t *custom = json_object_get(sj, "customProperties");
			const char *host = first_field(sj, host_keys), *second = first_field(sj, second_keys);
			if (!second && json_is_object(custom))
				second = first_field(custom, second_keys);
			if (host && p->type) {
				struct port_match *m = &r->ports[r->nports++];
				xsnprintf(m->id, sizeof m->id, "%s", p->id);
				m->type = xstrdup(p->type);
				m->host = xstrdup(host);
				m->second = second ? xstrdup(second) : NULL;
			}
			json_decref(sj);
		}
	catalog_products_free(v, n);
	return rc;
}

/* Stages output port -> to_id for every port whose server matches (type, host[, second]). */
static int port_edges(ingest_run *r, const char *type, const char *host, const char *second, const char *to_kind,
		      const char *to_id, char *err)
{
	int rc = 0;
	if (!type || !host)
		return 0;
	for (size_t i = 0; i < r->nports && !rc; i++) {
		const struct port_match *m = &r->ports[i];
		if (!mlineage_same_type(type, m->type) || !mlineage_same_server(m->type, m->host, host))
			continue;
		if (second && m->second && !str_ieq(second, m->second))
			continue;
		rc = assets_stage_edge(r->db, r->run->id, "output_port", m->id, to_kind, to_id, err);
	}
	return rc;
}

/* A data source given as server + database or as one "host;second" path. */
static int datasource_port_edges(ingest_run *r, const char *type, const char *kind, const char *server,
				 const char *path, const char *asset_id, char *err)
{
	char host[512] = "", second[512] = "";
	const char *semi = path ? strchr(path, ';') : NULL;
	if (server)
		xsnprintf(host, sizeof host, "%s", server);
	else if (path)
		xsnprintf(host, sizeof host, "%.*s", (int)(semi ? (size_t)(semi - path) : strlen(path)), path);
	if (semi)
		xsnprintf(second, sizeof second, "%s", semi + 1);
	return port_edges(r, kind && *kind ? kind : type, host[0] ? host : NULL, second[0] ? second : NULL, "datasource",
			  asset_id, err);
}

static int edge(ingest_run *r, const char *from_kind, const char *from_pbi, const char *to_kind, const char *to_pbi,
		char *err)
{
	char a[PB_ID_BUF], b[PB_ID_BUF];
	if (!from_pbi || !to_pbi)
		return 0;
	assets_id_for(r->integ->org_id, from_kind, from_pbi, a);
	assets_id_for(r->integ->org_id, to_kind, to_pbi, b);
	return assets_stage_edge(r->db, r->run->id, from_kind, a, to_kind, b, err);
}

/* A model pbiport published itself: its publish record (the consumer data product, which
 * publish linked to the source output port) -> the model, so lineage is the contract's. */
static int published_edge(ingest_run *r, const char *model_pbi_id, char *err)
{
	char mid[PB_ID_BUF];
	for (size_t i = 0; model_pbi_id && i < r->npublished; i++)
		if (r->published[i].model_id && str_ieq(r->published[i].model_id, model_pbi_id)) {
			assets_id_for(r->integ->org_id, "semantic_model", model_pbi_id, mid);
			return assets_stage_edge(r->db, r->run->id, "data_product", r->published[i].product_id,
						 "semantic_model", mid, err);
		}
	return 0;
}

/* Edges into a model: its publish record, data sources, upstream models, and (when Power BI
 * named no data source) the output ports its M reads from. */
static int model_edges(ingest_run *r, const scan_dataset *ds, const json_t *details, char *err)
{
	char mid[PB_ID_BUF];
	int rc = published_edge(r, ds->id, err);
	for (size_t k = 0; !rc && k < ds->ndatasource_ids; k++)
		rc = edge(r, "datasource", ds->datasource_ids[k], "semantic_model", ds->id, err);
	for (size_t k = 0; !rc && k < ds->nupstream_dataset_ids; k++)
		rc = edge(r, "semantic_model", ds->upstream_dataset_ids[k], "semantic_model", ds->id, err);
	if (rc)
		return rc;
	assets_id_for(r->integ->org_id, "semantic_model", ds->id, mid);
	size_t i;
	json_t *src;
	json_array_foreach(json_object_get(details, "upstream_tables"), i, src) {
		const char *type = json_string_value(json_object_get(src, "type"));
		const char *host = json_string_value(json_object_get(src, "host"));
		const char *second = json_string_value(json_object_get(src, "warehouse"));
		/* Power BI's data sources link the ports when it names some; a BigQuery one names no
		 * server (its path is the connector's name), so BigQuery tables link through the M */
		bool hostless = mlineage_same_type(type, "bigquery");
		if (ds->ndatasource_ids && !hostless)
			continue;
		if (!second)
			second = json_string_value(json_object_get(src, "http_path"));
		if (!host && hostless)   /* no host: the project names it */
			host = json_string_value(json_object_get(src, "database"));
		if ((rc = port_edges(r, type, host, second, "semantic_model", mid, err)))
			break;
	}
	return rc;
}

/* qsort / bsearch order of const char * elements, ASCII case-insensitive (Power BI ids) */
static int str_icmp_p(const void *a, const void *b)
{
	return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* Everything one scanned batch brought, filtered, staged, and the batch marked done: one
 * transaction, so a worker dying here leaves the batch to be fetched again. */
static int stage_scan(ingest_run *r, long batch, const char *ids_json, const scan_result *res, char *err)
{
	const char **used = NULL;
	size_t nused = 0, capused = 0;
	bool ok;
	char buf[512];
	int rc = db_begin(r->db, err);
	if (rc)
		return rc;
	if (strcmp(r->mode, "full")) {
		/* incremental: removal stays within the workspaces this run scanned */
		json_t *ids = json_loads(ids_json, 0, NULL);
		size_t i;
		json_t *id;
		json_array_foreach(ids, i, id) {
			if ((rc = assets_stage(r->db, r->integ->org_id, r->run->id, "_scope", json_string_value(id), NULL, "",
						  "{}", err)))
				break;
		}
		json_decref(ids);
		if (rc)
			goto out;
	}
	for (size_t wi = 0; wi < res->nworkspaces; wi++) {
		const scan_workspace *w = &res->workspaces[wi];
		if (!w->id || (personal_type(w->type) && !r->integ->include_personal))
			continue;
		if ((rc = filter_allows(&r->filter, "workspace", w->name, NULL, w->id, &ok, err)))
			goto out;
		if (!ok)
			continue;
		if ((rc = stage_json(r, "workspace", w->id, w->id, w->name ? w->name : w->id,
				     json_pack("{s:s?, s:s?}", "type", w->type, "state", w->state), err)))
			goto out;
		for (size_t d = 0; d < w->ndatasets; d++) {
			const scan_dataset *ds = &w->datasets[d];
			if (!ds->id)
				continue;
			if ((rc = filter_allows(&r->filter, "semantic_model", ds->name, w->name, ds->id, &ok, err)))
				goto out;
			if (!ok)
				continue;
			json_t *md = model_details(r, w, ds);
			if (md && (rc = model_edges(r, ds, md, err))) {
				json_decref(md);
				goto out;
			}
			if ((rc = stage_json(r, "semantic_model", ds->id, w->id, ds->name ? ds->name : ds->id, md, err)))
				goto out;
			for (size_t k = 0; k < ds->ndatasource_ids; k++) {
				if (nused == capused) {
					size_t nc = capused ? capused * 2 : 64;
					const char **x = realloc(used, nc * sizeof *x);
					if (!x) {
						rc = pb_err(err, PB_ENOMEM, "out of memory");
						goto out;
					}
					used = x;
					capused = nc;
				}
				used[nused++] = ds->datasource_ids[k];
			}
		}
		for (size_t k = 0; k < w->nreports; k++) {
			const scan_report *rp = &w->reports[k];
			if (!rp->id || rp->app_id)   /* app copies repeat the workspace's reports */
				continue;
			if ((rc = filter_allows(&r->filter, "report", rp->name, w->name, rp->id, &ok, err)))
				goto out;
			if (ok && ((rc = stage_json(r, "report", rp->id, w->id, rp->name ? rp->name : rp->id,
						    json_pack("{s:s, s:s?, s:s?}", "workspace_id", w->id, "dataset_id",
							      rp->dataset_id, "report_type", rp->report_type), err)) ||
				   (rc = edge(r, "semantic_model", rp->dataset_id, "report", rp->id, err))))
				goto out;
		}
		for (size_t k = 0; k < w->ndashboards; k++) {
			const scan_dashboard *db = &w->dashboards[k];
			json_t *tiles = json_array();
			if (!db->id || db->app_id) {
				json_decref(tiles);
				continue;
			}
			for (size_t t = 0; tiles && t < db->ntiles; t++) {
				const scan_tile *tl = &db->tiles[t];
				json_array_append_new(tiles, json_pack("{s:s?, s:s?, s:s?, s:s?}", "id", tl->id, "title",
								       tl->title, "report_id", tl->report_id, "dataset_id",
								       tl->dataset_id));
				if ((rc = tl->report_id ? edge(r, "report", tl->report_id, "dashboard", db->id, err)
							: edge(r, "semantic_model", tl->dataset_id, "dashboard", db->id, err))) {
					json_decref(tiles);
					goto out;
				}
			}
			if ((rc = stage_json(r, "dashboard", db->id, w->id, db->name ? db->name : db->id,
					     json_pack("{s:s, s:o*}", "workspace_id", w->id, "tiles", tiles), err)))
				goto out;
		}
	}
	/* sorted once, searched per data source: a batch can hold thousands of each */
	if (nused)
		qsort(used, nused, sizeof *used, str_icmp_p);
	for (size_t i = 0; i < res->ndatasources; i++) {
		const scan_datasource *s = &res->datasources[i];
		if (!s->id || !nused || !bsearch(&s->id, used, nused, sizeof *used, str_icmp_p))
			continue;
		char dsid[PB_ID_BUF];
		const char *kind = s->kind ? s->kind : s->extension_kind, *path = s->path ? s->path : s->extension_path;
		assets_id_for(r->integ->org_id, "datasource", s->id, dsid);
		if ((rc = datasource_port_edges(r, s->type, kind, s->server, path, dsid, err)))
			goto out;
		if ((rc = stage_json(r, "datasource", s->id, NULL,
				     datasource_name(kind ? kind : s->type, s->server, s->database, path, s->url, buf,
						     sizeof buf),
				     json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "type", s->type, "server",
					       s->server, "database", s->database, "path", path, "url", s->url, "kind", kind,
					       "gateway_id", s->gateway_id), err)))
			goto out;
	}
	if ((rc = scan_set(r->db, r->run->id, batch, NULL, "done", err)))
		goto out;
out:
	free(used);
	return db_end(r->db, rc, err);
}

/* ---- planning ---- */

/* Power BI refused the identity (a role, a permission or a tenant setting it lacks): for the
 * admin (scanner) APIs, the listing APIs may still answer. */
static bool identity_refused(const msapi *api)
{
	return api->last.failure == MSAPI_FORBIDDEN;
}

struct named_ws {
	const char *id, *name;
};

static int named_cmp(const void *a, const void *b)
{
	return strcmp(((const struct named_ws *)a)->id, ((const struct named_ws *)b)->id);
}

/* Picks full or incremental, lists the workspaces to scan, drops those whose known name the
 * filter refuses, and writes the batches. *refused: admin APIs said no (use the listing). */
static int plan_run(ingest_run *r, bool *refused, char *err)
{
	int64_t now = pb_epoch_ms(), last = 0, upd = 0;
	char since[PB_TIME_BUF] = "";
	char **ids = NULL, **kids = NULL, **knames = NULL;
	size_t n = 0, kn = 0, keep = 0;
	struct named_ws *known = NULL;
	json_t *batch = NULL;
	int rc;
	*refused = false;
	if (r->integ->last_success_at && !pb_time_parse(r->integ->last_success_at, &last) &&
	    !pb_time_parse(r->integ->updated_at, &upd) && upd <= last && now - last < THIRTY_DAYS_MS - 3600 * 1000LL) {
		/* Power BI takes modifiedSince between 30 minutes and 30 days old */
		pb_time_format(last > now - THIRTY_MIN_MS ? now - THIRTY_MIN_MS : last, since);
	}
	xsnprintf(r->mode, sizeof r->mode, "%s", since[0] ? "incremental" : "full");
	rc = scanner_modified(r->api, since[0] ? since : NULL, !r->integ->include_personal, &ids, &n, err);
	if (rc && identity_refused(r->api)) {
		*refused = true;
		return rc;
	}
	if (rc)
		return ms_failed(r, rc);
	if (n > PB_INGEST_WORKSPACES_MAX) {
		rc = pb_err(err, PB_ELIMIT, "the tenant has %zu workspaces to scan; one run scans at most %d", n,
			    PB_INGEST_WORKSPACES_MAX);
		goto out;
	}
	if ((rc = assets_workspace_names(r->db, r->integ->id, &kids, &knames, &kn, err)))
		goto out;
	if (kn && !(known = calloc(kn, sizeof *known))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < kn; i++)
		known[i] = (struct named_ws){ kids[i], knames[i] };
	if (kn)
		qsort(known, kn, sizeof *known, named_cmp);
	/* keep ids in place: ids[0..keep) are the ones to scan */
	for (size_t i = 0; i < n; i++) {
		struct named_ws key = { ids[i], NULL }, *hit = kn ? bsearch(&key, known, kn, sizeof *known, named_cmp) : NULL;
		bool ok = true;
		if (hit && (rc = filter_allows(&r->filter, "workspace", hit->name, NULL, hit->id, &ok, err)))
			goto out;
		if (!ok) {
			free(ids[i]);
			ids[i] = NULL;
			continue;
		}
		char *tmp = ids[keep];
		ids[keep++] = ids[i];
		if (keep - 1 != i)
			ids[i] = tmp;
	}
	r->workspaces_planned = keep;
	if ((rc = assets_unstage(r->db, r->run->id, err)) || (rc = scans_delete(r->db, r->run->id, err)) ||
	    (rc = db_begin(r->db, err)))
		goto out;
	for (size_t b = 0; b * PB_SCAN_BATCH_MAX < keep && !rc; b++) {
		batch = json_array();
		for (size_t i = b * PB_SCAN_BATCH_MAX; batch && i < keep && i < (b + 1) * PB_SCAN_BATCH_MAX; i++)
			json_array_append_new(batch, json_string(ids[i]));
		char *text = batch ? json_dumps(batch, JSON_COMPACT) : NULL;
		json_decref(batch);
		batch = NULL;
		rc = text ? scans_insert(r->db, r->run->id, (long)b, text, err) : pb_err(err, PB_ENOMEM, "out of memory");
		free(text);
	}
	rc = db_end(r->db, rc, err);
out:
	msapi_strv_free(ids, n);
	for (size_t i = 0; i < kn; i++) {
		free(kids[i]);
		free(knames[i]);
	}
	free(kids);
	free(knames);
	free(known);
	return rc;
}

/* ---- scanning ---- */

static bool must_stop(const ingest_run *r)
{
	return r->ctx && ((r->ctx->stop && *r->ctx->stop) || atomic_load(&r->ctx->lease_lost));
}

/* ---- the tenant's back-off (core/store/tenant_backoff.h): the scanner APIs' budget is the
 * tenant's, so a 429 one integration got holds back every integration on the tenant ---- */

/* Looks whether the tenant's scanner callers must wait now: r->held, r->held_by. */
static int backoff_check(ingest_run *r, char *err)
{
	bool waiting = false;
	int rc = tenant_backoff_get(r->db, r->integ->tenant_id, TB_SCANNER, &r->held_by, &waiting, err);
	r->backoff_checked_ms = pb_mono_ms();
	if (!rc)
		r->held = waiting;
	return rc;
}

/* The attempt stops, and the job goes back to the queue for retry_ms (the plan and the scans
 * started are kept); wait: without using an attempt. Returns f's rc. */
static int put_back(ingest_run *r, long retry_ms, bool wait)
{
	r->retry_ms = retry_ms;
	r->wait = wait;
	return r->fail.rc;
}

/* The run waits for the tenant's back-off until it ends. */
static int hold_run(ingest_run *r)
{
	pb_fail(&r->fail, PB_EUNAVAIL, "tenant_backoff", "waiting until %s: Power BI asked every scanner caller on "
		"tenant %s to wait (%s)", r->held_by.until, r->integ->tenant_id, r->held_by.reason);
	return put_back(r, (long)r->held_by.wait_ms, true);
}

/* The worker is asked to stop: the run goes on with the next one, from what it saved. */
static int stop_run(ingest_run *r)
{
	pb_fail(&r->fail, PB_EUNAVAIL, "stopped", "the worker stopped; the run resumes from its saved scans");
	return put_back(r, 1, true);
}

/* Power BI answered a scanner call with 429: every scanner caller on the tenant waits. */
static void note_throttled(ingest_run *r, long retry_after_s)
{
	if (!r->throttle_noted)
		r->throttle_noted = tenant_backoff_record(r->db, r->integ->tenant_id, TB_SCANNER, retry_after_s,
							  "integration '%s' (%s) %s", r->integ->name, r->integ->id,
							  r->doing ? r->doing : "calling the scanner APIs");
}

static int ids_from_json(const char *text, char ***out, size_t *n, char *err)
{
	json_t *a = json_loads(text, 0, NULL);
	size_t i;
	json_t *v;
	*out = calloc(json_array_size(a) + 1, sizeof **out);
	*n = 0;
	if (!a || !*out) {
		json_decref(a);
		free(*out);
		*out = NULL;
		return pb_err(err, PB_ENOMEM, "scan plan unreadable or out of memory");
	}
	json_array_foreach(a, i, v) {
		if (json_is_string(v) && ((*out)[(*n)++] = xstrdup(json_string_value(v))) == NULL) {
			json_decref(a);
			msapi_strv_free(*out, *n);
			*out = NULL;
			return pb_err(err, PB_ENOMEM, "out of memory");
		}
	}
	json_decref(a);
	return 0;
}

struct stager;

/* One round of scanning: rows[k] is the scanner's batch k. */
struct scan_round {
	ingest_run *r;
	scan_row **rows;
	int64_t ms_hooks;      /* time spent in the hooks (handing over, or converting and staging results) */
	struct stager *sg;     /* stages the results on a thread of its own; NULL: in the hooks */
};

/* Around the run's own writes while a stager may be writing too (see the stager below). */
static void round_write_begin(struct scan_round *sr);
static void round_write_end(struct scan_round *sr);

/* getInfo returned a scan id: kept before the scan is polled, so a worker that dies from
 * here on resumes polling it instead of starting it again. */
static int round_started(void *ctx, size_t k, const char *scan_id, char *err)
{
	struct scan_round *sr = ctx;
	scan_row *row = sr->rows[k];
	char *copy = xstrdup(scan_id);
	if (!copy)
		return pb_err(err, PB_ENOMEM, "out of memory");
	round_write_begin(sr);
	int rc = scan_set(sr->r->db, sr->r->run->id, row->batch, scan_id, "scanning", err);
	round_write_end(sr);
	if (rc) {
		free(copy);
		return rc;
	}
	free(row->scan_id);
	row->scan_id = copy;
	xsnprintf(row->state, sizeof row->state, "scanning");
	return PB_OK;
}

/* A batch staged (stage_scan marked it done in the database): its row, and the job's progress. */
static int batch_staged(ingest_run *r, scan_row *row)
{
	xsnprintf(row->state, sizeof row->state, "done");
	r->batches_done++;
	/* a write per batch is a write per result: once a second is enough to show progress (and to
	 * notice a cancel), and the last batch always */
	int64_t now = pb_mono_ms();
	if (!r->ctx || (now - r->progress_ms < 1000 && r->batches_done < r->batches_total))
		return PB_OK;
	r->progress_ms = now;
	return job_phase(r->ctx, "scanning", 10 + (int)(80 * r->batches_done / (r->batches_total ? r->batches_total : 1)));
}

/* A batch whose scan Power BI failed, lost, or answered with something that is not a result:
 * asked for again in the next round, a few times. */
static int scan_again(ingest_run *r, scan_row *row, const char *msg, char *err)
{
	if (++row->failures >= SCAN_FAILURES_MAX) {
		pb_fail_as(&r->fail, PB_EUPSTREAM, "scan_failed");
		return pb_err(err, PB_EUPSTREAM, "Power BI failed to scan batch %ld (%d tries): %s", row->batch,
			      row->failures, msg);
	}
	add_warning(r, "Power BI failed or lost a scan of a batch of workspaces once; it was asked again");
	xsnprintf(row->state, sizeof row->state, "pending");
	return scan_set(r->db, r->run->id, row->batch, NULL, "pending", err);
}

/* A batch's result: converted, filtered and staged, the batch marked done (stage_scan), on the
 * driving thread (when there is no stager). */
static int round_result(void *ctx, size_t k, json_t *raw, char *err)
{
	struct scan_round *sr = ctx;
	ingest_run *r = sr->r;
	scan_row *row = sr->rows[k];
	scan_result res = { 0 };
	int64_t t0 = pb_mono_ms();
	int rc = scanner_parse_result(raw, &res, err);
	int64_t t1 = pb_mono_ms();
	if (!rc)
		rc = stage_scan(r, row->batch, row->ids_json, &res, err);
	scan_result_release(&res);
	r->ms_fetch += t1 - t0;
	r->ms_stage += pb_mono_ms() - t1;
	sr->ms_hooks += pb_mono_ms() - t0;
	return rc ? rc : batch_staged(r, row);
}

/* A batch that failed: throttling and outages stop the round (the job is retried later, the
 * scans kept); a scan Power BI failed, lost or whose result expired is asked for again in
 * the next round, a few times. */
static int round_failed(void *ctx, size_t k, int rc, const char *msg, char *err)
{
	struct scan_round *sr = ctx;
	ingest_run *r = sr->r;
	msapi_failure kind = r->api->last.failure;
	if (kind == MSAPI_RETRY_AFTER)
		note_throttled(r, r->api->last.retry_after_s);
	if (kind == MSAPI_RETRY_AFTER || kind == MSAPI_UNAVAILABLE || kind == MSAPI_OUTCOME_UNKNOWN) {
		ms_failed(r, rc < 0 ? rc : PB_EIO);
		return pb_err(err, rc < 0 ? rc : PB_EIO, "%s", msg);
	}
	round_write_begin(sr);
	rc = scan_again(r, sr->rows[k], msg, err);
	round_write_end(sr);
	return rc;
}

/* ---- staging on a thread of its own ----
 *
 * The thread that drives the scans' requests (16 lanes of getInfo, status polls and result
 * reads) hands each result's bytes to the stager, which decodes, converts, filters and stages
 * them on a database connection of its own, so due getInfo and status calls do not wait while a
 * result is staged. At most STAGE_QUEUE results wait for it (the driving thread then waits for
 * room, so memory stays bounded). The two connections take turns writing through write_mu, so
 * neither waits in SQLite's busy handler (which sleeps in steps of up to 100 ms) for the other. The driving thread records what the stager finished (the
 * batch's row, the job's progress) when it hands over the next result and at the end of each
 * round, after waiting for the stager to finish what it was given. */

#define STAGE_QUEUE PB_SCAN_PARALLEL_MAX   /* the results of a whole wave of scans, which come together */

struct stage_item {
	size_t k;               /* the round's batch */
	long batch;
	const char *ids_json;   /* borrowed from the round's row */
	char *body;             /* owned: the result as Power BI sent it */
	size_t len;
};

struct stage_done {
	size_t k;
	bool bad;               /* not a scan result: the batch is scanned again (msg says why) */
	char msg[PB_ERR_MAX];
};

typedef struct stager {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* an item queued, room made, an item finished, closing */
	struct stage_item q[STAGE_QUEUE];
	size_t head, n;
	bool busy, closing;
	struct stage_done *done, *spare;   /* finished, not recorded yet; swapped when collected */
	size_t ndone;
	pthread_mutex_t write_mu;   /* held by whichever connection writes: the stager's or the run's */
	int rc;                 /* a failure that stops the run (err says what) */
	char err[PB_ERR_MAX];
	ingest_run run;         /* the run as the stager sees it: its own connection, counters and
	                           filter rules (a sandbox is used by the thread that made it) */
	int filter_ms;          /* what is left of the run's filter time for the stager's rules */
} stager;

/* Decodes, converts and stages one result on the stager's connection. */
static int stage_text(stager *sg, const struct stage_item *it, struct stage_done *d, char *err)
{
	ingest_run *r = &sg->run;
	scan_result res = { 0 };
	char derr[PB_ERR_MAX];
	int64_t t0 = pb_mono_ms();
	/* the contract reader's JSON reader is several times faster than json_loadb on these
	 * megabytes; jansson reads what it leaves (and keeps its meaning of duplicate keys) */
	json_t *raw = json_depth_check(it->body, it->len, PB_JSON_MAX_DEPTH, derr) ? NULL
										     : fast_json_load(it->body, it->len);
	if (!raw)
		raw = json_loadb(it->body, it->len, 0, NULL);
	int rc = PB_OK;
	if (!json_is_object(raw)) {
		d->bad = true;
		xsnprintf(d->msg, sizeof d->msg, "Power BI sent a scan result that is not a JSON object");
	} else {
		rc = scanner_parse_result(raw, &res, err);
		int64_t t1 = pb_mono_ms();
		r->ms_fetch += t1 - t0;
		if (!rc) {
			pthread_mutex_lock(&sg->write_mu);
			rc = stage_scan(r, it->batch, it->ids_json, &res, err);
			pthread_mutex_unlock(&sg->write_mu);
		}
		r->ms_stage += pb_mono_ms() - t1;
	}
	scan_result_release(&res);
	json_decref(raw);
	return rc;
}

static void *stager_main(void *arg)
{
	stager *sg = arg;
	char err[PB_ERR_MAX];
	int orc = filter_open_budget(&sg->run.filter, sg->run.ctx->cfg, sg->run.integ->filter_rule,
				     sg->run.integ->filters_json, sg->filter_ms, err);
	pthread_mutex_lock(&sg->mu);
	if (orc) {
		sg->rc = orc;
		xsnprintf(sg->err, sizeof sg->err, "%s", err);
	}
	for (;;) {
		while (!sg->n && !sg->closing)
			pthread_cond_wait(&sg->cv, &sg->mu);
		if (!sg->n)
			break;
		struct stage_item it = sg->q[sg->head];
		sg->head = (sg->head + 1) % STAGE_QUEUE;
		sg->n--;
		sg->busy = true;
		bool failed = sg->rc != 0;   /* after a failure the rest is only let go */
		pthread_cond_broadcast(&sg->cv);
		pthread_mutex_unlock(&sg->mu);
		struct stage_done d = { .k = it.k, .bad = false, .msg = "" };
		int rc = failed ? PB_OK : stage_text(sg, &it, &d, err);
		free(it.body);
		pthread_mutex_lock(&sg->mu);
		if (rc && !sg->rc) {
			sg->rc = rc;
			xsnprintf(sg->err, sizeof sg->err, "%s", err);
		} else if (!rc && !failed) {
			sg->done[sg->ndone++] = d;
		}
		sg->busy = false;
		pthread_cond_broadcast(&sg->cv);
	}
	pthread_mutex_unlock(&sg->mu);
	filter_close(&sg->run.filter);
	return NULL;
}

/* Starts a stager for rounds of at most cap batches, or leaves *out NULL when the run has no
 * database file to open a second connection to (results are then staged in the hooks). */
static int stager_start(ingest_run *r, size_t cap, stager **out, char *err)
{
	*out = NULL;
	if (!r->ctx || !r->ctx->cfg || !r->ctx->cfg->db_path || !cap)
		return PB_OK;
	stager *sg = calloc(1, sizeof *sg);
	pb_db *db = NULL;
	int rc;
	if (!sg || !(sg->done = calloc(cap, sizeof *sg->done)) || !(sg->spare = calloc(cap, sizeof *sg->spare))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto fail;
	}
	/* as the worker opens its own: without the memory mapping (its RSS) */
	if ((rc = db_open(r->ctx->cfg->db_path, false, &db, err)) || (rc = db_unmap(db, err)))
		goto fail;
	sg->run = *r;
	sg->run.db = db;
	/* the stager's own rules, opened on its thread, with what the run's rules have left */
	memset(&sg->run.filter, 0, sizeof sg->run.filter);
	long used = sandbox_time_used_ms(r->filter.sb);
	sg->filter_ms = used < PB_FILTER_RUN_TIME_MS ? PB_FILTER_RUN_TIME_MS - (int)used : 1;
	sg->run.models_seen = sg->run.models_with_tables = sg->run.models_with_sources = 0;
	sg->run.ms_fetch = sg->run.ms_stage = 0;
	pthread_mutex_init(&sg->mu, NULL);
	pthread_mutex_init(&sg->write_mu, NULL);
	pthread_cond_init(&sg->cv, NULL);
	if (pthread_create(&sg->th, NULL, stager_main, sg)) {
		pthread_cond_destroy(&sg->cv);
		pthread_mutex_destroy(&sg->write_mu);
		pthread_mutex_destroy(&sg->mu);
		rc = pb_err(err, PB_EINTERNAL, "cannot start the staging thread");
		goto fail;
	}
	*out = sg;
	return PB_OK;
fail:
	db_close(db);
	if (sg) {
		free(sg->done);
		free(sg->spare);
	}
	free(sg);
	return rc;
}

/* Ends the stager (after what it was given) and adds its counters to the run's. */
static void stager_stop(ingest_run *r, stager *sg)
{
	if (!sg)
		return;
	pthread_mutex_lock(&sg->mu);
	sg->closing = true;
	pthread_cond_broadcast(&sg->cv);
	pthread_mutex_unlock(&sg->mu);
	pthread_join(sg->th, NULL);
	r->models_seen += sg->run.models_seen;
	r->models_with_tables += sg->run.models_with_tables;
	r->models_with_sources += sg->run.models_with_sources;
	r->ms_fetch += sg->run.ms_fetch;
	r->ms_stage += sg->run.ms_stage;
	db_close(sg->run.db);
	pthread_cond_destroy(&sg->cv);
	pthread_mutex_destroy(&sg->write_mu);
	pthread_mutex_destroy(&sg->mu);
	free(sg->done);
	free(sg->spare);
	free(sg);
}

static void round_write_begin(struct scan_round *sr)
{
	if (sr->sg)
		pthread_mutex_lock(&sr->sg->write_mu);
}

static void round_write_end(struct scan_round *sr)
{
	if (sr->sg)
		pthread_mutex_unlock(&sr->sg->write_mu);
}

/* Records what the stager finished since the last time (on the driving thread's connection). */
static int stager_collect(struct scan_round *sr, char *err)
{
	stager *sg = sr->sg;
	pthread_mutex_lock(&sg->mu);
	struct stage_done *d = sg->done;
	size_t nd = sg->ndone;
	sg->done = sg->spare;
	sg->spare = d;
	sg->ndone = 0;
	pthread_mutex_unlock(&sg->mu);
	int rc = PB_OK;
	if (!nd)
		return PB_OK;
	round_write_begin(sr);
	for (size_t i = 0; i < nd && !rc; i++)
		rc = d[i].bad ? scan_again(sr->r, sr->rows[d[i].k], d[i].msg, err) : batch_staged(sr->r, sr->rows[d[i].k]);
	round_write_end(sr);
	return rc;
}

/* Waits until the stager has staged everything it was given, then records it. Returns the
 * stager's failure (its message into err) if it had one. */
static int stager_drain(struct scan_round *sr, char *err)
{
	stager *sg = sr->sg;
	pthread_mutex_lock(&sg->mu);
	while (sg->n || sg->busy)
		pthread_cond_wait(&sg->cv, &sg->mu);
	int rc = sg->rc;
	if (rc)
		xsnprintf(err, PB_ERR_MAX, "%s", sg->err);
	pthread_mutex_unlock(&sg->mu);
	return rc ? rc : stager_collect(sr, err);
}

/* The scanner's hook with a stager: the result's bytes are queued for it (waiting for room). */
static int round_result_text(void *ctx, size_t k, const char *body, size_t len, char *err)
{
	struct scan_round *sr = ctx;
	stager *sg = sr->sg;
	scan_row *row = sr->rows[k];
	int64_t t0 = pb_mono_ms();
	char *copy = malloc(len + 1);
	if (!copy)
		return pb_err(err, PB_ENOMEM, "out of memory");
	memcpy(copy, body, len);
	copy[len] = '\0';
	pthread_mutex_lock(&sg->mu);
	while (sg->n == STAGE_QUEUE && !sg->rc)
		pthread_cond_wait(&sg->cv, &sg->mu);
	int rc = sg->rc;
	if (rc) {
		xsnprintf(err, PB_ERR_MAX, "%s", sg->err);
	} else {
		sg->q[(sg->head + sg->n) % STAGE_QUEUE] =
			(struct stage_item){ .k = k, .batch = row->batch, .ids_json = row->ids_json, .body = copy, .len = len };
		sg->n++;
		copy = NULL;
		pthread_cond_broadcast(&sg->cv);
	}
	pthread_mutex_unlock(&sg->mu);
	free(copy);
	if (!rc)
		rc = stager_collect(sr, err);
	sr->ms_hooks += pb_mono_ms() - t0;
	return rc;
}

/* True when the stager failed: the round stops (its error is the run's). */
static bool stager_failed(stager *sg)
{
	pthread_mutex_lock(&sg->mu);
	bool failed = sg->rc != 0;
	pthread_mutex_unlock(&sg->mu);
	return failed;
}

/* Asked before each reply: the worker stops, or another job got the tenant a back-off (looked
 * at every BACKOFF_CHECK_MS). */
static bool round_stop(void *ctx)
{
	struct scan_round *sr = ctx;
	ingest_run *r = sr->r;
	if (must_stop(r) || (sr->sg && stager_failed(sr->sg)))
		return true;
	if (!r->held && pb_mono_ms() - r->backoff_checked_ms >= BACKOFF_CHECK_MS) {
		char err[PB_ERR_MAX];
		/* the store unreadable for a moment does not stop the scan: it is asked again */
		if (backoff_check(r, err))
			log_event("warn", NULL, "run %s: tenant back-off not read: %s", r->run->id, err);
	}
	return r->held;
}

/* Up to 16 scans in flight, their results fetched in parallel (scanner_scan_batches). A
 * round takes the scans a previous worker started (polled, not started again) and every
 * pending batch the tenant's getInfo budget allows; batches Power BI failed go again in the
 * next round. Budget is taken for a whole round before it starts, one call per batch. */
static int scan_loop(ingest_run *r, char *err)
{
	scan_row *rows = NULL, **pick = NULL;
	scanner_batch *b = NULL;
	char ***ids = NULL;
	stager *sg = NULL;
	size_t n = 0, total = 0, k = 0;
	int64_t t_scan = pb_mono_ms();
	int rc = scans_load(r->db, r->run->id, &rows, &n, &total, err);
	if (rc)
		return rc;
	r->batches_total = total;
	r->batches_done = total - n;
	pick = calloc(n ? n : 1, sizeof *pick);
	b = calloc(n ? n : 1, sizeof *b);
	ids = calloc(n ? n : 1, sizeof *ids);
	if (!pick || !b || !ids) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = stager_start(r, n, &sg, err)))
		goto out;
	scanner_hooks h = { .started = round_started, .result = sg ? NULL : round_result,
			    .result_text = sg ? round_result_text : NULL, .failed = round_failed, .stop = round_stop,
			    .poll_max_ms = r->poll_max_ms };
	long saved_poll = r->api->poll_ms;
	for (;;) {
		bool budget_short = false;
		long wait_ms = 0;
		size_t left = 0;
		for (size_t i = 0; i < n; i++)
			left += strcmp(rows[i].state, "done") != 0;
		if (!left)
			break;
		if (must_stop(r)) {
			rc = stop_run(r);
			goto out;
		}
		if ((rc = backoff_check(r, err)))
			goto out;
		if (r->held) {
			rc = hold_run(r);
			goto out;
		}
		k = 0;
		/* scans already running at Power BI first: they need no slot of the budget */
		for (size_t i = 0; i < n; i++)
			if (!strcmp(rows[i].state, "scanning") && rows[i].scan_id) {
				pick[k] = &rows[i];
				b[k++] = (scanner_batch){ .scan_id = rows[i].scan_id };
			}
		for (size_t i = 0; i < n && !budget_short; i++) {
			size_t cnt = 0;
			bool granted;
			if (strcmp(rows[i].state, "pending"))
				continue;
			if ((rc = budget_take(r->db, r->integ->tenant_id, r->budget_per_hour, &granted, &wait_ms, err)))
				goto out;
			if (!granted) {
				budget_short = true;
				break;
			}
			if ((rc = ids_from_json(rows[i].ids_json, &ids[k], &cnt, err)))
				goto out;
			pick[k] = &rows[i];
			b[k] = (scanner_batch){ .ids = (const char *const *)ids[k], .n = cnt };
			k++;
		}
		if (k) {
			struct scan_round sr = { r, pick, 0, sg };
			scanner_stats st;
			h.ctx = &sr;
			r->api->poll_ms = r->poll_ms;
			rc = scanner_scan_batches(r->api, b, k, &r->sopts, &h, &st, err);
			r->api->poll_ms = saved_poll;
			/* what the stager was given is staged and recorded before anything else; its own
			 * failure (which stopped the round) is the round's error */
			if (sg) {
				char serr[PB_ERR_MAX];
				int src = stager_drain(&sr, serr);
				if (src && (!rc || stager_failed(sg))) {
					rc = src;
					xsnprintf(err, PB_ERR_MAX, "%s", serr);
				}
			}
			r->ms_poll_wait += st.wall_ms - sr.ms_hooks;
			if (st.max_running > r->max_in_flight)
				r->max_in_flight = st.max_running;
			for (size_t i = 0; i < k; i++) {
				if (ids[i])
					msapi_strv_free(ids[i], b[i].n);
				ids[i] = NULL;
			}
			if (rc && r->held && !r->throttle_noted)
				rc = hold_run(r);
			else if (rc && must_stop(r))
				rc = stop_run(r);
			else
				ms_failed(r, rc);
			if (rc)
				goto out;
		}
		if (budget_short) {
			pb_fail(&r->fail, PB_EUNAVAIL, "scan_budget", "the tenant's budget of %ld scans per hour is used up; "
				"the run goes on in %ld s", r->budget_per_hour, wait_ms / 1000);
			rc = put_back(r, wait_ms, false);
			goto out;
		}
	}
out:
	stager_stop(r, sg);
	r->ms_scan += pb_mono_ms() - t_scan;
	for (size_t i = 0; ids && i < n; i++)
		if (ids[i])
			msapi_strv_free(ids[i], b[i].n);
	free(ids);
	free(b);
	free(pick);
	scan_rows_free(rows, n);
	return rc;
}

/* ---- the fallback: per-workspace listing APIs ---- */

static int list_workspace(ingest_run *r, const msapi_item *g, char *err)
{
	msapi_items ds = { 0 }, reps = { 0 }, dash = { 0 };
	bool ok;
	char buf[512];
	int rc = powerbi_list_datasets(r->api, g->id, &ds, err);
	if (!rc)
		rc = powerbi_list_reports(r->api, g->id, &reps, err);
	if (!rc)
		rc = powerbi_list_dashboards(r->api, g->id, &dash, err);
	if (ms_failed(r, rc))
		goto out;
	if ((rc = stage_json(r, "workspace", g->id, g->id, g->name ? g->name : g->id,
			     json_pack("{s:s?}", "type", g->type), err)))
		goto out;
	for (size_t i = 0; i < ds.n; i++) {
		msapi_items src = { 0 };
		json_t *src_ids = json_array();
		if ((rc = filter_allows(&r->filter, "semantic_model", ds.v[i].name, g->name, ds.v[i].id, &ok, err)) || !ok) {
			json_decref(src_ids);
			if (rc)
				goto out;
			continue;
		}
		rc = ms_failed(r, powerbi_list_datasources(r->api, g->id, ds.v[i].id, &src, err));
		for (size_t k = 0; !rc && k < src.n; k++) {
			const char *sid = src.v[k].id ? src.v[k].id : src.v[k].path;
			if (!sid)
				continue;
			char dsid[PB_ID_BUF];
			json_array_append_new(src_ids, json_string(sid));
			assets_id_for(r->integ->org_id, "datasource", sid, dsid);
			if (!(rc = edge(r, "datasource", sid, "semantic_model", ds.v[i].id, err)))
				rc = datasource_port_edges(r, src.v[k].type, NULL, NULL, src.v[k].path, dsid, err);
			if (!rc)
				rc = stage_json(r, "datasource", sid, NULL,
					datasource_name(src.v[k].type, NULL, NULL, src.v[k].path, NULL, buf, sizeof buf),
					json_pack("{s:s?, s:s?}", "type", src.v[k].type, "path", src.v[k].path), err);
		}
		msapi_items_release(&src);
		if (!rc)
			rc = published_edge(r, ds.v[i].id, err);
		r->models_seen++;
		if (!rc)
			rc = stage_json(r, "semantic_model", ds.v[i].id, g->id, ds.v[i].name ? ds.v[i].name : ds.v[i].id,
					json_pack("{s:s, s:s?, s:[], s:o*, s:s?}", "workspace_id", g->id, "workspace_name",
						  g->name, "tables", "datasource_ids", src_ids, "web_url", ds.v[i].web_url),
					err);
		else
			json_decref(src_ids);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < reps.n; i++) {
		if (json_object_get(reps.v[i].raw, "appId"))
			continue;
		if ((rc = filter_allows(&r->filter, "report", reps.v[i].name, g->name, reps.v[i].id, &ok, err)))
			goto out;
		if (ok && ((rc = stage_json(r, "report", reps.v[i].id, g->id, reps.v[i].name ? reps.v[i].name : reps.v[i].id,
					    json_pack("{s:s, s:s?, s:s?, s:s?}", "workspace_id", g->id, "dataset_id",
						      reps.v[i].dataset_id, "report_type", reps.v[i].type, "web_url",
						      reps.v[i].web_url), err)) ||
			   (rc = edge(r, "semantic_model", reps.v[i].dataset_id, "report", reps.v[i].id, err))))
			goto out;
	}
	for (size_t i = 0; i < dash.n; i++) {
		msapi_items tiles = { 0 };
		json_t *tj = json_array();
		if (json_object_get(dash.v[i].raw, "appId")) {
			json_decref(tj);
			continue;
		}
		rc = ms_failed(r, powerbi_list_tiles(r->api, g->id, dash.v[i].id, &tiles, err));
		for (size_t t = 0; !rc && tj && t < tiles.n; t++) {
			const char *rep = json_string_value(json_object_get(tiles.v[t].raw, "reportId"));
			json_array_append_new(tj, json_pack("{s:s?, s:s?, s:s?, s:s?}", "id", tiles.v[t].id, "title",
							    tiles.v[t].name, "report_id", rep, "dataset_id",
							    tiles.v[t].dataset_id));
			rc = rep ? edge(r, "report", rep, "dashboard", dash.v[i].id, err)
				 : edge(r, "semantic_model", tiles.v[t].dataset_id, "dashboard", dash.v[i].id, err);
		}
		msapi_items_release(&tiles);
		if (!rc)
			rc = stage_json(r, "dashboard", dash.v[i].id, g->id, dash.v[i].name ? dash.v[i].name : dash.v[i].id,
					json_pack("{s:s, s:o*}", "workspace_id", g->id, "tiles", tj), err);
		else
			json_decref(tj);
		if (rc)
			goto out;
	}
out:
	msapi_items_release(&ds);
	msapi_items_release(&reps);
	msapi_items_release(&dash);
	return rc;
}

static int run_listing(ingest_run *r, const char *why, char *err)
{
	msapi_items groups = { 0 };
	bool ok;
	int rc;
	xsnprintf(r->mode, sizeof r->mode, "listing");
	add_warning(r, "admin APIs are not enabled for this service principal: used per-workspace listing, no column "
		    "schema, no expressions (%s)", why);
	if ((rc = assets_unstage(r->db, r->run->id, err)) || (rc = scans_delete(r->db, r->run->id, err)) ||
	    (rc = ms_failed(r, powerbi_list_groups(r->api, NULL, &groups, err))))
		goto out;
	if (groups.n == 0)
		add_warning(r, "the service principal has no role in any workspace: add it (or a group holding it) as "
			    "Viewer or higher to the workspaces to import");
	for (size_t i = 0; i < groups.n; i++) {
		if (must_stop(r)) {
			pb_fail(&r->fail, PB_EUNAVAIL, "stopped", "the worker stopped; the run lists the workspaces again "
				"with the next one");
			rc = put_back(r, 1, true);
			goto out;
		}
		if (!groups.v[i].id || (personal_type(groups.v[i].type) && !r->integ->include_personal))
			continue;
		if ((rc = filter_allows(&r->filter, "workspace", groups.v[i].name, NULL, groups.v[i].id, &ok, err)))
			goto out;
		if (!ok)
			continue;
		r->workspaces_planned++;
		/* no transaction around it: the database must not stay locked while Power BI answers */
		if ((rc = list_workspace(r, &groups.v[i], err)))
			goto out;
		if (r->ctx && (rc = job_phase(r->ctx, "listing", 10 + (int)(80 * (i + 1) / groups.n))))
			goto out;
	}
out:
	msapi_items_release(&groups);
	return rc;
}

/* ---- the job ---- */

static json_t *counts_json(const ingest_run *r, const assets_counts *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "workspaces", (json_int_t)c->workspaces,
			 "semantic_models", (json_int_t)c->semantic_models, "reports", (json_int_t)c->reports,
			 "dashboards", (json_int_t)c->dashboards, "datasources", (json_int_t)c->datasources, "added",
			 (json_int_t)c->added, "changed", (json_int_t)c->changed, "removed", (json_int_t)c->removed,
			 "scanned_workspaces", (json_int_t)r->workspaces_planned, "scans", (json_int_t)r->scans_started);
}

static void schema_warnings(ingest_run *r)
{
	if (strcmp(r->mode, "listing") == 0 || r->models_seen == 0)
		return;
	if (r->models_with_tables == 0)
		add_warning(r, "no semantic model came back with tables and columns: turn on the tenant setting "
			    "'Enhance admin APIs responses with detailed metadata' (or the models were never refreshed)");
	else if (r->models_with_sources == 0)
		add_warning(r, "no semantic model came back with M expressions, so lineage to source tables is "
			    "missing: turn on the tenant setting 'Enhance admin APIs responses with DAX and mashup "
			    "expressions'");
}

static void run_release(ingest_run *r)
{
	ports_free(r);
	filter_close(&r->filter);
	json_decref(r->warnings);
	integration_free(r->integ);
	run_free(r->run);
}

/* Ends the run failed with r->fail, drops its staging and plan, and fails the job. */
static int fail_run(ingest_run *r)
{
	char err[PB_ERR_MAX];
	const char *code = pb_failure_code(&r->fail);
	char *w = json_dumps(r->warnings, JSON_COMPACT);
	if (integration_run_finish(r->db, r->run->id, false, NULL, w, code, r->fail.message, err))
		log_event("warn", NULL, "run %s not closed: %s", r->run->id, err);
	free(w);
	assets_unstage(r->db, r->run->id, err);
	scans_delete(r->db, r->run->id, err);
	int rc = job_fail(r->ctx, code, "%s", r->fail.message);
	webhook_job_event(r->ctx, "import.failed", json_pack("{s:s, s:s?, s:s, s:s?}", "integration_id",
							      r->run->integration_id, "integration_name",
							      r->integ ? r->integ->name : NULL, "run_id", r->run->id,
							      "trigger", r->run->trigger));
	return rc;
}

/* The attempt failed with rc (r->fail says how, when a Microsoft call or a wait decided it):
 * the job goes back to the queue when the failure is worth another try and attempts are
 * left, or waits (Power BI's Retry-After, the tenant's back-off, a stopping worker) without
 * using one; else the run fails. */
static int end_attempt(ingest_run *r, int rc)
{
	pb_job_ctx *ctx = r->ctx;
	pb_failure *f = &r->fail;
	char werr[PB_ERR_MAX];
	/* not a Microsoft call's failure: the database or memory (worth another try), or what
	 * Power BI sent could not be scanned */
	if (!f->rc)
		pb_fail_as(f, rc, rc == PB_EIO || rc == PB_ENOMEM ? NULL : "scan_failed");
	const char *code = pb_failure_code(f);
	bool throttled = f->rc == PB_EUNAVAIL && !strcmp(code, "throttled");
	long after = r->retry_ms;
	if (!after && f->rc == PB_EUNAVAIL)
		after = f->retry_after_s > 0 ? f->retry_after_s * 1000 : throttled ? 60000 : 0;
	/* waiting out Power BI's Retry-After (own or the tenant's) is not a failed attempt */
	bool wait = r->wait || throttled;
	bool again = f->rc == PB_EUNAVAIL || f->rc == PB_EIO || f->rc == PB_ENOMEM;
	if (!again || (!wait && ctx->job->attempts >= ctx->job->max_attempts))
		return fail_run(r);
	/* a 429 from the scanner APIs holds back every scanner caller on the tenant; the listing
	 * APIs' limits are each service principal's own */
	if (throttled && strcmp(r->mode, "listing"))
		note_throttled(r, after / 1000);
	if (save_warnings(r, werr))
		log_event("warn", NULL, "run %s: warnings not saved: %s", r->run->id, werr);
	char msg[PB_ERR_MAX], until[PB_TIME_BUF];
	xsnprintf(msg, sizeof msg, "%s", f->message);
	/* the run says why it waits and until when (a worker's own back-off: not known) */
	if (after > 1) {
		pb_time_in(after, until);
		if (strcmp(code, "tenant_backoff"))   /* whose message says it already */
			xsnprintf(msg, sizeof msg, "%s; the run goes on at %s", f->message, until);
		if (integration_run_wait(r->db, r->run->id, until, msg, werr))
			log_event("warn", NULL, "run %s: wait not recorded: %s", r->run->id, werr);
	}
	return (wait ? job_wait : job_retry_later)(ctx, after, code, "%s", msg);
}

int ingest_job(pb_job_ctx *ctx)
{
	ingest_run r = { 0 };
	pbi_session s = { 0 };
	char *secret = NULL, whose[PB_NAME_FIELD_MAX + 32];
	size_t secret_len = 0;
	bool refused = false;
	json_t *in = json_loads(ctx->job->input, 0, NULL);
	const char *iid = json_string_value(json_object_get(in, "integration_id"));
	const char *rid = json_string_value(json_object_get(in, "run_id"));
	char *err = r.fail.message;
	int rc;
	r.ctx = ctx;
	r.db = ctx->db;
	r.warnings = json_array();
	if (!iid || !rid || !r.warnings) {
		rc = job_fail(ctx, "bad_input", "the ingest job has no integration_id / run_id");
		goto out;
	}
	/* a run and its job are written together: a run gone is an integration deleted with its runs */
	if ((rc = integration_run_get(r.db, rid, &r.run, err)) == PB_ENOTFOUND) {
		rc = job_fail(ctx, "not_found", "the integration %s was deleted, and its run %s with it", iid, rid);
		goto out;
	}
	if (rc)
		goto out;
	json_t *old = json_loads(r.run->warnings_json ? r.run->warnings_json : "[]", 0, NULL);
	if (json_is_array(old))
		json_array_extend(r.warnings, old);
	json_decref(old);
	if ((rc = integrations_get(r.db, NULL, iid, &r.integ, err)) == PB_ENOTFOUND) {
		pb_fail(&r.fail, PB_ENOTFOUND, NULL, "the integration %s was deleted", iid);
		rc = fail_run(&r);
		goto out;
	}
	if (rc)
		goto out;
	if (!ctx->cfg->ingestions_enabled) {
		pb_fail(&r.fail, PB_ENOTFOUND, "feature_disabled", "imports are turned off (APPLICATION_INGESTIONS_ENABLED)");
		rc = fail_run(&r);
		goto out;
	}
	const char *cp_mode = json_string_value(json_object_get(ctx->checkpoint, "mode"));
	if ((rc = integration_run_start(r.db, rid, cp_mode ? cp_mode : "planning", err)))
		goto out;
	if ((rc = integration_open_secret(ctx->cfg, r.integ, &secret, &secret_len, err))) {
		/* the secret must be saved again: as for one Entra refuses */
		pb_fail_as(&r.fail, rc, rc == PB_ENOMEM ? NULL : "bad_credentials");
		rc = fail_run(&r);
		goto out;
	}
	xsnprintf(whose, sizeof whose, "integration '%s'", r.integ->name);
	rc = pbi_session_open_app(&s, ctx->cfg, whose, r.integ->tenant_id, r.integ->client_id, secret, &r.fail);
	pb_secret_free(secret, secret_len);
	if (rc)
		goto failed;
	r.api = &s.api;
	/* a worker asked to stop leaves the scans it started for the next run to poll */
	pb_http_set_stop(s.http, ctx->stop);
	r.poll_ms = ctx->cfg->scan_poll_ms;
	r.poll_max_ms = ctx->cfg->scan_poll_max_ms;
	r.budget_per_hour = ctx->cfg->scan_budget_per_hour;
	r.sopts = (scanner_opts){ .lineage = true, .datasource_details = true, .dataset_schema = true,
				  .dataset_expressions = true };
	if ((rc = filter_open(&r.filter, ctx->cfg, r.integ->filter_rule, r.integ->filters_json, err))) {
		pb_fail_as(&r.fail, rc, "filter_rule");
		rc = fail_run(&r);
		goto out;
	}
	if ((rc = ports_load(&r, err)))
		goto out;
	if (cp_mode) {
		xsnprintf(r.mode, sizeof r.mode, "%s", cp_mode);
		/* a resumed run counts what its earlier attempts planned */
		r.workspaces_planned = (size_t)json_integer_value(json_object_get(ctx->checkpoint, "workspaces"));
	} else {
		if ((rc = job_phase(ctx, "planning", 5)))
			goto out;
		/* another job's 429 holds this one before it calls the scanner APIs at all */
		if ((rc = backoff_check(&r, err)))
			goto out;
		if (r.held) {
			rc = hold_run(&r);
			goto failed;
		}
		r.doing = "listing the workspaces to scan";
		rc = plan_run(&r, &refused, err);
		if (rc && !refused)
			goto failed;
		if (refused) {
			char why[PB_ERR_MAX];
			xsnprintf(why, sizeof why, "%s", err);
			rc = run_listing(&r, why, err);
			if (rc)
				goto failed;
		}
		if ((rc = job_checkpoint(ctx, "workspaces", json_integer((json_int_t)r.workspaces_planned))) ||
		    (rc = job_checkpoint(ctx, "mode", json_string(r.mode))) ||
		    (rc = integration_run_start(r.db, rid, r.mode, err)))
			goto out;
	}
	r.doing = "scanning workspaces";
	if (strcmp(r.mode, "listing") && (rc = scan_loop(&r, err)))
		goto failed;
	if ((rc = job_phase(ctx, "applying", 95)))
		goto out;
	schema_warnings(&r);
	assets_counts c;
	int64_t t_apply = pb_mono_ms();
	if ((rc = assets_apply_run(r.db, r.integ->org_id, r.integ->id, rid, strcmp(r.mode, "incremental") != 0,
				   strcmp(r.mode, "listing") ? "scanner" : "listing", &c, err)) ||
	    (rc = scans_started(r.db, rid, &r.scans_started, err)))
		goto failed;
	r.ms_apply = pb_mono_ms() - t_apply;
	char perr[PB_ERR_MAX];
	if (asset_products_refresh(r.db, r.integ->org_id, perr))
		add_warning(&r, "data products made from assets were not refreshed: %s", perr);
	json_t *counts = counts_json(&r, &c);
	char *ct = counts ? json_dumps(counts, JSON_COMPACT) : NULL;
	char *wt = json_dumps(r.warnings, JSON_COMPACT);
	rc = ct && wt ? integration_run_finish(r.db, rid, true, ct, wt, NULL, NULL, err) : pb_err(err, PB_ENOMEM, "out of memory");
	free(ct);
	free(wt);
	/* the staged rows go only now that the run is recorded (core/store/assets.h) */
	int64_t t_unstage = pb_mono_ms();
	if (!rc && !(rc = assets_unstage(r.db, rid, err)))
		rc = scans_delete(r.db, rid, err);
	r.ms_apply += pb_mono_ms() - t_unstage;
	if (!rc) {
		ctx->result = json_pack("{s:s, s:s, s:o, s:I, s:{s:I, s:I, s:I, s:I, s:I}}", "run_id", rid, "mode", r.mode,
					"counts", counts, "max_scans_in_flight", (json_int_t)r.max_in_flight, "ms",
					"fetch", (json_int_t)r.ms_fetch, "stage", (json_int_t)r.ms_stage, "poll_wait",
					(json_int_t)r.ms_poll_wait, "scan", (json_int_t)r.ms_scan, "apply",
					(json_int_t)r.ms_apply);
		counts = NULL;
	}
	json_decref(counts);
	goto out;
failed:
	if (atomic_load(&ctx->lease_lost)) {
		/* another worker holds the job now: the run is theirs to finish */
		rc = PB_ENOTFOUND;
		goto out;
	}
	rc = end_attempt(&r, rc);
out:
	/* a failure that did not end the job itself: the worker reads its message in ctx */
	if (rc && !ctx->err[0])
		xsnprintf(ctx->err, sizeof ctx->err, "%s", err);
	pbi_session_release(&s);
	run_release(&r);
	json_decref(in);
	return rc;
}

/* ---- schedules ---- */

/* A due integration and the due time after this one. */
struct scheduled_run {
	const pb_integration *integ;
	const char *next;
};

/* Moves the integration's due time to next, if this worker is the one that moves it (the
 * compare-and-swap on next_run_at: several workers tick at once, on several hosts), and queues
 * its run with the move. */
static int queue_scheduled_run(pb_db *db, void *ctx, char *err)
{
	const struct scheduled_run *sr = ctx;
	bool won = false, existing = false;
	pb_run *run = NULL;
	int rc = integration_advance_schedule(db, sr->integ->id, sr->integ->next_run_at, sr->next, &won, err);
	if (!rc && won)
		rc = integration_run_submit(db, sr->integ->org_id, NULL, sr->integ->id, "schedule", &run, &existing, err);
	run_free(run);
	return rc;
}

int ingest_schedule_tick(pb_db *db, const pb_config *cfg, char *err)
{
	pb_integration *v = NULL;
	size_t n = 0;
	char now[PB_TIME_BUF];
	int rc;
	if (!cfg->ingestions_enabled)
		return 0;
	pb_now(now);
	if ((rc = integrations_due(db, now, &v, &n, err)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		pb_cron c;
		int64_t next_s;
		char next[PB_TIME_BUF], sub[PB_ERR_MAX];
		bool won = false;
		if (!v[i].schedule || cron_parse(v[i].schedule, &c, sub) || cron_next(&c, pb_epoch_ms() / 1000, &next_s, sub)) {
			/* a schedule that no longer parses stops being due rather than firing each tick */
			rc = integration_advance_schedule(db, v[i].id, v[i].next_run_at, "9999-12-31T00:00:00.000Z", &won, err);
			continue;
		}
		pb_time_format(next_s * 1000, next);
		/* the due time moves past now with the run it queues, in one transaction: one catch-up
		 * run however many were missed, and a run that could not be queued stays due */
		struct scheduled_run sr = { &v[i], next };
		rc = db_transaction(db, queue_scheduled_run, &sr, err);
	}
	integrations_free(v, n);
	return rc;
}

/* ---- the permission doctor ---- */

static int add_check(json_t *checks, const char *check, int ok, const char *message, const char *fix)
{
	json_t *o = json_pack("{s:s, s:o, s:s, s:s?}", "check", check, "ok", ok < 0 ? json_null() : json_boolean(ok),
			      "message", message, "fix", ok > 0 ? NULL : fix);
	return o ? json_array_append_new(checks, o) : -1;
}

static const char *const FIX_SECRET = "Create a new client secret for the app in Entra ID (App registrations > "
				      "Certificates & secrets) and save it in this integration, checking the tenant "
				      "and client ids too.";
static const char *const FIX_FABRIC = "In the Fabric admin portal, Tenant settings > Developer settings, enable "
				      "'Service principals can use Fabric APIs' for a security group that contains "
				      "this app.";
static const char *const FIX_ADMIN = "In the Fabric admin portal, Tenant settings > Admin API settings, enable "
				     "'Service principals can access read-only admin APIs' for a security group "
				     "containing this app, and remove any admin-consented Power BI permissions from "
				     "the app in Entra ID.";
static const char *const FIX_METADATA = "In the Fabric admin portal, Tenant settings > Admin API settings, enable "
					"'Enhance admin APIs responses with detailed metadata'.";
static const char *const FIX_EXPRESSIONS = "In the Fabric admin portal, Tenant settings > Admin API settings, enable "
					   "'Enhance admin APIs responses with DAX and mashup expressions'.";
static const char *const FIX_ROLES = "Add the app (or a security group holding it) as Viewer or higher to each "
				     "workspace to import, or enable read-only admin APIs for it.";

/* One scan of up to 100 workspaces, polled for at most DOCTOR_SCAN_MAX_MS. */
static int doctor_scan(msapi *api, char **ids, size_t n, scan_result *res, json_t **raw, char *err)
{
	scanner_opts o = { .lineage = true, .datasource_details = true, .dataset_schema = true,
			   .dataset_expressions = true };
	char *scan_id = NULL, *status = NULL;
	int64_t deadline = pb_mono_ms() + DOCTOR_SCAN_MAX_MS;
	long wait = 250;
	int rc = scanner_get_info(api, (const char *const *)ids, n > PB_SCAN_BATCH_MAX ? PB_SCAN_BATCH_MAX : n, &o,
				  &scan_id, err);
	while (!rc) {
		free(status);
		status = NULL;
		if ((rc = scanner_status(api, scan_id, &status, err)))
			break;
		if (!strcmp(status, "Succeeded")) {
			if (!(rc = scanner_result(api, scan_id, raw, err)))
				rc = scanner_parse_result(*raw, res, err);
			break;
		}
		if (!strcmp(status, "Failed") || pb_mono_ms() > deadline) {
			rc = pb_err(err, PB_EIO, "the test scan did not finish (%s)", status);
			break;
		}
		pb_sleep_interruptible(wait, NULL);
		wait = wait * 2 > 5000 ? 5000 : wait * 2;
	}
	free(status);
	free(scan_id);
	return rc;
}

/* A 429 the doctor got from the scanner APIs holds back the tenant's scanner callers too. */
static void doctor_throttled(pb_db *db, const char *tenant_id, const char *client_id, const msapi *api)
{
	if (api->last.failure == MSAPI_RETRY_AFTER)
		tenant_backoff_record(db, tenant_id, TB_SCANNER, api->last.retry_after_s,
				      "the permission doctor for app %s", client_id);
}

int ingest_doctor(pb_db *db, const pb_config *cfg, const char *whose, const char *tenant_id,
		  const char *client_id, const char *client_secret, json_t **report, pb_failure *f)
{
	bool granted = false;
	long wait_ms = 0;
	pbi_session s = { 0 };
	pb_failure signin = { 0 };
	char msg[PB_ERR_MAX + 128], sub[PB_ERR_MAX], *err = f->message;
	msapi_items groups = { 0 };
	char **ids = NULL;
	size_t n = 0;
	scan_result res = { 0 };
	json_t *raw = NULL, *checks = json_array();
	bool all_ok = true, fabric_ok = false, admin_ok = false;
	int rc = 0;
	*report = NULL;
	if (!checks)
		return pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	if (pbi_session_open_app(&s, cfg, whose, tenant_id, client_id, client_secret, &signin)) {
		if (signin.rc != PB_EINVAL) {
			*f = signin;
			rc = f->rc;
			goto out;
		}
		add_check(checks, "credentials", 0, signin.message, FIX_SECRET);
		all_ok = false;
		goto skip_rest;
	}
	add_check(checks, "credentials", 1, "Entra ID issued a token for the service principal", NULL);
	if ((rc = powerbi_list_groups(&s.api, NULL, &groups, sub))) {
		if (!identity_refused(&s.api)) {
			pb_err(err, rc, "Power BI could not be asked to list the workspaces of %s: %s", whose, sub);
			ms_fail(&s.api, rc, f);
			rc = f->rc;
			goto out;
		}
		rc = 0;
		xsnprintf(msg, sizeof msg, "Power BI refused the service principal (%s)", sub);
		add_check(checks, "fabric_api_access", 0, msg, FIX_FABRIC);
		all_ok = false;
	} else {
		fabric_ok = true;
		add_check(checks, "fabric_api_access", 1, "service principals may call the Power BI APIs", NULL);
	}
	if (!fabric_ok) {
		add_check(checks, "admin_api_access", -1, "not checked: the Power BI APIs refused the service principal", FIX_ADMIN);
		add_check(checks, "detailed_metadata", -1, "not checked", FIX_METADATA);
		add_check(checks, "mashup_expressions", -1, "not checked", FIX_EXPRESSIONS);
		add_check(checks, "workspace_roles", -1, "not checked", FIX_ROLES);
		goto done;
	}
	tenant_backoff tb;
	bool waiting = false;
	if ((rc = tenant_backoff_get(db, tenant_id, TB_SCANNER, &tb, &waiting, err))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if (waiting) {
		/* the scanner APIs are not asked while the tenant must wait */
		xsnprintf(msg, sizeof msg, "not checked: Power BI asked every scanner caller on this tenant to wait until %s "
			  "(%s)", tb.until, tb.reason);
		add_check(checks, "admin_api_access", -1, msg, FIX_ADMIN);
		add_check(checks, "detailed_metadata", -1, msg, FIX_METADATA);
		add_check(checks, "mashup_expressions", -1, msg, FIX_EXPRESSIONS);
		add_check(checks, "workspace_roles", -1, msg, FIX_ROLES);
		goto done;
	}
	if ((rc = scanner_modified(&s.api, NULL, true, &ids, &n, sub))) {
		if (!identity_refused(&s.api)) {
			doctor_throttled(db, tenant_id, client_id, &s.api);
			pb_err(err, rc, "Power BI could not be asked which workspaces %s may scan: %s", whose, sub);
			ms_fail(&s.api, rc, f);
			rc = f->rc;
			goto out;
		}
		rc = 0;
		xsnprintf(msg, sizeof msg, "the read-only admin (scanner) APIs refused the service principal, so imports "
			  "fall back to per-workspace listing without column schema or expressions (%s)", sub);
		add_check(checks, "admin_api_access", 0, msg, FIX_ADMIN);
		add_check(checks, "detailed_metadata", -1, "not checked: needs the admin APIs", FIX_METADATA);
		add_check(checks, "mashup_expressions", -1, "not checked: needs the admin APIs", FIX_EXPRESSIONS);
		all_ok = false;
	} else {
		admin_ok = true;
		add_check(checks, "admin_api_access", 1, "the read-only admin (scanner) APIs answer", NULL);
		if (n == 0) {
			add_check(checks, "detailed_metadata", -1, "not checked: the tenant has no workspaces", FIX_METADATA);
			add_check(checks, "mashup_expressions", -1, "not checked: the tenant has no workspaces", FIX_EXPRESSIONS);
		} else if ((rc = budget_take(db, tenant_id, cfg->scan_budget_per_hour, &granted, &wait_ms, err))) {
			pb_fail_as(f, rc, NULL);
			goto out;
		} else if (!granted) {
			xsnprintf(msg, sizeof msg, "not checked: the tenant's scan budget for this hour is used up (again in "
				  "%ld s)", wait_ms / 1000);
			add_check(checks, "detailed_metadata", -1, msg, FIX_METADATA);
			add_check(checks, "mashup_expressions", -1, msg, FIX_EXPRESSIONS);
		} else if (doctor_scan(&s.api, ids, n, &res, &raw, sub)) {
			doctor_throttled(db, tenant_id, client_id, &s.api);
			xsnprintf(msg, sizeof msg, "not checked: the test scan failed (%s)", sub);
			add_check(checks, "detailed_metadata", -1, msg, FIX_METADATA);
			add_check(checks, "mashup_expressions", -1, msg, FIX_EXPRESSIONS);
		} else {
			size_t models = 0, with_tables = 0, with_m = 0;
			for (size_t w = 0; w < res.nworkspaces; w++)
				for (size_t d = 0; d < res.workspaces[w].ndatasets; d++) {
					const scan_dataset *ds = &res.workspaces[w].datasets[d];
					models++;
					with_tables += ds->ntables > 0;
					for (size_t t = 0; t < ds->ntables; t++)
						if (ds->tables[t].nsources) {
							with_m++;
							break;
						}
				}
			if (!models) {
				add_check(checks, "detailed_metadata", -1, "not checked: the scanned workspaces hold no "
					  "semantic models", FIX_METADATA);
				add_check(checks, "mashup_expressions", -1, "not checked", FIX_EXPRESSIONS);
			} else if (!with_tables) {
				xsnprintf(msg, sizeof msg, "none of %zu scanned semantic models came back with tables and "
					  "columns", models);
				add_check(checks, "detailed_metadata", 0, msg, FIX_METADATA);
				add_check(checks, "mashup_expressions", -1, "not checked: needs detailed metadata", FIX_EXPRESSIONS);
				all_ok = false;
			} else {
				add_check(checks, "detailed_metadata", 1, "scans return tables and columns", NULL);
				if (!with_m) {
					add_check(checks, "mashup_expressions", 0, "scans return no M (Power Query) "
						  "expressions, so lineage to source tables is missing", FIX_EXPRESSIONS);
					all_ok = false;
				} else {
					add_check(checks, "mashup_expressions", 1, "scans return M expressions", NULL);
				}
			}
		}
	}
	if (admin_ok)
		add_check(checks, "workspace_roles", 1, "not needed: the admin APIs scan every workspace", NULL);
	else if (groups.n == 0) {
		add_check(checks, "workspace_roles", 0, "the service principal has no role in any workspace", FIX_ROLES);
		all_ok = false;
	} else {
		xsnprintf(msg, sizeof msg, "the service principal has a role in %zu workspaces (only those are imported)",
			  groups.n);
		add_check(checks, "workspace_roles", 1, msg, NULL);
	}
	goto done;
skip_rest:
	add_check(checks, "fabric_api_access", -1, "not checked: no token", FIX_FABRIC);
	add_check(checks, "admin_api_access", -1, "not checked: no token", FIX_ADMIN);
	add_check(checks, "detailed_metadata", -1, "not checked: no token", FIX_METADATA);
	add_check(checks, "mashup_expressions", -1, "not checked: no token", FIX_EXPRESSIONS);
	add_check(checks, "workspace_roles", -1, "not checked: no token", FIX_ROLES);
done:
	*report = json_pack("{s:b, s:O}", "ok", all_ok, "checks", checks);
	if (!*report)
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
out:
	json_decref(checks);
	json_decref(raw);
	scan_result_release(&res);
	msapi_strv_free(ids, n);
	msapi_items_release(&groups);
	pbi_session_release(&s);
	return rc;
}

int ingest_integration_delete(pb_db *db, const char *org_id, const char *id, char *err)
{
	pb_integration *cur = NULL;
	/* found in this org first: assets of another org's integration are not touched */
	int rc = integrations_get(db, org_id, id, &cur, err);
	integration_free(cur);
	if (rc || (rc = db_begin(db, err)))
		return rc;
	if (!(rc = assets_integration_leaving(db, org_id, id, err)))
		rc = integrations_delete(db, org_id, id, err);
	return db_end(db, rc, err);
}

int ingest_asset_seen_by(pb_db *db, const pb_asset *a, json_t **out, char *err)
{
	json_t *entry;
	size_t i;
	int rc = assets_seen_by(db, a, out, err);
	json_array_foreach(*out, i, entry) {
		pb_integration *integ = NULL;
		if (rc)
			break;
		const char *iid = json_string_value(json_object_get(entry, "integration_id"));
		rc = integrations_get(db, a->org_id, iid, &integ, err);
		if (rc == PB_ENOTFOUND) {   /* deleted meanwhile: it sees nothing */
			rc = json_array_remove(*out, i--) ? pb_err(err, PB_ENOMEM, "out of memory") : PB_OK;
			continue;
		}
		if (!rc && json_object_set_new(entry, "name", json_string(integ->name)))
			rc = pb_err(err, PB_ENOMEM, "out of memory");
		integration_free(integ);
	}
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}
