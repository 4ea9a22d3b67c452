/* Publish records: consumer products, agreements, published_models. See
 * core/store/published_models.h. */
#include "core/store/published_models.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/agreements.h"
#include "core/store/identity.h"
#include "core/store/lineage_store.h"
#include "runtime/util.h"

/* ---- the finalize: published_model_record ------------------------------------------------ */

/* Its statements, sharing one numbered parameter list (v in published_model_record) so that on
 * SQLite each binds a prefix of it (up to the highest number it uses, fin_steps' nbind): ?1 org, ?2 now, ?3 the consumer
 * product's contract id, ?4 name, ?5 product type, ?6 description, ?7 new product id, ?8 output
 * port, ?9 user, ?10 new agreement id, ?11 the product's id (SQLite), ?12 new lineage edge id,
 * ?13 new published model id, ?14 the agreement's id (SQLite), ?15 job, ?16 workspace, ?17
 * semantic model, ?18 web URL, ?19 connection, ?20 definition, ?21 contract version, ?22 contract
 * revision, ?23 contract hash, ?24 HTTP path, ?25 connection created, ?26 auto_update.
 * Each row is inserted with a new id, or the one that stands is kept and its id RETURNed: ON
 * CONFLICT (key) DO UPDATE sets a key column to itself (nothing changes; unlike DO NOTHING, the
 * standing row is returned, also one a concurrent transaction committed after the statement
 * began). A resumed job records again what it recorded already: the same rows, the same ids. */
#define FIN_PRODUCT_UPSERT                                                                          \
	"INSERT INTO data_products (id, org_id, contract_id, name, type, status, description, "      \
	"contract_text, revision, created_at, updated_at) "                                          \
	"VALUES (?7, ?1, ?3, ?4, ?5, 'active', ?6, '', 1, ?2, ?2) "                                    \
	"ON CONFLICT (org_id, contract_id) DO UPDATE SET contract_id = excluded.contract_id RETURNING id"
#define FIN_AGREEMENT_UPSERT(product)                                                                \
	"INSERT INTO agreements (id, org_id, consumer_product_id, output_port_id, state, purpose, "    \
	"requested_by, approved_at, created_at, updated_at) "                                           \
	"VALUES (?10, ?1, " product ", ?8, 'approved', 'Power BI semantic model', ?9, ?2, ?2, ?2) "      \
	"ON CONFLICT (consumer_product_id, output_port_id) DO UPDATE SET output_port_id = "             \
	"excluded.output_port_id RETURNING id"
#define FIN_EDGE_ADD(product) LINEAGE_EDGE_INSERT("?12, ?1, 'output_port', ?8, 'data_product', " product ", ?2")
#define FIN_MODEL_UPSERT(product, agreement)                                                         \
	"INSERT INTO published_models (id, org_id, output_port_id, user_id, job_id, workspace_id, "    \
	"semantic_model_id, name, web_url, connection_id, consumer_product_id, agreement_id, "         \
	"published_at, definition, contract_version, contract_revision, contract_hash, http_path, "    \
	"connection_created, auto_update) "                                                            \
	"VALUES (?13, ?1, ?8, ?9, ?15, ?16, ?17, ?4, ?18, ?19, " product ", " agreement ", ?2, ?20, ?21, " \
	"CAST(?22 AS INTEGER), ?23, ?24, CAST(?25 AS INTEGER), ?26) "                                   \
	"ON CONFLICT (job_id) DO UPDATE SET job_id = excluded.job_id RETURNING id"

enum { FIN_PRODUCT = 11 - 1, FIN_AGREEMENT = 14 - 1, FIN_NPARAMS = 26 };

/* PostgreSQL: one statement, the steps as data-modifying CTEs (its foreign keys are checked when
 * the statement ends, the rows of every CTE written). */
static const char fin_pg[] = "WITH p AS (" FIN_PRODUCT_UPSERT "), a AS (" FIN_AGREEMENT_UPSERT("(SELECT id FROM p)")
			     "), e AS (" FIN_EDGE_ADD("(SELECT id FROM p)") "), m AS ("
			     FIN_MODEL_UPSERT("(SELECT id FROM p)", "(SELECT id FROM a)") ") "
			     "SELECT p.id, a.id, m.id FROM p, a, m";

/* SQLite (no DML in a CTE): the same steps in one transaction; the ids each returns feed the next
 * through ?11 and ?14. */
static const struct fin_step {
	const char *sql;
	int nbind;
	int keep; /* the parameter its returned id goes to, -1: none */
} fin_steps[] = {
	{ FIN_PRODUCT_UPSERT, 7, FIN_PRODUCT },
	{ FIN_AGREEMENT_UPSERT("?11"), 11, FIN_AGREEMENT },
	{ FIN_EDGE_ADD("?11"), 12, -1 },
	{ FIN_MODEL_UPSERT("?11", "?14"), FIN_NPARAMS, -1 },
};

/* Runs sql with v[0..nbind) and, when it returns a row, copies its first nout columns into outs. */
static int fin_run(pb_db *db, const char *sql, const char *const *v, int nbind, char (*const outs[])[PB_ID_BUF],
		   int nout, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db, sql, &st, err);
	for (int i = 0; !rc && i < nbind; i++)
		rc = db_bind_text(st, i + 1, v[i], err);
	if (!rc && !nout)
		rc = db_exec(db, st, err);
	else if (!rc && (rc = db_row(db, st, err)) == 1) {
		rc = PB_OK;
		for (int i = 0; !rc && i < nout; i++)
			if (xsnprintf(*outs[i], PB_ID_BUF, "%s", db_col_text(st, i)))
				rc = pb_err(err, PB_EINTERNAL, "stored id too long");
	} else if (!rc) {
		rc = pb_err(err, PB_EIO, "publish record: a row was not returned");
	}
	db_done(st);
	return rc;
}

/* The definition as the JSON text published_models keeps ({path: text}); NULL (not kept) past
 * PB_PM_DEFINITION_MAX or when there is none. *out new. */
static int definition_text(const pb_files *f, char **out, char *err)
{
	json_t *o = json_object();
	*out = NULL;
	if (!f)
		goto done;
	for (size_t i = 0; o && i < f->n; i++)
		if (json_object_set_new(o, f->v[i].path, json_stringn(f->v[i].content, f->v[i].len))) {
			json_decref(o);
			return pb_err(err, PB_ENOMEM, "out of memory (or a definition file is not UTF-8)");
		}
	if (!o || !(*out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS))) {
		json_decref(o);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	if (strlen(*out) > PB_PM_DEFINITION_MAX) {
		free(*out);
		*out = NULL;
	}
done:
	json_decref(o);
	return PB_OK;
}

int published_model_record(pb_db *db, const pm_record *r, pm_ids *out, char *err)
{
	char now[PB_TIME_BUF], contract_id[PB_ID_BUF + 64], desc[512], rev[24], *def = NULL;
	char ids[4][PB_ID_BUF];
	int rc;
	memset(out, 0, sizeof *out);
	if (!r->org_id || !r->job_id || !r->output_port_id || !r->workspace_id || !r->semantic_model_id || !r->name)
		return pb_err(err, PB_EINVAL, "publish record: a required field is missing");
	if (r->auto_update && strcmp(r->auto_update, "off") && strcmp(r->auto_update, "additive"))
		return pb_err(err, PB_EINVAL, "publish record: auto_update is off or additive");
	if (xsnprintf(contract_id, sizeof contract_id, "powerbi:semanticModel:%s", r->semantic_model_id))
		return pb_err(err, PB_EINVAL, "semantic model id too long");
	if (xsnprintf(desc, sizeof desc, "Power BI semantic model published from %s",
		      r->source_name ? r->source_name : "an output port"))
		desc[sizeof desc - 1] = '\0';
	for (int i = 0; i < 4; i++)
		if ((rc = pb_new_id(ids[i], err)))
			return rc;
	if ((rc = definition_text(r->definition, &def, err)))
		return rc;
	pb_now(now);
	xsnprintf(rev, sizeof rev, "%d", r->contract_revision);
	const char *v[FIN_NPARAMS] = { r->org_id, now, contract_id, r->name, PB_PRODUCT_TYPE_POWERBI_MODEL, desc,
				       ids[0], r->output_port_id, r->user_id, ids[1], NULL, ids[2], ids[3], NULL,
				       r->job_id, r->workspace_id, r->semantic_model_id, r->web_url, r->connection_id, def,
				       r->contract_version, r->contract_revision > 0 ? rev : NULL, r->contract_hash,
				       r->http_path, r->connection_created ? "1" : "0",
				       r->auto_update ? r->auto_update : "off" };
	if (db_dialect(db) == DB_DIALECT_POSTGRESQL) {
		/* one statement is a transaction of its own, or joins the caller's */
		char (*const outs[])[PB_ID_BUF] = { &out->consumer_product_id, &out->agreement_id, &out->published_id };
		rc = fin_run(db, fin_pg, v, FIN_NPARAMS, outs, 3, err);
		goto out;
	}
	if ((rc = db_begin(db, err)))
		goto out;
	char (*const kept[])[PB_ID_BUF] = { &out->consumer_product_id, &out->agreement_id, NULL, &out->published_id };
	for (size_t i = 0; !rc && i < sizeof fin_steps / sizeof fin_steps[0]; i++) {
		const struct fin_step *f = &fin_steps[i];
		if (!(rc = fin_run(db, f->sql, v, f->nbind, &kept[i], kept[i] ? 1 : 0, err)) && f->keep >= 0)
			v[f->keep] = *kept[i];
	}
	rc = db_end(db, rc, err);
out:
	free(def);
	if (rc)
		memset(out, 0, sizeof *out);
	return rc;
}

/* A JSON string or null for SQL NULL. */
static json_t *col_json(db_stmt *st, int i)
{
	return db_col_is_null(st, i) ? json_null() : json_string(db_col_text(st, i));
}

/* The states whose model is history: deleted in Power BI, or let go by pbiport. */
#define PM_GONE "('unpublished', 'detached')"

/* A model as a port's list shows it (the columns of published_models_list_json's query). */
static json_t *listed_model(db_stmt *st, void *ctx)
{
	static const char *const keys[] = { "id", "name", "state", "semantic_model_id", "workspace_id", "web_url",
					    "published_at", "updated_at", "job_id", "connection_id",
					    "consumer_data_product_id", "agreement_id", "drift_cause" };
	enum { NKEYS = sizeof keys / sizeof keys[0] };
	json_t *m = json_object();
	for (size_t i = 0; m && i < NKEYS; i++)
		if (json_object_set_new(m, keys[i], col_json(st, (int)i))) {
			json_decref(m);
			return NULL;
		}
	if (m && json_object_set_new(m, "update_available", json_boolean(db_col_int(st, NKEYS)))) {
		json_decref(m);
		return NULL;
	}
	return m;
}

int published_models_list_json(pb_db *db, const char *org_id, const char *port_id, json_t **out, char *err)
{
	json_t *models = NULL;
	const char *v[] = { org_id, port_id };
	*out = NULL;
	int rc = db_list_json(db,
			      "SELECT id, name, state, semantic_model_id, workspace_id, web_url, published_at, updated_at, "
			      "job_id, connection_id, consumer_product_id, agreement_id, drift_cause, update_available "
			      "FROM published_models WHERE org_id = ? AND output_port_id = ? AND state NOT IN " PM_GONE " "
			      "ORDER BY published_at DESC, id DESC LIMIT ?",
			      v, 2, PB_LIST_MAX_ITEMS, listed_model, NULL, &models, err);
	if (rc)
		return rc;
	*out = json_pack("{s:o}", "models", models);
	return *out ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
}

int published_model_find(pb_db *db, const char *org_id, const char *ref, pm_model *out, bool *found, char *err)
{
	db_stmt *st = NULL;
	memset(out, 0, sizeof *out);
	*found = false;
	int rc = db_prepare(db,
			    "SELECT id, workspace_id, semantic_model_id, name, user_id FROM published_models "
			    "WHERE org_id = ? AND (id = ? OR consumer_product_id = ?) AND state NOT IN " PM_GONE " "
			    "ORDER BY published_at DESC LIMIT 1",
			    &st, err);
	if (rc || (rc = db_bind_text(st, 1, org_id, err)) || (rc = db_bind_text(st, 2, ref, err)) ||
	    (rc = db_bind_text(st, 3, ref, err)))
		goto out;
	if ((rc = db_row(db, st, err)) == 1) {
		/* ids fit their buffers; a name longer than its buffer is cut (it is only shown) */
		if (xsnprintf(out->id, sizeof out->id, "%s", db_col_text(st, 0)) ||
		    xsnprintf(out->workspace_id, sizeof out->workspace_id, "%s", db_col_text(st, 1)) ||
		    xsnprintf(out->semantic_model_id, sizeof out->semantic_model_id, "%s", db_col_text(st, 2)) ||
		    xsnprintf(out->user_id, sizeof out->user_id, "%s", db_col_text(st, 4))) {
			rc = pb_err(err, PB_EINTERNAL, "published model %.40s: an id is longer than expected", ref);
			goto out;
		}
		xsnprintf(out->name, sizeof out->name, "%s", db_col_text(st, 3));
		*found = true;
		rc = 0;
	}
out:
	db_done(st);
	return rc;
}

int published_models_port_in_use(pb_db *db, const char *port_id, bool *in_use, char *err)
{
	return db_has_row(db, "SELECT 1 FROM published_models WHERE output_port_id = ? LIMIT 1", &port_id, 1, in_use,
			  err);
}

/* ---- the lifecycle ---------------------------------------------------------------------- */

/* The columns pm_get reads, in the order of the lists below. */
#define PM_COLUMNS                                                                                          \
	"id, org_id, output_port_id, job_id, user_id, workspace_id, semantic_model_id, connection_id, "        \
	"consumer_product_id, agreement_id, state, lifecycle_job_id, auto_update, drift_cause, published_at, "  \
	"updated_at, connection_created, update_available, contract_revision, name, web_url, http_path, "       \
	"contract_version, contract_hash, definition, update_diff, drift "

static const db_fixed_field pm_fixed[] = {
	DB_FIXED_FIELD(pm_row, id, 0),                   DB_FIXED_FIELD(pm_row, org_id, 1),
	DB_FIXED_FIELD(pm_row, output_port_id, 2),       DB_FIXED_FIELD(pm_row, job_id, 3),
	DB_FIXED_FIELD(pm_row, user_id, 4),              DB_FIXED_FIELD(pm_row, workspace_id, 5),
	DB_FIXED_FIELD(pm_row, semantic_model_id, 6),    DB_FIXED_FIELD(pm_row, connection_id, 7),
	DB_FIXED_FIELD(pm_row, consumer_product_id, 8),  DB_FIXED_FIELD(pm_row, agreement_id, 9),
	DB_FIXED_FIELD(pm_row, state, 10),               DB_FIXED_FIELD(pm_row, lifecycle_job_id, 11),
	DB_FIXED_FIELD(pm_row, auto_update, 12),         DB_FIXED_FIELD(pm_row, drift_cause, 13),
	DB_FIXED_FIELD(pm_row, published_at, 14),        DB_FIXED_FIELD(pm_row, updated_at, 15),
};
static const db_text_field pm_texts[] = {
	DB_TEXT_FIELD(pm_row, name, 19),                 DB_TEXT_FIELD(pm_row, web_url, 20),
	DB_TEXT_FIELD(pm_row, http_path, 21),            DB_TEXT_FIELD(pm_row, contract_version, 22),
	DB_TEXT_FIELD(pm_row, contract_hash, 23),        DB_TEXT_FIELD(pm_row, definition, 24),
	DB_TEXT_FIELD(pm_row, update_diff, 25),          DB_TEXT_FIELD(pm_row, drift, 26),
};

static int pm_more(pb_db *db, db_stmt *st, void *row, void *ctx, char *err)
{
	pm_row *r = row;
	r->connection_created = db_col_int(st, 16) != 0;
	r->update_available = db_col_int(st, 17) != 0;
	r->contract_revision = db_col_int(st, 18);
	return PB_OK;
}

static const db_reader pm_reader = DB_READER(pm_row, "published model", pm_fixed, pm_texts, pm_more);

void pm_row_free(pm_row *r)
{
	db_reader_free(&pm_reader, r);
}

int pm_get(pb_db *db, const char *org_id, const char *id, pm_row **out, char *err)
{
	const char *v[] = { org_id, id };
	void *r;
	int rc = db_get_one(db, "SELECT " PM_COLUMNS "FROM published_models WHERE org_id = ? AND id = ?", v, 2,
			    &pm_reader, NULL, id, &r, err);
	*out = r;
	return rc;
}

int pm_active_ids(pb_db *db, const char *org_id, const char *port_id, char (**ids)[PB_ID_BUF], size_t *n, char *err)
{
	const char *v[] = { org_id, port_id };
	return db_select_ids(db,
			  "SELECT id FROM published_models WHERE org_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR output_port_id = ?2) "
			  "AND state IN ('active', 'updating') ORDER BY published_at, id LIMIT ?3",
			  v, 2, PB_LIST_MAX_ITEMS, ids, n, err);
}

/* Runs sql (its n texts bound) and sets *changed to whether it changed a row. */
static int exec_changed(pb_db *db, const char *sql, const char *const *v, int n, bool *changed, char *err)
{
	int rc = db_exec_texts(db, sql, v, n, err);
	if (!rc && changed)
		*changed = db_changes(db) > 0;
	return rc;
}

int pm_lifecycle_claim(pb_db *db, const char *id, const char *state, const char *job_id, const char *stale_job,
		       bool *won, char *err)
{
	char now[PB_TIME_BUF];
	pb_now(now);
	if (strcmp(state, "updating") && strcmp(state, "unpublishing"))
		return pb_err(err, PB_EINVAL, "published model state %.32s is not a transitional state", state);
	const char *v[] = { id, state, job_id, stale_job };
	return exec_changed(db,
			    "UPDATE published_models SET state = ?2, lifecycle_job_id = ?3 WHERE id = ?1 AND "
			    "(state = 'active' OR (state IN ('updating', 'unpublishing') AND CAST(?4 AS TEXT) IS NOT NULL AND "
			    "lifecycle_job_id = ?4))",
			    v, 4, won, err);
}

int pm_definition_files(const char *definition, pb_files *out, char *err)
{
	json_t *o = json_loads(definition ? definition : "", 0, NULL), *text;
	const char *path;
	size_t i = 0;
	int rc = PB_OK;
	memset(out, 0, sizeof *out);
	if (!json_is_object(o)) {
		json_decref(o);
		return pb_err(err, PB_EINVAL, "the stored definition is not a JSON object of files");
	}
	/* jansson iterates in insertion order, which json_dumps(JSON_SORT_KEYS) made strcmp order */
	if (!(out->v = calloc(json_object_size(o) ? json_object_size(o) : 1, sizeof *out->v)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	json_object_foreach(o, path, text) {
		if (rc)
			break;
		if (!json_is_string(text)) {
			rc = pb_err(err, PB_EINVAL, "the stored definition's file %.200s is not text", path);
			break;
		}
		pb_file *f = &out->v[i];
		f->len = json_string_length(text);
		f->path = xstrdup(path);
		f->content = xstrndup(json_string_value(text), f->len);
		out->n = ++i;
		if (!f->path || !f->content)
			rc = pb_err(err, PB_ENOMEM, "out of memory");
	}
	json_decref(o);
	if (rc)
		pb_files_release(out);
	return rc;
}

int pm_update_finish(pb_db *db, const pm_update_done *u, bool *changed, char *err)
{
	char *def = NULL, rev[24], now[PB_TIME_BUF];
	int rc = definition_text(u->definition, &def, err);
	if (rc)
		return rc;
	pb_now(now);
	xsnprintf(rev, sizeof rev, "%d", u->contract_revision);
	const char *v[] = { u->id, u->job_id, def, u->contract_version, u->contract_revision > 0 ? rev : NULL,
			    u->contract_hash, now };
	rc = exec_changed(db,
			   "UPDATE published_models SET definition = ?3, contract_version = ?4, "
			   "contract_revision = CAST(?5 AS INTEGER), contract_hash = ?6, updated_at = ?7, state = 'active', "
			   "lifecycle_job_id = NULL, update_available = 0, update_diff = NULL, update_found_at = NULL, "
			   "drift = NULL, drift_cause = NULL, drift_detected_at = NULL, drift_checked_at = ?7 "
			   "WHERE id = ?1 AND state = 'updating' AND lifecycle_job_id = ?2",
			   v, 7, changed, err);
	free(def);
	return rc;
}

int pm_unpublish_finish(pb_db *db, const char *id, const char *by_user, bool detached, char *err)
{
	char now[PB_TIME_BUF], org[PB_ID_BUF] = "", agreement_id[PB_ID_BUF] = "", product[PB_ID_BUF] = "";
	bool changed = false;
	db_stmt *st = NULL;
	pb_now(now);
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	const char *v[] = { id, detached ? "detached" : "unpublished", now, by_user };
	if ((rc = exec_changed(db,
			       "UPDATE published_models SET state = ?2, unpublished_at = ?3, unpublished_by = ?4, "
			       "lifecycle_job_id = NULL, update_available = 0, update_diff = NULL, drift = NULL, "
			       "drift_cause = NULL WHERE id = ?1 AND state NOT IN " PM_GONE,
			       v, 4, &changed, err)) ||
	    !changed)
		goto out;   /* finished before: nothing more to do */
	if ((rc = db_prepare(db, "SELECT org_id, agreement_id, consumer_product_id FROM published_models WHERE id = ?",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, id, err)))
		goto out;
	if ((rc = db_row(db, st, err)) < 0)
		goto out;
	rc = PB_OK;
	xsnprintf(org, sizeof org, "%s", db_col_text(st, 0));
	xsnprintf(agreement_id, sizeof agreement_id, "%s", db_col_text(st, 1));
	xsnprintf(product, sizeof product, "%s", db_col_text(st, 2));
	db_done(st);
	st = NULL;
	if (agreement_id[0] && (rc = agreement_terminate(db, org, agreement_id, by_user, err)))
		goto out;
	/* the consumer product stays as history of what was published, retired; another model
	 * published into the same product (same semantic model id) keeps it in service */
	if (product[0]) {
		const char *p[] = { product, now };
		rc = db_exec_texts(db,
				   "UPDATE data_products SET status = 'retired', updated_at = ?2 WHERE id = ?1 AND NOT EXISTS "
				   "(SELECT 1 FROM published_models WHERE consumer_product_id = ?1 AND state NOT IN " PM_GONE ")",
				   p, 2, err);
	}
out:
	db_done(st);
	return db_end(db, rc, err);
}

int pm_connection_in_use(pb_db *db, const char *conn_id, const char *except_id, bool *in_use, char *err)
{
	const char *v[] = { conn_id, except_id };
	return db_has_row(db,
			  "SELECT 1 FROM published_models WHERE connection_id = ? AND id <> ? AND state <> 'unpublished' "
			  "LIMIT 1",
			  v, 2, in_use, err);
}

/* diff as it is kept: itself, or past PB_PM_DIFF_MAX its summary with "truncated": true. *out
 * new, or NULL for NULL. */
static int bounded_diff(const char *diff, char **out, char *err)
{
	*out = NULL;
	if (!diff)
		return PB_OK;
	if (strlen(diff) <= PB_PM_DIFF_MAX) {
		*out = xstrdup(diff);
		return *out ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
	}
	json_t *d = json_loads(diff, 0, NULL);
	json_t *cut = json_pack("{s:O?,s:[],s:b}", "summary", json_object_get(d, "summary"), "changes", "truncated", 1);
	*out = cut ? json_dumps(cut, JSON_COMPACT) : NULL;
	json_decref(cut);
	json_decref(d);
	return *out ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
}

int pm_set_update_available(pb_db *db, const char *id, const char *diff, char *err)
{
	char now[PB_TIME_BUF], *kept = NULL;
	pb_now(now);
	int rc = bounded_diff(diff, &kept, err);
	if (rc)
		return rc;
	const char *v[] = { id, kept, now };
	rc = db_exec_texts(db,
			   "UPDATE published_models SET update_available = CASE WHEN CAST(?2 AS TEXT) IS NULL THEN 0 ELSE 1 END, "
			   "update_diff = ?2, update_found_at = CASE WHEN CAST(?2 AS TEXT) IS NULL THEN NULL ELSE ?3 END WHERE id = ?1",
			   v, 3, err);
	free(kept);
	return rc;
}

int pm_set_auto_update(pb_db *db, const char *id, const char *mode, char *err)
{
	if (!mode || (strcmp(mode, "off") && strcmp(mode, "additive")))
		return pb_err(err, PB_EINVAL, "auto_update: \"off\" or \"additive\"");
	const char *v[] = { id, mode };
	return db_exec_texts(db, "UPDATE published_models SET auto_update = ?2 WHERE id = ?1", v, 2, err);
}

int pm_set_drift(pb_db *db, const char *id, const char *diff, const char *cause, bool *is_new, char *err)
{
	char now[PB_TIME_BUF], *kept = NULL;
	bool changed = false;
	pb_now(now);
	if (is_new)
		*is_new = false;
	if (cause && strcmp(cause, "contract") && strcmp(cause, "power_bi") && strcmp(cause, "both"))
		return pb_err(err, PB_EINVAL, "drift cause: contract, power_bi or both, not %.32s", cause);
	int rc = bounded_diff(cause ? diff : NULL, &kept, err);
	if (rc)
		return rc;
	if ((rc = db_begin(db, err)))
		goto out;
	const char *v[] = { id, kept, cause, now };
	/* a drift seen before keeps its detected_at: only a new one is news */
	if (!(rc = exec_changed(db,
				"UPDATE published_models SET drift = ?2, drift_cause = ?3, drift_detected_at = ?4, "
				"drift_checked_at = ?4 WHERE id = ?1 AND CAST(?3 AS TEXT) IS NOT NULL AND "
				"(drift_cause IS NULL OR drift_cause <> ?3 OR drift IS NULL OR drift <> ?2)",
				v, 4, &changed, err)))
		rc = db_exec_texts(db,
				   "UPDATE published_models SET drift_checked_at = ?4, drift = ?2, drift_cause = ?3, "
				   "drift_detected_at = CASE WHEN CAST(?3 AS TEXT) IS NULL THEN NULL ELSE drift_detected_at END "
				   "WHERE id = ?1",
				   v, 4, err);
	if (!(rc = db_end(db, rc, err)) && is_new)
		*is_new = changed;
out:
	free(kept);
	return rc;
}

/* The object the text of column i holds (NULL or unreadable: null). */
static json_t *col_object(db_stmt *st, int i)
{
	json_t *o = db_col_is_null(st, i) ? NULL : json_loads(db_col_text(st, i), 0, NULL);
	return o ? o : json_null();
}

/* A drifted model as the drift list shows it (the columns of pm_drift_list_json's query). */
static json_t *drifted_model(db_stmt *st, void *ctx)
{
	json_t *diff = col_object(st, 9);
	json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:O,s:o,s:o}", "id", db_col_text(st, 0), "name",
			      db_col_text(st, 1), "output_port_id", db_col_text(st, 2), "workspace_id", db_col_text(st, 3),
			      "semantic_model_id", db_col_text(st, 4), "web_url", col_json(st, 5), "cause",
			      db_col_text(st, 6), "summary",
			      json_object_get(diff, "summary") ? json_object_get(diff, "summary") : json_null(),
			      "checked_at", col_json(st, 7), "detected_at", col_json(st, 8));
	json_decref(diff);
	return m;
}

int pm_drift_list_json(pb_db *db, const char *org_id, json_t **out, char *err)
{
	return db_list_json(db,
			    "SELECT id, name, output_port_id, workspace_id, semantic_model_id, web_url, drift_cause, "
			    "drift_checked_at, drift_detected_at, drift FROM published_models WHERE org_id = ? AND "
			    "drift_cause IS NOT NULL AND state NOT IN " PM_GONE " ORDER BY drift_detected_at DESC NULLS LAST, id DESC "
			    "LIMIT ?",
			    &org_id, 1, PB_LIST_MAX_ITEMS, drifted_model, NULL, out, err);
}

/* {"user_id","name"} of user id in org_id, null when id is "" (name null when unknown). */
static int user_ref(pb_db *db, const char *org_id, const char *id, json_t **out, char *err)
{
	char name[PB_NAME_FIELD_MAX + 1];
	*out = json_null();
	if (!id || !*id)
		return PB_OK;
	int rc = identity_user_name(db, org_id, id, name, err);
	if (rc && rc != PB_ENOTFOUND)
		return rc;
	*out = json_pack("{s:s,s:s?}", "user_id", id, "name", rc ? NULL : name);
	return *out ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
}

static json_t *text_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

int pm_row_json(pb_db *db, const pm_row *r, const char *state, json_t **out, char *err)
{
	db_stmt *st = NULL;
	json_t *publisher = NULL, *by = NULL, *port = NULL, *update = json_null(), *drift = json_null();
	char unpublished_at[PB_TIME_BUF] = "", unpublished_by[PB_ID_BUF] = "", drift_checked[PB_TIME_BUF] = "";
	char drift_detected[PB_TIME_BUF] = "", product_status[32] = "";
	*out = NULL;
	int rc = db_prepare(db,
			    "SELECT pm.unpublished_at, pm.unpublished_by, pm.drift_checked_at, pm.drift_detected_at, "
			    "p.name, p.data_product_id, d.name, p.retired_at IS NOT NULL, c.status "
			    "FROM published_models pm JOIN output_ports p ON p.id = pm.output_port_id "
			    "JOIN data_products d ON d.id = p.data_product_id "
			    "LEFT JOIN data_products c ON c.id = pm.consumer_product_id WHERE pm.id = ?",
			    &st, err);
	if (rc || (rc = db_bind_text(st, 1, r->id, err)))
		goto out;
	if ((rc = db_row(db, st, err)) <= 0) {
		if (!rc)
			rc = pb_err(err, PB_ENOTFOUND, "no published model %.64s", r->id);
		goto out;
	}
	xsnprintf(unpublished_at, sizeof unpublished_at, "%s", db_col_text(st, 0));
	xsnprintf(unpublished_by, sizeof unpublished_by, "%s", db_col_text(st, 1));
	xsnprintf(drift_checked, sizeof drift_checked, "%s", db_col_text(st, 2));
	xsnprintf(drift_detected, sizeof drift_detected, "%s", db_col_text(st, 3));
	xsnprintf(product_status, sizeof product_status, "%s", db_col_text(st, 8));
	port = json_pack("{s:s,s:s,s:s,s:s,s:b}", "id", r->output_port_id, "name", db_col_text(st, 4),
			 "data_product_id", db_col_text(st, 5), "data_product_name", db_col_text(st, 6), "retired",
			 db_col_int(st, 7) != 0);
	db_done(st);
	st = NULL;
	if ((rc = user_ref(db, r->org_id, r->user_id, &publisher, err)) ||
	    (rc = user_ref(db, r->org_id, unpublished_by, &by, err)))
		goto out;
	if (r->update_available) {
		json_decref(update);
		update = json_loads(r->update_diff ? r->update_diff : "null", JSON_DECODE_ANY, NULL);
	}
	if (r->drift_cause[0]) {
		json_t *d = json_loads(r->drift ? r->drift : "{}", 0, NULL);
		json_decref(drift);
		drift = json_pack("{s:s,s:O?,s:o,s:o}", "cause", r->drift_cause, "summary", json_object_get(d, "summary"),
				  "checked_at", text_or_null(drift_checked), "detected_at", text_or_null(drift_detected));
		json_decref(d);
	} else if (drift_checked[0]) {
		json_decref(drift);
		drift = json_pack("{s:n,s:s}", "cause", "checked_at", drift_checked);
	}
	*out = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s,s:o,s:o,s:{s:o,s:o,s:o},s:o,s:o,s:s,s:o,s:s,s:o,s:o,s:s,"
			 "s:b,s:o,s:o,s:o,s:o,s:o}",
			 "id", r->id, "name", r->name ? r->name : "", "state", state, "output_port", port,
			 "workspace_id", r->workspace_id, "semantic_model_id", r->semantic_model_id, "web_url",
			 text_or_null(r->web_url), "connection",
			 r->connection_id[0] ? json_pack("{s:s,s:b}", "id", r->connection_id, "created_by_pbiport",
							 r->connection_created)
					     : json_null(),
			 "contract", "version", text_or_null(r->contract_version), "revision",
			 r->contract_revision > 0 ? json_integer(r->contract_revision) : json_null(), "hash",
			 text_or_null(r->contract_hash),
			 "publisher", publisher, "consumer_data_product",
			 r->consumer_product_id[0] ? json_pack("{s:s,s:s?}", "id", r->consumer_product_id, "status",
							       product_status[0] ? product_status : NULL)
						   : json_null(),
			 "published_at", r->published_at, "updated_at", text_or_null(r->updated_at), "job_id", r->job_id,
			 "agreement_id", text_or_null(r->agreement_id), "lifecycle_job_id", text_or_null(r->lifecycle_job_id),
			 "auto_update", r->auto_update, "update_available", r->update_available, "update", update, "drift",
			 drift, "unpublished_at", text_or_null(unpublished_at), "unpublished_by", by, "definition_kept",
			 json_boolean(r->definition != NULL));
	port = publisher = by = update = drift = NULL;   /* json_pack took them, whatever it answered */
	if (!*out)
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	json_decref(port);
	json_decref(publisher);
	json_decref(by);
	json_decref(update);
	json_decref(drift);
	return rc;
}
