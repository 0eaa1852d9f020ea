/* lt_evtype: the canonical event types (schemas/event.schema.json "type"),
 * one list for every service: the normalizer writes them, the sink checks
 * them, both count them per type. tests/unit/test_evtype.c holds the list
 * equal to the schema's. */
#ifndef LT_EVTYPE_H
#define LT_EVTYPE_H

typedef enum {
    LT_EV_PAYMENT,
    LT_EV_REFUND,
    LT_EV_VOID,
    LT_EV_CHARGEBACK,
    LT_EV_CHARGEBACK_REVERSAL,
    LT_EV_DECLINE,
    LT_EV_CUSTOMER,
    LT_EV_SUBSCRIPTION,
    LT_EV_ORDER,
    LT_EV_COUNT
} lt_evtype_t;

/* The schema's name of t ("payment", ...); "" for a value out of range. */
const char *lt_evtype_name(lt_evtype_t t);

/* The type named s, or -1 when s is NULL or not a type. */
int lt_evtype_parse(const char *s);

/* Money types (payment .. decline): the events of a transaction. */
static inline int lt_evtype_is_transaction(lt_evtype_t t)
{
    return t <= LT_EV_DECLINE;
}

#endif
