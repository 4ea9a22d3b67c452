/* The lifecycle stores (core/store/published_models.h, agreements.h, drift_records.h): the
 * 0016 migration over existing rows (agreement ids kept, connection_created derived), the
 * definition and contract a publish records, lifecycle claims, an update's and an unpublish's
 * record (the agreement terminated, the consumer product retired, the lists leaving it out),
 * the connection still in use, drift and update marks (new or seen), bounded diffs, the drift
 * check's schedule and asset products' drift, and the schema diff of two contracts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/drift.h"
#include "core/lang/contract.h"
#include "core/store/agreements.h"
#include "core/store/catalog.h"
#include "core/store/drift_records.h"
#include "core/store/identity.h"
#include "core/store/published_models.h"
#include "runtime/db.h"
#include "runtime/page.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

static char tmpdir[64];
static pb_db *db;
static char org_id[PB_ID_BUF], other_org[PB_ID_BUF], ann[PB_ID_BUF], bob[PB_ID_BUF];
static cat_product *product;
static int seq;

static const char contract_text[] =
	"apiVersion: v3.1.0\nkind: DataContract\nid: urn:test:pm\nname: Orders\nversion: 2.0.0\nstatus: active\n"
	"servers:\n  - server: prod\n    type: snowflake\n    host: acct.snowflakecomputing.com\n    database: D\n"
	"    schema: S\n    warehouse: W\n"
	"schema:\n  - name: orders\n    properties:\n      - name: id\n        logicalType: integer\n";

static int setup(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	pb_contract *c = NULL;
	bool created;
	if (tu_mkdtemp(tmpdir, sizeof tmpdir, "pm") ||
	    tu_db_open_migrated(tmpdir, "pm.db", NULL, 0, &db, err) || identity_org_create(db, "acme", org_id, err) ||
	    identity_org_create(db, "globex", other_org, err) ||
	    identity_user_add(db, "ann", "acme", PB_ROLE_MEMBER, NULL, 0, ann, err) ||
	    identity_user_add(db, "bob", "acme", PB_ROLE_OWNER, NULL, 0, bob, err) ||
	    contract_parse(contract_text, strlen(contract_text), "t", &c, err) ||
	    catalog_import(db, org_id, c, contract_text, strlen(contract_text), &product, &created, err)) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	contract_free(c);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	catalog_product_free(product);
	db_close(db);
	return tu_rmtree(tmpdir);
}

/* Two definition files, the second named by tag. */
static void files_of(pb_files *f, const char *tag)
{
	f->n = 2;
	f->v = calloc(2, sizeof *f->v);
	assert_non_null(f->v);
	f->v[0].path = xstrdup("definition.pbism");
	f->v[0].content = xstrdup("{\"version\":\"4.2\"}");
	f->v[1].path = xstrdup("definition/tables/orders.tmdl");
	char text[128];
	xsnprintf(text, sizeof text, "table orders\n\tcolumn %s\n", tag);
	f->v[1].content = xstrdup(text);
	for (size_t i = 0; i < 2; i++)
		f->v[i].len = strlen(f->v[i].content);
}

/* A publish record of a new model in org_id: ids out; conn (may be NULL) and whether pbiport made it. */
static void record(const char *conn, bool created_conn, pm_ids *ids)
{
	char err[PB_ERR_MAX], job[PB_ID_BUF], model[64];
	pb_files def = { 0 };
	files_of(&def, "id");
	assert_int_equal(pb_new_id(job, err), 0);
	xsnprintf(model, sizeof model, "0000000%d-0000-4000-8000-000000000000", ++seq);
	pm_record r = { .org_id = org_id, .user_id = ann, .job_id = job, .output_port_id = product->ports[0].id,
			.workspace_id = "a0000000-0000-4000-8000-000000000001", .semantic_model_id = model, .name = "Orders",
			.connection_id = conn, .definition = &def, .contract_version = "2.0.0", .contract_revision = 1,
			.contract_hash = "abc", .connection_created = created_conn };
	assert_int_equal(published_model_record(db, &r, ids, err), 0);
	pb_files_release(&def);
}

static pm_row *get(const char *id)
{
	pm_row *r = NULL;
	char err[PB_ERR_MAX];
	if (pm_get(db, org_id, id, &r, err))
		fail_msg("pm_get: %s", err);
	return r;
}

static void publish_keeps_definition_and_contract(void **state)
{
	(void)state;
	pm_ids ids;
	char err[PB_ERR_MAX];
	pb_files back = { 0 };
	record("c0000000-0000-4000-8000-000000000001", true, &ids);
	pm_row *r = get(ids.published_id);
	assert_string_equal(r->state, "active");
	assert_string_equal(r->auto_update, "off");
	assert_string_equal(r->contract_version, "2.0.0");
	assert_int_equal(r->contract_revision, 1);
	assert_true(r->connection_created);
	assert_int_equal(pm_definition_files(r->definition, &back, err), 0);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.v[1].path, "definition/tables/orders.tmdl");
	assert_string_equal(back.v[1].content, "table orders\n\tcolumn id\n");
	pb_files_release(&back);
	/* the API shape */
	json_t *o = NULL;
	assert_int_equal(pm_row_json(db, r, "active", &o, err), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "output_port"), "name")), "prod");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "publisher"), "name")), "ann");
	assert_true(json_is_true(json_object_get(json_object_get(o, "connection"), "created_by_pbiport")));
	json_decref(o);
	pm_row_free(r);
	/* another organization does not find it; a stored definition that is not files is refused */
	assert_int_equal(pm_get(db, other_org, ids.published_id, &r, err), PB_ENOTFOUND);
	assert_int_equal(pm_definition_files("[1]", &back, err), PB_EINVAL);
	assert_int_equal(pm_definition_files("{\"a\":1}", &back, err), PB_EINVAL);
}

/* A resumed job records again what it recorded: the same rows and ids, nothing added. Another
 * job publishing the same semantic model keeps its consumer product and agreement, with a
 * published model of its own. Every row of the record is there, with the lineage edge. */
static void record_again_keeps_the_rows(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], job[PB_ID_BUF], job2[PB_ID_BUF];
	pm_ids a, b, c;
	assert_int_equal(pb_new_id(job, err), 0);
	assert_int_equal(pb_new_id(job2, err), 0);
	pm_record r = { .org_id = org_id, .user_id = ann, .job_id = job, .output_port_id = product->ports[0].id,
			.workspace_id = "a0000000-0000-4000-8000-000000000001",
			.semantic_model_id = "0000000a-0000-4000-8000-00000000abcd", .name = "Again",
			.connection_id = "c0000000-0000-4000-8000-000000000001", .contract_revision = 2 };
	int before = tu_count(db, "SELECT COUNT(*) FROM published_models", NULL);
	int edges = tu_count(db, "SELECT COUNT(*) FROM lineage_edges", NULL);
	assert_int_equal(published_model_record(db, &r, &a, err), 0);
	assert_int_equal(published_model_record(db, &r, &b, err), 0);
	assert_string_equal(a.published_id, b.published_id);
	assert_string_equal(a.consumer_product_id, b.consumer_product_id);
	assert_string_equal(a.agreement_id, b.agreement_id);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM published_models", NULL), before + 1);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM lineage_edges", NULL), edges + 1);
	r.job_id = job2;
	assert_int_equal(published_model_record(db, &r, &c, err), 0);
	assert_string_not_equal(c.published_id, a.published_id);
	assert_string_equal(c.consumer_product_id, a.consumer_product_id);
	assert_string_equal(c.agreement_id, a.agreement_id);
	pm_row *m = get(c.published_id);
	assert_string_equal(m->consumer_product_id, a.consumer_product_id);
	assert_string_equal(m->agreement_id, a.agreement_id);
	assert_int_equal(m->contract_revision, 2);
	assert_string_equal(m->user_id, ann);
	pm_row_free(m);
	/* a field the record needs: nothing written */
	r.job_id = NULL;
	assert_int_equal(published_model_record(db, &r, &c, err), PB_EINVAL);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM published_models", NULL), before + 2);
}

static void lifecycle_claims(void **state)
{
	(void)state;
	pm_ids ids;
	char err[PB_ERR_MAX];
	bool won = false, changed = false;
	record(NULL, false, &ids);
	assert_int_equal(pm_lifecycle_claim(db, ids.published_id, "updating", "job1", NULL, &won, err), 0);
	assert_true(won);
	/* taken: another claim loses, unless it takes over the stale job it names */
	assert_int_equal(pm_lifecycle_claim(db, ids.published_id, "unpublishing", "job2", NULL, &won, err), 0);
	assert_false(won);
	assert_int_equal(pm_lifecycle_claim(db, ids.published_id, "unpublishing", "job2", "nope", &won, err), 0);
	assert_false(won);
	assert_int_equal(pm_lifecycle_claim(db, ids.published_id, "updating", "job3", "job1", &won, err), 0);
	assert_true(won);
	assert_int_equal(pm_lifecycle_claim(db, ids.published_id, "active", "job4", NULL, &won, err), PB_EINVAL);
	/* only the job that holds it finishes the update, once */
	pb_files def = { 0 };
	files_of(&def, "id2");
	pm_update_done u = { .id = ids.published_id, .job_id = "job1", .definition = &def, .contract_version = "2.1.0",
			     .contract_revision = 2, .contract_hash = "def" };
	assert_int_equal(pm_update_finish(db, &u, &changed, err), 0);
	assert_false(changed);
	u.job_id = "job3";
	assert_int_equal(pm_update_finish(db, &u, &changed, err), 0);
	assert_true(changed);
	assert_int_equal(pm_update_finish(db, &u, &changed, err), 0);
	assert_false(changed);
	pb_files_release(&def);
	pm_row *r = get(ids.published_id);
	assert_string_equal(r->state, "active");
	assert_string_equal(r->lifecycle_job_id, "");
	assert_int_equal(r->contract_revision, 2);
	assert_non_null(strstr(r->definition, "column id2"));
	assert_true(r->updated_at[0]);
	pm_row_free(r);
}

static bool listed(const char *port_id, const char *id)
{
	json_t *o = NULL;
	char err[PB_ERR_MAX];
	size_t i;
	json_t *m;
	bool found = false;
	assert_int_equal(published_models_list_json(db, org_id, port_id, &o, err), 0);
	json_array_foreach(json_object_get(o, "models"), i, m)
		found = found || !strcmp(json_string_value(json_object_get(m, "id")), id);
	json_decref(o);
	return found;
}

static void unpublish_terminates_and_retires(void **state)
{
	(void)state;
	pm_ids ids, other;
	char err[PB_ERR_MAX];
	bool in_use = true, found = true;
	json_t *ag = NULL;
	const char *conn = "c0000000-0000-4000-8000-0000000000aa";
	record(conn, true, &ids);
	record(conn, false, &other);   /* a later publish chose the same connection */
	assert_true(listed(product->ports[0].id, ids.published_id));
	assert_int_equal(pm_connection_in_use(db, conn, ids.published_id, &in_use, err), 0);
	assert_true(in_use);
	assert_int_equal(pm_unpublish_finish(db, ids.published_id, bob, false, err), 0);
	assert_int_equal(pm_unpublish_finish(db, ids.published_id, ann, false, err), 0);   /* once */
	pm_row *r = get(ids.published_id);
	assert_string_equal(r->state, "unpublished");
	pm_row_free(r);
	assert_false(listed(product->ports[0].id, ids.published_id));
	assert_int_equal(agreement_get_json(db, org_id, ids.agreement_id, &ag, err), 0);
	assert_string_equal(json_string_value(json_object_get(ag, "state")), "terminated");
	assert_string_equal(json_string_value(json_object_get(json_object_get(ag, "terminated_by"), "user_id")), bob);
	assert_non_null(json_string_value(json_object_get(ag, "terminated_at")));
	assert_non_null(json_object_get(ag, "approved_by"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(ag, "consumer"), "status")), "retired");
	json_decref(ag);
	/* the agreements list filters by the new state */
	pb_page page = { .limit = 50 };
	assert_int_equal(agreements_list_json(db, org_id, NULL, "terminated", &page, &ag, err), 0);
	assert_true(json_array_size(json_object_get(ag, "agreements")) >= 1);
	json_decref(ag);
	/* the other model still uses the connection; once it is detached too, nothing does */
	assert_int_equal(pm_connection_in_use(db, conn, other.published_id, &in_use, err), 0);
	assert_false(in_use);
	assert_int_equal(pm_unpublish_finish(db, other.published_id, NULL, true, err), 0);
	r = get(other.published_id);
	assert_string_equal(r->state, "detached");
	pm_row_free(r);
	/* a detached model still reads through its connection */
	assert_int_equal(pm_connection_in_use(db, conn, ids.published_id, &in_use, err), 0);
	assert_true(in_use);
	/* refresh and the semantic-model pages no longer find it */
	pm_model m;
	assert_int_equal(published_model_find(db, org_id, ids.published_id, &m, &found, err), 0);
	assert_false(found);
}

static void drift_and_update_marks(void **state)
{
	(void)state;
	pm_ids ids;
	char err[PB_ERR_MAX];
	bool is_new = false;
	json_t *list = NULL;
	record(NULL, false, &ids);
	const char *diff = "{\"changes\":[{\"object\":\"column\"}],\"summary\":{\"added\":1}}";
	assert_int_equal(pm_set_drift(db, ids.published_id, diff, "power_bi", &is_new, err), 0);
	assert_true(is_new);
	pm_row *r = get(ids.published_id);
	assert_string_equal(r->drift_cause, "power_bi");
	pm_row_free(r);
	assert_int_equal(pm_set_drift(db, ids.published_id, diff, "power_bi", &is_new, err), 0);
	assert_false(is_new);   /* seen before */
	assert_int_equal(pm_set_drift(db, ids.published_id, diff, "both", &is_new, err), 0);
	assert_true(is_new);
	assert_int_equal(pm_set_drift(db, ids.published_id, diff, "sideways", &is_new, err), PB_EINVAL);
	assert_int_equal(pm_drift_list_json(db, org_id, &list, err), 0);
	size_t i;
	json_t *m;
	bool found = false;
	json_array_foreach(list, i, m)
		if (!strcmp(json_string_value(json_object_get(m, "id")), ids.published_id)) {
			found = true;
			assert_string_equal(json_string_value(json_object_get(m, "cause")), "both");
			assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "summary"), "added")), 1);
		}
	assert_true(found);
	json_decref(list);
	assert_int_equal(pm_set_drift(db, ids.published_id, NULL, NULL, &is_new, err), 0);
	r = get(ids.published_id);
	assert_string_equal(r->drift_cause, "");
	assert_null(r->drift);
	pm_row_free(r);
	/* an update mark; a diff past the bound keeps its summary */
	size_t big = PB_PM_DIFF_MAX + 100;
	char *text = malloc(big + 64);
	assert_non_null(text);
	int n = snprintf(text, 64, "{\"summary\":{\"added\":7},\"changes\":[\"");
	memset(text + n, 'x', big);
	memcpy(text + n + big, "\"]}", 4);
	assert_int_equal(pm_set_update_available(db, ids.published_id, text, err), 0);
	free(text);
	r = get(ids.published_id);
	assert_true(r->update_available);
	json_t *kept = json_loads(r->update_diff, 0, NULL);
	assert_true(json_is_true(json_object_get(kept, "truncated")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(kept, "summary"), "added")), 7);
	json_decref(kept);
	pm_row_free(r);
	assert_int_equal(pm_set_update_available(db, ids.published_id, NULL, err), 0);
	r = get(ids.published_id);
	assert_false(r->update_available);
	pm_row_free(r);
	assert_int_equal(pm_set_auto_update(db, ids.published_id, "additive", err), 0);
	assert_int_equal(pm_set_auto_update(db, ids.published_id, "always", err), PB_EINVAL);
}

static void drift_schedule(void **state)
{
	(void)state;
	char (*ids)[PB_ID_BUF] = NULL;
	size_t n = 0;
	char err[PB_ERR_MAX];
	bool won = false;
	pm_ids pm;
	record(NULL, false, &pm);
	assert_int_equal(drift_schedule_unseeded(db, &ids, &n, err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], org_id);
	free(ids);
	assert_int_equal(drift_schedule_seed(db, org_id, "2030-01-02T00:00:00.000Z", err), 0);
	assert_int_equal(drift_schedule_seed(db, org_id, "2031-01-02T00:00:00.000Z", err), 0);   /* kept */
	assert_int_equal(drift_schedule_unseeded(db, &ids, &n, err), 0);
	assert_int_equal(n, 0);
	free(ids);
	assert_int_equal(drift_schedule_due(db, "2030-01-01T00:00:00.000Z", &ids, &n, err), 0);
	assert_int_equal(n, 0);
	free(ids);
	assert_int_equal(drift_schedule_due(db, "2030-01-02T00:00:00.000Z", &ids, &n, err), 0);
	assert_int_equal(n, 1);
	free(ids);
	/* one of two workers takes the due time */
	assert_int_equal(drift_schedule_advance(db, org_id, "2030-01-02T00:00:00.000Z", "2030-01-03T00:00:00.000Z", &won,
						err), 0);
	assert_true(won);
	assert_int_equal(drift_schedule_advance(db, org_id, "2030-01-02T00:00:00.000Z", "2030-01-03T00:00:00.000Z", &won,
						err), 0);
	assert_false(won);
}

static const char schema_v1[] =
	"{\"apiVersion\":\"v3.0.2\",\"kind\":\"DataContract\",\"id\":\"a\",\"name\":\"a\",\"version\":\"1\",\"status\":\"active\","
	"\"schema\":[{\"name\":\"Sales\",\"properties\":[{\"name\":\"Amount\",\"logicalType\":\"number\"},"
	"{\"name\":\"Region\",\"logicalType\":\"string\"}]}]}";
static const char schema_v2[] =
	"{\"apiVersion\":\"v3.0.2\",\"kind\":\"DataContract\",\"id\":\"a\",\"name\":\"a\",\"version\":\"1\",\"status\":\"active\","
	"\"schema\":[{\"name\":\"Sales\",\"properties\":[{\"name\":\"Amount\",\"logicalType\":\"string\"},"
	"{\"name\":\"Day\",\"logicalType\":\"date\"}]},{\"name\":\"Stores\",\"properties\":[{\"name\":\"Id\","
	"\"logicalType\":\"integer\"}]}]}";

static void schema_diff_of_asset_products(void **state)
{
	(void)state;
	json_t *d = NULL;
	char err[PB_ERR_MAX];
	assert_int_equal(drift_schema_diff(schema_v1, schema_v2, &d, err), 0);
	char *text = json_dumps(json_object_get(d, "changes"), JSON_COMPACT);
	/* Amount's type changed (breaking), Day added, Stores added, Region removed (breaking) */
	assert_non_null(strstr(text, "\"name\":\"Amount\",\"change\":\"changed\",\"breaking\":true"));
	assert_non_null(strstr(text, "\"name\":\"Day\",\"change\":\"added\",\"breaking\":false"));
	assert_non_null(strstr(text, "\"object\":\"table\",\"table\":\"Stores\",\"name\":\"Stores\",\"change\":\"added\""));
	assert_non_null(strstr(text, "\"name\":\"Region\",\"change\":\"removed\",\"breaking\":true"));
	free(text);
	json_t *s = json_object_get(d, "summary");
	assert_int_equal(json_integer_value(json_object_get(s, "added")), 2);
	assert_int_equal(json_integer_value(json_object_get(s, "removed")), 1);
	assert_int_equal(json_integer_value(json_object_get(s, "changed")), 1);
	assert_true(json_is_true(json_object_get(s, "breaking")));
	json_decref(d);
	assert_int_equal(drift_schema_diff(schema_v1, schema_v1, &d, err), 0);
	assert_int_equal(json_array_size(json_object_get(d, "changes")), 0);
	json_decref(d);
	assert_int_equal(drift_schema_diff(schema_v1, "not: [a contract", &d, err), PB_EINVAL);
}

static void asset_product_drift(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], *baseline = NULL;
	json_t *o = NULL;
	const char *pid = product->id;
	assert_int_equal(drift_note_product_schema(db, org_id, pid, schema_v1, schema_v2, err), 0);
	assert_int_equal(product_drift_baseline(db, pid, &baseline, err), 0);
	assert_string_equal(baseline, schema_v1);
	free(baseline);
	assert_int_equal(product_drift_json(db, org_id, pid, &o, err), 0);
	assert_string_equal(json_string_value(json_object_get(o, "cause")), "power_bi");
	assert_int_equal(json_array_size(json_object_get(o, "changes")), 4);
	json_decref(o);
	assert_int_equal(product_drift_json(db, other_org, pid, &o, err), 0);
	assert_null(o);
	assert_int_equal(product_drift_list_json(db, org_id, &o, err), 0);
	assert_int_equal(json_array_size(o), 1);
	json_decref(o);
	/* a second change is measured from the same baseline; coming back to it ends the drift */
	assert_int_equal(drift_note_product_schema(db, org_id, pid, schema_v2, schema_v1, err), 0);
	assert_int_equal(product_drift_json(db, org_id, pid, &o, err), 0);
	assert_null(o);
	assert_int_equal(drift_note_product_schema(db, org_id, pid, schema_v1, schema_v2, err), 0);
	assert_int_equal(drift_clear_product(db, pid, err), 0);
	assert_int_equal(product_drift_json(db, org_id, pid, &o, err), 0);
	assert_null(o);
}

/* The migrations before 0016 into dir (copies), for the rebuild over existing rows. */
static void copy_migrations_before(const char *dir, int before)
{
	char cmd[1024], src[512];
	tu_src_path(src, sizeof src, "sql");
	xsnprintf(cmd, sizeof cmd, "mkdir -p '%s' && for f in '%s'/*.sql; do n=$(basename \"$f\" | cut -c1-4); "
		  "[ \"$n\" -lt %d ] && cp \"$f\" '%s'/; done; true", dir, src, before, dir);
	assert_int_equal(system(cmd), 0);
}

static void migration_keeps_rows(void **state)
{
	(void)state;
	char dir[128], path[160], err[PB_ERR_MAX], src[512];
	pb_db *old = NULL;
	xsnprintf(dir, sizeof dir, "%s/sql15", tmpdir);
	copy_migrations_before(dir, 16);
	xsnprintf(path, sizeof path, "%s/old.db", tmpdir);
	assert_int_equal(db_open(path, true, &old, err), 0);
	assert_int_equal(db_migrate(old, dir, NULL, err), 0);
	const char *rows =
		"INSERT INTO organizations (id, name, created_at) VALUES ('o', 'o', 't');"
		"INSERT INTO data_products (id, org_id, contract_id, name, type, contract_text, revision, created_at, "
		"updated_at) VALUES ('dp', 'o', 'c', 'n', 'source', '', 1, 't', 't'), ('cp', 'o', 'c2', 'm', "
		"'powerbi_semantic_model', '', 1, 't', 't');"
		"INSERT INTO output_ports (id, data_product_id, org_id, name, type, server_json, created_at, updated_at) "
		"VALUES ('p', 'dp', 'o', 's', 'snowflake', '{}', 't', 't');"
		"INSERT INTO agreements (id, org_id, consumer_product_id, output_port_id, state, created_at, updated_at) "
		"VALUES ('a', 'o', 'cp', 'p', 'approved', 't', 't');"
		"INSERT INTO jobs (id, org_id, kind, state, max_attempts, run_after, input, checkpoint, created_at, "
		"updated_at) VALUES ('j1', 'o', 'publish', 'succeeded', 5, 't', '{\"port_id\":\"p\"}', '{}', 't', 't'), "
		"('j2', 'o', 'publish', 'succeeded', 5, 't', '{\"connection_id\":\"x\",\"http_path\":\"/sql/w\"}', '{}', 't', "
		"'t');"
		"INSERT INTO published_models (id, org_id, output_port_id, job_id, workspace_id, semantic_model_id, name, "
		"connection_id, consumer_product_id, agreement_id, published_at) VALUES ('m1', 'o', 'p', 'j1', 'w', 's1', "
		"'n', 'c1', 'cp', 'a', 't'), ('m2', 'o', 'p', 'j2', 'w', 's2', 'n', 'x', 'cp', 'a', 't');";
	tu_sql(old, rows);
	tu_src_path(src, sizeof src, "sql");
	assert_int_equal(db_migrate(old, src, NULL, err), 0);
	pm_row *r = NULL;
	assert_int_equal(pm_get(old, "o", "m1", &r, err), 0);
	/* the agreement reference survived the rebuild of both tables */
	assert_string_equal(r->agreement_id, "a");
	assert_string_equal(r->consumer_product_id, "cp");
	assert_string_equal(r->state, "active");
	assert_true(r->connection_created);     /* its publish made the connection */
	assert_null(r->definition);
	pm_row_free(r);
	assert_int_equal(pm_get(old, "o", "m2", &r, err), 0);
	assert_false(r->connection_created);    /* its publish chose one */
	assert_string_equal(r->http_path, "/sql/w");
	pm_row_free(r);
	db_stmt *st = NULL;
	assert_int_equal(db_prepare(old, "SELECT count(*) FROM pragma_foreign_key_check", &st, err), 0);
	assert_int_equal(db_row(old, st, err), 1);
	assert_int_equal(db_col_int(st, 0), 0);
	db_done(st);
	db_close(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(publish_keeps_definition_and_contract),
		cmocka_unit_test(record_again_keeps_the_rows),
		cmocka_unit_test(lifecycle_claims),
		cmocka_unit_test(unpublish_terminates_and_retires),
		cmocka_unit_test(drift_and_update_marks),
		cmocka_unit_test(drift_schedule),
		cmocka_unit_test(schema_diff_of_asset_products),
		cmocka_unit_test(asset_product_drift),
		cmocka_unit_test(migration_keeps_rows),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
