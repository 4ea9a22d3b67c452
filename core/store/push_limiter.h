/* The push rate limiter shared by every process: Power BI's per-dataset limits on POST rows
 * (scaled by PBIPORT_PUSH_RATE_SCALE), kept as a sliding-window log in push_rate_events, which
 * this module owns; checked and written under one write transaction, which holds the dataset's
 * lock (db_lock_name) so that processes on several hosts sharing one database count in turn. */
#ifndef PBIPORT_PUSH_LIMITER_H
#define PBIPORT_PUSH_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/config.h"
#include "runtime/db.h"

/* ---- the shared rate limiter ---- */

typedef struct push_limits {
	long per_minute;        /* POST rows requests per minute per dataset */
	long rows_per_hour;     /* rows per hour per dataset */
	long pending;           /* requests in flight per dataset */
	long big_table_rows;    /* a table holding this many rows slows the dataset to: */
	long big_per_hour;      /* requests per hour */
	long inflight_ms;       /* how long a request may still be under way at Power BI (not scaled) */
} push_limits;

/* Power BI's limits times scale (each at least 1); inflight_ms PB_PUSH_INFLIGHT_STALE_MS. */
void push_limits_scaled(double scale, push_limits *out);
/* The configured limits: Power BI's times PBIPORT_PUSH_RATE_SCALE, in flight for
 * PBIPORT_PUSH_INFLIGHT_S (runtime/config.h). */
void push_limits_configured(const pb_config *cfg, push_limits *out);

/* Asks for one request of rows rows to dataset_key at now_ms, the biggest table holding
 * table_rows. Granted: *wait_ms = 0 and *ticket names the recorded request (release it).
 * Refused: *wait_ms > 0 is how long until it would fit; nothing is recorded. Checked and
 * written in one write transaction, which joins one the caller holds (the grant and what the
 * caller records about it then commit together; a failure then fails the caller's transaction,
 * which must roll back: no savepoint of its own). */
int push_rate_acquire(pb_db *db, const push_limits *lim, const char *dataset_key, long rows, long table_rows,
		      int64_t now_ms, int64_t *wait_ms, int64_t *ticket, char *err);
/* push_rate_acquire without its record of the request, for a caller that writes the record with
 * rows of its own in one statement (core/flow/push_send.c on PostgreSQL). Only inside the
 * caller's write transaction: holds the dataset's lock until that ends and checks the windows;
 * granted (*wait_ms 0), the caller must then run PUSH_RATE_EVENT_INSERT in the same transaction
 * (its RETURNING id is the ticket), or roll back. */
int push_rate_check(pb_db *db, const push_limits *lim, const char *dataset_key, long rows, long table_rows,
		    int64_t now_ms, int64_t *wait_ms, char *err);
/* The record of a granted request: key, at_ms and rows the texts of its parameters ("?", "?1"). */
#define PUSH_RATE_EVENT_INSERT(key, at_ms, rows)                                                 \
	"INSERT INTO push_rate_events (dataset_key, at_ms, rows, done) VALUES (" key ", " at_ms ", " rows \
	", 0) RETURNING id"
/* The request ended: sent (kept in the windows, no longer in flight) or not sent / refused
 * by Power BI (forgotten: it used no budget). */
int push_rate_release(pb_db *db, int64_t ticket, bool sent, char *err);
/* push_rate_release's statement for a sent request, ticket the text of its parameter ("?",
 * "?7"): for a caller that writes the release together with its own rows in one statement
 * (core/flow/push_send.c, an accepted chunk on PostgreSQL). */
#define PUSH_RATE_SENT_SQL(ticket) "UPDATE push_rate_events SET done = 1 WHERE id = " ticket

#endif
