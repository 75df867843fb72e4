/* Borrowed byte ranges of wire data (not NUL-terminated) and header name/value pairs. */
#ifndef FG_GATEWAY_SPAN_H
#define FG_GATEWAY_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct span {
    const char *ptr;
    size_t len;
};

/* A header as received: name lowercased by the HTTP layer, value as sent (no CRLF). */
struct gw_header {
    struct span name;
    struct span value;
};

#define SPAN_LIT(s) ((struct span){(s), sizeof(s) - 1})

static inline struct span span_from(const char *s)
{
    return (struct span){s, s != NULL ? strlen(s) : 0};
}

static inline struct span span_make(const char *p, size_t n)
{
    return (struct span){p, n};
}

/* The value of one hex digit (either case), or -1 when `c` is not one. */
static inline int gw_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool span_eq(struct span a, struct span b);
bool span_eq_str(struct span a, const char *s);
/* ASCII case-insensitive comparison. */
bool span_eq_ci(struct span a, const char *s);
bool span_starts_with(struct span a, const char *prefix);
/* Strips leading and trailing spaces and tabs. */
struct span span_trim(struct span a);
/* Splits at the first `sep`: *head gets the part before, the return is the rest after it
 * (len 0 and ptr NULL when `sep` is absent, in which case *head is all of `a`). */
struct span span_cut(struct span a, char sep, struct span *head);
/* Parses a decimal unsigned integer filling the whole span; -1 on junk or overflow. */
int span_to_u64(struct span a, unsigned long long *out);
/* Copies into a NUL-terminated heap string (xmalloc). */
char *span_dup(struct span a);
/* Looks a header up by lowercase name in an array; NULL when absent. */
const struct gw_header *gw_header_find(const struct gw_header *h, size_t n, const char *name);

#endif
