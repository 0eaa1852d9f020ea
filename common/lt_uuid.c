/* lt_uuid: SHA-1 (FIPS 180-4), UUIDv5 (RFC 4122 section 4.3), UUIDv4. */
#include "lt_uuid.h"

#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>

/* uuid5(NAMESPACE_DNS, "ltvsync.events") = e6a6917c-fd67-5b27-a159-859a2f39f7ac */
const uint8_t LT_UUID_NS_LTVSYNC[16] = {
    0xe6, 0xa6, 0x91, 0x7c, 0xfd, 0x67, 0x5b, 0x27, 0xa1, 0x59, 0x85, 0x9a, 0x2f, 0x39, 0xf7, 0xac,
};

typedef struct {
    uint32_t h[5];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes waiting in block */
} sha1_t;

static uint32_t rol(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One 64-byte block (FIPS 180-4 section 6.1.2), fully unrolled: the five
 * working variables rotate roles from step to step instead of moving, the
 * schedule is a 16-word ring (W[t] overwrites W[t-16]), and every index is a
 * constant. Ch and Maj in their fewer-operation forms. */
#define SHA1_CH(b, c, d)  ((d) ^ ((b) & ((c) ^ (d))))
#define SHA1_PAR(b, c, d) ((b) ^ (c) ^ (d))
#define SHA1_MAJ(b, c, d) (((b) & (c)) | ((d) & ((b) | (c))))
#define SHA1_W(t)    \
    ((t) < 16        \
         ? w[(t)&15] \
         : (w[(t)&15] = rol(w[((t)-3) & 15] ^ w[((t)-8) & 15] ^ w[((t)-14) & 15] ^ w[(t)&15], 1)))
#define SHA1_STEP(v, x, y, z, u, F, K, t)              \
    do {                                               \
        u += rol(v, 5) + F(x, y, z) + (K) + SHA1_W(t); \
        x = rol(x, 30);                                \
    } while (0)
#define SHA1_5(F, K, t)                          \
    do {                                         \
        SHA1_STEP(a, b, c, d, e, F, K, (t));     \
        SHA1_STEP(e, a, b, c, d, F, K, (t) + 1); \
        SHA1_STEP(d, e, a, b, c, F, K, (t) + 2); \
        SHA1_STEP(c, d, e, a, b, F, K, (t) + 3); \
        SHA1_STEP(b, c, d, e, a, F, K, (t) + 4); \
    } while (0)

static void sha1_block(sha1_t *s, const uint8_t *p)
{
    uint32_t w[16], a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];

    for (unsigned t = 0; t < 16; t++)
        w[t] = load_be32(p + 4 * t);
    SHA1_5(SHA1_CH, 0x5a827999u, 0);
    SHA1_5(SHA1_CH, 0x5a827999u, 5);
    SHA1_5(SHA1_CH, 0x5a827999u, 10);
    SHA1_5(SHA1_CH, 0x5a827999u, 15);
    SHA1_5(SHA1_PAR, 0x6ed9eba1u, 20);
    SHA1_5(SHA1_PAR, 0x6ed9eba1u, 25);
    SHA1_5(SHA1_PAR, 0x6ed9eba1u, 30);
    SHA1_5(SHA1_PAR, 0x6ed9eba1u, 35);
    SHA1_5(SHA1_MAJ, 0x8f1bbcdcu, 40);
    SHA1_5(SHA1_MAJ, 0x8f1bbcdcu, 45);
    SHA1_5(SHA1_MAJ, 0x8f1bbcdcu, 50);
    SHA1_5(SHA1_MAJ, 0x8f1bbcdcu, 55);
    SHA1_5(SHA1_PAR, 0xca62c1d6u, 60);
    SHA1_5(SHA1_PAR, 0xca62c1d6u, 65);
    SHA1_5(SHA1_PAR, 0xca62c1d6u, 70);
    SHA1_5(SHA1_PAR, 0xca62c1d6u, 75);
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}
#undef SHA1_5
#undef SHA1_STEP
#undef SHA1_W
#undef SHA1_MAJ
#undef SHA1_PAR
#undef SHA1_CH

static void sha1_init(sha1_t *s)
{
    static const uint32_t h0[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
    memset(s, 0, sizeof(*s));
    memcpy(s->h, h0, sizeof(h0));
}

static void sha1_update(sha1_t *s, const void *data, size_t len)
{
    const uint8_t *p = data;

    s->total += len;
    while (len > 0) {
        size_t n = 64 - s->used < len ? 64 - s->used : len;
        memcpy(s->block + s->used, p, n);
        s->used += n;
        p += n;
        len -= n;
        if (s->used == 64) {
            sha1_block(s, s->block);
            s->used = 0;
        }
    }
}

/* Pads with 0x80, zeros and the 64-bit big-endian bit length. */
static void sha1_final(sha1_t *s, uint8_t out[20])
{
    uint64_t bits = s->total * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (s->used < 56 ? 56 : 120) - s->used;

    for (unsigned i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, pad, padlen + 8);
    for (unsigned i = 0; i < 20; i++)
        out[i] = (uint8_t)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

void lt_uuid_sha1(const void *data, size_t len, uint8_t out[20])
{
    sha1_t s;

    sha1_init(&s);
    sha1_update(&s, data, len);
    sha1_final(&s, out);
}

static void format_uuid(const uint8_t u[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (unsigned i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 0x0f];
    }
    out[o] = '\0';
}

void lt_uuid_v5(const uint8_t ns[16], const void *name, size_t len, char out[37])
{
    uint8_t digest[20];
    sha1_t s;

    sha1_init(&s);
    sha1_update(&s, ns, 16);
    sha1_update(&s, name, len);
    sha1_final(&s, digest);
    digest[6] = (uint8_t)((digest[6] & 0x0f) | 0x50); /* version 5 */
    digest[8] = (uint8_t)((digest[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    format_uuid(digest, out);
}

void lt_uuid_v4(char out[37])
{
    uuid_t u;

    uuid_generate_random(u);
    format_uuid(u, out);
}
