/* lt_log: one line per record on stdout.
 *
 * Format: `2026-11-25T19:40:04.123Z INFO fetcher: message`. No colour codes.
 * Thread-safe (one locked write per line). The level is checked before any
 * formatting, so a disabled debug line costs one comparison. Never pass a
 * secret or an unbounded outside string: print outside bytes with "%.*s". */
#ifndef LT_LOG_H
#define LT_LOG_H

#include <stdarg.h>
#include <stdio.h>

typedef enum {
    LT_LOG_DEBUG = 0,
    LT_LOG_INFO,
    LT_LOG_WARN,
    LT_LOG_ERROR,
} lt_log_level_t;

extern volatile lt_log_level_t lt_log_min_level;

/* Sets the service name shown on each line and the minimum level. */
void lt_log_init(const char *service, lt_log_level_t level);
/* Where lines go (stdout until called): a CLI whose stdout is its output
 * (ltvctl --json) logs to stderr. */
void lt_log_to(FILE *stream);
/* "debug", "info", "warn", "error" -> level; -1 if unknown. */
int lt_log_level_parse(const char *s);
void lt_log_write(lt_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lt_log_vwrite(lt_log_level_t level, const char *fmt, va_list ap);

#define LT_LOG(lvl, ...)                      \
    do {                                      \
        if ((lvl) >= lt_log_min_level)        \
            lt_log_write((lvl), __VA_ARGS__); \
    } while (0)
#define lt_debug(...) LT_LOG(LT_LOG_DEBUG, __VA_ARGS__)
#define lt_info(...)  LT_LOG(LT_LOG_INFO, __VA_ARGS__)
#define lt_warn(...)  LT_LOG(LT_LOG_WARN, __VA_ARGS__)
#define lt_error(...) LT_LOG(LT_LOG_ERROR, __VA_ARGS__)

#endif
