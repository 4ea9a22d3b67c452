/* Imported assets governed as data products (POST /api/data-products/from-asset).
 *
 * A semantic model becomes a data product of type "powerbi_semantic_model" whose one output
 * port ("powerbi", server type "powerbi") carries an ODCS v3 contract generated from the
 * model's scanned tables and columns, Power BI data types mapped back to logical types:
 *   Int64 -> integer; Double, Decimal, Currency -> number; Boolean -> boolean;
 *   DateTime, DateTimeZone -> timestamp; Date -> date; Time -> time; anything else -> string.
 * A report becomes a "powerbi_report" data product linked to its model's product (made
 * first when missing). The contract id is "powerbi-<kind>-<Power BI id>", so asking again
 * returns the same product, and re-importing (asset_products_refresh after a run) updates
 * the contract when the model changed. */
#ifndef PBIPORT_ASSET_PRODUCTS_H
#define PBIPORT_ASSET_PRODUCTS_H

#include <stdbool.h>

#include "runtime/db.h"

struct json_t;

/* *out (new) is the product as GET /api/data-products/{id} shows it (with "contract"),
 * plus "asset_id" and, for a report, "semantic_model_data_product_id". *created false when
 * the product existed (and was refreshed). PB_EINVAL for assets that cannot become products
 * (workspaces, dashboards, data sources, removed assets, a model without tables). */
int asset_product_create(pb_db *db, const char *org_id, const char *asset_id, struct json_t **out, bool *created,
			 char *err);

/* Regenerates the contracts of the org's semantic-model products whose asset changed. */
int asset_products_refresh(pb_db *db, const char *org_id, char *err);

/* Power BI column data type -> ODCS v3 logical type (static string). */
const char *asset_logical_type(const char *powerbi_type);

#endif
