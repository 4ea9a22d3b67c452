#include "runtime/jobs.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/crypto.h"
#include "runtime/json_out.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

/* Every column of a job, in the order job_fixed and job_texts name them. */
#define JOB_COLUMNS                                                                           \
	"id, org_id, user_id, kind, state, phase, progress, attempts, max_attempts, "          \
	"idempotency_key, input, private_input, checkpoint, result, error_code, error_message, " \
	"created_at, updated_at, finished_at, cancel_requested_at, cancel_cleanup, cancelled_by"

const char *const pb_job_states[PB_JOB_NSTATES] = { "queued", "running", "succeeded", "failed", "cancelled" };

bool job_state_valid(const char *state)
{
	for (int i = 0; state && i < PB_JOB_NSTATES; i++)
		if (!strcmp(state, pb_job_states[i]))
			return true;
	return false;
}

bool job_ended(const pb_job *j)
{
	return j->state && strcmp(j->state, "queued") && strcmp(j->state, "running");
}

/* A job's columns (JOB_COLUMNS' order), read and freed through these lists. */
static const db_fixed_field job_fixed[] = {
	DB_FIXED_FIELD(pb_job, id, 0),          DB_FIXED_FIELD(pb_job, org_id, 1),
	DB_FIXED_FIELD(pb_job, user_id, 2),     DB_FIXED_FIELD(pb_job, created_at, 16),
	DB_FIXED_FIELD(pb_job, updated_at, 17), DB_FIXED_FIELD(pb_job, cancelled_by, 21),
};
static const db_text_field job_texts[] = {
	DB_TEXT_FIELD(pb_job, kind, 3),              DB_TEXT_FIELD(pb_job, state, 4),
	DB_TEXT_FIELD(pb_job, phase, 5),             DB_TEXT_FIELD(pb_job, idempotency_key, 9),
	DB_TEXT_FIELD(pb_job, input, 10),            DB_TEXT_FIELD(pb_job, private_input, 11),
	DB_TEXT_FIELD(pb_job, checkpoint, 12),       DB_TEXT_FIELD(pb_job, result, 13),
	DB_TEXT_FIELD(pb_job, error_code, 14),       DB_TEXT_FIELD(pb_job, error_message, 15),
	DB_TEXT_FIELD(pb_job, finished_at, 18),      DB_TEXT_FIELD(pb_job, cancel_requested_at, 19),
};

static int job_more(pb_db *db, db_stmt *st, void *row, void *ctx, char *err)
{
	pb_job *j = row;
	j->progress = db_col_int(st, 6);
	j->attempts = db_col_int(st, 7);
	j->max_attempts = db_col_int(st, 8);
	j->cancel_cleanup = db_col_int(st, 20) != 0;
	return PB_OK;
}

static const db_reader job_reader = DB_READER(pb_job, "job", job_fixed, job_texts, job_more);

void job_free(pb_job *j)
{
	/* sealed, but no reason to leave it lying in freed memory */
	if (j && j->private_input)
		memset(j->private_input, 0, strlen(j->private_input));
	db_reader_free(&job_reader, j);
}

static void copy_fixed(char *dst, size_t size, const char *src)
{
	if (xsnprintf(dst, size, "%s", src))
		dst[0] = '\0';
}

static int find_inflight(pb_db *db, const char *key, char id[PB_ID_BUF], bool *found, char *err)
{
	db_stmt *st = NULL;
	*found = false;
	int rc = db_prepare(db,
			    "SELECT id FROM jobs WHERE idempotency_key = ? AND state IN ('queued', 'running')",
			    &st, err);
	if (!rc)
		rc = db_bind_text(st, 1, key, err);
	if (!rc) {
		int row = db_row(db, st, err);
		if (row == 1) {
			copy_fixed(id, PB_ID_BUF, db_col_text(st, 0));
			*found = true;
		} else if (row < 0) {
			rc = row;
		}
	}
	db_done(st);
	return rc;
}

/* jobs_submit's transaction: ctx the spec, the id it answers and whether that job existed. */
struct submit {
	const pb_job_spec *spec;
	char *id;
	bool existing;
};

/* How often a submit looks for the job in flight again after its insert met one that it could not
 * see yet (another connection's, committed meanwhile). */
#define SUBMIT_ROUNDS 3

/* Inserts the job; an idempotency key already in flight inserts nothing (ON CONFLICT on the
 * partial unique index jobs_inflight_key) and *inserted is false. A concurrent submit of the same
 * key on another connection is waited for by the engine, then counted as a conflict, instead of
 * failing the insert. */
static int insert_job(pb_db *db, const pb_job_spec *s, const char *id, bool *inserted, char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF], due[PB_TIME_BUF];
	pb_now(now);
	pb_time_in(s->delay_ms, due);
	*inserted = false;
	int rc = db_prepare(db,
			    "INSERT INTO jobs (id, org_id, user_id, kind, state, progress, attempts, "
			    "max_attempts, run_after, idempotency_key, input, private_input, checkpoint, "
			    "created_at, updated_at) "
			    "VALUES (?, ?, ?, ?, 'queued', 0, 0, ?, ?, ?, ?, ?, '{}', ?, ?) "
			    "ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL "
			    "AND state IN ('queued', 'running') DO NOTHING",
			    &st, err);
	if (rc)
		goto out;
	db_bind_int64(st, 5, s->max_attempts > 0 ? s->max_attempts : PB_JOB_DEFAULT_ATTEMPTS, NULL);
	if ((rc = db_bind_text(st, 1, id, err)) || (rc = db_bind_text(st, 2, s->org_id, err)) ||
	    (rc = db_bind_text(st, 3, s->user_id, err)) || (rc = db_bind_text(st, 4, s->kind, err)) ||
	    (rc = db_bind_text(st, 6, due, err)) || (rc = db_bind_text(st, 7, s->idempotency_key, err)) ||
	    (rc = db_bind_text(st, 8, s->input ? s->input : "{}", err)) ||
	    (rc = db_bind_text(st, 9, s->private_input, err)) || (rc = db_bind_text(st, 10, now, err)) ||
	    (rc = db_bind_text(st, 11, now, err)) || (rc = db_exec(db, st, err)))
		goto out;
	*inserted = db_changes(db) == 1;
out:
	db_done(st);
	return rc;
}

static int submit_work(pb_db *db, void *ctx, char *err)
{
	struct submit *sb = ctx;
	const pb_job_spec *s = sb->spec;
	bool inserted = false;
	int rc = PB_OK;
	sb->existing = false;
	for (int round = 0; round < SUBMIT_ROUNDS; round++) {
		if (s->idempotency_key && (rc = find_inflight(db, s->idempotency_key, sb->id, &sb->existing, err)))
			return rc;
		if (sb->existing)
			return PB_OK;
		if ((rc = pb_new_id(sb->id, err)) || (rc = insert_job(db, s, sb->id, &inserted, err)))
			return rc;
		if (inserted)
			return PB_OK;
	}
	return pb_err(err, PB_EUNAVAIL, "job %s: its idempotency key stayed taken by a job that could not be read: "
		      "try again", s->kind);
}

int jobs_submit(pb_db *db, const pb_job_spec *s, char id[PB_ID_BUF], bool *existing, char *err)
{
	struct submit sb = { s, id, false };
	int rc = db_transaction(db, submit_work, &sb, err);
	if (existing)
		*existing = !rc && sb.existing;
	return rc;
}

int jobs_get(pb_db *db, const char *id, pb_job **out, char *err)
{
	void *j;
	int rc = db_get_one(db, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?", &id, 1, &job_reader, NULL, id, &j, err);
	*out = j;
	return rc;
}

static json_t *json_or_null(const char *text)
{
	if (!text)
		return json_null();
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
	return v ? v : json_string(text);
}

static const char *or_null(const char *s)
{
	return s && *s ? s : NULL;
}

json_t *job_json(const pb_job *j)
{
	json_t *error = json_null(), *cancel = json_null();
	if (j->error_code || j->error_message)
		error = json_pack("{s:s?,s:s?}", "code", j->error_code, "message", j->error_message);
	if (j->cancel_requested_at)
		cancel = json_pack("{s:s,s:b,s:s?}", "requested_at", j->cancel_requested_at, "cleanup",
				   j->cancel_cleanup, "by", or_null(j->cancelled_by));
	return json_pack("{s:s,s:s,s:s,s:s?,s:i,s:i,s:o,s:o,s:s?,s:s,s:s,s:s?,s:o}", "id", j->id, "kind", j->kind,
			 "state", j->state, "phase", j->phase, "progress", j->progress, "attempts",
			 j->attempts, "error", error ? error : json_null(), "result", json_or_null(j->result),
			 "user_id", or_null(j->user_id), "created_at", j->created_at, "updated_at", j->updated_at,
			 "finished_at", j->finished_at, "cancel", cancel ? cancel : json_null());
}

json_t *jobs_json(pb_job *const *v, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; list && i < n; i++)
		json_out_list_add_new(&list, job_json(v[i]));
	return list;
}

static json_t *phase_json(db_stmt *st, void *ctx)
{
	return json_pack("{s:s,s:s,s:i}", "phase", db_col_text(st, 0), "started_at", db_col_text(st, 1), "attempt",
			 db_col_int(st, 2));
}

int jobs_phases_json(pb_db *db, const char *id, json_t **out, char *err)
{
	return db_list_json(db, "SELECT phase, started_at, attempt FROM job_phases WHERE job_id = ? ORDER BY seq", &id,
			    1, 0, phase_json, NULL, out, err);
}

void jobs_list_free(pb_job **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		job_free(v[i]);
	free(v);
}

int jobs_list(pb_db *db, const pb_job_filter *f, const pb_page *page, pb_job ***out, size_t *n,
	      char next_cursor[PB_PAGE_CURSOR_BUF], char *err)
{
	db_stmt *st = NULL;
	pb_job **v = NULL;
	size_t count = 0;
	bool more = false;
	int rc = PB_OK;
	*out = NULL;
	*n = 0;
	next_cursor[0] = '\0';
	if (page->limit < 1)
		return pb_err(err, PB_EINVAL, "limit: at least 1");
	if (!(v = calloc((size_t)page->limit, sizeof *v)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	if ((rc = db_prepare(db,
			     "SELECT " JOB_COLUMNS " FROM jobs WHERE org_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR user_id = ?2) "
			     "AND (CAST(?3 AS TEXT) IS NULL OR kind = ?3) AND (CAST(?4 AS TEXT) IS NULL OR state = ?4) "
			     "AND (CAST(?5 AS TEXT) IS NULL OR created_at < ?5 OR (created_at = ?5 AND id < ?6)) "
			     "ORDER BY created_at DESC, id DESC LIMIT ?7",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, f->org_id, err)) || (rc = db_bind_text(st, 2, f->user_id, err)) ||
	    (rc = db_bind_text(st, 3, f->kind, err)) || (rc = db_bind_text(st, 4, f->state, err)) ||
	    (rc = db_bind_text(st, 5, page->after ? page->at : NULL, err)) ||
	    (rc = db_bind_text(st, 6, page->after ? page->id : NULL, err)))
		goto out;
	db_bind_int64(st, 7, page->limit + 1, NULL);   /* one more tells whether a next page exists */
	for (;;) {
		int row = db_row(db, st, err);
		if (row <= 0) {
			rc = row;
			break;
		}
		if (count == (size_t)page->limit) {
			more = true;
			break;
		}
		if (!(v[count] = malloc(sizeof *v[count]))) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			break;
		}
		if ((rc = db_read_row(db, st, &job_reader, v[count], NULL, err))) {
			free(v[count]);
			break;
		}
		count++;
	}
	if (!rc && more)
		rc = pb_page_cursor(v[count - 1]->created_at, v[count - 1]->id, next_cursor, err);
out:
	db_done(st);
	if (rc) {
		jobs_list_free(v, count);
		return rc;
	}
	*out = v;
	*n = count;
	return PB_OK;
}

/* The kinds a claim takes, as parameters ?2 .. ?(1 + PB_JOB_CLAIM_KINDS_MAX) of a constant
 * statement (unused ones NULL, which match nothing): the filter runs in SQL, so jobs of kinds
 * this worker does not know are never read, let alone touched. */
#define CLAIM_KINDS "(?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
_Static_assert(PB_JOB_CLAIM_KINDS_MAX == 16, "CLAIM_KINDS lists PB_JOB_CLAIM_KINDS_MAX parameters");

static int bind_kinds(db_stmt *st, const char *const *kinds, char *err)
{
	int rc = 0;
	for (int i = 0; !rc && i < PB_JOB_CLAIM_KINDS_MAX; i++) {
		const char *k = kinds && *kinds ? *kinds++ : NULL;
		rc = db_bind_text(st, 2 + i, k, err);
	}
	return rc;
}

/* The jobs a claim may take: kinds as CLAIM_KINDS, ?1 now. A running job whose lease expired with
 * no attempts left is not one of them: it is failed (EXHAUSTED), in the same claim. */
#define CLAIM_DUE                                                                                    \
	"((state = 'queued' AND run_after <= ?1) OR "                                                 \
	"(state = 'running' AND lease_expires < ?1 AND attempts < max_attempts)) AND kind IN " CLAIM_KINDS
#define EXHAUSTED "state = 'running' AND lease_expires < ?1 AND attempts >= max_attempts AND kind IN " CLAIM_KINDS
/* Fails every running job of kinds whose lease expired and that has no attempts left: its worker
 * died on the last try. */
#define FAIL_EXHAUSTED(where)                                                                        \
	"UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_expires = NULL, "                \
	"private_input = NULL, error_code = 'worker_lost', "                                          \
	"error_message = 'the worker running this job stopped ' || CAST(attempts AS TEXT) || "       \
	"' times; giving up', updated_at = ?1, finished_at = ?1 WHERE " where
/* Takes the oldest due job (?18 the worker, ?19 its lease's end) and answers its row as it is now. */
#define CLAIM_OLDEST(lock)                                                                           \
	"UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?18, "             \
	"lease_expires = ?19, updated_at = ?1 WHERE id = (SELECT id FROM jobs WHERE " CLAIM_DUE        \
	" ORDER BY run_after, created_at LIMIT 1" lock ") RETURNING " JOB_COLUMNS
/* PostgreSQL: both in one statement, so a claim is one round trip to the server (autocommit: the
 * statement is its own transaction). Several claimers run at once: a row another claimer has
 * locked is skipped, so each takes (or fails) a different job without waiting for the others; a
 * row another claimer took meanwhile no longer matches when it is locked (READ COMMITTED reads
 * the newest version) and the next one is taken. The two parts touch disjoint rows (CLAIM_DUE
 * leaves out what EXHAUSTED takes). */
#define CLAIM_PG                                                                                     \
	"WITH failed AS (" FAIL_EXHAUSTED("id IN (SELECT id FROM jobs WHERE " EXHAUSTED                 \
					  " FOR UPDATE SKIP LOCKED)") ") "                                \
	CLAIM_OLDEST(" FOR UPDATE SKIP LOCKED")

/* jobs_claim's work: ctx what it claims with, and the job it claimed (NULL for none). */
struct claim {
	const char *worker;
	long lease_ms;
	const char *const *kinds;
	pb_job *job;
};

/* Runs the claim statement sql (?1 now, kinds, ?18 worker, ?19 lease end); c->job is the row
 * it answered, if any. */
static int claim_run(pb_db *db, const char *sql, struct claim *c, const char *now, char *err)
{
	db_stmt *st = NULL;
	char until[PB_TIME_BUF];
	pb_time_in(c->lease_ms, until);
	int rc = db_prepare(db, sql, &st, err), row;
	if (rc || (rc = db_bind_text(st, 1, now, err)) || (rc = bind_kinds(st, c->kinds, err)) ||
	    (rc = db_bind_text(st, 18, c->worker, err)) || (rc = db_bind_text(st, 19, until, err)))
		goto out;
	if ((row = db_row(db, st, err)) <= 0) {
		rc = row;
		goto out;
	}
	if (!(c->job = calloc(1, sizeof *c->job)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	else if ((rc = db_read_row(db, st, &job_reader, c->job, NULL, err))) {
		free(c->job);
		c->job = NULL;
	}
	/* finish the statement before COMMIT: RETURNING keeps it active */
	while (!rc && (row = db_row(db, st, err)) == 1)
		;
	if (!rc && row < 0)
		rc = row;
out:
	db_done(st);
	return rc;
}

/* SQLite's claim: BEGIN IMMEDIATE lets one claimer in at a time; the exhausted jobs are failed
 * first, then the oldest due one is taken. */
static int claim_work(pb_db *db, void *ctx, char *err)
{
	struct claim *c = ctx;
	db_stmt *st = NULL;
	char now[PB_TIME_BUF];
	job_free(c->job);   /* a transaction run again starts over */
	c->job = NULL;
	pb_now(now);
	int rc = db_prepare(db, FAIL_EXHAUSTED(EXHAUSTED), &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, now, err)) && !(rc = bind_kinds(st, c->kinds, err)))
		rc = db_exec(db, st, err);
	db_done(st);
	return rc ? rc : claim_run(db, CLAIM_OLDEST(""), c, now, err);
}

int jobs_claim(pb_db *db, const char *worker, long lease_ms, const char *const *kinds, pb_job **out,
	       char *err)
{
	struct claim c = { worker, lease_ms, kinds, NULL };
	size_t nkinds = 0;
	char now[PB_TIME_BUF];
	*out = NULL;
	while (kinds && kinds[nkinds])
		nkinds++;
	if (nkinds == 0 || nkinds > PB_JOB_CLAIM_KINDS_MAX)
		return pb_err(err, PB_EINVAL, "a worker claims from 1 to %d job kinds, not %zu", PB_JOB_CLAIM_KINDS_MAX,
			      nkinds);
	int rc;
	if (db_dialect(db) == DB_DIALECT_POSTGRESQL) {
		pb_now(now);
		rc = claim_run(db, CLAIM_PG, &c, now, err);
	} else {
		rc = db_transaction(db, claim_work, &c, err);
	}
	if (rc || !c.job) {
		job_free(c.job);
		return rc;
	}
	*out = c.job;
	return 1;
}

/* Runs sql, an UPDATE of the n texts v whose last two are (id, worker), which must touch the one
 * row this worker holds; PB_ENOTFOUND when the lease is gone. */
static int update_held(pb_db *db, const char *sql, const char *const *v, int n, char *err)
{
	int rc = db_exec_texts(db, sql, v, n, err);
	if (!rc && db_changes(db) != 1)
		rc = pb_err(err, PB_ENOTFOUND, "the job's lease was lost to another worker");
	return rc;
}

int jobs_renew(pb_db *db, const char *id, const char *worker, long lease_ms, char *err)
{
	return jobs_update(db, id, worker, lease_ms, NULL, -1, NULL, err);
}

int jobs_update(pb_db *db, const char *id, const char *worker, long lease_ms, const char *phase,
		int progress, const char *checkpoint, char *err)
{
	return jobs_progress(db, id, worker, lease_ms, phase, progress, checkpoint, NULL, err);
}

/* SQLite (PostgreSQL: PROGRESS_PG). Adds phase to the job's history unless it is the last one
 * recorded for this attempt (a phase re-entered with new progress is one phase), within
 * PB_JOB_PHASES_MAX entries. With stop_on_cancel, a pending cancel request adds nothing and sets
 * *cancelled: the job stops instead of entering the phase. */
static int record_phase(pb_db *db, const char *id, const char *worker, const char *phase, const char *now,
			bool stop_on_cancel, bool *cancelled, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db,
			    "SELECT j.attempts, p.seq, p.phase, p.attempt, j.cancel_requested_at IS NOT NULL "
			    "FROM jobs j LEFT JOIN job_phases p "
			    "ON p.job_id = j.id AND p.seq = (SELECT MAX(seq) FROM job_phases WHERE job_id = j.id) "
			    "WHERE j.id = ? AND j.lease_owner = ? AND j.state = 'running'",
			    &st, err), row;
	if (rc || (rc = db_bind_text(st, 1, id, err)) || (rc = db_bind_text(st, 2, worker, err)))
		goto out;
	if ((row = db_row(db, st, err)) <= 0) {
		rc = row;   /* no row: the lease is gone, which the update reports */
		goto out;
	}
	int attempt = db_col_int(st, 0), last_seq = db_col_int(st, 1);
	*cancelled = stop_on_cancel && db_col_int(st, 4);
	bool same = !db_col_is_null(st, 1) && !strcmp(db_col_text(st, 2), phase) &&
		    db_col_int(st, 3) == attempt;
	db_done(st);
	st = NULL;
	if (same || *cancelled || last_seq >= PB_JOB_PHASES_MAX)
		goto out;
	if ((rc = db_prepare(db, "INSERT INTO job_phases (job_id, seq, phase, attempt, started_at) "
				 "VALUES (?, ?, ?, ?, ?)", &st, err)) ||
	    (rc = db_bind_text(st, 1, id, err)) || (rc = db_bind_text(st, 3, phase, err)) ||
	    (rc = db_bind_text(st, 5, now, err)))
		goto out;
	db_bind_int64(st, 2, last_seq + 1, NULL);
	db_bind_int64(st, 4, attempt, NULL);
	rc = db_exec(db, st, err);
out:
	db_done(st);
	return rc;
}

/* jobs_progress's work: what it records, and where it says whether a cancel is pending (SQLite's
 * work is progress_work, PostgreSQL's progress_pg). */
struct progress {
	const char *id, *worker, *phase, *checkpoint;
	long lease_ms;
	int progress;
	bool *cancel;
};

/* Reads the answer of a progress update st (its one row: whether a cancel is pending, into *cancel
 * when not NULL): PB_ENOTFOUND when no row, the lease being gone. */
static int progress_answer(pb_db *db, db_stmt *st, bool *cancel, char *err)
{
	int row = db_row(db, st, err);
	if (row < 0)
		return row;
	if (row == 0)
		return pb_err(err, PB_ENOTFOUND, "the job's lease was lost to another worker");
	if (cancel)
		*cancel = db_col_int(st, 0) != 0;
	/* finish the statement before COMMIT: RETURNING keeps it active */
	while ((row = db_row(db, st, err)) == 1)
		;
	return row;
}

static int progress_work(pb_db *db, void *ctx, char *err)
{
	const struct progress *p = ctx;
	db_stmt *st = NULL;
	char now[PB_TIME_BUF], until[PB_TIME_BUF];
	const char *phase = p->phase;
	int progress = p->progress, rc = PB_OK;
	bool stopped = false;
	pb_now(now);
	pb_time_in(p->lease_ms, until);
	if (p->cancel)
		*p->cancel = false;
	if (phase && !(rc = record_phase(db, p->id, p->worker, phase, now, p->cancel != NULL, &stopped, err)) &&
	    stopped) {
		phase = NULL;   /* cancelled: the job does not enter it */
		progress = -1;
	}
	if (!rc)
		rc = db_prepare(db,
				"UPDATE jobs SET lease_expires = ?, updated_at = ?, phase = COALESCE(?, phase), "
				"progress = CASE WHEN ? < 0 THEN progress ELSE ? END, "
				"checkpoint = COALESCE(?, checkpoint) "
				"WHERE id = ? AND lease_owner = ? AND state = 'running' "
				"RETURNING cancel_requested_at IS NOT NULL",
				&st, err);
	if (rc)
		goto out;
	db_bind_int64(st, 4, progress, NULL);
	db_bind_int64(st, 5, progress > 100 ? 100 : progress, NULL);
	if ((rc = db_bind_text(st, 1, until, err)) || (rc = db_bind_text(st, 2, now, err)) ||
	    (rc = db_bind_text(st, 3, phase, err)) || (rc = db_bind_text(st, 6, p->checkpoint, err)) ||
	    (rc = db_bind_text(st, 7, p->id, err)) || (rc = db_bind_text(st, 8, p->worker, err)))
		goto out;
	rc = progress_answer(db, st, p->cancel, err);
out:
	db_done(st);
	return rc;
}

/* PostgreSQL: jobs_progress in one statement (one round trip; autocommit makes it one
 * transaction): the update of the job, and the phase history entry when ?3 (the phase) is new for
 * this attempt. ?1 lease end, ?2 now, ?4/?5 progress (<0 keeps it), ?6 checkpoint, ?7 id, ?8 worker,
 * ?9 1 when a pending cancel stops the job before the phase, ?10 PB_JOB_PHASES_MAX. The history's
 * last entry is read in the statement's snapshot: only this lease's holder writes the job's
 * phases, and the update has locked its row. */
#define PROGRESS_PG                                                                                  \
	"WITH j AS (UPDATE jobs SET lease_expires = ?1, updated_at = ?2, "                            \
	"phase = CASE WHEN ?9 = 1 AND cancel_requested_at IS NOT NULL THEN phase "                    \
	"ELSE COALESCE(CAST(?3 AS TEXT), phase) END, "                                                \
	"progress = CASE WHEN ?4 < 0 OR (?9 = 1 AND cancel_requested_at IS NOT NULL AND "             \
	"CAST(?3 AS TEXT) IS NOT NULL) THEN progress ELSE ?5 END, "                                   \
	"checkpoint = COALESCE(CAST(?6 AS TEXT), checkpoint) "                                         \
	"WHERE id = ?7 AND lease_owner = ?8 AND state = 'running' "                                   \
	"RETURNING attempts, cancel_requested_at IS NOT NULL AS cancel), "                             \
	"last AS (SELECT seq, phase, attempt FROM job_phases WHERE job_id = ?7 ORDER BY seq DESC LIMIT 1), " \
	"added AS (INSERT INTO job_phases (job_id, seq, phase, attempt, started_at) "                  \
	"SELECT ?7, COALESCE(l.seq, 0) + 1, CAST(?3 AS TEXT), j.attempts, ?2 FROM j LEFT JOIN last l ON TRUE " \
	"WHERE CAST(?3 AS TEXT) IS NOT NULL AND NOT (?9 = 1 AND j.cancel) AND COALESCE(l.seq, 0) < ?10 " \
	"AND (l.seq IS NULL OR l.phase <> CAST(?3 AS TEXT) OR l.attempt <> j.attempts)) "             \
	"SELECT CASE WHEN cancel THEN 1 ELSE 0 END FROM j"

static int progress_pg(pb_db *db, const struct progress *p, char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF], until[PB_TIME_BUF];
	pb_now(now);
	pb_time_in(p->lease_ms, until);
	int rc = db_prepare(db, PROGRESS_PG, &st, err);
	if (rc || (rc = db_bind_text(st, 1, until, err)) || (rc = db_bind_text(st, 2, now, err)) ||
	    (rc = db_bind_text(st, 3, p->phase, err)) || (rc = db_bind_text(st, 6, p->checkpoint, err)) ||
	    (rc = db_bind_text(st, 7, p->id, err)) || (rc = db_bind_text(st, 8, p->worker, err)))
		goto out;
	db_bind_int64(st, 4, p->progress, NULL);
	db_bind_int64(st, 5, p->progress > 100 ? 100 : p->progress, NULL);
	db_bind_int64(st, 9, p->cancel ? 1 : 0, NULL);
	db_bind_int64(st, 10, PB_JOB_PHASES_MAX, NULL);
	rc = progress_answer(db, st, p->cancel, err);
out:
	db_done(st);
	return rc;
}

int jobs_progress(pb_db *db, const char *id, const char *worker, long lease_ms, const char *phase,
		  int progress, const char *checkpoint, bool *cancel, char *err)
{
	struct progress p = { id, worker, phase, checkpoint, lease_ms, progress, cancel };
	if (cancel)
		*cancel = false;
	if (db_dialect(db) == DB_DIALECT_POSTGRESQL)
		return progress_pg(db, &p, err);
	/* SQLite: a new phase and its history entry are written together; a lease renewal alone is one
	 * statement */
	return phase ? db_transaction(db, progress_work, &p, err) : progress_work(db, &p, err);
}

/* Ends a running job held by worker in state (succeeded, failed, cancelled). */
static int finish_as(pb_db *db, const char *id, const char *worker, const char *state, const char *result,
		     const char *code, const char *message, char *err)
{
	char now[PB_TIME_BUF];
	pb_now(now);
	const char *args[] = { state, state, result, code, message, now, now, id, worker };
	return update_held(db,
			   "UPDATE jobs SET state = ?, progress = CASE WHEN ? = 'succeeded' THEN 100 "
			   "ELSE progress END, result = ?, error_code = ?, error_message = ?, "
			   "private_input = NULL, lease_owner = NULL, lease_expires = NULL, "
			   "updated_at = ?, finished_at = ? "
			   "WHERE id = ? AND lease_owner = ? AND state = 'running'",
			   args, 9, err);
}

int jobs_finish(pb_db *db, const char *id, const char *worker, bool ok, const char *result,
		const char *code, const char *message, char *err)
{
	return finish_as(db, id, worker, ok ? "succeeded" : "failed", result, ok ? NULL : code, ok ? NULL : message,
			 err);
}

int jobs_finish_cancelled(pb_db *db, const char *id, const char *worker, const char *result, const char *message,
			  char *err)
{
	return finish_as(db, id, worker, "cancelled", result, "cancelled", message, err);
}

/* Ends a queued job as cancelled at once (inside jobs_cancel's transaction). */
static int cancel_queued(pb_db *db, const char *id, const char *by_user, const char *now, char *err)
{
	const char *v[] = { now, by_user, id };
	return db_exec_texts(db,
			     "UPDATE jobs SET state = 'cancelled', cancel_requested_at = ?1, cancelled_by = ?2, "
			     "error_code = 'cancelled', error_message = CASE WHEN attempts = 0 "
			     "THEN 'cancelled before it ran' ELSE 'cancelled while waiting to be retried' END, "
			     "private_input = NULL, updated_at = ?1, finished_at = ?1 WHERE id = ?3 AND state = 'queued'",
			     v, 3, err);
}

/* Records a cancel request for a worker to carry out; a queued job becomes due now. */
static int request_cancel(pb_db *db, const char *id, const char *by_user, bool cleanup, const char *now, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db,
			    "UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, ?1), "
			    "cancelled_by = COALESCE(cancelled_by, ?2), "
			    "cancel_cleanup = CASE WHEN ?3 = 1 THEN 1 ELSE cancel_cleanup END, "
			    "run_after = CASE WHEN state = 'queued' THEN ?1 ELSE run_after END, updated_at = ?1 "
			    "WHERE id = ?4 AND state IN ('queued', 'running')",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, now, err)) && !(rc = db_bind_text(st, 2, by_user, err)) &&
	    db_bind_int64(st, 3, cleanup ? 1 : 0, NULL) == PB_OK && !(rc = db_bind_text(st, 4, id, err)))
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

/* jobs_cancel's transaction: what is asked, and what was done. */
struct cancel {
	const char *id, *by_user;
	bool cleanup;
	pb_cancel_outcome outcome;
};

static int cancel_work(pb_db *db, void *ctx, char *err)
{
	struct cancel *c = ctx;
	db_stmt *st = NULL;
	char now[PB_TIME_BUF], missing[PB_ERR_MAX];
	pb_now(now);
	xsnprintf(missing, sizeof missing, "no job %s", c->id);
	/* the row is locked as it is read (PostgreSQL): a worker cannot claim the job between the
	 * read of its state and the cancel written from it */
	int rc = db_first_row(db, DB_LOCKING(db, "SELECT state, checkpoint, cancel_cleanup FROM jobs WHERE id = ?",
					     "FOR UPDATE"),
			      &c->id, 1, missing, &st, err);
	if (rc)
		goto out;
	bool queued = !strcmp(db_col_text(st, 0), "queued"), running = !strcmp(db_col_text(st, 0), "running");
	/* a queued job created nothing unless an earlier attempt checkpointed it */
	bool to_clean = (c->cleanup || db_col_int(st, 2)) && strcmp(db_col_text(st, 1), "{}");
	db_done(st);
	st = NULL;
	if (!queued && !running)
		c->outcome = PB_CANCEL_ENDED;
	else if (queued && !to_clean) {
		c->outcome = PB_CANCEL_DONE;
		rc = cancel_queued(db, c->id, c->by_user, now, err);
	} else {
		c->outcome = PB_CANCEL_REQUESTED;
		rc = request_cancel(db, c->id, c->by_user, c->cleanup, now, err);
	}
out:
	db_done(st);
	return rc;
}

int jobs_cancel(pb_db *db, const char *id, const char *by_user, bool cleanup, pb_cancel_outcome *outcome,
		char *err)
{
	struct cancel c = { id, by_user, cleanup, PB_CANCEL_ENDED };
	int rc = db_transaction(db, cancel_work, &c, err);
	*outcome = c.outcome;
	return rc;
}

/* Puts a running job back in the queue for after delay_ms; counted: whether the claim
 * that ends here stays counted as an attempt (the claim added it). */
static int requeue(pb_db *db, const char *id, const char *worker, long delay_ms, const char *code,
		   const char *message, bool counted, char *err)
{
	char now[PB_TIME_BUF], due[PB_TIME_BUF];
	pb_now(now);
	pb_time_in(delay_ms, due);
	const char *args[] = { due, code, message, now, id, worker };
	return update_held(db, counted
		? "UPDATE jobs SET state = 'queued', run_after = ?, error_code = ?, error_message = ?, "
		  "lease_owner = NULL, lease_expires = NULL, updated_at = ? "
		  "WHERE id = ? AND lease_owner = ? AND state = 'running'"
		: "UPDATE jobs SET state = 'queued', run_after = ?, error_code = ?, error_message = ?, "
		  "lease_owner = NULL, lease_expires = NULL, updated_at = ?, "
		  "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
		  "WHERE id = ? AND lease_owner = ? AND state = 'running'",
		args, 6, err);
}

int jobs_retry(pb_db *db, const char *id, const char *worker, long delay_ms, const char *code,
	       const char *message, bool *gave_up, char *err)
{
	pb_job *j = NULL;
	*gave_up = false;
	int rc = jobs_get(db, id, &j, err);
	if (rc)
		return rc;
	if (j->attempts >= j->max_attempts) {
		*gave_up = true;
		char msg[PB_ERR_MAX];
		if (xsnprintf(msg, sizeof msg, "%s (gave up after %d attempts)", message, j->attempts))
			copy_fixed(msg, sizeof msg, message);
		rc = jobs_finish(db, id, worker, false, NULL, code, msg, err);
		job_free(j);
		return rc;
	}
	job_free(j);
	return requeue(db, id, worker, delay_ms, code, message, true, err);
}

int jobs_defer(pb_db *db, const char *id, const char *worker, long delay_ms, const char *code,
	       const char *message, char *err)
{
	return requeue(db, id, worker, delay_ms, code, message, false, err);
}

int jobs_count_by_state(pb_db *db, long counts[PB_JOB_NSTATES], char *err)
{
	db_stmt *st = NULL;
	memset(counts, 0, PB_JOB_NSTATES * sizeof counts[0]);
	int rc = db_prepare(db, "SELECT state, COUNT(*) FROM jobs GROUP BY state", &st, err);
	while (!rc) {
		int row = db_row(db, st, err);
		if (row <= 0) {
			rc = row;
			break;
		}
		for (int i = 0; i < PB_JOB_NSTATES; i++)
			if (!strcmp(db_col_text(st, 0), pb_job_states[i]))
				counts[i] = db_col_int64(st, 1);
	}
	db_done(st);
	return rc;
}

int jobs_reseal_private(pb_db *db, const struct pb_keyring *kr, const char *kind, const char *context,
			size_t *resealed, char *err)
{
	db_stmt *sel = NULL;
	size_t n = 0;
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	if ((rc = db_prepare(db,
			     "SELECT id, private_input FROM jobs WHERE kind = ? AND private_input IS NOT NULL "
			     "AND state IN ('queued', 'running')",
			     &sel, err)) ||
	    (rc = db_bind_text(sel, 1, kind, err)))
		goto out;
	for (;;) {
		int row = db_row(db, sel, err);
		if (row <= 0) {
			rc = row;
			break;
		}
		const char *sealed = db_col_text(sel, 1);
		if (!pb_sealed_needs_rotation(kr, sealed))
			continue;
		char *plain = NULL, *fresh = NULL;
		size_t len = 0;
		char id[PB_ID_BUF];
		copy_fixed(id, sizeof id, db_col_text(sel, 0));
		if ((rc = pb_open(kr, sealed, context, &plain, &len, err)) ||
		    (rc = pb_seal(kr, plain, len, context, &fresh, err))) {
			pb_secret_free(plain, len);
			break;
		}
		pb_secret_free(plain, len);
		/* only while it is still the value read: a job that ended meanwhile keeps its erased input */
		const char *v[] = { fresh, id, sealed };
		rc = db_exec_texts(db, "UPDATE jobs SET private_input = ? WHERE id = ? AND private_input = ?", v, 3, err);
		free(fresh);
		if (rc)
			break;
		n += db_changes(db) == 1;
	}
out:
	db_done(sel);
	if ((rc = db_end(db, rc, err)))
		return rc;
	if (resealed)
		*resealed = n;
	return PB_OK;
}
