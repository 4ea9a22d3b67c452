/* A growable byte buffer with a ceiling (after curl's dynbuf and git's strbuf).
 *
 * Invariants: buf is always NUL-terminated once anything was appended (or after
 * sbuf_init when len==0, buf may be NULL: use sbuf_str()). len never exceeds max.
 * An append that would pass max fails with -1 and leaves the buffer unchanged.
 *
 * Ownership: the struct owns buf. sbuf_release() frees it; sbuf_detach() hands
 * it to the caller (who frees it with free()). */
#ifndef PBIPORT_STRBUF_H
#define PBIPORT_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct sbuf {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
} sbuf;

void sbuf_init(sbuf *sb, size_t max);
void sbuf_release(sbuf *sb);
void sbuf_reset(sbuf *sb);                 /* len = 0, keeps memory */
void sbuf_truncate(sbuf *sb, size_t len);  /* back to its first len bytes (len <= sb->len) */
int sbuf_add(sbuf *sb, const void *data, size_t len);
int sbuf_adds(sbuf *sb, const char *s);
int sbuf_addc(sbuf *sb, char c);
int sbuf_addf(sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbuf_vaddf(sbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends v in decimal (what "%lld" writes, without a format to parse: per-request text). */
int sbuf_add_int(sbuf *sb, long long v);
/* Appends s as HTML or XML text or attribute value: & < > " ' as character references. The one
 * escaping of markup written from C (the pages' built-in error page, the lineage SVG). */
int sbuf_add_markup_escaped(sbuf *sb, const char *s);
const char *sbuf_str(const sbuf *sb);      /* borrowed; "" when empty */
char *sbuf_detach(sbuf *sb, size_t *len);  /* new: caller frees; never NULL on success */

#endif
