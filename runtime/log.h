/* Structured logs: one JSON object per line on stderr (the web server or the
 * process supervisor collects it). Never secrets: no query strings, no headers,
 * no bodies; user names and paths only. */
#ifndef PBIPORT_LOG_H
#define PBIPORT_LOG_H

struct req;

/* {"ts","level":"info","request_id","method","route","path","status","duration_ms",
 *  "bytes","user","error"?}. error is r->err when the status is 500 or more. */
void log_request(const struct req *r, double seconds);

/* {"ts","level","request_id"?,"msg"}; request_id may be NULL. */
void log_event(const char *level, const char *request_id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
