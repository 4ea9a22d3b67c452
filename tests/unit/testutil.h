/* Test helpers (header-only: the Makefile builds each tests/unit/test_*.c on its own, so
 * shared code lives here as static functions): a temporary folder, a migrated database in
 * it, the source tree's paths and the shared corpus, and driving the emulator of emu.h from cmocka tests.
 * Include after <cmocka.h> (which needs setjmp.h, stdarg.h, stddef.h, stdint.h first). */
#ifndef PBIPORT_TEST_UTIL_H
#define PBIPORT_TEST_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/flow/worker.h"
#include "core/store/identity.h"
#include "runtime/config.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/util.h"
#include "tests/unit/emu.h"

#define TU_FN __attribute__((unused)) static

/* The source tree (PBIPORT_SRC, set by tests/run.sh) or the installed data folder.
 * Borrowed: static or environment storage. */
TU_FN const char *tu_src_dir(void)
{
	const char *src = getenv("PBIPORT_SRC");
	return src ? src : PBIPORT_DATADIR;
}

/* Writes <source tree>/<rel> into out (size bytes). 0 or a negative pb_rc. */
TU_FN int tu_src_path(char *out, size_t size, const char *rel)
{
	return xsnprintf(out, size, "%s/%s", tu_src_dir(), rel);
}

/* Writes data to path as an editor saves a file: into a new file beside it, renamed over it
 * (so it is a new inode), creating parent folders. 0 or a negative pb_rc with err. */
TU_FN int tu_write_file(const char *path, const void *data, size_t len, char *err)
{
	char tmp[4096];
	if (xsnprintf(tmp, sizeof tmp, "%s", path))
		return pb_err(err, PB_EINVAL, "%s: path too long", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return pb_err(err, PB_EIO, "%s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (xsnprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()))
		return pb_err(err, PB_EINVAL, "%s: path too long", path);
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return pb_err(err, PB_EIO, "%s: %s", tmp, strerror(errno));
	bool write_failed = len && fwrite(data, 1, len, f) != len;
	if (fclose(f) || write_failed || rename(tmp, path)) {
		unlink(tmp);
		return pb_err(err, PB_EIO, "%s: write failed", path);
	}
	return 0;
}

/* Writes text to <dir>/<name> (tu_write_file): a failure fails the test. */
TU_FN void tu_put(const char *dir, const char *name, const char *text)
{
	char path[4096], err[PB_ERR_MAX] = "path too long";
	if (xsnprintf(path, sizeof path, "%s/%s", dir, name) || tu_write_file(path, text, strlen(text), err))
		fail_msg("cannot write %s in %s: %s", name, dir, err);
}

/* The folder or file <PBIPORT_CORPUS>/<sub> of the shared corpus (it sits beside the project,
 * not in it: tests/run.sh) into path (size bytes): true when it is there, else false after
 * printing "SKIP: <what>: PBIPORT_CORPUS/<sub> not found" for the test to return. */
TU_FN bool tu_corpus_path(const char *sub, const char *what, char *path, size_t size)
{
	const char *root = getenv("PBIPORT_CORPUS");
	struct stat st;
	if (root && !xsnprintf(path, size, "%s/%s", root, sub) && !stat(path, &st))
		return true;
	printf("SKIP: %s: PBIPORT_CORPUS/%s not found\n", what, sub);
	return false;
}

/* Creates /tmp/pbiport-test-<name>-XXXXXX into dir (size bytes). 0, or -1 on failure. */
TU_FN int tu_mkdtemp(char *dir, size_t size, const char *name)
{
	if (xsnprintf(dir, size, "/tmp/pbiport-test-%s-XXXXXX", name))
		return -1;
	return mkdtemp(dir) ? 0 : -1;
}

/* Removes the folder made by tu_mkdtemp. 0, or -1 when rm failed. */
TU_FN int tu_rmtree(const char *dir)
{
	char cmd[128];
	if (xsnprintf(cmd, sizeof cmd, "rm -rf '%s'", dir))
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

/* The temporary folder of a test binary whose tests share one (cmocka_run_group_tests(tests,
 * tu_tmpdir_setup, tu_tmpdir_teardown)): /tmp/pbiport-test-<binary>-XXXXXX. */
__attribute__((unused)) static char tu_tmpdir[64];

TU_FN int tu_tmpdir_setup(void **state)
{
	(void)state;
	return tu_mkdtemp(tu_tmpdir, sizeof tu_tmpdir, program_invocation_short_name);
}

TU_FN int tu_tmpdir_teardown(void **state)
{
	(void)state;
	return tu_rmtree(tu_tmpdir);
}

#include "tests/unit/pg_cluster.h"   /* PBIPORT_TEST_DB=postgresql: tu_pg_test_db */

/* Opens (creating) <dir>/<file> as *db and applies the tree's sql/ migrations. The full path
 * goes into path (path_size bytes; may be NULL). *db is new: caller closes with db_close. */
TU_FN int tu_db_open_migrated(const char *dir, const char *file, char *path, size_t path_size, pb_db **db,
			      char *err)
{
	char p[256], sql[512];
	int rc = tu_pg_wanted() ? tu_pg_test_db(file, p, sizeof p, err) : xsnprintf(p, sizeof p, "%s/%s", dir, file);
	if (rc < 0 && tu_pg_wanted())
		return rc;
	if (!rc)
		rc = tu_src_path(sql, sizeof sql, "sql");
	if (rc)
		return pb_err(err, rc, "test database path under %s too long", dir);
	rc = db_open(p, true, db, err);
	if (!rc)
		rc = db_migrate(*db, sql, NULL, err);
	if (!rc && path)
		rc = xsnprintf(path, path_size, "%s", p);
	return rc;
}

/* The group fixture of the store and flow tests: a temporary folder dir (tu_mkdtemp) holding the
 * migrated database <name>.db, open as *db; its path goes into path (may be NULL) and, with the
 * defaults, into cfg (may be NULL): a worker's heartbeat opens the database by that name.
 * 0, or a negative pb_rc with err (tu_setup_failed reports it). */
TU_FN int tu_db_setup(const char *name, char dir[64], char path[256], pb_db **db, pb_config *cfg, char *err)
{
	char file[64];
	if (tu_mkdtemp(dir, 64, name))
		return pb_err(err, PB_EIO, "cannot make a temporary folder for %s", name);
	if (xsnprintf(file, sizeof file, "%s.db", name))
		return pb_err(err, PB_EINVAL, "test name %s too long", name);
	int rc = tu_db_open_migrated(dir, file, path, path ? 256 : 0, db, err);
	if (cfg) {
		config_defaults(cfg);
		cfg->db_path = path;
	}
	return rc;
}

/* The organization the store and flow tests work in: "acme", with its first user "ann" in role
 * (the owner, or a member). Their ids go into org_id and ann_id. 0 or a negative pb_rc with err. */
TU_FN int tu_acme(pb_db *db, pb_role role, char org_id[PB_ID_BUF], char ann_id[PB_ID_BUF], char *err)
{
	int rc = identity_org_create(db, "acme", org_id, err);
	return rc ? rc : identity_user_add(db, "ann", "acme", role, NULL, 0, ann_id, err);
}

/* What imports (integrations, refreshes) need of cfg: an encryption key for the secrets they seal
 * and APPLICATION_INGESTIONS_ENABLED. */
TU_FN int tu_ingestions_on(pb_config *cfg, char *err)
{
	cfg->ingestions_enabled = true;
	return pb_keyring_parse("4444444444444444444444444444444444444444444444444444444444444444",
				&cfg->encryption_keys, err);
}

/* Undoes tu_db_setup: closes db, frees the encryption keys the test gave cfg (may be NULL) and
 * removes dir. 0, or -1 when the folder could not be removed. */
TU_FN int tu_db_teardown(const char *dir, pb_db *db, pb_config *cfg)
{
	db_close(db);
	if (cfg) {
		pb_keyring_free(cfg->encryption_keys);
		cfg->encryption_keys = NULL;
	}
	return tu_rmtree(dir);
}

/* The number query sql (SELECT COUNT(*) ...) answers, with arg bound to its one parameter (NULL:
 * none). An uncached statement (db_prepare_new), not db_prepare's cache of constant statements:
 * tests build some of their SQL text. A query that fails fails the test. */
TU_FN long tu_count(pb_db *db, const char *sql, const char *arg)
{
	db_stmt *st = NULL;
	char err[PB_ERR_MAX] = "";
	if (db_prepare_new(db, sql, &st, err))
		fail_msg("%s: %s", sql, err);
	if (arg)
		assert_int_equal(db_bind_text(st, 1, arg, err), PB_OK);
	if (db_row(db, st, err) != 1)
		fail_msg("%s: no row: %s", sql, err);
	long n = (long)db_col_int64(st, 0);
	db_stmt_free(st);
	return n;
}

/* Runs the statements of sql (test data, a tweak of the schema), without parameters; a failure
 * fails the test with the database's message. */
TU_FN void tu_sql(pb_db *db, const char *sql)
{
	char err[PB_ERR_MAX] = "";
	if (db_exec_script(db, sql, err))
		fail_msg("%s: %s", sql, err);
}

/* Makes the database refuse event ("INSERT" or "DELETE") on table while cond holds (an SQL
 * condition that may name NEW.column for an insert; NULL: always), failing the statement with
 * message: a fault injected to test that several writes commit together. name names the refusal
 * (tu_allow lifts it). Written for db's engine: a SQLite trigger with RAISE(ABORT), or a
 * PostgreSQL trigger calling a PL/pgSQL function of the same name that raises an exception. */
TU_FN void tu_refuse(pb_db *db, const char *name, const char *event, const char *table, const char *cond,
		     const char *message)
{
	char sql[2048];
	int bad = db_dialect(db) == DB_DIALECT_POSTGRESQL
		? xsnprintf(sql, sizeof sql,
			    "CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF %s THEN "
			    "RAISE EXCEPTION '%s'; END IF; RETURN %s; END $$; "
			    "CREATE TRIGGER %s BEFORE %s ON %s FOR EACH ROW EXECUTE FUNCTION %s()",
			    name, cond ? cond : "true", message, strcmp(event, "DELETE") ? "NEW" : "OLD", name, event,
			    table, name)
		: xsnprintf(sql, sizeof sql, "CREATE TEMP TRIGGER %s BEFORE %s ON %s %s%s BEGIN SELECT RAISE(ABORT, '%s'); END",
			    name, event, table, cond ? "WHEN " : "", cond ? cond : "", message);
	assert_int_equal(bad, 0);
	tu_sql(db, sql);
}

/* Lifts the refusal name on table that tu_refuse made. */
TU_FN void tu_allow(pb_db *db, const char *name, const char *table)
{
	char sql[256];
	assert_int_equal(db_dialect(db) == DB_DIALECT_POSTGRESQL
				 ? xsnprintf(sql, sizeof sql, "DROP TRIGGER %s ON %s; DROP FUNCTION %s()", name, table, name)
				 : xsnprintf(sql, sizeof sql, "DROP TRIGGER %s", name),
			 0);
	tu_sql(db, sql);
}

/* What a group setup returns when a step failed: err on stderr (cmocka prints only that the
 * setup failed), then -1. */
TU_FN int tu_setup_failed(const char *err)
{
	fprintf(stderr, "setup: %s\n", err);
	return -1;
}

/* The names of every job kind pbiport runs (core/flow/job_kinds.c): what a worker claims. */
TU_FN const char *const *tu_all_kinds(void)
{
	static const char *names[PB_JOB_CLAIM_KINDS_MAX + 1];
	char err[PB_ERR_MAX];
	assert_int_equal(job_kind_names(pb_job_kinds, names, err), PB_OK);
	return names;
}

/* ---------- several connections at once ---------- */

/* What one racer of tu_race does, on a connection of its own (racer i of n): 0 when all went as it
 * should, else a pb_rc with why in err. Not cmocka's asserts: it runs on a thread of its own. */
typedef int (*tu_racer_fn)(pb_db *db, int i, void *ctx, char *err);

#define TU_RACERS_MAX 8

struct tu_racer {
	const char *target;
	int i;
	tu_racer_fn fn;
	void *ctx;
	pthread_barrier_t *go;
	int rc;
	char err[PB_ERR_MAX];
};

TU_FN void *tu_racer_main(void *arg)
{
	struct tu_racer *r = arg;
	pb_db *db = NULL;
	r->rc = db_open(r->target, false, &db, r->err);
	pthread_barrier_wait(r->go);   /* every racer starts at once, connected */
	if (!r->rc)
		r->rc = r->fn(db, r->i, r->ctx, r->err);
	db_close(db);
	return NULL;
}

/* Runs fn on n threads at once (2 to TU_RACERS_MAX), each on a pb_db of its own opened on target,
 * the test database (tu_db_setup's path: a SQLite file, or a PostgreSQL connection string), as
 * processes on several hosts share one database. Fails the test with the first racer's failure. */
TU_FN void tu_race(const char *target, int n, tu_racer_fn fn, void *ctx)
{
	struct tu_racer r[TU_RACERS_MAX];
	pthread_t t[TU_RACERS_MAX];
	pthread_barrier_t go;
	assert_true(n >= 2 && n <= TU_RACERS_MAX);
	assert_int_equal(pthread_barrier_init(&go, NULL, (unsigned)n), 0);
	for (int i = 0; i < n; i++) {
		r[i] = (struct tu_racer){ .target = target, .i = i, .fn = fn, .ctx = ctx, .go = &go };
		assert_int_equal(pthread_create(&t[i], NULL, tu_racer_main, &r[i]), 0);
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < n; i++)
		if (r[i].rc)
			fail_msg("racer %d of %d: %s", i, n, r[i].err);
}

/* ---------- the emulator, started once per test binary ---------- */

/* The binary's one emulator and whether it runs: -2 not tried yet, then emu_start's answer
 * (0 running, 1 skipped). */
__attribute__((unused)) static struct emu tu_emu;
__attribute__((unused)) static int tu_emu_state = -2;

/* Starts the emulator on first use (a failed start fails the test). True when it runs,
 * false when skipped (no python3 or no emulator). */
TU_FN bool tu_have_emu(void)
{
	if (tu_emu_state == -2) {
		tu_emu_state = emu_start(&tu_emu, NULL);
		assert_int_not_equal(tu_emu_state, -1);
	}
	return tu_emu_state == 0;
}

/* Skips the calling test (skip() does not return) when the emulator does not run. */
TU_FN void tu_need_emu(void)
{
	if (!tu_have_emu())
		skip();
}

/* Group teardown: stops the emulator if tu_have_emu started it. */
TU_FN int tu_emu_teardown(void **state)
{
	(void)state;
	if (tu_emu_state == 0)
		emu_stop(&tu_emu);
	tu_emu_state = -2;
	return 0;
}

/* A control call that must succeed. */
TU_FN void tu_emu_ok(const char *method, const char *what, const char *body)
{
	assert_int_equal(emu_ctl(&tu_emu, method, what, body, NULL), 200);
}

/* Adds a fault (JSON, see tests/emulator/server.py) / clears all faults. */
TU_FN void tu_fault(const char *json)
{
	tu_emu_ok("POST", "faults", json);
}

TU_FN void tu_no_faults(void)
{
	tu_emu_ok("DELETE", "faults", NULL);
}

#endif
