/* The call engine shared by every Microsoft client: URLs, retries, token refresh, paging,
 * long-running operations, item conversion. */
#include "runtime/timeutil.h"
#include "msapi/msapi.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msapi/errors.h"
#include "runtime/crypto.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

/* The public cloud's base URLs; pb_config's PBIPORT_*_URL settings replace them (tests and
 * the demo point them at the emulator). */
static const struct {
	const char *dflt;
	const char *name;
} services[MSAPI_NSVC] = {
	[MSAPI_ENTRA] = { "https://login.microsoftonline.com", "Entra" },
	[MSAPI_FABRIC] = { "https://api.fabric.microsoft.com", "Fabric" },
	[MSAPI_POWERBI] = { "https://api.powerbi.com", "Power BI" },
	[MSAPI_GRAPH] = { "https://graph.microsoft.com", "Graph" },
};

const char *msapi_svc_name(int svc)
{
	return svc >= 0 && svc < MSAPI_NSVC ? services[svc].name : "Microsoft";
}

void msapi_init(msapi *c, pb_http *http, const pb_config *cfg)
{
	memset(c, 0, sizeof *c);
	c->http = http;
	c->wait_budget_ms = PB_MSAPI_WAIT_BUDGET_MS;
	c->retry_base_ms = 500;
	c->retry_cap_ms = 30000;
	c->max_attempts = PB_MSAPI_MAX_ATTEMPTS;
	c->lro_max_ms = PB_MSAPI_LRO_MAX_MS;
	c->poll_ms = 2000;
	c->parallel = PB_SCAN_PARALLEL_MAX;
	c->last.retry_after_s = -1;
	const char *configured[MSAPI_NSVC] = { NULL };
	if (cfg) {
		configured[MSAPI_ENTRA] = cfg->entra_url;
		configured[MSAPI_FABRIC] = cfg->fabric_url;
		configured[MSAPI_POWERBI] = cfg->powerbi_url;
		configured[MSAPI_GRAPH] = cfg->graph_url;
	}
	for (int s = 0; s < MSAPI_NSVC; s++)
		c->base[s] = configured[s] ? configured[s] : services[s].dflt;
}

void msapi_release(msapi *c)
{
	if (!c)
		return;
	if (c->token)
		pb_secret_free(c->token, strlen(c->token));
	memset(c, 0, sizeof *c);
}

int msapi_set_token(msapi *c, const char *token, char *err)
{
	if (c->token)
		pb_secret_free(c->token, strlen(c->token));
	c->token = NULL;
	if (token && !(c->token = xstrdup(token)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	return PB_OK;
}

void msapi_set_refresh(msapi *c, msapi_refresh_fn fn, void *ctx)
{
	c->refresh = fn;
	c->refresh_ctx = ctx;
}

const char *msapi_base(const msapi *c, int svc)
{
	return svc >= 0 && svc < MSAPI_NSVC ? c->base[svc] : NULL;
}

void msapi_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---------- URLs ---------- */

int msapi_urlenc(void *sbp, const char *s)
{
	sbuf *sb = sbp;
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			if (sbuf_addc(sb, (char)*p))
				return -1;
		} else if (sbuf_addc(sb, '%') || sbuf_addc(sb, hex[*p >> 4]) || sbuf_addc(sb, hex[*p & 15])) {
			return -1;
		}
	}
	return 0;
}

/* Appends one argument of msapi_path: percent-encoded like msapi_urlenc, and an argument made
 * only of dots as %2E each, so "." or ".." can never become a dot segment that a client or
 * server folds into another endpoint ("/v1/workspaces/../semanticModels"). */
static int path_segment_enc(sbuf *sb, const char *a)
{
	if (a[strspn(a, ".")])
		return msapi_urlenc(sb, a);
	for (; *a; a++)
		if (sbuf_adds(sb, "%2E"))
			return -1;
	return 0;
}

int msapi_path(char **out, char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = msapi_vpath(out, err, fmt, ap);
	va_end(ap);
	return rc;
}

int msapi_vpath(char **out, char *err, const char *fmt, va_list ap)
{
	*out = NULL;
	sbuf sb;
	sbuf_init(&sb, PB_HTTP_URL_MAX);
	int rc = PB_OK;
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			if (sbuf_addc(&sb, *p))
				rc = PB_ELIMIT;
		} else if (p[1] == 's') {
			const char *a = va_arg(ap, const char *);
			if (!a || !*a) {
				rc = pb_err(err, PB_EINVAL, "an id in a Microsoft URL is empty");
				goto out;
			}
			if (path_segment_enc(&sb, a))
				rc = PB_ELIMIT;
			p++;
		} else {
			rc = pb_err(err, PB_EINTERNAL, "msapi_path: only %%s is supported");
			goto out;
		}
		if (rc) {
			rc = pb_err(err, PB_ELIMIT, "URL longer than %d bytes", PB_HTTP_URL_MAX);
			goto out;
		}
	}
	if (!(*out = sbuf_detach(&sb, NULL)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	sbuf_release(&sb);
	return rc;
}

/* Length of "https://host[:port]" at the start of url (0 if not https). */
static size_t origin_len(const char *url)
{
	if (strncasecmp(url, "https://", 8))
		return 0;
	return 8 + strcspn(url + 8, "/?#");
}

bool msapi_url_allowed(const msapi *c, const char *url)
{
	if (!url || !*url)
		return false;
	if (url[0] == '/')   /* a path: resolved against the call's own service base */
		return url[1] != '/' && url[1] != '\\';
	size_t n = origin_len(url);
	if (!n)
		return false;
	for (int s = 0; s < MSAPI_NSVC; s++)
		if (c->base[s] && origin_len(c->base[s]) == n && !strncasecmp(c->base[s], url, n))
			return true;
	return false;
}

/* The error for a follow-up URL msapi_url_allowed refused: names its host (never the rest,
 * which may carry a signature) and where the allowed hosts come from. */
static int refuse_url(char *err, const char *what, const char *kind, const char *url)
{
	size_t n = origin_len(url);
	if (!n)
		return pb_err(err, PB_EIO, "%s: Microsoft sent a %s that is neither an https:// URL nor a path; not "
			      "following it", what, kind);
	int host = (int)(n - 8 > 200 ? 200 : n - 8);
	return pb_err(err, PB_EIO, "%s: Microsoft sent a %s to %.*s, which is not the host of PBIPORT_ENTRA_URL, "
		      "PBIPORT_FABRIC_URL, PBIPORT_POWERBI_URL or PBIPORT_GRAPH_URL; not following it with the access "
		      "token", what, kind, host, url + 8);
}

/* url as sent: an absolute https:// URL as is, a path appended to svc's base. New. */
static char *full_url(const msapi *c, int svc, const char *url)
{
	if (!strncasecmp(url, "https://", 8) || !strncasecmp(url, "http://", 7))
		return xstrdup(url);
	sbuf sb;
	sbuf_init(&sb, PB_HTTP_URL_MAX);
	if (sbuf_adds(&sb, c->base[svc]) || sbuf_adds(&sb, url)) {
		sbuf_release(&sb);
		return NULL;
	}
	return sbuf_detach(&sb, NULL);
}

/* ---------- items ---------- */

void msapi_item_release(msapi_item *it)
{
	if (!it)
		return;
	free_each(it->id, it->name, it->type, it->workspace_id, it->dataset_id, it->path, it->web_url, it->description);
	json_decref(it->raw);
	memset(it, 0, sizeof *it);
}

void msapi_items_release(msapi_items *l)
{
	MSAPI_LIST_RELEASE(l, msapi_item_release);
}

const msapi_item *msapi_items_find_name(const msapi_items *l, const char *name)
{
	for (size_t i = 0; l && name && i < l->n; i++)
		if (l->v[i].name && !strcmp(l->v[i].name, name))
			return &l->v[i];
	return NULL;
}

static const char *first_str(const json_t *o, const char *const *keys)
{
	for (; *keys; keys++) {
		const json_t *v = json_object_get(o, *keys);
		if (json_is_string(v))
			return json_string_value(v);
	}
	return NULL;
}

static int dup_field(char **dst, const char *src)
{
	if (!src)
		return 0;
	*dst = xstrdup(src);
	return *dst ? 0 : -1;
}

int msapi_item_from_json(const json_t *o, msapi_item *it, char *err)
{
	memset(it, 0, sizeof *it);
	if (!json_is_object(o))
		return pb_err(err, PB_EINVAL, "Microsoft sent a list entry that is not an object");
	static const char *const k_id[] = { "id", "objectId", "requestId", "datasourceId", NULL };
	static const char *const k_name[] = { "displayName", "name", "title", NULL };
	static const char *const k_type[] = { "type", "datasourceType", "reportType", NULL };
	static const char *const k_ws[] = { "workspaceId", NULL };
	static const char *const k_ds[] = { "datasetId", NULL };
	static const char *const k_url[] = { "webUrl", NULL };
	static const char *const k_desc[] = { "description", NULL };
	const json_t *cd = json_object_get(o, "connectionDetails");
	const char *type = first_str(o, k_type);
	const char *path = NULL;
	char *pathbuf = NULL;
	if (json_is_object(cd)) {
		static const char *const k_ctype[] = { "type", NULL };
		static const char *const k_path[] = { "path", NULL };
		if (!type)
			type = first_str(cd, k_ctype);
		else if (first_str(cd, k_ctype) && json_object_get(o, "connectivityType"))
			type = first_str(cd, k_ctype); /* Fabric connection: the data source type */
		path = first_str(cd, k_path);
		if (!path) { /* Power BI datasource: server[;database] */
			const char *server = json_string_value(json_object_get(cd, "server"));
			const char *db = json_string_value(json_object_get(cd, "database"));
			const char *url = json_string_value(json_object_get(cd, "url"));
			if (server && db && asprintf(&pathbuf, "%s;%s", server, db) < 0)
				pathbuf = NULL;
			path = pathbuf ? pathbuf : server ? server : url;
		}
	}
	int bad = dup_field(&it->id, first_str(o, k_id)) | dup_field(&it->name, first_str(o, k_name)) |
		  dup_field(&it->type, type) | dup_field(&it->workspace_id, first_str(o, k_ws)) |
		  dup_field(&it->dataset_id, first_str(o, k_ds)) | dup_field(&it->path, path) |
		  dup_field(&it->web_url, first_str(o, k_url)) | dup_field(&it->description, first_str(o, k_desc));
	free(pathbuf);
	it->raw = json_incref((json_t *)o);
	if (bad) {
		msapi_item_release(it);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	return PB_OK;
}

int msapi_items_from_json(const json_t *arr, msapi_items *out, char *err)
{
	out->v = NULL;
	out->n = 0;
	size_t n = json_array_size(arr);
	if (!n)
		return PB_OK;
	out->v = calloc(n, sizeof *out->v);
	if (!out->v)
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		int rc = msapi_item_from_json(json_array_get(arr, i), &out->v[i], err);
		if (rc) {
			msapi_items_release(out);
			return rc;
		}
		out->n++;
	}
	return PB_OK;
}

/* ---------- retries ---------- */

long msapi_backoff_ms(const msapi *c, int attempt)
{
	long d = c->retry_base_ms > 0 ? c->retry_base_ms : 1;
	for (int i = 0; i < attempt && d < c->retry_cap_ms; i++)
		d *= 2;
	if (d > c->retry_cap_ms)
		d = c->retry_cap_ms;
	uint32_t r = 0;
	if (pb_random_bytes(&r, sizeof r, NULL))
		r = 0x7fffffff;
	/* "equal jitter": half fixed so retries keep some spacing, half random to spread callers */
	return d / 2 + (long)(r % (uint32_t)(d / 2 + 1));
}

char *msapi_auth_header(const msapi *c)
{
	char *h = NULL;
	if (!c->token || asprintf(&h, "Authorization: Bearer %s", c->token) < 0)
		return NULL;
	return h;
}

int msapi_refresh_token(msapi *c, unsigned seen_gen, char *err)
{
	if (c->token_gen != seen_gen)
		return PB_OK; /* another call already refreshed it */
	if (!c->refresh)
		return pb_err(err, PB_EINVAL, "the access token has expired and no refresh is possible: "
			      "sign in again (reconnect Power BI)");
	char *tok = NULL;
	char sub[PB_ERR_MAX] = "";
	/* the callback may make calls through this same client: keep this call's facts */
	msapi_last saved = c->last;
	int rc = c->refresh(c->refresh_ctx, &tok, sub);
	c->last = saved;
	if (rc || !tok) {
		if (tok)
			pb_secret_free(tok, strlen(tok));
		return pb_err(err, rc ? rc : PB_EINTERNAL, "the access token expired and refreshing it failed: %s",
			      sub[0] ? sub : "the refresh callback returned no token");
	}
	rc = msapi_set_token(c, tok, err);
	pb_secret_free(tok, strlen(tok));
	c->token_gen++;
	c->last.refreshes++;
	return rc;
}

static bool token_expired(int svc, long status, const char *code)
{
	if (!strcmp(code, "TokenExpired"))
		return status == 401 || status == 403;
	if (status != 401 || svc == MSAPI_ENTRA)
		return false;
	/* Fabric/Graph send 401 for an expired or unknown token; refresh once */
	return !*code || !strcmp(code, "InvalidAuthenticationToken") || !strcmp(code, "Unauthorized");
}

static void copy_to(char *dst, size_t size, const char *src)
{
	if (xsnprintf(dst, size, "%s", src ? src : ""))
		dst[size - 1] = '\0';
}

int msapi_classify(msapi *c, const msapi_call *call, const pb_http_resp *resp, int rc,
		   const char *xerr, msapi_try *t, long *delay_ms, char *err)
{
	*delay_ms = 0;
	t->attempt++;
	c->last.attempts++;
	c->last.svc = call->svc;
	c->last.status = resp->status;
	c->last.code[0] = '\0';
	c->last.retry_after_s = -1;
	long ra = -1;
	char sub[PB_ERR_MAX];
	int fail_rc;
	c->last.failure = MSAPI_OK;
	c->last.message[0] = '\0';
	if (rc) {
		c->last.failure = MSAPI_UNAVAILABLE;
		if (!pb_http_transient(resp, rc)) /* TLS trust, our own limits: repeating will not help */
			return pb_err(err, rc, "%s", xerr);
		if (!call->idempotent && pb_http_outcome_unknown(resp, rc)) {
			c->last.outcome_unknown = true;
			c->last.failure = MSAPI_OUTCOME_UNKNOWN;
			return pb_err(err, PB_EIO, "%s; whether the call to %s took effect is unknown", xerr, call->what);
		}
		copy_to(sub, sizeof sub, xerr);
		fail_rc = PB_EIO;
		*delay_ms = msapi_backoff_ms(c, t->attempt - 1);
		goto wait;
	}
	long st = resp->status;
	if ((st >= 200 && st < 300) || (st >= 300 && st < 400 && st != 307 && st != 308))
		return MSAPI_A_DONE;
	if ((st == 307 || st == 308) && pb_http_header(resp, "Location") && t->redirects < PB_MSAPI_REDIRECTS_MAX) {
		const char *loc = pb_http_header(resp, "Location");
		if (!msapi_url_allowed(c, loc))
			return refuse_url(err, call->what, "redirect", loc);
		t->redirects++;
		return MSAPI_A_REDIRECT;
	}
	json_t *body = NULL;
	if (resp->body_len)
		body = json_loadb(resp->body, resp->body_len, 0, NULL);
	char msg[300];
	msapi_error_parse(call->svc, body, resp->body, c->last.code, sizeof c->last.code, msg, sizeof msg);
	const char *rid = pb_http_header(resp, "RequestId");
	if (!rid)
		rid = pb_http_header(resp, "x-ms-request-id");
	if (!rid && json_is_string(json_object_get(body, "requestId")))
		rid = json_string_value(json_object_get(body, "requestId"));
	copy_to(c->last.request_id, sizeof c->last.request_id, rid);
	json_decref(body);
	ra = pb_http_retry_after(resp);
	c->last.retry_after_s = ra;
	copy_to(c->last.message, sizeof c->last.message, msg);
	c->last.failure = msapi_failure_of(call->svc, st, c->last.code);
	if (token_expired(call->svc, st, c->last.code) && !call->no_auth && !t->refreshed) {
		t->refreshed = true;
		return MSAPI_A_REFRESH;
	}
	bool transient = st == 429 || st == 503 || (call->idempotent && (st == 500 || st == 502 || st == 504));
	fail_rc = msapi_error_message(call->svc, st, c->last.code, msg, call->what, sub);
	if (!transient)
		return pb_err(err, fail_rc, "%s", sub);
	*delay_ms = ra >= 0 ? ra * 1000 : msapi_backoff_ms(c, t->attempt - 1);
wait:
	if (t->attempt >= c->max_attempts)
		return pb_err(err, fail_rc, "%s (gave up after %d attempts)", sub, t->attempt);
	if (t->waited_ms + *delay_ms > c->wait_budget_ms) {
		if (ra >= 0)
			c->last.failure = MSAPI_RETRY_AFTER;
		if (ra >= 0)
			return pb_err(err, PB_ELIMIT, "%s asked to wait %ld s before trying to %s again, more than "
				      "the %ld s this call may wait; try again later", msapi_svc_name(call->svc), ra,
				      call->what, c->wait_budget_ms / 1000);
		return pb_err(err, fail_rc, "%s (gave up after %d attempts)", sub, t->attempt);
	}
	t->waited_ms += *delay_ms;
	return MSAPI_A_RETRY;
}

void msapi_reply_release(msapi_reply *r)
{
	if (!r)
		return;
	json_decref(r->json);
	pb_http_resp_release(&r->http);
	memset(r, 0, sizeof *r);
}

static int parse_reply_json(const msapi_call *call, msapi_reply *out, char *err)
{
	if (!out->http.body_len)
		return PB_OK;
	json_error_t je;
	out->json = json_loadb(out->http.body, out->http.body_len, 0, &je);
	if (out->json)
		return PB_OK;
	const char *ct = pb_http_header(&out->http, "Content-Type");
	if (ct && strstr(ct, "json"))
		return pb_err(err, PB_EIO, "%s sent a reply to %s that is not valid JSON (line %d: %s)",
			      msapi_svc_name(call->svc), call->what, je.line, je.text);
	return PB_OK;
}

int msapi_do(msapi *c, const msapi_call *call, msapi_reply *out, char *err)
{
	memset(out, 0, sizeof *out);
	memset(&c->last, 0, sizeof c->last);
	c->last.retry_after_s = -1;
	int rc = PB_OK;
	char *url = full_url(c, call->svc, call->url);
	char *body = NULL;
	size_t blen = 0;
	const char *ctype = NULL;
	if (!url) {
		rc = pb_err(err, PB_ENOMEM, "out of memory building a URL");
		goto out;
	}
	if (call->json) {
		body = json_dumps(call->json, JSON_COMPACT);
		if (!body) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		blen = strlen(body);
		ctype = "Content-Type: application/json";
	} else if (call->json_text) {
		blen = call->json_text_len;
		ctype = "Content-Type: application/json";
	} else if (call->form) {
		blen = strlen(call->form);
		ctype = "Content-Type: application/x-www-form-urlencoded";
	}
	msapi_try t = { 0 };
	for (;;) {
		const char *hdrs[3];
		size_t nh = 0;
		char *auth = NULL;
		hdrs[nh++] = "Accept: application/json";
		if (ctype)
			hdrs[nh++] = ctype;
		if (!call->no_auth) {
			if (!c->token) {
				rc = pb_err(err, PB_EINVAL, "no access token to %s: sign in first", call->what);
				goto out;
			}
			if (!(auth = msapi_auth_header(c))) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				goto out;
			}
			hdrs[nh++] = auth;
		}
		t.token_gen = c->token_gen;
		pb_http_req req = { call->method, url, hdrs, nh, call->json ? body : call->json_text ? call->json_text : call->form, blen,
				    c->call_timeout_ms, !call->idempotent };
		pb_http_resp resp;
		char xerr[PB_ERR_MAX] = "";
		int hrc = pb_http_do(c->http, &req, &resp, xerr);
		if (auth)
			pb_secret_free(auth, strlen(auth));
		long delay = 0;
		int act = msapi_classify(c, call, &resp, hrc, xerr, &t, &delay, err);
		if (act == MSAPI_A_DONE) {
			out->http = resp;
			out->status = resp.status;
			rc = parse_reply_json(call, out, err);
			goto out;
		}
		if (act == MSAPI_A_REDIRECT) {
			char *next = full_url(c, call->svc, pb_http_header(&resp, "Location"));
			pb_http_resp_release(&resp);
			if (!next) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				goto out;
			}
			free(url);
			url = next;
			continue;
		}
		pb_http_resp_release(&resp);
		if (act < 0) {
			rc = act;
			goto out;
		}
		if (act == MSAPI_A_REFRESH) {
			if ((rc = msapi_refresh_token(c, t.token_gen, err)))
				goto out;
			continue;
		}
		pb_sleep_ms(delay);
	}
out:
	free(url);
	if (body)
		pb_secret_free(body, blen); /* bodies can hold credentials (create connection) */
	if (rc)
		msapi_reply_release(out);
	return rc;
}

/* ---------- paging ---------- */

int msapi_get_all(msapi *c, int svc, const char *path, const char *what, size_t max_items,
		  json_t **items, char *err)
{
	*items = NULL;
	if (!max_items)
		max_items = PB_MSAPI_MAX_ITEMS;
	int rc = PB_OK;
	json_t *all = json_array();
	char *url = xstrdup(path);
	msapi_reply r = { 0 };
	if (!all || !url) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t page = 0;; page++) {
		if (page >= PB_MSAPI_MAX_PAGES) {
			rc = pb_err(err, PB_ELIMIT, "%s: more than %d pages", what, PB_MSAPI_MAX_PAGES);
			goto out;
		}
		msapi_call call = { .svc = svc, .method = "GET", .url = url, .idempotent = true, .what = what };
		if ((rc = msapi_do(c, &call, &r, err)))
			goto out;
		json_t *value = json_is_array(r.json) ? r.json : json_object_get(r.json, "value");
		if (!json_is_array(value)) {
			rc = pb_err(err, PB_EIO, "%s answered %s with a list that has no \"value\" array",
				    msapi_svc_name(svc), what);
			goto out;
		}
		if (json_array_size(all) + json_array_size(value) > max_items) {
			rc = pb_err(err, PB_ELIMIT, "%s: more than %zu items", what, max_items);
			goto out;
		}
		if (json_array_extend(all, value)) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		const char *uri = json_string_value(json_object_get(r.json, "continuationUri"));
		const char *tok = json_string_value(json_object_get(r.json, "continuationToken"));
		const char *next = json_string_value(json_object_get(r.json, "@odata.nextLink"));
		char *nu = NULL;
		if (uri && *uri && msapi_url_allowed(c, uri)) {
			nu = xstrdup(uri);
		} else if (tok && *tok) {
			/* the token arrives URL-encoded already: append it verbatim */
			if (asprintf(&nu, "%s%scontinuationToken=%s", path, strchr(path, '?') ? "&" : "?", tok) < 0)
				nu = NULL;
		} else if (next && *next) {
			if (!msapi_url_allowed(c, next)) {
				rc = refuse_url(err, what, "next page link", next);
				goto out;
			}
			nu = xstrdup(next);
		} else if (uri && *uri) {
			rc = refuse_url(err, what, "next page link", uri);
			goto out;
		} else {
			break;
		}
		if (!nu) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		free(url);
		url = nu;
		msapi_reply_release(&r);
	}
	*items = all;
	all = NULL;
out:
	msapi_reply_release(&r);
	json_decref(all);
	free(url);
	return rc;
}

/* ---------- long-running operations ---------- */

int msapi_lro(msapi *c, int svc, msapi_reply *first, const char *what, json_t **result, char *err)
{
	if (result)
		*result = NULL;
	if (first->status == 200 || first->status == 201 || first->status == 204) {
		if (result && first->json)
			*result = json_incref(first->json);
		return PB_OK;
	}
	if (first->status != 202)
		return pb_err(err, PB_EIO, "%s answered %s with an unexpected HTTP %ld", msapi_svc_name(svc), what,
			      first->status);
	int rc = PB_OK;
	char *op_url = NULL, *result_url = NULL;
	msapi_reply r = { 0 };
	const char *loc = pb_http_header(&first->http, "Location");
	const char *opid = pb_http_header(&first->http, "x-ms-operation-id");
	if (loc && *loc) {
		op_url = xstrdup(loc);
	} else if (opid && *opid) {
		if ((rc = msapi_path(&op_url, err, "/v1/operations/%s", opid)))
			goto out;
	} else {
		rc = pb_err(err, PB_EIO, "%s accepted %s but gave no operation to follow (no Location header)",
			    msapi_svc_name(svc), what);
		goto out;
	}
	if (!op_url) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if (!msapi_url_allowed(c, op_url)) {
		rc = refuse_url(err, what, "long-running operation URL", op_url);
		goto out;
	}
	long long deadline = pb_mono_ms() + c->lro_max_ms;
	long ra = pb_http_retry_after(&first->http);
	const char *state = "NotStarted";
	char last_state[32] = "NotStarted";
	char poll_err[PB_ERR_MAX] = "";
	for (;;) {
		long delay = ra >= 0 ? ra * 1000 : c->poll_ms;
		long long left = deadline - pb_mono_ms();
		if (left <= 0) {
			c->last.failure = MSAPI_OUTCOME_UNKNOWN;
			rc = pb_err(err, PB_ELIMIT, "%s did not finish %s within %ld s (last state %s%s%s); it may still "
				    "complete: check the workspace before trying again", msapi_svc_name(svc), what,
				    c->lro_max_ms / 1000, last_state, poll_err[0] ? "; last poll: " : "", poll_err);
			goto out;
		}
		pb_sleep_ms(delay < left ? delay : (long)left);
		msapi_call call = { .svc = svc, .method = "GET", .url = op_url, .idempotent = true, .what = what };
		msapi_reply_release(&r);
		int prc = msapi_do(c, &call, &r, poll_err);
		if (prc) {
			/* a poll that got no answer (client-side timeout, dropped connection) says
			 * nothing about the operation: keep polling until the deadline */
			if (c->last.status == 0 && prc == PB_EIO) {
				ra = -1;
				continue;
			}
			rc = pb_err(err, prc, "%s", poll_err);
			goto out;
		}
		poll_err[0] = '\0';
		ra = pb_http_retry_after(&r.http);
		state = json_string_value(json_object_get(r.json, "status"));
		if (!state) {
			/* no operation state: the Location served the finished resource itself */
			if (r.status == 200) {
				if (result && r.json)
					*result = json_incref(r.json);
				goto out;
			}
			continue;
		}
		copy_to(last_state, sizeof last_state, state);
		if (!strcmp(state, "Succeeded"))
			break;
		if (!strcmp(state, "Failed") || !strcmp(state, "Cancelled")) {
			const json_t *e = json_object_get(r.json, "error");
			char code[128], msg[300];
			msapi_error_parse(MSAPI_FABRIC, e, NULL, code, sizeof code, msg, sizeof msg);
			if (!json_is_object(e))
				msapi_error_parse(MSAPI_FABRIC, r.json, NULL, code, sizeof code, msg, sizeof msg);
			copy_to(c->last.code, sizeof c->last.code, code);
			copy_to(c->last.message, sizeof c->last.message, msg);
			c->last.failure = msapi_failure_of(svc, 400, code);
			char sub[PB_ERR_MAX];
			int erc = msapi_error_message(svc, 400, code, msg, what, sub);
			rc = pb_err(err, erc, "%s (the long-running operation %s)", sub,
				    !strcmp(state, "Failed") ? "failed" : "was cancelled");
			goto out;
		}
	}
	if (!result)
		goto out;
	/* Succeeded: the result lives at Location (when it names /result) or <op>/result */
	const char *rl = pb_http_header(&r.http, "Location");
	if (rl && strstr(rl, "/result") && msapi_url_allowed(c, rl))
		result_url = xstrdup(rl);
	else if (asprintf(&result_url, "%s/result", op_url) < 0)
		result_url = NULL;
	if (!result_url) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	msapi_reply_release(&r);
	msapi_call call = { .svc = svc, .method = "GET", .url = result_url, .idempotent = true, .what = what };
	if ((rc = msapi_do(c, &call, &r, err))) {
		if (c->last.status == 404) /* some operations have no result */
			rc = PB_OK;
		goto out;
	}
	if (r.json)
		*result = json_incref(r.json);
out:
	msapi_reply_release(&r);
	free(op_url);
	free(result_url);
	return rc;
}

int msapi_post_at_most_once(msapi *c, const msapi_call *call, msapi_reply *r, msapi_happened_fn happened, void *ctx,
			    const char *looked, bool *done, char *err)
{
	int rc = PB_OK;
	*done = false;
	for (int round = 0; round < 2; round++) {
		msapi_reply_release(r);
		rc = msapi_do(c, call, r, err);
		if (!rc || !c->last.outcome_unknown)
			return rc;
		char first[PB_ERR_MAX], lerr[PB_ERR_MAX];
		if (xsnprintf(first, sizeof first, "%s", err))
			first[sizeof first - 1] = '\0';
		int lrc = happened(c, ctx, done, lerr);
		if (lrc)
			return pb_err(err, lrc, "%s; %s failed too: %s", first, looked, lerr);
		if (*done)
			return PB_OK;
	}
	return rc;
}

int msapi_list_items_at(msapi *c, int svc, const char *what, msapi_items *out, char *err, const char *fmt, ...)
{
	out->v = NULL;
	out->n = 0;
	char *path = NULL;
	va_list ap;
	va_start(ap, fmt);
	int rc = msapi_vpath(&path, err, fmt, ap);
	va_end(ap);
	if (!rc)
		rc = msapi_list_items(c, svc, path, what, out, err);
	free(path);
	return rc;
}

int msapi_list_items(msapi *c, int svc, const char *path, const char *what, msapi_items *out, char *err)
{
	out->v = NULL;
	out->n = 0;
	json_t *arr = NULL;
	int rc = msapi_get_all(c, svc, path, what, 0, &arr, err);
	if (!rc)
		rc = msapi_items_from_json(arr, out, err);
	json_decref(arr);
	return rc;
}

void msapi_wipe_json(json_t *v)
{
	if (json_is_string(v)) {
		pb_wipe((char *)json_string_value(v), json_string_length(v));
	} else if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
			msapi_wipe_json(x);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
			msapi_wipe_json(x);
	}
}

/* ---------- parallel jobs ---------- */

static void copy_err_line(char *dst, const char *src)
{
	if (xsnprintf(dst, PB_ERR_MAX, "%s", src))
		dst[PB_ERR_MAX - 1] = '\0';
}

int msapi_job_set(msapi *c, msapi_job *job, int svc, const char *method, const char *url, const char *body,
		  bool idempotent, const char *what, char *err)
{
	char *u = full_url(c, svc, url);
	char *b = body ? xstrdup(body) : NULL;
	if (!u || (body && !b)) {
		free(u);
		free(b);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	free(job->url);
	free(job->body);
	job->url = u;
	job->body = b;
	job->call = (msapi_call){ .svc = svc, .method = method, .url = job->url, .idempotent = idempotent,
				  .what = what };
	memset(&job->t, 0, sizeof job->t);
	return PB_OK;
}

void msapi_job_release(msapi_job *job)
{
	if (!job)
		return;
	free_each(job->url, job->body);
	if (job->auth)
		pb_secret_free(job->auth, strlen(job->auth));
	memset(job, 0, sizeof *job);
}

struct job_run {
	msapi *c;
	msapi_job *jobs;
	pb_http_req *reqs;
	msapi_job_ok_fn ok;
	msapi_job_fail_fn fail;
	void *ctx;
	msapi_batch_stats *st;
};

/* Points reqs[i] at job i's current request, with the current token. */
static int job_request(struct job_run *run, size_t i, char *err)
{
	msapi_job *j = &run->jobs[i];
	pb_http_req *q = &run->reqs[i];
	if (j->auth)
		pb_secret_free(j->auth, strlen(j->auth));
	j->auth = NULL;
	memset(q, 0, sizeof *q);
	size_t nh = 0;
	j->hdrs[nh++] = "Accept: application/json";
	if (!j->call.no_auth) {
		if (!(j->auth = msapi_auth_header(run->c)))
			return pb_err(err, PB_EINVAL, "no access token to %s: sign in first", j->call.what);
		j->hdrs[nh++] = j->auth;
	}
	if (j->body) {
		j->hdrs[nh++] = "Content-Type: application/json";
		q->body = j->body;
		q->body_len = strlen(j->body);
	}
	q->method = j->call.method;
	q->url = j->url;
	q->headers = j->hdrs;
	q->nheaders = nh;
	q->fresh_connection = !j->call.idempotent;
	q->timeout_ms = run->c->call_timeout_ms;
	j->t.token_gen = run->c->token_gen;
	return PB_OK;
}

/* Counts a job that failed for good and asks the caller whether to go on. */
static int job_failed(struct job_run *run, size_t idx, int rc, const char *jerr, char *batch_err)
{
	run->st->failed++;
	if (!run->st->first_error[0])
		copy_err_line(run->st->first_error, jerr);
	int prc;
	if (run->fail && (prc = run->fail(run->ctx, idx, &run->jobs[idx], rc, jerr, batch_err)) < 0)
		return prc;
	return PB_HTTP_DONE;
}

static int job_step(struct job_run *run, size_t idx, pb_http_resp *resp, int rc, const char *xerr,
		    long *delay_ms, char *batch_err)
{
	msapi_job *j = &run->jobs[idx];
	msapi *c = run->c;
	run->st->requests++;
	run->st->busy_seconds += resp->seconds;
	char jerr[PB_ERR_MAX];
	long delay = 0;
	int act = msapi_classify(c, &j->call, resp, rc, xerr, &j->t, &delay, jerr);
	int prc;
	if (act < 0)
		return job_failed(run, idx, act, jerr, batch_err);
	switch (act) {
	case MSAPI_A_REFRESH:
		if ((prc = msapi_refresh_token(c, j->t.token_gen, batch_err)))
			return prc;
		run->st->retries++;
		*delay_ms = 0;
		break;
	case MSAPI_A_RETRY:
		run->st->retries++;
		*delay_ms = delay;
		break;
	case MSAPI_A_REDIRECT: {
		char *loc = full_url(c, j->call.svc, pb_http_header(resp, "Location"));
		if (!loc)
			return pb_err(batch_err, PB_ENOMEM, "out of memory");
		free(j->url);
		j->url = loc;
		j->call.url = loc;
		*delay_ms = 0;
		break;
	}
	default: {
		int ret = run->ok ? run->ok(run->ctx, idx, j, resp, delay_ms, jerr) : PB_HTTP_DONE;
		if (ret == MSAPI_JOB_FAILED)
			return job_failed(run, idx, PB_EIO, jerr, batch_err);
		if (ret < 0)
			return pb_err(batch_err, ret, "%s", jerr);
		if (ret != PB_HTTP_AGAIN)
			return ret;
		break;
	}
	}
	if ((prc = job_request(run, idx, batch_err)))
		return prc;
	return PB_HTTP_AGAIN;
}

static int job_reply(void *ctx, size_t idx, pb_http_resp *resp, int rc, const char *xerr, long *delay_ms,
		     char *batch_err)
{
	struct job_run *run = ctx;
	msapi_job *j = &run->jobs[idx];
	if (!j->slot_ms)
		j->slot_ms = pb_mono_ms() - (long long)(resp->seconds * 1000);
	int ret = job_step(run, idx, resp, rc, xerr, delay_ms, batch_err);
	if (ret == PB_HTTP_DONE)
		run->st->slot_seconds += (double)(pb_mono_ms() - j->slot_ms) / 1000.0;
	return ret;
}

int msapi_run_jobs(msapi *c, msapi_job *jobs, size_t n, int parallel, msapi_job_ok_fn ok,
		   msapi_job_fail_fn fail, void *ctx, msapi_batch_stats *st, char *err)
{
	msapi_batch_stats local;
	if (!st)
		st = &local;
	memset(st, 0, sizeof *st);
	if (!n)
		return PB_OK;
	struct job_run run = { c, jobs, calloc(n, sizeof *run.reqs), ok, fail, ctx, st };
	int rc = PB_OK;
	if (!run.reqs)
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && !rc; i++)
		rc = job_request(&run, i, err);
	if (!rc)
		rc = pb_http_run_many(c->http, run.reqs, n, parallel, job_reply, &run, err);
	free(run.reqs);
	return rc;
}

