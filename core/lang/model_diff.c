/* Comparing and merging semantic-model definitions (core/lang/model_diff.h).
 *
 * Both sides are parsed with the TMDL reader; objects of the two sides are paired by kind and
 * name key (core/lang/names.h). One plan serves both entry points: model_diff turns it into
 * JSON, model_merge into files. The merge never re-serializes an object: want's files are
 * taken as they are, and every kept object of have is copied as the lines it takes in its own
 * file (tmdl_node first_line..last_line), so an analyst's measure keeps its DAX, format,
 * lineage tag, annotations and even its layout, byte for byte. */
#include "core/lang/model_diff.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/lang/names.h"
#include "core/lang/tmdl.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

#define NOWHERE ((size_t)-1)

/* ---- one side: its files (with line offsets) and its parsed model ---- */

typedef struct src_file {
	const pb_file *f;
	size_t *starts;   /* starts[i]: offset of line i+1; starts[n_lines]: the length */
	int n_lines;
} src_file;

typedef struct side {
	src_file *src;    /* one per file, sorted by path */
	size_t n_src;
	tmdl_model *m;
	const tmdl_node *model;   /* the `model` object; NULL when the side has none */
} side;

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);
	return n >= k && !strcasecmp(s + n - k, tail);
}

static int cmp_src(const void *a, const void *b)
{
	return strcmp(((const src_file *)a)->f->path, ((const src_file *)b)->f->path);
}

static src_file *src_find(const side *s, const char *path)
{
	pb_file key = { .path = (char *)path };
	src_file k = { .f = &key };
	return path ? bsearch(&k, s->src, s->n_src, sizeof *s->src, cmp_src) : NULL;
}

/* Line offsets, counted as the TMDL reader counts lines. */
static int src_index(src_file *s)
{
	if (s->starts)
		return PB_OK;
	const char *t = s->f->content, *e = t + s->f->len, *q;
	size_t len = s->f->len, n = 0;
	for (const char *p = t; p < e && (q = memchr(p, '\n', (size_t)(e - p))); p = q + 1)
		n++;
	if (len && t[len - 1] != '\n')
		n++;
	s->starts = malloc((n + 1) * sizeof *s->starts);
	if (!s->starts)
		return PB_ENOMEM;
	size_t k = 0;
	if (len)
		s->starts[k++] = 0;
	for (const char *p = t; k < n && (q = memchr(p, '\n', (size_t)(e - p))); p = q + 1)
		s->starts[k++] = (size_t)(q + 1 - t);
	s->starts[n] = len;
	s->n_lines = (int)n;
	return PB_OK;
}

static void side_release(side *s)
{
	for (size_t i = 0; i < s->n_src; i++)
		free(s->src[i].starts);
	free(s->src);
	tmdl_model_free(s->m);
	memset(s, 0, sizeof *s);
}

/* Parses every .tmdl file of files, in path order (as tmdl_parse_path feeds a folder). */
static int side_load(side *s, const pb_files *files, char *err)
{
	int rc = PB_OK;
	memset(s, 0, sizeof *s);
	s->src = calloc(files->n ? files->n : 1, sizeof *s->src);
	s->m = tmdl_model_new();
	if (!s->src || !s->m)
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; i < files->n; i++) {
		if (!files->v[i].path || !files->v[i].content)
			return pb_err(err, PB_EINVAL, "definition file %zu has no path or content", i + 1);
		s->src[s->n_src++].f = &files->v[i];
	}
	qsort(s->src, s->n_src, sizeof *s->src, cmp_src);
	for (size_t i = 0; i < s->n_src; i++) {
		const pb_file *f = s->src[i].f;
		if (i && !strcmp(f->path, s->src[i - 1].f->path))
			return pb_err(err, PB_EINVAL, "%s:1: the definition has this file twice", f->path);
		if (ends_with(f->path, ".tmdl") && (rc = tmdl_parse_buffer(s->m, f->path, f->content, f->len, err)))
			return rc;
	}
	if ((rc = tmdl_model_finish(s->m, err)))
		return rc;
	for (const tmdl_node *c = tmdl_model_root(s->m)->first_child; c; c = c->next)
		if (c->kind == TMDL_NODE_OBJECT && str_ieq(c->type, "model")) {
			s->model = c;
			break;
		}
	return PB_OK;
}

/* ---- classification ---- */

static bool is_generated(const tmdl_node *n)
{
	const char *v = n ? tmdl_node_annotation(n, MODEL_DIFF_GENERATED) : NULL;
	return v && str_ieq(v, "true");
}

/* The same from an extracted annotation list (contiguous: a table's children are far apart). */
static bool annotated(const tmdl_annotation *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (str_ieq(a[i].name, MODEL_DIFF_GENERATED))
			return str_ieq(a[i].value, "true");
	return false;
}

static bool table_generated(const tmdl_table *t)
{
	return t && annotated(t->annotations, t->n_annotations);
}

static bool is_type(const tmdl_node *n, const char *type)
{
	return n && (n->type[0] | 0x20) == (type[0] | 0x20) && str_ieq(n->type, type);
}

/* A data column (no DAX) or a partition: what a generated table's M query makes. ext: the
 * column's extracted form when known. */
static bool from_m_query(const tmdl_node *n, const void *ext)
{
	if (is_type(n, "partition"))
		return true;
	if (!is_type(n, "column"))
		return false;
	if (ext)
		return !((const tmdl_column *)ext)->expression;
	return !n->value && !tmdl_node_child(n, "expression");
}

/* Named objects that stand on their own (not an object's annotation or extended property). */
static bool is_member_object(const tmdl_node *n)
{
	char first = (char)(n->type[0] | 0x20);
	return n->kind == TMDL_NODE_OBJECT && n->name && !(first == 'a' && str_ieq(n->type, "annotation")) &&
	       !(first == 'e' && str_ieq(n->type, "extendedProperty"));
}

/* Columns, measures and hierarchies share one namespace per table (partitions have their own). */
static bool shares_member_names(const tmdl_node *n)
{
	return is_type(n, "column") || is_type(n, "measure") || is_type(n, "hierarchy");
}

/* Top-level kinds handled on their own (tables, relationships and expressions come from the
 * model's arrays; model, database and model annotations are the model's). */
static bool is_other_top(const tmdl_node *n)
{
	static const char *const own[] = { "table", "relationship", "expression", "model", "database",
		"annotation", NULL };
	if (!is_member_object(n))
		return false;
	for (const char *const *k = own; *k; k++)
		if (str_ieq(n->type, *k))
			return false;
	return true;
}

/* The kind as shown in JSON: Power BI's spelling for the ones it has, else as written. */
static const char *kind_of(const tmdl_node *n)
{
	static const char *const kinds[] = { "table", "column", "measure", "hierarchy", "partition",
		"relationship", "expression", "role", "perspective", "culture", "cultureInfo", "queryGroup",
		"dataSource", "function", "calendar", "calculationGroup", "model", NULL };
	for (const char *const *k = kinds; *k; k++)
		if (str_ieq(n->type, *k))
			return *k;
	return n->type;
}

/* ---- the plan ---- */

typedef enum via {
	VIA_DAX,            /* a DAX expression names it: kept with allow_breaking (an error in Power BI) */
	VIA_PERSPECTIVE,    /* a perspective lists it: kept with allow_breaking */
	VIA_PERMISSION,     /* a role's column permission: kept with allow_breaking */
	VIA_RELATIONSHIP,   /* a kept relationship joins on it: dropped with allow_breaking */
	VIA_LEVEL,          /* a kept hierarchy's level: the hierarchy is dropped with allow_breaking */
	VIA_SORT_BY,        /* a kept column sorts by it: the column is dropped with allow_breaking */
	VIA_TABLE,          /* the kept object is in a table the change removes: goes with it */
	VIA_NAME,           /* the kept object has the name of one want adds: never merged */
} via;

static const char *const VIA_NAMES[] = { "dax", "perspective", "permission", "relationship",
	"hierarchy_level", "sort_by", "table_removed", "name_clash" };

static bool via_drops(via v)
{
	return v == VIA_RELATIONSHIP || v == VIA_LEVEL || v == VIA_SORT_BY || v == VIA_TABLE;
}

typedef struct kept_item {
	const tmdl_node *h;          /* the kept object in have */
	const tmdl_node *w_table;    /* want's table it goes into; NULL: a top-level object */
	const char *table;           /* have's table name for a table member; NULL at top level */
	const tmdl_relationship *rel;   /* a kept relationship's endpoints */
	bool in_removed_table;       /* its table goes: blocking, dropped with allow_breaking */
	bool blocked, dropped_if_breaking, clash;
} kept_item;

typedef struct removed_col {
	const char *tkey, *ckey, *table, *column;
} removed_col;

typedef struct entry {
	const char *type, *key;
	size_t idx;
} entry;

typedef struct pair {
	size_t wi, hi;   /* index into the want / have lists; NOWHERE when absent */
} pair;

typedef struct ctx {
	side w, h;
	bool json;                    /* model_diff: build the JSON; model_merge needs only the plan */
	json_t *changes[5];           /* model, tables, relationships, expressions, other */
	json_t *kept, *blocking;
	size_t n_added, n_removed, n_changed;
	bool breaking, structural;
	kept_item *items;
	size_t n_items, cap_items;
	const tmdl_node **w_dropped;  /* want's objects an unannotated have object of the same name replaces */
	size_t n_w_dropped, cap_w_dropped;
	entry *rm_tables;             /* removed tables: key, idx into have's tables */
	size_t n_rm_tables, cap_rm_tables;
	removed_col *rm_cols;
	size_t n_rm_cols, cap_rm_cols;
	struct key_chunk *keys;       /* every key made, freed at the end */
	char **seen_keys;             /* blocking pairs already reported (scan.seen) */
	size_t n_seen_keys, cap_seen_keys;
	size_t n_blocking;
	char first_block[PB_ERR_MAX]; /* the first blocking pair, as a message */
	char first_clash[PB_ERR_MAX];
	bool oom;
	bool bug;                     /* an object's file or line is not where the reader said */
} ctx;

enum { CH_MODEL, CH_TABLES, CH_RELATIONSHIPS, CH_EXPRESSIONS, CH_OTHER };

/* Grows *v (of *cap elements of size sz) to hold n + 1; false on no memory. */
static bool grow(ctx *cx, void **v, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p = realloc(*v, ncap * sz);
	if (!p) {
		cx->oom = true;
		return false;
	}
	*v = p;
	*cap = ncap;
	return true;
}

/* Keys live in chunks (a model has thousands of names). */
typedef struct key_chunk {
	struct key_chunk *next;
	size_t used, cap;
	char data[];
} key_chunk;

#define KEY_CHUNK (64u * 1024)

static char *key_room(ctx *cx, size_t n)
{
	key_chunk *c = cx->keys;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > KEY_CHUNK ? n : KEY_CHUNK;
		if (!(c = malloc(sizeof *c + cap))) {
			cx->oom = true;
			return NULL;
		}
		c->used = 0;
		c->cap = cap;
		c->next = cx->keys;
		cx->keys = c;
	}
	char *p = c->data + c->used;
	c->used += n;
	return p;
}

/* The comparison key of name (owned by cx); NULL (and cx->oom) on no memory. */
static const char *key_n(ctx *cx, const char *name, size_t len)
{
	char *k;
	if (pbname_is_ascii(name, len)) {
		if (!(k = key_room(cx, len + 1)))
			return NULL;
		for (size_t i = 0; i < len; i++)
			k[i] = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] + 0x20) : name[i];
		k[len] = '\0';
		return k;
	}
	size_t klen = 0;
	char *full = pbname_key(name, len, &klen);
	if (!full || !(k = key_room(cx, klen + 1))) {
		free(full);
		cx->oom = true;
		return NULL;
	}
	memcpy(k, full, klen + 1);
	free(full);
	return k;
}

static const char *key_of(ctx *cx, const char *name)
{
	return key_n(cx, name ? name : "", name ? strlen(name) : 0);
}

static int cmp_entry(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcasecmp(x->type, y->type);
}

static int cmp_entry_key(const void *a, const void *b)
{
	return strcmp(((const entry *)a)->key, ((const entry *)b)->key);
}

/* Nodes with their keys, in their order; new (free). */
static entry *keyed_nodes(ctx *cx, const tmdl_node *const *v, size_t n)
{
	entry *e = malloc((n ? n : 1) * sizeof *e);
	if (!e) {
		cx->oom = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		e[i] = (entry){ v[i]->type, key_of(cx, v[i]->name), i };
		if (!e[i].key) {
			free(e);
			return NULL;
		}
	}
	return e;
}

/* The same, sorted by (key, type): an index. */
static entry *index_of(ctx *cx, const entry *keyed, size_t n)
{
	entry *e = malloc((n ? n : 1) * sizeof *e);
	if (!e) {
		cx->oom = true;
		return NULL;
	}
	if (n) {
		memcpy(e, keyed, n * sizeof *e);
		qsort(e, n, sizeof *e, cmp_entry);
	}
	return e;
}

/* Pairs want's nodes with have's of the same kind and name: want's order first, then have's
 * unpaired ones in their order. *out is new (free); NULL on no memory. When windex is not
 * NULL it receives want's index (new; free). */
static pair *pair_up(ctx *cx, const tmdl_node *const *wv, size_t nw, const tmdl_node *const *hv, size_t nh,
		     size_t *n_out, entry **windex)
{
	pair *out = malloc((nw + nh ? nw + nh : 1) * sizeof *out);
	bool *taken = calloc(nh ? nh : 1, 1);
	entry *hk = keyed_nodes(cx, hv, nh), *wk = keyed_nodes(cx, wv, nw);
	entry *hi = hk ? index_of(cx, hk, nh) : NULL, *wi = windex && wk ? index_of(cx, wk, nw) : NULL;
	size_t k = 0;
	if (!out || !taken || !hi || !wk || (windex && !wi)) {
		cx->oom = true;
		free(out);
		free(wi);
		out = NULL;
		goto done;
	}
	for (size_t i = 0; i < nw; i++) {
		entry *hit = nh ? bsearch(&wk[i], hi, nh, sizeof *hi, cmp_entry) : NULL;
		out[k++] = (pair){ i, hit ? hit->idx : NOWHERE };
		if (hit)
			taken[hit->idx] = true;
	}
	for (size_t i = 0; i < nh; i++)
		if (!taken[i])
			out[k++] = (pair){ NOWHERE, i };
	*n_out = k;
	if (windex)
		*windex = wi;
done:
	free(taken);
	free(hi);
	free(hk);
	free(wk);
	return out;
}

/* ---- JSON helpers: failures are remembered in cx->oom ---- */

static void jset(ctx *cx, json_t *o, const char *k, json_t *v)
{
	if (!v || json_object_set_new(o, k, v))
		cx->oom = true;
}

static void jstr(ctx *cx, json_t *o, const char *k, const char *s)
{
	jset(cx, o, k, s ? json_string(s) : json_null());
}

static void jappend(ctx *cx, json_t *a, json_t *v)
{
	if (!v || json_array_append_new(a, v))
		cx->oom = true;
}

static json_t *jobj(ctx *cx)
{
	json_t *o = json_object();
	if (!o)
		cx->oom = true;
	return o;
}

/* ---- compared properties ---- */

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* Fast paths: true only when the props_* objects below would be equal (most pairs are). */
static bool column_same(const tmdl_column *a, const tmdl_column *b)
{
	return same_str(a->data_type, b->data_type) && same_str(a->format_string, b->format_string) &&
	       same_str(nonempty(a->description), nonempty(b->description)) && a->is_hidden == b->is_hidden &&
	       a->is_key == b->is_key && a->is_nullable == b->is_nullable &&
	       same_str(a->source_column, b->source_column) &&
	       same_str(a->summarize_by ? a->summarize_by : "default", b->summarize_by ? b->summarize_by : "default") &&
	       same_str(a->expression, b->expression);
}

static bool partition_same(const tmdl_partition *a, const tmdl_partition *b)
{
	return same_str(a->source_type, b->source_type) && same_str(a->mode, b->mode) && same_str(a->source, b->source) &&
	       same_str(a->entity_name, b->entity_name) && same_str(a->schema_name, b->schema_name) &&
	       same_str(a->expression_source, b->expression_source);
}

static json_t *props_table(ctx *cx, const tmdl_table *t)
{
	json_t *o = jobj(cx);
	if (o) {
		jstr(cx, o, "description", nonempty(t->description));
		jset(cx, o, "isHidden", json_boolean(t->is_hidden));
	}
	return o;
}

static json_t *props_column(ctx *cx, const tmdl_column *c)
{
	json_t *o = jobj(cx);
	if (!o)
		return NULL;
	jstr(cx, o, "dataType", c->data_type);
	jstr(cx, o, "formatString", c->format_string);
	jstr(cx, o, "description", nonempty(c->description));
	jset(cx, o, "isHidden", json_boolean(c->is_hidden));
	jset(cx, o, "isKey", json_boolean(c->is_key));
	jset(cx, o, "isNullable", json_boolean(c->is_nullable));
	jstr(cx, o, "sourceColumn", c->source_column);
	jstr(cx, o, "summarizeBy", c->summarize_by ? c->summarize_by : "default");
	if (c->expression)
		jstr(cx, o, "expression", c->expression);
	return o;
}

static json_t *props_partition(ctx *cx, const tmdl_partition *p)
{
	json_t *o = jobj(cx);
	if (!o)
		return NULL;
	const char *mode = p->mode && !str_ieq(p->mode, "default") ? p->mode : "import";
	jstr(cx, o, "sourceType", p->source_type);
	jstr(cx, o, "mode", mode);
	jstr(cx, o, "source", p->source);
	if (p->entity_name)
		jstr(cx, o, "entityName", p->entity_name);
	if (p->schema_name)
		jstr(cx, o, "schemaName", p->schema_name);
	if (p->expression_source)
		jstr(cx, o, "expressionSource", p->expression_source);
	return o;
}

static json_t *props_relationship(ctx *cx, const tmdl_relationship *r)
{
	json_t *o = jobj(cx);
	if (!o)
		return NULL;
	jstr(cx, o, "fromTable", r->from_table);
	jstr(cx, o, "fromColumn", r->from_column);
	jstr(cx, o, "toTable", r->to_table);
	jstr(cx, o, "toColumn", r->to_column);
	jstr(cx, o, "fromCardinality", r->from_cardinality);
	jstr(cx, o, "toCardinality", r->to_cardinality);
	jstr(cx, o, "crossFilteringBehavior", r->cross_filtering_behavior);
	jset(cx, o, "isActive", json_boolean(r->is_active));
	return o;
}

static json_t *props_expression(ctx *cx, const tmdl_expression *x)
{
	json_t *o = jobj(cx);
	if (o) {
		jstr(cx, o, "expression", x->value);
		jstr(cx, o, "description", nonempty(x->description));
	}
	return o;
}

static bool is_plain_property(const tmdl_node *c)
{
	return c->kind == TMDL_NODE_PROPERTY || (c->kind == TMDL_NODE_BARE && !c->first_child);
}

/* Any other object: its expression, description and `:` properties (not its lineage tag). */
static json_t *props_generic(ctx *cx, const tmdl_node *n)
{
	json_t *o = jobj(cx);
	if (!o)
		return NULL;
	if (n->value)
		jstr(cx, o, "expression", n->value);
	jstr(cx, o, "description", nonempty(n->description));
	for (const tmdl_node *c = n->first_child; c; c = c->next) {
		if (!is_plain_property(c) || str_ieq(c->type, "lineageTag"))
			continue;
		jset(cx, o, c->type, c->kind == TMDL_NODE_BARE ? json_true() : json_string(c->value));
	}
	return o;
}

/* The model's properties that want sets, read from node (want's or have's model). */
static json_t *props_model(ctx *cx, const tmdl_node *wmodel, const tmdl_node *node)
{
	json_t *o = jobj(cx);
	if (!o)
		return NULL;
	for (const tmdl_node *c = wmodel->first_child; c; c = c->next) {
		if (!is_plain_property(c))
			continue;
		const tmdl_node *v = NULL;
		for (const tmdl_node *d = node ? node->first_child : NULL; d && !v; d = d->next)
			if (is_plain_property(d) && str_ieq(d->type, c->type))
				v = d;
		jset(cx, o, c->type, !v ? json_null() : v->kind == TMDL_NODE_BARE ? json_true() : json_string(v->value));
	}
	return o;
}

/* ---- changes ---- */

/* Records one change; takes over before and after. */
static void add_change(ctx *cx, int cat, const char *object, const char *table, const char *name,
		       const char *change, json_t *before, json_t *after, bool breaking, bool structural,
		       json_t *properties)
{
	json_t *o = jobj(cx);
	if (!o) {
		json_decref(before);
		json_decref(after);
		json_decref(properties);
		return;
	}
	jstr(cx, o, "object", object);
	if (table)
		jstr(cx, o, "table", table);
	jstr(cx, o, "name", name);
	jstr(cx, o, "change", change);
	jset(cx, o, "breaking", json_boolean(breaking));
	jset(cx, o, "before", before ? before : json_null());
	jset(cx, o, "after", after ? after : json_null());
	if (properties)
		jset(cx, o, "properties", properties);
	jappend(cx, cx->changes[cat], o);
	if (!strcmp(change, "added"))
		cx->n_added++;
	else if (!strcmp(change, "removed"))
		cx->n_removed++;
	else
		cx->n_changed++;
	cx->breaking |= breaking;
	cx->structural |= structural;
}

/* before/after differ: a "changed" entry listing the properties that differ. */
static void compare(ctx *cx, int cat, const char *object, const char *table, const char *name, json_t *before,
		    json_t *after, const char *const *structural_props)
{
	if (!before || !after || json_equal(before, after)) {
		json_decref(before);
		json_decref(after);
		return;
	}
	json_t *props = json_array();
	bool breaking = false, structural = false;
	const char *k;
	json_t *v;
	if (!props)
		cx->oom = true;
	json_object_foreach(after, k, v) {
		json_t *b = json_object_get(before, k);
		if (b && json_equal(b, v))
			continue;
		jappend(cx, props, json_string(k));
		breaking |= !strcmp(object, "column") && !strcmp(k, "dataType");
		for (const char *const *s = structural_props; s && *s; s++)
			structural |= !strcmp(*s, k);
	}
	json_object_foreach(before, k, v) {
		if (!json_object_get(after, k)) {
			jappend(cx, props, json_string(k));
			for (const char *const *s = structural_props; s && *s; s++)
				structural |= !strcmp(*s, k);
		}
	}
	add_change(cx, cat, object, table, name, "changed", before, after, breaking, structural, props);
}

static const char *const COLUMN_STRUCTURE[] = { "dataType", "sourceColumn", "expression", NULL };
static const char *const ANY_STRUCTURE[] = { "sourceType", "mode", "source", "entityName", "schemaName",
	"expressionSource", "fromTable", "fromColumn", "toTable", "toColumn", "fromCardinality", "toCardinality",
	"crossFilteringBehavior", "isActive", "expression", NULL };

/* ---- kept objects and what they block ---- */

static kept_item *keep(ctx *cx, const tmdl_node *h, const tmdl_node *w_table, const char *table)
{
	if (!grow(cx, (void **)&cx->items, &cx->cap_items, cx->n_items, sizeof *cx->items))
		return NULL;
	kept_item *it = &cx->items[cx->n_items++];
	*it = (kept_item){ .h = h, .w_table = w_table, .table = table };
	if (cx->json) {
		json_t *o = jobj(cx);
		if (o) {
			jstr(cx, o, "object", kind_of(h));
			if (table)
				jstr(cx, o, "table", table);
			jstr(cx, o, "name", h->name);
			jappend(cx, cx->kept, o);
		}
	}
	return it;
}

static void drop_want(ctx *cx, const tmdl_node *w)
{
	if (grow(cx, (void **)&cx->w_dropped, &cx->cap_w_dropped, cx->n_w_dropped, sizeof *cx->w_dropped))
		cx->w_dropped[cx->n_w_dropped++] = w;
}

/* The object a blocking entry names: inside a kept table, the member holding the reference. */
typedef struct holder {
	const char *object, *table, *name;
} holder;

static void describe_holder(const holder *who, char *buf, size_t size)
{
	char a[PB_PBI_NAME_SHOWN_BUF], b[PB_PBI_NAME_SHOWN_BUF];
	if (who->table)
		xsnprintf(buf, size, "%s '%s' of table '%s'", who->object, pbname_shown(who->name, a),
			  pbname_shown(who->table, b));
	else
		xsnprintf(buf, size, "%s '%s'", who->object, pbname_shown(who->name, a));
}

/* Records that it (held by who) refers to table[column] (column may be NULL) that the change
 * removes, or, for VIA_NAME, has the name of want's `column` (an object of kind `clash_kind`)
 * in table. */
static void block(ctx *cx, kept_item *it, const holder *who, const char *table, const char *column, via how,
		  const char *clash_kind)
{
	char obj[PB_ERR_MAX / 2], t[PB_PBI_NAME_SHOWN_BUF], c[PB_PBI_NAME_SHOWN_BUF];
	it->blocked = true;
	if (via_drops(how))
		it->dropped_if_breaking = true;
	describe_holder(who, obj, sizeof obj);
	if (how == VIA_NAME) {
		it->clash = true;
		if (!cx->first_clash[0])
			xsnprintf(cx->first_clash, sizeof cx->first_clash, "%s has the name of the contract's %s '%s' of table "
				  "'%s'", obj, clash_kind, pbname_shown(column, c), pbname_shown(table, t));
	} else if (!cx->first_block[0]) {
		if (how == VIA_TABLE)
			xsnprintf(cx->first_block, sizeof cx->first_block, "%s '%s' is in table '%s', which the contract "
				  "removes", who->object, pbname_shown(who->name, c), pbname_shown(table, t));
		else if (column)
			xsnprintf(cx->first_block, sizeof cx->first_block, "%s refers to column '%s'[%s], which the "
				  "contract removes", obj, pbname_shown(table, t), pbname_shown(column, c));
		else
			xsnprintf(cx->first_block, sizeof cx->first_block, "%s refers to table '%s', which the contract "
				  "removes", obj, pbname_shown(table, t));
	}
	if (how != VIA_NAME)
		cx->n_blocking++;
	if (!cx->json)
		return;
	json_t *o = jobj(cx), *ref = jobj(cx);
	if (!o || !ref) {
		json_decref(o);
		json_decref(ref);
		return;
	}
	jstr(cx, o, "object", who->object);
	if (who->table)
		jstr(cx, o, "table", who->table);
	jstr(cx, o, "name", who->name);
	jstr(cx, ref, "table", table);
	if (column)
		jstr(cx, ref, "column", column);
	jset(cx, o, "refers_to", ref);
	jstr(cx, o, "via", VIA_NAMES[how]);
	jappend(cx, cx->blocking, o);
}

static int cmp_removed_col(const void *a, const void *b)
{
	const removed_col *x = a, *y = b;
	int c = strcmp(x->tkey, y->tkey);
	return c ? c : strcmp(x->ckey, y->ckey);
}

/* The removed table with this key (its name), or NULL. */
static const char *removed_table(const ctx *cx, const char *tkey)
{
	entry k = { "", tkey, 0 };
	if (!cx->n_rm_tables)
		return NULL;
	const entry *e = bsearch(&k, cx->rm_tables, cx->n_rm_tables, sizeof *e, cmp_entry_key);
	return e ? cx->h.m->tables[e->idx].name : NULL;
}

static const removed_col *removed_column(const ctx *cx, const char *tkey, const char *ckey)
{
	removed_col k = { tkey, ckey, NULL, NULL };
	if (!cx->n_rm_cols)
		return NULL;
	return bsearch(&k, cx->rm_cols, cx->n_rm_cols, sizeof k, cmp_removed_col);
}

/* One scan of a kept object: where unqualified references point, and what was reported. */
typedef struct scan {
	ctx *cx;
	kept_item *it;
	holder who;
	const char *own_table, *own_key;   /* the table [Column] refers to; NULL: none */
	const char *seen[32];              /* "tkey\x1fckey" already reported for this holder */
	size_t n_seen;
} scan;

/* Whether this holder already reported tkey/ckey; remembers it otherwise. */
static bool seen_before(scan *s, const char *tkey, const char *ckey)
{
	size_t n = strlen(tkey) + strlen(ckey ? ckey : "") + 2;
	char *k = malloc(n);
	if (!k || xsnprintf(k, n, "%s\x1f%s", tkey, ckey ? ckey : "")) {
		free(k);
		s->cx->oom = true;
		return true;
	}
	for (size_t i = 0; i < s->n_seen; i++)
		if (!strcmp(s->seen[i], k)) {
			free(k);
			return true;
		}
	if (s->n_seen == sizeof s->seen / sizeof *s->seen ||
	    !grow(s->cx, (void **)&s->cx->seen_keys, &s->cx->cap_seen_keys, s->cx->n_seen_keys,
		  sizeof *s->cx->seen_keys)) {
		free(k);
		return false;
	}
	s->cx->seen_keys[s->cx->n_seen_keys++] = k;
	s->seen[s->n_seen++] = k;
	return false;
}

/* A reference to table[column] (table NULL: the scan's own table; column NULL: the whole
 * table) found in a kept object. */
static void refer(scan *s, const char *table, size_t tlen, const char *column, size_t clen, via how)
{
	ctx *cx = s->cx;
	if (!cx->n_rm_tables && (!column || !cx->n_rm_cols))
		return;   /* nothing removed that it could name */
	const char *tkey = table ? key_n(cx, table, tlen) : s->own_key;
	const char *ckey = column ? key_n(cx, column, clen) : NULL;
	if (!tkey || (column && !ckey))
		return;
	const char *tname = removed_table(cx, tkey);
	if (tname) {
		if (tkey == s->own_key && s->it->in_removed_table)
			return;  /* already blocking as a whole */
		char col[PB_PBI_NAME_MAX_BYTES + 1];
		if (column && clen < sizeof col) {
			memcpy(col, column, clen);
			col[clen] = '\0';
		}
		if (!seen_before(s, tkey, ckey))
			block(cx, s->it, &s->who, tname, column && clen < sizeof col ? col : NULL, how, NULL);
		return;
	}
	const removed_col *rc = ckey ? removed_column(cx, tkey, ckey) : NULL;
	if (rc && !seen_before(s, tkey, ckey))
		block(cx, s->it, &s->who, rc->table, rc->column, how, NULL);
}

static bool dax_ident_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

/* A DAX 'quoted table name' or [bracketed name] starting at p (its opening character);
 * unescapes '' / ]] into out (cap bytes). Returns the position after it, or NULL when it does
 * not close. *n is the length (cap when the name did not fit). */
static const char *dax_name(const char *p, char close, char *out, size_t cap, size_t *n)
{
	size_t k = 0;
	bool fits = true;
	for (p++; *p; p++) {
		if (*p == close) {
			if (p[1] != close)
				break;
			p++;
		}
		if (k + 1 < cap)
			out[k++] = *p;
		else
			fits = false;
	}
	if (!*p)
		return NULL;
	out[k] = '\0';
	*n = fits ? k : cap;
	return p + 1;
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/* Finds the table and column references in one DAX text: 'Table'[Column], Table[Column],
 * [Column] (the own table's), and bare 'Table' / Table (a VAR name is not a table). Strings
 * and comments are skipped. */
static void scan_dax(scan *s, const char *p)
{
	char tname[PB_PBI_NAME_MAX_BYTES + 1], cname[PB_PBI_NAME_MAX_BYTES + 1];
	const char *vars[32];
	size_t var_len[32], n_vars = 0;
	bool after_var = false;
	while (*p) {
		unsigned char c = (unsigned char)*p;
		size_t tn = 0, cn = 0;
		if (c == '"') {
			for (p++; *p; p++)
				if (*p == '"') {
					if (p[1] != '"')
						break;
					p++;
				}
			p += *p != '\0';
		} else if ((c == '/' && p[1] == '/') || (c == '-' && p[1] == '-')) {
			while (*p && *p != '\n')
				p++;
		} else if (c == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			p = e ? e + 2 : p + strlen(p);
		} else if (c == '\'' || c == '[') {
			const char *q = dax_name(p, c == '\'' ? '\'' : ']', c == '\'' ? tname : cname,
						 sizeof tname, c == '\'' ? &tn : &cn);
			if (!q)
				return;
			p = q;
			if (c == '[') {
				if (cn < sizeof cname && s->own_key)
					refer(s, NULL, 0, cname, cn, VIA_DAX);
				continue;
			}
			q = skip_ws(p);
			if (*q == '[' && (q = dax_name(q, ']', cname, sizeof cname, &cn))) {
				p = q;
				if (tn < sizeof tname && cn < sizeof cname)
					refer(s, tname, tn, cname, cn, VIA_DAX);
			} else if (tn < sizeof tname) {
				refer(s, tname, tn, NULL, 0, VIA_DAX);
			}
		} else if (c >= '0' && c <= '9') {
			while (dax_ident_char((unsigned char)*p) || *p == '.')
				p++;
		} else if (dax_ident_char(c)) {
			const char *start = p;
			while (dax_ident_char((unsigned char)*p))
				p++;
			size_t len = (size_t)(p - start);
			const char *q = skip_ws(p);
			if (after_var && n_vars < 32) {
				vars[n_vars] = start;
				var_len[n_vars++] = len;
			}
			after_var = len == 3 && !strncasecmp(start, "var", 3);
			if (*q == '(')
				continue;  /* a function */
			if (*q == '[' && (q = dax_name(q, ']', cname, sizeof cname, &cn))) {
				p = q;
				if (cn < sizeof cname)
					refer(s, start, len, cname, cn, VIA_DAX);
				continue;
			}
			bool is_var = false;
			for (size_t i = 0; i < n_vars && !is_var; i++)
				is_var = var_len[i] == len && !strncasecmp(vars[i], start, len);
			if (!is_var)
				refer(s, start, len, NULL, 0, VIA_DAX);
			continue;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			p++;
			continue;
		} else {
			p++;
		}
		after_var = false;
	}
}

/* Node kinds whose value, or `x = ...` child, is DAX. */
static bool holds_dax(const tmdl_node *n)
{
	static const char *const objects[] = { "measure", "column", "calculationItem", "tablePermission",
		"function", NULL };
	static const char *const exprs[] = { "expression", "formatStringDefinition", "targetExpression",
		"statusExpression", "trendExpression", NULL };
	if (!n->value)
		return false;
	if (n->kind == TMDL_NODE_OBJECT) {
		for (const char *const *k = objects; *k; k++)
			if (str_ieq(n->type, *k))
				return true;
		return false;
	}
	if (n->kind != TMDL_NODE_EXPRESSION)
		return false;
	if (str_ieq(n->type, "source"))   /* a calculated table's partition */
		return n->parent && is_type(n->parent, "partition") && n->parent->value &&
		       str_ieq(n->parent->value, "calculated");
	for (const char *const *k = exprs; *k; k++)
		if (str_ieq(n->type, *k))
			return true;
	return false;
}

/* Walks a kept subtree: DAX texts, hierarchy levels, sort-by columns, perspectives and
 * column permissions. */
static void scan_node(scan *s, const tmdl_node *n, int depth)
{
	if (depth > PB_TMDL_MAX_DEPTH)
		return;
	const char *own = s->own_table, *own_key = s->own_key;
	holder who = s->who;
	ctx *cx = s->cx;
	if (n->kind == TMDL_NODE_OBJECT && n->name &&
	    (is_type(n, "tablePermission") || is_type(n, "perspectiveTable"))) {
		s->own_table = n->name;   /* their members name columns of this table */
		s->own_key = key_of(cx, n->name);
		if (is_type(n, "perspectiveTable"))
			refer(s, n->name, strlen(n->name), NULL, 0, VIA_PERSPECTIVE);
	}
	if (is_member_object(n) && n->parent && is_type(n->parent, "table") && n->parent == s->it->h &&
	    s->it->h->parent && s->it->h->parent->kind == TMDL_NODE_ROOT) {
		s->who = (holder){ kind_of(n), s->it->h->name, n->name };   /* a member of a kept table */
		s->n_seen = 0;
	}
	if (holds_dax(n))
		scan_dax(s, n->value);
	if (s->own_key) {
		const char *col = NULL;
		via how = VIA_DAX;
		if (n->kind == TMDL_NODE_PROPERTY && str_ieq(n->type, "column") && is_type(n->parent, "level")) {
			col = n->value;
			how = VIA_LEVEL;
		} else if (n->kind == TMDL_NODE_PROPERTY && str_ieq(n->type, "sortByColumn")) {
			col = n->value;
			how = VIA_SORT_BY;
		} else if (n->kind == TMDL_NODE_OBJECT && is_type(n, "perspectiveColumn") && n->name) {
			col = n->name;
			how = VIA_PERSPECTIVE;
		} else if (n->kind == TMDL_NODE_OBJECT && is_type(n, "columnPermission") && n->name) {
			col = n->name;
			how = VIA_PERMISSION;
		}
		if (col) {
			char name[PB_PBI_NAME_MAX_BYTES + 1];
			size_t len = strlen(col);
			if (col[0] == '\'') {   /* a quoted name as a property value */
				if (!dax_name(col, '\'', name, sizeof name, &len) || len >= sizeof name)
					col = NULL;
				else
					col = name;
			}
			if (col)
				refer(s, NULL, 0, col, len, how);
		}
	}
	for (const tmdl_node *c = n->first_child; c; c = c->next)
		scan_node(s, c, depth + 1);
	s->own_table = own;
	s->own_key = own_key;
	s->who = who;
}

static void scan_kept(ctx *cx, kept_item *it)
{
	scan s = { .cx = cx, .it = it };
	s.who = (holder){ kind_of(it->h), it->table, it->h->name };
	if (it->in_removed_table) {
		block(cx, it, &s.who, it->table, NULL, VIA_TABLE, NULL);
		return;
	}
	if (it->rel) {
		const tmdl_relationship *r = it->rel;
		refer(&s, r->from_table, strlen(r->from_table), r->from_column, strlen(r->from_column), VIA_RELATIONSHIP);
		refer(&s, r->to_table, strlen(r->to_table), r->to_column, strlen(r->to_column), VIA_RELATIONSHIP);
		return;
	}
	s.own_table = it->table ? it->table : is_type(it->h, "table") ? it->h->name : NULL;
	s.own_key = s.own_table ? key_of(cx, s.own_table) : NULL;
	scan_node(&s, it->h, 0);
}

/* ---- pairing the two sides ---- */

static void plan_model(ctx *cx)
{
	const tmdl_node *w = cx->w.model, *h = cx->h.model;
	if (!cx->json || !w)
		return;
	if (!h) {
		add_change(cx, CH_MODEL, "model", NULL, w->name, "added", NULL, props_model(cx, w, w), false, false, NULL);
		return;
	}
	compare(cx, CH_MODEL, "model", NULL, w->name, props_model(cx, w, h), props_model(cx, w, w), NULL);
}

/* A table's members in a stable order: columns, partitions, measures, then the rest. */
typedef struct members {
	const tmdl_node **v;
	const void **ext;   /* tmdl_column / tmdl_partition / NULL */
	size_t n;
} members;

static bool members_of(ctx *cx, const tmdl_table *t, members *m)
{
	size_t n = t->n_columns + t->n_partitions + t->n_measures + t->n_other_members;
	m->v = malloc((n ? n : 1) * sizeof *m->v);
	m->ext = malloc((n ? n : 1) * sizeof *m->ext);
	m->n = 0;
	if (!m->v || !m->ext) {
		cx->oom = true;
		return false;
	}
	for (size_t i = 0; i < t->n_columns; i++) {
		m->ext[m->n] = &t->columns[i];
		m->v[m->n++] = t->columns[i].node;
	}
	for (size_t i = 0; i < t->n_partitions; i++) {
		m->ext[m->n] = &t->partitions[i];
		m->v[m->n++] = t->partitions[i].node;
	}
	for (size_t i = 0; i < t->n_measures; i++) {
		m->ext[m->n] = NULL;
		m->v[m->n++] = t->measures[i].node;
	}
	for (const tmdl_node *c = t->n_other_members ? t->node->first_child : NULL; c && m->n < n; c = c->next)
		if (is_member_object(c) && !is_type(c, "column") && !is_type(c, "partition") && !is_type(c, "measure")) {
			m->ext[m->n] = NULL;
			m->v[m->n++] = c;
		}
	return true;
}

static void members_release(members *m)
{
	free(m->v);
	free(m->ext);
}

static void add_removed_col(ctx *cx, const char *table, const char *column)
{
	if (!grow(cx, (void **)&cx->rm_cols, &cx->cap_rm_cols, cx->n_rm_cols, sizeof *cx->rm_cols))
		return;
	removed_col r = { key_of(cx, table), key_of(cx, column), table, column };
	if (r.tkey && r.ckey)
		cx->rm_cols[cx->n_rm_cols++] = r;
}

static void plan_members(ctx *cx, const tmdl_table *wt, const tmdl_table *ht)
{
	members wm = { 0 }, hm = { 0 };
	pair *pairs = NULL;
	entry *windex = NULL;
	size_t np = 0;
	if (!members_of(cx, wt, &wm) || !members_of(cx, ht, &hm))
		goto out;
	pairs = pair_up(cx, wm.v, wm.n, hm.v, hm.n, &np, &windex);
	if (!pairs)
		goto out;
	for (size_t i = 0; i < np && !cx->oom; i++) {
		const tmdl_node *w = pairs[i].wi != NOWHERE ? wm.v[pairs[i].wi] : NULL;
		const tmdl_node *h = pairs[i].hi != NOWHERE ? hm.v[pairs[i].hi] : NULL;
		const void *wx = w ? wm.ext[pairs[i].wi] : NULL, *hx = h ? hm.ext[pairs[i].hi] : NULL;
		const tmdl_node *any = w ? w : h;
		bool gen = (w && from_m_query(w, wx)) || (h && from_m_query(h, hx)) || is_generated(w) || is_generated(h);
		if (!gen) {
			if (!h)
				continue;   /* want's own unannotated object: written, not compared */
			kept_item *it = keep(cx, h, wt->node, ht->name);
			if (w) {
				drop_want(cx, w);   /* have's copy wins */
				continue;
			}
			entry k = { "", key_of(cx, h->name), 0 };
			const entry *clash = k.key && shares_member_names(h) ?
				bsearch(&k, windex, wm.n, sizeof *windex, cmp_entry_key) : NULL;
			/* entries of one key sit together: find one of a kind that shares the namespace */
			while (clash && clash > windex && !strcmp(clash[-1].key, k.key))
				clash--;
			while (clash && clash < windex + wm.n && !strcmp(clash->key, k.key) &&
			       !shares_member_names(wm.v[clash->idx]))
				clash++;
			if (clash && (clash == windex + wm.n || strcmp(clash->key, k.key)))
				clash = NULL;
			if (it && clash) {
				holder who = { kind_of(h), ht->name, h->name };
				block(cx, it, &who, wt->name, wm.v[clash->idx]->name, VIA_NAME, kind_of(wm.v[clash->idx]));
			}
			continue;
		}
		const char *object = kind_of(any);
		bool column = is_type(any, "column"), partition = is_type(any, "partition");
		if (!w) {
			if (column)
				add_removed_col(cx, ht->name, h->name);
			if (cx->json)
				add_change(cx, CH_TABLES, object, ht->name, h->name, "removed",
					   column ? props_column(cx, hx) : partition ? props_partition(cx, hx) : props_generic(cx, h),
					   NULL, column, column || partition, NULL);
			continue;
		}
		if (!cx->json)
			continue;
		if (!h) {
			add_change(cx, CH_TABLES, object, wt->name, w->name, "added", NULL,
				   column && wx ? props_column(cx, wx) : partition && wx ? props_partition(cx, wx) : props_generic(cx, w),
				   false, column || partition, NULL);
		} else if (column && wx && hx) {
			if (!column_same(hx, wx))
				compare(cx, CH_TABLES, object, wt->name, w->name, props_column(cx, hx), props_column(cx, wx),
					COLUMN_STRUCTURE);
		} else if (partition && wx && hx) {
			if (!partition_same(hx, wx))
				compare(cx, CH_TABLES, object, wt->name, w->name, props_partition(cx, hx),
					props_partition(cx, wx), ANY_STRUCTURE);
		} else {
			compare(cx, CH_TABLES, object, wt->name, w->name, props_generic(cx, h), props_generic(cx, w),
				is_type(any, "column") ? COLUMN_STRUCTURE : NULL);
		}
	}
out:
	free(pairs);
	free(windex);
	members_release(&wm);
	members_release(&hm);
}

static const tmdl_node **node_array(ctx *cx, size_t n)
{
	const tmdl_node **v = malloc((n ? n : 1) * sizeof *v);
	if (!v)
		cx->oom = true;
	return v;
}

static void plan_tables(ctx *cx)
{
	const tmdl_model *wm = cx->w.m, *hm = cx->h.m;
	const tmdl_node **wv = node_array(cx, wm->n_tables), **hv = node_array(cx, hm->n_tables);
	pair *pairs = NULL;
	size_t np = 0;
	if (!wv || !hv)
		goto out;
	for (size_t i = 0; i < wm->n_tables; i++)
		wv[i] = wm->tables[i].node;
	for (size_t i = 0; i < hm->n_tables; i++)
		hv[i] = hm->tables[i].node;
	if (!(pairs = pair_up(cx, wv, wm->n_tables, hv, hm->n_tables, &np, NULL)))
		goto out;
	for (size_t i = 0; i < np && !cx->oom; i++) {
		const tmdl_table *w = pairs[i].wi != NOWHERE ? &wm->tables[pairs[i].wi] : NULL;
		const tmdl_table *h = pairs[i].hi != NOWHERE ? &hm->tables[pairs[i].hi] : NULL;
		bool gen = table_generated(w) || table_generated(h);
		if (!gen) {
			if (h)
				keep(cx, h->node, NULL, NULL);
			if (h && w)
				drop_want(cx, w->node);
			continue;
		}
		if (w && h) {
			if (cx->json)
				compare(cx, CH_TABLES, "table", NULL, w->name, props_table(cx, h), props_table(cx, w), NULL);
			plan_members(cx, w, h);
		} else if (w) {
			if (cx->json)
				add_change(cx, CH_TABLES, "table", NULL, w->name, "added", NULL, props_table(cx, w), false, true,
					   NULL);
		} else {
			if (grow(cx, (void **)&cx->rm_tables, &cx->cap_rm_tables, cx->n_rm_tables, sizeof *cx->rm_tables)) {
				entry e = { "table", key_of(cx, h->name), pairs[i].hi };
				if (e.key)
					cx->rm_tables[cx->n_rm_tables++] = e;
			}
			if (cx->json)
				add_change(cx, CH_TABLES, "table", NULL, h->name, "removed", props_table(cx, h), NULL, true, true,
					   NULL);
			for (const tmdl_node *c = h->node->first_child; c; c = c->next) {
				if (!is_member_object(c) || is_generated(c) || from_m_query(c, NULL))
					continue;
				kept_item *it = keep(cx, c, NULL, h->name);
				if (it)
					it->in_removed_table = true;
			}
		}
	}
out:
	free(pairs);
	free(wv);
	free(hv);
}

/* Top-level objects of one category, each side's in its order with its extracted form. */
typedef struct top_list {
	const tmdl_node **v;
	const void **ext;   /* tmdl_relationship / tmdl_expression / NULL */
	size_t n;
} top_list;

typedef enum top_cat { TOP_RELATIONSHIPS, TOP_EXPRESSIONS, TOP_OTHER } top_cat;

static bool top_list_of(ctx *cx, const tmdl_model *m, top_cat cat, top_list *l)
{
	size_t n = cat == TOP_RELATIONSHIPS ? m->n_relationships : cat == TOP_EXPRESSIONS ? m->n_expressions : 0;
	if (cat == TOP_OTHER)
		for (const tmdl_node *c = tmdl_model_root(m)->first_child; c; c = c->next)
			n += is_other_top(c);
	l->n = 0;
	l->v = malloc((n ? n : 1) * sizeof *l->v);
	l->ext = malloc((n ? n : 1) * sizeof *l->ext);
	if (!l->v || !l->ext) {
		cx->oom = true;
		return false;
	}
	for (size_t i = 0; cat == TOP_RELATIONSHIPS && i < n; i++) {
		l->ext[l->n] = &m->relationships[i];
		l->v[l->n++] = m->relationships[i].node;
	}
	for (size_t i = 0; cat == TOP_EXPRESSIONS && i < n; i++) {
		l->ext[l->n] = &m->expressions[i];
		l->v[l->n++] = m->expressions[i].node;
	}
	for (const tmdl_node *c = cat == TOP_OTHER ? tmdl_model_root(m)->first_child : NULL; c; c = c->next)
		if (is_other_top(c)) {
			l->ext[l->n] = NULL;
			l->v[l->n++] = c;
		}
	return true;
}

static json_t *props_top(ctx *cx, top_cat cat, const tmdl_node *n, const void *ext)
{
	return cat == TOP_RELATIONSHIPS ? props_relationship(cx, ext) :
	       cat == TOP_EXPRESSIONS ? props_expression(cx, ext) : props_generic(cx, n);
}

/* Relationships, expressions, and the other kinds (roles, perspectives, cultures, query
 * groups, data sources, functions, ...): generated ones compared, the others kept. */
static void plan_top(ctx *cx, top_cat cat)
{
	static const int changes[] = { CH_RELATIONSHIPS, CH_EXPRESSIONS, CH_OTHER };
	top_list w = { 0 }, h = { 0 };
	pair *pairs = NULL;
	size_t np = 0;
	if (!top_list_of(cx, cx->w.m, cat, &w) || !top_list_of(cx, cx->h.m, cat, &h) ||
	    !(pairs = pair_up(cx, w.v, w.n, h.v, h.n, &np, NULL)))
		goto out;
	for (size_t i = 0; i < np && !cx->oom; i++) {
		const tmdl_node *wn = pairs[i].wi != NOWHERE ? w.v[pairs[i].wi] : NULL;
		const tmdl_node *hn = pairs[i].hi != NOWHERE ? h.v[pairs[i].hi] : NULL;
		const void *wx = wn ? w.ext[pairs[i].wi] : NULL, *hx = hn ? h.ext[pairs[i].hi] : NULL;
		if (!(is_generated(wn) || is_generated(hn))) {
			kept_item *it = hn ? keep(cx, hn, NULL, NULL) : NULL;
			if (it && cat == TOP_RELATIONSHIPS)
				it->rel = hx;
			if (hn && wn)
				drop_want(cx, wn);
			continue;
		}
		if (!cx->json)
			continue;
		const tmdl_node *any = wn ? wn : hn;
		const char *object = kind_of(any);
		bool structural = cat != TOP_OTHER;
		if (wn && hn)
			compare(cx, changes[cat], object, NULL, wn->name, props_top(cx, cat, hn, hx), props_top(cx, cat, wn, wx),
				structural ? ANY_STRUCTURE : NULL);
		else if (wn)
			add_change(cx, changes[cat], object, NULL, wn->name, "added", NULL, props_top(cx, cat, wn, wx), false,
				   structural, NULL);
		else
			add_change(cx, changes[cat], object, NULL, hn->name, "removed", props_top(cx, cat, hn, hx), NULL,
				   cat == TOP_RELATIONSHIPS, structural, NULL);
	}
out:
	free_each(pairs, w.v, w.ext, h.v, h.ext);
}

static void ctx_release(ctx *cx)
{
	side_release(&cx->w);
	side_release(&cx->h);
	for (size_t i = 0; i < sizeof cx->changes / sizeof *cx->changes; i++)
		json_decref(cx->changes[i]);
	json_decref(cx->kept);
	json_decref(cx->blocking);
	free_each(cx->items, cx->w_dropped, cx->rm_tables, cx->rm_cols);
	while (cx->keys) {
		key_chunk *next = cx->keys->next;
		free(cx->keys);
		cx->keys = next;
	}
	for (size_t i = 0; i < cx->n_seen_keys; i++)
		free(cx->seen_keys[i]);
	free(cx->seen_keys);
}

/* Parses both sides and builds the plan. */
static int plan(ctx *cx, const pb_files *want, const pb_files *have, bool json, char *err)
{
	int rc;
	cx->json = json;
	if (!want || !have)
		return pb_err(err, PB_EINTERNAL, "model_diff: no definition");
	if ((rc = side_load(&cx->w, want, err)) || (rc = side_load(&cx->h, have, err)))
		return rc;
	if (json) {
		for (size_t i = 0; i < sizeof cx->changes / sizeof *cx->changes; i++)
			if (!(cx->changes[i] = json_array()))
				cx->oom = true;
		if (!(cx->kept = json_array()) || !(cx->blocking = json_array()))
			cx->oom = true;
	}
	if (!cx->oom)
		plan_model(cx);
	if (!cx->oom)
		plan_tables(cx);
	for (top_cat cat = TOP_RELATIONSHIPS; cat <= TOP_OTHER && !cx->oom; cat++)
		plan_top(cx, cat);
	if (!cx->oom) {
		if (cx->n_rm_tables)
			qsort(cx->rm_tables, cx->n_rm_tables, sizeof *cx->rm_tables, cmp_entry_key);
		if (cx->n_rm_cols)
			qsort(cx->rm_cols, cx->n_rm_cols, sizeof *cx->rm_cols, cmp_removed_col);
		for (size_t i = 0; i < cx->n_items && !cx->oom; i++)
			scan_kept(cx, &cx->items[i]);
	}
	return cx->oom ? pb_err(err, PB_ENOMEM, "out of memory comparing definitions") : PB_OK;
}

/* The diff JSON of a plan made with json (a new object each call). */
static int diff_json(ctx *cx, json_t **out, char *err)
{
	json_t *o = json_object(), *changes = json_array(), *summary = json_object();
	bool oom = !o || !changes || !summary;
	*out = NULL;
	for (size_t i = 0; !oom && i < sizeof cx->changes / sizeof *cx->changes; i++)
		oom = json_array_extend(changes, cx->changes[i]) != 0;
	if (!oom)
		oom = json_object_set_new(summary, "added", json_integer((json_int_t)cx->n_added)) ||
		      json_object_set_new(summary, "removed", json_integer((json_int_t)cx->n_removed)) ||
		      json_object_set_new(summary, "changed", json_integer((json_int_t)cx->n_changed)) ||
		      json_object_set_new(summary, "breaking", json_boolean(cx->breaking)) ||
		      json_object_set_new(summary, "structure_changed", json_boolean(cx->structural)) ||
		      json_object_set(o, "changes", changes) || json_object_set(o, "kept", cx->kept) ||
		      json_object_set(o, "blocking", cx->blocking) || json_object_set(o, "summary", summary);
	json_decref(changes);
	json_decref(summary);
	if (oom) {
		json_decref(o);
		return pb_err(err, PB_ENOMEM, "out of memory comparing definitions");
	}
	*out = o;
	return PB_OK;
}

struct model_plan {
	ctx cx;
};

int model_plan_new(const pb_files *want, const pb_files *have, model_plan **out, char *err)
{
	model_plan *p = calloc(1, sizeof *p);
	*out = NULL;
	if (!p)
		return pb_err(err, PB_ENOMEM, "out of memory comparing definitions");
	int rc = plan(&p->cx, want, have, true, err);
	if (rc) {
		model_plan_free(p);
		return rc;
	}
	*out = p;
	return PB_OK;
}

void model_plan_free(model_plan *p)
{
	if (!p)
		return;
	ctx_release(&p->cx);
	free(p);
}

int model_plan_diff(model_plan *p, json_t **out, char *err)
{
	return diff_json(&p->cx, out, err);
}

int model_diff(const pb_files *want, const pb_files *have, json_t **out, char *err)
{
	ctx cx = { 0 };
	*out = NULL;
	int rc = plan(&cx, want, have, true, err);
	if (!rc)
		rc = diff_json(&cx, out, err);
	ctx_release(&cx);
	return rc;
}

/* ---- merging: want's files, edited line by line ---- */

typedef struct insertion {
	int after;              /* line of the base file it follows (0: the start) */
	size_t seq;             /* insertion order, for a stable sort */
	src_file *src;          /* have's file the lines come from */
	int first, last;
	bool blank;             /* a blank line before it */
} insertion;

typedef struct out_file {
	const char *path;          /* borrowed from a pb_file */
	src_file *base;            /* want's file, or NULL */
	const src_file *verbatim;  /* have's file taken whole */
	unsigned char *deleted;    /* per base line (1-based) */
	insertion *ins;
	size_t n_ins, cap_ins;
} out_file;

typedef struct merger {
	ctx *cx;
	out_file *v;               /* want's files (sorted), then new ones */
	size_t n, n_base, cap;
	size_t seq;
} merger;

static int cmp_out(const void *a, const void *b)
{
	return strcmp(((const out_file *)a)->path, ((const out_file *)b)->path);
}

static out_file *out_find(merger *mg, const char *path)
{
	out_file k = { .path = path };
	out_file *o = bsearch(&k, mg->v, mg->n_base, sizeof *mg->v, cmp_out);
	for (size_t i = mg->n_base; !o && i < mg->n; i++)
		if (!strcmp(mg->v[i].path, path))
			o = &mg->v[i];
	return o;
}

static out_file *out_new(merger *mg, const char *path)
{
	if (!grow(mg->cx, (void **)&mg->v, &mg->cap, mg->n, sizeof *mg->v))
		return NULL;
	out_file *o = &mg->v[mg->n++];
	*o = (out_file){ .path = path };
	return o;
}

static void insert(merger *mg, out_file *o, int after, src_file *src, int first, int last, bool blank)
{
	if (!o || !src) {
		mg->cx->bug = true;
		return;
	}
	if (src_index(src)) {
		mg->cx->oom = true;
		return;
	}
	if (first < 1 || last > src->n_lines || first > last) {
		mg->cx->bug = true;
		return;
	}
	if (!grow(mg->cx, (void **)&o->ins, &o->cap_ins, o->n_ins, sizeof *o->ins))
		return;
	o->ins[o->n_ins++] = (insertion){ after, mg->seq++, src, first, last, blank };
}

/* A node's own lines, then its children declared elsewhere (partial declarations). */
static void insert_node(merger *mg, out_file *o, int after, const tmdl_node *n)
{
	src_file *src = src_find(&mg->cx->h, n->file);
	insert(mg, o, after, src, n->first_line, n->last_line, true);
	for (const tmdl_node *c = n->first_child; c; c = c->next)
		if (strcmp(c->file, n->file) || c->line < n->first_line || c->line > n->last_line)
			insert(mg, o, after, src_find(&mg->cx->h, c->file), c->first_line, c->last_line, true);
}

static bool has_foreign_children(const tmdl_node *n)
{
	for (const tmdl_node *c = n->first_child; c; c = c->next)
		if (strcmp(c->file, n->file) || c->line < n->first_line || c->line > n->last_line)
			return true;
	return false;
}

static void delete_lines(merger *mg, const tmdl_node *n)
{
	out_file *o = out_find(mg, n->file);
	if (!o || !o->base)
		return;
	for (int i = n->first_line; i <= n->last_line && i <= o->base->n_lines; i++)
		o->deleted[i] = 1;
	for (const tmdl_node *c = n->first_child; c; c = c->next)
		if (strcmp(c->file, n->file) || c->line < n->first_line || c->line > n->last_line)
			delete_lines(mg, c);
}

static bool kept_goes(const kept_item *it, bool allow_breaking)
{
	if (it->in_removed_table)
		return false;
	return !(allow_breaking && it->dropped_if_breaking);
}

/* Whether have's file is made only of kept top-level objects (taken whole). */
static bool wholly_kept(merger *mg, src_file *src, const kept_item *const *items, size_t n)
{
	unsigned char *covered = NULL;
	bool whole = true;
	if (src_index(src) || !(covered = calloc((size_t)src->n_lines + 1, 1))) {
		mg->cx->oom = true;
		return false;
	}
	for (size_t i = 0; i < n && whole; i++) {
		if (has_foreign_children(items[i]->h))
			whole = false;
		for (int l = items[i]->h->first_line; l <= items[i]->h->last_line && l <= src->n_lines; l++)
			covered[l] = 1;
	}
	for (int l = 1; l <= src->n_lines && whole; l++) {
		const char *s = src->f->content + src->starts[l - 1], *e = src->f->content + src->starts[l];
		bool blank = true;
		for (const char *p = s; p < e && blank; p++)
			blank = *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n';
		whole = blank || covered[l];
	}
	free(covered);
	return whole;
}

static int cmp_item_line(const void *a, const void *b)
{
	const kept_item *x = *(const kept_item *const *)a, *y = *(const kept_item *const *)b;
	return (x->h->first_line > y->h->first_line) - (x->h->first_line < y->h->first_line);
}

/* Kept top-level objects, file by file: appended to want's file of the same path, else
 * their file taken whole, else a new file of their lines. */
static void place_top_level(merger *mg, bool allow_breaking)
{
	ctx *cx = mg->cx;
	const kept_item **items = malloc((cx->n_items ? cx->n_items : 1) * sizeof *items);
	if (!items) {
		cx->oom = true;
		return;
	}
	for (size_t f = 0; f < cx->h.n_src && !cx->oom; f++) {
		src_file *src = &cx->h.src[f];
		size_t n = 0;
		for (size_t i = 0; i < cx->n_items; i++) {
			const kept_item *it = &cx->items[i];
			if (!it->table && !it->w_table && kept_goes(it, allow_breaking) && !strcmp(it->h->file, src->f->path))
				items[n++] = it;
		}
		if (!n)
			continue;
		qsort(items, n, sizeof *items, cmp_item_line);
		out_file *o = out_find(mg, src->f->path);
		int after = 0;
		if (o && o->base) {
			if (src_index(o->base)) {
				cx->oom = true;
				break;
			}
			after = o->base->n_lines;
		} else if (!o && wholly_kept(mg, src, items, n)) {
			if ((o = out_new(mg, src->f->path)))
				o->verbatim = src;
			continue;
		} else if (!o) {
			o = out_new(mg, src->f->path);
		}
		for (size_t i = 0; i < n && o; i++)
			insert_node(mg, o, after, items[i]->h);
	}
	free(items);
}

/* Whether node (a model member) has a counterpart among parent's children: the same named
 * object, or the same property. */
static bool model_has(ctx *cx, const tmdl_node *parent, const tmdl_node *n)
{
	const char *k = n->name ? key_of(cx, n->name) : NULL;
	for (const tmdl_node *c = parent ? parent->first_child : NULL; c; c = c->next) {
		if (!str_ieq(c->type, n->type) || (c->kind == TMDL_NODE_REF) != (n->kind == TMDL_NODE_REF))
			continue;
		if (!n->name)
			return true;
		const char *ck = c->name ? key_of(cx, c->name) : NULL;
		if (k && ck && !strcmp(k, ck))
			return true;
	}
	return false;
}

static bool kept_top(ctx *cx, const char *type, const char *name, bool allow_breaking)
{
	const char *k = key_of(cx, name);
	for (size_t i = 0; k && i < cx->n_items; i++) {
		const kept_item *it = &cx->items[i];
		if (it->table || it->w_table || !kept_goes(it, allow_breaking) || !str_ieq(it->h->type, type))
			continue;
		const char *hk = key_of(cx, it->h->name);
		if (hk && !strcmp(hk, k))
			return true;
	}
	return false;
}

static const tmdl_node *database_level(const side *sd, long *level)
{
	for (const tmdl_node *c = tmdl_model_root(sd->m)->first_child; c; c = c->next) {
		if (!str_ieq(c->type, "database"))
			continue;
		for (const tmdl_node *p = c->first_child; p; p = p->next)
			if (p->kind == TMDL_NODE_PROPERTY && str_ieq(p->type, "compatibilityLevel") && p->value) {
				char *end;
				*level = strtol(p->value, &end, 10);
				return *end || *level <= 0 ? NULL : p;
			}
	}
	return NULL;
}

/* A model's compatibility level only goes up (Power BI raises it when a feature needs it,
 * and refuses to lower it): have's wins when it is higher than want's. */
static void place_database(merger *mg)
{
	ctx *cx = mg->cx;
	long wl = 0, hl = 0;
	const tmdl_node *w = database_level(&cx->w, &wl), *h = database_level(&cx->h, &hl);
	if (!w || !h || hl <= wl)
		return;
	out_file *o = out_find(mg, w->file);
	if (!o || !o->base) {
		cx->bug = true;
		return;
	}
	delete_lines(mg, w);
	insert(mg, o, w->last_line, src_find(&cx->h, h->file), h->first_line, h->last_line, false);
}

/* What have's model carries that want's does not set (properties an analyst or Power BI
 * set, annotations such as PBIDesktopVersion), and the refs to kept tables, roles,
 * perspectives and cultures. */
static void place_model(merger *mg, bool allow_breaking)
{
	ctx *cx = mg->cx;
	const tmdl_node *wm = cx->w.model, *hm = cx->h.model;
	const tmdl_node *wroot = tmdl_model_root(cx->w.m), *hroot = tmdl_model_root(cx->h.m);
	if (!wm)
		return;
	out_file *o = out_find(mg, wm->file);
	if (!o || !o->base) {
		cx->bug = true;
		return;
	}
	if (src_index(o->base)) {
		cx->oom = true;
		return;
	}
	for (const tmdl_node *c = hm ? hm->first_child : NULL; c && !cx->oom; c = c->next) {
		if ((str_ieq(c->type, "annotation") && str_ieq(c->name, MODEL_DIFF_GENERATED)) || model_has(cx, wm, c))
			continue;
		if (str_ieq(c->type, "annotation") && model_has(cx, wroot, c))
			continue;
		insert(mg, o, wm->last_line, src_find(&cx->h, c->file), c->first_line, c->last_line, false);
	}
	bool first_ref = true;
	for (const tmdl_node *c = hroot->first_child; c && !cx->oom; c = c->next) {
		if (c->kind == TMDL_NODE_OBJECT && str_ieq(c->type, "annotation")) {
			if (str_ieq(c->name, MODEL_DIFF_GENERATED) || model_has(cx, wroot, c) || model_has(cx, wm, c))
				continue;
			insert(mg, o, o->base->n_lines, src_find(&cx->h, c->file), c->first_line, c->last_line, true);
		} else if (c->kind == TMDL_NODE_REF && c->name && !model_has(cx, wroot, c) &&
			   kept_top(cx, c->type, c->name, allow_breaking)) {
			insert(mg, o, o->base->n_lines, src_find(&cx->h, c->file), c->first_line, c->last_line, first_ref);
			first_ref = false;
		}
	}
}

static int cmp_insertion(const void *a, const void *b)
{
	const insertion *x = a, *y = b;
	if (x->after != y->after)
		return x->after < y->after ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static int emit_insertion(sbuf *sb, const insertion *in)
{
	const src_file *s = in->src;
	size_t from = s->starts[in->first - 1], to = s->starts[in->last];
	if (in->first == 1 && to - from >= 3 && !memcmp(s->f->content, "\xEF\xBB\xBF", 3))
		from += 3;
	if (sb->len && sb->buf[sb->len - 1] != '\n' && sbuf_addc(sb, '\n'))
		return PB_ELIMIT;
	if (in->blank && sb->len && sbuf_addc(sb, '\n'))
		return PB_ELIMIT;
	if (sbuf_add(sb, s->f->content + from, to - from))
		return PB_ELIMIT;
	if (to > from && s->f->content[to - 1] != '\n' && sbuf_addc(sb, '\n'))
		return PB_ELIMIT;
	return PB_OK;
}

static int render_out(out_file *o, sbuf *sb)
{
	int rc = PB_OK;
	size_t k = 0;
	if (o->verbatim)
		return sbuf_add(sb, o->verbatim->f->content, o->verbatim->f->len) ? PB_ELIMIT : PB_OK;
	if (o->n_ins)
		qsort(o->ins, o->n_ins, sizeof *o->ins, cmp_insertion);
	while (!rc && k < o->n_ins && o->ins[k].after <= 0)
		rc = emit_insertion(sb, &o->ins[k++]);
	/* runs of kept lines up to the next deleted line or insertion are copied at once */
	const src_file *s = o->base;
	for (int l = 1; !rc && s && l <= s->n_lines;) {
		int last = l;
		if (!o->deleted[l]) {
			int stop = k < o->n_ins ? o->ins[k].after : s->n_lines;
			while (last < s->n_lines && last < stop && !o->deleted[last + 1])
				last++;
			size_t from = s->starts[l - 1], to = s->starts[last];
			if (sbuf_add(sb, s->f->content + from, to - from) ||
			    (to > from && s->f->content[to - 1] != '\n' && sbuf_addc(sb, '\n')))
				rc = PB_ELIMIT;
		}
		while (!rc && k < o->n_ins && o->ins[k].after == last)
			rc = emit_insertion(sb, &o->ins[k++]);
		l = last + 1;
	}
	while (!rc && k < o->n_ins)
		rc = emit_insertion(sb, &o->ins[k++]);
	return rc;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const pb_file *)a)->path, ((const pb_file *)b)->path);
}

static bool is_platform_file(const char *path)
{
	const char *slash = strrchr(path, '/');
	return !strcmp(slash ? slash + 1 : path, ".platform");
}

static void merger_release(merger *mg)
{
	for (size_t i = 0; i < mg->n; i++) {
		free(mg->v[i].deleted);
		free(mg->v[i].ins);
	}
	free(mg->v);
}

static int build_files(merger *mg, pb_files *out, char *err)
{
	int rc = PB_OK;
	sbuf sb;
	sbuf_init(&sb, PB_RENDER_MAX_BYTES);
	size_t total = 0;
	out->v = calloc(mg->n ? mg->n : 1, sizeof *out->v);
	out->n = 0;
	if (!out->v)
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; i < mg->n; i++) {
		out_file *o = &mg->v[i];
		sbuf_reset(&sb);
		if (render_out(o, &sb)) {
			rc = pb_err(err, PB_ELIMIT, "%s: the merged file is larger than %u bytes", o->path, PB_RENDER_MAX_BYTES);
			goto out;
		}
		if (ends_with(o->path, ".tmdl") && str_blank(sbuf_str(&sb), sb.len) && (!o->base || o->base->f->len))
			continue;   /* everything in it went elsewhere */
		total += sb.len;
		if (total > PB_RENDER_MAX_BYTES) {
			rc = pb_err(err, PB_ELIMIT, "the merged definition is larger than %u bytes", PB_RENDER_MAX_BYTES);
			goto out;
		}
		pb_file *f = &out->v[out->n];
		f->path = xstrdup(o->path);
		f->len = sb.len;
		f->content = sb.len ? sbuf_detach(&sb, NULL) : xstrdup("");
		sbuf_init(&sb, PB_RENDER_MAX_BYTES);
		out->n++;
		if (!f->path || !f->content) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
	}
	qsort(out->v, out->n, sizeof *out->v, cmp_file);
out:
	sbuf_release(&sb);
	if (rc)
		pb_files_release(out);
	return rc;
}

/* The merged files of a plan. Every object is copied as whole lines at an object boundary
 * of its own depth, so the result reads back (the unit tests read back every result, the
 * corpus models' too); it is not parsed again here, which would cost a third parse. */
static int merge_files(ctx *cx, bool allow_breaking, pb_files *out, char *err)
{
	merger mg = { .cx = cx };
	int rc = PB_OK;
	out->v = NULL;
	out->n = 0;
	if (cx->first_clash[0])
		return pb_err(err, PB_ECONFLICT, "%s: rename one of them in Power BI or in the contract", cx->first_clash);
	if (cx->n_blocking && !allow_breaking) {
		if (cx->n_blocking > 1)
			return pb_err(err, PB_ECONFLICT, "%s (and %zu more); allow breaking changes to update anyway",
				      cx->first_block, cx->n_blocking - 1);
		return pb_err(err, PB_ECONFLICT, "%s; allow breaking changes to update anyway", cx->first_block);
	}
	bool oom = cx->oom, bug = cx->bug;   /* what this merge finds, apart from earlier calls */
	cx->oom = cx->bug = false;
	mg.v = calloc(cx->w.n_src ? cx->w.n_src : 1, sizeof *mg.v);
	if (!mg.v) {
		cx->oom = true;
		goto out;
	}
	mg.cap = cx->w.n_src ? cx->w.n_src : 1;
	for (size_t i = 0; i < cx->w.n_src; i++) {
		src_file *s = &cx->w.src[i];
		if (src_index(s) || !(mg.v[i].deleted = calloc((size_t)s->n_lines + 1, 1))) {
			cx->oom = true;
			goto out;
		}
		mg.v[i].path = s->f->path;
		mg.v[i].base = s;
		mg.n = mg.n_base = i + 1;
	}
	for (size_t i = 0; i < cx->n_w_dropped; i++)
		delete_lines(&mg, cx->w_dropped[i]);
	for (size_t i = 0; i < cx->n_items && !cx->oom; i++) {
		const kept_item *it = &cx->items[i];
		if (!it->w_table || !kept_goes(it, allow_breaking))
			continue;
		out_file *o = out_find(&mg, it->w_table->file);
		insert(&mg, o, it->w_table->last_line, src_find(&cx->h, it->h->file), it->h->first_line,
		       it->h->last_line, true);
	}
	if (!cx->oom)
		place_top_level(&mg, allow_breaking);
	if (!cx->oom)
		place_model(&mg, allow_breaking);
	if (!cx->oom)
		place_database(&mg);
	for (size_t i = 0; i < cx->h.n_src && !cx->oom; i++) {
		const char *path = cx->h.src[i].f->path;
		out_file *o;
		if (!ends_with(path, ".tmdl") && !is_platform_file(path) && !out_find(&mg, path) &&
		    (o = out_new(&mg, path)))
			o->verbatim = &cx->h.src[i];
	}
	if (!cx->oom && !cx->bug)
		rc = build_files(&mg, out, err);
out:
	if (!rc && cx->oom)
		rc = pb_err(err, PB_ENOMEM, "out of memory merging definitions");
	else if (!rc && cx->bug)
		rc = pb_err(err, PB_EINTERNAL, "merging definitions: an object's lines were not found in its file");
	if (rc)
		pb_files_release(out);
	cx->oom |= oom;
	cx->bug |= bug;
	merger_release(&mg);
	return rc;
}

int model_plan_merge(model_plan *p, bool allow_breaking, pb_files *out, char *err)
{
	return merge_files(&p->cx, allow_breaking, out, err);
}

int model_merge(const pb_files *want, const pb_files *have, bool allow_breaking, pb_files *out, char *err)
{
	ctx cx = { 0 };
	out->v = NULL;
	out->n = 0;
	int rc = plan(&cx, want, have, false, err);
	if (!rc)
		rc = merge_files(&cx, allow_breaking, out, err);
	ctx_release(&cx);
	return rc;
}
