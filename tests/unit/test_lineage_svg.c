/* Unit tests for core/flow/lineage_svg: the picture of a hand-built lineage graph. Hostile
 * names come out escaped and whole (in the titles) or shortened (in the boxes), nothing
 * Graphviz writes itself reaches the document, nodes link to their pages (a port to its
 * product's), invalid UTF-8 and control characters cannot break the XML, and a graph past the
 * node and edge caps is cut with a note naming the whole graph's DOT URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/lineage_svg.h"
#include "runtime/util.h"

#define HOSTILE "\"Quote\" <script>alert('x')</script> & \xF0\x9F\x9A\x80 \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D"

/* A graph of n nodes: node 0 is a data product, then its port, then assets; edges i -> i+1,
 * plus extra edges from node 0 to every other node when dense. */
static void build(lineage_graph *g, size_t n, bool dense)
{
	static const char *const kinds[] = { "semantic_model", "report", "dashboard", "datasource", "workspace" };
	memset(g, 0, sizeof *g);
	g->nodes = calloc(n, sizeof *g->nodes);
	g->edges = calloc(2 * n, sizeof *g->edges);
	assert_non_null(g->nodes);
	assert_non_null(g->edges);
	for (size_t i = 0; i < n; i++) {
		char id[PB_ID_BUF], name[64];
		xsnprintf(id, sizeof id, "%032zx", i + 1);
		xsnprintf(name, sizeof name, "node %zu", i);
		g->nodes[i].id = xstrdup(id);
		g->nodes[i].type = xstrdup(i == 0 ? "data_product" : i == 1 ? "output_port" : kinds[i % 5]);
		g->nodes[i].name = xstrdup(name);
		g->nodes[i].depth = (int)(i < 2 ? i : 2);
	}
	g->nnodes = n;
	for (size_t i = 0; i + 1 < n; i++) {
		g->edges[g->nedges].from = xstrdup(g->nodes[i].id);
		g->edges[g->nedges++].to = xstrdup(g->nodes[i + 1].id);
	}
	for (size_t i = 2; dense && i < n; i++) {
		g->edges[g->nedges].from = xstrdup(g->nodes[0].id);
		g->edges[g->nedges++].to = xstrdup(g->nodes[i].id);
	}
}

static void set_name(lineage_graph *g, size_t i, const char *name)
{
	free(g->nodes[i].name);
	g->nodes[i].name = name ? xstrdup(name) : NULL;
}

static char *render(const lineage_graph *g, const char *dot_url, lineage_svg_stats *st)
{
	sbuf out;
	char err[PB_ERR_MAX] = "";
	sbuf_init(&out, 16u * 1024 * 1024);
	int rc = lineage_svg(g, dot_url, &out, st, err);
	if (rc)
		fail_msg("lineage_svg: %s", err);
	return sbuf_detach(&out, NULL);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_hostile_names_escaped_and_whole(void **state)
{
	(void)state;
	lineage_graph g;
	build(&g, 3, false);
	set_name(&g, 0, HOSTILE);
	set_name(&g, 2, "back\\slash \\N \\G & &amp; <b>bold</b>");
	lineage_svg_stats st;
	char *svg = render(&g, NULL, &st);
	/* the whole name in the titles, escaped */
	assert_non_null(strstr(svg, "<title id=\"lineage-title\">Lineage of &quot;Quote&quot; &lt;script&gt;alert(&#39;x&#39;)"
				    "&lt;/script&gt; &amp; \xF0\x9F\x9A\x80 \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D</title>"));
	assert_non_null(strstr(svg, "<title>back\\slash \\N \\G &amp; &amp;amp; &lt;b&gt;bold&lt;/b&gt; (dashboard)</title>"));
	/* nothing of it as markup */
	assert_null(strstr(svg, "<script"));
	assert_null(strstr(svg, "<b>"));
	assert_int_equal(count(svg, "<svg"), 1);
	/* in the box: the first PB_LINEAGE_SVG_LABEL_CHARS characters and an ellipsis */
	assert_non_null(strstr(svg, ">&quot;Quote&quot; &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; \xF0\x9F\x9A\x80 \xE2\x80\xA6</text>"));
	assert_int_equal(st.nodes_drawn, 3);
	assert_int_equal(st.edges_drawn, 2);
	assert_false(st.cut);
	free(svg);
	lineage_graph_release(&g);
}

static void test_links_and_titles(void **state)
{
	(void)state;
	lineage_graph g;
	build(&g, 4, false);
	set_name(&g, 3, NULL);   /* a node no store knows: no link */
	char *svg = render(&g, NULL, NULL);
	assert_non_null(strstr(svg, "<a class=\"node\" href=\"/data-products/00000000000000000000000000000001\" target=\"_top\">"
				    "<title>node 0 (data product), this page</title>"));
	/* the port links to its product's page, at the port */
	assert_non_null(strstr(svg, "href=\"/data-products/00000000000000000000000000000001#port-00000000000000000000000000000002\""));
	assert_non_null(strstr(svg, "href=\"/assets/00000000000000000000000000000003\""));
	assert_non_null(strstr(svg, "<g class=\"node\"><title>00000000000000000000000000000004 (datasource)</title>"));
	assert_int_equal(count(svg, "<a class=\"node\""), 3);
	/* edges as paths with arrowheads; no Graphviz markup, no script, no style */
	assert_int_equal(count(svg, "<path class=\"edge\""), 3);
	assert_int_equal(count(svg, "<polygon class=\"arrow\""), 3);
	assert_null(strstr(svg, "<!--"));
	assert_null(strstr(svg, "style"));
	for (const char *p = strstr(svg, " on"); p; p = strstr(p + 1, " on"))
		assert_true(strcspn(p + 1, " =>") > 2 && p[1 + strcspn(p + 1, " =>")] != '=');   /* no on...= attribute */
	assert_non_null(strstr(svg, ">output port</text>"));
	free(svg);
	lineage_graph_release(&g);
}

static void test_broken_text_cannot_break_the_xml(void **state)
{
	(void)state;
	lineage_graph g;
	build(&g, 2, false);
	set_name(&g, 0, "bad \xC3\x28 utf8 \xFF\x01\x1b[31m line\nbreak");
	char *svg = render(&g, NULL, NULL);
	assert_non_null(strstr(svg, "<title>bad \xEF\xBF\xBD( utf8 \xEF\xBF\xBD  [31m line break (data product), this page</title>"));
	assert_true(utf8_valid(svg, strlen(svg)));
	for (const char *p = svg; *p; p++)
		assert_true((unsigned char)*p >= 0x20 || *p == '\n');
	free(svg);
	lineage_graph_release(&g);
}

static void test_cut_past_the_caps(void **state)
{
	(void)state;
	lineage_graph g;
	build(&g, PB_LINEAGE_SVG_MAX_NODES + 50, true);
	lineage_svg_stats st;
	char *svg = render(&g, "/api/lineage?node=x&depth=3&format=dot", &st);
	assert_int_equal(st.nodes_drawn, PB_LINEAGE_SVG_MAX_NODES);
	assert_true(st.cut);
	assert_int_equal(count(svg, "class=\"node\""), PB_LINEAGE_SVG_MAX_NODES);
	char note[128];
	xsnprintf(note, sizeof note, "Showing %d of %d nodes", PB_LINEAGE_SVG_MAX_NODES, PB_LINEAGE_SVG_MAX_NODES + 50);
	assert_non_null(strstr(svg, note));
	assert_non_null(strstr(svg, "href=\"/api/lineage?node=x&amp;depth=3&amp;format=dot\""));
	printf("# %d nodes, %zu edges laid out in %lld us\n", PB_LINEAGE_SVG_MAX_NODES, st.edges_drawn, st.layout_us);
	free(svg);
	lineage_graph_release(&g);
	/* lineage's own cap says "more than" */
	build(&g, 5, false);
	g.truncated = true;
	svg = render(&g, NULL, &st);
	assert_true(st.cut);
	assert_non_null(strstr(svg, "Showing 5 of more than 5 nodes"));
	free(svg);
	lineage_graph_release(&g);
}

static void test_one_node_and_empty_graph(void **state)
{
	(void)state;
	lineage_graph g;
	build(&g, 1, false);
	char *svg = render(&g, NULL, NULL);
	assert_int_equal(count(svg, "class=\"node\""), 1);
	assert_int_equal(count(svg, "<path"), 0);
	free(svg);
	lineage_graph_release(&g);
}

static void test_node_href(void **state)
{
	(void)state;
	char out[128];
	lineage_node n = { .id = "abc", .type = "report", .name = "R" };
	assert_true(lineage_node_href(&n, NULL, out, sizeof out));
	assert_string_equal(out, "/assets/abc");
	n.type = "output_port";
	assert_false(lineage_node_href(&n, NULL, out, sizeof out));
	assert_true(lineage_node_href(&n, "def", out, sizeof out));
	assert_string_equal(out, "/data-products/def#port-abc");
	n.type = "powerbi_publish";
	assert_false(lineage_node_href(&n, NULL, out, sizeof out));
	n.type = "data_product";
	assert_false(lineage_node_href(&n, NULL, out, 8));   /* does not fit: no link */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_names_escaped_and_whole),
		cmocka_unit_test(test_links_and_titles),
		cmocka_unit_test(test_broken_text_cannot_break_the_xml),
		cmocka_unit_test(test_cut_past_the_caps),
		cmocka_unit_test(test_one_node_and_empty_graph),
		cmocka_unit_test(test_node_href),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
