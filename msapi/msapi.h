/* Shared part of the Microsoft clients (Entra, Fabric, Power BI, Graph, scanner).
 *
 * Everything that knows a Microsoft URL, header or JSON shape lives in msapi/; callers get
 * plain C values (msapi_item, entra_token, ...) or, where noted, a jansson value whose
 * ownership the function documents.
 *
 * Base URLs come from the configuration: PBIPORT_ENTRA_URL, PBIPORT_FABRIC_URL,
 * PBIPORT_POWERBI_URL and PBIPORT_GRAPH_URL, checked at start-up by runtime/config.c
 * (defaults https://login.microsoftonline.com,
 * https://api.fabric.microsoft.com, https://api.powerbi.com, https://graph.microsoft.com);
 * the clients append the real paths (/v1/workspaces, /v1.0/myorg/groups, ...).
 *
 * Behaviour of every call made through an msapi client:
 *  - 429 and 503 (and 500/502/504 and transient network failures for idempotent calls)
 *    are retried with exponential back-off and jitter (half fixed, half random), honouring
 *    Retry-After (seconds or HTTP date), up to max_attempts. The total wait of one call is
 *    capped by wait_budget_ms; a server asking for more fails the call at once with
 *    "Power BI asked to wait N s ...". TLS trust failures are never retried.
 *  - A non-idempotent call (create model, create connection, create push dataset, trigger
 *    refresh, post rows) goes out on a fresh connection (so libcurl cannot replay it) and,
 *    when its connection drops after sending, is never blindly repeated: the caller-level
 *    function checks whether it happened first (lists models / connections / datasets by
 *    name, reads the refresh history); post rows reports c->last.outcome_unknown instead.
 *  - An expired token (Fabric 401, Power BI 403 TokenExpired) makes the client call the
 *    caller's refresh callback once and repeat the call with the new token.
 *  - Lists follow every page (continuationUri / continuationToken / @odata.nextLink).
 *  - Long-running operations (202 + Location) are polled with Retry-After under a bounded
 *    total time; a poll that times out client-side is repeated, not treated as failure.
 *  - Follow-up URLs Microsoft sends (operation and result Locations, continuationUri,
 *    @odata.nextLink, 307/308 redirects) carry our token, so they are followed only to the
 *    origin of one of the four configured base URLs (msapi_url_allowed); anything else
 *    fails the call naming the host. Power BI's cluster redirects (307 to another host)
 *    come only with ?preferClientRouting=true, which pbiport never sends.
 *
 * One msapi value serves one identity (one access token) and is not thread-safe. */
#ifndef PBIPORT_MSAPI_H
#define PBIPORT_MSAPI_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "runtime/config.h"
#include "runtime/http.h"
#include "runtime/limits.h"

enum msapi_svc { MSAPI_ENTRA, MSAPI_FABRIC, MSAPI_POWERBI, MSAPI_GRAPH, MSAPI_NSVC };

/* Caller-supplied token refresh: store the new token wherever the caller keeps tokens and
 * return it in *access_token (new: the client frees it). Return 0 or a negative pb_rc with
 * a message in err (which the client passes on). */
typedef int (*msapi_refresh_fn)(void *ctx, char **access_token, char *err);

/* What kind of failure the last call met, decided once, here in msapi, from Microsoft's
 * status and error code (msapi_failure_of): no caller compares a Microsoft code or an HTTP
 * status again. core/flow/ms_failure.h turns it into a pbiport failure. */
typedef enum msapi_failure {
	MSAPI_OK = 0,
	MSAPI_RETRY_AFTER,        /* throttled: wait last.retry_after_s (-1: not said) and try again */
	MSAPI_REAUTHENTICATE,     /* the user's grant is gone (expired, revoked, consent needed): reconnect */
	MSAPI_FORBIDDEN,          /* the identity lacks a role, a permission or a tenant setting */
	MSAPI_NOT_FOUND,          /* no such item, or the identity cannot see it */
	MSAPI_NAME_TAKEN,         /* an item of that name exists already */
	MSAPI_BAD_CREDENTIALS,    /* credentials sent were refused: an app's (secret, client id, tenant)
	                             or a data source's (Fabric connection credentials) */
	MSAPI_REJECTED,           /* refused as sent: last.code and last.message say why */
	MSAPI_OUTCOME_UNKNOWN,    /* a call that is not repeated blindly may or may not have happened */
	MSAPI_UNAVAILABLE,        /* not reached, timed out, or failed on Microsoft's side */
} msapi_failure;

/* Facts about the last failed (or last) call, for callers that branch on them. */
typedef struct msapi_last {
	msapi_failure failure;    /* MSAPI_OK unless the call failed */
	char message[256];        /* Microsoft's own message (first line), when it gave one */
	int svc;
	long status;              /* HTTP status; 0 when no answer */
	char code[128];           /* Microsoft error code ("PowerBINotAuthorized", "AADSTS700082", ...) */
	char request_id[128];     /* RequestId / requestId of the reply, when given */
	long retry_after_s;       /* last Retry-After seen, -1 none */
	bool outcome_unknown;     /* a non-idempotent call may or may not have happened */
	int attempts;             /* HTTP attempts made by the last call */
	int refreshes;            /* token refreshes made by the last call */
} msapi_last;

typedef struct msapi {
	pb_http *http;                  /* borrowed: outlives the msapi value */
	const char *base[MSAPI_NSVC];   /* borrowed from the pb_config (or static): base URLs without a
	                                   trailing slash */
	char *token;                    /* owned secret: current access token (wiped on release) */
	unsigned token_gen;             /* bumped by every refresh */
	msapi_refresh_fn refresh;       /* may be NULL: an expired token then fails the call */
	void *refresh_ctx;
	long wait_budget_ms;            /* total back-off + Retry-After wait per call */
	long retry_base_ms;             /* first back-off step (doubles per attempt) */
	long retry_cap_ms;              /* largest single back-off step */
	int max_attempts;               /* tries per call, including the first */
	long lro_max_ms;                /* total time to follow one long-running operation */
	long poll_ms;                   /* LRO / scan poll interval when no Retry-After */
	long call_timeout_ms;           /* one HTTP request's whole time; 0: the HTTP client's default */
	int parallel;                   /* concurrent calls for batch operations */
	msapi_last last;
} msapi;

/* Sets defaults and takes the base URLs from cfg (validated at start-up, runtime/config.c;
 * cfg NULL or a URL not configured: the public cloud's). cfg must outlive c. Release with
 * msapi_release. */
void msapi_init(msapi *c, pb_http *http, const pb_config *cfg);
void msapi_release(msapi *c);
/* Copies token (may be NULL to clear). */
int msapi_set_token(msapi *c, const char *token, char *err);
void msapi_set_refresh(msapi *c, msapi_refresh_fn fn, void *ctx);
/* Base URL for svc, borrowed until msapi_release. */
const char *msapi_base(const msapi *c, int svc);
const char *msapi_svc_name(int svc);      /* "Entra", "Fabric", "Power BI", "Graph" */

/* A Microsoft object reduced to the fields callers use. Every string is new (or NULL when
 * the object has no such field); raw is a new reference to the object as sent, for the
 * rest (owned by the item). */
typedef struct msapi_item {
	char *id;            /* id / objectId / requestId */
	char *name;          /* displayName / name / title */
	char *type;          /* type / connectionDetails.type / datasourceType / reportType */
	char *workspace_id;  /* workspaceId */
	char *dataset_id;    /* datasetId (reports, tiles) */
	char *path;          /* connectionDetails.path (Fabric), server[;database] (Power BI) */
	char *web_url;       /* webUrl */
	char *description;   /* description (Fabric items, Power BI datasets and reports) */
	json_t *raw;
} msapi_item;

typedef struct msapi_items {
	msapi_item *v;       /* owned array */
	size_t n;
} msapi_items;

void msapi_item_release(msapi_item *it);
void msapi_items_release(msapi_items *l);
/* The body of a list's release: each item of l (a struct of v, an owned array, and n) released
 * with item_release, then the array; l is left empty. l may be NULL. */
#define MSAPI_LIST_RELEASE(l, item_release)                   \
	do {                                                  \
		if (!(l))                                     \
			break;                                \
		for (size_t i_ = 0; i_ < (l)->n; i_++)        \
			item_release(&(l)->v[i_]);            \
		free((l)->v);                                 \
		(l)->v = NULL;                                \
		(l)->n = 0;                                   \
	} while (0)
/* First item whose name equals name (case-sensitive), borrowed; NULL when none. */
const msapi_item *msapi_items_find_name(const msapi_items *l, const char *name);

/* Frees a NULL-terminated or counted array of new strings. */
void msapi_strv_free(char **v, size_t n);

/* ---- inside msapi/ only: the call engine the service files share ---- */

typedef struct msapi_call {
	int svc;
	const char *method;
	const char *url;        /* "/v1/..." appended to the service base, or an absolute https:// URL */
	const json_t *json;     /* borrowed JSON body, or NULL */
	const char *form;       /* borrowed form body (Entra), or NULL */
	const char *json_text;  /* borrowed JSON body text sent as is (json NULL), or NULL */
	size_t json_text_len;
	bool idempotent;        /* safe to repeat when the outcome is unknown */
	bool no_auth;           /* no Authorization header (Entra token endpoint) */
	const char *what;       /* "listing workspaces": used in messages */
} msapi_call;

typedef struct msapi_reply {
	long status;
	json_t *json;           /* new: parsed body, or NULL when empty / not JSON */
	pb_http_resp http;      /* owned */
} msapi_reply;

void msapi_reply_release(msapi_reply *r);
/* Runs one call with retries, token refresh and error translation. A 2xx (or 3xx other
 * than 307/308) reply returns 0; anything else returns a negative pb_rc with a message
 * from msapi/errors and c->last describing it. out is filled on 0 (release it always). */
int msapi_do(msapi *c, const msapi_call *call, msapi_reply *out, char *err);
/* GETs path and every following page; appends each page's "value" items to *items
 * (new array; caller decrefs). max_items 0 = PB_MSAPI_MAX_ITEMS. */
int msapi_get_all(msapi *c, int svc, const char *path, const char *what, size_t max_items,
		  json_t **items, char *err);
/* Follows a long-running operation started by `first` (200/201 = finished at once; 202 =
 * poll Location). On success *result (may be NULL to ignore) is the operation's result
 * body (new; NULL when the operation has none). */
int msapi_lro(msapi *c, int svc, msapi_reply *first, const char *what, json_t **result, char *err);
/* msapi_get_all + msapi_items_from_json. */
int msapi_list_items(msapi *c, int svc, const char *path, const char *what, msapi_items *out, char *err);
/* msapi_list_items of the path msapi_path makes of fmt and its %s ids. */
int msapi_list_items_at(msapi *c, int svc, const char *what, msapi_items *out, char *err, const char *fmt, ...);
/* Whether a POST whose outcome is unknown happened after all (ctx: what it made). */
typedef int (*msapi_happened_fn)(msapi *c, void *ctx, bool *happened, char *err);
/* Sends call, a POST that must not happen twice (msapi_do does not repeat it). When its outcome
 * is unknown (the connection dropped after the request went out), happened looks whether the
 * service did it anyway: if so that is the answer (*done), else it is sent once more. looked names
 * the lookup in the message when that fails too. */
int msapi_post_at_most_once(msapi *c, const msapi_call *call, msapi_reply *r, msapi_happened_fn happened, void *ctx,
			    const char *looked, bool *done, char *err);
/* Overwrites every string inside v (credentials about to be freed). */
void msapi_wipe_json(json_t *v);
/* Converts a JSON array of objects to items. */
int msapi_items_from_json(const json_t *arr, msapi_items *out, char *err);
int msapi_item_from_json(const json_t *obj, msapi_item *out, char *err);
/* Appends s percent-encoded (RFC 3986 unreserved kept) to sb. */
int msapi_urlenc(void *sb /* sbuf* */, const char *s);
/* Builds base-relative paths safely: each %s argument of fmt is percent-encoded ("/", "?",
 * "#", "%" included), and an argument made only of dots ("." or "..") is written as %2E
 * each, so no id can change which endpoint is called. Empty arguments are refused. Every
 * URL built from an id goes through here. *out is new. Only %s conversions are allowed. */
int msapi_path(char **out, char *err, const char *fmt, ...);
int msapi_vpath(char **out, char *err, const char *fmt, va_list ap);
/* May the token go to url, a follow-up URL Microsoft sent? True for an https:// URL whose
 * origin (scheme, host, port; case-insensitive) is that of a configured base URL, and for a
 * path ("/...", not "//...") that the call resolves against its own service's base. */
bool msapi_url_allowed(const msapi *c, const char *url);
/* Random jittered back-off for attempt (0-based), capped. */
long msapi_backoff_ms(const msapi *c, int attempt);

/* Shared with the parallel engines (scanner): how one reply is handled. */
enum msapi_action { MSAPI_A_DONE = 0, MSAPI_A_RETRY = 1, MSAPI_A_REFRESH = 2, MSAPI_A_REDIRECT = 3 };
typedef struct msapi_try {
	int attempt;
	long waited_ms;
	int redirects;
	bool refreshed;
	unsigned token_gen;     /* token generation the request was sent with */
} msapi_try;
/* Decides what to do with a reply (rc/xerr: transport result). Returns an msapi_action
 * (with *delay_ms for RETRY) or a negative pb_rc with the translated message in err. */
int msapi_classify(msapi *c, const msapi_call *call, const pb_http_resp *resp, int rc,
		   const char *xerr, msapi_try *t, long *delay_ms, char *err);
/* ---- parallel calls: jobs on one curl multi handle, with the same retry, refresh and
 * error rules as msapi_do. A job is a little state machine: its on_ok callback may point
 * it at a next request (msapi_job_set) and ask to run again after a delay. ---- */

typedef struct msapi_job {
	msapi_call call;        /* svc, method, what, idempotent; call.url == url */
	char *url;              /* owned: absolute URL of the current request */
	char *body;             /* owned: JSON request body, or NULL */
	char *auth;             /* owned secret: Authorization header line */
	const char *hdrs[3];
	msapi_try t;
	long long slot_ms;      /* when the job's first request went out */
	void *user;             /* the caller's per-job data (not owned) */
} msapi_job;

typedef struct msapi_batch_stats {
	size_t requests;        /* HTTP requests made, retries included */
	size_t retries;         /* 429/503/network retries and token refreshes */
	size_t failed;          /* jobs that ended in failure */
	double busy_seconds;    /* sum of the requests' transfer times */
	double slot_seconds;    /* sum over jobs of first request -> done */
	char first_error[PB_ERR_MAX];
} msapi_batch_stats;

/* Points job at method + url (absolute, or a path under svc's base) with body (copied,
 * may be NULL) and resets its retry state. */
int msapi_job_set(msapi *c, msapi_job *job, int svc, const char *method, const char *url, const char *body,
		  bool idempotent, const char *what, char *err);
void msapi_job_release(msapi_job *job);

/* A job's 2xx reply (resp->body holds it). Return PB_HTTP_DONE, or PB_HTTP_AGAIN after
 * msapi_job_set (or to repeat the same request) with *delay_ms, or MSAPI_JOB_FAILED (message
 * in err) when this job failed but the others go on, or a negative pb_rc (message in err) to
 * stop the batch. */
enum { MSAPI_JOB_FAILED = 2 };
typedef int (*msapi_job_ok_fn)(void *ctx, size_t idx, msapi_job *job, const pb_http_resp *resp,
			       long *delay_ms, char *err);
/* A job that failed for good (rc, jerr). Return 0 to let the others go on, or a negative
 * pb_rc (message in err) to stop the batch. NULL: failures are only counted. */
typedef int (*msapi_job_fail_fn)(void *ctx, size_t idx, msapi_job *job, int rc, const char *jerr, char *err);

/* Runs jobs[0..n) (each set up with msapi_job_set) with at most `parallel` in progress.
 * st may be NULL. Returns 0 or the stopping callback's rc; individual failures are in st. */
int msapi_run_jobs(msapi *c, msapi_job *jobs, size_t n, int parallel, msapi_job_ok_fn ok,
		   msapi_job_fail_fn fail, void *ctx, msapi_batch_stats *st, char *err);

/* Calls the refresh callback (once per token generation). */
int msapi_refresh_token(msapi *c, unsigned seen_gen, char *err);
/* "Authorization: Bearer ..." header line, new (secret: free with pb_secret_free). */
char *msapi_auth_header(const msapi *c);

#endif
