/* One failure value for requests and jobs: the pbiport result code (a pb_rc, which alone
 * decides the HTTP status: runtime/fcgi.c pb_rc_status), a stable user-facing code that
 * clients and scripts branch on (the table in docs/errors.md) and one message line a person
 * can act on. Domain functions that can fail in more than one way a caller should tell apart
 * fill a pb_failure; lower layers keep writing their message into a `char *err` buffer, which
 * is f->message. */
#ifndef PBIPORT_FAILURE_H
#define PBIPORT_FAILURE_H

#include <stdarg.h>

#include "runtime/util.h"

#define PB_CODE_MAX 48

typedef struct pb_failure {
	int rc;                       /* PB_OK while nothing failed */
	char code[PB_CODE_MAX];       /* "" until set: then the default code of rc applies */
	char message[PB_ERR_MAX];
	long retry_after_s;           /* > 0: worth trying again after this many seconds */
} pb_failure;

/* Sets rc, code (NULL: the default for rc) and the message, formatted aside first so an
 * argument may be f->message itself. Returns rc, for `return pb_fail(f, PB_EINVAL, ...)`. */
int pb_fail(pb_failure *f, int rc, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int pb_failv(pb_failure *f, int rc, const char *code, const char *fmt, va_list ap);
/* Sets rc and code around the message a lower layer already wrote into f->message. */
int pb_fail_as(pb_failure *f, int rc, const char *code);
void pb_failure_clear(pb_failure *f);
/* Puts "<formatted>: " before f's message, keeping rc and code (a step's context around a
 * failure a lower step described). Returns f->rc. */
int pb_fail_prefix(pb_failure *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The code a failure of rc carries when nobody named a more precise one: "bad_request",
 * "not_found", "conflict", "forbidden", "unavailable", "powerbi_rejected", "internal". */
const char *pb_rc_code(int rc);
/* f's code, or the default for its rc. */
const char *pb_failure_code(const pb_failure *f);

#endif
