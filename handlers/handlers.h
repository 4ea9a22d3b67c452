/* Endpoint handlers: each parses, authorizes (beyond what its route row declares),
 * calls core, and replies. The route table in handlers/routes.c says which runs when. */
#ifndef PBIPORT_HANDLERS_H
#define PBIPORT_HANDLERS_H

#include "runtime/fcgi.h"
#include "runtime/request.h"

extern const struct pb_app pb_app;   /* routes + identity lookups, for pb_serve() */

int api_health_get(struct req *r);
int api_metrics_get(struct req *r);
int api_data_products_import(struct req *r);
int api_data_products_list(struct req *r);
int api_data_products_get(struct req *r);
/* pb_app.prefetch: the first read of the read-only routes that name one. */
void api_prefetch(struct req *r, const char *org_id);
int api_data_products_delete(struct req *r);
int api_output_ports_get(struct req *r);
int api_output_ports_tmdl(struct req *r);
int api_jobs_get(struct req *r);
int api_jobs_list(struct req *r);
int api_jobs_cancel(struct req *r);
struct pb_job;
/* The job id if the caller may see it: their own, or any of the organization's for an owner
 * (*out new: job_free). Anyone else's is PB_ENOTFOUND with r->fail set, like a missing one. */
int jobs_visible(struct req *r, const char *id, struct pb_job **out);
/* job_json plus "phases", the phase history. New reference; NULL on failure (*rc set). */
struct json_t *jobs_detail_json(struct req *r, const struct pb_job *j, int *rc);
int api_agreements_list(struct req *r);
int api_agreements_get(struct req *r);
int api_lineage_get(struct req *r);
/* Connect Power BI (handlers/powerbi_settings.c, powerbi_connect.c, me_connections.c) */
int api_powerbi_settings_get(struct req *r);
int api_powerbi_settings_put(struct req *r);
int api_powerbi_settings_test(struct req *r);
int api_powerbi_connect(struct req *r);
int api_powerbi_callback(struct req *r);
int api_me_connections_list(struct req *r);
int api_me_connections_delete(struct req *r);
int api_me_connections_check(struct req *r);
/* <PBIPORT_PUBLIC_URL><path> (or built from the request's scheme and Host). *out is new. */
int site_url(struct req *r, const char *path, char **out);
/* site_url(r, "/powerbi/callback"). */
int powerbi_redirect_uri(struct req *r, char **out);
/* Sign in with Microsoft and sessions (handlers/signin.c) */
int api_signin_start(struct req *r);
int api_signin_callback(struct req *r);
int api_signout(struct req *r);
int api_me_sessions_list(struct req *r);
int api_me_sessions_delete(struct req *r);
int api_signin_settings_get(struct req *r);
int api_signin_settings_put(struct req *r);
/* Publish (handlers/powerbi_publish.c, powerbi_workspaces.c) */
int api_powerbi_publish_post(struct req *r);
/* On-premises data gateways (handlers/powerbi_gateways.c) */
int api_powerbi_gateways_get(struct req *r);
int api_powerbi_models_get(struct req *r);
int api_powerbi_workspaces_get(struct req *r);
int api_powerbi_connections_get(struct req *r);
/* The life of a published model (handlers/published_models.c) */
int api_published_models_get(struct req *r);
int api_published_models_patch(struct req *r);
int api_published_models_delete(struct req *r);
int api_published_models_update(struct req *r);
int api_published_models_drift(struct req *r);
int api_drift_list(struct req *r);
int api_data_products_drift(struct req *r);
/* Who asks, as the lifecycle functions take it (core/flow/model_lifecycle.h lc_actor). */
struct lc_actor published_model_actor(const struct req *r);

int api_integrations_create(struct req *r);
int api_integrations_list(struct req *r);
int api_integrations_get(struct req *r);
int api_integrations_put(struct req *r);
int api_integrations_delete(struct req *r);
int api_integration_runs_post(struct req *r);
int api_integration_runs_list(struct req *r);
int api_integration_test(struct req *r);
int api_integrations_test_unsaved(struct req *r);
int api_assets_list(struct req *r);
int api_assets_get(struct req *r);
int api_data_products_from_asset(struct req *r);

/* Refresh and push (handlers/refresh.c, events.c, push.c) */
int api_refresh_post(struct req *r);
int api_refresh_list(struct req *r);
int api_refresh_schedule_put(struct req *r);
int api_refresh_schedule_get(struct req *r);
int api_refresh_schedule_delete(struct req *r);
int api_events_post(struct req *r);
int api_push_connections_create(struct req *r);
int api_push_connections_list(struct req *r);
int api_push_connections_delete(struct req *r);
int api_push_datasets_create(struct req *r);
int api_push_datasets_list(struct req *r);
int api_push_datasets_get(struct req *r);
int api_push_datasets_delete(struct req *r);
int api_push_rows_post(struct req *r);
int api_push_rows_delete(struct req *r);

/* Web pages (handlers/pages_*.c). Each reads through core, builds its view as a JSON object
 * and answers with pages_reply(); their rows are ROUTE_PAGE, so failures come back as HTML
 * error pages and forms are CSRF-checked by the runtime before the handler runs. */
int pages_home(struct req *r);
int pages_product(struct req *r);
int pages_product_new(struct req *r);
int pages_product_create(struct req *r);
int pages_static(struct req *r);
/* handlers/pages_assets.c: /assets, /assets/{id} (POST: Import from Microsoft Fabric), /lineage.svg */
int pages_assets(struct req *r);
int pages_asset(struct req *r);
int pages_asset_import(struct req *r);
int pages_lineage_svg(struct req *r);
/* handlers/pages_import.c: Settings ▸ Integrations (the wizard, Test, Run now, the last 10 runs) */
int pages_integrations(struct req *r);
int pages_integration_new(struct req *r);
int pages_integration_create(struct req *r);
int pages_integration(struct req *r);
int pages_integration_action(struct req *r);
/* handlers/pages_refresh.c: /semantic-models/{id} (Refresh now, schedule, history and chart) */
int pages_semantic_model(struct req *r);
int pages_semantic_model_action(struct req *r);
/* handlers/pages_push.c: /push-datasets */
int pages_push_datasets(struct req *r);
/* handlers/pages_models.c: /published-models/{id} (Preview update, Update model, Check drift,
 * auto-update, Unpublish) */
int pages_published_model(struct req *r);
int pages_published_model_action(struct req *r);
/* The next n run times (ISO-8601 UTC) of a schedule (core/lang/cron.h): *out new JSON array.
 * PB_EINVAL naming the problem for a schedule that does not parse or never runs. */
int pages_next_runs(const char *schedule, int n, struct json_t **out, char *err);
/* The Power BI modal (pages_publish.c), jobs (pages_jobs.c), profile (pages_profile.c),
 * settings (pages_settings.c) */
int pages_power_bi(struct req *r);
int pages_power_bi_submit(struct req *r);
int pages_jobs(struct req *r);
int pages_jobs_cancel(struct req *r);
int pages_job(struct req *r);
int pages_job_cancel(struct req *r);
int pages_profile_power_bi(struct req *r);
int pages_profile_power_bi_post(struct req *r);
int pages_settings_power_bi(struct req *r);
int pages_settings_power_bi_post(struct req *r);
/* The page a browser lands on when GET /powerbi/callback fails with rc (r->fail says why):
 * what went wrong, Try again and the way back to return_to (may be NULL). pbiport's own
 * failures (memory, database) are returned for the error page. */
int pages_connect_failed(struct req *r, int rc, const char *return_to);
/* Adds the organization's name to view.page.user (struct pb_app.page_chrome). */
int pages_chrome(struct req *r, struct json_t *page, char *err);
/* view[key] = {code, message} of f, for a page that shows why something was refused; nothing
 * when f is NULL. PB_ENOMEM when it cannot be added. */
int pages_set_failure(struct json_t *view, const char *key, const pb_failure *f);
/* Renders web/<name>.lua with view (stolen) and answers with status (runtime/page_render.h). */
int pages_reply(struct req *r, const char *name, struct json_t *view, int status);
/* pages_reply for a page that shows why an action was refused: view.error is refused (NULL:
 * nothing, as pages_set_failure). A view NULL, or one refused cannot be added to, is answered
 * as out of memory. */
int pages_reply_refused(struct req *r, const char *name, struct json_t *view, int status, const pb_failure *refused);

/* Webhooks (handlers/webhooks.c) */
int api_webhooks_create(struct req *r);
int api_webhooks_list(struct req *r);
int api_webhooks_get(struct req *r);
int api_webhooks_patch(struct req *r);
int api_webhooks_delete(struct req *r);
int api_webhook_deliveries_list(struct req *r);
int api_webhook_test(struct req *r);

#endif
