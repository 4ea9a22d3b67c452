/* Lineage from Power Query M: tokenizer, parser, symbolic evaluator, native SQL
 * table extraction. See core/lang/mlineage.h for what is recognised.
 *
 * Memory: one arena per mlineage_parse() holds tokens, the syntax tree, values and
 * intermediate sources; only the final result is copied out with malloc. The arena
 * has a ceiling (PB_MLINEAGE_MAX_MEMORY), so hostile input fails with PB_ELIMIT. */
#include "core/lang/mlineage.h"

#include <ctype.h>
#include <jansson.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/lang/tmdl.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

/* ---------------------------------------------------------------- arena */

/* Under AddressSanitizer the unused part of a chunk is poisoned, so an overrun of one
 * arena allocation is reported like one of malloc's. */
#if defined(__SANITIZE_ADDRESS__)
#define MLIN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MLIN_ASAN 1
#endif
#endif
#ifdef MLIN_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef struct chunk {
	struct chunk *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
} chunk;

typedef struct ctx {
	chunk *chunks;
	size_t total;          /* bytes taken from malloc */
	int rc;                /* first failure; everything stops once set */
	char *err;
	const char *src;       /* M text being parsed (for line/column) */
	size_t evals;
	int depth;
} ctx;

static int fail(ctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ctx *c, int rc, const char *fmt, ...)
{
	if (c->rc)
		return c->rc;
	char msg[PB_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->rc = pb_err(c->err, rc, "%s", msg);
	return c->rc;
}

static void *aalloc(ctx *c, size_t want)
{
	if (c->rc)
		return NULL;
	size_t n = (want + 15) & ~(size_t)15;
	if (!c->chunks || c->chunks->cap - c->chunks->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		if (c->total + cap > PB_MLINEAGE_MAX_MEMORY) {
			fail(c, PB_ELIMIT, "M expression needs more than %u bytes of working memory",
			     PB_MLINEAGE_MAX_MEMORY);
			return NULL;
		}
		chunk *k = malloc(sizeof *k + cap);
		if (!k) {
			fail(c, PB_ENOMEM, "out of memory reading an M expression");
			return NULL;
		}
		k->next = c->chunks;
		k->used = 0;
		k->cap = cap;
		POISON(k->data, cap);
		c->chunks = k;
		c->total += cap;
	}
	void *p = c->chunks->data + c->chunks->used;
	c->chunks->used += n;
	UNPOISON(p, want);
	memset(p, 0, want);
	return p;
}

static char *astrndup(ctx *c, const char *s, size_t n)
{
	char *p = aalloc(c, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void arena_free(ctx *c)
{
	while (c->chunks) {
		chunk *k = c->chunks;
		c->chunks = k->next;
		UNPOISON(k->data, k->cap);
		free(k);
	}
}

/* A growable array of pointers inside the arena (old storage is abandoned on growth:
 * bounded by the arena ceiling). */
typedef struct pvec {
	void **v;
	size_t n, cap;
} pvec;

static int pvec_push(ctx *c, pvec *p, void *x)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4;
		void **v = aalloc(c, cap * sizeof *v);
		if (!v)
			return c->rc;
		if (p->n)
			memcpy(v, p->v, p->n * sizeof *v);
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = x;
	return PB_OK;
}

/* ---------------------------------------------------------------- tokens */

enum tok_kind { T_EOF, T_IDENT, T_QIDENT, T_STRING, T_NUMBER, T_PUNCT };

typedef struct tok {
	enum tok_kind k;
	const char *text;   /* identifier/keyword/punctuator as written; decoded string value */
	size_t len;         /* length of text (decoded strings may hold NUL-free UTF-8 only) */
	size_t pos;         /* byte offset in the source */
} tok;

static void line_col(const char *s, size_t pos, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < pos && s[i]; i++) {
		if (s[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int fail_at(ctx *c, size_t pos, const char *what)
{
	int line, col;
	line_col(c->src, pos, &line, &col);
	return fail(c, PB_EINVAL, "%d:%d: %s", line, col, what);
}

static bool id_start(unsigned char ch)
{
	return isalpha(ch) || ch == '_' || ch >= 0x80;
}

static bool id_part(unsigned char ch)
{
	return isalnum(ch) || ch == '_' || ch >= 0x80;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static void put_utf8(sbuf *b, unsigned long cp, int *rc)
{
	char u[4];
	size_t n;
	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;   /* NUL would cut the text; surrogates are not text */
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (sbuf_add(b, u, n))
		*rc = -1;
}

/* Decodes one #(...) escape list starting at s[i] == '#', s[i+1] == '('. Returns the
 * index after ')' or 0 when it is not a valid escape (then the text is kept as is). */
static size_t decode_escape(const char *s, size_t i, size_t end, sbuf *b, int *rc)
{
	size_t j = i + 2;
	sbuf tmp;
	sbuf_init(&tmp, 64);
	for (;;) {
		size_t k = j;
		while (k < end && s[k] != ',' && s[k] != ')' && s[k] != '"')
			k++;
		if (k >= end || s[k] == '"')
			goto bad;
		size_t n = k - j;
		if (n == 2 && !memcmp(s + j, "cr", 2)) {
			sbuf_addc(&tmp, '\r');
		} else if (n == 2 && !memcmp(s + j, "lf", 2)) {
			sbuf_addc(&tmp, '\n');
		} else if (n == 3 && !memcmp(s + j, "tab", 3)) {
			sbuf_addc(&tmp, '\t');
		} else if (n == 1 && s[j] == '#') {
			sbuf_addc(&tmp, '#');
		} else if (n == 4 || n == 8) {
			unsigned long cp = 0;
			for (size_t q = j; q < k; q++) {
				int h = hexval(s[q]);
				if (h < 0)
					goto bad;
				cp = cp * 16 + (unsigned long)h;
			}
			put_utf8(&tmp, cp, rc);
		} else {
			goto bad;
		}
		if (s[k] == ')') {
			j = k + 1;
			break;
		}
		j = k + 1;
	}
	if (sbuf_add(b, sbuf_str(&tmp), tmp.len))
		*rc = -1;
	sbuf_release(&tmp);
	return j;
bad:
	sbuf_release(&tmp);
	return 0;
}

/* Reads a "..." literal whose opening quote is at s[*i]; stores the decoded text. */
static int lex_string(ctx *c, const char *s, size_t n, size_t *i, tok *t)
{
	size_t start = *i;
	size_t j = start + 1;
	sbuf b;
	int rc = 0;
	sbuf_init(&b, PB_MLINEAGE_MAX_BYTES);
	for (;;) {
		if (j >= n) {
			sbuf_release(&b);
			return fail_at(c, start, "unterminated text literal");
		}
		if (s[j] == '"') {
			if (j + 1 < n && s[j + 1] == '"') {
				rc |= sbuf_addc(&b, '"');
				j += 2;
				continue;
			}
			j++;
			break;
		}
		if (s[j] == '#' && j + 1 < n && s[j + 1] == '(') {
			size_t after = decode_escape(s, j, n, &b, &rc);
			if (after) {
				j = after;
				continue;
			}
		}
		rc |= sbuf_addc(&b, s[j]);
		j++;
	}
	if (rc) {
		sbuf_release(&b);
		return fail(c, PB_ENOMEM, "out of memory reading a text literal");
	}
	t->k = T_STRING;
	t->len = b.len;
	t->text = astrndup(c, sbuf_str(&b), b.len);
	sbuf_release(&b);
	*i = j;
	return c->rc;
}

static const char *const puncts[] = {
	"...", "=>", "..", "<=", ">=", "<>", "??", "=", "<", ">", "+", "-", "*", "/", "&", "(", ")",
	"[", "]", "{", "}", ",", ";", "?", "@", "!", NULL,
};

/* Bytes of whitespace at s[i] (0 when none): ASCII blanks and line ends, and the
 * Unicode ones M allows (Zs, NEL, line/paragraph separators, a BOM). Power BI leaves
 * no-break spaces between tokens when users paste code. */
static size_t ws_len(const char *s, size_t i, size_t n)
{
	const unsigned char *u = (const unsigned char *)s + i;
	size_t left = n - i;
	if (*u == ' ' || *u == '\t' || *u == '\r' || *u == '\n' || *u == '\f' || *u == '\v')
		return 1;
	if (left >= 2 && u[0] == 0xC2 && (u[1] == 0xA0 || u[1] == 0x85))
		return 2;
	if (left < 3)
		return 0;
	if (u[0] == 0xE2 && u[1] == 0x80 && (u[2] <= 0x8A || u[2] == 0xA8 || u[2] == 0xA9 || u[2] == 0xAF))
		return 3;
	if ((u[0] == 0xE2 && u[1] == 0x81 && u[2] == 0x9F) || (u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x80) ||
	    (u[0] == 0xE1 && u[1] == 0x9A && u[2] == 0x80) || (u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF))
		return 3;
	return 0;
}

static int lex(ctx *c, const char *s, size_t n, tok **out, size_t *ntoks)
{
	size_t cap = 256, cnt = 0;
	tok *v = aalloc(c, cap * sizeof *v);
	size_t i = 0;
	while (!c->rc) {
		size_t blank;
		while (i < n && (blank = ws_len(s, i, n)))
			i += blank;
		if (i + 1 < n && s[i] == '/' && s[i + 1] == '/') {
			while (i < n && s[i] != '\n')
				i++;
			continue;
		}
		if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
			const char *e = NULL;
			for (size_t j = i + 2; j + 1 < n; j++)
				if (s[j] == '*' && s[j + 1] == '/') {
					e = s + j;
					break;
				}
			if (!e)
				return fail_at(c, i, "unterminated comment");
			i = (size_t)(e - s) + 2;
			continue;
		}
		if (cnt + 1 >= cap) {
			tok *w = aalloc(c, cap * 2 * sizeof *w);
			if (!w)
				break;
			memcpy(w, v, cnt * sizeof *w);
			v = w;
			cap *= 2;
		}
		tok *t = &v[cnt];
		memset(t, 0, sizeof *t);
		t->pos = i;
		if (i >= n) {
			t->k = T_EOF;
			t->text = "";
			cnt++;
			break;
		}
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"') {
			if (lex_string(c, s, n, &i, t))
				break;
		} else if (ch == '#' && i + 1 < n && s[i + 1] == '"') {
			i++;
			if (lex_string(c, s, n, &i, t))
				break;
			t->k = T_QIDENT;
		} else if (ch == '#' && i + 2 < n && s[i + 1] == '!' && s[i + 2] == '"') {
			i += 2;   /* verbatim literal: a value we never need */
			if (lex_string(c, s, n, &i, t))
				break;
			t->k = T_NUMBER;
		} else if (ch == '#' && i + 1 < n && isalpha((unsigned char)s[i + 1])) {
			size_t j = i + 1;
			while (j < n && isalpha((unsigned char)s[j]))
				j++;
			t->k = T_IDENT;
			t->text = astrndup(c, s + i, j - i);
			t->len = j - i;
			i = j;
		} else if (id_start(ch)) {
			size_t j = i + 1;
			for (;;) {
				while (j < n && id_part((unsigned char)s[j]) && !ws_len(s, j, n))
					j++;
				if (j + 1 < n && s[j] == '.' && id_start((unsigned char)s[j + 1])) {
					j++;
					continue;
				}
				break;
			}
			t->k = T_IDENT;
			t->text = astrndup(c, s + i, j - i);
			t->len = j - i;
			i = j;
		} else if (isdigit(ch) || (ch == '.' && i + 1 < n && isdigit((unsigned char)s[i + 1]))) {
			size_t j = i;
			if (ch == '0' && j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X')) {
				j += 2;
				while (j < n && isxdigit((unsigned char)s[j]))
					j++;
			} else {
				while (j < n && isdigit((unsigned char)s[j]))
					j++;
				if (j + 1 < n && s[j] == '.' && isdigit((unsigned char)s[j + 1])) {
					j++;
					while (j < n && isdigit((unsigned char)s[j]))
						j++;
				}
				if (j < n && (s[j] == 'e' || s[j] == 'E')) {
					size_t k = j + 1;
					if (k < n && (s[k] == '+' || s[k] == '-'))
						k++;
					if (k < n && isdigit((unsigned char)s[k])) {
						j = k;
						while (j < n && isdigit((unsigned char)s[j]))
							j++;
					}
				}
			}
			t->k = T_NUMBER;
			t->text = astrndup(c, s + i, j - i);
			t->len = j - i;
			i = j;
		} else {
			const char *p = NULL;
			for (size_t q = 0; puncts[q]; q++) {
				size_t l = strlen(puncts[q]);
				if (i + l <= n && !memcmp(s + i, puncts[q], l)) {
					p = puncts[q];
					break;
				}
			}
			if (!p) {
				char what[64];
				if (ch >= 0x20 && ch < 0x7f)
					(void)xsnprintf(what, sizeof what, "unexpected character '%c'", ch);
				else
					(void)xsnprintf(what, sizeof what, "unexpected byte 0x%02X", ch);
				return fail_at(c, i, what);
			}
			t->k = T_PUNCT;
			t->text = p;
			t->len = strlen(p);
			i += t->len;
		}
		cnt++;
	}
	*out = v;
	*ntoks = cnt;
	return c->rc;
}

/* ---------------------------------------------------------------- syntax tree */

enum node_kind {
	N_TEXT,     /* text literal: text */
	N_OTHER,    /* a value we do not model; kids are evaluated for their sources */
	N_IDENT,    /* text = name */
	N_LET,      /* names[i] = kids[i]; kids[n] is the body */
	N_RECORD,   /* names[i] = kids[i] */
	N_LIST,     /* kids */
	N_CALL,     /* kids[0] callee, kids[1..] arguments */
	N_INDEX,    /* kids[0]{kids[1]} */
	N_FIELD,    /* kids[0][text]; text NULL for a projection [[a],[b]] */
	N_BINOP,    /* kids[0] op kids[1]; text = operator */
	N_IF,       /* if kids[0] then kids[1] else kids[2] */
	N_FUNC,     /* (names) => kids[0]; each: names = {"_"} */
	N_LOGICAL,  /* true or false: text */
	N_ALT,      /* try kids[0] otherwise kids[1] (or catch): one of the kids is the result */
};

typedef struct node {
	enum node_kind k;
	const char *text;
	struct node **kids;
	size_t nkids;
	const char **names;   /* N_LET, N_RECORD, N_FUNC */
	size_t nnames;
	size_t pos;
} node;

typedef struct parser {
	ctx *c;
	tok *t;
	size_t n, i;
	int depth;
} parser;

static const char *const keywords[] = {
	"and", "as", "each", "else", "error", "false", "if", "in", "is", "let", "meta", "not", "null",
	"or", "otherwise", "section", "shared", "then", "true", "try", "type", "catch", NULL,
};

static bool is_keyword(const tok *t)
{
	if (t->k != T_IDENT)
		return false;
	for (size_t i = 0; keywords[i]; i++)
		if (!strcmp(t->text, keywords[i]))
			return true;
	return false;
}

static tok *cur(parser *p)
{
	return &p->t[p->i];
}

static tok *peek(parser *p, size_t ahead)
{
	size_t j = p->i + ahead;
	return &p->t[j < p->n ? j : p->n - 1];
}

static bool is_p(const tok *t, const char *punct)
{
	return t->k == T_PUNCT && !strcmp(t->text, punct);
}

static bool is_kw(const tok *t, const char *kw)
{
	return t->k == T_IDENT && !strcmp(t->text, kw);
}

static bool accept(parser *p, const char *punct)
{
	if (is_p(cur(p), punct)) {
		p->i++;
		return true;
	}
	return false;
}

static bool accept_kw(parser *p, const char *kw)
{
	if (is_kw(cur(p), kw)) {
		p->i++;
		return true;
	}
	return false;
}

static int expect(parser *p, const char *punct)
{
	if (accept(p, punct))
		return PB_OK;
	char what[96];
	tok *t = cur(p);
	(void)xsnprintf(what, sizeof what, "expected '%s'%s%.40s%s", punct,
			t->k == T_EOF ? " at the end" : " before '",
			t->k == T_EOF ? "" : (t->k == T_STRING ? "\"...\"" : t->text),
			t->k == T_EOF ? "" : "'");
	return fail_at(p->c, t->pos, what);
}

static int fail_deep(parser *p)
{
	int line, col;
	line_col(p->c->src, cur(p)->pos, &line, &col);
	return fail(p->c, PB_ELIMIT, "%d:%d: M expression nested more than %d levels deep", line, col,
		    PB_MLINEAGE_MAX_DEPTH);
}

static node *mk(parser *p, enum node_kind k, size_t pos)
{
	node *n = aalloc(p->c, sizeof *n);
	if (n) {
		n->k = k;
		n->pos = pos;
	}
	return n;
}

static int set_kids(parser *p, node *n, const pvec *kids, const pvec *names)
{
	if (!n)
		return p->c->rc;
	n->kids = (node **)kids->v;
	n->nkids = kids->n;
	if (names) {
		n->names = (const char **)names->v;
		n->nnames = names->n;
	}
	return p->c->rc;
}

static node *parse_expr(parser *p);

/* After an item of a list, record or argument list: ',' (true: more follow) or close. */
static bool more_items(parser *p, const char *close)
{
	if (accept(p, ","))
		return true;
	if (accept(p, close))
		return false;
	char what[64];
	tok *t = cur(p);
	(void)xsnprintf(what, sizeof what, "expected ',' or '%s'%s", close, t->k == T_EOF ? " at the end" : "");
	fail_at(p->c, t->pos, what);
	return false;
}

/* Skips a balanced (...), [...] or {...} group starting at the current token. */
static int skip_group(parser *p)
{
	int depth = 0;
	do {
		tok *t = cur(p);
		if (t->k == T_EOF)
			return fail_at(p->c, t->pos, "unbalanced brackets in a type");
		if (is_p(t, "(") || is_p(t, "[") || is_p(t, "{"))
			depth++;
		else if (is_p(t, ")") || is_p(t, "]") || is_p(t, "}"))
			depth--;
		p->i++;
	} while (depth > 0);
	return PB_OK;
}

/* A type after `type`, `as` or `is`: nothing in it matters for lineage, so it is
 * skipped by shape: [nullable] (group | name [group]) | function (...) as type. */
static int skip_type(parser *p)
{
	if (++p->depth > PB_MLINEAGE_MAX_DEPTH)
		return fail_deep(p);
	int rc = PB_OK;
	accept_kw(p, "nullable");
	tok *t = cur(p);
	if (is_p(t, "(") || is_p(t, "[") || is_p(t, "{")) {
		rc = skip_group(p);
	} else if (is_kw(t, "function")) {
		p->i++;
		if (is_p(cur(p), "("))
			rc = skip_group(p);
		if (!rc && accept_kw(p, "as"))
			rc = skip_type(p);
	} else if (is_kw(t, "table") || is_kw(t, "record")) {
		p->i++;
		if (is_p(cur(p), "[") || is_p(cur(p), "{"))
			rc = skip_group(p);
		else if (cur(p)->k == T_IDENT && !is_keyword(cur(p)))
			p->i++;
	} else if (t->k == T_IDENT || t->k == T_QIDENT || is_kw(t, "null")) {
		p->i++;
	} else {
		rc = fail_at(p->c, t->pos, "expected a type");
	}
	p->depth--;
	return rc;
}

/* A generalized identifier inside [ ]: words joined by one space, up to '=', ']' or ','. */
static const char *field_name(parser *p)
{
	sbuf b;
	sbuf_init(&b, PB_NAME_MAX_BYTES);
	int rc = 0;
	while (!p->c->rc) {
		tok *t = cur(p);
		if (t->k == T_IDENT || t->k == T_QIDENT || t->k == T_NUMBER) {
			if (b.len)
				rc |= sbuf_addc(&b, ' ');
			rc |= sbuf_add(&b, t->text, t->len);
			p->i++;
		} else if (t->k == T_PUNCT && (is_p(t, "-") || is_p(t, "/") || is_p(t, "&") || is_p(t, "+") ||
					       is_p(t, "*") || is_p(t, "?") || is_p(t, "!") || is_p(t, "@"))) {
			/* punctuation inside an unquoted field name ([Sales - Net]) */
			rc |= sbuf_add(&b, t->text, t->len);
			p->i++;
		} else {
			break;
		}
	}
	if (!b.len) {
		sbuf_release(&b);
		fail_at(p->c, cur(p)->pos, "expected a field name");
		return NULL;
	}
	if (rc) {
		sbuf_release(&b);
		fail(p->c, PB_ELIMIT, "field name longer than %d bytes", PB_NAME_MAX_BYTES);
		return NULL;
	}
	const char *s = astrndup(p->c, sbuf_str(&b), b.len);
	sbuf_release(&b);
	return s;
}

/* After '[': a record literal, a field access on `_` ([Name]) or a projection. */
static node *parse_bracket(parser *p, size_t pos)
{
	pvec kids = { 0 }, names = { 0 };
	if (accept(p, "]")) {
		node *n = mk(p, N_RECORD, pos);
		set_kids(p, n, &kids, &names);
		return n;
	}
	if (is_p(cur(p), "[")) {   /* implicit projection [[a],[b]] */
		p->i--;
		if (skip_group(p))
			return NULL;
		accept(p, "?");
		return mk(p, N_OTHER, pos);
	}
	const char *name = field_name(p);
	if (!name)
		return NULL;
	if (accept(p, "]")) {
		accept(p, "?");
		node *n = mk(p, N_FIELD, pos);
		node *under = mk(p, N_IDENT, pos);
		if (!n || !under)
			return NULL;
		under->text = "_";
		pvec_push(p->c, &kids, under);
		n->text = name;
		set_kids(p, n, &kids, NULL);
		return n;
	}
	for (;;) {
		if (expect(p, "="))
			return NULL;
		node *v = parse_expr(p);
		if (!v || pvec_push(p->c, &names, (void *)name) || pvec_push(p->c, &kids, v))
			return NULL;
		if (!more_items(p, "]")) {
			if (p->c->rc)
				return NULL;
			break;
		}
		if (!(name = field_name(p)))
			return NULL;
	}
	node *n = mk(p, N_RECORD, pos);
	set_kids(p, n, &kids, &names);
	return n;
}

static const char *ident_text(parser *p)
{
	tok *t = cur(p);
	if ((t->k == T_IDENT && !is_keyword(t)) || t->k == T_QIDENT) {
		p->i++;
		return t->text;
	}
	fail_at(p->c, t->pos, "expected a name");
	return NULL;
}

/* Is the '(' at the current token the start of a function `(params) [as type] =>`? */
static bool at_function(parser *p)
{
	size_t j = p->i;
	int depth = 0;
	for (; j < p->n; j++) {
		tok *t = &p->t[j];
		if (t->k == T_EOF)
			return false;
		if (is_p(t, "(") || is_p(t, "[") || is_p(t, "{"))
			depth++;
		else if (is_p(t, ")") || is_p(t, "]") || is_p(t, "}"))
			if (--depth == 0)
				break;
	}
	if (j + 1 >= p->n)
		return false;
	tok *after = &p->t[j + 1];
	if (is_p(after, "=>"))
		return true;
	if (!is_kw(after, "as"))
		return false;
	/* `(x) as type =>`: look for => before anything that ends an expression */
	for (size_t k = j + 2; k < p->n && k < j + 64; k++) {
		if (is_p(&p->t[k], "=>"))
			return true;
		if (is_p(&p->t[k], ",") || is_p(&p->t[k], ")") || p->t[k].k == T_EOF)
			return false;
	}
	return false;
}

static node *parse_function(parser *p, size_t pos)
{
	pvec names = { 0 }, kids = { 0 };
	if (expect(p, "("))
		return NULL;
	if (!accept(p, ")")) {
		for (;;) {
			accept_kw(p, "optional");
			const char *name = ident_text(p);
			if (!name || pvec_push(p->c, &names, (void *)name))
				return NULL;
			if (accept_kw(p, "as") && skip_type(p))
				return NULL;
			if (!more_items(p, ")")) {
				if (p->c->rc)
					return NULL;
				break;
			}
		}
	}
	if (accept_kw(p, "as") && skip_type(p))
		return NULL;
	if (expect(p, "=>"))
		return NULL;
	node *body = parse_expr(p);
	node *n = mk(p, N_FUNC, pos);
	if (!body || !n || pvec_push(p->c, &kids, body))
		return NULL;
	set_kids(p, n, &kids, &names);
	return n;
}

static node *parse_let(parser *p, size_t pos)
{
	pvec kids = { 0 }, names = { 0 };
	for (;;) {
		const char *name = ident_text(p);
		if (!name || expect(p, "="))
			return NULL;
		node *v = parse_expr(p);
		if (!v || pvec_push(p->c, &names, (void *)name) || pvec_push(p->c, &kids, v))
			return NULL;
		if (accept(p, ","))
			continue;
		if (accept_kw(p, "in"))
			break;
		fail_at(p->c, cur(p)->pos, "expected ',' or 'in' after a let step");
		return NULL;
	}
	node *body = parse_expr(p);
	if (!body || pvec_push(p->c, &kids, body))
		return NULL;
	node *n = mk(p, N_LET, pos);
	set_kids(p, n, &kids, &names);
	return n;
}

static node *parse_primary(parser *p)
{
	tok *t = cur(p);
	size_t pos = t->pos;
	node *n = NULL;
	pvec kids = { 0 };
	if (t->k == T_STRING) {
		p->i++;
		if ((n = mk(p, N_TEXT, pos)))
			n->text = t->text;
		return n;
	}
	if (is_kw(t, "true") || is_kw(t, "false")) {
		p->i++;
		if ((n = mk(p, N_LOGICAL, pos)))
			n->text = t->text;
		return n;
	}
	if (t->k == T_NUMBER || is_kw(t, "null") || is_p(t, "...")) {
		p->i++;
		return mk(p, N_OTHER, pos);
	}
	if (t->k == T_QIDENT || (t->k == T_IDENT && !is_keyword(t))) {
		p->i++;
		if ((n = mk(p, N_IDENT, pos)))
			n->text = t->text;
		return n;
	}
	if (is_p(t, "@")) {   /* inclusive identifier reference */
		p->i++;
		return parse_primary(p);
	}
	if (is_kw(t, "let")) {
		p->i++;
		return parse_let(p, pos);
	}
	if (is_kw(t, "if")) {
		p->i++;
		node *a = parse_expr(p);
		if (!a || !accept_kw(p, "then")) {
			if (a)
				fail_at(p->c, cur(p)->pos, "expected 'then'");
			return NULL;
		}
		node *b = parse_expr(p);
		if (!b || !accept_kw(p, "else")) {
			if (b)
				fail_at(p->c, cur(p)->pos, "expected 'else'");
			return NULL;
		}
		node *e = parse_expr(p);
		if (!e || pvec_push(p->c, &kids, a) || pvec_push(p->c, &kids, b) || pvec_push(p->c, &kids, e))
			return NULL;
		n = mk(p, N_IF, pos);
		set_kids(p, n, &kids, NULL);
		return n;
	}
	if (is_kw(t, "each")) {
		p->i++;
		node *body = parse_expr(p);
		pvec names = { 0 };
		if (!body || pvec_push(p->c, &kids, body) || pvec_push(p->c, &names, (void *)"_"))
			return NULL;
		n = mk(p, N_FUNC, pos);
		set_kids(p, n, &kids, &names);
		return n;
	}
	if (is_kw(t, "try")) {
		p->i++;
		node *a = parse_expr(p);
		if (!a || pvec_push(p->c, &kids, a))
			return NULL;
		enum node_kind kind = N_OTHER;   /* `try x` alone is a record [HasError, Value] */
		if (accept_kw(p, "otherwise")) {
			kind = N_ALT;
			node *b = parse_expr(p);
			if (!b || pvec_push(p->c, &kids, b))
				return NULL;
		} else if (accept_kw(p, "catch")) {
			kind = N_ALT;
			node *b = is_p(cur(p), "(") ? parse_function(p, cur(p)->pos) : NULL;
			if (!b || pvec_push(p->c, &kids, b)) {
				if (!p->c->rc)
					fail_at(p->c, cur(p)->pos, "expected a function after 'catch'");
				return NULL;
			}
		}
		n = mk(p, kind, pos);
		set_kids(p, n, &kids, NULL);
		return n;
	}
	if (is_kw(t, "error")) {
		p->i++;
		node *a = parse_expr(p);
		if (!a || pvec_push(p->c, &kids, a))
			return NULL;
		n = mk(p, N_OTHER, pos);
		set_kids(p, n, &kids, NULL);
		return n;
	}
	if (is_kw(t, "type")) {
		p->i++;
		if (skip_type(p))
			return NULL;
		return mk(p, N_OTHER, pos);
	}
	if (is_kw(t, "not") || is_p(t, "-") || is_p(t, "+")) {
		p->i++;
		node *a = parse_primary(p);
		if (!a || pvec_push(p->c, &kids, a))
			return NULL;
		n = mk(p, N_OTHER, pos);
		set_kids(p, n, &kids, NULL);
		return n;
	}
	if (is_p(t, "(")) {
		if (at_function(p))
			return parse_function(p, pos);
		p->i++;
		n = parse_expr(p);
		if (n && expect(p, ")"))
			return NULL;
		return n;
	}
	if (is_p(t, "[")) {
		p->i++;
		return parse_bracket(p, pos);
	}
	if (is_p(t, "{")) {
		p->i++;
		if (!accept(p, "}")) {
			for (;;) {
				node *a = parse_expr(p);
				if (!a || pvec_push(p->c, &kids, a))
					return NULL;
				if (accept(p, "..")) {
					node *b = parse_expr(p);
					if (!b || pvec_push(p->c, &kids, b))
						return NULL;
				}
				if (!more_items(p, "}")) {
					if (p->c->rc)
						return NULL;
					break;
				}
			}
		}
		n = mk(p, N_LIST, pos);
		set_kids(p, n, &kids, NULL);
		return n;
	}
	char what[96];
	(void)xsnprintf(what, sizeof what, "unexpected %s%.40s%s", t->k == T_EOF ? "end of expression" : "'",
			t->k == T_EOF ? "" : t->text, t->k == T_EOF ? "" : "'");
	fail_at(p->c, pos, what);
	return NULL;
}

static node *parse_postfix(parser *p)
{
	node *n = parse_primary(p);
	while (n && !p->c->rc) {
		tok *t = cur(p);
		pvec kids = { 0 };
		if (pvec_push(p->c, &kids, n))
			return NULL;
		if (is_p(t, "(")) {
			p->i++;
			if (!accept(p, ")")) {
				for (;;) {
					node *a = parse_expr(p);
					if (!a || pvec_push(p->c, &kids, a))
						return NULL;
					if (!more_items(p, ")")) {
						if (p->c->rc)
							return NULL;
						break;
					}
				}
			}
			node *call = mk(p, N_CALL, t->pos);
			set_kids(p, call, &kids, NULL);
			n = call;
		} else if (is_p(t, "{")) {
			p->i++;
			node *key = parse_expr(p);
			if (!key || expect(p, "}") || pvec_push(p->c, &kids, key))
				return NULL;
			accept(p, "?");
			node *ix = mk(p, N_INDEX, t->pos);
			set_kids(p, ix, &kids, NULL);
			n = ix;
		} else if (is_p(t, "[")) {
			node *f = mk(p, N_FIELD, t->pos);
			if (!f)
				return NULL;
			if (is_p(peek(p, 1), "[")) {   /* projection */
				if (skip_group(p))
					return NULL;
			} else {
				p->i++;
				if (!(f->text = field_name(p)) || expect(p, "]"))
					return NULL;
			}
			accept(p, "?");
			set_kids(p, f, &kids, NULL);
			n = f;
		} else {
			break;
		}
	}
	return n;
}

/* Binary operators, loosest first (M spec: logical-or ... multiplicative, meta). */
static const char *const *const levels[] = {
	(const char *const[]){ "??", NULL },
	(const char *const[]){ "or", NULL },
	(const char *const[]){ "and", NULL },
	(const char *const[]){ "as", "is", NULL },
	(const char *const[]){ "=", "<>", NULL },
	(const char *const[]){ "<", ">", "<=", ">=", NULL },
	(const char *const[]){ "+", "-", "&", NULL },
	(const char *const[]){ "*", "/", NULL },
	(const char *const[]){ "meta", NULL },
};
#define NLEVELS (sizeof levels / sizeof levels[0])

static const char *binop_at(parser *p, size_t level)
{
	tok *t = cur(p);
	if (t->k != T_PUNCT && t->k != T_IDENT)
		return NULL;
	for (size_t i = 0; levels[level][i]; i++)
		if (!strcmp(t->text, levels[level][i]))
			return levels[level][i];
	return NULL;
}

static node *parse_level(parser *p, size_t level)
{
	if (level == NLEVELS)
		return parse_postfix(p);
	node *left = parse_level(p, level + 1);
	const char *op;
	while (left && !p->c->rc && (op = binop_at(p, level))) {
		size_t pos = cur(p)->pos;
		p->i++;
		node *right;
		if (!strcmp(op, "as") || !strcmp(op, "is")) {
			if (skip_type(p))
				return NULL;
			right = mk(p, N_OTHER, pos);
		} else {
			right = parse_level(p, level + 1);
		}
		pvec kids = { 0 };
		if (!right || pvec_push(p->c, &kids, left) || pvec_push(p->c, &kids, right))
			return NULL;
		node *b = mk(p, N_BINOP, pos);
		if (b)
			b->text = op;
		set_kids(p, b, &kids, NULL);
		left = b;
	}
	return left;
}

static node *parse_expr(parser *p)
{
	if (++p->depth > PB_MLINEAGE_MAX_DEPTH) {
		fail_deep(p);
		return NULL;
	}
	node *n = parse_level(p, 0);
	p->depth--;
	return p->c->rc ? NULL : n;
}

/* Parses a whole document: an expression, or a section document (section X; a = ...;)
 * of which the members become one let whose body is the last member. */
static node *parse_document(ctx *c, const char *text, size_t len)
{
	tok *toks = NULL;
	size_t ntoks = 0;
	if (lex(c, text, len, &toks, &ntoks))
		return NULL;
	parser p = { .c = c, .t = toks, .n = ntoks };
	node *n;
	if (is_kw(cur(&p), "section")) {
		p.i++;
		if (!ident_text(&p) || expect(&p, ";"))
			return NULL;
		pvec kids = { 0 }, names = { 0 };
		node *last = NULL;
		while (cur(&p)->k != T_EOF && !c->rc) {
			accept_kw(&p, "shared");
			const char *name = ident_text(&p);
			if (!name || expect(&p, "="))
				return NULL;
			node *v = parse_expr(&p);
			if (!v || expect(&p, ";") || pvec_push(c, &names, (void *)name) || pvec_push(c, &kids, v))
				return NULL;
			last = mk(&p, N_IDENT, v->pos);
			if (last)
				last->text = name;
		}
		if (!last) {
			fail_at(c, cur(&p)->pos, "empty section document");
			return NULL;
		}
		if (pvec_push(c, &kids, last))
			return NULL;
		n = mk(&p, N_LET, 0);
		set_kids(&p, n, &kids, &names);
		return c->rc ? NULL : n;
	}
	n = parse_expr(&p);
	if (n && cur(&p)->k != T_EOF) {
		fail_at(c, cur(&p)->pos, "unexpected text after the end of the expression");
		return NULL;
	}
	return c->rc ? NULL : n;
}

/* ---------------------------------------------------------------- native SQL */

typedef struct sqlname {
	const char *part[3];
	int nparts;
} sqlname;

typedef struct sqltok {
	int k;             /* 'w' word, 'q' quoted identifier, 'p' punctuation, 0 end */
	const char *s;     /* decoded (arena) */
	char ch;           /* punctuation */
} sqltok;

static bool sql_kw(const sqltok *t, const char *kw)
{
	return t->k == 'w' && str_ieq(t->s, kw);
}

/* SQL dialects that change how names are read (query_sources picks one per source type). */
enum {
	SQL_BIGQUERY = 1,   /* `project.dataset.table` in one pair of backticks is three parts;
			     * project ids may hold '-' unquoted (FROM my-project.ds.t) */
};

/* Appends a token (growing the arena array); NULL once the arena is exhausted. */
static sqltok *sql_push(ctx *c, sqltok **v, size_t *cnt, size_t *cap)
{
	if (*cnt + 1 >= *cap) {
		sqltok *w = aalloc(c, *cap * 2 * sizeof *w);
		if (!w)
			return NULL;
		memcpy(w, *v, *cnt * sizeof *w);
		*v = w;
		*cap *= 2;
	}
	sqltok *t = &(*v)[(*cnt)++];
	memset(t, 0, sizeof *t);
	return t;
}

/* Pushes quoted identifier text: one 'q' token, or for BigQuery's backticks one per
 * dot-separated part with '.' tokens between. */
static int sql_push_quoted(ctx *c, sqltok **v, size_t *cnt, size_t *cap, const char *text, size_t len,
			   bool split)
{
	for (;;) {
		const char *dot = split ? memchr(text, '.', len) : NULL;
		size_t part = dot ? (size_t)(dot - text) : len;
		sqltok *t = sql_push(c, v, cnt, cap);
		if (!t)
			return c->rc;
		t->k = 'q';
		t->s = astrndup(c, text, part);
		if (!dot)
			return c->rc;
		if (!(t = sql_push(c, v, cnt, cap)))
			return c->rc;
		t->k = 'p';
		t->ch = '.';
		text += part + 1;
		len -= part + 1;
	}
}

static bool sql_word_char(const char *s, size_t j, size_t len, unsigned dialect)
{
	unsigned char ch = (unsigned char)s[j];
	if (isalnum(ch) || ch == '_' || ch == '$' || ch == '#' || ch == '@' || ch == '~' || ch == '/' || ch >= 0x80)
		return true;
	/* BigQuery project ids: my-project-123 (a dash between word characters) */
	return (dialect & SQL_BIGQUERY) && ch == '-' && j > 0 && j + 1 < len && isalnum((unsigned char)s[j - 1]) &&
	       isalnum((unsigned char)s[j + 1]);
}

/* Tokenizes SQL enough to find table names: strings and comments skipped; "x", `x`
 * and [x] are quoted identifiers; words keep $ and #. */
static int sql_tokens(ctx *c, const char *s, unsigned dialect, sqltok **out, size_t *n)
{
	size_t len = strlen(s), cap = 64, cnt = 0;
	sqltok *v = aalloc(c, cap * sizeof *v);
	size_t i = 0;
	while (v && !c->rc) {
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		if (i >= len) {
			sql_push(c, &v, &cnt, &cap);   /* k = 0: the end */
			break;
		}
		char ch = s[i];
		if (ch == '-' && i + 1 < len && s[i + 1] == '-') {
			while (i < len && s[i] != '\n')
				i++;
			continue;
		}
		if (ch == '/' && i + 1 < len && s[i + 1] == '*') {
			const char *e = strstr(s + i + 2, "*/");
			i = e ? (size_t)(e - s) + 2 : len;
			continue;
		}
		if (ch == '\'') {
			i++;
			while (i < len) {
				if (s[i] == '\'' && i + 1 < len && s[i + 1] == '\'') {
					i += 2;
					continue;
				}
				if (s[i] == '\\' && i + 1 < len) {   /* Snowflake/Databricks backslash escapes */
					i += 2;
					continue;
				}
				if (s[i] == '\'')
					break;
				i++;
			}
			i++;
			sqltok *t = sql_push(c, &v, &cnt, &cap);
			if (t) {
				t->k = 'p';
				t->ch = '\'';   /* a literal: not a name */
			}
			continue;
		}
		if (ch == '"' || ch == '`' || ch == '[') {
			char close = ch == '[' ? ']' : ch;
			sbuf b;
			sbuf_init(&b, PB_NAME_MAX_BYTES);
			size_t j = i + 1;
			int rc = 0;
			while (j < len) {
				if (s[j] == close) {
					if (j + 1 < len && s[j + 1] == close) {
						rc |= sbuf_addc(&b, close);
						j += 2;
						continue;
					}
					break;
				}
				rc |= sbuf_addc(&b, s[j]);
				j++;
			}
			sql_push_quoted(c, &v, &cnt, &cap, rc ? "" : sbuf_str(&b), rc ? 0 : b.len,
					ch == '`' && (dialect & SQL_BIGQUERY));
			sbuf_release(&b);
			i = j < len ? j + 1 : len;
			continue;
		}
		if (isalnum((unsigned char)ch) || ch == '_' || ch == '$' || ch == '#' || (unsigned char)ch >= 0x80 ||
		    ch == '@' || ch == '{') {
			size_t j = i;
			if (ch == '{') {   /* templated names ({{ ref }}): one opaque word */
				const char *e = strchr(s + i, '}');
				j = e ? (size_t)(e - s) + 1 : len;
				while (j < len && s[j] == '}')
					j++;
			} else {
				while (j < len && sql_word_char(s, j, len, dialect))
					j++;
			}
			sqltok *t = sql_push(c, &v, &cnt, &cap);
			if (t) {
				t->k = 'w';
				t->s = astrndup(c, s + i, j - i);
			}
			i = j;
			continue;
		}
		sqltok *t = sql_push(c, &v, &cnt, &cap);
		if (t) {
			t->k = 'p';
			t->ch = ch;
		}
		i++;
	}
	*out = v;
	*n = cnt;
	return c->rc;
}

static const char *const sql_not_alias[] = {
	"where", "join", "inner", "left", "right", "full", "outer", "cross", "on", "using", "group", "order",
	"having", "limit", "union", "except", "intersect", "minus", "natural", "lateral", "qualify", "window",
	"pivot", "unpivot", "sample", "tablesample", "at", "before", "changes", "match_recognize", "offset",
	"fetch", "for", "with", "as", "start", "connect", "select", "from", "into", "values", "set", "then",
	"when", "else", "end", "returning", "semi", "anti", "asof", "straight_join", "partition", "cluster",
	"distribute", "sort", "options", "timestamp", "version", NULL,
};

static bool word_in(const sqltok *t, const char *const *words)
{
	if (t->k != 'w')
		return false;
	for (size_t i = 0; words[i]; i++)
		if (str_ieq(t->s, words[i]))
			return true;
	return false;
}

/* Collects table names read by the statement: names after FROM and JOIN (and comma
 * lists after FROM), skipping subqueries, table functions, CTE names, literals and
 * FROM inside EXTRACT/TRIM/SUBSTRING/POSITION/OVERLAY and IS [NOT] DISTINCT FROM. */
static int sql_tables(ctx *c, const char *sql, unsigned dialect, pvec *out)
{
	sqltok *t = NULL;
	size_t n = 0;
	if (sql_tokens(c, sql, dialect, &t, &n))
		return c->rc;
	pvec ctes = { 0 };
	/* CTE names: `name AS (` and `name (cols) AS (` */
	for (size_t i = 0; i + 2 < n; i++) {
		if ((t[i].k == 'w' || t[i].k == 'q') && sql_kw(&t[i + 1], "as") && t[i + 2].k == 'p' &&
		    t[i + 2].ch == '(') {
			if (pvec_push(c, &ctes, (void *)t[i].s))
				return c->rc;
		} else if ((t[i].k == 'w' || t[i].k == 'q') && t[i + 1].k == 'p' && t[i + 1].ch == '(' && i > 0 &&
			   (sql_kw(&t[i - 1], "with") || sql_kw(&t[i - 1], "recursive") ||
			    (t[i - 1].k == 'p' && t[i - 1].ch == ','))) {
			size_t j = i + 1;
			int d = 0;
			for (; j < n; j++) {
				if (t[j].k == 'p' && t[j].ch == '(')
					d++;
				else if (t[j].k == 'p' && t[j].ch == ')' && --d == 0)
					break;
			}
			if (j + 2 < n && sql_kw(&t[j + 1], "as") && t[j + 2].k == 'p' && t[j + 2].ch == '(')
				if (pvec_push(c, &ctes, (void *)t[i].s))
					return c->rc;
		}
	}
	/* parentheses opened by functions whose arguments may contain FROM */
	unsigned char fromfunc[PB_MLINEAGE_MAX_DEPTH];
	int depth = 0;
	for (size_t i = 0; i < n && t[i].k; i++) {
		if (t[i].k == 'p' && t[i].ch == '(') {
			bool special = i > 0 && t[i - 1].k == 'w' &&
				       (str_ieq(t[i - 1].s, "extract") || str_ieq(t[i - 1].s, "trim") ||
					str_ieq(t[i - 1].s, "substring") || str_ieq(t[i - 1].s, "position") ||
					str_ieq(t[i - 1].s, "overlay") || str_ieq(t[i - 1].s, "date_part"));
			if (depth < PB_MLINEAGE_MAX_DEPTH)
				fromfunc[depth] = special;
			depth++;
			continue;
		}
		if (t[i].k == 'p' && t[i].ch == ')') {
			if (depth > 0)
				depth--;
			continue;
		}
		bool is_from = sql_kw(&t[i], "from");
		bool is_join = sql_kw(&t[i], "join");
		if (!is_from && !is_join)
			continue;
		if (is_from && depth > 0 && depth <= PB_MLINEAGE_MAX_DEPTH && fromfunc[depth - 1])
			continue;
		if (is_from && i > 0 && sql_kw(&t[i - 1], "distinct"))
			continue;
		size_t j = i + 1;
		for (;;) {
			/* one table reference */
			sqlname nm = { { NULL, NULL, NULL }, 0 };
			if (sql_kw(&t[j], "lateral") || sql_kw(&t[j], "only"))
				j++;
			while (t[j].k == 'w' || t[j].k == 'q') {
				if (t[j].k == 'w' && word_in(&t[j], sql_not_alias))
					break;
				if (nm.nparts == 3) {
					nm.nparts = 4;   /* too many parts: not a table we can name */
					break;
				}
				nm.part[nm.nparts++] = t[j].s;
				j++;
				if (t[j].k == 'p' && t[j].ch == '.') {
					j++;
					while (t[j].k == 'p' && t[j].ch == '.' && nm.nparts < 3) {   /* db..table */
						nm.part[nm.nparts++] = NULL;
						j++;
					}
					continue;
				}
				break;
			}
			bool is_call = t[j].k == 'p' && t[j].ch == '(';
			bool stage = nm.nparts > 0 && nm.part[0] && nm.part[0][0] == '@';
			if (nm.nparts >= 1 && nm.nparts <= 3 && !is_call && !stage && nm.part[nm.nparts - 1] &&
			    !(nm.nparts == 1 && word_in(&t[j - 1], (const char *const[]){ "values", "unnest", NULL }))) {
				bool cte = false;
				for (size_t q = 0; nm.nparts == 1 && q < ctes.n; q++)
					if (str_ieq(ctes.v[q], nm.part[0]))
						cte = true;
				if (!cte) {
					sqlname *copy = aalloc(c, sizeof *copy);
					if (!copy || pvec_push(c, out, copy))
						return c->rc;
					*copy = nm;
				}
			}
			if (!is_from)
				break;
			/* optional alias, then ',' continues the FROM list */
			if (sql_kw(&t[j], "as"))
				j++;
			if ((t[j].k == 'w' && !word_in(&t[j], sql_not_alias)) || t[j].k == 'q')
				j++;
			if (t[j].k == 'p' && t[j].ch == ',' && nm.nparts > 0 && !is_call) {
				j++;
				if (t[j].k == 'p' && t[j].ch == '(')
					break;   /* a subquery: its own FROM is found later */
				continue;
			}
			break;
		}
	}
	return c->rc;
}

/* ---------------------------------------------------------------- values */

typedef struct src {
	const char *type, *host, *warehouse, *http_path, *database, *schema, *table;
	const char *kind;
	bool exact;
	const char *note;
} src;

/* A set of sources. Sets share arrays: a copy made with srcs_share() has cap 0, so
 * its first add copies; the owner (cap > 0) appends in place past every sharer's n. */
typedef struct srcset {
	src **v;
	size_t n, cap;
} srcset;

static srcset srcs_share(const srcset *s)
{
	return (srcset){ .v = s->v, .n = s->n, .cap = 0 };
}

enum { LV_SERVER, LV_DATABASE, LV_SCHEMA, LV_TABLE };
#define LVB(level) (1u << (level))

/* How a connector's navigation and names differ from server > database > schema > table. */
enum {
	CF_NO_HOST = 1,         /* no server argument: Google BigQuery's one service */
	CF_SCHEMA_IS_DB = 2,    /* its navigation calls databases schemas (MySQL) */
	CF_ODBC = 4,            /* levels as the ODBC driver reports them (Kind), or flat */
	CF_QUERY_FN = 8,        /* returns a function of a SQL text (Databricks.Query) */
	CF_BILLING = 16,        /* options BillingProject: kept in `warehouse` (BigQuery) */
	CF_SERVICE = 32,        /* the server names the database: host[:port]/service (Oracle) */
};

/* A connector function's result before navigation. */
typedef struct conn {
	const char *type;
	const char *host, *warehouse, *http_path;
	const char *default_db, *default_schema;   /* Databricks options Catalog / Database; Oracle's
						      service; an ODBC connection's database */
	const char *dyn;                            /* what about the connection is unknown */
	const char *label;     /* names the connection in notes when its host does not (ODBC) */
	unsigned flags;        /* CF_* */
	unsigned implicit;     /* LVB() of levels it has not got or does not need named */
	unsigned dialect;      /* SQL_* of its native queries */
	bool flat;             /* ODBC without HierarchicalNavigation: a Name picks a table */
} conn;

typedef struct nav {
	const conn *cn;
	const char *db, *schema, *table;
	const char *kind;
	int level;
	unsigned implicit;     /* conn's, plus ODBC levels a Kind jumped over */
	bool in_order;         /* ODBC levels named without Kind: taken in order */
	bool query_fn;         /* a function of a SQL text, not a navigation (Databricks.Query) */
	const char *dyn;       /* notes about names that are not known */
	src *made;             /* the source this navigation stands for, once asked */
} nav;

/* V_ALT: the value is one of items (an if whose condition is not known, try ... otherwise);
 * what is done to it is done to each. */
enum val_kind { V_UNKNOWN, V_TEXT, V_LOGICAL, V_RECORD, V_LIST, V_NAV, V_ALT };

typedef struct val {
	enum val_kind k;
	const char *text;      /* V_TEXT */
	bool truth;            /* V_LOGICAL */
	const char *why;       /* V_UNKNOWN: why the value is not known, when that matters */
	const char **names;    /* V_RECORD field names */
	struct val **items;    /* V_RECORD / V_LIST / V_ALT */
	size_t nitems;
	nav *nv;               /* V_NAV */
	srcset srcs;           /* sources the value was computed from */
	srcset all;            /* srcs + what the value itself stands for, once computed */
	bool all_done;
} val;

/* Scopes: a let's bindings (memoized), a function's parameters (unknown). */
typedef struct scope {
	const struct scope *up;
	const node *let;          /* N_LET or N_FUNC */
	val **memo;               /* per binding; NULL until evaluated */
	bool *busy;
} scope;

typedef struct evaluator {
	ctx *c;
	const mlineage_param *params;
	size_t nparams;
	node **param_ast;          /* parsed lazily */
	val **param_val;
	bool *param_busy;
	int param_depth;
	pvec unknown_fns;          /* names of source-like functions not traced */
	pvec undefined;            /* names neither a step nor a shared expression */
	bool truncated;
} evaluator;

static val *eval(evaluator *e, const node *n, const scope *sc);

static val *mkval(evaluator *e, enum val_kind k)
{
	val *v = aalloc(e->c, sizeof *v);
	if (v)
		v->k = k;
	return v;
}

static val *unknown(evaluator *e, const char *why)
{
	val *v = mkval(e, V_UNKNOWN);
	if (v)
		v->why = why;
	return v;
}

static const char *afmt(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *afmt(ctx *c, const char *fmt, ...)
{
	sbuf b;
	sbuf_init(&b, 4096);
	va_list ap;
	va_start(ap, fmt);
	int rc = sbuf_vaddf(&b, fmt, ap);
	va_end(ap);
	const char *s = rc ? "(note too long)" : astrndup(c, sbuf_str(&b), b.len);
	sbuf_release(&b);
	return s;
}

/* Appends "; " + more to a note (either may be NULL). */
static const char *note_add(ctx *c, const char *note, const char *more)
{
	if (!more)
		return note;
	if (!note)
		return more;
	if (strstr(note, more))
		return note;
	return afmt(c, "%s; %s", note, more);
}

static int srcs_add(evaluator *e, srcset *s, src *x)
{
	/* the duplicate scan is work too: it counts against the evaluation budget */
	e->c->evals += s->n / 64;
	if (e->c->evals > PB_MLINEAGE_MAX_EVALS)
		return fail(e->c, PB_ELIMIT, "M expression needs more than %d evaluation steps", PB_MLINEAGE_MAX_EVALS);
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == x)
			return PB_OK;
	if (s->n >= PB_MLINEAGE_MAX_SOURCES) {
		e->truncated = true;
		return PB_OK;
	}
	if (s->n >= s->cap) {   /* full, or shared (cap 0): a new array */
		size_t cap = s->n < 4 ? 8 : s->n * 2;
		src **v = aalloc(e->c, cap * sizeof *v);
		if (!v)
			return e->c->rc;
		if (s->n)
			memcpy(v, s->v, s->n * sizeof *v);
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
	return PB_OK;
}

static int srcs_union(evaluator *e, srcset *into, const srcset *from)
{
	if (!into->n) {
		*into = srcs_share(from);
		return PB_OK;
	}
	for (size_t i = 0; i < from->n && !e->c->rc; i++)
		srcs_add(e, into, from->v[i]);
	return e->c->rc;
}

static const char *level_name(int level)
{
	static const char *const names[] = { "server", "database", "schema", "table" };
	return names[level < 0 ? 0 : level > 3 ? 3 : level];
}

static bool is_databricks(const conn *cn)
{
	return !strcmp(cn->type, "databricks");
}

/* What the source type calls its database level, for notes. */
static const char *db_word(const conn *cn)
{
	return is_databricks(cn) ? "catalog" : !strcmp(cn->type, "bigquery") ? "project" : "database";
}

/* What a source lacks (for a note), and whether it is exact: host, database, schema and table
 * all known, except the levels in `implicit` and the host of a connector without one. The
 * connection's label leads the note, so a partial ODBC source says which connection it is. */
static const char *finish_note(evaluator *e, const conn *cn, src *s, unsigned implicit, const char *note)
{
	bool need_host = !(cn->flags & CF_NO_HOST);
	bool need_db = !(implicit & LVB(LV_DATABASE)), need_schema = !(implicit & LVB(LV_SCHEMA));
	if (!note && need_host && !s->host)
		note = "the server is not named";
	if (!note && need_db && !s->database)
		note = afmt(e->c, "the %s is not named", db_word(cn));
	if (!note && need_schema && !s->schema)
		note = "the schema is not named";
	s->exact = (s->host || !need_host) && (s->database || !need_db) && (s->schema || !need_schema) && s->table &&
		   !note;
	if (note && cn->label)
		note = afmt(e->c, "%s: %s", cn->label, note);
	return note;
}

/* The source a navigation stands for (made once, so the same step is one source). */
static src *nav_source(evaluator *e, nav *nv)
{
	if (nv->made)
		return nv->made;
	src *s = aalloc(e->c, sizeof *s);
	if (!s)
		return NULL;
	const conn *cn = nv->cn;
	s->type = cn->type;
	s->host = cn->host;
	s->warehouse = cn->warehouse;
	s->http_path = cn->http_path;
	s->database = nv->db ? nv->db : nv->level < LV_DATABASE ? cn->default_db : NULL;
	s->schema = nv->schema ? nv->schema : nv->level < LV_SCHEMA ? cn->default_schema : NULL;
	s->table = nv->table;
	s->kind = nv->kind ? nv->kind : "table";
	const char *note = note_add(e->c, cn->dyn, nv->dyn);
	if (nv->level < LV_TABLE && cn->flat)
		note = note_add(e->c, note, "no table picked from the ODBC source");
	else if (nv->level < LV_TABLE)
		note = note_add(e->c, note, afmt(e->c, "navigation stops at the %s level: no table named",
						 level_name(nv->level)));
	if (nv->in_order && nv->level >= LV_DATABASE)
		note = note_add(e->c, note, "the navigation does not say which level each name is (no Kind): "
					    "read as catalog, schema and table in order");
	if (!note && cn->flat && (!s->database || !s->schema))
		note = "flat ODBC navigation (HierarchicalNavigation off) does not name the table's database and schema";
	s->note = finish_note(e, cn, s, nv->implicit, note);
	nv->made = s;
	return s;
}

/* Every source v stands for: its own sources, a navigation, the items of a list or
 * record. Computed once per value: values share items (a = {b, b}), so walking them
 * again each time would be exponential. The cache is the only thing ever written to a
 * value after it is made, hence the cast. */
static const srcset *sources_of(evaluator *e, const val *cv, int depth)
{
	static const srcset none = { 0 };
	val *v = (val *)cv;
	if (v->all_done)
		return &v->all;
	if (depth > PB_MLINEAGE_MAX_DEPTH) {
		fail(e->c, PB_ELIMIT, "M value nested more than %d levels", PB_MLINEAGE_MAX_DEPTH);
		return &none;
	}
	srcset set = srcs_share(&v->srcs);
	if (v->k == V_NAV) {
		src *s = nav_source(e, v->nv);
		if (s)
			srcs_add(e, &set, s);
	}
	for (size_t i = 0; (v->k == V_LIST || v->k == V_RECORD || v->k == V_ALT) && i < v->nitems && !e->c->rc; i++)
		srcs_union(e, &set, sources_of(e, v->items[i], depth + 1));
	if (e->c->rc)
		return &none;
	v->all = set;
	v->all_done = true;
	return &v->all;
}

/* Adds to *set every source v stands for (sources_of). */
static int materialize(evaluator *e, const val *v, srcset *set, int depth)
{
	if (!v || e->c->rc)
		return e->c->rc;
	return srcs_union(e, set, sources_of(e, v, depth));
}

static const val *rec_field(const val *rec, const char *name)
{
	if (!rec || rec->k != V_RECORD)
		return NULL;
	for (size_t i = 0; i < rec->nitems; i++)
		if (str_ieq(rec->names[i], name))
			return rec->items[i];
	return NULL;
}

/* Text of a value, or NULL with *why set to what makes it unknown. */
static const char *text_of(evaluator *e, const val *v, const char *what, const char **why)
{
	if (v && v->k == V_TEXT)
		return v->text;
	if (!v)
		*why = afmt(e->c, "%s is missing", what);
	else if (v->k == V_ALT)
		*why = afmt(e->c, "%s is chosen by a condition that is not known", what);
	else if (v->k == V_UNKNOWN && v->why)
		*why = afmt(e->c, "%s is dynamic (%s)", what, v->why);
	else
		*why = afmt(e->c, "%s is not a text value", what);
	return NULL;
}

static bool is_text_alt(const val *v)
{
	if (!v || v->k != V_ALT)
		return false;
	for (size_t i = 0; i < v->nitems; i++)
		if (v->items[i]->k != V_TEXT)
			return false;
	return true;
}

/* One of items[0..n) (n >= 1, none NULL): nested alternatives are flattened, repeats
 * dropped. Past PB_MLINEAGE_MAX_ALTS the value is not known and carries every item's
 * sources. */
static val *mk_alt(evaluator *e, val *const *items, size_t n)
{
	val **v = aalloc(e->c, (PB_MLINEAGE_MAX_ALTS + 1) * sizeof *v);
	if (!v)
		return NULL;
	size_t cnt = 0;
	bool over = false;
	for (size_t i = 0; i < n; i++) {
		size_t nsub = items[i]->k == V_ALT ? items[i]->nitems : 1;
		for (size_t k = 0; k < nsub; k++) {
			val *x = items[i]->k == V_ALT ? items[i]->items[k] : items[i];
			bool seen = false;
			for (size_t j = 0; j < cnt && !seen; j++)
				seen = v[j] == x || (v[j]->k == V_TEXT && x->k == V_TEXT && !strcmp(v[j]->text, x->text));
			if (seen)
				continue;
			if (cnt == PB_MLINEAGE_MAX_ALTS)
				over = true;
			else
				v[cnt++] = x;
		}
	}
	if (over) {
		val *r = unknown(e, afmt(e->c, "chosen among more than %d values", PB_MLINEAGE_MAX_ALTS));
		for (size_t i = 0; r && i < n; i++)
			materialize(e, items[i], &r->srcs, 0);
		return e->c->rc ? NULL : r;
	}
	if (cnt == 1)
		return v[0];
	val *r = mkval(e, V_ALT);
	if (r) {
		r->items = v;
		r->nitems = cnt;
	}
	return r;
}

/* ---- parameters and shared queries */

static int param_index(const evaluator *e, const char *name)
{
	for (size_t i = 0; i < e->nparams; i++)
		if (e->params[i].name && !strcmp(e->params[i].name, name))
			return (int)i;
	return -1;
}

static val *eval_param(evaluator *e, int i)
{
	if (e->param_val[i])
		return e->param_val[i];
	const char *name = e->params[i].name;
	if (e->param_busy[i])
		return unknown(e, afmt(e->c, "%s refers to itself", name));
	if (e->param_depth >= PB_MLINEAGE_MAX_PARAM_DEPTH)
		return unknown(e, afmt(e->c, "%s: more than %d shared expressions in a chain", name,
				       PB_MLINEAGE_MAX_PARAM_DEPTH));
	const char *text = e->params[i].value ? e->params[i].value : "";
	if (!e->param_ast[i]) {
		size_t len = strnlen(text, PB_MLINEAGE_MAX_BYTES + 1);
		if (len > PB_MLINEAGE_MAX_BYTES)
			return unknown(e, afmt(e->c, "shared expression %s is longer than %u bytes", name,
					       PB_MLINEAGE_MAX_BYTES));
		/* a shared expression that does not parse makes only its users unknown */
		ctx sub = { .err = NULL };
		char suberr[PB_ERR_MAX];
		sub.err = suberr;
		sub.src = text;
		node *ast = parse_document(&sub, text, len);
		if (sub.rc == PB_EINVAL) {
			/* the sub-arena is merged into ours so its tree lives as long as we do */
			arena_free(&sub);
			return unknown(e, afmt(e->c, "shared expression %s does not parse: %s", name, suberr));
		}
		if (sub.rc) {
			arena_free(&sub);
			fail(e->c, sub.rc, "shared expression %s: %s", name, suberr);
			return NULL;
		}
		/* hand the chunks to the main arena (ceiling counted once more) */
		chunk *last = sub.chunks;
		while (last && last->next)
			last = last->next;
		if (last) {
			last->next = e->c->chunks;
			e->c->chunks = sub.chunks;
			e->c->total += sub.total;
			if (e->c->total > PB_MLINEAGE_MAX_MEMORY) {
				fail(e->c, PB_ELIMIT, "M expressions need more than %u bytes of working memory",
				     PB_MLINEAGE_MAX_MEMORY);
				return NULL;
			}
		}
		e->param_ast[i] = ast;
	}
	e->param_busy[i] = true;
	e->param_depth++;
	val *v = eval(e, e->param_ast[i], NULL);
	e->param_depth--;
	e->param_busy[i] = false;
	e->param_val[i] = v;
	return v;
}

/* ---- names */

static val *lookup(evaluator *e, const char *name, const scope *sc, bool *found)
{
	*found = true;
	for (const scope *s = sc; s; s = s->up) {
		const node *b = s->let;
		if (b->k == N_FUNC) {
			/* function parameters: their values are not known here */
			for (size_t i = 0; i < b->nnames; i++)
				if (!strcmp(b->names[i], name))
					return unknown(e, afmt(e->c, "function parameter %s", name));
			continue;
		}
		for (size_t i = 0; i < b->nnames; i++) {
			if (strcmp(b->names[i], name))
				continue;
			if (s->memo[i])
				return s->memo[i];
			if (s->busy[i])
				return unknown(e, afmt(e->c, "step %s refers to itself", name));
			s->busy[i] = true;
			val *v = eval(e, b->kids[i], s);
			s->busy[i] = false;
			s->memo[i] = v;
			return v;
		}
	}
	int pi = param_index(e, name);
	if (pi >= 0)
		return eval_param(e, pi);
	*found = false;
	/* library values (JoinKind.LeftOuter, Int64.Type, #date) are not user names */
	bool library = strchr(name, '.') || name[0] == '#';
	bool listed = library;
	for (size_t i = 0; i < e->undefined.n && !listed; i++)
		listed = !strcmp(e->undefined.v[i], name);
	if (!listed && e->undefined.n < 16)
		pvec_push(e->c, &e->undefined, (void *)name);
	return unknown(e, afmt(e->c, "%s is not defined in the expression or the model's parameters", name));
}

/* ---- calls */

/* The connector functions and the navigation Power BI Desktop writes after each (what a
 * model made with Get Data holds; the connectors' pages on learn.microsoft.com/power-query/
 * connectors/ and learn.microsoft.com/powerquery-m/ describe the functions and options):
 *  - Snowflake.Databases(host, warehouse[, [Role=..]]): X{[Name=db,Kind="Database"]}[Data]
 *    {[Name=schema,Kind="Schema"]}[Data]{[Name=t,Kind="Table"|"View"]}[Data]
 *    (shared/reference/tmdl.md section 10);
 *  - Databricks.Catalogs / DatabricksMultiCloud.Catalogs(host, httpPath[, [Catalog=..,
 *    Database=..]]): the same Name/Kind levels, or X{[Item=t,Schema=s,Catalog=c]}[Data];
 *    Databricks.Query(host, httpPath[, options]) is a function of a SQL text;
 *  - Sql.Database(server, db[, [Query=".."]]): X{[Schema="dbo",Item=t]}[Data]; the same for
 *    Azure SQL, Azure Synapse (*.sql.azuresynapse.net) and the Fabric Warehouse and Lakehouse
 *    SQL analytics endpoint (*.datawarehouse.fabric.microsoft.com); Sql.Databases(server)
 *    first X{[Name=db]}[Data] (connectors/sql-server, azure-sql-database,
 *    azure-sql-data-warehouse);
 *  - PostgreSQL.Database(server, db[, [Query=..]]): X{[Schema="public",Item=t]}[Data]
 *    (connectors/postgresql);
 *  - AmazonRedshift.Database(server, db): X{[Name=schema]}[Data]{[Name=t]}[Data]
 *    (connectors/amazon-redshift);
 *  - MySQL.Database(server, db[, [ReturnSingleDatabase=true, Query=..]]):
 *    X{[Schema=db,Item=t]}[Data]: MySQL has no schemas, its databases are listed as such
 *    (connectors/mysql-database);
 *  - Oracle.Database(server[, [HierarchicalNavigation=true, Query=..]]) where server is a TNS
 *    name or host[:port]/service: X{[Schema="HR",Item=t]}[Data], or with the full hierarchy
 *    X{[Schema="HR"]}[Data]{[Name=t]}[Data] (connectors/oracle-database);
 *  - GoogleBigQuery.Database([BillingProject=..]) (and GoogleBigQueryAad.Database): no server;
 *    X{[Name=project]}[Data]{[Name=dataset,Kind="Schema"]}[Data]{[Name=t,Kind="Table"]}[Data]
 *    ("Source = GoogleBigQuery.Database([BillingProject=...])": connectors/google-bigquery);
 *  - AmazonAthena.Databases(dsn[, ..]): X{[Name="AwsDataCatalog",Kind="Database"]}[Data]
 *    {[Name=db,Kind="Schema"]}[Data]{[Name=t,Kind="Table"]}[Data]: data catalog, database,
 *    table (connectors/amazon-athena);
 *  - Odbc.DataSource(connection[, [HierarchicalNavigation=true]]): the levels the driver has,
 *    each with its Kind (Database, Schema, Table/View), or, by default, a flat list where
 *    X{[Name=t]}[Data] picks a table; Odbc.Query(connection, sql) (powerquery-m/odbc-datasource,
 *    odbc-query). */
typedef struct connector {
	const char *fn;
	const char *type;
	int level;            /* navigation level of the function's result */
	int host_arg;         /* -1: none */
	int second;           /* 1: warehouse, 2: http path, 3: database, 0: none */
	int options_arg;      /* -1: none */
	unsigned flags;       /* CF_* */
	unsigned implicit;    /* LVB() of levels the source has not got or names in its server */
	unsigned dialect;     /* SQL_* */
} connector;

static const connector connectors[] = {
	{ "Snowflake.Databases", "snowflake", LV_SERVER, 0, 1, 2, 0, 0, 0 },
	{ "Databricks.Catalogs", "databricks", LV_SERVER, 0, 2, 2, 0, 0, 0 },
	{ "DatabricksMultiCloud.Catalogs", "databricks", LV_SERVER, 0, 2, 2, 0, 0, 0 },
	{ "Databricks.Query", "databricks", LV_SERVER, 0, 2, 2, CF_QUERY_FN, 0, 0 },
	{ "DatabricksMultiCloud.Query", "databricks", LV_SERVER, 0, 2, 2, CF_QUERY_FN, 0, 0 },
	{ "Sql.Database", "sql", LV_DATABASE, 0, 3, 2, 0, 0, 0 },
	{ "Sql.Databases", "sql", LV_SERVER, 0, 0, 1, 0, 0, 0 },
	{ "PostgreSQL.Database", "postgresql", LV_DATABASE, 0, 3, 2, 0, 0, 0 },
	{ "AmazonRedshift.Database", "redshift", LV_DATABASE, 0, 3, 2, 0, 0, 0 },
	{ "MySQL.Database", "mysql", LV_DATABASE, 0, 3, 2, CF_SCHEMA_IS_DB, LVB(LV_SCHEMA), 0 },
	{ "Oracle.Database", "oracle", LV_DATABASE, 0, 0, 1, CF_SERVICE, LVB(LV_DATABASE), 0 },
	{ "GoogleBigQuery.Database", "bigquery", LV_SERVER, -1, 0, 0, CF_NO_HOST | CF_BILLING, 0, SQL_BIGQUERY },
	{ "GoogleBigQueryAad.Database", "bigquery", LV_SERVER, -1, 0, 0, CF_NO_HOST | CF_BILLING, 0, SQL_BIGQUERY },
	{ "AmazonAthena.Databases", "athena", LV_SERVER, 0, 0, 2, 0, 0, 0 },
	{ "Odbc.DataSource", "odbc", LV_SERVER, 0, 0, 1, CF_ODBC, 0, 0 },
};

/* Functions that read data we do not trace: named in the expression's note. */
static const char *const other_source_suffixes[] = {
	".Contents", ".Database", ".Databases", ".Catalogs", ".Query", ".DataLake", ".Feed", ".Files",
	".Tables", ".DataSource", NULL,
};

static void note_other_function(evaluator *e, const char *fn)
{
	size_t l = strlen(fn);
	bool src_like = false;
	for (size_t i = 0; other_source_suffixes[i]; i++) {
		size_t s = strlen(other_source_suffixes[i]);
		if (l > s && !strcmp(fn + l - s, other_source_suffixes[i]))
			src_like = true;
	}
	if (!src_like || !strncmp(fn, "Table.", 6) || !strncmp(fn, "Value.", 6) || !strncmp(fn, "Json.", 5) ||
	    !strncmp(fn, "Binary.", 7) || !strncmp(fn, "Text.", 5))
		return;
	for (size_t i = 0; i < e->unknown_fns.n; i++)
		if (!strcmp(e->unknown_fns.v[i], fn))
			return;
	if (e->unknown_fns.n < 16)
		pvec_push(e->c, &e->unknown_fns, (void *)fn);
}

/* ODBC connection strings: `key=value;key={value with ;}` (keys any case). */
static bool odbc_secret_key(const char *k, size_t n)
{
	return (n == 3 && !strncasecmp(k, "pwd", 3)) || (n == 8 && !strncasecmp(k, "password", 8));
}

/* The value of key in an ODBC connection string (arena copy, braces removed), or NULL. */
static const char *odbc_value(ctx *c, const char *s, const char *key)
{
	size_t kl = strlen(key);
	while (*s) {
		while (*s == ' ' || *s == ';')
			s++;
		const char *eq = strchr(s, '=');
		if (!eq)
			return NULL;
		const char *v = eq + 1, *end;
		if (*v == '{') {
			end = strchr(v, '}');
			end = end ? end + 1 : v + strlen(v);
		} else {
			end = strchr(v, ';');
			end = end ? end : v + strlen(v);
		}
		size_t n = (size_t)(eq - s);
		while (n && s[n - 1] == ' ')
			n--;
		if (n == kl && !strncasecmp(s, key, kl)) {
			const char *a = v, *b = end;
			if (*a == '{') {
				a++;
				if (b > a && b[-1] == '}')
					b--;
			}
			return astrndup(c, a, (size_t)(b - a));
		}
		s = end;
	}
	return NULL;
}

/* The connection as pbiport shows it: the text without pwd/password values. */
static const char *odbc_redacted(ctx *c, const char *s)
{
	if (!odbc_value(c, s, "pwd") && !odbc_value(c, s, "password"))
		return s;
	sbuf b;
	sbuf_init(&b, PB_MLINEAGE_MAX_BYTES);
	int rc = 0;
	while (*s) {
		const char *start = s;
		const char *eq = strchr(s, '=');
		const char *v = eq ? eq + 1 : s + strlen(s);
		const char *end = *v == '{' ? strchr(v, '}') : strchr(v, ';');
		end = end ? end + (*v == '{') : v + strlen(v);
		while (start < end && (*start == ' ' || *start == ';'))
			start++;
		size_t klen = eq && eq > start ? (size_t)(eq - start) : 0;
		while (klen && start[klen - 1] == ' ')
			klen--;
		if (end > start && !odbc_secret_key(start, klen)) {
			if (b.len)
				rc |= sbuf_addc(&b, ';');
			rc |= sbuf_add(&b, start, (size_t)(end - start));
		}
		s = *end ? end + 1 : end;
	}
	const char *out = rc ? "(ODBC connection)" : astrndup(c, sbuf_str(&b), b.len);
	sbuf_release(&b);
	return out;
}

/* An ODBC connection: text or a record of text fields ([dsn="x"]). Sets the connection's
 * label (its driver or DSN: notes name it), its default database, and MySQL's dialect. */
static const char *odbc_connection(evaluator *e, conn *cn, const val *v, const char **why)
{
	const char *text = NULL;
	if (v && v->k == V_RECORD) {
		sbuf b;
		sbuf_init(&b, PB_MLINEAGE_MAX_BYTES);
		int rc = 0;
		for (size_t i = 0; i < v->nitems && !rc; i++) {
			if (v->items[i]->k != V_TEXT)
				continue;
			rc |= sbuf_addf(&b, "%s%s=%s", b.len ? ";" : "", v->names[i], v->items[i]->text);
		}
		text = rc || !b.len ? NULL : astrndup(e->c, sbuf_str(&b), b.len);
		sbuf_release(&b);
		if (!text)
			*why = "the ODBC connection is not known";
	} else {
		text = text_of(e, v, "the ODBC connection", why);
	}
	if (!text) {
		cn->label = "ODBC";
		return NULL;
	}
	const char *driver = odbc_value(e->c, text, "driver"), *dsn = odbc_value(e->c, text, "dsn");
	cn->label = driver ? afmt(e->c, "ODBC driver %s", driver) : dsn ? afmt(e->c, "ODBC DSN %s", dsn) : "ODBC";
	cn->default_db = odbc_value(e->c, text, "database");
	if (!cn->default_db)
		cn->default_db = odbc_value(e->c, text, "db");
	const char *who = driver ? driver : dsn ? dsn : "";
	if (strcasestr(who, "mysql") || strcasestr(who, "mariadb")) {
		cn->implicit |= LVB(LV_SCHEMA);   /* database.table, as MySQL.Database */
		cn->flags |= CF_SCHEMA_IS_DB;
	}
	return odbc_redacted(e->c, text);
}

/* Oracle's server: a TNS name, or host[:port]/service (EZConnect, maybe //-prefixed): the
 * service names the database. */
static const char *oracle_service(ctx *c, const char *server)
{
	if (!server)
		return NULL;
	if (!strncmp(server, "//", 2))
		server += 2;
	const char *slash = strchr(server, '/');
	if (!slash || !slash[1])
		return NULL;
	const char *end = slash + 1 + strcspn(slash + 1, ":/ ");
	return end > slash + 1 ? astrndup(c, slash + 1, (size_t)(end - slash - 1)) : NULL;
}

/* Sources of one native SQL text run against a navigation (nv may be NULL for a bare
 * connector): names of 1-3 parts take the missing ones from the navigation. */
static int sql_text_sources(evaluator *e, const conn *cn, const nav *nv, const char *sql, const char *why,
			    srcset *out)
{
	const char *ctx_db = nv && nv->db ? nv->db : cn->default_db;
	const char *ctx_schema = nv && nv->schema ? nv->schema : cn->default_schema;
	const char *ctx_note = note_add(e->c, cn->dyn, nv ? nv->dyn : NULL);
	unsigned implicit = nv ? nv->implicit : cn->implicit;
	bool no_schema = implicit & LVB(LV_SCHEMA);
	pvec names = { 0 };
	if (sql && sql_tables(e->c, sql, cn->dialect, &names))
		return e->c->rc;
	if (!sql || !names.n) {
		src *s = aalloc(e->c, sizeof *s);
		if (!s)
			return e->c->rc;
		*s = (src){ .type = cn->type, .host = cn->host, .warehouse = cn->warehouse, .http_path = cn->http_path,
			    .database = ctx_db, .schema = ctx_schema, .kind = "query" };
		s->note = note_add(e->c, ctx_note, sql ? "no table found in the native query" : why);
		if (cn->label)
			s->note = afmt(e->c, "%s: %s", cn->label, s->note);
		return srcs_add(e, out, s);
	}
	for (size_t i = 0; i < names.n && !e->c->rc; i++) {
		const sqlname *nm = names.v[i];
		src *s = aalloc(e->c, sizeof *s);
		if (!s)
			return e->c->rc;
		*s = (src){ .type = cn->type, .host = cn->host, .warehouse = cn->warehouse, .http_path = cn->http_path,
			    .kind = "query" };
		const char *note = ctx_note;
		s->table = nm->part[nm->nparts - 1];
		if (no_schema) {   /* MySQL: database.table */
			s->database = nm->nparts >= 2 ? nm->part[nm->nparts - 2] : ctx_db;
			if (nm->nparts == 3)
				note = note_add(e->c, note, afmt(e->c, "the query names %s with three parts, where "
								      "%s has database and table only",
								 s->table, cn->type));
		} else {
			s->schema = nm->nparts >= 2 ? nm->part[nm->nparts - 2] : ctx_schema;
			s->database = nm->nparts == 3 ? nm->part[0] : ctx_db;
			/* an ODBC driver that is not named: database.table and schema.table look alike */
			if ((cn->flags & CF_ODBC) && nm->nparts == 2 && !(cn->implicit & LVB(LV_DATABASE)))
				s->database = NULL;
		}
		if (!no_schema && !s->schema)
			note = note_add(e->c, note, afmt(e->c, "the query names %s without a schema", s->table));
		if (!s->database && !(implicit & LVB(LV_DATABASE)))
			note = note_add(e->c, note, afmt(e->c, "the query names %s without a %s", s->table, db_word(cn)));
		s->note = finish_note(e, cn, s, implicit, note);
		srcs_add(e, out, s);
	}
	return e->c->rc;
}

/* Sources of native SQL (sqlv: a text, or texts one of which a condition picks). */
static int query_sources(evaluator *e, const conn *cn, const nav *nv, const val *sqlv, srcset *out)
{
	if (is_text_alt(sqlv)) {
		for (size_t i = 0; i < sqlv->nitems && !e->c->rc; i++)
			sql_text_sources(e, cn, nv, sqlv->items[i]->text, NULL, out);
		return e->c->rc;
	}
	const char *why = NULL;
	const char *sql = text_of(e, sqlv, "the native query text", &why);
	return sql_text_sources(e, cn, nv, sql, why, out);
}

static val *call_connector(evaluator *e, const connector *k, val **args, size_t nargs)
{
	conn *cn = aalloc(e->c, sizeof *cn);
	if (!cn)
		return NULL;
	cn->type = k->type;
	cn->flags = k->flags;
	cn->implicit = k->implicit;
	cn->dialect = k->dialect;
	const char *why = NULL;
	const val *hostv = k->host_arg >= 0 && k->host_arg < (int)nargs ? args[k->host_arg] : NULL;
	if (k->flags & CF_ODBC)
		cn->host = odbc_connection(e, cn, hostv, &why);
	else if (k->host_arg >= 0)
		cn->host = text_of(e, hostv, !strcmp(k->type, "athena") ? "the DSN" : "the server", &why);
	cn->dyn = note_add(e->c, cn->dyn, why);
	const char *second = NULL;
	if (k->second) {
		why = NULL;
		second = text_of(e, nargs > 1 ? args[1] : NULL,
				 k->second == 1 ? "the warehouse" : k->second == 2 ? "the HTTP path" : "the database",
				 &why);
		/* a missing warehouse or path does not change which table is read */
		if (k->second == 3)
			cn->dyn = note_add(e->c, cn->dyn, why);
	}
	if (k->second == 1)
		cn->warehouse = second;
	else if (k->second == 2)
		cn->http_path = second;
	const val *opts = k->options_arg >= 0 && k->options_arg < (int)nargs ? args[k->options_arg] : NULL;
	if (!strcmp(k->type, "databricks")) {
		const val *cat = rec_field(opts, "Catalog"), *db = rec_field(opts, "Database");
		if (cat && cat->k == V_TEXT && cat->text[0])
			cn->default_db = cat->text;
		if (db && db->k == V_TEXT && db->text[0])
			cn->default_schema = db->text;
	}
	if (k->flags & CF_BILLING) {   /* who pays, not where the tables are */
		const val *bill = rec_field(opts, "BillingProject");
		cn->warehouse = bill && bill->k == V_TEXT ? bill->text : NULL;
	}
	if (k->flags & CF_SERVICE)
		cn->default_db = oracle_service(e->c, cn->host);
	if (k->flags & CF_ODBC) {
		const val *hier = rec_field(opts, "HierarchicalNavigation");
		cn->flat = !hier || (hier->k == V_LOGICAL && !hier->truth);
	}
	nav *nv = aalloc(e->c, sizeof *nv);
	val *v = mkval(e, V_NAV);
	if (!nv || !v)
		return NULL;
	nv->cn = cn;
	nv->level = cn->flat ? LV_SCHEMA : k->level;
	nv->implicit = cn->implicit;
	nv->query_fn = k->flags & CF_QUERY_FN;
	if (k->second == 3)
		nv->db = second;
	if (k->flags & CF_SERVICE)
		nv->db = cn->default_db;
	v->nv = nv;
	const val *query = rec_field(opts, "Query");
	if (query) {   /* Sql.Database(server, db, [Query="..."]) and the like */
		val *r = mkval(e, V_UNKNOWN);
		if (!r || query_sources(e, cn, nv, query, &r->srcs))
			return NULL;
		return r;
	}
	return v;
}

/* A connector whose server, database (or ...) argument is one of several texts: one
 * connection per text (bounded by mk_alt). */
static val *call_connector_alts(evaluator *e, const connector *k, val **args, size_t nargs)
{
	for (size_t i = 0; i < nargs && i < 3; i++) {
		if (!is_text_alt(args[i]))
			continue;
		val *const alt = args[i];
		val **each = aalloc(e->c, alt->nitems * sizeof *each);
		val **sub = aalloc(e->c, (nargs + 1) * sizeof *sub);
		if (!each || !sub)
			return NULL;
		memcpy(sub, args, nargs * sizeof *sub);
		for (size_t j = 0; j < alt->nitems; j++) {
			sub[i] = alt->items[j];
			if (!(each[j] = call_connector_alts(e, k, sub, nargs)))
				return NULL;
		}
		return mk_alt(e, each, alt->nitems);
	}
	return call_connector(e, k, args, nargs);
}

/* Adds the sources of native SQL run against target (a navigation, one of several, or
 * anything else, whose sources it then carries). */
static int native_query_sources(evaluator *e, const val *target, const val *sql, srcset *out)
{
	if (target->k == V_ALT) {
		for (size_t i = 0; i < target->nitems && !e->c->rc; i++)
			native_query_sources(e, target->items[i], sql, out);
		return e->c->rc;
	}
	if (target->k == V_NAV && !target->nv->query_fn) {
		query_sources(e, target->nv->cn, target->nv, sql, out);
		return srcs_union(e, out, &target->srcs);
	}
	materialize(e, target, out, 0);
	return materialize(e, sql, out, 0);
}

static val *call_native_query(evaluator *e, val **args, size_t nargs)
{
	val *r = mkval(e, V_UNKNOWN);
	if (!r)
		return NULL;
	const val *target = nargs > 0 ? args[0] : NULL;
	if (target && (target->k == V_NAV || target->k == V_ALT)) {
		native_query_sources(e, target, nargs > 1 ? args[1] : NULL, &r->srcs);
		for (size_t i = 2; i < nargs; i++)
			materialize(e, args[i], &r->srcs, 0);
		return e->c->rc ? NULL : r;
	}
	for (size_t i = 0; i < nargs; i++)
		materialize(e, args[i], &r->srcs, 0);
	return r;
}

static val *call_odbc_query(evaluator *e, val **args, size_t nargs)
{
	conn *cn = aalloc(e->c, sizeof *cn);
	val *r = mkval(e, V_UNKNOWN);
	if (!cn || !r)
		return NULL;
	cn->type = "odbc";
	cn->flags = CF_ODBC;
	const char *why = NULL;
	cn->host = odbc_connection(e, cn, nargs > 0 ? args[0] : NULL, &why);
	cn->dyn = why;
	query_sources(e, cn, NULL, nargs > 1 ? args[1] : NULL, &r->srcs);
	return r;
}

static val *call_text_combine(evaluator *e, val **args, size_t nargs)
{
	const val *list = nargs > 0 ? args[0] : NULL;
	const val *sep = nargs > 1 ? args[1] : NULL;
	if (!list || list->k != V_LIST || (sep && sep->k != V_TEXT))
		return unknown(e, "Text.Combine of values that are not known");
	sbuf b;
	sbuf_init(&b, PB_MLINEAGE_MAX_BYTES);
	int rc = 0;
	for (size_t i = 0; i < list->nitems; i++) {
		if (list->items[i]->k != V_TEXT) {
			sbuf_release(&b);
			return unknown(e, "Text.Combine of values that are not known");
		}
		if (i && sep)
			rc |= sbuf_adds(&b, sep->text);
		rc |= sbuf_adds(&b, list->items[i]->text);
	}
	val *v = rc ? unknown(e, "text longer than the limit") : mkval(e, V_TEXT);
	if (v && !rc)
		v->text = astrndup(e->c, sbuf_str(&b), b.len);
	sbuf_release(&b);
	return v;
}

static val *eval_call(evaluator *e, const node *n, const scope *sc)
{
	size_t nargs = n->nkids - 1;
	val **args = aalloc(e->c, (nargs + 1) * sizeof *args);
	if (!args)
		return NULL;
	for (size_t i = 0; i < nargs; i++)
		if (!(args[i] = eval(e, n->kids[i + 1], sc)))
			return NULL;
	const node *callee = n->kids[0];
	const char *fn = NULL;
	if (callee->k == N_IDENT) {
		/* a step or parameter of that name shadows the library function */
		bool local = false;
		for (const scope *s = sc; s && !local; s = s->up)
			for (size_t i = 0; i < s->let->nnames; i++)
				if (!strcmp(s->let->names[i], callee->text))
					local = true;
		if (!local && param_index(e, callee->text) < 0)
			fn = callee->text;
	}
	if (fn) {
		for (size_t i = 0; i < sizeof connectors / sizeof connectors[0]; i++)
			if (!strcmp(fn, connectors[i].fn))
				return call_connector_alts(e, &connectors[i], args, nargs);
		if (!strcmp(fn, "Value.NativeQuery"))
			return call_native_query(e, args, nargs);
		if (!strcmp(fn, "Odbc.Query"))
			return call_odbc_query(e, args, nargs);
		if (!strcmp(fn, "Text.Combine"))
			return call_text_combine(e, args, nargs);
		note_other_function(e, fn);
	}
	/* any other function: its result comes from whatever its arguments read */
	val *r = mkval(e, V_UNKNOWN);
	if (!r)
		return NULL;
	r->why = fn ? afmt(e->c, "result of %s", fn) : "result of a function call";
	if (!fn) {
		val *f = eval(e, callee, sc);
		if (f && f->k == V_NAV && f->nv->query_fn) {   /* Databricks.Query(..)("SELECT ...") */
			query_sources(e, f->nv->cn, f->nv, nargs ? args[0] : NULL, &r->srcs);
			for (size_t i = 1; i < nargs; i++)
				materialize(e, args[i], &r->srcs, 0);
			return e->c->rc ? NULL : r;
		}
		materialize(e, f, &r->srcs, 0);
	}
	for (size_t i = 0; i < nargs; i++)
		materialize(e, args[i], &r->srcs, 0);
	return e->c->rc ? NULL : r;
}

/* ---- navigation */

/* Moves a navigation down to level. Levels jumped over take the connection's defaults
 * (Databricks Catalog/Database options), as the connector does; an ODBC driver that a Kind
 * jumps over has not got them. */
static void skip_levels(nav *nv, int level, bool by_kind)
{
	if (level <= nv->level)
		return;
	for (int l = nv->level + 1; by_kind && (nv->cn->flags & CF_ODBC) && l < level; l++)
		nv->implicit |= LVB(l);
	if (nv->level < LV_DATABASE && level > LV_DATABASE && !nv->db)
		nv->db = nv->cn->default_db;
	if (nv->level < LV_SCHEMA && level > LV_SCHEMA && !nv->schema)
		nv->schema = nv->cn->default_schema;
	nv->level = level;
}

static val *nav_step(evaluator *e, const val *target, const val *key)
{
	const nav *old = target->nv;
	if (old->level >= LV_TABLE || old->query_fn) {   /* a row of the table: the table is the source */
		val *r = mkval(e, V_UNKNOWN);
		if (r)
			materialize(e, target, &r->srcs, 0);
		return r;
	}
	nav *nv = aalloc(e->c, sizeof *nv);
	val *v = mkval(e, V_NAV);
	if (!nv || !v)
		return NULL;
	*nv = *old;
	nv->made = NULL;
	v->nv = nv;
	v->srcs = srcs_share(&target->srcs);
	bool schema_is_db = nv->cn->flags & CF_SCHEMA_IS_DB;
	if (!key || key->k != V_RECORD) {
		nv->level++;
		nv->dyn = note_add(e->c, nv->dyn,
				   afmt(e->c, "the %s is picked by position or a computed key", level_name(nv->level)));
		if (nv->level == LV_DATABASE)
			nv->db = NULL;
		else if (nv->level == LV_SCHEMA)
			nv->schema = NULL;
		else
			nv->table = NULL;
		return v;
	}
	const char *why = NULL;
	const val *item = rec_field(key, "Item"), *schema = rec_field(key, "Schema");
	const val *catalog = rec_field(key, "Catalog");
	const val *name = rec_field(key, "Name");
	const val *kindv = rec_field(key, "Kind");
	const char *kind = kindv && kindv->k == V_TEXT ? kindv->text : NULL;
	if (item || schema || catalog) {
		if (!item && schema && name)   /* [Schema="HR", Name="EMPLOYEES"]: an item of the schema */
			item = name;
		if (catalog) {
			nv->db = text_of(e, catalog, afmt(e->c, "the %s name", db_word(nv->cn)), &why);
			nv->dyn = note_add(e->c, nv->dyn, why);
			why = NULL;
		}
		if (schema && schema_is_db) {   /* MySQL lists its databases as schemas */
			nv->db = text_of(e, schema, "the database name", &why);
			nv->dyn = note_add(e->c, nv->dyn, why);
			why = NULL;
			skip_levels(nv, LV_SCHEMA, false);
		} else if (schema) {
			nv->schema = text_of(e, schema, "the schema name", &why);
			nv->dyn = note_add(e->c, nv->dyn, why);
			why = NULL;
			skip_levels(nv, LV_SCHEMA, false);
		}
		if (item) {
			nv->table = text_of(e, item, "the table name", &why);
			nv->dyn = note_add(e->c, nv->dyn, why);
			skip_levels(nv, LV_TABLE, false);
			nv->kind = kind && str_ieq(kind, "View") ? "view" : "table";
		}
		return v;
	}
	int level = nv->level + 1;
	if (kind) {
		if (str_ieq(kind, "Database") || str_ieq(kind, "Catalog"))
			level = LV_DATABASE;
		else if (str_ieq(kind, "Schema"))
			level = schema_is_db ? LV_DATABASE : LV_SCHEMA;
		else if (str_ieq(kind, "Table") || str_ieq(kind, "View") || str_ieq(kind, "Function"))
			level = LV_TABLE;
	} else if ((nv->cn->flags & CF_ODBC) && !nv->cn->flat) {
		nv->in_order = true;   /* which of the driver's levels this is, nobody says */
	}
	if (schema_is_db && level == LV_SCHEMA)
		level = LV_TABLE;   /* database, then table */
	const char *what = level == LV_DATABASE ? afmt(e->c, "the %s name", db_word(nv->cn))
			   : level == LV_SCHEMA ? "the schema name" : "the table name";
	const char *text = text_of(e, name, what, &why);
	if (!name)
		why = afmt(e->c, "%s: the navigation key has no Name", what);
	nv->dyn = note_add(e->c, nv->dyn, why);
	if (level == LV_DATABASE) {
		nv->db = text;
	} else if (level == LV_SCHEMA) {
		nv->schema = text;
	} else {
		nv->table = text;
		nv->kind = kind && str_ieq(kind, "View") ? "view" : "table";
	}
	skip_levels(nv, level, kind != NULL);
	return v;
}

/* A navigation step whose key has a field one of several texts: one step per text. */
static val *nav_index(evaluator *e, const val *target, const val *key)
{
	for (size_t i = 0; key && key->k == V_RECORD && i < key->nitems; i++) {
		if (!is_text_alt(key->items[i]))
			continue;
		const val *alt = key->items[i];
		val **each = aalloc(e->c, alt->nitems * sizeof *each);
		if (!each)
			return NULL;
		for (size_t j = 0; j < alt->nitems; j++) {
			val *k2 = mkval(e, V_RECORD);
			val **items = aalloc(e->c, (key->nitems + 1) * sizeof *items);
			if (!k2 || !items)
				return NULL;
			memcpy(items, key->items, key->nitems * sizeof *items);
			items[i] = alt->items[j];
			k2->names = key->names;
			k2->items = items;
			k2->nitems = key->nitems;
			if (!(each[j] = nav_index(e, target, k2)))
				return NULL;
		}
		return mk_alt(e, each, alt->nitems);
	}
	return nav_step(e, target, key);
}

/* op applied to each alternative of alt, as one value (one of the results). */
static val *alt_map(evaluator *e, const val *alt, val *(*op)(evaluator *, val *, const void *), const void *arg)
{
	val **each = aalloc(e->c, alt->nitems * sizeof *each);
	if (!each)
		return NULL;
	for (size_t i = 0; i < alt->nitems; i++)
		if (!(each[i] = op(e, alt->items[i], arg)))
			return NULL;
	return mk_alt(e, each, alt->nitems);
}

static val *index_value(evaluator *e, val *target, const void *keyp)
{
	val *key = (val *)keyp;
	if (target->k == V_ALT)
		return alt_map(e, target, index_value, key);
	if (target->k == V_NAV)
		return nav_index(e, target, key);
	if (target->k == V_LIST && key->k == V_UNKNOWN && !key->srcs.n) {
		val *r = mkval(e, V_UNKNOWN);
		if (r)
			materialize(e, target, &r->srcs, 0);
		return r;
	}
	val *r = mkval(e, V_UNKNOWN);
	if (!r)
		return NULL;
	r->why = target->why;
	materialize(e, target, &r->srcs, 0);
	materialize(e, key, &r->srcs, 0);
	return r;
}

static val *eval_index(evaluator *e, const node *n, const scope *sc)
{
	val *target = eval(e, n->kids[0], sc);
	val *key = eval(e, n->kids[1], sc);
	if (!target || !key)
		return NULL;
	return index_value(e, target, key);
}

static val *field_value(evaluator *e, val *target, const void *namep)
{
	const char *name = namep;
	if (target->k == V_ALT)
		return alt_map(e, target, field_value, name);
	if (target->k == V_NAV)   /* [Data] of a navigation row: the navigation itself */
		return target;
	if (target->k == V_RECORD && name) {
		const val *f = rec_field(target, name);
		if (f)
			return (val *)f;
	}
	val *r = mkval(e, V_UNKNOWN);
	if (!r)
		return NULL;
	r->why = target->why;
	materialize(e, target, &r->srcs, 0);
	return r;
}

static val *eval_field(evaluator *e, const node *n, const scope *sc)
{
	val *target = eval(e, n->kids[0], sc);
	if (!target)
		return NULL;
	return field_value(e, target, n->text);
}

static val *eval_binop(evaluator *e, const node *n, const scope *sc)
{
	val *a = eval(e, n->kids[0], sc);
	val *b = eval(e, n->kids[1], sc);
	if (!a || !b)
		return NULL;
	if (!strcmp(n->text, "meta"))   /* "host" meta [IsParameterQuery=true]: the value */
		return a;
	if (!strcmp(n->text, "&") && a->k == V_TEXT && b->k == V_TEXT) {
		size_t la = strlen(a->text), lb = strlen(b->text);
		if (la + lb > PB_MLINEAGE_MAX_BYTES)
			return unknown(e, "text longer than the limit");
		val *v = mkval(e, V_TEXT);
		char *s = aalloc(e->c, la + lb + 1);
		if (!v || !s)
			return NULL;
		memcpy(s, a->text, la);
		memcpy(s + la, b->text, lb + 1);
		v->text = s;
		return v;
	}
	if ((!strcmp(n->text, "=") || !strcmp(n->text, "<>")) && a->k == V_TEXT && b->k == V_TEXT) {
		/* lets `if Environment = "PRD" then ... else ...` pick its branch */
		val *v = mkval(e, V_LOGICAL);
		if (v)
			v->truth = !strcmp(a->text, b->text) == !strcmp(n->text, "=");
		return v;
	}
	val *r = mkval(e, V_UNKNOWN);
	if (!r)
		return NULL;
	if (!strcmp(n->text, "&") || !strcmp(n->text, "??"))
		r->why = a->k == V_UNKNOWN && a->why ? a->why : b->why;
	materialize(e, a, &r->srcs, 0);
	materialize(e, b, &r->srcs, 0);
	return r;
}

static val *eval_aggregate(evaluator *e, const node *n, const scope *sc, enum val_kind k)
{
	val *v = mkval(e, k);
	if (!v)
		return NULL;
	v->nitems = n->nkids;
	v->names = n->names;
	v->items = aalloc(e->c, (n->nkids + 1) * sizeof *v->items);
	if (!v->items)
		return NULL;
	for (size_t i = 0; i < n->nkids; i++)
		if (!(v->items[i] = eval(e, n->kids[i], sc)))
			return NULL;
	return v;
}

static val *eval_inner(evaluator *e, const node *n, const scope *sc)
{
	switch (n->k) {
	case N_TEXT: {
		val *v = mkval(e, V_TEXT);
		if (v)
			v->text = n->text;
		return v;
	}
	case N_IDENT: {
		bool found;
		return lookup(e, n->text, sc, &found);
	}
	case N_LET: {
		scope *s = aalloc(e->c, sizeof *s);
		size_t nb = n->nkids - 1;
		if (!s)
			return NULL;
		s->up = sc;
		s->let = n;
		s->memo = aalloc(e->c, (nb + 1) * sizeof *s->memo);
		s->busy = aalloc(e->c, (nb + 1) * sizeof *s->busy);
		if (!s->memo || !s->busy)
			return NULL;
		/* in order first: steps usually use earlier ones, so recursion stays shallow */
		for (size_t i = 0; i < nb && !e->c->rc; i++) {
			if (s->memo[i])
				continue;
			s->busy[i] = true;
			s->memo[i] = eval(e, n->kids[i], s);
			s->busy[i] = false;
		}
		return e->c->rc ? NULL : eval(e, n->kids[nb], s);
	}
	case N_RECORD:
		return eval_aggregate(e, n, sc, V_RECORD);
	case N_LIST:
		return eval_aggregate(e, n, sc, V_LIST);
	case N_CALL:
		return eval_call(e, n, sc);
	case N_INDEX:
		return eval_index(e, n, sc);
	case N_FIELD:
		return eval_field(e, n, sc);
	case N_BINOP:
		return eval_binop(e, n, sc);
	case N_FUNC: {
		/* the body is evaluated once with unknown parameters: whatever tables it
		 * reads are read by whoever calls it */
		scope *s = aalloc(e->c, sizeof *s);
		if (!s)
			return NULL;
		s->up = sc;
		s->let = n;
		val *body = eval(e, n->kids[0], s);
		val *r = mkval(e, V_UNKNOWN);
		if (!body || !r)
			return NULL;
		r->why = "a function";
		materialize(e, body, &r->srcs, 0);
		return r;
	}
	case N_LOGICAL: {
		val *v = mkval(e, V_LOGICAL);
		if (v)
			v->truth = !strcmp(n->text, "true");
		return v;
	}
	case N_IF: {
		val *cond = eval(e, n->kids[0], sc);
		if (!cond)
			return NULL;
		if (cond->k == V_LOGICAL)
			return eval(e, n->kids[cond->truth ? 1 : 2], sc);
		/* the condition is not known: the result is either branch (the condition's own
		 * sources do not flow into it) */
		val *b[2] = { eval(e, n->kids[1], sc), NULL };
		if (!b[0] || !(b[1] = eval(e, n->kids[2], sc)))
			return NULL;
		return mk_alt(e, b, 2);
	}
	case N_ALT: {   /* try a otherwise b: a, or b when a fails */
		val **each = aalloc(e->c, (n->nkids + 1) * sizeof *each);
		if (!each)
			return NULL;
		for (size_t i = 0; i < n->nkids; i++)
			if (!(each[i] = eval(e, n->kids[i], sc)))
				return NULL;
		return mk_alt(e, each, n->nkids);
	}
	case N_OTHER:
	default: {
		val *r = mkval(e, V_UNKNOWN);
		if (!r)
			return NULL;
		for (size_t i = 0; i < n->nkids; i++) {
			val *k = eval(e, n->kids[i], sc);
			if (!k)
				return NULL;
			materialize(e, k, &r->srcs, 0);
		}
		return r;
	}
	}
}

static val *eval(evaluator *e, const node *n, const scope *sc)
{
	if (e->c->rc)
		return NULL;
	if (++e->c->evals > PB_MLINEAGE_MAX_EVALS) {
		fail(e->c, PB_ELIMIT, "M expression needs more than %d evaluation steps", PB_MLINEAGE_MAX_EVALS);
		return NULL;
	}
	if (++e->c->depth > PB_MLINEAGE_MAX_DEPTH * 4) {
		fail(e->c, PB_ELIMIT, "M steps refer to each other more than %d levels deep",
		     PB_MLINEAGE_MAX_DEPTH * 4);
		e->c->depth--;
		return NULL;
	}
	val *v = eval_inner(e, n, sc);
	e->c->depth--;
	if (!v && !e->c->rc)
		fail(e->c, PB_EINTERNAL, "M evaluation produced no value");
	return v;
}

/* ---------------------------------------------------------------- public API */

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool same_src(const mlineage_source *o, const src *s)
{
	return same_str(o->type, s->type) && same_str(o->host, s->host) && same_str(o->warehouse, s->warehouse) &&
	       same_str(o->http_path, s->http_path) && same_str(o->database, s->database) &&
	       same_str(o->schema, s->schema) && same_str(o->table, s->table) && !strcmp(o->kind, s->kind) &&
	       same_str(o->note, s->note);
}

static int dup_field(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return PB_OK;
	return (*out = xstrdup(s)) ? PB_OK : PB_ENOMEM;
}

static int copy_out(const srcset *set, mlineage_sources *out, char *err)
{
	out->v = calloc(set->n + 1, sizeof *out->v);
	if (!out->v)
		return pb_err(err, PB_ENOMEM, "out of memory copying M lineage");
	for (size_t i = 0; i < set->n; i++) {
		const src *s = set->v[i];
		bool seen = false;
		for (size_t j = 0; j < out->n && !seen; j++)
			seen = same_src(&out->v[j], s);
		if (seen)
			continue;
		mlineage_source *o = &out->v[out->n++];
		o->kind = s->kind;
		o->exact = s->exact;
		if (dup_field(s->type, &o->type) || dup_field(s->host, &o->host) ||
		    dup_field(s->warehouse, &o->warehouse) || dup_field(s->http_path, &o->http_path) ||
		    dup_field(s->database, &o->database) || dup_field(s->schema, &o->schema) ||
		    dup_field(s->table, &o->table) || dup_field(s->note, &o->note))
			return pb_err(err, PB_ENOMEM, "out of memory copying M lineage");
	}
	return PB_OK;
}

static int expression_note(evaluator *e, size_t nsources, char **out, char *err)
{
	sbuf b;
	int rc = 0;
	sbuf_init(&b, PB_ERR_MAX * 4);
	if (!nsources && !e->unknown_fns.n && !e->undefined.n)
		rc |= sbuf_adds(&b, "no data source found in the expression");
	if (e->unknown_fns.n) {
		rc |= sbuf_adds(&b, "data sources not traced: ");
		for (size_t i = 0; i < e->unknown_fns.n; i++)
			rc |= sbuf_addf(&b, "%s%s", i ? ", " : "", (const char *)e->unknown_fns.v[i]);
	}
	if (e->undefined.n) {
		rc |= sbuf_addf(&b, "%snot defined in the expression or the model's shared expressions: ",
				b.len ? "; " : "");
		for (size_t i = 0; i < e->undefined.n; i++)
			rc |= sbuf_addf(&b, "%s%s", i ? ", " : "", (const char *)e->undefined.v[i]);
	}
	if (e->truncated)
		rc |= sbuf_addf(&b, "%smore than %d sources: the rest were left out", b.len ? "; " : "",
				PB_MLINEAGE_MAX_SOURCES);
	*out = NULL;
	if (b.len && !rc)
		*out = sbuf_detach(&b, NULL);
	sbuf_release(&b);
	if (rc)
		return pb_err(err, PB_ENOMEM, "out of memory writing the M lineage note");
	return PB_OK;
}

int mlineage_parse(const char *m, const mlineage_param *params, size_t nparams, mlineage_sources *out,
		   char *err)
{
	ctx c = { .err = err, .src = m };
	memset(out, 0, sizeof *out);
	int rc;
	if (!m)
		return pb_err(err, PB_EINVAL, "no M expression");
	size_t len = strnlen(m, PB_MLINEAGE_MAX_BYTES + 1);
	if (len > PB_MLINEAGE_MAX_BYTES)
		return pb_err(err, PB_ELIMIT, "M expression longer than %u bytes", PB_MLINEAGE_MAX_BYTES);
	if (nparams > PB_TMDL_MAX_FILES * 10u)
		return pb_err(err, PB_ELIMIT, "more than %u shared expressions", PB_TMDL_MAX_FILES * 10u);
	evaluator e = { .c = &c, .params = params, .nparams = params ? nparams : 0 };
	node *root = parse_document(&c, m, len);
	if (root) {
		e.param_ast = aalloc(&c, (e.nparams + 1) * sizeof *e.param_ast);
		e.param_val = aalloc(&c, (e.nparams + 1) * sizeof *e.param_val);
		e.param_busy = aalloc(&c, (e.nparams + 1) * sizeof *e.param_busy);
	}
	srcset all = { 0 };
	if (!c.rc) {
		val *v = eval(&e, root, NULL);
		if (v)
			materialize(&e, v, &all, 0);
	}
	if ((rc = c.rc))
		goto out;
	if ((rc = copy_out(&all, out, err)) || (rc = expression_note(&e, out->n, &out->note, err)))
		goto out;
out:
	if (rc)
		mlineage_sources_release(out);
	arena_free(&c);
	return rc;
}

void mlineage_sources_release(mlineage_sources *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		mlineage_source *o = &s->v[i];
		free_each(o->type, o->host, o->warehouse, o->http_path, o->database, o->schema, o->table, o->note);
	}
	free(s->v);
	free(s->note);
	memset(s, 0, sizeof *s);
}

int mlineage_params_from_model(const tmdl_model *model, mlineage_param **out, size_t *n, char *err)
{
	*out = NULL;
	*n = 0;
	if (!model->n_expressions)
		return PB_OK;
	mlineage_param *v = calloc(model->n_expressions, sizeof *v);
	if (!v)
		return pb_err(err, PB_ENOMEM, "out of memory listing shared expressions");
	for (size_t i = 0; i < model->n_expressions; i++) {
		v[i].name = model->expressions[i].name;
		v[i].value = model->expressions[i].value;
	}
	*out = v;
	*n = model->n_expressions;
	return PB_OK;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *mlineage_source_json(const mlineage_source *s)
{
	bool dbx = s->type && !strcmp(s->type, "databricks");
	bool sf = s->type && !strcmp(s->type, "snowflake");
	bool bq = s->type && !strcmp(s->type, "bigquery");
	json_t *o = json_object();
	if (!o)
		return NULL;
	int bad = 0;
	bad |= json_object_set_new(o, "type", str_or_null(s->type));
	bad |= json_object_set_new(o, "host", str_or_null(s->host));
	if (sf)
		bad |= json_object_set_new(o, "warehouse", str_or_null(s->warehouse));
	if (bq)
		bad |= json_object_set_new(o, "billing_project", str_or_null(s->warehouse));
	if (dbx)
		bad |= json_object_set_new(o, "http_path", str_or_null(s->http_path));
	bad |= json_object_set_new(o, dbx ? "catalog" : "database", str_or_null(s->database));
	bad |= json_object_set_new(o, "schema", str_or_null(s->schema));
	bad |= json_object_set_new(o, "table", str_or_null(s->table));
	bad |= json_object_set_new(o, "kind", json_string(s->kind ? s->kind : "table"));
	bad |= json_object_set_new(o, "confidence", json_string(s->exact ? "exact" : "partial"));
	bad |= json_object_set_new(o, "note", str_or_null(s->note));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *mlineage_sources_json(const mlineage_sources *s)
{
	json_t *arr = json_array();
	json_t *o = json_object();
	if (!arr || !o)
		goto fail;
	for (size_t i = 0; i < s->n; i++)
		if (json_array_append_new(arr, mlineage_source_json(&s->v[i])))
			goto fail;
	if (json_object_set_new(o, "sources", arr)) {
		arr = NULL;
		goto fail;
	}
	arr = NULL;
	if (json_object_set_new(o, "note", str_or_null(s->note)))
		goto fail;
	return o;
fail:
	json_decref(arr);
	json_decref(o);
	return NULL;
}

/* Lower-cased host without scheme, path, port and trailing dots; for Snowflake also
 * without the account domain. false when it does not fit or is empty. */
static bool norm_server(const char *in, bool snowflake, char *out, size_t size)
{
	if (!in)
		return false;
	while (*in == ' ' || *in == '\t')
		in++;
	const char *scheme = strstr(in, "://");
	if (scheme)
		in = scheme + 3;
	size_t n = 0;
	for (; *in && *in != '/' && *in != ':' && *in != ' ' && *in != '?'; in++) {
		if (n + 1 >= size)
			return false;
		out[n++] = (char)tolower((unsigned char)*in);
	}
	while (n && out[n - 1] == '.')
		n--;
	out[n] = '\0';
	if (snowflake) {
		static const char *const suffixes[] = { ".snowflakecomputing.com", ".privatelink", NULL };
		for (size_t i = 0; suffixes[i]; i++) {
			size_t l = strlen(suffixes[i]);
			if (n > l && !strcmp(out + n - l, suffixes[i]))
				out[n -= l] = '\0';
		}
		for (size_t i = 0; i < n; i++)
			if (out[i] == '_')
				out[i] = '-';
	}
	return n > 0;
}

bool mlineage_same_server(const char *type, const char *a, const char *b)
{
	char na[512], nb[512];
	bool sf = type && str_ieq(type, "snowflake");
	if (!norm_server(a, sf, na, sizeof na) || !norm_server(b, sf, nb, sizeof nb))
		return false;
	return !strcmp(na, nb);
}

/* Families of type names: M source types, ODCS server types and Power BI data source types. */
static const char *const type_families[][6] = {
	{ "snowflake", NULL },
	{ "databricks", "azuredatabricks", "databricksmulticloud", NULL },
	{ "sql", "sqlserver", "synapse", "azuresql", "azuresqldatawarehouse", NULL },
	{ "postgresql", "postgres", NULL },
	{ "redshift", "amazonredshift", NULL },
	{ "bigquery", "googlebigquery", "googlebigqueryaad", NULL },
	{ "mysql", NULL },
	{ "oracle", NULL },
	{ "athena", "amazonathena", NULL },
	{ "odbc", NULL },
};

static int type_family(const char *t)
{
	for (size_t f = 0; f < sizeof type_families / sizeof type_families[0]; f++)
		for (size_t i = 0; type_families[f][i]; i++)
			if (str_ieq(t, type_families[f][i]))
				return (int)f;
	return -1;
}

bool mlineage_same_type(const char *source_type, const char *server_type)
{
	if (!source_type || !server_type || !*source_type || !*server_type)
		return false;
	int a = type_family(source_type), b = type_family(server_type);
	if (a >= 0 && b >= 0)
		return a == b;
	return strcasestr(source_type, server_type) != NULL;
}
