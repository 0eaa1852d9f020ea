/* ltvsync-devbroker: librdkafka's mock cluster served over loopback TCP,
 * with every ltvsync topic pre-created, a watch for evicted records and an
 * optional control port where tests inject faults at run time.
 * Exit codes: 0 clean, 1 start-up failure, 2 usage, 3 records were evicted. */
#include <dirent.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include "devbroker.h"
#include "lt_config.h"
#include "lt_kafka.h"
#include "lt_log.h"
#include "lt_signal.h"

#define DB_CHECK_EVERY_MS 1000
#define DB_TICK_MS        100

typedef struct {
    int brokers;
    int partitions;
    const char *bootstrap_file;
    const char *status_file;
    const char *control_port_file;
} db_args_t;

static const char usage[] =
    "usage: ltvsync-devbroker --bootstrap-file FILE [--brokers N] "
    "[--partitions P]\n"
    "                         [--status-file FILE] [--control-port-file FILE]\n"
    "       ltvsync-devbroker --help | --version\n"
    "\n"
    "Serves the Kafka protocol on 127.0.0.1 with librdkafka's in-memory mock\n"
    "cluster and creates every ltvsync topic (names from LTVSYNC_TOPIC_*).\n"
    "Writes the bootstrap list to FILE when ready; runs until SIGTERM/SIGINT.\n"
    "Each partition keeps only ~5 MiB; a low watermark above 0 (evicted\n"
    "records) is logged as an ERROR and makes the exit code 3.\n"
    "\n"
    "  --brokers N         brokers in the cluster (default 1, max 16)\n"
    "  --partitions P      partitions per topic (default LTVSYNC_TOPIC_PARTITIONS)\n"
    "  --bootstrap-file F  where to write host:port,... (written atomically)\n"
    "  --status-file F     JSON {\"bootstrap\",\"evicted\",\"evictions\"}, "
    "refreshed every second\n"
    "  --control-port-file F\n"
    "                      serve fault injection on 127.0.0.1 (any free port);\n"
    "                      write the port to F (atomically) before FILE\n"
    "\n"
    "Fault injection: POST /fault with one JSON object (at most 4096 bytes);\n"
    "answers 200 {\"ok\":true}, else {\"error\":\"<reason>\"} with 400 (a bad or\n"
    "unknown op, api, error, broker, topic or field), 404, 405, 413 or 503.\n"
    "Brokers are 1..N.\n"
    "  {\"op\":\"broker_down\",\"broker\":1}  disconnect, refuse connections\n"
    "  {\"op\":\"broker_up\",\"broker\":1}    accept connections again\n"
    "  {\"op\":\"rtt\",\"broker\":1,\"ms\":500} delay its responses (0..60000 ms)\n"
    "  {\"op\":\"push_errors\",\"api\":\"Produce\",\"errors\":[\"NOT_LEADER_FOR_PARTITION\"]}\n"
    "  {\"op\":\"push_errors\",\"api\":\"Produce\",\"count\":3,\"error\":\"REQUEST_TIMED_OUT\"}\n"
    "      the next requests of that api, from any client, fail in that order\n"
    "  {\"op\":\"leader\",\"topic\":\"t\",\"partition\":0,\"broker\":2}  (-1: no leader)\n"
    "  {\"op\":\"coordinator\",\"type\":\"group\",\"key\":\"g\",\"broker\":2}\n"
    "      (type \"group\" or \"transaction\")\n"
    "  {\"op\":\"clear\"}  drop pushed errors, rtt 0, every broker up; leaders\n"
    "      and coordinators stay as set\n"
    "broker -1 means every broker for broker_down, broker_up and rtt. Error\n"
    "names are librdkafka's without RD_KAFKA_RESP_ERR_; see\n"
    "tools/devbroker/README.md for the api names and the limits.\n";

static int parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (end == s || *end || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* Returns -1 to continue, else an exit code. */
static int parse_args(int argc, char **argv, db_args_t *a)
{
    static const struct option opts[] = {{"brokers", required_argument, NULL, 'b'},
                                         {"partitions", required_argument, NULL, 'p'},
                                         {"bootstrap-file", required_argument, NULL, 'f'},
                                         {"status-file", required_argument, NULL, 's'},
                                         {"control-port-file", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int ch;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            if (parse_int(optarg, 1, 16, &a->brokers) < 0)
                goto bad;
            break;
        case 'p':
            if (parse_int(optarg, 1, 1024, &a->partitions) < 0)
                goto bad;
            break;
        case 'f': a->bootstrap_file = optarg; break;
        case 's': a->status_file = optarg; break;
        case 'c': a->control_port_file = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        case 'V': printf("ltvsync-devbroker %s\n", LTVSYNC_VERSION); return 0;
        default: goto bad;
        }
    }
    if (optind == argc && a->bootstrap_file)
        return -1;
bad:
    fputs(usage, stderr);
    return 2;
}

/* Creates every ltvsync topic on the mock cluster. */
static int create_topics(rd_kafka_mock_cluster_t *mc, const lt_config_t *cfg, int partitions,
                         int brokers)
{
    static const char *const names[] = {
        "TOPIC_INTEGRATIONS", "TOPIC_JOBS_LIVE", "TOPIC_JOBS_BACKFILL", "TOPIC_RAW", "TOPIC_EVENTS",
        "TOPIC_DOWNSTREAM",   "TOPIC_DLQ"};
    int repl = brokers < 3 ? brokers : 3;
    rd_kafka_resp_err_t err;
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *topic = lt_config_str(cfg, names[i]);
        if ((err = rd_kafka_mock_topic_create(mc, topic, partitions, repl))) {
            lt_error("create topic %s: %s", topic, rd_kafka_err2str(err));
            return -1;
        }
        db_mock_pause();
        lt_info("topic %s: %d partitions", topic, partitions);
    }
    return 0;
}

/* The handle that hosts the mock cluster; a producer that never produces. */
static rd_kafka_t *host_new(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_t *rk;

    lt_kafka_conf_set_logging(conf);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        lt_error("cannot create the mock cluster's client: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    lt_kafka_route_logs(rk);
    return rk;
}

/* Starts the control port and writes its port file; NULL on failure. The
 * watcher's client checks topics for the "leader" fault. */
static db_control_t *control_start(const db_args_t *a, rd_kafka_mock_cluster_t *mc, db_watch_t *w)
{
    db_fault_target_t t = {mc, db_watch_client(w), a->brokers};
    db_control_t *c;
    char errstr[256], line[32];

    if (!(c = db_control_start(&t, errstr, sizeof(errstr)))) {
        lt_error("control port: %s", errstr);
        return NULL;
    }
    snprintf(line, sizeof(line), "%d\n", db_control_port(c));
    if (db_write_atomic(a->control_port_file, line, strlen(line)) < 0) {
        lt_error("cannot write control port file %s", a->control_port_file);
        db_control_stop(c);
        return NULL;
    }
    lt_info("control: fault injection on 127.0.0.1:%d", db_control_port(c));
    return c;
}

/* Serves until a stop signal, checking watermarks every second. */
/* The mock's sockets leave Nagle on: when a client pipelines requests on
 * one connection (librdkafka sends up to 5), the mock's second response
 * waits for the client's delayed ACK of the first, about 40 ms (measured
 * with confluent-kafka: 5 messages acknowledged in 48 ms, 5.5 ms with
 * max.in.flight 1). Sets TCP_NODELAY on every TCP socket of the process:
 * the listeners, whose accepted connections inherit it (Linux), and the
 * connections open now. A real broker sets it itself. */
static void nodelay_all(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    if (!dir)
        return;
    while ((de = readdir(dir))) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        struct stat st;
        int domain = 0, one = 1;
        socklen_t len = sizeof(domain);
        if (*end || fd < 0 || fd == dirfd(dir) || fstat((int)fd, &st) != 0 ||
            !S_ISSOCK(st.st_mode) ||
            getsockopt((int)fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
            (domain != AF_INET && domain != AF_INET6))
            continue;
        setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    closedir(dir);
}

static void serve(rd_kafka_t *rk, db_watch_t *w)
{
    int since = DB_CHECK_EVERY_MS;

    while (!lt_signal_stop) {
        if (since >= DB_CHECK_EVERY_MS) {
            db_watch_check(w);
            nodelay_all(); /* a broker brought up again listens anew */
            since = 0;
        }
        rd_kafka_poll(rk, DB_TICK_MS);
        since += DB_TICK_MS;
    }
    db_watch_check(w); /* a last look: an eviction just before SIGTERM counts */
}

static int run(const db_args_t *a, const lt_config_t *cfg)
{
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    db_watch_t *w = NULL;
    db_control_t *ctl = NULL;
    const char *boot;
    char errstr[512], line[4096];
    int rc = 1;

    if (!(rk = host_new()))
        goto done;
    if (!(mc = rd_kafka_mock_cluster_new(rk, a->brokers))) {
        lt_error("cannot create the mock cluster");
        goto done;
    }
    boot = rd_kafka_mock_cluster_bootstraps(mc);
    nodelay_all();
    if (create_topics(mc, cfg, a->partitions, a->brokers) < 0)
        goto done;
    if (!(w = db_watch_new(boot, a->status_file, errstr, sizeof(errstr)))) {
        lt_error("watcher: %s", errstr);
        goto done;
    }
    db_watch_check(w); /* the status file exists before the bootstrap file */
    if (a->control_port_file && !(ctl = control_start(a, mc, w)))
        goto done;
    snprintf(line, sizeof(line), "%s\n", boot);
    if (db_write_atomic(a->bootstrap_file, line, strlen(line)) < 0) {
        lt_error("cannot write bootstrap file %s", a->bootstrap_file);
        goto done;
    }
    lt_info("ready: bootstrap %s (%d brokers)", boot, a->brokers);
    serve(rk, w);
    rc = db_watch_evictions(w) ? 3 : 0;
    lt_info("stopping: %zu evicted partitions, exit %d", db_watch_evictions(w), rc);
done:
    db_control_stop(ctl); /* first: its requests use w's client and mc */
    db_watch_destroy(w);
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (rk)
        rd_kafka_destroy(rk);
    return rc;
}

int main(int argc, char **argv)
{
    db_args_t a = {.brokers = 1, .partitions = 0};
    lt_config_t *cfg = NULL;
    char errstr[512];
    int rc, lvl;

    if ((rc = parse_args(argc, argv, &a)) >= 0)
        return rc;
    lt_log_init("devbroker", LT_LOG_INFO);
    cfg = lt_config_new(LT_SVC_DEVBROKER);
    if (!cfg || lt_config_load(cfg, NULL, errstr, sizeof(errstr)) != LT_OK) {
        fprintf(stderr, "ltvsync-devbroker: %s\n", cfg ? errstr : "out of memory");
        lt_config_destroy(cfg);
        return 1;
    }
    if ((lvl = lt_log_level_parse(lt_config_str(cfg, "LOG_LEVEL"))) >= 0)
        lt_log_init("devbroker", (lt_log_level_t)lvl);
    if (a.partitions == 0)
        a.partitions = (int)lt_config_int(cfg, "TOPIC_PARTITIONS");
    lt_signal_install();
    rc = run(&a, cfg);
    lt_config_destroy(cfg);
    return rc;
}
