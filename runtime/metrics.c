#include "runtime/metrics.h"

#include <string.h>

#include "runtime/util.h"

/* Upper bounds in seconds; the last bucket is +Inf. Chosen around the 5 ms goal. */
static const double bucket_le[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBUCKETS ((int)(sizeof bucket_le / sizeof bucket_le[0]) + 1)

static int bucket_of(double seconds)
{
	for (int i = 0; i < NBUCKETS - 1; i++)
		if (seconds <= bucket_le[i])
			return i;
	return NBUCKETS - 1;
}

static const char sql_count[] =
	"INSERT INTO metrics_requests (route, method, status, count) VALUES (?, ?, ?, 1) "
	"ON CONFLICT (route, method, status) DO UPDATE SET count = metrics_requests.count + 1";
static const char sql_bucket[] =
	"INSERT INTO metrics_durations (route, bucket, count) VALUES (?, ?, 1) "
	"ON CONFLICT (route, bucket) DO UPDATE SET count = metrics_durations.count + 1";
static const char sql_sum[] =
	"INSERT INTO metrics_duration_sums (route, count, sum_seconds) VALUES (?, 1, ?) "
	"ON CONFLICT (route) DO UPDATE SET count = metrics_duration_sums.count + 1, "
	"sum_seconds = metrics_duration_sums.sum_seconds + excluded.sum_seconds";

int metrics_record(pb_db *db, const char *route, const char *method, int status, double seconds,
		   char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	if ((rc = db_prepare(db, sql_count, &st, err)) || (rc = db_bind_text(st, 1, route, err)) ||
	    (rc = db_bind_text(st, 2, method, err)))
		goto out;
	sqlite3_bind_int(st, 3, status);
	if ((rc = db_exec(db, st, err)))
		goto out;
	db_done(st);
	if ((rc = db_prepare(db, sql_bucket, &st, err)) || (rc = db_bind_text(st, 1, route, err)))
		goto out;
	sqlite3_bind_int(st, 2, bucket_of(seconds));
	if ((rc = db_exec(db, st, err)))
		goto out;
	db_done(st);
	if ((rc = db_prepare(db, sql_sum, &st, err)) || (rc = db_bind_text(st, 1, route, err)))
		goto out;
	sqlite3_bind_double(st, 2, seconds);
	if ((rc = db_exec(db, st, err)))
		goto out;
	db_done(st);
	st = NULL;
	rc = db_commit(db, err);
out:
	db_done(st);
	if (rc)
		db_rollback(db);
	return rc;
}

/* Label values: backslash, double quote and newline escaped (exposition format). */
static int add_label(sbuf *out, const char *s)
{
	for (; *s; s++) {
		int rc = *s == '\\' ? sbuf_adds(out, "\\\\")
			 : *s == '"' ? sbuf_adds(out, "\\\"")
			 : *s == '\n' ? sbuf_adds(out, "\\n")
			 : sbuf_addc(out, *s);
		if (rc)
			return rc;
	}
	return 0;
}

static int render_counters(pb_db *db, sbuf *out, char *err)
{
	sqlite3_stmt *st;
	int rc = db_prepare(db, "SELECT route, method, status, count FROM metrics_requests "
			    "ORDER BY route, method, status", &st, err);
	if (rc)
		return rc;
	int bad = sbuf_adds(out, "# HELP pbiport_requests_total HTTP requests answered.\n"
			    "# TYPE pbiport_requests_total counter\n");
	int r;
	while (!bad && (r = db_row(db, st, err)) == 1) {
		bad = sbuf_adds(out, "pbiport_requests_total{route=\"") ||
		      add_label(out, db_col_text(st, 0)) || sbuf_adds(out, "\",method=\"") ||
		      add_label(out, db_col_text(st, 1)) ||
		      sbuf_addf(out, "\",status=\"%d\"} %lld\n", sqlite3_column_int(st, 2),
				(long long)sqlite3_column_int64(st, 3));
	}
	db_done(st);
	if (bad)
		return pb_err(err, PB_ELIMIT, "metrics text is larger than its ceiling");
	return r < 0 ? r : PB_OK;
}

/* Buckets are stored per bucket; Prometheus wants cumulative counts per le. */
static int render_route_histogram(sbuf *out, const char *route, const long long *counts,
				  long long total, double sum)
{
	long long acc = 0;
	for (int i = 0; i < NBUCKETS; i++) {
		acc += counts[i];
		int bad = sbuf_adds(out, "pbiport_request_duration_seconds_bucket{route=\"") ||
			  add_label(out, route);
		if (!bad && i < NBUCKETS - 1)
			bad = sbuf_addf(out, "\",le=\"%g\"} %lld\n", bucket_le[i], acc);
		else if (!bad)
			bad = sbuf_addf(out, "\",le=\"+Inf\"} %lld\n", acc);
		if (bad)
			return -1;
	}
	return sbuf_adds(out, "pbiport_request_duration_seconds_sum{route=\"") || add_label(out, route) ||
	       sbuf_addf(out, "\"} %.6f\n", sum) ||
	       sbuf_adds(out, "pbiport_request_duration_seconds_count{route=\"") || add_label(out, route) ||
	       sbuf_addf(out, "\"} %lld\n", total);
}

static int render_histograms(pb_db *db, sbuf *out, char *err)
{
	sqlite3_stmt *sums = NULL, *st = NULL;
	int rc, r;
	if (sbuf_adds(out, "# HELP pbiport_request_duration_seconds Time to answer a request.\n"
		      "# TYPE pbiport_request_duration_seconds histogram\n"))
		return pb_err(err, PB_ELIMIT, "metrics text is larger than its ceiling");
	if ((rc = db_prepare(db, "SELECT route, count, sum_seconds FROM metrics_duration_sums ORDER BY route",
			     &sums, err)) ||
	    (rc = db_prepare(db, "SELECT bucket, count FROM metrics_durations WHERE route = ?", &st, err)))
		goto out;
	while ((r = db_row(db, sums, err)) == 1) {
		long long counts[NBUCKETS] = { 0 };
		const char *route = db_col_text(sums, 0);
		db_done(st);
		if ((rc = db_bind_text(st, 1, route, err)))
			goto out;
		int b;
		while ((b = db_row(db, st, err)) == 1) {
			int i = sqlite3_column_int(st, 0);
			if (i >= 0 && i < NBUCKETS)
				counts[i] += sqlite3_column_int64(st, 1);
		}
		if (b < 0) {
			rc = b;
			goto out;
		}
		if (render_route_histogram(out, route, counts, sqlite3_column_int64(sums, 1),
					   sqlite3_column_double(sums, 2))) {
			rc = pb_err(err, PB_ELIMIT, "metrics text is larger than its ceiling");
			goto out;
		}
	}
	rc = r < 0 ? r : PB_OK;
out:
	db_done(st);
	db_done(sums);
	return rc;
}

int metrics_render(pb_db *db, sbuf *out, char *err)
{
	int rc = render_counters(db, out, err);
	if (!rc)
		rc = render_histograms(db, out, err);
	return rc;
}
