/* lt_sanitize: see lt_sanitize.h. */
#include "lt_sanitize.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* One allow-listed key. entries NULL: a scalar (a container there is
 * emptied). Else a list, an array or an object keyed by ids (an order's
 * items), whose entries are objects keeping only these fields. */
typedef struct field {
    const char *name;
    const struct field *entries;
} field_t;

#define S(name)    \
    {              \
        name, NULL \
    }
#define END        \
    {              \
        NULL, NULL \
    }

/* lt_event's product_ids read productId; purchaseId ties an item to its
 * subscription (an id, nothing personal); an order event's items carry qty
 * and price; productType marks an upsell item. */
static const field_t item_fields[] = {S("productId"), S("purchaseId"),  S("qty"),
                                      S("price"),     S("productType"), END};
/* The campaign stream is reference data: the labels of the campaign_id and
 * product_ids dimensions (the merchant's catalogue, not personal data). */
static const field_t product_fields[] = {S("productId"), S("productName"), END};

/* What lt_event's row_init reads from a row of any stream, and dateCreated
 * (the fetcher's paging dimension, the date of transactions and the
 * fallback date of customer and subscription events). */
#define BASE_FIELDS                                                                  \
    S("customerId"), S("orderId"), S("campaignId"), S("affId"), S("currencyCode"),   \
        S("billingCycleNumber"), S("productId"), S("dateCreated"), S("dateUpdated"), \
    {                                                                                \
        "items", item_fields                                                         \
    }

/* Traffic-source values (source_values of payment and order events): the
 * merchant's campaign tags, e.g. a network and a click id. */
#define SOURCE_FIELDS \
    S("sourceValue1"), S("sourceValue2"), S("sourceValue3"), S("sourceValue4"), S("sourceValue5")

static const field_t transaction_fields[] = {
    BASE_FIELDS,        S("transactionId"),    S("parentTxnId"),    S("purchaseId"),
    S("txnType"),       S("responseType"),     S("totalAmount"),    S("orderType"),
    S("isChargedback"), S("chargebackAmount"), S("chargebackDate"), S("chargebackReasonCode"),
    S("recycleNumber"), S("refundReason"),     SOURCE_FIELDS,       END};
/* The order event: its type, status, coupon and totals. */
static const field_t order_fields[] = {
    BASE_FIELDS, S("orderStatus"),  S("orderType"), S("couponCode"),    S("totalAmount"),
    S("price"),  S("baseShipping"), S("salesTax"),  S("totalDiscount"), SOURCE_FIELDS,
    END};
static const field_t customer_fields[] = {BASE_FIELDS, END};
static const field_t purchase_fields[] = {BASE_FIELDS, S("purchaseId"), S("status"),
                                          S("nextBillDate"), END};
static const field_t campaign_fields[] = {
    BASE_FIELDS, S("campaignName"), {"products", product_fields}, END};

static const field_t *const stream_fields[LT_STREAM_COUNT] = {
    transaction_fields, order_fields, customer_fields, purchase_fields, campaign_fields};

static const char *const secret_keys[] = {
    "eCommercePassword",
    "achAccountNumber",
    "achRoutingNumber",
};

/* Case-insensitive substring search; needle is lower case. */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == (unsigned char)needle[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

int lt_sanitize_is_secret_key(const char *key)
{
    if (!key)
        return 0;
    for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++)
        if (strcasecmp(key, secret_keys[i]) == 0)
            return 1;
    return contains_ci(key, "password");
}

/* The entry of fields named key (exact case, as lt_event reads), or NULL;
 * never a secret, whatever a list says. */
static const field_t *lookup(const field_t *fields, const char *key)
{
    if (!key || lt_sanitize_is_secret_key(key))
        return NULL;
    for (const field_t *f = fields; f->name; f++)
        if (f->name[0] == key[0] && strcmp(f->name, key) == 0)
            return f;
    return NULL;
}

/* A map key that is an id, as lt_event accepts ids: 1..64 of
 * [A-Za-z0-9_.:-]. Anything else is data that does not belong there. */
static int is_id_key(const char *k)
{
    size_t n = k ? strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789_.:-")
                 : 0;
    return n > 0 && n <= 64 && k[n] == '\0';
}

typedef struct {
    lt_sanitize_drop_fn on_drop;
    void *ctx;
} drop_t;

/* Removes child from parent; reports its key when it names a field. */
static int drop(cJSON *parent, cJSON *child, int report, const drop_t *d)
{
    if (report && d->on_drop && child->string)
        d->on_drop(d->ctx, child->string);
    cJSON_Delete(cJSON_DetachItemViaPointer(parent, child));
    return 1;
}

/* A kept scalar field that came as a container keeps its type, not its
 * content: lt_event then refuses it as before ("invalid"), and nothing
 * inside travels. */
static int empty(cJSON *v, const drop_t *d)
{
    int removed = 0;
    while (v->child)
        removed += drop(v, v->child, cJSON_IsObject(v), d);
    return removed;
}

static int filter_object(cJSON *obj, const field_t *fields, const drop_t *d);

/* A list field: null stays, other scalars go; entries must be objects
 * (and, in an object, under an id key). */
static int filter_list(cJSON *parent, cJSON *list, const field_t *f, const drop_t *d)
{
    int removed = 0, keyed = cJSON_IsObject(list);
    if (cJSON_IsNull(list))
        return 0;
    if (!keyed && !cJSON_IsArray(list))
        return drop(parent, list, 1, d);
    cJSON *e = list->child;
    while (e) {
        cJSON *next = e->next;
        if (!cJSON_IsObject(e) || (keyed && !is_id_key(e->string)))
            removed += drop(list, e, 0, d);
        else
            removed += filter_object(e, f->entries, d);
        e = next;
    }
    return removed;
}

/* Keeps the keys of obj that fields names. Depth is bounded by the lists
 * (two levels), not by the input. */
static int filter_object(cJSON *obj, const field_t *fields, const drop_t *d)
{
    int removed = 0;
    cJSON *child = obj->child;
    while (child) {
        cJSON *next = child->next;
        const field_t *f = lookup(fields, child->string);
        if (!f)
            removed += drop(obj, child, 1, d);
        else if (f->entries)
            removed += filter_list(obj, child, f, d);
        else
            removed += empty(child, d);
        child = next;
    }
    return removed;
}

int lt_sanitize_row(lt_stream_t s, cJSON *row, lt_sanitize_drop_fn on_drop, void *ctx)
{
    drop_t d = {on_drop, ctx};
    if ((unsigned)s >= LT_STREAM_COUNT)
        return -1;
    if (!cJSON_IsObject(row))
        return row ? empty(row, &d) : 0;
    return filter_object(row, stream_fields[s], &d);
}
