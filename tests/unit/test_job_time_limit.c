/* The worker's heartbeat renews a job's lease only for the attempt's wall-clock limit: a
 * kind whose thread is stuck past it has its job failed (time_limit, naming the phase) and
 * loses the lease, so the queue goes on; a kind that raised its own limit is left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/identity.h"
#include "core/worker.h"
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
	if (tu_mkdtemp(tmpdir, sizeof tmpdir, "jobtime") ||
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

static void submit(const char *kind, char id[PB_ID_BUF])
{
	char err[PB_ERR_MAX];
	bool existing;
	pb_job_spec s = { .kind = kind, .org_id = org_id, .user_id = user_id, .max_attempts = 3 };
	assert_int_equal(jobs_submit(db, &s, id, &existing, err), PB_OK);
}

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
	submit("stuck", stuck_id);
	submit("patient", patient_id);
	submit("stuck", next_id);
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
		cmocka_unit_test(stuck_job_fails_at_its_time_limit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
