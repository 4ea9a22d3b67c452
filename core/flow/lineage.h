/* The lineage graph, read side: what is connected to a node, within a depth.
 *
 * Nodes are anything the API hands out an id for: data products, output ports and
 * imported assets (workspace, semantic_model, report, dashboard, datasource); edges come
 * from the lineage_edges table (written with core/store/lineage_store.h lineage_edge_add() by
 * publish and import), plus one implicit edge per output port: its data product -> the
 * port (output_ports.data_product_id, read through core/store/catalog.h). So the chain
 * data product -> output port -> data source -> semantic model -> report is one graph.
 *
 * Traversal is breadth-first from the node, following edges in both directions; depth
 * counts edges (PB_LINEAGE_DEPTH_DEFAULT, at most PB_LINEAGE_DEPTH_MAX). Every node and
 * edge is read within the caller's org: another org's node is PB_ENOTFOUND. Names come
 * from the owning stores (catalog_product_get, catalog_port_get, assets_get); a node an
 * edge names that none of them knows (a publish record, an asset removed since) keeps
 * the edge's kind as its type and has no name. At most PB_LINEAGE_MAX_NODES nodes are
 * returned; then `truncated` is set.
 *
 * Ownership: everything in a lineage_graph is new; free with lineage_graph_release(). */
#ifndef PBIPORT_LINEAGE_H
#define PBIPORT_LINEAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/db.h"
#include "runtime/strbuf.h"

struct json_t;

typedef struct lineage_node {
	char *id;
	char *type;    /* data_product, output_port, an asset kind, or the edge's kind */
	char *name;    /* NULL when the node's store does not know it */
	int depth;     /* edges from the start node */
} lineage_node;

typedef struct lineage_edge {
	char *from, *to;   /* node ids */
} lineage_edge;

typedef struct lineage_graph {
	lineage_node *nodes;   /* the start node first, then in breadth-first order */
	size_t nnodes;
	lineage_edge *edges;   /* each edge once, in the order found */
	size_t nedges;
	bool truncated;        /* PB_LINEAGE_MAX_NODES was reached */
} lineage_graph;

/* A depth as a client writes it (NULL: PB_LINEAGE_DEPTH_DEFAULT): a whole number from 0 to
 * PB_LINEAGE_DEPTH_MAX, else PB_EINVAL with a message naming the range. */
int lineage_depth_parse(const char *text, int *depth, char *err);

/* Fills *out (zeroed first) with the graph around node_id in org_id. depth 0..
 * PB_LINEAGE_DEPTH_MAX (else PB_EINVAL). PB_ENOTFOUND when org_id has no such node. */
int lineage_graph_get(pb_db *db, const char *org_id, const char *node_id, int depth, lineage_graph *out,
		      char *err);
void lineage_graph_release(lineage_graph *g);   /* NULL-safe; leaves *g empty */

/* {"nodes":[{"id","type","name"}],"edges":[{"from","to"}]} + "truncated":true when cut.
 * New reference; NULL on OOM. */
struct json_t *lineage_graph_json(const lineage_graph *g);

/* Graphviz text (digraph, one node line with "name\n(type)" label, one line per edge;
 * names escaped) appended to out. PB_ENOMEM when out's ceiling is passed. */
int lineage_graph_dot(const lineage_graph *g, sbuf *out, char *err);

#endif
