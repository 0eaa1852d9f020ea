/* lt_tz: IANA time zones from the system tz database, without libc's TZ.
 *
 * An RFC 8536 TZif reader (v1, v2+ 64-bit data, and the footer POSIX TZ
 * string for instants past the table, so "slim" and "fat" files give the same
 * answers). Zones are loaded once into a process-wide cache and are
 * read-only afterwards: every function here is thread-safe, and conversions
 * are a binary search over the transition table (no allocation, no lock).
 *
 * Wall time -> UTC follows PEP 495 fold=0, exactly as Python's zoneinfo: a
 * wall time that occurs twice takes the earlier instant; one that does not
 * exist (a spring-forward gap) is read with the offset in force before the
 * gap, so it lands after the gap. */
#ifndef LT_TZ_H
#define LT_TZ_H

#include <stddef.h>
#include <stdint.h>
#include "lt_err.h"

typedef struct lt_tz_s lt_tz_t;

/* The zone named `name` ("America/New_York"), loaded on first use from
 * $TZDIR or /usr/share/zoneinfo. The pointer stays valid until process exit;
 * do not destroy it. NULL with a reason for an invalid or unknown name. */
const lt_tz_t *lt_tz_get(const char *name, char *errstr, size_t errlen);

/* Parses TZif bytes (tests, embedded data). Caller owns the result and frees
 * it with lt_tz_destroy(). */
lt_tz_t *lt_tz_parse(const void *buf, size_t len, const char *name, char *errstr, size_t errlen);
void lt_tz_destroy(lt_tz_t *tz); /* accepts NULL; never on lt_tz_get zones */
const char *lt_tz_name(const lt_tz_t *tz);

/* Wall time given as "seconds since 1970-01-01 00:00:00 local" (see
 * lt_date_to_seconds) -> UTC epoch seconds, fold=0. */
int64_t lt_tz_local_to_utc(const lt_tz_t *tz, int64_t local_secs);
/* The UTC offset (seconds east) in force for that wall time, fold=0. */
int32_t lt_tz_local_offset(const lt_tz_t *tz, int64_t local_secs);

typedef struct {
    int64_t local_secs; /* utc + utcoff */
    int32_t utcoff;     /* seconds east of UTC */
    int isdst;
    int fold; /* 1 when this wall time also occurred earlier */
    char abbr[16];
} lt_tz_local_t;

/* UTC epoch seconds -> the local wall time and offset. */
void lt_tz_utc_to_local(const lt_tz_t *tz, int64_t utc, lt_tz_local_t *out);

#endif
