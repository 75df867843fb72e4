/* Helpers over borrowed byte ranges. */
#include "gateway/span.h"

#include <limits.h>

#include "gateway/xmalloc.h"

bool span_eq(struct span a, struct span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool span_eq_str(struct span a, const char *s)
{
    return span_eq(a, span_from(s));
}

bool span_eq_ci(struct span a, const char *s)
{
    size_t n = strlen(s);
    if (a.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a.ptr[i], y = (unsigned char)s[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return false;
    }
    return true;
}

bool span_starts_with(struct span a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && memcmp(a.ptr, prefix, n) == 0;
}

struct span span_trim(struct span a)
{
    while (a.len > 0 && (a.ptr[0] == ' ' || a.ptr[0] == '\t')) {
        a.ptr++;
        a.len--;
    }
    while (a.len > 0 && (a.ptr[a.len - 1] == ' ' || a.ptr[a.len - 1] == '\t'))
        a.len--;
    return a;
}

struct span span_cut(struct span a, char sep, struct span *head)
{
    const char *p = a.len > 0 ? memchr(a.ptr, sep, a.len) : NULL;
    if (p == NULL) {
        *head = a;
        return (struct span){NULL, 0};
    }
    *head = (struct span){a.ptr, (size_t)(p - a.ptr)};
    return (struct span){p + 1, a.len - (size_t)(p - a.ptr) - 1};
}

int span_to_u64(struct span a, unsigned long long *out)
{
    unsigned long long v = 0;
    if (a.len == 0 || a.len > 20)
        return -1;
    for (size_t i = 0; i < a.len; i++) {
        if (a.ptr[i] < '0' || a.ptr[i] > '9')
            return -1;
        unsigned d = (unsigned)(a.ptr[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

char *span_dup(struct span a)
{
    return xstrndup(a.len ? a.ptr : "", a.len);
}

const struct gw_header *gw_header_find(const struct gw_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (span_eq_str(h[i].name, name))
            return &h[i];
    return NULL;
}
