/* The refresh schedule tick: queues a refresh for every schedule that came due. Runs once
 * per worker loop (core/flow/job_kinds.c); several workers may run it at once, so each due
 * time is claimed by a compare-and-swap on next_run_at before a job is queued. */
#include <jansson.h>
#include <stdlib.h>

#include "core/lang/cron.h"
#include "core/flow/refresh.h"
#include "runtime/log.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

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
		/* the due time moves past now first: one catch-up refresh however many were missed */
		if ((rc = refresh_schedule_advance(db, v[i].ref, v[i].next_run_at, next, &won, err)) || !won)
			continue;
		int status = 0;
		json_t *reply = NULL;
		rc = refresh_submit(db, cfg, v[i].org_id, NULL, v[i].ref, NULL, "schedule", &status, &reply, err);
		if (!rc && status != 202)
			/* the model lost its credentials or disappeared: say so, keep ticking */
			log_event("warn", NULL, "scheduled refresh of %s not queued: %s", v[i].ref,
				  json_string_value(json_object_get(json_object_get(reply, "error"), "message")));
		json_decref(reply);
	}
	free(v);
	return rc;
}
