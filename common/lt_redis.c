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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <hiredis/sds.h>

#define LT_REDIS_DEFAULT_PORT 6379

struct lt_redis_s {
    char host[128];
    int port;
    int db;
    char *user;     /* ACL user or NULL */
    char *password; /* decoded, or NULL; never printed */
    int timeout_ms;
    redisContext *c;
    char errstr[512];
    int pending; /* an lt_redis_eval_send awaits its reply */
    int cluster; /* the URL named a cluster */
};

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

/* host[:port][/db], host may be [v6]. */
static int parse_hostpart(lt_redis_t *r, const char *s, char *errstr, size_t errlen)
{
    const char *hend, *p;
    size_t hlen;
    char *end;
    long v;

    if (*s == '[') {
        if (!(hend = strchr(s, ']')))
            goto bad;
        s++;
        p = hend + 1;
    } else {
        hend = s + strcspn(s, ":/");
        p = hend;
    }
    hlen = (size_t)(hend - s);
    if (hlen == 0 || hlen >= sizeof(r->host))
        goto bad;
    memcpy(r->host, s, hlen);
    r->host[hlen] = '\0';
    r->port = LT_REDIS_DEFAULT_PORT;
    if (*p == ':') {
        v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v <= 0 || v > 65535)
            goto bad;
        r->port = (int)v;
        p = end;
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
             "malformed Redis URL: expected "
             "redis://[:password@]host:port[/db]");
    return -1;
}

lt_redis_t *lt_redis_new(const char *url, int timeout_ms, char *errstr, size_t errlen)
{
    static const char scheme[] = "redis://";
    lt_redis_t *r = NULL;
    const char *rest, *at;

    if (!url || strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(errstr, errlen, "malformed Redis URL: must start with redis://");
        return NULL;
    }
    if (!(r = calloc(1, sizeof(*r)))) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    rest = url + sizeof(scheme) - 1;
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
    snprintf(r->errstr, sizeof(r->errstr), "not connected");
    return r;
fail:
    lt_redis_destroy(r);
    return NULL;
}

static void drop_conn(lt_redis_t *r)
{
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
    r->pending = 0;
}

void lt_redis_destroy(lt_redis_t *r)
{
    if (!r)
        return;
    drop_conn(r);
    free(r->user);
    if (r->password) {
        explicit_bzero(r->password, strlen(r->password));
        free(r->password);
    }
    free(r);
}

/* Sends a handshake command on a fresh context; 0 when Redis says OK. */
static int handshake(lt_redis_t *r, const char *what, int argc, const char **argv)
{
    redisReply *reply = redisCommandArgv(r->c, argc, argv, NULL);
    int ok = reply && reply->type != REDIS_REPLY_ERROR;

    if (!reply)
        snprintf(r->errstr, sizeof(r->errstr), "Redis %s:%d %s: %s", r->host, r->port, what,
                 r->c->errstr);
    else if (!ok) /* Redis error texts never echo the password back */
        snprintf(r->errstr, sizeof(r->errstr), "Redis %s:%d %s failed: %.*s", r->host, r->port,
                 what, (int)(reply->len > 200 ? 200 : reply->len), reply->str);
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

/* Opens the connection, then AUTH and SELECT. 0 or -1 with r->errstr. */
static int connect_now(lt_redis_t *r)
{
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    char dbbuf[16];
    const char *auth[3] = {"AUTH", NULL, NULL};
    const char *sel[2] = {"SELECT", dbbuf};

    drop_conn(r);
    r->c = redisConnectWithTimeout(r->host, r->port, tv);
    if (!r->c || r->c->err) {
        snprintf(r->errstr, sizeof(r->errstr), "Redis %s:%d connect: %s", r->host, r->port,
                 r->c ? r->c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(r->c, tv) != REDIS_OK) {
        snprintf(r->errstr, sizeof(r->errstr), "Redis %s:%d: cannot set timeout", r->host, r->port);
        goto fail;
    }
    if (r->password) {
        auth[1] = r->user ? r->user : r->password;
        auth[2] = r->user ? r->password : NULL;
        if (handshake(r, "AUTH", r->user ? 3 : 2, auth) < 0)
            goto fail;
    }
    if (r->db != 0) {
        snprintf(dbbuf, sizeof(dbbuf), "%d", r->db);
        if (handshake(r, "SELECT", 2, sel) < 0)
            goto fail;
    }
    return 0;
fail:
    drop_conn(r);
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

/* An open connection for the next command: a new one when there is none or
 * the server closed the old one. *fresh = 1 when just made. -1 when Redis
 * is unreachable (r->errstr says why). */
static int conn_ready(lt_redis_t *r, int *fresh)
{
    *fresh = 0;
    if (r->c && closed_by_peer(r->c))
        drop_conn(r);
    if (!r->c) {
        if (connect_now(r) < 0)
            return -1;
        *fresh = 1;
    }
    return 0;
}

/* Records the failure of a command and drops the connection. */
static void note_failure(lt_redis_t *r)
{
    snprintf(r->errstr, sizeof(r->errstr), "Redis %s:%d: %s", r->host, r->port,
             r->c->err == REDIS_ERR_IO && r->c->errstr[0] == '\0' ? "I/O error" : r->c->errstr);
    drop_conn(r);
}

/* One way of sending a command (argv or format), run once or twice. */
typedef redisReply *(*send_fn)(redisContext *c, void *arg);

/* Sends a command; on a connection that broke since its last use (a Redis
 * restart, an idle timeout) sends it once more on a new one, when
 * resend_safe says the first could not have run. */
static redisReply *send_once_more(lt_redis_t *r, send_fn send, void *arg)
{
    int fresh, saved_errno;
    redisReply *reply;

    if (conn_ready(r, &fresh) < 0)
        return NULL;
    errno = 0;
    reply = send(r->c, arg);
    saved_errno = errno;
    if (reply)
        return reply;
    if (fresh || !resend_safe(r->c, saved_errno)) {
        note_failure(r);
        return NULL;
    }
    drop_conn(r);
    if (connect_now(r) < 0)
        return NULL;
    reply = send(r->c, arg);
    if (!reply)
        note_failure(r);
    return reply;
}

typedef struct {
    int argc;
    const char **argv;
    const size_t *argvlen;
} argv_cmd_t;

static redisReply *send_argv(redisContext *c, void *arg)
{
    const argv_cmd_t *a = arg;
    return redisCommandArgv(c, a->argc, a->argv, a->argvlen);
}

redisReply *lt_redis_argv(lt_redis_t *r, int argc, const char **argv, const size_t *argvlen)
{
    argv_cmd_t a = {argc, argv, argvlen};
    return send_once_more(r, send_argv, &a);
}

typedef struct {
    const char *fmt;
    va_list *ap;
} fmt_cmd_t;

static redisReply *send_fmt(redisContext *c, void *arg)
{
    const fmt_cmd_t *a = arg;
    va_list ap;
    va_copy(ap, *a->ap);
    redisReply *reply = redisvCommand(c, a->fmt, ap);
    va_end(ap);
    return reply;
}

redisReply *lt_redis_cmd(lt_redis_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fmt_cmd_t a = {fmt, &ap};
    redisReply *reply = send_once_more(r, send_fmt, &a);
    va_end(ap);
    return reply;
}

/* SCRIPT LOAD; stores the sha. 0 or -1 (r->errstr says why). */
static int script_load(lt_redis_t *r, lt_redis_script_t *script)
{
    const char *argv[3] = {"SCRIPT", "LOAD", script->source};
    redisReply *reply = lt_redis_argv(r, 3, argv, NULL);
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

/* EVALSHA with argv = nkeys keys then the arguments (argc in total). */
static redisReply *evalsha(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                           const char **argv, const size_t *argvlen)
{
    const char **av = NULL;
    size_t *al = NULL;
    char sha[41], nk[16];
    redisReply *reply = NULL;

    if (eval_words(script, nkeys, argc, argv, argvlen, &av, &al, sha, nk) == 0)
        reply = lt_redis_argv(r, argc + 3, av, al);
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
    return loaded || script_load(r, script) == 0 ? 0 : -1;
}

redisReply *lt_redis_eval(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                          const char **argv, const size_t *argvlen)
{
    redisReply *reply;

    if (script_ready(r, script) < 0)
        return NULL;
    reply = evalsha(r, script, nkeys, argc, argv, argvlen);
    if (!reply || !is_noscript(reply))
        return reply;
    /* Redis restarted or SCRIPT FLUSH: load again and retry once. */
    freeReplyObject(reply);
    if (script_load(r, script) < 0)
        return NULL;
    return evalsha(r, script, nkeys, argc, argv, argvlen);
}

int lt_redis_eval_send(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                       const char **argv, const size_t *argvlen)
{
    const char **av = NULL;
    size_t *al = NULL;
    char sha[41], nk[16];
    int rc = -1, done = 0, fresh;

    if (r->pending || conn_ready(r, &fresh) < 0 || script_ready(r, script) < 0)
        return -1;
    if (eval_words(script, nkeys, argc, argv, argvlen, &av, &al, sha, nk) != 0) {
        snprintf(r->errstr, sizeof(r->errstr), "out of memory");
        goto end;
    }
    if (redisAppendCommandArgv(r->c, argc + 3, av, al) != REDIS_OK)
        goto fail;
    while (!done) /* on the wire now, so Redis works while the caller does */
        if (redisBufferWrite(r->c, &done) != REDIS_OK)
            goto fail;
    r->pending = 1;
    rc = 0;
    goto end;
fail:
    note_failure(r);
end:
    free(av);
    free(al);
    return rc;
}

redisReply *lt_redis_eval_recv(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                               const char **argv, const size_t *argvlen)
{
    void *reply = NULL;

    if (!r->pending || !r->c) {
        snprintf(r->errstr, sizeof(r->errstr), "no pipelined call awaits a reply");
        return NULL;
    }
    r->pending = 0;
    if (redisGetReply(r->c, &reply) != REDIS_OK || !reply) {
        note_failure(r);
        return NULL;
    }
    if (!is_noscript(reply))
        return reply;
    freeReplyObject(reply); /* Redis restarted or SCRIPT FLUSH: as lt_redis_eval */
    if (script_load(r, script) < 0)
        return NULL;
    return evalsha(r, script, nkeys, argc, argv, argvlen);
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

int lt_redis_ping(lt_redis_t *r)
{
    redisReply *reply = lt_redis_cmd(r, "PING");
    int ok = reply && reply->type == REDIS_REPLY_STATUS && reply->len == 4 &&
             memcmp(reply->str, "PONG", 4) == 0;

    if (reply)
        freeReplyObject(reply);
    return ok;
}
