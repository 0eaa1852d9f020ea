/* lt_seal: CRM passwords typed into the platform, sealed with a cluster key
 * and stored in the integration document itself (password_ref
 * "sealed:v1:KID:BLOB"), so the clear password is never in Kafka, Redis or a
 * backup of either.
 *
 * The key ring is a file (SEAL_KEY_FILE, a Kubernetes Secret in production)
 * of lines "KID BASE64KEY": KID is [a-z0-9-]{1,16}, the key 32 random bytes
 * in standard base64 (`ltvctl secrets keygen` prints one line); '#' starts a
 * comment line, blank lines are ignored. The FIRST key seals; every key
 * opens the blobs sealed under its KID, so a ring "new, old" reads both while
 * `ltvctl secrets rotate` re-seals the old ones.
 *
 * BLOB is base64url without padding (RFC 4648 section 5) of nonce (24 bytes)
 * || XChaCha20-Poly1305-IETF ciphertext and tag of the password padded
 * (ISO/IEC 7816-4) to LT_CRM_PASSWORD_MAX + 1 bytes, so every ref has the
 * same length (LT_SEAL_REF_LEN) whatever the password's. The associated data
 * binds the format version, the KID and the integration id: a blob copied
 * into another integration, or relabelled with another KID, does not open.
 *
 * Keys live in sodium_malloc'd memory (guard pages, mlock'd where allowed,
 * read-only once loaded) and every temporary copy of a key or a password is
 * wiped. Error texts name the rule, the file, the line and the KID, never a
 * key or a password (a malformed KID is not echoed: it may be a key). */
#ifndef LT_SEAL_H
#define LT_SEAL_H

#include <stddef.h>
#include "lt_config.h"
#include "lt_err.h"

#define LT_SEAL_PREFIX    "sealed:v1:"
#define LT_SEAL_KID_MAX   16    /* characters of a KID */
#define LT_SEAL_KEY_BYTES 32    /* crypto_aead_xchacha20poly1305_ietf_KEYBYTES */
#define LT_SEAL_MAX_KEYS  32    /* keys in one ring */
#define LT_SEAL_FILE_MAX  16384 /* bytes of a key ring file */
#define LT_SEAL_LINE_MAX  256   /* bytes of one line of it */
/* Bytes of the sealed blob: nonce 24 + padded password 257 + tag 16. */
#define LT_SEAL_BLOB_BYTES 297
/* Characters of its base64url (no padding) form. */
#define LT_SEAL_BLOB_B64 396
/* Length of a ref with the longest KID: "sealed:v1:" KID ":" BLOB (423),
 * within lt_integration_t.password_ref (512 with the NUL). */
#define LT_SEAL_REF_LEN (sizeof(LT_SEAL_PREFIX) - 1 + LT_SEAL_KID_MAX + 1 + LT_SEAL_BLOB_B64)

typedef struct lt_seal_ring_s lt_seal_ring_t;

/* Reads and strictly parses the key ring file at path (a regular file of at
 * most LT_SEAL_FILE_MAX bytes; symlinks are followed, as Kubernetes mounts
 * Secrets through them). Errors: "seal key file PATH line N: RULE". */
lt_err_t lt_seal_ring_load(const char *path, lt_seal_ring_t **ring, char *errstr, size_t errlen);
/* The same from len bytes of text; name stands for the file in errors. */
lt_err_t lt_seal_ring_parse(const char *text, size_t len, const char *name, lt_seal_ring_t **ring,
                            char *errstr, size_t errlen);
/* Wipes and frees the keys (accepts NULL). */
void lt_seal_ring_free(lt_seal_ring_t *ring);
/* Number of keys, and the KID of key i (0 = the current key, which seals). */
size_t lt_seal_ring_size(const lt_seal_ring_t *ring);
const char *lt_seal_ring_kid(const lt_seal_ring_t *ring, size_t i);
/* 1 when the ring holds a key with this KID. */
int lt_seal_ring_has(const lt_seal_ring_t *ring, const char *kid);

/* Seals password (1..LT_CRM_PASSWORD_MAX bytes) for integration_id with the
 * ring's current key into ref (reflen > LT_SEAL_REF_LEN is always enough).
 * Only the length is checked here; lt_seal_password_ref applies every rule. */
lt_err_t lt_seal(const lt_seal_ring_t *ring, const char *integration_id, const char *password,
                 char *ref, size_t reflen, char *errstr, size_t errlen);
/* Opens ref (sealed for integration_id) into buf as a C string (buflen >
 * LT_CRM_PASSWORD_MAX is always enough). On any error buf is wiped: unknown
 * KID, a garbled ref, another integration's blob or an altered one. */
lt_err_t lt_seal_open(const lt_seal_ring_t *ring, const char *integration_id, const char *ref,
                      char *buf, size_t buflen, char *errstr, size_t errlen);

/* 1 when ref has the sealed form's prefix "sealed:" (valid or not). */
int lt_seal_is_sealed(const char *ref);
/* The syntax of a sealed ref: version v1, a valid KID, a blob of exactly
 * LT_SEAL_BLOB_B64 base64url characters. Pure. */
lt_err_t lt_seal_check_ref(const char *ref, char *errstr, size_t errlen);
/* The KID of a syntactically valid sealed ref into kid; 0, or -1. */
int lt_seal_ref_kid(const char *ref, char kid[LT_SEAL_KID_MAX + 1]);
/* For display: "sealed:v1:KID" for a sealed ref ("sealed:invalid" when it
 * does not parse); any other ref (file:, env:) as it is. */
void lt_seal_redact(const char *ref, char *out, size_t outlen);

/* One new key line "KID BASE64KEY\n" (random key) into line (linelen >= 64).
 * kid NULL = "k" + today's UTC date + "-" + 4 random hex digits. */
lt_err_t lt_seal_keygen(const char *kid, char *line, size_t linelen, char *errstr, size_t errlen);

/* The same as lt_seal and lt_seal_open with the ring of the file at path,
 * kept parsed in the process (one ring, under a lock: any thread may call).
 * Each call stats the file and re-reads it when its inode, size, mtime or
 * ctime changed (a rotated Kubernetes Secret is picked up without a restart).
 * A file that no longer reads or parses leaves the last good ring in use,
 * with one warning per change of the file; with none loaded yet, the error. */
lt_err_t lt_seal_file(const char *path, const char *integration_id, const char *password, char *ref,
                      size_t reflen, char *errstr, size_t errlen);
lt_err_t lt_seal_open_file(const char *path, const char *integration_id, const char *ref, char *buf,
                           size_t buflen, char *errstr, size_t errlen);

/* For the control API and `ltvctl integration add --password-stdin`: checks
 * integration_id and password by the rules lt_cred_password applies to any
 * password (non-empty, at most LT_CRM_PASSWORD_MAX bytes, no NUL, no '&'
 * with the CRM's reason), then seals it with the current key of the ring
 * named by SEAL_KEY_FILE. Errors start with the field: "password: ...",
 * "id: ..." or "SEAL_KEY_FILE: ...". */
lt_err_t lt_seal_password_ref(const lt_config_t *cfg, const char *integration_id,
                              const char *password, char *ref, size_t reflen, char *errstr,
                              size_t errlen);

#endif
