#include "runtime/page_render.h"

#include <jansson.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "runtime/lua_json.h"
#include "runtime/lua_sandbox.h"
#include "runtime/page_csrf.h"
#include "runtime/page_html.h"
#include "runtime/request.h"
#include "runtime/template_dirs.h"
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

int page_render(const pb_config *cfg, const char *name, const json_t *view, sbuf *out, char *err)
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
			    .time_limit_ms = PB_PAGE_LUA_TIME_MS, .api = page_html_api };
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

/* view.page: what the runtime knows, then what the application's chrome adds. */
static int fill_page(struct req *r, json_t *view, page_chrome_fn chrome, char *err)
{
	json_t *page = json_object_get(view, "page");
	if (!json_is_object(page)) {
		if (json_object_set_new(view, "page", page = json_object()) || !page)
			return pb_err(err, PB_ENOMEM, "out of memory");
	}
	char token[PB_CSRF_TOKEN_BUF], why[PB_ERR_MAX];
	bool signed_in = r->who.known;
	bool can_sign = r->cfg && r->cfg->rememberme_keys && r->path &&
			!page_csrf_token(r->cfg->rememberme_keys, r->who.user_id, r->path, time(NULL), token, why);
	json_t *user = signed_in ? json_pack("{s:s, s:s}", "name", r->who.user_name, "role",
					     auth_role_name(r->who.role)) : NULL;
	json_t *features = json_pack("{s:b, s:b}", "powerbi_web", r->cfg && r->cfg->powerbi_web_enabled,
				     "ingestions", r->cfg && r->cfg->ingestions_enabled);
	int bad = set_str(page, "path", r->path) || set_str(page, "request_id", r->request_id) ||
		  (can_sign && set_str(page, "csrf_token", token)) ||
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

int page_reply(struct req *r, const char *name, json_t *view, int status, page_chrome_fn chrome)
{
	sbuf html;
	int rc;
	sbuf_init(&html, PB_PAGE_MAX_BYTES);
	if (!json_is_object(view))
		rc = pb_err(r->err, PB_ENOMEM, "out of memory building the page");
	else
		rc = fill_page(r, view, chrome, r->err);
	if (!rc && (rc = page_render(r->cfg, name, view, &html, r->err)) && rc != PB_ENOMEM)
		rc = PB_EINTERNAL;   /* a broken template is the server's fault, whatever it did */
	if (!rc)
		rc = reply_html(r, status, &html);
	json_decref(view);
	sbuf_release(&html);
	return rc;
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
	if (!view || fill_page(r, view, chrome, err))
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
