/* Unit tests of lt_crm: request forms, response classification in the API
 * sheet's order, paging arithmetic, record ids and the raw envelope. */
#include <stdlib.h>
#include <string.h>
#include "lt_crm.h"
#include "lt_test.h"

static lt_job_t job_of(const char *range, lt_stream_t s)
{
    lt_job_t j;
    memset(&j, 0, sizeof(j));
    strcpy(j.job_id, "11111111-2222-3333-4444-555555555555");
    strcpy(j.integration_id, "acme");
    j.stream = s;
    strcpy(j.date_range_type, range);
    strcpy(j.day, "2025-03-09");
    strcpy(j.reason, "backfill");
    return j;
}

static const char *field(const lt_crm_form_t *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->fields[i].name, name) == 0)
            return f->fields[i].value;
    return NULL;
}

LT_TEST(form_day_window)
{
    lt_crm_form_t f;
    char err[128];
    lt_job_t j = job_of("dateCreated", LT_STREAM_ORDERS);
    CHECK_INT(lt_crm_form_build(&f, "api", "p+w %=#", &j, 3, 200, err, sizeof(err)), LT_OK);
    CHECK_STR(field(&f, "loginId"), "api");
    CHECK_STR(field(&f, "password"), "p+w %=#");
    CHECK_STR(field(&f, "startDate"), "03/09/2025");
    CHECK_STR(field(&f, "endDate"), "03/09/2025");
    CHECK_STR(field(&f, "dateRangeType"), "dateCreated");
    CHECK_STR(field(&f, "resultsPerPage"), "200");
    CHECK_STR(field(&f, "page"), "3");
    CHECK_STR(field(&f, "sortDir"), "1");
    CHECK(field(&f, "isChargedback") == NULL);
}

LT_TEST(form_chargeback_and_invalid)
{
    lt_crm_form_t f;
    char err[128];
    lt_job_t j = job_of("chargeback", LT_STREAM_TRANSACTIONS);
    CHECK_INT(lt_crm_form_build(&f, "u", "p", &j, 1, 200, err, sizeof(err)), LT_OK);
    CHECK_STR(field(&f, "dateRangeType"), "dateUpdated");
    CHECK_STR(field(&f, "isChargedback"), "1");
    j = job_of("dateModified", LT_STREAM_TRANSACTIONS);
    CHECK_INT(lt_crm_form_build(&f, "u", "p", &j, 1, 200, err, sizeof(err)), LT_ERR_PERMANENT);
    j = job_of("dateCreated", LT_STREAM_TRANSACTIONS);
    strcpy(j.day, "2025/03/09");
    CHECK_INT(lt_crm_form_build(&f, "u", "p", &j, 1, 200, err, sizeof(err)), LT_ERR_PERMANENT);
    j = job_of("dateCreated", LT_STREAM_TRANSACTIONS);
    CHECK_INT(lt_crm_form_build(&f, "u", "p", &j, 1, 201, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_crm_form_build(&f, "u", "p", &j, 0, 200, err, sizeof(err)), LT_ERR_PERMANENT);
}

LT_TEST(url)
{
    char buf[64];
    CHECK_INT(lt_crm_url("http://127.0.0.1:8080/", LT_STREAM_ORDERS, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "http://127.0.0.1:8080/order/query/");
    CHECK_INT(lt_crm_url("https://api.konnektive.com", LT_STREAM_TRANSACTIONS, buf, sizeof(buf)),
              0);
    CHECK_STR(buf, "https://api.konnektive.com/transactions/query/");
    CHECK_INT(
        lt_crm_url("https://a-very-long-host-name.example.com/x/y/z", LT_STREAM_PURCHASES, buf, 20),
        -1);
}

static lt_err_t msg_class(const char *m)
{
    return lt_crm_classify_message(m, strlen(m));
}

LT_TEST(classify_texts)
{
    CHECK_INT(msg_class("Invalid login credentials"), LT_ERR_AUTH);
    CHECK_INT(msg_class("IP must be whitelisted - 203.0.113.7"), LT_ERR_AUTH);
    CHECK_INT(msg_class("API user does not have access to this endpoint"), LT_ERR_AUTH);
    CHECK_INT(msg_class("Incorrect Password"), LT_ERR_AUTH);
    CHECK_INT(msg_class("No orders matching those parameters could be found"), LT_ERR_EMPTY);
    CHECK_INT(msg_class("No transactions matching those parameters could be found"), LT_ERR_EMPTY);
    CHECK_INT(msg_class("Database busy, try again"), LT_ERR_RETRIABLE);
    CHECK_INT(msg_class(""), LT_ERR_RETRIABLE);
    /* auth is checked first: never an empty window */
    CHECK_INT(msg_class("No access: login matching could be found"), LT_ERR_AUTH);
}

static lt_err_t parse(long status, const char *body, lt_crm_page_t *p)
{
    char err[256];
    return lt_crm_parse(status, body, strlen(body), 1 << 20, p, err, sizeof(err));
}

LT_TEST(parse_success_counts)
{
    lt_crm_page_t p;
    CHECK_INT(parse(200,
                    "{\"result\":\"SUCCESS\",\"message\":{\"totalResults\":401,"
                    "\"page\":1,\"data\":[{\"orderId\":\"7B83FF8095\"}]}}",
                    &p),
              LT_OK);
    CHECK_INT(p.total_results, 401);
    CHECK_INT(cJSON_GetArraySize(p.data), 1);
    CHECK_INT(lt_crm_page_count(p.total_results, 200), 3);
    lt_crm_page_release(&p);
    CHECK_INT(parse(200,
                    "{\"result\":\"SUCCESS\",\"message\":{\"totalResults\":\"200\","
                    "\"data\":[{\"a\":1}]}}",
                    &p),
              LT_OK);
    CHECK_INT(p.total_results, 200);
    CHECK_INT(lt_crm_page_count(p.total_results, 200), 1);
    lt_crm_page_release(&p);
    CHECK_INT(lt_crm_page_count(0, 200), 0);
    CHECK_INT(lt_crm_page_count(201, 200), 2);
}

LT_TEST(parse_failures)
{
    lt_crm_page_t p;
    CHECK_INT(parse(200, "{\"result\":\"ERROR\",\"message\":\"Invalid login credentials\"}", &p),
              LT_ERR_AUTH);
    CHECK_STR(p.message, "Invalid login credentials");
    lt_crm_page_release(&p);
    CHECK_INT(parse(200,
                    "{\"result\":\"ERROR\",\"message\":\"No purchases matching those "
                    "parameters could be found\"}",
                    &p),
              LT_ERR_EMPTY);
    lt_crm_page_release(&p);
    CHECK_INT(parse(200, "{\"result\":\"ERROR\",\"message\":\"Database busy, try again\"}", &p),
              LT_ERR_RETRIABLE);
    lt_crm_page_release(&p);
    CHECK_INT(parse(503, "<html><body>Service Unavailable</body></html>", &p), LT_ERR_RETRIABLE);
    lt_crm_page_release(&p);
    CHECK_INT(parse(429, "", &p), LT_ERR_RETRIABLE);
    lt_crm_page_release(&p);
    CHECK_INT(parse(200, "<html>gateway</html>", &p), LT_ERR_RETRIABLE);
    lt_crm_page_release(&p);
    CHECK_INT(parse(200, "{\"result\":\"SUCCESS\",\"message\":{\"totalResults\":3,\"da", &p),
              LT_ERR_RETRIABLE);
    lt_crm_page_release(&p);
    CHECK_INT(
        parse(200, "{\"result\":\"SUCCESS\",\"message\":{\"totalResults\":0,\"data\":[]}}", &p),
        LT_ERR_EMPTY);
    lt_crm_page_release(&p);
    char err[64];
    const char *big = "{\"result\":\"SUCCESS\"}";
    CHECK_INT(lt_crm_parse(200, big, strlen(big), 4, &p, err, sizeof(err)), LT_ERR_RETRIABLE);
    lt_crm_page_release(&p);
}

LT_TEST(campaign_object_and_ids)
{
    lt_crm_page_t p;
    char id[64];
    CHECK_INT(parse(200,
                    "{\"result\":\"SUCCESS\",\"message\":{\"totalResults\":2,\"data\":"
                    "{\"12\":{\"campaignId\":12,\"products\":[]},\"13\":{\"name\":\"x\"}}}}",
                    &p),
              LT_OK);
    cJSON *c = p.data->child;
    CHECK_INT(lt_crm_record_id(LT_STREAM_CAMPAIGNS, c, c->string, id, sizeof(id)), 0);
    CHECK_STR(id, "12");
    c = c->next;
    CHECK_INT(lt_crm_record_id(LT_STREAM_CAMPAIGNS, c, c->string, id, sizeof(id)), 0);
    CHECK_STR(id, "13");
    lt_crm_page_release(&p);
    cJSON *row = cJSON_Parse("{\"transactionId\":98765,\"orderId\":\"AB\"}");
    CHECK_INT(lt_crm_record_id(LT_STREAM_TRANSACTIONS, row, NULL, id, sizeof(id)), 0);
    CHECK_STR(id, "98765");
    CHECK_INT(lt_crm_record_id(LT_STREAM_ORDERS, row, NULL, id, sizeof(id)), 0);
    CHECK_STR(id, "AB");
    CHECK_INT(lt_crm_record_id(LT_STREAM_CUSTOMERS, row, NULL, id, sizeof(id)), -1);
    cJSON_Delete(row);
}

LT_TEST(envelope_and_time)
{
    char ts[32];
    lt_crm_format_time(1764099604123LL, ts, sizeof(ts));
    CHECK_STR(ts, "2025-11-25T19:40:04.123Z");
    lt_job_t j = job_of("dateCreated", LT_STREAM_CUSTOMERS);
    cJSON *row = cJSON_Parse("{\"customerId\":5}");
    char *env = lt_crm_envelope(&j, 2, ts, row);
    CHECK_STR(env, "{\"integration_id\":\"acme\",\"stream\":\"customers\",\"job_id\":"
                   "\"11111111-2222-3333-4444-555555555555\",\"page\":2,\"fetched_at\":"
                   "\"2025-11-25T19:40:04.123Z\",\"record\":{\"customerId\":5}}");
    free(env);
    cJSON_Delete(row);
}

int main(void)
{
    LT_RUN(form_day_window);
    LT_RUN(form_chargeback_and_invalid);
    LT_RUN(url);
    LT_RUN(classify_texts);
    LT_RUN(parse_success_counts);
    LT_RUN(parse_failures);
    LT_RUN(campaign_object_and_ids);
    LT_RUN(envelope_and_time);
    return LT_DONE();
}
