/* Push datasets: team-shared push connections, dataset creation with Power BI's limits
 * checked first, and row ingestion (JSON array, NDJSON, CSV with a header row).
 *
 * Owns the tables push_connections, push_datasets, push_table_rows, push_chunks and
 * push_rate_events (sql/0006_refresh_push.sql), and push_sending (sql/0010_push_sending.sql). Asks core/store/identity (identity_teams) which
 * teams a caller belongs to, to decide which connections a member may use: members use the connections of their
 * teams, owners use all of their org's; any other connection is PB_ENOTFOUND.
 *
 * Rows: a body is read in chunks by a push_reader, which checks EVERY row against the
 * table schema and converts each value to the column's JSON type before anything is sent
 * (a bad row fails the whole body with "row N, column 'c': ..."; data rows count from 1).
 * Converted rows are cut into chunks of at most POWERBI_PUSH_ROWS_MAX rows; one chunk is
 * one POST rows request. A body of one small chunk is sent at once when the rate limiter
 * grants it; otherwise the chunks are spooled in push_chunks and the "push_rows" job sends
 * them, deleting each chunk once Power BI accepted it (so a resumed job sends the rest). The
 * job is queued in the transaction that writes the upload's owner row (which names the job) and
 * finds its chunks all there: the chunks of an upload belong to its job from the moment the job
 * exists. Chunks nobody owns (the POST died while reading, or the job ended) are swept.
 *
 * Adding rows is not idempotent: a chunk is marked sending (push_sending) in the transaction that
 * grants its POST, and leaves in the transaction that adds its rows to pbiport's count of the
 * table (push_table_rows). A chunk found sending (the answer was lost, or the worker died) is not
 * sent again blindly: Power BI's row count of the table (executeQueries) against pbiport's says
 * whether it was added; when the count cannot tell (another writer, another chunk of unknown
 * outcome, a full basicFIFO table, no count), the job fails naming the rows of unknown outcome,
 * the rows added and the rows never sent.
 *
 * Rate limits (Power BI's documented per-dataset limits, scaled by PBIPORT_PUSH_RATE_SCALE,
 * default 1, each scaled value at least 1): 120 POST rows requests a minute, 1,000,000
 * rows an hour, 5 requests in flight, and 120 requests an hour once a table holds 250,000
 * rows (threshold scaled too). The limiter is a sliding-window log in push_rate_events,
 * checked and written under one write transaction, so every process shares it.
 *
 * Creating a push dataset answers with a warning that Microsoft stops the creation of new
 * push datasets on 31 October 2027 (PUSH_RETIREMENT_WARNING). */
#ifndef PBIPORT_PUSH_H
#define PBIPORT_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/flow/worker.h"
#include "core/lang/push_formats.h"
#include "core/store/push_limiter.h"
#include "runtime/auth.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/failure.h"
#include "runtime/strbuf.h"

struct json_t;

#define PUSH_RETIREMENT_WARNING                                                                        \
	"Microsoft stops the creation of new push datasets (real-time semantic models) on 31 October "   \
	"2027; existing ones keep working. Plan the move to Microsoft Fabric Real-Time Intelligence "   \
	"(eventstreams into an eventhouse/KQL database)."

/* pbiport's count of the rows in table of dataset ds_id: the rows it added, less what a
 * basicFIFO table dropped; 0 before the first. For the push datasets page. */
int push_table_rows_count(pb_db *db, const char *ds_id, const char *table, long *rows, char *err);

/* ---- connections ---- */

typedef struct push_caller {
	const char *org_id;
	const char *user_id;
	pb_role role;
} push_caller;

/* The push functions answering a request fail with a pb_failure: bad_request (a field, named),
 * not_found, forbidden, conflict, the codes of a failed Microsoft call (core/flow/ms_failure.h),
 * bad_credentials naming the push connection whose secret could not be opened or was refused,
 * and the "Push datasets" codes of core/flow/error_codes.c (schema_conflict, invalid_rows). Their
 * out-parameters carry only a success. */

/* Handles POST /api/push-connections: {name, team, tenant_id, client_id, client_secret}.
 * Members may create connections only for their own teams (else forbidden); a name taken in
 * the organization is a conflict. *reply new: the connection (201). */
int push_connection_create(pb_db *db, const pb_config *cfg, const push_caller *who, const struct json_t *body,
			   struct json_t **reply, pb_failure *f);
/* {"push_connections":[...]} of the connections the caller may use. */
int push_connections_list(pb_db *db, const push_caller *who, struct json_t **reply, char *err);
/* pbiport rotate-keys: re-seals every push connection secret sealed with an older key than
 * the first of cfg's ring (one transaction); *resealed counts them. */
int push_connections_rotate(pb_db *db, const pb_config *cfg, size_t *resealed, char *err);
/* Owners, or members of the connection's team; anyone else PB_ENOTFOUND. A conflict while push
 * datasets use it (deleting it would drop their records and leave them in Power BI). */
int push_connection_delete(pb_db *db, const push_caller *who, const char *id, pb_failure *f);

/* ---- datasets ---- */

/* Handles POST /api/push-datasets: {connection_id, workspace_id, name, tables,
 * retention?, replace?}. Same name + same schema returns the existing dataset (*status 200); a
 * different schema fails with schema_conflict unless replace is true (then *status 200 too);
 * a new one is 201. *reply new; *warning (borrowed static text) for the Warning header. */
int push_dataset_create(pb_db *db, const pb_config *cfg, const push_caller *who, const struct json_t *body,
			int *status, struct json_t **reply, const char **warning, pb_failure *f);
int push_dataset_get(pb_db *db, const push_caller *who, const char *id, struct json_t **reply, char *err);
int push_datasets_list(pb_db *db, const push_caller *who, struct json_t **reply, char *err);
/* Handles DELETE /api/push-datasets/{id}: deletes the dataset in Power BI (already gone there
 * counts as deleted), then pbiport's record. Who may write rows to it may delete it (owners,
 * members of the connection's team); anyone else gets PB_ENOTFOUND. A failure keeps the record. */
int push_dataset_delete(pb_db *db, const pb_config *cfg, const push_caller *who, const char *id, pb_failure *f);

/* Where a body comes from: read() returns bytes read, 0 at the end, -1 on error. */
typedef struct push_source {
	long (*read)(void *ctx, char *buf, size_t n);
	void *ctx;
	size_t size_hint;       /* total bytes when known (0: unknown) */
} push_source;

/* Handles POST /api/push-datasets/{id}/tables/{table}/rows. *status 200 with
 * {rows_accepted, requests, throttled} when sent at once, 202 {job_id, status_url, rows} when
 * queued; *reply new. A bad row fails the whole body with invalid_rows and sends nothing. */
int push_rows_ingest(pb_db *db, const pb_config *cfg, const push_caller *who, const char *dataset_id,
		     const char *table, const char *media_type, const push_source *src, int *status,
		     struct json_t **reply, pb_failure *f);
/* Handles DELETE .../rows: clears the table in Power BI. *reply new (200). */
int push_rows_delete(pb_db *db, const pb_config *cfg, const push_caller *who, const char *dataset_id,
		     const char *table, struct json_t **reply, pb_failure *f);

/* Drops spooled chunks nobody will send: uploads whose newest chunk is older than
 * older_than (a stored time text) and that no queued or running job owns (the POST that
 * spooled them died before queueing its job, or the job ended without them). *dropped
 * counts the uploads removed. */
int push_spool_sweep(pb_db *db, const char *older_than, size_t *dropped, char *err);
/* Worker tick: push_spool_sweep with PB_PUSH_SPOOL_ORPHAN_S, at most once every
 * PB_PUSH_SPOOL_SWEEP_MS per process. */
int push_spool_tick(pb_db *db, const pb_config *cfg, char *err);

/* The "push_rows" job kind: sends the spooled chunks of one upload.
 * Input {"upload_id","dataset_id","table","rows"}; result {"rows_accepted","requests",
 * "throttled","dataset_id","table"}. */
int push_rows_job(pb_job_ctx *ctx);

#endif
