/* The contract reader's own JSON reader (fast_json_load, static in core/lang/contract.c) must
 * build exactly the tree jansson builds, or give up (NULL) so jansson reads the text
 * again. Differential test against json_loadb on fixtures and edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/lang/contract.c"

/* Same tree and same key order (templates see keys in document order). */
static void assert_same_tree(const json_t *a, const json_t *b)
{
	assert_true(json_equal(a, b));
	if (json_is_object(a)) {
		const char *ka, *kb;
		void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
		for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia), ib = json_object_iter_next((json_t *)b, ib)) {
			ka = json_object_iter_key(ia);
			kb = json_object_iter_key(ib);
			assert_string_equal(ka, kb);
			assert_same_tree(json_object_iter_value(ia), json_object_iter_value(ib));
		}
		assert_true(ia == NULL && ib == NULL);
	} else if (json_is_array(a)) {
		for (size_t i = 0; i < json_array_size(a); i++)
			assert_same_tree(json_array_get(a, i), json_array_get(b, i));
	} else if (json_is_number(a)) {
		assert_int_equal(json_typeof(a), json_typeof(b));   /* integer stays integer */
	}
}

static void compare(const char *text)
{
	size_t len = strlen(text);
	json_t *fast = fast_json_load(text, len);
	json_t *ref = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (fast) {
		/* when the fast reader answers, jansson must agree exactly */
		if (!ref)
			fprintf(stderr, "fast reader accepted what jansson refuses: %s\n", text);
		assert_non_null(ref);
		assert_same_tree(fast, ref);
	}
	json_decref(fast);
	json_decref(ref);
}

static void edge_cases_match_jansson(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"{}", "[]", "{\"a\":1}", "{\"a\":-0,\"b\":1.5,\"c\":1e3,\"d\":-2.5E-3,\"e\":9223372036854775807}",
		"{\"big\":92233720368547758070}", "{\"s\":\"caf\\u00e9 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}",
		"{\"pair\":\"\\ud83d\\ude00\"}", "{\"lone\":\"\\ud83d\"}", "{\"nul\":\"a\\u0000b\"}",
		"{\"dup\":1,\"dup\":2}", "{\"utf8\":\"\xc3\xa9t\xc3\xa9\"}", " \n\t{ \"a\" : [ true , false , null ] } \n",
		"{\"a\":[1,2,{\"b\":[]}],\"z\":{},\"m\":\"x\"}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
		"{\"a\":tru}", "{\"a\":\"unterminated}", "{\"a\":1,}", "[1 2]", "{\"a\":1} trailing",
		"{\"ctl\":\"a\tb\"}", "{\"k\":\"\\x\"}", "\"top string\"", "42",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		compare(cases[i]);
	/* duplicate keys are jansson's to refuse, with its message: whatever the values */
	assert_null(fast_json_load("{\"dup\":1,\"dup\":2}", 17));
	assert_null(fast_json_load("{\"a\":{\"x\":1},\"b\":0,\"a\":[2]}", 27));
}

/* Strings are scanned eight bytes at a time up to the first byte that may end their plain
 * run: a quote, backslash or control byte (and UTF-8, DEL) at every place of every length
 * around that stride reads as jansson reads it. */
static void string_runs_match_jansson(void **state)
{
	(void)state;
	static const char *const specials[] = {"\\\"", "\\\\", "\\n", "\\u00e9", "\t", "\x7f", "\xc3\xa9", "\x01"};
	char text[128];
	int accepted = 0;
	for (size_t len = 0; len <= 24; len++) {
		for (size_t at = 0; at <= len; at++) {
			for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
				size_t n = 0;
				memcpy(text + n, "{\"k\":\"", 6);
				n += 6;
				for (size_t i = 0; i < len; i++) {
					if (i == at) {
						memcpy(text + n, specials[k], strlen(specials[k]));
						n += strlen(specials[k]);
					}
					text[n++] = (char)('a' + i % 26);
				}
				if (at == len) {
					memcpy(text + n, specials[k], strlen(specials[k]));
					n += strlen(specials[k]);
				}
				memcpy(text + n, "\"}", 3);
				compare(text);
				json_t *fast = fast_json_load(text, strlen(text));
				accepted += fast != NULL;
				json_decref(fast);
			}
		}
	}
	/* everything but the raw control bytes (tab, 0x01), which jansson refuses too */
	assert_int_equal(accepted, 325 * 6);
}

static void fixture_files_match_jansson(void **state)
{
	(void)state;
	static const char *const files[] = {
		"tests/fixtures/contracts/v3_minimal.json",
		"tests/integration/fixtures/customers.odcs.json",
	};
	const char *src = getenv("PBIPORT_SRC");
	int seen = 0;
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char path[1024], err[PB_ERR_MAX], *text = NULL;
		size_t len = 0;
		xsnprintf(path, sizeof path, "%s/%s", src ? src : PBIPORT_DATADIR, files[i]);
		if (read_file(path, PB_CONTRACT_MAX_BYTES, &text, &len, err))
			continue;
		json_t *fast = fast_json_load(text, len);
		json_t *ref = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
		assert_non_null(fast);
		assert_non_null(ref);
		assert_same_tree(fast, ref);
		json_decref(fast);
		json_decref(ref);
		free(text);
		seen++;
	}
	assert_true(seen >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(edge_cases_match_jansson),
		cmocka_unit_test(string_runs_match_jansson),
		cmocka_unit_test(fixture_files_match_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
