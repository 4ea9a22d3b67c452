/* What a database engine gives runtime/db.c: one table of functions per engine. Nothing but
 * runtime/db.c calls them; stores use runtime/db.h, which knows no engine.
 *
 * Two drivers: SQLite (runtime/db_sqlite.c, db_sqlite_driver) and PostgreSQL through libpq
 * (db_pg_driver, which answers NULL in a build without it). runtime/db.c does the rest once for
 * both: the statement cache (by the constant text's address), transactions and savepoints (with
 * exec), retries, migrations, the row and list helpers.
 *
 * SQL a driver is given: `?` placeholders only, numbered from 1 in order of appearance (no ?NNN,
 * no :name); a driver whose engine wants $1, $2 ... rewrites them (outside quotes). Statements
 * are constants of the program, run many times: prepare once, then reset/bind/step.
 *
 * Results: every function returning int answers PB_OK (0) or a pb_rc (runtime/util.h) with one
 * line in err (err may be NULL), worded "database: <what>: <engine's message>"; never a password
 * or a whole connection string. Failures are classified by the driver:
 *   PB_ECONFLICT  a constraint refused the write: unique, primary key, foreign key, check, not null
 *                 (SQLite SQLITE_CONSTRAINT_*; PostgreSQL SQLSTATE class 23)
 *   DB_ERETRY     the same work may succeed if done again: SQLite SQLITE_BUSY/SQLITE_LOCKED (after
 *                 busy_timeout), PostgreSQL 40001 serialization_failure, 40P01 deadlock_detected,
 *                 55P03 lock_not_available. runtime/db.c retries (a lone statement) or reruns (a
 *                 db_transaction) a bounded number of times, else answers PB_EUNAVAIL: DB_ERETRY
 *                 never leaves runtime/db.c.
 *   PB_EUNAVAIL   the connection is lost or the server cannot take work now (PostgreSQL
 *                 CONNECTION_BAD, class 08, 57P01-57P03 admin/crash shutdown, cannot connect now).
 *                 A driver that loses its connection reconnects by itself at the next statement
 *                 run outside a transaction (its cursors stay usable: it prepares them again).
 *   PB_ENOMEM     out of memory; PB_EIO anything else (syntax, missing table, disk).
 */
#ifndef PBIPORT_DB_DRIVER_H
#define PBIPORT_DB_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/db.h"

/* A failure worth doing the same work again for (see above). Only drivers return it, only
 * runtime/db.c sees it. */
#define DB_ERETRY (-100)

typedef struct db_conn db_conn;       /* one engine connection: the driver defines it */
typedef struct db_cursor db_cursor;   /* one prepared statement of a db_conn: the driver defines it */

struct db_driver {
	/* "sqlite", "postgresql": the suffix of this engine's migration files
	 * (sql/NNNN_name.<name>.sql) and what error messages call it. */
	const char *name;
	enum db_dialect dialect;

	/* Connects to target (a path for SQLite; a postgresql:// URL or libpq key=value string
	 * for PostgreSQL). create=false refuses a database that does not exist (SQLite: the file;
	 * PostgreSQL: cannot tell, connects as told). Sets the session up (SQLite: WAL,
	 * synchronous=NORMAL, foreign_keys, busy_timeout, mmap; PostgreSQL: UTC time zone,
	 * standard_conforming_strings). *out new: close() it. */
	int (*open)(const char *target, bool create, db_conn **out, char *err);
	void (*close)(db_conn *c);   /* NULL: nothing; finalize()s come first */

	/* Prepares constant sql (kept by the caller until finalize: the driver may keep the
	 * pointer). *out new: finalize() it before close(). */
	int (*prepare)(db_conn *c, const char *sql, db_cursor **out, char *err);
	void (*finalize)(db_cursor *cur);   /* NULL: nothing */
	/* Back before the first row (the result of a step is dropped); bindings are kept. */
	void (*reset)(db_cursor *cur);
	/* Every parameter back to SQL NULL. */
	void (*clear)(db_cursor *cur);

	/* Parameter idx (from 1) of the next run. bind_text copies len bytes of s (no NUL needed;
	 * s NULL binds SQL NULL). Returns PB_OK, PB_ENOMEM, or PB_EINTERNAL (idx out of range). */
	int (*bind_text)(db_cursor *cur, int idx, const char *s, size_t len, char *err);
	int (*bind_int64)(db_cursor *cur, int idx, int64_t v, char *err);
	int (*bind_double)(db_cursor *cur, int idx, double v, char *err);
	int (*bind_null)(db_cursor *cur, int idx, char *err);

	/* Runs the statement (first call after reset) or moves to its next row: 1 = a row is
	 * ready, 0 = no more rows (or a statement without rows finished), <0 = a failure as
	 * classified above. After 0 or a failure, the next step needs a reset first. */
	int (*step)(db_cursor *cur, char *err);
	/* The row step answered 1 for, columns from 0; valid until the next step/reset. */
	int (*column_count)(db_cursor *cur);
	bool (*column_is_null)(db_cursor *cur, int col);
	/* The column as text (integers in decimal), NUL-terminated, its length in *len (may be
	 * NULL); NULL for SQL NULL. Borrowed until the next step/reset/finalize of cur. */
	const char *(*column_text)(db_cursor *cur, int col, size_t *len);
	int64_t (*column_int64)(db_cursor *cur, int col);   /* 0 for NULL or not a number */
	double (*column_double)(db_cursor *cur, int col);   /* 0 for NULL or not a number */

	/* Rows the last INSERT/UPDATE/DELETE run on c touched (SQLite sqlite3_changes,
	 * PostgreSQL PQcmdTuples). */
	int64_t (*changes)(db_conn *c);

	/* Runs script: one or more statements without parameters or results (migrations, BEGIN,
	 * COMMIT, ROLLBACK, SAVEPOINT name, RELEASE name, ROLLBACK TO name). Not cached. */
	int (*exec)(db_conn *c, const char *script, char *err);
	/* Opens a read transaction whose reads see one snapshot: SQLite BEGIN (deferred);
	 * PostgreSQL BEGIN ISOLATION LEVEL REPEATABLE READ. Both send it with the first statement
	 * run (in_transaction is true from here on; a COMMIT or ROLLBACK before any statement sends
	 * nothing). */
	int (*begin_read)(db_conn *c, char *err);
	/* Inside a read transaction: cur, bound, goes to the server together with the next statement
	 * run on c, and its rows are kept until the transaction ends for a run of cur bound to the
	 * same values (which then needs no round trip); any other run of cur drops them. A hint:
	 * PB_OK and nothing when it cannot. NULL: the engine has no round trips to save (SQLite). */
	int (*prefetch)(db_cursor *cur, char *err);
	/* In a read transaction that ran no statement yet: the next statement run reads a snapshot
	 * of its own, and the transaction's snapshot begins with the statement after it (PostgreSQL:
	 * the BEGIN goes with that one; a read of one statement sends neither BEGIN nor COMMIT;
	 * SQLite: the BEGIN runs before that one). NULL: the transaction's snapshot begins with its
	 * first statement. */
	void (*first_alone)(db_conn *c);
	/* Undoes first_alone: the statement it was for was not run. */
	void (*first_skipped)(db_conn *c);
	/* db_mark_take's state (runtime/db.h): true and out filled when the engine can tell, outside
	 * a transaction. NULL: never (PostgreSQL). */
	bool (*mark)(db_conn *c, unsigned char out[DB_MARK_BYTES]);
	/* Ends the read transaction begun by begin_read, when it wrote nothing, without a round trip:
	 * its COMMIT goes to the server with the next command on c (in one pipeline with a
	 * statement), or at idle(). True when so; false: commit it as usual. NULL: never. */
	bool (*commit_later)(db_conn *c);
	/* c is about to wait (for a client, a timer): what commit_later held is sent now. NULL:
	 * nothing is ever held. */
	void (*idle)(db_conn *c);
	/* Opens a write transaction: SQLite BEGIN IMMEDIATE (the write lock taken now, waiting up
	 * to busy_timeout); PostgreSQL BEGIN (READ COMMITTED; a conflicting write may then fail
	 * with DB_ERETRY, which db_transaction reruns), sent with the first command as begin_read's
	 * is: a COMMIT or ROLLBACK before any statement sends nothing. */
	int (*begin_write)(db_conn *c, char *err);
	/* True while a transaction (BEGIN without its COMMIT/ROLLBACK yet) is open on c, also
	 * one the engine aborted; false after a lost connection. */
	bool (*in_transaction)(db_conn *c);

	/* Held around a whole db_migrate run so that two processes starting at once migrate once:
	 * PostgreSQL pg_advisory_lock(<constant key>) ... pg_advisory_unlock; SQLite: PB_OK and
	 * nothing (each migration's begin_write takes the write lock, and db_migrate re-checks
	 * the version under it). */
	int (*migration_lock)(db_conn *c, char *err);
	void (*migration_unlock)(db_conn *c);

	/* Whether table (a plain lower-case name) exists, outside any transaction's failure
	 * (PostgreSQL: to_regclass; SQLite: sqlite_master). */
	int (*table_exists)(db_conn *c, const char *table, bool *exists, char *err);
	/* Liveness of the connection (a trivial round trip; PostgreSQL reconnects here when the
	 * connection was lost). PB_OK or PB_EUNAVAIL/PB_EIO with the reason. */
	int (*ping)(db_conn *c, char *err);
	/* db_unmap: stop memory-mapping the database (SQLite PRAGMA mmap_size=0). NULL: the
	 * engine maps nothing. */
	int (*unmap)(db_conn *c, char *err);
};

/* db_open through driver drv whatever target looks like (tests: a driver wrapping another;
 * drv is borrowed until db_close). */
int db_open_driver(const struct db_driver *drv, const char *target, bool create, pb_db **out, char *err);

/* The SQLite driver (runtime/db_sqlite.c). */
const struct db_driver *db_sqlite_driver(void);
/* The PostgreSQL driver, or NULL when this build has none (runtime/db_nopg.c; a build with
 * libpq defines it in runtime/db_pg.c instead). */
const struct db_driver *db_pg_driver(void);

#endif
