/* JSON values into Lua: how C hands a jansson document (a page's view, an import filter's
 * lists) to a template in the sandbox (runtime/lua_sandbox.h).
 *
 * Objects become tables with string keys, arrays tables with keys 1..n, strings strings,
 * integers integers, reals numbers, true/false booleans and null nil (so a missing and a null
 * member read alike). Call it only inside sandbox_cpcall(): it allocates, and so may raise. */
#ifndef PBIPORT_LUA_JSON_H
#define PBIPORT_LUA_JSON_H

#include <lua.h>

struct json_t;

/* Pushes v (NULL: nil). Values nested deeper than max_depth become nil. */
void lua_push_json(lua_State *L, const struct json_t *v, int max_depth);

#endif
