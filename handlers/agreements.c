/* GET /api/agreements[?data_product=], GET /api/agreements/{id}: the data-usage agreements of
 * the caller's organization (core/store/agreements.h). Another organization's answer 404. */
#include <jansson.h>

#include "core/store/agreements.h"
#include "handlers/handlers.h"
#include "runtime/page.h"
#include "runtime/util.h"

int api_agreements_list(struct req *r)
{
	pb_page page;
	json_t *out = NULL;
	int rc = pb_page_parse(req_query(r, "limit"), req_query(r, "cursor"), PB_AGREEMENTS_PAGE_DEFAULT,
			       PB_AGREEMENTS_PAGE_MAX, &page, r->err);
	if (!rc && !(rc = agreements_list_json(r->db, r->who.org_id, req_query(r, "data_product"), req_query(r, "state"),
					       &page, &out, r->err)))
		rc = req_reply_json_new(r, 200, out);
	return rc;
}

int api_agreements_get(struct req *r)
{
	json_t *out = NULL;
	int rc = agreement_get_json(r->db, r->who.org_id, req_capture(r, "id"), &out, r->err);
	return req_answer_json_new(r, rc, 200, out);
}
