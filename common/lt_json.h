/* lt_json: bounded cJSON parsing and typed field access.
 * Outside bytes are never treated as C strings: parsing takes (buf, len). */
#ifndef LT_JSON_H
#define LT_JSON_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* Type tests inline, as cJSON_Is* (NULL is none of them): the library's are
 * calls into the shared object, and the per-row paths make dozens per row. */
static inline int lt_j_type(const cJSON *it)
{
    return it ? it->type & 0xFF : cJSON_Invalid;
}
#define lt_j_is_string(it) (lt_j_type(it) == cJSON_String)
#define lt_j_is_number(it) (lt_j_type(it) == cJSON_Number)
#define lt_j_is_object(it) (lt_j_type(it) == cJSON_Object)
#define lt_j_is_array(it)  (lt_j_type(it) == cJSON_Array)
#define lt_j_is_null(it)   (lt_j_type(it) == cJSON_NULL)
#define lt_j_is_true(it)   (lt_j_type(it) == cJSON_True)
#define lt_j_is_bool(it)   ((lt_j_type(it) & (cJSON_True | cJSON_False)) != 0)

/* Parses exactly len bytes (no NUL needed). Fails with a reason in errstr
 * when len > max_len, the JSON is invalid (with the byte offset), or bytes
 * trail the value. Caller frees with cJSON_Delete(). */
cJSON *lt_json_parse(const void *buf, size_t len, size_t max_len, char *errstr, size_t errlen);

/* Field of an object as a string, or NULL when absent or not a string. */
const char *lt_json_str(const cJSON *obj, const char *key);
/* Field as an integer: a JSON integer number or a decimal string ("42").
 * Returns 0 and sets *out, -1 when absent, fractional or not numeric. */
int lt_json_int(const cJSON *obj, const char *key, long long *out);
/* Field as an id string: strings as is, integers printed in decimal. Writes
 * into buf (NUL-terminated); returns 0, or -1 when absent/other type/too long. */
int lt_json_id(const cJSON *obj, const char *key, char *buf, size_t buflen);

/* The same three on an item already found (NULL reads as absent). */
const char *lt_json_item_str(const cJSON *it);
int lt_json_item_int(const cJSON *it, long long *out);
int lt_json_item_id(const cJSON *it, char *buf, size_t buflen);

/* The index of s in names[0..n), or -1 (also for s NULL). */
int lt_str_index(const char *s, const char *const *names, size_t n);

/* Compact one-line JSON; caller frees with free(). NULL on allocation failure. */
char *lt_json_print(const cJSON *item);

#endif
