/* lt_rkeys: see lt_rkeys.h. */
#include "lt_rkeys.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int cluster_mode;

void lt_rkeys_set_cluster(int on)
{
    atomic_store(&cluster_mode, on ? 1 : 0);
}

int lt_rkeys_cluster(void)
{
    return atomic_load(&cluster_mode);
}

static int done(char *buf, size_t len, int n)
{
    if (n < 0 || (size_t)n >= len) {
        if (len)
            buf[0] = '\0';
        return -1;
    }
    return n;
}

int lt_rkey_integ(char *buf, size_t len, const char *prefix, const char *id, const char *what)
{
    int c = lt_rkeys_cluster();
    return done(buf, len,
                snprintf(buf, len, "%si:%s%s%s:%s", prefix, c ? "{" : "", id, c ? "}" : "", what));
}

int lt_rkey_global(char *buf, size_t len, const char *prefix, const char *what)
{
    return done(buf, len,
                snprintf(buf, len, "%s%s%s", prefix, lt_rkeys_cluster() ? "{g}:" : "", what));
}

int lt_rkey_prefix_ok(const char *prefix)
{
    return prefix && strlen(prefix) <= 64 && !strpbrk(prefix, "{}");
}

int lt_rkey_dedupe_stem(char *buf, size_t len, const char *prefix, unsigned bucket)
{
    if (!lt_rkeys_cluster())
        return done(buf, len, snprintf(buf, len, "%sdd2:", prefix));
    return done(buf, len, snprintf(buf, len, "%sdd2:{%x}:", prefix, (bucket >> 10) & 15));
}
