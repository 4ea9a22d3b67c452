/* /semantic-models/{id}: a semantic model's refreshes (an imported model's asset id or a
 * published model's id, as for /api/semantic-models/{id}/refreshes): Refresh now, its refresh
 * schedule (set or remove), the history (pbiport's refreshes merged with Power BI's) as a
 * table and a small chart of durations and outcomes. The form posts to the page itself with
 * action = refresh | schedule | unschedule; each change answers with the page again (a
 * redirect, so a reload does not repeat it). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/refresh.h"
#include "handlers/handlers.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#define CHART_REFRESHES 30   /* the newest refreshes the chart shows */
#define NEXT_RUNS       5

/* When a refresh happened: its start, else when pbiport asked for it. */
static const char *refresh_when(const json_t *e)
{
	const char *s = json_string_value(json_object_get(e, "start"));
	return s ? s : json_string_value(json_object_get(e, "created_at"));
}

static int newest_first(const void *a, const void *b)
{
	const char *x = refresh_when(*(json_t *const *)a), *y = refresh_when(*(json_t *const *)b);
	return strcmp(y ? y : "", x ? x : "");
}

/* The history newest first (pbiport's and Power BI's entries are merged), each refresh with
 * "duration_s" when it has a start and an end; view.chart: the newest CHART_REFRESHES with a
 * duration, oldest first, and the longest of their durations. */
static int add_durations(json_t *history, json_t *view, char *err)
{
	json_t *list = json_object_get(history, "refreshes"), *bars = json_array();
	size_t n = json_array_size(list);
	json_t **v = calloc(n ? n : 1, sizeof *v);
	double longest = 0;
	int rc = PB_OK;
	if (!bars || !v) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(list, i));
	qsort(v, n, sizeof *v, newest_first);
	json_array_clear(list);
	for (size_t i = 0; i < n && !rc; i++) {
		int64_t start, end;
		const char *s = json_string_value(json_object_get(v[i], "start"));
		const char *t = json_string_value(json_object_get(v[i], "end"));
		if (json_array_append(list, v[i]))
			rc = pb_err(err, PB_ENOMEM, "out of memory");
		if (rc || !s || !t || pb_time_parse(s, &start) || pb_time_parse(t, &end) || end < start)
			continue;
		double secs = (double)(end - start) / 1000.0;
		if (json_object_set_new(v[i], "duration_s", json_real(secs)))
			rc = pb_err(err, PB_ENOMEM, "out of memory");
		else if (json_array_size(bars) < CHART_REFRESHES) {
			if (json_array_insert(bars, 0, v[i]))
				rc = pb_err(err, PB_ENOMEM, "out of memory");
			if (secs > longest)
				longest = secs;
		}
	}
	if (!rc && json_object_set_new(view, "chart", json_pack("{s:O, s:f}", "bars", bars, "longest_s", longest)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	for (size_t i = 0; v && i < n; i++)
		json_decref(v[i]);
	free(v);
	json_decref(bars);
	return rc;
}

/* The model's page; message: why the last change was refused (shown with status). */
static int reply_model(struct req *r, int status, const char *message)
{
	const char *ref = req_capture(r, "id");
	json_t *history = NULL, *schedule = NULL, *view = NULL, *next = NULL;
	char why[PB_ERR_MAX];
	int rc = refresh_history(r->db, r->cfg, r->who.org_id, r->who.user_id, ref, &history, &r->fail);
	if (rc)
		goto out;
	if ((rc = refresh_schedule_get(r->db, r->who.org_id, ref, &schedule, &r->fail)))
		goto out;
	const char *cron = json_string_value(json_object_get(schedule, "schedule"));
	if (cron && pages_next_runs(cron, NEXT_RUNS, &next, why))
		next = NULL;   /* saved before the rules changed: shown without its runs */
	view = json_pack("{s:O, s:O, s:o*, s:s*}", "model", history, "schedule", schedule, "next_runs", next, "error",
			 message);
	if (!view) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = add_durations(history, view, r->err)))
		goto out;
	rc = pages_reply(r, "semantic_model", view, status);
	view = NULL;
out:
	json_decref(view);
	json_decref(history);
	json_decref(schedule);
	return rc;
}

int pages_semantic_model(struct req *r)
{
	return reply_model(r, 200, NULL);
}

/* The schedule the form chose: a preset, or the cron text typed. */
static const char *chosen_schedule(const struct req *r)
{
	const page_field *kind = page_form_get(&r->form, "schedule");
	const page_field *cron = page_form_get(&r->form, "cron");
	if (kind && !strcmp(kind->value, "custom"))
		return cron ? cron->value : "";
	return kind ? kind->value : "";
}

int pages_semantic_model_action(struct req *r)
{
	const page_field *f = page_form_get(&r->form, "action");
	const char *action = f ? f->value : "", *ref = req_capture(r, "id");
	json_t *reply = NULL, *body = NULL;
	pb_failure why;
	int rc;
	pb_failure_clear(&why);
	if (!strcmp(action, "refresh")) {
		rc = refresh_submit(r->db, r->cfg, r->who.org_id, r->who.user_id, ref, NULL, "manual", &reply, &why);
	} else if (!strcmp(action, "schedule")) {
		if (!(body = json_pack("{s:s}", "schedule", chosen_schedule(r))))
			return pb_err(r->err, PB_ENOMEM, "out of memory");
		rc = refresh_schedule_put(r->db, r->cfg, r->who.org_id, r->who.user_id, ref, body, &reply, &why);
	} else if (!strcmp(action, "unschedule")) {
		rc = refresh_schedule_delete(r->db, r->who.org_id, r->who.user_id, ref, &reply, &why);
	} else {
		return req_fail(r, PB_EINVAL, "bad_request", "action must be refresh, schedule or unschedule");
	}
	json_decref(reply);
	json_decref(body);
	/* refused for this model (no credentials, not the publisher, a bad schedule): said on its
	 * page; another organization's model and pbiport's own trouble: the error page */
	if (rc && rc != PB_ENOTFOUND && refresh_refused(&why))
		return reply_model(r, pb_rc_status(rc), why.message);
	if (rc) {
		r->fail = why;
		return rc;
	}
	return page_redirect(r, r->path);
}
