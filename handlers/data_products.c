/* POST/GET /api/data-products[/{id}], DELETE /api/data-products/{id}: contracts in,
 * catalog out. The route table already checked identity, body size and type; updating an
 * existing product also needs its owner or an organization owner (core/store/catalog.h). */
#include <jansson.h>
#include <stdlib.h>

#include "core/flow/model_update.h"
#include "core/store/agreements.h"
#include "core/store/catalog.h"
#include "core/lang/contract.h"
#include "handlers/handlers.h"
#include "runtime/answer_cache.h"
#include "runtime/json_body.h"
#include "runtime/json_out.h"
#include "runtime/util.h"

int api_data_products_import(struct req *r)
{
	pb_contract *c = NULL;
	cat_product *p = NULL;
	json_t *doc = NULL;
	bool created = false;
	int rc;
	if (!utf8_valid(r->body, r->body_len))
		return req_fail(r, PB_EINVAL, NULL, "request body is not valid UTF-8");
	/* a JSON body must be JSON (YAML would accept more); positions come from the JSON parser */
	if (json_media_type(r->content_type) && json_body_parse(r->body, r->body_len, PB_CONTRACT_MAX_DEPTH, &doc, r->err))
		return req_fail(r, PB_EINVAL, NULL, "request body: %s", r->err);
	json_decref(doc);
	cat_actor by = { .user_id = r->who.user_id, .org_owner = r->who.role == PB_ROLE_OWNER };
	if (!(rc = contract_parse(r->body, r->body_len, "request body", &c, r->err)) &&
	    !(rc = catalog_import_by(r->db, r->who.org_id, &by, c, r->body, r->body_len, &p, &created, &r->fail))) {
		model_update_after_import(r->db, r->cfg, r->who.org_id, p->id, created);
		if (!(rc = req_json_begin(r, created ? 201 : 200)))
			rc = req_json_end(r, catalog_product_out(&r->resp, p, false));
	}
	catalog_product_free(p);
	contract_free(c);
	return rc;
}

int api_data_products_list(struct req *r)
{
	cat_product *v = NULL;
	size_t n = 0;
	int rc = catalog_product_list(r->db, r->who.org_id, &v, &n, r->err);
	if (rc)
		return rc;
	if (!(rc = req_json_begin(r, 200))) {
		int bad = sbuf_adds(&r->resp, "{\"data_products\":[");
		for (size_t i = 0; !bad && i < n; i++)
			bad = (i && sbuf_addc(&r->resp, ',')) || catalog_product_out(&r->resp, &v[i], false);
		rc = req_json_end(r, bad || sbuf_adds(&r->resp, "]}"));
	}
	catalog_products_free(v, n);
	return rc;
}

/* The product with its contract and the ports it reads ("consumes"), written as text. A caller's
 * identity was read with its organization's catalog version: an answer
 * this process built for that organization at that version is given again as it is
 * (runtime/answer_cache.h; every write of what it shows moves the version, sql/0018). */
int api_data_products_get(struct req *r)
{
	cat_product *p = NULL;
	json_t *consumes = NULL;
	const char *id = req_capture(r, "id");
	const int64_t version = pb_identity_version(&r->who);
	size_t len;
	const char *kept = version >= 0 ? answer_cache_get(r->who.org_id, id, version, &len) : NULL;
	if (kept)
		return req_reply(r, 200, "application/json", kept, len);
	int rc = catalog_product_get(r->db, r->who.org_id, id, true, &p, r->err);
	/* the ports this product reads, under which agreements: empty for a source product */
	if (!rc)
		rc = agreements_consumed_known(r->db, r->who.org_id, p->id, p->consumes, &consumes, r->err);
	if (!rc && !(rc = req_json_begin(r, 200)))
		rc = req_json_end(r, catalog_product_out_open(&r->resp, p, true) || sbuf_adds(&r->resp, ",\"consumes\":") ||
				     json_out(&r->resp, consumes, JSON_COMPACT) || sbuf_addc(&r->resp, '}'));
	if (!rc && version >= 0)
		answer_cache_put(r->who.org_id, id, version, sbuf_str(&r->resp), r->resp.len);
	json_decref(consumes);
	catalog_product_free(p);
	return rc;
}

/* A kept answer is bet on (its version is only known with the token): no product read is sent
 * along; when the bet is lost, the handler reads it in a round trip of its own. */
void api_prefetch(struct req *r, const char *org_id)
{
	if (r->route->handler == api_data_products_get && !answer_cache_has(org_id, req_capture(r, "id")))
		catalog_product_prefetch(r->db, org_id, req_capture(r, "id"));
}

int api_data_products_delete(struct req *r)
{
	int rc = catalog_product_delete(r->db, r->who.org_id, req_capture(r, "id"), r->err);
	if (!rc)
		rc = req_reply(r, 204, "application/json", NULL, 0);
	return rc;
}
