/* lt_test: a minimal unit-test harness. Each test file defines tests with
 * LT_TEST(name) and lists them in main() with LT_RUN(name); LT_DONE() prints
 * "N passed, N failed" and returns the exit status. */
#ifndef LT_TEST_H
#define LT_TEST_H

#include <stdio.h>
#include <string.h>

static int lt_test_failed_checks;
static int lt_test_passed, lt_test_failed;

#define LT_TEST(name) static void name(void)

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            lt_test_failed_checks++;                                                 \
        }                                                                            \
    } while (0)

#define CHECK_STR(a, b)                                                                       \
    do {                                                                                      \
        const char *lt_a_ = (a), *lt_b_ = (b);                                                \
        if (!lt_a_ || !lt_b_ || strcmp(lt_a_, lt_b_) != 0) {                                  \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", want \"%s\"\n", __FILE__, \
                    __LINE__, #a, lt_a_ ? lt_a_ : "(null)", lt_b_ ? lt_b_ : "(null)");        \
            lt_test_failed_checks++;                                                          \
        }                                                                                     \
    } while (0)

#define CHECK_INT(a, b)                                                                   \
    do {                                                                                  \
        long long lt_a_ = (long long)(a), lt_b_ = (long long)(b);                         \
        if (lt_a_ != lt_b_) {                                                             \
            fprintf(stderr, "%s:%d: CHECK_INT failed: %s == %lld, want %lld\n", __FILE__, \
                    __LINE__, #a, lt_a_, lt_b_);                                          \
            lt_test_failed_checks++;                                                      \
        }                                                                                 \
    } while (0)

#define LT_RUN(name)                               \
    do {                                           \
        int lt_before_ = lt_test_failed_checks;    \
        name();                                    \
        if (lt_test_failed_checks == lt_before_) { \
            lt_test_passed++;                      \
            printf("ok   %s\n", #name);            \
        } else {                                   \
            lt_test_failed++;                      \
            printf("FAIL %s\n", #name);            \
        }                                          \
    } while (0)

#define LT_DONE() \
    (printf("%d passed, %d failed\n", lt_test_passed, lt_test_failed), lt_test_failed ? 1 : 0)

#endif
