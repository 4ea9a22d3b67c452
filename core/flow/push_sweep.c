/* The worker's sweep of spooled rows nobody will send (core/flow/push.h push_spool_sweep). */
#include <ctype.h>
#include <string.h>

#include "core/flow/push_internal.h"
#include "runtime/timeutil.h"

/* ======================================================================== spool sweep */

/* Is the job named by an owner row still going to send its chunks? */
static int owner_alive(pb_db *db, const char *job_id, bool *alive, char *err)
{
	pb_job *j = NULL;
	int rc = job_id && *job_id ? jobs_get(db, job_id, &j, err) : PB_ENOTFOUND;
	*alive = false;
	if (rc == PB_ENOTFOUND)
		return 0;
	if (!rc)
		*alive = !strcmp(j->state, "queued") || !strcmp(j->state, "running");
	job_free(j);
	return rc;
}

int push_spool_sweep(pb_db *db, const char *older_than, size_t *dropped, char *err)
{
	sqlite3_stmt *st = NULL;
	char (*ids)[PB_ID_BUF] = NULL, (*owners)[PB_ID_BUF] = NULL;
	size_t n = 0;
	int rc, row;
	*dropped = 0;
	/* uploads whose newest chunk is older than the limit, with the job that owns them (if any) */
	rc = db_prepare(db,
			"SELECT upload_id, MAX(CASE WHEN seq = -1 THEN rows_json END) FROM push_chunks GROUP BY upload_id "
			"HAVING MAX(created_at) < ? LIMIT ?",
			&st, err);
	if (rc || (rc = db_bind_text(st, 1, older_than, err)))
		goto out;
	sqlite3_bind_int(st, 2, PB_LIST_MAX_ITEMS);
	if (!(ids = calloc(PB_LIST_MAX_ITEMS, sizeof *ids)) || !(owners = calloc(PB_LIST_MAX_ITEMS, sizeof *owners))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	while ((row = db_row(db, st, err)) == 1) {
		xsnprintf(ids[n], sizeof ids[n], "%s", db_col_text(st, 0));
		xsnprintf(owners[n], sizeof owners[n], "%s", db_col_text(st, 1) ? db_col_text(st, 1) : "");
		n++;
	}
	db_done(st);
	st = NULL;
	if (row < 0) {
		rc = row;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		bool alive = false;
		/* no owner: the POST that spooled them died before queueing its job; an owner that
		 * ended (or is gone) did not take them with it */
		if ((rc = owner_alive(db, owners[i], &alive, err)))
			goto out;
		if (alive)
			continue;
		if ((rc = push_chunks_drop(db, ids[i], -1, err)))
			goto out;
		(*dropped)++;
	}
out:
	db_done(st);
	free(ids);
	free(owners);
	return rc;
}

int push_spool_tick(pb_db *db, const pb_config *cfg, char *err)
{
	static int64_t last_ms;
	char cutoff[PB_TIME_BUF];
	size_t dropped = 0;
	int64_t now = pb_epoch_ms();
	(void)cfg;
	if (last_ms && now - last_ms < PB_PUSH_SPOOL_SWEEP_MS)
		return 0;
	last_ms = now;
	pb_time_format(now - PB_PUSH_SPOOL_ORPHAN_S * 1000LL, cutoff);
	return push_spool_sweep(db, cutoff, &dropped, err);
}
