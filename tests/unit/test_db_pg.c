/* The PostgreSQL driver (runtime/db_pg.c) through runtime/db.h, against a throwaway cluster
 * (tests/tools/pg_cluster.py): placeholders beside literals and comments, NULLs, integers and
 * doubles, a unique violation, transactions and savepoints, migrations raced by two connections,
 * a lost connection, and connection strings that never show their password.
 * Skips (with the reason) only when the PostgreSQL server binaries are not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"
#include "tests/unit/pg_cluster.h"

static tu_pg cluster;
static bool have_cluster;

static int setup_cluster(void **state)
{
	int r = tu_pg_start(&cluster);
	have_cluster = r == 1;
	return r < 0 ? -1 : 0;
}

static int teardown_cluster(void **state)
{
	tu_pg_stop(&cluster);
	return 0;
}

/* A new database named name, opened: NULL (the test skips) without PostgreSQL binaries. */
static pb_db *fresh_db(const char *name, char *conninfo, size_t size)
{
	char err[PB_ERR_MAX], own[1200];
	pb_db *db = NULL;
	if (!have_cluster)
		return NULL;
	if (!conninfo) {
		conninfo = own;
		size = sizeof own;
	}
	if (tu_pg_createdb(&cluster, name, conninfo, size, err) || db_open(conninfo, false, &db, err))
		fail_msg("%s: %s", name, err);
	assert_string_equal(db_engine(db), "postgresql");
	assert_int_equal(db_dialect(db), DB_DIALECT_POSTGRESQL);
	return db;
}

#define NEED_CLUSTER(db)                                                        \
	do {                                                                    \
		if (!(db)) {                                                    \
			printf("SKIP: PostgreSQL is not installed\n");          \
			skip();                                                 \
		}                                                               \
	} while (0)

static void script(pb_db *db, const char *sql)
{
	char err[PB_ERR_MAX];
	if (db_exec_script(db, sql, err))
		fail_msg("%s: %s", sql, err);
}

/* `?` is a parameter only outside literals, quoted identifiers and comments. */
static void placeholders_beside_literals(void **state)
{
	pb_db *db = fresh_db("t_placeholders", NULL, 0);
	NEED_CLUSTER(db);
	char err[PB_ERR_MAX];
	db_stmt *st = NULL;
	assert_int_equal(db_prepare_new(db,
					"SELECT CAST(? AS TEXT), '?', 'it''s ?', E'\\'?', $$ ? $$, $t$?$t$, "
					"\"?\".x /* ? /* ? */ ? */ -- ?\n, CAST(? AS TEXT) "
					"FROM (SELECT 'q?' AS x) AS \"?\"",
					&st, err),
			 PB_OK);
	db_bind_text(st, 1, "one", err);
	db_bind_text(st, 2, "two", err);
	assert_int_equal(db_row(db, st, err), 1);
	const char *want[] = { "one", "?", "it's ?", "'?", " ? ", "?", "q?", "two" };
	for (int i = 0; i < 8; i++)
		assert_string_equal(db_col_text(st, i), want[i]);
	assert_int_equal(db_row(db, st, err), 0);
	/* a third parameter does not exist */
	assert_int_equal(db_bind_text(st, 3, "x", err), PB_EINTERNAL);
	db_stmt_free(st);
	db_close(db);
}

static void nulls_integers_doubles_booleans(void **state)
{
	pb_db *db = fresh_db("t_values", NULL, 0);
	NEED_CLUSTER(db);
	char err[PB_ERR_MAX];
	db_stmt *st = NULL;
	script(db, "CREATE TABLE v (i BIGINT, d DOUBLE PRECISION, t TEXT)");
	assert_int_equal(db_prepare_new(db, "INSERT INTO v (i, d, t) VALUES (?, ?, ?)", &st, err), PB_OK);
	const int64_t ints[] = { INT64_MAX, INT64_MIN, 0, -1 };
	const double dbls[] = { 0.1, 1e300, -2.5e-300, 1.0 / 3 };
	const size_t lens[] = { 0, 1, 6, 14 };   /* "", "h", "héllo", "héllo, wörld" */
	for (int i = 0; i < 4; i++) {
		db_bind_int64(st, 1, ints[i], err);
		db_bind_double(st, 2, dbls[i], err);
		db_bind_textn(st, 3, "héllo, wörld", lens[i], err);
		assert_int_equal(db_exec(db, st, err), PB_OK);
		db_stmt_free(st);
		st = NULL;
		assert_int_equal(db_prepare_new(db, "INSERT INTO v (i, d, t) VALUES (?, ?, ?)", &st, err), PB_OK);
	}
	db_bind_null(st, 1, err);
	db_bind_null(st, 2, err);
	db_bind_text(st, 3, NULL, err);
	assert_int_equal(db_exec(db, st, err), PB_OK);
	assert_int_equal(db_changes(db), 1);
	db_stmt_free(st);

	assert_int_equal(db_prepare_new(db, "SELECT i, d, t, i IS NULL, t = '' FROM v ORDER BY i NULLS LAST", &st,
					err),
			 PB_OK);
	const int order[] = { 1, 3, 2, 0 };   /* INT64_MIN, -1, 0, INT64_MAX */
	for (int k = 0; k < 4; k++) {
		int i = order[k];
		assert_int_equal(db_row(db, st, err), 1);
		assert_true(db_col_int64(st, 0) == ints[i]);
		assert_true(db_col_double(st, 1) == dbls[i]);
		size_t len = 99;
		const char *t = db_col_textn(st, 2, &len);
		assert_non_null(t);
		assert_int_equal(len, lens[i]);
		assert_memory_equal(t, "héllo, wörld", len);
		assert_string_equal(db_col_text(st, 3), "0");   /* booleans read as SQLite's 0/1 */
		assert_int_equal(db_col_int(st, 4), i == 0);
	}
	assert_int_equal(db_row(db, st, err), 1);
	for (int c = 0; c < 3; c++) {
		assert_true(db_col_is_null(st, c));
		assert_string_equal(db_col_text(st, c), "");
		size_t len = 99;
		assert_null(db_col_textn(st, c, &len));
		assert_int_equal(len, 0);
	}
	assert_int_equal(db_col_int(st, 3), 1);
	assert_int_equal(db_row(db, st, err), 0);
	db_stmt_free(st);

	/* changes: what the last write touched, not what a query read */
	script(db, "UPDATE v SET t = 'x' WHERE i IS NOT NULL");
	assert_int_equal(db_prepare_new(db, "DELETE FROM v WHERE i < ?", &st, err), PB_OK);
	db_bind_int64(st, 1, 0, err);
	assert_int_equal(db_exec(db, st, err), PB_OK);
	assert_int_equal(db_changes(db), 2);
	db_stmt_free(st);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM v", NULL), 3);
	assert_int_equal(db_changes(db), 2);
	/* a NUL byte cannot be PostgreSQL text: refused, not cut */
	assert_int_equal(db_prepare_new(db, "INSERT INTO v (t) VALUES (?)", &st, err), PB_OK);
	assert_int_equal(db_bind_textn(st, 1, "a\0b", 3, err), PB_EINVAL);
	db_stmt_free(st);
	db_close(db);
}

static void unique_violation_is_a_conflict(void **state)
{
	pb_db *db = fresh_db("t_unique", NULL, 0);
	NEED_CLUSTER(db);
	char err[PB_ERR_MAX];
	const char *v[] = { "a" };
	script(db, "CREATE TABLE u (k TEXT PRIMARY KEY, n INTEGER CHECK (n > 0))");
	static const char ins[] = "INSERT INTO u (k, n) VALUES (?, 1)";
	assert_int_equal(db_exec_texts(db, ins, v, 1, err), PB_OK);
	assert_int_equal(db_exec_texts(db, ins, v, 1, err), PB_ECONFLICT);
	assert_non_null(strstr(err, "duplicate key"));
	assert_int_equal(db_exec_texts(db, "INSERT INTO u (k, n) VALUES (?, 0)", (const char *[]){ "b" }, 1, err),
			 PB_ECONFLICT);
	/* the same insert made portable with ON CONFLICT, and a syntax error is plain trouble */
	assert_int_equal(db_exec_texts(db, "INSERT INTO u (k, n) VALUES (?, 1) ON CONFLICT (k) DO NOTHING", v, 1, err),
			 PB_OK);
	assert_int_equal(db_changes(db), 0);
	assert_int_equal(db_exec_script(db, "SELEC 1", err), PB_EIO);
	assert_non_null(strstr(err, "database: "));
	db_close(db);
}

static int insert_k(pb_db *db, const char *k, char *err)
{
	return db_exec_texts(db, "INSERT INTO tx (k) VALUES (?)", (const char *[]){ k }, 1, err);
}

/* After the server came back: the rows of tx, read by a statement prepared before it went. */
static void count_after_restart(pb_db *db, int want)
{
	char err[PB_ERR_MAX];
	db_stmt *st = NULL;
	assert_int_equal(db_prepare_texts(db, "SELECT COUNT(*) FROM tx WHERE k <> ?", (const char *[]){ "x" }, 1, &st, err),
			 PB_OK);
	if (db_row(db, st, err) != 1)
		fail_msg("after the restart: %s", err);
	assert_int_equal(db_col_int(st, 0), want);
	db_done(st);
}

/* A new database name with table tx, opened twice: *other is the second connection (NULL, and
 * NULL answered, without PostgreSQL binaries). */
static pb_db *fresh_pair(const char *name, pb_db **other)
{
	char conninfo[1200], err[PB_ERR_MAX];
	pb_db *db = fresh_db(name, conninfo, sizeof conninfo);
	*other = NULL;
	if (!db)
		return NULL;
	if (db_open(conninfo, false, other, err))
		fail_msg("%s: %s", name, err);
	script(db, "CREATE TABLE tx (k TEXT PRIMARY KEY)");
	return db;
}

static void transaction_and_savepoint_rolled_back(void **state)
{
	pb_db *db = fresh_db("t_tx", NULL, 0);
	NEED_CLUSTER(db);
	char err[PB_ERR_MAX];
	script(db, "CREATE TABLE tx (k TEXT PRIMARY KEY)");

	assert_int_equal(db_begin(db, err), PB_OK);
	assert_true(db_in_transaction(db));
	assert_int_equal(insert_k(db, "kept", err), PB_OK);
	assert_int_equal(db_begin(db, err), PB_OK);   /* a savepoint */
	assert_int_equal(insert_k(db, "undone", err), PB_OK);
	/* a failure inside the savepoint: undone with it, the outer transaction goes on */
	assert_int_equal(insert_k(db, "kept", err), PB_ECONFLICT);
	db_rollback(db);
	assert_true(db_in_transaction(db));
	assert_int_equal(insert_k(db, "also kept", err), PB_OK);
	assert_int_equal(db_commit(db, err), PB_OK);
	assert_false(db_in_transaction(db));
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 2);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx WHERE k = ?", "undone"), 0);

	assert_int_equal(db_begin(db, err), PB_OK);
	assert_int_equal(insert_k(db, "gone", err), PB_OK);
	db_rollback(db);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx WHERE k = ?", "gone"), 0);

	/* a transaction a failed statement aborted does not commit: its COMMIT says so */
	assert_int_equal(db_begin(db, err), PB_OK);
	assert_int_equal(insert_k(db, "lost", err), PB_OK);
	assert_int_equal(insert_k(db, "kept", err), PB_ECONFLICT);
	assert_int_not_equal(db_commit(db, err), PB_OK);
	assert_false(db_in_transaction(db));
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx WHERE k = ?", "lost"), 0);

	/* the BEGIN owed to the first command: a transaction that ran nothing commits or rolls back
	 * without a word to the server; a savepoint as the first command takes the BEGIN along */
	assert_int_equal(db_begin(db, err), PB_OK);
	assert_true(db_in_transaction(db));
	assert_int_equal(db_commit(db, err), PB_OK);
	assert_false(db_in_transaction(db));
	assert_int_equal(db_begin(db, err), PB_OK);
	db_rollback(db);
	assert_false(db_in_transaction(db));
	assert_int_equal(db_begin(db, err), PB_OK);
	assert_int_equal(db_begin(db, err), PB_OK);   /* SAVEPOINT, the transaction's first command */
	assert_int_equal(insert_k(db, "undone first", err), PB_OK);
	db_rollback(db);
	assert_true(db_in_transaction(db));
	assert_int_equal(insert_k(db, "kept after the savepoint", err), PB_OK);
	assert_int_equal(db_commit(db, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx WHERE k = ?", "undone first"), 0);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx WHERE k = ?", "kept after the savepoint"), 1);
	db_close(db);
}

struct migrator {
	const char *conninfo;
	const char *dir;
	int applied, rc;
	char err[PB_ERR_MAX];
};

static void *migrate_thread(void *arg)
{
	struct migrator *m = arg;
	pb_db *db = NULL;
	m->rc = db_open(m->conninfo, false, &db, m->err);
	if (!m->rc)
		m->rc = db_migrate(db, m->dir, &m->applied, m->err);
	db_close(db);
	return NULL;
}

/* Two hosts starting at once: the migrations run once, whoever wins; the schema is the one the
 * binary needs, and migrating again applies nothing. */
static void migrations_raced_apply_once(void **state)
{
	char conninfo[1200], dir[PATH_MAX], err[PB_ERR_MAX];
	pb_db *db = fresh_db("t_migrate", conninfo, sizeof conninfo);
	NEED_CLUSTER(db);
	tu_src_path(dir, sizeof dir, "sql");
	struct migrator m[2] = { { .conninfo = conninfo, .dir = dir }, { .conninfo = conninfo, .dir = dir } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, &m[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (m[i].rc)
			fail_msg("migrator %d: %s", i, m[i].err);
	}
	long files = tu_count(db, "SELECT COUNT(*) FROM schema_migrations", NULL);
	assert_true(files >= 17);
	assert_int_equal(m[0].applied + m[1].applied, files);
	assert_int_equal(tu_count(db, "SELECT COUNT(DISTINCT version) FROM schema_migrations", NULL), files);
	assert_int_equal(db_check_schema(db, dir, err), PB_OK);
	int applied = -1;
	assert_int_equal(db_migrate(db, dir, &applied, err), PB_OK);
	assert_int_equal(applied, 0);
	/* the PostgreSQL files ran where there is one, under the common file's name */
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM schema_migrations WHERE name LIKE '%postgresql%'", NULL),
			 0);
	assert_int_equal(tu_count(db,
				  "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'push_rate_events' "
				  "AND column_name = 'at_ms' AND data_type = 'bigint'",
				  NULL),
			 1);
	db_close(db);
}

/* The server goes away: statements answer PB_EUNAVAIL (503), never PB_EIO; once it is back,
 * the next statement connects again by itself, its prepared statements prepared anew. */
static void lost_connection_unavailable_then_reconnects(void **state)
{
	pb_db *db = fresh_db("t_lost", NULL, 0);
	NEED_CLUSTER(db);
	char err[PB_ERR_MAX];
	static const char count_sql[] = "SELECT COUNT(*) FROM tx WHERE k <> ?";
	db_stmt *st = NULL;
	script(db, "CREATE TABLE tx (k TEXT PRIMARY KEY)");
	assert_int_equal(insert_k(db, "before", err), PB_OK);
	assert_int_equal(db_prepare_texts(db, count_sql, (const char *[]){ "x" }, 1, &st, err), PB_OK);
	assert_int_equal(db_row(db, st, err), 1);
	db_done(st);

	assert_int_equal(tu_pg_do(&cluster, "down"), 0);
	assert_int_equal(db_prepare_texts(db, count_sql, (const char *[]){ "x" }, 1, &st, err), PB_OK);
	assert_int_equal(db_row(db, st, err), PB_EUNAVAIL);
	db_done(st);
	assert_int_equal(db_ping(db, err), PB_EUNAVAIL);
	/* a write transaction's BEGIN goes with its first statement, which tells */
	assert_int_equal(db_begin(db, err), PB_OK);
	assert_int_equal(insert_k(db, "while down", err), PB_EUNAVAIL);
	db_rollback(db);
	assert_false(db_in_transaction(db));

	assert_int_equal(tu_pg_do(&cluster, "up"), 0);
	count_after_restart(db, 1);

	/* lost inside a transaction: unavailable until it is ended, nothing of it committed, and
	 * the statements after it run on a new connection */
	assert_int_equal(db_begin(db, err), PB_OK);
	assert_int_equal(insert_k(db, "in the lost transaction", err), PB_OK);
	assert_int_equal(tu_pg_do(&cluster, "down"), 0);
	assert_int_equal(tu_pg_do(&cluster, "up"), 0);
	assert_int_equal(insert_k(db, "after the loss", err), PB_EUNAVAIL);
	assert_int_not_equal(db_commit(db, err), PB_OK);
	assert_false(db_in_transaction(db));
	assert_int_equal(insert_k(db, "next", err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 2);
	db_close(db);
}

/* A read transaction sends its BEGIN with its first statement and may hold its COMMIT for the next
 * one (runtime/db_pg.c): its reads still see one snapshot, and nothing of it outlives it. */
/* db_read_first_alone: the read's first statement reads by itself, outside the transaction (no
 * lock of it held afterwards: another connection's ALTER TABLE gets its lock); the read's later
 * statements share one snapshot begun after it; a read of that one statement sends no BEGIN and
 * nothing is left to commit. */
/* A read whose only statement stands alone opens nothing on the server: no transaction is left
 * holding the table's lock, so another session's ALTER TABLE goes through at once. (The snapshots
 * of a read whose first statement stands alone: test_db.c read_first_alone_reads_by_itself, which
 * runs on both engines.) */
static void read_first_alone_reads_by_itself(void **state)
{
	char err[PB_ERR_MAX];
	pb_db *other, *db = fresh_pair("t_alone", &other);
	NEED_CLUSTER(db);
	(void)state;
	assert_int_equal(insert_k(db, "a", err), PB_OK);
	assert_int_equal(db_read_begin(db, err), PB_OK);
	db_read_first_alone(db);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 1);
	db_read_end_later(db);
	assert_false(db_in_transaction(db));
	script(other, "SET lock_timeout = '60s'");
	script(other, "ALTER TABLE tx ADD COLUMN alone TEXT");
	script(other, "ALTER TABLE tx DROP COLUMN alone");
	db_close(other);
	db_close(db);
}

static void read_transaction_pipelined_one_snapshot(void **state)
{
	char err[PB_ERR_MAX];
	pb_db *other, *db = fresh_pair("t_read", &other);
	NEED_CLUSTER(db);
	assert_int_equal(insert_k(db, "a", err), PB_OK);

	/* a read that runs nothing sends nothing and ends cleanly, either way */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	db_read_end(db);
	assert_int_equal(db_read_begin(db, err), PB_OK);
	db_read_end_later(db);
	assert_false(db_in_transaction(db));

	/* one snapshot: a row another connection commits between two reads is not seen by the second */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 1);
	assert_int_equal(insert_k(other, "b", err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx WHERE k <> ?", "none"), 1);
	db_read_end(db);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 2);

	/* a held COMMIT: the next statement carries it and reads a new snapshot */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 2);
	db_read_end_later(db);
	assert_false(db_in_transaction(db));
	assert_int_equal(insert_k(other, "c", err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 3);
	/* ... and so does the next read transaction's first statement */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 3);
	db_read_end_later(db);
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(insert_k(other, "d", err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 4);
	db_read_end_later(db);
	/* ... and a write transaction after it */
	assert_int_equal(db_begin(db, err), PB_OK);
	assert_int_equal(insert_k(db, "e", err), PB_OK);
	assert_int_equal(db_commit(db, err), PB_OK);
	assert_int_equal(tu_count(other, "SELECT COUNT(*) FROM tx", NULL), 5);

	/* held, then idle: the transaction ends on the server without another statement from db,
	 * so a lock it held (ACCESS SHARE on tx) no longer stops another connection's ALTER TABLE */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 5);
	db_read_end_later(db);
	db_idle(db);
	script(other, "SET lock_timeout = '60s'");
	script(other, "ALTER TABLE tx ADD COLUMN v TEXT");

	/* a read that writes is committed as any transaction: the write is kept */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(insert_k(db, "written in a read", err), PB_OK);
	db_read_end_later(db);
	assert_int_equal(tu_count(other, "SELECT COUNT(*) FROM tx WHERE k = ?", "written in a read"), 1);

	/* a held COMMIT whose connection is lost: the next statement connects again */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 6);
	db_read_end_later(db);
	db_close(other);
	assert_int_equal(tu_pg_do(&cluster, "down"), 0);
	assert_int_equal(tu_pg_do(&cluster, "up"), 0);
	count_after_restart(db, 6);
	db_close(db);
}

/* A read's held COMMIT that fails answers the next statement with its own error, as the database
 * classed it, not with the "aborted" the commands after it get (which was a 500 where a server
 * shutting down is a 503). A deferred key checked at the COMMIT makes it fail on purpose here: a
 * read whose statement wrote through a function, which counts no changed rows. */
static void held_commit_failure_is_its_own(void **state)
{
	char err[PB_ERR_MAX];
	db_stmt *st = NULL;
	pb_db *db = fresh_db("t_held_fail", NULL, 0);
	NEED_CLUSTER(db);
	(void)state;
	script(db, "CREATE TABLE parent (k TEXT PRIMARY KEY)");
	script(db, "CREATE TABLE child (k TEXT REFERENCES parent (k) DEFERRABLE INITIALLY DEFERRED)");
	script(db, "CREATE FUNCTION orphan() RETURNS BIGINT LANGUAGE sql AS "
		   "$$ INSERT INTO child VALUES ('none'); SELECT 1::BIGINT $$");
	/* prepared before: a statement prepared on first use sends the held COMMIT by itself */
	static const char count_sql[] = "SELECT COUNT(*) FROM child WHERE k <> ?";
	assert_int_equal(db_prepare_texts(db, count_sql, (const char *[]){ "x" }, 1, &st, err), PB_OK);
	assert_int_equal(db_row(db, st, err), 1);
	db_done(st);
	for (int with_begin = 0; with_begin < 2; with_begin++) {
		assert_int_equal(db_read_begin(db, err), PB_OK);
		assert_int_equal(tu_count(db, "SELECT orphan()", NULL), 1);
		db_read_end_later(db);
		if (with_begin)   /* the next read's BEGIN goes in the same pipeline */
			assert_int_equal(db_read_begin(db, err), PB_OK);
		assert_int_equal(db_prepare_texts(db, count_sql, (const char *[]){ "x" }, 1, &st, err), PB_OK);
		assert_int_equal(db_row(db, st, err), PB_ECONFLICT);
		assert_non_null(strstr(err, "commit: "));
		assert_non_null(strstr(err, "foreign key"));
		db_done(st);
		if (with_begin)
			db_read_end(db);
		/* nothing of it was kept, and the connection goes on */
		assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM child", NULL), 0);
	}
	db_close(db);
}

/* Query sql (two text parameters a, b) answers exactly the one row want. */
static void one_row(pb_db *db, const char *sql, const char *a, const char *b, const char *want)
{
	char err[PB_ERR_MAX];
	db_stmt *st = NULL;
	assert_int_equal(db_prepare_texts(db, sql, (const char *[]){ a, b }, 2, &st, err), PB_OK);
	if (db_row(db, st, err) != 1)
		fail_msg("%s: %s", sql, err);
	assert_string_equal(db_col_text(st, 0), want);
	assert_int_equal(db_row(db, st, err), 0);
	db_done(st);
}

/* db_prefetch: the rows go with the next statement's round trip and are handed only to the same
 * query with the same values in the same read transaction. */
static void prefetch_only_the_same_query_in_the_same_read(void **state)
{
	static const char by_k[] = "SELECT k FROM tx WHERE k = ? OR k = ?";
	char err[PB_ERR_MAX];
	pb_db *other, *db = fresh_pair("t_prefetch", &other);
	NEED_CLUSTER(db);
	assert_int_equal(insert_k(db, "a", err), PB_OK);
	assert_int_equal(insert_k(db, "b", err), PB_OK);

	/* outside a read transaction: nothing happens */
	assert_int_equal(db_prefetch(db, by_k, (const char *[]){ "a", "a" }, 2, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx WHERE k = ?", "b"), 1);

	/* the same values: the rows read with the first statement */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(db_prefetch(db, by_k, (const char *[]){ "a", "a" }, 2, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 2);
	db_stmt *st = NULL;
	assert_int_equal(db_prepare_texts(db, by_k, (const char *[]){ "a", "a" }, 2, &st, err), PB_OK);
	assert_int_equal(db_row(db, st, err), 1);
	assert_string_equal(db_col_text(st, 0), "a");
	assert_int_equal(db_row(db, st, err), 0);
	/* read again: run again */
	db_rerun(st);
	assert_int_equal(db_row(db, st, err), 1);
	db_done(st);
	db_read_end(db);

	/* other values: their own rows, not the prefetched ones */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(db_prefetch(db, by_k, (const char *[]){ "a", "a" }, 2, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 2);
	one_row(db, by_k, "b", NULL, "b");
	db_read_end_later(db);

	/* prefetched in one read, not run there: the next read reads anew (a row committed since) */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(db_prefetch(db, by_k, (const char *[]){ "c", "c" }, 2, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 2);
	db_read_end_later(db);
	assert_int_equal(insert_k(other, "c", err), PB_OK);
	assert_int_equal(db_read_begin(db, err), PB_OK);
	one_row(db, by_k, "c", "c", "c");
	db_read_end(db);

	/* the first statement fails: the prefetched rows are not kept, the read goes on failing
	 * as PostgreSQL's aborted transactions do, and the next read works */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	assert_int_equal(db_prefetch(db, by_k, (const char *[]){ "a", "a" }, 2, err), PB_OK);
	assert_int_not_equal(db_exec_texts(db, "SELECT CAST(? AS INTEGER)", (const char *[]){ "not a number" }, 1, err),
			     PB_OK);
	db_read_end_later(db);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM tx", NULL), 3);
	db_close(other);
	db_close(db);
}

/* Connection strings: a password never shows in a message, a string libpq cannot read is the
 * caller's mistake (PB_EINVAL), a server that is not there is PB_EUNAVAIL. */
static void connection_strings_keep_their_password(void **state)
{
	char err[PB_ERR_MAX], dir[PATH_MAX], target[PATH_MAX + 100];
	pb_db *db = NULL;
	assert_true(db_target_is_pg("postgresql://u:sekrit@db.example/pbiport"));
	assert_true(db_target_is_pg("postgres://u@/pbiport?host=/run/pg"));
	assert_true(db_target_is_pg("host=/run/pg dbname=pbiport"));
	assert_false(db_target_is_pg("/var/lib/pbiport/pbiport.db"));
	assert_false(db_target_is_pg("pbiport.db"));

	assert_int_equal(db_open("postgresql://u:sekrit@[::1", false, &db, err), PB_EINVAL);
	assert_null(strstr(err, "sekrit"));
	assert_int_equal(db_open("host=/tmp port=1 password = sekrit nonsense", false, &db, err), PB_EINVAL);
	assert_null(strstr(err, "sekrit"));
	assert_int_equal(tu_mkdtemp(dir, sizeof dir, "pgconn"), 0);
	xsnprintf(target, sizeof target, "host=%s port=1 user=u password=sekrit dbname=x", dir);
	assert_int_equal(db_open(target, false, &db, err), PB_EUNAVAIL);
	assert_null(strstr(err, "sekrit"));
	assert_null(db);
	tu_rmtree(dir);
}

/* PBIPORT_DB (runtime/config.c): a connection string is kept as it is, for db_open to read; a URL
 * of any other scheme is refused without showing more than its scheme. */
static void config_takes_connection_strings(void **state)
{
	char err[PB_ERR_MAX];
	pb_config cfg;
	const char *keep[] = { "postgresql://u:sekrit@db.example:5432/pbiport?sslmode=require",
			       "host=/run/postgresql dbname=pbiport password=sekrit", "/var/lib/pbiport/a://b.db",
			       "pbiport.db" };
	for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
		setenv("PBIPORT_DB", keep[i], 1);
		if (config_load(&cfg, err))
			fail_msg("%s: %s", keep[i], err);
		assert_string_equal(cfg.db_path, keep[i]);
		config_release(&cfg);
	}
	setenv("PBIPORT_DB", "mysql://u:sekrit@db.example/pbiport", 1);
	assert_int_equal(config_load(&cfg, err), PB_EINVAL);
	assert_string_equal(err, "PBIPORT_DB: unknown scheme 'mysql://': use the path of a SQLite file or a "
				 "postgresql:// URL");
	config_release(&cfg);
	unsetenv("PBIPORT_DB");
	assert_int_equal(config_load(&cfg, err), PB_EINVAL);
	assert_non_null(strstr(err, "PBIPORT_DB is not set"));
	config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(connection_strings_keep_their_password),
		cmocka_unit_test(config_takes_connection_strings),
		cmocka_unit_test(placeholders_beside_literals),
		cmocka_unit_test(nulls_integers_doubles_booleans),
		cmocka_unit_test(unique_violation_is_a_conflict),
		cmocka_unit_test(transaction_and_savepoint_rolled_back),
		cmocka_unit_test(migrations_raced_apply_once),
		cmocka_unit_test(lost_connection_unavailable_then_reconnects),
		cmocka_unit_test(read_transaction_pipelined_one_snapshot),
		cmocka_unit_test(held_commit_failure_is_its_own),
		cmocka_unit_test(read_first_alone_reads_by_itself),
		cmocka_unit_test(prefetch_only_the_same_query_in_the_same_read),
	};
	return cmocka_run_group_tests(tests, setup_cluster, teardown_cluster);
}
