/* lt_uuid: RFC 4122 name-based UUIDv5 (SHA-1), with our own SHA-1 so the
 * result does not depend on libuuid's version. */
#ifndef LT_UUID_H
#define LT_UUID_H

#include <stddef.h>
#include <stdint.h>

/* The ltvsync namespace: UUIDv5(DNS namespace, "ltvsync.events"). */
extern const uint8_t LT_UUID_NS_LTVSYNC[16];

/* out receives 36 characters and a NUL, lower-case hex. */
void lt_uuid_v5(const uint8_t ns[16], const void *name, size_t len, char out[37]);
/* A random UUIDv4 (libuuid), for run and job ids. */
void lt_uuid_v4(char out[37]);
/* SHA-1 (FIPS 180-4) of len bytes; exposed for its known-answer tests. */
void lt_uuid_sha1(const void *data, size_t len, uint8_t out[20]);

#endif
