/* GET /api/jobs, GET /api/jobs/{id}, POST /api/jobs/{id}/cancel. A job is its user's; an
 * organization owner sees and cancels every job of the organization. Anyone else gets 404, so
 * ids reveal nothing. */
#include <jansson.h>
#include <string.h>

#include "core/flow/worker.h"
#include "handlers/handlers.h"
#include "runtime/jobs.h"
#include "runtime/json_body.h"
#include "runtime/page.h"
#include "runtime/util.h"

int jobs_visible(struct req *r, const char *id, pb_job **out)
{
	pb_job *j = NULL;
	*out = NULL;
	int rc = jobs_get(r->db, id, &j, r->err);
	if (rc && rc != PB_ENOTFOUND)
		return rc;
	if (!rc && !strcmp(j->org_id, r->who.org_id) &&
	    (!strcmp(j->user_id, r->who.user_id) || r->who.role == PB_ROLE_OWNER)) {
		*out = j;
		return PB_OK;
	}
	job_free(j);
	return req_fail(r, PB_ENOTFOUND, NULL, "no job %.64s", id);
}

json_t *jobs_detail_json(struct req *r, const pb_job *j, int *rc)
{
	json_t *o = job_json(j), *phases = NULL;
	if (!o) {
		*rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		return NULL;
	}
	if ((*rc = jobs_phases_json(r->db, j->id, &phases, r->err)) || json_object_set_new(o, "phases", phases)) {
		if (!*rc)
			*rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		json_decref(o);
		return NULL;
	}
	return o;
}

int api_jobs_get(struct req *r)
{
	pb_job *j = NULL;
	int rc = jobs_visible(r, req_capture(r, "id"), &j);
	if (rc)
		return rc;
	json_t *o = jobs_detail_json(r, j, &rc);
	job_free(j);
	return o ? req_reply_json_new(r, 200, o) : rc;
}

int api_jobs_list(struct req *r)
{
	pb_job **v = NULL;
	size_t n = 0;
	pb_page page;
	char next[PB_PAGE_CURSOR_BUF];
	pb_job_filter f = {
		.org_id = r->who.org_id,
		/* a member sees their own jobs; an owner the organization's */
		.user_id = r->who.role == PB_ROLE_OWNER ? NULL : r->who.user_id,
		.kind = req_query(r, "kind"),
		.state = req_query(r, "state"),
	};
	int rc;
	if ((rc = pb_page_parse(req_query(r, "limit"), req_query(r, "cursor"), PB_JOBS_PAGE_DEFAULT, PB_JOBS_PAGE_MAX,
				&page, r->err)))
		return rc;
	if (f.kind && !job_kind_find(f.kind)) {
		char kinds[256] = "";
		for (const pb_job_kind *k = pb_job_kinds; k->name; k++)
			(void)xsnprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s", k == pb_job_kinds ? "" : ", ",
					k->name);
		return req_fail(r, PB_EINVAL, NULL, "kind: one of %s, not \"%.64s\"", kinds, f.kind);
	}
	if (f.state && !job_state_valid(f.state))
		return req_fail(r, PB_EINVAL, NULL, "state: one of queued, running, succeeded, failed, cancelled, not "
				"\"%.64s\"", f.state);
	if ((rc = jobs_list(r->db, &f, &page, &v, &n, next, r->err)))
		return rc;
	json_t *list = jobs_json(v, n);
	jobs_list_free(v, n);
	return req_reply_json_new(r, 200, list ? json_pack("{s:o,s:s?}", "jobs", list, "next_cursor",
							   next[0] ? next : NULL) : NULL);
}

/* The optional body {"cleanup": true|false}. PB_EINVAL with r->err for a bad one. */
static int read_cleanup(struct req *r, bool *cleanup)
{
	static const char *const allowed[] = { "cleanup", NULL };
	json_t *body = NULL;
	*cleanup = false;
	if (!r->body || !r->body_len)
		return PB_OK;
	int rc = json_body_parse(r->body, r->body_len, 0, &body, r->err);
	if (!rc && !json_is_object(body))
		rc = pb_err(r->err, PB_EINVAL, "the body must be a JSON object");
	if (!rc)
		rc = json_body_only_keys(body, allowed, "", r->err);
	const json_t *v = rc ? NULL : json_object_get(body, "cleanup");
	if (!rc && v && !json_is_boolean(v))
		rc = pb_err(r->err, PB_EINVAL, "cleanup must be true or false");
	*cleanup = json_is_true(v);
	json_decref(body);
	return rc == PB_ELIMIT ? PB_EINVAL : rc;
}

int api_jobs_cancel(struct req *r)
{
	pb_job *j = NULL;
	pb_cancel_outcome outcome;
	bool cleanup;
	char id[PB_ID_BUF], url[16 + PB_ID_BUF];
	int rc = jobs_visible(r, req_capture(r, "id"), &j);
	if (rc)
		return rc;
	xsnprintf(id, sizeof id, "%s", j->id);
	if ((rc = read_cleanup(r, &cleanup)) || (rc = job_cancel(r->db, j, r->who.user_id, cleanup, &outcome, &r->fail)))
		goto out;
	job_free(j);
	j = NULL;
	if ((rc = jobs_get(r->db, id, &j, r->err)))
		goto out;
	json_t *o = jobs_detail_json(r, j, &rc);
	if (!o)
		goto out;
	/* 202: a worker finishes it (at the running job's next checkpoint); the job URL shows when */
	xsnprintf(url, sizeof url, "/api/jobs/%s", id);
	if (outcome == PB_CANCEL_REQUESTED)
		req_header(r, "Location", url);
	rc = req_reply_json_new(r, outcome == PB_CANCEL_DONE ? 200 : 202, o);
out:
	job_free(j);
	return rc;
}
