/* /published-models/{id}: a published model's life on a page (docs/lifecycle.md): what it was
 * built from, the update its contract offers, its drift, and the buttons of the lifecycle API.
 * The form posts to the page itself with action =
 *   preview      the update's dry run (POST .../update {"dry_run": true}): the page again with
 *                the diff Power BI's live model gives; nothing changes
 *   update       the update job ({"allow_breaking"} from its checkbox): the job's page
 *   drift        the drift read now (GET .../drift): the page again with it; nothing changes
 *   auto_update  {"auto_update": "off" | "additive"} (PATCH): the page again (a redirect)
 *   unpublish    the unpublish job ({"keep_model", "keep_connection"}): the job's page
 * What the lifecycle refuses (not the publisher, a breaking change, the model busy, Power BI
 * refusing) is said on the page with its status; pbiport's own trouble and another
 * organization's model are the error page. */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/drift.h"
#include "core/flow/model_lifecycle.h"
#include "core/flow/model_unpublish.h"
#include "core/flow/model_update.h"
#include "handlers/handlers.h"
#include "runtime/util.h"

/* The page of the model; extra (stolen, may be NULL): more of the view (what an action read);
 * refused (may be NULL): why the action was not done, shown with status. */
static int reply_model(struct req *r, int status, json_t *extra, const pb_failure *refused)
{
	json_t *model = NULL, *view = extra ? extra : json_object();
	int rc = lifecycle_get_json(r->db, r->who.org_id, req_capture(r, "id"), &model, &r->fail);
	if (rc)
		goto out;
	const char *publisher = json_string_value(json_object_get(json_object_get(model, "publisher"), "user_id"));
	bool may_change = r->who.role == PB_ROLE_OWNER || (publisher && !strcmp(publisher, r->who.user_id));
	if (!view) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if (json_object_set_new(view, "model", model) ||
	    json_object_set_new(view, "may_change", json_boolean(may_change))) {
		model = NULL;   /* json_object_set_new took it */
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	return pages_reply_refused(r, "published_model", view, status, refused);
out:
	json_decref(model);
	json_decref(view);
	return rc;
}

int pages_published_model(struct req *r)
{
	return reply_model(r, 200, NULL, NULL);
}

static bool checked(const struct req *r, const char *name)
{
	const page_field *f = page_form_get(&r->form, name);
	return f && f->value[0];
}

/* The body the form's action sends to the lifecycle function, as the API would get it: new
 * text (free), NULL when out of memory. */
static char *action_body(const struct req *r, const char *action)
{
	json_t *doc = NULL;
	if (!strcmp(action, "preview")) {
		doc = json_pack("{s:b}", "dry_run", true);
	} else if (!strcmp(action, "update")) {
		doc = json_pack("{s:b}", "allow_breaking", checked(r, "allow_breaking"));
	} else if (!strcmp(action, "unpublish")) {
		doc = json_pack("{s:b, s:b}", "keep_model", checked(r, "keep_model"), "keep_connection",
				checked(r, "keep_connection"));
	} else {
		const page_field *f = page_form_get(&r->form, "auto_update");
		doc = json_pack("{s:s}", "auto_update", f ? f->value : "");
	}
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return text;
}

/* A job the action queued: its page (a reload there does not queue it again). */
static int to_job_page(struct req *r, const char *job_id)
{
	char path[16 + PB_ID_BUF];
	return xsnprintf(path, sizeof path, "/jobs/%s", job_id) ? pb_err(r->err, PB_EINTERNAL, "job id too long")
								: page_redirect(r, path);
}

int pages_published_model_action(struct req *r)
{
	const page_field *f = page_form_get(&r->form, "action");
	const char *action = f ? f->value : "", *id = req_capture(r, "id");
	static const char *const actions[] = { "preview", "update", "drift", "auto_update", "unpublish", NULL };
	size_t a = 0;
	while (actions[a] && strcmp(actions[a], action))
		a++;
	if (!actions[a])
		return req_fail(r, PB_EINVAL, "bad_request", "action must be preview, update, drift, auto_update or unpublish");
	lc_actor by = published_model_actor(r);
	json_t *read = NULL, *extra = NULL;
	char job_id[PB_ID_BUF] = "", *body = NULL;
	bool existing = false;
	pb_failure why;
	pb_failure_clear(&why);
	int rc;
	if (!strcmp(action, "drift")) {
		rc = drift_of_model(r->db, r->cfg, r->who.org_id, id, &read, &why);
	} else if (!(body = action_body(r, action))) {
		return pb_err(r->err, PB_ENOMEM, "out of memory");
	} else if (!strcmp(action, "preview") || !strcmp(action, "update")) {
		rc = model_update_request(r->db, r->cfg, &by, id, body, strlen(body), &read, job_id, &existing, &why);
	} else if (!strcmp(action, "unpublish")) {
		rc = model_unpublish_submit(r->db, &by, id, body, strlen(body), job_id, &existing, &why);
	} else {
		rc = lifecycle_patch(r->db, &by, id, body, strlen(body), &read, &why);
	}
	free(body);
	if (!rc && job_id[0]) {
		json_decref(read);
		return to_job_page(r, job_id);
	}
	if (!rc && !strcmp(action, "auto_update")) {
		json_decref(read);
		return page_redirect(r, r->path);
	}
	if (!rc) {
		/* what was read now: the page shows it beside the model */
		if (!(extra = json_object()) || json_object_set_new(extra, !strcmp(action, "drift") ? "drift_now" : "preview", read)) {
			json_decref(extra);
			return pb_err(r->err, PB_ENOMEM, "out of memory");
		}
		return reply_model(r, 200, extra, NULL);
	}
	json_decref(read);
	/* pbiport's own failures and a model of another organization: the error page */
	if (rc == PB_ENOMEM || rc == PB_EIO || rc == PB_EINTERNAL || rc == PB_ENOTFOUND) {
		r->fail = why;
		return rc;
	}
	return reply_model(r, pb_rc_status(rc), NULL, &why);
}
