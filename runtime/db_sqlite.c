/* The SQLite driver of runtime/db_driver.h: the only file of pbiport that calls sqlite3_*. */
#include "runtime/db_driver.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/limits.h"
#include "runtime/util.h"

struct db_conn {
	sqlite3 *h;
	/* A read transaction's BEGIN is owed until its first statement (sq_begin_read): a read whose
	 * statement stands alone (sq_first_alone) runs it as a transaction of its own and sends no
	 * BEGIN or COMMIT at all, which is what a GET answered from a kept answer does. */
	bool read_owed;
	bool first_alone;
	/* the database file's handle when the journal mode is WAL and its VFS maps the WAL index
	 * (sq_mark reads its header), else NULL; SQLite's for as long as the connection */
	sqlite3_file *wal_file;
	/* BEGIN and COMMIT, prepared once (sqlite3_exec parses its text every time) */
	sqlite3_stmt *begin_st, *commit_st;
};

struct db_cursor {
	db_conn *c;
	sqlite3_stmt *st;
};

/* The pb_rc of SQLite result src (extended codes are on). */
static int classify(int src)
{
	switch (src & 0xff) {
	case SQLITE_CONSTRAINT:
		return PB_ECONFLICT;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return DB_ERETRY;
	case SQLITE_NOMEM:
		return PB_ENOMEM;
	default:
		return PB_EIO;
	}
}

static int fail(db_conn *c, int src, char *err, const char *what)
{
	int rc = classify(src);
	return pb_err(err, rc, "database: %s: %s", rc == PB_ECONFLICT ? "constraint" : what, sqlite3_errmsg(c->h));
}

static void sq_close(db_conn *c)
{
	if (!c)
		return;
	sqlite3_finalize(c->begin_st);
	sqlite3_finalize(c->commit_st);
	sqlite3_close(c->h);
	free(c);
}

static int sq_open(const char *path, bool create, db_conn **out, char *err)
{
	int rc = PB_OK;
	db_conn *c = NULL;
	*out = NULL;
	if (!create && access(path, F_OK)) {
		rc = pb_err(err, PB_ENOTFOUND, "database %s does not exist: run `pbiport migrate`", path);
		goto out;
	}
	if (!(c = calloc(1, sizeof *c))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	if (sqlite3_open_v2(path, &c->h, flags, NULL) != SQLITE_OK) {
		rc = pb_err(err, PB_EIO, "database %s: %s", path, c->h ? sqlite3_errmsg(c->h) : "cannot open");
		goto out;
	}
	sqlite3_extended_result_codes(c->h, 1);
	/* busy_timeout first: switching to WAL itself may wait for another process */
	sqlite3_busy_timeout(c->h, PB_DB_BUSY_TIMEOUT_MS);
	/* mmap: a page another process's commit made stale in our cache is read again from the
	 * mapping instead of one pread() per page */
	char mmap_pragma[64];
	xsnprintf(mmap_pragma, sizeof mmap_pragma, "PRAGMA mmap_size=%lld", PB_DB_MMAP_BYTES);
	sqlite3_stmt *mode = NULL;
	sqlite3_file *f = NULL;
	bool wal = false;
	int src = sqlite3_prepare_v2(c->h, "PRAGMA journal_mode=WAL", -1, &mode, NULL);
	if (src == SQLITE_OK && (src = sqlite3_step(mode)) == SQLITE_ROW) {
		const unsigned char *now = sqlite3_column_text(mode, 0);
		wal = now && !strcmp((const char *)now, "wal");   /* ":memory:" answers "memory" */
		src = SQLITE_OK;
	}
	sqlite3_finalize(mode);
	if (src != SQLITE_OK) {
		rc = pb_err(err, PB_EIO, "database %s: PRAGMA journal_mode=WAL: %s", path, sqlite3_errmsg(c->h));
		goto out;
	}
	if (wal && sqlite3_file_control(c->h, "main", SQLITE_FCNTL_FILE_POINTER, &f) == SQLITE_OK && f &&
	    f->pMethods && f->pMethods->iVersion >= 2 && f->pMethods->xShmMap && f->pMethods->xShmBarrier)
		c->wal_file = f;
	const char *const pragmas[] = {
		"PRAGMA synchronous=NORMAL",   /* durable at checkpoints; safe with WAL */
		"PRAGMA foreign_keys=ON",
		mmap_pragma,
	};
	for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++) {
		if (sqlite3_exec(c->h, pragmas[i], NULL, NULL, NULL) != SQLITE_OK) {
			rc = pb_err(err, PB_EIO, "database %s: %s: %s", path, pragmas[i], sqlite3_errmsg(c->h));
			goto out;
		}
	}
	*out = c;
	c = NULL;
out:
	sq_close(c);
	return rc;
}

static int sq_prepare(db_conn *c, const char *sql, db_cursor **out, char *err)
{
	db_cursor *cur = calloc(1, sizeof *cur);
	*out = NULL;
	if (!cur)
		return pb_err(err, PB_ENOMEM, "out of memory");
	if (sqlite3_prepare_v3(c->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &cur->st, NULL) != SQLITE_OK) {
		free(cur);
		return fail(c, sqlite3_extended_errcode(c->h), err, "prepare");
	}
	cur->c = c;
	*out = cur;
	return PB_OK;
}

static void sq_finalize(db_cursor *cur)
{
	if (!cur)
		return;
	sqlite3_finalize(cur->st);
	free(cur);
}

static void sq_reset(db_cursor *cur)
{
	sqlite3_reset(cur->st);
}

static void sq_clear(db_cursor *cur)
{
	sqlite3_clear_bindings(cur->st);
}

static int bind_rc(int src, int idx, char *err)
{
	if (src == SQLITE_OK)
		return PB_OK;
	return pb_err(err, src == SQLITE_NOMEM || src == SQLITE_TOOBIG ? PB_ENOMEM : PB_EINTERNAL,
		      "database: bind %d: %s", idx, sqlite3_errstr(src));
}

static int sq_bind_text(db_cursor *cur, int idx, const char *s, size_t len, char *err)
{
	if (!s)
		return bind_rc(sqlite3_bind_null(cur->st, idx), idx, err);
	return bind_rc(sqlite3_bind_text64(cur->st, idx, s, len, SQLITE_TRANSIENT, SQLITE_UTF8), idx, err);
}

static int sq_bind_int64(db_cursor *cur, int idx, int64_t v, char *err)
{
	return bind_rc(sqlite3_bind_int64(cur->st, idx, (sqlite3_int64)v), idx, err);
}

static int sq_bind_double(db_cursor *cur, int idx, double v, char *err)
{
	return bind_rc(sqlite3_bind_double(cur->st, idx, v), idx, err);
}

static int sq_bind_null(db_cursor *cur, int idx, char *err)
{
	return bind_rc(sqlite3_bind_null(cur->st, idx), idx, err);
}

static int run_kept(db_conn *c, sqlite3_stmt **st, const char *sql, char *err);

static int sq_step(db_cursor *cur, char *err)
{
	db_conn *c = cur->c;
	if (c->read_owed && !sqlite3_stmt_busy(cur->st)) {   /* a read transaction's first statement */
		if (c->first_alone) {
			c->first_alone = false;   /* the BEGIN stays owed to the statement after it */
		} else {
			int rc = run_kept(c, &c->begin_st, "BEGIN", err);
			if (rc)
				return rc;
			c->read_owed = false;
		}
	}
	int src = sqlite3_step(cur->st);
	if (src == SQLITE_ROW)
		return 1;
	if (src == SQLITE_DONE)
		return 0;
	return fail(cur->c, src, err, "step");
}

static int sq_column_count(db_cursor *cur)
{
	return sqlite3_column_count(cur->st);
}

static bool sq_column_is_null(db_cursor *cur, int col)
{
	return sqlite3_column_type(cur->st, col) == SQLITE_NULL;
}

static const char *sq_column_text(db_cursor *cur, int col, size_t *len)
{
	const char *s = (const char *)sqlite3_column_text(cur->st, col);
	if (len)
		*len = s ? (size_t)sqlite3_column_bytes(cur->st, col) : 0;
	return s;
}

static int64_t sq_column_int64(db_cursor *cur, int col)
{
	return (int64_t)sqlite3_column_int64(cur->st, col);
}

static double sq_column_double(db_cursor *cur, int col)
{
	return sqlite3_column_double(cur->st, col);
}

static int64_t sq_changes(db_conn *c)
{
	return (int64_t)sqlite3_changes(c->h);
}

/* Runs a statement without parameters or rows kept in *st, prepared on first use. */
static int run_kept(db_conn *c, sqlite3_stmt **st, const char *sql, char *err)
{
	if (!*st && sqlite3_prepare_v3(c->h, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return fail(c, sqlite3_extended_errcode(c->h), err, "prepare");
	int src = sqlite3_step(*st);
	sqlite3_reset(*st);
	if (src == SQLITE_DONE)
		return PB_OK;
	int rc = classify(src);
	return pb_err(err, rc, "database: %s", sqlite3_errmsg(c->h));
}

static int sq_exec(db_conn *c, const char *script, char *err)
{
	bool commit = !strcmp(script, "COMMIT");
	if (c->read_owed) {
		if (commit || !strcmp(script, "ROLLBACK")) {   /* a read that began nothing ends */
			c->read_owed = c->first_alone = false;
			return PB_OK;
		}
		int rc = run_kept(c, &c->begin_st, "BEGIN", err);
		if (rc)
			return rc;
		c->read_owed = c->first_alone = false;
	}
	if (commit)
		return run_kept(c, &c->commit_st, "COMMIT", err);
	char *emsg = NULL;
	int src = sqlite3_exec(c->h, script, NULL, NULL, &emsg);
	if (src == SQLITE_OK)
		return PB_OK;
	int rc = classify(src);
	pb_err(err, rc, "database: %s", emsg ? emsg : sqlite3_errmsg(c->h));
	sqlite3_free(emsg);
	return rc;
}

static int sq_begin_read(db_conn *c, char *err)
{
	(void)err;
	c->read_owed = true;
	c->first_alone = false;
	return PB_OK;
}

static void sq_first_alone(db_conn *c)
{
	c->first_alone = c->read_owed;
}

static void sq_first_skipped(db_conn *c)
{
	c->first_alone = false;
}

/* SQLite's WAL index: its first region's size and where its header's isInit byte is (the header
 * is there twice, 48 bytes each: a writer writes the second copy, then the first; a reader that
 * finds both alike read one header whole). https://www.sqlite.org/walformat.html */
#define WAL_INDEX_REGION 32768
#define WAL_HEADER_IS_INIT 12

static bool sq_mark(db_conn *c, unsigned char out[DB_MARK_BYTES])
{
	sqlite3_file *f = c->wal_file;
	volatile void *shm = NULL;
	unsigned char second[DB_MARK_BYTES];
	if (!f || !f->pMethods || !sqlite3_get_autocommit(c->h) ||
	    f->pMethods->xShmMap(f, 0, WAL_INDEX_REGION, 0, &shm) != SQLITE_OK || !shm)
		return false;
	memcpy(out, (const void *)shm, DB_MARK_BYTES);
	f->pMethods->xShmBarrier(f);
	memcpy(second, (const unsigned char *)shm + DB_MARK_BYTES, DB_MARK_BYTES);
	return out[WAL_HEADER_IS_INIT] && !memcmp(out, second, DB_MARK_BYTES);
}

static int sq_begin_write(db_conn *c, char *err)
{
	return sq_exec(c, "BEGIN IMMEDIATE", err);
}

static bool sq_in_transaction(db_conn *c)
{
	return c->read_owed || !sqlite3_get_autocommit(c->h);
}

/* Nothing beyond the write lock: each migration's BEGIN IMMEDIATE serializes the migrators, and
 * db_migrate re-checks the version under it. */
static int sq_migration_lock(db_conn *c, char *err)
{
	(void)c;
	(void)err;
	return PB_OK;
}

static void sq_migration_unlock(db_conn *c)
{
	(void)c;
}

static int sq_table_exists(db_conn *c, const char *table, bool *exists, char *err)
{
	sqlite3_stmt *st = NULL;
	*exists = false;
	if (sqlite3_prepare_v2(c->h, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return fail(c, sqlite3_extended_errcode(c->h), err, "table_exists");
	int rc = PB_OK, src = sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	if (src == SQLITE_OK)
		src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		*exists = true;
	else if (src != SQLITE_DONE)
		rc = fail(c, src, err, "table_exists");
	sqlite3_finalize(st);
	return rc;
}

static int sq_ping(db_conn *c, char *err)
{
	bool exists;
	return sq_table_exists(c, "schema_migrations", &exists, err);
}

static int sq_unmap(db_conn *c, char *err)
{
	if (sqlite3_exec(c->h, "PRAGMA mmap_size=0", NULL, NULL, NULL) != SQLITE_OK)
		return pb_err(err, PB_EIO, "database: PRAGMA mmap_size=0: %s", sqlite3_errmsg(c->h));
	return PB_OK;
}

static const struct db_driver sqlite_driver = {
	.name = "sqlite",
	.dialect = DB_DIALECT_SQLITE,
	.open = sq_open,
	.close = sq_close,
	.prepare = sq_prepare,
	.finalize = sq_finalize,
	.reset = sq_reset,
	.clear = sq_clear,
	.bind_text = sq_bind_text,
	.bind_int64 = sq_bind_int64,
	.bind_double = sq_bind_double,
	.bind_null = sq_bind_null,
	.step = sq_step,
	.column_count = sq_column_count,
	.column_is_null = sq_column_is_null,
	.column_text = sq_column_text,
	.column_int64 = sq_column_int64,
	.column_double = sq_column_double,
	.changes = sq_changes,
	.exec = sq_exec,
	.begin_read = sq_begin_read,
	.first_alone = sq_first_alone,
	.first_skipped = sq_first_skipped,
	.mark = sq_mark,
	.begin_write = sq_begin_write,
	.in_transaction = sq_in_transaction,
	.migration_lock = sq_migration_lock,
	.migration_unlock = sq_migration_unlock,
	.table_exists = sq_table_exists,
	.ping = sq_ping,
	.unmap = sq_unmap,
};

const struct db_driver *db_sqlite_driver(void)
{
	return &sqlite_driver;
}
