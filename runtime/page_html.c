/* The C half of lua/html.lua: see page_html.h. The rules are html.lua's, which did this in Lua
 * before (the same markup, byte for byte; tests/unit/test_pages.c). */
#include "runtime/page_html.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "runtime/util.h"

#define UNSAFE_URL "about:invalid#unsafe-url"
#define ATTRS_ON_STACK 16

/* What & < > " ' become; every other byte stays. */
static const char *const ENTITY[256] = {
	['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&#39;",
};
static const unsigned char ENTITY_LEN[256] = { ['&'] = 5, ['<'] = 4, ['>'] = 4, ['"'] = 6, ['\''] = 5 };

/* --- a growing buffer in Lua's memory ------------------------------------------------
 *
 * Starts in C's stack; past that, a userdata in a stack slot kept for it from the start, so an
 * error (a longjmp) leaves nothing to free, memory counts against the sandbox's cap, and the
 * stack above the slot stays the caller's to use (luaL_Buffer needs its box on top). */
typedef struct mbuf {
	lua_State *L;
	char *p;
	size_t n, cap;
	int slot;
	char first[1024];
} mbuf;

static void mb_init(lua_State *L, mbuf *b)
{
	b->L = L;
	b->p = b->first;
	b->n = 0;
	b->cap = sizeof b->first;
	lua_pushnil(L);
	b->slot = lua_gettop(L);
}

static void mb_grow(mbuf *b, size_t more)
{
	size_t cap = b->cap;
	if (more > SIZE_MAX / 4 - b->n)
		luaL_error(b->L, "html: markup too large");
	while (cap - b->n < more)
		cap *= 2;
	char *q = lua_newuserdatauv(b->L, cap, 0);
	memcpy(q, b->p, b->n);
	lua_replace(b->L, b->slot);
	b->p = q;
	b->cap = cap;
}

static void mb_add(mbuf *b, const char *s, size_t n)
{
	if (b->cap - b->n < n)
		mb_grow(b, n);
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void mb_add_escaped(mbuf *b, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!ENTITY[c])
			continue;
		mb_add(b, s + run, i - run);
		mb_add(b, ENTITY[c], ENTITY_LEN[c]);
		run = i + 1;
	}
	mb_add(b, s + run, n - run);
}

/* --- errors --------------------------------------------------------------------------- */

/* Raises "<template>:<line>: message" for the template's line: level 2 from here is the caller
 * of the html.lua function that called this C function (as html.lua's error(msg, 3) did from
 * its element function, one Lua frame deeper). */
static int html_error(lua_State *L, const char *fmt, ...)
{
	va_list ap;
	luaL_where(L, 2);
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	lua_concat(L, 2);
	return lua_error(L);
}

/* Pushes s as string.format's %q writes it. */
static const char *push_quoted(lua_State *L, const char *s, size_t len)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addchar(&b, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\' || c == '\n') {
			luaL_addchar(&b, '\\');
			luaL_addchar(&b, (char)c);
		} else if (c < 0x20 || c == 0x7f) {
			char num[8];
			bool digit_next = i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9';
			xsnprintf(num, sizeof num, digit_next ? "\\%03d" : "\\%d", c);
			luaL_addstring(&b, num);
		} else {
			luaL_addchar(&b, (char)c);
		}
	}
	luaL_addchar(&b, '"');
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

/* --- URLs ----------------------------------------------------------------------------- */

static bool url_safe(const char *u, size_t n)
{
	if ((n >= 7 && !strncasecmp(u, "http://", 7)) || (n >= 8 && !strncasecmp(u, "https://", 8))) {
		/* no tabs, line breaks or spaces: browsers drop or mend them, and no valid URL has them */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f)
				return false;
		return true;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f || u[i] == '\\')
			return false;
	if (n >= 2 && u[0] == '/' && u[1] == '/')
		return false;
	/* a ':' before any '/', '?' or '#' names a scheme */
	for (size_t i = 0; i < n; i++) {
		if (u[i] == ':')
			return false;
		if (u[i] == '/' || u[i] == '?' || u[i] == '#')
			break;
	}
	return true;
}

static int html_url(lua_State *L)
{
	size_t n;
	const char *u = luaL_tolstring(L, 1, &n);
	if (!url_safe(u, n))
		lua_pushliteral(L, UNSAFE_URL);
	return 1;
}

static int html_escape(lua_State *L)
{
	size_t n, i = 0;
	const char *s = luaL_checklstring(L, 1, &n);
	while (i < n && !ENTITY[(unsigned char)s[i]])
		i++;
	lua_settop(L, 1);
	if (i == n)
		return 1;   /* nothing to replace: the same string, no copy */
	mbuf b;
	mb_init(L, &b);
	mb_add_escaped(&b, s, n);
	lua_pushlstring(L, b.p, b.n);
	return 1;
}

/* --- content -------------------------------------------------------------------------- */

/* Pushes t[mark] (raw) and returns its type. */
static int raw_mark(lua_State *L, int t, int mark)
{
	lua_pushvalue(L, mark);
	return lua_rawget(L, t < 0 ? t - 1 : t);
}

/* The highest positive integer key of the table at t (0: none); string keys are left alone. */
static lua_Integer list_length(lua_State *L, int t)
{
	lua_Integer n = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_isinteger(L, -1)) {
			lua_Integer k = lua_tointeger(L, -1);
			if (k > n)
				n = k;
		}
	}
	return n;
}

/* Raises "html: cannot put a ... into <tag>" (tag) or "... into where". */
static void content_error(lua_State *L, const char *what, const char *tag, const char *where)
{
	if (tag)
		html_error(L, "html: %s into <%s>", what, tag);
	html_error(L, "html: %s into %s", what, where);
}

/* The markup of the value at idx (absolute) into b; tag or where name the place in messages. */
static void add_content(lua_State *L, mbuf *b, int idx, int mark, const char *tag, const char *where, int depth)
{
	size_t n;
	const char *s;
	switch (lua_type(L, idx)) {
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &n);
		mb_add_escaped(b, s, n);
		return;
	case LUA_TNUMBER:
		s = luaL_tolstring(L, idx, &n);
		mb_add(b, s, n);
		lua_pop(L, 1);
		return;
	case LUA_TNIL:
		return;
	case LUA_TBOOLEAN:
		if (!lua_toboolean(L, idx))
			return;
		break;
	case LUA_TTABLE:
		if (raw_mark(L, idx, mark) != LUA_TNIL) {
			s = luaL_tolstring(L, -1, &n);
			mb_add(b, s, n);
			lua_pop(L, 2);
			return;
		}
		lua_pop(L, 1);
		if (depth >= PB_HTML_LIST_DEPTH)
			content_error(L, "lists nested more than " PB_HTML_LIST_DEPTH_TEXT " deep", tag, where);
		luaL_checkstack(L, 4, "html: lists nested too deep");
		for (lua_Integer i = 1, len = list_length(L, idx); i <= len; i++) {
			lua_rawgeti(L, idx, i);
			add_content(L, b, lua_gettop(L), mark, tag, where, depth + 1);
			lua_pop(L, 1);
		}
		return;
	default:
		break;
	}
	lua_pushfstring(L, "cannot put a %s", luaL_typename(L, idx));
	content_error(L, lua_tostring(L, -1), tag, where);
}

static int html_content(lua_State *L)
{
	luaL_checktype(L, 2, LUA_TTABLE);
	const char *where = luaL_checkstring(L, 3);
	lua_settop(L, 3);
	mbuf b;
	mb_init(L, &b);
	add_content(L, &b, 1, 2, NULL, where, 0);
	lua_pushlstring(L, b.p, b.n);
	return 1;
}

/* --- elements ------------------------------------------------------------------------- */

typedef struct attr_name {
	const char *s;   /* a key of spec: the table keeps it alive */
	size_t len;
} attr_name;

static int name_cmp(const attr_name *a, const attr_name *b)
{
	int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

static bool name_char(unsigned char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && ((c >= '0' && c <= '9') || c == '.' || c == '-'));
}

/* Whether lowercase(name) is one of the attributes that hold a URL. */
static bool url_attr(const char *s, size_t n)
{
	static const char *const URL_ATTRS[] = { "href", "src", "action", "formaction", "poster", "cite", "xlink:href" };
	for (size_t i = 0; i < sizeof URL_ATTRS / sizeof URL_ATTRS[0]; i++)
		if (strlen(URL_ATTRS[i]) == n && !strncasecmp(s, URL_ATTRS[i], n))
			return true;
	return false;
}

static void check_attr_name(lua_State *L, const char *tag, const attr_name *a)
{
	bool ok = a->len > 0;
	for (size_t i = 0; ok && i < a->len; i++)
		ok = name_char((unsigned char)a->s[i], i == 0);
	if (!ok)
		html_error(L, "html: <%s>: invalid attribute name %s", tag, push_quoted(L, a->s, a->len));
	if ((a->len >= 2 && !strncasecmp(a->s, "on", 2)) || (a->len == 5 && !strncasecmp(a->s, "style", 5)))
		html_error(L, "html: <%s>: attribute %s is not allowed (no inline script or style: use /static files)",
			   tag, a->s);
}

/* The value at the top of the stack as the attribute's text (replaced in place): a list's
 * items joined with spaces, an html value's markup, anything else as tostring writes it. */
static void attr_text(lua_State *L, int mark)
{
	int v = lua_gettop(L);
	if (lua_type(L, v) == LUA_TSTRING)
		return;
	if (lua_type(L, v) == LUA_TTABLE && raw_mark(L, v, mark) == LUA_TNIL) {
		lua_pop(L, 1);
		int k = 0;   /* pieces on the stack above v, joined every 32 */
		luaL_checkstack(L, 40, "html: attribute list");
		for (lua_Integer i = 1; lua_geti(L, v, i) != LUA_TNIL; i++) {   /* as ipairs */
			if (!lua_toboolean(L, -1)) {
				lua_pop(L, 1);
				continue;
			}
			luaL_tolstring(L, -1, NULL);
			lua_remove(L, -2);
			if (k > 0) {
				lua_pushliteral(L, " ");
				lua_insert(L, -2);
				k++;
			}
			if (++k >= 32) {
				lua_concat(L, k);
				k = 1;
			}
		}
		lua_pop(L, 1);
		lua_concat(L, k);   /* k == 0 pushes "" */
		lua_replace(L, v);
		return;
	}
	if (lua_type(L, v) == LUA_TTABLE)
		lua_replace(L, v);   /* its markup (raw_mark pushed it) */
	luaL_tolstring(L, v, NULL);
	lua_replace(L, v);
}

static int html_element(lua_State *L)
{
	const char *tag = luaL_checkstring(L, 2);
	size_t open_len, close_len = 0;
	const char *open = luaL_checklstring(L, 3, &open_len);
	const char *close = lua_isnil(L, 4) ? NULL : luaL_checklstring(L, 4, &close_len);
	luaL_checktype(L, 5, LUA_TTABLE);
	lua_settop(L, 5);
	if (lua_type(L, 1) != LUA_TTABLE || raw_mark(L, 1, 5) != LUA_TNIL)
		return html_error(L, "html: <%s> takes one table: h.%s{ attr = value, content... }", tag, tag);
	lua_pop(L, 1);

	/* one pass over the table: attribute names (sorted below, so the output does not depend
	 * on hash order) and the highest content index (content may have nil holes) */
	attr_name on_stack[ATTRS_ON_STACK], *names = on_stack;
	size_t nn = 0, cap = ATTRS_ON_STACK;
	lua_Integer n = 0;
	lua_pushnil(L);   /* 6: the names' userdata when there are more than ATTRS_ON_STACK */
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		lua_pop(L, 1);
		int kt = lua_type(L, -1);
		if (kt == LUA_TSTRING) {
			if (nn == cap) {
				attr_name *more = lua_newuserdatauv(L, 2 * cap * sizeof *more, 0);
				memcpy(more, names, nn * sizeof *names);
				lua_replace(L, 6);
				names = more;
				cap *= 2;
			}
			names[nn].s = lua_tolstring(L, -1, &names[nn].len);
			nn++;
		} else if (kt == LUA_TNUMBER && lua_isinteger(L, -1)) {
			lua_Integer k = lua_tointeger(L, -1);
			if (k > n)
				n = k;
		} else {
			return html_error(L, "html: <%s>: attribute names are strings", tag);
		}
	}
	for (size_t i = 1; i < nn; i++)   /* insertion sort: a few names */
		for (size_t j = i; j > 0 && name_cmp(&names[j - 1], &names[j]) > 0; j--) {
			attr_name t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}

	mbuf b;
	mb_init(L, &b);
	mb_add(&b, open, open_len);
	for (size_t i = 0; i < nn; i++) {
		check_attr_name(L, tag, &names[i]);
		lua_pushlstring(L, names[i].s, names[i].len);
		lua_rawget(L, 1);
		if (lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
			mb_add(&b, " ", 1);
			mb_add(&b, names[i].s, names[i].len);
		} else if (lua_toboolean(L, -1)) {
			size_t vn;
			attr_text(L, 5);
			const char *v = lua_tolstring(L, -1, &vn);
			if (url_attr(names[i].s, names[i].len) && !url_safe(v, vn)) {
				v = UNSAFE_URL;
				vn = strlen(UNSAFE_URL);
			}
			mb_add(&b, " ", 1);
			mb_add(&b, names[i].s, names[i].len);
			mb_add(&b, "=\"", 2);
			mb_add_escaped(&b, v, vn);
			mb_add(&b, "\"", 1);
		}
		lua_pop(L, 1);
	}
	mb_add(&b, ">", 1);
	if (!close) {
		if (n > 0)
			return html_error(L, "html: <%s> has no content", tag);
	} else {
		if (n > 0 && !strcmp(tag, "script"))
			return html_error(L, "html: <script> takes no inline code (the Content-Security-Policy blocks "
					     "it): use src");
		for (lua_Integer i = 1; i <= n; i++) {
			int t = lua_rawgeti(L, 1, i);
			if (t == LUA_TSTRING) {   /* the common case first */
				size_t sn;
				const char *s = lua_tolstring(L, -1, &sn);
				mb_add_escaped(&b, s, sn);
			} else if (t != LUA_TNIL) {
				add_content(L, &b, lua_gettop(L), 5, tag, NULL, 0);
			}
			lua_pop(L, 1);
		}
		mb_add(&b, close, close_len);
	}
	lua_pushlstring(L, b.p, b.n);
	lua_createtable(L, 0, 1);
	lua_pushvalue(L, 5);
	lua_pushvalue(L, -3);
	lua_rawset(L, -3);
	return 1;
}

const luaL_Reg page_html_api[] = {
	{ "html_escape", html_escape },
	{ "html_url", html_url },
	{ "html_element", html_element },
	{ "html_content", html_content },
	{ NULL, NULL },
};
