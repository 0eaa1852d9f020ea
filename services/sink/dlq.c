/* dlq.c: the DLQ record of a message the sink refuses (common/lt_dlq.c:
 * UTF-8 bytes as JSON strings, others base64, long values cut). */
#include "lt_dlq.h"
#include "sink.h"

char *sink_dlq_record(const rd_kafka_message_t *rkm, const char *reason, size_t *len)
{
    return lt_dlq_record(reason, rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset,
                         rkm->key, rkm->key_len, rkm->payload, rkm->len, len);
}
