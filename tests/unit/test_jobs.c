/* The job queue and the worker loop: submit with idempotency, claim, phases and
 * checkpoints, finish (private input erased), transient retry and giving up, lease
 * expiry (a dead worker's job is reclaimed and resumes from its checkpoint), the
 * attempt's time limit (a stuck job is failed and the queue goes on). */
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

#include "core/identity.h"
#include "core/worker.h"
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
static char org_id[PB_ID_BUF], user_id[PB_ID_BUF];

static int setup(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	if (tu_mkdtemp(tmpdir, sizeof tmpdir, "jobs") ||
	    tu_db_open_migrated(tmpdir, "jobs.db", db_path, sizeof db_path, &db, err) ||
	    identity_org_create(db, "acme", org_id, err) ||
	    identity_user_add(db, "ann", "acme", PB_ROLE_MEMBER, NULL, 0, user_id, err)) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	cfg.db_path = db_path;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	db_close(db);
	return tu_rmtree(tmpdir);
}

static void submit(const char *kind, const char *key, const char *private_input, char id[PB_ID_BUF],
		   bool *existing)
{
	char err[PB_ERR_MAX];
	pb_job_spec s = { .kind = kind, .org_id = org_id, .user_id = user_id, .input = "{\"n\":1}",
			  .private_input = private_input, .idempotency_key = key, .max_attempts = 3 };
	assert_int_equal(jobs_submit(db, &s, id, existing, err), PB_OK);
}

static void drain(void)
{
	/* finish whatever earlier tests left queued so each test starts clean */
	char err[PB_ERR_MAX];
	pb_job *j = NULL;
	while (jobs_claim(db, "drain", 1000, NULL, &j, err) == 1) {
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
	assert_int_equal(jobs_claim(db, "w1", 10000, NULL, &j, err), 1);
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
	assert_int_equal(jobs_claim(db, "w1", 10000, NULL, &j, err), 1);
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
		assert_int_equal(jobs_claim(db, "dying", 1, NULL, &j, err), 1);
		assert_string_equal(j->id, id);
		assert_int_equal(j->attempts, attempt);
		job_free(j);
		usleep(5000);
	}
	/* the third expiry exhausts max_attempts: failed, not claimed again */
	assert_int_equal(jobs_claim(db, "w1", 10000, NULL, &j, err), 0);
	assert_int_equal(jobs_get(db, id, &j, err), PB_OK);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->error_code, "worker_lost");
	job_free(j);
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

static void worker_runs_retries_and_fails_with_message(void **state)
{
	(void)state;
	static const pb_job_kind kinds[] = { { "flaky", flaky_kind }, { "failing", failing_kind }, { NULL, NULL } };
	static const pb_worker_tick ticks[] = { NULL };
	char ok_id[PB_ID_BUF], bad_id[PB_ID_BUF], odd_id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	drain();
	submit("flaky", NULL, NULL, ok_id, &existing);
	submit("failing", NULL, NULL, bad_id, &existing);
	submit("no-such-kind", NULL, NULL, odd_id, &existing);
	pb_worker_opts o = { .worker_id = "w-test", .lease_ms = 5000, .poll_ms = 10, .once = true,
			     .kinds = kinds, .ticks = ticks };
	long ran = 0;
	assert_int_equal(worker_run(db, &cfg, &o, &ran, err), PB_OK);
	/* the retry is due 1 ms later; a second pass picks it up */
	usleep(5000);
	assert_int_equal(worker_run(db, &cfg, &o, &ran, err), PB_OK);
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
	assert_int_equal(jobs_get(db, odd_id, &j, err), PB_OK);
	assert_string_equal(j->error_code, "unknown_kind");
	job_free(j);
	long counts[4];
	assert_int_equal(jobs_count_by_state(db, counts, err), PB_OK);
	assert_int_equal(counts[0] + counts[1], 0);
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
	static const pb_job_kind kinds[] = { { "stuck", stuck_kind }, { "patient", patient_kind }, { NULL, NULL } };
	static const pb_worker_tick ticks[] = { NULL };
	char stuck_id[PB_ID_BUF], patient_id[PB_ID_BUF], next_id[PB_ID_BUF], err[PB_ERR_MAX];
	bool existing;
	drain();
	submit("stuck", NULL, NULL, stuck_id, &existing);
	submit("patient", NULL, NULL, patient_id, &existing);
	submit("stuck", NULL, NULL, next_id, &existing);
	/* heartbeat every 50 ms */
	pb_worker_opts o = { .worker_id = "w-time", .lease_ms = 150, .poll_ms = 10, .once = true,
			     .kinds = kinds, .ticks = ticks };
	long ran = 0;
	int64_t t0 = pb_mono_ms();
	assert_int_equal(worker_run(db, &cfg, &o, &ran, err), PB_OK);
	assert_int_equal(ran, 3);
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
	long counts[4];
	assert_int_equal(jobs_count_by_state(db, counts, err), PB_OK);
	assert_int_equal(counts[0] + counts[1], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(submit_is_idempotent_while_in_flight),
		cmocka_unit_test(finish_erases_private_input_and_checks_lease),
		cmocka_unit_test(expired_lease_is_reclaimed_then_given_up),
		cmocka_unit_test(worker_runs_retries_and_fails_with_message),
		cmocka_unit_test(reseal_moves_private_input_to_the_new_key),
		cmocka_unit_test(time_text_round_trips),
		cmocka_unit_test(stuck_job_fails_at_its_time_limit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
