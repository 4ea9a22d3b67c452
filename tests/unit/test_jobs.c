/* The job queue and the worker loop: submit with idempotency, claim, phases and
 * checkpoints, finish (private input erased), transient retry and giving up, lease
 * expiry (a dead worker's job is reclaimed and resumes from its checkpoint), cancelling
 * (queued at once, running at the next checkpoint, with and without cleanup), the phase
 * history, the paged list, the attempt's time limit (a stuck job is failed and the queue
 * goes on), and a worker claiming only the kinds it knows (a rolling upgrade). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/store/identity.h"
#include "core/flow/worker.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/jobs.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

static char tmpdir[64];
static char db_path[256];
static pb_db *db;
static pb_config cfg;
static char org_id[PB_ID_BUF], user_id[PB_ID_BUF], other_id[PB_ID_BUF];

static int setup(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	if (tu_db_setup("jobs", tmpdir, db_path, &db, &cfg, err) || tu_acme(db, PB_ROLE_MEMBER, org_id, user_id, err) ||
	    identity_user_add(db, "ola", "acme", PB_ROLE_MEMBER, NULL, 0, other_id, err))
		return tu_setup_failed(err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tu_db_teardown(tmpdir, db, &cfg);
}

static void submit(const char *kind, const char *key, const char *private_input, char id[PB_ID_BUF],
		   bool *existing)
{
	char err[PB_ERR_MAX];
	pb_job_spec s = { .kind = kind, .org_id = org_id, .user_id = user_id, .input = "{\"n\":1}",
			  .private_input = private_input, .idempotency_key = key, .max_attempts = 3 };
	assert_int_equal(jobs_submit(db, &s, id, existing, err), PB_OK);
}

/* Every kind this file submits: what its workers and drain() claim. */
static const char *const KINDS[] = { "t", "flaky", "failing", "no-such-kind", "newer", "made", "midway",
				     "patient", "publish", "refresh", "rotating", "stuck", "two", "waits", NULL };

static void drain(void)
{
	/* finish whatever earlier tests left queued so each test starts clean */
	char err[PB_ERR_MAX];
	pb_job *j = NULL;
	while (jobs_claim(db, "drain", 1000, KINDS, &j, err) == 1) {
		jobs_finish(db, j->id, "drain", false, NULL, "drained", "drained", err);
		job_free(j);
	}
}

static void submit_is_idempotent_while_in_flight(void **state)
{
	(void)state;
	char a[PB_ID_BUF], b[PB_ID_BUF], c[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	drain();
	submit("t", "user:port:ws:name", NULL, a, &existing);
	assert_false(existing);
	submit("t", "user:port:ws:name", NULL, b, &existing);
	assert_true(existing);
	assert_string_equal(a, b);
	/* once it has finished, the same key makes a new job */
	pb_job *j = NULL;
	assert_int_equal(jobs_claim(db, "w1", 10000, KINDS, &j, err), 1);
	assert_string_equal(j->id, a);
	assert_int_equal(jobs_finish(db, j->id, "w1", true, "{\"ok\":true}", NULL, NULL, err), PB_OK);
	job_free(j);
	submit("t", "user:port:ws:name", NULL, c, &existing);
	assert_false(existing);
	assert_string_not_equal(a, c);
	drain();
}

static void finish_erases_private_input_and_checks_lease(void **state)
{
	(void)state;
	char id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	drain();
	submit("t", NULL, "v1:sealed-secret", id, &existing);
	pb_job *j = NULL;
	assert_int_equal(jobs_claim(db, "w1", 10000, KINDS, &j, err), 1);
	assert_string_equal(j->private_input, "v1:sealed-secret");
	assert_int_equal(j->attempts, 1);
	/* another worker cannot touch it */
	assert_int_equal(jobs_update(db, id, "w2", 10000, "x", 5, NULL, err), PB_ENOTFOUND);
	assert_int_equal(jobs_update(db, id, "w1", 10000, "creating_model", 40, "{\"model\":\"m1\"}", err),
			 PB_OK);
	assert_int_equal(jobs_finish(db, id, "w1", false, NULL, "tmdl_rejected", "Power BI said no", err),
			 PB_OK);
	job_free(j);
	assert_int_equal(jobs_get(db, id, &j, err), PB_OK);
	assert_null(j->private_input);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->phase, "creating_model");
	assert_int_equal(j->progress, 40);
	json_t *pub = job_json(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(pub, "error"), "code")),
			    "tmdl_rejected");
	assert_null(json_object_get(pub, "private_input"));
	assert_null(json_object_get(pub, "input"));
	json_decref(pub);
	job_free(j);
}

static void expired_lease_is_reclaimed_then_given_up(void **state)
{
	(void)state;
	char id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	drain();
	submit("t", NULL, NULL, id, &existing);
	pb_job *j = NULL;
	for (int attempt = 1; attempt <= 3; attempt++) {
		/* a 1 ms lease: the worker "dies" at once */
		assert_int_equal(jobs_claim(db, "dying", 1, KINDS, &j, err), 1);
		assert_string_equal(j->id, id);
		assert_int_equal(j->attempts, attempt);
		job_free(j);
		usleep(320 * 1000);
	}
	/* the third expiry exhausts max_attempts: failed, not claimed again; the same claim takes the
	 * next due job (on PostgreSQL both in one statement) and answers it as it is now */
	char next[PB_ID_BUF];
	submit("t", NULL, NULL, next, &existing);
	assert_int_equal(jobs_claim(db, "w1", 10000, KINDS, &j, err), 1);
	assert_string_equal(j->id, next);
	assert_string_equal(j->state, "running");
	assert_int_equal(j->attempts, 1);
	job_free(j);
	assert_int_equal(jobs_get(db, id, &j, err), PB_OK);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->error_code, "worker_lost");
	assert_string_equal(j->error_message, "the worker running this job stopped 3 times; giving up");
	job_free(j);
	assert_int_equal(jobs_claim(db, "w1", 10000, KINDS, &j, err), 0);
	assert_int_equal(jobs_finish(db, next, "w1", true, "{}", NULL, NULL, err), PB_OK);
}

/* A kind that fails transiently on its first attempt, checkpoints, and succeeds on
 * the next, proving the checkpoint survives the retry. */
static int flaky_kind(pb_job_ctx *ctx)
{
	json_t *seen = json_object_get(ctx->checkpoint, "created");
	if (!seen) {
		if (job_phase(ctx, "creating", 10) || job_checkpoint(ctx, "created", json_string("thing-1")))
			return PB_EIO;
		return job_retry_later(ctx, 1, "throttled", "Power BI asked to wait");
	}
	if (job_phase(ctx, "finalizing", 90))
		return PB_EIO;
	ctx->result = json_pack("{s:O}", "created", seen);
	return PB_OK;
}

static int failing_kind(pb_job_ctx *ctx)
{
	return job_fail(ctx, "no_write_role", "you are only a Viewer of workspace 'Sales'");
}

/* One pass of worker over kinds, as `pbiport worker --once` runs it (lease_ms: its lease, a
 * heartbeat every third of it); how many jobs it ran. */
static long work_once(const char *worker, long lease_ms, const pb_job_kind *kinds)
{
	static const pb_worker_tick no_ticks[] = { NULL };
	char err[PB_ERR_MAX];
	long ran = -1;
	pb_worker_opts o = { .worker_id = worker, .lease_ms = lease_ms, .poll_ms = 10, .once = true,
			     .kinds = kinds, .ticks = no_ticks };
	assert_int_equal(worker_run(db, &cfg, &o, &ran, err), PB_OK);
	return ran;
}

static void worker_runs_retries_and_fails_with_message(void **state)
{
	(void)state;
	static const pb_job_kind kinds[] = { { "flaky", flaky_kind, NULL }, { "failing", failing_kind, NULL }, { NULL, NULL, NULL } };
	char ok_id[PB_ID_BUF], bad_id[PB_ID_BUF], odd_id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	drain();
	submit("flaky", NULL, NULL, ok_id, &existing);
	submit("failing", NULL, NULL, bad_id, &existing);
	submit("no-such-kind", NULL, NULL, odd_id, &existing);
	work_once("w-test", 5000, kinds);
	/* the retry is due 1 ms later; a second pass picks it up */
	usleep(5000);
	work_once("w-test", 5000, kinds);
	pb_job *j = NULL;
	assert_int_equal(jobs_get(db, ok_id, &j, err), PB_OK);
	assert_string_equal(j->state, "succeeded");
	assert_int_equal(j->attempts, 2);
	assert_int_equal(j->progress, 100);
	assert_non_null(strstr(j->result, "thing-1"));
	job_free(j);
	assert_int_equal(jobs_get(db, bad_id, &j, err), PB_OK);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->error_code, "no_write_role");
	assert_non_null(strstr(j->error_message, "Viewer"));
	job_free(j);
	/* a kind this worker does not know is left in the queue, untouched */
	assert_int_equal(jobs_get(db, odd_id, &j, err), PB_OK);
	assert_string_equal(j->state, "queued");
	assert_int_equal(j->attempts, 0);
	assert_null(j->error_code);
	job_free(j);
	long counts[PB_JOB_NSTATES];
	assert_int_equal(jobs_count_by_state(db, counts, err), PB_OK);
	assert_int_equal(counts[0], 1);
	assert_int_equal(counts[1], 0);
	drain();
}

static int newer_kind(pb_job_ctx *ctx)
{
	ctx->result = json_pack("{s:s}", "ran_by", ctx->worker_id);
	return PB_OK;
}

/* A rolling upgrade: an old worker shares the queue with a job of a kind only the new version
 * has. The old one neither runs nor fails it (nor its expired lease), and claims its own kinds
 * past it; the new worker runs it. */
static void worker_claims_only_the_kinds_it_knows(void **state)
{
	(void)state;
	static const pb_job_kind old_kinds[] = { { "t", flaky_kind, NULL }, { NULL, NULL, NULL } };
	static const pb_job_kind new_kinds[] = { { "t", flaky_kind, NULL }, { "newer", newer_kind, NULL },
						 { NULL, NULL, NULL } };
	static const char *const only_t[] = { "t", NULL };
	char newer_id[PB_ID_BUF], lost_id[PB_ID_BUF], t_id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	pb_job *j = NULL;
	drain();
	/* a claim names the kinds: none, or more than a statement takes, is a mistake */
	assert_int_equal(jobs_claim(db, "w", 1000, NULL, &j, err), PB_EINVAL);
	static const char *const none[] = { NULL };
	assert_int_equal(jobs_claim(db, "w", 1000, none, &j, err), PB_EINVAL);
	const char *many[PB_JOB_CLAIM_KINDS_MAX + 2];
	for (int i = 0; i <= PB_JOB_CLAIM_KINDS_MAX; i++)
		many[i] = "t";
	many[PB_JOB_CLAIM_KINDS_MAX + 1] = NULL;
	assert_int_equal(jobs_claim(db, "w", 1000, many, &j, err), PB_EINVAL);
	assert_null(j);

	/* a newer kind's job whose worker died on its last attempt */
	submit("newer", NULL, NULL, lost_id, &existing);
	static const char *const only_newer[] = { "newer", NULL };
	for (int attempt = 1; attempt <= 3; attempt++) {
		assert_int_equal(jobs_claim(db, "new-dying", 1, only_newer, &j, err), 1);   /* a 1 ms lease */
		job_free(j);
		usleep(320 * 1000);
	}
	/* then a queued one, older than a job of a kind both know */
	submit("newer", NULL, NULL, newer_id, &existing);
	usleep(2000);
	submit("t", NULL, NULL, t_id, &existing);
	assert_int_equal(jobs_claim(db, "old", 1000, only_t, &j, err), 1);
	assert_string_equal(j->id, t_id);   /* past the older job it does not know */
	assert_int_equal(jobs_finish(db, j->id, "old", true, "{}", NULL, NULL, err), PB_OK);
	job_free(j);
	assert_int_equal(jobs_claim(db, "old", 1000, only_t, &j, err), 0);

	/* the old worker's loop: nothing of its kinds is due; the newer jobs are left alone */
	assert_int_equal(work_once("old", 5000, old_kinds), 0);
	assert_int_equal(jobs_get(db, newer_id, &j, err), PB_OK);
	assert_string_equal(j->state, "queued");
	assert_int_equal(j->attempts, 0);
	job_free(j);
	assert_int_equal(jobs_get(db, lost_id, &j, err), PB_OK);
	assert_string_equal(j->state, "running");   /* not given up by a worker that cannot run it */
	job_free(j);

	/* the new worker gives up the lost one and runs the queued one */
	assert_int_equal(work_once("new", 5000, new_kinds), 1);
	assert_int_equal(jobs_get(db, newer_id, &j, err), PB_OK);
	assert_string_equal(j->state, "succeeded");
	assert_non_null(strstr(j->result, "\"ran_by\":\"new\""));
	job_free(j);
	assert_int_equal(jobs_get(db, lost_id, &j, err), PB_OK);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->error_code, "worker_lost");
	job_free(j);
	drain();
}

/* waits out a "Retry-After" five times (more than its 3 attempts), then succeeds */
static int waits_then_succeeds_kind(pb_job_ctx *ctx)
{
	static int waits;
	if (waits < 5) {
		waits++;
		/* long enough that the same worker pass does not claim it again */
		return job_wait(ctx, 300, "tenant_backoff", "waiting: %s", "Power BI asked to wait");
	}
	return PB_OK;
}

static void waiting_does_not_use_up_attempts(void **state)
{
	(void)state;
	static const pb_job_kind kinds[] = { { "waits", waits_then_succeeds_kind, NULL }, { NULL, NULL, NULL } };
	char id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	pb_job *j = NULL;
	drain();
	submit("waits", NULL, NULL, id, &existing);
	for (int pass = 0; pass < 5; pass++) {
		work_once("w-test", 5000, kinds);
		assert_int_equal(jobs_get(db, id, &j, err), PB_OK);
		assert_string_equal(j->state, "queued");
		assert_int_equal(j->attempts, 0);
		assert_string_equal(j->error_code, "tenant_backoff");
		assert_string_equal(j->error_message, "waiting: Power BI asked to wait");
		job_free(j);
		usleep(320 * 1000);
	}
	work_once("w-test", 5000, kinds);
	assert_int_equal(jobs_get(db, id, &j, err), PB_OK);
	assert_string_equal(j->state, "succeeded");
	assert_int_equal(j->attempts, 1);
	job_free(j);
}

static void reseal_moves_private_input_to_the_new_key(void **state)
{
	(void)state;
	static const char *const key_a = "1111111111111111111111111111111111111111111111111111111111111111";
	static const char *const key_b = "2222222222222222222222222222222222222222222222222222222222222222";
	char ring_ba[200], err[PB_ERR_MAX], id[PB_ID_BUF];
	pb_keyring *old_ring = NULL, *both = NULL, *new_only = NULL;
	char *sealed = NULL, *plain = NULL;
	size_t len = 0, n = 0;
	bool existing;
	drain();
	xsnprintf(ring_ba, sizeof ring_ba, "%s,%s", key_b, key_a);
	assert_int_equal(pb_keyring_parse(key_a, &old_ring, err), PB_OK);
	assert_int_equal(pb_keyring_parse(ring_ba, &both, err), PB_OK);
	assert_int_equal(pb_keyring_parse(key_b, &new_only, err), PB_OK);
	assert_int_equal(pb_seal(old_ring, "{\"password\":\"s3cret\"}", 21, "ctx", &sealed, err), PB_OK);
	submit("rotating", NULL, sealed, id, &existing);
	assert_int_equal(jobs_reseal_private(db, both, "rotating", "ctx", &n, err), PB_OK);
	assert_int_equal(n, 1);
	pb_job *j = NULL;
	assert_int_equal(jobs_get(db, id, &j, err), PB_OK);
	assert_string_not_equal(j->private_input, sealed);
	assert_int_equal(pb_open(new_only, j->private_input, "ctx", &plain, &len, err), PB_OK);
	assert_string_equal(plain, "{\"password\":\"s3cret\"}");
	/* already on the first key: nothing to do */
	assert_int_equal(jobs_reseal_private(db, both, "rotating", "ctx", &n, err), PB_OK);
	assert_int_equal(n, 0);
	pb_secret_free(plain, len);
	job_free(j);
	free(sealed);
	pb_keyring_free(old_ring);
	pb_keyring_free(both);
	pb_keyring_free(new_only);
	drain();
}

static pb_job *get_job(const char *id)
{
	char err[PB_ERR_MAX];
	pb_job *j = NULL;
	assert_int_equal(jobs_get(db, id, &j, err), PB_OK);
	return j;
}

static void queued_job_is_cancelled_at_once(void **state)
{
	(void)state;
	char id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	pb_cancel_outcome out;
	drain();
	submit("t", "cancel:key", "v1:sealed", id, &existing);
	assert_int_equal(jobs_cancel(db, id, user_id, false, &out, err), PB_OK);
	assert_int_equal(out, PB_CANCEL_DONE);
	pb_job *j = get_job(id);
	assert_string_equal(j->state, "cancelled");
	assert_true(job_ended(j));
	assert_null(j->private_input);
	assert_string_equal(j->error_code, "cancelled");
	assert_string_equal(j->error_message, "cancelled before it ran");
	assert_string_equal(j->cancelled_by, user_id);
	assert_non_null(j->finished_at);
	json_t *pub = job_json(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(pub, "cancel"), "by")), user_id);
	assert_string_equal(json_string_value(json_object_get(pub, "state")), "cancelled");
	json_decref(pub);
	job_free(j);
	/* nothing to claim; a second cancel finds it ended; the key is free for a new job */
	assert_int_equal(jobs_claim(db, "w1", 1000, KINDS, &j, err), 0);
	assert_int_equal(jobs_cancel(db, id, user_id, true, &out, err), PB_OK);
	assert_int_equal(out, PB_CANCEL_ENDED);
	char again[PB_ID_BUF];
	submit("t", "cancel:key", NULL, again, &existing);
	assert_false(existing);
	assert_int_equal(jobs_cancel(db, "0123456789abcdef0123456789abcdef", user_id, false, &out, err), PB_ENOTFOUND);
	drain();
}

/* A kind that works in two phases; between them the test's "user" cancels it (as a request
 * on another connection would), so the second checkpoint sees the request. */
static bool cancel_cleanup_asked;
static int cleanups_run, second_phases_run;
static int cancelled_midway_kind(pb_job_ctx *ctx)
{
	char err[PB_ERR_MAX];
	pb_cancel_outcome out;
	int rc;
	if ((rc = job_phase(ctx, "creating", 10)) || (rc = job_phase(ctx, "creating", 30)))
		return rc;
	if (jobs_cancel(ctx->db, ctx->job->id, other_id, cancel_cleanup_asked, &out, err) || out != PB_CANCEL_REQUESTED)
		return job_fail(ctx, "test", "cancel was not requested: %s", err);
	/* the checkpoint is still saved, then the request stops the kind; written with the next
	 * phase (the run with cleanup), that phase is not entered */
	rc = cancel_cleanup_asked ? job_checkpoint_phase(ctx, "made", json_string("thing-7"), "second", 60)
				  : job_checkpoint(ctx, "made", json_string("thing-7"));
	if (rc == PB_OK || !ctx->cancel_requested)
		return job_fail(ctx, "test", "the checkpoint did not notice the cancel");
	if (job_phase(ctx, "second", 60) == PB_OK)
		second_phases_run++;
	return rc;
}

static int removing_cleanup(pb_job_ctx *ctx)
{
	cleanups_run++;
	const char *made = json_string_value(json_object_get(ctx->checkpoint, "made"));
	/* cleanup checkpoints do not stop it */
	if (job_checkpoint(ctx, "removed", json_true()))
		return job_fail(ctx, "test", "cleanup checkpoint failed: %s", ctx->err);
	ctx->result = json_pack("{s:s?}", "removed", made);
	return PB_OK;
}

static void running_job_stops_at_its_next_checkpoint(void **state)
{
	(void)state;
	static const pb_job_kind kinds[] = { { "midway", cancelled_midway_kind, removing_cleanup },
					     { NULL, NULL, NULL } };
	char id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	for (int with_cleanup = 0; with_cleanup <= 1; with_cleanup++) {
		drain();
		cancel_cleanup_asked = with_cleanup;
		cleanups_run = second_phases_run = 0;
		submit("midway", NULL, "v1:sealed", id, &existing);
		work_once("w-cancel", 5000, kinds);
		pb_job *j = get_job(id);
		assert_string_equal(j->state, "cancelled");
		assert_null(j->private_input);
		assert_string_equal(j->cancelled_by, other_id);
		assert_int_equal(j->cancel_cleanup, with_cleanup);
		assert_int_equal(second_phases_run, 0);
		assert_int_equal(cleanups_run, with_cleanup);
		/* the checkpoint written as the cancel was noticed survived (written with a phase, that
		 * phase was not entered: the history below) */
		assert_non_null(strstr(j->checkpoint, "thing-7"));
		json_t *res = json_loads(j->result, 0, NULL);
		assert_string_equal(json_string_value(json_object_get(res, "cancelled_in_phase")), "creating");
		assert_int_equal(json_is_true(json_object_get(res, "cleanup_done")), with_cleanup);
		if (with_cleanup) {
			assert_string_equal(json_string_value(json_object_get(json_object_get(res, "cleanup"), "removed")),
					    "thing-7");
			assert_non_null(strstr(j->error_message, "what it created was removed"));
		} else {
			assert_true(json_is_null(json_object_get(res, "cleanup")));
			assert_string_equal(j->error_message, "cancelled during creating");
		}
		json_decref(res);
		/* the history: one "creating" (its progress update is the same phase), then the cleanup */
		json_t *phases = NULL;
		assert_int_equal(jobs_phases_json(db, id, &phases, err), PB_OK);
		assert_int_equal(json_array_size(phases), with_cleanup ? 2 : 1);
		assert_string_equal(json_string_value(json_object_get(json_array_get(phases, 0), "phase")), "creating");
		if (with_cleanup)
			assert_string_equal(json_string_value(json_object_get(json_array_get(phases, 1), "phase")),
					    "cancelling");
		json_decref(phases);
		job_free(j);
	}
}

/* A kind that made something, then failed transiently: the retry waits in the queue. */
static int made_then_throttled_kind(pb_job_ctx *ctx)
{
	if (job_phase(ctx, "creating", 10) || job_checkpoint(ctx, "made", json_string("thing-9")))
		return PB_EIO;
	return job_retry_later(ctx, 3600 * 1000L, "throttled", "Power BI asked to wait an hour");
}

static int should_not_run_kind(pb_job_ctx *ctx)
{
	return job_fail(ctx, "test", "a job with a cancel pending ran its kind");
}

static int flaky_cleanups;
static int flaky_cleanup(pb_job_ctx *ctx)
{
	/* due again in 1 s: later than this worker pass ends, even under a sanitizer */
	if (flaky_cleanups++ == 0)
		return job_retry_later(ctx, 1000, "unavailable", "Power BI was not reachable");
	return removing_cleanup(ctx);
}

static void queued_job_to_clean_up_goes_to_a_worker(void **state)
{
	(void)state;
	static const pb_job_kind first[] = { { "made", made_then_throttled_kind, flaky_cleanup }, { NULL, NULL, NULL } };
	static const pb_job_kind second[] = { { "made", should_not_run_kind, flaky_cleanup }, { NULL, NULL, NULL } };
	char id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	pb_cancel_outcome out;
	drain();
	cleanups_run = flaky_cleanups = 0;
	submit("made", NULL, NULL, id, &existing);
	work_once("w-cancel", 5000, first);
	pb_job *j = get_job(id);
	assert_string_equal(j->state, "queued");
	job_free(j);
	/* it created something: cancelling with cleanup leaves the removal to a worker, now */
	assert_int_equal(jobs_cancel(db, id, user_id, true, &out, err), PB_OK);
	assert_int_equal(out, PB_CANCEL_REQUESTED);
	j = get_job(id);
	assert_string_equal(j->state, "queued");
	assert_non_null(j->cancel_requested_at);
	job_free(j);
	/* the first cleanup fails transiently: back in the queue with the request kept */
	work_once("w-cancel", 5000, second);
	j = get_job(id);
	assert_string_equal(j->state, "queued");
	assert_string_equal(j->error_code, "cleanup_failed");
	assert_non_null(j->cancel_requested_at);
	job_free(j);
	usleep(1100 * 1000);
	work_once("w-cancel", 5000, second);
	j = get_job(id);
	assert_string_equal(j->state, "cancelled");
	assert_int_equal(cleanups_run, 1);
	assert_non_null(strstr(j->result, "thing-9"));
	assert_string_equal(j->error_message, "cancelled, and what it created was removed");
	job_free(j);
	/* without cleanup, a queued job that made something is cancelled at once, and kept */
	submit("made", NULL, NULL, id, &existing);
	work_once("w-cancel", 5000, first);
	assert_int_equal(jobs_cancel(db, id, user_id, false, &out, err), PB_OK);
	assert_int_equal(out, PB_CANCEL_DONE);
	j = get_job(id);
	assert_string_equal(j->state, "cancelled");
	assert_string_equal(j->error_message, "cancelled while waiting to be retried");
	job_free(j);
	drain();
}

static void cleanup_only_for_kinds_that_have_one(void **state)
{
	(void)state;
	char id[PB_ID_BUF];
	bool existing;
	pb_cancel_outcome out;
	pb_failure f = { 0 };
	drain();
	submit("refresh", NULL, NULL, id, &existing);
	pb_job *j = get_job(id);
	assert_int_equal(job_cancel(db, j, user_id, true, &out, &f), PB_EINVAL);
	assert_string_equal(pb_failure_code(&f), "bad_request");
	assert_non_null(strstr(f.message, "cleanup"));
	assert_int_equal(job_cancel(db, j, user_id, false, &out, &f), PB_OK);
	assert_int_equal(out, PB_CANCEL_DONE);
	/* cancelled already: the job has ended, nothing to cancel (409 job_ended naming its state) */
	pb_failure_clear(&f);
	assert_int_equal(job_cancel(db, j, user_id, false, &out, &f), PB_ECONFLICT);
	assert_string_equal(pb_failure_code(&f), "job_ended");
	assert_non_null(strstr(f.message, "(cancelled)"));
	job_free(j);
	assert_non_null(job_kind_find("publish"));
	assert_non_null(job_kind_find("publish")->cleanup);
	assert_null(job_kind_find("no-such-kind"));
}

/* Two attempts: phases of each are listed, a phase re-entered on the retry again. */
static int two_attempt_kind(pb_job_ctx *ctx)
{
	if (job_phase(ctx, "validating", 5) || job_phase(ctx, "creating", 20) || job_phase(ctx, "creating", 40))
		return PB_EIO;
	if (ctx->job->attempts == 1)
		return job_retry_later(ctx, 1, "unavailable", "try again");
	if (job_phase(ctx, "finalizing", 90))
		return PB_EIO;
	ctx->result = json_object();
	return PB_OK;
}

static void phase_history_keeps_every_phase(void **state)
{
	(void)state;
	static const pb_job_kind kinds[] = { { "two", two_attempt_kind, NULL }, { NULL, NULL, NULL } };
	static const char *const want[][2] = { { "validating", "1" }, { "creating", "1" }, { "validating", "2" },
					       { "creating", "2" }, { "finalizing", "2" } };
	char id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	drain();
	submit("two", NULL, NULL, id, &existing);
	work_once("w-cancel", 5000, kinds);
	usleep(5000);
	work_once("w-cancel", 5000, kinds);
	pb_job *j = get_job(id);
	assert_string_equal(j->state, "succeeded");
	job_free(j);
	json_t *phases = NULL;
	assert_int_equal(jobs_phases_json(db, id, &phases, err), PB_OK);
	assert_int_equal(json_array_size(phases), 5);
	for (size_t i = 0; i < 5; i++) {
		json_t *p = json_array_get(phases, i);
		assert_string_equal(json_string_value(json_object_get(p, "phase")), want[i][0]);
		assert_int_equal(json_integer_value(json_object_get(p, "attempt")), atoi(want[i][1]));
		assert_int_equal(strlen(json_string_value(json_object_get(p, "started_at"))), 24);
	}
	json_decref(phases);
}

static void list_is_paged_newest_first_and_filtered(void **state)
{
	(void)state;
	char ids[7][PB_ID_BUF], err[PB_ERR_MAX], next[PB_PAGE_CURSOR_BUF];
	bool existing;
	pb_job **v = NULL;
	size_t n = 0;
	pb_page page;
	drain();
	/* a fresh organization so that earlier tests' jobs do not count */
	char org2[PB_ID_BUF], u1[PB_ID_BUF], u2[PB_ID_BUF];
	assert_int_equal(identity_org_create(db, "listing", org2, err), PB_OK);
	assert_int_equal(identity_user_add(db, "lu1", "listing", PB_ROLE_MEMBER, NULL, 0, u1, err), PB_OK);
	assert_int_equal(identity_user_add(db, "lu2", "listing", PB_ROLE_OWNER, NULL, 0, u2, err), PB_OK);
	for (int i = 0; i < 7; i++) {
		pb_job_spec s = { .kind = i % 2 ? "publish" : "refresh", .org_id = org2, .user_id = i < 5 ? u1 : u2 };
		assert_int_equal(jobs_submit(db, &s, ids[i], &existing, err), PB_OK);
		usleep(2000);   /* distinct created_at, so the order is the submit order */
	}
	/* pages of 3, newest first, across all users */
	pb_job_filter all = { .org_id = org2 };
	assert_int_equal(pb_page_parse("3", NULL, 50, 200, &page, err), PB_OK);
	size_t seen = 0;
	for (int pageno = 0; pageno < 3; pageno++) {
		assert_int_equal(jobs_list(db, &all, &page, &v, &n, next, err), PB_OK);
		assert_int_equal(n, pageno < 2 ? 3 : 1);
		for (size_t i = 0; i < n; i++, seen++)
			assert_string_equal(v[i]->id, ids[6 - seen]);
		jobs_list_free(v, n);
		if (pageno < 2) {
			assert_true(next[0]);
			assert_int_equal(pb_page_parse("3", next, 50, 200, &page, err), PB_OK);
		} else {
			assert_false(next[0]);
		}
	}
	/* one user's, one kind, one state */
	pb_job_filter mine = { .org_id = org2, .user_id = u2 };
	assert_int_equal(pb_page_parse(NULL, NULL, 50, 200, &page, err), PB_OK);
	assert_int_equal(jobs_list(db, &mine, &page, &v, &n, next, err), PB_OK);
	assert_int_equal(n, 2);
	jobs_list_free(v, n);
	pb_job_filter kind = { .org_id = org2, .kind = "publish" };
	assert_int_equal(jobs_list(db, &kind, &page, &v, &n, next, err), PB_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v[0]->id, ids[5]);
	jobs_list_free(v, n);
	pb_cancel_outcome out;
	assert_int_equal(jobs_cancel(db, ids[2], u1, false, &out, err), PB_OK);
	pb_job_filter cancelled = { .org_id = org2, .state = "cancelled" };
	assert_int_equal(jobs_list(db, &cancelled, &page, &v, &n, next, err), PB_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0]->id, ids[2]);
	jobs_list_free(v, n);
	/* another org sees none of them */
	pb_job_filter other = { .org_id = org_id, .kind = "refresh", .state = "cancelled" };
	assert_int_equal(jobs_list(db, &other, &page, &v, &n, next, err), PB_OK);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 7; k++)
			assert_string_not_equal(v[i]->id, ids[k]);
	jobs_list_free(v, n);
	/* bad paging input */
	assert_int_equal(pb_page_parse("0", NULL, 50, 200, &page, err), PB_EINVAL);
	assert_int_equal(pb_page_parse("201", NULL, 50, 200, &page, err), PB_EINVAL);
	assert_int_equal(pb_page_parse("5x", NULL, 50, 200, &page, err), PB_EINVAL);
	assert_int_equal(pb_page_parse("", NULL, 50, 200, &page, err), PB_EINVAL);
	assert_int_equal(pb_page_parse(NULL, "garbage", 50, 200, &page, err), PB_EINVAL);
	assert_non_null(strstr(err, "cursor"));
	assert_int_equal(pb_page_parse(NULL, "2026-01-01T00:00:00.000Z_XYZ", 50, 200, &page, err), PB_EINVAL);
	assert_int_equal(pb_page_parse(NULL, "2026-13-01T00:00:00.000Z_0123456789abcdef0123456789abcdef", 50, 200,
				       &page, err), PB_EINVAL);
	assert_int_equal(pb_page_parse(NULL, "2026-01-01T00:00:00Z_0123456789abcdef0123456789abcdef", 50, 200, &page,
				       err), PB_OK);
	assert_string_equal(page.at, "2026-01-01T00:00:00.000Z");
	drain();
}

static void time_text_round_trips(void **state)
{
	(void)state;
	char t[PB_TIME_BUF];
	int64_t ms;
	pb_time_format(1764126245678LL, t);
	assert_string_equal(t, "2025-11-26T03:04:05.678Z");
	assert_int_equal(pb_time_parse(t, &ms), PB_OK);
	assert_true(ms == 1764126245678LL);
	assert_int_equal(pb_time_parse("2025-11-26T03:04:05+00:00", &ms), PB_OK);
	assert_true(ms == 1764126245000LL);
	assert_int_equal(pb_time_parse("2025-11-26 03:04:05", &ms), PB_EINVAL);
	assert_int_equal(pb_time_parse("2025-13-26T03:04:05Z", &ms), PB_EINVAL);
}

/* The heartbeat renews a lease only for the attempt's wall-clock limit: a kind whose thread is
 * stuck past it has its job failed (time_limit, naming the phase) and loses the lease, so the
 * queue goes on; a kind that raised its own limit is left alone. */
/* Stands for a thread stuck in a phase: it only notices, after a while, that its lease is
 * gone (a truly stuck one never would; the test needs it to return). The limit is far
 * below PB_JOB_TIME_LIMIT_MS so the test is quick: the kind lowers it through the ctx. */
static int stuck_kind(pb_job_ctx *ctx)
{
	atomic_store(&ctx->time_limit_ms, 300);
	if (job_phase(ctx, "validating", 5))
		return PB_EIO;
	for (int i = 0; i < 200 && !atomic_load(&ctx->lease_lost); i++)
		pb_sleep_ms(25);
	/* anything it tries now is refused */
	return job_phase(ctx, "creating_model", 50) == PB_ENOTFOUND ? PB_OK : PB_EINTERNAL;
}

/* Waits longer than the default it starts with, having raised its limit first. */
static int patient_kind(pb_job_ctx *ctx)
{
	atomic_store(&ctx->time_limit_ms, 300);
	job_extend_time_limit(ctx, 2000);
	job_extend_time_limit(ctx, 100);   /* never lowers it */
	pb_sleep_ms(700);
	if (atomic_load(&ctx->lease_lost) || job_phase(ctx, "done", 90))
		return PB_EIO;
	ctx->result = json_pack("{s:b}", "waited", 1);
	return PB_OK;
}

static void stuck_job_fails_at_its_time_limit(void **state)
{
	(void)state;
	static const pb_job_kind kinds[] = { { "stuck", stuck_kind, NULL }, { "patient", patient_kind, NULL }, { NULL, NULL, NULL } };
	char stuck_id[PB_ID_BUF], patient_id[PB_ID_BUF], next_id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	drain();
	submit("stuck", NULL, NULL, stuck_id, &existing);
	submit("patient", NULL, NULL, patient_id, &existing);
	submit("stuck", NULL, NULL, next_id, &existing);
	/* a 150 ms lease: a heartbeat every 50 ms */
	int64_t t0 = pb_mono_ms();
	assert_int_equal(work_once("w-time", 150, kinds), 3);
	assert_true(pb_mono_ms() - t0 < 4000);

	pb_job *j = NULL;
	assert_int_equal(jobs_get(db, stuck_id, &j, err), PB_OK);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->error_code, "time_limit");
	assert_string_equal(j->error_message, "attempt 1 ran longer than the job's time limit of 300 ms "
			    "(phase validating) and was stopped; its worker may be stuck");
	assert_int_equal(j->attempts, 1);
	job_free(j);
	/* the queue went on: the job after it ran too */
	assert_int_equal(jobs_get(db, next_id, &j, err), PB_OK);
	assert_string_equal(j->error_code, "time_limit");
	job_free(j);
	assert_int_equal(jobs_get(db, patient_id, &j, err), PB_OK);
	assert_string_equal(j->state, "succeeded");
	job_free(j);
	/* nothing left running or leased */
	long counts[PB_JOB_NSTATES];
	assert_int_equal(jobs_count_by_state(db, counts, err), PB_OK);
	assert_int_equal(counts[0] + counts[1], 0);
}

static int ticks_run;

static int counting_tick(pb_db *tdb, const pb_config *tcfg, char *err)
{
	(void)tdb, (void)tcfg, (void)err;
	ticks_run++;
	return PB_OK;
}

/* A busy worker checks its schedules on its first turn, then at most once a second: not before
 * each of the jobs it claims in a row (a few round trips to the database each). */
static void schedules_are_checked_once_a_second_not_per_job(void **state)
{
	(void)state;
	static const pb_job_kind kinds[] = { { "t", newer_kind, NULL }, { NULL, NULL, NULL } };
	static const pb_worker_tick ticks[] = { counting_tick, NULL };
	char id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	long ran = 0;
	drain();
	for (int i = 0; i < 5; i++)
		submit("t", NULL, NULL, id, &existing);
	ticks_run = 0;
	pb_worker_opts o = { .worker_id = "w-ticks", .lease_ms = 5000, .poll_ms = 10, .once = true,
			     .kinds = kinds, .ticks = ticks };
	int64_t t0 = pb_mono_ms();
	assert_int_equal(worker_run(db, &cfg, &o, &ran, err), PB_OK);
	assert_int_equal(ran, 5);
	/* once, unless this loaded machine took over a second for the five */
	assert_true(ticks_run >= 1 && ticks_run <= 1 + (pb_mono_ms() - t0) / 1000);
}

#define HEARTBEAT_JOBS 3
static char heartbeat_pids[HEARTBEAT_JOBS][512];
static int heartbeat_jobs;

/* Records the other connections to this database while it runs (PostgreSQL): the heartbeat's,
 * once it connected. */
static int heartbeat_seen_kind(pb_job_ctx *ctx)
{
	char err[PB_ERR_MAX];
	char *seen = heartbeat_pids[heartbeat_jobs++ % HEARTBEAT_JOBS];
	for (int tries = 0; tries < 500 && !seen[0]; tries++) {
		db_stmt *st = NULL;
		assert_int_equal(db_prepare_new(ctx->db, "SELECT string_agg(CAST(pid AS TEXT), ',' ORDER BY pid) "
						"FROM pg_stat_activity WHERE datname = current_database() "
						"AND pid <> pg_backend_pid()", &st, err), PB_OK);
		assert_int_equal(db_row(ctx->db, st, err), 1);
		if (!db_col_is_null(st, 0))
			xsnprintf(seen, 512, ",%s,", db_col_text(st, 0));
		db_stmt_free(st);
		if (!seen[0])
			usleep(10 * 1000);
	}
	return PB_OK;
}

/* The heartbeat's connection is opened once per worker and kept from job to job: on PostgreSQL a
 * new connection per job started and authenticated a server process each time. The same
 * connection shows in every job's run. */
static void heartbeat_keeps_its_connection_across_jobs(void **state)
{
	(void)state;
	static const pb_job_kind kinds[] = { { "t", heartbeat_seen_kind, NULL }, { NULL, NULL, NULL } };
	char id[PB_ID_BUF];
	bool existing;
	if (db_dialect(db) != DB_DIALECT_POSTGRESQL)
		skip();   /* a SQLite connection is a file opened in the process: nothing to see from outside */
	drain();
	memset(heartbeat_pids, 0, sizeof heartbeat_pids);
	heartbeat_jobs = 0;
	for (int i = 0; i < HEARTBEAT_JOBS; i++)
		submit("t", NULL, NULL, id, &existing);
	assert_int_equal(work_once("w-heart", 5000, kinds), HEARTBEAT_JOBS);
	assert_int_equal(heartbeat_jobs, HEARTBEAT_JOBS);
	/* a connection (",pid,") the first job saw is there in every later one */
	bool shared = false;
	for (char *p = heartbeat_pids[0]; !shared && p && p[1]; p = strchr(p + 1, ',')) {
		char pid[32];
		size_t n = strcspn(p + 1, ",");
		assert_true(n + 3 < sizeof pid);
		xsnprintf(pid, sizeof pid, ",%.*s,", (int)n, p + 1);
		shared = true;
		for (int i = 1; i < HEARTBEAT_JOBS; i++)
			shared = shared && strstr(heartbeat_pids[i], pid);
	}
	assert_true(shared);
}

/* ---- several workers on one database (issue 17: the queue across hosts) ---- */

#define RACE_JOBS 40

struct claims {
	pthread_mutex_t lock;
	char ids[RACE_JOBS * 2][PB_ID_BUF];
	int n;
};

/* A worker on its own connection: claims "race" jobs until none is due, finishing each. */
static int claim_all(pb_db *my, int i, void *ctx, char *err)
{
	static const char *const race[] = { "race", NULL };
	struct claims *c = ctx;
	char worker[16];
	xsnprintf(worker, sizeof worker, "racer-%d", i);
	for (;;) {
		pb_job *j = NULL;
		int rc = jobs_claim(my, worker, 60000, race, &j, err);
		if (rc <= 0)
			return rc;
		pthread_mutex_lock(&c->lock);
		if (c->n < RACE_JOBS * 2)
			memcpy(c->ids[c->n++], j->id, PB_ID_BUF);
		pthread_mutex_unlock(&c->lock);
		rc = jobs_finish(my, j->id, worker, true, "{}", NULL, NULL, err);
		job_free(j);
		if (rc)
			return rc;
	}
}

/* Four workers claiming at once, each on its own connection, take every job exactly once (on
 * PostgreSQL through FOR UPDATE SKIP LOCKED, on SQLite through BEGIN IMMEDIATE). */
static void concurrent_claimers_take_each_job_once(void **state)
{
	(void)state;
	struct claims c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	char id[PB_ID_BUF];
	bool existing;
	for (int i = 0; i < RACE_JOBS; i++)
		submit("race", NULL, NULL, id, &existing);
	tu_race(db_path, 4, claim_all, &c);
	assert_int_equal(c.n, RACE_JOBS);
	for (int i = 0; i < c.n; i++)
		for (int k = i + 1; k < c.n; k++)
			assert_string_not_equal(c.ids[i], c.ids[k]);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs WHERE kind = 'race' AND state = 'succeeded' "
				  "AND attempts = 1", NULL), RACE_JOBS);
}

struct submits {
	const char *org_id, *user_id;
	char ids[TU_RACERS_MAX][PB_ID_BUF];
};

static int submit_same_key(pb_db *my, int i, void *ctx, char *err)
{
	struct submits *sb = ctx;
	bool existing;
	pb_job_spec s = { .kind = "race-key", .org_id = sb->org_id, .user_id = sb->user_id, .idempotency_key = "one-key" };
	return jobs_submit(my, &s, sb->ids[i], &existing, err);
}

/* Submits of one idempotency key at once, from several connections: one job, every submit
 * answered with it (none fails on the unique index). */
static void concurrent_submits_of_one_key_queue_one_job(void **state)
{
	(void)state;
	struct submits sb = { org_id, user_id, { "" } };
	tu_race(db_path, 4, submit_same_key, &sb);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs WHERE idempotency_key = 'one-key'", NULL), 1);
	for (int i = 1; i < 4; i++)
		assert_string_equal(sb.ids[i], sb.ids[0]);
	char err[PB_ERR_MAX];
	pb_job *j = NULL;
	assert_int_equal(jobs_get(db, sb.ids[0], &j, err), PB_OK);
	assert_string_equal(j->kind, "race-key");
	pb_cancel_outcome o;
	assert_int_equal(jobs_cancel(db, j->id, NULL, false, &o, err), PB_OK);
	job_free(j);
}

struct cancel_race {
	const char *id;
	int claimed[TU_RACERS_MAX];
	pb_cancel_outcome outcome[TU_RACERS_MAX];
};

/* Racers 0 and 1 claim, 2 and 3 cancel the one queued job. */
static int claim_or_cancel(pb_db *my, int i, void *ctx, char *err)
{
	static const char *const kinds[] = { "race-cancel", NULL };
	struct cancel_race *c = ctx;
	if (i >= 2)
		return jobs_cancel(my, c->id, NULL, false, &c->outcome[i], err);
	pb_job *j = NULL;
	char worker[16];
	xsnprintf(worker, sizeof worker, "racer-%d", i);
	int rc = jobs_claim(my, worker, 60000, kinds, &j, err);
	c->claimed[i] = rc == 1;
	job_free(j);
	return rc < 0 ? rc : PB_OK;
}

/* A cancel and claims of one queued job at once, on their own connections: the cancel that
 * answers "cancelled at once" leaves nothing to claim, and a job claimed first is only asked to
 * stop (the cancel locks the row it reads, so a claim cannot slip in between). */
static void cancel_racing_claims_agrees_with_the_job(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	bool existing;
	for (int round = 0; round < 5; round++) {
		struct cancel_race c = { 0 };
		char id[PB_ID_BUF];
		pb_job *j = NULL;
		submit("race-cancel", NULL, NULL, id, &existing);
		c.id = id;
		tu_race(db_path, 4, claim_or_cancel, &c);
		int claims = c.claimed[0] + c.claimed[1];
		bool done = c.outcome[2] == PB_CANCEL_DONE || c.outcome[3] == PB_CANCEL_DONE;
		assert_int_equal(jobs_get(db, id, &j, err), PB_OK);
		if (done) {
			assert_string_equal(j->state, "cancelled");
			assert_int_equal(claims, 0);
		} else {
			assert_string_equal(j->state, "running");
			assert_int_equal(claims, 1);
			assert_non_null(j->cancel_requested_at);
			assert_int_equal(jobs_finish_cancelled(db, id, c.claimed[0] ? "racer-0" : "racer-1", NULL, "stopped",
							       err), PB_OK);
		}
		job_free(j);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(submit_is_idempotent_while_in_flight),
		cmocka_unit_test(finish_erases_private_input_and_checks_lease),
		cmocka_unit_test(expired_lease_is_reclaimed_then_given_up),
		cmocka_unit_test(worker_runs_retries_and_fails_with_message),
		cmocka_unit_test(worker_claims_only_the_kinds_it_knows),
		cmocka_unit_test(waiting_does_not_use_up_attempts),
		cmocka_unit_test(reseal_moves_private_input_to_the_new_key),
		cmocka_unit_test(queued_job_is_cancelled_at_once),
		cmocka_unit_test(running_job_stops_at_its_next_checkpoint),
		cmocka_unit_test(queued_job_to_clean_up_goes_to_a_worker),
		cmocka_unit_test(cleanup_only_for_kinds_that_have_one),
		cmocka_unit_test(phase_history_keeps_every_phase),
		cmocka_unit_test(list_is_paged_newest_first_and_filtered),
		cmocka_unit_test(time_text_round_trips),
		cmocka_unit_test(stuck_job_fails_at_its_time_limit),
		cmocka_unit_test(schedules_are_checked_once_a_second_not_per_job),
		cmocka_unit_test(heartbeat_keeps_its_connection_across_jobs),
		cmocka_unit_test(concurrent_claimers_take_each_job_once),
		cmocka_unit_test(concurrent_submits_of_one_key_queue_one_job),
		cmocka_unit_test(cancel_racing_claims_agrees_with_the_job),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
