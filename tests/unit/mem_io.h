/* In-memory request I/O (header-only, shared by the unit tests and bench/pages that run requests
 * in-process through req_load / pb_handle): the request body comes from a string, the response
 * (headers and body) goes into an sbuf. One copy, so the tests and the benchmark read and write
 * requests the same way. */
#ifndef PBIPORT_TEST_MEM_IO_H
#define PBIPORT_TEST_MEM_IO_H

#include <string.h>

#include "runtime/request.h"
#include "runtime/strbuf.h"

#define MEM_IO_FN __attribute__((unused)) static

struct mem_io {
	const char *body;   /* the request body (borrowed; NULL: none) */
	size_t len, off;    /* its length, and how much of it was read */
	int reads;          /* read calls made: a request refused before its body reads none */
	sbuf out;           /* the response, headers and body (the caller inits and releases it) */
};

MEM_IO_FN long mem_read(void *ctx, char *buf, size_t n)
{
	struct mem_io *m = ctx;
	m->reads++;
	size_t left = m->len - m->off;
	if (n > left)
		n = left;
	if (n)
		memcpy(buf, m->body + m->off, n);
	m->off += n;
	return (long)n;
}

MEM_IO_FN int mem_write(void *ctx, const char *buf, size_t n)
{
	return sbuf_add(&((struct mem_io *)ctx)->out, buf, n);
}

/* Readies m for the next request: body (NULL: none) to read, nothing read or written yet. */
MEM_IO_FN void mem_io_start(struct mem_io *m, const char *body)
{
	m->body = body;
	m->len = body ? strlen(body) : 0;
	m->off = 0;
	m->reads = 0;
	sbuf_reset(&m->out);
}

/* The req_io reading from and writing to m. */
MEM_IO_FN struct req_io mem_req_io(struct mem_io *m)
{
	return (struct req_io){ mem_read, mem_write, m };
}

/* The response body (after the headers) in m->out, "" when there is none. Borrowed from m->out. */
MEM_IO_FN const char *mem_io_body(const struct mem_io *m)
{
	const char *p = strstr(sbuf_str(&m->out), "\r\n\r\n");
	return p ? p + 4 : "";
}

#endif
