/* The sink's intents (services/sink/intent.c): the value's format and
 * parse (round trip, merging bounds by minimum, partitions past the known
 * count ignored, malformed values refused), where a write is placed (crc32
 * of the event_id, the placement librdkafka's default partitioner gives; the
 * expected partitions come from Python's zlib.crc32), and acknowledged
 * offsets only moving forward. */
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

int main(void)
{
    LT_RUN(format_and_parse);
    LT_RUN(parse_merges_by_minimum);
    LT_RUN(parse_refuses_malformed);
    LT_RUN(placement_is_crc32_of_the_event_id);
    LT_RUN(acked_moves_forward_only);
    return LT_DONE();
}
