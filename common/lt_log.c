/* lt_log: one line per record on stdout, UTC millisecond timestamps. */
#include "lt_log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

volatile lt_log_level_t lt_log_min_level = LT_LOG_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_service[64] = "ltvsync";
static FILE *log_stream; /* NULL: stdout */

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void lt_log_init(const char *service, lt_log_level_t level)
{
    pthread_mutex_lock(&log_lock);
    if (service)
        snprintf(log_service, sizeof(log_service), "%s", service);
    lt_log_min_level = level;
    pthread_mutex_unlock(&log_lock);
}

int lt_log_level_parse(const char *s)
{
    if (!s)
        return -1;
    if (!strcasecmp(s, "debug"))
        return LT_LOG_DEBUG;
    if (!strcasecmp(s, "info"))
        return LT_LOG_INFO;
    if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
        return LT_LOG_WARN;
    if (!strcasecmp(s, "error"))
        return LT_LOG_ERROR;
    return -1;
}

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (sized for any int fields). */
static void format_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
}

/* Newlines inside a message would split a record: they become spaces. */
static void flatten(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

void lt_log_to(FILE *stream)
{
    pthread_mutex_lock(&log_lock);
    log_stream = stream;
    pthread_mutex_unlock(&log_lock);
}

void lt_log_vwrite(lt_log_level_t level, const char *fmt, va_list ap)
{
    char ts[96], msg[2048];

    if (level < lt_log_min_level)
        return;
    if ((unsigned)level > LT_LOG_ERROR)
        level = LT_LOG_ERROR;
    format_now(ts, sizeof(ts));
    vsnprintf(msg, sizeof(msg), fmt, ap);
    flatten(msg);
    pthread_mutex_lock(&log_lock);
    FILE *out = log_stream ? log_stream : stdout;
    fprintf(out, "%s %s %s: %s\n", ts, level_names[level], log_service, msg);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

void lt_log_write(lt_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    lt_log_vwrite(level, fmt, ap);
    va_end(ap);
}
