#include "runtime/db.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/util.h"

struct stmt_slot {
	const char *sql;          /* the caller's constant text: compared by address first */
	sqlite3_stmt *st;
};

struct pb_db {
	sqlite3 *h;
	int depth;                                   /* write transactions open: 1 = BEGIN, more = savepoints */
	struct stmt_slot cache[PB_STMT_CACHE_MAX];   /* kept across requests */
	size_t ncache;
};

static int db_fail(pb_db *db, int rc, char *err, const char *what)
{
	return pb_err(err, rc, "database: %s: %s", what, sqlite3_errmsg(db->h));
}

int db_open(const char *path, bool create, pb_db **out, char *err)
{
	int rc = PB_OK;
	pb_db *db = NULL;
	*out = NULL;
	if (!create && access(path, F_OK)) {
		rc = pb_err(err, PB_ENOTFOUND, "database %s does not exist: run `pbiport migrate`", path);
		goto out;
	}
	db = calloc(1, sizeof *db);
	if (!db) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	if (sqlite3_open_v2(path, &db->h, flags, NULL) != SQLITE_OK) {
		rc = pb_err(err, PB_EIO, "database %s: %s", path,
			    db->h ? sqlite3_errmsg(db->h) : "cannot open");
		goto out;
	}
	sqlite3_extended_result_codes(db->h, 1);
	/* busy_timeout first: switching to WAL itself may wait for another process */
	sqlite3_busy_timeout(db->h, PB_DB_BUSY_TIMEOUT_MS);
	/* mmap: a page another process's commit made stale in our cache is read again from the
	 * mapping instead of one pread() per page */
	char mmap_pragma[64];
	xsnprintf(mmap_pragma, sizeof mmap_pragma, "PRAGMA mmap_size=%lld", PB_DB_MMAP_BYTES);
	const char *const pragmas[] = {
		"PRAGMA journal_mode=WAL",
		"PRAGMA synchronous=NORMAL",   /* durable at checkpoints; safe with WAL */
		"PRAGMA foreign_keys=ON",
		mmap_pragma,
	};
	for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++) {
		if (sqlite3_exec(db->h, pragmas[i], NULL, NULL, NULL) != SQLITE_OK) {
			rc = pb_err(err, PB_EIO, "database %s: %s: %s", path, pragmas[i], sqlite3_errmsg(db->h));
			goto out;
		}
	}
	*out = db;
	db = NULL;
out:
	db_close(db);
	return rc;
}

int db_unmap(pb_db *db, char *err)
{
	if (sqlite3_exec(db->h, "PRAGMA mmap_size=0", NULL, NULL, NULL) != SQLITE_OK)
		return pb_err(err, PB_EIO, "database: PRAGMA mmap_size=0: %s", sqlite3_errmsg(db->h));
	return PB_OK;
}

void db_close(pb_db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->ncache; i++)
		sqlite3_finalize(db->cache[i].st);
	sqlite3_close(db->h);
	free(db);
}

sqlite3 *db_sqlite(pb_db *db)
{
	return db->h;
}

int db_prepare(pb_db *db, const char *sql, sqlite3_stmt **out, char *err)
{
	*out = NULL;
	/* by address first (a call site passes the same literal every time), then by text */
	size_t hit = db->ncache;
	for (size_t i = 0; i < db->ncache && hit == db->ncache; i++)
		if (db->cache[i].sql == sql)
			hit = i;
	for (size_t i = 0; i < db->ncache && hit == db->ncache; i++)
		if (!strcmp(db->cache[i].sql, sql))
			hit = i;
	if (hit < db->ncache) {
		sqlite3_reset(db->cache[hit].st);
		sqlite3_clear_bindings(db->cache[hit].st);
		*out = db->cache[hit].st;
		return PB_OK;
	}
	/* a full cache means more distinct statements than the program has: a bug, say so */
	if (db->ncache == PB_STMT_CACHE_MAX)
		return pb_err(err, PB_ELIMIT, "database: statement cache is full (%d)", PB_STMT_CACHE_MAX);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		return db_fail(db, PB_EIO, err, "prepare");
	db->cache[db->ncache].sql = sql;
	db->cache[db->ncache].st = st;
	db->ncache++;
	*out = st;
	return PB_OK;
}

void db_done(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

static int step_rc(pb_db *db, int src, char *err)
{
	if ((src & 0xff) == SQLITE_CONSTRAINT)
		return db_fail(db, PB_EINVAL, err, "constraint");
	return db_fail(db, PB_EIO, err, "step");
}

int db_exec(pb_db *db, sqlite3_stmt *st, char *err)
{
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE || src == SQLITE_ROW)
		return PB_OK;
	return step_rc(db, src, err);
}

int db_row(pb_db *db, sqlite3_stmt *st, char *err)
{
	int src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		return 1;
	if (src == SQLITE_DONE)
		return 0;
	return step_rc(db, src, err);
}

int db_prepare_texts(pb_db *db, const char *sql, const char *const *v, int n, sqlite3_stmt **out, char *err)
{
	int rc = db_prepare(db, sql, out, err);
	for (int i = 0; !rc && i < n; i++)
		rc = db_bind_text(*out, i + 1, v[i], err);
	return rc;
}

int db_prepare_list(pb_db *db, const char *sql, const char *const *v, int n, int limit, sqlite3_stmt **out,
		    char *err)
{
	int rc = db_prepare_texts(db, sql, v, n, out, err);
	if (!rc && sqlite3_bind_int(*out, n + 1, limit) != SQLITE_OK)
		rc = pb_err(err, PB_EINTERNAL, "database: bind %d: the list's limit", n + 1);
	return rc;
}

int db_list_json(pb_db *db, const char *sql, const char *const *v, int n, int limit, db_row_json_fn row_json,
		 void *ctx, json_t **out, char *err)
{
	sqlite3_stmt *st = NULL;
	json_t *list = json_array();
	int rc = list ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
	*out = NULL;
	if (!rc)
		rc = limit > 0 ? db_prepare_list(db, sql, v, n, limit, &st, err) : db_prepare_texts(db, sql, v, n, &st, err);
	while (!rc && (rc = db_row(db, st, err)) == 1)
		rc = json_array_append_new(list, row_json(st, ctx)) ? pb_err(err, PB_ENOMEM, "out of memory") : PB_OK;
	db_done(st);
	if (rc < 0) {
		json_decref(list);
		return rc;
	}
	*out = list;
	return PB_OK;
}

int db_exec_texts(pb_db *db, const char *sql, const char *const *v, int n, char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare_texts(db, sql, v, n, &st, err);
	if (!rc)
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

int db_has_row(pb_db *db, const char *sql, const char *const *v, int n, bool *found, char *err)
{
	sqlite3_stmt *st = NULL;
	*found = false;
	int rc = db_prepare_texts(db, sql, v, n, &st, err);
	if (!rc) {
		int row = db_row(db, st, err);
		*found = row == 1;
		rc = row < 0 ? row : PB_OK;
	}
	db_done(st);
	return rc;
}

int db_select_ids(pb_db *db, const char *sql, const char *const *v, int n, size_t max, char (**ids)[PB_ID_BUF],
		  size_t *count, char *err)
{
	sqlite3_stmt *st = NULL;
	char (*list)[PB_ID_BUF] = NULL;
	size_t got = 0;
	*ids = NULL;
	*count = 0;
	int rc = db_prepare(db, sql, &st, err);
	for (int i = 0; !rc && i < n; i++)
		rc = db_bind_text(st, i + 1, v[i], err);
	if (!rc)
		sqlite3_bind_int64(st, n + 1, (sqlite3_int64)max);
	while (!rc && (rc = db_row(db, st, err)) == 1) {
		if (!list && !(list = calloc(max, sizeof *list))) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			break;
		}
		rc = got < max && !xsnprintf(list[got], PB_ID_BUF, "%s", db_col_text(st, 0))
			     ? (got++, 0)
			     : pb_err(err, PB_EINTERNAL, "a stored id is longer than an id");
	}
	db_done(st);
	if (rc < 0) {
		free(list);
		return rc;
	}
	*ids = list;
	*count = got;
	return PB_OK;
}

int db_bind_text(sqlite3_stmt *st, int idx, const char *s, char *err)
{
	int src = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, idx);
	if (src != SQLITE_OK)
		return pb_err(err, src == SQLITE_NOMEM ? PB_ENOMEM : PB_EINTERNAL,
			      "database: bind %d: %s", idx, sqlite3_errstr(src));
	return PB_OK;
}

const char *db_col_text(sqlite3_stmt *st, int idx)
{
	const unsigned char *s = sqlite3_column_text(st, idx);
	return s ? (const char *)s : "";
}

char *db_col_dup(sqlite3_stmt *st, int idx, bool *ok)
{
	if (sqlite3_column_type(st, idx) == SQLITE_NULL)
		return NULL;
	const char *s = (const char *)sqlite3_column_text(st, idx);
	char *d = xstrndup(s ? s : "", (size_t)sqlite3_column_bytes(st, idx));
	if (!d)
		*ok = false;
	return d;
}

static char **text_member(void *row, const db_text_field *f)
{
	return (char **)((char *)row + f->offset);
}

int db_col_texts(sqlite3_stmt *st, void *row, const db_text_field *f, size_t n, char *err)
{
	bool ok = true;
	for (size_t i = 0; i < n; i++)   /* every member set, so the free below never sees garbage */
		*text_member(row, &f[i]) = db_col_dup(st, f[i].col, &ok);
	if (ok)
		return PB_OK;
	db_texts_free(row, f, n);
	return pb_err(err, PB_ENOMEM, "out of memory");
}

void db_texts_free(void *row, const db_text_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char **m = text_member(row, &f[i]);
		free(*m);
		*m = NULL;
	}
}

void db_row_free(void *row, const db_text_field *f, size_t n)
{
	if (!row)
		return;
	db_texts_free(row, f, n);
	free(row);
}

void db_rows_free(void *v, size_t n, size_t size, const db_text_field *f, size_t nf)
{
	for (size_t i = 0; v && i < n; i++)
		db_texts_free((char *)v + i * size, f, nf);
	free(v);
}

bool db_col_fixed(sqlite3_stmt *st, void *row, const db_fixed_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (xsnprintf((char *)row + f[i].offset, f[i].size, "%s", db_col_text(st, f[i].col)))
			return false;
	return true;
}

static int exec_simple(pb_db *db, const char *sql, char *err)
{
	sqlite3_stmt *st;
	int rc = db_prepare(db, sql, &st, err);
	if (!rc)
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

int db_read_begin(pb_db *db, char *err)
{
	return exec_simple(db, "BEGIN", err);
}

void db_read_end(pb_db *db)
{
	if (!sqlite3_get_autocommit(db->h) && exec_simple(db, "COMMIT", NULL))
		db_rollback(db);
}

/* A savepoint statement: its text names the depth, so it is built at run time and must not
 * go into the statement cache, which keeps the text's address (constants only). */
static int exec_savepoint(pb_db *db, const char *sql, char *err)
{
	return sqlite3_exec(db->h, sql, NULL, NULL, NULL) == SQLITE_OK ? PB_OK : db_fail(db, PB_EIO, err, sql);
}

/* Inside a write transaction a begin opens a savepoint, so a function that writes in a
 * transaction of its own can be called from inside the caller's: both commit together, and
 * its rollback undoes only its own part. */
int db_begin(pb_db *db, char *err)
{
	char sql[32];
	int rc;
	if (db->depth > 0 && !sqlite3_get_autocommit(db->h)) {
		xsnprintf(sql, sizeof sql, "SAVEPOINT pb%d", db->depth);
		rc = exec_savepoint(db, sql, err);
	} else {
		db->depth = 0;
		rc = exec_simple(db, "BEGIN IMMEDIATE", err);
	}
	if (!rc)
		db->depth++;
	return rc;
}

int db_commit(pb_db *db, char *err)
{
	char sql[32];
	if (db->depth > 1) {
		xsnprintf(sql, sizeof sql, "RELEASE pb%d", db->depth - 1);
		int rc = exec_savepoint(db, sql, err);
		if (rc) {
			db_rollback(db);
			return rc;
		}
		db->depth--;
		return PB_OK;
	}
	int rc = exec_simple(db, "COMMIT", err);
	db->depth = 0;
	if (rc)
		db_rollback(db);
	return rc;
}

void db_rollback(pb_db *db)
{
	char sql[64];
	if (db->depth > 1 && !sqlite3_get_autocommit(db->h)) {
		db->depth--;
		xsnprintf(sql, sizeof sql, "ROLLBACK TO pb%d; RELEASE pb%d", db->depth, db->depth);
		sqlite3_exec(db->h, sql, NULL, NULL, NULL);
		return;
	}
	db->depth = 0;
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

int db_end(pb_db *db, int rc, char *err)
{
	if (rc) {
		db_rollback(db);
		return rc;
	}
	return db_commit(db, err);
}

bool db_in_transaction(const pb_db *db)
{
	return db->depth > 0 && !sqlite3_get_autocommit(db->h);
}

/* ---- migrations ---- */

struct migration {
	int version;
	char *name;   /* file name */
};

static int cmp_migration(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;
	return (x->version > y->version) - (x->version < y->version);
}

static void free_migrations(struct migration *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].name);
	free(m);
}

/* NNNN_name.sql: four digits, an underscore, and the .sql suffix. */
static int migration_version(const char *name)
{
	size_t n = strlen(name);
	if (n < 9 || strcmp(name + n - 4, ".sql") || name[4] != '_')
		return -1;
	int v = 0;
	for (int i = 0; i < 4; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		v = v * 10 + (name[i] - '0');
	}
	return v > 0 ? v : -1;
}

static int list_migrations(const char *dir, struct migration **out, size_t *count, char *err)
{
	int rc = PB_OK;
	struct migration *m = NULL;
	size_t n = 0, cap = 0;
	DIR *d = opendir(dir);
	*out = NULL;
	*count = 0;
	if (!d)
		return pb_err(err, PB_EIO, "migrations folder %s: %s", dir, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		int v = migration_version(e->d_name);
		if (v < 0)
			continue;
		if (n == cap) {
			if (cap >= PB_MIGRATIONS_MAX) {
				rc = pb_err(err, PB_ELIMIT, "migrations folder %s: too many files", dir);
				goto out;
			}
			size_t ncap = cap ? cap * 2 : 16;
			struct migration *p = realloc(m, ncap * sizeof *p);
			if (!p) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				goto out;
			}
			m = p;
			cap = ncap;
		}
		m[n].version = v;
		m[n].name = xstrdup(e->d_name);
		if (!m[n].name) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	qsort(m, n, sizeof *m, cmp_migration);
	for (size_t i = 1; i < n; i++) {
		if (m[i].version == m[i - 1].version) {
			rc = pb_err(err, PB_EINVAL, "migrations %s and %s have the same number",
				    m[i - 1].name, m[i].name);
			goto out;
		}
	}
out:
	closedir(d);
	if (rc) {
		free_migrations(m, n);
		return rc;
	}
	*out = m;
	*count = n;
	return PB_OK;
}

int db_schema_version(pb_db *db, int *version, char *err)
{
	*version = 0;
	/* not cached: the table may not exist yet, and this runs once per process */
	sqlite3_stmt *st = NULL;
	int rc = PB_OK;
	if (sqlite3_prepare_v2(db->h, "SELECT max(version) FROM schema_migrations", -1, &st, NULL) != SQLITE_OK) {
		if (strstr(sqlite3_errmsg(db->h), "no such table"))
			return PB_OK;
		return db_fail(db, PB_EIO, err, "schema version");
	}
	int r = db_row(db, st, err);
	if (r < 0)
		rc = r;
	else if (r == 1)
		*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc;
}

static int migration_applied(pb_db *db, int version, bool *applied, char *err)
{
	sqlite3_stmt *st;
	int rc = db_prepare(db, "SELECT 1 FROM schema_migrations WHERE version = ?", &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int(st, 1, version);
	int r = db_row(db, st, err);
	db_done(st);
	if (r < 0)
		return r;
	*applied = r == 1;
	return PB_OK;
}

/* Runs the text sql of migration m and records it, inside the caller's transaction. */
static int run_migration(pb_db *db, const struct migration *m, const char *sql, char *err)
{
	char *emsg = NULL, now[PB_TIME_BUF];
	sqlite3_stmt *st = NULL;
	int rc;
	if (sqlite3_exec(db->h, sql, NULL, NULL, &emsg) != SQLITE_OK) {
		rc = pb_err(err, PB_EIO, "migration %s: %s", m->name, emsg ? emsg : sqlite3_errmsg(db->h));
		sqlite3_free(emsg);
		return rc;
	}
	pb_now(now);
	if ((rc = db_prepare(db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			     &st, err)))
		return rc;
	sqlite3_bind_int(st, 1, m->version);
	if (!(rc = db_bind_text(st, 2, m->name, err)) && !(rc = db_bind_text(st, 3, now, err)))
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

static int apply_migration(pb_db *db, const char *dir, const struct migration *m, bool *done, char *err)
{
	int rc;
	char *sql = NULL, *path = NULL;
	bool applied = false;
	size_t plen = strlen(dir) + strlen(m->name) + 2;
	*done = false;
	if (!(path = malloc(plen)) || xsnprintf(path, plen, "%s/%s", dir, m->name)) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = read_file(path, PB_MIGRATION_MAX_BYTES, &sql, NULL, err)) || (rc = db_begin(db, err)))
		goto out;
	/* another process may have applied it while we waited for the write lock */
	if (!(rc = migration_applied(db, m->version, &applied, err)) && !applied)
		rc = run_migration(db, m, sql, err);
	if (applied)
		db_rollback(db);
	else
		*done = !(rc = db_end(db, rc, err));
out:
	free(sql);
	free(path);
	return rc;
}

int db_migrate(pb_db *db, const char *dir, int *applied, char *err)
{
	struct migration *m = NULL;
	size_t n = 0;
	int have = 0, count = 0;
	int rc = list_migrations(dir, &m, &n, err);
	if (rc)
		goto out;
	if (sqlite3_exec(db->h,
			 "CREATE TABLE IF NOT EXISTS schema_migrations ("
			 " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
			 NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_fail(db, PB_EIO, err, "schema_migrations");
		goto out;
	}
	if ((rc = db_schema_version(db, &have, err)))
		goto out;
	/* every file not yet recorded, not only those above the highest: migrations written
	 * in parallel branches may land with a lower number than one already applied */
	for (size_t i = 0; i < n; i++) {
		bool done, recorded = false;
		if (m[i].version <= have && (rc = migration_applied(db, m[i].version, &recorded, err)))
			goto out;
		if (recorded)
			continue;
		if ((rc = apply_migration(db, dir, &m[i], &done, err)))
			goto out;
		count += done;
	}
out:
	free_migrations(m, n);
	if (applied)
		*applied = count;
	return rc;
}

int db_check_schema(pb_db *db, const char *dir, char *err)
{
	struct migration *m = NULL;
	size_t n = 0;
	int have, need = 0;
	int rc = list_migrations(dir, &m, &n, err);
	if (rc || (rc = db_schema_version(db, &have, err)))
		goto out;
	if (n)
		need = m[n - 1].version;
	if (have < need) {
		rc = pb_err(err, PB_EINVAL,
			    "database schema is at version %d, this binary needs %d: run `pbiport migrate`",
			    have, need);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		bool applied;
		if ((rc = migration_applied(db, m[i].version, &applied, err)))
			goto out;
		if (!applied) {
			rc = pb_err(err, PB_EINVAL, "database schema lacks migration %s: run `pbiport migrate`",
				    m[i].name);
			goto out;
		}
	}
out:
	free_migrations(m, n);
	return rc;
}

int db_ping(pb_db *db, char *err)
{
	sqlite3_stmt *st;
	int rc = db_prepare(db, "SELECT max(version) FROM schema_migrations", &st, err);
	if (!rc) {
		int r = db_row(db, st, err);
		rc = r < 0 ? r : PB_OK;
	}
	db_done(st);
	return rc;
}

int pb_new_id(char out[PB_ID_BUF], char *err)
{
	unsigned char b[16];
	static const char hex[] = "0123456789abcdef";
	if (RAND_bytes(b, sizeof b) != 1)
		return pb_err(err, PB_EINTERNAL, "no randomness available");
	for (size_t i = 0; i < sizeof b; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[32] = '\0';
	return PB_OK;
}

void pb_now(char out[PB_TIME_BUF])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, PB_TIME_BUF, "%Y-%m-%dT%H:%M:%S", &tm);
	if (xsnprintf(out + n, PB_TIME_BUF - n, ".%03ldZ", ts.tv_nsec / 1000000))
		out[n] = '\0';
}
