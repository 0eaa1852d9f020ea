/* lt_buf: growing byte buffer. */
#include "lt_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lt_buf_put_slow(lt_buf_t *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 512;
        char *np;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(np = realloc(b->p, cap))) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void lt_buf_puts(lt_buf_t *b, const char *s)
{
    lt_buf_put(b, s, strlen(s));
}

/* 1 for the bytes a JSON string must escape: controls, '"' and '\\'. */
static const unsigned char needs_escape[256] = {1, 1, 1, 1, 1, 1, 1, 1, 1,         1,         1, 1,
                                                1, 1, 1, 1, 1, 1, 1, 1, 1,         1,         1, 1,
                                                1, 1, 1, 1, 1, 1, 1, 1, ['"'] = 1, ['\\'] = 1};

/* Index of the first byte of p[0, len) needing an escape, or len: 16 bytes
 * per step while 16 remain (no read past len), then byte by byte. */
static size_t plain_prefix(const unsigned char *p, size_t len)
{
    size_t i = 0;
#ifdef LT_JSON_SCAN16
    for (; len - i >= 16; i += 16) {
        unsigned bits = lt_json_special16(p + i);
        if (bits)
            return i + (size_t)__builtin_ctz(bits);
    }
#endif
    while (i < len && !needs_escape[p[i]])
        i++;
    return i;
}

void lt_buf_json_str(lt_buf_t *b, const void *s, size_t len)
{
    const unsigned char *p = s;
    size_t run = 0, i = plain_prefix(p, len);
    char esc[8];
    lt_buf_put(b, "\"", 1);
    if (i == len) { /* nothing to escape: the common case */
        lt_buf_put(b, p, len);
        lt_buf_put(b, "\"", 1);
        return;
    }
    for (; i < len; i++) {
        unsigned char c = p[i];
        if (!needs_escape[c])
            continue;
        lt_buf_put(b, p + run, i - run);
        snprintf(esc, sizeof(esc), c == '"' || c == '\\' ? "\\%c" : "\\u%04x", c);
        lt_buf_puts(b, esc);
        run = i + 1;
    }
    lt_buf_put(b, p + run, i - run);
    lt_buf_put(b, "\"", 1);
}

void lt_buf_release(lt_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}
