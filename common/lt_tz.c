/* lt_tz: RFC 8536 TZif reader and fold=0 conversions (see lt_tz.h).
 *
 * The lookup rules mirror CPython's zoneinfo on purpose (the reference our
 * tests compare against): transition wall times for fold=0 are the UTC
 * instant plus the larger of the offsets either side; instants before the
 * table use the first non-DST type; instants past the table use the footer
 * TZ string's rule for the year (or the last type when there is none). */
#include "lt_tz.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_date.h"

#define TZ_MAX_FILE (1u << 20) /* real TZif files are a few KiB */

typedef struct {
    int32_t utcoff;
    int isdst;
    char abbr[16];
} tz_type_t;

/* One POSIX rule date: 'M' month.week.day, 'J' julian 1..365, 'N' 0..365. */
typedef struct {
    char kind;
    int m, w, d, n;
    int32_t time; /* seconds after local midnight, may be negative or > 24h */
} tz_rule_t;

typedef struct {
    int present, has_dst;
    tz_type_t std, dst;
    tz_rule_t start, end;
} tz_footer_t;

struct lt_tz_s {
    char name[256];
    size_t ntrans, ntypes;
    int64_t *trans_utc;
    int64_t *trans_wall0; /* local thresholds for fold=0 */
    const tz_type_t **trans_type;
    tz_type_t *types;
    const tz_type_t *before;
    const tz_type_t *after_fixed; /* used when the footer has no rule */
    tz_footer_t footer;
};

static void seterr(char *errstr, size_t errlen, const char *what, const char *name)
{
    if (errstr && errlen)
        snprintf(errstr, errlen, "%s %s", what, name);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* ---- POSIX TZ string (footer) ---- */

static int parse_num(const char **sp, int maxdigits, int *out)
{
    const char *s = *sp;
    int v = 0, n = 0;
    while (n < maxdigits && *s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0'), n++;
    if (n == 0)
        return -1;
    *sp = s;
    *out = v;
    return 0;
}

/* [+-]hh[:mm[:ss]] into seconds (sign as written). */
static int parse_hms(const char **sp, int maxh, int32_t *out)
{
    const char *s = *sp;
    int sign = 1, h, m = 0, sec = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (parse_num(&s, 3, &h) != 0 || h > maxh)
        return -1;
    if (*s == ':' && (s++, parse_num(&s, 2, &m) != 0 || m > 59))
        return -1;
    if (*s == ':' && (s++, parse_num(&s, 2, &sec) != 0 || sec > 59))
        return -1;
    *out = sign * (h * 3600 + m * 60 + sec);
    *sp = s;
    return 0;
}

static int parse_abbr(const char **sp, char *out, size_t outlen)
{
    const char *s = *sp, *b;
    size_t n;
    if (*s == '<') {
        b = ++s;
        while (*s && *s != '>')
            s++;
        if (*s != '>')
            return -1;
        n = (size_t)(s++ - b);
    } else {
        b = s;
        while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
            s++;
        n = (size_t)(s - b);
    }
    if (n < 1 || n >= outlen)
        return -1;
    memcpy(out, b, n);
    out[n] = '\0';
    *sp = s;
    return 0;
}

static int parse_rule(const char **sp, tz_rule_t *r)
{
    const char *s = *sp;
    memset(r, 0, sizeof(*r));
    if (*s == 'M') {
        s++;
        r->kind = 'M';
        if (parse_num(&s, 2, &r->m) || *s++ != '.' || parse_num(&s, 1, &r->w) || *s++ != '.' ||
            parse_num(&s, 1, &r->d) || r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d > 6)
            return -1;
    } else {
        r->kind = *s == 'J' ? 'J' : 'N';
        s += *s == 'J';
        if (parse_num(&s, 3, &r->n) || r->n > 365 || (r->kind == 'J' && r->n < 1))
            return -1;
    }
    r->time = 7200;
    if (*s == '/' && (s++, parse_hms(&s, 167, &r->time) != 0))
        return -1;
    *sp = s;
    return 0;
}

/* std offset [dst [offset] , start , end]; POSIX offsets are west-positive. */
static int parse_footer(const char *s, tz_footer_t *f)
{
    int32_t off;
    memset(f, 0, sizeof(*f));
    if (parse_abbr(&s, f->std.abbr, sizeof(f->std.abbr)) || parse_hms(&s, 24, &off))
        return -1;
    f->std.utcoff = -off;
    f->present = 1;
    if (*s == '\0')
        return 0;
    if (parse_abbr(&s, f->dst.abbr, sizeof(f->dst.abbr)))
        return -1;
    f->dst.utcoff = f->std.utcoff + 3600;
    f->dst.isdst = 1;
    if (*s != ',' && *s != '\0') {
        if (parse_hms(&s, 24, &off))
            return -1;
        f->dst.utcoff = -off;
    }
    if (*s == '\0') { /* POSIX default: US rules */
        f->start = (tz_rule_t){'M', 3, 2, 0, 0, 7200};
        f->end = (tz_rule_t){'M', 11, 1, 0, 0, 7200};
    } else if (*s++ != ',' || parse_rule(&s, &f->start) || *s++ != ',' || parse_rule(&s, &f->end) ||
               *s != '\0') {
        return -1;
    }
    f->has_dst = 1;
    return 0;
}

/* Local seconds of a rule's moment in `year` (local time of the offset in
 * force before it). */
static int64_t rule_local(const tz_rule_t *r, int year)
{
    int64_t days;
    if (r->kind == 'M') {
        int64_t first = lt_date_days_from_civil(year, r->m, 1);
        int md = 1 + (r->d - lt_date_weekday(first) + 7) % 7 + (r->w - 1) * 7;
        if (md > lt_date_days_in_month(year, r->m))
            md -= 7;
        days = first + md - 1;
    } else if (r->kind == 'J') {
        days =
            lt_date_days_from_civil(year, 1, 1) + r->n - 1 + (lt_date_is_leap(year) && r->n >= 60);
    } else {
        days = lt_date_days_from_civil(year, 1, 1) + r->n;
    }
    return days * 86400 + r->time;
}

static int year_of(int64_t secs)
{
    lt_datetime_t dt;
    lt_date_from_seconds(secs, &dt);
    return dt.year;
}

/* fold=0 reading of a local time under the footer rule (zoneinfo's
 * _TZStr._get_trans_info with fold=0). */
static const tz_type_t *footer_local(const tz_footer_t *f, int64_t ts)
{
    if (!f->has_dst)
        return &f->std;
    int year = year_of(ts);
    int64_t start = rule_local(&f->start, year), end = rule_local(&f->end, year);
    int32_t diff = f->dst.utcoff - f->std.utcoff;
    if (diff >= 0)
        start += diff;
    else
        end -= diff;
    int isdst = start < end ? (start <= ts && ts < end) : !(end <= ts && ts < start);
    return isdst ? &f->dst : &f->std;
}

static const tz_type_t *footer_utc(const tz_footer_t *f, int64_t ts, int *fold)
{
    *fold = 0;
    if (!f->has_dst)
        return &f->std;
    int year = year_of(ts);
    int64_t start = rule_local(&f->start, year) - f->std.utcoff;
    int64_t end = rule_local(&f->end, year) - f->dst.utcoff;
    int32_t diff = f->dst.utcoff - f->std.utcoff;
    int isdst = start < end ? (start <= ts && ts < end) : !(end <= ts && ts < start);
    int64_t a0 = diff > 0 ? end : start, a1 = diff > 0 ? end + diff : start - diff;
    *fold = a0 <= ts && ts < a1;
    return isdst ? &f->dst : &f->std;
}

/* ---- TZif ---- */

typedef struct {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_hdr_t;

static int read_hdr(const unsigned char *p, size_t len, tzif_hdr_t *h, int *version)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return -1;
    *version = p[4] == 0 ? 1 : p[4] - '0';
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->typecnt == 0 || h->typecnt > 256 || h->timecnt > 100000 || h->charcnt > 4096 ||
        h->leapcnt > 1000 || h->isutcnt > 256 || h->isstdcnt > 256)
        return -1;
    return 0;
}

static size_t block_len(const tzif_hdr_t *h, size_t tsize)
{
    return h->timecnt * tsize + h->timecnt + h->typecnt * 6 + h->charcnt +
           h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static int load_block(lt_tz_t *tz, const unsigned char *p, const tzif_hdr_t *h, size_t tsize)
{
    const unsigned char *idx = p + h->timecnt * tsize;
    const unsigned char *tt = idx + h->timecnt;
    const char *chars = (const char *)(tt + h->typecnt * 6);
    tz->ntrans = h->timecnt;
    tz->ntypes = h->typecnt;
    tz->types = calloc(h->typecnt, sizeof(*tz->types));
    tz->trans_utc = calloc(h->timecnt + 1, sizeof(int64_t));
    tz->trans_wall0 = calloc(h->timecnt + 1, sizeof(int64_t));
    tz->trans_type = calloc(h->timecnt + 1, sizeof(*tz->trans_type));
    if (!tz->types || !tz->trans_utc || !tz->trans_wall0 || !tz->trans_type)
        return -1;
    for (size_t i = 0; i < h->typecnt; i++) {
        tz_type_t *t = &tz->types[i];
        unsigned ai = tt[i * 6 + 5];
        t->utcoff = (int32_t)be32(tt + i * 6);
        t->isdst = tt[i * 6 + 4] != 0;
        if (ai >= h->charcnt || t->utcoff <= -89999 || t->utcoff >= 93599)
            return -1;
        snprintf(t->abbr, sizeof(t->abbr), "%.*s", (int)strnlen(chars + ai, h->charcnt - ai),
                 chars + ai);
    }
    for (size_t i = 0; i < h->timecnt; i++) {
        if (idx[i] >= h->typecnt)
            return -1;
        tz->trans_utc[i] = tsize == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
        tz->trans_type[i] = &tz->types[idx[i]];
    }
    return 0;
}

/* zoneinfo's _ts_to_local for fold 0; before[0] is type 0 (RFC 8536). */
static void compute_wall0(lt_tz_t *tz)
{
    for (size_t i = 0; i < tz->ntrans; i++) {
        int32_t a = i == 0 ? tz->types[0].utcoff : tz->trans_type[i - 1]->utcoff;
        int32_t b = tz->trans_type[i]->utcoff;
        if (tz->ntypes <= 1)
            a = b = tz->types[0].utcoff;
        tz->trans_wall0[i] = tz->trans_utc[i] + (a > b ? a : b);
    }
    tz->before = &tz->types[0];
    for (size_t i = 0; i < tz->ntypes; i++)
        if (!tz->types[i].isdst) {
            tz->before = &tz->types[i];
            break;
        }
    tz->after_fixed = tz->ntrans ? tz->trans_type[tz->ntrans - 1] : &tz->types[tz->ntypes - 1];
}

static int load_footer(lt_tz_t *tz, const unsigned char *p, size_t len)
{
    char buf[128];
    const unsigned char *nl;
    if (len < 2 || p[0] != '\n')
        return -1;
    nl = memchr(p + 1, '\n', len - 1);
    if (!nl || (size_t)(nl - p - 1) >= sizeof(buf))
        return -1;
    memcpy(buf, p + 1, (size_t)(nl - p - 1));
    buf[nl - p - 1] = '\0';
    if (buf[0] == '\0')
        return 0; /* empty footer: no rule, the last type holds */
    return parse_footer(buf, &tz->footer);
}

lt_tz_t *lt_tz_parse(const void *buf, size_t len, const char *name, char *errstr, size_t errlen)
{
    const unsigned char *p = buf;
    tzif_hdr_t h;
    int version;
    size_t tsize = 4, off = 44;
    lt_tz_t *tz = calloc(1, sizeof(*tz));
    if (!tz || read_hdr(p, len, &h, &version) != 0)
        goto bad;
    snprintf(tz->name, sizeof(tz->name), "%s", name ? name : "");
    if (version >= 2) {
        off += block_len(&h, 4);
        if (off > len || read_hdr(p + off, len - off, &h, &version) != 0)
            goto bad;
        off += 44;
        tsize = 8;
    }
    if (block_len(&h, tsize) > len - off || load_block(tz, p + off, &h, tsize) != 0)
        goto bad;
    off += block_len(&h, tsize);
    if (tsize == 8 && load_footer(tz, p + off, len - off) != 0)
        goto bad;
    compute_wall0(tz);
    return tz;
bad:
    seterr(errstr, errlen, "not a valid TZif file: time zone", name ? name : "");
    lt_tz_destroy(tz);
    return NULL;
}

void lt_tz_destroy(lt_tz_t *tz)
{
    if (!tz)
        return;
    free(tz->types);
    free(tz->trans_utc);
    free(tz->trans_wall0);
    free(tz->trans_type);
    free(tz);
}

const char *lt_tz_name(const lt_tz_t *tz)
{
    return tz->name;
}

/* bisect.bisect_right, step for step, so unsorted corner cases agree too. */
static size_t bisect_right(const int64_t *a, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x < a[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static const tz_type_t *local_type(const lt_tz_t *tz, int64_t ts)
{
    size_t n = tz->ntrans;
    if (n && ts < tz->trans_wall0[0])
        return tz->before;
    if (!n || ts > tz->trans_wall0[n - 1])
        return tz->footer.present ? footer_local(&tz->footer, ts) : tz->after_fixed;
    return tz->trans_type[bisect_right(tz->trans_wall0, n, ts) - 1];
}

int32_t lt_tz_local_offset(const lt_tz_t *tz, int64_t local_secs)
{
    return local_type(tz, local_secs)->utcoff;
}

int64_t lt_tz_local_to_utc(const lt_tz_t *tz, int64_t local_secs)
{
    return local_secs - local_type(tz, local_secs)->utcoff;
}

/* zoneinfo's fromutc: the type in force and whether the result is a fold. */
static const tz_type_t *utc_type(const lt_tz_t *tz, int64_t ts, int *fold)
{
    size_t n = tz->ntrans, idx;
    const tz_type_t *prev, *cur;
    const tz_type_t *after =
        tz->footer.present && !tz->footer.has_dst ? &tz->footer.std : tz->after_fixed;
    *fold = 0;
    if (n && ts < tz->trans_utc[0])
        return tz->before;
    if ((!n || ts > tz->trans_utc[n - 1]) && tz->footer.has_dst)
        return footer_utc(&tz->footer, ts, fold);
    if (!n)
        return after;
    idx = bisect_right(tz->trans_utc, n, ts);
    if (n > 1 && ts >= tz->trans_utc[1]) {
        prev = tz->trans_type[idx - 2];
        cur = tz->trans_type[idx - 1];
    } else if (ts > tz->trans_utc[n - 1]) {
        prev = tz->trans_type[n - 1];
        cur = after;
    } else {
        prev = tz->before;
        cur = tz->trans_type[0];
    }
    *fold = (int64_t)prev->utcoff - cur->utcoff > ts - tz->trans_utc[idx - 1];
    return cur;
}

void lt_tz_utc_to_local(const lt_tz_t *tz, int64_t utc, lt_tz_local_t *out)
{
    const tz_type_t *t = utc_type(tz, utc, &out->fold);
    out->utcoff = t->utcoff;
    out->isdst = t->isdst;
    out->local_secs = utc + t->utcoff;
    memcpy(out->abbr, t->abbr, sizeof(out->abbr));
}

/* ---- process-wide cache ---- */

typedef struct zone_node {
    struct zone_node *next;
    lt_tz_t *tz;
} zone_node_t;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static zone_node_t *cache_head;

/* IANA names only: letters, digits, '_', '-', '+', '/', no "..", no
 * leading '/', so a name can never escape the zoneinfo directory. */
static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 128 || name[0] == '/' || name[0] == '.' || strstr(name, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '+' || c == '/' || c == '.'))
            return 0;
    }
    return 1;
}

static lt_tz_t *load_file(const char *name, char *errstr, size_t errlen)
{
    const char *dir = getenv("TZDIR");
    char path[512];
    unsigned char *buf = NULL;
    lt_tz_t *tz = NULL;
    size_t len;
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    f = fopen(path, "rb");
    if (!f) {
        seterr(errstr, errlen, "unknown time zone", name);
        return NULL;
    }
    buf = malloc(TZ_MAX_FILE);
    len = buf ? fread(buf, 1, TZ_MAX_FILE, f) : 0;
    fclose(f);
    if (buf && len < TZ_MAX_FILE)
        tz = lt_tz_parse(buf, len, name, errstr, errlen);
    else
        seterr(errstr, errlen, "unreadable time zone", name);
    free(buf);
    return tz;
}

const lt_tz_t *lt_tz_get(const char *name, char *errstr, size_t errlen)
{
    lt_tz_t *tz = NULL;
    if (!name || !valid_name(name)) {
        seterr(errstr, errlen, "invalid time zone name", name ? name : "(null)");
        return NULL;
    }
    pthread_mutex_lock(&cache_mu);
    for (zone_node_t *z = cache_head; z; z = z->next)
        if (strcmp(z->tz->name, name) == 0) {
            tz = z->tz;
            goto end;
        }
    zone_node_t *node = calloc(1, sizeof(*node));
    if (node && (node->tz = load_file(name, errstr, errlen)) != NULL) {
        node->next = cache_head;
        cache_head = node; /* owned by the cache until process exit */
        tz = node->tz;
    } else {
        free(node);
    }
end:
    pthread_mutex_unlock(&cache_mu);
    return tz;
}
