/* test_kafka_report: which delivery reports lt_kafka counts as delivered.
 * librdkafka 2.0.2 reports records a partition leader move kept out of the
 * log as delivered, without an offset (tests/integration/
 * test_devbroker_faults.py meets it with injected leader moves); such a
 * report must count as failed so that the caller sends the record again. */
#include <string.h>

#include "lt_kafka.h"
#include "lt_test.h"

static rd_kafka_message_t report(rd_kafka_resp_err_t err, int64_t offset)
{
    rd_kafka_message_t m;

    memset(&m, 0, sizeof(m));
    m.err = err;
    m.offset = offset;
    return m;
}

LT_TEST(delivered_with_offset)
{
    rd_kafka_message_t m = report(RD_KAFKA_RESP_ERR_NO_ERROR, 0);
    CHECK_INT(lt_kafka_delivery_err(&m), RD_KAFKA_RESP_ERR_NO_ERROR);
    m = report(RD_KAFKA_RESP_ERR_NO_ERROR, 123456789);
    CHECK_INT(lt_kafka_delivery_err(&m), RD_KAFKA_RESP_ERR_NO_ERROR);
}

LT_TEST(delivered_without_offset_is_unverified)
{
    rd_kafka_message_t m = report(RD_KAFKA_RESP_ERR_NO_ERROR, RD_KAFKA_OFFSET_INVALID);
    CHECK_INT(lt_kafka_delivery_err(&m), LT_KAFKA_ERR_UNVERIFIED);
    m = report(RD_KAFKA_RESP_ERR_NO_ERROR, -1);
    CHECK_INT(lt_kafka_delivery_err(&m), LT_KAFKA_ERR_UNVERIFIED);
    CHECK(strstr(lt_kafka_err2str(LT_KAFKA_ERR_UNVERIFIED), "without an offset") != NULL);
}

LT_TEST(errors_stay_themselves)
{
    rd_kafka_message_t m = report(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_OFFSET_INVALID);
    CHECK_INT(lt_kafka_delivery_err(&m), RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    m = report(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, 7);
    CHECK_INT(lt_kafka_delivery_err(&m), RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    CHECK_STR(lt_kafka_err2str(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT),
              rd_kafka_err2str(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT));
}

int main(void)
{
    LT_RUN(delivered_with_offset);
    LT_RUN(delivered_without_offset_is_unverified);
    LT_RUN(errors_stay_themselves);
    return LT_DONE();
}
