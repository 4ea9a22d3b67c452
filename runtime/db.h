/* SQLite access: opening, migrations, the prepared-statement cache, write transactions.
 *
 * One pb_db per process, kept across requests (with its cached statements).
 * Several processes share the file: WAL, busy_timeout (PB_DB_BUSY_TIMEOUT_MS),
 * foreign keys on, and writes go through db_begin() = BEGIN IMMEDIATE so a writer
 * waits for the lock at the start instead of failing half-way with "database is locked".
 *
 * SQL lives only here (schema_migrations) and in the store modules that own their
 * tables; every value is bound, every statement text is a constant. */
#ifndef PBIPORT_DB_H
#define PBIPORT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <sqlite3.h>

typedef struct pb_db pb_db;
struct json_t;

#define PB_ID_BUF   33   /* 32 hex digits + NUL: every TEXT id pbiport makes */
#define PB_TIME_BUF 32   /* "2026-11-26T03:04:05.678Z" + NUL */

/* Opens path. create=false refuses a file that does not exist (the server must
 * not silently make an empty database). *out is new: free with db_close(). */
int db_open(const char *path, bool create, pb_db **out, char *err);
void db_close(pb_db *db);
/* Turns off the memory mapping of the file for this connection. The request path maps
 * the database (stale pages are re-read from memory); a long-lived worker that streams
 * through large tables would keep all of those pages resident for nothing. */
int db_unmap(pb_db *db, char *err);
sqlite3 *db_sqlite(pb_db *db);   /* borrowed until db_close */

/* A cached statement for constant text sql, reset and unbound, ready to bind.
 * *out is borrowed until db_close; call db_done() when finished with it. */
int db_prepare(pb_db *db, const char *sql, sqlite3_stmt **out, char *err);
void db_done(sqlite3_stmt *st);

/* Steps a statement expected to finish (INSERT/UPDATE/DELETE): PB_OK on SQLITE_DONE
 * or SQLITE_ROW; a constraint violation is PB_EINVAL, anything else PB_EIO. */
int db_exec(pb_db *db, sqlite3_stmt *st, char *err);
/* One step of a query: 1 = row ready, 0 = no more rows, <0 = pb_rc with err. */
int db_row(pb_db *db, sqlite3_stmt *st, char *err);

/* Prepares sql and binds the n texts v in order (NULL binds NULL): *out is ready to step, as
 * db_prepare's; db_done it when finished, whatever this returned. */
int db_prepare_texts(pb_db *db, const char *sql, const char *const *v, int n, sqlite3_stmt **out, char *err);
/* A list query: db_prepare_texts, then its last parameter (LIMIT ?) bound to limit, the most rows
 * the caller takes (every list pbiport reads is bounded; the caller makes room for limit rows). */
int db_prepare_list(pb_db *db, const char *sql, const char *const *v, int n, int limit, sqlite3_stmt **out,
		    char *err);
/* What a list answer shows of the row st is on: a new JSON value, NULL when out of memory. */
typedef struct json_t *(*db_row_json_fn)(sqlite3_stmt *st, void *ctx);
/* The JSON array of row_json(row, ctx) for every row of query sql (its n texts v bound, then, when
 * limit > 0, its LIMIT ? bound to limit as db_prepare_list does). *out new; on failure NULL, never
 * a list missing a row. */
int db_list_json(pb_db *db, const char *sql, const char *const *v, int n, int limit, db_row_json_fn row_json,
		 void *ctx, struct json_t **out, char *err);
/* Prepares sql, binds the n texts v in order (NULL binds NULL) and runs it as db_exec. */
int db_exec_texts(pb_db *db, const char *sql, const char *const *v, int n, char *err);
/* Prepares query sql, binds the n texts v in order and sets *found to whether it has a row. */
int db_has_row(pb_db *db, const char *sql, const char *const *v, int n, bool *found, char *err);

/* Prepares query sql, binds the n texts v in order and max as parameter n + 1 (its LIMIT), and
 * collects the first column of each row, an id, into *ids (new array: free; NULL when no row),
 * *count of them. PB_EINTERNAL for a value longer than an id. */
int db_select_ids(pb_db *db, const char *sql, const char *const *v, int n, size_t max, char (**ids)[PB_ID_BUF],
		  size_t *count, char *err);
/* Binds text (NULL binds SQL NULL). Returns PB_OK or PB_ENOMEM. */
int db_bind_text(sqlite3_stmt *st, int idx, const char *s, char *err);
/* Column text, "" for NULL; borrowed until the next step/reset of st. */
const char *db_col_text(sqlite3_stmt *st, int idx);
/* Column text as a new string (NULL for SQL NULL; *ok false on OOM). */
char *db_col_dup(sqlite3_stmt *st, int idx, bool *ok);

/* A text a row struct owns (a char * member) and the column it is read from. A store lists its
 * struct's texts once, in one table, and both reads (db_col_texts) and frees (db_texts_free) them
 * through it: a column added to the list is read and freed, never one without the other. */
typedef struct db_text_field {
	size_t offset;   /* offsetof the char * member */
	int col;
} db_text_field;
#define DB_TEXT_FIELD(type, member, column) { offsetof(type, member), (column) }
/* Sets every listed member of row to a new copy of its column (NULL for SQL NULL). PB_ENOMEM
 * when a copy ran out of memory: then every listed member is NULL again. */
int db_col_texts(sqlite3_stmt *st, void *row, const db_text_field *f, size_t n, char *err);
/* Frees every listed member of row and sets it to NULL. */
void db_texts_free(void *row, const db_text_field *f, size_t n);
/* Frees a row struct that owns only the listed texts: them, then row itself (NULL: nothing). */
void db_row_free(void *row, const db_text_field *f, size_t n);
/* Frees an array v of n such rows of size bytes each: every row's texts, then v. */
void db_rows_free(void *v, size_t n, size_t size, const db_text_field *f, size_t nf);
/* A fixed-size text member (a char array: ids, times) of a row struct and its column. */
typedef struct db_fixed_field {
	size_t offset, size;
	int col;
} db_fixed_field;
#define DB_FIXED_FIELD(type, member, column) { offsetof(type, member), sizeof(((type *)0)->member), (column) }
/* Copies each listed column into its member, in order; false at the first value longer than its
 * member (a malformed row: the caller says which table's). */
bool db_col_fixed(sqlite3_stmt *st, void *row, const db_fixed_field *f, size_t n);
#define DB_NFIELDS(table) (sizeof(table) / sizeof((table)[0]))

/* A read transaction (BEGIN ... COMMIT): several reads see one snapshot and take the
 * file locks once. db_read_end() cannot fail the caller: reads have nothing to commit. */
int db_read_begin(pb_db *db, char *err);
void db_read_end(pb_db *db);

/* Write transactions: BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any failure. Called inside a
 * write transaction, db_begin opens a savepoint instead, db_commit releases it (the outer
 * transaction commits it) and db_rollback undoes back to it: a store function with its own
 * transaction joins the caller's, so several writes (a run row and its job) commit together or
 * not at all. Every db_begin is ended by exactly one db_commit or db_rollback. */
int db_begin(pb_db *db, char *err);
int db_commit(pb_db *db, char *err);
void db_rollback(pb_db *db);
/* Ends what db_begin opened, by the outcome rc of the work inside it: db_commit when rc is PB_OK,
 * db_rollback otherwise. Returns rc, or db_commit's failure (rolled back already). */
int db_end(pb_db *db, int rc, char *err);
/* True inside a write transaction (db_begin not yet ended). */
bool db_in_transaction(const pb_db *db);

/* Migrations: files dir/NNNN_name.sql, applied in number order, each in its own
 * transaction (so a file must not contain BEGIN/COMMIT), recorded in
 * schema_migrations(version, name, applied_at). Every file not yet recorded is applied,
 * also one numbered below the highest applied (written in parallel, merged later).
 * Several migrators at once are safe: each re-checks a version under the write lock.
 * Running it again applies nothing. *applied (may be NULL) counts new ones. */
int db_migrate(pb_db *db, const char *dir, int *applied, char *err);
/* Highest version recorded in the database (0 for a database never migrated). */
int db_schema_version(pb_db *db, int *version, char *err);
/* Start-up check: fails with "database schema is at version X, this binary needs Y:
 * run `pbiport migrate`" when the database is behind the migration files, or "database
 * schema lacks migration NNNN_name.sql: ..." when a lower-numbered file is missing. */
int db_check_schema(pb_db *db, const char *dir, char *err);

/* Liveness: a read of schema_migrations. PB_EIO with the reason when it fails. */
int db_ping(pb_db *db, char *err);

/* A fresh random id (32 lower-case hex digits). */
int pb_new_id(char out[PB_ID_BUF], char *err);
/* The current UTC time as ISO-8601 text with milliseconds. */
void pb_now(char out[PB_TIME_BUF]);

#endif
