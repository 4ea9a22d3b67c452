/* runtime/json_out: the text must be byte for byte what json_dumps writes for the same value
 * (responses and log lines changed writer, not format), and the sbuf ceiling is honoured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/json_out.h"
#include "runtime/util.h"

/* json_out(v) == json_dumps(v) for the given flags; takes v. */
static void same_as_jansson(json_t *v, size_t flags)
{
	sbuf out;
	assert_non_null(v);
	char *want = json_dumps(v, flags | JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(want);
	sbuf_init(&out, 1 << 20);
	assert_int_equal(json_out(&out, v, flags | JSON_COMPACT), 0);
	assert_string_equal(sbuf_str(&out), want);
	assert_int_equal(out.len, strlen(want));
	free(want);
	sbuf_release(&out);
	json_decref(v);
}

/* json_out of a real, and json_out_double, give want. */
static void real_is(double d, const char *want)
{
	sbuf out;
	char buf[JSON_OUT_DOUBLE_MAX];
	json_t *v = json_real(d);
	assert_non_null(v);
	sbuf_init(&out, 64);
	assert_int_equal(json_out(&out, v, JSON_COMPACT), 0);
	assert_string_equal(sbuf_str(&out), want);
	assert_int_equal(json_out_double(d, buf), (int)strlen(want));
	assert_string_equal(buf, want);
	sbuf_release(&out);
	json_decref(v);
}

/* Over many doubles of every magnitude: the text reads back as the same double (through
 * jansson's own reader too) and is the first of the %.15g/%.16g/%.17g forms that does (plus
 * jansson's ".0" on integral values). */
static void reals_round_trip(void **state)
{
	(void)state;
	uint64_t x = 0x9E3779B97F4A7C15ull;
	char buf[JSON_OUT_DOUBLE_MAX];
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double d;
		if (i % 2) {
			memcpy(&d, &x, sizeof d);       /* any bit pattern */
			if (!isfinite(d))
				continue;
		} else {
			d = (double)(x % 100000000) / 1000.0;   /* decimals as people write them */
		}
		int n = json_out_double(d, buf);
		assert_true(n > 0);
		assert_true(strtod(buf, NULL) == d);
		json_error_t e;
		json_t *back = json_loads(buf, JSON_DECODE_ANY, &e);
		assert_non_null(back);
		assert_true(json_is_real(back) && json_real_value(back) == d);
		json_decref(back);
		/* and it is the first of %.15g, %.16g, %.17g that does */
		char first[JSON_OUT_DOUBLE_MAX];
		for (int prec = 15; prec <= 17; prec++) {
			assert_int_equal(xsnprintf(first, sizeof first, "%.*g", prec, d), 0);
			if (strtod(first, NULL) == d)
				break;
		}
		assert_true(strtod(first, NULL) == strtod(buf, NULL) && strlen(buf) <= strlen(first) + 2);
	}
	assert_int_equal(json_out_double(NAN, buf), -1);
	assert_int_equal(json_out_double(INFINITY, buf), -1);
}

static void scalars(void **state)
{
	(void)state;
	same_as_jansson(json_true(), 0);
	same_as_jansson(json_false(), 0);
	same_as_jansson(json_null(), 0);
	same_as_jansson(json_integer(0), 0);
	same_as_jansson(json_integer(-9223372036854775807LL - 1), 0);
	same_as_jansson(json_integer(9223372036854775807LL), 0);
	/* reals: the shortest text that reads back the same (jansson writes 17 digits) */
	real_is(1.5, "1.5");
	real_is(2.0, "2.0");
	real_is(0.1, "0.1");
	real_is(2.002, "2.002");
	real_is(-0.0, "-0.0");
	real_is(1e300, "1e300");
	real_is(1e-5, "1e-5");
	real_is(1e22, "1e22");
	real_is(123456789.0, "123456789.0");
	real_is(0.1 + 0.2, "0.30000000000000004");
	real_is(5e-324, "4.94065645841247e-324");  /* 15 digits read back: the first that does */
	real_is(1.7976931348623157e308, "1.7976931348623157e308");
	real_is(1.0 / 3.0, "0.3333333333333333");
	/* with a precision asked for, jansson's text */
	same_as_jansson(json_real(12.3456789), JSON_REAL_PRECISION(6));
	same_as_jansson(json_real(0.000123456789), JSON_REAL_PRECISION(6));
}

static void strings(void **state)
{
	(void)state;
	char all[160];
	size_t n = 0;
	for (int c = 1; c < 0x80; c++)   /* every ASCII byte, the control characters included */
		all[n++] = (char)c;
	memcpy(all + n, "\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80", 9);   /* é, U+2028, an emoji: as is */
	n += 9;
	same_as_jansson(json_stringn(all, n), 0);
	same_as_jansson(json_string(""), 0);
	same_as_jansson(json_string("plain text without escapes"), 0);
	same_as_jansson(json_string("\"quoted\"\\path\\/slash\n"), 0);
	same_as_jansson(json_string("\x1f\x7f end"), 0);
	/* NUL inside a string (json_stringn allows it): \u0000 */
	same_as_jansson(json_stringn("a\0b", 3), 0);
	/* long: escapes spread over a text bigger than the first buffer growth */
	char *big = malloc(100000);
	assert_non_null(big);
	for (size_t i = 0; i < 99999; i++)
		big[i] = "abc\n\"x\\\ty"[i % 10];
	big[99999] = '\0';
	same_as_jansson(json_string(big), 0);
	/* long plain runs between escapes, around the writer's internal chunk sizes */
	size_t at = 0;
	for (size_t run = 1; at + run + 1 < 99999; run = run * 3 + 7) {
		memset(big + at, 'p', run);
		big[at + run] = run % 2 ? '\n' : '\x02';
		at += run + 1;
	}
	big[at] = '\0';
	same_as_jansson(json_string(big), 0);
	free(big);
	/* every byte value at every position of an 8-byte word (the writer tests words at once),
	 * among plain bytes and UTF-8 */
	char w[40];
	for (int c = 1; c < 256; c++) {
		for (size_t pos = 0; pos < 17; pos++) {
			memset(w, 'q', sizeof w);
			memcpy(w + 20, "\xc3\xa9\xc3\xa9", 4);
			w[pos] = (char)c;
			if (c >= 0x80)
				continue;   /* a lone high byte is not UTF-8: covered by the é pairs */
			same_as_jansson(json_stringn(w, sizeof w), 0);
		}
	}
}

static void containers(void **state)
{
	(void)state;
	same_as_jansson(json_object(), 0);
	same_as_jansson(json_array(), 0);
	/* insertion order, not key order; keys are escaped like values */
	same_as_jansson(json_pack("{s:s,s:i,s:[i,s,{}],s:{s:n,s:b},s:f,s:s}", "zeta", "1", "alpha", 2,
				  "list", 3, "x", "obj", "t", "f", 0, "real", 0.25, "q\"k\ny", "v"),
			0);
	json_t *deep = json_array();
	json_t *cur = deep;
	for (int i = 0; i < 100; i++) {
		json_t *next = json_object();
		json_array_append_new(cur, next);
		cur = json_array();
		json_object_set_new(next, "k", cur);
	}
	same_as_jansson(deep, 0);
	/* a log line's shape */
	same_as_jansson(json_pack("{s:s,s:s,s:s?,s:s,s:i,s:f,s:I}", "ts", "2026-11-26T04:00:00.000Z", "level",
				  "info", "request_id", NULL, "path", "/api/x", "status", 200, "duration_ms",
				  1.2345678, "bytes", (json_int_t)3000),
			JSON_REAL_PRECISION(6));
}

static void ceiling_and_nesting(void **state)
{
	(void)state;
	sbuf out;
	json_t *v = json_pack("{s:s}", "key", "a value longer than the ceiling");
	sbuf_init(&out, 16);
	assert_int_equal(json_out(&out, v, JSON_COMPACT), -1);
	assert_true(out.len <= 16);
	sbuf_release(&out);
	json_decref(v);
	assert_int_equal(json_out(&out, NULL, JSON_COMPACT), -1);

	/* nesting beyond the bound is refused, not followed */
	json_t *deep = json_array(), *cur = deep;
	for (int i = 0; i < PB_JSON_OUT_MAX_DEPTH + 1; i++) {
		json_t *next = json_array();
		json_array_append_new(cur, next);
		cur = next;
	}
	sbuf_init(&out, 1 << 20);
	assert_int_equal(json_out(&out, deep, JSON_COMPACT), -1);
	sbuf_release(&out);
	json_decref(deep);
}

static void string_helper(void **state)
{
	(void)state;
	sbuf out;
	sbuf_init(&out, 1024);
	assert_int_equal(json_out_string(&out, "a\"b\\c\x01\r", 7), 0);
	assert_string_equal(sbuf_str(&out), "\"a\\\"b\\\\c\\u0001\\r\"");
	sbuf_release(&out);
}

/* json_out_double_prec == jansson's JSON_REAL_PRECISION(n) text, over doubles of every
 * magnitude and sign and every precision pbiport may ask for. */
static void reals_with_precision(void **state)
{
	(void)state;
	uint64_t x = 0x2545F4914F6CDD1Dull;
	char buf[JSON_OUT_DOUBLE_MAX];
	static const double fixed[] = { 0, -0.0, 1, 100000, 1e6, 1e-5, 123456.5, 0.1, 1e300, -2.5e-300, 3.7 };
	for (int i = 0; i < 20000 + (int)(sizeof fixed / sizeof fixed[0]); i++) {
		double d;
		if (i < (int)(sizeof fixed / sizeof fixed[0])) {
			d = fixed[i];
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			d = (double)(x >> 11) / (double)(1ull << 53) * pow(10.0, (double)((int)(x % 41) - 20));
			if (x & 1)
				d = -d;
		}
		for (int prec = 1; prec <= 17; prec += (prec < 8 ? 1 : 3)) {
			json_t *v = json_real(d);
			char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(prec));
			int n = json_out_double_prec(d, prec, buf);
			assert_non_null(want);
			assert_int_equal(n, (int)strlen(want));
			assert_string_equal(buf, want);
			free(want);
			json_decref(v);
		}
	}
	assert_int_equal(json_out_double_prec(NAN, 6, buf), -1);
	assert_int_equal(json_out_double_prec(1.0, 0, buf), -1);
}

/* An object whose members are strings or such objects. */
static bool strings_only(const json_t *v)
{
	const char *k;
	json_t *m;
	if (!json_is_object(v))
		return false;
	json_object_foreach((json_t *)v, k, m) {
		if (!json_is_string(m) && !strings_only(m))
			return false;
	}
	return true;
}

/* json_out_as_is appends text only when it is what json_out writes for the value the text
 * reads back as; otherwise it leaves out alone and says so. Objects of strings and such
 * objects that are identical are taken; other identical text (numbers, null) may be refused:
 * the caller then writes the parsed value, the same bytes. */
static void as_is_only_when_identical(const char *text)
{
	sbuf got, want;
	sbuf_init(&got, 1 << 16);
	sbuf_init(&want, 1 << 16);
	json_t *v = json_loads(text, 0, NULL);
	bool same = v && json_is_object(v) && !json_out(&want, v, JSON_COMPACT) && !strcmp(sbuf_str(&want), text);
	int rc = json_out_as_is(&got, text, strlen(text));
	if (same && strings_only(v)) {
		if (rc != 0)
			fail_msg("refused although identical: %s", text);
		assert_string_equal(sbuf_str(&got), text);
	} else if (rc == 0 && !same) {
		/* taken as is although it is not exactly the writer's text: only objects the writer
		 * would write identically may pass */
		fail_msg("taken as is: %s", text);
	} else if (rc == 0) {
		assert_string_equal(sbuf_str(&got), text);
	} else {
		assert_int_equal(rc, 1);
		assert_int_equal(got.len, 0);
	}
	json_decref(v);
	sbuf_release(&got);
	sbuf_release(&want);
}

static void stored_text_as_is(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"{}", "{\"a\":\"b\"}", "{\"server\":\"s\",\"type\":\"snowflake\",\"customProperties\":{\"k\":\"v\"}}",
		"{\"q\":\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001F\"}", "{\"u\":\"caf\xc3\xa9 \xe2\x82\xac /\"}",
		/* not the writer's text: each must be refused (and then parsed by the caller) */
		"{\"a\": \"b\"}", " {\"a\":\"b\"}", "{\"a\":\"b\"} ", "{\"a\":\"\\/\"}", "{\"a\":\"\\u0041\"}",
		"{\"a\":\"\\u001f\"}", "{\"a\":\"\\u000a\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"x\",\"a\":\"y\"}",
		"{\"a\":1}", "{\"a\":null}", "{\"a\":[\"b\"]}", "[]", "\"a\"", "{\"a\":\"\xff\"}", "{\"a\":\"\xc3\"}",
		"{\"a\":\"b\"", "{\"a\"}", "{\"a\":\"b\",}", "{,}", "", "{\"a\":{\"b\":{}}}", "{\"k\":{\"x\":\"1\",\"x\":\"2\"}}",
		"{\"a\\u0000b\":\"c\"}", "{\"\\\"\":\"\\\\\"}", "{\"a\":\"tab\there\"}",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		as_is_only_when_identical(cases[i]);

	/* random objects of strings over an alphabet rich in what needs care: both ways */
	static const char *const pieces[] = { "a", "\"", "\\", "\\n", "\\u0001", "\\u00e9", "\xc3\xa9", "/", "\\/",
					      "\x7f", " ", "\\t", "\\u001F", "\\u001f", "\xe2\x82", "{" };
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (int i = 0; i < 5000; i++) {
		char text[512];
		size_t n = 0;
		int members = (int)(x % 4);
		text[n++] = '{';
		for (int m = 0; m < members; m++) {
			for (int part = 0; part < 2; part++) {
				if (m || part)
					text[n++] = part ? ':' : ',';
				text[n++] = '"';
				int len = (int)((x >> 8) % 5);
				for (int c = 0; c < len; c++) {
					x ^= x << 13;
					x ^= x >> 7;
					x ^= x << 17;
					const char *pc = pieces[x % (sizeof pieces / sizeof pieces[0])];
					memcpy(text + n, pc, strlen(pc));
					n += strlen(pc);
				}
				text[n++] = '"';
			}
		}
		text[n++] = '}';
		text[n] = '\0';
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		as_is_only_when_identical(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scalars),
		cmocka_unit_test(reals_round_trip),
		cmocka_unit_test(strings),
		cmocka_unit_test(containers),
		cmocka_unit_test(ceiling_and_nesting),
		cmocka_unit_test(string_helper),
		cmocka_unit_test(reals_with_precision),
		cmocka_unit_test(stored_text_as_is),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
