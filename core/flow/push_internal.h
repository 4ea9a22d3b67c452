/* What the push files share among themselves and nobody else includes: the connection and
 * dataset records as the flows read them, the spool and send state, and the helpers one file
 * defines for the others. The public side is core/flow/push.h. */
#ifndef PBIPORT_PUSH_INTERNAL_H
#define PBIPORT_PUSH_INTERNAL_H

#include <jansson.h>

#include "core/flow/ms_failure.h"
#include "core/flow/pbi_session.h"
#include "core/flow/push.h"
#include "core/store/identity.h"
#include "msapi/msapi.h"

typedef struct push_conn {
	char id[PB_ID_BUF], org_id[PB_ID_BUF], team_id[PB_ID_BUF];
	char *team, *name, *tenant_id, *client_id, *client_secret;
	char created_at[PB_TIME_BUF];
} push_conn;

/* Teams whose connections (and their datasets) a caller may use: a member those of their
 * teams, an owner, or the worker (who NULL), every team of the org. Teams belong to
 * core/store/identity; membership is asked there. */
typedef struct team_list {
	pb_team *v;
	size_t n;
} team_list;

typedef struct push_ds {
	char id[PB_ID_BUF], org_id[PB_ID_BUF], connection_id[PB_ID_BUF], team_id[PB_ID_BUF];
	char *workspace_id, *powerbi_id, *name, *retention, *schema_json;
	char created_at[PB_TIME_BUF], updated_at[PB_TIME_BUF];
	push_schema schema;
} push_ds;

typedef enum chunk_outcome {
	OUTCOME_ADDED,          /* Power BI holds its rows */
	OUTCOME_NOT_ADDED,      /* it does not, and the request can no longer be under way: send it again */
	OUTCOME_WAIT,           /* ask again after *wait_ms */
	OUTCOME_UNKNOWN,        /* a row count cannot tell (why says so) */
} chunk_outcome;

typedef struct chunk_ref {
	long seq;
	long nrows;
	bool sending;
	int64_t sending_at_ms;
	int64_t ticket;           /* 0: none */
} chunk_ref;

/* The row of an upload (seq -1, rows_json = the job id) that names the job owning its chunks. */
#define SPOOL_OWNER_SEQ (-1)

/* Chunks of one body: the first one is kept in memory (a small body is sent at once), the
 * rest, and the first once a second arrives, go to push_chunks. */
typedef struct spool {
	pb_db *db;
	char upload_id[PB_ID_BUF];
	long seq;
	char *first;
	size_t first_len, first_rows;
	bool spilled;
} spool;

/* One chunk to Power BI under the limiter. wait: block until the limiter grants (the job);
 * otherwise *refused is set when it would have to wait. 429s are waited out (Retry-After). */
typedef struct send_ctx {
	pb_db *db;
	push_limits lim;
	msapi *api;
	const push_ds *d;
	const char *table;
	long retention_cap;
	const char *upload;
	volatile int *stop;
	long requests, throttled;
	int64_t defer_ms;       /* set with PB_ELIMIT: the limiter or Power BI asks for a wait too long to sleep through */
	bool unknown;           /* the last POST may or may not have added its rows (the chunk stays 'sending') */
	/* the table's row count push_chunk_next read with the chunk: the next grant's, once */
	long next_table_rows;
	bool have_next_table_rows;
	/* called in the transaction that records a chunk as added (may be NULL) */
	int (*on_added)(struct send_ctx *sc, long nrows, char *err);
	void *owner;            /* the on_added callback's */
} send_ctx;


/* ---- core/flow/push_connections.c ---- */

void push_conn_free(push_conn *c);
int push_visible_teams(pb_db *db, const push_caller *who, const char *org_id, team_list *out, char *err);
const pb_team *push_team_find(const team_list *l, const char *id, const char *name);
/* who NULL: any org (the worker, which got the id from its own job). */
int push_conn_get(pb_db *db, const push_caller *who, const char *id, push_conn **out, char *err);
/* push_conn_get(who NULL) without the team's name (c->team NULL): no read of the org's teams, for
 * a session (push_ds_session), which does not show the connection. */
int push_conn_for_session(pb_db *db, const char *id, push_conn **out, char *err);
bool push_id_text(const char *s);
/* An app session for the connection's service principal, whose failures (here and in the
 * calls made through it: pbi_session_fail) name the connection: bad_credentials when its
 * secret cannot be opened or Entra refuses its credentials, unavailable when Entra cannot be
 * reached. */
int push_conn_session(const pb_config *cfg, const push_conn *c, pbi_session *s, pb_failure *f);

/* ---- core/flow/push_datasets.c ---- */

void push_ds_free(push_ds *d);
int push_ds_get(pb_db *db, const push_caller *who, const char *id, push_ds **out, char *err);

/* ---- core/flow/push_send.c ---- */

/* Inside a write transaction: holds the upload's lock (db_lock_name) until it ends. The POST that
 * spools an upload and makes a job its owner, and the sweep that drops unowned uploads, each
 * read then write its chunks: on PostgreSQL they take turns through this. */
int push_upload_lock(pb_db *db, const char *upload, char *err);
/* Deletes from push_chunks and push_sending the upload's chunk seq, or all its rows (seq < 0). */
int push_chunks_drop(pb_db *db, const char *upload, long seq_or_all, char *err);
long push_retention_cap(const push_ds *d);
/* sending: a POST of the chunk is about to go out under ticket; else it is queued again. */
int push_chunk_mark(pb_db *db, const char *upload, long seq, bool sending, const char *ds_id, const char *table,
		      int64_t now_ms, int64_t ticket, char *err);
/* The upload's next chunk (lowest seq): 1 with *c and its rows in body ({"rows":[...]}), 0 when
 * none is left. The table's row count comes with it, for the grant that follows
 * (sc->next_table_rows). */
int push_chunk_next(send_ctx *sc, chunk_ref *c, sbuf *body, char *err);
/* Power BI added the chunk's rows: in one transaction the table's count grows, the chunk goes,
 * the limiter's ticket (0: none) is released as sent and sc->on_added runs; on a failure none of
 * it is kept. */
int push_chunk_added(send_ctx *sc, long seq, long nrows, int64_t ticket, char *err);
/* body: a whole {"rows":[...]} text (rows_body) of the upload's chunk seq, of nrows rows. */
int push_send_chunk(send_ctx *sc, long seq, const char *body, size_t len, long nrows, bool wait, bool *refused,
		      char *err);
/* Whether chunk c, marked 'sending', was added, from Power BI's row count of the table against
 * pbiport's own (which counts every chunk pbiport knows was added): the same count means not
 * added (once the request can no longer be under way), the count plus the chunk's rows means
 * added; anything else, another writer. Valid only while pbiport is the table's only writer:
 * other writes in flight make it wait, other unknown chunks make it unknown. why gets the reason
 * for anything but OUTCOME_ADDED (PB_OK: a reason, not a failure); the return is a failure of
 * pbiport's own database. */
int push_chunk_outcome_find(send_ctx *sc, const chunk_ref *c, chunk_outcome *out, int64_t *wait_ms, char *why, char *err);
/* Before a job sends anything: when nothing else writes to the table, pbiport's count of it
 * takes Power BI's (so the outcome of a chunk can be told later even after rows were added
 * outside pbiport, or with an unknown outcome). Best effort: a count that fails changes nothing. */
int push_table_rows_sync(send_ctx *sc, char *err);
/* Opens the dataset's connection (*conn new, also on failure: NULL or the connection) and its
 * session (*have set once it must be released). */
int push_ds_session(pb_db *db, const pb_config *cfg, const push_ds *d, push_conn **conn, pbi_session *s, bool *have,
		      pb_failure *f);

#endif
