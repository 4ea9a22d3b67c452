#include "runtime/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/util.h"

/* Upper bounds in seconds, around the 5 ms goal; bucket NBUCKETS-1 is +Inf. Stored as
 * columns b0..b13 of request_metrics (sql/0007_request_metrics.sql), non-cumulative. */
static const double bucket_le[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBUCKETS ((int)(sizeof bucket_le / sizeof bucket_le[0]) + 1)

static int bucket_of(double seconds)
{
	for (int i = 0; i < NBUCKETS - 1; i++)
		if (seconds <= bucket_le[i])
			return i;
	return NBUCKETS - 1;
}

/* One constant statement per bucket column: the column is picked from this fixed list,
 * never built from input. A single statement is its own write transaction. */
#define RECORD(b)                                                                              \
	"INSERT INTO request_metrics (route, method, status, count, sum_seconds, " b ") "     \
	"VALUES (?, ?, ?, 1, ?, 1) ON CONFLICT (route, method, status) DO UPDATE SET "        \
	"count = request_metrics.count + 1, "                                                 \
	"sum_seconds = request_metrics.sum_seconds + excluded.sum_seconds, "                  \
	b " = request_metrics." b " + 1"
static const char *const sql_record[NBUCKETS] = {
	RECORD("b0"), RECORD("b1"), RECORD("b2"), RECORD("b3"), RECORD("b4"), RECORD("b5"), RECORD("b6"),
	RECORD("b7"), RECORD("b8"), RECORD("b9"), RECORD("b10"), RECORD("b11"), RECORD("b12"), RECORD("b13"),
};
_Static_assert(sizeof sql_record / sizeof sql_record[0] == NBUCKETS, "one statement per bucket");

int metrics_record(pb_db *db, const char *route, const char *method, int status, double seconds,
		   char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare(db, sql_record[bucket_of(seconds)], &st, err);
	if (rc || (rc = db_bind_text(st, 1, route, err)) || (rc = db_bind_text(st, 2, method, err)))
		goto out;
	sqlite3_bind_int(st, 3, status);
	sqlite3_bind_double(st, 4, seconds);
	rc = db_exec(db, st, err);
out:
	db_done(st);
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

/* One route's histogram, summed over its methods and statuses; Prometheus wants
 * cumulative counts per le. */
struct route_hist {
	char *route;
	long long buckets[NBUCKETS];
	long long count;
	double sum;
};

static int flush_hist(sbuf *out, struct route_hist *h)
{
	long long acc = 0;
	int bad = 0;
	if (!h->route)
		return 0;
	for (int i = 0; i < NBUCKETS && !bad; i++) {
		acc += h->buckets[i];
		bad = sbuf_adds(out, "pbiport_request_duration_seconds_bucket{route=\"") || add_label(out, h->route) ||
		      (i < NBUCKETS - 1 ? sbuf_addf(out, "\",le=\"%g\"} %lld\n", bucket_le[i], acc)
					: sbuf_addf(out, "\",le=\"+Inf\"} %lld\n", acc));
	}
	bad = bad || sbuf_adds(out, "pbiport_request_duration_seconds_sum{route=\"") || add_label(out, h->route) ||
	      sbuf_addf(out, "\"} %.6f\n", h->sum) ||
	      sbuf_adds(out, "pbiport_request_duration_seconds_count{route=\"") || add_label(out, h->route) ||
	      sbuf_addf(out, "\"} %lld\n", h->count);
	free(h->route);
	memset(h, 0, sizeof *h);
	return bad;
}

int metrics_render(pb_db *db, sbuf *out, char *err)
{
	sqlite3_stmt *st = NULL;
	struct route_hist h = { 0 };
	sbuf hist;
	int r, rc;
	sbuf_init(&hist, out->max);
	rc = db_prepare(db, "SELECT route, method, status, count, sum_seconds, b0, b1, b2, b3, b4, b5, b6, b7, "
			"b8, b9, b10, b11, b12, b13 FROM request_metrics ORDER BY route, method, status", &st, err);
	if (rc)
		goto out;
	int bad = sbuf_adds(out, "# HELP pbiport_requests_total HTTP requests answered.\n"
			    "# TYPE pbiport_requests_total counter\n") ||
		  sbuf_adds(&hist, "# HELP pbiport_request_duration_seconds Time to answer a request.\n"
			    "# TYPE pbiport_request_duration_seconds histogram\n");
	while (!bad && (r = db_row(db, st, err)) == 1) {
		const char *route = db_col_text(st, 0);
		bad = sbuf_adds(out, "pbiport_requests_total{route=\"") || add_label(out, route) ||
		      sbuf_adds(out, "\",method=\"") || add_label(out, db_col_text(st, 1)) ||
		      sbuf_addf(out, "\",status=\"%d\"} %lld\n", sqlite3_column_int(st, 2),
				(long long)sqlite3_column_int64(st, 3));
		/* rows come ordered by route: a new route closes the previous histogram */
		if (!bad && (!h.route || strcmp(h.route, route))) {
			bad = flush_hist(&hist, &h);
			if (!bad && !(h.route = xstrdup(route))) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				goto out;
			}
		}
		h.count += sqlite3_column_int64(st, 3);
		h.sum += sqlite3_column_double(st, 4);
		for (int i = 0; i < NBUCKETS; i++)
			h.buckets[i] += sqlite3_column_int64(st, 5 + i);
	}
	if (!bad && r < 0) {
		rc = r;
		goto out;
	}
	if (bad || flush_hist(&hist, &h) || sbuf_add(out, sbuf_str(&hist), hist.len))
		rc = pb_err(err, PB_ELIMIT, "metrics text is larger than its ceiling");
out:
	free(h.route);
	db_done(st);
	sbuf_release(&hist);
	return rc;
}
