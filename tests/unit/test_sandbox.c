/* The Lua template sandbox: limits, the known escapes, module loading, messages, the
 * per-process cache of compiled modules. Every failing case is followed by a fresh sandbox
 * that must work. The sandbox's source is included to see the cache's counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "runtime/lua_sandbox.c"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

static char dir_a[300], dir_b[300];

static int setup(void **state)
{
	assert_int_equal(tu_tmpdir_setup(state), 0);
	assert_int_equal(xsnprintf(dir_a, sizeof dir_a, "%s/a", tu_tmpdir), 0);
	assert_int_equal(xsnprintf(dir_b, sizeof dir_b, "%s/b", tu_tmpdir), 0);
	tu_put(dir_a, "m.lua", "return 'from a'\n");
	tu_put(dir_b, "m.lua", "return 'from b'\n");
	tu_put(dir_b, "only_b.lua", "return { value = 42 }\n");
	tu_put(dir_a, "sub/mod.lua", "return 'sub'\n");
	tu_put(dir_a, "bad.lua", "local x = 1\nlocal y = = 2\n");
	tu_put(dir_a, "boom.lua", "local t = {}\n\nreturn function(n)\n  return t.x.y\nend\n");
	tu_put(dir_a, "notfn.lua", "return 7\n");
	tu_put(dir_a, "entry.lua", "local m = require 'm'\nreturn function(a, b) return m .. ':' .. a + b end\n");
	tu_put(dir_a, "loop1.lua", "return require 'loop2'\n");
	tu_put(dir_a, "loop2.lua", "return require 'loop1'\n");
	tu_put(dir_a, "spin.lua", "return function() while true do end end\n");
	/* A precompiled chunk starts with ESC "Lua": refused in text-only mode. */
	tu_put(dir_a, "binary.lua", "\x1bLuaT\x00\x19\x93\r\n\x1a\n");
	return 0;
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
	long long used = sb->instr_used;
	assert_true(used >= 200000 && used <= 1000000);
	assert_int_equal(sandbox_run(sb, "ok2.lua", "local n = 0 for i = 1, 100000 do n = n + i end return n",
				     1, err), 0);
	lua_pop(sandbox_lua(sb), 1);
	assert_int_equal(sb->instr_used, used);
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
	/* Python: uuid.uuid5(uuid.UUID('5e1b6a0c-2f3d-4c8e-9a71-0b4d2e6f8a13'), 'abc') */
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
	/* Texts longer than the gathering buffer (256 bytes) go to the digest as they come.
	 * Python: uuid.uuid5(NS, 'x' * 300 + '\0' + 'y' * 100 + '\0' + 'z' * 250) */
	assert_int_equal(sandbox_run(sb, "u3.lua", "return pbiport.uuid(('x'):rep(300), ('y'):rep(100), ('z'):rep(250))",
				     1, err), 0);
	assert_string_equal(lua_tostring(sandbox_lua(sb), -1), "0c1d269f-d8d6-5f5a-941a-be7966836843");
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
}

/* pbiport.find_control answers what string.find(s, "%c", init) answers, for any init. */
static void find_control_matches_find(void **state)
{
	(void)state;
	lua_sandbox *sb = make(0, 0);
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_run(sb, "fc.lua",
				     "local texts = { '', 'plain', 'a\\nb', '\\n', 'x\\0y', 'tab\\there', 'del\\127',\n"
				     "  'caf\\195\\169\\r\\n', ('z'):rep(100) .. '\\31' }\n"
				     "local n = 0\n"
				     "for _, s in ipairs(texts) do\n"
				     "  for init = -#s - 2, #s + 2 do\n"
				     "    if pbiport.find_control(s, init) ~= (string.find(s, '%c', init)) then\n"
				     "      error(string.format('%q at %d', s, init))\n"
				     "    end\n"
				     "    n = n + 1\n"
				     "  end\n"
				     "  if pbiport.find_control(s) ~= (string.find(s, '%c')) then error(s) end\n"
				     "end\n"
				     "return n", 1, err), 0);
	assert_int_equal(lua_tointeger(sandbox_lua(sb), -1), 309);   /* every init tried */
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
}

/* pbiport.join_lines answers first .. (the lines joined by sep) .. last, as a split on LF and a
 * table.concat do, and nil for a text with any other control character or that ends in a
 * space or LF. */
static void join_lines_matches_concat(void **state)
{
	(void)state;
	lua_sandbox *sb = make(0, 0);
	char err[PB_ERR_MAX];
	int rc = sandbox_run(sb, "jl.lua",
				     "local texts = { '', 'plain', 'a\\nb', '\\nb', 'a\\n\\nb', ' a b', 'caf\\195\\169\\nx',\n"
				     "  ('z'):rep(3000) .. '\\n' .. ('y'):rep(2000) }\n"
				     "local n = 0\n"
				     "for _, s in ipairs(texts) do\n"
				     "  for _, sep in ipairs({ '', '|', '\\n\\t\\t/// ', ('-'):rep(50) }) do\n"
				     "    local lines, pos = {}, 1\n"
				     "    while true do\n"
				     "      local nl = string.find(s, '\\n', pos, true)\n"
				     "      lines[#lines + 1] = string.sub(s, pos, (nl or #s + 1) - 1)\n"
				     "      if not nl then break end\n"
				     "      pos = nl + 1\n"
				     "    end\n"
				     "    local want = '<' .. table.concat(lines, sep) .. '>\\n'\n"
				     "    if pbiport.join_lines(s, '<', sep, '>\\n') ~= want then error(string.format('%q', s)) end\n"
				     "    n = n + 1\n"
				     "  end\n"
				     "end\n"
				     "for _, s in ipairs({ 'a\\rb', 'a\\r\\n', 'x\\0y', 'tab\\there', 'del\\127', '\\31',\n"
				     "  'a ', 'a\\n', '\\n', ' ', 'a\\n\\n' }) do\n"
				     "  if pbiport.join_lines(s, '', '', '') ~= nil then error(string.format('%q', s)) end\n"
				     "  n = n + 1\n"
				     "end\n"
				     "for k = 0, 16 do\n"   /* at every place of the eight-byte stride */
				     "  for _, c in ipairs({ '\\r', '\\0', '\\127', '\\31', '\\t' }) do\n"
				     "    local s = ('a'):rep(k) .. '\\n' .. c .. ('b'):rep(16 - k)\n"
				     "    if pbiport.join_lines(s, '', '', '') ~= nil then error(string.format('%q', s)) end\n"
				     "  end\n"
				     "  n = n + 1\n"
				     "end\n"
				     "return n", 1, err);
	if (rc)
		fail_msg("%s", err);
	assert_int_equal(lua_tointeger(sandbox_lua(sb), -1), 60);   /* every text and separator tried */
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
}

/* --- library functions that loop in C ---------------------------------------------- */

static lua_sandbox *make_opts(const sandbox_opts *extra)
{
	sandbox_dir dirs[1] = { { dir_a, "mods" } };
	sandbox_opts o = *extra;
	o.dirs = dirs;
	o.ndirs = 1;
	lua_sandbox *sb = NULL;
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_new(&o, &sb, err), 0);
	return sb;
}

static void expect_fail_opts(const sandbox_opts *o, const char *code, int rc, const char *msg)
{
	lua_sandbox *sb = make_opts(o);
	char err[PB_ERR_MAX] = "";
	assert_int_equal(sandbox_run(sb, "test.lua", code, 0, err), rc);
	assert_string_equal(err, msg);
	sandbox_free(sb);
	still_works();
}

/* CPU time of this process: the bounds below say a loop was stopped, which is CPU spent;
 * wall time on a busy machine (CI, parallel suites) says nothing about it. */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Index ranges with nothing in them: no allocation stops these loops, so they count
 * toward the instruction budget and the watchdog ends them without one. */
static void table_loops_are_bounded(void **state)
{
	(void)state;
	sandbox_opts budget = { .instr_max = 1000000 }, timed = { .time_limit_ms = 200 };
	static const char *const loops[] = {
		"\ntable.move({}, 1, 2^40, 1, {})",
		"\ntable.move('abc', 1, 2^40, 1, {})",
		"\ntable.move({}, -2^40, 2^40, 1)",
		"\ntable.insert(setmetatable({}, { __len = function() return 2^40 end }), 1, 'x')",
		"\ntable.remove(setmetatable({}, { __len = function() return 2^40 end }), 1)",
		"\nlocal ok = pcall(table.move, {}, 1, 2^40, 1, {}) table.move({}, 1, 2^40, 1, {})",
	};
	for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
		double t0 = cpu_s();
		expect_fail_opts(&budget, loops[i], PB_ELIMIT, "template test.lua:2: instruction limit of 1000000 exceeded");
		expect_fail_opts(&timed, loops[i], PB_ELIMIT, "template test.lua:2: time limit of 200 ms exceeded");
		assert_true(cpu_s() - t0 < 5);
	}
	/* The copies behave as Lua's own. */
	lua_sandbox *sb = make(0, 0);
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_run(sb, "ok.lua",
		"local t = { 1, 2, 3 } table.move(t, 1, 3, 2) local a = table.concat(t, ',')\n"
		"local u = table.move({ 1, 2, 3 }, 2, 3, 1) local b = table.concat(u, ',')\n"
		"local v = table.move({ 1, 2, 3 }, 1, 3, 3, { 'x' }) local c = table.concat(v, ',', 3, 5)\n"
		"local w = { 'a', 'c' } table.insert(w, 2, 'b') table.insert(w, 'd') local d = table.concat(w)\n"
		"local r = table.remove(w, 1) local r2 = table.remove(w) local e = r .. r2 .. table.concat(w)\n"
		"local z = {} local f = tostring(table.remove(z)) .. #z\n"
		"local ok1, e1 = pcall(table.insert, { 1 }, 5, 'x')\n"
		"local ok2, e2 = pcall(table.insert, { 1 }, 1, 2, 3)\n"
		"local ok3, e3 = pcall(table.move, {}, 1, math.maxinteger, 2)\n"
		"local ok4, e4 = pcall(table.move, 1, 1, 2, 3)\n"
		"return table.concat({ a, b, c, d, e, f, e1, e2, e3, e4 }, '|')", 1, err), 0);
	assert_string_equal(lua_tostring(sandbox_lua(sb), -1),
			    "1,1,2,3|2,3,3|1,2,3|abcd|adbc|nil0|"
			    "bad argument #2 to 'table.insert' (position out of bounds)|"
			    "wrong number of arguments to 'insert'|"
			    "bad argument #4 to 'table.move' (destination wrap around)|"
			    "bad argument #1 to 'table.move' (table expected, got number)");
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
}

static void sort_and_find_are_bounded(void **state)
{
	(void)state;
	expect_fail("local t = setmetatable({ 3, 1 }, { __len = function() return 2^31 - 2 end })\ntable.sort(t)",
		    PB_EINVAL, "template test.lua:2: table.sort: a table with a __len metamethod cannot be sorted in a template");
	expect_fail("local t, s = {}, ('x'):rep(20000) for i = 1, 100000 do t[i] = s end\ntable.sort(t)", PB_EINVAL,
		    "template test.lua:2: table.sort: 100000 texts of up to 20000 bytes are too much to compare "
		    "without a comparison function (pass one)");
	/* With a comparison function each comparison is a call the watchdog can stop. */
	sandbox_opts timed = { .time_limit_ms = 200 };
	expect_fail_opts(&timed, "local t = {} for i = 1, 1000000 do t[i] = i end\ntable.sort(t, rawequal)", PB_ELIMIT,
		    "template test.lua:2: time limit of 200 ms exceeded");
	/* A plain find of a long needle was n x m steps in Lua's lmemfind; memmem is linear. */
	lua_sandbox *sb = make(0, 0);
	char err[PB_ERR_MAX];
	double t0 = cpu_s();
	assert_int_equal(sandbox_run(sb, "find.lua",
		"local s, n = ('a'):rep(2e7), ('a'):rep(1e7) .. 'b'\n"
		"local r = { tostring(s:find(n)), tostring(s:find(n, 1, true)) }\n"
		"local h = 'hello'\n"
		"for _, a in ipairs({ { 'l' }, { 'l', -2 }, { '', 10 }, { '', 6 }, { '', -100 }, { 'lo', 1, true },\n"
		"    { 'xyz' }, { 'h', 0 }, { 'o', 5 }, { 'o', 6 }, { 'a.b', 1, true } }) do\n"
		"  local i, j = h:find(a[1], a[2], a[3]) r[#r + 1] = tostring(i) .. ':' .. tostring(j)\n"
		"end\n"
		"r[#r + 1] = tostring(('a.b'):find('.', 1, true)) .. tostring(('a\\0b'):find('\\0'))\n"
		"return table.concat(r, ' ')", 1, err), 0);
	assert_string_equal(lua_tostring(sandbox_lua(sb), -1),
			    "nil nil 3:3 4:4 nil:nil 6:5 1:0 4:5 nil:nil 1:1 5:5 nil:nil nil:nil 22");
	assert_true(cpu_s() - t0 < 5);
	lua_pop(sandbox_lua(sb), 1);
	sandbox_free(sb);
	/* %b scans to the end of the subject, a back reference compares a capture, and a long
	 * literal or set is compared at every position: each is one more factor of the size. */
	expect_fail("local x = ('('):rep(1e5):find('%b()')", PB_EINVAL,
		    "template test.lua:1: pattern too complex for a 100000-byte subject "
		    "(simplify the pattern or split the text)");
	expect_fail("local x = ('a'):rep(5e4):find('(a*)%1b')", PB_EINVAL,
		    "template test.lua:1: pattern too complex for a 50000-byte subject "
		    "(simplify the pattern or split the text)");
	expect_fail("local x = ('a'):rep(3e4):gsub(('a'):rep(1e4) .. 'b', '')", PB_EINVAL,
		    "template test.lua:1: pattern too complex for a 30000-byte subject "
		    "(simplify the pattern or split the text)");
	expect_fail("local x = ('a'):rep(1e6):match('[' .. ('b'):rep(1000) .. ']')", PB_EINVAL,
		    "template test.lua:1: pattern too complex for a 1000000-byte subject "
		    "(simplify the pattern or split the text)");
	/* gmatch takes '^' literally: no anchor to rely on. */
	expect_fail("for x in ('a'):rep(1e5):gmatch('^a*b') do end", PB_EINVAL,
		    "template test.lua:1: pattern too complex for a 100000-byte subject "
		    "(simplify the pattern or split the text)");
}

/* --- the watchdog -------------------------------------------------------------------- */

/* A C function that loops for ever but calls template code now and then. */
static int spin_calling(lua_State *L)
{
	if (luaL_loadstring(L, "local x = 1"))
		return lua_error(L);
	for (;;) {
		lua_pushvalue(L, -1);
		lua_call(L, 0, 0);
	}
	return 0;
}

static double thread_cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Burns *(int *)ud ms of CPU, calling template code now and then. */
static int burn_ms(lua_State *L)
{
	int ms = *(int *)lua_touserdata(L, 1);
	double until = thread_cpu_ms() + ms;
	if (luaL_loadstring(L, "local x = 1"))
		return lua_error(L);
	while (thread_cpu_ms() < until) {
		lua_pushvalue(L, -1);
		lua_call(L, 0, 0);
	}
	return 0;
}

/* The count hook fires every 10000 instructions; one instruction can take long (a copy
 * of a big string), and a C function can loop: the timer stops both at the limit. */
static void watchdog_stops_slow_instructions_and_calls(void **state)
{
	(void)state;
	sandbox_opts timed = { .time_limit_ms = 200 };
	double t0 = cpu_s();
	expect_fail_opts(&timed, "local s = ('x'):rep(1e7)\nwhile true do local t = s .. 'y' end", PB_ELIMIT,
			 "template test.lua:2: time limit of 200 ms exceeded");
	expect_fail_opts(&timed, "local s = ('x'):rep(1e6)\nwhile true do local ok = pcall(string.rep, s, 8) end", PB_ELIMIT,
		    "template test.lua:2: time limit of 200 ms exceeded");
	assert_true(cpu_s() - t0 < 5);
	lua_sandbox *sb = make(100, 0);
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_cpcall(sb, spin_calling, NULL, 0, err), PB_ELIMIT);
	assert_string_equal(err, "template [string \"local x = 1\"]:1: time limit of 100 ms exceeded");
	sandbox_free(sb);
	still_works();
}

static void total_time_limit_bounds_all_calls(void **state)
{
	(void)state;
	sandbox_opts o = { .time_limit_ms = 200, .total_time_limit_ms = 300 };
	lua_sandbox *sb = make_opts(&o);
	char err[PB_ERR_MAX];
	int ms = 120;
	assert_int_equal(sandbox_cpcall(sb, burn_ms, &ms, 0, err), 0);
	assert_int_equal(sandbox_cpcall(sb, burn_ms, &ms, 0, err), 0);
	assert_int_equal(sandbox_cpcall(sb, burn_ms, &ms, 0, err), PB_ELIMIT);
	assert_string_equal(err, "template [string \"local x = 1\"]:1: total time limit of 300 ms exceeded (all calls together)");
	sandbox_free(sb);
	/* The per-call limit still applies below the total. */
	o.total_time_limit_ms = 10000;
	sb = make_opts(&o);
	ms = 400;
	assert_int_equal(sandbox_cpcall(sb, burn_ms, &ms, 0, err), PB_ELIMIT);
	assert_string_equal(err, "template [string \"local x = 1\"]:1: time limit of 200 ms exceeded");
	sandbox_free(sb);
}

static int spin_forever(lua_State *L)
{
	(void)L;
	for (volatile unsigned long n = 0;; n++)
		;
	return 0;
}

/* A C function that never calls back cannot be stopped safely: PB_LUA_WATCHDOG_GRACE_MS
 * of CPU after the limit the process writes one JSON log line and exits. */
static void watchdog_ends_a_stuck_process(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		lua_sandbox *sb = make(100, 0);
		char err[PB_ERR_MAX];
		sandbox_run(sb, "stuck.lua", "return 1", 1, err);
		sandbox_cpcall(sb, spin_forever, NULL, 0, err);
		_exit(0);
	}
	close(fds[1]);
	char out[4096];
	size_t n = 0;
	ssize_t got;
	while (n + 1 < sizeof out && (got = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
		n += (size_t)got;
	out[n] = '\0';
	close(fds[0]);
	int status = 0;
	struct rusage used;
	assert_int_equal(wait4(pid, &status, 0, &used), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), PB_LUA_WATCHDOG_EXIT);
	/* The watchdog counts the thread's CPU time, so the bound is on CPU time: wall time on a
	 * busy machine says nothing about it (a wall-clock bound here failed under load). */
	double cpu_s = (double)used.ru_utime.tv_sec + used.ru_utime.tv_usec / 1e6 + (double)used.ru_stime.tv_sec +
		       used.ru_stime.tv_usec / 1e6;
	assert_true(cpu_s < 100 / 1000.0 + PB_LUA_WATCHDOG_GRACE_MS / 1000.0 + 1);
	json_error_t je;
	json_t *line = json_loads(out, 0, &je);
	assert_non_null(line);
	assert_string_equal(json_string_value(json_object_get(line, "level")), "error");
	assert_true(strlen(json_string_value(json_object_get(line, "ts"))) == 24);
	assert_non_null(strstr(json_string_value(json_object_get(line, "msg")),
			       "template stuck.lua: a library call ran 2000 ms of CPU past the time limit of 100 ms"));
	json_decref(line);
}

/* --- print --------------------------------------------------------------------------- */

/* Runs code with stderr sent to a file; returns what was written (static buffer). */
static const char *stderr_of(const char *code)
{
	static char out[1 << 16];
	char path[320];
	assert_int_equal(xsnprintf(path, sizeof path, "%s/stderr.txt", tu_tmpdir), 0);
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	lua_sandbox *sb = make(0, 0);
	char err[PB_ERR_MAX];
	int rc = sandbox_run(sb, "p.lua", code, 0, err);
	sandbox_free(sb);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	assert_int_equal(rc, 0);
	ssize_t n = pread(fd, out, sizeof out - 1, 0);
	close(fd);
	assert_true(n >= 0);
	out[n] = '\0';
	return out;
}

static const char *log_msg(const char *line, json_t **keep)
{
	*keep = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
	assert_non_null(*keep);
	return json_string_value(json_object_get(*keep, "msg"));
}

/* print() cannot forge log lines or write a 16 MiB one: one JSON line, escaped, capped. */
static void print_is_one_escaped_capped_log_line(void **state)
{
	(void)state;
	json_t *v;
	const char *out = stderr_of("print('a\\n{\"level\":\"error\"}\\r\\tb\\\\', 1, nil, '\\xff\\0\\xc3\\xa4')");
	assert_non_null(strchr(out, '\n'));
	assert_null(strchr(strchr(out, '\n') + 1, '\n'));
	assert_string_equal(log_msg(out, &v),
			    "template p.lua:1: print: a\\n{\"level\":\"error\"}\\r\\tb\\\\ 1 nil \\xFF\\x00\xc3\xa4");
	json_decref(v);

	out = stderr_of("print(('x'):rep(16 * 1024 * 1024))");
	const char *msg = log_msg(out, &v);
	assert_true(strlen(msg) <= PB_LUA_PRINT_MAX + strlen("template "));
	assert_string_equal(msg + strlen(msg) - 6, "xxx...");
	json_decref(v);

	out = stderr_of("for i = 1, 1000 do print(i) end");
	size_t lines = 0;
	for (const char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, PB_LUA_PRINT_LINES_MAX + 1);
	assert_non_null(strstr(out, "more than 100 print lines; the rest are not logged"));
}

/* Waits until every file written so far is older than the cache's racy window. */
static void wait_out_racy_window(void)
{
	time_t written = time(NULL);
	while (time(NULL) - written < PB_FILE_RACY_S + 1)
		usleep(100 * 1000);
}

static lua_sandbox *cache_sandbox(const char *dir)
{
	sandbox_dir d[] = { { dir, "c" } };
	sandbox_opts o = { .dirs = d, .ndirs = 1 };
	lua_sandbox *sb = NULL;
	char err[PB_ERR_MAX];
	assert_int_equal(sandbox_new(&o, &sb, err), 0);
	return sb;
}

/* Calls module name (a function of no arguments) in a new sandbox; its result as text, or
 * the error message. */
static void call_fresh(const char *dir, const char *name, char *out, size_t size)
{
	lua_sandbox *sb = cache_sandbox(dir);
	char err[PB_ERR_MAX];
	if (sandbox_call(sb, name, 0, err))
		xsnprintf(out, size, "error: %s", err);
	else
		xsnprintf(out, size, "%s", lua_tostring(sandbox_lua(sb), -1));
	sandbox_free(sb);
}

static void rewrite_in_place(const char *dir, const char *name, const char *text)
{
	char path[512];
	assert_int_equal(xsnprintf(path, sizeof path, "%s/%s", dir, name), 0);
	FILE *f = fopen(path, "r+");   /* same inode, same size: only the times tell */
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

/* Modules are compiled once per process; every sandbox still starts from fresh state; a
 * changed file is compiled again; the cache is bounded; nothing but a text file is read. */
static void modules_are_compiled_once_per_process(void **state)
{
	(void)state;
	char dir[400], path[512], out[PB_ERR_MAX], want[PB_ERR_MAX];
	assert_int_equal(xsnprintf(dir, sizeof dir, "%s/cache", tu_tmpdir), 0);
	/* state kept in the module's own upvalue: 1 on the first call of every sandbox */
	tu_put(dir, "counter.lua", "local n = 0\nreturn function() n = n + 1 return 'n=' .. n end\n");
	tu_put(dir, "boom.lua", "local t = {}\n\nreturn function()\n  return t.x.y\nend\n");
	tu_put(dir, "syntax.lua", "return function( end\n");
	for (int i = 0; i < PB_LUA_CACHE_CHUNKS + 8; i++) {
		char name[32];
		assert_int_equal(xsnprintf(name, sizeof name, "many/m%d.lua", i), 0);
		tu_put(dir, name, "return function() return 'many' end\n");
	}
	wait_out_racy_window();

	unsigned long hits = chunk_cache.hits, misses = chunk_cache.misses;
	for (int i = 0; i < 3; i++) {
		call_fresh(dir, "counter", out, sizeof out);
		assert_string_equal(out, "n=1");
	}
	assert_int_equal(chunk_cache.misses, misses + 1);   /* compiled once */
	assert_int_equal(chunk_cache.hits, hits + 2);       /* loaded twice */
	assert_int_equal(xsnprintf(path, sizeof path, "%s/counter.lua", dir), 0);
	assert_true(cache_find(path) >= 0);

	/* the same size in the same inode, written now: compiled again, and the new text runs */
	rewrite_in_place(dir, "counter.lua", "local n = 4\nreturn function() n = n + 1 return 'n=' .. n end\n");
	call_fresh(dir, "counter", out, sizeof out);
	assert_string_equal(out, "n=5");
	/* ... and, changed less than PB_FILE_RACY_S ago, it is not kept: compiled each time */
	assert_true(cache_find(path) < 0);
	hits = chunk_cache.hits;
	call_fresh(dir, "counter", out, sizeof out);
	assert_string_equal(out, "n=5");
	assert_int_equal(chunk_cache.hits, hits);

	/* messages from a cached module still name its file and line */
	assert_int_equal(xsnprintf(want, sizeof want, "error: template c/boom.lua:4: attempt to index a nil value "
				   "(field 'x')"), 0);
	call_fresh(dir, "boom", out, sizeof out);
	assert_string_equal(out, want);
	hits = chunk_cache.hits;
	call_fresh(dir, "boom", out, sizeof out);
	assert_string_equal(out, want);
	assert_int_equal(chunk_cache.hits, hits + 1);
	/* a module that does not compile is not kept */
	call_fresh(dir, "syntax", out, sizeof out);
	assert_non_null(strstr(out, "c/syntax.lua:1:"));
	assert_int_equal(xsnprintf(path, sizeof path, "%s/syntax.lua", dir), 0);
	assert_true(cache_find(path) < 0);

	/* bounded: the least recently used go */
	lua_sandbox *sb = cache_sandbox(dir);
	char err[PB_ERR_MAX], code[128];
	assert_int_equal(xsnprintf(code, sizeof code, "for i = 0, %d do require('many.m' .. i)() end return 1",
				   PB_LUA_CACHE_CHUNKS + 7), 0);
	assert_int_equal(sandbox_run(sb, "many.lua", code, 1, err), 0);
	sandbox_free(sb);
	assert_true(chunk_cache.n <= PB_LUA_CACHE_CHUNKS);
	assert_true(chunk_cache.bytes <= PB_LUA_CACHE_BYTES);
	assert_int_equal(xsnprintf(path, sizeof path, "%s/many/m%d.lua", dir, PB_LUA_CACHE_CHUNKS + 7), 0);
	assert_true(cache_find(path) >= 0);
	assert_int_equal(xsnprintf(path, sizeof path, "%s/many/m0.lua", dir), 0);
	assert_true(cache_find(path) < 0);

	/* the cache holds only what pbiport compiled: a file of bytecode is refused as before,
	 * however old it is */
	expect_fail("return require 'binary'", PB_EINVAL,
		    "template test.lua:1: mods/binary.lua: attempt to load a binary chunk (mode is 't')");
	still_works();
}

/* The deadline's scaling to the machine: measured once per process, bounded; the scaled
 * value is never below the one asked for and never above the cap. */
static void time_scale(void **state)
{
	(void)state;
	int pct = sandbox_time_scale_pct();
	assert_true(pct >= 100);
	assert_true(pct <= PB_LUA_TIME_SCALE_MAX_PCT);
	assert_int_equal(sandbox_time_scale_pct(), pct);   /* once per process */
	assert_int_equal(sandbox_scaled_ms(300, 100, 5000), 300);
	assert_int_equal(sandbox_scaled_ms(300, 40, 5000), 300);     /* faster: never below */
	assert_int_equal(sandbox_scaled_ms(300, 250, 5000), 750);
	assert_int_equal(sandbox_scaled_ms(540, 800, 5000), 4320);
	assert_int_equal(sandbox_scaled_ms(3000, 250, 5000), 5000);  /* the cap */
	assert_int_equal(sandbox_scaled_ms(6000, 250, 5000), 6000);  /* a limit past the cap stays */
	assert_int_equal(sandbox_scaled_ms(2000000000, 800, 2100000000), 2100000000);   /* no overflow */
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
		cmocka_unit_test(find_control_matches_find),
		cmocka_unit_test(join_lines_matches_concat),
		cmocka_unit_test(table_loops_are_bounded),
		cmocka_unit_test(sort_and_find_are_bounded),
		cmocka_unit_test(watchdog_stops_slow_instructions_and_calls),
		cmocka_unit_test(total_time_limit_bounds_all_calls),
		cmocka_unit_test(watchdog_ends_a_stuck_process),
		cmocka_unit_test(print_is_one_escaped_capped_log_line),
		cmocka_unit_test(modules_are_compiled_once_per_process),
		cmocka_unit_test(time_scale),
	};
	return cmocka_run_group_tests(tests, setup, tu_tmpdir_teardown);
}
