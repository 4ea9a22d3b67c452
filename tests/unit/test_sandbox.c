/* The Lua template sandbox: limits, the known escapes, module loading, messages.
 * Every failing case is followed by a fresh sandbox that must work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "runtime/lua_sandbox.h"
#include "runtime/util.h"

static char tmpdir[256];
static char dir_a[300], dir_b[300];

static void put(const char *dir, const char *name, const char *text)
{
	char path[512], err[PB_ERR_MAX];
	assert_int_equal(xsnprintf(path, sizeof path, "%s/%s", dir, name), 0);
	assert_int_equal(write_file(path, text, strlen(text), err), 0);
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(xsnprintf(tmpdir, sizeof tmpdir, "/tmp/pbiport-sandbox-XXXXXX"), 0);
	assert_non_null(mkdtemp(tmpdir));
	assert_int_equal(xsnprintf(dir_a, sizeof dir_a, "%s/a", tmpdir), 0);
	assert_int_equal(xsnprintf(dir_b, sizeof dir_b, "%s/b", tmpdir), 0);
	put(dir_a, "m.lua", "return 'from a'\n");
	put(dir_b, "m.lua", "return 'from b'\n");
	put(dir_b, "only_b.lua", "return { value = 42 }\n");
	put(dir_a, "sub/mod.lua", "return 'sub'\n");
	put(dir_a, "bad.lua", "local x = 1\nlocal y = = 2\n");
	put(dir_a, "boom.lua", "local t = {}\n\nreturn function(n)\n  return t.x.y\nend\n");
	put(dir_a, "notfn.lua", "return 7\n");
	put(dir_a, "entry.lua", "local m = require 'm'\nreturn function(a, b) return m .. ':' .. a + b end\n");
	put(dir_a, "loop1.lua", "return require 'loop2'\n");
	put(dir_a, "loop2.lua", "return require 'loop1'\n");
	put(dir_a, "spin.lua", "return function() while true do end end\n");
	/* A precompiled chunk starts with ESC "Lua": refused in text-only mode. */
	put(dir_a, "binary.lua", "\x1bLuaT\x00\x19\x93\r\n\x1a\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[400];
	assert_int_equal(xsnprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir), 0);
	return system(cmd) == 0 ? 0 : -1;
}

static lua_sandbox *make(int ms, size_t mem)
{
	sandbox_dir dirs[2] = { { dir_a, "mods" }, { dir_b, NULL } };
	sandbox_opts o = { .dirs = dirs, .ndirs = 2, .time_limit_ms = ms, .mem_max = mem };
	lua_sandbox *sb = NULL;
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_new(&o, &sb, err), 0);
	return sb;
}

/* Runs code; returns rc and copies the message. */
static int run(const char *code, int ms, size_t mem, char *err)
{
	lua_sandbox *sb = make(ms, mem);
	err[0] = '\0';
	int rc = sandbox_run(sb, "test.lua", code, 1, err);
	if (rc == 0)
		lua_pop(sandbox_lua(sb), 1);
	/* The same sandbox refuses work after an error. */
	if (rc) {
		char err2[PB_ERR_MAX];
		assert_int_not_equal(sandbox_run(sb, "again.lua", "return 1", 1, err2), 0);
	}
	sandbox_free(sb);
	return rc;
}

/* A fresh sandbox after any failure computes normally. */
static void still_works(void)
{
	lua_sandbox *sb = make(0, 0);
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_run(sb, "ok.lua", "return ('x'):rep(3) .. math.floor(2.5)", 1, err), 0);
	assert_string_equal(lua_tostring(sandbox_lua(sb), -1), "xxx2");
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
}

static void expect_fail(const char *code, int rc, const char *msg)
{
	char err[PB_ERR_MAX];
	assert_int_equal(run(code, 200, 16u << 20, err), rc);
	assert_string_equal(err, msg);
	still_works();
}

static void runs_plain_code(void **state)
{
	(void)state;
	still_works();
	lua_sandbox *sb = make(0, 0);
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_run(sb, "t.lua", "local t = {} for i = 1, 10 do t[#t + 1] = i end "
				     "return table.concat(t, ',') .. utf8.char(228)", 1, err), 0);
	assert_string_equal(lua_tostring(sandbox_lua(sb), -1), "1,2,3,4,5,6,7,8,9,10\xc3\xa4");
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
}

static void infinite_loop_is_stopped(void **state)
{
	(void)state;
	expect_fail("while true do end", PB_ELIMIT, "template test.lua:1: time limit of 200 ms exceeded");
	expect_fail("local n = 0\nwhile true do\n  pcall(function() while true do n = n + 1 end end)\nend",
		    PB_ELIMIT, "template test.lua:3: time limit of 200 ms exceeded");
	/* xpcall's handler would run inside the hook with hooks off: not offered. */
	expect_fail("xpcall(function() while true do end end, function() while true do end end)",
		    PB_EINVAL, "template test.lua:1: undefined global 'xpcall'");
}

/* The instruction budget stops a loop at the same place on any machine; a budget that
 * is enough leaves an honest script alone, and the count restarts with each call. */
static void instruction_budget_stops_loops(void **state)
{
	(void)state;
	sandbox_dir dirs[1] = { { dir_a, "mods" } };
	sandbox_opts o = { .dirs = dirs, .ndirs = 1, .instr_max = 1000000 };
	lua_sandbox *sb = NULL;
	char err[PB_ERR_MAX];

	assert_int_equal(sandbox_new(&o, &sb, err), 0);
	assert_int_equal(sandbox_run(sb, "ok.lua", "local n = 0 for i = 1, 100000 do n = n + i end return n",
				     1, err), 0);
	assert_int_equal(lua_tointeger(sandbox_lua(sb), -1), 5000050000);
	lua_pop(sandbox_lua(sb), 1);
	long long used = sandbox_instructions(sb);
	assert_true(used >= 200000 && used <= 1000000);
	assert_int_equal(sandbox_run(sb, "ok2.lua", "local n = 0 for i = 1, 100000 do n = n + i end return n",
				     1, err), 0);
	lua_pop(sandbox_lua(sb), 1);
	assert_int_equal(sandbox_instructions(sb), used);
	assert_int_equal(sandbox_call(sb, "spin", 0, err), PB_ELIMIT);
	assert_string_equal(err, "template mods/spin.lua:1: instruction limit of 1000000 exceeded");
	sandbox_free(sb);

	/* pcall cannot swallow it. */
	assert_int_equal(sandbox_new(&o, &sb, err), 0);
	assert_int_equal(sandbox_run(sb, "p.lua", "local n = 0\nwhile true do\n"
				     "  pcall(function() while true do n = n + 1 end end)\nend", 0, err),
			 PB_ELIMIT);
	assert_string_equal(err, "template p.lua:3: instruction limit of 1000000 exceeded");
	sandbox_free(sb);
	still_works();
}

static void memory_bombs_are_refused(void **state)
{
	(void)state;
	expect_fail("return string.rep('x', 1e9)", PB_ELIMIT, "template test.lua: out of memory (limit 16 MiB)");
	expect_fail("local t = {} for i = 1, 1e9 do t[i] = i end", PB_ELIMIT,
		    "template test.lua: out of memory (limit 16 MiB)");
	expect_fail("local s = 'x' while true do s = s .. s end", PB_ELIMIT,
		    "template test.lua: out of memory (limit 16 MiB)");
	/* Caught by pcall and rethrown: still reported as memory. */
	expect_fail("local ok, e = pcall(string.rep, 'x', 1e9) error(e)", PB_ELIMIT,
		    "template test.lua: out of memory (limit 16 MiB)");
}

/* C library functions run without the hook: the sandbox bounds them up front. */
static void c_functions_cannot_run_away(void **state)
{
	(void)state;
	expect_fail("return string.find(string.rep('a', 1e6), '.-.-.-b')", PB_EINVAL,
		    "template test.lua:1: pattern too complex for a 1000000-byte subject "
		    "(simplify the pattern or split the text)");
	expect_fail("local s = ('a'):rep(1e5)\nreturn s:find('a*b')", PB_EINVAL,
		    "template test.lua:2: pattern too complex for a 100000-byte subject "
		    "(simplify the pattern or split the text)");
	expect_fail("return ('x'):rep(1e6):gsub('(x-)y', '')", PB_EINVAL,
		    "template test.lua:1: pattern too complex for a 1000000-byte subject "
		    "(simplify the pattern or split the text)");
	char err[PB_ERR_MAX];
	assert_int_equal(run("local t = {} for i = 1, 1000001 do t[i] = i end\ntable.sort(t)", 0, 0, err),
			 PB_EINVAL);
	assert_string_equal(err, "template test.lua:2: table.sort: more than 1000000 elements");
	lua_sandbox *sb = make(0, 0);
	/* Linear patterns on big texts, plain finds, and the empty-rep loop are fine. */
	assert_int_equal(sandbox_run(sb, "ok.lua",
		"local big = ('line\\n'):rep(1e5)\n"
		"local n = 0 for l in big:gmatch('[^\\n]+') do n = n + 1 end\n"
		"local s, k = big:gsub('\\n', '')\n"
		"return n .. ',' .. k .. ',' .. #string.rep('', 1e15) .. ',' .. #string.rep('', 1e15, '') .. ','"
		" .. big:find('e\\n', 1, true) .. ',' .. select(2, ('a  b   c'):gsub('%s+', ' '))"
		" .. ',' .. (('[x]'):find('[]]')) .. ',' .. ('k=v'):match('^(%w+)=(%w+)$')"
		" .. ',' .. (function() local t = { 3, 1, 2 } table.sort(t, function(a, b) return a > b end)"
		" return table.concat(t) end)()", 1, err), 0);
	assert_string_equal(lua_tostring(sandbox_lua(sb), -1), "100000,100000,0,0,4,2,3,k,321");
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
}

static void dangerous_libraries_are_absent(void **state)
{
	(void)state;
	expect_fail("os.execute('true')", PB_EINVAL, "template test.lua:1: undefined global 'os'");
	expect_fail("return io.open('/etc/passwd')", PB_EINVAL, "template test.lua:1: undefined global 'io'");
	expect_fail("return debug.getinfo(1)", PB_EINVAL, "template test.lua:1: undefined global 'debug'");
	expect_fail("return package.loadlib('libc.so.6', 'system')", PB_EINVAL,
		    "template test.lua:1: undefined global 'package'");
	expect_fail("dofile('/etc/passwd')", PB_EINVAL, "template test.lua:1: undefined global 'dofile'");
	expect_fail("return loadfile('/etc/passwd')", PB_EINVAL, "template test.lua:1: undefined global 'loadfile'");
	expect_fail("return load('return 1')", PB_EINVAL, "template test.lua:1: undefined global 'load'");
	expect_fail("return collectgarbage('count')", PB_EINVAL,
		    "template test.lua:1: undefined global 'collectgarbage'");
	expect_fail("return string.dump(function() end)", PB_EINVAL,
		    "template test.lua:1: attempt to call a nil value (field 'dump')");
	expect_fail("return require 'os'", PB_EINVAL, "template test.lua:1: module 'os' not found");
	expect_fail("return require 'io'", PB_EINVAL, "template test.lua:1: module 'io' not found");
	expect_fail("return require '../a/m'", PB_EINVAL,
		    "template test.lua:1: require: invalid module name (use letters, digits, '_' and '.')");
	expect_fail("return require 'a..m'", PB_EINVAL,
		    "template test.lua:1: require: invalid module name (use letters, digits, '_' and '.')");
	expect_fail("return require 'binary'", PB_EINVAL,
		    "template test.lua:1: mods/binary.lua: attempt to load a binary chunk (mode is 't')");
	expect_fail("return _G", PB_EINVAL, "template test.lua:1: undefined global '_G'");
	expect_fail("setmetatable(_ENV, nil)", PB_EINVAL, "template test.lua:1: cannot change a protected metatable");
}

static void undefined_globals_are_errors(void **state)
{
	(void)state;
	expect_fail("local x = 1\nreturn x + undefined_thing", PB_EINVAL,
		    "template test.lua:2: undefined global 'undefined_thing'");
	expect_fail("\n\ncolour = 'red'", PB_EINVAL,
		    "template test.lua:3: assignment to undefined global 'colour' (declare it local)");
	expect_fail("error('plain message', 0)", PB_EINVAL, "template test.lua:1: plain message");
	expect_fail("error({})", PB_EINVAL, "template test.lua:1: (error object is a table value)");
	expect_fail("error('two\\nlines')", PB_EINVAL, "template test.lua:1: two lines");
}

static void modules_load_from_the_search_path(void **state)
{
	(void)state;
	lua_sandbox *sb = make(0, 0);
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_run(sb, "t.lua", "return require('m') .. ',' .. require('only_b').value .. ',' "
				     ".. require('sub.mod') .. ',' .. tostring(require('m') == require('m'))",
				     1, err), 0);
	assert_string_equal(lua_tostring(sandbox_lua(sb), -1), "from a,42,sub,true");
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);

	expect_fail("return require 'bad'", PB_EINVAL, "template mods/bad.lua:2: unexpected symbol near '='");
	expect_fail("return require 'loop1'", PB_EINVAL,
		    "template mods/loop2.lua:1: require: module 'loop1' is still loading (require loop?)");
}

static void call_runs_entry_module(void **state)
{
	(void)state;
	lua_sandbox *sb = make(0, 0);
	lua_State *L = sandbox_lua(sb);
	char err[PB_ERR_MAX];
	lua_pushinteger(L, 2);
	lua_pushinteger(L, 3);
	assert_int_equal(sandbox_call(sb, "entry", 2, err), 0);
	assert_string_equal(lua_tostring(L, -1), "from a:5");
	lua_pop(L, 1);
	assert_int_equal(lua_gettop(L), 0);
	sandbox_free(sb);

	sb = make(0, 0);
	lua_pushinteger(sandbox_lua(sb), 1);
	assert_int_equal(sandbox_call(sb, "boom", 1, err), PB_EINVAL);
	assert_string_equal(err, "template mods/boom.lua:4: attempt to index a nil value (field 'x')");
	sandbox_free(sb);

	sb = make(0, 0);
	assert_int_equal(sandbox_call(sb, "notfn", 0, err), PB_EINVAL);
	assert_string_equal(err, "template mods/notfn.lua: module 'notfn' must return a function, not a number");
	sandbox_free(sb);

	sb = make(0, 0);
	assert_int_equal(sandbox_call(sb, "missing", 0, err), PB_EINVAL);
	assert_string_equal(err, "template (template): module 'missing' not found");
	sandbox_free(sb);

	sb = make(100, 0);
	assert_int_equal(sandbox_call(sb, "spin", 0, err), PB_ELIMIT);
	assert_string_equal(err, "template mods/spin.lua:1: time limit of 100 ms exceeded");
	sandbox_free(sb);
	still_works();
}

static void finalizers_are_refused(void **state)
{
	(void)state;
	/* Lua runs __gc with hooks off: a looping finalizer would hang the process. */
	expect_fail("setmetatable({}, { __gc = function() while true do end end })", PB_EINVAL,
		    "template test.lua:1: setmetatable: __gc metamethods are not allowed in templates");
	expect_fail("local mt = setmetatable({}, { __index = function() return 1 end })\n"
		    "return setmetatable({}, { __gc = true }) .. 'x'", PB_EINVAL,
		    "template test.lua:2: setmetatable: __gc metamethods are not allowed in templates");
	lua_sandbox *sb = make(100, 0);
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_run(sb, "mt.lua", "local t = setmetatable({}, { __index = function(_, k) "
				     "return k .. '!' end }) return t.hi", 1, err), 0);
	assert_string_equal(lua_tostring(sandbox_lua(sb), -1), "hi!");
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
}

static void uuid_is_name_based_v5(void **state)
{
	(void)state;
	char u[37];
	/* Python: uuid.uuid5(uuid.UUID('5e1b6a0c-2f3d-4c8e-9a71-0b4d2e6f8a13'), 'abc') */
	assert_int_equal(sandbox_uuid("abc", 3, u), 0);
	assert_string_equal(u, "10559ce2-e946-5408-b7f2-4ef32d1032d2");
	lua_sandbox *sb = make(0, 0);
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_run(sb, "u.lua", "return pbiport.uuid('abc') == pbiport.uuid('abc') "
				     "and pbiport.uuid('abc') ~= pbiport.uuid('abd') and pbiport.uuid('abc')",
				     1, err), 0);
	assert_string_equal(lua_tostring(sandbox_lua(sb), -1), "10559ce2-e946-5408-b7f2-4ef32d1032d2");
	lua_pop(sandbox_lua(sb), 1);
	/* Several texts are joined with NUL bytes without building the joined string. */
	assert_int_equal(sandbox_run(sb, "u2.lua", "return pbiport.uuid('a', 'bc', '') == pbiport.uuid('a\\0bc\\0') "
				     "and pbiport.uuid('a', 'bc') ~= pbiport.uuid('abc')", 1, err), 0);
	assert_true(lua_toboolean(sandbox_lua(sb), -1));
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(runs_plain_code),
		cmocka_unit_test(infinite_loop_is_stopped),
		cmocka_unit_test(instruction_budget_stops_loops),
		cmocka_unit_test(memory_bombs_are_refused),
		cmocka_unit_test(c_functions_cannot_run_away),
		cmocka_unit_test(dangerous_libraries_are_absent),
		cmocka_unit_test(undefined_globals_are_errors),
		cmocka_unit_test(modules_load_from_the_search_path),
		cmocka_unit_test(call_runs_entry_module),
		cmocka_unit_test(finalizers_are_refused),
		cmocka_unit_test(uuid_is_name_based_v5),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
