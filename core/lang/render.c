/* Contract + options -> TMDL files through the Lua templates. See core/lang/render.h. */
#include "core/lang/render.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "core/lang/names.h"
#include "runtime/lua_sandbox.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

#define SNOWFLAKE_HOST_SUFFIX ".snowflakecomputing.com"
/* Longest part of an output path: NAME_MAX of ext4 and most file systems. */
#define PB_RENDER_MAX_NAME 255

/* The connection values the templates need, and how a user supplies each. */
enum { V_HOST, V_WAREHOUSE, V_DATABASE, V_HTTP_PATH, V_CATALOG, V_SCHEMA, V_COUNT };

static const struct value_spec {
	const char *what;     /* "no HTTP path" */
	const char *field;    /* how to add it to the server */
	const char *flag;     /* pbiport tmdl */
	const char *param;    /* query parameter; also the request body field when in_body */
	bool in_body;         /* the publish request takes it */
} VALUES[V_COUNT] = {
	[V_HOST] = { "host", "\"host\"", "--host", "host", false },
	[V_WAREHOUSE] = { "warehouse", "\"warehouse\"", "--warehouse", "warehouse", false },
	[V_DATABASE] = { "database", "\"database\"", "--database", "database", false },
	[V_HTTP_PATH] = { "HTTP path", "customProperties \"httpPath\"", "--http-path", "http_path", true },
	[V_CATALOG] = { "catalog", "\"catalog\"", "--catalog", "catalog", false },
	[V_SCHEMA] = { "schema", "\"schema\"", "--schema", "schema", false },
};

/* What each server type needs, in message order. */
static const int SNOWFLAKE_NEEDS[] = { V_HOST, V_WAREHOUSE, V_DATABASE, V_SCHEMA };
static const int DATABRICKS_NEEDS[] = { V_HOST, V_HTTP_PATH, V_CATALOG, V_SCHEMA };
#define NNEEDS 4

/* The chosen server with every connection value the templates need resolved. */
typedef struct render_target {
	const pb_server *server;   /* NULL when made from the options (a contract without servers) */
	const char *name, *type;   /* type: "snowflake" or "databricks" */
	const char *v[V_COUNT];
	const char *role;
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

static const char *option_value(const render_opts *o, int v)
{
	switch (v) {
	case V_HOST: return nonempty(o->host);
	case V_WAREHOUSE: return nonempty(o->warehouse);
	case V_DATABASE: return nonempty(o->database);
	case V_HTTP_PATH: return nonempty(o->http_path);
	case V_CATALOG: return nonempty(o->catalog);
	default: return nonempty(o->schema);
	}
}

/* How a user passes value v in this caller, or NULL when they cannot. */
static const char *how_to_pass(render_params params, int v, char *buf, size_t size)
{
	switch (params) {
	case RENDER_PARAMS_CLI:
		return VALUES[v].flag;
	case RENDER_PARAMS_QUERY:
		return xsnprintf(buf, size, "?%s=", VALUES[v].param) ? NULL : buf;
	default:
		return VALUES[v].in_body && !xsnprintf(buf, size, "\"%s\"", VALUES[v].param) ? buf : NULL;
	}
}

/* Appends "a", "a and b" or "a, b and c" (conj: " and " or " or "). */
static void add_words(sbuf *b, const char *const *items, size_t n, const char *conj)
{
	for (size_t i = 0; i < n; i++)
		(void)sbuf_addf(b, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : conj, items[i]);
}

/* One message for every value t lacks (miss[0..n)): what, where to add it, what to pass. */
static int missing_error(const render_target *t, const render_opts *o, const int *miss, size_t n, char *err)
{
	const char *what[NNEEDS], *fields[NNEEDS], *pass[NNEEDS];
	char passbuf[NNEEDS][32], shown[PB_PBI_NAME_SHOWN_BUF];
	size_t npass = 0;
	sbuf b;
	for (size_t i = 0; i < n; i++) {
		what[i] = VALUES[miss[i]].what;
		fields[i] = miss[i] == V_HOST && !strcmp(t->type, "snowflake") ? "\"host\" or \"account\"" :
			    VALUES[miss[i]].field;
		const char *p = how_to_pass(o->params, miss[i], passbuf[npass], sizeof passbuf[npass]);
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

/* A contract without servers and no type given: what each supported type would need. */
static int no_server_error(const render_opts *o, char *err)
{
	if (o->params == RENDER_PARAMS_BODY)
		return pb_err(err, PB_EINVAL, "the contract has no servers; add a snowflake or databricks server");
	bool query = o->params == RENDER_PARAMS_QUERY;
	const char *type_param = query ? "?type=" : "--type ";
	sbuf b;
	sbuf_init(&b, PB_ERR_MAX);
	(void)sbuf_adds(&b, "the contract has no servers; pass ");
	for (int k = 0; k < 2; k++) {
		const int *needs = k ? DATABRICKS_NEEDS : SNOWFLAKE_NEEDS;
		const char *pass[NNEEDS];
		char buf[NNEEDS][32];
		size_t n = 0;
		for (size_t i = 0; i < NNEEDS; i++)
			if (!option_value(o, needs[i])) {
				pass[n] = how_to_pass(o->params, needs[i], buf[n], sizeof buf[n]);
				n++;
			}
		(void)sbuf_addf(&b, "%s%s%s%s", k ? ", or " : "", type_param, k ? "databricks" : "snowflake",
				n ? " with " : "");
		add_words(&b, pass, n, " and ");
	}
	int rc = pb_err(err, PB_EINVAL, "%s", sbuf_str(&b));
	sbuf_release(&b);
	return rc;
}

static int resolve_target(const pb_contract *c, const render_opts *o, render_target *t,
			  char *err)
{
	const pb_server *s = NULL;
	int rc = 0;

	memset(t, 0, sizeof *t);
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
		return no_server_error(o, err);
	if (!type) {
		char shown[PB_PBI_NAME_SHOWN_BUF];
		return pb_err(err, PB_EINVAL, "server \"%s\" does not say its type; %s", pbname_shown(s->name, shown),
			      o->params == RENDER_PARAMS_CLI ? "pass --type snowflake or --type databricks" :
			      o->params == RENDER_PARAMS_QUERY ? "pass ?type=snowflake or ?type=databricks" :
			      "add \"type\" (snowflake or databricks) to the server");
	}
	if (!str_ieq(type, "snowflake") && !str_ieq(type, "databricks"))
		return pb_err(err, PB_EINVAL, "server type %s is not supported for Power BI (snowflake, databricks)",
			      type);
	t->server = s;
	t->type = str_ieq(type, "snowflake") ? "snowflake" : "databricks";
	t->name = s ? s->name : t->type;
	bool sf = !strcmp(t->type, "snowflake");
	if (s) {
		t->v[V_HOST] = nonempty(server_field(s, "host"));
		t->v[V_SCHEMA] = nonempty(server_field(s, "schema"));
		t->role = nonempty(server_field(s, "role"));
		if (sf) {
			const char *account = nonempty(server_field(s, "account"));
			if (!t->v[V_HOST] && account) {
				size_t n = strlen(account), sn = strlen(SNOWFLAKE_HOST_SUFFIX);
				bool full = n > sn && str_ieq(account + n - sn, SNOWFLAKE_HOST_SUFFIX);
				if (xsnprintf(t->host_buf, sizeof t->host_buf, "%s%s", account,
					      full ? "" : SNOWFLAKE_HOST_SUFFIX))
					return pb_err(err, PB_EINVAL, "server \"%s\": account name too long", s->name);
				t->v[V_HOST] = t->host_buf;
			}
			t->v[V_WAREHOUSE] = nonempty(server_field(s, "warehouse"));
			t->v[V_DATABASE] = nonempty(server_field(s, "database"));
		} else {
			t->v[V_HTTP_PATH] = nonempty(server_field(s, "httpPath"));
			if (!t->v[V_HTTP_PATH])
				t->v[V_HTTP_PATH] = nonempty(server_field(s, "http_path"));
			t->v[V_CATALOG] = nonempty(server_field(s, "catalog"));
		}
	}
	const int *needs = sf ? SNOWFLAKE_NEEDS : DATABRICKS_NEEDS;
	int miss[NNEEDS];
	size_t nmiss = 0;
	for (size_t i = 0; i < NNEEDS; i++) {
		if (!t->v[needs[i]])
			t->v[needs[i]] = option_value(o, needs[i]);
		if (!t->v[needs[i]])
			miss[nmiss++] = needs[i];
	}
	return nmiss ? missing_error(t, o, miss, nmiss, err) : 0;
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
	lua_createtable(L, 0, 4);
	push_contract(L, a->c);
	lua_setfield(L, -2, "contract");

	lua_createtable(L, 0, 9);
	set_str(L, "name", t->name);
	set_str(L, "type", t->type);
	set_str(L, "host", t->v[V_HOST]);
	set_str(L, "warehouse", t->v[V_WAREHOUSE]);
	set_str(L, "http_path", t->v[V_HTTP_PATH]);
	set_str(L, "database", t->v[V_DATABASE]);
	set_str(L, "catalog", t->v[V_CATALOG]);
	set_str(L, "schema", t->v[V_SCHEMA]);
	set_str(L, "role", t->role);
	lua_setfield(L, -2, "target");

	lua_createtable(L, 0, 1);
	set_str(L, "mode", a->mode);
	lua_setfield(L, -2, "options");

	lua_createtable(L, 0, 3);
	lua_pushcfunction(L, lua_name_key);
	lua_setfield(L, -2, "key");
	lua_pushcfunction(L, lua_name_length);
	lua_setfield(L, -2, "length");
	set_int(L, "max_length", PB_PBI_NAME_MAX_CHARS);
	lua_setfield(L, -2, "names");
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
	if (out->n)     /* an empty result has no array to sort */
		qsort(out->v, out->n, sizeof *out->v, cmp_file);
out:
	if (rc)
		pb_files_release(out);
	return rc;
}

/* Default limits grow with the contract, so a runaway template on a small contract stops
 * within a few hundred ms while a big honest render still has ~3x what it needs
 * (bench/tmdl: ~350 instructions per column). The per-column part of the deadline also grows
 * with how slowly this process runs Lua (sandbox_time_scale_pct: a loaded host, a sanitizer
 * build), never past PB_LUA_TIME_MAX_MS; the fixed part, which is what bounds a hostile
 * template on a small contract, and the instruction budget (deterministic) do not. The
 * configured PBIPORT_RENDER_TIME_LIMIT_MS replaces the deadline only (profiling under
 * valgrind); an explicit opts time_limit_ms replaces both. */
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

int tmdl_render(const pb_contract *c, const render_opts *opts, pb_files *out, char *err)
{
	static const render_opts defaults;
	const render_opts *o = opts ? opts : &defaults;
	template_dirs td = { .n = 0 };
	lua_sandbox *sb = NULL;
	render_target target;
	struct ctx_args args = { c, &target, NULL };
	int rc;

	out->v = NULL;
	out->n = 0;
	render_fault at = RENDER_FAULT_INPUT;
	rc = check_mode(o->mode, &args.mode, err);
	if (!rc)
		rc = resolve_target(c, o, &target, err);
	if (rc)
		goto out;
	at = RENDER_FAULT_TEMPLATE;   /* from here on, what fails is the templates */
	if ((rc = template_dirs_build(o->cfg, o->template_path, "templates/tmdl", &td, err)))
		goto out;
	sandbox_opts so = { .dirs = td.dirs, .ndirs = td.n };
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
	if (!rc && (rc = check_complete(c, out, err)))
		pb_files_release(out);
out:
	if (o->fault)
		*o->fault = rc ? at : RENDER_FAULT_NONE;
	sandbox_free(sb);
	template_dirs_release(&td);
	return rc;
}
