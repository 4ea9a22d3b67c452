#include "msapi/graph.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/util.h"

/* An app id is a GUID; anything else must not reach the OData key syntax. */
static bool app_id_ok(const char *s)
{
	size_t n = 0;
	for (; s && s[n]; n++) {
		char ch = s[n];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || ch == '-'))
			return false;
	}
	return n >= 32 && n <= 36;
}

int graph_app_display_name(msapi *c, const char *app_id, char **name, char *err)
{
	*name = NULL;
	if (!app_id_ok(app_id))
		return pb_err(err, PB_EINVAL, "client id \"%.60s\" is not a GUID", app_id ? app_id : "");
	char *path = NULL;
	msapi_reply r = { 0 };
	int rc = PB_OK;
	if (asprintf(&path, "/v1.0/servicePrincipals(appId='%s')?$select=displayName,appDisplayName,appId",
		     app_id) < 0) {
		path = NULL;
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	msapi_call call = { .svc = MSAPI_GRAPH, .method = "GET", .url = path, .idempotent = true,
			    .what = "look up the application's name" };
	if ((rc = msapi_do(c, &call, &r, err)))
		goto out;
	const char *dn = json_string_value(json_object_get(r.json, "displayName"));
	if (!dn || !*dn)
		dn = json_string_value(json_object_get(r.json, "appDisplayName"));
	if (!dn || !*dn) {
		rc = pb_err(err, PB_EIO, "Graph answered without a display name for application %s", app_id);
		goto out;
	}
	if (!(*name = xstrdup(dn)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	free(path);
	msapi_reply_release(&r);
	return rc;
}
