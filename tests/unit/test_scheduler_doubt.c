/* test_scheduler_doubt: the claims a Redis failure left in doubt
 * (services/scheduler/doubt.c): a release is settled after two answered
 * sweeps, a mark_queued after one; a sweep stops at the first unanswered
 * entry and keeps it and the rest, in order; the list is bounded, counts
 * its refusals per fill (for one warning each time it fills) and refuses a
 * name that does not fit. */
#include <stdio.h>
#include <string.h>

#include "lt_test.h"
#include "scheduler.h"

/* A fake Redis: answers the first `answer` calls, records what it ran. */
typedef struct {
    int answer, calls;
    char ran[16][160];
} fake_t;

static int apply(void *arg, sched_doubt_kind_t kind, const char *key, const char *jobkey,
                 const char *value)
{
    fake_t *f = arg;
    if (f->answer-- <= 0)
        return -1;
    if (f->calls < 16)
        snprintf(f->ran[f->calls], sizeof(f->ran[0]), "%s %s %s %s",
                 kind == SCHED_DOUBT_RELEASE ? "release" : "queued", key, jobkey, value);
    f->calls++;
    return 0;
}

LT_TEST(release_twice_queued_once)
{
    sched_doubt_t *d = sched_doubt_new(8);
    fake_t f = {.answer = 100};
    CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_RELEASE, "o", "j1", "a 1 pending 3"), 0);
    CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_QUEUED, "o", "j2", "b 1 pending 3"), 0);
    CHECK_INT(sched_doubt_sweep(d, apply, &f), 1); /* j2 settled, j1 needs a second sweep */
    CHECK_INT(sched_doubt_count(d), 1);
    CHECK_STR(f.ran[0], "release o j1 a 1 pending 3");
    CHECK_STR(f.ran[1], "queued o j2 b 1 pending 3");
    CHECK_INT(sched_doubt_sweep(d, apply, &f), 1);
    CHECK_INT(sched_doubt_count(d), 0);
    CHECK_STR(f.ran[2], "release o j1 a 1 pending 3");
    CHECK_INT(f.calls, 3);
    CHECK_INT(sched_doubt_sweep(d, apply, &f), 0);
    CHECK_INT(f.calls, 3);
    sched_doubt_destroy(d);
}

LT_TEST(stops_at_the_first_failure_and_keeps_the_order)
{
    sched_doubt_t *d = sched_doubt_new(8);
    fake_t f = {.answer = 1};
    CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_QUEUED, "o", "j1", "a"), 0);
    CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_QUEUED, "o", "j2", "b"), 0);
    CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_QUEUED, "o", "j3", "c"), 0);
    CHECK_INT(sched_doubt_sweep(d, apply, &f), 1); /* j1 answered, j2 not: j3 not tried */
    CHECK_INT(f.calls, 1);
    CHECK_INT(sched_doubt_count(d), 2);
    f.answer = 100;
    CHECK_INT(sched_doubt_sweep(d, apply, &f), 2);
    CHECK_STR(f.ran[1], "queued o j2 b");
    CHECK_STR(f.ran[2], "queued o j3 c");
    sched_doubt_destroy(d);
}

LT_TEST(bounded_and_exact)
{
    sched_doubt_t *d = sched_doubt_new(20);
    char long_value[200];
    for (int i = 0; i < 20; i++)
        CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_RELEASE, "o", "j", "v"), 0);
    CHECK_INT(sched_doubt_refused(d), 0);
    CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_RELEASE, "o", "j", "v"), -2); /* full */
    CHECK_INT(sched_doubt_refused(d), 1); /* the first refusal of this fill: warn */
    CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_RELEASE, "o", "j", "v"), -2);
    CHECK_INT(sched_doubt_refused(d), 2); /* the same fill: no second warning */
    CHECK_INT(sched_doubt_count(d), 20);
    {
        fake_t f = {.answer = 100};
        CHECK_INT(sched_doubt_sweep(d, apply, &f), 0); /* releases need a second sweep */
        CHECK_INT(sched_doubt_sweep(d, apply, &f), 20);
    }
    CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_RELEASE, "o", "j", "v"), 0);
    CHECK_INT(sched_doubt_refused(d), 0); /* room again: the next fill warns again */
    for (int i = 1; i < 20; i++)
        CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_RELEASE, "o", "j", "v"), 0);
    CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_RELEASE, "o", "j", "v"), -2);
    CHECK_INT(sched_doubt_refused(d), 1);
    sched_doubt_destroy(d);

    d = sched_doubt_new(4);
    memset(long_value, 'x', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    CHECK_INT(sched_doubt_add(d, SCHED_DOUBT_RELEASE, "o", "j", long_value), -1);
    CHECK_INT(sched_doubt_count(d), 0); /* never a truncated value */
    CHECK_INT(sched_doubt_add(NULL, SCHED_DOUBT_RELEASE, "o", "j", "v"), -1);
    CHECK_INT(sched_doubt_count(NULL), 0);
    sched_doubt_destroy(d);
    sched_doubt_destroy(NULL);
}

int main(void)
{
    LT_RUN(release_twice_queued_once);
    LT_RUN(stops_at_the_first_failure_and_keeps_the_order);
    LT_RUN(bounded_and_exact);
    return LT_DONE();
}
