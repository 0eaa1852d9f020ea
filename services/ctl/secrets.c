/* ltvctl secrets: the seal key ring of typed-in CRM passwords (lt_seal.h).
 *
 *   secrets keygen [--kid K]   one new key line "KID BASE64KEY" on stdout
 *   secrets seal ID            the password on stdin, sealed for integration
 *                              ID with the current key: the ref on stdout
 *   secrets rotate             re-seals every sealed password whose key is
 *                              not the current one, with the current one
 *
 * Nothing here prints a key but keygen (its purpose), and nothing prints a
 * password: rotate prints ids, KIDs and counts. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"
#include "lt_cred.h"
#include "lt_registry.h"
#include "lt_seal.h"

static int cmd_keygen(ctl_t *ctl)
{
    char line[128], errstr[256];
    if (lt_seal_keygen(ctl_opt(ctl, "--kid"), line, sizeof(line), errstr, sizeof(errstr)) !=
        LT_OK) {
        fprintf(ctl->err, "ltvctl: %s\n", errstr);
        lt_cred_wipe(line, sizeof(line));
        return ctl_fail(ctl, CTL_P_INVALID, "kid");
    }
    fputs(line, ctl->out);
    fflush(ctl->out);
    lt_cred_wipe(line, sizeof(line));
    return CTL_OK;
}

/* The password from stdin: at most LT_CRM_PASSWORD_MAX bytes and one
 * trailing newline ("\n" or "\r\n"); from a terminal, one line without
 * echo. 0, or -1 with a message. */
static int read_password(ctl_t *ctl, char *buf, size_t buflen)
{
    char tmp[LT_CRM_PASSWORD_MAX + 3];
    size_t n = 0;
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO), echo_off = 0, c, rc = -1;

    if (tty) {
        fprintf(ctl->err, "CRM API password (not echoed): ");
        fflush(ctl->err);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
    }
    while (n < sizeof(tmp) && (c = getchar()) != EOF) {
        tmp[n++] = (char)c;
        if (tty && c == '\n')
            break;
    }
    if (echo_off) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', ctl->err);
    }
    if (n == sizeof(tmp) && !tty && getchar() != EOF)
        n = sizeof(tmp) + 1; /* more than fits: too long */
    if (n <= sizeof(tmp) && n > 0 && tmp[n - 1] == '\n')
        n--;
    if (n <= sizeof(tmp) && n > 0 && tmp[n - 1] == '\r')
        n--;
    if (lt_cred_check_password(tmp, n, "password", buf, buflen) != LT_OK) {
        fprintf(ctl->err, "ltvctl: %s\n", buf);
        lt_cred_wipe(buf, buflen);
    } else if (n < buflen) {
        memcpy(buf, tmp, n);
        buf[n] = '\0';
        rc = 0;
    }
    lt_cred_wipe(tmp, sizeof(tmp));
    return rc;
}

static int cmd_seal(ctl_t *ctl)
{
    const char *id = ctl_arg(ctl, 0);
    char password[LT_CRM_PASSWORD_MAX + 1], ref[512], errstr[512];
    int rc = CTL_FAIL;

    if (!id || ctl_arg(ctl, 1)) {
        fprintf(ctl->err, "ltvctl: usage: secrets seal ID < password-file\n");
        return CTL_USAGE;
    }
    if (read_password(ctl, password, sizeof(password)) != 0)
        return ctl_fail(ctl, CTL_P_INVALID, "password");
    if (lt_seal_password_ref(ctl->cfg, id, password, ref, sizeof(ref), errstr, sizeof(errstr)) !=
        LT_OK) {
        fprintf(ctl->err, "ltvctl: %s\n", errstr);
        rc = ctl_fail_errstr(ctl, CTL_P_INVALID, errstr);
    } else {
        fprintf(ctl->out, "%s\n", ref);
        rc = CTL_OK;
    }
    lt_cred_wipe(password, sizeof(password));
    return rc;
}

/* Re-seals one integration's password with the ring's current key and
 * writes the document back. CTL_OK or CTL_FAIL with a message. */
static int reseal(ctl_t *ctl, const lt_seal_ring_t *ring, const lt_integration_t *stored)
{
    lt_integration_t in = *stored;
    char password[LT_CRM_PASSWORD_MAX + 1], errstr[512], kid[LT_SEAL_KID_MAX + 1] = "?";
    char *json = NULL;
    int rc = CTL_FAIL;

    lt_seal_ref_kid(stored->password_ref, kid);
    if (lt_seal_open(ring, in.id, in.password_ref, password, sizeof(password), errstr,
                     sizeof(errstr)) != LT_OK ||
        lt_seal(ring, in.id, password, in.password_ref, sizeof(in.password_ref), errstr,
                sizeof(errstr)) != LT_OK ||
        lt_integration_validate(&in, errstr, sizeof(errstr)) != LT_OK) {
        fprintf(ctl->err, "ltvctl: %s (key %s): %s\n", in.id, kid, errstr);
        goto end;
    }
    if (!(json = lt_integration_to_json(&in))) {
        fprintf(ctl->err, "ltvctl: %s: out of memory\n", in.id);
        goto end;
    }
    if ((rc = ctl_write_integration(ctl, in.id, json)) == CTL_OK && !ctl->json)
        fprintf(ctl->out, "%s: re-sealed, key %s -> %s\n", in.id, kid, lt_seal_ring_kid(ring, 0));
end:
    lt_cred_wipe(password, sizeof(password));
    free(json);
    return rc;
}

static int cmd_rotate(ctl_t *ctl)
{
    const char *path = lt_config_str(ctl->cfg, "SEAL_KEY_FILE");
    lt_seal_ring_t *ring = NULL;
    lt_registry_t reg = {0};
    char errstr[512];
    int resealed = 0, current = 0, failed = 0, unsealed = 0;

    if (ctl->argc > 0) {
        fprintf(ctl->err, "ltvctl: usage: secrets rotate\n");
        return CTL_USAGE;
    }
    if (lt_seal_ring_load(path, &ring, errstr, sizeof(errstr)) != LT_OK) {
        fprintf(ctl->err, "ltvctl: %s\n", errstr);
        return CTL_FAIL;
    }
    if (lt_registry_load(&reg, ctl->cfg, errstr, sizeof(errstr)) != LT_OK) {
        fprintf(ctl->err, "ltvctl: %s\n", errstr);
        lt_seal_ring_free(ring);
        return CTL_FAIL;
    }
    for (size_t i = 0; i < reg.count; i++) {
        const lt_integration_t *in = &reg.items[i];
        char kid[LT_SEAL_KID_MAX + 1];
        if (!lt_seal_is_sealed(in->password_ref)) {
            unsealed++;
        } else if (lt_seal_ref_kid(in->password_ref, kid) == 0 &&
                   !strcmp(kid, lt_seal_ring_kid(ring, 0))) {
            current++;
        } else if (reseal(ctl, ring, in) == CTL_OK) {
            resealed++;
        } else {
            failed++;
        }
    }
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();
        char *s;
        cJSON_AddStringToObject(o, "key", lt_seal_ring_kid(ring, 0));
        cJSON_AddNumberToObject(o, "resealed", resealed);
        cJSON_AddNumberToObject(o, "current", current);
        cJSON_AddNumberToObject(o, "failed", failed);
        cJSON_AddNumberToObject(o, "not_sealed", unsealed);
        if ((s = cJSON_PrintUnformatted(o)))
            fprintf(ctl->out, "%s\n", s);
        free(s);
        cJSON_Delete(o);
    } else {
        fprintf(ctl->out,
                "rotate: %d re-sealed with key %s, %d already on it, %d failed, %d not sealed "
                "(file:/env:)\n",
                resealed, lt_seal_ring_kid(ring, 0), current, failed, unsealed);
    }
    lt_registry_release(&reg);
    lt_seal_ring_free(ring);
    return failed ? CTL_FAIL : CTL_OK;
}

int ctl_secrets(ctl_t *ctl, const char *verb)
{
    if (!strcmp(verb, "keygen"))
        return cmd_keygen(ctl);
    if (!strcmp(verb, "seal"))
        return cmd_seal(ctl);
    if (!strcmp(verb, "rotate"))
        return cmd_rotate(ctl);
    fprintf(ctl->err, "ltvctl: unknown secrets command \"%s\" (keygen, seal, rotate)\n", verb);
    return CTL_USAGE;
}
