/* The sink's fast content hash and its Redis field layout: the validator's
 * hash (members in known order, no sort) equals lt_dedupe_content_hash on
 * every event type and key order, so state recorded before stays valid;
 * out-of-order or repeated members fall back with the general path's reason;
 * integer formatting matches "%lld"; bucket names and fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_dedupe.h"
#include "lt_json.h"
#include "lt_jtree.h"
#include "lt_test.h"
#include "sink.h"

/* Events as the normalizer writes them, one of each shape, and the same
 * members in other orders. */
#define HEAD                                                                               \
    "\"schema\":\"ltv.event.v1\",\"event_id\":\"0f8c4a52-9b1e-5c3d-8e7f-123456789abc\","   \
    "\"integration_id\":\"acme-1\",\"brand\":\"konnektive\",\"customer_id\":\"c1\","       \
    "\"order_id\":\"o1\",\"occurred_at\":\"2024-03-10T07:30:00Z\","                        \
    "\"local_date\":\"2024-03-10\",\"local_time\":\"03:30:00\","                           \
    "\"timezone\":\"America/New_York\",\"date_precision\":\"second\",\"billing_cycle\":1," \
    "\"campaign_id\":\"3\",\"product_ids\":[\"7\",\"8\"],\"affiliate_id\":null,"
#define SOURCE                                                      \
    "\"source\":{\"stream\":\"transactions\",\"record_id\":\"t1\"," \
    "\"fetched_at\":\"2024-03-11T00:00:00Z\",\"date_updated\":\"2024-03-10 03:30:00\"}"

static const char *const events[] = {
    "{" HEAD "\"type\":\"payment\",\"subtype\":\"initial\",\"transaction_id\":\"t1\","
    "\"amount_minor\":1999,\"currency\":\"USD\",\"recycle_number\":0," SOURCE "}",
    "{" HEAD "\"type\":\"refund\",\"subtype\":null,\"transaction_id\":\"t2\","
    "\"amount_minor\":-1999,\"currency\":\"USD\",\"recycle_number\":2,"
    "\"parent_transaction_id\":\"t1\",\"refund_reason\":\"Customer \\\"request\\\"\","
    "\"source_values\":[\"fb\",null,null,null,\"x\\u00e9\"]," SOURCE "}",
    "{" HEAD "\"type\":\"decline\",\"subtype\":\"soft\",\"transaction_id\":\"t3\","
    "\"amount_minor\":0,\"attempted_minor\":9007199254740991,\"currency\":\"USD\","
    "\"recycle_number\":1," SOURCE "}",
    "{" HEAD "\"type\":\"chargeback\",\"subtype\":null,\"transaction_id\":\"t4\","
    "\"amount_minor\":-5,\"currency\":\"USD\",\"recycle_number\":0,\"occurrence\":2,"
    "\"chargeback_reason_code\":\"4837\"," SOURCE "}",
    "{" HEAD "\"type\":\"order\",\"subtype\":null,\"transaction_id\":null,\"amount_minor\":null,"
    "\"currency\":\"USD\",\"order_type\":\"NEW_SALE\",\"order_status\":\"COMPLETE\","
    "\"coupon_code\":null,\"has_upsell\":true,\"items\":[{\"product_id\":\"7\",\"quantity\":2,"
    "\"price_minor\":1000}],\"totals\":{\"total_minor\":2000,\"price_minor\":2000,"
    "\"shipping_minor\":null,\"tax_minor\":0,\"discount_minor\":0}," SOURCE "}",
    "{" SOURCE "," HEAD "\"type\":\"subscription\",\"subtype\":null,\"transaction_id\":null,"
    "\"amount_minor\":null,\"currency\":null,\"subscription_id\":\"p1\","
    "\"status\":\"ACTIVE\",\"next_bill_date\":null}",
};

static cJSON *parse(const char *json)
{
    char err[128];
    cJSON *ev = lt_json_parse(json, strlen(json), 1 << 16, err, sizeof(err));
    CHECK(ev != NULL);
    return ev;
}

LT_TEST(validator_hash_equals_general_hash)
{
    lt_buf_t scratch = {0};
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        char why[256] = "";
        sink_event_info_t info;
        uint64_t fast = 0, general = 1;
        cJSON *ev = parse(events[i]);
        int rc = sink_validate_hash(ev, &info, &scratch, &fast, why, sizeof(why));
        if (rc != 0)
            fprintf(stderr, "event %zu: %s\n", i, why);
        CHECK_INT(rc, 0);
        CHECK(lt_dedupe_content_hash(ev, &general, why, sizeof(why)) == 0);
        CHECK(fast == general);
        cJSON_Delete(ev);
    }
    lt_buf_release(&scratch);
}

/* Every rotation of the members hashes the same on both paths. */
LT_TEST(member_order_does_not_matter)
{
    lt_buf_t scratch = {0};
    cJSON *ev = parse(events[4]);
    uint64_t want = 0;
    char why[256];
    int n = cJSON_GetArraySize(ev);
    CHECK(lt_dedupe_content_hash(ev, &want, why, sizeof(why)) == 0);
    for (int r = 0; r < n; r++) {
        sink_event_info_t info;
        uint64_t got = 0;
        cJSON *first = cJSON_DetachItemFromArray(ev, 0);
        cJSON_AddItemToArray(ev, first); /* keeps its key */
        CHECK_INT(sink_validate_hash(ev, &info, &scratch, &got, why, sizeof(why)), 0);
        CHECK(got == want);
    }
    cJSON_Delete(ev);
    lt_buf_release(&scratch);
}

LT_TEST(repeated_member_takes_the_general_reason)
{
    lt_buf_t scratch = {0};
    char json[2048], why[256] = "";
    sink_event_info_t info;
    uint64_t h;
    cJSON *ev;
    snprintf(json, sizeof(json), "%.*s,\"billing_cycle\":1}", (int)strlen(events[0]) - 1,
             events[0]);
    ev = parse(json);
    CHECK_INT(sink_validate_hash(ev, &info, &scratch, &h, why, sizeof(why)), -1);
    CHECK(strstr(why, "duplicate") != NULL);
    cJSON_Delete(ev);
    lt_buf_release(&scratch);
}

LT_TEST(members_hash_needs_strict_order)
{
    lt_buf_t scratch = {0};
    cJSON *ev = parse("{\"a\":1,\"b\":[-12,0,3.5],\"c\":{\"y\":null,\"x\":\"\\n\"}}");
    const cJSON *m[3] = {ev->child, ev->child->next, ev->child->next->next};
    const cJSON *swapped[3] = {m[1], m[0], m[2]}, *dup[3] = {m[0], m[0], m[2]};
    uint64_t fast = 0, general = 1;
    char why[128];
    CHECK_INT(lt_dedupe_members_hash(m, 3, &scratch, &fast), 0);
    CHECK(lt_dedupe_content_hash(ev, &general, why, sizeof(why)) == 0);
    CHECK(fast == general);
    CHECK_INT(lt_dedupe_members_hash(swapped, 3, &scratch, &fast), -1);
    CHECK_INT(lt_dedupe_members_hash(dup, 3, &scratch, &fast), -1);
    cJSON_Delete(ev);
    lt_buf_release(&scratch);
}

/* Keys given in canonical form hash as the general path does; "source"
 * leaves its fetched_at out only at the position given. */
LT_TEST(keyed_hash_equals_general_hash)
{
    lt_buf_t scratch = {0};
    cJSON *ev = parse("{\"a\":1,\"source\":{\"stream\":\"s\",\"fetched_at\":\"x\"},"
                      "\"z\":[-12,0,3.5,\"\\n\"]}");
    const cJSON *v[3] = {ev->child, ev->child->next, ev->child->next->next};
    const char *keys[3] = {"\"a\":", "\"source\":", "\"z\":"};
    size_t klens[3] = {4, 9, 4};
    uint64_t fast = 0, general = 1;
    char why[128];
    CHECK(lt_dedupe_content_hash(ev, &general, why, sizeof(why)) == 0);
    CHECK_INT(lt_dedupe_keyed_hash(keys, klens, v, 3, 1, &scratch, &fast), 0);
    CHECK(fast == general);
    CHECK_INT(lt_dedupe_keyed_hash(keys, klens, v, 3, 3, &scratch, &fast), 0);
    CHECK(fast != general); /* fetched_at counted */
    cJSON_Delete(ev);
    lt_buf_release(&scratch);
}

/* The sink reads events with lt_jtree: its trees hash as cJSON's do. */
LT_TEST(jtree_trees_hash_as_cjson_trees)
{
    lt_buf_t scratch = {0};
    lt_jarena_t *arena = lt_jarena_new();
    CHECK(arena != NULL);
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        char why[256] = "";
        sink_event_info_t info;
        uint64_t fast = 0, general = 1;
        cJSON *ev = parse(events[i]);
        const cJSON *t;
        lt_jarena_reset(arena);
        t = lt_jtree_parse(arena, events[i], strlen(events[i]), 1 << 16, why, sizeof(why));
        CHECK(t != NULL);
        CHECK_INT(sink_validate_hash(t, &info, &scratch, &fast, why, sizeof(why)), 0);
        CHECK(lt_dedupe_content_hash(ev, &general, why, sizeof(why)) == 0);
        CHECK(fast == general);
        cJSON_Delete(ev);
    }
    lt_jarena_destroy(arena);
    lt_buf_release(&scratch);
}

/* A key repeated inside source: the general path's reason too. */
LT_TEST(repeated_source_member_takes_the_general_reason)
{
    lt_buf_t scratch = {0};
    char json[2048], why[256] = "";
    const char *at = strstr(events[0], "\"source\":{");
    sink_event_info_t info;
    uint64_t h;
    cJSON *ev;
    CHECK(at != NULL);
    snprintf(json, sizeof(json), "%.*s\"source\":{\"stream\":\"orders\",%s", (int)(at - events[0]),
             events[0], at + strlen("\"source\":{"));
    ev = parse(json);
    CHECK_INT(sink_validate_hash(ev, &info, &scratch, &h, why, sizeof(why)), -1);
    CHECK(strstr(why, "duplicate") != NULL);
    cJSON_Delete(ev);
    lt_buf_release(&scratch);
}

/* Integers print as "%lld" did, at the edges of the exact range too. */
LT_TEST(integers_print_as_before)
{
    static const char *const nums[] = {
        "0", "-1", "7", "-10", "1000000", "9007199254740992", "-9007199254740992"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        char json[64], want[64], why[128];
        size_t len;
        snprintf(json, sizeof(json), "[%s]", nums[i]);
        snprintf(want, sizeof(want), "[%s]", nums[i]);
        cJSON *ev = parse(json);
        char *c = lt_dedupe_canonical(ev, &len, why, sizeof(why));
        CHECK_STR(c, want);
        free(c);
        cJSON_Delete(ev);
    }
}

LT_TEST(bucket_names_and_fields)
{
    uint8_t id[16], f[LT_DEDUPE_FIELD_BYTES];
    char hex[5] = "";
    CHECK(lt_dedupe_uuid_parse("0f8c4a52-9b1e-5c3d-8e7f-123456789abc", 36, id) == 0);
    lt_dedupe_bucket_hex(id, hex);
    CHECK_STR(hex, "03e3"); /* 0x0f8c >> 2 */
    lt_dedupe_field(id, f);
    CHECK_INT(f[0], 0x4a);
    CHECK_INT(f[3], 0x1e);
    memset(id, 0xff, sizeof(id));
    lt_dedupe_bucket_hex(id, hex);
    CHECK_STR(hex, "3fff");
}

int main(void)
{
    LT_RUN(validator_hash_equals_general_hash);
    LT_RUN(member_order_does_not_matter);
    LT_RUN(repeated_member_takes_the_general_reason);
    LT_RUN(members_hash_needs_strict_order);
    LT_RUN(keyed_hash_equals_general_hash);
    LT_RUN(jtree_trees_hash_as_cjson_trees);
    LT_RUN(repeated_source_member_takes_the_general_reason);
    LT_RUN(integers_print_as_before);
    LT_RUN(bucket_names_and_fields);
    return LT_DONE();
}
