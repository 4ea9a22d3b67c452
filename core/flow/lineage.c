/* The lineage graph, read side: breadth-first traversal over lineage_edges and the
 * implicit data product -> output port edges. See core/flow/lineage.h. */
#include "core/flow/lineage.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/assets.h"
#include "core/store/catalog.h"
#include "runtime/util.h"

/* A set of strings (node ids, edge keys) with the index each was added at. */
typedef struct strset {
	char **keys;
	size_t *vals;
	size_t cap, n;
} strset;

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void strset_release(strset *s)
{
	free(s->keys);
	free(s->vals);
	memset(s, 0, sizeof *s);
}

/* Index of key, or SIZE_MAX. keys are borrowed (they live in the graph). */
static size_t strset_get(const strset *s, const char *key)
{
	if (!s->cap)
		return SIZE_MAX;
	for (size_t i = hash(key) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->keys[i])
			return SIZE_MAX;
		if (!strcmp(s->keys[i], key))
			return s->vals[i];
	}
}

static int strset_put(strset *s, char *key, size_t val)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char **keys = calloc(cap, sizeof *keys);
		size_t *vals = calloc(cap, sizeof *vals);
		if (!keys || !vals) {
			free(keys);
			free(vals);
			return PB_ENOMEM;
		}
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->keys[i])
				continue;
			size_t j = hash(s->keys[i]) & (cap - 1);
			while (keys[j])
				j = (j + 1) & (cap - 1);
			keys[j] = s->keys[i];
			vals[j] = s->vals[i];
		}
		free(s->keys);
		free(s->vals);
		s->keys = keys;
		s->vals = vals;
		s->cap = cap;
	}
	size_t j = hash(key) & (s->cap - 1);
	while (s->keys[j])
		j = (j + 1) & (s->cap - 1);
	s->keys[j] = key;
	s->vals[j] = val;
	s->n++;
	return PB_OK;
}

/* ---- one node: its name and type from the owning store, and implicit neighbours */

typedef struct neighbour {
	char *id;
	char *kind;        /* kind hint for resolving it */
	bool outgoing;     /* edge node -> neighbour (else neighbour -> node) */
} neighbour;

typedef struct walk {
	pb_db *db;
	const char *org_id;
	lineage_graph *g;
	strset node_ix, edge_ix;
	char **edge_keys;      /* owned "from\x1fto" strings, freed at the end */
	size_t nedge_keys;
	neighbour *nb;         /* neighbours of the node being expanded */
	size_t nnb, capnb;
} walk;

static int add_neighbour(walk *w, const char *id, const char *kind, bool outgoing, char *err)
{
	if (w->nnb == w->capnb) {
		size_t cap = w->capnb ? w->capnb * 2 : 16;
		neighbour *v = realloc(w->nb, cap * sizeof *v);
		if (!v)
			return pb_err(err, PB_ENOMEM, "out of memory reading lineage");
		w->nb = v;
		w->capnb = cap;
	}
	neighbour *n = &w->nb[w->nnb];
	n->id = xstrdup(id);
	n->kind = xstrdup(kind ? kind : "");
	n->outgoing = outgoing;
	if (!n->id || !n->kind) {
		free(n->id);
		free(n->kind);
		return pb_err(err, PB_ENOMEM, "out of memory reading lineage");
	}
	w->nnb++;
	return PB_OK;
}

static void clear_neighbours(walk *w)
{
	for (size_t i = 0; i < w->nnb; i++) {
		free(w->nb[i].id);
		free(w->nb[i].kind);
	}
	w->nnb = 0;
}

enum store { ST_PRODUCT, ST_PORT, ST_ASSET, ST_COUNT };

/* Looks id up in one store: PB_ENOTFOUND when it has no such node in the org. */
static int lookup_in(walk *w, enum store st, const char *id, char **type, char **name, char *err)
{
	int rc;
	if (st == ST_PRODUCT) {
		cat_product *p = NULL;
		if (!(rc = catalog_product_get(w->db, w->org_id, id, false, &p, err))) {
			*type = xstrdup("data_product");
			*name = xstrdup(p->name);
		}
		catalog_product_free(p);
	} else if (st == ST_PORT) {
		cat_port *p = NULL;
		if (!(rc = catalog_port_get(w->db, w->org_id, id, false, &p, err))) {
			*type = xstrdup("output_port");
			*name = xstrdup(p->name);
		}
		catalog_port_free(p);
	} else {
		pb_asset *a = NULL;
		if (!(rc = assets_get(w->db, w->org_id, id, &a, err))) {
			*type = xstrdup(a->kind);
			*name = xstrdup(a->name);
		}
		asset_free(a);
	}
	if (!rc && (!*type || !*name))
		rc = pb_err(err, PB_ENOMEM, "out of memory reading lineage");
	if (rc) {
		free(*type);
		free(*name);
		*type = *name = NULL;
	}
	return rc;
}

/* Finds the node in the store its kind suggests first, then in the others.
 * *type and *name are new. */
static int lookup(walk *w, const char *id, const char *kind, char **type, char **name, char *err)
{
	enum store order[ST_COUNT] = { ST_ASSET, ST_PRODUCT, ST_PORT };
	if (kind && !strcmp(kind, "data_product")) {
		order[0] = ST_PRODUCT;
		order[1] = ST_PORT;
		order[2] = ST_ASSET;
	} else if (kind && !strcmp(kind, "output_port")) {
		order[0] = ST_PORT;
		order[1] = ST_PRODUCT;
		order[2] = ST_ASSET;
	}
	*type = *name = NULL;
	for (int k = 0; k < ST_COUNT; k++) {
		int rc = lookup_in(w, order[k], id, type, name, err);
		if (rc != PB_ENOTFOUND)
			return rc;
	}
	return pb_err(err, PB_ENOTFOUND, "no node %.64s in this organization", id);
}

/* Queues the implicit neighbours: a product's ports, a port's product. */
static int implicit_neighbours(walk *w, const lineage_node *n, char *err)
{
	int rc = PB_OK;
	if (!strcmp(n->type, "data_product")) {
		cat_product *p = NULL;
		rc = catalog_product_get(w->db, w->org_id, n->id, false, &p, err);
		for (size_t i = 0; !rc && i < p->nports; i++)
			rc = add_neighbour(w, p->ports[i].id, "output_port", true, err);
		catalog_product_free(p);
	} else if (!strcmp(n->type, "output_port")) {
		cat_port *p = NULL;
		if (!(rc = catalog_port_get(w->db, w->org_id, n->id, false, &p, err)))
			rc = add_neighbour(w, p->data_product_id, "data_product", false, err);
		catalog_port_free(p);
	}
	return rc == PB_ENOTFOUND ? PB_OK : rc;   /* deleted meanwhile: no implicit edges */
}

/* Queues the lineage_edges neighbours of id. */
static int stored_neighbours(walk *w, const char *id, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(w->db,
			    "SELECT from_id, from_kind, to_id, to_kind FROM lineage_edges "
			    "WHERE org_id = ?1 AND (from_id = ?2 OR to_id = ?2) "
			    "ORDER BY from_kind, from_id, to_kind, to_id",
			    &st, err);
	if (rc)
		return rc;
	if ((rc = db_bind_text(st, 1, w->org_id, err)) || (rc = db_bind_text(st, 2, id, err)))
		goto out;
	while ((rc = db_row(w->db, st, err)) == 1) {
		const char *from = db_col_text(st, 0), *to = db_col_text(st, 2);
		bool outgoing = !strcmp(from, id);
		if (outgoing && !strcmp(to, id))
			continue;   /* a self edge adds nothing */
		if ((rc = add_neighbour(w, outgoing ? to : from, db_col_text(st, outgoing ? 3 : 1), outgoing, err)))
			goto out;
	}
out:
	db_done(st);
	return rc < 0 ? rc : PB_OK;
}

/* Takes ownership of type and name (freed on failure too). */
static int add_node(walk *w, const char *id, char *type, char *name, int depth, char *err)
{
	lineage_graph *g = w->g;
	lineage_node *v = realloc(g->nodes, (g->nnodes + 1) * sizeof *v);
	if (!v)
		goto oom;
	g->nodes = v;
	lineage_node *n = &g->nodes[g->nnodes];
	if (!(n->id = xstrdup(id)))
		goto oom;
	if (strset_put(&w->node_ix, n->id, g->nnodes)) {
		free(n->id);
		goto oom;
	}
	n->type = type;
	n->name = name;
	n->depth = depth;
	g->nnodes++;
	return PB_OK;
oom:
	free(type);
	free(name);
	return pb_err(err, PB_ENOMEM, "out of memory reading lineage");
}

static int add_edge(walk *w, const char *from, const char *to, char *err)
{
	size_t lf = strlen(from), lt = strlen(to);
	char *key = malloc(lf + lt + 2);
	if (!key)
		return pb_err(err, PB_ENOMEM, "out of memory reading lineage");
	memcpy(key, from, lf);
	key[lf] = '\x1f';
	memcpy(key + lf + 1, to, lt + 1);
	if (strset_get(&w->edge_ix, key) != SIZE_MAX) {
		free(key);
		return PB_OK;
	}
	lineage_graph *g = w->g;
	char **keys = realloc(w->edge_keys, (w->nedge_keys + 1) * sizeof *keys);
	if (keys)
		w->edge_keys = keys;
	lineage_edge *v = keys ? realloc(g->edges, (g->nedges + 1) * sizeof *v) : NULL;
	if (v)
		g->edges = v;
	if (!keys || !v) {
		free(key);
		return pb_err(err, PB_ENOMEM, "out of memory reading lineage");
	}
	w->edge_keys[w->nedge_keys++] = key;
	lineage_edge *e = &g->edges[g->nedges];
	e->from = xstrdup(from);
	e->to = xstrdup(to);
	if (!e->from || !e->to || strset_put(&w->edge_ix, key, g->nedges)) {
		free(e->from);
		free(e->to);
		return pb_err(err, PB_ENOMEM, "out of memory reading lineage");
	}
	g->nedges++;
	return PB_OK;
}

/* One neighbour of node `self` at depth: added as a node when new, and its edge. */
static int visit(walk *w, const char *self, int depth, const neighbour *nb, char *err)
{
	lineage_graph *g = w->g;
	if (strset_get(&w->node_ix, nb->id) == SIZE_MAX) {
		if (g->nnodes >= PB_LINEAGE_MAX_NODES) {
			g->truncated = true;
			return PB_OK;
		}
		char *type = NULL, *name = NULL;
		int rc = lookup(w, nb->id, nb->kind, &type, &name, err);
		if (rc == PB_ENOTFOUND) {
			/* a node no store knows (publish record, asset gone): the edge's kind */
			if (!(type = xstrdup(nb->kind[0] ? nb->kind : "unknown")))
				return pb_err(err, PB_ENOMEM, "out of memory reading lineage");
		} else if (rc) {
			return rc;
		}
		if ((rc = add_node(w, nb->id, type, name, depth + 1, err)))
			return rc;
	}
	return add_edge(w, nb->outgoing ? self : nb->id, nb->outgoing ? nb->id : self, err);
}

int lineage_depth_parse(const char *text, int *depth, char *err)
{
	char *end = NULL;
	if (!text) {
		*depth = PB_LINEAGE_DEPTH_DEFAULT;
		return PB_OK;
	}
	errno = 0;
	long d = strtol(text, &end, 10);
	if (!isdigit((unsigned char)text[0]) || *end || errno || d < 0 || d > PB_LINEAGE_DEPTH_MAX)
		return pb_err(err, PB_EINVAL, "depth must be a whole number from 0 to %d", PB_LINEAGE_DEPTH_MAX);
	*depth = (int)d;
	return PB_OK;
}

int lineage_graph_get(pb_db *db, const char *org_id, const char *node_id, int depth, lineage_graph *out,
		      char *err)
{
	memset(out, 0, sizeof *out);
	walk w = { .db = db, .org_id = org_id, .g = out };
	int rc;
	char *type = NULL, *name = NULL;
	if (depth < 0 || depth > PB_LINEAGE_DEPTH_MAX)
		return pb_err(err, PB_EINVAL, "depth must be 0 to %d", PB_LINEAGE_DEPTH_MAX);
	if (!node_id || !*node_id)
		return pb_err(err, PB_EINVAL, "node is required");
	if ((rc = lookup(&w, node_id, NULL, &type, &name, err)) || (rc = add_node(&w, node_id, type, name, 0, err)))
		goto out;
	/* nodes[] doubles as the breadth-first queue */
	for (size_t head = 0; head < out->nnodes; head++) {
		int d = out->nodes[head].depth;
		if (d >= depth)
			continue;
		const char *self = out->nodes[head].id;   /* the string stays put when nodes[] moves */
		clear_neighbours(&w);
		if ((rc = implicit_neighbours(&w, &out->nodes[head], err)) || (rc = stored_neighbours(&w, self, err)))
			goto out;
		for (size_t i = 0; i < w.nnb; i++)
			if ((rc = visit(&w, self, d, &w.nb[i], err)))
				goto out;
	}
	rc = PB_OK;
out:
	clear_neighbours(&w);
	free(w.nb);
	for (size_t i = 0; i < w.nedge_keys; i++)
		free(w.edge_keys[i]);
	free(w.edge_keys);
	strset_release(&w.node_ix);
	strset_release(&w.edge_ix);
	if (rc)
		lineage_graph_release(out);
	return rc;
}

void lineage_graph_release(lineage_graph *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nnodes; i++)
		free_each(g->nodes[i].id, g->nodes[i].type, g->nodes[i].name);
	for (size_t i = 0; i < g->nedges; i++)
		free_each(g->edges[i].from, g->edges[i].to);
	free_each(g->nodes, g->edges);
	memset(g, 0, sizeof *g);
}

json_t *lineage_graph_json(const lineage_graph *g)
{
	json_t *nodes = json_array(), *edges = json_array();
	json_t *o = NULL;
	if (!nodes || !edges)
		goto fail;
	for (size_t i = 0; i < g->nnodes; i++) {
		const lineage_node *n = &g->nodes[i];
		if (json_array_append_new(nodes, json_pack("{s:s,s:s,s:o}", "id", n->id, "type", n->type, "name",
							   n->name ? json_string(n->name) : json_null())))
			goto fail;
	}
	for (size_t i = 0; i < g->nedges; i++)
		if (json_array_append_new(edges, json_pack("{s:s,s:s}", "from", g->edges[i].from, "to", g->edges[i].to)))
			goto fail;
	if (!(o = json_object()))
		goto fail;
	int bad = json_object_set_new(o, "nodes", nodes);
	nodes = NULL;   /* set_new took it, even on failure */
	bad |= json_object_set_new(o, "edges", edges);
	edges = NULL;
	if (!bad && g->truncated)
		bad = json_object_set_new(o, "truncated", json_true());
	if (bad)
		goto fail;
	return o;
fail:
	json_decref(nodes);
	json_decref(edges);
	json_decref(o);
	return NULL;
}

/* A DOT double-quoted string's content: " and \ escaped, line breaks and other
 * control characters as spaces (a label's own line break is added by the caller). */
static int dot_escaped(sbuf *out, const char *s)
{
	int rc = 0;
	for (; *s && !rc; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			rc = sbuf_addc(out, '\\') || sbuf_addc(out, (char)ch);
		else if (ch < 0x20 || ch == 0x7f)
			rc = sbuf_addc(out, ' ');
		else
			rc = sbuf_addc(out, (char)ch);
	}
	return rc;
}

int lineage_graph_dot(const lineage_graph *g, sbuf *out, char *err)
{
	int rc = sbuf_adds(out, "digraph lineage {\n\trankdir=LR;\n\tnode [shape=box];\n");
	for (size_t i = 0; i < g->nnodes && !rc; i++) {
		const lineage_node *n = &g->nodes[i];
		rc = sbuf_adds(out, "\t\"") || dot_escaped(out, n->id) || sbuf_adds(out, "\" [label=\"") ||
		     dot_escaped(out, n->name ? n->name : n->id) || sbuf_adds(out, "\\n(") ||
		     dot_escaped(out, n->type) || sbuf_adds(out, ")\"];\n");
	}
	for (size_t i = 0; i < g->nedges && !rc; i++)
		rc = sbuf_adds(out, "\t\"") || dot_escaped(out, g->edges[i].from) || sbuf_adds(out, "\" -> \"") ||
		     dot_escaped(out, g->edges[i].to) || sbuf_adds(out, "\";\n");
	if (!rc)
		rc = sbuf_adds(out, "}\n");
	return rc ? pb_err(err, PB_ENOMEM, "lineage graph too large for DOT text") : PB_OK;
}
