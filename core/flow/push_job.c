/* The "push_rows" job: sends an upload's spooled chunks, finding out what happened to a chunk
 * whose answer was lost before anything is sent again (core/flow/push.h). */
#include <ctype.h>
#include <string.h>

#include "core/flow/push_internal.h"
#include "core/flow/tenant_hold.h"
#include "runtime/timeutil.h"

/* ======================================================================== the job */

/* The job's counts, saved with every chunk it adds (in that chunk's transaction). */
typedef struct job_counts {
	pb_job_ctx *ctx;
	long accepted;
	long total;             /* the upload's rows, for the progress */
} job_counts;

/* The job's progress once accepted rows of jc's upload were added. */
static int sent_progress(const job_counts *jc, long accepted)
{
	return jc->total ? (int)(accepted * 100 / jc->total) : 100;
}

static int job_chunk_added(send_ctx *sc, long nrows, char *err)
{
	job_counts *jc = sc->owner;
	pb_job_ctx *ctx = jc->ctx;
	/* job_checkpoint writes the whole object: the counters ride along with rows_accepted */
	if (json_object_set_new(ctx->checkpoint, "requests", json_integer(sc->requests)) ||
	    json_object_set_new(ctx->checkpoint, "throttled", json_integer(sc->throttled)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	/* the progress rides along too: the chunk's transaction is the job's one write for it */
	int rc = job_checkpoint_phase(ctx, "rows_accepted", json_integer(jc->accepted + nrows), "sending",
				      sent_progress(jc, jc->accepted + nrows));
	if (rc && err != ctx->err)
		xsnprintf(err, PB_ERR_MAX, "%s", ctx->err);
	if (!rc)
		jc->accepted += nrows;
	return rc;
}

/* Ends the job naming every row: first..last failed (what, why), the rows before were added,
 * the rows after were never sent. why may be ctx->err: it is copied before the message is. */
static int job_fail_rows(pb_job_ctx *ctx, const char *code, const char *what, long first, long last, long total,
			 const char *why)
{
	char cause[PB_ERR_MAX], added[96], unsent[160];
	xsnprintf(cause, sizeof cause, "%s", why);
	if (first > 1)
		xsnprintf(added, sizeof added, "rows 1 to %ld were added", first - 1);
	else
		xsnprintf(added, sizeof added, "no rows were added before them");
	if (last < total)
		xsnprintf(unsent, sizeof unsent, "rows %ld to %ld were not sent: send them again", last + 1, total);
	else
		xsnprintf(unsent, sizeof unsent, "no rows were left unsent");
	return job_fail(ctx, code, "rows %ld to %ld: %s (%s); %s; %s", first, last, what, cause, added, unsent);
}

/* Ends the attempt with f, a failure of the chunk of rows first..last: one worth another try
 * (Power BI asked to wait, or could not answer) brings the job back, saying how far it got;
 * anything else fails it naming every row (job_fail_rows). */
static int job_end_rows(pb_job_ctx *ctx, pb_failure *f, long first, long last, long accepted, long total)
{
	char code[PB_CODE_MAX];
	xsnprintf(code, sizeof code, "%s", pb_failure_code(f));
	if (f->rc == PB_EUNAVAIL || f->rc == PB_ENOMEM || f->rc == PB_EIO) {
		pb_fail(f, f->rc, code, "%s (%ld of %ld rows sent)", f->message, accepted, total);
		return job_end_with(ctx, f);
	}
	return job_fail_rows(ctx, code, "Power BI refused them", first, last, total, f->message);
}

int push_rows_job(pb_job_ctx *ctx)
{
	json_t *in = json_loads(ctx->job->input, 0, NULL);
	const char *upload = json_string_value(json_object_get(in, "upload_id"));
	const char *ds_id = json_string_value(json_object_get(in, "dataset_id"));
	const char *table = json_string_value(json_object_get(in, "table"));
	push_ds *d = NULL;
	push_conn *conn = NULL;
	pbi_session s = { 0 };
	pb_failure f = { 0 };
	bool have = false;
	int rc;
	long checked = 0;
	int64_t waited_ms = 0;
	sbuf body;
	sbuf_init(&body, PB_PUSH_CHUNK_BODY_MAX);
	if (!upload || !ds_id || !table) {
		rc = job_fail(ctx, "bad_input", "the job input lacks upload_id, dataset_id or table");
		goto out;
	}
	/* counts survive a restart in the checkpoint, written with each chunk's removal */
	job_counts jc = { .ctx = ctx };
	send_ctx sc = { .db = ctx->db, .table = table, .upload = upload, .stop = ctx->stop, .on_added = job_chunk_added,
			.owner = &jc };
	json_t *cp_req = json_object_get(ctx->checkpoint, "requests"), *cp_thr = json_object_get(ctx->checkpoint, "throttled");
	sc.requests = (long)json_integer_value(cp_req ? cp_req : json_object_get(in, "requests_before"));
	sc.throttled = (long)json_integer_value(cp_thr ? cp_thr : json_object_get(in, "throttled_before"));
	jc.accepted = (long)json_integer_value(json_object_get(ctx->checkpoint, "rows_accepted"));
	checked = (long)json_integer_value(json_object_get(ctx->checkpoint, "outcomes_checked"));
	long total = jc.total = (long)json_integer_value(json_object_get(in, "rows"));
	if ((rc = push_ds_get(ctx->db, NULL, ds_id, &d, ctx->err))) {
		if (rc == PB_ENOTFOUND)
			rc = job_fail(ctx, "not_found", "the push dataset was deleted");
		goto out;
	}
	sc.d = d;
	sc.retention_cap = push_retention_cap(d);
	push_limits_configured(ctx->cfg, &sc.lim);
	if ((rc = push_ds_session(ctx->db, ctx->cfg, d, &conn, &s, &have, &f))) {
		rc = job_end_with(ctx, &f);
		goto out;
	}
	sc.api = &s.api;
	/* Power BI's push budget is the tenant's: a Retry-After another job got holds this one
	 * too, in the queue rather than in the worker (core/store/tenant_backoff.h) */
	bool held = false;
	if ((rc = tenant_backoff_hold_job(ctx, conn->tenant_id, TB_PUSH, NULL, &held)))
		goto out;
	if ((rc = job_phase(ctx, "sending", total ? (int)(jc.accepted * 100 / total) : 0)))
		goto out;
	for (;;) {
		chunk_ref c = { 0 };
		if ((rc = push_chunk_next(&sc, &c, &body, ctx->err)) <= 0)
			break;
		long first = jc.accepted + 1, last = jc.accepted + c.nrows;
		if (!json_object_get(ctx->checkpoint, "rows_synced")) {
			/* before the first POST: pbiport's count of the table takes Power BI's */
			if ((!c.sending && (rc = push_table_rows_sync(&sc, ctx->err))) ||
			    (rc = job_checkpoint(ctx, "rows_synced", json_true())))
				goto out;
		}
		if (c.sending) {
			/* a POST of it was made and nobody knows whether Power BI added its rows */
			chunk_outcome o;
			int64_t wait_ms = 0;
			char why[PB_ERR_MAX] = "";
			if ((rc = push_chunk_outcome_find(&sc, &c, &o, &wait_ms, why, ctx->err)))
				goto out;
			if (o == OUTCOME_WAIT) {
				/* short waits here, up to the limiter's inline bound in all; longer ones free the worker */
				if (waited_ms + wait_ms <= PB_PUSH_WAIT_INLINE_MS) {
					pb_sleep_interruptible(wait_ms, ctx->stop);
					waited_ms += wait_ms;
					if (!ctx->stop || !*ctx->stop)
						continue;
				}
				rc = job_wait(ctx, (long)wait_ms, "outcome_unknown",
					      "rows %ld to %ld: waiting to find out whether Power BI added them: %s", first,
					      last, why);
				goto out;
			}
			if (o == OUTCOME_UNKNOWN) {
				rc = job_fail_rows(ctx, "outcome_unknown",
						   "Power BI may or may not have added them, and its row count cannot tell; "
						   "check the table for them before sending them again",
						   first, last, total, why);
				goto out;
			}
			if ((rc = job_checkpoint(ctx, "outcomes_checked", json_integer(++checked))))
				goto out;
			char rerr[PB_ERR_MAX];
			if (o == OUTCOME_ADDED) {
				if ((rc = push_chunk_added(&sc, c.seq, c.nrows, c.ticket, ctx->err)))
					goto out;
				continue;
			}
			/* not added, and the request is over: send it again */
			if ((rc = push_chunk_mark(ctx->db, upload, c.seq, false, NULL, NULL, 0, 0, ctx->err)))
				goto out;
			if (c.ticket)
				push_rate_release(ctx->db, c.ticket, false, rerr);
		}
		if ((rc = push_send_chunk(&sc, c.seq, sbuf_str(&body), body.len, c.nrows, true, NULL, f.message))) {
			if (sc.unknown)
				continue; /* the chunk is still 'sending': the next round finds out */
			if (s.api.last.failure == MSAPI_RETRY_AFTER)   /* holds back every push caller on the tenant */
				tenant_backoff_record(ctx->db, conn->tenant_id, TB_PUSH, s.api.last.retry_after_s,
						      "push job %s sending rows to dataset %s", ctx->job->id, d->powerbi_id);
			if (rc == PB_ELIMIT && sc.defer_ms) {
				/* a wait too long to sleep through: the limiter's, or Power BI's Retry-After */
				pb_fail_as(&f, PB_EUNAVAIL, "throttled");
				f.retry_after_s = (long)((sc.defer_ms + 999) / 1000);
			} else {
				pbi_session_fail(&s, rc, &f);
			}
			rc = job_end_rows(ctx, &f, first, last, jc.accepted, total);
			goto out;
		}
		/* added: its transaction wrote the progress (job_chunk_added) */
	}
	if (rc < 0)
		goto out;
	/* done: the owner row goes too */
	if ((rc = push_chunks_drop(ctx->db, upload, -1, ctx->err)))
		goto out;
	ctx->result = json_pack("{s:I, s:I, s:I, s:I, s:s, s:s}", "rows_accepted", (json_int_t)jc.accepted, "requests",
				(json_int_t)sc.requests, "throttled", (json_int_t)sc.throttled, "outcomes_checked",
				(json_int_t)checked, "dataset_id", d->id, "table", table);
	rc = ctx->result ? 0 : pb_err(ctx->err, PB_ENOMEM, "out of memory");
out:
	/* a job that ends for good (failed with a code, or cancelled) drops what it did not send; one
	 * that stopped on an unexpected error (no code: the worker tries it again) keeps it */
	if (rc && upload && ((ctx->error_code[0] && !ctx->transient) || ctx->cancel_requested)) {
		char derr[PB_ERR_MAX];
		push_chunks_drop(ctx->db, upload, -1, derr);
	}
	sbuf_release(&body);
	if (have)
		pbi_session_release(&s);
	push_conn_free(conn);
	push_ds_free(d);
	json_decref(in);
	return rc;
}
