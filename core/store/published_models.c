/* Publish records: consumer products, agreements, published_models. See
 * core/store/published_models.h. */
#include "core/store/published_models.h"

#include <jansson.h>
#include <string.h>

#include "core/store/lineage_store.h"
#include "runtime/util.h"

/* The first column of the one row sql finds into out; PB_ENOTFOUND when none. */
static int select_id(pb_db *db, const char *sql, const char *const *v, int n, char out[PB_ID_BUF], char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare(db, sql, &st, err);
	for (int i = 0; !rc && i < n; i++)
		rc = db_bind_text(st, i + 1, v[i], err);
	if (!rc) {
		rc = db_row(db, st, err);
		if (rc == 1)
			rc = xsnprintf(out, PB_ID_BUF, "%s", db_col_text(st, 0))
				     ? pb_err(err, PB_EINTERNAL, "stored id too long")
				     : PB_OK;
		else if (rc == 0)
			rc = pb_err(err, PB_ENOTFOUND, "row not found");
	}
	db_done(st);
	return rc;
}

/* Inserts a row with a new id in v[0] (insert ends with ON CONFLICT ... DO NOTHING), then reads
 * the id of the row that stands, this one or an older one, through select with the nk keys. */
static int insert_or_find(pb_db *db, const char *insert, const char **v, int nv, const char *select,
			  const char *const *k, int nk, char out[PB_ID_BUF], char *err)
{
	char id[PB_ID_BUF];
	int rc = pb_new_id(id, err);
	if (rc)
		return rc;
	v[0] = id;
	if ((rc = db_exec_texts(db, insert, v, nv, err)))
		return rc;
	return select_id(db, select, k, nk, out, err);
}

static int consumer_product(pb_db *db, const pm_record *r, const char *now, char out[PB_ID_BUF], char *err)
{
	char contract_id[PB_ID_BUF + 64], desc[512];
	if (xsnprintf(contract_id, sizeof contract_id, "powerbi:semanticModel:%s", r->semantic_model_id))
		return pb_err(err, PB_EINVAL, "semantic model id too long");
	if (xsnprintf(desc, sizeof desc, "Power BI semantic model published from %s",
		      r->source_name ? r->source_name : "an output port"))
		desc[sizeof desc - 1] = '\0';
	const char *v[] = { NULL, r->org_id, contract_id, r->name, PB_PRODUCT_TYPE_POWERBI_MODEL, desc, now, now };
	const char *k[] = { r->org_id, contract_id };
	return insert_or_find(db,
			      "INSERT INTO data_products (id, org_id, contract_id, name, type, status, description, "
			      "contract_text, revision, created_at, updated_at) "
			      "VALUES (?, ?, ?, ?, ?, 'active', ?, '', 1, ?, ?) "
			      "ON CONFLICT (org_id, contract_id) DO NOTHING",
			      v, 8, "SELECT id FROM data_products WHERE org_id = ? AND contract_id = ?", k, 2, out, err);
}

static int agreement(pb_db *db, const pm_record *r, const char *product, const char *now, char out[PB_ID_BUF],
		     char *err)
{
	const char *v[] = { NULL, r->org_id, product, r->output_port_id, r->user_id, now, now, now };
	const char *k[] = { product, r->output_port_id };
	return insert_or_find(db,
			      "INSERT INTO agreements (id, org_id, consumer_product_id, output_port_id, state, purpose, "
			      "requested_by, approved_at, created_at, updated_at) "
			      "VALUES (?, ?, ?, ?, 'approved', 'Power BI semantic model', ?, ?, ?, ?) "
			      "ON CONFLICT (consumer_product_id, output_port_id) DO NOTHING",
			      v, 8, "SELECT id FROM agreements WHERE consumer_product_id = ? AND output_port_id = ?", k, 2,
			      out, err);
}

static int published_row(pb_db *db, const pm_record *r, const pm_ids *ids, const char *now, char out[PB_ID_BUF],
			 char *err)
{
	const char *v[] = { NULL, r->org_id, r->output_port_id, r->user_id, r->job_id, r->workspace_id,
			    r->semantic_model_id, r->name, r->web_url, r->connection_id, ids->consumer_product_id,
			    ids->agreement_id, now };
	const char *k[] = { r->job_id };
	return insert_or_find(db,
			      "INSERT INTO published_models (id, org_id, output_port_id, user_id, job_id, workspace_id, "
			      "semantic_model_id, name, web_url, connection_id, consumer_product_id, agreement_id, "
			      "published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
			      "ON CONFLICT (job_id) DO NOTHING",
			      v, 13, "SELECT id FROM published_models WHERE job_id = ?", k, 1, out, err);
}

int published_model_record(pb_db *db, const pm_record *r, pm_ids *out, char *err)
{
	char now[PB_TIME_BUF];
	int rc;
	memset(out, 0, sizeof *out);
	if (!r->org_id || !r->job_id || !r->output_port_id || !r->workspace_id || !r->semantic_model_id || !r->name)
		return pb_err(err, PB_EINVAL, "publish record: a required field is missing");
	pb_now(now);
	if ((rc = db_begin(db, err)))
		return rc;
	if (!(rc = consumer_product(db, r, now, out->consumer_product_id, err)) &&
	    !(rc = agreement(db, r, out->consumer_product_id, now, out->agreement_id, err)) &&
	    !(rc = lineage_edge_add(db, r->org_id, "output_port", r->output_port_id, "data_product",
				    out->consumer_product_id, err)))
		rc = published_row(db, r, out, now, out->published_id, err);
	return db_end(db, rc, err);
}

/* A JSON string or null for SQL NULL. */
static json_t *col_json(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : json_string(db_col_text(st, i));
}

int published_models_list_json(pb_db *db, const char *org_id, const char *port_id, json_t **out, char *err)
{
	static const char *const keys[] = { "name", "semantic_model_id", "workspace_id", "web_url", "published_at",
					    "job_id", "connection_id", "consumer_data_product_id", "agreement_id" };
	sqlite3_stmt *st = NULL;
	json_t *models = json_array();
	int rc;
	*out = NULL;
	if (!models)
		return pb_err(err, PB_ENOMEM, "out of memory");
	rc = db_prepare(db,
			"SELECT name, semantic_model_id, workspace_id, web_url, published_at, job_id, connection_id, "
			"consumer_product_id, agreement_id FROM published_models WHERE org_id = ? AND output_port_id = ? "
			"ORDER BY published_at DESC, id DESC LIMIT ?",
			&st, err);
	if (!rc && !(rc = db_bind_text(st, 1, org_id, err)) && !(rc = db_bind_text(st, 2, port_id, err)))
		rc = sqlite3_bind_int(st, 3, PB_LIST_MAX_ITEMS) == SQLITE_OK ? PB_OK
									      : pb_err(err, PB_EIO, "binding the limit failed");
	while (!rc && (rc = db_row(db, st, err)) == 1) {
		json_t *m = json_object();
		for (size_t i = 0; m && i < sizeof keys / sizeof keys[0]; i++)
			if (json_object_set_new(m, keys[i], col_json(st, (int)i))) {
				json_decref(m);
				m = NULL;
			}
		if (!m || json_array_append_new(models, m)) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			break;
		}
		rc = 0;
	}
	db_done(st);
	if (rc < 0) {
		json_decref(models);
		return rc;
	}
	*out = json_pack("{s:o}", "models", models);
	return *out ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
}

int published_model_find(pb_db *db, const char *org_id, const char *ref, pm_model *out, bool *found, char *err)
{
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof *out);
	*found = false;
	int rc = db_prepare(db,
			    "SELECT id, workspace_id, semantic_model_id, name, user_id FROM published_models "
			    "WHERE org_id = ? AND (id = ? OR consumer_product_id = ?) ORDER BY published_at DESC LIMIT 1",
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
