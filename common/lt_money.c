/* lt_money: exact decimal parsing (see lt_money.h). */
#include "lt_money.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    char code[4];
    int exponent;
} currency_t;

/* ISO 4217 exponents of the currencies a CRM account may bill in; sorted for
 * bsearch-free linear lookup (the table is small and the lookup is cached by
 * callers per integration). Zero-decimal and three-decimal codes listed
 * explicitly; everything else here is 2. */
static const currency_t currencies[] = {
    {"AED", 2}, {"ARS", 2}, {"AUD", 2}, {"BGN", 2}, {"BHD", 3}, {"BIF", 0}, {"BRL", 2}, {"CAD", 2},
    {"CHF", 2}, {"CLF", 4}, {"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"CZK", 2}, {"DJF", 0}, {"DKK", 2},
    {"EGP", 2}, {"EUR", 2}, {"GBP", 2}, {"GNF", 0}, {"HKD", 2}, {"HUF", 2}, {"IDR", 2}, {"ILS", 2},
    {"INR", 2}, {"IQD", 3}, {"ISK", 0}, {"JOD", 3}, {"JPY", 0}, {"KMF", 0}, {"KRW", 0}, {"KWD", 3},
    {"LYD", 3}, {"MAD", 2}, {"MXN", 2}, {"MYR", 2}, {"NGN", 2}, {"NOK", 2}, {"NZD", 2}, {"OMR", 3},
    {"PEN", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0}, {"QAR", 2}, {"RON", 2}, {"RWF", 0},
    {"SAR", 2}, {"SEK", 2}, {"SGD", 2}, {"THB", 2}, {"TND", 3}, {"TRY", 2}, {"TWD", 2}, {"UAH", 2},
    {"UGX", 0}, {"USD", 2}, {"UYI", 0}, {"VND", 0}, {"VUV", 0}, {"XAF", 0}, {"XOF", 0}, {"XPF", 0},
    {"ZAR", 2},
};

int lt_money_exponent(const char *code, size_t len)
{
    if (!code || len != 3)
        return -1;
    for (size_t i = 0; i < sizeof(currencies) / sizeof(currencies[0]); i++)
        if (memcmp(currencies[i].code, code, 3) == 0)
            return currencies[i].exponent;
    return -1;
}

static lt_err_t fail(char *errstr, size_t errlen, const char *why)
{
    if (errstr && errlen)
        snprintf(errstr, errlen, "%s", why);
    return LT_ERR_PERMANENT;
}

/* Accumulates magnitude*10+d into *acc; -1 on overflow past INT64_MAX+1
 * (the magnitude of INT64_MIN is allowed only for negatives, checked later). */
static int push_digit(uint64_t *acc, int d)
{
    const uint64_t limit = (uint64_t)INT64_MAX + 1;
    if (*acc > (limit - (uint64_t)d) / 10)
        return -1;
    *acc = *acc * 10 + (uint64_t)d;
    return 0;
}

lt_err_t lt_money_parse(const char *s, size_t len, int exponent, int64_t *minor, char *errstr,
                        size_t errlen)
{
    size_t i = 0, nint = 0, nfrac = 0;
    int neg = 0;
    uint64_t acc = 0;
    if (exponent < 0 || exponent > 4)
        return fail(errstr, errlen, "unsupported currency exponent");
    if (len > 0 && (s[0] == '-' || s[0] == '+'))
        neg = s[i++] == '-';
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, nint++)
        if (push_digit(&acc, s[i] - '0') != 0)
            return fail(errstr, errlen, "amount out of range");
    if (nint == 0)
        return fail(errstr, errlen, "amount is not a decimal number");
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nfrac++) {
            if ((int)nfrac < exponent) {
                if (push_digit(&acc, s[i] - '0') != 0)
                    return fail(errstr, errlen, "amount out of range");
            } else if (s[i] != '0') {
                return fail(errstr, errlen, "amount has more precision than the currency");
            }
        }
        if (nfrac == 0)
            return fail(errstr, errlen, "amount is not a decimal number");
    }
    if (i != len)
        return fail(errstr, errlen, "amount is not a decimal number");
    for (int k = (int)nfrac; k < exponent; k++)
        if (push_digit(&acc, 0) != 0)
            return fail(errstr, errlen, "amount out of range");
    if (!neg && acc > (uint64_t)INT64_MAX)
        return fail(errstr, errlen, "amount out of range");
    *minor = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return LT_OK;
}

size_t lt_money_format(int64_t minor, int exponent, char *buf, size_t buflen)
{
    uint64_t mag = minor < 0 ? 0 - (uint64_t)minor : (uint64_t)minor;
    uint64_t scale = 1;
    for (int k = 0; k < exponent; k++)
        scale *= 10;
    int n = exponent == 0
                ? snprintf(buf, buflen, "%s%llu", minor < 0 ? "-" : "", (unsigned long long)mag)
                : snprintf(buf, buflen, "%s%llu.%0*llu", minor < 0 ? "-" : "",
                           (unsigned long long)(mag / scale), exponent,
                           (unsigned long long)(mag % scale));
    return n < 0 || (size_t)n >= buflen ? 0 : (size_t)n;
}
