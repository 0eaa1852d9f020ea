/* Key names (lt_rkeys) in both layouts, and the cluster slot of a key
 * (lt_redis_key_slot) against values Redis' CLUSTER KEYSLOT gives. */
#include <string.h>
#include "lt_redis.h"
#include "lt_rkeys.h"
#include "lt_test.h"

LT_TEST(test_slots)
{
    /* CLUSTER KEYSLOT of each, as redis-server 7.0 answers */
    CHECK(lt_redis_key_slot("123456789", 9) == 12739); /* CRC16 0x31C3 */
    CHECK(lt_redis_key_slot("foo", 3) == 12182);
    CHECK(lt_redis_key_slot("", 0) == 0);
    /* a hash tag: only what is inside the first non-empty {...} counts */
    CHECK(lt_redis_key_slot("user:{42}:profile", 17) == lt_redis_key_slot("42", 2));
    CHECK(lt_redis_key_slot("{foo}bar", 8) == 12182);
    /* "{}" is no tag (the whole key is hashed), nor is an unclosed '{' */
    CHECK_INT(lt_redis_key_slot("{}foo", 5), 9500 /* CLUSTER KEYSLOT {}foo */);
    CHECK_INT(lt_redis_key_slot("foo{", 4), 7673 /* CLUSTER KEYSLOT foo{ */);
    /* only the first tag counts */
    CHECK(lt_redis_key_slot("{a}{b}", 6) == lt_redis_key_slot("a", 1));
}

LT_TEST(test_layouts)
{
    char buf[128], a[128], b[128];
    lt_rkeys_set_cluster(0);
    CHECK(lt_rkey_integ(buf, sizeof(buf), "ltvsync:", "acme-1", "state") > 0);
    CHECK(!strcmp(buf, "ltvsync:i:acme-1:state"));
    CHECK(lt_rkey_global(buf, sizeof(buf), "ltvsync:", "leader") > 0);
    CHECK(!strcmp(buf, "ltvsync:leader"));
    lt_rkeys_set_cluster(1);
    CHECK(lt_rkey_integ(buf, sizeof(buf), "ltvsync:", "acme-1", "state") > 0);
    CHECK(!strcmp(buf, "ltvsync:i:{acme-1}:state"));
    CHECK(lt_rkey_integ(a, sizeof(a), "p:", "acme-1", "done:orders") > 0);
    CHECK(lt_rkey_integ(b, sizeof(b), "p:", "acme-1", "outstanding") > 0);
    CHECK(lt_redis_key_slot(a, strlen(a)) == lt_redis_key_slot(b, strlen(b)));
    CHECK(lt_rkey_global(a, sizeof(a), "p:", "leader") > 0);
    CHECK(!strcmp(a, "p:{g}:leader"));
    CHECK(lt_rkey_global(b, sizeof(b), "p:", "fence") > 0);
    CHECK(lt_redis_key_slot(a, strlen(a)) == lt_redis_key_slot(b, strlen(b)));
    /* too small: -1 and an empty string, never a cut name */
    CHECK(lt_rkey_integ(buf, 10, "ltvsync:", "acme-1", "state") == -1 && buf[0] == '\0');
    CHECK(lt_rkey_dedupe_stem(a, sizeof(a), "p:", 0x3fff) > 0 && !strcmp(a, "p:dd2:{f}:"));
    CHECK(lt_rkey_dedupe_stem(a, sizeof(a), "p:", 0x03ff) > 0 && !strcmp(a, "p:dd2:{0}:"));
    lt_rkeys_set_cluster(0);
    CHECK(lt_rkey_dedupe_stem(a, sizeof(a), "p:", 0x3fff) > 0 && !strcmp(a, "p:dd2:"));
    CHECK(lt_rkey_prefix_ok("ltvsync:") && !lt_rkey_prefix_ok("a{b}:") && !lt_rkey_prefix_ok(NULL));
}

int main(void)
{
    LT_RUN(test_slots);
    LT_RUN(test_layouts);
    return LT_DONE();
}
