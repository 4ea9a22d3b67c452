/* Import building blocks without Microsoft: the filter helpers in the Lua sandbox (wildcards,
 * case, exclude wins, bounded matching), filter validation, the integrations store (sealed
 * secret, unique names, schedules and their first due time, the schedule tick: one catch-up
 * run), run history kept to 10, and the assets store (one transaction per run: added /
 * changed / removed, scoped removal for incremental runs, a failed apply leaves the previous
 * state, lineage edges only between active assets; one asset however many integrations see
 * it, the richest view kept), the tenant back-off store, GUID ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/store/assets.h"
#include "core/store/catalog.h"
#include "core/lang/contract.h"
#include "core/store/identity.h"
#include "core/flow/ingest.h"
#include "core/store/integrations.h"
#include "core/flow/tenant_hold.h"
#include "msapi/scanner.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/jobs.h"
#include "runtime/lua_sandbox.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

static char tmpdir[64];
static char db_path[256];
static pb_db *db;
static pb_config cfg;
static char org_id[PB_ID_BUF], user_id[PB_ID_BUF];

static int setup(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	if (tu_db_setup("ingest", tmpdir, db_path, &db, &cfg, err) || tu_acme(db, PB_ROLE_OWNER, org_id, user_id, err) ||
	    tu_ingestions_on(&cfg, err))
		return tu_setup_failed(err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tu_db_teardown(tmpdir, db, &cfg);
}

/* ---- filters.lua ---- */

static lua_sandbox *filters_sandbox(void)
{
	char tpl[512], lua[512], err[PB_ERR_MAX];
	xsnprintf(tpl, sizeof tpl, "%s/templates", tu_src_dir());
	xsnprintf(lua, sizeof lua, "%s/lua", tu_src_dir());
	sandbox_dir dirs[] = { { tpl, "templates" }, { lua, "lua" } };
	sandbox_opts o = { .dirs = dirs, .ndirs = 2, .time_limit_ms = 2000 };
	lua_sandbox *sb = NULL;
	assert_int_equal(sandbox_new(&o, &sb, err), 0);
	return sb;
}

static bool lua_bool(lua_sandbox *sb, const char *code)
{
	char err[PB_ERR_MAX];
	if (sandbox_run(sb, "test", code, 1, err))
		fail_msg("%s: %s", code, err);
	bool v = lua_toboolean(sandbox_lua(sb), -1);
	lua_pop(sandbox_lua(sb), 1);
	return v;
}

static void test_wildcards(void **state)
{
	(void)state;
	lua_sandbox *sb = filters_sandbox();
	static const struct { const char *pattern, *text; bool match; } cases[] = {
		{ "Sales*", "Sales EU", true }, { "sales*", "SALES eu", true }, { "*test*", "Sales Test", true },
		{ "*test*", "Sales", false }, { "HR", "HR", true }, { "HR", "HR2", false }, { "H*R", "HR", true },
		{ "*", "", true }, { "", "", true }, { "", "x", false }, { "a*b*c", "aXbYc", true },
		{ "a*b*c", "aXbY", false }, { "*-prod", "finance-prod", true }, { "*-prod", "finance-prod2", false },
		{ "**", "anything", true }, { "Ünï*", "Ünïcode", true },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char code[512];
		xsnprintf(code, sizeof code, "return require('filters').match(%s%s%s, %s%s%s)", "\"", cases[i].pattern, "\"",
			  "\"", cases[i].text, "\"");
		if (lua_bool(sb, code) != cases[i].match)
			fail_msg("match('%s', '%s') should be %d", cases[i].pattern, cases[i].text, cases[i].match);
	}
	/* a pattern that backtracks exponentially in naive matchers stays quick */
	assert_false(lua_bool(sb, "local t = string.rep('a', 4000) .. 'c' "
				  "return require('filters').match('*a*a*a*a*a*a*a*b', t)"));
	sandbox_free(sb);
}

static void test_allowed_and_default_rule(void **state)
{
	(void)state;
	lua_sandbox *sb = filters_sandbox();
	/* exclude wins over include; empty include means everything; no group means everything */
	assert_false(lua_bool(sb, "return require('filters').allowed({include={'Sales*'}, exclude={'*test*'}}, 'Sales test')"));
	assert_true(lua_bool(sb, "return require('filters').allowed({include={'Sales*'}, exclude={'*test*'}}, 'Sales EU')"));
	assert_false(lua_bool(sb, "return require('filters').allowed({include={'Sales*'}}, 'HR')"));
	assert_true(lua_bool(sb, "return require('filters').allowed({include={}, exclude={}}, 'HR')"));
	assert_true(lua_bool(sb, "return require('filters').allowed(nil, 'HR')"));
	assert_false(lua_bool(sb, "return require('filters').allowed({exclude={'*'}}, 'HR')"));
	assert_false(lua_bool(sb, "local rule = require('filters.default') "
				  "return rule({kind='report', name='Draft 1'}, {reports={exclude={'draft*'}}})"));
	assert_true(lua_bool(sb, "local rule = require('filters.default') "
				 "return rule({kind='dashboard', name='Draft 1'}, {reports={exclude={'draft*'}}})"));
	sandbox_free(sb);
	char err[PB_ERR_MAX] = "";
	assert_int_equal(ingest_filter_check(&cfg, NULL, "{\"workspaces\":{\"include\":[\"a*\"],\"exclude\":[]}}", err), 0);
	assert_int_equal(ingest_filter_check(&cfg, "filters.missing", "{}", err), PB_EINVAL);
	assert_non_null(strstr(err, "filters.missing"));
}

static void test_filter_validation(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"{\"workspaces\":{\"include\":\"Sales*\"}}", "{\"dashboards\":{}}", "{\"workspaces\":{\"only\":[]}}",
		"{\"reports\":{\"exclude\":[1]}}", "{\"reports\":{\"exclude\":[\"\"]}}",
		"{\"reports\":{\"exclude\":[\"*a*b*c*d*e*f*g*h*i\"]}}", "[]",
	};
	char err[PB_ERR_MAX], *out = NULL;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *f = json_loads(bad[i], 0, NULL);
		assert_non_null(f);
		if (integration_filters_normalize(f, &out, err) != PB_EINVAL)
			fail_msg("%s was accepted", bad[i]);
		json_decref(f);
	}
	json_t *f = json_loads("{\"reports\":{\"exclude\":[\"Draft*\"]}}", 0, NULL);
	assert_int_equal(integration_filters_normalize(f, &out, err), 0);
	assert_string_equal(out, "{\"reports\":{\"exclude\":[\"Draft*\"],\"include\":[]},\"semantic_models\":"
				 "{\"exclude\":[],\"include\":[]},\"workspaces\":{\"exclude\":[],\"include\":[]}}");
	free(out);
	json_decref(f);
}

/* ---- integrations ---- */

static pb_integration *make(const char *name, const char *schedule, bool *conflict)
{
	char err[PB_ERR_MAX], body[512];
	integration_input in;
	pb_integration *i = NULL;
	xsnprintf(body, sizeof body, "{\"name\":\"%s\",\"type\":\"powerbi\",\"tenant_id\":\"7e1a0000-0000-4000-8000-000000000001\","
		  "\"client_id\":\"11111111-aaaa-4000-8000-000000000002\",\"client_secret\":\"s3cret-value\"%s%s%s}",
		  name, schedule ? ",\"schedule\":\"" : "", schedule ? schedule : "", schedule ? "\"" : "");
	json_t *j = json_loads(body, 0, NULL);
	pb_failure f = { 0 };
	assert_int_equal(integration_parse(j, true, cfg.min_schedule_interval_s, &in, err), 0);
	int rc = integrations_create(db, &cfg, org_id, user_id, &in, &i, &f);
	json_decref(j);
	*conflict = rc == PB_ECONFLICT;
	if (*conflict) {
		/* a name taken: 409 conflict naming the field, nothing written */
		assert_string_equal(pb_failure_code(&f), "conflict");
		assert_non_null(strstr(f.message, "name: "));
		assert_null(i);
		return NULL;
	}
	assert_int_equal(rc, 0);
	return i;
}

static void test_integrations_store(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], *plain = NULL;
	size_t len = 0;
	bool conflict = false;
	pb_integration *i = make("store", "@daily", &conflict);
	assert_true(!strncmp(i->client_secret, "v1:", 3));
	assert_null(strstr(i->client_secret, "s3cret"));
	assert_int_equal(integration_open_secret(&cfg, i, &plain, &len, err), 0);
	assert_string_equal(plain, "s3cret-value");
	pb_secret_free(plain, len);
	/* first due at the next matching time: the coming midnight */
	assert_non_null(i->next_run_at);
	assert_string_equal(i->next_run_at + 10, "T00:00:00.000Z");
	assert_true(strcmp(i->next_run_at, i->created_at) > 0);
	json_t *j = integration_json(i);
	char *text = json_dumps(j, 0);
	assert_null(strstr(text, "v1:"));
	assert_null(strstr(text, "s3cret"));
	free(text);
	json_decref(j);
	assert_null(make("store", NULL, &conflict));
	assert_true(conflict);
	/* schedule validation */
	integration_input in;
	json_t *b = json_loads("{\"schedule\":\"0 * * * *\"}", 0, NULL);
	assert_int_equal(integration_parse(b, false, cfg.min_schedule_interval_s, &in, err), PB_EINVAL);
	assert_non_null(strstr(err, "PBIPORT_MIN_SCHEDULE_INTERVAL"));
	json_decref(b);
	b = json_loads("{\"name\":\"x\"}", 0, NULL);
	assert_int_equal(integration_parse(b, true, cfg.min_schedule_interval_s, &in, err), PB_EINVAL);
	json_decref(b);
	/* unknown ids are not found; other orgs see nothing */
	pb_integration *g = NULL;
	assert_int_equal(integrations_get(db, "0123456789abcdef0123456789abcdef", i->id, &g, err), PB_ENOTFOUND);
	assert_int_equal(ingest_integration_delete(db, org_id, i->id, err), 0);
	assert_int_equal(integrations_get(db, org_id, i->id, &g, err), PB_ENOTFOUND);
	integration_free(i);
}

static void test_schedule_tick_one_catch_up(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	bool conflict = false, won = false;
	pb_integration *i = make("tick", "@twice_daily", &conflict);
	/* not due yet: nothing happens */
	assert_int_equal(ingest_schedule_tick(db, &cfg, err), 0);
	pb_run *runs = NULL;
	size_t n = 0;
	assert_int_equal(integration_runs_list(db, org_id, i->id, &runs, &n, err), 0);
	assert_int_equal(n, 0);
	runs_free(runs, n);
	/* the worker was down for days: one run, and the next due time is in the future */
	assert_int_equal(integration_advance_schedule(db, i->id, i->next_run_at, "2020-01-01T00:00:00.000Z", &won, err), 0);
	assert_true(won);
	assert_int_equal(ingest_schedule_tick(db, &cfg, err), 0);
	assert_int_equal(ingest_schedule_tick(db, &cfg, err), 0);
	assert_int_equal(integration_runs_list(db, org_id, i->id, &runs, &n, err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(runs[0].trigger, "schedule");
	assert_string_equal(runs[0].state, "queued");
	runs_free(runs, n);
	pb_integration *g = NULL;
	char now[PB_TIME_BUF];
	pb_now(now);
	assert_int_equal(integrations_get(db, org_id, i->id, &g, err), 0);
	assert_true(strcmp(g->next_run_at, now) > 0);
	integration_free(g);
	integration_free(i);
}

static int tick(pb_db *my, int i, void *ctx, char *err)
{
	return ingest_schedule_tick(my, &cfg, err);
}

/* Workers on several hosts tick the schedules at once, each on its own connection: a due time
 * queues one run (the compare-and-swap on next_run_at has one winner). */
static void schedule_tick_fires_once_with_several_tickers(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	bool conflict = false, won = false;
	pb_integration *i = make("tickers", "@twice_daily", &conflict);
	assert_int_equal(integration_advance_schedule(db, i->id, i->next_run_at, "2020-01-01T00:00:00.000Z", &won, err), 0);
	assert_true(won);
	tu_race(db_path, 4, tick, NULL);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM integration_runs WHERE integration_id = ?", i->id), 1);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM integrations WHERE id = ? AND next_run_at > "
				  "'2020-01-01T00:00:00.000Z'", i->id), 1);
	integration_free(i);
}

static long jobs_total(void)
{
	char err[PB_ERR_MAX];
	long counts[PB_JOB_NSTATES], total = 0;
	assert_int_equal(jobs_count_by_state(db, counts, err), 0);
	for (int k = 0; k < PB_JOB_NSTATES; k++)
		total += counts[k];
	return total;
}

static size_t runs_of(const char *integration_id)
{
	char err[PB_ERR_MAX];
	pb_run *runs = NULL;
	size_t n = 0;
	assert_int_equal(integration_runs_list(db, org_id, integration_id, &runs, &n, err), 0);
	runs_free(runs, n);
	return n;
}

/* A run row and its job commit together or not at all. Whichever of the two is written second
 * fails here, and nothing may be repaired afterwards (as when the process dies between the
 * two writes): neither is left. So does a caller's transaction that rolls back around a submit
 * that went through. */
static void test_run_submit_is_atomic(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	bool conflict = false, existing = false;
	pb_integration *i = make("atomic", NULL, &conflict);
	pb_run *run = NULL;
	long jobs_before = jobs_total();
	tu_refuse(db, "run_second", "INSERT", "integration_runs", "EXISTS (SELECT 1 FROM jobs "
		  "WHERE idempotency_key = 'ingest:' || NEW.integration_id AND state = 'queued')",
		  "injected: the second write fails");
	tu_refuse(db, "job_second", "INSERT", "jobs", "EXISTS (SELECT 1 FROM integration_runs "
		  "WHERE 'ingest:' || integration_id = NEW.idempotency_key AND state = 'queued')",
		  "injected: the second write fails");
	tu_refuse(db, "no_repair", "DELETE", "integration_runs", NULL, "injected: the process died, nothing is repaired");
	assert_int_not_equal(integration_run_submit(db, org_id, user_id, i->id, "manual", &run, &existing, err), 0);
	assert_non_null(strstr(err, "injected: the second write fails"));
	assert_null(run);
	assert_false(db_in_transaction(db));
	tu_allow(db, "run_second", "integration_runs");
	tu_allow(db, "job_second", "jobs");
	tu_allow(db, "no_repair", "integration_runs");
	assert_int_equal(jobs_total(), jobs_before);
	assert_int_equal(runs_of(i->id), 0);

	assert_int_equal(db_begin(db, err), 0);
	assert_int_equal(integration_run_submit(db, org_id, user_id, i->id, "manual", &run, &existing, err), 0);
	assert_false(existing);
	run_free(run);
	run = NULL;
	db_rollback(db);
	assert_int_equal(jobs_total(), jobs_before);
	assert_int_equal(runs_of(i->id), 0);

	/* nothing was left queued under the integration's key: the next trigger queues a new run */
	assert_int_equal(integration_run_submit(db, org_id, user_id, i->id, "manual", &run, &existing, err), 0);
	assert_false(existing);
	assert_non_null(run->job_id);
	assert_int_equal(jobs_total(), jobs_before + 1);
	assert_int_equal(runs_of(i->id), 1);
	run_free(run);
	assert_int_equal(ingest_integration_delete(db, org_id, i->id, err), 0);
	integration_free(i);
}

/* A run whose job ended without closing it (cancelled while queued) is shown failed with the
 * job's code, in the run list and in last_run_state; reading writes nothing. */
static void test_run_ended_by_its_job(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	bool conflict = false, existing = false;
	pb_integration *i = make("cancelled-run", NULL, &conflict), *g = NULL;
	pb_run *run = NULL, *raw = NULL, *runs = NULL;
	size_t n = 0;
	pb_cancel_outcome outcome;
	assert_int_equal(integration_run_submit(db, org_id, user_id, i->id, "manual", &run, &existing, err), 0);
	assert_int_equal(jobs_cancel(db, run->job_id, user_id, false, &outcome, err), 0);
	assert_int_equal(outcome, PB_CANCEL_DONE);
	assert_int_equal(integration_runs_list(db, org_id, i->id, &runs, &n, err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(runs[0].state, "failed");
	assert_string_equal(runs[0].error_code, "cancelled");
	assert_non_null(runs[0].finished_at);
	runs_free(runs, n);
	assert_int_equal(integrations_get(db, org_id, i->id, &g, err), 0);
	assert_string_equal(g->last_run_state, "failed");
	integration_free(g);
	assert_int_equal(integration_run_get(db, run->id, &raw, err), 0);
	assert_string_equal(raw->state, "queued");
	run_free(raw);
	run_free(run);
	assert_int_equal(ingest_integration_delete(db, org_id, i->id, err), 0);
	integration_free(i);
}

/* A secret that cannot be opened says whose it is and what to do. */
static void test_open_secret_names_the_integration(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], *plain = NULL;
	size_t len = 0;
	bool conflict = false;
	pb_integration *i = make("sealed", NULL, &conflict);
	pb_config bare = cfg;
	bare.encryption_keys = NULL;
	assert_int_equal(integration_open_secret(&bare, i, &plain, &len, err), PB_EINVAL);
	assert_null(plain);
	assert_non_null(strstr(err, "integration 'sealed'"));
	assert_non_null(strstr(err, "APPLICATION_ENCRYPTION_KEYS"));
	pb_keyring *other = NULL;
	assert_int_equal(pb_keyring_parse("5555555555555555555555555555555555555555555555555555555555555555", &other, err),
			 0);
	bare.encryption_keys = other;
	assert_int_equal(integration_open_secret(&bare, i, &plain, &len, err), PB_EINVAL);
	assert_non_null(strstr(err, "integration 'sealed'"));
	assert_non_null(strstr(err, "save the client secret"));
	pb_keyring_free(other);
	assert_int_equal(ingest_integration_delete(db, org_id, i->id, err), 0);
	integration_free(i);
}

static void test_run_history_kept_to_ten(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	bool conflict = false, existing = false;
	pb_integration *i = make("history", NULL, &conflict);
	char first_id[PB_ID_BUF] = "";
	pb_job *left = NULL;
	/* jobs earlier tests queued would be claimed first */
	while (jobs_claim(db, "t", 60000, tu_all_kinds(), &left, err) == 1) {
		jobs_finish(db, left->id, "t", false, NULL, "drained", "drained", err);
		job_free(left);
	}
	for (int k = 0; k < 13; k++) {
		pb_run *run = NULL, *again = NULL;
		assert_int_equal(integration_run_submit(db, org_id, user_id, i->id, "manual", &run, &existing, err), 0);
		assert_false(existing);
		/* a second trigger while one is queued returns it */
		assert_int_equal(integration_run_submit(db, org_id, user_id, i->id, "manual", &again, &existing, err), 0);
		assert_true(existing);
		assert_string_equal(again->id, run->id);
		if (!first_id[0])
			xsnprintf(first_id, sizeof first_id, "%s", run->id);
		/* close the job and the run as a worker would */
		pb_job *j = NULL;
		assert_int_equal(jobs_claim(db, "t", 60000, tu_all_kinds(), &j, err), 1);
		assert_int_equal(jobs_finish(db, j->id, "t", true, "{}", NULL, NULL, err), 0);
		job_free(j);
		assert_int_equal(integration_run_start(db, run->id, "full", err), 0);
		assert_int_equal(integration_run_finish(db, run->id, true, "{\"workspaces\":1}", "[]", NULL, NULL, err), 0);
		run_free(run);
		run_free(again);
		usleep(2000);   /* distinct created_at */
	}
	pb_run *runs = NULL;
	size_t n = 0;
	assert_int_equal(integration_runs_list(db, org_id, i->id, &runs, &n, err), 0);
	assert_int_equal(n, 10);
	for (size_t k = 1; k < n; k++)
		assert_true(strcmp(runs[k - 1].created_at, runs[k].created_at) >= 0);
	for (size_t k = 0; k < n; k++)
		assert_string_not_equal(runs[k].id, first_id);
	json_t *j = run_json(&runs[0]);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "counts"), "workspaces")), 1);
	json_decref(j);
	runs_free(runs, n);
	pb_integration *g = NULL;
	assert_int_equal(integrations_get(db, org_id, i->id, &g, err), 0);
	assert_non_null(g->last_success_at);
	assert_string_equal(g->last_run_state, "succeeded");
	integration_free(g);
	integration_free(i);
}

/* ---- assets ---- */

static void stage(const char *run, const char *kind, const char *id, const char *ws, const char *name, const char *d)
{
	char err[PB_ERR_MAX];
	assert_int_equal(assets_stage(db, org_id, run, kind, id, ws, name, d, err), 0);
}

static void new_run(const char *integ, char id[PB_ID_BUF])
{
	char err[PB_ERR_MAX], now[PB_TIME_BUF];
	db_stmt *st = NULL;
	pb_now(now);
	assert_int_equal(pb_new_id(id, err), 0);
	assert_int_equal(db_prepare(db, "INSERT INTO integration_runs (id, integration_id, org_id, trigger, state, "
				    "created_at) VALUES (?, ?, ?, 'manual', 'running', ?)", &st, err), 0);
	db_bind_text(st, 1, id, err);
	db_bind_text(st, 2, integ, err);
	db_bind_text(st, 3, org_id, err);
	db_bind_text(st, 4, now, err);
	assert_int_equal(db_exec(db, st, err), 0);
	db_done(st);
}

static long count_active(const char *kind)
{
	pb_asset *v = NULL;
	size_t n = 0;
	char err[PB_ERR_MAX];
	assert_int_equal(assets_list(db, org_id, kind, NULL, &v, &n, err), 0);
	assets_free(v, n);
	return (long)n;
}

static void test_assets_apply(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], run[PB_ID_BUF], a[PB_ID_BUF], b[PB_ID_BUF];
	bool conflict = false;
	assets_counts c;
	pb_integration *i = make("assets", NULL, &conflict);
	/* first run: 2 workspaces, 2 models, 1 report */
	new_run(i->id, run);
	stage(run, "workspace", "w1", "w1", "Sales", "{}");
	stage(run, "workspace", "w2", "w2", "HR", "{}");
	stage(run, "semantic_model", "m1", "w1", "Orders", "{\"tables\":[]}");
	stage(run, "semantic_model", "m2", "w2", "People", "{}");
	stage(run, "report", "r1", "w1", "Revenue", "{\"dataset_id\":\"m1\"}");
	assets_id_for(org_id, "semantic_model", "m1", a);
	assets_id_for(org_id, "report", "r1", b);
	assert_int_equal(assets_stage_edge(db, run, "semantic_model", a, "report", b, err), 0);
	assert_int_equal(assets_stage_edge(db, run, "semantic_model", a, "report", b, err), 0);   /* twice */
	assets_id_for(org_id, "semantic_model", "gone", a);
	assert_int_equal(assets_stage_edge(db, run, "semantic_model", a, "report", b, err), 0);
	assert_int_equal(assets_apply_run(db, org_id, i->id, run, true, "scanner", &c, err), 0);
	assert_int_equal(c.added, 5);
	assert_int_equal(c.changed + c.removed, 0);
	assert_int_equal(c.workspaces, 2);
	assert_int_equal(c.semantic_models, 2);
	assert_int_equal(c.reports, 1);
	/* the staging rows outlive the apply: applying them again (a worker that died before the
	 * run was recorded) changes nothing, then the caller drops them */
	assert_int_equal(assets_apply_run(db, org_id, i->id, run, true, "scanner", &c, err), 0);
	assert_int_equal(c.added + c.changed + c.removed, 0);
	assert_int_equal(c.workspaces + c.semantic_models + c.reports, 5);
	assert_int_equal(assets_unstage(db, run, err), 0);
	pb_asset *got = NULL;
	assert_int_equal(assets_get_by_powerbi_id(db, org_id, "report", "r1", &got, err), 0);
	assert_string_equal(got->id, b);
	asset_free(got);
	db_stmt *st = NULL;
	assert_int_equal(db_prepare(db, "SELECT COUNT(*) FROM lineage_edges WHERE org_id = ?", &st, err), 0);
	db_bind_text(st, 1, org_id, err);
	assert_int_equal(db_row(db, st, err), 1);
	/* the edge staged twice is one edge; the edge from a model never imported is dropped */
	assert_int_equal(db_col_int(st, 0), 1);
	db_done(st);
	/* the set-based write gives the edge an id of pb_new_id's form and a creation time */
	assert_int_equal(db_prepare(db, "SELECT id FROM lineage_edges WHERE org_id = ? AND created_at IS NOT NULL", &st,
				    err), 0);
	db_bind_text(st, 1, org_id, err);
	assert_int_equal(db_row(db, st, err), 1);
	assert_int_equal(strlen(db_col_text(st, 0)), 32);
	assert_int_equal(strspn(db_col_text(st, 0), "0123456789abcdef"), 32);
	assert_int_equal(db_row(db, st, err), 0);
	db_done(st);

	/* incremental run over w2 only: People renamed, nothing else touched */
	new_run(i->id, run);
	stage(run, "_scope", "w2", NULL, "", "{}");
	stage(run, "workspace", "w2", "w2", "HR", "{}");
	stage(run, "semantic_model", "m2", "w2", "Staff", "{}");
	assert_int_equal(assets_apply_run(db, org_id, i->id, run, false, "scanner", &c, err), 0);
	assert_int_equal(c.added + c.removed, 0);
	assert_int_equal(c.changed, 1);
	assert_int_equal(c.semantic_models, 2);

	/* incremental run over w1 in which r1 disappeared: removed, not deleted */
	new_run(i->id, run);
	stage(run, "_scope", "w1", NULL, "", "{}");
	stage(run, "workspace", "w1", "w1", "Sales", "{}");
	stage(run, "semantic_model", "m1", "w1", "Orders", "{\"tables\":[]}");
	assert_int_equal(assets_apply_run(db, org_id, i->id, run, false, "scanner", &c, err), 0);
	assert_int_equal(c.removed, 1);
	assert_int_equal(c.reports, 0);
	assert_int_equal(assets_get_by_powerbi_id(db, org_id, "report", "r1", &got, err), 0);
	assert_string_equal(got->state, "removed");
	asset_free(got);

	/* a run whose apply fails leaves everything as it was: staging a row the table refuses
	 * (an unknown kind) makes the upsert fail inside the transaction */
	long before = count_active(NULL);
	new_run(i->id, run);
	stage(run, "workspace", "w3", "w3", "New", "{}");
	stage(run, "table", "t1", "w3", "Bad", "{}");
	assert_int_not_equal(assets_apply_run(db, org_id, i->id, run, true, "scanner", &c, err), 0);
	assert_int_equal(count_active(NULL), before);
	assert_int_equal(assets_get_by_powerbi_id(db, org_id, "workspace", "w3", &got, err), PB_ENOTFOUND);
	assert_int_equal(assets_get_by_powerbi_id(db, org_id, "workspace", "w2", &got, err), 0);
	assert_string_equal(got->state, "active");
	asset_free(got);
	assert_int_equal(assets_unstage(db, run, err), 0);

	/* a data source named by several batches of one run is staged and counted once, the last
	 * batch's description winning */
	new_run(i->id, run);
	stage(run, "datasource", "ds1", NULL, "Snowflake a", "{}");
	stage(run, "datasource", "ds1", NULL, "Snowflake b", "{}");
	assert_int_equal(assets_apply_run(db, org_id, i->id, run, false, "scanner", &c, err), 0);
	assert_int_equal(c.added, 1);
	assert_int_equal(c.datasources, 1);
	assert_int_equal(assets_get_by_powerbi_id(db, org_id, "datasource", "ds1", &got, err), 0);
	assert_string_equal(got->name, "Snowflake b");
	asset_free(got);
	assert_int_equal(assets_unstage(db, run, err), 0);

	/* list filters: kind and a case-insensitive name part, with LIKE wildcards taken literally */
	pb_asset *v = NULL;
	size_t n = 0;
	assert_int_equal(assets_list(db, org_id, "semantic_model", "ORD", &v, &n, err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "Orders");
	assets_free(v, n);
	assert_int_equal(assets_list(db, org_id, NULL, "%", &v, &n, err), 0);
	assert_int_equal(n, 0);
	assets_free(v, n);
	integration_free(i);
}

/* ---- one asset, several integrations (issue 12 item 4) ---- */

static pb_asset *asset_of(const char *kind, const char *powerbi_id)
{
	char err[PB_ERR_MAX];
	pb_asset *a = NULL;
	assert_int_equal(assets_get_by_powerbi_id(db, org_id, kind, powerbi_id, &a, err), 0);
	return a;
}

/* The integrations that see the asset, as "id:access" in the order assets_seen_by gives. */
static void expect_seen_by(const char *kind, const char *powerbi_id, const char *const *want, size_t n)
{
	char err[PB_ERR_MAX];
	json_t *seen = NULL;
	pb_asset *a = asset_of(kind, powerbi_id);
	assert_int_equal(assets_seen_by(db, a, &seen, err), 0);
	if (json_array_size(seen) != n)
		fail_msg("%s %s is seen by %zu integrations, not %zu", kind, powerbi_id, json_array_size(seen), n);
	for (size_t k = 0; k < n; k++) {
		char got[128];
		json_t *e = json_array_get(seen, k);
		xsnprintf(got, sizeof got, "%s:%s", json_string_value(json_object_get(e, "integration_id")),
			  json_string_value(json_object_get(e, "access")));
		assert_string_equal(got, want[k]);
		assert_int_equal(json_is_true(json_object_get(e, "refresh")), k == 0);
	}
	json_decref(seen);
	asset_free(a);
}

/* Stages what a scanner (rich) or listing (poor) run sees of workspace w1 and applies it. */
static void apply_view(const pb_integration *i, const char *access, bool with_model, assets_counts *c)
{
	char err[PB_ERR_MAX], run[PB_ID_BUF];
	bool rich = !strcmp(access, "scanner");
	new_run(i->id, run);
	stage(run, "workspace", "sw1", "sw1", "Shared", "{}");
	if (with_model)
		stage(run, "semantic_model", "sm1", "sw1", "Orders",
		      rich ? "{\"tables\":[{\"name\":\"Facts\"}],\"upstream_tables\":[{\"table\":\"FACTS\"}]}" : "{\"tables\":[]}");
	stage(run, "datasource", "sds1", NULL, rich ? "Snowflake acme;WH" : "Extension acme;WH",
	      rich ? "{\"kind\":\"Snowflake\"}" : "{\"type\":\"Extension\"}");
	assert_int_equal(assets_apply_run(db, org_id, i->id, run, true, access, c, err), 0);
	assert_int_equal(assets_unstage(db, run, err), 0);
}

static void test_assets_shared_by_integrations(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], sa[80], sb[80], lb[80], la[80];
	bool conflict = false;
	assets_counts c;
	pb_integration *ia = make("shared-scanner", NULL, &conflict), *ib = make("shared-listing", NULL, &conflict);
	xsnprintf(sa, sizeof sa, "%s:scanner", ia->id);
	xsnprintf(la, sizeof la, "%s:listing", ia->id);
	xsnprintf(sb, sizeof sb, "%s:scanner", ib->id);
	xsnprintf(lb, sizeof lb, "%s:listing", ib->id);
	long sources_before = count_active("datasource");

	/* A scans; B lists the same workspace: one asset each, A's description and A's credentials */
	apply_view(ia, "scanner", true, &c);
	assert_int_equal(c.added, 3);
	apply_view(ib, "listing", true, &c);
	assert_int_equal(c.added + c.changed + c.removed, 0);
	assert_int_equal(c.workspaces + c.semantic_models + c.datasources, 3);   /* B sees them too */
	pb_asset *m = asset_of("semantic_model", "sm1");
	assert_string_equal(m->integration_id, ia->id);
	assert_string_equal(m->access, "scanner");
	assert_non_null(strstr(m->details_json, "FACTS"));
	asset_free(m);
	pb_asset *d = asset_of("datasource", "sds1");
	assert_string_equal(d->name, "Snowflake acme;WH");   /* not the listing's poorer name */
	asset_free(d);
	assert_int_equal(count_active("datasource"), sources_before + 1);
	expect_seen_by("semantic_model", "sm1", (const char *const[]){ sa, lb }, 2);
	/* A's runs again, B's again: nothing changes */
	apply_view(ia, "scanner", true, &c);
	assert_int_equal(c.added + c.changed + c.removed, 0);
	apply_view(ib, "listing", true, &c);
	assert_int_equal(c.added + c.changed + c.removed, 0);

	/* the model goes from B's view only: B stops seeing it, A still does */
	apply_view(ib, "listing", false, &c);
	assert_int_equal(c.removed, 0);
	assert_int_equal(c.semantic_models, 0);
	m = asset_of("semantic_model", "sm1");
	assert_string_equal(m->state, "active");
	asset_free(m);
	expect_seen_by("semantic_model", "sm1", (const char *const[]){ sa }, 1);
	apply_view(ib, "listing", true, &c);

	/* A no longer sees it: it passes to B, not removed; B's next run writes its own view */
	apply_view(ia, "scanner", false, &c);
	assert_int_equal(c.removed, 0);
	m = asset_of("semantic_model", "sm1");
	assert_string_equal(m->state, "active");
	assert_string_equal(m->integration_id, ib->id);
	assert_string_equal(m->access, "listing");
	asset_free(m);
	expect_seen_by("semantic_model", "sm1", (const char *const[]){ lb }, 1);
	apply_view(ib, "listing", true, &c);
	assert_int_equal(c.changed, 1);
	m = asset_of("semantic_model", "sm1");
	assert_null(strstr(m->details_json, "FACTS"));
	asset_free(m);

	/* A sees it again: the richer view takes it back, B stays a sighting */
	apply_view(ia, "scanner", true, &c);
	assert_int_equal(c.changed, 1);
	m = asset_of("semantic_model", "sm1");
	assert_string_equal(m->integration_id, ia->id);
	assert_non_null(strstr(m->details_json, "FACTS"));
	asset_free(m);
	expect_seen_by("semantic_model", "sm1", (const char *const[]){ sa, lb }, 2);

	/* B turns into a scanner integration: equal access, A keeps it */
	apply_view(ib, "scanner", true, &c);
	m = asset_of("semantic_model", "sm1");
	assert_string_equal(m->integration_id, ia->id);
	asset_free(m);
	expect_seen_by("semantic_model", "sm1", (const char *const[]){ sa, sb }, 2);
	/* A loses its admin API access (listing now): the model passes to B, whose scanner view stays */
	apply_view(ia, "listing", true, &c);
	m = asset_of("semantic_model", "sm1");
	assert_string_equal(m->integration_id, ib->id);
	assert_string_equal(m->access, "scanner");
	assert_non_null(strstr(m->details_json, "FACTS"));
	asset_free(m);
	expect_seen_by("semantic_model", "sm1", (const char *const[]){ sb, la }, 2);

	/* deleting B: what was B's passes to A */
	assert_int_equal(ingest_integration_delete(db, org_id, ib->id, err), 0);
	m = asset_of("semantic_model", "sm1");
	assert_string_equal(m->integration_id, ia->id);
	assert_string_equal(m->access, "listing");
	asset_free(m);
	expect_seen_by("semantic_model", "sm1", (const char *const[]){ la }, 1);
	/* and with nobody else seeing it, A's run that misses it removes it */
	apply_view(ia, "listing", false, &c);
	assert_int_equal(c.removed, 1);
	m = asset_of("semantic_model", "sm1");
	assert_string_equal(m->state, "removed");
	asset_free(m);
	expect_seen_by("semantic_model", "sm1", NULL, 0);
	assert_int_equal(assets_apply_run(db, org_id, ia->id, "x", true, "admin", &c, err), PB_EINVAL);
	integration_free(ia);
	integration_free(ib);
}

/* ---- tenant back-off (issue 12 item 5) ---- */

static void test_tenant_backoff_store(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	tenant_backoff tb;
	bool waiting = true, held = false;
	const char *tenant = "7E1A0000-0000-4000-8000-0000000000AA";
	assert_int_equal(tenant_backoff_get(db, tenant, TB_SCANNER, &tb, &waiting, err), 0);
	assert_false(waiting);
	/* an hour for the scanner family, case-insensitively; push and other tenants go on */
	assert_int_equal(tenant_backoff_note(db, tenant, TB_SCANNER, 3600, "integration 'a' starting a scan", &tb, err), 0);
	assert_true(tb.wait_ms > 3590 * 1000LL && tb.wait_ms <= 3600 * 1000LL);
	assert_non_null(strstr(tb.reason, "Retry-After 3600 s to integration 'a' starting a scan"));
	assert_int_equal(tenant_backoff_get(db, "7e1a0000-0000-4000-8000-0000000000aa", TB_SCANNER, &tb, &waiting, err), 0);
	assert_true(waiting);
	char until[PB_TIME_BUF];
	xsnprintf(until, sizeof until, "%s", tb.until);
	assert_int_equal(tenant_backoff_get(db, tenant, TB_PUSH, &tb, &waiting, err), 0);
	assert_false(waiting);
	assert_int_equal(tenant_backoff_get(db, "7e1a0000-0000-4000-8000-0000000000bb", TB_SCANNER, &tb, &waiting, err), 0);
	assert_false(waiting);
	/* a shorter wait does not cut the longer one short; a longer one extends it */
	assert_int_equal(tenant_backoff_note(db, tenant, TB_SCANNER, 5, "b", &tb, err), 0);
	assert_string_equal(tb.until, until);
	assert_int_equal(tenant_backoff_note(db, tenant, TB_SCANNER, 7200, "c", &tb, err), 0);
	assert_true(strcmp(tb.until, until) > 0);
	/* a job about to call the family goes back to the queue, saying why and until when */
	pb_job j = { .id = "j" };
	pb_job_ctx ctx = { .db = db, .job = &j };
	assert_int_equal(tenant_backoff_hold_job(&ctx, tenant, TB_SCANNER, NULL, &held), PB_EIO);
	assert_true(held);
	assert_true(ctx.transient);
	assert_string_equal(ctx.error_code, "tenant_backoff");
	assert_true(ctx.retry_after_ms > 7100 * 1000L);
	assert_non_null(strstr(ctx.err, "waiting until "));
	assert_non_null(strstr(ctx.err, "Retry-After 7200 s to c"));
	assert_int_equal(tenant_backoff_hold_job(&ctx, tenant, TB_PUSH, NULL, &held), 0);
	assert_false(held);
	/* a wait that has ended holds nobody and is dropped by the next note */
	db_stmt *st = NULL;
	assert_int_equal(db_prepare(db, "UPDATE tenant_backoff SET wait_until = '2020-01-01T00:00:00.000Z'", &st, err), 0);
	assert_int_equal(db_exec(db, st, err), 0);
	db_done(st);
	assert_int_equal(tenant_backoff_get(db, tenant, TB_SCANNER, &tb, &waiting, err), 0);
	assert_false(waiting);
	assert_int_equal(tenant_backoff_note(db, "other", TB_PUSH, 0, NULL, &tb, err), 0);
	assert_true(tb.wait_ms > 50 * 1000LL);   /* no Retry-After: a minute */
	assert_int_equal(db_prepare(db, "SELECT COUNT(*) FROM tenant_backoff", &st, err), 0);
	assert_int_equal(db_row(db, st, err), 1);
	assert_int_equal(db_col_int(st, 0), 1);
	db_done(st);
	assert_int_equal(tenant_backoff_note(db, "", TB_PUSH, 10, NULL, NULL, err), PB_EINVAL);
}

static int note_retry_after(pb_db *my, int i, void *ctx, char *err)
{
	/* racer i was told to wait (i + 1) hours */
	return tenant_backoff_note(my, "7e1a0000-0000-4000-8000-0000000000cc", TB_SCANNER, 3600L * (i + 1), "a racer",
				   NULL, err);
}

/* Processes on several hosts told by Power BI to wait, at once, for one tenant: one wait is kept,
 * the longest. */
static void test_tenant_backoff_shared_by_concurrent_processes(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	tenant_backoff tb;
	bool waiting = false;
	tu_race(db_path, 4, note_retry_after, NULL);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tenant_backoff WHERE tenant_id = "
				  "'7e1a0000-0000-4000-8000-0000000000cc'", NULL), 1);
	assert_int_equal(tenant_backoff_get(db, "7e1a0000-0000-4000-8000-0000000000cc", TB_SCANNER, &tb, &waiting, err), 0);
	assert_true(waiting);
	assert_true(tb.wait_ms > (4 * 3600 - 60) * 1000LL);
	assert_non_null(strstr(tb.reason, "Retry-After 14400 s"));
}

static void test_integration_ids_are_guids(void **state)
{
	(void)state;
	static const struct { const char *body, *field; } bad[] = {
		{ "{\"tenant_id\":\"contoso.example\"}", "tenant_id" },
		{ "{\"tenant_id\":\"..\"}", "tenant_id" },
		{ "{\"client_id\":\"11111111-aaaa-4000-8000-00000000000\"}", "client_id" },
		{ "{\"client_id\":\"../../v1/x\"}", "client_id" },
	};
	char err[PB_ERR_MAX];
	integration_input in;
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		json_t *b = json_loads(bad[k].body, 0, NULL);
		assert_int_equal(integration_parse(b, false, cfg.min_schedule_interval_s, &in, err), PB_EINVAL);
		if (strncmp(err, bad[k].field, strlen(bad[k].field)))
			fail_msg("%s: %s", bad[k].body, err);
		json_decref(b);
	}
	json_t *b = json_loads("{\"tenant_id\":\"7E1A0000-0000-4000-8000-000000000001\"}", 0, NULL);
	assert_int_equal(integration_parse(b, false, cfg.min_schedule_interval_s, &in, err), 0);
	json_decref(b);
}

/* ---- scan results: the fields core reads come as plain C ---- */

static void test_scan_result_expressions_and_extension(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	json_t *raw = json_loads(
		"{\"workspaces\":[{\"id\":\"w1\",\"datasets\":[{\"id\":\"d1\",\"expressions\":["
		"{\"name\":\"Host\",\"expression\":\"\\\"x.snowflakecomputing.com\\\" meta [IsParameterQuery=true]\"},"
		"{\"expression\":\"nameless\"},{\"Name\":\"Empty\"}]}]}],"
		"\"datasourceInstances\":[{\"datasourceType\":\"Extension\",\"datasourceId\":\"s1\","
		"\"connectionDetails\":{\"extensionDataSourceKind\":\"Snowflake\","
		"\"extensionDataSourcePath\":\"x.snowflakecomputing.com;WH\"}}]}", 0, NULL);
	scan_result res;
	assert_non_null(raw);
	assert_int_equal(scanner_parse_result(raw, &res, err), 0);
	json_decref(raw);   /* nothing in res points into the JSON */
	const scan_dataset *ds = &res.workspaces[0].datasets[0];
	assert_int_equal(ds->nexpressions, 2);
	assert_string_equal(ds->expressions[0].name, "Host");
	assert_string_equal(ds->expressions[0].expression, "\"x.snowflakecomputing.com\" meta [IsParameterQuery=true]");
	assert_string_equal(ds->expressions[1].name, "Empty");
	assert_null(ds->expressions[1].expression);
	assert_int_equal(res.ndatasources, 1);
	assert_string_equal(res.datasources[0].extension_kind, "Snowflake");
	assert_string_equal(res.datasources[0].extension_path, "x.snowflakecomputing.com;WH");
	assert_null(res.datasources[0].kind);
	scan_result_release(&res);
}

/* ---- typed catalog import (Power BI products) ---- */

static cat_product *import_contract(const char *text, const char *type, bool *created)
{
	char err[PB_ERR_MAX];
	pb_contract *c = NULL;
	cat_product *p = NULL;
	assert_int_equal(contract_parse(text, strlen(text), "test", &c, err), 0);
	int rc = type ? catalog_import_typed(db, org_id, c, text, strlen(text), type, &p, created, err)
		      : catalog_import(db, org_id, c, text, strlen(text), &p, created, err);
	if (rc)
		fail_msg("import: %s", err);
	contract_free(c);
	return p;
}

static void test_catalog_import_typed(void **state)
{
	(void)state;
	static const char v1[] = "{\"apiVersion\":\"v3.0.2\",\"kind\":\"DataContract\",\"id\":\"powerbi-x-1\","
				 "\"name\":\"M\",\"version\":\"1.0.0\",\"status\":\"active\","
				 "\"servers\":[{\"server\":\"powerbi\",\"type\":\"powerbi\"}],"
				 "\"schema\":[{\"name\":\"t\",\"properties\":[{\"name\":\"c\",\"logicalType\":\"string\"}]}]}";
	static const char v2[] = "{\"apiVersion\":\"v3.0.2\",\"kind\":\"DataContract\",\"id\":\"powerbi-x-1\","
				 "\"name\":\"M2\",\"version\":\"1.0.0\",\"status\":\"active\","
				 "\"servers\":[{\"server\":\"powerbi\",\"type\":\"powerbi\"}],"
				 "\"schema\":[{\"name\":\"t\",\"properties\":[{\"name\":\"c\",\"logicalType\":\"string\"}]}]}";
	char err[PB_ERR_MAX];
	bool created;
	cat_product *p = import_contract(v1, "powerbi_semantic_model", &created), *q;
	assert_true(created);
	assert_string_equal(p->type, "powerbi_semantic_model");
	assert_int_equal(p->revision, 1);
	/* an untyped re-import keeps the type; a typed one sets it */
	q = import_contract(v2, NULL, &created);
	assert_false(created);
	assert_string_equal(q->id, p->id);
	assert_string_equal(q->type, "powerbi_semantic_model");
	assert_int_equal(q->revision, 2);
	catalog_product_free(q);
	q = import_contract(v1, "powerbi_report", &created);
	assert_string_equal(q->type, "powerbi_report");
	catalog_product_free(q);
	pb_contract *c = NULL;
	assert_int_equal(contract_parse(v1, strlen(v1), "test", &c, err), 0);
	assert_int_equal(catalog_import_typed(db, org_id, c, v1, strlen(v1), "", &q, &created, err), PB_EINVAL);
	contract_free(c);
	assert_int_equal(catalog_product_delete(db, org_id, p->id, err), 0);
	catalog_product_free(p);
	/* a new untyped import is a source product */
	p = import_contract(v1, NULL, &created);
	assert_true(created);
	assert_string_equal(p->type, "source");
	assert_int_equal(catalog_product_delete(db, org_id, p->id, err), 0);
	catalog_product_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wildcards),
		cmocka_unit_test(test_allowed_and_default_rule),
		cmocka_unit_test(test_filter_validation),
		cmocka_unit_test(test_integrations_store),
		cmocka_unit_test(test_schedule_tick_one_catch_up),
		cmocka_unit_test(schedule_tick_fires_once_with_several_tickers),
		cmocka_unit_test(test_run_history_kept_to_ten),
		cmocka_unit_test(test_run_submit_is_atomic),
		cmocka_unit_test(test_run_ended_by_its_job),
		cmocka_unit_test(test_open_secret_names_the_integration),
		cmocka_unit_test(test_assets_apply),
		cmocka_unit_test(test_assets_shared_by_integrations),
		cmocka_unit_test(test_tenant_backoff_store),
		cmocka_unit_test(test_tenant_backoff_shared_by_concurrent_processes),
		cmocka_unit_test(test_integration_ids_are_guids),
		cmocka_unit_test(test_catalog_import_typed),
		cmocka_unit_test(test_scan_result_expressions_and_extension),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
