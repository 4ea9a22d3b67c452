/* TMDL reader. Layer 1 turns lines into a node tree (parse_document); layer 2 merges
 * partial declarations and extracts the model (tmdl_model_finish). All memory of a
 * model lives in one arena with a ceiling, so an error anywhere only needs
 * tmdl_model_free(). See core/lang/tmdl.h for the syntax decisions. */
#include "core/lang/tmdl.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/lang/names.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

/* ---- arena ---- */

typedef struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
} arena_chunk;

#define ARENA_CHUNK_MIN (64u * 1024)

struct tmdl_priv {
	arena_chunk *chunks;
	size_t total;
	bool limit_hit;   /* the last failed allocation passed the ceiling (not a real OOM) */
	bool failed;      /* an earlier call failed: the model may be half-built */
	tmdl_node root;
};

/* n bytes, not zeroed, aligned for any type when aligned is set (strings need no alignment). */
static void *arena_take(struct tmdl_priv *pv, size_t n, bool aligned)
{
	const size_t align = sizeof(max_align_t);
	if (n > PB_TMDL_MAX_MODEL_BYTES) {
		pv->limit_hit = true;
		return NULL;
	}
	if (!n)
		n = 1;
	arena_chunk *c = pv->chunks;
	size_t start = c && aligned ? (c->used + align - 1) / align * align : c ? c->used : 0;
	if (!c || start > c->cap || c->cap - start < n) {
		size_t cap = n > ARENA_CHUNK_MIN ? n : ARENA_CHUNK_MIN;
		if (pv->total + cap > PB_TMDL_MAX_MODEL_BYTES) {
			pv->limit_hit = true;
			return NULL;
		}
		c = malloc(sizeof(*c) + cap);
		if (!c) {
			pv->limit_hit = false;
			return NULL;
		}
		c->used = 0;
		c->cap = cap;
		c->next = pv->chunks;
		pv->chunks = c;
		pv->total += cap;
		start = 0;
	}
	void *p = (unsigned char *)c->data + start;
	c->used = start + n;
	return p;
}

/* n zeroed bytes aligned for any type: nodes and the model's arrays. */
static void *arena_alloc(struct tmdl_priv *pv, size_t n)
{
	void *p = arena_take(pv, n, true);
	if (p)
		memset(p, 0, n);
	return p;
}

static char *arena_strndup(struct tmdl_priv *pv, const char *s, size_t n)
{
	char *p = arena_take(pv, n + 1, false);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* ---- errors ---- */

static int mem_error(struct tmdl_priv *pv, char *err, const char *file, int line)
{
	if (pv->limit_hit)
		return pb_err(err, PB_ELIMIT, "%s:%d: model needs more than %u bytes of parser memory",
			      file, line, PB_TMDL_MAX_MODEL_BYTES);
	return pb_err(err, PB_ENOMEM, "%s:%d: out of memory", file, line);
}

static int syntax_error(char *err, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int syntax_error(char *err, const char *file, int line, const char *fmt, ...)
{
	char msg[PB_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return pb_err(err, PB_EINVAL, "%s:%d: %s", file, line, msg);
}

/* ---- small text helpers ---- */

static bool is_blank_char(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static const char *skip_blanks(const char *p, const char *e)
{
	while (p < e && is_blank_char(*p))
		p++;
	return p;
}

static const char *trim_end(const char *p, const char *e)
{
	while (e > p && is_blank_char(e[-1]))
		e--;
	return e;
}

static size_t count_tabs(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i] == '\t')
		i++;
	return i;
}

static bool all_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_blank_char(s[i]))
			return false;
	return true;
}

/* str_ieq for keywords on hot paths: the first letters decide most comparisons. */
static bool kw_eq(const char *a, const char *b)
{
	return (a[0] | 0x20) == (b[0] | 0x20) && str_ieq(a, b);
}

static bool ieq_n(const char *a, size_t an, const char *b)
{
	return strlen(b) == an && strncasecmp(a, b, an) == 0;
}

/* The first name in list equal to v ignoring case (Power BI's spelling), else v. */
static const char *canon(const char *v, const char *const *list)
{
	if (!v)
		return NULL;
	for (; *list; list++)
		if (str_ieq(v, *list))
			return *list;
	return v;
}

static const char *const DATA_TYPES[] = { "automatic", "string", "int64", "double", "dateTime",
	"decimal", "boolean", "binary", "unknown", "variant", NULL };
static const char *const SUMMARIZE_BY[] = { "default", "none", "sum", "min", "max", "count",
	"average", "distinctCount", NULL };
static const char *const MODES[] = { "import", "directQuery", "dual", "directLake", "push",
	"default", NULL };
static const char *const SOURCE_TYPES[] = { "m", "calculated", "entity", "query",
	"calculationGroup", "policyRange", "none", "inferred", "parquet", NULL };
static const char *const CARDINALITIES[] = { "none", "one", "many", NULL };
static const char *const CROSS_FILTERING[] = { "oneDirection", "bothDirections", "automatic", NULL };

/* ---- layer 1: lines to nodes ---- */

typedef struct line {
	const char *s;    /* start, into the document */
	size_t n;         /* length without "\n" and a trailing "\r" */
	size_t next;      /* offset of the following line */
	int no;           /* 1-based */
} line;

typedef struct doc {
	struct tmdl_priv *pv;
	const char *file;
	const char *text;
	size_t len;
	char *err;
} doc;

static bool get_line(const doc *d, size_t pos, int no, line *l)
{
	if (pos >= d->len)
		return false;
	const char *s = d->text + pos;
	const char *nl = memchr(s, '\n', d->len - pos);
	size_t n = nl ? (size_t)(nl - s) : d->len - pos;
	l->s = s;
	l->next = pos + n + (nl ? 1 : 0);
	if (n && s[n - 1] == '\r')
		n--;
	l->n = n;
	l->no = no;
	return true;
}

/* Rejects NUL bytes and invalid UTF-8 up front, so later steps can treat lines as text. The
 * whole text is checked at once; only a bad one is walked line by line for the message. */
static int check_encoding(const doc *d, size_t pos)
{
	line l;
	int no = 0;
	if (!memchr(d->text + pos, '\0', d->len - pos) && utf8_valid(d->text + pos, d->len - pos))
		return PB_OK;
	while (get_line(d, pos, no + 1, &l)) {
		no = l.no;
		pos = l.next;
		if (memchr(l.s, '\0', l.n))
			return syntax_error(d->err, d->file, no, "NUL byte in text");
		if (!utf8_valid(l.s, l.n))
			return syntax_error(d->err, d->file, no, "invalid UTF-8");
	}
	return PB_OK;
}

/* Name at p: 'quoted with '' for a quote', or a run up to one of stop (or e), trimmed.
 * *endp is set past the name. */
static int scan_name(const doc *d, int lineno, const char *p, const char *e, const char *stop,
		     const char **name, const char **endp)
{
	size_t n = 0;
	char *out;
	if (p < e && *p == '\'') {
		const char *q = p + 1;
		bool closed = false;
		while (q < e) {
			if (*q == '\'') {
				if (q + 1 < e && q[1] == '\'') {
					q += 2;
					n++;
					continue;
				}
				closed = true;
				break;
			}
			q++;
			n++;
		}
		if (!closed)
			return syntax_error(d->err, d->file, lineno, "unterminated quoted name");
		out = arena_take(d->pv, n + 1, false);
		if (!out)
			return mem_error(d->pv, d->err, d->file, lineno);
		size_t k = 0;
		for (const char *r = p + 1; r < q; r++) {
			out[k++] = *r;
			if (*r == '\'')
				r++;  /* the second quote of '' */
		}
		out[k] = '\0';
		*endp = q + 1;
	} else {
		const char *q = p;
		if (!stop[0])
			q = e;  /* up to the end of the line */
		else if (!stop[1])
			q = (q = memchr(p, stop[0], (size_t)(e - p))) ? q : e;
		else
			while (q < e && !strchr(stop, *q))
				q++;
		*endp = q;
		q = trim_end(p, q);
		n = (size_t)(q - p);
		out = arena_strndup(d->pv, p, n);
		if (!out)
			return mem_error(d->pv, d->err, d->file, lineno);
	}
	if (n == 0)
		return syntax_error(d->err, d->file, lineno, "empty name");
	if (n > PB_PBI_NAME_MAX_BYTES)
		return syntax_error(d->err, d->file, lineno, "name longer than %d bytes", PB_PBI_NAME_MAX_BYTES);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			return syntax_error(d->err, d->file, lineno, "control character in name");
	*name = out;
	return PB_OK;
}

/* A `:` value: trimmed; a value that is one "..." string loses the quotes ("" -> "). */
static const char *colon_value(struct tmdl_priv *pv, const char *p, const char *e)
{
	p = skip_blanks(p, e);
	e = trim_end(p, e);
	if (e - p >= 2 && *p == '"') {
		char *out = arena_take(pv, (size_t)(e - p), false);
		if (!out)
			return NULL;
		size_t k = 0;
		const char *q = p + 1;
		while (q < e) {
			if (*q == '"') {
				if (q + 1 < e && q[1] == '"') {
					out[k++] = '"';
					q += 2;
					continue;
				}
				if (q + 1 == e) {
					out[k] = '\0';
					return out;  /* one complete quoted string */
				}
				break;
			}
			out[k++] = *q++;
		}
		/* not a single quoted string: keep the text as written */
	}
	return arena_strndup(pv, p, (size_t)(e - p));
}

/* Body lines after an `=` with nothing behind it: every following line that is blank or
 * has more than threshold leading tabs. Common tabs and trailing blanks are stripped,
 * trailing blank lines dropped. pos and no move past the last body line. */
static int read_multiline(const doc *d, size_t threshold, size_t *pos, int *no, const char **value)
{
	line l;
	size_t scan = *pos, end = *pos, min_tabs = (size_t)-1, total = 0;
	int sno = *no, end_no = *no;
	while (get_line(d, scan, sno + 1, &l)) {
		if (!all_blank(l.s, l.n)) {
			size_t tabs = count_tabs(l.s, l.n);
			if (tabs <= threshold)
				break;
			if (tabs < min_tabs)
				min_tabs = tabs;
			end = l.next;
			end_no = l.no;
		}
		scan = l.next;
		sno = l.no;
	}
	for (size_t p = *pos; get_line(d, p, 0, &l) && p < end; p = l.next)
		total += l.n + 1;
	char *out = arena_take(d->pv, total + 1, false);
	if (!out)
		return mem_error(d->pv, d->err, d->file, *no);
	size_t k = 0;
	bool first = true;
	for (size_t p = *pos; get_line(d, p, 0, &l) && p < end; p = l.next) {
		size_t tabs = count_tabs(l.s, l.n);
		if (tabs > min_tabs)
			tabs = min_tabs;
		const char *s = l.s + tabs, *e = trim_end(s, l.s + l.n);
		if (!first)
			out[k++] = '\n';
		first = false;
		memcpy(out + k, s, (size_t)(e - s));
		k += (size_t)(e - s);
	}
	out[k] = '\0';
	*value = out;
	*pos = end;
	*no = end_no;
	return PB_OK;
}

/* Fenced body: lines up to one holding only the opening fence; the closing fence's
 * indentation is the margin stripped from every line; the rest is verbatim. */
static int read_fenced(const doc *d, const char *fence, size_t fence_len, int open_no,
		       size_t *pos, int *no, const char **value)
{
	line l;
	size_t scan = *pos, total = 0;
	int sno = *no;
	bool closed = false;
	size_t margin = 0, body_end = 0;
	while (get_line(d, scan, sno + 1, &l)) {
		const char *s = skip_blanks(l.s, l.s + l.n), *e = trim_end(s, l.s + l.n);
		if ((size_t)(e - s) == fence_len && !memcmp(s, fence, fence_len)) {
			closed = true;
			margin = (size_t)(s - l.s);
			body_end = scan;
			scan = l.next;
			sno = l.no;
			break;
		}
		total += l.n + 1;
		scan = l.next;
		sno = l.no;
	}
	if (!closed)
		return syntax_error(d->err, d->file, open_no, "unterminated %.*s block", (int)fence_len, fence);
	char *out = arena_take(d->pv, total + 1, false);
	if (!out)
		return mem_error(d->pv, d->err, d->file, open_no);
	size_t k = 0;
	bool first = true;
	for (size_t p = *pos; p < body_end && get_line(d, p, 0, &l); p = l.next) {
		size_t strip = 0;
		while (strip < margin && strip < l.n && is_blank_char(l.s[strip]))
			strip++;
		if (!first)
			out[k++] = '\n';
		first = false;
		memcpy(out + k, l.s + strip, l.n - strip);
		k += l.n - strip;
	}
	out[k] = '\0';
	*value = out;
	*pos = scan;
	*no = sno;
	return PB_OK;
}

/* The text after `=`: single line, multi-line (threshold: see read_multiline) or fenced. */
static int read_value(const doc *d, tmdl_node *node, const char *p, const char *e, size_t threshold,
		      size_t *pos, int *no)
{
	p = skip_blanks(p, e);
	e = trim_end(p, e);
	if (p == e)
		return read_multiline(d, threshold, pos, no, &node->value);
	size_t ticks = 0;
	while (p + ticks < e && p[ticks] == '`')
		ticks++;
	if (ticks >= 3 && p + ticks == e) {
		node->fenced = true;
		return read_fenced(d, p, ticks, node->line, pos, no, &node->value);
	}
	node->value = arena_strndup(d->pv, p, (size_t)(e - p));
	return node->value ? PB_OK : mem_error(d->pv, d->err, d->file, node->line);
}

/* One declaration or property line (rest = after the tabs). May consume body lines. */
static int parse_line(const doc *d, const char *rest, size_t rn, size_t tabs, int lineno,
		      size_t *pos, int *no, tmdl_node **out)
{
	const char *e = rest + rn, *p = rest;
	int rc;
	tmdl_node *n = arena_alloc(d->pv, sizeof *n);
	if (!n)
		return mem_error(d->pv, d->err, d->file, lineno);
	n->file = d->file;
	n->line = lineno;
	while (p < e && is_word_char(*p))
		p++;
	if (p == rest)
		return syntax_error(d->err, d->file, lineno, "expected a keyword or property name, found '%.*s'",
				    (int)(e - rest > 20 ? 20 : e - rest), rest);
	n->type = arena_strndup(d->pv, rest, (size_t)(p - rest));
	if (!n->type)
		return mem_error(d->pv, d->err, d->file, lineno);
	const char *q = skip_blanks(p, e);
	if (q == e) {
		n->kind = TMDL_NODE_BARE;
	} else if (*q == ':') {
		n->kind = TMDL_NODE_PROPERTY;
		n->value = colon_value(d->pv, q + 1, e);
		if (!n->value)
			return mem_error(d->pv, d->err, d->file, lineno);
	} else if (*q == '=') {
		n->kind = TMDL_NODE_EXPRESSION;
		if ((rc = read_value(d, n, q + 1, e, tabs, pos, no)))
			return rc;
	} else if (q == p) {
		return syntax_error(d->err, d->file, lineno, "unexpected '%c' after '%s'", *q, n->type);
	} else if (ieq_n(rest, (size_t)(p - rest), "ref")) {
		const char *t = q;
		while (q < e && is_word_char(*q))
			q++;
		if (q == t)
			return syntax_error(d->err, d->file, lineno, "expected an object type after 'ref'");
		n->kind = TMDL_NODE_REF;
		n->type = arena_strndup(d->pv, t, (size_t)(q - t));
		if (!n->type)
			return mem_error(d->pv, d->err, d->file, lineno);
		const char *r = skip_blanks(q, e);
		if (r == q || r == e)
			return syntax_error(d->err, d->file, lineno, "expected a name after 'ref %s'", n->type);
		if ((rc = scan_name(d, lineno, r, e, "", &n->name, &q)))
			return rc;
		if (skip_blanks(q, e) != e)
			return syntax_error(d->err, d->file, lineno, "unexpected text after the name of 'ref %s'", n->type);
	} else {
		n->kind = TMDL_NODE_OBJECT;
		if ((rc = scan_name(d, lineno, q, e, "=", &n->name, &q)))
			return rc;
		q = skip_blanks(q, e);
		if (q < e && *q == '=') {
			/* the body of a declaration sits below the object's own property level */
			if ((rc = read_value(d, n, q + 1, e, tabs + 1, pos, no)))
				return rc;
		} else if (q < e) {
			return syntax_error(d->err, d->file, lineno, "unexpected text after the name of %s '%s'",
					    n->type, n->name);
		}
	}
	*out = n;
	return PB_OK;
}

static void append_child(tmdl_node *parent, tmdl_node *c)
{
	c->parent = parent;
	c->next = NULL;
	if (parent->last_child)
		parent->last_child->next = c;
	else
		parent->first_child = c;
	parent->last_child = c;
}

static bool is_table_node(const tmdl_node *n)
{
	return (n->kind == TMDL_NODE_OBJECT || n->kind == TMDL_NODE_REF) && kw_eq(n->type, "table");
}

/* Objects that only exist inside a table. */
static bool needs_table_parent(const tmdl_node *n)
{
	static const char *const kinds[] = { "column", "measure", "partition", "hierarchy", NULL };
	if (n->kind != TMDL_NODE_OBJECT)
		return false;
	for (const char *const *k = kinds; *k; k++)
		if (kw_eq(n->type, *k))
			return true;
	return false;
}

static int check_duplicates(const tmdl_node *node, char *err);

/* Nodes are checked for duplicate children when they are complete (popped), while they are
 * still in the cache; the root, whose children come from every document, after merging. */
static int parse_document(const doc *d)
{
	tmdl_node *stack[PB_TMDL_MAX_DEPTH + 2];
	long sdepth[PB_TMDL_MAX_DEPTH + 2];
	int top = 0, rc = PB_OK;
	size_t pos = 0;
	int no = 0;
	sbuf desc;
	bool have_desc = false;
	size_t desc_depth = 0;
	int desc_line = 0;
	line l;

	sbuf_init(&desc, d->len + 1);
	if (d->len >= 3 && !memcmp(d->text, "\xEF\xBB\xBF", 3))
		pos = 3;
	if ((rc = check_encoding(d, pos)))
		goto out;
	stack[0] = &d->pv->root;
	sdepth[0] = -1;
	while (get_line(d, pos, no + 1, &l)) {
		pos = l.next;
		no = l.no;
		if (all_blank(l.s, l.n))
			continue;
		size_t tabs = count_tabs(l.s, l.n);
		const char *rest = l.s + tabs;
		size_t rn = l.n - tabs;
		if (rest[0] == ' ') {
			rc = syntax_error(d->err, d->file, no, "indentation must use tabs, not spaces");
			goto out;
		}
		if (tabs > PB_TMDL_MAX_DEPTH) {
			rc = syntax_error(d->err, d->file, no, "nested deeper than %d levels", PB_TMDL_MAX_DEPTH);
			goto out;
		}
		if (rn >= 3 && !memcmp(rest, "///", 3)) {
			if (have_desc && desc_depth != tabs) {
				rc = syntax_error(d->err, d->file, no, "description lines at different indentation");
				goto out;
			}
			const char *s = rest + 3, *e = rest + rn;
			if (s < e && *s == ' ')
				s++;
			if ((have_desc && sbuf_addc(&desc, '\n')) || sbuf_add(&desc, s, (size_t)(e - s))) {
				rc = mem_error(d->pv, d->err, d->file, no);
				goto out;
			}
			if (!have_desc)
				desc_line = no;
			have_desc = true;
			desc_depth = tabs;
			continue;
		}
		while (sdepth[top] >= (long)tabs) {
			if (top > 0 && (rc = check_duplicates(stack[top], d->err)))
				goto out;
			top--;
		}
		if (sdepth[top] != (long)tabs - 1) {
			rc = syntax_error(d->err, d->file, no, "unexpected indentation: %zu tabs where at most %ld are allowed",
					  tabs, sdepth[top] + 1);
			goto out;
		}
		tmdl_node *parent = stack[top];
		if (parent->kind == TMDL_NODE_PROPERTY) {
			rc = syntax_error(d->err, d->file, no, "unexpected indentation: property '%s' (line %d) cannot have nested lines",
					  parent->type, parent->line);
			goto out;
		}
		tmdl_node *n = NULL;
		if ((rc = parse_line(d, rest, rn, tabs, no, &pos, &no, &n)))
			goto out;
		if (needs_table_parent(n) && !is_table_node(parent)) {
			rc = syntax_error(d->err, d->file, n->line, "%s '%s' is outside a table", n->type, n->name);
			goto out;
		}
		n->first_line = have_desc ? desc_line : n->line;
		if (have_desc) {
			if (desc_depth != tabs) {
				rc = syntax_error(d->err, d->file, desc_line,
						  "description (///) is not followed by a declaration at the same indentation");
				goto out;
			}
			n->description = arena_strndup(d->pv, sbuf_str(&desc), desc.len);
			if (!n->description) {
				rc = mem_error(d->pv, d->err, d->file, no);
				goto out;
			}
			sbuf_reset(&desc);
			have_desc = false;
		}
		append_child(parent, n);
		stack[++top] = n;
		sdepth[top] = (long)tabs;
		/* no: the node's last line (past any body parse_line read); it ends its ancestors too */
		for (int i = 1; i <= top; i++)
			stack[i]->last_line = no;
	}
	if (have_desc)
		rc = syntax_error(d->err, d->file, desc_line, "description (///) is not followed by a declaration");
	for (; !rc && top > 0; top--)
		rc = check_duplicates(stack[top], d->err);
out:
	sbuf_release(&desc);
	return rc;
}

/* ---- public: building ---- */

tmdl_model *tmdl_model_new(void)
{
	tmdl_model *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->priv = calloc(1, sizeof *m->priv);
	if (!m->priv) {
		free(m);
		return NULL;
	}
	m->priv->root.kind = TMDL_NODE_ROOT;
	m->priv->root.type = "";
	m->priv->root.file = "";
	return m;
}

void tmdl_model_free(tmdl_model *m)
{
	if (!m)
		return;
	if (m->priv) {
		arena_chunk *c = m->priv->chunks;
		while (c) {
			arena_chunk *next = c->next;
			free(c);
			c = next;
		}
		free(m->priv);
	}
	free(m);
}

int tmdl_parse_buffer(tmdl_model *m, const char *name, const char *text, size_t len, char *err)
{
	if (!name)
		name = "(buffer)";
	if (!m || !m->priv || (!text && len))
		return pb_err(err, PB_EINTERNAL, "%s:1: tmdl_parse_buffer: bad arguments", name);
	struct tmdl_priv *pv = m->priv;
	if (pv->failed || m->finished)
		return pb_err(err, PB_EINTERNAL, "%s:1: model is %s", name,
			      m->finished ? "already finished" : "unusable after an earlier error");
	if (len > PB_TMDL_MAX_FILE_BYTES) {
		pv->failed = true;
		return pb_err(err, PB_ELIMIT, "%s:1: file is larger than %u bytes", name, PB_TMDL_MAX_FILE_BYTES);
	}
	if (m->n_documents >= PB_TMDL_MAX_FILES) {
		pv->failed = true;
		return pb_err(err, PB_ELIMIT, "%s:1: more than %d documents", name, PB_TMDL_MAX_FILES);
	}
	doc d = { .pv = pv, .text = text ? text : "", .len = len, .err = err };
	d.file = arena_strndup(pv, name, strlen(name));
	if (!d.file) {
		pv->failed = true;
		return mem_error(pv, err, name, 1);
	}
	int rc = parse_document(&d);
	if (rc)
		pv->failed = true;
	else
		m->n_documents++;
	return rc;
}

/* ---- layer 2: merge, check, extract ---- */

typedef struct keyed {
	tmdl_node *node;
	size_t idx;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
	const keyed *x = a, *y = b;
	int c = strcasecmp(x->node->type, y->node->type);
	if (c)
		return c;
	if (!x->node->name || !y->node->name) {
		c = (x->node->name != NULL) - (y->node->name != NULL);
	} else {
		c = strcasecmp(x->node->name, y->node->name);
	}
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool same_key(const tmdl_node *a, const tmdl_node *b)
{
	if (!str_ieq(a->type, b->type))
		return false;
	if (!a->name || !b->name)
		return a->name == b->name;
	return str_ieq(a->name, b->name);
}

/* A property line: `k: v`, `k = expr`, or a bare flag without children. */
static bool is_prop(const tmdl_node *n)
{
	return n->kind == TMDL_NODE_PROPERTY || n->kind == TMDL_NODE_EXPRESSION ||
	       (n->kind == TMDL_NODE_BARE && !n->first_child);
}

/* A child that must be unique in its parent: a named object or a struct block. */
static bool is_keyed_child(const tmdl_node *n)
{
	return (n->kind == TMDL_NODE_OBJECT && n->name) || (n->kind == TMDL_NODE_BARE && n->first_child);
}

static void describe(const tmdl_node *n, char *buf, size_t size)
{
	if (n->kind == TMDL_NODE_ROOT) {
		if (xsnprintf(buf, size, "the model"))
			buf[0] = '\0';
	} else if (n->name) {
		if (xsnprintf(buf, size, "%s '%s'", n->type, n->name))
			xsnprintf(buf, size, "%s", n->type);
	} else if (xsnprintf(buf, size, "%s", n->type)) {
		buf[0] = '\0';
	}
}

static int duplicate_error(char *err, const tmdl_node *first, const tmdl_node *dup, const char *what)
{
	char where[160], obj[160];
	describe(dup->parent, where, sizeof where);
	describe(dup, obj, sizeof obj);
	return syntax_error(err, dup->file, dup->line, "duplicate %s %s in %s (first declared at %s:%d)",
			    what, obj, where, first->file, first->line);
}

/* Folds a later partial declaration src into dst (properties are checked beforehand by
 * check_group_properties). */
static int merge_into(tmdl_node *dst, tmdl_node *src, char *err)
{
	if (src->value) {
		if (dst->value) {
			char obj[160];
			describe(src, obj, sizeof obj);
			return syntax_error(err, src->file, src->line, "duplicate %s (first declared at %s:%d)",
					    obj, dst->file, dst->line);
		}
		dst->value = src->value;
		dst->fenced = src->fenced;
	}
	if (!dst->description)
		dst->description = src->description;
	tmdl_node *c = src->first_child;
	while (c) {
		tmdl_node *next = c->next;
		append_child(dst, c);
		c = next;
	}
	src->first_child = src->last_child = NULL;
	return PB_OK;
}

typedef struct decl_prop {
	const tmdl_node *node;
	size_t decl, order;
} decl_prop;

static int cmp_decl_prop(const void *a, const void *b)
{
	const decl_prop *x = a, *y = b;
	int c = strcasecmp(x->node->type, y->node->type);
	if (c)
		return c;
	if (x->decl != y->decl)
		return x->decl < y->decl ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* A property may repeat inside one declaration (associatedColumn), but two partial
 * declarations of one object must not both set it. Sorting keeps this n log n. */
static int check_group_properties(const keyed *group, size_t ndecl, char *err)
{
	size_t n = 0, k = 0;
	int rc = PB_OK;
	for (size_t d = 0; d < ndecl; d++)
		for (const tmdl_node *c = group[d].node->first_child; c; c = c->next)
			n += is_prop(c);
	if (n < 2)
		return PB_OK;
	decl_prop *props = malloc(n * sizeof *props);
	if (!props)
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t d = 0; d < ndecl; d++)
		for (const tmdl_node *c = group[d].node->first_child; c; c = c->next)
			if (is_prop(c)) {
				props[k] = (decl_prop){ c, d, k };
				k++;
			}
	qsort(props, k, sizeof *props, cmp_decl_prop);
	for (size_t i = 1, first = 0; i < k; i++) {
		if (!str_ieq(props[i].node->type, props[first].node->type)) {
			first = i;
			continue;
		}
		if (props[i].decl != props[first].decl) {
			const tmdl_node *dst = group[0].node, *c = props[i].node, *o = props[first].node;
			rc = syntax_error(err, c->file, c->line, "duplicate property '%s' of %s '%s' (first set at %s:%d)",
					  c->type, dst->type, dst->name ? dst->name : "", o->file, o->line);
			break;
		}
	}
	free(props);
	return rc;
}

static size_t count_children(const tmdl_node *n)
{
	size_t k = 0;
	for (const tmdl_node *c = n->first_child; c; c = c->next)
		k++;
	return k;
}

/* Partial declarations: top-level objects with one (type, name) become one node, at the
 * position of the first declaration. */
static int merge_top_level(tmdl_node *root, char *err)
{
	size_t n = count_children(root), k = 0;
	int rc = PB_OK;
	keyed *items = NULL;
	bool *drop = NULL;
	if (!n)
		return PB_OK;
	items = malloc(n * sizeof *items);
	drop = calloc(n, sizeof *drop);
	if (!items || !drop) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	size_t idx = 0;
	for (tmdl_node *c = root->first_child; c; c = c->next, idx++) {
		if (c->kind == TMDL_NODE_REF && c->first_child)
			c->kind = TMDL_NODE_OBJECT;  /* `ref table X` + children: a partial declaration */
		if (c->kind == TMDL_NODE_OBJECT || c->kind == TMDL_NODE_BARE)
			items[k++] = (keyed){ c, idx };
	}
	qsort(items, k, sizeof *items, cmp_keyed);
	for (size_t i = 0; i < k;) {
		size_t j = i + 1;
		while (j < k && same_key(items[i].node, items[j].node))
			j++;
		if (j - i > 1 && (rc = check_group_properties(items + i, j - i, err)))
			goto out;
		for (size_t g = i + 1; g < j; g++) {
			if ((rc = merge_into(items[i].node, items[g].node, err)))
				goto out;
			drop[items[g].idx] = true;
		}
		/* each declaration's own children were checked when it was read */
		if (j - i > 1 && (rc = check_duplicates(items[i].node, err)))
			goto out;
		i = j;
	}
	tmdl_node *c = root->first_child;
	root->first_child = root->last_child = NULL;
	for (idx = 0; c; idx++) {
		tmdl_node *next = c->next;
		if (!drop[idx])
			append_child(root, c);
		c = next;
	}
out:
	free(items);
	free(drop);
	return rc;
}

/* No two named children (or struct blocks) of node share a (type, name); not recursive (see
 * parse_document). A few are compared pair by pair; more are sorted. */
#define DUP_PAIRWISE 8
static int check_duplicates(const tmdl_node *node, char *err)
{
	size_t n = 0, k = 0;
	int rc = PB_OK;
	keyed *items = NULL;
	const tmdl_node *few[DUP_PAIRWISE];
	for (const tmdl_node *c = node->first_child; c; c = c->next)
		if (is_keyed_child(c)) {
			if (n < DUP_PAIRWISE)
				few[n] = c;
			n++;
		}
	if (n > 1 && n <= DUP_PAIRWISE) {
		/* document order: the first later child that repeats an earlier one is reported */
		for (size_t j = 1; j < n; j++)
			for (size_t i = 0; i < j; i++)
				if ((few[i]->type[0] | 0x20) == (few[j]->type[0] | 0x20) && same_key(few[i], few[j]))
					return duplicate_error(err, few[i], few[j],
							       few[j]->kind == TMDL_NODE_BARE ? "block" : "declaration of");
	} else if (n > 1) {
		items = malloc(n * sizeof *items);
		if (!items)
			return pb_err(err, PB_ENOMEM, "out of memory");
		for (tmdl_node *c = node->first_child; c; c = c->next)
			if (is_keyed_child(c)) {
				items[k] = (keyed){ c, k };
				k++;
			}
		qsort(items, k, sizeof *items, cmp_keyed);
		const keyed *worst = NULL;  /* report the earliest duplicate in document order */
		for (size_t i = 1; i < k; i++)
			if (same_key(items[i - 1].node, items[i].node) && (!worst || items[i].idx < worst->idx))
				worst = &items[i];
		if (worst) {
			const keyed *first = worst;
			while (first > items && same_key((first - 1)->node, worst->node))
				first--;
			rc = duplicate_error(err, first->node, worst->node,
					     worst->node->kind == TMDL_NODE_BARE ? "block" : "declaration of");
			goto out;
		}
	}
out:
	free(items);
	return rc;
}

/* -- property access on a node -- */

/* The first letters are compared first: most children are other properties. */
static const tmdl_node *find_prop(const tmdl_node *n, const char *type)
{
	unsigned char first = (unsigned char)(type[0] | 0x20);
	for (const tmdl_node *c = n->first_child; c; c = c->next)
		if ((unsigned char)(c->type[0] | 0x20) == first && is_prop(c) && str_ieq(c->type, type))
			return c;
	return NULL;
}

/* find_prop for several names in one pass: out[i] is the first property named names[i]
 * (NULL-terminated list), or NULL. */
static void find_props(const tmdl_node *n, const char *const *names, const tmdl_node **out)
{
	size_t k = 0;
	while (names[k])
		out[k++] = NULL;
	for (const tmdl_node *c = n->first_child; c; c = c->next) {
		if (!is_prop(c))
			continue;
		unsigned char first = (unsigned char)(c->type[0] | 0x20), second = (unsigned char)(c->type[1] | 0x20);
		for (size_t i = 0; i < k; i++)
			if (!out[i] && (unsigned char)(names[i][0] | 0x20) == first &&
			    (unsigned char)(names[i][1] | 0x20) == second && str_ieq(c->type, names[i])) {
				out[i] = c;
				break;
			}
	}
}

static const char *value_of(const tmdl_node *p)
{
	return p && p->kind != TMDL_NODE_BARE ? p->value : NULL;
}

static const char *prop_str(const tmdl_node *n, const char *type)
{
	return value_of(find_prop(n, type));
}

/* A boolean property found as p (NULL: absent, dflt). */
static int bool_of(const tmdl_node *p, bool dflt, bool *out, char *err)
{
	*out = dflt;
	if (!p)
		return PB_OK;
	if (p->kind == TMDL_NODE_BARE || str_ieq(p->value, "true")) {
		*out = true;
		return PB_OK;
	}
	if (str_ieq(p->value, "false")) {
		*out = false;
		return PB_OK;
	}
	return syntax_error(err, p->file, p->line, "%s: expected true or false, found '%s'", p->type,
			    p->value ? p->value : "");
}

static int prop_bool(const tmdl_node *n, const char *type, bool dflt, bool *out, char *err)
{
	return bool_of(find_prop(n, type), dflt, out, err);
}

/* 'Quoted name' -> Quoted name; anything else as written. */
static const char *unquote_ref(struct tmdl_priv *pv, const char *v)
{
	if (!v || v[0] != '\'')
		return v;
	const char *name, *end;
	const char *e = v + strlen(v);
	doc d = { .pv = pv, .file = "", .err = NULL };
	if (scan_name(&d, 0, v, e, "", &name, &end) || skip_blanks(end, e) != e)
		return v;
	return name;
}

/* `Table.Column` with either part quoted. */
static int split_ref(struct tmdl_priv *pv, const tmdl_node *p, const char **table, const char **column, char *err)
{
	const char *v = p->value, *e, *q;
	doc d = { .pv = pv, .file = p->file, .err = err };
	if (!v || !*v)
		return syntax_error(err, p->file, p->line, "%s: expected Table.Column", p->type);
	e = v + strlen(v);
	int rc = scan_name(&d, p->line, v, e, ".", table, &q);
	if (rc)
		return rc;
	if (q >= e || *q != '.')
		return syntax_error(err, p->file, p->line, "%s: expected Table.Column, found '%s'", p->type, v);
	if ((rc = scan_name(&d, p->line, q + 1, e, "", column, &q)))
		return rc;
	if (skip_blanks(q, e) != e)
		return syntax_error(err, p->file, p->line, "%s: unexpected text after the column in '%s'", p->type, v);
	return PB_OK;
}

static size_t count_objects(const tmdl_node *n, const char *type)
{
	size_t k = 0;
	for (const tmdl_node *c = n->first_child; c; c = c->next)
		if (c->kind == TMDL_NODE_OBJECT && kw_eq(c->type, type))
			k++;
	return k;
}

static int extract_annotations(struct tmdl_priv *pv, const tmdl_node *n, tmdl_annotation **out, size_t *count)
{
	size_t k = count_objects(n, "annotation");
	*out = NULL;
	*count = 0;
	if (!k)
		return PB_OK;
	*out = arena_alloc(pv, k * sizeof **out);
	if (!*out)
		return PB_ENOMEM;
	for (const tmdl_node *c = n->first_child; c; c = c->next)
		if (c->kind == TMDL_NODE_OBJECT && kw_eq(c->type, "annotation"))
			(*out)[(*count)++] = (tmdl_annotation){ c->name, c->value ? c->value : "" };
	return PB_OK;
}

#define TRY(expr) do { if ((rc = (expr))) goto out; } while (0)

/* A column's properties, read in one pass (models have thousands of columns). */
enum { COL_DATA_TYPE, COL_SOURCE, COL_FORMAT, COL_SUMMARIZE, COL_LINEAGE, COL_FOLDER, COL_SORT_BY,
       COL_EXPRESSION, COL_HIDDEN, COL_KEY, COL_NULLABLE, COL_PROPS };
static const char *const COLUMN_PROPS[COL_PROPS + 1] = { "dataType", "sourceColumn", "formatString",
	"summarizeBy", "lineageTag", "displayFolder", "sortByColumn", "expression", "isHidden", "isKey",
	"isNullable", NULL };

static int extract_column(struct tmdl_priv *pv, const tmdl_node *n, tmdl_column *c, char *err)
{
	int rc = PB_OK;
	const tmdl_node *p[COL_PROPS];
	find_props(n, COLUMN_PROPS, p);
	c->node = n;
	c->name = n->name;
	c->description = n->description;
	c->data_type = canon(value_of(p[COL_DATA_TYPE]), DATA_TYPES);
	c->source_column = value_of(p[COL_SOURCE]);
	c->format_string = value_of(p[COL_FORMAT]);
	c->summarize_by = canon(value_of(p[COL_SUMMARIZE]), SUMMARIZE_BY);
	c->lineage_tag = value_of(p[COL_LINEAGE]);
	c->display_folder = value_of(p[COL_FOLDER]);
	c->sort_by_column = unquote_ref(pv, value_of(p[COL_SORT_BY]));
	c->expression = n->value ? n->value : value_of(p[COL_EXPRESSION]);
	TRY(bool_of(p[COL_HIDDEN], false, &c->is_hidden, err));
	TRY(bool_of(p[COL_KEY], false, &c->is_key, err));
	TRY(bool_of(p[COL_NULLABLE], true, &c->is_nullable, err));
	TRY(extract_annotations(pv, n, &c->annotations, &c->n_annotations));
out:
	return rc;
}

static int extract_measure(struct tmdl_priv *pv, const tmdl_node *n, tmdl_measure *ms, char *err)
{
	int rc = PB_OK;
	ms->node = n;
	ms->name = n->name;
	ms->description = n->description;
	ms->expression = n->value ? n->value : (prop_str(n, "expression") ? prop_str(n, "expression") : "");
	ms->format_string = prop_str(n, "formatString");
	ms->display_folder = prop_str(n, "displayFolder");
	ms->lineage_tag = prop_str(n, "lineageTag");
	TRY(prop_bool(n, "isHidden", false, &ms->is_hidden, err));
	TRY(extract_annotations(pv, n, &ms->annotations, &ms->n_annotations));
out:
	return rc;
}

static void extract_partition(struct tmdl_priv *pv, const tmdl_node *n, tmdl_partition *p)
{
	p->node = n;
	p->name = n->name;
	p->source_type = canon(n->value, SOURCE_TYPES);
	p->mode = canon(prop_str(n, "mode"), MODES);
	for (const tmdl_node *s = n->first_child; s; s = s->next) {
		if (!str_ieq(s->type, "source"))
			continue;
		if (s->kind == TMDL_NODE_EXPRESSION) {
			p->source = s->value;
		} else if (s->kind == TMDL_NODE_BARE) {
			/* struct source: entity (Direct Lake) or query (legacy provider) */
			p->entity_name = prop_str(s, "entityName");
			p->schema_name = prop_str(s, "schemaName");
			p->expression_source = unquote_ref(pv, prop_str(s, "expressionSource"));
			p->data_source = unquote_ref(pv, prop_str(s, "dataSource"));
			p->source = prop_str(s, "query");
		}
		break;
	}
}

static int extract_table(struct tmdl_priv *pv, const tmdl_node *n, tmdl_table *t, char *err)
{
	int rc = PB_OK;
	const tmdl_node *lineage = NULL, *hidden = NULL;
	size_t nc = 0, nm = 0, np = 0;
	t->node = n;
	t->name = n->name;
	t->description = n->description;
	/* one pass over the table's children: its members lie between them, far apart */
	for (const tmdl_node *c = n->first_child; c; c = c->next) {
		if (is_prop(c)) {
			if (!lineage && kw_eq(c->type, "lineageTag"))
				lineage = c;
			else if (!hidden && kw_eq(c->type, "isHidden"))
				hidden = c;
		} else if (c->kind == TMDL_NODE_OBJECT) {
			bool col = kw_eq(c->type, "column"), ms = !col && kw_eq(c->type, "measure");
			bool part = !col && !ms && kw_eq(c->type, "partition");
			nc += col;
			nm += ms;
			np += part;
			t->n_hierarchies += kw_eq(c->type, "hierarchy");
			t->n_other_members += !col && !ms && !part && c->name && !kw_eq(c->type, "annotation") &&
					      !kw_eq(c->type, "extendedProperty");
		}
	}
	t->lineage_tag = value_of(lineage);
	TRY(bool_of(hidden, false, &t->is_hidden, err));
	if ((nc && !(t->columns = arena_alloc(pv, nc * sizeof *t->columns))) ||
	    (nm && !(t->measures = arena_alloc(pv, nm * sizeof *t->measures))) ||
	    (np && !(t->partitions = arena_alloc(pv, np * sizeof *t->partitions)))) {
		rc = PB_ENOMEM;
		goto out;
	}
	for (const tmdl_node *c = n->first_child; c; c = c->next) {
		if (c->kind == TMDL_NODE_BARE && kw_eq(c->type, "calculationGroup"))
			t->is_calculation_group = true;
		if (c->kind != TMDL_NODE_OBJECT)
			continue;
		if (kw_eq(c->type, "column"))
			TRY(extract_column(pv, c, &t->columns[t->n_columns++], err));
		else if (kw_eq(c->type, "measure"))
			TRY(extract_measure(pv, c, &t->measures[t->n_measures++], err));
		else if (kw_eq(c->type, "partition"))
			extract_partition(pv, c, &t->partitions[t->n_partitions++]);
	}
	TRY(extract_annotations(pv, n, &t->annotations, &t->n_annotations));
out:
	return rc;
}

static int extract_relationship(struct tmdl_priv *pv, const tmdl_node *n, tmdl_relationship *r, char *err)
{
	int rc = PB_OK;
	r->node = n;
	r->name = n->name;
	const tmdl_node *from = find_prop(n, "fromColumn"), *to = find_prop(n, "toColumn");
	if (!from || !to)
		return syntax_error(err, n->file, n->line, "relationship '%s' has no %s", n->name,
				    !from ? "fromColumn" : "toColumn");
	TRY(split_ref(pv, from, &r->from_table, &r->from_column, err));
	TRY(split_ref(pv, to, &r->to_table, &r->to_column, err));
	r->from_cardinality = canon(prop_str(n, "fromCardinality"), CARDINALITIES);
	r->to_cardinality = canon(prop_str(n, "toCardinality"), CARDINALITIES);
	r->cross_filtering_behavior = canon(prop_str(n, "crossFilteringBehavior"), CROSS_FILTERING);
	if (!r->from_cardinality)
		r->from_cardinality = "many";
	if (!r->to_cardinality)
		r->to_cardinality = "one";
	if (!r->cross_filtering_behavior)
		r->cross_filtering_behavior = "oneDirection";
	TRY(prop_bool(n, "isActive", true, &r->is_active, err));
out:
	return rc;
}

static int extract_expression(struct tmdl_priv *pv, const tmdl_node *n, tmdl_expression *x)
{
	x->node = n;
	x->name = n->name;
	x->value = n->value ? n->value : "";
	x->description = n->description;
	x->lineage_tag = prop_str(n, "lineageTag");
	x->query_group = unquote_ref(pv, prop_str(n, "queryGroup"));
	return extract_annotations(pv, n, &x->annotations, &x->n_annotations);
}

static int cmp_table_name(const void *a, const void *b)
{
	return strcasecmp(((const tmdl_table *const *)a)[0]->name, ((const tmdl_table *const *)b)[0]->name);
}

/* Tables in `ref table` order, then the others in declaration order. Names are unique
 * (case-insensitively) after merging, so a sorted index finds each ref's table. */
static int order_tables(tmdl_model *m, const tmdl_node *const *refs, size_t nrefs)
{
	struct tmdl_priv *pv = m->priv;
	int rc = PB_OK;
	if (!nrefs || m->n_tables < 2)
		return PB_OK;
	tmdl_table *sorted = arena_alloc(pv, m->n_tables * sizeof *sorted);
	bool *placed = calloc(m->n_tables, sizeof *placed);
	tmdl_table **index = malloc(m->n_tables * sizeof *index);
	if (!sorted || !placed || !index) {
		rc = PB_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->n_tables; i++)
		index[i] = &m->tables[i];
	qsort(index, m->n_tables, sizeof *index, cmp_table_name);
	size_t k = 0;
	for (size_t r = 0; r < nrefs; r++) {
		tmdl_table key = { .name = refs[r]->name }, *kp = &key;
		tmdl_table **hit = bsearch(&kp, index, m->n_tables, sizeof *index, cmp_table_name);
		if (!hit)
			continue;  /* a ref whose table is missing is ignored */
		size_t i = (size_t)(*hit - m->tables);
		if (!placed[i]) {
			placed[i] = true;
			sorted[k++] = m->tables[i];
		}
	}
	for (size_t i = 0; i < m->n_tables; i++)
		if (!placed[i])
			sorted[k++] = m->tables[i];
	m->tables = sorted;
out:
	free(placed);
	free(index);
	return rc;
}

static int extract_model(tmdl_model *m, char *err)
{
	struct tmdl_priv *pv = m->priv;
	const tmdl_node *root = &pv->root, *model = NULL;
	const tmdl_node **refs = NULL;
	size_t nt = 0, nr = 0, nx = 0, na = 0, nrefs = 0;
	int rc = PB_OK;
	for (const tmdl_node *c = root->first_child; c; c = c->next) {
		if (c->kind == TMDL_NODE_REF && str_ieq(c->type, "table"))
			nrefs++;
		if (c->kind != TMDL_NODE_OBJECT)
			continue;
		if (str_ieq(c->type, "table"))
			nt++;
		else if (str_ieq(c->type, "relationship"))
			nr++;
		else if (str_ieq(c->type, "expression"))
			nx++;
		else if (str_ieq(c->type, "annotation"))
			na++;
		else if (str_ieq(c->type, "model") && !model)
			model = c;
	}
	if (model)
		na += count_objects(model, "annotation");
	if ((nt && !(m->tables = arena_alloc(pv, nt * sizeof *m->tables))) ||
	    (nr && !(m->relationships = arena_alloc(pv, nr * sizeof *m->relationships))) ||
	    (nx && !(m->expressions = arena_alloc(pv, nx * sizeof *m->expressions))) ||
	    (na && !(m->annotations = arena_alloc(pv, na * sizeof *m->annotations))) ||
	    (nrefs && !(refs = arena_alloc(pv, nrefs * sizeof *refs)))) {
		rc = PB_ENOMEM;
		goto out;
	}
	nrefs = 0;
	if (model) {
		m->name = model->name;
		m->culture = prop_str(model, "culture");
		for (const tmdl_node *c = model->first_child; c; c = c->next)
			if (c->kind == TMDL_NODE_OBJECT && str_ieq(c->type, "annotation"))
				m->annotations[m->n_annotations++] = (tmdl_annotation){ c->name, c->value ? c->value : "" };
	}
	for (const tmdl_node *c = root->first_child; c; c = c->next) {
		if (c->kind == TMDL_NODE_REF && str_ieq(c->type, "table"))
			refs[nrefs++] = c;
		if (c->kind != TMDL_NODE_OBJECT)
			continue;
		if (str_ieq(c->type, "table"))
			TRY(extract_table(pv, c, &m->tables[m->n_tables++], err));
		else if (str_ieq(c->type, "relationship"))
			TRY(extract_relationship(pv, c, &m->relationships[m->n_relationships++], err));
		else if (str_ieq(c->type, "expression"))
			TRY(extract_expression(pv, c, &m->expressions[m->n_expressions++]));
		else if (str_ieq(c->type, "annotation"))
			m->annotations[m->n_annotations++] = (tmdl_annotation){ c->name, c->value ? c->value : "" };
	}
	TRY(order_tables(m, refs, nrefs));
out:
	if (rc == PB_ENOMEM)
		rc = mem_error(pv, err, root->first_child ? root->first_child->file : "", 1);
	return rc;
}

int tmdl_model_finish(tmdl_model *m, char *err)
{
	if (!m || !m->priv)
		return pb_err(err, PB_EINTERNAL, "tmdl_model_finish: no model");
	struct tmdl_priv *pv = m->priv;
	if (pv->failed || m->finished)
		return pb_err(err, PB_EINTERNAL, "tmdl_model_finish: model is %s",
			      m->finished ? "already finished" : "unusable after an earlier error");
	int rc = merge_top_level(&pv->root, err);
	if (!rc)
		rc = extract_model(m, err);
	if (rc)
		pv->failed = true;
	else
		m->finished = true;
	return rc;
}

/* ---- files and folders ---- */

typedef struct path_list {
	char **items;
	size_t n, cap;
} path_list;

static void path_list_release(path_list *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		free(pl->items[i]);
	free(pl->items);
	pl->items = NULL;
	pl->n = pl->cap = 0;
}

static bool has_tmdl_suffix(const char *name)
{
	size_t n = strlen(name);
	return n > 5 && strcasecmp(name + n - 5, ".tmdl") == 0;
}

static int collect_files(const char *dir, int depth, path_list *pl, char *err)
{
	int rc = PB_OK;
	char *path = NULL;
	DIR *dh = NULL;
	if (depth > PB_TMDL_MAX_DIR_DEPTH)
		return pb_err(err, PB_ELIMIT, "%s: folders nested deeper than %d levels", dir, PB_TMDL_MAX_DIR_DEPTH);
	dh = opendir(dir);
	if (!dh)
		return pb_err(err, PB_EIO, "%s: %s", dir, strerror(errno));
	struct dirent *de;
	while ((de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;  /* ., .., and hidden entries such as .pbi/ */
		size_t need = strlen(dir) + strlen(de->d_name) + 2;
		free(path);
		path = malloc(need);
		if (!path) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		if (xsnprintf(path, need, "%s/%s", dir, de->d_name)) {
			rc = pb_err(err, PB_EINTERNAL, "%s: path too long", dir);
			goto out;
		}
		struct stat st;
		if (stat(path, &st))
			continue;  /* dangling link: not a model file */
		if (S_ISDIR(st.st_mode)) {
			if ((rc = collect_files(path, depth + 1, pl, err)))
				goto out;
		} else if (S_ISREG(st.st_mode) && has_tmdl_suffix(de->d_name)) {
			if (pl->n >= PB_TMDL_MAX_FILES) {
				rc = pb_err(err, PB_ELIMIT, "%s: more than %d .tmdl files", dir, PB_TMDL_MAX_FILES);
				goto out;
			}
			if (pl->n == pl->cap) {
				size_t cap = pl->cap ? pl->cap * 2 : 64;
				char **p = realloc(pl->items, cap * sizeof *p);
				if (!p) {
					rc = pb_err(err, PB_ENOMEM, "out of memory");
					goto out;
				}
				pl->items = p;
				pl->cap = cap;
			}
			pl->items[pl->n++] = path;
			path = NULL;
		}
	}
out:
	free(path);
	closedir(dh);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_file(tmdl_model *m, const char *path, char *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc = read_file(path, PB_TMDL_MAX_FILE_BYTES, &text, &len, err);
	if (rc == PB_ELIMIT)
		rc = pb_err(err, PB_ELIMIT, "%s:1: file is larger than %u bytes", path, PB_TMDL_MAX_FILE_BYTES);
	if (!rc)
		rc = tmdl_parse_buffer(m, path, text, len, err);
	free(text);
	return rc;
}

int tmdl_parse_path(const char *path, tmdl_model **out, char *err)
{
	tmdl_model *m = NULL;
	path_list pl = { 0 };
	char *def = NULL;
	int rc = PB_OK;
	struct stat st;
	*out = NULL;
	if (!path || stat(path, &st))
		return pb_err(err, PB_ENOTFOUND, "%s: %s", path ? path : "(null)", path ? strerror(errno) : "no path");
	m = tmdl_model_new();
	if (!m)
		return pb_err(err, PB_ENOMEM, "out of memory");
	if (S_ISDIR(st.st_mode)) {
		size_t need = strlen(path) + sizeof "/definition";
		def = malloc(need);
		if (!def || xsnprintf(def, need, "%s/definition", path)) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		const char *base = (!stat(def, &st) && S_ISDIR(st.st_mode)) ? def : path;
		if ((rc = collect_files(base, 0, &pl, err)))
			goto out;
		if (!pl.n) {
			rc = pb_err(err, PB_EINVAL, "%s: no .tmdl files found", base);
			goto out;
		}
		qsort(pl.items, pl.n, sizeof *pl.items, cmp_str);
		for (size_t i = 0; i < pl.n; i++)
			if ((rc = parse_file(m, pl.items[i], err)))
				goto out;
	} else if ((rc = parse_file(m, path, err))) {
		goto out;
	}
	if ((rc = tmdl_model_finish(m, err)))
		goto out;
	*out = m;
	m = NULL;
out:
	free(def);
	path_list_release(&pl);
	tmdl_model_free(m);
	return rc;
}

/* ---- lookups ---- */

const tmdl_node *tmdl_model_root(const tmdl_model *m)
{
	return m && m->priv ? &m->priv->root : NULL;
}

const tmdl_table *tmdl_model_find_table(const tmdl_model *m, const char *name)
{
	for (size_t i = 0; m && name && i < m->n_tables; i++)
		if (str_ieq(m->tables[i].name, name))
			return &m->tables[i];
	return NULL;
}

const tmdl_column *tmdl_table_find_column(const tmdl_table *t, const char *name)
{
	for (size_t i = 0; t && name && i < t->n_columns; i++)
		if (str_ieq(t->columns[i].name, name))
			return &t->columns[i];
	return NULL;
}

const tmdl_measure *tmdl_table_find_measure(const tmdl_table *t, const char *name)
{
	for (size_t i = 0; t && name && i < t->n_measures; i++)
		if (str_ieq(t->measures[i].name, name))
			return &t->measures[i];
	return NULL;
}

const tmdl_expression *tmdl_model_find_expression(const tmdl_model *m, const char *name)
{
	for (size_t i = 0; m && name && i < m->n_expressions; i++)
		if (str_ieq(m->expressions[i].name, name))
			return &m->expressions[i];
	return NULL;
}

const tmdl_node *tmdl_node_child(const tmdl_node *node, const char *type)
{
	for (const tmdl_node *c = node ? node->first_child : NULL; c && type; c = c->next)
		if (str_ieq(c->type, type))
			return c;
	return NULL;
}

const char *tmdl_node_annotation(const tmdl_node *node, const char *name)
{
	for (const tmdl_node *c = node ? node->first_child : NULL; c && name; c = c->next)
		if (c->kind == TMDL_NODE_OBJECT && (c->type[0] | 0x20) == 'a' && str_ieq(c->type, "annotation") && c->name &&
		    str_ieq(c->name, name))
			return c->value ? c->value : "";
	return NULL;
}

/* ---- JSON ---- */

/* Builders record failure in *ok instead of checking every call. */
static void jset(json_t *obj, const char *key, json_t *v, bool *ok)
{
	if (!v || json_object_set_new(obj, key, v))
		*ok = false;
}

static void jstr(json_t *obj, const char *key, const char *s, bool *ok)
{
	if (s)
		jset(obj, key, json_string(s), ok);
}

static void jappend(json_t *arr, json_t *v, bool *ok)
{
	if (!v || json_array_append_new(arr, v))
		*ok = false;
}

static json_t *annotations_json(const tmdl_annotation *a, size_t n, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		jstr(o, a[i].name, a[i].value, ok);
	return o;
}

static void jwhere(json_t *o, const tmdl_node *n, bool *ok)
{
	jstr(o, "file", n->file, ok);
	jset(o, "line", json_integer(n->line), ok);
}

static json_t *column_json(const tmdl_column *c, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	jstr(o, "name", c->name, ok);
	jstr(o, "dataType", c->data_type, ok);
	jstr(o, "sourceColumn", c->source_column, ok);
	jstr(o, "expression", c->expression, ok);
	jset(o, "isHidden", json_boolean(c->is_hidden), ok);
	jset(o, "isKey", json_boolean(c->is_key), ok);
	jset(o, "isNullable", json_boolean(c->is_nullable), ok);
	jstr(o, "formatString", c->format_string, ok);
	jstr(o, "summarizeBy", c->summarize_by, ok);
	jstr(o, "description", c->description, ok);
	jstr(o, "lineageTag", c->lineage_tag, ok);
	jstr(o, "displayFolder", c->display_folder, ok);
	jstr(o, "sortByColumn", c->sort_by_column, ok);
	jset(o, "annotations", annotations_json(c->annotations, c->n_annotations, ok), ok);
	jwhere(o, c->node, ok);
	return o;
}

static json_t *measure_json(const tmdl_measure *ms, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	jstr(o, "name", ms->name, ok);
	jstr(o, "expression", ms->expression, ok);
	jstr(o, "formatString", ms->format_string, ok);
	jstr(o, "displayFolder", ms->display_folder, ok);
	jstr(o, "description", ms->description, ok);
	jstr(o, "lineageTag", ms->lineage_tag, ok);
	jset(o, "isHidden", json_boolean(ms->is_hidden), ok);
	jset(o, "annotations", annotations_json(ms->annotations, ms->n_annotations, ok), ok);
	jwhere(o, ms->node, ok);
	return o;
}

static json_t *partition_json(const tmdl_partition *p, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	jstr(o, "name", p->name, ok);
	jstr(o, "sourceType", p->source_type, ok);
	jstr(o, "mode", p->mode, ok);
	jstr(o, "source", p->source, ok);
	jstr(o, "entityName", p->entity_name, ok);
	jstr(o, "schemaName", p->schema_name, ok);
	jstr(o, "expressionSource", p->expression_source, ok);
	jstr(o, "dataSource", p->data_source, ok);
	jwhere(o, p->node, ok);
	return o;
}

static json_t *table_json(const tmdl_table *t, bool *ok)
{
	json_t *o = json_object(), *cols = json_array(), *ms = json_array(), *ps = json_array();
	if (!o || !cols || !ms || !ps) {
		json_decref(o);
		json_decref(cols);
		json_decref(ms);
		json_decref(ps);
		*ok = false;
		return NULL;
	}
	jstr(o, "name", t->name, ok);
	jstr(o, "description", t->description, ok);
	jstr(o, "lineageTag", t->lineage_tag, ok);
	jset(o, "isHidden", json_boolean(t->is_hidden), ok);
	jset(o, "isCalculationGroup", json_boolean(t->is_calculation_group), ok);
	jset(o, "hierarchies", json_integer((json_int_t)t->n_hierarchies), ok);
	for (size_t i = 0; i < t->n_columns; i++)
		jappend(cols, column_json(&t->columns[i], ok), ok);
	for (size_t i = 0; i < t->n_measures; i++)
		jappend(ms, measure_json(&t->measures[i], ok), ok);
	for (size_t i = 0; i < t->n_partitions; i++)
		jappend(ps, partition_json(&t->partitions[i], ok), ok);
	jset(o, "columns", cols, ok);
	jset(o, "measures", ms, ok);
	jset(o, "partitions", ps, ok);
	jset(o, "annotations", annotations_json(t->annotations, t->n_annotations, ok), ok);
	jwhere(o, t->node, ok);
	return o;
}

static json_t *relationship_json(const tmdl_relationship *r, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	jstr(o, "name", r->name, ok);
	jstr(o, "fromTable", r->from_table, ok);
	jstr(o, "fromColumn", r->from_column, ok);
	jstr(o, "toTable", r->to_table, ok);
	jstr(o, "toColumn", r->to_column, ok);
	jstr(o, "fromCardinality", r->from_cardinality, ok);
	jstr(o, "toCardinality", r->to_cardinality, ok);
	jset(o, "isActive", json_boolean(r->is_active), ok);
	jstr(o, "crossFilteringBehavior", r->cross_filtering_behavior, ok);
	jwhere(o, r->node, ok);
	return o;
}

static json_t *expression_json(const tmdl_expression *x, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	jstr(o, "name", x->name, ok);
	jstr(o, "value", x->value, ok);
	jstr(o, "description", x->description, ok);
	jstr(o, "lineageTag", x->lineage_tag, ok);
	jstr(o, "queryGroup", x->query_group, ok);
	jset(o, "annotations", annotations_json(x->annotations, x->n_annotations, ok), ok);
	jwhere(o, x->node, ok);
	return o;
}

json_t *tmdl_model_to_json(const tmdl_model *m)
{
	if (!m)
		return NULL;
	bool ok = true;
	json_t *o = json_object(), *ts = json_array(), *rs = json_array(), *xs = json_array();
	if (!o || !ts || !rs || !xs) {
		json_decref(o);
		json_decref(ts);
		json_decref(rs);
		json_decref(xs);
		return NULL;
	}
	jstr(o, "name", m->name, &ok);
	jstr(o, "culture", m->culture, &ok);
	for (size_t i = 0; i < m->n_tables; i++)
		jappend(ts, table_json(&m->tables[i], &ok), &ok);
	for (size_t i = 0; i < m->n_relationships; i++)
		jappend(rs, relationship_json(&m->relationships[i], &ok), &ok);
	for (size_t i = 0; i < m->n_expressions; i++)
		jappend(xs, expression_json(&m->expressions[i], &ok), &ok);
	jset(o, "tables", ts, &ok);
	jset(o, "relationships", rs, &ok);
	jset(o, "expressions", xs, &ok);
	jset(o, "annotations", annotations_json(m->annotations, m->n_annotations, &ok), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static const char *kind_name(tmdl_node_kind k)
{
	switch (k) {
	case TMDL_NODE_ROOT: return "root";
	case TMDL_NODE_OBJECT: return "object";
	case TMDL_NODE_PROPERTY: return "property";
	case TMDL_NODE_EXPRESSION: return "expression";
	case TMDL_NODE_BARE: return "bare";
	case TMDL_NODE_REF: return "ref";
	}
	return "unknown";
}

static json_t *node_json(const tmdl_node *n, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	jstr(o, "kind", kind_name(n->kind), ok);
	jstr(o, "type", n->type, ok);
	jstr(o, "name", n->name, ok);
	jstr(o, "value", n->value, ok);
	if (n->fenced)
		jset(o, "fenced", json_true(), ok);
	jstr(o, "description", n->description, ok);
	if (n->kind != TMDL_NODE_ROOT)
		jwhere(o, n, ok);
	if (n->first_child) {
		json_t *a = json_array();
		if (!a)
			*ok = false;
		for (const tmdl_node *c = n->first_child; c && a; c = c->next)
			jappend(a, node_json(c, ok), ok);
		jset(o, "children", a, ok);
	}
	return o;
}

json_t *tmdl_node_to_json(const tmdl_node *node)
{
	if (!node)
		return NULL;
	bool ok = true;
	json_t *o = node_json(node, &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}
