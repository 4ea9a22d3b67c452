/* Publishing a server that lives on premises: through an on-premises data gateway instead of a
 * cloud connection (docs/publish.md, "On-premises data gateways").
 *
 * Which servers: an output port whose contract server carries the custom property
 * `powerbi.gateway` (PUBLISH_GATEWAY_PROPERTY) with the value true, yes or onPremises (any case),
 * or a gateway id (that gateway is then the default). false, no or cloud say it is reached from
 * the cloud (the default). Templates will be able to say it for a whole source type once sources
 * are described by templates (issue 16 items 1-2); until then the property is the only way.
 *
 * What the user may name in the publish request: gateway_id (a gateway), gateway_datasource_id (a
 * data source on it to bind to), or connection (credentials: a data source is created on the
 * gateway with them, encrypted for the gateway). With none of them, the gateway data source the
 * user may use that points at the port's data source is taken; several on different gateways ask
 * for gateway_id ("gateway_required", 400), none is "no_gateway" (409). The request check
 * (publish_gateway_check) chooses when Power BI answers in time and writes the choice into the
 * job's input; the job chooses the same way otherwise.
 *
 * The job's phases stay the same: creating_connection finds (or creates) the gateway data source
 * and checkpoints gateway_id, gateway_datasource_id and gateway_datasource_created (true when the
 * job made it); binding checks that Power BI offers the gateway for the model (Discover Gateways)
 * and binds it (Bind To Gateway with the data source's id). A data source the job creates carries
 * the job's id in its name, so a job resumed after a crash finds it instead of making a second;
 * cancel with cleanup deletes only a data source the job created. */
#ifndef PBIPORT_PUBLISH_GATEWAY_H
#define PBIPORT_PUBLISH_GATEWAY_H

#include <stdbool.h>

#include "core/flow/publish.h"

struct json_t;

#define PUBLISH_GATEWAY_PROPERTY "powerbi.gateway"

/* Whether the port's server is on-premises (*on_prem), and the gateway id the property names
 * (gateway_id "" when none). PB_EINVAL naming the property when its value is none of the above. */
int publish_gateway_marked(const cat_port *port, bool *on_prem, char gateway_id[PB_PBI_ID_MAX + 1], char *err);

/* The gateway part of a publish request (publish_request_read). */
typedef struct publish_gateway_req {
	bool on;                 /* the port publishes through a gateway */
	struct json_t *fields;   /* new (or NULL): what the job's input gets ("gateway": true, gateway_id,
	                            gateway_datasource_id, gateway_create, credential_type) */
} publish_gateway_req;
void publish_gateway_req_release(publish_gateway_req *g);

/* Reads gateway_id, gateway_datasource_id and, for an on-premises port, connection (basic or
 * windows: username + password; token: a key such as a Databricks access token) from body; seals
 * the credentials into *sealed (new). For a port that is not on-premises out->on is false and the
 * gateway fields are refused. PB_EINVAL naming the field. */
int publish_gateway_read(const pb_config *cfg, const cat_port *port, const struct json_t *body,
			 publish_gateway_req *out, char **sealed, char *err);

/* publish_submit's check of a gateway publish (nothing for another): chooses the gateway and data
 * source as the job would, acting as the user (one try of at most PB_PUBLISH_CHECK_TIMEOUT_MS per
 * call), and writes them into rq->input. Refusals: "no_gateway" (409), "gateway_required" (400),
 * "no_gateway_rights" (403), "powerbi_not_found" (404: the named gateway or data source),
 * "connection_mismatch" (409), the session's. PB_OK when Power BI does not answer in time. */
int publish_gateway_check(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			  publish_request *rq, pb_failure *f);

/* GET /api/powerbi/gateways[?output_port=&http_path=]: {"gateways":[{id, name, type, status,
 * admin, data_sources:[{id, name, type, path, credential_type[, matches]}]}]} with the gateways
 * the user administers (all their data sources) and those with data sources shared with them
 * (name null when Power BI does not tell a data source user), acting as the user. With
 * output_port, also "data_source" {type, path} (what the port's model reads), "on_premises" (the
 * port's marking) and each data source's "matches". */
int publish_gateways(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *port_id,
		     const char *http_path, struct json_t **out, pb_failure *f);

/* ---- the job (core/flow/publish.c calls these) ---- */

/* True for the input of a publish through a gateway. */
bool publish_gateway_job(const struct json_t *in);
/* creating_connection of a gateway publish: sets connection_id to the gateway data source's id. */
int publish_gateway_connection(pb_job_ctx *ctx, pbi_session *s, const publish_source *src, const struct json_t *in,
			       char connection_id[PB_PBI_ID_MAX + 1]);
/* binding of a gateway publish. */
int publish_gateway_bind(pb_job_ctx *ctx, pbi_session *s, const char *ws, const char *model_id);
/* Whether the job created its gateway data source (the published model's connection_created). */
bool publish_gateway_created(const pb_job_ctx *ctx);
/* The cancel cleanup's gateway part, after the model (model_id, NULL when none) is deleted:
 * deletes the data source the job created (checkpointed, or found by the job's name) and sets
 * ctx->result as publish_cancel_cleanup does. */
int publish_gateway_cleanup(pb_job_ctx *ctx, pbi_session *s, const struct json_t *in, const char *model_id);

#endif
