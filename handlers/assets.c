/* GET /api/assets[?type=&q=], GET /api/assets/{id} (with the integrations that see it): what
 * imports brought in (any member of the org); POST /api/data-products/from-asset: govern an asset as a data product. */
#include <jansson.h>
#include <string.h>

#include "core/flow/asset_products.h"
#include "core/flow/ingest.h"
#include "core/store/assets.h"
#include "handlers/handlers.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

int api_assets_list(struct req *r)
{
	const char *type = req_query(r, "type"), *q = req_query(r, "q");
	json_t *list = NULL;
	if (type && *type && !asset_kind_valid(type))
		return req_fail(r, PB_EINVAL, NULL, "type: use workspace, semantic_model, report, dashboard or datasource");
	int rc = assets_list_json(r->db, r->who.org_id, type && *type ? type : NULL, q, &list, r->err);
	return req_answer_json_new(r, rc, 200, list ? json_pack("{s:o}", "assets", list) : NULL);
}

int api_assets_get(struct req *r)
{
	pb_asset *a = NULL;
	json_t *o = NULL, *seen = NULL;
	int rc = assets_get(r->db, r->who.org_id, req_capture(r, "id"), &a, r->err);
	if (!rc)
		rc = ingest_asset_seen_by(r->db, a, &seen, r->err);
	if (!rc) {
		/* which integrations see it, the one whose credentials refresh it first */
		o = asset_json(a, true);
		if (!o) {
			json_decref(seen);
		} else if (json_object_set_new(o, "seen_by", seen)) {   /* takes seen */
			json_decref(o);
			o = NULL;
		}
		seen = NULL;
		rc = req_reply_json_new(r, 200, o);
	}
	json_decref(seen);
	asset_free(a);
	return rc;
}

int api_data_products_from_asset(struct req *r)
{
	static const char *const keys[] = { "asset_id", NULL };
	json_t *body = NULL, *out = NULL;
	bool created = false;
	int rc;
	if (json_body_parse(r->body, r->body_len, 0, &body, r->err) || json_body_only_keys(body, keys, "", r->err)) {
		json_decref(body);
		return req_fail(r, PB_EINVAL, NULL, "request body: %s", r->err);
	}
	const char *id = json_string_value(json_object_get(body, "asset_id"));
	if (!id || !*id)
		rc = req_fail(r, PB_EINVAL, NULL, "asset_id is required");
	else if (!(rc = asset_product_create(r->db, r->who.org_id, id, &out, &created, r->err)))
		rc = req_reply_json_new(r, created ? 201 : 200, out);
	json_decref(body);
	return rc;
}
