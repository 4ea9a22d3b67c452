/* Publish: the port's data source read back from the rendered TMDL, connection matching,
 * request validation (400 naming the field), the in-flight collapse, sealed credentials,
 * the publish records (idempotent by job), lineage edges, and the job's early failures
 * (feature off, port gone, no Power BI settings, broken template) through the worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/store/catalog.h"
#include "core/store/connections.h"
#include "core/lang/contract.h"
#include "core/store/identity.h"
#include "core/store/lineage_store.h"
#include "core/flow/publish.h"
#include "core/store/published_models.h"
#include "core/flow/worker.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/jobs.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

static char tmpdir[64], db_path[256];
static pb_db *db;
static pb_config cfg;
static char org_id[PB_ID_BUF], user_id[PB_ID_BUF], other_org[PB_ID_BUF];
static cat_product *product;

static const cat_port *port_named(const char *name)
{
	for (size_t i = 0; i < product->nports; i++)
		if (!strcmp(product->ports[i].name, name))
			return &product->ports[i];
	fail_msg("no port %s", name);
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "", fx[512];
	pb_contract *c = NULL;
	char *text = NULL;
	size_t len = 0;
	bool created;
	tu_src_path(fx, sizeof fx, "tests/fixtures/publish/contoso.odcs.yaml");
	if (tu_db_setup("publish", tmpdir, db_path, &db, &cfg, err) ||
	    tu_acme(db, PB_ROLE_MEMBER, org_id, user_id, err) || identity_org_create(db, "globex", other_org, err) ||
	    read_file(fx, PB_CONTRACT_MAX_BYTES, &text, &len, err) ||
	    contract_parse(text, len, "contoso.odcs.yaml", &c, err) ||
	    catalog_import(db, org_id, c, text, len, &product, &created, err) ||
	    pb_keyring_parse("6666666666666666666666666666666666666666666666666666666666666666", &cfg.encryption_keys,
			     err)) {
		contract_free(c);
		free(text);
		return tu_setup_failed(err);
	}
	contract_free(c);
	free(text);
	cfg.powerbi_web_enabled = true;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	catalog_product_free(product);
	return tu_db_teardown(tmpdir, db, &cfg);
}

static cat_port *load_port(const char *name)
{
	cat_port *p = NULL;
	char err[PB_ERR_MAX];
	if (catalog_port_get(db, org_id, port_named(name)->id, true, &p, err))
		fail_msg("%s", err);
	return p;
}

static void free_port(cat_port *p)
{
	catalog_port_free(p);
}

static void source_is_read_from_the_rendered_model(void **state)
{
	(void)state;
	pb_failure f;
	publish_source s;
	pb_files files = { 0 };
	cat_port *p = load_port("fresh");
	assert_int_equal(publish_port_source(&cfg, p, NULL, RENDER_PARAMS_BODY, &s, &files, &f), PB_OK);
	assert_string_equal(s.type, "Snowflake");
	assert_string_equal(s.host, "newacct-zz99999.snowflakecomputing.com");   /* account -> host */
	assert_string_equal(s.values[1], "FRESH_WH");
	assert_string_equal(s.path, "newacct-zz99999.snowflakecomputing.com;FRESH_WH");
	bool pbism = false;
	for (size_t i = 0; i < files.n; i++)
		pbism |= !strcmp(files.v[i].path, "definition.pbism");
	assert_true(pbism);
	publish_source_release(&s);
	pb_files_release(&files);
	free_port(p);

	p = load_port("lakehouse");
	assert_int_equal(publish_port_source(&cfg, p, NULL, RENDER_PARAMS_BODY, &s, NULL, &f), PB_OK);
	assert_string_equal(s.type, "Databricks");
	assert_string_equal(s.values[1], "/sql/1.0/warehouses/0a1b2c3d4e5f6a7b");
	publish_source_release(&s);
	free_port(p);

	p = load_port("lake-nopath");
	/* what the caller can give is a bad request naming it as the caller writes it */
	assert_int_equal(publish_port_source(&cfg, p, NULL, RENDER_PARAMS_BODY, &s, NULL, &f), PB_EINVAL);
	assert_string_equal(pb_failure_code(&f), "bad_request");
	assert_non_null(strstr(f.message, "HTTP path"));
	assert_non_null(strstr(f.message, "send \"http_path\""));
	assert_int_equal(publish_port_source(&cfg, p, NULL, RENDER_PARAMS_QUERY, &s, NULL, &f), PB_EINVAL);
	assert_non_null(strstr(f.message, "?http_path="));
	assert_int_equal(publish_port_source(&cfg, p, "/sql/1.0/warehouses/x", RENDER_PARAMS_BODY, &s, NULL, &f), PB_OK);
	assert_string_equal(s.values[1], "/sql/1.0/warehouses/x");
	publish_source_release(&s);
	free_port(p);
}

static void connections_match_by_type_server_and_warehouse(void **state)
{
	(void)state;
	publish_source s = { 0 };
	char err[PB_ERR_MAX];
	assert_int_equal(source_describe(&cfg, NULL, "snowflake", &s.desc, err), PB_OK);
	s.type = s.desc->conn_type;
	s.values[0] = s.host = xstrdup("contoso-xy12345.snowflakecomputing.com");
	s.values[1] = xstrdup("ANALYTICS_WH");
	msapi_item c = { .type = "Snowflake", .path = "CONTOSO-XY12345.snowflakecomputing.com;analytics_wh" };
	assert_true(publish_connection_matches(&s, &c));
	c.path = "contoso-xy12345;ANALYTICS_WH";   /* the account identifier names the same host */
	assert_true(publish_connection_matches(&s, &c));
	c.path = "contoso-xy12345.snowflakecomputing.com;OTHER_WH";
	assert_false(publish_connection_matches(&s, &c));
	c.path = "other.snowflakecomputing.com;ANALYTICS_WH";
	assert_false(publish_connection_matches(&s, &c));
	c.path = "contoso-xy12345.snowflakecomputing.com";   /* no second part */
	assert_false(publish_connection_matches(&s, &c));
	c = (msapi_item){ .type = "Databricks", .path = "contoso-xy12345.snowflakecomputing.com;ANALYTICS_WH" };
	assert_false(publish_connection_matches(&s, &c));
	c.type = NULL;
	assert_false(publish_connection_matches(&s, &c));
	publish_source_release(&s);
}

#define WS   "a0000000-0000-4000-8000-000000000001"
#define CONN "c0000000-0000-4000-8000-000000000001"

/* publish_submit without the Power BI access check (publish_check_access needs Microsoft:
 * tests/integration/test_publish.py covers it): read the request, then queue it. */
static int submit_text(const char *port, const char *body_text, char job_id[PB_ID_BUF], bool *existing, char *err)
{
	json_t *body = json_loads(body_text, 0, NULL);
	assert_non_null(body);
	publish_request rq;
	int rc = publish_request_read(db, &cfg, org_id, user_id, port_named(port)->id, body, &rq, err);
	if (!rc)
		rc = publish_request_queue(db, org_id, user_id, &rq, job_id, existing, err);
	publish_request_release(&rq);
	json_decref(body);
	return rc;
}

static void requests_are_checked_field_by_field(void **state)
{
	(void)state;
	static const struct {
		const char *port, *body, *word;
	} bad[] = {
		{ "fresh", "{\"connection_id\":\"" CONN "\"}", "workspace_id" },
		{ "fresh", "{\"workspace_id\":\"" WS "\"}", "connection_id" },
		{ "fresh", "{\"workspace_id\":\"" WS "\",\"connection_id\":\"" CONN "\",\"color\":1}", "color" },
		{ "fresh", "{\"workspace_id\":\"  \",\"connection_id\":\"" CONN "\"}", "workspace_id" },
		{ "fresh", "{\"workspace_id\":\"" WS "\",\"name\":\"a\\nb\",\"connection_id\":\"" CONN "\"}", "name" },
		{ "fresh", "{\"workspace_id\":\"" WS "\",\"connection\":{\"credential_type\":\"token\",\"token\":\"t\"}}",
		  "connection.credential_type" },
		{ "fresh", "{\"workspace_id\":\"" WS "\",\"connection\":{\"credential_type\":\"basic\",\"username\":\"u\"}}",
		  "connection.password" },
		{ "fresh", "{\"workspace_id\":\"" WS "\",\"connection\":{\"credential_type\":\"basic\",\"username\":\"u\","
			   "\"password\":\"p\",\"extra\":1}}",
		  "extra" },
		{ "lakehouse", "{\"workspace_id\":\"" WS "\",\"connection\":{\"credential_type\":\"basic\",\"username\":"
			       "\"u\",\"password\":\"p\"}}",
		  "connection.credential_type" },
		{ "lakehouse", "{\"workspace_id\":\"" WS "\",\"connection\":{\"credential_type\":\"service_principal\","
			       "\"tenant_id\":\"t\",\"client_id\":\"c\"}}",
		  "connection.client_secret" },
		{ "lake-nopath", "{\"workspace_id\":\"" WS "\",\"connection_id\":\"" CONN "\"}", "http_path" },
		/* Microsoft ids go into URLs: GUIDs only, so ".." cannot call another endpoint */
		{ "fresh", "{\"workspace_id\":\"..\",\"connection_id\":\"" CONN "\"}", "workspace_id must be a Power BI "
										     "workspace id" },
		{ "fresh", "{\"workspace_id\":\"" WS "/semanticModels\",\"connection_id\":\"" CONN "\"}",
		  "workspace_id must be" },
		{ "fresh", "{\"workspace_id\":\"w\",\"connection_id\":\"" CONN "\"}", "workspace_id must be" },
		{ "fresh", "{\"workspace_id\":\"" WS "\",\"connection_id\":\"../connections\"}", "connection_id must be" },
		{ "fresh", "{\"workspace_id\":\"" WS "?x=1\",\"connection_id\":\"" CONN "\"}", "workspace_id must be" },
		{ "lakehouse", "{\"workspace_id\":\"" WS "\",\"connection\":{\"credential_type\":\"service_principal\","
			       "\"tenant_id\":\"contoso\",\"client_id\":\"" CONN "\",\"client_secret\":\"s\"}}",
		  "connection.tenant_id must be" },
		{ "lakehouse", "{\"workspace_id\":\"" WS "\",\"connection\":{\"credential_type\":\"service_principal\","
			       "\"tenant_id\":\"" WS "\",\"client_id\":\"%2e%2e\",\"client_secret\":\"s\"}}",
		  "connection.client_id must be" },
		/* http_path is a Databricks setting */
		{ "fresh", "{\"workspace_id\":\"" WS "\",\"connection_id\":\"" CONN "\",\"http_path\":\"/sql/1.0/x\"}",
		  "http_path is only for output ports whose source takes it" },
	};
	char id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = submit_text(bad[i].port, bad[i].body, id, &existing, err);
		if (rc != PB_EINVAL || !strstr(err, bad[i].word))
			fail_msg("case %zu: rc %d, message %s (wanted %s)", i, rc, err, bad[i].word);
	}
	static const char body[] = "{\"workspace_id\":\"" WS "\",\"connection_id\":\"" CONN "\"}";
	pb_failure f;
	assert_int_equal(publish_submit(db, &cfg, other_org, user_id, port_named("fresh")->id, body, sizeof body - 1, id,
					&existing, &f),
			 PB_ENOTFOUND);
	assert_string_equal(pb_failure_code(&f), "not_found");
	/* not JSON: a bad request, before anything else is asked */
	assert_int_equal(publish_submit(db, &cfg, org_id, user_id, port_named("fresh")->id, "{not json", 9, id, &existing,
					&f),
			 PB_EINVAL);
	assert_string_equal(pb_failure_code(&f), "bad_request");
}

static void same_request_in_flight_is_one_job_and_credentials_are_sealed(void **state)
{
	(void)state;
	const char *body = "{\"workspace_id\":\"" WS "\",\"connection\":{\"credential_type\":\"basic\","
			   "\"username\":\"svc\",\"password\":\"hunter2-secret\"}}";
	char a[PB_ID_BUF], b[PB_ID_BUF], c[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	pb_job *j = NULL;
	assert_int_equal(submit_text("fresh", body, a, &existing, err), PB_OK);
	assert_false(existing);
	assert_int_equal(submit_text("fresh", body, b, &existing, err), PB_OK);
	assert_true(existing);
	assert_string_equal(a, b);
	/* another name is another publish */
	assert_int_equal(submit_text("fresh", "{\"workspace_id\":\"" WS "\",\"name\":\"Other\",\"connection_id\":\"" CONN
				     "\"}", c, &existing, err),
			 PB_OK);
	assert_false(existing);
	assert_string_not_equal(a, c);
	assert_int_equal(jobs_get(db, a, &j, err), PB_OK);
	assert_null(strstr(j->input, "hunter2"));
	assert_null(strstr(j->private_input, "hunter2"));
	json_t *in = json_loads(j->input, 0, NULL);
	/* the data product's name, with the port's: the product has several ports */
	assert_string_equal(json_string_value(json_object_get(in, "name")), "Contoso sales \xe2\x80\x93 fresh");
	assert_string_equal(json_string_value(json_object_get(in, "credential_type")), "basic");
	json_decref(in);
	char *plain = NULL;
	size_t len = 0;
	assert_int_equal(pb_open(cfg.encryption_keys, j->private_input, "publish-credentials", &plain, &len, err), PB_OK);
	assert_non_null(strstr(plain, "hunter2-secret"));
	pb_secret_free(plain, len);
	job_free(j);
	/* end them so later tests start with an empty queue */
	pb_job *claimed = NULL;
	while (jobs_claim(db, "t", 1000, tu_all_kinds(), &claimed, err) == 1) {
		assert_int_equal(jobs_finish(db, claimed->id, "t", false, NULL, "x", "x", err), PB_OK);
		job_free(claimed);
	}
	assert_int_equal(jobs_get(db, a, &j, err), PB_OK);
	assert_null(j->private_input);   /* erased when the job ended */
	job_free(j);
}

/* Imports a one-server contract named name; returns its only port (caller frees the product). */
static cat_product *import_single(const char *id, const char *name)
{
	char text[4096], err[PB_ERR_MAX];
	pb_contract *c = NULL;
	cat_product *p = NULL;
	bool created;
	xsnprintf(text, sizeof text,
		  "apiVersion: v3.1.0\nkind: DataContract\nid: %s\nname: \"%s\"\nversion: 1.0.0\nstatus: active\n"
		  "servers:\n  - server: production\n    type: snowflake\n    account: acct-1\n    database: DB\n"
		  "    schema: S\n    warehouse: WH\nschema:\n  - name: orders\n    physicalName: ORDERS\n"
		  "    properties:\n      - name: id\n        logicalType: integer\n",
		  id, name);
	if (contract_parse(text, strlen(text), "single.yaml", &c, err) ||
	    catalog_import(db, org_id, c, text, strlen(text), &p, &created, err))
		fail_msg("%s", err);
	contract_free(c);
	assert_int_equal(p->nports, 1);
	return p;
}

/* The name of the job a body-without-name publish of port queues. */
static void queued_name(const char *port_id, char *out, size_t size)
{
	char err[PB_ERR_MAX], id[PB_ID_BUF];
	bool existing;
	pb_job *j = NULL;
	publish_request rq;
	json_t *body = json_pack("{s:s, s:s}", "workspace_id", WS, "connection_id", CONN);
	assert_int_equal(publish_request_read(db, &cfg, org_id, user_id, port_id, body, &rq, err), PB_OK);
	assert_int_equal(publish_request_queue(db, org_id, user_id, &rq, id, &existing, err), PB_OK);
	publish_request_release(&rq);
	json_decref(body);
	assert_int_equal(jobs_get(db, id, &j, err), PB_OK);
	json_t *in = json_loads(j->input, 0, NULL);
	xsnprintf(out, size, "%s", json_string_value(json_object_get(in, "name")));
	json_decref(in);
	job_free(j);
}

static void default_name_is_the_data_product_s(void **state)
{
	(void)state;
	char name[PB_PUBLISH_NAME_MAX + 1];
	/* one port: the product's name, not the server's ("production") */
	cat_product *p = import_single("urn:test:orders", "Orders");
	queued_name(p->ports[0].id, name, sizeof name);
	assert_string_equal(name, "Orders");
	catalog_product_free(p);
	/* several ports: product – port */
	queued_name(port_named("analytics")->id, name, sizeof name);
	assert_string_equal(name, "Contoso sales \xe2\x80\x93 analytics");
	/* a long name is cut to PB_PUBLISH_NAME_MAX bytes at a character boundary */
	char longname[400];
	for (int i = 0; i < 150; i++)   /* é, 2 bytes: 300 bytes in all */
		memcpy(longname + 2 * i, "\xc3\xa9", 2);
	longname[300] = '\0';
	p = import_single("urn:test:long", longname);
	queued_name(p->ports[0].id, name, sizeof name);
	assert_int_equal(strlen(name), PB_PUBLISH_NAME_MAX);
	assert_true(utf8_valid(name, strlen(name)));
	catalog_product_free(p);
}

/* The publish job records the contract version and revision of the text it built the model
 * from: the port read with its contract gives them from the same row (no read of the product at
 * the end, which could see a later import). */
static void port_with_contract_names_its_product_revision(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	cat_port *port = NULL;
	cat_product *p = import_single("urn:test:revision", "Revision one");
	char port_id[PB_ID_BUF];
	xsnprintf(port_id, sizeof port_id, "%s", p->ports[0].id);
	catalog_product_free(p);
	assert_int_equal(catalog_port_get(db, org_id, port_id, true, &port, err), 0);
	assert_string_equal(port->product_name, "Revision one");
	assert_string_equal(port->product_version, "1.0.0");
	assert_int_equal(port->product_revision, 1);
	assert_non_null(strstr(port->contract_text, "Revision one"));
	catalog_port_free(port);
	/* imported again: the next revision, with its text */
	catalog_product_free(import_single("urn:test:revision", "Revision two"));
	assert_int_equal(catalog_port_get(db, org_id, port_id, true, &port, err), 0);
	assert_string_equal(port->product_name, "Revision two");
	assert_int_equal(port->product_revision, 2);
	assert_non_null(strstr(port->contract_text, "Revision two"));
	catalog_port_free(port);
	/* without the contract: none of it */
	assert_int_equal(catalog_port_get(db, org_id, port_id, false, &port, err), 0);
	assert_null(port->contract_text);
	assert_null(port->product_name);
	assert_int_equal(port->product_revision, 0);
	catalog_port_free(port);
}

/* ---- the publish's user session: the connection and its token in one read ---- */

#define TENANT_ID "11111111-1111-1111-1111-111111111111"

static int refreshes;

/* conn_refresh_fn: a new token pair, counted */
static int refresh_counted(void *ctx, const char *refresh_token, entra_token *out, pb_failure *f)
{
	(void)ctx;
	refreshes++;
	if (strcmp(refresh_token, "rt-1"))
		return pb_fail(f, PB_ECONFLICT, "needs_reconnect", "unexpected refresh token");
	memset(out, 0, sizeof *out);
	out->access_token = xstrdup("at-2");
	out->refresh_token = xstrdup("rt-2");
	out->expires_at = pb_epoch_ms() / 1000 + 3600;
	return out->access_token && out->refresh_token ? PB_OK : pb_fail(f, PB_ENOMEM, NULL, "out of memory");
}

/* conn_find then conn_token_found: *token (new) and how far its generation is past the one
 * conn_find read (*moved), or the failure's code in code. */
static int found_token(const char *user, char **token, long long *moved, char code[PB_CODE_MAX])
{
	char err[PB_ERR_MAX];
	pbi_conn c;
	pb_failure f;
	long long gen = -1;
	*token = NULL;
	code[0] = '\0';
	assert_int_equal(conn_find(db, org_id, user, TENANT_ID, &c, err), 0);
	int rc = conn_token_found(db, cfg.encryption_keys, &c, refresh_counted, NULL, token, &gen, &f);
	if (rc)
		xsnprintf(code, PB_CODE_MAX, "%s", pb_failure_code(&f));
	*moved = gen - c.token_gen;
	conn_release(&c);
	return rc;
}

/* conn_find reads the sealed tokens with the row; conn_token_found takes a valid one from that
 * read, refreshes an expired one as conn_token does, and answers a stored needs_reconnect. */
static void session_token_comes_with_the_connection(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], id[PB_ID_BUF], code[PB_CODE_MAX], *token = NULL, sql[256];
	const char *user = user_id;
	long long moved = -1;
	entra_token tok = { .access_token = "at-1", .refresh_token = "rt-1", .scope = "s",
			    .expires_at = pb_epoch_ms() / 1000 + 3600 };
	assert_int_equal(conn_save(db, cfg.encryption_keys, org_id, user, TENANT_ID, "app", &tok, id, err), 0);
	refreshes = 0;
	assert_int_equal(found_token(user, &token, &moved, code), 0);
	assert_string_equal(token, "at-1");
	assert_int_equal(refreshes, 0);
	assert_int_equal(moved, 0);
	pb_secret_free(token, strlen(token));
	/* expired: refreshed once, the new token stored */
	xsnprintf(sql, sizeof sql, "UPDATE user_datasource_connection SET expires_at = '2020-01-01T00:00:00.000Z' "
		  "WHERE id = '%s'", id);
	tu_sql(db, sql);
	assert_int_equal(found_token(user, &token, &moved, code), 0);
	assert_string_equal(token, "at-2");
	assert_int_equal(refreshes, 1);
	assert_int_equal(moved, 1);
	pb_secret_free(token, strlen(token));
	assert_int_equal(found_token(user, &token, &moved, code), 0);
	assert_string_equal(token, "at-2");
	assert_int_equal(refreshes, 1);
	pb_secret_free(token, strlen(token));
	/* marked needs_reconnect: its stored reason, no refresh */
	assert_int_equal(conn_mark_needs_reconnect(db, id, CONN_APP_CHANGED, err), 0);
	assert_int_equal(found_token(user, &token, &moved, code), PB_ECONFLICT);
	assert_string_equal(code, "needs_reconnect");
	assert_null(token);
	assert_int_equal(refreshes, 1);
}

static void records_are_written_once_per_job_and_listed_newest_first(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pm_ids one, again, two;
	const char *port = port_named("analytics")->id;
	pm_record r = { .org_id = org_id, .user_id = user_id, .job_id = "job-a", .output_port_id = port,
			.workspace_id = "ws", .semantic_model_id = "model-1", .name = "Sales", .web_url = "https://x/1",
			.connection_id = "conn", .source_name = "Contoso sales" };
	assert_int_equal(published_model_record(db, &r, &one, err), PB_OK);
	assert_int_equal(published_model_record(db, &r, &again, err), PB_OK);   /* resumed finalizing */
	assert_string_equal(one.consumer_product_id, again.consumer_product_id);
	assert_string_equal(one.agreement_id, again.agreement_id);
	assert_string_equal(one.published_id, again.published_id);
	assert_int_equal(tu_count(db, "SELECT count(*) FROM published_models WHERE job_id = ?", "job-a"), 1);
	assert_int_equal(tu_count(db, "SELECT count(*) FROM lineage_edges WHERE to_id = ?", one.consumer_product_id), 1);
	assert_int_equal(tu_count(db, "SELECT count(*) FROM agreements WHERE state = 'approved' AND consumer_product_id = ?",
			       one.consumer_product_id),
			 1);
	assert_int_equal(tu_count(db, "SELECT count(*) FROM data_products WHERE type = 'powerbi_semantic_model' AND id = ?",
			       one.consumer_product_id),
			 1);
	usleep(5000);   /* published_at has millisecond resolution */
	r.job_id = "job-b";
	r.semantic_model_id = "model-2";
	r.name = "Sales (2)";
	r.web_url = NULL;
	assert_int_equal(published_model_record(db, &r, &two, err), PB_OK);
	assert_string_not_equal(one.consumer_product_id, two.consumer_product_id);
	json_t *list = NULL;
	assert_int_equal(published_models_list_json(db, org_id, port, &list, err), PB_OK);
	json_t *models = json_object_get(list, "models");
	assert_int_equal(json_array_size(models), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(models, 0), "name")), "Sales (2)");
	assert_true(json_is_null(json_object_get(json_array_get(models, 0), "web_url")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(models, 1), "job_id")), "job-a");
	json_decref(list);
	assert_int_equal(published_models_list_json(db, other_org, port, &list, err), PB_OK);
	assert_int_equal(json_array_size(json_object_get(list, "models")), 0);
	json_decref(list);
	pm_record bad = r;
	bad.semantic_model_id = NULL;
	assert_int_equal(published_model_record(db, &bad, &two, err), PB_EINVAL);
}

static void lineage_edges_are_added_once(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	assert_int_equal(lineage_edge_add(db, org_id, "output_port", "p-1", "semantic_model", "m-1", err), PB_OK);
	assert_int_equal(lineage_edge_add(db, org_id, "output_port", "p-1", "semantic_model", "m-1", err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT count(*) FROM lineage_edges WHERE from_id = ?", "p-1"), 1);
	assert_int_equal(lineage_edge_add(db, org_id, "output_port", "", "semantic_model", "m-1", err), PB_EINVAL);
	assert_int_equal(lineage_edge_add(db, org_id, NULL, "p-1", "semantic_model", "m-1", err), PB_EINVAL);
}

#define BROKEN_MAIN "-- broken\nreturn function(ctx)\n  return {\nend\n"

/* cfg with the admin template folder <tmpdir>/<sub> (its path into tdir, which must outlive the
 * result) holding main.lua = text. */
static pb_config with_main_template(const char *sub, const char *text, char tdir[128])
{
	char path[192], err[PB_ERR_MAX];
	xsnprintf(tdir, 128, "%s/%s", tmpdir, sub);
	xsnprintf(path, sizeof path, "%s/main.lua", tdir);
	if (tu_write_file(path, text, strlen(text), err))
		fail_msg("%s", err);
	pb_config c = cfg;
	c.template_path = tdir;
	return c;
}

/* Submits a publish of port and runs the worker once; returns the finished job. */
static pb_job *run_once(const char *port, const char *name, const pb_config *c)
{
	char id[PB_ID_BUF], err[PB_ERR_MAX], body[256];
	bool existing;
	long ran = 0;
	pb_job *j = NULL;
	xsnprintf(body, sizeof body, "{\"workspace_id\":\"" WS "\",\"name\":\"%s\",\"connection_id\":\"" CONN "\"}", name);
	assert_int_equal(submit_text(port, body, id, &existing, err), PB_OK);
	pb_worker_opts o = { .worker_id = "unit", .once = true, .lease_ms = 5000 };
	if (worker_run(db, c, &o, &ran, err))
		fail_msg("%s", err);
	assert_int_equal(jobs_get(db, id, &j, err), PB_OK);
	return j;
}

static void early_failures_are_plain(void **state)
{
	(void)state;
	pb_config off = cfg;
	off.powerbi_web_enabled = false;
	pb_job *j = run_once("analytics", "off", &off);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->error_code, "feature_disabled");
	job_free(j);
	/* the org has no Power BI settings: validating passes, the session cannot open */
	j = run_once("analytics", "no settings", &cfg);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->phase, "validating");
	assert_string_equal(j->error_code, "not_configured");
	job_free(j);
	/* a broken template fails the job with the template's file and line */
	char tdir[128];
	pb_config tpl = with_main_template("templates", BROKEN_MAIN, tdir);
	j = run_once("analytics", "broken", &tpl);
	assert_string_equal(j->error_code, "template_failed");
	assert_non_null(strstr(j->error_message, "main.lua:"));
	job_free(j);
}

static void sql_exec(const char *sql)
{
	tu_sql(db, sql);
}

/* A render that fails says whose fault it is: the server's templates (template_failed, 500,
 * with the file and line), what the caller gave (bad_request naming ?http_path=), or pbiport
 * (a stored contract that no longer reads: internal). Retired ports are not dry-run. */
static void render_failures_say_whose_fault(void **state)
{
	(void)state;
	char tdir[128], sql[512];
	pb_failure f;
	publish_source s;
	pb_files files = { 0 };
	pb_config tpl = with_main_template("broken", BROKEN_MAIN, tdir);
	cat_port *p = load_port("fresh");
	int rc = publish_port_source(&tpl, p, NULL, RENDER_PARAMS_BODY, &s, NULL, &f);
	if (rc != PB_EINTERNAL)
		fail_msg("rc %d: %s", rc, f.message);
	assert_string_equal(pb_failure_code(&f), "template_failed");
	assert_non_null(strstr(f.message, "main.lua:"));
	/* templates whose output is empty of tables: theirs too, though it renders */
	tpl = with_main_template("empty", "return function(ctx) return { ['definition.pbism'] = '{}' } end\n", tdir);
	assert_int_equal(publish_port_source(&tpl, p, NULL, RENDER_PARAMS_BODY, &s, NULL, &f), PB_EINTERNAL);
	assert_string_equal(pb_failure_code(&f), "template_failed");
	free_port(p);

	const char *lake = port_named("lake-nopath")->id;
	render_opts q = { .params = RENDER_PARAMS_QUERY };
	assert_int_equal(publish_dry_run(db, &cfg, org_id, lake, &q, &files, &f), PB_EINVAL);
	assert_string_equal(pb_failure_code(&f), "bad_request");
	assert_non_null(strstr(f.message, "?http_path="));
	render_value path = { "http_path", "/sql/1.0/warehouses/x" };
	q.values = &path;
	q.nvalues = 1;
	assert_int_equal(publish_dry_run(db, &cfg, org_id, lake, &q, &files, &f), PB_OK);
	assert_true(files.n > 0);
	pb_files_release(&files);
	assert_int_equal(publish_dry_run(db, &cfg, other_org, lake, &q, &files, &f), PB_ENOTFOUND);

	xsnprintf(sql, sizeof sql, "UPDATE output_ports SET retired_at = '2020-01-01T00:00:00.000Z' WHERE id = '%s'", lake);
	sql_exec(sql);
	assert_int_equal(publish_dry_run(db, &cfg, org_id, lake, &q, &files, &f), PB_ECONFLICT);
	assert_string_equal(pb_failure_code(&f), "port_retired");
	xsnprintf(sql, sizeof sql, "UPDATE output_ports SET retired_at = NULL WHERE id = '%s'", lake);
	sql_exec(sql);

	sql_exec("UPDATE data_products SET contract_text = 'apiVersion: [' || contract_text WHERE type <> "
		 "'powerbi_semantic_model'");
	assert_int_equal(publish_dry_run(db, &cfg, org_id, lake, &q, &files, &f), PB_EINTERNAL);
	sql_exec("UPDATE data_products SET contract_text = substr(contract_text, 14) WHERE type <> "
		 "'powerbi_semantic_model'");
	assert_int_equal(publish_dry_run(db, &cfg, org_id, lake, &q, &files, &f), PB_OK);
	pb_files_release(&files);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(source_is_read_from_the_rendered_model),
		cmocka_unit_test(connections_match_by_type_server_and_warehouse),
		cmocka_unit_test(requests_are_checked_field_by_field),
		cmocka_unit_test(same_request_in_flight_is_one_job_and_credentials_are_sealed),
		cmocka_unit_test(default_name_is_the_data_product_s),
		cmocka_unit_test(port_with_contract_names_its_product_revision),
		cmocka_unit_test(session_token_comes_with_the_connection),
		cmocka_unit_test(records_are_written_once_per_job_and_listed_newest_first),
		cmocka_unit_test(lineage_edges_are_added_once),
		cmocka_unit_test(early_failures_are_plain),
		cmocka_unit_test(render_failures_say_whose_fault),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
