/* lt_redis: see lt_redis.h.
 *
 * Reconnect rule: before a command, a connection the server already closed
 * (EOF or reset waiting on the socket: Redis restarted, an idle timeout) is
 * replaced, so nothing is sent on it. After a failure, the command is sent
 * again on a new connection only when hiredis could not write all of it:
 * Redis never saw it whole, so it cannot have run. Once the whole command
 * was written, a lost reply (timeout, EOF, reset) means Redis may have run
 * it: the connection is dropped and the call returns NULL, and the caller
 * decides (every script here is safe to run twice; see lt_redis.h). */
#include "lt_redis.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <hiredis/sds.h>
#include <strings.h>

#include "lt_rkeys.h"

#define LT_REDIS_DEFAULT_PORT 6379
#define LT_REDIS_SLOTS        16384
#define LT_REDIS_MAX_NODES    128 /* of one cluster: masters, replicas and seeds */
#define LT_REDIS_REDIRECTS    5   /* MOVED/ASK followed per command */

/* One server: the only one, or a node of a cluster. */
typedef struct {
    char host[128];
    int port;
    redisContext *c;
} node_t;

struct lt_redis_s {
    int db;
    char *user;     /* ACL user or NULL */
    char *password; /* decoded, or NULL; never printed */
    int timeout_ms;
    int cluster;   /* the URL named a cluster */
    node_t *nodes; /* [0..nseeds) the URL's, then those CLUSTER SLOTS named */
    int nnodes, nseeds;
    int16_t *slots; /* cluster: slot -> node index, -1 unknown */
    int map_stale;  /* refresh the slot map before the next command */
    char errstr[512];
    node_t *pending; /* the node an lt_redis_eval_send awaits a reply from */
    atomic_int down; /* lt_redis_down: set by the public calls, read by any thread */
};

/* Notes the outcome of a public call for lt_redis_down; returns reply. */
static redisReply *noted(lt_redis_t *r, redisReply *reply)
{
    atomic_store(&r->down, reply == NULL);
    return reply;
}

/* Guards lt_redis_script_t.sha, which threads with their own connections may
 * share. */
static pthread_mutex_t sha_lock = PTHREAD_MUTEX_INITIALIZER;

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into a new string; NULL on a bad escape. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t i, o = 0;

    if (!out)
        return NULL;
    for (i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* userinfo = [user]:password (a bare "pw" without ':' is taken as password). */
static int parse_userinfo(lt_redis_t *r, const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    size_t ulen = colon ? (size_t)(colon - s) : 0;
    const char *pw = colon ? colon + 1 : s;
    size_t pwlen = len - (size_t)(pw - s);

    if (ulen > 0 && !(r->user = pct_decode(s, ulen)))
        return -1;
    if (pwlen > 0 && !(r->password = pct_decode(pw, pwlen)))
        return -1;
    return 0;
}

/* host[:port] (host may be [v6]) at s, ending at a ',', '/' or the end:
 * a new node. Returns the end, or NULL when malformed. */
static const char *parse_node(lt_redis_t *r, const char *s)
{
    const char *hend, *p;
    size_t hlen;
    char *end;
    long v;
    node_t *n;

    if (r->nnodes >= LT_REDIS_MAX_NODES)
        return NULL;
    if (*s == '[') {
        if (!(hend = strchr(s, ']')))
            return NULL;
        s++;
        p = hend + 1;
    } else {
        hend = s + strcspn(s, ":/,");
        p = hend;
    }
    hlen = (size_t)(hend - s);
    n = &r->nodes[r->nnodes];
    if (hlen == 0 || hlen >= sizeof(n->host))
        return NULL;
    memcpy(n->host, s, hlen);
    n->host[hlen] = '\0';
    n->port = LT_REDIS_DEFAULT_PORT;
    if (*p == ':') {
        v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v <= 0 || v > 65535)
            return NULL;
        n->port = (int)v;
        p = end;
    }
    if (*p != '\0' && *p != '/' && *p != ',')
        return NULL;
    r->nnodes++;
    return p;
}

/* host[:port][,host[:port]...][/db]. */
static int parse_hostpart(lt_redis_t *r, const char *s, char *errstr, size_t errlen)
{
    const char *p = s;
    char *end;
    long v;

    for (;;) {
        if (!(p = parse_node(r, p)))
            goto bad;
        if (*p != ',')
            break;
        p++;
    }
    if (*p == '/' && p[1] != '\0') {
        v = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end != '\0' || v < 0 || v > 100000)
            goto bad;
        r->db = (int)v;
    } else if (*p != '\0' && strcmp(p, "/") != 0) {
        goto bad;
    }
    return 0;
bad:
    snprintf(errstr, errlen,
             "malformed Redis URL: expected redis://[:password@]host:port[/db] or a cluster's "
             "seed list redis://[:password@]host:port,host:port,...");
    return -1;
}

lt_redis_t *lt_redis_new(const char *url, int timeout_ms, char *errstr, size_t errlen)
{
    static const char scheme[] = "redis://", cscheme[] = "redis-cluster://";
    lt_redis_t *r = NULL;
    const char *rest, *at;
    int cluster = 0;

    if (url && strncmp(url, cscheme, sizeof(cscheme) - 1) == 0) {
        cluster = 1;
        rest = url + sizeof(cscheme) - 1;
    } else if (url && strncmp(url, scheme, sizeof(scheme) - 1) == 0) {
        rest = url + sizeof(scheme) - 1;
    } else {
        snprintf(errstr, errlen, "malformed Redis URL: must start with redis://");
        return NULL;
    }
    if (!(r = calloc(1, sizeof(*r))) ||
        !(r->nodes = calloc(LT_REDIS_MAX_NODES, sizeof(*r->nodes)))) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    /* The last '@' ends the userinfo: a password may itself contain '@'. */
    at = strrchr(rest, '@');
    if (at) {
        if (parse_userinfo(r, rest, (size_t)(at - rest)) < 0) {
            snprintf(errstr, errlen, "malformed Redis URL: bad password encoding");
            goto fail;
        }
        rest = at + 1;
    }
    if (parse_hostpart(r, rest, errstr, errlen) < 0)
        goto fail;
    r->nseeds = r->nnodes;
    r->cluster = cluster || r->nnodes > 1;
    if (r->cluster) {
        if (r->db != 0) {
            snprintf(errstr, errlen, "malformed Redis URL: a Redis Cluster has database 0 only");
            goto fail;
        }
        if (!(r->slots = malloc(LT_REDIS_SLOTS * sizeof(*r->slots)))) {
            snprintf(errstr, errlen, "out of memory");
            goto fail;
        }
        for (int i = 0; i < LT_REDIS_SLOTS; i++)
            r->slots[i] = -1;
        r->map_stale = 1;
        lt_rkeys_set_cluster(1); /* one Redis deployment per process */
    }
    snprintf(r->errstr, sizeof(r->errstr), "not connected");
    return r;
fail:
    lt_redis_destroy(r);
    return NULL;
}

static void drop_conn(lt_redis_t *r, node_t *n)
{
    if (n->c)
        redisFree(n->c);
    n->c = NULL;
    if (r->pending == n)
        r->pending = NULL;
}

void lt_redis_destroy(lt_redis_t *r)
{
    if (!r)
        return;
    for (int i = 0; r->nodes && i < r->nnodes; i++)
        drop_conn(r, &r->nodes[i]);
    free(r->nodes);
    free(r->slots);
    free(r->user);
    if (r->password) {
        explicit_bzero(r->password, strlen(r->password));
        free(r->password);
    }
    free(r);
}

/* Sends a handshake command on a fresh context; 0 when Redis says OK. */
static int handshake(lt_redis_t *r, node_t *n, const char *what, int argc, const char **argv)
{
    redisReply *reply = redisCommandArgv(n->c, argc, argv, NULL);
    int ok = reply && reply->type != REDIS_REPLY_ERROR;

    if (!reply)
        snprintf(r->errstr, sizeof(r->errstr), "Redis %s:%d %s: %s", n->host, n->port, what,
                 n->c->errstr);
    else if (!ok) /* Redis error texts never echo the password back */
        snprintf(r->errstr, sizeof(r->errstr), "Redis %s:%d %s failed: %.*s", n->host, n->port,
                 what, (int)(reply->len > 200 ? 200 : reply->len), reply->str);
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

/* Opens the node's connection, then AUTH and SELECT. 0 or -1 with
 * r->errstr. */
static int connect_now(lt_redis_t *r, node_t *n)
{
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    char dbbuf[16];
    const char *auth[3] = {"AUTH", NULL, NULL};
    const char *sel[2] = {"SELECT", dbbuf};

    drop_conn(r, n);
    n->c = redisConnectWithTimeout(n->host, n->port, tv);
    if (!n->c || n->c->err) {
        snprintf(r->errstr, sizeof(r->errstr), "Redis %s:%d connect: %s", n->host, n->port,
                 n->c ? n->c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(n->c, tv) != REDIS_OK) {
        snprintf(r->errstr, sizeof(r->errstr), "Redis %s:%d: cannot set timeout", n->host, n->port);
        goto fail;
    }
    if (r->password) {
        auth[1] = r->user ? r->user : r->password;
        auth[2] = r->user ? r->password : NULL;
        if (handshake(r, n, "AUTH", r->user ? 3 : 2, auth) < 0)
            goto fail;
    }
    if (r->db != 0) {
        snprintf(dbbuf, sizeof(dbbuf), "%d", r->db);
        if (handshake(r, n, "SELECT", 2, sel) < 0)
            goto fail;
    }
    return 0;
fail:
    drop_conn(r, n);
    return -1;
}

/* After a NULL reply: 1 when re-sending is safe, else 0. Safe means the
 * socket was dead (not a timeout) and the command was not all written
 * (hiredis empties obuf only once every byte went out). errno is still the
 * one hiredis saw: nothing ran in between. */
static int resend_safe(const redisContext *c, int saved_errno)
{
    if (c->obuf && sdslen(c->obuf) == 0)
        return 0; /* written whole: Redis may have run it */
    if (c->err == REDIS_ERR_EOF)
        return 1;
    if (c->err == REDIS_ERR_IO)
        return saved_errno != EAGAIN && saved_errno != EWOULDBLOCK && saved_errno != ETIMEDOUT &&
               saved_errno != EINTR;
    return 0;
}

/* 1 when the server already closed the connection (EOF or an error is
 * waiting on the socket, nothing else is: replies are never left unread). */
static int closed_by_peer(const redisContext *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* An open connection to n for the next command: a new one when there is
 * none or the server closed the old one. *fresh = 1 when just made. -1 when
 * the node is unreachable (r->errstr says why). */
static int conn_ready(lt_redis_t *r, node_t *n, int *fresh)
{
    *fresh = 0;
    if (n->c && closed_by_peer(n->c))
        drop_conn(r, n);
    if (!n->c) {
        if (connect_now(r, n) < 0)
            return -1;
        *fresh = 1;
    }
    return 0;
}

/* Records the failure of a command and drops the connection; in a cluster
 * the slot map is read again before the next command (the node may have
 * failed over). */
static void note_failure(lt_redis_t *r, node_t *n)
{
    snprintf(r->errstr, sizeof(r->errstr), "Redis %s:%d: %s", n->host, n->port,
             n->c->err == REDIS_ERR_IO && n->c->errstr[0] == '\0' ? "I/O error" : n->c->errstr);
    drop_conn(r, n);
    r->map_stale = r->cluster;
}

/* One way of sending a command (argv or format), run once or twice. */
typedef redisReply *(*send_fn)(redisContext *c, const void *arg);

/* Sends a command to n; on a connection that broke since its last use (a
 * Redis restart, an idle timeout) sends it once more on a new one, when
 * resend_safe says the first could not have run. */
static redisReply *send_once_more(lt_redis_t *r, node_t *n, send_fn send, const void *arg)
{
    int fresh, saved_errno;
    redisReply *reply;

    if (conn_ready(r, n, &fresh) < 0) {
        r->map_stale = r->cluster;
        return NULL;
    }
    errno = 0;
    reply = send(n->c, arg);
    saved_errno = errno;
    if (reply)
        return reply;
    if (fresh || !resend_safe(n->c, saved_errno)) {
        note_failure(r, n);
        return NULL;
    }
    drop_conn(r, n);
    if (connect_now(r, n) < 0) {
        r->map_stale = r->cluster;
        return NULL;
    }
    reply = send(n->c, arg);
    if (!reply)
        note_failure(r, n);
    return reply;
}

typedef struct {
    int argc;
    const char **argv;
    const size_t *argvlen;
} argv_cmd_t;

static redisReply *send_argv(redisContext *c, const void *arg)
{
    const argv_cmd_t *a = arg;
    return redisCommandArgv(c, a->argc, a->argv, a->argvlen);
}

/* ---- cluster routing ----------------------------------------------------
 *
 * The slot map comes from CLUSTER SLOTS, asked of any node that answers
 * (those the map already names first, then the URL's seeds). It is read
 * again before the next command after a MOVED, a CLUSTERDOWN or a broken
 * connection (a failover moves a master's slots to its replica: until the
 * cluster has promoted it, commands for those slots fail and the caller
 * pauses, as it does when one Redis is down). An ASK (a slot being
 * migrated) is followed once with ASKING, without changing the map. */

static node_t *node_named(lt_redis_t *r, const char *host, size_t hlen, int port)
{
    for (int i = 0; i < r->nnodes; i++)
        if (r->nodes[i].port == port && strlen(r->nodes[i].host) == hlen &&
            memcmp(r->nodes[i].host, host, hlen) == 0)
            return &r->nodes[i];
    if (r->nnodes >= LT_REDIS_MAX_NODES || hlen == 0 || hlen >= sizeof(r->nodes[0].host))
        return NULL;
    node_t *n = &r->nodes[r->nnodes++];
    memcpy(n->host, host, hlen);
    n->host[hlen] = '\0';
    n->port = port;
    n->c = NULL;
    return n;
}

/* Applies one CLUSTER SLOTS reply asked of node from; 0 when it covered
 * something. A node named with an empty host is reached as from is. */
static int apply_slots(lt_redis_t *r, const node_t *from, const redisReply *reply)
{
    int covered = 0;
    if (reply->type != REDIS_REPLY_ARRAY)
        return -1;
    for (int i = 0; i < LT_REDIS_SLOTS; i++)
        r->slots[i] = -1;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i], *m;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            (m = e->element[2])->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
            m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        long long port = m->element[1]->integer;
        const char *host = m->element[0]->str;
        size_t hlen = m->element[0]->len;
        if (lo < 0 || hi >= LT_REDIS_SLOTS || lo > hi || port <= 0 || port > 65535)
            continue;
        if (hlen == 0 || (hlen == 1 && host[0] == '?'))
            host = from->host, hlen = strlen(from->host);
        node_t *n = node_named(r, host, hlen, (int)port);
        if (!n)
            continue;
        for (long long s = lo; s <= hi; s++)
            r->slots[s] = (int16_t)(n - r->nodes);
        covered = 1;
    }
    return covered ? 0 : -1;
}

/* Reads the slot map again; 0, or -1 when no node answered (the old map is
 * then kept as it was where the nodes said nothing). */
static int refresh_slots(lt_redis_t *r)
{
    static const char *argv[2] = {"CLUSTER", "SLOTS"};
    argv_cmd_t a = {2, argv, NULL};
    char why[sizeof(r->errstr)] = "no node of the cluster answered";

    uint8_t serves[LT_REDIS_MAX_NODES] = {0};
    for (int s = 0; s < LT_REDIS_SLOTS; s++)
        if (r->slots[s] >= 0)
            serves[r->slots[s]] = 1;
    /* Nodes that serve slots first (they are the live ones), then the rest. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < r->nnodes; i++) {
            node_t *n = &r->nodes[i];
            if (serves[i] != (pass == 0))
                continue;
            redisReply *reply = send_once_more(r, n, send_argv, &a);
            int ok = reply && apply_slots(r, n, reply) == 0;
            if (!reply)
                snprintf(why, sizeof(why), "%s", r->errstr);
            else if (!ok)
                snprintf(why, sizeof(why), "Redis %s:%d: CLUSTER SLOTS: %.200s", n->host, n->port,
                         reply->type == REDIS_REPLY_ERROR ? reply->str : "no slots");
            if (reply)
                freeReplyObject(reply);
            if (ok) {
                r->map_stale = 0;
                return 0;
            }
        }
    }
    snprintf(r->errstr, sizeof(r->errstr), "%s", why);
    return -1;
}

static int word_is(const char *w, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp(w, name, len) == 0;
}

/* The slot of a command's key, or -1 for a command without one (any node
 * answers it). EVAL/EVALSHA route by their first declared key. */
static int command_slot(int argc, const char **argv, const size_t *lens)
{
    static const char *const keyless[] = {"PING", "SCRIPT", "INFO",     "TIME",   "CLUSTER",
                                          "ECHO", "DBSIZE", "CLIENT",   "CONFIG", "COMMAND",
                                          "AUTH", "HELLO",  "READONLY", "ASKING", NULL};
    size_t l0, l;
    if (argc < 1)
        return -1;
    l0 = lens ? lens[0] : strlen(argv[0]);
    for (int i = 0; keyless[i]; i++)
        if (word_is(argv[0], l0, keyless[i]))
            return -1;
    if (word_is(argv[0], l0, "EVALSHA") || word_is(argv[0], l0, "EVAL")) {
        if (argc < 4 || atoi(argv[2]) <= 0)
            return -1;
        return lt_redis_key_slot(argv[3], lens ? lens[3] : strlen(argv[3]));
    }
    if (argc < 2)
        return -1;
    l = lens ? lens[1] : strlen(argv[1]);
    return lt_redis_key_slot(argv[1], l);
}

/* The node for a slot (-1: any node the map names, else the first seed). */
static node_t *node_for(lt_redis_t *r, int slot)
{
    if (!r->cluster)
        return &r->nodes[0];
    if (r->map_stale)
        refresh_slots(r); /* on failure the old map is tried: the caller learns why */
    if (slot >= 0 && r->slots[slot] >= 0)
        return &r->nodes[r->slots[slot]];
    if (slot >= 0) {
        snprintf(r->errstr, sizeof(r->errstr), "Redis Cluster: no node serves slot %d", slot);
        r->map_stale = 1;
        return NULL;
    }
    for (int i = 0; i < r->nnodes; i++)
        if (r->nodes[i].c)
            return &r->nodes[i];
    for (int s = 0; s < LT_REDIS_SLOTS; s++)
        if (r->slots[s] >= 0)
            return &r->nodes[r->slots[s]];
    return &r->nodes[0];
}

/* A MOVED or ASK error: the target node (added when new) and the slot.
 * NULL for any other reply. */
static node_t *redirect_of(lt_redis_t *r, const redisReply *reply, int *ask, int *slot)
{
    const char *s, *sp, *colon;
    if (reply->type != REDIS_REPLY_ERROR || !reply->str)
        return NULL;
    s = reply->str;
    if (strncmp(s, "MOVED ", 6) == 0)
        *ask = 0, s += 6;
    else if (strncmp(s, "ASK ", 4) == 0)
        *ask = 1, s += 4;
    else
        return NULL;
    *slot = atoi(s);
    if (*slot < 0 || *slot >= LT_REDIS_SLOTS || !(sp = strchr(s, ' ')) ||
        !(colon = strrchr(sp + 1, ':')))
        return NULL;
    return node_named(r, sp + 1, (size_t)(colon - sp - 1), atoi(colon + 1));
}

/* ASKING then the command on n, in one write. */
static redisReply *send_asking(lt_redis_t *r, node_t *n, const argv_cmd_t *a)
{
    int fresh;
    void *ok = NULL, *reply = NULL;
    if (conn_ready(r, n, &fresh) < 0)
        return NULL;
    if (redisAppendCommand(n->c, "ASKING") != REDIS_OK ||
        redisAppendCommandArgv(n->c, a->argc, a->argv, a->argvlen) != REDIS_OK ||
        redisGetReply(n->c, &ok) != REDIS_OK || redisGetReply(n->c, &reply) != REDIS_OK) {
        if (ok)
            freeReplyObject(ok);
        note_failure(r, n);
        return NULL;
    }
    freeReplyObject(ok);
    return reply;
}

static int is_clusterdown(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->str &&
           (strncmp(reply->str, "CLUSTERDOWN", 11) == 0 || strncmp(reply->str, "TRYAGAIN", 8) == 0);
}

/* Runs a command where its key lives, following redirections; *at is the
 * node that answered (NULL when none did). */
static redisReply *run_argv(lt_redis_t *r, const argv_cmd_t *a, node_t **at)
{
    int slot = r->cluster ? command_slot(a->argc, a->argv, a->argvlen) : -1;
    node_t *n = node_for(r, slot);
    redisReply *reply = NULL;

    *at = NULL;
    for (int hop = 0; n && hop <= LT_REDIS_REDIRECTS; hop++) {
        int ask = 0, rslot = 0;
        node_t *to;
        if (!(reply = send_once_more(r, n, send_argv, a)))
            return NULL;
        *at = n;
        if (!r->cluster)
            return reply;
        if (is_clusterdown(reply))
            r->map_stale = 1;
        if (!(to = redirect_of(r, reply, &ask, &rslot)))
            return reply;
        freeReplyObject(reply);
        reply = NULL;
        if (ask) { /* the slot is moving: ask there once, keep the map */
            if ((reply = send_asking(r, to, a)))
                *at = to;
            return reply;
        }
        r->slots[rslot] = (int16_t)(to - r->nodes); /* MOVED: the new owner; */
        r->map_stale = 1;                           /* the rest moved too, likely */
        n = to;
    }
    if (!reply)
        snprintf(r->errstr, sizeof(r->errstr), "Redis Cluster: too many redirections");
    return reply;
}

redisReply *lt_redis_argv(lt_redis_t *r, int argc, const char **argv, const size_t *argvlen)
{
    argv_cmd_t a = {argc, argv, argvlen};
    node_t *at;
    return noted(r, run_argv(r, &a, &at));
}

typedef struct {
    const char *fmt;
    va_list *ap;
} fmt_cmd_t;

static redisReply *send_fmt(redisContext *c, const void *arg)
{
    const fmt_cmd_t *a = arg;
    va_list ap;
    va_copy(ap, *a->ap);
    redisReply *reply = redisvCommand(c, a->fmt, ap);
    va_end(ap);
    return reply;
}

/* The words of a command hiredis formatted (RESP "*N\r\n$len\r\n...\r\n"):
 * *words and *lens from calloc (free both; their entries point into cmd).
 * The count, or -1 when malformed or out of memory. */
static int resp_words(const char *cmd, size_t len, const char ***words, size_t **lens)
{
    const char *p = cmd, *end = cmd + len;
    char *e;
    long n = len > 0 && *p == '*' ? strtol(p + 1, &e, 10) : -1;
    if (n <= 0 || n > 1000000 || !(*words = calloc((size_t)n, sizeof(**words))) ||
        !(*lens = calloc((size_t)n, sizeof(**lens))))
        return -1;
    p = e + 2;
    for (long i = 0; i < n; i++) {
        long l;
        if (p >= end || *p != '$' || (l = strtol(p + 1, &e, 10)) < 0 || end - (e + 2) < l + 2)
            return -1;
        (*words)[i] = e + 2;
        (*lens)[i] = (size_t)l;
        p = e + 2 + l + 2;
    }
    return (int)n;
}

redisReply *lt_redis_cmd(lt_redis_t *r, const char *fmt, ...)
{
    va_list ap;
    redisReply *reply = NULL;
    va_start(ap, fmt);
    if (!r->cluster) {
        fmt_cmd_t a = {fmt, &ap};
        reply = send_once_more(r, &r->nodes[0], send_fmt, &a);
    } else { /* the key decides the node: format, then route the words */
        char *cmd = NULL;
        const char **words = NULL;
        size_t *lens = NULL;
        int len = redisvFormatCommand(&cmd, fmt, ap), n = -1;
        node_t *at;
        if (len > 0 && (n = resp_words(cmd, (size_t)len, &words, &lens)) > 0) {
            argv_cmd_t a = {n, words, lens};
            reply = run_argv(r, &a, &at);
        } else {
            snprintf(r->errstr, sizeof(r->errstr), "cannot format a Redis command");
        }
        free(words);
        free(lens);
        if (cmd)
            redisFreeCommand(cmd);
    }
    va_end(ap);
    return noted(r, reply);
}

/* SCRIPT LOAD on node n (any node when NULL); stores the sha. 0 or -1
 * (r->errstr says why). */
static int script_load(lt_redis_t *r, node_t *n, lt_redis_script_t *script)
{
    static const char *load[2] = {"SCRIPT", "LOAD"};
    const char *argv[3] = {load[0], load[1], script->source};
    argv_cmd_t a = {3, argv, NULL};
    node_t *at;
    redisReply *reply = n ? send_once_more(r, n, send_argv, &a) : run_argv(r, &a, &at);
    int ok = reply && reply->type == REDIS_REPLY_STRING && reply->len == 40;

    if (ok) {
        pthread_mutex_lock(&sha_lock);
        memcpy(script->sha, reply->str, 40);
        script->sha[40] = '\0';
        pthread_mutex_unlock(&sha_lock);
    } else if (reply) {
        snprintf(r->errstr, sizeof(r->errstr), "Redis SCRIPT LOAD failed: %.*s",
                 (int)(reply->len > 200 ? 200 : reply->len), reply->str ? reply->str : "");
    }
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

/* The words of EVALSHA sha nkeys argv...: *av and *al from malloc (free
 * both), sha and nk the caller's storage. 0, or -1 out of memory. */
static int eval_words(lt_redis_script_t *script, int nkeys, int argc, const char **argv,
                      const size_t *argvlen, const char ***av, size_t **al, char sha[41],
                      char nk[16])
{
    *av = calloc((size_t)argc + 3, sizeof(**av));
    *al = calloc((size_t)argc + 3, sizeof(**al));
    if (!*av || !*al)
        return -1;
    pthread_mutex_lock(&sha_lock);
    memcpy(sha, script->sha, 41);
    pthread_mutex_unlock(&sha_lock);
    snprintf(nk, 16, "%d", nkeys);
    (*av)[0] = "EVALSHA", (*al)[0] = 7;
    (*av)[1] = sha, (*al)[1] = 40;
    (*av)[2] = nk, (*al)[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        (*av)[i + 3] = argv[i];
        (*al)[i + 3] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    return 0;
}

/* EVALSHA with argv = nkeys keys then the arguments (argc in total); *at
 * the node that answered. */
static redisReply *evalsha(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                           const char **argv, const size_t *argvlen, node_t **at)
{
    const char **av = NULL;
    size_t *al = NULL;
    char sha[41], nk[16];
    redisReply *reply = NULL;

    *at = NULL;
    if (eval_words(script, nkeys, argc, argv, argvlen, &av, &al, sha, nk) == 0) {
        argv_cmd_t a = {argc + 3, av, al};
        reply = run_argv(r, &a, at);
    }
    free(av);
    free(al);
    return reply;
}

static int is_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->len >= 8 &&
           memcmp(reply->str, "NOSCRIPT", 8) == 0;
}

static int script_ready(lt_redis_t *r, lt_redis_script_t *script)
{
    int loaded;
    pthread_mutex_lock(&sha_lock);
    loaded = script->sha[0] != '\0';
    pthread_mutex_unlock(&sha_lock);
    return loaded || script_load(r, NULL, script) == 0 ? 0 : -1;
}

/* After NOSCRIPT from node n (a restart, SCRIPT FLUSH, or in a cluster a
 * node that never ran it): load it there and run the call once more. */
static redisReply *eval_again(lt_redis_t *r, node_t *n, lt_redis_script_t *script, int nkeys,
                              int argc, const char **argv, const size_t *argvlen)
{
    node_t *at;
    if (script_load(r, n, script) < 0)
        return NULL;
    return evalsha(r, script, nkeys, argc, argv, argvlen, &at);
}

static redisReply *eval_call(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                             const char **argv, const size_t *argvlen)
{
    redisReply *reply;
    node_t *at;

    if (script_ready(r, script) < 0)
        return NULL;
    reply = evalsha(r, script, nkeys, argc, argv, argvlen, &at);
    if (!reply || !is_noscript(reply) || !at)
        return reply;
    freeReplyObject(reply);
    return eval_again(r, at, script, nkeys, argc, argv, argvlen);
}

redisReply *lt_redis_eval(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                          const char **argv, const size_t *argvlen)
{
    return noted(r, eval_call(r, script, nkeys, argc, argv, argvlen));
}

int lt_redis_eval_send(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                       const char **argv, const size_t *argvlen)
{
    const char **av = NULL;
    size_t *al = NULL;
    char sha[41], nk[16];
    int rc = -1, done = 0, fresh;
    node_t *n;

    if (r->pending || script_ready(r, script) < 0)
        return -1;
    if (eval_words(script, nkeys, argc, argv, argvlen, &av, &al, sha, nk) != 0) {
        snprintf(r->errstr, sizeof(r->errstr), "out of memory");
        goto end;
    }
    /* routed by the map as it is; a redirection is followed in _recv */
    if (!(n = node_for(r, r->cluster ? command_slot(argc + 3, av, al) : -1)) ||
        conn_ready(r, n, &fresh) < 0) {
        r->map_stale = r->cluster;
        goto end;
    }
    if (redisAppendCommandArgv(n->c, argc + 3, av, al) != REDIS_OK)
        goto fail;
    while (!done) /* on the wire now, so Redis works while the caller does */
        if (redisBufferWrite(n->c, &done) != REDIS_OK)
            goto fail;
    r->pending = n;
    rc = 0;
    goto end;
fail:
    note_failure(r, n);
end:
    free(av);
    free(al);
    if (rc < 0) /* on the wire is not yet a reply: success leaves it as it was */
        atomic_store(&r->down, 1);
    return rc;
}

static redisReply *eval_recv_call(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                                  const char **argv, const size_t *argvlen)
{
    void *reply = NULL;
    node_t *n = r->pending;
    int ask, slot;

    if (!n || !n->c) {
        snprintf(r->errstr, sizeof(r->errstr), "no pipelined call awaits a reply");
        return NULL;
    }
    r->pending = NULL;
    if (redisGetReply(n->c, &reply) != REDIS_OK || !reply) {
        note_failure(r, n);
        return NULL;
    }
    if (is_noscript(reply)) { /* Redis restarted or SCRIPT FLUSH: as lt_redis_eval */
        freeReplyObject(reply);
        return eval_again(r, n, script, nkeys, argc, argv, argvlen);
    }
    if (r->cluster && (redirect_of(r, reply, &ask, &slot) || is_clusterdown(reply))) {
        /* the map was old: refresh it and run the call where it belongs
         * (a redirected command did not run) */
        freeReplyObject(reply);
        r->map_stale = 1;
        return eval_call(r, script, nkeys, argc, argv, argvlen);
    }
    return reply;
}

redisReply *lt_redis_eval_recv(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                               const char **argv, const size_t *argvlen)
{
    return noted(r, eval_recv_call(r, script, nkeys, argc, argv, argvlen));
}

int lt_redis_is_cluster(const lt_redis_t *r)
{
    return r->cluster;
}

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as Redis Cluster
 * hashes keys. */
static unsigned crc16(const char *buf, size_t len)
{
    unsigned crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)buf[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    }
    return crc & 0xffff;
}

int lt_redis_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len), *close;
    if (open) { /* the first {...} with something inside is the hash tag */
        size_t rest = len - (size_t)(open - key) - 1;
        if ((close = memchr(open + 1, '}', rest)) && close > open + 1)
            key = open + 1, len = (size_t)(close - open - 1);
    }
    return (int)(crc16(key, len) & 16383);
}

const char *lt_redis_errstr(const lt_redis_t *r)
{
    return r->errstr;
}

int lt_redis_down(const lt_redis_t *r)
{
    return atomic_load(&r->down);
}

int lt_redis_ping(lt_redis_t *r)
{
    redisReply *reply = lt_redis_cmd(r, "PING");
    int ok = reply && reply->type == REDIS_REPLY_STATUS && reply->len == 4 &&
             memcmp(reply->str, "PONG", 4) == 0;

    if (reply)
        freeReplyObject(reply);
    return ok;
}
