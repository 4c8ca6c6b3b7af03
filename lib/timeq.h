/* timeq.h: times and durations.
 *
 * Internally a time is microseconds since the Unix epoch, UTC (int64_t).
 * Stored ts are RFC 3339 with exactly six fractional digits and 'Z':
 * 2026-11-26T08:00:00.123456Z (27 bytes), so they also sort as strings.
 */
#ifndef ES_TIMEQ_H
#define ES_TIMEQ_H

#include <stddef.h>
#include <stdint.h>

#define ES_TS_LEN 27

/* Current time in microseconds (CLOCK_REALTIME). */
int64_t es_now_us(void);
/* Whether us can be written in the stored form (years 0000 to 9999). */
int es_ts_in_range(int64_t us);
/* Format us as a stored ts into out (ES_TS_LEN + 1 bytes). */
void es_ts_format(int64_t us, char out[ES_TS_LEN + 1]);
/* Parse a stored-form or any RFC 3339 time with offset ("2026-11-26T08:00:00Z",
 * "...T09:00:00.5+01:00", space instead of T). 0 or -1. */
int es_ts_parse(const char *s, size_t len, int64_t *us);
/* Parse a user time: RFC 3339, a bare date (YYYY-MM-DD, start of day UTC),
 * epoch seconds (digits, optionally "@" first, optionally .fraction), or an
 * age before now ("90d", "36h", "15m", "30s", "2w"). 0 or -1. */
int es_time_parse(const char *s, int64_t now_us, int64_t *us);
/* Parse a duration ("10m", "90d", "1h30m" is not accepted; "600s", "250ms"). */
int es_duration_parse(const char *s, int64_t *us);
/* The accepted forms, for usage messages. */
extern const char es_time_forms[];

#endif
