#include "core/lang/cron.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/util.h"

static const struct { const char *name, *expr; } presets[] = {
	{ "@daily", "0 0 * * *" },
	{ "@twice_daily", "0 0,12 * * *" },
	{ "@weekly", "0 0 * * 0" },
	{ "@monthly", "0 0 1 * *" },
};

static const struct { const char *name; int lo, hi; } fields[5] = {
	{ "minute", 0, 59 }, { "hour", 0, 23 }, { "day of month", 1, 31 }, { "month", 1, 12 },
	{ "day of week", 0, 7 },
};

/* Reads a decimal number at *p (advancing it); -1 when there is none or it is huge. */
static int read_num(const char **p)
{
	int v = 0, digits = 0;
	while (isdigit((unsigned char)**p) && digits < 4) {
		v = v * 10 + (**p - '0');
		(*p)++;
		digits++;
	}
	return digits && !isdigit((unsigned char)**p) ? v : -1;
}

/* One field (text[0..len)) into a bit set. *any: the field was a plain "*". */
static int parse_field(const char *text, size_t len, int f, uint64_t *bits, bool *any, char *err)
{
	char buf[PB_CRON_MAX_TEXT];
	int lo = fields[f].lo, hi = fields[f].hi;
	if (len >= sizeof buf)
		return pb_err(err, PB_EINVAL, "schedule: %s field is too long", fields[f].name);
	memcpy(buf, text, len);
	buf[len] = '\0';
	*bits = 0;
	*any = !strcmp(buf, "*");
	for (const char *p = buf; *p;) {
		int a, b, step = 1;
		if (*p == '*') {
			a = lo;
			b = hi;
			p++;
		} else {
			if ((a = read_num(&p)) < 0)
				goto bad;
			b = a;
			if (*p == '-') {
				p++;
				if ((b = read_num(&p)) < 0)
					goto bad;
			}
		}
		if (*p == '/') {
			p++;
			if ((step = read_num(&p)) <= 0)
				goto bad;
		}
		if (a < lo || b > hi || a > b)
			return pb_err(err, PB_EINVAL, "schedule: %s field '%s' is outside %d-%d", fields[f].name, buf,
				      lo, hi);
		for (int v = a; v <= b; v += step)
			*bits |= 1ull << (f == 4 && v == 7 ? 0 : v);
		if (*p == ',') {
			p++;
			if (!*p)
				goto bad;
		} else if (*p) {
			goto bad;
		}
	}
	if (!*bits)
		goto bad;
	return 0;
bad:
	return pb_err(err, PB_EINVAL, "schedule: %s field '%s' is not valid cron syntax (use *, n, a-b, */n, a-b/n "
		      "or comma lists)", fields[f].name, buf);
}

int cron_parse(const char *text, pb_cron *out, char *err)
{
	const char *expr = text;
	uint64_t bits[5];
	bool any[5];
	int f = 0;
	memset(out, 0, sizeof *out);
	if (!text || !*text)
		return pb_err(err, PB_EINVAL, "schedule: empty");
	if (strlen(text) >= PB_CRON_MAX_TEXT)
		return pb_err(err, PB_EINVAL, "schedule: longer than %d characters", PB_CRON_MAX_TEXT - 1);
	if (text[0] == '@') {
		expr = NULL;
		for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
			if (!strcmp(text, presets[i].name))
				expr = presets[i].expr;
		if (!expr)
			return pb_err(err, PB_EINVAL, "schedule: unknown preset '%s' (use @daily, @twice_daily, "
				      "@weekly, @monthly or a 5-field cron expression)", text);
	}
	for (const char *p = expr;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *start = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (f == 5)
			return pb_err(err, PB_EINVAL, "schedule: more than 5 fields (minute hour day-of-month month "
				      "day-of-week, UTC)");
		int rc = parse_field(start, (size_t)(p - start), f, &bits[f], &any[f], err);
		if (rc)
			return rc;
		f++;
	}
	if (f != 5)
		return pb_err(err, PB_EINVAL, "schedule: expected 5 fields (minute hour day-of-month month "
			      "day-of-week, UTC), got %d", f);
	out->minutes = bits[0];
	out->hours = (uint32_t)bits[1];
	out->mdays = (uint32_t)bits[2];
	out->months = (uint16_t)bits[3];
	out->wdays = (uint8_t)bits[4];
	out->mday_any = any[2];
	out->wday_any = any[4];
	return 0;
}

static bool day_matches(const pb_cron *c, const struct tm *t)
{
	bool md = c->mdays >> t->tm_mday & 1, wd = c->wdays >> t->tm_wday & 1;
	if (c->mday_any || c->wday_any)
		return md && wd;
	return md || wd;
}

#define CRON_HORIZON_S (5LL * 366 * 86400)

int cron_next(const pb_cron *c, int64_t after_s, int64_t *next_s, char *err)
{
	/* start at the next whole minute */
	time_t t = (time_t)((after_s / 60 + 1) * 60);
	time_t limit = (time_t)(after_s + CRON_HORIZON_S);
	struct tm tm;
	while (t <= limit) {
		if (!gmtime_r(&t, &tm))
			return pb_err(err, PB_EINVAL, "schedule: time out of range");
		if (!(c->months >> (tm.tm_mon + 1) & 1)) {
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		} else if (!day_matches(c, &tm)) {
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		} else if (!(c->hours >> tm.tm_hour & 1)) {
			tm.tm_hour++;
			tm.tm_min = tm.tm_sec = 0;
		} else if (!(c->minutes >> tm.tm_min & 1)) {
			tm.tm_min++;
			tm.tm_sec = 0;
		} else {
			*next_s = (int64_t)t;
			return 0;
		}
		t = timegm(&tm);   /* normalizes overflowing fields (day 32 -> next month) */
	}
	return pb_err(err, PB_ENOTFOUND, "schedule: never matches within 5 years");
}

int cron_min_gap(const pb_cron *c, int64_t stop_below_s, int64_t *gap_s, char *err)
{
	/* 2024-01-01T00:00Z: a leap year, so Feb 29 and every weekday alignment are seen
	 * within the 4-year horizon; occurrences are capped to keep it cheap. */
	int64_t prev, next, best = INT64_MAX, start = 1704067200LL, end = start + 4LL * 366 * 86400;
	int rc = cron_next(c, start - 1, &prev, err);
	if (rc)
		return rc;
	for (int i = 0; i < 20000 && prev < end; i++) {
		if ((rc = cron_next(c, prev, &next, err)))
			break;
		if (next - prev < best)
			best = next - prev;
		if (best < stop_below_s)
			break;
		prev = next;
	}
	if (rc == PB_ENOTFOUND && best != INT64_MAX)
		rc = 0;
	*gap_s = best;
	return rc;
}

/* "12 h", "30 min", "45 s": the largest unit that divides evenly. */
static void human_duration(int64_t s, char *out, size_t size)
{
	if (s % 86400 == 0)
		xsnprintf(out, size, "%lld d", (long long)(s / 86400));
	else if (s % 3600 == 0)
		xsnprintf(out, size, "%lld h", (long long)(s / 3600));
	else if (s % 60 == 0)
		xsnprintf(out, size, "%lld min", (long long)(s / 60));
	else
		xsnprintf(out, size, "%lld s", (long long)s);
}

int cron_check_interval(const pb_cron *c, const char *text, int64_t min_interval_s, const char *what,
			const char *because, char *err)
{
	int64_t gap;
	char a[32], b[32];
	int rc = cron_min_gap(c, min_interval_s, &gap, err);
	if (rc)
		return rc == PB_ENOTFOUND ? PB_EINVAL : rc;
	if (gap < min_interval_s) {
		human_duration(gap, a, sizeof a);
		human_duration(min_interval_s, b, sizeof b);
		return pb_err(err, PB_EINVAL, "%s '%s' runs as often as every %s; the shortest allowed interval is %s "
			      "(PBIPORT_MIN_SCHEDULE_INTERVAL) because %s", what, text, a, b, because);
	}
	return 0;
}

int cron_validate(const char *text, int64_t min_interval_s, pb_cron *out, char *err)
{
	int rc = cron_parse(text, out, err);
	return rc ? rc
		  : cron_check_interval(out, text, min_interval_s, "schedule",
					"each run scans the tenant and Power BI allows few scans per hour; run it by "
					"hand for anything more",
					err);
}
