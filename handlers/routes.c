/* THE route table: every endpoint, what it needs, and who answers it.
 * The runtime (runtime/fcgi.c pb_handle) enforces role, query parameters, body limit
 * and content type from these rows before the handler runs. */
#include "handlers/handlers.h"

#include "core/store/identity.h"
#include "core/store/sessions.h"

static const char *const contract_types[] = {
	"application/yaml", "application/x-yaml", "text/yaml", "application/json", NULL,
};
/* the values a port's server may lack, by the names the sources' descriptions give them
 * (handlers/output_ports.c) */
static const char *const tmdl_query[] = { "type", "host", "port", "warehouse", "database", "http_path", "catalog",
					   "schema", "project", "dataset", "billing_project", "service_name", "mode", NULL };
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

/* page forms: a pasted contract (urlencoded) or an uploaded file (multipart); also the sign-out form */
static const char *const form_types[] = { "application/x-www-form-urlencoded", "multipart/form-data", NULL };
static const char *const home_query[] = { "q", NULL };
static const char *const wizard_query[] = { "schedule", NULL };
static const char *const lineage_svg_query[] = { "node", "depth", NULL };
static const char *const signin_query[] = { "return_to", "prompt", "login_hint", NULL };
static const char *const signout_query[] = { "return_to", NULL };
static const char *const power_bi_query[] = { "http_path", NULL };
static const char *const jobs_page_query[] = { "cursor", NULL };
static const char *const profile_query[] = { "disconnected", NULL };
static const char *const settings_query[] = { "saved", NULL };

static const struct route routes[] = {
	/* method  pattern                        handler               role             body limit         content types   query */
	{ "GET",    "/healthz",                   api_health_get,           PB_ROLE_NONE,   0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/metrics",                   api_metrics_get,          PB_ROLE_NONE,   0,                 NULL,           NULL,       ROUTE_READ_ONLY | ROUTE_METRICS_FLUSH },
	{ "POST",   "/api/data-products",         api_data_products_import, PB_ROLE_MEMBER, ROUTE_BODY_CONFIG, contract_types, NULL,       0 },
	{ "GET",    "/api/data-products",         api_data_products_list,   PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/api/data-products/{id}",    api_data_products_get,    PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "DELETE", "/api/data-products/{id}",    api_data_products_delete, PB_ROLE_OWNER,  0,                 NULL,           NULL,       0 },
	{ "GET",    "/api/output-ports/{id}",     api_output_ports_get,     PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/api/output-ports/{id}/tmdl", api_output_ports_tmdl,   PB_ROLE_MEMBER, 0,                 NULL,           tmdl_query, ROUTE_READ_ONLY },
	{ "GET",    "/api/jobs",                  api_jobs_list,    PB_ROLE_MEMBER, 0,                 NULL,           jobs_query, ROUTE_READ_ONLY },
	{ "GET",    "/api/jobs/{id}",             api_jobs_get,     PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "POST",   "/api/jobs/{id}/cancel",      api_jobs_cancel,  PB_ROLE_MEMBER, PB_BODY_SMALL_MAX,              json_types,     NULL,       ROUTE_EMPTY_BODY_OK },
	{ "GET",    "/api/agreements",            api_agreements_list, PB_ROLE_MEMBER, 0,              NULL,           agreements_query, ROUTE_READ_ONLY },
	{ "GET",    "/api/agreements/{id}",       api_agreements_get, PB_ROLE_MEMBER, 0,               NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/api/lineage",               api_lineage_get,          PB_ROLE_MEMBER, 0,                 NULL,           lineage_query, ROUTE_READ_ONLY },
	{ "GET",    "/api/settings/powerbi",      api_powerbi_settings_get, PB_ROLE_OWNER,  0,                 NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB | ROUTE_READ_ONLY },
	{ "PUT",    "/api/settings/powerbi",      api_powerbi_settings_put, PB_ROLE_OWNER,  PB_SETTINGS_BODY_MAX, json_types,     NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/api/settings/powerbi/test", api_powerbi_settings_test, PB_ROLE_OWNER, 0,                 NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/powerbi/connect",           api_powerbi_connect,      PB_ROLE_MEMBER, 0,                 NULL,           connect_query, ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/powerbi/callback",          api_powerbi_callback,     PB_ROLE_MEMBER, 0,                 NULL,           callback_query, ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/signin",                    api_signin_start,     PB_ROLE_NONE,   0,                 NULL,           signin_query, ROUTE_FEATURE_SSO },
	{ "GET",    "/signin/callback",           api_signin_callback,  PB_ROLE_NONE,   0,                 NULL,           callback_query, ROUTE_FEATURE_SSO },
	{ "POST",   "/signout",                   api_signout,          PB_ROLE_NONE,   PB_BODY_SMALL_MAX, form_types,     signout_query, ROUTE_EMPTY_BODY_OK },
	{ "GET",    "/api/me/sessions",           api_me_sessions_list, PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "DELETE", "/api/me/sessions/{id}",      api_me_sessions_delete, PB_ROLE_MEMBER, 0,               NULL,           NULL,       0 },
	{ "GET",    "/api/settings/signin",       api_signin_settings_get, PB_ROLE_OWNER, 0,               NULL,           NULL,       ROUTE_READ_ONLY },
	{ "PUT",    "/api/settings/signin",       api_signin_settings_put, PB_ROLE_OWNER, PB_BODY_SMALL_MAX, json_types,   NULL,       0 },
	{ "GET",    "/api/me/powerbi-connections", api_me_connections_list, PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/api/me/powerbi-connections/check", api_me_connections_check, PB_ROLE_MEMBER, 0,          NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "DELETE", "/api/me/powerbi-connections/{id}", api_me_connections_delete, PB_ROLE_MEMBER, 0,          NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/api/powerbi/workspaces",    api_powerbi_workspaces_get, PB_ROLE_MEMBER, 0,               NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/api/powerbi/connections",   api_powerbi_connections_get, PB_ROLE_MEMBER, 0,              NULL,           pbi_connections_query, ROUTE_FEATURE_POWERBI_WEB },
	/* on-premises data gateways (handlers/powerbi_gateways.c, docs/publish.md) */
	{ "GET",    "/api/powerbi/gateways",      api_powerbi_gateways_get, PB_ROLE_MEMBER, 0,                 NULL,           pbi_connections_query, ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/api/output-ports/{id}/powerbi-publish", api_powerbi_publish_post, PB_ROLE_MEMBER, PB_BODY_JSON_MAX, json_types, NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/api/output-ports/{id}/powerbi-models", api_powerbi_models_get, PB_ROLE_MEMBER, 0,        NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	/* the life of a published model (handlers/published_models.c, docs/lifecycle.md) */
	{ "GET",    "/api/published-models/{id}", api_published_models_get, PB_ROLE_MEMBER, 0,             NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB | ROUTE_READ_ONLY },
	{ "PATCH",  "/api/published-models/{id}", api_published_models_patch, PB_ROLE_MEMBER, PB_BODY_SMALL_MAX, json_types, NULL,     ROUTE_FEATURE_POWERBI_WEB },
	{ "DELETE", "/api/published-models/{id}", api_published_models_delete, PB_ROLE_MEMBER, PB_BODY_SMALL_MAX, json_types, NULL,    ROUTE_FEATURE_POWERBI_WEB | ROUTE_EMPTY_BODY_OK },
	{ "POST",   "/api/published-models/{id}/update", api_published_models_update, PB_ROLE_MEMBER, PB_BODY_SMALL_MAX, json_types, NULL, ROUTE_FEATURE_POWERBI_WEB | ROUTE_EMPTY_BODY_OK },
	{ "GET",    "/api/published-models/{id}/drift", api_published_models_drift, PB_ROLE_MEMBER, 0,     NULL,           NULL,       ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/api/drift",                 api_drift_list,           PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/api/data-products/{id}/drift", api_data_products_drift, PB_ROLE_MEMBER, 0,               NULL,           NULL,       ROUTE_READ_ONLY },
	{ "POST",   "/api/integrations",          api_integrations_create, PB_ROLE_OWNER, PB_BODY_INTEGRATION_MAX,      json_types,     NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "GET",    "/api/integrations",          api_integrations_list, PB_ROLE_OWNER, 0,                 NULL,           NULL,       ROUTE_FEATURE_INGESTIONS | ROUTE_READ_ONLY },
	{ "POST",   "/api/integrations/test",     api_integrations_test_unsaved, PB_ROLE_OWNER, PB_BODY_JSON_MAX, json_types,     NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "GET",    "/api/integrations/{id}",     api_integrations_get, PB_ROLE_OWNER, 0,                  NULL,           NULL,       ROUTE_FEATURE_INGESTIONS | ROUTE_READ_ONLY },
	{ "PUT",    "/api/integrations/{id}",     api_integrations_put, PB_ROLE_OWNER, PB_BODY_INTEGRATION_MAX,         json_types,     NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "DELETE", "/api/integrations/{id}",     api_integrations_delete, PB_ROLE_OWNER, 0,               NULL,           NULL,       ROUTE_FEATURE_INGESTIONS },
	{ "POST",   "/api/integrations/{id}/runs", api_integration_runs_post, PB_ROLE_OWNER, 0,            NULL,           NULL,       ROUTE_FEATURE_INGESTIONS | ROUTE_EMPTY_BODY_OK },
	{ "GET",    "/api/integrations/{id}/runs", api_integration_runs_list, PB_ROLE_OWNER, 0,            NULL,           NULL,       ROUTE_FEATURE_INGESTIONS | ROUTE_READ_ONLY },
	{ "POST",   "/api/integrations/{id}/test", api_integration_test, PB_ROLE_OWNER, 0,                 NULL,           NULL,       ROUTE_FEATURE_INGESTIONS | ROUTE_EMPTY_BODY_OK },
	{ "GET",    "/api/assets",                api_assets_list,  PB_ROLE_MEMBER, 0,                 NULL,           assets_query, ROUTE_FEATURE_INGESTIONS | ROUTE_READ_ONLY },
	{ "GET",    "/api/assets/{id}",           api_assets_get,   PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_FEATURE_INGESTIONS | ROUTE_READ_ONLY },
	{ "POST",   "/api/data-products/from-asset", api_data_products_from_asset, PB_ROLE_MEMBER, PB_BODY_JSON_MAX, json_types, NULL,    ROUTE_FEATURE_INGESTIONS },
	{ "POST",   "/api/semantic-models/{id}/refreshes", api_refresh_post, PB_ROLE_MEMBER, PB_BODY_JSON_MAX, json_types, NULL,   ROUTE_EMPTY_BODY_OK },
	{ "GET",    "/api/semantic-models/{id}/refreshes", api_refresh_list, PB_ROLE_MEMBER, 0,         NULL,       NULL,   0 },
	{ "PUT",    "/api/semantic-models/{id}/refresh-schedule", api_refresh_schedule_put, PB_ROLE_MEMBER, PB_BODY_SMALL_MAX, json_types, NULL, 0 },
	{ "GET",    "/api/semantic-models/{id}/refresh-schedule", api_refresh_schedule_get, PB_ROLE_MEMBER, 0, NULL,    NULL,   ROUTE_READ_ONLY },
	{ "DELETE", "/api/semantic-models/{id}/refresh-schedule", api_refresh_schedule_delete, PB_ROLE_MEMBER, 0, NULL, NULL, 0 },
	{ "POST",   "/api/events",                api_events_post,  PB_ROLE_MEMBER, PB_BODY_JSON_MAX,         json_types,     NULL,       0 },
	{ "POST",   "/api/push-connections",      api_push_connections_create, PB_ROLE_MEMBER, PB_BODY_JSON_MAX, json_types,  NULL,       0 },
	{ "GET",    "/api/push-connections",      api_push_connections_list, PB_ROLE_MEMBER, 0,        NULL,           NULL,       ROUTE_READ_ONLY },
	{ "DELETE", "/api/push-connections/{id}", api_push_connections_delete, PB_ROLE_MEMBER, 0,      NULL,           NULL,       0 },
	{ "POST",   "/api/push-datasets",         api_push_datasets_create, PB_ROLE_MEMBER, PB_BODY_PUSH_DATASET_MAX, json_types,   NULL,       0 },
	{ "GET",    "/api/push-datasets",         api_push_datasets_list, PB_ROLE_MEMBER, 0,           NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/api/push-datasets/{id}",    api_push_datasets_get, PB_ROLE_MEMBER, 0,            NULL,           NULL,       ROUTE_READ_ONLY },
	{ "DELETE", "/api/push-datasets/{id}",    api_push_datasets_delete, PB_ROLE_MEMBER, 0,         NULL,           NULL,       0 },
	/* its own body bound (PB_PUSH_BODY_MAX, = @STREAM_BODY@ in the web server configs) */
	{ "POST",   "/api/push-datasets/{id}/tables/{table}/rows", api_push_rows_post, PB_ROLE_MEMBER, PB_PUSH_BODY_MAX, rows_types, NULL, ROUTE_STREAM_BODY },
	{ "DELETE", "/api/push-datasets/{id}/tables/{table}/rows", api_push_rows_delete, PB_ROLE_MEMBER, 0, NULL,  NULL,       0 },
	/* webhooks (handlers/webhooks.c): organization owners */
	{ "POST",   "/api/webhooks",              api_webhooks_create,  PB_ROLE_OWNER,  PB_BODY_WEBHOOK_MAX, json_types,   NULL,       0 },
	{ "GET",    "/api/webhooks",              api_webhooks_list,    PB_ROLE_OWNER,  0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "GET",    "/api/webhooks/{id}",         api_webhooks_get,     PB_ROLE_OWNER,  0,                 NULL,           NULL,       ROUTE_READ_ONLY },
	{ "PATCH",  "/api/webhooks/{id}",         api_webhooks_patch,   PB_ROLE_OWNER,  PB_BODY_WEBHOOK_MAX, json_types,   NULL,       0 },
	{ "DELETE", "/api/webhooks/{id}",         api_webhooks_delete,  PB_ROLE_OWNER,  0,                 NULL,           NULL,       0 },
	{ "GET",    "/api/webhooks/{id}/deliveries", api_webhook_deliveries_list, PB_ROLE_OWNER, 0,        NULL,           NULL,       ROUTE_READ_ONLY },
	{ "POST",   "/api/webhooks/{id}/test",    api_webhook_test,     PB_ROLE_OWNER,  0,                 NULL,           NULL,       ROUTE_EMPTY_BODY_OK },

	/* web pages (handlers/pages_*.c): HTML failures, CSRF-checked forms (ROUTE_PAGE) */
	{ "GET",    "/",                          pages_home,           PB_ROLE_MEMBER, 0,                 NULL,           home_query, ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "GET",    "/data-products/new",         pages_product_new,    PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "POST",   "/data-products/new",         pages_product_create, PB_ROLE_MEMBER, ROUTE_BODY_CONFIG, form_types,     NULL,       ROUTE_PAGE },
	{ "GET",    "/data-products/{id}",        pages_product,        PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "GET",    "/lineage.svg",               pages_lineage_svg,    PB_ROLE_MEMBER, 0,                 NULL,           lineage_svg_query, ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "GET",    "/assets",                    pages_assets,         PB_ROLE_MEMBER, 0,                 NULL,           assets_query, ROUTE_PAGE | ROUTE_READ_ONLY | ROUTE_FEATURE_INGESTIONS },
	{ "GET",    "/assets/{id}",               pages_asset,          PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY | ROUTE_FEATURE_INGESTIONS },
	{ "POST",   "/assets/{id}",               pages_asset_import,   PB_ROLE_MEMBER, PB_BODY_PAGE_FORM_MAX, form_types,     NULL,       ROUTE_PAGE | ROUTE_FEATURE_INGESTIONS },
	{ "GET",    "/settings/integrations",     pages_integrations,   PB_ROLE_OWNER,  0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY | ROUTE_FEATURE_INGESTIONS },
	{ "GET",    "/settings/integrations/new", pages_integration_new, PB_ROLE_OWNER, 0,                 NULL,           wizard_query, ROUTE_PAGE | ROUTE_READ_ONLY | ROUTE_FEATURE_INGESTIONS },
	{ "POST",   "/settings/integrations/new", pages_integration_create, PB_ROLE_OWNER, PB_BODY_WIZARD_MAX, form_types,     NULL,       ROUTE_PAGE | ROUTE_FEATURE_INGESTIONS },
	{ "GET",    "/settings/integrations/{id}", pages_integration,   PB_ROLE_OWNER,  0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY | ROUTE_FEATURE_INGESTIONS },
	{ "POST",   "/settings/integrations/{id}", pages_integration_action, PB_ROLE_OWNER, PB_BODY_PAGE_FORM_MAX, form_types,     NULL,       ROUTE_PAGE | ROUTE_FEATURE_INGESTIONS },
	{ "GET",    "/semantic-models/{id}",      pages_semantic_model, PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_PAGE },
	{ "POST",   "/semantic-models/{id}",      pages_semantic_model_action, PB_ROLE_MEMBER, PB_BODY_PAGE_FORM_MAX, form_types,   NULL,       ROUTE_PAGE },
	{ "GET",    "/published-models/{id}",     pages_published_model, PB_ROLE_MEMBER, 0,                NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY | ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/published-models/{id}",     pages_published_model_action, PB_ROLE_MEMBER, PB_BODY_PAGE_FORM_MAX, form_types, NULL, ROUTE_PAGE | ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/push-datasets",             pages_push_datasets,  PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "GET",    "/output-ports/{id}/power-bi", pages_power_bi,      PB_ROLE_MEMBER, 0,                 NULL,           power_bi_query, ROUTE_PAGE | ROUTE_FEATURE_POWERBI_WEB },
	{ "POST",   "/output-ports/{id}/power-bi", pages_power_bi_submit, PB_ROLE_MEMBER, PB_BODY_JSON_MAX, form_types,     NULL,       ROUTE_PAGE | ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/jobs",                      pages_jobs,           PB_ROLE_MEMBER, 0,                 NULL,           jobs_page_query, ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "POST",   "/jobs",                      pages_jobs_cancel,    PB_ROLE_MEMBER, PB_BODY_SMALL_MAX, form_types,     NULL,       ROUTE_PAGE },
	{ "GET",    "/jobs/{id}",                 pages_job,            PB_ROLE_MEMBER, 0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_READ_ONLY },
	{ "POST",   "/jobs/{id}",                 pages_job_cancel,     PB_ROLE_MEMBER, PB_BODY_SMALL_MAX, form_types,     NULL,       ROUTE_PAGE },
	{ "GET",    "/profile/power-bi",          pages_profile_power_bi, PB_ROLE_MEMBER, 0,               NULL,           profile_query, ROUTE_PAGE },
	{ "POST",   "/profile/power-bi",          pages_profile_power_bi_post, PB_ROLE_MEMBER, PB_BODY_SMALL_MAX, form_types,     NULL,       ROUTE_PAGE },
	{ "GET",    "/settings/power-bi",         pages_settings_power_bi, PB_ROLE_OWNER, 0,               NULL,           settings_query, ROUTE_PAGE | ROUTE_FEATURE_POWERBI_WEB | ROUTE_READ_ONLY },
	{ "POST",   "/settings/power-bi",         pages_settings_power_bi_post, PB_ROLE_OWNER, PB_SETTINGS_BODY_MAX, form_types, NULL, ROUTE_PAGE | ROUTE_FEATURE_POWERBI_WEB },
	{ "GET",    "/static/{name}",             pages_static,         PB_ROLE_NONE,   0,                 NULL,           NULL,       ROUTE_PAGE | ROUTE_NO_DATABASE },
};

const struct pb_app pb_app = {
	.routes = routes,
	.nroutes = sizeof routes / sizeof routes[0],
	.auth = { .user_by_name = identity_user_by_name, .token_by_id = identity_token_by_id,
		  .session_by_hash = sessions_identify, .session_seen = sessions_seen },
	.page_chrome = pages_chrome,
	.signin_path = "/signin",
	.prefetch = api_prefetch,
};
