/* The lineage graph as SVG: Graphviz lays it out, this file writes the picture with every
 * text escaped here. See core/flow/lineage_svg.h. */
#include "core/flow/lineage_svg.h"

#include <gvc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/util.h"

/* The dot layout, linked in (libgvplugin_dot_layout): Graphviz loads no plugin from disk, so
 * neither its configuration file nor a text-layout plugin (pango, fontconfig) is involved;
 * label sizes come from Graphviz's built-in Helvetica metrics, which the SVG's font matches. */
extern gvplugin_library_t gvplugin_dot_layout_LTX_library;
static const lt_symlist_t builtins[] = {
	{ "gvplugin_dot_layout_LTX_library", &gvplugin_dot_layout_LTX_library },
	{ NULL, NULL },
};

#define PAD        8.0    /* around the drawing, in px (= Graphviz points) */
#define NOTE_H     22.0   /* the line under a cut picture */
#define FONT       "Helvetica, Arial, sans-serif"
#define SVG_TEXT_MAX (256u * 1024)   /* one name or URL written into the picture */

/* Fill and stroke of a node type's box; the last row is for any other type. */
static const struct { const char *type, *fill, *stroke; } palette[] = {
	{ "data_product", "#dbeafe", "#1d4ed8" }, { "output_port", "#e0f2fe", "#0369a1" },
	{ "semantic_model", "#fef3c7", "#b45309" }, { "report", "#fce7f3", "#be185d" },
	{ "dashboard", "#ede9fe", "#6d28d9" }, { "workspace", "#f1f5f9", "#475569" },
	{ "datasource", "#dcfce7", "#15803d" }, { NULL, "#f3f4f6", "#4b5563" },
};

static size_t palette_row(const char *type)
{
	size_t i = 0;
	while (palette[i].type && strcmp(palette[i].type, type))
		i++;
	return i;
}

/* Bytes of the UTF-8 sequence at s (at most len), or 0 when it is not a valid one. */
static size_t utf8_seq(const char *s, size_t len)
{
	unsigned char c = (unsigned char)*s;
	size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
	return n && n <= len && utf8_valid(s, n) ? n : 0;
}

/* s as one line of at most max_chars code points (0: all; a longer one ends in "…"):
 * control characters (which XML 1.0 does not allow; a label line has no line break) as
 * spaces, invalid UTF-8 as U+FFFD. */
static int one_line(sbuf *out, const char *s, size_t max_chars)
{
	size_t len = strlen(s), chars = 0;
	int rc = 0;
	for (size_t i = 0; i < len && !rc; chars++) {
		if (max_chars && chars == max_chars)
			return sbuf_adds(out, "\xE2\x80\xA6");
		unsigned char c = (unsigned char)s[i];
		size_t n = utf8_seq(s + i, len - i);
		if (!n)
			rc = sbuf_adds(out, "\xEF\xBF\xBD"), n = 1;
		else if (c < 0x20 || c == 0x7f)
			rc = sbuf_addc(out, ' ');
		else
			rc = sbuf_add(out, s + i, n);
		i += n;
	}
	return rc;
}

/* Any text into the SVG: one_line (shortened to max_chars; 0: whole), then escaped. */
static int xml_text(sbuf *out, const char *s, size_t max_chars)
{
	sbuf line;
	sbuf_init(&line, SVG_TEXT_MAX);
	int rc = one_line(&line, s, max_chars) || sbuf_add_markup_escaped(out, sbuf_str(&line));
	sbuf_release(&line);
	return rc;
}

/* The type as words: "semantic_model" -> "semantic model". */
static int type_words(sbuf *out, const char *type)
{
	int rc = 0;
	for (const char *p = type; *p && !rc; p++)
		rc = sbuf_addc(out, *p == '_' ? ' ' : *p);
	return rc;
}

/* A Graphviz label, sized as the SVG will draw it: the shortened name and the type on two
 * lines. It is an escString (a backslash starts an escape, so each is doubled) in which
 * Graphviz reads character references (so & is written &amp;). New. */
static char *gv_label(const lineage_node *n, char *err)
{
	sbuf name, label;
	char *out = NULL;
	sbuf_init(&name, SVG_TEXT_MAX);
	sbuf_init(&label, 2 * SVG_TEXT_MAX);
	int rc = one_line(&name, n->name ? n->name : n->id, PB_LINEAGE_SVG_LABEL_CHARS);
	for (const char *p = sbuf_str(&name); !rc && *p; p++)
		rc = *p == '\\' ? sbuf_adds(&label, "\\\\") : *p == '&' ? sbuf_adds(&label, "&amp;") : sbuf_addc(&label, *p);
	rc = rc || sbuf_adds(&label, "\\n") || type_words(&label, n->type);
	if (!rc)
		out = sbuf_detach(&label, NULL);
	sbuf_release(&name);
	sbuf_release(&label);
	if (!out)
		pb_err(err, PB_ENOMEM, "out of memory drawing the lineage graph");
	return out;
}

bool lineage_node_href(const lineage_node *n, const char *owner_id, char *out, size_t size)
{
	const char *prefix = NULL, *id = n->id;
	if (!n->name)
		return false;   /* no store knows it: nothing to show */
	if (!strcmp(n->type, "data_product")) {
		prefix = "/data-products/";
	} else if (!strcmp(n->type, "output_port")) {
		if (!owner_id)
			return false;
		prefix = "/data-products/";
		id = owner_id;
	} else if (!strcmp(n->type, "workspace") || !strcmp(n->type, "semantic_model") || !strcmp(n->type, "report") ||
		   !strcmp(n->type, "dashboard") || !strcmp(n->type, "datasource")) {
		prefix = "/assets/";
	} else {
		return false;
	}
	/* ids are hex: nothing in them needs escaping in a path */
	if (!strcmp(n->type, "output_port"))
		return !xsnprintf(out, size, "%s%s#port-%s", prefix, id, n->id);
	return !xsnprintf(out, size, "%s%s", prefix, id);
}

/* The id of the data product drawn with an edge to port node i (its owner), or NULL. */
static const char *port_owner(const lineage_graph *g, size_t drawn, size_t i)
{
	for (size_t e = 0; e < g->nedges; e++) {
		if (strcmp(g->edges[e].to, g->nodes[i].id))
			continue;
		for (size_t k = 0; k < drawn; k++)
			if (!strcmp(g->nodes[k].id, g->edges[e].from) && !strcmp(g->nodes[k].type, "data_product"))
				return g->nodes[k].id;
	}
	return NULL;
}

typedef struct frame {
	double x0, ytop;   /* Graphviz's bounding box: its left edge and top */
} frame;

static double fx(const frame *f, double x)
{
	return x - f->x0 + PAD;
}

static double fy(const frame *f, double y)
{
	return f->ytop - y + PAD;
}

static int draw_edge(sbuf *out, const frame *f, Agedge_t *e)
{
	splines *spl = ED_spl(e);
	int rc = 0;
	for (int b = 0; spl && b < spl->size && !rc; b++) {
		const bezier *bz = &spl->list[b];
		if (bz->size < 1)
			continue;
		rc = sbuf_addf(out, "<path class=\"edge\" fill=\"none\" stroke=\"#6b7280\" stroke-width=\"1.2\" d=\"M%.1f,%.1f",
			       fx(f, bz->list[0].x), fy(f, bz->list[0].y));
		for (int k = 1; k + 2 < bz->size && !rc; k += 3)
			rc = sbuf_addf(out, " C%.1f,%.1f %.1f,%.1f %.1f,%.1f", fx(f, bz->list[k].x), fy(f, bz->list[k].y),
				       fx(f, bz->list[k + 1].x), fy(f, bz->list[k + 1].y), fx(f, bz->list[k + 2].x),
				       fy(f, bz->list[k + 2].y));
		if (!rc)
			rc = sbuf_adds(out, "\"/>\n");
		if (!rc && bz->eflag) {
			/* the arrowhead: from the curve's end to the point Graphviz left for it */
			pointf base = bz->list[bz->size - 1], tip = bz->ep;
			double dx = tip.x - base.x, dy = tip.y - base.y, len = sqrt(dx * dx + dy * dy);
			if (len > 0) {
				double w = 0.35 * len, px = -dy / len * w, py = dx / len * w;
				rc = sbuf_addf(out, "<polygon class=\"arrow\" fill=\"#6b7280\" points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n",
					       fx(f, tip.x), fy(f, tip.y), fx(f, base.x + px), fy(f, base.y + py),
					       fx(f, base.x - px), fy(f, base.y - py));
			}
		}
	}
	return rc;
}

static int draw_node(sbuf *out, const frame *f, const lineage_node *n, Agnode_t *gn, const char *href, bool start)
{
	size_t p = palette_row(n->type);
	double w = ND_width(gn) * 72, h = ND_height(gn) * 72;
	double cx = fx(f, ND_coord(gn).x), cy = fy(f, ND_coord(gn).y);
	const char *name = n->name ? n->name : n->id;
	int rc = href ? sbuf_addf(out, "<a class=\"node\" href=\"%s\" target=\"_top\">", href)
		      : sbuf_adds(out, "<g class=\"node\">");
	/* the title: the whole name and the type, for screen readers and as the tooltip */
	rc = rc || sbuf_adds(out, "<title>") || xml_text(out, name, 0) || sbuf_adds(out, " (") ||
	     type_words(out, n->type) || sbuf_adds(out, ")") || sbuf_adds(out, start ? ", this page" : "") ||
	     sbuf_adds(out, "</title>");
	rc = rc || sbuf_addf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"4\" fill=\"%s\" "
				  "stroke=\"%s\" stroke-width=\"%s\"/>",
			     cx - w / 2, cy - h / 2, w, h, palette[p].fill, palette[p].stroke, start ? "2.5" : "1");
	rc = rc || sbuf_addf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-family=\"" FONT
				  "\" font-size=\"11\" fill=\"#111827\"%s>",
			     cx, cy - 2, start ? " font-weight=\"bold\"" : "");
	rc = rc || xml_text(out, name, PB_LINEAGE_SVG_LABEL_CHARS) || sbuf_adds(out, "</text>");
	rc = rc || sbuf_addf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-family=\"" FONT
				  "\" font-size=\"9\" fill=\"#374151\">",
			     cx, cy + 11);
	rc = rc || type_words(out, n->type) || sbuf_adds(out, "</text>");
	rc = rc || sbuf_adds(out, href ? "</a>\n" : "</g>\n");
	return rc;
}

/* Where an edge of the picture runs: its ends among the drawn nodes. */
static bool edge_ends(const lineage_graph *g, size_t drawn, size_t e, size_t *a, size_t *b)
{
	*a = *b = drawn;
	/* linear: at most PB_LINEAGE_SVG_MAX_NODES are drawn */
	for (size_t k = 0; k < drawn && (*a == drawn || *b == drawn); k++) {
		if (*a == drawn && !strcmp(g->nodes[k].id, g->edges[e].from))
			*a = k;
		if (*b == drawn && !strcmp(g->nodes[k].id, g->edges[e].to))
			*b = k;
	}
	return *a < drawn && *b < drawn;
}

/* The edges of the picture, for Graphviz.
 *
 * dot ranks nodes by the longest path over the edges, and an edge across k ranks costs it k
 * hidden nodes: a chain with shortcuts can make that thousands and the layout take seconds.
 * So only the edge each node was reached by (the breadth-first tree: the first edge to a node
 * one step further from the start) sets ranks, which keeps them within the depth on either
 * side of the start node; the others are drawn without constraining (constraint=false), as
 * long as the ranks they cross together stay within PB_LINEAGE_SVG_MAX_SPAN and there are
 * at most PB_LINEAGE_SVG_MAX_EDGES. *nge: edges handed to Graphviz (ge[]); *total: edges
 * between drawn nodes. */
static int add_edges(const lineage_graph *g, Agraph_t *G, Agnode_t **gn, size_t drawn, Agedge_t **ge, size_t *nge,
		     size_t *total, char *err)
{
	bool *reached = calloc(drawn ? drawn : 1, sizeof *reached);
	int *rank = calloc(drawn ? drawn : 1, sizeof *rank);
	long span = 0;
	int rc = PB_OK;
	if (!reached || !rank) {
		rc = pb_err(err, PB_ENOMEM, "out of memory drawing the lineage graph");
		goto out;
	}
	if (drawn)
		reached[0] = true;
	for (size_t e = 0; e < g->nedges; e++) {
		size_t a, b;
		if (!edge_ends(g, drawn, e, &a, &b))
			continue;
		(*total)++;
		if (*nge == PB_LINEAGE_SVG_MAX_EDGES)
			continue;   /* counted for the note */
		/* the tree edge of the farther end: its rank is one past its parent's */
		bool tree = false;
		if (g->nodes[b].depth == g->nodes[a].depth + 1 && reached[a] && !reached[b]) {
			reached[b] = tree = true;
			rank[b] = rank[a] + 1;
		} else if (g->nodes[a].depth == g->nodes[b].depth + 1 && reached[b] && !reached[a]) {
			reached[a] = tree = true;
			rank[a] = rank[b] - 1;
		}
		long cost = tree ? 1 : labs((long)rank[a] - rank[b]) + 1;
		if (!tree && span + cost > PB_LINEAGE_SVG_MAX_SPAN)
			continue;
		span += cost;
		if (!(ge[*nge] = agedge(G, gn[a], gn[b], NULL, 1))) {
			rc = pb_err(err, PB_ENOMEM, "out of memory drawing the lineage graph");
			goto out;
		}
		if (!tree)
			agset(ge[*nge], "constraint", "false");
		(*nge)++;
	}
out:
	free(reached);
	free(rank);
	return rc;
}

/* Graph, node and edge defaults: left to right, boxes, and iteration limits that keep the
 * layout's time small (network simplex and crossing minimization stop early). */
static void set_defaults(Agraph_t *G)
{
	agattr(G, AGRAPH, "rankdir", "LR");
	agattr(G, AGRAPH, "nodesep", "0.25");
	agattr(G, AGRAPH, "ranksep", "0.6");
	agattr(G, AGRAPH, "nslimit", "2");
	agattr(G, AGRAPH, "nslimit1", "2");
	agattr(G, AGRAPH, "mclimit", "0.2");
	agattr(G, AGEDGE, "constraint", "true");
	agattr(G, AGNODE, "shape", "box");
	agattr(G, AGNODE, "fontname", "Helvetica");
	agattr(G, AGNODE, "fontsize", "12.5");   /* drawn at 11: room for wider fallback fonts */
	agattr(G, AGNODE, "margin", "0.12,0.06");
	agattr(G, AGNODE, "label", "");
}

int lineage_svg(const lineage_graph *g, const char *dot_url, sbuf *out, lineage_svg_stats *stats, char *err)
{
	size_t drawn = g->nnodes < PB_LINEAGE_SVG_MAX_NODES ? g->nnodes : PB_LINEAGE_SVG_MAX_NODES;
	Agnode_t **gn = NULL;
	Agedge_t **ge = NULL;
	size_t nge = 0, edges_total = 0;
	GVC_t *gvc = NULL;
	Agraph_t *G = NULL;
	bool laid_out = false;
	int rc = PB_OK;
	char name[32];
	lineage_svg_stats st = { 0 };

	if (!(gn = calloc(drawn ? drawn : 1, sizeof *gn)) ||
	    !(ge = calloc(PB_LINEAGE_SVG_MAX_EDGES, sizeof *ge))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory drawing the lineage graph");
		goto out;
	}
	/* Graphviz says what went wrong through aglasterr(), not on stderr */
	agseterr(AGMAX);
	if (!(gvc = gvContextPlugins(builtins, 0)) || !(G = agopen("lineage", Agdirected, NULL))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory drawing the lineage graph");
		goto out;
	}
	set_defaults(G);
	for (size_t i = 0; i < drawn; i++) {
		char *label = gv_label(&g->nodes[i], err);
		if (!label) {
			rc = PB_ENOMEM;
			goto out;
		}
		xsnprintf(name, sizeof name, "n%zu", i);
		gn[i] = agnode(G, name, 1);
		if (gn[i])
			agset(gn[i], "label", label);
		free(label);
		if (!gn[i]) {
			rc = pb_err(err, PB_ENOMEM, "out of memory drawing the lineage graph");
			goto out;
		}
	}
	if ((rc = add_edges(g, G, gn, drawn, ge, &nge, &edges_total, err)))
		goto out;
	struct timespec a0, a1;
	clock_gettime(CLOCK_MONOTONIC, &a0);
	if (gvLayout(gvc, G, "dot")) {
		char *why = aglasterr();
		rc = pb_err(err, PB_EINTERNAL, "Graphviz could not lay out the lineage graph: %.200s",
			    why && *why ? why : "no reason given");
		free(why);
		goto out;
	}
	laid_out = true;
	clock_gettime(CLOCK_MONOTONIC, &a1);
	st.layout_us = (long long)(a1.tv_sec - a0.tv_sec) * 1000000 + (a1.tv_nsec - a0.tv_nsec) / 1000;
	st.nodes_drawn = drawn;
	st.edges_drawn = nge;
	st.cut = g->truncated || drawn < g->nnodes || nge < edges_total;

	boxf bb = GD_bb(G);
	frame f = { bb.LL.x, bb.UR.y };
	double width = bb.UR.x - bb.LL.x + 2 * PAD, height = bb.UR.y - bb.LL.y + 2 * PAD;
	double pic_h = height + (st.cut ? NOTE_H : 0);
	const char *start = g->nnodes ? (g->nodes[0].name ? g->nodes[0].name : g->nodes[0].id) : "";
	if (width < 240 && st.cut)
		width = 240;
	rc = sbuf_addf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			    "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" height=\"%.0f\" "
			    "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-labelledby=\"lineage-title lineage-desc\">\n"
			    "<title id=\"lineage-title\">Lineage of ",
		       ceil(width), ceil(pic_h), ceil(width), ceil(pic_h));
	rc = rc || xml_text(out, start, 0) || sbuf_adds(out, "</title>\n<desc id=\"lineage-desc\">");
	rc = rc || sbuf_addf(out, "%zu node%s and %zu edge%s; each box links to its page where it has one.", drawn,
			     drawn == 1 ? "" : "s", nge, nge == 1 ? "" : "s");
	rc = rc || sbuf_addf(out, "</desc>\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
	for (size_t e = 0; e < nge && !rc; e++)
		rc = draw_edge(out, &f, ge[e]);
	for (size_t i = 0; i < drawn && !rc; i++) {
		char href[PB_ID_BUF * 2 + 32];
		const char *owner = !strcmp(g->nodes[i].type, "output_port") ? port_owner(g, drawn, i) : NULL;
		bool linked = lineage_node_href(&g->nodes[i], owner, href, sizeof href);
		rc = draw_node(out, &f, &g->nodes[i], gn[i], linked ? href : NULL, i == 0);
	}
	if (!rc && st.cut) {
		rc = sbuf_addf(out, "<text class=\"note\" x=\"%.1f\" y=\"%.1f\" font-family=\"" FONT
				    "\" font-size=\"11\" fill=\"#92400e\">Showing %zu of %s%zu nodes",
			       PAD, height + NOTE_H / 2 + 4, drawn, g->truncated ? "more than " : "", g->nnodes);
		if (!rc && nge < edges_total)
			rc = sbuf_addf(out, " and %zu of %zu edges", nge, edges_total);
		rc = rc || sbuf_adds(out, ", the nearest first.");
		if (!rc && dot_url)
			rc = sbuf_adds(out, " </text><a href=\"") || xml_text(out, dot_url, 0) ||
			     sbuf_addf(out, "\" target=\"_top\"><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-family=\"" FONT
					    "\" font-size=\"11\" fill=\"#1d4ed8\" text-decoration=\"underline\">The whole graph (DOT)",
				       width - PAD, height + NOTE_H / 2 + 4) ||
			     sbuf_adds(out, "</text></a>\n");
		else if (!rc)
			rc = sbuf_adds(out, "</text>\n");
	}
	rc = rc || sbuf_adds(out, "</svg>\n");
	if (rc)
		rc = pb_err(err, PB_ENOMEM, "lineage picture larger than the response allows");
	if (!rc && stats)
		*stats = st;
out:
	if (laid_out)
		gvFreeLayout(gvc, G);
	if (G)
		agclose(G);
	if (gvc)
		gvFreeContext(gvc);
	free(gn);
	free(ge);
	return rc;
}
