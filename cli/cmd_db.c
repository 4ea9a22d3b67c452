/* `pbiport db copy --from FILE --to URL`: moves a SQLite deployment to PostgreSQL (docs/deploy.md).
 *
 * The source must be at this binary's schema; the target is migrated to it, must hold no rows
 * yet, and receives every row of every table in one transaction (parents before the tables that
 * refer to them), so a copy that fails leaves it empty. Identity counters on the target are moved
 * past the copied ids. The table and column names come from the source's own schema, checked to
 * be plain lower-case names, and are the only text built here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

#define COPY_TABLES_MAX 128
#define COPY_COLUMNS_MAX 128
#define COPY_SQL_MAX (64u * 1024)

struct copy_table {
	char name[64];
	bool done;
};

static bool plain_name(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n < 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* The source's tables (not schema_migrations, which db_migrate fills on the target). */
static int list_tables(pb_db *src, struct copy_table *t, size_t *n, char *err)
{
	db_stmt *st = NULL;
	int r, rc = db_prepare(src,
			       "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
			       "ESCAPE '\\' AND name <> 'schema_migrations' ORDER BY name",
			       &st, err);
	*n = 0;
	while (!rc && (r = db_row(src, st, err)) == 1) {
		const char *name = db_col_text(st, 0);
		if (!plain_name(name))
			rc = pb_err(err, PB_EINVAL, "source table '%s': not a name pbiport gives its tables", name);
		else if (*n == COPY_TABLES_MAX)
			rc = pb_err(err, PB_ELIMIT, "the source has more than %d tables", COPY_TABLES_MAX);
		else {
			t[*n].done = false;
			xsnprintf(t[(*n)++].name, sizeof t->name, "%s", name);
		}
	}
	if (!rc && r < 0)
		rc = r;
	db_done(st);
	return rc;
}

/* Whether every table table refers to (its foreign keys) is copied already. */
static int parents_done(pb_db *src, const char *table, const struct copy_table *t, size_t n, bool *ready,
			char *err)
{
	db_stmt *st = NULL;
	int r, rc = db_prepare_texts(src, "SELECT \"table\" FROM pragma_foreign_key_list(?)", &table, 1, &st, err);
	*ready = true;
	while (!rc && *ready && (r = db_row(src, st, err)) == 1) {
		const char *parent = db_col_text(st, 0);
		for (size_t i = 0; i < n; i++)
			if (!strcmp(t[i].name, parent) && strcmp(parent, table) && !t[i].done)
				*ready = false;
	}
	if (!rc && r < 0)
		rc = r;
	db_done(st);
	return rc;
}

/* The column list "a, b, c" of table, and which are REAL (copied as doubles, not as text). */
static int table_columns(pb_db *src, const char *table, sbuf *cols, bool *real, int *ncols, char *err)
{
	db_stmt *st = NULL;
	int r, rc = db_prepare_texts(src, "SELECT name, upper(type) FROM pragma_table_info(?) ORDER BY cid", &table, 1,
				     &st, err);
	*ncols = 0;
	while (!rc && (r = db_row(src, st, err)) == 1) {
		const char *name = db_col_text(st, 0);
		if (!plain_name(name))
			rc = pb_err(err, PB_EINVAL, "source column %s.%s: not a name pbiport gives its columns", table, name);
		else if (*ncols == COPY_COLUMNS_MAX)
			rc = pb_err(err, PB_ELIMIT, "source table %s has more than %d columns", table, COPY_COLUMNS_MAX);
		else if (sbuf_addf(cols, "%s\"%s\"", *ncols ? ", " : "", name))
			rc = pb_err(err, PB_ENOMEM, "out of memory");
		else
			real[(*ncols)++] = strstr(db_col_text(st, 1), "REAL") || strstr(db_col_text(st, 1), "DOUBLE");
	}
	if (!rc && r < 0)
		rc = r;
	db_done(st);
	return rc;
}

/* Copies every row of table; *rows counts them. */
static int copy_table(pb_db *src, pb_db *dst, const char *table, long *rows, char *err)
{
	sbuf cols, sel, ins;
	bool real[COPY_COLUMNS_MAX];
	int ncols = 0, r = 0, rc;
	db_stmt *from = NULL, *to = NULL;
	sbuf_init(&cols, COPY_SQL_MAX);
	sbuf_init(&sel, COPY_SQL_MAX);
	sbuf_init(&ins, COPY_SQL_MAX);
	*rows = 0;
	if ((rc = table_columns(src, table, &cols, real, &ncols, err)))
		goto out;
	if (sbuf_addf(&sel, "SELECT %s FROM \"%s\"", sbuf_str(&cols), table) ||
	    sbuf_addf(&ins, "INSERT INTO \"%s\" (%s) VALUES (", table, sbuf_str(&cols))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < ncols; i++)
		if (sbuf_addf(&ins, "%s?", i ? ", " : "")) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
	if (sbuf_addf(&ins, ")")) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = db_prepare_new(src, sbuf_str(&sel), &from, err)) || (rc = db_prepare_new(dst, sbuf_str(&ins), &to, err)))
		goto out;
	while ((r = db_row(src, from, err)) == 1) {
		db_done(to);   /* reset and unbound */
		for (int i = 0; i < ncols; i++) {
			size_t len = 0;
			const char *v = db_col_textn(from, i, &len);
			if (!v)
				db_bind_null(to, i + 1, err);
			else if (real[i])
				db_bind_double(to, i + 1, db_col_double(from, i), err);
			else
				db_bind_textn(to, i + 1, v, len, err);
		}
		if ((rc = db_exec(dst, to, err))) {
			char why[PB_ERR_MAX];
			xsnprintf(why, sizeof why, "%s", err);
			rc = pb_err(err, rc, "table %s, row %ld: %s", table, *rows + 1, why);
			goto out;
		}
		(*rows)++;
	}
	if (r < 0)
		rc = r;
out:
	db_stmt_free(from);
	db_stmt_free(to);
	sbuf_release(&cols);
	sbuf_release(&sel);
	sbuf_release(&ins);
	return rc;
}

/* The target's identity columns continue after the ids copied into them. */
static int move_identities(pb_db *dst, char *err)
{
	db_stmt *st = NULL;
	int r, rc = db_prepare(dst,
			       "SELECT table_name, column_name FROM information_schema.columns "
			       "WHERE table_schema = current_schema() AND is_identity = 'YES'",
			       &st, err);
	while (!rc && (r = db_row(dst, st, err)) == 1) {
		char sql[400];
		const char *t = db_col_text(st, 0), *c = db_col_text(st, 1);
		if (!plain_name(t) || !plain_name(c))
			continue;
		if (xsnprintf(sql, sizeof sql,
			      "SELECT setval(pg_get_serial_sequence('%s', '%s'), COALESCE(MAX(\"%s\"), 0) + 1, false) "
			      "FROM \"%s\"",
			      t, c, c, t))
			rc = pb_err(err, PB_EINTERNAL, "identity of %s.%s: statement too long", t, c);
		else
			rc = db_exec_script(dst, sql, err);
	}
	if (!rc && r < 0)
		rc = r;
	db_done(st);
	return rc;
}

/* Whether table of the target holds a row already. */
static int target_has_rows(pb_db *dst, const char *table, bool *has, char *err)
{
	char sql[120];
	db_stmt *st = NULL;
	xsnprintf(sql, sizeof sql, "SELECT 1 FROM \"%s\" LIMIT 1", table);
	int rc = db_prepare_new(dst, sql, &st, err), r = 0;
	if (!rc && (r = db_row(dst, st, err)) < 0)
		rc = r;
	*has = r == 1;
	db_stmt_free(st);
	return rc;
}

static int copy_all(pb_db *src, pb_db *dst, const char *sql_dir, char *err)
{
	struct copy_table t[COPY_TABLES_MAX];
	size_t n = 0, copied = 0;
	int rc, applied = 0;
	if ((rc = db_check_schema(src, sql_dir, err)) || (rc = db_migrate(dst, sql_dir, &applied, err)) ||
	    (rc = db_check_schema(dst, sql_dir, err)) || (rc = db_read_begin(src, err)))
		return rc;
	if ((rc = list_tables(src, t, &n, err)))
		goto out;
	for (size_t i = 0; i < n && !rc; i++) {
		bool has = false;
		if (!(rc = target_has_rows(dst, t[i].name, &has, err)) && has)
			rc = pb_err(err, PB_ECONFLICT, "the target already holds rows (table %s): copy into an empty database",
				    t[i].name);
	}
	if (rc || (rc = db_begin(dst, err)))
		goto out;
	while (!rc && copied < n) {
		bool progress = false;
		for (size_t i = 0; i < n && !rc; i++) {
			bool ready = false;
			long rows = 0;
			if (t[i].done || (rc = parents_done(src, t[i].name, t, n, &ready, err)) || !ready)
				continue;
			if (!(rc = copy_table(src, dst, t[i].name, &rows, err))) {
				t[i].done = true;
				copied++;
				progress = true;
				fprintf(stderr, "pbiport db copy: %s: %ld row%s\n", t[i].name, rows, rows == 1 ? "" : "s");
			}
		}
		if (!rc && !progress)
			rc = pb_err(err, PB_EINVAL, "the source's foreign keys form a cycle: no table order copies them");
	}
	if (!rc)
		rc = move_identities(dst, err);
	rc = db_end(dst, rc, err);
out:
	db_read_end(src);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: pbiport db copy --from FILE --to URL   (a SQLite file into an empty PostgreSQL database)\n");
	return 2;
}

int cmd_db(int argc, char **argv)
{
	const char *from = NULL, *to = NULL;
	pb_config cfg;
	pb_db *src = NULL, *dst = NULL;
	char err[PB_ERR_MAX];
	int rc, code = 1;
	if (argc < 2 || strcmp(argv[1], "copy"))
		return usage();
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--from") && i + 1 < argc)
			from = argv[++i];
		else if (!strcmp(argv[i], "--to") && i + 1 < argc)
			to = argv[++i];
		else
			return usage();
	}
	if (!from || !to)
		return usage();
	if (db_target_is_pg(from) || !db_target_is_pg(to)) {
		fprintf(stderr, "pbiport db copy: --from is a SQLite file and --to a PostgreSQL connection string\n");
		return 2;
	}
	/* the rest of the configuration (the migrations' folder) as the source's deployment has it */
	config_defaults(&cfg);
	if (setenv("PBIPORT_DB", from, 1)) {
		fprintf(stderr, "pbiport db copy: out of memory\n");
		goto out;
	}
	if (config_load(&cfg, err)) {
		fprintf(stderr, "pbiport db copy: %s\n", err);
		code = 2;
		goto out;
	}
	if ((rc = db_open(from, false, &src, err)) || (rc = db_open(to, false, &dst, err)) ||
	    (rc = copy_all(src, dst, cfg.sql_dir, err))) {
		fprintf(stderr, "pbiport db copy: %s\n", err);
		code = rc == PB_EINVAL || rc == PB_ECONFLICT ? 2 : 1;
		goto out;
	}
	fprintf(stderr, "pbiport db copy: done\n");
	code = 0;
out:
	db_close(src);
	db_close(dst);
	config_release(&cfg);
	return code;
}
