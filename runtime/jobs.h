/* The job queue: rows in `jobs` (sql/0002_jobs.sql), claimed by workers under a lease.
 *
 * Life of a job: jobs_submit() → queued → jobs_claim() (attempts+1, running, lease) →
 * the worker renews the lease while it works (jobs_renew) and records phase, progress
 * and a checkpoint (jobs_update / jobs_progress; each new phase is also kept in the
 * job's phase history, table job_phases) → jobs_finish() (succeeded / failed; the
 * private input is erased) or jobs_retry() (queued again after a back-off; failed once
 * attempts reach max_attempts). A job whose lease expires (its worker died) is
 * claimable again and resumes from its checkpoint.
 *
 * Cancelling (jobs_cancel): a queued job with nothing to clean up ends `cancelled` at
 * once. Otherwise the request is recorded on the row (cancel_requested_at, cleanup): a
 * running job's worker sees it at its next jobs_progress() and ends the job with
 * jobs_finish_cancelled(), after removing what the job created when cleanup was asked;
 * a queued job to clean up is made due now so that a worker does it.
 *
 * The queue knows nothing about what a job does: kinds are strings; core/flow/worker.c
 * maps them to functions. This module owns the jobs table: no other SQL touches it. */
#ifndef PBIPORT_JOBS_H
#define PBIPORT_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/db.h"
#include "runtime/page.h"

struct json_t;

typedef struct pb_job {
	char id[PB_ID_BUF];
	char org_id[PB_ID_BUF];
	char user_id[PB_ID_BUF];       /* "" when the user was deleted or for system jobs */
	char *kind;
	char *state;                   /* one of pb_job_states */
	char *phase;                   /* NULL before the first phase */
	int progress;                  /* 0..100 */
	int attempts, max_attempts;
	char *idempotency_key;         /* NULL when none */
	char *input;                   /* public JSON text */
	char *private_input;           /* sealed text or NULL; only the worker opens it */
	char *checkpoint;              /* JSON text, "{}" at first */
	char *result;                  /* JSON text or NULL */
	char *error_code, *error_message;
	char created_at[PB_TIME_BUF], updated_at[PB_TIME_BUF];
	char *finished_at;             /* NULL until the job ended */
	char *cancel_requested_at;     /* NULL unless a cancel was asked for */
	bool cancel_cleanup;           /* the cancel asked to remove what the job created */
	char cancelled_by[PB_ID_BUF];  /* who asked; "" when nobody (or the user was deleted) */
} pb_job;

/* Every state a job can be in, in this order (counts of jobs_count_by_state). */
#define PB_JOB_NSTATES 5
extern const char *const pb_job_states[PB_JOB_NSTATES];   /* queued running succeeded failed cancelled */
bool job_state_valid(const char *state);
/* True once the job is succeeded, failed or cancelled: nothing will run it again. */
bool job_ended(const pb_job *j);

typedef struct pb_job_spec {
	const char *kind;
	const char *org_id;
	const char *user_id;           /* may be NULL for system jobs (schedules) */
	const char *input;             /* JSON text; NULL means "{}" */
	const char *private_input;     /* already sealed by the caller; may be NULL */
	const char *idempotency_key;   /* may be NULL */
	int max_attempts;              /* <= 0 means PB_JOB_DEFAULT_ATTEMPTS */
	long delay_ms;                 /* run no earlier than now + delay */
} pb_job_spec;

#define PB_JOB_DEFAULT_ATTEMPTS 5

/* Queues a job. When spec->idempotency_key matches a queued or running job, nothing
 * is written: id is that job's and *existing is true (also when that job was being submitted at
 * the same time on another connection: the insert is an ON CONFLICT on the key). */
int jobs_submit(pb_db *db, const pb_job_spec *spec, char id[PB_ID_BUF], bool *existing, char *err);

/* *out is new (job_free). PB_ENOTFOUND when there is no such job. */
int jobs_get(pb_db *db, const char *id, pb_job **out, char *err);
void job_free(pb_job *j);

/* The public view: {id, kind, state, phase, progress, attempts, error:{code,message}|null,
 * result, user_id, created_at, updated_at, finished_at, cancel:{requested_at, cleanup, by}|null}.
 * New reference; NULL on OOM. Never the inputs. */
struct json_t *job_json(const pb_job *j);
/* The list v[0..n) as job_json shows each: a new array, NULL when out of memory (never a list
 * missing a job). */
struct json_t *jobs_json(pb_job *const *v, size_t n);

/* The job's phase history, oldest first: [{"phase","started_at","attempt"}] (at most
 * PB_JOB_PHASES_MAX entries; a phase entered again on a later attempt is listed again).
 * *out is a new reference. */
#define PB_JOB_PHASES_MAX 200
int jobs_phases_json(pb_db *db, const char *id, struct json_t **out, char *err);

/* GET /api/jobs: an org's jobs, newest first, one page at a time (runtime/page.h). */
typedef struct pb_job_filter {
	const char *org_id;
	const char *user_id;           /* NULL: every user's */
	const char *kind;              /* NULL: any */
	const char *state;             /* NULL: any (else one of pb_job_states) */
} pb_job_filter;

#define PB_JOBS_PAGE_DEFAULT 50
#define PB_JOBS_PAGE_MAX 200

/* *out is a new array of *n new jobs (jobs_list_free). next_cursor is "" on the last page. */
int jobs_list(pb_db *db, const pb_job_filter *f, const pb_page *page, pb_job ***out, size_t *n,
	      char next_cursor[PB_PAGE_CURSOR_BUF], char *err);
void jobs_list_free(pb_job **v, size_t n);

/* What jobs_cancel did. */
typedef enum pb_cancel_outcome {
	PB_CANCEL_DONE,        /* the job is cancelled (it was queued, with nothing to clean up) */
	PB_CANCEL_REQUESTED,   /* a worker ends it: running, at its next checkpoint; queued, now */
	PB_CANCEL_ENDED,       /* nothing done: the job had already ended */
} pb_cancel_outcome;

/* Asks to cancel job id (the caller checked who may) for user by_user (may be NULL). A
 * queued job is cancelled at once unless cleanup is asked and its checkpoint is not empty
 * (a retried job may have created something): then, as for a running job, the request is
 * recorded and a worker finishes it. Asking again while a request is pending only adds
 * cleanup (never removes it). PB_ENOTFOUND when there is no such job. */
int jobs_cancel(pb_db *db, const char *id, const char *by_user, bool cleanup, pb_cancel_outcome *outcome,
		char *err);

/* Claims the oldest due job of one of kinds (the kinds this worker can run:
 * NULL-terminated, 1 to PB_JOB_CLAIM_KINDS_MAX names, else PB_EINVAL): a queued job whose
 * run_after has come, or a running one whose lease has expired. Jobs of other kinds are
 * left as they are, for a worker that knows them (a rolling upgrade: an older worker never
 * takes a newer kind). Returns 1 with *out new (job_free), 0 when nothing is due, or a
 * negative pb_rc. A job of kinds whose lease expired for the max_attempts-th time is failed
 * instead of claimed. Workers on several hosts may claim at once: on PostgreSQL the job is read
 * FOR UPDATE SKIP LOCKED, so each claimer takes a different one without waiting for the others
 * (SQLite's BEGIN IMMEDIATE lets one claimer in at a time). On PostgreSQL the claim is one
 * statement, a round trip to the server; *out is the row the claim wrote (no second read). */
#define PB_JOB_CLAIM_KINDS_MAX 16
int jobs_claim(pb_db *db, const char *worker, long lease_ms, const char *const *kinds, pb_job **out,
	       char *err);

/* Extends the lease. PB_ENOTFOUND when this worker no longer holds the job. */
int jobs_renew(pb_db *db, const char *id, const char *worker, long lease_ms, char *err);

/* Records phase (NULL keeps it), progress (<0 keeps it) and checkpoint (NULL keeps it),
 * renewing the lease. PB_ENOTFOUND when the lease was lost. On PostgreSQL one statement (a round
 * trip) whatever it records, the phase history entry included. */
int jobs_update(pb_db *db, const char *id, const char *worker, long lease_ms, const char *phase,
		int progress, const char *checkpoint, char *err);
/* jobs_update for a job's own checkpoints. A phase other than the last one recorded for this
 * attempt is added to the phase history. cancel (may be NULL) receives whether a cancel was
 * asked for; then the job does not enter phase (it is to stop there), but the progress and
 * the checkpoint are written, so what the job created is never lost to a cancel. With cancel
 * NULL (a cleanup running for a cancel) the phase is entered whatever is pending. */
int jobs_progress(pb_db *db, const char *id, const char *worker, long lease_ms, const char *phase,
		  int progress, const char *checkpoint, bool *cancel, char *err);

/* Ends the job: succeeded with result (JSON text) or failed with code + message.
 * Erases the private input either way. PB_ENOTFOUND when the lease was lost. */
int jobs_finish(pb_db *db, const char *id, const char *worker, bool ok, const char *result,
		const char *code, const char *message, char *err);

/* Ends a running job as cancelled with result (JSON text, may be NULL) and a message saying
 * what happened (error code "cancelled"); erases the private input. PB_ENOTFOUND when the
 * lease was lost. */
int jobs_finish_cancelled(pb_db *db, const char *id, const char *worker, const char *result, const char *message,
			  char *err);

/* A transient failure: queued again after delay_ms with the error recorded, or
 * failed for good when attempts already reached max_attempts (*gave_up true). */
int jobs_retry(pb_db *db, const char *id, const char *worker, long delay_ms, const char *code,
	       const char *message, bool *gave_up, char *err);
/* A wait that is not a failure (a Retry-After, a rate limit, a worker that stops): queued
 * again after delay_ms with the reason recorded, and the claim that ends here is not
 * counted as an attempt, so waiting never uses up a job's attempts. */
int jobs_defer(pb_db *db, const char *id, const char *worker, long delay_ms, const char *code,
	       const char *message, char *err);

struct pb_keyring;
/* Re-seals, with the ring's first key, the private input of every unfinished job of
 * `kind` that an older key sealed (pbiport rotate-keys). context is the one the kind
 * sealed with. *resealed (may be NULL) counts them. */
int jobs_reseal_private(pb_db *db, const struct pb_keyring *kr, const char *kind, const char *context,
			size_t *resealed, char *err);

/* Number of jobs in each state, for /metrics: counts[i] for pb_job_states[i]. */
int jobs_count_by_state(pb_db *db, long counts[PB_JOB_NSTATES], char *err);

#endif
