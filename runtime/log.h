/* Structured logs: one JSON object per line on stderr (the web server or the
 * process supervisor collects it). Never secrets: no query strings, no headers,
 * no bodies; user names and paths only. */
#ifndef PBIPORT_LOG_H
#define PBIPORT_LOG_H

#include <stdbool.h>

struct req;

/* {"ts","level":"info","request_id","method","route","path","status","duration_ms",
 *  "bytes","user","error"?}. error is r->err when the status is 500 or more. */
void log_request(const struct req *r, double seconds);

/* From on (the FastCGI loop), the lines of requests answered below 500 wait in a buffer of the
 * process until it goes idle (log_flush), until they pass PB_LOG_BATCH_BYTES, or until any
 * other line is written: under load one write carries many lines. A process killed with
 * SIGKILL loses what waits (at most PB_LOG_BATCH_BYTES). Off: writes what waits. */
void log_batch_requests(bool on);
/* Writes the request lines that wait (log_batch_requests). */
void log_flush(void);

/* {"ts","level","request_id"?,"msg"}; request_id may be NULL. Written at once, after the
 * request lines that wait. */
void log_event(const char *level, const char *request_id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
