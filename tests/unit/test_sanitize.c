/* Unit tests of lt_sanitize: secrets vanish at every depth, nothing else does. */
#include <stdlib.h>
#include "lt_sanitize.h"
#include "lt_test.h"

static char *sanitized(const char *json, int *removed)
{
    cJSON *root = cJSON_Parse(json);
    if (!root)
        return NULL;
    *removed = lt_sanitize_row(root);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

LT_TEST(secret_keys)
{
    CHECK(lt_sanitize_is_secret_key("eCommercePassword"));
    CHECK(lt_sanitize_is_secret_key("achAccountNumber"));
    CHECK(lt_sanitize_is_secret_key("achRoutingNumber"));
    CHECK(lt_sanitize_is_secret_key("password"));
    CHECK(lt_sanitize_is_secret_key("userPASSWORDhash"));
    CHECK(!lt_sanitize_is_secret_key("passwd"));
    CHECK(!lt_sanitize_is_secret_key("customerId"));
    CHECK(!lt_sanitize_is_secret_key("cardLast4"));
    CHECK(!lt_sanitize_is_secret_key(NULL));
}

LT_TEST(flat_row)
{
    int n = 0;
    char *out = sanitized("{\"customerId\":7,\"eCommercePassword\":\"SECRET-PW-1\","
                          "\"achAccountNumber\":\"123\",\"achRoutingNumber\":\"456\","
                          "\"firstName\":\"Zo\\u00eb\"}", &n);
    CHECK_INT(n, 3);
    CHECK_STR(out, "{\"customerId\":7,\"firstName\":\"Zoë\"}");
    free(out);
}

LT_TEST(nested_rows)
{
    int n = 0;
    char *out = sanitized(
        "{\"paySources\":[{\"achAccountNumber\":\"1\",\"cardLast4\":\"4242\"},"
        "{\"x\":{\"Password\":\"p\",\"y\":[{\"achRoutingNumber\":\"2\"}]}}],"
        "\"transactions\":[{\"transactionId\":5,\"achAccountNumber\":null}],"
        "\"notes\":[\"password is in a value, which stays\"]}", &n);
    CHECK_INT(n, 4);
    CHECK_STR(out, "{\"paySources\":[{\"cardLast4\":\"4242\"},{\"x\":{\"y\":[{}]}}],"
                   "\"transactions\":[{\"transactionId\":5}],"
                   "\"notes\":[\"password is in a value, which stays\"]}");
    free(out);
}

LT_TEST(adjacent_and_only_keys)
{
    int n = 0;
    char *out = sanitized("{\"password\":1,\"eCommercePassword\":2}", &n);
    CHECK_INT(n, 2);
    CHECK_STR(out, "{}");
    free(out);
    CHECK_INT(lt_sanitize_row(NULL), 0);
}

int main(void)
{
    LT_RUN(secret_keys);
    LT_RUN(flat_row);
    LT_RUN(nested_rows);
    LT_RUN(adjacent_and_only_keys);
    return LT_DONE();
}
