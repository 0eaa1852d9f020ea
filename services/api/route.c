/* route.c: the API's paths and the methods each allows. */
#include <string.h>

#include "api.h"
#include "lt_integration.h"

static const struct {
    api_route_t route;
    const char *allow;
} allows[] = {
    {API_R_INTEGRATIONS, "GET, POST"},
    {API_R_INTEGRATION, "GET, PATCH, DELETE"},
    {API_R_TEST, "POST"},
    {API_R_SYNC, "POST"},
    {API_R_REPLAY, "POST"},
    {API_R_STATUS_ONE, "GET"},
    {API_R_RECONCILE, "GET"},
    {API_R_STATUS, "GET"},
    {API_R_DLQ, "GET"},
    {API_R_DLQ_RETRY, "POST"},
    {API_R_OPENAPI, "GET"},
};

static const struct {
    const char *suffix;
    api_route_t route;
} subs[] = {
    {"", API_R_INTEGRATION},   {"/test", API_R_TEST},         {"/sync", API_R_SYNC},
    {"/replay", API_R_REPLAY}, {"/status", API_R_STATUS_ONE}, {"/reconcile", API_R_RECONCILE},
};

api_route_t api_route(const char *url, char id[65])
{
    static const char pre[] = "/v1/integrations/";
    const char *rest, *slash;
    size_t n;

    id[0] = '\0';
    if (strncmp(url, "/v1/", 4) && strcmp(url, "/v1"))
        return API_R_NONE;
    if (!strcmp(url, "/v1/integrations"))
        return API_R_INTEGRATIONS;
    if (!strcmp(url, "/v1/status"))
        return API_R_STATUS;
    if (!strcmp(url, "/v1/dlq"))
        return API_R_DLQ;
    if (!strcmp(url, "/v1/dlq/retry"))
        return API_R_DLQ_RETRY;
    if (!strcmp(url, "/v1/openapi.yaml"))
        return API_R_OPENAPI;
    if (strncmp(url, pre, sizeof(pre) - 1))
        return API_R_V1_UNKNOWN;
    rest = url + sizeof(pre) - 1;
    slash = strchr(rest, '/');
    n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n == 0 || n > 64 || rest[0] == '-')
        return API_R_V1_UNKNOWN;
    memcpy(id, rest, n);
    id[n] = '\0';
    if (!lt_integration_id_valid(id)) {
        id[0] = '\0';
        return API_R_V1_UNKNOWN;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (!strcmp(rest + n, subs[i].suffix))
            return subs[i].route;
    id[0] = '\0';
    return API_R_V1_UNKNOWN;
}

const char *api_route_allow(api_route_t r)
{
    for (size_t i = 0; i < sizeof(allows) / sizeof(allows[0]); i++)
        if (allows[i].route == r)
            return allows[i].allow;
    return "";
}

int api_route_allows(api_route_t r, const char *method)
{
    const char *allow = api_route_allow(r), *p = allow;
    size_t n = strlen(method);
    if (!n)
        return 0;
    while ((p = strstr(p, method))) {
        if ((p == allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return 1;
        p += n;
    }
    return 0;
}
