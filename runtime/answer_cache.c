/* A process's kept answers (runtime/answer_cache.h). */
#include <stdlib.h>
#include <string.h>

#include "runtime/answer_cache.h"
#include "runtime/util.h"

static struct answer {
	char scope[ANSWER_CACHE_KEY_MAX + 1], name[ANSWER_CACHE_KEY_MAX + 1];
	int64_t version;
	char *text;        /* NULL: the slot is empty */
	size_t len;
	uint64_t stored;   /* when it was kept, in puts: the oldest goes first past ANSWER_CACHE_BYTES */
} answers[ANSWER_CACHE_SLOTS];
static size_t answers_bytes;
static uint64_t stored_count;   /* answers kept since the process started */

/* The slot of scope and name (FNV-1a of both, the NUL between them counted). */
static struct answer *slot(const char *scope, const char *name)
{
	uint64_t h = 14695981039346656037u;
	for (const char *s = scope;; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211u;
		if (!*s)
			break;
	}
	for (const char *s = name; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return &answers[h % ANSWER_CACHE_SLOTS];
}

static bool holds(const struct answer *a, const char *scope, const char *name)
{
	return a->text && !strcmp(a->scope, scope) && !strcmp(a->name, name);
}

static void drop(struct answer *a)
{
	answers_bytes -= a->len;
	free(a->text);
	a->text = NULL;
	a->len = 0;
}

const char *answer_cache_get(const char *scope, const char *name, int64_t version, size_t *len)
{
	const struct answer *a = slot(scope, name);
	if (!holds(a, scope, name) || a->version != version)
		return NULL;
	*len = a->len;
	return a->text;
}

bool answer_cache_has(const char *scope, const char *name)
{
	return holds(slot(scope, name), scope, name);
}

void answer_cache_put(const char *scope, const char *name, int64_t version, const char *text, size_t len)
{
	struct answer *a = slot(scope, name);
	if (a->text)
		drop(a);
	if (version < 0 || len > ANSWER_CACHE_ANSWER_MAX || strlen(scope) > ANSWER_CACHE_KEY_MAX ||
	    strlen(name) > ANSWER_CACHE_KEY_MAX)
		return;
	while (answers_bytes + len > ANSWER_CACHE_BYTES) {
		struct answer *oldest = NULL;
		for (size_t i = 0; i < ANSWER_CACHE_SLOTS; i++)
			if (answers[i].text && (!oldest || answers[i].stored < oldest->stored))
				oldest = &answers[i];
		drop(oldest);   /* the bytes kept are those of some answer: there is one */
	}
	if (!(a->text = malloc(len + 1)))
		return;
	memcpy(a->text, text, len);
	a->text[len] = '\0';
	a->len = len;
	a->version = version;
	a->stored = ++stored_count;
	xsnprintf(a->scope, sizeof a->scope, "%s", scope);
	xsnprintf(a->name, sizeof a->name, "%s", name);
	answers_bytes += len;
}

void answer_cache_clear(void)
{
	for (size_t i = 0; i < ANSWER_CACHE_SLOTS; i++)
		if (answers[i].text)
			drop(&answers[i]);
}

size_t answer_cache_count(size_t *bytes)
{
	size_t n = 0;
	for (size_t i = 0; i < ANSWER_CACHE_SLOTS; i++)
		n += answers[i].text != NULL;
	*bytes = answers_bytes;
	return n;
}
