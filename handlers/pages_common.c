/* What every page shares: the header's organization (the chrome the runtime's view.page
 * lacks) and the one way page handlers answer (runtime/page_render.h). */
#include <jansson.h>

#include "core/store/identity.h"
#include "handlers/handlers.h"

int pages_chrome(struct req *r, json_t *page, char *err)
{
	char org[PB_NAME_FIELD_MAX + 1];
	int rc = identity_org_name(r->db, r->who.org_id, org, err);
	if (rc)
		return rc;
	if (json_object_set_new(json_object_get(page, "user"), "org", json_string(org)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	return PB_OK;
}

int pages_reply(struct req *r, const char *name, json_t *view, int status)
{
	return page_reply(r, name, view, status, pages_chrome);
}

int pages_reply_refused(struct req *r, const char *name, json_t *view, int status, const pb_failure *refused)
{
	if (view && pages_set_failure(view, "error", refused)) {
		json_decref(view);
		view = NULL;
	}
	return pages_reply(r, name, view, status);
}

int pages_set_failure(json_t *view, const char *key, const pb_failure *f)
{
	if (!f)
		return PB_OK;
	return json_object_set_new(view, key, json_pack("{s:s, s:s}", "code", pb_failure_code(f), "message", f->message))
		       ? PB_ENOMEM
		       : PB_OK;
}
