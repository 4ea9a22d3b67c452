/* Unit tests for runtime/strbuf and runtime/util. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/strbuf.h"
#include "runtime/util.h"

static void strbuf_respects_ceiling(void **state)
{
	(void)state;
	sbuf sb;
	sbuf_init(&sb, 8);
	assert_int_equal(sbuf_adds(&sb, "abcd"), 0);
	assert_int_equal(sbuf_addf(&sb, "%d", 123), 0);
	assert_string_equal(sbuf_str(&sb), "abcd123");
	assert_int_equal(sbuf_adds(&sb, "xy"), -1); /* would be 9 > 8 */
	assert_string_equal(sbuf_str(&sb), "abcd123");
	assert_int_equal(sbuf_addc(&sb, 'z'), 0);
	size_t len;
	char *s = sbuf_detach(&sb, &len);
	assert_int_equal(len, 8);
	assert_string_equal(s, "abcd123z");
	free(s);
	sbuf_release(&sb);

	/* a format that fits the room there is, one that needs more, one past the ceiling */
	sbuf_init(&sb, 100);
	assert_int_equal(sbuf_addf(&sb, "%s", "a"), 0);   /* 64 bytes of room from here */
	assert_int_equal(sbuf_addf(&sb, "%d-%s", 42, "b"), 0);
	assert_string_equal(sbuf_str(&sb), "a42-b");
	assert_int_equal(sbuf_addf(&sb, "%80d", 7), 0);   /* more than the room: grown, formatted again */
	assert_int_equal(sb.len, 85);
	assert_int_equal(sbuf_str(&sb)[84], '7');
	assert_int_equal(sbuf_addf(&sb, "%20d", 8), -1);   /* 105 > 100: unchanged */
	assert_int_equal(sb.len, 85);
	assert_int_equal(strlen(sbuf_str(&sb)), 85);
	assert_int_equal(sbuf_addf(&sb, "%15d", 9), 0);   /* exactly 100 */
	assert_int_equal(sb.len, 100);
	assert_int_equal(sbuf_addf(&sb, "%s", ""), 0);
	assert_int_equal(sbuf_addf(&sb, "%s", "x"), -1);
	assert_int_equal(strlen(sbuf_str(&sb)), 100);
	sbuf_release(&sb);
}

static void xsnprintf_reports_truncation(void **state)
{
	(void)state;
	char b[4];
	assert_int_equal(xsnprintf(b, sizeof b, "%s", "abc"), 0);
	assert_int_equal(xsnprintf(b, sizeof b, "%s", "abcd"), -1);
	assert_string_equal(b, "abc");   /* cut and ended, as snprintf cuts */
	assert_int_equal(xsnprintf(b, sizeof b, "%s", ""), 0);
	assert_string_equal(b, "");
	assert_int_equal(xsnprintf(b, sizeof b, "%s-", "ab"), 0);
	assert_string_equal(b, "ab-");
	assert_int_equal(xsnprintf(b, 1, "%s", "a"), -1);
	assert_string_equal(b, "");
}

static void fixed_width_digits(void **state)
{
	(void)state;
	char out[8];
	memset(out, 'x', sizeof out);
	assert_ptr_equal(pb_put_digits(out, 7, 4), out + 4);
	assert_memory_equal(out, "0007x", 5);
	pb_put_digits(out, 12345, 3);   /* the last digits */
	assert_memory_equal(out, "345", 3);
	pb_put_digits(out, 0, 3);
	assert_memory_equal(out, "000", 3);
}

static void pb_err_marks_cut_messages(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	char big[PB_ERR_MAX * 2];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(pb_err(err, PB_EINVAL, "%s", big), PB_EINVAL);
	assert_int_equal(strlen(err), PB_ERR_MAX - 1);
	assert_string_equal(err + PB_ERR_MAX - 4, "...");
}

static void utf8_validation(void **state)
{
	(void)state;
	assert_true(utf8_valid("plain", 5));
	assert_true(utf8_valid("\xc3\xa9t\xc3\xa9", 6));            /* été */
	assert_true(utf8_valid("\xf0\x9f\x98\x80", 4));              /* emoji */
	assert_false(utf8_valid("\xc3", 1));                         /* truncated */
	assert_false(utf8_valid("\xc0\xaf", 2));                     /* overlong */
	assert_false(utf8_valid("\xed\xa0\x80", 3));                 /* surrogate */
	assert_false(utf8_valid("\xff", 1));
	/* a multi-byte character, a bad byte and a cut character at every place around the
	 * eight-byte steps through ASCII */
	char t[40];
	for (size_t pos = 0; pos + 2 < sizeof t; pos++) {
		memset(t, 'a', sizeof t);
		memcpy(t + pos, "\xc3\xa9", 2);
		assert_true(utf8_valid(t, sizeof t));
		t[pos + 1] = 'a';
		assert_false(utf8_valid(t, sizeof t));
		t[pos] = '\x80';
		assert_false(utf8_valid(t, sizeof t));
		memset(t, 'a', sizeof t);
		t[pos] = '\xc3';
		assert_false(utf8_valid(t, pos + 1));
	}
}

/* A message cut at PB_ERR_MAX ends in "..." at a character boundary: it stays valid UTF-8. */
static void cut_messages_stay_utf8(void **state)
{
	(void)state;
	char long_text[PB_ERR_MAX * 2], err[PB_ERR_MAX];
	for (size_t off = 0; off < 4; off++) {
		size_t i = 0;
		for (; i < off; i++)
			long_text[i] = 'a';
		while (i + 2 < sizeof long_text) {
			long_text[i++] = '\xc3';   /* é, two bytes each */
			long_text[i++] = '\xa9';
		}
		long_text[i] = '\0';
		assert_int_equal(pb_err(err, PB_EINVAL, "%s", long_text), PB_EINVAL);
		size_t n = strlen(err);
		assert_true(n >= 3 && !strcmp(err + n - 3, "..."));
		assert_true(utf8_valid(err, n));
	}
}

static void guid_shape(void **state)
{
	(void)state;
	assert_true(str_is_guid("00000000-0000-0000-0000-000000000000"));
	assert_true(str_is_guid("3fA85f64-5717-4562-b3fc-2c963f66afa6"));
	assert_false(str_is_guid(NULL));
	assert_false(str_is_guid(""));
	assert_false(str_is_guid(".."));
	assert_false(str_is_guid("3fa85f64-5717-4562-b3fc-2c963f66afa"));     /* short */
	assert_false(str_is_guid("3fa85f64-5717-4562-b3fc-2c963f66afa60"));   /* long */
	assert_false(str_is_guid("3fa85f64x5717-4562-b3fc-2c963f66afa6"));    /* separator */
	assert_false(str_is_guid("3fa85f64-5717-4562-b3fc-2c963f66afg6"));    /* not hex */
	assert_false(str_is_guid("{3fa85f64-5717-4562-b3fc-2c963f66afa6}"));
}

static void blank_and_markup_escaping(void **state)
{
	(void)state;
	assert_true(str_blank("", 0));
	assert_true(str_blank(" \t\r\n", 4));
	assert_false(str_blank(" x ", 3));
	assert_true(str_blank("  x", 2));   /* only the first len bytes count */
	sbuf sb;
	sbuf_init(&sb, 64);
	assert_int_equal(sbuf_add_markup_escaped(&sb, "<a href=\"x\">Tom & Jerry's</a>"), 0);
	assert_string_equal(sbuf_str(&sb), "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
	sbuf_release(&sb);
	sbuf_init(&sb, 4);
	assert_int_equal(sbuf_add_markup_escaped(&sb, "a&b"), -1);   /* past the ceiling: fails */
	sbuf_release(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strbuf_respects_ceiling),
		cmocka_unit_test(xsnprintf_reports_truncation),
		cmocka_unit_test(fixed_width_digits),
		cmocka_unit_test(pb_err_marks_cut_messages),
		cmocka_unit_test(utf8_validation),
		cmocka_unit_test(guid_shape),
		cmocka_unit_test(cut_messages_stay_utf8),
		cmocka_unit_test(blank_and_markup_escaping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
