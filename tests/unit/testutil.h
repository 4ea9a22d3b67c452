/* Test helpers (header-only: the Makefile builds each tests/unit/test_*.c on its own, so
 * shared code lives here as static functions): a temporary folder, a migrated database in
 * it, the source tree's paths, and driving the emulator of emu.h from cmocka tests.
 * Include after <cmocka.h> (which needs setjmp.h, stdarg.h, stddef.h, stdint.h first). */
#ifndef PBIPORT_TEST_UTIL_H
#define PBIPORT_TEST_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

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

/* Opens (creating) <dir>/<file> as *db and applies the tree's sql/ migrations. The full path
 * goes into path (path_size bytes; may be NULL). *db is new: caller closes with db_close. */
TU_FN int tu_db_open_migrated(const char *dir, const char *file, char *path, size_t path_size, pb_db **db,
			      char *err)
{
	char p[256], sql[512];
	int rc = xsnprintf(p, sizeof p, "%s/%s", dir, file);
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

/* ---------- the emulator, started once per test binary ---------- */

/* Starts the emulator on first use; *state is -2 before, then emu_start's answer (a failed
 * start fails the test). True when it runs, false when skipped. */
TU_FN bool tu_emu_once(struct emu *e, int *state)
{
	if (*state == -2) {
		*state = emu_start(e, NULL);
		assert_int_not_equal(*state, -1);
	}
	return *state == 0;
}

/* Stops it again if tu_emu_once started it. */
TU_FN void tu_emu_stop(struct emu *e, int state)
{
	if (state == 0)
		emu_stop(e);
}

/* Control calls that must succeed. */
TU_FN void tu_emu_ok(struct emu *e, const char *method, const char *what, const char *body)
{
	assert_int_equal(emu_ctl(e, method, what, body, NULL), 200);
}

TU_FN void tu_fault(struct emu *e, const char *json)
{
	tu_emu_ok(e, "POST", "faults", json);
}

TU_FN void tu_no_faults(struct emu *e)
{
	tu_emu_ok(e, "DELETE", "faults", NULL);
}

#endif
