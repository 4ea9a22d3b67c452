/* The jobs' pages: /jobs (my jobs; an owner sees the organization's) and /jobs/{id} (a job's
 * progress through its phases, each with its time, and its outcome: for a publish, Open in
 * Power BI or the error and what to do). Both cancel a job that has not ended with a form
 * posted to the page itself (POST /jobs, POST /jobs/{id}), as POST /api/jobs/{id}/cancel does.
 * Who sees which job is the API's rule (handlers/jobs.c jobs_visible). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/worker.h"
#include "core/store/catalog.h"
#include "core/store/identity.h"
#include "handlers/handlers.h"
#include "runtime/jobs.h"
#include "runtime/page.h"
#include "runtime/page_render.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#define JOBS_PAGE_ROWS 50

/* Milliseconds between two stored times, or -1 when one does not read. */
static long long span_ms(const char *from, const char *to)
{
	int64_t a, b;
	if (!from || !to || pb_time_parse(from, &a) || pb_time_parse(to, &b))
		return -1;
	return b >= a ? (long long)(b - a) : 0;
}

/* Each entry of detail's phase history gets "ms": how long it lasted (until the next entry, the
 * job's end or, while it runs, now). The job's "queued_ms": from its creation to its first phase
 * (absent before one). */
static int add_phase_times(json_t *detail, const pb_job *j)
{
	json_t *phases = json_object_get(detail, "phases"), *e;
	char now[PB_TIME_BUF];
	size_t i, n = json_array_size(phases);
	pb_time_format(pb_epoch_ms(), now);
	const char *end = j->finished_at ? j->finished_at : now;
	json_array_foreach(phases, i, e) {
		const char *start = json_string_value(json_object_get(e, "started_at"));
		const char *next = i + 1 < n ? json_string_value(json_object_get(json_array_get(phases, i + 1), "started_at"))
					     : end;
		long long ms = span_ms(start, next);
		if (ms >= 0 && json_object_set_new(e, "ms", json_integer(ms)))
			return PB_ENOMEM;
	}
	if (!n)   /* not started: nothing waited yet, or it ended before a worker came */
		return PB_OK;
	long long queued = span_ms(j->created_at, json_string_value(json_object_get(json_array_get(phases, 0), "started_at")));
	if (queued >= 0 && json_object_set_new(detail, "queued_ms", json_integer(queued)))
		return PB_ENOMEM;
	return PB_OK;
}

/* What a person calls the job: for a publish, the model's name and its port (from the job's
 * public input; the port only while it exists). Added to o. */
static int add_subject(struct req *r, json_t *o, const pb_job *j)
{
	json_t *in = j->input ? json_loads(j->input, 0, NULL) : NULL;
	const char *name = json_string_value(json_object_get(in, "name"));
	const char *port_id = json_string_value(json_object_get(in, "port_id"));
	cat_port *port = NULL;
	char why[PB_ERR_MAX];
	int rc = PB_OK;
	if (name && json_object_set_new(o, "title", json_string(name)))
		rc = PB_ENOMEM;
	if (!rc && port_id && !strcmp(j->kind, "publish") &&
	    !catalog_port_get(r->db, r->who.org_id, port_id, false, &port, why) &&
	    json_object_set_new(o, "port", json_pack("{s:s, s:s, s:s}", "id", port->id, "name", port->name,
						     "data_product_id", port->data_product_id)))
		rc = PB_ENOMEM;
	catalog_port_free(port);
	json_decref(in);
	return rc;
}

/* Whether the job can still be cancelled from a page, and with cleanup (its kind removes what
 * it created). */
static int add_cancel_options(json_t *o, const pb_job *j)
{
	const pb_job_kind *k = job_kind_find(j->kind);
	bool open = !job_ended(j);
	return json_object_set_new(o, "cancellable", json_boolean(open)) ||
			       json_object_set_new(o, "cleanup_possible", json_boolean(open && k && k->cleanup))
		       ? PB_ENOMEM
		       : PB_OK;
}

/* ---- /jobs/{id} ------------------------------------------------------------------------- */

/* The job page's view for job id; refused (may be NULL) is why a cancel was refused. */
static int reply_job(struct req *r, const char *id, int status, const pb_failure *refused)
{
	pb_job *j = NULL;
	json_t *detail = NULL;
	int rc = jobs_visible(r, id, &j);
	if (rc)
		return rc;
	if (!(detail = jobs_detail_json(r, j, &rc)))
		goto out;
	if (add_phase_times(detail, j) || add_subject(r, detail, j) || add_cancel_options(detail, j))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	else
		rc = pages_reply_refused(r, "job", json_pack("{s:O}", "job", detail), status, refused);
out:
	json_decref(detail);
	job_free(j);
	return rc;
}

int pages_job(struct req *r)
{
	return reply_job(r, req_capture(r, "id"), 200, NULL);
}

/* Cancels the job id from a page's form (field "cleanup" = "1" asks the job to remove what it
 * created). PB_OK when done or asked for; a refusal the page shows comes back in f with its rc
 * (job_ended, cleanup for a kind without one); anything else is in r->fail. */
static int cancel_from_form(struct req *r, const char *id, pb_failure *f)
{
	pb_job *j = NULL;
	pb_cancel_outcome outcome;
	const page_field *cleanup = page_form_get(&r->form, "cleanup");
	pb_failure_clear(f);
	int rc = jobs_visible(r, id, &j);
	if (!rc && (rc = job_cancel(r->db, j, r->who.user_id, cleanup && !strcmp(cleanup->value, "1"), &outcome, f)) &&
	    rc != PB_ECONFLICT && rc != PB_EINVAL)
		r->fail = *f;
	job_free(j);
	return rc;
}

int pages_job_cancel(struct req *r)
{
	const char *id = req_capture(r, "id");
	pb_failure f;
	int rc = cancel_from_form(r, id, &f);
	if (rc == PB_ECONFLICT || rc == PB_EINVAL)
		return reply_job(r, id, pb_rc_status(rc), &f);
	return rc ? rc : page_redirect(r, r->path);
}

/* ---- /jobs ------------------------------------------------------------------------------ */

/* "user_name" of the job's user for an owner's list (names looked up once per user). */
static int add_user_name(struct req *r, json_t *o, const pb_job *j, json_t *names)
{
	char name[PB_NAME_FIELD_MAX + 1], why[PB_ERR_MAX];
	json_t *known;
	if (!j->user_id[0])
		return PB_OK;
	if (!(known = json_object_get(names, j->user_id))) {
		/* a user deleted since shows no name */
		known = identity_user_name(r->db, r->who.org_id, j->user_id, name, why) ? json_null() : json_string(name);
		if (json_object_set_new(names, j->user_id, known))
			return PB_ENOMEM;
	}
	return json_is_string(known) && json_object_set(o, "user_name", known) ? PB_ENOMEM : PB_OK;
}

static int reply_jobs(struct req *r, int status, const pb_failure *refused)
{
	pb_job **v = NULL;
	size_t n = 0;
	pb_page page;
	char next[PB_PAGE_CURSOR_BUF];
	bool owner = r->who.role == PB_ROLE_OWNER;
	pb_job_filter filter = { .org_id = r->who.org_id, .user_id = owner ? NULL : r->who.user_id };
	json_t *list = NULL, *names = NULL;
	int rc = pb_page_parse(NULL, req_query(r, "cursor"), JOBS_PAGE_ROWS, JOBS_PAGE_ROWS, &page, r->err);
	if (rc || (rc = jobs_list(r->db, &filter, &page, &v, &n, next, r->err)))
		goto out;
	if (!(list = json_array()) || !(names = json_object())) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *o = job_json(v[i]);
		if (o && (add_subject(r, o, v[i]) || add_cancel_options(o, v[i]) ||
			  (owner && add_user_name(r, o, v[i], names)))) {
			json_decref(o);
			o = NULL;
		}
		if (!o || json_array_append_new(list, o))   /* the append frees o when it fails */
			rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	}
	if (!rc)
		rc = pages_reply_refused(r, "jobs",
					 json_pack("{s:O, s:b, s:s?, s:b}", "jobs", list, "all", owner, "next_cursor",
						   next[0] ? next : NULL, "older", page.after),
					 status, refused);
out:
	json_decref(list);
	json_decref(names);
	jobs_list_free(v, n);
	return rc;
}

int pages_jobs(struct req *r)
{
	return reply_jobs(r, 200, NULL);
}

int pages_jobs_cancel(struct req *r)
{
	const page_field *id = page_form_get(&r->form, "job_id");
	pb_failure f;
	if (!id || !id->len)
		return req_fail(r, PB_EINVAL, NULL, "the form names no job (job_id)");
	int rc = cancel_from_form(r, id->value, &f);
	if (rc == PB_ECONFLICT || rc == PB_EINVAL)
		return reply_jobs(r, pb_rc_status(rc), &f);
	return rc ? rc : page_redirect(r, "/jobs");
}
