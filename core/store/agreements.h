/* Data-usage agreements as the catalog shows them: a consumer data product may read an
 * output port (table agreements, sql/0004_publish.sql). Publishing writes them
 * (core/store/published_models.h, with the approval); this module reads them, always within the
 * caller's organization: another org's agreement is not found.
 *
 * States: requested, approved, rejected, cancelled, terminated (ended: the published model that
 * consumed the port was unpublished; who ended it and when are kept).
 *
 * Shape of one agreement (new references from the functions below):
 *   {"id","state","purpose","consumer":{"data_product_id","name","type","status"},
 *    "provider":{"output_port_id","output_port_name","retired","data_product_id","data_product_name"},
 *    "requested_by":{"user_id","name"}|null,
 *    "approved_by":{"user_id","name","automatic"}|null, "approved_at",
 *    "terminated_by":{"user_id","name"}|null, "terminated_at",
 *    "created_at","updated_at"}
 * consumer.status is the consumer data product's ("retired" once its model was unpublished).
 * An agreement made by a publish is approved automatically when the user publishes (the
 * model goes into the user's own workspace): approved_by is that user, automatic true; a
 * terminated agreement keeps its approval. */
#ifndef PBIPORT_AGREEMENTS_H
#define PBIPORT_AGREEMENTS_H

#include <stdbool.h>

#include "runtime/db.h"
#include "runtime/page.h"

struct json_t;

#define PB_AGREEMENTS_PAGE_DEFAULT 50
#define PB_AGREEMENTS_PAGE_MAX 200

/* {"agreements":[...], "next_cursor": text|null}: the agreements of org_id, newest first;
 * with data_product_id (may be NULL) those where it is the consumer or owns the provider
 * port; with state (may be NULL) only that state. PB_ENOTFOUND when org_id has no data
 * product data_product_id; PB_EINVAL for a state that agreements do not have. */
int agreements_list_json(pb_db *db, const char *org_id, const char *data_product_id, const char *state,
			 const pb_page *page, struct json_t **out, char *err);

/* One agreement; PB_ENOTFOUND when org_id has none with that id. */
int agreement_get_json(pb_db *db, const char *org_id, const char *id, struct json_t **out, char *err);

/* The agreements under which consumer product product_id reads ports (array, at most
 * PB_LIST_MAX_ITEMS, newest first): its "consumes" in GET /api/data-products/{id}. */
int agreements_consumed_json(pb_db *db, const char *org_id, const char *product_id, struct json_t **out,
			     char *err);
/* A column for a query over data_products as `product` (a table alias, a string literal): 1 when
 * some agreement names that product as its consumer, else 0. An index probe, so that a product
 * read tells in the same statement whether agreements_consumed_known has anything to read. */
#define AGREEMENTS_CONSUMER_ANY_SQL(product)                                                              \
	"CASE WHEN EXISTS (SELECT 1 FROM agreements a WHERE a.consumer_product_id = " product ".id AND "  \
	"a.org_id = " product ".org_id) THEN 1 ELSE 0 END"
/* agreements_consumed_json when that column was read already: any is its value (false: an empty
 * array, no statement). */
int agreements_consumed_known(pb_db *db, const char *org_id, const char *product_id, bool any, struct json_t **out,
			      char *err);

/* Ends agreement id of org_id: state terminated, by by_user (may be NULL), now. An agreement
 * terminated already is left as it is. Joins the caller's transaction. */
int agreement_terminate(pb_db *db, const char *org_id, const char *id, const char *by_user, char *err);

/* Whether any agreement names output port port_id (a consumer depends on it). */
int agreements_port_in_use(pb_db *db, const char *port_id, bool *in_use, char *err);

#endif
