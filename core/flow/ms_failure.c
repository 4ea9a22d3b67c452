#include "core/flow/ms_failure.h"

#include <string.h>

static const struct {
	msapi_failure failure;
	int rc;
	const char *code;
} table[] = {
	{ MSAPI_RETRY_AFTER, PB_EUNAVAIL, "throttled" },
	{ MSAPI_UNAVAILABLE, PB_EUNAVAIL, "unavailable" },
	{ MSAPI_OUTCOME_UNKNOWN, PB_EUNAVAIL, "outcome_unknown" },
	{ MSAPI_REAUTHENTICATE, PB_ECONFLICT, "needs_reconnect" },
	{ MSAPI_BAD_CREDENTIALS, PB_EINVAL, "bad_credentials" },
	{ MSAPI_FORBIDDEN, PB_EFORBIDDEN, "powerbi_forbidden" },
	{ MSAPI_NOT_FOUND, PB_ENOTFOUND, "powerbi_not_found" },
	{ MSAPI_NAME_TAKEN, PB_ECONFLICT, "name_taken" },
	{ MSAPI_REJECTED, PB_EUPSTREAM, "powerbi_rejected" },
};

int ms_fail_as(const msapi *api, int rc, const char *code, pb_failure *f)
{
	f->retry_after_s = 0;
	if (!rc)
		return pb_fail_as(f, PB_OK, NULL);
	msapi_failure kind = api ? api->last.failure : MSAPI_OK;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (table[i].failure == kind) {
			if (kind == MSAPI_RETRY_AFTER || kind == MSAPI_UNAVAILABLE)
				f->retry_after_s = api->last.retry_after_s > 0 ? api->last.retry_after_s : 0;
			return pb_fail_as(f, table[i].rc, code ? code : table[i].code);
		}
	return pb_fail_as(f, rc, code);
}

int ms_fail(const msapi *api, int rc, pb_failure *f)
{
	return ms_fail_as(api, rc, NULL, f);
}

int job_end_with(pb_job_ctx *ctx, const pb_failure *f)
{
	const char *code = pb_failure_code(f);
	long after_ms = f->retry_after_s > 0 ? f->retry_after_s * 1000 : 0;
	if (f->rc == PB_EUNAVAIL && !strcmp(code, "throttled"))
		return job_wait(ctx, after_ms, code, "%s", f->message);
	if (f->rc == PB_EUNAVAIL || f->rc == PB_ENOMEM || f->rc == PB_EIO)
		return job_retry_later(ctx, after_ms, code, "%s", f->message);
	return job_fail(ctx, code, "%s", f->message);
}
