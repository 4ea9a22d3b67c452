/* runtime/metrics: request counts wait in the process and are written in one transaction;
 * nothing is lost when the batch fills up or a write fails, and a flush is due after
 * PB_METRICS_FLUSH_REQUESTS requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/db.h"
#include "runtime/metrics.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"


static pb_db *open_db(const char *name, bool migrate)
{
	char path[256], err[PB_ERR_MAX];
	pb_db *db = NULL;
	if (migrate) {
		assert_int_equal(tu_db_open_migrated(tu_tmpdir, name, NULL, 0, &db, err), PB_OK);
		return db;
	}
	xsnprintf(path, sizeof path, "%s/%s", tu_tmpdir, name);
	assert_int_equal(db_open(path, true, &db, err), PB_OK);
	return db;
}

/* The /metrics text of db (caller frees). */
static char *render(pb_db *db)
{
	char err[PB_ERR_MAX];
	sbuf out;
	sbuf_init(&out, PB_METRICS_MAX_BYTES);
	assert_int_equal(metrics_render(db, &out, err), PB_OK);
	char *text = sbuf_detach(&out, NULL);
	assert_non_null(text);
	return text;
}

static void counts_wait_until_flushed(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_db *db = open_db("batch.db", true);
	assert_false(metrics_pending());
	assert_int_equal(metrics_count(db, "/a/{id}", "GET", 200, 0.0004, err), PB_OK);
	assert_int_equal(metrics_count(db, "/a/{id}", "GET", 200, 0.003, err), PB_OK);
	assert_int_equal(metrics_count(db, "/a/{id}", "POST", 201, 0.02, err), PB_OK);
	assert_true(metrics_pending());
	assert_false(metrics_due());
	char *t = render(db);
	assert_null(strstr(t, "pbiport_requests_total{route=\"/a/{id}\""));
	free(t);

	assert_int_equal(metrics_flush(db, err), PB_OK);
	assert_false(metrics_pending());
	t = render(db);
	assert_non_null(strstr(t, "pbiport_requests_total{route=\"/a/{id}\",method=\"GET\",status=\"200\"} 2\n"));
	assert_non_null(strstr(t, "pbiport_requests_total{route=\"/a/{id}\",method=\"POST\",status=\"201\"} 1\n"));
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_bucket{route=\"/a/{id}\",le=\"0.001\"} 1\n"));
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_bucket{route=\"/a/{id}\",le=\"0.005\"} 2\n"));
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_count{route=\"/a/{id}\"} 3\n"));
	free(t);

	/* a second batch adds to the rows; an empty flush writes nothing and succeeds */
	assert_int_equal(metrics_count(db, "/a/{id}", "GET", 200, 0.0004, err), PB_OK);
	assert_int_equal(metrics_flush(db, err), PB_OK);
	assert_int_equal(metrics_flush(db, err), PB_OK);
	t = render(db);
	assert_non_null(strstr(t, "pbiport_requests_total{route=\"/a/{id}\",method=\"GET\",status=\"200\"} 3\n"));
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_bucket{route=\"/a/{id}\",le=\"0.001\"} 2\n"));
	free(t);
	metrics_forget();
	db_close(db);
}

static void due_after_many_requests(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_db *db = open_db("due.db", true);
	for (int i = 0; i < PB_METRICS_FLUSH_REQUESTS - 1; i++)
		assert_int_equal(metrics_count(db, "/d", "GET", 200, 0.001, err), PB_OK);
	assert_false(metrics_due());
	assert_int_equal(metrics_count(db, "/d", "GET", 200, 0.001, err), PB_OK);
	assert_true(metrics_due());
	assert_int_equal(metrics_flush(db, err), PB_OK);
	assert_false(metrics_due());
	metrics_forget();
	db_close(db);
}

static void full_batch_is_written_not_dropped(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], route[32];
	pb_db *db = open_db("full.db", true);
	for (int i = 0; i < PB_METRICS_BATCH_CELLS + 5; i++) {
		xsnprintf(route, sizeof route, "/r%d", i);
		assert_int_equal(metrics_count(db, route, "GET", 200, 0.001, err), PB_OK);
	}
	assert_int_equal(metrics_flush(db, err), PB_OK);
	char *t = render(db);
	for (int i = 0; i < PB_METRICS_BATCH_CELLS + 5; i++) {
		char want[96];
		xsnprintf(want, sizeof want, "pbiport_requests_total{route=\"/r%d\",method=\"GET\",status=\"200\"} 1\n", i);
		assert_non_null(strstr(t, want));
	}
	free(t);
	metrics_forget();
	db_close(db);
}

static void failed_write_keeps_counts(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_db *bare = open_db("bare.db", false);   /* no request_metrics table: the write fails */
	pb_db *db = open_db("retry.db", true);
	assert_int_equal(metrics_count(bare, "/k", "GET", 200, 0.001, err), PB_OK);
	assert_int_not_equal(metrics_flush(bare, err), PB_OK);
	assert_true(metrics_pending());
	assert_int_equal(metrics_flush(db, err), PB_OK);
	char *t = render(db);
	assert_non_null(strstr(t, "pbiport_requests_total{route=\"/k\",method=\"GET\",status=\"200\"} 1\n"));
	free(t);
	/* a flush writes at once */
	assert_int_equal(metrics_count(db, "/k", "GET", 200, 0.001, err), PB_OK);
	assert_int_equal(metrics_flush(db, err), PB_OK);
	assert_false(metrics_pending());
	t = render(db);
	assert_non_null(strstr(t, "pbiport_requests_total{route=\"/k\",method=\"GET\",status=\"200\"} 2\n"));
	free(t);
	metrics_forget();
	db_close(bare);
	db_close(db);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counts_wait_until_flushed),
		cmocka_unit_test(due_after_many_requests),
		cmocka_unit_test(full_batch_is_written_not_dropped),
		cmocka_unit_test(failed_write_keeps_counts),
	};
	return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
