/* Power BI object names: length, comparison key, shown form. See core/names.h. */
#include "core/names.h"

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
	utf8proc_uint8_t *out = NULL;
	utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &out,
					  UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
	if (n < 0)
		return NULL;
	if (keylen)
		*keylen = (size_t)n;
	return (char *)out;
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

const char *pbname_shown(const char *s, char buf[PB_PBI_NAME_SHOWN_BUF])
{
	size_t n = strlen(s);
	if (n <= PB_PBI_NAME_SHOWN_BYTES) {
		memcpy(buf, s, n + 1);
		return buf;
	}
	n = PB_PBI_NAME_SHOWN_BYTES;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;            /* do not cut a character */
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
	return buf;
}
