/* lt_redis: a Redis connection that reconnects, binary-safe commands, and Lua
 * scripts run with EVALSHA (reloaded on NOSCRIPT).
 *
 * One lt_redis_t per thread (hiredis contexts are not thread-safe). A
 * connection the server closed is replaced before a command is sent on it;
 * a command is sent a second time only when it was never written whole. A
 * call that fails returns NULL with the reason in lt_redis_errstr(), and the
 * caller fails closed (pauses) and usually tries again: a command whose
 * reply was lost may have run, so every command and script a caller retries
 * must be safe to run twice (idempotent, or checked by a token). */
#ifndef LT_REDIS_H
#define LT_REDIS_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include "lt_err.h"

typedef struct lt_redis_s lt_redis_t;

/* url: redis://[:password@]host:port[/db] for one Redis, or a Redis
 * Cluster: a seed list redis://[:password@]host:port,host:port,... (or
 * redis-cluster://[:password@]host:port for one seed; db must be 0). In a
 * cluster, each command goes to the master of its key's slot (CLUSTER
 * SLOTS, refreshed on MOVED or a broken connection; ASK followed once), and
 * lt_rkeys switches to the hash-tagged layout. Connects lazily; NULL only
 * for a malformed URL (errstr names the problem, never the password). */
lt_redis_t *lt_redis_new(const char *url, int timeout_ms, char *errstr, size_t errlen);
void lt_redis_destroy(lt_redis_t *r); /* accepts NULL */

/* Binary-safe command. Returns the reply (caller freeReplyObject()) or NULL
 * when Redis is unreachable. An error reply (REDIS_REPLY_ERROR) is returned
 * as a reply, not NULL. */
redisReply *lt_redis_argv(lt_redis_t *r, int argc, const char **argv, const size_t *argvlen);
/* hiredis format string; use %b for any outside bytes. */
redisReply *lt_redis_cmd(lt_redis_t *r, const char *fmt, ...);

typedef struct {
    const char *source; /* Lua source */
    char sha[41];       /* filled on first use */
} lt_redis_script_t;

/* EVALSHA sha nkeys argv[0..argc-1]: argv holds the nkeys keys first, then
 * the script arguments (argc = keys + arguments). Loads the script on
 * NOSCRIPT and retries once. */
redisReply *lt_redis_eval(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                          const char **argv, const size_t *argvlen);

/* lt_redis_eval in two halves, so the caller works while Redis does:
 * _send writes the EVALSHA and returns (0, or -1 when Redis is unreachable);
 * _recv waits for its reply, given the same arguments (a NOSCRIPT reply is
 * answered by loading the script and running it again, synchronously).
 * One call in flight per connection, and no other command in between.
 * A broken connection is not retried here: the caller falls back to
 * lt_redis_eval (so a script must be safe to run twice). */
int lt_redis_eval_send(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                       const char **argv, const size_t *argvlen);
redisReply *lt_redis_eval_recv(lt_redis_t *r, lt_redis_script_t *script, int nkeys, int argc,
                               const char **argv, const size_t *argvlen);

/* 1 when r talks to a Redis Cluster. */
int lt_redis_is_cluster(const lt_redis_t *r);

/* The cluster slot of a key (CRC16 of its hash tag, or of the whole key,
 * mod 16384): callers that batch many keys into one script call group
 * them by slot in a cluster (a script may touch one slot only). */
int lt_redis_key_slot(const char *key, size_t len);

const char *lt_redis_errstr(const lt_redis_t *r);

/* 1 when the last call through r failed (no reply: Redis unreachable,
 * frozen past the timeout, a broken connection), 0 once a call got a
 * reply. Any thread may ask (the HTTP thread's readiness does) while the
 * owner calls: a service stops its pass at the first failure and turns
 * unready at once, rather than after every command left has timed out. */
int lt_redis_down(const lt_redis_t *r);

/* 1 after a successful PING. */
int lt_redis_ping(lt_redis_t *r);

#endif
