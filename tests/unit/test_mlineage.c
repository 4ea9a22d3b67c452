/* Unit tests for core/lang/mlineage: every fixture in tests/fixtures/mlineage (NAME.m, the
 * expected NAME.json, optional NAME.params.json {"param": "M text"}), syntax errors,
 * limits, cycles, server matching, every M expression of the shared corpus
 * ($PBIPORT_CORPUS/tmdl; skipped when absent), and DataHub's Power BI M parser tests
 * ($PBIPORT_CORPUS/m/datahub/test_m_parser.py, read by tests/tools/datahub_m_cases.py;
 * skipped when absent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/stat.h>

#include "core/lang/mlineage.h"
#include "core/lang/tmdl.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

#define FIX "tests/fixtures/mlineage/"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the fixture .m files. */
static char **fixture_names(size_t *n)
{
	DIR *d = opendir(FIX);
	assert_non_null(d);
	char **v = NULL;
	size_t cnt = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 3 || strcmp(de->d_name + l - 2, ".m"))
			continue;
		v = realloc(v, (cnt + 1) * sizeof *v);
		assert_non_null(v);
		v[cnt++] = xstrndup(de->d_name, l - 2);
	}
	closedir(d);
	qsort(v, cnt, sizeof *v, cmp_str);
	*n = cnt;
	return v;
}

/* The text of fixture <name>.m (new: caller frees); *len its length. */
static char *read_fixture_m(const char *name, size_t *len)
{
	char path[512], err[PB_ERR_MAX];
	char *m = NULL;
	assert_int_equal(xsnprintf(path, sizeof path, FIX "%s.m", name), 0);
	assert_int_equal(read_file(path, 1 << 20, &m, len, err), 0);
	return m;
}

static json_t *parse_json(const char *m, const mlineage_param *ps, size_t np)
{
	char err[PB_ERR_MAX] = "";
	mlineage_sources s = { 0 };
	int rc = mlineage_parse(m, ps, np, &s, err);
	if (rc)
		fail_msg("mlineage_parse: %d %s\n%s", rc, err, m);
	json_t *j = mlineage_sources_json(&s);
	assert_non_null(j);
	mlineage_sources_release(&s);
	return j;
}

static void fixtures(void **state)
{
	(void)state;
	size_t n = 0;
	char **names = fixture_names(&n);
	assert_true(n >= 30);
	size_t with_sources = 0, exact = 0;
	for (size_t i = 0; i < n; i++) {
		char path[512];
		size_t len;
		char *m = read_fixture_m(names[i], &len);
		assert_int_equal(xsnprintf(path, sizeof path, FIX "%s.params.json", names[i]), 0);
		json_t *pj = json_load_file(path, 0, NULL);
		mlineage_param ps[64];
		size_t np = 0;
		const char *k;
		json_t *v;
		json_object_foreach(pj, k, v) {
			assert_true(np < 64);
			ps[np].name = k;
			ps[np].value = json_string_value(v);
			np++;
		}
		assert_int_equal(xsnprintf(path, sizeof path, FIX "%s.json", names[i]), 0);
		json_error_t jerr;
		json_t *want = json_load_file(path, 0, &jerr);
		if (!want)
			fail_msg("%s: %s", path, jerr.text);
		json_t *got = parse_json(m, ps, np);
		if (!json_equal(want, got)) {
			char *g = json_dumps(got, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fail_msg("%s: lineage differs; got:\n%s", names[i], g);
		}
		json_t *srcs = json_object_get(got, "sources");
		with_sources += json_array_size(srcs) > 0;
		for (size_t j = 0; j < json_array_size(srcs); j++)
			exact += !strcmp(json_string_value(json_object_get(json_array_get(srcs, j), "confidence")),
					 "exact");
		json_decref(want);
		json_decref(got);
		json_decref(pj);
		free(m);
		free(names[i]);
	}
	free(names);
	printf("mlineage fixtures: %zu expressions, %zu with sources, %zu exact sources\n", n, with_sources,
	       exact);
}

/* Every prefix of every fixture: never a crash, always a result or one error line. */
static void fixture_prefixes(void **state)
{
	(void)state;
	size_t n = 0;
	char **names = fixture_names(&n);
	size_t runs = 0;
	for (size_t i = 0; i < n; i++) {
		char err[PB_ERR_MAX];
		size_t len;
		char *m = read_fixture_m(names[i], &len);
		for (size_t cut = 0; cut <= len; cut++) {
			char *p = xstrndup(m, cut);
			mlineage_sources s = { 0 };
			err[0] = '\0';
			int rc = mlineage_parse(p, NULL, 0, &s, err);
			if (rc) {
				assert_true(rc == PB_EINVAL);
				assert_non_null(memchr(err, '\0', sizeof err));
				assert_true(err[0] != '\0');
				assert_int_equal(s.n, 0);
			}
			mlineage_sources_release(&s);
			free(p);
			runs++;
		}
		free(m);
		free(names[i]);
	}
	free(names);
	assert_true(runs > 1000);
}

static void expect_error(const char *m, int rc_want, const char *msg_want)
{
	char err[PB_ERR_MAX] = "";
	mlineage_sources s = { 0 };
	int rc = mlineage_parse(m, NULL, 0, &s, err);
	if (rc != rc_want || strcmp(err, msg_want))
		fail_msg("input:\n%s\nwant %d '%s'\ngot  %d '%s'", m, rc_want, msg_want, rc, err);
	assert_int_equal(s.n, 0);
	assert_null(s.v);
}

static void syntax_errors(void **state)
{
	(void)state;
	expect_error("let\n  a = \"open", PB_EINVAL, "2:7: unterminated text literal");
	expect_error("let a = 1", PB_EINVAL, "1:10: expected ',' or 'in' after a let step");
	expect_error("let a = 1 in a b", PB_EINVAL, "1:16: unexpected text after the end of the expression");
	expect_error("Table.First(x", PB_EINVAL, "1:14: expected ',' or ')' at the end");
	expect_error("[a = 1, b = 2", PB_EINVAL, "1:14: expected ',' or ']' at the end");
	expect_error("let a = 1 ~ 2 in a", PB_EINVAL, "1:11: unexpected character '~'");
	expect_error("/* never closed", PB_EINVAL, "1:1: unterminated comment");
	expect_error("", PB_EINVAL, "1:1: unexpected end of expression");
	expect_error("if a then b", PB_EINVAL, "1:12: expected 'else'");
	expect_error("x{1", PB_EINVAL, "1:4: expected '}' at the end");
	expect_error("a\x01", PB_EINVAL, "1:2: unexpected byte 0x01");
	char err[PB_ERR_MAX];
	mlineage_sources s = { 0 };
	assert_int_equal(mlineage_parse(NULL, NULL, 0, &s, err), PB_EINVAL);
}

/* Closes f (an open_memstream over *text) and parses the text, expecting rc and, when says
 * is not NULL, says in the message; frees the text. *s gets the sources (caller releases). */
static void parse_built(FILE *f, char **text, int rc, const char *says, mlineage_sources *s)
{
	char err[PB_ERR_MAX];
	fclose(f);
	assert_int_equal(mlineage_parse(*text, NULL, 0, s, err), rc);
	if (says)
		assert_non_null(strstr(err, says));
	free(*text);
	*text = NULL;
}

static void limits(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	mlineage_sources s = { 0 };
	/* nesting */
	size_t depth = 5000;
	char *deep = malloc(depth * 2 + 2);
	assert_non_null(deep);
	memset(deep, '(', depth);
	deep[depth] = '1';
	memset(deep + depth + 1, ')', depth);
	deep[depth * 2 + 1] = '\0';
	assert_int_equal(mlineage_parse(deep, NULL, 0, &s, err), PB_ELIMIT);
	assert_non_null(strstr(err, "nested more than"));
	memset(deep, '{', depth);
	memset(deep + depth + 1, '}', depth);
	assert_int_equal(mlineage_parse(deep, NULL, 0, &s, err), PB_ELIMIT);
	free(deep);
	/* size */
	size_t big = PB_MLINEAGE_MAX_BYTES + 10;
	char *huge = malloc(big + 1);
	assert_non_null(huge);
	memset(huge, ' ', big);
	huge[0] = '1';
	huge[big] = '\0';
	assert_int_equal(mlineage_parse(huge, NULL, 0, &s, err), PB_ELIMIT);
	assert_string_equal(err, "M expression longer than 1048576 bytes");
	free(huge);
	/* a long chain of steps, each using the one before: no deep recursion */
	char *chain = NULL;
	size_t cl = 0;
	FILE *f = open_memstream(&chain, &cl);
	assert_non_null(f);
	fprintf(f, "let\n S0 = Snowflake.Databases(\"h.snowflakecomputing.com\", \"W\"){[Name=\"D\"]}[Data]"
		   "{[Name=\"S\"]}[Data]{[Name=\"T\"]}[Data]");
	for (int i = 1; i < 3000; i++)
		fprintf(f, ",\n S%d = Table.SelectRows(S%d, each [x] > %d)", i, i - 1, i);
	fprintf(f, "\nin\n S2999");
	parse_built(f, &chain, PB_OK, NULL, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].table, "T");
	mlineage_sources_release(&s);
	/* the same chain in reverse order refers forward: bounded recursion, clean error */
	f = open_memstream(&chain, &cl);
	assert_non_null(f);
	fprintf(f, "let\n");
	for (int i = 0; i < 3000; i++)
		fprintf(f, " S%d = Table.Buffer(S%d),\n", i, i + 1);
	fprintf(f, " S3000 = 1\nin\n S0");
	parse_built(f, &chain, PB_ELIMIT, "refer to each other", &s);
	/* values that share items ({a, a} nested 60 times): linear, not exponential */
	f = open_memstream(&chain, &cl);
	assert_non_null(f);
	fprintf(f, "let S = Sql.Database(\"s\", \"d\"){[Schema=\"x\",Item=\"t\"]}[Data], a0 = {S, [k=S]}");
	for (int i = 1; i < 60; i++)
		fprintf(f, ",\n a%d = {a%d, a%d, [r=a%d]}", i, i - 1, i - 1, i - 1);
	fprintf(f, "\nin Table.Combine(a59)");
	parse_built(f, &chain, PB_OK, NULL, &s);
	assert_int_equal(s.n, 1);
	mlineage_sources_release(&s);
	/* sets of 1000 sources merged step after step: stopped by the evaluation budget */
	f = open_memstream(&chain, &cl);
	assert_non_null(f);
	fprintf(f, "let S = Sql.Database(\"s\", \"d\"), b = {");
	for (int i = 0; i < 1000; i++)
		fprintf(f, "%sS{[Schema=\"x\",Item=\"t%d\"]}[Data]", i ? "," : "", i);
	fprintf(f, "}, c = {");
	for (int i = 0; i < 1000; i++)
		fprintf(f, "%sS{[Schema=\"y\",Item=\"t%d\"]}[Data]", i ? "," : "", i);
	fprintf(f, "}, a0 = Table.Combine(b)");
	for (int i = 1; i < 3000; i++)
		fprintf(f, ",\n a%d = Table.Combine({a%d, %s})", i, i - 1, i % 2 ? "c" : "b");
	fprintf(f, "\nin a2999");
	parse_built(f, &chain, PB_ELIMIT, "evaluation steps", &s);
	/* many distinct sources: cut at the limit with a note */
	f = open_memstream(&chain, &cl);
	assert_non_null(f);
	fprintf(f, "let S = Sql.Database(\"s\", \"d\") in Table.Combine({");
	for (int i = 0; i < PB_MLINEAGE_MAX_SOURCES + 5; i++)
		fprintf(f, "%sS{[Schema=\"dbo\",Item=\"T%d\"]}[Data]", i ? "," : "", i);
	fprintf(f, "})");
	parse_built(f, &chain, PB_OK, NULL, &s);
	assert_int_equal(s.n, PB_MLINEAGE_MAX_SOURCES);
	assert_non_null(strstr(s.note, "the rest were left out"));
	mlineage_sources_release(&s);
}

static void cycles_and_parameters(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	mlineage_sources s = { 0 };
	/* steps that refer to each other */
	assert_int_equal(mlineage_parse("let a = b, b = a in a", NULL, 0, &s, err), PB_OK);
	assert_int_equal(s.n, 0);
	assert_string_equal(s.note, "no data source found in the expression");
	mlineage_sources_release(&s);
	/* parameters that refer to each other, one that does not parse, one that is fine */
	mlineage_param ps[] = {
		{ "A", "B" }, { "B", "A" }, { "Broken", "let x = in" }, { "Db", "\"SALES\" meta [IsParameterQuery=true]" },
		{ NULL, "ignored" },
	};
	const char *m = "let S = Snowflake.Databases(A, Broken), D = S{[Name=Db]}[Data], T = D{[Name=\"C\"]}[Data]"
			"{[Name=\"T\"]}[Data] in T";
	assert_int_equal(mlineage_parse(m, ps, 5, &s, err), PB_OK);
	assert_int_equal(s.n, 1);
	assert_null(s.v[0].host);
	assert_null(s.v[0].warehouse);
	assert_string_equal(s.v[0].database, "SALES");
	assert_false(s.v[0].exact);
	assert_non_null(strstr(s.v[0].note, "refers to itself"));
	mlineage_sources_release(&s);
	/* a step named like a parameter wins over the parameter */
	mlineage_param host[] = { { "Host", "\"param.snowflakecomputing.com\"" } };
	assert_int_equal(mlineage_parse("let Host = \"step.snowflakecomputing.com\" in Snowflake.Databases(Host, \"W\")"
					"{[Name=\"D\"]}[Data]{[Name=\"S\"]}[Data]{[Name=\"T\"]}[Data]",
					host, 1, &s, err),
			 PB_OK);
	assert_string_equal(s.v[0].host, "step.snowflakecomputing.com");
	mlineage_sources_release(&s);
	/* a step that shadows a library function name is not that function */
	assert_int_equal(mlineage_parse("let Snowflake.Databases = (a, b) => a in Snowflake.Databases(\"h\", \"w\")",
					NULL, 0, &s, err),
			 PB_OK);
	assert_int_equal(s.n, 0);
	mlineage_sources_release(&s);
	mlineage_sources_release(NULL);
}

static void server_matching(void **state)
{
	(void)state;
	assert_true(mlineage_same_server("snowflake", "ACME-Analytics.snowflakecomputing.com", "acme-analytics"));
	assert_true(mlineage_same_server("snowflake", "xy12345.eu-west-1", "XY12345.eu-west-1.snowflakecomputing.com."));
	assert_true(mlineage_same_server("snowflake", "https://acme-analytics.snowflakecomputing.com:443/",
					 "acme-analytics.snowflakecomputing.com"));
	assert_true(mlineage_same_server("snowflake", "acme_analytics", "acme-analytics.snowflakecomputing.com"));
	assert_true(mlineage_same_server("snowflake", "acme-analytics.privatelink.snowflakecomputing.com",
					 "acme-analytics"));
	assert_false(mlineage_same_server("snowflake", "acme-analytics", "acme-analytica"));
	assert_false(mlineage_same_server("snowflake", "xy12345.eu-west-1", "xy12345"));
	assert_true(mlineage_same_server("databricks", "adb-1.7.azuredatabricks.net",
					 "https://ADB-1.7.AzureDatabricks.net/"));
	assert_false(mlineage_same_server("databricks", "adb-1.7.azuredatabricks.net", "adb-1"));
	assert_false(mlineage_same_server("databricks", "a_b.net", "a-b.net"));
	assert_false(mlineage_same_server("sql", NULL, "x"));
	assert_false(mlineage_same_server("sql", "", ""));
	assert_false(mlineage_same_server(NULL, "https://", "x"));
	assert_true(mlineage_same_server(NULL, "Server.Example.com:1433", "server.example.com"));
}

static void model_parameters(void **state)
{
	(void)state;
	static const char expr[] =
		"expression SfHost = \"acme.snowflakecomputing.com\" meta [IsParameterQuery=true, Type=\"Text\", "
		"IsParameterQueryRequired=true]\n"
		"\tlineageTag: 1\n\n"
		"expression 'Shared Orders' =\n"
		"\t\tlet\n"
		"\t\t    Source = Snowflake.Databases(SfHost, \"WH\"),\n"
		"\t\t    T = Source{[Name=\"DB\",Kind=\"Database\"]}[Data]{[Name=\"SC\",Kind=\"Schema\"]}[Data]"
		"{[Name=\"ORDERS\",Kind=\"Table\"]}[Data]\n"
		"\t\tin\n"
		"\t\t    T\n";
	char err[PB_ERR_MAX];
	tmdl_model *model = tmdl_model_new();
	assert_non_null(model);
	assert_int_equal(tmdl_parse_buffer(model, "expressions.tmdl", expr, strlen(expr), err), 0);
	assert_int_equal(tmdl_model_finish(model, err), 0);
	mlineage_param *ps = NULL;
	size_t np = 0;
	assert_int_equal(mlineage_params_from_model(model, &ps, &np, err), 0);
	assert_int_equal(np, 2);
	mlineage_sources s = { 0 };
	assert_int_equal(mlineage_parse("let Source = #\"Shared Orders\" in Source", ps, np, &s, err), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].host, "acme.snowflakecomputing.com");
	assert_string_equal(s.v[0].table, "ORDERS");
	assert_true(s.v[0].exact);
	json_t *j = mlineage_source_json(&s.v[0]);
	assert_string_equal(json_string_value(json_object_get(j, "confidence")), "exact");
	assert_string_equal(json_string_value(json_object_get(j, "warehouse")), "WH");
	json_decref(j);
	mlineage_sources_release(&s);
	free(ps);
	tmdl_model_free(model);
}

/* ---- the shared corpus ---- */

typedef struct corpus_stats {
	size_t models, expressions, parsed, with_sources, failed;
} corpus_stats;

static void corpus_model(const char *path, corpus_stats *st)
{
	char err[PB_ERR_MAX];
	tmdl_model *m = NULL;
	if (tmdl_parse_path(path, &m, err))
		return;   /* the TMDL reader's own tests judge the corpus TMDL */
	st->models++;
	mlineage_param *shared = NULL;
	size_t nshared = 0;
	assert_int_equal(mlineage_params_from_model(m, &shared, &nshared, err), 0);
	/* shared expressions, then each table's M (a table may be built from another) */
	mlineage_param *ps = calloc(nshared + m->n_tables + 1, sizeof *ps);
	assert_non_null(ps);
	size_t np = 0;
	for (size_t i = 0; i < nshared; i++)
		ps[np++] = shared[i];
	for (size_t t = 0; t < m->n_tables; t++)
		for (size_t p = 0; p < m->tables[t].n_partitions; p++) {
			const tmdl_partition *part = &m->tables[t].partitions[p];
			if (part->source && part->source_type && !strcmp(part->source_type, "m") &&
			    !tmdl_model_find_expression(m, m->tables[t].name)) {
				ps[np].name = m->tables[t].name;
				ps[np++].value = part->source;
				break;
			}
		}
	free(shared);
	for (size_t t = 0; t <= m->n_tables; t++) {
		size_t nparts = t < m->n_tables ? m->tables[t].n_partitions : m->n_expressions;
		for (size_t p = 0; p < nparts; p++) {
			const char *text;
			if (t < m->n_tables) {
				const tmdl_partition *part = &m->tables[t].partitions[p];
				if (!part->source || !part->source_type || strcmp(part->source_type, "m"))
					continue;
				text = part->source;
			} else {
				text = m->expressions[p].value;
			}
			if (!text)
				continue;
			mlineage_sources s = { 0 };
			st->expressions++;
			int rc = mlineage_parse(text, ps, np, &s, err);
			if (rc) {
				st->failed++;
				printf("  %s: %s\n", path, err);
			} else {
				st->parsed++;
				st->with_sources += s.n > 0;
			}
			mlineage_sources_release(&s);
		}
	}
	free(ps);
	tmdl_model_free(m);
}

static void corpus_walk(const char *dir, int depth, corpus_stats *st)
{
	if (depth > 8)
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	char **subs = NULL;
	size_t nsubs = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[4096];
		if (xsnprintf(path, sizeof path, "%s/%s", dir, de->d_name))
			continue;
		struct stat sb;
		if (stat(path, &sb) || !S_ISDIR(sb.st_mode))
			continue;
		subs = realloc(subs, (nsubs + 1) * sizeof *subs);
		assert_non_null(subs);
		subs[nsubs++] = xstrdup(path);
	}
	closedir(d);
	if (nsubs)
		qsort(subs, nsubs, sizeof *subs, cmp_str);
	for (size_t i = 0; i < nsubs; i++) {
		char def[4096];
		struct stat sb;
		if (!xsnprintf(def, sizeof def, "%s/definition", subs[i]) && !stat(def, &sb) && S_ISDIR(sb.st_mode))
			corpus_model(subs[i], st);
		else
			corpus_walk(subs[i], depth + 1, st);
		free(subs[i]);
	}
	free(subs);
}

static void corpus(void **state)
{
	(void)state;
	char dir[4096];
	if (!tu_corpus_path("tmdl", "corpus M expressions", dir, sizeof dir))
		return;
	corpus_stats st = { 0 };
	corpus_walk(dir, 0, &st);
	printf("mlineage corpus: %zu models, %zu M expressions, %zu parsed, %zu with sources, %zu failed\n",
	       st.models, st.expressions, st.parsed, st.with_sources, st.failed);
	assert_true(st.expressions > 0);
	assert_int_equal(st.failed, 0);
}


/* Navigation after a source a condition picks, as issue 16 writes it: both branches, each
 * with the navigation applied; and the bound on how many alternatives are followed. */
static void conditional_sources(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	mlineage_sources s = { 0 };
	assert_int_equal(mlineage_parse("let Source = if c then Sql.Database(a, \"prod_db\") else Sql.Database(b, \"dev_db\"),"
					" T = Source{[Schema=\"dbo\",Item=\"employees\"]}[Data] in T",
					NULL, 0, &s, err),
			 PB_OK);
	assert_int_equal(s.n, 2);
	static const char *const dbs[] = { "prod_db", "dev_db" };
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(s.v[i].database, dbs[i]);
		assert_string_equal(s.v[i].schema, "dbo");
		assert_string_equal(s.v[i].table, "employees");
		assert_null(s.v[i].host);   /* a and b are not known: partial, never guessed */
		assert_false(s.v[i].exact);
		assert_non_null(strstr(s.v[i].note, "the server is dynamic"));
	}
	mlineage_sources_release(&s);
	/* a name chosen among 20 by conditions that are not known: past PB_MLINEAGE_MAX_ALTS the
	 * choice is not followed and no table is named (none is invented) */
	char *m = NULL;
	size_t ml = 0;
	FILE *f;
	f = open_memstream(&m, &ml);
	assert_non_null(f);
	fprintf(f, "let S = Sql.Database(\"h\", \"d\"), n = ");
	for (int i = 0; i < PB_MLINEAGE_MAX_ALTS + 4; i++)
		fprintf(f, "if x%d then \"t%d\" else ", i, i);
	fprintf(f, "\"last\", T = S{[Schema=\"dbo\",Item=n]}[Data] in T");
	fclose(f);
	assert_int_equal(mlineage_parse(m, NULL, 0, &s, err), PB_OK);
	free(m);
	assert_int_equal(s.n, 1);
	assert_null(s.v[0].table);
	assert_non_null(strstr(s.v[0].note, "the table name is chosen by a condition that is not known"));
	mlineage_sources_release(&s);
	/* 16 are followed */
	f = open_memstream(&m, &ml);
	assert_non_null(f);
	fprintf(f, "let S = Sql.Database(\"h\", \"d\"), n = ");
	for (int i = 0; i < PB_MLINEAGE_MAX_ALTS - 1; i++)
		fprintf(f, "if x%d then \"t%d\" else ", i, i);
	fprintf(f, "\"last\", T = S{[Schema=\"dbo\",Item=n]}[Data] in T");
	fclose(f);
	assert_int_equal(mlineage_parse(m, NULL, 0, &s, err), PB_OK);
	free(m);
	assert_int_equal(s.n, PB_MLINEAGE_MAX_ALTS);
	for (size_t i = 0; i < s.n; i++)
		assert_true(s.v[i].exact);
	mlineage_sources_release(&s);
}

/* An ODBC connection's password never reaches the lineage; its driver names it in notes. */
static void odbc_connections(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	mlineage_sources s = { 0 };
	static const char *const texts[] = {
		"let S = Odbc.DataSource(\"dsn=X;UID=me;PWD=hunter2\"), T = S{[Name=\"t\"]}[Data] in T",
		"let S = Odbc.DataSource(\"Password={a;b=c};dsn=X\"), T = S{[Name=\"t\"]}[Data] in T",
		"Odbc.Query([Driver=\"{Vertica}\", Pwd=\"hunter2\", Database=\"v\"], \"select * from s.t\")",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		assert_int_equal(mlineage_parse(texts[i], NULL, 0, &s, err), PB_OK);
		assert_int_equal(s.n, 1);
		json_t *j = mlineage_sources_json(&s);
		char *dump = json_dumps(j, 0);
		assert_null(strstr(dump, "hunter2"));
		assert_null(strstr(dump, "a;b=c"));
		assert_non_null(strstr(s.v[0].note, "ODBC "));   /* "ODBC DSN X: ..." / "ODBC driver ..." */
		free(dump);
		json_decref(j);
		mlineage_sources_release(&s);
	}
}

static void source_types(void **state)
{
	(void)state;
	assert_true(mlineage_same_type("sql", "sqlserver"));
	assert_true(mlineage_same_type("sql", "Synapse"));
	assert_true(mlineage_same_type("Sql", "sqlserver"));   /* a Power BI data source type */
	assert_true(mlineage_same_type("postgresql", "postgres"));
	assert_true(mlineage_same_type("PostgreSql", "postgresql"));
	assert_true(mlineage_same_type("GoogleBigQuery", "bigquery"));
	assert_true(mlineage_same_type("AmazonRedshift", "redshift"));
	assert_true(mlineage_same_type("athena", "athena"));
	assert_true(mlineage_same_type("AzureDatabricks", "databricks"));
	assert_true(mlineage_same_type("Snowflake", "snowflake"));
	assert_false(mlineage_same_type("sql", "mysql"));
	assert_false(mlineage_same_type("mysql", "sqlserver"));
	assert_false(mlineage_same_type("postgresql", "redshift"));
	assert_false(mlineage_same_type("odbc", "postgres"));
	assert_false(mlineage_same_type(NULL, "sql"));
	assert_false(mlineage_same_type("sql", ""));
}

/* ---- DataHub's M parser tests: the same expressions, compared with the tables DataHub
 * expects (its names are lower case, `db.schema.table`; MySQL `db.table`; Athena without
 * the catalog; Oracle's database is the first label of the service name). ---- */

typedef struct dh_stats {
	size_t cases, exact, partial, missed, wrong, unparsed;
} dh_stats;

/* Does DataHub's platform name stand for our source type? */
static bool dh_platform(const char *platform, const char *type)
{
	static const char *const map[][3] = {
		{ "snowflake", "snowflake", NULL }, { "postgres", "postgresql", NULL }, { "mssql", "sql", NULL },
		{ "databricks", "databricks", NULL }, { "oracle", "oracle", NULL }, { "bigquery", "bigquery", NULL },
		{ "redshift", "redshift", NULL }, { "mysql", "mysql", "odbc" }, { "athena", "athena", NULL },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strcmp(platform, map[i][0]))
			return !strcmp(type, map[i][1]) || (map[i][2] && !strcmp(type, map[i][2]));
	return false;
}

/* 2: every part of the expected name is known and equal; 1: the known parts are equal, some
 * are unknown; 0: a known part differs. Names are compared right-aligned. */
static int dh_match(const mlineage_source *s, const char *platform, const char *name)
{
	if (!s->table || !dh_platform(platform, s->type))
		return 0;
	const char *ours[3];
	int n = 0;
	const char *full[3] = { s->database, s->schema, s->table };
	for (int i = 0; i < 3; i++)   /* an exact source leaves out the levels it has not got */
		if (full[i] || !s->exact)
			ours[n++] = full[i];
	char buf[512];
	assert_int_equal(xsnprintf(buf, sizeof buf, "%s", name), 0);
	const char *want[8];
	int k = 0;
	for (char *p = buf, *dot; k < 8; p = dot + 1) {
		want[k++] = p;
		if (!(dot = strchr(p, '.')))
			break;
		*dot = '\0';
	}
	int verdict = 2;
	for (int i = 1; i <= k; i++) {
		const char *o = i <= n ? ours[n - i] : NULL;
		if (!o) {
			verdict = 1;
			continue;
		}
		size_t wl = strlen(want[k - i]);
		bool same = str_ieq(o, want[k - i]) ||
			    (!strcmp(s->type, "oracle") && i == 3 && !strncasecmp(o, want[k - i], wl) && o[wl] == '.');
		if (!same)
			return 0;
	}
	return s->exact ? verdict : 1;
}

static void dh_case(const json_t *c, dh_stats *st, bool verbose)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const char *m = json_string_value(json_object_get(c, "m"));
	json_t *params = json_object_get(c, "params"), *expect = json_object_get(c, "expect");
	mlineage_param ps[16];
	size_t np = 0;
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v) {
		if (np < 16) {
			ps[np].name = k;
			ps[np++].value = json_string_value(v);
		}
	}
	char err[PB_ERR_MAX];
	mlineage_sources s = { 0 };
	st->cases++;
	if (mlineage_parse(m, ps, np, &s, err)) {
		st->unparsed++;
		if (verbose)
			printf("  %-52s does not parse: %s\n", name, err);
		return;
	}
	int best[16] = { 0 };
	size_t nexp = json_array_size(expect);
	assert_true(nexp <= 16);
	bool wrong = false;
	for (size_t i = 0; i < s.n; i++) {
		int any = 0;
		for (size_t j = 0; j < nexp; j++) {
			json_t *e = json_array_get(expect, j);
			int r = dh_match(&s.v[i], json_string_value(json_object_get(e, "platform")),
					 json_string_value(json_object_get(e, "name")));
			if (r > best[j])
				best[j] = r;
			if (r > any)
				any = r;
		}
		if (!any && s.v[i].table)
			wrong = true;
	}
	int worst = 2;
	for (size_t j = 0; j < nexp; j++)
		if (best[j] < worst)
			worst = best[j];
	const char *verdict = wrong ? "WRONG" : !nexp ? (s.n ? "WRONG" : "exact") : worst == 2 ? "exact"
				 : worst == 1 ? "partial" : "missed";
	if (!strcmp(verdict, "WRONG") || (!nexp && s.n))
		st->wrong++;
	else if (!strcmp(verdict, "exact"))
		st->exact++;
	else if (!strcmp(verdict, "partial"))
		st->partial++;
	else
		st->missed++;
	if (verbose) {
		printf("  %-52s %-7s", name, verdict);
		for (size_t i = 0; i < s.n; i++)
			printf(" %s:%s.%s.%s%s", s.v[i].type, s.v[i].database ? s.v[i].database : "?",
			       s.v[i].schema ? s.v[i].schema : "?", s.v[i].table ? s.v[i].table : "?",
			       s.v[i].exact ? "" : "(partial)");
		if (strcmp(verdict, "exact") && (s.note || (s.n && s.v[0].note)))
			printf("  [%s]", s.note ? s.note : s.v[0].note);
		printf("\n");
	}
	mlineage_sources_release(&s);
}

static void datahub_m_tests(void **state)
{
	(void)state;
	char path[4096], cmd[8192];
	if (!tu_corpus_path("m/datahub/test_m_parser.py", "DataHub's M parser tests", path, sizeof path))
		return;
	assert_null(strchr(path, '\''));
	assert_int_equal(xsnprintf(cmd, sizeof cmd, "python3 tests/tools/datahub_m_cases.py '%s'", path), 0);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	json_error_t jerr;
	json_t *doc = json_loadf(p, 0, &jerr);
	assert_int_equal(pclose(p), 0);
	if (!doc)
		fail_msg("datahub_m_cases.py: %s", jerr.text);
	dh_stats plain = { 0 }, other = { 0 };
	size_t i;
	json_t *c;
	printf("DataHub's M parser tests (%s): %lld distinct M expressions\n", path,
	       (long long)json_integer_value(json_object_get(doc, "expressions")));
	json_array_foreach(json_object_get(doc, "cases"), i, c) {
		bool is_plain = json_is_true(json_object_get(c, "plain"));
		dh_case(c, is_plain ? &plain : &other, is_plain);
	}
	printf("plain cases: %zu: %zu exact, %zu right but partial, %zu missed, %zu wrong, %zu do not parse\n",
	       plain.cases, plain.exact, plain.partial, plain.missed, plain.wrong, plain.unparsed);
	printf("cases that depend on DataHub's own settings: %zu (not judged)\n", other.cases);
	json_decref(doc);
	assert_true(plain.cases > 0);
	assert_int_equal(plain.wrong, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fixtures),
		cmocka_unit_test(fixture_prefixes),
		cmocka_unit_test(syntax_errors),
		cmocka_unit_test(limits),
		cmocka_unit_test(cycles_and_parameters),
		cmocka_unit_test(server_matching),
		cmocka_unit_test(model_parameters),
		cmocka_unit_test(conditional_sources),
		cmocka_unit_test(odbc_connections),
		cmocka_unit_test(source_types),
		cmocka_unit_test(corpus),
		cmocka_unit_test(datahub_m_tests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
