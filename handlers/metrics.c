/* GET /metrics: Prometheus text exposition of the request counters (runtime/metrics)
 * and the job queue's gauge pbiport_jobs{state} (runtime/jobs). */
#include "handlers/handlers.h"
#include "runtime/jobs.h"
#include "runtime/metrics.h"
#include "runtime/util.h"

static int render_jobs(pb_db *db, sbuf *out, char *err)
{
	long counts[PB_JOB_NSTATES];
	int rc = jobs_count_by_state(db, counts, err);
	if (rc)
		return rc;
	if (sbuf_adds(out, "# HELP pbiport_jobs Jobs in the queue by state.\n# TYPE pbiport_jobs gauge\n"))
		return pb_err(err, PB_ELIMIT, "metrics text is larger than its ceiling");
	for (int i = 0; i < PB_JOB_NSTATES; i++)
		if (sbuf_addf(out, "pbiport_jobs{state=\"%s\"} %ld\n", pb_job_states[i], counts[i]))
			return pb_err(err, PB_ELIMIT, "metrics text is larger than its ceiling");
	return PB_OK;
}

int api_metrics_get(struct req *r)
{
	sbuf text;
	sbuf_init(&text, PB_METRICS_MAX_BYTES);
	int rc = metrics_render(r->db, &text, r->err);
	if (!rc)
		rc = render_jobs(r->db, &text, r->err);
	if (!rc)
		rc = req_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", sbuf_str(&text), text.len);
	sbuf_release(&text);
	return rc;
}
