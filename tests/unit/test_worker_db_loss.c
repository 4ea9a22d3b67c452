/* Workers on PostgreSQL whose connections are cut again and again, at any point of their loop (the
 * claim, a phase, a checkpoint, the heartbeat, the end of a job, the schedule checks): what a
 * server restart or a network cut does to them. Every job must still end succeeded, run by
 * workers that never stopped on their own; nor does a worker stop when its claims fail with an
 * error that is not a lost connection. Against a throwaway cluster (tests/tools/pg_cluster.py);
 * skips (with the reason) only when the PostgreSQL server binaries are not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/flow/worker.h"
#include "runtime/config.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/jobs.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"
#include "tests/unit/pg_cluster.h"

#define JOBS 40
#define WORKERS 2
#define SETTLE_MS 120000         /* how long the jobs may take to end once the cuts stop */

static tu_pg cluster;
static bool have_cluster;
static char conninfo[1200];
static pb_config cfg;

static int setup(void **state)
{
	(void)state;
	int r = tu_pg_start(&cluster);
	have_cluster = r == 1;
	return r < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_pg_stop(&cluster);
	return 0;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Three phases, each with a checkpoint, a few milliseconds apart: long enough for a cut to land
 * inside a job, short enough for many jobs to run. */
static int stepping_kind(pb_job_ctx *ctx)
{
	static const char *const phases[] = { "one", "two", "three" };
	for (int i = 0; i < 3; i++) {
		int rc = job_checkpoint_phase(ctx, phases[i], json_true(), phases[i], 30 * (i + 1));
		if (rc)
			return rc;
		nap_ms(5);
	}
	return PB_OK;
}

static const pb_job_kind kinds[] = { { "stepping", stepping_kind, NULL }, { NULL, NULL, NULL } };

struct worker {
	pthread_t thread;
	char id[32];
	volatile int stop;
	volatile int returned;    /* worker_run came back */
	pb_db *db;                /* opened before the cuts start: a worker that cannot connect at
				   * start-up ends at once (cli/cmd_worker.c), which is not what is tested */
	int rc;
	long ran;
	char err[PB_ERR_MAX];
};

static void *work(void *arg)
{
	struct worker *w = arg;
	/* the real schedule checks too: they run statements of their own between claims */
	pb_worker_opts o = { .worker_id = w->id, .lease_ms = 3000, .poll_ms = 20, .kinds = kinds, .stop = &w->stop };
	w->rc = worker_run(w->db, &cfg, &o, &w->ran, w->err);
	w->returned = 1;
	return NULL;
}

/* A disruption of the database, one of a series (n counts from 0). */
typedef void disrupt_fn(pb_db *db, int n);

/* Ends every other connection to the test's database, as a server restart does (SQLSTATE 57P01 to
 * each, then a closed socket). */
static void cut_connections(pb_db *db, int n)
{
	(void)n;
	char err[PB_ERR_MAX];
	db_stmt *st = NULL;
	if (db_prepare_new(db,
			   "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
			   "WHERE datname = current_database() AND pid <> pg_backend_pid()",
			   &st, err))
		fail_msg("%s", err);
	if (db_row(db, st, err) != 1)
		fail_msg("%s", err);
	db_stmt_free(st);
}

/* Stops the server (fast: every connection cut) and starts it again after a while the workers
 * spend failing to connect. */
static void restart_server(pb_db *db, int n)
{
	(void)db;
	assert_int_equal(tu_pg_do(&cluster, "down"), 0);
	nap_ms(200 + 150 * (n % 4));
	assert_int_equal(tu_pg_do(&cluster, "up"), 0);
}

/* A new migrated database named name, open as the returned handle (the test closes it), with
 * the organization acme and its member ann (their ids in org and user); cfg points the workers'
 * heartbeats at it. Skips without PostgreSQL. */
static pb_db *fresh_db(const char *name, char org[PB_ID_BUF], char user[PB_ID_BUF])
{
	char err[PB_ERR_MAX], sql[512];
	pb_db *db = NULL;
	if (!have_cluster) {
		printf("SKIP: PostgreSQL is not installed\n");
		skip();
	}
	if (tu_pg_createdb(&cluster, name, conninfo, sizeof conninfo, err) || db_open(conninfo, false, &db, err) ||
	    tu_src_path(sql, sizeof sql, "sql") || db_migrate(db, sql, NULL, err) ||
	    tu_acme(db, PB_ROLE_MEMBER, org, user, err))
		fail_msg("setup: %s", err);
	config_defaults(&cfg);
	cfg.db_path = conninfo;   /* the heartbeat's own connection */
	return db;
}

/* Submits JOBS jobs while disrupting the database every gap_ms (about) for disrupt_ms, then waits
 * for all of them to end succeeded, run by WORKERS workers that never stopped on their own. */
static void jobs_survive(const char *name, disrupt_fn *disrupt, long disrupt_ms, long gap_ms)
{
	char err[PB_ERR_MAX], org[PB_ID_BUF], user[PB_ID_BUF];
	pb_db *db = fresh_db(name, org, user);

	struct worker w[WORKERS];
	memset(w, 0, sizeof w);
	for (int i = 0; i < WORKERS; i++) {
		snprintf(w[i].id, sizeof w[i].id, "loss-%d", i);
		if (db_open(conninfo, false, &w[i].db, err))
			fail_msg("%s", err);
		assert_int_equal(pthread_create(&w[i].thread, NULL, work, &w[i]), 0);
	}
	char ids[JOBS][PB_ID_BUF];
	unsigned seed = 7;
	int64_t end = pb_mono_ms() + disrupt_ms;
	int submitted = 0, disruptions = 0;
	while (pb_mono_ms() < end || submitted < JOBS) {
		/* a job is acknowledged when jobs_submit says so; during an outage it is not */
		bool existing = false;
		pb_job_spec s = { .kind = "stepping", .org_id = org, .user_id = user, .max_attempts = 1000 };
		if (submitted < JOBS && jobs_submit(db, &s, ids[submitted], &existing, err) == PB_OK)
			submitted++;
		if (pb_mono_ms() < end)
			disrupt(db, disruptions++);
		nap_ms(gap_ms / 4 + (long)(rand_r(&seed) % (unsigned)gap_ms));
	}
	/* every job ends, run by workers still at work */
	int64_t deadline = pb_mono_ms() + SETTLE_MS;
	long left = JOBS;
	while (pb_mono_ms() < deadline) {
		left = tu_count(db, "SELECT COUNT(*) FROM jobs WHERE kind = 'stepping' AND state <> 'succeeded'", NULL);
		if (!left)
			break;
		nap_ms(100);
	}
	for (int i = 0; i < WORKERS; i++)
		if (w[i].returned)
			fail_msg("worker %s stopped on its own (%d) after %d disruptions: %s", w[i].id, w[i].rc,
				 disruptions, w[i].err);
	if (left) {
		for (int i = 0; i < JOBS; i++) {
			pb_job *j = NULL;
			if (!jobs_get(db, ids[i], &j, err) && strcmp(j->state, "succeeded"))
				printf("job %s: %s, attempt %d\n", j->id, j->state, j->attempts);
			job_free(j);
		}
		fail_msg("%ld of %d jobs did not end succeeded within %d s of the last of %d disruptions", left, JOBS,
			 SETTLE_MS / 1000, disruptions);
	}
	long ran = 0;
	for (int i = 0; i < WORKERS; i++) {
		w[i].stop = 1;
		pthread_join(w[i].thread, NULL);
		assert_int_equal(w[i].rc, PB_OK);
		ran += w[i].ran;
		db_close(w[i].db);
	}
	assert_true(ran >= JOBS);
	db_close(db);
}

static void jobs_end_succeeded_though_connections_are_cut(void **state)
{
	(void)state;
	jobs_survive("t_worker_cuts", cut_connections, 4000, 100);
}

static void jobs_end_succeeded_though_the_server_restarts(void **state)
{
	(void)state;
	jobs_survive("t_worker_restarts", restart_server, 6000, 400);
}

/* Every claim fails for a while with an error of the server's that is not a lost connection (a
 * trigger refuses every update of a job): the worker logs it and tries again later instead of
 * ending, and runs the job once claims work again. */
static void worker_outlives_failing_claims(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], org[PB_ID_BUF], user[PB_ID_BUF], id[PB_ID_BUF];
	pb_db *db = fresh_db("t_worker_refused", org, user);
	if (db_exec_script(db,
			   "CREATE TABLE refuse_updates (x INTEGER); INSERT INTO refuse_updates VALUES (1); "
			   "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
			   "IF EXISTS (SELECT 1 FROM refuse_updates) THEN RAISE EXCEPTION 'updates of jobs refused'; "
			   "END IF; RETURN NEW; END $$; "
			   "CREATE TRIGGER refuse BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION refuse()",
			   err))
		fail_msg("setup: %s", err);
	bool existing = false;
	pb_job_spec s = { .kind = "stepping", .org_id = org, .user_id = user };
	assert_int_equal(jobs_submit(db, &s, id, &existing, err), PB_OK);

	struct worker w = { .id = "refused" };
	if (db_open(conninfo, false, &w.db, err))
		fail_msg("%s", err);
	assert_int_equal(pthread_create(&w.thread, NULL, work, &w), 0);
	nap_ms(300);   /* claims fail meanwhile */
	if (w.returned)
		fail_msg("the worker stopped on its own (%d): %s", w.rc, w.err);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs WHERE state = 'queued'", NULL), 1);
	if (db_exec_script(db, "DELETE FROM refuse_updates", err))
		fail_msg("%s", err);
	int64_t deadline = pb_mono_ms() + SETTLE_MS;
	while (pb_mono_ms() < deadline && !w.returned &&
	       tu_count(db, "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'", NULL) != 1)
		nap_ms(50);
	assert_false(w.returned);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'", NULL), 1);
	w.stop = 1;
	pthread_join(w.thread, NULL);
	assert_int_equal(w.rc, PB_OK);
	db_close(w.db);
	db_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jobs_end_succeeded_though_connections_are_cut),
		cmocka_unit_test(jobs_end_succeeded_though_the_server_restarts),
		cmocka_unit_test(worker_outlives_failing_claims),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
