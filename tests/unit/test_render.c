/* The TMDL renderer: escaping helpers (lua/tmdl.lua, called through the sandbox),
 * Snowflake and Databricks output against tests/fixtures/render/, missing values,
 * --mode, relationships, admin overrides, template errors and determinism.
 * PBIPORT_UPDATE_FIXTURES=1 rewrites the expected files (review the diff). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "core/lang/render.h"
#include "runtime/lua_sandbox.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

#define S(x) ((char *)(x))
#define FIXTURES PBIPORT_DATADIR "/tests/fixtures/render"

/* The source types templates/tmdl/sources/ describes, as messages list them. */
#define ALL_SOURCES "bigquery, databricks, mysql, oracle, postgres, postgresql, redshift, snowflake, sqlserver, synapse"

/* The values a caller gives for the fields a server lacks (render_opts.values). */
#define VALUES(...) .values = (const render_value[]){ __VA_ARGS__ }, \
	.nvalues = sizeof((const render_value[]){ __VA_ARGS__ }) / sizeof(render_value)


/* --- contracts built by hand ------------------------------------------------------- */

static pb_column customer_cols[] = {
	{ .name = S("customer_id"), .physical_name = S("CUSTOMER_ID"), .logical_type = S("integer"),
	  .description = S("Surrogate key."), .required = true, .primary_key = true,
	  .primary_key_position = 1, .precision = 38, .scale = 0 },
	{ .name = S("O'Brien \"nick\" name"), .physical_name = S(" NICK NAME "), .logical_type = S("string"),
	  .description = S("Line one\r\nLine `two` with 'quotes' and \"double\"\n\nafter a blank line"),
	  .precision = -1, .scale = -1 },
	{ .name = S("Größe"), .physical_name = S("GROESSE"), .logical_type = S("number"),
	  .precision = -1, .scale = -1 },
	{ .name = S("2nd address"), .physical_name = S("ADDRESS_2"), .logical_type = S("string"),
	  .precision = -1, .scale = -1 },
	{ .name = S("birth_date"), .physical_name = S("BIRTH_DATE"), .logical_type = S("date"),
	  .precision = -1, .scale = -1 },
	{ .name = S("wake_time"), .physical_name = S("WAKE_TIME"), .logical_type = S("time"),
	  .precision = -1, .scale = -1 },
	{ .name = S("active"), .physical_name = S("ACTIVE"), .logical_type = S("boolean"),
	  .precision = -1, .scale = -1 },
};

static pb_column order_cols[] = {
	{ .name = S("order_id"), .physical_name = S("ORDER_ID"), .logical_type = S("integer"),
	  .required = true, .primary_key = true, .precision = -1, .scale = -1 },
	{ .name = S("customer_id"), .physical_name = S("CUSTOMER_ID"), .logical_type = S("integer"),
	  .required = true, .precision = -1, .scale = -1 },
	{ .name = S("total"), .physical_name = S("TOTAL"), .logical_type = S("number"),
	  .precision = 12, .scale = 2 },
	{ .name = S("placed_at"), .physical_name = S("PLACED_AT"), .logical_type = S("timestamp"),
	  .precision = -1, .scale = -1 },
	{ .name = S("quantity"), .physical_name = S("QTY"), .logical_type = S("integer"),
	  .precision = -1, .scale = -1 },
};

static pb_table tables[] = {
	{ .name = S("Customer List"), .physical_name = S("CUSTOMER LIST"), .physical_type = S("view"),
	  .description = S("Customers.\nOne row each."), .columns = customer_cols,
	  .ncolumns = sizeof customer_cols / sizeof customer_cols[0] },
	{ .name = S("orders/2024"), .physical_name = S("ORDERS#(2024)"), .physical_type = S("table"),
	  .columns = order_cols, .ncolumns = sizeof order_cols / sizeof order_cols[0] },
};

static pb_relationship rels[] = {
	{ .from_table = S("orders/2024"), .from_column = S("customer_id"),
	  .to_table = S("Customer List"), .to_column = S("customer_id"), .cardinality = S("many-to-one") },
};

static pb_kv sf_fields[] = {
	{ S("account"), S("myorg-acct1") }, { S("database"), S("SALES DB") },
	{ S("warehouse"), S("REPORTING_WH") }, { S("schema"), S("PUBLIC") },
};
static pb_kv sf_nowh_fields[] = {
	{ S("host"), S("acme.snowflakecomputing.com") }, { S("database"), S("SALES") },
	{ S("schema"), S("PUBLIC") },
};
static pb_kv dbx_fields[] = {
	{ S("host"), S("adb-123.4.azuredatabricks.net") }, { S("catalog"), S("main") },
	{ S("schema"), S("sales") },
};
static pb_kv dbx_custom[] = { { S("httpPath"), S("/sql/1.0/warehouses/abc") } };
static pb_kv dbx_nohost_fields[] = { { S("catalog"), S("main") }, { S("schema"), S("sales") } };
static pb_kv v2_fields[] = { { S("host"), S("v2.example.com") }, { S("database"), S("DB") } };
static pb_kv pg_fields[] = { { S("host"), S("db.local") }, { S("database"), S("x") } };

static pb_server servers[] = {
	{ .name = S("prod"), .type = S("snowflake"), .fields = sf_fields, .nfields = 4 },
	{ .name = S("nowh"), .type = S("snowflake"), .fields = sf_nowh_fields, .nfields = 3 },
	{ .name = S("dbx"), .type = S("databricks"), .fields = dbx_fields, .nfields = 3,
	  .custom = dbx_custom, .ncustom = 1 },
	{ .name = S("dbx-nopath"), .type = S("databricks"), .fields = dbx_fields, .nfields = 3 },
	{ .name = S("pg"), .type = S("kafka"), .fields = pg_fields, .nfields = 2 },
	{ .name = S("sf-noschema"), .type = S("snowflake"), .fields = sf_fields, .nfields = 3 },
	{ .name = S("dbx-nohost"), .type = S("databricks"), .fields = dbx_nohost_fields, .nfields = 2,
	  .custom = dbx_custom, .ncustom = 1 },
	{ .name = S("sf-nohost"), .type = S("snowflake"), .fields = sf_fields + 1, .nfields = 3 },
	{ .name = S("bare-sf"), .type = S("snowflake") },
	{ .name = S("bare-dbx"), .type = S("databricks") },
	{ .name = S("v2"), .type = S("custom"), .fields = v2_fields, .nfields = 2 },
};

static pb_contract contract = {
	.id = S("urn:test:customers"), .name = S("Customers"), .version = S("1.0.0"), .odcs_major = 3,
	.tables = tables, .ntables = 2, .servers = servers, .nservers = sizeof servers / sizeof servers[0],
	.relationships = rels, .nrelationships = 1,
};

/* --- helpers ----------------------------------------------------------------------- */


static const pb_file *find(const pb_files *f, const char *path)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->v[i].path, path))
			return &f->v[i];
	return NULL;
}

static int render(const char *server, const render_opts *base, pb_files *out, char *err)
{
	render_opts o = base ? *base : (render_opts){ 0 };
	o.server = server;
	return tmdl_render(&contract, &o, out, err);
}

/* Compares every file with FIXTURES/<name>/<path>, and the list with MANIFEST. */
static void compare_with_fixtures(const pb_files *f, const char *name)
{
	char dir[512], path[1024], err[PB_ERR_MAX];
	bool update = getenv("PBIPORT_UPDATE_FIXTURES") != NULL;
	sbuf manifest;
	sbuf_init(&manifest, 1u << 20);
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/%s", FIXTURES, name), 0);
	for (size_t i = 0; i < f->n; i++) {
		assert_int_equal(sbuf_addf(&manifest, "%s\n", f->v[i].path), 0);
		assert_int_equal(xsnprintf(path, sizeof path, "%s/%s", dir, f->v[i].path), 0);
		if (update) {
			assert_int_equal(tu_write_file(path, f->v[i].content, f->v[i].len, err), 0);
			continue;
		}
		char *want = NULL;
		size_t len = 0;
		if (read_file(path, 1u << 24, &want, &len, err))
			fail_msg("%s", err);
		if (len != f->v[i].len || memcmp(want, f->v[i].content, len)) {
			fprintf(stderr, "--- %s differs; got:\n%s", path, f->v[i].content);
			free(want);
			fail_msg("%s differs from the fixture", path);
		}
		free(want);
	}
	assert_int_equal(xsnprintf(path, sizeof path, "%s/MANIFEST", dir), 0);
	if (update) {
		assert_int_equal(tu_write_file(path, manifest.buf, manifest.len, err), 0);
	} else {
		char *want = NULL;
		size_t len = 0;
		if (read_file(path, 1u << 20, &want, &len, err))
			fail_msg("%s", err);
		assert_string_equal(want, sbuf_str(&manifest));
		free(want);
	}
	sbuf_release(&manifest);
}

/* --- escaping helpers through the sandbox ------------------------------------------ */

static lua_sandbox *helpers(void)
{
	sandbox_dir dirs[] = { { PBIPORT_DATADIR "/lua", "lua" } };
	sandbox_opts o = { .dirs = dirs, .ndirs = 1 };
	lua_sandbox *sb = NULL;
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_new(&o, &sb, err), 0);
	assert_int_equal(sandbox_run(sb, "t.lua", "return require 'tmdl'", 1, err), 0);
	return sb;
}

/* Calls tmdl.<fn>(arg) and returns the result (or "ERROR: message") in buf. */
static const char *call1(lua_sandbox *sb, const char *fn, const char *arg, char *buf, size_t n)
{
	lua_State *L = sandbox_lua(sb);
	lua_getfield(L, -1, fn);
	if (!strcmp(fn, "number") && lua_stringtonumber(L, arg))
		;       /* tmdl.number takes the number the text reads as */
	else
		lua_pushstring(L, arg);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK)
		assert_int_equal(xsnprintf(buf, n, "ERROR: %s", lua_tostring(L, -1)), 0);
	else
		assert_int_equal(xsnprintf(buf, n, "%s", lua_tostring(L, -1)), 0);
	lua_pop(L, 1);
	return buf;
}

struct case1 {
	const char *fn, *in, *want;
};

static void escaping_rules(void **state)
{
	(void)state;
	static const struct case1 cases[] = {
		/* names (tmdl.md 2.3) */
		{ "quote_name", "Sales", "Sales" },
		{ "quote_name", "_x9", "_x9" },
		{ "quote_name", "Order Lines", "'Order Lines'" },
		{ "quote_name", "O'Brien", "'O''Brien'" },
		{ "quote_name", "it''s", "'it''''s'" },
		{ "quote_name", "Größe", "'Größe'" },
		{ "quote_name", "2nd", "'2nd'" },
		{ "quote_name", "a.b", "'a.b'" },
		{ "quote_name", "x=y:z", "'x=y:z'" },
		{ "quote_name", "Year-Month", "'Year-Month'" },
		{ "quote_name", "table", "table" },
		{ "quote_name", "tab\there", "ERROR: name 'tab\\x09here' contains a control character" },
		{ "quote_name", "line\nbreak", "ERROR: name 'line\\x0Abreak' contains a control character" },
		{ "quote_name", "", "ERROR: name is empty" },
		{ "quote_name", "bad\xff", "ERROR: name 'bad\xff' is not valid UTF-8" },
		/* ':' text values (tmdl.md 2.4) */
		{ "text_value", "Order Date", "Order Date" },
		{ "text_value", "$ #,##0;(\\$#,0)", "$ #,##0;(\\$#,0)" },
		{ "text_value", " lead", "\" lead\"" },
		{ "text_value", "trail ", "\"trail \"" },
		{ "text_value", "say \"hi\"", "say \"hi\"" },
		{ "text_value", "\"quoted\"", "\"\"\"quoted\"\"\"" },
		{ "text_value", "", "\"\"" },
		{ "text_value", "a\nb", "ERROR: text value 'a\\x0Ab' contains a line break or control character" },
		/* M text literals (tmdl.md 10) */
		{ "m_string", "plain", "\"plain\"" },
		{ "m_string", "say \"hi\"", "\"say \"\"hi\"\"\"" },
		{ "m_string", "x#(y", "\"x#(#)(y\"" },
		{ "m_string", "#(lf)", "\"#(#)(lf)\"" },
		{ "m_string", "l1\r\nl2\tz", "\"l1#(cr)#(lf)l2#(tab)z\"" },
		{ "m_string", "bell\x07", "\"bell#(0007)\"" },
		{ "m_string", "Größe", "\"Größe\"" },
		/* M identifiers */
		{ "m_ident", "Source", "Source" },
		{ "m_ident", "SALES_Database", "SALES_Database" },
		{ "m_ident", "my db_Database", "#\"my db_Database\"" },
		{ "m_ident", "let", "#\"let\"" },
		{ "m_ident", "each", "#\"each\"" },
		{ "m_ident", "1abc", "#\"1abc\"" },
		{ "m_ident", "q\"x", "#\"q\"\"x\"" },
		{ "m_ident", "ORDERS#(2024)_Table", "#\"ORDERS#(#)(2024)_Table\"" },
		/* JSON strings (PBI_QueryOrder) */
		{ "json_string", "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "json_string", "t\tx", "\"t\\u0009x\"" },
		/* table file names */
		{ "file_name", "a/b\\c:d*e?f\"g<h>i|j", "a_b_c_d_e_f_g_h_i_j" },
		{ "file_name", "trail. ", "trail__" },
		{ "file_name", "Größe Tabelle", "Größe Tabelle" },
		{ "file_name", "ctl\x01x", "ctl_x" },
		/* device names Windows reserves, with or without an extension, in any case */
		{ "file_name", "CON", "CON_" },
		{ "file_name", "nul.x", "nul_.x" },
		{ "file_name", "Com1", "Com1_" },
		{ "file_name", "LPT\xc2\xb9", "LPT\xc2\xb9_" },
		{ "file_name", "aux .x", "aux _.x" },
		{ "file_name", "CONSOLE", "CONSOLE" },
		{ "file_name", "order-lines_2024", "order-lines_2024" },
		{ "file_name", "prn", "prn_" },
		{ "file_name", "COM10", "COM10" },
		{ "file_name", "prn.", "prn_" },
		/* numbers: the shortest text that reads back the same */
		{ "number", "2.002", "2.002" },
		{ "number", "0.1", "0.1" },
		{ "number", "1e300", "1e+300" },
		{ "number", "0.30000000000000004", "0.30000000000000004" },
		{ "number", "5", "5" },
		{ "number", "-2.5", "-2.5" },
		{ "number", "x", "ERROR: number expected, got string" },
		/* Title Case used by docs/examples/naming.lua */
		{ "title_case", "customer_id", "Customer Id" },
		{ "title_case", "ORDER  total", "Order Total" },
	};
	lua_sandbox *sb = helpers();
	char buf[512];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *got = call1(sb, cases[i].fn, cases[i].in, buf, sizeof buf);
		/* Errors carry a location prefix ("t.lua:1: " or "?: "); compare the message. */
		if (!strncmp(cases[i].want, "ERROR: ", 7) && !strncmp(got, "ERROR: ", 7)) {
			const char *msg = strstr(got, cases[i].want + 7);
			if (!msg)
				fail_msg("%s(%s): got %s, want %s", cases[i].fn, cases[i].in, got, cases[i].want);
			continue;
		}
		if (strcmp(got, cases[i].want))
			fail_msg("%s(%s): got %s, want %s", cases[i].fn, cases[i].in, got, cases[i].want);
	}
	sandbox_free(sb);
}

/* Runs code (which returns a text) with the helper modules; the text must be want. */
static void expect_helpers(const char *name, const char *code, const char *want)
{
	lua_sandbox *sb = helpers();
	char err[PB_ERR_MAX];
	lua_pop(sandbox_lua(sb), 1);
	if (sandbox_run(sb, name, code, 1, err))
		fail_msg("%s", err);
	assert_string_equal(lua_tostring(sandbox_lua(sb), -1), want);
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
}

static void description_and_lists(void **state)
{
	(void)state;
	expect_helpers("d.lua",
		"local t = require 'tmdl'\n"
		"local d = t.description_lines('a\\r\\nb `code` \"q\" \\'s\\'\\n\\nc\\n\\n')\n"
		"local f = t.unique_file_names({ 'A', 'a', 'A', 'x/y', 'x_y' })\n"
		"return table.concat(d, '|') .. '#' .. table.concat(f, '|') .. '#' .. #t.description_lines(nil)"
		" .. #t.description_lines('')",
		"/// a|/// b `code` \"q\" 's'|/// |/// c#A|a (2)|A (3)|x_y|x_y (2)#00");
}

/* description_text's fast paths (one line, two lines, several) give what its general path
 * (description_lines) gives, at any depth, for texts with and without other control bytes. */
static void description_text_matches_lines(void **state)
{
	(void)state;
	expect_helpers("dt.lua",
		"local t = require 'tmdl'\n"
		"local texts = { 'one', 'a\\nb', 'a\\nb\\nc', '\\n', 'a\\n', '\\nb', 'a\\n\\nb', 'a\\tb', 'a\\r\\nb',\n"
		"  'a\\nb\\tc', 'a\\nb ', ' a', 'x\\0y', 'caf\\195\\169\\ndeux', ('w'):rep(300) .. '\\n' .. ('v'):rep(50) }\n"
		"local n = 0\n"
		"for _, s in ipairs(texts) do\n"
		"  for depth = 0, 3 do\n"
		"    local lines = t.description_lines(s)\n"
		"    local tabs = ('\\t'):rep(depth)\n"
		"    local want = #lines == 0 and '' or tabs .. table.concat(lines, '\\n' .. tabs) .. '\\n'\n"
		"    local got = t.description_text(depth, s)\n"
		"    if got ~= want then error(string.format('%q at %d: %q, want %q', s, depth, got, want)) end\n"
		"    n = n + 1\n"
		"  end\n"
		"end\n"
		"return n",
		"60");
}

/* Writer:text joins the lines with LF and ends in one LF, trailing blank lines dropped; it
 * leaves the writer as it was (text twice, or more lines after it, give the same lines). */
static void writer_text(void **state)
{
	(void)state;
	expect_helpers("wt.lua",
		"local t = require 'tmdl'\n"
		"local out = {}\n"
		"local w = t.writer()\n"
		"out[#out + 1] = w:text()\n"
		"w:blank()\n"
		"out[#out + 1] = w:text()\n"
		"w:line(1, 'a')\n"
		"out[#out + 1] = w:text()\n"
		"w:blank() w:blank()\n"
		"out[#out + 1] = w:text()\n"
		"out[#out + 1] = w:text()\n"
		"w:line(0, 'b')\n"
		"out[#out + 1] = w:text()\n"
		/* an expression: its lines at a depth, blank ones empty, as the lines one by one */
		"for _, e in ipairs({ 'let\\n  x = 1\\nin\\n  x', 'one', '', '\\n', 'a\\n\\nb', '\\nlead', 'trail\\n',\n"
		"    'tab\\there\\nx', 'sp \\ny ', 'cr\\r\\nx' }) do\n"
		"  local a, b = t.writer(), t.writer()\n"
		"  a:line(0, '<') a:expression(2, e) a:line(0, '>')\n"
		"  b:line(0, '<')\n"
		"  local pos = 1\n"
		"  while true do\n"
		"    local nl = string.find(e, '\\n', pos, true)\n"
		"    local l = string.sub(e, pos, (nl or #e + 1) - 1)\n"
		"    if l == '' then b:blank() else b:line(2, l) end\n"
		"    if not nl then break end\n"
		"    pos = nl + 1\n"
		"  end\n"
		"  b:line(0, '>')\n"
		"  if a:text() ~= b:text() then error(string.format('%q: %q', e, a:text())) end\n"
		"end\n"
		"return table.concat(out, '|')",
		"\n|\n|\n\ta\n|\n\ta\n|\n\ta\n|\n\ta\n\n\nb\n");
}

static void column_types(void **state)
{
	(void)state;
	expect_helpers("c.lua",
		"local t = require 'tmdl'\n"
		"local function f(c)\n"
		"  local r = t.column_type(c)\n"
		"  local a = {}\n"
		"  for _, x in ipairs(r.annotations) do a[#a + 1] = x[1] .. '=' .. x[2] end\n"
		"  return r.data_type .. ',' .. (r.format_string or '-') .. ',' .. r.summarize_by .. ',' .."
		"    table.concat(a, ';')\n"
		"end\n"
		"return table.concat({\n"
		"  f{ name = 'qty', logical_type = 'integer' },\n"
		"  f{ name = 'customer_id', logical_type = 'integer' },\n"
		"  f{ name = 'CustomerID', logical_type = 'integer' },\n"
		"  f{ name = 'paid', logical_type = 'integer' },\n"
		"  f{ name = 'n', logical_type = 'integer', primary_key = true },\n"
		"  f{ name = 'price', logical_type = 'number', precision = 12, scale = 2 },\n"
		"  f{ name = 'big', logical_type = 'number', precision = 18, scale = 0 },\n"
		"  f{ name = 'ratio', logical_type = 'number' },\n"
		"  f{ name = 'wide', logical_type = 'number', precision = 38, scale = 10 },\n"
		"  f{ name = 'd', logical_type = 'date' },\n"
		"  f{ name = 'ts', logical_type = 'timestamp' },\n"
		"  f{ name = 't', logical_type = 'time' },\n"
		"  f{ name = 'b', logical_type = 'boolean' },\n"
		"  f{ name = 's', logical_type = 'string' },\n"
		"  f{ name = 'o', logical_type = 'object' },\n"
		"  f{ name = 'none' },\n"
		"}, '\\n')",
		"int64,0,sum,SummarizationSetBy=Automatic\n"
		"int64,0,none,SummarizationSetBy=Automatic\n"
		"int64,0,none,SummarizationSetBy=Automatic\n"
		"int64,0,sum,SummarizationSetBy=Automatic\n"
		"int64,0,none,SummarizationSetBy=Automatic\n"
		"decimal,#,0.00,sum,SummarizationSetBy=Automatic\n"
		"int64,0,sum,SummarizationSetBy=Automatic\n"
		"double,-,sum,SummarizationSetBy=Automatic;PBI_FormatHint={\"isGeneralNumber\":true}\n"
		"double,-,sum,SummarizationSetBy=Automatic;PBI_FormatHint={\"isGeneralNumber\":true}\n"
		"dateTime,Long Date,none,SummarizationSetBy=Automatic;UnderlyingDateTimeDataType=Date\n"
		"dateTime,General Date,none,SummarizationSetBy=Automatic\n"
		"dateTime,Long Time,none,SummarizationSetBy=Automatic;UnderlyingDateTimeDataType=Time\n"
		"boolean,-,none,SummarizationSetBy=Automatic\n"
		"string,-,none,SummarizationSetBy=Automatic\n"
		"string,-,none,SummarizationSetBy=Automatic\n"
		"string,-,none,SummarizationSetBy=Automatic");
}

/* --- whole renders ------------------------------------------------------------------ */

static void snowflake_output(void **state)
{
	(void)state;
	pb_files f;
	char err[PB_ERR_MAX];
	if (render("prod", NULL, &f, err))
		fail_msg("%s", err);
	compare_with_fixtures(&f, "snowflake");
	/* every file ends with exactly one LF and has no CR */
	for (size_t i = 0; i < f.n; i++) {
		assert_true(f.v[i].len > 0 && f.v[i].content[f.v[i].len - 1] == '\n');
		assert_null(strchr(f.v[i].content, '\r'));
	}
	pb_files_release(&f);
}

static void databricks_output(void **state)
{
	(void)state;
	pb_files f;
	char err[PB_ERR_MAX];
	render_opts o = { .mode = "DirectQuery", VALUES({ "warehouse", "IGNORED_WH" }) };
	if (render("dbx", &o, &f, err))
		fail_msg("%s", err);
	compare_with_fixtures(&f, "databricks");
	pb_files_release(&f);
}

static void expect_error(const char *server, const render_opts *o, int rc, const char *msg)
{
	pb_files f;
	char err[PB_ERR_MAX];
	assert_int_equal(render(server, o, &f, err), rc);
	assert_int_equal(f.n, 0);
	assert_null(f.v);
	if (strcmp(err, msg))
		fail_msg("got \"%s\", want \"%s\"", err, msg);
}

static void missing_values(void **state)
{
	(void)state;
	render_opts cli = { .params = RENDER_PARAMS_CLI };
	expect_error("nowh", &cli, PB_EINVAL,
		     "server \"nowh\" (snowflake): no warehouse; add \"warehouse\" to the server or pass --warehouse");
	expect_error("dbx-nopath", &cli, PB_EINVAL,
		     "server \"dbx-nopath\" (databricks): no HTTP path; add customProperties \"httpPath\" to the "
		     "server or pass --http-path");
	expect_error("pg", &cli, PB_EINVAL,
		     "server type kafka is not supported for Power BI (" ALL_SOURCES ")");
	expect_error("sf-noschema", &cli, PB_EINVAL,
		     "server \"sf-noschema\" (snowflake): no schema; add \"schema\" to the server or pass --schema");
	expect_error("nope", &cli, PB_EINVAL,
		     "no server named \"nope\" in the contract (servers: prod, nowh, dbx, dbx-nopath, pg, sf-noschema, "
		     "dbx-nohost, sf-nohost, bare-sf, bare-dbx, v2)");
	expect_error("dbx-nohost", &cli, PB_EINVAL,
		     "server \"dbx-nohost\" (databricks): no host; add \"host\" to the server or pass --host");
	expect_error("sf-nohost", &cli, PB_EINVAL,
		     "server \"sf-nohost\" (snowflake): no host; add \"host\" or \"account\" to the server or "
		     "pass --host");
	render_opts bad = { .mode = "twin" };
	expect_error("prod", &bad, PB_EINVAL, "mode \"twin\": use import, directquery or dual");

	/* Everything a server lacks, in one message, named as each caller takes it. */
	expect_error("bare-sf", &cli, PB_EINVAL,
		     "server \"bare-sf\" (snowflake): no host, warehouse, database or schema; add \"host\" or "
		     "\"account\", \"warehouse\", \"database\" and \"schema\" to the server or pass --host, "
		     "--warehouse, --database and --schema");
	expect_error("bare-dbx", &cli, PB_EINVAL,
		     "server \"bare-dbx\" (databricks): no host, HTTP path, catalog or schema; add \"host\", "
		     "customProperties \"httpPath\", \"catalog\" and \"schema\" to the server or pass --host, "
		     "--http-path, --catalog and --schema");
	render_opts query = { .params = RENDER_PARAMS_QUERY, VALUES({ "warehouse", "W" }) };
	expect_error("bare-sf", &query, PB_EINVAL,
		     "server \"bare-sf\" (snowflake): no host, database or schema; add \"host\" or \"account\", "
		     "\"database\" and \"schema\" to the server or pass ?host=, ?database= and ?schema=");
	expect_error("dbx-nopath", &query, PB_EINVAL,
		     "server \"dbx-nopath\" (databricks): no HTTP path; add customProperties \"httpPath\" to the "
		     "server or pass ?http_path=");
	/* a publish request takes only http_path */
	expect_error("dbx-nopath", NULL, PB_EINVAL,
		     "server \"dbx-nopath\" (databricks): no HTTP path; add customProperties \"httpPath\" to the "
		     "server or send \"http_path\"");
	expect_error("bare-sf", NULL, PB_EINVAL,
		     "server \"bare-sf\" (snowflake): no host, warehouse, database or schema; add \"host\" or "
		     "\"account\", \"warehouse\", \"database\" and \"schema\" to the server");
	/* A v2 connection whose type is unknown takes --type; a known type is the server's own. */
	expect_error("v2", &cli, PB_EINVAL, "server \"v2\" does not say its type; pass --type (" ALL_SOURCES ")");
	expect_error("v2", &query, PB_EINVAL, "server \"v2\" does not say its type; pass ?type= (" ALL_SOURCES ")");
	render_opts v2 = { .params = RENDER_PARAMS_CLI, .type = "snowflake", VALUES({ "warehouse", "W" }, { "schema", "S" }) };
	pb_files f;
	char err[PB_ERR_MAX];
	if (render("v2", &v2, &f, err))
		fail_msg("%s", err);
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content, "SnowflakeHost = \"v2.example.com\""));
	pb_files_release(&f);
	/* --type alone picks the first server of that type, else the first of unknown type */
	pb_contract v2only = contract;
	v2only.servers = &servers[10];
	v2only.nservers = 1;
	assert_string_equal(servers[10].name, "v2");
	v2.server = NULL;
	if (tmdl_render(&v2only, &v2, &f, err))
		fail_msg("%s", err);
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content, "SnowflakeDatabase = \"DB\""));
	pb_files_release(&f);
	render_opts pg = { .params = RENDER_PARAMS_CLI, .type = "snowflake" };
	expect_error("pg", &pg, PB_EINVAL, "server type kafka is not supported for Power BI (" ALL_SOURCES ")");

	/* Flags fill in what the server lacks; the server's own value wins. */
	render_opts o = { VALUES({ "host", "flag.example.net" }, { "warehouse", "FLAG_WH" },
				 { "http_path", "/sql/1.0/warehouses/flag" }) };
	assert_int_equal(render("nowh", &o, &f, err), 0);
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content, "\"FLAG_WH\" meta"));
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content,
			       "SnowflakeHost = \"acme.snowflakecomputing.com\""));
	pb_files_release(&f);
	assert_int_equal(render("prod", &o, &f, err), 0);
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content, "\"REPORTING_WH\" meta"));
	pb_files_release(&f);
	assert_int_equal(render("dbx-nopath", &o, &f, err), 0);
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content, "\"/sql/1.0/warehouses/flag\""));
	pb_files_release(&f);
	assert_int_equal(render("dbx", &o, &f, err), 0);
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content, "\"/sql/1.0/warehouses/abc\""));
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content,
			       "DatabricksHost = \"adb-123.4.azuredatabricks.net\""));
	pb_files_release(&f);
	assert_int_equal(render("dbx-nohost", &o, &f, err), 0);
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content,
			       "DatabricksHost = \"flag.example.net\""));
	pb_files_release(&f);
	assert_int_equal(render("sf-nohost", &o, &f, err), 0);
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content,
			       "SnowflakeHost = \"flag.example.net\""));
	pb_files_release(&f);
	/* A Snowflake account is the server's own value: it wins over the flag. */
	assert_int_equal(render("prod", &o, &f, err), 0);
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content,
			       "SnowflakeHost = \"myorg-acct1.snowflakecomputing.com\""));
	pb_files_release(&f);

	/* No servers at all: --type and the values make one. */
	pb_contract none = contract;
	none.nservers = 0;
	assert_int_equal(tmdl_render(&none, NULL, &f, err), PB_EINVAL);
	assert_string_equal(err, "the contract has no servers; add a server of one of these types: " ALL_SOURCES);
	assert_int_equal(tmdl_render(&none, &cli, &f, err), PB_EINVAL);
	assert_string_equal(err, "the contract has no servers; pass --type with the values its source needs (types: "
				 ALL_SOURCES ")");
	render_opts half = { .params = RENDER_PARAMS_QUERY, VALUES({ "host", "h" }, { "schema", "s" }) };
	assert_int_equal(tmdl_render(&none, &half, &f, err), PB_EINVAL);
	assert_string_equal(err, "the contract has no servers; pass ?type= with the values its source needs (types: "
				 ALL_SOURCES ")");
	half.type = "databricks";
	assert_int_equal(tmdl_render(&none, &half, &f, err), PB_EINVAL);
	assert_string_equal(err, "?type=databricks without a databricks server in the contract: no HTTP path or "
				 "catalog; pass ?http_path= and ?catalog=");
	render_opts full = { .params = RENDER_PARAMS_CLI, .type = "DataBricks",
			     VALUES({ "host", "h.example.net" }, { "http_path", "/sql/1" }, { "catalog", "cat" },
				    { "schema", "sch" }) };
	assert_int_equal(tmdl_render(&none, &full, &f, err), 0);
	const char *expr = find(&f, "definition/expressions.tmdl")->content;
	assert_non_null(strstr(expr, "DatabricksHost = \"h.example.net\""));
	assert_non_null(strstr(expr, "DatabricksCatalog = \"cat\""));
	assert_non_null(strstr(find(&f, "definition/tables/Customer List.tmdl")->content, "{[Name=\"sch\",Kind=\"Schema\"]}"));
	pb_files_release(&f);
	/* --type without --server picks the first server of that type */
	full.type = "snowflake";
	assert_int_equal(tmdl_render(&contract, &full, &f, err), 0);
	assert_non_null(strstr(find(&f, "definition/expressions.tmdl")->content, "\"REPORTING_WH\" meta"));
	pb_files_release(&f);
}

static void mode_and_relationships(void **state)
{
	(void)state;
	pb_files f;
	char err[PB_ERR_MAX];
	render_opts o = { .mode = "directquery" };
	assert_int_equal(render("prod", &o, &f, err), 0);
	const pb_file *t = find(&f, "definition/tables/Customer List.tmdl");
	assert_non_null(t);
	assert_non_null(strstr(t->content, "\t\tmode: directQuery\n"));
	assert_non_null(find(&f, "definition/relationships.tmdl"));
	pb_files_release(&f);

	/* First server when none is named; no relationships file without relationships. */
	pb_contract plain = contract;
	plain.nrelationships = 0;
	assert_int_equal(tmdl_render(&plain, NULL, &f, err), 0);
	assert_null(find(&f, "definition/relationships.tmdl"));
	assert_non_null(strstr(find(&f, "definition/tables/Customer List.tmdl")->content, "\t\tmode: import\n"));
	pb_files_release(&f);

	/* A relationship naming a column the contract lacks. */
	pb_relationship bad_rel = rels[0];
	bad_rel.to_column = S("nope");
	plain.relationships = &bad_rel;
	plain.nrelationships = 1;
	assert_int_equal(tmdl_render(&plain, NULL, &f, err), PB_EINVAL);
	assert_non_null(strstr(err, "template templates/tmdl/main.lua:"));
	assert_non_null(strstr(err, ": relationship orders/2024.customer_id -> Customer List.nope: "
				    "table 'Customer List' has no column 'nope'"));
}

static void output_is_deterministic(void **state)
{
	(void)state;
	pb_files a, b;
	char err[PB_ERR_MAX];
	assert_int_equal(render("prod", NULL, &a, err), 0);
	assert_int_equal(render("prod", NULL, &b, err), 0);
	assert_int_equal(a.n, b.n);
	for (size_t i = 0; i < a.n; i++) {
		assert_string_equal(a.v[i].path, b.v[i].path);
		assert_int_equal(a.v[i].len, b.v[i].len);
		assert_memory_equal(a.v[i].content, b.v[i].content, a.v[i].len);
	}
	pb_files_release(&a);
	pb_files_release(&b);
}

static void override_folder(void **state)
{
	(void)state;
	pb_files f;
	char err[PB_ERR_MAX], dir[512];
	render_opts o = { .template_path = PBIPORT_DATADIR "/docs/examples" };
	assert_int_equal(render("prod", &o, &f, err), 0);
	const char *t = find(&f, "definition/tables/Customer List.tmdl")->content;
	assert_non_null(strstr(t, "\tcolumn 'Customer Id'\n\t\tdataType: int64\n\t\tisHidden\n\t\tisKey\n"));
	assert_non_null(strstr(t, "\tcolumn 'O''brien \"Nick\" Name'\n"));
	assert_non_null(strstr(t, "\tcolumn 'Birth Date'\n\t\tdataType: dateTime\n\t\tformatString"));
	assert_non_null(strstr(find(&f, "definition/relationships.tmdl")->content,
			       "\ttoColumn: 'Customer List'.'Customer Id'\n"));
	pb_files_release(&f);

	/* The same through PBIPORT_TEMPLATE_PATH (after an empty entry). */
	pb_config cfg;
	config_defaults(&cfg);
	cfg.template_path = ":" PBIPORT_DATADIR "/docs/examples";
	render_opts configured = { .cfg = &cfg };
	assert_int_equal(render("prod", &configured, &f, err), 0);
	assert_non_null(strstr(find(&f, "definition/tables/Customer List.tmdl")->content, "'Customer Id'"));
	pb_files_release(&f);
	/* Folders of opts->template_path (--templates) come before the configured ones. */
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/first", tu_tmpdir), 0);
	tu_put(dir, "naming.lua", "error('the first folder wins')\n");
	configured.template_path = dir;
	assert_int_equal(render("prod", &configured, &f, err), PB_EINVAL);
	assert_non_null(strstr(err, "the first folder wins"));
	/* ... and the configured data folder holds the built-in ones. */
	cfg.template_path = NULL;
	cfg.datadir = tu_tmpdir;
	configured.template_path = NULL;
	assert_int_equal(render("prod", &configured, &f, err), PB_EINVAL);
	assert_non_null(strstr(err, "server type snowflake is not supported for Power BI ()"));

	/* A template with a runtime error names its file and line. */
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/broken", tu_tmpdir), 0);
	tu_put(dir, "table.lua", "local tmdl = require 'tmdl'\n\nreturn function(t, model, ctx)\n"
			      "  return t.no_such_field.x\nend\n");
	o.template_path = dir;
	assert_int_equal(render("prod", &o, &f, err), PB_EINVAL);
	char want[PB_ERR_MAX];
	assert_int_equal(xsnprintf(want, sizeof want, "template %s/table.lua:4: attempt to index a nil value "
				   "(field 'no_such_field')", dir), 0);
	assert_string_equal(err, want);

	/* A runaway template is stopped by the default budget, scaled to the contract. */
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/spin", tu_tmpdir), 0);
	tu_put(dir, "main.lua", "return function(ctx)\n  while true do end\nend\n");
	o.template_path = dir;
	assert_int_equal(render("prod", &o, &f, err), PB_ELIMIT);
	assert_int_equal(xsnprintf(want, sizeof want, "template %s/main.lua:2: instruction limit of ", dir), 0);
	assert_memory_equal(err, want, strlen(want));
	assert_non_null(strstr(err, " exceeded"));
	/* Time spent in C calls counts against the CPU-time backstop. */
	tu_put(dir, "main.lua", "return function(ctx)\n  while true do pcall(error) end\nend\n");
	assert_int_equal(render("prod", &o, &f, err), PB_ELIMIT);
	assert_int_equal(xsnprintf(want, sizeof want, "template %s/main.lua:2: ", dir), 0);
	assert_memory_equal(err, want, strlen(want));
	assert_non_null(strstr(err, " limit of "));
	/* An explicit time limit replaces the default budget. */
	tu_put(dir, "main.lua", "return function(ctx)\n  while true do end\nend\n");
	o.time_limit_ms = 100;
	assert_int_equal(render("prod", &o, &f, err), PB_ELIMIT);
	assert_int_equal(xsnprintf(want, sizeof want, "template %s/main.lua:2: time limit of 100 ms exceeded", dir), 0);
	assert_string_equal(err, want);
	o.time_limit_ms = 0;
	/* PBIPORT_RENDER_TIME_LIMIT_MS (for profiling) replaces the deadline and keeps the
	 * instruction budget: a loop of VM instructions still stops at the budget ... */
	pb_config timed_cfg;
	config_defaults(&timed_cfg);
	timed_cfg.render_time_limit_ms = 60000;
	render_opts timed = o;
	timed.cfg = &timed_cfg;
	assert_int_equal(render("prod", &timed, &f, err), PB_ELIMIT);
	assert_int_equal(xsnprintf(want, sizeof want, "template %s/main.lua:2: instruction limit of ", dir), 0);
	assert_memory_equal(err, want, strlen(want));
	/* ... and work done in library calls, few instructions, stops at the configured deadline */
	tu_put(dir, "main.lua", "return function(ctx)\n  local s = ('x'):rep(1e7)\n"
			     "  while true do local t = s:upper() end\nend\n");
	timed_cfg.render_time_limit_ms = 150;
	assert_int_equal(render("prod", &timed, &f, err), PB_ELIMIT);
	assert_int_equal(xsnprintf(want, sizeof want, "template %s/main.lua:3: time limit of 150 ms exceeded", dir), 0);
	assert_string_equal(err, want);
	/* Without it the default deadline is the contract's: the fixed part as it is (a hostile
	 * template's bound), the per-column part scaled to this process's measured speed. */
	long long ncols = 0;
	for (size_t i = 0; i < contract.ntables; i++)
		ncols += (long long)contract.tables[i].ncolumns;
	int cols_ms = (int)(PB_LUA_TIME_PER_COLUMN_US * ncols / 1000);
	int pct = sandbox_time_scale_pct();
	assert_true(pct >= 100 && pct <= PB_LUA_TIME_SCALE_MAX_PCT);
	assert_int_equal(render("prod", &o, &f, err), PB_ELIMIT);
	assert_int_equal(xsnprintf(want, sizeof want, "template %s/main.lua:3: time limit of %d ms exceeded", dir,
				   (int)PB_LUA_TIME_BASE_MS +
					   sandbox_scaled_ms(cols_ms, pct, PB_LUA_TIME_MAX_MS - (int)PB_LUA_TIME_BASE_MS)),
			 0);
	assert_string_equal(err, want);

	/* Bad output paths and values are refused. */
	static const char *const bad[][2] = {
		{ "return function() return { ['../x'] = 'y' } end",
		  "template output: path \"../x\" is outside definition/ and definition.pbism" },
		{ "return function() return { ['definition/../x'] = 'y' } end",
		  "template output: path \"definition/../x\" has an empty, '.' or '..' part" },
		{ "return function() return { ['/etc/x'] = 'y' } end",
		  "template output: path \"/etc/x\" is outside definition/ and definition.pbism" },
		{ "return function() return { ['definition\\\\x'] = 'y' } end",
		  "template output: path \"definition\\x\" is outside definition/ and definition.pbism" },
		{ "return function() return { ['definition/a\\\\b.tmdl'] = 'y' } end",
		  "template output: path \"definition/a\\b.tmdl\" has a backslash or control character" },
		{ "return function() return { ['definition//a'] = 'y' } end",
		  "template output: path \"definition//a\" has an empty, '.' or '..' part" },
		{ "return function() return { ['definition/a'] = 5 } end",
		  "template output: keys must be paths and values texts (got a string key and a number value)" },
		{ "return function() return { ['definition/a'] = '\\xff' } end",
		  "template output: definition/a is not valid UTF-8" },
		{ "return function() return 'text' end",
		  "template main.lua: the render function returned a string, expected a table { [path] = text }" },
	};
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/paths", tu_tmpdir), 0);
	o.template_path = dir;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tu_put(dir, "main.lua", bad[i][0]);
		assert_int_equal(render("prod", &o, &f, err), PB_EINVAL);
		if (strcmp(err, bad[i][1]))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i][1]);
	}

	/* A missing --templates folder is an error, not silently skipped. */
	o.template_path = "/nonexistent/pbiport-templates";
	assert_int_equal(render("prod", &o, &f, err), PB_EINVAL);
	assert_string_equal(err, "template folder /nonexistent/pbiport-templates: not a readable folder");
}

/* Names: long ones render with short file names, look-alikes are one name, and a template
 * must return a whole model. */
static pb_contract one_table(pb_table *t, size_t n)
{
	pb_contract c = contract;
	c.tables = t;
	c.ntables = n;
	c.nrelationships = 0;
	return c;
}

static char *repeat(const char *unit, size_t n)
{
	size_t u = strlen(unit);
	char *s = malloc(u * n + 1);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * u, unit, u);
	s[u * n] = '\0';
	return s;
}

static void names_and_files(void **state)
{
	(void)state;
	pb_files f;
	char err[PB_ERR_MAX], dir[512];
	render_opts cli = { .params = RENDER_PARAMS_CLI };

	/* 250 bytes, 512 characters of 3 bytes (1536 bytes), and two that share 200 bytes */
	char *a = repeat("\xc3\xa9", 125), *b = repeat("\xe2\x82\xac", 512), *c1 = repeat("x", 300),
	     *c2 = repeat("x", 300);
	c2[299] = 'y';
	pb_table t[] = {
		{ .name = a, .physical_name = S("A"), .physical_type = S("table"), .columns = order_cols, .ncolumns = 1 },
		{ .name = b, .physical_name = S("B"), .physical_type = S("table"), .columns = order_cols, .ncolumns = 1 },
		{ .name = c1, .physical_name = S("C1"), .physical_type = S("table"), .columns = order_cols, .ncolumns = 1 },
		{ .name = c2, .physical_name = S("C2"), .physical_type = S("table"), .columns = order_cols, .ncolumns = 1 },
		{ .name = S("CON"), .physical_name = S("CON"), .physical_type = S("table"), .columns = order_cols,
		  .ncolumns = 1 },
	};
	pb_contract c = one_table(t, 5);
	if (tmdl_render(&c, &cli, &f, err))
		fail_msg("%s", err);
	size_t ntables = 0;
	for (size_t i = 0; i < f.n; i++) {
		const char *p = f.v[i].path;
		if (strncmp(p, "definition/tables/", 18))
			continue;
		ntables++;
		assert_true(strlen(p + 18) <= 100 + 5);       /* stem <= 100 bytes, ".tmdl" */
		assert_true(utf8_valid(p, strlen(p)));
	}
	assert_int_equal(ntables, 5);
	assert_non_null(find(&f, "definition/tables/CON_.tmdl"));
	/* the objects keep their whole names */
	char want[2000];
	for (size_t i = 0; i < 4; i++) {
		/* quoted unless plain (tmdl.quote_name) */
		assert_int_equal(xsnprintf(want, sizeof want, i >= 2 ? "table %s\n" : "table '%s'\n", t[i].name), 0);
		bool found = false;
		for (size_t k = 0; k < f.n && !found; k++)
			found = strstr(f.v[k].content, want) != NULL;
		if (!found)
			fail_msg("table %zu: no file declares its whole name", i);
	}
	pb_files_release(&f);

	/* look-alike names are one name to Power BI: the templates refuse them too */
	pb_table look[] = {
		{ .name = S("Caf\xc3\xa9"), .physical_name = S("A"), .physical_type = S("table"), .columns = order_cols,
		  .ncolumns = 1 },
		{ .name = S("CAFE\xcc\x81"), .physical_name = S("B"), .physical_type = S("table"), .columns = order_cols,
		  .ncolumns = 1 },
	};
	c = one_table(look, 2);
	assert_int_equal(tmdl_render(&c, &cli, &f, err), PB_EINVAL);
	assert_non_null(strstr(err, "table name 'CAFE\xcc\x81' is the same name as 'Caf\xc3\xa9' (Power BI compares "
				    "names without case and after Unicode normalization)"));
	pb_column lookcols[] = {
		{ .name = S("Stra\xc3\x9f" "e"), .physical_name = S("A"), .logical_type = S("string"), .precision = -1,
		  .scale = -1 },
		{ .name = S("STRASSE"), .physical_name = S("B"), .logical_type = S("string"), .precision = -1, .scale = -1 },
	};
	look[1].name = S("other");
	look[1].columns = lookcols;
	look[1].ncolumns = 2;
	assert_int_equal(tmdl_render(&c, &cli, &f, err), PB_EINVAL);
	assert_non_null(strstr(err, "table 'other': column 'STRASSE' is the same name as 'Stra\xc3\x9f" "e'"));

	/* a name a template makes too long is refused naming the limit */
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/longname", tu_tmpdir), 0);
	tu_put(dir, "naming.lua", "local n = {}\nfunction n.table_name(t) return string.rep('\\u{1F600}', 257) end\n"
			       "function n.column_name(col) return col.name end\nfunction n.column_hidden() return false end\n"
			       "function n.table_description() end\nfunction n.column_description() end\nreturn n\n");
	render_opts o = { .params = RENDER_PARAMS_CLI, .template_path = dir };
	assert_int_equal(render("prod", &o, &f, err), PB_EINVAL);
	assert_non_null(strstr(err, "table name of 514 characters; Power BI allows at most 512 ('"));

	/* the checks main.lua makes of each column a naming.lua names, and of its type */
	static const struct {
		const char *column_name, *want;
	} column_checks[] = {
		{ "return nil", "naming.column_name returned nil, expected a non-empty string" },
		{ "return ''", "naming.column_name returned string, expected a non-empty string" },
		{ "return string.rep('x', 513)", "column name of 513 characters; Power BI allows at most 512 ('xxx" },
		{ "return 'same'", "table 'Customer List': column 'same' is the same name as 'same'" },
	};
	for (size_t i = 0; i < sizeof column_checks / sizeof column_checks[0]; i++) {
		char text[1024];
		assert_int_equal(xsnprintf(dir, sizeof dir, "%s/colnames%zu", tu_tmpdir, i), 0);
		assert_int_equal(xsnprintf(text, sizeof text, "local n = {}\nfunction n.table_name(t) return t.name end\n"
					   "function n.column_name(col) %s end\nfunction n.column_hidden() return false end\n"
					   "function n.table_description() end\nfunction n.column_description() end\nreturn n\n",
					   column_checks[i].column_name), 0);
		tu_put(dir, "naming.lua", text);
		o.template_path = dir;
		assert_int_equal(render("prod", &o, &f, err), PB_EINVAL);
		if (!strstr(err, column_checks[i].want))
			fail_msg("%s: got \"%s\", want \"%s\"", column_checks[i].column_name, err, column_checks[i].want);
	}

	/* ctx.names, for templates of their own */
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/keys", tu_tmpdir), 0);
	tu_put(dir, "main.lua", "return function(ctx)\n"
			     "  local k, l = ctx.names.key, ctx.names.length\n"
			     "  assert(k('Cafe\\u{301}') == k('CAF\\u{C9}'), 'nfc')\n"
			     "  assert(k('abc') == 'abc' and k('ABC') == 'abc' and k('\\u{212A}') == 'k', 'fold')\n"
			     "  assert(l('\\u{1F600}x') == 3 and ctx.names.max_length == 512, 'length')\n"
			     "  assert(not pcall(k, '\\xff'), 'utf8')\n"
			     "  error('ok', 0)\nend\n");
	o.template_path = dir;
	assert_int_equal(render("prod", &o, &f, err), PB_EINVAL);
	assert_int_equal(xsnprintf(want, sizeof want, "template %s/main.lua:7: ok", dir), 0);
	assert_string_equal(err, want);

	/* a template must return a whole model (issue: {"files":[]} answered 200) */
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/partial", tu_tmpdir), 0);
	tu_put(dir, "main.lua", "return function(ctx) return {} end\n");
	assert_int_equal(render("prod", &o, &f, err), PB_EINVAL);
	assert_string_equal(err, "template output: no definition.pbism, definition/database.tmdl or "
				 "definition/model.tmdl; 0 table files under definition/tables/ for 2 contract tables (a "
				 "model needs definition.pbism, definition/database.tmdl, definition/model.tmdl and a "
				 "definition/tables/ file per contract table)");
	assert_null(f.v);
	tu_put(dir, "main.lua", "return function(ctx) return { ['definition.pbism'] = '{}', "
			     "['definition/database.tmdl'] = 'database\\n', ['definition/model.tmdl'] = 'model Model\\n', "
			     "['definition/tables/a.tmdl'] = 'table a\\n' } end\n");
	assert_int_equal(render("prod", &o, &f, err), PB_EINVAL);
	assert_string_equal(err, "template output: 1 table file under definition/tables/ for 2 contract tables (a "
				 "model needs definition.pbism, definition/database.tmdl, definition/model.tmdl and a "
				 "definition/tables/ file per contract table)");
	/* a file name no file system takes is refused before anything is written */
	tu_put(dir, "main.lua", "return function(ctx) return { ['definition/tables/' .. string.rep('n', 256) .. '.tmdl'] = 'x' } end\n");
	assert_int_equal(render("prod", &o, &f, err), PB_EINVAL);
	assert_string_equal(err, "template output: a file or folder name of 261 bytes, longer than 255 "
				 "(\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\")");
	free(a);
	free(b);
	free(c1);
	free(c2);
}

/* ctx.emit hands a file over while the templates run (main.lua does for each table, so a big
 * model's files are not all held in Lua at the end), with the checks of the returned table;
 * ctx.contract's columns are made when first read. */
static void emit_and_lazy_columns(void **state)
{
	(void)state;
	char dir[512], err[PB_ERR_MAX];
	pb_files f = { 0 };
	render_opts o = { .params = RENDER_PARAMS_CLI, .template_path = dir };
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/emit", tu_tmpdir), 0);
	tu_put(dir, "main.lua", "return function(ctx)\n"
			     "  local t = ctx.contract.tables[1]\n"
			     "  assert(rawget(t, 'columns') == nil, 'made up front')\n"
			     "  assert(#t.columns > 0 and rawget(t, 'columns') == t.columns, 'kept')\n"
			     "  t.columns = nil\n"
			     "  assert(#t.columns > 0, 'made again')\n"
			     "  ctx.emit('definition.pbism', '{}')\n"
			     "  ctx.emit('definition/database.tmdl', 'database\\n')\n"
			     "  for i in ipairs(ctx.contract.tables) do ctx.emit('definition/tables/' .. i .. '.tmdl', 't') end\n"
			     "  return { ['definition/model.tmdl'] = 'model Model\\n' }\nend\n");
	assert_int_equal(render("prod", &o, &f, err), PB_OK);
	assert_int_equal(f.n, 2 + 1 + contract.ntables);
	assert_string_equal(f.v[0].path, "definition.pbism");
	assert_string_equal(f.v[1].path, "definition/database.tmdl");
	assert_string_equal(f.v[2].path, "definition/model.tmdl");
	pb_files_release(&f);
	static const char *const bad[][2] = {
		{ "return function(ctx) ctx.emit('definition/model.tmdl', 'a') return { ['definition/model.tmdl'] = 'b' } end",
		  "template output: definition/model.tmdl given twice (ctx.emit and the returned table, or ctx.emit twice)" },
		{ "return function(ctx) ctx.emit('../x', 'y') return {} end",
		  "template output: path \"../x\" is outside definition/ and definition.pbism" },
		{ "return function(ctx) ctx.emit('definition/a', 5) return {} end",
		  "template output: keys must be paths and values texts (got a string key and a number value)" },
		/* a refused file stops the templates even when they catch the error */
		{ "return function(ctx) pcall(ctx.emit, 'definition/a', '\\xff') return {} end",
		  "template output: definition/a is not valid UTF-8" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tu_put(dir, "main.lua", bad[i][0]);
		assert_int_not_equal(render("prod", &o, &f, err), PB_OK);
		if (strcmp(err, bad[i][1]))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i][1]);
		assert_null(f.v);
	}
}

/* Templates are compiled once per process (runtime/lua_sandbox.c keeps the bytecode): an
 * admin who edits one sees the edit at the next render of the same process, even when the
 * file keeps its size and inode, and a template replaced by another file too. */
static void edited_template_is_used_by_the_next_render(void **state)
{
	(void)state;
	char dir[512], path[700], err[PB_ERR_MAX];
	pb_files f;
	static const char v1[] = "return function(model, ctx) return '{\"edit\": \"first\"}\\n' end\n";
	static const char v2[] = "return function(model, ctx) return '{\"edit\": \"again\"}\\n' end\n";
	static const char v3[] = "return function(model, ctx) return '{\"edit\": \"third version\"}\\n' end\n";
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/edited", tu_tmpdir), 0);
	tu_put(dir, "pbism.lua", v1);
	/* older than the compile cache's racy window, so the compiled template is kept */
	time_t written = time(NULL);
	while (time(NULL) - written < 3)
		usleep(100 * 1000);
	render_opts o = { .template_path = dir };
	for (int i = 0; i < 2; i++) {   /* the second render loads the kept bytecode */
		assert_int_equal(render("prod", &o, &f, err), 0);
		assert_string_equal(find(&f, "definition.pbism")->content, "{\"edit\": \"first\"}\n");
		pb_files_release(&f);
	}
	/* edited in place: same inode, same size */
	assert_int_equal(sizeof v1, sizeof v2);
	assert_int_equal(xsnprintf(path, sizeof path, "%s/pbism.lua", dir), 0);
	FILE *fp = fopen(path, "r+");
	assert_non_null(fp);
	assert_int_equal(fwrite(v2, 1, sizeof v2 - 1, fp), sizeof v2 - 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(render("prod", &o, &f, err), 0);
	assert_string_equal(find(&f, "definition.pbism")->content, "{\"edit\": \"again\"}\n");
	pb_files_release(&f);
	/* replaced by another file (an editor's save: write aside, rename) */
	tu_put(dir, "pbism.lua", v3);
	assert_int_equal(render("prod", &o, &f, err), 0);
	assert_string_equal(find(&f, "definition.pbism")->content, "{\"edit\": \"third version\"}\n");
	pb_files_release(&f);
	/* removed: the built-in one is found again */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(render("prod", &o, &f, err), 0);
	assert_non_null(strstr(find(&f, "definition.pbism")->content, "\"version\": \"4.2\""));
	pb_files_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(escaping_rules),
		cmocka_unit_test(description_and_lists),
		cmocka_unit_test(description_text_matches_lines),
		cmocka_unit_test(writer_text),
		cmocka_unit_test(column_types),
		cmocka_unit_test(snowflake_output),
		cmocka_unit_test(databricks_output),
		cmocka_unit_test(missing_values),
		cmocka_unit_test(mode_and_relationships),
		cmocka_unit_test(output_is_deterministic),
		cmocka_unit_test(override_folder),
		cmocka_unit_test(edited_template_is_used_by_the_next_render),
		cmocka_unit_test(names_and_files),
		cmocka_unit_test(emit_and_lazy_columns),
	};
	return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
