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
#include "core/lang/sources.h"
#include "core/flow/worker.h"
#include "msapi/msapi.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/failure.h"

struct json_t;

/* The data source a port's rendered model reads, as Fabric names connections: the source's
 * description (core/lang/sources.h) says the connection's type, creation method and
 * parameters, whose values come from what the model's M reads. */
typedef struct publish_source {
	source_desc *desc;                    /* new: the source's description */
	const char *type;                     /* borrowed from desc: Fabric's connection type */
	char *values[SOURCE_MAX_PARAMS];      /* new: the connection parameters' values, in desc->params order */
	char *host;                           /* borrowed: values[0], or NULL when it has none (BigQuery) */
	char *path;                           /* new: the values joined with ';', as Fabric shows a path */
} publish_source;
void publish_source_release(publish_source *s);

/* Renders the port's stored contract with opts (the port's own server unless opts->server
 * names one; the configured template folders unless opts->template_path does): the TMDL a
 * publish sends. files is filled on success (caller releases). Failures: "bad_request" for what
 * the caller gave or can give (the contract's server lacks a value: the message names it as
 * opts->params says), "template_failed" (502) when the server's templates fail (the message
 * names the file and line), "internal" when the stored contract no longer reads. */
int publish_render(const pb_config *cfg, const cat_port *port, const render_opts *opts, pb_files *files,
		   pb_failure *f);

/* publish_render with the port's server, then parses the TMDL back and reads the data source
 * from the tables' M code (core/lang/mlineage.h): what the templates made must bind to one
 * source of the kind the description says it reads, else "template_failed". http_path (may be
 * NULL) is the request's value for a source field it may give (Databricks' HTTP path), named in
 * messages as params says. files (may be NULL) receives the rendered files (caller releases). */
int publish_port_source(const pb_config *cfg, const cat_port *port, const char *http_path, render_params params,
			publish_source *out, pb_files *files, pb_failure *f);

/* GET /api/output-ports/{id}/tmdl: publish_render of port_id in org_id with the caller's opts
 * (the values the port's server lacks). "not_found", "port_retired" (409) for a retired port. */
int publish_dry_run(pb_db *db, const pb_config *cfg, const char *org_id, const char *port_id, const render_opts *opts,
		    pb_files *files, pb_failure *f);

/* True when a Fabric connection (msapi item from fabric_list_connections: type, path
 * "value;value...") points at the same data source: same type, and each parameter of the
 * description the same, in order: a server compared as a server name (case-insensitively,
 * scheme/port/trailing dots ignored, Snowflake account = host), the others case-insensitively;
 * parts after them (optional parameters) are ignored. A source without parameters (BigQuery)
 * matches every connection of its type. */
bool publish_connection_matches(const publish_source *s, const msapi_item *conn);

/* {"type" (Fabric's), "source" (the server type), "label", "host" (NULL when none), "path",
 * "parameters":{name: value}}: the data source as the modal shows it. New, NULL on memory
 * failure. */
struct json_t *publish_source_json(const publish_source *s);

/* The time the request check gives Power BI to answer (one call, no retry). */
#define PB_PUBLISH_CHECK_TIMEOUT_MS 5000
/* Fabric's limit on an item's description (characters; pbiport counts bytes, which is safe). */
#define PB_PUBLISH_DESC_MAX 256

/* A publish request read by publish_request_read: everything the job needs, checked. Every
 * member is new; release with publish_request_release. */
typedef struct publish_request {
	cat_port *port;
	source_desc *desc;                        /* the port's source (core/lang/sources.h) */
	char *input;                              /* the job's input (JSON text) */
	char *sealed;                             /* secret: sealed credentials, or NULL */
	char workspace_id[PB_PBI_ID_MAX + 1];
	char key[80];                             /* idempotency key: user, port, workspace, name */
} publish_request;
void publish_request_release(publish_request *rq);

/* Whether the port's source has a field the publish request may give (the HTTP path a
 * Databricks publish needs) and its contract server does not give it: then the request must
 * (http_path). */
bool publish_port_needs_http_path(const cat_port *port, const source_desc *d);

/* The description of the port's source (its server's type) from the configured template path:
 * *out new (source_desc_free). "bad_request" (400) when the type has none ("not supported"),
 * "template_failed" when the description does not read. */
int publish_port_desc(const pb_config *cfg, const cat_port *port, source_desc **out, pb_failure *f);

/* The model name a publish request without one gets: the data product's name, followed by the
 * port's when the product has several ports ("Orders", "Orders – development"), at most
 * PB_PUBLISH_NAME_MAX bytes (the product's name is shortened first, at a character boundary),
 * on one line. The publish modal shows it as the default. */
int publish_default_name(pb_db *db, const char *org_id, const cat_port *port, char out[PB_PUBLISH_NAME_MAX + 1],
			 char *err);

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
 * PB_PUBLISH_CHECK_TIMEOUT_MS, a second only to say why it was refused). Refusals: the session's
 * ("not_configured", "not_connected", "needs_reconnect": 409, "bad_credentials" of the
 * organization's settings), "no_write_role" (403), "powerbi_not_found" (404: ws is not a
 * workspace the user can see). When Microsoft does not answer in time it returns PB_OK: the job
 * checks again and waits for Microsoft. */
int publish_check_access(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ws,
			 pb_failure *f);

/* Queues the job for rq (or finds the same user's queued/running job for port + workspace +
 * name: *existing true). */
int publish_request_queue(pb_db *db, const char *org_id, const char *user_id, const publish_request *rq,
			  char job_id[PB_ID_BUF], bool *existing, char *err);

/* POST /api/output-ports/{id}/powerbi-publish, the handler's one call: the port ("not_found",
 * "port_retired"), the body (body_len bytes of JSON: "bad_request" naming the field),
 * publish_check_access, then the job (job_id; *existing true for the same request in flight). */
int publish_submit(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *port_id,
		   const char *body_text, size_t body_len, char job_id[PB_ID_BUF], bool *existing, pb_failure *f);

/* The user's session (core/flow/pbi_session.h) for publishing; a failure to open it says what
 * the user does about it (connect or reconnect Power BI, then publish again). */
int publish_open_session(pbi_session *s, pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			 pb_failure *f);

/* For the publish modal, acting as the user through their Power BI connection (failures as
 * publish_check_access's session refusals, or Microsoft's):
 * GET /api/powerbi/workspaces: {"workspaces":[{id, name, type, role, writable}]}, role the
 * user's ("Admin", "Member", "Contributor" or "Viewer"), writable when it allows publishing. */
int publish_workspaces(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, struct json_t **out,
		       pb_failure *f);
/* GET /api/powerbi/connections?output_port=&http_path=: {"connections":[{id, name, type, path}],
 * "data_source": publish_source_json}: the user's Fabric connections that point at
 * the data source the port's model reads (publish_port_source, http_path as a query parameter). */
int publish_connections(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *port_id,
			const char *http_path, struct json_t **out, pb_failure *f);

/* The job kind "publish" (core/flow/job_kinds.c). Failures end the attempt with
 * job_end_with (a Microsoft failure waits or retries as core/flow/ms_failure.h says). Codes:
 * the session's (not_configured, not_connected, needs_reconnect), no_write_role,
 * credentials_rejected, credentials_missing, credentials_unreadable, connection_mismatch,
 * template_failed, bad_request (the port's server lacks a value), not_found (the port is gone),
 * name_taken, powerbi_not_found (the workspace or the chosen connection), feature_disabled,
 * bad_input, and Microsoft's. */
int publish_job(pb_job_ctx *ctx);

/* The publish kind's cleanup when a cancel asks for it (core/flow/worker.h): deletes the semantic
 * model this job created (checkpoint model_id) and the connection it created (never the one
 * the request chose with connection_id), then sets ctx->result to
 * {"removed":{"semantic_model_id","connection_id"},"kept":{"connection_id"}} (null where none).
 * What was already gone counts as removed. Error codes as publish_job's. */
int publish_cancel_cleanup(pb_job_ctx *ctx);

/* The context the request's credentials are sealed under (runtime/crypto.h pb_seal). */
#define PUBLISH_SEAL_CONTEXT "publish-credentials"
/* Opens the job's sealed credentials into *creds (new; wipe with msapi_wipe_json before
 * json_decref). Fails the job ("credentials_missing", "credentials_unreadable") when it cannot. */
int publish_open_credentials(pb_job_ctx *ctx, struct json_t **creds);

/* Seals the request's credentials object conn into *sealed (new) under PUBLISH_SEAL_CONTEXT. */
int publish_seal_credentials(const pb_config *cfg, const struct json_t *conn, char **sealed, char *err);
/* Ends the job's attempt for a failed Power BI call made through s while `what` (detail: the
 * call's message), in a publish's words: the session's failure, or Microsoft's
 * (core/flow/ms_failure.h) where a failure of kind means code in this call (no_write_role names
 * workspace ws; credentials_rejected; no_gateway_rights). Waits, retries or fails as job_end_with. */
int publish_api_failure(pb_job_ctx *ctx, const pbi_session *s, const char *ws, int rc, const char *what,
			const char *detail, msapi_failure kind, const char *code);
/* True when name (a connection's or a gateway data source's) ends with "(pbiport <first 12 of
 * job_id>)": the mark of what that publish job created. */
bool publish_named_by_job(const char *name, const char *job_id);

/* pbiport rotate-keys: re-seals the credentials typed into unfinished publish jobs. */
int publish_reseal_credentials(pb_db *db, const pb_config *cfg, size_t *resealed, char *err);

#endif
