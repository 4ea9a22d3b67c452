/* THE route table: every endpoint, what it needs, and who answers it.
 * The runtime (runtime/fcgi.c pb_handle) enforces role, query parameters, body limit
 * and content type from these rows before the handler runs. */
#include "handlers/handlers.h"

#include "core/store/identity.h"

static const char *const contract_types[] = {
	"application/yaml", "application/x-yaml", "text/yaml", "application/json", NULL,
};
static const char *const tmdl_query[] = { "type", "host", "warehouse", "database", "http_path", "catalog", "schema",
					   "mode", NULL };
static const char *const json_types[] = { "application/json", NULL };
/* push rows: a JSON array, NDJSON or CSV with a header row */
static const char *const rows_types[] = {
	"application/json", "application/x-ndjson", "application/ndjson", "application/jsonl", "text/csv", NULL,
};
static const char *const jobs_query[] = { "kind", "state", "limit", "cursor", NULL };
static const char *const agreements_query[] = { "data_product", "state", "limit", "cursor", NULL };
static const char *const lineage_query[] = { "node", "depth", "format", NULL };
static const char *const assets_query[] = { "type", "q", NULL };
static const char *const pbi_connections_query[] = { "output_port", "http_path", NULL };
static const char *const connect_query[] = { "return_to", "prompt", "login_hint", NULL };
/* everything Entra may append to the redirect URI */
static const char *const callback_query[] = {
	"code", "state", "error", "error_subcode", "error_description", "error_uri", "error_codes", "session_state",
	"client_info", "iss", "admin_consent", "scope", "trace_id", "correlation_id", "timestamp", NULL,
};

/* page forms: a pasted contract (urlencoded) or an uploaded file (multipart) */
static const char *const form_types[] = { "application/x-www-form-urlencoded", "multipart/form-data", NULL };
static const char *const home_query[] = { "q", NULL };
static const char *const power_bi_query[] = { "http_path", NULL };
static const char *const jobs_page_query[] = { "cursor", NULL };
static const char *const profile_query[] = { "disconnected", NULL };
static const char *const settings_query[] = { "saved", NULL };

static const struct route routes[] = {
	/* method  pattern                        handler               role             body limit         content types   query */
	{ "GET",    "/healthz",                   health_get,           PB_ROLE_NONE,   0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/metrics",                   metrics_get,          PB_ROLE_NONE,   0,                 NULL,           NULL,       ROUTE_READ_ONLY | ROUTE_METRICS_FLUSH },
	{ "POST",   "/api/data-products",         data_products_import, PB_ROLE_MEMBER, ROUTE_BODY_CONFIG, contract_types, NULL,       0 },
	{ "GET",    "/api/data-products",         data_products_list,   PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/api/data-products/{id}",    data_products_get,    PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "DELETE", "/api/data-products/{id}",    data_products_delete, PB_ROLE_OWNER,  0,                 NULL,           NULL,       0 },
	{ "GET",    "/api/output-ports/{id}",     output_ports_get,     PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/api/output-ports/{id}/tmdl", output_ports_tmdl,   PB_ROLE_MEMBER, 0,                 NULL,           tmdl_query, 0 },
	{ "GET",    "/api/jobs",                  jobs_list_handler,    PB_ROLE_MEMBER, 0,                 NULL,           jobs_query, ROUTE_READ_ONLY },
	{ "GET",    "/api/jobs/{id}",             jobs_get_handler,     PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "POST",   "/api/jobs/{id}/cancel",      jobs_cancel_handler,  PB_ROLE_MEMBER, 4096,              json_types,     NULL,       ROUTE_EMPTY_BODY_OK },
	{ "GET",    "/api/agreements",            agreements_list_handler, PB_ROLE_MEMBER, 0,              NULL,           agreements_query, ROUTE_READ_ONLY },
	{ "GET",    "/api/agreements/{id}",       agreements_get_handler, PB_ROLE_MEMBER, 0,               NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/api/lineage",               lineage_get,          PB_ROLE_MEMBER, 0,                 NULL,           lineage_query, 0 },
	{ "GET",    "/api/settings/powerbi",      powerbi_settings_get, PB_ROLE_OWNER,  0,                 NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "PUT",    "/api/settings/powerbi",      powerbi_settings_put, PB_ROLE_OWNER,  PB_SETTINGS_BODY_MAX, json_types,     NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/api/settings/powerbi/test", powerbi_settings_test, PB_ROLE_OWNER, 0,                 NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/powerbi/connect",           powerbi_connect,      PB_ROLE_MEMBER, 0,                 NULL,           connect_query, ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/powerbi/callback",          powerbi_callback,     PB_ROLE_MEMBER, 0,                 NULL,           callback_query, ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/api/me/powerbi-connections", me_connections_list, PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/api/me/powerbi-connections/check", me_connections_check, PB_ROLE_MEMBER, 0,          NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "DELETE", "/api/me/powerbi-connections/{id}", me_connections_delete, PB_ROLE_MEMBER, 0,          NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/api/powerbi/workspaces",    powerbi_workspaces_get, PB_ROLE_MEMBER, 0,               NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/api/powerbi/connections",   powerbi_connections_get, PB_ROLE_MEMBER, 0,              NULL,           pbi_connections_query, ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/api/output-ports/{id}/powerbi-publish", powerbi_publish_post, PB_ROLE_MEMBER, 64 * 1024, json_types, NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/api/output-ports/{id}/powerbi-models", powerbi_models_get, PB_ROLE_MEMBER, 0,        NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/api/integrations",          integrations_create_handler, PB_ROLE_OWNER, 256 * 1024,      json_types,     NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "GET",    "/api/integrations",          integrations_list_handler, PB_ROLE_OWNER, 0,                 NULL,           NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "POST",   "/api/integrations/test",     integrations_test_unsaved_handler, PB_ROLE_OWNER, 64 * 1024, json_types,     NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "GET",    "/api/integrations/{id}",     integrations_get_handler, PB_ROLE_OWNER, 0,                  NULL,           NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "PUT",    "/api/integrations/{id}",     integrations_put_handler, PB_ROLE_OWNER, 256 * 1024,         json_types,     NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "DELETE", "/api/integrations/{id}",     integrations_delete_handler, PB_ROLE_OWNER, 0,               NULL,           NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "POST",   "/api/integrations/{id}/runs", integration_runs_post_handler, PB_ROLE_OWNER, 0,            NULL,           NULL,       ROUTE_FEATURE_INGESTIONS | ROUTE_EMPTY_BODY_OK },
	{ "GET",    "/api/integrations/{id}/runs", integration_runs_list_handler, PB_ROLE_OWNER, 0,            NULL,           NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "POST",   "/api/integrations/{id}/test", integration_test_handler, PB_ROLE_OWNER, 0,                 NULL,           NULL,       ROUTE_FEATURE_INGESTIONS | ROUTE_EMPTY_BODY_OK },
	{ "GET",    "/api/assets",                assets_list_handler,  PB_ROLE_MEMBER, 0,                 NULL,           assets_query, ROUTE_FEATURE_INGESTIONS },
	{ "GET",    "/api/assets/{id}",           assets_get_handler,   PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "POST",   "/api/data-products/from-asset", data_products_from_asset_handler, PB_ROLE_MEMBER, 64 * 1024, json_types, NULL,    ROUTE_FEATURE_INGESTIONS },
	{ "POST",   "/api/semantic-models/{id}/refreshes", refresh_post_handler, PB_ROLE_MEMBER, 64 * 1024, json_types, NULL,   ROUTE_EMPTY_BODY_OK },
	{ "GET",    "/api/semantic-models/{id}/refreshes", refresh_list_handler, PB_ROLE_MEMBER, 0,         NULL,       NULL,   0 },
	{ "PUT",    "/api/semantic-models/{id}/refresh-schedule", refresh_schedule_put_handler, PB_ROLE_MEMBER, 4096, json_types, NULL, 0 },
	{ "GET",    "/api/semantic-models/{id}/refresh-schedule", refresh_schedule_get_handler, PB_ROLE_MEMBER, 0, NULL,    NULL,   0 },
	{ "DELETE", "/api/semantic-models/{id}/refresh-schedule", refresh_schedule_delete_handler, PB_ROLE_MEMBER, 0, NULL, NULL, 0 },
	{ "POST",   "/api/events",                events_post_handler,  PB_ROLE_MEMBER, 64 * 1024,         json_types,     NULL,       0 },
	{ "POST",   "/api/push-connections",      push_connections_create_handler, PB_ROLE_MEMBER, 64 * 1024, json_types,  NULL,       0 },
	{ "GET",    "/api/push-connections",      push_connections_list_handler, PB_ROLE_MEMBER, 0,        NULL,           NULL,       0 },
	{ "DELETE", "/api/push-connections/{id}", push_connections_delete_handler, PB_ROLE_MEMBER, 0,      NULL,           NULL,       0 },
	{ "POST",   "/api/push-datasets",         push_datasets_create_handler, PB_ROLE_MEMBER, 1024 * 1024, json_types,   NULL,       0 },
	{ "GET",    "/api/push-datasets",         push_datasets_list_handler, PB_ROLE_MEMBER, 0,           NULL,           NULL,       0 },
	{ "GET",    "/api/push-datasets/{id}",    push_datasets_get_handler, PB_ROLE_MEMBER, 0,            NULL,           NULL,       0 },
	{ "DELETE", "/api/push-datasets/{id}",    push_datasets_delete_handler, PB_ROLE_MEMBER, 0,         NULL,           NULL,       0 },
	/* its own body bound (PB_PUSH_BODY_MAX, = @STREAM_BODY@ in the web server configs) */
	{ "POST",   "/api/push-datasets/{id}/tables/{table}/rows", push_rows_post_handler, PB_ROLE_MEMBER, PB_PUSH_BODY_MAX, rows_types, NULL, ROUTE_STREAM_BODY },
	{ "DELETE", "/api/push-datasets/{id}/tables/{table}/rows", push_rows_delete_handler, PB_ROLE_MEMBER, 0, NULL,  NULL,       0 },

	/* web pages (handlers/pages_*.c): HTML failures, CSRF-checked forms (ROUTE_PAGE) */
	{ "GET",    "/",                          pages_home,           PB_ROLE_MEMBER, 0,                 NULL,           home_query, ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "GET",    "/data-products/new",         pages_product_new,    PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "POST",   "/data-products/new",         pages_product_create, PB_ROLE_MEMBER, ROUTE_BODY_CONFIG, form_types,     NULL,       ROUTE_PAGE },
	{ "GET",    "/data-products/{id}",        pages_product,        PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "GET",    "/output-ports/{id}/power-bi", pages_power_bi,      PB_ROLE_MEMBER, 0,                 NULL,           power_bi_query, ROUTE_PAGE | ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/output-ports/{id}/power-bi", pages_power_bi_submit, PB_ROLE_MEMBER, 64 * 1024,       form_types,     NULL,       ROUTE_PAGE | ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/jobs",                      pages_jobs,           PB_ROLE_MEMBER, 0,                 NULL,           jobs_page_query, ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "POST",   "/jobs",                      pages_jobs_cancel,    PB_ROLE_MEMBER, 4096,              form_types,     NULL,       ROUTE_PAGE },
	{ "GET",    "/jobs/{id}",                 pages_job,            PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "POST",   "/jobs/{id}",                 pages_job_cancel,     PB_ROLE_MEMBER, 4096,              form_types,     NULL,       ROUTE_PAGE },
	{ "GET",    "/profile/power-bi",          pages_profile_power_bi, PB_ROLE_MEMBER, 0,               NULL,           profile_query, ROUTE_PAGE },
	{ "POST",   "/profile/power-bi",          pages_profile_power_bi_post, PB_ROLE_MEMBER, 4096,       form_types,     NULL,       ROUTE_PAGE },
	{ "GET",    "/settings/power-bi",         pages_settings_power_bi, PB_ROLE_OWNER, 0,               NULL,           settings_query, ROUTE_PAGE | ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/settings/power-bi",         pages_settings_power_bi_post, PB_ROLE_OWNER, PB_SETTINGS_BODY_MAX, form_types, NULL, ROUTE_PAGE | ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/static/{name}",             pages_static,         PB_ROLE_NONE,   0,                 NULL,           NULL,       ROUTE_PAGE },
};

const struct pb_app pb_app = {
	.routes = routes,
	.nroutes = sizeof routes / sizeof routes[0],
	.auth = { identity_user_by_name, identity_token_by_id },
	.page_chrome = pages_chrome,
};
