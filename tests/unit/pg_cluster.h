/* A throwaway PostgreSQL cluster for unit tests (header-only), through tests/tools/pg_cluster.py:
 * started once per test binary, stopped by tu_pg_stop() or, when the test exits first, by the
 * script's watcher of this process. When the test runs under `pg_cluster.py run` (PBIPORT_TEST_PG
 * and PBIPORT_TEST_PG_DIR set), that cluster is used. Each test gets a database of its own
 * (tu_pg_createdb).
 * With PBIPORT_TEST_DB=postgresql, tu_db_setup (testutil.h) gives every test such a database
 * instead of a SQLite file (tu_pg_test_db): `make check-pg` runs the unit tests that way.
 * Included by testutil.h, whose tu_src_path it uses. */
#ifndef PBIPORT_TEST_PG_CLUSTER_H
#define PBIPORT_TEST_PG_CLUSTER_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/db.h"
#include "runtime/util.h"

#define TU_PG_SKIP 77   /* pg_cluster.py's exit status when the PostgreSQL binaries are absent */

typedef struct tu_pg {
	char dir[PATH_MAX];      /* the cluster's folder (pg_cluster.py down/up/stop DIR) */
	char conninfo[1024];     /* libpq key=value string of its first database */
	bool owned;              /* started here: tu_pg_stop removes it */
} tu_pg;

/* Runs `python3 tests/tools/pg_cluster.py args...` and keeps its standard output in out (size
 * bytes, may be NULL). Its exit status, or -1 when it could not run. */
TU_FN int tu_pg_tool(char *out, size_t size, const char *const *args, int nargs)
{
	char script[PATH_MAX];
	const char *argv[12];
	int fd[2], status = -1;
	if (nargs > 9 || tu_src_path(script, sizeof script, "tests/tools/pg_cluster.py") || pipe(fd))
		return -1;
	argv[0] = "python3";
	argv[1] = script;
	for (int i = 0; i < nargs; i++)
		argv[2 + i] = args[i];
	argv[2 + nargs] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	size_t n = 0;
	ssize_t r;
	char sink[256];
	while (pid > 0) {
		char *at = out && n + 1 < size ? out + n : sink;
		size_t room = out && n + 1 < size ? size - 1 - n : sizeof sink;
		if ((r = read(fd[0], at, room)) <= 0)
			break;
		if (at != sink)
			n += (size_t)r;
	}
	close(fd[0]);
	if (out && size)
		out[n] = '\0';
	if (pid > 0 && waitpid(pid, &status, 0) == pid)
		return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	return -1;
}

/* The cluster the tests use: 1 when it runs (pg filled in), 0 when the PostgreSQL binaries are
 * absent (a "SKIP: ..." line printed: the caller skips), -1 when it could not be started (its
 * reason printed). */
TU_FN int tu_pg_start(tu_pg *pg)
{
	const char *have = getenv("PBIPORT_TEST_PG"), *have_dir = getenv("PBIPORT_TEST_PG_DIR");
	char out[PATH_MAX + 1100], pid[24];
	memset(pg, 0, sizeof *pg);
	if (have && *have && have_dir && *have_dir) {
		if (xsnprintf(pg->conninfo, sizeof pg->conninfo, "%s", have) ||
		    xsnprintf(pg->dir, sizeof pg->dir, "%s", have_dir))
			return -1;
		return 1;
	}
	xsnprintf(pid, sizeof pid, "%ld", (long)getpid());
	const char *args[] = { "start", "--owner-pid", pid };
	int st = tu_pg_tool(out, sizeof out, args, 3);
	if (st == TU_PG_SKIP) {
		fputs(out, stdout);   /* "SKIP: PostgreSQL server binaries ... not found ..." */
		return 0;
	}
	char *nl = strchr(out, '\n');
	if (st != 0 || !nl) {
		printf("pg_cluster.py start failed (exit %d): %s\n", st, out);
		return -1;
	}
	*nl = '\0';
	char *line2 = nl + 1;
	line2[strcspn(line2, "\n")] = '\0';
	if (xsnprintf(pg->dir, sizeof pg->dir, "%s", out) || xsnprintf(pg->conninfo, sizeof pg->conninfo, "%s", line2))
		return -1;
	pg->owned = true;
	return 1;
}

/* pg_cluster.py down|up|stop on pg's folder: 0 when it worked. */
TU_FN int tu_pg_do(const tu_pg *pg, const char *what)
{
	const char *args[] = { what, pg->dir };
	return tu_pg_tool(NULL, 0, args, 2);
}

/* Stops and removes a cluster tu_pg_start started (one it was given stays). */
TU_FN void tu_pg_stop(tu_pg *pg)
{
	if (pg->owned && pg->dir[0])
		tu_pg_do(pg, "stop");
	pg->dir[0] = '\0';
	pg->owned = false;
}

/* Makes a new, empty database named name in pg's cluster (dropped first when it exists) and
 * writes its connection string into out (size bytes). 0 or a negative pb_rc with err. */
TU_FN int tu_pg_createdb(const tu_pg *pg, const char *name, char *out, size_t size, char *err)
{
	pb_db *admin = NULL;
	char sql[200];
	int rc = db_open(pg->conninfo, false, &admin, err);
	if (!rc && (xsnprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", name) ||
		    xsnprintf(out, size, "%s dbname=%s", pg->conninfo, name)))
		rc = pb_err(err, PB_EINVAL, "database name %s too long", name);
	if (!rc)
		rc = db_exec_script(admin, sql, err);
	if (!rc && !xsnprintf(sql, sizeof sql, "CREATE DATABASE %s", name))
		rc = db_exec_script(admin, sql, err);
	db_close(admin);
	return rc;
}

/* True when the tests' databases are PostgreSQL ones (PBIPORT_TEST_DB=postgresql). */
TU_FN bool tu_pg_wanted(void)
{
	const char *v = getenv("PBIPORT_TEST_DB");
	return v && !strcmp(v, "postgresql");
}

/* For tu_db_setup under PBIPORT_TEST_DB=postgresql: a new database for the test database file
 * name file (its letters and digits, made unique in this process) in the tests' cluster (started
 * at the first call when the test does not run under `pg_cluster.py run`), its connection
 * string written into target (size bytes). 0 or a negative pb_rc with err. */
TU_FN int tu_pg_test_db(const char *file, char *target, size_t size, char *err)
{
	static tu_pg shared;
	static int started, seq;
	char name[64];
	size_t n = 0;
	if (!started && (started = tu_pg_start(&shared)) != 1)
		return pb_err(err, PB_EUNAVAIL, "PBIPORT_TEST_DB=postgresql but no PostgreSQL cluster could be started");
	for (const char *p = file; *p && *p != '.' && n < 40; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
			name[n++] = *p;
	name[n] = '\0';
	if (xsnprintf(name + n, sizeof name - n, "_%ld_%d", (long)getpid(), ++seq))
		return pb_err(err, PB_EINTERNAL, "test database name too long");
	char dbname[80];
	xsnprintf(dbname, sizeof dbname, "t_%s", name);
	return tu_pg_createdb(&shared, dbname, target, size, err);
}

#endif
