/* Publish an output port to Power BI: the request check used by the handler, the job
 * kind "publish" the worker runs, and the data-source matching shared by both.
 *
 * Job phases (job.phase): validating (contract re-read, TMDL rendered and parsed back, the
 * model's data source read from its M code) -> creating_connection (the chosen Fabric
 * connection, or a new one made with the request's credentials) -> creating_model (create
 * from the TMDL parts, following the long-running operation) -> binding (each data-source
 * reference of the model bound to the connection) -> finalizing (consumer data product,
 * approved agreement, lineage edge, published_models row: core/published_models.h).
 *
 * Crash safety: each phase checkpoints what it created (connection_id, model_name,
 * model_id, bound) before the next begins; a resumed job looks up what may exist already
 * (its connection by its deterministic display name, its model by the name it
 * checkpointed before creating) instead of creating a second one.
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

#include "core/catalog.h"
#include "core/render.h"
#include "core/worker.h"
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
 * back and reads the data source from the tables' M code (core/mlineage.h). http_path
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

/* Checks a POST /api/output-ports/{id}/powerbi-publish body against the port and queues
 * the job (or finds the same user's queued/running job for port + workspace + name:
 * *existing true). PB_EINVAL with a message naming the field (400), PB_ENOTFOUND when
 * org_id has no such port (404). */
int publish_submit(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *port_id,
		   const struct json_t *body, char job_id[PB_ID_BUF], bool *existing, char *err);

/* The job kind "publish" (core/job_kinds.c). Error codes a user can act on:
 * not_connected, needs_reconnect, no_write_role, credentials_rejected, tmdl_rejected,
 * template_failed, invalid_contract, connection_not_found, connection_mismatch,
 * workspace_not_found, port_gone, feature_disabled, powerbi_error. */
int publish_job(pb_job_ctx *ctx);

/* The publish kind's cleanup when a cancel asks for it (core/worker.h): deletes the semantic
 * model this job created (checkpoint model_id) and the connection it created (never the one
 * the request chose with connection_id), then sets ctx->result to
 * {"removed":{"semantic_model_id","connection_id"},"kept":{"connection_id"}} (null where none).
 * What was already gone counts as removed. Error codes as publish_job's. */
int publish_cancel_cleanup(pb_job_ctx *ctx);

/* pbiport rotate-keys: re-seals the credentials typed into unfinished publish jobs. */
int publish_reseal_credentials(pb_db *db, const pb_config *cfg, size_t *resealed, char *err);

#endif
