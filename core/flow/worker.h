/* The worker: claims due jobs and runs them, and starts scheduled work.
 *
 * A job kind is a function in the table core/flow/job_kinds.c. It gets a pb_job_ctx and
 * returns PB_OK with ctx->result set (succeeded), or a negative pb_rc with ctx->err
 * and ctx->error_code set; ctx->transient asks for a retry after ctx->retry_after_ms
 * (else exponential back-off with jitter), up to the job's max_attempts.
 *
 * Resuming: before each phase a kind records what it created with job_checkpoint();
 * a job reclaimed after its worker died finds that in ctx->checkpoint and must look
 * up what may already exist before creating anything again.
 *
 * While a kind runs, a heartbeat thread renews the lease on its own database
 * connection (opened once per worker, kept from job to job), so long waits on Microsoft keep the job. If the lease is lost anyway
 * (another worker took over), job_phase()/job_checkpoint() fail with PB_ENOTFOUND
 * and the kind must stop. The heartbeat renews only for the attempt's time limit
 * (PB_JOB_TIME_LIMIT_MS of wall clock from the claim, unless the kind raised it): past
 * it, it fails the job with time_limit, naming the phase, and the lease is lost, so a
 * thread stuck anywhere cannot hold its job for ever.
 *
 * Cancelling: job_phase()/job_checkpoint() are the checkpoints where a running job notices
 * a cancel request (job_cancel). They still record what they were given, set
 * ctx->cancel_requested and fail, and the kind returns as for any failure. The worker then
 * ends the job `cancelled`; when the request asked for cleanup it first calls the kind's
 * cleanup function, which removes what the job created (never what it reused) and may set
 * ctx->result to say what it removed. A job claimed with a cancel request pending (queued
 * for cleanup, or a dead worker's) goes straight to that step. */
#ifndef PBIPORT_WORKER_H
#define PBIPORT_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/failure.h"
#include "runtime/jobs.h"
#include "runtime/util.h"

struct json_t;

typedef struct pb_job_ctx {
	pb_db *db;                     /* borrowed: the worker's connection */
	const pb_config *cfg;          /* borrowed */
	pb_job *job;                   /* borrowed: the claimed row */
	const char *worker_id;
	long lease_ms;
	struct json_t *checkpoint;     /* owned by the ctx: parsed job->checkpoint */
	struct json_t *result;         /* set by the kind on success; the ctx takes it */
	char error_code[64];           /* set by the kind on failure, e.g. "not_connected" */
	bool transient;                /* failure worth retrying */
	bool waiting;                  /* not a failure: back in the queue without using an attempt */
	long retry_after_ms;           /* 0: back-off chosen by the worker */
	atomic_int lease_lost;         /* set by the heartbeat when the lease is gone */
	atomic_llong time_limit_ms;    /* this attempt's wall-clock limit (job_extend_time_limit) */
	atomic_int timed_out;          /* set by the heartbeat when it failed the job for it */
	int64_t started_ms;            /* monotonic, when the attempt started */
	bool cancel_requested;         /* a checkpoint saw a cancel request: the kind must stop */
	bool cleaning_up;              /* the kind's cleanup runs: checkpoints do not stop it */
	volatile int *stop;            /* non-zero when the worker is asked to stop */
	char err[PB_ERR_MAX];
} pb_job_ctx;

typedef int (*pb_job_fn)(pb_job_ctx *ctx);

typedef struct pb_job_kind {
	const char *name;
	pb_job_fn run;
	pb_job_fn cleanup;             /* NULL: the kind has nothing to remove on cancel */
} pb_job_kind;

/* Scheduled work the worker loop runs before claiming (e.g. queue the integrations whose
 * schedule came due): on its first turn, then at most once a second (once per poll_ms when that
 * is longer). Returns PB_OK or a pb_rc with err. */
typedef int (*pb_worker_tick)(pb_db *db, const pb_config *cfg, char *err);

/* The tables in core/flow/job_kinds.c, each ended by an entry with a NULL name/function. */
extern const pb_job_kind pb_job_kinds[];
extern const pb_worker_tick pb_worker_ticks[];

/* Records phase and progress (and renews the lease) before the phase begins. A cancel
 * request pending: PB_EIO with ctx->cancel_requested set. */
int job_phase(pb_job_ctx *ctx, const char *phase, int progress);
/* Sets checkpoint[key] = value (stealing value) and saves it at once (also when it then
 * reports a pending cancel request as job_phase does). */
int job_checkpoint(pb_job_ctx *ctx, const char *key, struct json_t *value);
/* job_checkpoint and then job_phase(phase, progress), written together in one statement: for a
 * checkpoint the kind takes with nothing between it and the next phase (no call to Microsoft).
 * A cancel pending: the checkpoint is written, the phase not entered (as job_checkpoint). */
int job_checkpoint_phase(pb_job_ctx *ctx, const char *key, struct json_t *value, const char *phase, int progress);
/* Raises this attempt's wall-clock limit to ms from its start (never lowers it): for a
 * kind that waits longer than PB_JOB_TIME_LIMIT_MS on purpose. */
void job_extend_time_limit(pb_job_ctx *ctx, long long ms);
/* Fails the job with a code and message a user can act on (returns PB_EINVAL so a
 * kind can `return job_fail(ctx, "no_write_role", "...")`). Not retried. The arguments
 * may include ctx->err itself (the message is formatted aside, then copied). */
int job_fail(pb_job_ctx *ctx, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Not a failure but a wait (a Retry-After, the tenant's back-off, a rate limit, a worker
 * asked to stop): the job goes back to the queue for after_ms with code and message as its
 * reason, and the attempt is not counted. Returns PB_EIO so a kind can return it. */
int job_wait(pb_job_ctx *ctx, long after_ms, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A failure worth retrying later (network trouble, 429, 503). */
int job_retry_later(pb_job_ctx *ctx, long after_ms, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Test hook (PBIPORT_TEST_PAUSE_PHASE=<phase>, docs/publish.md): when the configuration names
 * phase, prints "PBIPORT_TEST_PAUSED <phase> <job id>" on stderr and waits until the worker is
 * stopped or killed. Kinds call it inside a phase, after its Microsoft call and before its
 * checkpoint, so that a test can kill the worker exactly there. Inert unless the variable is set. */
void job_test_pause(pb_job_ctx *ctx, const char *phase);

/* True when the attempt now ending with ctx's failure ends the job failed, as the worker will
 * decide once the kind returns: a failure not worth retrying, or one worth retrying with no
 * attempt left; false for a wait, a cancel request seen, or a lost lease. For the kinds that
 * report their end to webhooks (core/flow/webhooks.h). */
bool job_failing_for_good(const pb_job_ctx *ctx);

typedef struct pb_worker_opts {
	const char *worker_id;         /* NULL: "<hostname>:<pid>" */
	long lease_ms;                 /* default 60000 */
	long poll_ms;                  /* idle wait between claims, default 1000 */
	bool once;                     /* run what is due now, then return */
	const pb_job_kind *kinds;      /* NULL: pb_job_kinds */
	const pb_worker_tick *ticks;   /* NULL: pb_worker_ticks */
	volatile int *stop;            /* set non-zero (e.g. from SIGTERM) to stop after the job */
} pb_worker_opts;

/* Cancels job j (POST /api/jobs/{id}/cancel; the caller checked who may) for by_user.
 * cleanup asks the job to remove what it created: PB_EINVAL when j's kind creates nothing
 * it could remove. A job that has already ended is PB_ECONFLICT "job_ended", naming its
 * state. Else *outcome says what was done (jobs_cancel: PB_CANCEL_DONE or _REQUESTED). */
int job_cancel(pb_db *db, const pb_job *j, const char *by_user, bool cleanup, pb_cancel_outcome *outcome,
	       pb_failure *f);
/* The names of kinds (a table ended by a NULL name), NULL-terminated, for jobs_claim.
 * PB_EINTERNAL when the table has more than PB_JOB_CLAIM_KINDS_MAX. Borrowed from kinds. */
int job_kind_names(const pb_job_kind *kinds, const char *names[PB_JOB_CLAIM_KINDS_MAX + 1], char *err);
/* The kind of that name in pb_job_kinds, or NULL. */
const pb_job_kind *job_kind_find(const char *name);

/* Runs the loop. *ran (may be NULL) counts jobs run. Returns PB_OK when stopped or,
 * with once, when nothing is due any more. Without once, a failed claim or a job whose end could
 * not be recorded is logged and tried again after a wait (loop_failed): only a stop ends it; with
 * once, the failure is returned. */
int worker_run(pb_db *db, const pb_config *cfg, const pb_worker_opts *opts, long *ran, char *err);

#endif
