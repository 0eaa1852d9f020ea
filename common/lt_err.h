/* lt_err: the one error enum of ltvsync and its classification.
 *
 * Every failure at a module boundary is one of these, with the detail in a
 * caller-supplied `errstr` buffer (librdkafka style). The class decides what
 * the caller does: retry with backoff, park/dead-letter, or exit from main(). */
#ifndef LT_ERR_H
#define LT_ERR_H

typedef enum {
    LT_OK = 0,
    LT_ERR_RETRIABLE, /* transient: 5xx, 429, timeouts, broken bodies, Redis down */
    LT_ERR_PERMANENT, /* this input/job can never succeed: bad row, bad config */
    LT_ERR_AUTH,      /* CRM credentials, IP allow-list or permission: park, never retry */
    LT_ERR_EMPTY,     /* CRM "No ... matching ... could be found": an empty window */
    LT_ERR_FATAL,     /* the process cannot continue; only main() exits */
} lt_err_t;

const char *lt_err_name(lt_err_t err);

#endif
