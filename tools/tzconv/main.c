/* ltvsync-tzconv: answers conversion queries on stdin, one per line, for the
 * oracle tests (tests/integration/test_tz_oracle.py, test_money_oracle.py).
 *
 *   L ZONE YYYY-MM-DD HH:MM:SS -> "UTC_EPOCH OFFSET"      (wall -> UTC, fold=0)
 *   U ZONE EPOCH               -> "YYYY-MM-DD HH:MM:SS OFFSET FOLD"
 *   M CUR AMOUNT               -> "MINOR" or "ERR reason"  (lt_money_parse)
 * Bad lines answer "ERR ...". One output line per input line. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_date.h"
#include "lt_money.h"
#include "lt_tz.h"

static void answer_local(const char *zone, const char *wall)
{
    char err[256];
    lt_datetime_t dt;
    const lt_tz_t *tz = lt_tz_get(zone, err, sizeof(err));
    if (!tz) {
        printf("ERR %s\n", err);
        return;
    }
    if (lt_date_parse_datetime(wall, strlen(wall), &dt) != 0) {
        printf("ERR bad wall time\n");
        return;
    }
    int64_t local = lt_date_to_seconds(&dt);
    printf("%" PRId64 " %" PRId32 "\n", lt_tz_local_to_utc(tz, local),
           lt_tz_local_offset(tz, local));
}

static void answer_utc(const char *zone, const char *epoch)
{
    char err[256], buf[32];
    lt_tz_local_t loc;
    lt_datetime_t dt;
    const lt_tz_t *tz = lt_tz_get(zone, err, sizeof(err));
    if (!tz) {
        printf("ERR %s\n", err);
        return;
    }
    lt_tz_utc_to_local(tz, strtoll(epoch, NULL, 10), &loc);
    lt_date_from_seconds(loc.local_secs, &dt);
    lt_date_fmt_datetime(&dt, buf, sizeof(buf));
    printf("%s %" PRId32 " %d\n", buf, loc.utcoff, loc.fold);
}

static void answer_money(const char *cur, const char *amount)
{
    char err[256];
    int64_t minor;
    int exp = lt_money_exponent(cur, strlen(cur));
    if (exp < 0)
        printf("ERR unknown currency\n");
    else if (lt_money_parse(amount, strlen(amount), exp, &minor, err, sizeof(err)) != LT_OK)
        printf("ERR %s\n", err);
    else
        printf("%" PRId64 "\n", minor);
}

int main(void)
{
    char line[512];
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    while (fgets(line, sizeof(line), stdin)) {
        char *save = NULL;
        line[strcspn(line, "\r\n")] = '\0';
        char *cmd = strtok_r(line, " ", &save);
        char *a = strtok_r(NULL, " ", &save);
        char *b = strtok_r(NULL, "", &save);
        if (!cmd || !a)
            printf("ERR bad line\n");
        else if (strcmp(cmd, "L") == 0 && b)
            answer_local(a, b);
        else if (strcmp(cmd, "U") == 0 && b)
            answer_utc(a, b);
        else if (strcmp(cmd, "M") == 0)
            answer_money(a, b ? b : "");
        else
            printf("ERR bad line\n");
    }
    return 0;
}
