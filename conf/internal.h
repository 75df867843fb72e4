/* Private to conf/: its own allocation helpers (conf/ depends on nothing but libc and
 * libyaml), which like gateway/xmalloc print and abort when memory runs out, and the error
 * setter. */
#ifndef FG_CONF_INTERNAL_H
#define FG_CONF_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

/* Fills `err`; the message is truncated to fit. */
void conf_error_set(struct conf_error *err, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void conf_oom(void)
{
    fputs("conf: out of memory\n", stderr);
    abort();
}

static inline void *conf_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);
    if (p == NULL)
        conf_oom();
    return p;
}

/* Grows an array of `n` elements of `size` bytes; aborts on overflow. */
static inline void *conf_xreallocarray(void *p, size_t n, size_t size)
{
    if (size != 0 && n > (size_t)-1 / size)
        conf_oom();
    p = realloc(p, n * size != 0 ? n * size : 1);
    if (p == NULL)
        conf_oom();
    return p;
}

static inline char *conf_xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p == NULL)
        conf_oom();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static inline char *conf_xstrdup(const char *s)
{
    return conf_xstrndup(s, strlen(s));
}

#endif
