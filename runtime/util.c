#include "runtime/util.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int pb_err(char *err, int rc, const char *fmt, ...)
{
	if (!err)
		return rc;
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(err, PB_ERR_MAX, fmt, ap);
	va_end(ap);
	return rc;
}

char *pb_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, size, fmt, ap);
	if (n < 0)
		buf[0] = '\0';
	else if ((size_t)n >= size)
		mark_cut(buf, size);
	return buf;
}

void mark_cut(char *s, size_t size)
{
	if (size < 4)
		return;
	/* back to the start of a character, so the message stays valid UTF-8 (it becomes JSON) */
	size_t at = size - 4;
	while (at > 0 && ((unsigned char)s[at] & 0xC0) == 0x80)
		at--;
	memcpy(s + at, "...", 4);
}

char *pb_put_digits(char *out, unsigned long long v, int width)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		out[i] = (char)('0' + v % 10);
	return out + width;
}

int xsnprintf(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	if (fmt[0] == '%' && fmt[1] == 's' && !fmt[2] && size) {
		/* a plain copy (most calls): what vsnprintf would write, without parsing a format */
		const char *s = va_arg(ap, const char *);
		size_t len = s ? strlen(s) : 0;
		if (!s) {
			n = snprintf(dst, size, "%s", "(null)");
		} else {
			memcpy(dst, s, len < size ? len : size - 1);
			dst[len < size ? len : size - 1] = '\0';
			n = len > INT_MAX ? -1 : (int)len;
		}
	} else {
		n = vsnprintf(dst, size, fmt, ap);
	}
	va_end(ap);
	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *xstrndup(const char *s, size_t n)
{
	return s ? strndup(s, n) : NULL;
}

void free_n(void *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
}

bool str_ieq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcasecmp(a, b) == 0;
}

bool str_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

bool utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < len) {
		/* eight ASCII bytes at a time: most text is ASCII */
		uint64_t w;
		while (len - i >= 8 && (memcpy(&w, s + i, 8), !(w & WORD_HIGHS)))
			i += 8;
		if (i == len)
			break;
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 1; cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2; cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3; cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return false;
		i += n + 1;
	}
	return true;
}

int read_file(const char *path, size_t max, char **out, size_t *len, char *err)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return pb_err(err, errno == ENOENT ? PB_ENOTFOUND : PB_EIO, "%s: %s", path, strerror(errno));
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int rc = PB_OK;
	for (;;) {
		if (cap - n < 65536) {
			size_t ncap = cap ? cap * 2 : 65536;
			if (ncap > max + 65536)
				ncap = max + 65536;
			char *p = realloc(buf, ncap + 1);
			if (!p) {
				rc = pb_err(err, PB_ENOMEM, "%s: out of memory", path);
				goto out;
			}
			buf = p;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n > max) {
			rc = pb_err(err, PB_ELIMIT, "%s: file is larger than %zu bytes", path, max);
			goto out;
		}
		if (got == 0) {
			if (ferror(f))
				rc = pb_err(err, PB_EIO, "%s: read error", path);
			break;
		}
	}
out:
	fclose(f);
	if (rc) {
		free(buf);
		return rc;
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf)
			return pb_err(err, PB_ENOMEM, "out of memory");
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return PB_OK;
}

bool str_is_guid(const char *s)
{
	static const unsigned char group[] = {8, 4, 4, 4, 12};
	if (!s)
		return false;
	for (size_t g = 0; g < sizeof group; g++) {
		for (unsigned i = 0; i < group[g]; i++, s++)
			if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
				return false;
		if (g + 1 < sizeof group && *s++ != '-')
			return false;
	}
	return *s == '\0';
}

void pb_file_id_of(const struct stat *st, pb_file_id *id)
{
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

bool pb_file_id_same(const pb_file_id *id, const struct stat *st)
{
	return id->dev == st->st_dev && id->ino == st->st_ino && id->size == st->st_size &&
	       id->mtime.tv_sec == st->st_mtim.tv_sec && id->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       id->ctime.tv_sec == st->st_ctim.tv_sec && id->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

bool pb_file_too_fresh(const struct stat *st)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	time_t changed = st->st_mtim.tv_sec > st->st_ctim.tv_sec ? st->st_mtim.tv_sec : st->st_ctim.tv_sec;
	return now.tv_sec - changed < PB_FILE_RACY_S;
}
