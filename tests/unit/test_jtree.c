/* lt_jtree: unit cases, strictness against cJSON, a differential property
 * test against cJSON (generated and mutated texts), arena reuse.
 * LT_JTREE_BENCH=1 also prints a throughput comparison (no assertions). */
#include "lt_jtree.h"
#include "lt_json.h"
#include "lt_test.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXLEN (1u << 20)

static lt_jarena_t *arena;
static char err[256];

/* Parses n bytes from an exact-size heap copy, so ASan sees any over-read. */
static const cJSON *jt_n(const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    const cJSON *root;

    memcpy(copy, s, n);
    err[0] = '\0';
    root = lt_jtree_parse(arena, copy, n, MAXLEN, err, sizeof(err));
    free(copy);
    return root;
}

static const cJSON *jt(const char *s)
{
    return jt_n(s, strlen(s));
}

/* The reference: cJSON through lt_json_parse (the production path today). */
static cJSON *cj_n(const char *s, size_t n, char *cerr, size_t cerrlen)
{
    char *copy = malloc(n ? n : 1);
    cJSON *root;

    memcpy(copy, s, n);
    root = lt_json_parse(copy, n, MAXLEN, cerr, cerrlen);
    free(copy);
    return root;
}

static int cj_accepts(const char *s)
{
    char cerr[256];
    cJSON *root = cj_n(s, strlen(s), cerr, sizeof(cerr));

    cJSON_Delete(root);
    return root != NULL;
}

static int count_children(const cJSON *it)
{
    int n = 0;
    const cJSON *c;

    cJSON_ArrayForEach(c, it) n++;
    return n;
}

/* cJSON's sibling links: first->prev == last, else prev == previous. */
static int links_ok(const cJSON *parent)
{
    const cJSON *first = parent->child, *c, *before = NULL;

    if (!first)
        return 1;
    for (c = first; c; before = c, c = c->next)
        if (c != first && c->prev != before)
            return 0;
    return first->prev == before;
}

/* Recursive equality: type, key, valuestring bytes, valuedouble bits,
 * valueint, children in order, links. Prints the first difference. */
static long nodes_by_type[8];

static int tree_eq(const cJSON *x, const cJSON *y)
{
    const cJSON *cx, *cy;
    int t;

    for (t = 0; t < 8; t++)
        if (x->type == 1 << t)
            nodes_by_type[t]++;

    if (x->type != y->type || (!x->string) != (!y->string) ||
        (x->string && strcmp(x->string, y->string) != 0) ||
        (!x->valuestring) != (!y->valuestring) ||
        (x->valuestring && strcmp(x->valuestring, y->valuestring) != 0) ||
        memcmp(&x->valuedouble, &y->valuedouble, sizeof(double)) != 0 ||
        x->valueint != y->valueint || !links_ok(x) || !links_ok(y)) {
        fprintf(stderr, "node differs: type %d/%d key %s/%s int %d/%d dbl %.17g/%.17g\n", x->type,
                y->type, x->string ? x->string : "-", y->string ? y->string : "-", x->valueint,
                y->valueint, x->valuedouble, y->valuedouble);
        return 0;
    }
    for (cx = x->child, cy = y->child; cx && cy; cx = cx->next, cy = cy->next)
        if (!tree_eq(cx, cy))
            return 0;
    if (cx || cy) {
        fprintf(stderr, "child count differs\n");
        return 0;
    }
    return 1;
}

static int print_eq(const cJSON *x, const cJSON *y)
{
    char *px = cJSON_PrintUnformatted(x), *py = cJSON_PrintUnformatted(y);
    int eq = px && py && strcmp(px, py) == 0;

    if (!eq)
        fprintf(stderr, "print differs:\n  %s\n  %s\n", px ? px : "(null)", py ? py : "(null)");
    cJSON_free(px);
    cJSON_free(py);
    return eq;
}

/* Both parsers accept s and build equal trees. */
static int same_as_cjson(const char *s, size_t n)
{
    char cerr[256];
    const cJSON *x = jt_n(s, n);
    cJSON *y = cj_n(s, n, cerr, sizeof(cerr));
    int ok = x && y && tree_eq(x, y) && print_eq(x, y);

    if (!ok)
        fprintf(stderr, "text: %.*s\n  jtree: %s\n  cjson: %s\n", (int)n, s, x ? "ok" : err,
                y ? "ok" : cerr);
    cJSON_Delete(y);
    return ok;
}

#define SAME(s) same_as_cjson((s), strlen(s))

LT_TEST(test_types)
{
    const cJSON *r = jt("{\"s\":\"x\",\"n\":1.5,\"t\":true,\"f\":false,\"z\":null,"
                        "\"a\":[1,\"two\",[3]],\"o\":{\"k\":{}}}");
    const cJSON *a;

    CHECK(r && cJSON_IsObject(r) && r->string == NULL && r->prev == NULL && r->next == NULL);
    if (!r)
        return;
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(r, "s")->valuestring, "x");
    CHECK(cJSON_GetObjectItemCaseSensitive(r, "n")->valuedouble == 1.5);
    CHECK_INT(cJSON_GetObjectItemCaseSensitive(r, "n")->valueint, 1);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "t")));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r, "f")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "z")));
    a = cJSON_GetObjectItemCaseSensitive(r, "a");
    CHECK(cJSON_IsArray(a) && count_children(a) == 3 && cJSON_GetArraySize(a) == 3);
    CHECK_STR(cJSON_GetArrayItem(a, 1)->valuestring, "two");
    CHECK(cJSON_GetArrayItem(a, 1)->string == NULL);
    CHECK_INT(cJSON_GetArrayItem(cJSON_GetArrayItem(a, 2), 0)->valueint, 3);
    CHECK(cJSON_IsObject(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "o"), "k")));
    CHECK_INT(count_children(r), 7);
    CHECK(links_ok(r) && links_ok(a));
    CHECK(SAME("{\"s\":\"x\",\"n\":1.5,\"t\":true,\"f\":false,\"z\":null,"
               "\"a\":[1,\"two\",[3]],\"o\":{\"k\":{}}}"));
    {
        cJSON *dup = cJSON_Duplicate(r, 1);
        CHECK(dup && cJSON_Compare(dup, r, 1));
        cJSON_Delete(dup);
    }
    CHECK(jt("true") && jt("true")->valueint == 1 && cJSON_IsTrue(jt("true")));
    CHECK(jt("null") && cJSON_IsNull(jt("null")));
    CHECK(jt("\"s\"") && strcmp(jt("\"s\"")->valuestring, "s") == 0);
    lt_jarena_reset(arena);
}

LT_TEST(test_escapes)
{
    const cJSON *r = jt("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\\u00e9\",\"\\u20AC\","
                        "\"a\\ud83d\\ude00b\",\"caf\\u00e9 ok\"]");

    CHECK(r != NULL);
    if (!r)
        return;
    CHECK_STR(cJSON_GetArrayItem(r, 0)->valuestring, "\"\\/\b\f\n\r\t");
    CHECK_STR(cJSON_GetArrayItem(r, 1)->valuestring, "\xC3\xA9");
    CHECK_STR(cJSON_GetArrayItem(r, 2)->valuestring, "\xE2\x82\xAC");
    CHECK_STR(cJSON_GetArrayItem(r, 3)->valuestring, "a\xF0\x9F\x98\x80"
                                                     "b");
    CHECK_INT(strlen(cJSON_GetArrayItem(r, 3)->valuestring), 6);
    CHECK_STR(cJSON_GetArrayItem(r, 4)->valuestring, "caf\xC3\xA9 ok");
    CHECK(SAME("{\"k\\n\\u00e9\":\"\\ud83d\\ude00\\t\"}"));
    /* keys are unescaped too */
    r = jt("{\"k\\u0041\":1}");
    CHECK(r && cJSON_GetObjectItemCaseSensitive(r, "kA"));
    lt_jarena_reset(arena);
}

LT_TEST(test_dup_empty_ws_bom)
{
    const cJSON *r = jt("{\"a\":1,\"a\":2,\"b\":3}");

    CHECK(r && count_children(r) == 3);
    CHECK(r && cJSON_GetObjectItemCaseSensitive(r, "a")->valueint == 1);
    CHECK(r && r->child->next->valueint == 2 && strcmp(r->child->next->string, "a") == 0);
    CHECK(r && SAME("{\"a\":1,\"a\":2,\"b\":3}"));
    r = jt("{}");
    CHECK(r && cJSON_IsObject(r) && r->child == NULL);
    r = jt("[]");
    CHECK(r && cJSON_IsArray(r) && r->child == NULL);
    r = jt("\"\"");
    CHECK(r && cJSON_IsString(r) && r->valuestring[0] == '\0');
    r = jt("{\"\":\"\",\"e\":[],\"o\":{}}");
    CHECK(r && cJSON_GetObjectItemCaseSensitive(r, "") &&
          cJSON_GetObjectItemCaseSensitive(r, "")->valuestring[0] == '\0');
    r = jt(" \t\n\r[ 1 ,\n2\t]\r\n ");
    CHECK(r && count_children(r) == 2 && r->child->next->valueint == 2);
    CHECK(SAME(" \t\n\r{ \"a\" : [ 1 , { } ] }\r\n "));
    r = jt("\xEF\xBB\xBF{\"a\":1}");
    CHECK(r && cJSON_GetObjectItemCaseSensitive(r, "a"));
    CHECK(SAME("\xEF\xBB\xBF{\"a\":1}"));
    lt_jarena_reset(arena);
}

/* A number's valuedouble / valueint; NaN / -1 when it does not parse. */
static double num(const char *s)
{
    const cJSON *r = jt(s);

    return cJSON_IsNumber(r) ? r->valuedouble : NAN;
}

static int vint(const char *s)
{
    const cJSON *r = jt(s);

    return cJSON_IsNumber(r) ? r->valueint : -1;
}

LT_TEST(test_numbers)
{
    static const char *const nums[] = {
        "0",
        "-0",
        "1e3",
        "1.5E-7",
        "123456789012345",
        "1234567890123456789",
        "-9007199254740993",
        "1e400",
        "-1e400",
        "1e-400",
        "0.1",
        "-0.0",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "999999999999999",
        "1000000000000000",
        "4.9e-324",
        "1.7976931348623157e308",
        "0e0",
        "-0E+0",
        "12.5e+2",
    };
    size_t i;

    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        const cJSON *r = jt(nums[i]);
        double want = strtod(nums[i], NULL);

        CHECK(r && cJSON_IsNumber(r));
        if (!r)
            continue;
        if (memcmp(&r->valuedouble, &want, sizeof(want)) != 0) {
            fprintf(stderr, "number %s: got %.17g want %.17g\n", nums[i], r->valuedouble, want);
            CHECK(0);
        }
        CHECK(same_as_cjson(nums[i], strlen(nums[i])));
    }
    CHECK(signbit(num("-0")) && vint("-0") == 0);
    CHECK(num("1e400") == HUGE_VAL && vint("1e400") == INT_MAX);
    CHECK(vint("-1e400") == INT_MIN);
    CHECK_INT(vint("2147483648"), INT_MAX);
    CHECK_INT(vint("-2147483649"), INT_MIN);
    CHECK_INT(vint("-12.9"), -12);
    CHECK(num("-9007199254740993") == -9007199254740992.0);
    lt_jarena_reset(arena);
}

LT_TEST(test_errors)
{
    char big[] = "[1,2]";
    char cerr[256];
    cJSON *c;

    CHECK(lt_jtree_parse(arena, big, 5, 4, err, sizeof(err)) == NULL);
    CHECK_STR(err, "JSON too large: 5 bytes (max 4)");
    c = lt_json_parse(big, 5, 4, cerr, sizeof(cerr));
    CHECK(c == NULL);
    CHECK_STR(err, cerr);
    CHECK(lt_jtree_parse(arena, big, 0, 4, err, sizeof(err)) == NULL);
    CHECK_STR(err, "JSON empty");
    CHECK(lt_jtree_parse(arena, NULL, 3, 4, err, sizeof(err)) == NULL);
    CHECK_STR(err, "JSON empty");
    CHECK(jt("1 2") == NULL);
    CHECK_STR(err, "JSON has trailing bytes at byte 2");
    c = cj_n("1 2", 3, cerr, sizeof(cerr));
    CHECK(c == NULL);
    CHECK_STR(err, cerr);
    CHECK(jt("{\"a\":1} x") == NULL);
    CHECK_STR(err, "JSON has trailing bytes at byte 8");
    CHECK(jt("[1,]") == NULL);
    CHECK_STR(err, "JSON invalid at byte 3: unexpected character");
    CHECK(jt("[1") == NULL);
    CHECK_STR(err, "JSON invalid at byte 2: unexpected end of input");
    CHECK(jt("{\"a\" 1}") == NULL);
    CHECK_STR(err, "JSON invalid at byte 5: expected ':'");
    CHECK(jt("{1:2}") == NULL);
    CHECK_STR(err, "JSON invalid at byte 1: expected string key");
    CHECK(jt("[1 2]") == NULL);
    CHECK_STR(err, "JSON invalid at byte 3: expected ',' or ']'");
    CHECK(jt("{\"a\":1 \"b\":2}") == NULL);
    CHECK_STR(err, "JSON invalid at byte 7: expected ',' or '}'");
    CHECK(jt("   ") == NULL);
    CHECK_STR(err, "JSON invalid at byte 3: unexpected end of input");
    CHECK(jt("[\"abc") == NULL);
    CHECK_STR(err, "JSON invalid at byte 5: unexpected end of input");
    CHECK(jt("[\"abc\\") == NULL);
    CHECK_STR(err, "JSON invalid at byte 6: unexpected end of input");
    CHECK(jt("tru") == NULL);
    CHECK_STR(err, "JSON invalid at byte 0: unexpected character");
    CHECK(jt("nulL") == NULL);
    /* a copy that cannot be made: out of memory (buf is not read) */
    CHECK(lt_jtree_parse(arena, big, SIZE_MAX - 1, SIZE_MAX, err, sizeof(err)) == NULL);
    CHECK_STR(err, "out of memory");
    CHECK(lt_jtree_parse(NULL, big, 5, 8, err, sizeof(err)) == NULL);
    CHECK_STR(err, "out of memory");
    /* errstr may be NULL */
    CHECK(lt_jtree_parse(arena, "[", 1, 4, NULL, 0) == NULL);
    lt_jarena_reset(arena);
}

struct strict_case {
    const char *text;
    const char *reason; /* in our errstr */
    int cjson_accepts;  /* what the header documents */
};

LT_TEST(test_strict)
{
    static const struct strict_case cases[] = {
        {"[\"a\x01"
         "b\"]",
         "control character in string", 1},
        {"[\"a\tb\"]", "control character in string", 1},
        {"[\"a\nb\"]", "control character in string", 1},
        {"[01]", "leading zero in number", 1},
        {"-01", "leading zero in number", 1},
        {"[1.]", "digit expected after '.'", 1},
        {"[1.e5]", "digit expected after '.'", 1},
        {"[\"\\u00zz\"]", "bad \\u escape", 1},
        {"[\"\\u12\"]", "bad \\u escape", 0},
        {"[\"a\\u0000b\"]", "\\u0000 in string", 1},
        {"[1111111111111111111111111111111111111111111111111111111111111111]", "number too long",
         1},
        {"[\x01 1]", "unexpected character", 1},
        {"[1,\x0b 2]", "unexpected character", 1},
        {"[.5]", "unexpected character", 0},
        {"[+1]", "unexpected character", 0},
        {"[-]", "digit expected in number", 0},
        {"[1e]", "digit expected in exponent", 0},
        {"[1e+]", "digit expected in exponent", 0},
        {"[\"\\q\"]", "invalid escape", 0},
        {"[\"\\ud800\"]", "high surrogate without low surrogate", 0},
        {"[\"\\udc00\"]", "lone low surrogate", 0},
        {"[\"\\udc00\\ud800\"]", "lone low surrogate", 0},
        {"[\"\\ud800\\u0041\"]", "high surrogate without low surrogate", 0},
        {"[\"\\ud800\\ud800\"]", "high surrogate without low surrogate", 0},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const cJSON *r = jt(cases[i].text);
        int cj = cj_accepts(cases[i].text);

        if (r || !strstr(err, cases[i].reason) || cj != cases[i].cjson_accepts) {
            fprintf(stderr, "strict case %zu %s: jtree %s (%s), cJSON %s (doc says %s)\n", i,
                    cases[i].text, r ? "accepts" : "rejects", err, cj ? "accepts" : "rejects",
                    cases[i].cjson_accepts ? "accepts" : "rejects");
            CHECK(0);
        }
    }
    /* 63 characters is still fine */
    CHECK(SAME("[-1.000000000000000000000000000000000000000000000000000000000001]"));
    lt_jarena_reset(arena);
}

LT_TEST(test_no_overread)
{
    static const char doc[] = "{\"a\":[1,-2.5e3,\"x\\u00e9\\ud83d\\ude00\",true,null,"
                              "{\"b\":false}],\"c\":\"\\\"\"}";
    char buf[64];
    size_t n = sizeof(doc) - 1, i;

    CHECK(jt_n(doc, n) != NULL);
    /* every proper prefix is invalid and none is read past its end */
    for (i = 0; i < n; i++)
        CHECK(jt_n(doc, i) == NULL);
    /* garbage after len is not read */
    memcpy(buf, "[1,2]\"\\u12", 10);
    memset(buf + 10, 'x', sizeof(buf) - 10);
    CHECK(lt_jtree_parse(arena, buf, 5, MAXLEN, err, sizeof(err)) != NULL);
    CHECK(lt_jtree_parse(arena, buf, 4, MAXLEN, err, sizeof(err)) == NULL);
    /* the input buffer is not modified (strings are unescaped in the copy) */
    CHECK(memcmp(buf, "[1,2]\"\\u12", 10) == 0);
    lt_jarena_reset(arena);
}

LT_TEST(test_reset_reuse)
{
    const cJSON *r1 = jt("{\"a\":\"first\"}"), *r2;
    size_t bytes = lt_jarena_bytes(arena);

    CHECK(r1 && bytes > 0);
    lt_jarena_reset(arena);
    r2 = jt("{\"b\":\"second\"}");
    CHECK(r2 && cJSON_GetObjectItemCaseSensitive(r2, "b"));
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(r2, "b")->valuestring, "second");
    CHECK(lt_jarena_bytes(arena) == bytes);
    /* a failed parse gives its memory back: the next tree lands where the
     * failed one started */
    lt_jarena_reset(arena);
    r1 = jt("[7]");
    lt_jarena_reset(arena);
    CHECK(jt("[1,2,3,{\"a\":[\"bcd\",x]}]") == NULL);
    r2 = jt("[7]");
    CHECK(r2 && r2 == r1 && r2->child->valueint == 7);
    { /* two trees in a row sit the same distance apart with a failure between */
        const char *t1 = (const char *)r2, *t2 = (const char *)jt("[7]"), *t3, *t4;

        lt_jarena_reset(arena);
        t3 = (const char *)jt("[7]");
        CHECK(jt("[1,2,3,{\"a\":[\"bcd\",x]}]") == NULL);
        t4 = (const char *)jt("[7]");
        CHECK(t1 && t2 && t3 == t1 && t4 == t2);
    }
    /* a request bigger than a chunk gets its own chunk */
    {
        size_t n = 3u << 20;
        char *big = malloc(n);
        const cJSON *r;

        memset(big, ' ', n);
        big[0] = '[';
        big[n - 2] = '5';
        big[n - 1] = ']';
        r = lt_jtree_parse(arena, big, n, n, err, sizeof(err));
        CHECK(r && r->child && r->child->valueint == 5);
        CHECK(lt_jarena_bytes(arena) > n);
        free(big);
    }
    lt_jarena_reset(arena);
    lt_jarena_destroy(NULL);
}

/* lt_jarena_alloc: aligned, distinct, beside trees, any size; a reset
 * hands the same memory out again. */
LT_TEST(test_arena_alloc)
{
    lt_jarena_t *a = lt_jarena_new();
    char *p1, *p2, *big, *again;
    const cJSON *r;

    CHECK(a != NULL);
    if (!a)
        return;
    p1 = lt_jarena_alloc(a, 5);
    p2 = lt_jarena_alloc(a, 0);
    CHECK(p1 && p2 && p1 != p2);
    CHECK(((uintptr_t)p1 & 15) == 0 && ((uintptr_t)p2 & 15) == 0);
    memcpy(p1, "abcd", 5);
    r = lt_jtree_parse(a, "{\"k\":\"v\"}", 9, 100, err, sizeof(err));
    CHECK(r && !strcmp(cJSON_GetObjectItemCaseSensitive(r, "k")->valuestring, "v"));
    big = lt_jarena_alloc(a, (size_t)2 << 20); /* more than a chunk */
    CHECK(big != NULL);
    if (big)
        memset(big, 'z', (size_t)2 << 20);
    CHECK_STR(p1, "abcd"); /* untouched by the parse and the big block */
    CHECK(lt_jarena_alloc(a, SIZE_MAX - 3) == NULL);
    lt_jarena_reset(a);
    again = lt_jarena_alloc(a, 5);
    CHECK(again == p1);
    lt_jarena_destroy(a);
}

static void nest(char *buf, int levels, int objects)
{
    size_t n = 0;
    int i;

    for (i = 0; i < levels; i++) {
        if (objects) {
            memcpy(buf + n, "{\"a\":", 5);
            n += 5;
        } else {
            buf[n++] = '[';
        }
    }
    buf[n++] = '1';
    for (i = 0; i < levels; i++)
        buf[n++] = objects ? '}' : ']';
    buf[n] = '\0';
}

LT_TEST(test_depth)
{
    char *buf = malloc(1001 * 6 + 8);
    int objects;

    for (objects = 0; objects < 2; objects++) {
        const cJSON *r;
        int d = 0;

        nest(buf, 1000, objects);
        r = jt(buf);
        CHECK(r != NULL);
        CHECK(cj_accepts(buf));
        for (; r && r->child; r = r->child)
            d++;
        CHECK_INT(d, 1000);
        nest(buf, 1001, objects);
        CHECK(jt(buf) == NULL);
        CHECK_STR(err, "JSON nested too deep");
        CHECK(!cj_accepts(buf));
        lt_jarena_reset(arena);
    }
    free(buf);
}

/* ---- differential property test ---------------------------------------- */

static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static unsigned rn(unsigned n)
{
    return (unsigned)(rnd() % n);
}

typedef struct {
    char b[1 << 16];
    size_t n;
} gbuf_t;

static void put(gbuf_t *g, const char *s, size_t n)
{
    if (g->n + n < sizeof(g->b)) {
        memcpy(g->b + g->n, s, n);
        g->n += n;
    }
}

static void putc_(gbuf_t *g, char c)
{
    put(g, &c, 1);
}

static void gen_ws(gbuf_t *g)
{
    static const char ws[] = " \t\n\r";

    while (rn(4) == 0)
        putc_(g, ws[rn(4)]);
}

static void gen_hex4(gbuf_t *g, unsigned v)
{
    static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
    const char *h = rn(2) ? lo : up;
    char s[6] = {'\\', 'u', h[v >> 12 & 15], h[v >> 8 & 15], h[v >> 4 & 15], h[v & 15]};

    put(g, s, 6);
}

static void gen_string(gbuf_t *g)
{
    static const char esc[] = "\"\\/bfnrt";
    unsigned i, pieces = rn(10);

    putc_(g, '"');
    for (i = 0; i < pieces; i++) {
        unsigned v, kind = rn(8);

        if (kind <= 2) {
            char c = (char)(0x20 + rn(95));
            putc_(g, (c == '"' || c == '\\') ? 'q' : c);
        } else if (kind == 3) {
            putc_(g, '\\');
            putc_(g, esc[rn(8)]);
        } else if (kind == 4) {
            v = 1 + rn(0xFFFE);
            gen_hex4(g, (v >= 0xD800 && v <= 0xDFFF) ? v - 0x800 : v);
        } else if (kind == 5) {
            gen_hex4(g, 0xD800 + rn(0x400));
            gen_hex4(g, 0xDC00 + rn(0x400));
        } else if (kind == 6) {
            putc_(g, (char)(0x80 + rn(0x80))); /* raw byte: UTF-8 is not validated */
        } else {
            put(g, "\xE2\x82\xAC", 3);
        }
    }
    putc_(g, '"');
}

static void gen_digits(gbuf_t *g, unsigned n)
{
    while (n--)
        putc_(g, (char)('0' + rn(10)));
}

static void gen_number(gbuf_t *g)
{
    static const char *const special[] = {"1e400",
                                          "-1e400",
                                          "1e-400",
                                          "-0",
                                          "0",
                                          "9007199254740993",
                                          "2147483648",
                                          "-2147483649",
                                          "123456789012345",
                                          "1234567890123456"};

    if (rn(8) == 0) {
        const char *s = special[rn(10)];
        put(g, s, strlen(s));
        return;
    }
    if (rn(3) == 0)
        putc_(g, '-');
    if (rn(5) == 0) {
        putc_(g, '0');
    } else {
        putc_(g, (char)('1' + rn(9)));
        gen_digits(g, rn(3) ? rn(6) : rn(25));
    }
    if (rn(3) == 0) {
        putc_(g, '.');
        gen_digits(g, 1 + rn(rn(4) ? 4 : 20));
    }
    if (rn(4) == 0) {
        putc_(g, rn(2) ? 'e' : 'E');
        if (rn(2))
            putc_(g, rn(2) ? '+' : '-');
        gen_digits(g, 1 + rn(3));
    }
}

static void gen_value(gbuf_t *g, int depth);

static void gen_key(gbuf_t *g)
{
    static const char *const keys[] = {"\"a\"", "\"id\"", "\"\"", "\"x\\u00e9\"", "\"a\""};

    const char *k = keys[rn(5)];

    if (rn(2))
        put(g, k, strlen(k));
    else
        gen_string(g);
}

static void gen_container(gbuf_t *g, int depth, int object)
{
    unsigned i, n = rn(6);

    putc_(g, object ? '{' : '[');
    gen_ws(g);
    for (i = 0; i < n; i++) {
        if (i) {
            putc_(g, ',');
            gen_ws(g);
        }
        if (object) {
            gen_key(g);
            gen_ws(g);
            putc_(g, ':');
            gen_ws(g);
        }
        gen_value(g, depth + 1);
        gen_ws(g);
    }
    putc_(g, object ? '}' : ']');
}

static void gen_value(gbuf_t *g, int depth)
{
    static const char *const lit[] = {"true", "false", "null"};
    unsigned kind;

    if (depth < 6 && g->n <= 3000 && rn(depth < 2 ? 2 : 5) == 0) {
        gen_container(g, depth, (int)rn(2));
        return;
    }
    kind = rn(7);
    if (kind <= 2) {
        gen_string(g);
    } else if (kind <= 5) {
        gen_number(g);
    } else {
        const char *s = lit[rn(3)];
        put(g, s, strlen(s));
    }
}

static void gen_doc(gbuf_t *g)
{
    g->n = 0;
    gen_ws(g);
    gen_value(g, rn(3) ? 0 : 1);
    gen_ws(g);
}

LT_TEST(test_differential)
{
    static gbuf_t g;
    int i, bad = 0;

    memset(nodes_by_type, 0, sizeof(nodes_by_type));
    rng = 0x9E3779B97F4A7C15ull;
    printf("differential seed 0x%016llx\n", (unsigned long long)rng);
    for (i = 0; i < 20000; i++) {
        gen_doc(&g);
        if (!same_as_cjson(g.b, g.n) && ++bad > 5)
            break;
        if (i % 512 == 0)
            lt_jarena_reset(arena);
    }
    CHECK_INT(bad, 0);
    printf("differential: %d generated texts, %d differences; nodes compared: %ld false, "
           "%ld true, %ld null, %ld number, %ld string, %ld array, %ld object\n",
           i, bad, nodes_by_type[0], nodes_by_type[1], nodes_by_type[2], nodes_by_type[3],
           nodes_by_type[4], nodes_by_type[5], nodes_by_type[6]);
    for (i = 0; i < 7; i++)
        CHECK(nodes_by_type[i] > 1000);
    lt_jarena_reset(arena);
}

static void mutate(gbuf_t *g)
{
    static const char alpha[] = "{}[]\",:\\/0123456789-+.eEtrufalsnu \t\n\r\x01\x7f\x80\xff";
    size_t at = g->n ? rn((unsigned)g->n) : 0;
    char c = rn(4) ? alpha[rn(sizeof(alpha))] : (char)rn(256); /* alpha's NUL too */

    switch (rn(4)) {
    case 0: /* delete */
        if (g->n) {
            memmove(g->b + at, g->b + at + 1, g->n - at - 1);
            g->n--;
        }
        break;
    case 1: /* insert */
        if (g->n + 1 < sizeof(g->b)) {
            memmove(g->b + at + 1, g->b + at, g->n - at);
            g->b[at] = c;
            g->n++;
        }
        break;
    case 2: /* replace */
        if (g->n)
            g->b[at] = c;
        break;
    default: /* truncate */ g->n = at;
    }
}

LT_TEST(test_mutated)
{
    static gbuf_t g;
    int i, both_ok = 0, both_rej = 0, only_jt_rej = 0, only_jt_ok = 0, diff = 0;
    char cerr[256];

    rng = 0xD1B54A32D192ED03ull;
    printf("mutation seed 0x%016llx\n", (unsigned long long)rng);
    for (i = 0; i < 20000; i++) {
        const cJSON *x;
        cJSON *y;
        unsigned m = 1 + rn(3);

        rng ^= (uint64_t)i; /* keep going if the state ever hits a short cycle */
        if (!rng)
            rng = 1;
        gen_doc(&g);
        while (m--)
            mutate(&g);
        x = jt_n(g.b, g.n);
        y = cj_n(g.b, g.n, cerr, sizeof(cerr));
        if (x && y) {
            both_ok++;
            if (!(tree_eq(x, y) && print_eq(x, y)) && ++diff <= 5)
                fprintf(stderr, "tree differs: %.*s\n", (int)g.n, g.b);
        } else if (!x && !y) {
            both_rej++;
        } else if (!x) {
            only_jt_rej++;
        } else if (++only_jt_ok <= 5) {
            fprintf(stderr, "only lt_jtree accepts: %.*s (cJSON: %s)\n", (int)g.n, g.b, cerr);
        }
        cJSON_Delete(y);
        if (i % 512 == 0)
            lt_jarena_reset(arena);
    }
    printf("mutated: %d accepted by both, %d rejected by both, %d rejected only by "
           "lt_jtree, %d accepted only by lt_jtree, %d tree differences\n",
           both_ok, both_rej, only_jt_rej, only_jt_ok, diff);
    CHECK_INT(only_jt_ok, 0);
    CHECK_INT(diff, 0);
    CHECK(both_ok > 1000 && both_rej > 1000 && only_jt_rej > 10);
    lt_jarena_reset(arena);
}

LT_TEST(test_arena_bounded)
{
    static gbuf_t g;
    lt_jarena_t *a = lt_jarena_new();
    size_t round_bytes[2];
    int round, i, ok = 0;

    CHECK(a && lt_jarena_bytes(a) == 0);
    for (round = 0; round < 2 && a; round++) {
        rng = 0x2545F4914F6CDD1Dull;
        for (i = 0; i < 10000; i++) {
            gen_doc(&g);
            ok += lt_jtree_parse(a, g.b, g.n, MAXLEN, err, sizeof(err)) != NULL;
        }
        round_bytes[round] = lt_jarena_bytes(a);
        lt_jarena_reset(a);
    }
    CHECK_INT(ok, 20000);
    if (a) {
        printf("arena: %zu bytes after round 1, %zu after round 2\n", round_bytes[0],
               round_bytes[1]);
        CHECK(round_bytes[0] > 0 && round_bytes[1] == round_bytes[0]);
    }
    lt_jarena_destroy(a);
}

/* A round that needed many chunks does not set the arena's size for good:
 * once 16 resets in a row used fewer, the spares are freed; a pattern that
 * comes back within 16 rounds keeps them (no mmap/munmap per round). */
LT_TEST(test_arena_shrinks)
{
    lt_jarena_t *a = lt_jarena_new();
    const size_t mib = (size_t)1 << 20;
    size_t big, small;
    int i;

    CHECK(a != NULL);
    if (!a)
        return;
    for (i = 0; i < 8; i++) /* a backlog's batch: 8 chunks */
        CHECK(lt_jarena_alloc(a, mib - 4096) != NULL);
    big = lt_jarena_bytes(a);
    CHECK(big >= 8 * mib);
    lt_jarena_reset(a);
    lt_jarena_reset(a);        /* nothing allocated in between: not a round */
    for (i = 0; i < 16; i++) { /* small rounds, the big one back after 16 */
        CHECK(lt_jarena_alloc(a, 100) != NULL);
        lt_jarena_reset(a);
    }
    CHECK(lt_jarena_bytes(a) == big);
    for (i = 0; i < 8; i++)
        CHECK(lt_jarena_alloc(a, mib - 4096) != NULL);
    CHECK(lt_jarena_bytes(a) == big); /* reused, none added */
    lt_jarena_reset(a);
    for (i = 0; i < 17; i++) { /* now 17 small rounds: the spares go */
        CHECK(lt_jarena_alloc(a, 100) != NULL);
        lt_jarena_reset(a);
    }
    small = lt_jarena_bytes(a);
    printf("arena: %zu bytes after a big round, %zu after 17 small ones\n", big, small);
    CHECK(small > 0 && small <= 2 * mib);
    CHECK(lt_jarena_alloc(a, 100) != NULL); /* still usable */
    lt_jarena_destroy(a);
}

/* ---- throughput (by hand: LT_JTREE_BENCH=1) ---------------------------- */

static const char envelope[] =
    "{\"integration_id\":\"acme\",\"stream\":\"transactions\",\"fetched_at\":"
    "\"2025-03-24T12:00:00.000Z\",\"page\":3,\"record\":{\"transactionId\":123456,"
    "\"orderId\":\"A1B2C3\",\"customerId\":98765,\"campaignId\":12,\"txnType\":\"SALE\","
    "\"responseType\":\"SUCCESS\",\"totalAmount\":\"49.95\",\"currencyCode\":\"USD\","
    "\"dateCreated\":\"2025-03-01 13:45:10\",\"dateUpdated\":\"2025-03-01 13:45:10\","
    "\"isChargedback\":0,\"chargebackDate\":null,\"billingCycleNumber\":1,\"orderType\":"
    "\"NEW_SALE\",\"productId\":\"77\",\"items\":[{\"productId\":\"77\",\"name\":"
    "\"Widget \\u00e9\",\"price\":\"49.95\",\"qty\":1}],\"firstName\":\"Ann\",\"lastName\":"
    "\"O\\\"Brien\",\"emailAddress\":\"ann@example.com\",\"phoneNumber\":\"+1 555 0100\","
    "\"address1\":\"1 Main St\",\"city\":\"Springfield\",\"state\":\"IL\",\"postalCode\":"
    "\"62701\",\"country\":\"US\",\"merchantId\":3,\"affId\":\"AFF1\",\"responseText\":"
    "\"Approved\",\"cardType\":\"VISA\",\"cardLast4\":\"1111\",\"ipAddress\":\"203.0.113.5\"}}";

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench(void)
{
    const size_t n = sizeof(envelope) - 1;
    const long iters = 300000;
    double t0, t_jt, t_cj;
    long i, bad = 0;

    CHECK(same_as_cjson(envelope, n));
    t0 = now_s();
    for (i = 0; i < iters; i++) {
        bad += lt_jtree_parse(arena, envelope, n, MAXLEN, err, sizeof(err)) == NULL;
        lt_jarena_reset(arena);
    }
    t_jt = now_s() - t0;
    t0 = now_s();
    for (i = 0; i < iters; i++) {
        cJSON *root = cJSON_ParseWithLengthOpts(envelope, n, NULL, 0);
        bad += root == NULL;
        cJSON_Delete(root);
    }
    t_cj = now_s() - t0;
    CHECK(bad == 0);
    printf("bench: %zu-byte envelope x %ld\n", n, iters);
    printf("bench: lt_jtree_parse          %8.1f MB/s  %7.0f docs/s\n",
           (double)n * (double)iters / t_jt / 1e6, (double)iters / t_jt);
    printf("bench: cJSON parse+delete      %8.1f MB/s  %7.0f docs/s\n",
           (double)n * (double)iters / t_cj / 1e6, (double)iters / t_cj);
    printf("bench: speedup x%.2f\n", t_cj / t_jt);
    lt_jarena_reset(arena);
}

int main(void)
{
    const char *b = getenv("LT_JTREE_BENCH");

    arena = lt_jarena_new();
    if (!arena)
        return 1;
    LT_RUN(test_types);
    LT_RUN(test_escapes);
    LT_RUN(test_dup_empty_ws_bom);
    LT_RUN(test_numbers);
    LT_RUN(test_errors);
    LT_RUN(test_strict);
    LT_RUN(test_no_overread);
    LT_RUN(test_reset_reuse);
    LT_RUN(test_arena_alloc);
    LT_RUN(test_depth);
    LT_RUN(test_differential);
    LT_RUN(test_mutated);
    LT_RUN(test_arena_bounded);
    LT_RUN(test_arena_shrinks);
    if (b && strcmp(b, "1") == 0)
        LT_RUN(bench);
    lt_jarena_destroy(arena);
    return LT_DONE();
}
