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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scalars),
		cmocka_unit_test(reals_round_trip),
		cmocka_unit_test(strings),
		cmocka_unit_test(containers),
		cmocka_unit_test(ceiling_and_nesting),
		cmocka_unit_test(string_helper),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
