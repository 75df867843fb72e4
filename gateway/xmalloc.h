/* Allocation that cannot fail: on exhaustion it logs and aborts. Limits set where input
 * grows keep attacker-chosen sizes away from these calls. */
#ifndef FG_GATEWAY_XMALLOC_H
#define FG_GATEWAY_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Like asprintf(3) but aborts on failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define ASSERT(x)                                                                                  \
    do {                                                                                           \
        if (!(x))                                                                                  \
            xassert_fail(#x, __FILE__, __LINE__);                                                  \
    } while (0)
void xassert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#endif
