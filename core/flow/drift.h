/* Drift (docs/lifecycle.md): a published model and its contract parting ways, or a data product
 * made from a Power BI asset and the model it describes.
 *
 * A published model drifts when its live definition differs from what its contract renders
 * now (model_diff of the two, core/lang/model_diff.h: only what pbiport generates is compared).
 * The cause says where the difference comes from, against the definition recorded at the last
 * publish or update:
 *   "contract"  the contract renders differently from that definition (re-imported with changes);
 *   "power_bi"  the live model's generated objects differ from it (edited in Power BI);
 *   "both", or null when nothing drifts.
 * A model whose definition was not kept (published before pbiport kept it, or too large)
 * counts every difference as "contract". A port retired since (its server left the contract)
 * has no rendering: only "power_bi" is looked for, and "contract_error" says why.
 *
 * Drift report (GET /api/published-models/{id}/drift): model_diff's shape of contract-now
 * against live, plus {"published_model_id","cause","contract_changes":[...],
 * "power_bi_changes":[...],"checked_at"} (the changes of each cause, in model_diff's change
 * shape; "contract_error" when the contract cannot be rendered). Read-only: nothing is recorded.
 *
 * The daily drift check: the worker's tick (drift_schedule_tick) gives every organization with a
 * published model in service a check a day (table drift_checks, first one day after it is
 * seen), queued as a job of kind "drift_check" (system job, no user) in the same transaction as
 * the due time moves on. The job checks each model of the organization as its publisher
 * (models whose publisher cannot be acted for are listed in its result with why), records the
 * drift on the model (core/store/published_models.h pm_set_drift), and queues the webhook event
 * "drift.detected" (core/flow/webhooks.h) for each drift that was not recorded before, in the
 * same transaction. Job result: {"checked","drifting","new","errors":[{"published_model_id",
 * "code","message"}]}.
 *
 * Data products made from Power BI assets (POST /api/data-products/from-asset): an import run
 * that changes the model's tables or columns changes the product's contract (as it always did:
 * docs/import.md) and records how the schema now differs from the one the product had
 * recorded before the first such change (its baseline): tables and columns added, removed, or
 * changed (logical type, description), in model_diff's change shape with cause "power_bi"; a
 * new one is also a "drift.detected" event. Making the product from the asset again takes the
 * schema anew (the record goes); a schema that comes back to the baseline drifts no more. */
#ifndef PBIPORT_DRIFT_H
#define PBIPORT_DRIFT_H

#include "core/flow/model_lifecycle.h"
#include "core/flow/worker.h"

struct json_t;

/* GET /api/published-models/{id}/drift: *out new. Failures: "not_found", "model_unpublished",
 * "definition_unreadable", the publisher's session's and Microsoft's. */
int drift_of_model(pb_db *db, const pb_config *cfg, const char *org_id, const char *id, struct json_t **out,
		   pb_failure *f);

/* GET /api/drift: {"models":[pm_drift_list_json's], "data_products":[...]}: the organization's
 * drift as last recorded. *out new. */
int drift_list(pb_db *db, const char *org_id, struct json_t **out, pb_failure *f);

/* GET /api/data-products/{id}/drift: the product's recorded drift, or {"data_product_id",
 * "cause": null, "changes": [], "summary": {...}} when it has none. "not_found". *out new. */
int drift_of_product(pb_db *db, const char *org_id, const char *product_id, struct json_t **out, pb_failure *f);

/* An import run changes product_id's contract from old_text to new_text (asset products,
 * core/flow/asset_products.c): records the drift from the product's baseline as above. */
int drift_note_product_schema(pb_db *db, const char *org_id, const char *product_id, const char *old_text,
			      const char *new_text, char *err);
/* The product is made from its asset again: its schema is taken anew, it drifts no more. */
int drift_clear_product(pb_db *db, const char *product_id, char *err);

/* The schema diff of two contract texts (their tables and columns), in model_diff's shape
 * ({"changes","summary"}). *out new. PB_EINVAL when a text is not a contract. */
int drift_schema_diff(const char *before, const char *after, struct json_t **out, char *err);

/* The job kind "drift_check" and the worker tick that queues it (core/flow/job_kinds.c). */
int drift_check_job(pb_job_ctx *ctx);
int drift_schedule_tick(pb_db *db, const pb_config *cfg, char *err);

/* The time between two checks of an organization. */
#define PB_DRIFT_CHECK_INTERVAL_MS (24LL * 3600 * 1000)

#endif
