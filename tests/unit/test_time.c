/* Time parsing and formatting: the forms users type and the stored form. */
#include "timeq.h"
#include "unit.h"

static int64_t t(const char *s)
{
	int64_t us = -1;
	if (es_time_parse(s, 1800000000LL * 1000000, &us))
		return -1;
	return us;
}

int main(void)
{
	char buf[ES_TS_LEN + 1];
	int64_t us;

	es_ts_format(0, buf);
	CHECK_STR(buf, "1970-01-01T00:00:00.000000Z");
	es_ts_format(1795726800123456LL, buf);
	CHECK_STR(buf, "2026-11-26T21:00:00.123456Z");
	es_ts_format(951782400000000LL, buf); /* leap day 2000 */
	CHECK_STR(buf, "2000-02-29T00:00:00.000000Z");
	CHECK(es_ts_parse(buf, ES_TS_LEN, &us) == 0 && us == 951782400000000LL);

	CHECK(t("2026-11-26T08:00:00Z") == 1795680000LL * 1000000);
	CHECK(t("2026-11-26T09:00:00+01:00") == 1795680000LL * 1000000);
	CHECK(t("2026-11-26T03:30:00-04:30") == 1795680000LL * 1000000);
	CHECK(t("2026-11-26 08:00:00.5Z") == 1795680000LL * 1000000 + 500000);
	CHECK(t("2026-11-26") == 1795651200LL * 1000000);
	CHECK(t("1795680000") == 1795680000LL * 1000000);
	CHECK(t("@1795680000.25") == 1795680000LL * 1000000 + 250000);
	CHECK(t("90d") == (1800000000LL - 90 * 86400) * 1000000);
	CHECK(t("now") == 1800000000LL * 1000000);
	CHECK(t("Now") == -1 && t("now ") == -1 && t("nowish") == -1);
	CHECK(t("36h") == (1800000000LL - 36 * 3600) * 1000000);
	CHECK(t("15m") == (1800000000LL - 900) * 1000000);
	CHECK(t("2w") == (1800000000LL - 14 * 86400) * 1000000);
	/* rejected */
	CHECK(t("2026-02-30") == -1);
	CHECK(t("2025-02-29") == -1);
	CHECK(t("2026-11-26T25:00:00Z") == -1);
	CHECK(t("2026-11-26T08:00:00") == -1); /* no zone: ambiguous */
	CHECK(t("yesterday") == -1);
	/* beyond what the stored form can spell */
	CHECK(t("9999-12-31T23:30:00-01:00") == -1);
	CHECK(t("0000-01-01T00:30:00+01:00") == -1);
	CHECK(t("9999-12-31T23:59:59.999999Z") > 0);
	CHECK(t("99999999999999") == -1);
	CHECK(t("") == -1);
	CHECK(es_duration_parse("10m", &us) == 0 && us == 600000000);
	CHECK(es_duration_parse("-1s", &us) == -1);
	/* fractions are decimal, exact: a double made 4.1s 4099999 us */
	CHECK(es_duration_parse("4.1s", &us) == 0 && us == 4100000);
	CHECK(es_duration_parse("1.005s", &us) == 0 && us == 1005000);
	CHECK(es_duration_parse("8.2s", &us) == 0 && us == 8200000);
	CHECK(es_duration_parse("0.7d", &us) == 0 && us == 60480000000LL);
	CHECK(es_duration_parse("1.5us", &us) == 0 && us == 1); /* rounded down */
	CHECK(es_duration_parse("0.0000015ms", &us) == 0 && us == 0);
	CHECK(es_duration_parse("0.99999999999999999999999w", &us) == 0 && us == 604799999999LL);
	CHECK(es_duration_parse("2.w", &us) == 0 && us == 1209600000000LL);
	CHECK(es_duration_parse("14880952w", &us) == 0 && us == 14880952LL * 604800000000LL);
	CHECK(es_duration_parse("14880953w", &us) == -1); /* past 9e18 us */
	/* the limit is 9e18 us whatever the unit, fraction included */
	CHECK(es_duration_parse("9000000000000000000us", &us) == 0 && us == 9000000000000000000LL);
	CHECK(es_duration_parse("9000000000000000001us", &us) == -1);
	CHECK(es_duration_parse("9000000000000s", &us) == 0 && us == 9000000000000000000LL);
	CHECK(es_duration_parse("9000000000000.000001s", &us) == -1);
	CHECK(es_duration_parse("14880952.9999w", &us) == -1);
	CHECK(es_duration_parse("9223372036854775807us", &us) == -1);
	CHECK(es_duration_parse("9223372036854775808us", &us) == -1);
	CHECK(es_duration_parse("99999999999999999999999s", &us) == -1);
	CHECK(es_duration_parse("1e3s", &us) == -1);
	CHECK(es_duration_parse(".5s", &us) == -1);
	CHECK(es_duration_parse("5", &us) == -1);
	CHECK(es_duration_parse("5 s", &us) == -1);
	return unit_done("time");
}
