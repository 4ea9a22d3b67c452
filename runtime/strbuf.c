#include "runtime/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/util.h"

void sbuf_init(sbuf *sb, size_t max)
{
	sb->buf = NULL;
	sb->len = 0;
	sb->cap = 0;
	sb->max = max;
}

void sbuf_release(sbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
}

void sbuf_reset(sbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

static int sbuf_grow(sbuf *sb, size_t extra)
{
	if (extra > sb->max || sb->len > sb->max - extra)
		return -1;
	size_t need = sb->len + extra + 1;
	if (need <= sb->cap)
		return 0;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = realloc(sb->buf, cap);
	if (!p)
		return -1;
	sb->buf = p;
	sb->cap = cap;
	return 0;
}

void sbuf_truncate(sbuf *sb, size_t len)
{
	if (sb->buf && len < sb->len) {
		sb->len = len;
		sb->buf[len] = '\0';
	}
}

int sbuf_add(sbuf *sb, const void *data, size_t len)
{
	if (sbuf_grow(sb, len))
		return -1;
	if (len)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
	return 0;
}

int sbuf_adds(sbuf *sb, const char *s)
{
	return sbuf_add(sb, s, strlen(s));
}

int sbuf_addc(sbuf *sb, char c)
{
	return sbuf_add(sb, &c, 1);
}

int sbuf_add_int(sbuf *sb, long long v)
{
	char digits[24];
	size_t at = sizeof digits;
	/* the magnitude as unsigned: -LLONG_MIN does not fit a long long */
	unsigned long long m = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		digits[--at] = (char)('0' + m % 10);
	while ((m /= 10));
	if (v < 0)
		digits[--at] = '-';
	return sbuf_add(sb, digits + at, sizeof digits - at);
}

/* Formatted once into the room the buffer has, a second time only when it needs more: most
 * appends fit, and a format measured first and written after cost two passes every time. */
int sbuf_vaddf(sbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	size_t room = sb->buf ? sb->cap - sb->len : 0;
	int n = vsnprintf(room ? sb->buf + sb->len : NULL, room, fmt, cp);
	va_end(cp);
	if (n >= 0 && (size_t)n < room && (size_t)n <= sb->max - sb->len) {
		sb->len += (size_t)n;
		return 0;
	}
	if (room)
		sb->buf[sb->len] = '\0';   /* what was written past the end is not the buffer's */
	if (n < 0 || sbuf_grow(sb, (size_t)n))
		return -1;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

int sbuf_addf(sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = sbuf_vaddf(sb, fmt, ap);
	va_end(ap);
	return rc;
}

const char *sbuf_str(const sbuf *sb)
{
	return sb->buf ? sb->buf : "";
}

char *sbuf_detach(sbuf *sb, size_t *len)
{
	char *p = sb->buf;
	if (!p) {
		p = calloc(1, 1);
		if (!p)
			return NULL;
	}
	if (len)
		*len = sb->len;
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	return p;
}

int sbuf_add_markup_escaped(sbuf *sb, const char *s)
{
	int rc = 0;
	for (; *s && !rc; s++) {
		switch (*s) {
		case '&': rc = sbuf_adds(sb, "&amp;"); break;
		case '<': rc = sbuf_adds(sb, "&lt;"); break;
		case '>': rc = sbuf_adds(sb, "&gt;"); break;
		case '"': rc = sbuf_adds(sb, "&quot;"); break;
		case '\'': rc = sbuf_adds(sb, "&#39;"); break;
		default: rc = sbuf_addc(sb, *s); break;
		}
	}
	return rc;
}
