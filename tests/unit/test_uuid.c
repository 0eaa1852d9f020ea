/* test_uuid: SHA-1 against FIPS 180 vectors, UUIDv5 against Python's
 * uuid.uuid5 (values produced once with CPython and pasted here). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>

#include "lt_test.h"
#include "lt_uuid.h"

static void hex20(const uint8_t d[20], char out[41])
{
    for (int i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void sha1_hex(const void *data, size_t len, char out[41])
{
    uint8_t d[20];

    lt_uuid_sha1(data, len, d);
    hex20(d, out);
}

LT_TEST(sha1_fips_vectors)
{
    static const char two_block[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char hex[41];
    char *million = malloc(1000000);

    sha1_hex("", 0, hex);
    CHECK_STR(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    sha1_hex("abc", 3, hex);
    CHECK_STR(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    sha1_hex(two_block, sizeof(two_block) - 1, hex);
    CHECK_STR(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    CHECK(million != NULL);
    if (million) {
        memset(million, 'a', 1000000);
        sha1_hex(million, 1000000, hex);
        CHECK_STR(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    }
    free(million);
}

/* Lengths around the padding boundaries (55/56/64 bytes), from hashlib. */
LT_TEST(sha1_padding_boundaries)
{
    static const struct {
        size_t n;
        const char *hex;
    } v[] = {
        {55, "8ae2d46729cfe68ff927af5eec9c7d1b66d65ac2"},
        {56, "636e2ec698dac903498e648bd2f3af641d3c88cb"},
        {57, "7cb1330f35244b57437539253304ea78a6b7c443"},
        {63, "6d942da0c4392b123528f2905c713a3ce28364bd"},
        {64, "c6138d514ffa2135bfce0ed0b8fac65669917ec7"},
        {65, "69bd728ad6e13cd76ff19751fde427b00e395746"},
        {119, "41c89d06001bab4ab78736b44efe7ce18ce6ae08"},
        {120, "d3dbd653bd8597b7475321b60a36891278e6a04a"},
        {128, "e6434bc401f98603d7eda504790c98c67385d535"},
    };
    uint8_t buf[128];
    char hex[41];

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i % 251);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        sha1_hex(buf, v[i].n, hex);
        CHECK_STR(hex, v[i].hex);
    }
}

static const uint8_t NS_DNS[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
static const uint8_t NS_URL[16] = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
                                   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};

LT_TEST(uuid5_matches_python)
{
    char u[37];

    lt_uuid_v5(NS_DNS, "python.org", 10, u);
    CHECK_STR(u, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    lt_uuid_v5(NS_DNS, "www.example.com", 15, u);
    CHECK_STR(u, "2ed6657d-e927-568b-95e1-2665a8aea6a2");
    lt_uuid_v5(NS_URL, "http://example.com/a b", 22, u);
    CHECK_STR(u, "80115fa5-e490-5e57-9678-bf2dee0c69e3");
}

LT_TEST(ltvsync_namespace)
{
    char u[37], ns[37];
    const char *name = "demo/transactions/12345/payment";
    char big[1000];

    /* The constant is itself uuid5(DNS, "ltvsync.events"). */
    lt_uuid_v5(NS_DNS, "ltvsync.events", 14, ns);
    CHECK_STR(ns, "e6a6917c-fd67-5b27-a159-859a2f39f7ac");
    lt_uuid_v5(LT_UUID_NS_LTVSYNC, "", 0, u);
    CHECK_STR(u, "8f469a3f-1176-55b6-912b-7e56262b1eb3");
    lt_uuid_v5(LT_UUID_NS_LTVSYNC, "a", 1, u);
    CHECK_STR(u, "92bd10e2-26cd-513a-9237-5be6d01a4c16");
    lt_uuid_v5(LT_UUID_NS_LTVSYNC, name, strlen(name), u);
    CHECK_STR(u, "b6b2251b-14ba-59d1-b11d-e8ab9ea5f1be");
    memset(big, 'x', sizeof(big));
    lt_uuid_v5(LT_UUID_NS_LTVSYNC, big, sizeof(big), u);
    CHECK_STR(u, "96fabffb-9e56-55f9-ae20-414c8e288e33");
}

LT_TEST(uuid4_shape_and_randomness)
{
    char a[37], b[37];

    lt_uuid_v4(a);
    lt_uuid_v4(b);
    CHECK_INT(strlen(a), 36);
    CHECK(strcmp(a, b) != 0);
    CHECK(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    CHECK(a[14] == '4');
    CHECK(strchr("89ab", a[19]) != NULL);
    for (int i = 0; i < 36; i++)
        CHECK(a[i] == '-' || isdigit((unsigned char)a[i]) || (a[i] >= 'a' && a[i] <= 'f'));
}

int main(void)
{
    LT_RUN(sha1_fips_vectors);
    LT_RUN(sha1_padding_boundaries);
    LT_RUN(uuid5_matches_python);
    LT_RUN(ltvsync_namespace);
    LT_RUN(uuid4_shape_and_randomness);
    return LT_DONE();
}
