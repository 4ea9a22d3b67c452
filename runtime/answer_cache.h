/* Answers a FastCGI process built, kept to be given again while what they were built from has
 * not changed: each is kept under a scope (the organization whose data it shows) and a name (what
 * was asked), with the version of that scope's data it was built at, and is given only for the
 * same scope, the same name and the same version. The version is the caller's to read, in the
 * same request, from the database (an organization's catalog_version, sql/0018): a version the
 * database moved past never matches again, so a kept answer is never stale.
 *
 * Bounded: ANSWER_CACHE_SLOTS answers (direct-mapped by a hash of scope and name: a newcomer
 * replaces the answer in its slot), none larger than ANSWER_CACHE_ANSWER_MAX bytes, all together
 * at most ANSWER_CACHE_BYTES (past it, the oldest kept go first). One per process, not
 * thread-safe (a FastCGI process answers one request at a time). */
#ifndef PBIPORT_ANSWER_CACHE_H
#define PBIPORT_ANSWER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANSWER_CACHE_SLOTS 256
#define ANSWER_CACHE_ANSWER_MAX (256u * 1024)
#define ANSWER_CACHE_BYTES (4u * 1024 * 1024)
#define ANSWER_CACHE_KEY_MAX 128   /* scope and name, each at most this long; longer ones are not kept */

/* The answer kept for scope and name at version, or NULL; *len its length. Borrowed: valid until
 * the next answer_cache_put or answer_cache_clear. */
const char *answer_cache_get(const char *scope, const char *name, int64_t version, size_t *len);
/* Whether an answer is kept for scope and name, at any version. */
bool answer_cache_has(const char *scope, const char *name);
/* Keeps a copy of text (len bytes) for scope and name, built at version (>= 0). Too large, too
 * long a key or out of memory: not kept (only a later miss). */
void answer_cache_put(const char *scope, const char *name, int64_t version, const char *text, size_t len);
/* Forgets every answer. */
void answer_cache_clear(void);
/* Answers kept and their bytes (tests). */
size_t answer_cache_count(size_t *bytes);

#endif
