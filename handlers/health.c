/* GET /healthz: the process answers and the database is readable. */
#include <jansson.h>

#include "handlers/handlers.h"
#include "runtime/log.h"

int api_health_get(struct req *r)
{
	char err[PB_ERR_MAX];
	if (db_ping(r->db, err)) {
		log_event("error", r->request_id, "health check failed: %s", err);
		return req_fail(r, PB_EUNAVAIL, NULL, "database is not available");
	}
	return req_reply_json_new(r, 200, json_pack("{s:s}", "status", "ok"));
}
