#include "core/flow/tenant_hold.h"

int tenant_backoff_hold_job(pb_job_ctx *ctx, const char *tenant_id, tb_family f, tenant_backoff *out, bool *held)
{
	tenant_backoff tb;
	bool waiting = false;
	*held = false;
	if (!out)
		out = &tb;
	int rc = tenant_backoff_get(ctx->db, tenant_id, f, out, &waiting, ctx->err);
	if (rc || !waiting)
		return rc;
	*held = true;
	return job_wait(ctx, (long)out->wait_ms, "tenant_backoff",
			"waiting until %s: Power BI asked every %s caller on tenant %s to wait (%s)", out->until,
			tenant_backoff_family_name(f), tenant_id, out->reason);
}
