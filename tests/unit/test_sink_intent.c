/* The sink's intents (services/sink/intent.c): the value's format and
 * parse (round trip, merging bounds by minimum, partitions past the known
 * count ignored, malformed values refused), where a write is placed (crc32
 * of the event_id, the placement librdkafka's default partitioner gives; the
 * expected partitions come from Python's zlib.crc32) or, with another
 * `partitioner`, the function it names; and acknowledged
 * offsets only moving forward; the input coordinates a write carries (its
 * header's format and parse) and which writes a takeover does not write
 * again (sink_takeover_skips); finished batches covered until committed
 * (sink_done_*). */
#include <stdlib.h>
#include <string.h>
#include "lt_test.h"
#include "sink.h"

/* main.c's, which this test does not link: intent.c's Redis and Kafka
 * retries are not reached here. */
int sink_give_up(sink_t *s)
{
    (void)s;
    return 1;
}

void sink_sleep_ms(sink_t *s, long long ms)
{
    (void)s;
    (void)ms;
}

static sink_t *sink_with(int32_t parts)
{
    sink_t *s = calloc(1, sizeof(*s));
    s->down_parts = parts;
    s->acked_next = calloc((size_t)parts + 1, sizeof(int64_t));
    return s;
}

static void sink_free(sink_t *s)
{
    sink_done_close(s);
    free(s->acked_next);
    free(s);
}

LT_TEST(format_and_parse)
{
    sink_t *s = sink_with(4);
    int64_t from[4] = {-1, 17, -1, 0}, got[4] = {-1, -1, -1, -1}, lo, hi;
    char *v = sink_intent_format(s, 100, 250, from);
    CHECK_STR(v, "100 250 1:17 3:0");
    CHECK_INT(sink_intent_parse(s, v, &lo, &hi, got), 0);
    CHECK_INT(lo, 100);
    CHECK_INT(hi, 250);
    CHECK_INT(got[0], -1);
    CHECK_INT(got[1], 17);
    CHECK_INT(got[2], -1);
    CHECK_INT(got[3], 0);
    free(v);
    /* no bounds at all */
    int64_t none[4] = {-1, -1, -1, -1};
    v = sink_intent_format(s, 5, 5, none);
    CHECK_STR(v, "5 5");
    CHECK_INT(sink_intent_parse(s, v, &lo, &hi, got), 0);
    free(v);
    sink_free(s);
}

LT_TEST(parse_merges_by_minimum)
{
    sink_t *s = sink_with(4);
    int64_t got[4] = {-1, 9, 30, -1}, lo, hi;
    CHECK_INT(sink_intent_parse(s, "1 2 1:12 2:7 3:40", &lo, &hi, got), 0);
    CHECK_INT(got[0], -1);
    CHECK_INT(got[1], 9); /* kept: lower */
    CHECK_INT(got[2], 7); /* taken: lower */
    CHECK_INT(got[3], 40);
    /* a partition past the count known here is ignored, not written */
    CHECK_INT(sink_intent_parse(s, "1 2 4:0 1000000:3", &lo, &hi, got), 0);
    /* range only */
    CHECK_INT(sink_intent_parse(s, "3 8 0:1", &lo, &hi, NULL), 0);
    CHECK_INT(lo, 3);
    CHECK_INT(hi, 8);
    CHECK_INT(got[0], -1);
    sink_free(s);
}

LT_TEST(parse_refuses_malformed)
{
    sink_t *s = sink_with(4);
    int64_t got[4] = {-1, -1, -1, -1}, lo, hi;
    static const char *const bad[] = {
        "",       "7",      "7 ",       "x 8",      "8 7",          "-1 3",     "1 2 3",
        "1 2 3:", "1 2 :4", "1 2 3:-4", "1 2 -3:4", "1 2 1:2 junk", "1 2  1:2", "1 2 1:2 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sink_intent_parse(s, bad[i], &lo, &hi, got) != -1) {
            fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
            CHECK(0);
        }
    }
    sink_free(s);
}

LT_TEST(placement_is_crc32_of_the_event_id)
{
    sink_t *s = sink_with(4);
    CHECK_INT(sink_partition_of(s, "0f8c4a52-9b1e-5c3d-8e7f-123456789abc"), 2);
    CHECK_INT(sink_partition_of(s, "427bd5fc-ceec-51a9-80f8-61e98ae5626b"), 0);
    s->down_parts = 12;
    CHECK_INT(sink_partition_of(s, "427bd5fc-ceec-51a9-80f8-61e98ae5626b"), 8);
    s->down_parts = 0; /* not known yet: librdkafka's choice */
    CHECK_INT(sink_partition_of(s, "427bd5fc-ceec-51a9-80f8-61e98ae5626b"), RD_KAFKA_PARTITION_UA);
    sink_free(s);
}

/* Expected partitions from Python ports of Kafka's murmur2 (the Java
 * client's Utils.murmur2, positive part) and 32-bit FNV-1a. */
LT_TEST(placement_follows_the_partitioner_named)
{
    static const char *a = "0f8c4a52-9b1e-5c3d-8e7f-123456789abc",
                      *b = "427bd5fc-ceec-51a9-80f8-61e98ae5626b";
    sink_t *s = sink_with(4);
    s->partitioner = sink_partitioner_named("consistent_random"); /* librdkafka's default */
    CHECK_INT(sink_partition_of(s, a), 2);
    CHECK_INT(sink_partition_of(s, b), 0);
    s->partitioner = sink_partitioner_named("murmur2_random"); /* the Java client's */
    CHECK_INT(sink_partition_of(s, a), 1);
    CHECK_INT(sink_partition_of(s, b), 2);
    s->partitioner = sink_partitioner_named("murmur2");
    CHECK_INT(sink_partition_of(s, a), 1);
    s->down_parts = 12;
    CHECK_INT(sink_partition_of(s, a), 5);
    s->partitioner = sink_partitioner_named("fnv1a");
    CHECK_INT(sink_partition_of(s, a), 9);
    CHECK_INT(sink_partition_of(s, b), 2);
    CHECK(sink_partitioner_named("fnv1a_random") == s->partitioner);
    CHECK(sink_partitioner_named("consistent") == rd_kafka_msg_partitioner_consistent);
    /* the key unused, or not a name: refused */
    CHECK(sink_partitioner_named("random") == NULL);
    CHECK(sink_partitioner_named("murmur3") == NULL);
    CHECK(sink_partitioner_named("") == NULL);
    CHECK(sink_partitioner_named(NULL) == NULL);
    sink_free(s);
}

LT_TEST(acked_moves_forward_only)
{
    sink_t *s = sink_with(2);
    s->acked_next[1] = 10;
    sink_acked(s, 1, 20);
    CHECK_INT(s->acked_next[1], 21);
    sink_acked(s, 1, 5); /* an earlier report never moves it back */
    CHECK_INT(s->acked_next[1], 21);
    sink_acked(s, 2, 99); /* outside the known partitions: ignored */
    sink_acked(s, -1, 99);
    CHECK_INT(s->acked_next[0], 0);
    sink_free(s);
}

LT_TEST(src_header_round_trip)
{
    char buf[SINK_SRC_MAX];
    int32_t p = -1;
    int64_t o = -1;
    size_t n = sink_src_format(buf, 3, 123456);
    CHECK_INT((long long)n, 8);
    CHECK(memcmp(buf, "3/123456", 8) == 0);
    CHECK_INT(sink_src_parse(buf, n, &p, &o), 0);
    CHECK_INT(p, 3);
    CHECK_INT(o, 123456);
    n = sink_src_format(buf, INT32_MAX, 999999999999999999LL);
    CHECK_INT(sink_src_parse(buf, n, &p, &o), 0);
    CHECK_INT(p, INT32_MAX);
    CHECK(o == 999999999999999999LL);
}

LT_TEST(src_header_refuses_malformed)
{
    static const char *const bad[] = {"",
                                      "3",
                                      "/5",
                                      "3/",
                                      "a/5",
                                      "3/5x",
                                      "-1/5",
                                      "3/-5",
                                      "3/5/6",
                                      " 3/5",
                                      "2147483648/1",
                                      "1/1234567890123456789",
                                      "1/00000000000000000000000000000001"};
    int32_t p = 7;
    int64_t o = 7;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sink_src_parse(bad[i], strlen(bad[i]), &p, &o) != -1) {
            fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
            CHECK(0);
        }
    }
    CHECK(sink_src_parse(NULL, 0, &p, &o) == -1);
    CHECK(p == 7 && o == 7); /* untouched */
}

/* sink_takeover_skips on input partition 2: the writes' offsets w (those
 * in unc "1" uncertain; NULL: all), the writes read back f ("p/o" pairs;
 * -1 for no header), the expected skip flags. */
static void skips_unc(const int64_t *w, const char *unc, size_t nw, const sink_found_t *f,
                      size_t nf, int prev_wrote, const char *want)
{
    uint8_t got[16], u[16];
    size_t n, ones = 0;
    for (size_t k = 0; k < nw; k++)
        u[k] = !unc || unc[k] == '1';
    n = sink_takeover_skips(2, w, u, nw, f, nf, prev_wrote, got);
    for (size_t k = 0; k < nw; k++) {
        ones += want[k] != '0';
        if (got[k] != (uint8_t)(want[k] - '0')) {
            fprintf(stderr, "write %zu: skip %d, want %c\n", k, got[k], want[k]);
            CHECK(0);
        }
    }
    CHECK_INT((long long)n, (long long)ones);
}

static void skips(const int64_t *w, size_t nw, const sink_found_t *f, size_t nf, int prev_wrote,
                  const char *want)
{
    skips_unc(w, NULL, nw, f, nf, prev_wrote, want);
}

#define F(p, o) \
    {           \
        0, p, o \
    }
#define NW(a) (sizeof(a) / sizeof(a[0]))

LT_TEST(takeover_skips)
{
    static const int64_t w1[] = {10, 20}, w10[] = {10}, w20[] = {20}, w3[] = {10, 20, 30};
    /* the dead sink wrote both, nothing after: neither again */
    static const sink_found_t both[] = {F(2, 10), F(2, 20)};
    skips(w1, NW(w1), both, NW(both), 0, "11");
    /* ... unless this sink still has a write of the id on its way */
    skips(w1, NW(w1), both, NW(both), 1, "00");
    /* the dead sink had 10 as unchanged and wrote only 20, last: 10 is an
     * earlier version, superseded (writing it again would leave it last,
     * and 20 would have to go again too) */
    static const sink_found_t only20[] = {F(2, 20)};
    skips(w1, NW(w1), only20, NW(only20), 0, "21");
    skips(w1, NW(w1), only20, NW(only20), 1, "00");
    /* a takeover split in batches: 10's batch sees 20 (a later offset) after
     * it downstream, which the next batch decides: 10 is not written again */
    skips(w10, NW(w10), both, NW(both), 0, "1");
    /* this sink wrote 10 again after the dead sink's 20 (landed): 20 must go
     * again, to be last */
    static const sink_found_t rewritten[] = {F(2, 10), F(2, 20), F(2, 10)};
    skips(w20, NW(w20), rewritten, NW(rewritten), 0, "0");
    /* the last copy decides: 10 is last downstream, so it is not written */
    skips(w10, NW(w10), rewritten, NW(rewritten), 0, "1");
    /* ... and with 20 in the batch too: 10 skipped, 20 goes again, last */
    skips(w1, NW(w1), rewritten, NW(rewritten), 0, "10");
    /* a later write of unknown source, or from another partition: unsafe */
    static const sink_found_t unknown[] = {F(2, 10), F(-1, -1)}, other[] = {F(2, 10), F(3, 50)};
    skips(w10, NW(w10), unknown, NW(unknown), 0, "0");
    skips(w10, NW(w10), other, NW(other), 0, "0");
    /* writes before it, from earlier offsets, do not matter */
    static const sink_found_t earlier[] = {F(2, 5), F(-1, -1), F(2, 20)};
    skips(w20, NW(w20), earlier, NW(earlier), 0, "1");
    /* 20 not found between two found: superseded by 30, left last */
    static const sink_found_t gap[] = {F(2, 10), F(2, 30)};
    skips(w3, NW(w3), gap, NW(gap), 0, "121");
    /* 30 not found: it goes again, after what is downstream */
    static const sink_found_t first2[] = {F(2, 10), F(2, 20)};
    skips(w3, NW(w3), first2, NW(first2), 0, "110");
    /* nothing read back */
    skips(w3, NW(w3), NULL, 0, 0, "000");
    /* 5 is outside every range (unchanged for the dead sink, so not written
     * by it): superseded by the 10 found after it (test_sink_crash_window
     * step 5) */
    static const int64_t w5[] = {5, 10};
    static const sink_found_t only10[] = {F(2, 10)}, five[] = {F(2, 5), F(2, 10)};
    skips_unc(w5, "01", NW(w5), only10, NW(only10), 0, "21");
    skips_unc(w5, "01", NW(w5), five, NW(five), 0, "21");
    skips_unc(w5, "11", NW(w5), five, NW(five), 0, "11");
    /* only an uncertain write found decides: 10 outside every range */
    skips_unc(w5, "10", NW(w5), only10, NW(only10), 0, "00");
    /* after the last one found, writes outside the range change nothing */
    static const int64_t w40[] = {10, 40};
    skips_unc(w40, "10", NW(w40), only10, NW(only10), 0, "10");
}

LT_TEST(finished_batches_covered_until_committed)
{
    sink_t *s = sink_with(2);
    static const int32_t part[] = {0, 1};
    static const int64_t lo[] = {10, 5}, hi[] = {20, 8}, bound[] = {3, -1};
    int64_t from[2] = {-1, 7}, l;
    CHECK_INT(sink_done_add(s, part, lo, hi, 2, bound, 1000), 0);
    l = 30;
    sink_done_cover(s, 0, &l, from, 1000);
    CHECK_INT(l, 10);
    CHECK_INT(from[0], 3);
    CHECK_INT(from[1], 7);
    sink_committed(s, 0, 21); /* partition 0 committed past it, 1 not */
    l = 30;
    sink_done_cover(s, 0, &l, NULL, 1000);
    CHECK_INT(l, 30);
    l = 9;
    sink_done_cover(s, 1, &l, NULL, 1000);
    CHECK_INT(l, 5);
    sink_committed(s, 1, 8); /* at hi: hi itself not committed yet */
    l = 9;
    sink_done_cover(s, 1, &l, NULL, 1000);
    CHECK_INT(l, 5);
    sink_committed(s, 1, 6); /* an older commit never moves it back */
    sink_committed(s, 1, 9);
    l = 9;
    from[0] = -1;
    sink_done_cover(s, 1, &l, from, 1000);
    CHECK_INT(l, 9);
    CHECK_INT(from[0], -1);
    CHECK_INT((long long)s->ndone, 0);
    /* commits that never come: dropped after SINK_DONE_AGE_MS */
    static const int64_t lo2[] = {30, 12}, hi2[] = {40, 15};
    CHECK_INT(sink_done_add(s, part, lo2, hi2, 2, bound, 1000), 0);
    l = 100;
    sink_done_cover(s, 1, &l, NULL, 1000 + SINK_DONE_AGE_MS);
    CHECK_INT(l, 12);
    sink_done_cover(s, 1, &l, NULL, 1001 + SINK_DONE_AGE_MS);
    CHECK_INT((long long)s->ndone, 0);
    sink_free(s);
}

LT_TEST(finished_batches_merged_when_full)
{
    sink_t *s = sink_with(2);
    static const int32_t p0[] = {0}, p1[] = {1};
    for (int64_t i = 0; i < SINK_DONE_MAX + 10; i++) {
        int64_t lo = 100 + 10 * i, hi = lo + 9, bound[2] = {1000 + i, i == 0 ? 50 : 2000 + i};
        CHECK_INT(sink_done_add(s, i % 2 ? p1 : p0, &lo, &hi, 1, bound, 5000), 0);
    }
    CHECK_INT((long long)s->ndone, SINK_DONE_MAX);
    int64_t l = 1 << 30, from[2] = {-1, -1};
    sink_done_cover(s, 0, &l, from, 5000);
    CHECK_INT(l, 100); /* the oldest range survives its merges */
    CHECK_INT(from[0], 1000);
    CHECK_INT(from[1], 50);
    l = 1 << 30;
    sink_done_cover(s, 1, &l, NULL, 5000);
    CHECK_INT(l, 110);
    sink_free(s);
}

int main(void)
{
    LT_RUN(format_and_parse);
    LT_RUN(parse_merges_by_minimum);
    LT_RUN(parse_refuses_malformed);
    LT_RUN(placement_is_crc32_of_the_event_id);
    LT_RUN(placement_follows_the_partitioner_named);
    LT_RUN(acked_moves_forward_only);
    LT_RUN(src_header_round_trip);
    LT_RUN(src_header_refuses_malformed);
    LT_RUN(takeover_skips);
    LT_RUN(finished_batches_covered_until_committed);
    LT_RUN(finished_batches_merged_when_full);
    return LT_DONE();
}
