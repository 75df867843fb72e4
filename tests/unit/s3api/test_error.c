/* s3api/error.c: the error table and the XML error body. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/xmalloc.h"
#include "s3api/error.h"
#include "tests/unit/tap.h"

static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = xmalloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

static void test_error_rows(void)
{
    is_int(s3_err_status(S3_OK), 200, "OK status");
    is_int(s3_err_status(S3_ERR_NO_SUCH_KEY), 404, "NoSuchKey status");
    is_str(s3_err_code(S3_ERR_NO_SUCH_KEY), "NoSuchKey", "NoSuchKey code");
    is_str(s3_err_message(S3_ERR_NO_SUCH_KEY), "The specified key does not exist.",
           "NoSuchKey message");
    is_int(s3_err_status(S3_ERR_ACCESS_DENIED), 403, "AccessDenied status");
    is_int(s3_err_status(S3_ERR_INVALID_RANGE), 416, "InvalidRange status");
    is_int(s3_err_status(S3_ERR_NOT_MODIFIED), 304, "NotModified status");
    is_int(s3_err_status(S3_ERR_PRECONDITION_FAILED), 412, "PreconditionFailed status");
    is_str(s3_err_code(S3_ERR_KEY_TOO_LONG), "KeyTooLongError", "KeyTooLongError code");
    is_str(s3_err_code(S3_ERR_MALFORMED_XML), "MalformedXML", "MalformedXML code");
    is_int(s3_err_status(S3_ERR_MALFORMED_XML), 400, "MalformedXML status");
    is_int(s3_err_status(S3_ERR_NOT_IMPLEMENTED), 501, "NotImplemented status");
    is_int(s3_err_status(S3_ERR_PAYLOAD_TOO_LARGE), 413, "413 row");
    is_str(s3_err_code(S3_ERR_PAYLOAD_TOO_LARGE), "EntityTooLarge", "413 code");
}

static void test_error_out_of_range_is_internal(void)
{
    is_int(s3_err_status(S3_ERR_COUNT), 500, "status");
    is_str(s3_err_code(S3_ERR_COUNT), "InternalError", "code");
    is_str(s3_err_message(S3_ERR_COUNT), s3_err_message(S3_ERR_INTERNAL_ERROR), "message");
}

static void test_error_every_row_is_complete(void)
{
    int bad = 0;
    for (int e = 0; e < S3_ERR_COUNT; e++) {
        int st = s3_err_status((enum s3_err)e);
        const char *code = s3_err_code((enum s3_err)e);
        const char *msg = s3_err_message((enum s3_err)e);
        if (st < 200 || st > 599 || code == NULL || code[0] == '\0' || msg == NULL ||
            msg[0] == '\0')
            bad++;
    }
    is_int(bad, 0, "every row has a status, code and message");
}

static void test_error_from_status(void)
{
    is_int(s3_err_from_status(408), S3_ERR_REQUEST_TIMEOUT_408, "408");
    is_int(s3_err_from_status(411), S3_ERR_MISSING_CONTENT_LENGTH, "411");
    is_int(s3_err_from_status(413), S3_ERR_PAYLOAD_TOO_LARGE, "413");
    is_int(s3_err_from_status(414), S3_ERR_URI_TOO_LONG, "414");
    is_int(s3_err_from_status(431), S3_ERR_HEADERS_TOO_LARGE, "431");
    is_int(s3_err_from_status(501), S3_ERR_NOT_IMPLEMENTED, "501");
    is_int(s3_err_from_status(503), S3_ERR_SERVICE_UNAVAILABLE, "503");
    is_int(s3_err_from_status(400), S3_ERR_BAD_REQUEST, "400");
    is_int(s3_err_from_status(505), S3_ERR_INTERNAL_ERROR, "other 5xx");
    is_int(s3_err_status(s3_err_from_status(408)), 408, "408 round trip");
}

static void test_error_xml_body(void)
{
    struct evbuffer *b = evbuffer_new();
    s3_err_write_xml(b, S3_ERR_NO_SUCH_KEY, NULL, "/bkt/a&b", "REQ1");
    char *got = drain(b);
    is_str(got,
           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
           "<Message>The specified key does not exist.</Message>"
           "<Resource>/bkt/a&amp;b</Resource><RequestId>REQ1</RequestId></Error>",
           "default message, escaped resource");
    free(got);

    s3_err_write_xml(b, S3_ERR_INVALID_ARGUMENT, "bad <x> & \"y\"\x01", NULL, NULL);
    got = drain(b);
    is_str(got,
           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code>"
           "<Message>bad &lt;x&gt; &amp; &quot;y&quot;&#x1;</Message>"
           "<RequestId></RequestId></Error>",
           "custom message escaped, no resource, empty request id");
    free(got);
    evbuffer_free(b);
}

int main(void)
{
    subtest(test_error_rows);
    subtest(test_error_out_of_range_is_internal);
    subtest(test_error_every_row_is_complete);
    subtest(test_error_from_status);
    subtest(test_error_xml_body);
    return done_testing();
}
