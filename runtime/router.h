/* The route table's row type and the matcher.
 *
 * handlers/routes.c holds THE table (one row per endpoint). Each row declares what
 * the runtime checks before the handler runs (runtime/fcgi.c pb_handle): identity and
 * role, declared query parameters, body size and content type. Handlers never
 * re-check these. Patterns are literal segments and "{name}" captures of one
 * non-empty segment, matched against the already-decoded path segments. Rows are
 * tried in table order and the first match wins: list a literal row
 * ("/x/special") before a capture row ("/x/{id}") that would also match it. */
#ifndef PBIPORT_ROUTER_H
#define PBIPORT_ROUTER_H

#include <stddef.h>

#include "runtime/auth.h"
#include "runtime/strbuf.h"

struct req;
/* Builds the response in r (req_reply_*) and returns PB_OK, or returns a negative
 * pb_rc with r->err set and lets the runtime turn it into an error response. */
typedef int (*pb_handler)(struct req *r);

enum route_flags {
	ROUTE_EMPTY_BODY_OK = 1u << 0,   /* triggers: an empty body without content type is fine */
	ROUTE_FEATURE_POWERBI_WEB = 1u << 1,  /* 404 feature_disabled unless APPLICATION_POWERBI_WEB_ENABLED */
	ROUTE_FEATURE_INGESTIONS = 1u << 2,   /* 404 feature_disabled unless APPLICATION_INGESTIONS_ENABLED */
	ROUTE_READ_ONLY = 1u << 3,            /* the handler only reads: identity lookup and handler share
	                                         one read transaction (one snapshot, file locks taken once);
	                                         it must not call db_begin() */
	ROUTE_METRICS_FLUSH = 1u << 4,        /* before the handler, write this process's batched request
	                                         counts (runtime/metrics.h): the route shows them */
	ROUTE_STREAM_BODY = 1u << 5,          /* length and content type are checked, the body is left
	                                         unread: the handler pulls it with req_body_read() */
	ROUTE_PAGE = 1u << 6,                 /* a web page: failures are answered as an HTML error page
	                                         with the status of the failure's rc; a method other than
	                                         GET/HEAD must pass the CSRF check (runtime/page_csrf.h)
	                                         before the handler runs */
	ROUTE_FEATURE_SSO = 1u << 7,          /* 404 feature_disabled unless signing in with Microsoft is
	                                         configured (PBIPORT_SSO_*) */
	ROUTE_NO_DATABASE = 1u << 8,          /* the handler reads no database (static files): served also
	                                         while the database cannot be reached */
};

#define ROUTE_BODY_CONFIG ((size_t)-1)   /* body limit = PBIPORT_MAX_BODY */

struct route {
	const char *method;                 /* "GET", "POST", ... */
	const char *pattern;                /* "/api/data-products/{id}"; also the metrics label */
	pb_handler handler;
	pb_role role;                       /* PB_ROLE_NONE: no identity needed */
	size_t body_limit;                  /* 0: no body; ROUTE_BODY_CONFIG: PBIPORT_MAX_BODY */
	const char *const *content_types;   /* accepted media types, NULL-terminated; NULL: none */
	const char *const *query;           /* declared query parameters, NULL-terminated; NULL: none */
	unsigned flags;                     /* enum route_flags */
};

enum route_match {
	ROUTE_FOUND,
	ROUTE_NOT_FOUND,        /* 404 */
	ROUTE_BAD_METHOD,       /* 405; allow holds "GET, POST" */
};

/* Finds the row for method + segs. On ROUTE_FOUND, *out is the row (borrowed from
 * the table) and captures[0..*ncaptures) point into segs (borrowed like segs).
 * allow (may be NULL) receives the methods allowed on the path for 405. */
enum route_match router_match(const struct route *routes, size_t nroutes, const char *method,
			      char *const *segs, size_t nsegs, const struct route **out,
			      const char *captures[PB_ROUTE_MAX_CAPTURES], size_t *ncaptures,
			      sbuf *allow);

/* Position of capture "{name}" in pattern (0-based among captures), or -1. */
int router_capture_index(const char *pattern, const char *name);

/* Checks a table at start-up: patterns well formed, captures within the limit,
 * bodies declared with content types, no duplicate method+pattern. */
int router_check_table(const struct route *routes, size_t nroutes, char *err);

#endif
