#include "runtime/json_out.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/limits.h"
#include "runtime/util.h"

/* Bytes that need an escape in a JSON string: ", \ and the control characters (a table:
 * this test runs once per byte of every string of every response). */
static const bool escaped[256] = {
	[0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1,
	[0x08] = 1, [0x09] = 1, [0x0A] = 1, [0x0B] = 1, [0x0C] = 1, [0x0D] = 1, [0x0E] = 1, [0x0F] = 1,
	[0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
	[0x18] = 1, [0x19] = 1, [0x1A] = 1, [0x1B] = 1, [0x1C] = 1, [0x1D] = 1, [0x1E] = 1, [0x1F] = 1,
	['"'] = 1, ['\\'] = 1,
};

static bool needs_escape(unsigned char c)
{
	return escaped[c];
}

/* Eight bytes none of which needs an escape (no byte < 0x20, '"' or '\\'): exact bit tests. */
static bool plain8(const char *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return !word_json_special(w);
}

/* Escaped text is gathered in a small local buffer and handed to the sbuf in a few large
 * appends; long runs of plain bytes go to the sbuf directly. */
#define CHUNK 1024
#define LONG_RUN 256

int json_out_string(sbuf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";   /* jansson writes \u00XX in capitals */
	char buf[CHUNK];
	size_t n = 0, i = 0;
	buf[n++] = '"';
	while (i < len) {
		size_t run = i;
		while (len - run >= 8 && plain8(s + run))
			run += 8;
		while (run < len && !needs_escape((unsigned char)s[run]))
			run++;
		if (run - i >= LONG_RUN || run - i > CHUNK - n) {
			if (sbuf_add(out, buf, n) || sbuf_add(out, s + i, run - i))
				return -1;
			n = 0;
		} else {
			memcpy(buf + n, s + i, run - i);
			n += run - i;
		}
		if (run == len)
			break;
		if (n + 6 > CHUNK) {
			if (sbuf_add(out, buf, n))
				return -1;
			n = 0;
		}
		unsigned char c = (unsigned char)s[run];
		buf[n++] = '\\';
		switch (c) {
		case '"': buf[n++] = '"'; break;
		case '\\': buf[n++] = '\\'; break;
		case '\b': buf[n++] = 'b'; break;
		case '\f': buf[n++] = 'f'; break;
		case '\n': buf[n++] = 'n'; break;
		case '\r': buf[n++] = 'r'; break;
		case '\t': buf[n++] = 't'; break;
		default:
			buf[n++] = 'u';
			buf[n++] = '0';
			buf[n++] = '0';
			buf[n++] = hex[c >> 4];
			buf[n++] = hex[c & 15];
		}
		i = run + 1;
	}
	if (n + 1 > CHUNK) {
		if (sbuf_add(out, buf, n))
			return -1;
		n = 0;
	}
	buf[n++] = '"';
	return sbuf_add(out, buf, n);
}

/* jansson's spelling of a real printed with %g into buf (n bytes): a ".0" added when it would
 * read back as an integer, the exponent without "+" or leading zeros (1e300, 1e-5). */
static int jansson_spelling(char buf[JSON_OUT_DOUBLE_MAX], int n)
{
	if (!strchr(buf, '.') && !strchr(buf, 'e')) {
		if (n + 3 > JSON_OUT_DOUBLE_MAX)
			return -1;
		memcpy(buf + n, ".0", 3);
		return n + 2;
	}
	char *e = strchr(buf, 'e');
	if (e) {
		char *from = e + 1, *to = e + 1;
		if (*from == '-')
			*to++ = *from++;
		else if (*from == '+')
			from++;
		while (*from == '0' && from[1])
			from++;
		memmove(to, from, strlen(from) + 1);
		n = (int)strlen(buf);
	}
	return n;
}

int json_out_double(double d, char buf[JSON_OUT_DOUBLE_MAX])
{
	if (!isfinite(d))
		return -1;
	/* the fewest digits that read back as d: 15 digits always read back unchanged text,
	 * 17 always read back d */
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, JSON_OUT_DOUBLE_MAX, "%.*g", prec, d);
		if (n < 0 || n >= JSON_OUT_DOUBLE_MAX)
			return -1;
		if (strtod(buf, NULL) == d)
			break;
	}
	return jansson_spelling(buf, n);
}

int json_out_double_prec(double d, int precision, char buf[JSON_OUT_DOUBLE_MAX])
{
	if (!isfinite(d) || precision < 1 || precision > 17)
		return -1;
	int n = snprintf(buf, JSON_OUT_DOUBLE_MAX, "%.*g", precision, d);
	if (n < 0 || n >= JSON_OUT_DOUBLE_MAX)
		return -1;
	return jansson_spelling(buf, n);
}

static int out_real(sbuf *out, const json_t *v, size_t flags)
{
	char buf[JSON_OUT_DOUBLE_MAX];
	int prec = (int)((flags >> 11) & 0x1F);   /* JSON_REAL_PRECISION(n) keeps n in bits 11..15 */
	int n = prec ? json_out_double_prec(json_real_value(v), prec, buf) : json_out_double(json_real_value(v), buf);
	return n < 0 ? -1 : sbuf_add(out, buf, (size_t)n);
}

static int out_value(sbuf *out, const json_t *v, size_t flags, int depth)
{
	if (depth > PB_JSON_OUT_MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *item;
		bool first = true;
		if (sbuf_addc(out, '{'))
			return -1;
		/* json_object_foreach walks in insertion order, as json_dumps does without SORT_KEYS */
		json_object_foreach((json_t *)v, key, item) {
			if ((!first && sbuf_addc(out, ',')) || json_out_string(out, key, strlen(key)) ||
			    sbuf_addc(out, ':') || out_value(out, item, flags, depth + 1))
				return -1;
			first = false;
		}
		return sbuf_addc(out, '}');
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *item;
		if (sbuf_addc(out, '['))
			return -1;
		json_array_foreach(v, i, item) {
			if ((i && sbuf_addc(out, ',')) || out_value(out, item, flags, depth + 1))
				return -1;
		}
		return sbuf_addc(out, ']');
	}
	case JSON_STRING:
		return json_out_string(out, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return sbuf_addf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	case JSON_REAL:
		return out_real(out, v, flags);
	case JSON_TRUE:
		return sbuf_add(out, "true", 4);
	case JSON_FALSE:
		return sbuf_add(out, "false", 5);
	case JSON_NULL:
		return sbuf_add(out, "null", 4);
	}
	return -1;
}

int json_out(sbuf *out, const json_t *v, size_t flags)
{
	return v ? out_value(out, v, flags, 0) : -1;
}

void json_out_list_add_new(json_t **list, json_t *item)
{
	if (json_array_append_new(*list, item)) {   /* frees item, also when *list is NULL */
		json_decref(*list);
		*list = NULL;
	}
}

/* ---- stored JSON text written as it is ---- */

/* Checks that text[*i..] starts with a string literal exactly as json_out_string writes it
 * (raw UTF-8, escapes only where and as json_out_string makes them); advances *i past it. */
static bool canonical_string(const char *text, size_t len, size_t *i)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t p = *i;
	if (p >= len || text[p] != '"')
		return false;
	size_t start = ++p;
	for (;;) {
		if (p >= len)
			return false;
		unsigned char c = (unsigned char)text[p];
		if (c == '"')
			break;
		if (c < 0x20)
			return false;
		if (c != '\\') {
			p++;
			continue;
		}
		if (p + 1 >= len)
			return false;
		switch (text[p + 1]) {
		case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
			p += 2;
			break;
		case 'u':
			/* only \u00XX for the control characters json_out_string has no short escape for */
			if (p + 5 >= len || text[p + 2] != '0' || text[p + 3] != '0' || (text[p + 4] != '0' && text[p + 4] != '1') ||
			    !memchr(hex, text[p + 5], 16))
				return false;
			c = (unsigned char)((text[p + 4] - '0') << 4 |
					    (text[p + 5] <= '9' ? text[p + 5] - '0' : text[p + 5] - 'A' + 10));
			if (c == 0 || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
				return false;   /* \u0000 is refused by the reader; the others have short forms */
			p += 6;
			break;
		default:
			return false;
		}
	}
	if (!utf8_valid(text + start, p - start))
		return false;
	*i = p + 1;
	return true;
}

/* An object whose values are strings or such objects, with distinct keys, written compactly
 * as json_out writes it; advances *i past it. */
static bool canonical_object(const char *text, size_t len, size_t *i, int depth)
{
	size_t from[64], to[64], nkeys = 0, p = *i;   /* each key's escaped bytes */
	if (depth > 8 || p >= len || text[p] != '{')
		return false;
	p++;
	if (p < len && text[p] == '}') {
		*i = p + 1;
		return true;
	}
	for (;;) {
		size_t key = p;
		if (!canonical_string(text, len, &p) || p >= len || text[p] != ':')
			return false;
		/* a repeated key reads back as one member, so not as this text; escaped forms are
		 * unique here, so equal keys have equal bytes */
		for (size_t k = 0; k < nkeys; k++)
			if (to[k] - from[k] == p - 1 - (key + 1) && !memcmp(text + from[k], text + key + 1, to[k] - from[k]))
				return false;
		if (nkeys == sizeof from / sizeof from[0])
			return false;
		from[nkeys] = key + 1;
		to[nkeys++] = p - 1;
		p++;
		if (p < len && text[p] == '{') {
			if (!canonical_object(text, len, &p, depth + 1))
				return false;
		} else if (!canonical_string(text, len, &p)) {
			return false;
		}
		if (p >= len)
			return false;
		if (text[p] == '}') {
			*i = p + 1;
			return true;
		}
		if (text[p] != ',')
			return false;
		p++;
	}
}

int json_out_as_is(sbuf *out, const char *text, size_t len)
{
	size_t i = 0;
	if (!text || !canonical_object(text, len, &i, 0) || i != len)
		return 1;
	return sbuf_add(out, text, len);
}
