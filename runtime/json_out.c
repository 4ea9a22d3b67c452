#include "runtime/json_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/limits.h"
#include "runtime/util.h"

/* Bytes that need an escape in a JSON string: ", \ and the control characters. */
static bool needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
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
	/* as jansson writes reals: a "." or exponent so it reads back as a real, and the
	 * exponent without "+" or leading zeros */
	if (!strchr(buf, '.') && !strchr(buf, 'e')) {
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

static int out_real(sbuf *out, const json_t *v, size_t flags)
{
	if (!(flags & JSON_REAL_PRECISION(31))) {
		char buf[JSON_OUT_DOUBLE_MAX];
		int n = json_out_double(json_real_value(v), buf);
		return n < 0 ? -1 : sbuf_add(out, buf, (size_t)n);
	}
	/* a fixed precision asked for (log durations): jansson's own text */
	char *text = json_dumps(v, (flags & JSON_REAL_PRECISION(31)) | JSON_COMPACT | JSON_ENCODE_ANY);
	int rc = text ? sbuf_adds(out, text) : -1;
	free(text);
	return rc;
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
