/* /push-datasets: the push datasets of the teams I belong to (owners: all of the
 * organization's), their tables with the rows pbiport sent, and Microsoft's notice: no new
 * push datasets from 31 October 2027, Microsoft Fabric Real-Time Intelligence instead
 * (PUSH_RETIREMENT_WARNING). Datasets are made and fed through the API (docs/refresh-push.md). */
#include <jansson.h>

#include "core/flow/push.h"
#include "handlers/handlers.h"
#include "runtime/util.h"

/* Each table of each dataset gets "rows": pbiport's count of the rows in it. */
static int add_rows(struct req *r, json_t *datasets)
{
	json_t *d, *t;
	size_t i, k;
	json_array_foreach(datasets, i, d) {
		const char *id = json_string_value(json_object_get(d, "id"));
		json_array_foreach(json_object_get(d, "tables"), k, t) {
			const char *table = json_string_value(json_object_get(t, "name"));
			long rows = 0;
			int rc = id && table ? push_table_rows_count(r->db, id, table, &rows, r->err) : PB_OK;
			if (rc)
				return rc;
			if (json_object_set_new(t, "rows", json_integer(rows)))
				return pb_err(r->err, PB_ENOMEM, "out of memory");
		}
	}
	return PB_OK;
}

int pages_push_datasets(struct req *r)
{
	push_caller who = { r->who.org_id, r->who.user_id, r->who.role };
	json_t *reply = NULL;
	int rc = push_datasets_list(r->db, &who, &reply, r->err);
	if (!rc)
		rc = add_rows(r, json_object_get(reply, "push_datasets"));
	if (!rc && json_object_set_new(reply, "notice", json_string(PUSH_RETIREMENT_WARNING)))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	if (!rc) {
		rc = pages_reply(r, "push_datasets", reply, 200);
		reply = NULL;
	}
	json_decref(reply);
	return rc;
}
