/* lt_date: proleptic Gregorian civil dates and times, pure integer math.
 *
 * Days count from 1970-01-01 (day 0); seconds are plain POSIX seconds (no
 * leap seconds). Parsers take (buf, len) and never read past len; they reject
 * impossible dates (2023-02-29, 24:00:00) rather than normalising them. */
#ifndef LT_DATE_H
#define LT_DATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int year, month, day;     /* month 1..12, day 1..31 */
    int hour, minute, second; /* 0..23, 0..59, 0..59 */
} lt_datetime_t;

int lt_date_is_leap(int year);
int lt_date_days_in_month(int year, int month); /* 0 for a bad month */
/* Howard Hinnant's algorithms; valid far beyond any CRM date. */
int64_t lt_date_days_from_civil(int year, int month, int day);
void lt_date_civil_from_days(int64_t days, int *year, int *month, int *day);
/* 0 = Sunday .. 6 = Saturday */
int lt_date_weekday(int64_t days);

/* Seconds since the epoch of the wall fields read as UTC, and back. */
int64_t lt_date_to_seconds(const lt_datetime_t *dt);
void lt_date_from_seconds(int64_t secs, lt_datetime_t *dt);

/* "YYYY-MM-DD" (exactly 10 bytes). Time fields are zeroed. 0 or -1. */
int lt_date_parse_day(const char *s, size_t len, lt_datetime_t *dt);
/* "YYYY-MM-DD HH:MM:SS" (a 'T' is accepted for the space). 0 or -1. */
int lt_date_parse_datetime(const char *s, size_t len, lt_datetime_t *dt);
/* Either of the two forms above; *has_time says which. 0 or -1. */
int lt_date_parse_any(const char *s, size_t len, lt_datetime_t *dt, int *has_time);

/* Formatters write a NUL-terminated string and return its length.
 * buf needs 11, 11, 20 and 21 bytes respectively. */
size_t lt_date_fmt_day(const lt_datetime_t *dt, char *buf, size_t buflen); /* YYYY-MM-DD */
size_t lt_date_fmt_crm(const lt_datetime_t *dt, char *buf, size_t buflen); /* MM/DD/YYYY */
size_t lt_date_fmt_datetime(const lt_datetime_t *dt, char *buf,
                            size_t buflen); /* YYYY-MM-DD HH:MM:SS */
size_t lt_date_fmt_time(const lt_datetime_t *dt, char *buf, size_t buflen); /* HH:MM:SS */
size_t lt_date_fmt_rfc3339(int64_t utc_secs, char *buf, size_t buflen); /* YYYY-MM-DDTHH:MM:SSZ */

/* "YYYY-MM-DD" plus n days (n may be negative) into out (11 bytes). 0 or -1. */
int lt_date_add_days(const char *day, size_t len, int n, char out[11]);

#endif
