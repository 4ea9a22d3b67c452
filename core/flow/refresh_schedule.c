/* The refresh schedule tick: queues a refresh for every schedule that came due. Runs once
 * per worker loop (core/flow/job_kinds.c); several workers may run it at once, so each due
 * time is claimed by a compare-and-swap on next_run_at, in the same transaction as the job
 * it queues: a due time is used up only by the refresh it queued (or by a model that can no
 * longer be refreshed, which is logged). */
#include <jansson.h>
#include <stdlib.h>

#include "core/lang/cron.h"
#include "core/flow/refresh.h"
#include "runtime/log.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

/* queue_due's transaction: the schedule that came due and its next due time. */
struct refresh_due_at {
	const pb_config *cfg;
	const refresh_due *d;
	const char *next;
};

static int queue_due_work(pb_db *db, void *ctx, char *err)
{
	const struct refresh_due_at *q = ctx;
	const refresh_due *d = q->d;
	pb_failure f = { 0 };
	json_t *reply = NULL;
	bool won = false;
	/* the due time moves past now first: one catch-up refresh however many were missed */
	int rc = refresh_schedule_advance(db, d->ref, d->next_run_at, q->next, &won, err);
	if (!rc && won && (rc = refresh_submit(db, q->cfg, d->org_id, NULL, d->ref, NULL, "schedule", &reply, &f))) {
		if (refresh_refused(&f)) {
			/* the model lost its credentials or disappeared: say so, keep ticking */
			log_event("warn", NULL, "scheduled refresh of %s not queued: %s", d->ref, f.message);
			rc = 0;
		} else {
			rc = pb_err(err, rc, "scheduled refresh of %s: %s", d->ref, f.message);
		}
	}
	json_decref(reply);
	return rc;
}

/* Claims the due time of d (moving it to next) and queues its refresh, together. */
static int queue_due(pb_db *db, const pb_config *cfg, const refresh_due *d, const char *next, char *err)
{
	struct refresh_due_at q = { cfg, d, next };
	return db_transaction(db, queue_due_work, &q, err);
}

int refresh_schedule_tick(pb_db *db, const pb_config *cfg, char *err)
{
	refresh_due *v = NULL;
	size_t n = 0;
	char now[PB_TIME_BUF];
	pb_now(now);
	int rc = refresh_schedules_due(db, now, &v, &n, err);
	for (size_t i = 0; !rc && i < n; i++) {
		pb_cron c;
		int64_t next_s;
		char next[PB_TIME_BUF], sub[PB_ERR_MAX];
		bool won = false;
		if (cron_parse(v[i].schedule, &c, sub) || cron_next(&c, pb_epoch_ms() / 1000, &next_s, sub)) {
			/* a schedule that no longer parses stops being due rather than firing each tick */
			rc = refresh_schedule_advance(db, v[i].ref, v[i].next_run_at, "9999-12-31T00:00:00.000Z", &won, err);
			continue;
		}
		pb_time_format(next_s * 1000, next);
		rc = queue_due(db, cfg, &v[i], next, err);
	}
	free(v);
	return rc;
}
