/* Prometheus metrics shared by all processes: the counters live in SQLite (table
 * request_metrics, sql/0007_request_metrics.sql, owned here: one row per route, method and
 * status with the duration buckets), written in batches (below).
 *
 *   pbiport_requests_total{route,method,status}          counter
 *   pbiport_request_duration_seconds{route}              histogram (buckets below) */
#ifndef PBIPORT_METRICS_H
#define PBIPORT_METRICS_H

#include <stdbool.h>

#include "runtime/db.h"
#include "runtime/strbuf.h"

/* Counting is per process and cheap; writing is one transaction for many requests.
 * metrics_count() adds a finished request to this process's batch (memory only, unless the
 * batch has no room for a new route+method+status: then it writes the batch first).
 * metrics_flush() writes the batch in one write transaction (one UPSERT per route, method and
 * status); on failure the counts stay in the batch for the next flush. The FastCGI loop flushes
 * when no request is waiting for the process, when metrics_due() (PB_METRICS_FLUSH_REQUESTS
 * requests or PB_METRICS_FLUSH_MS since the first unwritten one), before answering /metrics,
 * and at exit. So a process that is killed (SIGKILL, crash) loses at most that many requests'
 * counts; a SIGTERM loses none. The batch is process-wide state (one per process, not thread-safe). */
int metrics_count(pb_db *db, const char *route, const char *method, int status, double seconds,
		  char *err);
int metrics_flush(pb_db *db, char *err);
bool metrics_pending(void);   /* counts wait to be written */
bool metrics_due(void);       /* pending for PB_METRICS_FLUSH_REQUESTS requests or PB_METRICS_FLUSH_MS */
void metrics_forget(void);    /* drops the batch unwritten (frees its memory) */

/* Appends the Prometheus text exposition (format 0.0.4) to out. */
int metrics_render(pb_db *db, sbuf *out, char *err);

#endif
