/* Render -> parse round trip: every contract that parses is rendered -- through its snowflake
 * or databricks server, with what the server lacks given as `pbiport tmdl` flags would give
 * it, or, without such a server (ODCS v2, no `servers` block, other databases), through
 * --type snowflake and the flags alone -- and the output is read back with the TMDL parser
 * (core/lang/tmdl.h); the same tables, columns, source columns, partitions and relationships must
 * come back.
 * Inputs: tests/fixtures/render/contracts/ (always) and $PBIPORT_CORPUS/odcs/ (SKIP line
 * when absent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/lang/contract.h"
#include "core/lang/render.h"
#include "core/lang/tmdl.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

struct tally {
	int rendered, no_server, no_servers_block, bad_contract;
};

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

static const pb_server *powerbi_server(const pb_contract *c)
{
	for (size_t i = 0; i < c->nservers; i++)
		if (str_ieq(c->servers[i].type, "snowflake") || str_ieq(c->servers[i].type, "databricks"))
			return &c->servers[i];
	return NULL;
}

/* Parses the rendered files and compares them with the contract. */
static void check_roundtrip(const char *path, const pb_contract *c, const pb_files *files)
{
	char err[PB_ERR_MAX];
	tmdl_model *m = tmdl_model_new();
	assert_non_null(m);
	for (size_t i = 0; i < files->n; i++) {
		if (!has_suffix(files->v[i].path, ".tmdl"))
			continue;
		if (tmdl_parse_buffer(m, files->v[i].path, files->v[i].content, files->v[i].len, err))
			fail_msg("%s: rendered TMDL does not parse: %s", path, err);
	}
	if (tmdl_model_finish(m, err))
		fail_msg("%s: rendered TMDL does not parse: %s", path, err);

	if (m->n_tables != c->ntables)
		fail_msg("%s: %zu tables rendered, %zu in the contract", path, m->n_tables, c->ntables);
	for (size_t i = 0; i < c->ntables; i++) {
		const pb_table *ct = &c->tables[i];
		const tmdl_table *t = tmdl_model_find_table(m, ct->name);
		if (!t)
			fail_msg("%s: table '%s' missing after round trip", path, ct->name);
		/* ref table order follows the contract */
		assert_string_equal(m->tables[i].name, ct->name);
		if (t->n_columns != ct->ncolumns)
			fail_msg("%s: table '%s': %zu columns back, %zu in the contract", path, ct->name,
				 t->n_columns, ct->ncolumns);
		for (size_t k = 0; k < ct->ncolumns; k++) {
			const pb_column *cc = &ct->columns[k];
			const tmdl_column *col = tmdl_table_find_column(t, cc->name);
			if (!col)
				fail_msg("%s: column '%s'.'%s' missing after round trip", path, ct->name, cc->name);
			assert_string_equal(col->name, cc->name);
			assert_non_null(col->source_column);
			assert_string_equal(col->source_column, cc->physical_name ? cc->physical_name : cc->name);
			assert_non_null(col->data_type);
			assert_non_null(col->lineage_tag);
		}
		assert_int_equal(t->n_partitions, 1);
		assert_string_equal(t->partitions[0].source_type, "m");
		assert_string_equal(t->partitions[0].mode, "import");
		assert_non_null(t->partitions[0].source);
	}
	assert_int_equal(m->n_relationships, c->nrelationships);
	assert_int_equal(m->n_expressions, 3);
	tmdl_model_free(m);
}

static void roundtrip_file(const char *path, struct tally *t)
{
	char err[PB_ERR_MAX];
	pb_contract *c = NULL;
	pb_files files = { 0 };
	if (contract_load(path, &c, err)) {
		t->bad_contract++;
		return;
	}
	const pb_server *s = powerbi_server(c);
	/* Fill-ins for what a contract lacks; the contract's own values win. */
	static const render_value values[] = {
		{ "host", "test.cloud.databricks.com" }, { "warehouse", "TEST_WH" }, { "database", "TEST_DB" },
		{ "http_path", "/sql/1.0/warehouses/test" }, { "catalog", "TEST_CATALOG" }, { "schema", "TEST_SCHEMA" },
	};
	render_opts o = { .server = s ? s->name : NULL, .type = s ? NULL : "snowflake", .params = RENDER_PARAMS_CLI,
			  .values = values, .nvalues = sizeof values / sizeof values[0] };
	if (tmdl_render(c, &o, &files, err))
		fail_msg("%s: not rendered: %s", path, err);
	check_roundtrip(path, c, &files);
	t->rendered++;
	if (!s)
		t->no_server++;
	if (!c->nservers)
		t->no_servers_block++;
	pb_files_release(&files);
	contract_free(c);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every .yaml/.yml/.json below dir, except JSON schemas, in sorted order. */
static void walk(const char *dir, struct tally *t)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char **grown = realloc(names, (n + 1) * sizeof *names);
		assert_non_null(grown);
		names = grown;
		assert_int_not_equal(asprintf(&names[n], "%s/%s", dir, e->d_name), -1);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(names[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			if (!has_suffix(names[i], "/schema"))
				walk(names[i], t);
		} else if (has_suffix(names[i], ".yaml") || has_suffix(names[i], ".yml") ||
			   has_suffix(names[i], ".json")) {
			roundtrip_file(names[i], t);
		}
		free(names[i]);
	}
	free(names);
}

static void own_fixtures(void **state)
{
	(void)state;
	struct tally t = { 0 };
	walk(PBIPORT_DATADIR "/tests/fixtures/render/contracts", &t);
	roundtrip_file(PBIPORT_DATADIR "/examples/contracts/orders.odcs.yaml", &t);
	printf("fixtures: %d rendered and parsed back\n", t.rendered);
	assert_int_equal(t.rendered, 3);
	assert_int_equal(t.bad_contract + t.no_server, 0);
}

static void corpus(void **state)
{
	(void)state;
	char dir[1024];
	if (!tu_corpus_path("odcs", "corpus round trip", dir, sizeof dir))
		return;
	struct tally t = { 0 };
	walk(dir, &t);
	printf("corpus: %d rendered and parsed back (%d without a snowflake/databricks server, %d of them "
	       "without servers), %d not parsed as contracts\n",
	       t.rendered, t.no_server, t.no_servers_block, t.bad_contract);
	/* every contract that parses renders: 27 of 33, 9 of them without a `servers` block */
	assert_true(t.rendered >= 27);
	assert_true(t.no_servers_block >= 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(own_fixtures),
		cmocka_unit_test(corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
