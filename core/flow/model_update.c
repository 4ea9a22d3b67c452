/* Updating a published model in place. See core/flow/model_update.h. */
#include "core/flow/model_update.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/ms_failure.h"
#include "core/flow/refresh.h"
#include "core/flow/webhooks.h"
#include "core/lang/model_diff.h"
#include "msapi/fabric.h"
#include "runtime/jobs.h"
#include "runtime/log.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

/* The request's check asks Power BI once, briefly: a slow Power BI does not hold the request,
 * the job checks again. */
#define UPDATE_CHECK_CALL_MS 5000
#define UPDATE_CHECK_LRO_MS 15000

typedef struct update_opts {
	bool allow_breaking;
	bool refresh;
	bool only_additive;   /* an automatic update: anything but additions is refused */
} update_opts;

/* ---- a diff in words ------------------------------------------------------------------ */

/* "column orders.amount" / "table orders" / "relationship r1". */
static void object_words(const json_t *c, sbuf *b)
{
	const char *object = json_string_value(json_object_get(c, "object"));
	const char *table = json_string_value(json_object_get(c, "table"));
	const char *name = json_string_value(json_object_get(c, "name"));
	sbuf_addf(b, "%s ", object ? object : "object");
	if (table && (!name || strcmp(table, name) || (object && strcmp(object, "table"))))
		sbuf_addf(b, "%s%s", table, name ? "." : "");
	if (name && !(table && object && !strcmp(object, "table") && !strcmp(table, name)))
		sbuf_addf(b, "%s", name);
}

/* Writes "; "-separated items into out (max bytes), "..." when cut. */
static void words_out(sbuf *b, char *out, size_t max)
{
	const char *s = sbuf_str(b);
	if (xsnprintf(out, max, "%s", s && *s ? s : "(none)"))
		mark_cut(out, max);
}

void model_update_breaking_words(const json_t *diff, char *out, size_t max)
{
	sbuf b;
	size_t i, n = 0;
	const json_t *c;
	sbuf_init(&b, 4 * PB_ERR_MAX);
	json_array_foreach(json_object_get(diff, "changes"), i, c) {
		if (!json_is_true(json_object_get(c, "breaking")))
			continue;
		if (n++)
			sbuf_addf(&b, "; ");
		object_words(c, &b);
		const char *change = json_string_value(json_object_get(c, "change"));
		const json_t *before = json_object_get(c, "before"), *after = json_object_get(c, "after");
		const char *t0 = json_string_value(json_object_get(before, "dataType"));
		const char *t1 = json_string_value(json_object_get(after, "dataType"));
		if (change && !strcmp(change, "changed") && t0 && t1 && strcmp(t0, t1))
			sbuf_addf(&b, " changes type %s -> %s", t0, t1);
		else
			sbuf_addf(&b, " %s", change ? change : "changed");
	}
	words_out(&b, out, max);
	sbuf_release(&b);
}

void model_update_blocking_words(const json_t *diff, char *out, size_t max)
{
	sbuf b;
	size_t i;
	const json_t *c;
	sbuf_init(&b, 4 * PB_ERR_MAX);
	json_array_foreach(json_object_get(diff, "blocking"), i, c) {
		const json_t *to = json_object_get(c, "refers_to");
		const char *tt = json_string_value(json_object_get(to, "table"));
		const char *tc = json_string_value(json_object_get(to, "column"));
		if (i)
			sbuf_addf(&b, "; ");
		object_words(c, &b);
		sbuf_addf(&b, " (added in Power BI) uses %s%s%s%s, which the update removes", tc ? "column " : "table ",
			     tt ? tt : "?", tc ? "." : "", tc ? tc : "");
	}
	words_out(&b, out, max);
	sbuf_release(&b);
}

static int64_t summary_int(const json_t *diff, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(diff, "summary"), key));
}

static bool summary_flag(const json_t *diff, const char *key)
{
	return json_is_true(json_object_get(json_object_get(diff, "summary"), key));
}

/* Whether the diff changes anything pbiport generates. */
static bool has_changes(const json_t *diff)
{
	return json_array_size(json_object_get(diff, "changes")) > 0;
}

/* The refusals of a diff under o: PB_OK, or f set (409). */
static int diff_refusal(const json_t *diff, const pm_row *r, const update_opts *o, pb_failure *f)
{
	char words[PB_ERR_MAX - 256];
	const char *name = r->name ? r->name : r->id;
	if (o->only_additive && (summary_int(diff, "removed") || summary_int(diff, "changed"))) {
		model_update_breaking_words(diff, words, sizeof words);
		return pb_fail(f, PB_ECONFLICT, "breaking_change", "model \"%s\" is updated automatically only when its "
			       "contract adds (auto_update additive), but this change also removes or changes objects "
			       "(%lld removed, %lld changed; breaking: %s): update it by hand", name,
			       (long long)summary_int(diff, "removed"), (long long)summary_int(diff, "changed"), words);
	}
	if (o->allow_breaking)
		return PB_OK;
	if (json_array_size(json_object_get(diff, "blocking"))) {
		model_update_blocking_words(diff, words, sizeof words);
		return pb_fail(f, PB_ECONFLICT, "blocking_reference", "the update of model \"%s\" would break what was added "
			       "in Power BI: %s; change it in Power BI first, or send \"allow_breaking\": true", name, words);
	}
	if (summary_flag(diff, "breaking")) {
		model_update_breaking_words(diff, words, sizeof words);
		return pb_fail(f, PB_ECONFLICT, "breaking_change", "the update of model \"%s\" is breaking: %s; send "
			       "\"allow_breaking\": true to apply it", name, words);
	}
	return PB_OK;
}

/* A model_diff / model_merge failure: a side that does not parse is Power BI's (or the kept
 * definition's) fault, not the request's. */
static int diff_failure(int rc, pb_failure *f)
{
	if (rc == PB_EINVAL || rc == PB_ELIMIT)
		return pb_fail_prefix(f, "the model's definition cannot be compared") ||
		       pb_fail_as(f, PB_EUPSTREAM, "definition_unreadable");
	return pb_fail_as(f, rc, NULL);
}

/* ---- what the contract renders against what Power BI has ------------------------------- */

typedef struct update_plan {
	lc_render want;
	pb_files live;
	json_t *diff;
} update_plan;

static void plan_release(update_plan *p)
{
	lc_render_release(&p->want);
	pb_files_release(&p->live);
	json_decref(p->diff);
	memset(p, 0, sizeof *p);
}

/* Renders the contract, reads the live definition through s and diffs them into p. */
static int plan_make(pb_db *db, const pb_config *cfg, pbi_session *s, const pm_row *r, update_plan *p,
		     pb_failure *f)
{
	memset(p, 0, sizeof *p);
	int rc = lifecycle_render(db, cfg, r, &p->want, f);
	if (rc)
		return rc;
	if ((rc = lifecycle_live_definition(&s->api, r, &p->live, f->message)))
		return lifecycle_api_failure(s, rc, r, "reading the definition", f);
	if ((rc = model_diff(&p->want.files, &p->live, &p->diff, f->message)))
		return diff_failure(rc, f);
	return PB_OK;
}

/* The dry run's answer: the diff with the model and the contract it would come from. *out new. */
static int dry_run_reply(const pm_row *r, const update_plan *p, json_t **out, pb_failure *f)
{
	*out = json_deep_copy(p->diff);
	if (!*out ||
	    json_object_update(*out, json_pack("{s:s,s:s,s:b,s:{s:s?,s:i}}", "published_model_id", r->id,
					       "semantic_model_id", r->semantic_model_id, "dry_run", 1, "contract", "version",
					       p->want.contract_version, "revision", p->want.contract_revision))) {
		json_decref(*out);
		*out = NULL;
		return pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	}
	return PB_OK;
}

/* ---- queueing ------------------------------------------------------------------------- */

/* Queues the update of r for user_id with o, claiming the model (updating) in the same
 * transaction (stale: a job whose state may be taken over, or NULL). */
static int queue_update(pb_db *db, const pm_row *r, const char *user_id, const update_opts *o, const char *stale,
			char job_id[PB_ID_BUF], bool *existing, bool *won, char *err)
{
	char key[16 + PB_ID_BUF], *text = NULL;
	json_t *input = json_pack("{s:s,s:b,s:b,s:b}", "published_model_id", r->id, "allow_breaking", o->allow_breaking,
				  "refresh", o->refresh, "only_additive", o->only_additive);
	int rc = input && (text = json_dumps(input, JSON_COMPACT)) ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
	json_decref(input);
	*existing = *won = false;
	if (rc)
		return rc;
	xsnprintf(key, sizeof key, "update:%s", r->id);
	pb_job_spec spec = { .kind = "update", .org_id = r->org_id, .user_id = user_id, .input = text,
			     .idempotency_key = key };
	if (!(rc = db_begin(db, err))) {
		if (!(rc = jobs_submit(db, &spec, job_id, existing, err)) && !*existing)
			rc = pm_lifecycle_claim(db, r->id, "updating", job_id, stale, won, err);
		if (!rc && (*existing || *won))
			rc = db_commit(db, err);
		else
			db_rollback(db);
	}
	free(text);
	return rc;
}

int model_update_queue_auto(pb_db *db, const pm_row *r, bool *queued, char *err)
{
	char job_id[PB_ID_BUF];
	bool existing = false, won = false;
	update_opts o = { .refresh = true, .only_additive = true };
	*queued = false;
	if (!r->user_id[0])
		return PB_OK;   /* no publisher to act as: it stays an available update */
	int rc = queue_update(db, r, r->user_id, &o, NULL, job_id, &existing, &won, err);
	*queued = !rc && (existing || won);
	return rc;
}

/* The request's check before queueing: the diff against the live model, refused as the job
 * would refuse it. Power BI not answering in time is no refusal (the job checks). */
static int request_check(pb_db *db, const pb_config *cfg, const pm_row *r, const update_opts *o, pb_failure *f)
{
	pbi_session s;
	update_plan p;
	int rc = lifecycle_session(&s, db, cfg, r, f);
	if (rc)
		return rc == PB_EUNAVAIL ? (pb_failure_clear(f), PB_OK) : rc;
	s.api.max_attempts = 1;
	s.api.call_timeout_ms = UPDATE_CHECK_CALL_MS;
	s.api.lro_max_ms = UPDATE_CHECK_LRO_MS;
	rc = plan_make(db, cfg, &s, r, &p, f);
	if (rc == PB_EUNAVAIL) {
		pb_failure_clear(f);
		rc = PB_OK;
	} else if (!rc) {
		rc = diff_refusal(p.diff, r, o, f);
	}
	plan_release(&p);
	pbi_session_release(&s);
	return rc;
}

int model_update_request(pb_db *db, const pb_config *cfg, const lc_actor *by, const char *id, const char *body,
			 size_t body_len, json_t **diff, char job_id[PB_ID_BUF], bool *existing, pb_failure *f)
{
	static const char *const allowed[] = { "dry_run", "allow_breaking", "refresh", NULL };
	pm_row *r = NULL;
	json_t *doc = NULL;
	const char *state;
	char stale[PB_ID_BUF];
	bool won = false;
	*diff = NULL;
	*existing = false;
	pb_failure_clear(f);
	int rc = lifecycle_load(db, by->org_id, id, &r, f);
	if (rc || (rc = lifecycle_authorize(r, by, "update", f)) || (rc = lifecycle_body(body, body_len, allowed, &doc, f)))
		goto out;
	update_opts o = { .allow_breaking = lifecycle_flag(doc, "allow_breaking", false),
			  .refresh = lifecycle_flag(doc, "refresh", true) };
	if ((rc = lifecycle_state(db, r, &state, stale, f->message))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if (!lifecycle_flag(doc, "dry_run", false) && !strcmp(state, "updating")) {   /* the one in flight */
		xsnprintf(job_id, PB_ID_BUF, "%s", r->lifecycle_job_id);
		*existing = true;
		goto out;
	}
	if ((rc = lifecycle_check_state(r, state, "update", f)))
		goto out;
	if (lifecycle_flag(doc, "dry_run", false)) {
		pbi_session s;
		update_plan p = { 0 };
		if ((rc = lifecycle_session(&s, db, cfg, r, f)))
			goto out;
		if (!(rc = plan_make(db, cfg, &s, r, &p, f)))
			rc = dry_run_reply(r, &p, diff, f);
		plan_release(&p);
		pbi_session_release(&s);
		goto out;
	}
	if ((rc = request_check(db, cfg, r, &o, f)))
		goto out;
	if ((rc = queue_update(db, r, by->user_id, &o, stale[0] ? stale : NULL, job_id, existing, &won, f->message))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if (!*existing && !won)
		rc = pb_fail(f, PB_ECONFLICT, "model_busy", "published model %s is being changed by another job: update it "
			     "once that job has ended", r->id);
out:
	json_decref(doc);
	pm_row_free(r);
	return rc;
}

/* ---- a contract re-imported --------------------------------------------------------------- */

static bool same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Marks r with the diff of want against its kept definition (or unmarks it); a new diff is
 * the event update.available, an additive one of an auto_update model its update. */
static int mark_model(pb_db *db, const pm_row *r, const pb_files *want, bool *marked, char *err)
{
	pb_files stored = { 0 };
	json_t *diff = NULL, *data = NULL;
	char *text = NULL;
	bool kept = false, queued = false;
	*marked = false;
	int rc = lifecycle_stored_definition(r, &stored, &kept, err);
	if (rc || !kept || (rc = model_diff(want, &stored, &diff, err)))
		goto out;
	bool changes = has_changes(diff);
	if (changes && !(text = json_dumps(diff, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if (same_text(text, r->update_available ? r->update_diff : NULL))
		goto out;   /* known already */
	if ((rc = db_begin(db, err)))
		goto out;
	if (!(rc = pm_set_update_available(db, r->id, text, err)) && changes) {
		data = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:O?}", "published_model_id", r->id, "name", r->name ? r->name : "",
				 "output_port_id", r->output_port_id, "semantic_model_id", r->semantic_model_id, "web_url",
				 r->web_url, "summary", json_object_get(diff, "summary"));
		rc = data ? webhook_emit(db, r->org_id, "update.available", data, err) : pb_err(err, PB_ENOMEM, "out of memory");
	}
	if (!rc && changes && !strcmp(r->auto_update, "additive") && !summary_int(diff, "removed") &&
	    !summary_int(diff, "changed"))
		rc = model_update_queue_auto(db, r, &queued, err);
	if (rc) {
		db_rollback(db);
		goto out;
	}
	if (!(rc = db_commit(db, err)))
		*marked = changes;
out:
	pb_files_release(&stored);
	json_decref(diff);
	json_decref(data);
	free(text);
	return rc;
}

int model_update_contract_changed(pb_db *db, const pb_config *cfg, const char *org_id, const char *product_id,
				  size_t *marked, char *err)
{
	cat_product *p = NULL;
	if (marked)
		*marked = 0;
	int rc = catalog_product_get(db, org_id, product_id, false, &p, err);
	for (size_t i = 0; !rc && i < p->nports; i++) {
		char (*ids)[PB_ID_BUF] = NULL;
		size_t n = 0;
		lc_render want = { 0 };
		bool rendered = false;
		char *rendered_path = NULL;   /* the HTTP path want was rendered with (new) */
		pm_row *r = NULL;
		if ((rc = pm_active_ids(db, org_id, p->ports[i].id, &ids, &n, err)))
			break;
		for (size_t k = 0; !rc && k < n; k++) {
			pb_failure f;
			bool m = false;
			pm_row_free(r);
			r = NULL;
			if ((rc = pm_get(db, org_id, ids[k], &r, err)))
				break;
			/* models of one port render alike, unless their publishes gave another HTTP path */
			if (rendered && !same_text(rendered_path, r->http_path)) {
				lc_render_release(&want);
				rendered = false;
			}
			pb_failure_clear(&f);
			if (!rendered && lifecycle_render(db, cfg, r, &want, &f)) {
				log_event("warn", NULL, "published model %s: its contract does not render now, so whether an "
					  "update is available is left to its drift check: %s", r->id, f.message);
				continue;
			}
			if (!rendered) {
				free(rendered_path);
				rendered_path = NULL;
				if (r->http_path && !(rendered_path = xstrdup(r->http_path))) {
					rc = pb_err(err, PB_ENOMEM, "out of memory");
					break;
				}
			}
			rendered = true;
			if ((rc = mark_model(db, r, &want.files, &m, err)) == PB_EINVAL) {
				log_event("warn", NULL, "published model %s: its kept definition does not compare: %s", r->id, err);
				rc = PB_OK;
			}
			if (marked)
				*marked += m;
		}
		lc_render_release(&want);
		free(rendered_path);
		pm_row_free(r);
		free(ids);
	}
	catalog_product_free(p);
	return rc;
}

void model_update_after_import(pb_db *db, const pb_config *cfg, const char *org_id, const char *product_id,
			       bool created)
{
	char err[PB_ERR_MAX];
	if (created || !cfg || !cfg->powerbi_web_enabled)
		return;
	if (model_update_contract_changed(db, cfg, org_id, product_id, NULL, err))
		log_event("warn", NULL, "data product %s was imported, but its published models were not checked for an "
			  "update: %s", product_id, err);
}

/* ---- the job --------------------------------------------------------------------------- */

typedef struct update_run {
	lc_job j;
	update_opts o;
	update_plan plan;
	pb_files merged;
} update_run;

/* reading + diffing: the plan, refused as the request would refuse it, and merged. */
static int phase_read_diff(update_run *u)
{
	pb_job_ctx *ctx = u->j.ctx;
	pb_failure f;
	int rc;
	pb_failure_clear(&f);
	if ((rc = job_phase(ctx, "reading", 10)) || (rc = lc_job_session(&u->j)))
		return rc;
	if ((rc = lifecycle_render(ctx->db, ctx->cfg, u->j.row, &u->plan.want, &f)))
		return job_end_with(ctx, &f);
	if ((rc = lifecycle_live_definition(&u->j.s.api, u->j.row, &u->plan.live, f.message)))
		return lc_job_api_failure(&u->j, rc, "reading the definition", f.message);
	job_test_pause(ctx, "reading");
	if ((rc = job_phase(ctx, "diffing", 30)))
		return rc;
	/* one plan reads both definitions once for the diff and the merge */
	model_plan *plan = NULL;
	if ((rc = model_plan_new(&u->plan.want.files, &u->plan.live, &plan, f.message)) ||
	    (rc = model_plan_diff(plan, &u->plan.diff, f.message))) {
		model_plan_free(plan);
		diff_failure(rc, &f);
		return job_end_with(ctx, &f);
	}
	if ((rc = diff_refusal(u->plan.diff, u->j.row, &u->o, &f))) {
		model_plan_free(plan);
		return job_fail(ctx, pb_failure_code(&f), "%s", f.message);
	}
	if (has_changes(u->plan.diff))
		rc = model_plan_merge(plan, u->o.allow_breaking, &u->merged, f.message);
	model_plan_free(plan);
	if (rc == PB_ECONFLICT)
		return job_fail(ctx, "blocking_reference", "%s", f.message);
	if (rc) {
		diff_failure(rc, &f);
		return job_end_with(ctx, &f);
	}
	job_test_pause(ctx, "diffing");
	/* what this update changes, as found before the upload: a resumed job that finds the
	 * upload already done reports this, not the empty diff it then sees */
	if (has_changes(u->plan.diff) || !lc_job_done(&u->j, "summary")) {
		json_t *summary = json_deep_copy(json_object_get(u->plan.diff, "summary"));
		if ((rc = job_checkpoint(ctx, "summary", summary ? summary : json_object())))
			return rc;
	}
	return PB_OK;
}

static int phase_upload(update_run *u)
{
	pb_job_ctx *ctx = u->j.ctx;
	pb_failure f;
	fabric_part *parts = NULL;
	int rc;
	if (!has_changes(u->plan.diff))   /* nothing to change, or the upload went through before a crash */
		return PB_OK;
	if ((rc = job_phase(ctx, "updating", 50)))
		return rc;
	if (!(parts = calloc(u->merged.n ? u->merged.n : 1, sizeof *parts)))
		return pb_err(ctx->err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; i < u->merged.n; i++)
		parts[i] = (fabric_part){ u->merged.v[i].path, u->merged.v[i].content, u->merged.v[i].len };
	pb_failure_clear(&f);
	rc = fabric_update_definition(&u->j.s.api, u->j.row->workspace_id, u->j.row->semantic_model_id, parts, u->merged.n,
				      f.message);
	free(parts);
	if (rc)
		return lc_job_api_failure(&u->j, rc, "uploading the updated definition", f.message);
	job_test_pause(ctx, "updating");
	return job_checkpoint(ctx, "uploaded", json_true());
}

static int phase_rebind(update_run *u, int *rebound)
{
	pb_job_ctx *ctx = u->j.ctx;
	msapi_items refs = { 0 };
	pb_failure f;
	int rc;
	*rebound = (int)json_integer_value(json_object_get(ctx->checkpoint, "rebound"));
	if (lc_job_done(&u->j, "rebound") || !u->j.row->connection_id[0])
		return PB_OK;
	if ((rc = job_phase(ctx, "rebinding", 70)) || (rc = lc_job_session(&u->j)))
		return rc;
	pb_failure_clear(&f);
	if ((rc = fabric_list_item_connections(&u->j.s.api, u->j.row->workspace_id, u->j.row->semantic_model_id, &refs,
					       f.message))) {
		rc = lc_job_api_failure(&u->j, rc, "reading the data sources", f.message);
		goto out;
	}
	for (size_t i = 0; i < refs.n; i++) {
		const msapi_item *ref = &refs.v[i];
		if (ref->id && !strcmp(ref->id, u->j.row->connection_id))
			continue;
		if ((rc = fabric_bind_connection(&u->j.s.api, u->j.row->workspace_id, u->j.row->semantic_model_id,
						 u->j.row->connection_id, ref->type, ref->path, f.message))) {
			pbi_session_fail_as(&u->j.s, rc, MSAPI_REJECTED, "connection_mismatch", &f);
			pbi_fail_reword(&f, "the updated model reads %s %s, which its connection %s does not point at (publish "
					"the port again for a model on the new source): %s", ref->type ? ref->type : "?",
					ref->path ? ref->path : "?", u->j.row->connection_id, f.message);
			rc = job_end_with(ctx, &f);
			goto out;
		}
		(*rebound)++;
	}
	job_test_pause(ctx, "rebinding");
	rc = job_checkpoint(ctx, "rebound", json_integer(*rebound));
out:
	msapi_items_release(&refs);
	return rc;
}

/* refreshing: the refresh (when the structure changed) and the published model's new record,
 * in one transaction, done once: the record moves the model out of this job's updating state,
 * and only the run that moves it queues the refresh. */
static int phase_finish(update_run *u, const json_t *summary, const char **refresh_job, json_t **refresh_reply)
{
	pb_job_ctx *ctx = u->j.ctx;
	pb_failure f;
	bool changed = false;
	int rc = job_phase(ctx, "refreshing", 85);
	*refresh_job = json_string_value(json_object_get(ctx->checkpoint, "refresh_job_id"));
	if (rc)
		return rc;
	pm_update_done done = { .id = u->j.row->id, .job_id = ctx->job->id, .definition = &u->plan.want.files,
				.contract_version = u->plan.want.contract_version,
				.contract_revision = u->plan.want.contract_revision,
				.contract_hash = u->plan.want.contract_hash };
	pb_failure_clear(&f);
	if ((rc = db_begin(ctx->db, ctx->err)))
		return rc;
	if ((rc = pm_update_finish(ctx->db, &done, &changed, ctx->err)))
		goto out;
	bool structure = json_is_true(json_object_get(summary, "structure_changed"));
	if (changed && structure && u->o.refresh &&
	    (rc = refresh_submit(ctx->db, ctx->cfg, ctx->job->org_id, ctx->job->user_id[0] ? ctx->job->user_id : NULL,
				 u->j.row->id, NULL, "event", refresh_reply, &f))) {
		if (!refresh_refused(&f)) {
			xsnprintf(ctx->err, sizeof ctx->err, "queueing the refresh: %s", f.message);
			goto out;
		}
		/* the update stands; why the refresh was not queued goes into the result */
		*refresh_reply = json_pack("{s:s,s:s}", "skipped", pb_failure_code(&f), "message", f.message);
		rc = PB_OK;
	}
out:
	if (rc) {
		db_rollback(ctx->db);
		return rc;
	}
	if ((rc = db_commit(ctx->db, ctx->err)))
		return rc;
	job_test_pause(ctx, "refreshing");
	const char *queued = json_string_value(json_object_get(*refresh_reply, "job_id"));
	if (queued) {
		*refresh_job = queued;
		return job_checkpoint(ctx, "refresh_job_id", json_string(queued));
	}
	return PB_OK;
}

int model_update_job(pb_job_ctx *ctx)
{
	update_run u = { 0 };
	pb_failure f;
	json_t *in = json_loads(ctx->job->input ? ctx->job->input : "", 0, NULL), *refresh = NULL;
	const char *refresh_job = NULL;
	int rc, rebound = 0;
	pb_failure_clear(&f);
	u.o = (update_opts){ .allow_breaking = lifecycle_flag(in, "allow_breaking", false),
			     .refresh = lifecycle_flag(in, "refresh", true),
			     .only_additive = lifecycle_flag(in, "only_additive", false) };
	if (!ctx->cfg || !ctx->cfg->powerbi_web_enabled) {
		rc = job_fail(ctx, "feature_disabled", "Power BI publishing is turned off (APPLICATION_POWERBI_WEB_ENABLED)");
		goto out;
	}
	if ((rc = lc_job_load(&u.j, ctx, in)))
		goto out;
	if (!strcmp(u.j.row->state, "unpublished") || !strcmp(u.j.row->state, "detached")) {
		rc = job_fail(ctx, "model_unpublished", "published model %s was %s meanwhile", u.j.row->id, u.j.row->state);
		goto out;
	}
	if (lc_job_done(&u.j, "uploaded")) {
		/* resumed after the upload: the rendered definition is still what gets recorded */
		if ((rc = lifecycle_render(ctx->db, ctx->cfg, u.j.row, &u.plan.want, &f))) {
			rc = job_end_with(ctx, &f);
			goto out;
		}
	} else if ((rc = phase_read_diff(&u)) || (rc = phase_upload(&u))) {
		goto out;
	}
	const json_t *summary = json_object_get(ctx->checkpoint, "summary");
	if ((rc = phase_rebind(&u, &rebound)) || (rc = phase_finish(&u, summary, &refresh_job, &refresh)))
		goto out;
	ctx->result = json_pack("{s:s,s:s,s:O?,s:b,s:i,s:s?,s:O?}", "published_model_id", u.j.row->id, "semantic_model_id",
				u.j.row->semantic_model_id, "summary", summary, "uploaded", lc_job_done(&u.j, "uploaded"),
				"rebound", rebound, "refresh_job_id", refresh_job, "refresh",
				json_object_get(refresh, "skipped") ? refresh : NULL);
	if (!ctx->result)
		rc = pb_err(ctx->err, PB_ENOMEM, "out of memory");
out:
	lc_job_release(&u.j);
	plan_release(&u.plan);
	pb_files_release(&u.merged);
	json_decref(refresh);
	json_decref(in);
	return rc;
}
