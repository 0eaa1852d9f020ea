/* lt_dedupe: XXH64 known answers (from Debian's xxhsum -H64), the canonical
 * form (key order and escaping do not matter, fetched_at does not count,
 * every other field does), UUID parsing and buckets. */
#include <stdlib.h>
#include <string.h>
#include "lt_dedupe.h"
#include "lt_json.h"
#include "lt_test.h"

#define EV                                                                                \
    "{\"schema\":\"ltv.event.v1\",\"event_id\":\"0f8c4a52-9b1e-5c3d-8e7f-123456789abc\"," \
    "\"type\":\"payment\",\"amount_minor\":1999,\"local_date\":\"2024-01-01\","           \
    "\"product_ids\":[\"7\",\"8\"],\"affiliate_id\":null,"                                \
    "\"source\":{\"stream\":\"transactions\",\"record_id\":\"t1\","                       \
    "\"fetched_at\":\"2024-01-02T00:00:00Z\",\"date_updated\":\"2024-01-01 00:00:00\"}}"

static uint64_t hash_of(const char *json)
{
    char err[128];
    uint64_t h = 0;
    cJSON *root = lt_json_parse(json, strlen(json), 1 << 20, err, sizeof(err));
    CHECK(root != NULL);
    CHECK(lt_dedupe_content_hash(root, &h, err, sizeof(err)) == 0);
    cJSON_Delete(root);
    return h;
}

/* EV with the first occurrence of `from` replaced by `to`. */
static uint64_t hash_with(const char *from, const char *to)
{
    char buf[2048];
    const char *at = strstr(EV, from);
    CHECK(at != NULL);
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - EV), EV, to, at + strlen(from));
    return hash_of(buf);
}

LT_TEST(xxh64_known_answers)
{
    const char *longer = "ltvsync dedupe content hash test vector, longer than thirty-two bytes";
    CHECK(lt_dedupe_xxh64("", 0, 0) == 0xef46db3751d8e999ULL);
    CHECK(lt_dedupe_xxh64("a", 1, 0) == 0xd24ec4f1a98c6e5bULL);
    CHECK(lt_dedupe_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ULL);
    CHECK(lt_dedupe_xxh64(longer, strlen(longer), 0) == 0x41d54cff7b650dafULL);
}

LT_TEST(canonical_sorts_and_drops_fetched_at)
{
    char err[128];
    size_t len;
    const char *in = "{\"b\":1,\"a\":\"x\\u0041\\\"\",\"source\":{\"fetched_at\":\"t\","
                     "\"record_id\":\"r\"},\"n\":[1.5,true,null]}";
    cJSON *root = lt_json_parse(in, strlen(in), 4096, err, sizeof(err));
    char *c = lt_dedupe_canonical(root, &len, err, sizeof(err));
    CHECK_STR(c,
              "{\"a\":\"xA\\\"\",\"b\":1,\"n\":[1.5,true,null],\"source\":{\"record_id\":\"r\"}}");
    CHECK_INT(len, c ? strlen(c) : 0);
    free(c);
    cJSON_Delete(root);
}

LT_TEST(canonical_refuses_duplicate_keys)
{
    char err[128];
    size_t len;
    const char *in = "{\"a\":1,\"b\":2,\"a\":3}";
    cJSON *root = lt_json_parse(in, strlen(in), 4096, err, sizeof(err));
    CHECK(lt_dedupe_canonical(root, &len, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "duplicate") != NULL);
    cJSON_Delete(root);
}

LT_TEST(hash_ignores_order_escaping_and_fetched_at)
{
    uint64_t h = hash_of(EV);
    CHECK(hash_with("2024-01-02T00:00:00Z", "2025-06-30T12:34:56Z") == h);
    CHECK(hash_with("\"schema\":\"ltv.event.v1\",", "\"schema\":\"ltv.event\\u002ev1\",") == h);
    CHECK(hash_with("\"amount_minor\":1999", "\"amount_minor\":1999.0") == h);
    CHECK(hash_with("{\"schema\":\"ltv.event.v1\",\"event_id\"", "{\"event_id\"") !=
          h); /* schema gone: differs */
}

LT_TEST(hash_sees_every_content_change)
{
    uint64_t h = hash_of(EV);
    CHECK(hash_with("2024-01-01\"", "2023-12-31\"") != h);               /* local_date */
    CHECK(hash_with("1999", "-1999") != h);                              /* amount */
    CHECK(hash_with("2024-01-01 00:00:00", "2024-01-03 00:00:00") != h); /* date_updated */
    CHECK(hash_with("[\"7\",\"8\"]", "[\"8\",\"7\"]") != h);             /* array order */
    CHECK(hash_with("\"affiliate_id\":null", "\"affiliate_id\":\"\"") != h);
}

LT_TEST(uuid_parse_and_bucket)
{
    uint8_t id[16], h8[8];
    CHECK(lt_dedupe_uuid_parse("0f8c4a52-9b1e-5c3d-8e7f-123456789abc", 36, id) == 0);
    CHECK_INT(id[0], 0x0f);
    CHECK_INT(id[15], 0xbc);
    CHECK_INT(lt_dedupe_bucket(id), (0x0f8c) >> (16 - LT_DEDUPE_BUCKET_BITS));
    CHECK(lt_dedupe_uuid_parse("0F8C4A52-9B1E-5C3D-8E7F-123456789ABC", 36, id) < 0);
    CHECK(lt_dedupe_uuid_parse("0f8c4a52-9b1e-5c3d-8e7f-123456789ab", 35, id) < 0);
    CHECK(lt_dedupe_uuid_parse("0f8c4a52x9b1e-5c3d-8e7f-123456789abc", 36, id) < 0);
    CHECK(lt_dedupe_uuid_parse("0f8c4a52-9b1e-5c3d-8e7f-123456789abg", 36, id) < 0);
    memset(id, 0xff, sizeof(id));
    CHECK_INT(lt_dedupe_bucket(id), LT_DEDUPE_BUCKETS - 1);
    lt_dedupe_hash_bytes(0x0102030405060708ULL, h8);
    CHECK_INT(h8[0], 8);
    CHECK(lt_dedupe_hash_from_bytes(h8) == 0x0102030405060708ULL);
}

int main(void)
{
    LT_RUN(xxh64_known_answers);
    LT_RUN(canonical_sorts_and_drops_fetched_at);
    LT_RUN(canonical_refuses_duplicate_keys);
    LT_RUN(hash_ignores_order_escaping_and_fetched_at);
    LT_RUN(hash_sees_every_content_change);
    LT_RUN(uuid_parse_and_bucket);
    return LT_DONE();
}
