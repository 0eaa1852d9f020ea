/* lt_date: civil calendar arithmetic (see lt_date.h). */
#include "lt_date.h"

#include <stdio.h>
#include <string.h>

int lt_date_is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int lt_date_days_in_month(int year, int month)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12)
        return 0;
    return mdays[month - 1] + (month == 2 && lt_date_is_leap(year));
}

/* Eras of 400 years (146097 days) keep the division exact for negatives. */
int64_t lt_date_days_from_civil(int year, int month, int day)
{
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void lt_date_civil_from_days(int64_t days, int *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)m;
    *year = (int)(yoe + era * 400 + (m <= 2));
}

int lt_date_weekday(int64_t days)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

int64_t lt_date_to_seconds(const lt_datetime_t *dt)
{
    return lt_date_days_from_civil(dt->year, dt->month, dt->day) * 86400 + dt->hour * 3600 +
           dt->minute * 60 + dt->second;
}

void lt_date_from_seconds(int64_t secs, lt_datetime_t *dt)
{
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    lt_date_civil_from_days(days, &dt->year, &dt->month, &dt->day);
    dt->hour = (int)(rem / 3600);
    dt->minute = (int)(rem / 60 % 60);
    dt->second = (int)(rem % 60);
}

/* n ASCII digits at s, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int lt_date_parse_day(const char *s, size_t len, lt_datetime_t *dt)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 1 || m < 1 || d < 1 || d > lt_date_days_in_month(y, m))
        return -1;
    *dt = (lt_datetime_t){y, m, d, 0, 0, 0};
    return 0;
}

int lt_date_parse_datetime(const char *s, size_t len, lt_datetime_t *dt)
{
    lt_datetime_t tmp;
    if (len != 19 || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' ||
        lt_date_parse_day(s, 10, &tmp) != 0)
        return -1;
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59)
        return -1;
    tmp.hour = h;
    tmp.minute = mi;
    tmp.second = se;
    *dt = tmp;
    return 0;
}

int lt_date_parse_any(const char *s, size_t len, lt_datetime_t *dt, int *has_time)
{
    *has_time = len > 10;
    return len > 10 ? lt_date_parse_datetime(s, len, dt) : lt_date_parse_day(s, len, dt);
}

/* Writes fields of dt per a pattern of Y (4 digits), M, D, h, m, s (2 digits)
 * and literal characters, as printf's %04d/%02d would (digit writers for the
 * usual range: events format three dates each). 0 (and "") if it does not
 * fit in buflen. */
static size_t fmt_pattern(const lt_datetime_t *dt, const char *pat, char *buf, size_t buflen)
{
    char out[96];
    size_t n = 0;
    for (const char *c = pat; *c; c++) {
        int v, w = 2;
        switch (*c) {
        case 'Y':
            v = dt->year;
            w = 4;
            break;
        case 'M': v = dt->month; break;
        case 'D': v = dt->day; break;
        case 'h': v = dt->hour; break;
        case 'm': v = dt->minute; break;
        case 's': v = dt->second; break;
        default: out[n++] = *c; continue;
        }
        if (v >= 0 && v < (w == 4 ? 10000 : 100)) {
            for (int i = w - 1; i >= 0; i--, v /= 10)
                out[n + (size_t)i] = (char)('0' + v % 10);
            n += (size_t)w;
        } else {
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%0*d", w, v);
        }
    }
    if (n >= buflen) {
        if (buflen)
            buf[0] = '\0';
        return 0;
    }
    memcpy(buf, out, n);
    buf[n] = '\0';
    return n;
}

size_t lt_date_fmt_day(const lt_datetime_t *dt, char *buf, size_t buflen)
{
    return fmt_pattern(dt, "Y-M-D", buf, buflen);
}

size_t lt_date_fmt_crm(const lt_datetime_t *dt, char *buf, size_t buflen)
{
    return fmt_pattern(dt, "M/D/Y", buf, buflen);
}

size_t lt_date_fmt_datetime(const lt_datetime_t *dt, char *buf, size_t buflen)
{
    return fmt_pattern(dt, "Y-M-D h:m:s", buf, buflen);
}

size_t lt_date_fmt_time(const lt_datetime_t *dt, char *buf, size_t buflen)
{
    return fmt_pattern(dt, "h:m:s", buf, buflen);
}

size_t lt_date_fmt_rfc3339(int64_t utc_secs, char *buf, size_t buflen)
{
    lt_datetime_t dt;
    lt_date_from_seconds(utc_secs, &dt);
    return fmt_pattern(&dt, "Y-M-DTh:m:sZ", buf, buflen);
}

int lt_date_add_days(const char *day, size_t len, int n, char out[11])
{
    lt_datetime_t dt;
    if (lt_date_parse_day(day, len, &dt) != 0)
        return -1;
    lt_date_civil_from_days(lt_date_days_from_civil(dt.year, dt.month, dt.day) + n, &dt.year,
                            &dt.month, &dt.day);
    if (dt.year < 1 || dt.year > 9999)
        return -1;
    return lt_date_fmt_day(&dt, out, 11) == 10 ? 0 : -1;
}
