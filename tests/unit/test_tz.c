/* Unit tests for lt_tz: known answers at DST edges (the exhaustive check
 * against zoneinfo is tests/integration/test_tz_oracle.py). */
#include <pthread.h>
#include <string.h>

#include "lt_date.h"
#include "lt_test.h"
#include "lt_tz.h"

static int64_t wall(int y, int mo, int d, int h, int mi, int s)
{
    lt_datetime_t dt = {y, mo, d, h, mi, s};
    return lt_date_to_seconds(&dt);
}

static const lt_tz_t *zone(const char *name)
{
    char err[256];
    const lt_tz_t *tz = lt_tz_get(name, err, sizeof(err));
    if (!tz)
        fprintf(stderr, "%s\n", err);
    return tz;
}

LT_TEST(new_york_gap_and_fold)
{
    const lt_tz_t *ny = zone("America/New_York");
    CHECK(ny != NULL);
    if (!ny)
        return;
    /* 2021-03-14 02:30 does not exist: read with EST, lands 03:30 EDT */
    CHECK_INT(lt_tz_local_to_utc(ny, wall(2021, 3, 14, 2, 30, 0)), 1615707000);
    /* 2021-11-07 01:30 occurs twice: the earlier (EDT) instant */
    CHECK_INT(lt_tz_local_to_utc(ny, wall(2021, 11, 7, 1, 30, 0)), 1636263000);
    CHECK_INT(lt_tz_local_to_utc(ny, wall(2021, 11, 7, 2, 0, 0)), 1636268400);
    lt_tz_local_t loc;
    lt_tz_utc_to_local(ny, 1636266600, &loc); /* second 01:30 */
    CHECK_INT(loc.utcoff, -18000);
    CHECK_INT(loc.fold, 1);
    CHECK_STR(loc.abbr, "EST");
    lt_tz_utc_to_local(ny, 1636263000, &loc);
    CHECK_INT(loc.fold, 0);
    CHECK_STR(loc.abbr, "EDT");
    /* beyond the table: the footer rule (2060-07-01 noon EDT) */
    CHECK_INT(lt_tz_local_offset(ny, wall(2060, 7, 1, 12, 0, 0)), -14400);
}

LT_TEST(half_hours_and_quarters)
{
    const lt_tz_t *lh = zone("Australia/Lord_Howe"), *ch = zone("Pacific/Chatham");
    const lt_tz_t *kol = zone("Asia/Kolkata"), *utc = zone("UTC");
    CHECK(lh && ch && kol && utc);
    if (!lh || !ch || !kol || !utc)
        return;
    CHECK_INT(lt_tz_local_offset(lh, wall(2024, 1, 15, 12, 0, 0)), 39600);
    CHECK_INT(lt_tz_local_offset(lh, wall(2024, 7, 15, 12, 0, 0)), 37800);
    CHECK_INT(lt_tz_local_offset(ch, wall(2024, 1, 15, 12, 0, 0)), 49500);
    CHECK_INT(lt_tz_local_offset(kol, wall(2024, 1, 15, 12, 0, 0)), 19800);
    CHECK_INT(lt_tz_local_to_utc(utc, 1700000000), 1700000000);
}

LT_TEST(bad_names)
{
    char err[256];
    CHECK(lt_tz_get("../etc/passwd", err, sizeof(err)) == NULL);
    CHECK(lt_tz_get("/etc/passwd", err, sizeof(err)) == NULL);
    CHECK(lt_tz_get("Mars/Olympus_Mons", err, sizeof(err)) == NULL);
    CHECK(lt_tz_get("", err, sizeof(err)) == NULL);
    CHECK(lt_tz_parse("TZif2", 5, "x", err, sizeof(err)) == NULL);
    lt_tz_destroy(NULL);
}

LT_TEST(cache_returns_same_zone)
{
    CHECK(zone("Europe/London") == zone("Europe/London"));
}

static void *worker(void *arg)
{
    const char *names[] = {"America/Sao_Paulo", "Africa/Casablanca", "Asia/Tokyo"};
    long bad = 0;
    for (int i = 0; i < 300; i++) {
        const lt_tz_t *tz = zone(names[i % 3]);
        bad += tz == NULL || lt_tz_local_offset(tz, wall(2024, 1, 1, 0, 0, 0)) == 12345;
    }
    *(long *)arg = bad;
    return NULL;
}

LT_TEST(threads)
{
    pthread_t th[4];
    long bad[4] = {0};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, &bad[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(bad[i], 0);
    }
}

int main(void)
{
    LT_RUN(new_york_gap_and_fold);
    LT_RUN(half_hours_and_quarters);
    LT_RUN(bad_names);
    LT_RUN(cache_returns_same_zone);
    LT_RUN(threads);
    return LT_DONE();
}
