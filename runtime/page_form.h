/* The fields of a form a web page posted: application/x-www-form-urlencoded or
 * multipart/form-data (RFC 7578), read from a request body already in memory.
 *
 * Names are UTF-8 without control characters; a urlencoded value is %-decoded UTF-8; a
 * multipart value is the part's bytes as sent (a file may hold anything: its reader checks
 * it) with a NUL after them. At most PB_FORM_MAX_FIELDS fields; the body's own bound is the
 * route's body limit.
 *
 * Values may be secrets (a client secret typed into a settings form): page_form_clear() wipes
 * them before it frees them.
 *
 * Ownership: page_form_parse() fills a caller-owned page_form; page_form_clear() frees
 * what it holds. Fields returned by page_form_get() are borrowed until then. */
#ifndef PBIPORT_PAGE_FORM_H
#define PBIPORT_PAGE_FORM_H

#include <stdbool.h>
#include <stddef.h>

#define PB_FORM_MAX_FIELDS    64
#define PB_FORM_NAME_MAX      128    /* bytes of one field name */
#define PB_FORM_FILENAME_MAX  1024   /* bytes of one uploaded file's name */

typedef struct page_field {
	char *name;
	char *filename;   /* a file part: the name the browser sent ("" when none was chosen); else NULL */
	char *value;      /* len bytes + NUL */
	size_t len;
} page_field;

typedef struct page_form {
	page_field *v;
	size_t n;
} page_form;

/* True when content_type (a lower-case media type without parameters) is one of the two. */
bool page_form_type(const char *content_type);

/* Parses body[0..len) sent with the full Content-Type header value content_type (for the
 * multipart boundary). Fields keep their order; a name may repeat (a list of checkboxes).
 * PB_EINVAL with err naming the problem for a malformed body or too many fields. */
int page_form_parse(const char *content_type, const char *body, size_t len, page_form *out, char *err);

/* The first field named name, or NULL. */
const page_field *page_form_get(const page_form *f, const char *name);

void page_form_clear(page_form *f);

#endif
