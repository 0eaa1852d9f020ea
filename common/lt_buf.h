/* lt_buf: a growing byte buffer for building JSON and other text.
 *
 * Always NUL-terminated after the first write. An allocation failure sets
 * `oom` and makes every later write a no-op, so a builder checks once at the
 * end. Zero-initialise; free with lt_buf_free(). */
#ifndef LT_BUF_H
#define LT_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} lt_buf_t;

/* Grows b (or notes oom) and appends; lt_buf_put's path when b is full. */
void lt_buf_put_slow(lt_buf_t *b, const void *s, size_t n);
/* Appends n bytes. Inline: event building makes ~50 small puts per row, most
 * of them of a constant size the compiler turns into a few moves. */
static inline void lt_buf_put(lt_buf_t *b, const void *s, size_t n)
{
    if (!b->oom && b->cap - b->len > n) { /* room for n bytes and the NUL */
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return;
    }
    lt_buf_put_slow(b, s, n);
}
void lt_buf_puts(lt_buf_t *b, const char *s);
/* A JSON string of the len bytes at s: quotes, backslashes and control
 * bytes escaped; other bytes copied as they are (the caller ensures UTF-8). */
void lt_buf_json_str(lt_buf_t *b, const void *s, size_t len);
void lt_buf_free(lt_buf_t *b); /* accepts a never-written buffer */

#endif
