/* GET /api/jobs/{id}: a job's state for its owner (or an org owner); 404 for anyone else. */
#include <jansson.h>

#include "handlers/handlers.h"
#include "runtime/jobs.h"
#include "runtime/util.h"

#include <string.h>

int jobs_get_handler(struct req *r)
{
	pb_job *j = NULL;
	const char *id = req_capture(r, "id");
	int rc = jobs_get(r->db, id, &j, r->err);
	if (rc == PB_ENOTFOUND)
		goto not_found;
	if (rc)
		return rc;
	/* Another org's job, or another user's unless the caller owns the org: not found,
	 * so ids reveal nothing. */
	if (strcmp(j->org_id, r->who.org_id) ||
	    (strcmp(j->user_id, r->who.user_id) && r->who.role != PB_ROLE_OWNER))
		goto not_found;
	rc = req_reply_json_new(r, 200, job_json(j));
	job_free(j);
	return rc;
not_found:
	job_free(j);
	return req_reply_error(r, 404, "not_found", "no job %s", id);
}
