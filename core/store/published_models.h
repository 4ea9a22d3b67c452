/* The publish records: consumer data products made by publishing (rows of data_products
 * with type "powerbi_semantic_model"), their data-usage agreements (table agreements) and
 * the published_models table (sql/0004_publish.sql).
 *
 * published_model_record() writes everything a finished publish leaves behind in one
 * transaction, keyed so that running it again (a worker died after the commit and the job
 * was resumed) writes nothing new and returns the same ids:
 *   - consumer data product: one per (org, semantic model), contract_id
 *     "powerbi:semanticModel:<model id>";
 *   - agreement: one per (consumer product, output port), state "approved";
 *   - lineage edge output_port -> data_product (core/store/lineage_store.h);
 *   - published_models: one per job id. */
#ifndef PBIPORT_PUBLISHED_MODELS_H
#define PBIPORT_PUBLISHED_MODELS_H

#include <stdbool.h>

#include "runtime/db.h"
#include "runtime/limits.h"

struct json_t;

#define PB_PRODUCT_TYPE_POWERBI_MODEL "powerbi_semantic_model"

/* Everything borrowed; web_url and connection_id may be NULL. */
typedef struct pm_record {
	const char *org_id, *user_id, *job_id, *output_port_id;
	const char *workspace_id, *semantic_model_id, *name, *web_url, *connection_id;
	const char *source_name;     /* the source data product's name, for the description */
} pm_record;

typedef struct pm_ids {
	char consumer_product_id[PB_ID_BUF];
	char agreement_id[PB_ID_BUF];
	char published_id[PB_ID_BUF];
} pm_ids;

int published_model_record(pb_db *db, const pm_record *r, pm_ids *out, char *err);

/* {"models":[{"name","semantic_model_id","workspace_id","web_url","published_at","job_id",
 * "connection_id","consumer_data_product_id","agreement_id"}]} for the port in org_id, newest
 * first, at most PB_LIST_MAX_ITEMS. *out is a new reference. */
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
 * publish when several share the product). *found false when there is none. */
int published_model_find(pb_db *db, const char *org_id, const char *ref, pm_model *out, bool *found, char *err);

/* Whether any model was published from output port port_id (the catalog keeps such a port,
 * retired, when its server leaves the contract: core/store/catalog.h). */
int published_models_port_in_use(pb_db *db, const char *port_id, bool *in_use, char *err);

#endif
