#include "core/flow/error_codes.h"

#include <stdbool.h>
#include <string.h>

#include "runtime/fcgi.h"
#include "runtime/util.h"

#define A_ANY "Every request"
#define A_CATALOG "Catalog: data products, output ports, agreements"
#define A_CONNECT "Connecting Power BI: settings, consent, the user's connections"
#define A_SIGNIN "Signing in with Microsoft, sessions"
#define A_PUBLISH "Publish"
#define A_LIFECYCLE "Published models: update, drift, unpublish"
#define A_JOBS "Jobs"
#define A_IMPORT "Import"
#define A_REFRESH "Refresh"
#define A_PUSH "Push datasets"
#define A_WEBHOOKS "Webhooks"
#define A_GATEWAYS "On-premises data gateways"

/* The areas in the order docs/errors.md lists them. */
static const char *const areas[] = { A_ANY, A_CATALOG, A_CONNECT, A_SIGNIN, A_PUBLISH, A_GATEWAYS, A_LIFECYCLE, A_JOBS, A_IMPORT,
					      A_REFRESH, A_PUSH, A_WEBHOOKS };

const pb_error_code pb_error_codes[] = {
	/* ---- every request: the runtime, and what any Microsoft call can end in ---- */
	{ "bad_request", PB_EINVAL, 0, A_ANY, "a parameter, a field of the body or the request itself is missing or not valid; "
	  "the message names it" },
	{ "unauthorized", PB_EINVAL, 401, A_ANY, "no identity: sign in (through the web server, or with Microsoft at "
	  "/signin) or send Authorization: Bearer <token>; an ended session (signed out, idle, past its lifetime) "
	  "says so and its cookie is removed" },
	{ "forbidden", PB_EFORBIDDEN, 0, A_ANY, "the caller's role does not allow this (owner-only endpoints, objects of "
	  "another user)" },
	{ "not_found", PB_ENOTFOUND, 0, A_ANY, "no such endpoint, or no such object in the caller's organization" },
	{ "method_not_allowed", PB_EINVAL, 405, A_ANY, "the path exists but not with this method; Allow lists the ones it "
	  "has" },
	{ "length_required", PB_EINVAL, 411, A_ANY, "a body without Content-Length" },
	{ "payload_too_large", PB_EINVAL, 413, A_ANY, "the body is larger than the route accepts" },
	{ "unsupported_media_type", PB_EINVAL, 415, A_ANY, "the Content-Type is not one the route accepts" },
	{ "request_timeout", PB_EINVAL, 408, A_ANY, "the web server did not receive the request in time" },
	{ "uri_too_long", PB_EINVAL, 414, A_ANY, "the web server refused the request URI as too long" },
	{ "headers_too_large", PB_EINVAL, 431, A_ANY, "the web server refused the request headers as too large" },
	{ "conflict", PB_ECONFLICT, 0, A_ANY, "the request clashes with what exists (a name taken, a state that does not "
	  "allow it); the message says with what" },
	{ "csrf_failed", PB_EFORBIDDEN, 0, A_ANY, "another site sent a request with the browser's own sign-in, or a web "
	  "page's form lacks the token its page signed (missing, expired, another user's or another page's): reload "
	  "the page and send the form again" },
	{ "feature_disabled", PB_ENOTFOUND, 0, A_ANY, "the feature is turned off on this server "
	  "(APPLICATION_POWERBI_WEB_ENABLED, APPLICATION_INGESTIONS_ENABLED, PBIPORT_SSO_* for signing in)" },
	{ "unavailable", PB_EUNAVAIL, 0, A_ANY, "a service pbiport needs (Microsoft, the database, the application "
	  "behind the web server) cannot answer now; try again (Retry-After when known)" },
	{ "throttled", PB_EUNAVAIL, 0, A_ANY, "Microsoft asked to wait (429 / Retry-After); a job waits it out without "
	  "using an attempt, a request answers 503 with Retry-After" },
	{ "outcome_unknown", PB_EUNAVAIL, 0, A_ANY, "a call that is not repeated blindly got no answer: whether it took "
	  "effect is found out before anything is sent again" },
	{ "needs_reconnect", PB_ECONFLICT, 0, A_ANY, "the user's Power BI connection is no longer valid (expired, "
	  "revoked, another app): reconnect Power BI" },
	{ "bad_credentials", PB_EINVAL, 0, A_ANY, "Entra refused the client id, tenant or client secret that was sent or "
	  "stored; the message names where they are kept" },
	{ "powerbi_forbidden", PB_EFORBIDDEN, 0, A_ANY, "Power BI or Fabric refused the identity: a workspace role, a "
	  "permission or a tenant setting is missing; the message names it" },
	{ "powerbi_not_found", PB_ENOTFOUND, 0, A_ANY, "Power BI or Fabric does not know the item, or the identity "
	  "cannot see it" },
	{ "name_taken", PB_ECONFLICT, 0, A_ANY, "an item of that name exists already in Power BI" },
	{ "powerbi_rejected", PB_EUPSTREAM, 0, A_ANY, "Power BI, Fabric or Entra refused the call for a reason that is "
	  "not in the request; the message keeps Microsoft's code and words" },
	{ "internal", PB_EINTERNAL, 0, A_ANY, "pbiport failed; the message gives the request id to find the cause in the "
	  "log" },
	/* ---- connecting Power BI: settings, consent, the user's connections ---- */
	{ "not_configured", PB_ECONFLICT, 0, A_CONNECT, "the organization has no Power BI settings yet (or they name the "
	  "deployment's sign-in app while PBIPORT_SSO_* is unset): an owner saves them, PUT /api/settings/powerbi" },
	{ "not_connected", PB_ECONFLICT, 0, A_CONNECT, "the user has not connected Power BI in this organization (or "
	  "disconnected it): connect through GET /powerbi/connect" },
	{ "consent_declined", PB_EINVAL, 0, A_CONNECT, "the Power BI consent screen was cancelled or declined, or a "
	  "permission pbiport asks for was not granted: connect again and accept them" },
	/* ---- publish ---- */
	{ "port_retired", PB_ECONFLICT, 0, A_PUBLISH, "the output port is retired (its server left the contract): it is "
	  "neither published nor dry-run any more" },
	{ "no_write_role", PB_EFORBIDDEN, 0, A_PUBLISH, "the user's role in the workspace does not allow publishing: it "
	  "needs Contributor, Member or Admin" },
	{ "template_failed", PB_EINTERNAL, 0, A_PUBLISH, "the server's TMDL templates failed for this port (an admin "
	  "template's error, output or limits), not the request; the message names the file and line" },
	{ "credentials_rejected", 0, 0, A_PUBLISH, "the data source refused the credentials given for the new "
	  "connection (connection in the request): publish again with working ones" },
	{ "credentials_missing", 0, 0, A_PUBLISH, "the credentials for the new connection were erased when the job "
	  "ended once already: publish again with them" },
	{ "credentials_unreadable", 0, 0, A_PUBLISH, "the worker cannot open the job's sealed credentials "
	  "(APPLICATION_ENCRYPTION_KEYS missing or changed): publish again" },
	{ "connection_mismatch", 0, 0, A_PUBLISH, "the chosen connection (connection_id) points at another data source "
	  "than the port's: choose one GET /api/powerbi/connections offers" },
	/* ---- on-premises data gateways (docs/publish.md) ---- */
	{ "no_gateway", PB_ECONFLICT, 0, A_GATEWAYS, "no gateway available: the server is on premises (custom property "
	  "powerbi.gateway) and no gateway you may use has a data source for it, or (publishing with credentials) you "
	  "administer no gateway; a gateway admin adds the data source and you as its user" },
	{ "gateway_required", PB_EINVAL, 0, A_GATEWAYS, "more than one gateway could serve the on-premises server: name one "
	  "with gateway_id (GET /api/powerbi/gateways?output_port= lists them)" },
	{ "no_gateway_rights", PB_EFORBIDDEN, 0, A_GATEWAYS, "the gateway refused you: adding a data source needs its admin "
	  "role, binding to a data source needs to be its user" },
	/* ---- publish: sources (templates/tmdl/sources/, docs/publish.md "Sources") ---- */
	{ "source_needs_gateway", PB_ECONFLICT, 0, A_PUBLISH, "the port's source is one Power BI reaches only through an "
	  "on-premises data gateway (its description says gateway_only: Oracle, MySQL): Fabric offers no cloud "
	  "connection for it: mark the server with powerbi.gateway" },
	/* ---- published models: update, drift, unpublish (docs/lifecycle.md) ---- */
	{ "model_unpublished", PB_ECONFLICT, 0, A_LIFECYCLE, "the published model was unpublished or detached: it is "
	  "history, nothing more is done to it (publish the port again for a new model)" },
	{ "model_busy", PB_ECONFLICT, 0, A_LIFECYCLE, "another update or unpublish job is at work on the model (the "
	  "message names it): try again once it has ended" },
	{ "breaking_change", PB_ECONFLICT, 0, A_LIFECYCLE, "the update removes tables, columns or relationships, or "
	  "changes a column's data type (the message names them): send \"allow_breaking\": true to apply it" },
	{ "blocking_reference", PB_ECONFLICT, 0, A_LIFECYCLE, "something an analyst added in Power BI (a measure, a "
	  "calculated column or table) uses a column or table the update removes; the message names both: change it in "
	  "Power BI, or send \"allow_breaking\": true" },
	{ "definition_unreadable", PB_EUPSTREAM, 0, A_LIFECYCLE, "the definition Power BI returned for the model (or "
	  "the one pbiport kept) does not read as TMDL; the message gives the file and line" },
	/* ---- connecting Power BI and signing in: the redirect flows both use ---- */
	{ "invalid_return_to", PB_EINVAL, 0, A_CONNECT, "return_to is not a local path (such as /data-products): no "
	  "scheme, no //, no backslash" },
	{ "invalid_prompt", PB_EINVAL, 0, A_CONNECT, "prompt is not one of consent, select_account or login" },
	{ "invalid_login_hint", PB_EINVAL, 0, A_CONNECT, "login_hint is empty or too long" },
	{ "invalid_state", PB_EINVAL, 0, A_CONNECT, "the callback's state is missing, altered, expired, already used, "
	  "another user's, or (signing in) from another browser: start again" },
	{ "invalid_callback", PB_EINVAL, 0, A_CONNECT, "the callback carries no authorization code" },
	/* ---- signing in with Microsoft, sessions ---- */
	{ "signin_declined", PB_EINVAL, 0, A_SIGNIN, "the person cancelled or declined the sign-in at Microsoft" },
	{ "signin_failed", PB_EINVAL, 0, A_SIGNIN, "Microsoft did not complete the sign-in, or refused its code (used "
	  "twice, expired): sign in again" },
	{ "invalid_id_token", PB_EINVAL, 0, A_SIGNIN, "Entra's ID token failed a check (signature, key, issuer, audience, "
	  "expiry, nonce, tenant); the message names which: sign in again" },
	{ "signin_unknown_user", PB_EFORBIDDEN, 0, A_SIGNIN, "no pbiport user matches the Microsoft account and no "
	  "organization lets its tenant sign up: an owner adds the user with this e-mail (pbiport user add --email) or "
	  "turns on self-sign-up (PUT /api/settings/signin)" },
	{ "signin_conflict", PB_ECONFLICT, 0, A_SIGNIN, "the account matches more than one user, the user is linked to "
	  "another Microsoft account, or a new user's name or e-mail is taken" },
	{ "tenant_claimed", PB_ECONFLICT, 0, A_SIGNIN, "another organization already lets that Entra tenant sign up" },
	/* ---- jobs: what any job can end (or wait) with ---- */
	{ "job_ended", PB_ECONFLICT, 0, A_JOBS, "the job has already ended: there is nothing to cancel" },
	{ "cancelled", 0, 0, A_JOBS, "someone cancelled the job (POST /api/jobs/{id}/cancel); result says in which "
	  "phase and what the cleanup removed" },
	{ "cleanup_failed", 0, 0, A_JOBS, "a cancelled job could not remove what it created; it is tried again, and "
	  "the message names what is left" },
	{ "time_limit", 0, 0, A_JOBS, "the attempt ran past the job's time limit and was stopped, naming its phase: "
	  "its worker was stuck; submit it again" },
	{ "worker_lost", 0, 0, A_JOBS, "the workers running the job died on every attempt" },
	{ "unknown_kind", 0, 0, A_JOBS, "no worker of this version knows the job's kind" },
	{ "bad_input", 0, 0, A_JOBS, "the job's stored input is incomplete (written by another version, or by hand)" },
	{ "stopped", 0, 0, A_JOBS, "the worker was asked to stop; the job waits in the queue for the next one "
	  "(while queued)" },
	{ "tenant_backoff", 0, 0, A_JOBS, "Power BI asked every caller on the tenant to wait (another job got the "
	  "Retry-After); the job waits until the time its message gives, without using an attempt (while queued)" },
	/* ---- import: what a run (its ingest job) can end or wait with ---- */
	{ "scan_budget", 0, 0, A_IMPORT, "the tenant's getInfo calls for this hour (PBIPORT_SCAN_BUDGET_PER_HOUR, shared "
	  "by every integration on the tenant) are used up: the run waits in the queue for the next hour (while "
	  "queued)" },
	{ "scan_failed", 0, 0, A_IMPORT, "the run could not scan: Power BI failed a batch of workspaces' scans three "
	  "times, sent a scan result pbiport cannot read, or the tenant has more workspaces than one run scans; the "
	  "message says which" },
	{ "filter_rule", 0, 0, A_IMPORT, "the integration's filter rule (filter_rule, a Lua module) failed during the "
	  "run; the message gives file:line: fix the rule" },
	/* ---- refresh: semantic-model refreshes, their schedules and upstream events ---- */
	{ "no_credentials", PB_EINVAL, 0, A_REFRESH, "pbiport holds no credentials that may refresh the model: the "
	  "integration that imported it, or the user who published it, was deleted (or the integration's secret or the "
	  "organization's Power BI settings are gone); import or publish it again" },
	{ "enhanced_refresh_needs_capacity", PB_ECONFLICT, 0, A_REFRESH, "an enhanced refresh (type, commitMode, "
	  "objects, ...) of a model whose workspace is on shared capacity: ask for a standard refresh ({} or only "
	  "notifyOption) or assign the workspace to a capacity" },
	{ "refresh_not_found", 0, 0, A_REFRESH, "Power BI accepted the refresh, but no new entry appeared in the model's "
	  "refresh history (dropped in a burst): ask again" },
	/* ---- push datasets ---- */
	{ "schema_conflict", PB_ECONFLICT, 0, A_PUSH, "a push dataset of that name exists in the workspace with another "
	  "schema: send \"replace\": true to create it again with the new schema (its rows are not kept)" },
	{ "invalid_rows", PB_EINVAL, 0, A_PUSH, "a row of the body does not fit the table (the message names the row and "
	  "the column), or the body holds no rows: nothing was sent" },
	/* ---- webhooks: registering them, and what a delivery (its webhook_delivery job) ends with ---- */
	{ "webhook_url_refused", PB_EINVAL, 0, A_WEBHOOKS, "the webhook URL is not https://, carries a user name or "
	  "password, or names (or, when a delivery connects, resolves to) a loopback, private or link-local address "
	  "that the administrator did not allow (PBIPORT_WEBHOOK_ALLOW_HOSTS); a delivery refused so is not tried "
	  "again" },
	{ "unknown_event", PB_EINVAL, 0, A_WEBHOOKS, "events names an event pbiport does not send; the message lists "
	  "the valid ones" },
	{ "too_many_webhooks", PB_ECONFLICT, 0, A_WEBHOOKS, "the organization has as many webhooks as it may have (100): "
	  "delete one first" },
	{ "webhook_failed", 0, 0, A_WEBHOOKS, "the receiver did not answer 2xx (or not in time); while queued, the "
	  "delivery is tried again after the time its message gives; once the attempts are used up it failed, and the "
	  "webhook shows the last answer" },
	{ "refresh_failed", 0, 0, A_WEBHOOKS, "only in a refresh.failed event's data.error: Power BI ran the refresh and "
	  "reports it failed (status \"Failed\"); the message is Power BI's" },
	{ "webhook_gone", 0, 0, A_WEBHOOKS, "the receiver answered 410 Gone: the webhook was turned off (PATCH it with "
	  "\"active\": true to turn it on again)" },
};

const size_t pb_error_codes_count = sizeof pb_error_codes / sizeof pb_error_codes[0];

const pb_error_code *pb_error_code_find(const char *code)
{
	for (size_t i = 0; code && i < pb_error_codes_count; i++)
		if (!strcmp(pb_error_codes[i].code, code))
			return &pb_error_codes[i];
	return NULL;
}

void pb_error_codes_markdown(FILE *out)
{
	for (size_t a = 0; a < sizeof areas / sizeof areas[0]; a++) {
		bool any = false;
		for (size_t i = 0; i < pb_error_codes_count && !any; i++)
			any = !strcmp(pb_error_codes[i].area, areas[a]);
		if (!any)
			continue;
		fprintf(out, "## %s\n\n| code | HTTP | meaning |\n|---|---|---|\n", areas[a]);
		for (size_t i = 0; i < pb_error_codes_count; i++) {
			const pb_error_code *e = &pb_error_codes[i];
			if (strcmp(e->area, areas[a]))
				continue;
			if (e->rc)
				fprintf(out, "| `%s` | %d | %s |\n", e->code, e->http ? e->http : pb_rc_status(e->rc), e->meaning);
			else
				fprintf(out, "| `%s` | job | %s |\n", e->code, e->meaning);
		}
		fputc('\n', out);
	}
}
