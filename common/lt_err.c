/* lt_err: names of the error classes, for logs and status output. */
#include "lt_err.h"

const char *lt_err_name(lt_err_t err)
{
    switch (err) {
    case LT_OK: return "ok";
    case LT_ERR_RETRIABLE: return "retriable";
    case LT_ERR_PERMANENT: return "permanent";
    case LT_ERR_AUTH: return "auth";
    case LT_ERR_EMPTY: return "empty";
    case LT_ERR_FATAL: return "fatal";
    }
    return "unknown";
}
