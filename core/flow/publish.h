/* Publish an output port to Power BI: the request check used by the handler, the job
 * kind "publish" the worker runs, and the data-source matching shared by both.
 *
 * Job phases (job.phase): validating (contract re-read, TMDL rendered and parsed back, the
 * model's data source read from its M code) -> creating_connection (the chosen Fabric
 * connection, or a new one made with the request's credentials) -> creating_model (create
 * from the TMDL parts, following the long-running operation) -> binding (each data-source
 * reference of the model bound to the connection) -> finalizing (consumer data product,
 * approved agreement, lineage edge, published_models row: core/store/published_models.h).
 *
 * Crash safety: each phase checkpoints what it created (connection_id, model_name,
 * model_id, bound) before the next begins; a resumed job looks up what may exist already
 * (its connection by its display name, which carries the job's id; its model by the name it
 * checkpointed before creating) instead of creating a second one. A job adopts only what it
 * can prove it made: every model it creates carries the mark "pbiport job <job id>" in its
 * Fabric description, and a model of the checkpointed name without that mark (another
 * publish took the name meanwhile) makes the job choose the next free name; a connection
 * found under the job's name must point at the port's data source.
 *
 * Credentials typed into the request are sealed (APPLICATION_ENCRYPTION_KEYS) into the
 * job's private input; jobs_finish() erases them when the job ends.
 *
 * Test hook: PBIPORT_TEST_PAUSE_PHASE=<phase> makes the job stop inside that phase, after
 * the phase's Power BI call and before its checkpoint, print
 * "PBIPORT_TEST_PAUSED <phase> <job id>" on stderr and wait until the worker is stopped
 * or killed. Inert unless the variable is set. */
#ifndef PBIPORT_PUBLISH_H
#define PBIPORT_PUBLISH_H

#include <stdbool.h>

#include "core/store/catalog.h"
#include "core/flow/pbi_session.h"
#include "core/lang/render.h"
#include "core/flow/worker.h"
#include "msapi/msapi.h"
#include "runtime/config.h"
#include "runtime/db.h"

struct json_t;

/* The data source a port's rendered model reads, as Fabric names connections. */
typedef struct publish_source {
	const char *type;      /* static: "Snowflake" or "Databricks" */
	char *host;            /* new */
	char *second;          /* new: Snowflake warehouse or Databricks HTTP path */
} publish_source;
void publish_source_release(publish_source *s);

/* Renders the port's contract (its stored text) with the port's server, parses the TMDL
 * back and reads the data source from the tables' M code (core/lang/mlineage.h). http_path
 * (may be NULL) is used for Databricks servers without one. files (may be NULL) receives
 * the rendered files (caller releases). PB_EINVAL with a message for a contract or
 * template problem (template messages name the file and line). */
int publish_port_source(const pb_config *cfg, const cat_port *port, const char *http_path, publish_source *out,
			pb_files *files, char *err);

/* True when a Fabric connection (msapi item from fabric_list_connections: type, path
 * "host;second") points at the same data source: same type, same server (host compared
 * case-insensitively, scheme/port/trailing dots ignored, Snowflake account = host), same
 * warehouse / HTTP path (case-insensitive). */
bool publish_connection_matches(const publish_source *s, const msapi_item *conn);

/* The time the request check gives Power BI to answer (one call, no retry). */
#define PB_PUBLISH_CHECK_TIMEOUT_MS 5000
/* Fabric's limit on an item's description (characters; pbiport counts bytes, which is safe). */
#define PB_PUBLISH_DESC_MAX 256

/* A publish request read by publish_request_read: everything the job needs, checked. Every
 * member is new; release with publish_request_release. */
typedef struct publish_request {
	cat_port *port;
	char *input;                              /* the job's input (JSON text) */
	char *sealed;                             /* secret: sealed credentials, or NULL */
	char workspace_id[PB_PBI_ID_MAX + 1];
	char key[80];                             /* idempotency key: user, port, workspace, name */
} publish_request;
void publish_request_release(publish_request *rq);

/* Reads a POST /api/output-ports/{id}/powerbi-publish body against the port, without asking
 * Microsoft: fields, Microsoft ids (GUIDs: workspace_id, connection_id, a service
 * principal's tenant_id and client_id), credentials for the port's type, http_path only on
 * Databricks ports. The model name defaults to the data product's name, with " – <port
 * name>" when the product has several ports. PB_EINVAL with a message naming the field
 * (400), PB_ENOTFOUND when org_id has no such port (404). */
int publish_request_read(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			 const char *port_id, const struct json_t *body, publish_request *out, char *err);

/* What can be known before queueing about the user's Power BI: a connection that opens, and
 * a Contributor, Member or Admin role in workspace ws (one Fabric call of at most
 * PB_PUBLISH_CHECK_TIMEOUT_MS, a second only to say why it was refused). PB_EINVAL with code:
 * "not_configured", "not_connected", "needs_reconnect" (409), "no_write_role" (403),
 * "workspace_not_found" (400). When Microsoft does not answer in time it returns PB_OK: the
 * job checks again and waits for Microsoft. */
int publish_check_access(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ws,
			 char code[PBI_CODE_MAX], char *err);

/* Queues the job for rq (or finds the same user's queued/running job for port + workspace +
 * name: *existing true). */
int publish_request_queue(pb_db *db, const char *org_id, const char *user_id, const publish_request *rq,
			  char job_id[PB_ID_BUF], bool *existing, char *err);

/* publish_request_read + publish_check_access + publish_request_queue: the handler's one
 * call. code is "" or publish_check_access's code. */
int publish_submit(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *port_id,
		   const struct json_t *body, char job_id[PB_ID_BUF], bool *existing, char code[PBI_CODE_MAX],
		   char *err);

/* The job kind "publish" (core/flow/job_kinds.c). Error codes a user can act on:
 * not_connected, needs_reconnect, no_write_role, credentials_rejected, tmdl_rejected,
 * template_failed, invalid_contract, connection_not_found, connection_mismatch,
 * connection_name_taken, name_taken, workspace_not_found, port_gone, feature_disabled,
 * powerbi_error. */
int publish_job(pb_job_ctx *ctx);

/* The publish kind's cleanup when a cancel asks for it (core/flow/worker.h): deletes the semantic
 * model this job created (checkpoint model_id) and the connection it created (never the one
 * the request chose with connection_id), then sets ctx->result to
 * {"removed":{"semantic_model_id","connection_id"},"kept":{"connection_id"}} (null where none).
 * What was already gone counts as removed. Error codes as publish_job's. */
int publish_cancel_cleanup(pb_job_ctx *ctx);

/* pbiport rotate-keys: re-seals the credentials typed into unfinished publish jobs. */
int publish_reseal_credentials(pb_db *db, const pb_config *cfg, size_t *resealed, char *err);

#endif
