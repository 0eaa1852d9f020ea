/* The sink's ltv.event.v1 rules (services/sink/validate.c, from the sink's
 * core library): a valid event of every type passes; each broken field is
 * refused with a reason naming it. */
#include <stdlib.h>
#include <string.h>
#include "lt_dedupe.h"
#include "lt_json.h"
#include "sink.h"
#include "lt_test.h"
#include "lt_uuid.h"

static cJSON *base_event(const char *type)
{
    char id[37], err[128];
    const char *json =
        "{\"schema\":\"ltv.event.v1\",\"event_id\":\"\",\"type\":\"payment\","
        "\"subtype\":\"initial\",\"integration_id\":\"acme-1\",\"brand\":\"konnektive\","
        "\"customer_id\":\"c1\",\"order_id\":\"o1\",\"transaction_id\":\"t1\","
        "\"occurred_at\":\"2024-03-10T07:30:00Z\",\"local_date\":\"2024-03-10\","
        "\"local_time\":\"03:30:00\",\"timezone\":\"America/New_York\","
        "\"date_precision\":\"second\",\"amount_minor\":1999,\"currency\":\"USD\","
        "\"billing_cycle\":1,\"campaign_id\":\"3\",\"product_ids\":[\"7\"],"
        "\"affiliate_id\":null,\"source\":{\"stream\":\"transactions\",\"record_id\":\"t1\","
        "\"fetched_at\":\"2024-03-11T00:00:00Z\",\"date_updated\":\"2024-03-10 03:30:00\"}}";
    cJSON *ev = lt_json_parse(json, strlen(json), 1 << 16, err, sizeof(err));
    lt_uuid_v5(LT_UUID_NS_LTVSYNC, type, strlen(type), id);
    cJSON_ReplaceItemInObject(ev, "event_id", cJSON_CreateString(id));
    cJSON_ReplaceItemInObject(ev, "type", cJSON_CreateString(type));
    return ev;
}

static void set(cJSON *ev, const char *key, cJSON *v)
{
    if (cJSON_GetObjectItemCaseSensitive(ev, key))
        cJSON_ReplaceItemInObjectCaseSensitive(ev, key, v);
    else
        cJSON_AddItemToObject(ev, key, v);
}

/* An event of each type, shaped as the normalizer writes it. */
static cJSON *typed(const char *type)
{
    cJSON *ev = base_event(type);
    int neg = !strcmp(type, "refund") || !strcmp(type, "void") || !strcmp(type, "chargeback");
    if (strcmp(type, "payment"))
        set(ev, "subtype", cJSON_CreateNull());
    if (neg)
        set(ev, "amount_minor", cJSON_CreateNumber(-1999));
    if (!strcmp(type, "chargeback") || !strcmp(type, "chargeback_reversal"))
        set(ev, "occurrence", cJSON_CreateNumber(1));
    if (!strcmp(type, "decline")) {
        set(ev, "subtype", cJSON_CreateString("soft"));
        set(ev, "amount_minor", cJSON_CreateNumber(0));
        set(ev, "attempted_minor", cJSON_CreateNumber(1999));
    }
    if (!strcmp(type, "customer") || !strcmp(type, "subscription")) {
        set(ev, "amount_minor", cJSON_CreateNull());
        set(ev, "currency", cJSON_CreateNull());
        set(ev, "transaction_id", cJSON_CreateNull());
    }
    if (!strcmp(type, "subscription")) {
        set(ev, "subscription_id", cJSON_CreateString("p9"));
        set(ev, "status", cJSON_CreateString("ACTIVE"));
        set(ev, "next_bill_date", cJSON_CreateNull());
    }
    if (strcmp(type, "customer") && strcmp(type, "subscription") && strcmp(type, "order"))
        set(ev, "recycle_number", cJSON_CreateNumber(0));
    if (!strcmp(type, "refund"))
        set(ev, "refund_reason", cJSON_CreateString("Customer request"));
    if (!strcmp(type, "order")) {
        char err[128];
        const char *items = "[{\"product_id\":\"7\",\"quantity\":1,\"price_minor\":1999}]";
        const char *totals = "{\"total_minor\":1999,\"price_minor\":1999,"
                             "\"shipping_minor\":0,\"tax_minor\":null,\"discount_minor\":0}";
        set(ev, "amount_minor", cJSON_CreateNull());
        set(ev, "transaction_id", cJSON_CreateNull());
        set(ev, "order_type", cJSON_CreateString("NEW_SALE"));
        set(ev, "order_status", cJSON_CreateString("COMPLETE"));
        set(ev, "coupon_code", cJSON_CreateNull());
        set(ev, "has_upsell", cJSON_CreateFalse());
        set(ev, "items", lt_json_parse(items, strlen(items), 1 << 16, err, sizeof(err)));
        set(ev, "totals", lt_json_parse(totals, strlen(totals), 1 << 16, err, sizeof(err)));
        set(cJSON_GetObjectItem(ev, "source"), "stream", cJSON_CreateString("orders"));
    }
    return ev;
}

/* Validates ev (then frees it); returns the reason, "" when valid. */
static const char *verdict(cJSON *ev)
{
    static char why[256];
    sink_event_info_t info;
    why[0] = '\0';
    if (sink_validate(ev, &info, why, sizeof(why)) == 0)
        why[0] = '\0';
    else if (!why[0])
        snprintf(why, sizeof(why), "?");
    cJSON_Delete(ev);
    return why;
}

#define REFUSED(ev, word) CHECK(strstr(verdict(ev), (word)) != NULL)

LT_TEST(every_type_valid)
{
    for (int i = 0; i < LT_EV_COUNT; i++) {
        const char *why = verdict(typed(lt_evtype_name((lt_evtype_t)i)));
        if (why[0])
            fprintf(stderr, "%s: %s\n", lt_evtype_name((lt_evtype_t)i), why);
        CHECK_STR(why, "");
    }
}

LT_TEST(info_filled)
{
    cJSON *ev = typed("refund");
    sink_event_info_t info;
    char why[128];
    CHECK(sink_validate(ev, &info, why, sizeof(why)) == 0);
    CHECK_INT(info.type, LT_EV_REFUND);
    CHECK_STR(info.event_id, cJSON_GetObjectItem(ev, "event_id")->valuestring);
    CHECK_INT(lt_dedupe_bucket(info.id) < LT_DEDUPE_BUCKETS, 1);
    cJSON_Delete(ev);
}

LT_TEST(wrong_signs)
{
    cJSON *ev = typed("payment");
    set(ev, "amount_minor", cJSON_CreateNumber(-5));
    REFUSED(ev, "amount_minor: must be >= 0");
    ev = typed("refund");
    set(ev, "amount_minor", cJSON_CreateNumber(5));
    REFUSED(ev, "amount_minor: must be <= 0");
    ev = typed("decline");
    set(ev, "amount_minor", cJSON_CreateNumber(5));
    REFUSED(ev, "must be 0");
    ev = typed("chargeback_reversal");
    set(ev, "amount_minor", cJSON_CreateNumber(-5));
    REFUSED(ev, ">= 0");
    ev = typed("customer");
    set(ev, "amount_minor", cJSON_CreateNumber(0));
    REFUSED(ev, "must be null");
    ev = typed("payment");
    set(ev, "amount_minor", cJSON_CreateNumber(19.99));
    REFUSED(ev, "amount_minor");
    ev = typed("payment");
    set(ev, "amount_minor", cJSON_CreateString("1999"));
    REFUSED(ev, "amount_minor");
    ev = typed("payment");
    set(ev, "amount_minor", cJSON_CreateNumber(1e17)); /* beyond I-JSON */
    REFUSED(ev, "amount_minor");
}

LT_TEST(bad_dates)
{
    cJSON *ev = typed("payment");
    set(ev, "local_date", cJSON_CreateString("2023-02-29"));
    REFUSED(ev, "local_date");
    ev = typed("payment");
    set(ev, "local_date", cJSON_CreateString("2024-3-10"));
    REFUSED(ev, "local_date");
    ev = typed("payment");
    set(ev, "local_date", cJSON_CreateString("2024-03-12"));
    REFUSED(ev, "more than a day");
    ev = typed("payment");
    set(ev, "occurred_at", cJSON_CreateString("2024-03-10T07:30:00+00:00"));
    REFUSED(ev, "occurred_at");
    ev = typed("payment");
    set(ev, "occurred_at", cJSON_CreateString("2024-03-10 07:30:00Z"));
    REFUSED(ev, "occurred_at");
    ev = typed("payment");
    set(ev, "occurred_at", cJSON_CreateString("2024-03-10T24:00:00Z"));
    REFUSED(ev, "occurred_at");
    ev = typed("payment");
    set(ev, "local_time", cJSON_CreateString("3:30:00"));
    REFUSED(ev, "local_time");
    /* is_time reads HH:MM:SS itself: the edges of each part */
    static const char *const bad_times[] = {"24:00:00", "23:60:00", "23:59:60", "23-59-59",
                                            "2a:00:00", "23:59:5",  "23:59:590"};
    for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
        ev = typed("payment");
        set(ev, "local_time", cJSON_CreateString(bad_times[i]));
        REFUSED(ev, "local_time");
    }
    ev = typed("payment");
    set(ev, "local_time", cJSON_CreateString("23:59:59"));
    CHECK_STR(verdict(ev), "");
    ev = typed("payment");
    set(ev, "local_time", cJSON_CreateString("00:00:00"));
    CHECK_STR(verdict(ev), "");
}

/* is_id reads its bytes by table: the class and the 1..64 length edges. */
LT_TEST(id_edges)
{
    static const char *const good[] = {"a", "Z9_.:-",
                                       "0123456789012345678901234567890123456789"
                                       "012345678901234567890123"};
    static const char *const bad[] = {"",
                                      "a b",
                                      "a/b",
                                      "\xc3\xa9",
                                      "a\x01",
                                      "0123456789012345678901234567890123456789"
                                      "0123456789012345678901234"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cJSON *ev = typed("payment");
        set(ev, "campaign_id", cJSON_CreateString(good[i]));
        CHECK_STR(verdict(ev), "");
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *ev = typed("payment");
        set(ev, "campaign_id", cJSON_CreateString(bad[i]));
        REFUSED(ev, "campaign_id");
    }
}

LT_TEST(bad_fields)
{
    cJSON *ev = typed("payment");
    cJSON_DeleteItemFromObject(ev, "currency");
    REFUSED(ev, "currency: missing");
    ev = typed("payment");
    set(ev, "currency", cJSON_CreateString("usd"));
    REFUSED(ev, "currency");
    ev = typed("payment");
    set(ev, "schema", cJSON_CreateString("ltv.event.v2"));
    REFUSED(ev, "schema");
    ev = typed("payment");
    set(ev, "type", cJSON_CreateString("gift"));
    REFUSED(ev, "type");
    ev = typed("payment");
    set(ev, "event_id", cJSON_CreateString("0F8C4A52-9B1E-5C3D-8E7F-123456789ABC"));
    REFUSED(ev, "event_id");
    ev = typed("payment");
    set(ev, "event_id", cJSON_CreateString("0f8c4a52-9b1e-4c3d-8e7f-123456789abc"));
    REFUSED(ev, "event_id"); /* version 4 */
    ev = typed("payment");
    set(ev, "integration_id", cJSON_CreateString("Acme"));
    REFUSED(ev, "integration_id");
    ev = typed("payment");
    set(ev, "subtype", cJSON_CreateString("soft"));
    REFUSED(ev, "subtype");
    ev = typed("payment");
    set(ev, "extra", cJSON_CreateTrue());
    REFUSED(ev, "extra: unknown field");
    ev = typed("payment");
    set(ev, "transaction_id", cJSON_CreateNull());
    REFUSED(ev, "transaction_id");
    ev = typed("payment");
    set(ev, "product_ids", cJSON_CreateString("7"));
    REFUSED(ev, "product_ids");
    ev = typed("chargeback");
    cJSON_DeleteItemFromObject(ev, "occurrence");
    REFUSED(ev, "occurrence");
    ev = typed("subscription");
    cJSON_DeleteItemFromObject(ev, "status");
    REFUSED(ev, "status");
    ev = typed("payment");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(ev, "source"), "record_id");
    REFUSED(ev, "source.record_id");
    ev = typed("payment");
    cJSON_AddStringToObject(cJSON_GetObjectItem(ev, "source"), "x", "y");
    REFUSED(ev, "source.x");
    ev = typed("payment");
    set(cJSON_GetObjectItem(ev, "source"), "stream", cJSON_CreateString("campaigns"));
    REFUSED(ev, "source.stream");
    REFUSED(cJSON_CreateArray(), "not a JSON object");
}

static cJSON *json(const char *s)
{
    char err[128];
    return lt_json_parse(s, strlen(s), 1 << 16, err, sizeof(err));
}

/* The dimensions: each where its type allows it, well formed. */
LT_TEST(dimensions)
{
    static const char long_text[] = /* 255 characters of 2 bytes: fits */
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
    char text[600] = "";
    cJSON *ev = typed("payment");
    set(ev, "source_values", json("[\"fb\",null,null,null,\"x\"]"));
    CHECK_STR(verdict(ev), "");
    for (int i = 0; i < 25; i++)
        strcat(text, long_text);
    strcat(text, "abcde"); /* 255 characters, 505 bytes */
    ev = typed("refund");
    set(ev, "refund_reason", cJSON_CreateString(text));
    CHECK_STR(verdict(ev), "");
    strcat(text, "f");
    ev = typed("refund");
    set(ev, "refund_reason", cJSON_CreateString(text));
    REFUSED(ev, "refund_reason: invalid");
    ev = typed("payment");
    set(ev, "source_values", json("[\"fb\",null,null,null]"));
    REFUSED(ev, "source_values: invalid");
    ev = typed("payment");
    set(ev, "source_values", json("[\"fb\",null,null,null,7]"));
    REFUSED(ev, "source_values: invalid");
    ev = typed("customer");
    set(ev, "source_values", json("[\"fb\",null,null,null,null]"));
    REFUSED(ev, "source_values: not allowed");
    ev = typed("payment");
    cJSON_DeleteItemFromObject(ev, "recycle_number");
    REFUSED(ev, "recycle_number: required");
    ev = typed("order");
    set(ev, "recycle_number", cJSON_CreateNumber(1));
    REFUSED(ev, "recycle_number: not allowed");
    ev = typed("refund");
    cJSON_DeleteItemFromObject(ev, "refund_reason");
    REFUSED(ev, "refund_reason: required");
    ev = typed("void");
    set(ev, "refund_reason", cJSON_CreateNull());
    REFUSED(ev, "refund_reason: not allowed");
    ev = typed("payment");
    set(ev, "coupon_code", cJSON_CreateString("SAVE10"));
    REFUSED(ev, "coupon_code: not allowed");
    ev = typed("order");
    cJSON_DeleteItemFromObject(ev, "totals");
    REFUSED(ev, "totals: required");
    ev = typed("order");
    set(ev, "amount_minor", cJSON_CreateNumber(5));
    REFUSED(ev, "amount_minor: must be null");
    ev = typed("order");
    set(ev, "currency", cJSON_CreateNull());
    REFUSED(ev, "currency: required");
    ev = typed("order");
    set(ev, "transaction_id", cJSON_CreateString("t1"));
    REFUSED(ev, "transaction_id: null");
    ev = typed("order");
    set(ev, "has_upsell", cJSON_CreateNumber(1));
    REFUSED(ev, "has_upsell: invalid");
    ev = typed("order");
    set(ev, "items", json("[{\"product_id\":\"7\",\"quantity\":1}]"));
    REFUSED(ev, "items: invalid");
    ev = typed("order");
    set(ev, "items", json("[{\"product_id\":\"7\",\"quantity\":1,\"price_minor\":-1}]"));
    REFUSED(ev, "items: invalid");
    ev = typed("order");
    set(ev, "items", json("[{\"product_id\":\"7\",\"quantity\":1,\"name\":\"x\"}]"));
    REFUSED(ev, "items: invalid");
    ev = typed("order");
    set(ev, "totals",
        json("{\"total_minor\":1,\"price_minor\":1,\"shipping_minor\":0,"
             "\"tax_minor\":0,\"fee_minor\":0}"));
    REFUSED(ev, "totals: invalid");
    ev = typed("order");
    set(ev, "order_type",
        cJSON_CreateString("NEW_SALE_WITH_A_NAME_LONGER_THAN_SIXTY_FOUR_"
                           "CHARACTERS_IN_ALL_OF_IT"));
    REFUSED(ev, "order_type: invalid");
}

int main(void)
{
    LT_RUN(every_type_valid);
    LT_RUN(info_filled);
    LT_RUN(wrong_signs);
    LT_RUN(dimensions);
    LT_RUN(bad_dates);
    LT_RUN(bad_fields);
    LT_RUN(id_edges);
    return LT_DONE();
}
