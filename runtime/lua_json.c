#include "runtime/lua_json.h"

#include <jansson.h>
#include <lauxlib.h>

static void push(lua_State *L, const json_t *v, int depth, int max_depth)
{
	luaL_checkstack(L, 4, "JSON nested too deeply");
	if (!v || depth > max_depth) {
		lua_pushnil(L);
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		lua_createtable(L, 0, (int)json_object_size(v));
		json_object_foreach((json_t *)v, k, x) {
			push(L, x, depth + 1, max_depth);
			lua_setfield(L, -2, k);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *x;
		lua_createtable(L, (int)json_array_size(v), 0);
		json_array_foreach(v, i, x) {
			push(L, x, depth + 1, max_depth);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	}
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(v));
		break;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		lua_pushboolean(L, json_is_true(v));
		break;
	default:
		lua_pushnil(L);
		break;
	}
}

void lua_push_json(lua_State *L, const json_t *v, int max_depth)
{
	push(L, v, 0, max_depth);
}
