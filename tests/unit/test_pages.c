/* Unit tests for the web pages' machinery: lua/html.lua's escaping and URL rule, page
 * templates in the sandbox (errors located, admin overrides, a template that does not build
 * html), CSRF tokens and the Origin / Sec-Fetch-Site rule, form bodies, and whole page
 * requests in-process through pb_handle (HTML error pages with the status table, security
 * headers, 403 for a cross-site or token-less form, 303 after adding a data product, another
 * organization's id answered 404, static files with ETag and 304). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/store/identity.h"
#include "handlers/handlers.h"
#include "runtime/answer_cache.h"
#include "runtime/crypto.h"
#include "runtime/fcgi.h"
#include "runtime/page_csrf.h"
#include "runtime/page_form.h"
#include "runtime/page_render.h"
#include "runtime/util.h"
#include "tests/unit/mem_io.h"
#include "tests/unit/testutil.h"

#define KEY_A "5555555555555555555555555555555555555555555555555555555555555555"
#define KEY_B "6666666666666666666666666666666666666666666666666666666666666666"

typedef struct fixture {
	char dir[64];
	char admin[128];        /* PBIPORT_TEMPLATE_PATH of the tests: holds web/t_*.lua */
	pb_db *db;
	pb_config cfg;
	sbuf out;               /* what render() wrote */
	char product_id[PB_ID_BUF];
} fixture;

static void write_text(const char *dir, const char *rel, const char *text)
{
	char path[256], err[PB_ERR_MAX];
	assert_int_equal(xsnprintf(path, sizeof path, "%s/%s", dir, rel), 0);
	if (tu_write_file(path, text, strlen(text), err))
		fail_msg("%s", err);
}

/* ---- in-process requests ---- */

typedef struct answer {
	int status;
	char *text;      /* headers and body */
	const char *body;
} answer;

static void answer_free(answer *a)
{
	free(a->text);
	memset(a, 0, sizeof *a);
}

/* The value of header name (case as pbiport writes it) in a, copied into out; false if absent. */
static bool header(const answer *a, const char *name, char *out, size_t size)
{
	char key[128];
	assert_int_equal(xsnprintf(key, sizeof key, "\r\n%s: ", name), 0);
	const char *p = strstr(a->text, key);
	if (!p || p > a->body)
		return false;
	p += strlen(key);
	size_t n = strcspn(p, "\r");
	assert_true(n < size);
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* method uri as user (NULL: no identity) with a body of content_type; extra: more
 * "NAME=value" parameters (NULL-terminated, may be NULL). */
static answer call(fixture *f, const char *method, const char *uri, const char *user, const char *content_type,
		   const char *body, const char *const *extra)
{
	char m[32], u[1024], q[1024], who[64], ct[256], cl[32];
	const char *qs = strchr(uri, '?');
	char *env[32];
	size_t n = 0;
	assert_int_equal(xsnprintf(m, sizeof m, "REQUEST_METHOD=%s", method), 0);
	assert_int_equal(xsnprintf(u, sizeof u, "REQUEST_URI=%s", uri), 0);
	assert_int_equal(xsnprintf(q, sizeof q, "QUERY_STRING=%s", qs ? qs + 1 : ""), 0);
	env[n++] = m;
	env[n++] = u;
	env[n++] = q;
	env[n++] = "HTTP_ACCEPT=text/html,application/xhtml+xml";
	env[n++] = "HTTP_HOST=pages.test";
	if (user) {
		assert_int_equal(xsnprintf(who, sizeof who, "REMOTE_USER=%s", user), 0);
		env[n++] = who;
	}
	if (content_type) {
		assert_int_equal(xsnprintf(ct, sizeof ct, "CONTENT_TYPE=%s", content_type), 0);
		env[n++] = ct;
	}
	if (body) {
		assert_int_equal(xsnprintf(cl, sizeof cl, "CONTENT_LENGTH=%zu", strlen(body)), 0);
		env[n++] = cl;
	}
	for (size_t i = 0; extra && extra[i]; i++)
		env[n++] = (char *)extra[i];
	env[n] = NULL;
	struct mem_io io = { 0 };
	sbuf_init(&io.out, 64u << 20);
	mem_io_start(&io, body);
	struct req_io rio = mem_req_io(&io);
	struct req r;
	req_init(&r, &f->cfg, f->db);
	pb_handle(&r, &pb_app, env, &rio);
	answer a = { .status = r.status };
	req_release(&r);
	a.text = sbuf_detach(&io.out, NULL);
	const char *b = strstr(a.text, "\r\n\r\n");
	a.body = b ? b + 4 : "";
	return a;
}

static answer get(fixture *f, const char *uri, const char *user)
{
	return call(f, "GET", uri, user, NULL, NULL, NULL);
}

/* The page's CSRF token for user: from the hidden field of the form on uri. */
static void token_of(fixture *f, const char *uri, const char *user, char out[PB_CSRF_TOKEN_BUF])
{
	answer a = get(f, uri, user);
	assert_int_equal(a.status, 200);
	const char *p = strstr(a.body, "name=\"csrf_token\" type=\"hidden\" value=\"");
	assert_non_null(p);
	p += strlen("name=\"csrf_token\" type=\"hidden\" value=\"");
	size_t n = strcspn(p, "\"");
	assert_int_equal(n, PB_HMAC_B64URL_LEN);
	memcpy(out, p, n);
	out[n] = '\0';
	answer_free(&a);
}

/* ---- set-up ---- */

static const char ORDERS[] =
	"apiVersion: v3.0.2\nkind: DataContract\nid: urn:test:orders\nname: Orders\nversion: 1.0.0\n"
	"status: active\nservers:\n  - server: prod\n    type: snowflake\n    account: acme-xy\n"
	"    database: SALES\n    schema: PUBLIC\n    warehouse: WH\nschema:\n  - name: orders\n"
	"    physicalType: table\n    properties:\n      - name: order_id\n        logicalType: string\n"
	"        primaryKey: true\n";

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	char err[PB_ERR_MAX], id[PB_ID_BUF];
	assert_non_null(f);
	assert_int_equal(tu_mkdtemp(f->dir, sizeof f->dir, "pages"), 0);
	if (tu_db_open_migrated(f->dir, "pages.db", NULL, 0, &f->db, err))
		fail_msg("%s", err);
	assert_int_equal(identity_org_create(f->db, "acme", id, err), 0);
	assert_int_equal(identity_org_create(f->db, "globex", id, err), 0);
	assert_int_equal(identity_user_add(f->db, "alice", "acme", PB_ROLE_OWNER, NULL, 0, id, err), 0);
	assert_int_equal(identity_user_add(f->db, "bob", "acme", PB_ROLE_MEMBER, NULL, 0, id, err), 0);
	assert_int_equal(identity_user_add(f->db, "carol", "globex", PB_ROLE_OWNER, NULL, 0, id, err), 0);
	assert_int_equal(xsnprintf(f->admin, sizeof f->admin, "%s/admin", f->dir), 0);
	/* an admin template folder exists (start-up checks it; the search path refuses a missing one) */
	assert_int_equal(mkdir(f->admin, 0700), 0);
	assert_int_equal(pb_keyring_parse(KEY_A, &f->cfg.rememberme_keys, err), 0);
	f->cfg.template_path = f->admin;
	f->cfg.max_body = 1 << 20;
	f->cfg.powerbi_web_enabled = true;
	sbuf_init(&f->out, 1 << 20);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	sbuf_release(&f->out);
	db_close(f->db);
	pb_keyring_free(f->cfg.rememberme_keys);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

/* ---- html.lua and page templates ---- */

#define TPL_HEAD "local html = require('html')\nlocal h = html.tags\n"

/* Renders admin template web/<name>.lua (text) with view (JSON text); returns rc, out in *html. */
static int render(fixture *f, const char *name, const char *text, const char *view_json, sbuf *html, char *err)
{
	char rel[128];
	assert_int_equal(xsnprintf(rel, sizeof rel, "web/%s.lua", name), 0);
	write_text(f->admin, rel, text);
	json_t *view = json_loads(view_json, 0, NULL);
	assert_non_null(view);
	sbuf_reset(html);
	int rc = page_render(&f->cfg, name, view, html, err);
	json_decref(view);
	return rc;
}

static void html_escapes_text_and_attributes(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	sbuf *out = &f->out;
	static const char tpl[] =
		TPL_HEAD
		"return function(v) return h.div{ title = v.name, class = { 'a', 'b' }, hidden = true, id = false,\n"
		"  h.p{ v.name }, h.p{ v.n }, html.raw('<br>'), { h.i{ 'x' }, nil, h.b{ 'y' } }, nil, false } end\n";
	assert_int_equal(render(f, "t_escape", tpl,
			       "{\"name\": \"<script>alert(\\\"x\\\")</script> & 'q' \\u05e9\\u05dc\\u05d5\\u05dd \\ud83d\\ude80\","
			       " \"n\": 3}", out, err), 0);
	assert_string_equal(sbuf_str(out),
			    "<div class=\"a b\" hidden title=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
			    "&#39;q&#39; \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xf0\x9f\x9a\x80\">"
			    "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; "
			    "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xf0\x9f\x9a\x80</p><p>3</p><br><i>x</i><b>y</b></div>");
}

/* pbiport.html_escape (what html.lua escapes with) answers what the pattern-matcher version it
 * replaced answers: string.gsub(s, "[&<>\"']", entities), for text with none, some or only
 * those characters, NUL bytes, bytes that are not UTF-8 and texts longer than Lua's buffer. */
static void html_escape_matches_gsub(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	sbuf *out = &f->out;
	static const char tpl[] =
		TPL_HEAD
		"local E = { ['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['\"'] = '&quot;', [\"'\"] = '&#39;' }\n"
		"return function(v)\n"
		"  local texts = { '', 'plain', '&', '<>', '\"\\'', 'a&b<c>d\"e\\'f', '&&&&', 'x\\0<\\0y', '\\255<\\254',\n"
		"                  string.rep('a<b', 3000), string.rep('z', 5000) .. '&', '&' .. string.rep('z', 5000) }\n"
		"  for _, t in ipairs(v.more) do texts[#texts + 1] = t end\n"
		"  for i, t in ipairs(texts) do\n"
		"    local want = (string.gsub(t, '[&<>\"\\']', E))\n"
		"    if pbiport.html_escape(t) ~= want or html.escape(t) ~= want then error('text ' .. i) end\n"
		"  end\n"
		"  if html.escape(3) ~= '3' then error('a number') end\n"
		"  return h.p{ #texts }\n"
		"end\n";
	assert_int_equal(render(f, "t_html_escape", tpl, "{\"more\": [\"<script>alert('x')</script>\", "
			       "\"\\u05e9 & \\ud83d\\ude80\"]}", out, err), 0);
	assert_string_equal(sbuf_str(out), "<p>14</p>");
}

static void html_keeps_only_safe_urls(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	sbuf *out = &f->out;
	static const char tpl[] =
		TPL_HEAD
		"return function(v) local out = {}\n"
		"  for _, u in ipairs(v.urls) do out[#out + 1] = h.a{ href = u, 'x' } end\n"
		"  return h.div{ out } end\n";
	assert_int_equal(render(f, "t_urls", tpl,
			       "{\"urls\": [\"/data-products/1\", \"https://app.powerbi.com/groups/a?x=1&y=2\", "
			       "\"HTTP://example.com/\", \"?q=1\", \"#main\", \"relative/path\", \"javascript:alert(1)\", "
			       "\"JavaScript:alert(1)\", \" javascript:alert(1)\", \"java\\tscript:alert(1)\", "
			       "\"data:text/html,x\", \"//evil.example/\", \"/\\\\evil.example\", \"vbscript:x\", "
			       "\"https://a b/\"]}", out, err), 0);
	const char *want =
		"<div><a href=\"/data-products/1\">x</a><a href=\"https://app.powerbi.com/groups/a?x=1&amp;y=2\">x</a>"
		"<a href=\"HTTP://example.com/\">x</a><a href=\"?q=1\">x</a><a href=\"#main\">x</a>"
		"<a href=\"relative/path\">x</a>";
	assert_int_equal(strncmp(sbuf_str(out), want, strlen(want)), 0);
	/* the nine unsafe ones */
	const char *p = sbuf_str(out);
	int unsafe = 0;
	while ((p = strstr(p, "href=\"about:invalid#unsafe-url\"")))
		unsafe++, p++;
	assert_int_equal(unsafe, 9);
	assert_null(strstr(sbuf_str(out), "javascript"));
}

/* The element rules runtime/page_html.c applies (html.lua's, done in C): attribute names sorted
 * whatever their number, list values joined without their false items, an html value's markup as
 * a value (escaped), numbers as tostring writes them, lists in lists flattened with their holes
 * skipped, void elements, and the messages of a bad name and of lists nested too deep. */
static void html_element_rules(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	sbuf *out = &f->out;
	static const char tpl[] =
		TPL_HEAD
		"return function(v)\n"
		"  local many = { 'c' }\n"
		"  for i = 20, 1, -1 do many[string.format('d%02d', i)] = i end\n"
		"  return h.div{ class = { 'a', false, 'b', 3 }, title = html.raw('<b>&'), hidden = true, id = false,\n"
		"    h.p(many), 1.5, 10, { 'x', { nil, { html.raw('<i>') }, 'y' } }, h.br{}, html.text({ 'z<', 2 }) }\n"
		"end\n";
	assert_int_equal(render(f, "t_rules", tpl, "{}", out, err), 0);
	assert_string_equal(sbuf_str(out),
			    "<div class=\"a b 3\" hidden title=\"&lt;b&gt;&amp;\"><p d01=\"1\" d02=\"2\" d03=\"3\" d04=\"4\" "
			    "d05=\"5\" d06=\"6\" d07=\"7\" d08=\"8\" d09=\"9\" d10=\"10\" d11=\"11\" d12=\"12\" d13=\"13\" "
			    "d14=\"14\" d15=\"15\" d16=\"16\" d17=\"17\" d18=\"18\" d19=\"19\" d20=\"20\">c</p>1.510x<i>y"
			    "<br>z&amp;lt;2</div>");   /* html.text gives a string: escaped again as content */
	assert_int_equal(render(f, "t_name", TPL_HEAD "return function(v)\n  local p = h.p{ ['a b\\n'] = 1 }\n  return p end\n", "{}",
			       out, err), PB_EINVAL);
	assert_non_null(strstr(err, "t_name.lua:4: html: <p>: invalid attribute name \"a b\\ \""));   /* %q; the line break made a space */
	assert_int_equal(render(f, "t_void", TPL_HEAD "return function(v)\n  return h.div{ h.img{ 'x' } } end\n", "{}",
			       out, err), PB_EINVAL);
	assert_non_null(strstr(err, "t_void.lua:4: html: <img> has no content"));
	assert_int_equal(render(f, "t_deep", TPL_HEAD "return function(v)\n  local t = { 'x' }\n"
						"  for i = 1, 200 do t = { t } end\n  local d = h.div{ t }\n  return d end\n", "{}", out, err),
			 PB_EINVAL);
	assert_non_null(strstr(err, "t_deep.lua:6: html: lists nested more than 100 deep into <div>"));
}

static void html_refuses_inline_script_and_style(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	sbuf *out = &f->out;
	assert_int_equal(render(f, "t_onclick", "local h = require('html').tags\nreturn function(v)\n"
						"  return h.div{ h.button{ onclick = 'x()', 'Go' } } end\n", "{}", out, err),
			 PB_EINVAL);
	assert_non_null(strstr(err, "admin/web/t_onclick.lua:3:"));
	assert_non_null(strstr(err, "attribute onclick is not allowed"));
	assert_int_equal(render(f, "t_style", "local h = require('html').tags\nreturn function(v)\n"
					      "  return h.div{ h.p{ style = 'color:red', 'x' } } end\n", "{}", out, err),
			 PB_EINVAL);
	assert_non_null(strstr(err, "attribute style is not allowed"));
	assert_int_equal(render(f, "t_script", "local h = require('html').tags\nreturn function(v)\n"
					       "  return h.div{ h.script{ 'alert(1)' } } end\n", "{}", out, err),
			 PB_EINVAL);
	assert_non_null(strstr(err, "t_script.lua:3: html: <script> takes no inline code"));
	assert_int_equal(render(f, "t_fn", "local h = require('html').tags\nreturn function(v)\n"
					   "  return h.div{ h.p{ 'a', { h.b{ 'b' }, print } } } end\n", "{}", out, err),
			 PB_EINVAL);
	assert_non_null(strstr(err, "t_fn.lua:3: html: cannot put a function into <p>"));
}

static void template_must_build_html(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	sbuf *out = &f->out;
	/* a plain string would bypass escaping: refused */
	assert_int_equal(render(f, "t_string", "return function(v) return '<p>' .. v.x .. '</p>' end\n",
				"{\"x\": \"<b>\"}", out, err), PB_EINVAL);
	assert_non_null(strstr(err, "web/t_string.lua: its function returned a string, not html"));
	/* a runtime error names the file and the line */
	assert_int_equal(render(f, "t_error", "local h = require('html').tags\n\nreturn function(v)\n"
					      "  return h.p{ v.missing.field } end\n", "{}", out, err),
			 PB_EINVAL);
	assert_non_null(strstr(err, "template "));
	assert_non_null(strstr(err, "admin/web/t_error.lua:4:"));
	/* a syntax error too */
	assert_int_equal(render(f, "t_syntax", "return function(v)\n  return (\nend\n", "{}", out, err), PB_EINVAL);
	assert_non_null(strstr(err, "admin/web/t_syntax.lua:3:"));
	/* a page that runs forever stops at the time limit */
	assert_int_equal(render(f, "t_loop", "return function(v) while true do end end\n", "{}", out, err), PB_ELIMIT);
	assert_non_null(strstr(err, "time limit"));
}

/* ---- CSRF ---- */

static void csrf_tokens(void **state)
{
	(void)state;
	pb_keyring *a = NULL, *b = NULL, *rotated = NULL;
	char err[PB_ERR_MAX], t[PB_CSRF_TOKEN_BUF], t2[PB_CSRF_TOKEN_BUF];
	time_t now = 1700000000;
	assert_int_equal(pb_keyring_parse(KEY_A, &a, err), 0);
	assert_int_equal(pb_keyring_parse(KEY_B, &b, err), 0);
	assert_int_equal(pb_keyring_parse(KEY_B "," KEY_A, &rotated, err), 0);
	assert_int_equal(page_csrf_token(a, "user1", "/settings/power-bi", now, t, err), 0);
	assert_int_equal(strlen(t), PB_HMAC_B64URL_LEN);
	assert_true(page_csrf_valid(a, "user1", "/settings/power-bi", now, t));
	/* valid through the next window, not the one after */
	assert_true(page_csrf_valid(a, "user1", "/settings/power-bi", now + PB_CSRF_WINDOW_S, t));
	assert_false(page_csrf_valid(a, "user1", "/settings/power-bi", now + 2 * PB_CSRF_WINDOW_S + 1, t));
	/* bound to the user, the path and the key */
	assert_false(page_csrf_valid(a, "user2", "/settings/power-bi", now, t));
	assert_false(page_csrf_valid(a, "user1", "/data-products/new", now, t));
	assert_false(page_csrf_valid(b, "user1", "/settings/power-bi", now, t));
	/* after a rotation the old key still verifies; new tokens use the new key */
	assert_true(page_csrf_valid(rotated, "user1", "/settings/power-bi", now, t));
	assert_int_equal(page_csrf_token(rotated, "user1", "/settings/power-bi", now, t2, err), 0);
	assert_string_not_equal(t, t2);
	assert_false(page_csrf_valid(a, "user1", "/settings/power-bi", now, t2));
	/* junk */
	assert_false(page_csrf_valid(a, "user1", "/settings/power-bi", now, ""));
	assert_false(page_csrf_valid(a, "user1", "/settings/power-bi", now, NULL));
	t[5] = t[5] == 'A' ? 'B' : 'A';
	assert_false(page_csrf_valid(a, "user1", "/settings/power-bi", now, t));
	assert_int_equal(page_csrf_token(NULL, "user1", "/", now, t, err), PB_EINVAL);
	assert_non_null(strstr(err, "APPLICATION_SECURITY_REMEMBERME_KEY"));
	pb_keyring_free(a);
	pb_keyring_free(b);
	pb_keyring_free(rotated);
}

static void origin_rule(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	const char *own = "https://pbiport.example.com";
	assert_int_equal(page_origin_allowed(NULL, NULL, own, err), 0);
	assert_int_equal(page_origin_allowed("https://pbiport.example.com", "same-origin", own, err), 0);
	assert_int_equal(page_origin_allowed("HTTPS://PBIPORT.example.com", NULL, own, err), 0);
	assert_int_equal(page_origin_allowed(NULL, "none", own, err), 0);
	assert_int_equal(page_origin_allowed(NULL, "cross-site", own, err), PB_EFORBIDDEN);
	assert_int_equal(page_origin_allowed(NULL, "same-site", own, err), PB_EFORBIDDEN);
	assert_int_equal(page_origin_allowed("https://evil.example", NULL, own, err), PB_EFORBIDDEN);
	assert_non_null(strstr(err, "https://evil.example"));
	assert_int_equal(page_origin_allowed("null", NULL, own, err), PB_EFORBIDDEN);
	assert_int_equal(page_origin_allowed("http://pbiport.example.com", "same-origin", own, err), PB_EFORBIDDEN);
	assert_int_equal(page_origin_allowed("https://pbiport.example.com", NULL, NULL, err), PB_EFORBIDDEN);
}

static void own_origin(void **state)
{
	fixture *f = *state;
	char out[PB_ORIGIN_MAX], err[PB_ERR_MAX];
	struct {
		const char *public_url;
		const char *env[4];
		const char *want;   /* NULL: no origin */
	} cases[] = {
		{ "https://Pbiport.Example.com/base/", { NULL }, "https://pbiport.example.com" },
		{ "http://127.0.0.1:8080", { "HTTP_HOST=other:1" }, "http://127.0.0.1:8080" },
		{ NULL, { "HTTP_HOST=Pages.Test:8081" }, "http://pages.test:8081" },
		{ NULL, { "HTTP_HOST=pages.test:443", "HTTPS=on" }, "https://pages.test" },
		{ NULL, { "HTTP_HOST=pages.test:80" }, "http://pages.test" },
		{ NULL, { "HTTP_HOST=pages.test", "REQUEST_SCHEME=https" }, "https://pages.test" },
		{ NULL, { "HTTP_HOST=a/b" }, NULL },
		{ NULL, { NULL }, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pb_config cfg = { .public_url = (char *)cases[i].public_url };
		struct req r;
		char *env[6] = { "REQUEST_METHOD=POST", "REQUEST_URI=/x", NULL };
		size_t n = 2;
		for (size_t j = 0; cases[i].env[j]; j++)
			env[n++] = (char *)cases[i].env[j];
		env[n] = NULL;
		req_init(&r, &cfg, f->db);
		assert_int_equal(req_load(&r, env, NULL, err), 0);
		int rc = page_own_origin(&r, out, err);
		if (cases[i].want) {
			assert_int_equal(rc, 0);
			assert_string_equal(out, cases[i].want);
		} else {
			assert_int_equal(rc, PB_EINVAL);
		}
		req_release(&r);
	}
}

/* ---- forms ---- */

static void form_bodies(void **state)
{
	(void)state;
	page_form form;
	char err[PB_ERR_MAX];
	const char *u = "a=1&b=x+y%26z&empty=&flag&a=2&n%C3%A4me=%E2%9C%93";
	assert_int_equal(page_form_parse("application/x-www-form-urlencoded", u, strlen(u), &form, err), 0);
	assert_int_equal(form.n, 6);
	assert_string_equal(page_form_get(&form, "a")->value, "1");
	assert_string_equal(page_form_get(&form, "b")->value, "x y&z");
	assert_string_equal(page_form_get(&form, "empty")->value, "");
	assert_string_equal(page_form_get(&form, "flag")->value, "");
	assert_string_equal(form.v[4].value, "2");
	assert_string_equal(page_form_get(&form, "n\xc3\xa4me")->value, "\xe2\x9c\x93");
	assert_null(page_form_get(&form, "missing"));
	page_form_clear(&form);
	assert_int_equal(page_form_parse("application/x-www-form-urlencoded", "a=%zz", 5, &form, err), PB_EINVAL);
	assert_int_equal(page_form_parse("application/x-www-form-urlencoded", "a=%00", 5, &form, err), PB_EINVAL);
	assert_int_equal(page_form_parse("application/x-www-form-urlencoded", "=1", 2, &form, err), PB_EINVAL);
	assert_non_null(strstr(err, "field name is empty"));
	assert_int_equal(page_form_parse("application/x-www-form-urlencoded", "a=%zz", 5, &form, err), PB_EINVAL);
	assert_non_null(strstr(err, "form field 'a': invalid encoding"));

	static const char mp[] =
		"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\ntok\r\n"
		"--XyZ\r\nContent-Disposition: form-data; name=\"contract\"\r\n\r\nline1\r\nline2\r\n"
		"--XyZ\r\nContent-Disposition: form-data; name=\"contract_file\"; filename=\"o rders.yaml\"\r\n"
		"Content-Type: application/x-yaml\r\n\r\nid: x\n\0bin\r\n"
		"--XyZ--\r\n";
	assert_int_equal(page_form_parse("multipart/form-data; boundary=\"XyZ\"", mp, sizeof mp - 1, &form, err), 0);
	assert_int_equal(form.n, 3);
	assert_string_equal(page_form_get(&form, "csrf_token")->value, "tok");
	assert_null(page_form_get(&form, "csrf_token")->filename);
	assert_string_equal(page_form_get(&form, "contract")->value, "line1\r\nline2");
	const page_field *file = page_form_get(&form, "contract_file");
	assert_string_equal(file->filename, "o rders.yaml");
	assert_int_equal(file->len, 10);
	assert_memory_equal(file->value, "id: x\n\0bin", 10);
	page_form_clear(&form);
	/* a body that ends inside a part, and one without a boundary parameter */
	assert_int_equal(page_form_parse("multipart/form-data; boundary=XyZ", mp, 60, &form, err), PB_EINVAL);
	assert_int_equal(page_form_parse("multipart/form-data", mp, sizeof mp - 1, &form, err), PB_EINVAL);
	assert_non_null(strstr(err, "boundary"));
	/* more fields than allowed */
	sbuf many;
	sbuf_init(&many, 1 << 16);
	for (int i = 0; i <= PB_FORM_MAX_FIELDS; i++)
		assert_int_equal(sbuf_addf(&many, "f%d=1&", i), 0);
	assert_int_equal(page_form_parse("application/x-www-form-urlencoded", sbuf_str(&many), many.len, &form, err),
			 PB_EINVAL);
	assert_non_null(strstr(err, "more than"));
	sbuf_release(&many);
}

/* ---- whole requests ---- */

static void security_headers(const answer *a)
{
	char v[512];
	assert_true(header(a, "Content-Security-Policy", v, sizeof v));
	assert_string_equal(v, "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
	assert_true(header(a, "X-Content-Type-Options", v, sizeof v));
	assert_string_equal(v, "nosniff");
	assert_true(header(a, "Referrer-Policy", v, sizeof v));
	assert_string_equal(v, "same-origin");
	assert_true(header(a, "Content-Type", v, sizeof v));
	assert_string_equal(v, "text/html; charset=utf-8");
}

/* Adds a data product through the page's form; returns the answer (303 on success). */
static answer add_product(fixture *f, const char *user, const char *contract, const char *const *extra)
{
	char token[PB_CSRF_TOKEN_BUF];
	sbuf body;
	sbuf_init(&body, 1 << 20);
	token_of(f, "/data-products/new", user, token);
	assert_int_equal(sbuf_addf(&body, "csrf_token=%s&contract=", token), 0);
	for (const char *p = contract; *p; p++)
		assert_int_equal(sbuf_addf(&body, "%%%02X", (unsigned char)*p), 0);
	answer a = call(f, "POST", "/data-products/new", user, "application/x-www-form-urlencoded", sbuf_str(&body),
			extra);
	sbuf_release(&body);
	return a;
}

static void pages_in_process(void **state)
{
	fixture *f = *state;
	char v[256];
	answer a = get(f, "/", "alice");
	assert_int_equal(a.status, 200);
	security_headers(&a);
	assert_true(header(&a, "Cache-Control", v, sizeof v));
	assert_string_equal(v, "no-store");
	assert_non_null(strstr(a.body, "<h1>Data Products</h1>"));
	assert_non_null(strstr(a.body, "acme"));   /* the organization in the header */
	assert_non_null(strstr(a.body, "No data products yet"));
	answer_free(&a);

	/* add one through the form: 303 to its page */
	a = add_product(f, "bob", ORDERS, NULL);
	assert_int_equal(a.status, 303);
	assert_true(header(&a, "Location", v, sizeof v));
	assert_int_equal(strncmp(v, "/data-products/", 15), 0);
	xsnprintf(f->product_id, sizeof f->product_id, "%s", v + 15);
	answer_free(&a);
	a = get(f, "/?q=ORD", "alice");
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.body, ">Orders</a>"));
	answer_free(&a);
	a = get(f, "/?q=nothing-like-it", "alice");
	assert_non_null(strstr(a.body, "No data product matches"));
	assert_null(strstr(a.body, ">Orders</a>"));
	answer_free(&a);

	/* the product page: port, server, schema, the Open in menu */
	char uri[128];
	xsnprintf(uri, sizeof uri, "/data-products/%s", f->product_id);
	a = get(f, uri, "bob");
	assert_int_equal(a.status, 200);
	security_headers(&a);
	assert_non_null(strstr(a.body, "<h1>Orders</h1>"));
	assert_non_null(strstr(a.body, "order_id"));
	assert_non_null(strstr(a.body, "acme-xy"));   /* the server's fields */
	assert_non_null(strstr(a.body, ">Power BI Web</a>"));
	assert_non_null(strstr(a.body, "/power-bi\""));
	answer_free(&a);

	/* the contract edited (the same id imported again): the page shows the new text's schema,
	 * not the tree kept for the old text (handlers/pages_catalog.c keeps parsed contracts) */
	char *edited = xstrdup(ORDERS);
	assert_non_null(edited);
	memcpy(strstr(edited, "order_id"), "order_no", 8);
	a = add_product(f, "bob", edited, NULL);
	assert_int_equal(a.status, 303);
	answer_free(&a);
	a = get(f, uri, "bob");
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.body, "order_no"));
	assert_null(strstr(a.body, "order_id"));
	answer_free(&a);
	/* and back to the first text, kept already: its schema again */
	a = add_product(f, "bob", ORDERS, NULL);
	assert_int_equal(a.status, 303);
	answer_free(&a);
	a = get(f, uri, "bob");
	assert_non_null(strstr(a.body, "order_id"));
	assert_null(strstr(a.body, "order_no"));
	answer_free(&a);
	free(edited);

	/* another organization's id: the 404 page */
	a = get(f, uri, "carol");
	assert_int_equal(a.status, 404);
	security_headers(&a);
	assert_non_null(strstr(a.body, "<h1>Not Found</h1>"));
	assert_non_null(strstr(a.body, "globex"));
	answer_free(&a);

	/* a broken contract: the form again, 400, with the located message */
	a = add_product(f, "bob", "id: x\nname: [\n", NULL);
	assert_int_equal(a.status, 400);
	assert_non_null(strstr(a.body, "pasted contract:"));
	assert_non_null(strstr(a.body, "role=\"alert\""));
	assert_non_null(strstr(a.body, "name: ["));   /* the text box keeps what was pasted */
	answer_free(&a);

	/* an unknown path from a browser: HTML; under /api/: JSON */
	a = get(f, "/nowhere", "alice");
	assert_int_equal(a.status, 404);
	security_headers(&a);
	answer_free(&a);
	a = get(f, "/api/nowhere", "alice");
	assert_int_equal(a.status, 404);
	assert_true(header(&a, "Content-Type", v, sizeof v));
	assert_string_equal(v, "application/json");
	answer_free(&a);
	/* no identity: a 401 page */
	a = get(f, "/", NULL);
	assert_int_equal(a.status, 401);
	security_headers(&a);
	answer_free(&a);
}

/* Kept pages (runtime/page_render.h): the product page is kept after its first render and given
 * again with each request's own id; a template that does more with the request id than show it
 * (cuts it, measures it) is rendered for every request (nothing kept), and right each time. */
static answer get_with_id(fixture *f, const char *uri, const char *user, const char *request_id)
{
	char id[96];
	assert_int_equal(xsnprintf(id, sizeof id, "HTTP_X_REQUEST_ID=%s", request_id), 0);
	const char *extra[] = { id, NULL };
	return call(f, "GET", uri, user, NULL, NULL, extra);
}

static void product_page_is_kept(void **state)
{
	fixture *f = *state;
	char uri[128], v[256], expect[128];
	size_t bytes;
	answer a = add_product(f, "alice", ORDERS, NULL);
	assert_int_equal(a.status, 303);
	assert_true(header(&a, "Location", uri, sizeof uri));
	answer_free(&a);
	answer_cache_clear();
	a = get_with_id(f, uri, "bob", "first-request");
	assert_int_equal(a.status, 200);
	assert_int_equal(answer_cache_count(&bytes), 1);
	char *first = xstrdup(a.body);
	assert_non_null(first);
	answer_free(&a);
	a = get_with_id(f, uri, "bob", "second-request");
	assert_int_equal(a.status, 200);
	security_headers(&a);
	assert_true(header(&a, "Cache-Control", v, sizeof v));
	assert_string_equal(v, "no-store");
	assert_int_equal(answer_cache_count(&bytes), 1);
	/* the same page but for the request id */
	assert_non_null(strstr(a.body, "request <code>second-request</code>"));
	const char *p = strstr(first, "first-request");
	assert_non_null(p);
	sbuf expected;
	sbuf_init(&expected, 1u << 20);
	assert_int_equal(sbuf_add(&expected, first, (size_t)(p - first)) || sbuf_adds(&expected, "second-request") ||
				 sbuf_adds(&expected, p + strlen("first-request")),
			 0);
	assert_string_equal(a.body, sbuf_str(&expected));
	sbuf_release(&expected);
	free(first);
	answer_free(&a);

	/* a template that cuts and measures the request id: a page for each request, nothing kept */
	write_text(f->admin, "web/product.lua",
		   TPL_HEAD "local layout = require('web.layout')\nreturn function(view)\n"
			    "  local id = view.page.request_id\n"
			    "  return layout.page(view, { title = view.product.name, main = h.p{ id:sub(1, 5), ' ', #id } })\n"
			    "end\n");
	answer_cache_clear();
	for (int i = 0; i < 3; i++) {
		a = get_with_id(f, uri, "bob", i % 2 ? "keep-me" : "other-id");
		assert_int_equal(a.status, 200);
		assert_int_equal(xsnprintf(expect, sizeof expect, "<p>%s %d</p>", i % 2 ? "keep-" : "other", i % 2 ? 7 : 8), 0);
		if (!strstr(a.body, expect))
			fail_msg("%s not in %.600s", expect, strstr(a.body, "<main") ? strstr(a.body, "<main") : a.body);
		answer_free(&a);
		assert_int_equal(answer_cache_count(&bytes), 0);
	}
	char path[256];
	assert_int_equal(xsnprintf(path, sizeof path, "%s/web/product.lua", f->admin), 0);
	assert_int_equal(unlink(path), 0);
}

static void forms_need_csrf(void **state)
{
	fixture *f = *state;
	char v[256], token[PB_CSRF_TOKEN_BUF], body[512];
	/* no token */
	answer a = call(f, "POST", "/data-products/new", "alice", "application/x-www-form-urlencoded", "contract=id%3A+x",
			NULL);
	assert_int_equal(a.status, 403);
	security_headers(&a);
	assert_non_null(strstr(a.body, "csrf_failed"));
	answer_free(&a);
	/* another user's token */
	token_of(f, "/data-products/new", "bob", token);
	xsnprintf(body, sizeof body, "csrf_token=%s&contract=id%%3A+x", token);
	a = call(f, "POST", "/data-products/new", "alice", "application/x-www-form-urlencoded", body, NULL);
	assert_int_equal(a.status, 403);
	answer_free(&a);
	/* the right token, sent by another site */
	token_of(f, "/data-products/new", "alice", token);
	xsnprintf(body, sizeof body, "csrf_token=%s&contract=", token);
	static const char *const cross[] = { "HTTP_ORIGIN=https://evil.example", "HTTP_SEC_FETCH_SITE=cross-site", NULL };
	a = call(f, "POST", "/data-products/new", "alice", "application/x-www-form-urlencoded", body, cross);
	assert_int_equal(a.status, 403);
	assert_non_null(strstr(a.body, "another site"));
	answer_free(&a);
	static const char *const other_origin[] = { "HTTP_ORIGIN=http://evil.example", NULL };
	a = call(f, "POST", "/data-products/new", "alice", "application/x-www-form-urlencoded", body, other_origin);
	assert_int_equal(a.status, 403);
	answer_free(&a);
	/* the same token from this site's own origin reaches the handler (400: nothing pasted) */
	static const char *const same[] = { "HTTP_ORIGIN=http://pages.test", "HTTP_SEC_FETCH_SITE=same-origin", NULL };
	a = call(f, "POST", "/data-products/new", "alice", "application/x-www-form-urlencoded", body, same);
	assert_int_equal(a.status, 400);
	assert_non_null(strstr(a.body, "Paste a contract"));
	answer_free(&a);
	/* the token in the X-CSRF-Token header (scripts) */
	char hdr[128];
	xsnprintf(hdr, sizeof hdr, "HTTP_X_CSRF_TOKEN=%s", token);
	const char *const by_header[] = { hdr, NULL };
	a = call(f, "POST", "/data-products/new", "alice", "application/x-www-form-urlencoded", "contract=", by_header);
	assert_int_equal(a.status, 400);
	answer_free(&a);
	/* without the key, forms are off: 503 naming the variable */
	pb_keyring *kr = f->cfg.rememberme_keys;
	f->cfg.rememberme_keys = NULL;
	a = call(f, "POST", "/data-products/new", "alice", "application/x-www-form-urlencoded", body, NULL);
	assert_int_equal(a.status, 503);
	assert_non_null(strstr(a.body, "APPLICATION_SECURITY_REMEMBERME_KEY"));
	answer_free(&a);
	f->cfg.rememberme_keys = kr;
	(void)v;
}

static void template_failure_is_a_500_page(void **state)
{
	fixture *f = *state;
	char err[PB_ERR_MAX];
	write_text(f->admin, "web/home.lua", "local h = require('html').tags\nreturn function(v)\n"
					     "  return h.p{ v.nope.x } end\n");
	answer a = get(f, "/", "alice");
	assert_int_equal(a.status, 500);
	security_headers(&a);
	assert_non_null(strstr(a.body, "internal error (request "));
	assert_null(strstr(a.body, "home.lua"));   /* the cause goes to the log only */
	answer_free(&a);
	/* a broken error page falls back to the built-in one */
	write_text(f->admin, "web/error.lua", "return function(v) error('boom') end\n");
	a = get(f, "/", "alice");
	assert_int_equal(a.status, 500);
	assert_non_null(strstr(a.body, "<h1>Internal Server Error (500)</h1>"));
	answer_free(&a);
	/* an admin override of a page is used instead of the built-in one */
	write_text(f->admin, "web/home.lua", "local html = require('html')\nlocal layout = require('web.layout')\n"
					     "return function(v) return layout.page(v, { title = 'Our catalog', "
					     "main = html.tags.p{ 'custom' } }) end\n");
	char path[256];
	xsnprintf(path, sizeof path, "%s/web/error.lua", f->admin);
	assert_int_equal(remove(path), 0);
	a = get(f, "/", "alice");
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.body, "<h1>Our catalog</h1>"));
	answer_free(&a);
	(void)err;
}

static void static_files(void **state)
{
	fixture *f = *state;
	char etag[64], v[128], inm[96];
	answer a = get(f, "/static/pbiport.css", NULL);
	assert_int_equal(a.status, 200);
	assert_true(header(&a, "Content-Type", v, sizeof v));
	assert_string_equal(v, "text/css; charset=utf-8");
	assert_true(header(&a, "Cache-Control", v, sizeof v));
	assert_string_equal(v, "public, max-age=600");
	assert_null(strstr(a.text, "no-store"));
	assert_true(header(&a, "ETag", etag, sizeof etag));
	answer_free(&a);
	xsnprintf(inm, sizeof inm, "HTTP_IF_NONE_MATCH=%s", etag);
	const char *const cond[] = { inm, NULL };
	a = call(f, "GET", "/static/pbiport.css", NULL, NULL, NULL, cond);
	assert_int_equal(a.status, 304);
	assert_string_equal(a.body, "");
	answer_free(&a);
	a = get(f, "/static/pbiport.js", NULL);
	assert_int_equal(a.status, 200);
	assert_true(header(&a, "Content-Type", v, sizeof v));
	assert_string_equal(v, "text/javascript; charset=utf-8");
	answer_free(&a);
	/* an admin's file comes first; Lua files and unknown kinds are not served */
	write_text(f->admin, "web/static/pbiport.css", "body { color: teal }\n");
	a = get(f, "/static/pbiport.css", NULL);
	assert_string_equal(a.body, "body { color: teal }\n");
	answer_free(&a);
	static const char *const missing[] = { "/static/layout.lua", "/static/..", "/static/.hidden.css",
					       "/static/nope.css", "/static/a..css", "/static/page" };
	for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
		a = get(f, missing[i], NULL);
		assert_true(a.status == 404 || a.status == 400);
		answer_free(&a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(html_escapes_text_and_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(html_escape_matches_gsub, setup, teardown),
		cmocka_unit_test_setup_teardown(html_keeps_only_safe_urls, setup, teardown),
		cmocka_unit_test_setup_teardown(html_element_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(html_refuses_inline_script_and_style, setup, teardown),
		cmocka_unit_test_setup_teardown(template_must_build_html, setup, teardown),
		cmocka_unit_test_setup_teardown(csrf_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(origin_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(own_origin, setup, teardown),
		cmocka_unit_test_setup_teardown(form_bodies, setup, teardown),
		cmocka_unit_test_setup_teardown(pages_in_process, setup, teardown),
		cmocka_unit_test_setup_teardown(product_page_is_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(forms_need_csrf, setup, teardown),
		cmocka_unit_test_setup_teardown(template_failure_is_a_500_page, setup, teardown),
		cmocka_unit_test_setup_teardown(static_files, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
