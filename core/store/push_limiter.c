/* The push rate limiter shared by every process: a sliding-window log in push_rate_events
 * (core/store/push_limiter.h). */
#include "core/store/push_limiter.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

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

/* One event of a dataset's last hour, as the windows count it. */
typedef struct {
	int64_t at_ms, rows;
	bool done;
} rate_event;

/* The dataset's events after ?2 (an hour ago), in time order: every window is counted from this
 * one read. Events older than an hour leave the table first: on PostgreSQL in the same statement
 * (a DELETE in a CTE works on the statement's snapshot, the SELECT only sees rows it keeps), on
 * SQLite in a statement of its own before it. */
#define EVENTS_PRUNE "DELETE FROM push_rate_events WHERE dataset_key = ?1 AND at_ms <= ?2"
#define EVENTS_READ "SELECT at_ms, rows, done FROM push_rate_events WHERE dataset_key = ?1 AND at_ms > ?2 ORDER BY at_ms"

/* Prunes, then reads key's events after since_ms into *out (new, *n of them). */
static int events_read(pb_db *db, const char *key, int64_t since_ms, rate_event **out, size_t *n, char *err)
{
	bool pg = db_dialect(db) == DB_DIALECT_POSTGRESQL;
	db_stmt *st = NULL;
	size_t cap = 0;
	int rc = 0;
	*out = NULL;
	*n = 0;
	for (int pass = pg ? 1 : 0; pass < 2; pass++) {
		db_done(st);
		st = NULL;
		if ((rc = db_prepare(db, pass == 0 ? EVENTS_PRUNE : pg ? "WITH pruned AS (" EVENTS_PRUNE ") " EVENTS_READ : EVENTS_READ,
				     &st, err)) ||
		    (rc = db_bind_text(st, 1, key, err)))
			goto out;
		db_bind_int64(st, 2, since_ms, NULL);
		if (pass == 0 && (rc = db_exec(db, st, err)))
			goto out;
	}
	while ((rc = db_row(db, st, err)) == 1) {
		if (*n == cap) {
			size_t c = cap ? cap * 2 : 32;
			rate_event *v = realloc(*out, c * sizeof *v);
			if (!v) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				goto out;
			}
			*out = v;
			cap = c;
		}
		(*out)[(*n)++] = (rate_event){ db_col_int64(st, 0), db_col_int64(st, 1), db_col_int(st, 2) != 0 };
	}
out:
	db_done(st);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
		return rc;
	}
	return PB_OK;
}

/* A window's count (or sum of rows) of the events after since_ms (only those still in flight
 * when only_pending): 0 when `need` more fits under limit, else the time of the event that must
 * leave the window first (since_ms + 1 when it cannot fit at all: wait the whole window). */
static int64_t window_free_at(const rate_event *ev, size_t n, int64_t since_ms, bool sum_rows, bool only_pending,
			      long limit, long need)
{
	int64_t total = 0;
	for (size_t i = 0; i < n; i++)
		if (ev[i].at_ms > since_ms && !(only_pending && ev[i].done))
			total += sum_rows ? ev[i].rows : 1;
	if (total + need <= limit)
		return 0;
	/* in time order: how many must leave for `need` to fit */
	int64_t excess = total + need - limit;
	for (size_t i = 0; i < n; i++)
		if (ev[i].at_ms > since_ms && !(only_pending && ev[i].done) &&
		    (excess -= sum_rows ? ev[i].rows : 1) <= 0)
			return ev[i].at_ms;
	return since_ms + 1;
}

/* The windows' verdict on a request of rows rows to key at now_ms (inside the write transaction
 * that holds key's lock): *wait_ms 0 when it fits, else how long until it would. */
static int check(pb_db *db, const push_limits *lim, const char *key, long rows, long table_rows, int64_t now_ms,
		 int64_t *wait_ms, char *err)
{
	rate_event *ev = NULL;
	size_t n = 0;
	int64_t wait = 0;
	*wait_ms = 0;
	int rc = events_read(db, key, now_ms - 3600 * 1000, &ev, &n, err);
	if (rc)
		return rc;
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
		int64_t free_at = window_free_at(ev, n, now_ms - checks[i].period, checks[i].rows, checks[i].pending,
						 checks[i].limit, checks[i].need);
		if (free_at) {
			/* in flight: poll again soon; windows: until the blocking event leaves it */
			int64_t w = checks[i].pending ? 200 : free_at + checks[i].period - now_ms + PB_PUSH_RATE_MARGIN_MS;
			if (w > wait)
				wait = w;
		}
	}
	free(ev);
	*wait_ms = wait;
	return PB_OK;
}

/* push_rate_acquire inside its write transaction, key's lock held. */
static int acquire(pb_db *db, const push_limits *lim, const char *key, long rows, long table_rows, int64_t now_ms,
		   int64_t *wait_ms, int64_t *ticket, char *err)
{
	db_stmt *st = NULL;
	*ticket = 0;
	int rc = check(db, lim, key, rows, table_rows, now_ms, wait_ms, err);
	if (rc || *wait_ms)
		return rc;
	if ((rc = db_prepare(db, PUSH_RATE_EVENT_INSERT("?", "?", "?"), &st, err)) || (rc = db_bind_text(st, 1, key, err)))
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

/* Every process counting key's windows waits here for the one writing them: the windows are
 * read, then an event added, and no row lock covers an event not yet there. */
static int lock_key(pb_db *db, const char *key, char *err)
{
	char name[PB_ERR_MAX];
	if (xsnprintf(name, sizeof name, "push_rate:%s", key))
		return pb_err(err, PB_EINVAL, "push rate limiter: the dataset key is too long");
	return db_lock_name(db, name, err);
}

static int acquire_work(pb_db *db, void *ctx, char *err)
{
	struct acquire *a = ctx;
	int rc = lock_key(db, a->key, err);
	return rc ? rc : acquire(db, a->lim, a->key, a->rows, a->table_rows, a->now_ms, &a->wait_ms, &a->ticket, err);
}

int push_rate_check(pb_db *db, const push_limits *lim, const char *key, long rows, long table_rows, int64_t now_ms,
		    int64_t *wait_ms, char *err)
{
	*wait_ms = 0;
	if (!db_in_transaction(db))
		return pb_err(err, PB_EINTERNAL, "push rate limiter: a check outside a write transaction");
	int rc = lock_key(db, key, err);
	return rc ? rc : check(db, lim, key, rows, table_rows, now_ms, wait_ms, err);
}

int push_rate_acquire(pb_db *db, const push_limits *lim, const char *key, long rows, long table_rows, int64_t now_ms,
		      int64_t *wait_ms, int64_t *ticket, char *err)
{
	struct acquire a = { lim, key, rows, table_rows, now_ms, 0, 0 };
	/* in the caller's transaction without a savepoint of its own (two round trips a grant on
	 * PostgreSQL): a failure here fails the caller's transaction, which then rolls back whole */
	int rc = db_in_transaction(db) ? acquire_work(db, &a, err) : db_transaction(db, acquire_work, &a, err);
	*wait_ms = rc ? 0 : a.wait_ms;
	*ticket = rc ? 0 : a.ticket;
	return rc;
}

int push_rate_release(pb_db *db, int64_t ticket, bool sent, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db, sent ? PUSH_RATE_SENT_SQL("?")
				     : "DELETE FROM push_rate_events WHERE id = ?",
			    &st, err);
	if (!rc) {
		db_bind_int64(st, 1, ticket, NULL);
		rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}
