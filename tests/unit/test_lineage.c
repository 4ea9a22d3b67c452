/* Unit tests for core/flow/lineage and GET /api/lineage on a hand-built database: the chain
 * data product -> output port -> data source -> semantic model -> report -> dashboard,
 * depth in both directions, org isolation, nodes no store knows, cycles, the node
 * ceiling, JSON and DOT output, and the handler's status codes. */
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

#include "core/store/identity.h"
#include "core/flow/lineage.h"
#include "core/store/lineage_store.h"
#include "handlers/handlers.h"
#include "runtime/db.h"
#include "runtime/fcgi.h"
#include "runtime/util.h"
#include "tests/unit/mem_io.h"

/* ids: 32 hex digits like every id pbiport makes */
#define PRODUCT  "a0000000000000000000000000000001"
#define PORT     "a0000000000000000000000000000002"
#define PORT2    "a0000000000000000000000000000003"
#define SOURCE   "b0000000000000000000000000000001"
#define MODEL    "b0000000000000000000000000000002"
#define REPORT   "b0000000000000000000000000000003"
#define DASH     "b0000000000000000000000000000004"
#define PUBLISH  "c0000000000000000000000000000001"
#define B_MODEL  "d0000000000000000000000000000001"

typedef struct fixture {
	char dir[64];
	pb_db *db;
	char org_a[PB_ID_BUF], org_b[PB_ID_BUF];
} fixture;

/* Runs sql with its ?s bound to the n text arguments (test data goes through bound
 * parameters like everywhere else). */
static void run(pb_db *db, const char *sql, int n, ...)
{
	db_stmt *st = NULL;
	char err[PB_ERR_MAX] = "";
	if (db_prepare_new(db, sql, &st, err))
		fail_msg("%s: %s", sql, err);
	va_list ap;
	va_start(ap, n);
	for (int i = 1; i <= n; i++)
		db_bind_text(st, i, va_arg(ap, const char *), NULL);
	va_end(ap);
	if (db_exec(db, st, err))
		fail_msg("%s: %s", sql, err);
	db_stmt_free(st);
}

static void edge(fixture *f, const char *org, const char *fk, const char *fid, const char *tk, const char *tid)
{
	char err[PB_ERR_MAX];
	if (lineage_edge_add(f->db, org, fk, fid, tk, tid, err))
		fail_msg("lineage_edge_add: %s", err);
}

static void asset(fixture *f, const char *org, const char *id, const char *kind, const char *name)
{
	run(f->db,
	    "INSERT INTO assets (id, org_id, integration_id, kind, powerbi_id, workspace_powerbi_id, name, "
	    "details_json, state, created_at, updated_at) VALUES (?,?,NULL,?,?,NULL,?,'{}','active',"
	    "'2026-01-01T00:00:00.000Z','2026-01-01T00:00:00.000Z')",
	    5, id, org, kind, id, name);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	char err[PB_ERR_MAX], path[128], sql[4096];
	assert_non_null(f);
	assert_int_equal(xsnprintf(f->dir, sizeof f->dir, "/tmp/pbiport-lineage-XXXXXX"), 0);
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(xsnprintf(path, sizeof path, "%s/db.sqlite", f->dir), 0);
	assert_int_equal(xsnprintf(sql, sizeof sql, "%s/sql", PBIPORT_DATADIR), 0);
	if (db_open(path, true, &f->db, err) || db_migrate(f->db, sql, NULL, err))
		fail_msg("%s", err);
	assert_int_equal(identity_org_create(f->db, "org-a", f->org_a, err), 0);
	assert_int_equal(identity_org_create(f->db, "org-b", f->org_b, err), 0);
	assert_int_equal(identity_user_add(f->db, "alice", "org-a", PB_ROLE_MEMBER, NULL, 0, (char[PB_ID_BUF]){ 0 }, err),
			 0);
	assert_int_equal(identity_user_add(f->db, "bob", "org-b", PB_ROLE_MEMBER, NULL, 0, (char[PB_ID_BUF]){ 0 }, err),
			 0);
	run(f->db,
	    "INSERT INTO data_products (id, org_id, contract_id, name, type, contract_text, revision, created_at, "
	    "updated_at) VALUES (?,?,'orders-contract',?,'source','x',1,'t','t')",
	    3, PRODUCT, f->org_a, "Orders \"gold\" \\ v2");
	run(f->db,
	    "INSERT INTO output_ports (id, data_product_id, org_id, name, type, server_json, created_at, updated_at) "
	    "VALUES (?,?,?,'snowflake-prod','snowflake','{}','t','t')",
	    3, PORT, PRODUCT, f->org_a);
	run(f->db,
	    "INSERT INTO output_ports (id, data_product_id, org_id, name, type, server_json, created_at, updated_at) "
	    "VALUES (?,?,?,'snowflake-dev','snowflake','{}','t','t')",
	    3, PORT2, PRODUCT, f->org_a);
	asset(f, f->org_a, SOURCE, "datasource", "acme.snowflakecomputing.com SALES");
	asset(f, f->org_a, MODEL, "semantic_model", "Sales model");
	asset(f, f->org_a, REPORT, "report", "Sales report\nQ3");
	asset(f, f->org_a, DASH, "dashboard", "Board");
	asset(f, f->org_b, B_MODEL, "semantic_model", "Other org model");
	edge(f, f->org_a, "output_port", PORT, "datasource", SOURCE);
	edge(f, f->org_a, "datasource", SOURCE, "semantic_model", MODEL);
	edge(f, f->org_a, "semantic_model", MODEL, "report", REPORT);
	edge(f, f->org_a, "report", REPORT, "dashboard", DASH);
	edge(f, f->org_a, "publish", PUBLISH, "semantic_model", MODEL);
	edge(f, f->org_a, "semantic_model", MODEL, "report", REPORT);   /* a duplicate row */
	edge(f, f->org_b, "semantic_model", B_MODEL, "report", REPORT); /* another org's edge */
	edge(f, f->org_b, "output_port", PORT, "semantic_model", B_MODEL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[128];
	db_close(f->db);
	if (!xsnprintf(cmd, sizeof cmd, "rm -rf %s", f->dir))
		(void)!system(cmd);
	free(f);
	return 0;
}

static const lineage_node *find_node(const lineage_graph *g, const char *id)
{
	for (size_t i = 0; i < g->nnodes; i++)
		if (!strcmp(g->nodes[i].id, id))
			return &g->nodes[i];
	return NULL;
}

static bool has_edge(const lineage_graph *g, const char *from, const char *to)
{
	for (size_t i = 0; i < g->nedges; i++)
		if (!strcmp(g->edges[i].from, from) && !strcmp(g->edges[i].to, to))
			return true;
	return false;
}

static void chain_at_depth_six(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	lineage_graph g;
	assert_int_equal(lineage_graph_get(f->db, f->org_a, PRODUCT, 6, &g, err), 0);
	/* product, 2 ports, source, model, publish record, report, dashboard */
	assert_int_equal(g.nnodes, 8);
	assert_string_equal(g.nodes[0].id, PRODUCT);
	assert_string_equal(g.nodes[0].type, "data_product");
	assert_int_equal(find_node(&g, REPORT)->depth, 4);
	assert_string_equal(find_node(&g, REPORT)->type, "report");
	assert_string_equal(find_node(&g, REPORT)->name, "Sales report\nQ3");
	assert_int_equal(find_node(&g, DASH)->depth, 5);
	assert_string_equal(find_node(&g, PORT)->type, "output_port");
	assert_string_equal(find_node(&g, PORT)->name, "snowflake-prod");
	assert_string_equal(find_node(&g, SOURCE)->type, "datasource");
	assert_string_equal(find_node(&g, PUBLISH)->type, "publish");
	assert_null(find_node(&g, PUBLISH)->name);
	assert_null(find_node(&g, B_MODEL));
	assert_int_equal(g.nedges, 7);
	assert_true(has_edge(&g, PRODUCT, PORT));
	assert_true(has_edge(&g, PRODUCT, PORT2));
	assert_true(has_edge(&g, PORT, SOURCE));
	assert_true(has_edge(&g, SOURCE, MODEL));
	assert_true(has_edge(&g, MODEL, REPORT));
	assert_true(has_edge(&g, REPORT, DASH));
	assert_true(has_edge(&g, PUBLISH, MODEL));
	assert_false(g.truncated);
	lineage_graph_release(&g);
	lineage_graph_release(&g);   /* released twice: harmless */
}

static void depth_both_directions(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	lineage_graph g;
	/* default depth 3 from the product stops at the model */
	assert_int_equal(lineage_graph_get(f->db, f->org_a, PRODUCT, PB_LINEAGE_DEPTH_DEFAULT, &g, err), 0);
	assert_int_equal(g.nnodes, 5);
	assert_non_null(find_node(&g, MODEL));
	assert_null(find_node(&g, REPORT));
	assert_null(find_node(&g, PUBLISH));
	lineage_graph_release(&g);
	/* from the report, one edge each way */
	assert_int_equal(lineage_graph_get(f->db, f->org_a, REPORT, 1, &g, err), 0);
	assert_int_equal(g.nnodes, 3);
	assert_true(has_edge(&g, MODEL, REPORT));
	assert_true(has_edge(&g, REPORT, DASH));
	assert_int_equal(g.nedges, 2);
	lineage_graph_release(&g);
	/* upstream from the report to the product: report-model-source-port-product = 4 */
	assert_int_equal(lineage_graph_get(f->db, f->org_a, REPORT, 4, &g, err), 0);
	assert_non_null(find_node(&g, PRODUCT));
	assert_null(find_node(&g, PORT2));   /* one more edge away */
	lineage_graph_release(&g);
	/* from a port: its product is one edge up */
	assert_int_equal(lineage_graph_get(f->db, f->org_a, PORT2, 2, &g, err), 0);
	assert_int_equal(g.nnodes, 3);
	assert_true(has_edge(&g, PRODUCT, PORT2));
	assert_true(has_edge(&g, PRODUCT, PORT));
	lineage_graph_release(&g);
	/* depth 0: the node alone */
	assert_int_equal(lineage_graph_get(f->db, f->org_a, MODEL, 0, &g, err), 0);
	assert_int_equal(g.nnodes, 1);
	assert_int_equal(g.nedges, 0);
	lineage_graph_release(&g);
}

static void org_isolation_and_errors(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	lineage_graph g;
	assert_int_equal(lineage_graph_get(f->db, f->org_b, PRODUCT, 3, &g, err), PB_ENOTFOUND);
	assert_int_equal(g.nnodes, 0);
	assert_int_equal(lineage_graph_get(f->db, f->org_b, MODEL, 3, &g, err), PB_ENOTFOUND);
	assert_int_equal(lineage_graph_get(f->db, f->org_a, PUBLISH, 3, &g, err), PB_ENOTFOUND);
	assert_int_equal(lineage_graph_get(f->db, f->org_a, "nope", 3, &g, err), PB_ENOTFOUND);
	assert_int_equal(lineage_graph_get(f->db, f->org_a, PRODUCT, 11, &g, err), PB_EINVAL);
	assert_string_equal(err, "depth must be 0 to 10");
	assert_int_equal(lineage_graph_get(f->db, f->org_a, PRODUCT, -1, &g, err), PB_EINVAL);
	assert_int_equal(lineage_graph_get(f->db, f->org_a, "", 3, &g, err), PB_EINVAL);
	/* org b's own view: its model, and its edge to org a's report, which org b cannot
	 * name (only the edge's kind) */
	assert_int_equal(lineage_graph_get(f->db, f->org_b, B_MODEL, 3, &g, err), 0);
	assert_string_equal(find_node(&g, B_MODEL)->name, "Other org model");
	assert_string_equal(find_node(&g, REPORT)->type, "report");
	assert_null(find_node(&g, REPORT)->name);
	assert_null(find_node(&g, DASH));
	assert_null(find_node(&g, PORT)->name);
	assert_null(find_node(&g, PRODUCT));   /* org b has no implicit edges into org a */
	lineage_graph_release(&g);
}

static void cycles_and_ceiling(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	lineage_graph g;
	edge(f, f->org_a, "dashboard", DASH, "datasource", SOURCE);   /* a cycle */
	edge(f, f->org_a, "report", REPORT, "report", REPORT);        /* a self edge */
	assert_int_equal(lineage_graph_get(f->db, f->org_a, SOURCE, 10, &g, err), 0);
	assert_int_equal(g.nnodes, 8);
	assert_int_equal(g.nedges, 8);
	assert_true(has_edge(&g, DASH, SOURCE));
	lineage_graph_release(&g);
	/* more neighbours than the ceiling */
	assert_int_equal(db_begin(f->db, err), 0);
	for (int i = 0; i < PB_LINEAGE_MAX_NODES + 10; i++) {
		char id[40];
		assert_int_equal(xsnprintf(id, sizeof id, "e%031d", i), 0);
		edge(f, f->org_a, "dashboard", DASH, "tile", id);
	}
	assert_int_equal(db_commit(f->db, err), 0);
	assert_int_equal(lineage_graph_get(f->db, f->org_a, DASH, 1, &g, err), 0);
	assert_int_equal(g.nnodes, PB_LINEAGE_MAX_NODES);
	assert_true(g.truncated);
	json_t *j = lineage_graph_json(&g);
	assert_true(json_is_true(json_object_get(j, "truncated")));
	json_decref(j);
	lineage_graph_release(&g);
}

static void json_and_dot(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	lineage_graph g;
	assert_int_equal(lineage_graph_get(f->db, f->org_a, PORT, 1, &g, err), 0);
	json_t *j = lineage_graph_json(&g);
	char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(text,
			    "{\"edges\":[{\"from\":\"" PRODUCT "\",\"to\":\"" PORT "\"},{\"from\":\"" PORT
			    "\",\"to\":\"" SOURCE "\"}],\"nodes\":[{\"id\":\"" PORT
			    "\",\"name\":\"snowflake-prod\",\"type\":\"output_port\"},{\"id\":\"" PRODUCT
			    "\",\"name\":\"Orders \\\"gold\\\" \\\\ v2\",\"type\":\"data_product\"},{\"id\":\"" SOURCE
			    "\",\"name\":\"acme.snowflakecomputing.com SALES\",\"type\":\"datasource\"}]}");
	free(text);
	json_decref(j);
	sbuf dot;
	sbuf_init(&dot, 1 << 20);
	assert_int_equal(lineage_graph_dot(&g, &dot, err), 0);
	assert_string_equal(sbuf_str(&dot),
			    "digraph lineage {\n\trankdir=LR;\n\tnode [shape=box];\n"
			    "\t\"" PORT "\" [label=\"snowflake-prod\\n(output_port)\"];\n"
			    "\t\"" PRODUCT "\" [label=\"Orders \\\"gold\\\" \\\\ v2\\n(data_product)\"];\n"
			    "\t\"" SOURCE "\" [label=\"acme.snowflakecomputing.com SALES\\n(datasource)\"];\n"
			    "\t\"" PRODUCT "\" -> \"" PORT "\";\n"
			    "\t\"" PORT "\" -> \"" SOURCE "\";\n}\n");
	sbuf_release(&dot);
	lineage_graph_release(&g);
	/* a name with a line break */
	assert_int_equal(lineage_graph_get(f->db, f->org_a, REPORT, 0, &g, err), 0);
	sbuf_init(&dot, 1 << 20);
	assert_int_equal(lineage_graph_dot(&g, &dot, err), 0);
	assert_non_null(strstr(sbuf_str(&dot), "[label=\"Sales report Q3\\n(report)\"]"));
	sbuf_release(&dot);
	lineage_graph_release(&g);
	/* a ceiling too small for the text */
	assert_int_equal(lineage_graph_get(f->db, f->org_a, PORT, 1, &g, err), 0);
	sbuf_init(&dot, 64);
	assert_int_equal(lineage_graph_dot(&g, &dot, err), PB_ENOMEM);
	sbuf_release(&dot);
	lineage_graph_release(&g);
}

/* ---- the handler, in-process ---- */

/* Runs GET /api/lineage?query as user; returns the status, *body points into io. */
static int get(fixture *f, const char *user, const char *query, struct mem_io *m, const char **body)
{
	pb_config cfg;
	memset(&cfg, 0, sizeof cfg);
	struct req r;
	char uri[512], qs[512], who[64];
	assert_int_equal(xsnprintf(uri, sizeof uri, "REQUEST_URI=/api/lineage?%s", query), 0);
	assert_int_equal(xsnprintf(qs, sizeof qs, "QUERY_STRING=%s", query), 0);
	assert_int_equal(xsnprintf(who, sizeof who, "REMOTE_USER=%s", user), 0);
	char *env[] = { "REQUEST_METHOD=GET", uri, qs, "SCRIPT_NAME=", who, NULL };
	mem_io_start(m, NULL);
	struct req_io io = mem_req_io(m);
	req_init(&r, &cfg, f->db);
	pb_handle(&r, &pb_app, env, &io);
	int status = r.status;
	req_release(&r);
	*body = mem_io_body(m);
	return status;
}

static void handler(void **state)
{
	fixture *f = *state;
	struct mem_io m = { 0 };
	const char *body;
	sbuf_init(&m.out, 1 << 20);
	assert_int_equal(get(f, "alice", "node=" PRODUCT "&depth=6", &m, &body), 200);
	json_t *j = json_loads(body, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "nodes")), 8);
	assert_int_equal(json_array_size(json_object_get(j, "edges")), 7);
	json_decref(j);
	assert_int_equal(get(f, "alice", "node=" PRODUCT, &m, &body), 200);   /* default depth 3 */
	j = json_loads(body, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(j, "nodes")), 5);
	json_decref(j);
	assert_int_equal(get(f, "alice", "node=" PORT "&depth=1&format=dot", &m, &body), 200);
	assert_non_null(strstr(sbuf_str(&m.out), "Content-Type: text/vnd.graphviz"));
	assert_int_equal(strncmp(body, "digraph lineage {", 17), 0);
	assert_int_equal(get(f, "bob", "node=" PRODUCT, &m, &body), 404);
	assert_int_equal(get(f, "alice", "node=" B_MODEL, &m, &body), 404);
	assert_int_equal(get(f, "alice", "depth=2", &m, &body), 400);
	assert_non_null(strstr(body, "node is required"));
	assert_int_equal(get(f, "alice", "node=" PRODUCT "&depth=11", &m, &body), 400);
	assert_int_equal(get(f, "alice", "node=" PRODUCT "&depth=x", &m, &body), 400);
	assert_int_equal(get(f, "alice", "node=" PRODUCT "&depth=", &m, &body), 400);
	assert_int_equal(get(f, "alice", "node=" PRODUCT "&depth=+3", &m, &body), 400);
	assert_int_equal(get(f, "alice", "node=" PRODUCT "&depth=-0", &m, &body), 400);
	assert_int_equal(get(f, "alice", "node=" PRODUCT "&depth=0", &m, &body), 200);
	assert_int_equal(get(f, "alice", "node=" PRODUCT "&format=svg", &m, &body), 400);
	assert_int_equal(get(f, "alice", "node=" PRODUCT "&other=1", &m, &body), 400);
	assert_int_equal(get(f, "nobody", "node=" PRODUCT, &m, &body), 401);
	sbuf_release(&m.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(chain_at_depth_six, setup, teardown),
		cmocka_unit_test_setup_teardown(depth_both_directions, setup, teardown),
		cmocka_unit_test_setup_teardown(org_isolation_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(cycles_and_ceiling, setup, teardown),
		cmocka_unit_test_setup_teardown(json_and_dot, setup, teardown),
		cmocka_unit_test_setup_teardown(handler, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
