/* Turning Microsoft error replies into one clear line naming the cause a user can fix.
 *
 * Three envelopes exist: Entra {error, error_description, error_codes[]}, Fabric
 * {errorCode, message, moreDetails[]}, Power BI {"error":{"code","message","pbi.error"}} (and
 * a bare {"message"} on 429). Known codes get a plain-language cause and a fix; unknown
 * ones keep Microsoft's code and the first line of its message. */
#ifndef PBIPORT_MSAPI_ERRORS_H
#define PBIPORT_MSAPI_ERRORS_H

#include <jansson.h>
#include <stddef.h>

#include "msapi/msapi.h"

/* Extracts the error code (Entra: "AADSTS<n>" when error_codes is given, else `error`)
 * and the first line of the message into caller buffers (always NUL-terminated).
 * body may be NULL (then raw, the undecoded body, is searched as text). */
void msapi_error_parse(int svc, const json_t *body, const char *raw, char *code, size_t codesz,
		       char *msg, size_t msgsz);

/* The pb_rc an HTTP error status maps to: 404 -> PB_ENOTFOUND, 429 -> PB_ELIMIT,
 * 5xx -> PB_EIO, other 4xx -> PB_EINVAL. */
int msapi_status_rc(long status);

/* Writes "<Service> refused to <what>: <cause> (<code>, HTTP <status>); <fix>" (or, for
 * Entra, "Entra refused <subject> (AADSTS<n>, <cause>): <fix>") into err and returns the
 * status's pb_rc. ms_message may be NULL. */
int msapi_error_message(int svc, long status, const char *code, const char *ms_message,
			const char *what, char *err);

/* The kind of failure an error reply of svc is (msapi.h msapi_failure). status 0: no answer. */
msapi_failure msapi_failure_of(int svc, long status, const char *code);

#endif
