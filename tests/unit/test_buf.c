/* test_buf: lt_buf growth and lt_buf_json_str escaping, checked against
 * cJSON (an independent parser): every string it writes parses back to the
 * same bytes, and only the bytes JSON requires are escaped. */
#include <stdint.h>
#include <stdlib.h>

#include "lt_buf.h"
#include "lt_json.h"
#include "lt_test.h"

LT_TEST(put_grows_and_terminates)
{
    lt_buf_t b = {0};
    char want[5000];

    for (int i = 0; i < 5000; i++) {
        char c = (char)('a' + i % 26);
        lt_buf_put(&b, &c, 1);
        want[i] = c;
        if (b.len != (size_t)i + 1 || b.p[b.len] != '\0')
            break;
    }
    CHECK(!b.oom);
    CHECK_INT((long long)b.len, 5000);
    CHECK(b.p && memcmp(b.p, want, 5000) == 0 && b.p[5000] == '\0');
    CHECK(b.cap > b.len);
    lt_buf_put(&b, "", 0);
    CHECK_INT((long long)b.len, 5000);
    lt_buf_release(&b);
    CHECK(b.p == NULL && b.len == 0 && b.cap == 0);
    lt_buf_release(&b); /* twice, and never written */
}

LT_TEST(put_exactly_fills)
{
    lt_buf_t b = {0};

    lt_buf_put(&b, "x", 1); /* first allocation */
    size_t room = b.cap - b.len - 1;
    char *fill = malloc(room + 1);
    memset(fill, 'y', room + 1);
    lt_buf_put(&b, fill, room); /* exactly full, NUL in the last byte */
    CHECK_INT((long long)b.len, (long long)b.cap - 1);
    lt_buf_put(&b, fill, 1); /* grows */
    CHECK(b.cap > b.len && b.p[b.len] == '\0' && b.p[b.len - 1] == 'y');
    free(fill);
    lt_buf_release(&b);
}

/* lt_buf_json_str of s[0, n) parses (cJSON) back to exactly s. */
static int round_trips(const unsigned char *s, size_t n)
{
    lt_buf_t b = {0};
    cJSON *j;
    int ok;

    lt_buf_json_str(&b, s, n);
    j = cJSON_ParseWithLength(b.p, b.len);
    ok = !b.oom && cJSON_IsString(j) && strlen(j->valuestring) == n &&
         memcmp(j->valuestring, s, n) == 0;
    /* nothing escaped that needs no escape: raw bytes >= 0x20 except " and \ */
    for (size_t i = 1; ok && i + 1 < b.len; i++) {
        unsigned char c = (unsigned char)b.p[i];
        if (c < 0x20)
            ok = 0;
    }
    cJSON_Delete(j);
    lt_buf_release(&b);
    return ok;
}

LT_TEST(json_str_escapes)
{
    lt_buf_t b = {0};

    lt_buf_json_str(&b, "a\"b\\c\n\x01\x1f", 8);
    CHECK_STR(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\\u001f\"");
    b.len = 0;
    lt_buf_json_str(&b, "plain text, 24 bytes ok", 23);
    CHECK_STR(b.p, "\"plain text, 24 bytes ok\"");
    b.len = 0;
    lt_buf_json_str(&b, "", 0);
    CHECK_STR(b.p, "\"\"");
    b.len = 0;
    lt_buf_json_str(&b, "\x7f\xc3\xa9", 3); /* DEL and UTF-8 stay raw */
    CHECK_STR(b.p, "\"\x7f\xc3\xa9\"");
    lt_buf_release(&b);
}

/* Each escapable byte at every position of strings up to 70 bytes (the
 * 16-byte SSE2 steps and the byte-wise tail both see it), and random
 * strings. */
LT_TEST(json_str_round_trips)
{
    unsigned char s[80];
    static const unsigned char special[] = {'"', '\\', 0x01, 0x0a, 0x1f, 0x7f, 0x20, 0xff};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int bad = 0;

    for (size_t n = 0; n <= 70; n++)
        for (size_t pos = 0; pos < n; pos++)
            for (size_t k = 0; k < sizeof(special); k++) {
                memset(s, 'm', n);
                s[pos] = special[k];
                bad += !round_trips(s, n);
            }
    for (int t = 0; t < 20000; t++) {
        size_t n = (size_t)(t % 77);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            s[i] = (unsigned char)(x % 255 + 1); /* no NUL: cJSON strings end there */
        }
        bad += !round_trips(s, n);
    }
    CHECK_INT(bad, 0);
}

int main(void)
{
    LT_RUN(put_grows_and_terminates);
    LT_RUN(put_exactly_fills);
    LT_RUN(json_str_escapes);
    LT_RUN(json_str_round_trips);
    return LT_DONE();
}
