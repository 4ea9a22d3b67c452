/* Semantic-model refreshes: trigger, follow to the end, schedules and upstream events.
 *
 * A model is named by a model reference: an assets.id of kind semantic_model (brought in by
 * an import integration) or a published_models id (published through pbiport; its consumer
 * data product id is accepted too). Credentials, decided when the refresh is asked for:
 *   - imported model: the service principal of the integration that imported it;
 *   - published model: the delegated Power BI connection of the user who published it
 *     (a person asking must be that user; schedules and events act for the publisher);
 *   - neither: 400 "no_credentials".
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
 * could not trigger or follow the refresh.
 *
 * Owns the tables refresh_runs and refresh_schedules (sql/0006_refresh_push.sql); finds
 * models through core/store/published_models (published_model_find) and core/store/assets. */
#ifndef PBIPORT_REFRESH_H
#define PBIPORT_REFRESH_H

#include <stdbool.h>

#include "core/flow/worker.h"
#include "runtime/config.h"
#include "runtime/db.h"

struct json_t;

/* A model reference resolved to Power BI ids and its credentials. */
typedef struct refresh_target {
	char model_ref[PB_ID_BUF];        /* the asset id or published model id */
	bool published;                   /* false: an imported asset */
	char workspace_id[PB_PBI_ID_MAX + 1];
	char dataset_id[PB_PBI_ID_MAX + 1];
	char name[PB_NAME_FIELD_MAX * 2 + 1];
	char integration_id[PB_ID_BUF];   /* imported: "" when its integration was deleted */
	char publisher_id[PB_ID_BUF];     /* published: "" when the user was deleted */
} refresh_target;

/* PB_ENOTFOUND when org_id has no such semantic model; PB_EINVAL (*out filled) when its
 * stored Power BI workspace or model id is not a GUID, so no URL is ever built from it. */
int refresh_resolve(pb_db *db, const char *org_id, const char *ref, refresh_target *out, char *err);

/* Checks a POST .../refreshes body: {} or {"notifyOption"} or enhanced-refresh options
 * (type, commitMode, objects, retryCount, maxParallelism, applyRefreshPolicy,
 * effectiveDate, timeout) plus pbiport's "wait_timeout". PB_EINVAL with a message. */
int refresh_options_check(const struct json_t *body, char *err);

/* Queues a refresh of ref (trigger "manual", "schedule" or "event"). user_id: the person
 * asking (NULL for schedules); the job belongs to them. Only a "manual" request is checked
 * against a published model's publisher; schedules and events act for the publisher.
 * Enhanced-refresh options make it ask Power BI where the model's workspace is
 * (GET /groups/{id}) and refuse one on shared capacity at once (409
 * enhanced_refresh_needs_capacity); when Power BI cannot be asked, the job asks and says so.
 * *status: 202 with {job_id, status_url, model_ref, joined}, or 400/404/409 with an error
 * body in *reply (409 invalid_powerbi_id: the model's stored Power BI ids are not GUIDs). */
int refresh_submit(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ref,
		   const struct json_t *body, const char *trigger, int *status, struct json_t **reply, char *err);

/* GET .../refreshes: {"refreshes":[...], "powerbi_history": bool, "powerbi_error"?}: the
 * refreshes pbiport ran merged with Power BI's history (matched by request id). */
int refresh_history(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ref,
		    int *status, struct json_t **reply, char *err);

/* PUT .../refresh-schedule {"schedule": "<cron or preset>" | null}: sets or clears it.
 * *reply {"model_ref","schedule","next_run_at"}; 400 for a bad schedule (an empty text too:
 * null or DELETE removes a schedule) or a model without credentials. */
int refresh_schedule_put(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ref,
			 const struct json_t *body, int *status, struct json_t **reply, char *err);
int refresh_schedule_get(pb_db *db, const char *org_id, const char *ref, int *status, struct json_t **reply, char *err);
/* DELETE .../refresh-schedule (and PUT with null): removes it, whatever credentials the model
 * still has; a model published by another user answers 403. *reply as for PUT. */
int refresh_schedule_delete(pb_db *db, const char *org_id, const char *user_id, const char *ref, int *status,
			    struct json_t **reply, char *err);

/* POST /api/events: {"type":"data_product.updated","data_product_id":...} or
 * {"events":[...]}: refreshes every semantic model downstream of the data products in the
 * lineage graph, once each; the jobs belong to user_id. *reply {"jobs":[{job_id, model_ref, name, joined}],
 * "skipped":[{model_ref, reason}]}, *status 202 (400/404 with an error body). */
int refresh_events(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
		   const struct json_t *body, int *status, struct json_t **reply, char *err);

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
