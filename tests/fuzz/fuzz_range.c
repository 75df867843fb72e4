/* Fuzzes the header parsers of s3api/range.c, httpdate.c and cond.c. The input is split at
 * '\n' into: Range, x-amz-copy-source-range, an HTTP date, an x-amz-date, If-Match,
 * If-None-Match, If-Modified-Since, If-Unmodified-Since; missing fields are absent headers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3api/cond.h"
#include "s3api/httpdate.h"
#include "s3api/range.h"

#define N_FIELDS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_range(struct span hdr, uint64_t size)
{
    bool has = false;
    uint64_t off = 0, len = 0;
    enum s3_err e = s3_range_parse(hdr, size, &has, &off, &len);
    if (e == S3_OK && has && (len == 0 || off >= size || len > size - off))
        abort();
    if (e == S3_OK && !has && (off != 0 || len != size))
        abort();
    if (e != S3_OK && e != S3_ERR_INVALID_RANGE)
        abort();

    e = s3_copy_range_parse(hdr, size, &off, &len);
    if (e == S3_OK && (len == 0 || off >= size || len > size - off))
        abort();
    if (e != S3_OK && e != S3_ERR_INVALID_RANGE && e != S3_ERR_INVALID_ARGUMENT)
        abort();
}

/* A date that parses must format and parse back to itself (within four-digit years). */
static void check_http_date(struct span s)
{
    time_t t;
    char out[30];
    if (s3_date_parse_http(s, &t) != 0 || t < 0 || t > 253402300799)
        return;
    s3_date_rfc1123((int64_t)t * 1000, out);
    time_t back;
    if (strlen(out) != 29 || s3_date_parse_http(span_from(out), &back) != 0 || back != t)
        abort();
}

static void check_amz_date(struct span s)
{
    time_t t;
    char iso[25];
    if (s3_date_parse_amz(s, &t) != 0)
        return;
    s3_date_iso8601((int64_t)t * 1000, iso);
    if (strlen(iso) != 24)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct span f[N_FIELDS];
    struct span rest = span_make((const char *)data, size);
    int n = 0;

    for (; n < N_FIELDS && rest.ptr != NULL; n++)
        rest = span_cut(rest, '\n', &f[n]);
    for (int i = n; i < N_FIELDS; i++)
        f[i] = span_make(NULL, 0);

    static const uint64_t sizes[] = {0, 1, 10, 1000, UINT64_MAX};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        check_range(f[0], sizes[i]);
        check_range(f[1], sizes[i]);
    }
    check_http_date(f[2]);
    check_amz_date(f[3]);

    struct s3_conds c = {f[4], f[5], f[6], f[7]};
    for (int read_op = 0; read_op < 2; read_op++) {
        enum s3_err e =
            s3_conds_check(&c, "0123456789abcdef0123456789abcdef", 784111777500, read_op);
        if (e != S3_OK && e != S3_ERR_PRECONDITION_FAILED && !(read_op && e == S3_ERR_NOT_MODIFIED))
            abort();
    }
    return 0;
}
