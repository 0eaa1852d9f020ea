/* test_log: the line format, level filtering and one line per record;
 * also the small lt_err and lt_signal modules. */
#include <regex.h>
#include <stdlib.h>
#include <unistd.h>

#include "lt_err.h"
#include "lt_log.h"
#include "lt_signal.h"
#include "lt_test.h"

/* Runs fn with stdout captured into buf. */
static void capture(void (*fn)(void), char *buf, size_t len)
{
    char path[] = "/tmp/lt_test_log_XXXXXX";
    int fd = mkstemp(path), saved = dup(STDOUT_FILENO);
    ssize_t n;

    fflush(stdout);
    dup2(fd, STDOUT_FILENO);
    fn();
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

static void emit(void)
{
    lt_log_init("fetcher", LT_LOG_INFO);
    lt_debug("hidden %d", 1);
    lt_info("rows=%d", 200);
    lt_warn("two\nlines");
    lt_error("%.*s", 3, "abcdef");
}

LT_TEST(format_and_levels)
{
    char out[4096];
    regex_t re;
    char *line, *save = NULL;
    int lines = 0;

    capture(emit, out, sizeof(out));
    CHECK(strstr(out, "hidden") == NULL);
    CHECK(strstr(out, " INFO fetcher: rows=200\n") != NULL);
    CHECK(strstr(out, " WARN fetcher: two lines\n") != NULL);
    CHECK(strstr(out, " ERROR fetcher: abc\n") != NULL);
    CHECK_INT(regcomp(&re,
                      "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                      "\\.[0-9]{3}Z (DEBUG|INFO|WARN|ERROR) fetcher: ",
                      REG_EXTENDED | REG_NOSUB),
              0);
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        CHECK(regexec(&re, line, 0, NULL, 0) == 0);
        lines++;
    }
    CHECK_INT(lines, 3);
    regfree(&re);
}

LT_TEST(level_parse)
{
    CHECK_INT(lt_log_level_parse("debug"), LT_LOG_DEBUG);
    CHECK_INT(lt_log_level_parse("INFO"), LT_LOG_INFO);
    CHECK_INT(lt_log_level_parse("warn"), LT_LOG_WARN);
    CHECK_INT(lt_log_level_parse("error"), LT_LOG_ERROR);
    CHECK_INT(lt_log_level_parse("verbose"), -1);
    CHECK_INT(lt_log_level_parse(NULL), -1);
}

LT_TEST(err_names)
{
    CHECK_STR(lt_err_name(LT_OK), "ok");
    CHECK_STR(lt_err_name(LT_ERR_RETRIABLE), "retriable");
    CHECK_STR(lt_err_name(LT_ERR_AUTH), "auth");
    CHECK_STR(lt_err_name(LT_ERR_FATAL), "fatal");
    CHECK_STR(lt_err_name((lt_err_t)99), "unknown");
}

LT_TEST(signals_set_flag)
{
    struct sigaction sa;

    lt_signal_install();
    CHECK_INT(lt_signal_stop, 0);
    raise(SIGPIPE); /* ignored: the process survives */
    raise(SIGTERM);
    CHECK_INT(lt_signal_stop, 1);
    lt_signal_stop = 0;
    raise(SIGINT);
    CHECK_INT(lt_signal_stop, 1);
    sigaction(SIGTERM, NULL, &sa);
    CHECK((sa.sa_flags & SA_RESTART) == 0);
}

int main(void)
{
    LT_RUN(format_and_levels);
    LT_RUN(level_parse);
    LT_RUN(err_names);
    LT_RUN(signals_set_flag);
    return LT_DONE();
}
