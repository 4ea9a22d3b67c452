#include "runtime/page.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/timeutil.h"
#include "runtime/util.h"

static bool hex_id(const char *s)
{
	size_t n = strlen(s);
	if (n != PB_ID_BUF - 1)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int pb_page_parse(const char *limit_text, const char *cursor, int def, int max, pb_page *out, char *err)
{
	memset(out, 0, sizeof *out);
	out->limit = def;
	if (limit_text) {
		char *end = NULL;
		long v = strtol(limit_text, &end, 10);
		if (!*limit_text || *end || v < 1 || v > max || limit_text[0] == '+' || limit_text[0] == ' ')
			return pb_err(err, PB_EINVAL, "limit: a whole number from 1 to %d", max);
		out->limit = (int)v;
	}
	if (!cursor)
		return PB_OK;
	/* "<created_at>_<id>"; the time is rewritten in its stored form so it compares as text */
	const char *sep = strrchr(cursor, '_');
	char time_text[PB_TIME_BUF];
	int64_t ms;
	if (!sep || (size_t)(sep - cursor) >= sizeof time_text || !hex_id(sep + 1))
		return pb_err(err, PB_EINVAL, "cursor: not a next_cursor this server gave");
	memcpy(time_text, cursor, (size_t)(sep - cursor));
	time_text[sep - cursor] = '\0';
	if (pb_time_parse(time_text, &ms))
		return pb_err(err, PB_EINVAL, "cursor: not a next_cursor this server gave");
	pb_time_format(ms, out->at);
	memcpy(out->id, sep + 1, PB_ID_BUF);
	out->after = true;
	return PB_OK;
}

int pb_page_cursor(const char *at, const char *id, char out[PB_PAGE_CURSOR_BUF], char *err)
{
	if (xsnprintf(out, PB_PAGE_CURSOR_BUF, "%s_%s", at, id)) {
		out[0] = '\0';
		return pb_err(err, PB_EINTERNAL, "row %.40s: its cursor does not fit", id);
	}
	return PB_OK;
}
