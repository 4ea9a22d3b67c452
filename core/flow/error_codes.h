/* THE table of the user-facing error codes pbiport answers with ({"error":{"code"}} of a
 * request, error.code of a job), each with its result code (which decides the HTTP status:
 * runtime/fcgi.c pb_rc_status), what it means and what to do. docs/errors.md is printed from
 * it (`pbiport error-codes`), and a test checks that every code the source uses is in it and
 * that the page is current. Rows are grouped by the area that answers them. */
#ifndef PBIPORT_ERROR_CODES_H
#define PBIPORT_ERROR_CODES_H

#include <stdio.h>

typedef struct pb_error_code {
	const char *code;
	int rc;                 /* pb_rc; 0 for codes only jobs end with (no HTTP status) */
	int http;               /* the status when it is not rc's: the runtime's own answers (401,
	                           405, 411, 413, 415, ...); 0 otherwise */
	const char *area;       /* the heading it is listed under */
	const char *meaning;    /* what happened, and what to do about it */
} pb_error_code;

extern const pb_error_code pb_error_codes[];
extern const size_t pb_error_codes_count;

/* The row of code, or NULL. */
const pb_error_code *pb_error_code_find(const char *code);
/* Writes the tables of docs/errors.md (one per area) to out. */
void pb_error_codes_markdown(FILE *out);

#endif
