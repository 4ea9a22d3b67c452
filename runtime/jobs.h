/* The job queue: rows in `jobs` (sql/0002_jobs.sql), claimed by workers under a lease.
 *
 * Life of a job: jobs_submit() → queued → jobs_claim() (attempts+1, running, lease) →
 * the worker renews the lease while it works (jobs_renew) and records phase, progress
 * and a checkpoint (jobs_update) → jobs_finish() (succeeded / failed; the private
 * input is erased) or jobs_retry() (queued again after a back-off; failed once
 * attempts reach max_attempts). A job whose lease expires (its worker died) is
 * claimable again and resumes from its checkpoint.
 *
 * The queue knows nothing about what a job does: kinds are strings; core/worker.c
 * maps them to functions. This module owns the jobs table: no other SQL touches it. */
#ifndef PBIPORT_JOBS_H
#define PBIPORT_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/db.h"

struct json_t;

typedef struct pb_job {
	char id[PB_ID_BUF];
	char org_id[PB_ID_BUF];
	char user_id[PB_ID_BUF];       /* "" when the user was deleted or for system jobs */
	char *kind;
	char *state;                   /* queued, running, succeeded, failed */
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
} pb_job;

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
 * is written: id is that job's and *existing is true. */
int jobs_submit(pb_db *db, const pb_job_spec *spec, char id[PB_ID_BUF], bool *existing, char *err);

/* *out is new (job_free). PB_ENOTFOUND when there is no such job. */
int jobs_get(pb_db *db, const char *id, pb_job **out, char *err);
void job_free(pb_job *j);

/* The public view: {id, kind, state, phase, progress, attempts, error:{code,message}|null,
 * result, created_at, updated_at}. New reference; NULL on OOM. Never the inputs. */
struct json_t *job_json(const pb_job *j);

/* Claims the oldest due job of one of kinds (NULL-terminated; NULL = any): a queued
 * job whose run_after has come, or a running one whose lease has expired. Returns 1
 * with *out new (job_free), 0 when nothing is due, or a negative pb_rc. A job whose
 * lease expired for the max_attempts-th time is failed instead of claimed. */
int jobs_claim(pb_db *db, const char *worker, long lease_ms, const char *const *kinds, pb_job **out,
	       char *err);

/* Extends the lease. PB_ENOTFOUND when this worker no longer holds the job. */
int jobs_renew(pb_db *db, const char *id, const char *worker, long lease_ms, char *err);

/* Records phase (NULL keeps it), progress (<0 keeps it) and checkpoint (NULL keeps it),
 * renewing the lease. PB_ENOTFOUND when the lease was lost. */
int jobs_update(pb_db *db, const char *id, const char *worker, long lease_ms, const char *phase,
		int progress, const char *checkpoint, char *err);

/* Ends the job: succeeded with result (JSON text) or failed with code + message.
 * Erases the private input either way. PB_ENOTFOUND when the lease was lost. */
int jobs_finish(pb_db *db, const char *id, const char *worker, bool ok, const char *result,
		const char *code, const char *message, char *err);

/* A transient failure: queued again after delay_ms with the error recorded, or
 * failed for good when attempts already reached max_attempts (*gave_up true). */
int jobs_retry(pb_db *db, const char *id, const char *worker, long delay_ms, const char *code,
	       const char *message, bool *gave_up, char *err);

struct pb_keyring;
/* Re-seals, with the ring's first key, the private input of every unfinished job of
 * `kind` that an older key sealed (pbiport rotate-keys). context is the one the kind
 * sealed with. *resealed (may be NULL) counts them. */
int jobs_reseal_private(pb_db *db, const struct pb_keyring *kr, const char *kind, const char *context,
			size_t *resealed, char *err);

/* Number of jobs in each state, for /metrics: counts[0..3] = queued, running,
 * succeeded, failed. */
int jobs_count_by_state(pb_db *db, long counts[4], char *err);

#endif
