#include "runtime/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/db.h"
#include "runtime/request.h"
#include "runtime/util.h"

static void emit(json_t *line)
{
	if (!line)
		return;
	char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(line);
	if (!text)
		return;
	/* one write per line so lines from concurrent processes do not interleave */
	fprintf(stderr, "%s\n", text);
	fflush(stderr);
	free(text);
}

void log_request(const struct req *r, double seconds)
{
	char ts[PB_TIME_BUF];
	pb_now(ts);
	json_t *line = json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s?,s:i,s:f,s:I}",
				 "ts", ts, "level", r->status >= 500 ? "error" : "info",
				 "request_id", r->request_id, "method", r->method,
				 "route", r->route ? r->route->pattern : "-", "path", r->path,
				 "status", r->status, "duration_ms", seconds * 1000.0,
				 "bytes", (json_int_t)r->bytes_sent);
	if (line && r->who.known)
		json_object_set_new(line, "user", json_string(r->who.user_name));
	if (line && r->status >= 500 && r->err[0])
		json_object_set_new(line, "error", json_string(r->err));
	emit(line);
}

void log_event(const char *level, const char *request_id, const char *fmt, ...)
{
	char msg[PB_ERR_MAX * 2];
	char ts[PB_TIME_BUF];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
	pb_now(ts);
	emit(json_pack("{s:s,s:s,s:s?,s:s}", "ts", ts, "level", level, "request_id", request_id,
		       "msg", msg));
}
