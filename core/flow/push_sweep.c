/* The worker's sweep of spooled rows nobody will send (core/flow/push.h push_spool_sweep). */
#include <ctype.h>
#include <string.h>

#include "core/flow/push_internal.h"
#include "runtime/timeutil.h"

/* ======================================================================== spool sweep */

/* Does a queued or running job own the upload's chunks (its owner row names the job)? */
static int owned(pb_db *db, const char *upload, bool *alive, char *err)
{
	db_stmt *st = NULL;
	pb_job *j = NULL;
	char job_id[PB_ID_BUF] = "";
	*alive = false;
	int rc = db_prepare(db, "SELECT rows_json FROM push_chunks WHERE upload_id = ? AND seq = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, upload, err)))
		db_bind_int64(st, 2, SPOOL_OWNER_SEQ, NULL);
	if (!rc && (rc = db_row(db, st, err)) == 1) {
		xsnprintf(job_id, sizeof job_id, "%s", db_col_text(st, 0));
		rc = 0;
	}
	db_done(st);
	if (rc || !job_id[0])
		return rc;
	rc = jobs_get(db, job_id, &j, err);
	if (!rc)
		*alive = !strcmp(j->state, "queued") || !strcmp(j->state, "running");
	job_free(j);
	return rc == PB_ENOTFOUND ? 0 : rc;
}

/* Drops the upload's chunks unless a job owns them, in one transaction: the POST that spools
 * them makes its job their owner in one too, so they are either owned or gone, never both. */
static int drop_unowned(pb_db *db, const char *upload, bool *dropped, char *err)
{
	bool alive = false;
	*dropped = false;
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	if (!(rc = push_upload_lock(db, upload, err)) && !(rc = owned(db, upload, &alive, err)) && !alive)
		rc = push_chunks_drop(db, upload, -1, err);
	if ((rc = db_end(db, rc, err)))
		return rc;
	*dropped = !alive;
	return PB_OK;
}

int push_spool_sweep(pb_db *db, const char *older_than, size_t *dropped, char *err)
{
	db_stmt *st = NULL;
	char (*ids)[PB_ID_BUF] = NULL;
	size_t n = 0;
	int rc, row;
	*dropped = 0;
	/* uploads whose newest chunk is older than the limit */
	rc = db_prepare_list(db, "SELECT upload_id FROM push_chunks GROUP BY upload_id HAVING MAX(created_at) < ? LIMIT ?",
			     &older_than, 1, PB_LIST_MAX_ITEMS, &st, err);
	if (rc)
		goto out;
	if (!(ids = calloc(PB_LIST_MAX_ITEMS, sizeof *ids))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	while ((row = db_row(db, st, err)) == 1)
		xsnprintf(ids[n++], sizeof ids[0], "%s", db_col_text(st, 0));
	db_done(st);
	st = NULL;
	if (row < 0) {
		rc = row;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		/* no owner: the POST that spooled them died before queueing its job; an owner that
		 * ended (or is gone) did not take them with it */
		bool gone = false;
		if ((rc = drop_unowned(db, ids[i], &gone, err)))
			goto out;
		*dropped += gone;
	}
out:
	db_done(st);
	free(ids);
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
