#include "runtime/db.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/db_driver.h"
#include "runtime/limits.h"
#include "runtime/util.h"

struct db_stmt {
	pb_db *db;
	db_cursor *cur;
	const char *sql;        /* cached: the caller's constant text, compared by address first */
	char *plain;            /* sql with every ?NNN written as ?, when it had any (what the driver runs) */
	int *param_of;          /* with plain: the parameter number (?NNN) of each ? of plain, in order */
	int nplaces, nparams;   /* ?s in plain; the highest parameter number */
	bool row_seen;          /* a row was handed out since the reset: not to be run again */
	int bind_rc;            /* the first failed bind since the reset, answered by the step */
	char bind_err[PB_ERR_MAX];
};

struct pb_db {
	const struct db_driver *drv;
	db_conn *conn;
	int depth;                                   /* write transactions open: 1 = BEGIN, more = savepoints */
	uint64_t serial;                             /* db_mark's db_serial */
	bool retry_failed;                           /* a failure worth a rerun met in this transaction */
	db_stmt *cache[PB_STMT_CACHE_MAX];           /* kept across requests */
	size_t ncache;
};

bool db_target_is_pg(const char *target)
{
	if (!strncmp(target, "postgresql://", 13) || !strncmp(target, "postgres://", 11))
		return true;
	/* libpq key=value: the first word is a keyword (letters, '_') and '=' */
	size_t k = strspn(target, "abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ");
	return k > 0 && (target[k] == '=' || (target[k] == ' ' && target[k + strspn(target + k, " ")] == '='));
}

int db_open(const char *target, bool create, pb_db **out, char *err)
{
	const struct db_driver *drv = db_target_is_pg(target) ? db_pg_driver() : db_sqlite_driver();
	*out = NULL;
	if (!drv)   /* the target itself is not shown: a connection string may hold a password */
		return pb_err(err, PB_EINVAL, "database: a PostgreSQL database was named, but this build has no "
					      "PostgreSQL driver (built without libpq)");
	return db_open_driver(drv, target, create, out, err);
}

static atomic_uint_least64_t db_serials;

int db_open_driver(const struct db_driver *drv, const char *target, bool create, pb_db **out, char *err)
{
	int rc = PB_OK;
	pb_db *db = NULL;
	*out = NULL;
	if (!(db = calloc(1, sizeof *db))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	db->drv = drv;
	db->serial = atomic_fetch_add(&db_serials, 1) + 1;
	if ((rc = drv->open(target, create, &db->conn, err)))
		goto out;
	*out = db;
	db = NULL;
out:
	db_close(db);
	return rc;
}

static void stmt_free(db_stmt *st)
{
	if (!st)
		return;
	st->db->drv->finalize(st->cur);
	free(st->plain);
	free(st->param_of);
	free(st);
}

void db_close(pb_db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->ncache; i++)
		stmt_free(db->cache[i]);
	if (db->conn)
		db->drv->close(db->conn);
	free(db);
}

enum db_dialect db_dialect(const pb_db *db)
{
	return db->drv->dialect;
}

const char *db_engine(const pb_db *db)
{
	return db->drv->name;
}

int db_unmap(pb_db *db, char *err)
{
	return db->drv->unmap ? db->drv->unmap(db->conn, err) : PB_OK;
}

/* Numbered parameters: a store may write ?NNN to use one value in several places (SQLite's rule:
 * a bare ? is one more than the highest number so far). Drivers get `?` only, so the text is
 * rewritten here, once per statement: each ? of st->plain knows its parameter number, and a bind
 * of parameter n binds every ? of n. Quoted text ('...', "...") is left alone. */
static int number_params(db_stmt *st, const char *sql, char *err)
{
	size_t n = strlen(sql), cap = 0;
	bool numbered = false;
	int max = 0;
	for (size_t i = 0; i < n; i++)
		if (sql[i] == '?') {
			cap++;
			numbered = numbered || (sql[i + 1] >= '0' && sql[i + 1] <= '9');
		}
	if (!numbered) {
		st->nplaces = st->nparams = (int)cap;
		return PB_OK;
	}
	if (!(st->plain = malloc(n + 1)) || !(st->param_of = calloc(cap, sizeof *st->param_of)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	size_t o = 0;
	char quote = 0;
	for (size_t i = 0; i < n; i++) {
		char c = sql[i];
		st->plain[o++] = c;
		if (quote) {
			quote = c == quote ? 0 : quote;
			continue;
		}
		if (c == '\'' || c == '"') {
			quote = c;
			continue;
		}
		if (c != '?')
			continue;
		int num = 0;
		while (sql[i + 1] >= '0' && sql[i + 1] <= '9' && num < 1000)
			num = num * 10 + (sql[++i] - '0');
		if (!num)
			num = max + 1;
		if (num > max)
			max = num;
		st->param_of[st->nplaces++] = num;
	}
	st->plain[o] = '\0';
	st->nparams = max;
	return PB_OK;
}

static int stmt_new(pb_db *db, const char *sql, db_stmt **out, char *err)
{
	db_stmt *st = calloc(1, sizeof *st);
	*out = NULL;
	if (!st)
		return pb_err(err, PB_ENOMEM, "out of memory");
	st->db = db;
	st->sql = sql;
	int rc = number_params(st, sql, err);
	if (!rc)
		rc = db->drv->prepare(db->conn, st->plain ? st->plain : sql, &st->cur, err);
	if (rc) {
		free(st->plain);
		free(st->param_of);
		free(st);
		return rc;
	}
	*out = st;
	return PB_OK;
}

int db_param_count(db_stmt *st)
{
	return st->nparams;
}

/* Back before the first step, every parameter unbound. */
static void stmt_rewind(db_stmt *st)
{
	st->db->drv->reset(st->cur);
	st->db->drv->clear(st->cur);
	st->row_seen = false;
	st->bind_rc = PB_OK;
	st->bind_err[0] = '\0';
}

int db_prepare(pb_db *db, const char *sql, db_stmt **out, char *err)
{
	*out = NULL;
	/* by address first (a call site passes the same literal every time), then by text */
	size_t hit = db->ncache;
	for (size_t i = 0; i < db->ncache && hit == db->ncache; i++)
		if (db->cache[i]->sql == sql)
			hit = i;
	for (size_t i = 0; i < db->ncache && hit == db->ncache; i++)
		if (!strcmp(db->cache[i]->sql, sql))
			hit = i;
	if (hit < db->ncache) {
		stmt_rewind(db->cache[hit]);
		*out = db->cache[hit];
		return PB_OK;
	}
	/* a full cache means more distinct statements than the program has: a bug, say so */
	if (db->ncache == PB_STMT_CACHE_MAX)
		return pb_err(err, PB_ELIMIT, "database: statement cache is full (%d)", PB_STMT_CACHE_MAX);
	int rc = stmt_new(db, sql, &db->cache[db->ncache], err);
	if (rc)
		return rc;
	*out = db->cache[db->ncache++];
	return PB_OK;
}

void db_done(db_stmt *st)
{
	if (st)
		stmt_rewind(st);
}

void db_rerun(db_stmt *st)
{
	st->db->drv->reset(st->cur);
	st->row_seen = false;
}

int db_prepare_new(pb_db *db, const char *sql, db_stmt **out, char *err)
{
	return stmt_new(db, sql, out, err);
}

void db_stmt_free(db_stmt *st)
{
	stmt_free(st);
}

/* A short random pause before running again what met a concurrent writer, longer each attempt. */
static void retry_pause(int attempt)
{
	unsigned short r = 0;
	if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
		r = 0x8000;
	long ms = (long)PB_DB_RETRY_PAUSE_MS * (attempt + 1) / PB_DB_RETRY_MAX;
	long us = ms * 1000 / 2 + (long)(r % (unsigned)(ms * 500 + 1));
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* A DB_ERETRY that is not retried here: PB_EUNAVAIL, and a note for db_transaction, which can
 * run the whole transaction again (each outermost db_begin clears the note). */
static int retry_exhausted(pb_db *db, char *err)
{
	char why[PB_ERR_MAX];
	xsnprintf(why, sizeof why, "%s", err ? err : "");
	db->retry_failed = true;
	return pb_err(err, PB_EUNAVAIL, "%s (the database is busy: try again)", why);
}

/* One step of st: a statement that met a concurrent writer before giving a row is run again,
 * outside a transaction, at most PB_DB_RETRY_MAX times. */
static int stmt_step(pb_db *db, db_stmt *st, char *err)
{
	if (st->bind_rc)
		return pb_err(err, st->bind_rc, "%s", st->bind_err);
	for (int attempt = 0;; attempt++) {
		int r = db->drv->step(st->cur, err);
		if (r == 1)
			st->row_seen = true;
		if (r != DB_ERETRY)
			return r;
		if (st->row_seen || db->drv->in_transaction(db->conn) || attempt >= PB_DB_RETRY_MAX)
			return retry_exhausted(db, err);
		db->drv->reset(st->cur);
		retry_pause(attempt);
	}
}

int db_exec(pb_db *db, db_stmt *st, char *err)
{
	int r = stmt_step(db, st, err);
	return r < 0 ? r : PB_OK;
}

int db_row(pb_db *db, db_stmt *st, char *err)
{
	return stmt_step(db, st, err);
}

int64_t db_changes(pb_db *db)
{
	return db->drv->changes(db->conn);
}

/* A bind's outcome rc, why its message: the first failure is kept for the step. */
static int bind_kept(db_stmt *st, int rc, const char *why, char *err)
{
	if (!rc)
		return PB_OK;
	if (!st->bind_rc) {
		st->bind_rc = rc;
		xsnprintf(st->bind_err, sizeof st->bind_err, "%s", why);
	}
	return pb_err(err, rc, "%s", why);
}

int db_bind_text(db_stmt *st, int idx, const char *s, char *err)
{
	return db_bind_textn(st, idx, s, s ? strlen(s) : 0, err);
}

/* The driver's bind of one ? (its place, from 1) of st. */
enum bind_kind { BIND_TEXT, BIND_INT64, BIND_DOUBLE, BIND_NULL };
struct bind_value {
	enum bind_kind kind;
	const char *s;
	size_t len;
	int64_t i;
	double d;
};

static int bind_place(db_stmt *st, int place, const struct bind_value *v, char *why)
{
	const struct db_driver *drv = st->db->drv;
	switch (v->kind) {
	case BIND_TEXT:
		return drv->bind_text(st->cur, place, v->s, v->len, why);
	case BIND_INT64:
		return drv->bind_int64(st->cur, place, v->i, why);
	case BIND_DOUBLE:
		return drv->bind_double(st->cur, place, v->d, why);
	default:
		return drv->bind_null(st->cur, place, why);
	}
}

/* Binds parameter idx of st (every ? of it, when the text numbered its parameters). */
static int bind_param(db_stmt *st, int idx, const struct bind_value *v, char *err)
{
	char why[PB_ERR_MAX] = "";
	int rc = PB_OK;
	if (!st->param_of)
		rc = bind_place(st, idx, v, why);
	else if (idx < 1 || idx > st->nparams)
		rc = pb_err(why, PB_EINTERNAL, "database: bind %d: column index out of range", idx);
	for (int k = 0; st->param_of && !rc && k < st->nplaces; k++)
		if (st->param_of[k] == idx)
			rc = bind_place(st, k + 1, v, why);
	return bind_kept(st, rc, why, err);
}

int db_bind_textn(db_stmt *st, int idx, const char *s, size_t len, char *err)
{
	struct bind_value v = { .kind = BIND_TEXT, .s = s, .len = len };
	return bind_param(st, idx, &v, err);
}

int db_bind_int64(db_stmt *st, int idx, int64_t i, char *err)
{
	struct bind_value v = { .kind = BIND_INT64, .i = i };
	return bind_param(st, idx, &v, err);
}

int db_bind_double(db_stmt *st, int idx, double d, char *err)
{
	struct bind_value v = { .kind = BIND_DOUBLE, .d = d };
	return bind_param(st, idx, &v, err);
}

int db_bind_null(db_stmt *st, int idx, char *err)
{
	struct bind_value v = { .kind = BIND_NULL };
	return bind_param(st, idx, &v, err);
}

const char *db_col_textn(db_stmt *st, int idx, size_t *len)
{
	size_t n = 0;
	const char *s = st->db->drv->column_text(st->cur, idx, &n);
	if (len)
		*len = s ? n : 0;
	return s;
}

const char *db_col_text(db_stmt *st, int idx)
{
	const char *s = db_col_textn(st, idx, NULL);
	return s ? s : "";
}

int64_t db_col_int64(db_stmt *st, int idx)
{
	return st->db->drv->column_int64(st->cur, idx);
}

int db_col_int(db_stmt *st, int idx)
{
	return (int)db_col_int64(st, idx);
}

double db_col_double(db_stmt *st, int idx)
{
	return st->db->drv->column_double(st->cur, idx);
}

bool db_col_is_null(db_stmt *st, int idx)
{
	return st->db->drv->column_is_null(st->cur, idx);
}

char *db_col_dup(db_stmt *st, int idx, bool *ok)
{
	size_t len;
	const char *s = db_col_textn(st, idx, &len);
	if (!s)
		return NULL;
	char *d = xstrndup(s, len);
	if (!d)
		*ok = false;
	return d;
}

int db_prepare_texts(pb_db *db, const char *sql, const char *const *v, int n, db_stmt **out, char *err)
{
	int rc = db_prepare(db, sql, out, err);
	for (int i = 0; !rc && i < n; i++)
		rc = db_bind_text(*out, i + 1, v[i], err);
	return rc;
}

int db_prepare_list(pb_db *db, const char *sql, const char *const *v, int n, int limit, db_stmt **out,
		    char *err)
{
	int rc = db_prepare_texts(db, sql, v, n, out, err);
	if (!rc)
		rc = db_bind_int64(*out, n + 1, limit, err);
	return rc;
}

int db_list_json(pb_db *db, const char *sql, const char *const *v, int n, int limit, db_row_json_fn row_json,
		 void *ctx, json_t **out, char *err)
{
	db_stmt *st = NULL;
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
	db_stmt *st = NULL;
	int rc = db_prepare_texts(db, sql, v, n, &st, err);
	if (!rc)
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

int db_first_row(pb_db *db, const char *sql, const char *const *v, int n, const char *missing, db_stmt **st,
		 char *err)
{
	*st = NULL;
	int rc = db_prepare_texts(db, sql, v, n, st, err), r;
	if (!rc && (r = db_row(db, *st, err)) <= 0)
		rc = r < 0 ? r : pb_err(err, PB_ENOTFOUND, "%s", missing);
	return rc;
}

int db_has_row(pb_db *db, const char *sql, const char *const *v, int n, bool *found, char *err)
{
	db_stmt *st = NULL;
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
	db_stmt *st = NULL;
	char (*list)[PB_ID_BUF] = NULL;
	size_t got = 0;
	*ids = NULL;
	*count = 0;
	int rc = db_prepare(db, sql, &st, err);
	for (int i = 0; !rc && i < n; i++)
		rc = db_bind_text(st, i + 1, v[i], err);
	if (!rc)
		rc = db_bind_int64(st, n + 1, (int64_t)max, err);
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

static char **text_member(void *row, const db_text_field *f)
{
	return (char **)((char *)row + f->offset);
}

int db_col_texts(db_stmt *st, void *row, const db_text_field *f, size_t n, char *err)
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

bool db_col_fixed(db_stmt *st, void *row, const db_fixed_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (xsnprintf((char *)row + f[i].offset, f[i].size, "%s", db_col_text(st, f[i].col)))
			return false;
	return true;
}

int db_read_row(pb_db *db, db_stmt *st, const db_reader *r, void *row, void *ctx, char *err)
{
	memset(row, 0, r->size);
	if (!db_col_fixed(st, row, r->fixed, r->nfixed))
		return pb_err(err, PB_EIO, "malformed %s row", r->what);
	int rc = db_col_texts(st, row, r->texts, r->ntexts, err);
	if (!rc && r->more && (rc = r->more(db, st, row, ctx, err)))
		db_texts_free(row, r->texts, r->ntexts);
	return rc;
}

int db_get_one(pb_db *db, const char *sql, const char *const *v, int n, const db_reader *r, void *ctx,
	       const char *key, void **out, char *err)
{
	db_stmt *st = NULL;
	void *row = NULL;
	char missing[PB_ERR_MAX];
	xsnprintf(missing, sizeof missing, "no %s %.128s", r->what, key);
	int rc = db_first_row(db, sql, v, n, missing, &st, err);
	*out = NULL;
	if (!rc && !(row = calloc(1, r->size)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	if (!rc && (rc = db_read_row(db, st, r, row, ctx, err))) {
		free(row);
		row = NULL;
	}
	db_done(st);
	*out = row;
	return rc;
}

/* The rows of a list query into max places: each read by place(), which answers where row i goes. */
static int get_list(pb_db *db, const char *sql, const char *const *v, int n, size_t max, const db_reader *r,
		    void *ctx, void *(*place)(void *list, size_t i, const db_reader *r), void *list, size_t *count,
		    char *err)
{
	db_stmt *st = NULL;
	int got = 0, rc = db_prepare_list(db, sql, v, n, max > INT32_MAX ? INT32_MAX : (int)max, &st, err);
	*count = 0;
	while (!rc && *count < max && (got = db_row(db, st, err)) == 1) {
		void *row = place(list, *count, r);
		if (!row)
			rc = pb_err(err, PB_ENOMEM, "out of memory");
		else if (!(rc = db_read_row(db, st, r, row, ctx, err)))
			(*count)++;
	}
	db_done(st);
	return rc ? rc : got < 0 ? got : PB_OK;
}

static void *place_in_array(void *list, size_t i, const db_reader *r)
{
	return (char *)list + i * r->size;
}

static void *place_new(void *list, size_t i, const db_reader *r)
{
	void **v = list;
	return v[i] = calloc(1, r->size);
}

int db_get_rows(pb_db *db, const char *sql, const char *const *v, int n, size_t max, const db_reader *r,
		void *ctx, void **out, size_t *count, char *err)
{
	void *list = calloc(max ? max : 1, r->size);
	size_t got = 0;
	int rc = list ? get_list(db, sql, v, n, max, r, ctx, place_in_array, list, &got, err)
		      : pb_err(err, PB_ENOMEM, "out of memory");
	*out = NULL;
	*count = 0;
	if (rc) {
		db_reader_rows_free(r, list, got);
		return rc;
	}
	*out = list;
	*count = got;
	return PB_OK;
}

int db_get_ptrs(pb_db *db, const char *sql, const char *const *v, int n, size_t max, const db_reader *r,
		void *ctx, void ***out, size_t *count, char *err)
{
	void **list = calloc(max ? max : 1, sizeof *list);
	size_t got = 0;
	int rc = list ? get_list(db, sql, v, n, max, r, ctx, place_new, list, &got, err)
		      : pb_err(err, PB_ENOMEM, "out of memory");
	*out = NULL;
	*count = 0;
	if (rc) {
		if (list && got < max)
			free(list[got]);   /* the struct whose read failed (its texts are freed already) */
		db_reader_ptrs_free(r, list, got);
		return rc;
	}
	*out = list;
	*count = got;
	return PB_OK;
}

void db_reader_free(const db_reader *r, void *row)
{
	db_row_free(row, r->texts, r->ntexts);
}

void db_reader_rows_free(const db_reader *r, void *v, size_t n)
{
	db_rows_free(v, n, r->size, r->texts, r->ntexts);
}

void db_reader_ptrs_free(const db_reader *r, void **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		db_reader_free(r, v[i]);
	free(v);
}

/* A driver's exec, begin_read or begin_write outcome: a DB_ERETRY (the write lock was not to be
 * had) is PB_EUNAVAIL here, noted for db_transaction. */
static int tx_rc(pb_db *db, int rc, char *err)
{
	return rc == DB_ERETRY ? retry_exhausted(db, err) : rc;
}

int db_exec_script(pb_db *db, const char *script, char *err)
{
	return tx_rc(db, db->drv->exec(db->conn, script, err), err);
}

int db_read_begin(pb_db *db, char *err)
{
	return tx_rc(db, db->drv->begin_read(db->conn, err), err);
}

int db_prefetch(pb_db *db, const char *sql, const char *const *v, int n, char *err)
{
	db_stmt *st = NULL;
	if (!db->drv->prefetch || db->depth > 0 || !db->drv->in_transaction(db->conn))
		return PB_OK;   /* nothing to save, or not in a read transaction */
	int rc = db_prepare_texts(db, sql, v, n, &st, err);
	if (!rc)
		rc = st->bind_rc ? pb_err(err, st->bind_rc, "%s", st->bind_err) : db->drv->prefetch(st->cur, err);
	db_done(st);
	return rc;
}

void db_read_first_alone(pb_db *db)
{
	if (db->drv->first_alone && db->depth == 0)
		db->drv->first_alone(db->conn);
}

void db_read_first_skipped(pb_db *db)
{
	if (db->drv->first_skipped)
		db->drv->first_skipped(db->conn);
}

void db_mark_take(pb_db *db, db_mark *out)
{
	memset(out, 0, sizeof *out);
	out->db_serial = db->serial;
	out->valid = db->depth == 0 && db->drv->mark && db->drv->mark(db->conn, out->state);
}

bool db_mark_same(const db_mark *a, const db_mark *b)
{
	return a->valid && b->valid && a->db_serial == b->db_serial && !memcmp(a->state, b->state, DB_MARK_BYTES);
}

void db_read_end_later(pb_db *db)
{
	if (!db->drv->commit_later || !db->drv->commit_later(db->conn))
		db_read_end(db);
}

void db_idle(pb_db *db)
{
	if (db && db->drv->idle)
		db->drv->idle(db->conn);
}

void db_read_end(pb_db *db)
{
	if (db->drv->in_transaction(db->conn) && db->drv->exec(db->conn, "COMMIT", NULL))
		db_rollback(db);
}

/* Inside a write transaction a begin opens a savepoint, so a function that writes in a
 * transaction of its own can be called from inside the caller's: both commit together, and
 * its rollback undoes only its own part. (Savepoint texts name the depth: built at run time,
 * run through exec, never the statement cache, which keeps constant texts by address.) */
int db_begin(pb_db *db, char *err)
{
	char sql[32];
	int rc;
	if (db->depth > 0 && db->drv->in_transaction(db->conn)) {
		xsnprintf(sql, sizeof sql, "SAVEPOINT pb%d", db->depth);
		rc = db_exec_script(db, sql, err);
	} else {
		db->depth = 0;
		db->retry_failed = false;
		rc = tx_rc(db, db->drv->begin_write(db->conn, err), err);
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
		int rc = db_exec_script(db, sql, err);
		if (rc) {
			db_rollback(db);
			return rc;
		}
		db->depth--;
		return PB_OK;
	}
	int rc = db_exec_script(db, "COMMIT", err);
	db->depth = 0;
	if (rc)
		db_rollback(db);
	return rc;
}

void db_rollback(pb_db *db)
{
	char sql[64];
	if (db->depth > 1 && db->drv->in_transaction(db->conn)) {
		db->depth--;
		xsnprintf(sql, sizeof sql, "ROLLBACK TO pb%d; RELEASE pb%d", db->depth, db->depth);
		db->drv->exec(db->conn, sql, NULL);
		return;
	}
	db->depth = 0;
	if (db->drv->in_transaction(db->conn))
		db->drv->exec(db->conn, "ROLLBACK", NULL);
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
	return db->depth > 0 && db->drv->in_transaction(db->conn);
}

int db_lock_name(pb_db *db, const char *name, char *err)
{
	if (!db_in_transaction(db))
		return pb_err(err, PB_EINTERNAL, "database: the lock %s is taken outside a write transaction", name);
	if (db_dialect(db) != DB_DIALECT_POSTGRESQL)
		return PB_OK;
	return db_exec_texts(db, "SELECT pg_advisory_xact_lock(hashtextextended(CAST(? AS TEXT), 0))", &name, 1, err);
}

int db_transaction(pb_db *db, db_work_fn fn, void *ctx, char *err)
{
	bool outermost = !db_in_transaction(db);
	for (int attempt = 0;; attempt++) {
		int rc = db_begin(db, err);
		if (!rc)
			rc = db_end(db, fn(db, ctx, err), err);
		/* only the outermost transaction can run again: a savepoint's rerun would still see
		 * the snapshot its transaction failed in */
		if (!rc || !outermost || !db->retry_failed || attempt >= PB_DB_RETRY_MAX)
			return rc;
		retry_pause(attempt);
	}
}

/* ---- migrations ---- */

struct migration {
	int version;
	bool engine_only;   /* NNNN_name.<engine>.sql, not the common file */
	char *file;         /* the file to run */
	char *name;         /* what schema_migrations records: NNNN_name.sql */
};

static int cmp_migration(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;
	if (x->version != y->version)
		return (x->version > y->version) - (x->version < y->version);
	return (int)x->engine_only - (int)y->engine_only;
}

static void free_migrations(struct migration *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].file);
		free(m[i].name);
	}
	free(m);
}

/* The engine suffixes a migration file may carry: each driver's name. */
static const char *const engine_suffixes[] = { ".sqlite.sql", ".postgresql.sql" };

/* NNNN_name.sql: four digits, an underscore, and the .sql suffix. *engine is set to the engine
 * the file is for (the driver name in NNNN_name.<engine>.sql), "" for a common file, and *stem
 * to the length of NNNN_name. */
static int migration_version(const char *name, const char **engine, size_t *engine_len, size_t *stem)
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
	*engine = "";
	*engine_len = 0;
	*stem = n - 4;
	for (size_t i = 0; i < sizeof engine_suffixes / sizeof engine_suffixes[0]; i++) {
		size_t k = strlen(engine_suffixes[i]);
		if (n > k + 5 && !strcmp(name + n - k, engine_suffixes[i])) {
			*engine = engine_suffixes[i] + 1;
			*engine_len = k - 5;
			*stem = n - k;
		}
	}
	return v > 0 ? v : -1;
}

/* Keeps, of files with one number, this engine's own over the common one (m sorted). */
static int pick_migrations(struct migration *m, size_t *n, char *err)
{
	int rc = PB_OK;
	size_t out = 0;
	for (size_t i = 0; i < *n; i++) {
		struct migration *prev = out ? &m[out - 1] : NULL;
		if (!prev || prev->version != m[i].version) {
			m[out++] = m[i];
			continue;
		}
		if (prev->engine_only == m[i].engine_only) {
			if (!rc)
				rc = pb_err(err, PB_EINVAL, "migrations %s and %s have the same number", prev->file,
					    m[i].file);
			free(m[i].file);
		} else {
			/* sorted common first: the engine's file replaces it, under the common name */
			free(prev->file);
			prev->file = m[i].file;
			prev->engine_only = true;
		}
		free(m[i].name);
	}
	*n = out;
	return rc;
}

static int list_migrations(pb_db *db, const char *dir, struct migration **out, size_t *count, char *err)
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
		const char *engine;
		size_t engine_len, stem;
		int v = migration_version(e->d_name, &engine, &engine_len, &stem);
		if (v < 0 || (engine_len && (strlen(db->drv->name) != engine_len ||
					     strncmp(engine, db->drv->name, engine_len))))
			continue;   /* not a migration, or another engine's */
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
		m[n].engine_only = engine_len > 0;
		m[n].file = xstrdup(e->d_name);
		m[n].name = malloc(stem + 5);
		n++;
		if (!m[n - 1].file || !m[n - 1].name) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		memcpy(m[n - 1].name, e->d_name, stem);
		memcpy(m[n - 1].name + stem, ".sql", 5);
	}
	qsort(m, n, sizeof *m, cmp_migration);
	rc = pick_migrations(m, &n, err);
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
	bool exists;
	db_stmt *st = NULL;
	*version = 0;
	int rc = db->drv->table_exists(db->conn, "schema_migrations", &exists, err);
	if (rc || !exists)
		return rc;
	/* not cached: this runs once per process */
	if ((rc = db_prepare_new(db, "SELECT max(version) FROM schema_migrations", &st, err)))
		return rc;
	int r = db_row(db, st, err);
	if (r < 0)
		rc = r;
	else if (r == 1)
		*version = db_col_int(st, 0);
	db_stmt_free(st);
	return rc;
}

static int migration_applied(pb_db *db, int version, bool *applied, char *err)
{
	db_stmt *st;
	int rc = db_prepare(db, "SELECT 1 FROM schema_migrations WHERE version = ?", &st, err);
	if (rc)
		return rc;
	db_bind_int64(st, 1, version, NULL);
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
	char now[PB_TIME_BUF], why[PB_ERR_MAX];
	db_stmt *st = NULL;
	int rc = db->drv->exec(db->conn, sql, why);
	if (rc)
		return pb_err(err, rc == DB_ERETRY ? PB_EUNAVAIL : PB_EIO, "migration %s: %s", m->file, why);
	pb_now(now);
	if ((rc = db_prepare(db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			     &st, err)))
		return rc;
	db_bind_int64(st, 1, m->version, NULL);
	db_bind_text(st, 2, m->name, NULL);
	db_bind_text(st, 3, now, NULL);
	rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

static int apply_migration(pb_db *db, const char *dir, const struct migration *m, bool *done, char *err)
{
	int rc;
	char *sql = NULL, *path = NULL;
	bool applied = false;
	size_t plen = strlen(dir) + strlen(m->file) + 2;
	*done = false;
	if (!(path = malloc(plen)) || xsnprintf(path, plen, "%s/%s", dir, m->file)) {
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

static int migrate_locked(pb_db *db, const char *dir, const struct migration *m, size_t n, int *count, char *err)
{
	int have = 0;
	int rc = db_exec_script(db,
				"CREATE TABLE IF NOT EXISTS schema_migrations ("
				" version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
				err);
	if (rc || (rc = db_schema_version(db, &have, err)))
		return rc;
	/* every file not yet recorded, not only those above the highest: migrations written
	 * in parallel branches may land with a lower number than one already applied */
	for (size_t i = 0; i < n; i++) {
		bool done, recorded = false;
		if (m[i].version <= have && (rc = migration_applied(db, m[i].version, &recorded, err)))
			return rc;
		if (recorded)
			continue;
		if ((rc = apply_migration(db, dir, &m[i], &done, err)))
			return rc;
		*count += done;
	}
	return PB_OK;
}

int db_migrate(pb_db *db, const char *dir, int *applied, char *err)
{
	struct migration *m = NULL;
	size_t n = 0;
	int count = 0;
	int rc = list_migrations(db, dir, &m, &n, err);
	if (!rc && !(rc = db->drv->migration_lock(db->conn, err))) {
		rc = migrate_locked(db, dir, m, n, &count, err);
		db->drv->migration_unlock(db->conn);
	}
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
	int rc = list_migrations(db, dir, &m, &n, err);
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
	db_stmt *st;
	int rc = db->drv->ping(db->conn, err);
	if (!rc)
		rc = db_prepare(db, "SELECT max(version) FROM schema_migrations", &st, err);
	if (!rc) {
		int r = db_row(db, st, err);
		rc = r < 0 ? r : PB_OK;
		db_done(st);
	}
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
	/* The second's text is kept per thread: gmtime_r (which takes glibc's time zone lock) and
	 * strftime cost more than the rest of a GET's log line, and every request and job statement
	 * asks for the time. */
	static _Thread_local time_t kept_sec = -1;
	static _Thread_local char kept[PB_TIME_BUF];
	static _Thread_local size_t kept_len;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != kept_sec) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		kept_len = strftime(kept, sizeof kept - 6, "%Y-%m-%dT%H:%M:%S", &tm);
		kept_sec = ts.tv_sec;
	}
	long ms = ts.tv_nsec / 1000000;
	memcpy(out, kept, kept_len);
	char *p = out + kept_len;
	*p++ = '.';
	p = pb_put_digits(p, (unsigned long long)ms, 3);
	p[0] = 'Z';
	p[1] = '\0';
}
