/* The arguments of a command, and the record of its failures: shared by
 * ltvctl (main.c) and the control API (services/api). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

const char *ctl_opt(const ctl_t *ctl, const char *name)
{
    for (int i = 0; i + 1 < ctl->argc; i++)
        if (!strcmp(ctl->argv[i], name))
            return ctl->argv[i + 1];
    return NULL;
}

int ctl_flag(const ctl_t *ctl, const char *name)
{
    for (int i = 0; i < ctl->argc; i++)
        if (!strcmp(ctl->argv[i], name))
            return 1;
    return 0;
}

/* Options that take no value; every other "--x" takes one. */
static int is_bool_opt(const char *s)
{
    return !strcmp(s, "--json") || !strcmp(s, "--yes") || !strcmp(s, "--watch") ||
           !strcmp(s, "--all");
}

const char *ctl_arg(const ctl_t *ctl, int n)
{
    for (int i = 0; i < ctl->argc; i++) {
        if (!strncmp(ctl->argv[i], "--", 2)) {
            if (!is_bool_opt(ctl->argv[i]))
                i++;
            continue;
        }
        if (n-- == 0)
            return ctl->argv[i];
    }
    return NULL;
}

int ctl_fail(const ctl_t *ctl, ctl_problem_t p, const char *field)
{
    ctl->res->problem = p;
    snprintf(ctl->res->field, sizeof(ctl->res->field), "%s", field ? field : "");
    return CTL_FAIL;
}

int ctl_fail_errstr(const ctl_t *ctl, ctl_problem_t p, const char *errstr)
{
    const char *colon = strstr(errstr, ": ");
    size_t n = colon ? (size_t)(colon - errstr) : 0;
    char field[32] = "";
    /* "field: reason" with a field name of [a-z_] only */
    if (n > 0 && n < sizeof(field) && strspn(errstr, "abcdefghijklmnopqrstuvwxyz_") == n)
        memcpy(field, errstr, n), field[n] = '\0';
    return ctl_fail(ctl, p, field);
}
