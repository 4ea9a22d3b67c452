#include "msapi/scanner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/crypto.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

#define ADMIN "/v1.0/myorg/admin/workspaces"

static int info_query(const scanner_opts *o, char **path)
{
	static const scanner_opts none;
	if (!o)
		o = &none;
	if (asprintf(path, ADMIN "/getInfo?lineage=%s&datasourceDetails=%s&datasetSchema=%s&datasetExpressions=%s"
		     "&getArtifactUsers=%s", o->lineage ? "true" : "false", o->datasource_details ? "true" : "false",
		     o->dataset_schema ? "true" : "false", o->dataset_expressions ? "true" : "false",
		     o->artifact_users ? "true" : "false") < 0) {
		*path = NULL;
		return -1;
	}
	return 0;
}

/* {"workspaces":[ids]} as new text */
static char *info_body(const char *const *ids, size_t n, char *err)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		if (!ids[i] || json_array_append_new(arr, json_string(ids[i]))) {
			json_decref(arr);
			pb_err(err, PB_EINVAL, "workspace id %zu is empty or not UTF-8", i + 1);
			return NULL;
		}
	}
	json_t *body = arr ? json_pack("{s:o}", "workspaces", arr) : NULL;
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!s)
		pb_err(err, PB_ENOMEM, "out of memory");
	return s;
}

int scanner_modified(msapi *c, const char *modified_since, bool exclude_personal, char ***ids, size_t *n,
		     char *err)
{
	*ids = NULL;
	*n = 0;
	int rc = PB_OK;
	json_t *arr = NULL;
	char **v = NULL;
	size_t count = 0;
	sbuf p;
	sbuf_init(&p, PB_HTTP_URL_MAX);
	if (sbuf_addf(&p, ADMIN "/modified?excludePersonalWorkspaces=%s", exclude_personal ? "true" : "false") ||
	    (modified_since && (sbuf_adds(&p, "&modifiedSince=") || msapi_urlenc(&p, modified_since)))) {
		rc = pb_err(err, PB_ELIMIT, "modifiedSince too long");
		goto out;
	}
	if ((rc = msapi_get_all(c, MSAPI_POWERBI, sbuf_str(&p), "list modified workspaces", 0, &arr, err)))
		goto out;
	size_t total = json_array_size(arr);
	v = calloc(total ? total : 1, sizeof *v);
	if (!v) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < total; i++) {
		const char *id = json_string_value(json_object_get(json_array_get(arr, i), "id"));
		if (!id)
			continue;
		if (!(v[count] = xstrdup(id))) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		count++;
	}
	*ids = v;
	*n = count;
	v = NULL;
out:
	msapi_strv_free(v, count);
	json_decref(arr);
	sbuf_release(&p);
	return rc;
}

int scanner_get_info(msapi *c, const char *const *ids, size_t n, const scanner_opts *o, char **scan_id, char *err)
{
	*scan_id = NULL;
	if (n == 0 || n > PB_SCAN_BATCH_MAX)
		return pb_err(err, PB_EINVAL, "a scan takes 1 to %d workspaces (got %zu)", PB_SCAN_BATCH_MAX, n);
	char *path = NULL;
	msapi_reply r = { 0 };
	json_t *body = NULL;
	int rc = PB_OK;
	char *text = info_body(ids, n, err);
	if (!text)
		return PB_ENOMEM;
	body = json_loads(text, 0, NULL);
	free(text);
	if (!body || info_query(o, &path)) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	/* a repeated getInfo only starts a second, harmless scan */
	msapi_call call = { .svc = MSAPI_POWERBI, .method = "POST", .url = path, .json = body, .idempotent = true,
			    .what = "start a workspace scan" };
	if ((rc = msapi_do(c, &call, &r, err)))
		goto out;
	const char *id = json_string_value(json_object_get(r.json, "id"));
	if (!id) {
		rc = pb_err(err, PB_EIO, "Power BI accepted the scan but sent no scan id");
		goto out;
	}
	if (!(*scan_id = xstrdup(id)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	free(path);
	json_decref(body);
	msapi_reply_release(&r);
	return rc;
}

int scanner_status(msapi *c, const char *scan_id, char **status, char *err)
{
	*status = NULL;
	char *path = NULL;
	msapi_reply r = { 0 };
	int rc = msapi_path(&path, err, ADMIN "/scanStatus/%s", scan_id);
	if (!rc) {
		msapi_call call = { .svc = MSAPI_POWERBI, .method = "GET", .url = path, .idempotent = true,
				    .what = "read a scan's status" };
		rc = msapi_do(c, &call, &r, err);
	}
	if (!rc) {
		const char *s = json_string_value(json_object_get(r.json, "status"));
		if (!s)
			rc = pb_err(err, PB_EIO, "Power BI sent a scan status without \"status\"");
		else if (!(*status = xstrdup(s)))
			rc = pb_err(err, PB_ENOMEM, "out of memory");
	}
	free(path);
	msapi_reply_release(&r);
	return rc;
}

int scanner_result(msapi *c, const char *scan_id, json_t **out, char *err)
{
	*out = NULL;
	char *path = NULL;
	msapi_reply r = { 0 };
	int rc = msapi_path(&path, err, ADMIN "/scanResult/%s", scan_id);
	if (!rc) {
		msapi_call call = { .svc = MSAPI_POWERBI, .method = "GET", .url = path, .idempotent = true,
				    .what = "read a scan's result" };
		rc = msapi_do(c, &call, &r, err);
	}
	if (!rc && !json_is_object(r.json))
		rc = pb_err(err, PB_EIO, "Power BI sent a scan result that is not a JSON object");
	if (!rc)
		*out = json_incref(r.json);
	free(path);
	msapi_reply_release(&r);
	return rc;
}

/* ---------- the parallel scan ---------- */

enum phase { P_SUBMIT, P_POLL, P_RESULT };

struct scan_job {
	enum phase phase;
	msapi_try t;
	char *body;            /* getInfo body */
	char *url;             /* current request URL */
	char *scan_id;
	char *auth;            /* secret */
	const char *hdrs[3];
	long long started_ms;  /* when the scan was accepted (for its time limit) */
	long long slot_ms;     /* when the job's first request went out (for occupancy) */
};

struct scan_run {
	msapi *c;
	struct scan_job *jobs;
	pb_http_req *reqs;
	char *info_path;
	scanner_result_fn fn;
	void *ctx;
	scanner_stats *st;
};

static void set_str(char **dst, char *v)
{
	free(*dst);
	*dst = v;
}

/* Points reqs[i] at the job's current phase. */
static int job_prepare(struct scan_run *run, size_t i, char *err)
{
	struct scan_job *j = &run->jobs[i];
	pb_http_req *q = &run->reqs[i];
	if (j->auth)
		pb_secret_free(j->auth, strlen(j->auth));
	if (!(j->auth = msapi_auth_header(run->c)))
		return pb_err(err, PB_EINVAL, "no access token to scan workspaces: sign in first");
	j->hdrs[0] = "Accept: application/json";
	j->hdrs[1] = j->auth;
	j->hdrs[2] = "Content-Type: application/json";
	memset(q, 0, sizeof *q);
	q->headers = j->hdrs;
	q->url = j->url;
	j->t.token_gen = run->c->token_gen;
	if (j->phase == P_SUBMIT) {
		q->method = "POST";
		q->body = j->body;
		q->body_len = strlen(j->body);
		q->nheaders = 3;
	} else {
		q->method = "GET";
		q->nheaders = 2;
	}
	return PB_OK;
}

static int job_phase(struct scan_run *run, size_t i, enum phase ph, char *err)
{
	struct scan_job *j = &run->jobs[i];
	char *url = NULL;
	int rc = msapi_path(&url, err, ph == P_POLL ? ADMIN "/scanStatus/%s" : ADMIN "/scanResult/%s", j->scan_id);
	if (rc)
		return rc;
	char *full = NULL;
	if (asprintf(&full, "%s%s", msapi_base(run->c, MSAPI_POWERBI), url) < 0)
		full = NULL;
	free(url);
	if (!full)
		return pb_err(err, PB_ENOMEM, "out of memory");
	set_str(&j->url, full);
	j->phase = ph;
	memset(&j->t, 0, sizeof j->t);
	return job_prepare(run, i, err);
}

static void job_failed(struct scan_run *run, const char *msg)
{
	run->st->failed++;
	if (!run->st->first_error[0] && xsnprintf(run->st->first_error, PB_ERR_MAX, "%s", msg))
		run->st->first_error[PB_ERR_MAX - 1] = '\0';
}

static int on_reply_step(void *ctx, size_t idx, pb_http_resp *resp, int rc, const char *xerr, long *delay_ms,
			 char *batch_err)
{
	struct scan_run *run = ctx;
	struct scan_job *j = &run->jobs[idx];
	msapi *c = run->c;
	run->st->requests++;
	run->st->busy_seconds += resp->seconds;
	static const char *const whats[] = { "start a workspace scan", "read a scan's status", "read a scan's result" };
	msapi_call call = { .svc = MSAPI_POWERBI, .method = run->reqs[idx].method, .url = j->url,
			    .idempotent = true, .what = whats[j->phase] };
	char jerr[PB_ERR_MAX];
	long delay = 0;
	int act = msapi_classify(c, &call, resp, rc, xerr, &j->t, &delay, jerr);
	if (act < 0) {
		if (c->last.status == 401 || c->last.status == 403) {
			/* an authorization problem hits every batch alike: stop now */
			return pb_err(batch_err, act, "%s", jerr);
		}
		job_failed(run, jerr);
		return PB_HTTP_DONE;
	}
	int prc;
	switch (act) {
	case MSAPI_A_REFRESH:
		if ((prc = msapi_refresh_token(c, j->t.token_gen, batch_err)))
			return prc;
		if ((prc = job_prepare(run, idx, batch_err)))
			return prc;
		*delay_ms = 0;
		return PB_HTTP_AGAIN;
	case MSAPI_A_RETRY:
		run->st->retries++;
		if ((prc = job_prepare(run, idx, batch_err)))
			return prc;
		*delay_ms = delay;
		return PB_HTTP_AGAIN;
	case MSAPI_A_REDIRECT: {
		char *loc = xstrdup(pb_http_header(resp, "Location"));
		if (!loc)
			return pb_err(batch_err, PB_ENOMEM, "out of memory");
		set_str(&j->url, loc);
		if ((prc = job_prepare(run, idx, batch_err)))
			return prc;
		*delay_ms = 0;
		return PB_HTTP_AGAIN;
	}
	default:
		break;
	}
	json_t *body = resp->body_len ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	int ret = PB_HTTP_DONE;
	long ra = pb_http_retry_after(resp);
	long poll = ra >= 0 ? ra * 1000 : c->poll_ms;
	switch (j->phase) {
	case P_SUBMIT: {
		const char *id = json_string_value(json_object_get(body, "id"));
		if (!id) {
			job_failed(run, "Power BI accepted a scan but sent no scan id");
			break;
		}
		char *sid = xstrdup(id);
		if (!sid) {
			ret = pb_err(batch_err, PB_ENOMEM, "out of memory");
			break;
		}
		set_str(&j->scan_id, sid);
		j->started_ms = pb_now_ms();
		if ((prc = job_phase(run, idx, P_POLL, batch_err))) {
			ret = prc;
			break;
		}
		*delay_ms = poll;
		ret = PB_HTTP_AGAIN;
		break;
	}
	case P_POLL: {
		const char *s = json_string_value(json_object_get(body, "status"));
		if (s && !strcmp(s, "Succeeded")) {
			if ((prc = job_phase(run, idx, P_RESULT, batch_err))) {
				ret = prc;
				break;
			}
			*delay_ms = 0;
			ret = PB_HTTP_AGAIN;
		} else if (s && !strcmp(s, "Failed")) {
			char m[PB_ERR_MAX];
			const json_t *e = json_object_get(body, "error");
			const char *em = json_string_value(json_object_get(e, "message"));
			if (!em)
				em = json_string_value(json_object_get(e, "code"));
			pb_err(m, PB_EIO, "Power BI could not scan a batch of workspaces (scan %s): %s", j->scan_id,
			       em ? em : "no reason given");
			job_failed(run, m);
		} else if (pb_now_ms() - j->started_ms > c->lro_max_ms) {
			char m[PB_ERR_MAX];
			pb_err(m, PB_ELIMIT, "scan %s did not finish within %ld s", j->scan_id, c->lro_max_ms / 1000);
			job_failed(run, m);
		} else {
			memset(&j->t, 0, sizeof j->t);
			if ((prc = job_prepare(run, idx, batch_err))) {
				ret = prc;
				break;
			}
			*delay_ms = poll;
			ret = PB_HTTP_AGAIN;
		}
		break;
	}
	case P_RESULT: {
		if (!json_is_object(body)) {
			job_failed(run, "Power BI sent a scan result that is not a JSON object");
			break;
		}
		char ferr[PB_ERR_MAX] = "";
		if ((prc = run->fn ? run->fn(run->ctx, body, ferr) : PB_OK)) {
			ret = pb_err(batch_err, prc, "%s", ferr[0] ? ferr : "the scan result handler failed");
			break;
		}
		run->st->succeeded++;
		break;
	}
	}
	json_decref(body);
	return ret;
}

/* Runs one step and keeps the time each batch held one of the scan slots. */
static int on_reply(void *ctx, size_t idx, pb_http_resp *resp, int rc, const char *xerr, long *delay_ms,
		    char *batch_err)
{
	struct scan_run *run = ctx;
	struct scan_job *j = &run->jobs[idx];
	long long now = pb_now_ms();
	if (!j->slot_ms)
		j->slot_ms = now - (long long)(resp->seconds * 1000);
	int ret = on_reply_step(ctx, idx, resp, rc, xerr, delay_ms, batch_err);
	if (ret == PB_HTTP_DONE)
		run->st->slot_seconds += (double)(pb_now_ms() - j->slot_ms) / 1000.0;
	return ret;
}

int scanner_scan_all(msapi *c, const char *const *ids, size_t n, const scanner_opts *o, scanner_result_fn fn,
		     void *ctx, scanner_stats *st, char *err)
{
	scanner_stats local;
	if (!st)
		st = &local;
	memset(st, 0, sizeof *st);
	long long t0 = pb_now_ms();
	size_t nb = (n + PB_SCAN_BATCH_MAX - 1) / PB_SCAN_BATCH_MAX;
	st->batches = nb;
	int parallel = c->parallel > 0 && c->parallel < PB_SCAN_PARALLEL_MAX ? c->parallel : PB_SCAN_PARALLEL_MAX;
	st->parallel = parallel;
	if (!nb)
		return PB_OK;
	int rc = PB_OK;
	struct scan_run run = { c, calloc(nb, sizeof *run.jobs), calloc(nb, sizeof *run.reqs), NULL, fn, ctx, st };
	char *q = NULL;
	if (!run.jobs || !run.reqs || info_query(o, &q)) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if (asprintf(&run.info_path, "%s%s", msapi_base(c, MSAPI_POWERBI), q) < 0) {
		run.info_path = NULL;
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t b = 0; b < nb; b++) {
		size_t first = b * PB_SCAN_BATCH_MAX;
		size_t cnt = n - first < PB_SCAN_BATCH_MAX ? n - first : PB_SCAN_BATCH_MAX;
		struct scan_job *j = &run.jobs[b];
		if (!(j->body = info_body(ids + first, cnt, err))) {
			rc = PB_EINVAL;
			goto out;
		}
		if (!(j->url = xstrdup(run.info_path))) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		if ((rc = job_prepare(&run, b, err)))
			goto out;
	}
	rc = pb_http_run_many(c->http, run.reqs, nb, parallel, on_reply, &run, err);
	if (!rc && st->failed)
		rc = pb_err(err, PB_EIO, "%zu of %zu workspace batches could not be scanned; first: %s", st->failed, nb,
			    st->first_error);
out:
	st->wall_ms = pb_now_ms() - t0;
	for (size_t b = 0; run.jobs && b < nb; b++) {
		struct scan_job *j = &run.jobs[b];
		free(j->body);
		free(j->url);
		free(j->scan_id);
		if (j->auth)
			pb_secret_free(j->auth, strlen(j->auth));
	}
	free(run.jobs);
	free(run.reqs);
	free(run.info_path);
	free(q);
	return rc;
}
