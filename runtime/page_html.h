/* The C half of lua/html.lua, given to every page sandbox (runtime/page_render.c) as functions
 * of the `pbiport` table. html.lua keeps the API templates use and the private key (MARK) that
 * marks an html value, a table { [MARK] = markup }; these do the per-element work, which in
 * Lua cost a dozen library calls and half a dozen allocations per element:
 *
 *   pbiport.html_escape(s)       s with & < > " ' as &amp; &lt; &gt; &quot; &#39; (the same
 *                                string when it has none)
 *   pbiport.html_url(u)          tostring(u) when it is relative (/path, path, ?query,
 *                                #fragment) or http(s) with no space or control character,
 *                                else "about:invalid#unsafe-url"
 *   pbiport.html_element(spec, tag, open, close, MARK)
 *                                the html value <tag attrs>content</tag> (close nil: a void
 *                                element): string keys of spec are attributes (names checked;
 *                                on... and style refused; sorted; values escaped and double
 *                                quoted; true: a boolean attribute; false: left out; a list:
 *                                its items joined with spaces; URL attributes through
 *                                html_url), 1..n its content
 *   pbiport.html_content(v, MARK, where)
 *                                the markup of content v as a string
 * Content: strings are escaped, numbers written as tostring writes them, html values (a MARK
 * key read raw) inserted as they are, other tables flattened as lists (their integer keys in
 * order, holes skipped, at most PB_HTML_LIST_DEPTH deep), nil and false skipped; anything else
 * is an error. Errors name the template's line: the caller of the Lua function that called
 * these ("html: <div>: attribute onclick is not allowed ..."). */
#ifndef PBIPORT_PAGE_HTML_H
#define PBIPORT_PAGE_HTML_H

#include <lauxlib.h>

#define PB_HTML_LIST_DEPTH 100   /* lists inside lists inside an element's content */
#define PB_HTML_LIST_DEPTH_TEXT "100"

/* {NULL, NULL}-ended, for sandbox_opts.api. */
extern const luaL_Reg page_html_api[];

#endif
