/* lt_json: cJSON over length-delimited, capped input. */
#include "lt_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest integer a double holds exactly (2^53). */
#define JSON_EXACT_INT 9007199254740992.0

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

cJSON *lt_json_parse(const void *buf, size_t len, size_t max_len, char *errstr, size_t errlen)
{
    const char *p = buf, *end = NULL;
    cJSON *root = NULL;
    size_t off;

    if (len > max_len) {
        snprintf(errstr, errlen, "JSON too large: %zu bytes (max %zu)", len, max_len);
        return NULL;
    }
    if (!p || len == 0) {
        snprintf(errstr, errlen, "JSON empty");
        return NULL;
    }
    /* return_parse_end (not the global cJSON_GetErrorPtr) keeps this
     * thread-safe; it points at the error on failure, past the value on success. */
    root = cJSON_ParseWithLengthOpts(p, len, &end, 0);
    off = (end && end >= p) ? (size_t)(end - p) : 0;
    if (!root) {
        snprintf(errstr, errlen, "JSON invalid at byte %zu", off);
        return NULL;
    }
    while (off < len && is_json_space(p[off]))
        off++;
    if (off < len) {
        snprintf(errstr, errlen, "JSON has trailing bytes at byte %zu", off);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

const char *lt_json_str(const cJSON *obj, const char *key)
{
    return lt_json_item_str(cJSON_GetObjectItemCaseSensitive(obj, key));
}

const char *lt_json_item_str(const cJSON *it)
{
    return lt_j_is_string(it) ? it->valuestring : NULL;
}

int lt_str_index(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

/* Strict decimal: optional '-', 1..18 digits, nothing else. */
static int parse_decimal(const char *s, long long *out)
{
    const char *d = (*s == '-') ? s + 1 : s;
    size_t n = strlen(d);
    char *end = NULL;
    long long v;

    if (n == 0 || n > 18 || strspn(d, "0123456789") != n)
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || !end || *end)
        return -1;
    *out = v;
    return 0;
}

static int number_as_int(const cJSON *it, long long *out)
{
    double v = it->valuedouble;

    if (!isfinite(v) || floor(v) != v || fabs(v) > JSON_EXACT_INT)
        return -1;
    *out = (long long)v;
    return 0;
}

int lt_json_int(const cJSON *obj, const char *key, long long *out)
{
    return lt_json_item_int(cJSON_GetObjectItemCaseSensitive(obj, key), out);
}

int lt_json_item_int(const cJSON *it, long long *out)
{
    if (lt_j_is_number(it))
        return number_as_int(it, out);
    if (lt_j_is_string(it) && it->valuestring)
        return parse_decimal(it->valuestring, out);
    return -1;
}

int lt_json_id(const cJSON *obj, const char *key, char *buf, size_t buflen)
{
    return lt_json_item_id(cJSON_GetObjectItemCaseSensitive(obj, key), buf, buflen);
}

int lt_json_item_id(const cJSON *it, char *buf, size_t buflen)
{
    long long v;
    size_t n;

    if (!buf || buflen == 0)
        return -1;
    if (lt_j_is_string(it) && it->valuestring) {
        n = strlen(it->valuestring);
        if (n < buflen)
            memcpy(buf, it->valuestring, n + 1);
    } else if (lt_j_is_number(it) && number_as_int(it, &v) == 0) {
        char num[24], *d = num + sizeof(num); /* |v| <= 2^53: no overflow */
        unsigned long long u = v < 0 ? (unsigned long long)-v : (unsigned long long)v;
        do
            *--d = (char)('0' + u % 10);
        while (u /= 10);
        if (v < 0)
            *--d = '-';
        n = (size_t)(num + sizeof(num) - d);
        if (n < buflen) {
            memcpy(buf, d, n);
            buf[n] = '\0';
        }
    } else {
        return -1;
    }
    if (n >= buflen) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

char *lt_json_print(const cJSON *item)
{
    return cJSON_PrintUnformatted(item);
}
