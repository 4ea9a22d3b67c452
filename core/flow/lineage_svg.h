/* The lineage graph as a picture: an SVG document of the same graph GET /api/lineage shows
 * (core/flow/lineage.h), for the web pages.
 *
 * Graphviz's C library (libgvc, the dot layout, linked in: no plugin is loaded from disk)
 * places the nodes and routes the edges; this module writes the SVG from that layout. So
 * every text in the picture (names from contracts and from Microsoft) goes through one XML
 * escape here, and nothing Graphviz would write (its own markup, comments, a label taken for
 * HTML) can reach a browser: the document has no script, no style element, no event
 * attribute, no external reference but the links to pbiport's own pages.
 *
 * Each node is a box with its name and type; a node with a page of its own is a link to it
 * (target _top, so a click inside an <object> opens the page): data products
 * /data-products/{id}, output ports their product's page (when the product is in the picture:
 * the implicit product -> port edge), imported assets /assets/{id}. Every node has a <title>
 * (its full name and type: the accessible name and the tooltip), the start node is drawn
 * heavier, and the document's own <title> and <desc> say what it shows.
 *
 * Bounds: at most PB_LINEAGE_SVG_MAX_NODES nodes (those nearest the start node, in the
 * graph's breadth-first order) and PB_LINEAGE_SVG_MAX_EDGES edges are drawn; past either, the
 * picture says how many it shows of how many and where the whole graph is (the DOT text).
 * Names are shortened to PB_LINEAGE_SVG_LABEL_CHARS characters in the boxes (whole in the
 * titles). The layout's own iteration limits (nslimit, mclimit) keep its time small at that
 * size (bench/pages measures it). Graphviz ends the process when an allocation fails; the node
 * and edge caps keep its memory to a few megabytes. */
#ifndef PBIPORT_LINEAGE_SVG_H
#define PBIPORT_LINEAGE_SVG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/flow/lineage.h"
#include "runtime/strbuf.h"

#define PB_LINEAGE_SVG_MAX_NODES   150
#define PB_LINEAGE_SVG_MAX_EDGES   400
#define PB_LINEAGE_SVG_MAX_SPAN    2000   /* ranks crossed by the edges outside the breadth-first tree */
#define PB_LINEAGE_SVG_LABEL_CHARS 40

typedef struct lineage_svg_stats {
	size_t nodes_drawn, edges_drawn;
	bool cut;             /* fewer nodes or edges drawn than the graph has (or lineage's own cap) */
	long long layout_us;  /* time Graphviz took to lay the graph out */
} lineage_svg_stats;

/* Appends the SVG document of g to out. dot_url: where the whole graph is as DOT text (said
 * in the picture when it is cut; NULL: not said). stats may be NULL. PB_ENOMEM when out's
 * ceiling is passed or memory runs out, PB_EINTERNAL with Graphviz's message when the layout
 * fails. */
int lineage_svg(const lineage_graph *g, const char *dot_url, sbuf *out, lineage_svg_stats *stats, char *err);

/* The page a node links to ("/data-products/<id>", "/assets/<id>"), written into out; false
 * for a node without a page of its own (an output port's page is its product's: owner_id is
 * the product's id, NULL when unknown). */
bool lineage_node_href(const lineage_node *n, const char *owner_id, char *out, size_t size);

#endif
