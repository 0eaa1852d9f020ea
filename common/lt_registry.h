/* lt_registry: the current set of integrations, read from the compacted
 * topic ltvsync.integrations (latest value per key wins; a tombstone removes
 * the integration). Invalid documents are skipped with one log line each. */
#ifndef LT_REGISTRY_H
#define LT_REGISTRY_H

#include <stddef.h>
#include "lt_config.h"
#include "lt_integration.h"

typedef struct {
    lt_integration_t *items;
    size_t count, cap;
} lt_registry_t;

/* Replaces reg's content with a fresh read of the whole topic. On failure
 * reg is left as it was. */
lt_err_t lt_registry_load(lt_registry_t *reg, const lt_config_t *cfg,
                          char *errstr, size_t errlen);
const lt_integration_t *lt_registry_find(const lt_registry_t *reg, const char *id);
/* Applies one message (value NULL = tombstone). */
void lt_registry_apply(lt_registry_t *reg, const void *key, size_t keylen,
                       const void *value, size_t len);
void lt_registry_clear(lt_registry_t *reg);

#endif
