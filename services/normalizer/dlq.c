/* Dead letters keyed by the source key: the record is common/lt_dlq.c's
 * {"reason","topic","partition","offset","key","value"}. Raw rows are
 * already sanitized by the fetcher, so no secret can reach the DLQ through
 * them. */
#include <stdio.h>
#include <stdlib.h>

#include "lt_dlq.h"
#include "normalizer.h"

lt_err_t norm_dlq_send(norm_t *n, const norm_msg_t *msg, char *errstr, size_t errlen)
{
    const rd_kafka_message_t *rkm = msg->rkm;
    size_t len = 0;
    char *rec = lt_dlq_record(msg->reason, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                              rkm->offset, rkm->key, rkm->key_len, rkm->payload, rkm->len, &len);
    lt_err_t err;
    if (!rec) {
        snprintf(errstr, errlen, "out of memory");
        return LT_ERR_FATAL;
    }
    err = lt_producer_send_owned(n->prod, n->topic_dlq, rkm->key, rkm->key_len, rec, len,
                                 n->cur_acks, errstr, errlen);
    if (err == LT_OK)
        lt_metric_add(n->m.dlq, 1);
    return err;
}
