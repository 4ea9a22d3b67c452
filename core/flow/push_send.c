/* Rows into a push dataset: a body read and checked whole, spooled in chunks, each chunk sent
 * under the rate limiter and marked while its outcome is open (core/flow/push.h). */
#include <ctype.h>
#include <string.h>

#include "core/flow/push_internal.h"
#include "msapi/powerbi.h"
#include "runtime/log.h"
#include "runtime/timeutil.h"

/* ======================================================================== rows */

int push_table_rows_count(pb_db *db, const char *ds_id, const char *table, long *rows, char *err)
{
	db_stmt *st = NULL;
	*rows = 0;
	int rc = db_prepare(db, "SELECT rows FROM push_table_rows WHERE dataset_id = ? AND table_name = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, ds_id, err)) && !(rc = db_bind_text(st, 2, table, err)) &&
	    (rc = db_row(db, st, err)) == 1) {
		*rows = (long)db_col_int64(st, 0);
		rc = 0;
	}
	db_done(st);
	return rc;
}

/* The table's count grows by ?3 rows, capped at ?4 (basicFIFO drops the oldest); ?1 dataset, ?2
 * table. */
#define TABLE_ROWS_ADD                                                                                        \
	"INSERT INTO push_table_rows (dataset_id, table_name, rows) VALUES (?1, ?2, CASE WHEN "                \
	"CAST(?3 AS INTEGER) < CAST(?4 AS INTEGER) THEN CAST(?3 AS INTEGER) ELSE CAST(?4 AS INTEGER) END) "     \
	"ON CONFLICT (dataset_id, table_name) DO UPDATE SET rows = CASE WHEN "                                  \
	"push_table_rows.rows + excluded.rows < ?4 THEN push_table_rows.rows + excluded.rows ELSE ?4 END"

/* set: rows = n; else rows += n, capped at cap (TABLE_ROWS_ADD). */
static int table_rows_add(pb_db *db, const char *ds_id, const char *table, long n, long cap, bool set, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db,
			    set ? "INSERT INTO push_table_rows (dataset_id, table_name, rows) VALUES (?, ?, ?) "
				  "ON CONFLICT (dataset_id, table_name) DO UPDATE SET rows = excluded.rows"
				: TABLE_ROWS_ADD,
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, ds_id, err)) && !(rc = db_bind_text(st, 2, table, err))) {
		db_bind_int64(st, 3, n, NULL);
		if (!set)
			db_bind_int64(st, 4, cap, NULL);
		rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

/* The POST rows body {"rows":[...]} around a chunk's JSON array text, into out (reset first):
 * the converted rows are sent as the text they are, never parsed again. */
static int rows_body(sbuf *out, const char *rows_json, size_t len, char *err)
{
	sbuf_reset(out);
	if (sbuf_adds(out, "{\"rows\":") || sbuf_add(out, rows_json, len) || sbuf_addc(out, '}'))
		return pb_err(err, PB_ENOMEM, "out of memory");
	return 0;
}

long push_retention_cap(const push_ds *d)
{
	return strcmp(d->retention, "basicFIFO") ? 5000000L : 200000L;
}

/* ---- spooled chunks (push_chunks) ----
 * A chunk is queued until a POST of it is granted; it is marked sending (a push_sending row with
 * the limiter's ticket and the time) in the transaction that grants it, leaves both tables in the
 * transaction that adds its rows to the table's count once Power BI accepted it, and is queued
 * again when Power BI answered without adding it. A chunk found sending may or may not have been
 * added: chunk_outcome_find finds out from the table's row count. */


static int chunk_insert(pb_db *db, const char *upload, long seq, const char *rows, size_t len, size_t nrows, char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF];
	pb_now(now);
	int rc = db_prepare(db, "INSERT INTO push_chunks (upload_id, seq, nrows, rows_json, created_at) VALUES (?, ?, ?, ?, ?)",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, upload, err))) {
		db_bind_int64(st, 2, seq, NULL);
		db_bind_int64(st, 3, (int64_t)nrows, NULL);
		if (!(rc = db_bind_textn(st, 4, rows, len, err)) && !(rc = db_bind_text(st, 5, now, err)))
			rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

/* Deletes from push_chunks and push_sending the upload's chunk seq, or all its rows (seq < 0). */
int push_upload_lock(pb_db *db, const char *upload, char *err)
{
	char name[sizeof "push_upload:" + PB_ID_BUF];
	if (xsnprintf(name, sizeof name, "push_upload:%s", upload))
		return pb_err(err, PB_EINVAL, "push upload id too long");
	return db_lock_name(db, name, err);
}

int push_chunks_drop(pb_db *db, const char *upload, long seq_or_all, char *err)
{
	/* SQLite one statement a table; PostgreSQL both in one (a DELETE in a CTE) */
	static const char *const all[] = { "DELETE FROM push_chunks WHERE upload_id = ?1",
					   "DELETE FROM push_sending WHERE upload_id = ?1",
					   "WITH s AS (DELETE FROM push_sending WHERE upload_id = ?1) "
					   "DELETE FROM push_chunks WHERE upload_id = ?1" };
	static const char *const one[] = { "DELETE FROM push_chunks WHERE upload_id = ?1 AND seq = ?2",
					   "DELETE FROM push_sending WHERE upload_id = ?1 AND seq = ?2",
					   "WITH s AS (DELETE FROM push_sending WHERE upload_id = ?1 AND seq = ?2) "
					   "DELETE FROM push_chunks WHERE upload_id = ?1 AND seq = ?2" };
	bool pg = db_dialect(db) == DB_DIALECT_POSTGRESQL;
	int rc = 0;
	for (size_t i = pg ? 2 : 0; !rc && i < (pg ? 3u : 2u); i++) {
		db_stmt *st = NULL;
		rc = db_prepare(db, seq_or_all < 0 ? all[i] : one[i], &st, err);
		if (!rc && !(rc = db_bind_text(st, 1, upload, err))) {
			if (seq_or_all >= 0)
				db_bind_int64(st, 2, seq_or_all, NULL);
			rc = db_exec(db, st, err);
		}
		db_done(st);
	}
	return rc;
}

/* The 'sending' mark of a chunk from rows (a VALUES list or a SELECT) of upload, seq, dataset,
 * table, sending_at_ms, ticket. */
#define SENDING_MARK(rows)                                                                           \
	"INSERT INTO push_sending (upload_id, seq, dataset_id, table_name, sending_at_ms, ticket) " rows \
	" ON CONFLICT (upload_id, seq) DO UPDATE SET sending_at_ms = excluded.sending_at_ms, ticket = excluded.ticket"

/* sending: a POST of the chunk is about to go out under ticket; else it is queued again. */
int push_chunk_mark(pb_db *db, const char *upload, long seq, bool sending, const char *ds_id, const char *table,
		      int64_t now_ms, int64_t ticket, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db,
			    sending ? SENDING_MARK("VALUES (?, ?, ?, ?, ?, ?)")
				    : "DELETE FROM push_sending WHERE upload_id = ? AND seq = ?",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, upload, err))) {
		db_bind_int64(st, 2, seq, NULL);
		if (sending && !(rc = db_bind_text(st, 3, ds_id, err)) && !(rc = db_bind_text(st, 4, table, err))) {
			db_bind_int64(st, 5, now_ms, NULL);
			db_bind_int64(st, 6, ticket, NULL);
		}
		if (!rc)
			rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

/* The upload's next chunk (lowest seq): 1 with *c and its rows in body ({"rows":[...]}), 0 when
 * none is left. The table's row count comes with it, for the grant that follows (grant_work):
 * read a moment before the grant's transaction, where it was read before the lock anyway. */
int push_chunk_next(send_ctx *sc, chunk_ref *c, sbuf *body, char *err)
{
	db_stmt *st = NULL;
	pb_db *db = sc->db;
	sc->have_next_table_rows = false;
	int rc = db_prepare(db, "SELECT c.seq, c.nrows, c.rows_json, s.seq IS NOT NULL, s.sending_at_ms, s.ticket, "
				"COALESCE((SELECT rows FROM push_table_rows WHERE dataset_id = ?1 AND table_name = ?2), 0) "
				"FROM push_chunks c LEFT JOIN push_sending s ON s.upload_id = c.upload_id AND s.seq = c.seq "
				"WHERE c.upload_id = ?3 AND c.seq >= 0 ORDER BY c.seq LIMIT 1",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, sc->d->id, err)) && !(rc = db_bind_text(st, 2, sc->table, err)) &&
	    !(rc = db_bind_text(st, 3, sc->upload, err)) && (rc = db_row(db, st, err)) == 1) {
		c->seq = (long)db_col_int64(st, 0);
		c->nrows = (long)db_col_int64(st, 1);
		c->sending = db_col_int(st, 3) != 0;
		c->sending_at_ms = db_col_int64(st, 4);
		c->ticket = db_col_int64(st, 5);
		sc->next_table_rows = (long)db_col_int64(st, 6);
		sc->have_next_table_rows = true;
		size_t len;
		const char *rows = db_col_textn(st, 2, &len);
		if (!(rc = rows_body(body, rows ? rows : "", len, err)))
			rc = 1;
	}
	db_done(st);
	return rc;
}

/* ---- sending one chunk ---- */


/* PostgreSQL: push_chunk_added's writes of its own in one statement (data-modifying CTEs on four
 * tables, none read): TABLE_ROWS_ADD's ?1-?4, ?5 upload, ?6 seq, ?7 ticket. */
static const char chunk_added_pg[] = "WITH added AS (" TABLE_ROWS_ADD "), chunk AS ("
				     "DELETE FROM push_chunks WHERE upload_id = ?5 AND seq = ?6), sending AS ("
				     "DELETE FROM push_sending WHERE upload_id = ?5 AND seq = ?6) "
				     PUSH_RATE_SENT_SQL("?7");

/* push_chunk_added's writes but on_added's, inside its transaction. */
static int chunk_added_rows(send_ctx *sc, long seq, long nrows, int64_t ticket, char *err)
{
	pb_db *db = sc->db;
	if (db_dialect(db) != DB_DIALECT_POSTGRESQL) {
		int rc = table_rows_add(db, sc->d->id, sc->table, nrows, sc->retention_cap, false, err);
		if (!rc)
			rc = push_chunks_drop(db, sc->upload, seq, err);
		return rc || !ticket ? rc : push_rate_release(db, ticket, true, err);
	}
	db_stmt *st = NULL;
	int rc = db_prepare(db, chunk_added_pg, &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, sc->d->id, err)) && !(rc = db_bind_text(st, 2, sc->table, err)) &&
	    !(rc = db_bind_text(st, 5, sc->upload, err))) {
		db_bind_int64(st, 3, nrows, NULL);
		db_bind_int64(st, 4, sc->retention_cap, NULL);
		db_bind_int64(st, 6, seq, NULL);
		db_bind_int64(st, 7, ticket, NULL);
		rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

int push_chunk_added(send_ctx *sc, long seq, long nrows, int64_t ticket, char *err)
{
	int rc = db_begin(sc->db, err);
	if (rc)
		return rc;
	if (!(rc = chunk_added_rows(sc, seq, nrows, ticket, err)) && sc->on_added)
		rc = sc->on_added(sc, nrows, err);
	return db_end(sc->db, rc, err);
}

/* push_send_chunk's grant: the limiter asked for chunk seq of nrows rows and, granted, the chunk
 * marked 'sending' with its ticket. Run again from the start when it met a concurrent writer. */
struct grant {
	send_ctx *sc;
	long seq, nrows;
	int64_t wait_ms, ticket;
};

/* PostgreSQL: the limiter's record of the granted request and the chunk's 'sending' mark with its
 * ticket in one statement: PUSH_RATE_EVENT_INSERT's ?1 key, ?2 now, ?3 rows; ?4 upload, ?5 seq,
 * ?6 dataset, ?7 table. */
static const char grant_mark_pg[] = "WITH e AS (" PUSH_RATE_EVENT_INSERT("?1", "?2", "?3") "), s AS ("
				    SENDING_MARK("SELECT ?4, ?5, ?6, ?7, ?2, id FROM e") ") SELECT id FROM e";

/* The grant's record and mark on PostgreSQL (push_rate_check granted): *ticket. */
static int grant_mark(pb_db *db, struct grant *g, int64_t now, char *err)
{
	send_ctx *sc = g->sc;
	db_stmt *st = NULL;
	int rc = db_prepare(db, grant_mark_pg, &st, err);
	if (rc || (rc = db_bind_text(st, 1, sc->d->powerbi_id, err)) || (rc = db_bind_text(st, 4, sc->upload, err)) ||
	    (rc = db_bind_text(st, 6, sc->d->id, err)) || (rc = db_bind_text(st, 7, sc->table, err)))
		goto out;
	db_bind_int64(st, 2, now, NULL);
	db_bind_int64(st, 3, g->nrows, NULL);
	db_bind_int64(st, 5, g->seq, NULL);
	if ((rc = db_row(db, st, err)) == 1) {
		g->ticket = db_col_int64(st, 0);
		rc = PB_OK;
	} else if (!rc) {
		rc = pb_err(err, PB_EIO, "the rate limiter recorded nothing");
	}
out:
	db_done(st);
	return rc;
}

static int grant_work(pb_db *db, void *ctx, char *err)
{
	struct grant *g = ctx;
	send_ctx *sc = g->sc;
	long table_rows = 0;
	int64_t now = pb_epoch_ms();
	g->wait_ms = g->ticket = 0;
	int rc = PB_OK;
	if (sc->have_next_table_rows)   /* once: a wait or a rerun reads it again */
		table_rows = sc->next_table_rows;
	else
		rc = push_table_rows_count(db, sc->d->id, sc->table, &table_rows, err);
	sc->have_next_table_rows = false;
	if (rc)
		return rc;
	if (db_dialect(db) == DB_DIALECT_POSTGRESQL) {
		rc = push_rate_check(db, &sc->lim, sc->d->powerbi_id, g->nrows, table_rows, now, &g->wait_ms, err);
		return rc || g->wait_ms ? rc : grant_mark(db, g, now, err);
	}
	if (!(rc = push_rate_acquire(db, &sc->lim, sc->d->powerbi_id, g->nrows, table_rows, now, &g->wait_ms, &g->ticket,
				     err)) &&
	    g->ticket)
		rc = push_chunk_mark(db, sc->upload, g->seq, true, sc->d->id, sc->table, now, g->ticket, err);
	return rc;
}

/* body: a whole {"rows":[...]} text (rows_body) of the upload's chunk seq, of nrows rows. */
int push_send_chunk(send_ctx *sc, long seq, const char *body, size_t len, long nrows, bool wait, bool *refused,
		      char *err)
{
	int rc = 0;
	char rerr[PB_ERR_MAX];
	if (refused)
		*refused = false;
	sc->unknown = false;
	for (int round = 0;; round++) {
		/* the grant and the 'sending' mark in one transaction: a chunk that may be on its way is
		 * never left looking queued */
		struct grant g = { sc, seq, nrows, 0, 0 };
		if ((rc = db_transaction(sc->db, grant_work, &g, err)))
			break;
		int64_t wait_ms = g.wait_ms, ticket = g.ticket;
		if (wait_ms) {
			if (!wait) {
				*refused = true;
				break;
			}
			if (wait_ms > PB_PUSH_WAIT_INLINE_MS) {
				/* an hour-long wait frees the worker: the job comes back when it fits */
				sc->defer_ms = wait_ms;
				rc = pb_err(err, PB_ELIMIT, "waiting %lld s for Power BI's push rate limit",
					    (long long)(wait_ms / 1000));
				break;
			}
			pb_sleep_interruptible(wait_ms, sc->stop);
			if (sc->stop && *sc->stop) {
				rc = pb_err(err, PB_EIO, "stopped while waiting for the push rate limit");
				break;
			}
			round--;
			continue;
		}
		rc = powerbi_push_rows_text(sc->api, sc->d->workspace_id, sc->d->powerbi_id, sc->table, body, len, err);
		sc->requests += sc->api->last.attempts > 0 ? sc->api->last.attempts : 1;
		bool throttled = rc && sc->api->last.failure == MSAPI_RETRY_AFTER;
		if (sc->api->last.attempts > 1 || throttled)
			sc->throttled += sc->api->last.attempts - (rc ? 0 : 1);
		if (!rc) {
			/* in flight no more, counted in the windows: with the chunk's rows, or alone when
			 * they could not be recorded */
			if ((rc = push_chunk_added(sc, seq, nrows, ticket, err)))
				(void)push_rate_release(sc->db, ticket, true, rerr);
			break;
		}
		if (sc->api->last.failure == MSAPI_OUTCOME_UNKNOWN) {
			/* the chunk stays 'sending' and the ticket in flight: the request may still be under
			 * way at Power BI, and the limiter counts it so until inflight_ms has passed */
			sc->unknown = true;
			break;
		}
		/* Power BI answered without adding the rows */
		int rrc = push_chunk_mark(sc->db, sc->upload, seq, false, NULL, NULL, 0, 0, rerr);
		if (!rrc)
			rrc = push_rate_release(sc->db, ticket, !throttled, rerr);
		if (rrc) {
			rc = pb_err(err, rrc, "%s", rerr);
			break;
		}
		if (throttled && !wait) {
			/* the answer-at-once path does not wait out Power BI: the job will */
			*refused = true;
			rc = 0;
			break;
		}
		if (!throttled || round + 1 >= PB_PUSH_THROTTLE_ROUNDS)
			break;
		/* Power BI's own Retry-After is the wait; the limiter is asked again afterwards */
		long ra = sc->api->last.retry_after_s > 0 ? sc->api->last.retry_after_s : 1;
		if (ra * 1000L > PB_PUSH_WAIT_INLINE_MS) {
			/* an hour-long Retry-After frees the worker too: the job comes back then */
			char until[PB_TIME_BUF];
			pb_time_in(ra * 1000LL, until);
			sc->defer_ms = ra * 1000LL;
			rc = pb_err(err, PB_ELIMIT, "Power BI answered 429 with Retry-After %ld s: sending goes on at %s", ra,
				    until);
			break;
		}
		pb_sleep_interruptible(ra * 1000, sc->stop);
		if (sc->stop && *sc->stop)
			break;
	}
	return rc;
}

/* ---- whether a chunk marked 'sending' was added ---- */


/* Other writes that would make the table's row count ambiguous: *busy when a POST rows to the
 * dataset (pbiport's, the limiter's tickets) or a chunk of the table may be under way now;
 * *stuck when another chunk of the table was sent longer ago than a request can take and
 * nobody knows whether it was added. mine (may be NULL): the chunk being asked about. *tracked:
 * pbiport's count of the table, read in the same statement (one round trip for the three). */
static int others_sending(send_ctx *sc, const chunk_ref *mine, int64_t now, bool *busy, bool *stuck, long *tracked,
			  char *err)
{
#define OTHER_CHUNKS "SELECT 1 FROM push_sending WHERE dataset_id = ?4 AND table_name = ?5 " \
		     "AND NOT (upload_id = ?6 AND seq = ?7) AND sending_at_ms "
	db_stmt *st = NULL;
	int rc, row;
	*busy = *stuck = false;
	*tracked = 0;
	if ((rc = db_prepare(sc->db,
			     "SELECT CASE WHEN EXISTS (SELECT 1 FROM push_rate_events WHERE dataset_key = ?1 AND done = 0 "
			     "AND at_ms > ?2 AND id <> ?3) OR EXISTS (" OTHER_CHUNKS "> ?2) THEN 1 ELSE 0 END, "
			     "CASE WHEN EXISTS (" OTHER_CHUNKS "<= ?2) THEN 1 ELSE 0 END, "
			     "COALESCE((SELECT rows FROM push_table_rows WHERE dataset_id = ?4 AND table_name = ?5), 0)",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, sc->d->powerbi_id, err)) || (rc = db_bind_text(st, 4, sc->d->id, err)) ||
	    (rc = db_bind_text(st, 5, sc->table, err)) || (rc = db_bind_text(st, 6, sc->upload, err)))
		goto out;
#undef OTHER_CHUNKS
	db_bind_int64(st, 2, now - sc->lim.inflight_ms, NULL);
	db_bind_int64(st, 3, mine ? mine->ticket : 0, NULL);
	db_bind_int64(st, 7, mine ? mine->seq : -2, NULL);
	if ((row = db_row(sc->db, st, err)) != 1) {
		rc = row < 0 ? row : pb_err(err, PB_EIO, "push dataset %s: no answer from the sending check", sc->d->id);
		goto out;
	}
	*busy = db_col_int(st, 0) != 0;
	*stuck = db_col_int(st, 1) != 0;
	*tracked = (long)db_col_int64(st, 2);
out:
	db_done(st);
	return rc;
}

/* Power BI's count of a table read while no other write could change it. */
typedef struct table_count {
	long tracked;             /* pbiport's count */
	long long counted;        /* Power BI's (when count_rc is 0 and quiet) */
	bool quiet;               /* false: another write was or may have been under way, or pbiport's count moved */
	bool stuck;               /* another chunk of the table has an unknown outcome (others_sending) */
	int count_rc;             /* Power BI could not count: count_err says why */
	char count_err[PB_ERR_MAX];
} table_count;

static int quiet_count(send_ctx *sc, const chunk_ref *mine, table_count *tc, char *err)
{
	bool busy = false;
	long again = 0;
	int rc;
	memset(tc, 0, sizeof *tc);
	if ((rc = others_sending(sc, mine, pb_epoch_ms(), &busy, &tc->stuck, &tc->tracked, err)) || busy || tc->stuck)
		return rc;
	if ((tc->count_rc = powerbi_table_row_count(sc->api, sc->d->workspace_id, sc->d->powerbi_id, sc->table,
						    &tc->counted, tc->count_err)))
		return 0;
	if ((rc = others_sending(sc, mine, pb_epoch_ms(), &busy, &tc->stuck, &again, err)))
		return rc;
	tc->quiet = !busy && !tc->stuck && again == tc->tracked;
	return 0;
}

/* Whether chunk c, marked 'sending', was added, from Power BI's row count of the table against
 * pbiport's own (which counts every chunk pbiport knows was added): the same count means not
 * added (once the request can no longer be under way), the count plus the chunk's rows means
 * added; anything else, another writer. Valid only while pbiport is the table's only writer:
 * other writes in flight make it wait, other unknown chunks make it unknown. why gets the reason
 * for anything but OUTCOME_ADDED (PB_OK: a reason, not a failure); the return is a failure of
 * pbiport's own database. */
int push_chunk_outcome_find(send_ctx *sc, const chunk_ref *c, chunk_outcome *out, int64_t *wait_ms, char *why, char *err)
{
	table_count tc;
	*wait_ms = 0;
	int rc = quiet_count(sc, c, &tc, err);
	if (rc)
		return rc;
	if (tc.stuck) {
		*out = OUTCOME_UNKNOWN;
		return pb_err(why, PB_OK, "another upload to table '%s' also has rows whose outcome is unknown, so the "
			      "row count cannot tell them apart", sc->table);
	}
	if (tc.count_rc) {
		/* asked to wait, or not answered: ask again; refused (or answered with an error): cannot tell */
		msapi_failure kind = sc->api->last.failure;
		bool again = kind == MSAPI_RETRY_AFTER || kind == MSAPI_UNAVAILABLE;
		*out = again ? OUTCOME_WAIT : OUTCOME_UNKNOWN;
		*wait_ms = sc->api->last.retry_after_s > 0 ? sc->api->last.retry_after_s * 1000 : PB_PUSH_OUTCOME_RETRY_MS;
		return pb_err(why, PB_OK, "Power BI could not count the rows of table '%s': %s", sc->table, tc.count_err);
	}
	if (!tc.quiet) {
		*out = OUTCOME_WAIT;
		*wait_ms = PB_PUSH_OUTCOME_POLL_MS;
		return pb_err(why, PB_OK, "other rows are being sent to dataset '%s'", sc->d->name);
	}
	long with = tc.tracked + c->nrows < sc->retention_cap ? tc.tracked + c->nrows : sc->retention_cap;
	if (with == tc.tracked) {
		*out = OUTCOME_UNKNOWN;
		return pb_err(why, PB_OK, "table '%s' holds the %ld rows its basicFIFO retention keeps, so its row count "
			      "does not change when rows are added", sc->table, tc.tracked);
	}
	if (tc.counted == with) {
		*out = OUTCOME_ADDED;
		return 0;
	}
	if (tc.counted == tc.tracked) {
		int64_t left = c->sending_at_ms + sc->lim.inflight_ms - pb_epoch_ms();
		*out = left > 0 ? OUTCOME_WAIT : OUTCOME_NOT_ADDED;
		*wait_ms = left > 0 ? left : 0;
		return left > 0 ? pb_err(why, PB_OK, "Power BI does not hold them yet; the request may still be under way "
						     "there for %lld s",
					 (long long)((left + 999) / 1000))
				: 0;
	}
	*out = OUTCOME_UNKNOWN;
	return pb_err(why, PB_OK, "Power BI counts %lld rows in table '%s' where pbiport expected %ld without them or "
		      "%ld with them: another program writes to this table, or earlier rows had an unknown outcome",
		      tc.counted, sc->table, tc.tracked, with);
}

/* Before a job sends anything: when nothing else writes to the table, pbiport's count of it
 * takes Power BI's (so the outcome of a chunk can be told later even after rows were added
 * outside pbiport, or with an unknown outcome). Best effort: a count that fails changes nothing. */
int push_table_rows_sync(send_ctx *sc, char *err)
{
	table_count tc;
	int rc = quiet_count(sc, NULL, &tc, err);
	if (rc || (!tc.count_rc && !tc.quiet) || tc.stuck)
		return rc;
	if (tc.count_rc) {
		log_event("warn", NULL, "push dataset %s table '%s': %s", sc->d->id, sc->table, tc.count_err);
		return 0;
	}
	if (tc.counted == tc.tracked)
		return 0;
	log_event("info", NULL, "push dataset %s table '%s': Power BI holds %lld rows, pbiport counted %ld; taking Power BI's",
		  sc->d->id, sc->table, tc.counted, tc.tracked);
	return table_rows_add(sc->db, sc->d->id, sc->table, (long)tc.counted, 0, true, err);
}

/* ---- spooling a body ---- */


static int spool_first(spool *sp, char *err)
{
	int rc = chunk_insert(sp->db, sp->upload_id, 0, sp->first, sp->first_len, sp->first_rows, err);
	sp->spilled = true;
	return rc;
}

static int spool_chunk(void *ctx, const char *rows, size_t len, size_t nrows, char *err)
{
	spool *sp = ctx;
	int rc;
	if (sp->seq == 0) {
		sp->seq = 1;
		if (!(sp->first = xstrndup(rows, len)))
			return pb_err(err, PB_ENOMEM, "out of memory");
		sp->first_len = len;
		sp->first_rows = nrows;
		return 0;
	}
	if (!sp->spilled && (rc = spool_first(sp, err)))
		return rc;
	return chunk_insert(sp->db, sp->upload_id, sp->seq++, rows, len, nrows, err);
}

/* Opens the dataset's connection and session. */
int push_ds_session(pb_db *db, const pb_config *cfg, const push_ds *d, push_conn **conn, pbi_session *s, bool *have,
		    pb_failure *f)
{
	int rc = push_conn_for_session(db, d->connection_id, conn, f->message);
	if (!rc && !(rc = push_conn_session(cfg, *conn, s, f)))
		*have = true;
	return rc;
}

/* The table's upload of the rows in sp, which are spooled, goes to a new push_rows job: the
 * job, its ownership of the chunks (the owner row) and the check that the chunks are all still
 * there (the sweep takes chunks nobody owns) commit together, or nothing does. */
static int submit_job(pb_db *db, const push_caller *who, const push_ds *d, const push_table *t, const spool *sp,
		      long total, long requests_before, long throttled_before, char job_id[PB_ID_BUF], pb_failure *f)
{
	db_stmt *st = NULL;
	char key[64], *err = f->message;
	bool existing = false;
	json_t *input = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "upload_id", sp->upload_id, "dataset_id", d->id, "table",
				  t->name, "rows", (json_int_t)total, "requests_before", (json_int_t)requests_before,
				  "throttled_before", (json_int_t)throttled_before);
	char *text = input ? json_dumps(input, JSON_COMPACT) : NULL;
	json_decref(input);
	if (!text)
		return pb_err(err, PB_ENOMEM, "out of memory");
	xsnprintf(key, sizeof key, "push:%s", sp->upload_id);
	pb_job_spec spec = { .kind = "push_rows", .org_id = who->org_id, .user_id = who->user_id, .input = text,
			     .idempotency_key = key, .max_attempts = PB_PUSH_JOB_ATTEMPTS };
	int rc = db_begin(db, err);
	if (rc)
		goto out;
	if ((rc = push_upload_lock(db, sp->upload_id, err)) ||
	    (rc = db_prepare(db, "SELECT count(*) FROM push_chunks WHERE upload_id = ? AND seq >= 0", &st, err)) ||
	    (rc = db_bind_text(st, 1, sp->upload_id, err)) || (rc = db_row(db, st, err)) < 0)
		goto end;
	long spooled = (long)db_col_int64(st, 0);
	rc = 0;
	if (spooled != sp->seq) {
		rc = pb_fail(f, PB_EUNAVAIL, NULL, "the rows of this request were removed as abandoned while it was "
			     "read (%ld of %ld chunks left): send them again", spooled, sp->seq);
		goto end;
	}
	if (!(rc = jobs_submit(db, &spec, job_id, &existing, err)))
		rc = chunk_insert(db, sp->upload_id, SPOOL_OWNER_SEQ, job_id, strlen(job_id), 0, err);
end:
	db_done(st);
	rc = db_end(db, rc, err);
out:
	free(text);
	return rc;
}

int push_rows_ingest(pb_db *db, const pb_config *cfg, const push_caller *who, const char *dataset_id, const char *table,
		     const char *media_type, const push_source *src, int *status, json_t **reply, pb_failure *f)
{
	push_ds *d = NULL;
	push_conn *c = NULL;
	push_reader *rd = NULL;
	pbi_session s = { 0 };
	bool have_session = false, refused = false, unknown = false;
	spool sp = { .db = db };
	long requests_before = 0, throttled_before = 0;
	push_format fmt;
	char *buf = NULL, *err = f->message, job_id[PB_ID_BUF], url[80];
	sbuf body;
	int rc;
	*reply = NULL;
	sbuf_init(&body, PB_PUSH_CHUNK_BODY_MAX);
	if (push_format_from_media_type(media_type, &fmt, err))
		return pb_fail_as(f, PB_EINVAL, NULL);
	if ((rc = push_ds_get(db, who, dataset_id, &d, err)))
		return rc;
	const push_table *t = push_schema_table(&d->schema, table);
	if (!t) {
		rc = pb_fail(f, PB_ENOTFOUND, NULL, "push dataset '%s' has no table '%.100s'", d->name, table);
		goto out;
	}
	if ((rc = pb_new_id(sp.upload_id, err)) ||
	    (rc = push_reader_new(t, fmt, POWERBI_PUSH_ROWS_MAX, spool_chunk, &sp, &rd, err)))
		goto out;
	enum { BUFSZ = 64 * 1024 };
	if (!(buf = malloc(BUFSZ))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		long n = src->read(src->ctx, buf, BUFSZ);
		if (n < 0) {
			rc = pb_fail(f, PB_EINVAL, NULL, "the request body could not be read");
			goto out;
		}
		if (!n)
			break;
		if ((rc = push_reader_feed(rd, buf, (size_t)n, err)))
			break;
	}
	if (!rc)
		rc = push_reader_finish(rd, err);
	if (rc == PB_EINVAL) {
		/* nothing was sent: the whole body is refused */
		rc = pb_fail_as(f, PB_EINVAL, "invalid_rows");
		goto out;
	}
	if (rc)
		goto out;
	long total = (long)push_reader_rows(rd);
	if (!total) {
		rc = pb_fail(f, PB_EINVAL, "invalid_rows", "the body holds no rows");
		goto out;
	}
	if (!sp.spilled) {
		/* one chunk: send it now if the limiter lets us. It is spooled first, so that a POST whose
		 * outcome is unknown leaves it marked 'sending' for the job to find out. */
		send_ctx sc = { .db = db, .d = d, .table = t->name, .retention_cap = push_retention_cap(d), .upload = sp.upload_id };
		push_limits_configured(cfg, &sc.lim);
		if ((rc = push_ds_session(db, cfg, d, &c, &s, &have_session, f)))
			goto out;
		sc.api = &s.api;
		/* a 429 here is not waited out in the web request: msapi gives up soon and the job waits */
		s.api.wait_budget_ms = 2000;
		if ((rc = rows_body(&body, sp.first, sp.first_len, err)) || (rc = spool_first(&sp, err)))
			goto out;
		rc = push_send_chunk(&sc, 0, sbuf_str(&body), body.len, (long)sp.first_rows, false, &refused, err);
		if (rc && !sc.unknown) {
			rc = pbi_session_fail(&s, rc, f);
			goto out;
		}
		if (!rc && !refused) {
			sp.spilled = false; /* sent: the chunk left push_chunks with its rows counted */
			*status = 200;
			*reply = json_pack("{s:I, s:I, s:I}", "rows_accepted", (json_int_t)total, "requests",
					   (json_int_t)sc.requests, "throttled", (json_int_t)sc.throttled);
			rc = *reply ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		/* refused by the limiter or a 429 (queued again), or sent with no answer (still
		 * 'sending'): the job sends it, or first finds out whether Power BI added it */
		rc = 0;
		unknown = sc.unknown;
		requests_before = sc.requests;
		throttled_before = sc.throttled;
	}
	/* the rest runs as a job: the chunks wait in push_chunks (with the calls already made) */
	if ((rc = submit_job(db, who, d, t, &sp, total, requests_before, throttled_before, job_id, f)))
		goto out;
	sp.spilled = false; /* the job owns the chunks now */
	xsnprintf(url, sizeof url, "/api/jobs/%s", job_id);
	*status = 202;
	*reply = json_pack("{s:s, s:s, s:I}", "job_id", job_id, "status_url", url, "rows", (json_int_t)total);
	if (*reply && unknown)
		json_object_set_new(*reply, "warnings",
				    json_pack("[s]", "the connection to Power BI dropped after the rows were sent: the job "
						     "finds out from the table's row count whether they were added before "
						     "sending them again"));
	rc = *reply ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
out:
	if (sp.spilled) {
		char derr[PB_ERR_MAX];
		push_chunks_drop(db, sp.upload_id, -1, derr);
	}
	if (have_session)
		pbi_session_release(&s);
	sbuf_release(&body);
	free(buf);
	free(sp.first);
	push_reader_free(rd);
	push_conn_free(c);
	push_ds_free(d);
	return rc;
}

/* What a call on a push dataset in Power BI holds: the dataset, its connection and a session as
 * that connection (have: open). push_target_release lets go of all of it. */
typedef struct push_target {
	push_ds *d;
	push_conn *c;
	pbi_session s;
	bool have;
} push_target;

static void push_target_release(push_target *tg)
{
	if (tg->have)
		pbi_session_release(&tg->s);
	push_conn_free(tg->c);
	push_ds_free(tg->d);
}

int push_rows_delete(pb_db *db, const pb_config *cfg, const push_caller *who, const char *dataset_id, const char *table,
		     json_t **reply, pb_failure *f)
{
	push_target tg = { 0 };
	char *err = f->message;
	*reply = NULL;
	int rc = push_ds_get(db, who, dataset_id, &tg.d, err);
	if (rc)
		return rc;
	const push_table *t = push_schema_table(&tg.d->schema, table);
	if (!t) {
		rc = pb_fail(f, PB_ENOTFOUND, NULL, "push dataset '%s' has no table '%.100s'", tg.d->name, table);
		goto out;
	}
	if ((rc = push_ds_session(db, cfg, tg.d, &tg.c, &tg.s, &tg.have, f)))
		goto out;
	if ((rc = powerbi_push_delete_rows(&tg.s.api, tg.d->workspace_id, tg.d->powerbi_id, t->name, err))) {
		rc = pbi_session_fail(&tg.s, rc, f);
		goto out;
	}
	if ((rc = table_rows_add(db, tg.d->id, t->name, 0, 0, true, err)))
		goto out;
	*reply = json_pack("{s:s, s:s, s:b}", "dataset_id", tg.d->id, "table", t->name, "cleared", 1);
	rc = *reply ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
out:
	push_target_release(&tg);
	return rc;
}

int push_dataset_delete(pb_db *db, const pb_config *cfg, const push_caller *who, const char *id, pb_failure *f)
{
	push_target tg = { 0 };
	char *err = f->message;
	int rc = push_ds_get(db, who, id, &tg.d, err);
	if (rc)
		return rc;
	if ((rc = push_ds_session(db, cfg, tg.d, &tg.c, &tg.s, &tg.have, f)))
		goto out;
	/* Power BI first: a record whose dataset could not be deleted stays, so the delete can be
	 * asked again (a dataset already gone there counts as deleted) */
	if ((rc = powerbi_dataset_delete(&tg.s.api, tg.d->workspace_id, tg.d->powerbi_id, err))) {
		rc = pbi_session_fail(&tg.s, rc, f);
		goto out;
	}
	/* its table counts go with it (ON DELETE CASCADE); jobs still holding rows for it fail with
	 * "the push dataset was deleted" and drop them */
	const char *which[] = { tg.d->id };
	rc = db_exec_texts(db, "DELETE FROM push_datasets WHERE id = ?", which, 1, err);
out:
	push_target_release(&tg);
	return rc;
}
