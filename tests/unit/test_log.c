/* runtime/log.c: request lines batched while requests keep coming (log_batch_requests), written
 * in order, whole, at idle, past PB_LOG_BATCH_BYTES, and before any other line; a failed
 * request's line at once. stderr goes to a temporary file the test reads back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/limits.h"
#include "runtime/log.h"
#include "runtime/request.h"
#include "runtime/util.h"
#include "tests/unit/mem_io.h"

static char log_path[] = "/tmp/pbiport-test-log-XXXXXX";
static int real_stderr = -1;

static int setup(void **state)
{
	(void)state;
	int fd = mkstemp(log_path);
	if (fd < 0 || (real_stderr = dup(2)) < 0 || dup2(fd, 2) < 0)
		return -1;
	close(fd);
	return 0;
}

/* stderr back, with what was not a log line (cmocka's messages about a failure) */
static int teardown(void **state)
{
	(void)state;
	char line[PB_LOG_LINE_MAX];
	fflush(stderr);
	dup2(real_stderr, 2);
	FILE *f = fopen(log_path, "r");
	while (f && fgets(line, sizeof line, f))
		if (line[0] != '{')
			fputs(line, stderr);
	if (f)
		fclose(f);
	return unlink(log_path);
}

/* The lines written so far: how many, and whether the i-th (from 0) holds needle. */
static int lines_written(void)
{
	FILE *f = fopen(log_path, "r");
	int n = 0, c;
	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static bool line_has(int i, const char *needle)
{
	char line[PB_LOG_LINE_MAX];
	FILE *f = fopen(log_path, "r");
	bool found = false;
	assert_non_null(f);
	for (int k = 0; fgets(line, sizeof line, f); k++)
		if (k == i) {
			found = strstr(line, needle) != NULL;
			json_t *j = json_loads(line, 0, NULL);   /* a whole JSON object */
			assert_non_null(j);
			json_decref(j);
			break;
		}
	fclose(f);
	return found;
}

/* The i-th line (from 0) as JSON (the caller decrefs), NULL when there is none. */
static json_t *line_json(int i)
{
	char line[PB_LOG_LINE_MAX];
	json_t *j = NULL;
	FILE *f = fopen(log_path, "r");
	assert_non_null(f);
	for (int k = 0; !j && fgets(line, sizeof line, f); k++)
		if (k == i)
			assert_non_null(j = json_loads(line, 0, NULL));
	fclose(f);
	return j;
}

static void logged_took(int status, const char *id, double seconds);

/* A request answered with status, logged. */
static void logged(int status, const char *id)
{
	logged_took(status, id, 0.001);
}

static void logged_took(int status, const char *id, double seconds)
{
	struct req r;
	struct mem_io m = { 0 };
	struct req_io io = mem_req_io(&m);
	char err[PB_ERR_MAX];
	char method[] = "REQUEST_METHOD=GET", uri[] = "REQUEST_URI=/api/jobs", rid[64];
	snprintf(rid, sizeof rid, "HTTP_X_REQUEST_ID=%s", id);
	char *env[] = { method, uri, rid, NULL };
	req_init(&r, NULL, NULL);
	sbuf_init(&m.out, 1 << 16);
	assert_int_equal(req_load(&r, env, &io, err), PB_OK);
	r.status = status;
	log_request(&r, seconds);
	req_release(&r);
	sbuf_release(&m.out);
}

static void request_lines_wait_for_idle_in_order(void **state)
{
	(void)state;
	log_batch_requests(true);
	logged(200, "first");
	logged(404, "second");
	assert_int_equal(lines_written(), 0);
	log_flush();   /* the process goes idle */
	assert_int_equal(lines_written(), 2);
	assert_true(line_has(0, "\"first\""));
	assert_true(line_has(1, "\"second\""));

	/* any other line goes at once, after what waits */
	logged(200, "third");
	log_event("warn", NULL, "an event");
	assert_int_equal(lines_written(), 4);
	assert_true(line_has(2, "\"third\""));
	assert_true(line_has(3, "an event"));

	/* a failed request's line goes at once */
	logged(200, "fourth");
	logged(500, "failed");
	assert_int_equal(lines_written(), 6);
	assert_true(line_has(4, "\"fourth\""));
	assert_true(line_has(5, "\"failed\""));

	/* under steady load: written once they pass PB_LOG_BATCH_BYTES, whole lines */
	int sent = 0;
	while (lines_written() == 6) {
		logged(200, "busy");
		sent++;
		assert_true(sent < 1000);
	}
	assert_true(sent > 10);
	assert_int_equal(lines_written(), 6 + sent);
	assert_true(line_has(6 + sent - 1, "\"busy\""));

	/* off: what waits is written */
	logged(200, "last");
	log_batch_requests(false);
	assert_int_equal(lines_written(), 7 + sent);
	logged(200, "unbatched");
	assert_int_equal(lines_written(), 8 + sent);
}

/* A request's line: its fields, numbers as JSON numbers, the duration in milliseconds to the
 * microsecond; a text that is not UTF-8 as null. */
static void request_line_fields(void **state)
{
	(void)state;
	static const struct { double seconds; double ms; } took[] = {
		{ 0.0123456, 12.346 }, { 0, 0 }, { 2.5, 2500 }, { 0.0000004, 0 }, { 0.0000005, 0.001 },
	};
	for (size_t i = 0; i < sizeof took / sizeof took[0]; i++) {
		int at = lines_written();
		logged_took(i ? 200 : 503, "fields\"\\", took[i].seconds);
		json_t *j = line_json(at);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "level")), i ? "info" : "error");
		assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
		assert_string_equal(json_string_value(json_object_get(j, "path")), "/api/jobs");
		assert_string_equal(json_string_value(json_object_get(j, "route")), "-");
		assert_int_equal(json_integer_value(json_object_get(j, "status")), i ? 200 : 503);
		assert_true(json_is_integer(json_object_get(j, "bytes")));
		json_t *ms = json_object_get(j, "duration_ms");
		assert_true(json_is_real(ms));
		assert_true(json_real_value(ms) > took[i].ms - 1e-9 && json_real_value(ms) < took[i].ms + 1e-9);
		assert_int_equal(strlen(json_string_value(json_object_get(j, "ts"))), 24);
		json_decref(j);
	}
}

enum { LOGGING_THREADS = 4, LINES_PER_THREAD = 2000 };

static void *log_events(void *arg)
{
	char pad[1001];
	memset(pad, 'x', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	for (int i = 0; i < LINES_PER_THREAD; i++)   /* lengths that vary, so buffers grow and shrink */
		log_event("info", NULL, "thread %ld line %d %.*s", (long)(intptr_t)arg, i, (i * 37) % 1000, pad);
	return NULL;
}

/* Threads log too (a worker's heartbeat; two workers in one test process): lines from several
 * threads at once, requests batched beside them, come out whole, each once. */
static void threads_write_whole_lines(void **state)
{
	(void)state;
	pthread_t t[LOGGING_THREADS];
	int before = lines_written();
	log_batch_requests(true);
	for (int i = 0; i < LOGGING_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, log_events, (void *)(intptr_t)i), 0);
	for (int i = 0; i < LINES_PER_THREAD; i++)
		logged(200, "beside the threads");
	for (int i = 0; i < LOGGING_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	log_batch_requests(false);

	char line[PB_LOG_LINE_MAX];
	int n = 0, bad = 0;
	FILE *f = fopen(log_path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof line, f)) {
		if (n++ < before)
			continue;
		json_t *j = json_loads(line, 0, NULL);
		bad += !j;
		json_decref(j);
	}
	fclose(f);
	assert_int_equal(bad, 0);
	assert_int_equal(n - before, (LOGGING_THREADS + 1) * LINES_PER_THREAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(request_lines_wait_for_idle_in_order),
		cmocka_unit_test(threads_write_whole_lines),
		cmocka_unit_test(request_line_fields),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
