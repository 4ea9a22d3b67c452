/* Prometheus metrics shared by all processes: FastCGI processes keep no state, so
 * the counters live in SQLite (table request_metrics, sql/0007_request_metrics.sql,
 * owned here: one row per route, method and status with the duration buckets).
 *
 *   pbiport_requests_total{route,method,status}          counter
 *   pbiport_request_duration_seconds{route}              histogram (buckets below) */
#ifndef PBIPORT_METRICS_H
#define PBIPORT_METRICS_H

#include "runtime/db.h"
#include "runtime/strbuf.h"

/* Counts one finished request: one UPSERT, its own write transaction. route is the
 * route pattern ("unmatched" when no route matched). */
int metrics_record(pb_db *db, const char *route, const char *method, int status, double seconds,
		   char *err);

/* Appends the Prometheus text exposition (format 0.0.4) to out. */
int metrics_render(pb_db *db, sbuf *out, char *err);

#endif
