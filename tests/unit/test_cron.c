/* Schedules: cron parsing, presets, next due time in UTC (no daylight-saving shifts),
 * the minimum-interval check and its message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/lang/cron.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

static int64_t at(const char *iso)
{
	int64_t ms = 0;
	assert_int_equal(pb_time_parse(iso, &ms), 0);
	return ms / 1000;
}

static void expect_next(const char *expr, const char *after, const char *want)
{
	pb_cron c;
	char err[PB_ERR_MAX], got[PB_TIME_BUF], exp[PB_TIME_BUF];
	int64_t next = 0;
	assert_int_equal(cron_parse(expr, &c, err), 0);
	assert_int_equal(cron_next(&c, at(after), &next, err), 0);
	pb_time_format(next * 1000, got);
	pb_time_format(at(want) * 1000, exp);
	assert_string_equal(got, exp);
}

static void test_presets(void **state)
{
	(void)state;
	expect_next("@daily", "2026-11-26T03:59:00Z", "2026-11-27T00:00:00Z");
	expect_next("@twice_daily", "2026-11-26T03:59:00Z", "2026-11-26T12:00:00Z");
	expect_next("@twice_daily", "2026-11-26T12:00:00Z", "2026-11-27T00:00:00Z");
	/* 2026-11-26 is a Thursday: next Sunday is the 29th */
	expect_next("@weekly", "2026-11-26T03:59:00Z", "2026-11-29T00:00:00Z");
	expect_next("@monthly", "2026-12-15T00:00:00Z", "2027-01-01T00:00:00Z");
}

static void test_fields(void **state)
{
	(void)state;
	/* strictly after: a time exactly on a match moves to the next one */
	expect_next("30 6 * * *", "2026-11-26T06:30:00Z", "2026-11-27T06:30:00Z");
	expect_next("30 6 * * *", "2026-11-26T06:29:59Z", "2026-11-26T06:30:00Z");
	expect_next("0 */6 * * *", "2026-11-26T07:00:00Z", "2026-11-26T12:00:00Z");
	expect_next("15,45 1-3 * * *", "2026-11-26T02:46:00Z", "2026-11-26T03:15:00Z");
	expect_next("0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z");
	expect_next("0 0 31 * *", "2026-11-26T00:00:00Z", "2026-12-31T00:00:00Z");
	expect_next("0 0 * * 7", "2026-11-26T00:00:00Z", "2026-11-29T00:00:00Z");
	expect_next("0 0 1-7/3 * *", "2026-11-26T00:00:00Z", "2026-12-01T00:00:00Z");
	/* both day fields restricted: either matches (the 1st, or a Monday) */
	expect_next("0 0 1 * 1", "2026-11-26T00:00:00Z", "2026-11-30T00:00:00Z");
	/* year end */
	expect_next("59 23 31 12 *", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z");
}

static void test_utc_no_dst(void **state)
{
	(void)state;
	/* Europe and the US change clocks on these nights; UTC due times do not move */
	expect_next("0 2 * * *", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z");
	expect_next("0 2 * * *", "2026-10-25T02:00:00Z", "2026-10-26T02:00:00Z");
	expect_next("30 2 * * *", "2026-03-08T02:00:00Z", "2026-03-08T02:30:00Z");
	pb_cron c;
	char err[PB_ERR_MAX];
	int64_t gap = 0;
	assert_int_equal(cron_parse("@daily", &c, err), 0);
	assert_int_equal(cron_min_gap(&c, 0, &gap, err), 0);
	assert_int_equal(gap, 86400);
}

static void expect_bad(const char *expr, const char *part)
{
	pb_cron c;
	char err[PB_ERR_MAX] = "";
	assert_int_equal(cron_parse(expr, &c, err), PB_EINVAL);
	if (!strstr(err, part))
		fail_msg("'%s': message '%s' lacks '%s'", expr, err, part);
}

static void test_bad(void **state)
{
	(void)state;
	expect_bad("", "empty");
	expect_bad("@hourlyish", "unknown preset");
	expect_bad("0 0 * *", "expected 5 fields");
	expect_bad("0 0 * * * *", "more than 5");
	expect_bad("60 0 * * *", "minute field");
	expect_bad("0 24 * * *", "hour field");
	expect_bad("0 0 0 * *", "day of month");
	expect_bad("0 0 * 13 *", "month field");
	expect_bad("0 0 * * 8", "day of week");
	expect_bad("*/0 0 * * *", "minute field");
	expect_bad("5-1 0 * * *", "minute field");
	expect_bad("a 0 * * *", "not valid cron");
	expect_bad("1, * * * *", "not valid cron");
	expect_bad("MON 0 * * *", "not valid cron");
	pb_cron c;
	char err[PB_ERR_MAX];
	int64_t next;
	assert_int_equal(cron_parse("0 0 31 2 *", &c, err), 0);
	assert_int_equal(cron_next(&c, at("2026-01-01T00:00:00Z"), &next, err), PB_ENOTFOUND);
}

static void test_min_interval(void **state)
{
	(void)state;
	pb_cron c;
	char err[PB_ERR_MAX] = "";
	assert_int_equal(cron_validate("@daily", 12 * 3600, &c, err), 0);
	assert_int_equal(cron_validate("@twice_daily", 12 * 3600, &c, err), 0);
	assert_int_equal(cron_validate("0 8,20 * * *", 12 * 3600, &c, err), 0);
	/* 08:00 and 18:00: the short gap is 10 h even though there are two runs a day */
	assert_int_equal(cron_validate("0 8,18 * * *", 12 * 3600, &c, err), PB_EINVAL);
	assert_non_null(strstr(err, "every 10 h"));
	assert_non_null(strstr(err, "12 h (PBIPORT_MIN_SCHEDULE_INTERVAL)"));
	assert_int_equal(cron_validate("*/5 * * * *", 12 * 3600, &c, err), PB_EINVAL);
	assert_non_null(strstr(err, "every 5 min"));
	assert_int_equal(cron_validate("*/5 * * * *", 300, &c, err), 0);
	assert_int_equal(cron_validate("0 0 31 2 *", 300, &c, err), PB_EINVAL);
	/* PBIPORT_MIN_SCHEDULE_INTERVAL itself is read at start-up: tests/unit/test_config.c */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_utc_no_dst),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_min_interval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
