/* Unit tests of lt_integration (parse, validate, defaults, JSON round trip,
 * local days) and lt_job
 * (encode/decode round trip, keys, rejects). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_integration.h"
#include "lt_job.h"
#include "lt_test.h"

#define BASE                                                                          \
    "\"id\":\"acme-1\",\"api_username\":\"api\",\"password_ref\":\"env:LT_TEST_PW\"," \
    "\"account_name\":\"Acme\",\"account_username\":\"acme\","                        \
    "\"timezone\":\"America/New_York\""

static lt_err_t parse(const char *json, lt_integration_t *in, char *err, size_t errlen)
{
    return lt_integration_parse(json, strlen(json), in, err, errlen);
}

/* Parses a valid document with the fields of extra (a JSON member list)
 * added or replacing the base's; returns the error text ("" when valid). */
static const char *try_doc(const char *extra, char *err, size_t errlen)
{
    static const char *const base[][2] = {{"id", "\"acme-1\""},
                                          {"api_username", "\"api\""},
                                          {"password_ref", "\"env:LT_TEST_PW\""},
                                          {"account_name", "\"Acme\""},
                                          {"account_username", "\"acme\""},
                                          {"timezone", "\"America/New_York\""}};
    char doc[2048], probe[80];
    size_t n = (size_t)snprintf(doc, sizeof(doc), "{%s", extra);
    lt_integration_t in;
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        snprintf(probe, sizeof(probe), "\"%s\":", base[i][0]);
        if (!strstr(extra, probe))
            n += (size_t)snprintf(doc + n, sizeof(doc) - n, ",%s%s", probe, base[i][1]);
    }
    snprintf(doc + n, sizeof(doc) - n, "}");
    err[0] = '\0';
    if (parse(doc, &in, err, errlen) == LT_OK)
        err[0] = '\0';
    else if (!err[0])
        snprintf(err, errlen, "(error without a reason)");
    return err;
}

LT_TEST(parse_defaults)
{
    lt_integration_t in;
    char err[256];
    CHECK_INT(parse("{" BASE ",\"import_from\":\"2024-01-01\"}", &in, err, sizeof(err)), LT_OK);
    CHECK_STR(in.id, "acme-1");
    CHECK_STR(in.brand, "konnektive");
    CHECK_STR(in.base_url, "https://api.konnektive.com");
    CHECK_STR(in.currency, "USD");
    CHECK_INT(in.streams, LT_STREAMS_DEFAULT);
    CHECK_INT(in.sync_interval_ms, 15 * 60 * 1000);
    CHECK(in.max_requests_per_second >= 1);
    CHECK(in.max_in_flight >= 1);
    CHECK_INT(parse("{" BASE ",\"import_from\":\"all\",\"brand\":\"checkoutchamp\","
                    "\"streams\":[\"orders\",\"campaigns\"],\"sync_interval\":\"30s\"}",
                    &in, err, sizeof(err)),
              LT_OK);
    CHECK_STR(in.base_url, "https://api.checkoutchamp.com");
    CHECK_INT(in.streams, (1u << LT_STREAM_ORDERS) | (1u << LT_STREAM_CAMPAIGNS));
    CHECK_INT(in.sync_interval_ms, 30000);
    CHECK_STR(lt_integration_first_day(&in, "2013-01-01"), "2013-01-01");
}

LT_TEST(json_round_trip)
{
    lt_integration_t a, b;
    char err[256], *json, *again;
    CHECK_INT(parse("{" BASE ",\"import_from\":\"2023-02-28\",\"currency\":\"EUR\","
                    "\"base_url\":\"http://127.0.0.1:9\",\"sync_interval\":\"90s\","
                    "\"streams\":[\"transactions\"],\"max_requests_per_second\":7,"
                    "\"max_in_flight\":3}",
                    &a, err, sizeof(err)),
              LT_OK);
    json = lt_integration_to_json(&a);
    CHECK(json != NULL);
    if (!json)
        return;
    CHECK(strstr(json, "\"password\"") == NULL);
    CHECK_INT(parse(json, &b, err, sizeof(err)), LT_OK);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    again = lt_integration_to_json(&b);
    CHECK_STR(again, json);
    free(json);
    free(again);
}

LT_TEST(validation_errors_name_the_field)
{
    char err[512];
    CHECK(strstr(try_doc("\"import_from\":\"2024-01-01\",\"id\":\"Bad_Id\"", err, sizeof(err)),
                 "id"));
    CHECK(strstr(
        try_doc("\"import_from\":\"2024-01-01\",\"timezone\":\"Mars/Olympus\"", err, sizeof(err)),
        "timezone"));
    CHECK(strstr(try_doc("\"import_from\":\"2024-01-01\",\"timezone\":\"../../etc/passwd\"", err,
                         sizeof(err)),
                 "timezone"));
    CHECK(strstr(try_doc("\"import_from\":\"2024-02-30\"", err, sizeof(err)), "import_from"));
    CHECK(strstr(try_doc("\"import_from\":\"2024-1-01\"", err, sizeof(err)), "import_from"));
    CHECK(strstr(try_doc("\"import_from\":\"2024- 1-01\"", err, sizeof(err)), "import_from"));
    CHECK(strstr(try_doc("\"import_from\":\"yesterday\"", err, sizeof(err)), "import_from"));
    CHECK(strstr(try_doc("\"import_from\":\"2024-01-01\",\"passwrd\":\"x\"", err, sizeof(err)),
                 "unknown field"));
    CHECK(strstr(try_doc("\"import_from\":\"2024-01-01\",\"password\":\"x\"", err, sizeof(err)),
                 "password_ref"));
    CHECK(strstr(
        try_doc("\"import_from\":\"2024-01-01\",\"password_ref\":\"hunter2\"", err, sizeof(err)),
        "password_ref"));
    CHECK(strstr(try_doc("\"import_from\":\"2024-01-01\",\"max_in_flight\":0", err, sizeof(err)),
                 "max_in_flight"));
    CHECK(strstr(
        try_doc("\"import_from\":\"2024-01-01\",\"max_requests_per_second\":-3", err, sizeof(err)),
        "max_requests_per_second"));
    CHECK(try_doc("\"import_from\":\"2024-01-01\",\"max_in_flight\":1e300", err, sizeof(err))[0]);
    CHECK(try_doc("\"import_from\":\"2024-01-01\",\"max_in_flight\":2.5", err, sizeof(err))[0]);
    CHECK(strstr(
        try_doc("\"import_from\":\"2024-01-01\",\"streams\":[\"refunds\"]", err, sizeof(err)),
        "streams"));
    CHECK(strstr(try_doc("\"import_from\":\"2024-01-01\",\"streams\":[]", err, sizeof(err)),
                 "streams"));
    CHECK(strstr(
        try_doc("\"import_from\":\"2024-01-01\",\"sync_interval\":\"soon\"", err, sizeof(err)),
        "sync_interval"));
    CHECK(strstr(try_doc("\"import_from\":\"2024-01-01\",\"currency\":\"usd\"", err, sizeof(err)),
                 "currency"));
    CHECK(strstr(try_doc("\"import_from\":\"2024-01-01\",\"brand\":\"shopify\"", err, sizeof(err)),
                 "brand"));
    CHECK(strstr(try_doc("\"brand\":\"konnektive\"", err, sizeof(err)), "import_from"));
    CHECK(strstr(try_doc("\"import_from\":\"2024-01-01\",\"id\":7", err, sizeof(err)), "id"));
    CHECK_STR(try_doc("\"import_from\":\"2024-02-29\"", err, sizeof(err)), "");
    CHECK_STR(try_doc("\"import_from\":\"all\",\"timezone\":\"UTC\"", err, sizeof(err)), "");
    /* a repeated field is ambiguous (which one would the services read?) */
    CHECK(strstr(
        try_doc("\"import_from\":\"2024-01-01\",\"import_from\":\"2023-01-01\"", err, sizeof(err)),
        "duplicate"));
}

typedef struct {
    char got[8][256];
    int n;
} problems_t;

static void collect(void *opaque, const char *problem)
{
    problems_t *p = opaque;
    if (p->n < 8)
        snprintf(p->got[p->n], sizeof(p->got[0]), "%s", problem);
    p->n++;
}

/* Every problem of a document, each field once, the first also in errstr
 * (a merchant fixes everything in one go). */
LT_TEST(every_problem_reported)
{
    static const char doc[] =
        "{\"id\":\"Bad Id\",\"api_username\":\"u\",\"password_ref\":\"file:x\","
        "\"account_name\":\"a\",\"account_username\":\"b\",\"timezone\":\"Mars/Base\","
        "\"import_from\":\"2024-13-01\",\"max_in_flight\":\"four\",\"colour\":1}";
    lt_integration_t in;
    problems_t p = {0};
    char err[256];
    CHECK_INT(lt_integration_parse_all(doc, sizeof(doc) - 1, &in, collect, &p, err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK_INT(p.n, 5);
    CHECK(strstr(p.got[0], "unknown field \"colour\""));
    CHECK(!strncmp(p.got[1], "max_in_flight: must be an integer", 33));
    CHECK(!strncmp(p.got[2], "id: ", 4));
    CHECK(!strncmp(p.got[3], "timezone: ", 10));
    CHECK(!strncmp(p.got[4], "import_from: ", 13));
    CHECK_STR(err, p.got[0]);
    /* the one-error form reports the same first problem */
    CHECK_INT(lt_integration_parse(doc, sizeof(doc) - 1, &in, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_STR(err, p.got[0]);
    /* not JSON: one problem */
    p.n = 0;
    CHECK_INT(lt_integration_parse_all("{", 1, &in, collect, &p, err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK_INT(p.n, 1);
}

LT_TEST(rejects_bad_documents)
{
    lt_integration_t in;
    char err[256];
    const char *doc = "{" BASE ",\"import_from\":\"2024-01-01\"}";
    CHECK_INT(parse("[1,2]", &in, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(parse("{\"id\":", &in, err, sizeof(err)), LT_ERR_PERMANENT);
    /* bounded: a prefix of a valid document is not read past its length */
    CHECK_INT(lt_integration_parse(doc, strlen(doc) - 1, &in, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_integration_parse(doc, strlen(doc), &in, err, sizeof(err)), LT_OK);
}

LT_TEST(validate_struct)
{
    lt_integration_t in;
    char err[256];
    CHECK_INT(parse("{" BASE ",\"import_from\":\"2024-01-01\"}", &in, err, sizeof(err)), LT_OK);
    CHECK_INT(lt_integration_validate(&in, err, sizeof(err)), LT_OK);
    strcpy(in.base_url, "ftp://x");
    CHECK_INT(lt_integration_validate(&in, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "base_url") != NULL);
    strcpy(in.base_url, "https://x");
    in.sync_interval_ms = 10;
    CHECK_INT(lt_integration_validate(&in, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "sync_interval") != NULL);
}

static void with_ref(lt_integration_t *in, const char *ref)
{
    parse("{" BASE ",\"import_from\":\"2024-01-01\"}", in, (char[64]){0}, 64);
    snprintf(in->password_ref, sizeof(in->password_ref), "%s", ref);
}

LT_TEST(streams_and_local_day)
{
    lt_integration_t in;
    char day[11];
    CHECK_INT(lt_stream_parse("orders", 6), LT_STREAM_ORDERS);
    CHECK_INT(lt_stream_parse("ordersX", 6), LT_STREAM_ORDERS); /* bounded by len */
    CHECK_INT(lt_stream_parse("order", 5), -1);
    CHECK_STR(lt_stream_name(LT_STREAM_CAMPAIGNS), "campaigns");
    CHECK_STR(lt_stream_path(LT_STREAM_ORDERS), "/order/query/");
    with_ref(&in, "env:X");
    /* 2024-03-10 03:30 UTC is still 2024-03-09 in New York */
    CHECK_INT(lt_integration_local_day(&in, 1710041400LL, 0, day), 0);
    CHECK_STR(day, "2024-03-09");
    CHECK_INT(lt_integration_local_day(&in, 1710041400LL, -1, day), 0);
    CHECK_STR(day, "2024-03-08");
    strcpy(in.timezone, "Asia/Tokyo");
    CHECK_INT(lt_integration_local_day(&in, 1710041400LL, 0, day), 0);
    CHECK_STR(day, "2024-03-10");
}

static lt_job_t sample_job(void)
{
    lt_job_t j;
    memset(&j, 0, sizeof(j));
    strcpy(j.job_id, "0b6f3c1e-8a4d-4c7e-9f5a-2d1e3c4b5a69");
    strcpy(j.integration_id, "acme-1");
    j.stream = LT_STREAM_PURCHASES;
    strcpy(j.date_range_type, "dateUpdated");
    strcpy(j.day, "2024-02-29");
    j.page_from = 11;
    j.page_to = 20;
    strcpy(j.reason, "live");
    strcpy(j.run_id, "a7c1d2e3-0000-4000-8000-000000000001");
    return j;
}

LT_TEST(job_round_trip_and_keys)
{
    lt_job_t a = sample_job(), b;
    char err[256], key[160], *json = lt_job_encode(&a);
    CHECK(json != NULL);
    if (!json)
        return;
    CHECK_INT(lt_job_decode(json, strlen(json), &b, err, sizeof(err)), LT_OK);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    free(json);
    CHECK_INT(lt_job_kafka_key(&a, key, sizeof(key)), strlen("acme-1/purchases/2024-02-29"));
    CHECK_STR(key, "acme-1/purchases/2024-02-29");
    lt_job_key(&a, key, sizeof(key));
    CHECK_STR(key, "purchases/dateUpdated/2024-02-29/11-20");
    a.page_from = a.page_to = 0;
    lt_job_key(&a, key, sizeof(key));
    CHECK_STR(key, "purchases/dateUpdated/2024-02-29");
    /* truncation reports what was written */
    CHECK_INT(lt_job_key(&a, key, 8), 7);
    CHECK_STR(key, "purchas");
}

/* Decodes sample_job() with field "key" replaced by raw JSON value (NULL
 * removes it). */
static lt_err_t decode_with(const char *key, const char *value)
{
    char doc[1024], err[256];
    lt_job_t out;
    const char *fields[][2] = {{"job_id", "\"0b6f3c1e-8a4d-4c7e-9f5a-2d1e3c4b5a69\""},
                               {"integration_id", "\"acme\""},
                               {"stream", "\"orders\""},
                               {"date_range_type", "\"dateCreated\""},
                               {"day", "\"2024-01-31\""},
                               {"page_from", "0"},
                               {"page_to", "0"},
                               {"reason", "\"backfill\""},
                               {"run_id", "\"r\""}};
    size_t n = 0;
    n += (size_t)snprintf(doc + n, sizeof(doc) - n, "{");
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = strcmp(fields[i][0], key) ? fields[i][1] : value;
        if (v)
            n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%s\"%s\":%s", n > 1 ? "," : "",
                                  fields[i][0], v);
    }
    snprintf(doc + n, sizeof(doc) - n, "}");
    return lt_job_decode(doc, strlen(doc), &out, err, sizeof(err));
}

LT_TEST(job_rejects)
{
    char err[256];
    lt_job_t out;
    const char *ok = "{\"job_id\":\"x\"}";
    CHECK_INT(decode_with("none", NULL), LT_OK);
    CHECK_INT(decode_with("page_from", NULL), LT_ERR_PERMANENT); /* one bound alone */
    CHECK_INT(decode_with("stream", "\"refunds\""), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("stream", NULL), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("date_range_type", "\"dateDeleted\""), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("reason", "\"whim\""), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("day", "\"2024-13-01\""), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("day", "\"abcd-ef-gh\""), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("day", "\"2024-02-30\""), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("day", "20240131"), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("job_id", "\"\""), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("integration_id", "\"\""), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("integration_id", "\"acme:x\""), LT_ERR_PERMANENT);
    CHECK_INT(decode_with("integration_id", "\"../acme\""), LT_ERR_PERMANENT);
    CHECK_INT(
        decode_with("integration_id",
                    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""),
        LT_ERR_PERMANENT);
    CHECK_INT(decode_with("page_to", "5"), LT_ERR_PERMANENT); /* 0-5 */
    CHECK_INT(decode_with("page_from", "-1"), LT_ERR_PERMANENT);
    {
        char doc[512];
        snprintf(doc, sizeof(doc),
                 "{\"job_id\":\"j\",\"integration_id\":\"acme\","
                 "\"stream\":\"orders\",\"date_range_type\":\"dateCreated\","
                 "\"day\":\"2024-01-31\",\"page_from\":21,\"page_to\":30,\"reason\":\"resync\"}");
        CHECK_INT(lt_job_decode(doc, strlen(doc), &out, err, sizeof(err)), LT_OK);
        CHECK_INT(out.page_from, 21);
        snprintf(doc, sizeof(doc),
                 "{\"job_id\":\"j\",\"integration_id\":\"acme\","
                 "\"stream\":\"orders\",\"date_range_type\":\"dateCreated\","
                 "\"day\":\"2024-01-31\",\"page_from\":30,\"page_to\":21,\"reason\":\"resync\"}");
        CHECK_INT(lt_job_decode(doc, strlen(doc), &out, err, sizeof(err)), LT_ERR_PERMANENT);
    }
    CHECK_INT(lt_job_decode("[]", 2, &out, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_job_decode(ok, strlen(ok) - 2, &out, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_job_decode("", 0, &out, err, sizeof(err)), LT_ERR_PERMANENT);
}

int main(void)
{
    LT_RUN(parse_defaults);
    LT_RUN(json_round_trip);
    LT_RUN(validation_errors_name_the_field);
    LT_RUN(every_problem_reported);
    LT_RUN(rejects_bad_documents);
    LT_RUN(validate_struct);
    LT_RUN(streams_and_local_day);
    LT_RUN(job_round_trip_and_keys);
    LT_RUN(job_rejects);
    return LT_DONE();
}
