/* lt_buf: a growing byte buffer for building JSON and other text.
 *
 * Always NUL-terminated after the first write. An allocation failure sets
 * `oom` and makes every later write a no-op, so a builder checks once at the
 * end. Zero-initialise; free with lt_buf_free(). */
#ifndef LT_BUF_H
#define LT_BUF_H

#include <stddef.h>

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} lt_buf_t;

void lt_buf_put(lt_buf_t *b, const void *s, size_t n);
void lt_buf_puts(lt_buf_t *b, const char *s);
/* A JSON string of the len bytes at s: quotes, backslashes and control
 * bytes escaped; other bytes copied as they are (the caller ensures UTF-8). */
void lt_buf_json_str(lt_buf_t *b, const void *s, size_t len);
void lt_buf_free(lt_buf_t *b); /* accepts a never-written buffer */

#endif
