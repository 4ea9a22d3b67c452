/* The database: opening, migrations, the prepared-statement cache, transactions, and the
 * statement API every store uses. Engine-neutral: the engine (SQLite or PostgreSQL) is a driver
 * behind runtime/db_driver.h, chosen by db_open's target; nothing outside runtime/db*.c names an
 * engine's library.
 *
 * One pb_db per process, kept across requests (with its cached statements).
 * SQLite: several processes share the file: WAL, busy_timeout (PB_DB_BUSY_TIMEOUT_MS), foreign
 * keys on, and writes go through db_begin() = BEGIN IMMEDIATE so a writer waits for the lock at
 * the start instead of failing half-way with "database is locked".
 * PostgreSQL: one connection per process, reconnected after a loss; db_begin() = BEGIN.
 *
 * SQL lives only here (schema_migrations) and in the store modules that own their tables; every
 * value is bound, every statement text is a constant. It is written once for both engines (the
 * common subset: `?` placeholders, ON CONFLICT, CAST(? AS ...) where a parameter's type cannot be
 * inferred, integers 0/1 for booleans); where a statement cannot be common, the store picks its
 * text by db_dialect().
 *
 * Results: PB_OK or a pb_rc with a message in err. A constraint (unique, foreign key, check, not
 * null) refusing a write is PB_ECONFLICT; a database that cannot take work now (connection lost,
 * busy or a serialization failure retried to the end) is PB_EUNAVAIL (503, Retry-After); anything
 * else PB_EIO. */
#ifndef PBIPORT_DB_H
#define PBIPORT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pb_db pb_db;
/* A prepared statement of a pb_db: opaque. */
typedef struct db_stmt db_stmt;
struct json_t;

enum db_dialect { DB_DIALECT_SQLITE, DB_DIALECT_POSTGRESQL };

#define PB_ID_BUF   33   /* 32 hex digits + NUL: every TEXT id pbiport makes */
#define PB_TIME_BUF 32   /* "2026-11-26T03:04:05.678Z" + NUL */

/* Opens target: a postgresql:// or postgres:// URL, or a libpq key=value string (its first word
 * is key=value: "host=/run/pg dbname=pbiport"), means PostgreSQL; anything else is the path of a
 * SQLite file (write ./a=b.db for a file whose name holds '='). create=false refuses a SQLite file
 * that does not exist (the server must not silently make an empty database). *out is new: free
 * with db_close(). */
int db_open(const char *target, bool create, pb_db **out, char *err);
void db_close(pb_db *db);
/* True when target names a PostgreSQL database (db_open's rule above). */
bool db_target_is_pg(const char *target);
/* The engine of db, for the few statements whose text cannot be common. */
enum db_dialect db_dialect(const pb_db *db);
/* The driver's name: "sqlite" or "postgresql" (static). */
const char *db_engine(const pb_db *db);
/* Turns off the memory mapping of the file for this connection. The request path maps
 * the database (stale pages are re-read from memory); a long-lived worker that streams
 * through large tables would keep all of those pages resident for nothing. (PostgreSQL: nothing
 * to do.) */
int db_unmap(pb_db *db, char *err);

/* A cached statement for constant text sql, reset and unbound, ready to bind.
 * *out is borrowed until db_close; call db_done() when finished with it. */
int db_prepare(pb_db *db, const char *sql, db_stmt **out, char *err);
void db_done(db_stmt *st);
/* Back before the first row of st with its bindings kept: the same query read again. */
void db_rerun(db_stmt *st);
/* A statement for sql built at run time (tests, tools): not cached. *out new: db_stmt_free(). */
int db_prepare_new(pb_db *db, const char *sql, db_stmt **out, char *err);
void db_stmt_free(db_stmt *st);   /* NULL: nothing */

/* Steps a statement expected to finish (INSERT/UPDATE/DELETE): PB_OK when it finished or gave a
 * row; a constraint violation is PB_ECONFLICT, a database that cannot take work PB_EUNAVAIL,
 * anything else PB_EIO. A busy/serialization failure outside a transaction is retried a bounded
 * number of times (PB_DB_RETRY_MAX) first. */
int db_exec(pb_db *db, db_stmt *st, char *err);
/* One step of a query: 1 = row ready, 0 = no more rows, <0 = pb_rc with err (as db_exec; the
 * first step of a query outside a transaction is retried as db_exec is). */
int db_row(pb_db *db, db_stmt *st, char *err);
/* Rows the last INSERT/UPDATE/DELETE on db touched. */
int64_t db_changes(pb_db *db);

/* How many parameters st has (the highest ?NNN, or the count of ?). */
int db_param_count(db_stmt *st);
/* Binding parameter idx (from 1) of st. Each returns PB_OK or a failure (PB_ENOMEM, PB_EINTERNAL
 * for an index out of range) with err; a failure is also kept by st and answered by its next
 * db_row/db_exec, so a caller may bind several values and check only the step. Values are copied.
 * db_bind_text: s NUL-terminated, NULL binds SQL NULL; db_bind_textn: len bytes of s. */
int db_bind_text(db_stmt *st, int idx, const char *s, char *err);
int db_bind_textn(db_stmt *st, int idx, const char *s, size_t len, char *err);
int db_bind_int64(db_stmt *st, int idx, int64_t v, char *err);
int db_bind_double(db_stmt *st, int idx, double v, char *err);
int db_bind_null(db_stmt *st, int idx, char *err);

/* Reading column idx (from 0) of the row db_row answered 1 for. Texts are borrowed until the
 * next step/reset/db_done of st. */
const char *db_col_text(db_stmt *st, int idx);                /* "" for NULL */
const char *db_col_textn(db_stmt *st, int idx, size_t *len);  /* NULL (len 0) for NULL */
int db_col_int(db_stmt *st, int idx);                         /* 0 for NULL */
int64_t db_col_int64(db_stmt *st, int idx);                   /* 0 for NULL */
double db_col_double(db_stmt *st, int idx);                   /* 0 for NULL */
bool db_col_is_null(db_stmt *st, int idx);
/* Column text as a new string (NULL for SQL NULL; *ok false on OOM). */
char *db_col_dup(db_stmt *st, int idx, bool *ok);

/* Prepares sql and binds the n texts v in order (NULL binds NULL): *out is ready to step, as
 * db_prepare's; db_done it when finished, whatever this returned. */
int db_prepare_texts(pb_db *db, const char *sql, const char *const *v, int n, db_stmt **out, char *err);
/* A list query: db_prepare_texts, then its last parameter (LIMIT ?) bound to limit, the most rows
 * the caller takes (every list pbiport reads is bounded; the caller makes room for limit rows). */
int db_prepare_list(pb_db *db, const char *sql, const char *const *v, int n, int limit, db_stmt **out,
		    char *err);
/* What a list answer shows of the row st is on: a new JSON value, NULL when out of memory. */
typedef struct json_t *(*db_row_json_fn)(db_stmt *st, void *ctx);
/* The JSON array of row_json(row, ctx) for every row of query sql (its n texts v bound, then, when
 * limit > 0, its LIMIT ? bound to limit as db_prepare_list does). *out new; on failure NULL, never
 * a list missing a row. */
int db_list_json(pb_db *db, const char *sql, const char *const *v, int n, int limit, db_row_json_fn row_json,
		 void *ctx, struct json_t **out, char *err);
/* Prepares sql, binds the n texts v in order (NULL binds NULL) and runs it as db_exec. */
int db_exec_texts(pb_db *db, const char *sql, const char *const *v, int n, char *err);
/* Prepares query sql, binds the n texts v in order and steps *st to its first row: PB_OK on it,
 * PB_ENOTFOUND with the message missing when there is none. *st (NULL unless prepared) is to be
 * db_done whatever this returns. */
int db_first_row(pb_db *db, const char *sql, const char *const *v, int n, const char *missing, db_stmt **st,
		 char *err);
/* Prepares query sql, binds the n texts v in order and sets *found to whether it has a row. */
int db_has_row(pb_db *db, const char *sql, const char *const *v, int n, bool *found, char *err);

/* Prepares query sql, binds the n texts v in order and max as parameter n + 1 (its LIMIT), and
 * collects the first column of each row, an id, into *ids (new array: free; NULL when no row),
 * *count of them. PB_EINTERNAL for a value longer than an id. */
int db_select_ids(pb_db *db, const char *sql, const char *const *v, int n, size_t max, char (**ids)[PB_ID_BUF],
		  size_t *count, char *err);

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
int db_col_texts(db_stmt *st, void *row, const db_text_field *f, size_t n, char *err);
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
bool db_col_fixed(db_stmt *st, void *row, const db_fixed_field *f, size_t n);
#define DB_NFIELDS(table) (sizeof(table) / sizeof((table)[0]))

/* How a store reads its row struct: the struct's size, its fixed-size and owned texts (the tables
 * above), and what the tables cannot say (integers, flags, a look-up). One per struct; the readers
 * below share the query, allocation, not-found and cleanup code every store would repeat. */
typedef struct db_reader {
	size_t size;                          /* bytes of one row struct */
	const char *what;                     /* "asset": "no asset <key>", "malformed asset row" */
	const db_fixed_field *fixed;
	size_t nfixed;
	const db_text_field *texts;
	size_t ntexts;
	/* Called after the tables were read (NULL: nothing more); ctx is the reader call's. On a
	 * failure the texts of the tables are freed by the caller: more frees only what it made
	 * outside them. */
	int (*more)(pb_db *db, db_stmt *st, void *row, void *ctx, char *err);
} db_reader;

/* The db_reader of struct type read through the tables fixed and texts (arrays) and more. */
#define DB_READER(type, what, fixed, texts, more) \
	{ sizeof(type), (what), (fixed), DB_NFIELDS(fixed), (texts), DB_NFIELDS(texts), (more) }

/* Reads the row st is on into row (zeroed first): the fixed texts (a value longer than its member
 * is PB_EIO "malformed <what> row"), the owned texts, then r->more. On failure row owns nothing. */
int db_read_row(pb_db *db, db_stmt *st, const db_reader *r, void *row, void *ctx, char *err);
/* The first row of query sql (the n texts v bound) as a new struct (*out; free with
 * db_reader_free); none: PB_ENOTFOUND "no <what> <key>". *out NULL on failure. */
int db_get_one(pb_db *db, const char *sql, const char *const *v, int n, const db_reader *r, void *ctx,
	       const char *key, void **out, char *err);
/* The rows of list query sql (the n texts v bound, then its LIMIT ? bound to max) as a new array of
 * *count structs (*out, room for max; free with db_reader_rows_free). NULL on failure, never a
 * list missing a row. */
int db_get_rows(pb_db *db, const char *sql, const char *const *v, int n, size_t max, const db_reader *r,
		void *ctx, void **out, size_t *count, char *err);
/* As db_get_rows, but a new array of *count pointers to new structs (db_reader_ptrs_free). */
int db_get_ptrs(pb_db *db, const char *sql, const char *const *v, int n, size_t max, const db_reader *r,
		void *ctx, void ***out, size_t *count, char *err);
/* Frees a struct of r's (its texts, then it; NULL: nothing), an array of n of them, an array of n
 * pointers to them. */
void db_reader_free(const db_reader *r, void *row);
void db_reader_rows_free(const db_reader *r, void *v, size_t n);
void db_reader_ptrs_free(const db_reader *r, void **v, size_t n);

/* A read transaction: several reads see one snapshot (SQLite BEGIN, which also takes the file
 * locks once; PostgreSQL BEGIN ISOLATION LEVEL REPEATABLE READ). Both engines send the BEGIN with
 * the transaction's first statement, so a read that runs none costs nothing. db_read_end()
 * cannot fail the caller: reads have nothing to commit. */
int db_read_begin(pb_db *db, char *err);
void db_read_end(pb_db *db);
/* Inside a read transaction: query sql with the n texts v bound will be read, so the engine may
 * read it together with the next statement run (PostgreSQL: in one round trip) and hand its rows
 * to the run of sql with the same values in this transaction; any other run reads as always. A
 * hint: PB_OK and nothing outside a read transaction, on SQLite, or when too many are waiting.
 * For a query that answers by itself: prefetched before the transaction's first statement, its
 * rows come from a snapshot of their own (one statement reads one snapshot), not the one the
 * transaction's later reads share. */
int db_prefetch(pb_db *db, const char *sql, const char *const *v, int n, char *err);
/* In a read transaction that ran no statement yet: the next statement reads by itself, before the
 * snapshot the transaction's later reads share (a read whose only statement that is sends no
 * BEGIN and no COMMIT: on PostgreSQL two commands fewer in its round trip, on SQLite two
 * statements fewer). For a lookup whose answer stands alone (the caller's identity). */
void db_read_first_alone(pb_db *db);
/* The statement db_read_first_alone was for was not run (what it reads was kept, see db_mark):
 * the transaction's snapshot begins with the next statement, which sends the BEGIN. */
void db_read_first_skipped(pb_db *db);

/* The database's committed state as a mark, read without a transaction and without a lock: two
 * marks of the same pb_db are the same (db_mark_same) only when no transaction committed in
 * between, by any connection of any process. What a connection read after taking a mark may be
 * given again, without reading, while the mark stays the same (core/store/identity.c keeps the
 * caller's identity so). SQLite in WAL mode: the WAL index header every commit rewrites, read as
 * SQLite itself reads it before a read transaction (https://www.sqlite.org/walformat.html).
 * Not valid (never the same as any mark) on PostgreSQL, on SQLite not in WAL mode, and inside a
 * transaction (its snapshot may be older than the header). */
#define DB_MARK_BYTES 48
typedef struct db_mark {
	bool valid;
	uint64_t db_serial;                      /* which pb_db (a number per db_open in this process) */
	unsigned char state[DB_MARK_BYTES];
} db_mark;
void db_mark_take(pb_db *db, db_mark *out);
bool db_mark_same(const db_mark *a, const db_mark *b);
/* db_read_end, but a read that wrote nothing may stay open on the server until the next statement,
 * whose round trip then carries its COMMIT (PostgreSQL; SQLite ends it now). The caller calls
 * db_idle() before it waits for anything (a client, the next connection, a timer), so that no
 * snapshot is held while nothing runs. */
void db_read_end_later(pb_db *db);
/* db is about to wait: a COMMIT db_read_end_later held is sent now (not awaited). NULL: nothing. */
void db_idle(pb_db *db);

/* The constant text of a query that locks the rows it reads for the write transaction it runs in:
 * on PostgreSQL sql followed by lock ("FOR UPDATE", "FOR UPDATE SKIP LOCKED"), on SQLite sql alone
 * (a write transaction there holds the database's one write lock: no other connection writes until
 * it ends). sql and lock are string literals. */
#define DB_LOCKING(db, sql, lock) (db_dialect(db) == DB_DIALECT_POSTGRESQL ? sql " " lock : sql)
/* Inside a write transaction: waits for, then holds until the transaction ends, the lock named
 * name, shared by every process on the database (PostgreSQL: an advisory transaction lock on a
 * hash of name). For a read-then-write of rows that may not exist yet, which no row lock covers
 * (a sliding window of events, a count). SQLite: nothing (the write lock covers it). */
int db_lock_name(pb_db *db, const char *name, char *err);

/* Write transactions: SQLite BEGIN IMMEDIATE, PostgreSQL BEGIN ... COMMIT, or ROLLBACK on any
 * failure. Called inside a write transaction, db_begin opens a savepoint instead, db_commit
 * releases it (the outer transaction commits it) and db_rollback undoes back to it: a store
 * function with its own transaction joins the caller's, so several writes (a run row and its
 * job) commit together or not at all. Every db_begin is ended by exactly one db_commit or
 * db_rollback.
 * On PostgreSQL a write that meets a concurrent one may fail with a serialization failure or
 * deadlock: then the whole transaction must run again, which only db_transaction does; a bare
 * db_begin ... db_end answers PB_EUNAVAIL. */
int db_begin(pb_db *db, char *err);
int db_commit(pb_db *db, char *err);
void db_rollback(pb_db *db);
/* Ends what db_begin opened, by the outcome rc of the work inside it: db_commit when rc is PB_OK,
 * db_rollback otherwise. Returns rc, or db_commit's failure (rolled back already). */
int db_end(pb_db *db, int rc, char *err);
/* True inside a write transaction (db_begin not yet ended). */
bool db_in_transaction(const pb_db *db);

/* The work of one write transaction: returns PB_OK to commit, or a failure to roll back (which
 * db_transaction returns). It may run more than once (see below): it must not keep effects
 * outside the database from an earlier run (reset what it fills in ctx at its start). */
typedef int (*db_work_fn)(pb_db *db, void *ctx, char *err);
/* Runs fn(db, ctx, err) in a write transaction (db_begin ... db_end). When the transaction fails
 * because it met a concurrent one (busy, serialization failure, deadlock), it is rolled back and
 * run again from the start, at most PB_DB_RETRY_MAX times, then PB_EUNAVAIL. Called inside a
 * write transaction it runs fn in a savepoint once (the outermost db_transaction reruns). */
int db_transaction(pb_db *db, db_work_fn fn, void *ctx, char *err);

/* Runs script, one or more statements without parameters or results (tests, tools; not cached,
 * so its text may be built at run time). */
int db_exec_script(pb_db *db, const char *script, char *err);

/* Migrations: files dir/NNNN_name.sql, applied in number order, each in its own
 * transaction (so a file must not contain BEGIN/COMMIT), recorded in
 * schema_migrations(version, name, applied_at). A file is common to both engines unless
 * dir/NNNN_name.<engine>.sql exists (engine: db_engine(), "sqlite" or "postgresql"): that one
 * replaces it for that engine; files of the other engine are ignored (NNNN_name.postgresql.sql
 * alone, with no common file, is a step only PostgreSQL has). The name recorded is the common
 * file's, NNNN_name.sql, whichever file ran.
 * Every file not yet recorded is applied, also one numbered below the highest applied (written in
 * parallel, merged later). Several migrators at once are safe: the driver's migration lock
 * (PostgreSQL: an advisory lock) is held for the run, and each version is re-checked under the
 * write lock. Running it again applies nothing. *applied (may be NULL) counts new ones. */
int db_migrate(pb_db *db, const char *dir, int *applied, char *err);
/* Highest version recorded in the database (0 for a database never migrated). */
int db_schema_version(pb_db *db, int *version, char *err);
/* Start-up check: fails with "database schema is at version X, this binary needs Y:
 * run `pbiport migrate`" when the database is behind the migration files (this engine's), or
 * "database schema lacks migration NNNN_name.sql: ..." when a lower-numbered file is missing. */
int db_check_schema(pb_db *db, const char *dir, char *err);

/* Liveness: a read of schema_migrations. PB_EUNAVAIL (connection lost) or PB_EIO with the
 * reason when it fails. */
int db_ping(pb_db *db, char *err);

/* A fresh random id (32 lower-case hex digits). */
int pb_new_id(char out[PB_ID_BUF], char *err);
/* The current UTC time as ISO-8601 text with milliseconds. */
void pb_now(char out[PB_TIME_BUF]);

#endif
