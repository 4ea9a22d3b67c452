/* Small helpers every module uses: checked formatting, error messages, strings, files.
 *
 * Error convention (see docs/CONTRIBUTING.md): functions return 0 on success or a
 * negative pb_rc; on failure they write one complete line into a caller-supplied
 * `char *err` of PB_ERR_MAX bytes with pb_err(). Nothing after start-up exits. */
#ifndef PBIPORT_UTIL_H
#define PBIPORT_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "runtime/limits.h"

typedef enum pb_rc {
	PB_OK = 0,
	PB_EINVAL = -1,   /* bad input from the user: 400 / exit 2 */
	PB_ENOMEM = -2,   /* allocation failed or a ceiling was passed */
	PB_EIO = -3,      /* file, database or network trouble */
	PB_ENOTFOUND = -4,
	PB_ELIMIT = -5,   /* a declared limit (size, time, memory) was hit */
	PB_EINTERNAL = -6,
	PB_ECONFLICT = -7,    /* the request clashes with the state of things: 409 */
	PB_EFORBIDDEN = -8,   /* the caller may not do this: 403 */
	PB_EUNAVAIL = -9,     /* a service pbiport needs cannot answer now; try again: 503 */
	PB_EUPSTREAM = -10,   /* Microsoft refused or answered unexpectedly, for a reason that is
	                         not the caller's input: 502, the message says what it said */
} pb_rc;

/* Writes a formatted message into err (PB_ERR_MAX bytes; truncated with "…" if
 * longer). Returns rc so callers can write `return pb_err(err, PB_EINVAL, ...)`.
 * err may be NULL. */
int pb_err(char *err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Ends s (a full buffer of size bytes whose text was cut) with "...", at a character
 * boundary so the text stays valid UTF-8. */
void mark_cut(char *s, size_t size);

/* vsnprintf of a message into buf (size bytes): always a string, "" when formatting fails, and
 * ended by mark_cut when it was cut. Returns buf. */
char *pb_vformat(char *buf, size_t size, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* snprintf that reports truncation: returns 0 when everything fit, -1 otherwise. */
int xsnprintf(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The last width decimal digits of v into out (leading zeros; no NUL): times and fractions
 * written without a format. Returns out + width. */
char *pb_put_digits(char *out, unsigned long long v, int width);

char *xstrdup(const char *s);                 /* new; NULL in -> NULL out; NULL on OOM */
char *xstrndup(const char *s, size_t n);      /* new */
bool str_ieq(const char *a, const char *b);   /* ASCII case-insensitive equality; NULL-safe */
/* True when s[0..len) is only spaces, tabs and line ends (or empty). */
bool str_blank(const char *s, size_t len);
bool utf8_valid(const char *s, size_t len);
/* True when s is a GUID in its 8-4-4-4-12 hex form (either case), as Microsoft's ids
 * (workspaces, models, connections, tenants) are; NULL-safe. Ids that go into Microsoft URLs
 * are checked with it at submission so a value like ".." never reaches a path. */
bool str_is_guid(const char *s);

/* free() of v[0..n); free_each below is how it is called. */
void free_n(void *const *v, size_t n);
/* free() of every argument: a struct's owned strings released in one statement, not one line
 * each. The arguments are pointers to memory the caller owns (not const). */
#define free_each(...) \
	free_n((void *const[]){ __VA_ARGS__ }, sizeof((void *const[]){ __VA_ARGS__ }) / sizeof(void *))

/* Reads a whole file, refusing files over max bytes. *out is new (NUL-terminated). */
int read_file(const char *path, size_t max, char **out, size_t *len, char *err);

/* What tells one version of a file from the next, for what is kept from it (compiled templates,
 * kept pages): device, inode, size, modification and change times; an edited, replaced or
 * touched file has another. A file changed less than PB_FILE_RACY_S ago may not (two writes of
 * the same size within one tick of the file system's clock look alike: git's "racy" files), so
 * nothing is kept from it (pb_file_too_fresh). */
#define PB_FILE_RACY_S 2
typedef struct pb_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
} pb_file_id;
void pb_file_id_of(const struct stat *st, pb_file_id *id);
bool pb_file_id_same(const pb_file_id *id, const struct stat *st);
bool pb_file_too_fresh(const struct stat *st);

/* Eight bytes at a time ("Bit Twiddling Hacks": a byte is zero / less than n): the high bit of
 * each byte of w that equals c / is below n (n <= 0x80). Zero means none; of several hits the
 * lowest is exact, those above it may be false (a borrow). */
#define WORD_ONES 0x0101010101010101ULL
#define WORD_HIGHS 0x8080808080808080ULL
static inline uint64_t word_bytes_eq(uint64_t w, unsigned char c)
{
	uint64_t x = w ^ (WORD_ONES * c);
	return (x - WORD_ONES) & ~x & WORD_HIGHS;
}
static inline uint64_t word_bytes_below(uint64_t w, unsigned char n)
{
	return (w - WORD_ONES * n) & ~w & WORD_HIGHS;
}
/* The bytes that end a JSON string's plain run: '"', '\\' and the control bytes below 0x20. */
static inline uint64_t word_json_special(uint64_t w)
{
	return word_bytes_eq(w, '"') | word_bytes_eq(w, '\\') | word_bytes_below(w, 0x20);
}

#include "runtime/banned.h"

#endif
