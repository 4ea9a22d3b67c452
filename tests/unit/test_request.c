/* struct req: environment copy, path and query decoding, body limits, responses, reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/json_body.h"
#include "runtime/request.h"
#include "runtime/util.h"
#include "tests/unit/mem_io.h"

struct fixture {
	struct req r;
	struct mem_io m;
	struct req_io io;
	char err[PB_ERR_MAX];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	req_init(&f->r, NULL, NULL);
	sbuf_init(&f->m.out, 1 << 20);
	f->io = mem_req_io(&f->m);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	req_release(&f->r);
	sbuf_release(&f->m.out);
	free(f);
	return 0;
}

static int load(struct fixture *f, char **env)
{
	req_reset(&f->r);
	return req_load(&f->r, env, &f->io, f->err);
}

static void url_decoding(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], *out;
	assert_int_equal(url_decode("a%20b+c", 7, true, &out, err), PB_OK);
	assert_string_equal(out, "a b c");
	free(out);
	assert_int_equal(url_decode("a+b%2Fc", 7, false, &out, err), PB_OK);
	assert_string_equal(out, "a+b/c");
	free(out);
	assert_int_equal(url_decode("%C3%A9", 6, false, &out, err), PB_OK);
	assert_string_equal(out, "\xc3\xa9");
	free(out);
	assert_int_equal(url_decode("%zz", 3, false, &out, err), PB_EINVAL);
	assert_null(out);
	assert_int_equal(url_decode("ab%4", 4, false, &out, err), PB_EINVAL);   /* cut escape */
	assert_int_equal(url_decode("ab%", 3, false, &out, err), PB_EINVAL);
	assert_int_equal(url_decode("a%00b", 5, false, &out, err), PB_EINVAL);   /* NUL byte */
	assert_non_null(strstr(err, "NUL"));
	assert_int_equal(url_decode("%ff", 3, false, &out, err), PB_EINVAL);     /* not UTF-8 */
}

static void path_from_request_uri(void **state)
{
	struct fixture *f = *state;
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/x/a%2Fb%20c?q=1", "SCRIPT_NAME=/api/x/a/b c", NULL };
	assert_int_equal(load(f, env), PB_OK);
	assert_string_equal(f->r.method, "GET");
	assert_int_equal(f->r.nsegs, 3);
	assert_string_equal(f->r.segs[2], "a/b c");
	assert_string_equal(f->r.path, "/api/x/a/b c");
	assert_int_equal(strlen(f->r.request_id), 32);
}

static void path_from_cgi_mount(void **state)
{
	struct fixture *f = *state;
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/cgi-bin/pbiport/healthz",
			"SCRIPT_NAME=/cgi-bin/pbiport", "PATH_INFO=/healthz", NULL };
	assert_int_equal(load(f, env), PB_OK);
	assert_int_equal(f->r.nsegs, 1);
	assert_string_equal(f->r.segs[0], "healthz");
	char *env2[] = { "REQUEST_METHOD=GET", "PATH_INFO=/api/data-products", NULL };
	assert_int_equal(load(f, env2), PB_OK);
	assert_int_equal(f->r.nsegs, 2);
	char *env3[] = { "REQUEST_METHOD=GET", "SCRIPT_NAME=/healthz", "PATH_INFO=", NULL };
	assert_int_equal(load(f, env3), PB_OK);
	assert_string_equal(f->r.segs[0], "healthz");
}

static void bad_paths_refused(void **state)
{
	struct fixture *f = *state;
	char *nul[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/a%00b", NULL };
	assert_int_equal(load(f, nul), PB_EINVAL);
	char *esc[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/%g1", NULL };
	assert_int_equal(load(f, esc), PB_EINVAL);
	char *dots[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/%2e%2e/x", NULL };
	assert_int_equal(load(f, dots), PB_EINVAL);
	char *rel[] = { "REQUEST_METHOD=GET", "REQUEST_URI=api", NULL };
	assert_int_equal(load(f, rel), PB_EINVAL);
	char *nomethod[] = { "REQUEST_URI=/healthz", NULL };
	assert_int_equal(load(f, nomethod), PB_EINVAL);
	char *badmethod[] = { "REQUEST_METHOD=get", "REQUEST_URI=/healthz", NULL };
	assert_int_equal(load(f, badmethod), PB_EINVAL);
}

static void query_decoding(void **state)
{
	struct fixture *f = *state;
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x",
			"QUERY_STRING=warehouse=A%20B&mode=import&&http_path=%2Fsql%2F1+0&flag", NULL };
	assert_int_equal(load(f, env), PB_OK);
	assert_int_equal(f->r.nquery, 4);
	assert_string_equal(req_query(&f->r, "warehouse"), "A B");
	assert_string_equal(req_query(&f->r, "http_path"), "/sql/1 0");
	assert_string_equal(req_query(&f->r, "flag"), "");
	assert_null(req_query(&f->r, "missing"));

	char *bad[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x", "QUERY_STRING=a=%zz", NULL };
	assert_int_equal(load(f, bad), PB_EINVAL);
	assert_non_null(strstr(f->err, "'a'"));
	char *nul[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x", "QUERY_STRING=a=1%002", NULL };
	assert_int_equal(load(f, nul), PB_EINVAL);
	char *dup[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x", "QUERY_STRING=a=1&a=2", NULL };
	assert_int_equal(load(f, dup), PB_EINVAL);
	assert_non_null(strstr(f->err, "twice"));
}

static void request_id_kept_only_when_safe(void **state)
{
	struct fixture *f = *state;
	char *good[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x", "HTTP_X_REQUEST_ID=abc-123_x.y", NULL };
	assert_int_equal(load(f, good), PB_OK);
	assert_string_equal(f->r.request_id, "abc-123_x.y");
	char *bad[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x", "HTTP_X_REQUEST_ID=a b\"<script>", NULL };
	assert_int_equal(load(f, bad), PB_OK);
	assert_int_equal(strlen(f->r.request_id), 32);
	assert_null(strchr(f->r.request_id, ' '));
}

static const char *const types[] = { "application/json", "application/yaml", NULL };

static int body(struct fixture *f, const char *len, const char *ctype, const char *data, size_t limit,
		bool empty_ok, int *status)
{
	char cl[64], ct[128];
	char *env[5] = { "REQUEST_METHOD=POST", "REQUEST_URI=/x", NULL, NULL, NULL };
	size_t n = 2;
	if (len) {
		xsnprintf(cl, sizeof cl, "CONTENT_LENGTH=%s", len);
		env[n++] = cl;
	}
	if (ctype) {
		xsnprintf(ct, sizeof ct, "CONTENT_TYPE=%s", ctype);
		env[n++] = ct;
	}
	mem_io_start(&f->m, data);
	assert_int_equal(load(f, env), PB_OK);
	return req_read_body(&f->r, limit, types, empty_ok, status, f->err);
}

static void body_limits(void **state)
{
	struct fixture *f = *state;
	int status;
	assert_int_equal(body(f, "7", "application/json; charset=utf-8", "{\"a\":1}", 100, false, &status), PB_OK);
	assert_int_equal(f->r.body_len, 7);
	assert_string_equal(f->r.body, "{\"a\":1}");
	assert_string_equal(f->r.content_type, "application/json");

	/* over the limit: refused from the header alone, nothing read */
	assert_int_not_equal(body(f, "101", "application/json", "x", 100, false, &status), PB_OK);
	assert_int_equal(status, 413);
	assert_int_equal(f->m.reads, 0);
	assert_int_not_equal(body(f, "99999999999999999999999", "application/json", "x", 100, false, &status), PB_OK);
	assert_int_equal(status, 413);   /* overflowing length */
	/* a route without a body */
	assert_int_not_equal(body(f, "3", "application/json", "abc", 0, false, &status), PB_OK);
	assert_int_equal(status, 413);
	assert_int_equal(body(f, "0", NULL, NULL, 0, false, &status), PB_OK);
	assert_int_equal(body(f, NULL, NULL, NULL, 0, false, &status), PB_OK);

	/* no length where a body is expected */
	assert_int_not_equal(body(f, NULL, "application/json", NULL, 100, false, &status), PB_OK);
	assert_int_equal(status, 411);
	assert_int_not_equal(body(f, "x1", "application/json", NULL, 100, false, &status), PB_OK);
	assert_int_equal(status, 400);
	/* content type */
	assert_int_not_equal(body(f, "3", "text/plain", "abc", 100, false, &status), PB_OK);
	assert_int_equal(status, 415);
	assert_int_equal(f->m.reads, 0);
	assert_int_not_equal(body(f, "3", NULL, "abc", 100, false, &status), PB_OK);
	assert_int_equal(status, 415);
	/* short body */
	assert_int_not_equal(body(f, "10", "application/json", "abc", 100, false, &status), PB_OK);
	assert_int_equal(status, 400);
	/* empty body: refused unless the route allows it (a trigger) */
	assert_int_not_equal(body(f, "0", "application/json", "", 100, false, &status), PB_OK);
	assert_int_equal(status, 400);
	assert_int_equal(body(f, "0", NULL, "", 100, true, &status), PB_OK);
	assert_int_equal(body(f, NULL, NULL, NULL, 100, true, &status), PB_OK);
	assert_null(f->r.body);
}

static void response_format(void **state)
{
	struct fixture *f = *state;
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x", "HTTP_X_REQUEST_ID=rid1", NULL };
	assert_int_equal(load(f, env), PB_OK);
	assert_int_equal(req_header(&f->r, "Allow", "GET"), PB_OK);
	assert_int_not_equal(req_header(&f->r, "X-Bad", "a\r\nSet-Cookie: x"), PB_OK);
	/* a line that does not fit the headers' room is refused whole */
	size_t big_len = PB_RESPONSE_HEADERS_MAX;
	char *big = malloc(big_len + 1);
	assert_non_null(big);
	memset(big, 'v', big_len);
	big[big_len] = '\0';
	assert_int_equal(req_header(&f->r, "X-Big", big), PB_ENOMEM);
	free(big);
	req_reply_error(&f->r, 405, "method_not_allowed", "no %s", "way");
	sbuf_reset(&f->m.out);
	assert_int_equal(req_send(&f->r), PB_OK);
	const char *out = sbuf_str(&f->m.out);
	assert_non_null(strstr(out, "Status: 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(out, "X-Request-Id: rid1\r\n"));
	assert_non_null(strstr(out, "Allow: GET\r\n"));
	assert_null(strstr(out, "Set-Cookie"));
	assert_null(strstr(out, "X-Big"));
	const char *b = strstr(out, "\r\n\r\n");
	assert_non_null(b);
	json_error_t je;
	json_t *j = json_loads(b + 4, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
			    "method_not_allowed");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "no way");
	json_decref(j);

	/* reset leaves nothing from the previous request */
	req_reset(&f->r);
	assert_int_equal(f->r.status, 0);
	assert_int_equal(f->r.nenv, 0);
	assert_int_equal(f->r.headers.len, 0);
	assert_int_equal(f->r.resp.len, 0);
	assert_string_equal(f->r.request_id, "");
}

static void env_is_bounded(void **state)
{
	struct fixture *f = *state;
	static char big[PB_ENV_MAX_BYTES + 64];
	memset(big, 'a', sizeof big - 1);
	memcpy(big, "HTTP_X=", 7);
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x", big, NULL };
	assert_int_equal(load(f, env), PB_EINVAL);
}

/* Random paths and query strings (fixed seed): every one is either parsed into
 * NUL-free UTF-8 segments/parameters or refused, never a crash (run under ASan). */
static void random_inputs_are_safe(void **state)
{
	struct fixture *f = *state;
	static const char alphabet[] = "/%?&=+.aZ09\xc3\xa9\xff\x01 #";
	unsigned seed = 12345;
	char uri[160], query[160], u_env[200], q_env[200];
	for (int iter = 0; iter < 3000; iter++) {
		size_t ul = 1 + (seed = seed * 1103515245u + 12345u) % 120, ql = (seed >> 8) % 120;
		uri[0] = '/';
		for (size_t i = 1; i < ul; i++)
			uri[i] = alphabet[(seed = seed * 1103515245u + 12345u) % (sizeof alphabet - 1)];
		uri[ul] = '\0';
		for (size_t i = 0; i < ql; i++)
			query[i] = alphabet[(seed = seed * 1103515245u + 12345u) % (sizeof alphabet - 1)];
		query[ql] = '\0';
		xsnprintf(u_env, sizeof u_env, "REQUEST_URI=%s", uri);
		xsnprintf(q_env, sizeof q_env, "QUERY_STRING=%s", query);
		char *env[] = { "REQUEST_METHOD=GET", u_env, q_env, NULL };
		if (load(f, env) != PB_OK)
			continue;
		for (size_t i = 0; i < f->r.nsegs; i++)
			assert_true(utf8_valid(f->r.segs[i], strlen(f->r.segs[i])));
		for (size_t i = 0; i < f->r.nquery; i++)
			assert_true(utf8_valid(f->r.query[i].value, strlen(f->r.query[i].value)));
	}
}

static void json_bodies(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	json_t *v;
	const char ok[] = "{\"a\": [1, {\"b\": \"x\"}]}";
	assert_int_equal(json_body_parse(ok, strlen(ok), 0, &v, err), PB_OK);
	const char *const allowed[] = { "a", NULL };
	assert_int_equal(json_body_only_keys(v, allowed, "", err), PB_OK);
	const char *const other[] = { "b", "c", NULL };
	assert_int_equal(json_body_only_keys(v, other, "settings", err), PB_EINVAL);
	assert_string_equal(err, "unknown field 'settings.a' (allowed: b, c)");
	json_decref(v);

	const char dup[] = "{\"a\": 1,\n \"a\": 2}";
	assert_int_equal(json_body_parse(dup, strlen(dup), 0, &v, err), PB_EINVAL);
	assert_null(v);
	assert_non_null(strstr(err, "line 2, column"));
	assert_non_null(strstr(err, "duplicate"));

	const char bad[] = "{\n\n  \"a\": tru }";
	assert_int_equal(json_body_parse(bad, strlen(bad), 0, &v, err), PB_EINVAL);
	assert_non_null(strstr(err, "line 3, column"));

	/* too deep: refused on the text, before jansson builds anything; brackets in strings do not count */
	const char deep[] = "{\"s\": \"[[[[[[\", \"a\": [[[1]]]}";
	assert_int_equal(json_body_parse(deep, strlen(deep), 4, &v, err), PB_OK);
	json_decref(v);
	assert_int_equal(json_body_parse(deep, strlen(deep), 3, &v, err), PB_ELIMIT);
	assert_string_equal(err, "line 1, column 24: nested deeper than 3 levels");
	char nested[PB_JSON_MAX_DEPTH * 2 + 4];
	size_t k = 0;
	for (int i = 0; i <= PB_JSON_MAX_DEPTH; i++)
		nested[k++] = '[';
	nested[k] = '\0';
	assert_int_equal(json_body_parse(nested, k, 0, &v, err), PB_ELIMIT);

	const char nul[] = "{\"a\": \"x\0y\"}";
	assert_int_equal(json_body_parse(nul, sizeof nul - 1, 0, &v, err), PB_EINVAL);

	assert_true(json_media_type("application/json"));
	assert_true(json_media_type("application/merge-patch+json"));
	assert_false(json_media_type("text/json+"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(url_decoding),
		cmocka_unit_test_setup_teardown(path_from_request_uri, setup, teardown),
		cmocka_unit_test_setup_teardown(path_from_cgi_mount, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_paths_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(query_decoding, setup, teardown),
		cmocka_unit_test_setup_teardown(request_id_kept_only_when_safe, setup, teardown),
		cmocka_unit_test_setup_teardown(body_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(response_format, setup, teardown),
		cmocka_unit_test_setup_teardown(env_is_bounded, setup, teardown),
		cmocka_unit_test(json_bodies),
		cmocka_unit_test_setup_teardown(random_inputs_are_safe, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
