/* ODCS contract reader: YAML or JSON text -> pb_contract (see core/lang/contract.h).
 *
 * Nested properties rule: a top-level property whose logicalType is object or array
 * (or whose physicalType is struct/array/map/variant/object/list) stays ONE column
 * with logical_type "string": Snowflake and Databricks hand such values to Power BI
 * as JSON text. Its nested `properties`/`items` are checked (names, logical types)
 * but are not turned into columns, and a warning says so.
 *
 * Other rules, in the order the reader applies them:
 *  - Input: at most PB_CONTRACT_MAX_BYTES of UTF-8. JSON when the first non-blank byte
 *    is `{` (duplicate keys refused), YAML otherwise (core/lang/yamltree.c). Syntax errors
 *    read `SOURCE:LINE:COL: ...`.
 *  - Version: apiVersion v3.x / v2.x decides; without it a `schema` key means v3 and a
 *    `dataset` key v2; a mapping with neither is "not an ODCS contract".
 *  - v3: an unknown top-level key is an error (the standard's root is closed; extras
 *    belong in customProperties); the keys the v3 JSON Schema requires are required
 *    (`status: required`). Unknown keys deeper down are warnings.
 *  - A known key holding the wrong kind of value (null where text is expected, text
 *    where a list is expected) is an error naming the place, e.g.
 *    `schema[0].description: expected text, got null`.
 *  - v3 logicalType must be one of string date timestamp time number integer object
 *    array boolean (case is forgiven). It must not contradict physicalType
 *    (`integer` over VARCHAR, `string` over INT64, `date` over BOOLEAN...); an unknown
 *    physical type (user-defined types such as `Name`) contradicts nothing. Missing
 *    logicalType is inferred from physicalType.
 *  - v2 logical types are free text, mapped leniently (unknown text -> string, warned).
 *  - Tables need columns. Table and column names are at most 512 characters (UTF-16 units),
 *    Power BI's limit, and table names and column names (per table) are unique as Power BI
 *    compares them: without case and after Unicode normalization (core/lang/names.h).
 *  - v2: a `servers` block (a list, or a mapping of name -> server) is read like v3's, and
 *    the top-level connection (server, database, driver, sourceSystem) becomes the server
 *    "default" after them.
 *  - Relationships (v3.1.0): object-level from/to and property-level `to`, written
 *    `table.column` or `schema/<object-id>/properties/<property-id>`. Composite keys,
 *    references to other contracts and references to absent columns are skipped with
 *    a warning (Power BI relationships join one column to one column).
 *  - Server fields and customProperties whose names look like secrets (password,
 *    token, ...) are dropped with a warning: pbiport never returns secrets. */
#include "core/lang/contract.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "core/lang/names.h"
#include "core/lang/yamltree.h"
#include "runtime/json_out.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

#define AT_MAX PB_ERR_MAX   /* a path only ever ends up in one message line */
#define NO_COLUMN SIZE_MAX

typedef struct rd {
	pb_contract *c;
	const char *source;
	char *err;
	size_t capwarnings, caprelationships;
	struct named *by_name, *by_id;  /* table lookup for relationships, see build_table_index */
	size_t nby_name, nby_id;
} rd;

/* ---- small helpers ------------------------------------------------------------- */

static int oom(rd *r)
{
	return pb_err(r->err, PB_ENOMEM, "%s: out of memory", r->source);
}

/* Appends n bytes of s to dst (length *len), cut at AT_MAX - 1 bytes as snprintf would:
 * paths are built for every column, and snprintf was a visible part of reading one. */
static void path_add(char *dst, size_t *len, const char *s, size_t n)
{
	size_t room = AT_MAX - 1 - *len;
	if (n > room)
		n = room;
	memcpy(dst + *len, s, n);
	*len += n;
	dst[*len] = '\0';
}

static size_t path_build(char *dst, const char *at, const char *key)
{
	size_t len = 0;
	dst[0] = '\0';
	if (at && *at) {
		path_add(dst, &len, at, strlen(at));
		path_add(dst, &len, ".", 1);
	}
	path_add(dst, &len, key, strlen(key));
	return len;
}

static void path_key(char *dst, const char *at, const char *key)
{
	(void)path_build(dst, at, key);
}

static void path_index(char *dst, const char *at, const char *key, size_t i)
{
	char num[24];
	size_t n = sizeof num;
	num[--n] = ']';
	do {
		num[--n] = (char)('0' + i % 10);
		i /= 10;
	} while (i);
	num[--n] = '[';
	size_t len = path_build(dst, at, key);
	path_add(dst, &len, num + n, sizeof num - n);
}

/* Makes a message one printable line of valid UTF-8, in place (s holds PB_ERR_MAX
 * bytes): user text may carry newlines, and a cut may split a character. Control
 * characters become \n, \t or \xNN; broken UTF-8 becomes '?'. */
static void clean_line(char *s)
{
	char out[PB_ERR_MAX], esc[8];
	size_t o = 0, i = 0, n = strlen(s);
	while (i < n) {
		unsigned char ch = (unsigned char)s[i];
		const char *piece = s + i;
		size_t plen = 1, step = 1;
		if (ch == '\n' || ch == '\t') {
			piece = ch == '\n' ? "\\n" : "\\t";
			plen = 2;
		} else if (ch < 0x20 || ch == 0x7f) {
			(void)xsnprintf(esc, sizeof esc, "\\x%02x", ch);
			piece = esc;
			plen = 4;
		} else if (ch >= 0x80) {
			size_t len = (ch & 0xE0) == 0xC0 ? 2 : (ch & 0xF0) == 0xE0 ? 3 : (ch & 0xF8) == 0xF0 ? 4 : 0;
			if (len && len <= n - i && utf8_valid(s + i, len))
				plen = step = len;
			else
				piece = "?";
		}
		if (o + plen >= sizeof out)
			break;
		memcpy(out + o, piece, plen);
		o += plen;
		i += step;
	}
	out[o] = '\0';
	memcpy(s, out, o + 1);
}

static int failf(rd *r, int rc, const char *at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int failf(rd *r, int rc, const char *at, const char *fmt, ...)
{
	char msg[PB_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return pb_err(r->err, rc, "%s: %s", at, msg);
}

static int warnf(rd *r, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int warnf(rd *r, const char *at, const char *fmt, ...)
{
	pb_contract *c = r->c;
	char msg[PB_ERR_MAX], line[PB_ERR_MAX];
	if (c->nwarnings >= PB_CONTRACT_MAX_WARNINGS)
		return PB_OK;
	if (c->nwarnings == PB_CONTRACT_MAX_WARNINGS - 1) {
		(void)xsnprintf(line, sizeof line, "more warnings not shown (limit %d)", PB_CONTRACT_MAX_WARNINGS);
	} else {
		va_list ap;
		va_start(ap, fmt);
		pb_vformat(msg, sizeof msg, fmt, ap);
		va_end(ap);
		if (at && *at)
			(void)xsnprintf(line, sizeof line, "%s: %s", at, msg);
		else
			(void)xsnprintf(line, sizeof line, "%s", msg);
	}
	clean_line(line);
	if (c->nwarnings == r->capwarnings) {
		size_t cap = r->capwarnings ? r->capwarnings * 2 : 8;
		char **w = realloc(c->warnings, cap * sizeof *w);
		if (!w)
			return oom(r);
		c->warnings = w;
		r->capwarnings = cap;
	}
	c->warnings[c->nwarnings] = xstrdup(line);
	if (!c->warnings[c->nwarnings])
		return oom(r);
	c->nwarnings++;
	return PB_OK;
}

/* The index of s in a NULL-ended list, or -1. The first bytes are compared before strcmp:
 * most keys of a contract differ from most names of their list there. */
static int list_index(const char *const *list, const char *s)
{
	for (int i = 0; list[i]; i++)
		if (list[i][0] == s[0] && !strcmp(list[i], s))
			return i;
	return -1;
}

static bool in_list(const char *const *list, const char *s)
{
	return list_index(list, s) >= 0;
}

static const char *kind_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "a mapping";
	case JSON_ARRAY: return "a list";
	case JSON_STRING: return "text";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* new: a value as text (scalars as written, lists/mappings as compact JSON). */
static char *value_text(const json_t *v)
{
	char buf[JSON_OUT_DOUBLE_MAX];
	switch (json_typeof(v)) {
	case JSON_STRING:
		return xstrndup(json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		if (xsnprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v)))
			return NULL;
		return xstrdup(buf);
	case JSON_TRUE:
		return xstrdup("true");
	case JSON_FALSE:
		return xstrdup("false");
	case JSON_REAL:
		/* the shortest text that reads back the same: 2.002, not 2.0019999999999998 */
		return json_out_double(json_real_value(v), buf) < 0 ? NULL : xstrdup(buf);
	default: {
		/* lists and mappings as compact JSON, their reals written the same way */
		sbuf b;
		sbuf_init(&b, PB_CONTRACT_MAX_BYTES);
		if (json_out(&b, v, JSON_COMPACT)) {
			sbuf_release(&b);
			return NULL;
		}
		return sbuf_detach(&b, NULL);
	}
	}
}

/* Block scalars (`|`) end with a newline that means nothing in a description. */
static void trim_trailing_newlines(char *s)
{
	size_t n = s ? strlen(s) : 0;
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

static void lower_ascii(char *s)
{
	for (; s && *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static bool ci_contains(const char *hay, const char *needle)
{
	return hay && strcasestr(hay, needle) != NULL;
}

/* The values of a mapping's known keys in one pass: v[i] = obj[known[i]] or NULL (v may be
 * NULL: only the warnings); every other key is warned of as unknown, in document order. One
 * walk over the keys instead of a hashed lookup per field read (a big contract reads a dozen
 * fields of each of its columns). */
static int read_fields(rd *r, const json_t *obj, const char *at, const char *const *known, json_t **v)
{
	const char *k;
	json_t *val;
	char p[AT_MAX];
	for (size_t i = 0; v && known[i]; i++)
		v[i] = NULL;
	json_object_foreach((json_t *)obj, k, val) {
		int i = list_index(known, k);
		if (i >= 0) {
			if (v)
				v[i] = val;
			continue;
		}
		path_key(p, at, k);
		int rc = warnf(r, p, "unknown key, ignored");
		if (rc)
			return rc;
	}
	return PB_OK;
}

/* Warns of every key of obj that is not in known (read_fields without the values). */
static int warn_unknown(rd *r, const json_t *obj, const char *at, const char *const *known)
{
	return read_fields(r, obj, at, known, NULL);
}

/* ---- typed field access ----------------------------------------------------------- */

/* v (the value of key, NULL when absent) as text into *out (new). Absent -> NULL. null,
 * lists and mappings are errors. */
static int text_of(rd *r, const json_t *v, const char *key, const char *at, char **out)
{
	char p[AT_MAX];
	*out = NULL;
	if (!v)
		return PB_OK;
	if (json_is_null(v) || json_is_array(v) || json_is_object(v)) {
		path_key(p, at, key);
		return failf(r, PB_EINVAL, p, "expected text, got %s", kind_name(v));
	}
	*out = value_text(v);
	if (*out && !strcmp(key, "description"))
		trim_trailing_newlines(*out);
	return *out ? PB_OK : oom(r);
}

/* obj[key] as text (text_of). */
static int get_text(rd *r, const json_t *obj, const char *key, const char *at, char **out)
{
	return text_of(r, json_object_get(obj, key), key, at, out);
}

/* v (the value of key) as an object name (`what`: "table", "column", "field"): present, not
 * empty, no control characters, and within the length Power BI accepts for a name
 * (core/lang/names.h). */
static int name_of(rd *r, const json_t *v, const char *key, const char *at, const char *what, char **out)
{
	char p[AT_MAX], shown[PB_PBI_NAME_SHOWN_BUF];
	int rc = text_of(r, v, key, at, out);
	if (rc)
		return rc;
	/* The usual case, checked before the path for a message is built: a name of at most
	 * PB_PBI_NAME_MAX_CHARS bytes has at most as many UTF-16 units. */
	if (*out && **out && strlen(*out) <= PB_PBI_NAME_MAX_CHARS) {
		const unsigned char *s = (const unsigned char *)*out;
		while (*s >= 0x20 && *s != 0x7f)
			s++;
		if (!*s)
			return PB_OK;
	}
	path_key(p, at, key);
	if (!*out)
		return failf(r, PB_EINVAL, p, "required");
	if (!**out)
		return failf(r, PB_EINVAL, p, "must not be empty");
	for (const unsigned char *s = (const unsigned char *)*out; *s; s++)
		if (*s < 0x20 || *s == 0x7f)
			return failf(r, PB_EINVAL, p, "contains a control character (byte 0x%02x)", *s);
	size_t chars = pbname_length(*out, strlen(*out));
	if (chars > PB_PBI_NAME_MAX_CHARS)
		return failf(r, PB_EINVAL, p, "%s name of %zu characters; Power BI allows at most %d (\"%s\")", what,
			     chars, PB_PBI_NAME_MAX_CHARS, pbname_shown(*out, shown));
	return PB_OK;
}

/* obj[key] as an object name (name_of). */
static int get_name(rd *r, const json_t *obj, const char *key, const char *at, const char *what, char **out)
{
	return name_of(r, json_object_get(obj, key), key, at, what, out);
}

/* v (the value of key) as a boolean; absent leaves *out alone. "true"/"false" text is
 * accepted. */
static int bool_of(rd *r, const json_t *v, const char *key, const char *at, bool *out)
{
	char p[AT_MAX];
	if (!v)
		return PB_OK;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return PB_OK;
	}
	if (json_is_string(v) && (str_ieq(json_string_value(v), "true") || str_ieq(json_string_value(v), "false"))) {
		*out = str_ieq(json_string_value(v), "true");
		return PB_OK;
	}
	path_key(p, at, key);
	return failf(r, PB_EINVAL, p, "expected true or false, got %s", kind_name(v));
}

static int get_bool(rd *r, const json_t *obj, const char *key, const char *at, bool *out)
{
	return bool_of(r, json_object_get(obj, key), key, at, out);
}

static bool text_integer(const char *s, long long *out)
{
	char *end;
	if (!s || !*s)
		return false;
	long long v = strtoll(s, &end, 10);
	if (*end || v < INT32_MIN || v > INT32_MAX)
		return false;
	*out = v;
	return true;
}

static bool value_integer(const json_t *v, long long *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return *out >= INT32_MIN && *out <= INT32_MAX;
	}
	return json_is_string(v) && text_integer(json_string_value(v), out);
}

/* v (the value of key) as a whole number; absent leaves *out alone. */
static int int_of(rd *r, const json_t *v, const char *key, const char *at, long long *out)
{
	char p[AT_MAX];
	if (!v || value_integer(v, out))
		return PB_OK;
	path_key(p, at, key);
	return failf(r, PB_EINVAL, p, "expected a whole number, got %s", kind_name(v));
}

static int get_int(rd *r, const json_t *obj, const char *key, const char *at, long long *out)
{
	return int_of(r, json_object_get(obj, key), key, at, out);
}

/* v (the value of key) as a list: absent -> NULL; anything else than a list is an error. */
static int list_of(rd *r, json_t *v, const char *key, const char *at, json_t **out)
{
	char p[AT_MAX];
	*out = NULL;
	if (!v)
		return PB_OK;
	if (!json_is_array(v)) {
		path_key(p, at, key);
		return failf(r, PB_EINVAL, p, "expected a list, got %s", kind_name(v));
	}
	*out = v;
	return PB_OK;
}

static int get_list(rd *r, const json_t *obj, const char *key, const char *at, json_t **out)
{
	return list_of(r, json_object_get(obj, key), key, at, out);
}

static int need_mapping(rd *r, const json_t *v, const char *at)
{
	if (json_is_object(v))
		return PB_OK;
	return failf(r, PB_EINVAL, at, "expected a mapping, got %s", kind_name(v));
}

static bool secret_name(const char *k)
{
	static const char *const words[] = {"password", "passwd", "secret", "token", "credential",
					    "privatekey", "private_key", "apikey", "api_key", NULL};
	for (const char *const *w = words; *w; w++)
		if (ci_contains(k, *w))
			return true;
	return false;
}

static void kv_free(pb_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

/* cp (an object's customProperties, NULL when absent) -> key/value pairs (new; kv_free).
 * The standard writes a list of {property, value}; a plain mapping is accepted too. */
static int custom_of(rd *r, const json_t *cp, const char *at, pb_kv **out, size_t *nout)
{
	char p[AT_MAX], pi[AT_MAX];
	pb_kv *kv = NULL;
	size_t n = 0;
	int rc = PB_OK;
	*out = NULL;
	*nout = 0;
	if (!cp)
		return PB_OK;
	path_key(p, at, "customProperties");
	if (json_is_object(cp)) {
		kv = calloc(json_object_size(cp) + 1, sizeof *kv);
		if (!kv)
			return oom(r);
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)cp, k, v) {
			kv[n].key = xstrdup(k);
			kv[n].value = value_text(v);
			n++;
			if (!kv[n - 1].key || !kv[n - 1].value) {
				rc = oom(r);
				goto out;
			}
		}
		goto out;
	}
	if (!json_is_array(cp)) {
		rc = failf(r, PB_EINVAL, p, "expected a list of {property, value}, got %s", kind_name(cp));
		goto out;
	}
	kv = calloc(json_array_size(cp) + 1, sizeof *kv);
	if (!kv)
		return oom(r);
	size_t i;
	json_t *item;
	json_array_foreach((json_t *)cp, i, item) {
		path_index(pi, at, "customProperties", i);
		if ((rc = need_mapping(r, item, pi)))
			goto out;
		char *key = NULL;
		if ((rc = get_text(r, item, "property", pi, &key)))
			goto out;
		if (!key) {
			path_key(p, pi, "property");
			rc = failf(r, PB_EINVAL, p, "required");
			goto out;
		}
		json_t *v = json_object_get(item, "value");
		kv[n].key = key;
		kv[n].value = v ? value_text(v) : xstrdup("");
		n++;
		if (!kv[n - 1].value) {
			rc = oom(r);
			goto out;
		}
	}
out:
	if (rc) {
		kv_free(kv, n);
		return rc;
	}
	*out = kv;
	*nout = n;
	return PB_OK;
}

static int get_custom(rd *r, const json_t *obj, const char *at, pb_kv **out, size_t *nout)
{
	return custom_of(r, json_object_get(obj, "customProperties"), at, out, nout);
}

static const char *kv_get(const pb_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i].key, key))
			return kv[i].value;
	for (size_t i = 0; i < n; i++)
		if (str_ieq(kv[i].key, key))
			return kv[i].value;
	return NULL;
}

/* Names as Power BI compares them (core/lang/names.h): each entry holds the comparison key of a
 * name -- the name itself when it is ASCII (pbname_keycmp folds ASCII case), else its
 * NFC case folding, owned -- and the name's index. Sorted by key, then index. */
typedef struct named {
	const char *key;
	char *owned;
	size_t idx;
} named;

static int named_set(named *v, const char *name, size_t idx)
{
	size_t n = strlen(name);
	v->idx = idx;
	v->owned = NULL;
	v->key = name;
	if (pbname_is_ascii(name, n))
		return 0;
	v->owned = pbname_key(name, n, NULL);
	v->key = v->owned;
	return v->owned ? 0 : -1;
}

static void named_free(named *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].owned);
	free(v);
}

static int named_cmp(const void *a, const void *b)
{
	const named *x = a, *y = b;
	int d = pbname_keycmp(x->key, y->key);
	if (d)
		return d;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The first name (in document order) that is the same name to Power BI as an earlier one:
 * *dup is its index and *first the earlier one's, or *dup = n when all differ. -1 on OOM. */
static int find_duplicate(const char *const *names, size_t stride, size_t n, size_t *first, size_t *dup)
{
	/* Names in document order into a hash set of their keys (open addressing, at most half
	 * full): the first one already there is the first repeat, and the one there its original. */
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	named *v = calloc(n ? n : 1, sizeof *v);
	size_t *slot = malloc(cap * sizeof *slot);
	if (!v || !slot) {
		free(v);
		free(slot);
		return -1;
	}
	for (size_t i = 0; i < cap; i++)
		slot[i] = SIZE_MAX;
	*dup = *first = n;
	int rc = 0;
	size_t made = 0;
	for (size_t i = 0; i < n; i++) {
		made = i + 1;
		if (named_set(&v[i], *(const char *const *)((const char *)names + i * stride), i)) {
			rc = -1;
			break;
		}
		/* FNV-1a of the key with ASCII case folded, as pbname_keycmp compares */
		uint64_t h = 14695981039346656037ULL;
		for (const unsigned char *k = (const unsigned char *)v[i].key; *k; k++)
			h = (h ^ (*k >= 'A' && *k <= 'Z' ? *k + 0x20u : *k)) * 1099511628211ULL;
		size_t at = (size_t)h & (cap - 1);
		while (slot[at] != SIZE_MAX && pbname_keycmp(v[slot[at]].key, v[i].key))
			at = (at + 1) & (cap - 1);
		if (slot[at] != SIZE_MAX) {
			*dup = i;
			*first = slot[at];
			break;
		}
		slot[at] = i;
	}
	named_free(v, made);
	free(slot);
	return rc;
}

/* ---- types -------------------------------------------------------------------------- */

typedef enum pclass {
	PC_UNKNOWN, PC_STRING, PC_BINARY, PC_INTEGER, PC_NUMBER, PC_BOOLEAN,
	PC_DATE, PC_TIMESTAMP, PC_TIME, PC_COMPLEX,
} pclass;

static const char *const v3_logical[] = {"string", "date", "timestamp", "time", "number",
					 "integer", "object", "array", "boolean", NULL};

/* The canonical v3 spelling, or NULL when t is not a v3 logical type. */
static const char *v3_type(const char *t)
{
	for (const char *const *l = v3_logical; *l; l++)
		if (str_ieq(*l, t))
			return *l;
	return NULL;
}

/* Sorts a physical (or v2 logical) type name into a class; reads precision and scale
 * of decimal/numeric/number(p[,s]) into prec and scale (left alone otherwise). */
static pclass type_class(const char *type, int *prec, int *scale)
{
	static const char *const ints[] = {"int", "integer", "bigint", "smallint", "tinyint", "mediumint",
		"int1", "int2", "int4", "int8", "int16", "int32", "int64", "int128", "uint8", "uint16", "uint32",
		"uint64", "long", "short", "byte", "byteint", "serial", "serial2", "serial4", "serial8",
		"smallserial", "bigserial", "long integer", "unsigned", NULL};
	static const char *const nums[] = {"float", "float4", "float8", "float32", "float64", "double",
		"double precision", "real", "money", "smallmoney", "decfloat", "bignumeric", NULL};
	static const char *const decimals[] = {"decimal", "numeric", "number", "dec", NULL};
	static const char *const bools[] = {"bool", "boolean", "bit", NULL};
	static const char *const strs[] = {"varchar", "char", "character", "character varying", "nvarchar",
		"nchar", "text", "string", "ntext", "tinytext", "mediumtext", "longtext", "clob", "nclob",
		"varchar2", "nvarchar2", "bpchar", "citext", "uuid", "uniqueidentifier", "xml", "json", "jsonb",
		"enum", "str", NULL};
	static const char *const bins[] = {"binary", "varbinary", "bytea", "blob", "bytes", "longblob",
		"mediumblob", "tinyblob", "image", "raw", "long raw", NULL};
	static const char *const complexes[] = {"struct", "array", "map", "variant", "object", "list",
		"record", "row", "super", NULL};
	char low[64];
	if (!type)
		return PC_UNKNOWN;
	while (*type == ' ' || *type == '\t')
		type++;
	(void)xsnprintf(low, sizeof low, "%s", type);
	lower_ascii(low);
	/* PostgreSQL's arrays: int4[], text[][] (a length in brackets, varchar[50], is no array) */
	size_t len = strlen(low);
	while (len > 0 && (low[len - 1] == ' ' || low[len - 1] == '\t'))
		len--;
	if (len > 2 && low[len - 1] == ']' && low[len - 2] == '[')
		return PC_COMPLEX;
	size_t n = strcspn(low, "(<[");
	char open = low[n];
	const char *params = low + n;
	while (n > 0 && (low[n - 1] == ' ' || low[n - 1] == '\t'))
		n--;
	low[n] = '\0';

	if (in_list(decimals, low)) {
		long p = -1, s = 0;
		if (open == '(') {
			char *end;
			p = strtol(params + 1, &end, 10);
			while (*end == ' ')
				end++;
			if (*end == ',')
				s = strtol(end + 1, &end, 10);
			if (p < 1 || p > 1000 || s < 0 || s > p)
				p = -1;
		}
		if (p > 0) {
			*prec = (int)p;
			*scale = (int)s;
		}
		/* Snowflake's NUMBER(p,0) is how it spells integers */
		if (p > 0 && s == 0 && !strcmp(low, "number"))
			return PC_INTEGER;
		return PC_NUMBER;
	}
	if (!strncmp(low, "timestamp", 9) || !strncmp(low, "datetime", 8) || !strcmp(low, "smalldatetime"))
		return PC_TIMESTAMP;
	if (!strcmp(low, "date"))
		return PC_DATE;
	if (!strcmp(low, "time") || !strcmp(low, "timetz") || !strncmp(low, "time with", 9))
		return PC_TIME;
	if (in_list(ints, low))
		return PC_INTEGER;
	if (in_list(nums, low))
		return PC_NUMBER;
	if (in_list(bools, low))
		return PC_BOOLEAN;
	if (in_list(strs, low))
		return PC_STRING;
	if (in_list(bins, low))
		return PC_BINARY;
	if (in_list(complexes, low))
		return PC_COMPLEX;
	return PC_UNKNOWN;
}

static const char *class_logical(pclass pc)
{
	switch (pc) {
	case PC_INTEGER: return "integer";
	case PC_NUMBER: return "number";
	case PC_BOOLEAN: return "boolean";
	case PC_DATE: return "date";
	case PC_TIMESTAMP: return "timestamp";
	case PC_TIME: return "time";
	default: return "string";
	}
}

/* Does a v3 logical type contradict what the physical type stores? Unknown physical
 * types contradict nothing; temporal types may be stored as text. */
static bool contradicts(const char *logical, pclass pc, int scale)
{
	const bool temporal = pc == PC_DATE || pc == PC_TIMESTAMP || pc == PC_TIME;
	if (pc == PC_UNKNOWN)
		return false;
	if (!strcmp(logical, "integer"))
		return pc == PC_STRING || pc == PC_BOOLEAN || temporal || pc == PC_BINARY || pc == PC_COMPLEX ||
		       (pc == PC_NUMBER && scale > 0);
	if (!strcmp(logical, "number"))
		return pc == PC_STRING || pc == PC_BOOLEAN || temporal || pc == PC_BINARY || pc == PC_COMPLEX;
	if (!strcmp(logical, "boolean"))
		return pc == PC_STRING || pc == PC_NUMBER || temporal || pc == PC_BINARY || pc == PC_COMPLEX;
	if (!strcmp(logical, "date") || !strcmp(logical, "timestamp") || !strcmp(logical, "time"))
		return pc == PC_INTEGER || pc == PC_NUMBER || pc == PC_BOOLEAN || pc == PC_BINARY || pc == PC_COMPLEX;
	if (!strcmp(logical, "string"))
		return pc == PC_INTEGER || pc == PC_NUMBER || pc == PC_BOOLEAN;
	/* object, array */
	return pc == PC_INTEGER || pc == PC_NUMBER || pc == PC_BOOLEAN || temporal;
}

/* Checks one v3 property's logicalType (lv) against the list and its physicalType (pv)
 * (either NULL when absent). *canon gets the canonical logical type (static) or NULL when
 * none is written. */
/* text_of, read in place (*out borrowed from the tree) when v is a string: a copy only for
 * other scalars (*owned, which the caller frees). */
static int text_in(rd *r, const json_t *v, const char *key, const char *at, const char **out, char **owned)
{
	*owned = NULL;
	if (json_is_string(v)) {
		*out = json_string_value(v);
		return PB_OK;
	}
	int rc = text_of(r, v, key, at, owned);
	*out = *owned;
	return rc;
}

static int types_of(rd *r, const json_t *lv, const json_t *pv, const char *at, const char **canon)
{
	const char *logical = NULL, *physical = NULL;
	char *own_logical = NULL, *own_physical = NULL, p[AT_MAX], s1[PB_PBI_NAME_SHOWN_BUF],
	     s2[PB_PBI_NAME_SHOWN_BUF];
	int prec = -1, scale = -1;
	int rc;
	*canon = NULL;
	if ((rc = text_in(r, lv, "logicalType", at, &logical, &own_logical)) ||
	    (rc = text_in(r, pv, "physicalType", at, &physical, &own_physical)))
		goto out;
	if (!logical)
		goto out;
	*canon = v3_type(logical);
	if (!*canon) {
		path_key(p, at, "logicalType");
		rc = failf(r, PB_EINVAL, p, "unknown type \"%s\"", pbname_shown(logical, s1));
		goto out;
	}
	pclass pc = type_class(physical, &prec, &scale); /* before reading scale */
	if (physical && contradicts(*canon, pc, scale)) {
		path_key(p, at, "logicalType");
		rc = failf(r, PB_EINVAL, p, "\"%s\" contradicts physicalType \"%s\"", pbname_shown(logical, s1),
			   pbname_shown(physical, s2));
	}
out:
	free(own_logical);
	free(own_physical);
	return rc;
}

static int check_v3_types(rd *r, const json_t *prop, const char *at, const char **canon)
{
	return types_of(r, json_object_get(prop, "logicalType"), json_object_get(prop, "physicalType"), at, canon);
}

static int check_nested(rd *r, const json_t *prop, const char *at, size_t *count);

/* Nested fields of an object/array property (its properties and items, NULL when absent):
 * not columns, but still checked. */
static int nested_of(rd *r, json_t *props_v, const json_t *items, const char *at, size_t *count)
{
	char p[AT_MAX];
	json_t *props = NULL;
	const char *canon;
	int rc = list_of(r, props_v, "properties", at, &props);
	if (rc)
		return rc;
	if (props) {
		size_t i;
		json_t *child;
		json_array_foreach(props, i, child) {
			char *name = NULL;
			path_index(p, at, "properties", i);
			if (!(rc = need_mapping(r, child, p)))
				rc = get_name(r, child, "name", p, "field", &name);
			free(name); /* checked only: nested fields are not columns */
			if (rc)
				return rc;
			if ((rc = check_v3_types(r, child, p, &canon)) || (rc = check_nested(r, child, p, count)))
				return rc;
			(*count)++;
		}
	}
	if (items) {
		path_key(p, at, "items");
		if ((rc = need_mapping(r, items, p)) || (rc = check_v3_types(r, items, p, &canon)) ||
		    (rc = check_nested(r, items, p, count)))
			return rc;
		(*count)++;
	}
	return PB_OK;
}

static int check_nested(rd *r, const json_t *prop, const char *at, size_t *count)
{
	return nested_of(r, json_object_get(prop, "properties"), json_object_get(prop, "items"), at, count);
}

/* Precision/scale from customProperties (cp) win over the ones read from physicalType. */
static int custom_precision(rd *r, const json_t *cp, const char *at, pb_column *col)
{
	pb_kv *kv = NULL;
	size_t n = 0;
	long long v;
	char p[AT_MAX];
	int rc = custom_of(r, cp, at, &kv, &n);
	if (rc)
		return rc;
	const char *keys[] = {"precision", "scale"};
	int *dst[] = {&col->precision, &col->scale};
	for (int k = 0; k < 2 && !rc; k++) {
		const char *val = kv_get(kv, n, keys[k]);
		if (!val)
			continue;
		if (text_integer(val, &v) && v >= 0 && v <= 1000) {
			*dst[k] = (int)v;
		} else {
			path_key(p, at, "customProperties");
			rc = warnf(r, p, "%s \"%s\" is not a whole number, ignored", keys[k], val);
		}
	}
	kv_free(kv, n);
	return rc;
}

/* ---- v3 ---------------------------------------------------------------------------- */

static const char *const v3_top_keys[] = {"apiVersion", "kind", "id", "name", "version", "status",
	"tenant", "domain", "dataProduct", "description", "tags", "schema", "servers", "support", "price",
	"team", "roles", "slaDefaultElement", "slaProperties", "authoritativeDefinitions", "customProperties",
	"contractCreatedTs", NULL};
static const char *const v3_required[] = {"apiVersion", "kind", "id", "version", "status", NULL};
/* The keys of a schema object; those read have an index (read_fields). A misnumbered index
 * overrides another key (-Woverride-init) or ends the list early (unknown-key warnings). */
enum { O_NAME, O_ID, O_PHYSICAL_NAME, O_PHYSICAL_TYPE, O_LOGICAL_TYPE, O_DESCRIPTION, O_BUSINESS_NAME,
	O_CUSTOM = 10, O_PROPERTIES = 12, O_NKEYS = 14 };
static const char *const v3_object_keys[O_NKEYS + 1] = {[O_NAME] = "name", [O_ID] = "id",
	[O_PHYSICAL_NAME] = "physicalName", [O_PHYSICAL_TYPE] = "physicalType", [O_LOGICAL_TYPE] = "logicalType",
	[O_DESCRIPTION] = "description", [O_BUSINESS_NAME] = "businessName", "dataGranularityDescription",
	"authoritativeDefinitions", "tags", [O_CUSTOM] = "customProperties", "quality",
	[O_PROPERTIES] = "properties", "relationships", [O_NKEYS] = NULL};
/* The keys of a property, the same way. */
enum { P_NAME, P_ID, P_PHYSICAL_NAME, P_PHYSICAL_TYPE, P_LOGICAL_TYPE, P_REQUIRED = 6, P_UNIQUE,
	P_PRIMARY_KEY, P_PRIMARY_KEY_POSITION, P_CLASSIFICATION = 12, P_DESCRIPTION, P_BUSINESS_NAME,
	P_CUSTOM = 22, P_PROPERTIES = 26, P_ITEMS, P_NKEYS };
static const char *const v3_property_keys[P_NKEYS + 1] = {[P_NAME] = "name", [P_ID] = "id",
	[P_PHYSICAL_NAME] = "physicalName", [P_PHYSICAL_TYPE] = "physicalType", [P_LOGICAL_TYPE] = "logicalType",
	"logicalTypeOptions", [P_REQUIRED] = "required", [P_UNIQUE] = "unique", [P_PRIMARY_KEY] = "primaryKey",
	[P_PRIMARY_KEY_POSITION] = "primaryKeyPosition", "partitioned", "partitionKeyPosition",
	[P_CLASSIFICATION] = "classification", [P_DESCRIPTION] = "description",
	[P_BUSINESS_NAME] = "businessName", "examples", "encryptedName", "transformSourceObjects",
	"transformLogic", "transformDescription", "criticalDataElement", "tags", [P_CUSTOM] = "customProperties",
	"authoritativeDefinitions", "quality", "relationships", [P_PROPERTIES] = "properties",
	[P_ITEMS] = "items", [P_NKEYS] = NULL};
static const char *const relationship_keys[] = {"type", "from", "to", "customProperties", "description",
	"id", NULL};

/* Fills what v2 and v3 columns share once their own fields are read. */
static int finish_column(rd *r, pb_column *col, const char *logical)
{
	if (!col->logical_type)
		col->logical_type = xstrdup(logical);
	if (!col->physical_name)
		col->physical_name = xstrdup(col->name);
	return col->logical_type && col->physical_name ? PB_OK : oom(r);
}

static int read_v3_property(rd *r, const json_t *prop, const char *tat, size_t j, pb_column *col)
{
	char at[AT_MAX], shown[PB_PBI_NAME_SHOWN_BUF];
	const char *canon = NULL;
	long long pos = 0;
	int rc;
	json_t *v[P_NKEYS];
	path_index(at, tat, "properties", j);
	col->precision = col->scale = -1;
	if ((rc = need_mapping(r, prop, at)) || (rc = read_fields(r, prop, at, v3_property_keys, v)) ||
	    (rc = name_of(r, v[P_NAME], "name", at, "column", &col->name)) ||
	    (rc = text_of(r, v[P_ID], "id", at, &col->id)) ||
	    (rc = text_of(r, v[P_PHYSICAL_NAME], "physicalName", at, &col->physical_name)) ||
	    (rc = text_of(r, v[P_PHYSICAL_TYPE], "physicalType", at, &col->physical_type)) ||
	    (rc = text_of(r, v[P_DESCRIPTION], "description", at, &col->description)) ||
	    (rc = text_of(r, v[P_BUSINESS_NAME], "businessName", at, &col->business_name)) ||
	    (rc = text_of(r, v[P_CLASSIFICATION], "classification", at, &col->classification)) ||
	    (rc = types_of(r, v[P_LOGICAL_TYPE], v[P_PHYSICAL_TYPE], at, &canon)) ||
	    (rc = bool_of(r, v[P_REQUIRED], "required", at, &col->required)) ||
	    (rc = bool_of(r, v[P_UNIQUE], "unique", at, &col->unique)) ||
	    (rc = bool_of(r, v[P_PRIMARY_KEY], "primaryKey", at, &col->primary_key)) ||
	    (rc = int_of(r, v[P_PRIMARY_KEY_POSITION], "primaryKeyPosition", at, &pos)))
		return rc;
	col->primary_key_position = pos > 0 ? (int)pos : 0;
	pclass pc = type_class(col->physical_type, &col->precision, &col->scale);
	if ((rc = custom_precision(r, v[P_CUSTOM], at, col)))
		return rc;

	bool nested = (canon && (!strcmp(canon, "object") || !strcmp(canon, "array"))) ||
		      (!canon && pc == PC_COMPLEX);
	if (nested) {
		size_t inner = 0;
		if ((rc = nested_of(r, v[P_PROPERTIES], v[P_ITEMS], at, &inner)))
			return rc;
		const char *what = canon ? canon : "struct";
		if (inner)
			rc = warnf(r, at, "\"%s\" is %s %s: kept as one text column (JSON); its %zu nested %s",
				   pbname_shown(col->name, shown), what[0] == 'a' || what[0] == 'o' ? "an" : "a", what, inner,
				   inner == 1 ? "field is not a column" : "fields are not columns");
		else
			rc = warnf(r, at, "\"%s\" is %s %s: kept as one text column (JSON)", pbname_shown(col->name, shown),
				   what[0] == 'a' || what[0] == 'o' ? "an" : "a", what);
		if (rc)
			return rc;
		return finish_column(r, col, "string");
	}
	return finish_column(r, col, canon ? canon : class_logical(pc));
}

#define SAME_NAME_WHY "(Power BI compares names without case and after Unicode normalization)"

static int check_unique_columns(rd *r, const pb_table *t, const char *tat, const char *list_key,
				const char *name_key)
{
	size_t first, dup;
	char p[AT_MAX], q[AT_MAX], a[PB_PBI_NAME_SHOWN_BUF], b[PB_PBI_NAME_SHOWN_BUF];
	if (find_duplicate((const char *const *)&t->columns[0].name, sizeof t->columns[0], t->ncolumns, &first, &dup))
		return oom(r);
	if (dup == t->ncolumns)
		return PB_OK;
	path_index(p, tat, list_key, dup);
	path_key(q, p, name_key);
	return failf(r, PB_EINVAL, q, "duplicate column \"%s\", the same name as %s[%zu] \"%s\" " SAME_NAME_WHY,
		     pbname_shown(t->columns[dup].name, a), list_key, first, pbname_shown(t->columns[first].name, b));
}

static int check_unique_tables(rd *r, const char *list_path, const char *name_key)
{
	pb_contract *c = r->c;
	size_t first, dup;
	char p[AT_MAX], q[AT_MAX], a[PB_PBI_NAME_SHOWN_BUF], b[PB_PBI_NAME_SHOWN_BUF];
	if (find_duplicate((const char *const *)&c->tables[0].name, sizeof c->tables[0], c->ntables, &first, &dup))
		return oom(r);
	if (dup == c->ntables)
		return PB_OK;
	(void)xsnprintf(p, sizeof p, "%s[%zu]", list_path, dup);
	path_key(q, p, name_key);
	return failf(r, PB_EINVAL, q, "duplicate table \"%s\", the same name as %s[%zu] \"%s\" " SAME_NAME_WHY,
		     pbname_shown(c->tables[dup].name, a), list_path, first, pbname_shown(c->tables[first].name, b));
}

static int no_columns(rd *r, const char *at, const char *key, const char *table)
{
	char p[AT_MAX], shown[PB_PBI_NAME_SHOWN_BUF];
	path_key(p, at, key);
	return failf(r, PB_EINVAL, p, "table \"%s\" has no columns (Power BI cannot have a table without columns)",
		     pbname_shown(table, shown));
}

/* Lists of tables and columns (v: the value of key): present, a list, not empty, not over
 * the limit. */
static int rows_of(rd *r, json_t *v, const char *key, const char *at, const char *table, size_t max,
		   json_t **out)
{
	char p[AT_MAX];
	int rc = list_of(r, v, key, at, out);
	if (rc)
		return rc;
	path_key(p, at, key);
	if (!*out || json_array_size(*out) == 0) {
		if (table)
			return no_columns(r, at, key, table);
		return failf(r, PB_EINVAL, p, "the contract has no tables");
	}
	if (json_array_size(*out) > max)
		return failf(r, PB_ELIMIT, p, "more than %zu %s", max, table ? "columns" : "tables");
	return PB_OK;
}

static int get_rows(rd *r, const json_t *obj, const char *key, const char *at, const char *table,
		    size_t max, json_t **out)
{
	return rows_of(r, json_object_get(obj, key), key, at, table, max, out);
}

static int set_table_kind(rd *r, pb_table *t, const char *at)
{
	char p[AT_MAX];
	const char *kind = "table";
	int rc = PB_OK;
	if (t->physical_type && ci_contains(t->physical_type, "view")) {
		kind = "view";
	} else if (t->physical_type && !str_ieq(t->physical_type, "table")) {
		path_key(p, at, "physicalType");
		rc = warnf(r, p, "\"%s\" read as a table", t->physical_type);
	}
	free(t->physical_type);
	t->physical_type = xstrdup(kind);
	if (!t->physical_name)
		t->physical_name = xstrdup(t->name);
	if (!rc && (!t->physical_type || !t->physical_name))
		rc = oom(r);
	return rc;
}

/* The customProperties name that chooses a table's (or every table of a server's) storage
 * mode in Power BI (core/lang/render.h). */
#define STORAGE_MODE_PROPERTY "powerbi.storageMode"

/* Checks a powerbi.storageMode value at path `at`: import, directQuery or dual, any case. */
static int check_storage_mode(rd *r, const char *value, const char *at)
{
	static const char *const modes[] = {"import", "directQuery", "dual"};
	char p[AT_MAX], shown[PB_PBI_NAME_SHOWN_BUF];
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
		if (str_ieq(value, modes[i]))
			return PB_OK;
	path_key(p, at, "customProperties");
	return failf(r, PB_EINVAL, p, "%s \"%s\": use import, directQuery or dual", STORAGE_MODE_PROPERTY,
		     pbname_shown(value, shown));
}

/* A schema object's powerbi.storageMode custom property (in cp, its customProperties) into
 * t->storage_mode. */
static int read_table_mode(rd *r, const json_t *cp, const char *at, pb_table *t)
{
	pb_kv *kv = NULL;
	size_t n = 0;
	int rc = custom_of(r, cp, at, &kv, &n);
	for (size_t i = 0; !rc && i < n; i++)
		if (!strcmp(kv[i].key, STORAGE_MODE_PROPERTY) && !(rc = check_storage_mode(r, kv[i].value, at))) {
			free(t->storage_mode);
			if (!(t->storage_mode = xstrdup(kv[i].value)))
				rc = oom(r);
		}
	kv_free(kv, n);
	return rc;
}

static int read_v3_object(rd *r, const json_t *obj, size_t i, pb_table *t)
{
	char at[AT_MAX], p[AT_MAX], *logical = NULL;
	json_t *props, *v[O_NKEYS];
	int rc;
	path_index(at, "", "schema", i);
	if ((rc = need_mapping(r, obj, at)) || (rc = read_fields(r, obj, at, v3_object_keys, v)) ||
	    (rc = name_of(r, v[O_NAME], "name", at, "table", &t->name)) ||
	    (rc = text_of(r, v[O_ID], "id", at, &t->id)) ||
	    (rc = text_of(r, v[O_PHYSICAL_NAME], "physicalName", at, &t->physical_name)) ||
	    (rc = text_of(r, v[O_PHYSICAL_TYPE], "physicalType", at, &t->physical_type)) ||
	    (rc = text_of(r, v[O_DESCRIPTION], "description", at, &t->description)) ||
	    (rc = text_of(r, v[O_BUSINESS_NAME], "businessName", at, &t->business_name)) ||
	    (rc = text_of(r, v[O_LOGICAL_TYPE], "logicalType", at, &logical)))
		goto out;
	if (logical && !str_ieq(logical, "object")) {
		path_key(p, at, "logicalType");
		if ((rc = warnf(r, p, "\"%s\" on a schema object read as object", logical)))
			goto out;
	}
	if ((rc = set_table_kind(r, t, at)) || (rc = read_table_mode(r, v[O_CUSTOM], at, t)) ||
	    (rc = rows_of(r, v[O_PROPERTIES], "properties", at, t->name, PB_CONTRACT_MAX_COLUMNS, &props)))
		goto out;
	t->columns = calloc(json_array_size(props), sizeof *t->columns);
	if (!t->columns) {
		rc = oom(r);
		goto out;
	}
	size_t j;
	json_t *prop;
	json_array_foreach(props, j, prop) {
		t->ncolumns = j + 1;
		if ((rc = read_v3_property(r, prop, at, j, &t->columns[j])))
			goto out;
	}
	rc = check_unique_columns(r, t, at, "properties", "name");
out:
	free(logical);
	return rc;
}

/* One server at path `at`; `key` is its name when the servers come as a mapping of name ->
 * server (the form v2-era contracts use), NULL in a v3 list. */
static int read_one_server(rd *r, const json_t *s, const char *at, const char *key, pb_server *srv)
{
	static const char *const not_fields[] = {"server", "type", "id", "description", "roles",
						 "customProperties", NULL};
	char p[AT_MAX];
	int rc;
	if ((rc = need_mapping(r, s, at)) || (rc = get_text(r, s, "server", at, &srv->name)) ||
	    (rc = get_text(r, s, "type", at, &srv->type)))
		return rc;
	if (key && !srv->name && !(srv->name = xstrdup(key)))
		return oom(r);
	if (!srv->type) {
		path_key(p, at, "type");
		return failf(r, PB_EINVAL, p, "required");
	}
	lower_ascii(srv->type);
	if (!srv->name) {
		path_key(p, at, "server");
		if ((rc = warnf(r, p, "missing; the server is named \"%s\" after its type", srv->type)))
			return rc;
		if (!(srv->name = xstrdup(srv->type)))
			return oom(r);
	}
	srv->fields = calloc(json_object_size(s) + 1, sizeof *srv->fields);
	if (!srv->fields)
		return oom(r);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)s, k, v) {
		if (in_list(not_fields, k))
			continue;
		path_key(p, at, k);
		if (secret_name(k)) {
			if ((rc = warnf(r, p, "not kept (secrets do not belong in a contract)")))
				return rc;
			continue;
		}
		if (json_is_null(v)) {
			if ((rc = warnf(r, p, "empty, ignored")))
				return rc;
			continue;
		}
		pb_kv *f = &srv->fields[srv->nfields++];
		f->key = xstrdup(k);
		f->value = value_text(v);
		if (!f->key || !f->value)
			return oom(r);
	}
	if ((rc = get_custom(r, s, at, &srv->custom, &srv->ncustom)))
		return rc;
	for (size_t ci = 0; ci < srv->ncustom; ci++)
		if (!strcmp(srv->custom[ci].key, STORAGE_MODE_PROPERTY) &&
		    (rc = check_storage_mode(r, srv->custom[ci].value, at)))
			return rc;
	/* drop secret-looking custom properties in place */
	size_t keep = 0;
	for (size_t ci = 0; ci < srv->ncustom; ci++) {
		if (!secret_name(srv->custom[ci].key)) {
			srv->custom[keep++] = srv->custom[ci];
			continue;
		}
		path_key(p, at, "customProperties");
		if (!rc)
			rc = warnf(r, p, "%s not kept (secrets do not belong in a contract)", srv->custom[ci].key);
		free(srv->custom[ci].key);
		free(srv->custom[ci].value);
	}
	srv->ncustom = keep;
	return rc;
}

/* Warns when servers[i] repeats an earlier server's name (the first is the one picked). */
static int warn_same_server_name(rd *r, size_t i, const char *at)
{
	pb_contract *c = r->c;
	for (size_t k = 0; k < i; k++)
		if (!strcmp(c->servers[k].name, c->servers[i].name))
			return warnf(r, at, "server name \"%s\" used twice; the first one is picked by name",
				     c->servers[i].name);
	return PB_OK;
}

/* `servers`: a list (ODCS v3), or, when map_ok (v2), also a mapping of name -> server. The
 * array gets one spare slot for the v2 top-level connection (read_v2_server). */
static int read_servers(rd *r, const json_t *root, bool map_ok)
{
	pb_contract *c = r->c;
	json_t *v = json_object_get(root, "servers"), *s;
	char at[AT_MAX];
	int rc;
	if (!v)
		return PB_OK;
	if (!json_is_array(v) && !(map_ok && json_is_object(v)))
		return failf(r, PB_EINVAL, "servers", "expected a list%s, got %s", map_ok ? " or a mapping" : "",
			     kind_name(v));
	size_t n = json_is_array(v) ? json_array_size(v) : json_object_size(v);
	if (n > PB_CONTRACT_MAX_SERVERS)
		return failf(r, PB_ELIMIT, "servers", "more than %d servers", PB_CONTRACT_MAX_SERVERS);
	c->servers = calloc(n + 1, sizeof *c->servers);
	if (!c->servers)
		return oom(r);
	if (json_is_array(v)) {
		size_t i;
		json_array_foreach(v, i, s) {
			c->nservers = i + 1;
			path_index(at, "", "servers", i);
			if ((rc = read_one_server(r, s, at, NULL, &c->servers[i])) ||
			    (rc = warn_same_server_name(r, i, at)))
				return rc;
		}
		return PB_OK;
	}
	const char *name;
	json_object_foreach(v, name, s) {
		size_t i = c->nservers++;
		path_key(at, "servers", name);
		if ((rc = read_one_server(r, s, at, name, &c->servers[i])) || (rc = warn_same_server_name(r, i, at)))
			return rc;
	}
	return PB_OK;
}

/* ---- relationships (v3.1.0) -------------------------------------------------------- */

static bool eq_n(const char *s, const char *p, size_t n, bool fold)
{
	if (!s || strlen(s) != n)
		return false;
	return fold ? !strncasecmp(s, p, n) : !memcmp(s, p, n);
}

static bool find_column_in(const pb_table *t, const char *name, size_t n, bool by_id, size_t *cj)
{
	for (int fold = 0; fold < 2; fold++)
		for (size_t j = 0; j < t->ncolumns; j++)
			if (eq_n(by_id ? t->columns[j].id : t->columns[j].name, name, n, fold)) {
				*cj = j;
				return true;
			}
	return false;
}

/* Sorts the tables by name and by id as Power BI compares names, so each reference costs a
 * binary search plus one table's columns (contracts may hold thousands of each). */
static int build_table_index(rd *r)
{
	pb_contract *c = r->c;
	r->by_name = calloc(c->ntables + 1, sizeof *r->by_name);
	r->by_id = calloc(c->ntables + 1, sizeof *r->by_id);
	if (!r->by_name || !r->by_id)
		return oom(r);
	for (size_t i = 0; i < c->ntables; i++) {
		r->nby_name = i + 1;
		if (named_set(&r->by_name[i], c->tables[i].name, i))
			return oom(r);
		if (c->tables[i].id && named_set(&r->by_id[r->nby_id++], c->tables[i].id, i))
			return oom(r);
	}
	qsort(r->by_name, r->nby_name, sizeof *r->by_name, named_cmp);
	qsort(r->by_id, r->nby_id, sizeof *r->by_id, named_cmp);
	return PB_OK;
}

/* The table named (or with id) tname[0..tn) -- exact spelling first -- and its column. */
static bool find_ref(const rd *r, const char *tname, size_t tn, const char *cname, size_t cn, bool by_id,
		     size_t *ti, size_t *cj)
{
	const named *v = by_id ? r->by_id : r->by_name;
	size_t n = by_id ? r->nby_id : r->nby_name, lo = 0, hi = n;
	bool found = false;
	if (tn > PB_PBI_NAME_MAX_BYTES)
		return false;
	char *key = pbname_key(tname, tn, NULL);
	if (!key)
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pbname_keycmp(v[mid].key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t pick = n;
	for (size_t k = lo; k < n && !pbname_keycmp(v[k].key, key); k++) {
		const pb_table *t = &r->c->tables[v[k].idx];
		const char *written = by_id ? t->id : t->name;
		if (strlen(written) == tn && !memcmp(written, tname, tn)) {
			pick = k;
			break;
		}
		if (pick == n)
			pick = k;
	}
	if (pick != n && find_column_in(&r->c->tables[v[pick].idx], cname, cn, by_id, cj)) {
		*ti = v[pick].idx;
		found = true;
	}
	free(key);
	return found;
}

typedef enum ref_result { REF_FOUND, REF_MISSING, REF_EXTERNAL } ref_result;

/* `table.column` or `schema/<object-id>/properties/<property-id>`. */
static ref_result resolve_ref(const rd *r, const char *ref, size_t *ti, size_t *cj)
{
	if (strchr(ref, '#'))
		return REF_EXTERNAL;
	if (strlen(ref) > 2 * PB_PBI_NAME_MAX_BYTES + 32)
		return REF_MISSING;
	const char *s = ref[0] == '/' ? ref + 1 : ref;
	if (!strncmp(s, "schema/", 7)) {
		const char *oid = s + 7, *slash = strchr(oid, '/');
		if (!slash || strncmp(slash, "/properties/", 12))
			return REF_MISSING;
		const char *pid = slash + 12;
		if (strchr(pid, '/'))
			return REF_MISSING; /* a nested property: not a column */
		return find_ref(r, oid, (size_t)(slash - oid), pid, strlen(pid), true, ti, cj) ||
		       find_ref(r, oid, (size_t)(slash - oid), pid, strlen(pid), false, ti, cj) ? REF_FOUND : REF_MISSING;
	}
	/* names may hold dots themselves: try every split */
	for (const char *dot = strchr(s, '.'); dot; dot = strchr(dot + 1, '.'))
		if (find_ref(r, s, (size_t)(dot - s), dot + 1, strlen(dot + 1), false, ti, cj))
			return REF_FOUND;
	return REF_MISSING;
}

/* A reference side: text, or a list of texts (a composite key when longer than 1).
 * *single is the one reference, or NULL for composite keys. */
static int ref_side(rd *r, const json_t *rel, const char *key, const char *at, size_t *count,
		    const char **single)
{
	char p[AT_MAX], pi[AT_MAX];
	json_t *v = json_object_get(rel, key);
	path_key(p, at, key);
	*single = NULL;
	*count = 0;
	if (json_is_string(v)) {
		*count = 1;
		*single = json_string_value(v);
		return PB_OK;
	}
	if (!json_is_array(v))
		return failf(r, PB_EINVAL, p, "expected a reference (text or a list of texts), got %s", kind_name(v));
	size_t i;
	json_t *item;
	json_array_foreach(v, i, item) {
		if (!json_is_string(item)) {
			(void)xsnprintf(pi, sizeof pi, "%s[%zu]", p, i);
			return failf(r, PB_EINVAL, pi, "expected text, got %s", kind_name(item));
		}
	}
	*count = json_array_size(v);
	if (*count == 1)
		*single = json_string_value(json_array_get(v, 0));
	return PB_OK;
}

static int add_relationship(rd *r, const pb_relationship *rel)
{
	pb_contract *c = r->c;
	for (size_t i = 0; i < c->nrelationships; i++) {
		const pb_relationship *o = &c->relationships[i];
		if (!strcmp(o->from_table, rel->from_table) && !strcmp(o->from_column, rel->from_column) &&
		    !strcmp(o->to_table, rel->to_table) && !strcmp(o->to_column, rel->to_column))
			return 1; /* stated twice (object and property level): keep one */
	}
	if (c->nrelationships >= PB_CONTRACT_MAX_RELATIONSHIPS)
		return pb_err(r->err, PB_ELIMIT, "%s: more than %d relationships", r->source,
			      PB_CONTRACT_MAX_RELATIONSHIPS);
	if (c->nrelationships == r->caprelationships) {
		size_t cap = r->caprelationships ? r->caprelationships * 2 : 8;
		pb_relationship *v = realloc(c->relationships, cap * sizeof *v);
		if (!v)
			return oom(r);
		c->relationships = v;
		r->caprelationships = cap;
	}
	c->relationships[c->nrelationships++] = *rel;
	return PB_OK;
}

static int missing_ref(rd *r, const char *at, const char *key, const char *ref, ref_result res)
{
	char p[AT_MAX], shown[PB_PBI_NAME_SHOWN_BUF];
	path_key(p, at, key);
	if (res == REF_EXTERNAL)
		return warnf(r, p, "\"%s\" refers to another contract; relationship skipped", pbname_shown(ref, shown));
	return warnf(r, p, "\"%s\" names no column of this contract; relationship skipped", pbname_shown(ref, shown));
}

/* One relationship; from_ti/from_cj give the implied `from` of a property-level one
 * (from_cj == NO_COLUMN at object level). */
static int read_relationship(rd *r, const json_t *rel, const char *at, size_t from_ti, size_t from_cj)
{
	pb_contract *c = r->c;
	pb_relationship out = {0};
	char *type = NULL, p[AT_MAX];
	pb_kv *kv = NULL;
	size_t nkv = 0, nfrom = 1, nto, ti = from_ti, cj = from_cj, tj, tc;
	const char *from = NULL, *to = NULL;
	ref_result res;
	int rc;
	if ((rc = need_mapping(r, rel, at)) || (rc = warn_unknown(r, rel, at, relationship_keys)) ||
	    (rc = get_text(r, rel, "type", at, &type)))
		goto out;
	if (type && !str_ieq(type, "foreignKey")) {
		path_key(p, at, "type");
		rc = warnf(r, p, "\"%s\" is not foreignKey; relationship skipped", type);
		goto out;
	}
	if (!json_object_get(rel, "to")) {
		path_key(p, at, "to");
		rc = failf(r, PB_EINVAL, p, "required");
		goto out;
	}
	if (from_cj == NO_COLUMN) {
		if (!json_object_get(rel, "from")) {
			path_key(p, at, "from");
			rc = failf(r, PB_EINVAL, p, "required");
			goto out;
		}
		if ((rc = ref_side(r, rel, "from", at, &nfrom, &from)))
			goto out;
	} else if (json_object_get(rel, "from")) {
		path_key(p, at, "from");
		if ((rc = warnf(r, p, "ignored: a property-level relationship starts at its property")))
			goto out;
	}
	if ((rc = ref_side(r, rel, "to", at, &nto, &to)))
		goto out;
	if (nfrom != 1 || nto != 1) {
		if (nfrom != nto)
			rc = warnf(r, at, "from has %zu columns but to has %zu; relationship skipped", nfrom, nto);
		else
			rc = warnf(r, at, "composite key (%zu columns) skipped: a Power BI relationship joins one "
				   "column to one column", nto);
		goto out;
	}
	if (from && (res = resolve_ref(r, from, &ti, &cj)) != REF_FOUND) {
		rc = missing_ref(r, at, "from", from, res);
		goto out;
	}
	if ((res = resolve_ref(r, to, &tj, &tc)) != REF_FOUND) {
		rc = missing_ref(r, at, "to", to, res);
		goto out;
	}
	if ((rc = get_custom(r, rel, at, &kv, &nkv)))
		goto out;
	out.from_table = xstrdup(c->tables[ti].name);
	out.from_column = xstrdup(c->tables[ti].columns[cj].name);
	out.to_table = xstrdup(c->tables[tj].name);
	out.to_column = xstrdup(c->tables[tj].columns[tc].name);
	const char *card = kv_get(kv, nkv, "cardinality");
	out.cardinality = xstrdup(card);
	if (!out.from_table || !out.from_column || !out.to_table || !out.to_column || (card && !out.cardinality)) {
		rc = oom(r);
		goto out;
	}
	rc = add_relationship(r, &out);
	if (rc == PB_OK)
		memset(&out, 0, sizeof out); /* the contract owns the strings now */
	else if (rc > 0)
		rc = PB_OK;
out:
	free(out.from_table);
	free(out.from_column);
	free(out.to_table);
	free(out.to_column);
	free(out.cardinality);
	kv_free(kv, nkv);
	free(type);
	return rc;
}

static int read_relationship_list(rd *r, const json_t *obj, const char *at, size_t ti, size_t cj)
{
	char p[AT_MAX];
	json_t *rels;
	int rc = get_list(r, obj, "relationships", at, &rels);
	if (rc || !rels)
		return rc;
	size_t k;
	json_t *rel;
	json_array_foreach(rels, k, rel) {
		path_index(p, at, "relationships", k);
		if ((rc = read_relationship(r, rel, p, ti, cj)))
			return rc;
	}
	return PB_OK;
}

/* After all tables are read, so references may point forward. */
static int read_relationships(rd *r, const json_t *schema)
{
	char at[AT_MAX], pat[AT_MAX];
	size_t i;
	json_t *obj;
	int rc0 = build_table_index(r);
	if (rc0)
		return rc0;
	json_array_foreach(schema, i, obj) {
		path_index(at, "", "schema", i);
		int rc = read_relationship_list(r, obj, at, i, NO_COLUMN);
		if (rc)
			return rc;
		json_t *props = json_object_get(obj, "properties");
		size_t j;
		json_t *prop;
		json_array_foreach(props, j, prop) {
			/* Most properties state none: skip building their path. */
			if (!json_object_get(prop, "relationships"))
				continue;
			path_index(pat, at, "properties", j);
			if ((rc = read_relationship_list(r, prop, pat, i, j)))
				return rc;
		}
	}
	return PB_OK;
}

/* ---- contract level ------------------------------------------------------------------ */

/* description: plain text, or the v3/v2 object whose `purpose` we keep. */
static int read_description(rd *r, const json_t *root)
{
	json_t *d = json_object_get(root, "description");
	if (d && json_is_object(d)) {
		int rc = get_text(r, d, "purpose", "description", &r->c->description);
		trim_trailing_newlines(r->c->description);
		return rc;
	}
	return get_text(r, root, "description", "", &r->c->description);
}

static int read_v3(rd *r, const json_t *root)
{
	pb_contract *c = r->c;
	char *kind = NULL;
	json_t *schema;
	const char *k;
	json_t *v;
	int rc = PB_OK;
	c->odcs_major = 3;
	json_object_foreach((json_t *)root, k, v) {
		if (!in_list(v3_top_keys, k))
			return failf(r, PB_EINVAL, k, "unknown top-level key (ODCS v3 allows extra data only under "
				     "customProperties)");
	}
	for (const char *const *req = v3_required; *req; req++)
		if (!json_object_get(root, *req))
			return failf(r, PB_EINVAL, *req, "required");
	if ((rc = get_text(r, root, "id", "", &c->id)) || (rc = get_text(r, root, "name", "", &c->name)) ||
	    (rc = get_text(r, root, "version", "", &c->version)) ||
	    (rc = get_text(r, root, "apiVersion", "", &c->api_version)) ||
	    (rc = get_text(r, root, "status", "", &c->status)) ||
	    (rc = get_text(r, root, "domain", "", &c->domain)) || (rc = get_text(r, root, "kind", "", &kind)) ||
	    (rc = read_description(r, root)))
		goto out;
	if (kind && strcmp(kind, "DataContract") && (rc = warnf(r, "kind", "\"%s\" read as DataContract", kind)))
		goto out;
	if (!c->name && c->id && !(c->name = xstrdup(c->id))) {
		rc = oom(r);
		goto out;
	}
	if (!json_object_get(root, "schema")) {
		rc = failf(r, PB_EINVAL, "schema", "required (the contract has no tables)");
		goto out;
	}
	if ((rc = get_rows(r, root, "schema", "", NULL, PB_CONTRACT_MAX_TABLES, &schema)))
		goto out;
	c->tables = calloc(json_array_size(schema), sizeof *c->tables);
	if (!c->tables) {
		rc = oom(r);
		goto out;
	}
	size_t i;
	json_t *obj;
	json_array_foreach(schema, i, obj) {
		c->ntables = i + 1;
		if ((rc = read_v3_object(r, obj, i, &c->tables[i])))
			goto out;
	}
	if ((rc = check_unique_tables(r, "schema", "name")) || (rc = read_servers(r, root, false)))
		goto out;
	rc = read_relationships(r, schema);
out:
	free(kind);
	return rc;
}

/* ---- v2 ------------------------------------------------------------------------------ */

static const char *const v2_top_keys[] = {"apiVersion", "standardVersion", "kind", "uuid", "id", "version",
	"status", "type", "datasetName", "quantumName", "datasetDomain", "datasetKind", "description",
	"tenant", "sourcePlatform", "sourceSystem", "datasetProject", "userConsumptionMode", "productDl",
	"productSlackChannel", "productFeedbackUrl", "server", "database", "driver", "driverVersion",
	"username", "password", "project", "schedulerAppName", "dataset", "price", "stakeholders", "roles",
	"slaDefaultColumn", "slaProperties", "tags", "customProperties", "systemInstance",
	"contractCreatedTs", "servers", NULL};
static const char *const v2_table_keys[] = {"table", "physicalName", "priorTableName", "description",
	"authoritativeDefinitions", "dataGranularity", "quality", "columns", "tags", "customProperties",
	"businessName", NULL};
static const char *const v2_column_keys[] = {"column", "logicalType", "physicalType", "isPrimaryKey",
	"isPrimary", "primary", "primaryKeyPosition", "businessName", "description", "isNullable", "nullable",
	"isUnique", "unique", "partitionStatus", "partitionKeyPosition", "clusterStatus",
	"clusterKeyPosition", "classification", "authoritativeDefinitions", "encryptedColumnName",
	"transformSourceTables", "transformLogic", "transformDescription", "sampleValues",
	"criticalDataElementStatus", "tags", "quality", "customProperties", NULL};

/* v2 logical types are free text: map them to the nearest v3 type. */
static int v2_logical(rd *r, const char *logical, pclass physical, const char *at, const char **out)
{
	int prec = -1, scale = -1;
	char p[AT_MAX];
	const char *canon = v3_type(logical);
	if (canon && (!strcmp(canon, "object") || !strcmp(canon, "array")))
		canon = "string"; /* v2 has no nested fields: the value is one column */
	if (!canon) {
		pclass pc = type_class(logical, &prec, &scale);
		canon = class_logical(pc);
		if (pc == PC_UNKNOWN) {
			path_key(p, at, "logicalType");
			int rc = warnf(r, p, "\"%s\" is not a known type; read as string", logical);
			if (rc)
				return rc;
		}
	}
	/* "Numeric" over serial/int4 columns: keep them whole numbers */
	if (!strcmp(canon, "number") && physical == PC_INTEGER)
		canon = "integer";
	*out = canon;
	return PB_OK;
}

static int read_v2_column(rd *r, const json_t *cj, const char *tat, size_t j, pb_column *col)
{
	char at[AT_MAX], *logical = NULL;
	long long pos = 0;
	bool nullable = true, pk = false;
	const char *canon;
	int rc;
	path_index(at, tat, "columns", j);
	col->precision = col->scale = -1;
	if ((rc = need_mapping(r, cj, at)) || (rc = warn_unknown(r, cj, at, v2_column_keys)) ||
	    (rc = get_name(r, cj, "column", at, "column", &col->name)) ||
	    (rc = get_text(r, cj, "physicalType", at, &col->physical_type)) ||
	    (rc = get_text(r, cj, "logicalType", at, &logical)) ||
	    (rc = get_text(r, cj, "description", at, &col->description)) ||
	    (rc = get_text(r, cj, "businessName", at, &col->business_name)) ||
	    (rc = get_text(r, cj, "classification", at, &col->classification)) ||
	    (rc = get_bool(r, cj, "isNullable", at, &nullable)) ||
	    (rc = get_bool(r, cj, "nullable", at, &nullable)) ||
	    (rc = get_bool(r, cj, "isPrimaryKey", at, &pk)) || (rc = get_bool(r, cj, "isPrimary", at, &pk)) ||
	    (rc = get_bool(r, cj, "primary", at, &pk)) ||
	    (rc = get_int(r, cj, "primaryKeyPosition", at, &pos)) ||
	    (rc = get_bool(r, cj, "isUnique", at, &col->unique)) ||
	    (rc = get_bool(r, cj, "unique", at, &col->unique)))
		goto out;
	col->required = !nullable;
	col->primary_key = pk;
	col->primary_key_position = pos > 0 ? (int)pos : 0;
	pclass pc = type_class(col->physical_type, &col->precision, &col->scale);
	if ((rc = custom_precision(r, json_object_get(cj, "customProperties"), at, col)))
		goto out;
	if (logical) {
		if ((rc = v2_logical(r, logical, pc, at, &canon)))
			goto out;
	} else {
		canon = pc == PC_COMPLEX ? "string" : class_logical(pc);
	}
	rc = finish_column(r, col, canon);
out:
	free(logical);
	return rc;
}

static int read_v2_table(rd *r, const json_t *tj, const char *base, size_t i, pb_table *t)
{
	char at[AT_MAX];
	json_t *cols;
	int rc;
	(void)xsnprintf(at, sizeof at, "%s[%zu]", base, i);
	if ((rc = need_mapping(r, tj, at)) || (rc = warn_unknown(r, tj, at, v2_table_keys)) ||
	    (rc = get_name(r, tj, "table", at, "table", &t->name)) ||
	    (rc = get_text(r, tj, "physicalName", at, &t->physical_name)) ||
	    (rc = get_text(r, tj, "description", at, &t->description)) ||
	    (rc = get_text(r, tj, "businessName", at, &t->business_name)) || (rc = set_table_kind(r, t, at)) ||
	    (rc = get_rows(r, tj, "columns", at, t->name, PB_CONTRACT_MAX_COLUMNS, &cols)))
		return rc;
	t->columns = calloc(json_array_size(cols), sizeof *t->columns);
	if (!t->columns)
		return oom(r);
	size_t j;
	json_t *cj;
	json_array_foreach(cols, j, cj) {
		t->ncolumns = j + 1;
		if ((rc = read_v2_column(r, cj, at, j, &t->columns[j])))
			return rc;
	}
	return check_unique_columns(r, t, at, "columns", "column");
}

static int add_field(rd *r, pb_server *s, const char *key, const char *value)
{
	pb_kv *f = &s->fields[s->nfields];
	f->key = xstrdup(key);
	f->value = xstrdup(value);
	if (!f->key || !f->value) {
		free(f->key);
		free(f->value);
		f->key = f->value = NULL;
		return oom(r);
	}
	s->nfields++;
	return PB_OK;
}

/* The server type a v2 JDBC driver name implies, or NULL. */
static const char *driver_type(const char *driver)
{
	static const char *const known[][2] = {{"postgres", "postgresql"}, {"snowflake", "snowflake"},
		{"databricks", "databricks"}, {"sqlserver", "sqlserver"}, {"mysql", "mysql"},
		{"oracle", "oracle"}, {"bigquery", "bigquery"}, {"redshift", "redshift"}};
	for (size_t i = 0; driver && i < sizeof known / sizeof known[0]; i++)
		if (ci_contains(driver, known[i][0]))
			return known[i][1];
	return NULL;
}

/* v2 keeps one connection at the top level: server, database, driver, sourceSystem. It is
 * the server named "default", after those of a `servers` block when the contract has one. */
static int read_v2_server(rd *r, const json_t *root)
{
	static const char *const copied[] = {"database", "driver", "driverVersion", "username", "project",
					     "datasetProject", "sourcePlatform", NULL};
	pb_contract *c = r->c;
	char *server = NULL, *system = NULL, *type = NULL, *val = NULL;
	int rc;
	if ((rc = get_text(r, root, "server", "", &server)) || (rc = get_text(r, root, "sourceSystem", "", &system)) ||
	    (rc = get_text(r, root, "type", "", &type)))
		goto out;
	if (json_object_get(root, "password") && (rc = warnf(r, "password", "not kept (secrets do not belong in a contract)")))
		goto out;
	if (!server && !system && !json_object_get(root, "database") && !json_object_get(root, "driver"))
		goto out;
	/* after the servers of a `servers` block, if any: read_servers left a slot for it */
	if (!c->servers && !(c->servers = calloc(1, sizeof *c->servers))) {
		rc = oom(r);
		goto out;
	}
	pb_server *s = &c->servers[c->nservers++];
	/* server, host and port, then the copied fields */
	s->fields = calloc(3 + sizeof copied / sizeof copied[0], sizeof *s->fields);
	s->name = xstrdup("default");
	if (!s->fields || !s->name) {
		rc = oom(r);
		goto out;
	}
	if (server) {
		/* kept as written, and split: "host:port" -> host and port */
		if ((rc = add_field(r, s, "server", server)))
			goto out;
		char *colon = strrchr(server, ':');
		long long port;
		if (colon && text_integer(colon + 1, &port) && port > 0 && port < 65536) {
			*colon = '\0';
			rc = add_field(r, s, "host", server);
			if (!rc)
				rc = add_field(r, s, "port", colon + 1);
		} else {
			rc = add_field(r, s, "host", server);
		}
		if (rc)
			goto out;
	}
	for (const char *const *k = copied; *k; k++) {
		if ((rc = get_text(r, root, *k, "", &val)))
			goto out;
		if (val && (rc = add_field(r, s, *k, val)))
			goto out;
		free(val);
		val = NULL;
	}
	const char *t = system;
	if (!t) {
		char *driver = NULL;
		if ((rc = get_text(r, root, "driver", "", &driver)))
			goto out;
		t = driver_type(driver);
		free(driver);
	}
	if (!t && type && !ci_contains(type, "table") && !ci_contains(type, "view"))
		t = type;
	s->type = xstrdup(t ? t : "custom");
	if (!s->type) {
		rc = oom(r);
		goto out;
	}
	lower_ascii(s->type);
	rc = warn_same_server_name(r, c->nservers - 1, "server");
out:
	free(server);
	free(system);
	free(type);
	free(val);
	return rc;
}

static int read_v2(rd *r, const json_t *root)
{
	pb_contract *c = r->c;
	json_t *ds, *tables;
	const char *base = "dataset";
	int rc;
	c->odcs_major = 2;
	if ((rc = warn_unknown(r, root, "", v2_top_keys)) || (rc = get_text(r, root, "uuid", "", &c->id)) ||
	    (!c->id && (rc = get_text(r, root, "id", "", &c->id))) ||
	    (rc = get_text(r, root, "datasetName", "", &c->name)) ||
	    (rc = get_text(r, root, "version", "", &c->version)) ||
	    (rc = get_text(r, root, "apiVersion", "", &c->api_version)) ||
	    (!c->api_version && (rc = get_text(r, root, "standardVersion", "", &c->api_version))) ||
	    (rc = get_text(r, root, "status", "", &c->status)) ||
	    (rc = get_text(r, root, "datasetDomain", "", &c->domain)) || (rc = read_description(r, root)))
		return rc;
	if (!c->name && c->id && !(c->name = xstrdup(c->id)))
		return oom(r);
	ds = json_object_get(root, "dataset");
	if (json_is_object(ds)) {
		/* the AdventureWorks variant: dataset: {tables: [...]} */
		base = "dataset.tables";
		if ((rc = get_rows(r, ds, "tables", "dataset", NULL, PB_CONTRACT_MAX_TABLES, &tables)))
			return rc;
	} else if (!ds || json_is_array(ds)) {
		if ((rc = get_rows(r, root, "dataset", "", NULL, PB_CONTRACT_MAX_TABLES, &tables)))
			return rc;
	} else {
		return failf(r, PB_EINVAL, "dataset", "expected a list of tables, got %s", kind_name(ds));
	}
	c->tables = calloc(json_array_size(tables), sizeof *c->tables);
	if (!c->tables)
		return oom(r);
	size_t i;
	json_t *tj;
	json_array_foreach(tables, i, tj) {
		c->ntables = i + 1;
		if ((rc = read_v2_table(r, tj, base, i, &c->tables[i])))
			return rc;
	}
	if ((rc = check_unique_tables(r, base, "table")) || (rc = read_servers(r, root, true)))
		return rc;
	return read_v2_server(r, root);
}

/* ---- entry points ---------------------------------------------------------------------- */

/* 3, 2, or 0 when the mapping is no ODCS document. */
static int detect_major(const json_t *root)
{
	const char *api = json_string_value(json_object_get(root, "apiVersion"));
	if (!api)
		api = json_string_value(json_object_get(root, "standardVersion"));
	if (api) {
		const char *v = (api[0] == 'v' || api[0] == 'V') ? api + 1 : api;
		if (v[0] == '3' && (v[1] == '.' || !v[1]))
			return 3;
		if (v[0] == '2' && (v[1] == '.' || !v[1]))
			return 2;
	}
	if (json_object_get(root, "schema"))
		return 3;
	if (json_object_get(root, "dataset"))
		return 2;
	if (api && json_object_get(root, "kind"))
		return 3; /* declares itself a contract, lacks its tables: say what is missing */
	return 0;
}

static int check_utf8(const char *text, size_t len, const char *source, char *err)
{
	/* Skip the plain ASCII start 8 bytes at a time (most contracts are ASCII throughout);
	 * an ASCII byte ends any character, so utf8_valid can take over from there. */
	size_t a = 0;
	for (uint64_t w; a + 8 <= len; a += 8) {
		memcpy(&w, text + a, 8);
		if (w & WORD_HIGHS)
			break;
	}
	if (utf8_valid(text + a, len - a))
		return PB_OK;
	size_t i = 0, line = 1, col = 1;
	while (i < len) {
		unsigned char ch = (unsigned char)text[i];
		size_t n = ch < 0x80 ? 1 : (ch & 0xE0) == 0xC0 ? 2 : (ch & 0xF0) == 0xE0 ? 3 : (ch & 0xF8) == 0xF0 ? 4 : 0;
		if (!n || n > len - i || !utf8_valid(text + i, n))
			break;
		if (ch == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
		i += n;
	}
	return pb_err(err, PB_EINVAL, "%s:%zu:%zu: invalid UTF-8 at byte offset %zu", source, line, col, i);
}

/* Line and column (1-based, in bytes) of text[i], for messages. */
static void text_position(const char *text, size_t i, size_t *line, size_t *col)
{
	size_t l = 1, last_nl = 0;
	bool seen = false;
	for (size_t k = 0; k < i; k++) {
		if (text[k] == '\n') {
			l++;
			last_nl = k;
			seen = true;
		}
	}
	*line = l;
	*col = seen ? i - last_nl : i + 1;
}

/* jansson has no runtime depth limit and builds the whole tree first: check depth and
 * size with a quick scan (outside strings) before parsing. Positions are worked out only
 * for a message: counting lines on every byte was a visible part of reading a contract. */
static int json_prescan(const char *text, size_t len, const char *source, char *err)
{
	size_t depth = 0, values = 1, line, col;
	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (ch == '"') {
			for (i++; i < len && text[i] != '"'; i++) {
				if (text[i] == '\\')
					i++;
			}
			continue;
		}
		if (ch == '{' || ch == '[') {
			values++;
			if (++depth > PB_CONTRACT_MAX_DEPTH) {
				text_position(text, i, &line, &col);
				return pb_err(err, PB_ELIMIT, "%s:%zu:%zu: nesting deeper than %d levels", source, line, col,
					      PB_CONTRACT_MAX_DEPTH);
			}
		} else if (ch == '}' || ch == ']') {
			if (depth)
				depth--;
			continue;
		} else if (ch == ',') {
			values++;
		} else {
			continue;
		}
		if (values > PB_CONTRACT_MAX_NODES) {
			text_position(text, i, &line, &col);
			return pb_err(err, PB_ELIMIT, "%s:%zu:%zu: more than %d values", source, line, col,
				      PB_CONTRACT_MAX_NODES);
		}
	}
	return PB_OK;
}

/* A JSON reader for well-formed contracts, several times faster than json_loadb (which
 * reads byte by byte through a stream layer): it builds the same jansson tree, same key
 * order, integers and reals as jansson types them. On anything it does not take plainly
 * (syntax errors, duplicate keys, \u0000, control characters, numbers out of range, no
 * memory) it returns NULL and json_loadb reads the text again for its verdict and message.
 * Depth is bounded by json_prescan, which runs first. */
typedef struct {
	const char *p, *end;
	char *buf; /* decoded strings with escapes; as long as the text, which no string outgrows */
	/* json_prescan's bounds, counted as it counts them (1 + each object, array and comma;
	 * nesting): a text that passes them here passes them there, so a contract needs the
	 * prescan only when this reader gives up */
	size_t depth, values, max_depth, max_values;
} fast_json;

/* Counts one more object, array or comma (opens: also one more level); false past a bound. */
static bool fj_count(fast_json *f, bool opens)
{
	if (opens && ++f->depth > f->max_depth)
		return false;
	return ++f->values <= f->max_values;
}

static void fj_space(fast_json *f)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r'))
		f->p++;
}

static bool fj_hex4(fast_json *f, uint32_t *out)
{
	uint32_t v = 0;
	if (f->end - f->p < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		char ch = f->p[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (uint32_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (uint32_t)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (uint32_t)(ch - 'A' + 10);
		else
			return false;
	}
	f->p += 4;
	*out = v;
	return true;
}

/* The end of the plain run (no quote, backslash or control byte) of a string from q: eight
 * bytes at a time (on a little-endian machine the lowest hit's bit is the byte), the last
 * few byte by byte. */
static const char *fj_plain(const char *q, const char *end)
{
	for (uint64_t w, hit; end - q >= 8; q += 8) {
		memcpy(&w, q, 8);
		if ((hit = word_json_special(w))) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return q + (__builtin_ctzll(hit) >> 3);
#else
			break;
#endif
		}
	}
	while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
		q++;
	return q;
}

/* f->p is just past the opening quote. Plain strings are returned in place. */
static bool fj_string(fast_json *f, const char **out, size_t *outlen)
{
	const char *s = f->p, *q = fj_plain(s, f->end);
	if (q < f->end && *q == '"') {
		*out = s;
		*outlen = (size_t)(q - s);
		f->p = q + 1;
		return true;
	}
	size_t n = 0;
	/* plain runs copied at once, each followed by an escape (or the closing quote) */
	for (;;) {
		q = fj_plain(f->p, f->end);
		memcpy(f->buf + n, f->p, (size_t)(q - f->p));
		n += (size_t)(q - f->p);
		f->p = q;
		if (f->p >= f->end)
			return false;
		unsigned char ch = (unsigned char)*f->p++;
		if (ch == '"')
			break;
		if (ch < 0x20)
			return false;
		/* ch is a backslash: the escape */
		if (f->p >= f->end)
			return false;
		ch = (unsigned char)*f->p++;
		uint32_t cp, lo;
		switch (ch) {
		case '"': case '\\': case '/':
			f->buf[n++] = (char)ch;
			continue;
		case 'b': f->buf[n++] = '\b'; continue;
		case 'f': f->buf[n++] = '\f'; continue;
		case 'n': f->buf[n++] = '\n'; continue;
		case 'r': f->buf[n++] = '\r'; continue;
		case 't': f->buf[n++] = '\t'; continue;
		case 'u':
			if (!fj_hex4(f, &cp) || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
				return false;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (f->end - f->p < 2 || f->p[0] != '\\' || f->p[1] != 'u')
					return false;
				f->p += 2;
				if (!fj_hex4(f, &lo) || lo < 0xDC00 || lo > 0xDFFF)
					return false;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			/* a \uXXXX escape is 6 bytes of text and at most 4 of UTF-8: buf keeps up */
			if (cp < 0x80) {
				f->buf[n++] = (char)cp;
			} else if (cp < 0x800) {
				f->buf[n++] = (char)(0xC0 | (cp >> 6));
				f->buf[n++] = (char)(0x80 | (cp & 0x3F));
			} else if (cp < 0x10000) {
				f->buf[n++] = (char)(0xE0 | (cp >> 12));
				f->buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
				f->buf[n++] = (char)(0x80 | (cp & 0x3F));
			} else {
				f->buf[n++] = (char)(0xF0 | (cp >> 18));
				f->buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
				f->buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
				f->buf[n++] = (char)(0x80 | (cp & 0x3F));
			}
			continue;
		default:
			return false;
		}
	}
	*out = f->buf;
	*outlen = n;
	return true;
}

static bool fj_digits(fast_json *f)
{
	const char *s = f->p;
	while (f->p < f->end && *f->p >= '0' && *f->p <= '9')
		f->p++;
	return f->p > s;
}

/* jansson's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static json_t *fj_number(fast_json *f)
{
	const char *s = f->p;
	bool real = false;
	char tmp[64];
	if (f->p < f->end && *f->p == '-')
		f->p++;
	if (f->p < f->end && *f->p == '0')
		f->p++;
	else if (!fj_digits(f))
		return NULL;
	if (f->p < f->end && *f->p == '.') {
		f->p++;
		real = true;
		if (!fj_digits(f))
			return NULL;
	}
	if (f->p < f->end && (*f->p == 'e' || *f->p == 'E')) {
		f->p++;
		real = true;
		if (f->p < f->end && (*f->p == '+' || *f->p == '-'))
			f->p++;
		if (!fj_digits(f))
			return NULL;
	}
	size_t n = (size_t)(f->p - s);
	if (n >= sizeof tmp)
		return NULL; /* rare: jansson takes it */
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	errno = 0;
	if (!real) {
		long long v = strtoll(tmp, NULL, 10);
		return errno ? NULL : json_integer(v);
	}
	double d = strtod(tmp, NULL);
	if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
		return NULL;
	return json_real(d);
}

static bool fj_word(fast_json *f, const char *w, size_t n)
{
	if ((size_t)(f->end - f->p) < n || memcmp(f->p, w, n))
		return false;
	f->p += n;
	/* jansson reads a run of letters as one token: "truex" is not "true" */
	return f->p >= f->end || !((*f->p >= 'a' && *f->p <= 'z') || (*f->p >= 'A' && *f->p <= 'Z'));
}

static json_t *fj_value(fast_json *f)
{
	json_t *v = NULL, *item = NULL;
	const char *s;
	size_t n;
	fj_space(f);
	if (f->p >= f->end)
		return NULL;
	switch (*f->p) {
	case '{':
		f->p++;
		if (!fj_count(f, true) || !(v = json_object()))
			return NULL;
		fj_space(f);
		if (f->p < f->end && *f->p == '}') {
			f->p++;
			f->depth--;
			return v;
		}
		for (;;) {
			fj_space(f);
			if (f->p >= f->end || *f->p != '"')
				goto fail;
			f->p++;
			if (!fj_string(f, &s, &n))
				goto fail;
			/* a key with escapes sits in buf, which the value may reuse: copy it */
			char *copy = s == f->buf ? strndup(s, n) : NULL;
			const char *key = copy ? copy : s;
			if (s == f->buf && !copy)
				goto fail;
			fj_space(f);
			if (f->p >= f->end || *f->p != ':') {
				free(copy);
				goto fail;
			}
			f->p++;
			item = fj_value(f);
			/* a duplicate key replaces the value and leaves the size: json_loadb's verdict */
			size_t size = json_object_size(v);
			int bad = !item || json_object_setn_new_nocheck(v, key, n, item) || json_object_size(v) == size;
			free(copy);
			if (bad)
				goto fail;
			fj_space(f);
			if (f->p < f->end && *f->p == ',') {
				f->p++;
				if (!fj_count(f, false))
					goto fail;
				continue;
			}
			if (f->p < f->end && *f->p == '}') {
				f->p++;
				f->depth--;
				return v;
			}
			goto fail;
		}
	case '[':
		f->p++;
		if (!fj_count(f, true) || !(v = json_array()))
			return NULL;
		fj_space(f);
		if (f->p < f->end && *f->p == ']') {
			f->p++;
			f->depth--;
			return v;
		}
		for (;;) {
			item = fj_value(f);
			if (!item || json_array_append_new(v, item))
				goto fail;
			fj_space(f);
			if (f->p < f->end && *f->p == ',') {
				f->p++;
				if (!fj_count(f, false))
					goto fail;
				continue;
			}
			if (f->p < f->end && *f->p == ']') {
				f->p++;
				f->depth--;
				return v;
			}
			goto fail;
		}
	case '"':
		f->p++;
		return fj_string(f, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
	case 't':
		return fj_word(f, "true", 4) ? json_true() : NULL;
	case 'f':
		return fj_word(f, "false", 5) ? json_false() : NULL;
	case 'n':
		return fj_word(f, "null", 4) ? json_null() : NULL;
	default:
		if (*f->p == '-' || (*f->p >= '0' && *f->p <= '9'))
			return fj_number(f);
		return NULL;
	}
fail:
	json_decref(v);
	return NULL;
}

/* fast_json_load within nesting and value-count bounds (NULL past them). */
static json_t *fj_load(const char *text, size_t len, size_t max_depth, size_t max_values)
{
	fast_json f = {text, text + len, malloc(len + 1), 0, 1, max_depth, max_values};
	if (!f.buf)
		return NULL;
	json_t *root = fj_value(&f);
	fj_space(&f);
	/* like json_loadb without JSON_DECODE_ANY: only an object or array at the top */
	if (root && (f.p != f.end || !(json_is_object(root) || json_is_array(root)))) {
		json_decref(root);
		root = NULL;
	}
	free(f.buf);
	return root;
}

json_t *fast_json_load(const char *text, size_t len)
{
	return fj_load(text, len, SIZE_MAX, SIZE_MAX);
}

static int load_json(const char *text, size_t len, const char *source, json_t **out, char *err)
{
	json_error_t je;
	/* The fast reader keeps the prescan's bounds itself: the prescan (and its message) is
	 * needed only for a text it does not take, before json_loadb reads it. */
	*out = fj_load(text, len, PB_CONTRACT_MAX_DEPTH, PB_CONTRACT_MAX_NODES);
	if (*out)
		return PB_OK;
	int rc = json_prescan(text, len, source, err);
	if (rc)
		return rc;
	*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (*out)
		return PB_OK;
	if (json_error_code(&je) == json_error_out_of_memory)
		return pb_err(err, PB_ENOMEM, "%s: out of memory", source);
	return pb_err(err, PB_EINVAL, "%s:%d:%d: JSON syntax error: %s", source, je.line, je.column, je.text);
}

/* ---- the tree's memory ------------------------------------------------------------
 * A contract's JSON or YAML tree lives only while contract_parse reads it into the C
 * structures, and jansson makes several allocations per value (the value, an object's
 * buckets and pairs, a string's copy). While this thread parses, jansson's allocations come
 * from blocks of a thread-local arena, and the blocks are unmapped at the end instead of
 * freeing the tree value by value: 200 x 40 spent a fifth of its reading in malloc and free,
 * and the freed values left the heap fragmented for the render that follows. Other threads
 * (and this one outside contract_parse) allocate with malloc as before; nothing allocated in
 * the arena outlives contract_parse (the structures hold copies). */
#define TREE_BLOCK_MIN (1u << 20)

typedef struct tree_block {
	struct tree_block *next;
	size_t size, used;          /* of data */
	max_align_t data[];
} tree_block;

static _Thread_local tree_block *tree_blocks;   /* newest first */
static _Thread_local bool tree_on;              /* this thread is parsing a contract */

static void *tree_malloc(size_t n)
{
	if (!tree_on)
		return malloc(n);
	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	tree_block *b = tree_blocks;
	if (!b || b->size - b->used < n) {
		/* each block twice the last: a few blocks even for the largest contract */
		size_t size = b ? 2 * (b->size + offsetof(tree_block, data)) : TREE_BLOCK_MIN;
		if (size < n + offsetof(tree_block, data))
			size = n + offsetof(tree_block, data);
		void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		b = m;
		b->size = size - offsetof(tree_block, data);
		b->used = 0;
		b->next = tree_blocks;
		tree_blocks = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += n;
	return p;
}

static bool in_tree(const void *p)
{
	for (const tree_block *b = tree_blocks; b; b = b->next)
		if ((const char *)p >= (const char *)b->data && (const char *)p < (const char *)b->data + b->size)
			return true;
	return false;
}

/* A value freed while parsing (a replaced bucket array, a failed branch) stays in its block
 * until the arena goes; anything else is malloc's. */
static void tree_free(void *p)
{
	if (p && tree_on && in_tree(p))
		return;
	free(p);
}

static void tree_install(void)
{
	json_set_alloc_funcs(tree_malloc, tree_free);
}

static void tree_begin(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, tree_install);
	tree_on = true;
}

/* Drops the tree and everything else jansson allocated on this thread since tree_begin. */
static void tree_end(void)
{
	tree_on = false;
	while (tree_blocks) {
		tree_block *b = tree_blocks;
		tree_blocks = b->next;
		munmap(b, b->size + offsetof(tree_block, data));
	}
}

int contract_parse(const char *text, size_t len, const char *source, pb_contract **out, char *err)
{
	json_t *root = NULL;
	rd r = {0};
	int rc;
	*out = NULL;
	source = source ? source : "contract";
	r.source = source;
	r.err = err;
	size_t skip = 0, k;
	if (!text) {
		rc = pb_err(err, PB_EINVAL, "%s: no contract text", source);
		goto out;
	}
	if (len > PB_CONTRACT_MAX_BYTES) {
		rc = pb_err(err, PB_ELIMIT, "%s: contract is larger than %u bytes", source, PB_CONTRACT_MAX_BYTES);
		goto out;
	}
	if ((rc = check_utf8(text, len, source, err)))
		goto out;
	tree_begin();
	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
		skip = 3; /* byte order mark */
	for (k = skip; k < len && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r' || text[k] == '\n');)
		k++;
	if (k < len && text[k] == '{')
		rc = load_json(text + skip, len - skip, source, &root, err);
	else
		rc = yamltree_load(text + skip, len - skip, source, &root, err);
	if (rc)
		goto out;

	r.c = calloc(1, sizeof *r.c);
	if (!r.c) {
		rc = oom(&r);
		goto out;
	}
	if (json_is_null(root)) {
		rc = pb_err(err, PB_EINVAL, "%s: empty document, not an ODCS contract", source);
		goto out;
	}
	if (!json_is_object(root)) {
		rc = pb_err(err, PB_EINVAL, "%s: not an ODCS contract: the document is %s, not a mapping", source,
			    kind_name(root));
		goto out;
	}
	switch (detect_major(root)) {
	case 3:
		rc = read_v3(&r, root);
		break;
	case 2:
		rc = read_v2(&r, root);
		break;
	default:
		rc = pb_err(err, PB_EINVAL, "%s: not an ODCS contract (it has neither \"schema\" nor \"dataset\")",
			    source);
	}
out:
	tree_end();   /* root and every value under it */
	named_free(r.by_name, r.nby_name);
	named_free(r.by_id, r.nby_id);
	if (rc) {
		if (err)
			clean_line(err);
		contract_free(r.c);
		return rc;
	}
	*out = r.c;
	return PB_OK;
}

int contract_load(const char *path, pb_contract **out, char *err)
{
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	int rc = read_file(path, PB_CONTRACT_MAX_BYTES, &text, &len, err);
	if (!rc)
		rc = contract_parse(text, len, path, out, err);
	free(text);
	return rc;
}

static void column_release(pb_column *col)
{
	free(col->name);
	free(col->physical_name);
	free(col->logical_type);
	free(col->physical_type);
	free(col->description);
	free(col->business_name);
	free(col->classification);
	free(col->id);
}

void contract_free(pb_contract *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ntables; i++) {
		pb_table *t = &c->tables[i];
		for (size_t j = 0; j < t->ncolumns; j++)
			column_release(&t->columns[j]);
		free(t->columns);
		free(t->name);
		free(t->physical_name);
		free(t->physical_type);
		free(t->description);
		free(t->business_name);
		free(t->id);
		free(t->storage_mode);
	}
	free(c->tables);
	for (size_t i = 0; i < c->nservers; i++) {
		pb_server *s = &c->servers[i];
		free(s->name);
		free(s->type);
		kv_free(s->fields, s->nfields);
		kv_free(s->custom, s->ncustom);
	}
	free(c->servers);
	for (size_t i = 0; i < c->nrelationships; i++) {
		pb_relationship *rel = &c->relationships[i];
		free(rel->from_table);
		free(rel->from_column);
		free(rel->to_table);
		free(rel->to_column);
		free(rel->cardinality);
	}
	free(c->relationships);
	for (size_t i = 0; i < c->nwarnings; i++)
		free(c->warnings[i]);
	free(c->warnings);
	free(c->id);
	free(c->name);
	free(c->version);
	free(c->api_version);
	free(c->status);
	free(c->domain);
	free(c->description);
	free(c);
}

/* ---- output ---------------------------------------------------------------------------- */

/* Each setter returns nonzero on failure; callers OR them together. */
static int set_str(json_t *o, const char *key, const char *v)
{
	return v ? json_object_set_new(o, key, json_string(v)) : 0;
}

static int set_int(json_t *o, const char *key, long long v)
{
	return json_object_set_new(o, key, json_integer(v));
}

static int set_bool(json_t *o, const char *key, bool v)
{
	return json_object_set_new(o, key, json_boolean(v));
}

static json_t *kv_object(const pb_kv *kv, size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < n; i++)
		if (set_str(o, kv[i].key, kv[i].value)) {
			json_decref(o);
			return NULL;
		}
	return o;
}

static json_t *column_json(const pb_column *col)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int bad = set_str(o, "name", col->name) | set_str(o, "physical_name", col->physical_name) |
		  set_str(o, "logical_type", col->logical_type) | set_str(o, "physical_type", col->physical_type) |
		  set_str(o, "description", col->description) | set_str(o, "business_name", col->business_name) |
		  set_str(o, "classification", col->classification) | set_bool(o, "required", col->required) |
		  set_bool(o, "unique", col->unique) | set_bool(o, "primary_key", col->primary_key) |
		  set_str(o, "id", col->id);
	if (col->primary_key_position > 0)
		bad |= set_int(o, "primary_key_position", col->primary_key_position);
	if (col->precision >= 0)
		bad |= set_int(o, "precision", col->precision);
	if (col->scale >= 0)
		bad |= set_int(o, "scale", col->scale);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *table_json(const pb_table *t)
{
	json_t *o = json_object(), *cols = json_array();
	int bad = !o || !cols;
	for (size_t j = 0; !bad && j < t->ncolumns; j++)
		bad = json_array_append_new(cols, column_json(&t->columns[j]));
	if (!bad)
		bad = set_str(o, "name", t->name) | set_str(o, "physical_name", t->physical_name) |
		      set_str(o, "physical_type", t->physical_type) | set_str(o, "description", t->description) |
		      set_str(o, "business_name", t->business_name) | set_str(o, "id", t->id) |
		      set_str(o, "storage_mode", t->storage_mode) | json_object_set(o, "columns", cols);
	json_decref(cols);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *server_json(const pb_server *s)
{
	json_t *o = json_object();
	int bad = !o || set_str(o, "name", s->name) | set_str(o, "type", s->type) |
			json_object_set_new(o, "fields", kv_object(s->fields, s->nfields)) |
			json_object_set_new(o, "custom", kv_object(s->custom, s->ncustom));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *relationship_json(const pb_relationship *rel)
{
	json_t *o = json_object();
	int bad = !o || set_str(o, "from_table", rel->from_table) | set_str(o, "from_column", rel->from_column) |
			set_str(o, "to_table", rel->to_table) | set_str(o, "to_column", rel->to_column) |
			set_str(o, "cardinality", rel->cardinality);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *contract_to_json(const pb_contract *c)
{
	if (!c)
		return NULL;
	json_t *o = json_object(), *tables = json_array(), *servers = json_array(), *rels = json_array(),
	       *warnings = json_array();
	int bad = !o || !tables || !servers || !rels || !warnings;
	for (size_t i = 0; !bad && i < c->ntables; i++)
		bad = json_array_append_new(tables, table_json(&c->tables[i]));
	for (size_t i = 0; !bad && i < c->nservers; i++)
		bad = json_array_append_new(servers, server_json(&c->servers[i]));
	for (size_t i = 0; !bad && i < c->nrelationships; i++)
		bad = json_array_append_new(rels, relationship_json(&c->relationships[i]));
	for (size_t i = 0; !bad && i < c->nwarnings; i++)
		bad = json_array_append_new(warnings, json_string(c->warnings[i]));
	if (!bad)
		bad = set_str(o, "id", c->id) | set_str(o, "name", c->name) | set_str(o, "version", c->version) |
		      set_str(o, "api_version", c->api_version) | set_int(o, "odcs_major", c->odcs_major) |
		      set_str(o, "status", c->status) | set_str(o, "domain", c->domain) |
		      set_str(o, "description", c->description) | json_object_set(o, "tables", tables) |
		      json_object_set(o, "servers", servers) | json_object_set(o, "relationships", rels) |
		      json_object_set(o, "warnings", warnings);
	json_decref(tables);
	json_decref(servers);
	json_decref(rels);
	json_decref(warnings);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

const pb_server *contract_server(const pb_contract *c, const char *name)
{
	if (!c || !c->nservers)
		return NULL;
	if (!name)
		return &c->servers[0];
	for (size_t i = 0; i < c->nservers; i++)
		if (c->servers[i].name && !strcmp(c->servers[i].name, name))
			return &c->servers[i];
	return NULL;
}

const char *server_field(const pb_server *s, const char *key)
{
	if (!s || !key)
		return NULL;
	const char *v = kv_get(s->fields, s->nfields, key);
	return v ? v : kv_get(s->custom, s->ncustom, key);
}
