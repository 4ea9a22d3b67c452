/* The request pipeline and the FastCGI / CGI front door.
 *
 * pb_handle() runs one request through what the route table declares, in order:
 * parse (400) → route (404/405 + Allow) → identity (401) and role (403) → declared
 * query parameters (400) → body length (411/413), content type (415) and read →
 * (a state-changing method with the browser's own credentials: from this site only; on a
 * ROUTE_PAGE route also the form's CSRF token: runtime/page_csrf.h, 403) →
 * handler → one response with X-Request-Id. A page route's failures, and those of a
 * browser's request that no route matched, are answered as HTML error pages
 * (runtime/page_render.h) with the status of the same table. pb_serve() is the process: start-up
 * checks (the only place a FastCGI process may stop itself), then the accept loop,
 * or a single CGI request when not started under FastCGI. */
#ifndef PBIPORT_FCGI_H
#define PBIPORT_FCGI_H

#include "runtime/auth.h"
#include "runtime/page_render.h"
#include "runtime/request.h"
#include "runtime/router.h"

struct pb_app {
	const struct route *routes;   /* THE route table (handlers/routes.c) */
	size_t nroutes;
	struct pb_auth_ops auth;      /* identity lookups (core/store/identity.c) */
	page_chrome_fn page_chrome;   /* what every page's header shows beyond the runtime's view.page
	                                 (handlers/pages_common.c); may be NULL */
	const char *signin_path;      /* where a page sends a browser without identity when signing in
	                                 with Microsoft is configured ("/signin"); NULL: nowhere */
	/* For a read-only route, before its identity is looked up: org_id is the organization the
	 * request's API token belonged to when this process last identified it. Names the read the
	 * route's handler makes first (db_prefetch), so that it goes to the database with the
	 * token's lookup. A hint: the handler reads as always (with the identity it then has), and
	 * only the same query with the same values takes the rows. NULL: none. */
	void (*prefetch)(struct req *r, const char *org_id);
};

/* The HTTP status of a failure with result code rc (the one table, in fcgi.c). */
int pb_rc_status(int rc);

/* Loads envp into r (which req_init() prepared) and answers it through io. */
void pb_handle(struct req *r, const struct pb_app *app, char *const *envp, const struct req_io *io);
/* After the response went out: the log line and the metrics. */
void pb_after(struct req *r);

/* Runs the FastCGI accept loop on fd 0, or one CGI request. Returns the exit code;
 * configuration and schema problems print one line "pbiport: ..." and return 1. */
int pb_serve(const struct pb_app *app);

#endif
