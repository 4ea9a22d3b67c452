/* Semantic-model refreshes: trigger, follow to the end, schedules and upstream events.
 *
 * A model is named by a model reference: an assets.id of kind semantic_model (brought in by
 * an import integration) or a published_models id (published through pbiport; its consumer
 * data product id is accepted too). Credentials, decided when the refresh is asked for:
 *   - imported model: the service principal of the integration that imported it;
 *   - published model: the delegated Power BI connection of the user who published it
 *     (a person asking must be that user: anyone else is "forbidden"; schedules and events
 *     act for the publisher);
 *   - neither (the integration or the publisher was deleted): "no_credentials".
 *
 * The "refresh" job tracks ITS OWN refresh: the Power BI history is read before the
 * trigger; afterwards the refresh is the entry whose requestId was not there before (the
 * id from the 202 when Power BI gives one and it is among them, else the newest). A
 * refresh already running for the model is joined instead of triggering a second (Power BI
 * runs one at a time), and in pbiport a second request while a refresh job is queued or
 * running returns that job (idempotency key "refresh:<dataset id>"). "Unknown" means still
 * running; the history is polled with back-off (PB_REFRESH_POLL_MIN_MS doubling to
 * PB_REFRESH_POLL_MAX_MS; PBIPORT_REFRESH_POLL_MS overrides the first interval) until
 * Completed, Failed, Cancelled or Disabled, or until the wait timeout
 * (PBIPORT_REFRESH_TIMEOUT, a duration such as "4h"; default PB_REFRESH_TIMEOUT_S_DEFAULT;
 * the body's "wait_timeout" overrides it per request). A timeout does not claim failure:
 * the result says the refresh is still running in Power BI.
 *
 * Job result: {"status","request_id","start","end","duration_s","error","joined",
 * "model_ref","dataset_id","workspace_id"} (+ "still_running":true and "message" on a
 * timeout). The job succeeds whatever Power BI's outcome; it fails only when pbiport
 * could not trigger or follow the refresh (core/flow/ms_failure.h decides between failing,
 * retrying and waiting; the message names the model, its workspace and the credentials).
 *
 * Failures (pb_failure, the codes of docs/errors.md): bad_request (the body; the message
 * names the field), not_found (no such model in the organization), conflict (the model's
 * stored Power BI ids are not GUIDs, so no URL is built from them), no_credentials,
 * forbidden (a published model of another user), enhanced_refresh_needs_capacity.
 *
 * Owns the tables refresh_runs and refresh_schedules (sql/0006_refresh_push.sql): a
 * refresh job and its run row are written in one transaction. Finds models through
 * core/store/published_models (published_model_find) and core/store/assets. */
#ifndef PBIPORT_REFRESH_H
#define PBIPORT_REFRESH_H

#include <stdbool.h>

#include "core/flow/worker.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/failure.h"

struct json_t;

/* A model reference resolved to Power BI ids and its credentials. */
typedef struct refresh_target {
	char model_ref[PB_ID_BUF];        /* the asset id or published model id */
	bool published;                   /* false: an imported asset */
	char workspace_id[PB_PBI_ID_MAX + 1];
	char workspace_name[PB_NAME_FIELD_MAX + 1];   /* "" when pbiport does not know it */
	char dataset_id[PB_PBI_ID_MAX + 1];
	char name[PB_NAME_FIELD_MAX * 2 + 1];
	char integration_id[PB_ID_BUF];   /* imported: "" when its integration was deleted */
	char publisher_id[PB_ID_BUF];     /* published: "" when the user was deleted */
} refresh_target;

/* PB_ENOTFOUND ("not_found") when org_id has no such semantic model; PB_ECONFLICT
 * ("conflict", *out filled) when its stored Power BI workspace or model id is not a GUID, so
 * no URL is ever built from it. */
int refresh_resolve(pb_db *db, const char *org_id, const char *ref, refresh_target *out, pb_failure *f);

/* Checks a POST .../refreshes body: {} or {"notifyOption"} or enhanced-refresh options
 * (type, commitMode, objects, retryCount, maxParallelism, applyRefreshPolicy,
 * effectiveDate, timeout) plus pbiport's "wait_timeout". PB_EINVAL with a message naming
 * the field. */
int refresh_options_check(const struct json_t *body, char *err);

/* Queues a refresh of ref (trigger "manual", "schedule" or "event"). user_id: the person
 * asking (NULL for schedules); the job belongs to them. Only a "manual" request is checked
 * against a published model's publisher; schedules and events act for the publisher.
 * Enhanced-refresh options make it ask Power BI where the model's workspace is
 * (GET /groups/{id}) and refuse one on shared capacity at once
 * (enhanced_refresh_needs_capacity); when Power BI cannot be asked, the job asks and says so.
 * *reply (new) {job_id, status_url, model_ref, name, joined}: queued, or joined to the job
 * in flight for the model; the job and its run row commit together (inside the caller's
 * transaction when it holds one). */
int refresh_submit(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ref,
		   const struct json_t *body, const char *trigger, struct json_t **reply, pb_failure *f);

/* True for the failures of refresh_submit that refuse this one model (its state, its
 * credentials, the request) rather than say pbiport or the database failed: an event or a
 * schedule skips the model and goes on. */
bool refresh_refused(const pb_failure *f);

/* GET .../refreshes: *reply (new) {"model_ref", "name", "refreshes":[...],
 * "powerbi_history": bool, "powerbi_error"?}: the refreshes pbiport ran merged with Power
 * BI's history (matched by request id); Power BI not answering is powerbi_error, not a
 * failure. */
int refresh_history(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ref,
		    struct json_t **reply, pb_failure *f);

/* PUT .../refresh-schedule {"schedule": "<cron or preset>" | null}: sets or clears it.
 * *reply (new) {"model_ref","schedule","next_run_at"}. bad_request for a bad schedule (an
 * empty text too: null or DELETE removes a schedule), no_credentials / forbidden as for a
 * refresh. */
int refresh_schedule_put(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ref,
			 const struct json_t *body, struct json_t **reply, pb_failure *f);
int refresh_schedule_get(pb_db *db, const char *org_id, const char *ref, struct json_t **reply, pb_failure *f);
/* DELETE .../refresh-schedule (and PUT with null): removes it, whatever credentials the model
 * still has; a model published by another user is "forbidden". *reply as for PUT. */
int refresh_schedule_delete(pb_db *db, const char *org_id, const char *user_id, const char *ref,
			    struct json_t **reply, pb_failure *f);

/* POST /api/events: {"type":"data_product.updated","data_product_id":...} or
 * {"events":[...]}: refreshes every semantic model downstream of the data products in the
 * lineage graph, once each; the jobs belong to user_id and are queued together or not at
 * all. *reply (new) {"jobs":[{job_id, model_ref, name, joined}], "skipped":[{model_ref,
 * reason}]}. bad_request for the body, not_found for an unknown data product. */
int refresh_events(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
		   const struct json_t *body, struct json_t **reply, pb_failure *f);

/* The "refresh" job kind. */
int refresh_job(pb_job_ctx *ctx);

/* Worker tick (core/flow/refresh_schedule.c): queues the refreshes whose schedule came due. */
int refresh_schedule_tick(pb_db *db, const pb_config *cfg, char *err);

/* ---- inside core/flow/refresh*.c ---- */
typedef struct refresh_due {
	char ref[PB_ID_BUF];
	char org_id[PB_ID_BUF];
	char schedule[129];
	char next_run_at[PB_TIME_BUF];
} refresh_due;
/* Schedules whose next_run_at <= now (at most PB_LIST_MAX_ITEMS): *out new array. */
int refresh_schedules_due(pb_db *db, const char *now, refresh_due **out, size_t *n, char *err);
/* Moves next_run_at from seen to next (compare-and-swap: *won false when another worker
 * moved it first). */
int refresh_schedule_advance(pb_db *db, const char *ref, const char *seen, const char *next, bool *won, char *err);

#endif
