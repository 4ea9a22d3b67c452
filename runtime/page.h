/* Keyset pages for list endpoints (GET /api/jobs, GET /api/agreements): newest first by
 * (created_at, id), so a page stays right while rows are added in front of it.
 *
 * A client asks for `limit` rows (a default and a ceiling per list) and passes back the
 * `next_cursor` of the page before. The cursor is opaque to clients; it is the last row's
 * "<created_at>_<id>". */
#ifndef PBIPORT_PAGE_H
#define PBIPORT_PAGE_H

#include <stdbool.h>

#include "runtime/db.h"   /* PB_ID_BUF, PB_TIME_BUF */

#define PB_PAGE_CURSOR_BUF (PB_TIME_BUF + PB_ID_BUF + 1)

typedef struct pb_page {
	int limit;                 /* rows wanted */
	bool after;                /* a cursor was given: rows strictly older than (at, id) */
	char at[PB_TIME_BUF];
	char id[PB_ID_BUF];
} pb_page;

/* Reads the query values limit_text (NULL: def) and cursor (NULL: from the newest) into
 * *out. PB_EINVAL naming the parameter when limit is not a whole number from 1 to max or
 * the cursor is not one this server gave. */
int pb_page_parse(const char *limit_text, const char *cursor, int def, int max, pb_page *out, char *err);

/* The cursor that follows a row created at `at` with id `id`. */
int pb_page_cursor(const char *at, const char *id, char out[PB_PAGE_CURSOR_BUF], char *err);

#endif
