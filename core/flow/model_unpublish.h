/* Unpublishing a published model (DELETE /api/published-models/{id}, docs/lifecycle.md).
 *
 * The request ({} or {"keep_model": bool, "keep_connection": bool}) is checked (the publisher
 * or an organization owner: core/flow/model_lifecycle.h) and queues a job of kind "unpublish",
 * the model put into state unpublishing in the same transaction. A repeat while that job is
 * queued or running returns it. Its phases, each done once (checkpointed) and each harmless
 * to repeat:
 *   deleting_model       the semantic model deleted in Power BI (as the publisher); one
 *                        already gone counts as deleted. keep_model: skipped (the model stays
 *                        in Power BI, detached from pbiport).
 *   deleting_connection  the Fabric connection the publish created for it deleted, when no
 *                        other published model that is not unpublished uses it (a kept
 *                        model still does: keep_model keeps it); a connection the publish
 *                        reused is never deleted. keep_connection: skipped.
 *   finalizing           the model unpublished (keep_model: detached), its agreement
 *                        terminated by the requester, its consumer data product retired; the
 *                        lineage edge stays as history (core/store/published_models.h
 *                        pm_unpublish_finish).
 * Job result: {"published_model_id","state","removed":{"semantic_model_id","connection_id"},
 * "kept":{"semantic_model_id","connection_id"}} (null where none).
 * Failures: the request's "not_found", "forbidden", "model_unpublished", "model_busy" (an update
 * is at work), "bad_request"; the job's the publisher's session's (no_credentials,
 * not_connected, needs_reconnect) and Microsoft's. */
#ifndef PBIPORT_MODEL_UNPUBLISH_H
#define PBIPORT_MODEL_UNPUBLISH_H

#include <stdbool.h>

#include "core/flow/model_lifecycle.h"
#include "core/flow/worker.h"

/* DELETE /api/published-models/{id}: body (body_len bytes, may be empty) as above. job_id
 * receives the job; *existing true when it is the unpublish already in flight. */
int model_unpublish_submit(pb_db *db, const lc_actor *by, const char *id, const char *body, size_t body_len,
			   char job_id[PB_ID_BUF], bool *existing, pb_failure *f);

/* The job kind "unpublish" (core/flow/job_kinds.c). */
int model_unpublish_job(pb_job_ctx *ctx);

#endif
