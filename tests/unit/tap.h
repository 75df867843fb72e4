/* A tiny TAP runner for unit tests: ok, is_int, is_str, subtest, done_testing.
 * Header-only so each test file is one executable with no extra link step. */
#ifndef FG_TESTS_TAP_H
#define FG_TESTS_TAP_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int tap_n_run;
static int tap_n_failed;

static inline int tap_ok(int cond, const char *file, int line, const char *name)
{
    tap_n_run++;
    printf("%sok %d - %s\n", cond ? "" : "not ", tap_n_run, name);
    if (!cond) {
        tap_n_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    return cond;
}

#define ok(cond, name) tap_ok(!!(cond), __FILE__, __LINE__, (name))

#define is_int(got, want, name)                                                                    \
    do {                                                                                           \
        long long tap_g = (long long)(got), tap_w = (long long)(want);                             \
        if (!tap_ok(tap_g == tap_w, __FILE__, __LINE__, (name)))                                   \
            printf("#   got %lld, want %lld\n", tap_g, tap_w);                                     \
    } while (0)

#define is_str(got, want, name)                                                                    \
    do {                                                                                           \
        const char *tap_g = (got), *tap_w = (want);                                                \
        int tap_c = tap_g != NULL && tap_w != NULL ? strcmp(tap_g, tap_w) == 0 : tap_g == tap_w;   \
        if (!tap_ok(tap_c, __FILE__, __LINE__, (name)))                                            \
            printf("#   got '%s', want '%s'\n", tap_g ? tap_g : "(null)",                          \
                   tap_w ? tap_w : "(null)");                                                      \
    } while (0)

#define subtest(fn)                                                                                \
    do {                                                                                           \
        printf("# %s\n", #fn);                                                                     \
        fn();                                                                                      \
    } while (0)

static inline int done_testing(void)
{
    printf("1..%d\n", tap_n_run);
    if (tap_n_failed > 0)
        printf("# %d of %d failed\n", tap_n_failed, tap_n_run);
    return tap_n_failed > 0 || tap_n_run == 0;
}

#endif
