/* Unit tests for lt_event: README.md "Canonical events", dates, signs, ids, DLQ reasons,
 * chargeback state. The end-to-end comparison with the Python oracle is
 * tests/integration/test_normalizer_e2e.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_event.h"
#include "lt_json.h"
#include "lt_test.h"
#include "lt_uuid.h"

static lt_event_list_t evs;
static char err[256];

/* Builds the events of one JSON record for integration "acme" in New York. */
static lt_err_t build(lt_stream_t stream, const char *json, const lt_cb_state_t *cb)
{
    cJSON *rec = cJSON_Parse(json);
    lt_event_input_t in = {.integration_id = "acme",
                           .brand = "konnektive",
                           .tz = lt_tz_get("America/New_York", err, sizeof(err)),
                           .currency = "USD",
                           .stream = stream,
                           .fetched_at = "2024-12-01T00:00:00Z",
                           .record = rec,
                           .cb = cb};
    lt_event_fields_t fx;
    lt_event_list_t first = {0};
    char first_err[sizeof(err)];
    /* once indexing inside, once with the caller's index: the same result */
    err[0] = '\0';
    lt_err_t rc0 = lt_event_build(&in, &first, first_err, sizeof(first_err));
    lt_event_index(rec, &fx);
    in.fields = &fx;
    lt_err_t rc = lt_event_build(&in, &evs, err, sizeof(err));
    CHECK_INT(rc0, rc);
    CHECK_INT(first.n, evs.n);
    if (rc != LT_OK)
        CHECK_STR(first_err, err);
    for (size_t i = 0; i < first.n && i < evs.n; i++)
        CHECK_STR(first.ev[i].json, evs.ev[i].json);
    lt_event_list_release(&first);
    cJSON_Delete(rec);
    return rc;
}

/* Field of event i as text ("null", "123", or the string without quotes). */
static const char *field(size_t i, const char *key)
{
    static char buf[1024];
    cJSON *root = i < evs.n ? cJSON_Parse(evs.ev[i].json) : NULL;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it)
        snprintf(buf, sizeof(buf), "(absent)");
    else if (cJSON_IsString(it))
        snprintf(buf, sizeof(buf), "%s", it->valuestring);
    else if (cJSON_IsNumber(it))
        snprintf(buf, sizeof(buf), "%.0f", it->valuedouble);
    else if (cJSON_IsNull(it))
        snprintf(buf, sizeof(buf), "null");
    else {
        char *s = cJSON_PrintUnformatted(it);
        snprintf(buf, sizeof(buf), "%s", s);
        free(s);
    }
    cJSON_Delete(root);
    return buf;
}

static const char *expected_id(const char *name)
{
    static char id[37];
    lt_uuid_v5(LT_UUID_NS_LTVSYNC, name, strlen(name), id);
    return id;
}

#define TXN(extra)                                                                               \
    "{\"transactionId\":1001,\"parentTxnId\":null,\"dateCreated\":\"2024-03-10 02:30:00\","      \
    "\"dateUpdated\":\"2024-04-02 09:00:00\",\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\"," \
    "\"totalAmount\":\"29.99\",\"currencyCode\":\"USD\",\"orderId\":\"7B83FF8095\","             \
    "\"orderType\":\"NEW_SALE\",\"billingCycleNumber\":1,\"campaignId\":\"12\",\"customerId\":"  \
    "501,"                                                                                       \
    "\"affId\":\"AFF3\",\"achAccountNumber\":\"SECRET123\",\"emailAddress\":\"a@b.c\","          \
    "\"isChargedback\":0" extra "}"

LT_TEST(payment_initial_in_gap)
{
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, TXN(""), NULL), LT_OK);
    CHECK_INT(evs.n, 1);
    CHECK_STR(field(0, "type"), "payment");
    CHECK_STR(field(0, "subtype"), "initial");
    CHECK_STR(field(0, "event_id"), expected_id("acme/transactions/1001/payment"));
    /* 02:30 does not exist on 2024-03-10 in New York: EST reading, 03:30 EDT */
    CHECK_STR(field(0, "occurred_at"), "2024-03-10T07:30:00Z");
    CHECK_STR(field(0, "local_date"), "2024-03-10");
    CHECK_STR(field(0, "local_time"), "03:30:00");
    CHECK_STR(field(0, "amount_minor"), "2999");
    CHECK_STR(field(0, "currency"), "USD");
    CHECK_STR(field(0, "customer_id"), "501");
    CHECK_STR(field(0, "order_id"), "7B83FF8095");
    CHECK_STR(field(0, "transaction_id"), "1001");
    CHECK_STR(field(0, "campaign_id"), "12");
    CHECK_STR(field(0, "billing_cycle"), "1");
    CHECK_STR(field(0, "affiliate_id"), "AFF3");
    CHECK_STR(field(0, "schema"), "ltv.event.v1");
    CHECK_STR(evs.key, "acme/501");
    CHECK(strstr(evs.ev[0].json, "SECRET123") == NULL);
    CHECK(strstr(evs.ev[0].json, "a@b.c") == NULL);
    CHECK(strchr(evs.ev[0].json, '\n') == NULL);
}

/* affiliate_id is kept to 64 bytes, cut on a character boundary: 63 ASCII
 * bytes then a 2-byte "\xc3\xa9" keep the 63 (a cut at 64 kept half the
 * character: invalid UTF-8 downstream). */
LT_TEST(affiliate_id_cut_on_a_character)
{
    char rec[1024], aff[80], want[64];
    memset(want, 'A', 63);
    want[63] = '\0';
    snprintf(aff, sizeof(aff),
             "%s\xc3\xa9"
             "B",
             want);
    snprintf(rec, sizeof(rec),
             "{\"transactionId\":1001,\"dateCreated\":\"2024-03-12 10:00:00\","
             "\"dateUpdated\":\"2024-03-12 10:00:00\",\"txnType\":\"SALE\","
             "\"responseType\":\"SUCCESS\",\"totalAmount\":\"1.00\",\"currencyCode\":\"USD\","
             "\"orderId\":\"O1\",\"customerId\":501,\"affId\":\"%s\",\"isChargedback\":0}",
             aff);
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, rec, NULL), LT_OK);
    CHECK_INT(evs.n, 1);
    CHECK_STR(field(0, "affiliate_id"), want);
}

LT_TEST(subtypes_and_fold)
{
    CHECK_INT(build(LT_STREAM_TRANSACTIONS,
                    "{\"transactionId\":7,\"dateCreated\":\"2024-11-03 01:30:00\","
                    "\"txnType\":\"CAPTURE\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"5\","
                    "\"customerId\":\"9\",\"billingCycleNumber\":\"3\",\"orderType\":\"UPSALE\"}",
                    NULL),
              LT_OK);
    CHECK_STR(field(0, "subtype"), "rebill");
    /* 01:30 happens twice: the earlier (EDT) instant */
    CHECK_STR(field(0, "occurred_at"), "2024-11-03T05:30:00Z");
    CHECK_STR(field(0, "amount_minor"), "500");
    CHECK_INT(build(LT_STREAM_TRANSACTIONS,
                    "{\"transactionId\":8,\"dateCreated\":\"2024-06-01 23:59:59\","
                    "\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\",\"totalAmount\":9.5,"
                    "\"customerId\":\"9\",\"billingCycleNumber\":1,\"orderType\":\"upsell\"}",
                    NULL),
              LT_OK);
    CHECK_STR(field(0, "subtype"), "upsell");
    CHECK_STR(field(0, "amount_minor"), "950"); /* a JSON number, rebuilt exactly */
    CHECK_STR(field(0, "local_date"), "2024-06-01");
    CHECK_STR(field(0, "occurred_at"), "2024-06-02T03:59:59Z");
}

LT_TEST(refund_void_decline_authorize)
{
    const char *refund =
        "{\"transactionId\":1002,\"parentTxnId\":1001,"
        "\"dateCreated\":\"2024-03-12 00:00:00\",\"txnType\":\"REFUND\","
        "\"responseType\":\"SUCCESS\",\"totalAmount\":\"10.00\",\"customerId\":501}";
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, refund, NULL), LT_OK);
    CHECK_STR(field(0, "type"), "refund");
    CHECK_STR(field(0, "amount_minor"), "-1000");
    CHECK_STR(field(0, "parent_transaction_id"), "1001");
    CHECK_STR(field(0, "occurred_at"), "2024-03-12T04:00:00Z");
    CHECK_STR(field(0, "subtype"), "null");
    CHECK_INT(build(LT_STREAM_TRANSACTIONS,
                    "{\"transactionId\":3,\"dateCreated\":\"2024-03-12 10:00:00\","
                    "\"txnType\":\"VOID\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"-4.00\","
                    "\"customerId\":501}",
                    NULL),
              LT_OK);
    CHECK_STR(field(0, "type"), "void");
    CHECK_STR(field(0, "amount_minor"), "-400");
    CHECK_INT(
        build(LT_STREAM_TRANSACTIONS,
              "{\"transactionId\":4,\"dateCreated\":\"2024-03-12 10:00:00\","
              "\"txnType\":\"SALE\",\"responseType\":\"HARD_DECLINE\",\"totalAmount\":\"4.00\","
              "\"customerId\":501,\"isChargedback\":1}",
              NULL),
        LT_OK);
    CHECK_INT(evs.n, 1);
    CHECK_STR(field(0, "type"), "decline");
    CHECK_STR(field(0, "subtype"), "hard");
    CHECK_STR(field(0, "amount_minor"), "0");
    CHECK_STR(field(0, "attempted_minor"), "400");
    CHECK_INT(
        build(LT_STREAM_TRANSACTIONS,
              "{\"transactionId\":5,\"dateCreated\":\"2024-03-12 10:00:00\","
              "\"txnType\":\"AUTHORIZE\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"4.00\","
              "\"customerId\":501}",
              NULL),
        LT_OK);
    CHECK_INT(evs.n, 0);
    CHECK_INT(evs.note, LT_EVENT_NOTE_AUTHORIZE);
}

LT_TEST(chargeback_day_precision_and_occurrences)
{
    const char *rec =
        "{\"transactionId\":1001,\"dateCreated\":\"2024-03-01 12:00:00\","
        "\"dateUpdated\":\"2024-04-02 09:00:00\",\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\","
        "\"totalAmount\":\"29.99\",\"customerId\":501,\"isChargedback\":1,"
        "\"chargebackAmount\":\"20.00\",\"chargebackDate\":\"2024-04-01\","
        "\"chargebackReasonCode\":\"4837\"}";
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, rec, NULL), LT_OK);
    CHECK_INT(evs.n, 2);
    CHECK_STR(field(1, "type"), "chargeback");
    CHECK_STR(field(1, "amount_minor"), "-2000");
    CHECK_STR(field(1, "occurred_at"), "2024-04-01T04:00:00Z");
    CHECK_STR(field(1, "local_date"), "2024-04-01");
    CHECK_STR(field(1, "date_precision"), "day");
    CHECK_STR(field(1, "occurrence"), "1");
    CHECK_STR(field(1, "chargeback_reason_code"), "4837");
    CHECK_STR(field(1, "event_id"), expected_id("acme/transactions/1001/chargeback"));
    lt_cb_state_t st = {.occurrence = 2};
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, rec, &st), LT_OK);
    CHECK_STR(field(1, "event_id"), expected_id("acme/transactions/1001/chargeback/2"));
    st.reverted = 1; /* a stale row with the flag still set: no chargeback */
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, rec, &st), LT_OK);
    CHECK_INT(evs.n, 1);
}

LT_TEST(chargeback_reversal)
{
    const char *rec =
        "{\"transactionId\":1001,\"dateCreated\":\"2024-03-01 12:00:00\","
        "\"dateUpdated\":\"2024-05-09 08:00:00\",\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\","
        "\"totalAmount\":\"29.99\",\"customerId\":501,\"isChargedback\":0,"
        "\"chargebackAmount\":\"20.00\",\"chargebackDate\":\"2024-04-01 10:00:00\"}";
    lt_cb_state_t st = {
        .occurrence = 1, .reverted = 1, .reversal_date_updated = "2024-05-02 10:15:00"};
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, rec, &st), LT_OK);
    CHECK_INT(evs.n, 2);
    CHECK_STR(field(1, "type"), "chargeback_reversal");
    CHECK_STR(field(1, "amount_minor"), "2000");
    CHECK_STR(field(1, "occurred_at"), "2024-05-02T14:15:00Z"); /* first observed */
    CHECK_STR(field(1, "event_id"), expected_id("acme/transactions/1001/chargeback_reversal"));
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, rec, NULL), LT_OK); /* stateless: none */
    CHECK_INT(evs.n, 1);
}

LT_TEST(customer_subscription_reference)
{
    CHECK_INT(build(LT_STREAM_CUSTOMERS,
                    "{\"customerId\":501,\"dateCreated\":\"2024-01-01 00:00:00\","
                    "\"dateUpdated\":\"2024-02-01 00:00:00\",\"firstName\":\"Zoë\","
                    "\"eCommercePassword\":\"hunter2\"}",
                    NULL),
              LT_OK);
    CHECK_STR(field(0, "type"), "customer");
    CHECK_STR(field(0, "amount_minor"), "null");
    CHECK_STR(field(0, "currency"), "null");
    CHECK_STR(field(0, "occurred_at"), "2024-02-01T05:00:00Z");
    CHECK(strstr(evs.ev[0].json, "hunter2") == NULL);
    CHECK(strstr(evs.ev[0].json, "Zo") == NULL);
    CHECK_INT(build(LT_STREAM_PURCHASES,
                    "{\"purchaseId\":77,\"orderId\":\"AB12\",\"customerId\":501,\"campaignId\":3,"
                    "\"productId\":42,\"status\":\"ACTIVE\",\"billingCycleNumber\":2,"
                    "\"nextBillDate\":\"2024-03-01\",\"dateUpdated\":\"2024-02-01 10:00:00\"}",
                    NULL),
              LT_OK);
    CHECK_STR(field(0, "type"), "subscription");
    CHECK_STR(field(0, "status"), "ACTIVE");
    CHECK_STR(field(0, "subscription_id"), "77");
    CHECK_STR(field(0, "transaction_id"), "null");
    CHECK_STR(field(0, "order_id"), "AB12");
    CHECK_STR(field(0, "product_ids"), "[\"42\"]");
    CHECK_STR(field(0, "next_bill_date"), "2024-03-01");
    CHECK_INT(build(LT_STREAM_CAMPAIGNS, "{\"campaignId\":3}", NULL), LT_OK);
    CHECK_INT(evs.n, 0);
}

/* The dimensions: source values, recycle number, reasons, both upsell
 * signals, product ids from either shape. */
LT_TEST(payment_dimensions)
{
    CHECK_INT(build(LT_STREAM_TRANSACTIONS,
                    TXN(",\"recycleNumber\":2,\"sourceValue1\":\"facebook\",\"sourceValue2\":\"\","
                        "\"sourceValue3\":\"cmp \\\"7\\\"\",\"sourceValue5\":null,"
                        "\"items\":[{\"productId\":44,\"productType\":\"OFFER\"}]"),
                    NULL),
              LT_OK);
    CHECK_STR(field(0, "subtype"), "initial");
    CHECK_STR(field(0, "recycle_number"), "2");
    CHECK_STR(field(0, "source_values"), "[\"facebook\",null,\"cmp \\\"7\\\"\",null,null]");
    CHECK_STR(field(0, "product_ids"), "[\"44\"]");
    /* no source value: no key; no recycleNumber: null */
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, TXN(",\"sourceValue1\":\"\",\"productId\":45"), NULL),
              LT_OK);
    CHECK_STR(field(0, "source_values"), "(absent)");
    CHECK_STR(field(0, "recycle_number"), "null");
    CHECK_STR(field(0, "product_ids"), "[\"45\"]");
    /* the item's product type alone marks an upsell (orderType NEW_SALE) */
    CHECK_INT(build(LT_STREAM_TRANSACTIONS,
                    TXN(",\"items\":{\"46\":{\"productId\":46,\"productType\":\"Upsale\"}}"), NULL),
              LT_OK);
    CHECK_STR(field(0, "subtype"), "upsell");
    /* a rebill stays a rebill whatever its items say */
    CHECK_INT(build(LT_STREAM_TRANSACTIONS,
                    "{\"transactionId\":9,\"dateCreated\":\"2024-06-01 10:00:00\","
                    "\"txnType\":\"SALE\",\"responseType\":\"SOFT_DECLINE\",\"totalAmount\":\"5\","
                    "\"customerId\":\"9\",\"billingCycleNumber\":2,\"recycleNumber\":\"3\","
                    "\"items\":[{\"productId\":1,\"productType\":\"UPSELL\"}]}",
                    NULL),
              LT_OK);
    CHECK_STR(field(0, "type"), "decline");
    CHECK_STR(field(0, "recycle_number"), "3");
    CHECK_INT(build(LT_STREAM_TRANSACTIONS,
                    "{\"transactionId\":10,\"dateCreated\":\"2024-06-01 10:00:00\","
                    "\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"5\","
                    "\"customerId\":\"9\",\"billingCycleNumber\":2,"
                    "\"items\":[{\"productId\":1,\"productType\":\"UPSELL\"}]}",
                    NULL),
              LT_OK);
    CHECK_STR(field(0, "subtype"), "rebill");
    /* refund reason on refunds only, cut to 255 bytes on a character */
    char reason[400], rec[800], want[260];
    memset(reason, 'r', 254);
    memcpy(reason + 254, "\xc3\xa9tail", 7); /* "é" straddles byte 255 */
    memcpy(want, reason, 254);
    want[254] = '\0';
    snprintf(rec, sizeof(rec),
             "{\"transactionId\":11,\"dateCreated\":\"2024-06-01 10:00:00\","
             "\"txnType\":\"REFUND\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"5\","
             "\"customerId\":\"9\",\"refundReason\":\"%s\"}",
             reason);
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, rec, NULL), LT_OK);
    CHECK_STR(field(0, "refund_reason"), want);
    CHECK_INT(build(LT_STREAM_TRANSACTIONS,
                    "{\"transactionId\":12,\"dateCreated\":\"2024-06-01 10:00:00\","
                    "\"txnType\":\"VOID\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"5\","
                    "\"customerId\":\"9\",\"refundReason\":\"x\"}",
                    NULL),
              LT_OK);
    CHECK_STR(field(0, "refund_reason"), "(absent)");
}

#define ORDER(extra)                                                              \
    "{\"orderId\":\"7B83FF8095\",\"dateCreated\":\"2024-03-01 12:00:00\","        \
    "\"dateUpdated\":\"2024-03-02 08:00:00\",\"orderType\":\"NEW_SALE\","         \
    "\"orderStatus\":\"COMPLETE\",\"totalAmount\":\"59.98\",\"price\":\"49.99\"," \
    "\"baseShipping\":\"9.99\",\"salesTax\":\"0.00\",\"totalDiscount\":null,"     \
    "\"currencyCode\":\"USD\",\"campaignId\":12,\"customerId\":501,"              \
    "\"couponCode\":\"SAVE10\",\"affId\":\"AFF9\"" extra "}"

LT_TEST(order_event)
{
    CHECK_INT(
        build(LT_STREAM_ORDERS,
              ORDER(",\"sourceValue1\":\"google\",\"items\":{\"9\":{\"productId\":9,\"qty\":1,"
                    "\"price\":\"49.99\",\"productType\":\"OFFER\"},\"10\":{\"productId\":\"10\","
                    "\"qty\":\"2\",\"price\":null,\"productType\":\"UPSALE\"}}"),
              NULL),
        LT_OK);
    CHECK_INT(evs.n, 1);
    CHECK_STR(evs.key, "acme/501");
    CHECK_STR(field(0, "type"), "order");
    CHECK_STR(field(0, "subtype"), "null");
    CHECK_STR(field(0, "event_id"), expected_id("acme/orders/7B83FF8095/order"));
    CHECK_STR(field(0, "order_id"), "7B83FF8095");
    CHECK_STR(field(0, "transaction_id"), "null");
    CHECK_STR(field(0, "amount_minor"), "null");
    CHECK_STR(field(0, "currency"), "USD");
    CHECK_STR(field(0, "occurred_at"), "2024-03-02T13:00:00Z");
    CHECK_STR(field(0, "order_type"), "NEW_SALE");
    CHECK_STR(field(0, "order_status"), "COMPLETE");
    CHECK_STR(field(0, "coupon_code"), "SAVE10");
    CHECK_STR(field(0, "has_upsell"), "true");
    CHECK_STR(field(0, "product_ids"), "[\"9\",\"10\"]");
    CHECK_STR(field(0, "items"), "[{\"product_id\":\"9\",\"quantity\":1,\"price_minor\":4999},"
                                 "{\"product_id\":\"10\",\"quantity\":2,\"price_minor\":null}]");
    CHECK_STR(field(0, "totals"),
              "{\"total_minor\":5998,\"price_minor\":4999,"
              "\"shipping_minor\":999,\"tax_minor\":0,\"discount_minor\":null}");
    CHECK_STR(field(0, "source_values"), "[\"google\",null,null,null,null]");
    /* items as the CRM sends an empty list; an upsell order type */
    CHECK_INT(build(LT_STREAM_ORDERS,
                    "{\"orderId\":\"A\",\"dateCreated\":\"2024-03-01 12:00:00\","
                    "\"orderType\":\"UPSELL\",\"orderStatus\":\"REFUNDED\",\"customerId\":5,"
                    "\"couponCode\":\"\",\"items\":[]}",
                    NULL),
              LT_OK);
    CHECK_STR(field(0, "items"), "[]");
    CHECK_STR(field(0, "has_upsell"), "true");
    CHECK_STR(field(0, "coupon_code"), "null");
    CHECK_STR(field(0, "order_status"), "REFUNDED");
    CHECK_STR(field(0, "recycle_number"), "(absent)");
    CHECK_STR(field(0, "source_values"), "(absent)");
    CHECK_STR(field(0, "totals"),
              "{\"total_minor\":null,\"price_minor\":null,"
              "\"shipping_minor\":null,\"tax_minor\":null,\"discount_minor\":null}");
    /* PARTIAL: no event */
    CHECK_INT(build(LT_STREAM_ORDERS, "{\"orderId\":\"X1\",\"orderStatus\":\"PARTIAL\"}", NULL),
              LT_OK);
    CHECK_INT(evs.n, 0);
    CHECK_INT(evs.note, LT_EVENT_NOTE_PARTIAL_ORDER);
    /* malformed: the row goes to the DLQ with the reason */
    const char *bad[] = {
        ORDER(",\"items\":[{\"qty\":1}]"),
        ORDER(",\"items\":[7]"),
        ORDER(",\"items\":[{\"productId\":\"a/b\"}]"),
        ORDER(",\"items\":[{\"productId\":1,\"price\":\"1.001\"}]"),
        "{\"orderId\":\"A\",\"dateCreated\":\"2024-03-01 12:00:00\",\"orderStatus\":\"COMPLETE\"}",
        "{\"orderId\":\"A\",\"dateCreated\":\"2024-03-01 "
        "12:00:00\",\"customerId\":1,\"totalDiscount\":\"x\"}",
        "{\"orderId\":\"A\",\"dateCreated\":\"2024-03-01 "
        "12:00:00\",\"customerId\":1,\"currencyCode\":\"XYZ\"}",
        "{\"orderId\":\"A\",\"customerId\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(build(LT_STREAM_ORDERS, bad[i], NULL), LT_ERR_PERMANENT);
        CHECK_INT(evs.n, 0);
        CHECK(err[0] != '\0');
    }
    /* 64 items fit, 65 do not */
    static char big[2048], rec[4096];
    size_t n = 0;
    for (int k = 0; k < 65; k++) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s{\"productId\":%d}", k ? "," : "", k);
        if (k == 63) {
            snprintf(rec, sizeof(rec), ORDER(",\"items\":[%s]"), big);
            CHECK_INT(build(LT_STREAM_ORDERS, rec, NULL), LT_OK);
        }
    }
    snprintf(rec, sizeof(rec), ORDER(",\"items\":[%s]"), big);
    CHECK_INT(build(LT_STREAM_ORDERS, rec, NULL), LT_ERR_PERMANENT);
    CHECK_STR(err, "items: more than 64");
}

LT_TEST(malformed_rows)
{
    const char *bad[] = {
        "{\"dateCreated\":\"2024-03-01 "
        "12:00:00\",\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"1\","
        "\"customerId\":1}",
        "{\"transactionId\":1,\"dateCreated\":\"2024-03-01 "
        "12:00:00\",\"txnType\":\"GIFT\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"1\","
        "\"customerId\":1}",
        "{\"transactionId\":1,\"dateCreated\":\"2024-03-01 "
        "12:00:00\",\"txnType\":\"SALE\",\"responseType\":\"MAYBE\",\"totalAmount\":\"1\","
        "\"customerId\":1}",
        "{\"transactionId\":1,\"dateCreated\":\"2024-02-30 "
        "12:00:00\",\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"1\","
        "\"customerId\":1}",
        "{\"transactionId\":1,\"dateCreated\":\"2024-03-01 "
        "12:00:00\",\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"1.005\","
        "\"customerId\":1}",
        "{\"transactionId\":1,\"dateCreated\":\"2024-03-01 "
        "12:00:00\",\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"1\","
        "\"customerId\":1,\"currencyCode\":\"XYZ\"}",
        "{\"transactionId\":1,\"dateCreated\":\"2024-03-01 "
        "12:00:00\",\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"1\"}",
        "{\"transactionId\":\"a/b\",\"dateCreated\":\"2024-03-01 "
        "12:00:00\",\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"1\","
        "\"customerId\":1}",
        "{\"transactionId\":1,\"dateCreated\":\"2024-03-01 "
        "12:00:00\",\"txnType\":\"SALE\",\"responseType\":\"SUCCESS\",\"totalAmount\":\"1\","
        "\"customerId\":1,\"isChargedback\":1,\"chargebackDate\":\"2024-13-01\"}",
        "[1,2]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(build(LT_STREAM_TRANSACTIONS, bad[i], NULL), LT_ERR_PERMANENT);
        CHECK_INT(evs.n, 0);
        CHECK(err[0] != '\0');
    }
    CHECK_INT(build(LT_STREAM_PURCHASES,
                    "{\"purchaseId\":1,\"customerId\":2,\"status\":\"ZOMBIE\","
                    "\"dateUpdated\":\"2024-02-01 10:00:00\"}",
                    NULL),
              LT_ERR_PERMANENT);
}

LT_TEST(deterministic)
{
    char first[2048];
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, TXN(""), NULL), LT_OK);
    snprintf(first, sizeof(first), "%s", evs.ev[0].json);
    CHECK_INT(build(LT_STREAM_TRANSACTIONS, TXN(""), NULL), LT_OK);
    CHECK_STR(evs.ev[0].json, first);
    CHECK_INT(evs.ev[0].len, strlen(first));
}

LT_TEST(cb_history)
{
    lt_cb_state_t st;
    const char *h = "[[\"C\",\"3\",\"10\"],[\"R\",\"3\",\"20\",\"2024-05-02 10:15:00\"],"
                    "[\"C\",\"3\",\"30\"]]";
    CHECK_INT(lt_cb_state_at(h, strlen(h), 3, 9, &st), 0);
    CHECK_INT(st.occurrence, 0);
    CHECK_INT(lt_cb_state_at(h, strlen(h), 3, 10, &st), 0);
    CHECK_INT(st.occurrence * 10 + st.reverted, 10);
    CHECK_INT(lt_cb_state_at(h, strlen(h), 3, 25, &st), 0);
    CHECK_INT(st.occurrence * 10 + st.reverted, 11);
    CHECK_STR(st.reversal_date_updated, "2024-05-02 10:15:00");
    CHECK_INT(lt_cb_state_at(h, strlen(h), 3, 1000, &st), 0);
    CHECK_INT(st.occurrence * 10 + st.reverted, 20);
    CHECK_INT(lt_cb_state_at(h, strlen(h), 4, 0, &st), 0); /* other partition: all */
    CHECK_INT(st.occurrence, 2);
    CHECK_INT(lt_cb_state_at("", 0, 0, 0, &st), 0);
    CHECK_INT(lt_cb_state_at("[]", 2, 0, 0, &st), 0);
    CHECK_INT(st.occurrence, 0);
    /* only the whole, well-formed document counts: a date holding the
     * syntax of more entries is one date of one entry */
    h = "[[\"C\",\"1\",\"2\"],[\"R\",\"1\",\"3\",\"x\\\"],[\\\"C\"]]";
    CHECK_INT(lt_cb_state_at(h, strlen(h), 1, 9, &st), 0);
    CHECK_INT(st.occurrence * 10 + st.reverted, 11);
    CHECK_STR(st.reversal_date_updated, "x\"],[\"C");
    static const char *bad[] = {
        "C,1,2", /* the old text format */
        "!",     /* the script's unreadable legacy */
        "{}",
        "[1]",
        "[[]]",
        "[[\"X\",\"1\",\"2\"]]",
        "[[\"C\",1,2]]",               /* numbers must be strings */
        "[[\"C\",\"1\",\"2\",\"d\"]]", /* C has no date */
        "[[\"R\",\"1\",\"2\"]]",       /* R has one */
        "[[\"R\",\"1\",\"2\",\"2024-05-02 10:15:00 and more\"]]",
        "[[\"C\",\"-1\",\"2\"]]",
        "[[\"C\",\"1\",\"9999999999999999999\"]]",
        "[[\"CC\",\"1\",\"2\"]]",
        "[[\"C\",\"1\",\"2\"]",
        "[[\"C\",\"1\",\"2\"]]x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(lt_cb_state_at(bad[i], strlen(bad[i]), 1, 5, &st), -1);

    lt_cb_probe_t pr;
    cJSON *rec = cJSON_Parse(TXN(""));
    lt_event_fields_t fx;
    CHECK_INT(lt_event_cb_probe(LT_STREAM_TRANSACTIONS, rec, NULL, &pr), 0);
    CHECK_INT(pr.flag, 0);
    CHECK_STR(pr.transaction_id, "1001");
    CHECK_STR(pr.date_updated, "2024-04-02 09:00:00");
    lt_event_index(rec, &fx);
    memset(&pr, 0, sizeof(pr));
    CHECK_INT(lt_event_cb_probe(LT_STREAM_TRANSACTIONS, rec, &fx, &pr), 0);
    CHECK_STR(pr.transaction_id, "1001");
    CHECK_STR(pr.date_updated, "2024-04-02 09:00:00");
    CHECK_INT(lt_event_cb_probe(LT_STREAM_ORDERS, rec, NULL, &pr), -1);
    cJSON_Delete(rec);
    /* a dateUpdated that would splice entries into the Redis history is
     * not passed on (the row is still probed) */
    rec = cJSON_Parse("{\"transactionId\":7,\"txnType\":\"SALE\",\"responseType\":"
                      "\"SUCCESS\",\"isChargedback\":0,\"dateUpdated\":\"1;C,0,9\"}");
    CHECK_INT(lt_event_cb_probe(LT_STREAM_TRANSACTIONS, rec, NULL, &pr), 0);
    CHECK_STR(pr.transaction_id, "7");
    CHECK_STR(pr.date_updated, "");
    lt_event_index(NULL, &fx); /* not an object: nothing found */
    CHECK(fx.f[0] == NULL && fx.f[LT_EVENT_FIELDS - 1] == NULL);
    cJSON_Delete(rec);
}

int main(void)
{
    LT_RUN(payment_initial_in_gap);
    LT_RUN(affiliate_id_cut_on_a_character);
    LT_RUN(subtypes_and_fold);
    LT_RUN(refund_void_decline_authorize);
    LT_RUN(chargeback_day_precision_and_occurrences);
    LT_RUN(chargeback_reversal);
    LT_RUN(customer_subscription_reference);
    LT_RUN(payment_dimensions);
    LT_RUN(order_event);
    LT_RUN(malformed_rows);
    LT_RUN(deterministic);
    LT_RUN(cb_history);
    lt_event_list_release(&evs);
    return LT_DONE();
}
