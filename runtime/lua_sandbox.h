/* A bounded, allow-listed Lua 5.4 state for running admin-editable templates.
 *
 * Generic: it knows nothing about Power BI or TMDL. One sandbox per run:
 *  - created with lua_newstate and a counting allocator that refuses allocations past
 *    mem_max (default PB_LUA_MEM_MAX);
 *  - a count hook, every 10000 VM instructions, checks an instruction budget (instr_max,
 *    none by default; deterministic: the same script and input stop at the same place on
 *    any machine);
 *  - a watchdog bounds the CPU time of each call (time_limit_ms, default PB_LUA_TIME_MAX_MS,
 *    measured on the calling thread's CPU clock, so a busy machine does not fail honest
 *    renders), whatever runs: a POSIX timer on that clock sends SIGXCPU to the thread, whose
 *    handler makes the hook fire on the next VM instruction or function call (C functions
 *    included), so a loop of library calls, each bounded, still stops at the limit. A call
 *    that is still inside one C function PB_LUA_WATCHDOG_GRACE_MS of CPU later (a hole in the
 *    bounds below) cannot be stopped safely: the process writes one JSON log line and exits
 *    with PB_LUA_WATCHDOG_EXIT (the FastCGI pool or the service manager starts a new one).
 *    total_time_limit_ms optionally bounds all calls of the sandbox together. Use a sandbox
 *    from the thread that created it, with SIGXCPU not blocked. Once a limit is past, the hook
 *    fires on every instruction, so pcall inside a script cannot swallow it;
 *  - only base (without dofile, loadfile, load, collectgarbage, rawset and xpcall;
 *    setmetatable refuses __gc, since Lua runs finalizers with hooks off), string (without
 *    dump), table, math and utf8 are opened; no io, os, debug, coroutine or package;
 *  - `require(name)` loads `<dir>/<name>.lua` (dots become '/') from the search folders in
 *    order, as text only, under the chunk name `<label>/<name>.lua`; names are limited to
 *    [A-Za-z0-9_.]. A module is compiled once per process: its bytecode is kept (at most
 *    PB_LUA_CACHE_CHUNKS files, PB_LUA_CACHE_BYTES) under the file's path and identity
 *    (inode, size, modification and change times), so an edited file is compiled again at
 *    its next use; each sandbox loads the kept bytecode into its own state, where the module
 *    runs afresh. Only bytecode the sandbox dumped from a text file is ever loaded;
 *  - every module runs in its own environment: reading or writing an undefined global is an
 *    error ("undefined global 'x'");
 *  - library functions that loop in C on an argument are bounded (audit of Lua 5.4's base,
 *    string, table, math and utf8 libraries; the rest are O(1), or bounded by the stack
 *    (table.unpack, string.byte, select) or by the memory cap (every byte they write is
 *    allocated first: string.rep, .format, .pack, utf8.char, table.concat, tostring)):
 *    table.move/insert/remove run pbiport's copies, whose loops count one instruction per
 *    element and check the watchdog; string.find of plain text is linear (memmem);
 *    string.find/match/gmatch/gsub refuse patterns whose worst-case backtracking on the
 *    subject could pass PB_LUA_PATTERN_STEPS ("pattern too complex for a N-byte subject");
 *    string.rep of empty strings returns at once; table.sort takes at most PB_LUA_SORT_MAX
 *    elements and no table with a __len metamethod;
 *  - `print` logs one JSON line ("template PATH:LINE: print: text"), control characters and
 *    bytes that are not UTF-8 escaped (\n, \xHH), at most PB_LUA_PRINT_MAX bytes, and at most
 *    PB_LUA_PRINT_LINES_MAX lines per sandbox;
 *  - a C module `pbiport` offers `pbiport.uuid(text [, text2 ...])`: a name-based (SHA-1,
 *    UUIDv5 layout) UUID string of the texts joined with NUL bytes (at most 16), the same
 *    for the same texts, and `pbiport.find_control(text [, init])`: string.find(text, "%c",
 *    init) without the pattern matcher (linear, a few instructions per byte),
 *    `pbiport.join_lines(text, first, sep, last)`: first .. text's lines (split on LF)
 *    joined by sep .. last, nil when text has another control character or ends in a
 *    space or LF (linear); a caller adds its own functions to it with sandbox_opts.api
 *    (web pages: runtime/page_html.h).
 *
 * Errors come back as one line:
 *   template PATH:LINE: message                       (runtime or syntax error)
 *   template PATH: out of memory (limit N MiB)
 *   template PATH:LINE: time limit of N ms exceeded
 *   template PATH:LINE: total time limit of N ms exceeded (all calls together)
 *   template PATH:LINE: instruction limit of N exceeded
 * After any error the sandbox refuses further calls; free it and make a new one. */
#ifndef PBIPORT_LUA_SANDBOX_H
#define PBIPORT_LUA_SANDBOX_H

#include <stddef.h>
#include <sys/stat.h>

#include <lua.h>

typedef struct lua_sandbox lua_sandbox;

typedef struct sandbox_dir {
	const char *dir;    /* folder searched by require */
	const char *label;  /* prefix shown in chunk names and messages; NULL = dir */
} sandbox_dir;

struct luaL_Reg;

typedef struct sandbox_opts {
	const sandbox_dir *dirs;  /* search order, first match wins; copied by sandbox_new */
	size_t ndirs;
	size_t mem_max;           /* bytes; 0 = PB_LUA_MEM_MAX */
	int time_limit_ms;        /* CPU time per call; 0 = PB_LUA_TIME_MAX_MS */
	int total_time_limit_ms;  /* CPU time of all calls together; 0 = none */
	long long instr_max;      /* VM instructions per call (10000 granularity); 0 = none */
	const struct luaL_Reg *api;  /* more functions for the `pbiport` table, {NULL, NULL}-ended;
				      * NULL = none. Borrowed: static, outliving the sandbox */
	/* Told of every file `require` looks for, in search order, with what stat() saw (NULL: no
	 * regular file there): what a result kept beyond the sandbox depends on. NULL = none. */
	void (*file_seen)(void *ctx, const char *path, const struct stat *st);
	void *file_seen_ctx;
} sandbox_opts;

/* *out is new: free with sandbox_free(). */
int sandbox_new(const sandbox_opts *o, lua_sandbox **out, char *err);
void sandbox_free(lua_sandbox *sb);

/* CPU time of the sandbox's calls so far, in ms (what total_time_limit_ms counts). */
long sandbox_time_used_ms(const lua_sandbox *sb);

/* The Lua state, borrowed until sandbox_free(). Use it only to read results and to push
 * plain values with non-raising calls; anything that allocates goes through
 * sandbox_cpcall(). */
lua_State *sandbox_lua(lua_sandbox *sb);

/* Runs f(ud) in protected mode (f may push values and raise errors); f's results stay on
 * the stack (nresults of them). Errors (including out of memory) map to one line. */
int sandbox_cpcall(lua_sandbox *sb, lua_CFunction f, void *ud, int nresults, char *err);

/* Requires `module`, which must return a function, and calls it with the nargs values on
 * top of the stack (they are popped). Leaves its one result on the stack. The deadline
 * starts when this call starts. */
int sandbox_call(lua_sandbox *sb, const char *module, int nargs, char *err);

/* Runs a text chunk named `chunkname` (shown in messages) in a fresh environment and
 * leaves nresults results on the stack. Same limits and messages as sandbox_call. */
int sandbox_run(lua_sandbox *sb, const char *chunkname, const char *code, int nresults,
		char *err);

/* How much slower than the machine the default limits were set on this process runs Lua, in
 * percent: 100 (as fast or faster) to PB_LUA_TIME_SCALE_MAX_PCT. Measured once per process,
 * at the first call, with a fixed loop of about 0.25 ms run twice (runtime/limits.h
 * PB_LUA_CALIBRATION_REF_US); thread-safe. A loaded host, an old CPU, a sanitizer build or
 * valgrind raise it. */
int sandbox_time_scale_pct(void);

/* ms scaled by pct percent: never below ms (a pct under 100 counts as 100), never above cap_ms
 * (unless ms itself is). Pure. */
int sandbox_scaled_ms(int ms, int pct, int cap_ms);

#endif
