/* The PostgreSQL driver (libpq) behind runtime/db_driver.h.
 *
 * One connection per process (runtime/db.c keeps one db_conn). Statements are prepared on the
 * server under names of their own ("pb1", "pb2" ...) with every parameter's type left for the
 * server to infer, and run with their parameters in text format; a result is fetched whole
 * (every query pbiport runs is bounded by a LIMIT or by the rows of one object) and handed out
 * row by row, so a caller may run other statements between the rows of a query, as on SQLite.
 *
 * A lost connection (the server restarted, a network cut) answers PB_EUNAVAIL; the next statement
 * run outside a transaction connects again (PQreset) and prepares its statement again on the new
 * connection (each cursor remembers the connection generation it was prepared on). A connection
 * lost inside a transaction keeps answering PB_EUNAVAIL until the caller ends that transaction
 * (ROLLBACK, COMMIT, or a new BEGIN): reconnecting in the middle would run the rest of the
 * caller's transaction as separate, committed statements.
 *
 * A transaction's BEGIN costs no round trip of its own: it is sent in one pipeline with the
 * transaction's first statement (or in one text with its first script), and a transaction that
 * runs none sends nothing. A read transaction's COMMIT, when it wrote nothing,
 * is sent without waiting for the answer, which is read before the next command, or held to go
 * in the next statement's pipeline (db_read_end_later). The server ends the transaction when it
 * reads the COMMIT, whether or not this process reads the answer; a read-only COMMIT has nothing
 * to lose (REPEATABLE READ fails only writes). Statements prefetched in it (db_prefetch) go in
 * the pipeline of the next statement run. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/db_driver.h"
#include "runtime/util.h"

#define PG_BOOL_OID 16   /* pg_type.oid of boolean: read as 1/0, SQLite's booleans */
/* The advisory lock a migration run holds: the bytes of "pbiport" as a bigint. */
#define PG_MIGRATION_LOCK "31633402389033588"
/* Used unless the connection string sets its own: a server that does not answer (a dead host)
 * makes a request wait this long for its 503, not the system's TCP timeout. */
#define PG_CONNECT_TIMEOUT_S "10"
/* A transaction's BEGIN, told apart by address (db_conn.begin_owed) */
static const char begin_read_sql[] = "BEGIN ISOLATION LEVEL REPEATABLE READ";
static const char begin_write_sql[] = "BEGIN";   /* READ COMMITTED */
#define PG_PREFETCH_MAX 4   /* statements prefetched in one read transaction, at most */
#define PG_SESSION_SETUP \
	"SET TimeZone = 'UTC'; SET standard_conforming_strings = on; SET client_encoding = 'UTF8'"

struct db_conn {
	PGconn *pg;
	uint64_t gen;        /* counts connections made: a cursor prepared on an older one prepares again */
	uint64_t names;      /* server-side statement names given so far */
	int64_t changes;     /* rows the last INSERT/UPDATE/DELETE touched */
	bool tx_lost;        /* the connection was lost inside a transaction the caller has not ended */
	const char *begin_owed; /* a transaction was begun: this BEGIN (begin_read_sql or begin_write_sql)
	                         * goes out with the next command; NULL: none owed */
	bool first_alone;    /* ... a read's, but not with the very next statement, which reads by itself */
	bool read_only_tx;   /* the open transaction is such a read and wrote nothing: COMMIT not awaited */
	bool commit_held;    /* a read's COMMIT waits to go with the next command (pg_commit_later) */
	bool commit_unread;  /* a COMMIT was sent whose answer is not read yet */
	db_cursor *pre[PG_PREFETCH_MAX];   /* the cursors prefetched in the open read transaction */
	int npre;
};

struct db_cursor {
	db_conn *c;
	char name[24];       /* its server-side name */
	char *sql;           /* the text with $1, $2 ... (new) */
	int nparams;
	char **values;       /* nparams texts, NULL for SQL NULL (each new) */
	uint64_t gen;        /* c->gen it was prepared on; 0: not prepared on the server */
	PGresult *res;       /* the result of the run since the last reset */
	char **pre_values;   /* prefetched (pg_prefetch): the values it was sent with (new); else NULL */
	PGresult *pre;       /* and its result once read, until run takes it or the transaction ends */
	int row;             /* the row step last answered 1 for; -1 before the first */
	bool ran;            /* executed since the last reset */
};

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;   /* "table does not exist, skipping", "there is no transaction in progress" */
}

/* libpq's message as one line: line ends become "; ", the last one dropped. */
static void one_line(char *out, size_t size, const char *msg)
{
	size_t n = 0;
	for (const char *p = msg ? msg : ""; *p && n + 3 < size; p++) {
		if (*p == '\n' || *p == '\r') {
			if (p[1] && p[1] != '\n' && p[1] != '\r' && n) {
				out[n++] = ';';
				out[n++] = ' ';
			}
			continue;
		}
		out[n++] = *p;
	}
	out[n] = '\0';
}

/* The pb_rc of a failure with SQLSTATE state (NULL: libpq failed on its own). */
static int classify(const db_conn *c, const char *state)
{
	if (PQstatus(c->pg) != CONNECTION_OK)
		return PB_EUNAVAIL;
	if (!state || strlen(state) != 5)
		return PB_EIO;
	if (!strncmp(state, "23", 2))   /* integrity_constraint_violation: unique, foreign key, check, not null */
		return PB_ECONFLICT;
	if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03"))
		return DB_ERETRY;       /* serialization failure, deadlock, lock not available */
	if (!strncmp(state, "08", 2) || !strcmp(state, "57P01") || !strcmp(state, "57P02") ||
	    !strcmp(state, "57P03") || !strcmp(state, "53300"))
		return PB_EUNAVAIL;     /* connection exception, shutdown, cannot connect now, too many connections */
	if (!strcmp(state, "53200"))
		return PB_ENOMEM;
	return PB_EIO;
}

/* A failed command: its result res (may be NULL), classified, worded "database: what: message". */
static int pg_fail(db_conn *c, const PGresult *res, const char *what, char *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[PB_ERR_MAX];
	if (!msg || !*msg)
		msg = PQerrorMessage(c->pg);
	if (!res && PQstatus(c->pg) == CONNECTION_OK && (!msg || !*msg))
		return pb_err(err, PB_ENOMEM, "database: %s: out of memory", what);
	one_line(line, sizeof line, msg);
	return pb_err(err, classify(c, state), "database: %s: %s", what, line[0] ? line : "failed");
}

static bool pg_in_tx_now(const db_conn *c)
{
	PGTransactionStatusType t = PQtransactionStatus(c->pg);
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* After a command run with the transaction state was_in_tx: a connection lost inside a
 * transaction is remembered until the caller ends it. */
static void note_loss(db_conn *c, bool was_in_tx)
{
	if (was_in_tx && PQstatus(c->pg) != CONNECTION_OK)
		c->tx_lost = true;
}

static int session_setup(db_conn *c, char *err)
{
	PGresult *r = PQexec(c->pg, PG_SESSION_SETUP);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? PB_OK : pg_fail(c, r, "session setup", err);
	PQclear(r);
	return rc;
}

/* Reads the answer to a COMMIT sent without waiting (pg_exec), so that the connection takes a
 * command again. Its outcome is not wanted: a lost connection shows in PQstatus. Returns whether
 * there was one. */
static bool settle(db_conn *c)
{
	if (!c->commit_unread)
		return false;
	c->commit_unread = false;
	PGresult *r;
	while ((r = PQgetResult(c->pg)))
		PQclear(r);
	return true;
}

/* Sends the COMMIT pg_commit_later held, its answer read later (settle). */
static void release_commit(db_conn *c)
{
	if (!c->commit_held)
		return;
	c->commit_held = false;
	c->commit_unread = PQsendQuery(c->pg, "COMMIT") == 1;
}

/* The connection, ready for a statement: connected again when it was lost outside a transaction. */
static int conn_ready(db_conn *c, char *err)
{
	if (c->tx_lost)
		return pb_err(err, PB_EUNAVAIL, "database: the connection was lost in a transaction (rolled back)");
	release_commit(c);
	bool settled = settle(c);
	if (PQstatus(c->pg) == CONNECTION_OK) {
		/* an answer just read from the socket says the server is still there */
		if (settled || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
			return PB_OK;
		/* Between statements: a server that restarted since has closed the socket. Reading what
		 * waits on it (nothing, usually) notices that now, before a statement is sent into it. */
		if (PQconsumeInput(c->pg) && PQstatus(c->pg) == CONNECTION_OK)
			return PB_OK;
	}
	PQreset(c->pg);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		char line[PB_ERR_MAX];
		one_line(line, sizeof line, PQerrorMessage(c->pg));
		return pb_err(err, PB_EUNAVAIL, "database: cannot connect: %s", line);
	}
	c->gen++;
	return session_setup(c, err);
}

/* ---- opening ---------------------------------------------------------------------------- */

static int pg_open(const char *target, bool create, db_conn **out, char *err)
{
	/* keys before dbname are defaults the connection string may override */
	const char *const keys[] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
	const char *const vals[] = { PG_CONNECT_TIMEOUT_S, "pbiport", target, NULL };
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(target, &perr);
	int rc = PB_OK;
	(void)create;   /* a server's database cannot be made by connecting to it */
	*out = NULL;
	if (!opts) {
		/* libpq quotes the piece it could not read, which may be a password: say only where */
		rc = pb_err(err, perr ? PB_EINVAL : PB_ENOMEM,
			    "database: PBIPORT_DB is not a PostgreSQL connection string libpq can read "
			    "(postgresql://user@host/db or key=value pairs)");
		PQfreemem(perr);
		return rc;
	}
	PQconninfoFree(opts);
	db_conn *c = calloc(1, sizeof *c);
	if (!c)
		return pb_err(err, PB_ENOMEM, "database: out of memory");
	c->pg = PQconnectdbParams(keys, vals, 1);
	if (!c->pg) {
		free(c);
		return pb_err(err, PB_ENOMEM, "database: out of memory");
	}
	PQsetNoticeProcessor(c->pg, ignore_notice, NULL);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		char line[PB_ERR_MAX];
		one_line(line, sizeof line, PQerrorMessage(c->pg));
		rc = pb_err(err, PB_EUNAVAIL, "database: cannot connect: %s", line);
		goto out;
	}
	c->gen = 1;
	rc = session_setup(c, err);
out:
	if (rc) {
		PQfinish(c->pg);
		free(c);
		return rc;
	}
	*out = c;
	return PB_OK;
}

static void pg_close(db_conn *c)
{
	if (!c)
		return;
	PQfinish(c->pg);
	free(c);
}

/* ---- statements ------------------------------------------------------------------------- */

static bool ident_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
	       (unsigned char)ch >= 0x80;
}

/* Where the literal, quoted identifier or comment starting at p ends (the first byte after it),
 * or p itself when none starts there. start is the beginning of the text (to look one back). */
static const char *skip_quoted(const char *start, const char *p)
{
	if (*p == '\'' || *p == '"') {
		/* 'text' with '' inside; E'text' with backslash escapes too; "identifier" with "" */
		char q = *p;
		bool backslash = q == '\'' && p > start && (p[-1] == 'E' || p[-1] == 'e') &&
				 (p - 1 == start || !ident_char(p[-2]));
		for (p++; *p; p++) {
			if (backslash && *p == '\\' && p[1]) {
				p++;
			} else if (*p == q) {
				if (p[1] != q)
					return p + 1;
				p++;
			}
		}
		return p;
	}
	if (p[0] == '-' && p[1] == '-') {
		while (*p && *p != '\n')
			p++;
		return p;
	}
	if (p[0] == '/' && p[1] == '*') {   /* PostgreSQL's block comments nest */
		int depth = 0;
		while (*p) {
			if (p[0] == '/' && p[1] == '*') {
				depth++;
				p += 2;
			} else if (p[0] == '*' && p[1] == '/') {
				p += 2;
				if (!--depth)
					return p;
			} else {
				p++;
			}
		}
		return p;
	}
	if (*p == '$' && (p == start || !ident_char(p[-1]))) {   /* $tag$ ... $tag$ */
		const char *t = p + 1;
		while (ident_char(*t) && !(*t >= '0' && *t <= '9' && t == p + 1))
			t++;
		if (*t != '$')
			return p;
		size_t taglen = (size_t)(t - p) + 1;
		for (const char *q = t + 1; *q; q++)
			if (!strncmp(q, p, taglen))
				return q + taglen;
		return p + strlen(p);
	}
	return p;
}

/* sql with each `?` outside literals, quoted identifiers and comments written as $1, $2 ...
 * *out new; *nparams how many. */
static int rewrite_placeholders(const char *sql, char **out, int *nparams, char *err)
{
	size_t n = 0, len = strlen(sql);
	for (const char *p = sql; *p;) {
		const char *e = skip_quoted(sql, p);
		if (e != p) {
			p = e;
			continue;
		}
		n += *p++ == '?';
	}
	if (n > 65535)
		return pb_err(err, PB_EINVAL, "database: a statement has more than 65535 parameters");
	char *s = malloc(len + n * 5 + 1);   /* "?" -> at most "$65535" */
	if (!s)
		return pb_err(err, PB_ENOMEM, "database: out of memory");
	char *w = s;
	int k = 0;
	for (const char *p = sql; *p;) {
		const char *e = skip_quoted(sql, p);
		if (e != p) {
			memcpy(w, p, (size_t)(e - p));
			w += e - p;
			p = e;
		} else if (*p == '?') {
			w += snprintf(w, 7, "$%d", ++k);
			p++;
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	*out = s;
	*nparams = k;
	return PB_OK;
}

/* cur prepared on the server on its connection as it is now. */
static int ensure_prepared(db_cursor *cur, char *err)
{
	db_conn *c = cur->c;
	if (cur->gen == c->gen)
		return PB_OK;
	bool in_tx = pg_in_tx_now(c);
	PGresult *r = PQprepare(c->pg, cur->name, cur->sql, 0, NULL);
	int rc = PB_OK;
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		cur->gen = c->gen;
	else
		rc = pg_fail(c, r, "prepare", err);
	note_loss(c, in_tx);
	PQclear(r);
	return rc;
}

static void pg_clear(db_cursor *cur)
{
	for (int i = 0; i < cur->nparams; i++) {
		free(cur->values[i]);
		cur->values[i] = NULL;
	}
}

static void pg_reset(db_cursor *cur)
{
	PQclear(cur->res);
	cur->res = NULL;
	cur->row = -1;
	cur->ran = false;
}

static void unfetch(db_cursor *cur);

static void pg_finalize(db_cursor *cur)
{
	if (!cur)
		return;
	db_conn *c = cur->c;
	pg_reset(cur);
	unfetch(cur);
	release_commit(c);
	settle(c);
	/* an uncached statement (tests, tools) would otherwise stay on the server until the
	 * connection closes; never inside a transaction, where a failure would abort it */
	if (cur->gen == c->gen && !c->tx_lost && PQstatus(c->pg) == CONNECTION_OK &&
	    PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
		char sql[40];
		if (!xsnprintf(sql, sizeof sql, "DEALLOCATE %s", cur->name))
			PQclear(PQexec(c->pg, sql));
	}
	pg_clear(cur);
	free(cur->values);
	free(cur->sql);
	free(cur);
}

static int pg_prepare(db_conn *c, const char *sql, db_cursor **out, char *err)
{
	db_cursor *cur = calloc(1, sizeof *cur);
	int rc;
	*out = NULL;
	if (!cur)
		return pb_err(err, PB_ENOMEM, "database: out of memory");
	cur->c = c;
	cur->row = -1;
	if ((rc = rewrite_placeholders(sql, &cur->sql, &cur->nparams, err)))
		goto out;
	if (cur->nparams && !(cur->values = calloc((size_t)cur->nparams, sizeof *cur->values))) {
		rc = pb_err(err, PB_ENOMEM, "database: out of memory");
		goto out;
	}
	if (xsnprintf(cur->name, sizeof cur->name, "pb%" PRIu64, ++c->names)) {
		rc = pb_err(err, PB_EINTERNAL, "database: statement name too long");
		goto out;
	}
	if (!(rc = conn_ready(c, err)))
		rc = ensure_prepared(cur, err);
out:
	if (rc) {
		pg_finalize(cur);
		return rc;
	}
	*out = cur;
	return PB_OK;
}

static int bind_value(db_cursor *cur, int idx, const char *s, size_t len, char *err)
{
	if (idx < 1 || idx > cur->nparams)
		return pb_err(err, PB_EINTERNAL, "database: parameter %d out of range (the statement has %d)", idx,
			      cur->nparams);
	char *v = NULL;
	if (s) {
		if (memchr(s, '\0', len))
			return pb_err(err, PB_EINVAL, "database: parameter %d holds a NUL byte, which PostgreSQL text cannot",
				      idx);
		if (!(v = malloc(len + 1)))
			return pb_err(err, PB_ENOMEM, "database: out of memory");
		memcpy(v, s, len);
		v[len] = '\0';
	}
	free(cur->values[idx - 1]);
	cur->values[idx - 1] = v;
	return PB_OK;
}

static int pg_bind_text(db_cursor *cur, int idx, const char *s, size_t len, char *err)
{
	return bind_value(cur, idx, s, len, err);
}

static int pg_bind_int64(db_cursor *cur, int idx, int64_t v, char *err)
{
	char buf[24];
	int n = snprintf(buf, sizeof buf, "%" PRId64, v);
	return bind_value(cur, idx, buf, (size_t)n, err);
}

static int pg_bind_double(db_cursor *cur, int idx, double v, char *err)
{
	char buf[40];
	int n = snprintf(buf, sizeof buf, "%.17g", v);
	return bind_value(cur, idx, buf, (size_t)n, err);
}

static int pg_bind_null(db_cursor *cur, int idx, char *err)
{
	return bind_value(cur, idx, NULL, 0, err);
}

/* The command status of res counts rows written (sqlite3_changes counts only these). */
static bool counts_changes(const PGresult *res)
{
	const char *s = PQcmdStatus((PGresult *)res);
	return !strncmp(s, "INSERT ", 7) || !strncmp(s, "UPDATE ", 7) || !strncmp(s, "DELETE ", 7) ||
	       !strncmp(s, "MERGE ", 6);
}

/* Whether the values cur is bound to now are those its prefetched rows were read with. */
static bool same_values(const db_cursor *cur)
{
	for (int i = 0; i < cur->nparams; i++) {
		const char *a = cur->values[i], *b = cur->pre_values[i];
		if ((!a || !b) ? a != b : strcmp(a, b))
			return false;
	}
	return true;
}

/* cur's prefetch dropped: no longer queued, its rows (if read) freed. */
static void unfetch(db_cursor *cur)
{
	db_conn *c = cur->c;
	if (!cur->pre_values)
		return;
	for (int i = 0; i < c->npre; i++)
		if (c->pre[i] == cur) {
			c->pre[i] = c->pre[--c->npre];
			break;
		}
	PQclear(cur->pre);
	cur->pre = NULL;
	for (int i = 0; i < cur->nparams; i++)
		free(cur->pre_values[i]);
	free(cur->pre_values);
	cur->pre_values = NULL;
}

/* Every prefetch of c dropped: the transaction they were read in ended. */
static void unfetch_all(db_conn *c)
{
	while (c->npre)
		unfetch(c->pre[0]);
}

/* One pipeline, one round trip: a held COMMIT (when commit; its answer is not wanted when it
 * succeeds), the owed BEGIN begin (when not NULL), cur's statement, and the statements queued by
 * pg_prefetch, whose results they keep. cur's result is answered (new, or NULL when the pipeline
 * failed before it). When the COMMIT or the BEGIN failed, the first failure's result goes in
 * *before_fail (new) and *failed_what ("commit" or "begin") for the caller to report: the
 * commands after it only say "aborted". A COMMIT that met a server shutting down (its FATAL read,
 * the socket's end not yet) is how a lost connection shows here; answered by the aborted
 * statement, it was a 500 where a 503 is due. A queued statement whose result failed is dropped. */
static PGresult *run_pipeline(db_cursor *cur, bool commit, const char *begin, PGresult **before_fail,
			      const char **failed_what)
{
	db_conn *c = cur->c;
	PGconn *pg = c->pg;
	PGresult *res = NULL, *r;
	db_cursor *sent[PG_PREFETCH_MAX];
	int nsent = 0;
	*before_fail = NULL;
	if (!PQenterPipelineMode(pg))
		return NULL;
	bool ok = (!commit || PQsendQueryParams(pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) &&
		  (!begin || PQsendQueryParams(pg, begin, 0, NULL, NULL, NULL, NULL, 0)) &&
		  PQsendQueryPrepared(pg, cur->name, cur->nparams, (const char *const *)cur->values, NULL, NULL, 0);
	for (int i = 0; ok && i < c->npre; i++) {
		db_cursor *q = c->pre[i];
		if (q->pre || q->gen != c->gen || q == cur)
			continue;   /* read already, prepared on a connection since lost, or the one run now */
		ok = PQsendQueryPrepared(pg, q->name, q->nparams, (const char *const *)q->pre_values, NULL, NULL, 0);
		if (ok)
			sent[nsent++] = q;
	}
	if (ok && PQpipelineSync(pg)) {
		/* each command's results end with a NULL; the sync's result ends the pipeline, and so
		 * does a connection lost on the way (libpq then answers NULL) */
		int first = (commit ? 1 : 0) + (begin ? 1 : 0), last = first + nsent, command = 0;
		while (command <= last + 1) {
			if (!(r = PQgetResult(pg))) {
				if (PQstatus(pg) != CONNECTION_OK)
					break;
				command++;
				continue;
			}
			ExecStatusType st = PQresultStatus(r);
			if (st == PGRES_PIPELINE_SYNC) {
				PQclear(r);
				break;
			}
			if (command < first && !*before_fail && st != PGRES_COMMAND_OK) {
				*before_fail = r;
				*failed_what = commit && command == 0 ? "commit" : "begin";
			}
			else if (command == first && !res)
				res = r;
			else if (command > first && command <= last && st == PGRES_TUPLES_OK && !sent[command - first - 1]->pre)
				sent[command - first - 1]->pre = r;
			else
				PQclear(r);
		}
	}
	PQexitPipelineMode(pg);
	for (int i = 0; i < nsent; i++)
		if (!sent[i]->pre)
			unfetch(sent[i]);
	return res;
}

static int run(db_cursor *cur, char *err)
{
	db_conn *c = cur->c;
	int rc;
	if (cur->pre_values) {
		/* prefetched: its rows, when this run asks for the same values, without a round trip */
		bool take = cur->pre && same_values(cur);
		PGresult *pre = cur->pre;
		cur->pre = NULL;
		unfetch(cur);
		if (take) {
			cur->res = pre;
			return PB_OK;
		}
		PQclear(pre);
	}
	/* a held COMMIT goes in the pipeline, unless the connection it was for is gone */
	bool commit = c->commit_held;
	uint64_t gen = c->gen;
	c->commit_held = false;
	if ((rc = conn_ready(c, err)) || (rc = ensure_prepared(cur, err)))
		return rc;
	commit = commit && c->gen == gen;
	bool in_tx = pg_in_tx_now(c);
	/* with prefetched reads, the pipeline goes without the read's BEGIN (which stays owed to its
	 * next statement): each of them answers by itself, and the statement that takes them along
	 * is the identity's lookup (pg_prefetch); so does a statement that reads alone */
	const char *begin = !c->npre && !c->first_alone ? c->begin_owed : NULL;
	c->first_alone = false;
	if (commit || begin || c->npre) {
		PGresult *before_fail;
		const char *failed_what = NULL;
		if (begin) {
			c->begin_owed = NULL;
			c->read_only_tx = begin == begin_read_sql;
			in_tx = true;
		}
		cur->res = run_pipeline(cur, commit, begin, &before_fail, &failed_what);
		if (before_fail) {
			note_loss(c, in_tx);
			rc = pg_fail(c, before_fail, failed_what, err);
			PQclear(before_fail);
			PQclear(cur->res);
			cur->res = NULL;
			return rc;
		}
	} else {
		cur->res = PQexecPrepared(c->pg, cur->name, cur->nparams, (const char *const *)cur->values, NULL, NULL, 0);
	}
	ExecStatusType st = PQresultStatus(cur->res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		if (counts_changes(cur->res)) {
			c->changes = strtoll(PQcmdTuples(cur->res), NULL, 10);
			c->read_only_tx = false;   /* its COMMIT is awaited: a write's outcome is wanted */
		}
		return PB_OK;
	}
	note_loss(c, in_tx);
	rc = pg_fail(c, cur->res, "query", err);
	PQclear(cur->res);
	cur->res = NULL;
	return rc;
}

/* Inside a read transaction: cur, with the values bound now, goes out with the next statement
 * run on its connection (run_pipeline); its rows are kept until the transaction ends, for a run
 * of cur bound to the same values. Queued again, the newer values win. Before the transaction's
 * first statement, that pipeline carries no BEGIN: a prefetched read has a snapshot of its own,
 * and the read's BEGIN goes with its next statement, if it has one (a GET whose reads were all
 * prefetched sends neither BEGIN nor COMMIT). */
static int pg_prefetch(db_cursor *cur, char *err)
{
	db_conn *c = cur->c;
	unfetch(cur);
	if (c->npre == PG_PREFETCH_MAX || !(c->begin_owed == begin_read_sql || c->read_only_tx))
		return PB_OK;   /* a hint: the statement runs when it is asked for */
	if (!(cur->pre_values = calloc((size_t)cur->nparams + 1, sizeof *cur->pre_values)))
		return pb_err(err, PB_ENOMEM, "database: out of memory");
	for (int i = 0; i < cur->nparams; i++)
		if (cur->values[i] && !(cur->pre_values[i] = xstrdup(cur->values[i]))) {
			c->pre[c->npre++] = cur;
			unfetch(cur);
			return pb_err(err, PB_ENOMEM, "database: out of memory");
		}
	c->pre[c->npre++] = cur;
	return PB_OK;
}

static int pg_step(db_cursor *cur, char *err)
{
	if (!cur->ran) {
		cur->ran = true;
		int rc = run(cur, err);
		if (rc)
			return rc;
	}
	if (cur->res && PQresultStatus(cur->res) == PGRES_TUPLES_OK && cur->row + 1 < PQntuples(cur->res)) {
		cur->row++;
		return 1;
	}
	return 0;
}

static bool has_row(const db_cursor *cur)
{
	return cur->res && cur->row >= 0 && cur->row < PQntuples(cur->res);
}

static int pg_column_count(db_cursor *cur)
{
	return cur->res ? PQnfields(cur->res) : 0;
}

static bool pg_column_is_null(db_cursor *cur, int col)
{
	return !has_row(cur) || col < 0 || col >= PQnfields(cur->res) || PQgetisnull(cur->res, cur->row, col);
}

static const char *pg_column_text(db_cursor *cur, int col, size_t *len)
{
	const char *v = NULL;
	if (!pg_column_is_null(cur, col)) {
		v = PQgetvalue(cur->res, cur->row, col);
		if (PQftype(cur->res, col) == PG_BOOL_OID)
			v = v[0] == 't' ? "1" : "0";
	}
	if (len)
		*len = v ? strlen(v) : 0;
	return v;
}

static int64_t pg_column_int64(db_cursor *cur, int col)
{
	const char *v = pg_column_text(cur, col, NULL);
	return v ? strtoll(v, NULL, 10) : 0;
}

static double pg_column_double(db_cursor *cur, int col)
{
	const char *v = pg_column_text(cur, col, NULL);
	return v ? strtod(v, NULL) : 0;
}

static int64_t pg_changes(db_conn *c)
{
	return c->changes;
}

/* ---- scripts and transactions ----------------------------------------------------------- */

static const char *skip_blanks(const char *p)
{
	return p + strspn(p, " \t\r\n");
}

/* Whether script starts with keyword (a whole word, any case, after blanks). */
static bool starts_with_word(const char *script, const char *keyword)
{
	size_t n = strlen(keyword);
	script = skip_blanks(script);
	return !strncasecmp(script, keyword, n) && !ident_char(script[n]);
}

/* ROLLBACK [WORK | TRANSACTION] or ABORT, but not ROLLBACK TO [SAVEPOINT] name. */
static bool is_rollback(const char *script)
{
	if (starts_with_word(script, "ABORT"))
		return true;
	if (!starts_with_word(script, "ROLLBACK"))
		return false;
	const char *p = skip_blanks(skip_blanks(script) + strlen("ROLLBACK"));
	if (starts_with_word(p, "WORK") || starts_with_word(p, "TRANSACTION"))
		p = skip_blanks(p + strcspn(p, " \t\r\n;"));
	return !starts_with_word(p, "TO");
}

/* "begin; script" (new; NULL when out of memory): one round trip for both. */
static char *begin_and(const char *begin, const char *script)
{
	size_t nb = strlen(begin), ns = strlen(script);
	char *text = malloc(nb + 2 + ns + 1);
	if (text) {
		memcpy(text, begin, nb);
		memcpy(text + nb, "; ", 2);
		memcpy(text + nb + 2, script, ns + 1);
	}
	return text;
}

static int pg_exec(db_conn *c, const char *script, char *err)
{
	bool commit = starts_with_word(script, "COMMIT") || starts_with_word(script, "END");
	bool begin = starts_with_word(script, "BEGIN") || starts_with_word(script, "START");
	bool rollback = is_rollback(script);
	if (commit || rollback || begin)
		unfetch_all(c);   /* read in the transaction that ends here */
	if (c->begin_owed && (commit || rollback || begin)) {   /* it ran no statement: nothing was sent */
		c->begin_owed = NULL;
		if (!begin)
			return PB_OK;
	}
	const char *owed = c->begin_owed;   /* any other script takes it along, in one text */
	c->begin_owed = NULL;
	int rc;
	if (commit && c->read_only_tx && !c->tx_lost && PQstatus(c->pg) == CONNECTION_OK) {
		c->read_only_tx = false;
		if (PQsendQuery(c->pg, "COMMIT")) {
			c->commit_unread = true;
			return PB_OK;
		}
		/* not sent: the same COMMIT, awaited, reports why */
	}
	c->read_only_tx = false;   /* ended, or a script that may write: its COMMIT is awaited */
	if (c->tx_lost) {
		if (is_rollback(script)) {
			c->tx_lost = false;   /* the server rolled it back when the connection went */
			return PB_OK;
		}
		if (commit) {
			c->tx_lost = false;
			return pb_err(err, PB_EUNAVAIL,
				      "database: the connection was lost in a transaction: nothing of it was committed");
		}
		if (begin)
			c->tx_lost = false;
	}
	char *text = NULL;
	if (owed && !(text = begin_and(owed, script)))
		return pb_err(err, PB_ENOMEM, "database: out of memory");
	if ((rc = conn_ready(c, err))) {
		free(text);
		return rc;
	}
	bool in_tx = owed || pg_in_tx_now(c);
	PGresult *r = PQexec(c->pg, text ? text : script);
	free(text);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
		/* COMMIT of a transaction a failed statement aborted answers "ROLLBACK", not an error */
		if (commit && !strcmp(PQcmdStatus(r), "ROLLBACK"))
			rc = pb_err(err, PB_EIO, "database: commit: the transaction had failed and was rolled back");
	} else {
		note_loss(c, in_tx);
		rc = pg_fail(c, r, commit ? "commit" : "statement", err);
	}
	PQclear(r);
	return rc;
}

/* Nothing is sent yet: the BEGIN goes with the first statement or script (run, pg_exec). A new
 * BEGIN ends a transaction lost with its connection, as pg_exec's does. */
static void owe_begin(db_conn *c, const char *begin)
{
	unfetch_all(c);
	c->tx_lost = false;
	c->begin_owed = begin;
	c->first_alone = false;
}

static int pg_begin_read(db_conn *c, char *err)
{
	(void)err;
	owe_begin(c, begin_read_sql);
	return PB_OK;
}

/* The next statement goes without the read's BEGIN, which stays owed to the statement after it:
 * a read whose only statement that is sends neither BEGIN nor COMMIT. */
static void pg_first_alone(db_conn *c)
{
	c->first_alone = c->begin_owed == begin_read_sql;
}

static void pg_first_skipped(db_conn *c)
{
	c->first_alone = false;
}

static int pg_begin_write(db_conn *c, char *err)
{
	(void)err;
	owe_begin(c, begin_write_sql);
	return PB_OK;
}

/* True also while a transaction whose connection was lost is not ended yet, so that the caller
 * ends it (its ROLLBACK lets this connection be made again). */
static bool pg_in_transaction(db_conn *c)
{
	if (c->begin_owed)
		return true;
	if (c->commit_unread || c->commit_held)   /* ended: the server ends it as it reads the COMMIT */
		return false;
	return c->tx_lost || (PQstatus(c->pg) == CONNECTION_OK && pg_in_tx_now(c));
}

/* The read transaction ends: its COMMIT, when it wrote nothing, is held to go in the pipeline of
 * the next statement run (run) or sent by the next other command or pg_idle. */
static bool pg_commit_later(db_conn *c)
{
	unfetch_all(c);
	if (c->begin_owed) {   /* nothing was sent */
		c->begin_owed = NULL;
		return true;
	}
	if (!c->read_only_tx || c->tx_lost || PQstatus(c->pg) != CONNECTION_OK || !pg_in_tx_now(c))
		return false;
	c->read_only_tx = false;
	c->commit_held = true;
	return true;
}

static void pg_idle(db_conn *c)
{
	release_commit(c);
}

/* One parameterless query whose first value is wanted (NULL: none). *out new or NULL. It runs
 * by itself: a BEGIN owed stays owed (a ping, a migration's checks need no transaction). */
static int query_value(db_conn *c, const char *sql, const char *param, const char *what, char **out, char *err)
{
	*out = NULL;
	int rc = conn_ready(c, err);
	if (rc)
		return rc;
	bool in_tx = pg_in_tx_now(c);
	PGresult *r = PQexecParams(c->pg, sql, param ? 1 : 0, NULL, param ? &param : NULL, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		note_loss(c, in_tx);
		rc = pg_fail(c, r, what, err);
	} else if (PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0) &&
		   !(*out = xstrdup(PQgetvalue(r, 0, 0)))) {
		rc = pb_err(err, PB_ENOMEM, "database: out of memory");
	}
	PQclear(r);
	return rc;
}

static int pg_migration_lock(db_conn *c, char *err)
{
	char *v = NULL;
	int rc = query_value(c, "SELECT pg_advisory_lock(" PG_MIGRATION_LOCK ")", NULL, "migration lock", &v, err);
	free(v);
	return rc;
}

static void pg_migration_unlock(db_conn *c)
{
	char *v = NULL;
	/* a lost connection released it already */
	if (!query_value(c, "SELECT pg_advisory_unlock(" PG_MIGRATION_LOCK ")", NULL, "migration unlock", &v, NULL))
		free(v);
}

static int pg_table_exists(db_conn *c, const char *table, bool *exists, char *err)
{
	char *v = NULL;
	int rc = query_value(c, "SELECT to_regclass($1) IS NOT NULL", table, "table lookup", &v, err);
	*exists = !rc && v && v[0] == 't';
	free(v);
	return rc;
}

static int pg_ping(db_conn *c, char *err)
{
	char *v = NULL;
	int rc = query_value(c, "SELECT 1", NULL, "ping", &v, err);
	free(v);
	return rc;
}

const struct db_driver *db_pg_driver(void)
{
	static const struct db_driver driver = {
		.name = "postgresql",
		.dialect = DB_DIALECT_POSTGRESQL,
		.open = pg_open,
		.close = pg_close,
		.prepare = pg_prepare,
		.finalize = pg_finalize,
		.reset = pg_reset,
		.clear = pg_clear,
		.bind_text = pg_bind_text,
		.bind_int64 = pg_bind_int64,
		.bind_double = pg_bind_double,
		.bind_null = pg_bind_null,
		.step = pg_step,
		.column_count = pg_column_count,
		.column_is_null = pg_column_is_null,
		.column_text = pg_column_text,
		.column_int64 = pg_column_int64,
		.column_double = pg_column_double,
		.changes = pg_changes,
		.exec = pg_exec,
		.begin_read = pg_begin_read,
		.prefetch = pg_prefetch,
		.first_alone = pg_first_alone,
		.first_skipped = pg_first_skipped,
		.commit_later = pg_commit_later,
		.idle = pg_idle,
		.begin_write = pg_begin_write,
		.in_transaction = pg_in_transaction,
		.migration_lock = pg_migration_lock,
		.migration_unlock = pg_migration_unlock,
		.table_exists = pg_table_exists,
		.ping = pg_ping,
		.unmap = NULL,
	};
	return &driver;
}
