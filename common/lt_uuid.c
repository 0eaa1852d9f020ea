/* lt_uuid: SHA-1 (FIPS 180-4), UUIDv5 (RFC 4122 section 4.3), UUIDv4. */
#include "lt_uuid.h"

#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>

/* uuid5(NAMESPACE_DNS, "ltvsync.events") = e6a6917c-fd67-5b27-a159-859a2f39f7ac */
const uint8_t LT_UUID_NS_LTVSYNC[16] = {
    0xe6, 0xa6, 0x91, 0x7c, 0xfd, 0x67, 0x5b, 0x27,
    0xa1, 0x59, 0x85, 0x9a, 0x2f, 0x39, 0xf7, 0xac,
};

typedef struct {
    uint32_t h[5];
    uint64_t total;     /* bytes hashed so far */
    uint8_t  block[64];
    size_t   used;      /* bytes waiting in block */
} sha1_t;

static uint32_t rol(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* f and K of round t (FIPS 180-4 section 4.1.1 and 4.2.1). */
static uint32_t round_fk(unsigned t, uint32_t b, uint32_t c, uint32_t d)
{
    if (t < 20)
        return ((b & c) | (~b & d)) + 0x5a827999u;
    if (t < 40)
        return (b ^ c ^ d) + 0x6ed9eba1u;
    if (t < 60)
        return ((b & c) | (b & d) | (c & d)) + 0x8f1bbcdcu;
    return (b ^ c ^ d) + 0xca62c1d6u;
}

static void sha1_block(sha1_t *s, const uint8_t *p)
{
    uint32_t w[80], a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3],
             e = s->h[4], tmp;

    for (unsigned t = 0; t < 16; t++)
        w[t] = load_be32(p + 4 * t);
    for (unsigned t = 16; t < 80; t++)
        w[t] = rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    for (unsigned t = 0; t < 80; t++) {
        tmp = rol(a, 5) + round_fk(t, b, c, d) + e + w[t];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = tmp;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void sha1_init(sha1_t *s)
{
    static const uint32_t h0[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu,
                                   0x10325476u, 0xc3d2e1f0u};
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
