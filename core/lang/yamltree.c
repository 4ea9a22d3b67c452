/* YAML -> jansson tree with libyaml's event parser (see core/lang/yamltree.h).
 *
 * We compose the tree ourselves instead of using yaml_parser_load() because the
 * document loader has no depth or size ceiling, silently keeps the last of two
 * duplicate keys, and expands aliases without a budget. */
#include "core/lang/yamltree.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "runtime/util.h"

typedef struct frame {
	json_t *node;           /* the array or object being filled */
	char *key;              /* mapping: key waiting for its value, NULL when a key comes next */
	bool key_plain;         /* that key was written plain (so `<<` is a merge key) */
	size_t key_line, key_col;
	char *anchor;           /* registered when the collection ends */
	size_t first_node;      /* node count before this collection: its expanded size */
	json_t *merges;         /* mappings named by `<<` keys, applied when the mapping ends */
} frame;

typedef struct anchor_ent {
	char *name;
	json_t *node;
	size_t nodes;           /* expanded size, charged again at every alias */
} anchor_ent;

typedef struct ytree {
	const char *source;
	const char *text;
	size_t len;
	char *err;
	frame stack[PB_CONTRACT_MAX_DEPTH];
	size_t depth;
	anchor_ent *anchors;
	size_t nanchors, capanchors;
	size_t nodes;
	json_t *root;
	bool have_root;
	int docs;
} ytree;

static int oom(ytree *t)
{
	return pb_err(t->err, PB_ENOMEM, "%s: out of memory", t->source);
}

static int fail_at(ytree *t, int rc, yaml_mark_t m, const char *what, const char *detail)
{
	return pb_err(t->err, rc, "%s:%zu:%zu: %s%s", t->source, m.line + 1, m.column + 1, what,
		      detail ? detail : "");
}

static int count_nodes(ytree *t, size_t n, yaml_mark_t m)
{
	if (n > PB_CONTRACT_MAX_NODES || t->nodes > PB_CONTRACT_MAX_NODES - n)
		return pb_err(t->err, PB_ELIMIT, "%s:%zu:%zu: more than %d values (aliases counted expanded)",
			      t->source, m.line + 1, m.column + 1, PB_CONTRACT_MAX_NODES);
	t->nodes += n;
	return PB_OK;
}

static bool is_tag(const yaml_char_t *tag, const char *name)
{
	return tag && strcmp((const char *)tag, name) == 0;
}

/* Plain decimal integer that fits a long long ("007" and "+3" are integers too,
 * as in the YAML 1.2 core schema). */
static json_t *plain_integer(const char *s, size_t n)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	if (i == n || n - i > 19)
		return NULL;
	for (size_t k = i; k < n; k++)
		if (s[k] < '0' || s[k] > '9')
			return NULL;
	errno = 0;
	long long v = strtoll(s, NULL, 10);
	if (errno)
		return NULL;
	return json_integer(v);
}

static json_t *scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const yaml_char_t *tag = ev->data.scalar.tag;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

	if (is_tag(tag, YAML_STR_TAG) || is_tag(tag, "!") || (!plain && !tag))
		return json_stringn(s, n);
	if (n == 0 || (n == 1 && s[0] == '~') || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL"))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	json_t *i = plain_integer(s, n);
	return i ? i : json_stringn(s, n);
}

/* Hands v (a new reference) to the open collection, or makes it the root. */
static int add_value(ytree *t, json_t *v, yaml_mark_t m)
{
	int rc = PB_OK;
	if (t->depth == 0) {
		t->root = v;
		t->have_root = true;
		return PB_OK;
	}
	frame *f = &t->stack[t->depth - 1];
	if (json_is_array(f->node)) {
		if (json_array_append_new(f->node, v))
			return oom(t);
		return PB_OK;
	}
	if (f->key_plain && !strcmp(f->key, "<<")) {
		/* merge key: a mapping or a list of mappings */
		if (json_is_object(v)) {
			if (json_array_append(f->merges, v))
				rc = oom(t);
		} else if (json_is_array(v)) {
			size_t i;
			json_t *m2;
			json_array_foreach(v, i, m2) {
				if (!json_is_object(m2)) {
					rc = fail_at(t, PB_EINVAL, m, "merge key `<<` needs mappings", NULL);
					break;
				}
				if (json_array_append(f->merges, m2)) {
					rc = oom(t);
					break;
				}
			}
		} else {
			rc = fail_at(t, PB_EINVAL, m, "merge key `<<` needs a mapping or a list of mappings", NULL);
		}
		json_decref(v);
		goto out;
	}
	if (json_object_get(f->node, f->key)) {
		json_decref(v);
		rc = pb_err(t->err, PB_EINVAL, "%s:%zu:%zu: duplicate key \"%s\"", t->source, f->key_line,
			    f->key_col, f->key);
		goto out;
	}
	if (json_object_set_new(f->node, f->key, v))
		rc = oom(t);
out:
	free(f->key);
	f->key = NULL;
	return rc;
}

static bool expecting_key(const ytree *t)
{
	if (t->depth == 0)
		return false;
	const frame *f = &t->stack[t->depth - 1];
	return json_is_object(f->node) && !f->key;
}

static int add_anchor(ytree *t, const yaml_char_t *name, json_t *node, size_t nodes)
{
	if (!name)
		return PB_OK;
	if (t->nanchors == t->capanchors) {
		size_t cap = t->capanchors ? t->capanchors * 2 : 16;
		anchor_ent *a = realloc(t->anchors, cap * sizeof *a);
		if (!a)
			return oom(t);
		t->anchors = a;
		t->capanchors = cap;
	}
	anchor_ent *e = &t->anchors[t->nanchors];
	e->name = xstrdup((const char *)name);
	if (!e->name)
		return oom(t);
	e->node = json_incref(node);
	e->nodes = nodes;
	t->nanchors++;
	return PB_OK;
}

static int on_scalar(ytree *t, const yaml_event_t *ev)
{
	yaml_mark_t m = ev->start_mark;
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	int rc = count_nodes(t, 1, m);
	if (rc)
		return rc;
	if (memchr(s, '\0', n))
		return fail_at(t, PB_EINVAL, m, "NUL character in a scalar", NULL);
	if (expecting_key(t)) {
		frame *f = &t->stack[t->depth - 1];
		f->key = xstrndup(s, n);
		if (!f->key)
			return oom(t);
		f->key_plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		f->key_line = m.line + 1;
		f->key_col = m.column + 1;
		return PB_OK;
	}
	json_t *v = scalar_value(ev);
	if (!v) /* json_stringn refuses invalid UTF-8 */
		return fail_at(t, PB_EINVAL, m, "invalid UTF-8 in a scalar", NULL);
	rc = add_anchor(t, ev->data.scalar.anchor, v, 1);
	if (rc) {
		json_decref(v);
		return rc;
	}
	return add_value(t, v, m);
}

static int on_start(ytree *t, const yaml_event_t *ev, bool mapping)
{
	yaml_mark_t m = ev->start_mark;
	if (expecting_key(t))
		return fail_at(t, PB_EINVAL, m, "mapping keys must be plain text, not a ",
			       mapping ? "mapping" : "list");
	if (t->depth >= PB_CONTRACT_MAX_DEPTH)
		return pb_err(t->err, PB_ELIMIT, "%s:%zu:%zu: nesting deeper than %d levels", t->source,
			      m.line + 1, m.column + 1, PB_CONTRACT_MAX_DEPTH);
	size_t before = t->nodes;
	int rc = count_nodes(t, 1, m);
	if (rc)
		return rc;
	frame *f = &t->stack[t->depth];
	memset(f, 0, sizeof *f);
	f->first_node = before;
	f->node = mapping ? json_object() : json_array();
	if (!f->node)
		return oom(t);
	t->depth++;
	const yaml_char_t *anchor = mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
	if (anchor) {
		f->anchor = xstrdup((const char *)anchor);
		if (!f->anchor)
			return oom(t);
	}
	if (mapping) {
		f->merges = json_array();
		if (!f->merges)
			return oom(t);
	}
	return PB_OK;
}

static int on_end(ytree *t, const yaml_event_t *ev)
{
	frame f = t->stack[--t->depth];
	int rc = PB_OK;
	size_t i;
	json_t *m;
	json_array_foreach(f.merges, i, m) {
		const char *k;
		json_t *v;
		json_object_foreach(m, k, v) {
			if (!json_object_get(f.node, k) && json_object_set(f.node, k, v)) {
				rc = oom(t);
				goto out;
			}
		}
	}
	if (f.anchor) {
		rc = add_anchor(t, (const yaml_char_t *)f.anchor, f.node, t->nodes - f.first_node);
		if (rc)
			goto out;
	}
	rc = add_value(t, f.node, ev->start_mark);
	f.node = NULL;
out:
	json_decref(f.node);
	json_decref(f.merges);
	free(f.anchor);
	free(f.key);
	return rc;
}

static int on_alias(ytree *t, const yaml_event_t *ev)
{
	yaml_mark_t m = ev->start_mark;
	const char *name = (const char *)ev->data.alias.anchor;
	if (expecting_key(t))
		return fail_at(t, PB_EINVAL, m, "mapping keys must be plain text, not an alias", NULL);
	for (size_t i = t->nanchors; i-- > 0;) {
		if (strcmp(t->anchors[i].name, name))
			continue;
		int rc = count_nodes(t, t->anchors[i].nodes, m);
		if (rc)
			return rc;
		return add_value(t, json_incref(t->anchors[i].node), m);
	}
	return pb_err(t->err, PB_EINVAL, "%s:%zu:%zu: alias *%s names no anchor defined before it", t->source,
		      m.line + 1, m.column + 1, name);
}

static int syntax_error(ytree *t, const yaml_parser_t *p)
{
	if (p->error == YAML_MEMORY_ERROR)
		return oom(t);
	if (p->error == YAML_READER_ERROR) {
		/* the reader reports a byte offset; turn it into line:column */
		size_t line = 1, col = 1, end = p->problem_offset < t->len ? p->problem_offset : t->len;
		for (size_t i = 0; i < end; i++) {
			if (t->text[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		return pb_err(t->err, PB_EINVAL, "%s:%zu:%zu: YAML syntax error: %s (byte offset %zu)", t->source,
			      line, col, p->problem ? p->problem : "unreadable input", p->problem_offset);
	}
	if (p->context)
		return pb_err(t->err, PB_EINVAL, "%s:%zu:%zu: YAML syntax error: %s (%s at line %zu)", t->source,
			      p->problem_mark.line + 1, p->problem_mark.column + 1,
			      p->problem ? p->problem : "invalid YAML", p->context, p->context_mark.line + 1);
	return pb_err(t->err, PB_EINVAL, "%s:%zu:%zu: YAML syntax error: %s", t->source, p->problem_mark.line + 1,
		      p->problem_mark.column + 1, p->problem ? p->problem : "invalid YAML");
}

int yamltree_load(const char *text, size_t len, const char *source, json_t **out, char *err)
{
	ytree t;
	memset(&t, 0, sizeof t);
	t.source = source ? source : "contract";
	t.text = text;
	t.len = len;
	t.err = err;
	*out = NULL;

	yaml_parser_t p;
	yaml_event_t ev;
	bool parser_ready = false, done = false;
	int rc = PB_OK;

	if (!yaml_parser_initialize(&p)) {
		rc = oom(&t);
		goto out;
	}
	parser_ready = true;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done && !rc) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = syntax_error(&t, &p);
			break;
		}
		switch (ev.type) {
		case YAML_DOCUMENT_START_EVENT:
			if (++t.docs > 1)
				rc = fail_at(&t, PB_EINVAL, ev.start_mark,
					     "more than one YAML document (a contract is one document)", NULL);
			break;
		case YAML_SCALAR_EVENT:
			rc = on_scalar(&t, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
			rc = on_start(&t, &ev, false);
			break;
		case YAML_MAPPING_START_EVENT:
			rc = on_start(&t, &ev, true);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			rc = on_end(&t, &ev);
			break;
		case YAML_ALIAS_EVENT:
			rc = on_alias(&t, &ev);
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	if (!rc && !t.have_root) {
		t.root = json_null();
		t.have_root = true;
	}
out:
	if (parser_ready)
		yaml_parser_delete(&p);
	while (t.depth > 0) {
		frame *f = &t.stack[--t.depth];
		json_decref(f->node);
		json_decref(f->merges);
		free(f->anchor);
		free(f->key);
	}
	for (size_t i = 0; i < t.nanchors; i++) {
		free(t.anchors[i].name);
		json_decref(t.anchors[i].node);
	}
	free(t.anchors);
	if (rc) {
		json_decref(t.root);
		return rc;
	}
	*out = t.root;
	return PB_OK;
}
