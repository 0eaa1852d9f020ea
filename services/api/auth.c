/* auth.c: the API's bearer tokens (a file of named tokens with a scope),
 * compared in constant time, each with its own rate limit (token bucket). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "lt_cred.h"

static int name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static int token_char(int c)
{
    return c > ' ' && c < 0x7f;
}

/* The next space-separated word of [*p, end) on one line; its length. */
static size_t word(const char **p, const char *end, const char **start)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
    *start = *p;
    while (*p < end && **p != ' ' && **p != '\t')
        (*p)++;
    return (size_t)(*p - *start);
}

static lt_err_t parse_line(api_tokens_t *t, const char *line, const char *end, int lineno,
                           char *errstr, size_t errlen)
{
    const char *p = line, *name, *scope, *tok, *extra;
    size_t nlen = word(&p, end, &name), slen = word(&p, end, &scope), tlen = word(&p, end, &tok);
    api_token_t *it;

    if (word(&p, end, &extra) > 0) {
        snprintf(errstr, errlen, "tokens file line %d: more than NAME SCOPE TOKEN", lineno);
        return LT_ERR_PERMANENT;
    }
    if (!nlen || !slen || !tlen) {
        snprintf(errstr, errlen, "tokens file line %d: expected NAME SCOPE TOKEN", lineno);
        return LT_ERR_PERMANENT;
    }
    if (nlen > API_TOKEN_NAME_MAX) {
        snprintf(errstr, errlen, "tokens file line %d: a name has at most %d characters", lineno,
                 API_TOKEN_NAME_MAX);
        return LT_ERR_PERMANENT;
    }
    for (size_t i = 0; i < nlen; i++)
        if (!name_char((unsigned char)name[i])) {
            snprintf(errstr, errlen, "tokens file line %d: a name is [A-Za-z0-9_.-]", lineno);
            return LT_ERR_PERMANENT;
        }
    if (!((slen == 4 && !memcmp(scope, "read", 4)) || (slen == 5 && !memcmp(scope, "admin", 5)))) {
        snprintf(errstr, errlen, "tokens file line %d: the scope is read or admin", lineno);
        return LT_ERR_PERMANENT;
    }
    if (tlen < API_TOKEN_MIN || tlen > API_TOKEN_MAX) {
        snprintf(errstr, errlen, "tokens file line %d: a token has %d to %d characters", lineno,
                 API_TOKEN_MIN, API_TOKEN_MAX);
        return LT_ERR_PERMANENT;
    }
    for (size_t i = 0; i < tlen; i++)
        if (!token_char((unsigned char)tok[i])) {
            snprintf(errstr, errlen, "tokens file line %d: a token is printable ASCII", lineno);
            return LT_ERR_PERMANENT;
        }
    for (size_t i = 0; i < t->count; i++) {
        if (strlen(t->items[i].name) == nlen && !memcmp(t->items[i].name, name, nlen)) {
            snprintf(errstr, errlen, "tokens file line %d: the name %.*s is used twice", lineno,
                     (int)nlen, name);
            return LT_ERR_PERMANENT;
        }
        if (t->items[i].len == tlen && !memcmp(t->items[i].token, tok, tlen)) {
            snprintf(errstr, errlen, "tokens file line %d: the token of %s is used twice", lineno,
                     t->items[i].name);
            return LT_ERR_PERMANENT;
        }
    }
    if (t->count >= API_TOKENS_MAX) {
        snprintf(errstr, errlen, "tokens file: more than %d tokens", API_TOKENS_MAX);
        return LT_ERR_PERMANENT;
    }
    it = &t->items[t->count++];
    memset(it, 0, sizeof(*it));
    memcpy(it->name, name, nlen);
    it->scope = slen == 5 ? API_SCOPE_ADMIN : API_SCOPE_READ;
    memcpy(it->token, tok, tlen);
    it->len = tlen;
    it->tokens = t->burst;
    return LT_OK;
}

lt_err_t api_tokens_parse(api_tokens_t *t, const char *text, size_t len, char *errstr,
                          size_t errlen)
{
    const char *p = text, *end = text + len;
    int lineno = 0;
    t->count = 0;
    if (t->burst <= 0)
        api_tokens_set_rate(t, 20);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *q = p;
        lineno++;
        if (le > p && le[-1] == '\r')
            le--;
        while (q < le && (*q == ' ' || *q == '\t'))
            q++;
        if (q < le && *q != '#' && parse_line(t, q, le, lineno, errstr, errlen) != LT_OK) {
            api_tokens_destroy(t);
            return LT_ERR_PERMANENT;
        }
        p = nl ? nl + 1 : end;
    }
    if (!t->count) {
        snprintf(errstr, errlen, "tokens file: no token (lines NAME SCOPE TOKEN)");
        return LT_ERR_PERMANENT;
    }
    return LT_OK;
}

lt_err_t api_tokens_load(api_tokens_t *t, const char *path, char *errstr, size_t errlen)
{
    char *buf;
    size_t n;
    lt_err_t err;
    FILE *fp = path && *path ? fopen(path, "rb") : NULL;
    if (!fp) {
        snprintf(errstr, errlen, "API_TOKENS_FILE %s: %s", path && *path ? path : "(unset)",
                 path && *path ? strerror(errno) : "required");
        return LT_ERR_PERMANENT;
    }
    if (!(buf = malloc(API_TOKENS_FILE_MAX + 1))) {
        fclose(fp);
        snprintf(errstr, errlen, "out of memory");
        return LT_ERR_PERMANENT;
    }
    n = fread(buf, 1, API_TOKENS_FILE_MAX + 1, fp);
    fclose(fp);
    if (n > API_TOKENS_FILE_MAX) {
        snprintf(errstr, errlen, "API_TOKENS_FILE %s: larger than %d bytes", path,
                 API_TOKENS_FILE_MAX);
        err = LT_ERR_PERMANENT;
    } else {
        err = api_tokens_parse(t, buf, n, errstr, errlen);
    }
    lt_cred_wipe(buf, API_TOKENS_FILE_MAX + 1);
    free(buf);
    return err;
}

void api_tokens_set_rate(api_tokens_t *t, double per_second)
{
    t->rate = per_second > 0 ? per_second : 1;
    t->burst = 2 * t->rate;
    for (size_t i = 0; i < t->count; i++)
        t->items[i].tokens = t->burst;
}

void api_tokens_destroy(api_tokens_t *t)
{
    lt_cred_wipe(t->items, sizeof(t->items));
    t->count = 0;
}

const api_token_t *api_tokens_find(const api_tokens_t *t, const char *value, size_t len)
{
    const api_token_t *found = NULL;
    if (len == 0 || len > API_TOKEN_MAX)
        return NULL;
    for (size_t i = 0; i < t->count; i++) {
        const api_token_t *it = &t->items[i];
        volatile unsigned char diff = (unsigned char)(it->len != len);
        /* every byte of the fixed-size slot: the time depends on neither
         * token's length nor where they differ */
        for (size_t k = 0; k < API_TOKEN_MAX; k++) {
            unsigned char a = k < len ? (unsigned char)value[k] : 0;
            diff |= (unsigned char)(a ^ it->token[k]);
        }
        if (!diff)
            found = it;
    }
    return found;
}

long long api_tokens_take(api_tokens_t *t, const api_token_t *tok, long long now_ms)
{
    api_token_t *it = &t->items[tok - t->items]; /* the bucket is ours to change */
    long long wait = 0;
    pthread_mutex_lock(&t->mu);
    if (it->refilled_ms && now_ms > it->refilled_ms) {
        it->tokens += t->rate * (double)(now_ms - it->refilled_ms) / 1000.0;
        if (it->tokens > t->burst)
            it->tokens = t->burst;
    }
    if (!it->refilled_ms || now_ms > it->refilled_ms)
        it->refilled_ms = now_ms;
    if (it->tokens >= 1.0)
        it->tokens -= 1.0;
    else
        wait = (long long)((1.0 - it->tokens) * 1000.0 / t->rate) + 1;
    pthread_mutex_unlock(&t->mu);
    return wait;
}

int api_bearer(const char *header, const char **out, size_t *len)
{
    const char *p;
    if (!header || strncasecmp(header, "Bearer ", 7))
        return -1;
    p = header + 7;
    while (*p == ' ')
        p++;
    *out = p;
    *len = strlen(p);
    while (*len > 0 && p[*len - 1] == ' ')
        (*len)--;
    return *len > 0 ? 0 : -1;
}
