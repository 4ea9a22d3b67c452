/* The template sandbox: see lua_sandbox.h for the rules it enforces. Shaped after
 * redis's script_lua.c (allow lists, protected globals), HAProxy's hlua.c (capped
 * allocator, forced hook), lighttpd's mod_magnet (per-run environment) and lua.c's SIGINT
 * handler (a signal sets the hook that stops the script). */
#include "runtime/lua_sandbox.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>
#include <openssl/evp.h>

#include "runtime/log.h"
#include "runtime/util.h"

#define SB_HOOK_COUNT 10000         /* instructions between budget checks (~50 us) */
#define SB_WORK_STEP 4096           /* elements a C loop handles between budget/watchdog checks */
#define SB_MODULE_NAME_MAX 128
#define SB_PATH_MAX 4096
#define SB_GC_PAUSE 400             /* percent heap growth between collections */
#define SB_WATCHDOG_SIGNAL SIGXCPU
#define SB_STUCK_LINE_MAX 1024      /* the last-resort log line, without its time stamp */

/* glibc before 2.41 names the thread id of SIGEV_THREAD_ID only through the union. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

struct lua_sandbox {
	lua_State *L;
	size_t used, max;
	bool oom;            /* the allocator refused a request */
	bool expired;        /* a time limit passed or the instruction budget ran out */
	bool out_of_instr;   /* ... and it was the budget */
	bool dead;           /* a call failed: the state may be inconsistent */
	int limit_ms;
	int total_ms;                /* all calls together; 0 = no such limit */
	int64_t total_used_ns;       /* CPU time of the calls so far */
	long long instr_max;         /* per call; 0 = no instruction budget */
	long long instr_used;        /* by the current (or last) call: VM instructions in SB_HOOK_COUNT
				      * steps, plus elements the table functions' loops handled */
	/* The watchdog: a timer on the creating thread's CPU clock, armed during each call. */
	timer_t timer;
	bool have_timer;
	volatile sig_atomic_t armed;   /* a call runs; the signal handler acts only then */
	volatile sig_atomic_t fired;   /* timer expiries during this call */
	int64_t armed_ns;            /* CPU time the current call was given */
	bool armed_for_total;        /* ... which was what was left of total_ms */
	char stuck_line[SB_STUCK_LINE_MAX]; /* `,"level":...}\n` of the last-resort log line */
	unsigned print_lines;
	char where[PB_ERR_MAX];      /* "path:line" of the failing Lua frame */
	char entry[PB_ERR_MAX];      /* chunk name of the entry template, for OOM messages */
	const char *entry_module;    /* borrowed during sandbox_call */
	char **dirs, **labels;
	size_t ndirs;
	const luaL_Reg *api;         /* the caller's functions for the pbiport table (borrowed) */
	void (*file_seen)(void *ctx, const char *path, const struct stat *st);   /* sandbox_opts' */
	void *file_seen_ctx;
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

/* The sandbox whose call runs on this thread, for the watchdog's signal handler. */
static _Thread_local lua_sandbox *running;

static lua_sandbox *sb_of(lua_State *L)
{
	return *(lua_sandbox **)lua_getextraspace(L);
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
	return p;
}

/* "path:line" of the innermost Lua frame with a line from level on (level 0 = the running
 * function); false (and "") when there is none. */
static bool frame_where(lua_State *L, int level, char *out, size_t size)
{
	lua_Debug ar;
	out[0] = '\0';
	for (; lua_getstack(L, level, &ar); level++) {
		if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
			const char *src = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
			if (!xsnprintf(out, size, "%s:%d", src, ar.currentline))
				return true;
			out[0] = '\0';
			return false;
		}
	}
	return false;
}

static void record_where(lua_sandbox *sb, lua_State *L, int level)
{
	frame_where(L, level, sb->where, sizeof sb->where);
}

static int time_limit_ms(const lua_sandbox *sb)
{
	return sb->armed_for_total ? sb->total_ms : sb->limit_ms;
}

static const char *time_limit_what(const lua_sandbox *sb)
{
	return sb->armed_for_total ? "total time limit" : "time limit";
}

static const char *time_limit_tail(const lua_sandbox *sb)
{
	return sb->armed_for_total ? " (all calls together)" : "";
}

static void sb_hook(lua_State *L, lua_Debug *ar);

/* Stops the script: remembers why and where (first time only), makes the hook fire on
 * every instruction so that a pcall in the script cannot swallow the stop, and raises.
 * With no template code on the stack (the watchdog's call hook fired while an error that
 * already unwound it closes a library buffer) it returns: that error stands, and template
 * code that would run next is stopped at its first instruction. */
static int sb_stop(lua_State *L, lua_sandbox *sb, bool budget)
{
	if (!sb->expired) {
		char where[sizeof sb->where];
		if (!frame_where(L, 0, where, sizeof where))
			return 0;
		memcpy(sb->where, where, sizeof where);
		sb->expired = true;
		sb->out_of_instr = budget;
	}
	/* Count only: a call hook would also fire on the message handler. */
	lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
	if (sb->out_of_instr)
		return luaL_error(L, "instruction limit of %lld exceeded", sb->instr_max);
	return luaL_error(L, "%s of %d ms exceeded%s", time_limit_what(sb), time_limit_ms(sb),
			  time_limit_tail(sb));
}

/* The count hook checks the instruction budget every SB_HOOK_COUNT instructions (C library
 * calls count as one each: the watchdog bounds their time). After the watchdog fired it
 * runs at the next instruction or call, and after a stop at every instruction
 * (redis luaMaskCountHook). */
static void sb_hook(lua_State *L, lua_Debug *ar)
{
	lua_sandbox *sb = sb_of(L);
	if (!sb->expired && !sb->fired) {
		if (ar->event != LUA_HOOKCOUNT)
			return;
		sb->instr_used += SB_HOOK_COUNT;
		if (sb->instr_max <= 0 || sb->instr_used <= sb->instr_max)
			return;
		sb_stop(L, sb, true);
	}
	sb_stop(L, sb, false);
}

/* The hook between limits: the count hook when there is an instruction budget, else none.
 * Any count hook makes Lua 5.4 run every VM instruction through luaG_traceexec (its trap
 * stays on whatever the count): ~13% of a render's instructions. Without a budget the
 * watchdog alone bounds the call: its signal sets the hook that stops the script. */
static void normal_hook(lua_sandbox *sb)
{
	if (sb->instr_max > 0)
		lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT, SB_HOOK_COUNT);
	else
		lua_sethook(sb->L, NULL, 0, 0);
}

/* Work a C loop did for the script (units = elements): counted toward the instruction
 * budget, and a point where the watchdog can stop it. */
static void sb_work(lua_State *L, lua_sandbox *sb, long long units)
{
	sb->instr_used += units;
	if (sb->expired || sb->fired)
		sb_stop(L, sb, false);
	if (sb->instr_max > 0 && sb->instr_used > sb->instr_max)
		sb_stop(L, sb, true);
}

/* --- the watchdog -------------------------------------------------------------------- */

/* "2026-11-26T03:04:05.678Z" from the real-time clock with no library call that is unsafe
 * in a signal handler (gmtime_r and strftime are not async-signal-safe). */
static size_t signal_safe_now(char out[32])
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts))
		return 0;
	int64_t days = ts.tv_sec / 86400, secs = ts.tv_sec % 86400;
	/* civil_from_days (H. Hinnant), days since 1970-01-01 -> year, month, day */
	int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = yoe + era * 400 + (m <= 2);
	int64_t v[7] = { y, m, d, secs / 3600, secs / 60 % 60, secs % 60, ts.tv_nsec / 1000000 };
	static const int width[7] = { 4, 2, 2, 2, 2, 2, 3 };
	static const char after[7] = { '-', '-', 'T', ':', ':', '.', 'Z' };
	size_t n = 0;
	for (int i = 0; i < 7; i++) {
		pb_put_digits(out + n, (unsigned long long)v[i], width[i]);
		n += (size_t)width[i];
		out[n++] = after[i];
	}
	return n;
}

/* A library call has not returned PB_LUA_WATCHDOG_GRACE_MS after the time limit and the
 * hook cannot stop it: interrupting C code at an arbitrary point (longjmp out of a signal
 * handler) could leave the heap locked or the state corrupt, so end the process. Only
 * async-signal-safe calls here. */
static void watchdog_exit(const lua_sandbox *sb)
{
	char line[sizeof sb->stuck_line + 48];
	size_t n = 0, tail = strlen(sb->stuck_line);
	memcpy(line, "{\"ts\":\"", 7);
	n = 7;
	n += signal_safe_now(line + n);
	line[n++] = '"';
	memcpy(line + n, sb->stuck_line, tail);
	n += tail;
	for (size_t off = 0; off < n;) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	_exit(PB_LUA_WATCHDOG_EXIT);
}

/* SIGXCPU: the first expiry of the running call's timer makes the hook fire at the next VM
 * instruction or function call (lua_sethook may be called from a signal handler: lua.c's
 * SIGINT handler does it); the next one, PB_LUA_WATCHDOG_GRACE_MS of CPU later, means the
 * thread is still inside one C function. Expiries of a call that already ended are ignored;
 * a SIGXCPU that is not from a timer (RLIMIT_CPU) gets its default action. */
static void watchdog_signal(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	lua_sandbox *sb = running;
	if (si->si_code != SI_TIMER) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	if (!sb || !sb->armed || si->si_value.sival_ptr != sb)
		return;
	if (++sb->fired == 1) {
		lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT | LUA_MASKCALL, 1);
		return;
	}
	watchdog_exit(sb);
}

static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;
static int watchdog_errno;

static void watchdog_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = watchdog_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;   /* require's file reads go on */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SB_WATCHDOG_SIGNAL, &sa, NULL))
		watchdog_errno = errno;
}

static int watchdog_new(lua_sandbox *sb, char *err)
{
	struct sigevent ev;
	pthread_once(&watchdog_once, watchdog_install);
	if (watchdog_errno)
		return pb_err(err, PB_EINTERNAL, "template sandbox: cannot install the watchdog: %s",
			      strerror(watchdog_errno));
	memset(&ev, 0, sizeof ev);
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = SB_WATCHDOG_SIGNAL;
	ev.sigev_value.sival_ptr = sb;
	ev.sigev_notify_thread_id = gettid();
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &sb->timer))
		return pb_err(err, PB_EINTERNAL, "template sandbox: cannot create the watchdog timer: %s",
			      strerror(errno));
	sb->have_timer = true;
	return 0;
}

static struct timespec ns_to_ts(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
}

/* The last-resort log line (see watchdog_exit), made before the call, outside the handler. */
static void set_stuck_line(lua_sandbox *sb, const char *name)
{
	char text[PB_ERR_MAX];
	size_t n = 0;
	/* name is a path: keep it one JSON-safe line */
	for (const char *p = name; *p && n + 6 < sizeof text; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f)
			n += (size_t)snprintf(text + n, sizeof text - n, "\\u%04x", c);
		else
			text[n++] = (char)c;
	}
	text[n] = '\0';
	if (xsnprintf(sb->stuck_line, sizeof sb->stuck_line,
		      ",\"level\":\"error\",\"msg\":\"template %s: a library call ran %d ms of CPU past the "
		      "%s of %d ms and cannot be interrupted; ending process %ld so it does not hang "
		      "(it is started again)\"}\n",
		      text, PB_LUA_WATCHDOG_GRACE_MS, time_limit_what(sb), time_limit_ms(sb),
		      (long)getpid()))
		xsnprintf(sb->stuck_line, sizeof sb->stuck_line,
			  ",\"level\":\"error\",\"msg\":\"template: a library call could not be "
			  "interrupted; ending the process\"}\n");
}

/* Starts the watchdog for one call: this call's time limit, or what is left of the total. */
static int watchdog_arm(lua_sandbox *sb, char *err)
{
	int64_t ns = (int64_t)sb->limit_ms * 1000000;
	sb->armed_for_total = false;
	if (sb->total_ms > 0) {
		int64_t left = (int64_t)sb->total_ms * 1000000 - sb->total_used_ns;
		if (left <= 0) {
			sb->dead = true;
			return pb_err(err, PB_ELIMIT, "template %s: total time limit of %d ms exceeded "
				      "(all calls together)", sb->entry[0] ? sb->entry : "(template)",
				      sb->total_ms);
		}
		if (left < ns) {
			ns = left;
			sb->armed_for_total = true;
		}
	}
	set_stuck_line(sb, sb->entry[0] ? sb->entry : sb->entry_module ? sb->entry_module : "(template)");
	/* Back to the normal hook: a watchdog that fired as the last call returned set another. */
	normal_hook(sb);
	struct itimerspec its = { .it_value = ns_to_ts(ns),
				  .it_interval = ns_to_ts((int64_t)PB_LUA_WATCHDOG_GRACE_MS * 1000000) };
	sb->armed_ns = ns;
	sb->fired = 0;
	sb->instr_used = 0;
	running = sb;
	sb->armed = 1;
	if (timer_settime(sb->timer, 0, &its, NULL)) {
		sb->armed = 0;
		running = NULL;
		return pb_err(err, PB_EINTERNAL, "template sandbox: cannot start the watchdog timer: %s",
			      strerror(errno));
	}
	return 0;
}

/* Stops the watchdog and adds the call's CPU time to the total. */
static void watchdog_disarm(lua_sandbox *sb)
{
	struct itimerspec zero, left;
	memset(&zero, 0, sizeof zero);
	sb->armed = 0;   /* first: an expiry delivered from here on is ignored */
	if (!timer_settime(sb->timer, 0, &zero, &left) && !sb->fired)
		sb->total_used_ns += sb->armed_ns - ((int64_t)left.it_value.tv_sec * 1000000000 +
						     left.it_value.tv_nsec);
	else
		sb->total_used_ns += sb->armed_ns;
	running = NULL;
}

/* Message handler: remembers where (file:line) the error was raised in Lua code. */
static int sb_msgh(lua_State *L)
{
	lua_sandbox *sb = sb_of(L);
	if (!sb->expired)
		record_where(sb, L, 1);
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
		rc = pb_err(err, PB_ELIMIT, "template %s: %s of %d ms exceeded%s",
			    sb->where[0] ? sb->where : entry, time_limit_what(sb), time_limit_ms(sb),
			    time_limit_tail(sb));
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

/* Appends len bytes of s to out (at most cap bytes in all, *n so far) as readable text on
 * one line: backslash, CR, LF and tab as \\ \r \n \t, other control characters and bytes
 * that are not UTF-8 as \xHH. False when it stopped for lack of room. */
static bool add_escaped(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		const char *piece = esc;
		size_t plen = 1, take = 1;
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			esc[0] = (char)c;
		} else if (c == '\\' || c == '\n' || c == '\r' || c == '\t') {
			esc[0] = '\\';
			esc[1] = c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			plen = 2;
		} else {
			take = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
			if (take && take <= len - i && utf8_valid(s + i, take)) {
				piece = s + i;
				plen = take;
			} else {
				take = 1;
				plen = (size_t)snprintf(esc, sizeof esc, "\\x%02X", c);
			}
		}
		if (*n + plen > cap)
			return false;
		memcpy(out + *n, piece, plen);
		*n += plen;
		i += take;
	}
	return true;
}

/* print(...): one log line per call, not raw text on stderr, where a newline in the text
 * would forge log lines. */
static int sb_print(lua_State *L)
{
	lua_sandbox *sb = sb_of(L);
	char text[PB_LUA_PRINT_MAX + 1], where[PB_ERR_MAX];
	const size_t room = PB_LUA_PRINT_MAX - 3;   /* "..." marks text cut at the cap */
	size_t n = 0;
	int top = lua_gettop(L);
	bool fits;

	if (sb->print_lines >= PB_LUA_PRINT_LINES_MAX) {
		if (sb->print_lines++ == PB_LUA_PRINT_LINES_MAX)
			log_event("info", NULL, "template %s: more than %d print lines; the rest are not logged",
				  sb->entry[0] ? sb->entry : "(template)", PB_LUA_PRINT_LINES_MAX);
		return 0;
	}
	sb->print_lines++;
	if (!frame_where(L, 1, where, sizeof where))
		memcpy(where, "(template)", sizeof "(template)");
	fits = add_escaped(text, room, &n, where, strlen(where)) && add_escaped(text, room, &n, ": print: ", 9);
	for (int i = 1; i <= top && fits; i++) {
		size_t len;
		const char *piece = luaL_tolstring(L, i, &len);
		fits = (i == 1 || add_escaped(text, room, &n, " ", 1)) && add_escaped(text, room, &n, piece, len);
		lua_pop(L, 1);
	}
	if (!fits) {
		memcpy(text + n, "...", 3);
		n += 3;
	}
	text[n] = '\0';
	log_event("info", NULL, "template %s", text);
	return 0;
}

typedef struct text_piece {
	const char *p;
	size_t len;
} text_piece;

/* The digest's input gathered in one buffer: one EVP_DigestUpdate for a short name (each
 * call costs more than hashing a name's bytes). */
typedef struct digest_buf {
	EVP_MD_CTX *ctx;
	size_t used;
	unsigned char b[256];
} digest_buf;

static int digest_flush(digest_buf *d)
{
	int ok = d->used == 0 || EVP_DigestUpdate(d->ctx, d->b, d->used) == 1;
	d->used = 0;
	return ok ? 0 : -1;
}

static int digest_add(digest_buf *d, const void *p, size_t n)
{
	if (n > sizeof d->b - d->used) {
		if (digest_flush(d))
			return -1;
		if (n > sizeof d->b)
			return EVP_DigestUpdate(d->ctx, p, n) == 1 ? 0 : -1;
	}
	memcpy(d->b + d->used, p, n);
	d->used += n;
	return 0;
}

/* UUIDv5 layout over SHA-1(namespace || piece[0] || NUL || piece[1] ...) with a caller's
 * digest context. */
static int uuid_with(EVP_MD_CTX *ctx, const EVP_MD *sha1, const text_piece *pieces, int n,
		     char out[37])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	digest_buf d;
	d.ctx = ctx;
	d.used = 0;
	if (EVP_DigestInit_ex(ctx, sha1, NULL) != 1 || digest_add(&d, UUID_NS, sizeof UUID_NS))
		return -1;
	for (int i = 0; i < n; i++)
		if ((i && digest_add(&d, "", 1)) || digest_add(&d, pieces[i].p, pieces[i].len))
			return -1;
	if (digest_flush(&d) || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < 16)
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
	lua_pushlstring(L, u, 36);
	return 1;
}

/* pbiport.find_control(s [, init]): the position of the first control character (a byte
 * 0-31 or 127: what the pattern "%c" matches) at or after init (default 1; negative counts
 * from the end, as string.find), or nil. The same answer as string.find(s, "%c", init), in
 * a few instructions per byte instead of a pass of the pattern matcher per position. */
static int sb_find_control(lua_State *L)
{
	size_t n;
	const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
	lua_Integer pos = luaL_optinteger(L, 2, 1);
	size_t i = pos > 0 ? (size_t)pos - 1 : pos == 0 || pos < -(lua_Integer)n ? 0 : n + (size_t)pos;
	for (; i < n; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f) {
			lua_pushinteger(L, (lua_Integer)i + 1);
			return 1;
		}
	}
	luaL_pushfail(L);
	return 1;
}

/* pbiport.join_lines(text, first, sep, last): first .. the lines of text (split on LF) joined
 * by sep .. last, or nil when text is not trimmed plain lines: it has a control character
 * other than LF (a byte 0-31 or 127) or ends in a space or LF (the caller's general path
 * handles those). One pass and one new string, where a template would split, concatenate
 * and join per line. Linear in the result, which the memory cap bounds. */
static int sb_join_lines(lua_State *L)
{
	size_t n, nfirst, nsep, nlast;
	const char *s = luaL_checklstring(L, 1, &n);
	const char *first = luaL_checklstring(L, 2, &nfirst);
	const char *sep = luaL_checklstring(L, 3, &nsep);
	const char *last = luaL_checklstring(L, 4, &nlast);
	size_t breaks = 0;
	if (n && (s[n - 1] == ' ' || s[n - 1] == '\n')) {
		luaL_pushfail(L);
		return 1;
	}
	for (size_t i = 0; i < n;) {
		/* eight bytes at a time while none is below 0x20 or 0x7f */
		uint64_t w;
		if (n - i >= 8 && (memcpy(&w, s + i, 8), !(word_bytes_below(w, 0x20) | word_bytes_eq(w, 0x7f)))) {
			i += 8;
			continue;
		}
		unsigned char ch = (unsigned char)s[i++];
		if (ch == '\n') {
			breaks++;
		} else if (ch < 0x20 || ch == 0x7f) {
			luaL_pushfail(L);
			return 1;
		}
	}
	if (nsep && breaks > (SIZE_MAX - n - nfirst - nlast) / nsep)
		return luaL_error(L, "pbiport.join_lines: result too long");
	luaL_Buffer b;
	char *out = luaL_buffinitsize(L, &b, nfirst + n - breaks + breaks * nsep + nlast);
	memcpy(out, first, nfirst);
	out += nfirst;
	for (const char *p = s, *end = s + n; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		memcpy(out, p, len);
		out += len;
		if (!nl)
			break;
		memcpy(out, sep, nsep);
		out += nsep;
		p = nl + 1;
	}
	memcpy(out, last, nlast);
	luaL_pushresultsize(&b, nfirst + n - breaks + breaks * nsep + nlast);
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

/* --- C functions that could run long without the hook firing ----------------------
 *
 * The count hook never fires inside a library function, and the watchdog can stop one only
 * when it calls back into Lua. Each function below loops in C on an argument; Lua 5.4's
 * other library functions are O(1), bounded by the stack or by the memory cap (see
 * lua_sandbox.h). */

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

/* Counts the items of a Lua pattern that may cost a pass over the subject at each step:
 * quantifiers (* + - ?) with more pattern after them, which the backtracking matcher
 * retries at every length, %bxy (scans to its closing character) and back references
 * %1-%9 (compare a capture). */
static int backtracking_factors(const char *p, size_t len, bool *anchored)
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
			q++;
			continue;
		}
		if (p[i] == '%' && i + 1 < len && p[i + 1] >= '1' && p[i + 1] <= '9') {
			i += 2;
			q++;
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

enum { GUARD_FIND = 1, GUARD_MATCH, GUARD_GMATCH, GUARD_GSUB, GUARD_OTHER };

/* True when p has none of the pattern's special characters (lstrlib.c nospecials). */
static bool no_specials(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] && strchr("^$*+?.([%-", p[i]))
			return false;
	return true;
}

/* string.find of plain text (the 4th argument, or a pattern without special characters):
 * Lua's lmemfind compares the whole needle wherever its first byte occurs, up to n x m
 * steps; glibc's memmem is linear. Same results as str_find_aux. */
static int plain_find(lua_State *L, const char *s, size_t n, const char *p, size_t plen)
{
	lua_Integer pos = luaL_optinteger(L, 3, 1);
	size_t init = pos > 0 ? (size_t)pos : pos == 0 || pos < -(lua_Integer)n ? 1 : n + (size_t)pos + 1;
	const char *hit = init - 1 <= n ? memmem(s + init - 1, n - (init - 1), p, plen) : NULL;
	if (!hit) {
		luaL_pushfail(L);
		return 1;
	}
	lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
	lua_pushinteger(L, (lua_Integer)(hit - s) + (lua_Integer)plen);
	return 2;
}

/* string.find/match/gmatch/gsub: Lua's matcher backtracks: an n-byte subject costs up to
 * plen x n^q steps for q factors (backtracking_factors), one more factor of n when
 * unanchored (gmatch takes '^' literally). Refuse what could pass PB_LUA_PATTERN_STEPS. */
static int sb_pattern_guard(lua_State *L)
{
	size_t n, plen;
	const char *s = luaL_checklstring(L, 1, &n);
	const char *p = luaL_checklstring(L, 2, &plen);
	int kind = (int)lua_tointeger(L, lua_upvalueindex(2));
	if (kind == GUARD_FIND && (lua_toboolean(L, 4) || no_specials(p, plen)))
		return plain_find(L, s, n, p, plen);
	bool anchored;
	int q = backtracking_factors(p, plen, &anchored);
	if (kind == GUARD_GMATCH)
		anchored = false;
	double steps = plen ? (double)plen : 1;
	for (int k = 0; k < q + !anchored && steps <= PB_LUA_PATTERN_STEPS; k++)
		steps *= (double)n + 1;
	if (steps > PB_LUA_PATTERN_STEPS)
		return luaL_error(L, "pattern too complex for a %d-byte subject "
				  "(simplify the pattern or split the text)", (int)(n < INT32_MAX ? n : INT32_MAX));
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

#define SB_SORT_COMPARE_BYTES 1e9   /* string bytes table.sort may compare in C */

/* table.sort: with no comparison function the sort runs in C (each comparison a strcmp);
 * with one, each comparison is a call the watchdog can stop. Its length must be the raw
 * one: a __len metamethod could answer the guard and the sort differently. */
static int sb_sort_guard(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (luaL_getmetafield(L, 1, "__len") != LUA_TNIL)
		return luaL_error(L, "table.sort: a table with a __len metamethod cannot be sorted in a template");
	size_t n = lua_rawlen(L, 1);
	if (n > PB_LUA_SORT_MAX)
		return luaL_error(L, "table.sort: more than %d elements", PB_LUA_SORT_MAX);
	if (lua_isnoneornil(L, 2) && n > 1) {
		/* about 2 n log2 n comparisons, each up to the longest string */
		size_t longest = 16;
		for (size_t i = 1; i <= n; i++) {
			if (lua_geti(L, 1, (lua_Integer)i) == LUA_TSTRING && lua_rawlen(L, -1) > longest)
				longest = lua_rawlen(L, -1);
			lua_pop(L, 1);
		}
		double log2n = 1;
		for (size_t k = n; k > 1; k >>= 1)
			log2n++;
		if (2.0 * (double)n * log2n * (double)longest > SB_SORT_COMPARE_BYTES)
			return luaL_error(L, "table.sort: %d texts of up to %d bytes are too much to compare "
					  "without a comparison function (pass one)", (int)n,
					  (int)(longest < INT32_MAX ? longest : INT32_MAX));
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 0);
	return 0;
}

/* table.move/insert/remove loop over an index range taken from their arguments or from
 * __len, and with nil values (or a string as source) they touch no memory: move({}, 1,
 * 2^40, 1, {}) would spin for hours. These are ltablib.c's functions (Lua 5.4, MIT
 * licence), with the same checks and messages, whose loops report their work through
 * sb_work (instruction budget and watchdog). */
enum { TAB_R = 1, TAB_W = 2, TAB_L = 4, TAB_RW = TAB_R | TAB_W };

static bool has_metafield(lua_State *L, const char *key, int n)
{
	lua_pushstring(L, key);
	return lua_rawget(L, -n) != LUA_TNIL;
}

/* arg is a table, or has a metatable with the metamethods `what` needs (ltablib checktab). */
static void check_table_like(lua_State *L, int arg, int what)
{
	if (lua_type(L, arg) == LUA_TTABLE)
		return;
	int n = 1;
	if (lua_getmetatable(L, arg) && (!(what & TAB_R) || has_metafield(L, "__index", ++n)) &&
	    (!(what & TAB_W) || has_metafield(L, "__newindex", ++n)) &&
	    (!(what & TAB_L) || has_metafield(L, "__len", ++n)))
		lua_pop(L, n);
	else
		luaL_checktype(L, arg, LUA_TTABLE);
}

static lua_Integer table_len(lua_State *L, int arg, int what)
{
	check_table_like(L, arg, what | TAB_L);
	return luaL_len(L, arg);
}

/* t2[j] = t1[i]; every SB_WORK_STEP elements a work report. */
static void move_one(lua_State *L, lua_sandbox *sb, int t1, lua_Integer i, int t2, lua_Integer j,
		     unsigned *k)
{
	lua_geti(L, t1, i);
	lua_seti(L, t2, j);
	if (++*k == SB_WORK_STEP) {
		*k = 0;
		sb_work(L, sb, SB_WORK_STEP);
	}
}

static int sb_table_insert(lua_State *L)
{
	lua_sandbox *sb = sb_of(L);
	lua_Integer pos, e = luaL_intop(+, table_len(L, 1, TAB_RW), 1);   /* first empty element */
	unsigned k = 0;
	switch (lua_gettop(L)) {
	case 2:
		pos = e;
		break;
	case 3:
		pos = luaL_checkinteger(L, 2);
		luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
		for (lua_Integer i = e; i > pos; i--)
			move_one(L, sb, 1, i - 1, 1, i, &k);
		break;
	default:
		return luaL_error(L, "wrong number of arguments to 'insert'");
	}
	lua_seti(L, 1, pos);
	return 0;
}

static int sb_table_remove(lua_State *L)
{
	lua_sandbox *sb = sb_of(L);
	lua_Integer size = table_len(L, 1, TAB_RW);
	lua_Integer pos = luaL_optinteger(L, 2, size);
	unsigned k = 0;
	if (pos != size)
		luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2, "position out of bounds");
	lua_geti(L, 1, pos);   /* the result */
	for (; pos < size; pos++)
		move_one(L, sb, 1, pos + 1, 1, pos, &k);
	lua_pushnil(L);
	lua_seti(L, 1, pos);
	return 1;
}

static int sb_table_move(lua_State *L)
{
	lua_sandbox *sb = sb_of(L);
	lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3), t = luaL_checkinteger(L, 4);
	int tt = !lua_isnoneornil(L, 5) ? 5 : 1;   /* destination table */
	unsigned k = 0;
	check_table_like(L, 1, TAB_R);
	check_table_like(L, tt, TAB_W);
	if (e >= f) {
		luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
		lua_Integer n = e - f + 1;
		luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
		if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
			for (lua_Integer i = 0; i < n; i++)
				move_one(L, sb, 1, f + i, tt, t + i, &k);
		} else {
			for (lua_Integer i = n - 1; i >= 0; i--)
				move_one(L, sb, 1, f + i, tt, t + i, &k);
		}
	}
	lua_pushvalue(L, tt);
	return 1;
}

/* Replaces lib[name] (table on top of the stack) with a guard holding the original. */
static void guard(lua_State *L, const char *name, lua_CFunction f, int kind)
{
	lua_getfield(L, -1, name);
	lua_pushinteger(L, kind);
	lua_pushcclosure(L, f, 2);
	lua_setfield(L, -2, name);
}

/* --- compiled templates, kept per process -------------------------------------------- */

/* A module is compiled once per process, not on every render (lighttpd's mod_magnet_cache.c
 * keeps compiled scripts the same way): the bytecode of the compiled chunk (lua_dump, line
 * information kept, so messages still say file:line) is cached under the file's path and
 * identity (device, inode, size, modification and change times; an edited, replaced or
 * touched file has another), and each render loads it, mode "b", into its own fresh state,
 * where it gets a fresh environment as a compiled text would. Only bytecode dumped here from
 * a text chunk is ever loaded: a template file is always read as text, so a file can never
 * supply bytecode. A file changed less than PB_FILE_RACY_S before it was read is compiled
 * afresh each time instead of cached: two writes of the same size within one tick of the file
 * system's clock would otherwise look alike (git's "racy" files). At most PB_LUA_CACHE_CHUNKS
 * files and PB_LUA_CACHE_BYTES of bytecode; the least recently used go first. Shared by the
 * threads of the process (a mutex), kept until the process ends. */

typedef struct cached_chunk {
	char *path;                  /* the file, as found on the search path */
	char *chunkname;             /* "@label/name.lua" it was compiled under */
	pb_file_id id;
	char *code;                  /* lua_dump output */
	size_t len;
	uint64_t used;               /* chunk_cache.clock at the last use */
} cached_chunk;

static struct {
	pthread_mutex_t lock;
	cached_chunk *v[PB_LUA_CACHE_CHUNKS];
	size_t n, bytes;
	uint64_t clock;
	unsigned long hits, misses;  /* loads from the cache; compiles of files it could keep */
} chunk_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Drops entry i (lock held). */
static void cache_drop(size_t i)
{
	cached_chunk *e = chunk_cache.v[i];
	chunk_cache.bytes -= e->len;
	free(e->path);
	free(e->chunkname);
	free(e->code);
	free(e);
	chunk_cache.v[i] = chunk_cache.v[--chunk_cache.n];
}

/* Index of path's entry, or -1 (lock held). */
static long cache_find(const char *path)
{
	for (size_t i = 0; i < chunk_cache.n; i++)
		if (!strcmp(chunk_cache.v[i]->path, path))
			return (long)i;
	return -1;
}

/* Pushes the cached compiled chunk of path when st is still the file it was compiled from:
 * LUA_OK, or lua_load's status with its message pushed (out of memory: the sandbox's cap);
 * -1 when there is none (nothing pushed). */
static int cache_load(lua_State *L, const char *path, const struct stat *st, const char *chunkname)
{
	int status = -1;
	pthread_mutex_lock(&chunk_cache.lock);
	long i = cache_find(path);
	if (i >= 0 && (!pb_file_id_same(&chunk_cache.v[i]->id, st) || strcmp(chunk_cache.v[i]->chunkname, chunkname))) {
		cache_drop((size_t)i);   /* the file changed: compiled again by the caller */
		i = -1;
	}
	if (i >= 0) {
		cached_chunk *e = chunk_cache.v[i];
		/* lua_load runs protected: it returns, so the lock is always released */
		status = luaL_loadbufferx(L, e->code, e->len, chunkname, "b");
		e->used = ++chunk_cache.clock;
		chunk_cache.hits++;
	}
	pthread_mutex_unlock(&chunk_cache.lock);
	return status;
}

struct dump_buf {
	char *p;
	size_t len, cap;
};

static int dump_write(lua_State *L, const void *data, size_t n, void *ud)
{
	(void)L;
	struct dump_buf *b = ud;
	if (n > PB_LUA_CACHE_BYTES - b->len)
		return 1;   /* too big to keep: lua_dump stops */
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return 1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

/* Keeps the compiled chunk on top of the stack for path, read when the file was st. A file
 * too fresh to tell apart from its next version, a chunk too big, or no memory: not kept. */
static void cache_store(lua_State *L, const char *path, const struct stat *st, const char *chunkname)
{
	if (pb_file_too_fresh(st))
		return;
	struct dump_buf b = { 0 };
	cached_chunk *e = NULL;
	if (lua_dump(L, dump_write, &b, 0) || !b.len)
		goto out;
	if (!(e = calloc(1, sizeof *e)) || !(e->path = xstrdup(path)) || !(e->chunkname = xstrdup(chunkname)))
		goto out;
	pb_file_id_of(st, &e->id);
	e->code = b.p;
	e->len = b.len;
	b.p = NULL;
	pthread_mutex_lock(&chunk_cache.lock);
	long i = cache_find(path);
	if (i >= 0)
		cache_drop((size_t)i);
	while (chunk_cache.n && (chunk_cache.n == PB_LUA_CACHE_CHUNKS || chunk_cache.bytes + e->len > PB_LUA_CACHE_BYTES)) {
		size_t oldest = 0;
		for (size_t k = 1; k < chunk_cache.n; k++)
			if (chunk_cache.v[k]->used < chunk_cache.v[oldest]->used)
				oldest = k;
		cache_drop(oldest);
	}
	e->used = ++chunk_cache.clock;
	chunk_cache.v[chunk_cache.n++] = e;
	chunk_cache.bytes += e->len;
	chunk_cache.misses++;
	pthread_mutex_unlock(&chunk_cache.lock);
	e = NULL;
out:
	if (e) {
		free(e->path);
		free(e->chunkname);
		free(e);
	}
	free(b.p);
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
		bool here = stat(path, &st) == 0 && S_ISREG(st.st_mode);
		if (sb->file_seen)
			sb->file_seen(sb->file_seen_ctx, path, here ? &st : NULL);
		if (here) {
			found = i;
			break;
		}
	}
	if (found == sb->ndirs)
		return luaL_error(L, "module '%s' not found", name);
	if ((uint64_t)st.st_size > PB_LUA_MAX_SOURCE_BYTES)
		return luaL_error(L, "module '%s': file larger than %d bytes", name,
				  (int)PB_LUA_MAX_SOURCE_BYTES);
	const char *chunk = lua_pushfstring(L, "@%s/%s.lua", sb->labels[found], rel);   /* 3 */
	if (sb->entry_module && !sb->entry[0] && !strcmp(name, sb->entry_module) &&
	    xsnprintf(sb->entry, sizeof sb->entry, "%s", chunk + 1))
		sb->entry[0] = '\0';
	int status = cache_load(L, path, &st, chunk);                                     /* 4 */
	if (status < 0) {
		/* The text lives in a userdata so a Lua error cannot leak it (made before the file is
		 * opened: nothing raises while it is); the identity kept with the compiled chunk is
		 * that of the file read. */
		size_t size = (size_t)st.st_size;
		char *buf = lua_newuserdatauv(L, size + 1, 0);
		FILE *f = fopen(path, "rb");
		if (!f)
			return luaL_error(L, "module '%s': %s", name, strerror(errno));
		bool same = !fstat(fileno(f), &st) && (size_t)st.st_size == size;
		size_t got = same ? fread(buf, 1, size, f) : 0;
		fclose(f);
		if (!same)
			return luaL_error(L, "module '%s': the file changed while it was read", name);
		if (got != size)
			return luaL_error(L, "module '%s': short read", name);
		status = luaL_loadbufferx(L, buf, size, chunk, "t");                    /* 5 */
		if (status == LUA_OK) {
			cache_store(L, path, &st, chunk);
			lua_remove(L, -2);   /* the text */
		}
	}
	if (status != LUA_OK) {
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

/* pbiport's copies of the table functions that loop on an index range */
static const luaL_Reg table_copies[] = {
	{ "insert", sb_table_insert }, { "remove", sb_table_remove }, { "move", sb_table_move }, { NULL, NULL },
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
	guard(L, "match", sb_pattern_guard, GUARD_MATCH);
	guard(L, "gmatch", sb_pattern_guard, GUARD_GMATCH);
	guard(L, "gsub", sb_pattern_guard, GUARD_GSUB);
	guard(L, "rep", sb_rep_guard, GUARD_OTHER);
	lua_pop(L, 1);
	lua_getfield(L, -1, LUA_TABLIBNAME);
	guard(L, "sort", sb_sort_guard, GUARD_OTHER);
	luaL_setfuncs(L, table_copies, 0);
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
	lua_pushcfunction(L, sb_find_control);
	lua_setfield(L, -2, "find_control");
	lua_pushcfunction(L, sb_join_lines);
	lua_setfield(L, -2, "join_lines");
	if (sb_of(L)->api)
		luaL_setfuncs(L, sb_of(L)->api, 0);
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

long sandbox_time_used_ms(const lua_sandbox *sb)
{
	return sb ? (long)(sb->total_used_ns / 1000000) : 0;
}

/* --- running ----------------------------------------------------------------------- */

static int check_usable(lua_sandbox *sb, char *err)
{
	if (sb->dead)
		return pb_err(err, PB_EINTERNAL, "template sandbox: unusable after an earlier error");
	if (!lua_checkstack(sb->L, 8))
		return pb_err(err, PB_ENOMEM, "template sandbox: Lua stack exhausted");
	sb->where[0] = '\0';
	return 0;
}

/* Calls the function at stack index base+1 with nargs arguments above it through the
 * message handler; leaves nresults results at base+1... */
static int protected_call(lua_sandbox *sb, int base, int nargs, int nresults, char *err)
{
	lua_State *L = sb->L;
	int rc = watchdog_arm(sb, err);
	if (rc) {
		lua_settop(L, base);
		return rc;
	}
	lua_pushcfunction(L, sb_msgh);
	lua_insert(L, base + 1);
	int status = lua_pcall(L, nargs, nresults, base + 1);
	watchdog_disarm(sb);
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
	sb->total_ms = o && o->total_time_limit_ms > 0 ? o->total_time_limit_ms : 0;
	sb->instr_max = o && o->instr_max > 0 ? o->instr_max : 0;
	sb->api = o ? o->api : NULL;
	sb->file_seen = o ? o->file_seen : NULL;
	sb->file_seen_ctx = o ? o->file_seen_ctx : NULL;
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
	if ((rc = watchdog_new(sb, err)))
		goto out;
	sb->L = lua_newstate(sb_alloc, sb);
	if (!sb->L) {
		rc = pb_err(err, PB_ENOMEM, "template sandbox: cannot create a Lua state");
		goto out;
	}
	*(lua_sandbox **)lua_getextraspace(sb->L) = sb;
	normal_hook(sb);
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
	if (sb->have_timer)
		timer_delete(sb->timer);
	free(sb);
}

lua_State *sandbox_lua(lua_sandbox *sb)
{
	return sb->L;
}

/* ---- speed calibration: the default deadline grows on a machine, or a build (sanitizers,
 * valgrind), that runs Lua slower than the one the limits were set on. A fixed piece of the
 * work templates do (string building, format, table appends and concat), timed on the
 * calling thread's CPU clock, best of two. */

static const char calibration_chunk[] =
	"local t = {}\n"
	"for i = 1, 500 do\n"
	"  local name = 'column_' .. i\n"
	"  t[#t + 1] = string.format('\\tcolumn %s\\n\\t\\tdataType: %s\\n', name, i % 3 == 0 and 'int64' or 'string')\n"
	"end\n"
	"return #table.concat(t)\n";

static pthread_once_t calibration_once = PTHREAD_ONCE_INIT;
static int calibration_pct = 100;   /* kept for the process: the machine does not change */

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void calibrate(void)
{
	lua_State *L = luaL_newstate();   /* private, runs only the constant chunk above */
	if (!L)
		return;
	luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
	luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
	luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
	lua_settop(L, 0);
	int64_t best = INT64_MAX;
	if (luaL_loadbufferx(L, calibration_chunk, sizeof calibration_chunk - 1, "=calibration", "t") == LUA_OK) {
		for (int run = 0; run < 2; run++) {
			lua_pushvalue(L, 1);
			int64_t t0 = thread_cpu_ns();
			if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
				best = INT64_MAX;
				break;
			}
			int64_t took = thread_cpu_ns() - t0;
			lua_pop(L, 1);
			if (took < best)
				best = took;
		}
	}
	lua_close(L);
	if (best == INT64_MAX)
		return;
	int64_t pct = best * 100 / (PB_LUA_CALIBRATION_REF_US * 1000);
	calibration_pct = (int)(pct < 100 ? 100 : pct > PB_LUA_TIME_SCALE_MAX_PCT ? PB_LUA_TIME_SCALE_MAX_PCT : pct);
}

int sandbox_time_scale_pct(void)
{
	pthread_once(&calibration_once, calibrate);
	return calibration_pct;
}

int sandbox_scaled_ms(int ms, int pct, int cap_ms)
{
	long long scaled = (long long)ms * (pct < 100 ? 100 : pct) / 100;
	if (scaled > cap_ms)
		scaled = cap_ms;
	return (int)(scaled < ms ? ms : scaled);
}
