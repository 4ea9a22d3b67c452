/* Unit tests for runtime/answer_cache: an answer is given only for its scope, its name and the
 * version it was built at; the cache stays within its slots and bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/answer_cache.h"

static int clear(void **state)
{
	(void)state;
	answer_cache_clear();
	return 0;
}

static void given_only_for_its_scope_name_and_version(void **state)
{
	(void)state;
	size_t len = 0, bytes;
	answer_cache_put("org1", "p1", 7, "{\"a\":1}", 7);
	const char *got = answer_cache_get("org1", "p1", 7, &len);
	assert_non_null(got);
	assert_int_equal(len, 7);
	assert_memory_equal(got, "{\"a\":1}", 7);
	assert_null(answer_cache_get("org1", "p1", 8, &len));   /* the data moved on */
	assert_null(answer_cache_get("org1", "p1", 6, &len));
	assert_null(answer_cache_get("org2", "p1", 7, &len));   /* another organization, same id */
	assert_null(answer_cache_get("org1", "p2", 7, &len));
	assert_null(answer_cache_get("org1p", "1", 7, &len));   /* the parts are not run together */
	assert_true(answer_cache_has("org1", "p1"));
	assert_false(answer_cache_has("org2", "p1"));
	/* built again at a newer version: the old one is gone */
	answer_cache_put("org1", "p1", 8, "{\"a\":2}", 7);
	assert_null(answer_cache_get("org1", "p1", 7, &len));
	assert_memory_equal(answer_cache_get("org1", "p1", 8, &len), "{\"a\":2}", 7);
	assert_int_equal(answer_cache_count(&bytes), 1);
	assert_int_equal(bytes, 7);
	/* never kept: no version, too long a key, too large an answer */
	answer_cache_put("org1", "p3", -1, "x", 1);
	char key[ANSWER_CACHE_KEY_MAX + 2];
	memset(key, 'k', sizeof key - 1);
	key[sizeof key - 1] = '\0';
	answer_cache_put("org1", key, 1, "x", 1);
	char *big = calloc(1, ANSWER_CACHE_ANSWER_MAX + 1);
	assert_non_null(big);
	answer_cache_put("org1", "p4", 1, big, ANSWER_CACHE_ANSWER_MAX + 1);
	free(big);
	assert_false(answer_cache_has("org1", "p3"));
	assert_false(answer_cache_has("org1", key));
	assert_false(answer_cache_has("org1", "p4"));
	assert_int_equal(answer_cache_count(&bytes), 1);
}

static void bounded_in_slots_and_bytes(void **state)
{
	(void)state;
	size_t bytes, len;
	char name[32];
	char *text = malloc(ANSWER_CACHE_ANSWER_MAX);
	assert_non_null(text);
	memset(text, 'x', ANSWER_CACHE_ANSWER_MAX);
	/* many small answers: never more than the slots */
	for (int i = 0; i < 4 * ANSWER_CACHE_SLOTS; i++) {
		snprintf(name, sizeof name, "p%d", i);
		answer_cache_put("org", name, 1, "{}", 2);
	}
	assert_true(answer_cache_count(&bytes) <= ANSWER_CACHE_SLOTS);
	assert_int_equal(bytes, 2 * answer_cache_count(&bytes));
	answer_cache_clear();
	/* large answers: never more than the bytes; the newest is kept */
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof name, "big%d", i);
		answer_cache_put("org", name, 1, text, ANSWER_CACHE_ANSWER_MAX);
		answer_cache_count(&bytes);
		assert_true(bytes <= ANSWER_CACHE_BYTES);
		assert_non_null(answer_cache_get("org", name, 1, &len));
		assert_int_equal(len, ANSWER_CACHE_ANSWER_MAX);
	}
	assert_true(answer_cache_count(&bytes) >= ANSWER_CACHE_BYTES / ANSWER_CACHE_ANSWER_MAX / 2);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(given_only_for_its_scope_name_and_version, clear),
		cmocka_unit_test_setup(bounded_in_slots_and_bytes, clear),
	};
	return cmocka_run_group_tests(tests, NULL, clear);
}
