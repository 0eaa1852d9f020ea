/* Unit tests of lt_sanitize: per stream, a realistic CRM row (field names of
 * tools/crm-sim/render.c and konnektive-api.md) with payment data, personal
 * data and secrets added at the top level and inside nested lists: exactly
 * the allow-listed fields stay, with their values unchanged, and the count
 * of removed keys and entries is right. The module's source is included so
 * the secret guard can be tried on a list that names a secret. */
#include <stdlib.h>
#include "lt_sanitize.c"
#include "lt_test.h"

/* Payment data, personal data and secrets a CRM could add any day: 8 keys. */
#define PII                                                                      \
    "'cardNumber':'4111111111111111','cvv':'737','ssn':'078-05-1120',"           \
    "'apiKey':'ak_live_51Hx','email':'zoe@example.com','firstName':'Zo\\u00eb'," \
    "'phoneNumber':'+1-555-0100','address1':'1 Main St'"
#define NPII 8

static const char *const never[] = {
    "cardNumber",  "4111111111111111", "cvv",        "737",
    "ssn",         "078-05-1120",      "apiKey",     "ak_live_51Hx",
    "email",       "zoe@example.com",  "firstName",  "Zo",
    "phoneNumber", "555-0100",         "address1",   "Main St",
    "SECRET-PW",   "Password",         "cardBin",    "424242",
    "cardLast4",   "lastName",         "postalCode", "94016",
    "country",     "paySources",       "notes",
};

/* JSON with ' for " (no ' in the values). */
static cJSON *parse_q(const char *q)
{
    char *s = strdup(q);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *root = cJSON_Parse(s);
    free(s);
    return root;
}

static void check_row(lt_stream_t s, const char *in, const char *want, int removed)
{
    cJSON *row = parse_q(in), *exp = parse_q(want);
    CHECK(row && exp);
    if (!row || !exp)
        goto end;
    CHECK_INT(lt_sanitize_row(s, row, NULL, NULL), removed);
    char *got = cJSON_PrintUnformatted(row), *w = cJSON_PrintUnformatted(exp);
    CHECK_STR(got, w); /* every kept field, its value and its place unchanged */
    for (size_t i = 0; got && i < sizeof(never) / sizeof(never[0]); i++)
        if (strstr(got, never[i])) {
            fprintf(stderr, "%s: \"%s\" survived\n", lt_stream_name(s), never[i]);
            CHECK(!"a dropped field or value survived");
        }
    free(got);
    free(w);
end:
    cJSON_Delete(row);
    cJSON_Delete(exp);
}

LT_TEST(transactions)
{
    check_row(LT_STREAM_TRANSACTIONS,
              "{'transactionId':4100012,'parentTxnId':4100001,'merchantTxnId':'M-77',"
              "'dateCreated':'2026-01-02 10:00:00','dateUpdated':'2026-01-03 11:00:00',"
              "'txnType':'SALE','responseType':'SUCCESS','responseText':'Approved',"
              "'totalAmount':'29.99','currencyCode':'USD','currencySymbol':'$',"
              "'orderId':'7B83FF8095','orderType':'NEW_SALE','billingCycleNumber':2,"
              "'recycleNumber':0,'campaignId':'12','campaignName':'Main','customerId':77,"
              "'purchaseId':501,'merchantId':3,'affId':'AFF9','sourceValue1':'',"
              "'refundReason':null,'3DTxnResult':null,'lastName':'Q','city':'Town',"
              "'state':'NY','postalCode':'94016','country':'US',"
              "'emailAddress':'zoe@example.com','isChargedback':1,"
              "'chargebackAmount':'29.99','chargebackDate':'2026-01-05',"
              "'chargebackReasonCode':'10.4','chargebackNote':'Dispute opened',"
              "'paySource':'CREDITCARD','cardBin':'424242','cardLast4':'4242',"
              "'cardType':'VISA','achRoutingNumber':'021000021',"
              "'achAccountNumber':'12345678'," PII ","
              "'items':[{'productId':9,'purchaseId':501,'name':'Pill'," PII "}],"
              "'paySources':[{" PII "}]}",
              "{'transactionId':4100012,'parentTxnId':4100001,"
              "'dateCreated':'2026-01-02 10:00:00','dateUpdated':'2026-01-03 11:00:00',"
              "'txnType':'SALE','responseType':'SUCCESS','totalAmount':'29.99',"
              "'currencyCode':'USD','orderId':'7B83FF8095','orderType':'NEW_SALE',"
              "'billingCycleNumber':2,'recycleNumber':0,'campaignId':'12','customerId':77,"
              "'purchaseId':501,'affId':'AFF9','sourceValue1':'','refundReason':null,"
              "'isChargedback':1,'chargebackAmount':'29.99',"
              "'chargebackDate':'2026-01-05','chargebackReasonCode':'10.4',"
              "'items':[{'productId':9,'purchaseId':501}]}",
              19 + NPII + 1 /* paySources */ + 1 + NPII /* in items */);
}

LT_TEST(orders)
{
    /* items: an object keyed by productId; an entry under a key that is not
     * an id, or that is not an object, goes whole */
    check_row(LT_STREAM_ORDERS,
              "{'orderId':'7B83FF8095','dateCreated':'2026-01-02 10:00:00',"
              "'dateUpdated':'2026-01-02 10:00:00','orderType':'NEW_SALE',"
              "'orderStatus':'COMPLETE','totalAmount':'59.98','price':'49.99',"
              "'baseShipping':'9.99','salesTax':'0.00','totalDiscount':'0.00',"
              "'refundRemaining':'59.98','currencyCode':'USD','currencySymbol':'$',"
              "'campaignId':12,'campaignName':'Main','customerId':77,"
              "'shipAddress1':'1 Main St','shipCity':'Town','shipState':'NY',"
              "'shipPostalCode':'94016','shipCountry':'US','couponCode':null,'affId':'AFF9'," PII
              ",'items':{'9':{'productId':9,'name':'Pill','qty':1,'price':'49.99',"
              "'shipping':'9.99','purchaseId':501,'purchaseStatus':'ACTIVE',"
              "'nextBillDate':'2026-02-01','orderItemId':11," PII "},"
              "'zoe@example.com':{'productId':10},'10':'4111111111111111'},"
              "'fulfillments':[]}",
              "{'orderId':'7B83FF8095','dateCreated':'2026-01-02 10:00:00',"
              "'dateUpdated':'2026-01-02 10:00:00','orderType':'NEW_SALE',"
              "'orderStatus':'COMPLETE','totalAmount':'59.98','price':'49.99',"
              "'baseShipping':'9.99','salesTax':'0.00','totalDiscount':'0.00',"
              "'currencyCode':'USD','campaignId':12,'customerId':77,'couponCode':null,"
              "'affId':'AFF9','items':{'9':{'productId':9,'qty':1,'price':'49.99',"
              "'purchaseId':501}}}",
              8 + NPII + 1 /* fulfillments */ + 5 + NPII + 2 /* entries */);
}

LT_TEST(customers)
{
    check_row(LT_STREAM_CUSTOMERS,
              "{'customerId':77,'dateCreated':'2026-01-02 10:00:00',"
              "'dateUpdated':'2026-01-04 08:00:00'," PII ",'lastName':'Q','city':'Town',"
              "'state':'NY','postalCode':'94016','country':'US',"
              "'emailAddress':'zoe@example.com','notes':['call +1-555-0100'],"
              "'paySources':[{'paySourceId':771,'paySource':'CREDITCARD',"
              "'cardBin':'424242','cardLast4':'4242'," PII "}],"
              "'eCommercePassword':'SECRET-PW-1','achAccountNumber':'1',"
              "'achRoutingNumber':'2'}",
              "{'customerId':77,'dateCreated':'2026-01-02 10:00:00',"
              "'dateUpdated':'2026-01-04 08:00:00'}",
              NPII + 11);
}

LT_TEST(purchases)
{
    check_row(LT_STREAM_PURCHASES,
              "{'purchaseId':501,'orderId':'7B83FF8095','customerId':77,'campaignId':12,"
              "'productId':9,'productName':'Pill','status':'ACTIVE','price':'49.99',"
              "'billingCycleNumber':3,'billingIntervalDays':30,'nextBillDate':'2026-02-01',"
              "'totalBilled':'99.98','totalRefunded':'0.00',"
              "'dateCreated':'2026-01-02 10:00:00','dateUpdated':'2026-01-04 08:00:00',"
              "'transactions':[{'transactionId':4100012,'dateCreated':'2026-01-02 10:00:00',"
              "'txnType':'SALE','responseType':'SUCCESS','totalAmount':'49.99',"
              "'billingCycleNumber':1,'recycleNumber':0," PII "}]," PII "}",
              "{'purchaseId':501,'orderId':'7B83FF8095','customerId':77,'campaignId':12,"
              "'productId':9,'status':'ACTIVE','billingCycleNumber':3,"
              "'nextBillDate':'2026-02-01','dateCreated':'2026-01-02 10:00:00',"
              "'dateUpdated':'2026-01-04 08:00:00'}",
              6 + NPII);
}

LT_TEST(campaigns)
{
    check_row(LT_STREAM_CAMPAIGNS,
              "{'campaignId':12,'campaignName':'Main','currency':'USD',"
              "'dateCreated':'2025-06-01 00:00:00','products':[{'productId':9,"
              "'productName':'Pill','price':'49.99','shipping':'9.99',"
              "'billingIntervalDays':30,'productType':'RECURRING'," PII "}]," PII "}",
              "{'campaignId':12,'campaignName':'Main','dateCreated':'2025-06-01 00:00:00',"
              "'products':[{'productId':9,'productName':'Pill'}]}",
              1 + NPII + 4 + NPII);
}

/* A kept scalar that arrives as a container keeps its type, not its content
 * (lt_event still refuses it); a list that arrives as a string goes. */
LT_TEST(shapes)
{
    check_row(LT_STREAM_TRANSACTIONS,
              "{'transactionId':5,'customerId':{'email':'zoe@example.com'},"
              "'affId':['zoe@example.com',{'ssn':'078-05-1120'}],'items':'078-05-1120',"
              "'orderId':null}",
              "{'transactionId':5,'customerId':{},'affId':[],'orderId':null}", 1 + 2 + 1);
    check_row(LT_STREAM_ORDERS, "{'orderId':'A','items':null,'products':[]}",
              "{'orderId':'A','items':null}", 1);
    CHECK_INT(lt_sanitize_row(LT_STREAM_COUNT, NULL, NULL, NULL), -1);
    CHECK_INT(lt_sanitize_row(LT_STREAM_ORDERS, NULL, NULL, NULL), 0);
}

LT_TEST(secret_names)
{
    CHECK(lt_sanitize_is_secret_key("eCommercePassword"));
    CHECK(lt_sanitize_is_secret_key("achAccountNumber"));
    CHECK(lt_sanitize_is_secret_key("achRoutingNumber"));
    CHECK(lt_sanitize_is_secret_key("password"));
    CHECK(lt_sanitize_is_secret_key("userPASSWORDhash"));
    CHECK(!lt_sanitize_is_secret_key("passwd"));
    CHECK(!lt_sanitize_is_secret_key("customerId"));
    CHECK(!lt_sanitize_is_secret_key(NULL));
}

/* The second guard: a list that names a secret still never keeps it, at the
 * top or inside a kept container; and no list of ours names one. */
LT_TEST(secret_guard)
{
    static const field_t careless_entries[] = {S("productId"), S("itemPassword"), END};
    static const field_t careless[] = {
        S("customerId"), S("eCommercePassword"),      S("achAccountNumber"),
        S("Password"),   {"items", careless_entries}, END};
    drop_t d = {NULL, NULL};
    cJSON *row = parse_q("{'customerId':1,'eCommercePassword':'SECRET-PW-1',"
                         "'achAccountNumber':'1','Password':'p',"
                         "'items':[{'productId':2,'itemPassword':'SECRET-PW-2'}]}");
    CHECK_INT(filter_object(row, careless, &d), 4);
    char *got = cJSON_PrintUnformatted(row);
    CHECK_STR(got, "{\"customerId\":1,\"items\":[{\"productId\":2}]}");
    free(got);
    cJSON_Delete(row);
    for (int s = 0; s < LT_STREAM_COUNT; s++)
        for (const field_t *f = stream_fields[s]; f->name; f++) {
            CHECK(!lt_sanitize_is_secret_key(f->name));
            for (const field_t *e = f->entries; e && e->name; e++)
                CHECK(!lt_sanitize_is_secret_key(e->name));
        }
}

typedef struct {
    int n;
    char names[4][32];
} seen_t;

static void on_drop(void *ctx, const char *key)
{
    seen_t *s = ctx;
    if (s->n < 4)
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", key);
    s->n++;
}

/* Each removed object key is reported; map entries are not (their keys are
 * data, e.g. an e-mail address). */
LT_TEST(reports)
{
    seen_t seen = {0};
    cJSON *row = parse_q("{'orderId':'A','cvv':'1','items':{'zoe@example.com':{},"
                         "'9':{'productId':9,'ssn':'2'}}}");
    CHECK_INT(lt_sanitize_row(LT_STREAM_ORDERS, row, on_drop, &seen), 3);
    CHECK_INT(seen.n, 2);
    CHECK_STR(seen.names[0], "cvv");
    CHECK_STR(seen.names[1], "ssn");
    cJSON_Delete(row);
}

int main(void)
{
    LT_RUN(transactions);
    LT_RUN(orders);
    LT_RUN(customers);
    LT_RUN(purchases);
    LT_RUN(campaigns);
    LT_RUN(shapes);
    LT_RUN(secret_names);
    LT_RUN(secret_guard);
    LT_RUN(reports);
    return LT_DONE();
}
