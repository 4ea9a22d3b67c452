/* The life of a published model: what its update, unpublish and drift share. See
 * core/flow/model_lifecycle.h. */
#include "core/flow/model_lifecycle.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/ms_failure.h"
#include "core/flow/worker.h"
#include "core/store/identity.h"
#include "msapi/fabric.h"
#include "runtime/crypto.h"
#include "runtime/jobs.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

int lifecycle_load(pb_db *db, const char *org_id, const char *id, pm_row **out, pb_failure *f)
{
	int rc = pm_get(db, org_id, id, out, f->message);
	if (rc == PB_ENOTFOUND)
		return pb_fail(f, rc, NULL, "no published model %.64s", id);
	return rc ? pb_fail_as(f, rc, NULL) : PB_OK;
}

static bool transitional(const char *state)
{
	return !strcmp(state, "updating") || !strcmp(state, "unpublishing");
}

int lifecycle_state(pb_db *db, const pm_row *r, const char **state, char stale_job[PB_ID_BUF], char *err)
{
	static const char *const states[] = { "active", "updating", "unpublishing", "unpublished", "detached" };
	pb_job *j = NULL;
	*state = "active";
	if (stale_job)
		stale_job[0] = '\0';
	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
		if (!strcmp(r->state, states[i]))
			*state = states[i];
	if (!transitional(*state))
		return PB_OK;
	int rc = r->lifecycle_job_id[0] ? jobs_get(db, r->lifecycle_job_id, &j, err) : PB_ENOTFOUND;
	if (rc && rc != PB_ENOTFOUND)
		return rc;
	/* a job that is gone, or ended without finishing its work (its last step puts the model
	 * back to active itself), leaves a state no one works on */
	if (rc == PB_ENOTFOUND || job_ended(j)) {
		*state = "active";
		if (stale_job)
			xsnprintf(stale_job, PB_ID_BUF, "%s", r->lifecycle_job_id);
	}
	job_free(j);
	return PB_OK;
}

int lifecycle_authorize(const pm_row *r, const lc_actor *by, const char *what, pb_failure *f)
{
	if (by->org_owner || (by->user_id && r->user_id[0] && !strcmp(by->user_id, r->user_id)))
		return PB_OK;
	return pb_fail(f, PB_EFORBIDDEN, "forbidden", "only the user who published model \"%s\" or an organization owner "
		       "may %s it", r->name ? r->name : r->id, what);
}

int lifecycle_check_state(const pm_row *r, const char *state, const char *what, pb_failure *f)
{
	if (!strcmp(state, "unpublished") || !strcmp(state, "detached"))
		return pb_fail(f, PB_ECONFLICT, "model_unpublished", "published model %s was %s on %s: there is nothing "
			       "to %s", r->id, state, r->updated_at[0] ? r->updated_at : r->published_at, what);
	if (transitional(state))
		return pb_fail(f, PB_ECONFLICT, "model_busy", "published model %s is %s (job %s): %s it once that job "
			       "has ended", r->id, state, r->lifecycle_job_id, what);
	return PB_OK;
}

int lifecycle_body(const char *body, size_t len, const char *const *allowed, json_t **out, pb_failure *f)
{
	const char *key;
	json_t *v;
	*out = NULL;
	if (!body || !len) {
		*out = json_object();
		return *out ? PB_OK : pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	}
	int rc = json_body_parse(body, len, 0, out, f->message);
	if (!rc && !json_is_object(*out))
		rc = pb_err(f->message, PB_EINVAL, "the body must be a JSON object");
	if (!rc)
		rc = json_body_only_keys(*out, allowed, "", f->message);
	if (!rc)
		json_object_foreach(*out, key, v)
			if (!json_is_boolean(v)) {
				rc = pb_err(f->message, PB_EINVAL, "%s: true or false", key);
				break;
			}
	if (rc) {
		json_decref(*out);
		*out = NULL;
		return pb_fail_as(f, rc == PB_ENOMEM ? rc : PB_EINVAL, NULL);
	}
	return PB_OK;
}

bool lifecycle_flag(const json_t *doc, const char *key, bool dflt)
{
	const json_t *v = json_object_get(doc, key);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

int lifecycle_get_json(pb_db *db, const char *org_id, const char *id, json_t **out, pb_failure *f)
{
	pm_row *r = NULL;
	const char *state;
	int rc = lifecycle_load(db, org_id, id, &r, f);
	if (!rc && (rc = lifecycle_state(db, r, &state, NULL, f->message)) == PB_OK)
		rc = pm_row_json(db, r, state, out, f->message);
	if (rc && !f->rc)
		pb_fail_as(f, rc, NULL);
	pm_row_free(r);
	return rc;
}

int lifecycle_patch(pb_db *db, const lc_actor *by, const char *id, const char *body, size_t len, json_t **out,
		    pb_failure *f)
{
	static const char *const allowed[] = { "auto_update", NULL };
	json_t *doc = NULL;
	pm_row *r = NULL;
	const char *state;
	*out = NULL;
	int rc = lifecycle_load(db, by->org_id, id, &r, f);
	if (rc || (rc = lifecycle_authorize(r, by, "change", f)))
		goto out;
	if ((rc = json_body_parse(body, len, 0, &doc, f->message)) ||
	    (rc = json_body_only_keys(doc, allowed, "", f->message))) {
		pb_fail_as(f, PB_EINVAL, NULL);
		rc = PB_EINVAL;
		goto out;
	}
	const char *mode = json_string_value(json_object_get(doc, "auto_update"));
	if (!mode || (strcmp(mode, "off") && strcmp(mode, "additive"))) {
		rc = pb_fail(f, PB_EINVAL, NULL, "auto_update: \"off\" or \"additive\" (update the model at once when its "
			     "contract only adds)");
		goto out;
	}
	if ((rc = lifecycle_state(db, r, &state, NULL, f->message)) || (rc = lifecycle_check_state(r, state, "change", f)))
		goto out;
	if ((rc = pm_set_auto_update(db, r->id, mode, f->message)))
		goto out;
	rc = lifecycle_get_json(db, by->org_id, id, out, f);
out:
	if (rc && !f->rc)
		pb_fail_as(f, rc, NULL);
	json_decref(doc);
	pm_row_free(r);
	return rc;
}

/* The publisher of r in words: "alice (the publisher)". */
static void publisher_words(pb_db *db, const pm_row *r, char *out, size_t size)
{
	char name[PB_NAME_FIELD_MAX + 1], err[PB_ERR_MAX];
	if (identity_user_name(db, r->org_id, r->user_id, name, err))
		xsnprintf(out, size, "the user who published it");
	else if (xsnprintf(out, size, "%s, who published it", name))
		out[0] = '\0';
}

int lifecycle_session(pbi_session *s, pb_db *db, const pb_config *cfg, const pm_row *r, pb_failure *f)
{
	char who[PB_NAME_FIELD_MAX + 64];
	memset(s, 0, sizeof *s);
	if (!r->user_id[0])
		return pb_fail(f, PB_EINVAL, "no_credentials", "the user who published model \"%s\" was deleted: pbiport "
			       "acts on a published model through its publisher's Power BI connection, so it can only be "
			       "detached ({\"keep_model\": true})", r->name ? r->name : r->id);
	int rc = pbi_session_open_user(s, db, cfg, r->org_id, r->user_id, f);
	if (!rc)
		return PB_OK;
	publisher_words(db, r, who, sizeof who);
	const char *code = pb_failure_code(f);
	if (!strcmp(code, "not_connected"))
		return pbi_fail_reword(f, "model \"%s\" is changed through the Power BI connection of %s, which is not "
				       "connected: they connect Power BI (/powerbi/connect) and try again",
				       r->name ? r->name : r->id, who);
	if (!strcmp(code, "needs_reconnect"))
		return pbi_fail_reword(f, "model \"%s\" is changed through the Power BI connection of %s, which expired or "
				       "was revoked: they reconnect Power BI (/powerbi/connect) and try again (%s)",
				       r->name ? r->name : r->id, who, f->message);
	return f->rc;
}

int lifecycle_api_failure(const pbi_session *s, int rc, const pm_row *r, const char *what, pb_failure *f)
{
	pbi_session_fail(s, rc, f);
	return pbi_fail_reword(f, "while %s of model \"%s\" (workspace %s): %s", what, r->name ? r->name : r->id,
			       r->workspace_id, f->message);
}

void lc_render_release(lc_render *r)
{
	if (!r)
		return;
	catalog_port_free(r->port);
	pb_files_release(&r->files);
	publish_source_release(&r->src);
	free(r->contract_version);
	memset(r, 0, sizeof *r);
}

int lifecycle_render(pb_db *db, const pb_config *cfg, const pm_row *r, lc_render *out, pb_failure *f)
{
	cat_product *product = NULL;
	memset(out, 0, sizeof *out);
	int rc = catalog_port_get(db, r->org_id, r->output_port_id, true, &out->port, f->message);
	if (rc == PB_ENOTFOUND) {
		rc = pb_fail(f, rc, NULL, "output port %s, which model \"%s\" was published from, no longer exists",
			     r->output_port_id, r->name ? r->name : r->id);
		goto out;
	}
	if (rc) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if (out->port->retired_at) {
		rc = pb_fail(f, PB_ECONFLICT, "port_retired", "%s", catalog_port_retired_message(out->port, f->message));
		goto out;
	}
	if ((rc = catalog_product_get(db, r->org_id, out->port->data_product_id, false, &product, f->message))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if (product->version && !(out->contract_version = xstrdup(product->version))) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	out->contract_revision = product->revision;
	const char *text = out->port->contract_text ? out->port->contract_text : "";
	pb_sha256_hex(text, strlen(text), out->contract_hash);
	rc = publish_port_source(cfg, out->port, r->http_path, RENDER_PARAMS_BODY, &out->src, &out->files, f);
out:
	catalog_product_free(product);
	if (rc)
		lc_render_release(out);
	return rc;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const pb_file *)a)->path, ((const pb_file *)b)->path);
}

/* Whether path is part of the model's definition as pbiport renders it (Fabric adds .platform). */
static bool definition_path(const char *path)
{
	return !strcmp(path, "definition.pbism") || !strncmp(path, "definition/", 11);
}

int lifecycle_live_definition(msapi *api, const pm_row *r, pb_files *out, char *err)
{
	fabric_definition def = { 0 };
	memset(out, 0, sizeof *out);
	int rc = fabric_get_definition(api, r->workspace_id, r->semantic_model_id, "TMDL", &def, err);
	if (rc)
		return rc;
	if (!(out->v = calloc(def.n ? def.n : 1, sizeof *out->v))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < def.n; i++) {
		fabric_def_part *p = &def.v[i];
		if (!p->path || !definition_path(p->path))
			continue;
		pb_file *f = &out->v[out->n++];
		/* the parts are taken over: the definition's copies are released empty */
		f->path = p->path;
		f->content = (char *)p->data;
		f->len = p->len;
		p->path = NULL;
		p->data = NULL;
	}
	qsort(out->v, out->n, sizeof *out->v, cmp_file);
out:
	fabric_definition_release(&def);
	if (rc)
		pb_files_release(out);
	return rc;
}

int lifecycle_stored_definition(const pm_row *r, pb_files *out, bool *kept, char *err)
{
	memset(out, 0, sizeof *out);
	*kept = r->definition != NULL;
	return *kept ? pm_definition_files(r->definition, out, err) : PB_OK;
}

/* ---- the lifecycle's job kinds ---------------------------------------------------------- */

int lc_job_load(lc_job *j, pb_job_ctx *ctx, const json_t *input)
{
	pb_failure f;
	const char *id = json_string_value(json_object_get(input, "published_model_id"));
	memset(j, 0, sizeof *j);
	j->ctx = ctx;
	if (!id)
		return job_fail(ctx, "bad_input", "the %s job has no published_model_id", ctx->job->kind);
	pb_failure_clear(&f);
	return lifecycle_load(ctx->db, ctx->job->org_id, id, &j->row, &f) ? job_end_with(ctx, &f) : PB_OK;
}

int lc_job_session(lc_job *j)
{
	pb_failure f;
	if (j->have_session)
		return PB_OK;
	pb_failure_clear(&f);
	if (lifecycle_session(&j->s, j->ctx->db, j->ctx->cfg, j->row, &f))
		return job_end_with(j->ctx, &f);
	j->have_session = true;
	return PB_OK;
}

bool lc_job_done(const lc_job *j, const char *key)
{
	return json_object_get(j->ctx->checkpoint, key) != NULL;
}

int lc_job_api_failure(lc_job *j, int rc, const char *what, const char *detail)
{
	pb_failure f;
	pb_failure_clear(&f);
	(void)xsnprintf(f.message, sizeof f.message, "%s", detail);
	lifecycle_api_failure(&j->s, rc, j->row, what, &f);
	return job_end_with(j->ctx, &f);
}

void lc_job_release(lc_job *j)
{
	if (j->have_session)
		pbi_session_release(&j->s);
	pm_row_free(j->row);
	memset(j, 0, sizeof *j);
}
