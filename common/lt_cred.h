/* lt_cred: where a CRM password may be read from, and where it may be sent.
 *
 * An integration is written by whoever can write ltvsync.integrations. These
 * rules keep such a writer from reading a secret that is not a CRM password
 * (another tenant's file, the fetcher's own REDIS_PASSWORD) or from sending a
 * password to a host that is not the CRM:
 *   - password_ref file:NAME names a file inside CRM_CREDENTIALS_DIR (a name
 *     relative to it, or an absolute path under it); no ".." component, and
 *     the path after resolving every symlink must still lie inside it;
 *   - password_ref env:NAME only for NAME = LTVSYNC_CRM_PASSWORD_<SUFFIX>;
 *   - password_ref sealed:v1:KID:BLOB, a password sealed for this very
 *     integration with a key of the ring SEAL_KEY_FILE (lt_seal.h);
 *   - base_url is https:// on a host of the brand's allow-list
 *     (CRM_HOSTS_KONNEKTIVE, CRM_HOSTS_CHECKOUTCHAMP); CRM_ALLOW_INSECURE=1
 *     also allows http:// and loopback hosts (simulators, tests, the demo).
 * ltvctl (add, update, test, reconcile) and the fetcher (before any request)
 * apply the same checks through lt_cred_password(). Error texts name the
 * rule and the reference, never the password. */
#ifndef LT_CRED_H
#define LT_CRED_H

#include <stddef.h>
#include "lt_config.h"
#include "lt_err.h"
#include "lt_integration.h"

/* The longest CRM password accepted anywhere (bytes, without the NUL). A
 * password buffer holds LT_CRM_PASSWORD_MAX + 1 bytes. */
#define LT_CRM_PASSWORD_MAX 256
#define LT_CRED_ENV_PREFIX  "LTVSYNC_CRM_PASSWORD_"

typedef struct {
    const char *dir;              /* CRM_CREDENTIALS_DIR */
    const char *hosts_konnektive; /* comma-separated host names */
    const char *hosts_checkoutchamp;
    int allow_insecure;        /* http:// and loopback hosts too */
    const char *seal_key_file; /* SEAL_KEY_FILE: the ring that opens sealed refs */
} lt_cred_policy_t;

/* Fills p from the settings; p borrows cfg's strings (cfg must outlive it). */
void lt_cred_policy_init(lt_cred_policy_t *p, const lt_config_t *cfg);

/* base_url against the policy for brand. Pure (no DNS: a host is judged by
 * its name, as written). LT_OK or LT_ERR_PERMANENT with the reason. */
lt_err_t lt_cred_check_url(const lt_cred_policy_t *p, const char *brand, const char *url,
                           char *errstr, size_t errlen);

/* password_ref's form: file:NAME without ".." components, env:NAME with
 * the fixed prefix, or a well-formed sealed:v1:KID:BLOB. Pure. */
lt_err_t lt_cred_check_ref(const char *ref, char *errstr, size_t errlen);

/* The real path of file NAME (relative to dir, or absolute) into out, only
 * when it lies inside dir after resolving symlinks. */
lt_err_t lt_cred_resolve_file(const char *dir, const char *name, char *out, size_t outlen,
                              char *errstr, size_t errlen);

/* Checks base_url and password_ref, then reads (or opens, for a sealed ref,
 * with the ring of p->seal_key_file, cached per process) the password into buf
 * (buflen > LT_CRM_PASSWORD_MAX). Refuses an empty password, one longer
 * than LT_CRM_PASSWORD_MAX, one with a NUL, or with '&' (the CRM cannot take
 * it). On any error buf is wiped. */
lt_err_t lt_cred_password(const lt_cred_policy_t *p, const lt_integration_t *in, char *buf,
                          size_t buflen, char *errstr, size_t errlen);

/* The rules every CRM password obeys, whatever its source: 1 to
 * LT_CRM_PASSWORD_MAX bytes (n, which may be past a NUL), no NUL, no '&'.
 * Errors start with "what: " (a field or the ref) and never show pw. */
lt_err_t lt_cred_check_password(const char *pw, size_t n, const char *what, char *errstr,
                                size_t errlen);

/* Wipes n bytes in a way the compiler cannot drop. */
void lt_cred_wipe(void *buf, size_t n);

/* For every process that holds a CRM password (the fetcher, ltvctl) or
 * another secret (every service reads LTVSYNC_REDIS_URL): no core dump
 * (RLIMIT_CORE 0) and not dumpable (PR_SET_DUMPABLE 0: no ptrace attach by
 * the same user, /proc/PID/mem and environ closed to others). Call first in
 * main. 0, or -1 when either call failed (errno). */
int lt_cred_no_core_dumps(void);

#endif
