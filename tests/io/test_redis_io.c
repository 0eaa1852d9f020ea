/* Driver of lt_redis for tests/integration/test_common_io.py (not a ctest
 * test itself). Usage: test_redis_io URL TIMEOUT_MS, then one command per
 * stdin line, one answer line each on stdout:
 *   ping                -> PONG | ERR <errstr>
 *   set KEY HEX         -> OK | ERR ...        (value given in hex: binary)
 *   get KEY             -> HEX | NIL | ERR ...
 *   incr KEY            -> <n> | ERR ...
 *   eval KEY ARG        -> <KEY>|<ARG>|<n> (script: KEYS[1], ARGV[1], #ARGV)
 *   flush               -> OK (SCRIPT FLUSH: the next eval hits NOSCRIPT)
 *   send KEY ARG        -> SENT | ERR ...  (lt_redis_eval_send of that script)
 *   recv KEY ARG        -> as eval          (lt_redis_eval_recv)
 * A bad URL prints "BADURL <errstr>" and exits 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_redis.h"

static lt_redis_script_t script = {.source = "return KEYS[1] .. '|' .. ARGV[1] .. '|' .. #ARGV"};

static size_t unhex(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    unsigned v;

    while (s[0] && s[1] && n < cap && sscanf(s, "%2x", &v) == 1) {
        out[n++] = (char)v;
        s += 2;
    }
    return n;
}

static void answer(lt_redis_t *r, redisReply *reply)
{
    size_t i;

    if (!reply) {
        printf("ERR %s\n", lt_redis_errstr(r));
        return;
    }
    if (reply->type == REDIS_REPLY_NIL)
        printf("NIL\n");
    else if (reply->type == REDIS_REPLY_INTEGER)
        printf("%lld\n", reply->integer);
    else if (reply->type == REDIS_REPLY_ERROR)
        printf("ERR %.*s\n", (int)reply->len, reply->str);
    else if (reply->type == REDIS_REPLY_STATUS)
        printf("%.*s\n", (int)reply->len, reply->str);
    else if (reply->type == REDIS_REPLY_STRING) {
        for (i = 0; i < reply->len; i++)
            printf("%02x", (unsigned char)reply->str[i]);
        printf("\n");
    } else
        printf("TYPE %d\n", reply->type);
    freeReplyObject(reply);
}

static void command(lt_redis_t *r, char *line)
{
    char *cmd = strtok(line, " \n"), *a1 = strtok(NULL, " \n"), *a2 = strtok(NULL, " \n");
    char bin[4096];
    size_t n;

    if (!cmd)
        return;
    if (!strcmp(cmd, "ping")) {
        printf(lt_redis_ping(r) ? "PONG\n" : "ERR %s\n", lt_redis_errstr(r));
    } else if (!strcmp(cmd, "set") && a1 && a2) {
        n = unhex(a2, bin, sizeof(bin));
        answer(r, lt_redis_cmd(r, "SET %b %b", a1, strlen(a1), bin, n));
    } else if (!strcmp(cmd, "get") && a1) {
        const char *argv[2] = {"GET", a1};
        answer(r, lt_redis_argv(r, 2, argv, NULL));
    } else if (!strcmp(cmd, "incr") && a1) {
        answer(r, lt_redis_cmd(r, "INCR %s", a1));
    } else if (!strcmp(cmd, "eval") && a1 && a2) {
        const char *argv[2] = {a1, a2};
        answer(r, lt_redis_eval(r, &script, 1, 2, argv, NULL));
    } else if (!strcmp(cmd, "send") && a1 && a2) {
        const char *argv[2] = {a1, a2};
        if (lt_redis_eval_send(r, &script, 1, 2, argv, NULL) == 0)
            printf("SENT\n");
        else
            printf("ERR %s\n", lt_redis_errstr(r));
    } else if (!strcmp(cmd, "recv") && a1 && a2) {
        const char *argv[2] = {a1, a2};
        answer(r, lt_redis_eval_recv(r, &script, 1, 2, argv, NULL));
    } else if (!strcmp(cmd, "flush")) {
        answer(r, lt_redis_cmd(r, "SCRIPT FLUSH"));
    } else {
        printf("ERR usage\n");
    }
}

int main(int argc, char **argv)
{
    char errstr[512], line[8192];
    lt_redis_t *r;

    if (argc != 3) {
        fprintf(stderr, "usage: test_redis_io URL TIMEOUT_MS\n");
        return 2;
    }
    if (!(r = lt_redis_new(argv[1], atoi(argv[2]), errstr, sizeof(errstr)))) {
        printf("BADURL %s\n", errstr);
        return 2;
    }
    while (fgets(line, sizeof(line), stdin)) {
        command(r, line);
        fflush(stdout);
    }
    lt_redis_destroy(r);
    return 0;
}
