/* test_scheduler_due: the table of integrations a scheduler pass may skip
 * (services/scheduler/due.c): an entry holds only while the time, the
 * document, the local day and the integration's presence in every pass
 * hold; clearing forgets everything; thousands of ids stay distinct. */
#include <stdio.h>
#include <string.h>

#include "lt_test.h"
#include "scheduler.h"

static lt_integration_t integ(const char *id)
{
    lt_integration_t in;
    memset(&in, 0, sizeof(in));
    snprintf(in.id, sizeof(in.id), "%s", id);
    snprintf(in.timezone, sizeof(in.timezone), "America/New_York");
    return in;
}

LT_TEST(quiet_until_time_day_and_document)
{
    sched_due_t *d = sched_due_new();
    lt_integration_t a = integ("a");
    uint64_t doc = 42;
    sched_due_next_pass(d);
    CHECK_INT(sched_due_skip(d, &a, doc, 1000, "2026-12-03"), 0); /* never planned */
    sched_due_set(d, &a, doc, 5000, "2026-12-03");
    sched_due_next_pass(d);
    CHECK_INT(sched_due_skip(d, &a, doc, 4999, "2026-12-03"), 1);
    sched_due_next_pass(d);
    CHECK_INT(sched_due_skip(d, &a, doc, 5000, "2026-12-03"), 0); /* due */
    sched_due_next_pass(d);
    CHECK_INT(sched_due_skip(d, &a, doc, 2000, "2026-12-04"), 0); /* the day rolled */
    sched_due_next_pass(d);
    CHECK_INT(sched_due_skip(d, &a, 43, 2000, "2026-12-03"), 0); /* the document changed */
    sched_due_set(d, &a, doc, 0, "2026-12-03");                  /* plan every pass */
    sched_due_next_pass(d);
    CHECK_INT(sched_due_skip(d, &a, doc, 2000, "2026-12-03"), 0);
    sched_due_destroy(d);
}

LT_TEST(absent_from_a_pass_is_planned)
{
    sched_due_t *d = sched_due_new();
    lt_integration_t a = integ("a");
    sched_due_next_pass(d);
    sched_due_set(d, &a, 1, 9000, "2026-12-03");
    sched_due_next_pass(d); /* "a" removed: not looked up in this pass */
    sched_due_next_pass(d); /* back with the same document */
    CHECK_INT(sched_due_skip(d, &a, 1, 2000, "2026-12-03"), 0);
    sched_due_set(d, &a, 1, 9000, "2026-12-03");
    sched_due_next_pass(d);
    CHECK_INT(sched_due_skip(d, &a, 1, 2000, "2026-12-03"), 1);
    sched_due_destroy(d);
}

LT_TEST(clear_forgets)
{
    sched_due_t *d = sched_due_new();
    lt_integration_t a = integ("a");
    sched_due_next_pass(d);
    sched_due_set(d, &a, 1, 9000, "2026-12-03");
    CHECK_INT(sched_due_count(d), 1);
    sched_due_clear(d);
    CHECK_INT(sched_due_count(d), 0);
    sched_due_next_pass(d);
    CHECK_INT(sched_due_skip(d, &a, 1, 2000, "2026-12-03"), 0);
    sched_due_destroy(d);
}

LT_TEST(many_ids_stay_distinct)
{
    sched_due_t *d = sched_due_new();
    char id[32];
    sched_due_next_pass(d);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "merchant-%d", i);
        lt_integration_t in = integ(id);
        sched_due_set(d, &in, (uint64_t)i, i % 2 ? 9000 : 0, "2026-12-03");
    }
    CHECK_INT(sched_due_count(d), 2500); /* until 0 is not remembered */
    sched_due_next_pass(d);
    int skipped = 0, wrong = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "merchant-%d", i);
        lt_integration_t in = integ(id);
        int s = sched_due_skip(d, &in, (uint64_t)i, 2000, "2026-12-03");
        skipped += s;
        wrong += s != (i % 2);
    }
    CHECK_INT(skipped, 2500);
    CHECK_INT(wrong, 0);
    sched_due_destroy(d);
}

LT_TEST(document_hash_sees_every_field)
{
    lt_integration_t a = integ("a"), b = integ("a");
    CHECK(sched_due_doc_hash(&a) == sched_due_doc_hash(&b));
    b.sync_interval_ms = 60000;
    CHECK(sched_due_doc_hash(&a) != sched_due_doc_hash(&b));
    b = a;
    snprintf(b.timezone, sizeof(b.timezone), "Europe/Berlin");
    CHECK(sched_due_doc_hash(&a) != sched_due_doc_hash(&b));
}

int main(void)
{
    LT_RUN(quiet_until_time_day_and_document);
    LT_RUN(absent_from_a_pass_is_planned);
    LT_RUN(clear_forgets);
    LT_RUN(many_ids_stay_distinct);
    LT_RUN(document_hash_sees_every_field);
    return LT_DONE();
}
