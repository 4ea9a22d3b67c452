/* Push datasets: connections, datasets, the row reader and converter, the shared rate
 * limiter and the push_rows job. See core/push.h. */
#include "core/push.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/connections.h"
#include "core/identity.h"
#include "core/pbi_session.h"
#include "core/tenant_backoff.h"
#include "msapi/powerbi.h"
#include "runtime/crypto.h"
#include "runtime/json_body.h"
#include "runtime/jobs.h"
#include "runtime/log.h"
#include "runtime/timeutil.h"
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
static int wrap_err(char *err, int rc, const char *prefix)
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

static int check_name(const char *what, const char *name, char *err)
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
	if ((rc = check_name("table", name, err)))
		return wrap_err(err, rc, what);
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
		if ((rc = check_name("column", cname, err)))
			return wrap_err(err, rc, cwhat);
		for (size_t j = 0; j < t->ncols; j++)
			if (str_ieq(t->cols[j].name, cname))
				return pb_err(err, PB_EINVAL, "table '%s' has column '%s' twice", name, cname);
		push_type ty;
		if ((rc = push_type_parse(json_string_value(json_object_get(jc, "dataType")), &ty, err))) {
			char named[PB_ERR_MAX];
			xsnprintf(named, sizeof named, "%s ('%s')", cwhat, cname);
			return wrap_err(err, rc, named);
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
		return pb_err(err, PB_EINVAL, "rows must be application/json (an array), application/x-ndjson or text/csv");
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
	free(rd->field_start);
	free(rd->field_quoted);
	free(rd->col_of_field);
	free(rd);
}

/* ======================================================================== limiter */

static long scaled(long n, double scale)
{
	double v = floor((double)n * scale);
	return v < 1 ? 1 : (long)v;
}

void push_limits_scaled(double scale, push_limits *out)
{
	out->per_minute = scaled(120, scale);
	out->rows_per_hour = scaled(1000000, scale);
	out->pending = scaled(5, scale);
	out->big_table_rows = scaled(250000, scale);
	out->big_per_hour = scaled(120, scale);
	out->inflight_ms = PB_PUSH_INFLIGHT_STALE_MS;
}

int push_limits_from_env(push_limits *out, char *err)
{
	const char *s = getenv("PBIPORT_PUSH_RATE_SCALE");
	double scale = 1.0;
	if (s && *s) {
		char *end = NULL;
		errno = 0;
		scale = strtod(s, &end);
		if (errno || *end || !isfinite(scale) || scale <= 0 || scale > 1e6)
			return pb_err(err, PB_EINVAL, "PBIPORT_PUSH_RATE_SCALE: expected a positive number, got '%.40s'", s);
	}
	push_limits_scaled(scale, out);
	s = getenv("PBIPORT_PUSH_INFLIGHT_S");
	if (s && *s) {
		char *end = NULL;
		errno = 0;
		long v = strtol(s, &end, 10);
		if (errno || *end || v < 1 || v > 86400)
			return pb_err(err, PB_EINVAL, "PBIPORT_PUSH_INFLIGHT_S: expected seconds from 1 to 86400, got '%.40s'", s);
		out->inflight_ms = v * 1000;
	}
	return 0;
}

/* Counts (or sums rows of) the events of key since since_ms; *oldest = the time of the
 * event that must leave the window before `need` more fits under limit. */
static int window(pb_db *db, const char *key, int64_t since_ms, bool sum_rows, bool only_pending, long limit,
		  long need, int64_t *used, int64_t *free_at, char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare(db,
			    only_pending ? "SELECT at_ms, rows FROM push_rate_events WHERE dataset_key = ? AND at_ms > ? "
					   "AND done = 0 ORDER BY at_ms"
					 : "SELECT at_ms, rows FROM push_rate_events WHERE dataset_key = ? AND at_ms > ? "
					   "ORDER BY at_ms",
			    &st, err);
	*used = 0;
	*free_at = 0;
	if (rc || (rc = db_bind_text(st, 1, key, err)))
		goto out;
	sqlite3_bind_int64(st, 2, since_ms);
	/* events in time order: total first, then how many must leave for `need` to fit */
	int64_t total = 0;
	while ((rc = db_row(db, st, err)) == 1)
		total += sum_rows ? sqlite3_column_int64(st, 1) : 1;
	if (rc < 0)
		goto out;
	rc = 0;
	*used = total;
	if (total + need <= limit)
		goto out;
	sqlite3_reset(st);
	int64_t excess = total + need - limit;
	while ((rc = db_row(db, st, err)) == 1) {
		excess -= sum_rows ? sqlite3_column_int64(st, 1) : 1;
		if (excess <= 0) {
			*free_at = sqlite3_column_int64(st, 0);
			break;
		}
	}
	if (rc < 0)
		goto out;
	rc = 0;
	if (!*free_at)
		*free_at = since_ms + 1; /* cannot fit at all: wait the whole window */
out:
	db_done(st);
	return rc;
}

/* push_rate_acquire inside the caller's write transaction. */
static int rate_acquire_locked(pb_db *db, const push_limits *lim, const char *key, long rows, long table_rows,
			       int64_t now_ms, int64_t *wait_ms, int64_t *ticket, char *err)
{
	sqlite3_stmt *st = NULL;
	int64_t used, free_at, wait = 0;
	int rc;
	*wait_ms = 0;
	*ticket = 0;
	if ((rc = db_prepare(db, "DELETE FROM push_rate_events WHERE dataset_key = ? AND at_ms <= ?", &st, err)) ||
	    (rc = db_bind_text(st, 1, key, err)))
		goto out;
	sqlite3_bind_int64(st, 2, now_ms - 3600 * 1000);
	rc = db_exec(db, st, err);
	db_done(st);
	st = NULL;
	if (rc)
		goto out;
	struct {
		int64_t period;
		bool rows, pending;
		long limit, need;
		bool on;
	} checks[] = {
		{ 60 * 1000, false, false, lim->per_minute, 1, true },
		{ 3600 * 1000, true, false, lim->rows_per_hour, rows, true },
		{ 3600 * 1000, false, false, lim->big_per_hour, 1, table_rows >= lim->big_table_rows },
		{ lim->inflight_ms, false, true, lim->pending, 1, true },
	};
	for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
		if (!checks[i].on)
			continue;
		if ((rc = window(db, key, now_ms - checks[i].period, checks[i].rows, checks[i].pending, checks[i].limit,
				 checks[i].need, &used, &free_at, err)))
			goto out;
		if (free_at) {
			/* in flight: poll again soon; windows: until the blocking event leaves it */
			int64_t w = checks[i].pending ? 200 : free_at + checks[i].period - now_ms + PB_PUSH_RATE_MARGIN_MS;
			if (w > wait)
				wait = w;
		}
	}
	if (wait > 0) {
		*wait_ms = wait;
		goto out;
	}
	if ((rc = db_prepare(db, "INSERT INTO push_rate_events (dataset_key, at_ms, rows, done) VALUES (?, ?, ?, 0) "
				 "RETURNING id",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, key, err)))
		goto out;
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_int64(st, 3, rows);
	if ((rc = db_row(db, st, err)) == 1) {
		*ticket = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (!rc) {
		rc = pb_err(err, PB_EIO, "the rate limiter recorded nothing");
	}
out:
	db_done(st);
	return rc;
}

int push_rate_acquire(pb_db *db, const push_limits *lim, const char *key, long rows, long table_rows, int64_t now_ms,
		      int64_t *wait_ms, int64_t *ticket, char *err)
{
	int rc = db_begin(db, err);
	if (!rc && (rc = rate_acquire_locked(db, lim, key, rows, table_rows, now_ms, wait_ms, ticket, err)))
		db_rollback(db);
	return rc ? rc : db_commit(db, err);
}

int push_rate_release(pb_db *db, int64_t ticket, bool sent, char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare(db, sent ? "UPDATE push_rate_events SET done = 1 WHERE id = ?"
				     : "DELETE FROM push_rate_events WHERE id = ?",
			    &st, err);
	if (!rc) {
		sqlite3_bind_int64(st, 1, ticket);
		rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

/* ======================================================================== connections */

typedef struct push_conn {
	char id[PB_ID_BUF], org_id[PB_ID_BUF], team_id[PB_ID_BUF];
	char *team, *name, *tenant_id, *client_id, *client_secret;
	char created_at[PB_TIME_BUF];
} push_conn;

static void conn_free(push_conn *c)
{
	if (!c)
		return;
	free(c->team);
	free(c->name);
	free(c->tenant_id);
	free(c->client_id);
	free(c->client_secret);
	free(c);
}

#define CONN_COLS                                                                                          \
	"SELECT c.id, c.org_id, c.team_id, c.name, c.tenant_id, c.client_id, c.client_secret, c.created_at "  \
	"FROM push_connections c "

/* Teams whose connections (and their datasets) a caller may use: a member those of their
 * teams, an owner, or the worker (who NULL), every team of the org. Teams belong to
 * core/identity; membership is asked there. */
typedef struct team_list {
	pb_team *v;
	size_t n;
} team_list;

static int visible_teams(pb_db *db, const push_caller *who, const char *org_id, team_list *out, char *err)
{
	return identity_teams(db, org_id, who && who->role != PB_ROLE_OWNER ? who->user_id : NULL, &out->v, &out->n,
			      err);
}

static const pb_team *team_find(const team_list *l, const char *id, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if ((id && !strcmp(l->v[i].id, id)) || (name && !strcmp(l->v[i].name, name)))
			return &l->v[i];
	return NULL;
}

static int conn_row(sqlite3_stmt *st, push_conn **out, char *err)
{
	bool ok = true;
	push_conn *c = calloc(1, sizeof *c);
	if (!c)
		return pb_err(err, PB_ENOMEM, "out of memory");
	xsnprintf(c->id, sizeof c->id, "%s", db_col_text(st, 0));
	xsnprintf(c->org_id, sizeof c->org_id, "%s", db_col_text(st, 1));
	xsnprintf(c->team_id, sizeof c->team_id, "%s", db_col_text(st, 2));
	c->name = db_col_dup(st, 3, &ok);
	c->tenant_id = db_col_dup(st, 4, &ok);
	c->client_id = db_col_dup(st, 5, &ok);
	c->client_secret = db_col_dup(st, 6, &ok);
	xsnprintf(c->created_at, sizeof c->created_at, "%s", db_col_text(st, 7));
	if (!ok) {
		conn_free(c);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	*out = c;
	return 0;
}

/* c's team name from l; false when the team is not in l (not visible to the caller). */
static bool conn_team(push_conn *c, const team_list *l, bool *oom)
{
	const pb_team *t = team_find(l, c->team_id, NULL);
	*oom = false;
	if (!t)
		return false;
	free(c->team);
	*oom = !(c->team = xstrdup(t->name));
	return true;
}

/* who NULL: any org (the worker, which got the id from its own job). */
static int conn_get(pb_db *db, const push_caller *who, const char *id, push_conn **out, char *err)
{
	sqlite3_stmt *st = NULL;
	team_list tl = { 0 };
	push_conn *c = NULL;
	bool oom = false;
	*out = NULL;
	int rc = db_prepare(db, who ? CONN_COLS "WHERE c.id = ? AND c.org_id = ?" : CONN_COLS "WHERE c.id = ?", &st, err);
	if (rc || (rc = db_bind_text(st, 1, id, err)) || (who && (rc = db_bind_text(st, 2, who->org_id, err))))
		goto out;
	rc = db_row(db, st, err);
	if (rc == 1)
		rc = conn_row(st, &c, err);
	else if (!rc)
		rc = pb_err(err, PB_ENOTFOUND, "push connection %.40s not found", id);
	db_done(st);
	st = NULL;
	if (rc || (rc = visible_teams(db, who, c->org_id, &tl, err)))
		goto out;
	if (!conn_team(c, &tl, &oom) && who) {
		rc = pb_err(err, PB_ENOTFOUND, "push connection %.40s not found", id);
		goto out;
	}
	if (oom) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	*out = c;
	c = NULL;
out:
	db_done(st);
	free(tl.v);
	conn_free(c);
	return rc;
}

static json_t *conn_json(const push_conn *c)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "id", c->id, "name", c->name, "team", c->team, "tenant_id",
			 c->tenant_id, "client_id", c->client_id, "has_client_secret", 1, "created_at", c->created_at);
}

static int error_reply(int *status, json_t **reply, int code_status, const char *code, const char *msg, char *err)
{
	*status = code_status;
	*reply = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
	return *reply ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
}

static bool id_text(const char *s)
{
	if (!s || !*s || strlen(s) > PB_PBI_ID_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_')
			return false;
	return true;
}

/* The team's id if the caller may use it (owners: any team of the org; members: theirs). */
static int team_for_caller(pb_db *db, const push_caller *who, const char *team, char id[PB_ID_BUF], bool *found,
			   char *err)
{
	team_list tl = { 0 };
	int rc = visible_teams(db, who, who->org_id, &tl, err);
	const pb_team *t = rc ? NULL : team_find(&tl, NULL, team);
	*found = t != NULL;
	if (t)
		xsnprintf(id, PB_ID_BUF, "%s", t->id);
	free(tl.v);
	return rc;
}

int push_connection_create(pb_db *db, const pb_config *cfg, const push_caller *who, const json_t *body, int *status,
			   json_t **reply, char *err)
{
	static const char *const keys[] = { "name", "team", "tenant_id", "client_id", "client_secret", NULL };
	sqlite3_stmt *st = NULL;
	char id[PB_ID_BUF], team_id[PB_ID_BUF], now[PB_TIME_BUF], context[64];
	char *sealed = NULL;
	push_conn *c = NULL;
	bool found = false;
	int rc;
	*reply = NULL;
	if (!json_is_object(body) || json_body_only_keys(body, keys, "", err))
		return error_reply(status, reply, 400, "bad_request", json_is_object(body) ? err : "the body must be an object",
				   err);
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *team = json_string_value(json_object_get(body, "team"));
	const char *tenant = json_string_value(json_object_get(body, "tenant_id"));
	const char *client = json_string_value(json_object_get(body, "client_id"));
	const char *secret = json_string_value(json_object_get(body, "client_secret"));
	if (!name || !*name || strlen(name) > PB_NAME_FIELD_MAX || !utf8_valid(name, strlen(name)))
		return error_reply(status, reply, 400, "bad_request", "\"name\" is required (1 to 128 bytes of UTF-8)", err);
	if (!team || !*team)
		return error_reply(status, reply, 400, "bad_request", "\"team\" is required: the team that shares it", err);
	if (!id_text(tenant) || !id_text(client))
		return error_reply(status, reply, 400, "bad_request", "\"tenant_id\" and \"client_id\" are required ids", err);
	if (!secret || !*secret || strlen(secret) > PB_PBI_SECRET_MAX)
		return error_reply(status, reply, 400, "bad_request", "\"client_secret\" is required", err);
	if (!cfg->encryption_keys)
		return error_reply(status, reply, 400, "not_configured",
				   "APPLICATION_ENCRYPTION_KEYS is not set: secrets cannot be stored", err);
	if ((rc = team_for_caller(db, who, team, team_id, &found, err)))
		return rc;
	if (!found)
		return error_reply(status, reply, who->role == PB_ROLE_OWNER ? 400 : 403,
				   who->role == PB_ROLE_OWNER ? "bad_request" : "forbidden",
				   who->role == PB_ROLE_OWNER ? "no such team in this organization"
							      : "members create connections only for their own teams",
				   err);
	if ((rc = pb_new_id(id, err)))
		return rc;
	xsnprintf(context, sizeof context, "push_connection:%s", id);
	if ((rc = pb_seal(cfg->encryption_keys, secret, strlen(secret), context, &sealed, err)))
		return rc;
	pb_now(now);
	if ((rc = db_prepare(db,
			     "INSERT INTO push_connections (id, org_id, team_id, name, tenant_id, client_id, client_secret, "
			     "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, id, err)) || (rc = db_bind_text(st, 2, who->org_id, err)) ||
	    (rc = db_bind_text(st, 3, team_id, err)) || (rc = db_bind_text(st, 4, name, err)) ||
	    (rc = db_bind_text(st, 5, tenant, err)) || (rc = db_bind_text(st, 6, client, err)) ||
	    (rc = db_bind_text(st, 7, sealed, err)) || (rc = db_bind_text(st, 8, who->user_id, err)) ||
	    (rc = db_bind_text(st, 9, now, err)))
		goto out;
	rc = db_exec(db, st, err);
	db_done(st);
	st = NULL;
	if (rc == PB_EINVAL) {
		rc = error_reply(status, reply, 409, "conflict", "a push connection with this name exists in the organization",
				 err);
		goto out;
	}
	if (rc || (rc = conn_get(db, NULL, id, &c, err)))
		goto out;
	*status = 201;
	if (!(*reply = conn_json(c)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	free(sealed);
	conn_free(c);
	return rc;
}

int push_connections_list(pb_db *db, const push_caller *who, json_t **reply, char *err)
{
	sqlite3_stmt *st = NULL;
	team_list tl = { 0 };
	json_t *arr = json_array();
	int rc = arr ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
	if (rc || (rc = visible_teams(db, who, who->org_id, &tl, err)) ||
	    (rc = db_prepare(db, CONN_COLS "WHERE c.org_id = ? ORDER BY c.name", &st, err)) ||
	    (rc = db_bind_text(st, 1, who->org_id, err)))
		goto out;
	while (json_array_size(arr) < PB_LIST_MAX_ITEMS && (rc = db_row(db, st, err)) == 1) {
		push_conn *c = NULL;
		bool oom = false;
		if ((rc = conn_row(st, &c, err)))
			goto out;
		if (conn_team(c, &tl, &oom))
			rc = oom || json_array_append_new(arr, conn_json(c)) ? pb_err(err, PB_ENOMEM, "out of memory") : 0;
		conn_free(c);
		if (rc)
			goto out;
	}
	if (!rc && !(*reply = json_pack("{s:O}", "push_connections", arr)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	free(tl.v);
	json_decref(arr);
	return rc;
}

int push_connections_rotate(pb_db *db, const pb_config *cfg, size_t *resealed, char *err)
{
	/* kind "push_connection" + the row id: the context push_connection_create seals with */
	static const sealed_column cols[] = {
		{ "SELECT id, client_secret FROM push_connections",
		  "UPDATE push_connections SET client_secret = ? WHERE id = ?", "push_connection", NULL },
	};
	return reseal_columns(db, cfg->encryption_keys, cols, sizeof cols / sizeof cols[0], resealed, err);
}

int push_connection_delete(pb_db *db, const push_caller *who, const char *id, int *status, json_t **reply, char *err)
{
	push_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	int rc = conn_get(db, who, id, &c, err);
	if (rc || (rc = db_begin(db, err)))
		goto out;
	/* its datasets would go with it (ON DELETE CASCADE) and live on in Power BI, out of reach */
	if ((rc = db_prepare(db, "SELECT count(*) FROM push_datasets WHERE connection_id = ?", &st, err)) ||
	    (rc = db_bind_text(st, 1, c->id, err)))
		goto end;
	if ((rc = db_row(db, st, err)) < 0)
		goto end;
	rc = PB_OK;
	long datasets = sqlite3_column_int64(st, 0);
	db_done(st);
	st = NULL;
	if (datasets > 0) {
		char msg[PB_ERR_MAX];
		(void)xsnprintf(msg, sizeof msg, "push connection '%s' still has %ld push dataset%s: delete %s first "
				"(DELETE /api/push-datasets/{id}, which removes them in Power BI too)",
				c->name, datasets, datasets == 1 ? "" : "s", datasets == 1 ? "it" : "them");
		rc = error_reply(status, reply, 409, "connection_in_use", msg, err);
		goto end;
	}
	if ((rc = db_prepare(db, "DELETE FROM push_connections WHERE id = ?", &st, err)) ||
	    (rc = db_bind_text(st, 1, c->id, err)) || (rc = db_exec(db, st, err)))
		goto end;
	*status = 204;
end:
	if (rc)
		db_rollback(db);
	else
		rc = db_commit(db, err);
out:
	db_done(st);
	conn_free(c);
	return rc;
}

/* An app session for the connection's service principal. code: pbi_session codes. */
static int conn_session(const pb_config *cfg, const push_conn *c, pbi_session *s, char code[PBI_CODE_MAX], char *err)
{
	char *plain = NULL, context[64];
	size_t len = 0;
	memset(s, 0, sizeof *s);
	code[0] = '\0';
	if (!cfg->encryption_keys)
		return pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS is not set: the client secret cannot be opened");
	xsnprintf(context, sizeof context, "push_connection:%s", c->id);
	int rc = pb_open(cfg->encryption_keys, c->client_secret, context, &plain, &len, err);
	if (!rc)
		rc = pbi_session_app(s, c->tenant_id, c->client_id, plain, code, err);
	pb_secret_free(plain, len);
	return rc;
}

/* ======================================================================== datasets */

typedef struct push_ds {
	char id[PB_ID_BUF], org_id[PB_ID_BUF], connection_id[PB_ID_BUF], team_id[PB_ID_BUF];
	char *workspace_id, *powerbi_id, *name, *retention, *schema_json;
	char created_at[PB_TIME_BUF], updated_at[PB_TIME_BUF];
	push_schema schema;
} push_ds;

static void ds_free(push_ds *d)
{
	if (!d)
		return;
	free(d->workspace_id);
	free(d->powerbi_id);
	free(d->name);
	free(d->retention);
	free(d->schema_json);
	push_schema_release(&d->schema);
	free(d);
}

#define DS_COLS                                                                                             \
	"SELECT d.id, d.org_id, d.connection_id, d.workspace_id, d.powerbi_id, d.name, d.retention, "       \
	"d.schema_json, d.created_at, d.updated_at, c.team_id FROM push_datasets d JOIN push_connections c " \
	"ON c.id = d.connection_id "

static int ds_row(sqlite3_stmt *st, push_ds **out, char *err)
{
	bool ok = true;
	json_error_t je;
	push_ds *d = calloc(1, sizeof *d);
	if (!d)
		return pb_err(err, PB_ENOMEM, "out of memory");
	xsnprintf(d->id, sizeof d->id, "%s", db_col_text(st, 0));
	xsnprintf(d->org_id, sizeof d->org_id, "%s", db_col_text(st, 1));
	xsnprintf(d->connection_id, sizeof d->connection_id, "%s", db_col_text(st, 2));
	d->workspace_id = db_col_dup(st, 3, &ok);
	d->powerbi_id = db_col_dup(st, 4, &ok);
	d->name = db_col_dup(st, 5, &ok);
	d->retention = db_col_dup(st, 6, &ok);
	d->schema_json = db_col_dup(st, 7, &ok);
	xsnprintf(d->created_at, sizeof d->created_at, "%s", db_col_text(st, 8));
	xsnprintf(d->updated_at, sizeof d->updated_at, "%s", db_col_text(st, 9));
	xsnprintf(d->team_id, sizeof d->team_id, "%s", db_col_text(st, 10));
	int rc = ok ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
	json_t *tables = rc ? NULL : json_loads(d->schema_json, 0, &je);
	if (!rc && (rc = push_schema_parse(tables, &d->schema, err)))
		{
		char what[80];
		xsnprintf(what, sizeof what, "stored schema of push dataset %s", d->id);
		rc = wrap_err(err, PB_EIO, what);
	}
	json_decref(tables);
	if (rc) {
		ds_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

static int ds_get(pb_db *db, const push_caller *who, const char *id, push_ds **out, char *err)
{
	sqlite3_stmt *st = NULL;
	team_list tl = { 0 };
	*out = NULL;
	int rc = db_prepare(db, who ? DS_COLS "WHERE d.id = ? AND d.org_id = ?" : DS_COLS "WHERE d.id = ?", &st, err);
	if (rc || (rc = db_bind_text(st, 1, id, err)) || (who && (rc = db_bind_text(st, 2, who->org_id, err))))
		goto out;
	rc = db_row(db, st, err);
	if (rc == 1)
		rc = ds_row(st, out, err);
	else if (!rc)
		rc = pb_err(err, PB_ENOTFOUND, "push dataset %.40s not found", id);
	/* a member sees the datasets of their teams' connections */
	if (!rc && who && ((rc = visible_teams(db, who, who->org_id, &tl, err)) || !team_find(&tl, (*out)->team_id, NULL))) {
		ds_free(*out);
		*out = NULL;
		if (!rc)
			rc = pb_err(err, PB_ENOTFOUND, "push dataset %.40s not found", id);
	}
out:
	db_done(st);
	free(tl.v);
	return rc;
}

static int ds_find(pb_db *db, const char *org_id, const char *conn_id, const char *ws, const char *name, push_ds **out,
		   char *err)
{
	sqlite3_stmt *st = NULL;
	*out = NULL;
	int rc = db_prepare(db, DS_COLS "WHERE d.org_id = ? AND d.connection_id = ? AND d.workspace_id = ? AND d.name = ?",
			    &st, err);
	if (rc || (rc = db_bind_text(st, 1, org_id, err)) || (rc = db_bind_text(st, 2, conn_id, err)) ||
	    (rc = db_bind_text(st, 3, ws, err)) || (rc = db_bind_text(st, 4, name, err)))
		goto out;
	rc = db_row(db, st, err);
	if (rc == 1)
		rc = ds_row(st, out, err);
out:
	db_done(st);
	return rc < 0 ? rc : 0;
}

static json_t *ds_json(const push_ds *d)
{
	json_t *tables = json_loads(d->schema_json, 0, NULL);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id", d->id, "connection_id", d->connection_id,
			 "workspace_id", d->workspace_id, "powerbi_id", d->powerbi_id, "name", d->name, "retention",
			 d->retention, "tables", tables ? tables : json_array(), "created_at", d->created_at, "updated_at",
			 d->updated_at);
}

int push_dataset_get(pb_db *db, const push_caller *who, const char *id, json_t **reply, char *err)
{
	push_ds *d = NULL;
	int rc = ds_get(db, who, id, &d, err);
	if (!rc && !(*reply = ds_json(d)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	ds_free(d);
	return rc;
}

int push_datasets_list(pb_db *db, const push_caller *who, json_t **reply, char *err)
{
	sqlite3_stmt *st = NULL;
	team_list tl = { 0 };
	json_t *arr = json_array();
	int rc = arr ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
	if (rc || (rc = visible_teams(db, who, who->org_id, &tl, err)) ||
	    (rc = db_prepare(db, DS_COLS "WHERE d.org_id = ? ORDER BY d.name", &st, err)) ||
	    (rc = db_bind_text(st, 1, who->org_id, err)))
		goto out;
	while (json_array_size(arr) < PB_LIST_MAX_ITEMS && (rc = db_row(db, st, err)) == 1) {
		push_ds *d = NULL;
		if ((rc = ds_row(st, &d, err)))
			goto out;
		rc = team_find(&tl, d->team_id, NULL) && json_array_append_new(arr, ds_json(d))
			     ? pb_err(err, PB_ENOMEM, "out of memory")
			     : 0;
		ds_free(d);
		if (rc)
			goto out;
	}
	if (!rc && !(*reply = json_pack("{s:O}", "push_datasets", arr)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	free(tl.v);
	json_decref(arr);
	return rc;
}

/* Maps a Power BI failure to a reply: the session codes and 4xx are the caller's to fix. */
static int upstream_reply(const msapi *api, const char *code, int rc, int *status, json_t **reply, char *err)
{
	if (code && *code)
		return error_reply(status, reply, strcmp(code, "unavailable") ? 400 : 502, code, err, err);
	if (rc == PB_EIO && api && api->last.status >= 400 && api->last.status < 500 && api->last.status != 429)
		return error_reply(status, reply, 400, "powerbi_rejected", err, err);
	return error_reply(status, reply, 502, "powerbi_unavailable", err, err);
}

static int ds_save(pb_db *db, const push_caller *who, const push_conn *c, const char *ws, const char *pbi_id,
		   const char *name, const char *retention, const char *schema_json, const char *replace_id, char id[PB_ID_BUF],
		   char *err)
{
	sqlite3_stmt *st = NULL;
	char now[PB_TIME_BUF];
	int rc;
	pb_now(now);
	if (replace_id) {
		xsnprintf(id, PB_ID_BUF, "%s", replace_id);
		if ((rc = db_prepare(db, "UPDATE push_datasets SET powerbi_id = ?, retention = ?, schema_json = ?, "
					 "updated_at = ? WHERE id = ?",
				     &st, err)) ||
		    (rc = db_bind_text(st, 1, pbi_id, err)) || (rc = db_bind_text(st, 2, retention, err)) ||
		    (rc = db_bind_text(st, 3, schema_json, err)) || (rc = db_bind_text(st, 4, now, err)) ||
		    (rc = db_bind_text(st, 5, id, err)) || (rc = db_exec(db, st, err)))
			goto out;
		db_done(st);
		if ((rc = db_prepare(db, "DELETE FROM push_table_rows WHERE dataset_id = ?", &st, err)) ||
		    (rc = db_bind_text(st, 1, id, err)))
			goto out;
		rc = db_exec(db, st, err);
		goto out;
	}
	if ((rc = pb_new_id(id, err)) ||
	    (rc = db_prepare(db, "INSERT INTO push_datasets (id, org_id, connection_id, workspace_id, powerbi_id, name, "
				 "retention, schema_json, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, id, err)) || (rc = db_bind_text(st, 2, who->org_id, err)) ||
	    (rc = db_bind_text(st, 3, c->id, err)) || (rc = db_bind_text(st, 4, ws, err)) ||
	    (rc = db_bind_text(st, 5, pbi_id, err)) || (rc = db_bind_text(st, 6, name, err)) ||
	    (rc = db_bind_text(st, 7, retention, err)) || (rc = db_bind_text(st, 8, schema_json, err)) ||
	    (rc = db_bind_text(st, 9, who->user_id, err)) || (rc = db_bind_text(st, 10, now, err)) ||
	    (rc = db_bind_text(st, 11, now, err)))
		goto out;
	rc = db_exec(db, st, err);
out:
	db_done(st);
	return rc;
}

int push_dataset_create(pb_db *db, const pb_config *cfg, const push_caller *who, const json_t *body, int *status,
			json_t **reply, const char **warning, char *err)
{
	static const char *const keys[] = { "connection_id", "workspace_id", "name", "tables", "retention", "replace", NULL };
	push_schema schema = { 0 };
	push_conn *c = NULL;
	push_ds *existing = NULL, *d = NULL;
	pbi_session s = { 0 };
	powerbi_push_table *pt = NULL;
	powerbi_push_column *pc = NULL;
	msapi_item item = { 0 };
	char *schema_text = NULL, code[PBI_CODE_MAX] = "", id[PB_ID_BUF];
	json_t *tables = NULL, *warnings = NULL;
	bool have_session = false;
	int rc;
	*reply = NULL;
	*warning = NULL;
	if (!json_is_object(body) || json_body_only_keys(body, keys, "", err))
		return error_reply(status, reply, 400, "bad_request", json_is_object(body) ? err : "the body must be an object",
				   err);
	const char *conn_id = json_string_value(json_object_get(body, "connection_id"));
	const char *ws = json_string_value(json_object_get(body, "workspace_id"));
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *retention = json_string_value(json_object_get(body, "retention"));
	const json_t *jreplace = json_object_get(body, "replace");
	if (!retention)
		retention = "None";
	if (!conn_id || !id_text(ws))
		return error_reply(status, reply, 400, "bad_request", "\"connection_id\" and \"workspace_id\" are required", err);
	if (jreplace && !json_is_boolean(jreplace))
		return error_reply(status, reply, 400, "bad_request", "\"replace\" must be true or false", err);
	if (strcmp(retention, "None") && strcmp(retention, "basicFIFO"))
		return error_reply(status, reply, 400, "bad_request", "\"retention\" must be None or basicFIFO", err);
	if ((rc = check_name("dataset", name, err)) || (rc = push_schema_parse(json_object_get(body, "tables"), &schema, err)))
		return error_reply(status, reply, 400, "invalid_push_dataset", err, err);
	rc = conn_get(db, who, conn_id, &c, err);
	if (rc == PB_ENOTFOUND) {
		rc = error_reply(status, reply, 404, "not_found", "push connection not found (or not shared with your teams)",
				 err);
		goto out;
	}
	if (rc || (rc = ds_find(db, who->org_id, c->id, ws, name, &existing, err)))
		goto out;
	if (existing && push_schema_equal(&existing->schema, &schema) && !strcmp(existing->retention, retention)) {
		*status = 200;
		*warning = PUSH_RETIREMENT_WARNING;
		*reply = ds_json(existing);
		goto warn;
	}
	if (existing && !json_is_true(jreplace)) {
		rc = error_reply(status, reply, 409, "schema_conflict",
				 "a push dataset with this name exists with another schema; send \"replace\": true to create "
				 "it again with the new schema (its rows are not kept)",
				 err);
		goto out;
	}
	if (!(tables = push_schema_json(&schema)) || !(schema_text = json_dumps(tables, JSON_COMPACT))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	size_t total = 0;
	for (size_t i = 0; i < schema.ntables; i++)
		total += schema.tables[i].ncols;
	if (!(pt = calloc(schema.ntables, sizeof *pt)) || !(pc = calloc(total, sizeof *pc))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0, k0 = 0; i < schema.ntables; i++) {
		pt[i].name = schema.tables[i].name;
		pt[i].columns = pc + k0;
		pt[i].ncolumns = schema.tables[i].ncols;
		for (size_t k = 0; k < schema.tables[i].ncols; k++, k0++) {
			pc[k0].name = schema.tables[i].cols[k].name;
			pc[k0].data_type = push_type_name(schema.tables[i].cols[k].type);
		}
	}
	if ((rc = conn_session(cfg, c, &s, code, err))) {
		rc = upstream_reply(NULL, code[0] ? code : "bad_credentials", rc, status, reply, err);
		goto out;
	}
	have_session = true;
	if ((rc = powerbi_push_create(&s.api, ws, name, pt, schema.ntables, retention, &item, err))) {
		rc = upstream_reply(&s.api, pbi_session_code(&s), rc, status, reply, err);
		goto out;
	}
	if (!item.id) {
		rc = error_reply(status, reply, 502, "powerbi_unavailable", "Power BI created the dataset without an id", err);
		goto out;
	}
	if ((rc = ds_save(db, who, c, ws, item.id, name, retention, schema_text, existing ? existing->id : NULL, id, err)) ||
	    (rc = ds_get(db, NULL, id, &d, err)))
		goto out;
	*status = existing ? 200 : 201;
	*warning = PUSH_RETIREMENT_WARNING;
	*reply = ds_json(d);
	warnings = json_pack("[s]", PUSH_RETIREMENT_WARNING);
	if (*reply && existing) {
		/* replaced: the new dataset exists and the record points at it, so the old one goes.
		 * A failure here leaves it in Power BI and says so; the replace itself stands. */
		char derr[PB_ERR_MAX] = "";
		bool same = !strcmp(existing->powerbi_id, item.id);
		int drc = same ? 0 : powerbi_dataset_delete(&s.api, ws, existing->powerbi_id, derr);
		json_object_set_new(*reply, "replaced_powerbi_id", json_string(existing->powerbi_id));
		json_object_set_new(*reply, "replaced_deleted", json_boolean(!drc && !same));
		if (drc && warnings)
			json_array_append_new(warnings, json_sprintf("the replaced Power BI dataset %s could not be deleted; "
								      "delete it in Power BI: %s",
								      existing->powerbi_id, derr));
	}
	goto reply;
warn:
	warnings = json_pack("[s]", PUSH_RETIREMENT_WARNING);
reply:
	if (*reply && warnings) {
		json_t *w = warnings;
		warnings = NULL; /* json_object_set_new takes it, even when failing */
		if (json_object_set_new(*reply, "warnings", w))
			rc = pb_err(err, PB_ENOMEM, "out of memory");
	} else {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	}
out:
	if (have_session)
		pbi_session_release(&s);
	msapi_item_release(&item);
	free(pt);
	free(pc);
	free(schema_text);
	json_decref(tables);
	json_decref(warnings);
	ds_free(existing);
	ds_free(d);
	conn_free(c);
	push_schema_release(&schema);
	return rc;
}

/* ======================================================================== rows */

static int table_rows_get(pb_db *db, const char *ds_id, const char *table, long *rows, char *err)
{
	sqlite3_stmt *st = NULL;
	*rows = 0;
	int rc = db_prepare(db, "SELECT rows FROM push_table_rows WHERE dataset_id = ? AND table_name = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, ds_id, err)) && !(rc = db_bind_text(st, 2, table, err)) &&
	    (rc = db_row(db, st, err)) == 1) {
		*rows = (long)sqlite3_column_int64(st, 0);
		rc = 0;
	}
	db_done(st);
	return rc;
}

/* set: rows = n; else rows += n, capped at cap (basicFIFO drops the oldest). */
static int table_rows_add(pb_db *db, const char *ds_id, const char *table, long n, long cap, bool set, char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare(db,
			    set ? "INSERT INTO push_table_rows (dataset_id, table_name, rows) VALUES (?, ?, ?) "
				  "ON CONFLICT (dataset_id, table_name) DO UPDATE SET rows = excluded.rows"
				: "INSERT INTO push_table_rows (dataset_id, table_name, rows) VALUES (?, ?, MIN(?, ?4)) "
				  "ON CONFLICT (dataset_id, table_name) DO UPDATE SET rows = MIN(rows + excluded.rows, ?4)",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, ds_id, err)) && !(rc = db_bind_text(st, 2, table, err))) {
		sqlite3_bind_int64(st, 3, n);
		if (!set)
			sqlite3_bind_int64(st, 4, cap);
		rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

/* The POST rows body {"rows":[...]} around a chunk's JSON array text, into out (reset first):
 * the converted rows are sent as the text they are, never parsed again. */
static int rows_body(sbuf *out, const char *rows_json, size_t len, char *err)
{
	sbuf_reset(out);
	if (sbuf_adds(out, "{\"rows\":") || sbuf_add(out, rows_json, len) || sbuf_addc(out, '}'))
		return pb_err(err, PB_ENOMEM, "out of memory");
	return 0;
}

static long retention_cap(const push_ds *d)
{
	return strcmp(d->retention, "basicFIFO") ? 5000000L : 200000L;
}

/* ---- spooled chunks (push_chunks) ----
 * A chunk is queued until a POST of it is granted; it is marked sending (a push_sending row with
 * the limiter's ticket and the time) in the transaction that grants it, leaves both tables in the
 * transaction that adds its rows to the table's count once Power BI accepted it, and is queued
 * again when Power BI answered without adding it. A chunk found sending may or may not have been
 * added: chunk_outcome_find finds out from the table's row count. */

/* The row of an upload (seq -1, rows_json = the job id) that names the job owning its chunks. */
#define SPOOL_OWNER_SEQ (-1)

typedef struct chunk_ref {
	long seq;
	long nrows;
	bool sending;
	int64_t sending_at_ms;
	int64_t ticket;           /* 0: none */
} chunk_ref;

static int chunk_insert(pb_db *db, const char *upload, long seq, const char *rows, size_t len, size_t nrows, char *err)
{
	sqlite3_stmt *st = NULL;
	char now[PB_TIME_BUF];
	pb_now(now);
	int rc = db_prepare(db, "INSERT INTO push_chunks (upload_id, seq, nrows, rows_json, created_at) VALUES (?, ?, ?, ?, ?)",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, upload, err))) {
		sqlite3_bind_int64(st, 2, seq);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)nrows);
		if (sqlite3_bind_text(st, 4, rows, (int)len, SQLITE_STATIC) != SQLITE_OK)
			rc = pb_err(err, PB_ENOMEM, "out of memory");
		else if (!(rc = db_bind_text(st, 5, now, err)))
			rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

/* Deletes from push_chunks and push_sending the upload's chunk seq, or all its rows (seq < 0). */
static int chunks_drop(pb_db *db, const char *upload, long seq_or_all, char *err)
{
	static const char *const all[] = { "DELETE FROM push_chunks WHERE upload_id = ?",
					   "DELETE FROM push_sending WHERE upload_id = ?" };
	static const char *const one[] = { "DELETE FROM push_chunks WHERE upload_id = ? AND seq = ?",
					   "DELETE FROM push_sending WHERE upload_id = ? AND seq = ?" };
	int rc = 0;
	for (size_t i = 0; !rc && i < 2; i++) {
		sqlite3_stmt *st = NULL;
		rc = db_prepare(db, seq_or_all < 0 ? all[i] : one[i], &st, err);
		if (!rc && !(rc = db_bind_text(st, 1, upload, err))) {
			if (seq_or_all >= 0)
				sqlite3_bind_int64(st, 2, seq_or_all);
			rc = db_exec(db, st, err);
		}
		db_done(st);
	}
	return rc;
}

/* sending: a POST of the chunk is about to go out under ticket; else it is queued again. */
static int chunk_mark(pb_db *db, const char *upload, long seq, bool sending, const char *ds_id, const char *table,
		      int64_t now_ms, int64_t ticket, char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare(db,
			    sending ? "INSERT INTO push_sending (upload_id, seq, dataset_id, table_name, sending_at_ms, ticket) "
				      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (upload_id, seq) DO UPDATE SET "
				      "sending_at_ms = excluded.sending_at_ms, ticket = excluded.ticket"
				    : "DELETE FROM push_sending WHERE upload_id = ? AND seq = ?",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, upload, err))) {
		sqlite3_bind_int64(st, 2, seq);
		if (sending && !(rc = db_bind_text(st, 3, ds_id, err)) && !(rc = db_bind_text(st, 4, table, err))) {
			sqlite3_bind_int64(st, 5, now_ms);
			sqlite3_bind_int64(st, 6, ticket);
		}
		if (!rc)
			rc = db_exec(db, st, err);
	}
	db_done(st);
	return rc;
}

/* The upload's next chunk (lowest seq): 1 with *c and its rows in body ({"rows":[...]}), 0 when
 * none is left. */
static int chunk_next(pb_db *db, const char *upload, chunk_ref *c, sbuf *body, char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare(db, "SELECT c.seq, c.nrows, c.rows_json, s.seq IS NOT NULL, s.sending_at_ms, s.ticket "
				"FROM push_chunks c LEFT JOIN push_sending s ON s.upload_id = c.upload_id AND s.seq = c.seq "
				"WHERE c.upload_id = ? AND c.seq >= 0 ORDER BY c.seq LIMIT 1",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, upload, err)) && (rc = db_row(db, st, err)) == 1) {
		c->seq = (long)sqlite3_column_int64(st, 0);
		c->nrows = (long)sqlite3_column_int64(st, 1);
		c->sending = sqlite3_column_int(st, 3) != 0;
		c->sending_at_ms = sqlite3_column_int64(st, 4);
		c->ticket = sqlite3_column_int64(st, 5);
		if (!(rc = rows_body(body, (const char *)sqlite3_column_text(st, 2), (size_t)sqlite3_column_bytes(st, 2), err)))
			rc = 1;
	}
	db_done(st);
	return rc;
}

/* ---- sending one chunk ---- */

/* One chunk to Power BI under the limiter. wait: block until the limiter grants (the job);
 * otherwise *refused is set when it would have to wait. 429s are waited out (Retry-After). */
typedef struct send_ctx {
	pb_db *db;
	push_limits lim;
	msapi *api;
	const push_ds *d;
	const char *table;
	long retention_cap;
	const char *upload;
	volatile int *stop;
	long requests, throttled;
	int64_t defer_ms;       /* set with PB_ELIMIT: the limiter asks for a wait too long to sleep through */
	bool unknown;           /* the last POST may or may not have added its rows (the chunk stays 'sending') */
	/* called in the transaction that records a chunk as added (may be NULL) */
	int (*on_added)(struct send_ctx *sc, long nrows, char *err);
	void *owner;            /* the on_added callback's */
} send_ctx;

/* Power BI added the chunk's rows: the table's count grows and the chunk goes, together. */
static int chunk_added(send_ctx *sc, long seq, long nrows, char *err)
{
	int rc = db_begin(sc->db, err);
	if (!rc && !(rc = table_rows_add(sc->db, sc->d->id, sc->table, nrows, sc->retention_cap, false, err)) &&
	    !(rc = chunks_drop(sc->db, sc->upload, seq, err)) && sc->on_added)
		rc = sc->on_added(sc, nrows, err);
	if (rc) {
		db_rollback(sc->db);
		return rc;
	}
	return db_commit(sc->db, err);
}

/* A POST rows answer that does not say whether the rows were added: no answer after sending,
 * or a gateway's 500/502/504 (the service behind it may have added them). */
static bool post_outcome_unknown(const msapi *api)
{
	return api->last.outcome_unknown || api->last.status == 500 || api->last.status == 502 ||
	       api->last.status == 504;
}

/* body: a whole {"rows":[...]} text (rows_body) of the upload's chunk seq, of nrows rows. */
static int send_chunk(send_ctx *sc, long seq, const char *body, size_t len, long nrows, bool wait, bool *refused,
		      char *err)
{
	int rc = 0;
	char rerr[PB_ERR_MAX];
	if (refused)
		*refused = false;
	sc->unknown = false;
	for (int round = 0;; round++) {
		long table_rows = 0;
		int64_t wait_ms = 0, ticket = 0, now = pb_epoch_ms();
		/* the grant and the 'sending' mark in one transaction: a chunk that may be on its way is
		 * never left looking queued */
		if ((rc = db_begin(sc->db, err)))
			break;
		if ((rc = table_rows_get(sc->db, sc->d->id, sc->table, &table_rows, err)) ||
		    (rc = rate_acquire_locked(sc->db, &sc->lim, sc->d->powerbi_id, nrows, table_rows, now, &wait_ms, &ticket,
					      err)) ||
		    (ticket && (rc = chunk_mark(sc->db, sc->upload, seq, true, sc->d->id, sc->table, now, ticket, err)))) {
			db_rollback(sc->db);
			break;
		}
		if ((rc = db_commit(sc->db, err)))
			break;
		if (wait_ms) {
			if (!wait) {
				*refused = true;
				break;
			}
			if (wait_ms > PB_PUSH_WAIT_INLINE_MS) {
				/* an hour-long wait frees the worker: the job comes back when it fits */
				sc->defer_ms = wait_ms;
				rc = pb_err(err, PB_ELIMIT, "waiting %lld s for Power BI's push rate limit",
					    (long long)(wait_ms / 1000));
				break;
			}
			pb_sleep_interruptible(wait_ms, sc->stop);
			if (sc->stop && *sc->stop) {
				rc = pb_err(err, PB_EIO, "stopped while waiting for the push rate limit");
				break;
			}
			round--;
			continue;
		}
		rc = powerbi_push_rows_text(sc->api, sc->d->workspace_id, sc->d->powerbi_id, sc->table, body, len, err);
		sc->requests += sc->api->last.attempts > 0 ? sc->api->last.attempts : 1;
		bool throttled = rc && sc->api->last.status == 429;
		if (sc->api->last.attempts > 1 || throttled)
			sc->throttled += sc->api->last.attempts - (rc ? 0 : 1);
		if (!rc) {
			rc = chunk_added(sc, seq, nrows, err);
			/* in flight no more, counted in the windows */
			int rrc = push_rate_release(sc->db, ticket, true, rerr);
			if (!rc && rrc)
				rc = pb_err(err, rrc, "%s", rerr);
			break;
		}
		if (post_outcome_unknown(sc->api)) {
			/* the chunk stays 'sending' and the ticket in flight: the request may still be under
			 * way at Power BI, and the limiter counts it so until inflight_ms has passed */
			sc->unknown = true;
			break;
		}
		/* Power BI answered without adding the rows */
		int rrc = chunk_mark(sc->db, sc->upload, seq, false, NULL, NULL, 0, 0, rerr);
		if (!rrc)
			rrc = push_rate_release(sc->db, ticket, !throttled, rerr);
		if (rrc) {
			rc = pb_err(err, rrc, "%s", rerr);
			break;
		}
		if (throttled && !wait) {
			/* the answer-at-once path does not wait out Power BI: the job will */
			*refused = true;
			rc = 0;
			break;
		}
		if (!throttled || round + 1 >= PB_PUSH_THROTTLE_ROUNDS)
			break;
		/* Power BI's own Retry-After is the wait; the limiter is asked again afterwards */
		long ra = sc->api->last.retry_after_s > 0 ? sc->api->last.retry_after_s : 1;
		if (ra * 1000L > PB_PUSH_WAIT_INLINE_MS) {
			/* an hour-long Retry-After frees the worker too: the job comes back then */
			char until[PB_TIME_BUF];
			pb_time_in(ra * 1000LL, until);
			sc->defer_ms = ra * 1000LL;
			rc = pb_err(err, PB_ELIMIT, "Power BI answered 429 with Retry-After %ld s: sending goes on at %s", ra,
				    until);
			break;
		}
		pb_sleep_interruptible(ra * 1000, sc->stop);
		if (sc->stop && *sc->stop)
			break;
	}
	return rc;
}

/* ---- whether a chunk marked 'sending' was added ---- */

typedef enum chunk_outcome {
	OUTCOME_ADDED,          /* Power BI holds its rows */
	OUTCOME_NOT_ADDED,      /* it does not, and the request can no longer be under way: send it again */
	OUTCOME_WAIT,           /* ask again after *wait_ms */
	OUTCOME_UNKNOWN,        /* a row count cannot tell (why says so) */
} chunk_outcome;

/* Other writes that would make the table's row count ambiguous: *busy when a POST rows to the
 * dataset (pbiport's, the limiter's tickets) or a chunk of the table may be under way now;
 * *stuck when another chunk of the table was sent longer ago than a request can take and
 * nobody knows whether it was added. mine (may be NULL): the chunk being asked about. */
static int others_sending(send_ctx *sc, const chunk_ref *mine, int64_t now, bool *busy, bool *stuck, char *err)
{
	sqlite3_stmt *st = NULL;
	int rc, row;
	*busy = *stuck = false;
	if ((rc = db_prepare(sc->db, "SELECT 1 FROM push_rate_events WHERE dataset_key = ? AND done = 0 AND at_ms > ? "
				     "AND id <> ? LIMIT 1",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, sc->d->powerbi_id, err)))
		goto out;
	sqlite3_bind_int64(st, 2, now - sc->lim.inflight_ms);
	sqlite3_bind_int64(st, 3, mine ? mine->ticket : 0);
	if ((row = db_row(sc->db, st, err)) < 0) {
		rc = row;
		goto out;
	}
	*busy = row == 1;
	db_done(st);
	st = NULL;
	if ((rc = db_prepare(sc->db, "SELECT sending_at_ms FROM push_sending WHERE dataset_id = ? AND table_name = ? "
				     "AND NOT (upload_id = ? AND seq = ?)",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, sc->d->id, err)) || (rc = db_bind_text(st, 2, sc->table, err)) ||
	    (rc = db_bind_text(st, 3, sc->upload, err)))
		goto out;
	sqlite3_bind_int64(st, 4, mine ? mine->seq : -2);
	while ((row = db_row(sc->db, st, err)) == 1) {
		if (sqlite3_column_int64(st, 0) > now - sc->lim.inflight_ms)
			*busy = true;
		else
			*stuck = true;
	}
	rc = row < 0 ? row : 0;
out:
	db_done(st);
	return rc;
}

/* Power BI's count of a table read while no other write could change it. */
typedef struct table_count {
	long tracked;             /* pbiport's count */
	long long counted;        /* Power BI's (when count_rc is 0 and quiet) */
	bool quiet;               /* false: another write was or may have been under way, or pbiport's count moved */
	bool stuck;               /* another chunk of the table has an unknown outcome (others_sending) */
	int count_rc;             /* Power BI could not count: count_err says why */
	char count_err[PB_ERR_MAX];
} table_count;

static int quiet_count(send_ctx *sc, const chunk_ref *mine, table_count *tc, char *err)
{
	bool busy = false;
	long again = 0;
	int rc;
	memset(tc, 0, sizeof *tc);
	if ((rc = others_sending(sc, mine, pb_epoch_ms(), &busy, &tc->stuck, err)) || busy || tc->stuck ||
	    (rc = table_rows_get(sc->db, sc->d->id, sc->table, &tc->tracked, err)))
		return rc;
	if ((tc->count_rc = powerbi_table_row_count(sc->api, sc->d->workspace_id, sc->d->powerbi_id, sc->table,
						    &tc->counted, tc->count_err)))
		return 0;
	if ((rc = others_sending(sc, mine, pb_epoch_ms(), &busy, &tc->stuck, err)) ||
	    (rc = table_rows_get(sc->db, sc->d->id, sc->table, &again, err)))
		return rc;
	tc->quiet = !busy && !tc->stuck && again == tc->tracked;
	return 0;
}

/* Whether chunk c, marked 'sending', was added, from Power BI's row count of the table against
 * pbiport's own (which counts every chunk pbiport knows was added): the same count means not
 * added (once the request can no longer be under way), the count plus the chunk's rows means
 * added; anything else, another writer. Valid only while pbiport is the table's only writer:
 * other writes in flight make it wait, other unknown chunks make it unknown. why gets the reason
 * for anything but OUTCOME_ADDED (PB_OK: a reason, not a failure); the return is a failure of
 * pbiport's own database. */
static int chunk_outcome_find(send_ctx *sc, const chunk_ref *c, chunk_outcome *out, int64_t *wait_ms, char *why, char *err)
{
	table_count tc;
	*wait_ms = 0;
	int rc = quiet_count(sc, c, &tc, err);
	if (rc)
		return rc;
	if (tc.stuck) {
		*out = OUTCOME_UNKNOWN;
		return pb_err(why, PB_OK, "another upload to table '%s' also has rows whose outcome is unknown, so the "
			      "row count cannot tell them apart", sc->table);
	}
	if (tc.count_rc) {
		bool again = tc.count_rc == PB_ELIMIT || sc->api->last.status == 429 || sc->api->last.status >= 500 ||
			     !sc->api->last.status;
		*out = again ? OUTCOME_WAIT : OUTCOME_UNKNOWN;
		*wait_ms = sc->api->last.retry_after_s > 0 ? sc->api->last.retry_after_s * 1000 : PB_PUSH_OUTCOME_RETRY_MS;
		return pb_err(why, PB_OK, "Power BI could not count the rows of table '%s': %s", sc->table, tc.count_err);
	}
	if (!tc.quiet) {
		*out = OUTCOME_WAIT;
		*wait_ms = PB_PUSH_OUTCOME_POLL_MS;
		return pb_err(why, PB_OK, "other rows are being sent to dataset '%s'", sc->d->name);
	}
	long with = tc.tracked + c->nrows < sc->retention_cap ? tc.tracked + c->nrows : sc->retention_cap;
	if (with == tc.tracked) {
		*out = OUTCOME_UNKNOWN;
		return pb_err(why, PB_OK, "table '%s' holds the %ld rows its basicFIFO retention keeps, so its row count "
			      "does not change when rows are added", sc->table, tc.tracked);
	}
	if (tc.counted == with) {
		*out = OUTCOME_ADDED;
		return 0;
	}
	if (tc.counted == tc.tracked) {
		int64_t left = c->sending_at_ms + sc->lim.inflight_ms - pb_epoch_ms();
		*out = left > 0 ? OUTCOME_WAIT : OUTCOME_NOT_ADDED;
		*wait_ms = left > 0 ? left : 0;
		return left > 0 ? pb_err(why, PB_OK, "Power BI does not hold them yet; the request may still be under way "
						     "there for %lld s",
					 (long long)((left + 999) / 1000))
				: 0;
	}
	*out = OUTCOME_UNKNOWN;
	return pb_err(why, PB_OK, "Power BI counts %lld rows in table '%s' where pbiport expected %ld without them or "
		      "%ld with them: another program writes to this table, or earlier rows had an unknown outcome",
		      tc.counted, sc->table, tc.tracked, with);
}

/* Before a job sends anything: when nothing else writes to the table, pbiport's count of it
 * takes Power BI's (so the outcome of a chunk can be told later even after rows were added
 * outside pbiport, or with an unknown outcome). Best effort: a count that fails changes nothing. */
static int table_rows_sync(send_ctx *sc, char *err)
{
	table_count tc;
	int rc = quiet_count(sc, NULL, &tc, err);
	if (rc || (!tc.count_rc && !tc.quiet) || tc.stuck)
		return rc;
	if (tc.count_rc) {
		log_event("warn", NULL, "push dataset %s table '%s': %s", sc->d->id, sc->table, tc.count_err);
		return 0;
	}
	if (tc.counted == tc.tracked)
		return 0;
	log_event("info", NULL, "push dataset %s table '%s': Power BI holds %lld rows, pbiport counted %ld; taking Power BI's",
		  sc->d->id, sc->table, tc.counted, tc.tracked);
	return table_rows_add(sc->db, sc->d->id, sc->table, (long)tc.counted, 0, true, err);
}

/* ---- spooling a body ---- */

/* Chunks of one body: the first one is kept in memory (a small body is sent at once), the
 * rest, and the first once a second arrives, go to push_chunks. */
typedef struct spool {
	pb_db *db;
	char upload_id[PB_ID_BUF];
	long seq;
	char *first;
	size_t first_len, first_rows;
	bool spilled;
} spool;

static int spool_first(spool *sp, char *err)
{
	int rc = chunk_insert(sp->db, sp->upload_id, 0, sp->first, sp->first_len, sp->first_rows, err);
	sp->spilled = true;
	return rc;
}

static int spool_chunk(void *ctx, const char *rows, size_t len, size_t nrows, char *err)
{
	spool *sp = ctx;
	int rc;
	if (sp->seq == 0) {
		sp->seq = 1;
		if (!(sp->first = xstrndup(rows, len)))
			return pb_err(err, PB_ENOMEM, "out of memory");
		sp->first_len = len;
		sp->first_rows = nrows;
		return 0;
	}
	if (!sp->spilled && (rc = spool_first(sp, err)))
		return rc;
	return chunk_insert(sp->db, sp->upload_id, sp->seq++, rows, len, nrows, err);
}

/* Opens the dataset's connection and session. On failure *status and *reply say why. */
static int ds_session(pb_db *db, const pb_config *cfg, const push_ds *d, pbi_session *s, bool *have, int *status,
		      json_t **reply, char *err)
{
	push_conn *c = NULL;
	char code[PBI_CODE_MAX] = "";
	int rc = conn_get(db, NULL, d->connection_id, &c, err);
	if (!rc && (rc = conn_session(cfg, c, s, code, err)))
		rc = upstream_reply(NULL, code[0] ? code : "bad_credentials", rc, status, reply, err);
	else if (!rc)
		*have = true;
	conn_free(c);
	return rc;
}

int push_rows_ingest(pb_db *db, const pb_config *cfg, const push_caller *who, const char *dataset_id, const char *table,
		     const char *media_type, const push_source *src, int *status, json_t **reply, char *err)
{
	push_ds *d = NULL;
	push_reader *rd = NULL;
	pbi_session s = { 0 };
	bool have_session = false, refused = false, unknown = false;
	spool sp = { .db = db };
	long requests_before = 0, throttled_before = 0;
	push_format fmt;
	char *buf = NULL;
	sbuf body;
	int rc;
	*reply = NULL;
	sbuf_init(&body, PB_PUSH_CHUNK_BODY_MAX);
	if ((rc = push_format_from_media_type(media_type, &fmt, err)))
		return error_reply(status, reply, 415, "unsupported_media_type", err, err);
	if ((rc = ds_get(db, who, dataset_id, &d, err)))
		return rc;
	const push_table *t = push_schema_table(&d->schema, table);
	if (!t) {
		rc = error_reply(status, reply, 404, "not_found", "the push dataset has no such table", err);
		goto out;
	}
	if ((rc = pb_new_id(sp.upload_id, err)) ||
	    (rc = push_reader_new(t, fmt, POWERBI_PUSH_ROWS_MAX, spool_chunk, &sp, &rd, err)))
		goto out;
	enum { BUFSZ = 64 * 1024 };
	if (!(buf = malloc(BUFSZ))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		long n = src->read(src->ctx, buf, BUFSZ);
		if (n < 0) {
			rc = error_reply(status, reply, 400, "bad_request", "the request body could not be read", err);
			goto out;
		}
		if (!n)
			break;
		if ((rc = push_reader_feed(rd, buf, (size_t)n, err)))
			break;
	}
	if (!rc)
		rc = push_reader_finish(rd, err);
	if (rc == PB_EINVAL) {
		/* nothing was sent: the whole body is refused */
		rc = error_reply(status, reply, 400, "invalid_rows", err, err);
		goto out;
	}
	if (rc)
		goto out;
	long total = (long)push_reader_rows(rd);
	if (!total) {
		rc = error_reply(status, reply, 400, "invalid_rows", "the body holds no rows", err);
		goto out;
	}
	if (!sp.spilled) {
		/* one chunk: send it now if the limiter lets us. It is spooled first, so that a POST whose
		 * outcome is unknown leaves it marked 'sending' for the job to find out. */
		send_ctx sc = { .db = db, .d = d, .table = t->name, .retention_cap = retention_cap(d), .upload = sp.upload_id };
		if ((rc = push_limits_from_env(&sc.lim, err)) ||
		    (rc = ds_session(db, cfg, d, &s, &have_session, status, reply, err)))
			goto out;
		if (*reply)
			goto out;
		sc.api = &s.api;
		/* a 429 here is not waited out in the web request: msapi gives up soon and the job waits */
		s.api.wait_budget_ms = 2000;
		if ((rc = rows_body(&body, sp.first, sp.first_len, err)) || (rc = spool_first(&sp, err)))
			goto out;
		rc = send_chunk(&sc, 0, sbuf_str(&body), body.len, (long)sp.first_rows, false, &refused, err);
		if (rc && !sc.unknown) {
			rc = upstream_reply(&s.api, pbi_session_code(&s), rc, status, reply, err);
			goto out;
		}
		if (!rc && !refused) {
			sp.spilled = false; /* sent: the chunk left push_chunks with its rows counted */
			*status = 200;
			*reply = json_pack("{s:I, s:I, s:I}", "rows_accepted", (json_int_t)total, "requests",
					   (json_int_t)sc.requests, "throttled", (json_int_t)sc.throttled);
			rc = *reply ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		/* refused by the limiter or a 429 (queued again), or sent with no answer (still
		 * 'sending'): the job sends it, or first finds out whether Power BI added it */
		rc = 0;
		unknown = sc.unknown;
		requests_before = sc.requests;
		throttled_before = sc.throttled;
	}
	/* the rest runs as a job: the chunks wait in push_chunks (with the calls already made) */
	char job_id[PB_ID_BUF], key[64], url[80];
	bool existing = false;
	json_t *input = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "upload_id", sp.upload_id, "dataset_id", d->id, "table",
				  t->name, "rows", (json_int_t)total, "requests_before", (json_int_t)requests_before,
				  "throttled_before", (json_int_t)throttled_before);
	char *text = input ? json_dumps(input, JSON_COMPACT) : NULL;
	json_decref(input);
	if (!text) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	xsnprintf(key, sizeof key, "push:%s", sp.upload_id);
	pb_job_spec spec = { .kind = "push_rows", .org_id = who->org_id, .user_id = who->user_id, .input = text,
			     .idempotency_key = key, .max_attempts = PB_PUSH_JOB_ATTEMPTS };
	rc = jobs_submit(db, &spec, job_id, &existing, err);
	free(text);
	if (rc)
		goto out;
	sp.spilled = false; /* the job owns the chunks now */
	/* the owner row tells the spool sweep (push_spool_sweep) these chunks are not orphans. If
	 * it cannot be written the job still runs; should the sweep take its chunks first, the
	 * job says rows were lost instead of claiming success. */
	char oerr[PB_ERR_MAX];
	chunk_insert(db, sp.upload_id, SPOOL_OWNER_SEQ, job_id, strlen(job_id), 0, oerr);
	xsnprintf(url, sizeof url, "/api/jobs/%s", job_id);
	*status = 202;
	*reply = json_pack("{s:s, s:s, s:I}", "job_id", job_id, "status_url", url, "rows", (json_int_t)total);
	if (*reply && unknown)
		json_object_set_new(*reply, "warnings",
				    json_pack("[s]", "the connection to Power BI dropped after the rows were sent: the job "
						     "finds out from the table's row count whether they were added before "
						     "sending them again"));
	rc = *reply ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
out:
	if (sp.spilled) {
		char derr[PB_ERR_MAX];
		chunks_drop(db, sp.upload_id, -1, derr);
	}
	if (have_session)
		pbi_session_release(&s);
	sbuf_release(&body);
	free(buf);
	free(sp.first);
	push_reader_free(rd);
	ds_free(d);
	return rc;
}

int push_rows_delete(pb_db *db, const pb_config *cfg, const push_caller *who, const char *dataset_id, const char *table,
		     int *status, json_t **reply, char *err)
{
	push_ds *d = NULL;
	pbi_session s = { 0 };
	bool have = false;
	*reply = NULL;
	int rc = ds_get(db, who, dataset_id, &d, err);
	if (rc)
		return rc;
	const push_table *t = push_schema_table(&d->schema, table);
	if (!t) {
		rc = error_reply(status, reply, 404, "not_found", "the push dataset has no such table", err);
		goto out;
	}
	if ((rc = ds_session(db, cfg, d, &s, &have, status, reply, err)) || *reply)
		goto out;
	if ((rc = powerbi_push_delete_rows(&s.api, d->workspace_id, d->powerbi_id, t->name, err))) {
		rc = upstream_reply(&s.api, pbi_session_code(&s), rc, status, reply, err);
		goto out;
	}
	if ((rc = table_rows_add(db, d->id, t->name, 0, 0, true, err)))
		goto out;
	*status = 200;
	*reply = json_pack("{s:s, s:s, s:b}", "dataset_id", d->id, "table", t->name, "cleared", 1);
	rc = *reply ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
out:
	if (have)
		pbi_session_release(&s);
	ds_free(d);
	return rc;
}

int push_dataset_delete(pb_db *db, const pb_config *cfg, const push_caller *who, const char *id, int *status,
			json_t **reply, char *err)
{
	push_ds *d = NULL;
	pbi_session s = { 0 };
	sqlite3_stmt *st = NULL;
	bool have = false;
	*reply = NULL;
	int rc = ds_get(db, who, id, &d, err);
	if (rc)
		return rc;
	if ((rc = ds_session(db, cfg, d, &s, &have, status, reply, err)) || *reply)
		goto out;
	/* Power BI first: a record whose dataset could not be deleted stays, so the delete can be
	 * asked again (a dataset already gone there counts as deleted) */
	if ((rc = powerbi_dataset_delete(&s.api, d->workspace_id, d->powerbi_id, err))) {
		rc = upstream_reply(&s.api, pbi_session_code(&s), rc, status, reply, err);
		goto out;
	}
	/* its table counts go with it (ON DELETE CASCADE); jobs still holding rows for it fail with
	 * "the push dataset was deleted" and drop them */
	if ((rc = db_prepare(db, "DELETE FROM push_datasets WHERE id = ?", &st, err)) ||
	    (rc = db_bind_text(st, 1, d->id, err)) || (rc = db_exec(db, st, err)))
		goto out;
	*status = 204;
out:
	db_done(st);
	if (have)
		pbi_session_release(&s);
	ds_free(d);
	return rc;
}

/* ======================================================================== spool sweep */

/* Is the job named by an owner row still going to send its chunks? */
static int owner_alive(pb_db *db, const char *job_id, bool *alive, char *err)
{
	pb_job *j = NULL;
	int rc = job_id && *job_id ? jobs_get(db, job_id, &j, err) : PB_ENOTFOUND;
	*alive = false;
	if (rc == PB_ENOTFOUND)
		return 0;
	if (!rc)
		*alive = !strcmp(j->state, "queued") || !strcmp(j->state, "running");
	job_free(j);
	return rc;
}

int push_spool_sweep(pb_db *db, const char *older_than, size_t *dropped, char *err)
{
	sqlite3_stmt *st = NULL;
	char (*ids)[PB_ID_BUF] = NULL, (*owners)[PB_ID_BUF] = NULL;
	size_t n = 0;
	int rc, row;
	*dropped = 0;
	/* uploads whose newest chunk is older than the limit, with the job that owns them (if any) */
	rc = db_prepare(db,
			"SELECT upload_id, MAX(CASE WHEN seq = -1 THEN rows_json END) FROM push_chunks GROUP BY upload_id "
			"HAVING MAX(created_at) < ? LIMIT ?",
			&st, err);
	if (rc || (rc = db_bind_text(st, 1, older_than, err)))
		goto out;
	sqlite3_bind_int(st, 2, PB_LIST_MAX_ITEMS);
	if (!(ids = calloc(PB_LIST_MAX_ITEMS, sizeof *ids)) || !(owners = calloc(PB_LIST_MAX_ITEMS, sizeof *owners))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	while ((row = db_row(db, st, err)) == 1) {
		xsnprintf(ids[n], sizeof ids[n], "%s", db_col_text(st, 0));
		xsnprintf(owners[n], sizeof owners[n], "%s", db_col_text(st, 1) ? db_col_text(st, 1) : "");
		n++;
	}
	db_done(st);
	st = NULL;
	if (row < 0) {
		rc = row;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		bool alive = false;
		/* no owner: the POST that spooled them died before queueing its job; an owner that
		 * ended (or is gone) did not take them with it */
		if ((rc = owner_alive(db, owners[i], &alive, err)))
			goto out;
		if (alive)
			continue;
		if ((rc = chunks_drop(db, ids[i], -1, err)))
			goto out;
		(*dropped)++;
	}
out:
	db_done(st);
	free(ids);
	free(owners);
	return rc;
}

int push_spool_tick(pb_db *db, const pb_config *cfg, char *err)
{
	static int64_t last_ms;
	char cutoff[PB_TIME_BUF];
	size_t dropped = 0;
	int64_t now = pb_epoch_ms();
	(void)cfg;
	if (last_ms && now - last_ms < PB_PUSH_SPOOL_SWEEP_MS)
		return 0;
	last_ms = now;
	pb_time_format(now - PB_PUSH_SPOOL_ORPHAN_S * 1000LL, cutoff);
	return push_spool_sweep(db, cutoff, &dropped, err);
}

/* ======================================================================== the job */

/* The job's counts, saved with every chunk it adds (in that chunk's transaction). */
typedef struct job_counts {
	pb_job_ctx *ctx;
	long accepted;
} job_counts;

static int job_chunk_added(send_ctx *sc, long nrows, char *err)
{
	job_counts *jc = sc->owner;
	pb_job_ctx *ctx = jc->ctx;
	/* job_checkpoint writes the whole object: the counters ride along with rows_accepted */
	if (json_object_set_new(ctx->checkpoint, "requests", json_integer(sc->requests)) ||
	    json_object_set_new(ctx->checkpoint, "throttled", json_integer(sc->throttled)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	int rc = job_checkpoint(ctx, "rows_accepted", json_integer(jc->accepted + nrows));
	if (rc && err != ctx->err)
		xsnprintf(err, PB_ERR_MAX, "%s", ctx->err);
	if (!rc)
		jc->accepted += nrows;
	return rc;
}

/* Ends the job naming every row: first..last failed (what, why), the rows before were added,
 * the rows after were never sent. why may be ctx->err: it is copied before the message is. */
static int job_fail_rows(pb_job_ctx *ctx, const char *code, const char *what, long first, long last, long total,
			 const char *why)
{
	char cause[PB_ERR_MAX], added[96], unsent[160];
	xsnprintf(cause, sizeof cause, "%s", why);
	if (first > 1)
		xsnprintf(added, sizeof added, "rows 1 to %ld were added", first - 1);
	else
		xsnprintf(added, sizeof added, "no rows were added before them");
	if (last < total)
		xsnprintf(unsent, sizeof unsent, "rows %ld to %ld were not sent: send them again", last + 1, total);
	else
		xsnprintf(unsent, sizeof unsent, "no rows were left unsent");
	return job_fail(ctx, code, "rows %ld to %ld: %s (%s); %s; %s", first, last, what, cause, added, unsent);
}

/* A transient failure: the job comes back after after_ms (0: the worker's back-off). A wait
 * a limit imposes (rate_limited) does not use up an attempt. */
static int job_again(pb_job_ctx *ctx, long after_ms, const char *code, long accepted, long total)
{
	if (!strcmp(code, "rate_limited"))
		return job_wait(ctx, after_ms, code, "%s (%ld of %ld rows sent)", ctx->err, accepted, total);
	return job_retry_later(ctx, after_ms, code, "%s (%ld of %ld rows sent)", ctx->err, accepted, total);
}

int push_rows_job(pb_job_ctx *ctx)
{
	json_t *in = json_loads(ctx->job->input, 0, NULL);
	const char *upload = json_string_value(json_object_get(in, "upload_id"));
	const char *ds_id = json_string_value(json_object_get(in, "dataset_id"));
	const char *table = json_string_value(json_object_get(in, "table"));
	push_ds *d = NULL;
	pbi_session s = { 0 };
	bool have = false;
	json_t *reply = NULL;
	int status = 0, rc;
	long checked = 0;
	int64_t waited_ms = 0;
	sbuf body;
	sbuf_init(&body, PB_PUSH_CHUNK_BODY_MAX);
	if (!upload || !ds_id || !table) {
		rc = job_fail(ctx, "bad_input", "the job input lacks upload_id, dataset_id or table");
		goto out;
	}
	/* counts survive a restart in the checkpoint, written with each chunk's removal */
	job_counts jc = { .ctx = ctx };
	send_ctx sc = { .db = ctx->db, .table = table, .upload = upload, .stop = ctx->stop, .on_added = job_chunk_added,
			.owner = &jc };
	json_t *cp_req = json_object_get(ctx->checkpoint, "requests"), *cp_thr = json_object_get(ctx->checkpoint, "throttled");
	sc.requests = (long)json_integer_value(cp_req ? cp_req : json_object_get(in, "requests_before"));
	sc.throttled = (long)json_integer_value(cp_thr ? cp_thr : json_object_get(in, "throttled_before"));
	jc.accepted = (long)json_integer_value(json_object_get(ctx->checkpoint, "rows_accepted"));
	checked = (long)json_integer_value(json_object_get(ctx->checkpoint, "outcomes_checked"));
	long total = (long)json_integer_value(json_object_get(in, "rows"));
	if ((rc = ds_get(ctx->db, NULL, ds_id, &d, ctx->err))) {
		if (rc == PB_ENOTFOUND)
			rc = job_fail(ctx, "not_found", "the push dataset was deleted");
		goto out;
	}
	sc.d = d;
	sc.retention_cap = retention_cap(d);
	if ((rc = push_limits_from_env(&sc.lim, ctx->err)) ||
	    (rc = ds_session(ctx->db, ctx->cfg, d, &s, &have, &status, &reply, ctx->err)))
		goto out;
	if (reply) {
		rc = job_fail(ctx, json_string_value(json_object_get(json_object_get(reply, "error"), "code")), "%s",
			      json_string_value(json_object_get(json_object_get(reply, "error"), "message")));
		goto out;
	}
	sc.api = &s.api;
	/* Power BI's push budget is the tenant's: a Retry-After another job got holds this one
	 * too, in the queue rather than in the worker (core/tenant_backoff.h) */
	char tenant[PB_PBI_ID_MAX + 1] = "";
	push_conn *pc = NULL;
	bool held = false;
	if (!(rc = conn_get(ctx->db, NULL, d->connection_id, &pc, ctx->err)))
		xsnprintf(tenant, sizeof tenant, "%s", pc->tenant_id);
	conn_free(pc);
	if (rc || (rc = tenant_backoff_hold_job(ctx, tenant, TB_PUSH, NULL, &held)))
		goto out;
	if ((rc = job_phase(ctx, "sending", total ? (int)(jc.accepted * 100 / total) : 0)))
		goto out;
	for (;;) {
		chunk_ref c = { 0 };
		if ((rc = chunk_next(ctx->db, upload, &c, &body, ctx->err)) <= 0)
			break;
		long first = jc.accepted + 1, last = jc.accepted + c.nrows;
		if (!json_object_get(ctx->checkpoint, "rows_synced")) {
			/* before the first POST: pbiport's count of the table takes Power BI's */
			if ((!c.sending && (rc = table_rows_sync(&sc, ctx->err))) ||
			    (rc = job_checkpoint(ctx, "rows_synced", json_true())))
				goto out;
		}
		if (c.sending) {
			/* a POST of it was made and nobody knows whether Power BI added its rows */
			chunk_outcome o;
			int64_t wait_ms = 0;
			char why[PB_ERR_MAX] = "";
			if ((rc = chunk_outcome_find(&sc, &c, &o, &wait_ms, why, ctx->err)))
				goto out;
			if (o == OUTCOME_WAIT) {
				/* short waits here, up to the limiter's inline bound in all; longer ones free the worker */
				if (waited_ms + wait_ms <= PB_PUSH_WAIT_INLINE_MS) {
					pb_sleep_interruptible(wait_ms, ctx->stop);
					waited_ms += wait_ms;
					if (!ctx->stop || !*ctx->stop)
						continue;
				}
				rc = job_wait(ctx, (long)wait_ms, "outcome_pending",
						     "rows %ld to %ld: waiting to find out whether Power BI added them: %s", first,
						     last, why);
				goto out;
			}
			if (o == OUTCOME_UNKNOWN) {
				rc = job_fail_rows(ctx, "outcome_unknown",
						   "Power BI may or may not have added them, and its row count cannot tell; "
						   "check the table for them before sending them again",
						   first, last, total, why);
				goto out;
			}
			if ((rc = job_checkpoint(ctx, "outcomes_checked", json_integer(++checked))))
				goto out;
			char rerr[PB_ERR_MAX];
			if (o == OUTCOME_ADDED) {
				if ((rc = chunk_added(&sc, c.seq, c.nrows, ctx->err)))
					goto out;
				if (c.ticket)
					push_rate_release(ctx->db, c.ticket, true, rerr);
				if ((rc = job_phase(ctx, "sending", total ? (int)(jc.accepted * 100 / total) : 100)))
					goto out;
				continue;
			}
			/* not added, and the request is over: send it again */
			if ((rc = chunk_mark(ctx->db, upload, c.seq, false, NULL, NULL, 0, 0, ctx->err)))
				goto out;
			if (c.ticket)
				push_rate_release(ctx->db, c.ticket, false, rerr);
		}
		if ((rc = send_chunk(&sc, c.seq, sbuf_str(&body), body.len, c.nrows, true, NULL, ctx->err))) {
			if (sc.unknown)
				continue; /* the chunk is still 'sending': the next round finds out */
			if (s.api.last.status == 429)   /* holds back every push caller on the tenant */
				tenant_backoff_record(ctx->db, tenant, TB_PUSH, s.api.last.retry_after_s,
						      "push job %s sending rows to dataset %s", ctx->job->id, d->powerbi_id);
			if (rc == PB_ELIMIT && sc.defer_ms)
				rc = job_again(ctx, (long)sc.defer_ms, "rate_limited", jc.accepted, total);
			else if (s.api.last.status == 429 || s.api.last.status >= 500 || !s.api.last.status)
				rc = job_again(ctx, s.api.last.retry_after_s > 0 ? s.api.last.retry_after_s * 1000 : 0,
					       "powerbi_unavailable", jc.accepted, total);
			else
				rc = job_fail_rows(ctx, "powerbi_rejected", "Power BI refused them", first, last, total,
						   ctx->err);
			goto out;
		}
		if ((rc = job_phase(ctx, "sending", total ? (int)(jc.accepted * 100 / total) : 100)))
			goto out;
	}
	if (rc < 0)
		goto out;
	/* rows missing with no chunk left: the sweep took them (the owner row could not be written) */
	if (jc.accepted < total) {
		rc = job_fail(ctx, "rows_lost",
			      "%ld of %ld rows were sent; the spooled rest is gone (removed as abandoned while the job "
			      "waited): send rows %ld to %ld again",
			      jc.accepted, total, jc.accepted + 1, total);
		goto out;
	}
	/* done: the owner row goes too */
	if ((rc = chunks_drop(ctx->db, upload, -1, ctx->err)))
		goto out;
	ctx->result = json_pack("{s:I, s:I, s:I, s:I, s:s, s:s}", "rows_accepted", (json_int_t)jc.accepted, "requests",
				(json_int_t)sc.requests, "throttled", (json_int_t)sc.throttled, "outcomes_checked",
				(json_int_t)checked, "dataset_id", d->id, "table", table);
	rc = ctx->result ? 0 : pb_err(ctx->err, PB_ENOMEM, "out of memory");
out:
	/* a job that ends for good drops what it did not send */
	if (rc && !ctx->transient && upload) {
		char derr[PB_ERR_MAX];
		chunks_drop(ctx->db, upload, -1, derr);
	}
	sbuf_release(&body);
	if (have)
		pbi_session_release(&s);
	json_decref(reply);
	ds_free(d);
	json_decref(in);
	return rc;
}
