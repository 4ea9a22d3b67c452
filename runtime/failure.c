#include "runtime/failure.h"

#include <stdio.h>
#include <string.h>

int pb_failv(pb_failure *f, int rc, const char *code, const char *fmt, va_list ap)
{
	char msg[PB_ERR_MAX];
	memcpy(f->message, pb_vformat(msg, sizeof msg, fmt, ap), sizeof msg);
	return pb_fail_as(f, rc, code);
}

int pb_fail(pb_failure *f, int rc, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pb_failv(f, rc, code, fmt, ap);
	va_end(ap);
	return rc;
}

int pb_fail_as(pb_failure *f, int rc, const char *code)
{
	f->rc = rc;
	if (code == f->code)
		return rc;
	if (xsnprintf(f->code, sizeof f->code, "%s", code ? code : ""))
		f->code[0] = '\0';   /* a code longer than any in the table: the rc's default */
	return rc;
}

void pb_failure_clear(pb_failure *f)
{
	memset(f, 0, sizeof *f);
}

const char *pb_rc_code(int rc)
{
	switch (rc) {
	case PB_OK: return "ok";
	case PB_EINVAL:
	case PB_ELIMIT: return "bad_request";
	case PB_ENOTFOUND: return "not_found";
	case PB_ECONFLICT: return "conflict";
	case PB_EFORBIDDEN: return "forbidden";
	case PB_EUNAVAIL: return "unavailable";
	case PB_EUPSTREAM: return "powerbi_rejected";
	default: return "internal";
	}
}

const char *pb_failure_code(const pb_failure *f)
{
	return f->code[0] ? f->code : pb_rc_code(f->rc);
}

int pb_fail_prefix(pb_failure *f, const char *fmt, ...)
{
	char what[PB_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(what, sizeof what, fmt, ap);
	va_end(ap);
	char code[PB_CODE_MAX];
	memcpy(code, f->code, sizeof code);   /* pb_fail writes f->code: not from itself */
	return pb_fail(f, f->rc, code[0] ? code : NULL, "%s: %s", what, f->message);
}
