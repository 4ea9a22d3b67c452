/* Contract + options -> TMDL files through the Lua templates. See core/lang/render.h. */
#include "core/lang/render.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "core/lang/names.h"
#include "core/lang/sources.h"
#include "runtime/lua_sandbox.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

/* Longest part of an output path: NAME_MAX of ext4 and most file systems. */
#define PB_RENDER_MAX_NAME 255
/* Longest text a caller passes for a flag or query parameter name ("--http-path"). */
#define PASS_MAX (SOURCE_TEXT_MAX + 8)

/* The chosen server with every value its source's description (core/lang/sources.h) asks
 * for resolved: v[i] is the value of desc->fields[i], or NULL. */
typedef struct render_target {
	const pb_server *server;   /* NULL when made from the options (a contract without servers) */
	const char *name;
	char type[SOURCE_TYPE_MAX + 1];
	const source_desc *desc;
	const char *v[SOURCE_MAX_FIELDS];
	char *owned[SOURCE_MAX_FIELDS];   /* values built here (a suffix added) */
} render_target;

static void target_release(render_target *t)
{
	for (size_t i = 0; i < SOURCE_MAX_FIELDS; i++)
		free(t->owned[i]);
	memset(t->owned, 0, sizeof t->owned);
}

void pb_files_release(pb_files *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].path);
		free(f->v[i].content);
	}
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

/* A non-empty value, or NULL. */
static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

const char *render_value_of(const render_opts *o, const char *name)
{
	for (size_t i = 0; o && i < o->nvalues; i++)
		if (o->values[i].name && !strcmp(o->values[i].name, name))
			return nonempty(o->values[i].value);
	return NULL;
}

/* How a user passes field f in this caller (into buf), or NULL when they cannot. */
static const char *how_to_pass(render_params params, const source_field *f, char *buf, size_t size)
{
	switch (params) {
	case RENDER_PARAMS_CLI:
		if (!f->option || xsnprintf(buf, size, "--%s", f->name))
			return NULL;
		for (char *p = buf + 2; *p; p++)
			if (*p == '_')
				*p = '-';
		return buf;
	case RENDER_PARAMS_QUERY:
		return f->option && !xsnprintf(buf, size, "?%s=", f->name) ? buf : NULL;
	default:
		return f->request && !xsnprintf(buf, size, "\"%s\"", f->name) ? buf : NULL;
	}
}

/* Appends "a", "a and b" or "a, b and c" (conj: " and " or " or "). */
static void add_words(sbuf *b, const char *const *items, size_t n, const char *conj)
{
	for (size_t i = 0; i < n; i++)
		(void)sbuf_addf(b, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : conj, items[i]);
}

/* "HTTP path" for a field: its `what`, else its name with spaces for _ (into buf). */
static const char *field_what(const source_field *f, char *buf, size_t size)
{
	if (f->what)
		return f->what;
	(void)xsnprintf(buf, size, "%s", f->name);
	for (char *p = buf; *p; p++)
		if (*p == '_')
			*p = ' ';
	return buf;
}

/* How to add a field to the server: its `add`, else its first key in quotes (into buf). */
static const char *field_add(const source_field *f, char *buf, size_t size)
{
	if (f->add)
		return f->add;
	(void)xsnprintf(buf, size, "\"%s\"", f->keys[0].key);
	return buf;
}

/* One message for every value t lacks (miss[0..n)): what, where to add it, what to pass. */
static int missing_error(const render_target *t, const render_opts *o, const size_t *miss, size_t n, char *err)
{
	const char *what[SOURCE_MAX_FIELDS], *fields[SOURCE_MAX_FIELDS], *pass[SOURCE_MAX_FIELDS];
	char whatbuf[SOURCE_MAX_FIELDS][SOURCE_TEXT_MAX + 1], addbuf[SOURCE_MAX_FIELDS][SOURCE_TEXT_MAX + 3];
	char passbuf[SOURCE_MAX_FIELDS][PASS_MAX], shown[PB_PBI_NAME_SHOWN_BUF];
	size_t npass = 0;
	sbuf b;
	for (size_t i = 0; i < n; i++) {
		const source_field *f = &t->desc->fields[miss[i]];
		what[i] = field_what(f, whatbuf[i], sizeof whatbuf[i]);
		fields[i] = field_add(f, addbuf[i], sizeof addbuf[i]);
		const char *p = how_to_pass(o->params, f, passbuf[npass], sizeof passbuf[npass]);
		if (p)
			pass[npass++] = p;
	}
	sbuf_init(&b, PB_ERR_MAX);
	if (t->server)
		(void)sbuf_addf(&b, "server \"%s\" (%s): no ", pbname_shown(t->name, shown), t->type);
	else
		(void)sbuf_addf(&b, "%s%s without a %s server in the contract: no ",
				o->params == RENDER_PARAMS_QUERY ? "?type=" : "--type ", t->type, t->type);
	add_words(&b, what, n, " or ");
	if (t->server) {
		(void)sbuf_adds(&b, "; add ");
		add_words(&b, fields, n, " and ");
		(void)sbuf_adds(&b, " to the server");
		if (npass)
			(void)sbuf_adds(&b, o->params == RENDER_PARAMS_BODY ? " or send " : " or pass ");
	} else {
		(void)sbuf_adds(&b, "; pass ");
	}
	add_words(&b, pass, npass, " and ");
	int rc = pb_err(err, PB_EINVAL, "%s", sbuf_str(&b));
	sbuf_release(&b);
	return rc;
}

/* A contract without servers and no type given: the types there are and how to pick one. */
static int no_server_error(const render_opts *o, const template_dirs *td, char *err)
{
	sbuf b;
	sbuf_init(&b, PB_ERR_MAX);
	if (o->params == RENDER_PARAMS_BODY)
		(void)sbuf_adds(&b, "the contract has no servers; add a server of one of these types: ");
	else
		(void)sbuf_addf(&b, "the contract has no servers; pass %s with the values its source needs (types: ",
				o->params == RENDER_PARAMS_QUERY ? "?type=" : "--type");
	source_list(td->dirs, td->n, &b);
	if (o->params != RENDER_PARAMS_BODY)
		(void)sbuf_adds(&b, ")");
	int rc = pb_err(err, PB_EINVAL, "%s", sbuf_str(&b));
	sbuf_release(&b);
	return rc;
}

/* A server whose type is not given: how to give one. */
static int no_type_error(const pb_server *s, const render_opts *o, const template_dirs *td, char *err)
{
	char shown[PB_PBI_NAME_SHOWN_BUF];
	sbuf b;
	sbuf_init(&b, PB_ERR_MAX);
	(void)sbuf_addf(&b, "server \"%s\" does not say its type; ", pbname_shown(s->name, shown));
	if (o->params == RENDER_PARAMS_CLI)
		(void)sbuf_adds(&b, "pass --type (");
	else if (o->params == RENDER_PARAMS_QUERY)
		(void)sbuf_adds(&b, "pass ?type= (");
	else
		(void)sbuf_adds(&b, "add \"type\" to the server (");
	source_list(td->dirs, td->n, &b);
	(void)sbuf_adds(&b, ")");
	int rc = pb_err(err, PB_EINVAL, "%s", sbuf_str(&b));
	sbuf_release(&b);
	return rc;
}

/* The server the render reads (t->server, NULL for one made from the options) and its type
 * (t->type, lower case), which must have a description on the template path. */
static int pick_server(const pb_contract *c, const render_opts *o, const template_dirs *td, render_target *t,
		       char *err)
{
	const pb_server *s = NULL;
	int rc = 0;

	if (!o->server && nonempty(o->type)) {
		/* a type without a server name: the first server of that type, else the first that
		 * does not say its type (a v2 connection), else none: the options alone */
		for (size_t i = 0; !s && i < c->nservers; i++)
			if (str_ieq(c->servers[i].type, o->type))
				s = &c->servers[i];
		for (size_t i = 0; !s && i < c->nservers; i++)
			if (!strcmp(c->servers[i].type, "custom"))
				s = &c->servers[i];
	} else if (c->nservers || o->server) {
		s = contract_server(c, o->server);
		if (!s) {
			sbuf names;
			sbuf_init(&names, PB_ERR_MAX);
			for (size_t i = 0; i < c->nservers; i++)
				sbuf_addf(&names, "%s%s", i ? ", " : "", c->servers[i].name);
			char shown[PB_PBI_NAME_SHOWN_BUF];
			rc = pb_err(err, PB_EINVAL, "no server named \"%s\" in the contract (servers: %s)",
				    pbname_shown(o->server, shown), c->nservers ? sbuf_str(&names) : "none");
			sbuf_release(&names);
			return rc;
		}
	}
	/* the server's own type wins; options give it when there is none to go by */
	const char *type = s && s->type && strcmp(s->type, "custom") ? s->type : nonempty(o->type);
	if (!type && !s)
		return no_server_error(o, td, err);
	if (!type)
		return no_type_error(s, o, td, err);
	bool fits = !xsnprintf(t->type, sizeof t->type, "%s", type);
	for (char *p = t->type; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + ('a' - 'A'));
	if (!fits || !source_exists(td->dirs, td->n, t->type)) {
		sbuf b;
		sbuf_init(&b, PB_ERR_MAX);
		source_list(td->dirs, td->n, &b);
		char shown[PB_PBI_NAME_SHOWN_BUF];
		rc = pb_err(err, PB_EINVAL, "server type %s is not supported for Power BI (%s)", pbname_shown(type, shown),
			    sbuf_str(&b));
		sbuf_release(&b);
		return rc;
	}
	t->server = s;
	t->name = s ? s->name : t->type;
	return 0;
}

/* The value of f on server s: its first key that has one, with the key's suffix added unless
 * the value ends with it. *owned receives a value built here. */
static int server_value(const pb_server *s, const source_field *f, const char **out, char **owned, char *err)
{
	*out = NULL;
	for (size_t k = 0; s && k < f->nkeys && !*out; k++) {
		const char *v = nonempty(server_field(s, f->keys[k].key));
		const char *suffix = f->keys[k].suffix;
		if (!v)
			continue;
		size_t n = strlen(v), sn = suffix ? strlen(suffix) : 0;
		if (!suffix || (n > sn && str_ieq(v + n - sn, suffix))) {
			*out = v;
			break;
		}
		sbuf b;
		sbuf_init(&b, PB_NAME_MAX_BYTES + SOURCE_TEXT_MAX);
		if (sbuf_addf(&b, "%s%s", v, suffix)) {
			sbuf_release(&b);
			return pb_err(err, PB_EINVAL, "server \"%s\": %s too long", s->name, f->keys[k].key);
		}
		*out = *owned = sbuf_detach(&b, NULL);
		if (!*owned)
			return pb_err(err, PB_ENOMEM, "out of memory");
	}
	return 0;
}

/* Every value the description asks for: the server's, else the caller's, else the default;
 * what a required field still lacks is named in one message. */
static int resolve_fields(const render_opts *o, render_target *t, char *err)
{
	const source_desc *d = t->desc;
	size_t miss[SOURCE_MAX_FIELDS], nmiss = 0;
	int rc;
	for (size_t i = 0; i < d->nfields; i++) {
		const source_field *f = &d->fields[i];
		if ((rc = server_value(t->server, f, &t->v[i], &t->owned[i], err)))
			return rc;
		if (!t->v[i] && (f->option || f->request))
			t->v[i] = render_value_of(o, f->name);
		if (!t->v[i])
			t->v[i] = f->dflt;
	}
	for (size_t i = 0; i < d->nfields; i++) {
		const source_field *f = &d->fields[i];
		if (!t->v[i] && f->dflt_from)
			t->v[i] = t->v[source_field_named(d, f->dflt_from) - d->fields];
		if (!t->v[i] && f->required)
			miss[nmiss++] = i;
	}
	return nmiss ? missing_error(t, o, miss, nmiss, err) : 0;
}

/* A storage mode the source does not allow: what asked for it, and what Power BI allows. */
static int mode_refused(const char *what, const char *name, unsigned mode, const source_desc *d, char *err)
{
	char shown[PB_PBI_NAME_SHOWN_BUF];
	sbuf b;
	sbuf_init(&b, PB_ERR_MAX);
	source_modes_text(d->modes, &b);
	int rc = pb_err(err, PB_EINVAL, "%s%s%s%s: storage mode %s is not allowed for %s sources in Power BI (%s)", what,
			name ? " \"" : "", name ? pbname_shown(name, shown) : "", name ? "\"" : "", source_mode_name(mode),
			d->type, sbuf_str(&b));
	sbuf_release(&b);
	return rc;
}

static int mode_unknown(const char *what, const char *name, const char *value, char *err)
{
	char shown[PB_PBI_NAME_SHOWN_BUF], shown2[PB_PBI_NAME_SHOWN_BUF];
	return pb_err(err, PB_EINVAL, "%s \"%s\": powerbi.storageMode \"%s\": use import, directQuery or dual", what,
		      pbname_shown(name, shown), pbname_shown(value, shown2));
}

int render_storage_modes(const pb_contract *c, const pb_server *s, const source_desc *d, unsigned asked,
			 render_params params, unsigned *modes, char *err)
{
	const char *server_mode = s ? nonempty(server_field(s, "powerbi.storageMode")) : NULL;
	unsigned server = 0;
	if (server_mode && !(server = source_mode_of(server_mode)))
		return mode_unknown("server", s->name, server_mode, err);
	if (server && !(server & d->modes))
		return mode_refused("server", s->name, server, d, err);
	if (asked && !(asked & d->modes))
		return mode_refused(params == RENDER_PARAMS_QUERY ? "?mode=" : "--mode", NULL, asked, d, err);
	for (size_t i = 0; i < c->ntables; i++) {
		const pb_table *tb = &c->tables[i];
		unsigned m = 0;
		if (tb->storage_mode && !(m = source_mode_of(tb->storage_mode)))
			return mode_unknown("table", tb->name, tb->storage_mode, err);
		m = m ? m : server ? server : asked ? asked : d->default_mode;
		if (!(m & d->modes))
			return mode_refused("table", tb->name, m, d, err);
		if (modes)
			modes[i] = m;
	}
	return 0;
}

/* --- the context table handed to main.lua ---------------------------------------- */

/* --- the files main.lua returns ---------------------------------------------------- */

static int check_path(const char *p, size_t len, char *err)
{
	if (len == 0 || len > PB_RENDER_MAX_PATH || strlen(p) != len || !utf8_valid(p, len))
		return pb_err(err, PB_EINVAL, "template output: bad file path (empty, too long or not UTF-8)");
	if (strcmp(p, "definition.pbism") && strncmp(p, "definition/", 11))
		return pb_err(err, PB_EINVAL,
			      "template output: path \"%s\" is outside definition/ and definition.pbism", p);
	for (const char *s = p; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '\\')
			return pb_err(err, PB_EINVAL,
				      "template output: path \"%s\" has a backslash or control character", p);
	/* Every '/'-separated part must be a real name, and one that file systems take (255
	 * bytes on ext4 and most others): a file the CLI cannot write is refused here, before
	 * anything is written. */
	for (const char *part = p; part;) {
		const char *slash = strchr(part, '/');
		size_t n = slash ? (size_t)(slash - part) : strlen(part);
		if (n == 0 || (n == 1 && part[0] == '.') || (n == 2 && !strncmp(part, "..", 2)))
			return pb_err(err, PB_EINVAL,
				      "template output: path \"%s\" has an empty, '.' or '..' part", p);
		if (n > PB_RENDER_MAX_NAME) {
			char shown[PB_PBI_NAME_SHOWN_BUF];
			return pb_err(err, PB_EINVAL, "template output: a file or folder name of %zu bytes, longer "
				      "than %d (\"%s\")", n, PB_RENDER_MAX_NAME, pbname_shown_n(part, n, shown));
		}
		part = slash ? slash + 1 : NULL;
	}
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const pb_file *)a)->path, ((const pb_file *)b)->path);
}

/* The files of one render as they arrive: from ctx.emit(path, text) while the templates run
 * (a big model's table files then do not all live in Lua and again here at the end), and from
 * the table main.lua returns. The first refusal is kept (rc, err): ctx.emit raises a Lua error
 * to stop the templates, and the render answers with this one. */
typedef struct file_sink {
	pb_files *out;
	size_t cap, total;
	int rc;
	char err[PB_ERR_MAX];
} file_sink;

/* Adds a copy of path -> text (both Lua values at idx_path, idx_text) to the sink. */
static int sink_add(file_sink *s, lua_State *L, int idx_path, int idx_text)
{
	size_t plen, clen;
	pb_files *out = s->out;
	if (lua_type(L, idx_path) != LUA_TSTRING || lua_type(L, idx_text) != LUA_TSTRING)
		return s->rc = pb_err(s->err, PB_EINVAL, "template output: keys must be paths and values texts "
				      "(got a %s key and a %s value)", luaL_typename(L, idx_path),
				      luaL_typename(L, idx_text));
	const char *path = lua_tolstring(L, idx_path, &plen);
	const char *text = lua_tolstring(L, idx_text, &clen);
	if ((s->rc = check_path(path, plen, s->err)))
		return s->rc;
	if (!utf8_valid(text, clen))
		return s->rc = pb_err(s->err, PB_EINVAL, "template output: %s is not valid UTF-8", path);
	s->total += clen;
	if (s->total > PB_RENDER_MAX_BYTES || out->n >= PB_TMDL_MAX_FILES)
		return s->rc = pb_err(s->err, PB_ELIMIT, "template output: more than %u bytes or %d files",
				      PB_RENDER_MAX_BYTES, PB_TMDL_MAX_FILES);
	if (out->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		pb_file *v = realloc(out->v, ncap * sizeof *v);
		if (!v)
			return s->rc = pb_err(s->err, PB_ENOMEM, "out of memory collecting template output");
		out->v = v;
		s->cap = ncap;
	}
	pb_file *f = &out->v[out->n];
	f->path = xstrndup(path, plen);
	f->content = malloc(clen + 1);
	f->len = clen;
	out->n++;
	if (!f->path || !f->content)
		return s->rc = pb_err(s->err, PB_ENOMEM, "out of memory collecting template output");
	memcpy(f->content, text, clen);
	f->content[clen] = '\0';
	return 0;
}

/* What the C functions in ctx reach for one render (ctx.emit's sink, the contract behind
 * ctx.contract's lazy columns): a userdata kept in the registry during the render and cleared
 * when it ends (render_live_close), so a function or table a template kept past its render
 * (a kept sandbox renders again) answers an error instead of reaching freed memory. */
typedef struct render_live {
	file_sink *sink;
	const pb_contract *c;
} render_live;

#define RENDER_LIVE_KEY "pbiport.render.live"

/* ctx.emit(path, text): hands one file over now (same checks as the returned table). */
static int lua_emit(lua_State *L)
{
	render_live *live = lua_touserdata(L, lua_upvalueindex(1));
	if (!live->sink)
		return luaL_error(L, "ctx.emit: this render is over");
	if (sink_add(live->sink, L, 1, 2))
		return luaL_error(L, "%s", live->sink->err);
	return 0;
}

/* Ends what render_live gave the templates: called once they are done (or failed). */
static void render_live_close(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, RENDER_LIVE_KEY);
	render_live *live = lua_touserdata(L, -1);
	if (live)
		memset(live, 0, sizeof *live);
	lua_pop(L, 1);
	lua_pushnil(L);
	lua_setfield(L, LUA_REGISTRYINDEX, RENDER_LIVE_KEY);
}

/* Adds the { [path] = text } table on top of the stack to the sink; then every file, in path
 * order, once. */
static int collect_files(lua_State *L, file_sink *s, char *err)
{
	int rc = 0;
	pb_files *out = s->out;

	if (!lua_istable(L, -1))
		return pb_err(err, PB_EINVAL, "template main.lua: the render function returned a %s, "
			      "expected a table { [path] = text }", luaL_typename(L, -1));
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if ((rc = sink_add(s, L, -2, -1))) {
			pb_err(err, rc, "%s", s->err);
			lua_pop(L, 2);
			return rc;
		}
		lua_pop(L, 1);
	}
	if (out->n)     /* an empty result has no array to sort */
		qsort(out->v, out->n, sizeof *out->v, cmp_file);
	for (size_t i = 1; i < out->n; i++)
		if (!strcmp(out->v[i - 1].path, out->v[i].path))
			return pb_err(err, PB_EINVAL, "template output: %s given twice (ctx.emit and the "
				      "returned table, or ctx.emit twice)", out->v[i].path);
	return 0;
}


struct ctx_args {
	file_sink *sink;  /* where ctx.emit adds files */
	const pb_contract *c;
	const render_target *t;
	const char *mode;        /* the caller's --mode / ?mode= as given to templates: import, directquery */
	unsigned default_mode;   /* the mode of a table nothing else decides */
	const unsigned *modes;   /* each table's storage mode (SOURCE_MODE_*) */
};

static void set_str(lua_State *L, const char *key, const char *value)
{
	if (!value)
		return;
	/* with its length: lua_pushstring first looks the pointer up in Lua's cache of C
	 * strings, which a column's values (each its own copy) never hit */
	lua_pushlstring(L, value, strlen(value));
	lua_setfield(L, -2, key);
}

static void set_bool(lua_State *L, const char *key, bool value)
{
	lua_pushboolean(L, value);
	lua_setfield(L, -2, key);
}

static void set_int(lua_State *L, const char *key, int value)
{
	lua_pushinteger(L, value);
	lua_setfield(L, -2, key);
}

static void push_kv(lua_State *L, const char *key, const pb_kv *kv, size_t n)
{
	lua_createtable(L, 0, (int)n);
	for (size_t i = 0; i < n; i++)
		set_str(L, kv[i].key, kv[i].value);
	lua_setfield(L, -2, key);
}

static void push_column(lua_State *L, const pb_column *col)
{
	/* sized for the fields it gets (six always there): an empty slot costs about as much to
	 * make as a filled one */
	int n = 6 + !!col->physical_type + !!col->description + !!col->business_name + !!col->classification +
		(col->primary_key_position > 0) + (col->precision >= 0) + (col->scale >= 0);
	lua_createtable(L, 0, n);
	set_str(L, "name", col->name);
	set_str(L, "physical_name", col->physical_name);
	set_str(L, "logical_type", col->logical_type);
	set_str(L, "physical_type", col->physical_type);
	set_str(L, "description", col->description);
	set_str(L, "business_name", col->business_name);
	set_str(L, "classification", col->classification);
	set_bool(L, "required", col->required);
	set_bool(L, "unique", col->unique);
	set_bool(L, "primary_key", col->primary_key);
	if (col->primary_key_position > 0)
		set_int(L, "primary_key_position", col->primary_key_position);
	if (col->precision >= 0)
		set_int(L, "precision", col->precision);
	if (col->scale >= 0)
		set_int(L, "scale", col->scale);
}

/* __index of a ctx.contract table: its columns, made from the contract on first use and kept
 * in the table (rawset) until a template drops them (main.lua does once the table is written):
 * a big contract's columns then live in Lua only while a template works on their table.
 * Upvalues: the render_live userdata, the table's index. */
static int lua_table_columns(lua_State *L)
{
	const render_live *live = lua_touserdata(L, lua_upvalueindex(1));
	lua_Integer i = lua_tointeger(L, lua_upvalueindex(2));
	if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "columns"))
		return 0;
	if (!live->c || i < 0 || (size_t)i >= live->c->ntables)
		return luaL_error(L, "ctx.contract: this render is over");
	const pb_table *t = &live->c->tables[i];
	lua_createtable(L, (int)t->ncolumns, 0);
	for (size_t j = 0; j < t->ncolumns; j++) {
		push_column(L, &t->columns[j]);
		lua_rawseti(L, -2, (lua_Integer)j + 1);
	}
	lua_pushliteral(L, "columns");
	lua_pushvalue(L, -2);
	lua_rawset(L, 1);
	return 1;
}

/* ctx.contract; live: the stack index of the render's render_live userdata. */
static void push_contract(lua_State *L, const pb_contract *c, const unsigned *modes, int live)
{
	lua_createtable(L, 0, 14);
	set_str(L, "id", c->id);
	set_str(L, "name", c->name);
	set_str(L, "version", c->version);
	set_str(L, "api_version", c->api_version);
	set_int(L, "odcs_major", c->odcs_major);
	set_str(L, "status", c->status);
	set_str(L, "domain", c->domain);
	set_str(L, "description", c->description);

	lua_createtable(L, (int)c->ntables, 0);
	for (size_t i = 0; i < c->ntables; i++) {
		const pb_table *t = &c->tables[i];
		lua_createtable(L, 0, 6);
		set_str(L, "name", t->name);
		set_str(L, "physical_name", t->physical_name);
		set_str(L, "physical_type", t->physical_type);
		set_str(L, "description", t->description);
		set_str(L, "business_name", t->business_name);
		if (modes)
			set_str(L, "storage_mode", source_mode_name(modes[i]));
		lua_createtable(L, 0, 1);
		lua_pushvalue(L, live);
		lua_pushinteger(L, (lua_Integer)i);
		lua_pushcclosure(L, lua_table_columns, 2);
		lua_setfield(L, -2, "__index");
		lua_setmetatable(L, -2);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "tables");

	lua_createtable(L, (int)c->nservers, 0);
	for (size_t i = 0; i < c->nservers; i++) {
		const pb_server *s = &c->servers[i];
		lua_createtable(L, 0, 4);
		set_str(L, "name", s->name);
		set_str(L, "type", s->type);
		push_kv(L, "fields", s->fields, s->nfields);
		push_kv(L, "custom", s->custom, s->ncustom);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "servers");

	lua_createtable(L, (int)c->nrelationships, 0);
	for (size_t i = 0; i < c->nrelationships; i++) {
		const pb_relationship *r = &c->relationships[i];
		lua_createtable(L, 0, 5);
		set_str(L, "from_table", r->from_table);
		set_str(L, "from_column", r->from_column);
		set_str(L, "to_table", r->to_table);
		set_str(L, "to_column", r->to_column);
		set_str(L, "cardinality", r->cardinality);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "relationships");

	lua_createtable(L, (int)c->nwarnings, 0);
	for (size_t i = 0; i < c->nwarnings; i++) {
		lua_pushstring(L, c->warnings[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "warnings");
}

/* Longest text ctx.names.key/length take: C work that the instruction hook cannot interrupt
 * stays bounded (a name within Power BI's limit is at most PB_PBI_NAME_MAX_BYTES). */
#define NAMES_ARG_MAX (1024 * 1024)

static const char *name_arg(lua_State *L, const char *fn, size_t *len)
{
	const char *s = luaL_checklstring(L, 1, len);
	if (*len > NAMES_ARG_MAX)
		luaL_error(L, "names.%s: text longer than %d bytes", fn, NAMES_ARG_MAX);
	if (!utf8_valid(s, *len))
		luaL_error(L, "names.%s: text is not valid UTF-8", fn);
	return s;
}

/* ctx.names.key(s): the key Power BI compares object names by (core/lang/names.h). The key is
 * built in Lua-owned memory, so an error (out of memory) leaks nothing. */
static int lua_name_key(lua_State *L)
{
	size_t len;
	const char *s = name_arg(L, "key", &len);
	if (pbname_is_ascii(s, len)) {
		size_t i = 0;
		while (i < len && !(s[i] >= 'A' && s[i] <= 'Z'))
			i++;
		if (i == len) {
			lua_settop(L, 1);       /* already its own key: no new string */
			return 1;
		}
		luaL_Buffer b;
		char *k = luaL_buffinitsize(L, &b, len);
		for (i = 0; i < len; i++)
			k[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 0x20) : s[i];
		luaL_pushresultsize(&b, len);
		return 1;
	}
	long room = pbname_key_room(s, len);
	void *buf = room > 0 ? lua_newuserdatauv(L, (size_t)room * 4, 0) : NULL;
	long n = buf ? pbname_key_fill(s, len, buf, room) : -1;
	if (n < 0)
		return luaL_error(L, "names.key: Unicode normalization failed");
	lua_pushlstring(L, buf, (size_t)n);
	return 1;
}

/* ctx.names.length(s): the length Power BI counts (UTF-16 units). */
static int lua_name_length(lua_State *L)
{
	size_t len;
	const char *s = name_arg(L, "length", &len);
	lua_pushinteger(L, (lua_Integer)pbname_length(s, len));
	return 1;
}

/* Runs protected (allocation failures raise): pushes the ctx table. */
static int push_ctx(lua_State *L)
{
	const struct ctx_args *a = lua_touserdata(L, 1);
	const render_target *t = a->t;
	lua_settop(L, 0);
	render_live *live = lua_newuserdatauv(L, sizeof *live, 0);   /* 1 */
	live->sink = a->sink;
	live->c = a->c;
	lua_pushvalue(L, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, RENDER_LIVE_KEY);
	lua_createtable(L, 0, 5);
	push_contract(L, a->c, a->modes, 1);
	lua_setfield(L, -2, "contract");

	lua_createtable(L, 0, (int)t->desc->nfields + 2);
	set_str(L, "name", t->name);
	set_str(L, "type", t->type);
	for (size_t i = 0; i < t->desc->nfields; i++)
		set_str(L, t->desc->fields[i].name, t->v[i]);
	lua_setfield(L, -2, "target");

	lua_createtable(L, 0, 2);
	set_str(L, "mode", a->mode);
	set_str(L, "storage_mode", source_mode_name(a->default_mode));
	lua_setfield(L, -2, "options");

	lua_pushvalue(L, 1);
	lua_pushcclosure(L, lua_emit, 1);
	lua_setfield(L, -2, "emit");

	lua_createtable(L, 0, 3);
	lua_pushcfunction(L, lua_name_key);
	lua_setfield(L, -2, "key");
	lua_pushcfunction(L, lua_name_length);
	lua_setfield(L, -2, "length");
	set_int(L, "max_length", PB_PBI_NAME_MAX_CHARS);
	lua_setfield(L, -2, "names");
	return 1;
}

/* True when every folder searched is a built-in one (pbiport's own templates, installed with
 * the binary): template_dirs labels those and leaves the admin folders unlabelled. */
static bool builtin_only(const template_dirs *td)
{
	for (size_t i = 0; i < td->n; i++)
		if (!td->dirs[i].label)
			return false;
	return true;
}

/* Default limits grow with the contract, so a runaway template on a small contract stops
 * within a few hundred ms while a big honest render still has ~3x what it needs
 * (bench/tmdl: ~350 instructions per column). The per-column part of the deadline also grows
 * with how slowly this process runs Lua (sandbox_time_scale_pct: a loaded host, a sanitizer
 * build), never past PB_LUA_TIME_MAX_MS; the fixed part, which is what bounds a hostile
 * template on a small contract, and the instruction budget (deterministic) do not. The
 * configured PBIPORT_RENDER_TIME_LIMIT_MS replaces the deadline only (profiling under
 * valgrind); an explicit opts time_limit_ms replaces both. The instruction budget bounds
 * templates an admin put on the search path; pbiport's own templates alone run without one
 * (their work is linear in the contract, and the deadline, the memory cap and the guarded
 * library calls still hold): a budget needs Lua's count hook, which makes every VM
 * instruction of the render pay a hook check (~13% of its instructions). */
static void set_limits(const pb_contract *c, const render_opts *o, const template_dirs *td, sandbox_opts *so)
{
	if (o->time_limit_ms > 0) {
		so->time_limit_ms = o->time_limit_ms;
		return;
	}
	long long ncols = 0;
	for (size_t i = 0; i < c->ntables; i++)
		ncols += (long long)c->tables[i].ncolumns;
	long long ntables = (long long)c->ntables;
	if (!builtin_only(td))
		so->instr_max = PB_LUA_INSTR_BASE + PB_LUA_INSTR_PER_TABLE * ntables +
				PB_LUA_INSTR_PER_COLUMN * ncols;
	if (o->cfg && o->cfg->render_time_limit_ms > 0) {
		so->time_limit_ms = (int)o->cfg->render_time_limit_ms;
		return;
	}
	long long cols_ms = PB_LUA_TIME_PER_COLUMN_US * ncols / 1000;
	cols_ms = cols_ms < PB_LUA_TIME_MAX_MS ? cols_ms : PB_LUA_TIME_MAX_MS;
	so->time_limit_ms = (int)PB_LUA_TIME_BASE_MS +
			    sandbox_scaled_ms((int)cols_ms, sandbox_time_scale_pct(),
					      PB_LUA_TIME_MAX_MS - (int)PB_LUA_TIME_BASE_MS);
}

/* The caller's storage mode (any case): *bit its SOURCE_MODE_*, 0 when none was asked for;
 * *norm the spelling templates get in ctx.options.mode (import, directquery, dual). */
static int check_mode(const char *mode, unsigned *bit, const char **norm, char *err)
{
	*bit = mode ? source_mode_of(mode) : 0;
	*norm = !*bit ? "import" : *bit == SOURCE_MODE_DIRECTQUERY ? "directquery" : source_mode_name(*bit);
	if (mode && !*bit)
		return pb_err(err, PB_EINVAL, "mode \"%s\": use import, directquery or dual", mode);
	return 0;
}

static bool has_file(const pb_files *f, const char *path)
{
	pb_file key = { .path = (char *)path };
	return f->n && bsearch(&key, f->v, f->n, sizeof *f->v, cmp_file) != NULL;
}

/* What every semantic model definition holds: a template that returns less fails here,
 * naming all that is missing, instead of answering an empty or partial model. */
static int check_complete(const pb_contract *c, const pb_files *f, char *err)
{
	static const char *const required[] = { "definition.pbism", "definition/database.tmdl",
						 "definition/model.tmdl" };
	static const char prefix[] = "definition/tables/";
	const char *missing[3];
	size_t nmissing = 0, ntables = 0;
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
		if (!has_file(f, required[i]))
			missing[nmissing++] = required[i];
	for (size_t i = 0; i < f->n; i++) {
		size_t n = strlen(f->v[i].path);
		if (!strncmp(f->v[i].path, prefix, sizeof prefix - 1) && n > 5 && !strcmp(f->v[i].path + n - 5, ".tmdl"))
			ntables++;
	}
	if (!nmissing && ntables >= c->ntables)
		return 0;
	sbuf b;
	sbuf_init(&b, PB_ERR_MAX);
	(void)sbuf_adds(&b, "template output: ");
	if (nmissing) {
		(void)sbuf_adds(&b, "no ");
		add_words(&b, missing, nmissing, " or ");
	}
	if (ntables < c->ntables)
		(void)sbuf_addf(&b, "%s%zu table file%s under %s for %zu contract table%s", nmissing ? "; " : "",
				ntables, ntables == 1 ? "" : "s", prefix, c->ntables, c->ntables == 1 ? "" : "s");
	(void)sbuf_adds(&b, " (a model needs definition.pbism, definition/database.tmdl, definition/model.tmdl "
			    "and a definition/tables/ file per contract table)");
	int rc = pb_err(err, PB_EINVAL, "%s", sbuf_str(&b));
	sbuf_release(&b);
	return rc;
}

/* The order: the template path, the caller's mode and server (input), the source's
 * description (the server's templates), the values and storage modes (input again: what the
 * caller gave must fit the description), then the templates themselves. */
int tmdl_render(const pb_contract *c, const render_opts *opts, pb_files *out, char *err)
{
	static const render_opts defaults;
	const render_opts *o = opts ? opts : &defaults;
	template_dirs td = { .n = 0 };
	lua_sandbox *sb = NULL;
	source_desc *desc = NULL;
	render_target target = { 0 };
	unsigned asked = 0, *modes = NULL;
	file_sink sink = { .out = out };
	struct ctx_args args = { &sink, c, &target, NULL, 0, NULL };
	int rc;

	out->v = NULL;
	out->n = 0;
	if (o->source)
		*o->source = NULL;
	render_fault at = RENDER_FAULT_TEMPLATE;   /* the template path is the server's */
	if ((rc = template_dirs_build(o->cfg, o->template_path, "templates/tmdl", &td, err)))
		goto out;
	at = RENDER_FAULT_INPUT;
	if ((rc = check_mode(o->mode, &asked, &args.mode, err)) || (rc = pick_server(c, o, &td, &target, err)))
		goto out;
	at = RENDER_FAULT_TEMPLATE;   /* the description and the templates are the server's */
	sandbox_opts so = { .dirs = td.dirs, .ndirs = td.n };
	set_limits(c, o, &td, &so);
	if ((rc = sandbox_new(&so, &sb, err)) || (rc = source_load(sb, target.type, &desc, err)))
		goto out;
	/* pbiport's own templates make short-lived values per column (the column's view, its
	 * text) and hand each table's file over as it is written: Lua's generational collector
	 * takes those young, where the incremental one traces the whole heap each cycle (bench/tmdl
	 * 2000 x 40: -10% user CPU, same peak). Templates an admin added keep the sandbox's default. */
	if (builtin_only(&td))
		lua_gc(sandbox_lua(sb), LUA_GCGEN, 0, 0);
	at = RENDER_FAULT_INPUT;    /* what the caller gave must fit the description */
	target.desc = desc;
	if (!(modes = calloc(c->ntables + 1, sizeof *modes))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = resolve_fields(o, &target, err)) ||
	    (rc = render_storage_modes(c, target.server, desc, asked, o->params, modes, err)))
		goto out;
	args.modes = modes;
	args.default_mode = asked ? asked : desc->default_mode;
	at = RENDER_FAULT_TEMPLATE;   /* from here on, what fails is the templates */
	rc = sandbox_cpcall(sb, push_ctx, &args, 1, err);
	if (!rc)
		rc = sandbox_call(sb, "main", 1, err);
	/* ctx.emit refused a file: that is the failure, in its words, even if a template caught
	 * the error it raised */
	if (sink.rc)
		rc = pb_err(err, sink.rc, "%s", sink.err);
	if (!rc) {
		rc = collect_files(sandbox_lua(sb), &sink, err);
		lua_pop(sandbox_lua(sb), 1);
	}
	if (sb)
		render_live_close(sandbox_lua(sb));
	if (!rc)
		rc = check_complete(c, out, err);
	if (rc)
		pb_files_release(out);
	if (!rc && o->source) {
		*o->source = desc;
		desc = NULL;
	}
	if (!rc && o->keep_sandbox) {
		*o->keep_sandbox = sb;
		sb = NULL;
	}
out:
	if (o->fault)
		*o->fault = rc ? at : RENDER_FAULT_NONE;
	free(modes);
	source_desc_free(desc);
	target_release(&target);
	sandbox_free(sb);
	template_dirs_release(&td);
	return rc;
}
