/* One HTTP request and its response: struct req.
 *
 * Per-request state lives here and nowhere else. req_reset() frees all of it
 * between requests; only cfg and db (named below) are kept across requests.
 * The FastCGI envp is copied in req_load(), so nothing borrowed from libfcgi
 * outlives the request it came with.
 *
 * Ownership: every pointer in the per-request part is owned by the req and valid
 * until req_reset(); the accessors return borrowed pointers with that lifetime. */
#ifndef PBIPORT_REQUEST_H
#define PBIPORT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "runtime/auth.h"
#include "runtime/failure.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/page_form.h"
#include "runtime/router.h"
#include "runtime/strbuf.h"

struct json_t;

/* Where the body comes from and the response goes: FastCGI streams, stdio (CGI), or
 * memory (tests). */
struct req_io {
	long (*read)(void *ctx, char *buf, size_t n);          /* bytes read, 0 at end, -1 error */
	int (*write)(void *ctx, const char *buf, size_t n);    /* 0, or -1 on error */
	void *ctx;
};

typedef struct pb_param {
	char *name;
	char *value;
} pb_param;

struct req {
	/* kept across requests, borrowed from the serve loop */
	const pb_config *cfg;
	pb_db *db;

	/* request: owned by the req until req_reset() */
	struct req_io io;
	char **env;                   /* "NAME=value" copies */
	size_t nenv;
	const char *method;           /* from env */
	char *path;                   /* decoded path for logs, e.g. "/api/data-products/x" */
	char **segs;                  /* decoded path segments */
	size_t nsegs;
	pb_param *query;
	size_t nquery;
	char *content_type;           /* media type, lower case, no parameters; NULL if none */
	char *body;                   /* NUL-terminated; NULL when there is none */
	size_t body_len;
	size_t body_unread;           /* ROUTE_STREAM_BODY: bytes req_body_read() has yet to deliver */
	page_form form;               /* ROUTE_PAGE: the fields of a posted form (runtime/page_csrf.c) */
	const struct route *route;    /* borrowed from the route table */
	const char *captures[PB_ROUTE_MAX_CAPTURES];   /* point into segs */
	size_t ncaptures;
	pb_identity who;
	char request_id[PB_REQUEST_ID_MAX + 1];
	struct timespec started;      /* CLOCK_MONOTONIC */

	/* response */
	int status;                   /* 0 until a reply was set */
	sbuf headers;                 /* extra "Name: value\r\n" lines */
	char *resp_type;              /* Content-Type of the response */
	sbuf resp;                    /* response body */
	sbuf head;                    /* the CGI head req_send writes before the body */
	size_t bytes_sent;

	pb_failure fail;              /* why the handler failed: rc, code and message (req_fail) */
	char *err;                    /* = fail.message: the buffer lower layers write a failing
	                                 rc's message into (pb_err(r->err, ...)) */
};

void req_init(struct req *r, const pb_config *cfg, pb_db *db);
/* Frees everything the request allocated; keeps cfg and db. */
void req_reset(struct req *r);
/* req_reset() plus the buffers' memory: for the end of the process. */
void req_release(struct req *r);

/* Copies envp (bounded by PB_ENV_MAX_*) and parses method, path, query, content
 * type and request id. PB_EINVAL (→ 400) with err for a malformed request. */
int req_load(struct req *r, char *const *envp, const struct req_io *io, char *err);

const char *req_env(const struct req *r, const char *name);      /* borrowed; NULL if absent */
const char *req_query(const struct req *r, const char *name);    /* borrowed; NULL if absent */
const char *req_capture(const struct req *r, const char *name);  /* "{name}" of the route */

/* True when the site is served over HTTPS: PBIPORT_PUBLIC_URL is https://, or the web server
 * says HTTPS=on (or REQUEST_SCHEME=https). Cookies are then marked Secure. */
bool req_site_https(const struct req *r);

/* Reads the body after checking, in this order, CONTENT_LENGTH against limit (413;
 * 411 when a body is expected without a length), the content type against types
 * (NULL-terminated media types; 415), and emptiness (400 unless empty_ok, where an
 * empty body may also come without a content type). On failure *status is the HTTP
 * status to answer and err says why. */
int req_read_body(struct req *r, size_t limit, const char *const *types, bool empty_ok, int *status,
		  char *err);

/* The same checks as req_read_body, but the body stays unread (ROUTE_STREAM_BODY): the
 * handler pulls it with req_body_read(). r->body stays NULL. */
int req_stream_body(struct req *r, size_t limit, const char *const *types, bool empty_ok, int *status,
		    char *err);
/* Next bytes of a streamed body into buf (at most n): bytes read, 0 at the end, -1 when the
 * body ends before its Content-Length or the client is gone. */
long req_body_read(struct req *r, char *buf, size_t n);

/* Percent-decoding (plus_space: '+' is a space, as in query strings). Refuses bad
 * escapes, NUL bytes and invalid UTF-8. *out is new (caller frees). */
int url_decode(const char *s, size_t len, bool plus_space, char **out, char *err);

/* The next name=value pair of www-form-urlencoded text (a query string, a form body) in
 * [*p, end), empty pairs skipped, %-decoded with '+' as a space into *name and *value (new;
 * value "" when the pair has no '='). Advances *p. 1 when a pair was read, 0 at the end, or a
 * negative pb_rc with err: *name is NULL when the name was badly encoded, else the caller frees
 * it (the value was). */
int url_next_pair(const char **p, const char *end, char **name, char **value, char *err);

/* Response. Each replaces any body set before. */
int req_header(struct req *r, const char *name, const char *value);     /* no CR/LF allowed */
int req_reply(struct req *r, int status, const char *content_type, const char *body, size_t len);
/* Steals the reference to body (jansson's _new convention). */
int req_reply_json_new(struct req *r, int status, struct json_t *body);
/* A JSON answer the handler writes as text straight into r->resp (a hot read path: no JSON
 * tree): req_json_begin, then the handler's writers append to r->resp, then req_json_end with
 * what they returned (non-zero: the answer did not fit or memory ran out, an error rc). */
int req_json_begin(struct req *r, int status);
int req_json_end(struct req *r, int bad);
/* What a core call answered: its failure rc as it is (reply dropped), or status with reply
 * (req_reply_json_new). Steals the reference to reply either way. */
int req_answer_json_new(struct req *r, int rc, int status, struct json_t *reply);
/* A core read of one object of the caller's organization by its id: *out new (NULL on failure),
 * failures in f. The shape of the core functions that req_answer_org_item answers. */
typedef int (*req_org_item_fn)(pb_db *db, const char *org_id, const char *id, struct json_t **out, pb_failure *f);
/* Answers fn for the caller's organization and the route's {id} with status and what fn made
 * (req_answer_json_new): the whole of a handler that only reads one object. */
int req_answer_org_item(struct req *r, req_org_item_fn fn, int status);
/* A core read of something of the caller's whole organization (a list): *out new. */
typedef int (*req_org_fn)(pb_db *db, const char *org_id, struct json_t **out, pb_failure *f);
/* Answers fn for the caller's organization with 200 and what fn made (req_answer_json_new). */
int req_answer_org(struct req *r, req_org_fn fn);
/* The request body as a JSON value (*body new): PB_EINVAL "request body: ..." (r->fail) when it
 * is not JSON, PB_ENOMEM when out of memory. */
int req_body_json(struct req *r, struct json_t **body);
/* {"error":{"code":code,"message":...}} */
int req_reply_error(struct req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A handler's failure: fills r->fail (code NULL: the default for rc) and returns rc, for
 * `return req_fail(r, PB_ECONFLICT, "port_retired", "...")`. The runtime answers it with
 * the status of rc and {"error":{"code","message"}} (runtime/fcgi.c). */
int req_fail(struct req *r, int rc, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Writes status line, headers and body through r->io. Responses are Cache-Control: no-store
 * unless the handler set a Cache-Control header itself (static files). */
int req_send(struct req *r);

const char *http_reason(int status);

#endif
