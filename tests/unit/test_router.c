/* Route matching: literal segments, {captures}, 404 vs 405 with Allow, table checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "runtime/router.h"
#include "runtime/util.h"

static int h(struct req *r)
{
	(void)r;
	return 0;
}

static const char *const json_types[] = { "application/json", NULL };

static const struct route table[] = {
	{ "GET", "/healthz", h, PB_ROLE_NONE, 0, NULL, NULL, 0 },
	{ "GET", "/api/things", h, PB_ROLE_MEMBER, 0, NULL, NULL, 0 },
	{ "POST", "/api/things", h, PB_ROLE_MEMBER, 1024, json_types, NULL, 0 },
	{ "GET", "/api/things/{id}", h, PB_ROLE_MEMBER, 0, NULL, NULL, 0 },
	{ "DELETE", "/api/things/{id}", h, PB_ROLE_OWNER, 0, NULL, NULL, 0 },
	{ "GET", "/api/things/{id}/parts/{part}", h, PB_ROLE_MEMBER, 0, NULL, NULL, 0 },
	{ "GET", "/api/things/special", h, PB_ROLE_MEMBER, 0, NULL, NULL, 0 },
};
#define N (sizeof table / sizeof table[0])

/* What a lookup found: the row and its captures. */
struct found {
	const struct route *rt;
	const char *caps[PB_ROUTE_MAX_CAPTURES];
	size_t nc;
};

static enum route_match match(const char *method, char **segs, size_t n, struct found *f, sbuf *allow)
{
	return router_match(table, N, method, segs, n, &f->rt, f->caps, &f->nc, allow);
}

static void literal_and_capture(void **state)
{
	(void)state;
	struct found f;
	char *s1[] = { "healthz" };
	assert_int_equal(match("GET", s1, 1, &f, NULL), ROUTE_FOUND);
	assert_ptr_equal(f.rt, &table[0]);
	assert_int_equal(f.nc, 0);

	char *s2[] = { "api", "things", "abc" };
	assert_int_equal(match("GET", s2, 3, &f, NULL), ROUTE_FOUND);
	assert_ptr_equal(f.rt, &table[3]);
	assert_int_equal(f.nc, 1);
	assert_string_equal(f.caps[0], "abc");

	char *s3[] = { "api", "things", "t1", "parts", "p/2" };
	assert_int_equal(match("GET", s3, 5, &f, NULL), ROUTE_FOUND);
	assert_int_equal(f.nc, 2);
	assert_string_equal(f.caps[0], "t1");
	assert_string_equal(f.caps[1], "p/2");   /* a decoded %2F stays inside its segment */
	assert_int_equal(router_capture_index(f.rt->pattern, "part"), 1);
	assert_int_equal(router_capture_index(f.rt->pattern, "id"), 0);
	assert_int_equal(router_capture_index(f.rt->pattern, "nope"), -1);

	/* the first matching row wins: the capture row comes before the literal one */
	char *s4[] = { "api", "things", "special" };
	assert_int_equal(match("GET", s4, 3, &f, NULL), ROUTE_FOUND);
	assert_ptr_equal(f.rt, &table[3]);
}

/* A pattern whose first letter differs from the path's is passed over unread; one that begins
 * with a capture, the root "/", and a first letter alike still go by the whole comparison. */
static void first_letter_and_whole_match(void **state)
{
	(void)state;
	static const struct route t[] = {
		{ "GET", "/", h, PB_ROLE_NONE, 0, NULL, NULL, 0 },
		{ "GET", "/apple", h, PB_ROLE_NONE, 0, NULL, NULL, 0 },
		{ "GET", "/{any}/x", h, PB_ROLE_NONE, 0, NULL, NULL, 0 },
		{ "GET", "/api/y", h, PB_ROLE_NONE, 0, NULL, NULL, 0 },
	};
	const size_t n = sizeof t / sizeof t[0];
	struct found f;
	char *apple[] = { "apple" }, *apricot[] = { "apricot" }, *bx[] = { "b", "x" }, *api[] = { "api", "y" };
	char *ax[] = { "api", "x" }, *empty[] = { "" };
	assert_int_equal(router_match(t, n, "GET", NULL, 0, &f.rt, f.caps, &f.nc, NULL), ROUTE_FOUND);
	assert_ptr_equal(f.rt, &t[0]);
	assert_int_equal(router_match(t, n, "GET", apple, 1, &f.rt, f.caps, &f.nc, NULL), ROUTE_FOUND);
	assert_ptr_equal(f.rt, &t[1]);
	assert_int_equal(router_match(t, n, "GET", apricot, 1, &f.rt, f.caps, &f.nc, NULL), ROUTE_NOT_FOUND);
	assert_int_equal(router_match(t, n, "GET", bx, 2, &f.rt, f.caps, &f.nc, NULL), ROUTE_FOUND);
	assert_ptr_equal(f.rt, &t[2]);
	assert_string_equal(f.caps[0], "b");
	assert_int_equal(router_match(t, n, "GET", ax, 2, &f.rt, f.caps, &f.nc, NULL), ROUTE_FOUND);
	assert_ptr_equal(f.rt, &t[2]);
	assert_int_equal(router_match(t, n, "GET", api, 2, &f.rt, f.caps, &f.nc, NULL), ROUTE_FOUND);
	assert_ptr_equal(f.rt, &t[3]);
	assert_int_equal(router_match(t, n, "GET", empty, 1, &f.rt, f.caps, &f.nc, NULL), ROUTE_NOT_FOUND);
}

static void not_found(void **state)
{
	(void)state;
	struct found f;
	char *none[] = { "nope" };
	assert_int_equal(match("GET", none, 1, &f, NULL), ROUTE_NOT_FOUND);
	assert_null(f.rt);
	char *trailing[] = { "api", "things", "" };   /* "/api/things/" */
	assert_int_equal(match("GET", trailing, 3, &f, NULL), ROUTE_NOT_FOUND);
	char *longer[] = { "api", "things", "a", "b" };
	assert_int_equal(match("GET", longer, 4, &f, NULL), ROUTE_NOT_FOUND);
	assert_int_equal(match("GET", NULL, 0, &f, NULL), ROUTE_NOT_FOUND);   /* "/" */
}

static void method_not_allowed_lists_allow(void **state)
{
	(void)state;
	struct found f;
	sbuf allow;
	sbuf_init(&allow, 256);
	char *s1[] = { "api", "things" };
	assert_int_equal(match("PUT", s1, 2, &f, &allow), ROUTE_BAD_METHOD);
	assert_string_equal(sbuf_str(&allow), "GET, POST");
	char *s2[] = { "api", "things", "x" };
	assert_int_equal(match("POST", s2, 3, &f, &allow), ROUTE_BAD_METHOD);
	assert_string_equal(sbuf_str(&allow), "GET, DELETE");
	char *s3[] = { "healthz" };
	assert_int_equal(match("HEAD", s3, 1, &f, &allow), ROUTE_BAD_METHOD);
	assert_string_equal(sbuf_str(&allow), "GET");
	/* a second lookup starts from an empty list */
	char *s4[] = { "api", "things", "special" };
	assert_int_equal(match("PATCH", s4, 3, &f, &allow), ROUTE_BAD_METHOD);
	assert_string_equal(sbuf_str(&allow), "GET, DELETE");
	sbuf_release(&allow);
}

static void table_checks(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	assert_int_equal(router_check_table(table, N, err), PB_OK);
	const struct route dup[] = {
		{ "GET", "/a", h, PB_ROLE_NONE, 0, NULL, NULL, 0 },
		{ "GET", "/a", h, PB_ROLE_NONE, 0, NULL, NULL, 0 },
	};
	assert_int_equal(router_check_table(dup, 2, err), PB_EINTERNAL);
	assert_non_null(strstr(err, "listed twice"));
	const struct route body[] = { { "POST", "/a", h, PB_ROLE_NONE, 10, NULL, NULL, 0 } };
	assert_int_equal(router_check_table(body, 1, err), PB_EINTERNAL);
	assert_non_null(strstr(err, "content types"));
	const struct route partial[] = { { "GET", "/a/x{id}", h, PB_ROLE_NONE, 0, NULL, NULL, 0 } };
	assert_int_equal(router_check_table(partial, 1, err), PB_EINTERNAL);
	const struct route many[] = { { "GET", "/{a}/{b}/{c}/{d}/{e}", h, PB_ROLE_NONE, 0, NULL, NULL, 0 } };
	assert_int_equal(router_check_table(many, 1, err), PB_EINTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(literal_and_capture),
		cmocka_unit_test(first_letter_and_whole_match),
		cmocka_unit_test(not_found),
		cmocka_unit_test(method_not_allowed_lists_allow),
		cmocka_unit_test(table_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
