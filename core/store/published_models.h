/* The publish records: consumer data products made by publishing (rows of data_products
 * with type "powerbi_semantic_model"), their data-usage agreements (table agreements) and
 * the published_models table (sql/0004_publish.sql, sql/0016_model_lifecycle.sql).
 *
 * published_model_record() writes everything a finished publish leaves behind in one
 * transaction (on PostgreSQL one statement; inside a caller's transaction it joins it), keyed so that running it again (a worker died after the commit and the job
 * was resumed) writes nothing new and returns the same ids:
 *   - consumer data product: one per (org, semantic model), contract_id
 *     "powerbi:semanticModel:<model id>";
 *   - agreement: one per (consumer product, output port), state "approved";
 *   - lineage edge output_port -> data_product (core/store/lineage_store.h);
 *   - published_models: one per job id, with the definition the publish rendered and the
 *     contract it was built from.
 *
 * The life of a published model (docs/lifecycle.md) is its state:
 *   active -> updating (an update job is at work) -> active
 *   active -> unpublishing (an unpublish job is at work) -> unpublished | detached
 * A transitional state names its job (lifecycle_job_id); a job that ended without finishing
 * its work leaves the state behind, which the flow reads as active (core/flow/model_lifecycle.h)
 * and the next claim takes over. Unpublished and detached models are history: the lists of a
 * port's models leave them out, their lineage edge stays. */
#ifndef PBIPORT_PUBLISHED_MODELS_H
#define PBIPORT_PUBLISHED_MODELS_H

#include <stdbool.h>

#include "core/lang/render.h"
#include "runtime/db.h"
#include "runtime/limits.h"

struct json_t;

#define PB_PRODUCT_TYPE_POWERBI_MODEL "powerbi_semantic_model"
/* The largest definition kept with a published model (the JSON text of its files); a larger
 * one is not kept (definition NULL): its drift and updates are read from the live model. */
#define PB_PM_DEFINITION_MAX (16u * 1024 * 1024)
/* The largest diff kept with a model (update_diff, drift), as JSON text; a larger one keeps
 * its summary and the first changes, with "truncated": true. */
#define PB_PM_DIFF_MAX (1024u * 1024)

/* Everything borrowed; web_url, connection_id, definition, contract_version, contract_hash,
 * http_path and auto_update may be NULL. */
typedef struct pm_record {
	const char *org_id, *user_id, *job_id, *output_port_id;
	const char *workspace_id, *semantic_model_id, *name, *web_url, *connection_id;
	const char *source_name;     /* the source data product's name, for the description */
	const pb_files *definition;  /* the files the publish rendered */
	const char *contract_version;
	int contract_revision;
	const char *contract_hash;
	const char *http_path;       /* the Databricks HTTP path the request gave */
	bool connection_created;     /* the publish created connection_id */
	const char *auto_update;     /* "off" (NULL) or "additive" */
} pm_record;

typedef struct pm_ids {
	char consumer_product_id[PB_ID_BUF];
	char agreement_id[PB_ID_BUF];
	char published_id[PB_ID_BUF];
} pm_ids;

int published_model_record(pb_db *db, const pm_record *r, pm_ids *out, char *err);

/* {"models":[{"id","name","state","semantic_model_id","workspace_id","web_url","published_at",
 * "updated_at","job_id","connection_id","consumer_data_product_id","agreement_id",
 * "update_available","drift_cause"}]} for the port in org_id, newest first, at most
 * PB_LIST_MAX_ITEMS; unpublished and detached models are left out. *out is a new reference. */
int published_models_list_json(pb_db *db, const char *org_id, const char *port_id, struct json_t **out,
			       char *err);

/* A published model found by published_model_find(). */
typedef struct pm_model {
	char id[PB_ID_BUF];
	char workspace_id[PB_PBI_ID_MAX + 1];
	char semantic_model_id[PB_PBI_ID_MAX + 1];
	char name[PB_NAME_FIELD_MAX * 2 + 1];
	char user_id[PB_ID_BUF];     /* the publisher; "" when that user was deleted */
} pm_model;

/* The published model of org_id whose id, or consumer data product id, is ref (the newest
 * publish when several share the product), unpublished ones excepted (their model is gone or
 * no longer pbiport's). *found false when there is none. */
int published_model_find(pb_db *db, const char *org_id, const char *ref, pm_model *out, bool *found, char *err);

/* Whether any model was published from output port port_id (the catalog keeps such a port,
 * retired, when its server leaves the contract: core/store/catalog.h). */
int published_models_port_in_use(pb_db *db, const char *port_id, bool *in_use, char *err);

/* ---- the lifecycle (core/flow/model_lifecycle.h and the update, unpublish, drift flows) ---- */

/* One published model as the lifecycle reads it. Fixed members are "" when NULL; the
 * pointers are new (pm_row_free frees them and the struct) and NULL when NULL. */
typedef struct pm_row {
	char id[PB_ID_BUF], org_id[PB_ID_BUF], output_port_id[PB_ID_BUF], job_id[PB_ID_BUF];
	char user_id[PB_ID_BUF];                  /* the publisher; "" when deleted */
	char workspace_id[PB_PBI_ID_MAX + 1], semantic_model_id[PB_PBI_ID_MAX + 1];
	char connection_id[PB_PBI_ID_MAX + 1];
	char consumer_product_id[PB_ID_BUF], agreement_id[PB_ID_BUF];
	char state[16];                           /* active, updating, unpublishing, unpublished, detached */
	char lifecycle_job_id[PB_ID_BUF];
	char auto_update[16];                     /* off, additive */
	char drift_cause[16];                     /* "", contract, power_bi, both */
	char published_at[PB_TIME_BUF], updated_at[PB_TIME_BUF];
	bool connection_created, update_available;
	int contract_revision;                    /* 0 when unknown */
	char *name, *web_url, *http_path, *contract_version, *contract_hash;
	char *definition;                         /* JSON text {path: text} */
	char *update_diff, *drift;                /* JSON text */
} pm_row;
void pm_row_free(pm_row *r);

/* The published model id of org_id (any state). PB_ENOTFOUND when org_id has none. */
int pm_get(pb_db *db, const char *org_id, const char *id, pm_row **out, char *err);

/* The ids of org_id's active models (those not unpublished, detached or being unpublished),
 * oldest first, at most PB_LIST_MAX_ITEMS; of one output port when port_id is not NULL.
 * *ids new (free), (*n) entries of PB_ID_BUF. */
int pm_active_ids(pb_db *db, const char *org_id, const char *port_id, char (**ids)[PB_ID_BUF], size_t *n,
		  char *err);

/* Puts the model into a transitional state (updating, unpublishing) for job job_id: only from
 * active, or from a transitional state whose job is stale_job (the flow found it ended; NULL:
 * none may be taken over). *won false when the model was in another state. */
int pm_lifecycle_claim(pb_db *db, const char *id, const char *state, const char *job_id, const char *stale_job,
		       bool *won, char *err);

/* The definition files of a definition JSON text {path: text} (pm_row.definition). *out new
 * (pb_files_release). PB_EINVAL when the text is not such an object. */
int pm_definition_files(const char *definition, pb_files *out, char *err);

/* What an update that finished leaves: the definition rendered (NULL: keep none), the
 * contract it came from, state active, updated_at now, update_available and the drift
 * cleared; only while the model is updating for job_id (*changed false otherwise: finished
 * before, or taken over). Joins the caller's transaction. */
typedef struct pm_update_done {
	const char *id, *job_id;
	const pb_files *definition;
	const char *contract_version;
	int contract_revision;
	const char *contract_hash;
} pm_update_done;
int pm_update_finish(pb_db *db, const pm_update_done *u, bool *changed, char *err);

/* An unpublish that finished, in one transaction: state unpublished (detached when
 * detached), when and by whom (by_user may be NULL); the agreement terminated by by_user
 * (core/store/agreements.h); the consumer data product retired (status "retired"). The
 * lineage edge stays. Running it again changes nothing. */
int pm_unpublish_finish(pb_db *db, const char *id, const char *by_user, bool detached, char *err);

/* Whether a model other than except_id that is not unpublished uses Fabric connection conn_id
 * (a detached model still does). */
int pm_connection_in_use(pb_db *db, const char *conn_id, const char *except_id, bool *in_use, char *err);

/* Marks the model: an update is available with diff (JSON text; NULL clears it). */
int pm_set_update_available(pb_db *db, const char *id, const char *diff, char *err);

/* Sets auto_update ("off" or "additive"). */
int pm_set_auto_update(pb_db *db, const char *id, const char *mode, char *err);

/* Records a drift check: diff (JSON text) and cause ("contract", "power_bi", "both"; NULL when
 * the model does not drift, then diff is kept NULL too). drift_detected_at is kept while the
 * cause and diff stay the same, else set to now. *is_new (may be NULL): a drift that was not
 * recorded before (another cause or diff than the last). */
int pm_set_drift(pb_db *db, const char *id, const char *diff, const char *cause, bool *is_new, char *err);

/* The published models of org_id that drift (a cause recorded and not unpublished), newest
 * first, at most PB_LIST_MAX_ITEMS: [{"id","name","output_port_id","workspace_id",
 * "semantic_model_id","web_url","cause","summary","checked_at","detected_at"}]. *out new. */
int pm_drift_list_json(pb_db *db, const char *org_id, struct json_t **out, char *err);

/* The API shape of r (GET /api/published-models/{id}), with names looked up (port, data
 * product, publisher, who unpublished); state as given (the flow may have read a stale
 * transitional state as active). *out new. */
int pm_row_json(pb_db *db, const pm_row *r, const char *state, struct json_t **out, char *err);

#endif
