/* Refreshes: request bodies, resolving imported and published models, the credentials rule
 * (integration service principal, or the publisher's delegated connection, else 400), one
 * job per model while one is in flight, schedules (validation, due, compare-and-swap), and
 * the "refresh" job against the emulator: it takes the entry that was not in the history
 * before its trigger for its own, joins a refresh already running, and reports Power BI's
 * error text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/identity.h"
#include "core/store/integrations.h"
#include "core/flow/refresh.h"
#include "core/flow/worker.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/jobs.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

static char tmpdir[64];
static char db_path[256];   /* the worker's heartbeat opens it by name */
static pb_db *db;
static pb_config cfg;
static char org_id[PB_ID_BUF], ann[PB_ID_BUF], ben[PB_ID_BUF], integ_id[PB_ID_BUF];

/* the emulator's test tenant (tests/fixtures/tenants/test.json) */
#define TENANT "11111111-1111-1111-1111-111111111111"
#define EMU_WS "22222222-0000-0000-0000-000000000001"
#define EMU_DS "33333333-0000-0000-0000-000000000001"
/* Power BI ids of the seeded rows (GUIDs, as Power BI gives them) */
#define WS1 "55555555-0000-4000-8000-000000000001"
#define DS1 "55555555-0000-4000-8000-0000000000d1"
#define DS2 "55555555-0000-4000-8000-0000000000d2"
#define DS3 "55555555-0000-4000-8000-0000000000d3"
#define DS4 "55555555-0000-4000-8000-0000000000d4"

static void exec_sql(const char *sql)
{
	tu_sql(db, sql);
}

static int setup(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	if (tu_db_setup("refresh", tmpdir, db_path, &db, &cfg, err) || tu_acme(db, PB_ROLE_OWNER, org_id, ann, err) ||
	    identity_user_add(db, "ben", "acme", PB_ROLE_MEMBER, NULL, 0, ben, err) || tu_ingestions_on(&cfg, err))
		return tu_setup_failed(err);
	return 0;
}

static int teardown(void **state)
{
	tu_emu_teardown(state);
	return tu_db_teardown(tmpdir, db, &cfg);
}

static json_t *parse(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	return j;
}

static void options(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	static const char *const ok[] = {
		"{}", "{\"notifyOption\":\"MailOnFailure\"}", "{\"wait_timeout\":\"2h\"}", "{\"wait_timeout\":30}",
		"{\"type\":\"Full\"}", "{\"type\":\"dataonly\",\"commitMode\":\"transactional\"}",
		"{\"type\":\"Full\",\"commitMode\":\"PartialBatch\",\"applyRefreshPolicy\":false,\"maxParallelism\":2,"
		"\"retryCount\":2,\"timeout\":\"02:00:00\",\"effectiveDate\":\"2026-11-01\","
		"\"objects\":[{\"table\":\"Sales\",\"partition\":\"Sales-2026\"},{\"table\":\"Date\"}]}",
		"{\"timeout\":\"5:00:00\",\"retryCount\":3}",
		"{\"effectiveDate\":\"2024-02-29\"}", "{\"effectiveDate\":\"2000-02-29\"}",
		"{\"effectiveDate\":\"2026-12-31T23:59:59Z\"}", "{\"effectiveDate\":\"2026-04-30T06:00:00.5\"}",
	};
	/* each bad body, and the field its message must name */
	static const struct { const char *body, *field; } bad[] = {
		{ "{\"notifyOption\":\"Always\"}", "notifyOption" },
		{ "{\"colour\":1}", "colour" },
		{ "{\"wait_timeout\":true}", "wait_timeout" },
		{ "[]", "object" },
		{ "{\"type\":\"Everything\"}", "type" },
		{ "{\"commitMode\":\"Sometimes\"}", "commitMode" },
		{ "{\"commitMode\":\"PartialBatch\"}", "applyRefreshPolicy" },
		{ "{\"commitMode\":\"PartialBatch\",\"applyRefreshPolicy\":true}", "applyRefreshPolicy" },
		{ "{\"applyRefreshPolicy\":\"yes\"}", "applyRefreshPolicy" },
		{ "{\"objects\":[]}", "objects" },
		{ "{\"objects\":[{\"partition\":\"p\"}]}", "objects[0].table" },
		{ "{\"objects\":[{\"table\":\"T\",\"colour\":1}]}", "colour" },
		{ "{\"objects\":[\"T\"]}", "objects[0]" },
		{ "{\"retryCount\":-1}", "retryCount" },
		{ "{\"retryCount\":1.5}", "retryCount" },
		{ "{\"maxParallelism\":0}", "maxParallelism" },
		{ "{\"effectiveDate\":\"yesterday\"}", "effectiveDate" },
		{ "{\"effectiveDate\":\"2026-13-01\"}", "effectiveDate" },
		/* real calendar dates only */
		{ "{\"effectiveDate\":\"2026-02-30\"}", "effectiveDate '2026-02-30' is not a calendar date: February 2026 has 28 days" },
		{ "{\"effectiveDate\":\"2026-02-29\"}", "February 2026 has 28 days" },
		{ "{\"effectiveDate\":\"1900-02-29\"}", "February 1900 has 28 days" },
		{ "{\"effectiveDate\":\"2026-04-31\"}", "April 2026 has 30 days" },
		{ "{\"effectiveDate\":\"2026-01-00\"}", "effectiveDate" },
		{ "{\"effectiveDate\":\"2026-11-01Tnoon\"}", "effectiveDate" },
		{ "{\"effectiveDate\":\"2026-11-01T24:00:00\"}", "effectiveDate" },
		{ "{\"effectiveDate\":\"2026-11-01T12:00:00+02:00\"}", "effectiveDate" },
		{ "{\"effectiveDate\":20261101}", "effectiveDate" },
		{ "{\"timeout\":\"24:00:00\"}", "timeout" },
		{ "{\"timeout\":\"2h\"}", "timeout" },
		{ "{\"timeout\":\"10:00:00\",\"retryCount\":2}", "timeout" },
		{ "{\"type\":\"Full\",\"notifyOption\":\"NoNotification\"}", "notifyOption" },
	};
	assert_int_equal(refresh_options_check(NULL, err), 0);
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		json_t *j = parse(ok[i]);
		if (refresh_options_check(j, err))
			fail_msg("%s: %s", ok[i], err);
		json_decref(j);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *j = parse(bad[i].body);
		assert_int_equal(refresh_options_check(j, err), PB_EINVAL);
		if (!strstr(err, bad[i].field))
			fail_msg("%s: the message does not name %s: %s", bad[i].body, bad[i].field, err);
		json_decref(j);
	}
}

/* An integration (service principal of the emulator's test tenant) and its imported assets. */
static void seed(void)
{
	char sql[4096];
	integration_input in = { .name = "prod", .type = "powerbi", .tenant_id = TENANT,
				 .client_id = "aaaaaaaa-0000-0000-0000-000000000003", .client_secret = "push-secret",
				 .include_personal = -1 };
	pb_integration *i = NULL;
	pb_failure f = { 0 };
	if (integrations_create(db, &cfg, org_id, ann, &in, &i, &f))
		fail_msg("integration: %s", f.message);
	xsnprintf(integ_id, sizeof integ_id, "%s", i->id);
	integration_free(i);
	xsnprintf(sql, sizeof sql,
		  "INSERT INTO assets (id, org_id, integration_id, kind, powerbi_id, workspace_powerbi_id, name, details_json,"
		  " state, created_at, updated_at) VALUES "
		  "('a1', '%s', '%s', 'semantic_model', '" DS1 "', '" WS1 "', 'Sales', '{}', 'active', 'x', 'x'),"
		  "('a2', '%s', NULL, 'semantic_model', '" DS2 "', '" WS1 "', 'Orphan', '{}', 'active', 'x', 'x'),"
		  "('a3', '%s', '%s', 'report', 'rp-1', '" WS1 "', 'Report', '{}', 'active', 'x', 'x'),"
		  /* ids that must never reach a URL */
		  "('a4', '%s', '%s', 'semantic_model', '" DS4 "', '..', 'Dotted', '{}', 'active', 'x', 'x'),"
		  "('a5', '%s', '%s', 'semantic_model', 'ds/../x', '" WS1 "', 'Slashed', '{}', 'active', 'x', 'x')",
		  org_id, integ_id, org_id, org_id, integ_id, org_id, integ_id, org_id, integ_id);
	exec_sql(sql);
	xsnprintf(sql, sizeof sql,
		  "INSERT INTO data_products (id, org_id, contract_id, name, type, contract_text, revision, created_at, "
		  "updated_at) VALUES ('cp1', '%s', 'powerbi:semanticModel:ds-3', 'Published', 'powerbi_semantic_model', "
		  "'{}', 1, 'x', 'x');",
		  org_id);
	exec_sql(sql);
	xsnprintf(sql, sizeof sql,
		  "INSERT INTO output_ports (id, data_product_id, org_id, name, type, server_json, created_at, updated_at) "
		  "VALUES ('op1', 'cp1', '%s', 'p', 'snowflake', '{}', 'x', 'x');",
		  org_id);
	exec_sql(sql);
	xsnprintf(sql, sizeof sql,
		  "INSERT INTO published_models (id, org_id, output_port_id, user_id, job_id, workspace_id, semantic_model_id,"
		  " name, consumer_product_id, published_at) VALUES ('pm1', '%s', 'op1', '%s', 'j1', '" WS1 "', '" DS3 "', "
		  "'Published', 'cp1', 'x')",
		  org_id, ann);
	exec_sql(sql);
}

static void resolve_and_credentials(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_failure f = { 0 };
	refresh_target t;
	seed();
	assert_int_equal(refresh_resolve(db, org_id, "a1", &t, &f), 0);
	assert_false(t.published);
	assert_string_equal(t.dataset_id, DS1);
	assert_string_equal(t.integration_id, integ_id);
	assert_int_equal(refresh_resolve(db, org_id, "pm1", &t, &f), 0);
	assert_true(t.published);
	assert_string_equal(t.dataset_id, DS3);
	assert_string_equal(t.publisher_id, ann);
	/* its consumer data product (how lineage shows it) names it too */
	assert_int_equal(refresh_resolve(db, org_id, "cp1", &t, &f), 0);
	assert_string_equal(t.model_ref, "pm1");
	assert_int_equal(refresh_resolve(db, org_id, "a3", &t, &f), PB_ENOTFOUND);   /* a report */
	assert_int_equal(refresh_resolve(db, org_id, "nope", &t, &f), PB_ENOTFOUND);
	assert_string_equal(pb_failure_code(&f), "not_found");
	assert_int_equal(refresh_resolve(db, "other-org", "a1", &t, &f), PB_ENOTFOUND);
	/* stored Power BI ids that are not GUIDs never reach a URL: refused, naming the model */
	assert_int_equal(refresh_resolve(db, org_id, "a4", &t, &f), PB_ECONFLICT);
	assert_non_null(strstr(f.message, "Dotted"));
	assert_non_null(strstr(f.message, "workspace id"));
	assert_int_equal(refresh_resolve(db, org_id, "a5", &t, &f), PB_ECONFLICT);
	assert_non_null(strstr(f.message, "semantic model id"));

	json_t *reply = NULL;
	assert_int_equal(refresh_submit(db, &cfg, org_id, ann, "a4", NULL, "manual", &reply, &f), PB_ECONFLICT);
	assert_null(reply);
	assert_string_equal(pb_failure_code(&f), "conflict");
	/* a long name cut at a character boundary and a non-ASCII id shown as '?': the answer is
	 * still valid JSON (UTF-8), not an internal error */
	char sql[2048], name[301];
	for (int i = 0; i < 100; i++)
		memcpy(name + 3 * i, "\xe2\x82\xac", 3);   /* 100 x EURO SIGN, 300 bytes */
	name[300] = '\0';
	xsnprintf(sql, sizeof sql,
		  "INSERT INTO assets (id, org_id, integration_id, kind, powerbi_id, workspace_powerbi_id, name, details_json,"
		  " state, created_at, updated_at) VALUES ('a7', '%s', '%s', 'semantic_model', '" DS3 "', "
		  "'\xc3\xbc-ws', '%s', '{}', 'active', 'x', 'x')",
		  org_id, integ_id, name);
	exec_sql(sql);
	assert_int_equal(refresh_submit(db, &cfg, org_id, ann, "a7", NULL, "manual", &reply, &f), PB_ECONFLICT);
	assert_non_null(strstr(f.message, "'?" "?-ws'"));
	assert_true(utf8_valid(f.message, strlen(f.message)));
	exec_sql("DELETE FROM assets WHERE id = 'a7'");
	/* imported without an integration: no credentials */
	assert_int_equal(refresh_submit(db, &cfg, org_id, ann, "a2", NULL, "manual", &reply, &f), PB_EINVAL);
	assert_string_equal(pb_failure_code(&f), "no_credentials");
	assert_non_null(strstr(f.message, "semantic model 'Orphan' in workspace " WS1));
	/* published by ann: ben may not refresh it with ann's connection; the message says whose */
	assert_int_equal(refresh_submit(db, &cfg, org_id, ben, "pm1", NULL, "manual", &reply, &f), PB_EFORBIDDEN);
	assert_string_equal(pb_failure_code(&f), "forbidden");
	assert_non_null(strstr(f.message, "the Power BI connection of ann, who published it"));
	/* ann may; a schedule or event (no person) acts for her */
	assert_int_equal(refresh_submit(db, &cfg, org_id, ann, "pm1", NULL, "manual", &reply, &f), 0);
	const char *first = json_string_value(json_object_get(reply, "job_id"));
	pb_job *j = NULL;
	assert_int_equal(jobs_get(db, first, &j, err), 0);
	json_t *in = parse(j->input);
	assert_string_equal(json_string_value(json_object_get(in, "auth")), "user");
	assert_string_equal(json_string_value(json_object_get(in, "user_id")), ann);
	json_decref(in);
	job_free(j);
	json_t *again = NULL;
	assert_int_equal(refresh_submit(db, &cfg, org_id, NULL, "pm1", NULL, "event", &again, &f), 0);
	assert_string_equal(json_string_value(json_object_get(again, "job_id")), first);   /* in flight: joined */
	assert_true(json_is_true(json_object_get(again, "joined")));
	json_decref(again);
	json_decref(reply);
	/* service principals get no mail from Power BI */
	json_t *mail = parse("{\"notifyOption\":\"MailOnFailure\"}");
	assert_int_equal(refresh_submit(db, &cfg, org_id, ben, "a1", mail, "manual", &reply, &f), PB_EINVAL);
	assert_string_equal(pb_failure_code(&f), "bad_request");
	assert_non_null(strstr(f.message, "integration 'prod'"));
	json_decref(mail);
	/* an imported model goes with the integration's service principal */
	assert_int_equal(refresh_submit(db, &cfg, org_id, ben, "a1", NULL, "manual", &reply, &f), 0);
	assert_int_equal(jobs_get(db, json_string_value(json_object_get(reply, "job_id")), &j, err), 0);
	in = parse(j->input);
	assert_string_equal(json_string_value(json_object_get(in, "auth")), "sp");
	assert_string_equal(json_string_value(json_object_get(in, "integration_id")), integ_id);
	json_decref(in);
	job_free(j);
	json_decref(reply);
	exec_sql("DELETE FROM jobs");
}

static void schedules(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_failure f = { 0 };
	json_t *reply = NULL, *body = parse("{\"schedule\":\"*/5 * * * *\"}");
	assert_int_equal(refresh_schedule_put(db, &cfg, org_id, ann, "a1", body, &reply, &f), PB_EINVAL);
	assert_string_equal(pb_failure_code(&f), "bad_request");
	/* the refusal names what the caller sent, a refresh schedule (not a tenant scan) */
	const char *msg = f.message;
	assert_non_null(strstr(msg, "refresh schedule '*/5 * * * *' runs as often as every 5 min"));
	assert_non_null(strstr(msg, "refresh"));
	assert_null(strstr(msg, "scan"));
	json_decref(body);
	/* an empty schedule is refused, saying how to remove one */
	static const char *const empty[] = { "{\"schedule\":\"\"}", "{\"schedule\":\"  \"}" };
	for (size_t i = 0; i < 2; i++) {
		body = parse(empty[i]);
		assert_int_equal(refresh_schedule_put(db, &cfg, org_id, ann, "a1", body, &reply, &f), PB_EINVAL);
		assert_string_equal(pb_failure_code(&f), "bad_request");
		assert_non_null(strstr(f.message, "{\"schedule\": null}"));
		assert_non_null(strstr(f.message, "DELETE"));
		json_decref(body);
	}
	body = parse("{\"schedule\":\"@daily\"}");
	assert_int_equal(refresh_schedule_put(db, &cfg, org_id, ann, "a1", body, &reply, &f), 0);
	const char *next = json_string_value(json_object_get(reply, "next_run_at"));
	assert_non_null(next);
	assert_non_null(strstr(next, "T00:00:00.000Z"));
	json_decref(reply);
	json_decref(body);
	refresh_due *due = NULL;
	size_t n = 0;
	assert_int_equal(refresh_schedules_due(db, "2000-01-01T00:00:00.000Z", &due, &n, err), 0);
	assert_int_equal(n, 0);
	free(due);
	assert_int_equal(refresh_schedules_due(db, "9999-01-01T00:00:00.000Z", &due, &n, err), 0);
	assert_int_equal(n, 1);
	bool won = false;
	assert_int_equal(refresh_schedule_advance(db, due[0].ref, due[0].next_run_at, "9000-01-01T00:00:00.000Z", &won, err),
			 0);
	assert_true(won);
	/* a second worker that read the same due time loses */
	assert_int_equal(refresh_schedule_advance(db, due[0].ref, due[0].next_run_at, "9000-01-01T00:00:00.000Z", &won, err),
			 0);
	assert_false(won);
	free(due);
	/* the empty texts above left the schedule as it was */
	assert_int_equal(refresh_schedule_get(db, org_id, "a1", &reply, &f), 0);
	assert_string_equal(json_string_value(json_object_get(reply, "schedule")), "@daily");
	json_decref(reply);
	body = parse("{\"schedule\":null}");
	assert_int_equal(refresh_schedule_put(db, &cfg, org_id, ann, "a1", body, &reply, &f), 0);
	assert_true(json_is_null(json_object_get(reply, "schedule")));
	json_decref(reply);
	json_decref(body);
	/* removing needs no credentials: a model whose integration is gone loses its schedule */
	exec_sql("INSERT INTO refresh_schedules (model_ref, org_id, schedule, next_run_at, created_by, created_at, updated_at)"
		 " SELECT 'a2', id, '@daily', '9000-01-01T00:00:00.000Z', NULL, 'x', 'x' FROM organizations");
	assert_int_equal(refresh_schedule_delete(db, org_id, ben, "a2", &reply, &f), 0);
	assert_true(json_is_null(json_object_get(reply, "schedule")));
	json_decref(reply);
	/* a published model's schedule is its publisher's to change */
	body = parse("{\"schedule\":\"@weekly\"}");
	assert_int_equal(refresh_schedule_put(db, &cfg, org_id, ann, "pm1", body, &reply, &f), 0);
	json_decref(reply);
	/* ... and ben setting it is refused as his asking for a refresh is */
	assert_int_equal(refresh_schedule_put(db, &cfg, org_id, ben, "pm1", body, &reply, &f), PB_EFORBIDDEN);
	assert_string_equal(pb_failure_code(&f), "forbidden");
	json_decref(body);
	assert_int_equal(refresh_schedule_delete(db, org_id, ben, "pm1", &reply, &f), PB_EFORBIDDEN);
	assert_string_equal(pb_failure_code(&f), "forbidden");
	assert_int_equal(refresh_schedule_delete(db, org_id, ann, "pm1", &reply, &f), 0);
	json_decref(reply);
	assert_int_equal(refresh_schedule_delete(db, org_id, ann, "nope", &reply, &f), PB_ENOTFOUND);
	assert_string_equal(pb_failure_code(&f), "not_found");
}

/* A refresh job and its run row are written together or not at all: when the run row cannot
 * be written, no job is left behind (it would run without a row in the model's history); a
 * schedule keeps its due time, and an event queues none of its refreshes. */
static void jobs_commit_with_their_rows(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_failure f = { 0 };
	json_t *reply = NULL;
	exec_sql("DELETE FROM jobs; DELETE FROM refresh_runs;");
	tu_refuse(db, "no_runs", "INSERT", "refresh_runs", NULL, "no runs today");
	/* by hand */
	assert_int_not_equal(refresh_submit(db, &cfg, org_id, ann, "a1", NULL, "manual", &reply, &f), 0);
	assert_null(reply);
	assert_false(refresh_refused(&f));
	assert_string_equal(pb_failure_code(&f), "internal");
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs", NULL), 0);
	/* on a schedule: the due time stays due, for the next tick */
	exec_sql("INSERT INTO refresh_schedules (model_ref, org_id, schedule, next_run_at, created_by, created_at, updated_at)"
		 " SELECT 'a1', id, '@daily', '2000-01-01T00:00:00.000Z', NULL, 'x', 'x' FROM organizations");
	assert_int_not_equal(refresh_schedule_tick(db, &cfg, err), 0);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs", NULL), 0);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM refresh_schedules WHERE next_run_at = "
				     "'2000-01-01T00:00:00.000Z'", NULL), 1);
	/* from an event: two models downstream of up1, the second one's row fails */
	char sql[1024];
	xsnprintf(sql, sizeof sql,
		  "INSERT INTO data_products (id, org_id, contract_id, name, type, contract_text, revision, created_at, "
		  "updated_at) VALUES ('up1', '%s', 'up', 'Upstream', 'source', '{}', 1, 'x', 'x');"
		  "INSERT INTO lineage_edges (id, org_id, from_kind, from_id, to_kind, to_id) VALUES "
		  "('e1', '%s', 'data_product', 'up1', 'semantic_model', 'a1'), "
		  "('e2', '%s', 'data_product', 'up1', 'data_product', 'cp1');",
		  org_id, org_id, org_id);
	exec_sql(sql);
	tu_allow(db, "no_runs", "refresh_runs");
	tu_refuse(db, "one_run", "INSERT", "refresh_runs", "(SELECT COUNT(*) FROM refresh_runs) > 0", "one run only");
	json_t *event = parse("{\"type\":\"data_product.updated\",\"data_product_id\":\"up1\"}");
	assert_int_not_equal(refresh_events(db, &cfg, org_id, ann, event, &reply, &f), 0);
	assert_null(reply);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs", NULL), 0);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM refresh_runs", NULL), 0);
	/* without the fault: both queued, each with its row; the schedule's job with its own */
	tu_allow(db, "one_run", "refresh_runs");
	assert_int_equal(refresh_events(db, &cfg, org_id, ann, event, &reply, &f), 0);
	assert_int_equal(json_array_size(json_object_get(reply, "jobs")), 2);
	json_decref(reply);
	json_decref(event);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs j JOIN refresh_runs r ON r.job_id = j.id "
				     "WHERE r.trigger = 'event'", NULL),
			 2);
	exec_sql("DELETE FROM jobs");
	assert_int_equal(refresh_schedule_tick(db, &cfg, err), 0);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs j JOIN refresh_runs r ON r.job_id = j.id "
				     "WHERE r.trigger = 'schedule'", NULL),
			 1);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM refresh_schedules WHERE next_run_at = "
				     "'2000-01-01T00:00:00.000Z'", NULL), 0);
	exec_sql("DELETE FROM jobs; DELETE FROM refresh_schedules; DELETE FROM lineage_edges;"
		 "DELETE FROM data_products WHERE id = 'up1'");
}

/* ---- the job against the emulator ---- */

/* Submits a refresh of ref (id receives the job id); fails the test unless it is queued. */
static void submit_job(const char *ref, const char *body_text, char id[PB_ID_BUF])
{
	pb_failure f = { 0 };
	json_t *reply = NULL, *body = body_text ? parse(body_text) : NULL;
	if (refresh_submit(db, &cfg, org_id, ann, ref, body, "manual", &reply, &f))
		fail_msg("submit: %s %s", pb_failure_code(&f), f.message);
	xsnprintf(id, PB_ID_BUF, "%s", json_string_value(json_object_get(reply, "job_id")));
	json_decref(reply);
	json_decref(body);
}

/* Runs what is due and returns job id as it ended (job_free it). */
static pb_job *finish_job(const char *id)
{
	char err[PB_ERR_MAX];
	pb_worker_opts o = { .worker_id = "t", .lease_ms = 10000, .poll_ms = 10, .once = true };
	long ran = 0;
	if (worker_run(db, &cfg, &o, &ran, err))
		fail_msg("worker: %s", err);
	pb_job *j = NULL;
	assert_int_equal(jobs_get(db, id, &j, err), 0);
	return j;
}

static json_t *run_job(const char *ref, const char *body_text)
{
	char id[PB_ID_BUF];
	submit_job(ref, body_text, id);
	pb_job *j = finish_job(id);
	if (strcmp(j->state, "succeeded"))
		fail_msg("job %s: %s %s", j->state, j->error_code ? j->error_code : "", j->error_message ? j->error_message : "");
	json_t *res = parse(j->result);
	job_free(j);
	return res;
}

/* The emulator with the test tenant, a1 pointing at its Sales Model; false (SKIP) without it. */
static bool emu_ready(void)
{
	char sql[256];
	if (!tu_have_emu()) {
		printf("SKIP: emulator not available\n");
		return false;
	}
	assert_int_equal(emu_load(&tu_emu, "tests/fixtures/tenants/test.json"), 200);
	emu_config(&tu_emu, &cfg);
	cfg.refresh_poll_ms = 100;
	xsnprintf(sql, sizeof sql, "UPDATE assets SET powerbi_id = '%s', workspace_powerbi_id = '%s' WHERE id = 'a1'",
		  EMU_DS, EMU_WS);
	exec_sql(sql);
	return true;
}

/* The test tenant with its Sales workspace on shared capacity (dedicated = false) or on its
 * capacity, loaded into the emulator. */
static void load_sales_capacity(bool dedicated)
{
	char path[512], err[PB_ERR_MAX], *text = NULL;
	tu_src_path(path, sizeof path, "tests/fixtures/tenants/test.json");
	assert_int_equal(read_file(path, 16u << 20, &text, NULL, err), 0);
	json_t *fx = parse(text);
	free(text);
	json_t *ws = json_array_get(json_object_get(json_array_get(json_object_get(fx, "tenants"), 0), "workspaces"), 0);
	assert_string_equal(json_string_value(json_object_get(ws, "id")), EMU_WS);
	if (!dedicated)
		json_object_del(ws, "capacity_id");
	json_object_set_new(ws, "is_on_dedicated_capacity", json_boolean(dedicated));
	text = json_dumps(fx, JSON_COMPACT);
	assert_int_equal(emu_ctl(&tu_emu, "POST", "load", text, NULL), 200);
	free(text);
	json_decref(fx);
}

static void plan(const char *outcome, int duration, const char *code, const char *desc)
{
	char body[512];
	xsnprintf(body, sizeof body,
		  "{\"dataset_id\":\"*\",\"outcome\":\"%s\",\"duration_s\":%d,\"error_code\":\"%s\",\"error_description\":\"%s\"}",
		  outcome, duration, code, desc);
	assert_int_equal(emu_ctl(&tu_emu, "POST", "refresh-plan", body, NULL), 200);
}

static void job_follows_its_own_refresh(void **state)
{
	(void)state;
	if (!emu_ready())
		return;
	/* three earlier refreshes in the history: ours is the new one, not the newest old one */
	for (int i = 0; i < 3; i++) {
		plan("Completed", 0, "", "");
		json_t *r = run_job("a1", NULL);
		json_decref(r);
		assert_int_equal(emu_ctl(&tu_emu, "POST", "advance", NULL, NULL), 200);
	}
	plan("Failed", 1, "ModelRefreshFailed_CredentialsNotSpecified", "No credentials for the Snowflake source");
	json_t *res = run_job("a1", NULL);
	assert_string_equal(json_string_value(json_object_get(res, "status")), "Failed");
	assert_non_null(strstr(json_string_value(json_object_get(res, "error")), "No credentials for the Snowflake source"));
	assert_false(json_is_true(json_object_get(res, "joined")));
	char *st = NULL;
	assert_int_equal(emu_ctl(&tu_emu, "GET", "state?parts=0&sections=models", NULL, &st), 200);
	json_t *s = parse(st);
	json_t *m = NULL, *v;
	size_t k;
	json_array_foreach(json_object_get(s, "models"), k, v)
	if (!strcmp(json_string_value(json_object_get(v, "id")), EMU_DS))
		m = v;
	assert_non_null(m);
	json_t *newest = json_array_get(json_object_get(m, "refreshes"), 0);
	assert_string_equal(json_string_value(json_object_get(res, "request_id")),
			    json_string_value(json_object_get(newest, "requestId")));
	assert_int_equal(json_array_size(json_object_get(m, "refreshes")), 4);
	json_decref(s);
	free(st);
	json_decref(res);
	/* a timeout: still running, not failed */
	plan("Completed", 600, "", "");
	res = run_job("a1", "{\"wait_timeout\":1}");
	assert_string_equal(json_string_value(json_object_get(res, "status")), "Unknown");
	assert_true(json_is_true(json_object_get(res, "still_running")));
	const char *running = json_string_value(json_object_get(res, "request_id"));
	char running_id[128];
	xsnprintf(running_id, sizeof running_id, "%s", running);
	json_decref(res);
	/* asked again while it runs: joined, same refresh */
	res = run_job("a1", "{\"wait_timeout\":1}");
	assert_true(json_is_true(json_object_get(res, "joined")));
	assert_string_equal(json_string_value(json_object_get(res, "request_id")), running_id);
	json_decref(res);
	assert_int_equal(emu_ctl(&tu_emu, "POST", "advance", NULL, NULL), 200);
}

/* A failure whose message is built from the cause already in the job's error buffer keeps
 * that cause whole and once (it was formatted into the buffer it read from: doubled, cut). */
static void job_error_keeps_its_cause_once(void **state)
{
	(void)state;
	static const char prefix[] = "reading the refresh history: ";
	static const char context[] = "refreshing semantic model 'Gone' in workspace " EMU_WS " with integration 'prod': ";
	char sql[1024], id[PB_ID_BUF];
	if (!emu_ready())
		return;
	/* a model Power BI does not know (any more): reading its history answers 404 */
	xsnprintf(sql, sizeof sql,
		  "INSERT INTO assets (id, org_id, integration_id, kind, powerbi_id, workspace_powerbi_id, name, details_json,"
		  " state, created_at, updated_at) VALUES ('a6', '%s', '%s', 'semantic_model', "
		  "'33333333-0000-0000-0000-0000000000ff', '%s', 'Gone', '{}', 'active', 'x', 'x')",
		  org_id, integ_id, EMU_WS);
	exec_sql(sql);
	submit_job("a6", NULL, id);
	pb_job *j = finish_job(id);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->error_code, "powerbi_not_found");
	/* what was refreshed, where and with which credentials, then the step and its cause */
	const char *m = j->error_message, *step = strstr(m, prefix);
	if (strncmp(m, context, sizeof context - 1) || !step || strstr(step + sizeof prefix - 1, "reading the refresh") ||
	    !strstr(m, "PowerBIEntityNotFound") || strlen(m) >= PB_ERR_MAX - 1)
		fail_msg("the message lost its cause or repeats itself: %s", m);
	job_free(j);
	exec_sql("DELETE FROM assets WHERE id = 'a6'");
}

/* Power BI runs an enhanced refresh only on a capacity: refused at submission when the
 * workspace is on shared capacity, and a clear job error when it moved there since. */
static void enhanced_refresh_needs_capacity(void **state)
{
	(void)state;
	char id[PB_ID_BUF];
	pb_failure f = { 0 };
	json_t *reply = NULL, *body = parse("{\"type\":\"Full\",\"commitMode\":\"Transactional\"}");
	if (!emu_ready()) {
		json_decref(body);
		return;
	}
	plan("Completed", 0, "", "");
	load_sales_capacity(false);
	assert_int_equal(refresh_submit(db, &cfg, org_id, ann, "a1", body, "manual", &reply, &f), PB_ECONFLICT);
	assert_string_equal(pb_failure_code(&f), "enhanced_refresh_needs_capacity");
	assert_non_null(strstr(f.message, "workspace 'Sales' is on shared capacity"));
	assert_non_null(strstr(f.message, "standard refresh"));
	assert_non_null(strstr(f.message, "with integration 'prod'"));
	/* nothing was queued; a standard refresh of the same model is fine */
	assert_int_equal(refresh_submit(db, &cfg, org_id, ann, "a1", NULL, "manual", &reply, &f), 0);
	assert_false(json_is_true(json_object_get(reply, "joined")));
	json_decref(reply);
	exec_sql("DELETE FROM jobs");
	/* on a capacity at submission, on shared capacity when the job runs */
	load_sales_capacity(true);
	submit_job("a1", "{\"type\":\"Full\"}", id);
	load_sales_capacity(false);
	pb_job *j = finish_job(id);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->error_code, "enhanced_refresh_needs_capacity");
	assert_non_null(strstr(j->error_message, "workspace 'Sales' is on shared capacity"));
	job_free(j);
	json_decref(body);
	assert_int_equal(emu_load(&tu_emu, "tests/fixtures/tenants/test.json"), 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(options),
		cmocka_unit_test(resolve_and_credentials),
		cmocka_unit_test(schedules),
		cmocka_unit_test(jobs_commit_with_their_rows),
		cmocka_unit_test(job_follows_its_own_refresh),
		cmocka_unit_test(job_error_keeps_its_cause_once),
		cmocka_unit_test(enhanced_refresh_needs_capacity),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
