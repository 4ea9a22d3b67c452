/* Cross-site request forgery defence for web pages (route flag ROUTE_PAGE).
 *
 * A browser sends the web server's basic-auth credentials (and later a session cookie) with
 * every request by itself, also with a form another site makes it post. So every
 * state-changing request to a page route (any method but GET and HEAD) passes two checks in
 * the runtime before its handler runs (runtime/fcgi.c), and fails with 403 csrf_failed:
 *
 *  1. where it comes from: a Sec-Fetch-Site header other than same-origin (or none, a request
 *     the person made themselves) is refused, and so is an Origin header (also "null") other
 *     than this site's own origin (PBIPORT_PUBLIC_URL's scheme://host[:port], else the
 *     request's Host with http or https). A client that sends neither (curl, an old browser)
 *     goes on to the token;
 *  2. a token: HMAC-SHA256 under APPLICATION_SECURITY_REMEMBERME_KEY (the first key signs,
 *     every key of the ring verifies, so the key can rotate) of the user's id, the form's path
 *     and the number of the PB_CSRF_WINDOW_S time window, base64url. It comes in the form
 *     field "csrf_token" (urlencoded or multipart) or the header X-CSRF-Token (scripts), is
 *     compared in constant time, and is valid in its window and the next one. Forms post to
 *     their own page's path, so the page that shows a form signs exactly the path it posts
 *     to (runtime/page_render.c puts it into every page's view as page.csrf_token).
 *
 * Without APPLICATION_SECURITY_REMEMBERME_KEY no token can be made or checked: page forms are
 * refused with 503 unavailable naming the variable.
 *
 * Check 1 also guards the JSON API when the browser supplied the identity (page_cross_site_check). */
#ifndef PBIPORT_PAGE_CSRF_H
#define PBIPORT_PAGE_CSRF_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "runtime/crypto.h"

#define PB_CSRF_FIELD     "csrf_token"
#define PB_CSRF_WINDOW_S  7200L                        /* a token lives 2 to 4 hours */
#define PB_CSRF_TOKEN_BUF (PB_HMAC_B64URL_LEN + 1)
#define PB_ORIGIN_MAX     512                          /* scheme://host[:port] */

struct req;

/* The token of identity + path at time now into out. PB_EINVAL when kr is NULL. */
int page_csrf_token(const pb_keyring *kr, const char *identity, const char *path, time_t now,
		    char out[PB_CSRF_TOKEN_BUF], char *err);

/* Whether token is the token of identity + path in now's window or the one before. */
bool page_csrf_valid(const pb_keyring *kr, const char *identity, const char *path, time_t now, const char *token);

/* This site's origin, "scheme://host[:port]" in lower case: PBIPORT_PUBLIC_URL's when set,
 * else from the request (HTTP_HOST; https when HTTPS is "on" or REQUEST_SCHEME is https).
 * PB_EINVAL when there is neither. */
int page_own_origin(const struct req *r, char out[PB_ORIGIN_MAX], char *err);

/* Check 1 above on the header values (each may be NULL). PB_EFORBIDDEN with err saying why. */
int page_origin_allowed(const char *origin, const char *fetch_site, const char *own_origin, char *err);

/* Check 1 on any state-changing request whose identity the browser sends by itself (the web
 * server's REMOTE_USER: basic auth, an SSO module; pbiport's session cookie), pages or not: a JSON API route that takes an
 * empty body (POST /api/integrations/{id}/runs) could otherwise be posted by another site's
 * form. A Bearer token is never sent by a browser on its own: those requests pass. Fills r->fail. */
int page_cross_site_check(struct req *r);

/* Both checks on a state-changing page request whose body was read: parses a form body into
 * r->form first. On failure returns the rc with r->fail filled (403 csrf_failed, 503
 * unavailable without a key, 400 for a malformed form). */
int page_csrf_check(struct req *r);

#endif
