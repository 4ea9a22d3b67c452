/* A job that must wait for its tenant's back-off (core/store/tenant_backoff.h): the store keeps
 * the waits, this puts a job back in the queue for one. */
#ifndef PBIPORT_TENANT_HOLD_H
#define PBIPORT_TENANT_HOLD_H

#include <stdbool.h>

#include "core/flow/worker.h"
#include "core/store/tenant_backoff.h"

/* For a job about to call family f on tenant_id: when the tenant must wait, puts the job back
 * in the queue until the wait ends (job_wait with code "tenant_backoff" and a message saying
 * why it waits and until when, shown in the job's status) and returns that rc with *held true;
 * else 0 and *held false. *out (may be NULL) gets the wait. A failure to read the store is
 * returned with the message in ctx->err. */
int tenant_backoff_hold_job(pb_job_ctx *ctx, const char *tenant_id, tb_family f, tenant_backoff *out, bool *held);

#endif
