/* Contract + options -> TMDL files through the Lua templates. See core/render.h. */
#include "core/render.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "runtime/lua_sandbox.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

#define SNOWFLAKE_HOST_SUFFIX ".snowflakecomputing.com"

/* The chosen server with every connection value the templates need resolved. */
typedef struct render_target {
	const pb_server *server;
	const char *host, *warehouse, *http_path, *database, *catalog, *schema, *role;
	char host_buf[PB_NAME_MAX_BYTES + sizeof SNOWFLAKE_HOST_SUFFIX];
} render_target;

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

static int need(const render_target *t, const char *value, const char *what, const char *how,
		char *err)
{
	if (value)
		return 0;
	return pb_err(err, PB_EINVAL, "server \"%s\" (%s): no %s; %s", t->server->name,
		      t->server->type, what, how);
}

static int resolve_target(const pb_contract *c, const render_opts *o, render_target *t,
			  char *err)
{
	const pb_server *s;
	int rc = 0;

	memset(t, 0, sizeof *t);
	if (c->nservers == 0)
		return pb_err(err, PB_EINVAL,
			      "the contract has no servers; add a snowflake or databricks server");
	s = contract_server(c, o->server);
	if (!s) {
		sbuf names;
		sbuf_init(&names, PB_ERR_MAX);
		for (size_t i = 0; i < c->nservers; i++)
			sbuf_addf(&names, "%s%s", i ? ", " : "", c->servers[i].name);
		rc = pb_err(err, PB_EINVAL, "no server named \"%s\" in the contract (servers: %s)",
			    o->server, sbuf_str(&names));
		sbuf_release(&names);
		return rc;
	}
	t->server = s;
	t->schema = nonempty(server_field(s, "schema"));
	t->role = nonempty(server_field(s, "role"));
	if (str_ieq(s->type, "snowflake")) {
		const char *account = nonempty(server_field(s, "account"));
		t->host = nonempty(server_field(s, "host"));
		if (!t->host && account) {
			bool full = strlen(account) > strlen(SNOWFLAKE_HOST_SUFFIX) &&
				    str_ieq(account + strlen(account) - strlen(SNOWFLAKE_HOST_SUFFIX),
					    SNOWFLAKE_HOST_SUFFIX);
			if (xsnprintf(t->host_buf, sizeof t->host_buf, "%s%s", account,
				      full ? "" : SNOWFLAKE_HOST_SUFFIX))
				return pb_err(err, PB_EINVAL, "server \"%s\": account name too long",
					      s->name);
			t->host = t->host_buf;
		}
		if (!t->host)
			t->host = nonempty(o->host);
		t->warehouse = nonempty(server_field(s, "warehouse"));
		if (!t->warehouse)
			t->warehouse = nonempty(o->warehouse);
		t->database = nonempty(server_field(s, "database"));
		if (!rc)
			rc = need(t, t->host, "host",
				  "add \"host\" or \"account\" to the server or pass --host", err);
		if (!rc)
			rc = need(t, t->warehouse, "warehouse",
				  "add \"warehouse\" to the server or pass --warehouse", err);
		if (!rc)
			rc = need(t, t->database, "database", "add \"database\" to the server", err);
	} else if (str_ieq(s->type, "databricks")) {
		t->host = nonempty(server_field(s, "host"));
		if (!t->host)
			t->host = nonempty(o->host);
		t->http_path = nonempty(server_field(s, "httpPath"));
		if (!t->http_path)
			t->http_path = nonempty(server_field(s, "http_path"));
		if (!t->http_path)
			t->http_path = nonempty(o->http_path);
		t->catalog = nonempty(server_field(s, "catalog"));
		if (!rc)
			rc = need(t, t->host, "host", "add \"host\" to the server or pass --host", err);
		if (!rc)
			rc = need(t, t->http_path, "HTTP path",
				  "add customProperties \"httpPath\" to the server or pass --http-path",
				  err);
		if (!rc)
			rc = need(t, t->catalog, "catalog", "add \"catalog\" to the server", err);
	} else {
		return pb_err(err, PB_EINVAL,
			      "server type %s is not supported for Power BI (snowflake, databricks)",
			      s->type ? s->type : "(none)");
	}
	if (!rc)
		rc = need(t, t->schema, "schema", "add \"schema\" to the server", err);
	return rc;
}

/* --- the context table handed to main.lua ---------------------------------------- */

struct ctx_args {
	const pb_contract *c;
	const render_target *t;
	const char *mode;
};

static void set_str(lua_State *L, const char *key, const char *value)
{
	if (!value)
		return;
	lua_pushstring(L, value);
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
	lua_createtable(L, 0, 14);
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

static void push_contract(lua_State *L, const pb_contract *c)
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
		lua_createtable(L, (int)t->ncolumns, 0);
		for (size_t j = 0; j < t->ncolumns; j++) {
			push_column(L, &t->columns[j]);
			lua_rawseti(L, -2, (lua_Integer)j + 1);
		}
		lua_setfield(L, -2, "columns");
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

/* Runs protected (allocation failures raise): pushes the ctx table. */
static int push_ctx(lua_State *L)
{
	const struct ctx_args *a = lua_touserdata(L, 1);
	const render_target *t = a->t;
	lua_settop(L, 0);
	lua_createtable(L, 0, 3);
	push_contract(L, a->c);
	lua_setfield(L, -2, "contract");

	lua_createtable(L, 0, 9);
	set_str(L, "name", t->server->name);
	lua_pushstring(L, str_ieq(t->server->type, "snowflake") ? "snowflake" : "databricks");
	lua_setfield(L, -2, "type");
	set_str(L, "host", t->host);
	set_str(L, "warehouse", t->warehouse);
	set_str(L, "http_path", t->http_path);
	set_str(L, "database", t->database);
	set_str(L, "catalog", t->catalog);
	set_str(L, "schema", t->schema);
	set_str(L, "role", t->role);
	lua_setfield(L, -2, "target");

	lua_createtable(L, 0, 1);
	set_str(L, "mode", a->mode);
	lua_setfield(L, -2, "options");
	return 1;
}

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
	/* Every '/'-separated part must be a real name. */
	for (const char *part = p; part;) {
		const char *slash = strchr(part, '/');
		size_t n = slash ? (size_t)(slash - part) : strlen(part);
		if (n == 0 || (n == 1 && part[0] == '.') || (n == 2 && !strncmp(part, "..", 2)))
			return pb_err(err, PB_EINVAL,
				      "template output: path \"%s\" has an empty, '.' or '..' part", p);
		part = slash ? slash + 1 : NULL;
	}
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const pb_file *)a)->path, ((const pb_file *)b)->path);
}

/* Copies the { [path] = text } table on top of the stack into out. */
static int collect_files(lua_State *L, pb_files *out, char *err)
{
	size_t cap = 0, total = 0;
	int rc = 0;

	if (!lua_istable(L, -1))
		return pb_err(err, PB_EINVAL, "template main.lua: the render function returned a %s, "
			      "expected a table { [path] = text }", luaL_typename(L, -1));
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		size_t plen, clen;
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
			rc = pb_err(err, PB_EINVAL, "template output: keys must be paths and values texts "
				    "(got a %s key and a %s value)", luaL_typename(L, -2), luaL_typename(L, -1));
			lua_pop(L, 2);
			goto out;
		}
		const char *path = lua_tolstring(L, -2, &plen);
		const char *text = lua_tolstring(L, -1, &clen);
		if ((rc = check_path(path, plen, err))) {
			lua_pop(L, 2);
			goto out;
		}
		if (!utf8_valid(text, clen)) {
			rc = pb_err(err, PB_EINVAL, "template output: %s is not valid UTF-8", path);
			lua_pop(L, 2);
			goto out;
		}
		total += clen;
		if (total > PB_RENDER_MAX_BYTES || out->n >= PB_TMDL_MAX_FILES) {
			rc = pb_err(err, PB_ELIMIT, "template output: more than %u bytes or %d files",
				    PB_RENDER_MAX_BYTES, PB_TMDL_MAX_FILES);
			lua_pop(L, 2);
			goto out;
		}
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			pb_file *v = realloc(out->v, ncap * sizeof *v);
			if (!v) {
				rc = pb_err(err, PB_ENOMEM, "out of memory collecting template output");
				lua_pop(L, 2);
				goto out;
			}
			out->v = v;
			cap = ncap;
		}
		pb_file *f = &out->v[out->n];
		f->path = xstrndup(path, plen);
		f->content = malloc(clen + 1);
		f->len = clen;
		out->n++;
		if (!f->path || !f->content) {
			rc = pb_err(err, PB_ENOMEM, "out of memory collecting template output");
			lua_pop(L, 2);
			goto out;
		}
		memcpy(f->content, text, clen);
		f->content[clen] = '\0';
		lua_pop(L, 1);
	}
	qsort(out->v, out->n, sizeof *out->v, cmp_file);
out:
	if (rc)
		pb_files_release(out);
	return rc;
}

/* --- search path ------------------------------------------------------------------- */

typedef struct search_path {
	sandbox_dir dirs[PB_TEMPLATE_MAX_DIRS];
	size_t n;
	char *strings[4];   /* owned copies the dirs point into */
	size_t nstrings;
} search_path;

static void search_path_release(search_path *sp)
{
	for (size_t i = 0; i < sp->nstrings; i++)
		free(sp->strings[i]);
	sp->n = sp->nstrings = 0;
}

static int add_dir(search_path *sp, char *dir, const char *label, bool must_exist, char *err)
{
	struct stat st;
	if (!*dir)
		return 0;
	if (sp->n == PB_TEMPLATE_MAX_DIRS)
		return pb_err(err, PB_ELIMIT, "more than %d template folders", PB_TEMPLATE_MAX_DIRS);
	if (must_exist && (stat(dir, &st) || !S_ISDIR(st.st_mode)))
		return pb_err(err, PB_EINVAL, "template folder %s: not a readable folder", dir);
	sp->dirs[sp->n].dir = dir;
	sp->dirs[sp->n].label = label;
	sp->n++;
	return 0;
}

/* Splits a colon-separated list (copied) into admin folders. */
static int add_list(search_path *sp, const char *list, char *err)
{
	char *copy;
	int rc = 0;
	if (!list || !*list)
		return 0;
	copy = xstrdup(list);
	if (!copy)
		return pb_err(err, PB_ENOMEM, "out of memory");
	sp->strings[sp->nstrings++] = copy;
	for (char *p = copy; p && !rc;) {
		char *colon = strchr(p, ':');
		if (colon)
			*colon = '\0';
		rc = add_dir(sp, p, NULL, true, err);
		p = colon ? colon + 1 : NULL;
	}
	return rc;
}

static int build_search_path(search_path *sp, const char *admin, const char *kind, char *err)
{
	const char *datadir = getenv("PBIPORT_DATADIR");
	char *tpl = NULL, *lua = NULL;
	int rc;

	if (!datadir || !*datadir)
		datadir = PBIPORT_DATADIR;
	rc = add_list(sp, admin, err);
	if (!rc)
		rc = add_list(sp, getenv("PBIPORT_TEMPLATE_PATH"), err);
	if (rc)
		return rc;
	sbuf b;
	sbuf_init(&b, PB_RENDER_MAX_PATH);
	if (sbuf_addf(&b, "%s/templates/%s", datadir, kind) == 0)
		tpl = sbuf_detach(&b, NULL);
	sbuf_init(&b, PB_RENDER_MAX_PATH);
	if (sbuf_addf(&b, "%s/lua", datadir) == 0)
		lua = sbuf_detach(&b, NULL);
	if (!tpl || !lua) {
		free(tpl);
		free(lua);
		return pb_err(err, PB_ENOMEM, "template folder path too long or out of memory");
	}
	sp->strings[sp->nstrings++] = tpl;
	sp->strings[sp->nstrings++] = lua;
	/* Built-in labels are the paths relative to the source tree, as in the repo. */
	rc = add_dir(sp, tpl, !strcmp(kind, "tmdl") ? "templates/tmdl" : tpl, false, err);
	if (!rc)
		rc = add_dir(sp, lua, "lua", false, err);
	return rc;
}

/* Default limits grow with the contract, so a runaway template on a small contract stops
 * within a few hundred ms while a big honest render still has ~3x what it needs
 * (bench/tmdl: ~350 instructions per column). An explicit time_limit_ms replaces both. */
static void set_limits(const pb_contract *c, const render_opts *o, sandbox_opts *so)
{
	if (o->time_limit_ms > 0) {
		so->time_limit_ms = o->time_limit_ms;
		return;
	}
	long long ncols = 0;
	for (size_t i = 0; i < c->ntables; i++)
		ncols += (long long)c->tables[i].ncolumns;
	long long ntables = (long long)c->ntables;
	so->instr_max = PB_LUA_INSTR_BASE + PB_LUA_INSTR_PER_TABLE * ntables +
			PB_LUA_INSTR_PER_COLUMN * ncols;
	long long ms = PB_LUA_TIME_BASE_MS + PB_LUA_TIME_PER_COLUMN_US * ncols / 1000;
	so->time_limit_ms = (int)(ms < PB_LUA_TIME_MAX_MS ? ms : PB_LUA_TIME_MAX_MS);
}

static int check_mode(const char *mode, const char **norm, char *err)
{
	if (!mode || str_ieq(mode, "import"))
		*norm = "import";
	else if (str_ieq(mode, "directquery"))
		*norm = "directquery";
	else
		return pb_err(err, PB_EINVAL, "mode \"%s\": use import or directquery", mode);
	return 0;
}

int tmdl_render(const pb_contract *c, const render_opts *opts, pb_files *out, char *err)
{
	static const render_opts defaults;
	const render_opts *o = opts ? opts : &defaults;
	search_path sp = { .n = 0 };
	lua_sandbox *sb = NULL;
	render_target target;
	struct ctx_args args = { c, &target, NULL };
	int rc;

	out->v = NULL;
	out->n = 0;
	rc = check_mode(o->mode, &args.mode, err);
	if (!rc)
		rc = resolve_target(c, o, &target, err);
	if (!rc)
		rc = build_search_path(&sp, o->template_path, "tmdl", err);
	if (rc)
		goto out;
	sandbox_opts so = { .dirs = sp.dirs, .ndirs = sp.n };
	set_limits(c, o, &so);
	rc = sandbox_new(&so, &sb, err);
	if (!rc)
		rc = sandbox_cpcall(sb, push_ctx, &args, 1, err);
	if (!rc)
		rc = sandbox_call(sb, "main", 1, err);
	if (!rc) {
		rc = collect_files(sandbox_lua(sb), out, err);
		lua_pop(sandbox_lua(sb), 1);
	}
out:
	sandbox_free(sb);
	search_path_release(&sp);
	return rc;
}
