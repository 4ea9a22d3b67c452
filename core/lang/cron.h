/* Integration schedules: 5-field cron expressions and presets, always UTC.
 *
 * Syntax: "minute hour day-of-month month day-of-week", each field `*`, a number, a range
 * `a-b`, a step `*\/n` or `a-b/n`, or a comma list of those. Day of week 0-6 (0 = Sunday,
 * 7 also Sunday). When both day fields are restricted a day matches either (classic cron).
 * Presets: @daily (0 0 * * *), @twice_daily (0 0,12 * * *), @weekly (0 0 * * 0),
 * @monthly (0 0 1 * *). No names (JAN, MON) and no seconds field.
 *
 * UTC has no daylight-saving shifts, so every due time is plain arithmetic on the clock. */
#ifndef PBIPORT_CRON_H
#define PBIPORT_CRON_H

#include <stdbool.h>
#include <stdint.h>

typedef struct pb_cron {
	uint64_t minutes;   /* bit m: minute m matches (0-59) */
	uint32_t hours;     /* 0-23 */
	uint32_t mdays;     /* bits 1-31 */
	uint16_t months;    /* bits 1-12 */
	uint8_t wdays;      /* bits 0-6 */
	bool mday_any, wday_any;
} pb_cron;

#define PB_CRON_MAX_TEXT 128

/* Parses text (a preset or 5 fields). PB_EINVAL with a message naming the field. */
int cron_parse(const char *text, pb_cron *out, char *err);

/* The first matching minute strictly after after_s (Unix seconds), in *next_s.
 * PB_ENOTFOUND when nothing matches within 5 years (e.g. "0 0 31 2 *"). */
int cron_next(const pb_cron *c, int64_t after_s, int64_t *next_s, char *err);

/* The shortest gap between consecutive runs (seconds), looking over one leap cycle
 * of occurrences from a fixed start; stops early once a gap below stop_below_s is seen. */
int cron_min_gap(const pb_cron *c, int64_t stop_below_s, int64_t *gap_s, char *err);

/* Checks that c (parsed from text) runs no more often than min_interval_s. PB_EINVAL with a
 * message naming the schedule as the caller knows it and why the floor exists:
 * "<what> '<text>' runs as often as every 1 h; the shortest allowed interval is 12 h
 * (PBIPORT_MIN_SCHEDULE_INTERVAL) because <because>". Also PB_EINVAL when c never matches. */
int cron_check_interval(const pb_cron *c, const char *text, int64_t min_interval_s, const char *what,
			const char *because, char *err);

/* An integration schedule: parses text and checks its interval (the floor exists because each
 * run scans the tenant). */
int cron_validate(const char *text, int64_t min_interval_s, pb_cron *out, char *err);

#endif
