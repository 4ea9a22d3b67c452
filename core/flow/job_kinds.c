/* THE table of job kinds and scheduled checks the worker runs. One row per kind;
 * each names the function in core/ that carries it out. */
#include "core/flow/drift.h"
#include "core/flow/ingest.h"
#include "core/flow/model_unpublish.h"
#include "core/flow/model_update.h"
#include "core/flow/publish.h"
#include "core/flow/push.h"
#include "core/flow/refresh.h"
#include "core/flow/webhooks.h"
#include "core/flow/worker.h"

const pb_job_kind pb_job_kinds[] = {
	/* name         run            cleanup on cancel (NULL: nothing to remove) */
	{ "ingest",     ingest_job,    NULL },
	{ "publish",    publish_job,   publish_cancel_cleanup },
	{ "refresh",    refresh_job,   NULL },
	{ "push_rows",  push_rows_job, NULL },
	{ "update",     model_update_job, NULL },
	{ "unpublish",  model_unpublish_job, NULL },
	{ "drift_check", drift_check_job, NULL },
	{ WEBHOOK_JOB_KIND, webhook_delivery_job, NULL },
	{ NULL, NULL, NULL },
};

const pb_worker_tick pb_worker_ticks[] = {
	ingest_schedule_tick,
	refresh_schedule_tick,
	drift_schedule_tick,
	push_spool_tick,
	NULL,
};
