/* GET /metrics: Prometheus text exposition of the counters in runtime/metrics. */
#include "handlers/handlers.h"
#include "runtime/metrics.h"

int metrics_get(struct req *r)
{
	sbuf text;
	sbuf_init(&text, PB_METRICS_MAX_BYTES);
	int rc = metrics_render(r->db, &text, r->err);
	if (!rc)
		rc = req_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", sbuf_str(&text), text.len);
	sbuf_release(&text);
	return rc;
}
