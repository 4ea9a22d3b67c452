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
/* <PBIPORT_PUBLIC_URL>/powerbi/callback (or built from the request's Host). *out is new. */
int powerbi_redirect_uri(struct req *r, char **out);
/* Publish (handlers/powerbi_publish.c, powerbi_workspaces.c) */
int api_powerbi_publish_post(struct req *r);
int api_powerbi_models_get(struct req *r);
int api_powerbi_workspaces_get(struct req *r);
int api_powerbi_connections_get(struct req *r);

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

#endif
