/* Push rows as Power BI takes them: the table schema, every value checked and converted to its
 * column's JSON type, and the streaming readers of JSON arrays, NDJSON and CSV (core/lang/push_formats.h). */
#include "core/lang/push_formats.h"

#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "msapi/powerbi.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

/* ======================================================================== schema */

static const char *const type_names[] = { "Int64", "Double", "Decimal", "Boolean", "Datetime", "String" };

const char *push_type_name(push_type t)
{
	return (unsigned)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "String";
}

int push_type_parse(const char *s, push_type *out, char *err)
{
	for (size_t i = 0; s && i < sizeof type_names / sizeof type_names[0]; i++)
		if (str_ieq(s, type_names[i])) {
			*out = (push_type)i;
			return 0;
		}
	if (s && str_ieq(s, "bool")) {
		*out = PUSH_BOOLEAN;
		return 0;
	}
	return pb_err(err, PB_EINVAL, "dataType '%.60s' is not one of Int64, Double, Decimal, Boolean, Datetime, String",
		      s ? s : "");
}

/* Puts prefix before the message already in err (err cannot be both source and target). */
int push_wrap_err(char *err, int rc, const char *prefix)
{
	char sub[PB_ERR_MAX];
	xsnprintf(sub, sizeof sub, "%s", err);
	return pb_err(err, rc, "%s: %s", prefix, sub);
}

static size_t utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

int push_check_name(const char *what, const char *name, char *err)
{
	if (!name || !*name)
		return pb_err(err, PB_EINVAL, "%s needs a non-empty name", what);
	size_t len = strlen(name);
	if (!utf8_valid(name, len))
		return pb_err(err, PB_EINVAL, "%s name is not UTF-8", what);
	if (utf8_chars(name, len) > PB_PUSH_NAME_MAX_CHARS)
		return pb_err(err, PB_EINVAL, "%s name '%.40s…' is longer than %d characters", what, name,
			      PB_PUSH_NAME_MAX_CHARS);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20)
			return pb_err(err, PB_EINVAL, "%s name contains a control character", what);
	return 0;
}

void push_schema_release(push_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ntables; i++) {
		for (size_t k = 0; k < s->tables[i].ncols; k++)
			free(s->tables[i].cols[k].name);
		free(s->tables[i].cols);
		free(s->tables[i].name);
	}
	free(s->tables);
	s->tables = NULL;
	s->ntables = 0;
}

static int parse_table(const json_t *jt, size_t idx, push_table *t, char *err)
{
	static const char *const keys[] = { "name", "columns", NULL };
	static const char *const col_keys[] = { "name", "dataType", NULL };
	char what[64];
	int rc;
	xsnprintf(what, sizeof what, "tables[%zu]", idx);
	if (!json_is_object(jt))
		return pb_err(err, PB_EINVAL, "%s must be an object {\"name\", \"columns\"}", what);
	if ((rc = json_body_only_keys(jt, keys, what, err)))
		return rc;
	const char *name = json_string_value(json_object_get(jt, "name"));
	if ((rc = push_check_name("table", name, err)))
		return push_wrap_err(err, rc, what);
	const json_t *cols = json_object_get(jt, "columns");
	if (!json_is_array(cols) || !json_array_size(cols))
		return pb_err(err, PB_EINVAL, "table '%s' needs a non-empty \"columns\" array", name);
	if (json_array_size(cols) > PB_PUSH_MAX_COLUMNS)
		return pb_err(err, PB_EINVAL, "table '%s' has %zu columns; Power BI allows at most %d", name,
			      json_array_size(cols), PB_PUSH_MAX_COLUMNS);
	if (!(t->name = xstrdup(name)) || !(t->cols = calloc(json_array_size(cols), sizeof *t->cols)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t k = 0; k < json_array_size(cols); k++) {
		const json_t *jc = json_array_get(cols, k);
		if (!json_is_object(jc))
			return pb_err(err, PB_EINVAL, "table '%s' column %zu must be an object {\"name\", \"dataType\"}",
				      name, k + 1);
		char cwhat[PB_ERR_MAX / 2];
		xsnprintf(cwhat, sizeof cwhat, "table '%.80s' column %zu", name, k + 1);
		if ((rc = json_body_only_keys(jc, col_keys, cwhat, err)))
			return rc;
		const char *cname = json_string_value(json_object_get(jc, "name"));
		if ((rc = push_check_name("column", cname, err)))
			return push_wrap_err(err, rc, cwhat);
		for (size_t j = 0; j < t->ncols; j++)
			if (str_ieq(t->cols[j].name, cname))
				return pb_err(err, PB_EINVAL, "table '%s' has column '%s' twice", name, cname);
		push_type ty;
		if ((rc = push_type_parse(json_string_value(json_object_get(jc, "dataType")), &ty, err))) {
			char named[PB_ERR_MAX];
			xsnprintf(named, sizeof named, "%s ('%s')", cwhat, cname);
			return push_wrap_err(err, rc, named);
		}
		if (!(t->cols[k].name = xstrdup(cname)))
			return pb_err(err, PB_ENOMEM, "out of memory");
		t->cols[k].type = ty;
		t->ncols = k + 1;
	}
	return 0;
}

int push_schema_parse(const json_t *tables, push_schema *out, char *err)
{
	memset(out, 0, sizeof *out);
	int rc = 0;
	if (!json_is_array(tables) || !json_array_size(tables))
		return pb_err(err, PB_EINVAL, "\"tables\" must be a non-empty array");
	if (json_array_size(tables) > PB_PUSH_MAX_TABLES)
		return pb_err(err, PB_EINVAL, "%zu tables; Power BI allows at most %d in a push dataset",
			      json_array_size(tables), PB_PUSH_MAX_TABLES);
	if (!(out->tables = calloc(json_array_size(tables), sizeof *out->tables)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(tables); i++) {
		out->ntables = i + 1;
		if ((rc = parse_table(json_array_get(tables, i), i, &out->tables[i], err)))
			goto out;
		for (size_t j = 0; j < i; j++)
			if (str_ieq(out->tables[j].name, out->tables[i].name)) {
				rc = pb_err(err, PB_EINVAL, "table '%s' is defined twice", out->tables[i].name);
				goto out;
			}
	}
out:
	if (rc)
		push_schema_release(out);
	return rc;
}

json_t *push_schema_json(const push_schema *s)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < s->ntables; i++) {
		json_t *cols = json_array();
		for (size_t k = 0; cols && k < s->tables[i].ncols; k++)
			if (json_array_append_new(cols, json_pack("{s:s, s:s}", "name", s->tables[i].cols[k].name, "dataType",
							   push_type_name(s->tables[i].cols[k].type)))) {
				json_decref(cols);
				cols = NULL;
			}
		if (!cols || json_array_append_new(arr, json_pack("{s:s, s:o}", "name", s->tables[i].name, "columns", cols))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

const push_table *push_schema_table(const push_schema *s, const char *name)
{
	for (size_t i = 0; name && i < s->ntables; i++)
		if (str_ieq(s->tables[i].name, name))
			return &s->tables[i];
	return NULL;
}

bool push_schema_equal(const push_schema *a, const push_schema *b)
{
	if (a->ntables != b->ntables)
		return false;
	for (size_t i = 0; i < a->ntables; i++) {
		const push_table *x = &a->tables[i], *y = &b->tables[i];
		if (strcmp(x->name, y->name) || x->ncols != y->ncols)
			return false;
		for (size_t k = 0; k < x->ncols; k++)
			if (strcmp(x->cols[k].name, y->cols[k].name) || x->cols[k].type != y->cols[k].type)
				return false;
	}
	return true;
}

/* ======================================================================== values */

int push_format_from_media_type(const char *mt, push_format *out, char *err)
{
	if (mt && !strcmp(mt, "application/json"))
		*out = PUSH_FMT_JSON;
	else if (mt && (!strcmp(mt, "application/x-ndjson") || !strcmp(mt, "application/ndjson") ||
			!strcmp(mt, "application/jsonl") || !strcmp(mt, "application/x-jsonlines")))
		*out = PUSH_FMT_NDJSON;
	else if (mt && !strcmp(mt, "text/csv"))
		*out = PUSH_FMT_CSV;
	else
		return pb_err(err, PB_EINVAL, "Content-Type '%.60s': rows must be application/json (an array), "
			      "application/x-ndjson or text/csv", mt ? mt : "");
	return 0;
}

static int add_json_string(sbuf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	if (sbuf_addc(out, '"'))
		return -1;
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (sbuf_add(out, s + run, i - run))
			return -1;
		run = i + 1;
		char esc[7] = { '\\', 0 };
		size_t n = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		if (sbuf_add(out, esc, n))
			return -1;
	}
	if (sbuf_add(out, s + run, len - run) || sbuf_addc(out, '"'))
		return -1;
	return 0;
}

/* ---- numbers ----
 * A number's text: [+|-]digits[.digits][(e|E)[+|-]digits], at least one mantissa digit. Ranges
 * are checked on the digits themselves (no floating-point rounding decides), and the value is
 * sent as strict JSON (RFC 8259 §6). */
typedef struct num_text {
	const char *s;
	size_t len;
	bool neg;
	bool json;                /* already strict JSON: sent as it is */
	bool zero;                /* every digit is 0 */
	bool integral;            /* no non-zero digit below the units */
	size_t int_at, int_len;   /* digits before the point */
	size_t frac_at, frac_len; /* digits after it */
	size_t exp_at;            /* the exponent part ("e+3"), len when there is none */
	long exp;                 /* its value, saturated at +-NUM_EXP_MAX */
	long top;                 /* power of ten of the first non-zero digit */
} num_text;

/* Exponents past this are out of every column type's range however the digits read. */
#define NUM_EXP_MAX 100000L

static bool is_digit(char c)
{
	return (unsigned)(c - '0') < 10u;
}

static bool num_scan(const char *s, size_t len, num_text *n)
{
	size_t i = 0;
	bool plus = false, point = false, eneg = false;
	long first = LONG_MIN, last = 0;
	memset(n, 0, sizeof *n);
	n->s = s;
	n->len = len;
	if (i < len && (s[i] == '-' || s[i] == '+')) {
		n->neg = s[i] == '-';
		plus = !n->neg;
		i++;
	}
	n->int_at = i;
	while (i < len && is_digit(s[i]))
		i++;
	n->int_len = i - n->int_at;
	if (i < len && s[i] == '.') {
		point = true;
		n->frac_at = ++i;
		while (i < len && is_digit(s[i]))
			i++;
		n->frac_len = i - n->frac_at;
	}
	if (!n->int_len && !n->frac_len)
		return false;
	n->exp_at = i;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t d;
		if (++i < len && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		for (d = i; i < len && is_digit(s[i]); i++)
			if (n->exp < NUM_EXP_MAX)
				n->exp = n->exp * 10 + (s[i] - '0');
		if (i == d)
			return false;
		if (eneg)
			n->exp = -n->exp;
	}
	if (i != len)
		return false;
	n->json = !plus && n->int_len && (n->int_len == 1 || s[n->int_at] != '0') && (!point || n->frac_len);
	for (size_t k = 0; k < n->int_len; k++)
		if (s[n->int_at + k] != '0') {
			last = (long)(n->int_len - 1 - k);
			if (first == LONG_MIN)
				first = last;
		}
	for (size_t k = 0; k < n->frac_len; k++)
		if (s[n->frac_at + k] != '0') {
			last = -(long)(k + 1);
			if (first == LONG_MIN)
				first = last;
		}
	n->zero = first == LONG_MIN;
	n->top = n->zero ? 0 : first + n->exp;
	n->integral = n->zero || last + n->exp >= 0;
	return true;
}

/* The digit of the value's power of ten p ('0' outside the written digits). */
static char num_digit(const num_text *n, long p)
{
	long q = p - n->exp; /* its power in the mantissa as written */
	if (q >= 0 && (size_t)q < n->int_len)
		return n->s[n->int_at + n->int_len - 1 - (size_t)q];
	if (q < 0 && (size_t)(-q) <= n->frac_len)
		return n->s[n->frac_at + (size_t)(-q) - 1];
	return '0';
}

/* Appends the number as strict JSON: no '+' sign, no leading zeros, no empty fraction. */
static int num_add_json(const num_text *n, sbuf *out)
{
	if (n->json)
		return sbuf_add(out, n->s, n->len);
	size_t k = 0;
	while (k + 1 < n->int_len && n->s[n->int_at + k] == '0')
		k++;
	if ((n->neg && sbuf_addc(out, '-')) ||
	    (n->int_len ? sbuf_add(out, n->s + n->int_at + k, n->int_len - k) : sbuf_addc(out, '0')) ||
	    (n->frac_len && (sbuf_addc(out, '.') || sbuf_add(out, n->s + n->frac_at, n->frac_len))))
		return -1;
	return sbuf_add(out, n->s + n->exp_at, n->len - n->exp_at);
}

/* Power BI's ranges (api-dataset-properties: "Int64.MaxValue and Int64.MinValue not allowed",
 * "Double.MaxValue and Double.MinValue values not allowed. NaN not supported", "Decimal
 * precision=28, scale=4"). */
static int out_of_range(char *err, push_type t, const char *s, size_t len)
{
	static const char *const why[] = {
		[PUSH_INT64] = "Power BI takes -9223372036854775807 to 9223372036854775806",
		[PUSH_DOUBLE] = "Power BI takes finite numbers smaller in magnitude than 1.7976931348623157e308",
		[PUSH_DECIMAL] = "precision 28, scale 4: Power BI takes at most 24 digits before the decimal point",
	};
	return pb_err(err, PB_EINVAL, "'%.*s%s' is out of range for %s (%s)", (int)(len > 60 ? 60 : len), s,
		      len > 60 ? "…" : "", push_type_name(t), t <= PUSH_DECIMAL ? why[t] : "");
}

/* Int64: a whole number (42, 42.0, 4.2e1) within Power BI's range, sent as plain digits. */
static int convert_int64(const num_text *n, sbuf *out, char *err)
{
	char digits[24];
	size_t k = 0;
	if (!n->integral)
		return pb_err(err, PB_EINVAL, "'%.*s%s' is not a valid Int64 (not a whole number)",
			      (int)(n->len > 60 ? 60 : n->len), n->s, n->len > 60 ? "…" : "");
	if (n->top > 18)
		return out_of_range(err, PUSH_INT64, n->s, n->len);
	if (n->neg && !n->zero)
		digits[k++] = '-';
	if (n->zero)
		digits[k++] = '0';
	else
		for (long p = n->top; p >= 0; p--)
			digits[k++] = num_digit(n, p);
	/* 19 digits: compare with Int64.MaxValue (excluded) and -Int64.MaxValue (the lowest allowed) */
	if (n->top == 18 && memcmp(digits + (n->neg ? 1 : 0), n->neg ? "9223372036854775807" : "9223372036854775806",
				   19) > 0)
		return out_of_range(err, PUSH_INT64, n->s, n->len);
	return sbuf_add(out, digits, k) ? pb_err(err, PB_ENOMEM, "a chunk is too large") : 0;
}

/* Double and Decimal: finite and within range; the text is kept (no rounding on the way). */
static int convert_real(push_type t, const num_text *n, sbuf *out, char *err)
{
	if (!n->zero && n->top >= (t == PUSH_DECIMAL ? 24 : 309))
		return out_of_range(err, t, n->s, n->len);
	if (t == PUSH_DOUBLE && !n->zero && n->top == 308) {
		/* 1e308 .. 9.99e308: only the value tells whether it passes Double.MaxValue */
		char *copy = xstrndup(n->s, n->len);
		if (!copy)
			return pb_err(err, PB_ENOMEM, "out of memory");
		double d = strtod(copy, NULL);
		free(copy);
		if (!isfinite(d) || fabs(d) >= DBL_MAX)
			return out_of_range(err, t, n->s, n->len);
	}
	return num_add_json(n, out) ? pb_err(err, PB_ENOMEM, "a chunk is too large") : 0;
}

static bool all_digits(const char *s, size_t a, size_t b)
{
	if (a >= b)
		return false;
	for (size_t i = a; i < b; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static int two_digits(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/* YYYY-MM-DD[(T| )HH:MM[:SS[.f+]]][Z|(+|-)HH:MM], a date that exists (year 0001 to 9999, as .NET's
 * DateTime, which Power BI parses with: no 30 February, no second 60, offsets up to 14:00). */
static bool datetime_text(const char *s, size_t len)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (len < 10 || !all_digits(s, 0, 4) || s[4] != '-' || !all_digits(s, 5, 7) || s[7] != '-' ||
	    !all_digits(s, 8, 10))
		return false;
	int year = two_digits(s) * 100 + two_digits(s + 2), mon = two_digits(s + 5), day = two_digits(s + 8);
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (!year || mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] || (mon == 2 && day == 29 && !leap))
		return false;
	size_t i = 10;
	if (i == len)
		return true;
	if ((s[i] != 'T' && s[i] != ' ') || len < i + 6 || !all_digits(s, i + 1, i + 3) || s[i + 3] != ':' ||
	    !all_digits(s, i + 4, i + 6))
		return false;
	if (two_digits(s + i + 1) > 23 || two_digits(s + i + 4) > 59)
		return false;
	i += 6;
	if (i + 3 <= len && s[i] == ':' && all_digits(s, i + 1, i + 3)) {
		if (two_digits(s + i + 1) > 59)
			return false;
		i += 3;
		if (i < len && s[i] == '.') {
			size_t d = ++i;
			while (i < len && isdigit((unsigned char)s[i]))
				i++;
			if (i == d)
				return false;
		}
	}
	if (i == len)
		return true;
	if (s[i] == 'Z' && i + 1 == len)
		return true;
	return (s[i] == '+' || s[i] == '-') && i + 6 == len && all_digits(s, i + 1, i + 3) && s[i + 3] == ':' &&
	       all_digits(s, i + 4, i + 6) && two_digits(s + i + 4) <= 59 &&
	       two_digits(s + i + 1) * 60 + two_digits(s + i + 4) <= 14 * 60;
}

static void trim(const char **s, size_t *len)
{
	while (*len && isspace((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

static int bad_value(char *err, push_type t, const char *s, size_t len)
{
	return pb_err(err, PB_EINVAL, "'%.*s%s' is not a valid %s", (int)(len > 60 ? 60 : len), s, len > 60 ? "…" : "",
		      push_type_name(t));
}

int push_convert_text(push_type t, const char *s, size_t len, bool quoted, sbuf *out, char *err)
{
	if (!utf8_valid(s, len))
		return pb_err(err, PB_EINVAL, "the value is not UTF-8");
	if (t == PUSH_STRING) {
		if (!len && !quoted)
			return sbuf_adds(out, "null") ? pb_err(err, PB_ENOMEM, "a chunk is too large") : 0;
		if (utf8_chars(s, len) > PB_PUSH_STRING_MAX_CHARS)
			return pb_err(err, PB_EINVAL, "the value has %zu characters; Power BI allows at most %d",
				      utf8_chars(s, len), PB_PUSH_STRING_MAX_CHARS);
		return add_json_string(out, s, len) ? pb_err(err, PB_ENOMEM, "a chunk is too large") : 0;
	}
	trim(&s, &len);
	if (!len)
		return sbuf_adds(out, "null") ? pb_err(err, PB_ENOMEM, "a chunk is too large") : 0;
	num_text n;
	switch (t) {
	case PUSH_INT64:
	case PUSH_DOUBLE:
	case PUSH_DECIMAL:
		if (!num_scan(s, len, &n))
			return bad_value(err, t, s, len);
		return t == PUSH_INT64 ? convert_int64(&n, out, err) : convert_real(t, &n, out, err);
	case PUSH_BOOLEAN: {
		bool v;
		if ((len == 4 && !strncasecmp(s, "true", 4)) || (len == 1 && *s == '1'))
			v = true;
		else if ((len == 5 && !strncasecmp(s, "false", 5)) || (len == 1 && *s == '0'))
			v = false;
		else
			return bad_value(err, t, s, len);
		return sbuf_adds(out, v ? "true" : "false") ? pb_err(err, PB_ENOMEM, "a chunk is too large") : 0;
	}
	case PUSH_DATETIME:
		if (!datetime_text(s, len))
			return pb_err(err, PB_EINVAL, "'%.*s' is not a Datetime (expected YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM])",
				      (int)(len > 60 ? 60 : len), s);
		return add_json_string(out, s, len) ? pb_err(err, PB_ENOMEM, "a chunk is too large") : 0;
	case PUSH_STRING:
		break;
	}
	return pb_err(err, PB_EINTERNAL, "unknown column type");
}

/* A value from a JSON row: strings go through the text converter; native values must fit. */
static int convert_json_value(push_type t, const json_t *v, sbuf *out, char *err)
{
	char num[64];
	switch (json_typeof(v)) {
	case JSON_NULL:
		return sbuf_adds(out, "null") ? pb_err(err, PB_ENOMEM, "a chunk is too large") : 0;
	case JSON_STRING:
		return push_convert_text(t, json_string_value(v), json_string_length(v), true, out, err);
	case JSON_INTEGER:
		xsnprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (t == PUSH_BOOLEAN && json_integer_value(v) != 0 && json_integer_value(v) != 1)
			return pb_err(err, PB_EINVAL, "%s is not a valid Boolean", num);
		return t == PUSH_STRING ? (add_json_string(out, num, strlen(num)) ? PB_ENOMEM : 0)
					: push_convert_text(t, num, strlen(num), false, out, err);
	case JSON_REAL:
		if (t == PUSH_BOOLEAN || t == PUSH_DATETIME)
			return pb_err(err, PB_EINVAL, "a number is not a valid %s", push_type_name(t));
		xsnprintf(num, sizeof num, "%.17g", json_real_value(v));
		/* read as a double, a whole number past 2^53 may have changed on the way in */
		if (t == PUSH_INT64 && fabs(json_real_value(v)) > 9007199254740992.0)
			return pb_err(err, PB_EINVAL, "%s, written with a fraction or an exponent, is too large to be read "
				      "exactly as an Int64; write it as plain digits", num);
		return t == PUSH_STRING ? (add_json_string(out, num, strlen(num)) ? PB_ENOMEM : 0)
					: push_convert_text(t, num, strlen(num), false, out, err);
	case JSON_TRUE:
	case JSON_FALSE:
		if (t == PUSH_BOOLEAN || t == PUSH_STRING)
			return sbuf_adds(out, t == PUSH_BOOLEAN ? (json_is_true(v) ? "true" : "false")
								 : (json_is_true(v) ? "\"true\"" : "\"false\""))
				       ? PB_ENOMEM
				       : 0;
		return pb_err(err, PB_EINVAL, "true/false is not a valid %s", push_type_name(t));
	default:
		return pb_err(err, PB_EINVAL, "objects and arrays are not values of a %s column", push_type_name(t));
	}
}

/* ======================================================================== reader */

enum csv_state { CSV_FIELD_START, CSV_UNQUOTED, CSV_QUOTED, CSV_QUOTE_SEEN, CSV_AFTER_CR };
enum json_state { JA_BEFORE, JA_VALUE, JA_OBJECT, JA_AFTER_VALUE, JA_DONE };

struct push_reader {
	const push_table *t;
	push_format fmt;
	size_t chunk_rows;
	push_chunk_fn fn;
	void *ctx;
	size_t rows;              /* data rows converted */
	size_t in_chunk;
	sbuf chunk;               /* "[row,row" */
	sbuf line;                /* current record / object / line text */
	char **keys;              /* per column: "\"name\":" */
	/* CSV */
	enum csv_state cs;
	bool have_header;
	size_t *field_start;      /* offsets into line (fields separated by NUL) */
	bool *field_quoted;
	size_t nfields, cap_fields;
	int *col_of_field;        /* header position -> column index */
	size_t nheader;
	bool record_has_data;
	bool started;             /* past a UTF-8 byte order mark (Excel writes one) */
	unsigned bom;             /* bytes of it seen so far */
	/* JSON array */
	enum json_state js;
	int depth;
	bool in_string, escape;
};

static int flush_chunk(push_reader *rd, char *err)
{
	int rc = 0;
	if (!rd->in_chunk)
		return 0;
	if (sbuf_addc(&rd->chunk, ']'))
		return pb_err(err, PB_ENOMEM, "a chunk is too large");
	rc = rd->fn(rd->ctx, sbuf_str(&rd->chunk), rd->chunk.len, rd->in_chunk, err);
	sbuf_reset(&rd->chunk);
	rd->in_chunk = 0;
	return rc;
}

static int row_begin(push_reader *rd, char *err)
{
	if (sbuf_addc(&rd->chunk, rd->in_chunk ? ',' : '[') || sbuf_addc(&rd->chunk, '{'))
		return pb_err(err, PB_ENOMEM, "a chunk is too large");
	return 0;
}

static int row_end(push_reader *rd, char *err)
{
	if (sbuf_addc(&rd->chunk, '}'))
		return pb_err(err, PB_ENOMEM, "a chunk is too large");
	rd->rows++;
	if (++rd->in_chunk >= rd->chunk_rows)
		return flush_chunk(rd, err);
	return 0;
}

static int row_error(push_reader *rd, const char *column, char *err)
{
	char sub[PB_ERR_MAX];
	xsnprintf(sub, sizeof sub, "%s", err);
	if (column)
		return pb_err(err, PB_EINVAL, "row %zu, column '%s': %s", rd->rows + 1, column, sub);
	return pb_err(err, PB_EINVAL, "row %zu: %s", rd->rows + 1, sub);
}

static int find_column(const push_table *t, const char *name)
{
	for (size_t k = 0; k < t->ncols; k++)
		if (str_ieq(t->cols[k].name, name))
			return (int)k;
	return -1;
}

/* ---- CSV ---- */

static int csv_header(push_reader *rd, char *err)
{
	if (!(rd->col_of_field = calloc(rd->nfields, sizeof *rd->col_of_field)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	rd->nheader = rd->nfields;
	for (size_t i = 0; i < rd->nfields; i++) {
		const char *name = rd->line.buf + rd->field_start[i];
		size_t len = strlen(name);
		trim(&name, &len);
		char nm[PB_NAME_MAX_BYTES];
		xsnprintf(nm, sizeof nm, "%.*s", (int)(len < sizeof nm ? len : sizeof nm - 1), name);
		int c = find_column(rd->t, nm);
		if (c < 0)
			return pb_err(err, PB_EINVAL, "header, column %zu: '%s' is not a column of table '%s'", i + 1, nm,
				      rd->t->name);
		for (size_t j = 0; j < i; j++)
			if (rd->col_of_field[j] == c)
				return pb_err(err, PB_EINVAL, "header: column '%s' appears twice", rd->t->cols[c].name);
		rd->col_of_field[i] = c;
	}
	rd->have_header = true;
	return 0;
}

static int csv_record(push_reader *rd, char *err)
{
	int rc;
	if (!rd->record_has_data && rd->nfields <= 1) {
		rd->nfields = 0;
		sbuf_reset(&rd->line);
		return 0; /* blank line */
	}
	if (!rd->have_header)
		rc = csv_header(rd, err);
	else if (rd->nfields != rd->nheader)
		rc = pb_err(err, PB_EINVAL, "row %zu: %zu fields, the header has %zu", rd->rows + 1, rd->nfields, rd->nheader);
	else if (!(rc = row_begin(rd, err))) {
		for (size_t i = 0; i < rd->nfields && !rc; i++) {
			const push_column *col = &rd->t->cols[rd->col_of_field[i]];
			const char *v = rd->line.buf + rd->field_start[i];
			size_t len = (i + 1 < rd->nfields ? rd->field_start[i + 1] - 1 : rd->line.len) - rd->field_start[i];
			if ((i && sbuf_addc(&rd->chunk, ',')) || sbuf_adds(&rd->chunk, rd->keys[rd->col_of_field[i]]))
				rc = pb_err(err, PB_ENOMEM, "a chunk is too large");
			else if ((rc = push_convert_text(col->type, v, len, rd->field_quoted[i], &rd->chunk, err)))
				rc = row_error(rd, col->name, err);
		}
		if (!rc)
			rc = row_end(rd, err);
	}
	rd->nfields = 0;
	rd->record_has_data = false;
	sbuf_reset(&rd->line);
	return rc;
}

/* An error in the field being read: "header, column 2: ..." or "row 12, column 'amount': ...". */
static int csv_field_error(push_reader *rd, const char *what, char *err)
{
	size_t f = rd->nfields ? rd->nfields : 1;
	if (!rd->have_header)
		return pb_err(err, PB_EINVAL, "header, column %zu: %s", f, what);
	if (f <= rd->nheader)
		return pb_err(err, PB_EINVAL, "row %zu, column '%s': %s", rd->rows + 1,
			      rd->t->cols[rd->col_of_field[f - 1]].name, what);
	return pb_err(err, PB_EINVAL, "row %zu, field %zu (the header has %zu): %s", rd->rows + 1, f, rd->nheader, what);
}

/* Bytes that end a run of an unquoted field: the separators, and what RFC 4180 does not allow
 * there (a quote, which only a quoted field may hold, doubled; a NUL). */
static const unsigned char csv_stop[256] = { [','] = 1, ['\n'] = 1, ['\r'] = 1, ['"'] = 1, [0] = 1 };

static int csv_field_begin(push_reader *rd, char *err)
{
	if (rd->nfields == rd->cap_fields) {
		size_t cap = rd->cap_fields ? rd->cap_fields * 2 : 16;
		if (cap > PB_PUSH_MAX_COLUMNS * 4)
			return pb_err(err, PB_EINVAL, "row %zu: more than %d fields", rd->rows + 1, PB_PUSH_MAX_COLUMNS * 4);
		size_t *fs = realloc(rd->field_start, cap * sizeof *fs);
		if (!fs)
			return pb_err(err, PB_ENOMEM, "out of memory");
		rd->field_start = fs;
		bool *fq = realloc(rd->field_quoted, cap * sizeof *fq);
		if (!fq)
			return pb_err(err, PB_ENOMEM, "out of memory");
		rd->field_quoted = fq;
		rd->cap_fields = cap;
	}
	if (rd->nfields && sbuf_addc(&rd->line, '\0'))
		return pb_err(err, PB_EINVAL, "row %zu is longer than %u bytes", rd->rows + 1, PB_PUSH_ROW_MAX_BYTES);
	rd->field_start[rd->nfields] = rd->line.len;
	rd->field_quoted[rd->nfields] = false;
	rd->nfields++;
	return 0;
}

static int csv_feed(push_reader *rd, const char *p, size_t n, char *err)
{
	static const unsigned char bom[3] = { 0xEF, 0xBB, 0xBF };
	int rc = 0;
	size_t i = 0;
	while (!rd->started && i < n) {
		if ((unsigned char)p[i] != bom[rd->bom]) {
			if (rd->bom)
				return pb_err(err, PB_EINVAL, "the body starts with an incomplete UTF-8 byte order mark");
			rd->started = true;
			break;
		}
		i++;
		rd->started = ++rd->bom == sizeof bom;
	}
	while (i < n && !rc) {
		char c = p[i];
		switch (rd->cs) {
		case CSV_AFTER_CR:
			rd->cs = CSV_FIELD_START;
			if (c == '\n') {
				i++;
				continue;
			}
			continue;
		case CSV_FIELD_START:
			if ((rc = csv_field_begin(rd, err)))
				break;
			if (c == '"') {
				rd->field_quoted[rd->nfields - 1] = true;
				rd->record_has_data = true;
				rd->cs = CSV_QUOTED;
				i++;
			} else {
				rd->cs = CSV_UNQUOTED;
			}
			continue;
		case CSV_UNQUOTED: {
			/* copy a run of plain bytes at once */
			size_t j = i;
			while (j < n && !csv_stop[(unsigned char)p[j]])
				j++;
			if (j > i) {
				if (sbuf_add(&rd->line, p + i, j - i)) {
					rc = pb_err(err, PB_EINVAL, "row %zu is longer than %u bytes", rd->rows + 1,
						    PB_PUSH_ROW_MAX_BYTES);
					break;
				}
				rd->record_has_data = true;
				i = j;
			}
			if (i >= n)
				break;
			c = p[i++];
			if (c == '"') {
				rc = csv_field_error(rd, "a quote inside a field that does not start with one (RFC 4180: quote "
							 "the whole field and double the quotes inside it)",
						     err);
				break;
			}
			if (!c) {
				rc = csv_field_error(rd, "a NUL byte (CSV is text)", err);
				break;
			}
			if (c == ',') {
				rd->record_has_data = true;
				rd->cs = CSV_FIELD_START;
			} else {
				rd->cs = c == '\r' ? CSV_AFTER_CR : CSV_FIELD_START;
				rc = csv_record(rd, err);
			}
			continue;
		}
		case CSV_QUOTED: {
			const char *q = memchr(p + i, '"', n - i);
			size_t j = q ? (size_t)(q - p) : n;
			if (memchr(p + i, '\0', j - i)) {
				rc = csv_field_error(rd, "a NUL byte (CSV is text)", err);
				break;
			}
			if (j > i && sbuf_add(&rd->line, p + i, j - i)) {
				rc = pb_err(err, PB_EINVAL, "row %zu is longer than %u bytes", rd->rows + 1, PB_PUSH_ROW_MAX_BYTES);
				break;
			}
			i = j;
			if (i < n) {
				rd->cs = CSV_QUOTE_SEEN;
				i++;
			}
			continue;
		}
		case CSV_QUOTE_SEEN:
			if (c == '"') {
				if (sbuf_addc(&rd->line, '"'))
					rc = pb_err(err, PB_EINVAL, "row %zu is too long", rd->rows + 1);
				rd->cs = CSV_QUOTED;
				i++;
			} else if (c == ',') {
				rd->cs = CSV_FIELD_START;
				i++;
			} else if (c == '\n' || c == '\r') {
				rd->cs = c == '\r' ? CSV_AFTER_CR : CSV_FIELD_START;
				i++;
				rc = csv_record(rd, err);
			} else {
				rc = csv_field_error(rd, "a quoted field must end at its closing quote (RFC 4180: a quote inside "
							 "it is doubled)",
						     err);
			}
			continue;
		}
	}
	return rc;
}

static int csv_finish(push_reader *rd, char *err)
{
	if (rd->cs == CSV_QUOTED)
		return pb_err(err, PB_EINVAL, "row %zu: a quoted field is not closed at the end of the body", rd->rows + 1);
	if (rd->cs == CSV_UNQUOTED || rd->cs == CSV_QUOTE_SEEN || rd->nfields) {
		rd->cs = CSV_FIELD_START;
		int rc = csv_record(rd, err);
		if (rc)
			return rc;
	}
	if (!rd->have_header)
		return pb_err(err, PB_EINVAL, "the CSV body has no header row");
	return 0;
}

/* ---- JSON rows (one object) ---- */

static size_t skip_ws(const char *t, size_t len, size_t i)
{
	while (i < len && isspace((unsigned char)t[i]))
		i++;
	return i;
}

/* The index just after the JSON value (or string) that starts at t[i]. */
static size_t skip_json_value(const char *t, size_t len, size_t i)
{
	int depth = 0;
	bool in_string = false, escape = false;
	for (; i < len; i++) {
		char c = t[i];
		if (in_string) {
			if (escape)
				escape = false;
			else if (c == '\\')
				escape = true;
			else if (c == '"') {
				in_string = false;
				if (!depth)
					return i + 1;
			}
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (!depth)
				return i; /* the enclosing object ends: so does the scalar before it */
			if (!--depth)
				return i + 1;
		} else if (!depth && (c == ',' || isspace((unsigned char)c))) {
			return i;
		}
	}
	return i;
}

/* The member of the row object text whose value holds byte pos - 1 (jansson reports the end of
 * the token it stopped at): *key is its name as written (with the quotes), *val its value. */
static bool member_at(const char *t, size_t len, size_t pos, const char **key, size_t *key_len, const char **val,
		      size_t *val_len)
{
	size_t i = skip_ws(t, len, 0);
	if (i >= len || t[i++] != '{')
		return false;
	for (;;) {
		i = skip_ws(t, len, i);
		if (i >= len || t[i] != '"')
			return false;
		size_t ks = i;
		i = skip_json_value(t, len, i);
		size_t ke = i;
		i = skip_ws(t, len, i);
		if (i >= len || t[i] != ':')
			return false;
		size_t vs = skip_ws(t, len, i + 1);
		i = skip_json_value(t, len, vs);
		if (pos > vs && pos <= i) {
			*key = t + ks;
			*key_len = ke - ks;
			*val = t + vs;
			*val_len = i - vs;
			return true;
		}
		i = skip_ws(t, len, i);
		if (i >= len || t[i++] != ',')
			return false;
	}
}

/* jansson refused a number it cannot hold (1e400, or an integer past 64 bits): name the row and
 * column, and say what the column's type makes of the number's text. */
static int json_number_error(push_reader *rd, const char *text, size_t len, const json_error_t *je, char *err)
{
	const char *key, *val;
	size_t key_len, val_len;
	json_t *name = NULL;
	sbuf scratch;
	int rc, c;
	if (je->position <= 0 || !member_at(text, len, (size_t)je->position, &key, &key_len, &val, &val_len) ||
	    !(name = json_loadb(key, key_len, JSON_DECODE_ANY, NULL)) || !json_is_string(name))
		rc = pb_err(err, PB_EINVAL, "row %zu: not valid JSON: %s", rd->rows + 1, je->text);
	else if ((c = find_column(rd->t, json_string_value(name))) < 0)
		rc = pb_err(err, PB_EINVAL, "row %zu, column '%.100s': not a column of table '%s'", rd->rows + 1,
			    json_string_value(name), rd->t->name);
	else {
		sbuf_init(&scratch, 4 * PB_PUSH_STRING_MAX_CHARS);
		rc = push_convert_text(rd->t->cols[c].type, val, val_len, false, &scratch, err);
		sbuf_release(&scratch);
		if (rc == PB_EINVAL)
			rc = row_error(rd, rd->t->cols[c].name, err);
		else if (!rc)
			rc = pb_err(err, PB_EINVAL, "row %zu, column '%s': the number %.*s has more digits than a JSON number "
				    "is read with; send it as a string (\"%.*s\")",
				    rd->rows + 1, rd->t->cols[c].name, (int)(val_len > 60 ? 60 : val_len), val,
				    (int)(val_len > 60 ? 60 : val_len), val);
	}
	json_decref(name);
	return rc;
}

static int json_row(push_reader *rd, const char *text, size_t len, char *err)
{
	json_error_t je;
	int rc = 0;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!o && (strstr(je.text, "number overflow") || strstr(je.text, "too big integer")))
		return json_number_error(rd, text, len, &je, err);
	if (!o)
		return pb_err(err, PB_EINVAL, "row %zu: not valid JSON: %s", rd->rows + 1, je.text);
	if (!json_is_object(o)) {
		json_decref(o);
		return pb_err(err, PB_EINVAL, "row %zu: a row must be a JSON object", rd->rows + 1);
	}
	if ((rc = row_begin(rd, err)))
		goto out;
	const char *key;
	json_t *v;
	bool first = true;
	json_object_foreach(o, key, v)
	{
		int c = find_column(rd->t, key);
		if (c < 0) {
			rc = pb_err(err, PB_EINVAL, "row %zu, column '%.100s': not a column of table '%s'", rd->rows + 1, key,
				    rd->t->name);
			goto out;
		}
		if ((!first && sbuf_addc(&rd->chunk, ',')) || sbuf_adds(&rd->chunk, rd->keys[c])) {
			rc = pb_err(err, PB_ENOMEM, "a chunk is too large");
			goto out;
		}
		first = false;
		if ((rc = convert_json_value(rd->t->cols[c].type, v, &rd->chunk, err))) {
			rc = row_error(rd, rd->t->cols[c].name, err);
			goto out;
		}
	}
	rc = row_end(rd, err);
out:
	json_decref(o);
	return rc;
}

static int ndjson_feed(push_reader *rd, const char *p, size_t n, char *err)
{
	size_t i = 0;
	while (i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - p) : n;
		if (sbuf_add(&rd->line, p + i, end - i))
			return pb_err(err, PB_EINVAL, "row %zu is longer than %u bytes", rd->rows + 1, PB_PUSH_ROW_MAX_BYTES);
		i = end;
		if (!nl)
			break;
		i++;
		const char *s = sbuf_str(&rd->line);
		size_t len = rd->line.len;
		trim(&s, &len);
		int rc = len ? json_row(rd, s, len, err) : 0;
		sbuf_reset(&rd->line);
		if (rc)
			return rc;
	}
	return 0;
}

static int json_array_feed(push_reader *rd, const char *p, size_t n, char *err)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		switch (rd->js) {
		case JA_BEFORE:
			if (isspace((unsigned char)c))
				continue;
			if (c != '[')
				return pb_err(err, PB_EINVAL, "a JSON body must be an array of row objects");
			rd->js = JA_VALUE;
			continue;
		case JA_VALUE:
			if (isspace((unsigned char)c))
				continue;
			if (c == ']' && rd->rows == 0 && !rd->in_string) {
				rd->js = JA_DONE;
				continue;
			}
			if (c != '{')
				return pb_err(err, PB_EINVAL, "row %zu: a row must be a JSON object", rd->rows + 1);
			rd->js = JA_OBJECT;
			rd->depth = 0;
			rd->in_string = rd->escape = false;
			/* fall through: the brace belongs to the object */
			/* FALLTHROUGH */
		case JA_OBJECT: {
			/* copy up to the end of the object */
			size_t j = i;
			bool closed = false;
			for (; j < n; j++) {
				char d = p[j];
				if (rd->in_string) {
					if (rd->escape)
						rd->escape = false;
					else if (d == '\\')
						rd->escape = true;
					else if (d == '"')
						rd->in_string = false;
				} else if (d == '"') {
					rd->in_string = true;
				} else if (d == '{' || d == '[') {
					if (++rd->depth > PB_JSON_MAX_DEPTH)
						return pb_err(err, PB_EINVAL, "row %zu is nested too deeply", rd->rows + 1);
				} else if (d == '}' || d == ']') {
					if (--rd->depth == 0) {
						closed = true;
						break;
					}
				}
			}
			size_t upto = closed ? j + 1 : n;
			if (sbuf_add(&rd->line, p + i, upto - i))
				return pb_err(err, PB_EINVAL, "row %zu is longer than %u bytes", rd->rows + 1,
					      PB_PUSH_ROW_MAX_BYTES);
			i = upto - 1;
			if (closed) {
				int rc = json_row(rd, sbuf_str(&rd->line), rd->line.len, err);
				sbuf_reset(&rd->line);
				if (rc)
					return rc;
				rd->js = JA_AFTER_VALUE;
			}
			continue;
		}
		case JA_AFTER_VALUE:
			if (isspace((unsigned char)c))
				continue;
			if (c == ',')
				rd->js = JA_VALUE;
			else if (c == ']')
				rd->js = JA_DONE;
			else
				return pb_err(err, PB_EINVAL, "after row %zu: expected ',' or ']'", rd->rows);
			continue;
		case JA_DONE:
			if (!isspace((unsigned char)c))
				return pb_err(err, PB_EINVAL, "text after the end of the JSON array");
			continue;
		}
	}
	return 0;
}

int push_reader_new(const push_table *t, push_format f, size_t chunk_rows, push_chunk_fn fn, void *ctx,
		    push_reader **out, char *err)
{
	*out = NULL;
	if (!chunk_rows || chunk_rows > POWERBI_PUSH_ROWS_MAX)
		return pb_err(err, PB_EINVAL, "rows per chunk must be 1..%d", POWERBI_PUSH_ROWS_MAX);
	push_reader *rd = calloc(1, sizeof *rd);
	if (!rd || !(rd->keys = calloc(t->ncols, sizeof *rd->keys))) {
		free(rd);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	rd->t = t;
	rd->fmt = f;
	rd->chunk_rows = chunk_rows;
	rd->fn = fn;
	rd->ctx = ctx;
	/* a chunk holds at most chunk_rows rows of at most one input row's size each, converted */
	sbuf_init(&rd->chunk, (size_t)chunk_rows * 2 * PB_PUSH_ROW_MAX_BYTES < 512u * 1024 * 1024
				      ? (size_t)chunk_rows * 2 * PB_PUSH_ROW_MAX_BYTES
				      : 512u * 1024 * 1024);
	sbuf_init(&rd->line, PB_PUSH_ROW_MAX_BYTES);
	for (size_t k = 0; k < t->ncols; k++) {
		sbuf kb;
		sbuf_init(&kb, 4 * PB_NAME_MAX_BYTES);
		if (add_json_string(&kb, t->cols[k].name, strlen(t->cols[k].name)) || sbuf_addc(&kb, ':') ||
		    !(rd->keys[k] = sbuf_detach(&kb, NULL))) {
			sbuf_release(&kb);
			push_reader_free(rd);
			return pb_err(err, PB_ENOMEM, "out of memory");
		}
	}
	*out = rd;
	return 0;
}

int push_reader_feed(push_reader *rd, const char *data, size_t len, char *err)
{
	switch (rd->fmt) {
	case PUSH_FMT_CSV:
		return csv_feed(rd, data, len, err);
	case PUSH_FMT_NDJSON:
		return ndjson_feed(rd, data, len, err);
	case PUSH_FMT_JSON:
		return json_array_feed(rd, data, len, err);
	}
	return pb_err(err, PB_EINTERNAL, "unknown format");
}

int push_reader_finish(push_reader *rd, char *err)
{
	int rc = 0;
	switch (rd->fmt) {
	case PUSH_FMT_CSV:
		rc = csv_finish(rd, err);
		break;
	case PUSH_FMT_NDJSON:
		rc = ndjson_feed(rd, "\n", 1, err);
		break;
	case PUSH_FMT_JSON:
		if (rd->js != JA_DONE)
			rc = pb_err(err, PB_EINVAL, "the JSON array is not complete (after row %zu)", rd->rows);
		break;
	}
	return rc ? rc : flush_chunk(rd, err);
}

size_t push_reader_rows(const push_reader *rd)
{
	return rd->rows;
}

void push_reader_free(push_reader *rd)
{
	if (!rd)
		return;
	for (size_t k = 0; rd->keys && k < rd->t->ncols; k++)
		free(rd->keys[k]);
	free(rd->keys);
	sbuf_release(&rd->chunk);
	sbuf_release(&rd->line);
	free_each(rd->field_start, rd->field_quoted, rd->col_of_field, rd);
}
