#include "runtime/page_form.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/crypto.h"
#include "runtime/request.h"
#include "runtime/util.h"

#define BOUNDARY_MAX 70   /* RFC 2046 */

bool page_form_type(const char *content_type)
{
	return content_type && (!strcmp(content_type, "application/x-www-form-urlencoded") ||
				!strcmp(content_type, "multipart/form-data"));
}

void page_form_clear(page_form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].name);
		free(f->v[i].filename);
		pb_secret_free(f->v[i].value, f->v[i].len);
	}
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

const page_field *page_form_get(const page_form *f, const char *name)
{
	for (size_t i = 0; f && i < f->n; i++)
		if (!strcmp(f->v[i].name, name))
			return &f->v[i];
	return NULL;
}

static bool good_name(const char *s, size_t len)
{
	if (len == 0 || len > PB_FORM_NAME_MAX || !utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Appends a field; takes name, filename and value (freed on failure too). */
static int add_field(page_form *f, char *name, char *filename, char *value, size_t len, char *err)
{
	page_field *v = NULL;
	if (f->n == PB_FORM_MAX_FIELDS) {
		free(name);
		free(filename);
		pb_secret_free(value, len);
		return pb_err(err, PB_EINVAL, "form: more than %d fields", PB_FORM_MAX_FIELDS);
	}
	if (!(v = realloc(f->v, (f->n + 1) * sizeof *v))) {
		free(name);
		free(filename);
		pb_secret_free(value, len);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	f->v = v;
	f->v[f->n++] = (page_field){ name, filename, value, len };
	return PB_OK;
}

static int parse_urlencoded(const char *body, size_t len, page_form *out, char *err)
{
	const char *p = body, *end = body + len;
	for (;;) {
		char *name = NULL, *value = NULL;
		int rc = url_next_pair(&p, end, &name, &value, err);
		if (rc == 0)
			return PB_OK;
		if (rc > 0 && !good_name(name, strlen(name)))
			rc = pb_err(err, PB_EINVAL, "form: a field name is empty, too long or has control characters");
		else if (rc < 0)
			rc = name ? pb_err(err, rc, "form field '%.64s': invalid encoding (bad %%-escape, NUL byte or "
					   "invalid UTF-8)", name)
				  : pb_err(err, rc, "form: a field name has an invalid encoding");
		if (rc < 0) {
			free(name);
			pb_secret_free(value, value ? strlen(value) : 0);
			return rc;
		}
		if ((rc = add_field(out, name, NULL, value, strlen(value), err)))
			return rc;
	}
}

/* The boundary parameter of a multipart Content-Type into out. */
static int find_boundary(const char *content_type, char out[BOUNDARY_MAX + 1], char *err)
{
	const char *p = content_type ? strchr(content_type, ';') : NULL;
	while (p) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!strncasecmp(p, "boundary=", 9)) {
			const char *v = p + 9;
			size_t n;
			if (*v == '"') {
				const char *q = strchr(++v, '"');
				n = q ? (size_t)(q - v) : 0;
			} else {
				n = strcspn(v, "; \t");
			}
			if (n == 0 || n > BOUNDARY_MAX)
				break;
			memcpy(out, v, n);
			out[n] = '\0';
			return PB_OK;
		}
		p = strchr(p, ';');
	}
	return pb_err(err, PB_EINVAL, "form: multipart/form-data without a valid boundary parameter");
}

/* The value of parameter key="..." in a Content-Disposition header line [p, end): a new
 * string, or NULL when absent (*bad set when it is there but malformed). */
static char *disposition_param(const char *p, const char *end, const char *key, bool *bad)
{
	size_t klen = strlen(key);
	for (const char *s = p; s + klen + 2 <= end; s++) {
		if ((s == p || s[-1] == ';' || s[-1] == ' ' || s[-1] == '\t') && !strncasecmp(s, key, klen) &&
		    s[klen] == '=') {
			const char *v = s + klen + 1;
			if (v >= end || *v != '"') {
				*bad = true;
				return NULL;
			}
			v++;
			const char *q = memchr(v, '"', (size_t)(end - v));
			if (!q) {
				*bad = true;
				return NULL;
			}
			char *out = xstrndup(v, (size_t)(q - v));
			if (!out)
				*bad = true;
			return out;
		}
	}
	return NULL;
}

/* One part's headers [p, end): the field name and, for a file, its file name (new). */
static int part_headers(const char *p, const char *end, char **name, char **filename, char *err)
{
	bool bad = false;
	*name = *filename = NULL;
	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		const char *line_end = eol ? eol : end;
		static const char cd[] = "content-disposition:";
		if ((size_t)(line_end - p) > sizeof cd - 1 && !strncasecmp(p, cd, sizeof cd - 1)) {
			const char *v = p + sizeof cd - 1;
			while (v < line_end && (*v == ' ' || *v == '\t'))
				v++;
			if ((size_t)(line_end - v) < 9 || strncasecmp(v, "form-data", 9))
				return pb_err(err, PB_EINVAL, "form: a part is not form-data");
			free(*name);
			free(*filename);
			*name = disposition_param(v, line_end, "name", &bad);
			*filename = bad ? NULL : disposition_param(v, line_end, "filename", &bad);
		}
		p = eol ? eol + 2 : end;
	}
	if (bad || !*name || !good_name(*name, strlen(*name)) ||
	    (*filename && (strlen(*filename) > PB_FORM_FILENAME_MAX || !utf8_valid(*filename, strlen(*filename))))) {
		free(*name);
		free(*filename);
		*name = *filename = NULL;
		return pb_err(err, PB_EINVAL, "form: a part has no valid Content-Disposition name");
	}
	return PB_OK;
}

static int parse_multipart(const char *content_type, const char *body, size_t len, page_form *out, char *err)
{
	char boundary[BOUNDARY_MAX + 1], delim[BOUNDARY_MAX + 5];
	int rc = find_boundary(content_type, boundary, err);
	if (rc)
		return rc;
	/* "\r\n--boundary": what ends every part */
	size_t dlen = strlen(boundary) + 4;
	xsnprintf(delim, sizeof delim, "\r\n--%s", boundary);
	const char *end = body + len, *p;
	/* the first delimiter starts the body (or a line after a preamble) */
	if (len >= dlen - 2 && !memcmp(body, delim + 2, dlen - 2)) {
		p = body + dlen - 2;
	} else {
		const char *d = memmem(body, len, delim, dlen);
		if (!d)
			return pb_err(err, PB_EINVAL, "form: the multipart body has no boundary line");
		p = d + dlen;
	}
	for (;;) {
		if (end - p >= 2 && !memcmp(p, "--", 2))
			return PB_OK;   /* the close delimiter */
		if (end - p < 2 || memcmp(p, "\r\n", 2))
			return pb_err(err, PB_EINVAL, "form: malformed multipart boundary line");
		p += 2;
		const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (!hend)
			return pb_err(err, PB_EINVAL, "form: a multipart part has no end of headers");
		char *name = NULL, *filename = NULL;
		if ((rc = part_headers(p, hend + 2, &name, &filename, err)))
			return rc;
		const char *data = hend + 4;
		const char *next = memmem(data, (size_t)(end - data), delim, dlen);
		if (!next) {
			free(name);
			free(filename);
			return pb_err(err, PB_EINVAL, "form: the multipart body ends inside a part");
		}
		size_t vlen = (size_t)(next - data);
		char *value = malloc(vlen + 1);
		if (!value) {
			free(name);
			free(filename);
			return pb_err(err, PB_ENOMEM, "out of memory");
		}
		memcpy(value, data, vlen);
		value[vlen] = '\0';
		if ((rc = add_field(out, name, filename, value, vlen, err)))
			return rc;
		p = next + dlen;
	}
}

int page_form_parse(const char *content_type, const char *body, size_t len, page_form *out, char *err)
{
	int rc;
	out->v = NULL;
	out->n = 0;
	if (!content_type)
		return pb_err(err, PB_EINVAL, "form: no Content-Type");
	size_t n = strcspn(content_type, ";");
	while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
		n--;
	if (n == 19 && !strncasecmp(content_type, "multipart/form-data", n))
		rc = parse_multipart(content_type, body ? body : "", len, out, err);
	else if (n == 33 && !strncasecmp(content_type, "application/x-www-form-urlencoded", n))
		rc = parse_urlencoded(body ? body : "", len, out, err);
	else
		rc = pb_err(err, PB_EINVAL, "form: Content-Type is not a form");
	if (rc)
		page_form_clear(out);
	return rc;
}
