#include "timeq.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char es_time_forms[] =
	"RFC 3339 (2026-11-26T14:05:00Z, 2026-11-26T15:05:00+01:00), "
	"a date (2026-11-26), epoch seconds (1795700000 or @1795700000.5), "
	"an age (90d, 36h, 15m, 30s, 2w), or now";

int64_t es_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int es_ts_in_range(int64_t us)
{
	/* what the stored form can spell: 0000-01-01 to 9999-12-31, UTC */
	static const int64_t lo = -62167219200LL * 1000000;
	static const int64_t hi = 253402300800LL * 1000000 - 1;

	return us >= lo && us <= hi;
}

static void put(char *p, int n, int64_t v)
{
	for (int i = n - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
}

void es_ts_format(int64_t us, char out[ES_TS_LEN + 1])
{
	int64_t secs = us >= 0 ? us / 1000000 : (us - 999999) / 1000000;
	int64_t frac = us - secs * 1000000;
	int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	int64_t rem = secs - days * 86400, y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	put(out, 4, y);
	out[4] = '-';
	put(out + 5, 2, m);
	out[7] = '-';
	put(out + 8, 2, d);
	out[10] = 'T';
	put(out + 11, 2, rem / 3600);
	out[13] = ':';
	put(out + 14, 2, rem / 60 % 60);
	out[16] = ':';
	put(out + 17, 2, rem % 60);
	out[19] = '.';
	put(out + 20, 6, frac);
	out[26] = 'Z';
	out[27] = '\0';
}

static int digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_date(const char *s, size_t len, int64_t *days)
{
	int y, m, d;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (len < 10 || s[4] != '-' || s[7] != '-' || digits(s, 4, &y) ||
	    digits(s + 5, 2, &m) || digits(s + 8, 2, &d))
		return -1;
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return -1;
	if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	*days = days_from_civil(y, (unsigned)m, (unsigned)d);
	return 0;
}

int es_ts_parse(const char *s, size_t len, int64_t *us)
{
	int64_t days, frac = 0;
	int hh, mm, ss, off = 0;
	size_t i = 19;

	if (len < 20 || parse_date(s, len, &days) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
	    s[16] != ':' || digits(s + 11, 2, &hh) || digits(s + 14, 2, &mm) ||
	    digits(s + 17, 2, &ss) || hh > 23 || mm > 59 || ss > 60)
		return -1;
	if (ss == 60)
		ss = 59; /* a leap second folds onto the second before it */
	if (s[i] == '.') {
		int64_t scale = 100000;
		size_t start = ++i;
		while (i < len && isdigit((unsigned char)s[i])) {
			frac += (s[i] - '0') * scale;
			scale /= 10;
			i++;
		}
		if (i == start)
			return -1;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		int oh, om;
		if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		off = (oh * 60 + om) * (s[i] == '+' ? 1 : -1);
		i += 6;
	} else {
		return -1;
	}
	if (i != len)
		return -1;
	*us = ((days * 86400 + hh * 3600 + mm * 60 + ss) - (int64_t)off * 60) * 1000000 + frac;
	return es_ts_in_range(*us) ? 0 : -1;
}

int es_duration_parse(const char *s, int64_t *us)
{
	const char *end, *frac = NULL;
	int64_t unit, whole = 0, part = 0;
	size_t nfrac = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	/* decimal digits, read exactly: "4.1s" is 4100000 us, where a double
	 * made it 4099999 */
	for (end = s; isdigit((unsigned char)*end); end++) {
		if (whole > (INT64_MAX - 9) / 10)
			return -1;
		whole = whole * 10 + (*end - '0');
	}
	if (*end == '.')
		for (frac = ++end; isdigit((unsigned char)*end); end++)
			nfrac++;
	if (strcmp(end, "us") == 0) unit = 1;
	else if (strcmp(end, "ms") == 0) unit = 1000;
	else if (strcmp(end, "s") == 0) unit = 1000000;
	else if (strcmp(end, "m") == 0) unit = 60LL * 1000000;
	else if (strcmp(end, "h") == 0) unit = 3600LL * 1000000;
	else if (strcmp(end, "d") == 0) unit = 86400LL * 1000000;
	else if (strcmp(end, "w") == 0) unit = 7 * 86400LL * 1000000;
	else return -1;
	if (whole > 9000000000000000000LL / unit)
		return -1;
	/* the fraction times unit, rounded down: a decimal fraction multiplied
	 * by an integer from its last digit up, keeping only the carry (each
	 * step is below 10 * unit, far from overflow) */
	while (nfrac > 0)
		part = ((frac[--nfrac] - '0') * unit + part) / 10;
	/* (below 9e18 + unit: no overflow) */
	if (whole * unit + part > 9000000000000000000LL)
		return -1;
	*us = whole * unit + part;
	return 0;
}

int es_time_parse(const char *s, int64_t now_us, int64_t *us)
{
	size_t len = strlen(s);
	int64_t days, age;
	const char *p = s;

	if (strcmp(s, "now") == 0) {
		*us = now_us;
		return 0;
	}
	if (len == 10 && parse_date(s, len, &days) == 0) {
		*us = days * 86400 * 1000000;
		return 0;
	}
	if (len > 10 && es_ts_parse(s, len, us) == 0)
		return 0;
	if (*p == '@')
		p++;
	if (isdigit((unsigned char)*p)) {
		int64_t sec = 0, frac = 0, scale = 100000;
		const char *q = p;
		while (isdigit((unsigned char)*q) && sec < 100000000000LL)
			sec = sec * 10 + (*q++ - '0');
		if (*q == '.')
			for (q++; isdigit((unsigned char)*q); q++, scale /= 10)
				frac += (*q - '0') * scale;
		if (*q == '\0') {
			*us = sec * 1000000 + frac;
			return es_ts_in_range(*us) ? 0 : -1;
		}
	}
	if (es_duration_parse(s, &age) == 0) {
		*us = now_us - age;
		return 0;
	}
	return -1;
}
