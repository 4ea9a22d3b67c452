/* Drift records (sql/0016_model_lifecycle.sql): the daily drift check's schedule per
 * organization (table drift_checks) and the drift of data products made from Power BI assets
 * (table product_drift). A published model's own drift lives in its row
 * (core/store/published_models.h pm_set_drift). Read and written by core/flow/drift.c. */
#ifndef PBIPORT_DRIFT_RECORDS_H
#define PBIPORT_DRIFT_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/db.h"

struct json_t;

/* ---- the daily check's schedule ---- */

/* The organizations with a published model in service but no drift_checks row yet, at most
 * PB_LIST_MAX_ITEMS: *ids new (free). A read: the tick asks it every loop. */
int drift_schedule_unseeded(pb_db *db, char (**ids)[PB_ID_BUF], size_t *n, char *err);
/* Gives org_id its first check at next (an organization that has one keeps it). */
int drift_schedule_seed(pb_db *db, const char *org_id, const char *next, char *err);
/* The organizations whose check is due (next_run_at <= now), at most PB_LIST_MAX_ITEMS. */
int drift_schedule_due(pb_db *db, const char *now, char (**ids)[PB_ID_BUF], size_t *n, char *err);
/* Moves org_id's due check (next_run_at <= now) to next, recording now as its last run
 * (compare-and-swap: *won false when another worker moved it first). Joins the caller's
 * transaction. */
int drift_schedule_advance(pb_db *db, const char *org_id, const char *now, const char *next, bool *won, char *err);

/* ---- data products made from Power BI assets ---- */

/* The schema product_id recorded before the changes drifted it (its contract text then):
 * *baseline new, NULL when the product does not drift. */
int product_drift_baseline(pb_db *db, const char *product_id, char **baseline, char *err);
/* Records product_id's drift: diff (JSON text) against baseline (kept when a record exists).
 * detected_at is now when the diff is new. *is_new (may be NULL) tells. */
int product_drift_put(pb_db *db, const char *org_id, const char *product_id, const char *baseline, const char *diff,
		      bool *is_new, char *err);
/* Removes product_id's record (no drift, or its schema was taken anew). */
int product_drift_delete(pb_db *db, const char *product_id, char *err);
/* {"data_product_id","cause":"power_bi","changes","summary","detected_at","checked_at"} of
 * product_id in org_id: *out new, or NULL when it does not drift. */
int product_drift_json(pb_db *db, const char *org_id, const char *product_id, struct json_t **out, char *err);
/* The drifting products of org_id, newest first, at most PB_LIST_MAX_ITEMS:
 * [{"data_product_id","name","cause","summary","detected_at","checked_at"}]. *out new. */
int product_drift_list_json(pb_db *db, const char *org_id, struct json_t **out, char *err);

#endif
