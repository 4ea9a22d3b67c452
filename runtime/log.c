#include "runtime/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/db.h"
#include "runtime/json_out.h"
#include "runtime/request.h"
#include "runtime/util.h"

/* One buffer per process, kept: a log line per request should not cost allocations. Threads log
 * too (a worker's heartbeat, the workers of one test process): log_lock guards this buffer, the
 * batch below and the writes, so that lines neither mix nor use a buffer another thread grew. */
static sbuf line_buf = { .max = PB_LOG_LINE_MAX };
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Request lines that wait while requests keep coming (log_batch_requests): one write for many
 * lines instead of a system call per request. Written when the process goes idle (log_flush),
 * when they pass PB_LOG_BATCH_BYTES, and before any other line, so lines keep their order. */
static sbuf batch = { .max = PB_LOG_BATCH_BYTES + PB_LOG_LINE_MAX };
static bool batching;

/* Writes n bytes of whole lines in one write, so that lines from concurrent processes appending
 * to the same file do not interleave. */
static void write_lines(const char *text, size_t n)
{
	fwrite(text, 1, n, stderr);
	fflush(stderr);
}

static void flush_locked(void)
{
	if (batch.len)
		write_lines(sbuf_str(&batch), batch.len);
	sbuf_reset(&batch);
}

void log_flush(void)
{
	pthread_mutex_lock(&log_lock);
	flush_locked();
	pthread_mutex_unlock(&log_lock);
}

void log_batch_requests(bool on)
{
	pthread_mutex_lock(&log_lock);
	if (!on)
		flush_locked();
	batching = on;
	pthread_mutex_unlock(&log_lock);
}

static void write_line(sbuf *text)
{
	if (sbuf_addc(text, '\n'))
		return;
	flush_locked();
	write_lines(sbuf_str(text), text->len);
}

static void emit(json_t *line)
{
	if (!line)
		return;
	pthread_mutex_lock(&log_lock);
	sbuf_reset(&line_buf);
	int bad = json_out(&line_buf, line, JSON_COMPACT);
	if (!bad)
		write_line(&line_buf);
	pthread_mutex_unlock(&log_lock);
	json_decref(line);
}

/* ,"key":"value": key a string literal that needs no escaping; value NULL, or not UTF-8 as JSON
 * text must be: null */
#define ADD_STR(t, key, value) add_str(t, ",\"" key "\":", sizeof(",\"" key "\":") - 1, value)
static int add_str(sbuf *t, const char *field, size_t field_len, const char *value)
{
	size_t n = value ? strlen(value) : 0;
	return sbuf_add(t, field, field_len) ||
	       (value && utf8_valid(value, n) ? json_out_string(t, value, n) : sbuf_add(t, "null", 4));
}

/* Written field by field (no JSON tree, no format to parse): this runs for every request. The
 * duration in milliseconds to the microsecond. */
void log_request(const struct req *r, double seconds)
{
	char ts[PB_TIME_BUF];
	long long us = seconds > 0 && seconds < 1e9 ? (long long)(seconds * 1e6 + 0.5) : 0;
	char frac[3];
	pb_put_digits(frac, (unsigned long long)us, 3);
	sbuf *t = &line_buf;
	pb_now(ts);
	pthread_mutex_lock(&log_lock);
	sbuf_reset(t);
	int bad = sbuf_adds(t, "{\"ts\":\"") || sbuf_adds(t, ts) || sbuf_addc(t, '"') ||
		  ADD_STR(t, "level", r->status >= 500 ? "error" : "info") ||
		  ADD_STR(t, "request_id", r->request_id) || ADD_STR(t, "method", r->method) ||
		  ADD_STR(t, "route", r->route ? r->route->pattern : "-") || ADD_STR(t, "path", r->path) ||
		  sbuf_adds(t, ",\"status\":") || sbuf_add_int(t, r->status) || sbuf_adds(t, ",\"duration_ms\":") ||
		  sbuf_add_int(t, us / 1000) || sbuf_addc(t, '.') || sbuf_add(t, frac, 3) ||
		  sbuf_adds(t, ",\"bytes\":") || sbuf_add_int(t, (long long)r->bytes_sent) ||
		  (r->who.known && ADD_STR(t, "user", r->who.user_name)) ||
		  (r->status >= 500 && r->err[0] && ADD_STR(t, "error", r->err)) || sbuf_addc(t, '}');
	if (bad || sbuf_addc(t, '\n'))
		goto out;
	/* a failed request's line goes at once: whoever looks for it should not wait */
	if (batching && r->status < 500 && !sbuf_add(&batch, sbuf_str(t), t->len)) {
		if (batch.len >= PB_LOG_BATCH_BYTES)
			flush_locked();
		goto out;
	}
	flush_locked();
	write_lines(sbuf_str(t), t->len);
out:
	pthread_mutex_unlock(&log_lock);
}

void log_event(const char *level, const char *request_id, const char *fmt, ...)
{
	char msg[PB_ERR_MAX * 2];
	char ts[PB_TIME_BUF];
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pb_now(ts);
	emit(json_pack("{s:s,s:s,s:s?,s:s}", "ts", ts, "level", level, "request_id", request_id,
		       "msg", msg));
}
