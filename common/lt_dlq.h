/* lt_dlq: the dead-letter record every service writes to ltvsync.dlq.
 *
 * Compact JSON {"reason","topic","partition","offset","key","value"}. key and
 * value are JSON strings when their bytes are valid UTF-8 (RFC 3629), else
 * null with the bytes in "key_base64"/"value_base64", so `kcat -f '%s\n'`
 * still prints one JSON object per line. A value over LT_DLQ_VALUE_MAX is cut
 * at a character boundary ("value_truncated":true, "value_len": the original
 * length). The reason is kept plain ASCII (other bytes become '?'). Callers
 * pass only sanitized bytes: the record repeats them as they are. */
#ifndef LT_DLQ_H
#define LT_DLQ_H

#include <stddef.h>
#include <stdint.h>

#define LT_DLQ_VALUE_MAX (256 * 1024)

/* key or value may be NULL (then JSON null). Returns a malloc'd,
 * NUL-terminated record and its length in *outlen; NULL when out of memory. */
char *lt_dlq_record(const char *reason, const char *topic, int32_t partition, int64_t offset,
                    const void *key, size_t keylen, const void *value, size_t len, size_t *outlen);

#endif
