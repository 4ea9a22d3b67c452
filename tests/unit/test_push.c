/* Push datasets: the schema checks, the value converter, the streaming row reader (CSV with
 * quotes and CRLF, NDJSON, JSON array; fed whole or one byte at a time; chunks of N rows;
 * errors naming row and column) and the rate limiter shared through SQLite. */
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
#include "core/flow/push.h"
#include "core/flow/push_internal.h"
#include "runtime/crypto.h"
#include "runtime/jobs.h"
#include "runtime/db.h"
#include "runtime/request.h"
#include "runtime/strbuf.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

static char tmpdir[64], db_path[256];
static pb_db *db;

static int setup(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	return tu_db_setup("push", tmpdir, db_path, &db, NULL, err) ? tu_setup_failed(err) : 0;
}

static int teardown(void **state)
{
	(void)state;
	return tu_db_teardown(tmpdir, db, NULL);
}

/* ---- schema ---- */

static int parse_schema(const char *text, push_schema *s, char *err)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	int rc = push_schema_parse(j, s, err);
	json_decref(j);
	return rc;
}

static const char *const SALES =
	"[{\"name\":\"Sales\",\"columns\":[{\"name\":\"id\",\"dataType\":\"Int64\"},"
	"{\"name\":\"amount\",\"dataType\":\"double\"},{\"name\":\"paid\",\"dataType\":\"bool\"},"
	"{\"name\":\"day\",\"dataType\":\"DateTime\"},{\"name\":\"label\",\"dataType\":\"string\"},"
	"{\"name\":\"price\",\"dataType\":\"Decimal\"}]}]";

static void schema_checks_limits_and_types(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_schema s;
	assert_int_equal(parse_schema(SALES, &s, err), 0);
	assert_int_equal(s.ntables, 1);
	assert_int_equal(s.tables[0].ncols, 6);
	assert_int_equal(s.tables[0].cols[2].type, PUSH_BOOLEAN);
	assert_string_equal(push_type_name(s.tables[0].cols[3].type), "Datetime");
	assert_non_null(push_schema_table(&s, "SALES"));
	assert_null(push_schema_table(&s, "Other"));
	json_t *j = push_schema_json(&s);
	char *text = json_dumps(j, JSON_COMPACT);
	assert_non_null(strstr(text, "\"dataType\":\"Boolean\""));
	free(text);
	json_decref(j);
	push_schema_release(&s);

	sbuf wide;
	sbuf_init(&wide, 1 << 20);
	sbuf_adds(&wide, "[{\"name\":\"T\",\"columns\":[");
	for (int i = 0; i < 76; i++)
		sbuf_addf(&wide, "%s{\"name\":\"c%d\",\"dataType\":\"Int64\"}", i ? "," : "", i);
	sbuf_adds(&wide, "]}]");
	assert_int_equal(parse_schema(sbuf_str(&wide), &s, err), PB_EINVAL);
	assert_non_null(strstr(err, "at most 75"));
	sbuf_release(&wide);

	assert_int_equal(parse_schema("[{\"name\":\"T\",\"columns\":[{\"name\":\"a\",\"dataType\":\"Money\"}]}]", &s, err),
			 PB_EINVAL);
	assert_non_null(strstr(err, "Money"));
	assert_int_equal(parse_schema("[{\"name\":\"T\",\"columns\":[{\"name\":\"a\",\"dataType\":\"Int64\"},"
				      "{\"name\":\"A\",\"dataType\":\"Int64\"}]}]",
				      &s, err),
			 PB_EINVAL);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(parse_schema("[]", &s, err), PB_EINVAL);
	assert_int_equal(parse_schema("[{\"name\":\"T\",\"columns\":[{\"name\":\"a\",\"dataType\":\"Int64\",\"x\":1}]}]", &s,
				      err),
			 PB_EINVAL);
	assert_non_null(strstr(err, "unknown field"));
}

/* ---- converter ---- */

static void expect_convert(push_type t, const char *in, bool quoted, const char *want)
{
	char err[PB_ERR_MAX];
	sbuf out;
	sbuf_init(&out, 1 << 16);
	int rc = push_convert_text(t, in, strlen(in), quoted, &out, err);
	if (want) {
		if (rc)
			fail_msg("'%s' as %s: %s", in, push_type_name(t), err);
		assert_string_equal(sbuf_str(&out), want);
	} else {
		assert_int_equal(rc, PB_EINVAL);
	}
	sbuf_release(&out);
}

static void values_convert_to_the_column_type(void **state)
{
	(void)state;
	expect_convert(PUSH_INT64, "42", false, "42");
	expect_convert(PUSH_INT64, " -7 ", false, "-7");
	expect_convert(PUSH_INT64, "42.0", false, "42");
	expect_convert(PUSH_INT64, "", false, "null");
	expect_convert(PUSH_INT64, "4.5", false, NULL);
	expect_convert(PUSH_INT64, "abc", false, NULL);
	expect_convert(PUSH_INT64, "99999999999999999999", false, NULL);
	/* Power BI's ranges per type (api-dataset-properties), decided on the digits */
	static const struct {
		push_type t;
		const char *in, *want;
	} ranges[] = {
		/* Power BI's Int64: Int64.MaxValue and Int64.MinValue are not allowed */
		{ PUSH_INT64, "9223372036854775806", "9223372036854775806" },
		{ PUSH_INT64, "9223372036854775807", NULL },
		{ PUSH_INT64, "-9223372036854775807", "-9223372036854775807" },
		{ PUSH_INT64, "-9223372036854775808", NULL },
		{ PUSH_INT64, "1e18", "1000000000000000000" },
		{ PUSH_INT64, "4.2e1", "42" },
		{ PUSH_INT64, "4200e-2", "42" },
		{ PUSH_INT64, "+5", "5" },
		{ PUSH_INT64, "007", "7" },
		{ PUSH_INT64, "-0", "0" },
		{ PUSH_INT64, "1e400", NULL },
		{ PUSH_INT64, "1e-400", NULL },
		{ PUSH_INT64, "0x10", NULL },
		{ PUSH_INT64, "1e99999999999999999999", NULL },
		{ PUSH_DOUBLE, "Infinity", NULL },
		{ PUSH_DOUBLE, "0x1p3", NULL },
		/* finite, and below Double.MaxValue (which Power BI does not allow either) */
		{ PUSH_DOUBLE, "1e400", NULL },
		{ PUSH_DOUBLE, "-1e400", NULL },
		{ PUSH_DOUBLE, "1.7976931348623157e308", NULL },
		{ PUSH_DOUBLE, "-1.7976931348623157e308", NULL },
		{ PUSH_DOUBLE, "1e309", NULL },
		{ PUSH_DOUBLE, "1.7976931348623155e308", "1.7976931348623155e308" },
		{ PUSH_DOUBLE, "1e308", "1e308" },
		{ PUSH_DOUBLE, "0.000001e-300", "0.000001e-300" },
		{ PUSH_DOUBLE, "+2.5", "2.5" },
		{ PUSH_DOUBLE, ".5", "0.5" },
		{ PUSH_DOUBLE, "00.5E+1", "0.5E+1" },
		{ PUSH_DOUBLE, "1e", NULL },
		{ PUSH_DOUBLE, ".", NULL },
		{ PUSH_DECIMAL, "0.1234", "0.1234" },
		/* Decimal: precision 28, scale 4, so at most 24 digits before the point */
		{ PUSH_DECIMAL, "999999999999999999999999.9999", "999999999999999999999999.9999" },
		{ PUSH_DECIMAL, "-1e23", "-1e23" },
		{ PUSH_DECIMAL, "1e24", NULL },
		{ PUSH_DECIMAL, "1000000000000000000000000", NULL },
		{ PUSH_DECIMAL, "1e400", NULL },
		/* dates that exist, as .NET's DateTime reads them */
		{ PUSH_DATETIME, "2026-02-29", NULL },
		{ PUSH_DATETIME, "2024-02-29", "\"2024-02-29\"" },
		{ PUSH_DATETIME, "2000-02-29", "\"2000-02-29\"" },
		{ PUSH_DATETIME, "1900-02-29", NULL },
		{ PUSH_DATETIME, "2026-04-31", NULL },
		{ PUSH_DATETIME, "0000-01-01", NULL },
		{ PUSH_DATETIME, "2026-01-01T23:59:60", NULL },
		{ PUSH_DATETIME, "2026-01-01T10:00+14:00", "\"2026-01-01T10:00+14:00\"" },
		{ PUSH_DATETIME, "2026-01-01T10:00+14:01", NULL },
	};
	for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
		expect_convert(ranges[i].t, ranges[i].in, false, ranges[i].want);
	expect_convert(PUSH_DOUBLE, "2.5", false, "2.5");
	expect_convert(PUSH_DOUBLE, "-1e3", false, "-1e3");
	expect_convert(PUSH_DOUBLE, "1.", false, "1");
	expect_convert(PUSH_DOUBLE, "nan", false, NULL);
	expect_convert(PUSH_DOUBLE, "inf", false, NULL);
	char err[PB_ERR_MAX];
	sbuf o;
	sbuf_init(&o, 256);
	assert_int_equal(push_convert_text(PUSH_DOUBLE, "1e400", 5, false, &o, err), PB_EINVAL);
	assert_non_null(strstr(err, "out of range for Double"));
	assert_int_equal(push_convert_text(PUSH_INT64, "9223372036854775807", 19, false, &o, err), PB_EINVAL);
	assert_non_null(strstr(err, "out of range for Int64"));
	assert_int_equal(push_convert_text(PUSH_DECIMAL, "1e24", 4, false, &o, err), PB_EINVAL);
	assert_non_null(strstr(err, "out of range for Decimal"));
	sbuf_release(&o);
	expect_convert(PUSH_BOOLEAN, "true", false, "true");
	expect_convert(PUSH_BOOLEAN, "FALSE", false, "false");
	expect_convert(PUSH_BOOLEAN, "1", false, "true");
	expect_convert(PUSH_BOOLEAN, "maybe", false, NULL);
	expect_convert(PUSH_DATETIME, "2026-11-26", false, "\"2026-11-26\"");
	expect_convert(PUSH_DATETIME, "2026-11-26T10:11:12.345Z", false, "\"2026-11-26T10:11:12.345Z\"");
	expect_convert(PUSH_DATETIME, "2026-11-26 10:11+02:00", false, "\"2026-11-26 10:11+02:00\"");
	expect_convert(PUSH_DATETIME, "2026-13-01", false, NULL);
	expect_convert(PUSH_DATETIME, "yesterday", false, NULL);
	expect_convert(PUSH_STRING, "a \"b\"\n\\c\x01", true, "\"a \\\"b\\\"\\n\\\\c\\u0001\"");
	expect_convert(PUSH_STRING, "", true, "\"\"");
	expect_convert(PUSH_STRING, "", false, "null");
	expect_convert(PUSH_STRING, "\xff", true, NULL);
	char *long_text = malloc(4002);
	memset(long_text, 'x', 4001);
	long_text[4001] = '\0';
	expect_convert(PUSH_STRING, long_text, true, NULL);
	long_text[4000] = '\0';
	sbuf out;
	sbuf_init(&out, 1 << 16);
	assert_int_equal(push_convert_text(PUSH_STRING, long_text, 4000, false, &out, err), 0);
	sbuf_release(&out);
	/* 4,000 characters, not bytes: "é" is two bytes */
	sbuf_init(&out, 1 << 16);
	sbuf in;
	sbuf_init(&in, 1 << 16);
	for (int i = 0; i < 4000; i++)
		sbuf_adds(&in, "\xc3\xa9");
	assert_int_equal(push_convert_text(PUSH_STRING, in.buf, in.len, true, &out, err), 0);
	sbuf_release(&in);
	sbuf_release(&out);
	free(long_text);
}

/* ---- reader ---- */

typedef struct collected {
	json_t *rows;     /* every row, parsed back */
	size_t chunks;
	size_t sizes[64];
} collected;

static int collect(void *ctx, const char *rows, size_t len, size_t nrows, char *err)
{
	collected *c = ctx;
	json_error_t je;
	json_t *arr = json_loadb(rows, len, 0, &je);
	if (!arr)
		return pb_err(err, PB_EINTERNAL, "chunk is not JSON: %s: %.*s", je.text, (int)len, rows);
	assert_int_equal(json_array_size(arr), nrows);
	json_array_extend(c->rows, arr);
	json_decref(arr);
	if (c->chunks < 64)
		c->sizes[c->chunks] = nrows;
	c->chunks++;
	return 0;
}

/* Reads text with the reader, whole (step 0) or step bytes at a time. */
static int read_all_n(const push_table *t, push_format f, size_t chunk_rows, const char *text, size_t len, size_t step,
		      collected *c, char *err)
{
	push_reader *rd = NULL;
	memset(c, 0, sizeof *c);
	c->rows = json_array();
	int rc = push_reader_new(t, f, chunk_rows, collect, c, &rd, err);
	for (size_t i = 0; !rc && i < len; i += step ? step : len)
		rc = push_reader_feed(rd, text + i, step && i + step < len ? step : len - i, err);
	if (!rc)
		rc = push_reader_finish(rd, err);
	push_reader_free(rd);
	return rc;
}

static int read_all(const push_table *t, push_format f, size_t chunk_rows, const char *text, size_t step, collected *c,
		    char *err)
{
	return read_all_n(t, f, chunk_rows, text, strlen(text), step, c, err);
}

static void csv_rows_are_converted_in_chunks(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_schema s;
	collected c;
	assert_int_equal(parse_schema(SALES, &s, err), 0);
	const push_table *t = &s.tables[0];
	const char *csv = "label,id,paid,amount,day\r\n"
			  "\"a, \"\"quoted\"\"\nline\",1,true,2.5,2026-01-02\r\n"
			  ",2,0,,\r\n"
			  "\"\",3,FALSE,-1e2,2026-01-02T03:04:05Z\n"
			  "\n"
			  "plain,4,1,7,2026-01-03";
	for (size_t step = 0; step <= 7; step++) {
		assert_int_equal(read_all(t, PUSH_FMT_CSV, 2, csv, step, &c, err), 0);
		assert_int_equal(json_array_size(c.rows), 4);
		assert_int_equal(c.chunks, 2);
		json_t *r0 = json_array_get(c.rows, 0), *r1 = json_array_get(c.rows, 1), *r2 = json_array_get(c.rows, 2);
		assert_string_equal(json_string_value(json_object_get(r0, "label")), "a, \"quoted\"\nline");
		assert_int_equal(json_integer_value(json_object_get(r0, "id")), 1);
		assert_true(json_is_true(json_object_get(r0, "paid")));
		assert_true(json_is_real(json_object_get(r0, "amount")));
		assert_true(json_is_null(json_object_get(r1, "label")));   /* empty unquoted = null */
		assert_true(json_is_false(json_object_get(r1, "paid")));
		assert_true(json_is_null(json_object_get(r1, "amount")));
		assert_string_equal(json_string_value(json_object_get(r2, "label")), "");   /* "" = empty string */
		assert_string_equal(json_string_value(json_object_get(r2, "day")), "2026-01-02T03:04:05Z");
		json_decref(c.rows);
	}
	/* 25 rows in chunks of 10: 10, 10, 5 */
	sbuf big;
	sbuf_init(&big, 1 << 20);
	sbuf_adds(&big, "id,label\n");
	for (int i = 1; i <= 25; i++)
		sbuf_addf(&big, "%d,row %d\n", i, i);
	assert_int_equal(read_all(t, PUSH_FMT_CSV, 10, sbuf_str(&big), 0, &c, err), 0);
	assert_int_equal(c.chunks, 3);
	assert_int_equal(c.sizes[0], 10);
	assert_int_equal(c.sizes[2], 5);
	json_decref(c.rows);
	sbuf_release(&big);
	push_schema_release(&s);
}

static void bad_rows_name_row_and_column(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_schema s;
	collected c;
	assert_int_equal(parse_schema(SALES, &s, err), 0);
	const push_table *t = &s.tables[0];
	static const struct {
		push_format f;
		const char *text;
		const char *want;
	} cases[] = {
		{ PUSH_FMT_CSV, "id,paid\n1,true\n2,true\n3,maybe\n", "row 3, column 'paid'" },
		{ PUSH_FMT_CSV, "id,nope\n1,2\n", "'nope' is not a column" },
		{ PUSH_FMT_CSV, "id,id\n1,2\n", "appears twice" },
		{ PUSH_FMT_CSV, "id,paid\n1,true\n2\n", "row 2: 1 fields, the header has 2" },
		{ PUSH_FMT_CSV, "id,label\n1,\"open\n", "not closed" },
		{ PUSH_FMT_CSV, "id,label\n1,\"a\"b\n", "row 1, column 'label': a quoted field must end at its closing quote" },
		/* RFC 4180: a quote only inside a quoted field */
		{ PUSH_FMT_CSV, "id,label\n1,x\n2,ab\"c\n", "row 2, column 'label': a quote inside a field" },
		{ PUSH_FMT_CSV, "id,la\"bel\n1,x\n", "header, column 2: a quote inside a field" },
		{ PUSH_FMT_CSV, "label,amount\n1,1e400\n", "row 1, column 'amount': '1e400' is out of range for Double" },
		{ PUSH_FMT_CSV, "\xEF\xBBid\n1\n", "incomplete UTF-8 byte order mark" },
		{ PUSH_FMT_JSON, "[{\"amount\":1},{\"amount\": 1e400}]", "row 2, column 'amount': '1e400' is out of range" },
		{ PUSH_FMT_JSON, "[{\"label\":\"}\", \"id\" : 99999999999999999999 }]", "row 1, column 'id': '99999999999999999999' is out of range for Int64" },
		{ PUSH_FMT_JSON, "[{\"amount\":99999999999999999999}]", "row 1, column 'amount': the number 99999999999999999999" },
		{ PUSH_FMT_JSON, "[{\"nope\":1e400}]", "row 1, column 'nope': not a column" },
		{ PUSH_FMT_JSON, "[{\"id\":1e300}]", "row 1, column 'id'" },
		{ PUSH_FMT_NDJSON, "{\"id\":1}\n{\"price\":{\"a\":[1]},\"price\":-1e999}\n", "row 2" },
		{ PUSH_FMT_NDJSON, "{\"id\":1}\n{\"amount\":\"1e400\"}\n", "row 2, column 'amount': '1e400' is out of range" },
		{ PUSH_FMT_NDJSON, "{\"price\":\"1e24\"}\n", "row 1, column 'price': '1e24' is out of range for Decimal" },
		{ PUSH_FMT_CSV, "", "no header row" },
		{ PUSH_FMT_NDJSON, "{\"id\":1}\n\n{\"id\":\"x\"}\n", "row 2, column 'id'" },
		{ PUSH_FMT_NDJSON, "{\"id\":1}\n[1]\n", "row 2: a row must be a JSON object" },
		{ PUSH_FMT_NDJSON, "{\"id\":1}\n{\"colour\":1}\n", "row 2, column 'colour'" },
		{ PUSH_FMT_JSON, "[{\"id\":1},{\"label\":{\"a\":1}}]", "row 2, column 'label'" },
		{ PUSH_FMT_JSON, "[{\"id\":1}, 5]", "row 2: a row must be a JSON object" },
		{ PUSH_FMT_JSON, "[{\"id\":1}] x", "after the end" },
		{ PUSH_FMT_JSON, "[{\"id\":1}", "not complete" },
		{ PUSH_FMT_JSON, "{\"id\":1}", "array of row objects" },
		{ PUSH_FMT_JSON, "[{\"day\":\"2026-02-30T25:00\"}]", "row 1, column 'day'" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (size_t step = 0; step <= 3; step += 3) {
			int rc = read_all(t, cases[i].f, 10, cases[i].text, step, &c, err);
			json_decref(c.rows);
			if (rc != PB_EINVAL || !strstr(err, cases[i].want))
				fail_msg("case %zu (step %zu): rc %d, message '%s', wanted '%s'", i, step, rc, err, cases[i].want);
		}
	}
	push_schema_release(&s);
}

/* RFC 4180 and Excel: a UTF-8 byte order mark is skipped, a raw NUL is refused wherever it is. */
static void csv_bom_and_nul(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_schema s;
	collected c;
	assert_int_equal(parse_schema(SALES, &s, err), 0);
	const push_table *t = &s.tables[0];
	for (size_t step = 0; step <= 2; step++) {
		assert_int_equal(read_all(t, PUSH_FMT_CSV, 10, "\xEF\xBB\xBFid,label\r\n1,a\r\n", step, &c, err), 0);
		assert_int_equal(json_array_size(c.rows), 1);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(c.rows, 0), "id")), 1);
		json_decref(c.rows);
	}
	static const char unquoted[] = "id,label\n1,a\0b\n", quoted[] = "id,label\n1,x\n2,\"a\0b\"\n",
			  header[] = "id,la\0bel\n";
	for (size_t step = 0; step <= 3; step += 3) {
		assert_int_equal(read_all_n(t, PUSH_FMT_CSV, 10, unquoted, sizeof unquoted - 1, step, &c, err), PB_EINVAL);
		json_decref(c.rows);
		assert_non_null(strstr(err, "row 1, column 'label': a NUL byte"));
		assert_int_equal(read_all_n(t, PUSH_FMT_CSV, 10, quoted, sizeof quoted - 1, step, &c, err), PB_EINVAL);
		json_decref(c.rows);
		assert_non_null(strstr(err, "row 2, column 'label': a NUL byte"));
		assert_int_equal(read_all_n(t, PUSH_FMT_CSV, 10, header, sizeof header - 1, step, &c, err), PB_EINVAL);
		json_decref(c.rows);
		assert_non_null(strstr(err, "header, column 2: a NUL byte"));
	}
	push_schema_release(&s);
}

static void json_and_ndjson_rows(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_schema s;
	collected c;
	assert_int_equal(parse_schema(SALES, &s, err), 0);
	const push_table *t = &s.tables[0];
	const char *arr = " [ {\"label\":\"has } and { and \\\" inside\",\"id\":\"7\",\"paid\":1},\n"
			  "{\"amount\":3,\"price\":\"1.25\",\"label\":12,\"paid\":false,\"ID\":8.0} ] ";
	for (size_t step = 0; step <= 5; step++) {
		assert_int_equal(read_all(t, PUSH_FMT_JSON, 10, arr, step, &c, err), 0);
		assert_int_equal(json_array_size(c.rows), 2);
		json_t *r0 = json_array_get(c.rows, 0), *r1 = json_array_get(c.rows, 1);
		assert_string_equal(json_string_value(json_object_get(r0, "label")), "has } and { and \" inside");
		assert_int_equal(json_integer_value(json_object_get(r0, "id")), 7);
		assert_true(json_is_true(json_object_get(r0, "paid")));
		assert_string_equal(json_string_value(json_object_get(r1, "label")), "12");
		assert_int_equal(json_integer_value(json_object_get(r1, "id")), 8);   /* the schema's spelling */
		assert_true(json_is_real(json_object_get(r1, "price")));
		json_decref(c.rows);
	}
	assert_int_equal(read_all(t, PUSH_FMT_JSON, 10, "[]", 0, &c, err), 0);
	assert_int_equal(json_array_size(c.rows), 0);
	assert_int_equal(c.chunks, 0);
	json_decref(c.rows);
	assert_int_equal(read_all(t, PUSH_FMT_NDJSON, 1, "{\"id\":1}\r\n\r\n{\"id\":2}", 0, &c, err), 0);
	assert_int_equal(json_array_size(c.rows), 2);
	assert_int_equal(c.chunks, 2);
	json_decref(c.rows);
	push_schema_release(&s);
}

static void media_types(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_format f;
	assert_int_equal(push_format_from_media_type("text/csv", &f, err), 0);
	assert_int_equal(f, PUSH_FMT_CSV);
	assert_int_equal(push_format_from_media_type("application/x-ndjson", &f, err), 0);
	assert_int_equal(f, PUSH_FMT_NDJSON);
	assert_int_equal(push_format_from_media_type("application/json", &f, err), 0);
	assert_int_equal(f, PUSH_FMT_JSON);
	assert_int_equal(push_format_from_media_type("text/plain", &f, err), PB_EINVAL);
}

/* ---- limiter ---- */

struct grants {
	const push_limits *lim;
	int64_t now_ms;
	int granted[TU_RACERS_MAX];
};

static int acquire_once(pb_db *my, int i, void *ctx, char *err)
{
	struct grants *g = ctx;
	int64_t wait, ticket;
	int rc = push_rate_acquire(my, g->lim, "shared", 1, 0, g->now_ms, &wait, &ticket, err);
	g->granted[i] = !rc && wait == 0;
	return rc;
}

/* Processes asking for the same dataset at once, each on its own connection (several hosts on one
 * database), are granted no more than the limit between them: 3 in flight of 6 asking. */
static void limiter_is_shared_by_concurrent_processes(void **state)
{
	(void)state;
	push_limits lim = { .per_minute = 100, .rows_per_hour = 100000, .pending = 3, .big_table_rows = 100000,
			    .big_per_hour = 100, .inflight_ms = 600000 };
	struct grants g = { &lim, 1900000000000LL, { 0 } };
	tu_race(db_path, 6, acquire_once, &g);
	int granted = 0;
	for (int i = 0; i < 6; i++)
		granted += g.granted[i];
	assert_int_equal(granted, 3);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM push_rate_events WHERE dataset_key = 'shared'", NULL), 3);
}

/* In the caller's transaction the grant has no savepoint of its own: it is undone with the
 * caller's rollback. Events older than an hour leave the table when the windows are read. */
static void limiter_joins_the_callers_transaction(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_limits lim;
	int64_t wait, ticket;
	const int64_t t0 = 1700000000000LL;
	push_limits_scaled(1.0 / 60, &lim); /* 1 in flight */
	assert_int_equal(db_begin(db, err), 0);
	assert_int_equal(push_rate_acquire(db, &lim, "joined", 1, 0, t0, &wait, &ticket, err), 0);
	assert_int_equal(wait, 0);
	assert_true(ticket > 0);
	db_rollback(db);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM push_rate_events WHERE dataset_key = 'joined'", NULL), 0);
	/* nothing in flight after the rollback: granted again, and kept when the caller commits */
	assert_int_equal(db_begin(db, err), 0);
	assert_int_equal(push_rate_acquire(db, &lim, "joined", 1, 0, t0 + 1, &wait, &ticket, err), 0);
	assert_int_equal(wait, 0);
	assert_int_equal(db_commit(db, err), 0);
	assert_int_equal(push_rate_release(db, ticket, true, err), 0);
	/* an hour later the old event is pruned in the same grant */
	assert_int_equal(push_rate_acquire(db, &lim, "joined", 1, 0, t0 + 1 + 3600 * 1000, &wait, &ticket, err), 0);
	assert_int_equal(wait, 0);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM push_rate_events WHERE dataset_key = 'joined'", NULL), 1);
}

/* push_rate_check: the windows' verdict under the dataset's lock, only in the caller's write
 * transaction, recording nothing: the caller records a grant (PUSH_RATE_EVENT_INSERT) with rows of
 * its own, and the next check counts it. */
static void limiter_check_leaves_the_record_to_the_caller(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_limits lim;
	int64_t wait = -1;
	const int64_t t0 = 1710000000000LL;
	push_limits_scaled(1.0 / 60, &lim); /* 1 in flight */
	assert_int_equal(push_rate_check(db, &lim, "checked", 1, 0, t0, &wait, err), PB_EINTERNAL);
	assert_int_equal(db_begin(db, err), 0);
	assert_int_equal(push_rate_check(db, &lim, "checked", 1, 0, t0, &wait, err), 0);
	assert_int_equal(wait, 0);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM push_rate_events WHERE dataset_key = 'checked'", NULL), 0);
	db_stmt *st = NULL;
	assert_int_equal(db_prepare(db, PUSH_RATE_EVENT_INSERT("?", "?", "?"), &st, err), 0);
	assert_int_equal(db_bind_text(st, 1, "checked", err), 0);
	db_bind_int64(st, 2, t0, NULL);
	db_bind_int64(st, 3, 1, NULL);
	assert_int_equal(db_row(db, st, err), 1);
	int64_t ticket = db_col_int64(st, 0);
	db_done(st);
	assert_true(ticket > 0);
	assert_int_equal(db_commit(db, err), 0);
	/* in flight: the next check waits */
	assert_int_equal(db_begin(db, err), 0);
	assert_int_equal(push_rate_check(db, &lim, "checked", 1, 0, t0 + 1, &wait, err), 0);
	assert_true(wait > 0);
	db_rollback(db);
	assert_int_equal(push_rate_release(db, ticket, true, err), 0);
}

static void limiter_keeps_every_window(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_limits lim;
	int64_t wait, t1, t2, t3;
	const int64_t t0 = 1800000000000LL;
	push_limits_scaled(1.0 / 60, &lim);   /* 2 a minute, 16,666 rows an hour, 1 in flight */
	assert_int_equal(lim.per_minute, 2);
	assert_int_equal(lim.rows_per_hour, 16666);
	assert_int_equal(lim.pending, 1);
	assert_int_equal(lim.big_table_rows, 4166);
	assert_int_equal(lim.big_per_hour, 2);

	assert_int_equal(push_rate_acquire(db, &lim, "ds1", 10, 0, t0, &wait, &t1, err), 0);
	assert_int_equal(wait, 0);
	/* in flight: the next waits briefly */
	assert_int_equal(push_rate_acquire(db, &lim, "ds1", 10, 0, t0 + 10, &wait, &t2, err), 0);
	assert_true(wait > 0 && wait < 1000);
	assert_int_equal(push_rate_release(db, t1, true, err), 0);
	assert_int_equal(push_rate_acquire(db, &lim, "ds1", 10, 0, t0 + 20, &wait, &t2, err), 0);
	assert_int_equal(wait, 0);
	assert_int_equal(push_rate_release(db, t2, true, err), 0);
	/* a third within the minute waits for the first to leave it (plus the margin) */
	assert_int_equal(push_rate_acquire(db, &lim, "ds1", 10, 0, t0 + 30, &wait, &t3, err), 0);
	assert_int_equal(wait, 60000 - 30 + PB_PUSH_RATE_MARGIN_MS);
	/* another dataset has its own windows */
	assert_int_equal(push_rate_acquire(db, &lim, "ds2", 10, 0, t0 + 30, &wait, &t3, err), 0);
	assert_int_equal(wait, 0);
	assert_int_equal(push_rate_release(db, t3, true, err), 0);
	/* after the minute: fine again */
	assert_int_equal(push_rate_acquire(db, &lim, "ds1", 10, 0, t0 + 60001, &wait, &t3, err), 0);
	assert_int_equal(wait, 0);
	assert_int_equal(push_rate_release(db, t3, true, err), 0);

	/* rows an hour: 16,666 */
	assert_int_equal(push_rate_acquire(db, &lim, "rows", 16000, 0, t0, &wait, &t1, err), 0);
	assert_int_equal(push_rate_release(db, t1, true, err), 0);
	assert_int_equal(push_rate_acquire(db, &lim, "rows", 666, 0, t0 + 1, &wait, &t2, err), 0);
	assert_int_equal(wait, 0);
	assert_int_equal(push_rate_release(db, t2, true, err), 0);
	assert_int_equal(push_rate_acquire(db, &lim, "rows", 1, 0, t0 + 2, &wait, &t3, err), 0);
	assert_int_equal(wait, 3600000 - 2 + PB_PUSH_RATE_MARGIN_MS);

	/* a big table: 2 an hour, counting the requests before it grew */
	assert_int_equal(push_rate_acquire(db, &lim, "big", 5000, 0, t0, &wait, &t1, err), 0);
	assert_int_equal(push_rate_release(db, t1, true, err), 0);
	assert_int_equal(push_rate_acquire(db, &lim, "big", 1, 5000, t0 + 70000, &wait, &t2, err), 0);
	assert_int_equal(wait, 0);
	assert_int_equal(push_rate_release(db, t2, true, err), 0);
	assert_int_equal(push_rate_acquire(db, &lim, "big", 1, 5000, t0 + 140000, &wait, &t3, err), 0);
	assert_int_equal(wait, 3600000 - 140000 + PB_PUSH_RATE_MARGIN_MS);

	/* a request Power BI refused (429) is forgotten: it used no budget */
	assert_int_equal(push_rate_acquire(db, &lim, "r429", 1, 0, t0, &wait, &t1, err), 0);
	assert_int_equal(push_rate_release(db, t1, false, err), 0);
	assert_int_equal(push_rate_acquire(db, &lim, "r429", 1, 0, t0 + 1, &wait, &t1, err), 0);
	assert_int_equal(push_rate_release(db, t1, true, err), 0);
	assert_int_equal(push_rate_acquire(db, &lim, "r429", 1, 0, t0 + 2, &wait, &t1, err), 0);
	assert_int_equal(wait, 0);

	/* Power BI's own numbers at scale 1 */
	push_limits_scaled(1.0, &lim);
	assert_int_equal(lim.per_minute, 120);
	assert_int_equal(lim.rows_per_hour, 1000000);
	assert_int_equal(lim.pending, 5);
	assert_int_equal(lim.big_table_rows, 250000);
	assert_int_equal(lim.big_per_hour, 120);
}

/* ---- a streamed body (ROUTE_STREAM_BODY): checked up front, read by the handler in pieces ---- */

struct mem_body {
	const char *p;
	size_t left;
	int reads;
};

static long mem_body_read(void *ctx, char *buf, size_t n)
{
	struct mem_body *m = ctx;
	size_t k = n < m->left ? n : m->left;
	if (k > 5)
		k = 5;   /* a client that sends in small pieces */
	memcpy(buf, m->p, k);
	m->p += k;
	m->left -= k;
	m->reads++;
	return (long)k;
}

static int stream_req(struct req *r, struct mem_body *m, const char *len, const char *ctype, size_t limit,
		      int *status, char *err)
{
	static const char *const types[] = { "text/csv", NULL };
	char cl[64], ct[64];
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/rows", cl, ct, NULL };
	struct req_io io = { mem_body_read, NULL, m };
	xsnprintf(cl, sizeof cl, "CONTENT_LENGTH=%s", len);
	xsnprintf(ct, sizeof ct, "CONTENT_TYPE=%s", ctype);
	req_reset(r);
	assert_int_equal(req_load(r, env, &io, err), 0);
	return req_stream_body(r, limit, types, false, status, err);
}

static void streamed_body_is_read_in_pieces(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], buf[16];
	const char *text = "id,amount\n1,2.5\n2,3.5\n";
	struct req r;
	struct mem_body m = { text, strlen(text), 0 };
	int status = 0;
	char len[16];
	req_init(&r, NULL, NULL);
	xsnprintf(len, sizeof len, "%zu", strlen(text));
	assert_int_equal(stream_req(&r, &m, len, "text/csv", 100, &status, err), 0);
	assert_null(r.body);                     /* nothing read before the handler */
	assert_int_equal(m.reads, 0);
	assert_int_equal(r.body_unread, strlen(text));
	sbuf got;
	sbuf_init(&got, 1024);
	long n;
	while ((n = req_body_read(&r, buf, sizeof buf)) > 0)
		assert_int_equal(sbuf_add(&got, buf, (size_t)n), 0);
	assert_int_equal(n, 0);
	assert_string_equal(sbuf_str(&got), text);
	assert_true(m.reads > 1);
	sbuf_release(&got);

	/* the limit and the content type are checked from the headers alone */
	m = (struct mem_body){ text, strlen(text), 0 };
	assert_int_not_equal(stream_req(&r, &m, "101", "text/csv", 100, &status, err), 0);
	assert_int_equal(status, 413);
	assert_int_not_equal(stream_req(&r, &m, len, "text/plain", 100, &status, err), 0);
	assert_int_equal(status, 415);
	assert_int_equal(m.reads, 0);

	/* a body shorter than its Content-Length is an error for the reader */
	assert_int_equal(stream_req(&r, &m, "40", "text/csv", 100, &status, err), 0);
	while ((n = req_body_read(&r, buf, sizeof buf)) > 0)
		;
	assert_int_equal(n, -1);
	req_release(&r);
}

/* ---- rotate-keys: push connection and integration secrets are sealed again with the new key ---- */

#define KEY_OLD "1111111111111111111111111111111111111111111111111111111111111111"
#define KEY_NEW "2222222222222222222222222222222222222222222222222222222222222222"

static void secrets_are_resealed_with_the_new_key(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], org[PB_ID_BUF], user[PB_ID_BUF];
	const char *teams[] = { "data" };
	pb_config old_cfg = { 0 }, both_cfg = { 0 }, new_cfg = { 0 };
	assert_int_equal(pb_keyring_parse(KEY_OLD, &old_cfg.encryption_keys, err), 0);
	assert_int_equal(pb_keyring_parse(KEY_NEW "," KEY_OLD, &both_cfg.encryption_keys, err), 0);
	assert_int_equal(pb_keyring_parse(KEY_NEW, &new_cfg.encryption_keys, err), 0);
	assert_int_equal(identity_org_create(db, "rot", org, err), 0);
	assert_int_equal(identity_user_add(db, "rot-owner", "rot", PB_ROLE_OWNER, teams, 1, user, err), 0);
	/* teams come from core/store/identity: a user's own, or every team of the org */
	char other[PB_ID_BUF];
	const char *web[] = { "web" };
	pb_team *tv = NULL;
	size_t tn = 0;
	assert_int_equal(identity_user_add(db, "rot-member", "rot", PB_ROLE_MEMBER, web, 1, other, err), 0);
	assert_int_equal(identity_teams(db, org, user, &tv, &tn, err), 0);
	assert_int_equal(tn, 1);
	assert_string_equal(tv[0].name, "data");
	free(tv);
	assert_int_equal(identity_teams(db, org, NULL, &tv, &tn, err), 0);
	assert_int_equal(tn, 2);
	assert_string_equal(tv[1].name, "web");
	free(tv);

	/* sealed with the old key */
	push_caller who = { org, user, PB_ROLE_OWNER };
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "rot-conn", "team", "data", "tenant_id",
				 "11111111-1111-1111-1111-111111111111", "client_id", "aaaaaaaa-0000-0000-0000-000000000003",
				 "client_secret", "push-secret");
	json_t *reply = NULL;
	pb_failure f = { 0 };
	assert_int_equal(push_connection_create(db, &old_cfg, &who, body, &reply, &f), 0);
	char conn_id[PB_ID_BUF];
	xsnprintf(conn_id, sizeof conn_id, "%s", json_string_value(json_object_get(reply, "id")));
	json_decref(reply);
	json_decref(body);
	integration_input in = { .name = "rot-integ", .type = "powerbi", .tenant_id = "11111111-1111-1111-1111-111111111111",
				 .client_id = "aaaaaaaa-0000-0000-0000-000000000001", .client_secret = "integ-secret",
				 .include_personal = -1 };
	pb_integration *integ = NULL;
	pb_failure_clear(&f);
	assert_int_equal(integrations_create(db, &old_cfg, org, user, &in, &integ, &f), 0);
	char integ_id[PB_ID_BUF];
	xsnprintf(integ_id, sizeof integ_id, "%s", integ->id);
	integration_free(integ);

	/* the new key first: both re-sealed once, then nothing left to do */
	size_t n = 0;
	assert_int_equal(push_connections_rotate(db, &both_cfg, &n, err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(integrations_rotate(db, &both_cfg, &n, err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(push_connections_rotate(db, &both_cfg, &n, err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(integrations_rotate(db, &both_cfg, &n, err), 0);
	assert_int_equal(n, 0);

	/* the old key is gone from the ring: both still open */
	db_stmt *st = NULL;
	char *plain = NULL, ctx[64];
	size_t len = 0;
	assert_int_equal(db_prepare(db, "SELECT client_secret FROM push_connections WHERE id = ?", &st, err), 0);
	assert_int_equal(db_bind_text(st, 1, conn_id, err), 0);
	assert_int_equal(db_row(db, st, err), 1);
	xsnprintf(ctx, sizeof ctx, "push_connection:%s", conn_id);
	assert_int_equal(pb_open(new_cfg.encryption_keys, db_col_text(st, 0), ctx, &plain, &len, err), 0);
	db_done(st);
	assert_int_equal(len, strlen("push-secret"));
	assert_memory_equal(plain, "push-secret", len);
	pb_secret_free(plain, len);
	assert_int_equal(integrations_get(db, org, integ_id, &integ, err), 0);
	assert_int_equal(integration_open_secret(&new_cfg, integ, &plain, &len, err), 0);
	assert_int_equal(len, strlen("integ-secret"));
	assert_memory_equal(plain, "integ-secret", len);
	pb_secret_free(plain, len);
	integration_free(integ);
	pb_keyring_free(old_cfg.encryption_keys);
	pb_keyring_free(both_cfg.encryption_keys);
	pb_keyring_free(new_cfg.encryption_keys);
}

/* ---- spooled rows nobody will send are swept ---- */

static void spool_chunk(const char *upload, long seq, const char *rows, const char *created)
{
	char err[PB_ERR_MAX];
	db_stmt *st = NULL;
	assert_int_equal(db_prepare(db, "INSERT INTO push_chunks (upload_id, seq, nrows, rows_json, created_at) "
					"VALUES (?, ?, 1, ?, ?)", &st, err), 0);
	assert_int_equal(db_bind_text(st, 1, upload, err), 0);
	db_bind_int64(st, 2, seq, NULL);
	assert_int_equal(db_bind_text(st, 3, rows, err), 0);
	assert_int_equal(db_bind_text(st, 4, created, err), 0);
	assert_int_equal(db_exec(db, st, err), 0);
	db_done(st);
}

static long chunks_of(const char *upload)
{
	return tu_count(db, "SELECT COUNT(*) FROM push_chunks WHERE upload_id = ?", upload);
}

static void orphaned_spool_is_swept(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], org[PB_ID_BUF], job[PB_ID_BUF];
	const char *old = "2026-01-01T00:00:00.000Z", *recent = "2026-01-01T02:00:00.000Z";
	const char *cutoff = "2026-01-01T01:00:00.000Z";
	bool existing = false;
	assert_int_equal(identity_org_create(db, "spool", org, err), 0);
	pb_job_spec spec = { .kind = "push_rows", .org_id = org, .input = "{}" };
	assert_int_equal(jobs_submit(db, &spec, job, &existing, err), 0);
	/* a POST that died while spooling: old chunks, no owner */
	spool_chunk("dead", 0, "[{}]", old);
	spool_chunk("dead", 1, "[{}]", old);
	/* a POST still spooling (its newest chunk is recent) */
	spool_chunk("live", 0, "[{}]", old);
	spool_chunk("live", 1, "[{}]", recent);
	/* a queued job owns these: kept however old */
	spool_chunk("owned", 0, "[{}]", old);
	spool_chunk("owned", -1, job, old);
	/* the owner job is gone: nobody sends them */
	spool_chunk("gone", 0, "[{}]", old);
	spool_chunk("gone", -1, "0000000000000000000000000000dead", old);
	size_t dropped = 0;
	assert_int_equal(push_spool_sweep(db, cutoff, &dropped, err), 0);
	assert_int_equal(dropped, 2);
	assert_int_equal(chunks_of("dead"), 0);
	assert_int_equal(chunks_of("gone"), 0);
	assert_int_equal(chunks_of("live"), 2);
	assert_int_equal(chunks_of("owned"), 2);
	/* nothing left to do */
	assert_int_equal(push_spool_sweep(db, cutoff, &dropped, err), 0);
	assert_int_equal(dropped, 0);
}

/* ---- a spooled upload, its owner row and its job commit together ---- */

static void exec_sql(const char *sql)
{
	tu_sql(db, sql);
}

/* A CSV body of n rows, read by push_rows_ingest; sweep_at_end removes every spooled chunk when
 * the body is done, as the spool sweep would for a POST that stalled past the orphan limit. */
typedef struct csv_body {
	sbuf text;
	size_t off;
	bool sweep_at_end;
} csv_body;

static long csv_body_read(void *ctx, char *buf, size_t n)
{
	csv_body *b = ctx;
	size_t left = b->text.len - b->off;
	if (!left && b->sweep_at_end) {
		exec_sql("DELETE FROM push_chunks");
		b->sweep_at_end = false;
	}
	if (n > left)
		n = left;
	memcpy(buf, sbuf_str(&b->text) + b->off, n);
	b->off += n;
	return (long)n;
}

/* An org with an owner, a push connection and a push dataset of one table Sales(id Int64).
 * Nothing reaches Power BI: a body of more than one chunk (10,000 rows) goes straight to a job. */
typedef struct push_env {
	char org[PB_ID_BUF], user[PB_ID_BUF], ds_id[PB_ID_BUF];
	pb_config cfg;
	push_caller who;
	pb_failure f;
	json_t *reply;
	int status;
} push_env;

static void push_fixture(const char *org_name, push_env *e)
{
	char err[PB_ERR_MAX], sql[1024];
	const char *teams[] = { "data" };
	json_t *reply = NULL;
	memset(e, 0, sizeof *e);
	assert_int_equal(pb_keyring_parse(KEY_NEW, &e->cfg.encryption_keys, err), 0);
	assert_int_equal(identity_org_create(db, org_name, e->org, err), 0);
	assert_int_equal(identity_user_add(db, org_name, org_name, PB_ROLE_OWNER, teams, 1, e->user, err), 0);
	e->who = (push_caller){ e->org, e->user, PB_ROLE_OWNER };
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", org_name, "team", "data", "tenant_id",
				 "11111111-1111-1111-1111-111111111111", "client_id", "aaaaaaaa-0000-0000-0000-000000000003",
				 "client_secret", "push-secret");
	assert_int_equal(push_connection_create(db, &e->cfg, &e->who, body, &reply, &e->f), 0);
	json_decref(body);
	assert_int_equal(pb_new_id(e->ds_id, err), 0);
	xsnprintf(sql, sizeof sql, "INSERT INTO push_datasets (id, org_id, connection_id, workspace_id, powerbi_id, name, "
		  "retention, schema_json, created_at, updated_at) VALUES ('%s', '%s', '%s', 'ws', 'pbi', 'Sales feed', "
		  "'None', '[{\"name\":\"Sales\",\"columns\":[{\"name\":\"id\",\"dataType\":\"Int64\"}]}]', 'now', 'now')",
		  e->ds_id, e->org, json_string_value(json_object_get(reply, "id")));
	json_decref(reply);
	exec_sql(sql);
}

/* POSTs a CSV body of rows rows to e's dataset (e->status, e->reply, e->f get the outcome). */
static int ingest_rows(push_env *e, long rows, bool sweep)
{
	csv_body b = { .sweep_at_end = sweep };
	sbuf_init(&b.text, 1024 * 1024);
	assert_int_equal(sbuf_adds(&b.text, "id\n"), 0);
	for (long i = 1; i <= rows; i++)
		assert_int_equal(sbuf_addf(&b.text, "%ld\n", i), 0);
	push_source src = { csv_body_read, &b, b.text.len };
	json_decref(e->reply);
	e->reply = NULL;
	int rc = push_rows_ingest(db, &e->cfg, &e->who, e->ds_id, "Sales", "text/csv", &src, &e->status, &e->reply, &e->f);
	sbuf_release(&b.text);
	return rc;
}

static void upload_job_and_owner_commit_together(void **state)
{
	(void)state;
	push_env e;
	push_fixture("txn", &e);
	exec_sql("DELETE FROM push_chunks");

	/* the job is queued with its owner row naming it, over all three chunks */
	assert_int_equal(ingest_rows(&e, 25000, false), 0);
	assert_int_equal(e.status, 202);
	const char *job_id = json_string_value(json_object_get(e.reply, "job_id"));
	assert_non_null(job_id);
	char sql[256];
	xsnprintf(sql, sizeof sql, "SELECT count(*) FROM push_chunks WHERE seq = -1 AND rows_json = '%s'", job_id);
	assert_int_equal(tu_count(db, sql, NULL), 1);
	assert_int_equal(tu_count(db, "SELECT count(*) FROM push_chunks WHERE seq >= 0", NULL), 3);
	exec_sql("DELETE FROM push_chunks");
	long jobs = tu_count(db, "SELECT count(*) FROM jobs WHERE kind = 'push_rows'", NULL);

	/* the owner row cannot be written: no job either, and the chunks are gone with the request */
	tu_refuse(db, "no_owner", "INSERT", "push_chunks", "NEW.seq = -1", "no owner rows");
	assert_int_not_equal(ingest_rows(&e, 25000, false), 0);
	assert_null(e.reply);
	tu_allow(db, "no_owner", "push_chunks");
	assert_int_equal(tu_count(db, "SELECT count(*) FROM jobs WHERE kind = 'push_rows'", NULL), jobs);
	assert_int_equal(tu_count(db, "SELECT count(*) FROM push_chunks", NULL), 0);

	/* the job cannot be queued: no owner row, no chunks */
	tu_refuse(db, "no_job", "INSERT", "jobs", NULL, "no jobs");
	assert_int_not_equal(ingest_rows(&e, 25000, false), 0);
	tu_allow(db, "no_job", "jobs");
	assert_int_equal(tu_count(db, "SELECT count(*) FROM jobs WHERE kind = 'push_rows'", NULL), jobs);
	assert_int_equal(tu_count(db, "SELECT count(*) FROM push_chunks", NULL), 0);

	/* the sweep took the chunks while the body was read: no job is queued without its rows */
	assert_int_equal(ingest_rows(&e, 25000, true), PB_EUNAVAIL);
	assert_null(e.reply);
	assert_string_equal(pb_failure_code(&e.f), "unavailable");
	assert_non_null(strstr(e.f.message, "send them again"));
	assert_int_equal(tu_count(db, "SELECT count(*) FROM jobs WHERE kind = 'push_rows'", NULL), jobs);
	assert_int_equal(tu_count(db, "SELECT count(*) FROM push_chunks", NULL), 0);
	pb_keyring_free(e.cfg.encryption_keys);
}

/* ---- an accepted chunk: its writes commit together ---- */

static int added_calls;

/* on_added: counted, and made to fail once added_calls reaches 100 */
static int count_added(send_ctx *sc, long nrows, char *err)
{
	(void)sc;
	(void)nrows;
	return ++added_calls > 100 ? pb_err(err, PB_EIO, "on_added refused") : PB_OK;
}

static long sending_of(const char *upload)
{
	return tu_count(db, "SELECT COUNT(*) FROM push_sending WHERE upload_id = ?", upload);
}

/* Power BI added a chunk: the table's count grows, the chunk and its sending mark go, the
 * limiter's ticket is released as sent and on_added runs, in one transaction (PostgreSQL: the
 * first four in one statement): a failure of any of them keeps none. */
static void accepted_chunk_commits_whole(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_env e;
	push_ds *d = NULL;
	int64_t wait, ticket;
	const int64_t now = pb_epoch_ms();
	push_fixture("accepted", &e);
	assert_int_equal(push_ds_get(db, NULL, e.ds_id, &d, err), 0);
	send_ctx sc = { .db = db, .d = d, .table = "Sales", .retention_cap = 25, .upload = "acc",
			.on_added = count_added };
	push_limits_scaled(1.0, &sc.lim);
	spool_chunk("acc", 0, "[{}]", "2026-01-01T00:00:00.000Z");
	spool_chunk("acc", 1, "[{}]", "2026-01-01T00:00:00.000Z");
	assert_int_equal(push_rate_acquire(db, &sc.lim, "pbi", 10, 0, now, &wait, &ticket, err), 0);
	assert_true(ticket > 0);
	assert_int_equal(push_chunk_mark(db, "acc", 0, true, e.ds_id, "Sales", now, ticket, err), 0);
#define EVENT_DONE "SELECT COUNT(*) FROM push_rate_events WHERE done = 1 AND dataset_key = ?"

	/* on_added fails: nothing is kept, the ticket still in flight */
	added_calls = 100;
	assert_int_equal(push_chunk_added(&sc, 0, 10, ticket, err), PB_EIO);
	assert_int_equal(chunks_of("acc"), 2);
	assert_int_equal(sending_of("acc"), 1);
	assert_int_equal(tu_count(db, EVENT_DONE, "pbi"), 0);
	long rows = -1;
	assert_int_equal(push_table_rows_count(db, e.ds_id, "Sales", &rows, err), 0);
	assert_int_equal(rows, 0);

	/* the release cannot be written: neither are the rows */
	added_calls = 0;
	tu_refuse(db, "no_release", "UPDATE", "push_rate_events", NULL, "no releases");
	assert_int_not_equal(push_chunk_added(&sc, 0, 10, ticket, err), 0);
	tu_allow(db, "no_release", "push_rate_events");
	assert_int_equal(chunks_of("acc"), 2);
	assert_int_equal(sending_of("acc"), 1);
	assert_int_equal(push_table_rows_count(db, e.ds_id, "Sales", &rows, err), 0);
	assert_int_equal(rows, 0);

	/* the next chunk comes with the table's count, for the grant */
	chunk_ref c = { 0 };
	sbuf body;
	sbuf_init(&body, 4096);
	assert_int_equal(push_chunk_next(&sc, &c, &body, err), 1);
	assert_int_equal(c.seq, 0);
	assert_true(c.sending);
	assert_int_equal(c.ticket, ticket);
	assert_true(sc.have_next_table_rows);
	assert_int_equal(sc.next_table_rows, 0);

	/* all of it */
	added_calls = 0;
	assert_int_equal(push_chunk_added(&sc, 0, 10, ticket, err), 0);
	assert_int_equal(added_calls, 1);
	assert_int_equal(chunks_of("acc"), 1);
	assert_int_equal(sending_of("acc"), 0);
	assert_int_equal(tu_count(db, EVENT_DONE, "pbi"), 1);
	assert_int_equal(push_table_rows_count(db, e.ds_id, "Sales", &rows, err), 0);
	assert_int_equal(rows, 10);
	assert_int_equal(push_chunk_next(&sc, &c, &body, err), 1);
	assert_int_equal(c.seq, 1);
	assert_false(c.sending);
	assert_int_equal(sc.next_table_rows, 10);
	/* a chunk without a ticket (its outcome found later), the count capped at retention_cap */
	assert_int_equal(push_chunk_added(&sc, 1, 20, 0, err), 0);
	assert_int_equal(chunks_of("acc"), 0);
	assert_int_equal(tu_count(db, EVENT_DONE, "pbi"), 1);
	assert_int_equal(push_table_rows_count(db, e.ds_id, "Sales", &rows, err), 0);
	assert_int_equal(rows, 25);
	/* none left */
	assert_int_equal(push_chunk_next(&sc, &c, &body, err), 0);
	assert_false(sc.have_next_table_rows);
	sbuf_release(&body);
	/* an upload dropped whole: its chunks and their sending marks, in both tables */
	spool_chunk("acc", 2, "[{}]", "2026-01-01T00:00:00.000Z");
	spool_chunk("acc", 3, "[{}]", "2026-01-01T00:00:00.000Z");
	assert_int_equal(push_chunk_mark(db, "acc", 2, true, e.ds_id, "Sales", now, 0, err), 0);
	assert_int_equal(push_chunk_mark(db, "acc", 3, true, e.ds_id, "Sales", now, 0, err), 0);
	assert_int_equal(push_chunks_drop(db, "acc", 3, err), 0);
	assert_int_equal(chunks_of("acc"), 1);
	assert_int_equal(sending_of("acc"), 1);
	assert_int_equal(push_chunks_drop(db, "acc", -1, err), 0);
	assert_int_equal(chunks_of("acc"), 0);
	assert_int_equal(sending_of("acc"), 0);
#undef EVENT_DONE
	/* the session's connection: its tenant, no team name (no read of the org's teams) */
	push_conn *conn = NULL;
	assert_int_equal(push_conn_for_session(db, d->connection_id, &conn, err), 0);
	assert_string_equal(conn->tenant_id, "11111111-1111-1111-1111-111111111111");
	assert_null(conn->team);
	push_conn_free(conn);
	assert_int_equal(push_conn_get(db, NULL, d->connection_id, &conn, err), 0);
	assert_string_equal(conn->team, "data");
	push_conn_free(conn);
	assert_int_equal(push_conn_for_session(db, "nope", &conn, err), PB_ENOTFOUND);
	assert_null(conn);
	push_ds_free(d);
	pb_keyring_free(e.cfg.encryption_keys);
}

static void failures_are_typed(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	push_env e;
	pb_failure *f = &e.f;
	push_fixture("typed", &e);

	/* a bad row: invalid_rows naming it, nothing spooled */
	csv_body b = { 0 };
	sbuf_init(&b.text, 1024);
	assert_int_equal(sbuf_adds(&b.text, "id\n1\nx\n"), 0);
	push_source src = { csv_body_read, &b, b.text.len };
	assert_int_equal(push_rows_ingest(db, &e.cfg, &e.who, e.ds_id, "Sales", "text/csv", &src, &e.status, &e.reply, f),
			 PB_EINVAL);
	assert_string_equal(pb_failure_code(f), "invalid_rows");
	assert_non_null(strstr(f->message, "row 2, column 'id'"));
	sbuf_release(&b.text);
	/* no such table: not_found naming it */
	b = (csv_body){ 0 };
	sbuf_init(&b.text, 64);
	src.ctx = &b;
	assert_int_equal(push_rows_ingest(db, &e.cfg, &e.who, e.ds_id, "Nope", "text/csv", &src, &e.status, &e.reply, f),
			 PB_ENOTFOUND);
	assert_non_null(strstr(f->message, "no table 'Nope'"));
	sbuf_release(&b.text);

	/* a connection with a dataset is not deleted: a conflict naming it */
	char conn_id[PB_ID_BUF];
	db_stmt *st = NULL;
	assert_int_equal(db_prepare(db, "SELECT connection_id FROM push_datasets WHERE id = ?", &st, err), 0);
	assert_int_equal(db_bind_text(st, 1, e.ds_id, err), 0);
	assert_int_equal(db_row(db, st, err), 1);
	xsnprintf(conn_id, sizeof conn_id, "%s", db_col_text(st, 0));
	db_done(st);
	pb_failure_clear(f);
	assert_int_equal(push_connection_delete(db, &e.who, conn_id, f), PB_ECONFLICT);
	assert_string_equal(pb_failure_code(f), "conflict");
	assert_non_null(strstr(f->message, "push connection 'typed' still has 1 push dataset"));

	/* the same name again: a conflict on "name"; a member outside the team: forbidden */
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "typed", "team", "data", "tenant_id", "t1",
				 "client_id", "c1", "client_secret", "s");
	assert_int_equal(push_connection_create(db, &e.cfg, &e.who, body, &e.reply, f), PB_ECONFLICT);
	assert_null(e.reply);
	char member[PB_ID_BUF];
	const char *web[] = { "web" };
	assert_int_equal(identity_user_add(db, "typed-member", "typed", PB_ROLE_MEMBER, web, 1, member, err), 0);
	push_caller m = { e.org, member, PB_ROLE_MEMBER };
	json_object_set_new(body, "name", json_string("other"));
	assert_int_equal(push_connection_create(db, &e.cfg, &m, body, &e.reply, f), PB_EFORBIDDEN);
	assert_non_null(strstr(f->message, "'data'"));

	/* its secret cannot be opened with another key ring: bad_credentials naming the connection,
	 * before anything is asked of Entra */
	pb_config other = { 0 };
	assert_int_equal(pb_keyring_parse(KEY_OLD, &other.encryption_keys, err), 0);
	assert_int_equal(push_dataset_delete(db, &other, &e.who, e.ds_id, f), PB_EINVAL);
	assert_string_equal(pb_failure_code(f), "bad_credentials");
	assert_non_null(strstr(f->message, "push connection 'typed': its client secret cannot be opened"));
	json_decref(body);
	pb_keyring_free(other.encryption_keys);
	pb_keyring_free(e.cfg.encryption_keys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(schema_checks_limits_and_types),
		cmocka_unit_test(values_convert_to_the_column_type),
		cmocka_unit_test(csv_rows_are_converted_in_chunks),
		cmocka_unit_test(bad_rows_name_row_and_column),
		cmocka_unit_test(csv_bom_and_nul),
		cmocka_unit_test(json_and_ndjson_rows),
		cmocka_unit_test(media_types),
		cmocka_unit_test(limiter_keeps_every_window),
		cmocka_unit_test(limiter_joins_the_callers_transaction),
		cmocka_unit_test(limiter_check_leaves_the_record_to_the_caller),
		cmocka_unit_test(limiter_is_shared_by_concurrent_processes),
		cmocka_unit_test(streamed_body_is_read_in_pieces),
		cmocka_unit_test(secrets_are_resealed_with_the_new_key),
		cmocka_unit_test(orphaned_spool_is_swept),
		cmocka_unit_test(upload_job_and_owner_commit_together),
		cmocka_unit_test(accepted_chunk_commits_whole),
		cmocka_unit_test(failures_are_typed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
