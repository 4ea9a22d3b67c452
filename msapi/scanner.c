#include "runtime/timeutil.h"
#include "msapi/scanner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The two reads of a scan: its status and, once it succeeded, its result. */
static const struct scan_read {
	const char *resource, *what;
} SCAN_STATUS = { "scanStatus", "read a scan's status" }, SCAN_RESULT = { "scanResult", "read a scan's result" };

/* GET <ADMIN>/<resource>/<scan_id> into r. */
static int scan_get(msapi *c, const struct scan_read *read, const char *scan_id, msapi_reply *r, char *err)
{
	char *path = NULL;
	int rc = msapi_path(&path, err, ADMIN "/%s/%s", read->resource, scan_id);
	if (!rc) {
		msapi_call call = { .svc = MSAPI_POWERBI, .method = "GET", .url = path, .idempotent = true,
				    .what = read->what };
		rc = msapi_do(c, &call, r, err);
	}
	free(path);
	return rc;
}

/* The same GET as a job of a parallel scan; url, when set, is the follow-up URL Power BI gave. */
static int scan_job(msapi *c, msapi_job *job, const struct scan_read *read, const char *scan_id, const char *url,
		    char *err)
{
	char *path = NULL;
	int rc = url ? PB_OK : msapi_path(&path, err, ADMIN "/%s/%s", read->resource, scan_id);
	if (!rc)
		rc = msapi_job_set(c, job, MSAPI_POWERBI, "GET", url ? url : path, NULL, true, read->what, err);
	free(path);
	return rc;
}

int scanner_status(msapi *c, const char *scan_id, char **status, char *err)
{
	*status = NULL;
	msapi_reply r = { 0 };
	int rc = scan_get(c, &SCAN_STATUS, scan_id, &r, err);
	if (!rc) {
		const char *s = json_string_value(json_object_get(r.json, "status"));
		if (!s)
			rc = pb_err(err, PB_EIO, "Power BI sent a scan status without \"status\"");
		else if (!(*status = xstrdup(s)))
			rc = pb_err(err, PB_ENOMEM, "out of memory");
	}
	msapi_reply_release(&r);
	return rc;
}

int scanner_result(msapi *c, const char *scan_id, json_t **out, char *err)
{
	*out = NULL;
	msapi_reply r = { 0 };
	int rc = scan_get(c, &SCAN_RESULT, scan_id, &r, err);
	if (!rc && !json_is_object(r.json))
		rc = pb_err(err, PB_EIO, "Power BI sent a scan result that is not a JSON object");
	if (!rc)
		*out = json_incref(r.json);
	msapi_reply_release(&r);
	return rc;
}

/* ---------- the parallel scan ----------
 *
 * Power BI's limit of 16 counts scans that are NotStarted or Running, not results being
 * read. So each of up to 16 lanes (one msapi job each) carries one running scan at a time and
 * takes the next batch as soon as its scan has Succeeded: it starts the next scan first and
 * reads the finished scan's result while that one runs. */

enum phase { P_SUBMIT, P_POLL, P_RESULT };

struct scan_lane {
	enum phase sent;          /* the request in progress */
	bool has_cur;             /* cur: the batch whose scan this lane runs */
	size_t cur;
	char *scan_id;            /* cur's scan; NULL until getInfo answered */
	long long started_ms;     /* when cur's scan was accepted (for its time limit) */
	long long poll_due_ms;    /* when cur's status is asked next */
	long interval_ms;         /* cur's current poll interval */
	char *status_url;         /* where cur's status is asked (getInfo's Location), NULL: the built path */
	bool has_pending;         /* pending: a batch whose scan succeeded, result not read yet */
	size_t pending;
	char *pending_id;
	char *pending_url;        /* where its result is read (scanStatus's Location), NULL: the built path */
};

struct scan_run {
	msapi *c;
	struct scan_lane *lanes;
	const scanner_batch *batches;
	size_t nb, next;          /* batches[next..nb) are not taken by a lane yet */
	const char *info_path;
	const scanner_hooks *h;
	size_t succeeded, failed, running, max_running;
	char first_error[PB_ERR_MAX];
};

/* The hooks asked to stop: true with the message in err. Asked once the reply's scan id
 * (if any) has been handed over, so no started scan is forgotten. */
static bool stopped(const struct scan_run *run, char *err)
{
	if (!run->h->stop || !run->h->stop(run->h->ctx))
		return false;
	pb_err(err, PB_EIO, "the scan was stopped; %zu batches were done", run->succeeded);
	return true;
}

/* A batch that will not be scanned in this call: counted, and told to the failed hook. */
static int batch_failed(struct scan_run *run, size_t batch, int rc, const char *msg, char *err)
{
	run->failed++;
	if (!run->first_error[0] && xsnprintf(run->first_error, sizeof run->first_error, "%s", msg))
		run->first_error[PB_ERR_MAX - 1] = '\0';
	return run->h->failed ? run->h->failed(run->h->ctx, batch, rc, msg, err) : PB_OK;
}

static void scan_ended(struct scan_run *run)
{
	if (run->running)
		run->running--;
}

long scanner_first_poll_ms(long poll_ms, size_t n)
{
	if (n >= PB_SCAN_BATCH_MAX || poll_ms <= PB_SCAN_FIRST_POLL_MIN_MS)
		return poll_ms;
	long scaled = (long)(((long long)poll_ms * (long long)n + PB_SCAN_BATCH_MAX - 1) / PB_SCAN_BATCH_MAX);
	return scaled < PB_SCAN_FIRST_POLL_MIN_MS ? PB_SCAN_FIRST_POLL_MIN_MS : scaled;
}

int scanner_next_url(const msapi *c, const char *location, const char *what, const char *scan_id, char **out,
		     char *err)
{
	*out = NULL;
	/* Power BI's Location is where the scanner API says to go next; it carries our token, so only
	 * to the origin msapi talks to, and only when it names this scan */
	if (location && *location && msapi_url_allowed(c, location) && strstr(location, scan_id) &&
	    !strchr(location, '#'))
		return (*out = xstrdup(location)) ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
	return msapi_path(out, err, ADMIN "/%s/%s", what, scan_id);
}

/* The poll interval after cur: c->poll_ms after none yet (a resumed scan), then doubling up to
 * the hooks' maximum. */
static long grow_interval(const msapi *c, const scanner_hooks *h, long cur)
{
	if (cur <= 0)
		return c->poll_ms;
	long max = h->poll_max_ms > c->poll_ms ? h->poll_max_ms : c->poll_ms;
	return cur > max / 2 ? max : cur * 2;
}

/* Gives the lane the next batch, if any: a scan started earlier is polled at once. */
static int lane_take(struct scan_run *run, struct scan_lane *l, char *err)
{
	l->has_cur = false;
	free(l->scan_id);
	l->scan_id = NULL;
	free(l->status_url);
	l->status_url = NULL;
	if (run->next >= run->nb)
		return PB_OK;
	l->cur = run->next++;
	l->has_cur = true;
	const scanner_batch *b = &run->batches[l->cur];
	if (!b->scan_id)
		return PB_OK;
	if (!*b->scan_id)
		return pb_err(err, PB_EINVAL, "a resumed scan needs its scan id");
	if (!(l->scan_id = xstrdup(b->scan_id)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	l->started_ms = l->poll_due_ms = pb_mono_ms();
	l->interval_ms = 0;
	if (++run->running > run->max_running)
		run->max_running = run->running;
	return PB_OK;
}

/* Points the lane's job at its next request: start cur's scan, read the pending result, or
 * poll cur when due. PB_HTTP_DONE when the lane has nothing left. */
static int lane_next(struct scan_run *run, msapi_job *job, struct scan_lane *l, long *delay_ms, char *err)
{
	msapi *c = run->c;
	int rc;
	*delay_ms = 0;
	if (l->has_cur && !l->scan_id) {
		const scanner_batch *b = &run->batches[l->cur];
		if (b->n == 0 || b->n > PB_SCAN_BATCH_MAX)
			return pb_err(err, PB_EINVAL, "a scan takes 1 to %d workspaces (got %zu)", PB_SCAN_BATCH_MAX, b->n);
		char *body = info_body(b->ids, b->n, err);
		if (!body)
			return PB_EINVAL;
		/* a repeated getInfo only starts a second, harmless scan */
		rc = msapi_job_set(c, job, MSAPI_POWERBI, "POST", run->info_path, body, true, "start a workspace scan", err);
		free(body);
		l->sent = P_SUBMIT;
		return rc ? rc : PB_HTTP_AGAIN;
	}
	if (l->has_pending) {
		rc = scan_job(c, job, &SCAN_RESULT, l->pending_id, l->pending_url, err);
		l->sent = P_RESULT;
		return rc ? rc : PB_HTTP_AGAIN;
	}
	if (l->has_cur) {
		rc = scan_job(c, job, &SCAN_STATUS, l->scan_id, l->status_url, err);
		long long wait = l->poll_due_ms - pb_mono_ms();
		*delay_ms = wait > 0 ? (long)wait : 0;
		l->sent = P_POLL;
		return rc ? rc : PB_HTTP_AGAIN;
	}
	return PB_HTTP_DONE;
}

/* cur's scan ended badly (Power BI failed it, it timed out, or getInfo sent no id). */
static int cur_failed(struct scan_run *run, struct scan_lane *l, int rc, const char *msg, char *err)
{
	int hrc = batch_failed(run, l->cur, rc, msg, err);
	if (hrc < 0)
		return hrc;
	return lane_take(run, l, err);
}

/* A lane's job failed for good (its request failed after msapi's retries): both batches it
 * held are failed; the other lanes go on. */
static int scan_failed(void *ctx, size_t idx, msapi_job *job, int rc, const char *jerr, char *err)
{
	struct scan_run *run = ctx;
	struct scan_lane *l = &run->lanes[idx];
	msapi *c = job->user;
	/* an authorization problem hits every batch alike: stop now */
	if (c->last.status == 401 || c->last.status == 403)
		return pb_err(err, rc, "%s", jerr);
	int hrc = PB_OK;
	if (l->has_pending) {
		l->has_pending = false;
		hrc = batch_failed(run, l->pending, rc, jerr, err);
	}
	if (hrc >= 0 && l->has_cur) {
		if (l->scan_id)
			scan_ended(run);
		l->has_cur = false;
		hrc = batch_failed(run, l->cur, rc, jerr, err);
	}
	return hrc < 0 ? hrc : PB_OK;
}

static int scan_step(void *ctx, size_t idx, msapi_job *job, const pb_http_resp *resp, long *delay_ms, char *err)
{
	struct scan_run *run = ctx;
	struct scan_lane *l = &run->lanes[idx];
	const scanner_hooks *h = run->h;
	msapi *c = job->user;
	if (l->sent != P_SUBMIT && stopped(run, err))
		return PB_EIO;
	/* a result handed over as text is decoded by the caller, not on this thread */
	bool as_text = l->sent == P_RESULT && h->result_text;
	json_t *body = resp->body_len && !as_text ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	long ra = pb_http_retry_after(resp);
	char msg[PB_ERR_MAX];
	int rc = PB_OK;
	switch (l->sent) {
	case P_SUBMIT: {
		const char *id = json_string_value(json_object_get(body, "id"));
		if (!id) {
			pb_err(msg, PB_EIO, "Power BI accepted a scan but sent no scan id");
			rc = cur_failed(run, l, PB_EIO, msg, err);
			break;
		}
		if (!(l->scan_id = xstrdup(id))) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			break;
		}
		if (++run->running > run->max_running)
			run->max_running = run->running;
		if ((rc = scanner_next_url(c, pb_http_header(resp, "Location"), "scanStatus", id, &l->status_url, err)))
			break;
		l->started_ms = pb_mono_ms();
		/* Retry-After when Power BI says; else sooner for a small scan */
		l->interval_ms = scanner_first_poll_ms(c->poll_ms, run->batches[l->cur].n);
		l->poll_due_ms = l->started_ms + (ra >= 0 ? ra * 1000 : l->interval_ms);
		/* the caller keeps the id before the first poll, so a restart resumes this scan */
		if (h->started && (rc = h->started(h->ctx, l->cur, l->scan_id, err)) < 0)
			break;
		if (stopped(run, err))
			rc = PB_EIO;
		break;
	}
	case P_POLL: {
		const char *st = json_string_value(json_object_get(body, "status"));
		if (st && !strcmp(st, "Succeeded")) {
			scan_ended(run);
			/* the result is read while the lane's next scan runs */
			l->has_pending = true;
			l->pending = l->cur;
			free(l->pending_id);
			free(l->pending_url);
			l->pending_url = NULL;
			l->pending_id = l->scan_id;
			l->scan_id = NULL;
			rc = scanner_next_url(c, pb_http_header(resp, "Location"), "scanResult", l->pending_id, &l->pending_url,
					      err);
			if (!rc)
				rc = lane_take(run, l, err);
		} else if (st && !strcmp(st, "Failed")) {
			const json_t *e = json_object_get(body, "error");
			const char *em = json_string_value(json_object_get(e, "message"));
			if (!em)
				em = json_string_value(json_object_get(e, "code"));
			pb_err(msg, PB_EIO, "Power BI could not scan a batch of workspaces (scan %s): %s", l->scan_id,
			       em ? em : "no reason given");
			scan_ended(run);
			rc = cur_failed(run, l, PB_EIO, msg, err);
		} else if (pb_mono_ms() - l->started_ms > c->lro_max_ms) {
			pb_err(msg, PB_ELIMIT, "scan %s did not finish within %ld s", l->scan_id, c->lro_max_ms / 1000);
			scan_ended(run);
			rc = cur_failed(run, l, PB_ELIMIT, msg, err);
		} else {
			l->interval_ms = grow_interval(c, h, l->interval_ms);
			l->poll_due_ms = pb_mono_ms() + (ra >= 0 ? ra * 1000 : l->interval_ms);
		}
		break;
	}
	case P_RESULT:
		l->has_pending = false;
		if (as_text) {
			if ((rc = h->result_text(h->ctx, l->pending, resp->body ? resp->body : "", resp->body_len, err)) < 0)
				break;
			run->succeeded++;
			break;
		}
		if (!json_is_object(body)) {
			pb_err(msg, PB_EIO, "Power BI sent a scan result that is not a JSON object");
			rc = batch_failed(run, l->pending, PB_EIO, msg, err);
			break;
		}
		if (h->result && (rc = h->result(h->ctx, l->pending, body, err)) < 0)
			break;
		run->succeeded++;
		break;
	}
	json_decref(body);
	if (rc < 0)
		return rc;
	return lane_next(run, job, l, delay_ms, err);
}

int scanner_scan_batches(msapi *c, const scanner_batch *batches, size_t nb, const scanner_opts *o,
			 const scanner_hooks *h, scanner_stats *st, char *err)
{
	static const scanner_hooks no_hooks;
	scanner_stats local;
	if (!st)
		st = &local;
	if (!h)
		h = &no_hooks;
	memset(st, 0, sizeof *st);
	long long t0 = pb_mono_ms();
	st->batches = nb;
	int parallel = c->parallel > 0 && c->parallel < PB_SCAN_PARALLEL_MAX ? c->parallel : PB_SCAN_PARALLEL_MAX;
	st->parallel = parallel;
	if (!nb)
		return PB_OK;
	size_t nl = nb < (size_t)parallel ? nb : (size_t)parallel;
	int rc = PB_OK;
	msapi_job *jobs = calloc(nl, sizeof *jobs);
	char *path = NULL;
	struct scan_run run = { .c = c, .lanes = calloc(nl, sizeof *run.lanes), .batches = batches, .nb = nb, .h = h };
	msapi_batch_stats bs;
	memset(&bs, 0, sizeof bs);
	if (!jobs || !run.lanes || info_query(o, &path)) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	run.info_path = path;
	for (size_t i = 0; i < nl && !rc; i++) {
		long delay;
		jobs[i].user = c;
		if (!(rc = lane_take(&run, &run.lanes[i], err)))
			rc = lane_next(&run, &jobs[i], &run.lanes[i], &delay, err);
		if (rc == PB_HTTP_AGAIN)
			rc = PB_OK;
	}
	if (rc)
		goto out;
	rc = msapi_run_jobs(c, jobs, nl, parallel, scan_step, scan_failed, &run, &bs, err);
	/* batches no lane took: every lane stopped on failures */
	while (!rc && run.next < nb) {
		int hrc = batch_failed(&run, run.next++, PB_EIO, "not scanned: every scan lane failed", err);
		if (hrc < 0)
			rc = hrc;
	}
	st->succeeded = run.succeeded;
	st->failed = run.failed;
	st->max_running = run.max_running;
	st->requests = bs.requests;
	st->retries = bs.retries;
	st->busy_seconds = bs.busy_seconds;
	st->slot_seconds = bs.slot_seconds;
	if (xsnprintf(st->first_error, PB_ERR_MAX, "%s", run.first_error[0] ? run.first_error : bs.first_error))
		st->first_error[PB_ERR_MAX - 1] = '\0';
	/* with a failed hook the caller has been told about each failed batch */
	if (!rc && st->failed && !h->failed)
		rc = pb_err(err, PB_EIO, "%zu of %zu workspace batches could not be scanned; first: %s", st->failed, nb,
			    st->first_error);
out:
	st->wall_ms = pb_mono_ms() - t0;
	for (size_t i = 0; jobs && i < nl; i++)
		msapi_job_release(&jobs[i]);
	for (size_t i = 0; run.lanes && i < nl; i++) {
		free_each(run.lanes[i].scan_id, run.lanes[i].status_url, run.lanes[i].pending_id,
			  run.lanes[i].pending_url);
	}
	free(jobs);
	free(run.lanes);
	free(path);
	return rc;
}

/* ---------- scan result -> plain C ---------- */

#define ARENA_BLOCK (64u * 1024)

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	max_align_t data[];
};

/* Zeroed memory from the arena; NULL on OOM. */
static void *arena_alloc(void **arena, size_t n)
{
	struct arena_block *b = *arena;
	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	if (!b || b->size - b->used < n) {
		size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		struct arena_block *nb = malloc(sizeof *nb + size);
		if (!nb)
			return NULL;
		nb->next = b;
		nb->used = 0;
		nb->size = size;
		*arena = b = nb;
	}
	char *p = (char *)b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

void scan_result_release(scan_result *r)
{
	if (!r)
		return;
	struct arena_block *b = r->arena;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	memset(r, 0, sizeof *r);
}

struct conv {
	void **arena;
	bool oom;
};

/* Member `key` of o, matched exactly first, then case-insensitively. */
static const json_t *jget(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	if (v || !json_is_object(o))
		return v;
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)o, k, x)
		if (!strcasecmp(k, key))
			return x;
	return NULL;
}

static const char *cstr(struct conv *cv, const json_t *o, const char *key)
{
	const char *s = json_string_value(jget(o, key));
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *d = arena_alloc(cv->arena, n + 1);
	if (!d) {
		cv->oom = true;
		return NULL;
	}
	memcpy(d, s, n + 1);
	return d;
}

static bool cbool(const json_t *o, const char *key)
{
	return json_is_true(jget(o, key));
}

/* Array member `key` of o: *n elements of size sz, zeroed. */
static void *carr(struct conv *cv, const json_t *o, const char *key, size_t sz, size_t *n, const json_t **arr)
{
	*arr = jget(o, key);
	*n = json_array_size(*arr);
	if (!*n)
		return NULL;
	void *p = arena_alloc(cv->arena, *n * sz);
	if (!p) {
		cv->oom = true;
		*n = 0;
	}
	return p;
}

/* Strings at `field` of each object in array member `key`. */
static const char **cids(struct conv *cv, const json_t *o, const char *key, const char *field, size_t *n)
{
	const json_t *arr;
	const char **v = carr(cv, o, key, sizeof *v, n, &arr);
	size_t k = 0;
	for (size_t i = 0; i < *n; i++) {
		const char *s = cstr(cv, json_array_get(arr, i), field);
		if (s)
			v[k++] = s;
	}
	*n = k;
	return v;
}

static void conv_table(struct conv *cv, const json_t *t, scan_table *out)
{
	const json_t *arr;
	out->name = cstr(cv, t, "name");
	out->hidden = cbool(t, "isHidden");
	out->columns = carr(cv, t, "columns", sizeof *out->columns, &out->ncolumns, &arr);
	for (size_t i = 0; i < out->ncolumns; i++) {
		const json_t *c = json_array_get(arr, i);
		scan_column *col = &out->columns[i];
		col->name = cstr(cv, c, "name");
		col->data_type = cstr(cv, c, "dataType");
		col->column_type = cstr(cv, c, "columnType");
		col->expression = cstr(cv, c, "expression");
		col->hidden = cbool(c, "isHidden");
	}
	out->measures = carr(cv, t, "measures", sizeof *out->measures, &out->nmeasures, &arr);
	for (size_t i = 0; i < out->nmeasures; i++) {
		const json_t *m = json_array_get(arr, i);
		out->measures[i].name = cstr(cv, m, "name");
		out->measures[i].expression = cstr(cv, m, "expression");
		out->measures[i].hidden = cbool(m, "isHidden");
	}
	out->sources = cids(cv, t, "source", "expression", &out->nsources);
}

static void conv_dataset(struct conv *cv, const json_t *d, scan_dataset *out)
{
	const json_t *arr;
	out->id = cstr(cv, d, "id");
	out->name = cstr(cv, d, "name");
	out->configured_by = cstr(cv, d, "configuredBy");
	out->storage_mode = cstr(cv, d, "targetStorageMode");
	out->schema_error = cstr(cv, d, "schemaRetrievalError");
	out->tables = carr(cv, d, "tables", sizeof *out->tables, &out->ntables, &arr);
	for (size_t i = 0; i < out->ntables; i++)
		conv_table(cv, json_array_get(arr, i), &out->tables[i]);
	size_t n;
	out->expressions = carr(cv, d, "expressions", sizeof *out->expressions, &n, &arr);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(arr, i);
		scan_expression *x = &out->expressions[out->nexpressions];
		if ((x->name = cstr(cv, e, "name"))) {
			x->expression = cstr(cv, e, "expression");
			out->nexpressions++;
		}
	}
	out->datasource_ids = cids(cv, d, "datasourceUsages", "datasourceInstanceId", &out->ndatasource_ids);
	out->upstream_dataset_ids = cids(cv, d, "upstreamDatasets", "targetDatasetId", &out->nupstream_dataset_ids);
}

static void conv_workspace(struct conv *cv, const json_t *w, scan_workspace *out)
{
	const json_t *arr;
	out->id = cstr(cv, w, "id");
	out->name = cstr(cv, w, "name");
	out->type = cstr(cv, w, "type");
	out->state = cstr(cv, w, "state");
	out->datasets = carr(cv, w, "datasets", sizeof *out->datasets, &out->ndatasets, &arr);
	for (size_t i = 0; i < out->ndatasets; i++)
		conv_dataset(cv, json_array_get(arr, i), &out->datasets[i]);
	out->reports = carr(cv, w, "reports", sizeof *out->reports, &out->nreports, &arr);
	for (size_t i = 0; i < out->nreports; i++) {
		const json_t *r = json_array_get(arr, i);
		scan_report *rep = &out->reports[i];
		rep->id = cstr(cv, r, "id");
		rep->name = cstr(cv, r, "name");
		rep->dataset_id = cstr(cv, r, "datasetId");
		rep->report_type = cstr(cv, r, "reportType");
		rep->app_id = cstr(cv, r, "appId");
	}
	out->dashboards = carr(cv, w, "dashboards", sizeof *out->dashboards, &out->ndashboards, &arr);
	for (size_t i = 0; i < out->ndashboards; i++) {
		const json_t *d = json_array_get(arr, i), *tarr;
		scan_dashboard *db = &out->dashboards[i];
		db->id = cstr(cv, d, "id");
		db->name = cstr(cv, d, "displayName");
		db->app_id = cstr(cv, d, "appId");
		db->tiles = carr(cv, d, "tiles", sizeof *db->tiles, &db->ntiles, &tarr);
		for (size_t k = 0; k < db->ntiles; k++) {
			const json_t *t = json_array_get(tarr, k);
			db->tiles[k].id = cstr(cv, t, "id");
			db->tiles[k].title = cstr(cv, t, "title");
			db->tiles[k].report_id = cstr(cv, t, "reportId");
			db->tiles[k].dataset_id = cstr(cv, t, "datasetId");
		}
	}
}

int scanner_parse_result(const json_t *result, scan_result *out, char *err)
{
	memset(out, 0, sizeof *out);
	if (!json_is_object(result))
		return pb_err(err, PB_EIO, "a scan result must be a JSON object");
	struct conv cv = { &out->arena, false };
	const json_t *arr;
	out->workspaces = carr(&cv, result, "workspaces", sizeof *out->workspaces, &out->nworkspaces, &arr);
	for (size_t i = 0; i < out->nworkspaces; i++)
		conv_workspace(&cv, json_array_get(arr, i), &out->workspaces[i]);
	out->datasources = carr(&cv, result, "datasourceInstances", sizeof *out->datasources, &out->ndatasources, &arr);
	for (size_t i = 0; i < out->ndatasources; i++) {
		const json_t *d = json_array_get(arr, i);
		const json_t *cd = jget(d, "connectionDetails");
		scan_datasource *ds = &out->datasources[i];
		ds->id = cstr(&cv, d, "datasourceId");
		ds->type = cstr(&cv, d, "datasourceType");
		ds->gateway_id = cstr(&cv, d, "gatewayId");
		ds->server = cstr(&cv, cd, "server");
		ds->database = cstr(&cv, cd, "database");
		ds->path = cstr(&cv, cd, "path");
		ds->url = cstr(&cv, cd, "url");
		ds->kind = cstr(&cv, cd, "kind");
		ds->extension_kind = cstr(&cv, cd, "extensionDataSourceKind");
		ds->extension_path = cstr(&cv, cd, "extensionDataSourcePath");
	}
	if (cv.oom) {
		scan_result_release(out);
		return pb_err(err, PB_ENOMEM, "out of memory reading a scan result");
	}
	return PB_OK;
}
