/* Unit tests for core/lang/tmdl: fixture model, every construct, every error (exact FILE:LINE),
 * the public API, and the shared corpus ($PBIPORT_CORPUS/tmdl, skipped when absent). */
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
#include <unistd.h>

#include "core/lang/names.h"
#include "core/lang/tmdl.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

#define FIX "tests/fixtures/tmdl/"

/* Parses in-memory documents (NULL-terminated name/text pairs) and finishes the model. */
static int parse_docs(tmdl_model **out, char *err, ...)
{
	va_list ap;
	int rc = PB_OK;
	tmdl_model *m = tmdl_model_new();
	assert_non_null(m);
	va_start(ap, err);
	for (;;) {
		const char *name = va_arg(ap, const char *);
		if (!name)
			break;
		const char *text = va_arg(ap, const char *);
		if ((rc = tmdl_parse_buffer(m, name, text, strlen(text), err)))
			break;
	}
	va_end(ap);
	if (!rc)
		rc = tmdl_model_finish(m, err);
	if (rc) {
		tmdl_model_free(m);
		m = NULL;
	}
	*out = m;
	return rc;
}

static void expect_error(const char *text, int rc_want, const char *msg_want)
{
	char err[PB_ERR_MAX] = "";
	tmdl_model *m = NULL;
	int rc = parse_docs(&m, err, "t.tmdl", text, NULL);
	if (rc != rc_want || strcmp(err, msg_want))
		fail_msg("input:\n%s\nwant %d '%s'\ngot  %d '%s'", text, rc_want, msg_want, rc, err);
	assert_null(m);
}

/* ---- the fixture model ---- */

static void fixture_model(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	tmdl_model *m = NULL;
	int rc = tmdl_parse_path(FIX "basic.SemanticModel", &m, err);
	if (rc)
		fail_msg("%s", err);
	assert_string_equal(m->name, "Model");
	assert_string_equal(m->culture, "en-US");
	assert_int_equal(m->n_documents, 8);

	/* ref order: Sales, (Ghost is missing), Customer; then the unreferenced table */
	assert_int_equal(m->n_tables, 3);
	assert_string_equal(m->tables[0].name, "Sales");
	assert_string_equal(m->tables[1].name, "Customer");
	assert_string_equal(m->tables[2].name, "O'Brien");
	assert_null(tmdl_model_find_table(m, "Ghost"));
	assert_ptr_equal(tmdl_model_find_table(m, "sALES"), &m->tables[0]);

	/* Sales: partial declaration in measures.tmdl (read first) + tables/Sales.tmdl */
	const tmdl_table *s = &m->tables[0];
	assert_string_equal(s->lineage_tag, "22222222-0000-4000-8000-000000000001");
	assert_int_equal(s->n_measures, 3);
	assert_string_equal(s->measures[0].name, "Order Count");
	assert_string_equal(s->measures[0].expression, "COUNTROWS(Sales)");
	const tmdl_measure *amt = tmdl_table_find_measure(s, "sales amount");
	assert_non_null(amt);
	assert_string_equal(amt->expression, "SUM(Sales[Amount])");
	assert_string_equal(amt->description, "Total of the net amount.");
	assert_string_equal(amt->format_string, "#,0.00");
	assert_string_equal(amt->display_folder, " Key \"KPIs\"");
	assert_false(amt->is_hidden);
	const tmdl_measure *yoy = tmdl_table_find_measure(s, "Umsatz (\xce\x94 VJ)");
	assert_non_null(yoy);
	assert_string_equal(yoy->expression,
			    "VAR cur = [Sales Amount]\n"
			    "VAR prev = CALCULATE([Sales Amount], SAMEPERIODLASTYEAR('Date'[Date]))\n"
			    "\n"
			    "RETURN DIVIDE(cur - prev, prev)");
	assert_string_equal(yoy->format_string, "0.0%");
	assert_true(yoy->is_hidden);
	assert_string_equal(yoy->node->file, FIX "basic.SemanticModel/definition/tables/Sales.tmdl");
	assert_int_equal(yoy->node->line, 9);

	assert_int_equal(s->n_columns, 3);
	const tmdl_column *a = tmdl_table_find_column(s, "Amount");
	assert_string_equal(a->data_type, "decimal");
	assert_string_equal(a->format_string, "\\$#,0.00;(\\$#,0.00);\\$#,0.00");
	assert_string_equal(a->summarize_by, "sum");
	assert_string_equal(a->source_column, "AMOUNT");
	assert_null(a->expression);
	const tmdl_column *x2 = tmdl_table_find_column(s, "amount X2");
	assert_string_equal(x2->expression, "[Amount] * 2");
	assert_null(x2->source_column);

	assert_int_equal(s->n_partitions, 1);
	const tmdl_partition *sp = &s->partitions[0];
	assert_string_equal(sp->source_type, "entity");
	assert_string_equal(sp->mode, "directLake");
	assert_string_equal(sp->entity_name, "sales");
	assert_string_equal(sp->schema_name, "dbo");
	assert_string_equal(sp->expression_source, "Direct Lake Source");
	assert_null(sp->source);

	/* unknown keyword kept as a generic node with its children */
	const tmdl_node *future = tmdl_node_child(s->node, "FUTURETHING");
	assert_non_null(future);
	assert_int_equal(future->kind, TMDL_NODE_OBJECT);
	assert_string_equal(future->name, "Something New");
	assert_string_equal(future->value, "42");
	assert_string_equal(tmdl_node_child(future, "someSetting")->value, "on");

	/* Customer: multi-line description, keys, fenced M with kept trailing blanks */
	const tmdl_table *c = &m->tables[1];
	assert_string_equal(c->description, "People who buy things.\n\nSecond paragraph.");
	const tmdl_column *ck = &c->columns[0];
	assert_string_equal(ck->name, "Customer Key");
	assert_true(ck->is_hidden);
	assert_true(ck->is_key);
	assert_false(ck->is_nullable);
	assert_string_equal(ck->format_string, "0");
	assert_int_equal(ck->n_annotations, 1);
	assert_string_equal(ck->annotations[0].name, "SummarizationSetBy");
	assert_string_equal(ck->annotations[0].value, "Automatic");
	const tmdl_column *nm = &c->columns[1];
	assert_string_equal(nm->data_type, "string");  /* written String */
	assert_string_equal(nm->summarize_by, "none"); /* written None */
	assert_string_equal(nm->source_column, "NAME"); /* written "NAME" */
	assert_string_equal(nm->sort_by_column, "Customer Key");
	assert_true(nm->is_nullable);
	assert_string_equal(c->partitions[0].mode, "directQuery");
	assert_string_equal(c->partitions[0].source,
			    "let\n"
			    "    Source = Snowflake.Databases(Server, \"WH\"),\n"
			    "    T = Source{[Name=\"CUSTOMER\",Kind=\"Table\"]}[Data]   \n"
			    "\n"
			    "in\n"
			    "    T");
	assert_true(c->partitions[0].node->first_child->next->fenced);
	assert_int_equal(c->n_annotations, 1);

	const tmdl_table *ob = &m->tables[2];
	assert_true(ob->is_hidden);
	assert_string_equal(ob->columns[0].name, "Stra\xc3\x9f" "e");

	/* relationships with dotted, quoted, non-ASCII references */
	assert_int_equal(m->n_relationships, 2);
	const tmdl_relationship *r0 = &m->relationships[0], *r1 = &m->relationships[1];
	assert_string_equal(r0->from_table, "Sales");
	assert_string_equal(r0->from_column, "Customer Key");
	assert_string_equal(r0->to_table, "Customer");
	assert_string_equal(r0->to_column, "Customer Key");
	assert_true(r0->is_active);
	assert_string_equal(r0->from_cardinality, "many");
	assert_string_equal(r0->to_cardinality, "one");
	assert_string_equal(r0->cross_filtering_behavior, "oneDirection");
	assert_string_equal(r1->from_table, "O'Brien");
	assert_string_equal(r1->from_column, "Stra\xc3\x9f" "e");
	assert_string_equal(r1->to_column, "Name");
	assert_false(r1->is_active);
	assert_string_equal(r1->from_cardinality, "one");
	assert_string_equal(r1->cross_filtering_behavior, "bothDirections");

	/* shared expressions */
	assert_int_equal(m->n_expressions, 2);
	const tmdl_expression *srv = tmdl_model_find_expression(m, "server");
	assert_string_equal(srv->value, "\"xy12345.snowflakecomputing.com\" meta [IsParameterQuery=true, "
			    "Type=\"Text\", IsParameterQueryRequired=true]");
	assert_string_equal(srv->description, "Snowflake account host");
	assert_string_equal(srv->query_group, "Connection Parameters");
	assert_string_equal(srv->annotations[0].value, "Text");
	assert_string_equal(m->expressions[1].value,
			    "let\n    Source = Snowflake.Databases(Server, \"WH\")\nin\n    Source");
	assert_string_equal(m->expressions[1].lineage_tag, "6a1f0f5e-0000-4000-8000-000000000002");

	/* model annotations: inside `model` first, then the top-level ones */
	assert_int_equal(m->n_annotations, 3);
	assert_string_equal(m->annotations[0].name, "InsideModel");
	assert_string_equal(m->annotations[1].value, "[\"Sales\",\"Customer\"]");
	assert_string_equal(m->annotations[2].name, "__PBI_TimeIntelligenceEnabled");

	/* bare booleans and struct blocks in the tree */
	const tmdl_node *model = tmdl_node_child(tmdl_model_root(m), "model");
	assert_int_equal(tmdl_node_child(model, "discourageImplicitMeasures")->kind, TMDL_NODE_BARE);
	const tmdl_node *dao = tmdl_node_child(model, "dataAccessOptions");
	assert_non_null(tmdl_node_child(dao, "legacyRedirects"));
	const tmdl_node *db = tmdl_node_child(tmdl_model_root(m), "database");
	assert_null(db->name);
	assert_string_equal(tmdl_node_child(db, "compatibilityLevel")->value, "1604");
	tmdl_model_free(m);
}

/* ---- errors: each names file and line ---- */

static void fixture_errors(void **state)
{
	(void)state;
	static const struct {
		const char *path;
		int rc;
		const char *msg;
	} cases[] = {
		{ FIX "errors/spaces.tmdl", PB_EINVAL, FIX "errors/spaces.tmdl:2: indentation must use tabs, not spaces" },
		{ FIX "errors/unterminated_fence.tmdl", PB_EINVAL, FIX "errors/unterminated_fence.tmdl:2: unterminated ``` block" },
		{ FIX "errors/dup_column.tmdl", PB_EINVAL, FIX "errors/dup_column.tmdl:6: duplicate declaration of column 'c' in table 'T' (first declared at " FIX "errors/dup_column.tmdl:3)" },
		{ FIX "errors/dup_property.tmdl", PB_EINVAL, FIX "errors/dup_property.tmdl:5: duplicate property 'lineageTag' of table 'T' (first set at " FIX "errors/dup_property.tmdl:2)" },
		{ FIX "errors/dup_annotation.tmdl", PB_EINVAL, FIX "errors/dup_annotation.tmdl:3: duplicate annotation 'X' (first declared at " FIX "errors/dup_annotation.tmdl:1)" },
		{ FIX "errors/column_outside.tmdl", PB_EINVAL, FIX "errors/column_outside.tmdl:3: column 'Orphan' is outside a table" },
		{ FIX "errors/bad_utf8.tmdl", PB_EINVAL, FIX "errors/bad_utf8.tmdl:2: invalid UTF-8" },
		{ FIX "errors/too_deep.tmdl", PB_EINVAL, FIX "errors/too_deep.tmdl:2: unexpected indentation: 3 tabs where at most 1 are allowed" },
		{ FIX "errors/property_child.tmdl", PB_EINVAL, FIX "errors/property_child.tmdl:3: unexpected indentation: property 'lineageTag' (line 2) cannot have nested lines" },
		{ FIX "errors/bad_bool.tmdl", PB_EINVAL, FIX "errors/bad_bool.tmdl:3: isHidden: expected true or false, found 'maybe'" },
		{ FIX "errors/bad_ref.tmdl", PB_EINVAL, FIX "errors/bad_ref.tmdl:2: fromColumn: expected Table.Column, found 'Sales'" },
		{ FIX "errors/unterminated_name.tmdl", PB_EINVAL, FIX "errors/unterminated_name.tmdl:1: unterminated quoted name" },
		{ FIX "errors/dangling_description.tmdl", PB_EINVAL, FIX "errors/dangling_description.tmdl:3: description (///) is not followed by a declaration" },
		{ FIX "dup-across-files", PB_EINVAL, FIX "dup-across-files/definition/tables/B.tmdl:5: duplicate declaration of column 'C' in table 'T' (first declared at " FIX "dup-across-files/definition/tables/A.tmdl:2)" },
		{ FIX "errors/no-such-file.tmdl", PB_ENOTFOUND, FIX "errors/no-such-file.tmdl: No such file or directory" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[PB_ERR_MAX] = "";
		tmdl_model *m = (tmdl_model *)1;
		int rc = tmdl_parse_path(cases[i].path, &m, err);
		if (rc != cases[i].rc || strcmp(err, cases[i].msg))
			fail_msg("%s: want %d '%s', got %d '%s'", cases[i].path, cases[i].rc, cases[i].msg, rc, err);
		assert_null(m);
	}
}

static void syntax_errors(void **state)
{
	(void)state;
	expect_error("table ''\n", PB_EINVAL, "t.tmdl:1: empty name");
	expect_error("table 'a\tb'\n", PB_EINVAL, "t.tmdl:1: control character in name");
	expect_error("table T\n\t= 1\n", PB_EINVAL, "t.tmdl:2: expected a keyword or property name, found '= 1'");
	expect_error("table T\n\tcolumn'C'\n", PB_EINVAL, "t.tmdl:2: unexpected ''' after 'column'");
	expect_error("table 'T' extra\n", PB_EINVAL, "t.tmdl:1: unexpected text after the name of table 'T'");
	expect_error("ref table\n", PB_EINVAL, "t.tmdl:1: expected a name after 'ref table'");
	expect_error("ref 'x'\n", PB_EINVAL, "t.tmdl:1: expected an object type after 'ref'");
	expect_error("\t/// a\n/// b\ntable T\n", PB_EINVAL, "t.tmdl:2: description lines at different indentation");
	expect_error("/// a\n\ttable T\n", PB_EINVAL, "t.tmdl:2: unexpected indentation: 1 tabs where at most 0 are allowed");
	expect_error("table T\n\t/// a\nmodel M\n", PB_EINVAL,
		     "t.tmdl:2: description (///) is not followed by a declaration at the same indentation");
	expect_error("table T\n\tmeasure M =\n\t\t\tA\n\t    B\n", PB_EINVAL, "t.tmdl:4: indentation must use tabs, not spaces");
	expect_error("measure M = 1\n", PB_EINVAL, "t.tmdl:1: measure 'M' is outside a table");
	expect_error("model Model\n\tpartition P = m\n", PB_EINVAL, "t.tmdl:2: partition 'P' is outside a table");
	expect_error("relationship r\n\tfromColumn: A.B\n", PB_EINVAL, "t.tmdl:1: relationship 'r' has no toColumn");
	expect_error("relationship r\n\tfromColumn: A.'B' x\n\ttoColumn: C.D\n", PB_EINVAL,
		     "t.tmdl:2: fromColumn: unexpected text after the column in 'A.'B' x'");
	expect_error("table T\n\tcolumn C\n\t\tkpi\n\t\t\tx\n\t\tkpi\n\t\t\ty\n", PB_EINVAL,
		     "t.tmdl:5: duplicate block kpi in column 'C' (first declared at t.tmdl:3)");
	expect_error("table T\n\tmeasure M = 1\n\ntable t\n\tmeasure m = 2\n", PB_EINVAL,
		     "t.tmdl:5: duplicate declaration of measure 'm' in table 'T' (first declared at t.tmdl:2)");
	expect_error("expression E = 1\nexpression E = 2\n", PB_EINVAL,
		     "t.tmdl:2: duplicate expression 'E' (first declared at t.tmdl:1)");

	/* NUL byte: strlen would stop there, so feed the buffer by length */
	char err[PB_ERR_MAX];
	tmdl_model *m = tmdl_model_new();
	assert_int_equal(tmdl_parse_buffer(m, "n.tmdl", "table T\n\tx: a\0b\n", 15, err), PB_EINVAL);
	assert_string_equal(err, "n.tmdl:2: NUL byte in text");
	tmdl_model_free(m);

	/* a name over the limit: Power BI's 512 characters take at most 1536 bytes */
	char *big = malloc(PB_PBI_NAME_MAX_BYTES + 16);
	assert_non_null(big);
	memcpy(big, "table ", 6);
	memset(big + 6, 'n', PB_PBI_NAME_MAX_BYTES + 1);
	big[PB_PBI_NAME_MAX_BYTES + 7] = '\0';
	char want[128];
	assert_int_equal(xsnprintf(want, sizeof want, "t.tmdl:1: name longer than %d bytes", PB_PBI_NAME_MAX_BYTES), 0);
	expect_error(big, PB_EINVAL, want);
	/* and one of 512 three-byte characters is read */
	char *ok = malloc(PB_PBI_NAME_MAX_BYTES + 32);
	assert_non_null(ok);
	memcpy(ok, "table '", 7);
	for (int i = 0; i < PB_PBI_NAME_MAX_CHARS; i++)
		memcpy(ok + 7 + 3 * i, "\xe2\x82\xac", 3);
	memcpy(ok + 7 + PB_PBI_NAME_MAX_BYTES, "'\n", 3);
	tmdl_model *m2 = tmdl_model_new();
	assert_int_equal(tmdl_parse_buffer(m2, "ok.tmdl", ok, strlen(ok), want), 0);
	assert_int_equal(tmdl_model_finish(m2, want), 0);
	assert_int_equal(m2->n_tables, 1);
	assert_int_equal(strlen(m2->tables[0].name), PB_PBI_NAME_MAX_BYTES);
	tmdl_model_free(m2);
	free(ok);
	free(big);
}

static void limits(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], want[128];
	/* nesting: 65 levels of bare blocks, one tab deeper each */
	size_t n = PB_TMDL_MAX_DEPTH + 2, k = 0;
	char *text = malloc(n * (n + 3));
	assert_non_null(text);
	for (size_t d = 0; d < n; d++) {
		memset(text + k, '\t', d);
		k += d;
		memcpy(text + k, "a\n", 2);
		k += 2;
	}
	text[k] = '\0';
	assert_int_equal(xsnprintf(want, sizeof want, "t.tmdl:%d: nested deeper than %d levels",
				   PB_TMDL_MAX_DEPTH + 2, PB_TMDL_MAX_DEPTH), 0);
	expect_error(text, PB_EINVAL, want);
	free(text);

	/* file size: checked before the bytes are looked at */
	size_t len = (size_t)PB_TMDL_MAX_FILE_BYTES + 1;
	char *huge = malloc(len);
	assert_non_null(huge);
	memset(huge, '\n', len);
	tmdl_model *m = tmdl_model_new();
	assert_int_equal(tmdl_parse_buffer(m, "big.tmdl", huge, len, err), PB_ELIMIT);
	assert_int_equal(xsnprintf(want, sizeof want, "big.tmdl:1: file is larger than %u bytes", PB_TMDL_MAX_FILE_BYTES), 0);
	assert_string_equal(err, want);
	/* the model refuses further use after an error */
	assert_int_equal(tmdl_parse_buffer(m, "next.tmdl", "table T\n", 8, err), PB_EINTERNAL);
	assert_string_equal(err, "next.tmdl:1: model is unusable after an earlier error");
	tmdl_model_free(m);
	free(huge);
}

/* ---- constructs ---- */

static void bom_and_crlf(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	tmdl_model *m = NULL;
	const char *text = "\xEF\xBB\xBFtable T\r\n"
			   "\tmeasure M =\r\n"
			   "\t\t\tA +\r\n"
			   "\t\t\t  B   \r\n"
			   "\r\n"
			   "\tmeasure F = ```\r\n"
			   "\t\t\tx  \r\n"
			   "\t\t\t```\r\n"
			   "\tcolumn C\r\n"
			   "\t\tdataType: int64\r\n";
	assert_int_equal(parse_docs(&m, err, "crlf.tmdl", text, NULL), 0);
	const tmdl_table *t = tmdl_model_find_table(m, "T");
	assert_non_null(t);
	assert_string_equal(t->measures[0].expression, "A +\n  B");
	assert_string_equal(t->measures[1].expression, "x  ");
	assert_string_equal(t->columns[0].data_type, "int64");
	assert_int_equal(t->columns[0].node->line, 9);
	tmdl_model_free(m);
}

static void expression_forms(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	tmdl_model *m = NULL;
	const char *text =
		"table T\n"
		"\tmeasure Deeper =\n"        /* body indentation differs line to line */
		"\t\t\t\tA\n"
		"\t\t\tB\n"
		"\t\t\t\t\tC\t \n"
		"\n"
		"\n"
		"\t\tformatString: 0\n"
		"\tmeasure Lead =\n"          /* a leading whitespace-only line stays */
		"\t\t\t\n"
		"\t\t\tX\n"
		"\tmeasure Empty =\n"         /* no body at all */
		"\t\tdisplayFolder: F\n"
		"\tmeasure Fence = ````\n"    /* longer fence; margin = closing fence indentation */
		"\t\t\t\tin\n"
		"\t\tless\n"
		"\t\t\t```\n"
		"\t\t\t  \n"
		"\t\t````\n"
		"\t\tkpi\n"
		"\t\t\ttargetExpression = 1\n"
		"\t\t\tstatusExpression =\n"  /* property-level body: deeper than the property */
		"\t\t\t\tIF(1,\n"
		"\t\t\t\t  2)\n"
		"\t\t\ttrendExpression = ```\n"
		"\t\t\t\tZ\n"
		"\t\t\t\t```\n"
		"\tpartition P = m\n"
		"\t\tsource =\n"
		"\t\t\t\tlet\n"
		"\t\t\t\t    S = 1\n"
		"\t\t\t\tin\n"
		"\t\t\t\t    S\n"
		"\t\tmode: dual\n"
		"\tcolumn 'C' = ```\n"
		"\t\t\tFOO\n"
		"\t\t\t```\n"
		"\t\tdataType: double\n";
	if (parse_docs(&m, err, "e.tmdl", text, NULL))
		fail_msg("%s", err);
	const tmdl_table *t = &m->tables[0];
	assert_string_equal(t->measures[0].expression, "\tA\nB\n\t\tC");
	assert_string_equal(t->measures[0].format_string, "0");
	assert_string_equal(t->measures[1].expression, "\nX");
	assert_string_equal(t->measures[2].expression, "");
	assert_string_equal(t->measures[2].display_folder, "F");
	assert_string_equal(t->measures[3].expression, "\t\tin\nless\n\t```\n\t  ");
	assert_true(t->measures[3].node->fenced);
	const tmdl_node *kpi = tmdl_node_child(t->measures[3].node, "kpi");
	assert_string_equal(tmdl_node_child(kpi, "targetExpression")->value, "1");
	assert_string_equal(tmdl_node_child(kpi, "statusExpression")->value, "IF(1,\n  2)");
	assert_string_equal(tmdl_node_child(kpi, "trendExpression")->value, "Z");
	assert_string_equal(t->partitions[0].source, "let\n    S = 1\nin\n    S");
	assert_string_equal(t->partitions[0].mode, "dual");
	assert_string_equal(t->columns[0].expression, "FOO");
	assert_string_equal(t->columns[0].data_type, "double");
	assert_int_equal(t->columns[0].node->line, 35);
	tmdl_model_free(m);
}

static void names_and_values(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	tmdl_model *m = NULL;
	const char *text =
		"table 'a.b = c: ''d'''\n"
		"\tcolumn #Count\n"
		"\t\tdataType: int64\n"
		"\t\tformatString: \"\"\"TRUE\"\";\"\"FALSE\"\"\"\n"
		"\t\tdisplayFolder: \"half\" open\n"
		"\t\tsourceColumn: [Code]\n"
		"\tcolumn ' padded '\n"
		"\t\tsourceColumn: \"  kept  \"\n"
		"\tmeasure YOY% = 1\n"
		"table Year-Month-Day\n"
		"\tcolumn '\xe6\x97\xa5\xe4\xbb\x98'\n"
		"relationship r\n"
		"\tfromColumn: 'a.b = c: ''d'''.#Count\n"
		"\ttoColumn: Year-Month-Day.'\xe6\x97\xa5\xe4\xbb\x98'\n"
		"\ttoCardinality: MANY\n"
		"\tisActive\n";
	if (parse_docs(&m, err, "n.tmdl", text, NULL))
		fail_msg("%s", err);
	const tmdl_table *t = tmdl_model_find_table(m, "A.B = C: 'D'");
	assert_non_null(t);
	assert_string_equal(t->name, "a.b = c: 'd'");
	assert_string_equal(t->columns[0].name, "#Count");
	assert_string_equal(t->columns[0].format_string, "\"TRUE\";\"FALSE\"");
	assert_string_equal(t->columns[0].display_folder, "\"half\" open");  /* not one quoted string */
	assert_string_equal(t->columns[0].source_column, "[Code]");
	assert_string_equal(t->columns[1].name, " padded ");
	assert_string_equal(t->columns[1].source_column, "  kept  ");
	assert_string_equal(t->measures[0].name, "YOY%");
	const tmdl_relationship *r = &m->relationships[0];
	assert_string_equal(r->from_table, "a.b = c: 'd'");
	assert_string_equal(r->from_column, "#Count");
	assert_string_equal(r->to_table, "Year-Month-Day");
	assert_string_equal(r->to_column, "\xe6\x97\xa5\xe4\xbb\x98");
	assert_string_equal(r->to_cardinality, "many");
	assert_true(r->is_active);
	tmdl_model_free(m);
}

static void partial_declarations_and_refs(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	tmdl_model *m = NULL;
	int rc = parse_docs(&m, err,
			    "model.tmdl", "model Model\n\nref table B\nref table Nope\nref table a\n",
			    "a.tmdl", "/// A first\ntable A\n\tcolumn X\n\t\tdataType: string\n",
			    "b.tmdl", "table B\n\tcolumn Y\n",
			    "c.tmdl", "table C\n",
			    "more.tmdl", "ref table A\n\tmeasure M = 1\n\n"
					 "table a\n\tlineageTag: L\n\tcolumn Z\n\t\tchangedProperty = IsHidden\n"
					 "\t\tchangedProperty = FormatString\n",
			    NULL);
	if (rc)
		fail_msg("%s", err);
	assert_int_equal(m->n_tables, 3);
	assert_string_equal(m->tables[0].name, "B");
	assert_string_equal(m->tables[1].name, "A");
	assert_string_equal(m->tables[2].name, "C");
	const tmdl_table *a = &m->tables[1];
	assert_string_equal(a->description, "A first");
	assert_string_equal(a->lineage_tag, "L");
	assert_int_equal(a->n_columns, 2);
	assert_int_equal(a->n_measures, 1);
	assert_string_equal(a->measures[0].node->file, "more.tmdl");
	tmdl_model_free(m);

	/* the same table in two documents, the same property in both: error */
	rc = parse_docs(&m, err, "one.tmdl", "table T\n\tisHidden\n", "two.tmdl", "table t\n\tisHidden: false\n", NULL);
	assert_int_equal(rc, PB_EINVAL);
	assert_string_equal(err, "two.tmdl:2: duplicate property 'isHidden' of table 'T' (first set at one.tmdl:2)");
}

static void generic_nodes_and_json(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	tmdl_model *m = NULL;
	const char *text =
		"table Date\n"
		"\tcalendar Gregorian\n"
		"\t\tcalendarColumnGroup = year\n"
		"\t\t\tprimaryColumn: Year\n"
		"\t\tcalendarColumnGroup = month\n"
		"\t\t\tassociatedColumn: 'Month Name'\n"
		"\t\t\tassociatedColumn: 'Month Short'\n"
		"\tcolumn Year\n"
		"\t\tdataType: int64\n"
		"\tpartition Date = calculationGroup\n"
		"cultureInfo fr-FR\n"
		"\ttranslations\n"
		"\t\tmodel Model\n"
		"\t\t\ttable Date\n"
		"\t\t\t\tcolumn Year\n"
		"\t\t\t\t\tcaption: Ann\xc3\xa9" "e\n"
		"function 'Pricing.WithTax' = (p: NUMERIC) => p * 1.2\n"
		"brandNewRootThing\n";
	if (parse_docs(&m, err, "g.tmdl", text, NULL))
		fail_msg("%s", err);
	const tmdl_node *root = tmdl_model_root(m);
	assert_int_equal(root->kind, TMDL_NODE_ROOT);
	const tmdl_node *fn = tmdl_node_child(root, "function");
	assert_string_equal(fn->name, "Pricing.WithTax");
	assert_string_equal(fn->value, "(p: NUMERIC) => p * 1.2");
	assert_int_equal(tmdl_node_child(root, "brandNewRootThing")->kind, TMDL_NODE_BARE);
	assert_string_equal(m->tables[0].partitions[0].source_type, "calculationGroup");
	assert_null(m->tables[0].partitions[0].mode);

	json_t *j = tmdl_model_to_json(m);
	assert_non_null(j);
	json_t *col = json_array_get(json_object_get(json_array_get(json_object_get(j, "tables"), 0), "columns"), 0);
	assert_string_equal(json_string_value(json_object_get(col, "name")), "Year");
	assert_string_equal(json_string_value(json_object_get(col, "dataType")), "int64");
	assert_true(json_is_false(json_object_get(col, "isHidden")));
	assert_true(json_is_true(json_object_get(col, "isNullable")));
	assert_int_equal(json_integer_value(json_object_get(col, "line")), 8);
	assert_int_equal(json_array_size(json_object_get(j, "relationships")), 0);
	json_decref(j);

	json_t *tree = tmdl_node_to_json(root);
	assert_non_null(tree);
	json_t *kids = json_object_get(tree, "children");
	assert_int_equal(json_array_size(kids), 4);
	json_t *cal = json_array_get(json_object_get(json_array_get(kids, 0), "children"), 0);
	assert_string_equal(json_string_value(json_object_get(cal, "type")), "calendar");
	assert_int_equal(json_array_size(json_object_get(cal, "children")), 2);
	json_decref(tree);
	tmdl_model_free(m);
}

static void api_misuse(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	tmdl_model_free(NULL);
	assert_null(tmdl_model_to_json(NULL));
	assert_null(tmdl_model_find_table(NULL, "x"));
	tmdl_model *m = tmdl_model_new();
	assert_int_equal(tmdl_parse_buffer(m, "e.tmdl", "", 0, err), 0);  /* empty document is fine */
	assert_int_equal(tmdl_model_finish(m, err), 0);
	assert_null(m->name);
	assert_int_equal(m->n_tables, 0);
	assert_int_equal(tmdl_model_finish(m, err), PB_EINTERNAL);
	assert_int_equal(tmdl_parse_buffer(m, "late.tmdl", "table T\n", 8, err), PB_EINTERNAL);
	assert_string_equal(err, "late.tmdl:1: model is already finished");
	json_t *j = tmdl_model_to_json(m);
	assert_non_null(j);
	json_decref(j);
	tmdl_model_free(m);
}

/* ---- the shared corpus ---- */

typedef struct corpus_walk {
	size_t files, models;
	char failures[4096];
} corpus_walk;

static void note_failure(corpus_walk *w, const char *msg)
{
	size_t used = strlen(w->failures);
	if (used + strlen(msg) + 2 < sizeof w->failures) {
		memcpy(w->failures + used, msg, strlen(msg));
		w->failures[used + strlen(msg)] = '\n';
		w->failures[used + strlen(msg) + 1] = '\0';
	}
}

static void parse_one(corpus_walk *w, const char *path)
{
	char err[PB_ERR_MAX];
	tmdl_model *m = NULL;
	if (tmdl_parse_path(path, &m, err)) {
		note_failure(w, err);
		return;
	}
	json_t *j = tmdl_model_to_json(m);
	if (!j)
		note_failure(w, path);
	json_decref(j);
	tmdl_model_free(m);
}

static void walk(corpus_walk *w, const char *dir)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return;
	struct dirent *de;
	while ((de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		char path[4096];
		struct stat st;
		if (xsnprintf(path, sizeof path, "%s/%s", dir, de->d_name) || stat(path, &st))
			continue;
		size_t n = strlen(de->d_name);
		if (S_ISDIR(st.st_mode)) {
			if (n > 14 && !strcmp(de->d_name + n - 14, ".SemanticModel")) {
				w->models++;
				parse_one(w, path);
			}
			walk(w, path);
		} else if (n > 5 && !strcmp(de->d_name + n - 5, ".tmdl")) {
			w->files++;
			parse_one(w, path);
		}
	}
	closedir(dh);
}

static void corpus(void **state)
{
	(void)state;
	char dir[4096], path[4096], err[PB_ERR_MAX];
	if (!tu_corpus_path("tmdl", "corpus tests", dir, sizeof dir))
		return;
	corpus_walk w = { 0 };
	walk(&w, dir);
	printf("corpus: %zu .tmdl files and %zu model folders parsed\n", w.files, w.models);
	if (w.failures[0])
		fail_msg("corpus failures:\n%s", w.failures);
	assert_true(w.files >= 109);
	assert_true(w.models >= 8);

	/* te3-zoo, counted by hand */
	tmdl_model *m = NULL;
	assert_int_equal(xsnprintf(path, sizeof path, "%s/pbiplint/te3-zoo.SemanticModel", dir), 0);
	if (tmdl_parse_path(path, &m, err))
		fail_msg("%s", err);
	assert_int_equal(m->n_tables, 5);
	assert_string_equal(m->tables[4].name, "Time Intelligence");
	const tmdl_table *sales = tmdl_model_find_table(m, "Sales");
	assert_int_equal(sales->n_columns, 10);
	assert_int_equal(sales->n_measures, 6);
	assert_int_equal(sales->n_partitions, 1);
	assert_string_equal(tmdl_table_find_column(sales, "Amount")->data_type, "decimal");
	assert_string_equal(sales->measures[2].expression,
			    "VAR _region = MAXX(TOPN(1, VALUES('Customer'[Region]), [Total Amount]), 'Customer'[Region])\n"
			    "RETURN \"Top region: \" & _region");
	assert_int_equal(tmdl_model_find_table(m, "Date")->n_columns, 6);
	assert_true(tmdl_table_find_column(tmdl_model_find_table(m, "Customer"), "Customer ID")->is_key);
	assert_true(tmdl_model_find_table(m, "Time Intelligence")->is_calculation_group);
	assert_int_equal(m->n_relationships, 2);
	assert_string_equal(m->relationships[0].from_column, "Customer ID");
	tmdl_model_free(m);

	/* analysis-services Sales: table order from model.tmdl, counts checked with grep */
	assert_int_equal(xsnprintf(path, sizeof path, "%s/analysis-services/Sales.SemanticModel", dir), 0);
	if (tmdl_parse_path(path, &m, err))
		fail_msg("%s", err);
	assert_int_equal(m->n_tables, 11);
	assert_string_equal(m->tables[0].name, "Calendar");
	assert_string_equal(m->tables[10].name, "Time Intelligence");
	const tmdl_table *s = tmdl_model_find_table(m, "Sales");
	assert_int_equal(s->n_columns, 14);
	assert_int_equal(s->n_measures, 19);
	assert_int_equal(m->n_relationships, 5);
	assert_false(m->relationships[2].is_active);
	assert_int_equal(m->n_expressions, 11);
	tmdl_model_free(m);
}

/* Each node knows the lines it takes (its /// lines, its body, its children) so a writer can
 * copy it verbatim; annotations are found by name without case. */
static void line_spans_and_annotations(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	tmdl_model *m = NULL;
	const char *text = "/// the table\n"          /* 1 */
			   "table T\n"                 /* 2 */
			   "\tcolumn A\n"              /* 3 */
			   "\t\tdataType: string\n"     /* 4 */
			   "\n"                        /* 5 */
			   "\t\tannotation PBIPORT_Generated = true\n" /* 6 */
			   "\n"                        /* 7 */
			   "\t/// two\n"               /* 8 */
			   "\t/// lines\n"             /* 9 */
			   "\tmeasure M =\n"           /* 10 */
			   "\t\t\tVAR x = 1\n"         /* 11 */
			   "\n"                        /* 12 */
			   "\t\t\tRETURN x\n"          /* 13 */
			   "\n"                        /* 14 */
			   "\tmeasure F = ```\n"        /* 15 */
			   "\t\t\t1\n"                 /* 16 */
			   "\t\t\t```\n"               /* 17 */
			   "\t\tformatString: 0\n"      /* 18 */
			   "\n"                        /* 19 */
			   "\n"                        /* 20 */
			   "relationship R\n"          /* 21 */
			   "\tfromColumn: T.A\n"        /* 22 */
			   "\ttoColumn: T.A\n";         /* 23 */
	assert_int_equal(parse_docs(&m, err, "t.tmdl", text, NULL), 0);
	const tmdl_table *t = &m->tables[0];
	assert_int_equal(t->node->first_line, 1);
	assert_int_equal(t->node->last_line, 18);
	assert_int_equal(t->columns[0].node->first_line, 3);
	assert_int_equal(t->columns[0].node->last_line, 6);
	assert_int_equal(t->measures[0].node->first_line, 8);
	assert_int_equal(t->measures[0].node->last_line, 13);
	assert_int_equal(t->measures[1].node->first_line, 15);
	assert_int_equal(t->measures[1].node->last_line, 18);
	assert_int_equal(m->relationships[0].node->first_line, 21);
	assert_int_equal(m->relationships[0].node->last_line, 23);
	assert_string_equal(tmdl_node_annotation(t->columns[0].node, "pbiport_generated"), "true");
	assert_null(tmdl_node_annotation(t->node, "PBIPORT_Generated"));
	assert_null(tmdl_node_annotation(NULL, "x"));
	tmdl_model_free(m);
}

int main(void)
{
	const char *src = getenv("PBIPORT_SRC");
	if (src && chdir(src)) {
		fprintf(stderr, "cannot enter %s\n", src);
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fixture_model),
		cmocka_unit_test(fixture_errors),
		cmocka_unit_test(syntax_errors),
		cmocka_unit_test(limits),
		cmocka_unit_test(bom_and_crlf),
		cmocka_unit_test(expression_forms),
		cmocka_unit_test(names_and_values),
		cmocka_unit_test(partial_declarations_and_refs),
		cmocka_unit_test(generic_nodes_and_json),
		cmocka_unit_test(api_misuse),
		cmocka_unit_test(line_spans_and_annotations),
		cmocka_unit_test(corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
