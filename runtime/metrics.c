#include "runtime/metrics.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Adds a batch of counts to one row. Constant text; the bucket counts are bound. */
#define BUCKET_ADD(b) b " = request_metrics." b " + excluded." b
static const char sql_add[] =
	"INSERT INTO request_metrics (route, method, status, count, sum_seconds, b0, b1, b2, b3, b4, b5, b6, "
	"b7, b8, b9, b10, b11, b12, b13) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
	"ON CONFLICT (route, method, status) DO UPDATE SET count = request_metrics.count + excluded.count, "
	"sum_seconds = request_metrics.sum_seconds + excluded.sum_seconds, "
	BUCKET_ADD("b0") ", " BUCKET_ADD("b1") ", " BUCKET_ADD("b2") ", " BUCKET_ADD("b3") ", "
	BUCKET_ADD("b4") ", " BUCKET_ADD("b5") ", " BUCKET_ADD("b6") ", " BUCKET_ADD("b7") ", "
	BUCKET_ADD("b8") ", " BUCKET_ADD("b9") ", " BUCKET_ADD("b10") ", " BUCKET_ADD("b11") ", "
	BUCKET_ADD("b12") ", " BUCKET_ADD("b13");
#define SQL_ADD_FIRST_BUCKET 6   /* parameter number of b0 */

/* Counts not yet written, one cell per route, method and status. Cells and their strings stay
 * allocated across flushes (a flush zeroes the counts): the same few routes come back. */
struct cell {
	char *route, *method;
	int status;
	long long count;
	double sum;
	long long buckets[NBUCKETS];
};

static struct {
	struct cell cells[PB_METRICS_BATCH_CELLS];
	size_t ncells;
	long long pending;          /* requests counted since the last flush */
	struct timespec since;      /* when the first of them was counted */
} batch;

static void drop_cells(void)
{
	for (size_t i = 0; i < batch.ncells; i++) {
		free(batch.cells[i].route);
		free(batch.cells[i].method);
	}
	memset(batch.cells, 0, sizeof batch.cells);
	batch.ncells = 0;
}

static struct cell *find_cell(const char *route, const char *method, int status)
{
	for (size_t i = 0; i < batch.ncells; i++) {
		struct cell *c = &batch.cells[i];
		if (c->status == status && !strcmp(c->route, route) && !strcmp(c->method, method))
			return c;
	}
	return NULL;
}

static struct cell *new_cell(const char *route, const char *method, int status)
{
	if (batch.ncells == PB_METRICS_BATCH_CELLS)
		return NULL;
	struct cell *c = &batch.cells[batch.ncells];
	c->route = xstrdup(route);
	c->method = xstrdup(method);
	if (!c->route || !c->method) {
		free(c->route);
		free(c->method);
		memset(c, 0, sizeof *c);
		return NULL;
	}
	c->status = status;
	batch.ncells++;
	return c;
}

int metrics_count(pb_db *db, const char *route, const char *method, int status, double seconds,
		  char *err)
{
	struct cell *c = find_cell(route, method, status);
	int rc = PB_OK;
	if (!c && !(c = new_cell(route, method, status))) {
		/* a full table (or no memory): write what waits, start over with fresh cells */
		if ((rc = metrics_flush(db, err)))
			return rc;
		drop_cells();
		if (!(c = new_cell(route, method, status)))
			return pb_err(err, PB_ENOMEM, "out of memory");
	}
	if (batch.pending++ == 0)
		clock_gettime(CLOCK_MONOTONIC, &batch.since);
	c->count++;
	c->sum += seconds;
	c->buckets[bucket_of(seconds)]++;
	return rc;
}

bool metrics_pending(void)
{
	return batch.pending > 0;
}

bool metrics_due(void)
{
	struct timespec now;
	if (batch.pending == 0)
		return false;
	if (batch.pending >= PB_METRICS_FLUSH_REQUESTS)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (long long)(now.tv_sec - batch.since.tv_sec) * 1000 +
		       (now.tv_nsec - batch.since.tv_nsec) / 1000000;
	return ms >= PB_METRICS_FLUSH_MS;
}

/* metrics_flush's transaction: every cell added to its row. Other processes add to the same rows
 * at the same time; on PostgreSQL two flushes may then deadlock, and db_transaction runs this
 * again (the batch is cleared only once the transaction committed). */
static int flush_work(pb_db *db, void *ctx, char *err)
{
	int rc = PB_OK;
	for (size_t i = 0; !rc && i < batch.ncells; i++) {
		const struct cell *c = &batch.cells[i];
		db_stmt *st = NULL;
		if (!c->count)
			continue;
		if (!(rc = db_prepare(db, sql_add, &st, err)) && !(rc = db_bind_text(st, 1, c->route, err)) &&
		    !(rc = db_bind_text(st, 2, c->method, err))) {
			db_bind_int64(st, 3, c->status, NULL);
			db_bind_int64(st, 4, c->count, NULL);
			db_bind_double(st, 5, c->sum, NULL);
			for (int b = 0; b < NBUCKETS; b++)
				db_bind_int64(st, SQL_ADD_FIRST_BUCKET + b, c->buckets[b], NULL);
			rc = db_exec(db, st, err);
		}
		db_done(st);
	}
	return rc;
}

int metrics_flush(pb_db *db, char *err)
{
	int rc;
	if (batch.pending == 0)
		return PB_OK;
	if ((rc = db_transaction(db, flush_work, NULL, err)))
		return rc;
	/* written: the counts start again from zero; on failure they wait for the next flush */
	for (size_t i = 0; i < batch.ncells; i++) {
		struct cell *c = &batch.cells[i];
		c->count = 0;
		c->sum = 0;
		memset(c->buckets, 0, sizeof c->buckets);
	}
	batch.pending = 0;
	return PB_OK;
}

void metrics_forget(void)
{
	drop_cells();
	batch.pending = 0;
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
	db_stmt *st = NULL;
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
		      sbuf_addf(out, "\",status=\"%d\"} %lld\n", db_col_int(st, 2),
				(long long)db_col_int64(st, 3));
		/* rows come ordered by route: a new route closes the previous histogram */
		if (!bad && (!h.route || strcmp(h.route, route))) {
			bad = flush_hist(&hist, &h);
			if (!bad && !(h.route = xstrdup(route))) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				goto out;
			}
		}
		h.count += db_col_int64(st, 3);
		h.sum += db_col_double(st, 4);
		for (int i = 0; i < NBUCKETS; i++)
			h.buckets[i] += db_col_int64(st, 5 + i);
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
