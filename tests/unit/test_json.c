/* test_json: length-delimited parsing, caps, trailing bytes, typed access. */
#include <stdlib.h>

#include "lt_json.h"
#include "lt_test.h"

static cJSON *parse(const char *s, size_t len, size_t max, char *err, size_t errlen)
{
    err[0] = '\0';
    return lt_json_parse(s, len, max, err, errlen);
}

LT_TEST(parses_exact_length_without_nul)
{
    char err[128];
    /* The buffer continues past len with garbage: it must never be read. */
    const char buf[] = "{\"a\":1}GARBAGE";
    cJSON *root = parse(buf, 7, 1024, err, sizeof(err));
    long long v = 0;

    CHECK(root != NULL);
    CHECK_INT(lt_json_int(root, "a", &v), 0);
    CHECK_INT(v, 1);
    cJSON_Delete(root);
}

LT_TEST(unterminated_heap_buffer)
{
    char err[128];
    size_t n = 9;
    char *buf = malloc(n); /* exactly the bytes, no NUL: ASan guards the end */
    cJSON *root;

    CHECK(buf != NULL);
    if (!buf)
        return;
    memcpy(buf, "[1,2,\"x\"]", n);
    root = parse(buf, n, 1024, err, sizeof(err));
    CHECK(root != NULL);
    CHECK_INT(cJSON_GetArraySize(root), 3);
    cJSON_Delete(root);
    memcpy(buf, "{\"k\":\"ab", 8);
    root = parse(buf, 8, 1024, err, sizeof(err));
    CHECK(root == NULL);
    free(buf);
}

LT_TEST(rejects_trailing_bytes)
{
    char err[128];
    cJSON *root;

    root = parse("{\"a\":1} x", 9, 1024, err, sizeof(err));
    CHECK(root == NULL);
    CHECK(strstr(err, "trailing") != NULL);
    CHECK(strstr(err, "byte 8") != NULL);
    root = parse("{\"a\":1}{\"b\":2}", 14, 1024, err, sizeof(err));
    CHECK(root == NULL);
    /* an embedded NUL is a trailing byte, not an end of input */
    root = parse("{\"a\":1}\0{}", 10, 1024, err, sizeof(err));
    CHECK(root == NULL);
    root = parse("  {\"a\":1} \r\n\t", 13, 1024, err, sizeof(err));
    CHECK(root != NULL);
    cJSON_Delete(root);
}

LT_TEST(size_cap_and_invalid_offset)
{
    char err[128];
    cJSON *root;

    root = parse("{\"a\":12345}", 11, 10, err, sizeof(err));
    CHECK(root == NULL);
    CHECK(strstr(err, "too large") != NULL);
    root = parse("{\"a\":12345}", 11, 11, err, sizeof(err));
    CHECK(root != NULL);
    cJSON_Delete(root);
    root = parse("{\"a\":tru}", 9, 100, err, sizeof(err));
    CHECK(root == NULL);
    CHECK(strstr(err, "invalid at byte") != NULL);
    root = parse("<html>502</html>", 16, 100, err, sizeof(err));
    CHECK(root == NULL);
    CHECK(strstr(err, "byte 0") != NULL);
    root = parse("", 0, 100, err, sizeof(err));
    CHECK(root == NULL);
}

LT_TEST(typed_access)
{
    const char *s = "{\"n\":42,\"neg\":-7,\"f\":1.5,\"ns\":\"123\",\"bad\":\"12a\","
                    "\"str\":\"hi\",\"big\":1e300,\"nul\":null,\"empty\":\"\"}";
    char err[128], id[8];
    cJSON *root = parse(s, strlen(s), 4096, err, sizeof(err));
    long long v = 0;

    CHECK(root != NULL);
    if (!root)
        return;
    CHECK_INT(lt_json_int(root, "n", &v), 0);
    CHECK_INT(v, 42);
    CHECK_INT(lt_json_int(root, "neg", &v), 0);
    CHECK_INT(v, -7);
    CHECK_INT(lt_json_int(root, "ns", &v), 0);
    CHECK_INT(v, 123);
    CHECK_INT(lt_json_int(root, "f", &v), -1);
    CHECK_INT(lt_json_int(root, "bad", &v), -1);
    CHECK_INT(lt_json_int(root, "big", &v), -1);
    CHECK_INT(lt_json_int(root, "empty", &v), -1);
    CHECK_INT(lt_json_int(root, "missing", &v), -1);
    CHECK_STR(lt_json_str(root, "str"), "hi");
    CHECK(lt_json_str(root, "n") == NULL);
    CHECK(lt_json_str(root, "nul") == NULL);
    CHECK_INT(lt_json_id(root, "n", id, sizeof(id)), 0);
    CHECK_STR(id, "42");
    CHECK_INT(lt_json_id(root, "ns", id, sizeof(id)), 0);
    CHECK_STR(id, "123");
    CHECK_INT(lt_json_id(root, "f", id, sizeof(id)), -1);
    CHECK_INT(lt_json_id(root, "nul", id, sizeof(id)), -1);
    CHECK_INT(lt_json_id(root, "str", id, 2), -1); /* "hi" needs 3 bytes */
    cJSON_Delete(root);
}

LT_TEST(print_compact)
{
    char err[128];
    const char *s = "{ \"a\" : [1, 2],\n \"b\": \"x\" }";
    cJSON *root = parse(s, strlen(s), 4096, err, sizeof(err));
    char *out = lt_json_print(root);

    CHECK_STR(out, "{\"a\":[1,2],\"b\":\"x\"}");
    free(out);
    cJSON_Delete(root);
}

int main(void)
{
    LT_RUN(parses_exact_length_without_nul);
    LT_RUN(unterminated_heap_buffer);
    LT_RUN(rejects_trailing_bytes);
    LT_RUN(size_cap_and_invalid_offset);
    LT_RUN(typed_access);
    LT_RUN(print_compact);
    return LT_DONE();
}
