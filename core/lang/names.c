/* Power BI object names: length, comparison key, shown form. See core/lang/names.h. */
#include "core/lang/names.h"

#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "runtime/util.h"

size_t pbname_length(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c & 0xC0) == 0x80)
			continue;       /* continuation byte */
		n += c >= 0xF0 ? 2 : 1; /* 4-byte sequences are surrogate pairs in UTF-16 */
	}
	return n;
}

bool pbname_is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

#define KEY_OPTIONS (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD)

long pbname_key_room(const char *s, size_t len)
{
	/* one unit more than the code points: utf8proc_reencode may write a terminator */
	utf8proc_ssize_t n = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, NULL, 0,
						KEY_OPTIONS);
	return n < 0 ? -1 : (long)n + 1;
}

long pbname_key_fill(const char *s, size_t len, void *buf, long room)
{
	utf8proc_int32_t *cp = buf;
	utf8proc_ssize_t n = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, cp, room - 1,
						KEY_OPTIONS);
	if (n < 0 || n > room - 1)
		return -1;
	/* composes in place and writes UTF-8 over the code points (never longer than them) */
	n = utf8proc_reencode(cp, n, KEY_OPTIONS);
	return n < 0 ? -1 : (long)n;
}

char *pbname_key(const char *s, size_t len, size_t *keylen)
{
	if (pbname_is_ascii(s, len)) {
		char *k = malloc(len + 1);
		if (!k)
			return NULL;
		for (size_t i = 0; i < len; i++)
			k[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 0x20) : s[i];
		k[len] = '\0';
		if (keylen)
			*keylen = len;
		return k;
	}
	long room = pbname_key_room(s, len);
	void *buf = room > 0 ? malloc((size_t)room * sizeof(utf8proc_int32_t)) : NULL;
	long n = buf ? pbname_key_fill(s, len, buf, room) : -1;
	if (n < 0) {
		free(buf);
		return NULL;
	}
	char *k = buf;
	k[n] = '\0';
	if (keylen)
		*keylen = (size_t)n;
	return k;
}

int pbname_keycmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	for (;; x++, y++) {
		unsigned cx = *x >= 'A' && *x <= 'Z' ? *x + 0x20u : *x;
		unsigned cy = *y >= 'A' && *y <= 'Z' ? *y + 0x20u : *y;
		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (!cx)
			return 0;
	}
}

const char *pbname_shown_n(const char *s, size_t len, char buf[PB_PBI_NAME_SHOWN_BUF])
{
	size_t n = len;
	if (n > PB_PBI_NAME_SHOWN_BYTES) {
		n = PB_PBI_NAME_SHOWN_BYTES;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;    /* do not cut a character */
	}
	memcpy(buf, s, n);
	memcpy(buf + n, n < len ? "..." : "", n < len ? 4 : 1);
	return buf;
}

const char *pbname_shown(const char *s, char buf[PB_PBI_NAME_SHOWN_BUF])
{
	return pbname_shown_n(s, strlen(s), buf);
}
