/* Wall-time arithmetic, date parsing and the zone's DST edges. */
#include "sim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Howard Hinnant's days_from_civil: proleptic Gregorian, day 0 = 1970-01-01. */
int64_t cs_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void cs_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Writes n digits of v (0 <= v) at out. */
static void put_digits(char *out, unsigned v, int n)
{
    while (n-- > 0) {
        out[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

void cs_day_format(int64_t day, char out[11])
{
    int y, m, d;
    cs_civil_from_days(day, &y, &m, &d);
    put_digits(out, (unsigned)(y < 0 ? 0 : y), 4);
    out[4] = '-';
    put_digits(out + 5, (unsigned)m, 2);
    out[7] = '-';
    put_digits(out + 8, (unsigned)d, 2);
    out[10] = '\0';
}

void cs_ls_format(cs_ls_t t, char out[20])
{
    int64_t day = t >= 0 ? t / CS_DAY : (t - CS_DAY + 1) / CS_DAY;
    unsigned s = (unsigned)(t - day * CS_DAY);
    cs_day_format(day, out);
    out[10] = ' ';
    put_digits(out + 11, s / 3600, 2);
    out[13] = ':';
    put_digits(out + 14, s / 60 % 60, 2);
    out[16] = ':';
    put_digits(out + 17, s % 60, 2);
    out[19] = '\0';
}

/* Reads 1..maxd digits; returns the count read, 0 when none. */
static int read_num(const char **p, int maxd, int *out)
{
    int n = 0, v = 0;
    while (n < maxd && isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    *out = v;
    return n;
}

static int valid_ymd(int y, int m, int d)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return 0;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 0;
    return 1;
}

int cs_date_parse(const char *s, int64_t *day)
{
    const char *p = s;
    int a, b, c, na, nb, nc, y, m, d;
    if (!s)
        return -1;
    na = read_num(&p, 4, &a);
    if (na == 4 && *p == '-') { /* YYYY-MM-DD */
        p++;
        nb = read_num(&p, 2, &b);
        if (nb != 2 || *p++ != '-')
            return -1;
        nc = read_num(&p, 2, &c);
        if (nc != 2)
            return -1;
        y = a, m = b, d = c;
    } else if (na >= 1 && na <= 2 && *p == '/') { /* MM/DD/YYYY or M/D/YY */
        p++;
        nb = read_num(&p, 2, &b);
        if (nb < 1 || *p++ != '/')
            return -1;
        nc = read_num(&p, 4, &c);
        if (nc == 2)
            c += 2000;
        else if (nc != 4)
            return -1;
        y = c, m = a, d = b;
    } else {
        return -1;
    }
    if (*p != '\0' && *p != ' ' && *p != 'T') /* a time part is ignored */
        return -1;
    if (!valid_ymd(y, m, d))
        return -1;
    *day = cs_days_from_civil(y, m, d);
    return 0;
}

int cs_ls_parse(const char *s, cs_ls_t *t, int *date_only)
{
    int64_t day;
    int hh, mm, ss;
    if (!s || strlen(s) < 10 || s[4] != '-' || cs_date_parse(s, &day) != 0)
        return -1;
    if (s[10] == '\0') {
        *t = day * CS_DAY;
        *date_only = 1;
        return 0;
    }
    if (strlen(s) != 19 || sscanf(s + 11, "%2d:%2d:%2d", &hh, &mm, &ss) != 3 || hh > 23 ||
        mm > 59 || ss > 59 || hh < 0 || mm < 0 || ss < 0)
        return -1;
    *t = day * CS_DAY + hh * 3600 + mm * 60 + ss;
    *date_only = 0;
    return 0;
}

static long utc_offset(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    return tm.tm_gmtoff;
}

/* Narrows (lo, hi] to the first second with hi's offset. */
static time_t transition(time_t lo, time_t hi)
{
    long off_lo = utc_offset(lo);
    while (hi - lo > 1) {
        time_t mid = lo + (hi - lo) / 2;
        if (utc_offset(mid) == off_lo)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

int cs_tz_edges(const char *zone, int64_t first_day, int64_t last_day, cs_ls_t *gap, cs_ls_t *fold)
{
    time_t t, end = (time_t)((last_day + 2) * CS_DAY);
    *gap = *fold = -1;
    if (setenv("TZ", zone, 1) != 0)
        return -1;
    tzset();
    for (t = (time_t)((first_day - 1) * CS_DAY); t < end; t += 1800) {
        long o1 = utc_offset(t), o2 = utc_offset(t + 1800);
        if (o1 == o2)
            continue;
        time_t tr = transition(t, t + 1800);
        cs_ls_t pick = (cs_ls_t)tr + (o1 < o2 ? o1 : o2) + labs(o2 - o1) / 2;
        if (pick / CS_DAY < first_day || pick / CS_DAY > last_day)
            continue;
        if (o2 > o1 && *gap < 0)
            *gap = pick;
        else if (o2 < o1 && *fold < 0)
            *fold = pick;
    }
    return 0;
}
