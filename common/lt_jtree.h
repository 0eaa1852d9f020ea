/* lt_jtree: a fast, strict JSON parser that builds READ-ONLY cJSON trees in a
 * bump arena (the hot paths of the normalizer, raw envelopes, and of the
 * sink, events: no malloc per node or string, no cJSON_Delete).
 *
 * The tree is made of ordinary cJSON structs with cJSON's conventions, so
 * read-only cJSON calls work on it (GetObjectItemCaseSensitive,
 * ArrayForEach, Is*, PrintUnformatted, Duplicate): children linked through
 * next, first_child->prev == last child, other prev == previous sibling,
 * last->next == NULL, `string` = member key, valuestring NUL-terminated and
 * unescaped, valuedouble == strtod of the number text, valueint saturated to
 * INT_MIN/INT_MAX. Duplicate keys are kept in order (lookup finds the first).
 * Nodes and strings live in the arena: NEVER cJSON_Delete or modify a tree
 * (the const return type makes the former a compile error); the tree lives
 * until lt_jarena_reset/lt_jarena_destroy of its arena.
 *
 * Threads: no globals; an arena and its trees belong to one thread at a time.
 *
 * Strict RFC 8259 where cJSON 1.7.15 (Debian 1.7.15-1+deb12u4) is lax, i.e.
 * texts cJSON ACCEPTS and lt_jtree rejects:
 *   - raw control bytes < 0x20 inside strings;
 *   - leading zeros ("01", "-01");
 *   - "1." (no digit after the point);
 *   - \u with bad hex digits (cJSON reads them as \u0000 and truncates);
 *   - \u0000 (a NUL would silently truncate the C string; own reason);
 *   - numbers longer than 63 characters (this Debian cJSON's CVE-2023-26819
 *     backport accepts them; here they fail as "number too long");
 *   - whitespace other than space, \t, \n, \r (cJSON skips every byte <= 32,
 *     NUL included, before and inside values).
 * Also rejected, as cJSON rejects them too (listed so nobody "fixes" them):
 *   ".5", "+1", "-", "1e", unknown escapes ("\q"), lone or mis-ordered
 *   surrogates ("\ud800", "\udc00", "\udc00\ud800", "\ud800\u0041").
 * Parity with cJSON: UTF-8 is not validated; a leading UTF-8 BOM is skipped
 * (cJSON only skips it when len >= 5); nesting limit 1000 levels of objects
 * and arrays (1000 accepted, 1001 rejected); numbers are read with strtod in
 * the process locale exactly as cJSON is expected to (keep the C locale). */
#ifndef LT_JTREE_H
#define LT_JTREE_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* Same limit as cJSON's CJSON_NESTING_LIMIT. */
#define LT_JTREE_MAX_DEPTH 1000
/* Longest number text accepted, in characters. */
#define LT_JTREE_MAX_NUMBER 63

typedef struct lt_jarena lt_jarena_t;

/* New empty arena (memory is taken on first parse); NULL on OOM. */
lt_jarena_t *lt_jarena_new(void);
/* Every tree parsed in a is gone; its chunks are kept for reuse, but a
 * chunk no round has needed for 16 resets is freed (a round: what was
 * allocated between two resets). */
void lt_jarena_reset(lt_jarena_t *a);
/* Frees the arena and every tree in it. NULL ok. */
void lt_jarena_destroy(lt_jarena_t *a);
/* n bytes (16-byte aligned) from a, alive until its reset or destroy; for
 * data that lives as long as the trees. NULL on OOM. */
void *lt_jarena_alloc(lt_jarena_t *a, size_t n);
/* Bytes held by the arena's chunks (for metrics and benchmarks). */
size_t lt_jarena_bytes(const lt_jarena_t *a);
/* Bytes held by every arena of the process: their chunks are mappings of
 * their own, which malloc's figures do not count. */
size_t lt_jarena_mapped_bytes(void);

/* Parses exactly len bytes of buf (no NUL needed; nothing past len is read)
 * into a tree allocated in a (the input is copied into a once). Returns the
 * root, or NULL with one of these in errstr (texts shared with lt_json_parse
 * where they overlap):
 *   "JSON too large: %zu bytes (max %zu)"   len > max_len
 *   "JSON empty"                            len == 0 or buf NULL
 *   "JSON invalid at byte %zu: <reason>"    offset of the offending byte
 *   "JSON has trailing bytes at byte %zu"   non-whitespace after the value
 *   "JSON nested too deep"                  more than 1000 levels
 *   "out of memory"
 * A failed parse gives its arena memory back. */
const cJSON *lt_jtree_parse(lt_jarena_t *a, const void *buf, size_t len, size_t max_len,
                            char *errstr, size_t errlen);

#endif
