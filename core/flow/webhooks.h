/* Webhooks: organization owners register HTTPS endpoints for events; each event becomes one
 * delivery job per matching webhook (docs/webhooks.md).
 *
 * Events: "publish.succeeded", "publish.failed", "update.available", "drift.detected",
 * "refresh.failed", "import.failed" (and "ping", sent only by POST /api/webhooks/{id}/test).
 *
 * A delivery POSTs {"id","event","created_at","organization_id","data"} to the webhook's URL over
 * verified TLS, signed with X-Pbiport-Signature: sha256=<hex HMAC-SHA256 of the exact body, keyed
 * with the webhook's secret>, and names itself in X-Pbiport-Event and X-Pbiport-Delivery (the same
 * on every retry, so a receiver can drop repeats). A 2xx delivers it; a 410 turns the webhook off;
 * anything else (or no answer within PB_WEBHOOK_TIMEOUT_MS) is tried again with exponential
 * back-off (a 429 or 503 after its Retry-After) up to PB_WEBHOOK_ATTEMPTS tries. Only public
 * addresses are reached, unless the host is in PBIPORT_WEBHOOK_ALLOW_HOSTS. */
#ifndef PBIPORT_WEBHOOKS_H
#define PBIPORT_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/flow/worker.h"
#include "runtime/config.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/failure.h"

struct json_t;

/* The events a webhook can subscribe to, in the order docs/webhooks.md lists them. */
#define WEBHOOK_EVENTS_N 6
extern const char *const webhook_events[WEBHOOK_EVENTS_N];
#define WEBHOOK_EVENT_PING "ping"
/* The job kind that sends one delivery (core/flow/job_kinds.c). */
#define WEBHOOK_JOB_KIND "webhook_delivery"

/* Records that `event` happened in org_id with `data` (borrowed; copied) as the event's data:
 * one delivery job is queued per active webhook of the organization that subscribes to the
 * event; none when there is none. Joins the caller's transaction when there is one (so an
 * event is queued exactly when what it reports is committed). Cheap when the organization has
 * no webhook (one indexed read). PB_OK, or the database's failure with err set. */
int webhook_emit(pb_db *db, const char *org_id, const char *event, const struct json_t *data, char *err);

/* webhook_emit for an event that may be reported again (a job that runs again after its worker
 * died): the event's id is derived from (org_id, event, key), so each webhook gets it once
 * however often it is emitted. */
int webhook_emit_once(pb_db *db, const char *org_id, const char *event, const char *key, const struct json_t *data,
		      char *err);

/* The emit point inside a job kind: webhook_emit_once for the job's organization, keyed by the
 * job id, with data (stolen; NULL: {}) plus "job_id" and, when ctx holds the job's failure
 * (its error code is set) and data has no "error" of its own, "error": {"code", "message"}. Queuing it can only be logged, never
 * fail the job. */
void webhook_job_event(pb_job_ctx *ctx, const char *event, struct json_t *data);

/* The job kind: sends delivery input.delivery_id once (core/flow/job_kinds.c). */
int webhook_delivery_job(pb_job_ctx *ctx);

/* ---- the pieces of a delivery, for tests ---- */

/* "sha256=<64 hex>" + NUL */
#define WEBHOOK_SIGNATURE_BUF (sizeof "sha256=" + PB_SHA256_HEX_LEN)
/* The X-Pbiport-Signature value of body under secret. */
int webhook_signature(const char *secret, size_t secret_len, const char *body, size_t body_len,
		      char out[WEBHOOK_SIGNATURE_BUF], char *err);

/* The wait before the try after `attempts` failed tries (1, 2, ...): PB_WEBHOOK_BACKOFF_BASE_MS
 * doubling up to PB_WEBHOOK_BACKOFF_MAX_MS, without jitter (the job adds up to a tenth). */
long webhook_backoff_ms(int attempts);

typedef enum webhook_verdict {
	WEBHOOK_DELIVERED,       /* a 2xx */
	WEBHOOK_GONE,            /* 410: the receiver wants no more; the webhook is turned off */
	WEBHOOK_REFUSED,         /* an address pbiport may not reach: trying again will not help */
	WEBHOOK_RETRY,           /* anything else: another try after *delay_ms */
} webhook_verdict;
/* What one try came to: rc is the HTTP call's (runtime/http.h: 0 when an answer came, then
 * status), retry_after_s the answer's Retry-After (-1: none), attempts the tries made so far.
 * A 429 or 503 waits its Retry-After (at most PB_WEBHOOK_RETRY_AFTER_MAX_S), else the back-off. */
webhook_verdict webhook_verdict_of(int rc, long status, long retry_after_s, int attempts, long *delay_ms);

/* ---- URLs ---- */

#define WEBHOOK_HOST_BUF 256
/* Checks url for a webhook: at most PB_WEBHOOK_URL_MAX printable ASCII characters, https, a host
 * name or IP address and an optional port, no user or password. An IP address, or "localhost",
 * that is not public is refused unless its host is in PBIPORT_WEBHOOK_ALLOW_HOSTS (host names are
 * checked again after DNS when a delivery connects). host (may be NULL) receives the host in lower
 * case (an IPv6 address without brackets); *allowed (may be NULL) whether the allow list names it.
 * f: PB_EINVAL "webhook_url_refused" for the rules, "bad_request" for a malformed URL. */
int webhook_url_check(const pb_config *cfg, const char *url, char host[WEBHOOK_HOST_BUF], bool *allowed,
		      pb_failure *f);

/* ---- the API (handlers/webhooks.c); org_id is the caller's: other organizations' webhooks are
 * PB_ENOTFOUND. Every *out is a new reference. ---- */

/* POST /api/webhooks: body {url, events, secret?, active?}, every field checked before anything is
 * written (PB_EINVAL naming it; "unknown_event" listing the valid ones). Without a secret one is
 * made and returned once, as "secret", in *out (the webhook's view); a given one is never returned. */
int webhook_create(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
		   const struct json_t *body, struct json_t **out, pb_failure *f);
/* PATCH /api/webhooks/{id}: {url?, events?, active?, secret?}, at least one. */
int webhook_update(pb_db *db, const pb_config *cfg, const char *org_id, const char *id, const struct json_t *body,
		   struct json_t **out, pb_failure *f);
int webhook_delete(pb_db *db, const char *org_id, const char *id, pb_failure *f);
/* {id, url, events, active, disabled_reason, created_by, created_at, updated_at,
 *  last_delivery: {state, status, error, at} | null} */
int webhook_get_json(pb_db *db, const char *org_id, const char *id, struct json_t **out, pb_failure *f);
/* {"webhooks": [...]} */
int webhooks_list_json(pb_db *db, const char *org_id, struct json_t **out, pb_failure *f);
/* {"deliveries": [{id, event_id, event, state, attempts, last_status, last_error, job_id,
 *  next_attempt_at, created_at, updated_at, delivered_at, payload}]}, newest first. */
int webhook_deliveries_json(pb_db *db, const char *org_id, const char *id, struct json_t **out, pb_failure *f);
/* POST /api/webhooks/{id}/test: queues a "ping" delivery (also to a webhook that is turned off,
 * to try a receiver before turning it on again): {delivery_id, event_id, job_id, status_url}. */
int webhook_ping(pb_db *db, const char *org_id, const char *id, struct json_t **out, pb_failure *f);

#endif
