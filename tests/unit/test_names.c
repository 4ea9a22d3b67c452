/* core/lang/names: the length Power BI counts, the key it compares names by, and names shown in
 * messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/lang/names.h"

static void length_in_utf16_units(void **state)
{
	(void)state;
	assert_int_equal(pbname_length("", 0), 0);
	assert_int_equal(pbname_length("abc", 3), 3);
	assert_int_equal(pbname_length("caf\xc3\xa9", 5), 4);            /* 2-byte character */
	assert_int_equal(pbname_length("\xe2\x82\xac", 3), 1);            /* 3-byte character */
	assert_int_equal(pbname_length("\xf0\x9f\x98\x80x", 5), 3);       /* outside the BMP: a pair */
	assert_int_equal(pbname_length("e\xcc\x81", 3), 2);               /* combining marks count */
}

static void keys(void **state)
{
	(void)state;
	static const char *const same[][2] = {
		{ "Orders", "ORDERS" },
		{ "Caf\xc3\xa9", "CAFE\xcc\x81" },               /* composed, decomposed */
		{ "Stra\xc3\x9f" "e", "STRASSE" },                /* full case folding */
		{ "\xe2\x84\xaa", "k" },                          /* Kelvin sign */
		{ "\xc3\x85ngstr\xc3\xb6m", "A\xcc\x8a" "ngstro\xcc\x88m" },
		{ "\xef\xac\x81le", "FILE" },                     /* full case folding: the fi ligature is fi */
	};
	static const char *const differ[][2] = {
		{ "cafe", "caf\xc3\xa9" },
		{ "caf\xc3\xa9", "caf\xc3\xa8" },
		{ "a b", "ab" },
		{ "\xc2\xb2", "2" },                             /* compatibility forms stay apart (NFC, not NFKC) */
	};
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		size_t na, nb;
		char *a = pbname_key(same[i][0], strlen(same[i][0]), &na), *b = pbname_key(same[i][1], strlen(same[i][1]), &nb);
		assert_non_null(a);
		assert_non_null(b);
		if (strcmp(a, b))
			fail_msg("case %zu: keys differ: \"%s\" vs \"%s\"", i, a, b);
		assert_int_equal(na, strlen(a));
		assert_int_equal(pbname_keycmp(a, b), 0);
		free(a);
		free(b);
	}
	for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
		char *a = pbname_key(differ[i][0], strlen(differ[i][0]), NULL);
		char *b = pbname_key(differ[i][1], strlen(differ[i][1]), NULL);
		assert_non_null(a);
		assert_non_null(b);
		if (!strcmp(a, b))
			fail_msg("case %zu: keys equal: \"%s\"", i, a);
		assert_int_not_equal(pbname_keycmp(a, b), 0);
		free(a);
		free(b);
	}
	/* an ASCII name is its own key once ASCII case is folded: it compares with keys as is */
	char *k = pbname_key("Caf\xc3\xa9 ORDERS", 12, NULL);
	assert_int_equal(pbname_keycmp("CAF\xc3\xa9 orders", k), 0);
	free(k);
	assert_true(pbname_keycmp("abc", "ABD") < 0);
	assert_true(pbname_keycmp("ab", "ABC") < 0);
	/* the same key in caller memory */
	long room = pbname_key_room("CAFE\xcc\x81", 6);
	assert_true(room > 0);
	int32_t buf[16];
	assert_true(room <= 16);
	long n = pbname_key_fill("CAFE\xcc\x81", 6, buf, room);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "caf\xc3\xa9", 5);
	assert_true(pbname_is_ascii("plain", 5));
	assert_false(pbname_is_ascii("caf\xc3\xa9", 5));
}

static void shown_in_messages(void **state)
{
	(void)state;
	char buf[PB_PBI_NAME_SHOWN_BUF], longname[200];
	assert_string_equal(pbname_shown("short", buf), "short");
	memset(longname, 'n', 150);
	longname[150] = '\0';
	const char *s = pbname_shown(longname, buf);
	assert_int_equal(strlen(s), PB_PBI_NAME_SHOWN_BYTES + 3);
	assert_string_equal(s + PB_PBI_NAME_SHOWN_BYTES, "...");
	/* never cut inside a character */
	for (int i = 0; i < 50; i++)
		memcpy(longname + 3 * i, "\xe2\x82\xac", 3);
	longname[150] = '\0';
	s = pbname_shown(longname, buf);
	assert_int_equal(strlen(s), 60 + 3);
	s = pbname_shown(longname + 1, buf);   /* starts mid-character: still cut on a boundary */
	assert_int_equal(strlen(s) % 3, 2);
	assert_string_equal(pbname_shown_n("abcdef", 3, buf), "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(length_in_utf16_units),
		cmocka_unit_test(keys),
		cmocka_unit_test(shown_in_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
