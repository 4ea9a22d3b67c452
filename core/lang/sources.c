/* Source descriptions: templates/tmdl/sources/<type>.lua read through the sandbox. See
 * core/lang/sources.h. */
#include "core/lang/sources.h"

#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "runtime/limits.h"
#include "runtime/template_dirs.h"
#include "runtime/util.h"

/* Fabric's credential kinds a connection can be created with, and how many values each takes
 * (msapi/fabric.h: Basic username + password, Key key, ServicePrincipal tenant + client +
 * secret). */
static const struct {
	const char *name;
	size_t nfields;
} FABRIC_CREDS[] = { { "Basic", 2 }, { "Key", 1 }, { "ServicePrincipal", 3 } };

static const char *const FROM_NAMES[] = { [SOURCE_FROM_HOST] = "host", [SOURCE_FROM_WAREHOUSE] = "warehouse",
					  [SOURCE_FROM_HTTP_PATH] = "http_path", [SOURCE_FROM_DATABASE] = "database" };

static const struct {
	const char *name;
	unsigned bit;
} MODES[] = { { "import", SOURCE_MODE_IMPORT }, { "directQuery", SOURCE_MODE_DIRECTQUERY }, { "dual", SOURCE_MODE_DUAL } };

bool source_type_valid(const char *type)
{
	size_t n = type ? strlen(type) : 0;
	if (n == 0 || n > SOURCE_TYPE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((type[i] >= 'a' && type[i] <= 'z') || (type[i] >= '0' && type[i] <= '9') || type[i] == '_'))
			return false;
	return true;
}

bool source_exists(const sandbox_dir *dirs, size_t ndirs, const char *type)
{
	char path[PB_RENDER_MAX_PATH];
	struct stat st;
	if (!source_type_valid(type))
		return false;
	for (size_t i = 0; i < ndirs; i++)
		if (!xsnprintf(path, sizeof path, "%s/sources/%s.lua", dirs[i].dir, type) && !stat(path, &st) &&
		    S_ISREG(st.st_mode))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* At most this many types are listed in a message. */
#define SOURCE_LIST_MAX 64

void source_list(const sandbox_dir *dirs, size_t ndirs, sbuf *b)
{
	char *names[SOURCE_LIST_MAX];
	size_t n = 0;
	for (size_t i = 0; i < ndirs; i++) {
		char path[PB_RENDER_MAX_PATH];
		if (xsnprintf(path, sizeof path, "%s/sources", dirs[i].dir))
			continue;
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d)) && n < SOURCE_LIST_MAX) {
			size_t len = strlen(e->d_name);
			if (len < 5 || strcmp(e->d_name + len - 4, ".lua"))
				continue;
			char type[SOURCE_TYPE_MAX + 5];
			if (xsnprintf(type, sizeof type, "%.*s", (int)(len - 4), e->d_name) || !source_type_valid(type))
				continue;
			bool seen = false;
			for (size_t k = 0; k < n && !seen; k++)
				seen = !strcmp(names[k], type);
			if (!seen && (names[n] = xstrdup(type)))
				n++;
		}
		if (d)
			closedir(d);
	}
	qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		(void)sbuf_addf(b, "%s%s", i ? ", " : "", names[i]);
		free(names[i]);
	}
}

/* ---- reading the description ----------------------------------------------------------- */

typedef struct reader {
	const char *type;
	char *err;
} reader;

static int bad(const reader *r, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(const reader *r, const char *at, const char *fmt, ...)
{
	char msg[PB_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return pb_err(r->err, PB_EINVAL, "template sources/%s.lua: %s: %s", r->type, at, msg);
}

/* A text member: *out borrowed from obj (NULL when absent and optional). */
static int text(const reader *r, const json_t *obj, const char *key, const char *at, bool required,
		const char **out)
{
	const json_t *v = json_object_get(obj, key);
	char where[128];
	(void)xsnprintf(where, sizeof where, "%s%s%s", at, *at ? "." : "", key);
	*out = NULL;
	if (!v && !required)
		return PB_OK;
	if (!json_is_string(v))
		return bad(r, where, "%s", v ? "expected a text" : "required");
	size_t n = json_string_length(v);
	if (n == 0 || n > SOURCE_TEXT_MAX)
		return bad(r, where, "a text of 1 to %d bytes", SOURCE_TEXT_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)json_string_value(v)[i] < 0x20)
			return bad(r, where, "a control character");
	*out = json_string_value(v);
	return PB_OK;
}

/* A default: a text or a number (a port), kept as text. */
static int default_text(const reader *r, json_t *obj, const char *at, const char **out)
{
	json_t *v = json_object_get(obj, "default");
	if (json_is_integer(v)) {
		char num[32];
		(void)xsnprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
		if (json_object_set_new(obj, "default", json_string(num)))
			return pb_err(r->err, PB_ENOMEM, "out of memory");
	}
	return text(r, obj, "default", at, false, out);
}

static int flag(const reader *r, const json_t *obj, const char *key, const char *at, bool dflt, bool *out)
{
	const json_t *v = json_object_get(obj, key);
	*out = dflt;
	if (!v)
		return PB_OK;
	if (!json_is_boolean(v))
		return bad(r, at, "%s: expected true or false", key);
	*out = json_is_true(v);
	return PB_OK;
}

/* A list member of at most max entries (an empty table reads as a list). */
static int list(const reader *r, const json_t *obj, const char *key, bool required, size_t min, size_t max,
		const json_t **out)
{
	const json_t *v = json_object_get(obj, key);
	*out = v;
	if (!v && !required)
		return PB_OK;
	if (!json_is_array(v))
		return bad(r, key, "%s", v ? "expected a list" : "required");
	if (json_array_size(v) < min || json_array_size(v) > max)
		return bad(r, key, "a list of %zu to %zu entries", min, max);
	return PB_OK;
}

static bool word(const char *s)
{
	if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static int read_field(const reader *r, json_t *f, const char *at, source_field *out)
{
	const json_t *keys;
	int rc;
	if (!json_is_object(f))
		return bad(r, at, "expected a table { name = ..., ... }");
	if ((rc = text(r, f, "name", at, true, &out->name)) || (rc = text(r, f, "what", at, false, &out->what)) ||
	    (rc = text(r, f, "add", at, false, &out->add)) || (rc = text(r, f, "hint", at, false, &out->hint)) ||
	    (rc = default_text(r, f, at, &out->dflt)) ||
	    (rc = text(r, f, "default_from", at, false, &out->dflt_from)) ||
	    (rc = flag(r, f, "required", at, false, &out->required)) ||
	    (rc = flag(r, f, "option", at, true, &out->option)) || (rc = flag(r, f, "request", at, false, &out->request)))
		return rc;
	if (!word(out->name) || strchr(out->name, '-'))
		return bad(r, at, "name \"%s\": letters, digits and _ only, starting with a letter", out->name);
	if ((rc = list(r, f, "keys", false, 1, SOURCE_MAX_KEYS, &keys)))
		return rc;
	if (!keys) {
		out->keys[0].key = out->name;
		out->nkeys = 1;
		return PB_OK;
	}
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k) {
		char where[96];
		(void)xsnprintf(where, sizeof where, "%s.keys[%zu]", at, i + 1);
		if (json_is_string(k)) {
			out->keys[i].key = json_string_value(k);
		} else if (!json_is_object(k) || (rc = text(r, k, "key", where, true, &out->keys[i].key)) ||
			   (rc = text(r, k, "suffix", where, false, &out->keys[i].suffix))) {
			return rc ? rc : bad(r, where, "a server key (text) or { key = ..., suffix = ... }");
		}
		if (!*out->keys[i].key || strlen(out->keys[i].key) > SOURCE_TEXT_MAX)
			return bad(r, where, "a key of 1 to %d bytes", SOURCE_TEXT_MAX);
		out->nkeys = i + 1;
	}
	return PB_OK;
}

/* A list of entries each with a name unique in it (the fields, the kinds of credentials):
 * read(r, entry, "key[i]", d, i) fills the i-th; name(d, i) is its name. */
typedef struct entries {
	const char *key, *what;   /* "fields", "field" */
	size_t max;
	int (*read)(const reader *r, json_t *v, const char *at, source_desc *d, size_t i);
	const char *(*name)(const source_desc *d, size_t i);
} entries;

static int read_entries(const reader *r, const json_t *doc, source_desc *d, const entries *e, size_t *n)
{
	const json_t *items;
	int rc = list(r, doc, e->key, true, 1, e->max, &items);
	size_t i;
	json_t *v;
	if (rc)
		return rc;
	json_array_foreach(items, i, v) {
		char at[48];
		(void)xsnprintf(at, sizeof at, "%s[%zu]", e->key, i + 1);
		if ((rc = e->read(r, v, at, d, i)))
			return rc;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(e->name(d, k), e->name(d, i)))
				return bad(r, at, "%s \"%s\" twice", e->what, e->name(d, i));
		*n = i + 1;
	}
	return PB_OK;
}

static int field_at(const reader *r, json_t *v, const char *at, source_desc *d, size_t i)
{
	return read_field(r, v, at, &d->fields[i]);
}

static const char *field_name(const source_desc *d, size_t i)
{
	return d->fields[i].name;
}

static int read_fields(const reader *r, const json_t *doc, source_desc *d)
{
	static const entries fields = { "fields", "field", SOURCE_MAX_FIELDS, field_at, field_name };
	int rc = read_entries(r, doc, d, &fields, &d->nfields);
	for (size_t i = 0; !rc && i < d->nfields; i++)
		if (d->fields[i].dflt_from && !source_field_named(d, d->fields[i].dflt_from))
			return bad(r, "fields", "%s: default_from \"%s\" is not a field", d->fields[i].name,
				   d->fields[i].dflt_from);
	return rc;
}

static int read_connection(const reader *r, const json_t *doc, source_desc *d)
{
	const json_t *conn = json_object_get(doc, "connection"), *params;
	int rc;
	if (!json_is_object(conn))
		return bad(r, "connection", "%s", conn ? "expected a table" : "required");
	if ((rc = text(r, conn, "type", "connection", true, &d->conn_type)) ||
	    (rc = text(r, conn, "creation_method", "connection", true, &d->creation_method)) ||
	    (rc = list(r, conn, "parameters", false, 0, SOURCE_MAX_PARAMS, &params)))
		return rc;
	size_t i;
	json_t *p;
	json_array_foreach(params, i, p) {
		char at[48];
		const char *from, *match;
		(void)xsnprintf(at, sizeof at, "connection.parameters[%zu]", i + 1);
		if (!json_is_object(p))
			return bad(r, at, "expected { name = ..., from = ..., match = ... }");
		if ((rc = text(r, p, "name", at, true, &d->params[i].name)) || (rc = text(r, p, "from", at, true, &from)) ||
		    (rc = text(r, p, "match", at, false, &match)))
			return rc;
		size_t k = 0;
		while (k < sizeof FROM_NAMES / sizeof FROM_NAMES[0] && strcmp(FROM_NAMES[k], from))
			k++;
		if (k == sizeof FROM_NAMES / sizeof FROM_NAMES[0])
			return bad(r, at, "from \"%s\": host, warehouse, http_path or database (what the model's M reads)",
				   from);
		d->params[i].from = (source_from)k;
		if (match && strcmp(match, "server") && strcmp(match, "text"))
			return bad(r, at, "match \"%s\": server or text", match);
		d->params[i].server = match && !strcmp(match, "server");
		d->nparams = i + 1;
	}
	return PB_OK;
}

static int read_cred(const reader *r, const json_t *c, const char *at, source_cred *out)
{
	const json_t *fields;
	int rc;
	if (!json_is_object(c))
		return bad(r, at, "expected { kind = ..., fabric = ..., label = ..., fields = ... }");
	if ((rc = text(r, c, "kind", at, true, &out->kind)) || (rc = text(r, c, "fabric", at, true, &out->fabric)) ||
	    (rc = text(r, c, "label", at, true, &out->label)))
		return rc;
	if (!word(out->kind))
		return bad(r, at, "kind \"%s\": letters, digits and _ only", out->kind);
	size_t k = 0, nf = sizeof FABRIC_CREDS / sizeof FABRIC_CREDS[0];
	while (k < nf && strcmp(FABRIC_CREDS[k].name, out->fabric))
		k++;
	if (k == nf)
		return bad(r, at, "fabric \"%s\": Basic, Key or ServicePrincipal (the kinds a connection can be made "
			   "with)", out->fabric);
	if ((rc = list(r, c, "fields", true, FABRIC_CREDS[k].nfields, FABRIC_CREDS[k].nfields, &fields)))
		return bad(r, at, "fields: %s takes %zu value%s", out->fabric, FABRIC_CREDS[k].nfields,
			   FABRIC_CREDS[k].nfields == 1 ? "" : "s");
	size_t i;
	json_t *f;
	json_array_foreach(fields, i, f) {
		char where[80];
		source_cred_field *cf = &out->fields[i];
		(void)xsnprintf(where, sizeof where, "%s.fields[%zu]", at, i + 1);
		if (!json_is_object(f))
			return bad(r, where, "expected { name = ..., label = ... }");
		if ((rc = text(r, f, "name", where, true, &cf->name)) || (rc = text(r, f, "label", where, true, &cf->label)) ||
		    (rc = text(r, f, "guid", where, false, &cf->guid)) || (rc = flag(r, f, "secret", where, false, &cf->secret)))
			return rc;
		if (!word(cf->name) || !strcmp(cf->name, "credential_type"))
			return bad(r, where, "name \"%s\": letters, digits and _ only, not credential_type", cf->name);
		out->nfields = i + 1;
	}
	return PB_OK;
}

static int cred_at(const reader *r, json_t *v, const char *at, source_desc *d, size_t i)
{
	return read_cred(r, v, at, &d->creds[i]);
}

static const char *cred_kind(const source_desc *d, size_t i)
{
	return d->creds[i].kind;
}

static int read_creds(const reader *r, const json_t *doc, source_desc *d)
{
	static const entries creds = { "credentials", "kind", SOURCE_MAX_CREDS, cred_at, cred_kind };
	return read_entries(r, doc, d, &creds, &d->ncreds);
}

static int read_modes(const reader *r, const json_t *doc, source_desc *d)
{
	const json_t *modes;
	const char *dflt;
	int rc = list(r, doc, "storage_modes", true, 1, 3, &modes);
	size_t i;
	json_t *m;
	if (rc)
		return rc;
	json_array_foreach(modes, i, m) {
		unsigned bit = source_mode_of(json_string_value(m));
		if (!bit)
			return bad(r, "storage_modes", "\"%s\": import, directQuery or dual",
				   json_is_string(m) ? json_string_value(m) : "(not a text)");
		d->modes |= bit;
	}
	if ((rc = text(r, doc, "default_storage_mode", "", false, &dflt)))
		return rc;
	d->default_mode = dflt ? source_mode_of(dflt) : (d->modes & SOURCE_MODE_IMPORT) ? SOURCE_MODE_IMPORT
												 : d->modes & -d->modes;
	if (!(d->default_mode & d->modes))
		return bad(r, "default_storage_mode", "\"%s\" is not one of storage_modes", dflt);
	return PB_OK;
}

static int parse_desc(const reader *r, const char *json, size_t len, source_desc *d)
{
	json_error_t je;
	int rc;
	d->doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!d->doc)
		return bad(r, "description", "not readable (%s)", je.text);
	if (!json_is_object(d->doc))
		return bad(r, "description", "expected a table of label, fields, connection, credentials...");
	if ((rc = text(r, d->doc, "label", "", true, &d->label)) || (rc = text(r, d->doc, "reads", "", true, &d->reads)) ||
	    (rc = flag(r, d->doc, "gateway_only", "gateway_only", false, &d->gateway_only)) ||
	    (rc = read_fields(r, d->doc, d)) || (rc = read_connection(r, d->doc, d)) || (rc = read_creds(r, d->doc, d)))
		return rc;
	return read_modes(r, d->doc, d);
}

/* Runs protected: pushes the type name, the argument of lua/source_json.lua. */
static int push_type(lua_State *L)
{
	const char *type = lua_touserdata(L, 1);
	lua_pushstring(L, type);
	return 1;
}

int source_load(lua_sandbox *sb, const char *type, source_desc **out, char *err)
{
	reader r = { type, err };
	source_desc *d = NULL;
	int rc;
	*out = NULL;
	if (!source_type_valid(type))
		return pb_err(err, PB_EINVAL, "\"%.64s\" is not a source type (letters, digits and _)", type);
	if ((rc = sandbox_cpcall(sb, push_type, (void *)type, 1, err)) || (rc = sandbox_call(sb, "source_json", 1, err)))
		return rc;
	lua_State *L = sandbox_lua(sb);
	size_t len = 0;
	const char *json = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
	if (!json)
		rc = bad(&r, "description", "source_json returned no text");
	else if (len > SOURCE_DESC_MAX_BYTES)
		rc = pb_err(err, PB_ELIMIT, "template sources/%s.lua: the description is larger than %u bytes", type,
			    SOURCE_DESC_MAX_BYTES);
	else if (!(d = calloc(1, sizeof *d)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	else {
		(void)xsnprintf(d->type, sizeof d->type, "%s", type);
		rc = parse_desc(&r, json, len, d);
	}
	lua_pop(L, 1);
	if (rc) {
		source_desc_free(d);
		return rc;
	}
	*out = d;
	return PB_OK;
}

void source_desc_free(source_desc *d)
{
	if (!d)
		return;
	json_decref(d->doc);
	free(d);
}

const source_field *source_field_named(const source_desc *d, const char *name)
{
	for (size_t i = 0; name && i < d->nfields; i++)
		if (!strcmp(d->fields[i].name, name))
			return &d->fields[i];
	return NULL;
}

const source_cred *source_cred_named(const source_desc *d, const char *kind)
{
	for (size_t i = 0; kind && i < d->ncreds; i++)
		if (!strcmp(d->creds[i].kind, kind))
			return &d->creds[i];
	return NULL;
}

const char *source_mode_name(unsigned mode)
{
	for (size_t i = 0; i < sizeof MODES / sizeof MODES[0]; i++)
		if (MODES[i].bit == mode)
			return MODES[i].name;
	return "import";
}

unsigned source_mode_of(const char *text)
{
	for (size_t i = 0; text && i < sizeof MODES / sizeof MODES[0]; i++)
		if (str_ieq(MODES[i].name, text))
			return MODES[i].bit;
	return 0;
}

/* Appends "a", "a and b", "a, b and c" (conj " and " / " or "). */
static void add_words(sbuf *b, const char *const *w, size_t n, const char *conj)
{
	for (size_t i = 0; i < n; i++)
		(void)sbuf_addf(b, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : conj, w[i]);
}

void source_modes_text(unsigned modes, sbuf *b)
{
	const char *w[3];
	size_t n = 0;
	for (size_t i = 0; i < sizeof MODES / sizeof MODES[0]; i++)
		if (modes & MODES[i].bit)
			w[n++] = MODES[i].name;
	add_words(b, w, n, " and ");
}

void source_creds_text(const source_desc *d, sbuf *b)
{
	const char *w[SOURCE_MAX_CREDS];
	for (size_t i = 0; i < d->ncreds; i++)
		w[i] = d->creds[i].kind;
	add_words(b, w, d->ncreds, " or ");
}

json_t *source_desc_json(const source_desc *d)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:[], s:[], s:[]}", "type", d->type, "label", d->label,
			      "gateway_only", d->gateway_only, "default_storage_mode", source_mode_name(d->default_mode),
			      "storage_modes", "request_fields", "credentials");
	bool ok = o != NULL;
	for (size_t i = 0; ok && i < sizeof MODES / sizeof MODES[0]; i++)
		if (d->modes & MODES[i].bit)
			ok = !json_array_append_new(json_object_get(o, "storage_modes"), json_string(MODES[i].name));
	for (size_t i = 0; ok && i < d->nfields; i++)
		if (d->fields[i].request)
			ok = !json_array_append_new(json_object_get(o, "request_fields"),
						    json_pack("{s:s, s:s, s:s?}", "name", d->fields[i].name, "what",
							      d->fields[i].what ? d->fields[i].what : d->fields[i].name, "hint",
							      d->fields[i].hint));
	for (size_t i = 0; ok && i < d->ncreds; i++) {
		const source_cred *c = &d->creds[i];
		json_t *fields = json_array();
		for (size_t k = 0; fields && k < c->nfields; k++)
			if (json_array_append_new(fields, json_pack("{s:s, s:s, s:b}", "name", c->fields[k].name, "label",
								    c->fields[k].label, "secret", c->fields[k].secret))) {
				json_decref(fields);
				fields = NULL;
			}
		ok = fields && !json_array_append_new(json_object_get(o, "credentials"),
						       json_pack("{s:s, s:s, s:o}", "kind", c->kind, "label", c->label,
								 "fields", fields));
	}
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int source_describe(const pb_config *cfg, const char *extra, const char *type, source_desc **out, char *err)
{
	template_dirs td;
	lua_sandbox *sb = NULL;
	int rc;
	*out = NULL;
	if ((rc = template_dirs_build(cfg, extra, "templates/tmdl", &td, err)))
		return rc;
	if (!source_exists(td.dirs, td.n, type)) {
		sbuf b;
		sbuf_init(&b, PB_ERR_MAX);
		source_list(td.dirs, td.n, &b);
		rc = pb_err(err, PB_ENOTFOUND, "no source description for type %.64s (there are: %s)", type ? type : "",
			    sbuf_str(&b));
		sbuf_release(&b);
		goto out;
	}
	sandbox_opts so = { .dirs = td.dirs, .ndirs = td.n, .instr_max = PB_LUA_INSTR_BASE,
			    .time_limit_ms = (int)PB_LUA_TIME_BASE_MS };
	if (!(rc = sandbox_new(&so, &sb, err)))
		rc = source_load(sb, type, out, err);
out:
	sandbox_free(sb);
	template_dirs_release(&td);
	return rc;
}

bool source_supported(const pb_config *cfg, const char *type)
{
	template_dirs td;
	char err[PB_ERR_MAX];
	if (!source_type_valid(type) || template_dirs_build(cfg, NULL, "templates/tmdl", &td, err))
		return false;
	bool yes = source_exists(td.dirs, td.n, type);
	template_dirs_release(&td);
	return yes;
}
