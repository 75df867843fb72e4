/* HTTP, ISO 8601 and SigV4 dates, formatted with gmtime_r and parsed by hand (strptime
 * depends on the locale); all in UTC, all thread-safe. */
#include "s3api/httpdate.h"

#include <stdbool.h>
#include <string.h>

static const char wkdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Splits milliseconds since the epoch into broken-down UTC, rounding towards the past (so
 * -1 ms is 1969-12-31T23:59:59.999Z); the year is kept to four digits. */
static void to_tm(int64_t ms, struct tm *tm, int *msec)
{
    int64_t s = ms / 1000, r = ms % 1000;
    if (r < 0) {
        r += 1000;
        s--;
    }
    time_t t = (time_t)s;
    if (gmtime_r(&t, tm) == NULL || tm->tm_year + 1900 < 0 || tm->tm_year + 1900 > 9999) {
        /* Outside what the formats can say: the epoch, rather than garbage. */
        t = 0;
        r = 0;
        gmtime_r(&t, tm);
    }
    *msec = (int)r;
}

/* Writes `v` as exactly `n` digits (callers keep v in range) and returns the end. */
static char *put_digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

void s3_date_rfc1123(int64_t ms, char out[30])
{
    struct tm tm;
    int msec;
    char *p = out;

    to_tm(ms, &tm, &msec);
    p = put_str(p, wkdays[tm.tm_wday]);
    p = put_str(p, ", ");
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = ' ';
    p = put_str(p, months[tm.tm_mon]);
    *p++ = ' ';
    p = put_digits(p, tm.tm_year + 1900, 4);
    *p++ = ' ';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    p = put_str(p, " GMT");
    *p = '\0';
}

void s3_date_iso8601(int64_t ms, char out[25])
{
    struct tm tm;
    int msec;
    char *p = out;

    to_tm(ms, &tm, &msec);
    p = put_digits(p, tm.tm_year + 1900, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    *p++ = '.';
    p = put_digits(p, msec, 3);
    p = put_str(p, "Z");
    *p = '\0';
}

/* ---- parsing ---- */

/* A cursor over the input; every step fails (returns false) without moving past the end. */
struct cur {
    const char *p;
    const char *end;
};

static bool eat(struct cur *c, char ch)
{
    if (c->p == c->end || *c->p != ch)
        return false;
    c->p++;
    return true;
}

/* Exactly `n` decimal digits. */
static bool digits(struct cur *c, int n, int *out)
{
    int v = 0;
    if (c->end - c->p < n)
        return false;
    for (int i = 0; i < n; i++) {
        char ch = c->p[i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    c->p += n;
    *out = v;
    return true;
}

/* One of `n` three-letter names, case-sensitive as RFC 9110 specifies; its index. */
static bool name3(struct cur *c, const char (*names)[4], int n, int *out)
{
    if (c->end - c->p < 3)
        return false;
    for (int i = 0; i < n; i++) {
        if (c->p[0] == names[i][0] && c->p[1] == names[i][1] && c->p[2] == names[i][2]) {
            c->p += 3;
            *out = i;
            return true;
        }
    }
    return false;
}

/* RFC 850 spells the day out: "Sunday". Only its letters are checked; the date decides. */
static bool long_wkday(struct cur *c)
{
    int day;
    if (!name3(c, wkdays, 7, &day))
        return false;
    while (c->p < c->end && ((*c->p >= 'a' && *c->p <= 'z')))
        c->p++;
    return true;
}

/* "HH:MM:SS" */
static bool clock_time(struct cur *c, struct tm *tm)
{
    return digits(c, 2, &tm->tm_hour) && eat(c, ':') && digits(c, 2, &tm->tm_min) && eat(c, ':') &&
           digits(c, 2, &tm->tm_sec);
}

static bool eat_str(struct cur *c, const char *s)
{
    while (*s != '\0')
        if (!eat(c, *s++))
            return false;
    return true;
}

static bool is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* Range checks, then timegm (which would otherwise quietly normalise 31 Feb to 3 Mar). A leap
 * second (:60) is accepted and lands on the next minute, as timegm does. */
static int finish(struct tm *tm, int year, time_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (tm->tm_mon < 0 || tm->tm_mon > 11 || tm->tm_mday < 1 || tm->tm_hour > 23 ||
        tm->tm_min > 59 || tm->tm_sec > 60)
        return -1;
    int days = mdays[tm->tm_mon] + (tm->tm_mon == 1 && is_leap(year));
    if (tm->tm_mday > days)
        return -1;
    tm->tm_year = year - 1900;
    tm->tm_isdst = 0;
    /* Four-digit years cannot overflow a 64-bit time_t, so -1 here is 1969-12-31T23:59:59. */
    *out = timegm(tm);
    return 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate, RFC 1123) */
static int parse_imf(struct cur c, time_t *out)
{
    struct tm tm = {0};
    int wday, year;
    if (name3(&c, wkdays, 7, &wday) && eat(&c, ',') && eat(&c, ' ') && digits(&c, 2, &tm.tm_mday) &&
        eat(&c, ' ') && name3(&c, months, 12, &tm.tm_mon) && eat(&c, ' ') && digits(&c, 4, &year) &&
        eat(&c, ' ') && clock_time(&c, &tm) && eat_str(&c, " GMT") && c.p == c.end)
        return finish(&tm, year, out);
    return -1;
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" (RFC 850); RFC 9110 5.6.7 wants a two-digit year more
 * than 50 years ahead read as the past century, which for dates read now means < 70 is 20xx. */
static int parse_rfc850(struct cur c, time_t *out)
{
    struct tm tm = {0};
    int yy;
    if (long_wkday(&c) && eat(&c, ',') && eat(&c, ' ') && digits(&c, 2, &tm.tm_mday) &&
        eat(&c, '-') && name3(&c, months, 12, &tm.tm_mon) && eat(&c, '-') && digits(&c, 2, &yy) &&
        eat(&c, ' ') && clock_time(&c, &tm) && eat_str(&c, " GMT") && c.p == c.end)
        return finish(&tm, yy < 70 ? 2000 + yy : 1900 + yy, out);
    return -1;
}

/* "Sun Nov  6 08:49:37 1994" (asctime) */
static int parse_asctime(struct cur c, time_t *out)
{
    struct tm tm = {0};
    int wday, year;
    if (!name3(&c, wkdays, 7, &wday) || !eat(&c, ' ') || !name3(&c, months, 12, &tm.tm_mon) ||
        !eat(&c, ' '))
        return -1;
    /* The day is two characters: space-padded or two digits. */
    if (eat(&c, ' ')) {
        if (!digits(&c, 1, &tm.tm_mday))
            return -1;
    } else if (!digits(&c, 2, &tm.tm_mday)) {
        return -1;
    }
    if (eat(&c, ' ') && clock_time(&c, &tm) && eat(&c, ' ') && digits(&c, 4, &year) && c.p == c.end)
        return finish(&tm, year, out);
    return -1;
}

int s3_date_parse_http(struct span s, time_t *out)
{
    if (s.ptr == NULL)
        return -1;
    s = span_trim(s);
    struct cur c = {s.ptr, s.ptr + s.len};
    if (parse_imf(c, out) == 0 || parse_rfc850(c, out) == 0 || parse_asctime(c, out) == 0)
        return 0;
    return -1;
}

int s3_date_parse_amz(struct span s, time_t *out)
{
    struct tm tm = {0};
    int year, month;
    if (s.ptr == NULL)
        return -1;
    struct cur c = {s.ptr, s.ptr + s.len};
    if (digits(&c, 4, &year) && digits(&c, 2, &month) && digits(&c, 2, &tm.tm_mday) &&
        eat(&c, 'T') && digits(&c, 2, &tm.tm_hour) && digits(&c, 2, &tm.tm_min) &&
        digits(&c, 2, &tm.tm_sec) && eat(&c, 'Z') && c.p == c.end) {
        tm.tm_mon = month - 1;
        return finish(&tm, year, out);
    }
    return -1;
}
