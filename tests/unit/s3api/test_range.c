/* s3api/range.c: Range and x-amz-copy-source-range against an object size. */
#include <stdint.h>

#include "s3api/range.h"
#include "tests/unit/tap.h"

struct range_case {
    const char *hdr; /* NULL: header absent */
    uint64_t size;
    enum s3_err want;
    bool has_range;
    uint64_t off;
    uint64_t len;
};

static void check_range(const struct range_case *c)
{
    bool has = !c->has_range;
    uint64_t off = 12345, len = 12345;
    struct span hdr = c->hdr != NULL ? span_from(c->hdr) : span_make(NULL, 0);
    char name[160];

    snprintf(name, sizeof(name), "'%s' of %llu bytes", c->hdr ? c->hdr : "(absent)",
             (unsigned long long)c->size);
    enum s3_err e = s3_range_parse(hdr, c->size, &has, &off, &len);
    is_int(e, c->want, name);
    if (e != S3_OK)
        return;
    is_int(has, c->has_range, "has_range");
    if (c->has_range) {
        is_int(off, c->off, "offset");
        is_int(len, c->len, "length");
    } else {
        ok(off == 0 && len == c->size, "whole object");
    }
}

static void test_range_satisfiable(void)
{
    static const struct range_case cases[] = {
        {"bytes=0-0", 10, S3_OK, true, 0, 1},
        {"bytes=0-9", 10, S3_OK, true, 0, 10},
        {"bytes=2-5", 10, S3_OK, true, 2, 4},
        {"bytes=5-", 10, S3_OK, true, 5, 5},
        {"bytes=9-", 10, S3_OK, true, 9, 1},
        {"bytes=5-100", 10, S3_OK, true, 5, 5},
        {"bytes=-3", 10, S3_OK, true, 7, 3},
        {"bytes=-10", 10, S3_OK, true, 0, 10},
        {"bytes=-100", 10, S3_OK, true, 0, 10},
        {"Bytes=1-2", 10, S3_OK, true, 1, 2},
        {" bytes=1-2 ", 10, S3_OK, true, 1, 2},
        {"bytes=0-18446744073709551615", 10, S3_OK, true, 0, 10},
        {"bytes=0-", 18446744073709551615ull, S3_OK, true, 0, 18446744073709551615ull},
        {"bytes=18446744073709551614-", 18446744073709551615ull, S3_OK, true,
         18446744073709551614ull, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_range(&cases[i]);
}

static void test_range_unsatisfiable(void)
{
    static const struct range_case cases[] = {
        {"bytes=10-", 10, S3_ERR_INVALID_RANGE, false, 0, 0},
        {"bytes=10-20", 10, S3_ERR_INVALID_RANGE, false, 0, 0},
        {"bytes=-0", 10, S3_ERR_INVALID_RANGE, false, 0, 0},
        {"bytes=0-0", 0, S3_ERR_INVALID_RANGE, false, 0, 0},
        {"bytes=0-", 0, S3_ERR_INVALID_RANGE, false, 0, 0},
        {"bytes=-5", 0, S3_ERR_INVALID_RANGE, false, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_range(&cases[i]);
}

static void test_range_ignored_when_absent_or_unparsable(void)
{
    static const struct range_case cases[] = {
        {NULL, 10, S3_OK, false, 0, 0},
        {"", 10, S3_OK, false, 0, 0},
        {"bytes=", 10, S3_OK, false, 0, 0},
        {"bytes=-", 10, S3_OK, false, 0, 0},
        {"bytes=5-2", 10, S3_OK, false, 0, 0},
        {"bytes=0-1,3-4", 10, S3_OK, false, 0, 0},
        {"bytes=a-b", 10, S3_OK, false, 0, 0},
        {"bytes=1-2-3", 10, S3_OK, false, 0, 0},
        {"items=0-1", 10, S3_OK, false, 0, 0},
        {"bytes 0-1", 10, S3_OK, false, 0, 0},
        {"bytes=+1-2", 10, S3_OK, false, 0, 0},
        {"bytes=0-99999999999999999999999", 10, S3_OK, false, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_range(&cases[i]);
}

static void test_copy_range(void)
{
    uint64_t off, len;
    is_int(s3_copy_range_parse(span_from("bytes=0-9"), 10, &off, &len), S3_OK, "whole");
    ok(off == 0 && len == 10, "0+10");
    is_int(s3_copy_range_parse(span_from("bytes=3-3"), 10, &off, &len), S3_OK, "one byte");
    ok(off == 3 && len == 1, "3+1");
    is_int(s3_copy_range_parse(span_from("bytes=0-10"), 10, &off, &len), S3_ERR_INVALID_RANGE,
           "past the end");
    is_int(s3_copy_range_parse(span_from("bytes=10-10"), 10, &off, &len), S3_ERR_INVALID_RANGE,
           "start at the end");
    is_int(s3_copy_range_parse(span_from("bytes=0-0"), 0, &off, &len), S3_ERR_INVALID_RANGE,
           "empty source");
    is_int(s3_copy_range_parse(span_from("bytes=5-"), 10, &off, &len), S3_ERR_INVALID_ARGUMENT,
           "open end");
    is_int(s3_copy_range_parse(span_from("bytes=-5"), 10, &off, &len), S3_ERR_INVALID_ARGUMENT,
           "suffix");
    is_int(s3_copy_range_parse(span_from("bytes=5-3"), 10, &off, &len), S3_ERR_INVALID_ARGUMENT,
           "backwards");
    is_int(s3_copy_range_parse(span_from("0-3"), 10, &off, &len), S3_ERR_INVALID_ARGUMENT,
           "no unit");
    is_int(s3_copy_range_parse(span_from("bytes=0-1,2-3"), 10, &off, &len), S3_ERR_INVALID_ARGUMENT,
           "two ranges");
    is_int(s3_copy_range_parse(span_make(NULL, 0), 10, &off, &len), S3_ERR_INVALID_ARGUMENT,
           "absent");
}

int main(void)
{
    subtest(test_range_satisfiable);
    subtest(test_range_unsatisfiable);
    subtest(test_range_ignored_when_absent_or_unparsable);
    subtest(test_copy_range);
    return done_testing();
}
