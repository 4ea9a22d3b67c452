/* Database: migrations (fresh, idempotent, schema too old), statement cache, the
 * identity store, and the catalog (import, update, get, list, delete, org isolation, who may
 * update through the API). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/store/agreements.h"
#include "core/store/catalog.h"
#include "core/lang/contract.h"
#include "core/store/identity.h"
#include "handlers/handlers.h"
#include "runtime/auth.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/db_driver.h"
#include "runtime/limits.h"
#include "runtime/metrics.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

static char path_buf[256];

static const char *tmp_path(const char *name)
{
	xsnprintf(path_buf, sizeof path_buf, "%s/%s", tu_tmpdir, name);
	return path_buf;
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[512], err[PB_ERR_MAX];
	xsnprintf(p, sizeof p, "%s/%s", dir, name);
	assert_int_equal(tu_write_file(p, text, strlen(text), err), PB_OK);
}

static const char *sql_dir(void)
{
	static char dir[512];
	tu_src_path(dir, sizeof dir, "sql");
	return dir;
}


/* One migration file of dir is not applied yet: the start-up check refuses the database with
 * message, then db_migrate applies that one file and the check passes. */
static void behind_until_migrated(pb_db *db, const char *dir, const char *message)
{
	char err[PB_ERR_MAX];
	int applied = -1;
	assert_int_equal(db_check_schema(db, dir, err), PB_EINVAL);
	assert_string_equal(err, message);
	assert_int_equal(db_migrate(db, dir, &applied, err), PB_OK);
	assert_int_equal(applied, 1);
	assert_int_equal(db_check_schema(db, dir, err), PB_OK);
}

static void migrations_fresh_idempotent_and_too_old(void **state)
{
	(void)state;
	char dir[256], err[PB_ERR_MAX];
	pb_db *db;
	int applied, version;
	xsnprintf(dir, sizeof dir, "%s/sql-a", tu_tmpdir);
	put(dir, "0001_first.sql", "CREATE TABLE a (id TEXT PRIMARY KEY);");
	put(dir, "0002_second.sql", "CREATE TABLE b (id TEXT PRIMARY KEY);");
	put(dir, "README", "not a migration");

	/* the server refuses a database that does not exist */
	assert_int_equal(db_open(tmp_path("m.db"), false, &db, err), PB_ENOTFOUND);
	assert_non_null(strstr(err, "pbiport migrate"));

	assert_int_equal(db_open(tmp_path("m.db"), true, &db, err), PB_OK);
	assert_int_equal(db_schema_version(db, &version, err), PB_OK);
	assert_int_equal(version, 0);
	assert_int_equal(db_check_schema(db, dir, err), PB_EINVAL);
	assert_string_equal(err, "database schema is at version 0, this binary needs 2: run `pbiport migrate`");

	assert_int_equal(db_migrate(db, dir, &applied, err), PB_OK);
	assert_int_equal(applied, 2);
	assert_int_equal(db_migrate(db, dir, &applied, err), PB_OK);
	assert_int_equal(applied, 0);
	assert_int_equal(db_schema_version(db, &version, err), PB_OK);
	assert_int_equal(version, 2);
	assert_int_equal(db_check_schema(db, dir, err), PB_OK);

	/* a newer binary brings 0003: the old database is detected, then migrated */
	put(dir, "0003_third.sql", "CREATE TABLE c (id TEXT PRIMARY KEY);");
	behind_until_migrated(db, dir, "database schema is at version 2, this binary needs 3: run `pbiport migrate`");

	/* a migration merged later with a lower number than the highest applied one */
	put(dir, "0003_third.sql", "CREATE TABLE c (id TEXT PRIMARY KEY);");
	put(dir, "0005_fifth.sql", "CREATE TABLE e (id TEXT PRIMARY KEY);");
	assert_int_equal(db_migrate(db, dir, &applied, err), PB_OK);
	assert_int_equal(applied, 1);
	put(dir, "0004_fourth.sql", "CREATE TABLE f (id TEXT PRIMARY KEY);");
	behind_until_migrated(db, dir, "database schema lacks migration 0004_fourth.sql: run `pbiport migrate`");
	assert_int_equal(db_schema_version(db, &version, err), PB_OK);
	assert_int_equal(version, 5);

	/* a failing migration changes nothing and names the file */
	put(dir, "0006_broken.sql", "CREATE TABLE d (id TEXT); CREATE TABLE a (x);");
	assert_int_equal(db_migrate(db, dir, &applied, err), PB_EIO);
	assert_non_null(strstr(err, "0006_broken.sql"));
	assert_int_equal(db_schema_version(db, &version, err), PB_OK);
	assert_int_equal(version, 5);
	db_stmt *st = NULL;
	assert_int_equal(db_prepare_new(db, "SELECT * FROM d", &st, err), PB_EIO);
	assert_null(st);
	db_close(db);

	/* two files with one number */
	char dup[256];
	xsnprintf(dup, sizeof dup, "%s/sql-dup", tu_tmpdir);
	put(dup, "0001_a.sql", "SELECT 1;");
	put(dup, "0001_b.sql", "SELECT 1;");
	assert_int_equal(db_open(tmp_path("dup.db"), true, &db, err), PB_OK);
	assert_int_equal(db_migrate(db, dup, NULL, err), PB_EINVAL);
	assert_non_null(strstr(err, "have the same number"));
	assert_int_equal(db_check_schema(db, dup, err), PB_EINVAL);
	db_close(db);
}

static void real_schema_and_statement_cache(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_db *db;
	int applied, need;
	assert_int_equal(db_open(tmp_path("real.db"), true, &db, err), PB_OK);
	assert_int_equal(db_migrate(db, sql_dir(), &applied, err), PB_OK);
	assert_true(applied >= 1);
	assert_int_equal(db_schema_version(db, &need, err), PB_OK);
	assert_true(need >= applied);
	assert_int_equal(db_check_schema(db, sql_dir(), err), PB_OK);
	assert_int_equal(db_ping(db, err), PB_OK);

	/* WAL and foreign keys are on */
	db_stmt *st;
	assert_int_equal(db_prepare(db, "PRAGMA journal_mode", &st, err), PB_OK);
	assert_int_equal(db_row(db, st, err), 1);
	assert_string_equal(db_col_text(st, 0), "wal");
	db_done(st);
	assert_int_equal(db_prepare(db, "PRAGMA foreign_keys", &st, err), PB_OK);
	assert_int_equal(db_row(db, st, err), 1);
	assert_int_equal(db_col_int(st, 0), 1);
	db_done(st);

	/* the same text gives the same prepared statement */
	db_stmt *a, *b;
	static const char q[] = "SELECT count(*) FROM organizations";
	assert_int_equal(db_prepare(db, q, &a, err), PB_OK);
	db_done(a);
	char copy[sizeof q];
	memcpy(copy, q, sizeof q);
	assert_int_equal(db_prepare(db, copy, &b, err), PB_OK);
	assert_ptr_equal(a, b);
	db_done(b);
	db_close(db);
}

static pb_db *fresh_db(const char *name)
{
	char err[PB_ERR_MAX];
	pb_db *db;
	assert_int_equal(db_open(tmp_path(name), true, &db, err), PB_OK);
	assert_int_equal(db_migrate(db, sql_dir(), NULL, err), PB_OK);
	return db;
}

static long count_rows(pb_db *db, const char *name)
{
	char err[PB_ERR_MAX];
	bool found = false;
	const char *v[] = { name };
	assert_int_equal(db_has_row(db, "SELECT 1 FROM nest WHERE name = ?", v, 1, &found, err), PB_OK);
	return found;
}

static void insert_nest(pb_db *db, const char *name)
{
	char err[PB_ERR_MAX];
	const char *v[] = { name };
	assert_int_equal(db_exec_texts(db, "INSERT INTO nest (name) VALUES (?)", v, 1, err), PB_OK);
}

/* A new database file of tu_tmpdir holding the empty table nest(name) of the transaction tests. */
static pb_db *nest_db(const char *file)
{
	pb_db *db = NULL;
	char err[PB_ERR_MAX];
	assert_int_equal(db_open(tmp_path(file), true, &db, err), PB_OK);
	assert_int_equal(db_exec_texts(db, "CREATE TABLE nest (name TEXT)", NULL, 0, err), PB_OK);
	return db;
}

/* A function with its own transaction joins the caller's: its commit waits for the outer one,
 * its rollback undoes only its part, the outer rollback undoes everything. */
static void transactions_nest_as_savepoints(void **state)
{
	(void)state;
	pb_db *db = nest_db("nest.db");
	char err[PB_ERR_MAX];
	assert_false(db_in_transaction(db));
	assert_int_equal(db_begin(db, err), PB_OK);
	insert_nest(db, "outer");
	assert_int_equal(db_begin(db, err), PB_OK);
	insert_nest(db, "undone");
	db_rollback(db);
	assert_true(db_in_transaction(db));
	assert_int_equal(db_begin(db, err), PB_OK);
	insert_nest(db, "kept");
	assert_int_equal(db_commit(db, err), PB_OK);
	assert_true(db_in_transaction(db));
	/* the inner commit released its savepoint: it ran RELEASE, not a cached statement of the same
	 * (stack) text address, such as the SAVEPOINT of the begin */
	assert_int_not_equal(db_exec_script(db, "RELEASE pb1", NULL), PB_OK);
	assert_int_equal(db_commit(db, err), PB_OK);
	assert_false(db_in_transaction(db));
	assert_true(count_rows(db, "outer") && count_rows(db, "kept"));
	assert_false(count_rows(db, "undone"));
	/* the outer rollback takes a committed inner part with it */
	assert_int_equal(db_begin(db, err), PB_OK);
	assert_int_equal(db_begin(db, err), PB_OK);
	insert_nest(db, "inner-then-outer-rollback");
	assert_int_equal(db_commit(db, err), PB_OK);
	db_rollback(db);
	assert_false(db_in_transaction(db));
	assert_false(count_rows(db, "inner-then-outer-rollback"));
	/* an inner commit releases its savepoint (it once ran the cached SAVEPOINT statement
	 * again: its SQL text lived on the stack, where RELEASE's came next) */
	for (int round = 0; round < 3; round++) {
		assert_int_equal(db_begin(db, err), PB_OK);
		assert_int_equal(db_begin(db, err), PB_OK);
		assert_int_equal(db_commit(db, err), PB_OK);
		assert_int_not_equal(db_exec_script(db, "ROLLBACK TO pb1", NULL), PB_OK);
		assert_int_equal(db_commit(db, err), PB_OK);
	}
	db_close(db);
}

/* db_end commits what went well and rolls back what failed, at any depth; a commit that fails
 * (here a deferred foreign key) is rolled back and reported, the transaction left closed. */
static void db_end_commits_or_rolls_back(void **state)
{
	(void)state;
	pb_db *db = nest_db("end.db");
	char err[PB_ERR_MAX];
	assert_int_equal(db_begin(db, err), PB_OK);
	insert_nest(db, "outer");
	assert_int_equal(db_begin(db, err), PB_OK);
	insert_nest(db, "failed");
	assert_int_equal(db_end(db, PB_EINVAL, err), PB_EINVAL);
	assert_true(db_in_transaction(db));
	assert_int_equal(db_begin(db, err), PB_OK);
	insert_nest(db, "done");
	assert_int_equal(db_end(db, PB_OK, err), PB_OK);
	assert_true(db_in_transaction(db));
	assert_int_equal(db_end(db, PB_OK, err), PB_OK);
	assert_false(db_in_transaction(db));
	assert_true(count_rows(db, "outer") && count_rows(db, "done"));
	assert_false(count_rows(db, "failed"));

	assert_int_equal(db_exec_texts(db, "CREATE TABLE parent (id TEXT PRIMARY KEY)", NULL, 0, err), PB_OK);
	assert_int_equal(db_exec_texts(db, "CREATE TABLE child (parent_id TEXT REFERENCES parent (id) "
				       "DEFERRABLE INITIALLY DEFERRED)", NULL, 0, err), PB_OK);
	assert_int_equal(db_begin(db, err), PB_OK);
	insert_nest(db, "with-orphan");
	assert_int_equal(db_exec_texts(db, "INSERT INTO child (parent_id) VALUES ('none')", NULL, 0, err), PB_OK);
	assert_int_not_equal(db_end(db, PB_OK, err), PB_OK);
	assert_false(db_in_transaction(db));
	assert_false(count_rows(db, "with-orphan"));
	/* the connection is usable: nothing was left open */
	assert_int_equal(db_begin(db, err), PB_OK);
	insert_nest(db, "after");
	assert_int_equal(db_end(db, PB_OK, err), PB_OK);
	assert_true(count_rows(db, "after"));
	db_close(db);
}

static void identity_store(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], org[PB_ID_BUF], user[PB_ID_BUF], token[PB_TOKEN_BUF], hash[PB_TOKEN_HASH_HEX];
	pb_identity who;
	pb_db *db = fresh_db("id.db");
	const char *teams[] = { "data", "finance" };

	assert_int_equal(identity_org_create(db, "acme", org, err), PB_OK);
	assert_int_equal(identity_org_create(db, "acme", org, err), PB_ECONFLICT);
	assert_non_null(strstr(err, "already exists"));
	assert_int_equal(identity_org_create(db, "", org, err), PB_EINVAL);
	assert_int_equal(identity_org_create(db, "a\nb", org, err), PB_EINVAL);

	assert_int_equal(identity_user_add(db, "alice", "acme", PB_ROLE_OWNER, teams, 2, user, err), PB_OK);
	assert_int_equal(identity_user_add(db, "alice", "acme", PB_ROLE_MEMBER, NULL, 0, user, err), PB_ECONFLICT);
	assert_int_equal(identity_user_add(db, "bob", "nope", PB_ROLE_MEMBER, NULL, 0, user, err), PB_ENOTFOUND);
	assert_int_equal(identity_user_add(db, "bob", "acme", PB_ROLE_MEMBER, teams, 1, user, err), PB_OK);

	assert_int_equal(identity_user_by_name(db, "alice", &who, err), PB_OK);
	assert_int_equal(who.role, PB_ROLE_OWNER);
	assert_string_equal(who.user_name, "alice");
	assert_int_equal(identity_user_by_name(db, "carol", &who, err), PB_ENOTFOUND);

	assert_int_equal(identity_token_create(db, "bob", token, err), PB_OK);
	assert_int_equal(identity_token_create(db, "carol", token + 0, err), PB_ENOTFOUND);
	assert_int_equal(identity_token_create(db, "bob", token, err), PB_OK);
	char id[PB_ID_BUF], want[PB_TOKEN_HASH_HEX];
	assert_int_equal(auth_token_id(token, id, err), PB_OK);
	assert_int_equal(identity_token_by_id(db, id, &who, hash, err), PB_OK);
	assert_string_equal(who.user_name, "bob");
	auth_token_hash(token, want);
	assert_string_equal(hash, want);

	/* only the hash is stored */
	db_stmt *st;
	assert_int_equal(db_prepare(db, "SELECT count(*) FROM api_tokens WHERE token_hash = ?", &st, err), PB_OK);
	assert_int_equal(db_bind_text(st, 1, token, err), PB_OK);
	assert_int_equal(db_row(db, st, err), 1);
	assert_int_equal(db_col_int(st, 0), 0);
	db_done(st);

	/* the same token through the runtime's identify */
	struct pb_auth_ops ops = { .user_by_name = identity_user_by_name, .token_by_id = identity_token_by_id };
	char header[PB_TOKEN_BUF + 8];
	xsnprintf(header, sizeof header, "Bearer %s", token);
	assert_int_equal(auth_identify(db, &ops, NULL, header, &who, err), PB_OK);
	assert_string_equal(who.user_name, "bob");
	db_close(db);
}

static const char contract_v1[] =
	"apiVersion: v3.0.2\nkind: DataContract\nid: orders\nname: Orders\nversion: 1.0.0\nstatus: active\n"
	"servers:\n"
	"  - server: prod\n    type: snowflake\n    account: acme\n    database: SALES\n    schema: PUBLIC\n"
	"  - server: old\n    type: databricks\n    host: adb-1.azuredatabricks.net\n    catalog: c\n    schema: s\n"
	"schema:\n  - name: orders\n    properties:\n      - name: id\n        logicalType: string\n";
static const char contract_v2[] =
	"apiVersion: v3.0.2\nkind: DataContract\nid: orders\nname: Orders v2\nversion: 2.0.0\nstatus: active\n"
	"servers:\n"
	"  - server: prod\n    type: snowflake\n    account: acme\n    database: SALES2\n    schema: PUBLIC\n"
	"  - server: dev\n    type: snowflake\n    account: acme-dev\n    database: SALES\n    schema: PUBLIC\n"
	"schema:\n  - name: orders\n    properties:\n      - name: id\n        logicalType: string\n";
static const char contract_dup_servers[] =
	"apiVersion: v3.0.2\nkind: DataContract\nid: dup\nname: Dup\nversion: 1.0.0\nstatus: active\n"
	"servers:\n"
	"  - server: prod\n    type: snowflake\n    account: a\n    database: D\n    schema: S\n"
	"  - server: prod\n    type: snowflake\n    account: b\n    database: D\n    schema: S\n"
	"schema:\n  - name: t\n    properties:\n      - name: id\n        logicalType: string\n";

static cat_product *import(pb_db *db, const char *org, const char *text, bool *created, int want_rc)
{
	char err[PB_ERR_MAX];
	pb_contract *c = NULL;
	cat_product *p = NULL;
	assert_int_equal(contract_parse(text, strlen(text), "test", &c, err), PB_OK);
	int rc = catalog_import(db, org, c, text, strlen(text), &p, created, err);
	if (rc != want_rc)
		fail_msg("catalog_import: %d (%s), expected %d", rc, err, want_rc);
	contract_free(c);
	return p;
}

static const cat_port *port_named(const cat_product *p, const char *name)
{
	for (size_t i = 0; i < p->nports; i++)
		if (!strcmp(p->ports[i].name, name))
			return &p->ports[i];
	return NULL;
}

/* Through the API only the product's owner or an organization owner updates it: anyone else
 * gets 403 forbidden naming the product, and nothing is written. */
static void catalog_import_by_owner_only(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], org[PB_ID_BUF], ann[PB_ID_BUF], bob[PB_ID_BUF];
	bool created = false;
	pb_db *db = fresh_db("cat_by.db");
	assert_int_equal(identity_org_create(db, "acme", org, err), PB_OK);
	assert_int_equal(identity_user_add(db, "ann", "acme", PB_ROLE_MEMBER, NULL, 0, ann, err), PB_OK);
	assert_int_equal(identity_user_add(db, "bob", "acme", PB_ROLE_MEMBER, NULL, 0, bob, err), PB_OK);
	pb_contract *v1 = NULL, *v2 = NULL;
	cat_product *p = NULL, *q = NULL;
	pb_failure f = { 0 };
	assert_int_equal(contract_parse(contract_v1, strlen(contract_v1), "v1", &v1, err), PB_OK);
	assert_int_equal(contract_parse(contract_v2, strlen(contract_v2), "v2", &v2, err), PB_OK);
	cat_actor by_ann = { .user_id = ann }, by_bob = { .user_id = bob }, by_owner = { .user_id = bob, .org_owner = true };
	assert_int_equal(catalog_import_by(db, org, &by_ann, v1, contract_v1, strlen(contract_v1), &p, &created, &f), 0);
	assert_true(created);
	assert_string_equal(p->owner_user_id, ann);
	assert_int_equal(catalog_import_by(db, org, &by_bob, v2, contract_v2, strlen(contract_v2), &q, &created, &f),
			 PB_EFORBIDDEN);
	assert_null(q);
	assert_string_equal(pb_failure_code(&f), "forbidden");
	assert_non_null(strstr(f.message, "contract id 'orders'"));
	assert_int_equal(catalog_product_get(db, org, p->id, false, &q, err), PB_OK);
	assert_int_equal(q->revision, 1);
	catalog_product_free(q);
	q = NULL;
	pb_failure_clear(&f);
	assert_int_equal(catalog_import_by(db, org, &by_owner, v2, contract_v2, strlen(contract_v2), &q, &created, &f), 0);
	assert_false(created);
	assert_int_equal(q->revision, 2);
	catalog_product_free(p);
	catalog_product_free(q);
	contract_free(v1);
	contract_free(v2);
	db_close(db);
}

/* A product read is one statement (the product, its ports by name, whether it consumes anything):
 * the same on both engines, and nothing of another organization's. */
static void catalog_product_read_in_one_statement(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], org[PB_ID_BUF], org2[PB_ID_BUF], sql[600];
	bool created = false;
	pb_db *db = fresh_db("cat_one.db");
	assert_int_equal(identity_org_create(db, "acme", org, err), PB_OK);
	assert_int_equal(identity_org_create(db, "other", org2, err), PB_OK);
	cat_product *p = import(db, org, contract_v1, &created, PB_OK), *q = NULL;
	static const char consumer[] =
		"apiVersion: v3.0.2\nkind: DataContract\nid: reader\nname: Reader\nversion: 1.0.0\nstatus: active\n"
		"schema:\n  - name: t\n    properties:\n      - name: id\n        logicalType: string\n";
	cat_product *c = import(db, org, consumer, &created, PB_OK);

	assert_int_equal(catalog_product_get(db, org, p->id, true, &q, err), PB_OK);
	assert_string_equal(q->name, "Orders");
	assert_int_equal(q->revision, 1);
	assert_non_null(q->contract_text);
	assert_false(q->consumes);
	assert_int_equal(q->nports, 2);   /* by name: "old" before "prod" */
	assert_string_equal(q->ports[0].name, "old");
	assert_string_equal(q->ports[1].name, "prod");
	for (size_t i = 0; i < q->nports; i++) {
		assert_string_equal(q->ports[i].data_product_id, p->id);
		assert_string_equal(q->ports[i].contract_id, "orders");
		assert_null(q->ports[i].retired_at);
	}
	/* the text is the one the import answered (read back the same way on both engines) */
	sbuf a, b;
	sbuf_init(&a, 1 << 20);
	sbuf_init(&b, 1 << 20);
	assert_int_equal(catalog_product_out(&a, p, false), 0);
	assert_int_equal(catalog_product_out(&b, q, false), 0);
	assert_string_equal(sbuf_str(&a), sbuf_str(&b));
	sbuf_release(&a);
	sbuf_release(&b);
	catalog_product_free(q);
	q = NULL;

	/* no ports: the product alone */
	assert_int_equal(catalog_product_get(db, org, c->id, false, &q, err), PB_OK);
	assert_int_equal(q->nports, 0);
	assert_false(q->consumes);
	catalog_product_free(q);
	q = NULL;

	/* an agreement names it as consumer: told by the same read, then read */
	json_t *list = NULL;
	xsnprintf(sql, sizeof sql,
		  "INSERT INTO agreements (id, org_id, consumer_product_id, output_port_id, state, created_at, updated_at) "
		  "VALUES ('ag1', '%s', '%s', '%s', 'approved', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
		  org, c->id, p->ports[0].id);
	tu_sql(db, sql);
	assert_int_equal(catalog_product_get(db, org, c->id, false, &q, err), PB_OK);
	assert_true(q->consumes);
	assert_int_equal(agreements_consumed_known(db, org, q->id, q->consumes, &list, err), PB_OK);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	assert_int_equal(agreements_consumed_known(db, org, q->id, false, &list, err), PB_OK);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	catalog_product_free(q);
	q = NULL;
	assert_int_equal(catalog_product_get(db, org, p->id, false, &q, err), PB_OK);
	assert_false(q->consumes);   /* it is the provider, not a consumer */
	catalog_product_free(q);
	q = NULL;

	/* another organization: not found, its ports not taken for a product */
	assert_int_equal(catalog_product_get(db, org2, p->id, true, &q, err), PB_ENOTFOUND);
	assert_null(q);
	assert_non_null(strstr(err, "no data product with id"));
	catalog_product_free(p);
	catalog_product_free(c);
	db_close(db);
}

/* The organization's catalog version read with a token (identity_token_by_id). */
static int64_t catalog_version(pb_db *db, const char *token_id)
{
	char err[PB_ERR_MAX], hash[PB_TOKEN_HASH_HEX];
	pb_identity who;
	assert_int_equal(identity_token_by_id(db, token_id, &who, hash, err), PB_OK);
	assert_true(who.catalog_version >= 0);
	return who.catalog_version;
}

/* What GET /api/data-products/{id} and the product's page show moves its organization's catalog
 * version, whatever writes it (sql/0018's and 0019's triggers), and only at the writer's commit; another organization's
 * writes leave it as it was. Both engines (PBIPORT_TEST_DB). */
static void catalog_version_moves_with_every_write(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], org[PB_ID_BUF], org2[PB_ID_BUF], user[PB_ID_BUF], token[PB_TOKEN_BUF], tid[PB_ID_BUF];
	char path[256], sql[600];
	bool created;
	pb_db *db = NULL, *other = NULL;
	assert_int_equal(tu_db_open_migrated(tu_tmpdir, "catver.db", path, sizeof path, &db, err), PB_OK);
	assert_int_equal(db_open(path, false, &other, err), PB_OK);
	assert_int_equal(identity_org_create(db, "acme", org, err), PB_OK);
	assert_int_equal(identity_org_create(db, "other", org2, err), PB_OK);
	assert_int_equal(identity_user_add(db, "ann", "acme", PB_ROLE_OWNER, NULL, 0, user, err), PB_OK);
	assert_int_equal(identity_user_add(db, "otto", "other", PB_ROLE_OWNER, NULL, 0, user, err), PB_OK);
	assert_int_equal(identity_user_add(db, "bob", "acme", PB_ROLE_MEMBER, NULL, 0, user, err), PB_OK);
	assert_int_equal(identity_token_create(db, "ann", token, err), PB_OK);
	assert_int_equal(auth_token_id(token, tid, err), PB_OK);
	int64_t v = catalog_version(db, tid), was;
#define MOVED() (was = v, v = catalog_version(other, tid), v > was)
#define STILL() (was = v, v = catalog_version(other, tid), v == was)

	cat_product *p = import(db, org, contract_v1, &created, PB_OK);
	assert_true(MOVED());   /* a product and its ports */
	cat_product *q = import(db, org, contract_v2, &created, PB_OK);
	assert_true(MOVED());   /* edited: a port renamed, one removed, one added */
	static const char consumer[] =
		"apiVersion: v3.0.2\nkind: DataContract\nid: reader\nname: Reader\nversion: 1.0.0\nstatus: active\n"
		"schema:\n  - name: t\n    properties:\n      - name: id\n        logicalType: string\n";
	cat_product *c = import(db, org, consumer, &created, PB_OK);
	assert_true(MOVED());
	cat_product *elsewhere = import(db, org2, contract_v1, &created, PB_OK);
	assert_true(STILL());   /* another organization's product */

	/* an agreement created inside a transaction: the version moves with its commit, not before */
	assert_int_equal(db_begin(db, err), PB_OK);
	xsnprintf(sql, sizeof sql,
		  "INSERT INTO agreements (id, org_id, consumer_product_id, output_port_id, state, requested_by, "
		  "created_at, updated_at) VALUES ('ag1', '%s', '%s', '%s', 'approved', '%s', '2026-01-01T00:00:00Z', "
		  "'2026-01-01T00:00:00Z')",
		  org, c->id, q->ports[0].id, user);
	tu_sql(db, sql);
	assert_true(STILL());
	assert_int_equal(db_commit(db, err), PB_OK);
	assert_true(MOVED());
	xsnprintf(sql, sizeof sql, "UPDATE users SET name = 'bobby' WHERE id = '%s'", user);
	tu_sql(db, sql);
	assert_true(MOVED());   /* the name of who asked for it */
	assert_int_equal(agreement_terminate(db, org, "ag1", NULL, err), PB_OK);
	assert_true(MOVED());
	tu_sql(db, "DELETE FROM agreements WHERE id = 'ag1'");
	assert_true(MOVED());
	xsnprintf(sql, sizeof sql, "UPDATE output_ports SET server_json = '{}' WHERE data_product_id = '%s'", q->id);
	tu_sql(db, sql);
	assert_true(MOVED());
	/* what the product's page shows besides (sql/0019): its published models, the organization's name */
	xsnprintf(sql, sizeof sql,
		  "INSERT INTO published_models (id, org_id, output_port_id, job_id, workspace_id, semantic_model_id, "
		  "name, published_at) VALUES ('pm1', '%s', '%s', 'job-pm1', 'ws', 'sm', 'Orders', "
		  "'2026-01-01T00:00:00.000Z')",
		  org, q->ports[0].id);
	tu_sql(db, sql);
	assert_true(MOVED());
	tu_sql(db, "UPDATE published_models SET name = 'Orders 2' WHERE id = 'pm1'");
	assert_true(MOVED());
	tu_sql(db, "DELETE FROM published_models WHERE id = 'pm1'");
	assert_true(MOVED());
	xsnprintf(sql, sizeof sql, "UPDATE organizations SET name = 'acme-renamed' WHERE id = '%s'", org);
	tu_sql(db, sql);
	assert_true(MOVED());
	xsnprintf(sql, sizeof sql, "UPDATE organizations SET name = 'acme-renamed' WHERE id = '%s'", org);
	tu_sql(db, sql);
	assert_true(STILL());   /* the same name again */
	xsnprintf(sql, sizeof sql, "UPDATE organizations SET name = 'other-renamed' WHERE id = '%s'", org2);
	tu_sql(db, sql);
	assert_true(STILL());
	assert_int_equal(catalog_product_delete(db, org, p->id, err), PB_OK);
	assert_true(MOVED());
	assert_int_equal(catalog_product_delete(db, org2, elsewhere->id, err), PB_OK);
	assert_true(STILL());
#undef MOVED
#undef STILL
	catalog_product_free(p);
	catalog_product_free(q);
	catalog_product_free(c);
	catalog_product_free(elsewhere);
	db_close(other);
	db_close(db);
}

static void catalog_import_update_isolation(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], org1[PB_ID_BUF], org2[PB_ID_BUF];
	bool created;
	pb_db *db = fresh_db("cat.db");
	assert_int_equal(identity_org_create(db, "one", org1, err), PB_OK);
	assert_int_equal(identity_org_create(db, "two", org2, err), PB_OK);

	cat_product *p1 = import(db, org1, contract_v1, &created, PB_OK);
	assert_true(created);
	assert_string_equal(p1->name, "Orders");
	assert_string_equal(p1->version, "1.0.0");
	assert_string_equal(p1->type, "source");
	assert_int_equal(p1->revision, 1);
	assert_int_equal(p1->nports, 2);
	const cat_port *prod = port_named(p1, "prod");
	assert_non_null(prod);
	assert_string_equal(prod->type, "snowflake");
	assert_non_null(strstr(prod->server_json, "\"database\":\"SALES\""));
	char prod_id[PB_ID_BUF], old_id[PB_ID_BUF];
	memcpy(prod_id, prod->id, sizeof prod_id);
	memcpy(old_id, port_named(p1, "old")->id, sizeof old_id);

	/* same contract id, same org: an update keeping the port id by server name */
	cat_product *p2 = import(db, org1, contract_v2, &created, PB_OK);
	assert_false(created);
	assert_string_equal(p2->id, p1->id);
	assert_string_equal(p2->version, "2.0.0");
	assert_string_equal(p2->name, "Orders v2");
	assert_int_equal(p2->revision, 2);
	assert_int_equal(p2->nports, 2);
	assert_string_equal(port_named(p2, "prod")->id, prod_id);
	assert_non_null(strstr(port_named(p2, "prod")->server_json, "SALES2"));
	assert_non_null(port_named(p2, "dev"));
	assert_null(port_named(p2, "old"));
	cat_port *gone;
	assert_int_equal(catalog_port_get(db, org1, old_id, false, &gone, err), PB_ENOTFOUND);

	/* the same contract in another org is another product */
	cat_product *p3 = import(db, org2, contract_v1, &created, PB_OK);
	assert_true(created);
	assert_string_not_equal(p3->id, p1->id);

	/* another org's objects are not found */
	cat_product *got;
	cat_port *port;
	assert_int_equal(catalog_product_get(db, org2, p1->id, true, &got, err), PB_ENOTFOUND);
	assert_int_equal(catalog_port_get(db, org2, prod_id, false, &port, err), PB_ENOTFOUND);
	assert_int_equal(catalog_product_get(db, org1, p1->id, true, &got, err), PB_OK);
	assert_string_equal(got->contract_text, contract_v2);
	json_t *j = catalog_product_json(got, true);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "contract")), contract_v2);
	assert_int_equal(json_array_size(json_object_get(j, "output_ports")), 2);
	json_decref(j);
	catalog_product_free(got);

	assert_int_equal(catalog_port_get(db, org1, prod_id, true, &port, err), PB_OK);
	assert_string_equal(port->contract_id, "orders");
	assert_string_equal(port->data_product_id, p1->id);
	assert_string_equal(port->contract_text, contract_v2);
	j = catalog_port_json(port);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "server"), "database")), "SALES2");
	json_decref(j);
	catalog_port_free(port);

	cat_product *list;
	size_t n;
	assert_int_equal(catalog_product_list(db, org1, &list, &n, err), PB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].nports, 2);
	catalog_products_free(list, n);

	/* invalid contracts write nothing */
	cat_product *bad = import(db, org1, contract_dup_servers, &created, PB_EINVAL);
	assert_null(bad);
	assert_int_equal(catalog_product_list(db, org1, &list, &n, err), PB_OK);
	assert_int_equal(n, 1);
	catalog_products_free(list, n);

	/* delete: only within the org */
	assert_int_equal(catalog_product_delete(db, org2, p1->id, err), PB_ENOTFOUND);
	assert_int_equal(catalog_product_delete(db, org1, p1->id, err), PB_OK);
	assert_int_equal(catalog_port_get(db, org1, prod_id, false, &port, err), PB_ENOTFOUND);
	assert_int_equal(catalog_product_list(db, org1, &list, &n, err), PB_OK);
	assert_int_equal(n, 0);
	catalog_products_free(list, n);

	catalog_product_free(p1);
	catalog_product_free(p2);
	catalog_product_free(p3);
	db_close(db);
}

static void metrics_counters_and_histogram(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	sbuf out;
	pb_db *db = fresh_db("metrics.db");
	assert_int_equal(metrics_count(db, "/a/{id}", "GET", 200, 0.0004, err), PB_OK);
	assert_int_equal(metrics_count(db, "/a/{id}", "GET", 200, 0.003, err), PB_OK);
	assert_int_equal(metrics_count(db, "/a/{id}", "DELETE", 403, 0.0001, err), PB_OK);
	assert_int_equal(metrics_count(db, "/b\"x", "POST", 201, 30.0, err), PB_OK);
	assert_int_equal(metrics_flush(db, err), PB_OK);
	sbuf_init(&out, PB_METRICS_MAX_BYTES);
	assert_int_equal(metrics_render(db, &out, err), PB_OK);
	const char *t = sbuf_str(&out);
	assert_non_null(strstr(t, "pbiport_requests_total{route=\"/a/{id}\",method=\"GET\",status=\"200\"} 2\n"));
	assert_non_null(strstr(t, "pbiport_requests_total{route=\"/a/{id}\",method=\"DELETE\",status=\"403\"} 1\n"));
	assert_non_null(strstr(t, "pbiport_requests_total{route=\"/b\\\"x\",method=\"POST\",status=\"201\"} 1\n"));
	/* one histogram per route, over all its methods and statuses, cumulative */
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_bucket{route=\"/a/{id}\",le=\"0.001\"} 2\n"));
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_bucket{route=\"/a/{id}\",le=\"0.005\"} 3\n"));
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_bucket{route=\"/a/{id}\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_count{route=\"/a/{id}\"} 3\n"));
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_bucket{route=\"/b\\\"x\",le=\"10\"} 0\n"));
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_bucket{route=\"/b\\\"x\",le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(t, "pbiport_request_duration_seconds_sum{route=\"/b\\\"x\"} 30.000000\n"));
	/* all counters come before the histogram family */
	assert_true(strstr(t, "# TYPE pbiport_request_duration_seconds") > strstr(t, "status=\"201\"}"));
	sbuf_release(&out);
	db_close(db);
}

static int out_write(void *ctx, const char *buf, size_t n)
{
	return sbuf_add(ctx, buf, n);
}

/* The whole pipeline in-process: pb_handle + the real route table. */
static int handle(pb_db *db, char **env, sbuf *out)
{
	pb_config cfg = { .max_body = 1024 };
	struct req r;
	struct req_io io = { NULL, out_write, out };
	sbuf_reset(out);
	req_init(&r, &cfg, db);
	pb_handle(&r, &pb_app, env, &io);
	int status = r.status;
	req_release(&r);
	return status;
}

static void pipeline_health(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	sbuf out;
	sbuf_init(&out, 1 << 20);
	char *health[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/healthz", NULL };
	pb_db *db = fresh_db("pipe.db");
	assert_int_equal(handle(db, health, &out), 200);
	assert_non_null(strstr(sbuf_str(&out), "{\"status\":\"ok\"}"));
	char *anon[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/data-products", NULL };
	assert_int_equal(handle(db, anon, &out), 401);
	db_close(db);

	/* a database the check cannot read: 503, and the cause stays in the log */
	assert_int_equal(db_open(tmp_path("empty.db"), true, &db, err), PB_OK);
	assert_int_equal(handle(db, health, &out), 503);
	assert_non_null(strstr(sbuf_str(&out), "\"code\":\"unavailable\""));
	assert_null(strstr(sbuf_str(&out), "no such table"));
	db_close(db);
	sbuf_release(&out);
}

/* ---- the catalog's API text: the shape the JSON trees had, byte for byte ---- */

/* The port brief and product as the API showed them when they were built as jansson trees
 * (json_pack formats of the earlier catalog.c, kept here as the definition of the shape). */
static json_t *old_port_brief(const cat_port *p)
{
	json_t *server = json_loads(p->server_json ? p->server_json : "{}", 0, NULL);
	return json_pack("{s:s,s:s,s:s,s:o,s:s,s:s?}", "id", p->id, "name", p->name ? p->name : "", "type",
			 p->type ? p->type : "", "server", server ? server : json_object(), "status",
			 p->retired_at ? "retired" : "active", "retired_at", p->retired_at);
}

static json_t *old_product(const cat_product *p, bool with_contract)
{
	json_t *ports = json_array();
	for (size_t i = 0; i < p->nports; i++)
		json_array_append_new(ports, old_port_brief(&p->ports[i]));
	json_t *o = json_pack("{s:s,s:s,s:s,s:s?,s:s,s:i,s:s?,s:s,s:s,s:o}", "id", p->id, "name", p->name ? p->name : "",
			      "type", p->type ? p->type : "", "version", p->version, "contract_id",
			      p->contract_id ? p->contract_id : "", "revision", p->revision, "owner_user_id",
			      p->owner_user_id[0] ? p->owner_user_id : NULL, "created_at", p->created_at ? p->created_at : "",
			      "updated_at", p->updated_at ? p->updated_at : "", "output_ports", ports);
	if (with_contract && p->contract_text)
		json_object_set_new(o, "contract", json_string(p->contract_text));
	return o;
}

/* want's json_dumps text against a writer's text (and the _json form reads back the same). */
static void same_text(json_t *want, int bad, sbuf *got)
{
	assert_non_null(want);
	assert_int_equal(bad, 0);
	char *text = json_dumps(want, JSON_COMPACT);
	assert_string_equal(sbuf_str(got), text);
	free(text);
	json_decref(want);
	sbuf_reset(got);
}

static void catalog_text_shape(void **state)
{
	(void)state;
	static const char *const servers[] = {
		"{\"server\":\"prod\",\"type\":\"snowflake\",\"account\":\"acme\",\"customProperties\":{\"k\":\"v \\\"q\\\"\"}}",
		"{ \"server\" : \"spaced\" }",                 /* not as stored: read and written again */
		"{\"a\":\"\\/slash\",\"b\":\"\\u00e9\"}",       /* escapes json_out writes otherwise */
		"{\"dup\":\"1\",\"dup\":\"2\"}", "{\"n\":1,\"t\":true,\"z\":null}", "not json", "", NULL,
	};
	cat_port ports[2];
	cat_product p;
	sbuf got;
	sbuf_init(&got, 1 << 20);
	memset(&p, 0, sizeof p);
	memset(ports, 0, sizeof ports);
	xsnprintf(p.id, sizeof p.id, "%s", "0123456789abcdef0123456789abcdef");
	p.name = "Orders \"EU\"\n\xc3\xa9t\xc3\xa9";
	p.type = "source";
	p.contract_id = "urn:x";
	p.revision = 7;
	p.created_at = "2026-01-01T00:00:00Z";
	p.updated_at = "2026-01-02T00:00:00Z";
	p.contract_text = "id: x\nname: \"q\\t\"\n\x01\x1f end";
	p.ports = ports;
	p.nports = 2;
	for (size_t i = 0; i < 2; i++) {
		xsnprintf(ports[i].id, sizeof ports[i].id, "port%zu", i);
		xsnprintf(ports[i].data_product_id, sizeof ports[i].data_product_id, "%s", p.id);
		ports[i].contract_id = "urn:x";
	}
	ports[0].name = "prod";
	ports[0].type = "snowflake";
	ports[1].retired_at = "2026-01-03T00:00:00Z";   /* no name or type: "" */
	for (size_t s1 = 0; s1 < sizeof servers / sizeof servers[0]; s1++) {
		ports[0].server_json = (char *)servers[s1];
		ports[1].server_json = (char *)servers[(s1 + 1) % (sizeof servers / sizeof servers[0])];
		for (int variant = 0; variant < 2; variant++) {
			/* with and without the optional members */
			p.version = variant ? NULL : "1.2.0";
			xsnprintf(p.owner_user_id, sizeof p.owner_user_id, "%s", variant ? "" : "owner-id");
			same_text(old_product(&p, true), catalog_product_out(&got, &p, true), &got);
			same_text(old_product(&p, false), catalog_product_out(&got, &p, false), &got);
			json_t *port = old_port_brief(&ports[variant]);
			json_object_set_new(port, "data_product_id", json_string(ports[variant].data_product_id));
			json_object_set_new(port, "contract_id", json_string(ports[variant].contract_id));
			same_text(port, catalog_port_out(&got, &ports[variant]), &got);
			/* the json_t forms read back the same text */
			json_t *j = catalog_product_json(&p, true), *want = old_product(&p, true);
			bool equal = json_equal(j, want);
			json_decref(j);
			json_decref(want);
			assert_true(equal);
		}
	}
	/* text that is not UTF-8 fails as json_pack did (a 500, nothing half-written is sent) */
	p.name = "bad \xff";
	assert_int_equal(catalog_product_out(&got, &p, false), -1);
	assert_null(catalog_product_json(&p, false));
	sbuf_release(&got);
}

/* The statement API every store uses: numbered parameters (one value in several places, as
 * SQLite numbers them) reach the driver as plain ?, a failed bind is answered by the step, a
 * constraint is PB_ECONFLICT, NULL and lengths read back as bound. */
static void statements_bind_and_read(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	db_stmt *st = NULL;
	pb_db *db = NULL;
	assert_int_equal(db_open(tmp_path("stmt.db"), true, &db, err), PB_OK);
	assert_string_equal(db_engine(db), "sqlite");
	assert_int_equal(db_dialect(db), DB_DIALECT_SQLITE);
	assert_int_equal(db_exec_script(db, "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, d REAL, b TEXT)", err), PB_OK);

	/* ?2 twice, then a bare ? numbered one more than the highest so far (3) */
	assert_int_equal(db_prepare(db, "INSERT INTO t (k, n, d, b) VALUES (?1, ?2, ?2 + 0.5, ?)", &st, err), PB_OK);
	assert_int_equal(db_param_count(st), 3);
	assert_int_equal(db_bind_text(st, 1, "a", err), PB_OK);
	assert_int_equal(db_bind_int64(st, 2, 41, err), PB_OK);
	assert_int_equal(db_bind_textn(st, 3, "x\0y", 3, err), PB_OK);
	assert_int_equal(db_exec(db, st, err), PB_OK);
	assert_int_equal(db_changes(db), 1);
	db_done(st);

	/* the same key again: a constraint, PB_ECONFLICT (it was PB_EINVAL before issue 17) */
	assert_int_equal(db_prepare(db, "INSERT INTO t (k, n, d, b) VALUES (?1, ?2, ?2 + 0.5, ?)", &st, err), PB_OK);
	db_bind_text(st, 1, "a", NULL);
	db_bind_null(st, 2, NULL);
	db_bind_null(st, 3, NULL);
	assert_int_equal(db_exec(db, st, err), PB_ECONFLICT);
	assert_non_null(strstr(err, "UNIQUE"));
	db_done(st);

	/* a bind past the last parameter fails, and the step says so without running */
	assert_int_equal(db_prepare(db, "INSERT INTO t (k, n) VALUES (?1, ?1)", &st, err), PB_OK);
	assert_int_equal(db_bind_text(st, 1, "b", err), PB_OK);
	assert_int_not_equal(db_bind_int64(st, 2, 7, NULL), PB_OK);
	assert_int_equal(db_exec(db, st, err), PB_EINTERNAL);
	assert_non_null(strstr(err, "bind 2"));
	db_done(st);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM t", NULL), 1);

	/* read back: integers, the double, the text with its NUL, NULL */
	assert_int_equal(db_prepare(db, "SELECT k, n, d, b, NULL FROM t WHERE k = ?", &st, err), PB_OK);
	db_bind_text(st, 1, "a", NULL);
	assert_int_equal(db_row(db, st, err), 1);
	size_t len = 0;
	assert_string_equal(db_col_text(st, 0), "a");
	assert_int_equal(db_col_int(st, 1), 41);
	assert_int_equal(db_col_int64(st, 1), 41);
	assert_true(db_col_double(st, 2) > 41.4 && db_col_double(st, 2) < 41.6);
	assert_non_null(db_col_textn(st, 3, &len));
	assert_int_equal(len, 3);
	assert_true(db_col_is_null(st, 4) && !db_col_is_null(st, 0));
	assert_null(db_col_textn(st, 4, &len));
	assert_string_equal(db_col_text(st, 4), "");
	assert_int_equal(db_row(db, st, err), 0);
	db_done(st);
	db_close(db);
}

/* A row struct read through a db_reader: a fixed id, an owned name, an integer. */
typedef struct thing {
	char id[8];
	char *name;
	int n;
} thing;

static const db_fixed_field thing_fixed[] = { DB_FIXED_FIELD(thing, id, 0) };
static const db_text_field thing_texts[] = { DB_TEXT_FIELD(thing, name, 1) };

static int thing_more(pb_db *db, db_stmt *st, void *row, void *ctx, char *err)
{
	thing *t = row;
	t->n = db_col_int(st, 2);
	return t->n < 0 ? pb_err(err, PB_EIO, "thing %s: a negative n", t->id) : PB_OK;
}

static const db_reader thing_reader = DB_READER(thing, "thing", thing_fixed, thing_texts, thing_more);

/* db_get_one, db_get_rows and db_get_ptrs read rows through a reader: not found, a value longer
 * than its member, a failing `more` (nothing leaks: ASan), the most rows asked for; db_lock_name
 * only inside a write transaction. */
/* A read's first statement may stand alone (the caller's identity): it reads by itself, the
 * transaction's snapshot begins with the statement after it and is shared by the rest; a read of
 * that one statement leaves no transaction behind. The same on both engines. */
static void read_first_alone_reads_by_itself(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], path[256];
	pb_db *db = NULL, *other = NULL;
	assert_int_equal(tu_db_open_migrated(tu_tmpdir, "alone.db", path, sizeof path, &db, err), PB_OK);
	assert_int_equal(db_open(path, false, &other, err), PB_OK);
	tu_sql(db, "CREATE TABLE alone (k TEXT); INSERT INTO alone VALUES ('a')");

	assert_int_equal(db_read_begin(db, err), PB_OK);
	db_read_first_alone(db);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM alone", NULL), 1);
	tu_sql(other, "INSERT INTO alone VALUES ('b')");
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM alone WHERE k <> ?", "none"), 2);   /* a snapshot after it */
	tu_sql(other, "INSERT INTO alone VALUES ('c')");
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM alone WHERE k <> ?", "nothing"), 2);   /* ... shared */
	db_read_end(db);

	/* one statement, then the read ends: the next statement sees the newest rows */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	db_read_first_alone(db);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM alone", NULL), 3);
	db_read_end_later(db);
	db_idle(db);
	tu_sql(other, "INSERT INTO alone VALUES ('d')");
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM alone", NULL), 4);
	/* a read that ran nothing ends as cleanly; a write transaction's statements stay in it */
	assert_int_equal(db_read_begin(db, err), PB_OK);
	db_read_end(db);
	assert_int_equal(db_begin(db, err), PB_OK);
	db_read_first_alone(db);
	tu_sql(db, "INSERT INTO alone VALUES ('e')");
	db_rollback(db);
	assert_int_equal(tu_count(other, "SELECT COUNT(*) FROM alone", NULL), 4);
	db_close(other);
	db_close(db);
}

/* db_mark: the same while nothing commits (reads, a write not committed or rolled back); moved by
 * every commit, of this connection or another; not valid inside a transaction, of a database in
 * memory, or on PostgreSQL; never the same for two connections. */
static void marks_move_with_every_commit(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], path[256];
	pb_db *db = NULL, *other = NULL, *memory = NULL;
	db_mark a, b;
	assert_int_equal(tu_db_open_migrated(tu_tmpdir, "mark.db", path, sizeof path, &db, err), PB_OK);
	assert_int_equal(db_open(path, false, &other, err), PB_OK);
	tu_sql(db, "CREATE TABLE marked (k TEXT)");
	db_mark_take(db, &a);
	if (db_dialect(db) == DB_DIALECT_POSTGRESQL) {
		assert_false(a.valid);
		assert_false(db_mark_same(&a, &a));
		goto out;
	}
	assert_true(a.valid);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM marked", NULL), 0);
	assert_int_equal(tu_count(other, "SELECT COUNT(*) FROM marked", NULL), 0);
	db_mark_take(db, &b);
	assert_true(db_mark_same(&a, &b));

	tu_sql(other, "INSERT INTO marked VALUES ('a')");
	db_mark_take(db, &b);
	assert_false(db_mark_same(&a, &b));
	db_mark_take(db, &a);
	tu_sql(db, "INSERT INTO marked VALUES ('b')");
	db_mark_take(db, &b);
	assert_false(db_mark_same(&a, &b));

	db_mark_take(db, &a);
	assert_int_equal(db_begin(other, err), PB_OK);
	tu_sql(other, "INSERT INTO marked VALUES ('c')");
	db_mark_take(db, &b);
	assert_true(db_mark_same(&a, &b));   /* not committed yet */
	db_rollback(other);
	db_mark_take(db, &b);
	assert_true(db_mark_same(&a, &b));

	assert_int_equal(db_begin(db, err), PB_OK);   /* a write transaction */
	db_mark_take(db, &b);
	assert_false(b.valid);
	db_rollback(db);
	assert_int_equal(db_read_begin(db, err), PB_OK);   /* a read whose snapshot began */
	db_mark_take(db, &b);
	assert_true(db_mark_same(&a, &b));   /* not yet: its BEGIN is owed to its first statement */
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM marked", NULL), 2);
	db_mark_take(db, &b);
	assert_false(b.valid);
	db_read_end(db);
	db_mark_take(other, &b);
	assert_true(b.valid);
	assert_false(db_mark_same(&a, &b));   /* the same state, another connection */
	assert_int_equal(db_open(":memory:", true, &memory, err), PB_OK);
	db_mark_take(memory, &b);
	assert_false(b.valid);
	db_close(memory);
out:
	db_close(other);
	db_close(db);
}

/* db_read_first_skipped: the statement db_read_first_alone was for did not run, so the snapshot
 * the read shares begins with the next one. */
static void read_first_skipped_begins_the_snapshot(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], path[256];
	pb_db *db = NULL, *other = NULL;
	assert_int_equal(tu_db_open_migrated(tu_tmpdir, "skipped.db", path, sizeof path, &db, err), PB_OK);
	assert_int_equal(db_open(path, false, &other, err), PB_OK);
	tu_sql(db, "CREATE TABLE skipped (k TEXT); INSERT INTO skipped VALUES ('a')");
	assert_int_equal(db_read_begin(db, err), PB_OK);
	db_read_first_alone(db);
	db_read_first_skipped(db);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM skipped", NULL), 1);
	tu_sql(other, "INSERT INTO skipped VALUES ('b')");
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM skipped WHERE k <> ?", "none"), 1);   /* shared */
	db_read_end(db);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM skipped", NULL), 2);
	db_close(other);
	db_close(db);
}

/* The identity a lookup read is given again while the database's mark stays; whatever commits
 * (a role, a name, the catalog version, a revoked token; by another connection or this one) is
 * what the next lookup answers. Inside a write transaction the lookup reads (and keeps nothing). */
static void identity_kept_until_a_commit(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], path[256], org[PB_ID_BUF], user[PB_ID_BUF], token[PB_TOKEN_BUF], id[PB_ID_BUF];
	char hash[PB_TOKEN_HASH_HEX], want[PB_TOKEN_HASH_HEX];
	pb_db *db = NULL, *other = NULL;
	pb_identity who, again;
	assert_int_equal(tu_db_open_migrated(tu_tmpdir, "kept_identity.db", path, sizeof path, &db, err), PB_OK);
	assert_int_equal(db_open(path, false, &other, err), PB_OK);
	assert_int_equal(identity_org_create(db, "acme", org, err), PB_OK);
	assert_int_equal(identity_user_add(db, "dora", "acme", PB_ROLE_MEMBER, NULL, 0, user, err), PB_OK);
	assert_int_equal(identity_token_create(db, "dora", token, err), PB_OK);
	assert_int_equal(auth_token_id(token, id, err), PB_OK);
	auth_token_hash(token, want);

	assert_int_equal(identity_token_by_id(db, id, &who, hash, err), PB_OK);
	for (int i = 0; i < 3; i++) {
		memset(&again, 0x5a, sizeof again);
		memset(hash, 'x', sizeof hash);
		assert_int_equal(identity_token_by_id(db, id, &again, hash, err), PB_OK);
		assert_memory_equal(&who, &again, sizeof who);
		assert_string_equal(hash, want);
	}
	assert_int_equal(who.role, PB_ROLE_MEMBER);
	assert_int_equal(identity_user_by_name(db, "dora", &again, err), PB_OK);
	assert_int_equal(identity_user_by_name(db, "dora", &again, err), PB_OK);
	assert_string_equal(again.user_id, user);

	tu_sql(other, "UPDATE users SET role = 'owner' WHERE name = 'dora'");
	assert_int_equal(identity_token_by_id(db, id, &again, hash, err), PB_OK);
	assert_int_equal(again.role, PB_ROLE_OWNER);
	assert_int_equal(identity_user_by_name(db, "dora", &again, err), PB_OK);
	assert_int_equal(again.role, PB_ROLE_OWNER);
	int64_t version = again.catalog_version;
	tu_sql(other, "UPDATE organizations SET catalog_version = catalog_version + 5");
	assert_int_equal(identity_token_by_id(db, id, &again, hash, err), PB_OK);
	assert_int_equal(again.catalog_version, version + 5);
	tu_sql(other, "UPDATE users SET name = 'dora2' WHERE name = 'dora'");
	assert_int_equal(identity_user_by_name(db, "dora", &again, err), PB_ENOTFOUND);
	assert_int_equal(identity_user_by_name(db, "dora2", &again, err), PB_OK);
	assert_int_equal(identity_token_by_id(db, id, &again, hash, err), PB_OK);
	assert_string_equal(again.user_name, "dora2");

	assert_int_equal(db_begin(db, err), PB_OK);
	tu_sql(db, "UPDATE users SET role = 'member' WHERE name = 'dora2'");
	assert_int_equal(identity_token_by_id(db, id, &again, hash, err), PB_OK);
	assert_int_equal(again.role, PB_ROLE_MEMBER);   /* its own write, not committed yet */
	db_rollback(db);
	assert_int_equal(identity_token_by_id(db, id, &again, hash, err), PB_OK);
	assert_int_equal(again.role, PB_ROLE_OWNER);
	tu_sql(db, "UPDATE api_tokens SET revoked_at = '2026-01-01T00:00:00Z'");
	assert_int_equal(identity_token_by_id(db, id, &again, hash, err), PB_ENOTFOUND);
	db_close(other);
	db_close(db);
}

/* pb_now: "YYYY-MM-DDTHH:MM:SS.mmmZ" in UTC, the second's text kept between calls */
static void now_is_utc_with_milliseconds(void **state)
{
	(void)state;
	char a[PB_TIME_BUF], b[PB_TIME_BUF], want[PB_TIME_BUF], first[PB_TIME_BUF];
	pb_now(first);
	bool crossed = false;
	for (int i = 0; !crossed || i < 1000; i++) {   /* across a second's change, at least once */
		assert_true(i < 100000);
		struct timespec t0, t1;   /* time() may lag CLOCK_REALTIME by a tick */
		clock_gettime(CLOCK_REALTIME, &t0);
		pb_now(a);
		clock_gettime(CLOCK_REALTIME, &t1);
		time_t before = t0.tv_sec, after = t1.tv_sec;
		assert_int_equal(strlen(a), 24);
		assert_int_equal(a[10], 'T');
		assert_int_equal(a[19], '.');
		assert_int_equal(a[23], 'Z');
		for (int k = 20; k < 23; k++)
			assert_true(a[k] >= '0' && a[k] <= '9');
		struct tm tm;
		bool same = false;
		for (time_t t = before; t <= after; t++) {
			gmtime_r(&t, &tm);
			strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
			same = same || !strncmp(a, want, 19);
		}
		assert_true(same);
		pb_now(b);
		assert_true(strcmp(a, b) <= 0);   /* never backwards within a run */
		crossed = crossed || strncmp(first, b, 19);
		struct timespec ts = { 0, 1000000 };
		if (i % 100 == 0)
			nanosleep(&ts, NULL);
	}
}

static void readers_and_named_locks(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_db *db = NULL;
	void *one = NULL, *rows = NULL, **ptrs = NULL;
	size_t n = 0;
	assert_int_equal(tu_db_open_migrated(tu_tmpdir, "reader.db", NULL, 0, &db, err), PB_OK);
	tu_sql(db, "CREATE TABLE things (id TEXT PRIMARY KEY, name TEXT, n INTEGER NOT NULL); "
		   "INSERT INTO things VALUES ('a', 'Ann', 1), ('b', NULL, 2), ('c', 'Cy', 3)");
	const char *a = "a", *none = "zz";
	assert_int_equal(db_get_one(db, "SELECT id, name, n FROM things WHERE id = ?", &a, 1, &thing_reader, NULL, a, &one,
				    err), PB_OK);
	assert_string_equal(((thing *)one)->id, "a");
	assert_string_equal(((thing *)one)->name, "Ann");
	assert_int_equal(((thing *)one)->n, 1);
	db_reader_free(&thing_reader, one);
	assert_int_equal(db_get_one(db, "SELECT id, name, n FROM things WHERE id = ?", &none, 1, &thing_reader, NULL, none,
				    &one, err), PB_ENOTFOUND);
	assert_null(one);
	assert_string_equal(err, "no thing zz");

	/* the most asked for, in order; a NULL text is NULL */
	assert_int_equal(db_get_rows(db, "SELECT id, name, n FROM things ORDER BY id LIMIT ?", NULL, 0, 2, &thing_reader,
				     NULL, &rows, &n, err), PB_OK);
	assert_int_equal(n, 2);
	assert_string_equal(((thing *)rows)[1].id, "b");
	assert_null(((thing *)rows)[1].name);
	db_reader_rows_free(&thing_reader, rows, n);
	assert_int_equal(db_get_ptrs(db, "SELECT id, name, n FROM things ORDER BY id DESC LIMIT ?", NULL, 0, 10,
				     &thing_reader, NULL, &ptrs, &n, err), PB_OK);
	assert_int_equal(n, 3);
	assert_string_equal(((thing *)ptrs[0])->name, "Cy");
	db_reader_ptrs_free(&thing_reader, ptrs, n);

	/* a bad row fails the whole list, and what was read before it is freed */
	tu_sql(db, "INSERT INTO things VALUES ('d-too-long', 'Dee', 4), ('e', 'Eve', -5)");
	assert_int_equal(db_get_rows(db, "SELECT id, name, n FROM things ORDER BY id LIMIT ?", NULL, 0, 10, &thing_reader,
				     NULL, &rows, &n, err), PB_EIO);
	assert_string_equal(err, "malformed thing row");
	assert_null(rows);
	assert_int_equal(n, 0);
	tu_sql(db, "DELETE FROM things WHERE id = 'd-too-long'");
	assert_int_equal(db_get_ptrs(db, "SELECT id, name, n FROM things ORDER BY id LIMIT ?", NULL, 0, 10, &thing_reader,
				     NULL, &ptrs, &n, err), PB_EIO);
	assert_string_equal(err, "thing e: a negative n");
	assert_null(ptrs);

	/* a named lock belongs to a write transaction */
	assert_int_equal(db_lock_name(db, "things", err), PB_EINTERNAL);
	assert_int_equal(db_begin(db, err), PB_OK);
	assert_int_equal(db_lock_name(db, "things", err), PB_OK);
	assert_int_equal(db_lock_name(db, "things", err), PB_OK);   /* taken again by its holder */
	assert_int_equal(db_commit(db, err), PB_OK);
	db_close(db);
}

/* The engine is picked by the target: a PostgreSQL URL or key=value string needs the driver this
 * build may not have, and the refusal never repeats the connection string (it may hold a password). */
static void open_picks_the_engine(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_db *db = NULL;
	assert_true(db_target_is_pg("postgresql://u:secret@h/db"));
	assert_true(db_target_is_pg("postgres:///pbiport?host=/tmp"));
	assert_true(db_target_is_pg("host=/run/pg dbname=pbiport"));
	assert_true(db_target_is_pg("dbname = pbiport"));
	assert_false(db_target_is_pg("/var/lib/pbiport/db.sqlite"));
	assert_false(db_target_is_pg("./a=b.db"));
	assert_false(db_target_is_pg("data/pbiport.db"));
	if (db_pg_driver())
		skip();   /* a build with libpq: runtime/db_pg.c's tests cover it */
	assert_int_equal(db_open("postgresql://u:secret@h/db", true, &db, err), PB_EINVAL);
	assert_null(db);
	assert_non_null(strstr(err, "this build has no PostgreSQL driver"));
	assert_null(strstr(err, "secret"));
}

/* NNNN_name.<engine>.sql replaces NNNN_name.sql for that engine, another engine's file is not
 * read, and schema_migrations records the common name whichever ran. */
static void migrations_per_engine(void **state)
{
	(void)state;
	char dir[512], err[PB_ERR_MAX];
	pb_db *db = NULL;
	int applied = 0;
	xsnprintf(dir, sizeof dir, "%s", tmp_path("engines"));
	assert_int_equal(mkdir(dir, 0700), 0);
	put(dir, "0001_base.sql", "CREATE TABLE base (id TEXT);");
	put(dir, "0002_pick.sql", "CREATE TABLE common_ran (id TEXT);");
	put(dir, "0002_pick.sqlite.sql", "CREATE TABLE engine_ran (id TEXT);");
	put(dir, "0003_other.postgresql.sql", "this is not SQLite;");
	put(dir, "0004_last.sql", "CREATE TABLE last (id TEXT);");
	assert_int_equal(db_open(tmp_path("engines.db"), true, &db, err), PB_OK);
	if (db_migrate(db, dir, &applied, err))
		fail_msg("%s", err);
	assert_int_equal(applied, 3);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'engine_ran'", NULL), 1);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'common_ran'", NULL), 0);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM schema_migrations WHERE version = 2 AND name = ?", "0002_pick.sql"), 1);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM schema_migrations WHERE version = 3", NULL), 0);
	/* the PostgreSQL-only step is no step of this engine: the schema is complete */
	assert_int_equal(db_check_schema(db, dir, err), PB_OK);
	assert_int_equal(db_migrate(db, dir, &applied, err), PB_OK);
	assert_int_equal(applied, 0);
	/* two files of one engine with one number are refused as two common ones are */
	put(dir, "0002_again.sqlite.sql", "SELECT 1;");
	assert_int_equal(db_migrate(db, dir, NULL, err), PB_EINVAL);
	assert_non_null(strstr(err, "have the same number"));
	db_close(db);
}

/* A driver that answers "busy" (DB_ERETRY) to the next busy_steps steps, else SQLite's. */
static struct db_driver busy_driver;
static int busy_steps;

static int busy_step(db_cursor *cur, char *err)
{
	if (busy_steps > 0) {
		busy_steps--;
		return pb_err(err, DB_ERETRY, "database: step: database is locked");
	}
	return db_sqlite_driver()->step(cur, err);
}

static int runs;

static int insert_in_transaction(pb_db *db, void *ctx, char *err)
{
	const char *v[] = { ctx };
	runs++;
	return db_exec_texts(db, "INSERT INTO nest (name) VALUES (?)", v, 1, err);
}

/* A lone statement that meets a concurrent writer is run again (a bounded number of times, then
 * PB_EUNAVAIL: 503); inside a transaction it cannot be, and db_transaction runs the whole
 * transaction again instead. */
static void busy_is_retried(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_db *db = NULL;
	busy_driver = *db_sqlite_driver();
	busy_driver.step = busy_step;
	assert_int_equal(db_open_driver(&busy_driver, tmp_path("busy.db"), true, &db, err), PB_OK);
	assert_int_equal(db_exec_script(db, "CREATE TABLE nest (name TEXT)", err), PB_OK);

	busy_steps = 2;
	insert_nest(db, "lone");
	assert_int_equal(busy_steps, 0);
	assert_true(count_rows(db, "lone"));

	const char *v[] = { "never" };
	busy_steps = PB_DB_RETRY_MAX + 1;
	assert_int_equal(db_exec_texts(db, "INSERT INTO nest (name) VALUES (?)", v, 1, err), PB_EUNAVAIL);
	assert_non_null(strstr(err, "busy"));
	busy_steps = 0;
	assert_false(count_rows(db, "never"));

	/* the first run's insert meets "busy" inside the transaction: rolled back, run again */
	busy_steps = 1;
	runs = 0;
	assert_int_equal(db_transaction(db, insert_in_transaction, "twice", err), PB_OK);
	assert_int_equal(runs, 2);
	assert_false(db_in_transaction(db));
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM nest WHERE name = 'twice'", NULL), 1);

	/* always busy: given up after PB_DB_RETRY_MAX reruns, nothing written */
	busy_steps = 1000;
	runs = 0;
	assert_int_equal(db_transaction(db, insert_in_transaction, "never", err), PB_EUNAVAIL);
	assert_int_equal(runs, PB_DB_RETRY_MAX + 1);
	busy_steps = 0;
	assert_false(db_in_transaction(db));
	assert_false(count_rows(db, "never"));

	/* a failure of the work itself is not rerun */
	runs = 0;
	assert_int_equal(db_transaction(db, insert_in_transaction, NULL, err), PB_OK);
	assert_int_equal(runs, 1);

	/* inside a caller's transaction it joins it (a savepoint) and leaves the rerun to the caller */
	assert_int_equal(db_begin(db, err), PB_OK);
	runs = 0;
	assert_int_equal(db_transaction(db, insert_in_transaction, "nested", err), PB_OK);
	assert_true(db_in_transaction(db));
	assert_int_equal(db_commit(db, err), PB_OK);
	assert_int_equal(runs, 1);
	assert_true(count_rows(db, "nested"));
	db_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(migrations_fresh_idempotent_and_too_old),
		cmocka_unit_test(real_schema_and_statement_cache),
		cmocka_unit_test(transactions_nest_as_savepoints),
		cmocka_unit_test(db_end_commits_or_rolls_back),
		cmocka_unit_test(identity_store),
		cmocka_unit_test(catalog_import_update_isolation),
		cmocka_unit_test(catalog_import_by_owner_only),
		cmocka_unit_test(catalog_text_shape),
		cmocka_unit_test(catalog_product_read_in_one_statement),
		cmocka_unit_test(catalog_version_moves_with_every_write),
		cmocka_unit_test(metrics_counters_and_histogram),
		cmocka_unit_test(pipeline_health),
		cmocka_unit_test(statements_bind_and_read),
		cmocka_unit_test(open_picks_the_engine),
		cmocka_unit_test(migrations_per_engine),
		cmocka_unit_test(busy_is_retried),
		cmocka_unit_test(readers_and_named_locks),
		cmocka_unit_test(read_first_alone_reads_by_itself),
		cmocka_unit_test(marks_move_with_every_commit),
		cmocka_unit_test(read_first_skipped_begins_the_snapshot),
		cmocka_unit_test(identity_kept_until_a_commit),
		cmocka_unit_test(now_is_utc_with_milliseconds),
	};
	return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
