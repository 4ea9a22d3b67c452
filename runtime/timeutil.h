/* UTC time as pbiport stores it: ISO-8601 text with milliseconds,
 * "2026-11-26T03:04:05.678Z". Text of this one format sorts in time order, so SQL
 * compares it with plain < and > on SQLite and PostgreSQL alike. */
#ifndef PBIPORT_TIMEUTIL_H
#define PBIPORT_TIMEUTIL_H

#include <stdint.h>

#include "runtime/db.h"   /* PB_TIME_BUF */

/* Milliseconds since the Unix epoch, wall clock. */
int64_t pb_epoch_ms(void);
/* Milliseconds from a monotonic clock (for durations and deadlines). */
int64_t pb_mono_ms(void);
/* Formats epoch milliseconds as stored text. */
void pb_time_format(int64_t epoch_ms, char out[PB_TIME_BUF]);
/* The stored text for now + delta_ms (delta may be negative). */
void pb_time_in(int64_t delta_ms, char out[PB_TIME_BUF]);
/* Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z" (also "+00:00"); PB_EINVAL otherwise. */
int pb_time_parse(const char *text, int64_t *epoch_ms);
/* Parses a duration: a number of seconds, or a number followed by s, m, h or d ("90m",
 * "12h"), at most ten years. PB_EINVAL with "expected a duration like 43200, 720m or 12h". */
int pb_duration_parse(const char *text, int64_t *secs, char *err);
/* Sleeps ms milliseconds (restarts after signals). */
void pb_sleep_ms(int64_t ms);
/* Sleeps ms milliseconds (restarts after signals until the time has passed,
 * unless *stop becomes non-zero; stop may be NULL). */
void pb_sleep_interruptible(int64_t ms, volatile int *stop);

/* Parses a duration: a number of seconds, or a number followed by s, m, h or d (at most ten
 * years). PB_EINVAL with "expected a duration like 43200, 720m or 12h" otherwise. */
int pb_duration_parse(const char *text, int64_t *secs, char *err);

#endif
