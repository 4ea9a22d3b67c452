#include "runtime/request.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/json_body.h"
#include "runtime/json_out.h"
#include "runtime/util.h"

void req_init(struct req *r, const pb_config *cfg, pb_db *db)
{
	memset(r, 0, sizeof *r);
	r->cfg = cfg;
	r->db = db;
	r->err = r->fail.message;
	sbuf_init(&r->headers, PB_RESPONSE_HEADERS_MAX);
	sbuf_init(&r->resp, PB_RESPONSE_MAX_BYTES);
	sbuf_init(&r->head, PB_RESPONSE_HEADERS_MAX * 2);
}

void req_reset(struct req *r)
{
	free(r->env);   /* the strings live in the same block (copy_env) */
	for (size_t i = 0; i < r->nsegs; i++)
		free(r->segs[i]);
	free(r->segs);
	for (size_t i = 0; i < r->nquery; i++) {
		free(r->query[i].name);
		free(r->query[i].value);
	}
	free_each(r->query, r->path, r->content_type, r->body, r->resp_type);
	page_form_clear(&r->form);

	/* keep what outlives requests and the buffers' memory; clear everything else */
	const pb_config *cfg = r->cfg;
	pb_db *db = r->db;
	sbuf headers = r->headers, resp = r->resp, head = r->head;
	memset(r, 0, sizeof *r);
	r->cfg = cfg;
	r->db = db;
	r->err = r->fail.message;
	r->headers = headers;
	r->resp = resp;
	r->head = head;
	sbuf_reset(&r->headers);
	sbuf_reset(&r->resp);
	sbuf_reset(&r->head);
	/* keep a small buffer for the next request, not the memory of a huge response */
	if (r->resp.cap > 1024 * 1024)
		sbuf_release(&r->resp);
}

void req_release(struct req *r)
{
	req_reset(r);
	sbuf_release(&r->headers);
	sbuf_release(&r->resp);
	sbuf_release(&r->head);
}

const char *req_env(const struct req *r, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < r->nenv; i++)   /* the first byte rules out most entries */
		if (r->env[i][0] == name[0] && !strncmp(r->env[i], name, n) && r->env[i][n] == '=')
			return r->env[i] + n + 1;
	return NULL;
}

bool req_site_https(const struct req *r)
{
	const char *https = req_env(r, "HTTPS");
	const char *scheme = req_env(r, "REQUEST_SCHEME");
	if (r->cfg && r->cfg->public_url)
		return !strncmp(r->cfg->public_url, "https://", 8);
	return (https && (str_ieq(https, "on") || !strcmp(https, "1"))) || (scheme && str_ieq(scheme, "https"));
}

const char *req_query(const struct req *r, const char *name)
{
	for (size_t i = 0; i < r->nquery; i++)
		if (!strcmp(r->query[i].name, name))
			return r->query[i].value;
	return NULL;
}

const char *req_capture(const struct req *r, const char *name)
{
	if (!r->route)
		return NULL;
	int i = router_capture_index(r->route->pattern, name);
	return i >= 0 && (size_t)i < r->ncaptures ? r->captures[i] : NULL;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int url_decode(const char *s, size_t len, bool plus_space, char **out, char *err)
{
	*out = NULL;
	char *d = malloc(len + 1);
	size_t n = 0;
	if (!d)
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			int hi = i + 1 < len ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(d);
				return pb_err(err, PB_EINVAL, "invalid %%-escape at offset %zu", i);
			}
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (plus_space && c == '+') {
			c = ' ';
		}
		if (c == '\0') {
			free(d);
			return pb_err(err, PB_EINVAL, "NUL byte (%%00) is not allowed");
		}
		d[n++] = c;
	}
	d[n] = '\0';
	if (!utf8_valid(d, n)) {
		free(d);
		return pb_err(err, PB_EINVAL, "decoded text is not valid UTF-8");
	}
	*out = d;
	return PB_OK;
}

int url_next_pair(const char **p, const char *end, char **name, char **value, char *err)
{
	*name = *value = NULL;
	while (*p < end) {
		const char *s = *p, *amp = memchr(s, '&', (size_t)(end - s));
		const char *stop = amp ? amp : end;
		*p = stop < end ? stop + 1 : end;
		if (stop == s)
			continue;   /* "a=1&&b=2" */
		const char *eq = memchr(s, '=', (size_t)(stop - s));
		int rc = url_decode(s, (size_t)((eq ? eq : stop) - s), true, name, err);
		if (!rc)
			rc = url_decode(eq ? eq + 1 : stop, eq ? (size_t)(stop - eq - 1) : 0, true, value, err);
		return rc ? rc : 1;
	}
	return 0;
}

/* One allocation holds the pointer array and every "NAME=value" copy after it: a request has
 * twenty-odd parameters, and one malloc instead of one each is measurable per request. */
static int copy_env(struct req *r, char *const *envp, char *err)
{
	size_t n = 0, bytes = 0;
	while (envp && envp[n])
		n++;
	if (n > PB_ENV_MAX_VARS)
		return pb_err(err, PB_EINVAL, "request has more than %d parameters/headers", PB_ENV_MAX_VARS);
	for (size_t i = 0; i < n; i++) {
		bytes += strlen(envp[i]);
		if (bytes > PB_ENV_MAX_BYTES)
			return pb_err(err, PB_EINVAL, "request headers are larger than %u bytes", PB_ENV_MAX_BYTES);
	}
	size_t table = (n ? n : 1) * sizeof *r->env;
	char *block = malloc(table + bytes + n);
	if (!block)
		return pb_err(err, PB_ENOMEM, "out of memory");
	r->env = (char **)(void *)block;
	char *text = block + table;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(envp[i]);
		memcpy(text, envp[i], len + 1);
		r->env[i] = text;
		text += len + 1;
	}
	r->nenv = n;
	return PB_OK;
}

/* Splits path on '/' into segments; decode: %-decode each segment (raw REQUEST_URI)
 * or take it as is (PATH_INFO/SCRIPT_NAME, which the web server already decoded).
 * Splitting before decoding keeps "%2F" inside its segment. */
static int split_path(struct req *r, const char *path, size_t len, bool decode, char *err)
{
	sbuf shown;
	int rc = PB_OK;
	sbuf_init(&shown, PB_PATH_MAX_BYTES * 3);
	if (len == 0 || path[0] != '/')
		return pb_err(err, PB_EINVAL, "request path must start with '/'");
	if (len > PB_PATH_MAX_BYTES)
		return pb_err(err, PB_EINVAL, "request path is longer than %d bytes", PB_PATH_MAX_BYTES);
	r->segs = calloc(PB_PATH_MAX_SEGMENTS, sizeof *r->segs);
	if (!r->segs)
		return pb_err(err, PB_ENOMEM, "out of memory");
	const char *p = path + 1, *end = path + len;
	if (p == end)
		goto done;   /* "/" has no segments */
	for (;;) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t slen = slash ? (size_t)(slash - p) : (size_t)(end - p);
		char *seg = NULL;
		if (r->nsegs == PB_PATH_MAX_SEGMENTS) {
			rc = pb_err(err, PB_EINVAL, "request path has more than %d segments", PB_PATH_MAX_SEGMENTS);
			goto out;
		}
		if (decode) {
			if ((rc = url_decode(p, slen, false, &seg, err))) {
				char msg[PB_ERR_MAX];
				xsnprintf(msg, sizeof msg, "%s", err);
				rc = pb_err(err, rc, "request path: %s", msg);
				goto out;
			}
		} else if (!(seg = xstrndup(p, slen))) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		} else if (!utf8_valid(seg, slen)) {
			free(seg);
			rc = pb_err(err, PB_EINVAL, "request path is not valid UTF-8");
			goto out;
		}
		r->segs[r->nsegs++] = seg;
		if (!strcmp(seg, ".") || !strcmp(seg, "..")) {
			rc = pb_err(err, PB_EINVAL, "request path must not contain '.' or '..' segments");
			goto out;
		}
		if (!slash)
			break;
		p = slash + 1;
	}
done:
	for (size_t i = 0; i < r->nsegs && !rc; i++)
		if (sbuf_addc(&shown, '/') || sbuf_adds(&shown, r->segs[i]))
			rc = pb_err(err, PB_ENOMEM, "request path too long");
	if (!rc && r->nsegs == 0 && sbuf_addc(&shown, '/'))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	if (!rc && !(r->path = sbuf_detach(&shown, NULL)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	sbuf_release(&shown);
	return rc;
}

/* REQUEST_URI (raw, so decoded here) is the path the client asked for. A CGI
 * mounted at SCRIPT_NAME with PATH_INFO has the script prefix removed. Without
 * REQUEST_URI, PATH_INFO (or SCRIPT_NAME when PATH_INFO is empty) is used. */
static int load_path(struct req *r, char *err)
{
	const char *uri = req_env(r, "REQUEST_URI");
	const char *script = req_env(r, "SCRIPT_NAME");
	const char *info = req_env(r, "PATH_INFO");
	if (uri && *uri) {
		size_t len = strcspn(uri, "?#");
		if (info && *info && script && *script) {
			size_t sl = strlen(script);
			if (sl < len && !strncmp(uri, script, sl) && uri[sl] == '/') {
				uri += sl;
				len -= sl;
			}
		}
		return split_path(r, uri, len, true, err);
	}
	const char *p = info && *info ? info : script;
	if (!p || !*p)
		return pb_err(err, PB_EINVAL, "no request path (REQUEST_URI, PATH_INFO or SCRIPT_NAME)");
	return split_path(r, p, strlen(p), false, err);
}

static int load_query(struct req *r, char *err)
{
	const char *q = req_env(r, "QUERY_STRING");
	if (!q || !*q)
		return PB_OK;
	size_t qlen = strlen(q);
	if (qlen > PB_QUERY_MAX_BYTES)
		return pb_err(err, PB_EINVAL, "query string is longer than %d bytes", PB_QUERY_MAX_BYTES);
	r->query = calloc(PB_QUERY_MAX_PARAMS, sizeof *r->query);
	if (!r->query)
		return pb_err(err, PB_ENOMEM, "out of memory");
	const char *p = q, *end = q + qlen;
	for (;;) {
		char *name = NULL, *value = NULL;
		int rc = url_next_pair(&p, end, &name, &value, err);
		if (rc < 0 && !name)
			return pb_err(err, rc, "query parameter name: invalid encoding (bad %%-escape, "
				      "NUL byte or invalid UTF-8)");
		if (rc < 0) {
			rc = pb_err(err, rc, "query parameter '%.64s': invalid encoding (bad %%-escape, "
				    "NUL byte or invalid UTF-8)", name);
			free(name);
			return rc;
		}
		if (rc == 0)
			return PB_OK;
		if (r->nquery == PB_QUERY_MAX_PARAMS) {
			free(name);
			free(value);
			return pb_err(err, PB_EINVAL, "more than %d query parameters", PB_QUERY_MAX_PARAMS);
		}
		r->query[r->nquery++] = (pb_param){ name, value };
		for (size_t i = 0; i + 1 < r->nquery; i++)
			if (!strcmp(r->query[i].name, name))
				return pb_err(err, PB_EINVAL, "query parameter '%.64s' is given twice", name);
	}
}

static bool safe_request_id(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!isalnum((unsigned char)s[n]) && !strchr("-_.", s[n]))
			return false;
	return n > 0 && n <= PB_REQUEST_ID_MAX;
}

static void make_request_id(struct req *r)
{
	const char *in = req_env(r, "HTTP_X_REQUEST_ID");
	if (in && safe_request_id(in)) {
		xsnprintf(r->request_id, sizeof r->request_id, "%s", in);
		return;
	}
	char id[PB_ID_BUF];
	if (pb_new_id(id, NULL))
		xsnprintf(id, sizeof id, "%016lx", (unsigned long)r->started.tv_nsec);
	xsnprintf(r->request_id, sizeof r->request_id, "%s", id);
}

int req_load(struct req *r, char *const *envp, const struct req_io *io, char *err)
{
	int rc;
	clock_gettime(CLOCK_MONOTONIC, &r->started);
	if (io)
		r->io = *io;
	if ((rc = copy_env(r, envp, err)))
		goto out;
	make_request_id(r);
	r->method = req_env(r, "REQUEST_METHOD");
	if (!r->method || !*r->method) {
		r->method = NULL;
		rc = pb_err(err, PB_EINVAL, "REQUEST_METHOD is not set");
		goto out;
	}
	for (const char *m = r->method; *m; m++) {
		if (!isupper((unsigned char)*m) || m - r->method > 16) {
			rc = pb_err(err, PB_EINVAL, "invalid request method");
			r->method = NULL;
			goto out;
		}
	}
	if ((rc = load_path(r, err)) || (rc = load_query(r, err)))
		goto out;
	const char *ct = req_env(r, "CONTENT_TYPE");
	if (ct && *ct) {
		size_t n = strcspn(ct, ";");
		while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
			n--;
		while (n > 0 && (*ct == ' ' || *ct == '\t'))
			ct++, n--;
		if (!(r->content_type = xstrndup(ct, n))) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		for (char *c = r->content_type; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
out:
	return rc;
}

static int check_type(const struct req *r, const char *const *types, int *status, char *err)
{
	for (size_t i = 0; types && types[i]; i++)
		if (r->content_type && !strcmp(r->content_type, types[i]))
			return PB_OK;
	*status = 415;
	sbuf list;
	sbuf_init(&list, PB_ERR_MAX);
	for (size_t i = 0; types && types[i]; i++)
		if ((i && sbuf_adds(&list, ", ")) || sbuf_adds(&list, types[i]))
			break;
	int rc = r->content_type
		 ? pb_err(err, PB_EINVAL, "Content-Type %.80s is not accepted here (use one of: %s)",
			  r->content_type, sbuf_str(&list))
		 : pb_err(err, PB_EINVAL, "Content-Type is missing (use one of: %s)", sbuf_str(&list));
	sbuf_release(&list);
	return rc;
}

/* The checks before a body is read; *len is its Content-Length (0 when there is none). */
static int check_body(struct req *r, size_t limit, const char *const *types, bool empty_ok, int *status,
		      unsigned long long *len_out, char *err)
{
	const char *cl = req_env(r, "CONTENT_LENGTH");
	unsigned long long len = 0;
	*status = 0;
	*len_out = 0;
	if (!cl || !*cl) {
		/* no length: only an empty body can be bounded (chunked bodies are refused) */
		const char *te = req_env(r, "HTTP_TRANSFER_ENCODING");
		if ((te && *te) || (limit && !empty_ok)) {
			*status = 411;
			return pb_err(err, PB_EINVAL, "a request body needs a Content-Length header");
		}
		return empty_ok && r->content_type ? check_type(r, types, status, err) : PB_OK;
	}
	for (const char *c = cl; *c; c++) {
		if (*c < '0' || *c > '9') {
			*status = 400;
			return pb_err(err, PB_EINVAL, "malformed Content-Length");
		}
	}
	errno = 0;
	len = strtoull(cl, NULL, 10);
	if (errno || len > limit) {
		*status = 413;
		if (!limit)
			return pb_err(err, PB_ELIMIT, "this endpoint takes no request body");
		return pb_err(err, PB_ELIMIT, "request body is larger than %zu bytes", limit);
	}
	if (limit && (len > 0 || r->content_type || !empty_ok)) {
		int rc = check_type(r, types, status, err);
		if (rc)
			return rc;
	}
	if (len == 0 && limit && !empty_ok) {
		*status = 400;
		return pb_err(err, PB_EINVAL, "request body is empty");
	}
	*len_out = len;
	return PB_OK;
}

int req_stream_body(struct req *r, size_t limit, const char *const *types, bool empty_ok, int *status,
		    char *err)
{
	unsigned long long len = 0;
	int rc = check_body(r, limit, types, empty_ok, status, &len, err);
	if (!rc)
		r->body_unread = (size_t)len;
	return rc;
}

long req_body_read(struct req *r, char *buf, size_t n)
{
	if (n > r->body_unread)
		n = r->body_unread;
	if (!n)
		return 0;
	long got = r->io.read ? r->io.read(r->io.ctx, buf, n) : -1;
	if (got <= 0)
		return -1;   /* shorter than its Content-Length */
	r->body_unread -= (size_t)got;
	return got;
}

int req_read_body(struct req *r, size_t limit, const char *const *types, bool empty_ok, int *status,
		  char *err)
{
	unsigned long long len = 0;
	int rc = check_body(r, limit, types, empty_ok, status, &len, err);
	if (rc || len == 0)
		return rc;
	r->body = malloc((size_t)len + 1);
	if (!r->body) {
		*status = 413;
		return pb_err(err, PB_ENOMEM, "request body does not fit in memory");
	}
	size_t got = 0;
	while (got < len) {
		long n = r->io.read ? r->io.read(r->io.ctx, r->body + got, (size_t)len - got) : 0;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	r->body[got] = '\0';
	r->body_len = got;
	if (got != len) {
		*status = 400;
		return pb_err(err, PB_EINVAL, "request body is shorter than its Content-Length (%zu of %llu bytes)",
			      got, len);
	}
	return PB_OK;
}

/* ---- response ---- */

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

int req_header(struct req *r, const char *name, const char *value)
{
	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return pb_err(r->err, PB_EINTERNAL, "header %s: line breaks are not allowed", name);
	size_t before = r->headers.len;   /* a line that does not fit leaves nothing behind */
	if (sbuf_adds(&r->headers, name) || sbuf_add(&r->headers, ": ", 2) || sbuf_adds(&r->headers, value) ||
	    sbuf_add(&r->headers, "\r\n", 2)) {
		sbuf_truncate(&r->headers, before);
		return pb_err(r->err, PB_ENOMEM, "response headers are too large");
	}
	return PB_OK;
}

int req_reply(struct req *r, int status, const char *content_type, const char *body, size_t len)
{
	free(r->resp_type);
	r->resp_type = NULL;
	sbuf_reset(&r->resp);
	r->status = status;
	if (!(r->resp_type = xstrdup(content_type)))
		return pb_err(r->err, PB_ENOMEM, "out of memory");
	if (len && sbuf_add(&r->resp, body, len))
		return pb_err(r->err, PB_ENOMEM, "response is larger than %u bytes", PB_RESPONSE_MAX_BYTES);
	return PB_OK;
}

int req_reply_json_new(struct req *r, int status, json_t *body)
{
	int rc;
	if (!body)
		return pb_err(r->err, PB_ENOMEM, "out of memory building the response");
	/* written straight into the response buffer: no intermediate copy of the text */
	rc = req_json_begin(r, status);
	if (!rc)
		rc = req_json_end(r, json_out(&r->resp, body, JSON_COMPACT));
	json_decref(body);
	return rc;
}

int req_json_begin(struct req *r, int status)
{
	return req_reply(r, status, "application/json", NULL, 0);
}

int req_json_end(struct req *r, int bad)
{
	if (bad || sbuf_addc(&r->resp, '\n'))
		return pb_err(r->err, PB_ENOMEM, "response is larger than %u bytes", PB_RESPONSE_MAX_BYTES);
	return PB_OK;
}

int req_answer_json_new(struct req *r, int rc, int status, json_t *reply)
{
	if (rc) {
		json_decref(reply);
		return rc;
	}
	return req_reply_json_new(r, status, reply);
}

int req_answer_org_item(struct req *r, req_org_item_fn fn, int status)
{
	json_t *out = NULL;
	int rc = fn(r->db, r->who.org_id, req_capture(r, "id"), &out, &r->fail);
	return req_answer_json_new(r, rc, status, out);
}

int req_answer_org(struct req *r, req_org_fn fn)
{
	json_t *out = NULL;
	int rc = fn(r->db, r->who.org_id, &out, &r->fail);
	return req_answer_json_new(r, rc, 200, out);
}

int req_body_json(struct req *r, json_t **body)
{
	int rc = json_body_parse(r->body, r->body_len, 0, body, r->err);
	return rc ? req_fail(r, rc == PB_ENOMEM ? rc : PB_EINVAL, NULL, "request body: %s", r->err) : 0;
}

int req_reply_error(struct req *r, int status, const char *code, const char *fmt, ...)
{
	char msg[PB_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
	int rc = req_reply_json_new(r, status, body);
	if (rc) {
		/* last resort: a fixed body so the client still sees the status */
		static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n";
		req_reply(r, status, "application/json", oom, sizeof oom - 1);
	}
	return rc;
}

int req_fail(struct req *r, int rc, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pb_failv(&r->fail, rc, code, fmt, ap);
	va_end(ap);
	return rc;
}

int req_send(struct req *r)
{
	sbuf *head = &r->head;
	int rc = PB_OK;
	sbuf_reset(head);
	if (!r->status)
		req_reply_error(r, 500, "internal", "no response was produced");
	bool own_cache = r->headers.len && strstr(sbuf_str(&r->headers), "Cache-Control:");
	/* put together piece by piece: this runs for every response */
	if (sbuf_adds(head, "Status: ") || sbuf_add_int(head, r->status) || sbuf_addc(head, ' ') ||
	    sbuf_adds(head, http_reason(r->status)) || sbuf_adds(head, "\r\nContent-Type: ") ||
	    sbuf_adds(head, r->resp_type ? r->resp_type : "application/json") ||
	    sbuf_adds(head, "\r\nContent-Length: ") || sbuf_add_int(head, (long long)r->resp.len) ||
	    sbuf_adds(head, "\r\nX-Request-Id: ") || sbuf_adds(head, r->request_id) ||
	    sbuf_adds(head, own_cache ? "\r\n" : "\r\nCache-Control: no-store\r\n") ||
	    sbuf_adds(head, "X-Content-Type-Options: nosniff\r\n") ||
	    sbuf_add(head, sbuf_str(&r->headers), r->headers.len) || sbuf_adds(head, "\r\n"))
		rc = pb_err(r->err, PB_ENOMEM, "response headers are too large");
	else if (!r->io.write || r->io.write(r->io.ctx, sbuf_str(head), head->len) ||
		 (r->resp.len && r->io.write(r->io.ctx, sbuf_str(&r->resp), r->resp.len)))
		rc = pb_err(r->err, PB_EIO, "client went away while sending the response");
	else
		r->bytes_sent = r->resp.len;
	return rc;
}
