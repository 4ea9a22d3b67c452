/* The push rate limiter shared by every process: a sliding-window log in push_rate_events
 * (core/store/push_limiter.h). */
#include "core/store/push_limiter.h"

#include <jansson.h>
#include <math.h>

#include "runtime/util.h"

/* ======================================================================== limiter */

static long scaled(long n, double scale)
{
	double v = floor((double)n * scale);
	return v < 1 ? 1 : (long)v;
}

void push_limits_scaled(double scale, push_limits *out)
{
	out->per_minute = scaled(120, scale);
	out->rows_per_hour = scaled(1000000, scale);
	out->pending = scaled(5, scale);
	out->big_table_rows = scaled(250000, scale);
	out->big_per_hour = scaled(120, scale);
	out->inflight_ms = PB_PUSH_INFLIGHT_STALE_MS;
}

void push_limits_configured(const pb_config *cfg, push_limits *out)
{
	push_limits_scaled(cfg->push_rate_scale, out);
	out->inflight_ms = cfg->push_inflight_ms;
}

/* Counts (or sums rows of) the events of key since since_ms; *oldest = the time of the
 * event that must leave the window before `need` more fits under limit. */
static int window(pb_db *db, const char *key, int64_t since_ms, bool sum_rows, bool only_pending, long limit,
		  long need, int64_t *used, int64_t *free_at, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db,
			    only_pending ? "SELECT at_ms, rows FROM push_rate_events WHERE dataset_key = ? AND at_ms > ? "
					   "AND done = 0 ORDER BY at_ms"
					 : "SELECT at_ms, rows FROM push_rate_events WHERE dataset_key = ? AND at_ms > ? "
					   "ORDER BY at_ms",
			    &st, err);
	*used = 0;
	*free_at = 0;
	if (rc || (rc = db_bind_text(st, 1, key, err)))
		goto out;
	db_bind_int64(st, 2, since_ms, NULL);
	/* events in time order: total first, then how many must leave for `need` to fit */
	int64_t total = 0;
	while ((rc = db_row(db, st, err)) == 1)
		total += sum_rows ? db_col_int64(st, 1) : 1;
	if (rc < 0)
		goto out;
	rc = 0;
	*used = total;
	if (total + need <= limit)
		goto out;
	db_rerun(st);
	int64_t excess = total + need - limit;
	while ((rc = db_row(db, st, err)) == 1) {
		excess -= sum_rows ? db_col_int64(st, 1) : 1;
		if (excess <= 0) {
			*free_at = db_col_int64(st, 0);
			break;
		}
	}
	if (rc < 0)
		goto out;
	rc = 0;
	if (!*free_at)
		*free_at = since_ms + 1; /* cannot fit at all: wait the whole window */
out:
	db_done(st);
	return rc;
}

/* push_rate_acquire inside its write transaction. */
static int acquire(pb_db *db, const push_limits *lim, const char *key, long rows, long table_rows, int64_t now_ms,
		   int64_t *wait_ms, int64_t *ticket, char *err)
{
	db_stmt *st = NULL;
	int64_t used, free_at, wait = 0;
	int rc;
	*wait_ms = 0;
	*ticket = 0;
	if ((rc = db_prepare(db, "DELETE FROM push_rate_events WHERE dataset_key = ? AND at_ms <= ?", &st, err)) ||
	    (rc = db_bind_text(st, 1, key, err)))
		goto out;
	db_bind_int64(st, 2, now_ms - 3600 * 1000, NULL);
	rc = db_exec(db, st, err);
	db_done(st);
	st = NULL;
	if (rc)
		goto out;
	struct {
		int64_t period;
		bool rows, pending;
		long limit, need;
		bool on;
	} checks[] = {
		{ 60 * 1000, false, false, lim->per_minute, 1, true },
		{ 3600 * 1000, true, false, lim->rows_per_hour, rows, true },
		{ 3600 * 1000, false, false, lim->big_per_hour, 1, table_rows >= lim->big_table_rows },
		{ lim->inflight_ms, false, true, lim->pending, 1, true },
	};
	for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
		if (!checks[i].on)
			continue;
		if ((rc = window(db, key, now_ms - checks[i].period, checks[i].rows, checks[i].pending, checks[i].limit,
				 checks[i].need, &used, &free_at, err)))
			goto out;
		if (free_at) {
			/* in flight: poll again soon; windows: until the blocking event leaves it */
			int64_t w = checks[i].pending ? 200 : free_at + checks[i].period - now_ms + PB_PUSH_RATE_MARGIN_MS;
			if (w > wait)
				wait = w;
		}
	}
	if (wait > 0) {
		*wait_ms = wait;
		goto out;
	}
	if ((rc = db_prepare(db, "INSERT INTO push_rate_events (dataset_key, at_ms, rows, done) VALUES (?, ?, ?, 0) "
				 "RETURNING id",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, key, err)))
		goto out;
	db_bind_int64(st, 2, now_ms, NULL);
	db_bind_int64(st, 3, rows, NULL);
	if ((rc = db_row(db, st, err)) == 1) {
		*ticket = db_col_int64(st, 0);
		rc = 0;
	} else if (!rc) {
		rc = pb_err(err, PB_EIO, "the rate limiter recorded nothing");
	}
out:
	db_done(st);
	return rc;
}

/* push_rate_acquire's transaction: its arguments and answers. */
struct acquire {
	const push_limits *lim;
	const char *key;
	long rows, table_rows;
	int64_t now_ms, wait_ms, ticket;
};

static int acquire_work(pb_db *db, void *ctx, char *err)
{
	struct acquire *a = ctx;
	char name[PB_ERR_MAX];
	/* every process counting this dataset's windows waits here for the one writing them: the
	 * windows are read, then an event added, and no row lock covers an event not yet there */
	if (xsnprintf(name, sizeof name, "push_rate:%s", a->key))
		return pb_err(err, PB_EINVAL, "push rate limiter: the dataset key is too long");
	int rc = db_lock_name(db, name, err);
	return rc ? rc : acquire(db, a->lim, a->key, a->rows, a->table_rows, a->now_ms, &a->wait_ms, &a->ticket, err);
}

int push_rate_acquire(pb_db *db, const push_limits *lim, const char *key, long rows, long table_rows, int64_t now_ms,
		      int64_t *wait_ms, int64_t *ticket, char *err)
{
	struct acquire a = { lim, key, rows, table_rows, now_ms, 0, 0 };
	int rc = db_transaction(db, acquire_work, &a, err);
	*wait_ms = rc ? 0 : a.wait_ms;
	*ticket = rc ? 0 : a.ticket;
	return rc;
}

int push_rate_release(pb_db *db, int64_t ticket, bool sent, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db, sent ? "UPDATE push_rate_events SET done = 1 WHERE id = ?"
				     : "DELETE FROM push_rate_events WHERE id = ?",
			    &st, err);
	if (!rc) {
		db_bind_int64(st, 1, ticket, NULL);
		rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}
