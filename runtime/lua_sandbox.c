/* The template sandbox: see lua_sandbox.h for the rules it enforces. Shaped after
 * redis's script_lua.c (allow lists, protected globals), HAProxy's hlua.c (capped
 * allocator, forced hook) and lighttpd's mod_magnet (per-run environment). */
#include "runtime/lua_sandbox.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>
#include <openssl/evp.h>

#include "runtime/util.h"

#define SB_HOOK_COUNT 10000         /* instructions between budget/deadline checks (~50 us) */
#define SB_MODULE_NAME_MAX 128
#define SB_PATH_MAX 4096
#define SB_GC_PAUSE 400             /* percent heap growth between collections */
#define SB_PATTERN_STEPS 2e8        /* worst-case matcher steps one string.find/gsub may take */
#define SB_SORT_MAX 1000000         /* elements table.sort accepts */

struct lua_sandbox {
	lua_State *L;
	size_t used, peak, max;
	bool oom;            /* the allocator refused a request */
	bool expired;        /* the deadline passed or the instruction budget ran out */
	bool out_of_instr;   /* ... and it was the budget */
	bool dead;           /* a call failed: the state may be inconsistent */
	int64_t deadline_ns;
	int limit_ms;
	long long instr_max;         /* per call; 0 = no instruction budget */
	long long instr_used;        /* by the current (or last) call, in SB_HOOK_COUNT steps */
	char where[PB_ERR_MAX];      /* "path:line" of the failing Lua frame */
	char entry[PB_ERR_MAX];      /* chunk name of the entry template, for OOM messages */
	const char *entry_module;    /* borrowed during sandbox_call */
	char **dirs, **labels;
	size_t ndirs;
	EVP_MD *sha1;                /* for pbiport.uuid, created on first use */
	EVP_MD_CTX *md_ctx;
};

/* Registry keys: addresses unique to this file. */
static const char LOADED_KEY = 0, API_KEY = 0, ENVMETA_KEY = 0, LOADING_MARK = 0;

/* A fixed namespace for pbiport's name-based UUIDs. */
static const unsigned char UUID_NS[16] = {
	0x5e, 0x1b, 0x6a, 0x0c, 0x2f, 0x3d, 0x4c, 0x8e,
	0x9a, 0x71, 0x0b, 0x4d, 0x2e, 0x6f, 0x8a, 0x13,
};

static lua_sandbox *sb_of(lua_State *L)
{
	return *(lua_sandbox **)lua_getextraspace(L);
}

/* The deadline counts CPU time of the calling thread, not wall time: a runaway script
 * burns CPU either way, while a big but honest render on a busy machine (other
 * processes, other FastCGI workers) is not failed for time it spent waiting. */
static int64_t now_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Counting allocator: refuses growth past sb->max (HAProxy hlua_alloc). */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	lua_sandbox *sb = ud;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		sb->used -= old;
		return NULL;
	}
	if (nsize > old && (nsize - old > sb->max || sb->used + (nsize - old) > sb->max)) {
		sb->oom = true;
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (!p) {
		sb->oom = true;
		return NULL;
	}
	sb->used = sb->used - old + nsize;
	if (sb->used > sb->peak)
		sb->peak = sb->used;
	return p;
}

static void record_where(lua_sandbox *sb, const lua_Debug *ar)
{
	const char *src = ar->source && ar->source[0] == '@' ? ar->source + 1 : ar->short_src;
	if (xsnprintf(sb->where, sizeof sb->where, "%s:%d", src, ar->currentline))
		sb->where[0] = '\0';
}

/* Budget and deadline check, every SB_HOOK_COUNT instructions. The instruction count is
 * the deterministic limit (same contract, same verdict on any machine); the CPU-time
 * deadline is the backstop for time spent in C library calls, which count as one
 * instruction each. Once expired, fire on every instruction so that a pcall in the
 * script only delays the abort by one instruction (redis luaMaskCountHook). */
static void sb_hook(lua_State *L, lua_Debug *ar)
{
	lua_sandbox *sb = sb_of(L);
	if (!sb->expired) {
		sb->instr_used += SB_HOOK_COUNT;
		if (sb->instr_max > 0 && sb->instr_used > sb->instr_max)
			sb->out_of_instr = true;
		else if (now_ns() < sb->deadline_ns)
			return;
		sb->expired = true;
		if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
			record_where(sb, ar);
		lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
	}
	if (sb->out_of_instr)
		luaL_error(L, "instruction limit of %lld exceeded", sb->instr_max);
	luaL_error(L, "time limit of %d ms exceeded", sb->limit_ms);
}

static void arm_deadline(lua_sandbox *sb)
{
	sb->deadline_ns = now_ns() + (int64_t)sb->limit_ms * 1000000;
	sb->instr_used = 0;
}

/* Message handler: remembers where (file:line) the error was raised in Lua code. */
static int sb_msgh(lua_State *L)
{
	lua_sandbox *sb = sb_of(L);
	lua_Debug ar;
	if (!sb->expired) {
		sb->where[0] = '\0';
		for (int level = 1; lua_getstack(L, level, &ar); level++) {
			if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
				record_where(sb, &ar);
				break;
			}
		}
	}
	if (!lua_isstring(L, 1))
		lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	else
		lua_pushvalue(L, 1);
	return 1;
}

/* True when msg already starts with "<something>.lua:<line>:" (Lua's own location). */
static bool has_location(const char *msg)
{
	const char *nl = strchr(msg, '\n');
	const char *p = strstr(msg, ".lua:");
	if (!p || (nl && p > nl))
		return false;
	p += 5;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	return *p == ':';
}

/* Turns a failed pcall (message on top of the stack) into one error line. */
static int map_error(lua_sandbox *sb, int status, char *err)
{
	lua_State *L = sb->L;
	const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "unknown error";
	const char *entry = sb->entry[0] ? sb->entry : "(template)";
	char line[PB_ERR_MAX];
	int rc;

	sb->dead = true;
	if (sb->expired && sb->out_of_instr) {
		rc = pb_err(err, PB_ELIMIT, "template %s: instruction limit of %lld exceeded",
			    sb->where[0] ? sb->where : entry, sb->instr_max);
		goto out;
	}
	if (sb->expired) {
		rc = pb_err(err, PB_ELIMIT, "template %s: time limit of %d ms exceeded",
			    sb->where[0] ? sb->where : entry, sb->limit_ms);
		goto out;
	}
	if (status == LUA_ERRMEM || (sb->oom && strstr(msg, "not enough memory"))) {
		rc = pb_err(err, PB_ELIMIT, "template %s: out of memory (limit %zu MiB)", entry,
			    sb->max >> 20);
		goto out;
	}
	/* One line: control characters (newlines from tracebacks, tabs) become spaces. */
	size_t n = 0;
	for (const char *p = msg; *p && n + 1 < sizeof line; p++)
		line[n++] = ((unsigned char)*p < 0x20) ? ' ' : *p;
	line[n] = '\0';
	if (has_location(line))
		rc = pb_err(err, PB_EINVAL, "template %s", line);
	else
		rc = pb_err(err, PB_EINVAL, "template %s: %s", sb->where[0] ? sb->where : entry, line);
out:
	lua_pop(L, 1);
	return rc;
}

/* --- what templates see ------------------------------------------------------------ */

static int sb_env_index(lua_State *L)
{
	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	return luaL_error(L, "undefined global '%s'",
			  lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
}

static int sb_env_newindex(lua_State *L)
{
	return luaL_error(L, "assignment to undefined global '%s' (declare it local)",
			  lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
}

/* Gives the function on top of the stack (a main chunk) a fresh, locked _ENV. */
static void set_fresh_env(lua_State *L)
{
	lua_newtable(L);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &ENVMETA_KEY);
	lua_setmetatable(L, -2);
	if (!lua_setupvalue(L, -2, 1))
		lua_pop(L, 1);
}

static int sb_print(lua_State *L)
{
	luaL_Buffer b;
	int n = lua_gettop(L);
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, ' ');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	fprintf(stderr, "pbiport: template: %s\n", lua_tostring(L, -1));
	return 0;
}

typedef struct text_piece {
	const char *p;
	size_t len;
} text_piece;

/* UUIDv5 layout over SHA-1(namespace || piece[0] || NUL || piece[1] ...) with a caller's
 * digest context. */
static int uuid_with(EVP_MD_CTX *ctx, const EVP_MD *sha1, const text_piece *pieces, int n,
		     char out[37])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_DigestInit_ex(ctx, sha1, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, UUID_NS, sizeof UUID_NS) != 1)
		return -1;
	for (int i = 0; i < n; i++)
		if ((i && EVP_DigestUpdate(ctx, "", 1) != 1) ||
		    EVP_DigestUpdate(ctx, pieces[i].p, pieces[i].len) != 1)
			return -1;
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < 16)
		return -1;
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[md[i] >> 4];
		out[o++] = hex[md[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

int sandbox_uuid(const char *text, size_t len, char out[37])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	text_piece piece = { text, len };
	int rc = ctx ? uuid_with(ctx, EVP_sha1(), &piece, 1, out) : -1;
	EVP_MD_CTX_free(ctx);
	return rc;
}

#define SB_UUID_MAX_PIECES 16

/* pbiport.uuid(a [, b ...]): the UUID of the texts joined with NUL bytes, without
 * building the joined string (one per column in a big render). */
static int sb_uuid(lua_State *L)
{
	text_piece pieces[SB_UUID_MAX_PIECES];
	int n = lua_gettop(L);
	lua_sandbox *sb = sb_of(L);
	char u[37];
	luaL_checkstring(L, 1);
	if (n > SB_UUID_MAX_PIECES)
		return luaL_error(L, "pbiport.uuid: at most %d texts", SB_UUID_MAX_PIECES);
	for (int i = 0; i < n; i++)
		pieces[i].p = luaL_checklstring(L, i + 1, &pieces[i].len);
	/* One fetched digest and context per sandbox: a fresh one per call costs 10x. */
	if (!sb->sha1)
		sb->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	if (!sb->md_ctx)
		sb->md_ctx = EVP_MD_CTX_new();
	if (!sb->sha1 || !sb->md_ctx || uuid_with(sb->md_ctx, sb->sha1, pieces, n, u))
		return luaL_error(L, "pbiport.uuid: SHA-1 failed");
	lua_pushstring(L, u);
	return 1;
}

/* setmetatable without __gc: Lua runs finalizers with hooks off (lgc.c GCTM), so a
 * looping finalizer could never be stopped. xpcall is left out for the same reason: a
 * message handler called for the deadline error runs inside the hook, hooks off. */
static int sb_setmetatable(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_istable(L, 2) && lua_getfield(L, 2, "__gc") != LUA_TNIL)
		return luaL_error(L, "setmetatable: __gc metamethods are not allowed in templates");
	lua_settop(L, 2);
	luaL_argexpected(L, lua_isnoneornil(L, 2) || lua_istable(L, 2), 2, "nil or table");
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return luaL_error(L, "cannot change a protected metatable");
	lua_setmetatable(L, 1);
	return 1;
}

/* --- C functions that could run long without the hook firing ---------------------- */

/* Index just past a character class set starting at p[j] == '['. */
static size_t skip_set(const char *p, size_t len, size_t j)
{
	j++;
	if (j < len && p[j] == '^')
		j++;
	if (j < len && p[j] == ']')
		j++;                       /* a leading ']' is a literal */
	while (j < len && p[j] != ']')
		j += p[j] == '%' ? 2 : 1;
	return j + 1;
}

/* Counts the quantifiers (* + - ?) of a Lua pattern that have more pattern after them:
 * those are the ones the backtracking matcher may retry at every length. */
static int backtracking_quantifiers(const char *p, size_t len, bool *anchored)
{
	size_t i = 0;
	int q = 0;
	*anchored = len > 0 && p[0] == '^';
	if (*anchored)
		i = 1;
	while (i < len) {
		size_t end;
		if (p[i] == '(' || p[i] == ')') {
			i++;
			continue;
		}
		if (p[i] == '%' && i + 1 < len && p[i + 1] == 'b') {
			i += 4;
			continue;
		}
		if (p[i] == '%' && i + 1 < len && p[i + 1] == 'f') {
			i = i + 2 < len && p[i + 2] == '[' ? skip_set(p, len, i + 2) : i + 3;
			continue;
		}
		if (p[i] == '%')
			end = i + 2;
		else if (p[i] == '[')
			end = skip_set(p, len, i);
		else
			end = i + 1;
		if (end < len && strchr("*+-?", p[end])) {
			end++;
			size_t rest = end;
			while (rest < len && p[rest] == ')')
				rest++;
			if (rest < len)
				q++;
		}
		i = end;
	}
	return q;
}

enum { GUARD_FIND = 1, GUARD_OTHER = 2 };

/* string.find/match/gmatch/gsub: Lua's matcher runs in C, where the deadline hook cannot
 * fire, and backtracks: n bytes and q retried quantifiers cost up to n^q steps (one more
 * factor of n when unanchored). Refuse what could exceed SB_PATTERN_STEPS. */
static int sb_pattern_guard(lua_State *L)
{
	size_t n, plen;
	luaL_checklstring(L, 1, &n);
	const char *p = luaL_checklstring(L, 2, &plen);
	bool plain = lua_tointeger(L, lua_upvalueindex(2)) == GUARD_FIND && lua_toboolean(L, 4);
	if (!plain) {
		bool anchored;
		int q = backtracking_quantifiers(p, plen, &anchored);
		double steps = 1;
		for (int k = 0; k < q + !anchored && steps <= SB_PATTERN_STEPS; k++)
			steps *= (double)n + 1;
		if (q > 0 && steps > SB_PATTERN_STEPS)
			return luaL_error(L, "pattern too complex for a %d-byte subject "
					  "(simplify the pattern or split the text)", (int)n);
	}
	/* The library function reads the same arguments in this same frame: calling it
	 * directly skips a second trip through Lua's call machinery on every find. */
	return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

/* string.rep: with an empty string and separator Lua's copy loop still runs count
 * times (no allocation stops it); the answer is "" anyway. Other cases are bounded by the
 * allocator, which refuses the result buffer first. */
static int sb_rep_guard(lua_State *L)
{
	size_t len, seplen = 0;
	luaL_checklstring(L, 1, &len);
	luaL_checkinteger(L, 2);
	luaL_optlstring(L, 3, "", &seplen);
	if (len == 0 && seplen == 0) {
		lua_pushliteral(L, "");
		return 1;
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

/* table.sort: without a Lua comparator the whole sort runs in C, past the deadline. */
static int sb_sort_guard(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_rawlen(L, 1) > SB_SORT_MAX)
		return luaL_error(L, "table.sort: more than %d elements", SB_SORT_MAX);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 0);
	return 0;
}

/* Replaces lib[name] (table on top of the stack) with a guard holding the original. */
static void guard(lua_State *L, const char *name, lua_CFunction f, int kind)
{
	lua_getfield(L, -1, name);
	lua_pushinteger(L, kind);
	lua_pushcclosure(L, f, 2);
	lua_setfield(L, -2, name);
}

static bool valid_module_name(const char *s, size_t n)
{
	if (n == 0 || n > SB_MODULE_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || (c == '.' && s[i + 1] != '.');
		if (!ok)
			return false;
	}
	return true;
}

/* require(name): pbiport's own loader over the search folders; text chunks only. */
static int sb_require(lua_State *L)
{
	lua_sandbox *sb = sb_of(L);
	size_t n;
	const char *name = luaL_checklstring(L, 1, &n);
	char rel[SB_MODULE_NAME_MAX + 8], path[SB_PATH_MAX];
	struct stat st;
	size_t found = sb->ndirs;

	if (!valid_module_name(name, n))
		return luaL_error(L, "require: invalid module name (use letters, digits, '_' and '.')");
	lua_settop(L, 1);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &LOADED_KEY);            /* 2 */
	if (lua_getfield(L, 2, name) != LUA_TNIL) {                 /* 3 */
		if (lua_touserdata(L, 3) == &LOADING_MARK)
			return luaL_error(L, "require: module '%s' is still loading (require loop?)", name);
		return 1;
	}
	lua_pop(L, 1);

	size_t i;
	for (i = 0; i < n; i++)
		rel[i] = name[i] == '.' ? '/' : name[i];
	rel[i] = '\0';
	for (i = 0; i < sb->ndirs; i++) {
		if (xsnprintf(path, sizeof path, "%s/%s.lua", sb->dirs[i], rel))
			continue;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			found = i;
			break;
		}
	}
	if (found == sb->ndirs)
		return luaL_error(L, "module '%s' not found", name);
	if ((uint64_t)st.st_size > PB_LUA_MAX_SOURCE_BYTES)
		return luaL_error(L, "module '%s': file larger than %d bytes", name,
				  (int)PB_LUA_MAX_SOURCE_BYTES);

	/* The text lives in a userdata so a Lua error cannot leak it. */
	size_t size = (size_t)st.st_size;
	char *buf = lua_newuserdatauv(L, size + 1, 0);              /* 3 */
	FILE *f = fopen(path, "rb");
	if (!f)
		return luaL_error(L, "module '%s': %s", name, strerror(errno));
	size_t got = fread(buf, 1, size, f);
	fclose(f);
	if (got != size)
		return luaL_error(L, "module '%s': short read", name);
	const char *chunk = lua_pushfstring(L, "@%s/%s.lua", sb->labels[found], rel); /* 4 */
	if (sb->entry_module && !sb->entry[0] && !strcmp(name, sb->entry_module) &&
	    xsnprintf(sb->entry, sizeof sb->entry, "%s", chunk + 1))
		sb->entry[0] = '\0';
	if (luaL_loadbufferx(L, buf, size, chunk, "t") != LUA_OK) {
		/* Syntax errors carry "file:line:"; others (a binary chunk) get the file. */
		if (!has_location(lua_tostring(L, -1)))
			return luaL_error(L, "%s: %s", chunk + 1, lua_tostring(L, -1));
		return lua_error(L);
	}
	set_fresh_env(L);
	lua_pushlightuserdata(L, (void *)&LOADING_MARK);
	lua_setfield(L, 2, name);
	lua_pushvalue(L, 1);
	lua_call(L, 1, 1);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
	}
	lua_pushvalue(L, -1);
	lua_setfield(L, 2, name);
	return 1;
}

static const char *const BASE_ALLOWED[] = {
	"assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal",
	"rawget", "rawlen", "select", "tonumber", "tostring", "type", "_VERSION", "string",
	"table", "math", "utf8",
};

static const char *const BASE_REMOVED[] = {
	"dofile", "loadfile", "load", "collectgarbage", "require", "print", "rawset", "xpcall",
};

static int sb_setup(lua_State *L)
{
	static const luaL_Reg libs[] = {
		{ LUA_GNAME, luaopen_base }, { LUA_STRLIBNAME, luaopen_string },
		{ LUA_TABLIBNAME, luaopen_table }, { LUA_MATHLIBNAME, luaopen_math },
		{ LUA_UTF8LIBNAME, luaopen_utf8 },
	};
	for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
		luaL_requiref(L, libs[i].name, libs[i].func, 1);
		lua_pop(L, 1);
	}
	lua_pushglobaltable(L);
	for (size_t i = 0; i < sizeof BASE_REMOVED / sizeof BASE_REMOVED[0]; i++) {
		lua_pushnil(L);
		lua_setfield(L, -2, BASE_REMOVED[i]);
	}
	lua_getfield(L, -1, LUA_STRLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");   /* bytecode never enters or leaves */
	guard(L, "find", sb_pattern_guard, GUARD_FIND);
	guard(L, "match", sb_pattern_guard, GUARD_OTHER);
	guard(L, "gmatch", sb_pattern_guard, GUARD_OTHER);
	guard(L, "gsub", sb_pattern_guard, GUARD_OTHER);
	guard(L, "rep", sb_rep_guard, GUARD_OTHER);
	lua_pop(L, 1);
	lua_getfield(L, -1, LUA_TABLIBNAME);
	guard(L, "sort", sb_sort_guard, GUARD_OTHER);
	lua_pop(L, 1);

	/* The API table every module environment reads through. */
	lua_newtable(L);
	for (size_t i = 0; i < sizeof BASE_ALLOWED / sizeof BASE_ALLOWED[0]; i++) {
		lua_getfield(L, -2, BASE_ALLOWED[i]);
		lua_setfield(L, -2, BASE_ALLOWED[i]);
	}
	lua_pushcfunction(L, sb_print);
	lua_setfield(L, -2, "print");
	lua_pushcfunction(L, sb_setmetatable);
	lua_setfield(L, -2, "setmetatable");
	lua_pushcfunction(L, sb_require);
	lua_setfield(L, -2, "require");
	lua_newtable(L);
	lua_pushcfunction(L, sb_uuid);
	lua_setfield(L, -2, "uuid");
	lua_setfield(L, -2, "pbiport");
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &API_KEY);

	/* Environment metatable: reads go to the API table, unknown names are errors. */
	lua_newtable(L);
	lua_pushvalue(L, -2);
	lua_pushcclosure(L, sb_env_index, 1);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, sb_env_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_rawsetp(L, LUA_REGISTRYINDEX, &ENVMETA_KEY);

	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &LOADED_KEY);
	return 0;
}

/* --- running ----------------------------------------------------------------------- */

static int check_usable(lua_sandbox *sb, char *err)
{
	if (sb->dead)
		return pb_err(err, PB_EINTERNAL, "template sandbox: unusable after an earlier error");
	if (!lua_checkstack(sb->L, 8))
		return pb_err(err, PB_ENOMEM, "template sandbox: Lua stack exhausted");
	sb->where[0] = '\0';
	arm_deadline(sb);
	return 0;
}

/* Calls the function at stack index base+1 with nargs arguments above it through the
 * message handler; leaves nresults results at base+1... */
static int protected_call(lua_sandbox *sb, int base, int nargs, int nresults, char *err)
{
	lua_State *L = sb->L;
	lua_pushcfunction(L, sb_msgh);
	lua_insert(L, base + 1);
	int status = lua_pcall(L, nargs, nresults, base + 1);
	lua_remove(L, base + 1);
	if (status != LUA_OK)
		return map_error(sb, status, err);
	return 0;
}

int sandbox_cpcall(lua_sandbox *sb, lua_CFunction f, void *ud, int nresults, char *err)
{
	int rc = check_usable(sb, err);
	if (rc)
		return rc;
	int base = lua_gettop(sb->L);
	lua_pushcfunction(sb->L, f);
	lua_pushlightuserdata(sb->L, ud);
	return protected_call(sb, base, 1, nresults, err);
}

static int sb_call_module(lua_State *L)
{
	const char *module = lua_touserdata(L, 1);
	int nargs = lua_gettop(L) - 1;
	lua_pushcfunction(L, sb_require);
	lua_pushstring(L, module);
	lua_call(L, 1, 1);
	if (!lua_isfunction(L, -1))
		return luaL_error(L, "module '%s' must return a function, not a %s", module,
				  luaL_typename(L, -1));
	lua_replace(L, 1);
	lua_call(L, nargs, 1);
	return 1;
}

int sandbox_call(lua_sandbox *sb, const char *module, int nargs, char *err)
{
	int rc = check_usable(sb, err);
	if (rc)
		return rc;
	lua_State *L = sb->L;
	int base = lua_gettop(L) - nargs;
	sb->entry_module = module;
	if (xsnprintf(sb->entry, sizeof sb->entry, "%s", ""))
		sb->entry[0] = '\0';
	lua_pushcfunction(L, sb_call_module);
	lua_insert(L, base + 1);
	lua_pushlightuserdata(L, (void *)module);
	lua_insert(L, base + 2);
	rc = protected_call(sb, base, nargs + 1, 1, err);
	sb->entry_module = NULL;
	return rc;
}

struct run_args {
	const char *chunkname, *code;
};

static int sb_run_chunk(lua_State *L)
{
	const struct run_args *a = lua_touserdata(L, 1);
	lua_settop(L, 0);
	const char *name = lua_pushfstring(L, "@%s", a->chunkname);
	if (luaL_loadbufferx(L, a->code, strlen(a->code), name, "t") != LUA_OK)
		return lua_error(L);
	set_fresh_env(L);
	lua_call(L, 0, LUA_MULTRET);
	return lua_gettop(L) - 1;
}

int sandbox_run(lua_sandbox *sb, const char *chunkname, const char *code, int nresults, char *err)
{
	struct run_args a = { chunkname, code };
	if (xsnprintf(sb->entry, sizeof sb->entry, "%s", chunkname))
		sb->entry[0] = '\0';
	return sandbox_cpcall(sb, sb_run_chunk, &a, nresults, err);
}

/* --- life cycle -------------------------------------------------------------------- */

int sandbox_new(const sandbox_opts *o, lua_sandbox **out, char *err)
{
	int rc = 0;
	lua_sandbox *sb = calloc(1, sizeof *sb);
	*out = NULL;
	if (!sb)
		return pb_err(err, PB_ENOMEM, "template sandbox: out of memory");
	sb->max = o && o->mem_max ? o->mem_max : PB_LUA_MEM_MAX;
	sb->limit_ms = o && o->time_limit_ms > 0 ? o->time_limit_ms : PB_LUA_TIME_MAX_MS;
	sb->instr_max = o && o->instr_max > 0 ? o->instr_max : 0;
	if (o && o->ndirs) {
		sb->dirs = calloc(o->ndirs, sizeof *sb->dirs);
		sb->labels = calloc(o->ndirs, sizeof *sb->labels);
		if (!sb->dirs || !sb->labels) {
			rc = pb_err(err, PB_ENOMEM, "template sandbox: out of memory");
			goto out;
		}
		for (size_t i = 0; i < o->ndirs; i++, sb->ndirs++) {
			sb->dirs[i] = xstrdup(o->dirs[i].dir);
			sb->labels[i] = xstrdup(o->dirs[i].label ? o->dirs[i].label : o->dirs[i].dir);
			if (!sb->dirs[i] || !sb->labels[i]) {
				sb->ndirs++;
				rc = pb_err(err, PB_ENOMEM, "template sandbox: out of memory");
				goto out;
			}
		}
	}
	sb->L = lua_newstate(sb_alloc, sb);
	if (!sb->L) {
		rc = pb_err(err, PB_ENOMEM, "template sandbox: cannot create a Lua state");
		goto out;
	}
	*(lua_sandbox **)lua_getextraspace(sb->L) = sb;
	lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT, SB_HOOK_COUNT);
	rc = sandbox_cpcall(sb, sb_setup, NULL, 0, err);
	/* A render keeps its input alive to the end, so each collection cycle re-marks all of
	 * it: waiting for the heap to grow 4x (not 2x) between cycles cut render CPU ~20% on
	 * bench/tmdl; the allocator cap still bounds the heap (Lua collects fully before
	 * failing an allocation). */
	if (!rc)
		lua_gc(sb->L, LUA_GCINC, SB_GC_PAUSE, 0, 0);
out:
	if (rc) {
		sandbox_free(sb);
		return rc;
	}
	*out = sb;
	return 0;
}

void sandbox_free(lua_sandbox *sb)
{
	if (!sb)
		return;
	if (sb->L) {
		/* Finalizers (__gc) run during lua_close: give them an expired deadline so a
		 * looping one is stopped at its first instruction. */
		sb->expired = true;
		lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT, 1);
		lua_close(sb->L);
	}
	for (size_t i = 0; i < sb->ndirs; i++) {
		free(sb->dirs[i]);
		free(sb->labels[i]);
	}
	free(sb->dirs);
	free(sb->labels);
	EVP_MD_CTX_free(sb->md_ctx);
	EVP_MD_free(sb->sha1);
	free(sb);
}

lua_State *sandbox_lua(lua_sandbox *sb)
{
	return sb->L;
}

size_t sandbox_mem_used(const lua_sandbox *sb)
{
	return sb->used;
}

size_t sandbox_mem_peak(const lua_sandbox *sb)
{
	return sb->peak;
}

long long sandbox_instructions(const lua_sandbox *sb)
{
	return sb->instr_used;
}
