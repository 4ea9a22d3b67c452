/* Web pages: server-rendered HTML from Lua page templates, HTML error pages, static files.
 *
 * A page is the template web/<name>.lua, found on the template search path (first match
 * wins): the folders of PBIPORT_TEMPLATE_PATH (an admin overrides web/home.lua by putting
 * web/home.lua into one of them), then $PBIPORT_DATADIR/templates and $PBIPORT_DATADIR/lua.
 * The entry lua/page.lua requires it; the template returns a function that receives the view
 * (a JSON object made into Lua tables: runtime/lua_json.h) and returns an html value built
 * with lua/html.lua, which escapes every value unless it is wrapped in html.raw(). It runs in
 * the template sandbox (runtime/lua_sandbox.h) with PB_PAGE_LUA_MEM_MAX and
 * PB_PAGE_LUA_TIME_MS; an error comes back as "template templates/web/home.lua:12: ..." and
 * the request is answered with a 500 page that names only the request id (the line goes to
 * the log).
 *
 * Every page's view has a member "page" that the runtime fills:
 *   page = { path, request_id, csrf_token (when a form can be signed: runtime/page_csrf.h),
 *            user = { name, role } (when signed in), features = { powerbi_web, ingestions } }
 * and the application's chrome function (struct pb_app.page_chrome) adds to it (the
 * organization's name, ...). Every page answer carries the pages' security headers
 * (page_headers) and Cache-Control: no-store. */
#ifndef PBIPORT_PAGE_RENDER_H
#define PBIPORT_PAGE_RENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/config.h"
#include "runtime/strbuf.h"

struct req;
struct json_t;

/* Adds what the application knows to view.page (e.g. the user's organization). */
typedef int (*page_chrome_fn)(struct req *r, struct json_t *page, char *err);

#define PB_PAGE_CSP "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/* Renders web/<name>.lua with view into out (appended). PB_EINVAL / PB_ELIMIT with the
 * template's located message, PB_ENOMEM. cfg may be NULL (no admin folders). */
int page_render(const pb_config *cfg, const char *name, const struct json_t *view, sbuf *out, char *err);

/* Answers r with page name: fills view.page (view is an object; the reference is stolen),
 * renders, replies with status and the security headers. On failure nothing is answered and
 * the rc is returned with r->err saying why (a template error becomes PB_EINTERNAL: a 500). */
int page_reply(struct req *r, const char *name, struct json_t *view, int status, page_chrome_fn chrome);

/* Kept pages. A page that shows only what its path names, its caller (name, role, the form
 * token) and data whose every write moves the organization's catalog version (sql/0018, 0019;
 * pb_identity.catalog_version, read with the caller's identity) can be kept by the process
 * that rendered it and given again while that version holds, without rendering:
 *
 *   if (page_kept_reply(r)) return PB_OK;
 *   ... read, build the view ...
 *   return page_reply_keep(r, "product", view, 200, chrome);
 *
 * A page is kept per path and user (runtime/answer_cache.h bounds them), with view.page's
 * request_id and csrf_token written in at each answer; only as long as no template file it was
 * rendered from changes (checked at most once a second: an edited template shows on kept pages
 * within a second), and only a 200 whose template shows those two values as they are (a
 * template that cuts or measures them is found by a second render with other stand-ins, once
 * per template and process after its files change; one that compares them with a text of its
 * own, or does more only for some data, is not: docs/pages.md "Kept pages"). */

/* Answers r with its page kept at the version read with r's identity; false when there is none
 * (nothing answered: render it). */
bool page_kept_reply(struct req *r);

/* page_reply that keeps the page it renders at the version read with r's identity. */
int page_reply_keep(struct req *r, const char *name, struct json_t *view, int status, page_chrome_fn chrome);

/* Answers r with the HTML error page (web/error.lua) for status: view
 * { error = { status, title, code, message } }. When that template fails, a built-in page
 * says the same. Leaves r->err as it was (the log line names the first failure). */
int page_reply_failure(struct req *r, int status, const char *code, const char *message, page_chrome_fn chrome);

/* 303 See Other to a path of this site (must start with '/', not "//"). */
int page_redirect(struct req *r, const char *path);

/* Content-Security-Policy (PB_PAGE_CSP), Referrer-Policy same-origin, X-Frame-Options DENY,
 * Cross-Origin-Opener-Policy same-origin. */
int page_headers(struct req *r);

/* For a request no route matched: true when a browser navigates to a path outside /api/
 * (Accept has text/html), so the answer is an HTML page. */
bool page_wants_html(const struct req *r);

/* The file web/static/<name> on the search path: *path new (free()), *content_type static.
 * PB_ENOTFOUND for a name that is not [A-Za-z0-9_-]+(.[A-Za-z0-9]+)* with a known extension
 * (css, js, svg, png, ico, woff2, txt) or that no folder has. */
int page_static_find(const pb_config *cfg, const char *name, char **path, const char **content_type, char *err);

#endif
