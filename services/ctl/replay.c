/* ltvctl replay: rebuild events from ltvsync.raw (issue 5; not built yet). */
#include <stdio.h>

#include "ctl.h"

int ctl_replay_start(ctl_t *ctl, const char *id) {
    fprintf(stderr, "ltvctl: replay is not built yet; events of %s keep their old dating\n", id);
    return CTL_FAIL;
}
