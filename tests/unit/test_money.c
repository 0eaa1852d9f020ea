/* Unit tests for lt_money (the property test against Python's decimal is
 * tests/integration/test_money_oracle.py). */
#include <stdint.h>
#include <string.h>

#include "lt_money.h"
#include "lt_test.h"

static int64_t parse(const char *s, const char *cur, lt_err_t *err)
{
    char errstr[128];
    int64_t v = INT64_MIN + 7; /* sentinel: untouched on error */
    *err = lt_money_parse(s, strlen(s), lt_money_exponent(cur, 3), &v, errstr, sizeof(errstr));
    return v;
}

LT_TEST(exponents)
{
    CHECK_INT(lt_money_exponent("USD", 3), 2);
    CHECK_INT(lt_money_exponent("EUR", 3), 2);
    CHECK_INT(lt_money_exponent("JPY", 3), 0);
    CHECK_INT(lt_money_exponent("KRW", 3), 0);
    CHECK_INT(lt_money_exponent("KWD", 3), 3);
    CHECK_INT(lt_money_exponent("BHD", 3), 3);
    CHECK_INT(lt_money_exponent("XYZ", 3), -1);
    CHECK_INT(lt_money_exponent("usd", 3), -1);
    CHECK_INT(lt_money_exponent("USDX", 4), -1);
}

LT_TEST(valid)
{
    lt_err_t err;
    CHECK_INT(parse("29.99", "USD", &err), 2999);
    CHECK_INT(err, LT_OK);
    CHECK_INT(parse("1.50", "USD", &err), 150);
    CHECK_INT(parse("1.5", "USD", &err), 150);
    CHECK_INT(parse("1.500000", "USD", &err), 150);
    CHECK_INT(parse("-1.00", "USD", &err), -100);
    CHECK_INT(parse("+3", "USD", &err), 300);
    CHECK_INT(parse("1500", "JPY", &err), 1500);
    CHECK_INT(parse("1500.00", "JPY", &err), 1500);
    CHECK_INT(parse("1.250", "KWD", &err), 1250);
    CHECK_INT(parse("0", "USD", &err), 0);
    CHECK_INT(parse("92233720368547758.07", "USD", &err), INT64_MAX);
    CHECK_INT(parse("-92233720368547758.08", "USD", &err), INT64_MIN);
    CHECK_INT(err, LT_OK);
}

LT_TEST(malformed)
{
    const char *bad[] = {"",
                         "1.2.3",
                         "abc",
                         "1.005",
                         "1500.5x",
                         ".5",
                         "5.",
                         "1,00",
                         " 1.00",
                         "1.00 ",
                         "1e2",
                         "--1",
                         "-",
                         "0x10",
                         "92233720368547758.08",
                         "-92233720368547758.09",
                         "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lt_err_t err;
        int64_t v = parse(bad[i], "USD", &err);
        CHECK_INT(err, LT_ERR_PERMANENT);
        CHECK_INT(v, INT64_MIN + 7);
    }
    lt_err_t err;
    parse("1.5", "JPY", &err);
    CHECK_INT(err, LT_ERR_PERMANENT);
    parse("1.00", "XYZ", &err); /* exponent -1 */
    CHECK_INT(err, LT_ERR_PERMANENT);
}

LT_TEST(format_round_trip)
{
    char buf[32];
    lt_money_format(-1230, 2, buf, sizeof(buf));
    CHECK_STR(buf, "-12.30");
    lt_money_format(5, 3, buf, sizeof(buf));
    CHECK_STR(buf, "0.005");
    lt_money_format(1500, 0, buf, sizeof(buf));
    CHECK_STR(buf, "1500");
    lt_money_format(INT64_MIN, 2, buf, sizeof(buf));
    CHECK_STR(buf, "-92233720368547758.08");
}

int main(void)
{
    LT_RUN(exponents);
    LT_RUN(valid);
    LT_RUN(malformed);
    LT_RUN(format_round_trip);
    return LT_DONE();
}
