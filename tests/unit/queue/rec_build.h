/* Outbox records (queue.h's binary form) for the queue's unit tests. */
#ifndef FG_TESTS_UNIT_QUEUE_REC_BUILD_H
#define FG_TESTS_UNIT_QUEUE_REC_BUILD_H

#include <stdlib.h>
#include <string.h>

static inline void rec_put_u32(char *p, size_t n)
{
    p[0] = (char)(n & 0xff);
    p[1] = (char)((n >> 8) & 0xff);
    p[2] = (char)((n >> 16) & 0xff);
    p[3] = (char)((n >> 24) & 0xff);
}

/* "FR1" kind, then the NULL-terminated name, value list as length-prefixed fields, into buf;
 * returns the length (aborts when it does not fit). */
static inline size_t rec_build(char kind, const char *const *kv, char *buf, size_t cap)
{
    size_t n = 4;
    if (cap < 4)
        abort();
    memcpy(buf, "FR1", 3);
    buf[3] = kind;
    for (size_t i = 0; kv[i] != NULL; i++) {
        size_t len = strlen(kv[i]);
        if (n + 4 + len > cap)
            abort();
        rec_put_u32(buf + n, len);
        memcpy(buf + n + 4, kv[i], len);
        n += 4 + len;
    }
    return n;
}

#endif
