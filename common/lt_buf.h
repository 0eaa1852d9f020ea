/* lt_buf: a growing byte buffer for building JSON and other text.
 *
 * Always NUL-terminated after the first write. An allocation failure sets
 * `oom` and makes every later write a no-op, so a builder checks once at the
 * end. Zero-initialise; free with lt_buf_release(). */
#ifndef LT_BUF_H
#define LT_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} lt_buf_t;

#ifdef __SSE2__
#include <emmintrin.h>
#define LT_JSON_SCAN16 1
/* Bit i set when p[i] of the 16 bytes at p ends a plain JSON string run: '"',
 * '\\' or a control byte (< 0x20). All 16 bytes must be readable. Shared by
 * lt_jtree's string scan and lt_buf_json_str; without SSE2 both go byte by
 * byte (LT_JSON_SCAN16 undefined). */
static inline unsigned lt_json_special16(const unsigned char *p)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    const __m128i ctl = _mm_set1_epi8(0x1f);
    __m128i m =
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl)); /* v <= 0x1f */
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

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
void lt_buf_release(lt_buf_t *b); /* accepts a never-written buffer */

#endif
