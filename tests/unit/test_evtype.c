/* lt_evtype: names and parsing agree, and the list is the schema's "type"
 * enum in the same order (schemas/event.schema.json, read from the source
 * tree: ctest runs unit tests in tests/unit). */
#include <stdio.h>
#include <stdlib.h>
#include <cjson/cJSON.h>

#include "lt_evtype.h"
#include "lt_test.h"

LT_TEST(round_trip)
{
    for (int i = 0; i < LT_EV_COUNT; i++) {
        CHECK(lt_evtype_name((lt_evtype_t)i)[0] != '\0');
        CHECK_INT(lt_evtype_parse(lt_evtype_name((lt_evtype_t)i)), i);
    }
    CHECK_INT(lt_evtype_parse("gift"), -1);
    CHECK_INT(lt_evtype_parse(NULL), -1);
    CHECK_INT(lt_evtype_parse("Payment"), -1);
    CHECK_STR(lt_evtype_name(LT_EV_COUNT), "");
    CHECK(lt_evtype_is_transaction(LT_EV_DECLINE));
    CHECK(!lt_evtype_is_transaction(LT_EV_ORDER));
}

LT_TEST(equals_the_schema)
{
    FILE *f = fopen("../../schemas/event.schema.json", "rb");
    static char text[1 << 16];
    size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
    cJSON *schema, *types, *t;
    int i = 0;
    if (f)
        fclose(f);
    CHECK(n > 0 && n < sizeof(text) - 1);
    text[n] = '\0';
    schema = cJSON_Parse(text);
    types = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(schema, "properties"), "type"), "enum");
    CHECK_INT(cJSON_GetArraySize(types), LT_EV_COUNT);
    cJSON_ArrayForEach(t, types)
    {
        CHECK(cJSON_IsString(t));
        if (cJSON_IsString(t))
            CHECK_STR(lt_evtype_name((lt_evtype_t)i), t->valuestring);
        i++;
    }
    cJSON_Delete(schema);
}

int main(void)
{
    LT_RUN(round_trip);
    LT_RUN(equals_the_schema);
    return LT_DONE();
}
