/* lt_evtype: see lt_evtype.h. */
#include "lt_evtype.h"

#include <string.h>

static const char *const names[LT_EV_COUNT] = {
    [LT_EV_PAYMENT] = "payment",
    [LT_EV_REFUND] = "refund",
    [LT_EV_VOID] = "void",
    [LT_EV_CHARGEBACK] = "chargeback",
    [LT_EV_CHARGEBACK_REVERSAL] = "chargeback_reversal",
    [LT_EV_DECLINE] = "decline",
    [LT_EV_CUSTOMER] = "customer",
    [LT_EV_SUBSCRIPTION] = "subscription",
    [LT_EV_ORDER] = "order",
};

const char *lt_evtype_name(lt_evtype_t t)
{
    return (unsigned)t < LT_EV_COUNT ? names[t] : "";
}

int lt_evtype_parse(const char *s)
{
    for (int i = 0; s && i < LT_EV_COUNT; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}
