/* lt_money: exact decimal amounts in a currency's minor unit.
 *
 * No floating point: "29.99" USD is 2999, "1500" JPY is 1500, "1.250" KWD is
 * 1250. Grammar: [+-]?DIGITS[.DIGITS] (no spaces, exponents or separators).
 * Extra fraction digits are allowed only when they are zeros ("1.50" USD);
 * "1.005" USD is an error, never rounded. */
#ifndef LT_MONEY_H
#define LT_MONEY_H

#include <stddef.h>
#include <stdint.h>
#include "lt_err.h"

/* ISO 4217 minor-unit exponent of an upper-case alphabetic code (3 bytes at
 * code, len must be 3), or -1 for a currency we do not know. */
int lt_money_exponent(const char *code, size_t len);

/* Parses len bytes at s into *minor for `exponent` fraction digits.
 * LT_ERR_PERMANENT with a reason on malformed text, non-zero excess
 * precision or an amount outside int64. */
lt_err_t lt_money_parse(const char *s, size_t len, int exponent, int64_t *minor, char *errstr,
                        size_t errlen);

/* Formats minor units back to a decimal string ("-12.30"); buf >= 24 bytes.
 * Returns the length. */
size_t lt_money_format(int64_t minor, int exponent, char *buf, size_t buflen);

#endif
