/* Unpublishing a published model. See core/flow/model_unpublish.h. */
#include "core/flow/model_unpublish.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/ms_failure.h"
#include "msapi/fabric.h"
#include "runtime/jobs.h"
#include "runtime/util.h"

int model_unpublish_submit(pb_db *db, const lc_actor *by, const char *id, const char *body, size_t body_len,
			   char job_id[PB_ID_BUF], bool *existing, pb_failure *f)
{
	static const char *const allowed[] = { "keep_model", "keep_connection", NULL };
	pm_row *r = NULL;
	json_t *doc = NULL, *input = NULL;
	char *text = NULL, key[16 + PB_ID_BUF], stale[PB_ID_BUF];
	const char *state;
	bool won = false;
	*existing = false;
	pb_failure_clear(f);
	int rc = lifecycle_load(db, by->org_id, id, &r, f);
	if (rc || (rc = lifecycle_authorize(r, by, "unpublish", f)) || (rc = lifecycle_body(body, body_len, allowed, &doc, f)))
		goto out;
	if ((rc = lifecycle_state(db, r, &state, stale, f->message))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if (!strcmp(state, "unpublishing")) {   /* the one in flight answers again */
		xsnprintf(job_id, PB_ID_BUF, "%s", r->lifecycle_job_id);
		*existing = true;
		goto out;
	}
	if ((rc = lifecycle_check_state(r, state, "unpublish", f)))
		goto out;
	input = json_pack("{s:s,s:b,s:b}", "published_model_id", r->id, "keep_model",
			  lifecycle_flag(doc, "keep_model", false), "keep_connection",
			  lifecycle_flag(doc, "keep_connection", false));
	if (!input || !(text = json_dumps(input, JSON_COMPACT))) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	xsnprintf(key, sizeof key, "unpublish:%s", r->id);
	pb_job_spec spec = { .kind = "unpublish", .org_id = by->org_id, .user_id = by->user_id, .input = text,
			     .idempotency_key = key };
	if ((rc = db_begin(db, f->message))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if ((rc = jobs_submit(db, &spec, job_id, existing, f->message)) ||
	    (!*existing && (rc = pm_lifecycle_claim(db, r->id, "unpublishing", job_id, stale[0] ? stale : NULL, &won,
						    f->message)))) {
		db_rollback(db);
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if (!*existing && !won) {   /* another request moved it first */
		db_rollback(db);
		rc = pb_fail(f, PB_ECONFLICT, "model_busy", "published model %s is being changed by another job: "
			     "unpublish it once that job has ended", r->id);
		goto out;
	}
	if ((rc = db_commit(db, f->message)))
		pb_fail_as(f, rc, NULL);
out:
	free(text);
	json_decref(input);
	json_decref(doc);
	pm_row_free(r);
	return rc;
}

/* ---- the job --------------------------------------------------------------------------- */

typedef struct unpublish_run {
	lc_job j;
	bool keep_model, keep_connection;
	json_t *removed, *kept;   /* the result's */
} unpublish_run;

/* Puts the id into the result's removed or kept. */
static int note(unpublish_run *u, bool removed, const char *key, const char *id)
{
	return json_object_set_new(removed ? u->removed : u->kept, key, json_string(id))
		       ? pb_err(u->j.ctx->err, PB_ENOMEM, "out of memory")
		       : PB_OK;
}

static int phase_model(unpublish_run *u)
{
	pb_job_ctx *ctx = u->j.ctx;
	const pm_row *r = u->j.row;
	char sub[PB_ERR_MAX];
	int rc = note(u, !u->keep_model, "semantic_model_id", r->semantic_model_id);
	if (rc || u->keep_model || lc_job_done(&u->j, "model_deleted"))
		return rc;
	if ((rc = job_phase(ctx, "deleting_model", 20)) || (rc = lc_job_session(&u->j)))
		return rc;
	/* one already gone (deleted in Power BI, or by this job before a crash) counts as deleted */
	if ((rc = fabric_delete_semantic_model(&u->j.s.api, r->workspace_id, r->semantic_model_id, sub)))
		return lc_job_api_failure(&u->j, rc, "deleting the semantic model", sub);
	job_test_pause(ctx, "deleting_model");
	return job_checkpoint(ctx, "model_deleted", json_true());
}

/* Whether the connection goes: created by the publish, not kept, used by nothing else. */
static int connection_goes(unpublish_run *u, bool *goes, char *err)
{
	const pm_row *r = u->j.row;
	bool in_use = false;
	*goes = false;
	if (!r->connection_id[0] || !r->connection_created || u->keep_connection || u->keep_model)
		return PB_OK;
	int rc = pm_connection_in_use(u->j.ctx->db, r->connection_id, r->id, &in_use, err);
	*goes = !rc && !in_use;
	return rc;
}

static int phase_connection(unpublish_run *u)
{
	pb_job_ctx *ctx = u->j.ctx;
	const pm_row *r = u->j.row;
	const json_t *cp = json_object_get(ctx->checkpoint, "connection_deleted");
	char sub[PB_ERR_MAX];
	bool goes = false;
	int rc;
	if (cp)   /* decided and done before a crash */
		return note(u, json_is_true(cp), "connection_id", r->connection_id);
	if (!r->connection_id[0])
		return PB_OK;
	if ((rc = job_phase(ctx, "deleting_connection", 60)) || (rc = connection_goes(u, &goes, ctx->err)))
		return rc;
	if (goes) {
		if ((rc = lc_job_session(&u->j)))
			return rc;
		if ((rc = fabric_delete_connection(&u->j.s.api, r->connection_id, sub)))
			return lc_job_api_failure(&u->j, rc, "deleting the connection made for it", sub);
	}
	if ((rc = note(u, goes, "connection_id", r->connection_id)))
		return rc;
	job_test_pause(ctx, "deleting_connection");
	return job_checkpoint(ctx, "connection_deleted", json_boolean(goes));
}

static int phase_finalize(unpublish_run *u)
{
	pb_job_ctx *ctx = u->j.ctx;
	int rc = job_phase(ctx, "finalizing", 90);
	if (rc || (rc = pm_unpublish_finish(ctx->db, u->j.row->id, ctx->job->user_id[0] ? ctx->job->user_id : NULL,
					      u->keep_model, ctx->err)))
		return rc;
	job_test_pause(ctx, "finalizing");
	ctx->result = json_pack("{s:s,s:s,s:O,s:O}", "published_model_id", u->j.row->id, "state",
				u->keep_model ? "detached" : "unpublished", "removed", u->removed, "kept", u->kept);
	return ctx->result ? PB_OK : pb_err(ctx->err, PB_ENOMEM, "out of memory");
}

int model_unpublish_job(pb_job_ctx *ctx)
{
	unpublish_run u = { 0 };
	json_t *in = json_loads(ctx->job->input ? ctx->job->input : "", 0, NULL);
	u.keep_model = lifecycle_flag(in, "keep_model", false);
	u.keep_connection = lifecycle_flag(in, "keep_connection", false);
	u.removed = json_pack("{s:n,s:n}", "semantic_model_id", "connection_id");
	u.kept = json_pack("{s:n,s:n}", "semantic_model_id", "connection_id");
	int rc = u.removed && u.kept ? lc_job_load(&u.j, ctx, in) : pb_err(ctx->err, PB_ENOMEM, "out of memory");
	if (!rc && !(rc = phase_model(&u)) && !(rc = phase_connection(&u)))
		rc = phase_finalize(&u);
	lc_job_release(&u.j);
	json_decref(u.removed);
	json_decref(u.kept);
	json_decref(in);
	return rc;
}
