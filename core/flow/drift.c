/* Drift of published models and of data products made from Power BI assets. See
 * core/flow/drift.h. */
#include "core/flow/drift.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/ms_failure.h"
#include "core/flow/webhooks.h"
#include "core/lang/contract.h"
#include "core/lang/model_diff.h"
#include "core/store/drift_records.h"
#include "runtime/jobs.h"
#include "runtime/log.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

/* ---- published models -------------------------------------------------------------------- */

static bool changes_in(const json_t *diff)
{
	return json_array_size(json_object_get(diff, "changes")) > 0;
}

/* A model_diff failure: a side that does not read is Power BI's (or the kept definition's). */
static int diff_failed(int rc, pb_failure *f)
{
	if (rc == PB_EINVAL || rc == PB_ELIMIT) {
		pb_fail_prefix(f, "the model's definition cannot be compared");
		return pb_fail_as(f, PB_EUPSTREAM, "definition_unreadable");
	}
	return pb_fail_as(f, rc, NULL);
}

/* The drift report of r (see drift.h), its live definition read through s. *out new. */
static int drift_report(pb_db *db, const pb_config *cfg, pbi_session *s, const pm_row *r, json_t **out,
			pb_failure *f)
{
	lc_render want = { 0 };
	pb_files stored = { 0 }, live = { 0 };
	json_t *total = NULL, *by_contract = NULL, *by_power_bi = NULL;
	bool kept = false, rendered = false;
	char contract_error[PB_ERR_MAX] = "", now[PB_TIME_BUF];
	*out = NULL;
	int rc = lifecycle_stored_definition(r, &stored, &kept, f->message);
	if (rc) {
		rc = diff_failed(rc, f);
		goto out;
	}
	pb_failure rf;
	pb_failure_clear(&rf);
	if (!(rc = lifecycle_render(db, cfg, r, &want, &rf)))
		rendered = true;
	else if (rf.rc == PB_ECONFLICT || rf.rc == PB_ENOTFOUND || rf.rc == PB_EINVAL || rf.rc == PB_EINTERNAL)
		xsnprintf(contract_error, sizeof contract_error, "%s", rf.message);   /* retired, gone, fails to render */
	else {
		*f = rf;
		goto out;
	}
	rc = PB_OK;
	if (!rendered && !kept) {
		rc = pb_fail(f, PB_ECONFLICT, "conflict", "model \"%s\": %s; and no definition was kept at its publish to "
			     "compare with", r->name ? r->name : r->id, contract_error);
		goto out;
	}
	if ((rc = lifecycle_live_definition(&s->api, r, &live, f->message))) {
		rc = lifecycle_api_failure(s, rc, r, "reading the definition", f);
		goto out;
	}
	const pb_files *want_files = rendered ? &want.files : &stored;
	if ((rc = model_diff(want_files, &live, &total, f->message)) ||
	    (kept && rendered && (rc = model_diff(&want.files, &stored, &by_contract, f->message))) ||
	    (kept && (rc = model_diff(&stored, &live, &by_power_bi, f->message)))) {
		rc = diff_failed(rc, f);
		goto out;
	}
	/* without a kept definition every difference is the contract's */
	bool contract = kept ? changes_in(by_contract) : changes_in(total);
	bool power_bi = kept && changes_in(by_power_bi);
	const char *cause = contract && power_bi ? "both" : contract ? "contract" : power_bi ? "power_bi" : NULL;
	pb_now(now);
	const json_t *of_contract = kept ? (by_contract ? json_object_get(by_contract, "changes") : NULL)
					 : json_object_get(total, "changes");
	const json_t *of_power_bi = by_power_bi ? json_object_get(by_power_bi, "changes") : NULL;
	json_t *extra = json_pack("{s:s,s:s?,s:o,s:o,s:s}", "published_model_id", r->id, "cause", cause,
				  "contract_changes", of_contract ? json_deep_copy(of_contract) : json_array(),
				  "power_bi_changes", of_power_bi ? json_deep_copy(of_power_bi) : json_array(), "checked_at",
				  now);
	if (!extra || (contract_error[0] && json_object_set_new(extra, "contract_error", json_string(contract_error))) ||
	    json_object_update(total, extra)) {
		json_decref(extra);
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	json_decref(extra);
	*out = total;
	total = NULL;
out:
	lc_render_release(&want);
	pb_files_release(&stored);
	pb_files_release(&live);
	json_decref(total);
	json_decref(by_contract);
	json_decref(by_power_bi);
	return rc;
}

int drift_of_model(pb_db *db, const pb_config *cfg, const char *org_id, const char *id, json_t **out, pb_failure *f)
{
	pm_row *r = NULL;
	pbi_session s;
	const char *state;
	bool have_session = false;
	*out = NULL;
	pb_failure_clear(f);
	int rc = lifecycle_load(db, org_id, id, &r, f);
	if (rc)
		goto out;
	if ((rc = lifecycle_state(db, r, &state, NULL, f->message))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if (!strcmp(state, "unpublished") || !strcmp(state, "detached")) {
		rc = lifecycle_check_state(r, state, "check for drift", f);
		goto out;
	}
	if ((rc = lifecycle_session(&s, db, cfg, r, f)))
		goto out;
	have_session = true;
	rc = drift_report(db, cfg, &s, r, out, f);
out:
	if (have_session)
		pbi_session_release(&s);
	pm_row_free(r);
	return rc;
}

int drift_list(pb_db *db, const char *org_id, json_t **out, pb_failure *f)
{
	json_t *models = NULL, *products = NULL;
	*out = NULL;
	int rc = pm_drift_list_json(db, org_id, &models, f->message);
	if (!rc)
		rc = product_drift_list_json(db, org_id, &products, f->message);
	if (rc) {
		json_decref(models);
		return pb_fail_as(f, rc, NULL);
	}
	/* json_pack takes both, whatever it answers */
	if (!(*out = json_pack("{s:o,s:o}", "models", models, "data_products", products)))
		return pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	return PB_OK;
}

/* ---- the daily check ---------------------------------------------------------------------- */

/* Checks model id of the job's organization, records its drift and, for a new one, queues
 * drift.detected with it. *drifting / *is_new tell. */
static int check_model(pb_job_ctx *ctx, const char *id, bool *drifting, bool *is_new, pb_failure *f)
{
	pm_row *r = NULL;
	pbi_session s;
	json_t *report = NULL, *data = NULL;
	char *text = NULL;
	bool have_session = false;
	*drifting = *is_new = false;
	int rc = lifecycle_load(ctx->db, ctx->job->org_id, id, &r, f);
	if (rc || (rc = lifecycle_session(&s, ctx->db, ctx->cfg, r, f)))
		goto out;
	have_session = true;
	if ((rc = drift_report(ctx->db, ctx->cfg, &s, r, &report, f)))
		goto out;
	const char *cause = json_string_value(json_object_get(report, "cause"));
	*drifting = cause != NULL;
	/* the record keeps what a reader of the drift needs; the report's checked_at is the row's */
	json_object_del(report, "checked_at");
	if (!(text = json_dumps(report, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	if ((rc = db_begin(ctx->db, f->message))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if (!(rc = pm_set_drift(ctx->db, r->id, text, cause, is_new, f->message)) && *is_new && cause) {
		data = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s,s:O?}", "published_model_id", r->id, "name", r->name ? r->name : "",
				 "workspace_id", r->workspace_id, "semantic_model_id", r->semantic_model_id, "web_url",
				 r->web_url, "cause", cause, "summary", json_object_get(report, "summary"));
		rc = data ? webhook_emit(ctx->db, ctx->job->org_id, "drift.detected", data, f->message)
			  : pb_err(f->message, PB_ENOMEM, "out of memory");
	}
	if (rc) {
		db_rollback(ctx->db);
		pb_fail_as(f, rc, NULL);
	} else if ((rc = db_commit(ctx->db, f->message))) {
		pb_fail_as(f, rc, NULL);
	}
out:
	if (have_session)
		pbi_session_release(&s);
	free(text);
	json_decref(data);
	json_decref(report);
	pm_row_free(r);
	return rc;
}

int drift_check_job(pb_job_ctx *ctx)
{
	char (*ids)[PB_ID_BUF] = NULL;
	size_t n = 0, drifting = 0, fresh = 0;
	json_t *errors = json_array();
	int rc = errors ? job_phase(ctx, "checking", 5) : pb_err(ctx->err, PB_ENOMEM, "out of memory");
	if (rc || (rc = pm_active_ids(ctx->db, ctx->job->org_id, NULL, &ids, &n, ctx->err)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		pb_failure f;
		bool d, is_new;
		pb_failure_clear(&f);
		if ((rc = job_phase(ctx, NULL, 5 + (int)(90 * i / n))))
			goto out;
		if (check_model(ctx, ids[i], &d, &is_new, &f)) {
			/* one model that cannot be checked (its publisher gone or disconnected, Power BI
			 * refusing) does not keep the others from being checked */
			if (!json_array_append_new(errors, json_pack("{s:s,s:s,s:s}", "published_model_id", ids[i], "code",
								     pb_failure_code(&f), "message", f.message)))
				continue;
			rc = pb_err(ctx->err, PB_ENOMEM, "out of memory");
			goto out;
		}
		drifting += d;
		fresh += is_new && d;
	}
	ctx->result = json_pack("{s:I,s:I,s:I,s:O}", "checked", (json_int_t)(n - json_array_size(errors)), "drifting",
				(json_int_t)drifting, "new", (json_int_t)fresh, "errors", errors);
	if (!ctx->result)
		rc = pb_err(ctx->err, PB_ENOMEM, "out of memory");
out:
	free(ids);
	json_decref(errors);
	return rc;
}

/* queue_check's transaction: the organization and its due times. */
struct drift_due {
	const char *org_id, *now, *next;
};

static int queue_check_work(pb_db *db, void *ctx, char *err)
{
	const struct drift_due *d = ctx;
	char job_id[PB_ID_BUF], key[32 + PB_ID_BUF];
	bool won = false, existing = false;
	xsnprintf(key, sizeof key, "drift_check:%s", d->org_id);
	pb_job_spec spec = { .kind = "drift_check", .org_id = d->org_id, .idempotency_key = key, .max_attempts = 3 };
	int rc = drift_schedule_advance(db, d->org_id, d->now, d->next, &won, err);
	return rc || !won ? rc : jobs_submit(db, &spec, job_id, &existing, err);
}

/* Queues org_id's check when its due time is still there to take (the compare-and-swap of
 * drift_schedule_advance: one worker of all those ticking takes it), with the move. */
static int queue_check(pb_db *db, const char *org_id, const char *now, const char *next, char *err)
{
	struct drift_due d = { org_id, now, next };
	return db_transaction(db, queue_check_work, &d, err);
}

int drift_schedule_tick(pb_db *db, const pb_config *cfg, char *err)
{
	char (*ids)[PB_ID_BUF] = NULL;
	size_t n = 0;
	char now[PB_TIME_BUF], next[PB_TIME_BUF];
	if (!cfg || !cfg->powerbi_web_enabled)
		return PB_OK;
	int64_t t = pb_epoch_ms();
	pb_time_format(t, now);
	pb_time_format(t + PB_DRIFT_CHECK_INTERVAL_MS, next);
	/* an organization seen for the first time is checked a day later, then daily */
	int rc = drift_schedule_unseeded(db, &ids, &n, err);
	for (size_t i = 0; !rc && i < n; i++)
		rc = drift_schedule_seed(db, ids[i], next, err);
	free(ids);
	ids = NULL;
	if (!rc)
		rc = drift_schedule_due(db, now, &ids, &n, err);
	for (size_t i = 0; !rc && i < n; i++)
		rc = queue_check(db, ids[i], now, next, err);
	free(ids);
	return rc;
}

/* ---- data products made from Power BI assets --------------------------------------------- */

static const pb_table *table_named(const pb_contract *c, const char *name)
{
	for (size_t i = 0; i < c->ntables; i++)
		if (str_ieq(c->tables[i].name, name))
			return &c->tables[i];
	return NULL;
}

static const pb_column *column_named(const pb_table *t, const char *name)
{
	for (size_t i = 0; t && i < t->ncolumns; i++)
		if (str_ieq(t->columns[i].name, name))
			return &t->columns[i];
	return NULL;
}

static json_t *column_props(const pb_column *c)
{
	return c ? json_pack("{s:s?,s:s?}", "logicalType", c->logical_type, "description", c->description) : json_null();
}

static bool same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* One change in model_diff's shape. */
static int add_change(json_t *changes, const char *object, const char *table, const char *name, const char *change,
		      bool breaking, json_t *before, json_t *after, char *err)
{
	json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:b,s:o,s:o}", "object", object, "table", table, "name", name, "change",
			      change, "breaking", breaking, "before", before ? before : json_null(), "after",
			      after ? after : json_null());
	return c && !json_array_append_new(changes, c) ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
}

/* The changes from a's tables to b's (added and changed; removed when reverse: a and b swapped). */
static int table_changes(const pb_contract *a, const pb_contract *b, bool reverse, json_t *changes, char *err)
{
	int rc = PB_OK;
	for (size_t i = 0; !rc && i < b->ntables; i++) {
		const pb_table *tb = &b->tables[i], *ta = table_named(a, tb->name);
		if (!ta) {
			rc = add_change(changes, "table", tb->name, tb->name, reverse ? "removed" : "added", reverse,
					reverse ? json_pack("{s:s?}", "description", tb->description) : NULL,
					reverse ? NULL : json_pack("{s:s?}", "description", tb->description), err);
			continue;
		}
		for (size_t k = 0; !rc && k < tb->ncolumns; k++) {
			const pb_column *cb = &tb->columns[k], *ca = column_named(ta, cb->name);
			if (!ca)
				rc = add_change(changes, "column", tb->name, cb->name, reverse ? "removed" : "added", reverse,
						reverse ? column_props(cb) : NULL, reverse ? NULL : column_props(cb), err);
			else if (!reverse && (!same_text(ca->logical_type, cb->logical_type) ||
					      !same_text(ca->description, cb->description)))
				rc = add_change(changes, "column", tb->name, cb->name, "changed",
						!same_text(ca->logical_type, cb->logical_type), column_props(ca),
						column_props(cb), err);
		}
	}
	return rc;
}

int drift_schema_diff(const char *before, const char *after, json_t **out, char *err)
{
	pb_contract *a = NULL, *b = NULL;
	json_t *changes = json_array();
	size_t added = 0, removed = 0, changed = 0, i;
	bool breaking = false;
	const json_t *c;
	*out = NULL;
	int rc = changes ? contract_parse(before, strlen(before), "the recorded contract", &a, err)
			 : pb_err(err, PB_ENOMEM, "out of memory");
	if (!rc)
		rc = contract_parse(after, strlen(after), "the imported contract", &b, err);
	if (!rc)
		rc = table_changes(a, b, false, changes, err);
	if (!rc)
		rc = table_changes(b, a, true, changes, err);
	json_array_foreach(changes, i, c) {
		const char *what = json_string_value(json_object_get(c, "change"));
		added += !strcmp(what, "added");
		removed += !strcmp(what, "removed");
		changed += !strcmp(what, "changed");
		breaking = breaking || json_is_true(json_object_get(c, "breaking"));
	}
	if (!rc && !(*out = json_pack("{s:O,s:{s:I,s:I,s:I,s:b,s:b}}", "changes", changes, "summary", "added",
				      (json_int_t)added, "removed", (json_int_t)removed, "changed", (json_int_t)changed,
				      "breaking", breaking, "structure_changed", added + removed > 0)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	json_decref(changes);
	contract_free(a);
	contract_free(b);
	return rc;
}

int drift_note_product_schema(pb_db *db, const char *org_id, const char *product_id, const char *old_text,
			      const char *new_text, char *err)
{
	char *baseline = NULL, *text = NULL;
	json_t *diff = NULL, *data = NULL;
	bool is_new = false;
	int rc = product_drift_baseline(db, product_id, &baseline, err);
	if (rc)
		return rc;
	const char *base = baseline ? baseline : old_text;
	if ((rc = drift_schema_diff(base, new_text, &diff, err)))
		goto out;
	if ((rc = db_begin(db, err)))
		goto out;
	if (!changes_in(diff)) {
		rc = product_drift_delete(db, product_id, err);   /* back to the recorded schema */
	} else if (!(text = json_dumps(diff, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	} else if (!(rc = product_drift_put(db, org_id, product_id, base, text, &is_new, err)) && is_new) {
		data = json_pack("{s:s,s:s,s:O?}", "data_product_id", product_id, "cause", "power_bi", "summary",
				 json_object_get(diff, "summary"));
		rc = data ? webhook_emit(db, org_id, "drift.detected", data, err) : pb_err(err, PB_ENOMEM, "out of memory");
	}
	if (rc)
		db_rollback(db);
	else
		rc = db_commit(db, err);
out:
	free(baseline);
	free(text);
	json_decref(diff);
	json_decref(data);
	return rc;
}

int drift_clear_product(pb_db *db, const char *product_id, char *err)
{
	return product_drift_delete(db, product_id, err);
}

int drift_of_product(pb_db *db, const char *org_id, const char *product_id, json_t **out, pb_failure *f)
{
	cat_product *p = NULL;
	*out = NULL;
	int rc = catalog_product_get(db, org_id, product_id, false, &p, f->message);
	catalog_product_free(p);
	if (rc == PB_ENOTFOUND)
		return pb_fail(f, rc, NULL, "no data product %.64s", product_id);
	if (rc || (rc = product_drift_json(db, org_id, product_id, out, f->message)))
		return pb_fail_as(f, rc, NULL);
	if (!*out && !(*out = json_pack("{s:s,s:n,s:[],s:{s:i,s:i,s:i,s:b,s:b}}", "data_product_id", product_id, "cause",
					"changes", "summary", "added", 0, "removed", 0, "changed", 0, "breaking", 0,
					"structure_changed", 0)))
		return pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	return PB_OK;
}
