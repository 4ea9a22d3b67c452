#include "runtime/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/util.h"

int64_t pb_epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pb_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pb_time_format(int64_t epoch_ms, char out[PB_TIME_BUF])
{
	time_t sec = (time_t)(epoch_ms / 1000);
	int ms = (int)(epoch_ms % 1000);
	if (ms < 0) {
		ms += 1000;
		sec -= 1;
	}
	struct tm tm;
	gmtime_r(&sec, &tm);
	size_t n = strftime(out, PB_TIME_BUF, "%Y-%m-%dT%H:%M:%S", &tm);
	if (xsnprintf(out + n, PB_TIME_BUF - n, ".%03dZ", ms))
		out[n] = '\0';
}

void pb_time_in(int64_t delta_ms, char out[PB_TIME_BUF])
{
	pb_time_format(pb_epoch_ms() + delta_ms, out);
}

int pb_time_parse(const char *text, int64_t *epoch_ms)
{
	int y, mo, d, h, mi, s, used = 0;
	if (!text || sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &used) != 6)
		return PB_EINVAL;
	const char *p = text + used;
	int ms = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		for (; digits > 0 && digits < 3; digits++)
			ms *= 10;
	}
	if (strcmp(p, "Z") && strcmp(p, "+00:00"))
		return PB_EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		return PB_EINVAL;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };
	time_t t = timegm(&tm);
	*epoch_ms = (int64_t)t * 1000 + ms;
	return PB_OK;
}

void pb_sleep_interruptible(int64_t ms, volatile int *stop)
{
	int64_t until = pb_mono_ms() + ms;
	for (;;) {
		int64_t left = until - pb_mono_ms();
		if (left <= 0 || (stop && *stop))
			return;
		/* sleep in short slices so a stop request is seen promptly */
		if (left > 200)
			left = 200;
		struct timespec ts = { .tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000 };
		nanosleep(&ts, NULL);
	}
}

void pb_sleep_ms(int64_t ms)
{
	pb_sleep_interruptible(ms, NULL);
}

int pb_duration_parse(const char *text, int64_t *secs, char *err)
{
	char *end;
	if (!text || !isdigit((unsigned char)*text))
		return pb_err(err, PB_EINVAL, "expected a duration like 43200, 720m or 12h");
	errno = 0;
	long long v = strtoll(text, &end, 10);
	int64_t unit = 1;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		unit = 60, end++;
	else if (*end == 'h')
		unit = 3600, end++;
	else if (*end == 'd')
		unit = 86400, end++;
	if (errno || *end || v > 10LL * 366 * 86400)
		return pb_err(err, PB_EINVAL, "expected a duration like 43200, 720m or 12h, got '%.40s'", text);
	*secs = (int64_t)v * unit;
	return 0;
}
