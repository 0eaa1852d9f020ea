/* lt_dedupe: see lt_dedupe.h. */
#include "lt_dedupe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_buf.h"

/* ---- XXH64, written from the published algorithm description ---- */

#define P64_1 0x9E3779B185EBCA87ULL
#define P64_2 0xC2B2AE3D27D4EB4FULL
#define P64_3 0x165667B19E3779F9ULL
#define P64_4 0x85EBCA77C2B2AE63ULL
#define P64_5 0x27D4EB2F165667C5ULL

static uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Little-endian loads independent of host order and alignment. */
static uint64_t load64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t load32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t xxh_round(uint64_t acc, uint64_t input)
{
    acc += input * P64_2;
    acc = rotl64(acc, 31);
    return acc * P64_1;
}

static uint64_t xxh_merge(uint64_t acc, uint64_t val)
{
    acc ^= xxh_round(0, val);
    return acc * P64_1 + P64_4;
}

/* The 32-byte stripes of inputs of 32 bytes or more. */
static uint64_t xxh_stripes(const unsigned char **pp, const unsigned char *end, uint64_t seed)
{
    const unsigned char *p = *pp;
    uint64_t v1 = seed + P64_1 + P64_2, v2 = seed + P64_2, v3 = seed, v4 = seed - P64_1, h;
    do {
        v1 = xxh_round(v1, load64(p));
        v2 = xxh_round(v2, load64(p + 8));
        v3 = xxh_round(v3, load64(p + 16));
        v4 = xxh_round(v4, load64(p + 24));
        p += 32;
    } while (p + 32 <= end);
    h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    h = xxh_merge(h, v1);
    h = xxh_merge(h, v2);
    h = xxh_merge(h, v3);
    h = xxh_merge(h, v4);
    *pp = p;
    return h;
}

uint64_t lt_dedupe_xxh64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data, *end = p + len;
    uint64_t h = len >= 32 ? xxh_stripes(&p, end, seed) : seed + P64_5;

    h += (uint64_t)len;
    for (; p + 8 <= end; p += 8) {
        h ^= xxh_round(0, load64(p));
        h = rotl64(h, 27) * P64_1 + P64_4;
    }
    if (p + 4 <= end) {
        h ^= (uint64_t)load32(p) * P64_1;
        h = rotl64(h, 23) * P64_2 + P64_3;
        p += 4;
    }
    for (; p < end; p++) {
        h ^= (uint64_t)*p * P64_5;
        h = rotl64(h, 11) * P64_1;
    }
    h ^= h >> 33;
    h *= P64_2;
    h ^= h >> 29;
    h *= P64_3;
    h ^= h >> 32;
    return h;
}

/* ---- canonical JSON ---- */

/* "%lld" of v without printf (the common case: amounts, counts). */
static void put_ll(lt_buf_t *b, long long v)
{
    char num[24];
    size_t i = sizeof(num);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        num[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        num[--i] = '-';
    lt_buf_put(b, num + i, sizeof(num) - i);
}

static int cb_number(lt_buf_t *b, double v)
{
    char num[40];
    if (!isfinite(v))
        return -1;
    /* Integers of the I-JSON safe range print exactly in decimal. */
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        put_ll(b, (long long)v);
        return 0;
    }
    snprintf(num, sizeof(num), "%.17g", v);
    lt_buf_put(b, num, strlen(num));
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static int canon(lt_buf_t *b, const cJSON *it, int depth, int in_source);

/* The members kids[0..n), sorted by key, as one object; a duplicate key
 * makes the content ambiguous. */
static int canon_members(lt_buf_t *b, const cJSON *const *kids, size_t n, int depth, int in_source)
{
    size_t i, out = 0;
    lt_buf_put(b, "{", 1);
    for (i = 0; i < n; i++) {
        if (i > 0 && strcmp(kids[i - 1]->string, kids[i]->string) == 0)
            return -1;
        if (in_source && strcmp(kids[i]->string, "fetched_at") == 0)
            continue; /* volatile: differs on every re-fetch */
        if (out++)
            lt_buf_put(b, ",", 1);
        lt_buf_json_str(b, kids[i]->string, strlen(kids[i]->string));
        lt_buf_put(b, ":", 1);
        if (canon(b, kids[i], depth + 1, depth == 0 && strcmp(kids[i]->string, "source") == 0) < 0)
            return -1;
    }
    lt_buf_put(b, "}", 1);
    return 0;
}

static int canon_object(lt_buf_t *b, const cJSON *obj, int depth, int in_source)
{
    const cJSON *kids[256], *c;
    size_t n = 0;
    cJSON_ArrayForEach(c, obj)
    {
        if (n == sizeof(kids) / sizeof(kids[0]) || !c->string)
            return -1;
        kids[n++] = c;
    }
    qsort(kids, n, sizeof(kids[0]), key_cmp);
    return canon_members(b, kids, n, depth, in_source);
}

static int canon(lt_buf_t *b, const cJSON *it, int depth, int in_source)
{
    const cJSON *c;
    int first = 1;
    if (depth > 16)
        return -1;
    if (cJSON_IsObject(it))
        return canon_object(b, it, depth, in_source);
    if (cJSON_IsArray(it)) {
        lt_buf_put(b, "[", 1);
        cJSON_ArrayForEach(c, it)
        {
            if (!first)
                lt_buf_put(b, ",", 1);
            first = 0;
            if (canon(b, c, depth + 1, 0) < 0)
                return -1;
        }
        lt_buf_put(b, "]", 1);
        return 0;
    }
    if (cJSON_IsString(it)) {
        lt_buf_json_str(b, it->valuestring ? it->valuestring : "",
                        it->valuestring ? strlen(it->valuestring) : 0);
        return 0;
    }
    if (cJSON_IsNumber(it))
        return cb_number(b, it->valuedouble);
    if (cJSON_IsBool(it)) {
        lt_buf_put(b, cJSON_IsTrue(it) ? "true" : "false", cJSON_IsTrue(it) ? 4 : 5);
        return 0;
    }
    lt_buf_put(b, "null", 4);
    return 0;
}

char *lt_dedupe_canonical(const cJSON *event, size_t *len, char *errstr, size_t errlen)
{
    lt_buf_t b = {0};
    if (canon(&b, event, 0, 0) < 0 || b.oom || !b.p) {
        snprintf(errstr, errlen, "%s",
                 b.oom ? "out of memory"
                       : "cannot canonicalise (duplicate key, non-finite number or too deep)");
        lt_buf_release(&b);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

int lt_dedupe_content_hash(const cJSON *event, uint64_t *out, char *errstr, size_t errlen)
{
    size_t len;
    char *s = lt_dedupe_canonical(event, &len, errstr, errlen);
    if (!s)
        return -1;
    *out = lt_dedupe_xxh64(s, len, 0);
    free(s);
    return 0;
}

int lt_dedupe_members_hash(const cJSON *const *members, size_t n, lt_buf_t *scratch, uint64_t *out)
{
    for (size_t i = 0; i < n; i++)
        if (!members[i]->string ||
            (i > 0 && strcmp(members[i - 1]->string, members[i]->string) >= 0))
            return -1; /* not strictly in key order: the caller takes the general path */
    scratch->len = 0;
    if (canon_members(scratch, members, n, 0, 0) < 0 || scratch->oom || !scratch->p)
        return -1;
    *out = lt_dedupe_xxh64(scratch->p, scratch->len, 0);
    return 0;
}

int lt_dedupe_keyed_hash(const char *const *keys, const size_t *klens, const cJSON *const *vals,
                         size_t n, size_t source, lt_buf_t *scratch, uint64_t *out)
{
    scratch->len = 0;
    lt_buf_put(scratch, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            lt_buf_put(scratch, ",", 1);
        lt_buf_put(scratch, keys[i], klens[i]);
        if (canon(scratch, vals[i], 1, i == source) < 0)
            return -1;
    }
    lt_buf_put(scratch, "}", 1);
    if (scratch->oom || !scratch->p)
        return -1;
    *out = lt_dedupe_xxh64(scratch->p, scratch->len, 0);
    return 0;
}

/* ---- ids and stored forms ---- */

/* Value + 1 of a lower-case hex digit; 0 for any other byte. */
static const unsigned char HEXV[256] = {
    ['0'] = 1, ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

static int hexval(char c)
{
    return (int)HEXV[(unsigned char)c] - 1;
}

int lt_dedupe_uuid_parse(const char *s, size_t len, uint8_t out[16])
{
    size_t i, n = 0;
    if (len != 36)
        return -1;
    for (i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23, hi, lo;
        if (dash) {
            if (s[i] != '-')
                return -1;
            continue;
        }
        if ((hi = hexval(s[i])) < 0 || (lo = hexval(s[i + 1])) < 0)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    return 0;
}

unsigned lt_dedupe_bucket(const uint8_t id[16])
{
    unsigned top = (unsigned)id[0] << 8 | id[1];
    return top >> (16 - LT_DEDUPE_BUCKET_BITS);
}

void lt_dedupe_bucket_hex(const uint8_t id[16], char out[4])
{
    static const char hex[] = "0123456789abcdef";
    unsigned b = lt_dedupe_bucket(id);
    for (int i = 3; i >= 0; i--, b >>= 4)
        out[i] = hex[b & 15];
}

void lt_dedupe_field(const uint8_t id[16], uint8_t out[LT_DEDUPE_FIELD_BYTES])
{
    memcpy(out, id + 2, LT_DEDUPE_FIELD_BYTES);
}

void lt_dedupe_hash_bytes(uint64_t h, uint8_t out[8])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(h >> (8 * i));
}

uint64_t lt_dedupe_hash_from_bytes(const uint8_t in[8])
{
    return load64(in);
}
