/* s3api/httpdate.c: formatting and parsing of the three HTTP date forms, ISO 8601 and SigV4. */
#include <stdint.h>

#include "s3api/httpdate.h"
#include "tests/unit/tap.h"

/* 1994-11-06T08:49:37Z, RFC 9110's example. */
#define EXAMPLE_S 784111777

static void test_date_formats(void)
{
    char rfc[30], iso[25];
    s3_date_rfc1123((int64_t)EXAMPLE_S * 1000 + 123, rfc);
    is_str(rfc, "Sun, 06 Nov 1994 08:49:37 GMT", "RFC 1123");
    s3_date_iso8601((int64_t)EXAMPLE_S * 1000 + 123, iso);
    is_str(iso, "1994-11-06T08:49:37.123Z", "ISO 8601 with milliseconds");
    s3_date_rfc1123(0, rfc);
    is_str(rfc, "Thu, 01 Jan 1970 00:00:00 GMT", "epoch");
    s3_date_iso8601(-1, iso);
    is_str(iso, "1969-12-31T23:59:59.999Z", "negative rounds towards the past");
    s3_date_iso8601(1709164800000, iso);
    is_str(iso, "2024-02-29T00:00:00.000Z", "leap day");
    s3_date_rfc1123(253402300799999, rfc);
    is_str(rfc, "Fri, 31 Dec 9999 23:59:59 GMT", "last four-digit year");
    s3_date_rfc1123(INT64_MAX, rfc);
    is_str(rfc, "Thu, 01 Jan 1970 00:00:00 GMT", "unrepresentable -> epoch");
    s3_date_iso8601(INT64_MIN, iso);
    is_str(iso, "1970-01-01T00:00:00.000Z", "far past -> epoch");
}

static void check_http(const char *s, long long want, const char *name)
{
    time_t t = 12345;
    is_int(s3_date_parse_http(span_from(s), &t), 0, name);
    is_int(t, want, name);
}

static void test_date_parse_http_forms(void)
{
    check_http("Sun, 06 Nov 1994 08:49:37 GMT", EXAMPLE_S, "IMF-fixdate");
    check_http("Sunday, 06-Nov-94 08:49:37 GMT", EXAMPLE_S, "RFC 850");
    check_http("Sun Nov  6 08:49:37 1994", EXAMPLE_S, "asctime");
    check_http("Sun Nov 06 08:49:37 1994", EXAMPLE_S, "asctime, zero-padded day");
    check_http("  Sun, 06 Nov 1994 08:49:37 GMT ", EXAMPLE_S, "surrounding spaces");
    check_http("Thursday, 01-Jan-30 00:00:00 GMT", 1893456000, "RFC 850 two-digit year 2030");
    check_http("Thu, 01 Jan 1970 00:00:00 GMT", 0, "epoch");
    check_http("Wed, 31 Dec 1969 23:59:59 GMT", -1, "one second before");
    check_http("Thu, 29 Feb 2024 12:00:00 GMT", 1709208000, "leap day");
    check_http("Fri, 31 Dec 9999 23:59:59 GMT", 253402300799, "year 9999");
}

static void test_date_parse_http_rejects(void)
{
    time_t t;
    const char *bad[] = {"",
                         "garbage",
                         "Sun, 06 Nov 1994 08:49:37",
                         "Sun, 06 Nov 1994 08:49:37 UTC",
                         "Sun, 06 Nov 1994 08:49:37 GMT+1",
                         "Sun, 6 Nov 1994 08:49:37 GMT",
                         "Sun, 06 nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 94 08:49:37 GMT",
                         "Sun, 31 Nov 1994 08:49:37 GMT",
                         "Sun, 29 Feb 2023 08:49:37 GMT",
                         "Sun, 00 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 24:00:00 GMT",
                         "Sun, 06 Nov 1994 08:60:00 GMT",
                         "Sun, 06 Nov 1994 08:49:61 GMT",
                         "Sun, 06 Nov 1994 8:49:37 GMT",
                         "Xyz, 06 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 08:49:37 GMTX",
                         "Sun Nov 6 08:49:37 1994",
                         "1994-11-06T08:49:37Z",
                         "Sunday, 06-Nov-1994 08:49:37 GMT"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        is_int(s3_date_parse_http(span_from(bad[i]), &t), -1, bad[i]);
    is_int(s3_date_parse_http(span_make(NULL, 0), &t), -1, "absent");
    is_int(s3_date_parse_http(span_make("Sun, 06 Nov 1994 08:49:37 GMT", 20), &t), -1,
           "cut short by length");
}

static void test_date_parse_amz(void)
{
    time_t t = 0;
    is_int(s3_date_parse_amz(span_from("19941106T084937Z"), &t), 0, "basic form");
    is_int(t, EXAMPLE_S, "value");
    is_int(s3_date_parse_amz(span_from("20240229T000000Z"), &t), 0, "leap day");
    is_int(t, 1709164800, "value");
    const char *bad[] = {"",
                         "19941106T084937",
                         "19941106 084937Z",
                         "1994116T084937Z",
                         "19941306T084937Z",
                         "19940231T000000Z",
                         "19941106T250000Z",
                         "19941106T084937Z ",
                         "1994-11-06T08:49:37Z",
                         "19941106t084937z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        is_int(s3_date_parse_amz(span_from(bad[i]), &t), -1, bad[i]);
}

static void test_date_round_trip(void)
{
    static const int64_t samples[] = {0, 1, 86399, 951782400, 1700000000, 4102444799, 253402300799};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        char rfc[30];
        time_t t = 0;
        s3_date_rfc1123(samples[i] * 1000, rfc);
        is_int(s3_date_parse_http(span_from(rfc), &t), 0, rfc);
        is_int(t, samples[i], "round trip");
    }
}

int main(void)
{
    subtest(test_date_formats);
    subtest(test_date_parse_http_forms);
    subtest(test_date_parse_http_rejects);
    subtest(test_date_parse_amz);
    subtest(test_date_round_trip);
    return done_testing();
}
