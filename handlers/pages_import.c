/* Settings ▸ Integrations (organization owners; the rows need APPLICATION_INGESTIONS_ENABLED):
 *   /settings/integrations        the organization's import integrations, Add Integration
 *   /settings/integrations/new    the Add Integration wizard: Credentials, Filters (include and
 *                                 exclude patterns with * for workspaces, semantic models and
 *                                 reports), Schedule (a preset or cron, UTC, with the next runs),
 *                                 Name; ?schedule= shows the next runs of a schedule (the page's
 *                                 script asks for them as the schedule is typed)
 *   /settings/integrations/{id}   status, schedule and next runs, filters, Test (the permission
 *                                 doctor's checks with their fixes), Run now, the last 10 runs
 * The forms post to their own page; the same checks as the API (core/store/integrations.h). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/ingest.h"
#include "core/lang/cron.h"
#include "core/store/integrations.h"
#include "handlers/handlers.h"
#include "runtime/crypto.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#define NEXT_RUNS 5   /* next run times a page shows for a schedule */

/* The presets the wizard offers (core/lang/cron.h), in its order. */
static const char *const presets[] = { "@daily", "@twice_daily", "@weekly", "@monthly", NULL };

/* The filter lists of the form: field name prefix and the filters key. */
static const struct { const char *field, *key; } filter_groups[] = {
	{ "workspaces", "workspaces" }, { "semantic_models", "semantic_models" }, { "reports", "reports" },
};

int pages_next_runs(const char *schedule, int n, json_t **out, char *err)
{
	pb_cron c;
	int64_t at = pb_epoch_ms() / 1000, next;
	char when[PB_TIME_BUF];
	int rc = cron_parse(schedule, &c, err);
	if (rc)
		return rc;
	if (!(*out = json_array()))
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		if ((rc = cron_next(&c, at, &next, err))) {
			if (rc == PB_ENOTFOUND && i > 0)
				break;   /* a schedule that ends (a date that comes once): what there is */
			json_decref(*out);
			*out = NULL;
			return rc == PB_ENOTFOUND ? pb_err(err, PB_EINVAL, "schedule '%.128s' never runs", schedule) : rc;
		}
		pb_time_format(next * 1000, when);
		if (json_array_append_new(*out, json_string(when))) {
			json_decref(*out);
			*out = NULL;
			return pb_err(err, PB_ENOMEM, "out of memory");
		}
		at = next;
	}
	return PB_OK;
}

/* {"schedule": text, "runs": [...]} or {"schedule": text, "error": why} for the wizard's
 * preview: a schedule the API would refuse (too often, never) says why. */
static json_t *schedule_preview(const pb_config *cfg, const char *text)
{
	char why[PB_ERR_MAX];
	pb_cron c;
	json_t *runs = NULL;
	if (cron_validate(text, cfg->min_schedule_interval_s, &c, why) ||
	    pages_next_runs(text, NEXT_RUNS, &runs, why))
		return json_pack("{s:s, s:s}", "schedule", text, "error", why);
	return json_pack("{s:s, s:o}", "schedule", text, "runs", runs);
}

/* view.presets: [{value, runs}] for the wizard's choices. */
static json_t *presets_json(const pb_config *cfg)
{
	json_t *list = json_array();
	for (size_t i = 0; list && presets[i]; i++)
		if (json_array_append_new(list, schedule_preview(cfg, presets[i]))) {
			json_decref(list);
			return NULL;
		}
	return list;
}

int pages_integrations(struct req *r)
{
	json_t *list = NULL;
	int rc = integrations_list_json(r->db, r->who.org_id, &list, r->err);
	return rc ? rc : pages_reply(r, "integrations", json_pack("{s:o}", "integrations", list), 200);
}

/* ---- the wizard ---- */

/* The text of form field name ("" when absent). */
static const char *field(const struct req *r, const char *name)
{
	const page_field *f = page_form_get(&r->form, name);
	return f ? f->value : "";
}

/* The patterns of a textarea: one per line (commas separate too), blanks dropped. New. */
static json_t *patterns(const char *text)
{
	json_t *list = json_array();
	const char *p = text;
	while (list && *p) {
		size_t n = strcspn(p, ",\r\n");
		const char *s = p, *e = p + n;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s && json_array_append_new(list, json_stringn(s, (size_t)(e - s)))) {
			json_decref(list);
			return NULL;
		}
		p += n;
		p += strspn(p, ",\r\n");
	}
	return list;
}

/* The schedule the form chose: "" (run by hand only), a preset, or the cron text typed. */
static const char *chosen_schedule(const struct req *r)
{
	const char *kind = field(r, "schedule");
	return !strcmp(kind, "custom") ? field(r, "cron") : kind;
}

/* The API's request body for the wizard's fields (integration_parse checks it). New. */
static json_t *wizard_body(const struct req *r)
{
	json_t *filters = json_object(), *body = NULL;
	char name[64];
	for (size_t g = 0; filters && g < sizeof filter_groups / sizeof filter_groups[0]; g++) {
		json_t *inc, *exc;
		xsnprintf(name, sizeof name, "%s_include", filter_groups[g].field);
		inc = patterns(field(r, name));
		xsnprintf(name, sizeof name, "%s_exclude", filter_groups[g].field);
		exc = patterns(field(r, name));
		if (json_object_set_new(filters, filter_groups[g].key, json_pack("{s:o*, s:o*}", "include", inc, "exclude", exc))) {
			json_decref(filters);
			return NULL;
		}
	}
	const char *schedule = chosen_schedule(r);
	body = filters ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:b}", "name", field(r, "name"), "type", "powerbi",
				   "tenant_id", field(r, "tenant_id"), "client_id", field(r, "client_id"), "client_secret",
				   field(r, "client_secret"), "filters", filters, "include_personal",
				   page_form_get(&r->form, "include_personal") != NULL)
		       : NULL;
	if (body && json_object_set_new(body, "schedule", *schedule ? json_string(schedule) : json_null())) {
		json_decref(body);
		body = NULL;
	}
	return body;
}

/* The wizard, with what was typed (never the secret) and why it was refused. */
static int reply_wizard(struct req *r, int status, const char *message)
{
	json_t *form = json_object(), *presets_v = presets_json(r->cfg), *preview = NULL;
	const char *schedule = req_query(r, "schedule");
	static const char *const kept[] = { "name", "tenant_id", "client_id", "schedule", "cron",
					    "workspaces_include", "workspaces_exclude", "semantic_models_include",
					    "semantic_models_exclude", "reports_include", "reports_exclude", NULL };
	for (size_t i = 0; form && kept[i]; i++) {
		const page_field *f = page_form_get(&r->form, kept[i]);
		if (f && json_object_set_new(form, kept[i], json_string(f->value))) {
			json_decref(form);
			form = NULL;
		}
	}
	if (form && page_form_get(&r->form, "include_personal"))
		json_object_set_new(form, "include_personal", json_true());
	/* the next runs of a typed schedule: ?schedule= (the script's preview), or the form's */
	if (!schedule && r->form.n && *chosen_schedule(r))
		schedule = chosen_schedule(r);
	if (schedule && *schedule)
		preview = schedule_preview(r->cfg, schedule);
	if (!form || !presets_v) {
		json_decref(form);
		json_decref(presets_v);
		json_decref(preview);
		return pb_err(r->err, PB_ENOMEM, "out of memory");
	}
	return pages_reply(r, "integration_new", json_pack("{s:o, s:o, s:o*, s:s*}", "form", form, "presets", presets_v,
							   "preview", preview, "error", message), status);
}

int pages_integration_new(struct req *r)
{
	const char *schedule = req_query(r, "schedule");
	if (schedule && strlen(schedule) > PB_CRON_MAX_TEXT)
		return req_fail(r, PB_EINVAL, "bad_request", "schedule longer than %d bytes", PB_CRON_MAX_TEXT);
	return reply_wizard(r, 200, NULL);
}

int pages_integration_create(struct req *r)
{
	json_t *body = wizard_body(r);
	integration_input in;
	pb_integration *i = NULL;
	pb_failure why;
	char path[PB_ID_BUF + 32];
	int rc;
	pb_failure_clear(&why);
	if (!body) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = integration_parse(body, true, r->cfg->min_schedule_interval_s, &in, why.message))) {
		rc = reply_wizard(r, 400, why.message);
		goto out;
	}
	rc = integrations_create(r->db, r->cfg, r->who.org_id, r->who.user_id, &in, &i, &why);
	if (rc == PB_EINVAL || rc == PB_ECONFLICT) {
		rc = reply_wizard(r, pb_rc_status(rc), why.message);
		goto out;
	}
	if (rc) {
		r->fail = why;
		goto out;
	}
	rc = xsnprintf(path, sizeof path, "/settings/integrations/%s", i->id)
		     ? pb_err(r->err, PB_EINTERNAL, "id too long")
		     : page_redirect(r, path);
out:
	integration_free(i);
	json_decref(body);
	return rc;
}

/* ---- one integration ---- */

/* Its page: the integration, its next runs, its last runs; test: the permission doctor's
 * report (Test), or test_error: why the doctor could not answer. */
static int reply_integration(struct req *r, int status, const pb_integration *i, json_t *test, const char *test_error)
{
	json_t *runs = NULL, *next = NULL;
	char why[PB_ERR_MAX];
	int rc = integration_runs_json(r->db, r->who.org_id, i->id, &runs, r->err);
	if (rc)
		return rc;
	if (i->schedule && pages_next_runs(i->schedule, NEXT_RUNS, &next, why))
		next = NULL;   /* a schedule saved before the rules changed: shown without its runs */
	return pages_reply(r, "integration",
			   json_pack("{s:o, s:o, s:o*, s:O*, s:s*}", "integration", integration_json(i), "runs", runs,
				     "next_runs", next, "test", test, "test_error", test_error),
			   status);
}

int pages_integration(struct req *r)
{
	pb_integration *i = NULL;
	int rc = integrations_get(r->db, r->who.org_id, req_capture(r, "id"), &i, r->err);
	if (!rc)
		rc = reply_integration(r, 200, i, NULL, NULL);
	integration_free(i);
	return rc;
}

/* Test: the permission doctor with the saved credentials. */
static int test_integration(struct req *r, const pb_integration *i)
{
	char *secret = NULL, whose[PB_NAME_FIELD_MAX + 32];
	size_t len = 0;
	json_t *report = NULL;
	pb_failure why;
	pb_failure_clear(&why);
	int rc = integration_open_secret(r->cfg, i, &secret, &len, r->err);
	if (rc)
		return rc;
	xsnprintf(whose, sizeof whose, "integration '%s'", i->name);
	rc = ingest_doctor(r->db, r->cfg, whose, i->tenant_id, i->client_id, secret, &report, &why);
	pb_secret_free(secret, len);
	/* Entra or Power BI out of reach: said on the page, with the status the API answers */
	rc = rc ? reply_integration(r, pb_rc_status(rc), i, NULL, why.message) : reply_integration(r, 200, i, report, NULL);
	json_decref(report);
	return rc;
}

int pages_integration_action(struct req *r)
{
	pb_integration *i = NULL;
	pb_run *run = NULL;
	bool existing = false;
	const char *action = field(r, "action");
	int rc = integrations_get(r->db, r->who.org_id, req_capture(r, "id"), &i, r->err);
	if (rc)
		goto out;
	if (!strcmp(action, "test")) {
		rc = test_integration(r, i);
	} else if (!strcmp(action, "run")) {
		/* Run now; the page again (a reload does not run twice), with the run on top */
		if (!(rc = integration_run_submit(r->db, r->who.org_id, r->who.user_id, i->id, "manual", &run, &existing,
						  r->err)))
			rc = page_redirect(r, r->path);
	} else {
		rc = req_fail(r, PB_EINVAL, "bad_request", "action must be test or run");
	}
out:
	run_free(run);
	integration_free(i);
	return rc;
}
