/* core/lang/model_diff: the diff of two definitions (added / removed / changed, breaking,
 * kept and blocking objects) and the merge that keeps what analysts added in Power BI.
 * Definitions are built in memory from a small generated model (BASE) edited per test; the
 * real contracts in examples/contracts/ are rendered and compared with themselves; the
 * merged output is also read by the emulator's TMDL parser (tests/emulator/tmdl.py), the one
 * its updateDefinition uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/lang/contract.h"
#include "core/lang/model_diff.h"
#include "core/lang/render.h"
#include "core/lang/tmdl.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

/* ---- the generated model every test starts from ---- */

#define GEN "annotation PBIPORT_Generated = true"

static const char *const BASE[][2] = {
	{ "definition.pbism", "{\"version\": \"4.2\", \"settings\": {}}\n" },
	{ "definition/database.tmdl", "database\n\tcompatibilityLevel: 1604\n" },
	{ "definition/model.tmdl",
	  "model Model\n"
	  "\tculture: en-US\n"
	  "\tdefaultPowerBIDataSourceVersion: powerBI_V3\n"
	  "\n"
	  "annotation PBI_QueryOrder = [\"Host\",\"Orders\",\"Customers\"]\n"
	  "\n"
	  GEN "\n"
	  "\n"
	  "ref table Orders\n"
	  "ref table Customers\n" },
	{ "definition/expressions.tmdl",
	  "expression Host = \"acme.snowflakecomputing.com\" meta [IsParameterQuery=true, Type=\"Text\"]\n"
	  "\tlineageTag: e1\n"
	  "\n"
	  "\t" GEN "\n" },
	{ "definition/relationships.tmdl",
	  "relationship r-orders-customers\n"
	  "\tfromColumn: Orders.CustomerId\n"
	  "\ttoColumn: Customers.CustomerId\n"
	  "\n"
	  "\t" GEN "\n" },
	{ "definition/tables/Orders.tmdl",
	  "/// One row per order.\n"
	  "table Orders\n"
	  "\tlineageTag: t-orders\n"
	  "\n"
	  "\tcolumn OrderId\n"
	  "\t\tdataType: int64\n"
	  "\t\tisKey\n"
	  "\t\tformatString: 0\n"
	  "\t\tlineageTag: c-order-id\n"
	  "\t\tsummarizeBy: none\n"
	  "\t\tsourceColumn: ORDER_ID\n"
	  "\n"
	  "\t\t" GEN "\n"
	  "\n"
	  "\tcolumn CustomerId\n"
	  "\t\tdataType: int64\n"
	  "\t\tlineageTag: c-customer-id\n"
	  "\t\tsummarizeBy: none\n"
	  "\t\tsourceColumn: CUSTOMER_ID\n"
	  "\n"
	  "\t\t" GEN "\n"
	  "\n"
	  "\t/// What the customer paid.\n"
	  "\tcolumn Amount\n"
	  "\t\tdataType: decimal\n"
	  "\t\tformatString: #,0.00\n"
	  "\t\tlineageTag: c-amount\n"
	  "\t\tsummarizeBy: sum\n"
	  "\t\tsourceColumn: AMOUNT\n"
	  "\n"
	  "\t\t" GEN "\n"
	  "\n"
	  "\tpartition Orders = m\n"
	  "\t\tmode: import\n"
	  "\t\tsource =\n"
	  "\t\t\t\tlet\n"
	  "\t\t\t\t    Source = Snowflake.Databases(Host, \"WH\"),\n"
	  "\t\t\t\t    T = Source{[Name=\"ORDERS\",Kind=\"Table\"]}[Data]\n"
	  "\t\t\t\tin\n"
	  "\t\t\t\t    T\n"
	  "\n"
	  "\t\t" GEN "\n"
	  "\n"
	  "\tannotation PBI_ResultType = Table\n"
	  "\n"
	  "\t" GEN "\n" },
	{ "definition/tables/Customers.tmdl",
	  "table Customers\n"
	  "\tlineageTag: t-customers\n"
	  "\n"
	  "\tcolumn CustomerId\n"
	  "\t\tdataType: int64\n"
	  "\t\tisKey\n"
	  "\t\tlineageTag: c-customers-id\n"
	  "\t\tsummarizeBy: none\n"
	  "\t\tsourceColumn: CUSTOMER_ID\n"
	  "\n"
	  "\t\t" GEN "\n"
	  "\n"
	  "\tcolumn Name\n"
	  "\t\tdataType: string\n"
	  "\t\tlineageTag: c-customers-name\n"
	  "\t\tsummarizeBy: none\n"
	  "\t\tsourceColumn: NAME\n"
	  "\n"
	  "\t\t" GEN "\n"
	  "\n"
	  "\tpartition Customers = m\n"
	  "\t\tmode: import\n"
	  "\t\tsource =\n"
	  "\t\t\t\tlet\n"
	  "\t\t\t\t    Source = Snowflake.Databases(Host, \"WH\"),\n"
	  "\t\t\t\t    T = Source{[Name=\"CUSTOMERS\",Kind=\"Table\"]}[Data]\n"
	  "\t\t\t\tin\n"
	  "\t\t\t\t    T\n"
	  "\n"
	  "\t\t" GEN "\n"
	  "\n"
	  "\t" GEN "\n" },
};

/* An analyst's measure as Power BI writes it: kept byte for byte. */
#define MEASURE \
	"\t/// Sum of all orders.\n" \
	"\tmeasure 'Total Amount' = ```\n" \
	"\t\t\tVAR total = SUM(Orders[Amount])  -- the paid amounts\n" \
	"\t\t\tRETURN total\n" \
	"\t\t\t```\n" \
	"\t\tformatString: \\$#,0.00;(\\$#,0.00);\\$#,0.00\n" \
	"\t\tdisplayFolder: KPIs\n" \
	"\t\tlineageTag: 9b1e-analyst\n" \
	"\n" \
	"\t\tannotation PBI_FormatHint = {\"currencyCulture\":\"en-US\"}\n"

static pb_file *find_file(const pb_files *f, const char *path)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->v[i].path, path))
			return &f->v[i];
	return NULL;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const pb_file *)a)->path, ((const pb_file *)b)->path);
}

/* Sets path's text (adds the file when missing). */
static void put(pb_files *f, const char *path, const char *text)
{
	pb_file *p = find_file(f, path);
	if (!p) {
		f->v = realloc(f->v, (f->n + 1) * sizeof *f->v);
		assert_non_null(f->v);
		p = &f->v[f->n++];
		p->path = xstrdup(path);
		p->content = NULL;
	}
	free(p->content);
	p->content = xstrdup(text);
	p->len = strlen(text);
	assert_non_null(p->path);
	assert_non_null(p->content);
	qsort(f->v, f->n, sizeof *f->v, cmp_file);
}

static void drop(pb_files *f, const char *path)
{
	pb_file *p = find_file(f, path);
	assert_non_null(p);
	free(p->path);
	free(p->content);
	*p = f->v[--f->n];
	qsort(f->v, f->n, sizeof *f->v, cmp_file);
}

/* Replaces the first `old` in path with `new`. */
static void edit(pb_files *f, const char *path, const char *old, const char *new)
{
	pb_file *p = find_file(f, path);
	assert_non_null(p);
	char *at = strstr(p->content, old);
	if (!at)
		fail_msg("%s has no '%s'", path, old);
	size_t pre = (size_t)(at - p->content), ol = strlen(old), nl = strlen(new);
	char *s = malloc(p->len - ol + nl + 1);
	assert_non_null(s);
	memcpy(s, p->content, pre);
	memcpy(s + pre, new, nl);
	memcpy(s + pre + nl, at + ol, p->len - pre - ol + 1);
	free(p->content);
	p->content = s;
	p->len = p->len - ol + nl;
}

static void base(pb_files *f)
{
	f->v = NULL;
	f->n = 0;
	for (size_t i = 0; i < sizeof BASE / sizeof *BASE; i++)
		put(f, BASE[i][0], BASE[i][1]);
}

static json_t *diff_ok(const pb_files *want, const pb_files *have)
{
	json_t *d = NULL;
	char err[PB_ERR_MAX] = "";
	if (model_diff(want, have, &d, err))
		fail_msg("model_diff: %s", err);
	return d;
}

static void merge_ok(const pb_files *want, const pb_files *have, bool allow_breaking, pb_files *out)
{
	char err[PB_ERR_MAX] = "";
	if (model_merge(want, have, allow_breaking, out, err))
		fail_msg("model_merge: %s", err);
}

static const char *text_of(const pb_files *f, const char *path)
{
	pb_file *p = find_file(f, path);
	if (!p)
		fail_msg("no %s", path);
	return p->content;
}

/* The changes as one line each: "object table/name change[ breaking]". */
static char *changes_line(const json_t *d)
{
	static char buf[4096];
	size_t k = 0;
	size_t i;
	json_t *c;
	buf[0] = '\0';
	json_array_foreach(json_object_get(d, "changes"), i, c) {
		const char *t = json_string_value(json_object_get(c, "table"));
		int n = snprintf(buf + k, sizeof buf - k, "%s%s %s%s%s %s%s", k ? "; " : "",
				 json_string_value(json_object_get(c, "object")), t ? t : "", t ? "/" : "",
				 json_string_value(json_object_get(c, "name")), json_string_value(json_object_get(c, "change")),
				 json_is_true(json_object_get(c, "breaking")) ? " breaking" : "");
		assert_true(n > 0 && (size_t)n < sizeof buf - k);
		k += (size_t)n;
	}
	return buf;
}

static void expect_changes(const json_t *d, const char *want)
{
	const char *got = changes_line(d);
	if (strcmp(got, want))
		fail_msg("changes\n want: %s\n got:  %s", want, got);
}

static json_int_t summary_int(const json_t *d, const char *k)
{
	return json_integer_value(json_object_get(json_object_get(d, "summary"), k));
}

static bool summary_bool(const json_t *d, const char *k)
{
	return json_is_true(json_object_get(json_object_get(d, "summary"), k));
}

/* The emulator's TMDL parser (what its updateDefinition runs) accepts the files. */
static void emulator_accepts(const pb_files *f)
{
	char dir[256], path[1024], err[PB_ERR_MAX], cmd[2048];
	if (system("command -v python3 >/dev/null 2>&1")) {
		printf("SKIP: python3 not found; the emulator's parser was not run\n");
		return;
	}
	assert_int_equal(tu_mkdtemp(dir, sizeof dir, "model-diff"), 0);
	for (size_t i = 0; i < f->n; i++) {
		assert_int_equal(xsnprintf(path, sizeof path, "%s/%s", dir, f->v[i].path), 0);
		if (tu_write_file(path, f->v[i].content, f->v[i].len, err))
			fail_msg("%s", err);
	}
	assert_int_equal(xsnprintf(cmd, sizeof cmd,
				   "cd '%s' && python3 -c 'import os, sys; sys.path.insert(0, \"%s/tests/emulator\"); "
				   "import tmdl; parts = {}\n"
				   "for root, _, files in os.walk(\"definition\"):\n"
				   "    for n in files:\n"
				   "        p = os.path.join(root, n)\n"
				   "        parts[p] = open(p, encoding=\"utf-8\").read()\n"
				   "tmdl.parse_parts(parts)'",
				   dir, tu_src_dir()), 0);
	int rc = system(cmd);
	tu_rmtree(dir);
	if (rc)
		fail_msg("the emulator's TMDL parser refused the merged definition");
}

/* ---- diffs ---- */

static void identical_models_have_no_changes(void **state)
{
	(void)state;
	pb_files w, h;
	base(&w);
	base(&h);
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "");
	assert_int_equal(json_array_size(json_object_get(d, "kept")), 0);
	assert_int_equal(json_array_size(json_object_get(d, "blocking")), 0);
	assert_int_equal(summary_int(d, "added") + summary_int(d, "removed") + summary_int(d, "changed"), 0);
	assert_false(summary_bool(d, "breaking"));
	assert_false(summary_bool(d, "structure_changed"));
	json_decref(d);
	/* merging a model with itself gives it back unchanged, byte for byte */
	pb_files m;
	merge_ok(&w, &h, false, &m);
	assert_int_equal(m.n, w.n);
	for (size_t i = 0; i < w.n; i++) {
		assert_string_equal(m.v[i].path, w.v[i].path);
		assert_string_equal(m.v[i].content, w.v[i].content);
	}
	pb_files_release(&m);
	pb_files_release(&w);
	pb_files_release(&h);
}

static void added_column_is_one_change(void **state)
{
	(void)state;
	pb_files w, h;
	base(&w);
	base(&h);
	edit(&w, "definition/tables/Orders.tmdl", "\tpartition Orders",
	     "\tcolumn Discount\n\t\tdataType: double\n\t\tsourceColumn: DISCOUNT\n\n\t\t" GEN "\n\n\tpartition Orders");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "column Orders/Discount added");
	json_t *c = json_array_get(json_object_get(d, "changes"), 0);
	assert_true(json_is_null(json_object_get(c, "before")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "after"), "dataType")), "double");
	assert_int_equal(summary_int(d, "added"), 1);
	assert_false(summary_bool(d, "breaking"));
	assert_true(summary_bool(d, "structure_changed"));
	json_decref(d);
	pb_files_release(&w);
	pb_files_release(&h);
}

static void removed_column_is_breaking(void **state)
{
	(void)state;
	pb_files w, h;
	base(&w);
	base(&h);
	edit(&w, "definition/tables/Customers.tmdl",
	     "\tcolumn Name\n\t\tdataType: string\n\t\tlineageTag: c-customers-name\n\t\tsummarizeBy: none\n"
	     "\t\tsourceColumn: NAME\n\n\t\t" GEN "\n\n", "");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "column Customers/Name removed breaking");
	json_t *c = json_array_get(json_object_get(d, "changes"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "before"), "sourceColumn")), "NAME");
	assert_true(json_is_null(json_object_get(c, "after")));
	assert_true(summary_bool(d, "breaking"));
	json_decref(d);
	pb_files_release(&w);
	pb_files_release(&h);
}

static void data_type_change_is_breaking(void **state)
{
	(void)state;
	pb_files w, h;
	base(&w);
	base(&h);
	edit(&w, "definition/tables/Orders.tmdl", "\t\tdataType: decimal", "\t\tdataType: double");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "column Orders/Amount changed breaking");
	json_t *c = json_array_get(json_object_get(d, "changes"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "before"), "dataType")), "decimal");
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "after"), "dataType")), "double");
	json_t *props = json_object_get(c, "properties");
	assert_int_equal(json_array_size(props), 1);
	assert_string_equal(json_string_value(json_array_get(props, 0)), "dataType");
	assert_true(summary_bool(d, "structure_changed"));
	json_decref(d);
	pb_files_release(&w);
	pb_files_release(&h);
}

static void format_and_description_changes_are_not_breaking(void **state)
{
	(void)state;
	pb_files w, h;
	base(&w);
	base(&h);
	edit(&w, "definition/tables/Orders.tmdl", "\t\tformatString: #,0.00", "\t\tformatString: #,0.000");
	edit(&w, "definition/tables/Orders.tmdl", "/// What the customer paid.", "/// What the customer paid, taxes included.");
	edit(&w, "definition/tables/Orders.tmdl", "/// One row per order.", "/// One row per placed order.");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "table Orders changed; column Orders/Amount changed");
	json_t *props = json_object_get(json_array_get(json_object_get(d, "changes"), 1), "properties");
	assert_int_equal(json_array_size(props), 2);
	assert_string_equal(json_string_value(json_array_get(props, 0)), "formatString");
	assert_string_equal(json_string_value(json_array_get(props, 1)), "description");
	assert_false(summary_bool(d, "breaking"));
	assert_false(summary_bool(d, "structure_changed"));
	assert_int_equal(summary_int(d, "changed"), 2);
	json_decref(d);
	pb_files_release(&w);
	pb_files_release(&h);
}

static void removed_relationship_and_changed_partition(void **state)
{
	(void)state;
	pb_files w, h;
	base(&w);
	base(&h);
	drop(&w, "definition/relationships.tmdl");
	edit(&w, "definition/tables/Customers.tmdl", "[Name=\"CUSTOMERS\"", "[Name=\"CUSTOMERS_V2\"");
	edit(&w, "definition/expressions.tmdl", "acme.snowflakecomputing", "acme-eu.snowflakecomputing");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "partition Customers/Customers changed; relationship r-orders-customers removed breaking; "
			  "expression Host changed");
	json_t *c = json_array_get(json_object_get(d, "changes"), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(c, "properties"), 0)), "source");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(c, "after"), "source")), "CUSTOMERS_V2"));
	c = json_array_get(json_object_get(d, "changes"), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "before"), "fromColumn")), "CustomerId");
	assert_true(summary_bool(d, "structure_changed"));
	json_decref(d);
	pb_files_release(&w);
	pb_files_release(&h);
}

/* A table added and one removed, and the model's culture. */
static void tables_and_model(void **state)
{
	(void)state;
	pb_files w, h;
	base(&w);
	base(&h);
	put(&w, "definition/tables/Returns.tmdl",
	    "table Returns\n\tcolumn Id\n\t\tdataType: int64\n\t\tsourceColumn: ID\n\n\t\t" GEN "\n\n\t" GEN "\n");
	drop(&w, "definition/tables/Customers.tmdl");
	drop(&w, "definition/relationships.tmdl");
	edit(&w, "definition/model.tmdl", "culture: en-US", "culture: de-DE");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "model Model changed; table Returns added; table Customers removed breaking; "
			  "relationship r-orders-customers removed breaking");
	json_t *c = json_array_get(json_object_get(d, "changes"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "before"), "culture")), "en-US");
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "after"), "culture")), "de-DE");
	assert_int_equal(summary_int(d, "added"), 1);
	assert_int_equal(summary_int(d, "removed"), 2);
	json_decref(d);
	pb_files_release(&w);
	pb_files_release(&h);
}

/* ---- what analysts added survives ---- */

static void analyst_measure_is_kept_verbatim(void **state)
{
	(void)state;
	pb_files w, h, m;
	base(&w);
	base(&h);
	/* Power BI: a measure, a hierarchy, a calculated table with its ref, a role, model
	 * annotations and a property the analyst set, a diagram layout and .platform */
	edit(&h, "definition/tables/Orders.tmdl", "\tannotation PBI_ResultType = Table\n",
	     MEASURE "\n\thierarchy 'By Order'\n\t\tlevel OrderId\n\t\t\tcolumn: OrderId\n\n"
		     "\tannotation PBI_ResultType = Table\n");
	edit(&h, "definition/model.tmdl", "\tdefaultPowerBIDataSourceVersion: powerBI_V3\n",
	     "\tdefaultPowerBIDataSourceVersion: powerBI_V3\n\tdiscourageImplicitMeasures\n");
	edit(&h, "definition/model.tmdl", "ref table Customers\n",
	     "ref table Customers\nref table 'Top Customers'\n\nref role Readers\n\n"
	     "annotation PBIDesktopVersion = 2.140.679.0 (25.02)\n");
	const char *calc = "table 'Top Customers'\n"
			   "\tlineageTag: calc-1\n"
			   "\n"
			   "\tcolumn Name\n"
			   "\t\tdataType: string\n"
			   "\t\tlineageTag: calc-1-name\n"
			   "\t\tsourceColumn: [Name]\n"
			   "\n"
			   "\tpartition 'Top Customers' = calculated\n"
			   "\t\tmode: import\n"
			   "\t\tsource = TOPN(10, Customers, Customers[Name])\n"
			   "\n"
			   "\tannotation PBI_Id = 0f1e\n";
	const char *role = "role Readers\n\tmodelPermission: read\n\n\ttablePermission Orders = [Amount] > 0\n";
	put(&h, "definition/tables/Top Customers.tmdl", calc);
	put(&h, "definition/roles/Readers.tmdl", role);
	put(&h, "definition/database.tmdl", "database\n\tcompatibilityLevel: 1605\n");   /* raised by Power BI */
	put(&h, "diagramLayout.json", "{\"version\": \"1.1.0\"}\n");
	put(&h, ".platform", "{\"config\": {\"logicalId\": \"x\"}}\n");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "");
	json_t *kept = json_object_get(d, "kept");
	char *k = json_dumps(kept, JSON_COMPACT);
	assert_string_equal(k, "[{\"object\":\"measure\",\"table\":\"Orders\",\"name\":\"Total Amount\"},"
			       "{\"object\":\"hierarchy\",\"table\":\"Orders\",\"name\":\"By Order\"},"
			       "{\"object\":\"table\",\"name\":\"Top Customers\"},"
			       "{\"object\":\"role\",\"name\":\"Readers\"}]");
	free(k);
	json_decref(d);

	merge_ok(&w, &h, false, &m);
	const char *orders = text_of(&m, "definition/tables/Orders.tmdl");
	assert_non_null(strstr(orders, MEASURE));   /* byte for byte, in its table's file */
	assert_non_null(strstr(orders, "\thierarchy 'By Order'\n\t\tlevel OrderId\n\t\t\tcolumn: OrderId\n"));
	assert_string_equal(text_of(&m, "definition/tables/Top Customers.tmdl"), calc);   /* whole files */
	assert_string_equal(text_of(&m, "definition/roles/Readers.tmdl"), role);
	assert_string_equal(text_of(&m, "diagramLayout.json"), "{\"version\": \"1.1.0\"}\n");
	assert_null(find_file(&m, ".platform"));
	assert_string_equal(text_of(&m, "definition/database.tmdl"), "database\n\tcompatibilityLevel: 1605\n");
	const char *model = text_of(&m, "definition/model.tmdl");
	assert_non_null(strstr(model, "\tdiscourageImplicitMeasures\n"));
	assert_non_null(strstr(model, "ref table 'Top Customers'\n"));
	assert_non_null(strstr(model, "ref role Readers\n"));
	assert_non_null(strstr(model, "annotation PBIDesktopVersion = 2.140.679.0 (25.02)\n"));
	/* the rest is want's */
	assert_string_equal(text_of(&m, "definition/tables/Customers.tmdl"), text_of(&w, "definition/tables/Customers.tmdl"));

	/* the merged definition reads back, the emulator takes it, and it is what want wants */
	d = diff_ok(&w, &m);
	expect_changes(d, "");
	assert_int_equal(json_array_size(json_object_get(d, "kept")), 4);
	json_decref(d);
	emulator_accepts(&m);
	/* merging again changes nothing */
	pb_files m2;
	merge_ok(&w, &m, false, &m2);
	assert_int_equal(m2.n, m.n);
	for (size_t i = 0; i < m.n; i++)
		assert_string_equal(m2.v[i].content, m.v[i].content);
	pb_files_release(&m2);
	pb_files_release(&m);
	pb_files_release(&w);
	pb_files_release(&h);
}

/* A measure that names a removed column blocks the merge; with allow_breaking the measure
 * stays (its table does). One in a removed table goes with it. */
static void blocking_references(void **state)
{
	(void)state;
	pb_files w, h, m;
	char err[PB_ERR_MAX] = "";
	base(&w);
	base(&h);
	edit(&h, "definition/tables/Orders.tmdl", "\tannotation PBI_ResultType = Table\n",
	     MEASURE
	     "\n\tmeasure Quoted = CALCULATE(SUM('orders'[AMOUNT]), \"Orders[Amount] in a string\")\n"
	     "\n\tmeasure Ok = COUNTROWS(Orders) // Orders[Amount] in a comment\n"
	     "\n\tcolumn 'Amount Band' = IF([Amount] > 100, \"big\", \"small\")\n\t\tdataType: string\n"
	     "\n\tannotation PBI_ResultType = Table\n");
	edit(&h, "definition/tables/Customers.tmdl", "\n\t" GEN "\n", "\n\tmeasure Customers = COUNTROWS(Customers)\n\n\t" GEN "\n");
	edit(&w, "definition/tables/Orders.tmdl",
	     "\t/// What the customer paid.\n\tcolumn Amount\n\t\tdataType: decimal\n\t\tformatString: #,0.00\n"
	     "\t\tlineageTag: c-amount\n\t\tsummarizeBy: sum\n\t\tsourceColumn: AMOUNT\n\n\t\t" GEN "\n\n", "");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "column Orders/Amount removed breaking");
	char *b = json_dumps(json_object_get(d, "blocking"), JSON_COMPACT);
	assert_string_equal(b, "[{\"object\":\"column\",\"table\":\"Orders\",\"name\":\"Amount Band\","
			       "\"refers_to\":{\"table\":\"Orders\",\"column\":\"Amount\"},\"via\":\"dax\"},"
			       "{\"object\":\"measure\",\"table\":\"Orders\",\"name\":\"Total Amount\","
			       "\"refers_to\":{\"table\":\"Orders\",\"column\":\"Amount\"},\"via\":\"dax\"},"
			       "{\"object\":\"measure\",\"table\":\"Orders\",\"name\":\"Quoted\","
			       "\"refers_to\":{\"table\":\"Orders\",\"column\":\"Amount\"},\"via\":\"dax\"}]");
	free(b);
	json_decref(d);
	assert_int_equal(model_merge(&w, &h, false, &m, err), PB_ECONFLICT);
	assert_string_equal(err, "column 'Amount Band' of table 'Orders' refers to column 'Orders'[Amount], which "
				 "the contract removes (and 2 more); allow breaking changes to update anyway");
	assert_int_equal(m.n, 0);
	merge_ok(&w, &h, true, &m);
	assert_non_null(strstr(text_of(&m, "definition/tables/Orders.tmdl"), MEASURE));
	assert_non_null(strstr(text_of(&m, "definition/tables/Orders.tmdl"), "column 'Amount Band'"));
	pb_files_release(&m);

	/* the whole Customers table goes: its measure and the relationship with it */
	pb_files_release(&w);
	base(&w);
	drop(&w, "definition/tables/Customers.tmdl");
	drop(&w, "definition/relationships.tmdl");
	edit(&w, "definition/model.tmdl", "ref table Customers\n", "");
	d = diff_ok(&w, &h);
	b = json_dumps(json_object_get(d, "blocking"), JSON_COMPACT);
	assert_string_equal(b, "[{\"object\":\"measure\",\"table\":\"Customers\",\"name\":\"Customers\","
			       "\"refers_to\":{\"table\":\"Customers\"},\"via\":\"table_removed\"}]");
	free(b);
	json_decref(d);
	assert_int_equal(model_merge(&w, &h, false, &m, err), PB_ECONFLICT);
	assert_string_equal(err, "measure 'Customers' is in table 'Customers', which the contract removes; allow "
				 "breaking changes to update anyway");
	merge_ok(&w, &h, true, &m);
	assert_null(find_file(&m, "definition/tables/Customers.tmdl"));
	assert_null(strstr(text_of(&m, "definition/tables/Orders.tmdl"), "COUNTROWS(Customers)"));
	assert_non_null(strstr(text_of(&m, "definition/tables/Orders.tmdl"), MEASURE));
	emulator_accepts(&m);
	pb_files_release(&m);
	pb_files_release(&w);
	pb_files_release(&h);
}

/* Kept relationships and hierarchy levels on a removed column are dropped with
 * allow_breaking (Power BI refuses them); a kept object named like a new column never merges. */
static void structural_references_and_name_clash(void **state)
{
	(void)state;
	pb_files w, h, m;
	char err[PB_ERR_MAX] = "";
	base(&w);
	base(&h);
	edit(&h, "definition/relationships.tmdl", "\t" GEN "\n",
	     "\t" GEN "\n\nrelationship analyst-made\n\tisActive: false\n\tfromColumn: Orders.Amount\n"
	     "\ttoColumn: Customers.CustomerId\n");
	edit(&h, "definition/tables/Orders.tmdl", "\tannotation PBI_ResultType = Table\n",
	     "\thierarchy Amounts\n\t\tlevel Amount\n\t\t\tcolumn: Amount\n\n\tannotation PBI_ResultType = Table\n");
	edit(&w, "definition/tables/Orders.tmdl", "\tcolumn Amount\n", "\tcolumn Amount2\n");
	json_t *d = diff_ok(&w, &h);
	char *b = json_dumps(json_object_get(d, "blocking"), JSON_COMPACT);
	assert_string_equal(b, "[{\"object\":\"hierarchy\",\"table\":\"Orders\",\"name\":\"Amounts\","
			       "\"refers_to\":{\"table\":\"Orders\",\"column\":\"Amount\"},\"via\":\"hierarchy_level\"},"
			       "{\"object\":\"relationship\",\"name\":\"analyst-made\","
			       "\"refers_to\":{\"table\":\"Orders\",\"column\":\"Amount\"},\"via\":\"relationship\"}]");
	free(b);
	json_decref(d);
	assert_int_equal(model_merge(&w, &h, false, &m, err), PB_ECONFLICT);
	merge_ok(&w, &h, true, &m);
	assert_null(strstr(text_of(&m, "definition/tables/Orders.tmdl"), "hierarchy Amounts"));
	assert_null(strstr(text_of(&m, "definition/relationships.tmdl"), "analyst-made"));
	emulator_accepts(&m);
	pb_files_release(&m);

	/* the contract adds a column named like the analyst's measure */
	pb_files_release(&h);
	base(&h);
	edit(&h, "definition/tables/Orders.tmdl", "\t" GEN "\n\n\tpartition", "\t" GEN "\n\n\tmeasure discount = 1\n\n\tpartition");
	edit(&w, "definition/tables/Orders.tmdl", "\tpartition Orders",
	     "\tcolumn Discount\n\t\tdataType: double\n\t\tsourceColumn: DISCOUNT\n\n\t\t" GEN "\n\n\tpartition Orders");
	d = diff_ok(&w, &h);
	b = json_dumps(json_object_get(d, "blocking"), JSON_COMPACT);
	assert_string_equal(b, "[{\"object\":\"measure\",\"table\":\"Orders\",\"name\":\"discount\","
			       "\"refers_to\":{\"table\":\"Orders\",\"column\":\"Discount\"},\"via\":\"name_clash\"}]");
	free(b);
	json_decref(d);
	assert_int_equal(model_merge(&w, &h, true, &m, err), PB_ECONFLICT);
	assert_string_equal(err, "measure 'discount' of table 'Orders' has the name of the contract's column 'Discount' "
				 "of table 'Orders': rename one of them in Power BI or in the contract");
	pb_files_release(&w);
	pb_files_release(&h);
}

/* rename_column in Power BI (the emulator's edit call): the generated column under a new
 * name is removed, the contract's added back. */
static void renamed_column_is_removed_and_added(void **state)
{
	(void)state;
	pb_files w, h;
	base(&w);
	base(&h);
	edit(&h, "definition/tables/Orders.tmdl", "\tcolumn Amount\n", "\tcolumn 'Net Amount'\n");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "column Orders/Amount added; column Orders/Net Amount removed breaking");
	json_decref(d);
	pb_files_release(&w);
	pb_files_release(&h);
}

static void names_compare_without_case(void **state)
{
	(void)state;
	pb_files w, h;
	base(&w);
	base(&h);
	edit(&h, "definition/tables/Orders.tmdl", "table Orders", "table ORDERS");
	edit(&h, "definition/tables/Orders.tmdl", "\tcolumn Amount\n", "\tcolumn aMOUNT\n");
	edit(&w, "definition/tables/Customers.tmdl", "\tcolumn Name\n", "\tcolumn 'Ärger Größe'\n");
	edit(&h, "definition/tables/Customers.tmdl", "\tcolumn Name\n", "\tcolumn 'äRGER GRÖSSE'\n");
	edit(&h, "definition/relationships.tmdl", "relationship r-orders-customers", "relationship R-Orders-Customers");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "");
	json_decref(d);
	pb_files_release(&w);
	pb_files_release(&h);
}

#define HOSTILE "O'Brien's \"Sales\" 🚀 שלום"
#define HOSTILE_Q "'O''Brien''s \"Sales\" 🚀 שלום'"

static void hostile_names_round_trip(void **state)
{
	(void)state;
	pb_files w, h, m;
	base(&w);
	for (size_t i = 0; i < w.n; i++)
		if (strstr(w.v[i].path, ".tmdl"))
			while (strstr(w.v[i].content, "Customers"))
				edit(&w, w.v[i].path, "Customers", HOSTILE_Q);
	edit(&w, "definition/tables/Customers.tmdl", "\tcolumn Name\n", "\tcolumn 'נ''ame \"x\" 😀'\n");
	h.v = NULL;
	h.n = 0;
	for (size_t i = 0; i < w.n; i++)
		put(&h, w.v[i].path, w.v[i].content);
	edit(&h, "definition/tables/Customers.tmdl", "\t" GEN "\n\n\tpartition",
	     "\t" GEN "\n\n\tmeasure 'ספירה ''🚀''' = COUNTROWS(" HOSTILE_Q ") + SUM(" HOSTILE_Q "[נ'ame \"x\" 😀])\n"
	     "\n\tpartition");
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "");
	json_t *kept = json_array_get(json_object_get(d, "kept"), 0);
	assert_string_equal(json_string_value(json_object_get(kept, "table")), HOSTILE);
	assert_string_equal(json_string_value(json_object_get(kept, "name")), "ספירה '🚀'");
	json_decref(d);
	merge_ok(&w, &h, false, &m);
	d = diff_ok(&w, &m);
	expect_changes(d, "");
	assert_int_equal(json_array_size(json_object_get(d, "kept")), 1);
	json_decref(d);
	emulator_accepts(&m);
	pb_files_release(&m);
	/* the column goes: the measure names it through the hostile table name */
	edit(&w, "definition/tables/Customers.tmdl", "\tcolumn 'נ''ame \"x\" 😀'\n", "\tcolumn Other\n");
	d = diff_ok(&w, &h);
	json_t *b = json_array_get(json_object_get(d, "blocking"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "refers_to"), "table")), HOSTILE);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "refers_to"), "column")), "נ'ame \"x\" 😀");
	json_decref(d);
	pb_files_release(&w);
	pb_files_release(&h);
}

/* Objects of a template without the annotation belong to the analysts once published: the
 * live copy wins. A model published before the annotation existed is adopted. */
static void unannotated_objects(void **state)
{
	(void)state;
	pb_files w, h, m;
	base(&w);
	base(&h);
	edit(&w, "definition/tables/Orders.tmdl", "\tpartition Orders", "\tmeasure 'Row Count' = COUNTROWS(Orders)\n\n\tpartition Orders");
	edit(&h, "definition/tables/Orders.tmdl", "\tpartition Orders",
	     "\tmeasure 'Row Count' = COUNTROWS(Orders) + 0\n\t\tformatString: 0\n\n\tpartition Orders");
	merge_ok(&w, &h, false, &m);
	const char *orders = text_of(&m, "definition/tables/Orders.tmdl");
	assert_non_null(strstr(orders, "COUNTROWS(Orders) + 0"));
	assert_null(strstr(orders, "COUNTROWS(Orders)\n"));
	emulator_accepts(&m);
	pb_files_release(&m);
	pb_files_release(&h);

	/* no annotation anywhere in have: its tables, columns and relationships are taken for
	 * pbiport's; a dropped data column shows as removed, the analyst's measure as kept */
	base(&h);
	for (size_t i = 0; i < h.n; i++)
		while (strstr(h.v[i].content, GEN "\n"))
			edit(&h, h.v[i].path, GEN "\n", "annotation PBI_Other = 1\n");
	edit(&h, "definition/tables/Orders.tmdl", "\tpartition Orders", "\tmeasure Total = SUM(Orders[OrderId])\n\n\tpartition Orders");
	pb_files_release(&w);
	base(&w);
	json_t *d = diff_ok(&w, &h);
	expect_changes(d, "");
	assert_int_equal(json_array_size(json_object_get(d, "kept")), 1);
	json_decref(d);
	edit(&w, "definition/tables/Customers.tmdl", "\tcolumn Name\n\t\tdataType: string\n", "\tcolumn Nom\n\t\tdataType: string\n");
	d = diff_ok(&w, &h);
	expect_changes(d, "column Customers/Nom added; column Customers/Name removed breaking");
	json_decref(d);
	pb_files_release(&w);
	pb_files_release(&h);
}

/* One plan answers the diff and the merge (both allow_breaking settings) as the two calls do. */
static void plan_gives_the_same_answers(void **state)
{
	(void)state;
	pb_files w, h, m1, m2;
	model_plan *p = NULL;
	char err[PB_ERR_MAX] = "";
	base(&w);
	base(&h);
	edit(&h, "definition/tables/Orders.tmdl", "\tannotation PBI_ResultType = Table\n", MEASURE "\n\tannotation PBI_ResultType = Table\n");
	edit(&w, "definition/tables/Orders.tmdl", "\tcolumn Amount\n", "\tcolumn Paid\n");
	if (model_plan_new(&w, &h, &p, err))
		fail_msg("%s", err);
	json_t *a = NULL, *b = diff_ok(&w, &h);
	assert_int_equal(model_plan_diff(p, &a, err), 0);
	assert_true(json_equal(a, b));
	json_decref(a);
	assert_int_equal(model_plan_diff(p, &a, err), 0);   /* again: the same, a new reference */
	assert_true(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	assert_int_equal(model_plan_merge(p, false, &m1, err), PB_ECONFLICT);
	assert_string_equal(err, "measure 'Total Amount' of table 'Orders' refers to column 'Orders'[Amount], which the "
				 "contract removes; allow breaking changes to update anyway");
	assert_int_equal(m1.n, 0);
	assert_int_equal(model_plan_merge(p, true, &m1, err), 0);
	merge_ok(&w, &h, true, &m2);
	assert_int_equal(m1.n, m2.n);
	for (size_t i = 0; i < m1.n; i++)
		assert_string_equal(m1.v[i].content, m2.v[i].content);
	pb_files_release(&m1);
	pb_files_release(&m2);
	model_plan_free(p);
	model_plan_free(NULL);
	/* a side that does not parse: no plan */
	edit(&h, "definition/tables/Orders.tmdl", "\tcolumn CustomerId\n", "\t\t\tcolumn CustomerId\n");
	assert_int_equal(model_plan_new(&w, &h, &p, err), PB_EINVAL);
	assert_null(p);
	assert_non_null(strstr(err, "definition/tables/Orders.tmdl:15: "));
	pb_files_release(&w);
	pb_files_release(&h);
}

/* ---- errors ---- */

static void unparsable_side_names_file_and_line(void **state)
{
	(void)state;
	pb_files w, h, m;
	json_t *d = NULL;
	char err[PB_ERR_MAX] = "";
	base(&w);
	base(&h);
	edit(&h, "definition/tables/Orders.tmdl", "\tcolumn CustomerId\n", "    column CustomerId\n");
	assert_int_equal(model_diff(&w, &h, &d, err), PB_EINVAL);
	assert_null(d);
	assert_string_equal(err, "definition/tables/Orders.tmdl:15: indentation must use tabs, not spaces");
	assert_int_equal(model_merge(&w, &h, false, &m, err), PB_EINVAL);
	assert_int_equal(m.n, 0);
	assert_string_equal(err, "definition/tables/Orders.tmdl:15: indentation must use tabs, not spaces");
	edit(&w, "definition/model.tmdl", "ref table Orders", "ref table 'Orders");
	assert_int_equal(model_diff(&w, &w, &d, err), PB_EINVAL);
	assert_string_equal(err, "definition/model.tmdl:9: unterminated quoted name");
	pb_files_release(&w);
	pb_files_release(&h);
}

/* ---- real contracts ---- */

static void rendered_contracts_equal_themselves(void **state)
{
	(void)state;
	static const char *const contracts[] = { "examples/contracts/orders.odcs.yaml",
		"examples/contracts/events-databricks.odcs.yaml" };
	for (size_t i = 0; i < sizeof contracts / sizeof *contracts; i++) {
		char path[1024], err[PB_ERR_MAX] = "";
		pb_contract *c = NULL;
		pb_files f, m;
		assert_int_equal(tu_src_path(path, sizeof path, contracts[i]), 0);
		if (contract_load(path, &c, err))
			fail_msg("%s: %s", path, err);
		render_value v = { "http_path", "/sql/1.0/warehouses/x" };
		render_opts o = { .values = &v, .nvalues = 1 };
		if (tmdl_render(c, &o, &f, err))
			fail_msg("%s: %s", path, err);
		json_t *d = diff_ok(&f, &f);
		expect_changes(d, "");
		assert_int_equal(json_array_size(json_object_get(d, "kept")), 0);
		json_decref(d);
		merge_ok(&f, &f, false, &m);
		assert_int_equal(m.n, f.n);
		for (size_t k = 0; k < f.n; k++)
			assert_string_equal(m.v[k].content, f.v[k].content);
		pb_files_release(&m);
		pb_files_release(&f);
		contract_free(c);
	}
}

/* ---- real Power BI models ($PBIPORT_CORPUS/tmdl) ---- */

/* Adds every file below root/rel (hidden entries skipped) to f, named by its path from root. */
static void read_tree(pb_files *f, const char *root, const char *rel)
{
	char dir[4096], path[4096], sub[4096], err[PB_ERR_MAX];
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel), 0);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		assert_int_equal(xsnprintf(path, sizeof path, "%s/%s", dir, e->d_name), 0);
		assert_int_equal(xsnprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name), 0);
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			read_tree(f, root, sub);
			continue;
		}
		char *text = NULL;
		size_t len = 0;
		if (read_file(path, 1u << 26, &text, &len, err))
			fail_msg("%s", err);
		put(f, sub, text);
		free(text);
	}
	closedir(d);
}

/* Every corpus model: equal to itself; merged with itself it reads back the same; as the live
 * model under our generated one (nothing of it annotated: all of it the analysts'), it is kept
 * whole beside it, and the emulator takes the result. */
static void corpus_models(void **state)
{
	(void)state;
	char dir[4096], model[4096];
	static const char *const models[] = { "analysis-services/Sales.SemanticModel", "pbiplint/te3-zoo.SemanticModel",
		"fabric-samples/Bank Customer Churn Analysis.SemanticModel", "fabric-toolbox/FUAM_Core_SM.SemanticModel",
		"fabric-toolbox/Gateway Monitoring.SemanticModel", "fabric-cicd/ABC.SemanticModel" };
	if (!tu_corpus_path("tmdl", "corpus models", dir, sizeof dir))
		return;
	for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
		pb_files x = { 0 }, w, m, m2;
		assert_int_equal(xsnprintf(model, sizeof model, "%s/%s", dir, models[i]), 0);
		read_tree(&x, model, "");
		json_t *d = diff_ok(&x, &x);
		expect_changes(d, "");
		size_t kept = json_array_size(json_object_get(d, "kept"));
		assert_true(kept > 0);
		json_decref(d);
		merge_ok(&x, &x, false, &m);
		d = diff_ok(&x, &m);
		expect_changes(d, "");
		assert_int_equal(json_array_size(json_object_get(d, "kept")), kept);
		json_decref(d);
		pb_files_release(&m);

		base(&w);
		merge_ok(&w, &x, true, &m);
		d = diff_ok(&w, &m);
		expect_changes(d, "");
		json_decref(d);
		merge_ok(&w, &m, true, &m2);
		for (size_t k = 0; k < m.n; k++)
			assert_string_equal(m2.v[k].content, m.v[k].content);
		emulator_accepts(&m);
		printf("corpus: %s: %zu kept objects\n", models[i], kept);
		pb_files_release(&m2);
		pb_files_release(&m);
		pb_files_release(&w);
		pb_files_release(&x);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(identical_models_have_no_changes),
		cmocka_unit_test(added_column_is_one_change),
		cmocka_unit_test(removed_column_is_breaking),
		cmocka_unit_test(data_type_change_is_breaking),
		cmocka_unit_test(format_and_description_changes_are_not_breaking),
		cmocka_unit_test(removed_relationship_and_changed_partition),
		cmocka_unit_test(tables_and_model),
		cmocka_unit_test(analyst_measure_is_kept_verbatim),
		cmocka_unit_test(blocking_references),
		cmocka_unit_test(structural_references_and_name_clash),
		cmocka_unit_test(renamed_column_is_removed_and_added),
		cmocka_unit_test(names_compare_without_case),
		cmocka_unit_test(hostile_names_round_trip),
		cmocka_unit_test(unannotated_objects),
		cmocka_unit_test(plan_gives_the_same_answers),
		cmocka_unit_test(unparsable_side_names_file_and_line),
		cmocka_unit_test(rendered_contracts_equal_themselves),
		cmocka_unit_test(corpus_models),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
