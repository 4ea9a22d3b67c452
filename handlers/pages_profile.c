/* Your profile ▸ Power BI connections: /profile/power-bi shows the user's Power BI connections
 * with the status the token service acts on (core/flow/powerbi_connect.h connect_list), links
 * to Connect to Power BI / Reconnect (GET /powerbi/connect, back to this page) and disconnects
 * one after a confirmation (POST /profile/power-bi). Also the page a browser lands on when the
 * connect callback fails (pages_connect_failed), instead of a JSON error. */
#include <jansson.h>
#include <string.h>

#include "core/flow/powerbi_connect.h"
#include "core/store/connections.h"
#include "core/store/powerbi_settings.h"
#include "handlers/handlers.h"
#include "runtime/page_render.h"
#include "runtime/util.h"

/* The page; confirm_id (may be NULL) is the connection whose disconnect is to be confirmed. */
static int reply_profile(struct req *r, const char *confirm_id)
{
	pbi_settings s = { 0 };
	json_t *conns = NULL;
	pb_failure f;
	int rc = pbi_settings_get(r->db, r->cfg, r->who.org_id, &s, r->err);
	bool configured = rc == PB_OK;
	if (rc && rc != PB_ENOTFOUND)
		goto out;
	if ((rc = connect_list(r->db, r->cfg, r->who.org_id, r->who.user_id, &conns, &f))) {
		r->fail = f;
		goto out;
	}
	if (confirm_id) {
		/* only one of the user's own: another id is a 404, as the API answers */
		bool mine = false;
		size_t i;
		json_t *c;
		json_array_foreach(conns, i, c) {
			const char *cid = json_string_value(json_object_get(c, "id"));
			mine = mine || (cid && !strcmp(cid, confirm_id));
		}
		if (!mine) {
			rc = req_fail(r, PB_ENOTFOUND, NULL, "no Power BI connection %.64s", confirm_id);
			goto out;
		}
	}
	/* a view json_pack could not make is pages_reply's out of memory */
	rc = pages_reply(r, "profile_power_bi",
			 json_pack("{s:O, s:b, s:s?, s:s?, s:b}", "connections", conns, "configured", configured,
				   "application_name", s.application_name, "confirm_disconnect", confirm_id,
				   "disconnected", req_query(r, "disconnected") != NULL),
			 200);
out:
	json_decref(conns);
	pbi_settings_release(&s);
	return rc;
}

int pages_profile_power_bi(struct req *r)
{
	return reply_profile(r, NULL);
}

int pages_profile_power_bi_post(struct req *r)
{
	const page_field *action = page_form_get(&r->form, "action"), *id = page_form_get(&r->form, "connection_id");
	const page_field *confirmed = page_form_get(&r->form, "confirmed");
	if (!action || strcmp(action->value, "disconnect") || !id || !id->len)
		return req_fail(r, PB_EINVAL, NULL, "the form asks for nothing this page does (action=disconnect and "
				"connection_id)");
	/* Disconnect (confirm): without the confirmation the page asks first */
	if (!confirmed || strcmp(confirmed->value, "yes"))
		return reply_profile(r, id->value);
	int rc = conn_delete(r->db, r->who.org_id, r->who.user_id, id->value, r->err);
	if (rc == PB_ENOTFOUND)
		return req_fail(r, rc, NULL, "no Power BI connection %.64s", id->value);
	return rc ? rc : page_redirect(r, "/profile/power-bi?disconnected=1");
}

int pages_connect_failed(struct req *r, int rc, const char *return_to)
{
	/* pbiport's own failures stay the error page that names only the request id */
	if (rc == PB_ENOMEM || rc == PB_EIO || rc == PB_EINTERNAL)
		return rc;
	int status = pb_rc_status(rc);
	return pages_reply(r, "connect_failed",
			   json_pack("{s:{s:i, s:s, s:s}, s:s}", "error", "status", status, "code",
				     pb_failure_code(&r->fail), "message", r->fail.message, "return_to",
				     return_to && conn_return_to_ok(return_to) ? return_to : "/profile/power-bi"),
			   status);
}
