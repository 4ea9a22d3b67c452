/* Updating a published model in place from its contract (POST /api/published-models/{id}/update,
 * docs/lifecycle.md).
 *
 * The definition the port's contract renders now ("want", core/flow/model_lifecycle.h
 * lifecycle_render) is compared with the model's live definition (Fabric getDefinition) by
 * model_diff (core/lang/model_diff.h): objects pbiport generated are compared, what analysts
 * added in Power BI is kept. Body: {"dry_run", "allow_breaking", "refresh"} (booleans; false,
 * false, true by default).
 *   - dry_run: 200 with the diff (model_diff's shape) plus "published_model_id",
 *     "semantic_model_id", "contract": {version, revision}. Nothing changes.
 *   - else the same diff is checked first: a breaking change (a table, column or relationship
 *     removed, a column's data type changed) needs allow_breaking ("breaking_change", 409,
 *     naming them), and so does a kept object whose DAX uses a column or table the change
 *     removes ("blocking_reference", 409, naming both); then a job of kind "update" is queued
 *     (202), the model put into state updating in the same transaction. A repeat while it is
 *     queued or running returns it. When Power BI does not answer the check in time, the job
 *     checks.
 *
 * The job's phases:
 *   reading    the live definition read (as the publisher), the contract rendered
 *   diffing    model_diff, the checks above again (the model may have changed meanwhile),
 *              model_merge: want's files plus every kept object of the live model
 *   updating   updateDefinition with the merged definition (long-running operation)
 *   rebinding  each data-source reference of the model not bound to the model's connection is
 *              bound to it (a new source of the contract); one that does not match fails the job
 *              with connection_mismatch
 *   refreshing a refresh queued (core/flow/refresh.h, trigger "event", as the publisher) when
 *              the structure changed, unless "refresh": false; then the published model
 *              records the definition it now has, the contract it came from, updated_at, and its
 *              update_available and drift are cleared.
 * The model id, its reports, permissions and refresh schedule stay: it is the same model.
 * Crash safety: the upload is checkpointed; a job resumed before that checkpoint reads the live
 * definition again, and when it already is what the update makes (the upload went through
 * before the crash) nothing is uploaded a second time.
 * Job result: {"published_model_id","semantic_model_id","summary":{...},"uploaded": bool,
 * "rebound": n, "refresh_job_id": id|null}. */
#ifndef PBIPORT_MODEL_UPDATE_H
#define PBIPORT_MODEL_UPDATE_H

#include <stdbool.h>

#include "core/flow/model_lifecycle.h"
#include "core/flow/worker.h"

struct json_t;

/* POST /api/published-models/{id}/update (publisher or owner). A dry run sets *diff (new);
 * otherwise job_id and *existing are set and *diff stays NULL. Failures: "not_found",
 * "forbidden", "bad_request", "model_unpublished", "model_busy", "port_retired",
 * "breaking_change", "blocking_reference", "definition_unreadable", "template_failed", the
 * publisher's session's and Microsoft's. */
int model_update_request(pb_db *db, const pb_config *cfg, const lc_actor *by, const char *id, const char *body,
			 size_t body_len, struct json_t **diff, char job_id[PB_ID_BUF], bool *existing, pb_failure *f);

/* Queues an automatic update of r for user_id (its publisher: an "auto_update": "additive"
 * model whose contract changed only by adding): only_additive, so that a live model that
 * differs otherwise fails it with breaking_change instead. Joins the caller's transaction.
 * *queued false when another job is at work on the model. */
int model_update_queue_auto(pb_db *db, const pm_row *r, bool *queued, char *err);

/* A contract was re-imported (product_id of org_id, POST /api/data-products and the import
 * page): each model published from the product's ports whose kept definition differs from what
 * the contract renders now is marked update_available with the diff (model_diff of the two),
 * and a diff not seen before is the webhook event "update.available" (with it, in one
 * transaction); a model whose diff went away is unmarked. A model with auto_update "additive"
 * whose diff only adds is updated at once (model_update_queue_auto, as its publisher). Models
 * without a kept definition, or whose port cannot be rendered, are left as they are (their
 * drift check finds them). *marked (may be NULL) counts the models marked. */
int model_update_contract_changed(pb_db *db, const pb_config *cfg, const char *org_id, const char *product_id,
				  size_t *marked, char *err);

/* After a contract import of product_id (the handlers' one call): model_update_contract_changed
 * for a product that existed before (created false); a failure is logged, never the import's. */
void model_update_after_import(pb_db *db, const pb_config *cfg, const char *org_id, const char *product_id,
			       bool created);

/* The job kind "update" (core/flow/job_kinds.c). */
int model_update_job(pb_job_ctx *ctx);

/* "breaking" / "blocking" of a diff in words for a message: at most max bytes of
 * "column orders.amount removed; ..." (out is always terminated). */
void model_update_breaking_words(const struct json_t *diff, char *out, size_t max);
void model_update_blocking_words(const struct json_t *diff, char *out, size_t max);

#endif
