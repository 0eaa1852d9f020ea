/* lt_jtree: strict JSON -> read-only cJSON tree in a bump arena.
 *
 * One parse = one copy of the input into the arena (len + 1, NUL sentinel at
 * len), then a single iterative pass over the copy: strings are unescaped and
 * NUL-terminated in place (an unescaped string is never longer than its
 * escaped text), nodes are bump-allocated with every field written. The
 * sentinel lets the hot loops run without bounds checks: it is neither
 * whitespace, nor a string byte, nor a digit, nor a hex digit, so every scan
 * stops on it, and a stop at `end` reads as "unexpected end of input". */
#include "lt_jtree.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lt_buf.h" /* lt_json_special16 */

#if defined(__SANITIZE_ADDRESS__)
#define LT_JTREE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LT_JTREE_ASAN 1
#endif
#endif
/* Under ASan, free arena bytes are poisoned and the input copy gets a
 * poisoned redzone, so a read past the sentinel fails loudly in tests. */
#ifdef LT_JTREE_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define REDZONE        16
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define REDZONE        0
#endif

/* Chunk size (mapping size, header included); bigger requests get their own. */
#define CHUNK_BYTES ((size_t)1 << 20)
#define ALIGN16(n)  (((n) + 15) & ~(size_t)15)

/* A spare chunk (one no round has used for this many resets) is freed at
 * the next reset: an arena keeps what its recent rounds needed, not the
 * peak of its life (a normalizer that caught up a backlog in full batches
 * would otherwise hold those batches' megabytes for as long as it runs). */
#define KEEP_ROUNDS 16

struct chunk {
    struct chunk *next;
    size_t size; /* usable bytes in data */
    size_t used;
    size_t idle; /* resets since a round last used it; keeps data 16-byte aligned */
    unsigned char data[];
};
_Static_assert(sizeof(struct chunk) % 16 == 0, "chunk header keeps 16-byte alignment");

/* Chunks are mappings of their own, not malloc blocks: a freed chunk goes
 * back to the system at once, and freeing one does not raise glibc's
 * dynamic mmap threshold. (Freed malloc'd chunks did: after the first, every
 * block up to 1 MiB came from the heap, and a normalizer's [heap] resident
 * grew 1.1 to 3.9 MiB in a 40-minute soak with its heap in use flat.) */
static atomic_size_t mapped; /* bytes of every arena's chunks, for lt_jarena_mapped_bytes */

static struct chunk *chunk_new(size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t)page : 4096, len;
    void *p;

    if (size > SIZE_MAX - sizeof(struct chunk) - pg)
        return NULL;
    len = (sizeof(struct chunk) + size + pg - 1) / pg * pg;
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    UNPOISON(p, len); /* the shadow of an earlier mapping here may be poisoned */
    atomic_fetch_add(&mapped, len);
    ((struct chunk *)p)->size = len - sizeof(struct chunk);
    return p;
}

static void chunk_free(struct chunk *c)
{
    atomic_fetch_sub(&mapped, sizeof(*c) + c->size);
    UNPOISON(c, sizeof(*c) + c->size);
    munmap(c, sizeof(*c) + c->size);
}

size_t lt_jarena_mapped_bytes(void)
{
    return atomic_load(&mapped);
}

/* Chunks in order of use; cur is the one being filled (NULL before the first
 * allocation). Chunks after cur are free and are reused before new ones. */
struct lt_jarena {
    struct chunk *head;
    struct chunk *cur;
    size_t bytes;
};

lt_jarena_t *lt_jarena_new(void)
{
    return calloc(1, sizeof(lt_jarena_t));
}

/* Poisons the arena's free bytes: the rest of cur, all of every later chunk
 * (all chunks when cur is NULL). ASan builds only. */
static void poison_free(const lt_jarena_t *a)
{
#ifdef LT_JTREE_ASAN
    struct chunk *c = a->cur ? a->cur->next : a->head;

    if (a->cur)
        POISON(a->cur->data + a->cur->used, a->cur->size - a->cur->used);
    for (; c; c = c->next)
        POISON(c->data, c->size);
#else
    (void)a;
#endif
}

/* Ages the chunks after cur (unused this round) and frees those idle for
 * more than KEEP_ROUNDS; the used ones start again at 0. A reset with
 * nothing allocated since the last one is not a round. */
static void age_spares(lt_jarena_t *a)
{
    struct chunk *c, *prev, *next;

    if (!a->cur || (a->cur == a->head && a->cur->used == 0))
        return;
    for (c = a->head; c != a->cur; c = c->next)
        c->idle = 0;
    a->cur->idle = 0;
    for (prev = a->cur, c = a->cur->next; c; c = next) {
        next = c->next;
        if (++c->idle > KEEP_ROUNDS) {
            prev->next = next;
            a->bytes -= sizeof(*c) + c->size;
            chunk_free(c);
        } else {
            prev = c;
        }
    }
}

void lt_jarena_reset(lt_jarena_t *a)
{
    if (!a)
        return;
    age_spares(a);
    a->cur = a->head;
    if (a->cur)
        a->cur->used = 0;
    poison_free(a);
}

void lt_jarena_destroy(lt_jarena_t *a)
{
    struct chunk *c, *next;

    if (!a)
        return;
    for (c = a->head; c; c = next) {
        next = c->next;
        chunk_free(c);
    }
    free(a);
}

size_t lt_jarena_bytes(const lt_jarena_t *a)
{
    return a ? a->bytes : 0;
}

/* n is a multiple of 16. Takes the next free chunk if it fits, otherwise
 * inserts a new chunk after cur. */
static void *arena_alloc_slow(lt_jarena_t *a, size_t n)
{
    struct chunk *next = a->cur ? a->cur->next : a->head, *c;
    size_t size = CHUNK_BYTES - sizeof(struct chunk);

    if (next && next->size >= n) {
        next->used = n;
        a->cur = next;
        UNPOISON(next->data, n);
        return next->data;
    }
    if (n > size)
        size = n;
    if (!(c = chunk_new(size)))
        return NULL;
    c->used = n;
    c->idle = 0;
    POISON(c->data + n, c->size - n);
    c->next = next;
    if (a->cur)
        a->cur->next = c;
    else
        a->head = c;
    a->cur = c;
    a->bytes += sizeof(*c) + c->size;
    return c->data;
}

static inline void *arena_alloc(lt_jarena_t *a, size_t n)
{
    struct chunk *c = a->cur;

    if (c && c->size - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        UNPOISON(p, n);
        return p;
    }
    return arena_alloc_slow(a, n);
}

void *lt_jarena_alloc(lt_jarena_t *a, size_t n)
{
    if (n > SIZE_MAX - 15)
        return NULL;
    return arena_alloc(a, n ? ALIGN16(n) : 16);
}

/* Byte classes of the copy. */
#define C_STR 1 /* ends a plain string run: control byte, '"', '\\' */
#define C_WS  2 /* JSON whitespace */
#define C_DIG 4 /* '0'..'9' */
#define S_    C_STR
#define SW_   (C_STR | C_WS)
#define D_    C_DIG
static const unsigned char CLS[256] = {
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    SW_,
    SW_,
    S_,
    S_,
    SW_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    S_,
    C_WS,
    0,
    C_STR,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    D_,
    D_,
    D_,
    D_,
    D_,
    D_,
    D_,
    D_,
    D_,
    D_,
    ['\\'] = C_STR,
};
#undef S_
#undef SW_
#undef D_

/* Hex digit value + 1; 0 = not a hex digit (the NUL sentinel included). */
static const unsigned char HEX[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

#define IS_DIGIT(c) (CLS[(c)] & C_DIG)

enum { FAIL_INVALID = 1, FAIL_DEEP, FAIL_OOM };

typedef struct {
    lt_jarena_t *a;
    unsigned char *base; /* the arena copy */
    unsigned char *end;  /* base + len, holds the NUL sentinel */
    const char *why;
    size_t at;
    int fail;
} jparse_t;

/* Records an "invalid" failure at p; always returns NULL. */
static void *fail_at(jparse_t *jp, const unsigned char *p, const char *why)
{
    jp->fail = FAIL_INVALID;
    jp->why = p >= jp->end ? "unexpected end of input" : why;
    jp->at = (size_t)(p - jp->base);
    return NULL;
}

static int fail_num(jparse_t *jp, const unsigned char *p, const char *why)
{
    fail_at(jp, p, why);
    return -1;
}

static inline unsigned char *skip_ws(unsigned char *p)
{
    while (CLS[*p] & C_WS)
        p++;
    return p;
}

/* Four hex digits at p, or -1. Stops at the first non-hex byte, so it never
 * reads past the sentinel. */
static long hex4(const unsigned char *p)
{
    unsigned h0, h1, h2, h3;

    if (!(h0 = HEX[p[0]]) || !(h1 = HEX[p[1]]) || !(h2 = HEX[p[2]]) || !(h3 = HEX[p[3]]))
        return -1;
    return (long)((h0 - 1) << 12 | (h1 - 1) << 8 | (h2 - 1) << 4 | (h3 - 1));
}

static unsigned char *put_utf8(unsigned char *w, unsigned long cp)
{
    if (cp < 0x80) {
        *w++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *w++ = (unsigned char)(0xC0 | cp >> 6);
        *w++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *w++ = (unsigned char)(0xE0 | cp >> 12);
        *w++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        *w++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *w++ = (unsigned char)(0xF0 | cp >> 18);
        *w++ = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        *w++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        *w++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    return w;
}

/* \uXXXX at p (and its low surrogate); writes UTF-8 at *w. Returns the byte
 * after the escape(s), or NULL. */
static unsigned char *unescape_u(jparse_t *jp, unsigned char *p, unsigned char **w)
{
    long hi = hex4(p + 2), lo;
    unsigned long cp = (unsigned long)hi;
    unsigned char *q = p + 6;

    if (hi < 0)
        return fail_at(jp, p, "bad \\u escape");
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return fail_at(jp, p, "lone low surrogate");
    if (hi >= 0xD800 && hi <= 0xDBFF) {
        /* q[1] is read only when q[0] is a backslash, i.e. q < end. */
        if (q[0] != '\\' || q[1] != 'u')
            return fail_at(jp, p, "high surrogate without low surrogate");
        if ((lo = hex4(q + 2)) < 0)
            return fail_at(jp, q, "bad \\u escape");
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail_at(jp, p, "high surrogate without low surrogate");
        cp = 0x10000 + (((unsigned long)hi & 0x3FF) << 10 | ((unsigned long)lo & 0x3FF));
        q += 6;
    }
    if (cp == 0)
        return fail_at(jp, p, "\\u0000 in string");
    *w = put_utf8(*w, cp);
    return q;
}

/* Escape at p (a backslash); returns the byte after it, or NULL. */
static unsigned char *unescape(jparse_t *jp, unsigned char *p, unsigned char **w)
{
    unsigned char c;

    switch (p[1]) {
    case '"':
    case '\\':
    case '/': c = p[1]; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': return unescape_u(jp, p, w);
    default: return fail_at(jp, p + 1 >= jp->end ? p + 1 : p, "invalid escape");
    }
    *(*w)++ = c;
    return p + 2;
}

/* The rest of a string from p, the first escape or bad byte; s its start. */
static char *parse_string_slow(jparse_t *jp, unsigned char *s, unsigned char *p, unsigned char **pp)
{
    unsigned char *w = p;

    for (;;) {
        while (!(CLS[*p] & C_STR))
            *w++ = *p++;
        if (*p == '"') {
            *w = '\0';
            *pp = p + 1;
            return (char *)s;
        }
        if (*p != '\\')
            return fail_at(jp, p, "control character in string");
        if (!(p = unescape(jp, p, &w)))
            return NULL;
    }
}

/* The first byte at or after p that ends a plain run ('"', '\\' or a control
 * byte; the NUL after the copy is one): 16 bytes per step while all 16 lie
 * before jp->end (never a read past the copy, ASan's redzone included), then
 * byte by byte. Most of a row's bytes are string bytes. */
static inline unsigned char *scan_plain(const jparse_t *jp, unsigned char *p)
{
#ifdef LT_JSON_SCAN16
    while (jp->end - p >= 16) {
        unsigned bits = lt_json_special16(p);
        if (bits)
            return p + __builtin_ctz(bits);
        p += 16;
    }
#endif
    while (!(CLS[*p] & C_STR))
        p++;
    return p;
}

/* String whose opening quote is at *pp; unescaped and NUL-terminated in
 * place. Advances *pp past the closing quote. */
static inline char *parse_string(jparse_t *jp, unsigned char **pp)
{
    unsigned char *s = *pp + 1, *p = scan_plain(jp, s);

    if (*p == '"') {
        *p = '\0';
        *pp = p + 1;
        return (char *)s;
    }
    return parse_string_slow(jp, s, p, pp);
}

static inline int saturate_int(double d)
{
    if (d >= INT_MAX)
        return INT_MAX;
    if (d <= (double)INT_MIN)
        return INT_MIN;
    return (int)d;
}

/* Number at *pp (RFC 8259 grammar); sets valuedouble/valueint of node.
 * Integers of <= 15 digits are exact in integer arithmetic; the rest go to
 * strtod on a NUL-terminated local copy of the validated text. */
static int parse_number(jparse_t *jp, unsigned char **pp, cJSON *node)
{
    unsigned char *s = *pp, *p = s, *d0;
    uint64_t v = 0;
    int simple = 1;
    size_t n;
    double d;
    char tmp[LT_JTREE_MAX_NUMBER + 1];

    if (*p == '-')
        p++;
    d0 = p;
    if (*p == '0') {
        if (IS_DIGIT(*++p))
            return fail_num(jp, p - 1, "leading zero in number");
    } else if (IS_DIGIT(*p)) {
        do
            v = v * 10 + (uint64_t)(*p++ - '0');
        while (IS_DIGIT(*p));
    } else {
        return fail_num(jp, p, "digit expected in number");
    }
    if (p - d0 > 15)
        simple = 0;
    if (*p == '.') {
        if (!IS_DIGIT(*++p))
            return fail_num(jp, p, "digit expected after '.'");
        while (IS_DIGIT(*p))
            p++;
        simple = 0;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!IS_DIGIT(*p))
            return fail_num(jp, p, "digit expected in exponent");
        while (IS_DIGIT(*p))
            p++;
        simple = 0;
    }
    n = (size_t)(p - s);
    if (n > LT_JTREE_MAX_NUMBER)
        return fail_num(jp, s, "number too long");
    if (simple) {
        d = (double)v;
        if (*s == '-')
            d = -d; /* "-0" stays -0.0, as strtod gives */
    } else {
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        d = strtod(tmp, NULL);
    }
    node->valuedouble = d;
    node->valueint = saturate_int(d);
    *pp = p;
    return 0;
}

/* Appends node to parent's children the way cJSON links them. */
static inline void link_child(cJSON *parent, cJSON *node)
{
    cJSON *first = parent->child, *last;

    if (!first) {
        parent->child = node;
        node->prev = node;
        return;
    }
    last = first->prev;
    last->next = node;
    node->prev = last;
    first->prev = node;
}

/* Scalar at *p into node (type and value); returns 0 or -1. */
static int parse_scalar(jparse_t *jp, unsigned char **pp, cJSON *node)
{
    unsigned char *p = *pp;
    size_t left = (size_t)(jp->end - p);

    switch (*p) {
    case '"': node->type = cJSON_String; return (node->valuestring = parse_string(jp, pp)) ? 0 : -1;
    case 't':
        if (left < 4 || memcmp(p, "true", 4) != 0)
            break;
        node->type = cJSON_True;
        node->valueint = 1; /* as cJSON sets it */
        *pp = p + 4;
        return 0;
    case 'f':
        if (left < 5 || memcmp(p, "false", 5) != 0)
            break;
        node->type = cJSON_False;
        *pp = p + 5;
        return 0;
    case 'n':
        if (left < 4 || memcmp(p, "null", 4) != 0)
            break;
        node->type = cJSON_NULL;
        *pp = p + 4;
        return 0;
    default:
        if (*p == '-' || IS_DIGIT(*p)) {
            node->type = cJSON_Number;
            return parse_number(jp, pp, node);
        }
    }
    fail_at(jp, p, "unexpected character");
    return -1;
}

/* The value at p and everything in it; iterative, with an explicit stack of
 * open containers (parent = stack[depth - 1]). */
static cJSON *parse_tree(jparse_t *jp, unsigned char *p)
{
    cJSON *stack[LT_JTREE_MAX_DEPTH];
    cJSON *root = NULL, *parent = NULL, *node;
    size_t depth = 0;
    char *key = NULL;

value:
    p = skip_ws(p);
    if (!(node = arena_alloc(jp->a, sizeof(cJSON)))) {
        jp->fail = FAIL_OOM;
        return NULL;
    }
    node->next = NULL;
    node->child = NULL;
    node->valuestring = NULL;
    node->valueint = 0;
    node->valuedouble = 0;
    node->string = key;
    key = NULL;
    if (parent) {
        link_child(parent, node);
    } else {
        node->prev = NULL;
        root = node;
    }
    if (*p == '{' || *p == '[') {
        node->type = *p == '{' ? cJSON_Object : cJSON_Array;
        if (depth == LT_JTREE_MAX_DEPTH) {
            jp->fail = FAIL_DEEP;
            return NULL;
        }
        stack[depth++] = parent = node;
        p = skip_ws(p + 1);
        if (*p == (node->type == cJSON_Object ? '}' : ']')) {
            p++;
            depth--;
            goto after;
        }
        if (node->type == cJSON_Array)
            goto value;
        goto key;
    }
    if (parse_scalar(jp, &p, node) != 0)
        return NULL;
after:
    if (depth == 0)
        goto done;
    parent = stack[depth - 1];
    p = skip_ws(p);
    if (*p == ',') {
        p++;
        if (parent->type == cJSON_Array)
            goto value;
        goto key;
    }
    if (*p == (parent->type == cJSON_Object ? '}' : ']')) {
        p++;
        depth--;
        goto after;
    }
    return fail_at(jp, p,
                   parent->type == cJSON_Object ? "expected ',' or '}'" : "expected ',' or ']'");
key:
    p = skip_ws(p);
    if (*p != '"')
        return fail_at(jp, p, "expected string key");
    if (!(key = parse_string(jp, &p)))
        return NULL;
    p = skip_ws(p);
    if (*p != ':')
        return fail_at(jp, p, "expected ':'");
    p++;
    goto value;
done:
    p = skip_ws(p);
    if (p != jp->end) {
        jp->fail = FAIL_INVALID;
        jp->why = NULL; /* trailing bytes */
        jp->at = (size_t)(p - jp->base);
        return NULL;
    }
    return root;
}

static void report(const jparse_t *jp, char *errstr, size_t errlen)
{
    if (!errstr || errlen == 0)
        return;
    if (jp->fail == FAIL_OOM)
        snprintf(errstr, errlen, "out of memory");
    else if (jp->fail == FAIL_DEEP)
        snprintf(errstr, errlen, "JSON nested too deep");
    else if (!jp->why)
        snprintf(errstr, errlen, "JSON has trailing bytes at byte %zu", jp->at);
    else
        snprintf(errstr, errlen, "JSON invalid at byte %zu: %s", jp->at, jp->why);
}

const cJSON *lt_jtree_parse(lt_jarena_t *a, const void *buf, size_t len, size_t max_len,
                            char *errstr, size_t errlen)
{
    jparse_t jp = {a, NULL, NULL, NULL, 0, FAIL_OOM};
    struct chunk *mark = a ? a->cur : NULL;
    size_t mark_used = mark ? mark->used : 0;
    cJSON *root = NULL;
    unsigned char *p;

    if (len > max_len) {
        if (errstr && errlen)
            snprintf(errstr, errlen, "JSON too large: %zu bytes (max %zu)", len, max_len);
        return NULL;
    }
    if (!buf || len == 0) {
        if (errstr && errlen)
            snprintf(errstr, errlen, "JSON empty");
        return NULL;
    }
    if (a && len < SIZE_MAX - 64 && (jp.base = arena_alloc(a, ALIGN16(len + 1) + REDZONE))) {
        POISON(jp.base + len + 1, ALIGN16(len + 1) + REDZONE - (len + 1));
        memcpy(jp.base, buf, len);
        jp.end = jp.base + len;
        *jp.end = '\0';
        p = jp.base;
        if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
            p += 3; /* UTF-8 BOM */
        root = parse_tree(&jp, p);
    }
    if (root)
        return root;
    report(&jp, errstr, errlen);
    if (a) { /* give back what the failed parse took */
        a->cur = mark;
        if (mark)
            mark->used = mark_used;
        poison_free(a);
    }
    return NULL;
}
