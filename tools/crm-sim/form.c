/* application/x-www-form-urlencoded: '+' is a space, %XX a byte. Used for
 * both the query string and the POST body (merged, the later value wins). */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 64
#define MAX_KEY    256
#define MAX_VAL    8192

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into a new NUL-terminated buffer; *outlen excludes the NUL. */
static char *decode(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static int add(cs_params_t *ps, const char *k, size_t kn, const char *v, size_t vn)
{
    if (ps->n >= MAX_PARAMS || kn > MAX_KEY || vn > MAX_VAL)
        return -1;
    if (ps->n == ps->cap) {
        size_t ncap = ps->cap ? ps->cap * 2 : 8;
        cs_param_t *np = realloc(ps->p, ncap * sizeof(*np));
        if (!np)
            return -1;
        ps->p = np, ps->cap = ncap;
    }
    cs_param_t *p = &ps->p[ps->n];
    p->key = decode(k, kn, &p->klen);
    p->val = decode(v, vn, &p->vlen);
    if (!p->key || !p->val) {
        free(p->key);
        free(p->val);
        return -1;
    }
    ps->n++;
    return 0;
}

int cs_params_parse(cs_params_t *ps, const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i, eq;
        while (end < len && buf[end] != '&')
            end++;
        for (eq = i; eq < end && buf[eq] != '='; eq++)
            ;
        if (end > i) {
            size_t vstart = eq < end ? eq + 1 : end;
            if (add(ps, buf + i, eq - i, buf + vstart, end - vstart) != 0)
                return -1;
        }
        i = end + 1;
    }
    return 0;
}

const cs_param_t *cs_params_get(const cs_params_t *ps, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = ps->n; i-- > 0;)
        if (ps->p[i].klen == kl && memcmp(ps->p[i].key, key, kl) == 0)
            return &ps->p[i];
    return NULL;
}

void cs_params_free(cs_params_t *ps)
{
    if (!ps)
        return;
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->p[i].key);
        free(ps->p[i].val);
    }
    free(ps->p);
    ps->p = NULL;
    ps->n = ps->cap = 0;
}
