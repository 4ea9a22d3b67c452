#include "core/flow/webhooks.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/store/webhooks.h"
#include "runtime/http.h"
#include "runtime/json_body.h"
#include "runtime/jobs.h"
#include "runtime/json_out.h"
#include "runtime/limits.h"
#include "runtime/log.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

const char *const webhook_events[WEBHOOK_EVENTS_N] = {
	"publish.succeeded", "publish.failed", "update.available", "drift.detected", "refresh.failed", "import.failed",
};

static bool event_known(const char *event)
{
	for (size_t i = 0; event && i < WEBHOOK_EVENTS_N; i++)
		if (!strcmp(webhook_events[i], event))
			return true;
	return false;
}

/* ======================================================================== emitting */

/* The body every webhook of the event gets: {"id","event","created_at","organization_id","data"}.
 * *out is new text. */
static int payload_text(const char *event_id, const char *event, const char *org_id, const json_t *data, char **out,
			char *err)
{
	char now[PB_TIME_BUF];
	*out = NULL;
	pb_now(now);
	json_t *copy = data ? json_deep_copy(data) : json_object();
	json_t *doc = copy ? json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", event_id, "event", event, "created_at", now,
				       "organization_id", org_id, "data", copy)
			   : NULL;
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return pb_err(err, PB_ENOMEM, "out of memory building a %s event", event);
	if (strlen(text) > PB_WEBHOOK_PAYLOAD_MAX) {
		free(text);
		return pb_err(err, PB_ELIMIT, "the %s event's body is larger than %u bytes", event, PB_WEBHOOK_PAYLOAD_MAX);
	}
	*out = text;
	return PB_OK;
}

/* Queues one delivery of payload to webhook_id (nothing when it has event_id already), inside the
 * caller's transaction. delivery_id / job_id (may be NULL) receive what was queued ("" when
 * nothing was). */
static int queue_delivery(pb_db *db, const char *org_id, const char *webhook_id, const char *event_id,
			  const char *event, const char *payload, char delivery_id[PB_ID_BUF], char job_id[PB_ID_BUF],
			  char *err)
{
	char did[PB_ID_BUF], jid[PB_ID_BUF], input[sizeof "{\"delivery_id\":\"\"}" + PB_ID_BUF];
	bool inserted = false, existing = false;
	if (delivery_id)
		delivery_id[0] = '\0';
	if (job_id)
		job_id[0] = '\0';
	int rc = deliveries_insert(db, webhook_id, event_id, event, payload, did, &inserted, err);
	if (rc || !inserted)
		return rc;
	if (xsnprintf(input, sizeof input, "{\"delivery_id\":\"%s\"}", did))
		return pb_err(err, PB_EINTERNAL, "delivery id too long");
	pb_job_spec spec = { .kind = WEBHOOK_JOB_KIND, .org_id = org_id, .input = input,
			     .max_attempts = PB_WEBHOOK_ATTEMPTS };
	if ((rc = jobs_submit(db, &spec, jid, &existing, err)) || (rc = deliveries_set_job(db, did, jid, err)) ||
	    (rc = deliveries_prune(db, webhook_id, PB_WEBHOOK_DELIVERIES_KEPT, err)))
		return rc;
	if (delivery_id)
		memcpy(delivery_id, did, PB_ID_BUF);
	if (job_id)
		memcpy(job_id, jid, PB_ID_BUF);
	return PB_OK;
}

/* event_id NULL: a fresh one. */
static int emit(pb_db *db, const char *org_id, const char *event, const char *event_id, const json_t *data, char *err)
{
	char (*ids)[PB_ID_BUF] = NULL;
	char fresh[PB_ID_BUF], *payload = NULL;
	size_t n = 0;
	if (!event_known(event))
		return pb_err(err, PB_EINVAL, "unknown webhook event \"%s\"", event ? event : "");
	/* read before taking the write lock: most organizations have no webhook */
	int rc = webhooks_subscribed(db, org_id, event, &ids, &n, err);
	if (rc || n == 0)
		goto out;
	if (!event_id) {
		if ((rc = pb_new_id(fresh, err)))
			goto out;
		event_id = fresh;
	}
	if ((rc = payload_text(event_id, event, org_id, data, &payload, err)) || (rc = db_begin(db, err)))
		goto out;
	for (size_t i = 0; i < n && !rc; i++)
		rc = queue_delivery(db, org_id, ids[i], event_id, event, payload, NULL, NULL, err);
	rc = db_end(db, rc, err);
out:
	free(payload);
	free(ids);
	return rc;
}

int webhook_emit(pb_db *db, const char *org_id, const char *event, const json_t *data, char *err)
{
	return emit(db, org_id, event, NULL, data, err);
}

int webhook_emit_once(pb_db *db, const char *org_id, const char *event, const char *key, const json_t *data,
		      char *err)
{
	char seed[3 * PB_ID_BUF + 256], hex[PB_SHA256_HEX_LEN + 1], event_id[PB_ID_BUF];
	if (xsnprintf(seed, sizeof seed, "%s\n%s\n%s", org_id, event ? event : "", key ? key : ""))
		return pb_err(err, PB_EINVAL, "webhook event key too long");
	pb_sha256_hex(seed, strlen(seed), hex);
	memcpy(event_id, hex, PB_ID_BUF - 1);
	event_id[PB_ID_BUF - 1] = '\0';
	return emit(db, org_id, event, event_id, data, err);
}

void webhook_job_event(pb_job_ctx *ctx, const char *event, json_t *data)
{
	char err[PB_ERR_MAX];
	json_t *d = data ? data : json_object();
	int rc = d && json_is_object(d) ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
	if (!rc && json_object_set_new(d, "job_id", json_string(ctx->job->id)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	if (!rc && ctx->error_code[0] && !json_object_get(d, "error") &&
	    json_object_set_new(d, "error", json_pack("{s:s, s:s}", "code", ctx->error_code, "message", ctx->err)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	if (!rc)
		rc = webhook_emit_once(ctx->db, ctx->job->org_id, event, ctx->job->id, d, err);
	if (rc)
		log_event("warn", NULL, "job %s: the %s event was not queued for webhooks: %s", ctx->job->id, event, err);
	json_decref(d);
}

/* ======================================================================== one delivery */

int webhook_signature(const char *secret, size_t secret_len, const char *body, size_t body_len,
		      char out[WEBHOOK_SIGNATURE_BUF], char *err)
{
	char hex[PB_SHA256_HEX_LEN + 1];
	int rc = pb_hmac_sha256_hex(secret, secret_len, body, body_len, hex, err);
	if (!rc && xsnprintf(out, WEBHOOK_SIGNATURE_BUF, "sha256=%s", hex))
		rc = pb_err(err, PB_EINTERNAL, "signature buffer too small");
	return rc;
}

long webhook_backoff_ms(int attempts)
{
	long ms = PB_WEBHOOK_BACKOFF_BASE_MS;
	for (int i = 1; i < attempts && ms < PB_WEBHOOK_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms > PB_WEBHOOK_BACKOFF_MAX_MS ? PB_WEBHOOK_BACKOFF_MAX_MS : ms;
}

webhook_verdict webhook_verdict_of(int rc, long status, long retry_after_s, int attempts, long *delay_ms)
{
	*delay_ms = 0;
	if (rc == PB_EFORBIDDEN)
		return WEBHOOK_REFUSED;
	if (!rc && status >= 200 && status <= 299)
		return WEBHOOK_DELIVERED;
	if (!rc && status == 410)
		return WEBHOOK_GONE;
	if (!rc && (status == 429 || status == 503) && retry_after_s >= 0) {
		long s = retry_after_s > PB_WEBHOOK_RETRY_AFTER_MAX_S ? PB_WEBHOOK_RETRY_AFTER_MAX_S : retry_after_s;
		*delay_ms = s < 1 ? 1000 : s * 1000;
	} else {
		*delay_ms = webhook_backoff_ms(attempts);
	}
	return WEBHOOK_RETRY;
}

/* The allow list (cfg->webhook_allow_hosts) names host. */
static bool host_allowed(const pb_config *cfg, const char *host)
{
	size_t n = strlen(host);
	for (const char *p = cfg ? cfg->webhook_allow_hosts : NULL; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && !memcmp(p, host, n))
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

/* host is an IP address (or localhost) that is not public. */
static bool host_internal(const char *host)
{
	struct sockaddr_in in4 = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	size_t n = strlen(host);
	if (inet_pton(AF_INET, host, &in4.sin_addr) == 1)
		return pb_addr_internal((const struct sockaddr *)&in4);
	if (inet_pton(AF_INET6, host, &in6.sin6_addr) == 1)
		return pb_addr_internal((const struct sockaddr *)&in6);
	/* RFC 6761: localhost and its subdomains are the machine itself */
	return !strcmp(host, "localhost") || !strcmp(host, "localhost.") ||
	       (n > 10 && !strcmp(host + n - 10, ".localhost"));
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

int webhook_url_check(const pb_config *cfg, const char *url, char host[WEBHOOK_HOST_BUF], bool *allowed,
		      pb_failure *f)
{
	char h[WEBHOOK_HOST_BUF];
	size_t n = url ? strlen(url) : 0;
	if (allowed)
		*allowed = false;
	if (n == 0 || n > PB_WEBHOOK_URL_MAX)
		return pb_fail(f, PB_EINVAL, NULL, "url: 1 to %d characters", PB_WEBHOOK_URL_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f || url[i] == '\\')
			return pb_fail(f, PB_EINVAL, NULL, "url: character %zu is not allowed in a URL (spaces, backslashes, "
				       "control and non-ASCII characters must be percent-encoded)", i + 1);
	if (strncasecmp(url, "https://", 8))
		return pb_fail(f, PB_EINVAL, "webhook_url_refused", "url: must be an https:// URL (deliveries carry a "
			       "signature and event data: they are sent over verified TLS only)");
	const char *a = url + 8, *end = a + strcspn(a, "/?#");
	if (memchr(a, '@', (size_t)(end - a)))
		return pb_fail(f, PB_EINVAL, "webhook_url_refused", "url: must not carry a user name or password "
			       "(user:password@host): receivers check the X-Pbiport-Signature header instead");
	const char *hs = a, *he, *rest;
	if (*a == '[') {
		const char *close = memchr(a, ']', (size_t)(end - a));
		if (!close)
			return pb_fail(f, PB_EINVAL, NULL, "url: an IPv6 address lacks its closing ']'");
		hs = a + 1;
		he = close;
		rest = close + 1;
	} else {
		he = a + strcspn(a, ":/?#");
		rest = he;
		for (const char *c = hs; c < he; c++)
			if (!host_char(*c))
				return pb_fail(f, PB_EINVAL, NULL, "url: the host may hold only letters, digits, '.' and '-' "
					       "(write an international name in its xn-- form)");
	}
	size_t hn = (size_t)(he - hs);
	if (hn == 0 || hn >= sizeof h)
		return pb_fail(f, PB_EINVAL, NULL, "url: %s", hn ? "the host name is too long" : "has no host");
	for (size_t i = 0; i < hn; i++)
		h[i] = (char)(hs[i] >= 'A' && hs[i] <= 'Z' ? hs[i] - 'A' + 'a' : hs[i]);
	h[hn] = '\0';
	struct in6_addr a6;
	if (*a == '[' && inet_pton(AF_INET6, h, &a6) != 1)
		return pb_fail(f, PB_EINVAL, NULL, "url: [%s] is not an IPv6 address", h);
	if (rest < end) {
		/* ":port" */
		long port = 0;
		const char *p = rest + 1;
		if (*rest != ':' || p == end)
			return pb_fail(f, PB_EINVAL, NULL, "url: malformed after the host");
		for (; p < end && port <= 65535; p++) {
			if (*p < '0' || *p > '9')
				return pb_fail(f, PB_EINVAL, NULL, "url: the port must be a number");
			port = port * 10 + (*p - '0');
		}
		if (port < 1 || port > 65535)
			return pb_fail(f, PB_EINVAL, NULL, "url: the port must be from 1 to 65535");
	}
	bool ok = host_allowed(cfg, h);
	if (!ok && host_internal(h))
		return pb_fail(f, PB_EINVAL, "webhook_url_refused", "url: %s is a loopback, private or link-local address: "
			       "webhooks reach public addresses only, unless the administrator allows the host "
			       "(PBIPORT_WEBHOOK_ALLOW_HOSTS)", h);
	if (host)
		memcpy(host, h, hn + 1);
	if (allowed)
		*allowed = ok;
	return PB_OK;
}

/* A receiver's answer in one line for the delivery's record: "HTTP 500: <start of the body>". */
static void answer_line(const pb_http_resp *resp, char *out, size_t size)
{
	char excerpt[160];
	size_t n = 0;
	for (size_t i = 0; resp->body && i < resp->body_len && n + 1 < sizeof excerpt; i++) {
		unsigned char c = (unsigned char)resp->body[i];
		excerpt[n++] = c < 0x20 || c >= 0x7f ? ' ' : (char)c;   /* printable ASCII only */
	}
	while (n && excerpt[n - 1] == ' ')
		n--;
	excerpt[n] = '\0';
	if (xsnprintf(out, size, "the receiver answered HTTP %ld%s%s", resp->status, n ? ": " : "", excerpt))
		mark_cut(out, size);
}

typedef struct delivery_run {
	pb_job_ctx *ctx;
	pb_delivery *d;
	pb_webhook *w;
	char host[WEBHOOK_HOST_BUF];
	bool allowed;
} delivery_run;

/* One POST of the delivery: *rc the call's, resp the answer (release it), what a line saying what
 * went wrong when no 2xx came. */
static int post_once(delivery_run *r, int *call_rc, pb_http_resp *resp, char *what, size_t what_size)
{
	pb_job_ctx *ctx = r->ctx;
	pb_http *http = NULL;
	char *secret = NULL, sig[WEBHOOK_SIGNATURE_BUF];
	char h_sig[sizeof "X-Pbiport-Signature: " + WEBHOOK_SIGNATURE_BUF], h_event[PB_ID_BUF + 64],
		h_delivery[sizeof "X-Pbiport-Delivery: " + PB_ID_BUF];
	size_t slen = 0, body_len = strlen(r->d->payload);
	memset(resp, 0, sizeof *resp);
	int rc = webhook_open_secret(ctx->db, ctx->cfg->encryption_keys, r->w->id, &secret, &slen, ctx->err);
	if (rc) {
		(void)xsnprintf(what, what_size, "the webhook's secret cannot be opened: %s", ctx->err);
		goto out;
	}
	if ((rc = webhook_signature(secret, slen, r->d->payload, body_len, sig, ctx->err)))
		goto out;
	if (xsnprintf(h_sig, sizeof h_sig, "X-Pbiport-Signature: %s", sig) ||
	    xsnprintf(h_event, sizeof h_event, "X-Pbiport-Event: %s", r->d->event) ||
	    xsnprintf(h_delivery, sizeof h_delivery, "X-Pbiport-Delivery: %s", r->d->id)) {
		rc = pb_err(ctx->err, PB_EINTERNAL, "a delivery header is too long");
		goto out;
	}
	const char *headers[] = { "Content-Type: application/json", h_event, h_delivery, h_sig };
	/* a receiver that is down or slow holds this worker for a bounded time only */
	pb_http_opts ho = { .connect_timeout_ms = PB_WEBHOOK_CONNECT_TIMEOUT_MS, .timeout_ms = PB_WEBHOOK_TIMEOUT_MS,
			    .max_body = PB_WEBHOOK_RESPONSE_MAX, .ca_bundle = ctx->cfg->ca_bundle,
			    .public_only = !r->allowed };
	if ((rc = pb_http_new(&ho, &http, ctx->err)))
		goto out;
	pb_http_req req = { .method = "POST", .url = r->w->url, .headers = headers,
			    .nheaders = sizeof headers / sizeof headers[0], .body = r->d->payload, .body_len = body_len,
			    .fresh_connection = true };
	char cerr[PB_ERR_MAX] = "";
	*call_rc = pb_http_do(http, &req, resp, cerr);
	if (*call_rc)
		(void)xsnprintf(what, what_size, "%s", cerr);
	else if (resp->status < 200 || resp->status > 299)
		answer_line(resp, what, what_size);
out:
	pb_secret_free(secret, slen);
	pb_http_free(http);
	return rc;
}

/* Records what the try came to and ends the attempt as it says. */
static int conclude(delivery_run *r, webhook_verdict v, long status, long delay_ms, const char *what)
{
	pb_job_ctx *ctx = r->ctx;
	int attempts = ctx->job->attempts;
	bool last = attempts >= ctx->job->max_attempts;
	char next[PB_TIME_BUF], reason[PB_ERR_MAX], now[PB_TIME_BUF];
	delivery_attempt a = { .delivery_id = r->d->id, .webhook_id = r->w->id, .attempts = attempts, .status = status,
			       .error = v == WEBHOOK_DELIVERED ? NULL : what };
	pb_now(now);
	if (v == WEBHOOK_RETRY && !last) {
		unsigned short jitter = 0;
		pb_random_bytes(&jitter, sizeof jitter, NULL);
		delay_ms += (long)(jitter % (delay_ms / 10 + 1));   /* keeps retried deliveries apart */
		pb_time_in(delay_ms, next);
		a.next_attempt_at = next;
	}
	a.state = v == WEBHOOK_DELIVERED ? "delivered" : v == WEBHOOK_RETRY && !last ? "retrying" : "failed";
	if (v == WEBHOOK_GONE) {
		(void)xsnprintf(reason, sizeof reason, "the receiver answered 410 Gone at %s", now);
		a.disable_reason = reason;
	}
	int rc = deliveries_record(ctx->db, &a, ctx->err);
	if (rc)
		return rc;
	switch (v) {
	case WEBHOOK_DELIVERED:
		ctx->result = json_pack("{s:s, s:s, s:s, s:i, s:i}", "delivery_id", r->d->id, "webhook_id", r->w->id,
					"state", "delivered", "status", (int)status, "attempts", attempts);
		return ctx->result ? PB_OK : pb_err(ctx->err, PB_ENOMEM, "out of memory");
	case WEBHOOK_GONE:
		return job_fail(ctx, "webhook_gone", "%s answered 410 Gone: webhook %s is turned off (PATCH it with "
				"\"active\": true to turn it on again)", r->host, r->w->id);
	case WEBHOOK_REFUSED:
		return job_fail(ctx, "webhook_url_refused", "%s (PBIPORT_WEBHOOK_ALLOW_HOSTS lets the administrator allow "
				"the host)", what);
	case WEBHOOK_RETRY:
		break;
	}
	if (last)
		return job_fail(ctx, "webhook_failed", "not delivered after %d attempts: %s", attempts, what);
	return job_retry_later(ctx, delay_ms, "webhook_failed", "attempt %d of %d: %s; the next is at %s", attempts,
			       ctx->job->max_attempts, what, next);
}

/* The delivery ends without a try (the webhook is gone or turned off, or it ended already). */
static int end_untried(delivery_run *r, const char *delivery_id, const char *state, const char *why)
{
	pb_job_ctx *ctx = r->ctx;
	int rc = PB_OK;
	if (r->d && r->w && !strcmp(state, "skipped")) {
		delivery_attempt a = { .delivery_id = r->d->id, .webhook_id = r->w->id, .state = state,
				       .attempts = r->d->attempts, .status = r->d->last_status, .error = why };
		if ((rc = deliveries_record(ctx->db, &a, ctx->err)))
			return rc;
	}
	ctx->result = json_pack("{s:s, s:s, s:s}", "delivery_id", delivery_id, "state", state, "reason", why);
	return ctx->result ? PB_OK : pb_err(ctx->err, PB_ENOMEM, "out of memory");
}

int webhook_delivery_job(pb_job_ctx *ctx)
{
	delivery_run r = { .ctx = ctx };
	pb_http_resp resp;
	char what[PB_ERR_MAX] = "";
	int call_rc = PB_OK, rc;
	memset(&resp, 0, sizeof resp);
	json_t *in = json_loads(ctx->job->input ? ctx->job->input : "", 0, NULL);
	const char *did = json_string_value(json_object_get(in, "delivery_id"));
	if (!did) {
		rc = job_fail(ctx, "bad_input", "the webhook delivery job has no delivery_id");
		goto out;
	}
	rc = deliveries_get(ctx->db, did, &r.d, ctx->err);
	if (!rc)
		rc = webhooks_get(ctx->db, ctx->job->org_id, r.d->webhook_id, &r.w, ctx->err);
	if (rc == PB_ENOTFOUND) {
		rc = end_untried(&r, did, "deleted", "the webhook was deleted");
		goto out;
	}
	if (rc)
		goto out;
	/* sent once: a job that runs again after a 2xx (its worker died before it ended) sends nothing */
	if (strcmp(r.d->state, "pending") && strcmp(r.d->state, "retrying")) {
		rc = end_untried(&r, did, r.d->state, "the delivery had ended already");
		goto out;
	}
	if (!r.w->active && strcmp(r.d->event, WEBHOOK_EVENT_PING)) {
		rc = end_untried(&r, did, "skipped", "the webhook was turned off before the event was sent");
		goto out;
	}
	pb_failure f;
	pb_failure_clear(&f);
	if (webhook_url_check(ctx->cfg, r.w->url, r.host, &r.allowed, &f)) {
		/* the allow list changed since the URL was saved */
		rc = conclude(&r, WEBHOOK_REFUSED, 0, 0, f.message);
		goto out;
	}
	if ((rc = post_once(&r, &call_rc, &resp, what, sizeof what))) {
		if (what[0])   /* the secret did not open: the worker's keys may be set right meanwhile */
			rc = conclude(&r, WEBHOOK_RETRY, 0, webhook_backoff_ms(ctx->job->attempts), what);
		goto out;
	}
	long delay = 0;
	webhook_verdict v = webhook_verdict_of(call_rc, resp.status, call_rc ? -1 : pb_http_retry_after(&resp),
					       ctx->job->attempts, &delay);
	rc = conclude(&r, v, call_rc ? 0 : resp.status, delay, what);
out:
	pb_http_resp_release(&resp);
	delivery_free(r.d);
	webhook_free(r.w);
	json_decref(in);
	return rc;
}

/* ======================================================================== the API */

/* "publish.succeeded, publish.failed, ...": the valid event names, for messages. */
static void events_list_text(char *out, size_t size)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < WEBHOOK_EVENTS_N; i++) {
		int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "", webhook_events[i]);
		if (n < 0 || (size_t)n >= size - used)
			return;
		used += (size_t)n;
	}
}

/* events: a non-empty array of known names, into the stored form (JSON text, in webhook_events'
 * order, each once). *out is new. */
static int parse_events(const json_t *v, char **out, pb_failure *f)
{
	char valid[256];
	bool want[WEBHOOK_EVENTS_N] = { false };
	size_t i;
	json_t *e;
	*out = NULL;
	events_list_text(valid, sizeof valid);
	if (!json_is_array(v) || json_array_size(v) == 0)
		return pb_fail(f, PB_EINVAL, NULL, "events: a non-empty array of event names (valid: %s)", valid);
	json_array_foreach(v, i, e) {
		const char *name = json_string_value(e);
		size_t k = 0;
		while (name && k < WEBHOOK_EVENTS_N && strcmp(webhook_events[k], name))
			k++;
		if (!name || k == WEBHOOK_EVENTS_N)
			return pb_fail(f, PB_EINVAL, "unknown_event", "events[%zu]: %s%.64s%s is not an event pbiport sends "
				       "(valid: %s)", i, name ? "\"" : "", name ? name : "not a string", name ? "\"" : "",
				       valid);
		want[k] = true;
	}
	json_t *list = json_array();
	for (size_t k = 0; list && k < WEBHOOK_EVENTS_N; k++)
		if (want[k] && json_array_append_new(list, json_string(webhook_events[k]))) {
			json_decref(list);
			list = NULL;
		}
	*out = list ? json_dumps(list, JSON_COMPACT) : NULL;
	json_decref(list);
	return *out ? PB_OK : pb_fail(f, PB_ENOMEM, NULL, "out of memory");
}

static int check_secret(const json_t *v, pb_failure *f)
{
	const char *s = json_string_value(v);
	size_t n = s ? strlen(s) : 0;
	bool ok = s && n >= PB_WEBHOOK_SECRET_MIN && n <= PB_WEBHOOK_SECRET_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f;
	/* the message never shows the value */
	return ok ? PB_OK : pb_fail(f, PB_EINVAL, NULL, "secret: %d to %d printable ASCII characters without spaces "
				    "(or leave it out and pbiport makes one)", PB_WEBHOOK_SECRET_MIN, PB_WEBHOOK_SECRET_MAX);
}

/* The fields a body may hold; every one checked before anything is written. */
typedef struct webhook_fields {
	const char *url;
	char *events;          /* new: the stored form */
	const char *secret;    /* borrowed from the body */
	int active;            /* -1: not given */
} webhook_fields;

static int parse_fields(const pb_config *cfg, const json_t *body, const char *const *keys, webhook_fields *in,
			pb_failure *f)
{
	memset(in, 0, sizeof *in);
	in->active = -1;
	if (!json_is_object(body))
		return pb_fail(f, PB_EINVAL, NULL, "request body: a JSON object");
	if (json_body_only_keys(body, keys, "", f->message))
		return pb_fail_as(f, PB_EINVAL, NULL);
	json_t *v;
	if ((v = json_object_get(body, "url"))) {
		if (!json_is_string(v))
			return pb_fail(f, PB_EINVAL, NULL, "url: a string, the https:// URL deliveries are sent to");
		if (webhook_url_check(cfg, json_string_value(v), NULL, NULL, f))
			return f->rc;
		in->url = json_string_value(v);
	}
	if ((v = json_object_get(body, "events")) && parse_events(v, &in->events, f))
		return f->rc;
	if ((v = json_object_get(body, "secret"))) {
		if (check_secret(v, f))
			return f->rc;
		in->secret = json_string_value(v);
	}
	if ((v = json_object_get(body, "active"))) {
		if (!json_is_boolean(v))
			return pb_fail(f, PB_EINVAL, NULL, "active: true or false");
		in->active = json_is_true(v) ? 1 : 0;
	}
	if (in->secret && !cfg->encryption_keys)
		return pb_fail(f, PB_EINVAL, NULL, "secret: APPLICATION_ENCRYPTION_KEYS is not set on this server, so "
			       "webhook secrets cannot be stored");
	return PB_OK;
}

static json_t *webhook_view(const pb_webhook *w)
{
	json_t *events = json_loads(w->events, 0, NULL);
	json_t *last = w->last_delivery_at
			       ? json_pack("{s:s?, s:o, s:s?, s:s}", "state", w->last_delivery_state, "status",
					   w->last_status ? json_integer(w->last_status) : json_null(), "error",
					   w->last_error, "at", w->last_delivery_at)
			       : json_null();
	return json_pack("{s:s, s:s, s:o, s:b, s:s?, s:s?, s:s, s:s, s:o}", "id", w->id, "url", w->url, "events",
			 events ? events : json_array(), "active", w->active, "disabled_reason", w->disabled_reason,
			 "created_by", w->created_by[0] ? w->created_by : NULL, "created_at", w->created_at,
			 "updated_at", w->updated_at, "last_delivery", last);
}

/* The view of webhook id of org_id into *out; PB_ENOTFOUND (f) when there is none. */
static int view_of(pb_db *db, const char *org_id, const char *id, json_t **out, pb_failure *f)
{
	pb_webhook *w = NULL;
	*out = NULL;
	int rc = webhooks_get(db, org_id, id, &w, f->message);
	if (rc)
		return pb_fail_as(f, rc, NULL);
	*out = webhook_view(w);
	webhook_free(w);
	return *out ? PB_OK : pb_fail(f, PB_ENOMEM, NULL, "out of memory");
}

/* Inserts the webhook in one transaction with the count of the organization's webhooks, which
 * must stay under PB_WEBHOOKS_MAX. */
static int insert_counted(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			  const webhook_fields *in, char id[PB_ID_BUF], pb_failure *f)
{
	size_t count = 0;
	char lock[sizeof "webhooks:" + PB_ID_BUF];
	xsnprintf(lock, sizeof lock, "webhooks:%s", org_id);
	int rc = db_begin(db, f->message);
	if (rc)
		return pb_fail_as(f, rc, NULL);
	/* the count is read then the webhook added: concurrent adds (other hosts) take turns */
	if (!(rc = db_lock_name(db, lock, f->message)) && !(rc = webhooks_count(db, org_id, &count, f->message)) &&
	    count >= PB_WEBHOOKS_MAX) {
		db_rollback(db);
		return pb_fail(f, PB_ECONFLICT, "too_many_webhooks", "the organization has %zu webhooks, the most it may "
			       "have: delete one first", count);
	}
	if (!rc)
		rc = webhooks_create(db, cfg->encryption_keys, org_id, user_id, in->url, in->events, in->secret, id,
				     f->message);
	rc = db_end(db, rc, f->message);
	return rc ? pb_fail_as(f, rc, NULL) : PB_OK;
}

int webhook_create(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const json_t *body,
		   json_t **out, pb_failure *f)
{
	static const char *const keys[] = { "url", "events", "secret", NULL };
	webhook_fields in;
	char id[PB_ID_BUF], *made = NULL;
	*out = NULL;
	int rc = parse_fields(cfg, body, keys, &in, f);
	if (rc)
		goto out;
	if (!in.url || !in.events) {
		rc = pb_fail(f, PB_EINVAL, NULL, "%s is required", !in.url ? "url" : "events");
		goto out;
	}
	if (!cfg->encryption_keys) {
		rc = pb_fail(f, PB_EINVAL, NULL, "APPLICATION_ENCRYPTION_KEYS is not set on this server, so webhook "
			     "secrets cannot be stored");
		goto out;
	}
	if (!in.secret) {
		if ((rc = pb_random_token(PB_WEBHOOK_SECRET_BYTES, &made, f->message))) {
			pb_fail_as(f, rc, NULL);
			goto out;
		}
		in.secret = made;
	}
	if ((rc = insert_counted(db, cfg, org_id, user_id, &in, id, f)) || (rc = view_of(db, org_id, id, out, f)))
		goto out;
	/* a secret pbiport made is shown this once */
	if (made && json_object_set_new(*out, "secret", json_string(made)))
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
out:
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	pb_secret_free(made, made ? strlen(made) : 0);
	free(in.events);
	return rc;
}

int webhook_update(pb_db *db, const pb_config *cfg, const char *org_id, const char *id, const json_t *body,
		   json_t **out, pb_failure *f)
{
	static const char *const keys[] = { "url", "events", "active", "secret", NULL };
	webhook_fields in = { 0 };
	pb_webhook *w = NULL;
	*out = NULL;
	/* another organization's id is not found, whatever the body says */
	int rc = webhooks_get(db, org_id, id, &w, f->message);
	if (rc) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if ((rc = parse_fields(cfg, body, keys, &in, f)))
		goto out;
	if (!in.url && !in.events && !in.secret && in.active < 0) {
		rc = pb_fail(f, PB_EINVAL, NULL, "nothing to change: send url, events, active or secret");
		goto out;
	}
	webhook_change ch = { .url = in.url, .events = in.events, .secret = in.secret, .active = in.active };
	if ((rc = webhooks_update(db, cfg->encryption_keys, org_id, w->id, &ch, f->message))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	rc = view_of(db, org_id, w->id, out, f);
out:
	webhook_free(w);
	free(in.events);
	return rc;
}

int webhook_delete(pb_db *db, const char *org_id, const char *id, pb_failure *f)
{
	int rc = webhooks_delete(db, org_id, id, f->message);
	return rc ? pb_fail_as(f, rc, NULL) : PB_OK;
}

int webhook_get_json(pb_db *db, const char *org_id, const char *id, json_t **out, pb_failure *f)
{
	return view_of(db, org_id, id, out, f);
}

int webhooks_list_json(pb_db *db, const char *org_id, json_t **out, pb_failure *f)
{
	pb_webhook **v = NULL;
	size_t n = 0;
	*out = NULL;
	int rc = webhooks_list(db, org_id, &v, &n, f->message);
	if (rc)
		return pb_fail_as(f, rc, NULL);
	json_t *list = json_array();
	for (size_t i = 0; list && i < n; i++)
		json_out_list_add_new(&list, webhook_view(v[i]));
	webhooks_free(v, n);
	*out = list ? json_pack("{s:o}", "webhooks", list) : NULL;
	return *out ? PB_OK : pb_fail(f, PB_ENOMEM, NULL, "out of memory");
}

/* A delivery as GET .../deliveries shows it. One whose job ended without recording its end (its
 * workers died on every attempt, it ran past its time limit, someone cancelled it) shows as
 * failed, with the job's reason. */
static json_t *delivery_view(pb_db *db, const pb_delivery *d)
{
	const char *state = d->state, *error = d->last_error, *next = d->next_attempt_at;
	char why[PB_ERR_MAX];
	pb_job *j = NULL;
	if ((!strcmp(state, "pending") || !strcmp(state, "retrying")) && d->job_id && !jobs_get(db, d->job_id, &j, why) &&
	    job_ended(j) && strcmp(j->state, "succeeded")) {
		state = "failed";
		next = NULL;
		if (xsnprintf(why, sizeof why, "its delivery job ended %s: %s", j->state,
			      j->error_message ? j->error_message : "no reason given"))
			mark_cut(why, sizeof why);
		error = why;
	}
	json_t *payload = json_loads(d->payload, 0, NULL);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:s?, s:s?, s:s?, s:s, s:s, s:s?, s:o}", "id", d->id,
			      "event_id", d->event_id, "event", d->event, "state", state, "attempts", d->attempts,
			      "last_status", d->last_status ? json_integer(d->last_status) : json_null(), "last_error",
			      error, "job_id", d->job_id, "next_attempt_at", next,
			      "created_at", d->created_at, "updated_at", d->updated_at, "delivered_at", d->delivered_at,
			      "payload", payload ? payload : json_null());
	job_free(j);
	return o;
}

int webhook_deliveries_json(pb_db *db, const char *org_id, const char *id, json_t **out, pb_failure *f)
{
	pb_webhook *w = NULL;
	pb_delivery **v = NULL;
	size_t n = 0;
	*out = NULL;
	int rc = webhooks_get(db, org_id, id, &w, f->message);
	if (!rc)
		rc = deliveries_list(db, w->id, PB_WEBHOOK_DELIVERIES_LIST, &v, &n, f->message);
	webhook_free(w);
	if (rc)
		return pb_fail_as(f, rc, NULL);
	json_t *list = json_array();
	for (size_t i = 0; list && i < n; i++)
		json_out_list_add_new(&list, delivery_view(db, v[i]));
	deliveries_free(v, n);
	*out = list ? json_pack("{s:o}", "deliveries", list) : NULL;
	return *out ? PB_OK : pb_fail(f, PB_ENOMEM, NULL, "out of memory");
}

int webhook_ping(pb_db *db, const char *org_id, const char *id, json_t **out, pb_failure *f)
{
	pb_webhook *w = NULL;
	char event_id[PB_ID_BUF], did[PB_ID_BUF], jid[PB_ID_BUF], *payload = NULL;
	json_t *data = NULL;
	*out = NULL;
	int rc = webhooks_get(db, org_id, id, &w, f->message);
	if (rc || (rc = pb_new_id(event_id, f->message)))
		goto failed;
	data = json_pack("{s:s, s:s}", "webhook_id", w->id, "message", "a test delivery from pbiport");
	if (!data) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	if ((rc = payload_text(event_id, WEBHOOK_EVENT_PING, org_id, data, &payload, f->message)) ||
	    (rc = db_begin(db, f->message)) ||
	    (rc = db_end(db, queue_delivery(db, org_id, w->id, event_id, WEBHOOK_EVENT_PING, payload, did, jid, f->message),
			 f->message)))
		goto failed;
	char url[sizeof "/api/jobs/" + PB_ID_BUF];
	(void)xsnprintf(url, sizeof url, "/api/jobs/%s", jid);
	*out = json_pack("{s:s, s:s, s:s, s:s}", "delivery_id", did, "event_id", event_id, "job_id", jid, "status_url",
			 url);
	rc = *out ? PB_OK : pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	goto out;
failed:
	pb_fail_as(f, rc, NULL);
out:
	json_decref(data);
	free(payload);
	webhook_free(w);
	return rc;
}
