/* Drift records: the daily check's schedule and the drift of asset products. See
 * core/store/drift_records.h. */
#include "core/store/drift_records.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/limits.h"
#include "runtime/util.h"

int drift_schedule_unseeded(pb_db *db, char (**ids)[PB_ID_BUF], size_t *n, char *err)
{
	return db_select_ids(db,
			  "SELECT DISTINCT pm.org_id FROM published_models pm WHERE pm.state IN ('active', 'updating') "
			  "AND NOT EXISTS (SELECT 1 FROM drift_checks d WHERE d.org_id = pm.org_id) LIMIT ?",
			  NULL, 0, PB_LIST_MAX_ITEMS, ids, n, err);
}

int drift_schedule_seed(pb_db *db, const char *org_id, const char *next, char *err)
{
	const char *v[] = { org_id, next };
	return db_exec_texts(db, "INSERT INTO drift_checks (org_id, next_run_at) VALUES (?, ?) ON CONFLICT (org_id) "
			     "DO NOTHING", v, 2, err);
}

int drift_schedule_due(pb_db *db, const char *now, char (**ids)[PB_ID_BUF], size_t *n, char *err)
{
	return db_select_ids(db, "SELECT org_id FROM drift_checks WHERE next_run_at <= ? ORDER BY next_run_at LIMIT ?",
			  &now, 1, PB_LIST_MAX_ITEMS, ids, n, err);
}

int drift_schedule_advance(pb_db *db, const char *org_id, const char *now, const char *next, bool *won, char *err)
{
	const char *v[] = { org_id, now, next };
	int rc = db_exec_texts(db,
			       "UPDATE drift_checks SET next_run_at = ?3, last_run_at = ?2 WHERE org_id = ?1 AND "
			       "next_run_at <= ?2",
			       v, 3, err);
	*won = !rc && db_changes(db) > 0;
	return rc;
}

int product_drift_baseline(pb_db *db, const char *product_id, char **baseline, char *err)
{
	db_stmt *st = NULL;
	*baseline = NULL;
	int rc = db_prepare(db, "SELECT baseline FROM product_drift WHERE data_product_id = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, product_id, err)) && (rc = db_row(db, st, err)) == 1) {
		bool ok = true;
		*baseline = db_col_dup(st, 0, &ok);
		rc = ok ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
	}
	db_done(st);
	return rc < 0 ? rc : PB_OK;
}

int product_drift_put(pb_db *db, const char *org_id, const char *product_id, const char *baseline, const char *diff,
		      bool *is_new, char *err)
{
	char now[PB_TIME_BUF];
	bool found = false;
	pb_now(now);
	const char *k[] = { product_id, diff };
	/* the same drift seen again is no news: it keeps its detected_at */
	int rc = db_has_row(db, "SELECT 1 FROM product_drift WHERE data_product_id = ? AND diff = ?", k, 2, &found, err);
	if (is_new)
		*is_new = !rc && !found;
	if (rc)
		return rc;
	const char *v[] = { product_id, org_id, baseline, diff, now };
	return db_exec_texts(db,
			     "INSERT INTO product_drift (data_product_id, org_id, baseline, diff, detected_at, checked_at) "
			     "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (data_product_id) DO UPDATE SET checked_at = ?5, "
			     "detected_at = CASE WHEN product_drift.diff = ?4 THEN product_drift.detected_at ELSE ?5 END, "
			     "diff = ?4",
			     v, 5, err);
}

int product_drift_delete(pb_db *db, const char *product_id, char *err)
{
	return db_exec_texts(db, "DELETE FROM product_drift WHERE data_product_id = ?", &product_id, 1, err);
}

/* {"cause":"power_bi", <the diff's changes and summary>, "detected_at", "checked_at"} of the
 * row st is on (columns from 1: diff, detected_at, checked_at). */
static json_t *drift_object(db_stmt *st, int col)
{
	json_t *d = json_loads(db_col_text(st, col), 0, NULL);
	json_t *o = json_pack("{s:s,s:O?,s:O?,s:s,s:s}", "cause", "power_bi", "changes", json_object_get(d, "changes"),
			      "summary", json_object_get(d, "summary"), "detected_at", db_col_text(st, col + 1),
			      "checked_at", db_col_text(st, col + 2));
	json_decref(d);
	return o;
}

int product_drift_json(pb_db *db, const char *org_id, const char *product_id, json_t **out, char *err)
{
	db_stmt *st = NULL;
	*out = NULL;
	int rc = db_prepare(db,
			    "SELECT data_product_id, diff, detected_at, checked_at FROM product_drift "
			    "WHERE org_id = ? AND data_product_id = ?",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, org_id, err)) && !(rc = db_bind_text(st, 2, product_id, err)) &&
	    (rc = db_row(db, st, err)) == 1) {
		*out = drift_object(st, 1);
		rc = *out && !json_object_set_new(*out, "data_product_id", json_string(db_col_text(st, 0)))
			     ? PB_OK
			     : pb_err(err, PB_ENOMEM, "out of memory");
	}
	db_done(st);
	return rc < 0 ? rc : PB_OK;
}

/* A drifted product as the drift list shows it: drift_object without its changes, with the
 * product's id and name. */
static json_t *drifted_product(db_stmt *st, void *ctx)
{
	json_t *o = drift_object(st, 1);
	if (!o)
		return NULL;
	json_object_del(o, "changes");
	if (json_object_set_new(o, "data_product_id", json_string(db_col_text(st, 4))) ||
	    json_object_set_new(o, "name", json_string(db_col_text(st, 0)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int product_drift_list_json(pb_db *db, const char *org_id, json_t **out, char *err)
{
	return db_list_json(db,
			    "SELECT d.name, p.diff, p.detected_at, p.checked_at, p.data_product_id FROM product_drift p "
			    "JOIN data_products d ON d.id = p.data_product_id WHERE p.org_id = ? "
			    "ORDER BY p.detected_at DESC, p.data_product_id DESC LIMIT ?",
			    &org_id, 1, PB_LIST_MAX_ITEMS, drifted_product, NULL, out, err);
}
