/* lt_sanitize: see lt_sanitize.h. */
#include "lt_sanitize.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const char *const secret_keys[] = {
    "eCommercePassword", "achAccountNumber", "achRoutingNumber",
};

/* Case-insensitive substring search; needle is lower case. */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == (unsigned char)needle[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

int lt_sanitize_is_secret_key(const char *key)
{
    if (!key)
        return 0;
    for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++)
        if (strcasecmp(key, secret_keys[i]) == 0)
            return 1;
    return contains_ci(key, "password");
}

int lt_sanitize_row(cJSON *item)
{
    int removed = 0;
    if (!item || !(cJSON_IsObject(item) || cJSON_IsArray(item)))
        return 0;
    cJSON *child = item->child;
    while (child) {
        cJSON *next = child->next;
        if (cJSON_IsObject(item) && lt_sanitize_is_secret_key(child->string)) {
            cJSON_Delete(cJSON_DetachItemViaPointer(item, child));
            removed++;
        } else {
            removed += lt_sanitize_row(child);
        }
        child = next;
    }
    return removed;
}
