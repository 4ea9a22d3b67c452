#include "core/flow/worker.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/crypto.h"
#include "runtime/limits.h"
#include "runtime/log.h"
#include "runtime/timeutil.h"

#define WORKER_DEFAULT_LEASE_MS 60000
#define WORKER_DEFAULT_POLL_MS 1000
#define WORKER_MAX_BACKOFF_MS (5 * 60 * 1000)
#define WORKER_MAX_TROUBLE_MS (60 * 1000)   /* the longest wait after failures of the loop's own statements */
/* Schedules are checked at most this often (or once per poll, when that is longer): their times are
 * whole minutes, and a busy worker that checked before every claim spent a few round trips to the
 * database on each job for nothing. */
#define WORKER_TICK_MS 1000

/* Writes phase / progress / checkpoint text; a pending cancel request stops the kind here. */
static int record_progress(pb_job_ctx *ctx, const char *phase, int progress, const char *checkpoint)
{
	bool cancel = false;
	if (atomic_load(&ctx->lease_lost))
		return pb_err(ctx->err, PB_ENOTFOUND, "the job's lease was lost to another worker");
	int rc = jobs_progress(ctx->db, ctx->job->id, ctx->worker_id, ctx->lease_ms, phase, progress, checkpoint,
			       ctx->cleaning_up ? NULL : &cancel, ctx->err);
	if (!rc && cancel) {
		ctx->cancel_requested = true;
		rc = pb_err(ctx->err, PB_EIO, "the job was cancelled");
	}
	return rc;
}

int job_phase(pb_job_ctx *ctx, const char *phase, int progress)
{
	return record_progress(ctx, phase, progress, NULL);
}

void job_extend_time_limit(pb_job_ctx *ctx, long long ms)
{
	long long cur = atomic_load(&ctx->time_limit_ms);
	while (ms > cur && !atomic_compare_exchange_weak(&ctx->time_limit_ms, &cur, ms))
		;
}

int job_checkpoint(pb_job_ctx *ctx, const char *key, json_t *value)
{
	return job_checkpoint_phase(ctx, key, value, NULL, -1);
}

int job_checkpoint_phase(pb_job_ctx *ctx, const char *key, json_t *value, const char *phase, int progress)
{
	if (!value || json_object_set_new(ctx->checkpoint, key, value))
		return pb_err(ctx->err, PB_ENOMEM, "out of memory");
	char *text = json_dumps(ctx->checkpoint, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return pb_err(ctx->err, PB_ENOMEM, "out of memory");
	int rc = record_progress(ctx, phase, progress, text);
	free(text);
	return rc;
}

void job_test_pause(pb_job_ctx *ctx, const char *phase)
{
	const char *want = ctx->cfg ? ctx->cfg->test_pause_phase : NULL;
	if (!want || strcmp(want, phase))
		return;
	fprintf(stderr, "PBIPORT_TEST_PAUSED %s %s\n", phase, ctx->job->id);
	fflush(stderr);
	struct timespec ts = { 0, 50 * 1000000L };
	while (!(ctx->stop && *ctx->stop))
		nanosleep(&ts, NULL);
}

int job_kind_names(const pb_job_kind *kinds, const char *names[PB_JOB_CLAIM_KINDS_MAX + 1], char *err)
{
	size_t n = 0;
	for (; kinds->name; kinds++) {
		if (n == PB_JOB_CLAIM_KINDS_MAX)
			return pb_err(err, PB_EINTERNAL, "more than %d job kinds: raise PB_JOB_CLAIM_KINDS_MAX",
				      PB_JOB_CLAIM_KINDS_MAX);
		names[n++] = kinds->name;
	}
	names[n] = NULL;
	return PB_OK;
}

const pb_job_kind *job_kind_find(const char *name)
{
	for (const pb_job_kind *k = pb_job_kinds; k->name; k++)
		if (!strcmp(k->name, name))
			return k;
	return NULL;
}

int job_cancel(pb_db *db, const pb_job *j, const char *by_user, bool cleanup, pb_cancel_outcome *outcome,
	       pb_failure *f)
{
	const pb_job_kind *kind = job_kind_find(j->kind);
	pb_job *now = NULL;
	if (cleanup && (!kind || !kind->cleanup))
		return pb_fail(f, PB_EINVAL, NULL, "cleanup: a %s job creates nothing that cancelling could remove; "
			       "cancel without cleanup", j->kind);
	int rc = jobs_cancel(db, j->id, by_user, cleanup, outcome, f->message);
	if (rc || *outcome != PB_CANCEL_ENDED)
		return rc ? pb_fail_as(f, rc, NULL) : PB_OK;
	/* the state it ended in, which may be newer than j's */
	if ((rc = jobs_get(db, j->id, &now, f->message)))
		return pb_fail_as(f, rc, NULL);
	pb_fail(f, PB_ECONFLICT, "job_ended", "job %s already ended (%s): there is nothing to cancel", j->id, now->state);
	job_free(now);
	return PB_ECONFLICT;
}

/* How an attempt ends, for job_fail, job_wait and job_retry_later: the message, the code, and
 * whether (transient) and when (after_ms) it is tried again. The message is formatted into a
 * buffer of its own first: callers pass ctx->err itself as an argument
 * (`job_fail(ctx, code, "...: %s", ctx->err)`), which must not be written while it is read. */
static int end_attempt(pb_job_ctx *ctx, bool transient, bool waiting, long after_ms, const char *code,
		       const char *fmt, va_list ap)
{
	char msg[sizeof ctx->err];
	memcpy(ctx->err, pb_vformat(msg, sizeof msg, fmt, ap), sizeof msg);
	if (xsnprintf(ctx->error_code, sizeof ctx->error_code, "%s", code))
		ctx->error_code[0] = '\0';
	ctx->transient = transient;
	ctx->waiting = waiting;
	if (transient)
		ctx->retry_after_ms = after_ms;
	return transient ? PB_EIO : PB_EINVAL;
}

int job_fail(pb_job_ctx *ctx, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = end_attempt(ctx, false, false, 0, code, fmt, ap);
	va_end(ap);
	return rc;
}

int job_wait(pb_job_ctx *ctx, long after_ms, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = end_attempt(ctx, true, true, after_ms, code, fmt, ap);
	va_end(ap);
	return rc;
}

int job_retry_later(pb_job_ctx *ctx, long after_ms, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = end_attempt(ctx, true, false, after_ms, code, fmt, ap);
	va_end(ap);
	return rc;
}

bool job_failing_for_good(const pb_job_ctx *ctx)
{
	if (ctx->waiting || ctx->cancel_requested || atomic_load(&ctx->lease_lost))
		return false;
	/* run_job: a transient failure, or one without a code, goes to jobs_retry, which gives up
	 * once the attempts are used */
	if (ctx->transient || !ctx->error_code[0])
		return ctx->job->attempts >= ctx->job->max_attempts;
	return true;
}

/* ---- heartbeat: renews the lease on its own connection while the kind works ---- */

struct heartbeat {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	const char *db_path;
	/* the worker's heartbeat connection, opened by the first heartbeat and kept for the next
	 * jobs (one heartbeat runs at a time): a new PostgreSQL connection per job cost a server
	 * process started and authenticated each time */
	pb_db **db;
	pb_job_ctx *ctx;
};

/* Waits on the heartbeat's condition for ms (or until heartbeat_stop); mutex held. */
static void heartbeat_wait(struct heartbeat *hb, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&hb->cv, &hb->mu, &ts);
}

/* "6 h", "90 min", "300 ms": a limit as a person reads it. */
static void duration_text(long long ms, char *out, size_t size)
{
	int bad = ms % 3600000 == 0 ? xsnprintf(out, size, "%lld h", ms / 3600000)
		  : ms % 60000 == 0 ? xsnprintf(out, size, "%lld min", ms / 60000)
		  : xsnprintf(out, size, "%lld ms", ms);
	if (bad)
		out[0] = '\0';
}

/* The attempt passed its time limit: fail the job while this worker still holds the lease,
 * naming the phase it was in, so it ends clearly instead of being renewed for ever; the
 * kind's thread, if it ever comes back, finds the lease gone. */
static int fail_past_limit(pb_db *db, pb_job_ctx *ctx, long long limit_ms, char *err)
{
	pb_job *row = NULL;
	char limit[32], msg[PB_ERR_MAX];
	int rc = jobs_get(db, ctx->job->id, &row, err);
	if (rc)
		return rc;
	duration_text(limit_ms, limit, sizeof limit);
	if (xsnprintf(msg, sizeof msg, "attempt %d ran longer than the job's time limit of %s (phase %s) and was "
		      "stopped; its worker may be stuck", row->attempts, limit, row->phase ? row->phase : "none"))
		msg[0] = '\0';
	rc = jobs_finish(db, ctx->job->id, ctx->worker_id, false, NULL, "time_limit", msg, err);
	job_free(row);
	if (!rc)
		atomic_store(&ctx->timed_out, 1);
	return rc;
}

static void *heartbeat_main(void *arg)
{
	struct heartbeat *hb = arg;
	pb_job_ctx *ctx = hb->ctx;
	char err[PB_ERR_MAX];
	if (!*hb->db && db_open(hb->db_path, false, hb->db, err)) {
		log_event("warn", NULL, "worker %s: heartbeat cannot open the database: %s", ctx->worker_id, err);
		return NULL;
	}
	pb_db *db = *hb->db;
	long interval = ctx->lease_ms / 3;
	pthread_mutex_lock(&hb->mu);
	while (!hb->done) {
		long long limit = atomic_load(&ctx->time_limit_ms);
		int64_t left = ctx->started_ms + limit - pb_mono_ms();
		if (left > 0) {
			heartbeat_wait(hb, left < interval ? left : interval);
			if (hb->done)
				break;
			if (ctx->started_ms + atomic_load(&ctx->time_limit_ms) - pb_mono_ms() > 0) {
				pthread_mutex_unlock(&hb->mu);
				int rc = jobs_renew(db, ctx->job->id, ctx->worker_id, ctx->lease_ms, err);
				pthread_mutex_lock(&hb->mu);
				if (rc == PB_ENOTFOUND) {
					atomic_store(&ctx->lease_lost, 1);
					break;
				}
				continue;
			}
			limit = atomic_load(&ctx->time_limit_ms);
		}
		/* past the limit: never renew again; fail the job (retried until the database answers) */
		pthread_mutex_unlock(&hb->mu);
		int rc = fail_past_limit(db, ctx, limit, err);
		pthread_mutex_lock(&hb->mu);
		if (rc == PB_OK || rc == PB_ENOTFOUND) {
			atomic_store(&ctx->lease_lost, 1);
			break;
		}
		heartbeat_wait(hb, interval);
	}
	pthread_mutex_unlock(&hb->mu);
	return NULL;
}

/* db: where the worker keeps the heartbeat's connection (*db NULL until the first heartbeat opens
 * it; the worker closes it). */
static int heartbeat_start(struct heartbeat *hb, pb_job_ctx *ctx, const char *db_path, pb_db **db)
{
	memset(hb, 0, sizeof *hb);
	hb->ctx = ctx;
	hb->db_path = db_path;
	hb->db = db;
	pthread_mutex_init(&hb->mu, NULL);
	pthread_cond_init(&hb->cv, NULL);
	if (pthread_create(&hb->thread, NULL, heartbeat_main, hb)) {
		pthread_mutex_destroy(&hb->mu);
		pthread_cond_destroy(&hb->cv);
		return -1;
	}
	return 0;
}

static void heartbeat_stop(struct heartbeat *hb)
{
	pthread_mutex_lock(&hb->mu);
	hb->done = true;
	pthread_cond_signal(&hb->cv);
	pthread_mutex_unlock(&hb->mu);
	pthread_join(hb->thread, NULL);
	pthread_mutex_destroy(&hb->mu);
	pthread_cond_destroy(&hb->cv);
}

/* ---- the loop ---- */

static const pb_job_kind *find_kind(const pb_job_kind *kinds, const char *name)
{
	for (; kinds->name; kinds++)
		if (!strcmp(kinds->name, name))
			return kinds;
	return NULL;
}

static long backoff_ms(int attempts);

/* Whether a cancel request arrived for job id (after its kind stopped without noticing). */
static bool cancel_pending(pb_db *db, const char *id)
{
	pb_job *j = NULL;
	char err[PB_ERR_MAX];
	bool pending = !jobs_get(db, id, &j, err) && j->cancel_requested_at;
	job_free(j);
	return pending;
}

/* The cancel's cleanup step, while the heartbeat still holds the lease: re-reads the job
 * (the request may have come after the claim) into *fresh (new) and, when cleanup was
 * asked and the kind has one, runs it. Its rc; ctx->result says what it removed. */
static int cancel_cleanup(pb_job_ctx *ctx, const pb_job_kind *kind, pb_job **fresh)
{
	int rc = jobs_get(ctx->db, ctx->job->id, fresh, ctx->err);
	if (rc || !(*fresh)->cancel_cleanup || !kind->cleanup)
		return rc;
	/* what the stopped run left in the context is not the cleanup's */
	json_decref(ctx->result);
	ctx->result = NULL;
	ctx->err[0] = ctx->error_code[0] = '\0';
	ctx->transient = false;
	ctx->retry_after_ms = 0;
	ctx->cleaning_up = true;
	if ((rc = job_phase(ctx, "cancelling", -1)))
		return rc;
	return kind->cleanup(ctx);
}

/* Ends a job whose cancel was carried out (crc: the cleanup's rc), or puts it back in the
 * queue, request kept, when its cleanup failed in a way worth another try. */
static int end_cancelled(pb_job_ctx *ctx, const pb_worker_opts *o, const pb_job *fresh, int crc, char *err)
{
	const pb_job *j = fresh ? fresh : ctx->job;
	bool cleaned = fresh && fresh->cancel_cleanup;
	/* the phase the job was in when it stopped (a retried cleanup shows "cancelling") */
	const char *phase = j->phase && strcmp(j->phase, "cancelling") ? j->phase : NULL;
	char msg[PB_ERR_MAX];
	int rc;
	if (crc && (ctx->transient || !ctx->error_code[0]) && ctx->job->attempts < ctx->job->max_attempts) {
		bool gave_up = false;
		long delay = ctx->retry_after_ms > 0 ? ctx->retry_after_ms : backoff_ms(ctx->job->attempts);
		return jobs_retry(ctx->db, ctx->job->id, o->worker_id, delay, "cleanup_failed", ctx->err, &gave_up, err);
	}
	/* a message cut at PB_ERR_MAX is still the right message */
	if (crc)
		(void)xsnprintf(msg, sizeof msg, "cancelled; removing what it created failed: %s", ctx->err);
	else
		(void)xsnprintf(msg, sizeof msg, "cancelled%s%s%s", phase ? " during " : j->phase ? "" : " before it started",
				phase ? phase : "", cleaned ? ", and what it created was removed" : "");
	json_t *result = json_pack("{s:s?,s:b,s:O?}", "cancelled_in_phase", phase, "cleanup_done", cleaned && !crc,
				   "cleanup", ctx->result);
	char *text = result ? json_dumps(result, JSON_COMPACT) : NULL;
	json_decref(result);
	rc = text ? jobs_finish_cancelled(ctx->db, ctx->job->id, o->worker_id, text, msg, err)
		  : pb_err(err, PB_ENOMEM, "out of memory");
	free(text);
	return rc;
}

static long backoff_ms(int attempts)
{
	long ms = 2000;
	for (int i = 1; i < attempts && ms < WORKER_MAX_BACKOFF_MS; i++)
		ms *= 2;
	if (ms > WORKER_MAX_BACKOFF_MS)
		ms = WORKER_MAX_BACKOFF_MS;
	unsigned short jitter = 0;
	pb_random_bytes(&jitter, sizeof jitter, NULL);
	return ms + jitter % 1000;   /* jitter keeps retried jobs from moving in lock step */
}

/* Runs one claimed job to its end state (or back to the queue); hb_db: the heartbeat's connection
 * (heartbeat_start). */
static int run_job(pb_db *db, pb_db **hb_db, const pb_config *cfg, const pb_worker_opts *o,
		   const pb_job_kind *kinds, pb_job *job, char *err)
{
	pb_job_ctx ctx = { .db = db, .cfg = cfg, .job = job, .worker_id = o->worker_id,
			   .lease_ms = o->lease_ms, .stop = o->stop };
	atomic_init(&ctx.lease_lost, 0);
	atomic_init(&ctx.time_limit_ms, PB_JOB_TIME_LIMIT_MS);
	atomic_init(&ctx.timed_out, 0);
	ctx.started_ms = pb_mono_ms();
	struct heartbeat hb;
	bool hb_running = false;
	int rc;
	const pb_job_kind *kind = find_kind(kinds, job->kind);
	ctx.checkpoint = json_loads(job->checkpoint ? job->checkpoint : "{}", 0, NULL);
	if (!ctx.checkpoint || !json_is_object(ctx.checkpoint)) {
		json_decref(ctx.checkpoint);
		ctx.checkpoint = json_object();
	}
	log_event("info", NULL, "worker %s: job %s (%s) attempt %d/%d", o->worker_id, job->id, job->kind,
		 job->attempts, job->max_attempts);
	if (!kind) {   /* cannot happen: jobs_claim took only these kinds */
		rc = pb_err(err, PB_EINTERNAL, "claimed job %s of kind %s, which this worker does not run", job->id,
			    job->kind);
		goto out;
	}
	hb_running = cfg && cfg->db_path && heartbeat_start(&hb, &ctx, cfg->db_path, hb_db) == 0;
	/* a job claimed with a cancel pending (queued for its cleanup, or a dead worker's) does not run */
	bool cancel = job->cancel_requested_at != NULL;
	int krc = cancel ? PB_OK : kind->run(&ctx);
	if (!cancel && krc != PB_OK && !atomic_load(&ctx.lease_lost))
		cancel = ctx.cancel_requested || cancel_pending(db, job->id);
	pb_job *fresh = NULL;
	int crc = PB_OK;
	if (cancel && !atomic_load(&ctx.lease_lost))
		crc = cancel_cleanup(&ctx, kind, &fresh);
	if (hb_running) {
		heartbeat_stop(&hb);
		hb_running = false;
	}
	if (atomic_load(&ctx.timed_out)) {
		job_free(fresh);
		log_event("error", NULL, "worker %s: job %s (%s) ran past its time limit and was failed (time_limit)",
			  o->worker_id, job->id, job->kind);
		rc = pb_err(err, PB_ENOTFOUND, "job %s: failed past its time limit", job->id);
		goto out;
	}
	if (atomic_load(&ctx.lease_lost)) {
		job_free(fresh);
		rc = pb_err(err, PB_ENOTFOUND, "job %s: lease lost; another worker continues it", job->id);
		goto out;
	}
	if (cancel) {
		rc = end_cancelled(&ctx, o, fresh, crc, err);
		job_free(fresh);
		log_event("info", NULL, "worker %s: job %s (%s) cancelled%s", o->worker_id, job->id, job->kind,
			  crc ? " (cleanup failed)" : "");
		goto out;
	}
	if (krc == PB_OK) {
		char *text = ctx.result ? json_dumps(ctx.result, JSON_COMPACT) : NULL;
		rc = jobs_finish(db, job->id, o->worker_id, true, text ? text : "{}", NULL, NULL, err);
		free(text);
	} else if (ctx.waiting) {
		rc = jobs_defer(db, job->id, o->worker_id, ctx.retry_after_ms > 0 ? ctx.retry_after_ms : 0,
				ctx.error_code, ctx.err, err);
	} else if (ctx.transient || !ctx.error_code[0]) {
		/* no code means an unexpected error (database, memory): worth another try */
		bool gave_up = false;
		long delay = ctx.retry_after_ms > 0 ? ctx.retry_after_ms : backoff_ms(job->attempts);
		rc = jobs_retry(db, job->id, o->worker_id, delay, ctx.error_code[0] ? ctx.error_code : "internal",
				ctx.err, &gave_up, err);
	} else {
		rc = jobs_finish(db, job->id, o->worker_id, false, NULL, ctx.error_code, ctx.err, err);
	}
	log_event(krc ? "warn" : "info", NULL, "worker %s: job %s (%s) %s %s", o->worker_id, job->id,
		  job->kind, krc ? "stopped:" : "succeeded", krc ? ctx.error_code : "");
out:
	json_decref(ctx.checkpoint);
	json_decref(ctx.result);
	return rc;
}

/* A statement of the worker's own loop failed (the claim, or the end of a job): the database went
 * away (PostgreSQL restarting, the network), or answered an error (a full disk, a statement the
 * server cancelled). A worker that runs until stopped waits and goes on: its connection is made
 * again by the next statement, and the job it was running stays leased until the lease runs out
 * and is then resumed from its checkpoint, here or by another worker. Nothing supervises the
 * demo's worker: one that ended on the first odd error would leave every later job queued.
 * *failures counts the failures in a row: the wait grows with them, up to WORKER_MAX_TROUBLE_MS. */
static void loop_failed(const pb_worker_opts *o, int rc, const char *why, int *failures)
{
	long ms = PB_DB_RETRY_AFTER_S * 1000L;
	if (rc != PB_EUNAVAIL)
		for (int i = 0; i < *failures && ms < WORKER_MAX_TROUBLE_MS; i++)
			ms *= 2;
	if (ms > WORKER_MAX_TROUBLE_MS)
		ms = WORKER_MAX_TROUBLE_MS;
	(*failures)++;
	log_event(rc == PB_EUNAVAIL ? "warn" : "error", NULL, "worker %s: %s: trying again in %ld s", o->worker_id,
		  why, (ms + 999) / 1000);
	pb_sleep_interruptible(ms, o->stop);
}

int worker_run(pb_db *db, const pb_config *cfg, const pb_worker_opts *opts, long *ran, char *err)
{
	pb_worker_opts o = *opts;
	char default_id[128];
	if (!o.worker_id) {
		char host[64] = "worker";
		gethostname(host, sizeof host - 1);
		host[sizeof host - 1] = '\0';
		if (xsnprintf(default_id, sizeof default_id, "%s:%ld", host, (long)getpid()))
			default_id[0] = '\0';
		o.worker_id = default_id;
	}
	if (o.lease_ms <= 0)
		o.lease_ms = WORKER_DEFAULT_LEASE_MS;
	if (o.poll_ms <= 0)
		o.poll_ms = WORKER_DEFAULT_POLL_MS;
	const pb_job_kind *kinds = o.kinds ? o.kinds : pb_job_kinds;
	const pb_worker_tick *ticks = o.ticks ? o.ticks : pb_worker_ticks;
	/* only the kinds this worker runs: during a rolling upgrade an older worker leaves a newer
	 * kind's jobs queued for the workers that know it */
	const char *names[PB_JOB_CLAIM_KINDS_MAX + 1];
	int rc = job_kind_names(kinds, names, err);
	if (rc)
		return rc;
	if (ran)
		*ran = 0;
	pb_db *hb_db = NULL;
	int failures = 0;   /* of the loop's own statements, in a row (loop_failed) */
	int64_t ticked_ms = 0;
	long tick_ms = o.poll_ms > WORKER_TICK_MS ? o.poll_ms : WORKER_TICK_MS;
	while (!(o.stop && *o.stop)) {
		if (!ticked_ms || pb_mono_ms() - ticked_ms >= tick_ms) {
			ticked_ms = pb_mono_ms();
			for (const pb_worker_tick *t = ticks; *t; t++) {
				char terr[PB_ERR_MAX];
				if ((*t)(db, cfg, terr))
					log_event("warn", NULL, "worker %s: schedule check failed: %s", o.worker_id, terr);
			}
		}
		pb_job *job = NULL;
		int got = jobs_claim(db, o.worker_id, o.lease_ms, names, &job, err);
		if (got < 0) {
			if (o.once) {
				rc = got;
				break;
			}
			loop_failed(&o, got, err, &failures);
			continue;
		}
		if (got == 0) {
			failures = 0;
			if (o.once)
				break;
			pb_sleep_interruptible(o.poll_ms, o.stop);
			continue;
		}
		rc = run_job(db, &hb_db, cfg, &o, kinds, job, err);
		job_free(job);
		if (ran)
			(*ran)++;
		if (rc && rc != PB_ENOTFOUND) {   /* the job's end was not recorded */
			if (o.once)
				break;
			loop_failed(&o, rc, err, &failures);
		} else {
			failures = 0;
		}
		rc = PB_OK;
	}
	db_close(hb_db);
	return rc;
}
