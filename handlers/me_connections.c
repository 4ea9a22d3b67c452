/* GET /api/me/powerbi-connections, DELETE /api/me/powerbi-connections/{id},
 * POST /api/me/powerbi-connections/check: the caller's own Power BI connections.
 * Another user's or organization's id answers 404 like a missing one. No tokens go out.
 * Both the list and the check read the stored status (core/store/connections.h): whatever learns
 * that a connection is dead records it there. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/connections.h"
#include "core/flow/pbi_session.h"
#include "core/store/powerbi_settings.h"
#include "handlers/handlers.h"
#include "msapi/powerbi.h"
#include "runtime/util.h"

int me_connections_list(struct req *r)
{
	json_t *list = NULL;
	pbi_settings s = { 0 };
	/* the organization's app may have changed without a save here (PBIPORT_SSO_* on the
	 * server): connections to another app are recorded as needing a reconnect first, so
	 * this list says what the token service will do */
	int rc = pbi_settings_get(r->db, r->cfg, r->who.org_id, &s, r->err);
	if (!rc && s.tenant_id && s.client_id)
		rc = conn_mark_app_changed(r->db, r->who.org_id, s.tenant_id, s.client_id, r->err);
	pbi_settings_release(&s);
	if (rc && rc != PB_ENOTFOUND)
		return rc;
	if ((rc = conn_list(r->db, r->who.org_id, r->who.user_id, &list, r->err)))
		return rc;
	return req_reply_json_new(r, 200, json_pack("{s:o}", "connections", list));
}

int me_connections_delete(struct req *r)
{
	int rc = conn_delete(r->db, r->who.org_id, r->who.user_id, req_capture(r, "id"), r->err);
	if (rc == PB_ENOTFOUND)
		return req_reply_error(r, 404, "not_found", "no Power BI connection with this id");
	if (rc)
		return rc;
	return req_reply(r, 204, "application/json", NULL, 0);
}

/* Uses the caller's connection once through the shared token service (refreshing the token
 * when it is about to expire) and lists the workspaces it can see: proof that publishing
 * will be able to act for the user. */
int me_connections_check(struct req *r)
{
	pbi_session s = { 0 };
	msapi_items groups = { 0 };
	char code[PBI_CODE_MAX];
	int rc = pbi_session_user(&s, r->db, r->cfg, r->who.org_id, r->who.user_id, code, r->err);
	if (rc) {
		int status = !strcmp(code, "unavailable") ? 502 : 409;
		return req_reply_error(r, status, code, "%s", r->err);
	}
	rc = powerbi_list_groups(&s.api, NULL, &groups, r->err);
	if (rc && *pbi_session_code(&s) && strcmp(pbi_session_code(&s), "unavailable"))
		rc = req_reply_error(r, 409, pbi_session_code(&s), "%s", r->err);
	else if (rc)
		rc = req_reply_error(r, 502, "powerbi_failed", "%s", r->err);
	else
		rc = req_reply_json_new(r, 200, json_pack("{s:b, s:I}", "ok", 1, "workspaces", (json_int_t)groups.n));
	msapi_items_release(&groups);
	pbi_session_release(&s);
	return rc;
}
