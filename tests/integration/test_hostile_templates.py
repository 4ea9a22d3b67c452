"""Hostile templates and filter rules, through nginx and the worker: every attack the sandbox rules of
docs/templates.md call out (libraries that are absent, bytecode, globals, metatables, finalizers,
loops, recursion, memory bombs, library functions that loop in C on an argument: table.move /
insert / remove / concat / unpack / sort, string.rep / pack / format / find / gsub patterns,
utf8.char, tostring, print) ends its render with a clear 500 template_failed naming the template file
and line, in under 5 s, and the FastCGI processes that ran them keep serving (none was restarted); print() writes
only escaped, capped JSON log lines. Filter rules run in the same sandbox: a hostile rule is refused
when the integration is saved, and a rule that turns hostile during a run fails that run while the
same worker goes on with the next job."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import harness

ATTACK_LIMIT_S = 5.0

# (name, Lua, expected message after "template <dir>/attacks/<name>.lua:2: ").
# The Lua is line 2 of `return function(ctx) ... end`.
LIMIT = r"instruction limit of \d+ exceeded"
TIME = r"time limit of \d+ ms exceeded"
ANY_LIMIT = r"(instruction limit of \d+|time limit of \d+ ms) exceeded"
OOM = "OOM"          # out of memory: reported for the entry template (main.lua), no line
OOM_OR_TIME = "OOM_OR_TIME"   # whichever limit comes first
TOO_COMPLEX = r"pattern too complex for a \d+-byte subject \(simplify the pattern or split the text\)"
ATTACKS = [
    # libraries and functions that are not there
    ("os_execute", "os.execute('id')", r"undefined global 'os'"),
    ("os_exit", "os.exit(1)", r"undefined global 'os'"),
    ("io_open", "io.open('/etc/passwd')", r"undefined global 'io'"),
    ("io_popen", "io.popen('id')", r"undefined global 'io'"),
    ("io_lines", "for l in io.lines('/etc/passwd') do end", r"undefined global 'io'"),
    ("require_os", "require 'os'", r"module 'os' not found"),
    ("require_io", "require 'io'", r"module 'io' not found"),
    ("require_debug", "require 'debug'", r"module 'debug' not found"),
    ("require_ffi", "require 'ffi'", r"module 'ffi' not found"),
    ("require_dotdot", "require '../../../etc/passwd'", r"require: invalid module name"),
    ("require_absolute", "require '/etc/passwd'", r"require: invalid module name"),
    ("require_dots", "require 'a..b'", r"require: invalid module name"),
    ("package_loadlib", "package.loadlib('libc.so.6', 'system')", r"undefined global 'package'"),
    ("package_path", "package.path = '/tmp/?.lua'", r"undefined global 'package'"),
    ("load_text", "load('return 1')()", r"undefined global 'load'"),
    ("loadstring", "loadstring('return 1')()", r"undefined global 'loadstring'"),
    ("loadfile", "loadfile('/etc/passwd')", r"undefined global 'loadfile'"),
    ("dofile", "dofile('/etc/passwd')", r"undefined global 'dofile'"),
    ("string_dump", "string.dump(function() end)", r"attempt to call a nil value \(field 'dump'\)"),
    ("debug_getinfo", "debug.getinfo(1)", r"undefined global 'debug'"),
    ("debug_sethook", "debug.sethook()", r"undefined global 'debug'"),
    ("collectgarbage", "collectgarbage('stop')", r"undefined global 'collectgarbage'"),
    ("rawset_env", "rawset(_ENV, 'x', 1)", r"undefined global 'rawset'"),
    ("xpcall", "xpcall(function() while true do end end, function() while true do end end)",
     r"undefined global 'xpcall'"),
    ("coroutine", "coroutine.wrap(function() end)()", r"undefined global 'coroutine'"),
    ("setfenv", "setfenv(1, {})", r"undefined global 'setfenv'"),
    ("global_table", "_G.os = 1", r"undefined global '_G'"),
    # globals and metatables
    ("global_write", "colour = 'red'", r"assignment to undefined global 'colour' \(declare it local\)"),
    ("env_metatable", "setmetatable(_ENV, nil)", r"cannot change a protected metatable"),
    ("env_getmetatable", "getmetatable(_ENV).__index = nil", r"attempt to index a string value"),
    ("string_metatable", "getmetatable('').__index = nil local s = ('x'):rep(2)", r"attempt to index a string value"),
    ("gc_finalizer", "setmetatable({}, { __gc = function() while true do end end })",
     r"setmetatable: __gc metamethods are not allowed in templates"),
    ("close_loop", "do local x <close> = setmetatable({}, { __close = function() while true do end end }) end",
     LIMIT),
    ("index_chain", "local t = {} setmetatable(t, { __index = t }) local x = t.missing",
     r"'__index' chain too long; possible loop"),
    ("index_recursion", "local t = setmetatable({}, { __index = function(t, k) return t[k] end }) local x = t.a",
     r"C stack overflow"),
    ("tostring_recursion", "local t = setmetatable({}, { __tostring = function(t) return tostring(t) end }) "
     "local s = tostring(t)", r"C stack overflow"),
    ("tostring_loop", "local s = tostring(setmetatable({}, { __tostring = function() while true do end end }))", LIMIT),
    ("tostring_big_name", "local s = tostring(setmetatable({}, { __name = ('x'):rep(2^27) })) "
     "local u = s .. s error('survived')", OOM),
    ("eq_loop", "local mt = { __eq = function() while true do end end } "
     "local a, b = setmetatable({}, mt), setmetatable({}, mt) local x = a == b", LIMIT),
    # loops and recursion
    ("while_true", "while true do end", LIMIT),
    ("repeat_forever", "repeat until false", LIMIT),
    ("goto_loop", "::top:: goto top", LIMIT),
    ("pcall_swallow", "while true do pcall(function() while true do end end) end", LIMIT),
    ("error_swallow", "while true do pcall(error, 'x') end", ANY_LIMIT),
    ("deep_recursion", "local function f(n) return 1 + f(n + 1) end f(1)", r"stack overflow"),
    ("tail_recursion", "local function f() return f() end f()", LIMIT),
    ("gsub_callback_loop", "local s = ('x'):rep(10):gsub('x', function() while true do end end)", LIMIT),
    ("sort_comparator_loop", "table.sort({ 3, 2, 1 }, function() while true do end end)", LIMIT),
    # memory
    ("rep_memory", "local s = string.rep('x', 2^30)", OOM),
    ("rep_too_large", "local s = string.rep('x', 1e18)", r"resulting string too large"),
    ("rep_empty", "local s = string.rep('', 2^53) .. string.rep('', 2^53, '') error('survived ' .. #s)",
     r"survived 0"),
    ("table_grow", "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end", OOM_OR_TIME),
    ("concat_doubling", "local s = 'x' while true do s = s .. s end", OOM_OR_TIME),   # copies ~512 MiB: on a loaded host the time limit may come first
    ("huge_concat", "local t = {} for i = 1, 12000 do t[i] = ('x'):rep(10000) .. i end "
     "local s = table.concat(t, table.concat(t))", OOM_OR_TIME),
    ("huge_output", "return { ['definition/a.tmdl'] = ('x'):rep(2^28) }", OOM),
    ("pack_padding", "local s = string.pack('c2000000000', '')", OOM),
    ("pcall_oom", "local ok, e = pcall(string.rep, 'x', 2^30) error(e)", OOM),
    # library functions that loop in C on an argument: their work reports charge the
    # instruction budget, and on a loaded host the watchdog may stop them first
    ("table_move", "table.move({}, 1, 2^40, 1, {})", ANY_LIMIT),
    ("table_move_string", "table.move('abc', 1, 2^40, 1, {})", ANY_LIMIT),
    ("table_move_negative", "table.move({}, -2^40, 2^40, 1)", ANY_LIMIT),
    ("table_insert_len", "table.insert(setmetatable({}, { __len = function() return 2^40 end }), 1, 'x')", ANY_LIMIT),
    ("table_remove_len", "table.remove(setmetatable({}, { __len = function() return 2^40 end }), 1)", ANY_LIMIT),
    ("table_concat_range", "local s = table.concat({}, '', 1, 2^40)",
     r"invalid value \(nil\) at index 1 in table for 'concat'"),
    ("table_concat_len", "local s = table.concat(setmetatable({}, { __len = function() return 2^40 end, "
     "__index = function() return 'x' end }))", ANY_LIMIT),
    ("table_unpack", "local x = table.unpack({}, 1, 2^40)", r"too many results to unpack"),
    ("table_unpack_big", "local n = select('#', table.unpack({}, 1, 990000)) error('survived ' .. n)",
     r"survived 990000"),
    ("sort_len", "table.sort(setmetatable({ 2, 1 }, { __len = function() return 2^31 - 2 end }))",
     r"table.sort: a table with a __len metamethod cannot be sorted in a template"),
    ("sort_too_many", "local t = {} for i = 1, 1000001 do t[i] = i end table.sort(t)",
     r"table.sort: more than 1000000 elements"),
    ("sort_long_texts", "local t, s = {}, ('x'):rep(20000) for i = 1, 100000 do t[i] = s end table.sort(t)",
     r"table.sort: 100000 texts of up to 20000 bytes are too much to compare without a comparison function"),
    ("sort_c_comparator", "local t = {} for i = 1, 1000000 do t[i] = i end table.sort(t, rawequal)",
     r"(" + TIME + "|" + LIMIT + ")"),
    ("sort_bad_order", "local t = {} for i = 1, 100 do t[i] = i end table.sort(t, function() return true end)",
     r"invalid order function for sorting"),
    ("pattern_backtracking", "local x = ('a'):rep(1e5):find('.-.-.-b')", TOO_COMPLEX),
    ("pattern_star", "local x = ('a'):rep(1e5):match('a*b')", TOO_COMPLEX),
    ("pattern_literal", "local x = ('a'):rep(3e4):gsub(('a'):rep(1e4) .. 'b', '')", TOO_COMPLEX),
    ("pattern_balance", "local x = ('('):rep(1e5):find('%b()')", TOO_COMPLEX),
    ("pattern_backref", "local x = ('a'):rep(5e4):find('(a*)%1b')", TOO_COMPLEX),
    ("pattern_big_set", "local x = ('a'):rep(1e6):match('[' .. ('b'):rep(1000) .. ']')", TOO_COMPLEX),
    ("gmatch_anchor", "for x in ('a'):rep(1e5):gmatch('^a*b') do end", TOO_COMPLEX),
    ("find_long_needle", "local s = ('a'):rep(2e7) local i = s:find(('a'):rep(1e7) .. 'b') "
     "error('survived ' .. tostring(i))", r"(survived nil|" + TIME + ")"),   # time: sanitizer builds
    ("find_in_loop", "local s, n = ('a'):rep(1e6), ('a'):rep(100) .. 'b' for i = 1, 1e9 do local x = s:gsub(n, '') end",
     TIME),
    ("slow_instruction", "local s = ('x'):rep(1e8) while true do local t = s .. 'y' end", TIME),
    ("format_width", "local s = string.format('%999999d', 1)", r"invalid conversion"),
    ("format_long", "local s = string.format('%' .. ('9'):rep(100) .. 'd', 1)", r"invalid (conversion|format)"),
    ("format_tostring_loop", "local s = string.format('%s', setmetatable({}, { __tostring = function() "
     "while true do end end }))", LIMIT),
    ("utf8_char", "local t = {} for i = 1, 900000 do t[i] = 0x7FFFFFFF end "
     "local s = utf8.char(table.unpack(t)) error('survived ' .. #s)",
     r"(survived 5400000|" + TIME + ")"),   # time: sanitizer builds on a loaded host
    ("utf8_codepoint", "local x = utf8.codepoint(('x'):rep(1e7), 1, -1)", r"stack overflow \(string slice too long\)"),
    ("string_byte", "local x = string.byte(('x'):rep(1e7), 1, -1)", r"stack overflow \(string slice too long\)"),
    ("uuid_too_many", "local t = {} for i = 1, 17 do t[i] = 'x' end local u = pbiport.uuid(table.unpack(t))",
     r"pbiport.uuid: at most 16 texts"),
    ("select_range", "local x = select(-2^40)", r"bad argument #1 to 'select' \(index out of range\)"),
    # output that is not files
    ("bad_path", "return { ['../../etc/passwd'] = 'x' }", None),
    # print: one escaped, capped log line each, at most 100 per render
    ("print_forge", "print('x\\n{\"ts\":\"2026-01-01T00:00:00.000Z\",\"level\":\"error\",\"msg\":\"forged\"}\\r') "
     "error('survived')", r"survived"),
    ("print_huge", "print(('x'):rep(16 * 2^20)) error('survived')", r"survived"),
    ("print_flood", "for i = 1, 1e5 do print('flood', i) end error('survived')", r"survived"),
]
# Attacks written as the whole module file (they act while it loads).
RAW = {
    "syntax_error": ("return function(ctx)\n  local x = = 1\nend\n",
                     r"^template \S*/attacks/syntax_error\.lua:2: unexpected symbol near '='$"),
    "bytecode": ("\x1bLuaT\x00\x19\x93\r\n\x1a\n", r"attempt to load a binary chunk \(mode is 't'\)"),
    "top_level_loop": ("while true do end\n", r"^template \S*/attacks/top_level_loop\.lua:1: " + LIMIT + "$"),
    "require_loop": ("return require 'attacks.require_loop'\n",
                     r"^template \S*/attacks/require_loop\.lua:1: require: module 'attacks.require_loop' is still "
                     r"loading \(require loop\?\)$"),
    "not_a_function": ("return 42\n", r"^template \S*/main\.lua:7: attempt to call a number value$"),
    "too_big": ("-- " + "x" * (1024 * 1024 + 10) + "\nreturn function() end\n",
                r"module 'attacks.too_big': file larger than 1048576 bytes"),
}

MAIN = """-- Test template: runs the attack the contract's domain names, or the built-in render.
return function(ctx)
  local name = ctx.contract.domain
  if name == "plain" then
    return require("builtin_main")(ctx)
  end
  return require("attacks." .. name)(ctx)
end
"""


def contract(name):
    return """apiVersion: v3.1.0
kind: DataContract
id: urn:pbiport:it:hostile-{n}
name: Hostile {n}
version: 1.0.0
status: active
domain: {n}
servers:
  - server: sf
    type: snowflake
    host: acme.snowflakecomputing.com
    database: SALES
    schema: PUBLIC
    warehouse: WH
schema:
  - name: orders
    physicalName: ORDERS
    properties:
      - name: order_id
        logicalType: string
        required: true
""".format(n=name)


def make_template_dir():
    tpl = tempfile.mkdtemp(prefix="pbiport-hostile-")
    fill_template_dir(tpl)
    return tpl


def fill_template_dir(tpl):
    os.makedirs(os.path.join(tpl, "attacks"))
    os.makedirs(os.path.join(tpl, "filters"))
    with open(os.path.join(tpl, "main.lua"), "w") as f:
        f.write(MAIN)
    shutil.copy(os.path.join(harness.ROOT, "templates", "tmdl", "main.lua"), os.path.join(tpl, "builtin_main.lua"))
    for name, code, _ in ATTACKS:
        with open(os.path.join(tpl, "attacks", name + ".lua"), "w") as f:
            f.write("return function(ctx)\n%s\nend\n" % code)
    for name, (text, _) in RAW.items():
        with open(os.path.join(tpl, "attacks", name + ".lua"), "w", encoding="latin-1") as f:
            f.write(text)


def expected_message(name, want):
    if want is None:
        return r"^template output: "
    if want == OOM:
        return r"^template \S*/main\.lua: out of memory \(limit 256 MiB\)$"
    if want == OOM_OR_TIME:
        return r"^template \S*/(main\.lua: out of memory \(limit 256 MiB\)|attacks/%s\.lua:2: %s)$" % (
            re.escape(name), TIME)
    return r"^template \S*/attacks/%s\.lua:2: %s" % (re.escape(name), want)


class HostileTemplates(harness.StackTestCase):
    SERVER = "nginx"
    FCGI_PROCS = 2
    ADMIN_TEMPLATES = True

    @classmethod
    def fill_templates(cls, folder):
        fill_template_dir(folder)

    def port_of(self, name):
        status, _, doc = self.stack.import_contract(contract(name), token="alice")
        self.assertIn(status, (200, 201), doc)
        return doc["output_ports"][0]["id"]

    def render(self, name):
        port = self.port_of(name)
        t0 = time.monotonic()
        status, _, doc = self.stack.json("GET", "/api/output-ports/%s/tmdl" % port, token="alice")
        return status, doc, time.monotonic() - t0

    def assert_plain_render_works(self):
        status, _, doc = self.stack.json("GET", "/healthz")
        self.assertEqual(status, 200, doc)
        status, doc, _ = self.render("plain")
        self.assertEqual(status, 200, doc)
        self.assertIn("definition/model.tmdl", [f["path"] for f in doc["files"]])

    def test_every_attack_ends_with_a_clear_error(self):
        pids = sorted(self.stack.pids())
        cases = [(name, expected_message(name, want)) for name, _, want in ATTACKS]
        cases += [(name, want) for name, (_, want) in RAW.items()]
        slow = []
        for name, want in cases:
            with self.subTest(attack=name):
                status, doc, took = self.render(name)
                # the server's templates at fault, not the request: 500, the message kept for the admin
                self.assertEqual(status, 500, doc)
                self.assertEqual(doc["error"]["code"], "template_failed", doc)
                self.assertRegex(doc["error"]["message"], want)
                self.assertNotIn("\n", doc["error"]["message"])
                if took >= ATTACK_LIMIT_S:
                    slow.append((name, round(took, 2)))
        self.assertEqual(slow, [], "attacks that took %.0f s or more" % ATTACK_LIMIT_S)
        # the processes that ran them keep serving: none exited or was restarted
        self.assert_plain_render_works()
        self.assertEqual(sorted(self.stack.pids()), pids)
        self.assertGreaterEqual(len(cases), 70)

    def test_print_writes_escaped_capped_json_lines(self):
        before = len(self.stack.log_lines())
        for name in ("print_forge", "print_huge", "print_flood"):
            status, doc, _ = self.render(name)
            self.assertEqual(status, 500, doc)
        time.sleep(0.2)
        prints, flood = [], 0
        for line in self.stack.log_lines()[before:]:
            if not line.startswith("{"):
                self.assertFalse(line.startswith("pbiport: template"), line)
                continue
            doc = json.loads(line)   # every line is one JSON object: nothing forged a line break
            self.assertNotEqual(doc.get("msg"), "forged", line)
            msg = doc.get("msg") or ""
            if "/attacks/print_" in msg and ": print: " in msg:
                prints.append(msg)
                self.assertLessEqual(len(msg.encode()), 1000 + len("template "), msg[:80])
                flood += "print_flood" in msg
        forged = [m for m in prints if "print_forge" in m]
        self.assertEqual(len(forged), 1, prints[:3])
        self.assertIn('x\\n{"ts":"2026-01-01T00:00:00.000Z","level":"error","msg":"forged"}\\r', forged[0])
        huge = [m for m in prints if "print_huge" in m]
        self.assertEqual(len(huge), 1)
        self.assertTrue(huge[0].endswith("xxx..."), huge[0][-20:])
        self.assertEqual(flood, 100)
        self.assertTrue(any("more than 100 print lines; the rest are not logged" in line
                            for line in self.stack.log_lines()[before:]))


# Filter rules: the module filters.<name>.lua of the template path; line 2 of each is the attack.
RULES = {
    "spin": "while true do end",
    "move": "table.move({}, 1, 2^40, 1, {})",
    "pattern": "local x = ('a'):rep(1e5):find('.-.-.-b')",
    "memory": "local s = string.rep('x', 2^30)",
    # hostile only for one workspace, so it passes the check made when the integration is saved
    "trap": "if item.name == 'Finance' then table.move({}, 1, 2^40, 1, {}) end",
}


class HostileFilterRules(harness.EmulatorStackTestCase):
    SERVER = "nginx"
    FCGI_PROCS = 2
    EMU_FIXTURE = "demo.json"

    @classmethod
    def setUpClass(cls):
        cls.tpl = make_template_dir()
        for name, code in RULES.items():
            with open(os.path.join(cls.tpl, "filters", name + ".lua"), "w") as f:
                f.write("return function(item, rules)\n%s\nreturn true\nend\n" % code)
        cls.EMU_ENV = dict(APPLICATION_INGESTIONS_ENABLED="true", APPLICATION_ENCRYPTION_KEYS="44" * 32,
                           APPLICATION_SECURITY_REMEMBERME_KEY="55" * 32, PBIPORT_SCAN_POLL_MS="100",
                           PBIPORT_SCAN_POLL_MAX_MS="400", PBIPORT_TEMPLATE_PATH=cls.tpl)
        super().setUpClass()
        t = harness.tenants_fixture()["tenants"][0]
        cls.tenant, cls.app = t["id"], t["apps"][1]
        cls.worker = None

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.worker:
                harness.kill_group(cls.worker)
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tpl, ignore_errors=True)

    def integration(self, name, rule=None):
        body = {"name": name, "type": "powerbi", "tenant_id": self.tenant, "client_id": self.app["client_id"],
                "client_secret": self.app["client_secret"]}
        if rule:
            body["filter_rule"] = rule
        t0 = time.monotonic()
        status, _, doc = self.stack.json("POST", "/api/integrations", body=json.dumps(body),
                                         headers={"Content-Type": "application/json"}, token="alice")
        return status, doc, time.monotonic() - t0

    def run_to_end(self, iid):
        status, _, doc = self.stack.json("POST", "/api/integrations/%s/runs" % iid, token="alice")
        self.assertEqual(status, 202, doc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, _, runs = self.stack.json("GET", "/api/integrations/%s/runs" % iid, token="alice")
            self.assertEqual(status, 200, runs)
            run = runs["runs"][0]
            if run["state"] in ("succeeded", "failed"):
                return run
            time.sleep(0.2)
        self.fail("the run did not end within 60 s: %r" % run)

    def test_hostile_rule_is_refused_when_saved(self):
        for name, want in (("spin", TIME), ("move", TIME), ("pattern", TOO_COMPLEX),
                           ("memory", r"out of memory \(limit 256 MiB\)")):
            with self.subTest(rule=name):
                status, doc, took = self.integration("rule-" + name, "filters." + name)
                self.assertEqual(status, 400, doc)
                self.assertRegex(doc["error"]["message"],
                                 r"filter rule filters\.%s: template \S*/filters/%s\.lua(:2)?: %s" % (name, name, want))
                self.assertLess(took, ATTACK_LIMIT_S)
        status, _, doc = self.stack.json("GET", "/healthz")
        self.assertEqual(status, 200, doc)

    def test_worker_fails_the_run_and_goes_on(self):
        log = open(self.stack.path("logs", "worker.log"), "ab")
        cls = type(self)
        cls.worker = subprocess.Popen([self.stack.bin, "worker", "--poll-ms", "100", "--lease-seconds", "3"],
                                      env=self.stack.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                      start_new_session=True)
        log.close()
        status, trap, _ = self.integration("trap", "filters.trap")
        self.assertEqual(status, 201, trap)
        t0 = time.monotonic()
        run = self.run_to_end(trap["id"])
        self.assertEqual(run["state"], "failed", run)
        self.assertRegex(json.dumps(run), r"filter rule filters\.trap: template \S*/filters/trap\.lua:2: " + TIME)
        self.assertLess(time.monotonic() - t0, 30)
        status, plain, _ = self.integration("plain")
        self.assertEqual(status, 201, plain)
        run = self.run_to_end(plain["id"])
        self.assertEqual(run["state"], "succeeded", run)
        self.assertIsNone(cls.worker.poll(), "the worker must keep running")


if __name__ == "__main__":
    harness.main()
