/* Unit tests for runtime/http: header capture, Retry-After, HTTPS-only, CA bundle handling,
 * and, against the emulator (skipped when absent): TLS with the right and a wrong CA, body
 * ceiling, timeouts, dropped connections, parallel batches with requeue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/http.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"


/* url <- the emulator's address + path; skips the test without the emulator. */
static void emu_url(char *url, size_t size, const char *path)
{
	tu_need_emu();
	snprintf(url, size, "%s%s", tu_emu.url, path);
}

static void headers_and_retry_after(void **state)
{
	(void)state;
	static const char h[] = "Content-Type\0application/json\0retry-after\0 7\0Location\0https://x/y\0";
	pb_http_resp r = { 0 };
	r.hdrs = (char *)h;
	r.hdrs_len = sizeof h - 1;
	assert_string_equal(pb_http_header(&r, "content-type"), "application/json");
	assert_string_equal(pb_http_header(&r, "LOCATION"), "https://x/y");
	assert_null(pb_http_header(&r, "x-ms-operation-id"));
	/* leading blanks are tolerated */
	assert_int_equal(pb_http_retry_after(&r), 7);
	static const char h2[] = "Retry-After\0" "12\0";
	r.hdrs = (char *)h2;
	r.hdrs_len = sizeof h2 - 1;
	assert_int_equal(pb_http_retry_after(&r), 12);
	/* an HTTP-date in the past means "now" */
	static const char h3[] = "Retry-After\0Wed, 21 Oct 2015 07:28:00 GMT\0";
	r.hdrs = (char *)h3;
	r.hdrs_len = sizeof h3 - 1;
	assert_int_equal(pb_http_retry_after(&r), 0);
	/* a date in the future */
	char h4[128];
	time_t t = time(NULL) + 100;
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(h4, sizeof h4, "Retry-After%%%a, %d %b %Y %H:%M:%S GMT%%", &tm);
	for (size_t i = 0; i < n; i++)
		if (h4[i] == '%')
			h4[i] = '\0';
	r.hdrs = h4;
	r.hdrs_len = n;
	long s = pb_http_retry_after(&r);
	assert_true(s >= 98 && s <= 100);
}

static void refuses_plain_http_and_reports_connect_errors(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_http *h = NULL;
	assert_int_equal(pb_http_new(NULL, &h, err), PB_OK);
	pb_http_req req = { .method = "GET", .url = "http://127.0.0.1:1/x" };
	pb_http_resp resp;
	assert_int_equal(pb_http_do(h, &req, &resp, err), PB_EINVAL);
	assert_non_null(strstr(err, "non-HTTPS"));
	pb_http_resp_release(&resp);
	/* port 1 on loopback: nobody listens */
	req.url = "https://127.0.0.1:1/nothing?secret=no";
	assert_int_equal(pb_http_do(h, &req, &resp, err), PB_EIO);
	assert_non_null(strstr(err, "cannot connect"));
	assert_null(strstr(err, "secret=no")); /* queries stay out of messages */
	assert_false(pb_http_outcome_unknown(&resp, PB_EIO));
	pb_http_resp_release(&resp);
	pb_http_free(h);
}

static void bad_ca_bundles_are_named(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_http *h = NULL;
	pb_http_opts o = { .ca_bundle = "/nonexistent/ca.pem" };
	assert_int_not_equal(pb_http_new(&o, &h, err), PB_OK);
	assert_non_null(strstr(err, "PBIPORT_CA_BUNDLE"));
	assert_null(h);
	char path[600];
	snprintf(path, sizeof path, "%s/tests/unit/test_http.c", emu_src_dir());
	o.ca_bundle = path;
	assert_int_equal(pb_http_new(&o, &h, err), PB_EINVAL);
	assert_non_null(strstr(err, "no PEM certificate"));
	/* the same check at start-up (runtime/config.c) */
	assert_int_equal(pb_http_ca_check(path, err), PB_EINVAL);
	assert_non_null(strstr(err, "no PEM certificate"));
	assert_int_equal(pb_http_ca_check("/nonexistent/ca.pem", err), PB_EINVAL);
	assert_non_null(strstr(err, "PBIPORT_CA_BUNDLE: /nonexistent/ca.pem"));
}

static void tls_with_right_and_wrong_ca(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], url[700];
	emu_url(url, sizeof url, "/fabric/v1/workspaces");
	pb_http_req req = { .method = "GET", .url = url };
	pb_http_resp resp;
	/* trusted via the emulator's CA (emu_start): an answer, 401 without a token */
	assert_int_equal(pb_http_do(tu_emu.http, &req, &resp, err), PB_OK);
	assert_int_equal(resp.status, 401);
	pb_http_resp_release(&resp);
	/* the next call reuses the connection */
	assert_int_equal(pb_http_do(tu_emu.http, &req, &resp, err), PB_OK);
	assert_int_equal(resp.new_connections, 0);
	pb_http_resp_release(&resp);
	/* an unrelated CA: must fail, clearly */
	char other[600];
	snprintf(other, sizeof other, "%s/tests/fixtures/msapi/other-ca.pem", emu_src_dir());
	pb_http_opts o = { .ca_bundle = other };
	pb_http *h = NULL;
	assert_int_equal(pb_http_new(&o, &h, err), PB_OK);
	assert_int_equal(pb_http_do(h, &req, &resp, err), PB_EIO);
	assert_non_null(strstr(err, "TLS check failed"));
	assert_non_null(strstr(err, "other-ca.pem"));
	pb_http_resp_release(&resp);
	pb_http_free(h);
	/* no extra CA at all: the system bundle does not know the emulator */
	assert_int_equal(pb_http_new(NULL, &h, err), PB_OK);
	assert_int_equal(pb_http_do(h, &req, &resp, err), PB_EIO);
	assert_non_null(strstr(err, "point PBIPORT_CA_BUNDLE"));
	pb_http_resp_release(&resp);
	pb_http_free(h);
	/* the extra CA a configuration names is checked and trusted */
	assert_int_equal(pb_http_ca_check(tu_emu.cfg.ca_bundle, err), PB_OK);
	o.ca_bundle = tu_emu.cfg.ca_bundle;
	assert_int_equal(pb_http_new(&o, &h, err), PB_OK);
	assert_int_equal(pb_http_do(h, &req, &resp, err), PB_OK);
	assert_int_equal(resp.status, 401);
	pb_http_resp_release(&resp);
	pb_http_free(h);
}

/* A worker makes a pb_http per job: the trust store of a CA bundle is parsed once and shared
 * while the file is unchanged; a file replaced under the same path is read again. */
static void ca_store_is_parsed_once_per_file(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], url[700], path[600], other[600], cmd[4000];
	emu_url(url, sizeof url, "/fabric/v1/workspaces");
	pb_http_req req = { .method = "GET", .url = url };
	pb_http_resp resp;
	char dir[] = "/tmp/pbiport-test-http-ca-XXXXXX";
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/ca.pem", dir);
	snprintf(other, sizeof other, "%s/tests/fixtures/msapi/other-ca.pem", emu_src_dir());
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", tu_emu.cfg.ca_bundle, path);
	assert_int_equal(system(cmd), 0);
	pb_http_opts o = { .ca_bundle = path };
	pb_http *h = NULL;
	unsigned long before = pb_http_ca_parses();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pb_http_new(&o, &h, err), PB_OK);
		assert_int_equal(pb_http_do(h, &req, &resp, err), PB_OK);
		assert_int_equal(resp.status, 401);
		pb_http_resp_release(&resp);
		pb_http_free(h);
	}
	assert_int_equal(pb_http_ca_parses(), before + 1);
	/* another CA under the same path: read again, and the emulator is no longer trusted */
	snprintf(cmd, sizeof cmd, "cp '%s' '%s.new' && mv '%s.new' '%s'", other, path, path, path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pb_http_new(&o, &h, err), PB_OK);
	assert_int_equal(pb_http_ca_parses(), before + 2);
	assert_int_equal(pb_http_do(h, &req, &resp, err), PB_EIO);
	assert_non_null(strstr(err, "TLS check failed"));
	pb_http_resp_release(&resp);
	pb_http_free(h);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void body_ceiling_timeout_and_drop(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], url[700];
	emu_url(url, sizeof url, "/_emulator/state");
	pb_http_opts o = { .max_body = 16, .ca_bundle = tu_emu.cfg.ca_bundle };
	pb_http *h = NULL;
	assert_int_equal(pb_http_new(&o, &h, err), PB_OK);
	pb_http_req req = { .method = "GET", .url = url };
	pb_http_resp resp;
	assert_int_equal(pb_http_do(h, &req, &resp, err), PB_ELIMIT);
	assert_non_null(strstr(err, "larger than 16 bytes"));
	pb_http_resp_release(&resp);
	pb_http_free(h);

	/* a slow answer past the request's own timeout */
	tu_fault("{\"latency_ms\":1500,\"path_prefix\":\"/graph\"}");
	emu_url(url, sizeof url, "/graph/v1.0/servicePrincipals");
	pb_http_req slow = { .method = "GET", .url = url, .timeout_ms = 300 };
	assert_int_equal(pb_http_do(tu_emu.http, &slow, &resp, err), PB_EIO);
	assert_non_null(strstr(err, "no complete answer in time"));
	pb_http_resp_release(&resp);
	tu_no_faults();

	/* a dropped connection after the request went out: outcome unknown */
	tu_fault("{\"drop_connections\":1,\"path_prefix\":\"/fabric\"}");
	emu_url(url, sizeof url, "/fabric/v1/connections");
	pb_http_req post = { .method = "POST", .url = url, .body = "{}", .body_len = 2, .fresh_connection = true };
	int rc = pb_http_do(tu_emu.http, &post, &resp, err);
	assert_int_equal(rc, PB_EIO);
	assert_non_null(strstr(err, "connection dropped"));
	assert_true(pb_http_outcome_unknown(&resp, rc));
	pb_http_resp_release(&resp);
	/* the next call works again */
	assert_int_equal(pb_http_do(tu_emu.http, &post, &resp, err), PB_OK);
	assert_int_equal(resp.status, 401);
	pb_http_resp_release(&resp);
	tu_no_faults();
}

struct batch {
	long connects;
	int calls[40];
	int again[40];
	long statuses[40];
};

static int on_done(void *ctx, size_t idx, pb_http_resp *resp, int rc, const char *err, long *delay_ms,
		   char *batch_err)
{
	(void)batch_err;
	struct batch *b = ctx;
	b->calls[idx]++;
	if (rc) {
		fprintf(stderr, "job %zu: %s\n", idx, err);
		return PB_HTTP_DONE;
	}
	b->statuses[idx] = resp->status;
	b->connects += resp->new_connections;
	/* even jobs run twice, the second time after a short delay */
	if (idx % 2 == 0 && b->calls[idx] == 1) {
		b->again[idx]++;
		*delay_ms = 20;
		return PB_HTTP_AGAIN;
	}
	return PB_HTTP_DONE;
}

static int stop_at_five(void *ctx, size_t idx, pb_http_resp *resp, int rc, const char *err, long *delay_ms,
			char *batch_err)
{
	(void)resp;
	(void)rc;
	(void)err;
	(void)delay_ms;
	int *seen = ctx;
	if (++*seen == 5)
		return pb_err(batch_err, PB_EINVAL, "stopped at job %zu", idx);
	return PB_HTTP_DONE;
}

static void parallel_batch_with_requeue(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], url[700];
	emu_url(url, sizeof url, "/fabric/v1/workspaces");
	tu_fault("{\"latency_ms\":30,\"path_prefix\":\"/fabric\"}");
	pb_http_req reqs[40];
	for (int i = 0; i < 40; i++)
		reqs[i] = (pb_http_req){ .method = "GET", .url = url };
	struct batch b;
	memset(&b, 0, sizeof b);
	assert_int_equal(pb_http_run_many(tu_emu.http, reqs, 40, 8, on_done, &b, err), PB_OK);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(b.calls[i], i % 2 == 0 ? 2 : 1);
		assert_int_equal(b.statuses[i], 401);
	}
	/* 60 requests, 8 at a time, over the shared connection cache: far fewer connections */
	assert_true(b.connects <= 16);
	/* a callback error stops the batch and is returned */
	int seen = 0;
	assert_int_equal(pb_http_run_many(tu_emu.http, reqs, 40, 4, stop_at_five, &seen, err), PB_EINVAL);
	assert_non_null(strstr(err, "stopped at job"));
	assert_int_equal(seen, 5);
	tu_no_faults();
	/* zero jobs is fine */
	assert_int_equal(pb_http_run_many(tu_emu.http, reqs, 0, 4, on_done, &b, err), PB_OK);
}

/* Sets the stop flag from inside the batch: the jobs that wait for a retry are abandoned. */
static int ask_stop_then_retry(void *ctx, size_t idx, pb_http_resp *resp, int rc, const char *err,
			       long *delay_ms, char *batch_err)
{
	(void)idx;
	(void)resp;
	(void)rc;
	(void)err;
	(void)batch_err;
	volatile int *stop = ctx;
	*stop = 1;
	*delay_ms = 60000;   /* a long poll interval that a stopping worker must not wait out */
	return PB_HTTP_AGAIN;
}

static void stop_flag_ends_a_batch(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], url[700];
	emu_url(url, sizeof url, "/fabric/v1/workspaces");
	pb_http_req reqs[4];
	for (int i = 0; i < 4; i++)
		reqs[i] = (pb_http_req){ .method = "GET", .url = url };
	volatile int stop = 0;
	pb_http_set_stop(tu_emu.http, &stop);
	assert_int_equal(pb_http_run_many(tu_emu.http, reqs, 4, 2, ask_stop_then_retry, (void *)&stop, err), PB_EIO);
	assert_non_null(strstr(err, "stopped"));
	pb_http_set_stop(tu_emu.http, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(headers_and_retry_after),
		cmocka_unit_test(refuses_plain_http_and_reports_connect_errors),
		cmocka_unit_test(bad_ca_bundles_are_named),
		cmocka_unit_test(ca_store_is_parsed_once_per_file),
		cmocka_unit_test(tls_with_right_and_wrong_ca),
		cmocka_unit_test(body_ceiling_timeout_and_drop),
		cmocka_unit_test(parallel_batch_with_requeue),
		cmocka_unit_test(stop_flag_ends_a_batch),
	};
	return cmocka_run_group_tests(tests, NULL, tu_emu_teardown);
}
