#include "runtime/page_render.h"

#include <jansson.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "runtime/answer_cache.h"
#include "runtime/crypto.h"
#include "runtime/lua_json.h"
#include "runtime/lua_sandbox.h"
#include "runtime/page_csrf.h"
#include "runtime/page_html.h"
#include "runtime/request.h"
#include "runtime/template_dirs.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#ifndef PBIPORT_DATADIR
#define PBIPORT_DATADIR "."
#endif

#define PAGE_NAME_MAX 64

/* --- rendering --------------------------------------------------------------------- */

struct page_args {
	const char *name;
	const json_t *view;
};

/* Runs protected: pushes the page's name and its view, the entry's two arguments. */
static int push_args(lua_State *L)
{
	const struct page_args *a = lua_touserdata(L, 1);
	lua_settop(L, 0);
	lua_pushstring(L, a->name);
	lua_push_json(L, a->view, PB_PAGE_VIEW_MAX_DEPTH);
	return 2;
}

static bool good_page_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > PAGE_NAME_MAX || name[0] == '.' || name[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
		      (name[i] == '.' && name[i + 1] != '.')))
			return false;
	return true;
}

struct watch_render;
static void file_seen(void *ctx, const char *path, const struct stat *st);

/* page_render, telling watch (when not NULL) of every template file looked for. */
static int render_watched(const pb_config *cfg, const char *name, const json_t *view, sbuf *out,
			  struct watch_render *watch, char *err)
{
	template_dirs dirs;
	lua_sandbox *sb = NULL;
	struct page_args args = { name, view };
	int rc;
	if (!good_page_name(name))
		return pb_err(err, PB_EINTERNAL, "page template name '%.64s' is not valid", name);
	if ((rc = template_dirs_build(cfg, NULL, "templates", &dirs, err)))
		return rc;
	sandbox_opts so = { .dirs = dirs.dirs, .ndirs = dirs.n, .mem_max = PB_PAGE_LUA_MEM_MAX,
			    .time_limit_ms = PB_PAGE_LUA_TIME_MS, .api = page_html_api,
			    .file_seen = watch ? file_seen : NULL, .file_seen_ctx = watch };
	if (!(rc = sandbox_new(&so, &sb, err)) && !(rc = sandbox_cpcall(sb, push_args, &args, 2, err)) &&
	    !(rc = sandbox_call(sb, "page", 2, err))) {
		lua_State *L = sandbox_lua(sb);
		size_t len = 0;
		const char *text = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
		if (!text)
			rc = pb_err(err, PB_EINVAL, "template lua/page.lua: returned no text for page %s", name);
		else if (len > PB_PAGE_MAX_BYTES)
			rc = pb_err(err, PB_ELIMIT, "template web/%s.lua: page larger than %u bytes", name,
				    PB_PAGE_MAX_BYTES);
		else if (sbuf_add(out, text, len))
			rc = pb_err(err, PB_ENOMEM, "page %s does not fit in the response", name);
		lua_pop(L, 1);
	}
	sandbox_free(sb);
	template_dirs_release(&dirs);
	return rc;
}

int page_render(const pb_config *cfg, const char *name, const json_t *view, sbuf *out, char *err)
{
	return render_watched(cfg, name, view, out, NULL, err);
}

/* --- answers ----------------------------------------------------------------------- */

int page_headers(struct req *r)
{
	int rc = req_header(r, "Content-Security-Policy", PB_PAGE_CSP);
	if (!rc)
		rc = req_header(r, "Referrer-Policy", "same-origin");
	if (!rc)
		rc = req_header(r, "X-Frame-Options", "DENY");
	if (!rc)
		rc = req_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	return rc;
}

/* Sets key to a new string value in o (NULL: left out); -1 when out of memory. */
static int set_str(json_t *o, const char *key, const char *value)
{
	return value ? json_object_set_new(o, key, json_string(value)) : 0;
}

/* What view.page holds that changes with every request (the request's id) or every few hours
 * (the form token): a kept page is rendered with markers in their place and gets the request's
 * own values each time it is given (below). */
struct page_values {
	const char *request_id;
	const char *csrf_token;   /* NULL: no form can be signed */
	struct req *sign_later;   /* not NULL: csrf_token is made for this request at its first use */
	char token[PB_CSRF_TOKEN_BUF];
	char id_marker[PB_CSRF_TOKEN_BUF];   /* the markers' room (token holds the other one) */
};

/* r's own values. */
static void page_values_of(struct req *r, struct page_values *v)
{
	char why[PB_ERR_MAX];
	v->request_id = r->request_id;
	v->sign_later = NULL;
	v->csrf_token = r->cfg && r->cfg->rememberme_keys && r->path &&
				!page_csrf_token(r->cfg->rememberme_keys, r->who.user_id, r->path, time(NULL), v->token, why)
			? v->token
			: NULL;
}

/* view.page: what the runtime knows, then what the application's chrome adds. */
static int fill_page(struct req *r, json_t *view, const struct page_values *v, page_chrome_fn chrome, char *err)
{
	json_t *page = json_object_get(view, "page");
	if (!json_is_object(page)) {
		if (json_object_set_new(view, "page", page = json_object()) || !page)
			return pb_err(err, PB_ENOMEM, "out of memory");
	}
	bool signed_in = r->who.known;
	json_t *user = signed_in ? json_pack("{s:s, s:s}", "name", r->who.user_name, "role",
					     auth_role_name(r->who.role)) : NULL;
	json_t *features = json_pack("{s:b, s:b}", "powerbi_web", r->cfg && r->cfg->powerbi_web_enabled,
				     "ingestions", r->cfg && r->cfg->ingestions_enabled);
	int bad = set_str(page, "path", r->path) || set_str(page, "request_id", v->request_id) ||
		  set_str(page, "csrf_token", v->csrf_token) ||
		  (signed_in && json_object_set_new(page, "user", user)) ||
		  json_object_set_new(page, "features", features);
	if (!signed_in)
		json_decref(user);
	if (bad)
		return pb_err(err, PB_ENOMEM, "out of memory");
	return signed_in && chrome ? chrome(r, page, err) : PB_OK;
}

/* The page in html as r's answer, with the security headers. */
static int reply_html(struct req *r, int status, const sbuf *html)
{
	int rc = req_reply(r, status, "text/html; charset=utf-8", sbuf_str(html), html->len);
	return rc ? rc : page_headers(r);
}

/* --- kept pages -------------------------------------------------------------------
 *
 * A kept page is the text a render gave with markers where the request's values go: 32-digit
 * hex strings, random per process, in view.page.request_id and view.page.csrf_token (hex passes
 * every escaping a template can apply unchanged). Giving it again is one pass that copies the
 * text and writes the request's values, escaped, in place of the markers. Whether a template
 * shows the values only as they are (not cut, changed or measured) is told by rendering the
 * page a second time with other, longer markers: a page kept is one whose two texts differ only
 * where the markers stand. Otherwise it is rendered with the request's own values and not kept.
 * A template found to pass is not rendered twice again until a template file changes (a second
 * render doubled the cost of the first request after every write). (A template that compares a
 * value with a text of its own, or does more with it only for some data, is not told apart: see
 * runtime/page_render.h.) */
#define MARKER_REQUEST_ID "0001"
#define MARKER_CSRF_TOKEN "0002"
#define MARKER_SUFFIX_LEN 4
#define KEPT_NAME_PREFIX "page "    /* answer_cache names: no API answer's name starts so */

/* [0]: the markers in kept texts; [1]: the second render's, longer (a page that shows a value's
 * length differs too) */
static const size_t marker_base_len[2] = { 28, 36 };
static char marker_base[2][36 + 1];

static size_t marker_len(size_t m)
{
	return marker_base_len[m] + MARKER_SUFFIX_LEN;
}

static bool markers_ready(void)
{
	unsigned char bytes[2][18];
	char err[PB_ERR_MAX];
	if (marker_base[0][0])
		return true;
	if (pb_random_bytes(bytes, sizeof bytes, err) || !memcmp(bytes[0], bytes[1], marker_base_len[0] / 2))
		return false;
	for (size_t m = 0; m < 2; m++)
		for (size_t i = 0; i < marker_base_len[m] / 2; i++)
			snprintf(marker_base[m] + 2 * i, 3, "%02x", bytes[m][i]);
	return true;
}

/* Markers of set m (0 or 1) as a page's values. */
static void page_markers(struct page_values *v, size_t m, bool with_token)
{
	size_t n = marker_base_len[m];
	memcpy(v->id_marker, marker_base[m], n);
	memcpy(v->id_marker + n, MARKER_REQUEST_ID, MARKER_SUFFIX_LEN + 1);
	memcpy(v->token, marker_base[m], n);
	memcpy(v->token + n, MARKER_CSRF_TOKEN, MARKER_SUFFIX_LEN + 1);
	v->request_id = v->id_marker;
	v->csrf_token = with_token ? v->token : NULL;
}

/* The next whole marker of set m in [p, end), or NULL. */
static const char *next_marker(const char *p, const char *end, size_t m)
{
	const char *at;
	size_t n = marker_base_len[m];
	while ((at = memmem(p, (size_t)(end - p), marker_base[m], n)) && (size_t)(end - at) >= marker_len(m)) {
		if (!memcmp(at + n, MARKER_REQUEST_ID, MARKER_SUFFIX_LEN) || !memcmp(at + n, MARKER_CSRF_TOKEN, MARKER_SUFFIX_LEN))
			return at;
		p = at + 1;
	}
	return NULL;
}

/* Whether b is a with set 0's markers as set 1's, and nothing else changed. */
static bool same_but_markers(const char *a, size_t alen, const char *b, size_t blen)
{
	const char *p = a, *end = a + alen, *q = b, *bend = b + blen, *m;
	while ((m = next_marker(p, end, 0))) {
		size_t seg = (size_t)(m - p);
		if ((size_t)(bend - q) < seg + marker_len(1) || memcmp(p, q, seg) ||
		    memcmp(q + seg, marker_base[1], marker_base_len[1]) ||
		    memcmp(q + seg + marker_base_len[1], m + marker_base_len[0], MARKER_SUFFIX_LEN))
			return false;
		p = m + marker_len(0);
		q += seg + marker_len(1);
	}
	return end - p == bend - q && !memcmp(p, q, (size_t)(end - p));
}

/* Appends text to out with v's values, escaped, in place of set 0's markers. */
static int add_with_values(sbuf *out, const char *text, size_t len, struct page_values *v)
{
	const char *p = text, *end = text + len, *m;
	int rc = 0;
	while (!rc && (m = next_marker(p, end, 0))) {
		bool id = !memcmp(m + marker_base_len[0], MARKER_REQUEST_ID, MARKER_SUFFIX_LEN);
		if (!id && v->sign_later)
			page_values_of(v->sign_later, v);   /* most pages have no form: signed only for one */
		const char *value = id ? v->request_id : v->csrf_token;
		rc = sbuf_add(out, p, (size_t)(m - p)) || sbuf_add_markup_escaped(out, value ? value : "");
		p = m + marker_len(0);
	}
	return rc || sbuf_add(out, p, (size_t)(end - p));
}

/* The template files kept pages were rendered from, with what stat() saw of each (also the
 * places looked at where no file was: a file put there later would be found first). Checked at
 * most every PAGE_KEEP_CHECK_MS when a kept page is asked for; a change forgets every kept
 * answer. A file changed less than PB_FILE_RACY_S before a render (its next change could
 * leave the same identity: runtime/util.h) keeps that render from being kept. One set per process, used by the
 * FastCGI loop's one thread, as runtime/answer_cache.h is. */
#define PAGE_KEEP_FILES 64
#define PAGE_KEEP_CHECK_MS 1000

static struct watched_file {
	char *path;
	bool present;
	pb_file_id id;   /* when present */
} watched[PAGE_KEEP_FILES];
static size_t nwatched;
static int64_t watched_checked_ms;

struct watch_render {
	bool keepable;   /* false once a file could not be watched */
};

static bool same_as_seen(const struct watched_file *w, const struct stat *st)
{
	return st && w->present ? pb_file_id_same(&w->id, st) : !st && !w->present;
}

static void note_seen(struct watched_file *w, const struct stat *st)
{
	w->present = st != NULL;
	if (st)
		pb_file_id_of(st, &w->id);
}

/* Page templates found to show the values as they are since the template files last changed. */
#define PAGE_KEEP_VERIFIED 16
static char verified[PAGE_KEEP_VERIFIED][PAGE_NAME_MAX + 1];
static size_t nverified;

static bool is_verified(const char *name)
{
	for (size_t i = 0; i < nverified; i++)
		if (!strcmp(verified[i], name))
			return true;
	return false;
}

static void add_verified(const char *name)
{
	if (nverified < PAGE_KEEP_VERIFIED && !is_verified(name))
		xsnprintf(verified[nverified++], sizeof verified[0], "%s", name);
}

/* A template file changed: what was kept or found from the files as they were goes. */
static void templates_changed(void)
{
	answer_cache_clear();
	nverified = 0;
}

static void forget_watched(void)
{
	for (size_t i = 0; i < nwatched; i++)
		free(watched[i].path);
	nwatched = 0;
}

static void file_seen(void *ctx, const char *path, const struct stat *st)
{
	struct watch_render *watch = ctx;
	if (st && pb_file_too_fresh(st))
		watch->keepable = false;
	size_t i = 0;
	while (i < nwatched && strcmp(watched[i].path, path))
		i++;
	if (i < nwatched) {
		if (!same_as_seen(&watched[i], st)) {
			templates_changed();
			note_seen(&watched[i], st);
		}
		return;
	}
	if (nwatched == PAGE_KEEP_FILES || !(watched[nwatched].path = xstrdup(path))) {
		watch->keepable = false;
		return;
	}
	if (!nwatched)
		watched_checked_ms = pb_mono_ms();
	note_seen(&watched[nwatched++], st);
}

/* False (and every kept answer forgotten) when a watched file changed. */
static bool templates_unchanged(void)
{
	int64_t now = pb_mono_ms();
	struct stat st;
	if (now - watched_checked_ms < PAGE_KEEP_CHECK_MS)
		return true;
	for (size_t i = 0; i < nwatched; i++) {
		bool here = stat(watched[i].path, &st) == 0 && S_ISREG(st.st_mode);
		if (!same_as_seen(&watched[i], here ? &st : NULL)) {
			templates_changed();
			forget_watched();
			return false;
		}
	}
	watched_checked_ms = now;
	return true;
}

/* The name a page is kept under: its path and who it was rendered for. */
static bool kept_name(const struct req *r, char *name, size_t size)
{
	return r->who.known && r->path && !xsnprintf(name, size, KEPT_NAME_PREFIX "%s %s", r->path, r->who.user_id);
}

bool page_kept_reply(struct req *r)
{
	const int64_t version = pb_identity_version(&r->who);
	char name[ANSWER_CACHE_KEY_MAX + 1];
	size_t len;
	const char *text;
	struct page_values values = { .request_id = r->request_id, .sign_later = r };
	if (version < 0 || !kept_name(r, name, sizeof name) || !templates_unchanged() ||
	    !(text = answer_cache_get(r->who.org_id, name, version, &len)))
		return false;
	if (req_reply(r, 200, "text/html; charset=utf-8", NULL, 0) ||
	    add_with_values(&r->resp, text, len, &values) || page_headers(r)) {
		sbuf_reset(&r->resp);
		return false;   /* rendered instead, which says why it fails */
	}
	return true;
}

/* view filled with v's values and rendered into out (reset first); a template's error is the
 * server's fault (PB_EINTERNAL), whatever it did. */
static int render_view(struct req *r, const char *name, json_t *view, const struct page_values *v,
		       page_chrome_fn chrome, struct watch_render *watch, sbuf *out)
{
	int rc;
	sbuf_reset(out);
	if (!json_is_object(view))
		return pb_err(r->err, PB_ENOMEM, "out of memory building the page");
	if (!(rc = fill_page(r, view, v, chrome, r->err)) &&
	    (rc = render_watched(r->cfg, name, view, out, watch, r->err)) && rc != PB_ENOMEM)
		rc = PB_EINTERNAL;
	return rc;
}

/* The page rendered and answered; kept at version (< 0: not kept). */
static int reply_page(struct req *r, const char *name, json_t *view, int status, page_chrome_fn chrome,
		      int64_t version)
{
	sbuf html, again;
	int rc;
	char kept_as[ANSWER_CACHE_KEY_MAX + 1];
	struct page_values values, markers[2];
	struct watch_render watch = { .keepable = true };
	bool keep = status == 200 && version >= 0 && kept_name(r, kept_as, sizeof kept_as) && markers_ready();
	page_values_of(r, &values);
	sbuf_init(&html, PB_PAGE_MAX_BYTES);
	sbuf_init(&again, PB_PAGE_MAX_BYTES);
	if (keep) {
		for (size_t m = 0; m < 2; m++)
			page_markers(&markers[m], m, values.csrf_token != NULL);
		/* verified after the first render: it notices a template file that changed */
		keep = !(rc = render_view(r, name, view, &markers[0], chrome, &watch, &html)) &&
		       ((watch.keepable && is_verified(name)) ||
			(!(rc = render_view(r, name, view, &markers[1], chrome, NULL, &again)) &&
			 same_but_markers(sbuf_str(&html), html.len, sbuf_str(&again), again.len)));
		if (keep && watch.keepable)
			add_verified(name);
	}
	if (!keep)
		rc = render_view(r, name, view, &values, chrome, NULL, &html);
	else if (watch.keepable)
		answer_cache_put(r->who.org_id, kept_as, version, sbuf_str(&html), html.len);
	json_decref(view);
	if (!rc && !(rc = req_reply(r, status, "text/html; charset=utf-8", NULL, 0)) &&
	    (keep ? add_with_values(&r->resp, sbuf_str(&html), html.len, &values)
		  : sbuf_add(&r->resp, sbuf_str(&html), html.len)))
		rc = pb_err(r->err, PB_ENOMEM, "page %s does not fit in the response", name);
	if (!rc)
		rc = page_headers(r);
	sbuf_release(&html);
	sbuf_release(&again);
	return rc;
}

int page_reply_keep(struct req *r, const char *name, json_t *view, int status, page_chrome_fn chrome)
{
	return reply_page(r, name, view, status, chrome, pb_identity_version(&r->who));
}

int page_reply(struct req *r, const char *name, json_t *view, int status, page_chrome_fn chrome)
{
	return reply_page(r, name, view, status, chrome, -1);
}

/* The page when web/error.lua itself fails: plain, with the stylesheet, saying the same. */
static int builtin_error_page(sbuf *b, int status, const char *title, const char *message, const char *request_id)
{
	return sbuf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>") ||
	       sbuf_add_markup_escaped(b, title) ||
	       sbuf_adds(b, " · pbiport</title><link rel=\"stylesheet\" href=\"/static/pbiport.css\"></head>"
			    "<body><main id=\"main\"><h1>") ||
	       sbuf_add_markup_escaped(b, title) || sbuf_addf(b, " (%d)</h1><p>", status) || sbuf_add_markup_escaped(b, message) ||
	       sbuf_adds(b, "</p><p><a href=\"/\">Data Products</a></p><p class=\"request-id\">Request ") ||
	       sbuf_add_markup_escaped(b, request_id) || sbuf_adds(b, "</p></main></body></html>\n");
}

int page_reply_failure(struct req *r, int status, const char *code, const char *message, page_chrome_fn chrome)
{
	char err[PB_ERR_MAX];
	const char *title = http_reason(status);
	sbuf html;
	int rc;
	json_t *view = json_pack("{s:{s:i, s:s, s:s, s:s}}", "error", "status", status, "title", title, "code", code,
				 "message", message);
	sbuf_init(&html, PB_PAGE_MAX_BYTES);
	/* the chrome is a courtesy here: a page about a failure must not fail on it */
	struct page_values values;
	page_values_of(r, &values);
	if (!view || fill_page(r, view, &values, chrome, err))
		err[0] = '\0';
	rc = view ? page_render(r->cfg, "error", view, &html, err) : PB_ENOMEM;
	if (rc) {
		sbuf_reset(&html);
		rc = builtin_error_page(&html, status, title, message, r->request_id) ? PB_ENOMEM : PB_OK;
	}
	if (!rc)
		rc = reply_html(r, status, &html);
	json_decref(view);
	sbuf_release(&html);
	return rc;
}

int page_redirect(struct req *r, const char *path)
{
	if (!path || path[0] != '/' || path[1] == '/' || path[1] == '\\')
		return pb_err(r->err, PB_EINTERNAL, "page redirect to a path that is not local");
	int rc = req_reply(r, 303, "text/html; charset=utf-8", NULL, 0);
	if (!rc)
		rc = req_header(r, "Location", path);
	if (!rc)
		rc = page_headers(r);
	return rc;
}

bool page_wants_html(const struct req *r)
{
	const char *accept = req_env(r, "HTTP_ACCEPT");
	return accept && strstr(accept, "text/html") && r->path && strncmp(r->path, "/api/", 5) &&
	       strcmp(r->path, "/api");
}

/* --- static files ------------------------------------------------------------------ */

static const struct {
	const char *ext, *type;
} static_types[] = {
	{ "css", "text/css; charset=utf-8" }, { "js", "text/javascript; charset=utf-8" },
	{ "svg", "image/svg+xml" }, { "png", "image/png" }, { "ico", "image/x-icon" },
	{ "woff2", "font/woff2" }, { "txt", "text/plain; charset=utf-8" },
};

static const char *static_type(const char *name)
{
	size_t n = strlen(name), dots = 0;
	if (n == 0 || n > PAGE_NAME_MAX || name[0] == '.' || name[n - 1] == '.')
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (c == '.' && name[i + 1] != '.')
			dots++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
			   c == '-'))
			return NULL;
	}
	const char *ext = strrchr(name, '.');
	for (size_t i = 0; dots && ext && i < sizeof static_types / sizeof static_types[0]; i++)
		if (!strcasecmp(ext + 1, static_types[i].ext))
			return static_types[i].type;
	return NULL;
}

int page_static_find(const pb_config *cfg, const char *name, char **path, const char **content_type, char *err)
{
	template_dirs dirs;
	char p[PB_RENDER_MAX_PATH];
	struct stat st;
	int rc;
	*path = NULL;
	*content_type = static_type(name);
	if (!*content_type)
		return pb_err(err, PB_ENOTFOUND, "no static file %.80s", name);
	if ((rc = template_dirs_build(cfg, NULL, "templates", &dirs, err)))
		return rc;
	rc = pb_err(err, PB_ENOTFOUND, "no static file %.80s", name);
	for (size_t i = 0; i < dirs.n; i++) {
		if (dirs.dirs[i].label && !strcmp(dirs.dirs[i].label, "lua"))
			continue;   /* Lua modules are not served */
		if (xsnprintf(p, sizeof p, "%s/web/static/%s", dirs.dirs[i].dir, name) || stat(p, &st) ||
		    !S_ISREG(st.st_mode))
			continue;
		rc = (*path = xstrdup(p)) ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
		break;
	}
	template_dirs_release(&dirs);
	return rc;
}
