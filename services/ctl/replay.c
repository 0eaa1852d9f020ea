/* ltvctl replay ID|--all: rebuild events from ltvsync.raw, no CRM calls.
 *
 * The replay is the normalizer itself, run as a child process under a fresh
 * consumer group (ltvsync-replay-<run>) with REPLAY_INTEGRATION set, so live
 * traffic and its group continue untouched. ltvctl captures the raw topic's
 * end offsets when it starts; the replay is done when the child's committed
 * offsets reach them, and then the child is drained with SIGTERM. Progress
 * goes to P replay:ID (lt_rkey_global; shown by `ltvctl status`). Before
 * it starts, the live normalizer must have passed those end offsets
 * (wait_live), so no live event made with old settings lands after the
 * replay's. Deterministic event ids and the sink's dedupe mean only events
 * whose content changed (a new timezone, say) are written downstream
 * again. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "ctl.h"
#include "lt_kafka.h"
#include "lt_redis.h"
#include "lt_rkeys.h"
#include "lt_signal.h"
#include "lt_uuid.h"

#define REPLAY_MAX_PARTITIONS 1024

typedef struct {
    rd_kafka_t *rk; /* a consumer in the replay's group, never subscribed */
    rd_kafka_topic_partition_list_t *parts;
    int64_t target[REPLAY_MAX_PARTITIONS];
    int64_t total;
} replay_t;

/* The normalizer binary: LTVSYNC_NORMALIZER_BIN, else next to ltvctl. */
static int normalizer_path(char *buf, size_t len)
{
    const char *env = getenv("LTVSYNC_NORMALIZER_BIN");
    ssize_t n;
    char *slash;
    if (env) {
        snprintf(buf, len, "%s", env);
        return 0;
    }
    if ((n = readlink("/proc/self/exe", buf, len - 32)) <= 0)
        return -1;
    buf[n] = '\0';
    if (!(slash = strrchr(buf, '/')))
        return -1;
    strcpy(slash + 1, "ltvsync-normalizer");
    return access(buf, X_OK);
}

/* A consumer handle in `group` and the raw topic's current end offsets. */
static int replay_open(const ctl_t *ctl, const char *group, replay_t *rp, char *errstr, size_t len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *topic = lt_config_str(ctl->cfg, "TOPIC_RAW");
    rd_kafka_resp_err_t err;
    int32_t *ids = NULL;
    int64_t ends[REPLAY_MAX_PARTITIONS];
    int n, rc = -1;

    if (lt_config_apply_kafka(ctl->cfg, "KAFKA_", conf, errstr, len) != LT_OK ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, len) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, len) != RD_KAFKA_CONF_OK ||
        !(rp->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, len))) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    if ((n = lt_kafka_partitions(rp->rk, topic, 10000, &ids, &err)) < 0 ||
        n > REPLAY_MAX_PARTITIONS) {
        snprintf(errstr, len, "cannot read the metadata of %s", topic);
        goto end;
    }
    rp->parts = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= REPLAY_MAX_PARTITIONS) {
            snprintf(errstr, len, "cannot read the end offsets of %s", topic);
            goto end;
        }
    }
    if (lt_kafka_end_offsets(rp->rk, topic, ids, n, ends, 10000)) {
        snprintf(errstr, len, "cannot read the end offsets of %s", topic);
        goto end;
    }
    for (int i = 0; i < n; i++) {
        rp->target[ids[i]] = ends[i];
        rp->total += ends[i];
        rd_kafka_topic_partition_list_add(rp->parts, topic, ids[i]);
    }
    rc = 0;
end:
    free(ids);
    return rc;
}

/* Waits (up to LIVE_WAIT_MS) until the live normalizer group has committed
 * past the raw end offsets captured after the integration was written: every
 * live batch that still used the old settings is then done, so none of its
 * events can land after the replay's. Returns 0, or -1 on timeout. A group
 * with no committed offsets (no live normalizer yet) needs no wait. */
#define LIVE_GROUP   "ltvsync-normalizer"
#define LIVE_WAIT_MS 120000

static int wait_live(const ctl_t *ctl, const replay_t *rp)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_copy(rp->parts);
    rd_kafka_t *rk = NULL;
    char errstr[256];
    int rc = -1;
    if (lt_config_apply_kafka(ctl->cfg, "KAFKA_", conf, errstr, sizeof(errstr)) != LT_OK ||
        rd_kafka_conf_set(conf, "group.id", LIVE_GROUP, errstr, sizeof(errstr)) ||
        !(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(conf);
        goto end;
    }
    for (int waited = 0; waited < LIVE_WAIT_MS && !lt_signal_stop; waited += 500) {
        int behind = 0, any = 0;
        if (rd_kafka_committed(rk, parts, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                any |= tp->offset >= 0;
                behind |= (tp->offset < 0 ? 0 : tp->offset) < rp->target[tp->partition];
            }
            if (!any || !behind) {
                rc = 0;
                break;
            }
        }
        usleep(500000);
    }
end:
    if (rk)
        rd_kafka_destroy(rk);
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

/* Rows the replay group has committed, or -1 when unknown. */
static int64_t replay_done(replay_t *rp)
{
    int64_t done = 0;
    if (rd_kafka_committed(rp->rk, rp->parts, 5000))
        return -1;
    for (int i = 0; i < rp->parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &rp->parts->elems[i];
        int64_t off = tp->offset < 0 ? 0 : tp->offset;
        done += off < rp->target[tp->partition] ? off : rp->target[tp->partition];
    }
    return done;
}

/* The child's environment: ours with the replay's four settings. Built
 * before fork: the control API calls this with other threads running, and
 * only async-signal-safe calls may run between fork and exec. */
static char **replay_env(const char *group, const char *filter, char *bufs[4])
{
    extern char **environ;
    static const char *const names[] = {
        "LTVSYNC_GROUP_ID=", "LTVSYNC_REPLAY_INTEGRATION=", "LTVSYNC_HTTP_PORT=",
        "LTVSYNC_KAFKA_AUTO_COMMIT_INTERVAL_MS="};
    const char *vals[] = {group, filter, "0", "500"};
    size_t n = 0, k = 0;
    char **env;
    while (environ[n])
        n++;
    if (!(env = calloc(n + 5, sizeof(char *))))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int ours = 0;
        for (int j = 0; j < 4; j++)
            ours |= !strncmp(environ[i], names[j], strlen(names[j]));
        if (!ours)
            env[k++] = environ[i];
    }
    for (int j = 0; j < 4; j++) {
        size_t len = strlen(names[j]) + strlen(vals[j]) + 1;
        if (!(bufs[j] = malloc(len))) {
            while (j-- > 0)
                free(bufs[j]);
            free(env);
            return NULL;
        }
        snprintf(bufs[j], len, "%s%s", names[j], vals[j]);
        env[k++] = bufs[j];
    }
    env[k] = NULL;
    return env;
}

static pid_t spawn(char *bin, const char *group, const char *filter, const char *logpath)
{
    char *bufs[4], **env = replay_env(group, filter, bufs);
    pid_t pid;
    if (!env)
        return -1;
    if ((pid = fork()) == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execve(bin, (char *[]){bin, NULL}, env);
        _exit(127);
    }
    for (int j = 0; j < 4; j++)
        free(bufs[j]);
    free(env);
    return pid;
}

static void record(lt_redis_t *r, const ctl_t *ctl, const char *id, const char *run,
                   const char *state, int64_t done, int64_t total)
{
    char key[256], what[96];
    snprintf(what, sizeof(what), "replay:%s", id);
    lt_rkey_global(key, sizeof(key), lt_config_str(ctl->cfg, "REDIS_PREFIX"), what);
    redisReply *reply =
        lt_redis_cmd(r, "HSET %s run %s state %s done %lld total %lld updated_ms %lld", key, run,
                     state, (long long)done, (long long)total, (long long)time(NULL) * 1000);
    if (reply)
        freeReplyObject(reply);
}

int ctl_replay_start(ctl_t *ctl, const char *id)
{
    replay_t rp = {0};
    lt_redis_t *r = NULL;
    char bin[PATH_MAX], run[37], group[64], logpath[PATH_MAX], errstr[512];
    const char *filter = id ? id : "*", *key = id ? id : "all";
    int64_t done = 0;
    pid_t pid = -1;
    int rc = CTL_FAIL, status, tty = ctl->out == stdout && isatty(1);

    if (normalizer_path(bin, sizeof(bin)) < 0) {
        fprintf(
            ctl->err,
            "ltvctl: cannot find ltvsync-normalizer next to ltvctl; set LTVSYNC_NORMALIZER_BIN\n");
        return CTL_FAIL;
    }
    lt_uuid_v4(run);
    snprintf(group, sizeof(group), "ltvsync-replay-%.8s", run);
    snprintf(logpath, sizeof(logpath), "%s/ltvsync-replay-%.8s.log",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", run);
    if (!(r = lt_redis_new(lt_config_str(ctl->cfg, "REDIS_URL"), 3000, errstr, sizeof(errstr))) ||
        replay_open(ctl, group, &rp, errstr, sizeof(errstr)) < 0) {
        fprintf(ctl->err, "ltvctl: replay: %s\n", errstr);
        goto end;
    }
    lt_signal_install();
    if (wait_live(ctl, &rp) < 0)
        fprintf(ctl->err,
                "ltvctl: warning: the live normalizer (group %s) is behind; rows it "
                "normalizes with the old settings after this replay stay so until "
                "the next replay\n",
                LIVE_GROUP);
    if ((pid = spawn(bin, group, filter, logpath)) < 0) {
        fprintf(ctl->err, "ltvctl: replay: fork: %s\n", strerror(errno));
        goto end;
    }
    fprintf(ctl->out, "replay %.8s of %s: %lld raw rows to re-read (group %s, log %s)\n", run,
            id ? id : "every integration", (long long)rp.total, group, logpath);
    fflush(ctl->out);
    while (!lt_signal_stop) {
        int64_t d = replay_done(&rp);
        if (d >= 0)
            done = d;
        record(r, ctl, key, run, "running", done, rp.total);
        if (tty && !ctl->json) {
            fprintf(ctl->out, "\r  %lld / %lld rows (%.0f%%)", (long long)done, (long long)rp.total,
                    rp.total ? 100.0 * (double)done / (double)rp.total : 100.0);
            fflush(ctl->out);
        }
        if (done >= rp.total)
            break;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            pid = -1;
            fprintf(ctl->err, "\nltvctl: replay: the normalizer exited early (see %s)\n", logpath);
            record(r, ctl, key, run, "failed", done, rp.total);
            goto end;
        }
        usleep(500000);
    }
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    pid = -1;
    if (done < rp.total) {
        fprintf(ctl->err, "\nltvctl: replay interrupted at %lld of %lld rows\n", (long long)done,
                (long long)rp.total);
        record(r, ctl, key, run, "interrupted", done, rp.total);
        goto end;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(ctl->err, "\nltvctl: replay: the normalizer did not drain cleanly (see %s)\n",
                logpath);
        record(r, ctl, key, run, "failed", done, rp.total);
        goto end;
    }
    record(r, ctl, key, run, "done", done, rp.total);
    unlink(logpath); /* kept only when the replay failed */
    fprintf(
        ctl->out,
        "%sreplay %.8s done: %lld rows re-read; the sink writes downstream only the events that "
        "changed\n",
        tty ? "\n" : "", run, (long long)done);
    rc = CTL_OK;
end:
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
    }
    if (rp.parts)
        rd_kafka_topic_partition_list_destroy(rp.parts);
    if (rp.rk)
        rd_kafka_destroy(rp.rk);
    lt_redis_destroy(r);
    return rc;
}

int ctl_replay(ctl_t *ctl)
{
    const char *id = ctl_arg(ctl, 0);
    lt_integration_t in;
    int rc;
    if (ctl_flag(ctl, "--all") == !!id) {
        fprintf(ctl->err, "ltvctl: replay ID | replay --all\n");
        return CTL_USAGE;
    }
    if (id && (rc = ctl_find_integration(ctl, id, &in)) != CTL_OK)
        return rc;
    return ctl_replay_start(ctl, id);
}
