/* test_api_core: the control API's pure logic (services/api): the tokens
 * file (strict, errors name the line and never a token), constant-time
 * lookup, per-token rate limits, the Bearer header, and the routes with the
 * methods each allows. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "lt_test.h"

#define TOK_A "aaaaaaaaaaaaaaaaaaaa-admin"
#define TOK_R "rrrrrrrrrrrrrrrrrrrr-read"

static api_tokens_t tokens = {.mu = PTHREAD_MUTEX_INITIALIZER};

LT_TEST(tokens_file_parses)
{
    char err[256];
    const char *text = "# operators\n\nops admin " TOK_A "\r\n  viewer\tread  " TOK_R "\n";
    api_tokens_set_rate(&tokens, 5);
    CHECK_INT(api_tokens_parse(&tokens, text, strlen(text), err, sizeof(err)), LT_OK);
    CHECK_INT((int)tokens.count, 2);
    CHECK_STR(tokens.items[0].name, "ops");
    CHECK_INT(tokens.items[0].scope, API_SCOPE_ADMIN);
    CHECK_STR(tokens.items[1].name, "viewer");
    CHECK_INT(tokens.items[1].scope, API_SCOPE_READ);
    CHECK(api_tokens_find(&tokens, TOK_A, strlen(TOK_A)) == &tokens.items[0]);
    CHECK(api_tokens_find(&tokens, TOK_R, strlen(TOK_R)) == &tokens.items[1]);
    /* a prefix, an extension, another byte, empty: no token */
    CHECK(!api_tokens_find(&tokens, TOK_A, strlen(TOK_A) - 1));
    CHECK(!api_tokens_find(&tokens, TOK_A "x", strlen(TOK_A) + 1));
    CHECK(!api_tokens_find(&tokens, "aaaaaaaaaaaaaaaaaaaa-admiN", strlen(TOK_A)));
    CHECK(!api_tokens_find(&tokens, "", 0));
}

static void refused(const char *text, const char *want)
{
    char err[256] = "";
    api_tokens_t t = {.mu = PTHREAD_MUTEX_INITIALIZER};
    CHECK_INT(api_tokens_parse(&t, text, strlen(text), err, sizeof(err)), LT_ERR_PERMANENT);
    if (!strstr(err, want)) {
        fprintf(stderr, "  %s: error \"%s\" lacks \"%s\"\n", text, err, want);
        CHECK(0);
    }
    /* the error never shows a token */
    CHECK(!strstr(err, "secret-token-value"));
}

LT_TEST(tokens_file_refuses)
{
    refused("", "no token");
    refused("# only a comment\n", "no token");
    refused("ops admin\n", "line 1: expected NAME SCOPE TOKEN");
    refused("ops root secret-token-value-1234\n", "line 1: the scope is read or admin");
    refused("ops admin short\n", "line 1: a token has 16 to 256 characters");
    refused("o/ps admin secret-token-value-1234\n", "line 1: a name is");
    refused("ops admin secret-token-value-1234 extra\n", "line 1: more than NAME SCOPE TOKEN");
    refused("a admin secret-token-value-1234\nb read secret-token-value-1234\n",
            "line 2: the token of a is used twice");
    refused("a admin secret-token-value-1234\na read secret-token-value-5678\n",
            "line 2: the name a is used twice");
    refused("ops admin secret-token-value-\x01\x02\x03"
            "456\n",
            "printable");
}

LT_TEST(rate_limit_per_token)
{
    const api_token_t *a = &tokens.items[0], *r = &tokens.items[1];
    long long now = 1000000;
    api_tokens_set_rate(&tokens, 5); /* burst 10 */
    for (int i = 0; i < 10; i++)
        CHECK_INT((int)api_tokens_take(&tokens, a, now), 0);
    long long wait = api_tokens_take(&tokens, a, now);
    CHECK(wait > 0 && wait <= 201);                      /* one request per 200 ms */
    CHECK_INT((int)api_tokens_take(&tokens, r, now), 0); /* the other token is not affected */
    CHECK_INT((int)api_tokens_take(&tokens, a, now + 200), 0);
    CHECK(api_tokens_take(&tokens, a, now + 200) > 0);
    /* a long pause refills to the burst, no more */
    for (int i = 0; i < 10; i++)
        CHECK_INT((int)api_tokens_take(&tokens, a, now + 3600000), 0);
    CHECK(api_tokens_take(&tokens, a, now + 3600000) > 0);
}

LT_TEST(bearer_header)
{
    const char *t;
    size_t n;
    CHECK_INT(api_bearer("Bearer abc", &t, &n), 0);
    CHECK_INT((int)n, 3);
    CHECK(!strncmp(t, "abc", 3));
    CHECK_INT(api_bearer("bearer  abc  ", &t, &n), 0);
    CHECK_INT((int)n, 3);
    CHECK_INT(api_bearer("Basic abc", &t, &n), -1);
    CHECK_INT(api_bearer("Bearer ", &t, &n), -1);
    CHECK_INT(api_bearer(NULL, &t, &n), -1);
}

LT_TEST(routes)
{
    char id[65];
    CHECK_INT(api_route("/v1/integrations", id), API_R_INTEGRATIONS);
    CHECK_INT(api_route("/v1/integrations/shop-1", id), API_R_INTEGRATION);
    CHECK_STR(id, "shop-1");
    CHECK_INT(api_route("/v1/integrations/shop-1/test", id), API_R_TEST);
    CHECK_INT(api_route("/v1/integrations/shop-1/sync", id), API_R_SYNC);
    CHECK_INT(api_route("/v1/integrations/shop-1/replay", id), API_R_REPLAY);
    CHECK_INT(api_route("/v1/integrations/shop-1/status", id), API_R_STATUS_ONE);
    CHECK_INT(api_route("/v1/integrations/shop-1/reconcile", id), API_R_RECONCILE);
    CHECK_INT(api_route("/v1/status", id), API_R_STATUS);
    CHECK_INT(api_route("/v1/dlq", id), API_R_DLQ);
    CHECK_INT(api_route("/v1/dlq/retry", id), API_R_DLQ_RETRY);
    CHECK_INT(api_route("/v1/openapi.yaml", id), API_R_OPENAPI);
    CHECK_INT(api_route("/", id), API_R_NONE);
    CHECK_INT(api_route("/v2/integrations", id), API_R_NONE);
    /* ids that could not be an integration's, or pass for an option */
    CHECK_INT(api_route("/v1/integrations/Shop", id), API_R_V1_UNKNOWN);
    CHECK_INT(api_route("/v1/integrations/--json", id), API_R_V1_UNKNOWN);
    CHECK_INT(api_route("/v1/integrations/a%2Fb", id), API_R_V1_UNKNOWN);
    CHECK_INT(api_route("/v1/integrations/", id), API_R_V1_UNKNOWN);
    CHECK_INT(api_route("/v1/integrations/shop/other", id), API_R_V1_UNKNOWN);
    CHECK_STR(id, "");
    char longid[100];
    memset(longid, 'a', 65);
    snprintf(longid, sizeof(longid), "/v1/integrations/%065d", 0);
    CHECK_INT(api_route(longid, id), API_R_V1_UNKNOWN);
    CHECK(api_route_allows(API_R_INTEGRATIONS, "POST"));
    CHECK(api_route_allows(API_R_INTEGRATION, "PATCH"));
    CHECK(api_route_allows(API_R_INTEGRATION, "DELETE"));
    CHECK(!api_route_allows(API_R_INTEGRATION, "POST"));
    CHECK(!api_route_allows(API_R_INTEGRATION, "PAT"));
    CHECK(!api_route_allows(API_R_STATUS, "POST"));
    CHECK(!api_route_allows(API_R_DLQ_RETRY, "GET"));
    CHECK_STR(api_route_allow(API_R_INTEGRATION), "GET, PATCH, DELETE");
}

int main(void)
{
    LT_RUN(tokens_file_parses);
    LT_RUN(tokens_file_refuses);
    LT_RUN(rate_limit_per_token);
    LT_RUN(bearer_header);
    LT_RUN(routes);
    return LT_DONE();
}
