/* Power BI object names (tables, columns, measures): how long they may be, when two are the
 * same name to Power BI, and how to echo one in a message without losing the message.
 *
 * Length: Power BI semantic models run the Analysis Services tabular engine, whose "Length of
 * object names" is 512 characters ("Maximum capacity specifications (Analysis Services)",
 * Tabular (DeploymentMode=2), learn.microsoft.com/analysis-services/multidimensional-models/
 * olap-physical/maximum-capacity-specifications-analysis-services). Characters are .NET
 * string characters, i.e. UTF-16 code units: a character outside the Basic Multilingual
 * Plane (most emoji) counts 2.
 *
 * Sameness: Power BI compares object names without case, and canonically equivalent texts
 * (a composed "é" and "e" + combining acute) are the same name. The key of a name is its
 * case folding in Unicode normalization form C (utf8proc: decompose, case-fold, compose);
 * two names are the same name when their keys are equal. */
#ifndef PBIPORT_NAMES_H
#define PBIPORT_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define PB_PBI_NAME_MAX_CHARS 512
/* The most UTF-8 bytes a name within the limit can take: 3 per UTF-16 unit (a 4-byte
 * character is 2 units). */
#define PB_PBI_NAME_MAX_BYTES (3 * PB_PBI_NAME_MAX_CHARS)
/* Bytes of a name kept when it is echoed in a message (see pbname_shown). */
#define PB_PBI_NAME_SHOWN_BYTES 60

/* UTF-16 code units of s[0..len) (valid UTF-8): the length Power BI counts. */
size_t pbname_length(const char *s, size_t len);

/* True when s[0..len) is plain ASCII (its key is then its ASCII lower case). */
bool pbname_is_ascii(const char *s, size_t len);

/* The comparison key of s[0..len) (valid UTF-8): new, NUL-terminated, caller frees; its
 * length in *keylen (may be NULL). NULL on no memory or text utf8proc refuses. */
char *pbname_key(const char *s, size_t len, size_t *keylen);

/* The same key written into caller memory (for callers whose allocations must go through
 * their own allocator): pbname_key_room() gives the room needed, in 4-byte units (negative
 * when utf8proc refuses the text); pbname_key_fill() writes the key (UTF-8, not
 * NUL-terminated) into buf, which holds that many 4-byte units suitably aligned for
 * int32_t, and returns its length in bytes (negative on error). */
long pbname_key_room(const char *s, size_t len);
long pbname_key_fill(const char *s, size_t len, void *buf, long room);

/* Compares two keys, or ASCII names, which are their own keys once lower-cased: ASCII
 * letters are compared without case, other bytes as they are. strcmp-style result. */
int pbname_keycmp(const char *a, const char *b);

/* s as shown in a message: whole when it has at most PB_PBI_NAME_SHOWN_BYTES bytes, else its
 * first characters within that many bytes followed by "...". Control characters are shown
 * as they are (the message writer cleans them). Returns buf, which holds at least
 * PB_PBI_NAME_SHOWN_BYTES + 4 bytes. */
#define PB_PBI_NAME_SHOWN_BUF (PB_PBI_NAME_SHOWN_BYTES + 4)
const char *pbname_shown(const char *s, char buf[PB_PBI_NAME_SHOWN_BUF]);
/* The same for s[0..len) (valid UTF-8, need not be NUL-terminated). */
const char *pbname_shown_n(const char *s, size_t len, char buf[PB_PBI_NAME_SHOWN_BUF]);

#endif
