/* The one place that turns a failed Microsoft call into a pbiport failure, for every job kind
 * and for the request path. msapi has classified the failure (msapi_last.failure); this module
 * picks the pbiport result code (which decides the HTTP status) and the user-facing code:
 *
 *   MSAPI_RETRY_AFTER      PB_EUNAVAIL   "throttled"          retry_after_s from Retry-After
 *   MSAPI_UNAVAILABLE      PB_EUNAVAIL   "unavailable"
 *   MSAPI_OUTCOME_UNKNOWN  PB_EUNAVAIL   "outcome_unknown"    the caller finds out before repeating
 *   MSAPI_REAUTHENTICATE   PB_ECONFLICT  "needs_reconnect"
 *   MSAPI_BAD_CREDENTIALS  PB_EINVAL     "bad_credentials"
 *   MSAPI_FORBIDDEN        PB_EFORBIDDEN "powerbi_forbidden"
 *   MSAPI_NOT_FOUND        PB_ENOTFOUND  "powerbi_not_found"
 *   MSAPI_NAME_TAKEN       PB_ECONFLICT  "name_taken"
 *   MSAPI_REJECTED         PB_EUPSTREAM  "powerbi_rejected"
 *
 * A flow that knows better what a failure means in its context (a forbidden create is a
 * Viewer's "no_write_role" in publish) names its own code with ms_fail_as. */
#ifndef PBIPORT_MS_FAILURE_H
#define PBIPORT_MS_FAILURE_H

#include "core/flow/worker.h"
#include "msapi/msapi.h"
#include "runtime/failure.h"

/* Fills f from api's last failure and rc, the call's result, keeping the message already in
 * f->message (where the call wrote it: pass f->message as the call's err). A failure that did
 * not come from Microsoft (MSAPI_OK: out of memory, a local check) keeps rc and its default
 * code. Returns f->rc. */
int ms_fail(const msapi *api, int rc, pb_failure *f);
/* The same with the user-facing code named by the caller (the result code stays the table's). */
int ms_fail_as(const msapi *api, int rc, const char *code, pb_failure *f);

/* Ends a job's attempt with f: a failure worth another try (PB_EUNAVAIL, PB_ENOMEM, PB_EIO)
 * goes back to the queue (a throttled one without using up an attempt, after its
 * Retry-After), anything else fails the job with f's code and message. Returns the job_*
 * function's value, for `return job_end_with(ctx, &f)`. */
int job_end_with(pb_job_ctx *ctx, const pb_failure *f);

#endif
