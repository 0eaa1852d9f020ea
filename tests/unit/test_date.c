/* Unit tests for lt_date. */
#include <string.h>

#include "lt_date.h"
#include "lt_test.h"

LT_TEST(days_round_trip)
{
    CHECK_INT(lt_date_days_from_civil(1970, 1, 1), 0);
    CHECK_INT(lt_date_days_from_civil(2000, 3, 1), 11017);
    CHECK_INT(lt_date_days_from_civil(1969, 12, 31), -1);
    for (int64_t d = -800000; d < 800000; d += 37) {
        int y, m, dd;
        lt_date_civil_from_days(d, &y, &m, &dd);
        CHECK_INT(lt_date_days_from_civil(y, m, dd), d);
    }
    CHECK_INT(lt_date_weekday(0), 4); /* Thursday */
    CHECK_INT(lt_date_weekday(lt_date_days_from_civil(2024, 2, 29)), 4);
}

LT_TEST(parse_valid_and_impossible)
{
    lt_datetime_t dt;
    int has_time;
    CHECK_INT(lt_date_parse_day("2024-02-29", 10, &dt), 0);
    CHECK_INT(dt.day, 29);
    CHECK_INT(lt_date_parse_day("2023-02-29", 10, &dt), -1);
    CHECK_INT(lt_date_parse_day("2023-13-01", 10, &dt), -1);
    CHECK_INT(lt_date_parse_day("2023-00-10", 10, &dt), -1);
    CHECK_INT(lt_date_parse_day("2023-1-10", 9, &dt), -1);
    CHECK_INT(lt_date_parse_day("0000-00-00", 10, &dt), -1);
    CHECK_INT(lt_date_parse_datetime("2024-11-03 01:30:00", 19, &dt), 0);
    CHECK_INT(dt.hour * 10000 + dt.minute * 100 + dt.second, 13000);
    CHECK_INT(lt_date_parse_datetime("2024-11-03T23:59:59", 19, &dt), 0);
    CHECK_INT(lt_date_parse_datetime("2024-11-03 24:00:00", 19, &dt), -1);
    CHECK_INT(lt_date_parse_datetime("2024-11-03 12:60:00", 19, &dt), -1);
    CHECK_INT(lt_date_parse_datetime("2024-11-03 12:00:0x", 19, &dt), -1);
    /* length-delimited: bytes past len are never read */
    CHECK_INT(lt_date_parse_datetime("2024-11-03 12:00:00garbage", 19, &dt), 0);
    CHECK_INT(lt_date_parse_any("2024-11-03", 10, &dt, &has_time), 0);
    CHECK_INT(has_time, 0);
    CHECK_INT(lt_date_parse_any("2024-11-03 05:06:07", 19, &dt, &has_time), 0);
    CHECK_INT(has_time, 1);
    CHECK_INT(lt_date_parse_any("", 0, &dt, &has_time), -1);
}

LT_TEST(format)
{
    char buf[32];
    lt_datetime_t dt = {2024, 3, 9, 7, 5, 3};
    CHECK_INT(lt_date_fmt_crm(&dt, buf, sizeof(buf)), 10);
    CHECK_STR(buf, "03/09/2024");
    lt_date_fmt_day(&dt, buf, sizeof(buf));
    CHECK_STR(buf, "2024-03-09");
    lt_date_fmt_datetime(&dt, buf, sizeof(buf));
    CHECK_STR(buf, "2024-03-09 07:05:03");
    lt_date_fmt_time(&dt, buf, sizeof(buf));
    CHECK_STR(buf, "07:05:03");
    CHECK_INT(lt_date_fmt_rfc3339(lt_date_to_seconds(&dt), buf, sizeof(buf)), 20);
    CHECK_STR(buf, "2024-03-09T07:05:03Z");
    CHECK_INT(lt_date_fmt_rfc3339(-1, buf, sizeof(buf)), 20);
    CHECK_STR(buf, "1969-12-31T23:59:59Z");
    CHECK_INT(lt_date_fmt_day(&dt, buf, 5), 0); /* too small: reported */
    CHECK_STR(buf, "");
    dt.year = 12345; /* out of the fixed-width range: printf's widths */
    CHECK_INT(lt_date_fmt_day(&dt, buf, sizeof(buf)), 11);
    CHECK_STR(buf, "12345-03-09");
    dt.year = -1;
    CHECK_INT(lt_date_fmt_day(&dt, buf, sizeof(buf)), 10);
    CHECK_STR(buf, "-001-03-09");
}

/* The hand-written digits agree with printf for every second of 1999-2001
 * and a sample across years 0..9999. */
LT_TEST(format_matches_printf)
{
    char got[32], want[32];
    lt_datetime_t dt;
    int bad = 0;
    for (int64_t t = 915148800 - 86400; t < 1009843200 + 86400; t += 7) {
        lt_date_from_seconds(t, &dt);
        lt_date_fmt_rfc3339(t, got, sizeof(got));
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ", dt.year, dt.month, dt.day,
                 dt.hour, dt.minute, dt.second);
        bad += strcmp(got, want) != 0;
    }
    for (int y = 0; y <= 9999; y += 37) {
        dt = (lt_datetime_t){y, 1 + y % 12, 1 + y % 28, y % 24, y % 60, (y / 7) % 60};
        lt_date_fmt_datetime(&dt, got, sizeof(got));
        snprintf(want, sizeof(want), "%04d-%02d-%02d %02d:%02d:%02d", dt.year, dt.month, dt.day,
                 dt.hour, dt.minute, dt.second);
        bad += strcmp(got, want) != 0;
        lt_date_fmt_crm(&dt, got, sizeof(got));
        snprintf(want, sizeof(want), "%02d/%02d/%04d", dt.month, dt.day, dt.year);
        bad += strcmp(got, want) != 0;
        lt_date_fmt_time(&dt, got, sizeof(got));
        snprintf(want, sizeof(want), "%02d:%02d:%02d", dt.hour, dt.minute, dt.second);
        bad += strcmp(got, want) != 0;
    }
    CHECK_INT(bad, 0);
}

LT_TEST(add_days)
{
    char out[11];
    CHECK_INT(lt_date_add_days("2024-02-28", 10, 1, out), 0);
    CHECK_STR(out, "2024-02-29");
    CHECK_INT(lt_date_add_days("2024-12-31", 10, 1, out), 0);
    CHECK_STR(out, "2025-01-01");
    CHECK_INT(lt_date_add_days("2024-03-01", 10, -1, out), 0);
    CHECK_STR(out, "2024-02-29");
    CHECK_INT(lt_date_add_days("2024-02-30", 10, 1, out), -1);
}

int main(void)
{
    LT_RUN(days_round_trip);
    LT_RUN(parse_valid_and_impossible);
    LT_RUN(format);
    LT_RUN(format_matches_printf);
    LT_RUN(add_days);
    return LT_DONE();
}
