/* s3api/cond.c: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since and S3's
 * pairing rules, for reads and for CopyObject's source conditions. */
#include <stdint.h>

#include "s3api/cond.h"
#include "tests/unit/tap.h"

#define ETAG "0123456789abcdef0123456789abcdef"
/* The object was last modified 1994-11-06T08:49:37.500Z. */
#define MTIME_MS (784111777LL * 1000 + 500)
#define BEFORE   "Sun, 06 Nov 1994 08:49:36 GMT"
#define SAME     "Sun, 06 Nov 1994 08:49:37 GMT"
#define AFTER    "Sun, 06 Nov 1994 08:49:38 GMT"

static struct span hdr(const char *s)
{
    return s != NULL ? span_from(s) : span_make(NULL, 0);
}

static enum s3_err check(const char *im, const char *inm, const char *ims, const char *ius,
                         bool read_op)
{
    struct s3_conds c = {hdr(im), hdr(inm), hdr(ims), hdr(ius)};
    return s3_conds_check(&c, ETAG, MTIME_MS, read_op);
}

static void test_cond_none_is_ok(void)
{
    is_int(check(NULL, NULL, NULL, NULL, true), S3_OK, "no conditions");
}

static void test_cond_if_match(void)
{
    is_int(check("\"" ETAG "\"", NULL, NULL, NULL, true), S3_OK, "quoted match");
    is_int(check(ETAG, NULL, NULL, NULL, true), S3_OK, "unquoted match");
    is_int(check("W/\"" ETAG "\"", NULL, NULL, NULL, true), S3_OK, "weak prefix ignored");
    is_int(check("*", NULL, NULL, NULL, true), S3_OK, "star");
    is_int(check("\"a\", \"" ETAG "\"", NULL, NULL, NULL, true), S3_OK, "second in a list");
    is_int(check("\"a\",\"b\" , W/\"" ETAG "\"", NULL, NULL, NULL, true), S3_OK,
           "list without spaces, weak member");
    is_int(check("\"a\", \"b\"", NULL, NULL, NULL, true), S3_ERR_PRECONDITION_FAILED,
           "list without it");
    is_int(check("\"" ETAG "x\"", NULL, NULL, NULL, true), S3_ERR_PRECONDITION_FAILED,
           "prefix is not a match");
    is_int(check("", NULL, NULL, NULL, true), S3_ERR_PRECONDITION_FAILED, "empty list");
    is_int(check("\"a,b\", " ETAG, NULL, NULL, NULL, true), S3_OK, "comma inside quotes");
    is_int(check("\"a", NULL, NULL, NULL, true), S3_ERR_PRECONDITION_FAILED, "unterminated");
    is_int(check("\"x\"", NULL, NULL, NULL, false), S3_ERR_PRECONDITION_FAILED,
           "copy: 412 as well");
}

static void test_cond_if_none_match(void)
{
    is_int(check(NULL, "\"" ETAG "\"", NULL, NULL, true), S3_ERR_NOT_MODIFIED, "match -> 304");
    is_int(check(NULL, "*", NULL, NULL, true), S3_ERR_NOT_MODIFIED, "star -> 304");
    is_int(check(NULL, "\"a\", W/\"" ETAG "\"", NULL, NULL, true), S3_ERR_NOT_MODIFIED,
           "in a list -> 304");
    is_int(check(NULL, "\"a\"", NULL, NULL, true), S3_OK, "no match -> OK");
    is_int(check(NULL, "\"" ETAG "\"", NULL, NULL, false), S3_ERR_PRECONDITION_FAILED,
           "copy: match -> 412");
}

static void test_cond_dates(void)
{
    is_int(check(NULL, NULL, BEFORE, NULL, true), S3_OK, "modified since before");
    is_int(check(NULL, NULL, SAME, NULL, true), S3_ERR_NOT_MODIFIED,
           "not modified since the same second");
    is_int(check(NULL, NULL, AFTER, NULL, true), S3_ERR_NOT_MODIFIED, "not modified since after");
    is_int(check(NULL, NULL, AFTER, NULL, false), S3_ERR_PRECONDITION_FAILED,
           "copy: not modified -> 412");
    is_int(check(NULL, NULL, NULL, BEFORE, true), S3_ERR_PRECONDITION_FAILED,
           "modified after the unmodified-since date");
    is_int(check(NULL, NULL, NULL, SAME, true), S3_OK, "unmodified since the same second");
    is_int(check(NULL, NULL, NULL, AFTER, true), S3_OK, "unmodified since after");
    is_int(check(NULL, NULL, "Sunday, 06-Nov-94 08:49:38 GMT", NULL, true), S3_ERR_NOT_MODIFIED,
           "RFC 850 date");
    is_int(check(NULL, NULL, "yesterday", NULL, true), S3_OK, "bad If-Modified-Since ignored");
    is_int(check(NULL, NULL, NULL, "yesterday", true), S3_OK, "bad If-Unmodified-Since ignored");
}

static void test_cond_s3_pairing_rules(void)
{
    /* S3: If-Match true + If-Unmodified-Since false -> 200. */
    is_int(check("\"" ETAG "\"", NULL, NULL, BEFORE, true), S3_OK,
           "If-Match true beats If-Unmodified-Since false");
    is_int(check("\"x\"", NULL, NULL, AFTER, true), S3_ERR_PRECONDITION_FAILED,
           "If-Match false fails despite If-Unmodified-Since true");
    /* S3: If-None-Match false + If-Modified-Since true -> 304. */
    is_int(check(NULL, "\"" ETAG "\"", BEFORE, NULL, true), S3_ERR_NOT_MODIFIED,
           "If-None-Match false with If-Modified-Since true -> 304");
    is_int(check(NULL, "\"x\"", AFTER, NULL, true), S3_OK,
           "If-None-Match true makes If-Modified-Since moot");
    /* CopyObject: the same pairs with 412. */
    is_int(check("\"" ETAG "\"", NULL, NULL, BEFORE, false), S3_OK,
           "copy: if-match true + if-unmodified-since false -> OK");
    is_int(check(NULL, "\"" ETAG "\"", BEFORE, NULL, false), S3_ERR_PRECONDITION_FAILED,
           "copy: if-none-match false + if-modified-since true -> 412");
    /* A failed If-Match is checked before If-None-Match. */
    is_int(check("\"x\"", "\"" ETAG "\"", NULL, NULL, true), S3_ERR_PRECONDITION_FAILED,
           "412 before 304");
}

static void test_cond_etag_given_quoted(void)
{
    struct s3_conds c = {span_from(ETAG), span_make(NULL, 0), span_make(NULL, 0),
                         span_make(NULL, 0)};
    is_int(s3_conds_check(&c, "\"" ETAG "\"", MTIME_MS, true), S3_OK, "stored quotes ignored");
    is_int(s3_conds_check(&c, ETAG "-2", MTIME_MS, true), S3_ERR_PRECONDITION_FAILED,
           "multipart etag differs");
    c.if_match = span_from("\"" ETAG "-2\"");
    is_int(s3_conds_check(&c, ETAG "-2", MTIME_MS, true), S3_OK, "multipart etag matches");
}

int main(void)
{
    subtest(test_cond_none_is_ok);
    subtest(test_cond_if_match);
    subtest(test_cond_if_none_match);
    subtest(test_cond_dates);
    subtest(test_cond_s3_pairing_rules);
    subtest(test_cond_etag_given_quoted);
    return done_testing();
}
