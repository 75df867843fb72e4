/* conf: the syntax of scalar values (booleans, integers, sizes, durations). Where the values
 * go is apply.c's business. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "conf/internal.h"

/* Reads decimal digits at *p (at least one), advancing *p. -1 on none or overflow. */
static int read_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

static int mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

int conf_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int conf_parse_uint(const char *s, uint64_t *out)
{
    uint64_t v;

    if (read_digits(&s, &v) != 0 || *s != '\0')
        return -1;
    *out = v;
    return 0;
}

int conf_parse_int(const char *s, int64_t *out)
{
    bool neg = false;
    uint64_t v;

    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (read_digits(&s, &v) != 0 || *s != '\0')
        return -1;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -1;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > INT64_MAX)
            return -1;
        *out = (int64_t)v;
    }
    return 0;
}

int conf_parse_size(const char *s, uint64_t *out)
{
    /* Binary multiples whatever the spelling: "1MB" in a limit means 1 MiB, as in nginx. */
    static const struct {
        const char *unit;
        unsigned shift;
    } units[] = {
        {"", 0},     {"b", 0},  {"k", 10},  {"kb", 10},  {"kib", 10}, {"m", 20},  {"mb", 20},
        {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40},   {"tb", 40}, {"tib", 40},
    };
    uint64_t v;

    if (read_digits(&s, &v) != 0)
        return -1;
    while (*s == ' ')
        s++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(s, units[i].unit) == 0)
            return mul_u64(v, (uint64_t)1 << units[i].shift, out);
    }
    return -1;
}

/* Matches a duration unit at s: its length and milliseconds. -1 when none matches. */
static int duration_unit(const char *s, size_t *len, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {
        /* "ms" before "m" so the longer unit wins */
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"w", 604800000},
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].unit);
        if (strncmp(s, units[i].unit, n) == 0 && !(s[n] >= 'a' && s[n] <= 'z')) {
            *len = n;
            *ms = units[i].ms;
            return 0;
        }
    }
    return -1;
}

int conf_parse_duration_ms(const char *s, uint64_t *out)
{
    uint64_t total = 0, v;

    if (read_digits(&s, &v) != 0)
        return -1;
    if (*s == '\0') /* a bare number is seconds */
        return mul_u64(v, 1000, out);
    for (;;) {
        size_t len;
        uint64_t unit, ms;

        if (duration_unit(s, &len, &unit) != 0 || mul_u64(v, unit, &ms) != 0 ||
            ms > UINT64_MAX - total)
            return -1;
        total += ms;
        s += len;
        while (*s == ' ')
            s++;
        if (*s == '\0')
            break;
        if (read_digits(&s, &v) != 0)
            return -1;
    }
    *out = total;
    return 0;
}
